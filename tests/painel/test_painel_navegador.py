"""Painel num navegador de verdade (Chromium do Debian via Playwright), em tela de celular (390x844) e de
computador (1280x900): tabela de execuções inteira na tela, gráfico com datas, legenda fora das barras,
paridade ao longo do tempo e horários com o fuso. As capturas ficam em artefatos/ para conferência."""

from __future__ import annotations

import json

import pytest

from apoio import ARTEFATOS, CHROMIUM, EXIGIR_NAVEGADOR, abrir_painel, get

FUSO = "<-03>3"  # fuso POSIX fixo (não depende do tzdata): UTC-3, como Brasília
URL_ERRADA = "http://127.0.0.1:9"  # porta fechada: a URL digitada errado num teste manual
TELAS = {"celular": (390, 844), "computador": (1280, 900)}


def cenario(par) -> None:
    """Execuções variadas e reais: URL errada (3x), sincronizações, uma falha e uma bidirecional."""
    par.principal.add_user("ana", "senha-ana-123", email="ana@exemplo.com")
    for i in range(1, 5):
        par.principal.add_device(f"P-{i}", owner_name="Açaí do Pará")
    par.principal.add_device("P-5", status="pending")  # divergência que não se sincroniza
    rapido = {"SYNC_ESPERA_DESPERTAR": "0", "SYNC_TENTATIVAS_HTTP": "0"}
    for _ in range(3):
        assert par.rodar("--backup", URL_ERRADA, **rapido).codigo == 4
    assert par.rodar().codigo == 0
    par.backup.set_faults(fail_rate=1.0, fail_modes=["503"])
    assert par.rodar(**rapido).codigo == 4
    par.backup.clear_faults()
    for i in range(6, 9):
        par.principal.add_device(f"P-{i}")
    assert par.rodar().codigo == 0
    par.backup.add_device("B-1", owner_name="Loja do backup")
    par.principal.add_device("P-9")
    assert par.rodar("--bidirecional").codigo == 0


def caixa_dentro(caixa: dict, largura: int) -> bool:
    return caixa["x"] >= -0.5 and caixa["x"] + caixa["width"] <= largura + 0.5


def cruzam(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


# Texto e caixa (na janela, como o bounding_box do Playwright) de cada elemento visível do seletor, numa
# chamada só ao navegador: elemento a elemento eram 3 idas e voltas por célula (a maior parte da CPU do teste).
# Visível como no is_visible do Playwright: caixa não vazia e checkVisibility() (que exclui o conteúdo de
# um <details> fechado, como a tabela das configurações antigas do painel).
_JS_VISIVEIS = """seletor => Array.from(document.querySelectorAll(seletor)).flatMap(e => {
    if (e.checkVisibility && !e.checkVisibility()) return [];
    const r = e.getBoundingClientRect();
    if (r.width <= 0 || r.height <= 0 || getComputedStyle(e).visibility !== "visible") return [];
    return [[(e.textContent || "").trim(), {x: r.x, y: r.y, width: r.width, height: r.height}]];
})"""


def visiveis(pagina, seletor: str) -> list[tuple[str, dict]]:
    return [(texto, caixa) for texto, caixa in pagina.evaluate(_JS_VISIVEIS, seletor)]


def conferir_tela(pagina, nome: str, largura: int) -> None:
    # Tabela de execuções: cada cabeçalho (computador) ou rótulo (celular) e cada célula dentro da tela.
    rotulos = visiveis(pagina, "table.execucoes th") + visiveis(pagina, "table.execucoes .rotulo")
    textos = {texto for texto, _ in rotulos}
    assert {"Início", "Principal → Backup", "Modo", "Situação", "Mudanças", "Falhas", "Paridade", "Duração",
            "Execução"} <= textos, (nome, textos)
    fora = [(t, c) for t, c in rotulos + visiveis(pagina, "table.execucoes td") if not caixa_dentro(c, largura)]
    assert not fora, (nome, fora[:3])
    assert pagina.evaluate("document.documentElement.scrollWidth") <= largura + 1, nome

    # Gráfico: datas no eixo, legenda sem tocar nas barras, paridade como linha.
    datas = visiveis(pagina, "figure.grafico text.data")
    assert len(datas) >= 2, (nome, datas)
    barras = [c for _, c in visiveis(pagina, "figure.grafico rect.barra")]
    assert len(barras) >= 3, nome
    legenda = pagina.locator("figure.grafico figcaption").bounding_box()
    assert legenda and not any(cruzam(legenda, b) for b in barras), nome
    assert not any(cruzam(d, b) for _, d in datas for b in barras), nome
    for i, (_, a) in enumerate(datas):
        assert not any(cruzam(a, b) for _, b in datas[i + 1:]), nome  # datas não se atropelam
    grafico = pagina.locator("figure.grafico svg").bounding_box()
    cortados = [(t, c) for t, c in visiveis(pagina, "figure.grafico text")
                if c["x"] < grafico["x"] - 0.5 or c["x"] + c["width"] > grafico["x"] + grafico["width"] + 0.5]
    assert not cortados, (nome, cortados)  # nenhum rótulo de eixo cortado na borda do gráfico
    pontos = pagina.locator("figure.grafico polyline.linha-paridade").get_attribute("points").split()
    assert len(pontos) >= 3, nome

    # Horários com o fuso (-03) no cartão e na tabela; escritas por lado na bidirecional.
    primeira = pagina.locator("table.execucoes tr.execucao").first
    assert "(-03)" in primeira.locator("td").first.inner_text(), nome
    assert "backup 1 · principal 1" in primeira.inner_text(), nome
    assert "(-03)" in pagina.locator(".pares .par").first.inner_text(), nome
    dica = pagina.locator("figure.grafico g.coluna title").last.text_content()
    assert "(-03) · bidirecional · mudanças: backup 1 · principal 1 · paridade" in dica, (nome, dica)
    pagina.screenshot(path=str(ARTEFATOS / f"painel_{nome}.png"), full_page=True)


@pytest.mark.skipif(not CHROMIUM and not EXIGIR_NAVEGADOR, reason="Chromium não instalado (o .ci/run instala)")
def test_painel_no_celular_e_no_computador(par):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "o CI precisa do Chromium do Debian (apt-get install chromium)"
    cenario(par)
    proc, url = abrir_painel(par.ambiente(TZ=FUSO))
    try:
        status, corpo = get(url + "/status.json")
        dados = json.loads(corpo)
        assert status == 200, dados  # as 3 execuções com a URL errada não deixam o monitor vermelho
        assert [p["backup"] for p in dados["pares_antigos"]] == [URL_ERRADA.rstrip("/")]
        ARTEFATOS.mkdir(exist_ok=True)
        with sync_playwright() as p:
            navegador = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            try:
                for nome, (largura, altura) in TELAS.items():
                    pagina = navegador.new_page(viewport={"width": largura, "height": altura})
                    bloqueios: list[str] = []  # a CSP do painel não pode bloquear nada da própria página
                    pagina.on("console", lambda m, b=bloqueios: b.append(m.text)
                              if "Content Security Policy" in m.text else None)
                    resposta = pagina.goto(url + "/")
                    assert "default-src 'none'" in resposta.headers["content-security-policy"]
                    assert URL_ERRADA not in pagina.locator(".pares").first.inner_text()
                    antigas = pagina.locator("details.antigas")
                    assert "Configurações antigas" in antigas.locator("summary").inner_text()
                    antigas.locator("summary").click()  # aberta: a tabela dela também precisa caber
                    assert antigas.locator(".par").get_attribute("data-backup") == URL_ERRADA
                    assert antigas.locator("tr.execucao").count() == 3
                    conferir_tela(pagina, nome, largura)
                    assert not bloqueios, (nome, bloqueios)
                    assert pagina.evaluate("getComputedStyle(document.querySelector('.par')).borderLeftWidth") \
                        == "6px", nome  # o <style> autorizado pelo hash foi aplicado
                    pagina.close()
            finally:
                navegador.close()
    finally:
        proc.terminate()
        proc.wait(10)
    for nome in TELAS:
        assert (ARTEFATOS / f"painel_{nome}.png").stat().st_size > 5000
