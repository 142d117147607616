"""Rota de falha dos clientes: a lista de GET /servers de cada servidor × os servidores que a
ferramenta mantém sincronizados. Servidores de referência reais e o script por main() no processo do pytest."""

from __future__ import annotations

import collections
import json

import pytest

from apoio import ServidorStub, abrir_painel, enviar, get, rodar_script
from servidor_referencia import SERVIDORES_PADRAO

import sincronizar_bancos as sb

LEITURAS = collections.Counter({("GET", "/health"): 1, ("POST", "/admin/login"): 1, ("GET", "/admin/users"): 1,
                                ("GET", "/admin/devices"): 1, ("GET", "/servers"): 1})
ESTRANHO = "https://licencas-esquecidas.example.com"


def publicar(par, lista, *servidores):
    for servidor in servidores or [par.principal] + par.backups:
        servidor.set_license_servers(lista)


def contagens_minimas(par):
    for servidor in [par.principal] + par.backups:
        assert servidor.counts == LEITURAS, servidor.counts


def rota(execucao):
    return execucao.json()["rota_de_falha"]


def tipos(doc):
    return [achado["tipo"] for achado in doc["achados"]]


# ---------------------------------------------------------------------------
# De ponta a ponta
# ---------------------------------------------------------------------------

def test_listas_iguais_a_configuracao_nada_aparece_e_uma_get_servers_por_servidor(par):
    par.principal.add_device("L-1", owner_name="José")
    par.zerar_contagens()
    r = par.rodar()
    assert r.codigo == 0, r.stdout + r.stderr
    assert "Rota de falha" not in r.stdout and "rota de falha" not in r.stdout.lower()
    # só as leituras de sempre + exatamente uma GET /servers em cada servidor (e, no backup, a escrita da
    # licença; nos dois, a releitura final que confere a paridade depois dela)
    releitura = collections.Counter({("GET", "/admin/users"): 1, ("GET", "/admin/devices"): 1})
    assert par.principal.counts == LEITURAS + releitura
    assert par.backup.counts == LEITURAS + releitura + collections.Counter({("POST", "/admin/devices/create"): 1})

    par.zerar_contagens()
    v = par.rodar("verificar", "--json")
    assert v.codigo == 0, v.stdout + v.stderr
    contagens_minimas(par)
    doc = rota(v)
    assert doc["ok"] is True and doc["grave"] is False and doc["achados"] == []
    assert [s["estado"] for s in doc["servidores"]] == ["publicada", "publicada"]
    assert doc["servidores"][0]["lista"] == [par.principal.url, par.backup.url]


def test_url_nao_sincronizada_na_lista_verificar_sai_1_e_nomeia_a_url(par):
    # em dia (e não vazios: servidores vazios pedem uma conferência a mais)
    for servidor in (par.principal, par.backup):
        servidor.add_device("L-1", owner_name="José")
    publicar(par, [par.principal.url, par.backup.url, ESTRANHO])
    par.zerar_contagens()
    v = par.rodar("verificar")
    assert v.codigo == 1, v.stdout + v.stderr
    contagens_minimas(par)
    assert ESTRANHO in v.stdout and "NÃO sincroniza" in v.stdout
    assert "SERVIDOR_BACKUP" in v.stdout and "LICENSE_SERVERS" in v.stdout
    # quem está em risco: os clientes dessa lista, quando o principal e o backup não respondem
    assert f"quando {par.principal.url} e {par.backup.url} não respondem" in v.stdout
    assert "backups em dia, mas a rota de falha precisa de ajuste" in v.stdout

    vj = par.rodar("verificar", "--json")
    assert vj.codigo == 1
    assert vj.json()["significado"] == sb.FAILOVER_CHECK_MEANING
    achado = rota(vj)["achados"][0]
    assert (achado["tipo"], achado["url"], achado["posicao"], achado["grave"]) == (
        "url_nao_sincronizada", ESTRANHO, 3, True)
    assert achado["servidores"] == [par.principal.url, par.backup.url]

    # a sincronização normal mostra o bloco, mas o código de saída não muda por isso
    s = par.rodar()
    assert s.codigo == 0, s.stdout + s.stderr
    assert "🧭 Rota de falha dos clientes" in s.stdout and ESTRANHO in s.stdout


def test_lista_padrao_do_servidor(par):
    publicar(par, None, par.backup)  # o backup nunca recebeu LICENSE_SERVERS
    v = par.rodar("verificar")
    assert v.codigo == 1, v.stdout + v.stderr
    assert "lista padrão do servidor, não a sua" in v.stdout
    assert all(url in v.stdout for url in SERVIDORES_PADRAO)
    # o backup publica a padrão e o principal a certa: as listas também diferem
    vj = par.rodar("verificar", "--json")
    assert set(tipos(rota(vj))) == {"lista_padrao", "listas_diferentes"}
    padrao = next(a for a in rota(vj)["achados"] if a["tipo"] == "lista_padrao")
    assert padrao["servidores"] == [par.backup.url] and padrao["grave"] is True


def test_backup_sincronizado_fora_da_lista_e_aviso_sem_mudar_o_verificar(par_dois_backups):
    par = par_dois_backups
    esquecido = par.backups[1]
    publicar(par, [par.principal.url, par.backups[0].url])
    v = par.rodar("verificar")
    assert v.codigo == 0, v.stdout + v.stderr
    assert f"O backup {esquecido.url} é sincronizado, mas não está na lista" in v.stdout
    assert "redundância desperdiçada" in v.stdout
    vj = par.rodar("verificar", "--json")
    assert tipos(rota(vj)) == ["backup_fora_da_lista"]
    assert rota(vj)["grave"] is False and rota(vj)["achados"][0]["url"] == esquecido.url


def test_servidores_com_listas_diferentes(par):
    publicar(par, [par.principal.url, par.backup.url], par.principal)
    publicar(par, [par.backup.url, par.principal.url], par.backup)
    r = par.rodar("verificar")
    assert r.codigo == 0, r.stdout + r.stderr
    assert "publicam listas diferentes" in r.stdout
    assert f"{par.principal.url}: {par.principal.url} → {par.backup.url}" in r.stdout
    assert f"{par.backup.url}: {par.backup.url} → {par.principal.url}" in r.stdout
    # e a lista do backup põe o principal em segundo
    assert f"O principal {par.principal.url} está na posição 2 da lista de {par.backup.url}" in r.stdout
    doc = rota(par.rodar("verificar", "--json"))
    assert sorted(tipos(doc)) == ["listas_diferentes", "principal_fora_do_topo"]


def test_servidor_sem_get_servers_fica_desconhecido_e_a_execucao_segue(par):
    par.principal.add_device("L-1")
    par.backup.set_servers_endpoint(False)
    par.zerar_contagens()
    r = par.rodar("--json")
    assert r.codigo == 0, r.stdout + r.stderr
    assert par.backup.counts[("GET", "/servers")] == 1 and par.principal.counts[("GET", "/servers")] == 1
    doc = rota(r)
    assert [s["estado"] for s in doc["servidores"]] == ["publicada", "desconhecida"]
    assert doc["servidores"][1]["lista"] is None and doc["achados"] == [] and doc["grave"] is False
    assert r.json()["backups"][0]["situacao"] == "ok"
    v = par.rodar("verificar")
    assert v.codigo == 0, v.stdout + v.stderr
    assert f"❔ {par.backup.url}: lista não lida" in v.stdout


def test_apelido_para_dominio_proprio_fica_em_silencio(par):
    dominio = "https://Licencas.MinhaLoja.example:443/"  # maiúsculas, porta padrão e barra: normalizados
    publicar(par, [par.principal.url + "/", dominio])
    sem_apelido = par.rodar("verificar")
    assert sem_apelido.codigo == 1 and "https://licencas.minhaloja.example" in sem_apelido.stdout
    env = par.ambiente(SERVIDORES_APELIDOS=f"https://licencas.minhaloja.example={par.backup.url}")
    v = par.rodar("verificar", env=env)
    assert v.codigo == 0, v.stdout + v.stderr
    assert "Rota de falha" not in v.stdout
    doc = rota(par.rodar("verificar", "--json", env=env))
    assert doc["ok"] is True and doc["apelidos"] == {"https://licencas.minhaloja.example": par.backup.url}
    # a ordem dos lados no item não importa
    env_invertido = par.ambiente(SERVIDORES_APELIDOS=f"{par.backup.url}=https://licencas.minhaloja.example")
    assert par.rodar("verificar", env=env_invertido).codigo == 0


@pytest.mark.parametrize("valor, trecho", [
    ("https://a.example", "use URL=URL"),
    ("https://a.example=https://b.example", "nenhum é servidor configurado"),
    ("ftp://a.example={backup}", "URL inválida"),
    ("{principal}={backup}", "os dois são servidores configurados"),
    ("https://x.example={principal},https://x.example={backup}", "apelido de dois servidores"),
])
def test_apelidos_invalidos_saem_com_2_e_mensagem_clara(par, valor, trecho):
    valor = valor.format(principal=par.principal.url, backup=par.backup.url)
    r = par.rodar("verificar", SERVIDORES_APELIDOS=valor)
    assert r.codigo == 2, r.stdout + r.stderr
    assert "SERVIDORES_APELIDOS" in r.stderr and trecho in r.stderr
    assert "Traceback" not in r.stderr


def test_historico_painel_e_status_json(par):
    perigosa = "https://x.example/<script>alert(1)</script>"
    publicar(par, [par.principal.url, par.backup.url, perigosa])
    assert par.rodar().codigo == 0
    h = rodar_script("historico", "--json", env=par.ambiente(), cwd=par.tmp_path)
    assert h.codigo == 0, h.stderr
    detalhes = h.json()["execucoes"][0]["detalhes"]["rota_de_falha"]
    assert detalhes["grave"] is True and detalhes["achados"][0]["url"] == perigosa

    proc, url = abrir_painel(par.ambiente())
    try:
        status, corpo = get(url + "/")
        html = corpo.decode("utf-8")
        assert status == 200
        assert "Rota de falha dos clientes" in html and 'class="par falhando rota-de-falha"' in html
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        # /status.json continua só sobre a saúde da sincronização (decisão documentada)
        status, corpo = get(url + "/status.json")
        assert status == 200 and json.loads(corpo)["ok"] is True and "rota_de_falha" not in corpo.decode()
    finally:
        proc.terminate()
        proc.wait(10)


def test_restaurar_nao_consulta_get_servers(par):
    par.backup.add_device("L-1")
    par.zerar_contagens()
    r = par.rodar("restaurar", "--json")
    assert r.codigo == 0, r.stdout + r.stderr
    assert rota(r) is None
    assert par.principal.counts[("GET", "/servers")] == 0 and par.backup.counts[("GET", "/servers")] == 0


# ---------------------------------------------------------------------------
# fetch_failover_list num servidor HTTP mínimo (cabeçalhos e respostas estranhas)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("resposta, esperado", [
    ((200, "application/json", '{"version": 1, "servers": ["https://a.example"]}'), ["https://a.example"]),
    ((200, "text/html", "<html>Just a moment...</html>"), None),  # página de host: 200 sem JSON
    ((404, "text/html", "<h1>Not Found</h1>"), None),
    ((200, "application/json", '{"servers": "https://a.example"}'), None),
    ((200, "application/json", '{"servers": [1, 2]}'), None),
    ((500, "application/json", '{"servers": ["https://a.example"]}'), None),
])
def test_fetch_failover_list_uma_get_sem_token_e_nunca_levanta(resposta, esperado):
    status, tipo, corpo = resposta
    with ServidorStub({("GET", "/servers"): lambda h: enviar(h, status, corpo, tipo)}) as stub:
        config = sb.Config(primary=sb.ServerConfig("principal", stub.url, "admin", "senha-x"), backups=[],
                           data_dir="", http_retries=0, timeout=5)
        client = sb.ApiClient(config.primary, config)
        client.token = "token-que-nao-pode-ir"
        assert sb.fetch_failover_list(client) == esperado
        client.close()
    assert len(stub.pedidos) == 1  # uma GET só, mesmo com 200 em HTML
    pedido = stub.pedidos[0]
    assert (pedido["metodo"], pedido["caminho"]) == ("GET", "/servers") and "Authorization" not in pedido["cabecalhos"]


def test_fetch_failover_list_servidor_fora_do_ar_vira_desconhecida():
    config = sb.Config(primary=sb.ServerConfig("principal", "http://127.0.0.1:9", "admin", "senha-x"), backups=[],
                       data_dir="", http_retries=0, timeout=2, connect_timeout=2)
    client = sb.ApiClient(config.primary, config)
    assert sb.fetch_failover_list(client) is None
    client.close()


# ---------------------------------------------------------------------------
# check_failover (puro)
# ---------------------------------------------------------------------------

P, B1, B2 = "https://p.example", "https://b1.example", "https://b2.example"


def test_check_failover_casos():
    ok = sb.check_failover([P, B1], {P: [P, B1], B1: ["HTTPS://P.example:443/", B1 + "/", B1]})
    assert ok.findings == () and not ok.off
    vazia = sb.check_failover([P, B1], {P: []})
    assert [f.kind for f in vazia.findings] == [sb.FindingKind.UNREACHED, sb.FindingKind.PRIMARY_NOT_FIRST]
    assert "está vazia" in vazia.findings[1].message
    nao_consultado = sb.check_failover([P, B1, B2], {P: [P, B1, B2], B1: None})
    assert [s.state for s in nao_consultado.lists] == [sb.ListState.PUBLISHED, sb.ListState.UNKNOWN,
                                                        sb.ListState.NOT_ASKED]
    assert nao_consultado.findings == () and nao_consultado.off  # a desconhecida aparece no bloco
    estranha = sb.check_failover([P, B1], {P: [B1, "nada-de-url", P]})
    assert [(f.kind, f.url, f.position) for f in estranha.findings] == [
        (sb.FindingKind.UNSYNCED, "nada-de-url", 2), (sb.FindingKind.PRIMARY_NOT_FIRST, P, 3)]
    assert estranha.serious and sb.failover_check_code(estranha, True, 0) == 1
    assert sb.failover_check_code(estranha, False, 0) == 0 and sb.failover_check_code(estranha, True, 4) == 4
    assert sb.failover_text(ok) == [] and sb.failover_text(None) == [] and sb.failover_json(None) is None
