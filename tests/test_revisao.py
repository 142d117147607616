"""Casos achados na revisão independente: cada um reproduz o cenário e confere NOS SERVIDORES (oráculo
do servidor de referência)."""

from __future__ import annotations

import datetime as dt

import sincronizar_bancos as sb

HOJE = dt.date(2026, 11, 29)


def semear_igual(par, chaves) -> None:
    for servidor in (par.principal, par.backup):
        for i, chave in enumerate(chaves):
            servidor.add_device(chave, owner_name=f"C {chave}", cpf=f"{i:011d}", created_by="admin")


def test_execucao_sem_escritas_grava_o_estado_e_o_bidirecional_nao_recria_o_apagado(par):
    semear_igual(par, ["L1", "L2", "L3"])
    assert par.rodar("--json", "--bidirecional").codigo == 0  # nada a escrever, mas o estado vira a base
    par.principal.remove_device("L2")
    r = par.rodar("--json", "--bidirecional")
    assert "L2" not in par.principal.devices(), r.stdout[-2000:]
    assert par.backup.veredito("L2") is False


def test_execucao_sem_escritas_grava_o_estado_e_o_unidirecional_bloqueia_o_apagado(par):
    semear_igual(par, ["L1", "L2", "L3"])
    assert par.rodar("--json").codigo == 0
    par.principal.remove_device("L2")
    r = par.rodar("--json")
    assert r.codigo == 0 and par.backup.veredito("L2") is False


def test_restaurar_sem_forcar_nunca_bloqueia_licenca_viva_no_principal(par):
    par.principal.add_device("ABC")
    par.principal.add_device("XYZ")
    par.backup.add_device(" ABC")  # id com espaços: inalcançável
    par.backup.add_device("XYZ", end_date="lixo")  # data ilegível no backup
    par.backup.add_device("FALTANDO")
    r = par.rodar("restaurar", "--json")
    assert par.principal.veredito("ABC") and par.principal.veredito("XYZ"), r.stdout[-2000:]
    assert "FALTANDO" in par.principal.devices()


def test_bidirecional_registro_ilegivel_no_backup_nao_fica_liberado_se_o_principal_nega(par):
    par.principal.add_device("K")
    par.principal.add_device("OUTRA")
    assert par.rodar("--json", "--bidirecional").codigo == 0
    par.principal.set_status("K", "blocked")
    par.backup.set_dates("K", "2026-11-01", "31/12/2027")  # fim ilegível: o servidor o trata como ausente
    r = par.rodar("--json", "--bidirecional")
    assert par.backup.veredito("K") is False, r.stdout[-2000:]
    assert par.principal.devices()["K"]["status"] == "blocked"


def test_diario_antigo_nao_leva_versao_de_copia_antiga_para_o_principal():
    def lic(nome):
        return sb.License("K", nome, None, None, None, "anual", "admin", "active", HOJE, dt.date(2027, 11, 29))
    v1, v2 = lic("Nome antigo"), lic("Nome novo")
    base = sb.StateEntry(sb.fingerprint(v1), sb.fingerprint(v1), "active", "active", None, None)
    estado = sb.PairState("p", "b", 1, 1, set(), {"K": base})
    # uma execução anterior escreveu v2 no principal (do backup) e perdeu a resposta; o backup voltou a v1
    diario = {"K": {"origem": "backup", "alvo": [[sb.fingerprint(v2), "active"]], "fonte": sb.version_of(v2)}}
    plan = sb.plan_pair(sb.Snapshot("p", {}, {"K": v2}), sb.Snapshot("b", {}, {"K": v1}), HOJE, estado,
                        sb.PlanOptions(mode=sb.Mode.TWO_WAY, journal=diario))
    assert not [a for a in plan.actions if a.side == "principal"]


def test_bloqueio_durante_a_execucao_ja_bloqueia_o_backup_na_mesma_execucao(par):
    for chave in ("C-1", "C-2"):
        par.principal.add_device(chave, owner_name=f"Cliente {chave}")
    assert par.rodar("--json", "--bidirecional").codigo == 0
    par.backup.set_device_fields("C-1", owner_name="Nome corrigido no backup")
    par.principal.on_request("GET", "/admin/devices", lambda s: s.set_status("C-1", "blocked"), when="after")
    r = par.rodar("--json", "--bidirecional")
    assert par.principal.veredito("C-1") is False and par.backup.veredito("C-1") is False, r.stdout[-2000:]
    (pair,) = r.json()["backups"]
    assert pair["paridade"]["ok"] is True  # conferida contra a releitura do principal


def test_status_com_espaco_no_backup_e_liberado_pelo_servidor_e_corrigido():
    def lic(status):
        return sb.License("S", "Ana", None, None, None, "anual", "admin", status, HOJE, dt.date(2027, 11, 29))
    licencas, _problemas, _recusadas = sb.parse_licenses([{"device_id": "S", "license_type": "anual",
                                                           "owner_name": "Ana", "created_by": "admin",
                                                           "status": "blocked ", "end_date": "2027-11-29"}])
    assert sb.allows(licencas["S"], HOJE) is True  # o servidor compara status == "blocked" exatamente
    plan = sb.plan_pair(sb.Snapshot("p", {}, {"S": lic("blocked")}),
                        sb.Snapshot("b", {}, {"S": licencas["S"]}), HOJE)
    assert [(a.kind, a.key) for a in plan.actions] == [(sb.BLOCK, "S")]
