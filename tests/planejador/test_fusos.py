"""Veredito de vencimento pela data LOCAL de cada servidor: fim de vigência calculado (end_date nulo),
servidores no horário de Brasília, de Tóquio, e principal em Brasília com backup em UTC (--agora fixa o
instante). Servidores de referência reais; o veredito é sempre o do oráculo de cada servidor."""

from __future__ import annotations

import datetime as dt

import pytest

import sincronizar_bancos as sb
from apoio import (Par, backup_libera_o_que_o_principal_nega, convergir, diferentes_no_oraculo, saida, sem_traceback,
                   utc)

STATUS = ("POST", "/admin/devices/<id>/deactivate")
AGORA_MEIO_DIA = "2026-11-29T12:00"


def escritas_de_status(srv) -> int:
    return srv.counts[STATUS]


@pytest.fixture
def par_fusos(tmp_path):
    """Fábrica de pares com fuso e instante escolhidos pelo teste, parados ao final do teste."""
    criados = []

    def criar(fuso_principal: str, fuso_backup: str, agora: dt.datetime) -> Par:
        par = Par(tmp_path, fuso_principal=fuso_principal, fuso_backup=fuso_backup, agora=agora)
        criados.append(par)
        return par
    yield criar
    for par in criados:
        par.parar()


# ---------------------------------------------------------------------------
# Veredito pela data local de cada servidor
# ---------------------------------------------------------------------------

def test_end_date_nulo_com_inicio_em_2024_e_vencida_e_o_backup_nega_igual(par_fusos):
    par = par_fusos("UTC", "UTC", utc(AGORA_MEIO_DIA))
    # importação antiga: end_date NULL, o servidor calcula início + período (vencida há muito)
    par.principal.add_device("VELHA-1", license_type="mensal", owner_name="José da Silva",
                             start_date="2024-03-10", calcular_fim=False)
    par.principal.add_device("VELHA-2", license_type="anual", owner_name="Maria Conceição",
                             start_date="2024-01-31", calcular_fim=False)
    par.principal.add_device("NOVA-1", license_type="mensal", owner_name="Ótica Visão",
                             start_date="2026-11-20", calcular_fim=False)  # calculado: 20/12, ainda vale
    # no backup, uma cópia de VELHA-1 com os mesmos dados e período novo: liberada
    par.backup.add_device("VELHA-1", license_type="mensal", owner_name="José da Silva")
    assert not par.principal.veredito("VELHA-1") and not par.principal.veredito("VELHA-2")
    assert par.principal.veredito("NOVA-1") and par.backup.veredito("VELHA-1")

    r = par.rodar("--sem-progresso", "--json", "--agora", AGORA_MEIO_DIA)

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    assert not diferentes_no_oraculo(par)
    backup = par.backup.devices()
    assert backup["VELHA-1"]["status"] == "blocked"
    assert "VELHA-2" not in backup or not par.backup.veredito("VELHA-2")
    assert par.backup.veredito("NOVA-1")
    convergir(par, "--agora", AGORA_MEIO_DIA)


def _fim_30_de_novembro(par, outro_fim_no_backup: str) -> None:
    """FIM-30 (fim 30/11 nos dois), FIM-30-B (fim 30/11 no principal, 30/12 no backup), FIM-30-NOVA (só
    no principal) e FIM-29 (fim 29/11 nos dois): os mesmos dados copiáveis dos dois lados."""
    dados = dict(license_type="mensal", owner_name="Padaria Pão de Açúcar", created_by="sergio")
    for chave, inicio, fim in (("FIM-30", "2026-10-30", "2026-11-30"), ("FIM-30-B", "2026-10-30", "2026-11-30"),
                               ("FIM-30-NOVA", "2026-10-30", "2026-11-30"), ("FIM-29", "2026-10-29", "2026-11-29")):
        par.principal.add_device(chave, start_date=inicio, end_date=fim, **dados)
    par.backup.add_device("FIM-30", start_date="2026-10-30", end_date="2026-11-30", **dados)
    par.backup.add_device("FIM-30-B", start_date="2026-11-30", end_date=outro_fim_no_backup, **dados)
    par.backup.add_device("FIM-29", start_date="2026-10-29", end_date="2026-11-29", **dados)


def test_servidores_em_brasilia_no_ultimo_dia_o_backup_nega_dentro_da_margem_de_fusos(par_fusos):
    """22:00 em Brasília no último dia (01:00 UTC do dia seguinte): o principal ainda libera FIM-30, mas a API não
    revela o fuso e num servidor a leste (até UTC+14) ela já venceu. O fuso configurado pode estar errado: o backup
    recebe o veredito mais estrito (negada), sem renovar nada; é o custo da margem (docs/API_DOS_SERVIDORES.md)."""
    agora = "2026-12-01T01:00"  # 30/11, 22:00 em Brasília
    par = par_fusos("America/Sao_Paulo", "America/Sao_Paulo", utc(agora))
    _fim_30_de_novembro(par, "2026-12-30")
    assert par.principal.local_today() == dt.date(2026, 11, 30)
    assert par.principal.veredito("FIM-30") and par.principal.veredito("FIM-30-NOVA")

    r = par.rodar("--sem-progresso", "--json", "--agora", agora, SYNC_FUSO_HORARIO="America/Sao_Paulo")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    assert backup_libera_o_que_o_principal_nega(par) == []
    for chave in ("FIM-30", "FIM-30-B", "FIM-30-NOVA", "FIM-29"):
        assert not par.backup.veredito(chave), chave
    assert par.backup.devices()["FIM-30-B"]["end_date"] == "2026-12-30", "renovada ou regravada no backup"
    assert r.json()["backups"][0]["paridade"]["ok"] is True
    convergir(par, "--agora", agora, SYNC_FUSO_HORARIO="America/Sao_Paulo")


def test_servidores_em_toquio_a_licenca_ja_venceu_e_o_backup_nega_tambem(par_fusos):
    agora = "2026-11-30T16:00"  # já é 01/12, 01:00 em Tóquio
    par = par_fusos("Asia/Tokyo", "Asia/Tokyo", utc(agora))
    _fim_30_de_novembro(par, "2026-12-30")
    assert par.principal.local_today() == dt.date(2026, 12, 1)
    assert not par.principal.veredito("FIM-30") and par.backup.veredito("FIM-30-B")

    r = par.rodar("--sem-progresso", "--json", "--agora", agora, SYNC_FUSO_HORARIO="Asia/Tokyo")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    for chave in ("FIM-30", "FIM-30-B", "FIM-30-NOVA", "FIM-29"):
        assert not par.principal.veredito(chave) and not par.backup.veredito(chave), chave
    assert par.backup.devices()["FIM-30-B"]["status"] == "blocked"
    assert not diferentes_no_oraculo(par)
    convergir(par, "--agora", agora, SYNC_FUSO_HORARIO="Asia/Tokyo")


def test_principal_em_brasilia_e_backup_em_utc_nada_e_renovado_sem_todos_os_fusos_concordarem(par_fusos):
    """30/11 no principal (Brasília), 01/12 no backup (UTC): FIM-30 ainda vale no principal e já venceu no backup.
    Renovar (um período novo no backup) só quando TODO fuso possível concorda que o principal libera: não é o caso
    (num principal a leste ela já venceu), então o backup continua negando e nada é renovado nem liberado a mais."""
    agora = "2026-12-01T01:00"  # 30/11 no principal (Brasília), 01/12 no backup (UTC)
    par = par_fusos("America/Sao_Paulo", "UTC", utc(agora))
    _fim_30_de_novembro(par, "2026-11-30")
    assert par.principal.veredito("FIM-30") and not par.backup.veredito("FIM-30")

    r = par.rodar("--sem-progresso", "--json", "--agora", agora,
                  PRINCIPAL_FUSO_HORARIO="America/Sao_Paulo", BACKUP_FUSO_HORARIO="UTC")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    assert backup_libera_o_que_o_principal_nega(par) == []
    backup = par.backup.devices()
    for chave in ("FIM-30", "FIM-30-B", "FIM-29"):
        assert backup[chave]["end_date"] in ("2026-11-29", "2026-11-30"), f"{chave} renovada no backup"
        assert not par.backup.veredito(chave), chave
    assert not par.backup.veredito("FIM-30-NOVA")
    convergir(par, "--agora", agora, PRINCIPAL_FUSO_HORARIO="America/Sao_Paulo", BACKUP_FUSO_HORARIO="UTC")


# ---------------------------------------------------------------------------
# Fuso não configurado ou trocado: nunca deixa o backup mais permissivo (issue 24)
# ---------------------------------------------------------------------------

LESTE, OESTE = "Pacific/Kiritimati", "Etc/GMT+12"  # UTC+14 e UTC−12: os extremos dos fusos civis
AGORA_EXTREMOS = "2026-12-03T12:00"  # 04/12 02:00 em UTC+14; 03/12 00:00 em UTC−12


def _vencem_hoje_em_utc(par) -> None:
    """HOJE (fim 03/12, os mesmos dados nos dois), HOJE-NOVA (só no principal, fim 03/12) e VALIDA (fim 20/12
    nos dois). Às 12:00 UTC de 03/12 o servidor em UTC+14 já está em 04/12 (HOJE venceu) e o em UTC−12 em 03/12."""
    dados = dict(license_type="mensal", owner_name="Padaria Pão de Açúcar", created_by="sergio")
    for chave, fim in (("HOJE", "2026-12-03"), ("HOJE-NOVA", "2026-12-03"), ("VALIDA", "2026-12-20")):
        par.principal.add_device(chave, start_date="2026-11-03", end_date=fim, **dados)
    par.backup.add_device("HOJE", start_date="2026-11-03", end_date="2026-12-03", **dados)
    par.backup.add_device("VALIDA", start_date="2026-11-20", end_date="2026-12-20", **dados)


def _nada_renovado_nem_liberado_a_mais(par, r) -> None:
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    assert backup_libera_o_que_o_principal_nega(par) == [], saida(r)[-3000:]
    backup = par.backup.devices()
    assert (backup["HOJE"]["start_date"], backup["HOJE"]["end_date"]) == ("2026-11-03", "2026-12-03"), \
        "HOJE foi renovada (um período novo) no backup por causa do fuso"
    assert not par.backup.veredito("HOJE") and not par.backup.veredito("HOJE-NOVA")
    assert par.backup.veredito("VALIDA") and par.backup.devices()["VALIDA"]["status"] == "active"
    assert par.backup.counts[("POST", "/admin/devices/create")] == 1  # só HOJE-NOVA, que faltava


@pytest.mark.parametrize("zonas", [{}, {"PRINCIPAL_FUSO_HORARIO": OESTE, "BACKUP_FUSO_HORARIO": LESTE}],
                         ids=["fusos_nao_configurados", "fusos_trocados"])
def test_principal_em_utc_mais_14_e_backup_em_utc_menos_12_o_backup_nunca_libera_o_que_o_principal_nega(
        par_fusos, zonas):
    par = par_fusos(LESTE, OESTE, utc(AGORA_EXTREMOS))
    _vencem_hoje_em_utc(par)
    assert not par.principal.veredito("HOJE") and par.backup.veredito("HOJE")

    r = par.rodar("--sem-progresso", "--json", "--agora", AGORA_EXTREMOS, **zonas)

    _nada_renovado_nem_liberado_a_mais(par, r)
    convergir(par, "--agora", AGORA_EXTREMOS, **zonas)


def test_principal_em_utc_menos_12_e_backup_em_utc_mais_14_sem_fusos_configurados_nada_e_renovado(par_fusos):
    """O principal (UTC−12) ainda libera HOJE, o backup (UTC+14) já nega, e a configuração não diz os fusos: a
    ferramenta não sabe se o principal libera em todo fuso possível, então não renova HOJE (nem cria HOJE-NOVA
    liberada) no backup; o backup fica com o veredito mais estrito (o custo da margem)."""
    zonas: dict[str, str] = {}
    par = par_fusos(OESTE, LESTE, utc(AGORA_EXTREMOS))
    _vencem_hoje_em_utc(par)
    assert par.principal.veredito("HOJE") and not par.backup.veredito("HOJE")

    r = par.rodar("--sem-progresso", "--json", "--agora", AGORA_EXTREMOS, **zonas)

    _nada_renovado_nem_liberado_a_mais(par, r)
    convergir(par, "--agora", AGORA_EXTREMOS, **zonas)


# ---------------------------------------------------------------------------
# A margem de fusos no planejador (puro)
# ---------------------------------------------------------------------------

def _lic(chave="L1", fim=dt.date(2026, 12, 3), **kw) -> sb.License:
    base = dict(owner_name="José", cpf="1", email=None, address=None, license_type="mensal", created_by="sergio",
                status="active", start_date=dt.date(2026, 11, 3), end_date=fim, custom_interval=60, features="core")
    base.update(kw)
    return sb.License(device_id=chave, **base)


def _relogio(hora_utc: str, principal: str = "UTC", backup: str = "UTC") -> sb.Clock:
    momento = utc(hora_utc)
    return sb.Clock.at(momento, momento, principal, backup)


@pytest.mark.parametrize("hora, datas", [
    ("2026-12-03T09:59", (dt.date(2026, 12, 2), dt.date(2026, 12, 3))),
    ("2026-12-03T10:00", (dt.date(2026, 12, 2), dt.date(2026, 12, 4))),
    ("2026-12-03T11:59", (dt.date(2026, 12, 2), dt.date(2026, 12, 4))),
    ("2026-12-03T12:00", (dt.date(2026, 12, 3), dt.date(2026, 12, 4))),
])
def test_datas_possiveis_de_um_servidor_vao_de_utc_menos_12_a_utc_mais_14(hora, datas):
    relogio = _relogio(hora)
    assert relogio.span(sb.Side.PRIMARY) == datas == relogio.span(sb.Side.BACKUP)
    assert relogio.primary == relogio.backup == relogio.utc == dt.date(2026, 12, 3)  # o fuso configurado (UTC)


def test_no_ultimo_dia_o_backup_nega_a_partir_das_10h_utc_e_nada_e_renovado():
    """O custo da margem: no último dia (fim 03/12) o backup passa a negar às 10:00 UTC (quando em UTC+14 já é
    04/12); antes disso nada muda."""
    principal, backup = _lic(), _lic(start_date=dt.date(2026, 11, 20), fim=dt.date(2026, 12, 20))
    antes = sb.plan_pair(_snap(principal), _snap(backup), _relogio("2026-12-03T09:59"))
    assert antes.actions == [] and antes.parity_now().ok
    depois = sb.plan_pair(_snap(principal), _snap(backup), _relogio("2026-12-03T10:00"))
    assert [(a.kind, a.key) for a in depois.actions] == [(sb.BLOCK, "L1")]
    assert "margem de fusos" in depois.actions[0].reason  # o relatório diz por que, não "vencida no principal"
    assert depois.parity_predicted().ok


@pytest.mark.parametrize("zonas", [("UTC", "UTC"), (OESTE, LESTE), (LESTE, OESTE)])
def test_renovar_so_quando_todo_fuso_possivel_concorda_que_o_principal_libera(zonas):
    """Backup com fim 03/12 e principal válido até 10/12: renova (o backup pode já ter vencido). Principal com
    fim 03/12 às 12:00 UTC (em UTC+14 já venceu): nunca renova, qualquer que seja o fuso configurado."""
    relogio = _relogio("2026-12-03T12:00", *zonas)
    vencendo = _lic(start_date=dt.date(2026, 11, 3))
    plano = sb.plan_pair(_snap(_lic(fim=dt.date(2026, 12, 10))), _snap(vencendo), relogio)
    assert [a.kind for a in plano.actions] == [sb.RENEW]
    plano = sb.plan_pair(_snap(_lic()), _snap(vencendo), relogio)
    assert [a.kind for a in plano.actions] == [sb.BLOCK]
    assert plano.expected["L1"][1].status == "blocked" and plano.parity_predicted().ok


def test_sem_margem_com_hoje_fixo_o_veredito_e_o_da_data_exata():
    """Clock.of(data) (--hoje): a data é exata, sem margem; o mesmo de antes."""
    relogio = sb.Clock.of(dt.date(2026, 12, 3))
    assert relogio.span(sb.Side.PRIMARY) == (dt.date(2026, 12, 3),) * 2
    plano = sb.plan_pair(_snap(_lic()), _snap(_lic(start_date=dt.date(2026, 11, 20), fim=dt.date(2026, 12, 20))),
                         relogio)
    assert plano.actions == []


def _snap(*licencas) -> sb.Snapshot:
    return sb.Snapshot("http://x", {}, {ln.device_id: ln for ln in licencas}, login_username="admin")


def test_restaurar_nunca_bloqueia_no_principal_pela_margem_de_fusos():
    """Restaurar (origem: o backup) uma licença que vence hoje, às 12:00 UTC: o principal a recebe liberada, sem
    bloqueio pela margem (uma venda nunca volta bloqueada ao principal por um fuso que ninguém conhece)."""
    def papel(lado: sb.Side) -> sb.Role:  # em restaurar, o lado de origem do plano é o backup
        return sb.Role.BACKUP if lado == sb.Side.PRIMARY else sb.Role.PRIMARY
    opcoes = sb.PlanOptions(only_missing=True, protect_target=False, role_of=papel)
    plano = sb.plan_pair(_snap(_lic()), _snap(), _relogio("2026-12-03T12:00"), options=opcoes)
    assert [(a.kind, a.key) for a in plano.actions] == [(sb.CREATE, "L1")]
    assert plano.parity_predicted().ok
