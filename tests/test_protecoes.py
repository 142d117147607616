"""Proteções contra veredito errado e perda de dados achadas na revisão independente, ponta a ponta."""

from __future__ import annotations

import json



def veredito(dev, hoje) -> bool:
    return dev["status"] == "active" and (dev["license_type"] == "vitalicia" or not dev["end_date"]
                                          or dev["end_date"] >= hoje.isoformat())


def test_404_html_ao_excluir_nao_conta_como_excluida(par):
    par.principal.add_device("A-1", owner_name="Vai ser apagada")
    par.principal.add_device("B-1")
    assert par.rodar("--bidirecional").codigo == 0
    par.principal.remove_device("A-1")
    # Um túnel/proxy (ou o Flask, numa rota que não casa) responde 404 com uma página HTML.
    par.backup.override("DELETE", "/admin/devices/<id>/delete", 404, "<html><h1>Not Found</h1></html>",
                        content_type="text/html")
    r = par.rodar("--bidirecional", "--json")
    assert r.codigo == 1
    falhas = r.json()["backups"][0]["falhas"]
    assert [f["chave"] for f in falhas] == ["A-1"]
    par.backup.clear_overrides()
    assert "A-1" in par.backup.devices()
    r = par.rodar("--bidirecional")  # lembra que foi apagada no principal: tenta de novo, não recria lá
    assert r.codigo == 0 and "A-1" not in par.backup.devices() and "A-1" not in par.principal.devices()


def test_licenca_apagada_no_principal_e_bloqueada_no_backup_e_nunca_sincronizada_e_avisada(par):
    par.principal.add_device("X-1")
    par.principal.add_device("X-2")
    assert par.rodar().codigo == 0
    par.principal.remove_device("X-1")
    par.backup.add_device("SO-NO-BACKUP", owner_name="Cadastrada só no backup")
    r = par.rodar("--json")
    assert r.codigo == 1  # liberada só no backup (venda feita lá?) nunca sai com 0
    pair = r.json()["backups"][0]
    assert par.backup.devices()["X-1"]["status"] == "blocked"  # apagada no principal: nega igual
    assert par.backup.devices()["SO-NO-BACKUP"]["status"] == "active"  # nunca sincronizada: deixada como está
    assert pair["so_no_backup"]["licencas_liberadas"] == ["SO-NO-BACKUP"]
    texto = par.rodar("--simular").stdout
    assert "LIBERADA" in texto and "SO-NO-BACKUP" in texto
    # Depois, no bidirecional, o bloqueio feito pela ferramenta não vira "mudança do backup":
    r = par.rodar("--bidirecional", "--json")
    doc = r.json()["backups"][0]
    assert doc["conflitos"] == [] and "X-1" not in par.backup.devices() and "X-1" not in par.principal.devices()


def test_modos_misturados_nao_ressuscitam_licenca_apagada(par):
    for k in ("C-1", "C-2", "C-3"):
        par.principal.add_device(k)
    assert par.rodar("--bidirecional").codigo == 0
    par.principal.remove_device("C-1")
    assert par.rodar().codigo == 0  # unidirecional no meio
    assert par.rodar("--bidirecional").codigo == 0
    assert "C-1" not in par.principal.devices() and "C-1" not in par.backup.devices()


def test_principal_que_voltou_vazio_para_tudo_mesmo_sem_exclusoes(par):
    for i in range(20):
        par.principal.add_device(f"E-{i:02d}")
    assert par.rodar().codigo == 0
    par.principal.wipe()
    par.backup.reset_counts()
    r = par.rodar()
    assert r.codigo == 5 and "VAZIA" in r.stdout + r.stderr and "restaurar" in r.stdout + r.stderr
    assert "Par parado: NADA foi gravado" in r.stdout and "licenças sincronizadas" not in r.stdout
    assert par.backup.write_count() == 0
    doc = par.rodar("--json").json()["backups"][0]
    assert doc["parado_por_perda_de_dados"] is True and doc["codigo_saida"] == 5
    par.principal.add_device("E-NOVA")  # um cadastro novo não desarma a trava (perdeu mais da metade)
    r = par.rodar("--espelhar", "--max-exclusoes", "100")
    assert r.codigo == 5 and par.backup.write_count() == 0 and len(par.backup.devices()) == 20
    estado = json.loads(next((par.dados / "estado").glob("par-*[0-9a-f].json")).read_text(encoding="utf-8"))
    assert estado["contagem"]["principal"] == 20


def test_restaurar_com_principal_intacto_nao_sobrescreve(par):
    par.principal.add_device("R-1", owner_name="Original")
    par.principal.add_device("R-2")
    assert par.rodar().codigo == 0
    par.principal.set_status("R-2", "blocked")            # revendedor bloqueou no principal...
    par.principal.set_device_fields("R-1", owner_name="Editado")  # ...e editou, depois da sincronização
    par.principal.remove_device("R-1")
    par.principal.add_device("R-1", owner_name="Editado")
    par.backup.add_device("R-3", owner_name="Só no backup")
    r = par.rodar("restaurar", "--json")
    assert r.codigo == 1  # o veredito de R-2 difere e restaurar não sobrescreve: relatado, não "corrigido"
    assert r.json()["backups"][0]["paridade"]["diferentes"] == ["R-2"]
    devs = par.principal.devices()
    assert devs["R-2"]["status"] == "blocked" and devs["R-1"]["owner_name"] == "Editado"
    assert devs["R-3"]["owner_name"] == "Só no backup"  # o que faltava foi criado
    r = par.rodar("restaurar", "--forcar")
    assert r.codigo == 0 and par.principal.devices()["R-1"]["owner_name"] == "Original"


def test_so_created_by_diferente_usa_o_endpoint_proprio(par):
    par.principal.add_device("CB-1", created_by="sergio", status="blocked")
    par.backup.add_device("CB-1", created_by="admin", status="blocked", start_date="2026-01-01",
                          end_date="2027-01-01")
    par.backup.reset_counts()
    r = par.rodar()
    assert r.codigo == 0
    escritas = {k: v for k, v in par.backup.counts.items() if k[0] in ("POST", "DELETE") and k[1] != "/admin/login"}
    assert escritas == {("POST", "/admin/devices/update-created-by"): 1}
    dev = par.backup.devices()["CB-1"]
    assert (dev["created_by"], dev["status"], dev["start_date"], dev["end_date"]) == \
        ("sergio", "blocked", "2026-01-01", "2027-01-01")
