"""A primeira hora de um vendedor novo: mensagens que dizem a causa real e o conserto exato, com as URLs
dele. Script por main() no processo do pytest, servidores de referência reais."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from apoio import (EXIGIR_PYTHON_ANTIGO, PYTHON_ANTIGO, SCRIPT, WRAPPER, abrir_painel, ambiente_limpo, get,
                   rodar_script)


def test_lista_de_fabrica_traz_a_linha_license_servers_com_as_urls_do_usuario(par):
    for servidor in [par.principal, par.backup]:
        servidor.set_license_servers(None)  # servidor recém-instalado: lista de fábrica em GET /servers
    r = par.rodar()
    assert r.codigo == 0, r.stdout + r.stderr
    linha = f"LICENSE_SERVERS={par.principal.url},{par.backup.url}"
    assert r.stdout.count(linha) == 1, r.stdout
    assert "reinicie" in r.stdout
    # O painel mostra a mesma linha no cartão da rota de falha.
    proc, url = abrir_painel(par.ambiente())
    try:
        _, pagina = get(url + "/")
        assert f"<code>{linha}</code>" in pagina.decode()
    finally:
        proc.terminate()
        proc.wait(10)


def test_rota_certa_nao_mostra_a_linha(par):
    r = par.rodar()
    assert r.codigo == 0 and "LICENSE_SERVERS=" not in r.stdout


def test_licenca_liberada_so_no_backup_aparece_no_painel_e_concorda(par):
    par.principal.add_device("P-1")
    par.backup.add_device("SO-NO-BACKUP")
    r = par.rodar()
    # Sem estado salvo não dá para saber se é venda feita no backup ou reembolso: sai com 1 e nomeia a licença.
    assert r.codigo == 1 and "LIBERADA(S) só no backup" in r.stdout and "SO-NO-BACKUP" in r.stdout, r.stdout
    proc, url = abrir_painel(par.ambiente())
    try:
        _, pagina = get(url + "/")
        html = pagina.decode()
        assert "Licenças liberadas só no backup" in html and "SO-NO-BACKUP" in html
        assert "1 licença só no backup e liberada(s) lá" in html
        _, corpo = get(url + "/status.json")
        assert json.loads(corpo)["pares"][0]["liberadas_so_no_backup"] == 1
    finally:
        proc.terminate()
        proc.wait(10)


def ultima_linha(texto: str) -> str:
    return [linha for linha in texto.strip().splitlines() if linha.strip() and not linha.startswith("====")][-1]


def test_verificar_com_licenca_so_no_backup_nao_manda_sincronizar(par):
    par.principal.add_device("P-1")
    assert par.rodar().codigo == 0
    par.backup.add_device("SO-NO-BACKUP")
    r = par.rodar("verificar")
    assert r.codigo == 1
    assert "rode a sincronização" not in r.stdout
    assert "1 licença só no backup está LIBERADA lá e o principal negaria (sincronizar não muda isso)" in r.stdout
    final = ultima_linha(r.stdout)
    assert "bloqueie ou apague no backup (SO-NO-BACKUP)" in final and "--espelhar" in final, final


def test_verificar_com_rota_de_falha_errada_termina_com_a_linha_certa(par):
    for servidor in [par.principal, par.backup]:
        servidor.set_license_servers(None)
    r = par.rodar("verificar")
    assert r.codigo == 1 and "rode a sincronização" not in r.stdout
    final = ultima_linha(r.stdout)
    assert f"LICENSE_SERVERS={par.principal.url},{par.backup.url}" in final, final


def test_verificar_fora_de_sincronia_ainda_manda_sincronizar(par):
    par.principal.add_device("P-1")
    r = par.rodar("verificar")
    assert r.codigo == 1 and "rode a sincronização" in r.stdout


def ambiente_sem_configuracao(par) -> dict:
    return {k: v for k, v in par.ambiente().items()
            if not k.startswith(("SERVIDOR_", "ADMIN_", "PRINCIPAL_", "BACKUP_", "DADOS_DIR"))}


def conteudo_env(par) -> str:
    return (f"SERVIDOR_PRINCIPAL={par.principal.url}\nSERVIDOR_BACKUP={par.backup.url}\nADMIN_USER=admin\n"
            f"# Configuração da loja do João\nPRINCIPAL_ADMIN_PASSWORD={par.senha_principal}\n"
            f"BACKUP_ADMIN_PASSWORD={par.senhas_backup}\nDADOS_DIR={par.dados}\n")


def test_env_em_cp1252_pede_para_salvar_em_utf8(par):
    arquivo = par.tmp_path / "loja.env"
    arquivo.write_bytes(conteudo_env(par).encode("cp1252"))
    r = rodar_script("--env", str(arquivo), env=ambiente_sem_configuracao(par), cwd=par.tmp_path)
    assert r.codigo == 2 and "Traceback" not in r.stderr
    assert "salve o .env como UTF-8" in r.stderr and "Windows-1252" in r.stderr
    assert sum(par.principal.counts.values()) == 0


def test_env_em_utf16_do_powershell_pede_para_salvar_em_utf8(par):
    arquivo = par.tmp_path / "loja.env"
    arquivo.write_bytes(conteudo_env(par).encode("utf-16"))  # o que 'echo ... > .env' grava no PowerShell 5
    r = rodar_script("--env", str(arquivo), env=ambiente_sem_configuracao(par), cwd=par.tmp_path)
    assert r.codigo == 2 and "Traceback" not in r.stderr
    assert "salve o .env como UTF-8" in r.stderr and "PowerShell" in r.stderr


def test_env_em_utf8_com_acento_funciona(par):
    arquivo = par.tmp_path / "loja.env"
    arquivo.write_text(conteudo_env(par), encoding="utf-8")
    r = rodar_script("--env", str(arquivo), env=ambiente_sem_configuracao(par), cwd=par.tmp_path)
    assert r.codigo == 0, r.stderr


def test_sem_env_diz_onde_procurou(par, tmp_path):
    import shutil

    from apoio import SCRIPT

    pasta = tmp_path / "instalacao"
    pasta.mkdir()
    copia = pasta / SCRIPT.name
    shutil.copy(SCRIPT, copia)
    r = rodar_script(env=ambiente_sem_configuracao(par), cwd=tmp_path, script=copia)
    assert r.codigo == 2 and "Traceback" not in r.stderr
    assert "SERVIDOR_PRINCIPAL não foi configurado" in r.stderr
    assert f"Nenhum arquivo .env foi encontrado em {pasta / '.env'}" in r.stderr, r.stderr


AJUDAS = {
    "sincronizar": ("é o que roda sem COMANDO", ["--bidirecional", "--espelhar", "--forcar", "--simular"],
                    ["--porta", "--limite", "--de URL", "--intervalo"]),
    "vigiar": ("Modo contínuo", ["--intervalo", "--bidirecional", "--espelhar"],
               ["--porta", "--limite", "--de URL", "--json", "--simular", "--forcar"]),
    "demo": ("servidores de referência", ["--json"], ["--espelhar", "--porta", "--principal"]),
    "verificar": ("nunca grava nada", ["--principal", "--backup", "--json"], ["--porta", "--espelhar", "--limite"]),
    "historico": ("últimas execuções", ["--limite", "--detalhes"], ["--porta", "--espelhar", "--forcar"]),
    "painel": ("Ctrl+C", ["--porta", "--host"], ["--espelhar", "--forcar", "--limite"]),
    "restaurar": ("perdeu dados", ["--de", "--forcar", "--simular"], ["--porta", "--espelhar", "--limite"]),
}


def test_ajuda_de_cada_comando_mostra_so_as_opcoes_dele(tmp_path):
    geral = rodar_script("--help", env=ambiente_limpo(), cwd=tmp_path)
    assert geral.codigo == 0 and "COMANDO --help" in geral.stdout
    assert all(re.search(rf"^    {comando} ", geral.stdout, re.M) for comando in AJUDAS), geral.stdout
    for comando, (trecho, tem, nao_tem) in AJUDAS.items():
        for pedido in ([comando, "--help"], [comando, "-h"], ["--help", comando]):
            r = rodar_script(*pedido, env=ambiente_limpo(), cwd=tmp_path)
            assert r.codigo == 0 and r.stderr == "", (pedido, r.stderr)
            assert r.stdout.startswith(f"uso: sincronizar_bancos.py {comando}"), (pedido, r.stdout[:200])
            assert trecho in r.stdout, (pedido, r.stdout)
            assert all(opcao in r.stdout for opcao in tem), (pedido, r.stdout)
            assert not any(opcao in r.stdout for opcao in nao_tem), (pedido, r.stdout)
            if comando not in ("sincronizar", "vigiar"):  # estes dois têm quase todas as opções
                assert len(r.stdout.splitlines()) < len(geral.stdout.splitlines()) * 0.6, pedido


def porta_fechada() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cabecalho_aparece_antes_do_login(par):
    r = par.rodar(BACKUP_ADMIN_PASSWORD="errada-123456")
    assert r.codigo == 2
    assert f"Principal: {par.principal.url}" in r.stdout and f"Backup: {par.backup.url}" in r.stdout


def test_espera_do_despertar_diz_por_que_espera(par):
    par.principal.add_device("P-1")
    pagina = "<html><body>503 Service Unavailable (app acordando)</body></html>"
    par.backup.override("GET", "/health", 503, pagina, content_type="text/html", times=2)
    r = par.rodar(SYNC_ESPERA_DESPERTAR="30")
    assert r.codigo == 0, r.stdout + r.stderr
    cabecalho = r.stdout.index(f"Backup: {par.backup.url}")
    espera = r.stdout.index(f"⏳ Backup ({par.backup.url}): respondeu HTTP 503")
    assert cabecalho < espera, r.stdout
    linha = r.stdout[espera:].splitlines()[0]
    assert "servidor gratuito dormindo" in linha and "até 30 s" in linha, linha
    assert r.stdout.count("⏳") == 1  # uma explicação por servidor, não uma por tentativa


def test_conexao_recusada_nao_e_host_dormindo_e_espera_pouco(par):
    import time

    fechada = f"http://127.0.0.1:{porta_fechada()}"
    inicio = time.monotonic()
    r = par.rodar(SERVIDOR_BACKUP=fechada, SYNC_ESPERA_DESPERTAR="90", SYNC_TENTATIVAS_HTTP="0")
    duracao = time.monotonic() - inicio
    assert r.codigo == 4, r.stdout + r.stderr
    assert duracao < 30, f"esperou {duracao:.0f} s uma porta fechada (limite configurado: 90 s)"
    texto = r.stdout + r.stderr
    assert "conexão recusada" in texto and "502/503" in texto and "SERVIDOR_BACKUP" in texto, texto


def test_restaurar_diz_que_grava_no_principal_e_o_que_falta_nele(par):
    par.backup.add_user("bia", "senha-bia-123")
    par.backup.add_device("B-1")
    r = par.rodar("restaurar")
    assert r.codigo == 0, r.stdout + r.stderr
    assert "👤 bia: usuário criado no principal — não existe no principal" in r.stdout, r.stdout
    assert "➕ B-1: criada no principal — não existe no principal" in r.stdout
    assert "não existe no backup" not in r.stdout


def test_bidirecional_diz_em_qual_servidor_cada_escrita_cai(par):
    assert par.rodar("--bidirecional").codigo == 0
    par.backup.add_device("VENDA-NO-BACKUP")
    par.principal.add_device("VENDA-NO-PRINCIPAL")
    r = par.rodar("--bidirecional")
    assert r.codigo == 0, r.stdout + r.stderr
    assert "➕ VENDA-NO-BACKUP: criada no principal — não existe no principal" in r.stdout, r.stdout
    assert "➕ VENDA-NO-PRINCIPAL: criada no backup — não existe no backup" in r.stdout


def test_historico_detalhes_mostra_valores_em_portugues(par):
    par.principal.add_device("P-1", status="blocked")
    assert par.rodar().codigo == 0
    r = par.rodar("historico", "--detalhes", "1")
    assert r.codigo == 0, r.stderr
    assert "status: vazio → ativa" in r.stdout and "status: ativa → bloqueada" in r.stdout, r.stdout
    assert "license_type: vazio → \"anual\"" in r.stdout
    assert "None" not in r.stdout and "'blocked'" not in r.stdout and "'active'" not in r.stdout


def test_simulacao_nao_aponta_para_o_historico(par):
    for i in range(25):
        par.principal.add_device(f"P-{i:02d}")
    r = par.rodar("--simular")
    assert r.codigo == 0
    assert "… e mais 5 ações (lista completa com --json)" in r.stdout, r.stdout
    assert "histórico" not in r.stdout
    assert not (par.dados / "historico.sqlite3").exists()
    r = par.rodar("--simular", BACKUP_ADMIN_PASSWORD="errada-123456")
    assert r.codigo == 2 and "histórico" not in r.stdout + r.stderr


@pytest.mark.skipif(not PYTHON_ANTIGO and not EXIGIR_PYTHON_ANTIGO,
                    reason="nenhum Python 3.8/3.9 na máquina (o .ci/run instala o pypy3 do Debian)")
@pytest.mark.parametrize("programa", [SCRIPT, WRAPPER], ids=["script", "involucro"])
def test_python_antigo_recebe_uma_linha_com_python_310_e_como_obter_e_codigo_2(tmp_path, programa):
    assert PYTHON_ANTIGO, "EXIGIR_PYTHON_ANTIGO=1, mas não há Python 3.8/3.9 (instale o pypy3 do Debian)"
    # Um Python 3.9 de verdade, com os pacotes dele (sem requests, sem tzdata): como no Debian 11.
    proc = subprocess.run([PYTHON_ANTIGO, str(programa), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          env=ambiente_limpo(), stdin=subprocess.DEVNULL, timeout=120)
    linhas = [linha for linha in (proc.stdout + proc.stderr).splitlines() if linha.strip()]
    assert proc.returncode == 2, linhas
    assert len(linhas) == 1, linhas
    assert "Python 3.10 ou mais novo" in linhas[0] and "python3" in linhas[0], linhas
    assert "Traceback" not in linhas[0] and "Dependência ausente" not in linhas[0], linhas


@pytest.mark.parametrize("programa", [SCRIPT, WRAPPER], ids=["script", "involucro"])
def test_python_antes_do_38_para_na_linha_que_pede_o_310(programa):
    """2.7, 3.6 e 3.7 leem o arquivo inteiro antes de executar: o primeiro erro de sintaxe é o que o usuário vê.
    Sem esses interpretadores na máquina, vale a gramática deles pelo ast do Python atual (feature_version)."""
    import ast
    texto = Path(programa).read_text(encoding="utf-8")
    ast.parse(texto, feature_version=(3, 8))  # 3.8 e 3.9 leem o arquivo todo e executam o teste da versão
    with pytest.raises(SyntaxError) as erro:
        ast.parse(texto, feature_version=(3, 7))
    linha = texto.splitlines()[erro.value.lineno - 1]
    assert "precisa do Python 3.10 ou mais novo" in linha and linha.isascii(), linha
    assert texto.splitlines()[1] == "# -*- coding: utf-8 -*-"  # o 2.7 lê os acentos do cabeçalho até essa linha


def test_comando_sugerido_funciona_colado_num_shell_do_debian(tmp_path):
    """O comando que a mensagem sugere, colado num shell com o PATH do Debian 12 (sem `python`) na pasta do
    script, funciona: é o Python do ambiente virtual em uso, não um `python` qualquer."""
    import re
    import shutil
    r = rodar_script("--xyz", env=ambiente_limpo(), cwd=SCRIPT.parent)
    assert r.codigo == 2
    sugerido = re.search(r"Veja: (.+ sincronizar_bancos\.py --help)", r.stdout + r.stderr).group(1)
    debian = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
              "PYTHONIOENCODING": "utf-8"}
    colado = subprocess.run(sugerido, shell=True, cwd=SCRIPT.parent, env=debian, capture_output=True, text=True,
                            timeout=60, executable=shutil.which("sh") or "/bin/sh")
    assert colado.returncode == 0, (sugerido, colado.stdout[-500:], colado.stderr[-500:])
    assert "--bidirecional" in colado.stdout  # a ajuda completa


@pytest.mark.skipif(not Path("/usr/bin/python3").exists() or subprocess.run(
    ["/usr/bin/python3", "-c", "import requests"], capture_output=True).returncode == 0,
    reason="precisa do python3 do sistema sem as dependências (como num Debian recém-instalado)")
def test_python_do_sistema_sem_dependencias_sugere_um_ambiente_virtual(tmp_path):
    """No Debian 12 o pip do sistema é recusado (PEP 668): a sugestão é um .venv, com o python3 que existe lá."""
    proc = subprocess.run(["/usr/bin/python3", str(SCRIPT), "--help"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}, timeout=60)
    assert proc.returncode == 2
    linhas = [linha.strip() for linha in proc.stderr.splitlines()]
    assert "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt" in linhas, proc.stderr
    assert "pip install -r requirements.txt" not in linhas and " python sincronizar" not in proc.stderr
    assert any(linha.startswith("e rode com .venv/bin/python sincronizar_bancos.py") for linha in linhas)
