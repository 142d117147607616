"""Comparação em três vias (estado salvo × principal × backup): planejador puro, sem rede e sem arquivos.

O estado de partida é sempre construído como a ferramenta o constrói: next_state sobre o plano de
uma sincronização anterior (com os hashes de verdade), nunca escrito à mão.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os

import pytest

import sincronizar_bancos as sb

HOJE = dt.date(2026, 11, 29)
PASSADO = dt.date(2026, 10, 1)
URL_P, URL_B = "https://principal.exemplo.com", "https://backup.exemplo.com"
P, B = "principal", "backup"
CRIAR, ATUALIZAR, RENOVAR = sb.CREATE, sb.UPDATE, sb.RENEW
BLOQUEAR, ATIVAR, EXCLUIR, CRIAR_USUARIO = sb.BLOCK, sb.ACTIVATE, sb.DELETE, sb.CREATE_USER
FILLERS = [f"F{i}" for i in range(4)]  # registros iguais e intocados: nenhuma listagem fica vazia


def lic(device_id="L1", status="active", end=None, license_type="anual", **kw) -> sb.License:
    base = dict(owner_name="José da Silva", cpf="123", email="j@x.com", address="Rua A, 10",
                license_type=license_type, created_by="sergio", status=status, start_date=HOJE,
                end_date=end if end is not None else sb.period_end(license_type, HOJE),
                custom_interval=60, features="core")
    base.update(kw)
    return sb.License(device_id=device_id, **base)


def snap(licencas=(), users=(), url=URL_P) -> sb.Snapshot:
    return sb.Snapshot(url, {u.username: u for u in users}, {ln.device_id: ln for ln in licencas},
                       login_username="admin")


def opcoes(**kw) -> sb.PlanOptions:
    kw.setdefault("mode", "bidirecional")
    return sb.PlanOptions(**kw)


def ok(plan: sb.Plan) -> list[sb.Result]:
    return [sb.Result(a, True) for a in plan.actions]


def aplicar(plan: sb.Plan, principal: sb.Snapshot, backup: sb.Snapshot) -> tuple[sb.Snapshot, sb.Snapshot]:
    """Aplica o plano (ações permitidas) a cópias dos dois lados com o modelo do servidor."""
    lados = {P: dict(principal.licenses), B: dict(backup.licenses)}
    fontes = {P: backup.licenses, B: principal.licenses}  # o upsert num lado copia o registro do outro
    usuarios = {P: dict(principal.users), B: dict(backup.users)}
    for acao in plan.actions:
        if acao.kind == CRIAR_USUARIO:
            usuarios[acao.side][acao.key] = sb.User(acao.key, acao.payload.get("email"), acao.payload["role"])
            continue
        depois = sb.model_apply(lados[acao.side].get(acao.key), acao, HOJE, fontes[acao.side].get(acao.key))
        if depois is None:
            lados[acao.side].pop(acao.key, None)
        else:
            lados[acao.side][acao.key] = depois
    return (sb.Snapshot(URL_P, usuarios[P], lados[P], login_username="admin"),
            sb.Snapshot(URL_B, usuarios[B], lados[B], login_username="admin"))


def sincronizado(principal: list[sb.License], backup: list[sb.License] | None = None, users=(),
                 old: sb.PairState | None = None, modo: str = "bidirecional"
                 ) -> tuple[sb.PairState, sb.Snapshot, sb.Snapshot]:
    """Estado depois de uma sincronização bem-sucedida (hashes reais) e os dois lados como ficaram.
    A primeira sincronização de lados diferentes é feita no modo unidirecional (como o usuário faria
    antes de passar a usar --bidirecional): no bidirecional sem estado as diferenças viram conflito."""
    p = snap(principal, users)
    b = snap(principal if backup is None else backup, users, url=URL_B)
    plan = sb.plan_pair(p, b, HOJE, old, opcoes(force=True, mode=modo))
    assert plan.conflicts == ()
    p2, b2 = aplicar(plan, p, b)
    state = sb.next_state(plan, ok(plan), old, p, b, URL_P, URL_B)
    return state, p2, b2


def estado_base(*licencas: sb.License, users=()) -> sb.PairState:
    """Estado de um par em que os dois lados tinham exatamente `licencas` (mais os FILLERS)."""
    todas = list(licencas) + [lic(k) for k in FILLERS]
    state, p, b = sincronizado(todas, users=users)
    assert p.licenses == b.licenses  # sincronização de dois lados iguais não muda nada
    return state


def planejar(principal, backup, state, users_p=(), users_b=(), fillers=True, **kw) -> sb.Plan:
    extras = [lic(k) for k in FILLERS] if fillers else []
    p = snap([x for x in principal if x is not None] + extras, users_p)
    b = snap([x for x in backup if x is not None] + extras, users_b, url=URL_B)
    return sb.plan_pair(p, b, HOJE, state, opcoes(**kw))


def acoes(plan: sb.Plan) -> list[tuple[str, str, str]]:
    return [(a.kind, a.key, a.side) for a in plan.actions]


# ---------------------------------------------------------------------------
# A tabela: (descrição, principal agora, backup agora, --conflito, ações esperadas, conflito?)
# Estado de partida: L1 = lic() igual nos dois lados.
# ---------------------------------------------------------------------------

BASE = lic()
NOVO_P = lic(owner_name="Nome no principal")
NOVO_B = lic(owner_name="Nome no backup")
NOVO_IGUAL = lic(owner_name="Mesmo nome novo", address="Rua Nova, 1")

CASOS = [
    ("inalterada", BASE, BASE, "relatar", [], False),
    ("mudou só no principal → atualiza o backup", NOVO_P, BASE, "relatar", [(ATUALIZAR, "L1", B)], False),
    ("mudou só no backup → atualiza o principal", BASE, NOVO_B, "relatar", [(ATUALIZAR, "L1", P)], False),
    ("tipo mudou só no backup → atualiza o principal", BASE, lic(license_type="mensal"), "relatar",
     [(ATUALIZAR, "L1", P)], False),
    ("mudou igual nos dois → nada, sem conflito", NOVO_IGUAL, NOVO_IGUAL, "relatar", [], False),
    ("bloqueada igual nos dois → nada, sem conflito", lic(status="blocked"), lic(status="blocked"), "relatar",
     [], False),
    ("mudou diferente nos dois, relatar → nada", NOVO_P, NOVO_B, "relatar", [], True),
    ("mudou diferente nos dois, principal vence → escreve no backup", NOVO_P, NOVO_B, "principal",
     [(ATUALIZAR, "L1", B)], True),
    ("mudou diferente nos dois, backup vence → escreve no principal", NOVO_P, NOVO_B, "backup",
     [(ATUALIZAR, "L1", P)], True),
    ("campo no principal e bloqueio no backup → conflito", NOVO_P, lic(status="blocked"), "relatar", [], True),
    ("campo no principal e bloqueio no backup, principal vence → atualiza (reativa) o backup",
     NOVO_P, lic(status="blocked"), "principal", [(ATUALIZAR, "L1", B)], True),
    ("apagada no principal → apaga no backup", None, BASE, "relatar", [(EXCLUIR, "L1", B)], False),
    # uma exclusão no BACKUP nunca chega ao principal em silêncio (pode ser uma cópia antiga restaurada)
    ("apagada no backup → conflito, nada apagado no principal", BASE, None, "relatar", [], True),
    ("apagada no backup, backup vence → apaga no principal", BASE, None, "backup", [(EXCLUIR, "L1", P)], True),
    ("apagada no backup, principal vence → recria no backup", BASE, None, "principal", [(CRIAR, "L1", B)], True),
    ("apagada nos dois → nada", None, None, "relatar", [], False),
    # conflito em aberto: nada é copiado, mas o backup não libera o que o principal (sem a licença) nega
    ("apagada no principal e alterada no backup, relatar → só bloqueia no backup", None, NOVO_B, "relatar",
     [(BLOQUEAR, "L1", B)], True),
    ("apagada no principal e alterada no backup, principal vence → apaga no backup",
     None, NOVO_B, "principal", [(EXCLUIR, "L1", B)], True),
    ("apagada no principal e alterada no backup, backup vence → recria no principal",
     None, NOVO_B, "backup", [(CRIAR, "L1", P)], True),
    ("apagada no backup e alterada no principal, relatar → nada", NOVO_P, None, "relatar", [], True),
    ("apagada no backup e alterada no principal, principal vence → recria no backup",
     NOVO_P, None, "principal", [(CRIAR, "L1", B)], True),
    ("apagada no backup e bloqueada no principal, backup vence → apaga no principal",
     lic(status="blocked"), None, "backup", [(EXCLUIR, "L1", P)], True),
    ("bloqueada no principal → bloqueia o backup", lic(status="blocked"), BASE, "relatar",
     [(BLOQUEAR, "L1", B)], False),
    ("bloqueada no backup → bloqueia o principal", BASE, lic(status="blocked"), "relatar",
     [(BLOQUEAR, "L1", P)], False),
    ("dados e bloqueio no backup → atualiza e bloqueia o principal",
     BASE, lic(status="blocked", owner_name="Novo"), "relatar", [(ATUALIZAR, "L1", P), (BLOQUEAR, "L1", P)], False),
    ("pendente no backup → principal bloqueado (pending não é definível)", BASE, lic(status="pending"), "relatar",
     [(BLOQUEAR, "L1", P)], False),
]


@pytest.mark.parametrize("descricao,principal,backup,conflito,esperado,tem_conflito", CASOS,
                         ids=[c[0] for c in CASOS])
def test_tres_vias(descricao, principal, backup, conflito, esperado, tem_conflito):
    state = estado_base(BASE)
    plan = planejar([principal], [backup], state, conflict=conflito)
    assert acoes(plan) == esperado
    assert [c.key for c in plan.conflicts] == (["L1"] if tem_conflito else [])
    assert all(c.resolution == conflito for c in plan.conflicts)
    assert plan.held_deletions == () and plan.limits == ()
    assert not plan.first_sync
    # Sem conflito aberto, os dois lados terminam iguais (dados definíveis e veredito), ou ambos sem a licença.
    if not tem_conflito or conflito != "relatar":
        p = snap([x for x in [principal] if x is not None])
        b = snap([x for x in [backup] if x is not None], url=URL_B)
        p2, b2 = aplicar(plan, p, b)
        assert set(p2.licenses) == set(b2.licenses)
        for chave in p2.licenses:
            assert p2.licenses[chave].desired_settable() == b2.licenses[chave].desired_settable()
            assert sb.allows(p2.licenses[chave], HOJE) == sb.allows(b2.licenses[chave], HOJE)
        if tem_conflito:  # a versão vencedora é a que ficou
            vencedora = principal if conflito == "principal" else backup
            if vencedora is None:
                assert "L1" not in p2.licenses
            else:
                assert p2.licenses["L1"].settable() == vencedora.settable()
                assert sb.allows(p2.licenses["L1"], HOJE) == sb.allows(vencedora, HOJE)


# ---------------------------------------------------------------------------
# Criadas desde o último estado (a chave não está no estado)
# ---------------------------------------------------------------------------

CASOS_CRIADAS = [
    ("criada igual nos dois → nada", lic("N"), lic("N"), [], False),
    ("criada diferente nos dois → conflito", lic("N", owner_name="A"), lic("N", owner_name="B"), [], True),
    ("criada com status diferente nos dois → conflito (e o backup não libera o que o principal nega)",
     lic("N", status="blocked"), lic("N"), [(BLOQUEAR, "N", B)], True),
    ("criada só no principal → cria no backup", lic("N"), None, [(CRIAR, "N", B)], False),
    ("criada só no backup → cria no principal", None, lic("N"), [(CRIAR, "N", P)], False),
    ("criada bloqueada só no backup → cria e bloqueia no principal", None, lic("N", status="blocked"),
     [(CRIAR, "N", P), (BLOQUEAR, "N", P)], False),
    ("criada vencida só no principal → cria e bloqueia no backup (datas não copiáveis)", lic("N", end=PASSADO),
     None, [(CRIAR, "N", B), (BLOQUEAR, "N", B)], False),
]


@pytest.mark.parametrize("descricao,principal,backup,esperado,tem_conflito", CASOS_CRIADAS,
                         ids=[c[0] for c in CASOS_CRIADAS])
def test_criadas_desde_o_estado(descricao, principal, backup, esperado, tem_conflito):
    state = estado_base(BASE)
    plan = planejar([BASE, principal], [BASE, backup], state)
    assert acoes(plan) == esperado
    assert [c.key for c in plan.conflicts] == (["N"] if tem_conflito else [])
    assert plan.deletions == () and plan.held_deletions == ()


def test_conflito_lista_as_duas_versoes_campo_a_campo():
    state = estado_base(BASE)
    plan = planejar([lic(owner_name="Ana P", email="p@x.com")], [lic(owner_name="Ana B", status="blocked")], state)
    (conflito,) = [c.as_dict() for c in plan.conflicts]  # como o --json e o histórico mostram
    assert conflito["chave"] == "L1" and conflito["resolucao"] == "relatar"
    assert conflito["principal_existe"] and conflito["backup_existe"]
    campos = {c["campo"]: (c["principal"], c["backup"]) for c in conflito["campos"]}
    assert campos == {"owner_name": ("Ana P", "Ana B"), "email": ("p@x.com", "j@x.com"),
                      "status": ("active", "blocked")}
    # apagada de um lado: todos os campos aparecem, o lado apagado como None
    plan = planejar([None], [lic(owner_name="Ana B")], state)
    (conflito,) = [c.as_dict() for c in plan.conflicts]
    assert not conflito["principal_existe"] and conflito["backup_existe"]
    campos = {c["campo"]: (c["principal"], c["backup"]) for c in conflito["campos"]}
    assert campos["owner_name"] == (None, "Ana B") and campos["status"] == (None, "active")
    assert "apagada no principal" in conflito["descricao"]


# ---------------------------------------------------------------------------
# Mudanças derivadas pela própria ferramenta não voltam como "o backup mudou"
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("principal", [
    lic(status="pending"),
    lic(end=PASSADO),  # vencida no principal; no backup as datas são novas
    lic(status="blocked"),
], ids=["pendente", "vencida", "bloqueada"])
def test_bloqueio_derivado_nao_volta_como_mudanca_do_backup(principal):
    # O principal passou a negar; o backup está ativo e no prazo: a ferramenta o bloqueia para negar igual.
    state, p, b = sincronizado([principal], [lic()], old=estado_base(lic()))
    assert b.licenses["L1"].status == "blocked"
    assert state.licenses["L1"][3] == "blocked"  # o estado guarda o que a ferramenta derivou
    plan = sb.plan_pair(p, b, HOJE, state, opcoes())
    assert acoes(plan) == [] and plan.conflicts == ()
    # Uma edição posterior no principal ainda chega ao backup, sem conflito, mantendo a negação.
    editado = dataclasses.replace(p.licenses["L1"], owner_name="Nome Novo")
    plan = sb.plan_pair(snap([editado]), b, HOJE, state, opcoes())
    assert plan.conflicts == ()
    assert [k for k, _c, lado in acoes(plan)] == [ATUALIZAR, BLOQUEAR] and {lado for *_, lado in acoes(plan)} == {B}


def test_periodo_reiniciado_pela_ferramenta_nao_volta_como_mudanca():
    state, p, b = sincronizado([lic()], [lic(end=PASSADO)], old=estado_base(lic()))
    assert acoes(planejar([lic()], [lic(end=PASSADO)], estado_base(lic()))) == [(RENOVAR, "L1", B)]
    assert b.licenses["L1"].end_date > HOJE
    plan = sb.plan_pair(p, b, HOJE, state, opcoes())
    assert acoes(plan) == [] and plan.conflicts == ()


def test_pendente_ativada_no_principal_ativa_o_backup_bloqueado_pela_ferramenta():
    state, p, b = sincronizado([lic(status="pending")], [lic()], old=estado_base(lic()))
    plan = sb.plan_pair(snap([lic()]), b, HOJE, state, opcoes())
    assert acoes(plan) == [(ATIVAR, "L1", B)] and plan.conflicts == ()


def test_vencida_renovada_no_principal_ativa_o_backup_bloqueado_pela_ferramenta():
    state, p, b = sincronizado([lic(end=PASSADO)], [lic()], old=estado_base(lic()))
    renovada = dataclasses.replace(p.licenses["L1"], end_date=dt.date(2027, 6, 1))
    plan = sb.plan_pair(snap([renovada]), b, HOJE, state, opcoes())
    assert acoes(plan) == [(ATIVAR, "L1", B)] and plan.conflicts == ()


@pytest.mark.parametrize("lado", [P, B])
def test_ativar_uma_licenca_bloqueada_dos_dois_lados_propaga(lado):
    state = estado_base(lic(status="blocked"))
    principal = lic() if lado == P else lic(status="blocked")
    backup = lic() if lado == B else lic(status="blocked")
    plan = planejar([principal], [backup], state)
    assert acoes(plan) == [(ATIVAR, "L1", B if lado == P else P)] and plan.conflicts == ()


# ---------------------------------------------------------------------------
# Sem estado (primeira sincronização) e estado inválido
# ---------------------------------------------------------------------------

def test_primeira_sincronizacao_nao_apaga_e_relata_diferencas_como_conflito():
    principal = [lic("IGUAL"), lic("DIF", owner_name="P"), lic("SO_P"), lic("BLQ", status="blocked")]
    backup = [lic("IGUAL"), lic("DIF", owner_name="B"), lic("SO_B"), lic("BLQ")]
    plan = sb.plan_pair(snap(principal), snap(backup, url=URL_B), HOJE, None, opcoes())
    assert plan.first_sync
    # BLQ: em conflito, mas bloqueada no backup enquanto isso (o principal nega)
    assert acoes(plan) == [(BLOQUEAR, "BLQ", B), (CRIAR, "SO_B", P), (CRIAR, "SO_P", B)]
    assert sorted(c.key for c in plan.conflicts) == ["BLQ", "DIF"]
    assert all("primeira sincronização" in c.why for c in plan.conflicts)
    assert plan.deletions == () and plan.held_deletions == ()
    # os registros em conflito aberto não entram no estado: serão comparados de novo
    state = sb.next_state(plan, ok(plan), None, snap(principal), snap(backup, url=URL_B), URL_P, URL_B)
    assert set(state.licenses) == {"IGUAL", "SO_P", "SO_B"}


@pytest.mark.parametrize("espelhar", [False, True])
def test_primeira_sincronizacao_unidirecional_nunca_apaga(espelhar):
    plan = sb.plan_pair(snap([lic("A")]), snap([lic("A"), lic("Z")], url=URL_B), HOJE, None,
                        sb.PlanOptions(mirror=espelhar))
    assert plan.deletions == () and plan.held_deletions == ()
    assert plan.backup_only_licenses == ("Z",)


def test_espelhar_apaga_so_do_backup_quando_ha_estado():
    state = estado_base(lic("A"), lic("Z"))
    principal = [lic("A")] + [lic(k) for k in FILLERS]
    backup = principal + [lic("Z"), lic("NOVA_NO_BACKUP")]
    plan = sb.plan_pair(snap(principal), snap(backup, url=URL_B), HOJE, state,
                        sb.PlanOptions(mirror=True, max_deletions=5))
    assert acoes(plan) == [(EXCLUIR, "NOVA_NO_BACKUP", B), (EXCLUIR, "Z", B)]
    assert all(a.side == B for a in plan.actions)
    # sem --espelhar, nada é apagado e as duas ficam listadas como "só no backup"; a que já tinha sido
    # sincronizada (Z: apagada no principal) é bloqueada para negar igual; a nunca sincronizada fica
    # como está e é listada como liberada só no backup
    plan = sb.plan_pair(snap(principal), snap(backup, url=URL_B), HOJE, state, sb.PlanOptions())
    assert acoes(plan) == [(BLOQUEAR, "Z", B)] and plan.backup_only_licenses == ("NOVA_NO_BACKUP", "Z")
    assert plan.backup_only_allowed == ("NOVA_NO_BACKUP",) and plan.deletions == ()


def test_estado_corrompido_e_tratado_como_primeira_sincronizacao(tmp_path):
    state = estado_base(BASE)
    sb.save_state(str(tmp_path), state)
    carregado, aviso = sb.load_state(str(tmp_path), URL_P, URL_B)
    assert aviso is None and carregado == state
    caminho = sb.state_path(str(tmp_path), URL_P, URL_B)
    with open(caminho, "w", encoding="utf-8") as arq:
        arq.write('{"versao": 1, "principal": ')
    carregado, aviso = sb.load_state(str(tmp_path), URL_P, URL_B)
    assert carregado is None and "primeira" in aviso
    # de outro par ou de outra versão: também recusado
    sb.save_state(str(tmp_path), dataclasses.replace(state, backup_url="https://outro.exemplo.com"))
    os.replace(sb.state_path(str(tmp_path), URL_P, "https://outro.exemplo.com"), caminho)
    assert sb.load_state(str(tmp_path), URL_P, URL_B)[0] is None


# ---------------------------------------------------------------------------
# Travas de exclusão
# ---------------------------------------------------------------------------

def _chaves(n, prefixo="K"):
    return [f"{prefixo}{i:03d}" for i in range(n)]


DIRECAO = sb.Direction(sb.ServerConfig("principal", URL_P, "admin", "x"),
                       sb.ServerConfig("backup", URL_B, "admin", "x"))


def texto_da_perda(plan: sb.Plan) -> str:
    return sb.loss_text(plan.loss, DIRECAO, plan.halted)


def test_outro_lado_vazio_retem_todas_as_exclusoes_e_sugere_restaurar():
    todas = [lic(k) for k in _chaves(10)]
    state, _p, _b = sincronizado(todas)
    plan = sb.plan_pair(snap([]), snap(todas, url=URL_B), HOJE, state, opcoes(max_deletions=1000))
    assert plan.halted and plan.deletions == () and plan.actions == []
    assert sorted(a.key for a in plan.held_deletions) == _chaves(10)
    assert {a.side for a in plan.held_deletions} == {B}
    assert (plan.loss.side, plan.loss.kind, plan.loss.would_delete) == (P, sb.LossKind.EMPTY, 10)
    texto = texto_da_perda(plan)
    assert "VAZIA" in texto and f"restaurar --de {URL_B}" in texto
    assert "apagaria 10 licenças do BACKUP" in texto and "--forcar --max-exclusoes 10" in texto
    # o estado não esquece os registros retidos
    novo = sb.next_state(plan, [], state, snap([]), snap(todas, url=URL_B), URL_P, URL_B)
    assert set(novo.licenses) == set(_chaves(10))


def test_backup_vazio_tambem_retem_as_exclusoes_no_principal():
    todas = [lic(k) for k in _chaves(10)]
    state, _p, _b = sincronizado(todas)
    plan = sb.plan_pair(snap(todas), snap([], url=URL_B), HOJE, state, opcoes(max_deletions=1000))
    assert plan.halted and plan.deletions == () and plan.actions == []
    assert (plan.loss.side, plan.loss.kind, plan.loss.would_delete) == (B, sb.LossKind.EMPTY, 10)
    # nem --forcar sozinho, nem --forcar com --conflito backup apagam o principal sem o número explícito
    for conflito in ("relatar", "backup"):
        forcado = sb.plan_pair(snap(todas), snap([], url=URL_B), HOJE, state, opcoes(force=True, conflict=conflito))
        assert forcado.halted and forcado.actions == []
    texto = texto_da_perda(plan)
    assert "BACKUP" in texto and "VAZIA" in texto and "apagaria 10 licenças do PRINCIPAL" in texto
    assert f"{sb.python_command()} sincronizar_bancos.py --backup {URL_B}" in texto  # recompleta o backup


def test_espelhar_com_principal_vazio_retem_tudo():
    todas = [lic(k) for k in _chaves(10)]
    state, _p, _b = sincronizado(todas)
    plan = sb.plan_pair(snap([]), snap(todas, url=URL_B), HOJE, state,
                        sb.PlanOptions(mirror=True, max_deletions=1000))
    assert plan.halted and plan.deletions == () and len(plan.held_deletions) == 10
    assert "restaurar" in texto_da_perda(plan)


def test_perdeu_mais_da_metade_desde_o_estado_retem():
    todas = [lic(k) for k in _chaves(10)]
    state, _p, _b = sincronizado(todas)
    plan = sb.plan_pair(snap(todas[:4]), snap(todas, url=URL_B), HOJE, state, opcoes(max_deletions=1000))
    assert plan.deletions == () and len(plan.held_deletions) == 6
    assert plan.loss.kind == sb.LossKind.HALF
    assert "mais da metade" in texto_da_perda(plan) and "10 → 4" in texto_da_perda(plan)
    # exatamente a metade não é "mais da metade"
    plan = sb.plan_pair(snap(todas[:5]), snap(todas, url=URL_B), HOJE, state, opcoes(max_deletions=1000))
    assert len(plan.deletions) == 5 and plan.held_deletions == () and plan.loss is None


def test_acima_de_max_exclusoes_retem():
    todas = [lic(k) for k in _chaves(10)]
    state, _p, _b = sincronizado(todas)
    plan = sb.plan_pair(snap(todas[:8]), snap(todas, url=URL_B), HOJE, state, opcoes(max_deletions=1))
    assert plan.deletions == () and len(plan.held_deletions) == 2
    assert plan.limits == (sb.DeletionLimit(B, 2, 1),)
    assert "limite de 1" in sb.limits_text(plan, DIRECAO) and "--max-exclusoes" in sb.limits_text(plan, DIRECAO)
    plan = sb.plan_pair(snap(todas[:8]), snap(todas, url=URL_B), HOJE, state, opcoes(max_deletions=2))
    assert sorted(a.key for a in plan.deletions) == _chaves(10)[8:] and plan.held_deletions == ()
    plan = sb.plan_pair(snap(todas[:9]), snap(todas, url=URL_B), HOJE, state, opcoes(max_deletions=0))
    assert plan.deletions == () and len(plan.held_deletions) == 1


@pytest.mark.parametrize("total,limite", [(0, 1), (1, 1), (5, 1), (10, 1), (11, 2), (30, 3), (31, 4), (100, 10),
                                          (101, 11), (490, 49), (491, 50), (500, 50), (10_000, 50)])
def test_limite_padrao_10_por_cento_arredondado_para_cima_entre_1_e_50(total, limite):
    assert sb.default_max_deletions(total) == limite


@pytest.mark.parametrize("apagadas,retidas", [(3, False), (4, True)])
def test_limite_padrao_aplicado_no_plano(apagadas, retidas):
    todas = [lic(k) for k in _chaves(30)]
    state, _p, _b = sincronizado(todas)
    plan = sb.plan_pair(snap(todas[apagadas:]), snap(todas, url=URL_B), HOJE, state, opcoes())
    assert len(plan.held_deletions if retidas else plan.deletions) == apagadas
    assert len(plan.deletions if retidas else plan.held_deletions) == 0
    if retidas:
        assert "limite de 3" in sb.limits_text(plan, DIRECAO)


def test_forcar_sozinho_nunca_apaga_o_que_um_lado_vazio_sugere():
    """--forcar sozinho não apaga nada inferido de um lado que voltou vazio: só com o número explícito."""
    todas = [lic(k) for k in _chaves(10)]
    state, _p, _b = sincronizado(todas)
    for opcoes_forcar in (opcoes(force=True), opcoes(force=True, max_deletions=9)):
        plan = sb.plan_pair(snap([]), snap(todas, url=URL_B), HOJE, state, opcoes_forcar)
        assert plan.halted and plan.deletions == () and plan.actions == []
    plan = sb.plan_pair(snap([]), snap(todas, url=URL_B), HOJE, state, opcoes(force=True, max_deletions=10))
    assert not plan.halted and sorted(a.key for a in plan.deletions) == _chaves(10)
    assert "--forcar: seguindo apesar de" in texto_da_perda(plan) and "VAZIA" in texto_da_perda(plan)


def test_trava_retem_tudo_dos_dois_lados_quando_um_lado_passa_do_limite():
    todas = [lic(k) for k in _chaves(20)]
    state, _p, _b = sincronizado(todas)
    # 3 apagadas no principal (acima do limite de 2 no backup); a apagada no backup vira conflito
    plan = sb.plan_pair(snap(todas[3:]), snap(todas[:19], url=URL_B), HOJE, state, opcoes())
    assert plan.deletions == ()
    assert sorted((a.key, a.side) for a in plan.held_deletions) == [("K000", B), ("K001", B), ("K002", B)]
    assert [c.key for c in plan.conflicts] == ["K019"]


def test_trava_de_metade_continua_valendo_na_execucao_seguinte():
    todas = [lic(k) for k in _chaves(20)]
    state, _p, _b = sincronizado(todas)
    principal, backup = snap(todas[:4]), snap(todas, url=URL_B)
    opts = opcoes(max_deletions=1000)  # isola a trava de "perdeu mais da metade"
    plan = sb.plan_pair(principal, backup, HOJE, state, opts)
    assert plan.deletions == () and len(plan.held_deletions) == 16
    state2 = sb.next_state(plan, ok(plan), state, principal, backup, URL_P, URL_B)
    plan2 = sb.plan_pair(principal, backup, HOJE, state2, opts)  # nada mudou nos servidores
    assert plan2.deletions == () and len(plan2.held_deletions) == 16


# ---------------------------------------------------------------------------
# Usuários: criados no lado que não os tem, nunca apagados
# ---------------------------------------------------------------------------

U = sb.User


def test_usuarios_criados_no_lado_que_nao_os_tem():
    state = estado_base(BASE, users=[U("ana", None, "user")])
    plan = planejar([BASE], [BASE], state, users_p=[U("ana", None, "user"), U("bia", "b@x.com", "admin")],
                    users_b=[U("ana", None, "user"), U("caio", None, "user")])
    assert acoes(plan) == [(CRIAR_USUARIO, "bia", B), (CRIAR_USUARIO, "caio", P)]
    assert plan.user_actions[0].payload == {"username": "bia", "email": "b@x.com", "role": "admin"}
    assert plan.backup_only_users == ()


def test_usuario_apagado_de_um_lado_nao_e_apagado_nem_recriado():
    state = estado_base(BASE, users=[U("ana", None, "user"), U("bia", None, "user")])
    assert state.users == {"ana", "bia"}
    plan = planejar([BASE], [BASE], state, users_p=[U("bia", None, "user")],
                    users_b=[U("ana", None, "user"), U("bia", None, "user")])
    assert acoes(plan) == []
    assert any(d[1] == "ana" and "apagado no principal" in d[5] for d in plan.divergences)


def test_unidirecional_nao_cria_usuario_no_principal_e_nunca_apaga():
    plan = sb.plan_pair(snap([], [U("ana", None, "user")]), snap([], [U("zeca", None, "user")], url=URL_B), HOJE,
                        None, sb.PlanOptions(mirror=True))
    assert acoes(plan) == [(CRIAR_USUARIO, "ana", B)]
    assert plan.backup_only_users == ("zeca",)


# ---------------------------------------------------------------------------
# Estado: incremental e o que ele guarda
# ---------------------------------------------------------------------------

def test_execucao_sem_mudancas_nao_planeja_nada():
    principal = [lic("A"), lic("B", status="blocked"), lic("C", status="pending"), lic("D", end=PASSADO),
                 lic("E", license_type="vitalicia", end=None)]
    backup = [lic("A", owner_name="Velho"), lic("D"), lic("X")]
    state, p, b = sincronizado(principal, backup, modo="unidirecional")
    assert set(b.licenses) == {"A", "B", "C", "D", "E", "X"}
    # passando a usar --bidirecional: X (só no backup e fora do estado) é criada no principal, e só isso
    plan = sb.plan_pair(p, b, HOJE, state, opcoes())
    assert acoes(plan) == [(CRIAR, "X", P)] and plan.conflicts == ()
    state, p, b = sb.next_state(plan, ok(plan), state, p, b, URL_P, URL_B), *aplicar(plan, p, b)
    plan = sb.plan_pair(p, b, HOJE, state, opcoes())
    assert acoes(plan) == [] and plan.conflicts == () and plan.deletions == ()
    assert plan.parity_mismatches == () and plan.current_mismatches == ()


def test_estado_mantem_versao_antiga_de_conflito_falha_e_exclusao_retida():
    todas = [lic(k) for k in _chaves(10)]
    state, _p, _b = sincronizado(todas)
    principal = snap([lic("K000", owner_name="P")] + todas[1:])
    backup = snap([lic("K000", owner_name="B"), lic("K001", owner_name="novo")] + todas[2:], url=URL_B)
    plan = sb.plan_pair(principal, backup, HOJE, state, opcoes())
    assert [c.key for c in plan.conflicts] == ["K000"]
    assert acoes(plan) == [(ATUALIZAR, "K001", P)]
    falhou = [sb.Result(plan.actions[0], False, "HTTP 500")]
    novo = sb.next_state(plan, falhou, state, principal, backup, URL_P, URL_B)
    assert novo.licenses["K000"] == state.licenses["K000"]
    assert novo.licenses["K001"] == state.licenses["K001"]  # falhou: será vista de novo
    deu_certo = sb.next_state(plan, ok(plan), state, principal, backup, URL_P, URL_B)
    assert deu_certo.licenses["K001"] != state.licenses["K001"]
    assert deu_certo.licenses["K001"][0] == sb.fingerprint(lic("K001", owner_name="novo"))


# ---------------------------------------------------------------------------
# Conflito aberto e paridade; created_by nulo
# (cadeia cortada no meio por kill ou falha: ver test_bidirecional_e2e.py, o conserto envolve o executor)
# ---------------------------------------------------------------------------

def test_conflito_aberto_com_veredito_diferente_bloqueia_o_backup_enquanto_isso():
    state = estado_base(BASE)
    plan = planejar([lic(owner_name="P", status="blocked")], [lic(owner_name="B")], state)
    assert [c.key for c in plan.conflicts] == ["L1"] and acoes(plan) == [(BLOQUEAR, "L1", B)]
    assert "L1" in plan.current_mismatches and "L1" not in plan.parity_mismatches
    # ao contrário (o backup nega e o principal libera), nada é escrito e a diferença fica na paridade
    plan = planejar([lic(owner_name="P")], [lic(owner_name="B", status="blocked")], state)
    assert acoes(plan) == [] and "L1" in plan.parity_mismatches


def test_created_by_nulo_no_backup_nao_gera_escrita_na_execucao_seguinte():
    state = estado_base(BASE)
    legado = lic("LEG", created_by=None, status="blocked")
    state, p, b = sincronizado([BASE], [BASE, legado], old=state)
    assert p.licenses["LEG"].created_by == "admin" and b.licenses["LEG"].created_by is None
    plan = sb.plan_pair(p, b, HOJE, state, opcoes())
    assert acoes(plan) == []


# ---------------------------------------------------------------------------
# Diário de escritas de uma execução anterior
# ---------------------------------------------------------------------------

def test_diario_antigo_nao_leva_versao_de_copia_antiga_para_o_principal():
    def lic(nome):
        return sb.License("K", nome, None, None, None, "anual", "admin", "active", HOJE, dt.date(2027, 11, 29))
    v1, v2 = lic("Nome antigo"), lic("Nome novo")
    base = sb.StateEntry(sb.fingerprint(v1), sb.fingerprint(v1), "active", "active", None, None)
    estado = sb.PairState("p", "b", 1, 1, set(), {"K": base})
    # uma execução anterior escreveu v2 no principal (do backup) e perdeu a resposta; o backup voltou a v1
    diario = {"K": sb.JournalEntry(sb.Side.BACKUP, [[sb.fingerprint(v2), "active"]], sb.version_of(v2))}
    plan = sb.plan_pair(sb.Snapshot("p", {}, {"K": v2}), sb.Snapshot("b", {}, {"K": v1}), HOJE, estado,
                        sb.PlanOptions(mode=sb.Mode.TWO_WAY, journal=diario))
    assert not [a for a in plan.actions if a.side == "principal"]
