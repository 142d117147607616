"""Licença liberada no backup que o principal não tem (e portanto nega): nunca passa com código 0.

Venda feita no backup enquanto o principal estava fora (fica liberada; o relatório diz como levá-la ao
principal), sobra de uma licença que o principal apagou (reembolso: bloqueada, reversível) ou, quando não
dá para saber (estado perdido, URL do backup escrita de outro jeito), código 1 com os dois comandos.
Planejador puro (tabela de casos) e de ponta a ponta com o veredito do servidor de referência.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
from apoio import backup_libera_o_que_o_principal_nega, saida, sem_traceback
from hypothesis import given, settings
from hypothesis import strategies as st

import sincronizar_bancos as sb

ONTEM = dt.date(2026, 11, 28)
HOJE = dt.date(2026, 11, 29)
URL_P, URL_B = "https://principal.exemplo.com", "https://backup.exemplo.com"


def lic(device_id="L1", status="active", start=ONTEM, **kw) -> sb.License:
    base = dict(owner_name="Ana", cpf="123", email=None, address=None, license_type="anual", created_by="admin",
                status=status, start_date=start, end_date=sb.period_end("anual", start), custom_interval=60,
                features="core")
    base.update(kw)
    return sb.License(device_id=device_id, **base)


def snap(*licencas, url=URL_P) -> sb.Snapshot:
    return sb.Snapshot(url, {}, {x.device_id: x for x in licencas}, login_username="admin")


def estado_sincronizado(*licencas, dia=ONTEM) -> sb.PairState:
    """O estado como a ferramenta o grava depois de sincronizar `licencas` nos dois lados no `dia`."""
    p, b = snap(*licencas), snap(*licencas, url=URL_B)
    plan = sb.plan_pair(p, b, dia)
    return sb.next_state(plan, [], None, p, b, URL_P, URL_B)


FILLERS = [lic(f"F{i}") for i in range(20)]  # o principal não encolhe além do limite nos casos abaixo


# (descrição, estado?, licença só no backup, opções, esperado: "bloqueia" | "venda" | "desconhecida")
CASOS = [
    ("sincronizada e intocada no backup, apagada no principal → reembolso: bloqueia",
     "com_L1", lic(), {}, "bloqueia"),
    ("sincronizada, mas mudou no backup desde então → não dá para saber",
     "com_L1", lic(owner_name="Outro"), {}, "desconhecida"),
    ("sincronizada e recriada no backup num dia depois da sincronização → venda (nunca bloqueada)",
     "com_L1", lic(start=HOJE), {}, "venda"),
    ("nunca sincronizada, começou no backup no dia da última sincronização ou depois → venda",
     "sem_L1", lic(start=HOJE), {}, "venda"),
    ("nunca sincronizada, mais antiga que a última sincronização → não dá para saber",
     "sem_L1", lic(start=dt.date(2026, 1, 1)), {}, "desconhecida"),
    ("sem estado (perdido ou de outra URL) → não dá para saber",
     None, lic(), {}, "desconhecida"),
    ("sem estado, venda de hoje → ainda assim não dá para saber (sem data de referência)",
     None, lic(start=HOJE), {}, "desconhecida"),
    ("sem estado e --bloquear-so-no-backup → bloqueia", None, lic(), {"block_backup_only": True}, "bloqueia"),
    ("venda e --bloquear-so-no-backup → venda continua liberada",
     "sem_L1", lic(start=HOJE), {"block_backup_only": True}, "venda"),
]


@pytest.mark.parametrize("descricao,estado,no_backup,opcoes,esperado", CASOS, ids=[c[0] for c in CASOS])
def test_licenca_liberada_so_no_backup_tem_sempre_um_destino(descricao, estado, no_backup, opcoes, esperado):
    state = None
    if estado == "com_L1":
        state = estado_sincronizado(lic(), *FILLERS)
    elif estado == "sem_L1":
        state = estado_sincronizado(*FILLERS)
    plan = sb.plan_pair(snap(*FILLERS), snap(no_backup, *FILLERS, url=URL_B), HOJE, state,
                        sb.PlanOptions(**opcoes))
    bloqueios = [(a.kind, a.key) for a in plan.actions]
    assert not plan.halted
    if esperado == "bloqueia":
        assert bloqueios == [(sb.BLOCK, "L1")] and plan.backup_sales == plan.backup_unknown == ()
    elif esperado == "venda":
        assert bloqueios == [] and plan.backup_sales == ("L1",) and plan.backup_unknown == ()
    else:
        assert bloqueios == [] and plan.backup_unknown == ("L1",) and plan.backup_sales == ()
    # nunca sai com 0 enquanto o backup liberar o que o principal não tem
    outcome = sb.PairOutcome(sb.Direction(sb.ServerConfig("principal", URL_P, "a", "x"),
                                          sb.ServerConfig("backup", URL_B, "a", "x")), started="",
                             plan=plan, parity=plan.parity_predicted(), results=[])
    codigo, _ = sb.pair_verdict(outcome, check=False)
    assert codigo == (sb.ExitCode.OK if esperado == "bloqueia" else sb.ExitCode.FAILURES)


def test_licenca_negada_so_no_backup_nao_pede_nada():
    plan = sb.plan_pair(snap(*FILLERS), snap(lic(status="blocked"), lic("P2", status="pending"), *FILLERS,
                                             url=URL_B), HOJE, None)
    assert plan.actions == [] and plan.backup_sales == plan.backup_unknown == ()


def test_restaurar_nao_classifica_o_que_so_o_principal_tem():
    """Em restaurar a origem é o backup: o que só o principal tem não é "só no backup"."""
    opcoes = sb.PlanOptions(protect_target=False, only_missing=True)
    plan = sb.plan_pair(snap(*FILLERS, url=URL_B), snap(lic(), *FILLERS), HOJE, None, opcoes)
    assert plan.actions == [] and plan.backup_sales == plan.backup_unknown == ()


def test_estado_guarda_a_data_da_sincronizacao_do_relogio_do_plano(tmp_path):
    """next_state usa a data do relógio do plano (--agora/--hoje), não o relógio de parede; o arquivo a guarda."""
    state = estado_sincronizado(lic(), dia=dt.date(2031, 5, 6))
    assert state.synced_on == dt.date(2031, 5, 6)
    sb.save_state(str(tmp_path), state)
    lido, aviso = sb.load_state(str(tmp_path), URL_P, URL_B)
    assert aviso is None and lido.synced_on == dt.date(2031, 5, 6)


# ---------------------------------------------------------------------------
# De ponta a ponta: servidores de referência, veredito conferido no servidor
# ---------------------------------------------------------------------------

def semear(par, n=12):
    for i in range(n):
        par.principal.add_device(f"LIC-{i:03d}", owner_name=f"Cliente {i}", cpf=str(i))


def arquivo_de_estado(par) -> str:
    return sb.state_path(str(par.dados), sb.normalize_url(par.principal.url), sb.normalize_url(par.backup.url))


@pytest.mark.parametrize("como", ["estado_apagado", "estado_ilegivel", "url_do_backup_de_outro_jeito"])
def test_reembolso_sem_estado_nunca_sai_com_zero_e_da_os_dois_comandos(par, como):
    semear(par)
    assert par.rodar("--sem-progresso").codigo == 0
    par.principal.remove_device("LIC-003")  # reembolso no principal
    extra = {}
    if como == "estado_apagado":
        os.remove(arquivo_de_estado(par))
    elif como == "estado_ilegivel":
        with open(arquivo_de_estado(par), "w", encoding="utf-8") as f:
            f.write("{não é json")
    else:
        extra["SERVIDOR_BACKUP"] = par.backup.url.replace("127.0.0.1", "localhost")
    r = par.rodar("--sem-progresso", **extra)
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-3000:]
    assert "LIC-003" in r.stdout and "restaurar --de" in r.stdout and "--bloquear-so-no-backup" in r.stdout
    assert par.backup.veredito("LIC-003")  # nada bloqueado sem saber (pode ser uma venda)
    # o vendedor confirma que é reembolso: bloqueada (reversível), nada apagado
    r2 = par.rodar("--sem-progresso", "--bloquear-so-no-backup", **extra)
    assert r2.codigo == 0, saida(r2)[-3000:]
    assert backup_libera_o_que_o_principal_nega(par) == [] and "LIC-003" in par.backup.devices()


def test_reembolso_com_estado_e_bloqueado_no_backup(par):
    semear(par)
    assert par.rodar("--sem-progresso").codigo == 0
    par.principal.remove_device("LIC-005")
    r = par.rodar("--sem-progresso")
    assert r.codigo == 0, saida(r)[-3000:]
    assert backup_libera_o_que_o_principal_nega(par) == [] and par.backup.devices()["LIC-005"]["status"] == "blocked"


def test_venda_feita_no_backup_fica_liberada_sai_com_1_e_restaurar_a_leva_ao_principal(par):
    semear(par)
    for srv in (par.principal, par.backup):
        srv.set_today("2026-12-01")
    assert par.rodar("--sem-progresso", "--agora", "2026-12-01T12:00").codigo == 0
    for srv in (par.principal, par.backup):
        srv.set_today("2026-12-02")
    par.backup.add_device("VENDA-PIX", owner_name="Comprou no backup", cpf="999")  # o principal estava fora
    par.backup.reset_counts()
    r = par.rodar("--sem-progresso", "--agora", "2026-12-02T12:00")
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-3000:]
    assert "VENDA-PIX" in r.stdout and "venda" in r.stdout.lower() and "restaurar --de" in r.stdout
    assert par.backup.veredito("VENDA-PIX")  # nunca bloqueia uma venda
    assert par.backup.write_count() == 0
    r2 = par.rodar("restaurar", "--sem-progresso", "--agora", "2026-12-02T12:05")
    assert r2.codigo == 0, saida(r2)[-3000:]
    assert par.principal.veredito("VENDA-PIX")
    r3 = par.rodar("--sem-progresso", "--agora", "2026-12-02T12:10")
    assert r3.codigo == 0, saida(r3)[-3000:]
    assert backup_libera_o_que_o_principal_nega(par) == []


def test_venda_de_novo_no_backup_de_licenca_apagada_fica_liberada_e_nada_e_apagado_sem_espelhar(par):
    """Apagada dos dois lados (reembolso com --espelhar) e vendida de novo no backup depois, com os mesmos
    dados: é uma venda (começou depois da exclusão), não uma cópia antiga. Sem --espelhar nada é apagado."""
    dia1 = "2026-12-01T12:00"
    for srv in (par.principal, par.backup):
        srv.set_today("2026-12-01")
    for i in range(12):
        par.principal.add_device(f"L{i}", owner_name=f"C{i}", created_by="admin")
    assert par.rodar("--sem-progresso", "--agora", dia1).codigo == 0
    par.principal.remove_device("L0")
    assert par.rodar("--sem-progresso", "--espelhar", "--agora", dia1).codigo == 0
    assert "L0" not in par.backup.devices()
    for srv in (par.principal, par.backup):
        srv.set_today("2026-12-03")
    par.backup.add_device("L0", owner_name="C0", created_by="admin")  # comprou de novo, no backup
    par.backup.reset_counts()
    r = par.rodar("--sem-progresso", "--agora", "2026-12-03T12:00")
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-3000:]
    assert "L0" in par.backup.devices() and par.backup.veredito("L0")  # nunca apaga nem bloqueia uma venda
    assert par.backup.write_count() == 0 and "restaurar --de" in r.stdout


# ---------------------------------------------------------------------------
# Propriedade: com estado ou sem, o backup nunca libera em silêncio o que o principal nega
# ---------------------------------------------------------------------------

CHAVES = [f"K{i}" for i in range(8)]


@st.composite
def cenario(draw):
    """Uma sincronização anterior (ou nenhuma), e depois: o principal apaga, bloqueia ou mantém; o backup
    ganha vendas novas, muda registros ou não."""
    base = [lic(k, start=ONTEM) for k in CHAVES[:5]] + FILLERS
    tem_estado = draw(st.booleans())
    state = estado_sincronizado(*base) if tem_estado else None
    principal = [x for x in base if x.device_id in FILLERS_IDS or draw(st.booleans())]
    principal = [lic(x.device_id, status="blocked") if x.device_id not in FILLERS_IDS and draw(st.booleans())
                 else x for x in principal]
    backup = list(base)
    for k in CHAVES[5:]:
        if draw(st.booleans()):
            backup.append(lic(k, start=draw(st.sampled_from([dt.date(2026, 1, 1), ONTEM, HOJE]))))
    backup = [lic(x.device_id, owner_name="mudou") if x.device_id not in FILLERS_IDS and draw(st.booleans())
              else x for x in backup]
    return state, principal, backup, draw(st.booleans())


FILLERS_IDS = {x.device_id for x in FILLERS}


@settings(max_examples=150, deadline=None)
@given(cenario())
def test_backup_nunca_libera_em_silencio_o_que_o_principal_nega(dados):
    state, principal, backup, bloquear = dados
    p, b = snap(*principal), snap(*backup, url=URL_B)
    plan = sb.plan_pair(p, b, HOJE, state, sb.PlanOptions(block_backup_only=bloquear))
    if plan.halted:  # parado: código 5, nada gravado
        return
    depois = dict(b.licenses)
    for acao in plan.actions:
        depois[acao.key] = sb.model_apply(depois.get(acao.key), acao, HOJE, p.licenses.get(acao.key))
    avisadas = set(plan.backup_sales) | set(plan.backup_unknown)
    for chave, registro in depois.items():
        if sb.allows(registro, HOJE) and not sb.allows(p.licenses.get(chave), HOJE):
            assert chave in avisadas, chave  # liberada a mais só se o relatório a nomeia (e o código é 1)
    assert not (set(plan.backup_sales) & {a.key for a in plan.actions})  # venda nunca é bloqueada
