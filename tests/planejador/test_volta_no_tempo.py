"""Um lado que voltou no tempo para o par, seja qual for e em todos os modos (principal inclusive).

Principal restaurado de uma cópia da noite anterior (vendas do dia somem, estornos voltam a liberar),
listagem do principal cortada por um proxy (licenças que ele libera sumiriam do backup), restaurar que
respeita as exclusões feitas no principal. Planejador puro e de ponta a ponta contra os servidores de
referência, com o veredito conferido no servidor.
"""

from __future__ import annotations

import datetime as dt

import pytest
from apoio import backup_libera_o_que_o_principal_nega, saida, sem_traceback

import sincronizar_bancos as sb

HOJE = dt.date(2026, 11, 29)
URL_P, URL_B = "https://principal.exemplo.com", "https://backup.exemplo.com"


def lic(device_id, status="active", **kw) -> sb.License:
    base = dict(owner_name="Ana", cpf="123", email=None, address=None, license_type="anual", created_by="admin",
                status=status, start_date=HOJE, end_date=sb.period_end("anual", HOJE), custom_interval=60,
                features="core")
    base.update(kw)
    return sb.License(device_id=device_id, **base)


def snap(licencas, url=URL_P) -> sb.Snapshot:
    return sb.Snapshot(url, {}, {x.device_id: x for x in licencas}, login_username="admin")


def sincronizar(licencas, old=None, modo=sb.Mode.ONE_WAY) -> sb.PairState:
    """Estado depois de uma sincronização bem-sucedida com os dois lados iguais a `licencas`."""
    p, b = snap(licencas), snap(licencas, URL_B)
    plan = sb.plan_pair(p, b, HOJE, old, sb.PlanOptions(mode=modo))
    return sb.next_state(plan, [], old, p, b, URL_P, URL_B)


BASE = [lic(f"L{i:02d}") for i in range(30)]


def historia():
    """Noite: BASE sincronizada (a cópia do principal é feita aqui). Dia: duas vendas e um estorno
    (L00 bloqueada), sincronizados. Devolve (estado, principal da noite, como o backup está)."""
    noite = sincronizar(BASE)
    dia = [lic("L00", status="blocked")] + BASE[1:] + [lic("VENDA1"), lic("VENDA2")]
    estado = sincronizar(dia, noite)
    return estado, BASE, dia


@pytest.mark.parametrize("modo", [sb.Mode.ONE_WAY, sb.Mode.TWO_WAY])
def test_principal_restaurado_da_copia_da_noite_para_o_par_em_todos_os_modos(modo):
    estado, noite, dia = historia()
    plan = sb.plan_pair(snap(noite), snap(dia, URL_B), HOJE, estado, sb.PlanOptions(mode=modo))
    assert plan.halted and plan.loss.side == "principal" and plan.loss.kind == sb.LossKind.ROLLED_BACK
    assert set(plan.loss.keys) == {"L00", "VENDA1", "VENDA2"}
    assert plan.actions == []  # nada é gravado: nem as vendas bloqueadas, nem o estorno liberado


def test_principal_com_uma_exclusao_so_nao_e_volta_no_tempo():
    """Apagar licenças no principal é edição comum: sem nenhum registro numa versão anterior, não para."""
    estado, _noite, dia = historia()
    agora = [x for x in dia if x.device_id not in ("VENDA1", "VENDA2")]
    plan = sb.plan_pair(snap(agora), snap(dia, URL_B), HOJE, estado)
    assert not plan.halted
    assert sorted((a.kind, a.key) for a in plan.actions) == [(sb.BLOCK, "VENDA1"), (sb.BLOCK, "VENDA2")]


def test_sumico_ja_tratado_nao_conta_de_novo():
    """Licença apagada no principal e já bloqueada no backup: na execução seguinte não é 'sumiço' outra vez
    (o estado a lembra como ausente do principal) — uma reativação comum depois não para o par."""
    estado, _noite, dia = historia()
    sem_venda = [x for x in dia if x.device_id != "VENDA1"]
    b = snap([lic("VENDA1", status="blocked")] + sem_venda, URL_B)
    plan = sb.plan_pair(snap(sem_venda), snap(dia, URL_B), HOJE, estado)
    estado2 = sb.next_state(plan, [sb.Result(a, True) for a in plan.actions], estado, snap(sem_venda),
                            snap(dia, URL_B), URL_P, URL_B)
    assert estado2.licenses["VENDA1"].fp_primary is None
    assert sb.primary_went_back(estado2, snap(sem_venda), b) == ([], [])


@pytest.mark.parametrize("cortada,para", [(29, False), (27, False), (10, True), (0, True)])
def test_listagem_cortada_alem_do_limite_para_o_par(cortada, para):
    """Bloquear por ausência também é excluir para o cliente: o mesmo limite do --espelhar (10 %, até 50)."""
    estado = sincronizar(BASE)
    plan = sb.plan_pair(snap(BASE[:cortada]), snap(BASE, URL_B), HOJE, estado)
    assert plan.halted is para
    if para:
        assert plan.loss.side == "principal" and plan.loss.kind in (sb.LossKind.SHRANK, sb.LossKind.HALF,
                                                                     sb.LossKind.EMPTY)
        assert plan.actions == []
    else:
        assert {a.kind for a in plan.actions} == {sb.BLOCK}


def test_listagem_cortada_passa_com_max_exclusoes_suficiente():
    estado = sincronizar(BASE)
    plan = sb.plan_pair(snap(BASE[:24]), snap(BASE, URL_B), HOJE, estado, sb.PlanOptions(max_deletions=6))
    assert not plan.halted and len(plan.actions) == 6


def test_restaurar_nao_recria_o_que_o_principal_apagou_depois_de_sincronizado():
    estado = sincronizar(BASE)
    sem_l05 = [x for x in BASE if x.device_id != "L05"]
    bloq = [lic("L05", status="blocked")] + sem_l05
    plan = sb.plan_pair(snap(sem_l05), snap(BASE, URL_B), HOJE, estado)
    estado = sb.next_state(plan, [sb.Result(a, True) for a in plan.actions], estado, snap(sem_l05),
                           snap(BASE, URL_B), URL_P, URL_B)
    # o principal perde L10 e L11 depois; restaurar a partir do backup (lados trocados no plano)
    perdeu = [x for x in sem_l05 if x.device_id not in ("L10", "L11")]
    opcoes = sb.PlanOptions(protect_target=False, only_missing=True)
    plan = sb.plan_pair(snap(bloq, URL_B), snap(perdeu), HOJE, sb.swap_state(estado), opcoes)
    assert sorted(a.key for a in plan.actions if a.kind == sb.CREATE) == ["L10", "L11"]
    assert plan.not_restored == ("L05",)
    forcado = sb.plan_pair(snap(bloq, URL_B), snap(perdeu), HOJE, sb.swap_state(estado),
                           sb.PlanOptions(protect_target=False, force=True))
    assert "L05" in {a.key for a in forcado.actions if a.kind == sb.CREATE}


def test_restaurar_de_um_backup_que_voltou_no_tempo_para():
    estado, _noite, dia = historia()
    # o backup (a origem de restaurar) voltou à cópia da noite; o principal está em dia
    opcoes = sb.PlanOptions(protect_target=False, force=True)
    plan = sb.plan_pair(snap(BASE, URL_B), snap(dia), HOJE, sb.swap_state(estado), opcoes)
    assert plan.halted and plan.loss.side == "principal"  # no plano: a origem (o backup de verdade)


def test_releitura_do_principal_e_decisao_do_planejador():
    """replan_after_reread: registro que mudou no principal durante a execução sai do plano e vira conflito;
    se ele passou a negar o que o backup libera, o backup é bloqueado pela regra única deny_on_target."""
    p, b = snap([lic("A"), lic("B")]), snap([lic("A"), lic("B", owner_name="velho")], URL_B)
    plan = sb.plan_pair(p, b, HOJE, None, sb.PlanOptions(mode=sb.Mode.TWO_WAY, conflict=sb.ConflictPolicy.PRIMARY))
    no_principal = [c for c in plan.license_chains if c[0].side == "principal"]
    antes = [c.key for c in plan.conflicts]
    fresco = snap([lic("A", status="blocked"), lic("B")])
    cadeia_falsa = [[sb.Action(sb.UPDATE, "A", "x", side="principal")]]
    novo, cadeias, exclusoes = sb.replan_after_reread(plan, "principal", p, fresco, b, sb.Clock.of(HOJE),
                                                      no_principal + cadeia_falsa, [])
    assert [c.key for c in plan.conflicts] == antes  # o plano é congelado: a releitura dá um plano novo
    plan = novo
    assert cadeias == no_principal and exclusoes == []
    assert [c.key for c in plan.conflicts] == antes + ["A"] and plan.conflicts[-1].open
    assert [(c[0].kind, c[0].key, c[0].side) for c in plan.license_chains if c[0].key == "A"] == \
        [(sb.BLOCK, "A", "backup")]


@pytest.mark.parametrize("status,liberada,esperado", [
    ("active", True, [sb.BLOCK]), ("blocked", False, []), (None, None, [sb.BLOCK]),
])
def test_deny_on_target_e_a_regra_unica(status, liberada, esperado):
    assert [a.kind for a in sb.deny_on_target("X", status, liberada, "por quê")] == esperado
    assert sb.deny_on_target("a/b", status, True, "id fora do caminho") == []


# ---------------------------------------------------------------------------
# De ponta a ponta
# ---------------------------------------------------------------------------

def semear(srv, n=20):
    for i in range(n):
        srv.add_device(f"LIC-{i:03d}", owner_name=f"Cliente {i}", cpf=str(i))


@pytest.mark.parametrize("modo", [[], ["--bidirecional"]])
def test_principal_restaurado_da_copia_da_noite_para_com_5_e_nada_e_gravado(par, modo):
    semear(par.principal)
    assert par.rodar("--sem-progresso", *modo).codigo == 0
    copia_da_noite = par.principal.export_data()
    par.principal.add_device("VENDA-1", owner_name="Venda do dia", cpf="1")
    par.principal.add_device("VENDA-2", owner_name="Venda do dia", cpf="2")
    par.principal.set_status("LIC-004", "blocked")  # estorno
    assert par.rodar("--sem-progresso", *modo).codigo == 0
    par.principal.import_data(copia_da_noite)  # o provedor voltou o banco da noite anterior
    par.principal.reset_counts()
    par.backup.reset_counts()
    r = par.rodar("--sem-progresso", *modo)
    sem_traceback(r)
    assert r.codigo == 5, saida(r)[-3000:]
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
    texto = saida(r)
    assert "PRINCIPAL" in texto and "LIC-004" in texto and "VENDA-1" in texto
    assert f"restaurar --de {par.backup.url} --forcar" in texto
    # o backup continua com a verdade do dia: vendas liberadas, estorno negado
    assert par.backup.veredito("VENDA-1") and par.backup.veredito("VENDA-2") and not par.backup.veredito("LIC-004")
    # o comando indicado devolve ao principal as versões novas (com os status do backup)
    r2 = par.rodar("restaurar", "--sem-progresso", "--forcar")
    assert r2.codigo == 0, saida(r2)[-3000:]
    assert par.principal.veredito("VENDA-1") and par.principal.veredito("VENDA-2")
    assert not par.principal.veredito("LIC-004")
    r3 = par.rodar("--sem-progresso", *modo)
    assert r3.codigo == 0, saida(r3)[-3000:]
    assert backup_libera_o_que_o_principal_nega(par) == []


def test_listagem_do_principal_cortada_para_com_5_como_no_espelhar(par):
    semear(par.principal, 30)
    assert par.rodar("--sem-progresso").codigo == 0
    par.principal.cortar_listagem(20)  # 10 de 30 somem: menos da metade, mas muito além do limite (3)
    par.backup.reset_counts()
    for extra in ([], ["--espelhar"]):
        r = par.rodar("--sem-progresso", *extra)
        sem_traceback(r)
        assert r.codigo == 5, saida(r)[-3000:]
        assert "listagem cortada" in r.stdout or "RETIDAS" in r.stdout
    assert par.backup.write_count() == 0
    assert all(par.backup.vereditos().values()) and len(par.backup.vereditos()) == 30
    par.principal.cortar_listagem(None)
    assert par.rodar("--sem-progresso").codigo == 0


def test_restaurar_respeita_exclusao_feita_no_principal(par):
    semear(par.principal, 12)
    assert par.rodar("--sem-progresso").codigo == 0
    par.principal.remove_device("LIC-007")  # reembolso
    assert par.rodar("--sem-progresso").codigo == 0  # bloqueada no backup e lembrada como apagada no principal
    for i in (1, 2):
        par.principal.remove_device(f"LIC-00{i}")  # o principal perdeu duas (sem sincronizar depois)
    r = par.rodar("restaurar", "--sem-progresso")
    assert r.codigo == 0, saida(r)[-3000:]  # a releitura de conferência também respeita a exclusão
    assert "LIC-001" in par.principal.devices() and "LIC-002" in par.principal.devices()
    assert "LIC-007" not in par.principal.devices() and "LIC-007" in r.stdout


# ---------------------------------------------------------------------------
# Cópia restaurada ou listagem cortada × reembolsos (ids locais e ordem de criação guardados no estado)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("modo", [[], ["--bidirecional"]], ids=["unidirecional", "bidirecional"])
@pytest.mark.parametrize("venda_depois", [False, True], ids=["so_perdeu", "venda_nova_reusa_id"])
def test_principal_restaurado_de_copia_anterior_para_com_5_e_restaurar_devolve_as_vendas_liberadas(par, venda_depois,
                                                                                                   modo):
    """O provedor voltou o banco do principal a uma cópia de uma hora atrás: só as 8 vendas dessa hora somem
    (menos que o limite de exclusões). Não são reembolsos: o par para sem gravar nada e diz o comando; restaurar
    as devolve LIBERADAS ao principal."""
    semear(par.principal, 100)
    assert par.rodar("--sem-progresso", *modo).codigo == 0
    copia = par.principal.export_data()
    vendas = [f"VENDA-{i}" for i in range(8)]
    for i, chave in enumerate(vendas):
        par.principal.add_device(chave, owner_name=f"Comprou agora {i}", cpf=f"9{i}")
    assert par.rodar("--sem-progresso", *modo).codigo == 0
    assert all(par.backup.veredito(k) for k in vendas)
    par.principal.import_data(copia)
    if venda_depois:  # o contador de ids voltou com a cópia: a venda nova recebe o id de uma perdida
        par.principal.add_device("VENDA-DEPOIS", owner_name="Comprou depois da restauração", cpf="77")
    par.zerar_contagens()
    r = par.rodar("--sem-progresso", *modo)
    sem_traceback(r)
    assert r.codigo == 5, saida(r)[-3000:]
    assert par.backup.write_count() == 0 and par.principal.write_count() == 0
    texto = saida(r)
    assert f"{sb.python_command()} sincronizar_bancos.py restaurar --de {par.backup.url}" in texto
    assert "VENDA-0" in texto and "MAIS NOVAS" in texto
    assert all(par.backup.veredito(k) for k in vendas)  # nenhuma venda paga negada
    r2 = par.rodar("restaurar", "--de", par.backup.url, "--sem-progresso")
    assert r2.codigo == 0, saida(r2)[-3000:]
    assert [k for k in vendas if not par.principal.veredito(k)] == []
    r3 = par.rodar("--sem-progresso", *modo)
    assert r3.codigo == 0, saida(r3)[-3000:]
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert all(par.backup.veredito(k) for k in vendas)


def test_listagem_curta_do_principal_abaixo_do_limite_para_com_5_e_nada_e_bloqueado(par):
    """Um proxy entrega só as 95 licenças mais novas de 100 (5 somem, abaixo do limite de exclusões de 10): um
    bloco seguido da listagem, não reembolsos. Nada é bloqueado no backup."""
    semear(par.principal, 100)
    assert par.rodar("--sem-progresso").codigo == 0
    par.principal.cortar_listagem(95)
    par.zerar_contagens()
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 5, saida(r)[-3000:]
    assert par.backup.write_count() == 0
    assert "listagem cortada" in saida(r) and f"restaurar --de {par.backup.url}" in saida(r)
    assert all(par.backup.vereditos().values()) and len(par.backup.vereditos()) == 100
    par.principal.cortar_listagem(None)
    assert par.rodar("--sem-progresso").codigo == 0
    assert all(par.backup.vereditos().values())


def test_reembolsos_espalhados_seguem_bloqueados_no_backup_com_codigo_0(par):
    """Três exclusões espalhadas numa listagem de 100: reembolsos. Bloqueadas no backup (reversível), como
    sempre, e listadas; o par não para."""
    semear(par.principal, 100)
    assert par.rodar("--sem-progresso").codigo == 0
    reembolsos = ["LIC-010", "LIC-050", "LIC-090"]
    for chave in reembolsos:
        par.principal.remove_device(chave)
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    assert [par.backup.devices()[k]["status"] for k in reembolsos] == ["blocked"] * 3
    assert all(k in r.stdout for k in reembolsos)
    assert backup_libera_o_que_o_principal_nega(par) == []


def test_restaurar_devolve_a_licenca_como_era_antes_do_nosso_bloqueio(par):
    """Uma venda que a ferramenta bloqueou no backup porque sumiu do principal (reembolso, numa execução
    anterior): restaurar a devolve ao principal como ela era antes do bloqueio — liberada, nunca bloqueada —
    e a sincronização seguinte a libera também no backup."""
    semear(par.principal, 12)
    assert par.rodar("--sem-progresso").codigo == 0
    par.principal.remove_device("LIC-005")
    assert par.rodar("--sem-progresso").codigo == 0
    assert par.backup.devices()["LIC-005"]["status"] == "blocked"
    r = par.rodar("restaurar", "--sem-progresso", "--forcar")
    sem_traceback(r)
    assert par.principal.veredito("LIC-005"), saida(r)[-3000:]
    # o backup ainda nega (o bloqueio é dele até a próxima sincronização): nunca 0 com vereditos diferentes
    assert r.codigo == 1, saida(r)[-3000:]
    assert "LIC-005" in r.stdout and "antes do bloqueio" in r.stdout
    r2 = par.rodar("--sem-progresso")
    assert r2.codigo == 0, saida(r2)[-3000:]
    assert par.backup.veredito("LIC-005") and par.principal.veredito("LIC-005")
    assert backup_libera_o_que_o_principal_nega(par) == []


def test_duas_vendas_mais_novas_sumidas_sao_bloqueadas_como_reembolsos_com_codigo_1_e_os_dois_caminhos(par):
    """Revisão: o vendedor estorna (apaga) as duas vendas mais novas, já sincronizadas, sem cópia restaurada
    (nenhum id reusado). Antes, vanished_together chamava isso de cópia restaurada: código 5 a cada execução,
    e o restaurar sugerido as devolvia liberadas. Duas vendas mais novas juntas são reembolsos OU uma cópia de
    pouco antes, sem como saber: o par segue, elas são bloqueadas no backup (reversível), e a execução sai com 1
    dizendo os dois caminhos. A seguinte sai com 0 (nada a repetir)."""
    semear(par.principal, 100)
    assert par.rodar("--sem-progresso").codigo == 0
    par.principal.add_device("VENDA-A", owner_name="Comprou A", cpf="1")
    par.principal.add_device("VENDA-B", owner_name="Comprou B", cpf="2")
    assert par.rodar("--sem-progresso").codigo == 0
    par.principal.remove_device("VENDA-A")  # estornos
    par.principal.remove_device("VENDA-B")
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    texto = saida(r)
    assert r.codigo == 1, texto[-3000:]
    aviso = next(linha for linha in texto.splitlines() if "sumiram juntas" in linha)
    assert "VENDA-A" in aviso and "VENDA-B" in aviso and "reembolsos" in aviso
    assert f"restaurar --de {par.backup.url}" in aviso
    assert not par.backup.veredito("VENDA-A") and not par.backup.veredito("VENDA-B")  # bloqueadas no backup
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert par.principal.write_count() == 0
    seguinte = par.rodar("--sem-progresso")
    assert seguinte.codigo == 0, saida(seguinte)[-3000:]
    assert "sumiram juntas" not in saida(seguinte)
