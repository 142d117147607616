"""Registros fora do comum que o principal pode ter e que não podem travar o resto: licença criada pelo
POST /payments/pix/create de verdade (custom_interval "30min"), textos de 1 MB e de 10.001 caracteres e
ids que ficam vazios depois de tirar os espaços. Conferido nos servidores, com o oráculo de cada um."""

from __future__ import annotations

from apoio import (conferir_convergencia, convergir, diferentes_no_oraculo, saida, sem_traceback, semear_licencas,
                   semear_usuarios, sessao_admin)


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
    assert r.codigo in (0, 1), saida(r)[-3000:]
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
