"""A leitura final julga no seu próprio instante: uma execução que atravessa a meia-noite local dos
servidores relê os dois lados e replaneja na data nova antes de relatar a paridade (licenças que venceram
à meia-noite no principal não ficam liberadas no backup com "paridade conferida")."""

from __future__ import annotations

import datetime as dt

from apoio import saida, sem_traceback

DIA = dt.date(2026, 12, 3)
QUASE_MEIA_NOITE = dt.datetime(2026, 12, 3, 23, 59, 59, 500000, tzinfo=dt.UTC)
DEPOIS = dt.datetime(2026, 12, 4, 0, 0, 30, tzinfo=dt.UTC)


def _vence_hoje_quase_meia_noite(par) -> None:
    """Servidores às 23:59:59,5 (UTC); VENCE-HOJE vence hoje no principal (ainda vale até 23:59:59) e no
    backup tem o período reiniciado (datas não copiáveis): à meia-noite só o principal passa a negar."""
    for srv in (par.principal, par.backup):
        srv.set_now(QUASE_MEIA_NOITE)
    par.principal.add_device("VENCE-HOJE", owner_name="Ana", start_date="2026-11-03", end_date=DIA)
    par.backup.add_device("VENCE-HOJE", owner_name="Ana", start_date="2026-11-20",
                          end_date=DIA + dt.timedelta(days=17))


def test_execucao_que_atravessa_a_meia_noite_confere_na_data_nova(par):
    _vence_hoje_quase_meia_noite(par)
    par.principal.add_device("OUTRA", owner_name="Bia")
    par.backup.add_device("OUTRA", owner_name="Bia")
    par.backup.delay("GET", "/admin/devices", 1.2)  # a leitura do backup leva a execução além da meia-noite
    r = par.rodar("--sem-progresso", "--agora", QUASE_MEIA_NOITE.isoformat())
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    assert "A data mudou durante a execução" in r.stdout
    for srv in (par.principal, par.backup):
        srv.set_now(DEPOIS)
    assert not par.principal.veredito("VENCE-HOJE") and not par.backup.veredito("VENCE-HOJE")
    assert par.backup.veredito("OUTRA")


def test_execucao_que_nao_atravessa_a_meia_noite_nao_rele(par):
    _vence_hoje_quase_meia_noite(par)
    # 09:00 UTC: em nenhum fuso possível (UTC−12 a UTC+14) VENCE-HOJE já venceu; depois das 10:00 UTC ela entra
    # na margem de fusos e o backup passaria a negá-la (test_fusos)
    r = par.rodar("--sem-progresso", "--agora", "2026-12-03T09:00:00+00:00")
    assert r.codigo == 0, saida(r)[-3000:]
    assert "A data mudou" not in r.stdout
    assert par.backup.counts[("GET", "/admin/devices")] == 1 and par.backup.write_count() == 0


def test_verificar_que_atravessa_a_meia_noite_compara_na_data_nova(par):
    _vence_hoje_quase_meia_noite(par)
    par.backup.delay("GET", "/admin/devices", 1.2)
    r = par.rodar("verificar", "--sem-progresso", "--agora", QUASE_MEIA_NOITE.isoformat())
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-3000:]  # na data nova, o backup liberaria o que o principal nega
    assert "A data mudou durante a execução" in r.stdout and "VENCE-HOJE" in r.stdout
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0


def test_principal_que_volta_vazio_na_releitura_da_meia_noite_para_o_par_com_5(par):
    """A leitura final vale tanto quanto a primeira: se a releitura da meia-noite mostra o principal vazio
    (reiniciou sem o banco), o par para com 5 e nada é bloqueado no backup por isso."""
    for srv in (par.principal, par.backup):
        srv.set_now(QUASE_MEIA_NOITE)
    for i in range(10):
        par.principal.add_device(f"L{i}", owner_name=f"C{i}", created_by="admin")
    assert par.rodar("--sem-progresso", "--agora", "2026-12-03T12:00:00+00:00").codigo == 0
    # a primeira listagem do principal vem inteira; a segunda (a releitura da meia-noite), vazia
    par.principal.on_request("GET", "/admin/devices", lambda srv: srv.cortar_listagem(0, vezes=1), when="after")
    par.backup.delay("GET", "/admin/devices", 1.2)
    r = par.rodar("--sem-progresso", "--agora", QUASE_MEIA_NOITE.isoformat())
    sem_traceback(r)
    assert "A data mudou durante a execução" in r.stdout, saida(r)[-3000:]
    assert r.codigo == 5, saida(r)[-3000:]
    assert all(par.backup.veredito(f"L{i}") for i in range(10))
