#!/usr/bin/env python3
# -*- coding: utf-8 -*-
"""Execução automática (agendada) da sincronização dos servidores de licença.

Este arquivo é o "invólucro" que o Agendador de Tarefas do Windows, o cron ou o
systemd chamam. Ele roda o ``sincronizar_bancos.py`` (que fica na mesma pasta)
como um processo filho, com o mesmo Python que o executou, e cuida de tudo o
que uma execução sem ninguém olhando precisa:

* tempo limite por tentativa: se a sincronização travar, o processo filho e
  todos os processos que ele abriu são encerrados;
* novas tentativas com espera crescente (exponencial, com variação aleatória),
  somente quando o problema pode se resolver sozinho: servidor inacessível
  (código 4, por exemplo um servidor gratuito "dormindo") ou tempo esgotado.
  Configuração errada (2), outra sincronização em andamento (3) e os demais
  códigos não são repetidos;
* uma execução automática por vez: a trava ``DADOS_DIR/sincronizacao_automatica.lock``
  impede que duas se sobreponham (a segunda termina logo, com código 3);
* registro em ``DADOS_DIR/logs/sincronizacao.log`` (com rotação por tamanho),
  com uma linha de cabeçalho e uma de rodapé por execução; senhas e tokens são
  sempre mascarados (``***``);
* aviso opcional de falha num webhook (Discord ou Slack) em ``SYNC_WEBHOOK_URL``,
  enviado uma única vez, depois da última tentativa que falhou, dizendo quais
  servidores falharam.

As configurações são lidas pelas MESMAS funções do sincronizar_bancos.py (este
arquivo o importa): opção > variável de ambiente > arquivo ``.env`` ao lado do
script; variável vazia conta como não definida; números com vírgula ou ponto
decimal (1,5 = 1.5). Os códigos de saída (ExitCode), a tabela de configurações
(SETTINGS), as variáveis secretas, as traduções do argparse e a máscara de
segredos também são os dele.

Uso (de qualquer pasta; os caminhos são resolvidos a partir deste arquivo)::

    python sincronizar_automatico.py
    python sincronizar_automatico.py --tentativas 5 --timeout-total 600
    python sincronizar_automatico.py -- --opcao-do-sincronizar-bancos
    python sincronizar_automatico.py --ajuda

Opções (a variável equivalente vale quando a opção não é dada; os padrões estão
em ``--ajuda``, tirados da tabela SETTINGS do sincronizar_bancos.py):

  --timeout-total SEG   SYNC_TIMEOUT_TOTAL   tempo máximo de cada tentativa
  --tentativas N        SYNC_TENTATIVAS      número máximo de tentativas
  --espera-inicial SEG  SYNC_ESPERA_INICIAL  espera antes da 2ª tentativa;
                                             dobra a cada nova tentativa, ±25%,
                                             limitada a 15 minutos
  --log-max-bytes N     SYNC_LOG_MAX_BYTES   tamanho máximo do log antes de
                                             girar (0 = nunca)
  --log-backups N       SYNC_LOG_BACKUPS     quantos logs antigos manter
  --script CAMINHO      (nenhuma)            outro script no lugar do
                                             sincronizar_bancos.py (uso avançado
                                             e testes)
  --informar            (nenhuma)            mostra em JSON a pasta de dados, o
                                             log e os códigos de saída, e sai
                                             (usado pelo AGENDAR_SINCRONIZACAO.ps1)
  -- ARGUMENTOS...                           tudo depois de ``--`` é repassado
                                             ao sincronizar_bancos.py (inclusive
                                             --env e --dados-dir, que este
                                             invólucro também respeita)

Pasta de dados: ``DADOS_DIR`` (ou ``--dados-dir`` depois de ``--``); padrão
``dados`` ao lado do script; ``~`` é a pasta do usuário; caminho relativo é
relativo à pasta do script. ``SYNC_WEBHOOK_URL`` liga o aviso de falha.

Códigos de saída: os do sincronizar_bancos.py, repassados como vieram (0 a 5,
130 e 143; veja ``--ajuda``). O código 4 também é usado quando o tempo limite se
esgota na última tentativa ou quando o processo é morto por um sinal. Se o
sincronizar_bancos.py não puder ser carregado (arquivo ausente ou dependência
não instalada), a saída é 2, com a explicação na tela.
"""

from __future__ import annotations

# Python antigo: 2.7, 3.6 e 3.7 nem chegam a executar nada (o arquivo inteiro é lido antes) e mostram a linha
# de sintaxe abaixo, que já diz o que fazer; 3.8 e 3.9 executam até o teste da versão, antes de qualquer import
# que eles não têm (zoneinfo, dataclass com slots...). Só sintaxe do 3.8 até o teste.
_PYTHON_MINIMO = (_ := "ERRO: este programa precisa do Python 3.10 ou mais novo - veja https://www.python.org/downloads/")

import sys


def python_antigo_texto(versao, executavel, plataforma):
    """A linha única para quem roda num Python antes do 3.10 (só sintaxe do 3.8: roda antes dos imports)."""
    if plataforma.startswith("win"):
        como = ("baixe o Python 3.12 em https://www.python.org/downloads/ (marque \"Add python.exe to PATH\") e "
                "rode com py")
    elif plataforma == "darwin":
        como = "instale pelo https://www.python.org/downloads/ (ou brew install python@3.12) e rode com python3"
    else:
        como = ("o Debian 12 e o Ubuntu 22.04 já trazem um python3 novo; no Debian 11 ou no Ubuntu 20.04, atualize o "
                "sistema ou instale um Python 3.10+ (ex.: Ubuntu: sudo add-apt-repository ppa:deadsnakes/ppa && "
                "sudo apt install python3.12 python3.12-venv) e rode com ele")
    return ("❌ Este programa precisa do Python 3.10 ou mais novo; este é o Python {}.{}.{} ({}). Para "
            "resolver: {}.".format(versao[0], versao[1], versao[2], executavel or "python", como))


if sys.version_info < (3, 10):
    sys.stderr.write(python_antigo_texto(sys.version_info, sys.executable, sys.platform) + "\n")
    raise SystemExit(2)

import argparse
import collections
import contextlib
import dataclasses
import io
import json
import logging
import logging.handlers
import os
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
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from sincronizar_bancos import LastRun

PASTA_DESTE_ARQUIVO = Path(__file__).resolve().parent
NOME_SCRIPT_PADRAO = "sincronizar_bancos.py"
NOME_LOG = "sincronizacao.log"
NOME_ULTIMA_EXECUCAO = "ultima_execucao.json"
NOME_TRAVA = "sincronizacao_automatica.lock"  # outra que a do sincronizar_bancos.py

GRACA_ENCERRAMENTO = 30.0  # segundos entre SIGTERM e SIGKILL: o filho termina a escrita em andamento (systemd: 90 s)
TIMEOUT_WEBHOOK = 10.0  # prazo TOTAL do aviso (conexão, envio e resposta)
LINHAS_GUARDADAS = 15  # últimas linhas da saída usadas no aviso
LIMITE_TEXTO_AVISO = 1900  # o Discord aceita até 2000 caracteres

# Código de saída quando o sincronizar_bancos.py não pôde ser carregado: é o
# ExitCode.CONFIG dele (a tabela de códigos mora lá; aqui ela não está disponível).
CODIGO_SEM_SCRIPT = 2
# A interface do sincronizar_bancos.py que este arquivo usa (WRAPPER_INTERFACE dele; ausente = mais antigo).
INTERFACE_DO_SCRIPT = 2

IS_WINDOWS = os.name == "nt"


def _importar_sincronizar_bancos():
    """Carrega o sincronizar_bancos.py desta pasta. Devolve (módulo, None) ou (None, mensagem)."""
    pasta = str(PASTA_DESTE_ARQUIVO)
    if pasta not in sys.path:
        sys.path.insert(0, pasta)
    ao_lado = PASTA_DESTE_ARQUIVO / NOME_SCRIPT_PADRAO
    try:
        import sincronizar_bancos
    except SystemExit:  # ele já explicou na tela qual dependência falta
        return None, (
            f"❌ O sincronizar_automatico.py não conseguiu carregar o {ao_lado}: falta uma dependência "
            "(a linha acima diz qual é e o comando que a instala)."
        )
    except ImportError as erro:
        if erro.name == "sincronizar_bancos":
            return None, (
                f"❌ O {NOME_SCRIPT_PADRAO} não está em {PASTA_DESTE_ARQUIVO}. Coloque o "
                f"sincronizar_automatico.py na mesma pasta do {NOME_SCRIPT_PADRAO}."
            )
        return None, (
            f"❌ O sincronizar_automatico.py não conseguiu carregar o {ao_lado}: falta o módulo "
            f"{erro.name or erro}. Instale as dependências (requirements.txt) para o Python que roda este "
            f"arquivo ({sys.executable or 'python3'}); no Linux e no Mac, o mais simples é um ambiente próprio: "
            "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
        )
    except Exception as erro:  # arquivo corrompido, cópia pela metade...
        return None, (
            f"❌ O sincronizar_automatico.py não conseguiu carregar o {ao_lado} "
            f"({type(erro).__name__}: {erro}). Copie de novo o arquivo original."
        )
    return sincronizar_bancos, None


sb, ERRO_AO_CARREGAR = _importar_sincronizar_bancos()


def meia_atualizacao(modulo) -> str | None:
    """Os dois arquivos são de versões diferentes (só um foi trocado numa atualização): o texto que diz qual
    atualizar, ou None quando combinam. Conferido antes de usar qualquer outro nome do script."""
    if modulo is None:
        return None
    dele = getattr(modulo, "WRAPPER_INTERFACE", 0)
    if not isinstance(dele, int) or isinstance(dele, bool):
        dele = 0
    if dele == INTERFACE_DO_SCRIPT:
        return None
    versao = getattr(modulo, "VERSAO", "?")
    antigo, novo = ((NOME_SCRIPT_PADRAO, "sincronizar_automatico.py") if dele < INTERFACE_DO_SCRIPT
                    else ("sincronizar_automatico.py", NOME_SCRIPT_PADRAO))
    return (f"❌ Atualização pela metade em {PASTA_DESTE_ARQUIVO}: o {antigo} é de uma versão mais antiga que a do "
            f"{novo} (interface {dele} no script da versão {versao}; este invólucro espera a "
            f"{INTERFACE_DO_SCRIPT}). Atualize o {antigo}: copie-o da mesma versão do {novo} (os dois arquivos "
            "vão sempre juntos). Nenhuma sincronização foi feita.")


ERRO_DE_VERSAO = meia_atualizacao(sb)

# As configurações numéricas deste invólucro: as da tabela do script marcadas wrapper=True.
CONFIGURACOES_NUMERICAS = () if sb is None or ERRO_DE_VERSAO else tuple(
    c for c in sb.SETTINGS if c.wrapper and c.kind in (sb.SettingKind.DECIMAL, sb.SettingKind.INTEGER))


def significado(codigo: int) -> str:
    """Texto em português que explica um código de saída (a tabela é a do sincronizar_bancos.py)."""
    texto = sb.ExitCode.meaning_of(codigo)
    if codigo == sb.ExitCode.SERVER:
        texto += "; ou tempo limite esgotado"
    return texto


class ErroUso(Exception):
    """Opção ou valor inválido (mensagem já em português)."""


class Interrompido(BaseException):
    """Execução interrompida por um sinal (Ctrl+C, SIGTERM)."""

    def __init__(self, codigo: int) -> None:
        super().__init__(codigo)
        self.codigo = codigo


# ---------------------------------------------------------------------------
# Segredos: a máscara é a do sincronizar_bancos.py (a do contexto deste processo: sb.run_context().secrets)
# ---------------------------------------------------------------------------


def variantes(valor: str) -> set[str]:
    """O segredo como aparece em texto puro, codificado em URL e escapado em JSON."""
    return {
        valor,
        urllib.parse.quote(valor, safe=""),
        urllib.parse.quote_plus(valor, safe=""),
        json.dumps(valor, ensure_ascii=False)[1:-1],
        json.dumps(valor)[1:-1],
    }


def mascara_do_script():
    """A máscara de segredos do sincronizar_bancos.py neste processo (a do contexto de fora de uma execução,
    que o invólucro usa do começo ao fim). Num script de antes da interface 2 (atualização pela metade), a
    máscara do módulo dele (sb.SECRETS, que lá ainda é a máscara mesma)."""
    contexto = getattr(sb, "run_context", None)
    return contexto().secrets if contexto is not None else sb.SECRETS


def registrar_segredos(valores, destino=None) -> None:
    """Acrescenta os segredos (e suas variantes) à máscara do sincronizar_bancos.py."""
    destino = mascara_do_script() if destino is None else destino
    for valor in valores:
        if valor:
            for variante in variantes(str(valor)):
                destino.add(variante)


def mascarar(texto) -> str:
    return mascara_do_script().mask("" if texto is None else texto)


def visivel(texto: str) -> str:
    """Controles e marcas bidirecionais escritos à vista (\\x1b, U+202E), como no sincronizar_bancos.py.
    Com um sincronizar_bancos.py antigo (atualização pela metade), o texto sai como está: o log ainda abre
    para dizer qual arquivo atualizar."""
    escrever = getattr(sb, "visible_text", None)
    return escrever(texto) if escrever is not None else texto


# ---------------------------------------------------------------------------
# Passo 1: opções da linha de comando
# ---------------------------------------------------------------------------


class _FormatadorAjuda(argparse.RawDescriptionHelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        return super().add_usage(usage, actions, groups, prefix="Uso: ")


class _Analisador(argparse.ArgumentParser):
    """argparse com ajuda e erros em português (as traduções do sincronizar_bancos.py); erro vira
    ErroUso (código 2, sem traceback)."""

    def error(self, message: str):
        texto = sb.translate_argparse(message)
        if message.startswith("unrecognized arguments"):
            texto += ". Para repassar opções ao sincronizar_bancos.py, coloque-as depois de '--'"
        raise ErroUso(texto + ".")


def criar_analisador() -> argparse.ArgumentParser:
    analisador = _Analisador(
        prog="sincronizar_automatico.py",
        usage=f"{sb.python_command()} %(prog)s [opções] [-- argumentos do sincronizar_bancos.py]",
        description=(
            "Roda o sincronizar_bancos.py com tempo limite, novas tentativas, log com rotação e aviso de\n"
            "falha por webhook. Pensado para o Agendador de Tarefas do Windows, o cron ou o systemd."
        ),
        epilog=_epilogo(),
        add_help=False,
        allow_abbrev=False,
        formatter_class=_FormatadorAjuda,
    )
    analisador._optionals.title = "opções (entre parênteses, a variável de ambiente ou do .env equivalente)"
    adicionar = analisador.add_argument
    adicionar("-h", "--help", "--ajuda", dest="ajuda", action="store_true", help="mostra esta ajuda e sai")
    for config in CONFIGURACOES_NUMERICAS:  # texto cru: o valor é lido (e o erro registrado) em ler_ajustes
        adicionar(config.option, metavar="SEG" if config.kind == sb.SettingKind.DECIMAL else "N",
                  help=config.option_help())
    adicionar("--script", metavar="CAMINHO", help="script a executar no lugar do sincronizar_bancos.py")
    adicionar("--informar", action="store_true",
              help="mostra em JSON a pasta de dados, o arquivo de log e os códigos de saída, e sai")
    return analisador


def _epilogo() -> str:
    codigos = "\n".join(f"  {codigo.value:>3}  {significado(codigo)}" for codigo in sb.ExitCode)
    return (
        "Só o código 4 (servidor inacessível) e o tempo esgotado são repetidos.\n"
        "O log fica em DADOS_DIR/logs/sincronizacao.log (padrão: dados/logs/ ao lado do script;\n"
        "~ é a pasta do usuário; caminho relativo é relativo à pasta do script).\n"
        "Se SYNC_WEBHOOK_URL estiver definida, uma falha final é avisada nesse webhook (Discord ou Slack).\n\n"
        f"Códigos de saída (os do sincronizar_bancos.py):\n{codigos}"
    )


def ler_opcoes(argv) -> tuple[argparse.Namespace, list[str]]:
    """Opções do invólucro e os argumentos (depois de ``--``) repassados ao filho."""
    argv = list(argv)
    proprios, do_filho = argv, []
    if "--" in argv:
        corte = argv.index("--")
        proprios, do_filho = argv[:corte], argv[corte + 1 :]
    return criar_analisador().parse_args(proprios), do_filho


# ---------------------------------------------------------------------------
# Passo 2: configurações (as mesmas funções do sincronizar_bancos.py)
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Ajustes:
    script: Path
    pasta_script: Path
    pasta_dados: Path
    url_webhook: str | None
    timeout: float | None
    tentativas: int | None
    espera_inicial: float | None
    log_max_bytes: int
    log_backups: int
    erros: list[str]

    @property
    def arquivo_log(self) -> Path:
        return self.pasta_dados / "logs" / NOME_LOG


def _opcoes_do_filho(argumentos_filho, pasta_script: Path) -> argparse.Namespace:
    """--env e --dados-dir repassados ao sincronizar_bancos.py, lidos pelo analisador dele."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            lidas, _ = sb.build_parser().parse_known_args(list(argumentos_filho))
    except (SystemExit, sb.OptionError):  # argumentos que ele recusa: o próprio filho vai explicar
        lidas = argparse.Namespace()
    env = getattr(lidas, "env", None)
    if env and not os.path.isabs(os.path.expanduser(env)):
        env = str(pasta_script / env)  # o filho roda com a pasta do script como pasta de trabalho
    return argparse.Namespace(env=env, dados_dir=getattr(lidas, "dados_dir", None))


def _ler_numeros(opcoes: argparse.Namespace, get, erros: list[str]) -> dict:
    """Opção > variável > .env > padrão, lidos por sb.setting_value (a mesma regra de números do script);
    cada valor inválido vira uma mensagem em `erros`. As do log caem no padrão se inválidas, para que o
    próprio erro ainda possa ser registrado no log."""
    valores = {}
    for config in CONFIGURACOES_NUMERICAS:
        nome = config.option[2:].replace("-", "_")
        try:
            valores[nome] = sb.setting_value(get, config.name, getattr(opcoes, nome))
        except sb.ConfigError as erro:
            erros.append(str(erro))
            valores[nome] = config.default if nome.startswith("log_") else None
    return valores


def ler_ajustes(opcoes: argparse.Namespace, argumentos_filho) -> Ajustes:
    """Lê tudo o que o invólucro precisa, como o sincronizar_bancos.py leria, e registra os segredos."""
    if opcoes.script:
        script = Path(os.path.expanduser(opcoes.script)).resolve()
    else:
        script = PASTA_DESTE_ARQUIVO / NOME_SCRIPT_PADRAO
    pasta_script = script.parent
    erros: list[str] = []
    do_filho = _opcoes_do_filho(argumentos_filho, pasta_script)
    get = sb.settings_reader(do_filho, base_dir=str(pasta_script), errors=erros)
    registrar_segredos(get(nome) for nome in sb.SECRET_SETTINGS)
    pasta_dados = Path(sb.resolve_data_dir(get, do_filho.dados_dir, base_dir=str(pasta_script)))
    numeros = _ler_numeros(opcoes, get, erros)
    return Ajustes(
        script=script,
        pasta_script=pasta_script,
        pasta_dados=pasta_dados,
        url_webhook=get("SYNC_WEBHOOK_URL"),
        timeout=numeros["timeout_total"],
        tentativas=numeros["tentativas"],
        espera_inicial=numeros["espera_inicial"],
        log_max_bytes=numeros["log_max_bytes"],
        log_backups=numeros["log_backups"],
        erros=erros,
    )


def informar(ajustes: Ajustes) -> int:
    """--informar: o que o AGENDAR_SINCRONIZACAO.ps1 mostra, decidido aqui (JSON só com ASCII)."""
    documento = {
        "pasta_dados": str(ajustes.pasta_dados),
        "arquivo_log": str(ajustes.arquivo_log),
        "script": str(ajustes.script),
        "codigos": {str(codigo.value): significado(codigo) for codigo in sb.ExitCode},
        "erros": [mascarar(erro) for erro in ajustes.erros],
    }
    _imprimir(json.dumps(documento, ensure_ascii=True, indent=2))
    return sb.ExitCode.OK


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


# Arquivos e pastas que o invólucro cria (log, trava, pasta de dados): só o dono lê (0600/0700), qualquer que
# seja a umask. No Windows, protege a pasta do perfil do usuário (permissões herdadas só para ele e os
# administradores). Feito aqui mesmo, sem depender do sincronizar_bancos.py (que pode ser de outra versão).
ARQUIVO_PRIVADO = 0o600
PASTA_PRIVADA = 0o700


def umask_privada() -> None:
    """O que este processo e o filho criarem sai sem permissão para o grupo e os outros."""
    os.umask(os.umask(0o077) | 0o077)


def deixar_privado(caminho: Path, modo: int = ARQUIVO_PRIVADO) -> None:
    """Um arquivo ou pasta nossa que outros podem ler (de uma versão antiga) volta a ser só do dono."""
    if IS_WINDOWS:
        return
    try:
        if caminho.stat().st_mode & 0o077:
            os.chmod(caminho, modo)
    except OSError:
        pass


def criar_pasta_privada(pasta: Path) -> None:
    """mkdir com 0700 em cada pasta criada (também as do meio); uma pasta que já existia não é mexida."""
    faltando = [p for p in [pasta, *pasta.parents] if not p.is_dir()]
    pasta.mkdir(mode=PASTA_PRIVADA, parents=True, exist_ok=True)
    for criada in faltando if not IS_WINDOWS else ():
        os.chmod(criada, PASTA_PRIVADA)


class _LogPrivado(logging.handlers.RotatingFileHandler):
    """Log com rotação criado 0600 (também o novo arquivo de cada rotação)."""

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, ARQUIVO_PRIVADO)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)


class Registro:
    """Escreve no log com rotação e ecoa na saída padrão, sempre mascarando e com os controles e marcas
    bidirecionais de um texto (ESC, BEL, U+202E, quebra de linha no meio de uma linha) escritos à vista
    (visivel): nem a saída do filho nem um texto de servidor mexem no terminal ou forjam linhas."""

    def __init__(self, mascarar: Callable[[object], str]) -> None:
        self.mascarar = lambda texto: visivel(mascarar(texto))
        self.caminho_log: Path | None = None
        self._trava = threading.Lock()
        self._logger = logging.getLogger(f"sincronizar_automatico.{id(self)}")
        self._logger.setLevel(logging.INFO)
        self._logger.propagate = False
        self._eco = sys.stdout is not None
        self.ultimo_erro: str | None = None

    def abrir_arquivo(self, caminho: Path, max_bytes: int, backups: int) -> None:
        try:
            criar_pasta_privada(caminho.parent)
            handler = _LogPrivado(caminho, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
            deixar_privado(caminho)  # log de uma versão antiga, legível por todos
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


def _ler_saida(fluxo, registro: Registro, tentativa: int, ultimas, encerrada: threading.Event | None = None) -> None:
    try:
        for bruto in iter(fluxo.readline, b""):
            if encerrada is not None and encerrada.is_set():
                continue  # a tentativa já terminou: o que um processo deixado para trás ainda escreve é descartado
            linha = bruto.decode("utf-8", errors="replace").rstrip("\r\n")
            registro.saida_filho(linha, tentativa)
            ultimas.append(registro.mascarar(linha))
    except (OSError, ValueError):
        pass


def _iniciar_filho(comando, pasta: Path) -> subprocess.Popen:
    """Inicia o filho num grupo de processos próprio (para encerrar a árvore inteira depois)."""
    ambiente = dict(os.environ)
    ambiente["PYTHONUNBUFFERED"] = "1"
    ambiente["PYTHONIOENCODING"] = "utf-8"
    extras = {}
    if IS_WINDOWS:
        # só existe no Windows (IS_WINDOWS); o mypy confere como Linux (platform no mypy.ini)
        extras["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(  # type: ignore[attr-defined]
            subprocess, "CREATE_NO_WINDOW", 0
        )
    else:
        extras["start_new_session"] = True
    return subprocess.Popen(
        comando,
        cwd=str(pasta),
        env=ambiente,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **extras,
    )


def _esperar_ate(proc: subprocess.Popen, timeout: float) -> bool:
    """Espera o filho terminar; devolve True se o tempo limite se esgotou antes."""
    limite = time.monotonic() + timeout
    while True:
        restante = limite - time.monotonic()
        if restante <= 0:
            return True
        try:
            proc.wait(timeout=min(0.5, restante))
            return False
        except subprocess.TimeoutExpired:
            continue


def _codigo_do_filho(proc: subprocess.Popen, tempo_esgotado: bool):
    """(código, sinal): tempo esgotado, processo sem código ou morto por sinal viram 4."""
    codigo = proc.returncode
    if tempo_esgotado or codigo is None:
        return sb.ExitCode.SERVER, None
    if codigo < 0:
        return sb.ExitCode.SERVER, -codigo
    return codigo, None


def executar_tentativa(comando, pasta: Path, timeout: float, registro: Registro, tentativa: int):
    """Roda o filho uma vez. Devolve ResultadoTentativa; erros de início sobem como OSError."""
    inicio = datetime.now().astimezone()
    ultimas: collections.deque[str] = collections.deque(maxlen=LINHAS_GUARDADAS)
    encerrada = threading.Event()
    proc = _iniciar_filho(comando, pasta)
    leitor = threading.Thread(
        target=_ler_saida, args=(proc.stdout, registro, tentativa, ultimas, encerrada), daemon=True
    )
    leitor.start()
    try:
        tempo_esgotado = _esperar_ate(proc, timeout)
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
    if leitor.is_alive():
        # Um processo aberto pelo script escapou do encerramento (numa sessão própria; no Windows, órfão: o
        # taskkill /T não o acha sem o pai) e segura a saída. Fechar o pipe esperaria por ele (o close aguarda
        # a leitura em andamento), talvez para sempre: a tentativa termina sem ele.
        encerrada.set()
        registro.aviso("um processo aberto pelo script continua ativo e segura a saída dele; a tentativa termina "
                       "sem esperar por ele (o que ele ainda escrever não vai para o log).")
    else:
        assert proc.stdout is not None  # _iniciar_filho abre o filho com stdout=PIPE
        try:
            proc.stdout.close()
        except (OSError, ValueError):
            pass
    codigo, sinal = _codigo_do_filho(proc, tempo_esgotado)
    return ResultadoTentativa(codigo, tempo_esgotado, sinal, inicio, ultimas)


# ---------------------------------------------------------------------------
# Resumo da última execução (DADOS_DIR/ultima_execucao.json)
# ---------------------------------------------------------------------------


def assinatura_arquivo(caminho: Path):
    """Identidade de uma versão do arquivo (nó, data em ns, tamanho), ou None se não existe."""
    try:
        info = caminho.stat()
    except OSError:
        return None
    return (info.st_ino, info.st_mtime_ns, info.st_size)


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


def ler_ultima_execucao(caminho: Path, assinatura_antes, inicio_tentativa: datetime):
    """O resumo (sb.LastRun, lido por sb.read_last_run: o invólucro não lê as chaves do arquivo), só se foi
    gravado DURANTE esta tentativa; senão None.

    Um arquivo que não mudou é de uma tentativa ou execução anterior e citaria
    servidores que talvez nem tenham falhado desta vez."""
    if assinatura_arquivo(caminho) in (None, assinatura_antes):
        return None
    resumo = sb.read_last_run(caminho)
    if resumo is None:
        return None
    referencia = _data(resumo.ended) or _data(resumo.started)
    if referencia is not None and referencia < inicio_tentativa - timedelta(seconds=2):
        return None  # datas de outra execução (relógio, cópia de arquivo...)
    return resumo


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


def servidores_do_resumo(resumo) -> list:
    """Os servidores do resumo (sb.LastRunServer), na ordem dele, com papel, URL e erro mascarados."""
    if not resumo:
        return []
    return [
        dataclasses.replace(
            item,
            role=mascarar(item.role),
            url=mascarar(_sem_credenciais(item.url)),
            error=None if item.error is None else mascarar(item.error),
        )
        for item in resumo.servers
    ]


def servidor_json(servidor) -> dict:
    """Um servidor no corpo do aviso (webhook)."""
    return {"papel": servidor.role, "url": servidor.url, "ok": servidor.ok, "erro": servidor.error}


# ---------------------------------------------------------------------------
# Passos 3 e 4: log e trava contra execuções sobrepostas
# ---------------------------------------------------------------------------


def abrir_registro(ajustes: Ajustes) -> Registro:
    registro = Registro(mascarar)
    registro.abrir_arquivo(ajustes.arquivo_log, ajustes.log_max_bytes, ajustes.log_backups)
    return registro


def _fmt_opcional(valor, formatar=str) -> str:
    return "?" if valor is None else formatar(valor)


def registrar_inicio(ajustes: Ajustes, registro: Registro, host: str) -> None:
    agora = datetime.now().astimezone().isoformat(timespec="seconds")
    registro.info(
        f"===== INÍCIO da sincronização automática | {agora} | máquina {host} | pid {os.getpid()} "
        f"| script {ajustes.script} | pasta de dados {ajustes.pasta_dados} "
        f"| tentativas {_fmt_opcional(ajustes.tentativas)} "
        f"| tempo limite {_fmt_opcional(ajustes.timeout, _fmt_segundos)} "
        f"| espera inicial {_fmt_opcional(ajustes.espera_inicial, _fmt_segundos)} ====="
    )


def adquirir_trava(pasta_dados: Path, registro: Registro):
    """Trava desta execução automática; None se outra já está rodando; False se esta conta não consegue gravar
    na pasta de dados (o erro já foi registrado)."""
    from filelock import FileLock, Timeout  # dependência do sincronizar_bancos.py, já carregado

    caminho = pasta_dados / NOME_TRAVA
    try:
        criar_pasta_privada(pasta_dados)
        trava = FileLock(str(caminho), timeout=0, mode=ARQUIVO_PRIVADO)
        trava.acquire()
    except Timeout:
        problema = sb.lock_file_problem(str(caminho))
        if problema is not None:  # não é outra execução: esta conta não consegue gravar na pasta de dados
            registro.erro(str(sb.data_dir_error(str(pasta_dados), problema)))
            return False
        registro.erro(
            f"outra execução do sincronizar_automatico.py já está em andamento (trava {caminho}); "
            f"esta termina sem rodar a sincronização."
        )
        return None
    except OSError as erro:
        registro.erro(str(sb.data_dir_error(str(pasta_dados), erro)))
        return False
    return trava


# ---------------------------------------------------------------------------
# Passo 5: tentativas com novas tentativas
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Desfecho:
    """Como a execução terminou (vai para o rodapé do log e para o aviso)."""

    codigo: int
    feitas: int = 0
    resultado: ResultadoTentativa | None = None
    resumo: "LastRun | None" = None
    interrompido: bool = False


def calcular_espera(base: float, tentativa: int) -> float:
    """Espera antes da tentativa `tentativa` + 1: a política do script (sb.SCHEDULED_BACKOFF) começando em `base`
    (SYNC_ESPERA_INICIAL): base × 2^(n-1), ±25%, nunca mais que o teto dela (15 min)."""
    return dataclasses.replace(sb.SCHEDULED_BACKOFF, first=base).delay(tentativa)


def deve_repetir(codigo: int) -> bool:
    """Só servidor inacessível (ou tempo esgotado, que vira 4) pode se resolver sozinho (sb.RETRIED_EXIT_CODES).
    Configuração (2), trava ocupada (3) e os demais não mudam repetindo."""
    return codigo in sb.RETRIED_EXIT_CODES


def _problema_antes_de_rodar(ajustes: Ajustes, python: str) -> str | None:
    if ajustes.erros:
        return "; ".join(f"configuração inválida: {texto}" for texto in ajustes.erros)
    if not python:
        return "não foi possível descobrir o caminho do Python em uso (sys.executable vazio)."
    if not ajustes.script.is_file():
        return (
            f"script não encontrado: {ajustes.script}. Coloque o sincronizar_automatico.py na mesma "
            f"pasta do {NOME_SCRIPT_PADRAO} (ou use --script)."
        )
    return _nao_e_python(ajustes.script)


def _nao_e_python(script: Path) -> str | None:
    """O script indicado não é um programa Python (um .exe, um .ps1, o .env...): senão o Python recusaria com um
    SyntaxError e código 1, que parece "concluída com problemas". Só compila, não executa nada dele."""
    try:
        fonte = script.read_bytes()
        compile(fonte, str(script), "exec", dont_inherit=True)
    except OSError as erro:
        return f"não foi possível ler o script {script}: {erro.strerror or erro}."
    except (SyntaxError, ValueError, UnicodeDecodeError) as erro:
        onde = f" (linha {erro.lineno})" if isinstance(erro, SyntaxError) and erro.lineno else ""
        return (f"o script {script} não é um programa Python{onde}: {type(erro).__name__}. Aponte --script para o "
                f"{NOME_SCRIPT_PADRAO} (ou tire o --script para usar o que está ao lado deste invólucro).")
    return None


def _descrever(resultado: ResultadoTentativa) -> str:
    if resultado.tempo_esgotado:
        return "tempo esgotado"
    if resultado.sinal is not None:
        return f"processo encerrado pelo sinal {resultado.sinal}"
    return significado(resultado.codigo)


def _vigiar_ativo(pasta_dados) -> bool:
    """O vigiar segura a trava e completa ciclos (o batimento dele, lido pelo leitor tipado do script)? Então
    a execução agendada sai com 0 sem resumo novo, e isso não é aviso."""
    batimento = sb.read_watch(str(pasta_dados))
    return batimento is not None and batimento.active and batimento.alive(datetime.now().astimezone())


def uma_tentativa(ajustes: Ajustes, comando, tentativa: int, registro: Registro, desfecho: Desfecho) -> None:
    """Roda o filho uma vez e anota em `desfecho` o código, o resultado e o resumo desta tentativa."""
    arquivo_resumo = ajustes.pasta_dados / NOME_ULTIMA_EXECUCAO
    antes = assinatura_arquivo(arquivo_resumo)
    desfecho.feitas = tentativa
    registro.info(f"tentativa {tentativa} de {ajustes.tentativas}: iniciando {ajustes.script.name}.")
    assert ajustes.timeout is not None  # um valor inválido (None) para antes, em _problema_antes_de_rodar
    resultado = executar_tentativa(comando, ajustes.pasta_script, ajustes.timeout, registro, tentativa)
    desfecho.codigo, desfecho.resultado = resultado.codigo, resultado
    desfecho.resumo = ler_ultima_execucao(arquivo_resumo, antes, resultado.inicio)
    registro.info(f"tentativa {tentativa} terminou com código {resultado.codigo} ({_descrever(resultado)}).")
    if desfecho.resumo and desfecho.resumo.message is not None:
        registro.info(f"resumo: {desfecho.resumo.message}")
    elif resultado.codigo == 0 and _vigiar_ativo(ajustes.pasta_dados):
        registro.info("o vigiar (modo contínuo) está ativo e mantém os backups em dia: esta execução agendada não "
                      "tinha nada a fazer (não há resumo novo).")
    elif not resultado.tempo_esgotado:
        registro.aviso(f"{NOME_ULTIMA_EXECUCAO} ausente ou desatualizado após a tentativa {tentativa}.")


def rodar_tentativas(ajustes: Ajustes, argumentos_filho, registro: Registro, desfecho: Desfecho) -> None:
    python = _python_do_filho()
    problema = _problema_antes_de_rodar(ajustes, python)
    if problema:
        registro.erro(problema)
        return
    # sem erros de configuração (conferidos acima), os números foram lidos: nenhum é None
    assert ajustes.tentativas is not None and ajustes.espera_inicial is not None
    comando = [python, str(ajustes.script), *argumentos_filho]
    for tentativa in range(1, ajustes.tentativas + 1):
        try:
            uma_tentativa(ajustes, comando, tentativa, registro, desfecho)
        except OSError as erro:
            registro.erro(f"não foi possível iniciar o Python ({python}): {erro.strerror or erro}.")
            desfecho.codigo, desfecho.resultado, desfecho.resumo = sb.ExitCode.CONFIG, None, None
            return
        if desfecho.codigo == sb.ExitCode.OK:
            return
        if not deve_repetir(desfecho.codigo):
            registro.info(f"código {desfecho.codigo} não se resolve repetindo; sem nova tentativa.")
            return
        if tentativa < ajustes.tentativas:
            espera = calcular_espera(ajustes.espera_inicial, tentativa)
            registro.info(f"nova tentativa em {espera:.1f} s (servidor inacessível ou tempo esgotado).")
            time.sleep(espera)


@contextlib.contextmanager
def _sigterm_como_excecao():
    """Durante o bloco, SIGTERM levanta Interrompido (para encerrar a árvore de processos)."""
    anterior = None
    if hasattr(signal, "SIGTERM") and threading.current_thread() is threading.main_thread():
        try:
            anterior = signal.signal(signal.SIGTERM, _tratar_sigterm)
        except (OSError, ValueError):
            anterior = None
    try:
        yield
    finally:
        if anterior is not None:
            try:
                signal.signal(signal.SIGTERM, anterior)
            except (OSError, ValueError):
                pass


def executar(ajustes: Ajustes, argumentos_filho, registro: Registro) -> Desfecho:
    """Trava, tentativas e interrupções. Nunca levanta exceção (nem mostra traceback)."""
    desfecho = Desfecho(codigo=sb.ExitCode.CONFIG)
    with _sigterm_como_excecao():
        try:
            trava = adquirir_trava(ajustes.pasta_dados, registro)
            if trava is None or trava is False:  # None: outra execução (3); False: pasta sem permissão (2)
                desfecho.codigo = sb.ExitCode.BUSY if trava is None else sb.ExitCode.CONFIG
                return desfecho
            try:
                rodar_tentativas(ajustes, argumentos_filho, registro, desfecho)
            finally:
                trava.release()
        except KeyboardInterrupt:
            desfecho.codigo, desfecho.interrompido = sb.ExitCode.INTERRUPTED, True
            registro.erro("interrompido pelo usuário (Ctrl+C); processos da sincronização encerrados.")
        except Interrompido as sinal_recebido:
            desfecho.codigo, desfecho.interrompido = sinal_recebido.codigo, True
            registro.erro("encerrado por um sinal do sistema; processos da sincronização encerrados.")
        except Exception as erro:  # nunca mostrar traceback ao usuário
            desfecho.codigo = sb.ExitCode.FAILURES
            registro.erro(f"erro interno inesperado no sincronizar_automatico: {type(erro).__name__}: {erro}")
    return desfecho


# ---------------------------------------------------------------------------
# Passo 6: aviso por webhook e rodapé
# ---------------------------------------------------------------------------


def _motivo(desfecho: Desfecho, timeout, erro) -> str:
    mensagem = desfecho.resumo.message if desfecho.resumo else None
    if mensagem and mensagem.strip():
        return f"Motivo: {mensagem.strip()}"
    if desfecho.resultado is not None and desfecho.resultado.tempo_esgotado:
        return f"Motivo: a sincronização passou do tempo limite de {_fmt_segundos(timeout or 0)} e foi encerrada."
    if desfecho.resultado is None and erro:
        return f"Motivo: {erro}"
    return "Motivo: o resumo da última execução não está disponível (ausente ou desatualizado)."


def _linha_servidor(servidor) -> str:
    return f"{servidor.role or 'servidor'} {servidor.url}"


def montar_texto_aviso(desfecho: Desfecho, host: str, servidores, timeout, erro=None) -> str:
    linhas = [
        f"⚠️ Sincronização dos servidores de licença FALHOU em {host}",
        f"Código {desfecho.codigo}: {significado(desfecho.codigo)}.",
        f"Tentativas: {desfecho.feitas}.",
        _motivo(desfecho, timeout, erro),
    ]
    falhas = [s for s in servidores if not s.ok]
    if falhas:
        linhas.append("Com falha: " + "; ".join(_linha_servidor(s) for s in falhas))
    if servidores:
        linhas.append("Servidores:")
        for servidor in servidores:
            estado = "OK" if servidor.ok else f"ERRO — {servidor.error or 'sem detalhe'}"
            linhas.append(f"• {_linha_servidor(servidor)}: {estado}")
    if not desfecho.resumo and desfecho.resultado is not None and desfecho.resultado.linhas:
        linhas.append("Últimas linhas da saída:")
        linhas.extend(linha[:300] for linha in desfecho.resultado.linhas if linha.strip())
    texto = "\n".join(visivel(mascarar(linha)) for linha in linhas)  # um texto de servidor: uma linha
    if len(texto) > LIMITE_TEXTO_AVISO:
        texto = texto[: LIMITE_TEXTO_AVISO - 20].rstrip() + "\n… (texto cortado)"
    return texto


def _postar_com_prazo(pedido: urllib.request.Request, prazo: float) -> int:
    """O POST do aviso com prazo TOTAL (o timeout do urlopen vale por leitura: um servidor que pinga um byte
    a cada poucos segundos seguraria o invólucro por minutos). Numa thread à parte: passado o prazo, TimeoutError
    e a thread fica para trás (daemon; o invólucro está terminando)."""
    resultado: dict = {}

    def postar() -> None:
        try:
            with urllib.request.urlopen(pedido, timeout=prazo) as resposta:
                resultado["status"] = resposta.status
        except BaseException as erro:  # devolvido a quem chamou
            resultado["erro"] = erro

    linha = threading.Thread(target=postar, name="webhook", daemon=True)
    linha.start()
    linha.join(prazo)
    if linha.is_alive():
        raise TimeoutError
    if "erro" in resultado:
        raise resultado["erro"]
    return resultado["status"]


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
        status = _postar_com_prazo(pedido, TIMEOUT_WEBHOOK)
    except TimeoutError:
        registro.erro(f"o webhook ({partes.hostname}) não respondeu em {_fmt_segundos(TIMEOUT_WEBHOOK)}; "
                      "aviso abandonado.")
        return False
    except urllib.error.HTTPError as erro:
        registro.erro(f"o webhook ({partes.hostname}) recusou o aviso: HTTP {erro.code}.")
        return False
    except Exception as erro:  # rede, DNS, TLS, tempo esgotado...
        motivo = getattr(erro, "reason", None) or erro
        registro.erro(f"falha ao enviar o aviso ao webhook ({partes.hostname}): {motivo}.")
        return False
    registro.info(f"aviso de falha enviado ao webhook ({partes.hostname}, HTTP {status}).")
    return True


def avisar_falha(ajustes: Ajustes, desfecho: Desfecho, registro: Registro, host: str) -> None:
    """Um único aviso, depois da última tentativa; nada em sucesso ou interrupção manual."""
    if desfecho.codigo == sb.ExitCode.OK or desfecho.interrompido or not ajustes.url_webhook:
        return
    try:
        servidores = servidores_do_resumo(desfecho.resumo)
        texto = montar_texto_aviso(desfecho, host, servidores, ajustes.timeout, erro=registro.ultimo_erro)
        carga = {
            "content": texto,
            "text": texto,
            "codigo_saida": desfecho.codigo,
            "servidores": [servidor_json(s) for s in servidores],
            "falhas": [servidor_json(s) for s in servidores if not s.ok],
            "tentativas": desfecho.feitas,
            "host": host,
        }
        enviar_webhook(ajustes.url_webhook, carga, registro)
    except KeyboardInterrupt:
        desfecho.codigo, desfecho.interrompido = sb.ExitCode.INTERRUPTED, True
    except Exception as erro:  # pragma: no cover - defensivo
        registro.erro(f"falha ao preparar o aviso do webhook: {type(erro).__name__}: {erro}")


def registrar_fim(registro: Registro, desfecho: Desfecho, duracao: float) -> None:
    agora = datetime.now().astimezone().isoformat(timespec="seconds")
    registro.info(
        f"===== FIM da sincronização automática | {agora} | duração {duracao:.1f} s "
        f"| tentativas {desfecho.feitas} | código de saída {desfecho.codigo} "
        f"({significado(desfecho.codigo)}) ====="
    )
    if registro.caminho_log is not None and desfecho.codigo != sb.ExitCode.OK:
        _imprimir_erro(f"Detalhes no log: {registro.caminho_log}")
    registro.fechar()


# ---------------------------------------------------------------------------
# Principal
# ---------------------------------------------------------------------------


def _fmt_segundos(segundos: float) -> str:
    if segundos == int(segundos):
        return f"{int(segundos)} s"
    return f"{segundos:.1f} s"


def _preparar_saida_padrao() -> None:
    """Como no sincronizar_bancos.py: no console, a codificação dele (nunca quebrar por acento ou emoji); fora
    dele (pipe, arquivo), UTF-8: no Windows seria a página de código local (cp1252), que troca ✅ e ❌ por '?'."""
    for fluxo in (sys.stdout, sys.stderr):
        if fluxo is not None and hasattr(fluxo, "reconfigure"):
            try:
                if fluxo.isatty():
                    fluxo.reconfigure(errors="replace")
                else:
                    fluxo.reconfigure(encoding="utf-8", errors="replace")
            except (OSError, ValueError):
                pass


def _imprimir(texto: str) -> None:
    """Texto na saída padrão; pipe fechado (`--ajuda | head`), disco cheio ou sem console: descarta em silêncio
    (o descritor passa a apontar para os.devnull, para o Python não falhar de novo ao sair)."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.write(texto + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        try:
            descarte = os.open(os.devnull, os.O_WRONLY)
            os.dup2(descarte, sys.stdout.fileno())
            os.close(descarte)
        except (OSError, ValueError, AttributeError):
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


def avisar_meia_atualizacao(texto: str) -> int:
    """Atualização pela metade: o erro vai para a tela, para o log e para o webhook, com o mínimo do script
    que se pode usar de outra versão (leitor de configurações, pasta de dados, máscara); se até isso falhar,
    o ambiente e a pasta padrão. Código 2 (configuração: repetir não resolve)."""
    pasta_dados, url_webhook = PASTA_DESTE_ARQUIVO / "dados", os.environ.get("SYNC_WEBHOOK_URL")
    mascarar_texto: Callable[[object], str] = str
    try:
        get = sb.settings_reader(argparse.Namespace(env=None, dados_dir=None), base_dir=str(PASTA_DESTE_ARQUIVO),
                                 errors=[])
        for nome in sb.SECRET_SETTINGS:
            if get(nome):
                mascara_do_script().add(get(nome))
        pasta_dados = Path(sb.resolve_data_dir(get, None, base_dir=str(PASTA_DESTE_ARQUIVO)))
        url_webhook = get("SYNC_WEBHOOK_URL")
        mascarar_texto = mascarar
    except Exception:  # o script de outra versão não tem mais esses nomes: ficam o ambiente e a pasta padrão
        pass
    registro = Registro(mascarar_texto)
    registro.abrir_arquivo(pasta_dados / "logs" / NOME_LOG, 0, 0)
    registro.erro(texto)
    if url_webhook:
        aviso = mascarar_texto(f"⚠️ Sincronização dos servidores de licença FALHOU em {socket.gethostname()}\n"
                               f"Código {CODIGO_SEM_SCRIPT}: configuração.\n{texto}")
        enviar_webhook(url_webhook, {"content": aviso, "text": aviso, "codigo_saida": CODIGO_SEM_SCRIPT,
                                     "servidores": [], "falhas": [], "tentativas": 0,
                                     "host": socket.gethostname()}, registro)
    registro.fechar()
    return CODIGO_SEM_SCRIPT


def main(argv=None) -> int:
    _preparar_saida_padrao()
    umask_privada()
    if sb is None:
        _imprimir_erro(ERRO_AO_CARREGAR)
        return CODIGO_SEM_SCRIPT
    if ERRO_DE_VERSAO:
        return avisar_meia_atualizacao(ERRO_DE_VERSAO)
    try:
        opcoes, argumentos_filho = ler_opcoes(sys.argv[1:] if argv is None else argv)
    except ErroUso as erro:
        _imprimir_erro(f"Erro: {erro}\nUse --ajuda para ver as opções.")
        return sb.ExitCode.CONFIG
    if opcoes.ajuda:
        _imprimir(criar_analisador().format_help())
        return sb.ExitCode.OK
    try:
        ajustes = ler_ajustes(opcoes, argumentos_filho)
    except Exception as erro:  # ex.: sincronizar_bancos.py de outra versão ao lado
        _imprimir_erro(mascarar(
            f"❌ Erro ao ler as configurações ({type(erro).__name__}: {erro}). Confira se o "
            f"{NOME_SCRIPT_PADRAO} ao lado é da mesma versão deste sincronizar_automatico.py."
        ))
        return sb.ExitCode.CONFIG
    if opcoes.informar:
        return informar(ajustes)

    registro = abrir_registro(ajustes)
    host = socket.gethostname()
    inicio = time.monotonic()
    registrar_inicio(ajustes, registro, host)
    desfecho = executar(ajustes, argumentos_filho, registro)
    avisar_falha(ajustes, desfecho, registro, host)
    registrar_fim(registro, desfecho, time.monotonic() - inicio)
    return desfecho.codigo


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl+C fora do laço principal
        _imprimir_erro("Interrompido pelo usuário.")
        sys.exit(130 if sb is None else sb.ExitCode.INTERRUPTED)
