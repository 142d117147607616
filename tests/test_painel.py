"""Painel web e /status.json, testados num navegador de verdade (Chromium do Debian via Playwright)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from conftest import ARTEFATOS, SCRIPT

CHROMIUM = (os.environ.get("NAVEGADOR_PAINEL") or shutil.which("chromium") or shutil.which("chromium-browser")
            or shutil.which("google-chrome") or shutil.which("chrome"))
# O .ci/run instala o Chromium do Debian e define EXIGIR_NAVEGADOR=1: lá, navegador ausente é falha.
EXIGIR_NAVEGADOR = os.environ.get("EXIGIR_NAVEGADOR") == "1"


def abrir_painel(env: dict, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "painel", "--porta", "0", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    linha = proc.stdout.readline()
    achado = re.search(r"http://([^/\s]+)/", linha)
    if not achado:
        proc.kill()
        raise AssertionError(f"painel não abriu: {linha!r} {proc.stderr.read()}")
    host_porta = achado.group(1).replace("0.0.0.0", "127.0.0.1")
    return proc, f"http://{host_porta}"


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


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
    historico.finish_pair(linha, {"fim": antes, "duracao_s": 1.0, "situacao": "ok", "codigo_saida": 0})
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
    r = subprocess.run([sys.executable, str(SCRIPT), "painel", "--host", "0.0.0.0", "--porta", "0"], env=env,
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
