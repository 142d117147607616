"""Propriedades do planejador (puro), com hypothesis.

Para retratos aleatórios do principal e do backup (status, tipos, datas em volta de um
"hoje" fixo, registros faltando ou sobrando, campos nulos, registros inválidos), aplicar
as ações do plano a um modelo do backup (sincronizar_bancos.model_apply, o mesmo modelo
do servidor usado pelo planejador) deve:

- dar o mesmo veredito (liberada/negada) do principal para toda licença válida do principal;
- copiar os campos definíveis pela API;
- nunca apagar um registro do backup nem mexer num registro que só existe no backup
  ou que é inválido no principal;
- nunca escrever no principal (modo padrão, unidirecional);
- não gerar nada a fazer quando se planeja de novo sobre o resultado (idempotência);
- não escrever numa licença que já tem os mesmos dados e o mesmo veredito.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import sincronizar_bancos as sb

HOJE = dt.date(2026, 11, 29)
CHAVES = [f"D{i:02d}" for i in range(12)]
TIPOS_VALIDOS = list(sb.LICENSE_PERIOD_MONTHS)
STATUS_VALIDOS = list(sb.LICENSE_STATUSES)
NOMES_USUARIOS = ["ana", "bia", "caio", "admin", "dora.revenda", "zeca"]

# Cada campo sai de UM sorteio (sampled_from com os casos vazios e inválidos na mesma lista), não de
# one_of aninhados: o mesmo conjunto de valores com metade dos sorteios, que são o custo destes testes.
textos = st.sampled_from([None, None, "José da Silva", "Maria Conceição", "x", "Rua A, 10", "123.456.789-09",
                          "a@b.com"])  # vazio em 1/4 dos sorteios
criadores = st.sampled_from([None, "admin", "sergio", "conceicao"])
deslocamentos = st.one_of(st.sampled_from([-1, 0, 1]), st.integers(-800, 800))
datas = st.one_of(st.none(), deslocamentos.map(lambda d: HOJE + dt.timedelta(days=d)))
tipos = st.sampled_from(TIPOS_VALIDOS + [None, "semanal"])
status = st.sampled_from(STATUS_VALIDOS + [None, "suspenso"])


@st.composite
def licencas(draw, chave, tipo=tipos, situacao=status):
    inicio = draw(datas)
    return sb.License(
        device_id=chave, owner_name=draw(textos), cpf=draw(textos), email=draw(textos), address=draw(textos),
        license_type=draw(tipo), created_by=draw(criadores), status=draw(situacao), start_date=inicio,
        end_date=draw(datas), custom_interval=draw(st.sampled_from([None, 60, 30])),
        features=draw(st.sampled_from([None, "core", "core,extra"])))


def _invalida(lic: sb.License) -> list[sb.Problem]:
    """Os mesmos critérios de parse_license para 'registro recusado' (tipo de licença desconhecido)."""
    if lic.license_type not in sb.LICENSE_PERIOD_MONTHS:
        return [sb.Problem(sb.RecordKind.LICENSE, lic.device_id, sb.ProblemKind.UNKNOWN_LICENSE_TYPE,
                           "tipo desconhecido")]
    return []


@st.composite
def variacao_do_principal(draw, original: sb.License):
    """Cópia do registro do principal no backup, com status, datas e às vezes um campo diferentes."""
    mudancas = {}
    if draw(st.booleans()):
        mudancas["status"] = draw(status)
    if draw(st.booleans()):
        mudancas["end_date"] = draw(datas)
    if draw(st.booleans()):
        mudancas["start_date"] = draw(datas)
    if draw(st.integers(0, 4)) == 0:
        campo = draw(st.sampled_from(list(sb.SETTABLE_FIELDS)))
        valor = draw(tipos) if campo == "license_type" else draw(textos)
        mudancas[campo] = valor
    if original.created_by is None and draw(st.booleans()):
        mudancas["created_by"] = sb.DEFAULT_CREATED_BY  # o que a API grava quando vem vazio
    return dataclasses.replace(original, **mudancas)


@st.composite
def usuarios(draw):
    nomes = draw(st.lists(st.sampled_from(NOMES_USUARIOS), unique=True, max_size=len(NOMES_USUARIOS)))
    return {n: sb.User(n, draw(st.one_of(st.none(), st.just(f"{n}@x.com"))),
                       draw(st.sampled_from(["user", "admin"]))) for n in nomes}


@st.composite
def pares_de_retratos(draw):
    principal, backup, problemas, recusados = {}, {}, [], {}
    for chave in CHAVES:
        onde = draw(st.sampled_from(["so_principal", "so_backup", "os_dois_independentes",
                                     "os_dois_parecidos", "nenhum"]))
        if onde in ("so_principal", "os_dois_independentes", "os_dois_parecidos"):
            lic = draw(licencas(chave))
            if _invalida(lic):
                problemas += _invalida(lic)
                recusados[chave] = lic
            else:
                principal[chave] = lic
        if onde in ("so_backup", "os_dois_independentes"):
            backup[chave] = draw(licencas(chave))
        elif onde == "os_dois_parecidos":
            backup[chave] = draw(variacao_do_principal(principal.get(chave) or recusados[chave]))
    p = sb.Snapshot("https://principal.exemplo.com", draw(usuarios()), principal, problemas, login_username="admin",
                    rejected=recusados)
    b = sb.Snapshot("https://backup.exemplo.com", draw(usuarios()), backup, [], login_username="admin")
    return p, b


def aplicar_no_modelo(plano: sb.Plan, principal: sb.Snapshot, backup: sb.Snapshot):
    """Executa o plano num modelo do backup; devolve (licenças, usuários, chaves tocadas)."""
    modelo = dict(backup.licenses)
    usuarios_modelo = dict(backup.users)
    tocadas = set()
    for acao in plano.actions:
        assert getattr(acao, "side", "backup") == "backup", f"escrita no principal: {acao}"
        if acao.kind == sb.CREATE_USER:
            assert acao.key not in usuarios_modelo, f"usuário criado de novo: {acao.key}"
            assert acao.key in principal.users
            fonte = principal.users[acao.key]
            usuarios_modelo[acao.key] = sb.User(acao.key, fonte.email, fonte.role or "user")
            continue
        assert acao.kind in (sb.CREATE, sb.UPDATE, sb.RENEW, sb.BLOCK, sb.ACTIVATE, sb.SET_CREATED_BY), \
            f"ação inesperada: {acao}"
        fonte = principal.licenses.get(acao.key)
        if fonte is None:  # registro recusado no principal: só o bloqueio que mantém o backup negando
            assert acao.key in principal.rejected and acao.kind == sb.BLOCK, f"ação em registro fora do plano: {acao}"
        depois = sb.model_apply(modelo.get(acao.key), acao, HOJE, source=fonte)
        assert depois is not None, f"a ação apagaria o registro: {acao}"
        modelo[acao.key] = depois
        tocadas.add(acao.key)
    return modelo, usuarios_modelo, tocadas


def _planejar(principal, backup):
    return sb.plan_pair(principal, backup, HOJE)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pares_de_retratos())
def test_plano_aplicado_da_paridade_sem_apagar_nem_mexer_no_que_e_so_do_backup(retratos):
    principal, backup = retratos
    plano = _planejar(principal, backup)
    note(f"ações: {[(a.kind, a.key) for a in plano.actions]}")
    modelo, _usuarios, tocadas = aplicar_no_modelo(plano, principal, backup)
    invalidas = principal.invalid_keys

    assert not getattr(plano, "deletions", []), "o modo padrão nunca apaga"
    # nada some do backup
    assert set(backup.licenses) <= set(modelo)
    # registros só do backup e registros inválidos do principal ficam intactos
    for chave, lic in backup.licenses.items():
        if chave not in principal.licenses and chave not in invalidas:
            assert chave not in tocadas, f"mexeu em {chave} (só no backup)"
            assert modelo[chave] == lic
    for chave in invalidas:
        recusada = principal.rejected[chave]
        if chave not in backup.licenses:
            assert chave not in modelo, f"copiou registro inválido {chave}"
            continue
        # fora do plano, mas o backup nunca libera o que o principal nega
        if recusada is None or not sb.allows(recusada, HOJE):
            assert not sb.allows(modelo[chave], HOJE), f"backup libera {chave}, que o principal nega"
        else:
            assert chave not in tocadas and modelo[chave] == backup.licenses[chave]
    # paridade de veredito e dados copiados para toda licença válida do principal
    for chave, lic in principal.licenses.items():
        if chave in invalidas:
            continue
        assert chave in modelo, f"{chave} não chegou ao backup"
        assert sb.allows(modelo[chave], HOJE) == sb.allows(lic, HOJE), (
            f"veredito diferente em {chave}: principal={lic} backup_depois={modelo[chave]}")
        assert modelo[chave].settable() == lic.desired_settable(), f"dados não copiados em {chave}"
    # o planejador não promete paridade que o modelo não entrega, nem o contrário
    assert plano.parity_mismatches == ()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pares_de_retratos())
def test_planejar_de_novo_sobre_o_resultado_nao_tem_nada_a_fazer(retratos):
    principal, backup = retratos
    plano = _planejar(principal, backup)
    modelo, usuarios_modelo, _ = aplicar_no_modelo(plano, principal, backup)
    depois = sb.Snapshot(backup.server_url, usuarios_modelo, modelo, [], login_username=backup.login_username)
    segundo = _planejar(principal, depois)
    note(f"primeiro: {[(a.kind, a.key) for a in plano.actions]}")
    assert [(a.kind, a.key) for a in segundo.actions] == []
    assert segundo.parity_mismatches == ()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pares_de_retratos())
def test_nao_escreve_onde_dados_e_veredito_ja_batem(retratos):
    principal, backup = retratos
    plano = _planejar(principal, backup)
    com_acao = {a.key for a in plano.actions if a.kind != sb.CREATE_USER}
    for chave, lic in principal.licenses.items():
        if chave in principal.invalid_keys or chave not in backup.licenses:
            continue
        atual = backup.licenses[chave]
        if atual.settable() == lic.desired_settable() and sb.allows(atual, HOJE) == sb.allows(lic, HOJE):
            assert chave not in com_acao, f"escrita desnecessária em {chave}: {atual} × {lic}"
    # usuários: só cria quem não existe no backup, e nunca o nome da conta de login do backup
    criados = {a.key for a in plano.actions if a.kind == sb.CREATE_USER}
    assert not criados & set(backup.users)
    assert backup.login_username not in criados
    assert criados == set(principal.users) - set(backup.users) - {backup.login_username}


# ---------------------------------------------------------------------------
# Falhas aleatórias na execução das cadeias do plano
# ---------------------------------------------------------------------------

@st.composite
def relogios(draw):
    """Data UTC em volta de HOJE e a data local de cada servidor a até um dia dela."""
    base = HOJE + dt.timedelta(days=draw(st.integers(-1, 1)))
    perto = st.integers(-1, 1).map(lambda d: base + dt.timedelta(days=d))
    return sb.Clock(base, draw(perto), draw(perto))


def veredito_no_principal(principal: sb.Snapshot, chave: str, hoje: dt.date) -> bool:
    """Veredito do principal; registro fora do plano sem leitura possível conta como negado."""
    lic = principal.licenses.get(chave, principal.rejected.get(chave))
    return lic is not None and sb.allows(lic, hoje)


def executar_com_falhas(plano: sb.Plan, principal: sb.Snapshot, backup: sb.Snapshot, relogio: sb.Clock,
                        rng: random.Random, chance: float) -> tuple[dict, set[str]]:
    """Como o Executor: cada cadeia em ordem, segue depois de uma falha. Uma ação com falha às vezes
    aconteceu mesmo assim (resposta perdida). Devolve o modelo do backup e as chaves com falha."""
    modelo = dict(backup.licenses)
    falhas = set()
    for cadeia in plano.license_chains:
        for acao in cadeia:
            assert acao.side == "backup", acao
            falhou = rng.random() < chance
            if falhou:
                falhas.add(acao.key)
            if not falhou or rng.random() < 0.3:
                modelo[acao.key] = sb.model_apply(modelo.get(acao.key), acao, relogio.utc,
                                                  principal.licenses.get(acao.key))
    return modelo, falhas


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pares_de_retratos(), relogios(), st.sampled_from([0.0, 0.0, 0.15, 0.5]), st.randoms(use_true_random=False))
def test_backup_so_libera_o_que_o_principal_nega_numa_cadeia_que_falhou(retratos, relogio, chance, rng):
    principal, backup = retratos
    plano = sb.plan_pair(principal, backup, relogio)
    modelo, falhas = executar_com_falhas(plano, principal, backup, relogio, rng, chance)
    note(f"relógio: {relogio}; falhas: {sorted(falhas)}; "
         f"cadeias: {[[(a.kind, a.key) for a in c] for c in plano.license_chains]}")
    do_principal = set(principal.licenses) | set(principal.rejected)
    for chave, lic in modelo.items():
        if not sb.allows(lic, relogio.backup):
            continue
        if chave not in do_principal:  # só no backup: mantida e relatada como "só no backup, liberada"
            assert chave in plano.backup_only_allowed or chave in falhas, chave
            continue
        if not veredito_no_principal(principal, chave, relogio.primary):
            assert chave in falhas, (f"{chave}: liberada no backup e negada no principal sem falha nenhuma: "
                                     f"principal={principal.licenses.get(chave, principal.rejected.get(chave))} "
                                     f"backup={lic}")
    if not falhas:
        for chave, lic in principal.licenses.items():
            assert sb.allows(modelo.get(chave), relogio.backup) == sb.allows(lic, relogio.primary), (
                f"veredito diferente em {chave} sem falha nenhuma: principal={lic} backup={modelo.get(chave)}")
        assert plano.parity_mismatches == ()


# ---------------------------------------------------------------------------
# Sumiço do principal: reembolsos espalhados seguem; uma cópia restaurada sempre para o par
# ---------------------------------------------------------------------------

SESSENTA = [f"S{i:02d}" for i in range(60)]  # S00 a mais antiga (id 1), S59 a mais nova (id 60)


def _retrato_com_ids(chaves, url, base, novas=()):
    ids = {k: base + SESSENTA.index(k) for k in chaves}
    ids.update({k: i for k, i in novas})
    licencas = {k: sb.License(k, "Ana", None, None, None, "anual", "admin", "active", HOJE,
                              sb.period_end("anual", HOJE)) for k in sorted(ids, key=lambda k: -ids[k])}
    return sb.Snapshot(url, {}, licencas, login_username="admin", server_ids=ids)


def _sincronizado():
    p, b = _retrato_com_ids(SESSENTA, "http://p", 1), _retrato_com_ids(SESSENTA, "http://b", 500)
    return sb.next_state(sb.plan_pair(p, b, HOJE), [], None, p, b, "http://p", "http://b")


@st.composite
def reembolsos_espalhados(draw):
    """Até 5 exclusões sem duas vizinhas e fora das duas mais novas (o limite padrão de 60 é 6)."""
    posicoes = sorted(draw(st.sets(st.integers(0, 56), min_size=1, max_size=5)))
    return [p for i, p in enumerate(posicoes) if i == 0 or p - posicoes[i - 1] > 1]


@settings(max_examples=100, deadline=None)
@given(reembolsos_espalhados(), st.booleans())
def test_reembolsos_espalhados_seguem_e_sao_bloqueados_no_backup(posicoes, venda_nova):
    estado = _sincronizado()
    sumidas = {SESSENTA[p] for p in posicoes}
    novas = [("NOVA", 61)] if venda_nova else []  # id novo: o contador não voltou
    p = _retrato_com_ids([k for k in SESSENTA if k not in sumidas], "http://p", 1, novas)
    plan = sb.plan_pair(p, _retrato_com_ids(SESSENTA, "http://b", 500), HOJE, estado)
    assert not plan.halted and plan.loss is None
    assert {a.key for a in plan.actions if a.kind == sb.BLOCK} == sumidas


@settings(max_examples=100, deadline=None)
@given(st.integers(3, 5), reembolsos_espalhados(), st.integers(0, 3))
def test_copia_restaurada_sempre_para_o_par_sem_gravar_nada(perdidas, posicoes, vendas_depois):
    """A cópia perde as `perdidas` mais novas, 3 ou mais (e o que mais tiver sido apagado antes dela); as vendas
    feitas depois da restauração reusam os ids das perdidas. O par para, em qualquer combinação. (Duas mais novas
    sem id reusado são reembolsos ou uma cópia de pouco antes: bloqueadas, código 1 — test_planejador.)"""
    estado = _sincronizado()
    sumidas = set(SESSENTA[-perdidas:]) | {SESSENTA[p] for p in posicoes}
    primeiro_id = 61 - perdidas
    novas = [(f"DEPOIS{i}", primeiro_id + i) for i in range(vendas_depois)]
    p = _retrato_com_ids([k for k in SESSENTA if k not in sumidas], "http://p", 1, novas)
    plan = sb.plan_pair(p, _retrato_com_ids(SESSENTA, "http://b", 500), HOJE, estado)
    assert plan.halted and plan.actions == []
    assert plan.loss.kind == sb.LossKind.RESTORED
    assert set(plan.loss.keys) == sumidas
