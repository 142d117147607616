"""Propriedades da sincronização bidirecional (três vias), com hypothesis e um modelo dos dois servidores.

Sequências aleatórias de edições nos dois lados entre sincronizações (criar, mudar um campo definível,
bloquear/ativar, apagar, salvar de novo pela API; no principal ou no backup). Cada sincronização é simulada
como o script a faz:
plan_pair com o estado salvo → as ações do plano aplicadas a cópias em memória dos dois lados com
sb.model_apply (Action.side escolhe a cópia) → next_state com todos os resultados ok → repete.

Propriedades:
- nenhuma edição se perde sem ser relatada: o valor editado chega ao outro lado ou a chave aparece em
  plan.conflicts;
- depois de uma execução sem conflito aberto, os dois lados concordam em todos os campos definíveis e no
  veredito (sb.allows);
- uma execução sem edições desde a anterior não planeja nenhuma ação (incremental).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import sincronizar_bancos as sb

HOJE = dt.date(2026, 11, 29)
URL_P, URL_B = "https://principal.exemplo.com", "https://backup.exemplo.com"
CHAVES = [f"K{i}" for i in range(6)]
LADOS = ("principal", "backup")
OUTRO = {"principal": "backup", "backup": "principal"}

# Valores como a API os guarda: textos sem espaços nas pontas, created_by nunca vazio.
VALORES = {
    "owner_name": [None, "José da Silva", "Maria Conceição", "Ótica Visão"],
    "cpf": [None, "123", "456"],
    "email": [None, "a@x.com", "b@x.com"],
    "address": [None, "Rua A, 10", "Av. B, 2"],
    "license_type": list(sb.LICENSE_PERIOD_MONTHS),
    "created_by": ["admin", "sergio", "conceicao"],
}


@st.composite
def licenca_nova(draw, chave: str) -> sb.License:
    campos = {campo: draw(st.sampled_from(valores)) for campo, valores in VALORES.items()}
    inicio = HOJE
    fim = sb.period_end(campos["license_type"], inicio)
    if draw(st.integers(0, 4)) == 0:  # registro antigo, já vencido (datas vindas de fora da API)
        inicio, fim = HOJE - dt.timedelta(days=400), HOJE - dt.timedelta(days=35)
    status = draw(st.sampled_from(["active", "active", "blocked", "pending"]))
    return sb.License(device_id=chave, **campos, status=status, start_date=inicio, end_date=fim,
                      custom_interval=60, features="core")


@st.composite
def edicao(draw):
    tipo = draw(st.sampled_from(["criar", "alterar", "alterar", "bloquear", "ativar", "apagar", "reenviar"]))
    lado = draw(st.sampled_from(LADOS))
    chave = draw(st.sampled_from(CHAVES))
    if tipo == "criar":
        return (tipo, lado, chave, draw(licenca_nova(chave)))
    if tipo == "alterar":
        campo = draw(st.sampled_from(list(VALORES)))
        return (tipo, lado, chave, (campo, draw(st.sampled_from(VALORES[campo]))))
    return (tipo, lado, chave, None)


@st.composite
def cenarios(draw):
    iniciais = [draw(licenca_nova(c)) for c in CHAVES if draw(st.booleans())]
    rodadas = draw(st.lists(st.lists(edicao(), max_size=6), min_size=1, max_size=4))
    conflito = draw(st.sampled_from(["relatar", "principal", "backup"]))
    return iniciais, rodadas, conflito


def editar(lados: dict[str, dict[str, sb.License]], ed) -> bool:
    """Aplica uma edição de usuário a um lado (criar só se não existe; o resto só se existe)."""
    tipo, lado, chave, arg = ed
    dados = lados[lado]
    atual = dados.get(chave)
    if tipo == "criar":
        if atual is not None:
            return False
        dados[chave] = arg
    elif atual is None:
        return False
    elif tipo == "alterar":
        dados[chave] = dataclasses.replace(atual, **{arg[0]: arg[1]})
    elif tipo == "bloquear":
        dados[chave] = dataclasses.replace(atual, status="blocked")
    elif tipo == "ativar":
        dados[chave] = dataclasses.replace(atual, status="active")
    elif tipo == "reenviar":  # o revendedor salva de novo pela API: upsert (datas recomeçam, status ativo)
        dados[chave] = sb.model_upsert(atual, atual, HOJE)
    else:
        del dados[chave]
    return True


def retratos(lados) -> tuple[sb.Snapshot, sb.Snapshot]:
    return (sb.Snapshot(URL_P, {}, dict(lados["principal"]), login_username="admin"),
            sb.Snapshot(URL_B, {}, dict(lados["backup"]), login_username="admin"))


def sincronizar(lados, state, opcoes):
    """Uma execução simulada: planeja, aplica no modelo dos dois lados, calcula o novo estado."""
    p, b = retratos(lados)
    plan = sb.plan_pair(p, b, HOJE, state, opcoes)
    fontes = {"principal": b.licenses, "backup": p.licenses}  # o upsert num lado copia o registro do outro
    depois = {lado: dict(lados[lado]) for lado in LADOS}
    for acao in plan.actions:
        assert acao.kind != sb.CREATE_USER
        novo = sb.model_apply(depois[acao.side].get(acao.key), acao, HOJE, fontes[acao.side].get(acao.key))
        if novo is None:
            depois[acao.side].pop(acao.key, None)
        else:
            depois[acao.side][acao.key] = novo
    resultados = [sb.Result(a, True) for a in plan.actions]
    novo_estado = sb.next_state(plan, resultados, state, p, b, URL_P, URL_B)
    return plan, depois, novo_estado


def mudou_desde(antes: sb.License | None, agora: sb.License | None) -> bool:
    """Mudança que um usuário perceberia: apareceu/sumiu, dados definíveis, status ou veredito."""
    if antes is None or agora is None:
        return (antes is None) != (agora is None)
    return (antes.settable() != agora.settable() or antes.status != agora.status
            or sb.allows(antes, HOJE) != sb.allows(agora, HOJE))


def mesmo_registro(p: sb.License | None, b: sb.License | None) -> bool:
    if p is None or b is None:
        return p is None and b is None
    return p.settable() == b.settable() and p.status == b.status and sb.allows(p, HOJE) == sb.allows(b, HOJE)


def concordam(lados, chave) -> bool:
    p, b = lados["principal"].get(chave), lados["backup"].get(chave)
    if p is None or b is None:
        return p is None and b is None
    return p.desired_settable() == b.desired_settable() and sb.allows(p, HOJE) == sb.allows(b, HOJE)


def tem_versao(lados, chave, versao: sb.License | None) -> bool:
    """Os dois lados têm `versao` (dados definíveis e veredito), ou os dois não têm a chave."""
    for lado in LADOS:
        atual = lados[lado].get(chave)
        if (atual is None) != (versao is None):
            return False
        if atual is not None and (atual.desired_settable() != versao.desired_settable()
                                  or sb.allows(atual, HOJE) != sb.allows(versao, HOJE)):
            return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cenarios())
def test_edicoes_nos_dois_lados_convergem_ou_viram_conflito(cenario):
    iniciais, rodadas, conflito = cenario
    # force com um número explícito: as travas de exclusão têm seus próprios testes; aqui toda exclusão planejada
    # é aplicada (--forcar sozinho não passa por um lado que voltou vazio).
    opcoes = sb.PlanOptions(mode="bidirecional", conflict=conflito, force=True, max_deletions=1000)
    lados = {lado: {ln.device_id: ln for ln in iniciais} for lado in LADOS}
    plan, lados, state = sincronizar(lados, None, opcoes)  # primeira sincronização de lados iguais
    assert plan.actions == [] and plan.conflicts == ()
    abertos: set[str] = set()  # conflitos relatados e ainda não resolvidos (relatar)

    for numero, rodada in enumerate(rodadas):
        ultimo = {lado: dict(lados[lado]) for lado in LADOS}  # como cada lado ficou na última execução
        for ed in rodada:
            editar(lados, ed)
        antes = {lado: dict(lados[lado]) for lado in LADOS}
        mudou = {lado: {c for c in CHAVES if mudou_desde(ultimo[lado].get(c), antes[lado].get(c))} for lado in LADOS}
        plan, lados, state = sincronizar(lados, state, opcoes)
        note(f"rodada {numero}: edições={rodada}")
        note(f"  ações={[(a.kind, a.key, a.side) for a in plan.actions]}")
        note(f"  conflitos={[(c.key, c.why) for c in plan.conflicts]}")
        em_conflito = {c.key for c in plan.conflicts}
        assert plan.held_deletions == ()
        assert all(c.resolution == conflito for c in plan.conflicts)

        # 1. nenhuma edição perdida sem ser relatada. Uma chave em conflito aberto desde a execução anterior já
        #    foi relatada; se ela nunca foi sincronizada (criada diferente dos dois lados), não há versão-base e
        #    "sumiu de um lado" é "existe só no outro" (como no Unison), não exclusão. Para essas basta terminar
        #    igual nos dois lados ou continuar relatada (propriedade 2).
        for lado in LADOS:
            for chave in mudou[lado] - em_conflito - abertos:
                if chave in mudou[OUTRO[lado]]:
                    # mudou dos dois lados sem conflito: só se as duas edições deram no mesmo registro
                    assert mesmo_registro(antes["principal"].get(chave), antes["backup"].get(chave)), (
                        f"{chave} mudou diferente dos dois lados e não foi relatada como conflito")
                    assert concordam(lados, chave)
                    continue
                assert tem_versao(lados, chave, antes[lado].get(chave)), (
                    f"edição de {chave} no {lado} perdida: {antes[lado].get(chave)} → "
                    f"principal={lados['principal'].get(chave)} backup={lados['backup'].get(chave)}")

        # 2. sem conflito aberto, os dois lados concordam em tudo (dados definíveis e veredito)
        abertos = em_conflito if conflito == "relatar" else set()
        if not plan.conflicts:
            assert lados["principal"].keys() == lados["backup"].keys()
        for chave in set(lados["principal"]) | set(lados["backup"]):
            if chave not in abertos:
                assert concordam(lados, chave), (
                    f"{chave} diferente depois da execução: principal={lados['principal'].get(chave)} "
                    f"backup={lados['backup'].get(chave)}")
        if conflito != "relatar":  # conflito resolvido a favor de um lado: a versão vencedora ficou
            for c in plan.conflicts:
                assert tem_versao(lados, c.key, antes[conflito].get(c.key))
        assert set(plan.parity_mismatches) <= abertos  # veredito diferente só onde há conflito aberto

        # 3. incremental: sem edições, a execução seguinte não planeja nada — a não ser onde um conflito em
        #    aberto bloqueou o backup para não liberar o que o principal nega: se o bloqueio desfez a edição do
        #    backup (ela era só "ativar"), a decisão do principal segue, e só no backup.
        protegidas = {a.key for a in plan.actions if a.kind == sb.BLOCK and a.key in em_conflito}
        de_novo, lados_de_novo, _ = sincronizar(lados, state, opcoes)
        note(f"  de novo: {[(a.kind, a.key, a.side) for a in de_novo.actions]}")
        assert all(a.key in protegidas and a.side == "backup" for a in de_novo.actions), \
            "execução sem edições planejou escritas"
        if not de_novo.actions:  # um conflito só some se o bloqueio de proteção deixou os dois lados iguais
            restantes = {c.key for c in de_novo.conflicts}
            assert restantes <= abertos and abertos - restantes <= protegidas
            assert lados_de_novo == lados


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(*[licenca_nova(c) for c in CHAVES]))
def test_lados_iguais_com_estado_nao_planejam_nada(licencas):
    opcoes = sb.PlanOptions(mode="bidirecional")
    lados = {lado: {ln.device_id: ln for ln in licencas} for lado in LADOS}
    plan, lados, state = sincronizar(lados, None, opcoes)
    assert plan.actions == [] and plan.conflicts == ()
    assert set(state.licenses) == set(CHAVES)
    plan, _lados, state2 = sincronizar(lados, state, opcoes)
    assert plan.actions == [] and plan.conflicts == () and state2.licenses == state.licenses


# ---------------------------------------------------------------------------
# Cópia antiga restaurada no backup (rollback): nada volta para o principal
# ---------------------------------------------------------------------------

@st.composite
def restauracoes(draw):
    iniciais = [draw(licenca_nova(c)) for c in CHAVES if draw(st.booleans())]
    edicao_no_principal = edicao().map(lambda ed: (ed[0], "principal", ed[2], ed[3]))
    antes = draw(st.lists(st.lists(edicao(), max_size=4), max_size=2))  # antes da cópia: os dois lados
    depois = draw(st.lists(st.lists(edicao_no_principal, max_size=5), min_size=1, max_size=3))
    conflito = draw(st.sampled_from(["relatar", "principal", "backup"]))
    return iniciais, antes, depois, conflito


def refazer_backup_pelo_principal(lados, state):
    """O comando sugerido (sincronização unidirecional principal → backup), no modelo."""
    plan, lados, state = sincronizar(lados, state, sb.PlanOptions(force=True, max_deletions=1000))
    return lados, state


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(restauracoes())
def test_copia_antiga_restaurada_no_backup_nunca_sobrescreve_o_principal(cenario):
    iniciais, antes, depois, conflito = cenario
    opcoes = sb.PlanOptions(mode="bidirecional", conflict=conflito)
    lados = {lado: {ln.device_id: ln for ln in iniciais} for lado in LADOS}
    _plan, lados, state = sincronizar(lados, None, opcoes)
    for rodada in antes:
        for ed in rodada:
            editar(lados, ed)
        _plan, lados, state = sincronizar(lados, state, opcoes)
    copia = dict(lados["backup"])  # a cópia de segurança da noite
    for rodada in depois:  # um dia de trabalho no principal, sincronizado a cada hora
        for ed in rodada:
            editar(lados, ed)
        _plan, lados, state = sincronizar(lados, state, opcoes)
    principal_antes = dict(lados["principal"])
    lados["backup"] = dict(copia)  # o backup volta da cópia antiga
    plan, lados, state_depois = sincronizar(lados, state, opcoes)
    note(f"ações={[(a.kind, a.key, a.side) for a in plan.actions]} perda={plan.loss}")
    # a versão antiga do backup nunca chega ao principal, nem apaga nada lá, com --conflito relatar ou principal
    if conflito != "backup":
        assert all(a.side == "backup" for a in plan.actions), "escrita no principal vinda de uma cópia antiga"
        assert lados["principal"] == principal_antes
    # com --conflito backup, só o que o usuário confirmou (conflitos relatados) pode ir para o principal
    tocadas_no_principal = {a.key for a in plan.actions if a.side == "principal"}
    assert tocadas_no_principal <= {c.key for c in plan.conflicts}
    if plan.halted:
        assert plan.loss is not None and plan.actions == []
    if plan.halted and plan.loss.side == "backup":
        # o comando sugerido recompleta o backup; depois, o bidirecional não escreve nada no principal
        lados, state = refazer_backup_pelo_principal(lados, state)
        plan, lados, _ = sincronizar(lados, state, opcoes)
        assert not plan.halted
        assert {a.key for a in plan.actions if a.side == "principal"} <= {c.key for c in plan.conflicts}
        if conflito != "backup":
            assert all(a.side == "backup" for a in plan.actions) and lados["principal"] == principal_antes
