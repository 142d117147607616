"""Painel web e /status.json, testados num navegador de verdade (Chromium do Debian via Playwright)."""

from __future__ import annotations

import dataclasses
import json
import re
import os
import subprocess
import urllib.parse

import pytest
import sincronizar_bancos as sb

from apoio import ARTEFATOS, CHROMIUM, EXIGIR_NAVEGADOR, comando_script, abrir_painel, get

@pytest.fixture
def painel(par):
    par.principal.add_user("ana", "senha-ana-123", email="ana@exemplo.com")
    par.principal.add_device("P-1", owner_name="Açaí do Pará")
    par.principal.add_device("P-2", status="pending")
    assert par.rodar().codigo == 0
    proc, url = abrir_painel(par.ambiente())
    yield par, url
    proc.terminate()
    proc.wait(10)


def test_status_json_200_depois_503_apos_falha(painel):
    par, url = painel
    status, corpo = get(url + "/status.json")
    dados = json.loads(corpo)
    assert status == 200 and dados["ok"] is True
    assert dados["pares"][0]["backup"] == par.backup.url and dados["pares"][0]["estado"] == "saudável"
    par.backup.stop()
    assert par.rodar().codigo == 4
    status, corpo = get(url + "/status.json")
    dados = json.loads(corpo)
    assert status == 503 and dados["ok"] is False
    assert dados["pares"][0]["estado"] == "falhando"
    assert dados["pares"][0]["ultimo_erro"]


def test_status_json_atrasado_e_sem_historico(par):
    import datetime as dt

    import sincronizar_bancos as sb

    # Um histórico real cujo último sucesso foi há 3 horas (limite: 120 min).
    par.dados.mkdir(parents=True)
    historico = sb.History(str(par.dados))
    antes = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=3)).isoformat(timespec="seconds")
    linha = historico.start_pair("antiga", antes, "unidirecional", par.principal.url, par.backup.url)
    direcao = sb.Direction(sb.ServerConfig("principal", par.principal.url, "admin", "x"),
                           sb.ServerConfig("backup", par.backup.url, "admin", "x"))
    historico.finish_pair(linha, sb.PairOutcome(direcao, started=antes, ended=antes, duration_s=1.0))
    historico.close()
    proc, url = abrir_painel(par.ambiente())
    try:
        status, corpo = get(url + "/status.json")
        dados = json.loads(corpo)
        assert status == 503 and dados["pares"][0]["estado"] == "atrasado"
        assert dados["pares"][0]["atraso_min"] >= 179
    finally:
        proc.terminate()
        proc.wait(10)
    # Nunca sincronizou: também alerta.
    proc, url = abrir_painel(par.ambiente(DADOS_DIR=str(par.tmp_path / "vazio")))
    try:
        status, corpo = get(url + "/status.json")
        assert status == 503 and "nenhuma execução" in json.loads(corpo)["mensagem"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_fora_do_loopback_exige_token(par):
    env = par.ambiente()
    r = subprocess.run(comando_script("painel", "--host", "0.0.0.0", "--porta", "0"), env=env,
                       capture_output=True, text=True, encoding="utf-8", timeout=30)
    assert r.returncode == 2 and "PAINEL_TOKEN" in r.stderr and "Traceback" not in r.stderr
    token = "tk-" + os.urandom(12).hex()
    proc, url = abrir_painel(par.ambiente(PAINEL_TOKEN=token), "--host", "0.0.0.0")
    try:
        assert get(url + "/")[0] == 401
        assert get(url + "/status.json")[0] == 401
        assert get(url + "/status.json", "errado")[0] == 401
        assert get(url + "/", token)[0] == 200
        assert get(url + f"/status.json?token={token}")[0] in (200, 503)
    finally:
        proc.terminate()
        _, erros = proc.communicate(timeout=10)
    assert token not in erros  # o log de acesso do painel mascara o token


@pytest.mark.skipif(not CHROMIUM and not EXIGIR_NAVEGADOR, reason="Chromium não instalado (o .ci/run instala)")
def test_pagina_no_navegador(painel):
    from playwright.sync_api import sync_playwright

    par, url = painel
    assert CHROMIUM, "o CI precisa do Chromium do Debian (apt-get install chromium)"
    ARTEFATOS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        navegador = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            pagina = navegador.new_page(viewport={"width": 390, "height": 844})  # tamanho de celular
            pagina.goto(url + "/")
            assert "Sincronização" in pagina.title()
            cartao = pagina.locator(f'.par[data-backup="{par.backup.url}"]')
            assert cartao.count() == 1
            assert "SAUDÁVEL" in cartao.inner_text()
            assert pagina.locator("tr.execucao").count() == 1
            assert pagina.locator("figure.grafico rect.barra").count() == 1
            assert pagina.locator("text=Nenhum conflito aberto").count() == 1
            assert "P-2" in pagina.content()  # divergência: pendente no principal, bloqueada no backup
            assert pagina.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # cabe no celular
            pagina.screenshot(path=str(ARTEFATOS / "painel.png"), full_page=True)
        finally:
            navegador.close()
    assert (ARTEFATOS / "painel.png").stat().st_size > 5000


# --- Estado agora: só a configuração atual conta ----------------------------------------------------------

URL_ERRADA = "http://127.0.0.1:9"  # porta fechada: a URL digitada errado num teste manual
RAPIDO = {"SYNC_ESPERA_DESPERTAR": "0", "SYNC_TENTATIVAS_HTTP": "0"}


def status(url: str) -> tuple[int, dict]:
    codigo, corpo = get(url + "/status.json")
    return codigo, json.loads(corpo)


def sem_servidores(env: dict) -> dict:
    return {k: v for k, v in env.items() if k not in ("SERVIDOR_PRINCIPAL", "SERVIDOR_BACKUP")}


def test_execucoes_com_url_errada_nao_deixam_o_monitor_vermelho(par):
    par.principal.add_device("P-1")
    for _ in range(3):
        assert par.rodar("--backup", URL_ERRADA, **RAPIDO).codigo == 4
    proc, url = abrir_painel(par.ambiente())
    try:
        codigo, dados = status(url)
        assert codigo == 503 and [p["estado"] for p in dados["pares"]] == ["sem execuções"]
        assert par.backup.url in dados["mensagem"] and "503 até a primeira sincronização" in dados["mensagem"]
        assert [(p["backup"], p["estado"]) for p in dados["pares_antigos"]] == [(URL_ERRADA, "falhando")]
        assert par.rodar().codigo == 0
        codigo, dados = status(url)
        assert codigo == 200 and dados["ok"] is True and dados["configuracao_atual"] is True
        assert [(p["principal"], p["backup"]) for p in dados["pares"]] == [(par.principal.url, par.backup.url)]
        assert dados["pares"][0]["escritas"] == {"backup": 1, "principal": 0}
        assert [p["backup"] for p in dados["pares_antigos"]] == [URL_ERRADA]
        _, pagina = get(url + "/")
        html = pagina.decode()
        antigas = html[html.index('<details class="antigas">'):]
        assert URL_ERRADA in antigas and URL_ERRADA not in html[:html.index('<details class="antigas">')]
        assert "Configurações antigas (fora do status.json): 1 par<" in antigas
    finally:
        proc.terminate()
        proc.wait(10)


def test_trocar_o_backup_no_env_vale_sem_reiniciar_o_painel(par_dois_backups):
    par = par_dois_backups
    primeiro, segundo = (b.url for b in par.backups)
    arquivo = par.tmp_path / "config.env"
    arquivo.write_text(f"SERVIDOR_PRINCIPAL={par.principal.url}/\nSERVIDOR_BACKUP={primeiro}\n", encoding="utf-8")
    env = sem_servidores(par.ambiente())
    assert par.rodar("--env", str(arquivo), env=env).codigo == 0
    proc, url = abrir_painel(env, "--env", str(arquivo))
    try:
        codigo, dados = status(url)
        assert codigo == 200 and [p["backup"] for p in dados["pares"]] == [primeiro]
        # O usuário troca o backup no .env: o painel relê o arquivo e espera a primeira execução do novo par.
        arquivo.write_text(f"SERVIDOR_PRINCIPAL={par.principal.url}\nSERVIDOR_BACKUP={segundo}\n", encoding="utf-8")
        codigo, dados = status(url)
        assert codigo == 503 and [(p["backup"], p["estado"]) for p in dados["pares"]] == [(segundo, "sem execuções")]
        assert [p["backup"] for p in dados["pares_antigos"]] == [primeiro]
        assert par.rodar("--env", str(arquivo), env=env).codigo == 0
        codigo, dados = status(url)
        assert codigo == 200 and dados["mensagem"] == "todos os backups sincronizados"
        # .env quebrado no meio da edição: fica a última configuração válida, sem derrubar o painel.
        arquivo.write_text("SERVIDOR_PRINCIPAL=ftp://errado\nSERVIDOR_BACKUP=x\n", encoding="utf-8")
        assert status(url)[0] == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_painel_sem_servidores_configurados_conta_todos_os_pares(par):
    par.principal.add_device("P-1")
    assert par.rodar("--backup", URL_ERRADA, **RAPIDO).codigo == 4
    assert par.rodar().codigo == 0
    proc, url = abrir_painel(sem_servidores(par.ambiente()))
    try:
        codigo, dados = status(url)
        assert codigo == 503 and dados["configuracao_atual"] is False and dados["pares_antigos"] == []
        assert sorted(p["estado"] for p in dados["pares"]) == ["falhando", "saudável"]
        assert "não estão configurados" in get(url + "/")[1].decode()
    finally:
        proc.terminate()
        proc.wait(10)


def test_url_invalida_na_configuracao_do_painel(par):
    r = subprocess.run(comando_script("painel", "--porta", "0"),
                       env=par.ambiente(SERVIDOR_BACKUP="ftp://backup.exemplo.com"),
                       capture_output=True, text=True, encoding="utf-8", timeout=30)
    assert r.returncode == 2 and "URL inválida" in r.stderr and "Traceback" not in r.stderr


def gravar(historico, principal: str, backup: str, modo: str, situacao: str, erro: str | None = None,
           conflitos: tuple[str, ...] = (), divergencias: tuple[str, ...] = (), escritas_no_principal: int = 0) -> None:
    """Uma linha do histórico gravada como a execução grava: a partir de um PairOutcome tipado."""
    import datetime as dt
    agora = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    import sincronizar_bancos as sb
    linha = historico.start_pair(f"exec-{os.urandom(3).hex()}", agora, modo, principal, backup)
    direcao = sb.Direction(sb.ServerConfig("principal", principal, "admin", "x"),
                           sb.ServerConfig("backup", backup, "admin", "x"), restore=modo == "restauracao")
    plano = sb.plan_pair(sb.Snapshot("p", {}, {}), sb.Snapshot("b", {}, {}), dt.date.today())
    plano = dataclasses.replace(plano, conflicts=tuple(
        sb.Conflict(chave, "mudou nos dois lados", sb.ConflictPolicy.REPORT, None, None) for chave in conflitos))
    lado_do_principal = next(lado for lado in sb.Side if direcao.role_of(lado) == sb.Role.PRIMARY)
    escritas = [sb.Result(sb.Action(sb.CREATE, f"R-{i}", "teste", side=lado_do_principal), True)
                for i in range(escritas_no_principal)]
    resultado = sb.PairOutcome(direcao, started=agora, ended=agora, duration_s=1.0, status=sb.PairStatus(situacao),
                               code=0 if situacao == "ok" else 4, plan=plano, results=escritas, error=erro,
                               divergences=[sb.Divergence(sb.RecordKind.LICENSE, chave, "status", "pending", "blocked",
                                                          "não copiável") for chave in divergencias])
    historico.finish_pair(linha, resultado)


def test_restauracao_conta_para_o_par_e_verificacao_nao(par):
    import sincronizar_bancos as sb

    par.dados.mkdir(parents=True)
    historico = sb.History(str(par.dados))
    gravar(historico, par.principal.url, par.backup.url, "unidirecional", "erro", erro="principal vazio")
    gravar(historico, par.principal.url, par.backup.url, "verificacao", "ok")
    historico.close()
    proc, url = abrir_painel(par.ambiente())
    try:
        codigo, dados = status(url)
        assert codigo == 503 and dados["pares"][0]["estado"] == "falhando"  # verificar não sincroniza
        historico = sb.History(str(par.dados))
        gravar(historico, par.principal.url, par.backup.url, "restauracao", "ok", escritas_no_principal=3)
        historico.close()
        codigo, dados = status(url)
        assert codigo == 200 and dados["pares"][0]["ultimo_modo"] == "restauracao"
        assert dados["pares"][0]["escritas"] == {"backup": 0, "principal": 3}
        html = get(url + "/")[1].decode()
        assert "restauração" in html and "principal 3" in html and "backup 0" not in html
    finally:
        proc.terminate()
        proc.wait(10)


def test_listas_longas_terminam_com_e_mais(par):
    import sincronizar_bancos as sb

    par.dados.mkdir(parents=True)
    historico = sb.History(str(par.dados))
    divergencias = [f"D-{i:03d}" for i in range(250)]
    conflitos = [f"C-{i:03d}" for i in range(201)]
    gravar(historico, par.principal.url, par.backup.url, "bidirecional", "falhas", divergencias=divergencias,
           conflitos=conflitos)
    historico.close()
    proc, url = abrir_painel(par.ambiente())
    try:
        html = get(url + "/")[1].decode()
        assert html.count('<tr class="divergencia">') == 200
        assert "… e mais 50<" in html and "D-199" in html and "D-200" not in html
        assert html.count('<tr class="conflito">') == 200 and "… e mais 1<" in html
        assert "licença C-000" in html and "licença D-000" in html
    finally:
        proc.terminate()
        proc.wait(10)


def pedir(url: str, host: str | None) -> tuple[int, dict, bytes]:
    """GET com um cabeçalho Host escolhido (o que um navegador manda depois de um DNS rebinding)."""
    import http.client

    partes = urllib.parse.urlsplit(url)
    conexao = http.client.HTTPConnection(partes.hostname, partes.port, timeout=10)
    try:
        conexao.putrequest("GET", partes.path or "/", skip_host=True)
        if host is not None:
            conexao.putheader("Host", host)
        conexao.endheaders()
        resposta = conexao.getresponse()
        return resposta.status, dict(resposta.getheaders()), resposta.read()
    finally:
        conexao.close()


def test_painel_so_responde_ao_proprio_nome_de_host(painel):
    _, url = painel
    porta = urllib.parse.urlsplit(url).port
    for host in (f"127.0.0.1:{porta}", f"localhost:{porta}"):
        assert pedir(url + "/status.json", host)[0] == 200, host
    for host in (f"site-malicioso.exemplo:{porta}", "site-malicioso.exemplo", f"127.0.0.1:{porta + 1}",
                 f"10.1.2.3:{porta}", None):
        codigo, _, corpo = pedir(url + "/", host)
        assert codigo == 403 and "PAINEL_NOMES" in corpo.decode(), host
        assert b"Sincroniza" not in corpo  # nada do painel vaza para a página de outro site


def test_nome_configurado_em_painel_nomes_e_aceito(par):
    assert par.rodar().codigo == 0
    proc, url = abrir_painel(par.ambiente(PAINEL_NOMES="loja-pc, Painel.Loja.lan"))
    try:
        porta = urllib.parse.urlsplit(url).port
        assert pedir(url + "/", f"painel.loja.lan:{porta}")[0] == 200
        assert pedir(url + "/", f"loja-pc:{porta}")[0] == 200
        assert pedir(url + "/", f"outra-loja:{porta}")[0] == 403
    finally:
        proc.terminate()
        proc.wait(10)


def test_pagina_tem_csp_sem_script_e_o_estilo_pelo_hash(painel):
    import base64
    import hashlib

    _, url = painel
    codigo, cabecalhos, corpo = pedir(url + "/", urllib.parse.urlsplit(url).netloc)
    html = corpo.decode()
    csp = cabecalhos["Content-Security-Policy"]
    assert codigo == 200 and "default-src 'none'" in csp and "script-src" not in csp and "unsafe-inline" not in csp
    estilo = re.search(r"<style>(.*?)</style>", html, re.DOTALL).group(1)
    assinatura = base64.b64encode(hashlib.sha256(estilo.encode()).digest()).decode()
    assert f"'sha256-{assinatura}'" in csp  # o único <style> da página é o autorizado
    assert "<script" not in html and " style=" not in html and html.count("<style>") == 1
    assert cabecalhos["X-Frame-Options"] == "DENY" and cabecalhos["Referrer-Policy"] == "no-referrer"


@pytest.mark.skipif(os.name != "posix", reason="Ctrl+C (SIGINT) num processo filho só se envia em POSIX")
def test_ctrl_c_fecha_o_painel_em_silencio_com_0(par):
    import signal

    proc, url = abrir_painel(par.ambiente())
    assert get(url + "/status.json")[0] in (200, 503)
    proc.send_signal(signal.SIGINT)
    saida, erros = proc.communicate(timeout=10)
    assert proc.returncode == 0, erros
    assert "Traceback" not in erros and "❌" not in erros and "Interrompido" not in erros
    assert "Painel encerrado" in saida


def test_historico_danificado_deixa_o_painel_vermelho_e_a_sincronizacao_o_troca(painel):
    """Histórico ilegível com o painel aberto: 503 com a explicação (nunca o último 'saudável', nunca uma
    conexão cortada); a sincronização seguinte o guarda ao lado e o painel volta a mostrar os pares."""
    par, url = painel
    (par.dados / "historico.sqlite3").write_bytes(b"isto nao e um banco sqlite " * 200)
    status, corpo = get(url + "/status.json")
    dados = json.loads(corpo)
    assert status == 503 and dados["ok"] is False and dados["historico_danificado"] is True
    assert "danificado" in dados["mensagem"] and "próxima sincronização" in dados["mensagem"]
    status, pagina = get(url + "/")
    assert status == 503 and "HISTÓRICO DANIFICADO" in pagina.decode() and "SAUDÁVEL" not in pagina.decode()
    r = par.rodar()
    assert r.codigo == 1, r.stdout + r.stderr  # seguiu, avisou e trocou o arquivo
    assert list(par.dados.glob("historico.sqlite3.danificado-*"))
    dados = json.loads(get(url + "/status.json")[1])
    assert "historico_danificado" not in dados and dados["pares"][0]["backup"] == par.backup.url


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(linha for linha in status if linha.startswith("Threads:")).split()[1])


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="conta as threads do painel por /proc (Linux)")
def test_conexoes_caladas_nao_criam_threads_e_o_painel_continua_respondendo(par):
    import socket
    import time
    assert par.rodar().codigo == 0
    proc, url = abrir_painel(par.ambiente())
    host, porta = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    caladas = []
    try:
        for _ in range(300):  # conectam e nunca mandam nada
            caladas.append(socket.create_connection((host, porta), timeout=5))
        time.sleep(0.5)
        inicio = time.monotonic()
        status, corpo = get(url + "/status.json")
        assert status == 200 and json.loads(corpo)["ok"] is True
        assert time.monotonic() - inicio < 3
        assert _threads(proc.pid) < 30, _threads(proc.pid)  # antes: uma thread por conexão (301)
        # passado o prazo (sb.PANEL_IDLE_TIMEOUT, 10 s), o painel fecha as caladas: espera cada uma fechar (até
        # 10 s além do prazo), em vez de dormir 12 s e olhar; uma que só esgota a espera não conta como fechada
        prazo = time.monotonic() + sb.PANEL_IDLE_TIMEOUT + 10
        fechadas = 0
        for conexao in caladas:
            conexao.settimeout(max(prazo - time.monotonic(), 0.1))
            try:
                fechadas += conexao.recv(1) == b""
            except socket.timeout:
                pass
            except OSError:  # reset pelo painel: fechada também
                fechadas += 1
        assert fechadas == len(caladas)
        assert get(url + "/status.json")[0] == 200
    finally:
        for conexao in caladas:
            conexao.close()
        proc.terminate()
        proc.wait(10)



# (caso, detalhes gravados na linha, classe do cartão da rota de falha (None: sem cartão), trechos do HTML)
DETALHES_ANTIGOS_OU_DANIFICADOS = [
    ("linha antiga, sem rota de falha", {"conflitos": []}, None, ("Nenhum conflito aberto",)),
    ("rota de falha que nem é objeto", {"rota_de_falha": "texto"}, None, ()),
    ("rota de falha com campos de tipo errado",
     {"rota_de_falha": {"grave": "sim", "servidores": "x", "apelidos": ["a"], "sincronizados": ["https://p.test", 3],
                        "achados": [1, {"grave": True, "mensagem": "M<b>"}]}}, "atrasado",
     ('<li class="grave">M&lt;b&gt;</li>', "<code>LICENSE_SERVERS=https://p.test</code>")),
    ("rota de falha com servidor sem lista legível",
     {"rota_de_falha": {"grave": False, "servidores": [None, {"url": "https://b.test", "papel": "backup",
                                                             "estado": "desconhecida", "lista": "x"}],
                        "achados": []}}, "atrasado", ("(backup): desconhecida</li>", "https://b.test: lista não lida")),
    ("conflitos e totais por campo danificados",
     {"conflitos": [None, {"chave": "C-1", "tipo": 7}], "divergencias_por_campo": {"status": "x"}}, None,
     ("C-1",)),
    ("divergências e só no backup danificados",
     {"divergencias": ["x", {"chave": "D-1", "campo": "status", "principal": ["a"]}], "so_no_backup": ["Z"]}, None,
     ("D-1", "Nenhum conflito aberto")),
    ("detalhes que nem são JSON", "{não é json", None, ("Nenhum conflito aberto", "Nenhuma divergência")),
    ("só no backup com itens que não são texto", {"so_no_backup": {"licencas_liberadas": ["Z-1", 2, None]}}, None,
     ("Z-1", "1 licença")),
]


@pytest.mark.parametrize("caso,detalhes,cartao,trechos", DETALHES_ANTIGOS_OU_DANIFICADOS,
                         ids=[c[0] for c in DETALHES_ANTIGOS_OU_DANIFICADOS])
def test_detalhes_antigos_ou_danificados_no_historico_nao_quebram_o_painel(tmp_path, caso, detalhes, cartao, trechos):
    """Os detalhes de uma linha (a rota de falha, os conflitos) são lidos uma vez para campos tipados, com o
    padrão de cada campo para uma linha antiga ou danificada: o painel mostra o resto e nunca decide "grave"
    (vermelho) por um campo que não é true; um registro que nem é objeto vale como não gravado."""
    import sqlite3

    import sincronizar_bancos as sb

    historico = sb.History(str(tmp_path))
    try:
        gravar(historico, "https://p.test", "https://b.test", "unidirecional", "ok")
        with sqlite3.connect(tmp_path / sb.HISTORY_FILE) as banco:
            banco.execute("UPDATE execucoes SET detalhes = ?",
                          (detalhes if isinstance(detalhes, str) else json.dumps(detalhes),))
        html = sb.render_panel(historico, 120, current=[("https://p.test", "https://b.test")])
        codigo, _doc = sb.status_document(historico, 120, [("https://p.test", "https://b.test")])
    finally:
        historico.close()
    assert codigo == 200 and 'class="par saudavel"' in html
    if cartao is None:
        assert "rota-de-falha" not in html
    else:
        assert f'class="par {cartao} rota-de-falha"' in html
    assert all(trecho in html for trecho in trechos), [t for t in trechos if t not in html]


@pytest.mark.skipif(os.name != "posix", reason="SIGSTOP só em POSIX")
def test_rajada_de_conexoes_e_aceita_pelo_sistema_mesmo_com_o_painel_sem_cpu(par):
    """Com o painel parado (SIGSTOP: uma máquina ocupada, ou ele no meio de outra coisa), o sistema completa uma
    rajada de conexões na fila do accept (request_queue_size = PANEL_MAX_WAITING) e o painel as atende quando
    volta. Com a fila padrão do socketserver (5), a 7ª em diante tinha o SYN descartado e só tentava de novo 1 s
    depois (e 3, 7 s...): 300 conexões mudas levavam 30 s numa máquina ocupada, e o navegador esperava atrás."""
    import signal
    import socket

    proc, url = abrir_painel(par.ambiente())
    host, porta = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port
    conexoes = []
    try:
        proc.send_signal(signal.SIGSTOP)
        try:
            for _ in range(100):  # cada uma só completa se couber na fila (0,5 s: bem menos que a 1ª repetição do SYN)
                conexoes.append(socket.create_connection((host, porta), timeout=0.5))
        finally:
            proc.send_signal(signal.SIGCONT)
        conexoes[-1].sendall(f"GET /status.json HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        conexoes[-1].settimeout(10)
        assert conexoes[-1].recv(64).startswith(b"HTTP/1.0 "), "a última da rajada não foi atendida"
        assert get(url + "/status.json")[0] in (200, 503)
    finally:
        for conexao in conexoes:
            conexao.close()
        proc.terminate()
        proc.wait(10)
