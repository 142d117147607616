#!/usr/bin/env python3
"""Execução automática (agendada) da sincronização dos servidores de licença.

Este arquivo é o "invólucro" que o Agendador de Tarefas do Windows, o cron ou o
systemd chamam. Ele roda o ``sincronizar_bancos.py`` (que fica na mesma pasta)
como um processo filho, com o mesmo Python que o executou, e cuida de tudo o
que uma execução sem ninguém olhando precisa:

* tempo limite por tentativa: se a sincronização travar, o processo filho e
  todos os processos que ele abriu são encerrados;
* novas tentativas com espera crescente (exponencial, com variação aleatória),
  somente quando o problema pode se resolver sozinho: servidor inacessível
  (código 4, por exemplo um servidor gratuito "dormindo") ou tempo esgotado;
* registro em ``DADOS_DIR/logs/sincronizacao.log`` (com rotação por tamanho),
  com uma linha de cabeçalho e uma de rodapé por execução; senhas e tokens são
  sempre mascarados (``***``);
* aviso opcional de falha num webhook (Discord ou Slack) em ``SYNC_WEBHOOK_URL``,
  enviado uma única vez, depois da última tentativa que falhou.

Uso (de qualquer pasta; os caminhos são resolvidos a partir deste arquivo)::

    python sincronizar_automatico.py
    python sincronizar_automatico.py --tentativas 5 --timeout-total 600
    python sincronizar_automatico.py -- --opcao-do-sincronizar-bancos

Opções (a variável de ambiente equivalente vale quando a opção não é dada; as
variáveis também podem ficar no arquivo ``.env`` ao lado do script, mas o
ambiente tem prioridade sobre o ``.env``):

  --timeout-total SEG   SYNC_TIMEOUT_TOTAL   tempo máximo de cada tentativa (900)
  --tentativas N        SYNC_TENTATIVAS      número máximo de tentativas (3)
  --espera-inicial SEG  SYNC_ESPERA_INICIAL  espera antes da 2ª tentativa (30);
                                             dobra a cada nova tentativa, ±25%,
                                             limitada a 15 minutos
  --log-max-bytes N     SYNC_LOG_MAX_BYTES   tamanho máximo do log antes de
                                             girar (1048576 = 1 MiB; 0 = nunca)
  --log-backups N       SYNC_LOG_BACKUPS     quantos logs antigos manter (5)
  --script CAMINHO      (nenhuma)            outro script no lugar do
                                             sincronizar_bancos.py (uso avançado
                                             e testes)
  -- ARGUMENTOS...                           tudo depois de ``--`` é repassado
                                             ao sincronizar_bancos.py

Outras variáveis lidas: ``DADOS_DIR`` (pasta de dados; padrão ``dados`` ao lado
do script; caminho relativo é relativo à pasta do script) e ``SYNC_WEBHOOK_URL``.

Códigos de saída (os mesmos do sincronizar_bancos.py, repassados como vieram):

  0  sucesso: todos os backups em paridade
  1  algumas ações falharam ou há conflitos            (não repete)
  2  problema de configuração ou de credenciais        (não repete)
  3  outra sincronização já está em andamento          (não repete)
  4  servidor inacessível ou dados inutilizáveis       (repete)
     também usado quando o tempo limite se esgota na última tentativa ou
     quando o processo é morto por um sinal
  5  exclusões retidas por uma proteção de segurança    (não repete)
  130 interrompido pelo usuário (Ctrl+C); 143 encerrado pelo sistema (SIGTERM)
"""

from __future__ import annotations

import collections
import json
import logging
import logging.handlers
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

try:  # python-dotenv é dependência do projeto; sem ele, um leitor simples.
    from dotenv import dotenv_values as _dotenv_values
except ImportError:  # pragma: no cover - depende do ambiente
    _dotenv_values = None

PASTA_DESTE_ARQUIVO = Path(__file__).resolve().parent
NOME_SCRIPT_PADRAO = "sincronizar_bancos.py"
NOME_LOG = "sincronizacao.log"
NOME_ULTIMA_EXECUCAO = "ultima_execucao.json"

PADRAO_TIMEOUT_TOTAL = 900.0
PADRAO_TENTATIVAS = 3
PADRAO_ESPERA_INICIAL = 30.0
PADRAO_LOG_MAX_BYTES = 1024 * 1024
PADRAO_LOG_BACKUPS = 5

ESPERA_MAXIMA = 900.0  # teto de uma espera entre tentativas (15 min)
GRACA_ENCERRAMENTO = 5.0  # segundos entre SIGTERM e SIGKILL
TIMEOUT_WEBHOOK = 10.0
LINHAS_GUARDADAS = 15  # últimas linhas da saída usadas no aviso
LIMITE_TEXTO_AVISO = 1900  # o Discord aceita até 2000 caracteres

CODIGO_OK = 0
CODIGO_CONFIGURACAO = 2
CODIGO_INACESSIVEL = 4
CODIGO_INTERROMPIDO = 130
CODIGOS_REPETIVEIS = frozenset({CODIGO_INACESSIVEL})

VARIAVEIS_SECRETAS = (
    "ADMIN_PASSWORD",
    "PRINCIPAL_ADMIN_PASSWORD",
    "BACKUP_ADMIN_PASSWORD",
    "PAINEL_TOKEN",
    "SYNC_WEBHOOK_URL",
)

SIGNIFICADOS = {
    0: "sucesso: todos os backups em paridade",
    1: "algumas ações falharam ou há conflitos",
    2: "problema de configuração ou de credenciais",
    3: "outra sincronização já está em andamento (trava ocupada)",
    4: "servidor inacessível, dados inutilizáveis ou tempo esgotado",
    5: "exclusões retidas por uma proteção de segurança",
    130: "interrompido pelo usuário (Ctrl+C)",
    143: "encerrado pelo sistema (SIGTERM)",
}

IS_WINDOWS = os.name == "nt"


def significado(codigo: int) -> str:
    """Texto em português que explica um código de saída."""
    return SIGNIFICADOS.get(codigo, "código inesperado")


class ErroUso(Exception):
    """Opção ou valor inválido (mensagem já em português)."""


class Interrompido(BaseException):
    """Execução interrompida por um sinal (Ctrl+C, SIGTERM)."""

    def __init__(self, codigo: int) -> None:
        super().__init__(codigo)
        self.codigo = codigo


# ---------------------------------------------------------------------------
# Máscara de segredos
# ---------------------------------------------------------------------------

_RE_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[^\s\"',;]+")
_RE_CREDENCIAL_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
MASCARA = "***"


class Mascarador:
    """Troca por ``***`` os valores secretos e os tokens ``Bearer``."""

    def __init__(self, segredos) -> None:
        variantes = set()
        for valor in segredos:
            if not valor:
                continue
            valor = str(valor)
            variantes.add(valor)
            variantes.add(urllib.parse.quote(valor, safe=""))
            variantes.add(urllib.parse.quote_plus(valor, safe=""))
            variantes.add(json.dumps(valor, ensure_ascii=False)[1:-1])
            variantes.add(json.dumps(valor)[1:-1])
        variantes = sorted((v for v in variantes if v), key=len, reverse=True)
        self._regex = re.compile("|".join(re.escape(v) for v in variantes)) if variantes else None

    def __call__(self, texto) -> str:
        if texto is None:
            return ""
        texto = str(texto)
        if self._regex is not None:
            texto = self._regex.sub(MASCARA, texto)
        texto = _RE_BEARER.sub(lambda m: m.group(1) + m.group(2) + MASCARA, texto)
        texto = _RE_CREDENCIAL_URL.sub(lambda m: m.group(1) + MASCARA + "@", texto)
        return texto


# ---------------------------------------------------------------------------
# Configuração
# ---------------------------------------------------------------------------

_AJUDA = """\
Uso: python sincronizar_automatico.py [opções] [-- argumentos do sincronizar_bancos.py]

Roda o sincronizar_bancos.py com tempo limite, novas tentativas, log com
rotação e aviso de falha por webhook. Pensado para o Agendador de Tarefas do
Windows, o cron ou o systemd.

Opções (entre parênteses, a variável de ambiente ou do .env equivalente):
  --timeout-total SEG   tempo máximo de cada tentativa (SYNC_TIMEOUT_TOTAL, padrão 900)
  --tentativas N        número máximo de tentativas (SYNC_TENTATIVAS, padrão 3)
  --espera-inicial SEG  espera antes da 2ª tentativa, dobra a cada nova
                        (SYNC_ESPERA_INICIAL, padrão 30)
  --log-max-bytes N     tamanho máximo do log antes de girar
                        (SYNC_LOG_MAX_BYTES, padrão 1048576; 0 = nunca girar)
  --log-backups N       quantos logs antigos manter (SYNC_LOG_BACKUPS, padrão 5)
  --script CAMINHO      script a executar no lugar do sincronizar_bancos.py
  -h, --ajuda           mostra esta ajuda

Só os códigos 4 (servidor inacessível) e o tempo esgotado são repetidos.
O log fica em DADOS_DIR/logs/sincronizacao.log (padrão: dados/logs/ ao lado do script).
Se SYNC_WEBHOOK_URL estiver definida, uma falha final é avisada nesse webhook
(Discord ou Slack).
"""

_OPCOES_COM_VALOR = {
    "--timeout-total": "timeout_total",
    "--tentativas": "tentativas",
    "--espera-inicial": "espera_inicial",
    "--log-max-bytes": "log_max_bytes",
    "--log-backups": "log_backups",
    "--script": "script",
}


def ler_argumentos(argv):
    """Lê a linha de comando. Devolve (dicionário de opções, argumentos do filho)."""
    opcoes: dict = {}
    argv = list(argv)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return opcoes, argv[i + 1 :]
        if arg in ("-h", "--help", "--ajuda"):
            opcoes["ajuda"] = True
            i += 1
            continue
        nome, igual, valor = arg.partition("=")
        if nome in _OPCOES_COM_VALOR:
            if not igual:
                if i + 1 >= len(argv):
                    raise ErroUso(f"a opção {nome} precisa de um valor.")
                valor = argv[i + 1]
                i += 1
            opcoes[_OPCOES_COM_VALOR[nome]] = valor
            i += 1
            continue
        raise ErroUso(
            f"opção desconhecida: {arg!r}. Para repassar opções ao "
            f"sincronizar_bancos.py, coloque-as depois de '--'."
        )
    return opcoes, []


def _ler_env_simples(caminho: Path) -> dict:
    """Leitor mínimo de .env, usado só se o python-dotenv não estiver instalado."""
    valores: dict = {}
    try:
        linhas = caminho.read_text(encoding="utf-8-sig").splitlines()
    except OSError:
        return valores
    for linha in linhas:
        linha = linha.strip()
        if not linha or linha.startswith("#") or "=" not in linha:
            continue
        if linha.startswith("export "):
            linha = linha[len("export ") :]
        chave, _, valor = linha.partition("=")
        valor = valor.strip()
        if len(valor) >= 2 and valor[0] == valor[-1] and valor[0] in "\"'":
            valor = valor[1:-1]
        valores[chave.strip()] = valor
    return valores


def carregar_dotenv(pasta: Path) -> dict:
    """Valores do ``.env`` da pasta (sem alterar o ambiente)."""
    caminho = pasta / ".env"
    if not caminho.is_file():
        return {}
    try:
        if _dotenv_values is not None:
            # utf-8-sig: o Bloco de Notas do Windows às vezes grava com BOM.
            brutos = _dotenv_values(caminho, encoding="utf-8-sig")
        else:  # pragma: no cover
            brutos = _ler_env_simples(caminho)
    except Exception:  # .env ilegível: segue só com o ambiente
        brutos = _ler_env_simples(caminho)
    return {str(k): ("" if v is None else str(v)) for k, v in brutos.items()}


class Configuracao:
    """Ambiente + .env (o ambiente vence), com conversão e validação."""

    def __init__(self, ambiente, dotenv) -> None:
        self.ambiente = dict(ambiente)
        self.dotenv = dict(dotenv)

    def valor(self, nome: str):
        # Como o load_dotenv do sincronizar_bancos.py: se a variável existe no
        # ambiente (mesmo vazia), ela vence o .env.
        if nome in self.ambiente:
            bruto = self.ambiente[nome]
        else:
            bruto = self.dotenv.get(nome)
        if bruto is None or bruto.strip() == "":
            return None
        return bruto.strip()

    def segredos(self):
        """Todos os valores secretos conhecidos (do ambiente e do .env)."""
        for nome in VARIAVEIS_SECRETAS:
            for origem in (self.ambiente, self.dotenv):
                valor = origem.get(nome)
                if valor:
                    yield valor
                    if valor.strip() != valor:
                        yield valor.strip()


def _numero(opcoes, nome_opcao, config, variavel, padrao, tipo, minimo, descricao):
    bruto = opcoes.get(nome_opcao)
    origem = "--" + nome_opcao.replace("_", "-")
    if bruto is None:
        bruto = config.valor(variavel)
        origem = variavel
    if bruto is None:
        return padrao
    try:
        valor = tipo(str(bruto).strip().replace(",", "."))
    except ValueError:
        raise ErroUso(f"{origem}={bruto!r} não é um número válido ({descricao}).") from None
    if valor != valor or valor in (float("inf"), float("-inf")) or valor < minimo:
        raise ErroUso(f"{origem}={bruto!r} inválido: {descricao}.")
    return valor


# (opção, variável, padrão, tipo, mínimo, descrição); as do log caem no padrão se inválidas,
# para que o próprio erro ainda possa ser registrado no log.
OPCOES_NUMERICAS = (
    ("log_max_bytes", "SYNC_LOG_MAX_BYTES", PADRAO_LOG_MAX_BYTES, int, 0, "tamanho em bytes, 0 ou mais"),
    ("log_backups", "SYNC_LOG_BACKUPS", PADRAO_LOG_BACKUPS, int, 1, "número inteiro, 1 ou mais"),
    ("timeout_total", "SYNC_TIMEOUT_TOTAL", PADRAO_TIMEOUT_TOTAL, float, 0, "segundos, maior que zero"),
    ("tentativas", "SYNC_TENTATIVAS", PADRAO_TENTATIVAS, int, 1, "número inteiro, 1 ou mais"),
    ("espera_inicial", "SYNC_ESPERA_INICIAL", PADRAO_ESPERA_INICIAL, float, 0, "segundos, 0 ou mais"),
)


def _ler_numeros(opcoes, config) -> tuple[dict, list[str]]:
    """Lê as opções numéricas; cada valor inválido vira uma mensagem de erro de configuração."""
    valores, erros = {}, []
    for nome, variavel, padrao, tipo, minimo, descricao in OPCOES_NUMERICAS:
        try:
            valores[nome] = _numero(opcoes, nome, config, variavel, padrao, tipo, minimo, descricao)
        except ErroUso as erro:
            erros.append(str(erro))
            valores[nome] = padrao if nome.startswith("log_") else None
    if valores["timeout_total"] is not None and valores["timeout_total"] <= 0:
        erros.append(f"o tempo limite deve ser maior que zero (recebido {valores['timeout_total']}).")
        valores["timeout_total"] = None
    return valores, erros


def resolver_pasta_dados(config: Configuracao, pasta_script: Path) -> Path:
    bruto = config.valor("DADOS_DIR")
    if not bruto:
        return pasta_script / "dados"
    caminho = Path(os.path.expandvars(os.path.expanduser(bruto)))
    if not caminho.is_absolute():
        caminho = pasta_script / caminho
    return caminho


# ---------------------------------------------------------------------------
# Registro (log em arquivo + eco na saída padrão), sempre mascarado
# ---------------------------------------------------------------------------

_NIVEIS = {"DEBUG": "DEPURAÇÃO", "INFO": "INFO", "WARNING": "AVISO", "ERROR": "ERRO", "CRITICAL": "CRÍTICO"}


class _FormatadorMascarado(logging.Formatter):
    def __init__(self, mascarar) -> None:
        super().__init__("%(asctime)s %(nivel)-7s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
        self._mascarar = mascarar

    def format(self, record):
        record.nivel = _NIVEIS.get(record.levelname, record.levelname)
        return self._mascarar(super().format(record))


class Registro:
    """Escreve no log com rotação e ecoa na saída padrão, sempre mascarando."""

    def __init__(self, mascarar: Mascarador) -> None:
        self.mascarar = mascarar
        self.caminho_log = None
        self._trava = threading.Lock()
        self._logger = logging.getLogger(f"sincronizar_automatico.{id(self)}")
        self._logger.setLevel(logging.INFO)
        self._logger.propagate = False
        self._eco = sys.stdout is not None
        self.ultimo_erro = None

    def abrir_arquivo(self, caminho: Path, max_bytes: int, backups: int) -> None:
        try:
            caminho.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                caminho, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        except OSError as erro:
            self.aviso(
                f"não foi possível abrir o log {caminho}: {erro.strerror or erro}. "
                f"Continuando só com a saída na tela."
            )
            return
        handler.setFormatter(_FormatadorMascarado(self.mascarar))
        self._logger.addHandler(handler)
        self.caminho_log = caminho

    def fechar(self) -> None:
        for handler in list(self._logger.handlers):
            try:
                handler.close()
            finally:
                self._logger.removeHandler(handler)

    def _ecoar(self, texto: str, erro: bool = False) -> None:
        fluxo = sys.stderr if erro else sys.stdout
        if fluxo is None or not self._eco:
            return
        try:
            fluxo.write(texto + "\n")
            fluxo.flush()
        except (OSError, ValueError):  # sem console (ex.: pythonw no agendador)
            self._eco = False

    def _registrar(self, nivel: int, mensagem: str, prefixo: str, erro: bool) -> None:
        mensagem = self.mascarar(mensagem)
        with self._trava:
            self._logger.log(nivel, mensagem)
            self._ecoar(prefixo + mensagem, erro)

    def info(self, mensagem: str) -> None:
        self._registrar(logging.INFO, mensagem, "[automático] ", False)

    def aviso(self, mensagem: str) -> None:
        self._registrar(logging.WARNING, mensagem, "[automático] AVISO: ", False)

    def erro(self, mensagem: str) -> None:
        self.ultimo_erro = self.mascarar(mensagem)
        self._registrar(logging.ERROR, mensagem, "[automático] ERRO: ", True)

    def saida_filho(self, linha: str, tentativa: int) -> None:
        linha = self.mascarar(linha)
        with self._trava:
            self._logger.info(f"[tentativa {tentativa}] {linha}")
            self._ecoar(linha)


# ---------------------------------------------------------------------------
# Processo filho
# ---------------------------------------------------------------------------


def _python_do_filho() -> str:
    """O mesmo Python; no Windows troca pythonw.exe por python.exe (saída em pipe)."""
    executavel = sys.executable or ""
    if IS_WINDOWS and executavel:
        caminho = Path(executavel)
        if caminho.name.lower() == "pythonw.exe":
            alternativo = caminho.with_name("python.exe")
            if alternativo.is_file():
                return str(alternativo)
    return executavel


def _matar_e_esperar(proc: subprocess.Popen, graca: float) -> None:
    """SIGKILL (TerminateProcess no Windows) no filho direto e espera até `graca` segundos."""
    try:
        proc.kill()
    except OSError:
        pass
    try:
        proc.wait(timeout=graca)
    except subprocess.TimeoutExpired:
        pass


def encerrar_arvore(proc: subprocess.Popen, graca: float = GRACA_ENCERRAMENTO) -> None:
    """Encerra o processo filho e todos os seus descendentes."""
    if IS_WINDOWS:
        try:
            subprocess.run(
                ["taskkill", "/T", "/F", "/PID", str(proc.pid)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except (OSError, subprocess.SubprocessError):
            pass
        _matar_e_esperar(proc, graca)
        return

    pgid = proc.pid  # start_new_session=True: o filho lidera o próprio grupo
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.terminate()
    # Dá ao filho uma chance de terminar sozinho; depois, SIGKILL no grupo
    # inteiro pega qualquer descendente que tenha ignorado o SIGTERM.
    try:
        proc.wait(timeout=graca)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    _matar_e_esperar(proc, graca)


class ResultadoTentativa:
    def __init__(self, codigo: int, tempo_esgotado: bool, sinal, inicio: datetime, linhas) -> None:
        self.codigo = codigo
        self.tempo_esgotado = tempo_esgotado
        self.sinal = sinal
        self.inicio = inicio
        self.linhas = list(linhas)


def _ler_saida(fluxo, registro: Registro, tentativa: int, ultimas) -> None:
    try:
        for bruto in iter(fluxo.readline, b""):
            linha = bruto.decode("utf-8", errors="replace").rstrip("\r\n")
            registro.saida_filho(linha, tentativa)
            ultimas.append(registro.mascarar(linha))
    except (OSError, ValueError):
        pass


def executar_tentativa(comando, pasta: Path, timeout: float, registro: Registro, tentativa: int):
    """Roda o filho uma vez. Devolve ResultadoTentativa; erros de início sobem como OSError."""
    ambiente = dict(os.environ)
    ambiente["PYTHONUNBUFFERED"] = "1"
    ambiente["PYTHONIOENCODING"] = "utf-8"
    extras = {}
    if IS_WINDOWS:
        extras["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(
            subprocess, "CREATE_NO_WINDOW", 0
        )
    else:
        extras["start_new_session"] = True

    inicio = datetime.now().astimezone()
    ultimas = collections.deque(maxlen=LINHAS_GUARDADAS)
    proc = subprocess.Popen(
        comando,
        cwd=str(pasta),
        env=ambiente,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **extras,
    )
    leitor = threading.Thread(
        target=_ler_saida, args=(proc.stdout, registro, tentativa, ultimas), daemon=True
    )
    leitor.start()
    limite = time.monotonic() + timeout
    tempo_esgotado = False
    try:
        while True:
            restante = limite - time.monotonic()
            if restante <= 0:
                tempo_esgotado = True
                break
            try:
                proc.wait(timeout=min(0.5, restante))
                break
            except subprocess.TimeoutExpired:
                continue
        if tempo_esgotado:
            registro.erro(
                f"tentativa {tentativa}: tempo limite de {_fmt_segundos(timeout)} esgotado; "
                f"encerrando o processo e todos os que ele abriu."
            )
            encerrar_arvore(proc)
    except BaseException:
        encerrar_arvore(proc)
        leitor.join(timeout=2)
        raise

    leitor.join(timeout=5)
    if leitor.is_alive() and not IS_WINDOWS:
        # O filho terminou, mas algum processo que ele abriu segura a saída.
        registro.aviso("processos deixados pelo script ainda estavam ativos; encerrando-os.")
        encerrar_arvore(proc)
        leitor.join(timeout=2)
    try:
        proc.stdout.close()
    except (OSError, ValueError):
        pass

    codigo = proc.returncode
    sinal = None
    if tempo_esgotado:
        codigo = CODIGO_INACESSIVEL
    elif codigo is None:
        codigo = CODIGO_INACESSIVEL
    elif codigo < 0:
        sinal = -codigo
        codigo = CODIGO_INACESSIVEL
    return ResultadoTentativa(codigo, tempo_esgotado, sinal, inicio, ultimas)


# ---------------------------------------------------------------------------
# Resumo da última execução (DADOS_DIR/ultima_execucao.json)
# ---------------------------------------------------------------------------


def _data(texto):
    if not isinstance(texto, str) or not texto.strip():
        return None
    texto = texto.strip()
    if texto.endswith(("Z", "z")):
        texto = texto[:-1] + "+00:00"
    try:
        data = datetime.fromisoformat(texto)
    except ValueError:
        return None
    if data.tzinfo is None:
        data = data.astimezone()  # sem fuso: hora local
    return data


def ler_ultima_execucao(caminho: Path, inicio_tentativa: datetime):
    """Lê o resumo, se existir e for desta tentativa; senão devolve None."""
    try:
        with open(caminho, encoding="utf-8") as arquivo:
            dados = json.load(arquivo)
        modificado = datetime.fromtimestamp(caminho.stat().st_mtime).astimezone()
    except (OSError, ValueError):
        return None
    if not isinstance(dados, dict):
        return None
    tolerancia = timedelta(seconds=2)
    referencia = _data(dados.get("fim")) or _data(dados.get("inicio"))
    if referencia is None:
        referencia = modificado
    if referencia < inicio_tentativa - tolerancia:
        return None  # desatualizado: de uma execução anterior
    return dados


def _sem_credenciais(url) -> str:
    if not isinstance(url, str):
        return ""
    try:
        partes = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if partes.username or partes.password:
        host = partes.hostname or ""
        if partes.port:
            host = f"{host}:{partes.port}"
        partes = partes._replace(netloc=host)
    return urllib.parse.urlunsplit(partes)


def servidores_do_resumo(resumo, mascarar: Mascarador):
    if not resumo or not isinstance(resumo.get("servidores"), list):
        return []
    servidores = []
    for item in resumo["servidores"]:
        if not isinstance(item, dict):
            continue
        erro = item.get("erro")
        servidores.append(
            {
                "papel": mascarar(item.get("papel") or ""),
                "url": mascarar(_sem_credenciais(item.get("url"))),
                "ok": bool(item.get("ok")),
                "erro": None if erro in (None, "") else mascarar(erro),
            }
        )
    return servidores


# ---------------------------------------------------------------------------
# Aviso por webhook
# ---------------------------------------------------------------------------


def montar_texto_aviso(codigo, tentativas, host, resumo, servidores, resultado, timeout, mascarar, erro=None):
    linhas = [
        f"⚠️ Sincronização dos servidores de licença FALHOU em {host}",
        f"Código {codigo}: {significado(codigo)}.",
        f"Tentativas: {tentativas}.",
    ]
    mensagem = resumo.get("mensagem") if resumo else None
    if isinstance(mensagem, str) and mensagem.strip():
        linhas.append(f"Motivo: {mensagem.strip()}")
    elif resultado is not None and resultado.tempo_esgotado:
        linhas.append(
            f"Motivo: a sincronização passou do tempo limite de {_fmt_segundos(timeout)} "
            f"e foi encerrada."
        )
    elif resultado is None and erro:
        linhas.append(f"Motivo: {erro}")
    else:
        linhas.append("Motivo: o resumo da última execução não está disponível (ausente ou desatualizado).")
    if servidores:
        linhas.append("Servidores:")
        for servidor in servidores:
            estado = "OK" if servidor["ok"] else f"ERRO — {servidor['erro'] or 'sem detalhe'}"
            linhas.append(f"• {servidor['papel'] or 'servidor'} {servidor['url']}: {estado}")
    if not resumo and resultado is not None and resultado.linhas:
        linhas.append("Últimas linhas da saída:")
        linhas.extend(linha[:300] for linha in resultado.linhas if linha.strip())
    texto = mascarar("\n".join(linhas))
    if len(texto) > LIMITE_TEXTO_AVISO:
        texto = texto[: LIMITE_TEXTO_AVISO - 20].rstrip() + "\n… (texto cortado)"
    return texto


def enviar_webhook(url: str, carga: dict, registro: Registro) -> bool:
    """POST do aviso. Qualquer falha é registrada e nunca interrompe o invólucro."""
    try:
        partes = urllib.parse.urlsplit(url)
    except ValueError:
        partes = None
    if partes is None or partes.scheme not in ("http", "https") or not partes.hostname:
        registro.erro("SYNC_WEBHOOK_URL inválida (use um endereço http:// ou https://); aviso não enviado.")
        return False
    corpo = json.dumps(carga, ensure_ascii=False).encode("utf-8")
    pedido = urllib.request.Request(
        url,
        data=corpo,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            # O Discord recusa o agente padrão do urllib ("Python-urllib").
            "User-Agent": "sincronizar-automatico/1.0",
        },
    )
    try:
        with urllib.request.urlopen(pedido, timeout=TIMEOUT_WEBHOOK) as resposta:
            status = resposta.status
    except urllib.error.HTTPError as erro:
        registro.erro(f"o webhook ({partes.hostname}) recusou o aviso: HTTP {erro.code}.")
        return False
    except Exception as erro:  # rede, DNS, TLS, tempo esgotado...
        motivo = getattr(erro, "reason", None) or erro
        registro.erro(f"falha ao enviar o aviso ao webhook ({partes.hostname}): {motivo}.")
        return False
    registro.info(f"aviso de falha enviado ao webhook ({partes.hostname}, HTTP {status}).")
    return True


# ---------------------------------------------------------------------------
# Principal
# ---------------------------------------------------------------------------


def _fmt_segundos(segundos: float) -> str:
    if segundos == int(segundos):
        return f"{int(segundos)} s"
    return f"{segundos:.1f} s"


def _preparar_saida_padrao() -> None:
    for fluxo in (sys.stdout, sys.stderr):
        if fluxo is not None and hasattr(fluxo, "reconfigure"):
            try:  # console do Windows (cp1252/cp850): nunca quebrar por acento ou emoji
                fluxo.reconfigure(errors="replace")
            except (OSError, ValueError):
                pass


def _imprimir_erro(texto: str) -> None:
    if sys.stderr is not None:
        try:
            sys.stderr.write(texto + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _tratar_sigterm(signum, _frame):
    raise Interrompido(128 + signum)


def calcular_espera(base: float, tentativa: int) -> float:
    """Espera antes da próxima tentativa: base × 2^(n-1), ±25%, com teto."""
    espera = base * (2 ** (tentativa - 1))
    espera = min(espera, ESPERA_MAXIMA)
    return espera * random.uniform(0.75, 1.25)


def main(argv=None) -> int:
    _preparar_saida_padrao()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        opcoes, argumentos_filho = ler_argumentos(argv)
    except ErroUso as erro:
        _imprimir_erro(f"Erro: {erro}\nUse --ajuda para ver as opções.")
        return CODIGO_CONFIGURACAO
    if opcoes.get("ajuda"):
        print(_AJUDA)
        return CODIGO_OK

    if opcoes.get("script"):
        script = Path(os.path.expanduser(opcoes["script"])).resolve()
    else:
        script = PASTA_DESTE_ARQUIVO / NOME_SCRIPT_PADRAO
    pasta_script = script.parent

    config = Configuracao(os.environ, carregar_dotenv(pasta_script))
    mascarar = Mascarador(config.segredos())
    registro = Registro(mascarar)
    pasta_dados = resolver_pasta_dados(config, pasta_script)

    numeros, erros_config = _ler_numeros(opcoes, config)
    log_max_bytes, log_backups = numeros["log_max_bytes"], numeros["log_backups"]
    timeout, tentativas = numeros["timeout_total"], numeros["tentativas"]
    espera_inicial = numeros["espera_inicial"]

    registro.abrir_arquivo(pasta_dados / "logs" / NOME_LOG, log_max_bytes, log_backups)
    host = socket.gethostname()
    inicio = datetime.now().astimezone()
    inicio_monotonico = time.monotonic()
    registro.info(
        f"===== INÍCIO da sincronização automática | {inicio.isoformat(timespec='seconds')} "
        f"| máquina {host} | pid {os.getpid()} | script {script} "
        f"| tentativas {'?' if tentativas is None else tentativas} "
        f"| tempo limite {'?' if timeout is None else _fmt_segundos(timeout)} "
        f"| espera inicial {'?' if espera_inicial is None else _fmt_segundos(espera_inicial)} ====="
    )

    sinal_anterior = None
    if hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
        try:
            sinal_anterior = signal.signal(signal.SIGTERM, _tratar_sigterm)
        except (OSError, ValueError):
            sinal_anterior = None

    codigo = CODIGO_CONFIGURACAO
    feitas = 0
    resultado = None
    resumo = None
    interrompido = False
    try:
        for texto in erros_config:
            registro.erro(f"configuração inválida: {texto}")
        python = _python_do_filho()
        if erros_config:
            codigo = CODIGO_CONFIGURACAO
        elif not python:
            registro.erro("não foi possível descobrir o caminho do Python em uso (sys.executable vazio).")
            codigo = CODIGO_CONFIGURACAO
        elif not script.is_file():
            registro.erro(
                f"script não encontrado: {script}. Coloque o sincronizar_automatico.py na mesma "
                f"pasta do {NOME_SCRIPT_PADRAO} (ou use --script)."
            )
            codigo = CODIGO_CONFIGURACAO
        else:
            comando = [python, str(script), *argumentos_filho]
            arquivo_resumo = pasta_dados / NOME_ULTIMA_EXECUCAO
            for tentativa in range(1, tentativas + 1):
                feitas = tentativa
                registro.info(f"tentativa {tentativa} de {tentativas}: iniciando {script.name}.")
                try:
                    resultado = executar_tentativa(comando, pasta_script, timeout, registro, tentativa)
                except OSError as erro:
                    registro.erro(f"não foi possível iniciar o Python ({python}): {erro.strerror or erro}.")
                    codigo = CODIGO_CONFIGURACAO
                    resultado = None
                    break
                codigo = resultado.codigo
                resumo = ler_ultima_execucao(arquivo_resumo, resultado.inicio)
                if resultado.tempo_esgotado:
                    detalhe = "tempo esgotado"
                elif resultado.sinal is not None:
                    detalhe = f"processo encerrado pelo sinal {resultado.sinal}"
                else:
                    detalhe = significado(codigo)
                registro.info(f"tentativa {tentativa} terminou com código {codigo} ({detalhe}).")
                if resumo and isinstance(resumo.get("mensagem"), str):
                    registro.info(f"resumo: {resumo['mensagem']}")
                elif not resultado.tempo_esgotado:
                    registro.aviso(
                        f"{NOME_ULTIMA_EXECUCAO} ausente ou desatualizado após a tentativa {tentativa}."
                    )
                if codigo == CODIGO_OK:
                    break
                if codigo not in CODIGOS_REPETIVEIS:
                    registro.info(f"código {codigo} não se resolve repetindo; sem nova tentativa.")
                    break
                if tentativa < tentativas:
                    espera = calcular_espera(espera_inicial, tentativa)
                    registro.info(
                        f"nova tentativa em {espera:.1f} s (servidor inacessível ou tempo esgotado)."
                    )
                    time.sleep(espera)
    except KeyboardInterrupt:
        interrompido = True
        codigo = CODIGO_INTERROMPIDO
        registro.erro("interrompido pelo usuário (Ctrl+C); processos da sincronização encerrados.")
    except Interrompido as sinal_recebido:
        interrompido = True
        codigo = sinal_recebido.codigo
        registro.erro("encerrado por um sinal do sistema; processos da sincronização encerrados.")
    except Exception as erro:  # nunca mostrar traceback ao usuário
        codigo = 1
        registro.erro(f"erro interno inesperado no sincronizar_automatico: {type(erro).__name__}: {erro}")
    finally:
        if sinal_anterior is not None:
            try:
                signal.signal(signal.SIGTERM, sinal_anterior)
            except (OSError, ValueError):
                pass

    try:
        url_webhook = config.valor("SYNC_WEBHOOK_URL")
        if codigo != CODIGO_OK and not interrompido and url_webhook:
            servidores = servidores_do_resumo(resumo, mascarar)
            texto = montar_texto_aviso(
                codigo, feitas, host, resumo, servidores, resultado, timeout or 0, mascarar,
                erro=registro.ultimo_erro,
            )
            carga = {
                "content": texto,
                "text": texto,
                "codigo_saida": codigo,
                "servidores": servidores,
                "tentativas": feitas,
                "host": host,
            }
            enviar_webhook(url_webhook, carga, registro)
    except KeyboardInterrupt:
        codigo = CODIGO_INTERROMPIDO
    except Exception as erro:  # pragma: no cover - defensivo
        registro.erro(f"falha ao preparar o aviso do webhook: {type(erro).__name__}: {erro}")

    fim = datetime.now().astimezone()
    duracao = time.monotonic() - inicio_monotonico
    registro.info(
        f"===== FIM da sincronização automática | {fim.isoformat(timespec='seconds')} "
        f"| duração {duracao:.1f} s | tentativas {feitas} | código de saída {codigo} "
        f"({significado(codigo)}) ====="
    )
    if registro.caminho_log is not None and codigo != CODIGO_OK:
        _imprimir_erro(f"Detalhes no log: {registro.caminho_log}")
    registro.fechar()
    return codigo


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl+C fora do laço principal
        _imprimir_erro("Interrompido pelo usuário.")
        sys.exit(CODIGO_INTERROMPIDO)
