"""Linha de comando, de ponta a ponta (main() no processo do pytest; como processo filho onde o processo é o
assunto: pipes fechados, sem console, disco cheio): erros de opção em português, sem abreviações silenciosas,
--version, --json que SEMPRE imprime um documento JSON (erros inclusive), saída em pipe fechado (| head) que
termina em silêncio e main() reentrante (cada chamada com o seu RunContext)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from filelock import FileLock

from apoio import (SCRIPT, ambiente_limpo, comando_script, rodar_no_processo, rodar_script, saida, sem_traceback,
                   semear_licencas)

import sincronizar_bancos as sb


INGLES = ("usage:", "unrecognized", "invalid choice", "expected one argument", "invalid float value",
          "invalid int value", "error:", "argument ")


def _primeira_linha(texto: str) -> str:
    return texto.strip().splitlines()[0] if texto.strip() else ""


@pytest.mark.parametrize("args, trecho", [
    (["--f"], "opção ou argumento desconhecido: --f"),          # abreviação de --forcar: recusada
    (["--sim"], "opção ou argumento desconhecido: --sim"),      # abreviação de --simular: recusada
    (["--conflito", "xyz"], "--conflito: valor inválido 'xyz'"),
    (["--timeout"], "--timeout: falta o valor desta opção"),
    (["--timeout", "trinta"], "--timeout: deve ser um número (recebido: 'trinta')"),
    (["--paralelo", "1.5"], "--paralelo: deve ser um número inteiro (recebido: '1.5')"),
    (["sincronizar", "demais"], "opção ou argumento desconhecido: demais"),
    (["comando-que-nao-existe"], "valor inválido 'comando-que-nao-existe'"),
    (["--simular=sim"], "--simular: esta opção não aceita valor"),
], ids=["abrev_forcar", "abrev_simular", "escolha", "falta_valor", "numero", "inteiro", "sobra",
        "comando", "valor_em_flag"])
def test_erro_de_opcao_em_portugues_codigo_2_primeira_linha(tmp_path, args, trecho):
    r = rodar_script(*args, env=ambiente_limpo(DADOS_DIR=str(tmp_path / "dados")), cwd=tmp_path, timeout=30)
    sem_traceback(r)
    assert r.codigo == 2, saida(r)
    primeira = _primeira_linha(r.stderr)
    assert primeira.startswith("❌ Opção inválida:") and trecho in primeira, r.stderr
    assert "--help" in r.stderr
    for palavra in INGLES:
        assert palavra not in r.stderr, f"{palavra!r} em inglês: {r.stderr}"
    assert r.stdout == ""
    assert not (tmp_path / "dados").exists()


# ---------------------------------------------------------------------------
# Subcomandos: cada um com a sua ajuda e só as suas opções (sb.COMMANDS)
# ---------------------------------------------------------------------------

def _opcoes_da_ajuda(texto: str) -> set[str]:
    """As opções que a ajuda descreve (as linhas da seção "opções", não o uso)."""
    return {m.group(1) for m in re.finditer(r"^  (?:-h, )?(--[a-z-]+)", texto, re.M)}


@pytest.mark.parametrize("nome", ["sincronizar", "demo", "verificar", "historico", "painel", "restaurar", "vigiar"])
def test_ajuda_do_comando_descreve_exatamente_as_opcoes_dele(tmp_path, nome):
    comando = sb.Command(nome)
    r = rodar_script(comando.value, "--help", env=ambiente_limpo(), cwd=tmp_path, timeout=30)
    assert r.codigo == 0 and r.stderr == "", saida(r)
    assert r.stdout.startswith(f"uso: sincronizar_bancos.py {comando.value} ")
    assert _opcoes_da_ajuda(r.stdout) == set(sb.COMMANDS[comando].options) | {"--help", "--version"}
    assert "".join(sb.COMMANDS[comando].description.split()) in "".join(r.stdout.split())


def test_cada_opcao_vale_para_algum_comando_e_a_ajuda_geral_lista_todas(tmp_path):
    geral = rodar_script("--help", env=ambiente_limpo(), cwd=tmp_path, timeout=30)
    assert geral.codigo == 0
    de_algum = set().union(*(spec.options for spec in sb.COMMANDS.values()))
    assert _opcoes_da_ajuda(geral.stdout) == de_algum | {"--help", "--version"}
    for comando, spec in sb.COMMANDS.items():  # os comandos, cada um com a sua linha
        assert re.search(rf"^    {comando.value} +{re.escape(spec.summary.split()[0])}", geral.stdout, re.M), comando


@pytest.mark.parametrize("args, opcao, comando, ajuda", [
    (["historico", "--bidirecional"], "--bidirecional", "o comando historico", "historico"),
    (["--bidirecional", "historico"], "--bidirecional", "o comando historico", "historico"),
    (["painel", "--espelhar"], "--espelhar", "o comando painel", "painel"),
    (["verificar", "--forcar"], "--forcar", "o comando verificar", "verificar"),
    (["demo", "--principal", "http://127.0.0.1:9"], "--principal", "o comando demo", "demo"),
    (["historico", "--de=http://127.0.0.1:9"], "--de", "o comando historico", "historico"),
    (["restaurar", "--bidirecional"], "--bidirecional", "o comando restaurar", "restaurar"),
    (["--porta", "9000"], "--porta", "sincronizar (o comando padrão)", ""),
], ids=["depois", "antes", "painel", "verificar", "demo", "com_igual", "restaurar", "sem_comando"])
def test_opcao_de_outro_comando_e_recusada_com_codigo_2(tmp_path, args, opcao, comando, ajuda):
    r = rodar_script(*args, env=ambiente_limpo(DADOS_DIR=str(tmp_path / "dados")), cwd=tmp_path, timeout=30)
    sem_traceback(r)
    assert r.codigo == 2, saida(r)
    linhas = r.stderr.strip().splitlines()
    assert linhas[0].startswith(f"❌ Opção inválida: {opcao} não vale para {comando}; vale para: "), r.stderr
    donos = linhas[0].split("vale para: ")[1].split(", ")
    assert donos == [c.value for c, spec in sb.COMMANDS.items() if opcao in spec.options]
    assert linhas[1].endswith(f"sincronizar_bancos.py {ajuda} --help".replace("  ", " ")), r.stderr
    for palavra in INGLES:
        assert palavra not in r.stderr, f"{palavra!r} em inglês: {r.stderr}"
    assert r.stdout == "" and not (tmp_path / "dados").exists()


def test_erro_do_proprio_comando_indica_a_ajuda_dele(tmp_path):
    r = rodar_script("verificar", "--timeout", "trinta", env=ambiente_limpo(), cwd=tmp_path, timeout=30)
    assert r.codigo == 2
    assert r.stderr.startswith("❌ Opção inválida: --timeout: deve ser um número (recebido: 'trinta')")
    assert r.stderr.strip().splitlines()[1].endswith("sincronizar_bancos.py verificar --help")


def test_opcao_de_outro_comando_com_json_imprime_documento(tmp_path):
    r = rodar_script("--json", "historico", "--espelhar", env=ambiente_limpo(), cwd=tmp_path, timeout=30)
    doc = _documento_de_erro(r, 2)
    assert doc["erro"].startswith("Opção inválida: --espelhar não vale para o comando historico")


@pytest.mark.parametrize("antes, depois", [
    (["--json", "verificar"], ["verificar", "--json"]),
    (["--dados-dir", "d", "--limite", "3", "historico"], ["historico", "--limite", "3", "--dados-dir", "d"]),
    (["--backup", "http://b", "--timeout", "7", "restaurar", "--de", "http://b"],
     ["restaurar", "--de", "http://b", "--timeout", "7", "--backup", "http://b"]),
    (["--intervalo", "9", "vigiar"], ["vigiar", "--intervalo", "9"]),
    (["--backup", "http://a", "verificar", "--backup", "http://b"], ["verificar", "--backup", "http://a", "--backup",
                                                                    "http://b"]),
], ids=["verificar", "historico", "restaurar", "vigiar", "repetida_dos_dois_lados"])
def test_opcoes_antes_ou_depois_do_comando_dao_o_mesmo(antes, depois):
    a, b = sb.build_parser().parse_args(antes), sb.build_parser().parse_args(depois)
    assert vars(a) == vars(b)
    assert a.comando is sb.Command(depois[0])
    padrao = sb.build_parser().parse_args([depois[0]])
    assert {k for k in vars(a) if vars(a)[k] != vars(padrao)[k]} == \
        {o.lstrip("-").replace("-", "_") for o in depois if o.startswith("--")}


def test_sem_comando_e_sincronizar_com_as_mesmas_opcoes():
    for args in ([], ["--simular", "--bidirecional"], ["--json", "--backup", "http://b"]):
        sem = sb.build_parser().parse_args(args)
        com = sb.build_parser().parse_args(["sincronizar", *args])
        assert sem.comando is sb.Command.SYNC and vars(sem) == vars(com)
    # todas as opções estão no resultado, com o padrão (build_config e os comandos as leem sem getattr)
    assert sb.build_parser().parse_args(["historico"]).conflito == "relatar"
    assert sb.build_parser().parse_args([]).limite == 20


def test_sem_comando_sincroniza(par):
    semear_licencas(par.principal, 3)
    r = par.rodar("--sem-progresso", "--json")
    assert r.codigo == 0, saida(r)
    assert r.json()["modo"] == sb.Mode.ONE_WAY and par.backup.write_count() > 0
    assert set(par.backup.devices()) == set(par.principal.devices())


def test_json_antes_de_verificar_e_visto_pelo_verificar(par):
    semear_licencas(par.principal, 3)
    for args in (["--json", "verificar", "--sem-progresso"], ["verificar", "--sem-progresso", "--json"]):
        r = par.rodar(*args)
        assert r.codigo == 1, saida(r)  # o backup vazio não está em dia
        assert r.json()["modo"] == sb.Mode.CHECK
    assert par.backup.write_count() == 0


def test_version():
    r = rodar_script("--version", env=ambiente_limpo(), timeout=30)
    assert r.codigo == 0
    assert r.stdout.strip() == f"sincronizar_bancos.py {sb.VERSAO}"
    assert r.stdout.strip().split()[1].startswith("1.")


def _documento_de_erro(r, codigo: int) -> dict:
    sem_traceback(r)
    assert r.codigo == codigo, saida(r)
    doc = json.loads(r.stdout)  # um só documento JSON no stdout
    assert doc["versao"] == 1 and doc["codigo_saida"] == codigo
    assert doc["significado"] and doc["erro"]
    return doc


def test_json_com_opcao_invalida_imprime_documento(tmp_path):
    r = rodar_script("--json", "--conflito", "xyz", env=ambiente_limpo(), cwd=tmp_path, timeout=30)
    doc = _documento_de_erro(r, 2)
    assert "--conflito" in doc["erro"] and doc["significado"] == sb.ExitCode.CONFIG.meaning


def test_json_com_erro_de_configuracao_imprime_documento(tmp_path):
    vazio = tmp_path / "vazio.env"
    vazio.write_text("# nada\n", encoding="utf-8")
    r = rodar_script("--json", "--env", str(vazio), env=ambiente_limpo(), cwd=tmp_path, timeout=30)
    doc = _documento_de_erro(r, 2)
    assert "SERVIDOR_PRINCIPAL" in doc["erro"]


def test_json_com_trava_ocupada_imprime_documento_codigo_3(par):
    par.dados.mkdir(parents=True, exist_ok=True)
    with FileLock(str(par.dados / sb.LOCK_FILE)).acquire(timeout=5):
        r = par.rodar("--json")
    doc = _documento_de_erro(r, 3)
    assert "em andamento" in doc["erro"]
    assert sum(par.principal.counts.values()) + sum(par.backup.counts.values()) == 0


_QUEBRA_NO_MEIO = r"""
import sys
sys.path.insert(0, sys.argv[1])
import sincronizar_bancos as sb
def quebra(config, rep, *resto):
    raise RuntimeError("falha interna simulada")
sb.run_sync = quebra
sys.exit(sb.main(sys.argv[2:]))
"""


def test_json_com_erro_inesperado_imprime_documento(par):
    proc = subprocess.run([sys.executable, "-c", _QUEBRA_NO_MEIO, str(SCRIPT.parent), "--json"],
                          env=par.ambiente(), cwd=par.tmp_path, capture_output=True, text=True,
                          encoding="utf-8", timeout=60)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 1, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["codigo_saida"] == 1 and "RuntimeError" in doc["erro"] and "falha interna simulada" in doc["erro"]
    assert "inesperado" in doc["significado"]


def test_pipe_fechado_e_epipe_em_todo_sistema_e_einval_so_no_windows():
    """No Windows, escrever num pipe cujo leitor saiu dá OSError EINVAL, não BrokenPipeError (visto com o
    Python 3.13 oficial do Windows: o teste abaixo saía com 1 e "Erro de arquivo ou sistema")."""
    import errno

    assert sb.closed_pipe(BrokenPipeError(errno.EPIPE, "Broken pipe"), windows=False)
    assert sb.closed_pipe(BrokenPipeError(errno.EPIPE, "Broken pipe"), windows=True)
    assert sb.closed_pipe(OSError(errno.EINVAL, "Invalid argument"), windows=True)
    assert not sb.closed_pipe(OSError(errno.EINVAL, "Invalid argument"), windows=False)
    assert not sb.closed_pipe(OSError(errno.ENOSPC, "No space left on device"), windows=True)


def test_pipe_fechado_tambem_na_saida_de_erro_mantem_o_codigo_de_saida(tmp_path):
    """Como `python sincronizar_bancos.py --xyz 2>&1 | head -0`: a mensagem de erro não chega a ninguém,
    mas o código continua o da opção inválida (2), não 1 ("erro de arquivo ou sistema")."""
    leitura, escrita = os.pipe()
    os.close(leitura)  # quem lia já foi embora
    try:
        proc = subprocess.run(comando_script("--xyz"), stdout=escrita, stderr=escrita, env=ambiente_limpo(),
                              cwd=tmp_path, timeout=60)
    finally:
        os.close(escrita)
    assert proc.returncode == 2


def test_pipe_fechado_termina_em_silencio_e_sincroniza(par):
    """Como `python sincronizar_bancos.py | head -1`: quem lê fecha o pipe antes do fim."""
    semear_licencas(par.principal, 5)
    proc = subprocess.Popen(comando_script("--sem-progresso"), env=par.ambiente(),
                            cwd=par.tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # o leitor foi embora antes da primeira linha
    _, err = proc.communicate(timeout=60)
    err = err.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert "Broken pipe" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert err == ""
    assert set(par.backup.devices()) == set(par.principal.devices())  # a sincronização foi até o fim


def test_pipe_fechado_no_help():
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--help"], env=ambiente_limpo(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and err == b"", err


def test_tabela_de_codigos_do_readme_e_a_do_script():
    """Os códigos de saída e seus significados têm um lugar só (ExitCode); o README os repete
    com o mesmo texto, nem um a mais nem um a menos, e a precedência entre pares é a do script."""
    import re
    from pathlib import Path
    readme = (Path(sb.__file__).parent / "README.md").read_text(encoding="utf-8")
    secao = readme.split("## Códigos de saída", 1)[1].split("\n## ", 1)[0]
    linhas = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.*) \|$", secao, re.M)}
    assert set(linhas) == {c.value for c in sb.ExitCode}
    for codigo in sb.ExitCode:
        assert linhas[codigo.value].startswith(codigo.meaning), (codigo, linhas[codigo.value])
    ordem = ", ".join(str(c.value) for c in sb.ExitCode.by_precedence() if c != sb.ExitCode.OK)
    assert f"nesta ordem: {ordem}." in readme


def _execucoes_no_historico(par) -> list[tuple]:
    import sqlite3
    con = sqlite3.connect(par.dados / "historico.sqlite3")
    try:
        return con.execute("SELECT situacao, codigo_saida FROM execucoes").fetchall()
    finally:
        con.close()


@pytest.mark.skipif(os.name != "posix", reason="fechar os descritores 1 e 2 antes do exec só em POSIX")
def test_sem_console_como_no_pythonw_sincroniza_e_registra(par):
    """pythonw.exe (tarefa agendada sem console) parte o Python com sys.stdout e sys.stderr None; aqui, o mesmo
    de verdade: o filho começa com os descritores 1 e 2 fechados (o Python os põe em None)."""
    semear_licencas(par.principal, 4)
    sonda = par.tmp_path / "sonda.txt"
    subprocess.run([sys.executable, "-c", f"import sys; open({str(sonda)!r}, 'w').write(str(sys.stdout is None))"],
                   preexec_fn=lambda: (os.close(1), os.close(2)), timeout=30)
    assert sonda.read_text() == "True"  # a condição do pythonw: sys.stdout é None
    proc = subprocess.run(comando_script(), env=par.ambiente(), cwd=par.tmp_path, stdin=subprocess.DEVNULL,
                          preexec_fn=lambda: (os.close(1), os.close(2)), timeout=120)
    assert proc.returncode == 0
    assert set(par.backup.devices()) == set(par.principal.devices())
    assert _execucoes_no_historico(par) == [("ok", 0)]
    assert json.loads((par.dados / "ultima_execucao.json").read_text(encoding="utf-8"))["codigo_saida"] == 0


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="/dev/full só no Linux")
def test_saida_num_disco_cheio_nao_para_a_sincronizacao(par):
    semear_licencas(par.principal, 4)
    with open("/dev/full", "w") as cheio:
        proc = subprocess.run(comando_script(), env=par.ambiente(), cwd=par.tmp_path, stdin=subprocess.DEVNULL,
                              stdout=cheio, stderr=subprocess.PIPE, timeout=120)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert set(par.backup.devices()) == set(par.principal.devices())
    assert _execucoes_no_historico(par) == [("ok", 0)]


# ---------------------------------------------------------------------------
# main(argv) reentrante: cada chamada com o seu RunContext
# ---------------------------------------------------------------------------

def _sigterm_quando_o_tratador_estiver_ligado(parar: threading.Event, limite: float = 20) -> threading.Thread:
    """Uma thread que espera main() ligar o tratador de SIGTERM (StopSignals.handle) e então manda SIGTERM a
    este processo: o tratador o recebe na thread principal, no meio da execução. `parar` a encerra (o teste
    acabou sem o tratador ligado: ela não pode sobrar para a execução de outro teste neste processo)."""
    original = signal.getsignal(signal.SIGTERM)

    def mandar() -> None:
        fim = time.monotonic() + limite
        while time.monotonic() < fim and not parar.is_set():
            tratador = signal.getsignal(signal.SIGTERM)
            if tratador is not original and getattr(tratador, "__name__", "") == "handle":
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=mandar, daemon=True)
    thread.start()
    return thread


def test_duas_execucoes_no_mesmo_processo_nao_dividem_segredos_parada_nem_json(tmp_path):
    """Uma execução com --json, uma senha e um SIGTERM no meio (código 143) não deixa nada para as seguintes
    no mesmo processo: a senha dela não é mascarada na seguinte (não é um segredo desta), a seguinte não sai em
    JSON e a demonstração depois dela não se dá por interrompida (a parada era da primeira)."""
    senha = "senha-so-da-primeira-execucao"
    with socket.create_server(("127.0.0.1", 0)) as mudo:  # aceita e nunca responde: a primeira fica no login
        url = f"http://127.0.0.1:{mudo.getsockname()[1]}"
        env = ambiente_limpo(SERVIDOR_PRINCIPAL=url, SERVIDOR_BACKUP=url.replace("127.0.0.1", "localhost"),
                             ADMIN_USER="admin", ADMIN_PASSWORD=senha, SYNC_ESPERA_DESPERTAR="60",
                             SYNC_TIMEOUT="2", DADOS_DIR=str(tmp_path / "dados"))
        parar = threading.Event()
        sinal = _sigterm_quando_o_tratador_estiver_ligado(parar)
        try:
            primeira = rodar_no_processo(["--json", "--permitir-http", "--sem-progresso"], env=env, cwd=tmp_path)
        finally:
            parar.set()
            sinal.join(5)
    assert primeira.codigo == sb.ExitCode.TERMINATED, saida(primeira)
    assert json.loads(primeira.stdout)["codigo_saida"] == sb.ExitCode.TERMINATED

    pasta = tmp_path / senha  # o caminho tem o texto da senha da primeira: a segunda não o conhece como segredo
    segunda = rodar_no_processo(["historico"], env=ambiente_limpo(DADOS_DIR=str(pasta)), cwd=tmp_path)
    assert segunda.codigo == sb.ExitCode.CONFIG, saida(segunda)
    assert str(pasta) in segunda.stderr and "***" not in segunda.stderr, segunda.stderr
    assert len(segunda.stderr.splitlines()) == 1, "nada da espera da primeira (já cancelada) na saída da segunda"
    assert segunda.stdout == "", "a segunda não pediu --json"

    demo = rodar_no_processo(["demo"], env=ambiente_limpo(DADOS_DIR=str(tmp_path / "d")), cwd=tmp_path)
    assert demo.codigo == 0, saida(demo)
    assert "SIGTERM" not in saida(demo) and "Escritas no backup durante a segunda execução: 0" in demo.stdout


@pytest.mark.parametrize("args", [("--help",), ("verificar", "--help"), ("--json",), ("historico",), ("--xyz",),
                                  ("--simular", "--principal", "ftp://x")])
def test_execucao_no_processo_e_igual_a_um_python_novo(tmp_path, args):
    """rodar_script roda main() no processo do pytest: mesma saída, mesma saída de erro e mesmo código que
    `python sincronizar_bancos.py` num Python novo, com o mesmo ambiente e a mesma pasta."""
    env = ambiente_limpo(DADOS_DIR=str(tmp_path / "dados"))
    novo = subprocess.run([sys.executable, str(SCRIPT), *args], env=env, cwd=tmp_path, capture_output=True,
                          stdin=subprocess.DEVNULL, text=True, encoding="utf-8", timeout=60)
    no_processo = rodar_no_processo(args, env=env, cwd=tmp_path)
    assert (no_processo.codigo, no_processo.stdout, no_processo.stderr) == (novo.returncode, novo.stdout, novo.stderr)
