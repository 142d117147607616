"""As datas vêm dos servidores, não do PC (issue 24): a ferramenta lê o relógio de cada servidor no cabeçalho
Date das respostas e julga vencimento, renovação e a conferência final por ele. Um PC com o relógio dias fora
só vira um aviso (texto e --json), que não muda veredito nem código de saída. Servidores de referência reais
com o relógio fixado dias longe do relógio do processo do teste (o Date segue o relógio deles); a ferramenta
roda sem --agora/--hoje; o veredito é sempre o do oráculo de cada servidor."""

from __future__ import annotations

import datetime as dt

import pytest

from apoio import Par, backup_libera_o_que_o_principal_nega, hoje_utc, saida, sem_traceback

DADOS = dict(license_type="mensal", owner_name="Ótica Visão", created_by="sergio")
AVISO_RELOGIO = "relógio deste computador"


@pytest.fixture
def par_com_relogio(tmp_path):
    """Fábrica: um par cujos servidores estão `dias` longe do relógio do processo do teste (às 12:00 UTC)."""
    criados = []

    def criar(dias: int) -> tuple[Par, dt.date]:
        dia = hoje_utc() + dt.timedelta(days=dias)
        par = Par(tmp_path, agora=dt.datetime.combine(dia, dt.time(12, 0), tzinfo=dt.timezone.utc))
        criados.append(par)
        return par, dia
    yield criar
    for par in criados:
        par.parar()


def _iso(dia: dt.date, dias: int = 0) -> str:
    return (dia + dt.timedelta(days=dias)).isoformat()


def _aviso_uma_vez(texto: str) -> None:
    assert texto.count(AVISO_RELOGIO) == 1, texto[-3000:]


def test_servidores_2_dias_atras_do_pc_a_valida_nao_e_bloqueada_e_a_vencida_e_negada(par_com_relogio):
    par, hoje = par_com_relogio(-2)  # o PC está 2 dias adiantado em relação aos servidores
    # VALIDA vence amanhã no principal pelo relógio dos servidores (pelo do PC, venceu ontem); no backup, os mesmos
    # dados com o período recomeçado há 5 dias (datas não são copiáveis)
    par.principal.add_device("VALIDA", start_date=_iso(hoje, -29), end_date=_iso(hoje, 1), **DADOS)
    par.backup.add_device("VALIDA", start_date=_iso(hoje, -5), end_date=_iso(hoje, 25), **DADOS)
    par.principal.add_device("VENCIDA", start_date=_iso(hoje, -33), end_date=_iso(hoje, -3), **DADOS)
    assert par.principal.veredito("VALIDA") and not par.principal.veredito("VENCIDA")

    r = par.rodar("--sem-progresso")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]  # o aviso do relógio do PC não muda o código de saída
    _aviso_uma_vez(r.stdout)
    assert "adiantado" in r.stdout
    assert par.backup.veredito("VALIDA"), "o backup bloqueou uma licença válida pelo relógio do PC"
    assert par.backup.devices()["VALIDA"]["status"] == "active"
    assert not par.backup.veredito("VENCIDA")
    assert backup_libera_o_que_o_principal_nega(par) == []

    par.zerar_contagens()
    r = par.rodar("--sem-progresso", "--json")
    assert r.codigo == 0, saida(r)[-4000:]
    assert sum(AVISO_RELOGIO in aviso for aviso in r.json()["avisos"]) == 1, r.json()["avisos"]
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0


def test_servidores_3_dias_a_frente_do_pc_a_vencida_no_principal_e_negada_no_backup(par_com_relogio):
    par, hoje = par_com_relogio(3)  # o PC está 3 dias atrasado
    # vencidas anteontem no relógio dos servidores (pelo do PC, ainda valem até amanhã)
    par.principal.add_device("VENCIDA-NOVA", start_date=_iso(hoje, -32), end_date=_iso(hoje, -2), **DADOS)
    par.principal.add_device("VENCIDA", start_date=_iso(hoje, -32), end_date=_iso(hoje, -2), **DADOS)
    par.backup.add_device("VENCIDA", start_date=_iso(hoje, -5), end_date=_iso(hoje, 25), **DADOS)
    # RENOVAR vale no principal e venceu ontem no backup (pelo relógio do PC, ainda valeria lá)
    par.principal.add_device("RENOVAR", start_date=_iso(hoje, -5), end_date=_iso(hoje, 25), **DADOS)
    par.backup.add_device("RENOVAR", start_date=_iso(hoje, -31), end_date=_iso(hoje, -1), **DADOS)
    assert not par.principal.veredito("VENCIDA") and par.backup.veredito("VENCIDA")
    assert par.principal.veredito("RENOVAR") and not par.backup.veredito("RENOVAR")

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    assert sum(AVISO_RELOGIO in aviso for aviso in r.json()["avisos"]) == 1, r.json()["avisos"]
    assert "atrasado" in " ".join(r.json()["avisos"])
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert not par.backup.veredito("VENCIDA") and not par.backup.veredito("VENCIDA-NOVA")
    assert par.backup.veredito("RENOVAR"), "licença válida no principal ficou vencida no backup"
    assert par.backup.devices()["RENOVAR"]["start_date"] == _iso(hoje)  # renovada na data do servidor
    assert r.json()["hoje"] == _iso(hoje)


def test_cada_lado_e_julgado_pelo_relogio_do_seu_servidor(par_com_relogio):
    """O principal 3 dias à frente do PC e o backup no relógio real: a vencida no principal (pelo relógio dele) é
    negada no backup, e a cópia do backup, válida pelo relógio do backup, não é renovada pelo do principal."""
    par, hoje = par_com_relogio(3)
    par.backup.set_now(None)  # o backup no relógio real (o mesmo do PC)
    hoje_backup = hoje_utc()
    par.principal.add_device("VENCIDA-NOVA", start_date=_iso(hoje, -32), end_date=_iso(hoje, -2), **DADOS)
    par.principal.add_device("VALE", start_date=_iso(hoje, -5), end_date=_iso(hoje, 25), **DADOS)
    # no backup VALE vence amanhã pelo relógio dele (pelo do principal, já teria vencido)
    par.backup.add_device("VALE", start_date=_iso(hoje_backup, -29), end_date=_iso(hoje_backup, 1), **DADOS)

    r = par.rodar("--sem-progresso")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert not par.backup.veredito("VENCIDA-NOVA")
    assert par.backup.devices()["VALE"]["end_date"] == _iso(hoje_backup, 1), "renovada pelo relógio do outro lado"
    assert par.backup.veredito("VALE")


def test_servidor_sem_date_usa_o_relogio_do_outro_lado(par_com_relogio):
    """Um proxy na frente do principal não manda o Date: vale o relógio do backup (3 dias à frente do PC, como o do
    principal), não o do PC."""
    par, hoje = par_com_relogio(3)
    par.principal.sem_date = True
    par.principal.add_device("VENCIDA-NOVA", start_date=_iso(hoje, -32), end_date=_iso(hoje, -2), **DADOS)

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    assert not par.backup.veredito("VENCIDA-NOVA")
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert r.json()["hoje"] == _iso(hoje)
