"""Cadeias de escrita que falham no meio: nenhuma deixa um backup liberando o que o principal nega.

De ponta a ponta (o script por main() no processo do pytest, servidores de referência reais). O veredito é sempre o do
próprio servidor (`ServidorReferencia.veredito`, o oráculo de /verify), nunca o modelo da ferramenta.
Casos: bloqueio que falha depois da criação (500 sempre), "database is locked" que passa repetido,
500 na n-ésima escrita, token revogado (novo login aceito ou recusado, inclusive entre criar e bloquear),
token perto do prazo, rota de bloqueio quebrada antes de regravar licenças bloqueadas (a prova da rota) ou
logo depois da prova, e servidor de versão antiga (sem as rotas de bloqueio/exclusão; a primeira sem
update-created-by e sem created_by).
"""

from __future__ import annotations

import collections
import datetime as dt
import time

import pytest
from apoio import backup_libera_o_que_o_principal_nega, rodar_json, semear_misto, trocar_backup

import sincronizar_bancos as sb

CRIAR = ("POST", "/admin/devices/create")
STATUS = ("POST", "/admin/devices/<id>/deactivate")
EXCLUIR = ("DELETE", "/admin/devices/<id>/delete")


def sondas(srv) -> int:
    """GETs na rota de bloqueio (numa versão antiga a rota não existe e o log traz o caminho cru)."""
    return sum(1 for m, caminho, _ in srv.requests_log if m == "GET" and caminho.endswith("/deactivate"))


# ---------------------------------------------------------------------------
# Bloqueio que falha depois da criação
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("modo", [[], ["--bidirecional"]])
def test_bloqueio_que_falha_depois_de_criar_desfaz_a_criacao(par, modo):
    semear_misto(par.principal)
    for chave in ("BLQ-1", "PEND-1"):  # 500 sempre, mesmo repetido (a ferramenta tenta 1 + 3 vezes)
        par.backup.fail_next("POST", f"/admin/devices/{chave}/deactivate", 500, {"error": "falha no banco"},
                             times=None)
    r, pair = rodar_json(par, *modo)
    assert r.codigo == 1
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert not {"BLQ-1", "PEND-1"} & set(par.backup.devices())  # criadas e excluídas de novo
    assert par.backup.counts[STATUS] == 2 * 4 + 2  # BLQ-1 e PEND-1 4 vezes cada; BLQ-2 e VENC-1 uma vez
    assert par.backup.counts[EXCLUIR] == 2
    falhas = {f["chave"]: f["mensagem"] for f in pair["falhas"]}
    assert set(falhas) == {"BLQ-1", "PEND-1"}
    assert all("excluída de novo" in m for m in falhas.values()), falhas
    # o servidor volta ao normal: a próxima execução cria e bloqueia; a seguinte não escreve nada
    par.backup.clear_overrides()
    r, pair = rodar_json(par, *modo)
    assert r.codigo == 0 and backup_libera_o_que_o_principal_nega(par) == []
    assert par.backup.devices()["BLQ-1"]["status"] == "blocked"
    antes = par.backup.write_count()
    r, pair = rodar_json(par, *modo)
    assert r.codigo == 0 and par.backup.write_count() == antes


def test_bloqueio_que_falha_antes_de_regravar_no_unidirecional_nao_regrava(par):
    par.principal.add_device("REG-1", owner_name="Nome novo", status="blocked", created_by="sergio")
    par.backup.add_device("REG-1", owner_name="Nome antigo", status="blocked", created_by="sergio")
    par.backup.fail_next("POST", "/admin/devices/REG-1/deactivate", 500, {"error": "falha"}, times=None)
    r, _ = rodar_json(par)
    assert r.codigo == 1 and backup_libera_o_que_o_principal_nega(par) == []
    # a prova da rota (bloquear a que já está bloqueada) falhou: o upsert, que desbloquearia, não foi enviado
    assert par.backup.counts[CRIAR] == 0
    assert par.backup.devices()["REG-1"]["owner_name"] == "Nome antigo"
    assert par.backup.devices()["REG-1"]["status"] == "blocked"
    par.backup.clear_overrides()
    r, _ = rodar_json(par)
    assert r.codigo == 0 and par.backup.devices()["REG-1"]["status"] == "blocked"
    assert par.backup.devices()["REG-1"]["owner_name"] == "Nome novo"


@pytest.mark.parametrize("modo", [[], ["--bidirecional"]], ids=["unidirecional", "bidirecional"])
def test_bloqueio_que_falha_depois_de_regravar_exclui_no_backup_e_nunca_vira_exclusao_no_principal(par, modo):
    """A prova da rota passou, a regravação foi feita e o bloqueio seguinte falhou: a cadeia é desfeita
    excluindo o registro no backup (no bidirecional, o desfazer estava no diário antes das escritas). A
    próxima execução o recria e bloqueia; nada é apagado no principal e nenhum conflito aparece."""
    for srv in (par.principal, par.backup):
        srv.add_device("REG-1", owner_name="Nome", status="blocked", created_by="sergio")
        srv.add_device("OUTRA", owner_name="Outra", created_by="sergio")
    rodar_json(par, *modo)
    par.principal.set_device_fields("REG-1", owner_name="Nome corrigido")
    par.backup.on_request("POST", "/admin/devices/create", lambda s: s.fail_next(
        "POST", "/admin/devices/REG-1/deactivate", 500, {"error": "falha"}, times=4), when="after")
    par.zerar_contagens()
    r, pair = rodar_json(par, *modo)
    assert r.codigo == 1 and backup_libera_o_que_o_principal_nega(par) == []
    assert "REG-1" not in par.backup.devices()
    (falha,) = pair["falhas"]
    assert falha["chave"] == "REG-1" and "excluída de novo" in falha["mensagem"]
    assert par.principal.write_count() == 0
    par.zerar_contagens()
    r, pair = rodar_json(par, *modo)
    assert r.codigo == 0 and pair["conflitos"] == [] and backup_libera_o_que_o_principal_nega(par) == []
    assert par.principal.write_count() == 0
    assert par.principal.devices()["REG-1"]["owner_name"] == "Nome corrigido"
    assert par.backup.devices()["REG-1"]["owner_name"] == "Nome corrigido"
    assert par.backup.devices()["REG-1"]["status"] == "blocked"


def test_bidirecional_corrigir_o_nome_de_bloqueadas_com_a_rota_de_bloqueio_quebrada_nao_libera_nenhuma(par):
    """O upsert desbloqueia (contrato): antes de regravar uma licença que precisa terminar negada, a rota de
    bloqueio tem de ter funcionado NESTA execução naquele servidor (uma prova: bloquear o que já está bloqueado
    não muda nada). Quebrada, nenhuma é regravada: ficam negadas, relatadas, e a próxima execução leva os nomes."""
    chaves = [f"BLQ-{i:02d}" for i in range(10)]
    for srv in (par.principal, par.backup):
        for chave in chaves:
            srv.add_device(chave, owner_name=f"Jose da Silvs {chave}", status="blocked", created_by="sergio")
    r, _ = rodar_json(par, "--bidirecional")
    assert r.codigo == 0
    for chave in chaves:  # o vendedor corrige o nome no principal; as 10 continuam bloqueadas
        par.principal.set_device_fields(chave, owner_name=f"José da Silva {chave}")
    par.backup.fail_next("POST", "/admin/devices/<id>/deactivate", 500, {"error": "falha no banco"}, times=None)
    par.zerar_contagens()
    r, pair = rodar_json(par, "--bidirecional")
    assert r.codigo == 1
    assert [k for k in chaves if par.backup.veredito(k)] == []  # 0 de 10 liberadas no backup
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert par.backup.counts[CRIAR] == 0  # nenhuma regravação enviada
    assert par.backup.counts[STATUS] == 4  # uma prova só (1 + 3 novas tentativas), não uma por licença
    assert par.principal.write_count() == 0
    falhas = {f["chave"]: f["mensagem"] for f in pair["falhas"]}
    assert set(falhas) == set(chaves) and all("rota de bloqueio" in m for m in falhas.values()), falhas
    # a rota volta: a próxima execução leva os nomes e as mantém bloqueadas; a seguinte não escreve nada
    par.backup.clear_overrides()
    r, pair = rodar_json(par, "--bidirecional")
    assert r.codigo == 0, pair["falhas"]
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert {k: d["owner_name"] for k, d in par.backup.devices().items()} == \
        {k: f"José da Silva {k}" for k in chaves}
    assert all(par.backup.devices()[k]["status"] == "blocked" for k in chaves)
    par.zerar_contagens()
    r, _ = rodar_json(par, "--bidirecional")
    assert r.codigo == 0 and par.backup.write_count() == 0 and par.principal.write_count() == 0


def test_rota_de_bloqueio_que_quebra_depois_da_prova_para_as_regravacoes_seguintes(par):
    """A prova passou e a rota quebrou logo depois: a licença regravada é desfeita (excluída no backup, o
    desfazer no diário) e as outras 9 não são regravadas. Nenhuma fica liberada; a próxima execução converge."""
    chaves = [f"BLQ-{i:02d}" for i in range(10)]
    for srv in (par.principal, par.backup):
        for chave in chaves:
            srv.add_device(chave, owner_name=f"Jose da Silvs {chave}", status="blocked", created_by="sergio")
    assert rodar_json(par, "--bidirecional")[0].codigo == 0
    for chave in chaves:
        par.principal.set_device_fields(chave, owner_name=f"José da Silva {chave}")
    par.backup.on_request("POST", "/admin/devices/create", lambda s: s.fail_next(
        "POST", "/admin/devices/<id>/deactivate", 500, {"error": "falha no banco"}, times=None), when="after")
    par.zerar_contagens()
    r, pair = rodar_json(par, "--bidirecional", "--paralelo", "1")
    assert r.codigo == 1 and backup_libera_o_que_o_principal_nega(par) == []
    assert par.backup.counts[CRIAR] == 1 and par.backup.counts[EXCLUIR] == 1
    assert par.backup.counts[STATUS] == 1 + 4  # a prova e o bloqueio que falhou (repetido)
    assert sorted(set(chaves) - set(par.backup.devices())) == ["BLQ-00"]
    assert par.principal.write_count() == 0
    par.backup.clear_hooks()
    par.backup.clear_overrides()
    r, pair = rodar_json(par, "--bidirecional")
    assert r.codigo == 0 and pair["conflitos"] == [] and backup_libera_o_que_o_principal_nega(par) == []
    assert {k: (d["owner_name"], d["status"]) for k, d in par.backup.devices().items()} == \
        {k: (f"José da Silva {k}", "blocked") for k in chaves}


@pytest.mark.parametrize("modo", [[], ["--bidirecional"]], ids=["unidirecional", "bidirecional"])
def test_novo_login_recusado_entre_criar_e_bloquear_e_relatado_e_o_primeiro_conserto_da_seguinte(par, modo):
    """Criada (liberada, pelo contrato) e o novo login recusado antes do bloqueio: não há como desfazer nesse
    servidor. A licença é relatada (código 1) e é a PRIMEIRA escrita da execução seguinte, mesmo que essa
    execução só consiga fazer uma escrita."""
    for i in range(3):
        par.principal.add_device(f"A-{i}", owner_name=f"Cliente {i}")
    par.principal.add_device("Z-BLQ", owner_name="Estornada", status="blocked", created_by="sergio")
    # 4ª escrita aceita (a criação de Z-BLQ, com --paralelo 1 em ordem): tokens revogados, senha trocada
    par.backup.falhas_de_escrita(revogar_token_apos=4, login_apos_revogar=False)
    r, pair = rodar_json(par, "--paralelo", "1", *modo)
    assert r.codigo == 1
    falhas = {f["chave"]: f["mensagem"] for f in pair["falhas"]}
    assert "Z-BLQ" in falhas and "LIBERADA" in falhas["Z-BLQ"], falhas
    assert par.backup.veredito("Z-BLQ") is True  # o que o servidor permitiu: liberada, e dito
    # a próxima execução tem mais o que fazer (3 vendas novas, em ordem ANTES de Z-BLQ) e só consegue UMA
    # escrita (token revogado de novo e login recusado): essa escrita é o bloqueio de Z-BLQ
    for i in range(3):
        par.principal.add_device(f"B-{i}", owner_name=f"Venda {i}")
    par.backup.falhas_de_escrita(revogar_token_apos=1, login_apos_revogar=False)
    par.zerar_contagens()
    r, pair = rodar_json(par, "--paralelo", "1", *modo)
    assert r.codigo == 1
    assert par.backup.veredito("Z-BLQ") is False, par.backup.requests_log
    assert backup_libera_o_que_o_principal_nega(par) == []
    # o servidor volta ao normal: tudo converge
    par.backup.falhas_de_escrita()
    r, pair = rodar_json(par, *modo)
    assert r.codigo == 0, pair["falhas"]
    assert backup_libera_o_que_o_principal_nega(par) == [] and "B-2" in par.backup.devices()


# ---------------------------------------------------------------------------
# Falhas passageiras: repetidas na hora
# ---------------------------------------------------------------------------

def test_database_is_locked_e_repetido_e_a_execucao_converge(par):
    semear_misto(par.principal)
    trocar_backup(par, banco_travado=1)
    r, pair = rodar_json(par)
    assert r.codigo == 0, pair["falhas"]
    assert backup_libera_o_que_o_principal_nega(par) == [] and pair["falhas"] == []
    # cada escrita chegou duas vezes: a primeira levou "database is locked"
    assert par.backup.counts[CRIAR] == 2 * 6 and par.backup.counts[STATUS] == 2 * 4
    antes = par.backup.escritas_recebidas
    r, _ = rodar_json(par)
    assert r.codigo == 0 and par.backup.escritas_recebidas == antes


@pytest.mark.parametrize("n", [1, 2, 5, 8, 10])
def test_500_na_n_esima_escrita_e_repetido(par, n):
    semear_misto(par.principal)
    trocar_backup(par, falhar_escritas={n})
    r, pair = rodar_json(par, "--paralelo", "1")
    assert r.codigo == 0 and pair["falhas"] == [] and backup_libera_o_que_o_principal_nega(par) == []
    assert par.backup.escritas_recebidas == 10 + 1  # 6 criações + 4 bloqueios + a repetição


# ---------------------------------------------------------------------------
# Token revogado no meio
# ---------------------------------------------------------------------------

def test_token_revogado_no_meio_com_novo_login_aceito_converge(par):
    semear_misto(par.principal)
    trocar_backup(par, revogar_token_apos=3)
    r, pair = rodar_json(par)
    assert r.codigo == 0 and pair["falhas"] == [] and backup_libera_o_que_o_principal_nega(par) == []
    assert par.backup.counts[("POST", "/admin/login")] == 2


def test_novo_login_recusado_para_de_escrever_no_servidor(par):
    for i in range(20):
        par.principal.add_device(f"LIB-{i:02d}", owner_name=f"Cliente {i}")
    trocar_backup(par, revogar_token_apos=4, login_apos_revogar=False)
    r, pair = rodar_json(par, "--paralelo", "1")
    assert r.codigo == 1
    # depois da revogação: uma escrita levou 401, o novo login foi recusado e nada mais foi enviado
    assert par.backup.counts[CRIAR] == 5
    # logins: o do início, o novo (recusado) depois do 401 e o da releitura de conferência (recusado)
    assert par.backup.counts[("POST", "/admin/login")] == 3
    mensagens = [f["mensagem"] for f in pair["falhas"]]
    assert len(mensagens) == 16 and sum("não enviada" in m for m in mensagens) == 15
    assert backup_libera_o_que_o_principal_nega(par) == []


def test_token_perto_do_prazo_e_renovado_antes_de_criar_e_bloquear(par, tmp_path):
    """Um token deste servidor já venceu por prazo nesta execução (120 s, visto num 401): antes de uma sequência
    criar → bloquear, um token que passou de 3/4 do prazo é trocado por um novo (um login), para a sequência não
    ser cortada no meio; longe do prazo, nenhum login a mais. A API não diz o prazo: ele vem do que a execução
    viu (ApiClient.token_life); o tempo de vida do token é adiantado pelo teste (esperar 90 s não cabe aqui)."""
    for chave in ("Z-1", "Z-2"):
        par.principal.add_device(chave, owner_name=f"Estornada {chave}", status="blocked", created_by="sergio")
    config = sb.Config(primary=sb.ServerConfig("principal", par.principal.url, "admin", par.senha_principal),
                       backups=[sb.ServerConfig("backup", par.backup.url, "admin", par.senhas_backup)],
                       data_dir=str(tmp_path), timeout=5, wake_wait=0, http_retries=0, backoff=0.01, parallel=1,
                       progress=False)
    clientes = [sb.ApiClient(config.primary, config), sb.ApiClient(config.backups[0], config)]
    try:
        for cliente in clientes:
            cliente.login()
        principal, backup = (sb.fetch_snapshot(c) for c in clientes)
        plano = sb.plan_pair(principal, backup, dt.datetime.now(dt.timezone.utc).date())  # noqa: UP017
        assert [[a.kind for a in c] for c in plano.license_chains] == [[sb.CREATE, sb.BLOCK]] * 2
        cliente = clientes[1]
        cliente.token_life, cliente.logged_at = 120.0, time.monotonic() - 10  # longe do prazo
        # depois do bloqueio de Z-1, o token passa a ter 100 s: perto do prazo (mais de 3/4 de 120 s)
        par.backup.on_request("POST", "/admin/devices/Z-1/deactivate",
                              lambda _s: setattr(cliente, "logged_at", time.monotonic() - 100))
        par.zerar_contagens()
        resultados = sb.Executor(cliente, sb.CredentialStore(str(tmp_path)), config, backup=True).run(
            [], plano.license_chains)
    finally:
        for cliente in clientes:
            cliente.close()
    assert all(r.ok for r in resultados) and not par.backup.veredito("Z-1") and not par.backup.veredito("Z-2")
    caminhos = [caminho for metodo, caminho, _ in par.backup.requests_log if metodo == "POST"]
    criar, bloquear = "/admin/devices/create", "/admin/devices/<id>/deactivate"
    assert caminhos == [criar, bloquear, "/admin/login", criar, bloquear]


# ---------------------------------------------------------------------------
# Servidor de versão antiga
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("versao", ["antiga", "primeira"])
def test_versao_antiga_nunca_recebe_licenca_negada_e_a_segunda_execucao_nao_escreve(par, versao):
    motivos = semear_misto(par.principal)
    trocar_backup(par, versao=versao)
    _, pair = rodar_json(par)
    assert backup_libera_o_que_o_principal_nega(par) == []
    liberadas = {k for k, m in motivos.items() if m == "liberada"}
    assert set(par.backup.devices()) == liberadas  # as negadas ficaram de fora (negadas lá também)
    assert par.backup.counts[STATUS] == 0  # nenhuma tentativa de bloquear numa rota que não existe
    assert sondas(par.backup) == 1
    negadas = {f["chave"] for f in pair["falhas"]}
    assert negadas == set(motivos) - liberadas
    assert all("versão antiga" in f["mensagem"] for f in pair["falhas"])
    assert all(f["nao_sincronizavel"] for f in pair["falhas"])
    antes = par.backup.write_count()
    rodar_json(par)
    assert par.backup.write_count() == antes, par.backup.requests_log[-10:]
    assert backup_libera_o_que_o_principal_nega(par) == []


def test_versao_antiga_com_licenca_liberada_que_o_principal_bloqueou_e_relatada(par):
    par.principal.add_device("X-1", owner_name="Cliente", status="blocked")
    trocar_backup(par, versao="antiga").add_device("X-1", owner_name="Cliente")
    r, pair = rodar_json(par)
    assert r.codigo == 1
    (falha,) = pair["falhas"]
    assert falha["chave"] == "X-1" and "LIBERADA" in falha["mensagem"] and "painel" in falha["mensagem"]
    assert par.backup.counts[STATUS] == 0 and par.backup.write_count() == 0


def test_sonda_de_rota_so_quando_alguma_cadeia_bloqueia(par):
    par.principal.add_device("LIB-1", owner_name="Só liberada")
    rodar_json(par)
    assert sondas(par.backup) == 0
    # /health, /servers e as duas listagens, antes e depois das escritas (conferência)
    assert collections.Counter(m for m, _, _ in par.backup.requests_log)["GET"] == 6
