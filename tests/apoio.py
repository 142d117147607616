"""Apoio comum de todos os testes (não é um arquivo de testes): um lugar só para cada ajudante.

- Caminhos e artefatos: cada trabalhador do pytest-xdist grava no SEU log de saídas
  (artefatos/saidas_dos_testes.<trabalhador>.log), sem intercalar com os outros.
- Execução: `rodar_script` roda a ferramenta NO PROCESSO do pytest, por `sincronizar_bancos.main(argv)`
  (`rodar_no_processo`: ambiente, fuso, pasta, umask e saídas de cada execução trocados e devolvidos; o estado
  da execução é do RunContext de cada main()), e como processo filho só quando o processo é o assunto
  (`processo=True`, outro arquivo, outras variáveis de partida do Python). `rodar_python` roda um arquivo
  Python (o script, o invólucro, cópias do script) como processo filho (criado por fork do zigoto,
  `zigoto.py`, que já importou as dependências); `rodar_wrapper` é o invólucro na pasta de um par;
  `comando_script` é a linha de comando de um Python novo (sinais, kill -9, vigiar, painel).
- Servidores: `Par` sobe um principal e backups de referência reais (127.0.0.1, portas efêmeras,
  senhas aleatórias), com fuso, instante e senha opcionais; `ServidorStub` é o servidor mínimo para o que
  não é a API (webhook, proxy, página de host, resposta pingada).
- Dados: `semear_licencas`, `semear_usuarios`, `semear_iguais`.
- Veredito: o ÚNICO oráculo é o do servidor de referência (`ServidorReferencia.veredito`, que segue os
  passos do /verify); aqui há só atalhos que o chamam (`vereditos`, `diferentes_no_oraculo`...).
- Conferência por HTTP (`listar`, `sessao_admin`, `conferir_convergencia`) e da saída (`saida`, `sem_traceback`).
- Painel: `abrir_painel` (o script como processo filho) e `get`.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import io
import json
import os
import py_compile
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from caminhos import PASTA_TESTES, RAIZ, SCRIPT, WRAPPER  # noqa: E402  (também põe tests/ e a raiz no sys.path)

import sincronizar_bancos as sb  # noqa: E402
from servidor_referencia import ServidorReferencia  # noqa: E402

__all__ = [
    "ARTEFATOS", "CHROMIUM", "EXIGIR_NAVEGADOR", "EXIGIR_PYTHON_ANTIGO", "PYTHON_ANTIGO",
    "FLASK_404", "LOG_SAIDAS", "RAIZ", "SCRIPT", "SEGREDOS_USADOS",
    "TOKENS_VISTOS", "TRABALHADOR", "ZIGOTO", "EXECUCOES", "Execucao", "comando_script", "rodar_no_processo",
    "compilar_script", "Par", "ServidorStub", "abrir_painel", "ambiente_limpo",
    "anotar_saida", "backup_libera_o_que_o_principal_nega", "iniciar_script", "rodar_json", "rodar_python",
    "rodar_wrapper", "semear_misto", "texto_anotado", "trocar_backup", "WRAPPER",
    "conferir_arquivos_legiveis", "conferir_convergencia",
    "conferir_paridade", "convergir", "diferentes_no_oraculo", "enviar", "get", "guardar_tokens", "hoje_utc",
    "ler_credenciais", "licencas_cruas", "listar", "login_http", "pingar", "rodar_cronometrado", "rodar_script",
    "saida", "sem_traceback", "semear_iguais", "semear_licencas", "semear_usuarios", "sessao_admin", "so_escritas",
    "utc", "vereditos", "Vigiar", "contexto_tls", "esperar", "ctrl_c_no_padrao",
]

# ---------------------------------------------------------------------------
# Artefatos e segredos da sessão
# ---------------------------------------------------------------------------

# ARTEFATOS_DOS_TESTES troca a pasta (o teste da varredura roda uma sessão filha com a sua própria).
ARTEFATOS = Path(os.environ.get("ARTEFATOS_DOS_TESTES") or RAIZ / "artefatos")
# "gw0", "gw1"... com pytest-xdist; "unico" sem ele.
TRABALHADOR = os.environ.get("PYTEST_XDIST_WORKER", "unico")
# Tudo o que a ferramenta imprimir nos testes deste processo (varrido em busca de segredos no fim da sessão).
LOG_SAIDAS = ARTEFATOS / f"saidas_dos_testes.{TRABALHADOR}.log"
# Senhas de administrador dadas aos servidores e tokens que eles emitiram, neste processo.
SEGREDOS_USADOS: set[str] = set()
TOKENS_VISTOS: set[str] = set()


def anotar_saida(rotulo: str, codigo, stdout: str, stderr: str) -> None:
    """Guarda no log deste trabalhador a saída de uma execução (para a varredura de segredos)."""
    ARTEFATOS.mkdir(exist_ok=True)
    with open(LOG_SAIDAS, "a", encoding="utf-8") as log:
        log.write(f"$ {rotulo} → {codigo}\n{stdout}\n{stderr}\n")


def guardar_tokens(*servidores) -> None:
    """Anota os tokens que os servidores emitiram (para a varredura de segredos)."""
    for srv in servidores:
        app = getattr(srv, "_app", None)
        tokens = getattr(app, "_tokens", None)
        if tokens:
            TOKENS_VISTOS.update(t for t in list(tokens) if isinstance(t, str))


# ---------------------------------------------------------------------------
# Execução da ferramenta
# ---------------------------------------------------------------------------

@dataclass
class Execucao:
    codigo: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


# Partida do script nos testes: `python -c LANCADOR` roda sincronizar_bancos.py como __main__ (runpy, com
# sys.argv[0] = o caminho do arquivo), igual a `python sincronizar_bancos.py`, mas lê o bytecode que
# `compilar_script` grava uma vez por sessão. `python arquivo.py` compila as ~7.000 linhas a cada partida
# (~0,15 s de CPU) e a suíte parte o script ~700 vezes. O início rápido, a demonstração e o --help da CLI
# continuam partindo pelo arquivo, como o usuário faz.
LANCADOR = ("import runpy, sys; sys.path.insert(0, {raiz!r}); "
            "runpy.run_module('sincronizar_bancos', run_name='__main__', alter_sys=True)")


def comando_script(*args: str, script: Path = SCRIPT) -> list[str]:
    """A linha de comando que parte o script com estes argumentos (outro arquivo: pelo caminho dele)."""
    EXECUCOES["Python novo (comando_script)"] += 1
    if Path(script) != SCRIPT:
        return [sys.executable, str(script), *args]
    return [sys.executable, "-c", LANCADOR.format(raiz=str(RAIZ)), *args]


def compilar_script() -> None:
    """Grava o bytecode do script em __pycache__ (o importlib o lê mesmo com PYTHONDONTWRITEBYTECODE). Numa
    pasta sem escrita não grava nada: os filhos compilam a cada partida, como `python sincronizar_bancos.py`."""
    try:
        py_compile.compile(str(SCRIPT), doraise=True)  # erro de sintaxe: PyCompileError para a sessão aqui
    except OSError:
        pass



class Zigoto:
    """O zigoto deste processo do pytest (tests/zigoto.py): filhos por fork de um Python que já importou as
    dependências do script. Só atende pedidos cujas variáveis lidas na PARTIDA do Python (PYTHON*, LANG,
    LC_*) são as dele; os outros partem um Python novo (comando_script, ou `python arquivo` em rodar_python).
    Só em POSIX. SEM_ZIGOTO=1 no ambiente do pytest faz todos partirem um Python novo (para comparar ou
    depurar). Com o script rodando no processo (rodar_script), quem ainda passa por aqui é sobretudo o
    invólucro (rodar_wrapper) e as cópias do script; medido nos arquivos deles (test_automatico*,
    test_agendar_ps1, test_arquivos_*, test_configuracao, test_servicos, test_texto_do_servidor; -n 2, 2
    núcleos divididos com outros processos, rodadas alternadas): com o zigoto 42 s e 38 s de parede, sem ele
    56 s e 83 s. Por isso ele fica."""

    def __init__(self) -> None:
        self._trava = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._controle: socket.socket | None = None
        self._dono = 0
        self.ambiente = ambiente_limpo()

    @staticmethod
    def ligado() -> bool:
        """Só em POSIX (fork e descritores passados por socket; no Windows, todo filho é um Python novo)."""
        return os.environ.get("SEM_ZIGOTO") != "1" and os.name == "posix" and hasattr(socket, "send_fds")

    def atende(self, env: dict) -> bool:
        return self.ligado() and _de_partida(env) == _de_partida(self.ambiente)

    def _subir(self) -> socket.socket:
        if self._proc is not None and self._proc.poll() is None and self._dono == os.getpid():
            return self._controle
        if self._controle is not None:
            self._controle.close()  # o zigoto anterior morreu: o controle dele não serve mais
        controle, lado = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._proc = subprocess.Popen([sys.executable, str(PASTA_TESTES / "zigoto.py"), str(RAIZ), str(lado.fileno())],
                                      pass_fds=[lado.fileno()], env=self.ambiente, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL)
        lado.close()
        self._controle, self._dono = controle, os.getpid()
        return controle

    def parar(self) -> None:
        if self._controle is not None and self._dono == os.getpid():
            self._controle.close()  # o zigoto lê o fim e sai
            self._proc.wait(10)
            self._controle = None

    def rodar(self, programa: Path, args, env: dict, cwd, timeout: float) -> tuple[int, bytes, bytes]:
        """`python programa args` por um filho do zigoto: (código, saída, saída de erro), em bytes."""
        pedido = json.dumps({"programa": str(programa), "args": [str(a) for a in args], "env": env,
                             "cwd": str(cwd or os.getcwd())}).encode()
        with tempfile.TemporaryFile() as saida, tempfile.TemporaryFile() as erro:
            meu, dele = socket.socketpair()
            with meu:
                with self._trava:
                    socket.send_fds(self._subir(), [pedido], [dele.fileno(), saida.fileno(), erro.fileno()])
                dele.close()
                linhas = _Linhas(meu)
                pid = json.loads(linhas.proxima(None))["pid"]
                try:
                    codigo = json.loads(linhas.proxima(time.monotonic() + timeout))["codigo"]
                except TimeoutError:
                    try:
                        os.kill(pid, signal.SIGKILL)  # o monitor ainda não o recolheu: a resposta não chegou
                    except ProcessLookupError:
                        pass
                    linhas.proxima(None)
                    raise subprocess.TimeoutExpired([str(programa), *args], timeout) from None
            saida.seek(0)
            erro.seek(0)
            return codigo, saida.read(), erro.read()


class _Linhas:
    """Linhas JSON da resposta do monitor ({"pid"} e depois {"codigo"}), que podem chegar num recv só."""

    def __init__(self, conexao: socket.socket) -> None:
        self.conexao, self.dados = conexao, b""

    def proxima(self, fim: float | None) -> bytes:
        while b"\n" not in self.dados:
            self.conexao.settimeout(None if fim is None else max(fim - time.monotonic(), 0.001))
            try:
                pedaco = self.conexao.recv(4096)
            except socket.timeout:
                raise TimeoutError from None
            if not pedaco:
                raise RuntimeError(f"o zigoto dos testes parou de responder (recebido: {self.dados!r})")
            self.dados += pedaco
        linha, self.dados = self.dados.split(b"\n", 1)
        return linha


def rodar_python(programa: Path, *args: str, env: dict, cwd=None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python programa args` como processo filho, com a entrada em /dev/null: pelo zigoto quando ele atende,
    senão por um Python novo (comando_script). Saídas em bytes. O caminho por onde os testes partem o
    invólucro, cópias do script e o script quando rodar_script não o roda no processo; os filhos que ELES
    partem são sempre Pythons novos."""
    if ZIGOTO.atende(env):
        nome = {SCRIPT: "script", WRAPPER: "invólucro"}.get(Path(programa), "outro arquivo")
        EXECUCOES[f"{nome} por um filho do zigoto"] += 1
        codigo, stdout, stderr = ZIGOTO.rodar(Path(programa), args, env, cwd, timeout)
        return subprocess.CompletedProcess([str(programa), *args], codigo, stdout, stderr)
    comando = comando_script(*args, script=programa)
    return subprocess.run(comando, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)


def _texto(dados: bytes) -> str:
    """Bytes da saída como o subprocess com text=True os daria: UTF-8 e quebras de linha universais."""
    return dados.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def texto_anotado(proc: subprocess.CompletedProcess, rotulo: str) -> subprocess.CompletedProcess:
    """As saídas de `rodar_python` em texto, anotadas no log que a varredura de segredos lê."""
    proc.stdout, proc.stderr = _texto(proc.stdout), _texto(proc.stderr)
    anotar_saida(rotulo, proc.returncode, proc.stdout, proc.stderr)
    return proc


# Execuções nesta sessão do pytest (deste trabalhador), contadas pelo caminho que tomaram: o script no processo
# (main), o script, o invólucro ou outro arquivo por um filho do zigoto, e as partidas de um Python novo
# (comando_script: rodar_python sem o zigoto, iniciar_script, Vigiar, abrir_painel e os Popen dos testes). O
# conftest as grava em artefatos/execucoes.<trabalhador>.json no fim da sessão.
EXECUCOES: collections.Counter[str] = collections.Counter()
# SEM_EXECUCAO_NO_PROCESSO=1 no ambiente do pytest: toda execução por um processo filho (para comparar ou depurar).
SEM_EXECUCAO_NO_PROCESSO = os.environ.get("SEM_EXECUCAO_NO_PROCESSO") == "1"
# Uma execução no processo por vez: o ambiente, a pasta, a umask e sys.stdout são do processo inteiro. Uma
# segunda, pedida por outra thread enquanto a primeira roda (duas execuções ao mesmo tempo: a trava), vai por
# um processo filho.
_NO_PROCESSO = threading.Lock()


def rodar_script(*args: str, env: dict, timeout: float = 120, cwd=None, script: Path = SCRIPT,
                 processo: bool = False) -> Execucao:
    """Roda o script com estes argumentos e guarda a saída (anotar_saida). Por padrão NO PROCESSO do pytest,
    por `sincronizar_bancos.main(args)` (rodar_no_processo: servidores, arquivos e rede de verdade; ~0,02 s
    contra ~0,12 s de um filho do zigoto). Vai por um processo filho (rodar_python) quando o processo é o
    assunto ou o processo do pytest não seria igual a um Python novo: `processo=True`; outro arquivo
    (`script=`: uma cópia do script noutra pasta); um ambiente cujas variáveis lidas na PARTIDA do Python
    (PYTHON*, LANG, LC_*) não são as de ambiente_limpo(); ou outra execução no processo em andamento (de outra
    thread). O resultado é o mesmo Execucao nos dois caminhos."""
    if (not processo and not SEM_EXECUCAO_NO_PROCESSO and Path(script) == SCRIPT and _partida_padrao(env)
            and _NO_PROCESSO.acquire(blocking=False)):
        try:
            EXECUCOES["script no processo"] += 1
            execucao = rodar_no_processo(args, env=env, cwd=cwd, timeout=timeout)
        finally:
            _NO_PROCESSO.release()
        anotar_saida(" ".join(args), execucao.codigo, execucao.stdout, execucao.stderr)
        return execucao
    proc = texto_anotado(rodar_python(script, *args, env=env, cwd=cwd, timeout=timeout), " ".join(args))
    return Execucao(proc.returncode, proc.stdout, proc.stderr)


def _de_partida(env: dict) -> dict:
    """As variáveis que o Python lê ao partir (codificação da saída, semente de hash, caminhos, locale)."""
    return {k: v for k, v in env.items() if k.startswith(("PYTHON", "LC_")) or k == "LANG"}


def _partida_padrao(env: dict) -> bool:
    """As variáveis de partida do pedido são as do processo do pytest com ambiente_limpo() (as de um Python
    novo partido por este processo): só então rodar no processo dá o mesmo que um Python novo."""
    return _de_partida(env) == _de_partida(ambiente_limpo())


class _SaidaCapturada(io.TextIOWrapper):
    """stdout/stderr de uma execução no processo: texto UTF-8 sobre bytes em memória, como o pipe de um filho
    partido com PYTHONIOENCODING=utf-8: não é um terminal (isatty() falso), tem .buffer e .reconfigure(); não
    tem fileno() (io.UnsupportedOperation, que é OSError e ValueError: o _QuietStream._silence do script já
    o trata como "não há descritor para silenciar")."""

    def __init__(self) -> None:
        self.bytes = io.BytesIO()
        super().__init__(self.bytes, encoding="utf-8", errors="strict", newline="\n", write_through=True)

    def texto(self) -> str:
        self.flush()
        return _texto(self.bytes.getvalue())


def rodar_no_processo(args, env: dict, cwd=None, timeout: float = 120) -> Execucao:
    """`sincronizar_bancos.main(args)` neste processo, como um Python novo o rodaria: os.environ trocado pelo
    `env` (e time.tzset()), a pasta `cwd`, sys.argv[0] = o caminho do script, a entrada vazia e stdout/stderr
    capturados como pipes (_SaidaCapturada). SystemExit vira o código dele; uma exceção (Exception) que escape
    de main() vira o traceback em stderr e o código 1, como no Python. Ao sair, o ambiente, o fuso, a pasta, a umask
    (o script a restringe: private_umask), sys.argv e os fluxos padrão voltam a ser os de antes; o resto
    (segredos, sinais de parada, --json, login entregue) é do RunContext de cada chamada de main().
    Uma execução que passe de `timeout` não é interrompida (não há processo para matar): termina e então
    levanta subprocess.TimeoutExpired, como o caminho do processo filho."""
    saida, erro = _SaidaCapturada(), _SaidaCapturada()
    antes = (dict(os.environ), os.getcwd(), sys.argv, sys.stdin, sys.stdout, sys.stderr)
    mascara = os.umask(0o077)
    os.umask(mascara)
    inicio = time.monotonic()
    try:
        os.environ.clear()
        os.environ.update(env)
        _tzset()
        os.chdir(cwd or antes[1])
        sys.argv = [str(SCRIPT), *map(str, args)]
        sys.stdin = io.TextIOWrapper(io.BytesIO(b""), encoding="utf-8")
        sys.stdout, sys.stderr = saida, erro
        try:
            codigo = sb.main([str(a) for a in args])
        except SystemExit as exc:
            codigo = _codigo_de_saida(exc, erro)
        except Exception:  # como o Python no topo: o traceback em stderr e o código 1 (o prazo do pytest-timeout,
            traceback.print_exc(file=erro)  # um BaseException, passa direto e derruba o teste)
            codigo = 1
    finally:
        sys.argv, sys.stdin, sys.stdout, sys.stderr = antes[2:]
        os.umask(mascara)
        os.chdir(antes[1])
        os.environ.clear()
        os.environ.update(antes[0])
        _tzset()
    duracao = time.monotonic() - inicio
    execucao = Execucao(int(codigo), saida.texto(), erro.texto())
    if duracao > timeout:
        anotar_saida(" ".join(map(str, args)), execucao.codigo, execucao.stdout, execucao.stderr)
        raise subprocess.TimeoutExpired([str(SCRIPT), *map(str, args)], timeout, execucao.stdout, execucao.stderr)
    return execucao


def _tzset() -> None:
    """O fuso de TZ no ambiente atual vale para o horário local (time.tzset; não existe no Windows)."""
    if hasattr(time, "tzset"):
        time.tzset()


def _codigo_de_saida(exc: SystemExit, erro) -> int:
    """O código de um SystemExit como o Python o dá no topo: None é 0, um número é ele, outro valor vai para
    stderr e o código é 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=erro)
    return 1


def iniciar_script(par, *args: str) -> subprocess.Popen:
    """O script como processo filho de um Python novo, sem esperar (para matá-lo no meio: kill -9), no
    ambiente e na pasta do par; saídas em texto por pipes (anote-as com anotar_saida depois)."""
    return subprocess.Popen(comando_script(*args), env=par.ambiente(), cwd=par.tmp_path, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")


def _sigint_no_padrao() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def ctrl_c_no_padrao() -> dict:
    """Argumentos do Popen de um filho que vai receber SIGINT (o Ctrl+C do teste): ele começa com o SIGINT no
    padrão. Um pytest partido em segundo plano por um shell não interativo (`pytest ... &` num script, num
    agendador) tem o SIGINT ignorado, e o filho herdaria o "ignorado": o Python dele não instala o
    KeyboardInterrupt e o Ctrl+C do teste não faria nada (o teste esperaria até o limite). Só em POSIX (no
    Windows não se manda SIGINT a um filho). O preexec_fn só troca um sinal entre o fork e o exec."""
    return {"preexec_fn": _sigint_no_padrao} if os.name == "posix" else {}


def contexto_tls(certificado) -> ssl.SSLContext:
    """O contexto de servidor https de um certificado do trustme (para Par(tls_principal=..., tls_backup=...))."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificado.configure_cert(ctx)
    return ctx


def esperar(condicao, limite: float, passo: float = 0.1) -> float:
    """Espera `condicao()` ficar verdadeira; devolve quantos segundos levou (AssertionError no limite)."""
    inicio = time.monotonic()
    while not condicao():
        assert time.monotonic() - inicio < limite, f"condição não atendida em {limite} s"
        time.sleep(passo)
    return time.monotonic() - inicio


class Vigiar:
    """`sincronizar_bancos.py vigiar` como processo filho (o processo é o assunto: sinais, código de saída,
    ciclos), no ambiente e na pasta do par. A saída (stdout e stderr juntos) é lida numa thread enquanto ele
    roda (um pipe cheio o travaria) e anotada no log da varredura de segredos ao terminar."""

    def __init__(self, par, *args: str, **extra: str):
        self.par = par
        self.proc = subprocess.Popen(comando_script("vigiar", *args), env=par.ambiente(**extra), cwd=par.tmp_path,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, encoding="utf-8", **ctrl_c_no_padrao())
        self.linhas: list[str] = []
        self._leitor = threading.Thread(target=self._ler, daemon=True)
        self._leitor.start()

    def _ler(self) -> None:
        for linha in self.proc.stdout:
            self.linhas.append(linha)

    @property
    def saida(self) -> str:
        return "".join(self.linhas)

    def esperar_texto(self, texto: str, limite: float = 30, vezes: int = 1) -> float:
        """Espera `texto` aparecer `vezes` vezes na saída (o processo não pode ter terminado antes)."""
        def chegou() -> bool:
            assert self.proc.poll() is None or self.saida.count(texto) >= vezes, self.saida[-3000:]
            return self.saida.count(texto) >= vezes
        return esperar(chegou, limite)

    def batimento(self) -> dict:
        """O vigiar.json da pasta de dados (o que o painel lê)."""
        return json.loads((self.par.dados / "vigiar.json").read_text(encoding="utf-8"))

    def parar(self, sinal: int = signal.SIGTERM, limite: float = 20) -> tuple[int, float]:
        """Manda o sinal e espera o fim: (código de saída, segundos até sair)."""
        inicio = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sinal)
        try:
            self.proc.wait(timeout=limite)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._leitor.join(5)
            anotar_saida("vigiar", self.proc.returncode, self.saida, "")
        return self.proc.returncode, time.monotonic() - inicio


def rodar_wrapper(par, *args: str, env: dict | None = None, timeout: float = 180,
                  **extra: str) -> subprocess.CompletedProcess:
    """O agendador (sincronizar_automatico.py) com o script de verdade, na pasta do par; saídas em texto.
    Sem `env`, o ambiente do par com SYNC_ESPERA_INICIAL=0,1; `extra` vale por cima dos dois."""
    env = {**(env if env is not None else par.ambiente(SYNC_ESPERA_INICIAL="0.1")), **extra}
    return texto_anotado(rodar_python(WRAPPER, *args, env=env, cwd=par.tmp_path, timeout=timeout),
                         "[agendador] " + " ".join(args))


def rodar_cronometrado(rodar, *args, **kwargs) -> tuple[Execucao, float]:
    """(execução, segundos que ela levou ALÉM da partida do script). A partida (`--help`, medida logo antes)
    desconta o que uma máquina ocupada gasta só para abrir o Python e importar o script: o que sobra é o
    tempo que a ferramenta esperou (rede, prazos), que é o que os testes de "falha em segundos" limitam."""
    inicio = time.monotonic()
    rodar_script("--help", env=ambiente_limpo())  # a partida pelo mesmo caminho da execução medida
    partida = time.monotonic() - inicio
    inicio = time.monotonic()
    execucao = rodar(*args, **kwargs)
    return execucao, time.monotonic() - inicio - partida


def ambiente_limpo(**extra: str) -> dict[str, str]:
    """Ambiente sem nenhuma configuração do script herdada de fora."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SERVIDOR_", "ADMIN_", "PRINCIPAL_", "BACKUP_", "SYNC_", "DADOS_DIR", "PAINEL_"))}
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


ZIGOTO = Zigoto()  # um por processo do pytest, subido no primeiro rodar_script


def saida(execucao) -> str:
    return execucao.stdout + "\n" + execucao.stderr


def sem_traceback(execucao) -> None:
    texto = saida(execucao)
    assert "Traceback" not in texto, texto[-3000:]
    assert "Erro inesperado" not in texto and "erro inesperado" not in texto, texto[-3000:]


def so_escritas(contagem) -> dict:
    """Só as escritas (POST e DELETE, menos o login) de uma contagem de requisições do servidor."""
    return {k: n for k, n in contagem.items() if k[0] in ("POST", "DELETE") and k != ("POST", "/admin/login")}


# ---------------------------------------------------------------------------
# Servidores: os de referência (a API de licenças) e stubs (o que não é a API)
# ---------------------------------------------------------------------------

class Par:
    """Um principal e um ou mais backups de referência, com senhas aleatórias.

    `fuso_principal`, `fuso_backup` e `agora` fixam o fuso e o instante dos servidores; `senha` dá a
    MESMA senha de administrador, escolhida pelo teste, a todos (fora de SEGREDOS_USADOS: pode ser curta);
    `tls_principal` e `tls_backup` (ssl.SSLContext com o certificado) fazem o servidor falar https."""

    def __init__(self, tmp_path: Path, backups: int = 1, fuso_principal: str = "UTC", fuso_backup: str = "UTC",
                 agora: dt.datetime | None = None, senha: str | None = None, tls_principal=None, tls_backup=None):
        if senha is None:
            self.senha_principal = secrets.token_urlsafe(16)
            self.senhas_backup = secrets.token_urlsafe(16)
            SEGREDOS_USADOS.update({self.senha_principal, self.senhas_backup})
        else:
            self.senha_principal = self.senhas_backup = senha
        self.principal = ServidorReferencia(admins={"admin": self.senha_principal}, fuso=fuso_principal,
                                            now=agora, tls=tls_principal).start()
        # Cada servidor com sua própria sequência de ids locais, como na vida real (listagens idênticas,
        # com os mesmos ids, só acontecem quando duas URLs levam ao MESMO servidor).
        self.backups = [ServidorReferencia(admins={"admin": self.senhas_backup}, fuso=fuso_backup, now=agora,
                                           primeiro_id=1000 * (i + 1), tls=tls_backup).start()
                        for i in range(backups)]
        # Vendedor bem configurado: todo servidor publica em GET /servers o principal e os backups, em ordem.
        for servidor in [self.principal] + self.backups:
            servidor.set_license_servers([s.url for s in [self.principal] + self.backups])
        self.dados = tmp_path / "dados"
        self.tmp_path = tmp_path

    @property
    def backup(self) -> ServidorReferencia:
        return self.backups[0]

    @property
    def servidores(self) -> list[ServidorReferencia]:
        return [self.principal] + self.backups

    def ambiente(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SERVIDOR_", "ADMIN_", "PRINCIPAL_", "BACKUP_", "SYNC_", "DADOS_DIR"))}
        env.update({
            "SERVIDOR_PRINCIPAL": self.principal.url,
            "SERVIDOR_BACKUP": ",".join(b.url for b in self.backups),
            "ADMIN_USER": "admin",
            "PRINCIPAL_ADMIN_PASSWORD": self.senha_principal,
            "BACKUP_ADMIN_PASSWORD": self.senhas_backup,
            "ADMIN_PASSWORD": "",
            "DADOS_DIR": str(self.dados),
            "SYNC_ESPERA_DESPERTAR": "5",
            "SYNC_TIMEOUT": "5",
            "PYTHONIOENCODING": "utf-8",
        })
        env.update(extra)
        return env

    def rodar(self, *args: str, timeout: float = 120, env: dict | None = None, **extra: str) -> Execucao:
        return rodar_script(*args, env=env or self.ambiente(**extra), timeout=timeout, cwd=self.tmp_path)

    def zerar_contagens(self) -> None:
        for servidor in self.servidores:
            servidor.reset_counts()

    def parar(self) -> None:
        """Para os servidores, anotando antes os tokens que emitiram (para a varredura de segredos)."""
        guardar_tokens(*self.servidores)
        for servidor in self.servidores:
            servidor.stop()


FLASK_404 = ("<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested "
             "URL was not found on the server.</p>\n")


def enviar(handler, status: int, corpo=b"", tipo: str = "application/json") -> None:
    """Responde `corpo` (bytes, texto ou objeto JSON) com Content-Length."""
    dados = corpo if isinstance(corpo, bytes) else (corpo if isinstance(corpo, str) else json.dumps(corpo)).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", tipo)
    handler.send_header("Content-Length", str(len(dados)))
    handler.end_headers()
    handler.wfile.write(dados)
    handler.wfile.flush()


def pingar(bytes_: bytes, handler, intervalo: float = 0.5) -> None:
    """Escreve um byte a cada `intervalo` segundos (até o cliente desistir)."""
    for i in range(len(bytes_)):
        handler.wfile.write(bytes_[i:i + 1])
        handler.wfile.flush()
        time.sleep(intervalo)


class ServidorStub:
    """Servidor HTTP mínimo em 127.0.0.1 para o que NÃO é a API de licenças (webhook, proxy, página de
    host, resposta pingada). `rotas[(método, caminho)] = função(handler)`; o caminho "*" casa qualquer um e
    sem rota a resposta é o 404 em HTML do Flask. Guarda cada pedido (método, caminho, cabeçalhos, corpo e os
    instantes de chegada e de fim da resposta, em time.monotonic()) e conta os pedidos por (método, caminho)."""

    def __init__(self, rotas: dict):
        self.rotas = rotas
        self.contagem: dict[tuple[str, str], int] = {}
        self.pedidos: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _responder(self):
                tamanho = int(self.headers.get("Content-Length") or 0)
                self.corpo = self.rfile.read(tamanho) if tamanho else b""
                caminho = self.path.split("?")[0]
                chave = (self.command, caminho)
                stub.contagem[chave] = stub.contagem.get(chave, 0) + 1
                pedido = {"metodo": self.command, "caminho": self.path, "cabecalhos": dict(self.headers),
                          "corpo": self.corpo, "inicio": time.monotonic(), "fim": None}
                stub.pedidos.append(pedido)
                rota = (stub.rotas.get(chave) or stub.rotas.get((self.command, "*"))
                        or stub.rotas.get(("*", "*")))
                try:
                    if rota is None:
                        enviar(self, 404, FLASK_404, "text/html; charset=utf-8")
                    else:
                        rota(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:  # respondido, ou o cliente desistiu (a escrita seguinte falha)
                    pedido["fim"] = time.monotonic()

            do_GET = do_POST = do_DELETE = _responder  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def terminados(self, caminho: str, limite: float = 10) -> list[dict]:
        """Os pedidos a `caminho`, esperando (até `limite` s) o fim de cada resposta: uma resposta pingada
        só termina na escrita que falha depois de o cliente desistir."""
        prazo = time.monotonic() + limite
        while any(p["fim"] is None for p in self.pedidos) and time.monotonic() < prazo:
            time.sleep(0.05)
        pedidos = [p for p in self.pedidos if p["caminho"] == caminho]
        assert pedidos and all(p["fim"] is not None for p in pedidos), f"resposta a {caminho} sem fim"
        return pedidos

    def parar(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> ServidorStub:
        return self

    def __exit__(self, *_exc) -> None:
        self.parar()


def utc(texto: str) -> dt.datetime:
    """"AAAA-MM-DDTHH:MM" em UTC."""
    return dt.datetime.fromisoformat(texto).replace(tzinfo=dt.timezone.utc)


def hoje_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


# ---------------------------------------------------------------------------
# Preparação de dados
# ---------------------------------------------------------------------------

TIPOS = ("mensal", "trimestral", "semestral", "anual", "trianual", "vitalicia")
NOMES = ("José da Silva", "Maria Conceição Araújo", "Padaria Pão de Açúcar", "Ótica Visão",
         "João Ninguém", "  espaços nas pontas  ")


def semear_licencas(srv, quantidade: int, prefixo: str = "LIC", rng: random.Random | None = None,
                    hoje: dt.date | None = None) -> list[str]:
    """Licenças variadas direto no banco: tipos, status, vencidas, acentos e nulos."""
    rng = rng or random.Random(1)
    hoje = hoje or hoje_utc()
    chaves = []
    for i in range(quantidade):
        chave = f"{prefixo}-{i:04d}"
        tipo = TIPOS[i % len(TIPOS)]
        status = ("active", "active", "blocked", "pending")[i % 4]
        fim = None
        if i % 5 == 0 and tipo != "vitalicia":
            fim = (hoje - dt.timedelta(days=rng.randint(1, 400))).isoformat()  # vencida
        srv.add_device(chave, license_type=tipo, owner_name=NOMES[i % len(NOMES)].strip(),
                       cpf=None if i % 3 == 0 else f"{rng.randint(0, 10**11 - 1):011d}",
                       email=None if i % 2 else f"cliente{i}@exemplo.com.br",
                       address="Rua das Flores, 10 - São Paulo" if i % 4 else None,
                       created_by=(None, "admin", "sergio")[i % 3], status=status, end_date=fim)
        chaves.append(chave)
    return chaves


def semear_usuarios(srv, nomes, role="user") -> None:
    for nome in nomes:
        srv.add_user(nome, "senha-do-teste-" + nome, email=f"{nome}@exemplo.com.br", role=role)


def semear_iguais(par, chaves) -> None:
    """As mesmas licenças (dados copiáveis iguais) no principal e no backup."""
    for servidor in (par.principal, par.backup):
        for i, chave in enumerate(chaves):
            servidor.add_device(chave, owner_name=f"C {chave}", cpf=f"{i:011d}", created_by="admin")


# ---------------------------------------------------------------------------
# Veredito: sempre o do servidor de referência (o /verify), nunca um cálculo local
# ---------------------------------------------------------------------------

def vereditos(srv) -> dict[str, bool]:
    """Veredito de cada licença gravada no servidor, pelo oráculo dele."""
    return srv.vereditos()


def conferir_paridade(principal, backup) -> None:
    """Toda licença do principal tem o MESMO veredito no backup (o /verify de cada um)."""
    diferentes = {chave: (principal.veredito(chave), backup.veredito(chave)) for chave in principal.devices()
                  if principal.veredito(chave) != backup.veredito(chave)}
    assert not diferentes, f"veredito diferente (principal, backup): {diferentes}"


def diferentes_no_oraculo(par) -> dict[str, tuple[bool, bool]]:
    """Licenças (do principal ou do backup) com veredito diferente, pelo oráculo de cada servidor."""
    chaves = set(par.principal.devices()) | set(par.backup.devices())
    return {k: (par.principal.veredito(k), par.backup.veredito(k)) for k in sorted(chaves)
            if par.principal.veredito(k) != par.backup.veredito(k)}


def backup_libera_o_que_o_principal_nega(par) -> list[str]:
    """Todo id que um cliente pode mandar (os do principal E os que só o backup tem: o principal nega o que
    não conhece) e que o backup libera enquanto o principal nega, pelo veredito de cada servidor."""
    return sorted(k for k in set(par.principal.devices()) | set(par.backup.devices())
                  if par.backup.veredito(k) and not par.principal.veredito(k))


# ---------------------------------------------------------------------------
# Variantes do backup e execuções com --json (cadeias, limites do backup)
# ---------------------------------------------------------------------------

def trocar_backup(par, **opcoes) -> ServidorReferencia:
    """O backup do par passa a ser um servidor com as opções dadas (variante dos servidores reais)."""
    par.backups[0].stop()
    novo = ServidorReferencia(admins={"admin": par.senhas_backup}, primeiro_id=1000, **opcoes).start()
    novo.set_license_servers([par.principal.url, novo.url])
    par.principal.set_license_servers([par.principal.url, novo.url])
    par.backups[0] = novo
    return novo


def semear_misto(srv) -> dict[str, str]:
    """Liberadas, bloqueadas, pendente e vencida no principal (created_by de revendedores)."""
    srv.add_device("LIB-1", owner_name="José da Silva", created_by="sergio")
    srv.add_device("LIB-2", owner_name="Ótica Visão", license_type="mensal", created_by="ana")
    srv.add_device("BLQ-1", owner_name="Padaria Pão", status="blocked", created_by="sergio")
    srv.add_device("BLQ-2", owner_name="Mercado Bom", status="blocked", created_by="ana")
    srv.add_device("PEND-1", owner_name="Pix não pago", status="pending", created_by="sergio")
    srv.add_device("VENC-1", owner_name="Vencida", license_type="mensal", start_date="2020-01-01",
                   end_date="2020-02-01", created_by="sergio")
    return {k: srv.veredito_motivo(k) for k in srv.devices()}


def rodar_json(par, *args, **env):
    """Roda com --json e devolve (execução, o documento do único par)."""
    r = par.rodar("--json", "--sem-progresso", *args, **env)
    assert r.stdout.strip(), f"sem JSON (código {r.codigo}): {r.stderr[-2000:]}"
    (pair,) = r.json()["backups"]
    return r, pair



# ---------------------------------------------------------------------------
# Conferência no servidor (por HTTP, como um cliente veria)
# ---------------------------------------------------------------------------

def login_http(servidor, usuario: str, senha: str) -> requests.Response:
    return requests.post(f"{servidor.url}/admin/login", json={"username": usuario, "password": senha}, timeout=5)


def sessao_admin(srv, senha: str, usuario: str = "admin") -> requests.Session:
    """Login de verdade por HTTP (como o painel do vendedor faria), sem passar pela ferramenta."""
    sessao = requests.Session()
    resp = sessao.post(f"{srv.url}/admin/login", json={"username": usuario, "password": senha}, timeout=10)
    assert resp.status_code == 200, resp.text
    sessao.headers["Authorization"] = "Bearer " + resp.json()["token"]
    return sessao


def listar(srv, senha: str, caminho: str, usuario: str = "admin") -> list[dict]:
    """Lista de verdade por HTTP (login + GET), sem passar pela ferramenta."""
    resp = sessao_admin(srv, senha, usuario).get(srv.url + caminho, timeout=30)
    assert resp.status_code == 200, resp.text[:300]
    return resp.json()["items"]


def conferir_convergencia(par, so_no_backup: dict | None = None) -> dict:
    """Confere direto nos servidores: paridade de veredito para toda licença válida do
    principal, nenhuma faltando, nenhuma duplicada, usuários todos presentes e
    registros só-do-backup intactos. Devolve as licenças do backup por chave."""
    for srv in par.servidores:
        srv.clear_faults()
        srv.clear_overrides()
    itens_p = listar(par.principal, par.senha_principal, "/admin/devices")
    licencas_p, _problemas, recusadas = sb.parse_licenses(itens_p)
    invalidas = set(recusadas)
    usuarios_p = {u["username"] for u in listar(par.principal, par.senha_principal, "/admin/users")}
    resultado = {}
    for backup in par.backups:
        itens_b = listar(backup, par.senhas_backup, "/admin/devices")
        chaves_b = [item["device_id"] for item in itens_b]
        assert len(chaves_b) == len(set(chaves_b)), "licença duplicada no backup"
        licencas_b, _problemas, _recusadas = sb.parse_licenses(itens_b)
        faltando = sorted(set(licencas_p) - invalidas - set(licencas_b))
        assert not faltando, f"licenças faltando no backup: {faltando[:10]}"
        diferentes = sorted(k for k in licencas_p if par.principal.veredito(k) != backup.veredito(k))
        assert not diferentes, f"veredito diferente no backup: {diferentes[:10]}"
        for chave in invalidas:
            assert chave not in licencas_b or (so_no_backup and chave in so_no_backup), \
                f"registro inválido do principal foi copiado: {chave!r}"
            assert par.principal.veredito(chave) or not backup.veredito(chave), \
                f"backup libera {chave!r}, que o principal nega"
        nomes_b = [u["username"] for u in listar(backup, par.senhas_backup, "/admin/users")]
        assert len(nomes_b) == len(set(nomes_b)), "usuário duplicado no backup"
        assert usuarios_p <= set(nomes_b), f"usuários faltando: {sorted(usuarios_p - set(nomes_b))}"
        por_chave = {item["device_id"]: item for item in itens_b}
        for chave, antes in (so_no_backup or {}).items():
            assert chave in por_chave, f"registro só do backup foi apagado: {chave}"
            depois = por_chave[chave]
            assert depois == antes, f"registro só do backup foi alterado: {chave}: {antes} → {depois}"
        resultado[backup.url] = por_chave
    return resultado


def convergir(par, *args: str, **extra: str) -> None:
    """A execução seguinte termina com 0; a outra não escreve nada em nenhum servidor."""
    r = par.rodar("--sem-progresso", *args, **extra)
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    par.zerar_contagens()
    r = par.rodar("--sem-progresso", *args, **extra)
    assert r.codigo == 0, saida(r)[-4000:]
    for srv in par.servidores:
        assert srv.write_count() == 0, srv.counts


def licencas_cruas(srv) -> dict[str, dict]:
    """Licenças do servidor como a API as devolve (dicts), por device_id."""
    return {k: dict(v) for k, v in srv.devices().items()}


# ---------------------------------------------------------------------------
# Arquivos da ferramenta
# ---------------------------------------------------------------------------

def ler_credenciais(dados: Path) -> list[list[str]]:
    """Linhas do arquivo de credenciais: [data_hora, servidor, usuario, senha, situacao]."""
    texto = (dados / sb.CREDENTIALS_FILE).read_text(encoding="utf-8")
    return [linha.split(" | ") for linha in texto.splitlines() if linha.strip() and not linha.startswith("#")]


def conferir_arquivos_legiveis(dados: Path) -> None:
    """Todo arquivo de estado que a ferramenta grava continua legível."""
    if not dados.exists():
        return
    ultima = dados / sb.LAST_RUN_FILE
    if ultima.exists():
        json.loads(ultima.read_text(encoding="utf-8"))
    cred = dados / sb.CREDENTIALS_FILE
    if cred.exists():
        texto = cred.read_text(encoding="utf-8")
        for linha in texto.splitlines():
            if linha and not linha.startswith("#"):
                assert len(linha.split(" | ")) == 5, f"linha de credenciais corrompida: {linha!r}"
    hist = dados / sb.HISTORY_FILE
    if hist.exists():
        con = sqlite3.connect(hist)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            con.execute("SELECT count(*) FROM execucoes").fetchone()
            con.execute("SELECT count(*) FROM auditoria").fetchone()
        finally:
            con.close()


# ---------------------------------------------------------------------------
# Python antigo (um interpretador de verdade anterior ao 3.10)
# ---------------------------------------------------------------------------

def _python_antigo() -> str | None:
    """Um Python 3.8/3.9 de verdade na máquina: PYTHON_ANTIGO, python3.9, python3.8 ou o pypy3 do Debian 12
    (PyPy 7.3.11 = Python 3.9.16). None quando não há nenhum."""
    for nome in (os.environ.get("PYTHON_ANTIGO"), "python3.9", "python3.8", "pypy3"):
        caminho = nome and shutil.which(nome)
        if not caminho:
            continue
        versao = subprocess.run([caminho, "-c", "import sys; print(sys.version_info[:2] < (3, 10))"],
                                capture_output=True, text=True, timeout=60).stdout.strip()
        if versao == "True":
            return caminho
    return None


PYTHON_ANTIGO = _python_antigo()
# O .ci/run instala o pypy3 do Debian e define EXIGIR_PYTHON_ANTIGO=1: lá, Python antigo ausente é falha.
EXIGIR_PYTHON_ANTIGO = os.environ.get("EXIGIR_PYTHON_ANTIGO") == "1"


# ---------------------------------------------------------------------------
# Painel
# ---------------------------------------------------------------------------

CHROMIUM = (os.environ.get("NAVEGADOR_PAINEL") or shutil.which("chromium") or shutil.which("chromium-browser")
            or shutil.which("google-chrome") or shutil.which("chrome"))
# O .ci/run instala o Chromium do Debian e define EXIGIR_NAVEGADOR=1: lá, navegador ausente é falha.
EXIGIR_NAVEGADOR = os.environ.get("EXIGIR_NAVEGADOR") == "1"


def abrir_painel(env: dict, *args: str) -> tuple[subprocess.Popen, str]:
    """Abre `sincronizar_bancos.py painel` numa porta livre; devolve o processo e a URL."""
    proc = subprocess.Popen(comando_script("painel", "--porta", "0", *args), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                            **ctrl_c_no_padrao())
    linha = proc.stdout.readline()
    achado = re.search(r"http://([^/\s]+)/", linha)
    if not achado:
        proc.kill()
        raise AssertionError(f"painel não abriu: {linha!r} {proc.stderr.read()}")
    host_porta = achado.group(1).replace("0.0.0.0", "127.0.0.1")
    return proc, f"http://{host_porta}"


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    """GET simples (status, corpo), com o token do painel se houver."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@contextlib.contextmanager
def umask(mascara: int):
    """Roda o bloco com esta umask no processo do pytest (as execuções no processo e os filhos partidos por um
    Python novo a herdam; o zigoto tem a umask de quando subiu: peça um Python novo com
    `ambiente_de_partida_proprio`)."""
    antes = os.umask(mascara)
    try:
        yield
    finally:
        os.umask(antes)


def ambiente_de_partida_proprio(env: dict) -> dict:
    """O mesmo ambiente com uma variável de partida do Python a mais: o filho é um Python novo, partido deste
    processo (com a umask, os limites e o resto do estado dele), e não um filho do zigoto."""
    return {**env, "PYTHONDONTWRITEBYTECODE": "1"}
