"""O contrato tipado do script: papel real (Role) × lado do plano (Side), restaurar traduzido num lugar só
(Direction.role_of), situações e modos em enums de texto (arquivos e JSON iguais byte a byte), saídas feitas do
resultado tipado e __all__ como a superfície que o invólucro e os testes usam."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import json
import re
import sqlite3
import types

import pytest

import sincronizar_bancos as sb

from caminhos import RAIZ, SCRIPT, WRAPPER  # noqa: E402
TEXTO_DO_SCRIPT = SCRIPT.read_text(encoding="utf-8")

# Textos dos enums do contrato: decidir comparando com eles como texto é o que a regra proíbe.
ENUMS_DO_CONTRATO = (sb.Role, sb.Side, sb.Mode, sb.PairStatus, sb.HealthVerdict, sb.PanelState, sb.RecordKind)
TEXTOS_PROIBIDOS = {member.value for kind in ENUMS_DO_CONTRATO for member in kind}

# Onde comparar com texto é LER o que veio de fora (não decidir sobre os nossos valores), e por quê.
LEITURAS_PERMITIDAS = {
    "health_verdict": "lê o corpo de GET /health do servidor ({'status': 'ok'} é o formato da API)",
}


def _funcao_de_cada_no(arvore: ast.AST) -> dict[ast.AST, str]:
    """Para cada nó, o nome da função (ou método) mais interna que o contém ('' no nível do módulo)."""
    dono: dict[ast.AST, str] = {}

    def visitar(no: ast.AST, nome: str) -> None:
        for filho in ast.iter_child_nodes(no):
            atual = filho.name if isinstance(filho, (ast.FunctionDef, ast.AsyncFunctionDef)) else nome
            dono[filho] = atual
            visitar(filho, atual)
    visitar(arvore, "")
    return dono


def _literais(no: ast.AST) -> list[str]:
    """Textos constantes num operando de comparação (o próprio texto ou os de uma tupla/lista/conjunto)."""
    if isinstance(no, ast.Constant) and isinstance(no.value, str):
        return [no.value]
    if isinstance(no, (ast.Tuple, ast.List, ast.Set)):
        return [e.value for e in no.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def test_nenhuma_decisao_compara_papel_lado_modo_ou_situacao_com_texto():
    arvore = ast.parse(TEXTO_DO_SCRIPT)
    dono = _funcao_de_cada_no(arvore)
    achados = []
    for no in ast.walk(arvore):
        if not isinstance(no, ast.Compare) or dono.get(no) in LEITURAS_PERMITIDAS:
            continue
        for operando in [no.left, *no.comparators]:
            for texto in _literais(operando):
                if texto in TEXTOS_PROIBIDOS:
                    achados.append(f"linha {no.lineno} ({dono.get(no) or 'módulo'}): compara com {texto!r}")
    assert not achados, "use os enums (Role, Side, Mode, PairStatus...), não o texto:\n" + "\n".join(achados)


def test_regra_pega_comparacao_com_texto_e_deixa_a_com_enum():
    """A varredura acima pega o que deve pegar (senão ela passaria sempre)."""
    ruim = ast.parse('def f(side):\n    return side == "principal" or side in ("backup", "x")\n')
    bom = ast.parse("def f(side):\n    return side == Side.PRIMARY\n")
    achados = [t for arvore in (ruim, bom) for no in ast.walk(arvore) if isinstance(no, ast.Compare)
               for operando in [no.left, *no.comparators] for t in _literais(operando) if t in TEXTOS_PROIBIDOS]
    assert achados == ["principal", "backup"]


def test_sql_do_historico_nao_compara_situacao_nem_modo_com_texto_fixo():
    sql_com_texto = re.compile(r"(situacao|modo)\s*(=|!=|<>)\s*'", re.I)
    achados = [f"linha {no.lineno}: {no.value.strip()[:80]}" for no in ast.walk(ast.parse(TEXTO_DO_SCRIPT))
               if isinstance(no, ast.Constant) and isinstance(no.value, str) and sql_com_texto.search(no.value)]
    assert not achados, "passe PairStatus/Mode como parâmetro (?) na consulta:\n" + "\n".join(achados)


# Quem decide o código de saída do processo (o painel e o historico podem MOSTRAR a coluna codigo_saida).
QUEM_DECIDE_O_CODIGO = {"main", "_run_command", "run_demo", "pair_verdict", "run_exit_code", "failover_check_code"}


def test_quem_decide_o_codigo_de_saida_nao_le_o_json_de_volta():
    arvore = ast.parse(TEXTO_DO_SCRIPT)
    dono = _funcao_de_cada_no(arvore)
    assert QUEM_DECIDE_O_CODIGO <= set(dono.values()), "renomeou uma função? atualize QUEM_DECIDE_O_CODIGO"
    leituras = [f"linha {no.lineno} ({dono[no]})" for no in ast.walk(arvore)
                if isinstance(no, ast.Subscript) and isinstance(no.ctx, ast.Load)
                and dono.get(no) in QUEM_DECIDE_O_CODIGO and isinstance(no.slice, ast.Constant)
                and no.slice.value in ("codigo_saida", "situacao")]
    assert not leituras, f"o código de saída vem do RunOutcome, não do JSON: {leituras}"


def _servidores():
    return (sb.ServerConfig("principal", "https://principal.test", "admin", "x"),
            sb.ServerConfig("backup", "https://backup.test", "admin", "y"))


def test_role_of_e_a_unica_traducao_de_restaurar():
    principal, backup = _servidores()
    direta, restaurar = sb.Direction(principal, backup), sb.Direction(principal, backup, restore=True)
    assert [direta.role_of(s) for s in sb.Side] == [sb.Role.PRIMARY, sb.Role.BACKUP]
    assert [restaurar.role_of(s) for s in sb.Side] == [sb.Role.BACKUP, sb.Role.PRIMARY]
    assert restaurar.server(sb.Side.PRIMARY) is backup and restaurar.server(sb.Side.BACKUP) is principal
    assert restaurar.source is backup and restaurar.target is principal
    assert sb.Side.PRIMARY.other is sb.Side.BACKUP and sb.Role.BACKUP.other is sb.Role.PRIMARY
    # as outras codificações saíram
    assert not hasattr(restaurar, "real_side")
    assert "labels" not in {campo.name for campo in dataclasses.fields(sb.PlanOptions)}
    assert isinstance(principal.role, sb.Role) and principal.label == "Principal (https://principal.test)"


def _licenca(chave: str, dono: str) -> sb.License:
    return sb.License(chave, dono, None, None, None, "anual", "admin", "active",
                      dt.date(2026, 1, 1), dt.date(2099, 1, 1))


def test_restaurar_nomeia_e_renderiza_pelo_servidor_real():
    """Em restaurar o lado PRIMARY do plano é o backup: o motivo da ação, o --json e o histórico falam do
    servidor real (a licença falta no PRINCIPAL; a divergência mostra em "principal" o valor do principal)."""
    principal, backup = _servidores()
    restaurar = sb.Direction(principal, backup, restore=True)
    origem = sb.Snapshot(backup.url, {"ana": sb.User("ana", None, "user")},  # o backup (origem do plano)
                         {"R-1": _licenca("R-1", "Loja")})
    destino = sb.Snapshot(principal.url, {}, {})
    plano = sb.plan_pair(origem, destino, dt.date(2026, 6, 1),
                         options=sb.PlanOptions(only_missing=True, protect_target=False, role_of=restaurar.role_of))
    [[criar]] = plano.license_chains
    assert criar.side is sb.Side.BACKUP and "não existe no principal" in criar.reason
    assert [a.reason for a in plano.user_actions] == ["não existe no principal"]
    divergencia = sb.Divergence(sb.RecordKind.LICENSE, "R-1", "features", "no-backup", "no-principal",
                                "a API não define")
    resultado = sb.PairOutcome(restaurar, started="2026-06-01T00:00:00+00:00", plan=plano,
                               results=[sb.Result(criar, True)], divergences=[divergencia],
                               parity_before=plano.parity_now())
    doc = sb.pair_json(resultado, simulate=False)
    assert doc["divergencias"][0]["principal"] == "no-principal" and doc["divergencias"][0]["backup"] == "no-backup"
    assert doc["acoes"][0]["servidor"] == "principal"
    assert doc["contagens"]["no_principal"]["licencas_criadas"] == 1 and doc["contagens"]["licencas_criadas"] == 0
    assert resultado.writes(sb.Role.PRIMARY)[sb.CREATE] == 1 and resultado.write_total(sb.Role.BACKUP) == 0


def test_enums_gravam_o_mesmo_texto_em_json_arquivo_e_sqlite(tmp_path):
    assert json.dumps([sb.Role.PRIMARY, sb.Side.BACKUP, sb.Mode.CHECK, sb.PairStatus.RUNNING]) == \
        '["principal", "backup", "verificacao", "em andamento"]'
    assert f"{sb.PairStatus.HELD}|{sb.Role.BACKUP:>8}" == "exclusoes retidas|  backup"
    historico = sb.History(str(tmp_path))
    historico.start_pair("exec-1", "2026-06-01T00:00:00+00:00", sb.Mode.ONE_WAY, "https://p.test", "https://b.test")
    historico.start_pair("exec-2", "2026-06-01T00:01:00+00:00", "bidirecional", "https://p.test", "https://b.test")
    historico.close()
    with sqlite3.connect(tmp_path / sb.HISTORY_FILE) as banco:
        linhas = banco.execute("SELECT execucao, modo, situacao, typeof(situacao) FROM execucoes "
                               "ORDER BY id").fetchall()
    assert linhas == [("exec-1", "unidirecional", "interrompida", "text"),
                      ("exec-2", "bidirecional", "em andamento", "text")]


def test_historico_volta_tipado_para_o_painel(tmp_path):
    historico = sb.History(str(tmp_path))
    historico.start_pair("exec-1", "2026-06-01T00:00:00+00:00", "restauracao", "https://p.test", "https://b.test")
    [linha] = historico.runs()
    historico.close()
    assert linha["situacao"] is sb.PairStatus.RUNNING and linha["modo"] is sb.Mode.RESTORE
    estado = sb.pair_health([linha], 120, dt.datetime.now(dt.timezone.utc))[0]
    assert estado["estado"] is sb.PanelState.FIRST_RUNNING and estado["saudavel"] is False


def _nomes_usados(texto: str) -> set[str]:
    return set(re.findall(r"\bsb\.([A-Za-z_][A-Za-z0-9_]*)", texto)) - {"json"}


def test_all_cobre_o_que_o_involucro_e_os_testes_usam():
    assert len(sb.__all__) == len(set(sb.__all__)) and all(hasattr(sb, nome) for nome in sb.__all__)
    arquivos = [WRAPPER, *sorted((RAIZ / "tests").rglob("*.py"))]
    usados = {nome: arquivo.name for arquivo in arquivos for nome in _nomes_usados(arquivo.read_text(encoding="utf-8"))}
    fora = {nome: arquivo for nome, arquivo in usados.items() if nome not in sb.__all__ and not nome.startswith("__")}
    assert not fora, f"acrescente ao __all__ do script (ou não use de fora): {fora}"


# --- Leituras tipadas dos nossos próprios arquivos ----------------------------------------------------------------

# A única função que lê cada arquivo nosso (as chaves dele só aparecem aqui; todo o resto lê o objeto tipado).
LEITORES_DOS_NOSSOS_ARQUIVOS = {
    "read_last_run": "ultima_execucao.json → LastRun",
    "journal_entry": "uma entrada do diário do par (ESTADO.diario.json) → JournalEntry",
    "_decoded": "linhas de execucoes no historico.sqlite3 (desempacota contagens/detalhes) → HistoryRow",
    "from_columns": "HistoryRow.from_columns, chamado só por History._decoded (a mesma leitura)",
    "stored_failover": "a rota de falha gravada nos detalhes (failover_json) → StoredFailover, chamado só por "
                       "HistoryRow.from_columns",
    "audit_trail": "linhas da auditoria no historico.sqlite3 → AuditEntry",
    "_state_from_json": "o estado do par (ESTADO.json) → PairState",
    "read_watch": "o batimento do vigiar (vigiar.json) → WatchBeat",
    "add_aside": "o registro guardado à parte (historico-pendente/*.json) → linhas do histórico",
}
# Funções que leem chaves com os mesmos nomes em documentos que NÃO são nossos, e por quê.
OUTRAS_LEITURAS = {
    "proven": "o corpo da resposta de escrita do SERVIDOR ({'ok': true} é o formato da API)",
    "server_ids": "os itens de /admin/devices do SERVIDOR ('id' é o campo da API)",
}


def _chaves_dos_nossos_arquivos(pasta) -> set[str]:
    """As chaves que os NOSSOS arquivos e o /status.json gravam, tiradas de quem os escreve (não de uma lista à mão):
    o ultima_execucao.json (last_run_json), a entrada do diário (journal_json), as colunas das tabelas do histórico
    e as chaves de um par no painel e no /status.json (pair_health)."""
    resumo = sb.last_run_json(sb.RunOutcome(
        run_id="x", started="", mode=sb.Mode.ONE_WAY, clock=sb.Clock.of(dt.date(2026, 1, 1)), pairs=[],
        primary_url="", primary_error=None, primary_counts=None, primary_waited_s=0.0, credentials_file=None))
    chaves = set(resumo) | {k for servidor in resumo["servidores"] for k in servidor} | {"escritas"}
    chaves |= set(sb.journal_json(sb.JournalEntry(sb.Side.BACKUP, [], "v", left_allowed=True)))
    historico = sb.History(str(pasta))
    try:
        for tabela in ("execucoes", "auditoria"):
            chaves |= {linha[1] for linha in historico.db.execute(f"PRAGMA table_info({tabela})")}
    finally:
        historico.close()
    chaves |= set(sb.pair_health([], 120, dt.datetime.now(dt.timezone.utc), [("p", "b")])[0].doc)
    chaves |= _chaves_dos_detalhes(pasta / "detalhes")
    return chaves


def _todas_as_chaves(doc) -> set[str]:
    """As chaves de um documento JSON, em qualquer nível (dicts dentro de listas inclusive)."""
    if isinstance(doc, dict):
        return set(doc) | {k for valor in doc.values() for k in _todas_as_chaves(valor)}
    if isinstance(doc, (list, tuple)):
        return {k for item in doc for k in _todas_as_chaves(item)}
    return set()


def _chaves_dos_detalhes(pasta) -> set[str]:
    """As chaves da coluna detalhes do histórico em qualquer nível (conflitos, divergências, falhas, só no backup e
    a rota de falha gravada por failover_json), tiradas de um par com um de cada, gravado e lido de volta."""
    hoje = dt.date(2026, 6, 1)
    ativa = _licenca("K", "Loja")
    p = sb.Snapshot("https://p.test", {}, {"K": ativa})
    b = sb.Snapshot("https://b.test", {}, {"K": dataclasses.replace(ativa, owner_name="Outra"),
                                            "Z": _licenca("Z", "Só no backup")})
    plano = sb.plan_pair(p, b, hoje, None, sb.PlanOptions(mode=sb.Mode.TWO_WAY))
    plano = dataclasses.replace(plano, backup_only_allowed=("Z",))
    assert plano.conflicts
    direcao = sb.Direction(*_servidores())
    acao = sb.Action(sb.UPDATE, "K", "teste", changes=(("owner_name", "Loja", "Outra"),))
    divergencia = sb.Divergence(sb.RecordKind.LICENSE, "K", "features", "a", "b", "a API não define")
    resultado = sb.PairOutcome(direcao, started="2026-06-01T00:00:00+00:00", plan=plano,
                               results=[sb.Result(acao, False, "recusada")], divergences=[divergencia],
                               parity_before=plano.parity_now(), leftover=[acao], warnings=["aviso"])
    rota = sb.check_failover(["https://p.test", "https://b.test"],
                             {"https://p.test": ["https://x.test"], "https://b.test": None}, {"https://c.test": "p"})
    pasta.mkdir()
    historico = sb.History(str(pasta))
    try:
        historico.finish_pair(historico.start_pair("x", "2026-06-01T00:00:00+00:00", sb.Mode.TWO_WAY, "https://p.test",
                                                   "https://b.test"), resultado, rota)
        [linha] = historico.runs()
    finally:
        historico.close()
    detalhes = linha.details
    assert detalhes["rota_de_falha"]["achados"] and detalhes["falhas"] and detalhes["conflitos"]
    return _todas_as_chaves(detalhes)


def _chave_lida(no: ast.AST) -> str | None:
    """x["chave"] (leitura) ou x.get("chave", ...): a chave constante lida; None para o resto."""
    if isinstance(no, ast.Subscript) and isinstance(no.ctx, ast.Load) and isinstance(no.slice, ast.Constant) \
            and isinstance(no.slice.value, str):
        return no.slice.value
    if isinstance(no, ast.Call) and isinstance(no.func, ast.Attribute) and no.func.attr == "get" and no.args \
            and isinstance(no.args[0], ast.Constant) and isinstance(no.args[0].value, str):
        return no.args[0].value
    return None


def _condicoes(arvore: ast.AST):
    """Onde o programa DECIDE: o teste de if/while/assert/expressão condicional, o filtro de uma compreensão e
    toda comparação, and/or e not."""
    for no in ast.walk(arvore):
        if isinstance(no, (ast.If, ast.While, ast.IfExp, ast.Assert)):
            yield no.test
        elif isinstance(no, ast.comprehension):
            yield from no.ifs
        elif isinstance(no, (ast.Compare, ast.BoolOp)) or (isinstance(no, ast.UnaryOp) and isinstance(no.op, ast.Not)):
            yield no


def leituras_de_chaves_nossas(texto: str, chaves: set[str]) -> list[str]:
    """A varredura: uma leitura `x["chave"]` ou `x.get("chave")` DENTRO de uma condição (veja _condicoes), com uma
    chave que os nossos arquivos gravam, fora da função leitora daquele arquivo (LEITORES_DOS_NOSSOS_ARQUIVOS) e
    fora das que leem documentos alheios com nomes iguais (OUTRAS_LEITURAS). Montar um texto ou um JSON com o valor
    de uma coluna (renderizar) não é decidir e não conta."""
    arvore = ast.parse(texto)
    dono = _funcao_de_cada_no(arvore)
    achados: dict[int, str] = {}
    for condicao in _condicoes(arvore):
        for no in ast.walk(condicao):
            chave = _chave_lida(no)
            funcao = dono.get(no) or "módulo"
            if chave in chaves and funcao not in LEITORES_DOS_NOSSOS_ARQUIVOS and funcao not in OUTRAS_LEITURAS:
                achados[id(no)] = f"linha {no.lineno} ({funcao}): decide lendo a chave {chave!r}"
    return sorted(set(achados.values()))


def test_nenhuma_decisao_le_chave_dos_nossos_arquivos_fora_do_leitor_dele(tmp_path):
    """Histórico (linhas e auditoria), ultima_execucao.json, diário do par e o estado de cada par no painel são
    lidos para um objeto tipado por UMA função cada (LEITORES_DOS_NOSSOS_ARQUIVOS); as decisões dos dois scripts
    (o painel vermelho/verde, o /status.json 200/503, o historico, o planejador com o diário, o invólucro com o
    resumo) leem os campos desses objetos. A varredura (leituras_de_chaves_nossas) acha 0 leituras de chave nossa
    numa decisão, no script e no invólucro."""
    chaves = _chaves_dos_nossos_arquivos(tmp_path)
    assert {"situacao", "codigo_saida", "registrada_no_historico", "origem", "alvo", "fonte", "saudavel"} <= chaves
    assert set(LEITORES_DOS_NOSSOS_ARQUIVOS) | set(OUTRAS_LEITURAS) <= set(_funcao_de_cada_no(
        ast.parse(TEXTO_DO_SCRIPT)).values()), "renomeou um leitor? atualize LEITORES_DOS_NOSSOS_ARQUIVOS"
    achados = {caminho.name: leituras_de_chaves_nossas(caminho.read_text(encoding="utf-8"), chaves)
               for caminho in (SCRIPT, WRAPPER)}
    assert achados == {SCRIPT.name: [], WRAPPER.name: []}, "leia o objeto tipado (LastRun, HistoryRow, JournalEntry, " \
        "PanelPair, AuditEntry), não a chave:\n" + "\n".join(f"{a}: {x}" for a, xs in achados.items() for x in xs)


def test_varredura_pega_decisao_por_chave_e_deixa_a_renderizacao_e_o_leitor():
    """A varredura acima pega o que deve pegar (senão passaria sempre) e só isso."""
    chaves = {"situacao", "servidores", "ok"}
    codigo = ('def painel(linha, resumo):\n'
              '    if linha["situacao"] != "ok":\n'                      # decide por chave: pega
              '        return [s for s in resumo["servidores"] if not s.get("ok")]\n'  # filtro por chave: pega
              '    return f"situação {linha[\'situacao\']}"\n'           # só mostra: não pega
              'def read_last_run(doc):\n'
              '    return doc.get("ok") is True\n')                      # o leitor do arquivo: não pega
    assert leituras_de_chaves_nossas(codigo, chaves) == [
        "linha 2 (painel): decide lendo a chave 'situacao'", "linha 3 (painel): decide lendo a chave 'ok'"]


# Onde uma exceção ou uma trava vira desfecho: nenhuma delas escolhe um ExitCode (error_exit_code traduz,
# run_exit_code julga). Comparar com um código (para escolher o texto) não é escolher.
SEM_CODIGO_PROPRIO = {"main", "run_demo", "plan_and_apply", "sync_pair", "stopped_run", "record_failure",
                      "_record_failure"}


def test_excecao_vira_desfecho_e_o_codigo_sai_de_run_exit_code():
    """As exceções que param uma execução viram um código em UM lugar (error_exit_code) e a execução o julga
    pela regra de sempre (run_exit_code, via stopped_code): main, a demonstração, as travas do par, o login e o
    registro da falha não escrevem ExitCode.X nenhum."""
    assert [sb.stopped_code(exc) for exc in (
        sb.ConfigError("x"), sb.LockBusy(), KeyboardInterrupt(), OSError("x"), RuntimeError("x"),
        sb.SafetyStop("x"), SystemExit(0), SystemExit(2), sb.OptionError("x"))] == [
        sb.ExitCode.CONFIG, sb.ExitCode.BUSY, sb.ExitCode.INTERRUPTED, sb.ExitCode.FAILURES, sb.ExitCode.FAILURES,
        sb.ExitCode.SAFETY, sb.ExitCode.OK, sb.ExitCode.CONFIG, sb.ExitCode.CONFIG]
    assert sb.error_exit_code(RuntimeError("x")) is sb.ExitCode.SERVER  # no login, o resto é servidor (4)
    arvore = ast.parse(TEXTO_DO_SCRIPT)
    dono = _funcao_de_cada_no(arvore)
    assert SEM_CODIGO_PROPRIO <= set(dono.values()), "renomeou uma função? atualize SEM_CODIGO_PROPRIO"
    comparados = {id(o) for no in ast.walk(arvore) if isinstance(no, ast.Compare)
                  for o in [no.left, *no.comparators]}
    escolhidos = [f"linha {no.lineno} ({dono[no]}): ExitCode.{no.attr}" for no in ast.walk(arvore)
                  if isinstance(no, ast.Attribute) and isinstance(no.value, ast.Name) and no.value.id == "ExitCode"
                  and dono.get(no) in SEM_CODIGO_PROPRIO and id(no) not in comparados]
    assert not escolhidos, "o código vem de error_exit_code/run_exit_code:\n" + "\n".join(escolhidos)


def test_plano_e_congelado_e_os_conflitos_sao_uma_tupla_de_conflict():
    """O plano sai completo do planejador: quem junta dois planos faz um novo (merge_final), nunca edita."""
    p = sb.Snapshot("https://p.test", {}, {})
    plano = sb.plan_pair(p, sb.Snapshot("https://b.test", {}, {}), dt.date(2026, 6, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plano.conflicts = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        plano.halted = True  # type: ignore[misc]
    conflito = sb.Conflict("X", "teste", sb.ConflictPolicy.REPORT, None, None)
    de_novo = dataclasses.replace(plano, conflicts=(conflito,), halted=True)
    junto = sb.merge_final(plano, de_novo)
    assert junto.conflicts == (conflito,) and junto.halted and plano.conflicts == () and not plano.halted


def _planos_de_cada_construtor() -> dict[str, sb.Plan]:
    """Um plano com todas as listas cheias de algo, saído de cada lugar que faz um Plan: plan_pair, a releitura do
    principal (replan_after_reread: o bloqueio entra no lugar da cadeia do backup) e a releitura final
    (merge_final)."""
    hoje = dt.date(2026, 6, 1)
    ativa = _licenca("K", "Loja")
    bloqueada = dataclasses.replace(ativa, status=sb.LicenseStatus.BLOCKED)
    p = sb.Snapshot("https://p.test", {"ana": sb.User("ana", None, "user")}, {"K": ativa, "N": _licenca("N", "Nova")})
    b = sb.Snapshot("https://b.test", {"bia": sb.User("bia", None, "user")},
                    {"K": dataclasses.replace(ativa, owner_name="Antigo"), "Z": _licenca("Z", "Só no backup")})
    plano = sb.plan_pair(p, b, hoje)
    assert plano.user_actions and plano.license_chains and plano.expected and plano.backup_only_licenses
    relido = dataclasses.replace(p, licenses={**p.licenses, "K": bloqueada})
    replanejado, _cadeias, _exclusoes = sb.replan_after_reread(
        plano, sb.Side.PRIMARY, p, relido, b, sb.Clock.of(hoje), list(plano.license_chains), [])
    assert replanejado.conflicts and replanejado.license_chains != plano.license_chains
    return {"plan_pair": plano, "replan_after_reread": replanejado,
            "merge_final": sb.merge_final(plano, sb.plan_pair(relido, b, hoje))}


def test_plano_planejado_nao_muda_por_dentro():
    """Congelado de verdade: todo campo coleção de um Plan é uma tupla (as cadeias também) e o esperado é um
    mapeamento só de leitura; nenhum .append, += ou atribuição por chave muda um plano já feito."""
    coisa = sb.Action(sb.BLOCK, "X", "teste")
    for origem, plano in _planos_de_cada_construtor().items():
        for campo in dataclasses.fields(plano):
            valor = getattr(plano, campo.name)
            if not isinstance(valor, (list, dict, set, tuple, types.MappingProxyType)):
                continue  # escalares (e objetos congelados: DataLoss, Clock)
            assert isinstance(valor, (tuple, types.MappingProxyType)), f"{origem}: Plan.{campo.name} é {type(valor)}"
            if isinstance(valor, types.MappingProxyType):
                with pytest.raises(TypeError):
                    valor["X"] = (None, None)
                continue
            with pytest.raises(AttributeError):
                valor.append(coisa)
            antes = valor
            valor += (coisa,)
            assert getattr(plano, campo.name) is antes, f"{origem}: += mudou Plan.{campo.name}"
        assert all(isinstance(cadeia, tuple) for cadeia in plano.license_chains), origem
        with pytest.raises(AttributeError):
            plano.license_chains[0].append(coisa)
        for campo, lista in (("deletions", [coisa]), ("expected", {}), ("license_chains", ([coisa],))):
            with pytest.raises(TypeError, match="Plan congelado"):  # nem montado de novo com algo mutável
                dataclasses.replace(plano, **{campo: lista})


PALAVRAS_DE_STATUS = {"active", "blocked", "pending"}  # os valores de LicenseStatus


def _comparacoes_com_palavras_de_status(arvore: ast.AST) -> list[int]:
    """Linhas de comparações com "blocked"/"active"/"pending" fora da classe LicenseStatus."""
    achados = []

    def visitar(no: ast.AST) -> None:
        for filho in ast.iter_child_nodes(no):
            if isinstance(filho, ast.ClassDef) and filho.name == "LicenseStatus":
                continue
            textos = [t for o in [filho.left, *filho.comparators] for t in _literais(o)] \
                if isinstance(filho, ast.Compare) else []
            if PALAVRAS_DE_STATUS & set(textos):
                achados.append(filho.lineno)
            visitar(filho)
    visitar(arvore)
    return achados


def test_status_da_licenca_e_lido_uma_vez_e_as_decisoes_comparam_o_enum():
    achados = _comparacoes_com_palavras_de_status(ast.parse(TEXTO_DO_SCRIPT))
    assert len(achados) <= 1, f"compare com LicenseStatus, não com o texto (linhas {achados})"
    # a varredura pega o que deve pegar
    assert _comparacoes_com_palavras_de_status(ast.parse('x = s == "blocked" or s in ("pending", "y")')) == [1, 1]
    # lido uma vez, literalmente como o servidor compara: o desconhecido fica como veio (e o veredito libera)
    licencas, problemas, _ = sb.parse_licenses([
        {"device_id": "A", "license_type": "anual", "status": "blocked"},
        {"device_id": "B", "license_type": "anual", "status": "blocked "},
        {"device_id": "C", "license_type": "anual", "status": "ativo"}])
    assert not problemas and licencas["A"].status is sb.LicenseStatus.BLOCKED
    assert [type(licencas[k].status) for k in "BC"] == [str, str] and licencas["B"].status == "blocked "
    assert [sb.allows(licencas[k], dt.date(2026, 6, 1)) for k in "ABC"] == [False, True, True]
    # o mesmo texto em JSON, f-strings e no que o relatório mostra
    assert json.dumps([sb.LicenseStatus.ACTIVE, licencas["B"].status]) == '["active", "blocked "]'
    assert f"{sb.LicenseStatus.PENDING}|{sb.LicenseStatus.BLOCKED:>8}" == "pending| blocked"


def test_o_desfazer_de_uma_cadeia_e_decisao_do_plano_e_nao_do_executor():
    """Executor.compensate só faz o desfazer que o plano anotou (chain_undo): não olha o modo nem o lado."""
    import inspect
    fonte = inspect.getsource(sb.Executor.compensate)
    assert "mode" not in fonte and "self.backup" not in fonte and "CREATE" not in fonte
    hoje = dt.date(2026, 6, 1)
    bloqueada = sb.License("K", "Nome", None, None, None, "anual", "admin", sb.LicenseStatus.BLOCKED)
    velha = dataclasses.replace(bloqueada, owner_name="Antigo", status=sb.LicenseStatus.ACTIVE)
    for alvo, modo, desfaz, diario in ((None, sb.Mode.ONE_WAY, True, False), (velha, sb.Mode.ONE_WAY, True, False),
                                       (velha, sb.Mode.TWO_WAY, True, True)):
        p = sb.Snapshot("https://p.test", {}, {"K": bloqueada})
        b = sb.Snapshot("https://b.test", {}, {"K": alvo} if alvo else {})
        opcoes = sb.PlanOptions(mode=modo, conflict=sb.ConflictPolicy.PRIMARY)
        [cadeia] = sb.plan_pair(p, b, hoje, None, opcoes).license_chains
        assert cadeia[-1].kind == sb.BLOCK and (cadeia[-1].undo is not None) == desfaz
        assert cadeia[-1].undo.kind == sb.DELETE and cadeia[-1].undo.journaled == diario


def test_um_so_escritor_do_registro_da_execucao():
    """Uma execução concluída, parada no login ou com falha (configuração, erro inesperado) é registrada pelo mesmo
    caminho: só o RunRecord abre e fecha a linha do par no histórico (start_pair no começo do par, para que uma
    execução morta com kill -9 fique "interrompida"; finish_pair no fim dele) e só record_run grava o
    ultima_execucao.json (last_run_json). Nenhum outro lugar do script usa (chama ou passa adiante)
    start_pair/finish_pair ou last_run_json."""
    arvore = ast.parse(TEXTO_DO_SCRIPT)
    dono = _funcao_de_cada_no(arvore)
    usos = sorted({(no.attr if isinstance(no, ast.Attribute) else no.id, dono[no]) for no in ast.walk(arvore)
                   if (isinstance(no, ast.Attribute) and no.attr in ("start_pair", "finish_pair"))
                   or (isinstance(no, ast.Name) and no.id == "last_run_json")})
    assert usos == [("finish_pair", "finish"), ("last_run_json", "record_run"), ("start_pair", "start")]
    assert {"start", "finish"} <= {f.name for f in ast.walk(arvore) if isinstance(f, ast.ClassDef)
                                   and f.name == "RunRecord" for f in f.body if isinstance(f, ast.FunctionDef)}


# --- Estado de uma execução: no RunContext, nunca no módulo --------------------------------------------------------

# As únicas funções que trocam um nome do módulo: a referência ao contexto atual (criar o do processo no primeiro
# uso; trocar e devolver o de uma chamada de main()).
TROCAM_O_CONTEXTO = {"run_context", "using_run_context"}
MUTACOES = {"append", "add", "update", "pop", "clear", "setdefault", "extend", "remove", "discard", "insert",
            "popitem"}


def _mudancas_de_nomes_do_modulo(texto: str) -> dict[str, set[str]]:
    """Função → nomes do módulo que ela muda (global, item atribuído ou método que muda um dict/lista/set), e
    atributos de classe mudados de fora (Classe.atributo[...] = / Classe.atributo.append(...))."""
    arvore = ast.parse(texto)
    do_modulo = {alvo.id for no in arvore.body if isinstance(no, (ast.Assign, ast.AnnAssign))
                 for alvo in (no.targets if isinstance(no, ast.Assign) else [no.target]) if isinstance(alvo, ast.Name)}
    classes = {no.name for no in arvore.body if isinstance(no, ast.ClassDef)}
    achados: dict[str, set[str]] = {}
    for funcao in ast.walk(arvore):
        if not isinstance(funcao, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for no in ast.walk(funcao):
            mudou = []
            if isinstance(no, ast.Global):
                mudou += no.names
            alvos = (no.targets if isinstance(no, ast.Assign) else [no.target]
                     if isinstance(no, (ast.AugAssign, ast.AnnAssign)) else [])
            for alvo in alvos:
                base = alvo.value if isinstance(alvo, (ast.Subscript, ast.Attribute)) else None
                if isinstance(base, ast.Name) and isinstance(alvo, ast.Subscript) and base.id in do_modulo:
                    mudou.append(base.id)
                if isinstance(alvo, ast.Attribute) and isinstance(base, ast.Name) and base.id in classes:
                    mudou.append(f"{base.id}.{alvo.attr}")
                if (isinstance(alvo, ast.Subscript) and isinstance(base, ast.Attribute)
                        and isinstance(base.value, ast.Name) and base.value.id in classes):
                    mudou.append(f"{base.value.id}.{base.attr}")
            if isinstance(no, ast.Call) and isinstance(no.func, ast.Attribute) and no.func.attr in MUTACOES:
                dono = no.func.value
                if isinstance(dono, ast.Name) and dono.id in do_modulo:
                    mudou.append(dono.id)
                if isinstance(dono, ast.Attribute) and isinstance(dono.value, ast.Name) and dono.value.id in classes:
                    mudou.append(f"{dono.value.id}.{dono.attr}")
            if mudou:
                achados.setdefault(funcao.name, set()).update(mudou)
    return achados


def test_nada_de_uma_execucao_mora_no_modulo():
    """Segredos, sinais de parada, --json e o login entregue são do RunContext de cada main(): nenhuma função
    muda um nome do módulo ou um atributo de classe, fora a troca do contexto atual."""
    achados = _mudancas_de_nomes_do_modulo(TEXTO_DO_SCRIPT)
    assert set(achados) == TROCAM_O_CONTEXTO, achados
    assert all(nomes == {"_current_run"} for nomes in achados.values()), achados


def test_varredura_pega_estado_no_modulo_e_em_atributo_de_classe():
    texto = ("SEGREDOS = set()\nUSADO = {}\nclass Cliente:\n    entregue = {}\n"
             "def a(x):\n    SEGREDOS.add(x)\n"
             "def b(k):\n    Cliente.entregue[k] = 1\n"
             "def c():\n    global USADO\n    USADO = {}\n"
             "def d():\n    local = {}\n    local.update(a=1)\n    return dict(USADO)\n")
    assert _mudancas_de_nomes_do_modulo(texto) == {"a": {"SEGREDOS"}, "b": {"Cliente.entregue"}, "c": {"USADO"}}


def test_as_threads_da_execucao_veem_o_contexto_dela_e_ele_sai_com_ela():
    """O executor e as leituras em paralelo rodam em threads de um ThreadPoolExecutor: elas veem o contexto da
    execução (a referência é do módulo; um contextvars não passaria sozinho para elas). Ao sair, volta o de fora,
    sem nada do de dentro."""
    import concurrent.futures

    fora = sb.run_context()
    dentro = sb.RunContext()
    with sb.using_run_context(dentro):
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            vistos = list(pool.map(lambda _: sb.run_context(), range(16)))
        dentro.secrets.add("segredo-so-de-dentro")
        dentro.stop.event.set()
    assert all(visto is dentro for visto in vistos)
    assert sb.run_context() is fora
    assert fora.secrets.mask("segredo-so-de-dentro") == "segredo-so-de-dentro" and not fora.stop.requested


def test_invólucro_de_antes_da_interface_2_ainda_mascara_por_sb_secrets():
    """Numa atualização pela metade (invólucro antigo, script novo), o aviso do invólucro chama sb.SECRETS.add e
    .mask antes de dizer qual arquivo atualizar: SECRETS continua existindo, sem estado próprio, repassando à
    máscara da execução atual (antes, AttributeError, e o invólucro antigo perdia a pasta de dados e o webhook)."""
    import sincronizar_bancos as sb

    contexto = sb.RunContext()
    with sb.using_run_context(contexto):
        sb.SECRETS.add("segredo-do-invólucro-antigo")
        assert sb.SECRETS.mask("x segredo-do-invólucro-antigo y") == "x *** y"
        assert contexto.secrets.mask("segredo-do-invólucro-antigo") == "***"
    assert "segredo-do-invólucro-antigo" in sb.SECRETS.mask("segredo-do-invólucro-antigo")  # só daquela execução

