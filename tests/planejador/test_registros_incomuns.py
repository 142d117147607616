"""Registros fora do comum que o principal pode ter e que não podem travar o resto: licença criada pelo
POST /payments/pix/create de verdade (custom_interval "30min"), textos de 1 MB e de 10.001 caracteres e
ids que ficam vazios depois de tirar os espaços; tipo de licença com espaços nas pontas ('anual ', sem data
de fim). Conferido nos servidores, com o oráculo de cada um."""

from __future__ import annotations

import datetime as dt

from apoio import (backup_libera_o_que_o_principal_nega, conferir_convergencia, convergir, diferentes_no_oraculo,
                   hoje_utc, saida, sem_traceback, semear_licencas, semear_usuarios, sessao_admin)


# ---------------------------------------------------------------------------
# Licença criada pelo Pix, textos grandes e ids vazios
# ---------------------------------------------------------------------------

def test_licenca_do_pix_com_intervalo_em_texto_nao_impede_o_resto(par):
    semear_licencas(par.principal, 8)
    semear_usuarios(par.principal, ["ana"])
    sessao = sessao_admin(par.principal, par.senha_principal)
    resp = sessao.post(f"{par.principal.url}/payments/pix/create", timeout=10, json={
        "owner_name": "Cliente do Pix", "cpf": "12345678900", "device_id": "PIX-1", "license_type": "mensal",
        "email": "pix@exemplo.com.br", "custom_interval": "30min", "features": "core,relatorios"})
    assert resp.status_code == 201 and resp.json()["status"] == "pending", resp.text
    resp = sessao.post(f"{par.principal.url}/admin/devices/LIC-0001/deactivate", json={"action": "block"}, timeout=10)
    assert resp.status_code == 200 and resp.json()["status"] == "blocked", resp.text
    assert par.principal.devices()["PIX-1"]["custom_interval"] == "30min"

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    backup = par.backup.devices()
    assert set(par.principal.devices()) <= set(backup)
    assert backup["LIC-0001"]["status"] == "blocked"
    assert not par.backup.veredito("PIX-1")  # pendente no principal: negada igual (bloqueada)
    assert "ana" in par.backup.users()
    conferir_convergencia(par)
    [pair] = r.json()["backups"]
    campos = {(d["chave"], d["campo"]) for d in pair["divergencias"]}
    assert ("PIX-1", "custom_interval") in campos and ("PIX-1", "features") in campos
    convergir(par)


def test_textos_de_1_mb_e_de_10001_caracteres_sao_copiados_com_o_bloqueio(par):
    um_mega = "Ç" * (1024 * 1024)
    longo = ("Padaria Pão de Açúcar " * 455)[:10_001]  # 10.001 caracteres, sem espaço nas pontas
    assert len(longo) == 10_001 and longo == longo.strip()
    par.principal.add_device("GRANDE-1", owner_name=um_mega, license_type="anual", status="blocked")
    par.principal.add_device("GRANDE-2", owner_name=longo, license_type="mensal", address=longo)
    semear_licencas(par.principal, 3)

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    backup = par.backup.devices()
    assert backup["GRANDE-1"]["owner_name"] == um_mega and backup["GRANDE-1"]["status"] == "blocked"
    assert backup["GRANDE-2"]["owner_name"] == longo and backup["GRANDE-2"]["address"] == longo
    assert not par.backup.veredito("GRANDE-1") and par.backup.veredito("GRANDE-2")
    conferir_convergencia(par)
    convergir(par)


def _ids_vazios(par) -> None:
    par.principal.add_device("   ", owner_name="Importação antiga", license_type="vitalicia")
    par.principal.add_device("\t", owner_name="Importação antiga 2", license_type="anual")
    semear_licencas(par.principal, 4)


def test_id_vazio_depois_do_strip_nunca_chega_ao_backup(par):
    _ids_vazios(par)
    assert not par.principal.veredito("   ")  # o /verify tira os espaços e não acha nada: nega

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    # 0: os dois ids em branco são inalcançáveis (o /verify tira os espaços e não acha nada: o principal nega) e o
    # backup não os tem (também nega): ficam fora do plano, no relatório, sem falha nem diferença de veredito
    assert r.codigo == 0, saida(r)[-3000:]
    backup = par.backup.devices()
    assert not [k for k in backup if not k.strip()], backup.keys()
    assert not diferentes_no_oraculo(par)
    ignorados = {p["chave"] for p in r.json()["backups"][0]["registros_ignorados"]}
    assert len(ignorados) == 2, ignorados  # os dois registros aparecem no relatório
    assert all(u["chave"] != "   " for u in r.json()["backups"][0]["acoes"])


def test_id_vazio_depois_do_strip_nao_impede_a_convergencia(par):
    _ids_vazios(par)
    r = par.rodar("--sem-progresso", "--json")
    assert not diferentes_no_oraculo(par)
    motivos = {p["chave"]: p["motivo"] for p in r.json()["backups"][0]["registros_ignorados"]}
    assert r.codigo == 0, (r.codigo, motivos, r.json()["backups"][0]["paridade"])
    assert set(motivos.values()) == {"inalcancavel"}, motivos
    convergir(par)


# ---------------------------------------------------------------------------
# Tipo de licença com espaços nas pontas ('anual '): importação antiga, sem data de fim
# ---------------------------------------------------------------------------

def _tipos_com_espacos(par) -> dict[str, str]:
    """Importação antiga direto no banco: o servidor não acha 'anual ' na tabela de períodos (tipo
    desconhecido: nenhum fim calculado) e 'vitalicia ' não é 'vitalicia' (o fim gravado vale)."""
    hoje = hoje_utc()
    antigo = hoje - dt.timedelta(days=800)
    par.principal.add_device("ESP-ANUAL", license_type="anual ", owner_name="Importação", start_date=antigo,
                             calcular_fim=False)
    par.principal.add_device("ESP-MENSAL", license_type=" mensal", owner_name="Importação",
                             start_date=hoje - dt.timedelta(days=95), calcular_fim=False)
    par.principal.add_device("ESP-ANUAL-NOVA", license_type="anual  ", owner_name="Importação",
                             start_date=hoje - dt.timedelta(days=10), calcular_fim=False)
    par.principal.add_device("ESP-VITALICIA", license_type="vitalicia ", owner_name="Importação",
                             start_date=antigo, end_date=hoje - dt.timedelta(days=30))
    semear_licencas(par.principal, 4)
    return {k: par.principal.veredito_motivo(k) for k in par.principal.devices() if k.startswith("ESP-")}


def test_tipo_com_espacos_nas_pontas_tem_o_mesmo_veredito_no_backup(par):
    motivos = _tipos_com_espacos(par)
    # o servidor de referência reproduz o real: tipo desconhecido não ganha fim calculado; vitalicia com
    # espaço não é vitalícia (o fim gravado vale)
    assert motivos == {"ESP-ANUAL": "liberada", "ESP-MENSAL": "liberada", "ESP-ANUAL-NOVA": "liberada",
                       "ESP-VITALICIA": "expirada"}, motivos

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    assert not diferentes_no_oraculo(par), diferentes_no_oraculo(par)
    assert not backup_libera_o_que_o_principal_nega(par)
    assert r.codigo == 0, saida(r)[-3000:]
    backup = par.backup.devices()
    assert backup["ESP-ANUAL"]["license_type"] == "anual"  # a API tira os espaços: diferença relatada
    [pair] = r.json()["backups"]
    tipos = {d["chave"] for d in pair["divergencias"] if d["campo"] == "license_type"}
    assert {"ESP-ANUAL", "ESP-MENSAL", "ESP-ANUAL-NOVA", "ESP-VITALICIA"} <= tipos, pair["divergencias"]
    convergir(par)
    assert not diferentes_no_oraculo(par)


def test_tipo_com_espacos_sem_fim_continua_com_o_mesmo_veredito_quando_o_periodo_do_backup_acaba(par):
    """'anual ' sem fim: liberada para sempre no principal; no backup vira 'anual' com fim daqui a 1 ano.
    Depois desse fim, a sincronização reinicia o período no backup: o veredito continua igual."""
    inicio = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
    for srv in par.servidores:
        srv.set_now(inicio)
    par.principal.add_device("ESP-ANUAL", license_type="anual ", owner_name="Importação",
                             start_date="2020-01-01", calcular_fim=False)
    r = par.rodar("--sem-progresso", "--agora", inicio.isoformat())
    assert r.codigo == 0 and not diferentes_no_oraculo(par), saida(r)[-3000:]
    fim_no_backup = dt.date.fromisoformat(par.backup.devices()["ESP-ANUAL"]["end_date"])

    depois = dt.datetime.combine(fim_no_backup + dt.timedelta(days=2), dt.time(12), tzinfo=dt.timezone.utc)
    for srv in par.servidores:
        srv.set_now(depois)
    assert par.principal.veredito("ESP-ANUAL") and not par.backup.veredito("ESP-ANUAL")
    r = par.rodar("--sem-progresso", "--agora", depois.isoformat())

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    assert not diferentes_no_oraculo(par)
    assert par.backup.veredito("ESP-ANUAL")
