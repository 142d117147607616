"""Paridade observada: depois das escritas, a ferramenta relê os servidores e só diz "paridade ok" se o
veredito de cada licença bate NOS SERVIDORES (oráculo do servidor de referência). Um backup que reinicia
vazio no meio da execução ou um proxy que responde 200 com HTML a um bloqueio não podem virar "tudo certo"."""

from __future__ import annotations

import pytest

from apoio import (backup_libera_o_que_o_principal_nega, conferir_convergencia, convergir, diferentes_no_oraculo,
                   saida, sem_traceback, semear_licencas, semear_usuarios)

import sincronizar_bancos as sb

UPSERT = ("POST", "/admin/devices/create")
STATUS = ("POST", "/admin/devices/<id>/deactivate")


# ---------------------------------------------------------------------------
# Paridade relida nos servidores
# ---------------------------------------------------------------------------

def _reinicia_vazio(srv) -> None:
    srv.wipe()
    srv.invalidate_tokens()  # um reinício de verdade também esquece os tokens


@pytest.mark.parametrize("modo", ["json", "texto"])
def test_backup_que_reinicia_vazio_no_meio_da_execucao_nao_vira_paridade_ok(par, modo):
    semear_licencas(par.principal, 12)
    semear_usuarios(par.principal, ["ana", "bia"])
    # depois da 4ª criação (já gravada e respondida com 201), o backup volta vazio
    gancho = _reinicia_vazio if modo == "json" else (lambda s: s.wipe())
    par.backup.on_request("POST", "/admin/devices/create", gancho, when="after", skip=3)

    r = par.rodar("--sem-progresso", *(["--json"] if modo == "json" else []), SYNC_PARALELO="1")

    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-4000:]
    assert not par.backup.hook_errors
    assert par.backup.counts[UPSERT] == 12  # o gancho rodou no meio: as outras criações vieram depois dele
    assert diferentes_no_oraculo(par), "o backup voltou vazio e mesmo assim tudo bate?"
    if modo == "json":
        [pair] = r.json()["backups"]
        assert pair["paridade"]["ok"] is False and pair["paridade"]["conferida"] is True
        assert pair["paridade"]["diferentes"], pair["paridade"]
        nao_gravadas = {(item["tipo"], item["chave"]) for item in pair["nao_gravadas"]}
        assert nao_gravadas, pair
        # os usuários (criados antes do reinício) e a licença liberada LIC-0001 sumiram do backup
        assert {(sb.CREATE_USER, "ana"), (sb.CREATE_USER, "bia"), (sb.CREATE, "LIC-0001")} <= nao_gravadas
        assert "LIC-0001" in pair["paridade"]["diferentes"]
        assert r.json()["codigo_saida"] == 1
    else:
        assert "o servidor não guardou" in r.stdout, r.stdout[-4000:]
        assert "reiniciado vazio" in r.stdout
        assert "❌ Paridade de veredito" in r.stdout
        assert "Código de saída: 1" in r.stdout

    convergir(par)
    conferir_convergencia(par)
    assert not diferentes_no_oraculo(par)


@pytest.mark.parametrize("modo", ["json", "texto"])
def test_bloqueio_respondido_com_html_200_por_um_proxy_e_falha(par, modo):
    semear_licencas(par.principal, 6)
    par.principal.add_device("BLOQ-1", owner_name="Ótica Visão", license_type="anual", status="blocked")
    par.principal.add_device("BLOQ-2", owner_name="Padaria Pão de Açúcar", license_type="mensal",
                             status="blocked")
    # BLOQ-1 já está no backup, liberada (só falta bloquear); BLOQ-2 falta (criar → bloquear)
    par.backup.add_device("BLOQ-1", owner_name="Ótica Visão", license_type="anual")
    for chave in ("BLOQ-1", "BLOQ-2"):
        par.backup.interstitial_200("POST", f"/admin/devices/{chave}/deactivate", times=10)

    r = par.rodar("--sem-progresso", *(["--json"] if modo == "json" else []), SYNC_TENTATIVAS_HTTP="2")

    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-4000:]
    # o app nunca viu os bloqueios: BLOQ-1 (que já existia) continua liberada no backup; BLOQ-2, criada
    # nesta execução, é excluída de novo (compensação): não fica liberada onde o principal nega
    assert backup_libera_o_que_o_principal_nega(par) == ["BLOQ-1"]
    assert "BLOQ-2" not in par.backup.devices()
    assert par.backup.counts[STATUS] >= 2 * 3  # cada bloqueio tentado 1 + 2 vezes, todas respondidas pelo proxy
    if modo == "json":
        [pair] = r.json()["backups"]
        falhas = {(f["tipo"], f["chave"]) for f in pair["falhas"]}
        assert falhas == {(sb.BLOCK, "BLOQ-1"), (sb.BLOCK, "BLOQ-2")}, pair["falhas"]
        assert all("sem a confirmação JSON da API" in f["mensagem"] for f in pair["falhas"]), pair["falhas"]
        assert pair["paridade"]["ok"] is False
        assert "BLOQ-1" in pair["paridade"]["diferentes"] and "BLOQ-2" not in pair["paridade"]["diferentes"]
        assert pair["contagens"]["licencas_bloqueadas"] == sum(
            1 for a in pair["acoes"] if a["tipo"] == sb.BLOCK and a["ok"])
        assert pair["codigo_saida"] == 1
    else:
        assert "falhou ao bloquear" in r.stdout
        assert "❌ Paridade de veredito" in r.stdout
        total = len(par.principal.devices())
        assert f"paridade {total}/{total}" not in r.stdout, r.stdout[-3000:]
        assert "Código de saída: 1" in r.stdout

    par.backup.clear_overrides()  # o proxy saiu da frente
    convergir(par)
    conferir_convergencia(par)
    assert par.backup.devices()["BLOQ-1"]["status"] == "blocked"
    assert not par.backup.veredito("BLOQ-2")
