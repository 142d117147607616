#!/usr/bin/env python3
# -*- coding: utf-8 -*-
# /// script
# requires-python = ">=3.10"
# dependencies = [
#     "requests>=2.31,<3",
#     "urllib3>=2.0,<3",
#     "python-dotenv>=1.0,<2",
#     "filelock>=3.13,<5",
#     "tzdata>=2024.1",
# ]
# ///
"""Sincroniza os servidores de backup da API de licenças com o servidor principal.

Fluxo (cada etapa é uma seção deste arquivo, na ordem em que os dados passam):

    contrato (códigos de saída, Role, Side, ActionKind, Mode, PairStatus, ConflictPolicy) e utilitários
    segredos (máscara no texto livre) → configuração (.env / ambiente / opções)
        → cliente HTTP (uma requests.Session por servidor; prazo inteiro por requisição)
        → retrato (busca e valida registro a registro) [+ rota de falha: GET /servers]
        → planejador (puro: retratos + estado salvo + datas → ações; a regra única de "perdeu dados")
        → executor (aplica pela API; escrita só vale com o JSON da API)
        → estado e histórico (arquivos atômicos em DADOS_DIR)
        → relatório (PairOutcome/RunOutcome tipados → texto, --json, histórico, ultima_execucao.json)
        → execução (Run: conecta, lê, planeja, aplica e RELÊ os servidores para conferir)
        → painel e demonstração → linha de comando (main, por último)

Mapa para quem revisa (onde cada decisão mora):
    Liberada ou negada: allows() — a mesma ordem do servidor (bloqueada, vencida, pendente), julgada na
        data LOCAL de cada servidor: Clock (Run.clock_for: o relógio de cada servidor, do cabeçalho Date —
        ServerClock —, e a margem de fusos UTC−12 a UTC+14; SYNC_FUSO_HORARIO / PRINCIPAL_FUSO_HORARIO /
        BACKUP_FUSO_HORARIO só dão a data esperada). O status que o destino precisa ter sai de target_status();
        a regra de negar (o destino termina NEGADO se a origem nega ou é incerta) é must_deny(), a única, usada
        por target_status(), deny_on_target() (toda trava de segurança), collation_groups() e
        Planner.ours_left_allowed() (o que uma cadeia nossa deixou liberado).
    Configuração: cada variável ou opção é uma linha da tabela SETTINGS (tipo, padrão, mínimo, ajuda, opção);
        Setting.parse valida, setting_value() transforma o erro em ConfigError (código 2); build_config()
        junta opção > ambiente > .env > padrão num Config; a opção de linha de comando sai de _setting_option().
    Escrita que falha no meio de uma cadeia (criar → bloquear): Executor._run_chain segue até o bloqueio;
        se ele falha, Executor.compensate() executa o desfazer que o PLANO decidiu (chain_undo, Action.undo,
        anotado no diário antes da escrita); sem desfazer possível, Result.left_allowed: relatado (código 1)
        e a primeira escrita da execução seguinte.
    Papéis e lados: Role é o servidor real (principal/backup); Side é o lado do plano (PRIMARY = origem).
        Em restaurar a origem é um backup: Direction.role_of(side) é a única tradução de lado para servidor;
        "o outro" é .other. O estado salvo é gravado por papel real e virado para os lados do plano (e de
        volta) por swap_state(), só em Run.plan_on (o plano) e Run.save_pair_files (o estado novo).
    Lado que perdeu dados (vazio, menos da metade, cópia antiga): data_loss() + forced_past() dentro de
        plan_pair() → Plan.halted: nada é gravado no par e ele sai com o código 5.
    Código de saída: por par em pair_verdict(); da execução em RunOutcome.code = failover_check_code() sobre
        sync_code (o pior dos pares por run_exit_code(), a única regra que junta códigos; no verificar, a rota
        de falha também conta); main() → _run_command() devolve RunOutcome.code. Uma exceção vira desfecho
        em error_exit_code() (a única tradução exceção → código), julgado por run_exit_code(): login
        (stopped_run, um RunOutcome), travas do par (SafetyStop) e os except de main() (stopped_code). A
        tabela (significado, significado no verificar, precedência) é o enum ExitCode.
    Segredos: Secrets.mask() (mask(), do RunContext da execução) em todo texto livre — ApiError na criação,
        _error_text, Reporter.say/warn, auditoria do histórico; documentos JSON nunca são mascarados
        depois de prontos (dump_json): cada texto dentro deles já nasceu mascarado.
    Configurações do invólucro: sincronizar_automatico.py chama settings_reader() e resolve_data_dir()
        deste arquivo (opção > ambiente > .env; vazio = não definido): os dois leem igual.
    Registro ilegível: _parse_listing() o deixa de fora sozinho (Snapshot.problems / .rejected, com a
        melhor leitura); o planejador nunca o copia, mas bloqueia no backup o que o principal nega ou cujo
        veredito não dá para saber (keep_denied, keep_backup_denied, rejected_verdict). Só a listagem
        inteira fora do formato (ApiError em fetch_snapshot) pula o par (código 4).
    Saídas: texto (TextReport), --json (run_json/pair_json), histórico, painel e ultima_execucao.json são
        renderizações do PairOutcome/RunOutcome; quem grava o registro (histórico e ultima_execucao.json) de
        toda execução, concluída, parada ou com falha, é record_run() (RunRecord). Nenhuma decisão relê o JSON:
        cada arquivo nosso volta tipado por uma leitura só (read_last_run → LastRun, History._decoded →
        HistoryRow, com a rota de falha gravada → StoredFailover, audit_trail → AuditEntry, journal_entry →
        JournalEntry, read_watch → WatchBeat).
    Painel vermelho: _pair_state() julga cada par (PanelPair, de pair_health; o batimento do vigiar pode
        sobrepor em watch_pairs()); status_document() dá 503 quando algum par não está em dia ou a execução
        parou antes dos pares. A cor do cartão: _render_pair_card() (FAILING = vermelho, classe "falhando";
        LATE = laranja, "atrasado"). O cartão da rota de falha: render_failover_card() (StoredFailover.serious).
    Plano congelado: Plan sai de plan_pair (e de replan_after_reread/merge_final) com tuplas e o esperado só
        de leitura; quem muda o plano faz outro (dataclasses.replace), nunca edita.

Regra de ouro: acreditar nos servidores, não no plano. Depois de uma execução, o programa de
um cliente que cair no backup recebe a MESMA resposta (liberado / negado) que receberia do
principal — e a paridade relatada é a que os servidores têm (relida depois das escritas).
Nenhum caminho deixa um backup mais permissivo que o principal, e o modo bidirecional nunca
apaga, reativa ou reverte no principal o que veio de um backup que voltou atrás. O que a API
não permite copiar (datas, "pending", features, custom_interval, senhas, e-mail e papel de
usuários) é listado como "divergência não sincronizável", nunca escondido.

Uso rápido:
    python sincronizar_bancos.py demo        # demonstração com dois servidores locais
    python sincronizar_bancos.py             # sincroniza conforme o .env
    python sincronizar_bancos.py --simular   # mostra o plano sem gravar nada
    python sincronizar_bancos.py --json      # relatório em JSON no stdout
    python sincronizar_bancos.py verificar | historico | painel | restaurar
    python sincronizar_bancos.py --bidirecional   # três vias, conflitos, exclusões com travas

Códigos de saída: a tabela ExitCode logo abaixo (0 tudo certo; 1 problemas a resolver;
2 configuração; 3 outra execução em andamento; 4 servidor inacessível; 5 travas de segurança).
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
import base64
import calendar
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import email.utils
import enum
import errno
import functools
import gc
import hashlib
import html
import http.client
import http.server
import importlib.util
import io
import ipaddress
import itertools
import json
import math
import os
import random
import re
import secrets
import signal
import socket
import sqlite3
import ssl
import sys
import tempfile
import threading
import time
import types
import unicodedata
import urllib.parse
import zlib
import zoneinfo
from typing import Any, Callable, Iterable, Iterator, NamedTuple, NoReturn, Sequence, TypedDict

def python_command() -> str:
    """Como chamar o Python nos comandos que as mensagens sugerem, o que funciona onde o usuário está: o Python
    do próprio ambiente virtual quando roda de um (.venv/bin/python, relativo à pasta do script se o ambiente
    estiver nela), `py` no Windows, `python3` no Linux e no Mac (no Debian 12 não existe `python`)."""
    executable = sys.executable or ""
    if executable and sys.prefix != getattr(sys, "base_prefix", sys.prefix):
        folder = os.path.dirname(os.path.abspath(__file__))
        inside = os.path.abspath(executable).startswith(folder + os.sep)
        shown = os.path.relpath(executable, folder) if inside else executable
        return f'"{shown}"' if " " in shown else shown
    return "py" if os.name == "nt" else "python3"


def pip_install_command() -> str:
    """O comando que instala as dependências onde o usuário está: o pip do ambiente virtual em uso; no Linux e no
    Mac sem um, um ambiente .venv novo (o pip do sistema é recusado no Debian 12, PEP 668); no Windows, py -m pip."""
    if sys.prefix != getattr(sys, "base_prefix", sys.prefix) or os.name == "nt":
        return f"{python_command()} -m pip install -r requirements.txt"
    return "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"


try:
    import requests
    from requests.adapters import HTTPAdapter
    import urllib3
    from urllib3.util.retry import Retry
    from dotenv import dotenv_values
    from filelock import FileLock, Timeout as LockTimeout
except ImportError as _erro:  # pragma: no cover - depende da instalação do usuário
    sys.stderr.write(
        f"❌ Dependência ausente: {_erro.name}. Instale com (na pasta do sincronizar_bancos.py):\n"
        f"   {pip_install_command()}\n"
        + ("" if sys.prefix != getattr(sys, "base_prefix", sys.prefix) or os.name == "nt" else
           "   e rode com .venv/bin/python sincronizar_bancos.py (no Debian/Ubuntu, se faltar o venv: "
           "sudo apt install python3-venv)\n")
    )
    raise SystemExit(2) from None

VERSAO = "1.0.0"
# Interface com o sincronizar_automatico.py: os nomes de __all__ que ele usa e o que eles fazem. Suba este número
# quando mudar algum deles; o invólucro confere antes de tudo e, numa atualização pela metade (só um dos dois
# arquivos trocado), diz no log e no webhook qual arquivo atualizar (código 2).
WRAPPER_INTERFACE = 2  # 2: a máscara do contexto da execução (run_context) e as esperas de SCHEDULED_BACKOFF
SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
PY = python_command()  # o início dos comandos sugeridos nas mensagens ("python3 sincronizar_bancos.py ...")

# O que o sincronizar_automatico.py e os testes podem usar (tests/contrato/test_tipos.py confere que eles não
# usam nada fora daqui). O resto é interno e pode mudar sem aviso.
__all__ = [
    # contrato: códigos de saída, papéis, lados, modos, situações
    "VERSAO", "WRAPPER_INTERFACE", "ExitCode", "run_exit_code", "FAILOVER_CHECK_MEANING",
    "error_exit_code", "stopped_code", "SafetyStop",  # exceção → desfecho (o código sai de run_exit_code)
    "LICENSE_PERIOD_MONTHS", "LICENSE_STATUSES", "SETTABLE_FIELDS", "DEFAULT_CREATED_BY",
    "Role", "Side", "ActionKind", "Mode", "PairStatus", "HealthVerdict", "PanelState", "ConflictPolicy",
    "LicenseStatus",
    "CREATE_USER", "CREATE", "UPDATE", "RENEW", "BLOCK", "ACTIVATE", "DELETE", "SET_CREATED_BY",
    # segredos e configuração (o invólucro lê as configurações com estas mesmas funções)
    "Secrets", "ConfigError", "ServerConfig", "Config", "settings_reader", "build_config", "SETTINGS",
    "RunContext", "run_context", "using_run_context",  # o estado de uma execução (um por chamada de main())
    "SECRETS",  # só repassa à máscara da execução atual: para o invólucro de antes da interface 2
    "SETTING", "Setting", "SettingKind", "SECRET_SETTINGS", "setting_value", "parse_number", "translate_argparse",
    "resolve_data_dir", "normalize_url", "build_parser", "Command", "COMMANDS", "OptionError", "LockBusy",
    "visible_text", "terminal_text",  # texto à vista (o invólucro usa visible_text no log e na saída)
    # cliente HTTP, retrato e rota de falha
    "ApiClient", "License", "User", "Snapshot", "Problem", "ProblemKind", "RecordKind", "parse_licenses",
    "fetch_snapshot",
    "same_server_groups", "fetch_failover_list", "check_failover", "failover_check_code", "failover_text",
    "failover_json", "ListState", "FindingKind",
    "foreign_backup", "FOREIGN_MIN_RECORDS",  # servidor de outro vendedor dado como backup
    # planejador (puro)
    "Action", "Divergence", "PlanOptions", "Plan", "StateEntry", "PairState", "LossKind", "DeletionLimit",
    "Clock", "Conflict", "plan_pair", "allows", "effective_end", "period_end", "model_upsert", "model_apply",
    "fingerprint", "version_of", "default_max_deletions", "collector_paused", "deny_on_target",
    "primary_went_back", "replan_after_reread", "swap_state", "merge_final",
    # executor, estado e histórico
    "read_last_run", "LastRun", "LastRunServer", "last_run_json", "JournalEntry", "journal_json",  # nossos arquivos
    "Result", "Executor", "CredentialStore", "History", "load_state", "save_state", "state_path", "next_state",
    "journal_path", "STATE_DIR", "DAMAGED_MARK", "HISTORY_FILE", "LAST_RUN_FILE", "LOCK_FILE", "CREDENTIALS_FILE",
    # resultado tipado e suas renderizações
    "Direction", "PairOutcome", "RunOutcome", "pair_verdict", "count_changes", "loss_text", "limits_text", "run_json",
    "pair_json", "pair_health", "zone_label", "dump_json",
    # execução e linha de comando
    "Run", "run_sync", "main", "closed_pipe",
    # novas tentativas: o que é repetido, quantas vezes e com que espera (o invólucro usa as duas últimas)
    "Backoff", "HTTP_RETRY_STATUSES", "RETRY_AFTER_MAX", "HTTP_BACKOFF", "UNREADABLE_BACKOFF", "WRITE_RETRIES",
    "WRITE_BACKOFF", "WAKE_POLL", "WATCH_PRIMARY_BACKOFF", "WATCH_PAIR_BACKOFF", "RETRIED_EXIT_CODES",
    "SCHEDULED_BACKOFF",
    # pasta de dados (o invólucro diz o mesmo quando a conta do agendador não consegue gravar nela)
    "lock_file_problem", "data_dir_error",
    # comandos sugeridos nas mensagens: o Python e o pip que funcionam onde o usuário está
    "python_command", "pip_install_command",
    # formato do estado de par (uma versão mais nova recusa a execução: check_state_versions)
    "STATE_VERSION",
    # modo contínuo (vigiar): o ciclo, o batimento e o /status.json que o lê
    "Watcher", "Reporter", "WATCH_FILE", "WATCH_STALE_INTERVALS", "read_watch", "WatchBeat", "status_document",
    "render_panel", "PANEL_IDLE_TIMEOUT",
]


class ExitCode(enum.IntEnum):
    """Códigos de saída: a única tabela do projeto. Cada código traz o significado, o significado no
    `verificar` e a precedência (com vários pares, vale o de maior precedência: 2, 4, 5, 1). O
    sincronizar_automatico.py, o --help, o ultima_execucao.json, o --json e, por meio do
    `sincronizar_automatico.py --informar`, o AGENDAR_SINCRONIZACAO.ps1 leem esta mesma tabela.
    Quem junta os códigos de uma execução é run_exit_code() (seção do relatório)."""

    meaning: str
    check_meaning: str
    precedence: int | None

    def __new__(cls, value: int, meaning: str, check_meaning: str | None = None,
                precedence: int | None = None) -> "ExitCode":
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        member.check_meaning = check_meaning or meaning
        member.precedence = precedence  # None: encerra a execução inteira, não é resultado de um par
        return member

    def __str__(self) -> str:  # "2", não "ExitCode.CONFIG" (em qualquer versão do Python)
        return str(self.value)

    OK = (0, "concluída, todos os backups com o mesmo veredito do principal",
          "todos os backups em dia e com o mesmo veredito do principal", 0)
    FAILURES = (1, "concluída com problemas: escritas que falharam, conflitos ou veredito diferente a resolver",
                "há diferenças a sincronizar ou veredito diferente em algum backup", 1)
    CONFIG = (2, "problema de configuração ou credenciais", None, 4)
    BUSY = (3, "outra sincronização já está em andamento")
    SERVER = (4, "servidor inacessível ou com dados inutilizáveis", None, 3)
    SAFETY = (5, "travas de segurança: servidor vazio, que perdeu dados ou voltou a uma cópia antiga, ou "
                 "exclusões acima do limite", None, 2)
    INTERRUPTED = (130, "interrompida pelo usuário (Ctrl+C)")
    TERMINATED = (143, "encerrada pelo sistema (SIGTERM)")  # 128 + 15, por exemplo o systemd parando o serviço

    @classmethod
    def by_precedence(cls) -> tuple["ExitCode", ...]:
        """Os códigos que um par pode dar, do mais grave ao menos grave (o OK por último)."""
        ranked = [(c.precedence, c) for c in cls if c.precedence is not None]
        return tuple(c for _, c in sorted(ranked, key=lambda pc: -pc[0]))

    @classmethod
    def meaning_of(cls, code: int) -> str:
        """Significado de um código qualquer (inclusive um que não é desta tabela)."""
        try:
            # O mypy lê cls(code) como uma chamada ao __new__ acima (python/mypy#10573); aqui é a busca
            # do membro pelo valor, que o Enum faz com um argumento só.
            return cls(code).meaning  # type: ignore[call-arg]
        except ValueError:
            return "código inesperado"


def run_exit_code(codes: Iterable[int], problems: bool = False) -> ExitCode:
    """O código de uma execução: a ÚNICA regra que junta desfechos (os códigos dos pares, dos erros de
    conexão). Vale o mais grave pela precedência de ExitCode (2, 4, 5, 1); um código que encerra a execução
    inteira (3, 130, 143) vale sozinho. Sem nada grave, `problems` (avisos sobre os arquivos locais, a rota
    de falha no verificar) faz do 0 um 1."""
    found = [ExitCode(code) for code in codes]  # type: ignore[call-arg]  # busca pelo valor: python/mypy#10573
    whole = [code for code in found if code.precedence is None]
    if whole:
        return whole[0]
    code = next((c for c in ExitCode.by_precedence() if c in found), ExitCode.OK)  # o mais grave presente
    return ExitCode.FAILURES if code == ExitCode.OK and problems else code


LICENSE_PERIOD_MONTHS = {
    "mensal": 1,
    "trimestral": 3,
    "semestral": 6,
    "anual": 12,
    "trianual": 36,
    "vitalicia": None,
}
USER_ROLES = ("admin", "user")
SETTABLE_FIELDS = ("owner_name", "cpf", "email", "address", "license_type", "created_by")
TEXT_FIELDS = SETTABLE_FIELDS + ("status", "features")
MAX_TEXT_LEN = 4_000_000  # caracteres por campo; o servidor aceita qualquer tamanho
DEFAULT_CREATED_BY = "admin"

SEP = "=" * 60


class TextEnum(str, enum.Enum):
    """Enum cujo valor é o texto gravado em JSON e arquivos (json.dumps e f-strings mostram o valor)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Role(TextEnum):
    """O papel REAL de um servidor na configuração: o principal (SERVIDOR_PRINCIPAL) ou um backup
    (SERVIDOR_BACKUP). É o que aparece para o usuário, nos arquivos e no histórico."""
    PRIMARY = "principal"
    BACKUP = "backup"

    @property
    def other(self) -> Role:
        return Role.BACKUP if self is Role.PRIMARY else Role.PRIMARY

    @property
    def title(self) -> str:  # type: ignore[override]  # de propósito: o nome para exibir, não o str.title()
        return "Principal" if self is Role.PRIMARY else "Backup"


class Side(TextEnum):
    """Um lado do PLANO de um par: PRIMARY é o retrato que plan_pair recebe como `primary` (a ORIGEM do
    unidirecional) e BACKUP o outro (o DESTINO). Em restaurar a origem é um servidor de backup: qual
    servidor de verdade cada lado é só se sabe por Direction.role_of(side), a única tradução. Os valores
    são os do estado salvo e do diário (lado do plano), por isso iguais aos de Role."""
    PRIMARY = "principal"
    BACKUP = "backup"

    @property
    def other(self) -> "Side":
        return Side.BACKUP if self is Side.PRIMARY else Side.PRIMARY


class LicenseStatus(TextEnum):
    """Status de uma licença, lido UMA vez (parse, em parse_license) exatamente como o servidor o compara: só o
    texto exato é um destes ('blocked ' com espaço não é bloqueada). Um status desconhecido fica como o texto que
    veio (License.status: LicenseStatus | str): é o que aparece no relatório, e o veredito o libera (allows)."""
    ACTIVE = "active"
    BLOCKED = "blocked"
    PENDING = "pending"

    @classmethod
    def parse(cls, raw: Any) -> "LicenseStatus | Any":
        """O membro do texto exato; qualquer outro valor (None, desconhecido, com espaços) fica como veio."""
        try:
            return cls(raw)
        except ValueError:
            return raw


class ActionKind(TextEnum):
    CREATE_USER = "criar_usuario"
    CREATE = "criar_licenca"
    UPDATE = "atualizar_licenca"
    RENEW = "renovar_licenca"
    BLOCK = "bloquear"
    ACTIVATE = "ativar"
    DELETE = "excluir_licenca"
    SET_CREATED_BY = "corrigir_created_by"


CREATE_USER, CREATE, UPDATE, RENEW, BLOCK, ACTIVATE, DELETE, SET_CREATED_BY = ActionKind
LICENSE_STATUSES = tuple(status.value for status in LicenseStatus)
ACTIVE, BLOCKED, PENDING = LicenseStatus
UPSERTS = (CREATE, UPDATE, RENEW)


class Mode(TextEnum):
    ONE_WAY = "unidirecional"
    TWO_WAY = "bidirecional"
    RESTORE = "restauracao"
    CHECK = "verificacao"  # subcomando verificar: só compara (aparece no --json; não muda o estado dos pares)


class PairStatus(TextEnum):
    """Situação de um par numa execução (coluna "situacao" do histórico, "situacao" do --json)."""
    OK = "ok"
    FAILURES = "falhas"
    CONFLICTS = "conflitos"
    HELD = "exclusoes retidas"
    ERROR = "erro"
    RUNNING = "em andamento"  # linha aberta no histórico: a execução ainda não fechou o par
    INTERRUPTED = "interrompida"  # linha que ficou aberta: a execução morreu antes de fechar o par


class HealthVerdict(TextEnum):
    """Resposta de GET /health enquanto o servidor acorda (health_verdict)."""
    OK = "ok"
    WAIT = "esperar"  # host acordando (5xx, 408, 429, página de espera): tentar de novo
    OTHER = "outro"  # quem respondeu não é a API de licenças: erro de configuração, na hora


class PanelState(TextEnum):
    """Estado de um par no painel e no /status.json (só HEALTHY conta como saudável)."""
    HEALTHY = "saudável"
    LATE = "atrasado"
    FAILING = "falhando"
    NEVER = "sem execuções"
    FIRST_RUNNING = "primeira execução em andamento"


class ConflictPolicy(TextEnum):
    """Bidirecional: o que fazer com um registro que mudou dos dois lados."""
    REPORT = "relatar"  # nada é copiado; o backup só é bloqueado onde o principal nega
    PRIMARY = "principal"
    BACKUP = "backup"


def _parse_enum(kind: type[enum.Enum], value: Any) -> Any:
    """Texto lido de um arquivo nosso (histórico, diário) → o membro do enum; desconhecido fica como veio."""
    try:
        return kind(value)
    except ValueError:
        return value


# ============================================================================
# Utilitários comuns: tempo, JSON, arquivos atômicos
# ============================================================================

def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")



def _jsonable(value: Any) -> Any:
    if isinstance(value, LicenseStatus):
        return value.value  # o texto puro: o repr() do relatório sai igual ao do texto lido do servidor
    return value.isoformat() if isinstance(value, dt.date) else value


def _replace_with_retry(tmp: str, path: str, attempts: int = 6) -> None:
    """No Windows, um antivírus ou indexador pode segurar o arquivo por instantes (WinError 5/32)."""
    for attempt in range(attempts):
        try:
            return os.replace(tmp, path)
        except PermissionError:
            if attempt + 1 == attempts:
                raise
            time.sleep(0.05 * (attempt + 1))



def atomic_write(path: str, text: str, private: bool = False) -> None:
    """Grava num arquivo temporário na mesma pasta e troca de uma vez (os.replace):
    quem ler, ou uma execução morta no meio, vê o arquivo antigo inteiro ou o novo inteiro."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        if private:
            os.chmod(tmp, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        _replace_with_retry(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise



# Arquivos com dados de clientes (histórico, estado, log, credenciais): só o dono lê, qualquer que seja a
# umask (0600 para arquivos, 0700 para pastas). No Windows não há esses bits: protege a pasta do perfil
# do usuário (C:\Users\NOME), cujas permissões (ACL) herdadas só dão acesso ao dono e aos administradores.
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_umask() -> None:
    """Tudo o que este processo (e os filhos dele) criar sai sem permissão para o grupo e os outros: cobre
    também o que a ferramenta não cria com as próprias mãos (os -wal/-shm/-journal do SQLite)."""
    os.umask(os.umask(0o077) | 0o077)


def keep_private(path: str, mode: int = PRIVATE_FILE) -> None:
    """Arquivo ou pasta nossa que outros podem ler (criada por uma versão antiga, ou sob umask 022)
    volta a ser só do dono. Sem o arquivo, ou no Windows (sem esses bits), não faz nada."""
    if os.name != "posix":
        return
    try:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, mode)
    except OSError:
        pass


def create_private_dir(path: str) -> None:
    """os.makedirs com 0700 em cada pasta criada (o mode do makedirs passa pela umask e não vale para as
    pastas do meio); uma pasta que já existia não é mexida (pode ser uma pasta do usuário)."""
    missing = []
    folder = os.path.abspath(path)
    while not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        missing.append(folder)
        folder = os.path.dirname(folder)
    os.makedirs(path, mode=PRIVATE_DIR, exist_ok=True)
    for created in missing if os.name == "posix" else ():
        os.chmod(created, PRIVATE_DIR)


class LockBusy(Exception):
    """Outra execução segura a trava (código de saída 3)."""



# ============================================================================
# Segredos: tudo o que sai do programa passa por aqui
# ============================================================================

class Secrets:
    """Guarda senhas e tokens conhecidos e os mascara em TEXTO LIVRE (mensagens, textos de exceção,
    URLs, corpos de erro dos servidores), nunca em valores estruturados (JSON, datas, números).

    Cada valor conhecido é guardado em todas as formas em que pode aparecer numa saída (forms): cru,
    escapado em JSON (com e sem \\uXXXX para o que não é ASCII, e escapado duas vezes, quando um JSON vem
    dentro de outro), codificado em URL e como repr do Python. Regra para um valor: com 8 caracteres ou
    mais, é mascarado onde aparecer; de 4 a 7, só quando é uma palavra inteira, entre início/fim do
    texto, espaço, aspas, parênteses, colchetes, chaves, vírgula, ponto e vírgula, '=' ou ':' (assim a
    senha "2026" some de "senha 2026" mas a data "2026-11-30" fica intacta). Valem sempre, para um valor
    de QUALQUER tamanho, as regras por lugar: Bearer, usuário:senha@ em URLs e o valor inteiro das chaves
    password/senha/token (em JSON, mesmo com \\" dentro ou escapado outra vez, e em formulários/URLs).

    Tempo linear no tamanho do texto (um id de 200.000 caracteres não pode custar minutos): str.replace,
    expressões cujo recomeço não revarre o texto e uma varredura só para usuário:senha@ sem esquema."""

    LONG_VALUE = 8
    _EDGE = r"\s\"'()\[\]{},;=:"
    _FIELD = r"(?:password|senha|token)"
    _PATTERNS = (  # (só se o texto tiver uma destas palavras, expressão, substituição)
        (("bearer",), re.compile(r"(Bearer\s+)[^\s\"',}]+", re.I), r"\1***"),
        # "password": "valor" inteiro, também com \" dentro, em aspas simples (repr), escapado de novo dentro
        # de outro JSON (\"password\": \"valor\") ou cortado antes da aspa do fim (o resto da linha some)
        (("password", "senha", "token"),
         re.compile(r"((\\*)[\"']" + _FIELD + r"\2[\"']\s*:\s*\2([\"']))(?:.*?(?<!\\)\2\3|.*)", re.I),
         r"\1***\2\3"),
        # formulário ou URL: password=valor (no início, depois de ?, &, espaço, ; ou ,)
        (("password=", "senha=", "token="), re.compile(r"((?:^|(?<=[?&\s;,]))" + _FIELD + r"=)[^&\s]+", re.I | re.M),
         r"\1***"),
    )
    _SCHEME_CHAR = re.compile(r"[a-z0-9+.\-]", re.I)  # com re.I, como a expressão (inclui o K do Kelvin)
    _SCHEME_LETTER = re.compile(r"[a-z]", re.I)
    _SCHEME_MAX = 32
    _AFTER_SCHEME = re.compile(r"[^/\s@]+@")
    _RUN = re.compile(r"[^\s/@'\"]+")  # usuário:senha@ sem esquema: um trecho desses seguido de @
    _USERINFO_START = re.compile(r"(?<![\w.:/-])[^:]")

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    @staticmethod
    def forms(value: str) -> set[str]:
        """As formas de um segredo numa saída: cru, JSON (ASCII ou não, e escapado duas vezes), URL e repr."""
        escaped = {json.dumps(value, ensure_ascii=ascii_only)[1:-1] for ascii_only in (True, False)}
        twice = {json.dumps(form, ensure_ascii=False)[1:-1] for form in escaped}
        url = {urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value, safe="")}
        url |= {re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), form) for form in url}  # %c3%b6 também
        return {value, repr(value)[1:-1], ascii(value)[1:-1]} | escaped | twice | url

    def add(self, value: str | None) -> None:
        if value and len(value) >= 4:
            with self._lock:
                self._values.update(form for form in self.forms(value) if len(form) >= 4)

    def mask(self, text: Any) -> str:
        """Mascara segredos num texto livre (nunca use sobre um documento JSON já serializado)."""
        text = str(text)
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            if value not in text:
                continue
            if len(value) >= self.LONG_VALUE:
                text = text.replace(value, "***")
            else:
                whole = rf"(?:(?<=[{self._EDGE}])|^){re.escape(value)}(?=[{self._EDGE}]|$)"
                text = re.sub(whole, "***", text, flags=re.M)
        lower = text.lower()
        for words, pattern, repl in self._PATTERNS:
            if any(word in lower for word in words):
                text = pattern.sub(repl, text)
        if "@" not in text:
            return text
        return self._mask_userinfo(self._mask_scheme_userinfo(text) if "://" in text else text)

    @classmethod
    def _mask_scheme_userinfo(cls, text: str) -> str:
        """esquema://usuário:senha@ vira esquema://***@: o mesmo resultado de
        re.sub(r"([a-z][a-z0-9+.\\-]*://)[^/\\s@]+@", r"\\1***@", text, flags=re.I) em tempo linear (a
        expressão tentava começar em cada letra e ia até o fim da sequência). Para cada "://", o esquema é
        a letra mais à esquerda de até 32 caracteres de esquema antes dele (o texto antes fica igual de
        qualquer jeito); a parte usuário:senha vai até o @, sem /, espaço ou outro @."""
        parts, last, at = [], 0, text.find("://")
        while at != -1:
            start = at
            while start > max(last, at - cls._SCHEME_MAX) and cls._SCHEME_CHAR.match(text, start - 1):
                start -= 1
            while start < at and not cls._SCHEME_LETTER.match(text, start):
                start += 1
            userinfo = cls._AFTER_SCHEME.match(text, at + 3) if start < at else None
            if userinfo is not None:
                parts += [text[last:at + 3], "***@"]
                last = userinfo.end()
            at = text.find("://", max(at + 3, last))
        return "".join(parts) + text[last:] if parts else text

    @classmethod
    def _mask_userinfo(cls, text: str) -> str:
        """usuário:senha@ sem esquema (URL digitada sem o https://) vira ***@: o mesmo resultado de
        re.sub(r"(?<![\\w.:/-])[^\\s/@:'\\"]+:[^\\s/@'\\"]+@", "***@", text), mas em tempo linear (a
        expressão revarria o trecho inteiro a cada caractere de um texto longo sem @)."""
        parts, last = [], 0
        for run in cls._RUN.finditer(text):
            start, end = run.span()
            if text[end:end + 1] != "@":
                continue
            colon = text.rfind(":", start, end - 1)  # a senha (depois de um ':') não pode ser vazia
            first = cls._USERINFO_START.search(text, start, colon) if colon > start else None
            if first is not None:
                parts += [text[last:first.start()], "***@"]
                last = end + 1
        return "".join(parts) + text[last:] if parts else text


@dataclasses.dataclass
class RunContext:
    """O estado de UMA execução de main(): a máscara de segredos (as senhas e os tokens desta execução), os
    sinais de parada (Ctrl+C/SIGTERM), se a saída é --json (fail() usa quando não lhe dizem) e o que
    connect_servers entrega aos clientes (handoff: despertar + login já feitos, ou a falha).

    Nada disso mora no módulo: main() cria um contexto novo a cada chamada e o torna o atual só enquanto ela
    dura (using_run_context), devolvendo o anterior ao sair. Duas chamadas seguidas no mesmo processo não veem
    nada uma da outra, e uma chamada dentro de outra volta ao contexto de fora. As threads da execução (executor,
    leituras em paralelo, painel) veem o mesmo contexto: a referência é do módulo, não da thread (um
    contextvars não passaria sozinho para as threads de um ThreadPoolExecutor). Fora de main() (o invólucro,
    funções chamadas soltas), vale o contexto do processo, criado no primeiro uso."""

    secrets: Secrets = dataclasses.field(default_factory=Secrets)
    stop: StopSignals = dataclasses.field(default_factory=lambda: StopSignals())  # StopSignals vem depois
    json_output: bool = False
    handoff: dict[tuple[str, str], Any] = dataclasses.field(default_factory=dict)


_current_run: RunContext | None = None  # o contexto atual (None: nenhum ainda, nem o do processo)
_current_run_lock = threading.Lock()


def run_context() -> RunContext:
    """O contexto da execução em andamento; fora de main(), o do processo (criado no primeiro uso)."""
    global _current_run
    context = _current_run
    if context is None:
        with _current_run_lock:
            if _current_run is None:
                _current_run = RunContext()
            context = _current_run
    return context


@contextlib.contextmanager
def using_run_context(context: RunContext) -> Iterator[RunContext]:
    """`context` é o atual enquanto o bloco dura; ao sair, volta o anterior (mesmo numa exceção)."""
    global _current_run
    with _current_run_lock:
        previous, _current_run = _current_run, context
    try:
        yield context
    finally:
        with _current_run_lock:
            if _current_run is context:  # outra execução que começou depois (outra thread) segue atual
                _current_run = previous


class _CurrentSecrets:
    """SECRETS: só repassa add/mask à máscara do contexto atual (não guarda nada). Existe para um invólucro de
    antes da interface 2 (atualização pela metade): o aviso dele ainda chama sb.SECRETS.add antes de dizer
    qual arquivo atualizar. O código novo usa mask()/add_secret()."""

    def add(self, value: str | None) -> None:
        add_secret(value)

    def mask(self, text: Any) -> str:
        return mask(text)


SECRETS = _CurrentSecrets()


def mask(text: Any) -> str:
    """Texto livre (mensagens de erro, textos vindos do servidor) sem os segredos desta execução (Secrets.mask
    do contexto atual)."""
    return run_context().secrets.mask(text)


def add_secret(value: str | None) -> None:
    """Uma senha ou um token a mais para a máscara desta execução (Secrets.add do contexto atual)."""
    run_context().secrets.add(value)


# Caracteres que mexem no terminal em vez de aparecer: controles C0 (ESC, BEL, quebra de linha...), DEL,
# controles C1, marcas e isolamentos bidirecionais (U+202E vira o texto de trás para frente) e
# separadores de linha/parágrafo. Um revendedor cria licenças com qualquer texto: nada disso sai cru.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_INVISIBLE_NAMES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# no JSON, só os que o json.dumps deixa crus (ele já escapa os C0)
_INVISIBLE_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _invisible_name(char: str) -> str:
    code = ord(char)
    return _INVISIBLE_NAMES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"U+{code:04X}")


_VISIBLE_TABLE = {code: _invisible_name(chr(code)) for code in range(0x2070)
                  if _INVISIBLE.match(chr(code))}  # para str.translate (um passo por caractere)


def visible_text(text: Any) -> str:
    """O texto como deve aparecer num terminal ou log: cada controle ou marca bidirecional escrito à vista
    (\\x1b, \\n, U+202E). Uma quebra de linha dentro de um valor do servidor não forja outra linha."""
    text = str(text)
    return text.translate(_VISIBLE_TABLE) if _INVISIBLE.search(text) else text


def terminal_text(text: Any) -> str:
    """Uma linha de saída em texto: sem segredos e sem caracteres que mexem no terminal."""
    return visible_text(mask(text))


def dump_json(doc: Any, indent: int | None = 2) -> str:
    """Serializa um documento SEM máscara global: os textos livres dentro dele já foram mascarados
    onde nasceram (ApiError, _error_text, _api_error); datas, números e true/false ficam intactos.
    Controles C1 e marcas bidirecionais saem como \\uXXXX (o json já faz isso com os C0): o valor lido
    de volta é o exato, e quem olhar o JSON num terminal não tem o terminal mexido."""
    text = json.dumps(doc, ensure_ascii=False, indent=indent, default=_jsonable)
    if not _INVISIBLE_IN_JSON.search(text):
        return text
    return _INVISIBLE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


# ============================================================================
# Configuração
# ============================================================================

class ConfigError(Exception):
    """Configuração ausente ou inválida (código de saída 2)."""


class SettingKind(TextEnum):
    TEXT = "texto"
    DECIMAL = "número"  # aceita vírgula ou ponto: 1,5 = 1.5
    INTEGER = "número inteiro"
    FLAG = "sim/não"


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)")


def number_text(value: float) -> str:
    """Um número como um brasileiro escreve: 30, 0,1, 1,5."""
    return str(int(value)) if float(value).is_integer() else str(value).replace(".", ",")


def parse_number(raw: Any, integer: bool = False, minimum: float | None = None) -> float | int:
    """A ÚNICA leitura de números das configurações e opções (os dois scripts). Aceita só algarismos,
    sinal e, se não for inteiro, UMA vírgula ou ponto decimal ("1,5" = "1.5"); recusa "1e3", "inf",
    "nan", "1_000" e "1.000.000". Erro: ValueError com o motivo em português, sem o nome (quem chama
    põe o nome da variável ou da opção na frente)."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):  # já convertido (ex.: pelo argparse)
        ok, number = math.isfinite(raw) and (not integer or float(raw).is_integer()), raw
    else:
        text = str(raw).strip()
        ok = bool((_INTEGER_TEXT if integer else _DECIMAL_TEXT).fullmatch(text))
        number = (int(text) if integer else float(text.replace(",", "."))) if ok else 0
    if not ok:
        kind = SettingKind.INTEGER if integer else SettingKind.DECIMAL
        raise ValueError(f"deve ser um {kind} (recebido: {str(raw)!r})")
    number = int(number) if integer else float(number)
    if minimum is not None and number < minimum:
        raise ValueError(f"deve ser no mínimo {number_text(minimum)} (recebido: {str(raw)!r})")
    return number


def number_type(integer: bool = False, minimum: float | None = None) -> Callable[[str], float | int]:
    """type= do argparse para uma opção numérica: o mesmo parse_number, com o erro em português."""
    def convert(text: str) -> float | int:
        try:
            return parse_number(text, integer, minimum)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


@dataclasses.dataclass(frozen=True)
class Setting:
    """Uma configuração (.env / variável de ambiente / opção): a ÚNICA fonte do tipo, do padrão, da ajuda
    e da linha do .env.example (um teste confere o arquivo com esta tabela)."""
    name: str
    kind: SettingKind
    help: str
    default: Any = None
    minimum: float | None = None
    option: str | None = None  # opção equivalente na linha de comando (do script que a lê)
    example: str = ""  # valor de exemplo no .env.example quando não há padrão
    required: bool = False  # linha ativa (sem "#") no .env.example
    secret: bool = False  # mascarado em toda saída, log, histórico e aviso
    wrapper: bool = False  # lida pelo sincronizar_automatico.py (as outras, pelo sincronizar_bancos.py)

    def parse(self, raw: Any) -> Any:
        """Valor tipado; ausente (None ou vazio): o padrão. Inválido: ValueError com o motivo."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return self.default
        if self.kind == SettingKind.FLAG:
            return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "sim", "yes", "s",
                                                                                  "y", "on")
        if self.kind in (SettingKind.DECIMAL, SettingKind.INTEGER):
            return parse_number(raw, self.kind == SettingKind.INTEGER, self.minimum)
        return raw

    @property
    def default_text(self) -> str:
        if isinstance(self.default, bool):
            return "1" if self.default else "0"
        if isinstance(self.default, (int, float)):
            return number_text(self.default)
        return "" if self.default is None else str(self.default)

    @property
    def env_line(self) -> str:
        """A linha desta variável no .env.example (comentada quando é opcional)."""
        value = self.example if self.required or self.default is None else self.default_text
        return f"{'' if self.required else '# '}{self.name}={value}"

    def option_help(self) -> str:
        """Texto da opção no --help: a ajuda, a variável equivalente e o padrão."""
        default = f", padrão {self.default_text}" if self.default_text and self.kind != SettingKind.FLAG else ""
        return f"{self.help} ({self.name}{default})".replace("%", "%%")

    def cli_type(self) -> Callable[[str], float | int]:
        """type= do argparse para a opção numérica desta configuração."""
        return number_type(self.kind == SettingKind.INTEGER, self.minimum)


_TEXT, _DECIMAL, _INTEGER, _FLAG = SettingKind
SETTINGS = (
    # Servidores
    Setting("SERVIDOR_PRINCIPAL", _TEXT, "URL do servidor principal", option="--principal",
            example="https://principal.exemplo.com.br", required=True),
    Setting("SERVIDOR_BACKUP", _TEXT, "URL de um backup (repita para vários)", option="--backup",
            example="https://backup1.exemplo.com.br,https://backup2.exemplo.com.br", required=True),
    Setting("SERVIDORES_APELIDOS", _TEXT, "outro endereço do mesmo servidor (URL=URL, separados por vírgula)",
            example="https://licencas.exemplo.com.br=https://principal.exemplo.com.br"),
    # Conta de administrador
    Setting("ADMIN_USER", _TEXT, "usuário administrador", option="--usuario", example="admin", required=True),
    Setting("ADMIN_PASSWORD", _TEXT, "senha do administrador", example="troque-esta-senha", required=True,
            secret=True),
    Setting("PRINCIPAL_ADMIN_USER", _TEXT, "usuário administrador só do principal"),
    Setting("PRINCIPAL_ADMIN_PASSWORD", _TEXT, "senha do administrador só do principal", secret=True),
    Setting("BACKUP_ADMIN_USER", _TEXT, "usuário administrador só dos backups"),
    Setting("BACKUP_ADMIN_PASSWORD", _TEXT, "senha do administrador só dos backups", secret=True),
    # Fuso horário dos servidores
    Setting("SYNC_FUSO_HORARIO", _TEXT, "fuso horário dos servidores", default="UTC"),
    Setting("PRINCIPAL_FUSO_HORARIO", _TEXT, "fuso horário só do principal", example="America/Sao_Paulo"),
    Setting("BACKUP_FUSO_HORARIO", _TEXT, "fuso horário só dos backups", example="UTC"),
    # Pasta de dados e rede
    Setting("DADOS_DIR", _TEXT, "pasta de estado, histórico e logs", default="dados", option="--dados-dir"),
    Setting("SYNC_TIMEOUT", _DECIMAL, "tempo máximo sem receber nada do servidor, em segundos", 30.0, 0.1,
            "--timeout"),
    Setting("SYNC_ESPERA_DESPERTAR", _DECIMAL, "quanto esperar um servidor adormecido acordar, em segundos",
            90.0, 0, "--espera-despertar"),
    Setting("SYNC_TENTATIVAS_HTTP", _INTEGER, "novas tentativas por requisição", 5, 0, "--tentativas-http"),
    Setting("SYNC_PARALELO", _INTEGER, "escritas simultâneas por servidor", 8, 1, "--paralelo"),
    Setting("SYNC_CA_BUNDLE", _TEXT, "arquivo de certificado (CA) próprio", example="C:\\protecao\\minha-ca.pem"),
    Setting("SYNC_PERMITIR_HTTP", _FLAG, "aceita http:// sem criptografia para servidores que não são locais",
            False, option="--permitir-http"),
    Setting("SYNC_HISTORICO_DIAS", _INTEGER, "por quantos dias guardar o histórico (0 = para sempre)", 90, 0),
    # Painel web
    Setting("PAINEL_TOKEN", _TEXT, "token do painel", secret=True),
    Setting("PAINEL_MAX_ATRASO", _DECIMAL, "minutos sem sucesso até /status.json responder 503", 120.0, 1),
    # Modo contínuo (python sincronizar_bancos.py vigiar)
    Setting("SYNC_VIGIAR_INTERVALO", _DECIMAL, "vigiar: segundos entre as leituras do principal", 60.0, 5,
            "--intervalo"),
    Setting("SYNC_VIGIAR_LEITURA_BACKUP_MIN", _DECIMAL,
            "vigiar: minutos no máximo sem ler cada backup inteiro (mesmo sem mudança no principal)", 60.0, 1),
    Setting("SYNC_VIGIAR_MB_DIA", _DECIMAL, "vigiar: orçamento diário de transferência do principal, em MB",
            1000.0, 1),
    # Execução agendada (sincronizar_automatico.py)
    Setting("SYNC_WEBHOOK_URL", _TEXT, "webhook do Discord ou do Slack para avisar uma falha final",
            example="https://discord.com/api/webhooks/0000000000/xxxxxxxxxxxxxxxx", secret=True, wrapper=True),
    Setting("SYNC_TIMEOUT_TOTAL", _DECIMAL, "tempo máximo de cada tentativa, em segundos", 900.0, 0.1,
            "--timeout-total", wrapper=True),
    Setting("SYNC_TENTATIVAS", _INTEGER, "número máximo de tentativas", 3, 1, "--tentativas", wrapper=True),
    Setting("SYNC_ESPERA_INICIAL", _DECIMAL, "espera antes da 2ª tentativa, em segundos; dobra a cada nova",
            30.0, 0, "--espera-inicial", wrapper=True),
    Setting("SYNC_LOG_MAX_BYTES", _INTEGER, "tamanho máximo do log antes de girar, em bytes (0 = nunca girar)",
            1024 * 1024, 0, "--log-max-bytes", wrapper=True),
    Setting("SYNC_LOG_BACKUPS", _INTEGER, "quantos logs antigos manter", 5, 1, "--log-backups", wrapper=True),
)
SETTING = {s.name: s for s in SETTINGS}
SECRET_SETTINGS = tuple(s.name for s in SETTINGS if s.secret)  # a única lista de variáveis secretas


@dataclasses.dataclass
class ServerConfig:
    role: Role
    url: str
    username: str
    password: str = dataclasses.field(repr=False)
    time_zone: str = "UTC"  # fuso do processo do servidor (o veredito usa a data local dele)

    def __post_init__(self) -> None:
        self.role = Role(self.role)  # aceita o texto ("principal"/"backup") de quem monta à mão

    @property
    def label(self) -> str:
        return f"{self.role.title} ({self.url})"


@dataclasses.dataclass
class Config:
    primary: ServerConfig
    backups: list[ServerConfig]
    data_dir: str
    timeout: float = SETTING["SYNC_TIMEOUT"].default
    connect_timeout: float = 10.0
    wake_wait: float = SETTING["SYNC_ESPERA_DESPERTAR"].default
    http_retries: int = SETTING["SYNC_TENTATIVAS_HTTP"].default
    backoff: float = 0.5
    parallel: int = SETTING["SYNC_PARALELO"].default
    ca_bundle: str | None = None
    simulate: bool = False
    json_output: bool = False
    json_full: bool = False  # --json-completo: listas inteiras no --json (sem o corte em JSON_LIST_LIMIT)
    today: dt.date | None = None
    now: dt.datetime | None = None  # --agora: instante de referência (testes); decide a data local de cada servidor
    progress: bool = True
    allow_http: bool = False
    check: bool = False  # subcomando verificar: só compara, nunca grava
    history_days: int = SETTING["SYNC_HISTORICO_DIAS"].default
    mode: Mode = Mode.ONE_WAY
    conflict: ConflictPolicy = ConflictPolicy.REPORT
    mirror: bool = False
    block_backup_only: bool = False  # --bloquear-so-no-backup: licença só no backup de origem desconhecida → bloqueada
    max_deletions: int | None = None
    force: bool = False
    restore_from: str | None = None  # restaurar --de URL (padrão: o primeiro backup)
    accept_unknown: tuple[str, ...] = ()  # --aceitar-backup-desconhecido URL: backups que o vendedor garante serem seus
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)  # rota de falha: {apelido: servidor}

    def paced(self, policy: Backoff) -> Backoff:
        """A política de novas tentativas no passo desta execução (`backoff`; os testes a encurtam)."""
        return policy.scaled(self.backoff / SHORT_WAIT_UNIT)


def normalize_url(url: str) -> str:
    """Forma canônica de uma URL de servidor, para comparar e exibir."""
    raw = (url or "").strip()
    try:
        parts = urllib.parse.urlsplit(raw)
        hostname = parts.hostname
    except ValueError:
        hostname = None
    scheme = parts.scheme.lower() if hostname else ""
    if scheme not in ("http", "https") or not hostname:
        shown = raw.rsplit("@", 1)[-1]  # o que vem antes de um @ pode ser usuário:senha: nunca é mostrado
        raise ConfigError(
            f"URL inválida: {mask(shown)!r}. Use o formato https://servidor.exemplo.com"
        )
    if parts.username or parts.password:
        raise ConfigError("Não coloque usuário ou senha dentro da URL; use ADMIN_USER e ADMIN_PASSWORD.")
    if parts.query or parts.fragment:
        raise ConfigError(f"A URL {parts.hostname} não deve ter '?' nem '#'.")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"Porta inválida na URL do servidor {parts.hostname}.") from None
    host = hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if scheme == "https" else 80
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}"


def is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_env_file(path: str, required: bool) -> dict[str, str]:
    """Lê um arquivo .env; ausente é aceito só quando não foi pedido explicitamente."""
    if not os.path.exists(path):
        if required:
            raise ConfigError(f"Arquivo de configuração não encontrado: {path}")
        return {}
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        raw.decode("utf-8-sig")
        # Valores literais: "$" ou "${...}" numa senha não são trocados por variáveis.
        values = dotenv_values(path, encoding="utf-8-sig", interpolate=False)
    except UnicodeDecodeError:
        raise ConfigError(f"o arquivo {path} não está em UTF-8 ({env_encoding_guess(raw)}): salve o .env como "
                          "UTF-8 (no Bloco de Notas: Arquivo → Salvar como → Codificação: UTF-8).") from None
    except OSError as exc:
        raise ConfigError(f"Não foi possível ler o arquivo de configuração {path}: {exc.__class__.__name__}") from None
    return {k: v for k, v in values.items() if v is not None}


def env_encoding_guess(raw: bytes) -> str:
    """De onde costuma vir um .env que não é UTF-8 (só para a mensagem)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(raw) > 1 and b"\x00" in raw[:200]):
        return "está em UTF-16, como fica quando é criado com 'echo ... > .env' no PowerShell"
    return "parece ANSI/Windows-1252, o padrão de editores antigos no Windows"


def _setting(name: str, cli_value: Any, env: dict[str, str], file_values: dict[str, str]) -> Any:
    """Opção > ambiente > .env. Vazio (ou só espaços) conta como não definido, em qualquer nível."""
    if cli_value not in (None, ""):
        return cli_value
    if env.get(name, "").strip():
        return env[name].strip()
    if file_values.get(name, "").strip():
        return file_values[name].strip()
    return None


def settings_reader(args: argparse.Namespace, env: dict[str, str] | None = None,
                    base_dir: str | None = None, errors: list[str] | None = None) -> Callable[..., Any]:
    """Devolve get(NOME, valor_da_opção) com o texto cru: opção da linha de comando > ambiente > arquivo .env.

    O .env padrão fica em base_dir (a pasta do script). O sincronizar_automatico.py chama esta
    mesma função, com a pasta do script que ele executa: os dois leem as configurações igual.
    Com `errors`, um .env ilegível não para: o erro vai para a lista e valem só as variáveis de ambiente."""
    env = dict(os.environ if env is None else env)
    env_path = getattr(args, "env", None) or os.path.join(base_dir or SCRIPT_DIR, ".env")
    try:
        file_values = read_env_file(env_path, required=bool(getattr(args, "env", None)))
    except ConfigError as exc:
        if errors is None:
            raise
        errors.append(str(exc))
        file_values = {}

    def get(name: str, cli: Any = None) -> Any:
        return _setting(name, cli, env, file_values)
    get.env_path, get.env_found = os.path.abspath(env_path), os.path.exists(env_path)  # type: ignore[attr-defined]
    return get


def setting_value(get: Callable[..., Any], name: str, cli: Any = None) -> Any:
    """O valor tipado de uma configuração da tabela SETTINGS: opção > ambiente > .env > padrão da tabela.
    Inválido: ConfigError (código 2) com o nome de onde o valor veio (a opção ou a variável)."""
    setting = SETTING[name]
    try:
        return setting.parse(get(name, cli))
    except ValueError as exc:
        where = setting.option if cli not in (None, "") and setting.option else name
        raise ConfigError(f"{where} {exc}.") from None


def register_secrets(get: Callable[..., Any], add: Callable[[Any], None] | None = None) -> None:
    """Registra na máscara (add_secret, ou `add`) o valor de cada variável secreta da tabela."""
    for name in SECRET_SETTINGS:
        (add or add_secret)(get(name))


def env_file_hint(get: Callable[..., Any]) -> str:
    """" Nenhum .env foi encontrado em CAMINHO." quando o .env procurado não existe (senão, vazio)."""
    if getattr(get, "env_found", True):
        return ""
    return (f" Nenhum arquivo .env foi encontrado em {get.env_path} (copie o .env.example para lá e edite, "  # type: ignore[attr-defined]
            "ou indique outro com --env ARQUIVO).")


def resolve_data_dir(get: Callable[..., Any], cli_value: str | None, base_dir: str | None = None) -> str:
    """Pasta de dados (--dados-dir > DADOS_DIR do ambiente > do .env > "dados"), sempre absoluta.

    Regra única, a mesma no sincronizar_automatico.py: "~" no começo é a pasta do usuário;
    caminho relativo é relativo à pasta do script (base_dir), nunca à pasta de onde se
    executou; variável vazia conta como não definida; "$VAR" e "%VAR%" não são expandidos."""
    base_dir = base_dir or SCRIPT_DIR
    data_dir = os.path.expanduser(get("DADOS_DIR", cli_value) or SETTING["DADOS_DIR"].default)
    if not os.path.isabs(data_dir):
        data_dir = os.path.join(base_dir, data_dir)
    return os.path.abspath(data_dir)


def _url_shown(text: str) -> str:
    """Um valor de URL para mensagens: sem o que vem antes de um @ (pode ser usuário:senha) e mascarado."""
    return mask(re.sub(r"//[^/@\s;,]*@", "//", text))


def backup_urls(raw: Any, where: str = "SERVIDOR_BACKUP") -> list[str]:
    """As URLs de SERVIDOR_BACKUP (separadas por vírgula). Separadas por espaço ou ';' (erro comum ao
    copiar uma lista): ConfigError na hora, com a variável, o valor e o separador certo, antes de qualquer
    acesso à rede (senão um pedaço vira "porta inválida" ou um servidor que não responde, código 4)."""
    text = str(raw or "").strip()
    parts = [part.strip() for part in text.split(",") if part.strip()]
    for part in parts:
        separator = next((name for sep, name in ((";", "ponto e vírgula (;)"), (" ", "espaço"),
                                                  ("\t", "tabulação")) if sep in part), None)
        if separator is None and re.search(r"\s", part):
            separator = "espaço"
        if separator is None and len(re.findall(r"https?://", part, re.IGNORECASE)) > 1:
            separator = "nada entre elas"
        if separator:
            fixed = ",".join(p for p in re.split(r"[\s;,]+", text) if p)
            raise ConfigError(
                f"{where} separa os backups com {separator}: {_url_shown(text)!r}. Separe as URLs com vírgula (,), "
                f"sem espaços: {where}={_url_shown(fixed)}")
    return parts


def build_config(args: argparse.Namespace, env: dict[str, str] | None = None) -> Config:
    """Monta a configuração: opções da linha de comando > ambiente > arquivo .env."""
    get = settings_reader(args, env)
    register_secrets(get)  # antes de qualquer mensagem sobre URLs
    primary_url = get("SERVIDOR_PRINCIPAL", args.principal)
    backup_raw = get("SERVIDOR_BACKUP", ",".join(args.backup) if args.backup else None)
    if not primary_url:
        raise ConfigError("SERVIDOR_PRINCIPAL não foi configurado (veja o arquivo .env.example)." + env_file_hint(get))
    if re.search(r"[\s;,]", str(primary_url).strip()):
        where = "--principal" if args.principal else "SERVIDOR_PRINCIPAL"
        raise ConfigError(f"{where} deve ter uma URL só (recebido: {_url_shown(str(primary_url).strip())!r}). "
                          "Os backups vão em SERVIDOR_BACKUP, separados por vírgula (,).")
    if not backup_raw:
        raise ConfigError("SERVIDOR_BACKUP não foi configurado (uma URL ou várias separadas por vírgula)."
                          + env_file_hint(get))

    admin_user = get("ADMIN_USER", args.usuario)
    admin_password = get("ADMIN_PASSWORD")
    primary = _server_config(Role.PRIMARY, primary_url, get("PRINCIPAL_ADMIN_USER") or admin_user,
                             get("PRINCIPAL_ADMIN_PASSWORD") or admin_password)
    backup_user = get("BACKUP_ADMIN_USER") or admin_user
    backup_password = get("BACKUP_ADMIN_PASSWORD") or admin_password
    backups = [
        _server_config(Role.BACKUP, url, backup_user, backup_password)
        for url in backup_urls(backup_raw, "--backup" if args.backup else "SERVIDOR_BACKUP")
    ]
    if not backups:
        raise ConfigError("SERVIDOR_BACKUP está vazio.")
    _check_placeholders(primary, backups)
    _check_distinct(primary, backups)
    zone = time_zone_setting("SYNC_FUSO_HORARIO", setting_value(get, "SYNC_FUSO_HORARIO"))
    primary.time_zone = time_zone_setting("PRINCIPAL_FUSO_HORARIO", get("PRINCIPAL_FUSO_HORARIO") or zone)
    for backup in backups:
        backup.time_zone = time_zone_setting("BACKUP_FUSO_HORARIO", get("BACKUP_FUSO_HORARIO") or zone)

    allow_http = setting_value(get, "SYNC_PERMITIR_HTTP", args.permitir_http or None)
    for server in [primary] + backups:
        if server.url.startswith("http://") and not is_loopback(server.url) and not allow_http:
            raise ConfigError(
                f"{server.label} usa http:// (sem criptografia): a senha e o token iriam abertos pela rede. "
                "Use https:// ou, se tiver certeza, a opção --permitir-http."
            )

    data_dir = resolve_data_dir(get, args.dados_dir)
    today = None
    if args.hoje:
        try:
            today = dt.date.fromisoformat(args.hoje)
        except ValueError:
            raise ConfigError(f"--hoje deve estar no formato AAAA-MM-DD (recebido: {args.hoje!r}).") from None
    now = None
    if args.agora:
        try:
            now = dt.datetime.fromisoformat(args.agora)
        except ValueError:
            raise ConfigError(f"--agora deve estar no formato AAAA-MM-DDTHH:MM (recebido: {args.agora!r}).") from None
        now = now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
    ca_bundle = get("SYNC_CA_BUNDLE")
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise ConfigError(f"SYNC_CA_BUNDLE aponta para um arquivo que não existe: {ca_bundle}")
    if ca_bundle and any(s.url.startswith("https://") for s in [primary] + backups):
        tls_context(ca_bundle, base_ca_bundle())  # arquivo que não é uma CA legível: ConfigError aqui, antes da rede

    return Config(
        primary=primary,
        backups=backups,
        data_dir=data_dir,
        timeout=setting_value(get, "SYNC_TIMEOUT", args.timeout),
        wake_wait=setting_value(get, "SYNC_ESPERA_DESPERTAR", args.espera_despertar),
        http_retries=setting_value(get, "SYNC_TENTATIVAS_HTTP", args.tentativas_http),
        parallel=setting_value(get, "SYNC_PARALELO", args.paralelo),
        ca_bundle=ca_bundle,
        history_days=setting_value(get, "SYNC_HISTORICO_DIAS"),
        mode=Mode.TWO_WAY if args.bidirecional else Mode.ONE_WAY,
        conflict=ConflictPolicy(args.conflito),
        mirror=bool(args.espelhar),
        block_backup_only=bool(getattr(args, "bloquear_so_no_backup", False)),
        max_deletions=args.max_exclusoes,
        force=bool(args.forcar),
        restore_from=normalize_url(args.de) if args.de else None,
        accept_unknown=accepted_unknown_backups(getattr(args, "aceitar_backup_desconhecido", None), backups),
        simulate=bool(args.simular),
        json_output=bool(args.json),
        json_full=bool(getattr(args, "json_completo", False)),
        today=today,
        now=now,
        progress=not args.json and not args.sem_progresso,
        allow_http=allow_http,
        aliases=parse_aliases(get("SERVIDORES_APELIDOS"), [primary.url] + [b.url for b in backups]),  # rota de falha
    )


def accepted_unknown_backups(urls: list[str] | None, backups: list[ServerConfig]) -> tuple[str, ...]:
    """--aceitar-backup-desconhecido URL (repetível): cada URL tem de ser um dos backups configurados."""
    accepted = tuple(dict.fromkeys(normalize_url(url) for url in urls or ()))
    configured = {b.url for b in backups}
    for url in accepted:
        if url not in configured:
            raise ConfigError(f"--aceitar-backup-desconhecido {url} não é um dos backups configurados em "
                              "SERVIDOR_BACKUP.")
    return accepted


def time_zone_setting(name: str, value: str) -> str:
    """Valida um fuso horário IANA (ex.: America/Sao_Paulo, UTC)."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name} deve ser um fuso horário como America/Sao_Paulo ou UTC (recebido: {value!r}). "
                          f"No Windows, instale as dependências ({pip_install_command()}, inclui tzdata).") \
            from None
    return value


def _server_config(role: Role, url: str, username: str | None, password: str | None) -> ServerConfig:
    normalized = normalize_url(url)
    who = "principal" if role == Role.PRIMARY else "de backup"
    if not username:
        raise ConfigError(f"Usuário administrador do servidor {who} não configurado (ADMIN_USER).")
    if not password:
        raise ConfigError(f"Senha do servidor {who} não configurada (ADMIN_PASSWORD).")
    add_secret(password)
    return ServerConfig(role=role, url=normalized, username=username, password=password)


PLACEHOLDER_DOMAINS = ("exemplo.com.br", "exemplo.com", "example.com", "example.org", "example.net", "example")
PLACEHOLDER_PASSWORDS = ("troque-esta-senha", "troque-por-uma-senha-forte")


def is_placeholder_host(url: str) -> bool:
    """Host dos exemplos do .env.example (ou um domínio reservado para exemplos, RFC 2606)."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return any(host == domain or host.endswith("." + domain) for domain in PLACEHOLDER_DOMAINS)


def _check_placeholders(primary: ServerConfig, backups: list[ServerConfig]) -> None:
    """.env copiado do .env.example e não editado: para antes de qualquer acesso à rede."""
    found = [f"{env_name(s)}={s.url}" for s in [primary] + backups if is_placeholder_host(s.url)]
    if any(s.password in PLACEHOLDER_PASSWORDS for s in [primary] + backups):
        found.append("a senha de exemplo em ADMIN_PASSWORD")
    if found:
        raise ConfigError(
            "edite o .env: ele ainda tem os valores de exemplo do .env.example ("
            + ", ".join(dict.fromkeys(found)) + "). Coloque as URLs dos seus servidores e a senha de administrador."
        )


def _check_distinct(primary: ServerConfig, backups: list[ServerConfig]) -> None:
    seen = {primary.url}
    for backup in backups:
        if backup.url == primary.url:
            raise ConfigError(f"O servidor principal {primary.url} também está listado como backup.")
        if backup.url in seen:
            raise ConfigError(f"O backup {backup.url} está listado mais de uma vez.")
        seen.add(backup.url)


# ============================================================================
# Novas tentativas: o que é repetido, quantas vezes e com que espera (a única definição; a mesma tabela, para
# o usuário, está em docs/API_DOS_SERVIDORES.md, "Novas tentativas")
# ============================================================================

@dataclasses.dataclass(frozen=True)
class Backoff:
    """A espera antes da nova tentativa `n` (n = 1: a primeira nova tentativa). As `immediate` primeiras saem
    na hora; depois, first × factor^k (k = 0, 1, 2...), no máximo `cap`. Com `jitter` j, cada espera é sorteada
    entre (1 − j) e (1 + j) vezes esse valor, sem nunca passar de `cap` (quem espera junto não volta junto)."""

    first: float
    factor: float = 2.0
    cap: float = math.inf
    jitter: float = 0.0
    immediate: int = 0

    def delay(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """Segundos antes da nova tentativa `attempt` (1, 2, ...); `draw` sorteia em [0, 1)."""
        if attempt <= self.immediate:
            return 0.0
        try:  # dias de falhas seguidas (o vigiar): o expoente passa do que um float guarda, e a espera é o teto
            wait = min(self.first * self.factor ** (attempt - self.immediate - 1), self.cap)
        except OverflowError:
            wait = self.cap
        if self.jitter:
            wait = min(wait * (1 + self.jitter * (2 * draw() - 1)), self.cap)
        return wait

    def scaled(self, times: float) -> Backoff:
        """A mesma política com a primeira espera `times` vezes maior (Config.backoff; os tetos não mudam)."""
        return dataclasses.replace(self, first=self.first * times)

    def starting_at(self, first: float) -> Backoff:
        """A mesma política começando em `first`; o teto nunca fica abaixo da primeira espera."""
        return dataclasses.replace(self, first=first, cap=max(self.cap, first))

    def capped_at(self, cap: float) -> Backoff:
        """A mesma política com um teto mais baixo (se `cap` for menor que o dela)."""
        return dataclasses.replace(self, cap=min(self.cap, cap))


# HTTP, por requisição (o urllib3 repete; NoRetryOnTlsProblem): falha de conexão, tempo esgotado e as respostas
# abaixo, em qualquer método (todas as nossas requisições podem ser repetidas). SYNC_TENTATIVAS_HTTP novas
# tentativas; a 1ª na hora, depois 1 s, 2 s, 4 s... (±12,5 %, até 30 s); um Retry-After do servidor vale no
# lugar da espera, até RETRY_AFTER_MAX. Um problema de TLS nunca é repetido (não muda repetindo).
HTTP_RETRY_STATUSES = (429, 502, 503, 504)
RETRY_AFTER_MAX = 120  # um Retry-After de 1 hora não segura a execução
HTTP_BACKOFF = Backoff(first=1.0, cap=30.0, jitter=0.125, immediate=1)
# Resposta 2xx com corpo ilegível (cortada no meio; ApiClient._send): SYNC_TENTATIVAS_HTTP novas tentativas,
# 0,5 s, 1 s, 2 s... até 10 s, dentro do prazo da requisição.
UNREADABLE_BACKOFF = Backoff(first=0.5, cap=10.0)
# Escrita que levou HTTP 500 ou "database is locked" (Executor._write; transient_failure): WRITE_RETRIES novas
# tentativas, 0,25 s, 0,5 s e 1 s. Nunca um 500 de texto largo demais para o MySQL (too_wide): repetir não muda.
WRITE_RETRIES = 3
WRITE_BACKOFF = Backoff(first=0.25)
# Servidor dormindo (ApiClient._wake_loop): GET /health a cada 2 s até SYNC_ESPERA_DESPERTAR (conexão recusada:
# só ApiClient.REFUSED_WAIT; cada GET no máximo ApiClient.WAKE_ATTEMPT).
WAKE_POLL = Backoff(first=2.0, factor=1.0)
# Estas esperas curtas estão escritas para Config.backoff = SHORT_WAIT_UNIT (os testes o encolhem: scaled).
SHORT_WAIT_UNIT = 0.5
# Vigiar (Watcher.next_wait, Watcher.pair_done): a espera começa no intervalo efetivo e dobra a cada falha.
WATCH_PRIMARY_BACKOFF_MAX = 300.0  # principal fora do ar: até 5 min
WATCH_RETRY_MAX = 600.0  # par com problema (backup fora do ar, falhas): até 10 min (e até a leitura do backup)
WATCH_PRIMARY_BACKOFF = Backoff(first=SETTING["SYNC_VIGIAR_INTERVALO"].default, cap=WATCH_PRIMARY_BACKOFF_MAX)
WATCH_PAIR_BACKOFF = Backoff(first=SETTING["SYNC_VIGIAR_INTERVALO"].default, cap=WATCH_RETRY_MAX)
# Execução agendada (sincronizar_automatico.py): só o código 4 (servidor inacessível ou tempo esgotado) pode se
# resolver sozinho; SYNC_TENTATIVAS tentativas, a espera começa em SYNC_ESPERA_INICIAL (o `first` desta) e
# dobra, ±25 %, até 15 min (mesmo com SYNC_ESPERA_INICIAL maior).
RETRIED_EXIT_CODES = (ExitCode.SERVER,)
SCHEDULED_BACKOFF = Backoff(first=SETTING["SYNC_ESPERA_INICIAL"].default, cap=900.0, jitter=0.25)


# ============================================================================
# Cliente HTTP (uma requests.Session por servidor)
# ============================================================================

class ApiError(Exception):
    """Falha ao falar com um servidor; a mensagem já está em português e sem segredos."""

    def __init__(self, message: str, status: int | None = None, server_message: str | None = None):
        super().__init__(mask(message))
        self.status = status
        self.server_message = server_message


class AuthError(ApiError):
    """Credenciais recusadas ou conta sem papel de administrador (código 2)."""


class ServerMismatch(AuthError):
    """Quem respondeu na URL configurada não é a API de licenças (caminho errado, outro site, outro
    serviço): erro de configuração, código 2, na hora, sem esperar o servidor "acordar"."""


class Redirected(ServerMismatch):
    """O servidor respondeu um redirecionamento (3xx): a URL configurada não é a do servidor (http em vez
    de https, endereço antigo, outro domínio). Configuração: código 2, na hora. O redirecionamento nunca
    é seguido (NoRedirectSession): um 301/302 viraria o POST do login num GET, e um 307/308 levaria a
    senha (ou o token) a outro endereço."""


class HostNotFound(ApiError):
    """O nome do servidor não resolveu (DNS): URL digitada errado ou máquina sem internet. Código 4
    (não dá para distinguir os dois casos em todo sistema), na hora, sem esperar."""


class TlsError(ApiError):
    """Problema de TLS que não se resolve sozinho: certificado não confiável nesta máquina, emitido
    para outro nome ou vencido, ou http e https trocados na URL. Configuração: código 2, na hora, sem
    novas tentativas (repetir não muda o certificado), e a verificação nunca é desligada."""


def env_name(server: "ServerConfig") -> str:
    return "SERVIDOR_PRINCIPAL" if server.role == Role.PRIMARY else "SERVIDOR_BACKUP"


def describe_exception(exc: BaseException, limit: float | None = None) -> str:
    """Descrição curta, em português, de uma falha de rede (sem URLs com segredo)."""
    text = str(exc)
    per_attempt = f" ({limit:g} s sem receber nada, SYNC_TIMEOUT)" if limit else ""
    problem = tls_problem(exc)
    if problem is not None:
        return TLS_PROBLEMS[problem[0]][0]
    if any(isinstance(current, AnswerTooSlow) for current in exception_chain(exc)):
        return (f"tempo esgotado: a resposta chegava devagar demais (menos de {SLOW_LINK_FLOOR // 1000} KB/s "
                f"em média{f', além dos {limit:g} s de SYNC_TIMEOUT' if limit else ''})")
    if isinstance(exc, requests.exceptions.SSLError):
        return "erro no TLS (conexão https) com o servidor"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "tempo esgotado ao conectar"
    if isinstance(exc, (requests.exceptions.ReadTimeout, requests.exceptions.Timeout)):
        return "tempo esgotado esperando a resposta" + per_attempt
    if isinstance(exc, requests.exceptions.RetryError):
        return "o servidor continuou respondendo com erro depois de várias tentativas"
    if isinstance(exc, requests.exceptions.ConnectionError):
        if is_dns_failure(exc):
            return "nome do servidor não encontrado (DNS)"
        if "timed out" in text:  # prazo esgotado no meio do corpo da resposta
            return "tempo esgotado esperando a resposta" + per_attempt
        if "Connection refused" in text or "Errno 111" in text or "10061" in text:
            return "conexão recusada (servidor fora do ar?)"
        return "conexão interrompida"
    return exc.__class__.__name__


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """A exceção e todas as que ela embrulha (causa, contexto, .reason do urllib3, exceções em args).
    Só exceções: o .reason de um SSLError do urllib3 pode ser um texto."""
    seen: set[int] = set()
    pending: list[object] = [exc]  # causa, contexto e .reason podem ser None ou texto: filtrados abaixo
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        pending.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))


def is_connection_refused(exc: BaseException) -> bool:
    """Ninguém escuta no endereço e porta (ECONNREFUSED): não é um host gratuito dormindo (esse responde 502/503)."""
    if any(isinstance(current, ConnectionRefusedError) for current in exception_chain(exc)):
        return True
    text = str(exc)
    return "Connection refused" in text or "Errno 111" in text or "10061" in text


def is_dns_failure(exc: BaseException) -> bool:
    """O nome do servidor não resolveu (erro de digitação na URL, domínio que não existe ou sem internet)."""
    if any(isinstance(current, (socket.gaierror, urllib3.exceptions.NameResolutionError))
           for current in exception_chain(exc)):
        return True
    text = str(exc)
    return any(marker in text for marker in ("Name or service not known", "getaddrinfo failed", "nodename nor servname",
                                             "Failed to resolve", "Temporary failure in name resolution"))


# -- TLS: cada problema que não se resolve sozinho tem a sua mensagem (código 2) ----------------
# Tipo → (resumo curto, o que fazer). O texto completo sai de tls_error().
TLS_PROBLEMS = {
    "nao_confiavel": ("certificado TLS não confiável nesta máquina",
                      ("o certificado do servidor não foi emitido por uma autoridade (CA) em que esta máquina "
                       "confia. Se o servidor usa um certificado próprio (autoassinado ou de uma CA da empresa), "
                       "aponte SYNC_CA_BUNDLE para o arquivo .pem dessa CA; se é um certificado comum da "
                       "internet, atualize os certificados do Python (pip install -U certifi).")),
    "nome": ("certificado TLS emitido para outro nome",
             ("o certificado apresentado não vale para o nome usado na URL ({host}). Use na URL o mesmo "
              "nome do certificado do servidor (o endereço com que ele é acessado pelo navegador) ou peça "
              "um certificado que inclua esse nome.")),
    "vencido": ("certificado TLS vencido",
                ("o certificado do servidor está vencido. Renove o certificado no servidor (ou na hospedagem); "
                 "confira também se a data e a hora desta máquina estão certas.")),
    "ainda_nao_vale": ("certificado TLS ainda não válido",
                       ("o certificado do servidor só vale a partir de uma data futura: confira a data e a hora "
                        "desta máquina (e do servidor).")),
    "recusado": ("certificado TLS recusado",
                 ("o certificado do servidor foi recusado na verificação ({detalhe}). A verificação fica "
                  "sempre ligada: corrija o certificado no servidor ou, se for de uma CA própria, aponte "
                  "SYNC_CA_BUNDLE para o arquivo .pem dela.")),
    "https_em_http": ("a porta não fala https",
                      ("a URL usa https://, mas o servidor nessa porta respondeu sem criptografia (http). "
                       "Confira a URL em {env}: o endereço do servidor costuma ser https:// sem porta; "
                       "se ele realmente só fala http, use http:// (fora desta máquina, também --permitir-http).")),
    "http_em_https": ("a porta só fala https",
                      ("a URL usa http://, mas o servidor nessa porta só fala https. Troque por https:// "
                       "em {env}.")),
    "ca_invalida": ("arquivo de CA inválido",
                    ("o arquivo de CA {arquivo} não contém um certificado legível (formato PEM: "
                     "-----BEGIN CERTIFICATE-----). Corrija o arquivo ou remova a variável que aponta para ele "
                     "(SYNC_CA_BUNDLE, REQUESTS_CA_BUNDLE ou CURL_CA_BUNDLE).")),
}
_CERT_UNTRUSTED = {2, 18, 19, 20, 21, 27}  # X509_V_ERR_*: emissor desconhecido, autoassinado, sem cadeia
_CERT_NAME = {62, 63, 64}  # X509_V_ERR_HOSTNAME/EMAIL/IP_ADDRESS_MISMATCH
_NOT_TLS = ("WRONG_VERSION_NUMBER", "wrong version number", "RECORD_LAYER_FAILURE", "record layer failure",
            "packet length too long", "PACKET_LENGTH_TOO_LONG", "unknown protocol", "UNKNOWN_PROTOCOL")


def tls_problem(exc: BaseException) -> tuple[str, str] | None:
    """(tipo em TLS_PROBLEMS, detalhe) de uma falha de TLS que não se resolve repetindo, ou None
    (inclusive para falhas passageiras, como a conexão cortada no meio do aperto de mão)."""
    for current in exception_chain(exc):
        if isinstance(current, ssl.SSLCertVerificationError):
            code = getattr(current, "verify_code", None)
            detail = str(getattr(current, "verify_message", None) or current.reason or "")
            if code == 10 or "has expired" in detail:
                return "vencido", detail
            if code == 9 or "not yet valid" in detail:
                return "ainda_nao_vale", detail
            if code in _CERT_NAME or "mismatch" in detail:
                return "nome", detail
            if code in _CERT_UNTRUSTED or "issuer" in detail or "self-signed" in detail or "self signed" in detail:
                return "nao_confiavel", detail
            return "recusado", detail
        if current.__class__.__name__ == "CertificateError" and "match" in str(current):
            return "nome", str(current)  # conferência de nome feita pelo próprio urllib3
        if isinstance(current, ssl.SSLError):
            text = str(current)
            if any(marker in text for marker in _NOT_TLS):
                return "https_em_http", text
            if "NO_CERTIFICATE_OR_CRL_FOUND" in text or "X509" in text or "PEM" in text:
                return "ca_invalida", text
    return None


def tls_error(server: ServerConfig, kind: str, detail: str = "", ca_bundle: str | None = None) -> TlsError:
    """A mensagem completa (código 2) de um problema de TLS_PROBLEMS com este servidor."""
    summary, advice = TLS_PROBLEMS[kind]
    host = urllib.parse.urlsplit(server.url).hostname
    note = ""
    if ca_bundle and kind in ("nao_confiavel", "recusado"):
        note = f" (nem a CA de {ca_bundle} reconhece este certificado)"
    advice = advice.format(host=host, env=env_name(server), arquivo=ca_bundle or "",
                           detalhe=mask(detail[:200]) or summary)
    return TlsError(f"{server.label}: {summary}{note}: {advice}")


class NoRetryOnTlsProblem(Retry):
    """As novas tentativas do urllib3, menos para um problema de TLS que não muda repetindo
    (tls_problem: certificado recusado, http/https trocados): esse falha na primeira tentativa. O urllib3
    decide o que repetir e quantas vezes (e respeita o Retry-After); a espera entre elas é a de `policy`."""

    policy: Backoff = HTTP_BACKOFF

    @classmethod
    def for_config(cls, config: Config) -> NoRetryOnTlsProblem:
        """As novas tentativas HTTP de uma execução: SYNC_TENTATIVAS_HTTP de cada tipo, HTTP_BACKOFF."""
        retry = cls(total=config.http_retries, connect=config.http_retries, read=config.http_retries,
                    status=config.http_retries, other=config.http_retries,
                    status_forcelist=HTTP_RETRY_STATUSES,
                    allowed_methods=None,  # todas as escritas que fazemos podem ser repetidas com segurança
                    respect_retry_after_header=True, retry_after_max=RETRY_AFTER_MAX,
                    raise_on_status=False, raise_on_redirect=False)
        retry.policy = config.paced(HTTP_BACKOFF)
        return retry

    def new(self, **kw: Any) -> NoRetryOnTlsProblem:  # o urllib3 copia o Retry a cada tentativa: a política vai junto
        retry = super().new(**kw)
        retry.policy = self.policy
        return retry

    def get_backoff_time(self) -> float:
        """A espera antes desta nova tentativa: policy.delay(falhas seguidas até aqui, sem redirecionamentos)."""
        failures = len(list(itertools.takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        return self.policy.delay(failures) if failures else 0.0

    def increment(self, method: Any = None, url: Any = None, response: Any = None, error: Any = None,
                  _pool: Any = None, _stacktrace: Any = None) -> NoRetryOnTlsProblem:
        retry = self.new(total=0) if error is not None and tls_problem(error) is not None else self
        return Retry.increment(retry, method, url, response, error, _pool, _stacktrace)


def base_ca_bundle() -> str:
    """As autoridades de sempre: REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE do ambiente, ou as do requests (certifi)."""
    return (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH)


@functools.lru_cache(maxsize=4)
def tls_context(ca_bundle: str, base: str | None = None) -> ssl.SSLContext:
    """Contexto TLS com as autoridades de sempre (base_ca_bundle) MAIS a CA de SYNC_CA_BUNDLE: um
    servidor com certificado próprio passa a ser aceito sem que os de certificado público deixem de
    ser. Verificação de certificado e de nome sempre ligadas. Arquivo ilegível: ConfigError."""
    cafile = base or base_ca_bundle()
    try:
        context = ssl.create_default_context(cafile=cafile)  # só essas, sem as do sistema (como o requests)
        cafile = ca_bundle
        context.load_verify_locations(cafile=cafile)
    except (ssl.SSLError, OSError, ValueError):
        raise ConfigError("O" + TLS_PROBLEMS["ca_invalida"][1].format(arquivo=cafile)[1:]) from None
    return context


def speaks_tls(host: str, port: int, timeout: float) -> bool:
    """A porta responde a um aperto de mão TLS? Só o aperto de mão: nada da requisição (nem a senha)
    é enviado. Usado para dizer "troque http:// por https://" quando uma porta https fecha a
    conexão de quem fala http puro."""
    context = ssl.create_default_context()
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host):
            return True
    except ssl.SSLCertVerificationError:
        return True  # respondeu com um certificado: fala TLS (não importa aqui se ele é confiável)
    except (OSError, ValueError):
        return False


_PLAIN_HTTP_PAGE = re.compile(r"plain HTTP request was sent to HTTPS port|speaking plain HTTP to an SSL-enabled|"
                              r"Client sent an HTTP request to an HTTPS server", re.IGNORECASE)


def plain_http_refused(status: int, text: str) -> bool:
    """Página de proxy (nginx, Cloudflare, Apache, Go) dizendo que recebeu http numa porta https."""
    return status == 400 and bool(_PLAIN_HTTP_PAGE.search(text[:5000]))


class Ticker:
    """Mostra que uma espera longa continua viva (uma linha a cada 10 s), no terminal e sem ele (cron, log)."""

    def __init__(self, label: str, enabled: bool, every: float = 10.0):
        self.label, self.every = label, every
        self.enabled = enabled  # linhas inteiras: servem ao terminal e ao log do agendador
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.every):
            sys.stderr.write(mask(f"   ⏳ {self.label}... {time.monotonic() - start:.0f} s") + "\n")
            sys.stderr.flush()

    def __enter__(self) -> "Ticker":
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()


# -- prazos de uma tentativa: SYNC_TIMEOUT limita o SILÊNCIO; o prazo total cresce com a resposta --
# 1. Silêncio: o timeout de leitura do requests/urllib3 vale para cada recv(): SYNC_TIMEOUT segundos sem
#    receber nada derrubam a tentativa (servidor calado, conexão pendurada), em qualquer ponto da resposta.
# 2. Prazo total: só o silêncio não basta (um servidor que pinga um byte a cada 0,5 s nunca o estoura).
#    Cada tentativa (conexão, envio, cabeçalhos e corpo) ganha um prazo absoluto que começa em
#    SYNC_TIMEOUT e CRESCE com o que chega: cada byte recebido acrescenta 1/SLOW_LINK_FLOOR s. Ou seja, a
#    resposta precisa chegar a pelo menos SLOW_LINK_FLOOR (5 KB/s) em média, com SYNC_TIMEOUT de folga.
#    Uma listagem grande num link lento termina (5.000 licenças, ~2,1 MB, a 50 KB/s: 43 s; o prazo
#    chega a 30 + 430 s); quem manda a conta-gotas cai logo depois de SYNC_TIMEOUT, como antes.
#    Por que 5 KB/s: dez vezes abaixo do link lento dos testes (50 KB/s) e perto de um modem discado;
#    ~12 licenças por segundo (~430 bytes cada), ~200 s por MB. Contar o que CHEGOU (e não o
#    Content-Length) vale também sem Content-Length (chunked, gzip de um proxy) e não dá a quem declara
#    1 GB e manda a conta-gotas um prazo enorme; com Content-Length, o prazo nunca passa de
#    SYNC_TIMEOUT + Content-Length / 5 KB/s.
# Cada operação do socket espera o menor dos dois: o silêncio permitido ou o que falta do prazo. Este
# invólucro fica (em vez do timeout "total" do urllib3, calculado uma vez antes dos cabeçalhos, ou de uma
# thread que fecha o socket): é o único jeito simples de limitar também cabeçalhos pingados. As novas
# tentativas do urllib3 continuam as mesmas (cada uma com o seu prazo).
SLOW_LINK_FLOOR = 5_000  # bytes por segundo, em média, abaixo dos quais uma resposta é cortada


class AnswerTooSlow(socket.timeout):
    """O prazo total da tentativa acabou: a resposta chegava abaixo de SLOW_LINK_FLOOR em média (não é
    silêncio: esse é o timeout comum do socket)."""


class _DeadlineSocket:
    """Socket cujas esperas somadas não passam do prazo da tentativa em curso (owner.attempt_deadline)."""

    def __init__(self, sock: Any, owner: Any):
        self._sock, self._owner = sock, owner
        self._timeout = sock.gettimeout()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def settimeout(self, value: float | None) -> None:
        self._timeout = value
        self._sock.settimeout(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def _arm(self) -> bool:
        """Arma a próxima espera; True quando quem limita é o prazo total (e não o silêncio permitido)."""
        deadline = getattr(self._owner, "attempt_deadline", None)
        if deadline is None:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise self._too_slow(None)
        capped = self._timeout is None or remaining < self._timeout
        self._sock.settimeout(remaining if capped else self._timeout)
        return capped

    def _too_slow(self, exc: BaseException | None) -> BaseException:
        """O prazo total acabou: AnswerTooSlow se algo já chegou nesta tentativa; sem nada, é silêncio."""
        if not getattr(self._owner, "attempt_received", 0):
            return exc or socket.timeout("timed out")
        return AnswerTooSlow("timed out (resposta abaixo do mínimo de velocidade)")

    def _received(self, count: int) -> None:
        """Cada byte recebido estende o prazo total em 1/SLOW_LINK_FLOOR s."""
        deadline = getattr(self._owner, "attempt_deadline", None)
        if deadline is not None and count > 0:
            self._owner.attempt_deadline = deadline + count / SLOW_LINK_FLOOR
            self._owner.attempt_received += count

    def recv(self, *args: Any) -> bytes:
        capped = self._arm()
        try:
            data = self._sock.recv(*args)
        except socket.timeout as exc:
            raise (self._too_slow(exc) if capped else exc) from None
        self._received(len(data))
        return data

    def recv_into(self, *args: Any) -> int:
        capped = self._arm()
        try:
            count = self._sock.recv_into(*args)
        except socket.timeout as exc:
            raise (self._too_slow(exc) if capped else exc) from None
        self._received(count)
        return count

    def send(self, *args: Any) -> int:
        self._arm()
        return self._sock.send(*args)

    def sendall(self, *args: Any) -> None:
        self._arm()
        return self._sock.sendall(*args)

    def makefile(self, mode: str = "r", buffering: int | None = None, **_: Any) -> Any:
        """Como socket.makefile (só binário), mas lendo e escrevendo por este invólucro."""
        # O SocketIO aceita qualquer objeto com recv_into e send (o resto vai ao socket por __getattr__); o
        # modo aqui é sempre "r", "w" ou "rw", que o typeshed pede como Literal e um str calculado não prova.
        raw = socket.SocketIO(self, mode.replace("b", ""))  # type: ignore[arg-type]
        self._sock._io_refs += 1  # o fechamento real espera o arquivo ser fechado, como no socket
        if buffering == 0:
            return raw
        size = buffering if buffering and buffering > 0 else io.DEFAULT_BUFFER_SIZE
        return io.BufferedReader(raw, size) if "r" in mode else io.BufferedWriter(raw, size)


class _DeadlineConnectionMixin:
    attempt_deadline: float | None = None  # início da tentativa + SYNC_TIMEOUT; cresce com o que chega
    attempt_received = 0  # bytes recebidos na tentativa em curso
    sock: socket.socket | _DeadlineSocket | None  # o de HTTPConnection, trocado pelo invólucro em connect()

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        if self.sock is not None and not isinstance(self.sock, _DeadlineSocket):
            self.sock = _DeadlineSocket(self.sock, self)


class _DeadlineHTTPConnection(_DeadlineConnectionMixin, urllib3.connection.HTTPConnection):
    pass


class _DeadlineHTTPSConnection(_DeadlineConnectionMixin, urllib3.connection.HTTPSConnection):
    pass


class _DeadlinePoolMixin:
    def _make_request(self, conn: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        total = getattr(kwargs.get("timeout"), "total", None)  # urllib3.Timeout(total=SYNC_TIMEOUT)
        conn.attempt_deadline = time.monotonic() + total if total else None
        conn.attempt_received = 0
        return super()._make_request(conn, method, url, *args, **kwargs)  # type: ignore[misc]


class _DeadlineHTTPPool(_DeadlinePoolMixin, urllib3.HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(_DeadlinePoolMixin, urllib3.HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


def _use_deadline_pools(manager: Any) -> Any:
    manager.pool_classes_by_scheme = {"http": _DeadlineHTTPPool, "https": _DeadlineHTTPSPool}
    return manager


class DeadlineAdapter(HTTPAdapter):
    """HTTPAdapter cujas conexões respeitam o prazo total de cada tentativa (também via proxy HTTP).
    ssl_context: contexto TLS das conexões https (tls_context, quando há SYNC_CA_BUNDLE)."""

    def __init__(self, *args: Any, ssl_context: ssl.SSLContext | None = None, **kwargs: Any) -> None:
        self._ssl_context = ssl_context
        super().__init__(*args, **kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        if self._ssl_context is not None:
            kwargs["ssl_context"] = self._ssl_context
        super().init_poolmanager(*args, **kwargs)
        _use_deadline_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        return _use_deadline_pools(super().proxy_manager_for(proxy, **kwargs))


def attempt_timeout(connect: float, total: float) -> "urllib3.Timeout":
    """Timeout de uma tentativa: conexão até `connect`, e tudo (conexão + resposta inteira) até `total`."""
    return urllib3.Timeout(connect=min(connect, total), read=total, total=total)


class NoRedirectSession(requests.Session):
    """Sessão que nunca segue um redirecionamento (como allow_redirects=False em todas as requisições,
    inclusive as de fora do ApiClient, como GET /servers): o 3xx chega a quem pediu, que o nomeia."""

    def get_redirect_target(self, resp: Any) -> None:
        return None


_REDIRECT_KINDS = {301: "permanente", 308: "permanente", 302: "temporário", 303: "temporário", 307: "temporário"}


def shown_url(url: str, limit: int = 200) -> str:
    """Uma URL vinda de um servidor (texto hostil), pronta para mostrar: sem usuário:senha, com o valor
    de cada parâmetro da consulta mascarado (pode ser um token), sem o fragmento, com caracteres de
    controle e espaços codificados (%XX) e cortada em `limit` caracteres."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # ex.: colchete de IPv6 sem fechar
        return "(um endereço ilegível)"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "&".join(item.partition("=")[0] + ("=***" if "=" in item else "")
                     for item in parts.query.split("&") if item)
    text = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    text = "".join(c if c.isprintable() and not c.isspace() else urllib.parse.quote(c) for c in text)
    return text if len(text) <= limit else text[:limit] + "…"


def redirect_root(request_url: str, target: str, base_url: str) -> str | None:
    """O endereço raiz da API para pôr no .env, quando o destino é o mesmo caminho pedido em outro
    endereço (http→https, domínio novo): https://novo/admin/login → https://novo. None quando o
    destino é outra coisa (uma página de login, outro caminho), ou tem usuário, consulta ou fragmento."""
    path = request_url[len(base_url):] if request_url.startswith(base_url) else ""
    try:
        parts = urllib.parse.urlsplit(target)
    except ValueError:
        return None
    if (parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc or parts.query
            or parts.fragment or not path or not parts.path.endswith(path)):
        return None
    root = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path[:len(parts.path) - len(path)], "", ""))
    return root.rstrip("/") if shown_url(root) == root else None


def redirect_error(server: ServerConfig, status: int, location: str | None, request_url: str) -> Redirected:
    """A mensagem (código 2) de um 3xx: o status, o Location a usar em vez da URL configurada e a garantia
    de que nada foi mandado ao destino."""
    kind = _REDIRECT_KINDS.get(status)
    what = f"{server.label} respondeu {status} (redirecionamento{' ' + kind if kind else ''})"
    env = env_name(server)
    if not (location or "").strip():
        return Redirected(f"{what} sem dizer para onde (sem Location). Confira {env}: use o endereço raiz "
                          "da API, do jeito que o servidor responde (ex.: https://meuservidor.com).")
    target = (location or "").strip()[:2000]
    with contextlib.suppress(ValueError):
        target = urllib.parse.urljoin(request_url, target)  # um Location relativo ("/novo") vale no mesmo servidor
    root = redirect_root(request_url, target, server.url)
    advice = (f"use {root} em {env}" if root else
              f"confira {env} (o endereço raiz da API, do jeito que o servidor responde, ex.: https://meuservidor.com)")
    return Redirected(f"{what} para {shown_url(target)}: {advice}. O redirecionamento não foi seguido: "
                      "nada (nem a senha) foi enviado ao outro endereço.", status)


PROGRESS_AFTER = 5.0  # s: uma resposta que chega antes disso não mostra andamento
PROGRESS_EVERY = 5.0  # s entre duas linhas de andamento
LARGE_BODY = 100_000  # bytes: só respostas GET maiores que isso (ou sem tamanho declarado) são acompanhadas


def megabytes(count: int) -> str:
    return f"{count / 1_000_000:.1f}".replace(".", ",") + " MB"


def watch_body(raw: Any, label: str, total: int | None, stream: Any,
               after: float = PROGRESS_AFTER, every: float = PROGRESS_EVERY) -> None:
    """Numa thread à parte: enquanto o corpo de `raw` (urllib3) chega, uma linha a cada `every` s, depois
    dos primeiros `after` s, com o que já chegou ("1,2 MB de 2,1 MB recebidos"). Termina quando a resposta
    termina ou falha (raw.closed)."""
    start = time.monotonic()
    next_line = start + after
    while not raw.closed:
        time.sleep(0.25)
        now = time.monotonic()
        if now < next_line or raw.closed:
            continue
        next_line = now + every
        of = f" de {megabytes(total)}" if total else ""
        try:
            stream.write(mask(f"   ⏳ {label}: {megabytes(raw.tell())}{of} recebidos "
                                      f"({now - start:.0f} s)") + "\n")
            stream.flush()
        except (OSError, ValueError):  # saída fechada: o andamento some, a leitura segue
            return


@dataclasses.dataclass
class Response:
    status: int
    body: Any
    retried: bool
    kind: str = "json"  # "json", "html" ou "outro": o que veio no corpo (para dizer quem respondeu)


def _content_kind(resp: Any) -> str:
    content_type = (resp.headers.get("Content-Type") or "").lower()
    if "json" in content_type:
        return "json"
    if "html" in content_type or resp.content[:200].lstrip().lower().startswith((b"<!doctype", b"<html")):
        return "html"
    return "outro"


TOKEN_MIN_LIFE = 60.0  # um token que caiu antes disso foi revogado (senha trocada, reinício), não venceu


class ServerClock:
    """O relógio UTC de um servidor, lido do cabeçalho Date de cada resposta (resolução de 1 s). Cada leitura
    guarda o instante monotônico local em que a requisição saiu: a hora do servidor agora é a do Date mais o
    tempo monotônico passado desde então (erro: o tempo da requisição, e o segundo cortado do Date). Vale a
    mediana das últimas leituras (um proxy com o relógio errado numa resposta não decide sozinho). O relógio
    de parede do PC não entra na conta: mudar a hora do PC no meio da execução não muda nada."""

    KEEP = 5

    def __init__(self) -> None:
        self._readings: list[tuple[float, dt.datetime]] = []
        self._lock = threading.Lock()

    def record(self, header: Any, sent: float) -> None:
        """Uma resposta com `Date: <header>` à requisição enviada no instante monotônico `sent`."""
        if not isinstance(header, str) or len(header) > 100:
            return
        try:
            moment = email.utils.parsedate_to_datetime(header.strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            return  # texto do servidor é entrada hostil: um Date ilegível é só uma leitura a menos
        if moment is None or not 2000 <= moment.year <= 9000:
            return
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)  # o Date é sempre GMT
        moment = moment.astimezone(dt.timezone.utc) + dt.timedelta(seconds=0.5)  # meio do segundo cortado
        with self._lock:
            self._readings = (self._readings + [(sent, moment)])[-self.KEEP:]

    @property
    def known(self) -> bool:
        return bool(self._readings)

    def now(self) -> dt.datetime | None:
        """A hora UTC do servidor agora (None: nenhuma resposta trouxe um Date legível)."""
        mono = time.monotonic()
        with self._lock:
            estimates = sorted(moment + dt.timedelta(seconds=mono - sent) for sent, moment in self._readings)
        return estimates[len(estimates) // 2] if estimates else None


class ApiClient:
    """Fala com um servidor da API de licenças: login, listagens e escritas."""

    def __init__(self, server: ServerConfig, config: Config):
        self.server = server
        self.config = config
        self.cancel = threading.Event()
        self.context = run_context()  # a execução dona deste cliente (main() seguinte no mesmo processo: outra)
        self.listings: dict[str, list[Any]] = {}
        self.routes: dict[ActionKind, bool | None] = {}  # rotas de escrita sondadas (Executor.missing_routes)
        self.token: str | None = None
        self.role: str | None = None
        self.waited_seconds = 0.0
        self.clock = ServerClock()  # o relógio do servidor (cabeçalho Date de cada resposta)
        self._login_lock = threading.Lock()
        self._token_generation = 0
        self.logged_at = time.monotonic()  # quando o token atual foi emitido
        self.token_life: float | None = None  # quanto um token durou neste servidor (visto num 401); None: não caiu
        # A rota de bloqueio funciona nesta execução? (True: um bloqueio passou e nenhum falhou; False: um
        # falhou; None: nenhum ainda.) Antes de regravar uma licença que precisa terminar negada
        # (Executor.prove_block_route, Executor.route_broken).
        self.block_works: bool | None = None
        self.block_failure = ""  # a resposta do último bloqueio que falhou
        self.block_lock = threading.Lock()
        self.session = NoRedirectSession()  # um 3xx é nomeado (_check_redirect), nunca seguido
        self.session.headers["User-Agent"] = f"sincronizar-bancos/{VERSAO}"
        self.session.hooks["response"].append(self._watch_large_body)
        # Proxies e CA do ambiente lidos uma vez só (o requests os relê a cada requisição, ~0,3 ms cada);
        # sem trust_env, um ~/.netrc também não substitui o nosso cabeçalho Authorization.
        self.session.proxies = requests.utils.get_environ_proxies(server.url)
        self.session.trust_env = False
        self.session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        pool_options: dict[str, Any] = {}
        if config.ca_bundle and server.url.startswith("https://"):  # CA própria, somada às de sempre
            self.session.verify = True
            pool_options["ssl_context"] = tls_context(config.ca_bundle, base_ca_bundle())
        self._heard = False  # já veio alguma resposta HTTP deste servidor (então a porta fala o esquema da URL)
        retry = NoRetryOnTlsProblem.for_config(config)  # o que é repetido e a espera: HTTP_BACKOFF
        adapter = DeadlineAdapter(max_retries=retry, pool_connections=1, pool_maxsize=max(config.parallel, 2),
                                  **pool_options)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # /health (despertar) sem novas tentativas automáticas: o laço de wake() controla o tempo total.
        health = DeadlineAdapter(max_retries=0)
        health.poolmanager = adapter.poolmanager  # mesma conexão keep-alive do resto
        self.session.mount(self.server.url + "/health", health)

    def close(self) -> None:
        self.session.close()

    def _handoff_key(self) -> tuple[str, str]:
        return (self.server.url, self.server.username)

    # -- baixo nível -------------------------------------------------------
    def _send(self, method: str, path: str, payload: Any = None, auth: bool = True,
              timeout: float | None = None, token: str | None = None) -> Response:
        """Uma requisição, com as novas tentativas do urllib3. Cada tentativa inteira (conexão, envio,
        cabeçalhos e corpo) dura no máximo SYNC_TIMEOUT; no total, no máximo (SYNC_TENTATIVAS_HTTP + 1)
        tentativas, com as esperas entre elas (HTTP_BACKOFF, ou o Retry-After até RETRY_AFTER_MAX).
        Um 2xx ilegível é pedido de novo (UNREADABLE_BACKOFF)."""
        headers = {"Accept": "application/json"}
        token = token or (self.token if auth else None)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = self.server.url + path
        limit = timeout or self.config.timeout
        attempts = max(1, self.config.http_retries + 1)
        started = time.monotonic()
        retried = False
        for attempt in range(attempts):
            sent = time.monotonic()
            try:
                # O requests aceita um urllib3.Timeout como timeout (HTTPAdapter.send), mas os tipos dele só
                # descrevem número ou par: o prazo total da tentativa precisa do Timeout.
                resp = self.session.request(method, url, json=payload, headers=headers,
                                            timeout=attempt_timeout(  # type: ignore[arg-type]
                                                self.config.connect_timeout, limit))
            except requests.exceptions.RequestException as exc:
                if is_dns_failure(exc):
                    raise self._host_not_found() from None
                self._raise_tls_problem(exc)
                raise ApiError(f"{self.server.label}: {describe_exception(exc, limit)}") from None
            self.clock.record(resp.headers.get("Date"), sent)
            self._check_scheme(resp)
            history = getattr(getattr(resp.raw, "retries", None), "history", None)
            retried = retried or bool(history)
            try:
                body = resp.json()
            except ValueError:
                body = None
            out_of_time = time.monotonic() - started > attempts * limit
            if body is not None or not 200 <= resp.status_code < 300 or attempt + 1 >= attempts or out_of_time:
                return Response(resp.status_code, body, retried, _content_kind(resp))
            # Resposta 2xx ilegível (cortada no meio): repete; todas as nossas
            # requisições podem ser repetidas com segurança.
            retried = True
            time.sleep(self.config.paced(UNREADABLE_BACKOFF).delay(attempt + 1))
        raise AssertionError("inalcançável")

    def request(self, method: str, path: str, payload: Any = None) -> Response:
        """Requisição autenticada; um 401 no meio da execução leva a um novo login (uma vez)."""
        generation, issued = self._token_generation, self.logged_at
        resp = self._send(method, path, payload)
        if resp.status == 401:  # o servidor não processou o pedido: repetir não é "nova tentativa"
            if generation == self._token_generation:  # o token caiu: quanto ele durou
                lived = time.monotonic() - issued
                self.token_life = lived if self.token_life is None else min(self.token_life, lived)
            self._relogin(generation)
            resp = self._send(method, path, payload)
        return resp

    def _relogin(self, seen_generation: int) -> None:
        with self._login_lock:
            if self._token_generation == seen_generation:
                self.login()

    def renew_if_near_expiry(self) -> bool:
        """Novo login antes de uma sequência que não pode parar no meio (criar/regravar → bloquear), quando um
        token deste servidor já venceu nesta execução (um 401 depois de TOKEN_MIN_LIFE segundos ou mais: um
        prazo, não uma revogação) e o atual passou de 3/4 desse prazo. A API não diz quando um token vence
        (os tokens são opacos); um 401 antes disso continua levando a um novo login só (request). Um login
        recusado levanta AuthError ANTES da sequência (nada dela é enviado). Devolve se renovou."""
        life = self.token_life
        if life is None or life < TOKEN_MIN_LIFE or time.monotonic() - self.logged_at < life * 3 / 4:
            return False
        self._relogin(self._token_generation)
        return True

    # -- operações ---------------------------------------------------------
    def wake(self) -> float:
        """Acorda um servidor que dorme (hospedagem gratuita) com GET /health."""
        handed = run_context().handoff.get(self._handoff_key())
        if isinstance(handed, BaseException):  # connect_servers já tentou: mesma falha, sem esperar de novo
            run_context().handoff.pop(self._handoff_key(), None)
            raise handed
        if handed is not None:
            self.waited_seconds = handed[2]
            return self.waited_seconds
        if self.config.wake_wait <= 0:
            return 0.0
        start = time.monotonic()
        deadline = start + self.config.wake_wait
        with Ticker(f"{self.server.label}: aguardando o servidor acordar", self.config.progress):
            self._wake_loop(deadline)
        self.waited_seconds = time.monotonic() - start
        return self.waited_seconds

    REFUSED_WAIT = 10.0  # conexão recusada não é host dormindo: espera curta (um app que reinicia)
    WAKE_ATTEMPT = 15.0  # cada GET /health: um host que segura a conexão é chamado de novo (e um sinal não espera mais)

    _explained: bool  # já explicou a espera nesta chamada de _wake_loop (que o zera)

    def abandoned(self) -> bool:
        """A espera deste cliente não interessa mais: foi cancelada (Ctrl+C/SIGTERM, outro servidor com erro de
        configuração) ou a execução que o criou já terminou (outra chamada de main() no mesmo processo)."""
        return self.cancel.is_set() or run_context() is not self.context

    def _explain_wait(self, answer: str, refused: bool) -> None:
        """Uma linha (stderr), na primeira resposta ruim, dizendo por que e até quando a ferramenta espera. Uma
        espera já cancelada (Ctrl+C/SIGTERM ou outro servidor com erro de configuração) não se explica: ela
        termina na volta seguinte do laço, e a execução que a pediu pode já ter terminado (main() seguinte
        no mesmo processo)."""
        if self._explained or self.abandoned():
            return
        self._explained = True
        if refused:
            why = (f"conexão recusada: nada responde nesse endereço e porta. Um servidor gratuito dormindo "
                   f"responde 502/503, não recusa a conexão; espero só "
                   f"{min(self.REFUSED_WAIT, self.config.wake_wait):.0f} s "
                   f"(confira a URL em {env_name(self.server)})")
        else:
            why = (f"{answer}: é o que um servidor gratuito dormindo responde enquanto acorda (30 a 60 s ou mais); "
                   f"espero até {self.config.wake_wait:.0f} s (SYNC_ESPERA_DESPERTAR)")
        stream = sys.stderr if self.config.json_output else sys.stdout  # logo abaixo do cabeçalho
        stream.write(mask(f"   ⏳ {self.server.label}: {why}...") + "\n")
        stream.flush()

    def _wake_loop(self, deadline: float) -> None:
        last_error, refused_since = "sem resposta", None
        self._explained = False
        for poll in itertools.count(1):
            remaining = deadline - time.monotonic()
            if refused_since is not None and time.monotonic() - refused_since >= self.REFUSED_WAIT:
                raise ApiError(
                    f"{self.server.label}: conexão recusada por {self.REFUSED_WAIT:.0f} s: nada responde nesse "
                    f"endereço e porta (um servidor gratuito dormindo responde 502/503, não recusa). Confira a URL "
                    f"em {env_name(self.server)} e se o servidor está no ar.")
            if remaining <= 0:
                raise ApiError(
                    f"{self.server.label} não respondeu a /health em {self.config.wake_wait:.0f} s "
                    f"({last_error})."
                )
            if self.abandoned():
                raise ApiError(f"{self.server.label}: espera interrompida (outro servidor com erro de configuração).")
            try:
                sent = time.monotonic()
                resp = self.session.get(self.server.url + "/health", timeout=attempt_timeout(  # type: ignore[arg-type]
                    self.config.connect_timeout, max(min(remaining, self.WAKE_ATTEMPT), 0.5)))  # Timeout: ver _send
                self.clock.record(resp.headers.get("Date"), sent)
                self._check_scheme(resp)
                verdict, what = health_verdict(resp)
                if verdict is HealthVerdict.OK:
                    return
                if verdict is HealthVerdict.OTHER:
                    raise self._mismatch("GET /health", what)
                last_error, refused_since = what, None
                self._explain_wait(f"respondeu {what}", refused=False)
            except requests.exceptions.RequestException as exc:
                if is_dns_failure(exc):
                    raise self._host_not_found() from None
                self._raise_tls_problem(exc)
                last_error = describe_exception(exc)
                refused = is_connection_refused(exc)
                if refused and refused_since is None:
                    refused_since = time.monotonic()
                elif not refused:
                    refused_since = None
                self._explain_wait(last_error, refused=refused)
            self.cancel.wait(min(WAKE_POLL.delay(poll), max(deadline - time.monotonic(), 0)))

    def _mismatch(self, request: str, what: str) -> ServerMismatch:
        return ServerMismatch(
            f"{self.server.label} não é a API de licenças: {request} respondeu {what}. "
            f"Confira {env_name(self.server)}: "
            "use o endereço raiz da API (ex.: https://meuservidor.com, sem /admin nem outro caminho)."
        )

    def _raise_tls_problem(self, exc: BaseException) -> None:
        """TlsError (código 2, sem esperar) para um problema de TLS que repetir não resolve: o
        certificado recusado, https numa porta http, ou http numa porta que só fala https (uma porta
        que fecha sem responder ao primeiro contato com http:// é testada com um aperto de mão TLS)."""
        problem = tls_problem(exc)
        if problem is not None:
            bundle = self.config.ca_bundle or (self.session.verify if isinstance(self.session.verify, str) else None)
            raise tls_error(self.server, problem[0], problem[1], bundle) from None
        parts = urllib.parse.urlsplit(self.server.url)
        if self._heard or parts.scheme != "http":
            return
        if any(isinstance(e, (http.client.RemoteDisconnected, http.client.BadStatusLine))
               for e in exception_chain(exc)):
            self._heard = True  # testa uma vez só
            if speaks_tls(parts.hostname or "", parts.port or 80, self.config.connect_timeout):
                raise tls_error(self.server, "http_em_https") from None

    def _check_scheme(self, resp: Any) -> None:
        """Uma resposta chegou; se é a página de proxy de "http numa porta https", TlsError (código 2);
        se é um redirecionamento, Redirected (código 2)."""
        self._heard = True
        self._check_redirect(resp)
        if resp.status_code == 400 and plain_http_refused(resp.status_code, resp.text):
            raise tls_error(self.server, "http_em_https")

    def _check_redirect(self, resp: Any) -> None:
        """Qualquer 3xx para a execução com código 2, nomeando o status e o Location: a URL do .env é que
        está errada (http em vez de https, endereço antigo). Nada é mandado ao destino."""
        if 300 <= resp.status_code < 400:
            raise redirect_error(self.server, resp.status_code, resp.headers.get("Location"), resp.url)

    def _watch_large_body(self, resp: Any, **_: Any) -> None:
        """Gancho de resposta do requests (chamado com os cabeçalhos, antes de o corpo ser lido): uma
        resposta GET grande (ou sem Content-Length) ganha o andamento do que já chegou (watch_body), no
        terminal e no log; nunca no --json nem com --sem-progresso."""
        if not self.config.progress or resp.request.method != "GET":
            return
        try:
            total: int | None = int(resp.headers.get("Content-Length") or "")
        except ValueError:
            total = None
        if total is not None and total < LARGE_BODY:
            return
        label = f"{self.server.label}: GET {urllib.parse.urlsplit(resp.url).path}"
        threading.Thread(target=watch_body, args=(resp.raw, label, total, sys.stdout), daemon=True).start()

    def _host_not_found(self) -> HostNotFound:
        host = urllib.parse.urlsplit(self.server.url).hostname
        return HostNotFound(
            f"{self.server.label}: o nome '{host}' não foi encontrado (DNS). Confira a URL em "
            f"{env_name(self.server)} e a conexão com a internet."
        )

    def login(self) -> str:
        handed = run_context().handoff.pop(self._handoff_key(), None) if self.token is None else None
        if handed is not None and not isinstance(handed, BaseException):  # login já feito em connect_servers
            self.token, self.role, self.waited_seconds = handed
            self._token_generation += 1
            self.logged_at = time.monotonic()
            return self.role
        resp = self._send("POST", "/admin/login",
                          {"username": self.server.username, "password": self.server.password}, auth=False)
        body = resp.body if isinstance(resp.body, dict) else {}
        if resp.status in (400, 401):
            raise AuthError(
                f"{self.server.label}: login recusado para o usuário '{self.server.username}' "
                f"({body.get('error') or 'HTTP ' + str(resp.status)}). Confira usuário e senha.",
                resp.status,
            )
        if resp.status in (404, 405) and resp.kind != "json":
            raise self._mismatch("POST /admin/login", describe_answer(resp.status, resp.kind))
        token = body.get("token")
        if resp.status != 200 or not isinstance(token, str) or not token:
            raise ApiError(f"{self.server.label}: resposta inesperada ao fazer login ({_status_text(resp)}).",
                           resp.status)
        add_secret(token)
        role = body.get("role")
        if role != "admin":
            raise AuthError(
                f"{self.server.label}: a conta '{self.server.username}' tem papel '{role}', não 'admin'. "
                "Com uma conta comum a API mostra só parte das licenças; use uma conta de administrador."
            )
        self.token = token
        self.role = role
        self._token_generation += 1
        self.logged_at = time.monotonic()
        return role

    def list_items(self, path: str) -> list[Any]:
        resp = self.request("GET", path)
        if resp.status != 200:
            raise ApiError(f"{self.server.label}: GET {path} respondeu {_status_text(resp)}.", resp.status)
        if resp.body is None:
            raise ApiError(f"{self.server.label}: GET {path} não devolveu JSON "
                           "(página HTML de proxy ou resposta cortada).")
        if not isinstance(resp.body, dict) or "items" not in resp.body:
            raise ApiError(f"{self.server.label}: GET {path} devolveu JSON sem o campo 'items'.")
        if not isinstance(resp.body["items"], list):
            raise ApiError(f"{self.server.label}: GET {path} devolveu 'items' que não é uma lista.")
        self.listings[path] = resp.body["items"]  # cru, com ids locais (para achar o mesmo servidor duas vezes)
        return resp.body["items"]


_WAITING_PAGE = re.compile(r"wak|start|iniciando|acordando|loading|carregando|aguarde|please wait|refresh|"
                           r"spinning|sleep|dormindo|booting|deploy", re.I)


def describe_answer(status: int, kind: str, detail: str = "") -> str:
    what = {"json": "um JSON", "html": "uma página HTML"}.get(kind, "um conteúdo que não é JSON")
    return f"HTTP {status} com {what}{detail}"


def health_verdict(resp: Any) -> tuple[HealthVerdict, str]:
    """Classifica a resposta de GET /health: (OK, ""), (WAIT, motivo) enquanto o host acorda
    (5xx, 408, 429, corpo JSON cortado, página de espera do host) ou (OTHER, o que respondeu) quando
    não é a API de licenças (404, outro JSON, página HTML que não é de espera)."""
    status = resp.status_code
    kind = _content_kind(resp)
    try:
        body = resp.json()
    except ValueError:
        body = None
    if status == 200 and isinstance(body, dict) and body.get("status") == "ok":
        return HealthVerdict.OK, ""
    if status >= 500 or status in (408, 425, 429):
        return HealthVerdict.WAIT, f"HTTP {status}"
    if 200 <= status < 300 and body is None and kind == "json":
        return HealthVerdict.WAIT, f"HTTP {status} com JSON cortado"
    if 200 <= status < 300 and kind == "html" and _WAITING_PAGE.search(resp.text[:20000]):
        return HealthVerdict.WAIT, f"HTTP {status} com página de espera do host"
    if body is not None:
        return HealthVerdict.OTHER, describe_answer(status, "json",
                                                    f" que não é o da API ({mask(resp.text[:80])!r})")
    return HealthVerdict.OTHER, describe_answer(status, kind)


def same_server_groups(listings: dict[str, tuple[list[Any], list[Any]]]) -> list[list[str]]:
    """URLs cujas listagens cruas (usuários e licenças, com os ids locais e created_at de cada servidor)
    são idênticas e NÃO vazias, em grupos de 2 ou mais, na ordem dada. Servidores diferentes, mesmo com os
    mesmos dados sincronizados, têm ids e created_at diferentes; listagens idênticas com registros indicam o
    mesmo servidor (ou um banco copiado). Duas listagens vazias são iguais sem provar nada: ficam de fora."""
    groups: dict[str, list[str]] = {}
    for url, (users, devices) in listings.items():
        if not users and not devices:
            continue
        key = json.dumps([sorted(json.dumps(u, sort_keys=True, default=str) for u in users),
                          sorted(json.dumps(d, sort_keys=True, default=str) for d in devices)])
        groups.setdefault(key, []).append(url)
    return [urls for urls in groups.values() if len(urls) > 1]


def check_distinct_servers(clients: Iterable["ApiClient"]) -> None:
    """Recusa (ConfigError, código 2) duas URLs configuradas que levam ao mesmo servidor, antes de
    qualquer escrita. Chamar depois das listagens (ApiClient.listings) e antes de planejar. Sem requisição extra.

    Regra: listagens cruas idênticas e não vazias, com os ids internos e o created_at de cada registro
    (same_server_groups). O token não serve de prova: todos os servidores de um vendedor têm o mesmo
    SHARED_SECRET, e o token de um vale nos outros; duas listagens vazias também não provam nada (dois
    backups novos). Uma prova de que são dois servidores evita a recusa: o mesmo usuário entrou nas duas
    URLs com senhas DIFERENTES (um servidor só tem uma senha por usuário) — o caso de um backup feito por
    cópia do banco que ainda não mudou."""
    by_url = {c.server.url: c for c in clients
              if "/admin/users" in c.listings and "/admin/devices" in c.listings and c.token}
    listings = {url: (c.listings["/admin/users"], c.listings["/admin/devices"]) for url, c in by_url.items()}
    for group in same_server_groups(listings):
        first = by_url[group[0]].server
        for url in group[1:]:
            other = by_url[url].server
            if first.username == other.username and first.password != other.password:
                continue  # as duas senhas funcionaram: são dois servidores (banco copiado)
            raise ConfigError(
                f"{first.label} e {other.label} são o MESMO servidor (as mesmas licenças e usuários, com os "
                "mesmos ids internos e datas de criação). Um backup precisa ser outro servidor: corrija "
                "SERVIDOR_PRINCIPAL / SERVIDOR_BACKUP. Se o backup foi feito copiando o banco do principal, troque "
                "a senha do administrador no backup e configure-a em BACKUP_ADMIN_PASSWORD. Nada foi gravado."
            )


FOREIGN_MIN_RECORDS = 10  # registros (licenças + usuários) a partir dos quais um backup sem nada em comum é "de outro"


def _shared_keys(snap: "Snapshot") -> tuple[set[str], set[str]]:
    """Chaves de licenças (as fora do plano também) e de usuários, comparáveis com folga: sem espaços nas pontas,
    sem acentos e sem maiúsculas (um backup MySQL guarda 'ABC' e 'abc' como uma só)."""
    return ({mysql_key(k.strip()) for k in list(snap.licenses) + list(snap.rejected)},
            {mysql_key(u.strip()) for u in snap.users})


def foreign_backup(primary: "Snapshot", backup: "Snapshot", into_primary: bool = False) -> str | None:
    """O que foi achado, quando o `backup` não parece ser um backup deste `primary` (None quando parece).
    Quem chama só pergunta quando não há estado salvo do par (com estado, valem as travas de perda de dados).

    Regra: o backup tem FOREIGN_MIN_RECORDS (10) registros ou mais, somando licenças e usuários, e NENHUMA
    licença nem usuário em comum com o principal, que tem algum registro. Por quê: um backup de verdade que nunca
    foi sincronizado está vazio ou quase (só o admin de fábrica; no máximo umas vendas que os clientes fizeram
    nele enquanto o principal estava fora: menos de 10 passa e elas são relatadas como "só no backup"); um
    backup que já recebeu algo do principal tem pelo menos uma chave em comum. Muitos registros e nada em comum
    é o servidor de outro vendedor (uma URL copiada por engano): sincronizar escreveria nele e as licenças dele
    pareceriam "vendas feitas no backup" a levar ao principal. Um principal sem nenhum registro fica de fora ao
    sincronizar num sentido só: é a regra da perda de dados (voltou vazio), que para o par e diz como
    recompletá-lo. Quando o par grava no principal (`into_primary`: restaurar e bidirecional) não: nada prova que
    um servidor cheio é backup de um principal vazio sem estado do par, e o par copiaria para o principal tudo o
    que ele tem (no bidirecional sem estado, um lado vazio é só a primeira sincronização para a trava de perda)."""
    empty = not primary.license_count and not primary.users
    if empty and not into_primary:
        return None
    total = backup.license_count + len(backup.users)
    if total < FOREIGN_MIN_RECORDS:
        return None
    if empty:
        return (f"o principal está vazio, o backup {backup.server_url} tem "
                f"{plural(backup.license_count, 'licença')} e {plural(len(backup.users), 'usuário')}, e não há "
                "estado salvo deste par: nada prova que ele é um backup deste principal")
    (p_licenses, p_users), (b_licenses, b_users) = _shared_keys(primary), _shared_keys(backup)
    if p_licenses & b_licenses or p_users & b_users:
        return None
    return (f"o backup {backup.server_url} tem {plural(backup.license_count, 'licença')} e "
            f"{plural(len(backup.users), 'usuário')} e nenhum é do principal (que tem "
            f"{plural(primary.license_count, 'licença')} e {plural(len(primary.users), 'usuário')}), e não há "
            "estado salvo deste par: não parece ser um backup deste principal")


def foreign_backup_error(found: str, d: "Direction") -> str:
    """A recusa do par, em português, com o que conferir e a saída para quem sabe que o servidor é seu.
    Nunca sugere copiar esse servidor para o principal."""
    if d.restore:
        risk, where = "restaurar a partir dele traria para o principal licenças e usuários de outro servidor", \
            "--de / SERVIDOR_BACKUP"
        way_out = "Só se tiver certeza de que é um backup seu com as licenças deste principal, rode com"
    else:
        risk, where = "sincronizar gravaria nele as licenças do principal", "SERVIDOR_BACKUP"
        way_out = "Se é mesmo um backup seu (os registros que só ele tem continuam lá), rode uma vez com"
    return (f"{found} (URL de outro servidor copiada por engano?): {risk}. NADA foi gravado no principal nem no "
            f"backup. Confira {where}. {way_out} --aceitar-backup-desconhecido {d.backup.url}.")


def _api_error(resp: Response) -> str | None:
    """Mensagem de erro do servidor (texto livre: mascarada aqui, onde nasce)."""
    message = resp.body.get("error") if isinstance(resp.body, dict) else None
    return None if message is None else mask(message)


def _status_text(resp: Response) -> str:
    message = _api_error(resp)
    if message is None and 200 <= resp.status < 300:
        return f"HTTP {resp.status} sem a confirmação JSON da API (página de proxy ou de hospedagem?)"
    return f"HTTP {resp.status}" + (f": {message}" if message else "")


def proven(resp: Response) -> bool:
    """Uma escrita só conta com a resposta JSON da própria API: 2xx e {"success": true} ou {"ok": true}.
    Um 200 com página HTML (proxy, túnel, aviso da hospedagem) não prova nada."""
    body = resp.body
    return 200 <= resp.status < 300 and isinstance(body, dict) and (
        body.get("success") is True or body.get("ok") is True)


# ============================================================================
# Retrato: busca, valida e normaliza os dados de um servidor
# ============================================================================

class RecordKind(TextEnum):
    """O tipo de registro de uma listagem, de um problema ou de uma divergência (o texto vai ao JSON)."""
    USER = "usuario"
    LICENSE = "licenca"

    @property
    def noun(self) -> str:
        return "usuário" if self is RecordKind.USER else "licença"


class ProblemKind(str, enum.Enum):
    """Por que um registro ficou de fora do plano (o relatório traduz em português)."""
    NOT_OBJECT = "nao_e_objeto"
    NO_KEY = "sem_chave"
    DUPLICATE = "duplicado"
    UNREACHABLE = "inalcancavel"  # id com espaços nas pontas: o /verify nunca o encontra
    BAD_TYPE = "tipo_inesperado"
    TOO_LONG = "texto_grande_demais"
    UNKNOWN_LICENSE_TYPE = "tipo_de_licenca_desconhecido"
    BAD_DATE = "data_invalida"
    UNKNOWN_ROLE = "papel_desconhecido"


@dataclasses.dataclass(frozen=True)
class Problem:
    """Registro de uma listagem que não entra no plano; `text` já é a explicação em português."""
    kind: RecordKind
    key: str
    reason: ProblemKind
    text: str

    def as_dict(self) -> dict[str, str]:
        return {"tipo": self.kind, "chave": self.key, "motivo": self.reason.value, "problema": self.text}


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    username: str
    email: str | None
    role: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class License:
    device_id: str
    owner_name: str | None
    cpf: str | None
    email: str | None
    address: str | None
    license_type: str | None
    created_by: str | None
    status: LicenseStatus | str | None  # LicenseStatus.parse: o texto cru só quando é desconhecido
    start_date: dt.date | str | None = None  # texto quando o formato é desconhecido (valor opaco)
    end_date: dt.date | None = None
    custom_interval: Any = None  # opaco: o PIX grava o que recebe ("30min", 60...)
    features: Any = None  # opaco
    # o license_type exatamente como o servidor o guarda, só quando tem espaços nas pontas ('anual ', importação
    # antiga): é esse que o veredito do servidor usa (verdict_type); license_type é o que um upsert gravaria
    stored_type: str | None = None

    def settable(self) -> tuple:
        return (self.owner_name, self.cpf, self.email, self.address, self.license_type, self.created_by)

    def desired_settable(self) -> tuple:
        """O que o backup guardará ao receber este registro (created_by vazio vira 'admin')."""
        return self.settable()[:-1] + (self.created_by or DEFAULT_CREATED_BY,)

    def payload(self) -> dict[str, Any]:
        """Registro completo para o upsert. Campos vazios vão omitidos: a API grava o campo omitido
        como nulo (é o mesmo efeito), e um servidor real pode não aceitar null explícito."""
        values = dict(zip(SETTABLE_FIELDS, self.desired_settable(), strict=True))
        return {"device_id": self.device_id, **{k: v for k, v in values.items() if v is not None}}


@dataclasses.dataclass
class Snapshot:
    server_url: str
    users: dict[str, User]
    licenses: dict[str, License]  # só registros que o plano pode usar
    problems: list[Problem] = dataclasses.field(default_factory=list)
    login_username: str | None = None
    # licenças que não entram no plano: chave → melhor leitura possível (None = veredito desconhecido)
    rejected: dict[str, License | None] = dataclasses.field(default_factory=dict)
    # device_id → `id` local do servidor (AUTOINCREMENT: a ordem de criação; uma cópia restaurada o reusa)
    server_ids: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def invalid_keys(self) -> set[str]:
        return set(self.rejected)

    @property
    def license_count(self) -> int:
        """Quantas licenças o servidor listou (as fora do plano também contam: não sumiram)."""
        return len(self.licenses) + len(self.rejected)

    @property
    def unreachable(self) -> set[str]:
        """Ids com espaços nas pontas (o cliente nunca os alcança): ficam fora do plano."""
        return {p.key for p in self.problems if p.reason == ProblemKind.UNREACHABLE}


def normalize_text(value: Any, field: str, key: str) -> str | None:
    """Como o servidor guarda textos: sem espaços nas pontas, vazio vira nulo."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _RecordError(ProblemKind.BAD_TYPE, f"campo '{field}' com tipo inesperado ({type(value).__name__})")
    value = value.strip()
    return value or None


class _RecordError(Exception):
    """Um registro só não pode ser usado (o resto da listagem segue)."""

    best_effort: License  # só quando _rejected() o põe (quem lê usa getattr com None)

    def __init__(self, reason: ProblemKind, text: str):
        super().__init__(text)
        self.reason, self.text = reason, text


_RFC1123 = re.compile(r"^[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4}")


def parse_date(value: Any) -> dt.date | None:
    """Aceita AAAA-MM-DD (com ou sem hora) e o formato RFC 1123 do Flask; None se vazio."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip()
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        return dt.date.fromisoformat(text[:10])
    if _RFC1123.match(text):
        return email.utils.parsedate_to_datetime(text).date()
    raise ValueError(value)


def opaque(value: Any) -> Any:
    """Campo que a ferramenta não copia: guardado como veio (listas e objetos viram JSON canônico)."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return value


def _item_key(item: Any, index: int, key_field: str, strip: bool) -> str:
    if not isinstance(item, dict):
        raise _RecordError(ProblemKind.NOT_OBJECT, f"o item {index + 1} da lista não é um objeto JSON")
    key = item.get(key_field)
    if not isinstance(key, str) or (strip and not key.strip()):
        raise _RecordError(ProblemKind.NO_KEY, f"o item {index + 1} da lista não tem '{key_field}' válido")
    if not key.strip():
        raise _RecordError(ProblemKind.UNREACHABLE, "id vazio (ou só de espaços): nenhum cliente alcança este "
                                                    "registro; não é copiado")
    if key != key.strip() and not strip:
        raise _RecordError(ProblemKind.UNREACHABLE,
                           "id com espaços nas pontas: nenhum cliente alcança este registro (o servidor tira "
                           "os espaços do id na verificação); não é copiado")
    return key.strip() if strip else key


def _parse_listing(items: list[Any], key_field: str, kind: RecordKind, parse_one: Callable[[dict[str, Any], str], Any],
                   strip_keys: bool) -> tuple[dict[str, Any], list[Problem], dict[str, Any]]:
    """Valida registro a registro: um registro ruim fica de fora (e anotado); o resto segue.
    Devolve (registros bons, problemas, rejeitados: chave → melhor leitura ou None)."""
    records: dict[str, Any] = {}
    problems: list[Problem] = []
    rejected: dict[str, Any] = {}
    for index, item in enumerate(items):
        try:
            key = _item_key(item, index, key_field, strip_keys)
        except _RecordError as exc:
            raw = item.get(key_field) if isinstance(item, dict) else None
            label = raw if isinstance(raw, str) and raw.strip() else f"item {index + 1}"
            problems.append(Problem(kind, label, exc.reason, exc.text))
            continue
        if key in records or key in rejected:
            noun = "usuário" if kind == RecordKind.USER else key_field
            problems.append(Problem(kind, key, ProblemKind.DUPLICATE, f"{noun} duplicado na listagem: {key!r}"))
            records.pop(key, None)
            rejected[key] = None
            continue
        try:
            records[key] = parse_one(item, key)
        except _RecordError as exc:
            problems.append(Problem(kind, key, exc.reason, exc.text))
            rejected[key] = getattr(exc, "best_effort", None)
    return records, problems, rejected


def parse_user(item: dict[str, Any], key: str) -> User:
    user = User(key, normalize_text(item.get("email"), "email", key), normalize_text(item.get("role"), "role", key))
    if user.role not in USER_ROLES:
        raise _RecordError(ProblemKind.UNKNOWN_ROLE, f"papel desconhecido {user.role!r}")
    return user


def parse_users(items: list[Any]) -> tuple[dict[str, User], list[Problem]]:
    users, problems, _ = _parse_listing(items, "username", RecordKind.USER, parse_user, strip_keys=True)
    return users, problems


def parse_license(item: dict[str, Any], key: str) -> License:
    """Só o que o plano usa pode recusar um registro: textos copiáveis, tipo e data de fim. Os campos
    que a ferramenta não copia (custom_interval, features, last_seen_*, início em formato estranho)
    ficam como vieram."""
    texts = {name: normalize_text(item.get(name), name, key) for name in SETTABLE_FIELDS}
    status = item.get("status")
    if status is not None and not isinstance(status, str):
        raise _RecordError(ProblemKind.BAD_TYPE, f"campo 'status' com tipo inesperado ({type(status).__name__})")
    texts["status"] = status  # para o limite de tamanho; o status do registro é o LicenseStatus.parse
    status = LicenseStatus.parse(status)  # como o servidor compara: "blocked " (com espaço) não é bloqueada
    start_raw = item.get("start_date")
    try:
        start = parse_date(start_raw)
    except (ValueError, TypeError, OverflowError):
        start = opaque(start_raw)
    raw_type = item.get("license_type")
    stored_type = raw_type if texts["license_type"] and raw_type != texts["license_type"] else None
    lic = License(device_id=key, **{name: texts[name] for name in SETTABLE_FIELDS}, status=status,
                  start_date=start, end_date=None, custom_interval=opaque(item.get("custom_interval")),
                  features=opaque(item.get("features")), stored_type=stored_type)
    try:
        lic = dataclasses.replace(lic, end_date=parse_date(item.get("end_date")))
    except (ValueError, TypeError, OverflowError):
        raise _rejected(lic, ProblemKind.BAD_DATE,
                        f"data inválida em 'end_date': {str(item.get('end_date'))[:40]!r}") from None
    for name, value in texts.items():
        if value and len(value) > MAX_TEXT_LEN:
            raise _rejected(lic, ProblemKind.TOO_LONG, f"campo '{name}' com {len(value)} caracteres "
                                                      f"(limite {MAX_TEXT_LEN})")
    if lic.license_type not in LICENSE_PERIOD_MONTHS:
        raise _rejected(lic, ProblemKind.UNKNOWN_LICENSE_TYPE, f"tipo de licença desconhecido {lic.license_type!r}")
    if lic.end_date is None and LICENSE_PERIOD_MONTHS.get(verdict_type(lic) or "") \
            and isinstance(lic.start_date, str):
        raise _rejected(lic, ProblemKind.BAD_DATE, f"data inválida em 'start_date' sem 'end_date': "
                                                  f"{lic.start_date[:40]!r} (o vencimento não pode ser calculado)")
    return lic


def _rejected(lic: License, reason: ProblemKind, text: str) -> _RecordError:
    """Erro de registro que leva a melhor leitura possível (para manter o veredito negado no backup)."""
    error = _RecordError(reason, text)
    error.best_effort = lic
    return error


def rejected_verdict(snap: Snapshot, key: str, today: dt.date) -> bool | None:
    """Veredito de um registro fora do plano: True/False quando dá para saber, None quando não dá
    (chave duplicada, data ilegível num registro que não está bloqueado nem pendente)."""
    lic = snap.rejected.get(key)
    if lic is None:
        return None
    if lic.status in (BLOCKED, PENDING):
        return False
    if any(p.key == key and p.reason == ProblemKind.BAD_DATE for p in snap.problems):
        return None
    return allows(lic, today)


def parse_licenses(items: list[Any]) -> tuple[dict[str, License], list[Problem], dict[str, License | None]]:
    return _parse_listing(items, "device_id", RecordKind.LICENSE, parse_license, strip_keys=False)


def fetch_snapshot(client: ApiClient) -> Snapshot:
    """Busca usuários e licenças. Só a listagem inteira fora do formato (não é JSON, sem 'items'...) levanta
    ApiError (o par é pulado, código 4); um registro ruim fica de fora sozinho (Snapshot.problems)."""
    users, user_problems = parse_users(client.list_items("/admin/users"))
    items = client.list_items("/admin/devices")
    licenses, license_problems, rejected = parse_licenses(items)
    return Snapshot(client.server.url, users, licenses, user_problems + license_problems,
                    login_username=client.server.username, rejected=rejected, server_ids=server_ids(items))


def server_ids(items: list[Any]) -> dict[str, int]:
    """device_id → `id` local de cada item da listagem (só ids inteiros; o resto fica de fora)."""
    found: dict[str, int] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("device_id"), str) and type(item.get("id")) is int:
            found[item["device_id"]] = item["id"]
    return found


# ============================================================================
# Rota de falha dos clientes: GET /servers de cada servidor × servidores sincronizados
# ============================================================================
# Os programas dos clientes baixam GET /servers e, quando um servidor não responde, tentam as URLs
# dessa lista em ordem. A redundância só vale se essa rota passa apenas por servidores que esta
# ferramenta mantém iguais ao principal. Esta seção lê a lista de cada servidor (uma GET pública por
# servidor, sem token), compara com SERVIDOR_PRINCIPAL + SERVIDOR_BACKUP (+ SERVIDORES_APELIDOS) e
# descreve o que está fora. Os achados vão para o relatório, o --json, o verificar (código 1 para URL
# não sincronizada ou lista padrão), o histórico e o painel; nunca mudam o código de saída da
# sincronização. O /status.json continua só sobre a saúde da sincronização: um monitor que avisa
# "backup atrasado" não deve disparar por uma configuração que só o vendedor pode corrigir.

FAILOVER_PATH = "/servers"
FAILOVER_CHECK_MEANING = "a rota de falha dos clientes passa por servidor que esta ferramenta não sincroniza"


class ListState(str, enum.Enum):
    PUBLISHED = "publicada"
    UNKNOWN = "desconhecida"  # sem a rota /servers, página de proxy ou JSON fora do formato
    NOT_ASKED = "nao_consultada"  # servidor inacessível nesta execução (o erro já aparece no par)


class FindingKind(str, enum.Enum):
    UNSYNCED = "url_nao_sincronizada"  # grave: clientes atendidos por dados que ninguém mantém
    BUILTIN = "lista_padrao"  # grave: nenhum servidor configurado na lista (a de fábrica do servidor)
    UNREACHED = "backup_fora_da_lista"  # backup sincronizado que os clientes nunca alcançam
    PRIMARY_NOT_FIRST = "principal_fora_do_topo"
    DIFFERENT_LISTS = "listas_diferentes"


SERIOUS_FINDINGS = (FindingKind.UNSYNCED, FindingKind.BUILTIN)


@dataclasses.dataclass(frozen=True)
class ServerList:
    """O que um servidor publicou em GET /servers."""
    server: str
    role: Role
    state: ListState
    published: tuple[str, ...] = ()  # URLs normalizadas, na ordem publicada (como o cliente as vê)
    canonical: tuple[str, ...] = ()  # as mesmas, com apelidos trocados pelo servidor configurado


@dataclasses.dataclass(frozen=True)
class FailoverFinding:
    kind: FindingKind
    servers: tuple[str, ...]  # servidores que publicam a lista em questão
    url: str | None = None  # URL de que o achado fala
    position: int | None = None  # posição na lista (1 = a primeira que o cliente tenta)
    before: tuple[str, ...] = ()  # URLs que o cliente tenta antes desta
    urls: tuple[str, ...] = ()  # a lista inteira (lista padrão)
    lists: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (servidor, lista) quando as listas diferem

    @property
    def serious(self) -> bool:
        return self.kind in SERIOUS_FINDINGS

    @property
    def message(self) -> str:
        return _FINDING_TEXT[self.kind](self)


@dataclasses.dataclass(frozen=True)
class FailoverReport:
    primary: str
    configured: tuple[str, ...]  # principal primeiro, depois os backups
    lists: tuple[ServerList, ...]
    findings: tuple[FailoverFinding, ...]
    aliases: tuple[tuple[str, str], ...] = ()  # (apelido, servidor configurado)

    @property
    def serious(self) -> bool:
        return any(f.serious for f in self.findings)

    @property
    def unknown(self) -> tuple[ServerList, ...]:
        return tuple(s for s in self.lists if s.state == ListState.UNKNOWN)

    @property
    def off(self) -> bool:
        """Algo a mostrar: um achado ou uma lista que não pôde ser lida."""
        return bool(self.findings or self.unknown)


def parse_aliases(raw: str | None, servers: list[str]) -> dict[str, str]:
    """SERVIDORES_APELIDOS: "URL=URL" separados por vírgula; cada item liga dois endereços do MESMO
    servidor (ex.: o domínio próprio na frente do endereço da hospedagem). Um dos lados tem de ser um
    servidor configurado (SERVIDOR_PRINCIPAL ou SERVIDOR_BACKUP); o outro é o apelido. Devolve
    {apelido: servidor configurado}, com URLs normalizadas."""
    aliases: dict[str, str] = {}
    for item in (part.strip() for part in str(raw or "").split(",")):
        if not item:
            continue
        sides = item.split("=")
        if len(sides) != 2 or not all(side.strip() for side in sides):
            raise ConfigError(f"SERVIDORES_APELIDOS: use URL=URL em cada item (recebido: {item!r}).")
        try:
            first, second = (normalize_url(side) for side in sides)
        except ConfigError as exc:
            raise ConfigError(f"SERVIDORES_APELIDOS: {exc}") from None
        if (first in servers) == (second in servers):
            which = "os dois são servidores configurados" if first in servers else "nenhum é servidor configurado"
            raise ConfigError(f"SERVIDORES_APELIDOS: em {first}={second} {which}; um lado deve ser uma URL de "
                              "SERVIDOR_PRINCIPAL ou SERVIDOR_BACKUP e o outro o endereço alternativo dela.")
        alias, target = (second, first) if first in servers else (first, second)
        if aliases.setdefault(alias, target) != target:
            raise ConfigError(f"SERVIDORES_APELIDOS: {alias} aparece como apelido de dois servidores "
                              f"({aliases[alias]} e {target}).")
    return aliases


def parse_failover_body(body: Any) -> list[str] | None:
    """A lista de GET /servers, ou None quando a resposta não tem o formato do contrato."""
    servers = body.get("servers") if isinstance(body, dict) else None
    if not isinstance(servers, list) or not all(isinstance(url, str) for url in servers):
        return None
    return servers


def fetch_failover_list(client: ApiClient) -> list[str] | None:
    """Uma GET /servers (pública: sem token) pela sessão do cliente. None quando o servidor não tem a
    rota ou responde outra coisa; nunca levanta exceção: a rota de falha não decide a execução."""
    try:
        resp = client.session.get(client.server.url + FAILOVER_PATH, headers={"Accept": "application/json"},
                                  timeout=(client.config.connect_timeout, client.config.timeout))
        return parse_failover_body(resp.json()) if resp.status_code == 200 else None
    except Exception:  # rede, JSON inválido, página HTML: tudo vira "lista desconhecida"
        return None


def start_failover_check(config: Config, clients: list[ApiClient]) -> Callable[[], FailoverReport | None]:
    """Começa as GET /servers em paralelo (junto com os retratos) e devolve a função que espera por
    elas e monta o relatório. Em restaurar (a origem é um backup: Direction.role_of) nada é consultado."""
    if config.mode == Mode.RESTORE:
        return lambda: None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(clients)))
    futures = {client.server.url: pool.submit(fetch_failover_list, client) for client in clients}
    pool.shutdown(wait=False)
    configured = [config.primary.url] + [backup.url for backup in config.backups]
    return lambda: check_failover(configured, {url: f.result() for url, f in futures.items()}, config.aliases)


def _canonical(url: str, aliases: dict[str, str]) -> str:
    try:
        normalized = normalize_url(url)
    except ConfigError:  # URL que o cliente nem consegue usar: aparece como está
        return url.strip()
    return aliases.get(normalized, normalized)


def _server_list(server: str, role: Role, raw: list[str] | None, asked: bool, aliases: dict[str, str]) -> ServerList:
    if raw is None:
        return ServerList(server, role, ListState.UNKNOWN if asked else ListState.NOT_ASKED)
    published, canonical = [], []
    for url in (u for u in raw if u.strip()):
        display = _canonical(url, {})
        if display not in published:
            published.append(display)
        mapped = aliases.get(display, display)
        if mapped not in canonical:
            canonical.append(mapped)
    return ServerList(server, role, ListState.PUBLISHED, tuple(published), tuple(canonical))


def _list_findings(canon: tuple[str, ...], servers: tuple[str, ...],
                   configured: tuple[str, ...]) -> list[FailoverFinding]:
    """Achados de uma lista (publicada igual por `servers`)."""
    primary, synced = configured[0], set(configured)
    if canon and not synced & set(canon):
        return [FailoverFinding(FindingKind.BUILTIN, servers, urls=canon)]
    found = [FailoverFinding(FindingKind.UNSYNCED, servers, url, index + 1, canon[:index])
             for index, url in enumerate(canon) if url not in synced]
    found += [FailoverFinding(FindingKind.UNREACHED, servers, url) for url in configured[1:] if url not in canon]
    if not canon or canon[0] != primary:
        position = canon.index(primary) + 1 if primary in canon else None
        found.append(FailoverFinding(FindingKind.PRIMARY_NOT_FIRST, servers, primary, position, urls=canon))
    return found


def check_failover(configured: list[str], lists: dict[str, list[str] | None],
                   aliases: dict[str, str] | None = None) -> FailoverReport:
    """Compara a lista publicada por cada servidor com os servidores configurados (principal primeiro).
    `lists`: {servidor: lista lida | None (desconhecida)}; servidor ausente = não consultado. Puro."""
    aliases = aliases or {}
    configured_t = tuple(configured)
    server_lists = tuple(_server_list(url, Role.PRIMARY if index == 0 else Role.BACKUP, lists.get(url), url in lists,
                                      aliases) for index, url in enumerate(configured_t))
    groups: dict[tuple[str, ...], list[str]] = {}
    for item in server_lists:
        if item.state == ListState.PUBLISHED:
            groups.setdefault(item.canonical, []).append(item.server)
    findings = [f for canon, servers in groups.items() for f in _list_findings(canon, tuple(servers), configured_t)]
    if len(groups) > 1:
        published = tuple((s.server, s.published) for s in server_lists if s.state == ListState.PUBLISHED)
        findings.append(FailoverFinding(FindingKind.DIFFERENT_LISTS, tuple(s for s, _ in published), lists=published))
    findings.sort(key=lambda f: not f.serious)  # os graves primeiro
    return FailoverReport(configured_t[0], configured_t, server_lists, tuple(findings), tuple(sorted(aliases.items())))


def failover_check_code(report: FailoverReport | None, check: bool, code: int) -> ExitCode:
    """verificar sai com 1 quando a rota de falha passa por URL não sincronizada (ou pela lista padrão);
    a sincronização normal não muda de código por isso."""
    return run_exit_code([code], problems=check and report is not None and report.serious)


def _who(servers: tuple[str, ...]) -> str:
    return servers[0] if len(servers) == 1 else ", ".join(servers[:-1]) + " e " + servers[-1]


def _publish(servers: tuple[str, ...]) -> str:
    return f"{_who(servers)} {'publica' if len(servers) == 1 else 'publicam'}"


def _failover_route(urls: tuple[str, ...]) -> str:
    return " → ".join(urls) if urls else "(vazia)"


def _text_unsynced(f: FailoverFinding) -> str:
    when = ("sempre: é a primeira da lista" if not f.before
            else f"quando {_who(f.before)} não {'responde' if len(f.before) == 1 else 'respondem'}")
    return (f"{_publish(f.servers)} {f.url} (posição {f.position} da lista), que esta ferramenta NÃO sincroniza. "
            f"Em risco: os clientes que baixaram a lista de {_who(f.servers)}; o programa deles consulta "
            f"{f.url} {when}, e lá as respostas (liberada/negada) vêm de dados que ninguém mantém iguais ao "
            f"principal. Corrija: inclua {f.url} em SERVIDOR_BACKUP ou tire-a de LICENSE_SERVERS "
            f"{'nesse servidor' if len(f.servers) == 1 else 'nesses servidores'} (se for outro endereço de um "
            "servidor já configurado, declare-o em SERVIDORES_APELIDOS).")


def _text_builtin(f: FailoverFinding) -> str:
    return (f"{_publish(f.servers)} uma lista sem nenhum dos servidores configurados: provavelmente a lista "
            f"padrão do servidor, não a sua ({_failover_route(f.urls)}). Em risco: todos os clientes que "
            "baixaram essa lista; quando o servidor deles não responde, caem em servidores de outra pessoa, "
            "com outros dados. "
            f"Corrija: defina LICENSE_SERVERS {'nesse servidor' if len(f.servers) == 1 else 'nesses servidores'} "
            "com o principal e os backups, nessa ordem.")


def _text_unreached(f: FailoverFinding) -> str:
    return (f"O backup {f.url} é sincronizado, mas não está na lista de {_who(f.servers)}: os clientes dessa "
            f"lista nunca chegam a ele (redundância desperdiçada). Inclua-o em LICENSE_SERVERS.")


def _text_primary(f: FailoverFinding) -> str:
    if not f.urls:
        return (f"A lista de {_who(f.servers)} está vazia: quando o servidor não responde, os clientes não têm "
                "para onde ir. Defina LICENSE_SERVERS com o principal e os backups.")
    where = "não está na lista" if f.position is None else f"está na posição {f.position} da lista"
    return (f"O principal {f.url} {where} de {_who(f.servers)}: os clientes tentam primeiro {f.urls[0]}. "
            "Coloque o principal no início de LICENSE_SERVERS.")


def _text_different(f: FailoverFinding) -> str:
    return ("Os servidores publicam listas diferentes: clientes do mesmo programa caem em servidores "
            "diferentes conforme o servidor de onde baixaram a lista. Use o mesmo LICENSE_SERVERS em todos.")


_FINDING_TEXT: dict[FindingKind, Callable[[FailoverFinding], str]] = {
    FindingKind.UNSYNCED: _text_unsynced, FindingKind.BUILTIN: _text_builtin, FindingKind.UNREACHED: _text_unreached,
    FindingKind.PRIMARY_NOT_FIRST: _text_primary, FindingKind.DIFFERENT_LISTS: _text_different,
}
_UNKNOWN_TEXT = "lista não lida (sem a rota /servers ou resposta fora do formato): rota de falha não conferida"


def license_servers_line(configured: Iterable[str], aliases: Iterable[tuple[str, str]] = ()) -> str:
    """A linha exata para o LICENSE_SERVERS de cada servidor: o principal e os backups configurados, nessa
    ordem (um servidor com apelido em SERVIDORES_APELIDOS aparece pelo endereço que os clientes usam)."""
    public: dict[str, str] = {}
    for alias, server in aliases:
        public.setdefault(server, alias)
    return "LICENSE_SERVERS=" + ",".join(public.get(url, url) for url in configured)


def failover_text(report: FailoverReport | None) -> list[str]:
    """Bloco curto do relatório humano; vazio quando a rota de falha está como configurada."""
    if report is None or not report.off:
        return []
    lines = ["🧭 Rota de falha dos clientes (GET /servers de cada servidor):"]
    for finding in report.findings:
        lines.append(f"   {'❌' if finding.serious else '⚠️ '} {finding.message}")
        lines += [f"      {server}: {_failover_route(urls)}" for server, urls in finding.lists]
    lines += [f"   ❔ {item.server}: {_UNKNOWN_TEXT}." for item in report.unknown]
    if report.findings:
        lines.append("   → Em cada servidor (nas variáveis de ambiente do app), deixe exatamente esta linha e "
                     "reinicie-o:")
        lines.append(f"      {license_servers_line(report.configured, report.aliases)}")
    if report.serious:
        lines.append("   → Enquanto houver ❌ aqui, 'verificar' sai com código 1; sincronizar de novo não "
                     "resolve: ajuste SERVIDOR_BACKUP ou o LICENSE_SERVERS dos servidores.")
    return lines + [""]


def failover_json(report: FailoverReport | None) -> dict[str, Any] | None:
    """Chave "rota_de_falha" do --json e dos detalhes do histórico (None em restaurar)."""
    if report is None:
        return None
    return {
        "ok": not report.off, "grave": report.serious, "principal": report.primary,
        "sincronizados": list(report.configured), "apelidos": dict(report.aliases),
        "servidores": [{"url": s.server, "papel": s.role, "estado": s.state.value,
                        "lista": list(s.published) if s.state == ListState.PUBLISHED else None}
                       for s in report.lists],
        "achados": [{"tipo": f.kind.value, "grave": f.serious, "servidores": list(f.servers), "url": f.url,
                     "posicao": f.position, "mensagem": f.message,
                     "listas": {server: list(urls) for server, urls in f.lists} or None}
                    for f in report.findings],
    }


@dataclasses.dataclass(frozen=True)
class StoredServerList:
    """Um item de "servidores" da rota de falha gravada (failover_json), como foi gravado."""
    url: str
    role: str  # o papel como texto ("principal"/"backup"): só é mostrado
    state_text: str  # o estado como foi gravado (o painel mostra este texto)
    published: tuple[str, ...] | None  # a lista publicada; None: não lida

    @property
    def state(self) -> ListState | str:
        return _parse_enum(ListState, self.state_text)


@dataclasses.dataclass(frozen=True)
class StoredFinding:
    """Um achado da rota de falha gravada: se é grave e a mensagem do dia em que foi gravado."""
    serious: bool
    message: str


@dataclasses.dataclass(frozen=True)
class StoredFailover:
    """A rota de falha de uma execução lida de volta do histórico (detalhes["rota_de_falha"], gravada por
    failover_json), por stored_failover: o cartão do painel decide pelos campos (grave → vermelho; algum achado
    ou lista desconhecida → atenção; senão, verde)."""
    serious: bool
    configured: tuple[str, ...]  # o principal e os backups sincronizados, nessa ordem
    aliases: tuple[tuple[str, str], ...]
    lists: tuple[StoredServerList, ...]
    findings: tuple[StoredFinding, ...]

    @property
    def unknown(self) -> tuple[StoredServerList, ...]:
        """Servidores cuja lista não foi lida (sem /servers ou fora do formato): rota não conferida neles."""
        return tuple(item for item in self.lists if item.state == ListState.UNKNOWN)


def stored_text(value: Any) -> str:
    """Um texto lido de um arquivo nosso: o próprio texto; qualquer outra coisa (campo ausente ou danificado), ""."""
    return value if isinstance(value, str) else ""


def stored_texts(value: Any) -> tuple[str, ...]:
    """Uma lista de textos lida de um arquivo nosso: só os itens que são texto; campo que não é lista: ()."""
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def stored_objects(value: Any) -> list[dict[str, Any]]:
    """Uma lista de objetos lida de um arquivo nosso: só os itens que são objeto; campo que não é lista: []."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def stored_failover(doc: Any) -> StoredFailover | None:
    """A ÚNICA leitura da rota de falha gravada (chamada por HistoryRow.from_columns). Linha de antes da rota
    de falha (ou de restaurar): None. Campo danificado (tipo errado, item que não é objeto): o padrão dele —
    nunca "grave" por engano nem exceção no painel; um registro que nem é objeto vale como não gravado."""
    if not isinstance(doc, dict) or not doc:
        return None
    aliases = doc.get("apelidos")
    return StoredFailover(
        serious=doc.get("grave") is True, configured=stored_texts(doc.get("sincronizados")),
        aliases=tuple((alias, server) for alias, server in aliases.items() if isinstance(server, str))
        if isinstance(aliases, dict) else (),
        lists=tuple(StoredServerList(stored_text(item.get("url")), stored_text(item.get("papel")),
                                     stored_text(item.get("estado")),
                                     stored_texts(item["lista"]) if isinstance(item.get("lista"), list) else None)
                    for item in stored_objects(doc.get("servidores"))),
        findings=tuple(StoredFinding(item.get("grave") is True, stored_text(item.get("mensagem")))
                       for item in stored_objects(doc.get("achados"))))


def latest_failover(pairs: list["PanelPair"]) -> StoredFailover | None:
    """A rota de falha registrada na execução mais recente (detalhes dos pares do painel)."""
    found = [p.last for p in pairs if p.last and p.last.failover]
    newest = max(found, key=lambda row: row.ended or "", default=None)
    return newest.failover if newest else None


def render_failover_card(record: StoredFailover | None) -> str:
    """Cartão "rota de falha dos clientes" do painel (a rota gravada, lida por stored_failover; tudo escapado).
    Vermelho quando algum achado é grave (clientes caem em servidor não sincronizado); amarelo com qualquer
    outro achado ou lista não lida; verde sem nenhum."""
    if not record:
        return '<p class="vazio">Rota de falha dos clientes ainda não conferida (nenhuma execução registrada).</p>'
    unknown = record.unknown
    css, state = (("falhando", "clientes caem em servidor não sincronizado") if record.serious else
                  ("atrasado", "atenção") if record.findings or unknown else ("saudavel", "como configurada"))
    servers = "".join(
        f'<li><span class="url">{_esc(s.url)}</span> ({_esc(s.role)}): '
        + (_esc(_failover_route(s.published)) if s.published is not None else _esc(s.state_text))
        + "</li>" for s in record.lists)
    findings = "".join(f'<li class="{"grave" if f.serious else "aviso"}">{_esc(f.message)}</li>'
                       for f in record.findings)
    findings += "".join(f"<li>{_esc(s.url)}: {_esc(_UNKNOWN_TEXT)}</li>" for s in unknown)
    fix = ""
    if record.findings and record.configured:
        line = license_servers_line(record.configured, record.aliases)
        fix = ('<div class="nota">Em cada servidor (variáveis de ambiente do app), deixe exatamente esta linha e '
               f'reinicie-o:</div><div class="url linha-license-servers"><code>{_esc(line)}</code></div>')
    return (f'<div class="pares"><div class="par {css} rota-de-falha">'
            f'<div class="estado">{_esc(state.upper())}</div>'
            f"<div>Listas publicadas (GET /servers):</div><ul>{servers}</ul>"
            + (f"<ul>{findings}</ul>" if findings else "") + fix + "</div></div>")


def configure_demo_failover(*servers: Any) -> None:
    """Demonstração: cada servidor de referência publica a lista certa (principal, depois o backup)."""
    for server in servers:
        if hasattr(server, "set_license_servers"):
            server.set_license_servers([s.url for s in servers])


# ============================================================================
# Planejador (puro): retratos + hoje → ações. Sem rede, sem arquivos.
# ============================================================================



@dataclasses.dataclass(frozen=True)
class Action:
    kind: ActionKind
    key: str
    reason: str
    payload: dict[str, Any] | None = None
    changes: tuple[tuple[str, Any, Any], ...] = ()  # (campo, antes, depois) para a auditoria
    side: Side = Side.BACKUP  # lado do plano que recebe a escrita (o servidor real: Direction.role_of)
    absence: bool = False  # exclusão ou bloqueio deduzido da AUSÊNCIA do registro no outro lado
    # termina uma cadeia nossa que deixou a licença LIBERADA onde a origem nega (diário): vai antes de tudo
    urgent: bool = False
    # o bloqueio do fim de uma cadeia que regrava: o que o Executor faz se ele falhar (chain_undo; None: relata)
    undo: Action | None = None
    journaled: bool = False  # um desfazer que só vale se foi gravado no diário antes das escritas


class Divergence(tuple):
    """Diferença que a API não permite corrigir: (tipo, chave, campo, principal, backup, observação)."""

    __slots__ = ()

    def __new__(cls, kind: RecordKind, key: str, field: str, primary: Any, backup: Any, note: str):
        return super().__new__(cls, (kind, key, field, primary, backup, note))

    def as_dict(self, role_of: Callable[[Side], Role] = Role) -> dict[str, Any]:
        """Em português, com os valores pelo servidor real (role_of: Direction.role_of do par)."""
        kind, key, field, primary, backup, note = self
        by_role = {role_of(Side.PRIMARY): primary, role_of(Side.BACKUP): backup}
        return {"tipo": kind, "chave": key, "campo": field, "principal": _jsonable(by_role[Role.PRIMARY]),
                "backup": _jsonable(by_role[Role.BACKUP]), "observacao": note}


@dataclasses.dataclass
class PlanOptions:
    mode: Mode = Mode.ONE_WAY  # o plano só conhece ONE_WAY e TWO_WAY (restaurar é ONE_WAY com os lados trocados)
    conflict: ConflictPolicy = ConflictPolicy.REPORT
    mirror: bool = False  # --espelhar: apaga no backup o que não existe no principal
    max_deletions: int | None = None  # None = 10 % das licenças do lado, no máximo 50
    force: bool = False  # --forcar: passa por cima das travas de exclusão
    role_of: Callable[[Side], Role] = Role  # nome real de cada lado nos motivos (Run passa Direction.role_of)
    only_missing: bool = False  # restaurar sem --forcar: só cria o que falta, não sobrescreve o destino
    protect_target: bool = True  # bloquear no destino o que a origem nega mas não pode copiar (não em restaurar)
    journal: "dict[str, JournalEntry] | None" = None  # cadeias da execução anterior que podem ter ficado pela metade
    block_backup_only: bool = False  # --bloquear-so-no-backup: licenças só no backup de origem desconhecida
    # ids que o bidirecional trata como unidirecionais (principal → backup; nada é escrito no principal): os de
    # um grupo que o backup MySQL guarda como um registro só (collation_groups)
    one_way_keys: frozenset[str] = frozenset()


BACKUP_SALE, BACKUP_UNKNOWN = "venda", "desconhecida"  # PairState.backup_only
OLDER_VERSIONS_KEPT = 3  # versões anteriores lembradas por lado (para reconhecer uma cópia antiga restaurada)


class StateEntry(NamedTuple):
    """Uma licença na última sincronização: hash dos campos definíveis, status e fim de cada lado, e as
    versões ("hash|status") que cada lado teve em sincronizações anteriores."""
    fp_primary: str | None
    fp_backup: str | None
    status_primary: str | None
    status_backup: str | None
    end_primary: str | None
    end_backup: str | None
    older_primary: tuple[str, ...] = ()
    older_backup: tuple[str, ...] = ()

    def fp(self, side: Side) -> str | None:
        return self.fp_primary if side == Side.PRIMARY else self.fp_backup

    def status(self, side: Side) -> str | None:
        return self.status_primary if side == Side.PRIMARY else self.status_backup

    def end(self, side: Side) -> str | None:
        return self.end_primary if side == Side.PRIMARY else self.end_backup

    def older(self, side: Side) -> tuple[str, ...]:
        return self.older_primary if side == Side.PRIMARY else self.older_backup

    def version(self, side: Side) -> str:
        return f"{self.fp(side)}|{self.status(side)}"

    def swapped(self) -> "StateEntry":
        return StateEntry(self.fp_backup, self.fp_primary, self.status_backup, self.status_primary,
                          self.end_backup, self.end_primary, self.older_backup, self.older_primary)


@dataclasses.dataclass
class PairState:
    """Última versão sincronizada de cada registro de um par (principal, backup)."""
    primary_url: str
    backup_url: str
    count_primary: int = 0
    count_backup: int = 0
    users: set[str] = dataclasses.field(default_factory=set)
    licenses: dict[str, StateEntry] = dataclasses.field(default_factory=dict)
    # licenças apagadas dos dois lados: chave → (data da exclusão, versões que o backup teve); uma cópia
    # antiga restaurada no backup não as traz de volta para o principal
    deleted: dict[str, tuple[str, tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    # data (UTC) da execução que gravou este estado: separa uma venda feita no backup depois dela (o início
    # da licença é carimbado pelo servidor) de uma sobra de licença que o principal apagou
    synced_on: dt.date | None = None
    # licenças liberadas só no backup já vistas (chave → "venda" ou "desconhecida"): na próxima execução
    # continuam o que eram (uma sobra antiga não vira "venda nova" só porque o estado foi regravado)
    backup_only: dict[str, str] = dataclasses.field(default_factory=dict)
    # `id` local de cada licença em cada lado (chave → (principal, backup)): a ordem de criação que cada
    # servidor deu (a listagem vem da mais nova para a mais antiga); separa uma cópia restaurada ou uma listagem
    # cortada (somem juntas as mais novas ou um bloco seguido, ids reusados) de reembolsos (exclusões esparsas)
    ids: dict[str, tuple[int | None, int | None]] = dataclasses.field(default_factory=dict)
    # status que o BACKUP (o servidor real) tinha antes de um bloqueio NOSSO por ausência no principal (chave →
    # status): restaurar devolve a licença ao principal como ela era antes de a ferramenta mexer nela
    blocked_from: dict[str, str] = dataclasses.field(default_factory=dict)


class LossKind(str, enum.Enum):
    EMPTY = "vazio"
    HALF = "perdeu_metade"
    ROLLED_BACK = "versao_anterior"
    SHRANK = "encolheu"  # licenças já sincronizadas sumiram do principal além do limite de exclusões
    RESTORED = "restaurado"  # sumiram juntas as mais novas (ou ids reusados): cópia anterior restaurada
    CUT = "bloco_sumido"  # sumiu um bloco seguido da listagem: listagem cortada (ou registros perdidos)


@dataclasses.dataclass(frozen=True)
class DataLoss:
    """Um lado que não pode servir de modelo: voltou vazio, perdeu mais da metade das licenças ou voltou
    a uma cópia antiga. O par para (código 5); o relatório diz o que fazer."""
    side: Side  # lado do plano que perdeu dados (o servidor real: Direction.role_of)
    kind: LossKind
    now: int  # licenças do lado agora
    before: int  # na última sincronização
    other: int  # licenças do outro lado agora
    keys: tuple[str, ...] = ()  # versao_anterior: registros que voltaram atrás ou sumiram
    reused: tuple[str, ...] = ()  # restaurado: sumidas cujo id local o servidor já deu a outra licença
    newest: int = 0  # restaurado/bloco_sumido: quantas das mais novas sumiram juntas (keys: da mais nova à mais antiga)
    would_delete: int = 0  # o que --forcar faria no OUTRO lado
    would_overwrite: int = 0


@dataclasses.dataclass(frozen=True)
class Plan:
    """O plano de um par como plan_pair o devolve, completo (conflitos, divergências aprendidas, bloqueios de
    segurança): congelado. Quem junta dois planos (a releitura do principal, a releitura final) faz um novo
    (replan_after_reread, merge_final), nunca edita este."""
    user_actions: tuple[Action, ...]
    license_chains: tuple[tuple[Action, ...], ...]
    divergences: tuple[Divergence, ...]
    backup_only_users: tuple[str, ...]
    backup_only_licenses: tuple[str, ...]
    skipped: tuple[Problem, ...]  # licenças do principal fora do plano (dados ilegíveis)
    licenses_compared: int
    parity_mismatches: tuple[str, ...]  # veredito diferente mesmo depois do plano (não deveria acontecer)
    current_mismatches: tuple[str, ...] = ()  # diferente agora, antes do plano
    deletions: tuple[Action, ...] = ()
    held_deletions: tuple[Action, ...] = ()
    limits: tuple["DeletionLimit", ...] = ()  # limites de exclusão ultrapassados
    loss: DataLoss | None = None
    conflicts: tuple[Conflict, ...] = ()
    skipped_users: tuple[Problem, ...] = ()
    unreachable: tuple[Problem, ...] = ()  # ids que nenhum cliente alcança
    halted: bool = False  # um lado perdeu dados: nada é gravado neste par
    backup_only_allowed: tuple[str, ...] = ()  # só no backup e liberadas lá
    backup_sales: tuple[str, ...] = ()  # ... criadas lá depois da última sincronização
    backup_unknown: tuple[str, ...] = ()  # ... sem como saber se venda ou reembolso
    not_restored: tuple[str, ...] = ()  # restaurar: apagadas no principal, não recriadas
    # as mais novas do principal que sumiram juntas, poucas para chamar de cópia restaurada (VANISHED_NEWEST_DOUBT):
    # bloqueadas no backup como reembolsos, e o par sai com 1 dizendo como devolvê-las se eram vendas
    newest_vanished: tuple[str, ...] = ()
    # restaurar: bloqueadas no backup pela ferramenta (sumiram do principal) que voltam ao principal como eram
    # antes do bloqueio (liberadas); o backup segue bloqueado até a próxima sincronização normal
    unblocked: tuple[str, ...] = ()
    # chave → (principal, backup) como devem ficar depois do plano; só leitura (dict só dentro do planejador)
    expected: types.MappingProxyType[str, tuple[License, License]] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({}))
    first_sync: bool = True
    clock: Clock | None = None  # as datas com que o plano foi feito (next_state usa a UTC; nada de relógio de parede)

    def __post_init__(self) -> None:
        """Congelado também por dentro, para quem o monta sem passar pelo mypy: lista, dict ou set num campo (ou
        uma cadeia que não é tupla) é erro de programação, não dado."""
        mutable = [f.name for f in dataclasses.fields(self) if isinstance(getattr(self, f.name), (list, dict, set))]
        if mutable or not all(isinstance(chain, tuple) for chain in self.license_chains):
            raise TypeError(f"Plan congelado: use tuplas (e MappingProxyType no esperado), não {mutable or 'listas'}")

    @property
    def actions(self) -> list[Action]:
        return [*self.user_actions, *(a for chain in self.license_chains for a in chain), *self.deletions]

    def parity_now(self) -> "Parity":
        """Veredito igual dos dois lados nos retratos lidos (o que os servidores têm agora)."""
        return Parity(self.licenses_compared, list(self.current_mismatches), len(self.skipped))

    def parity_predicted(self) -> "Parity":
        """O que o plano promete depois de aplicado (simulação: previsão, não conferência)."""
        return Parity(self.licenses_compared, sorted(self.parity_mismatches), len(self.skipped), observed=False)


def add_months(start: dt.date, months: int) -> dt.date:
    """Soma meses como o servidor: o dia é limitado ao último dia do mês de destino."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def period_end(license_type: str | None, start: dt.date) -> dt.date | None:
    months = LICENSE_PERIOD_MONTHS.get(license_type or "anual", 12)
    return None if months is None else add_months(start, months)


def verdict_type(lic: License) -> str | None:
    """O tipo que o veredito do servidor usa: o gravado, com os espaços das pontas ('anual ' de uma importação
    antiga). O servidor compara o texto exato: 'anual ' é um tipo desconhecido (nenhum fim calculado) e
    'vitalicia ' não é vitalícia (o fim gravado vale). Um upsert grava o tipo sem os espaços."""
    return lic.license_type if lic.stored_type is None else lic.stored_type


def effective_end(lic: License) -> dt.date | None:
    """Fim de vigência como o servidor decide: o gravado ou, sem ele, início + período do tipo
    (vitalícia nunca vence; tipo desconhecido não ganha fim calculado). O tipo é o gravado (verdict_type)."""
    kind = verdict_type(lic)
    if kind == "vitalicia":
        return None
    if isinstance(lic.end_date, dt.date):
        return lic.end_date
    months = LICENSE_PERIOD_MONTHS.get(kind or "")
    if lic.end_date is None and months and isinstance(lic.start_date, dt.date):
        return add_months(lic.start_date, months)
    return None


def is_expired(lic: License, today: dt.date) -> bool:
    end = effective_end(lic)
    return end is not None and end < today


def allows(lic: License | None, today: dt.date) -> bool:
    """O veredito que o servidor dá ao programa do cliente (liberado = True), na ordem do servidor:
    bloqueada → negada; vencida (fim gravado ou calculado, antes do `today` LOCAL do servidor) → negada;
    pendente → negada; qualquer outro status (até um desconhecido) → liberada."""
    if lic is None or lic.status == BLOCKED or is_expired(lic, today):
        return False
    return lic.status != PENDING


# Fusos possíveis de um servidor: a API não revela o fuso (só o relógio UTC, no cabeçalho Date), e os fusos
# civis vão de UTC−12 a UTC+14. Num instante UTC, a data local de um servidor é uma destas (até três datas).
PLAUSIBLE_OFFSETS = (dt.timedelta(hours=-12), dt.timedelta(hours=14))
Span = tuple  # (data mais cedo, data mais tarde) em que o servidor pode estar: tuple[dt.date, dt.date]


def plausible_dates(moment: dt.datetime, *known: dt.date) -> tuple[dt.date, dt.date]:
    """As datas locais possíveis de um servidor cujo relógio UTC marca `moment`, em qualquer fuso de UTC−12 a
    UTC+14 (e as datas `known`, a do fuso configurado, se ele estiver fora disso)."""
    utc = moment.astimezone(dt.timezone.utc)
    dates = [(utc + PLAUSIBLE_OFFSETS[0]).date(), (utc + PLAUSIBLE_OFFSETS[1]).date(), *known]
    return min(dates), max(dates)


def _span(day: "dt.date | Span") -> tuple[dt.date, dt.date]:
    return day if isinstance(day, tuple) else (day, day)


@dataclasses.dataclass(frozen=True)
class Clock:
    """Datas de uma execução: a UTC (carimbo das escritas da API) e a data local de cada lado
    (o veredito usa a data local do processo do servidor; veja SYNC_FUSO_HORARIO).

    `primary`/`backup` são a data no fuso configurado (a esperada: relatório, comparação de registros). O fuso
    configurado pode estar errado (ou trocado) e a API não o revela: as decisões de segurança usam a margem
    `primary_span`/`backup_span`, as datas possíveis em qualquer fuso de UTC−12 a UTC+14 (None = sem margem:
    a data é exata, como em --hoje). A origem só conta como liberada se libera em TODAS as datas possíveis
    (sure); o destino conta como liberado se libera em ALGUMA delas (might)."""
    utc: dt.date
    primary: dt.date
    backup: dt.date
    primary_span: tuple[dt.date, dt.date] | None = None
    backup_span: tuple[dt.date, dt.date] | None = None

    @classmethod
    def of(cls, today: "dt.date | Clock") -> "Clock":
        return today if isinstance(today, Clock) else cls(today, today, today)

    @classmethod
    def at(cls, primary: dt.datetime, backup: dt.datetime, primary_zone: str, backup_zone: str) -> "Clock":
        """As datas de um par no instante `primary` do relógio do servidor do lado PRIMARY e `backup` do outro
        (cada um o seu relógio UTC), com a margem de fusos. A data UTC (a das escritas) é a do lado BACKUP, que
        recebe as escritas do sentido normal."""
        local_p = primary.astimezone(zoneinfo.ZoneInfo(primary_zone)).date()
        local_b = backup.astimezone(zoneinfo.ZoneInfo(backup_zone)).date()
        return cls(backup.astimezone(dt.timezone.utc).date(), local_p, local_b,
                   plausible_dates(primary, local_p), plausible_dates(backup, local_b))

    def on(self, side: Side) -> dt.date:
        return self.primary if side == Side.PRIMARY else self.backup

    def span(self, side: Side) -> tuple[dt.date, dt.date]:
        """(data mais cedo, data mais tarde) possíveis do servidor do lado `side`."""
        span = self.primary_span if side == Side.PRIMARY else self.backup_span
        return span or _span(self.on(side))

    def sure(self, lic: License | None, side: Side) -> bool:
        """Libera em todo fuso possível (a data mais tarde ainda está no prazo)?"""
        return allows(lic, self.span(side)[1])

    def might(self, lic: License | None, side: Side) -> bool:
        """Libera em algum fuso possível (a data mais cedo ainda está no prazo)?"""
        return allows(lic, self.span(side)[0])

    def differs(self, p: License | None, b: License | None, role_of: Callable[[Side], Role] = Role) -> bool:
        """Veredito diferente com a margem de fusos (`p`/`b`: os lados do plano; `role_of`: qual é o principal de
        verdade): o principal pode negar e o backup pode liberar (o backup liberaria a mais: tem de negar em todo
        fuso), ou o principal libera em todo fuso e o backup nega em todo fuso. Um backup de veredito incerto
        diante de um principal que libera em todos é tolerado (no sentido normal ele é renovado). Sem margem:
        allows(p) != allows(b)."""
        main = Side.PRIMARY if role_of(Side.PRIMARY) == Role.PRIMARY else Side.BACKUP
        primary, backup = (p, b) if main == Side.PRIMARY else (b, p)
        if self.sure(primary, main):
            return not self.might(backup, main.other)
        return self.might(backup, main.other)


def model_upsert(before: License | None, source: License, today: dt.date) -> License:
    """O que o servidor guarda depois de POST /admin/devices/create com o registro de `source`."""
    fields = dict(zip(SETTABLE_FIELDS, source.desired_settable(), strict=True))
    kept = {"custom_interval": 60, "features": "core"} if before is None else {
        "custom_interval": before.custom_interval, "features": before.features}
    return License(device_id=source.device_id, **fields, status=ACTIVE, start_date=today,
                   end_date=period_end(source.license_type, today), **kept)


def model_apply(lic: License | None, action: Action, today: dt.date, source: License | None = None) -> License | None:
    """Efeito de uma ação sobre a licença do servidor que a recebe (modelo usado pelo planejador e pelos testes)."""
    if action.kind in UPSERTS:
        assert source is not None, "criar/atualizar/renovar no modelo precisa da licença de origem"
        return model_upsert(lic, source, today)
    if action.kind == DELETE or lic is None:
        return None
    if action.kind == BLOCK:
        return dataclasses.replace(lic, status=BLOCKED)
    if action.kind == SET_CREATED_BY:
        assert action.payload is not None  # plan_license sempre manda o created_by no corpo desta ação
        return dataclasses.replace(lic, created_by=action.payload["created_by"])
    if action.kind == ACTIVATE:
        return dataclasses.replace(lic, status=ACTIVE)
    return lic


def target_status(source: License, after: License, source_today: "dt.date | Span",
                  target_today: "dt.date | Span", primary_target: bool = False) -> LicenseStatus | str | None:
    """Status que o destino deve ter para dar o mesmo veredito da origem, com o mínimo de escritas.

    Origem liberada → 'active'. Origem negada (bloqueada, pendente ou vencida) e destino
    que já nega → fica como está. Origem negada e destino que liberaria → 'blocked'
    ('pending' não pode ser definido pela API, e as datas não podem ser copiadas).
    Com a margem de fusos (datas (mais cedo, mais tarde)): a origem só conta como liberada se libera em todas
    as datas possíveis; se não, um backup precisa negar em todas (o veredito mais estrito). O principal
    (`primary_target`: bidirecional, restaurar) nunca é bloqueado pela margem: só quando a origem nega em todas.
    """
    (source_earliest, source_latest), target_earliest = _span(source_today), _span(target_today)[0]
    source_allows = allows(source, source_latest) or (primary_target and allows(source, source_earliest))
    if must_deny(source_allows, allows(after, target_earliest)):
        return BLOCKED
    if allows(source, source_latest) and not allows(after, target_earliest):
        return ACTIVE
    return after.status


def must_deny(source_allows: bool, target_allows: bool | None) -> bool:
    """A REGRA ÚNICA de negar no destino: a origem nega (ou não tem o registro, ou não libera com certeza) e o
    destino libera, ou não dá para saber o veredito dele (`target_allows` None) → o destino precisa terminar
    negado (BLOCKED). Nenhum caminho deixa o destino mais permissivo que a origem. Quem decide o status de um
    destino passa por aqui: target_status (as cadeias de plan_license), deny_on_target (os bloqueios de
    segurança do planejador e da releitura do principal), collation_groups (o registro de um grupo MySQL) e
    Planner.ours_left_allowed (o que uma cadeia nossa deixou liberado vem primeiro)."""
    return not source_allows and target_allows is not False


def block_action(key: str, current_status: Any, why: str, side: Side = Side.BACKUP,
                 absence: bool = False) -> Action:
    """O bloqueio que leva o destino a BLOCKED (must_deny), anotado com o status de antes (auditoria, estado)."""
    return Action(BLOCK, key, why, changes=(("status", current_status, BLOCKED),), side=side, absence=absence)


def status_after(action: Action) -> Any:
    """O status em que o plano diz que a ação deixa o registro (a mudança de status que ela anota)."""
    return next((new for field, _old, new in action.changes if field == "status"), None)


def deny_on_target(key: str, current_status: str | None, allowed_there: bool | None, why: str,
                   side: Side = Side.BACKUP, absence: bool = False, source_allows: bool = False) -> list[Action]:
    """Negar no destino por segurança (must_deny): o destino libera (ou não dá para saber o veredito dele,
    `allowed_there` None) algo que a origem nega ou não tem (`source_allows` False) → uma cadeia com um
    bloqueio (reversível; nada é apagado). Id que não cabe no caminho da URL não pode ser bloqueado: lista
    vazia. Todo bloqueio de segurança do planejador (e a releitura do principal) passa por aqui."""
    if not must_deny(source_allows, allowed_there) or not path_safe(key):
        return []
    return [block_action(key, current_status, why, side, absence)]


def sold_after(lic: License, since: dt.date | None, strict: bool = True) -> bool:
    """A licença começou (o servidor carimba o início a cada criação ou upsert) depois de `since`?"""
    if since is None or not isinstance(lic.start_date, dt.date):
        return False
    return lic.start_date > since if strict else lic.start_date >= since


def _changes(before: License | None, after: License) -> tuple[tuple[str, Any, Any], ...]:
    fields = SETTABLE_FIELDS + ("status",)
    if before is None:
        return tuple((f, None, getattr(after, f)) for f in fields if getattr(after, f) is not None)
    return tuple((f, getattr(before, f), getattr(after, f)) for f in fields
                 if getattr(before, f) != getattr(after, f))


def plan_license(source: License, target: License | None, today: "dt.date | Clock", side: Side = Side.BACKUP,
                 role_of: Callable[[Side], Role] = Role, two_way: bool = False,
                 rewrite: bool = False) -> tuple[list[Action], License]:
    """Ações (em ordem) que levam `target` (no servidor `side`) ao mesmo veredito e dados de `source`,
    e como o destino ficará depois delas. Cada lado é julgado pela sua data local; as escritas
    carimbam a data UTC."""
    here, there = role_of(side), role_of(side.other)
    clock = Clock.of(today)
    source_span, target_span = clock.span(side.other), clock.span(side)
    today = clock.utc
    key = source.device_id
    chain: list[Action] = []
    after = target
    if target is None or rewrite:  # regravar: o registro do destino não pôde ser lido direito
        after = model_upsert(target, source, today)
        kind, why = ((UPDATE, f"registro ilegível no {here}: regravado") if rewrite
                     else (CREATE, f"não existe no {here}"))
        chain.append(Action(kind, key, why, source.payload(), _changes(target if rewrite else None, after), side))
    elif target.settable()[:-1] == source.settable()[:-1] and \
            (target.desired_settable() if two_way else target.settable()) != source.desired_settable():
        # só o created_by difere: endpoint próprio, que não reinicia datas nem desbloqueia
        created_by = source.desired_settable()[-1]
        after = dataclasses.replace(target, created_by=created_by)
        chain.append(Action(SET_CREATED_BY, key, "created_by diferente",
                            {"device_id": key, "created_by": created_by},
                            (("created_by", target.created_by, created_by),), side))
    elif (target.desired_settable() if two_way else target.settable()) != source.desired_settable():
        after = model_upsert(target, source, today)
        changed = ", ".join(f for f, _, _ in _changes(target, after) if f != "status")
        chain.append(Action(UPDATE, key, f"dados diferentes ({changed})", source.payload(),
                            _changes(target, after), side))
    assert after is not None  # sem registro no destino, o primeiro ramo acima o cria (model_upsert)
    status = target_status(source, after, source_span, target_span, primary_target=here == Role.PRIMARY)
    # renovar (um período novo) só quando a origem libera em TODO fuso possível e o destino pode estar vencido
    if allows(source, source_span[1]) and is_expired(after, target_span[1]):
        renewed = model_upsert(after, source, today)
        chain.append(Action(RENEW, key, f"vencida no {here} e válida no {there}: o período recomeça",
                            source.payload(), (("end_date", after.end_date, renewed.end_date),), side))
        after = renewed
        # o upsert da renovação grava 'active': o status a buscar é o de depois dela (sem isso, um status
        # liberado que não é 'active' — nulo, desconhecido — ganhava uma ativação a mais, com motivo falso)
        status = target_status(source, after, source_span, target_span, primary_target=here == Role.PRIMARY)
    if after.status != status:
        why = _status_reason(source, status, there)
        if status == BLOCKED and allows(source, clock.on(side.other)):  # libera no fuso configurado
            why = (f"último dia no {there}: num fuso possível do {there} (UTC−12 a UTC+14; a API não informa o "
                   "fuso) ela já venceu, então o backup nega (margem de fusos)")
        chain.append(block_action(key, after.status, why, side) if status == BLOCKED else
                     Action(ACTIVATE, key, why, changes=(("status", after.status, status),), side=side))
        after = dataclasses.replace(after, status=status)
    undo = chain_undo(chain, here, two_way)
    if undo is not None:  # se o bloqueio do fim falhar, o Executor faz o que o plano diz aqui
        chain[-1] = dataclasses.replace(chain[-1], undo=undo)
    return chain, after


def chain_undo(chain: Sequence[Action], here: Role, two_way: bool) -> Action | None:
    """O que desfaz uma cadeia que regrava (o upsert deixa a licença LIBERADA) e termina bloqueando, se o
    bloqueio falhar: excluir o registro (volta a não existir: negado). O criado pela cadeia, em qualquer lado; o
    que já existia, só num backup (`here`: o servidor real), e no bidirecional só se o desfazer foi gravado no
    diário ANTES das escritas (`journaled`: journal_entries grava o estado "ausente" da cadeia), para que um fim
    abrupto entre a exclusão e o estado não vire "apagada no backup" (um conflito que apagaria no principal).
    No principal nada que já existia é excluído. None: não há desfazer (Executor.compensate só relata)."""
    if not chain or not unblocks_then_blocks(chain):
        return None
    created = chain[0].kind == CREATE
    if not created and here != Role.BACKUP:
        return None
    upserted = next(a for a in chain if a.kind in UPSERTS)
    what = "criada nesta execução" if created else "regravada nesta execução"
    return Action(DELETE, chain[-1].key, f"o bloqueio falhou depois de {upserted.kind}: a licença {what} foi "
                  "excluída para não ficar liberada onde a origem nega", side=chain[-1].side,
                  journaled=two_way and not created)


def _status_reason(source: License, status: LicenseStatus | str | None, there: str) -> str:
    if status == ACTIVE:
        return f"ativa e no prazo no {there}"
    if source.status == BLOCKED:
        return f"bloqueada no {there}"
    if source.status == PENDING:
        return f"pendente no {there} (a API não define 'pending'; bloqueada para negar igual)"
    return f"vencida no {there} (datas não são copiáveis; bloqueada para negar igual)"


_NOTE_DATES = "datas não podem ser definidas pela API (o período recomeça onde a licença é criada)"
_NOTE_FIELD = "a API não permite definir este campo"
_NOTE_STATUS = "status diferente com o mesmo veredito ('pending' e datas não são copiáveis)"
_NOTE_TYPE = ("espaços nas pontas do tipo: a API os tira ao gravar, e o servidor calcula o vencimento de um e não "
              "do outro; o veredito é mantido igual (bloqueio ou período novo quando preciso)")


def license_divergences(primary: License, backup: License) -> list[Divergence]:
    """O que continuará diferente entre os dois lados depois do plano, por limitação da API."""
    found = []
    key = primary.device_id
    for field, note in (("start_date", _NOTE_DATES), ("end_date", _NOTE_DATES), ("custom_interval", _NOTE_FIELD),
                        ("features", _NOTE_FIELD), ("status", _NOTE_STATUS)):
        if getattr(primary, field) != getattr(backup, field):
            found.append(Divergence(RecordKind.LICENSE, key, field, getattr(primary, field), getattr(backup, field),
                                    note))
    if primary.created_by != backup.created_by:
        found.append(Divergence(RecordKind.LICENSE, key, "created_by", primary.created_by, backup.created_by,
                                "vazio de um lado; a API grava 'admin'"))
    if verdict_type(primary) != verdict_type(backup):  # 'anual ' × 'anual': o mesmo tipo para o upsert
        found.append(Divergence(RecordKind.LICENSE, key, "license_type", verdict_type(primary), verdict_type(backup),
                                _NOTE_TYPE))
    return found


def _create_user(user: User, side: Side, role_of: Callable[[Side], Role] = Role) -> Action:
    payload = {"username": user.username, "email": user.email, "role": user.role or "user"}
    payload = {k: v for k, v in payload.items() if v is not None}  # e-mail vazio vai omitido
    return Action(CREATE_USER, user.username, f"não existe no {role_of(side)}", payload,
                  tuple((f, None, v) for f, v in payload.items()), side)


def plan_users(primary: Snapshot, backup: Snapshot, state: PairState | None = None,
               two_way: bool = False,
               role_of: Callable[[Side], Role] = Role) -> tuple[list[Action], list[Divergence], list[str]]:
    """Usuários: só criação (a API não altera nem apaga usuários)."""
    actions, divergences = [], []
    known = state.users if state and two_way else set()  # no unidirecional, o que falta é recriado
    sources = [(primary, backup, Side.BACKUP)] + ([(backup, primary, Side.PRIMARY)] if two_way else [])
    for source, target, side in sources:
        invalid = {p.key for snap in (source, target) for p in snap.problems if p.kind == RecordKind.USER}
        for name in sorted(source.users):
            if name in target.users or name in invalid:
                continue
            if name in known:  # existia dos dois lados: foi apagado direto no servidor
                divergences.append(Divergence(RecordKind.USER, name, "username", name if side == Side.BACKUP else None,
                                              None if side == Side.BACKUP else name,
                                              f"apagado no {role_of(side)} desde a última sincronização; "
                                              "não foi recriado"))
            elif name == target.login_username:
                divergences.append(Divergence(RecordKind.USER, name, "username", name, name,
                                              f"nome já usado por um super-admin no {role_of(side)} "
                                              "(não listado pela API)"))
            else:
                actions.append(_create_user(source.users[name], side, role_of))
                divergences.append(Divergence(RecordKind.USER, name, "senha", None, None,
                                              "senhas não são expostas pela API; uma senha nova foi gerada"))
    for name in sorted(set(primary.users) & set(backup.users)):
        p_user, b_user = primary.users[name], backup.users[name]
        for field in ("email", "role"):
            if getattr(p_user, field) != getattr(b_user, field):
                divergences.append(Divergence(RecordKind.USER, name, field, getattr(p_user, field),
                                              getattr(b_user, field),
                                              "a API não altera e-mail nem papel de usuário existente"))
    backup_only = [] if two_way else sorted(set(backup.users) - set(primary.users))
    return actions, divergences, backup_only


# -- comparação em três vias (estado × principal × backup) ------------------------

def fingerprint(lic: License) -> str:
    """Resumo curto dos campos definíveis (o estado não guarda dados pessoais em claro)."""
    return hashlib.blake2b(repr(lic.settable()).encode("utf-8"), digest_size=8).hexdigest()


def _renewed(now: dt.date | None, stored: str | None) -> bool:
    """Período renovado desde a última sincronização (o fim andou mais de 2 dias para frente)."""
    if now is None or not stored:
        return False
    return now > dt.date.fromisoformat(stored) + dt.timedelta(days=2)


def version_of(lic: License) -> str:
    return f"{fingerprint(lic)}|{lic.status}"


def changed_since(lic: License | None, base: StateEntry, side: Side) -> bool:
    """O registro de um lado do plano mudou desde o estado salvo?"""
    if lic is None:
        return True
    return (fingerprint(lic) != base.fp(side) or lic.status != base.status(side)
            or _renewed(lic.end_date, base.end(side)))


def moved_back(lic: License | None, other: License | None, base: StateEntry, side: Side) -> bool:
    """O lado voltou atrás desde a última sincronização: sumiu um registro que o outro lado ainda tem, ou
    o registro voltou a uma versão que já foi sincronizada antes (o que uma cópia antiga restaurada faz)."""
    if lic is None:
        return other is not None
    version = version_of(lic)
    return version != base.version(side) and version in base.older(side)


def same_record(p: License, b: License, clock: Clock) -> bool:
    return (p.desired_settable() == b.desired_settable() and p.status == b.status
            and allows(p, clock.primary) == allows(b, clock.backup))


@dataclasses.dataclass(frozen=True)
class Conflict:
    """Licença que não pode ir de um lado ao outro sem decisão: mudou dos dois lados, sumiu de um e mudou no
    outro, ou voltou atrás no backup. `resolution` REPORT = em aberto (nada copiado)."""
    key: str
    why: str
    resolution: ConflictPolicy
    primary: License | None
    backup: License | None

    @property
    def open(self) -> bool:
        return self.resolution == ConflictPolicy.REPORT

    def fields(self) -> list[tuple[str, Any, Any]]:
        """(campo, valor no principal, valor no backup) de cada campo diferente (todos, se um lado não tem)."""
        p, b = self.primary, self.backup
        found = []
        for field in SETTABLE_FIELDS + ("status", "end_date"):
            pv, bv = (getattr(p, field) if p else None), (getattr(b, field) if b else None)
            if pv != bv or p is None or b is None:
                found.append((field, pv, bv))
        return found

    def as_dict(self, role_of: Callable[[Side], Role] = Role) -> dict[str, Any]:
        """Em português e pelo servidor real (em restaurar, o lado PRIMARY do plano é o backup)."""
        swap = role_of(Side.PRIMARY) != Role.PRIMARY
        primary, backup = (self.backup, self.primary) if swap else (self.primary, self.backup)
        return {"tipo": RecordKind.LICENSE, "chave": self.key, "descricao": self.why,
                "resolucao": self.resolution.value,
                "principal_existe": primary is not None, "backup_existe": backup is not None,
                "campos": [{"campo": f, "principal": _jsonable(bv if swap else pv),
                            "backup": _jsonable(pv if swap else bv)}
                           for f, pv, bv in self.fields()]}


class _Planner:
    """Monta o plano de um par; acumula ações, divergências e o resultado esperado."""

    def __init__(self, primary: Snapshot, backup: Snapshot, clock: Clock, state: PairState | None,
                 options: PlanOptions):
        self.primary, self.backup, self.clock, self.state, self.options = primary, backup, clock, state, options
        self.chains: list[list[Action]] = []
        self.deletions: list[Action] = []
        self.conflicts: list[Conflict] = []
        self.divergences: list[Divergence] = []
        self.expected: dict[str, tuple[License, License]] = {}
        self.mismatches: list[str] = []
        self.current: list[str] = []
        self.compared = 0
        self.journal = options.journal or {}
        self.rolled_back: set[str] = set()
        self.sales: list[str] = []  # só no backup, liberadas: vendas feitas lá (mantidas liberadas)
        self.unknown: list[str] = []  # só no backup, liberadas: venda ou reembolso? (mantidas; código 1)
        self.not_restored: list[str] = []
        self.denied: set[str] = set()

    def deny(self, key: str, why: str, lic: License | None, allowed: bool | None, absence: bool = False,
             source_allows: bool = False) -> bool:
        """Bloqueia no destino (deny_on_target) o registro `lic` do backup, que libera (`allowed`; None = não
        dá para saber), quando a origem nega (`source_allows` False). Devolve se bloqueou."""
        chain = deny_on_target(key, lic.status if lic else None, allowed, why, absence=absence,
                               source_allows=source_allows)
        if chain:
            self.chains.append(chain)
            self.denied.add(key)
        return bool(chain)

    def differs(self, p: License | None, b: License | None) -> bool:
        """Veredito diferente entre o principal e o backup (cada um pela sua data local, com a margem de fusos)?"""
        return self.clock.differs(p, b, self.options.role_of)

    def resume(self, key: str, p: License | None, b: License | None) -> bool:
        """Cadeia da execução anterior cortada no meio (morta ou com falha): o lado de destino está num
        dos estados que a própria cadeia produziria (ou ausente, se ela podia ser desfeita excluindo o
        registro) → termina a cadeia em vez de ver 'mudou dos dois lados' ou 'apagada no backup'."""
        entry = self.journal.get(key)
        if not entry or key in self.rolled_back:
            return False
        origin = entry.origin
        source = p if origin == Side.PRIMARY else b
        if source is None or self.ours(key, origin.other) is None:
            return False
        # a origem mudou (ou voltou atrás) desde então: só segue se a cadeia deixou a licença LIBERADA onde a
        # origem (agora) nega — o destino é obra nossa e não pode continuar liberando
        if entry.source != version_of(source) and not self.ours_left_allowed(key, origin.other):
            return False
        self.sync(key, origin)
        return True

    def ours(self, key: str, target_side: Side) -> "JournalEntry | None":
        """A entrada do diário, se o registro do lado `target_side` está num dos estados que uma cadeia nossa
        (da execução anterior) produz lá — inclusive ausente, quando ela podia ser desfeita excluindo-o. Esse
        estado é obra nossa: não é uma mudança de quem usa nem uma cópia antiga restaurada."""
        entry = self.journal.get(key)
        if not entry or entry.origin != target_side.other:
            return None
        lic = (self.primary if target_side == Side.PRIMARY else self.backup).licenses.get(key)
        return entry if ([fingerprint(lic), lic.status] if lic else [None, None]) in entry.targets else None

    def ours_left_allowed(self, key: str, target_side: Side) -> bool:
        """Uma cadeia nossa deixou o registro LIBERADO no lado `target_side` e a origem nega (must_deny, com a
        margem de fusos: a origem não libera com certeza e o destino pode liberar): é a primeira coisa a
        consertar (Action.urgent)."""
        if key not in self.journal or self.ours(key, target_side) is None:
            return False
        lic = (self.primary if target_side == Side.PRIMARY else self.backup).licenses.get(key)
        source = (self.backup if target_side == Side.PRIMARY else self.primary).licenses.get(key)
        return must_deny(self.clock.sure(source, target_side.other), self.clock.might(lic, target_side))

    def sync(self, key: str, source_side: Side, rewrite: bool = False) -> None:
        """Leva o outro lado ao registro de `source_side` (criação, atualização, status)."""
        p, b = self.primary.licenses.get(key), self.backup.licenses.get(key)
        if rewrite:
            b = self.backup.rejected.get(key)
        role_of, two_way = self.options.role_of, self.options.mode == Mode.TWO_WAY
        if source_side == Side.PRIMARY:
            assert p is not None  # sync só é chamado com a origem presente (one_way, conflict, two_way)
            chain, b_after = plan_license(p, b, self.clock, Side.BACKUP, role_of, two_way, rewrite)
            p_after = p
        else:
            assert b is not None  # idem: a origem (o backup) existe
            chain, p_after = plan_license(b, p, self.clock, Side.PRIMARY, role_of, two_way)
            b_after = b
        if any(a.kind in (BLOCK, ACTIVATE) for a in chain) and not path_safe(key):
            return self._unreachable(key, p, b)
        if chain and chain[-1].kind == BLOCK and self.ours_left_allowed(key, source_side.other):
            chain = [dataclasses.replace(a, urgent=True) for a in chain]  # a primeira coisa desta execução
        if chain:
            self.chains.append(chain)
        if source_side == Side.BACKUP and b is not None and self.deny(
                key, "veredito do principal incerto no fuso dele (margem de fusos): bloqueada no backup", b,
                self.clock.might(b, Side.BACKUP), source_allows=self.clock.sure(p_after, Side.PRIMARY)):
            b_after = dataclasses.replace(b, status=BLOCKED)  # o principal não é bloqueado pela margem; o backup, sim
        self._settle(key, p_after, b_after)

    def _unreachable(self, key: str, p: License | None, b: License | None) -> None:
        """device_id que não cabe num caminho de URL (ex.: com '/'): o servidor real não acha a rota de
        bloqueio. Criar ou atualizar deixaria a licença liberada sem poder bloquear: nada é enviado."""
        self.divergences.append(Divergence(
            RecordKind.LICENSE, key, "device_id", key if p else None, key if b else None,
            "contém '/' (ou é '.'/'..'): a API não consegue bloquear/ativar este id; nada foi enviado"))
        if self.differs(p, b):
            self.mismatches.append(key)
        if p is not None and b is not None:
            self.expected[key] = (p, b)

    def _settle(self, key: str, p_after: License, b_after: License) -> None:
        self.expected[key] = (p_after, b_after)
        self.divergences.extend(license_divergences(p_after, b_after))
        if self.differs(p_after, b_after):
            self.mismatches.append(key)

    def delete(self, key: str, side: Side, why: str) -> None:
        self.deletions.append(Action(DELETE, key, why, side=side, absence=True))

    def conflict(self, key: str, why: str) -> None:
        p, b = self.primary.licenses.get(key), self.backup.licenses.get(key)
        winner = self.options.conflict
        self.conflicts.append(Conflict(key, why, ConflictPolicy(winner), p, b))
        if winner == ConflictPolicy.REPORT:
            # enquanto o conflito não é resolvido, o backup não libera o que o principal nega
            blocked = self.deny(
                key, "conflito em aberto: bloqueada enquanto não for resolvido (o principal nega)", b,
                self.clock.might(b, Side.BACKUP), source_allows=self.clock.sure(p, Side.PRIMARY))
            if not blocked and self.differs(p, b):
                self.mismatches.append(key)
            return
        winner_side = Side.PRIMARY if winner == ConflictPolicy.PRIMARY else Side.BACKUP
        kept = p if winner_side == Side.PRIMARY else b
        if kept is None:  # a versão vencedora é "apagada"
            self.delete(key, winner_side.other, f"conflito resolvido a favor do {winner} (apagada lá)")
        else:
            self.sync(key, winner_side)

    def one_way(self, key: str) -> None:
        p, b = self.primary.licenses.get(key), self.backup.licenses.get(key)
        if p is not None and b is not None and self.options.only_missing:
            self._settle(key, p, b)  # restaurar sem --forcar: o que já existe no destino fica como está
        elif p is not None:
            if b is None and self.tombstoned(key):  # restaurar: apagada no principal depois de sincronizada
                self.not_restored.append(key)
                return
            self.sync(key, Side.PRIMARY, rewrite=key in self.backup.rejected)
        elif not self.options.protect_target:  # restaurar: o que só o principal (o destino) tem fica como está
            return
        elif self.options.mirror and self.state is not None:
            self.delete(key, Side.BACKUP, "não existe no principal (--espelhar)")
        elif b is not None and self.state is not None and self.reappeared(key) \
                and not sold_after(b, dt.date.fromisoformat(self.state.deleted[key][0])):  # reappeared exige b e state
            # a exclusão já feita dos dois lados (pelo vendedor) volta a valer numa cópia antiga do backup
            self.delete(key, Side.BACKUP, "apagada dos dois lados e de volta no backup (cópia antiga restaurada): "
                                       "apagada de novo")
        elif b is not None and self.clock.might(b, Side.BACKUP) and key not in self.denied:  # (might(None) é False)
            # apagada e vendida de novo no backup (começou depois da exclusão): venda, fica liberada
            self.backup_only(key, b)

    def backup_only(self, key: str, b: License) -> None:
        """Licença liberada no backup que o principal não tem (e portanto nega). Nunca passa em silêncio:
        - já sincronizada (ou apagada dos dois lados) e intocada no backup desde então → o principal a
          apagou (reembolso): bloqueada (reversível; só --espelhar apaga);
        - começou no backup depois da última sincronização → venda feita lá enquanto o principal estava fora:
          continua liberada (nunca se bloqueia uma venda) e o relatório diz como levá-la ao principal;
        - o resto (estado perdido, URL escrita de outro jeito, mudada no backup) → não dá para saber: fica
          como está e o par sai com 1, com os dois comandos (ou --bloquear-so-no-backup bloqueia)."""
        state = self.state
        seen = state.backup_only.get(key) if state else None
        if seen is not None:  # já estava só no backup na última execução: continua o que era
            if seen == BACKUP_SALE:
                return self.sales.append(key)
            if not self.deny_unknown(key, b):
                self.unknown.append(key)
            return None
        base = state.licenses.get(key) if state else None
        tomb = state.deleted.get(key) if state else None
        since = dt.date.fromisoformat(tomb[0]) if tomb else (state.synced_on if state else None)
        if (base is not None or tomb is not None) and not sold_after(b, since) and \
                (base is None or not changed_since(b, base, Side.BACKUP)):
            self.deny(key, "apagada no principal desde a última sincronização (bloqueada para negar igual; "
                           "--espelhar apagaria)", b, True, absence=True)
        elif sold_after(b, since, strict=base is not None or tomb is not None):
            self.sales.append(key)
        elif not self.deny_unknown(key, b):
            self.unknown.append(key)
        return None

    def deny_unknown(self, key: str, b: License) -> bool:
        """--bloquear-so-no-backup: o vendedor confirma que as de origem desconhecida são reembolsos."""
        return self.options.block_backup_only and self.deny(
            key, "só no backup, de origem desconhecida (--bloquear-so-no-backup): bloqueada para negar igual ao "
                 "principal", b, True, absence=True)

    def tombstoned(self, key: str) -> bool:
        """Restaurar (a origem é o backup): a licença foi apagada no principal depois de sincronizada — o
        estado a lembra apagada dos dois lados ou ausente do principal — e não é recriada (--forcar recria)."""
        if self.options.protect_target or self.options.force or self.state is None:
            return False
        entry = self.state.licenses.get(key)  # estado com os lados trocados: "backup" é o principal de verdade
        return key in self.state.deleted or (entry is not None and entry.fp(Side.BACKUP) is None)

    def two_way(self, key: str) -> None:
        p, b = self.primary.licenses.get(key), self.backup.licenses.get(key)
        base = self.state.licenses.get(key) if self.state else None
        if key in self.rolled_back:  # o backup voltou atrás: nunca aplicado em silêncio no principal
            return self.conflict(key, "apagada no backup desde a última sincronização (no bidirecional, uma "
                                      "exclusão no backup só chega ao principal com --conflito backup)" if b is None
                                 else "reapareceu no backup depois de apagada dos dois lados (cópia antiga "
                                      "restaurada?)" if base is None
                                 else "voltou no backup a uma versão já sincronizada antes (cópia antiga "
                                      "restaurada?)")
        if self.resume(key, p, b):
            return None
        if base is None:
            if p is not None and b is not None and not same_record(p, b, self.clock):
                if self.state is None:
                    return self.conflict(key, "diferente nos dois lados e sem estado salvo (primeira sincronização)")
                return self.conflict(key, "criada nos dois lados com dados diferentes")
            return self.sync(key, Side.PRIMARY if p is not None else Side.BACKUP)
        changed_p, changed_b = changed_since(p, base, Side.PRIMARY), changed_since(b, base, Side.BACKUP)
        if p is None and b is None:
            return None
        if p is None or b is None:
            gone, survivor = (Side.PRIMARY, b) if p is None else (Side.BACKUP, p)
            present = gone.other
            if changed_since(survivor, base, present):
                return self.conflict(key, f"apagada no {gone} e alterada no {present}")
            return self.delete(key, present, f"apagada no {gone} desde a última sincronização")
        if changed_p and changed_b and not same_record(p, b, self.clock):
            return self.conflict(key, "alterada nos dois lados desde a última sincronização")
        self.sync(key, Side.BACKUP if changed_b and not changed_p else Side.PRIMARY)

    def keep_denied(self, key: str) -> None:
        """Registro do principal fora do plano (ilegível, grande demais...): não é copiado, mas o backup
        não pode liberar o que o principal nega (ou cujo veredito não dá para saber)."""
        b = self.backup.licenses.get(key)
        if b is None:
            return
        self.deny(key, "registro do principal não sincronizável e negado lá (ou de veredito desconhecido): "
                       "bloqueada para não liberar mais que o principal", b, self.clock.might(b, Side.BACKUP),
                  source_allows=rejected_verdict(self.primary, key, self.clock.span(Side.PRIMARY)[1]) is True)

    def keep_backup_denied(self, key: str) -> None:
        """Bidirecional: registro do backup fora do plano (ilegível). Não vai para o principal, mas se o
        principal nega (ou não o tem), o backup não pode liberar: bloqueado lá."""
        self.deny(key, "registro ilegível no backup e negado no principal: bloqueado para não liberar mais que "
                       "o principal", self.backup.rejected[key],
                  rejected_verdict(self.backup, key, self.clock.span(Side.BACKUP)[0]),
                  source_allows=self.clock.sure(self.primary.licenses.get(key), Side.PRIMARY))

    def block_trimmed_twins(self) -> None:
        """Id com espaços nas pontas no principal: o cliente pergunta pelo id sem espaços e o principal
        nega. Uma cópia 'aparada' liberada no backup (ferramentas antigas faziam isso) é bloqueada."""
        for raw in sorted(self.primary.unreachable):
            key = raw.strip()
            b = self.backup.licenses.get(key)
            if key in self.primary.licenses or key in self.primary.rejected or b is None:
                continue
            self.deny(key, f"o principal só tem {raw!r} (com espaços nas pontas, inalcançável: nega); bloqueada "
                           "para negar igual", b, self.clock.might(b, Side.BACKUP))

    def find_rolled_back(self) -> list[str]:
        """Registros do backup que voltaram atrás desde a última sincronização (sumiram enquanto o
        principal ainda os tem, ou voltaram a uma versão antiga): o que uma cópia antiga restaurada faz."""
        if not self.state or self.options.mode != Mode.TWO_WAY:
            return []
        outside = set(self.primary.rejected) | set(self.backup.rejected)
        # o que uma cadeia nossa deixou no backup (no diário, inclusive a exclusão que a desfaz) não é cópia antiga
        found = {key for key, base in self.state.licenses.items() if key not in outside and moved_back(
            self.backup.licenses.get(key), self.primary.licenses.get(key), base, Side.BACKUP)
            and self.ours(key, Side.BACKUP) is None}
        found |= {key for key in self.state.deleted if self.reappeared(key)}
        return sorted(found)

    def reappeared(self, key: str) -> bool:
        """Apagada dos dois lados e de volta no backup (só lá), com dados que ele já teve: cópia antiga."""
        b = self.backup.licenses.get(key)
        if b is None or key in self.primary.licenses or not self.state or key not in self.state.deleted:
            return False
        return fingerprint(b) in {v.split("|", 1)[0] for v in self.state.deleted[key][1]}

    def run(self) -> None:
        two_way = self.options.mode == Mode.TWO_WAY
        self.rolled_back = set(self.find_rolled_back())
        # registros fora do plano: no bidirecional, um ilegível no backup também não vira "apagado lá"
        outside = set(self.primary.rejected) | (set(self.backup.rejected) if two_way else set())
        keys = set(self.primary.licenses) | set(self.backup.licenses)
        if two_way and self.state:
            keys |= set(self.state.licenses)
        if self.options.protect_target:  # em restaurar o destino é o principal: nunca bloqueado por isso
            for key in sorted(self.primary.rejected):
                self.keep_denied(key)
            if two_way:
                for key in sorted(set(self.backup.rejected) - set(self.primary.rejected)):
                    self.keep_backup_denied(key)
            else:
                self.block_trimmed_twins()
        for key in sorted(keys - outside):
            p, b = self.primary.licenses.get(key), self.backup.licenses.get(key)
            if p is not None or two_way:
                self.compared += 1
                if self.differs(p, b):
                    self.current.append(key)
            self.two_way(key) if two_way and key not in self.options.one_way_keys else self.one_way(key)


class collector_paused:
    """Pausa o coletor de lixo cíclico durante o plano: o plano só cria objetos sem ciclos, e
    com 100 mil licenças as coletas completas (que varrem os retratos inteiros) eram metade do tempo."""

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: Any) -> None:
        if self._was_enabled:
            gc.enable()


def path_safe(device_id: str) -> bool:
    """O id pode ir no caminho /admin/devices/<id>/...? O Flask decodifica %2F antes de rotear."""
    return "/" not in device_id and device_id not in (".", "..")


def default_max_deletions(total: int) -> int:
    return min(50, max(1, -(-total // 10)))  # 10 % (arredondado para cima), no mínimo 1, no máximo 50


class DeletionLimit(NamedTuple):
    side: Side  # lado do plano que receberia as exclusões
    count: int  # type: ignore[assignment]  # de propósito: esconde tuple.count (ninguém conta itens daqui)
    limit: int


def guard_deletions(deletions: list[Action], primary: Snapshot, backup: Snapshot,
                    options: PlanOptions) -> tuple[list[Action], list[Action], list[DeletionLimit]]:
    """Limite de exclusões por lado (--max-exclusoes; padrão 10 % das licenças do lado, até 50): devolve
    (aplicadas, retidas, limites ultrapassados). --forcar aplica mesmo acima do limite. Um lado que perdeu
    dados não chega aqui: data_loss para o par antes."""
    snapshots = {Side.PRIMARY: primary, Side.BACKUP: backup}
    exceeded = []
    for side in (Side.BACKUP, Side.PRIMARY):
        count = sum(1 for a in deletions if a.side == side)
        limit = options.max_deletions if options.max_deletions is not None else \
            default_max_deletions(snapshots[side].license_count)
        if count > limit:
            exceeded.append(DeletionLimit(side, count, limit))
    if not exceeded or options.force:
        return deletions, [], exceeded
    return [], deletions, exceeded


def plan_pair(primary: Snapshot, backup: Snapshot, today: "dt.date | Clock", state: PairState | None = None,
              options: PlanOptions | None = None, learned: Iterable[Divergence] = ()) -> Plan:
    """Planeja a sincronização de um par (principal, backup). Puro: sem rede e sem arquivos. `learned`: o que
    o backup não consegue guardar, achado antes do plano (Run.learn_limits); vem antes das divergências do plano."""
    options = options or PlanOptions()
    two_way = options.mode == Mode.TWO_WAY
    real_primary = primary
    primary, unblocked = as_before_our_blocks(primary, backup, state, options)
    user_actions, user_divergences, backup_only_users = plan_users(primary, backup, state, two_way,
                                                                   options.role_of)
    clock = Clock.of(today)
    planner = _Planner(primary, backup, clock, state, options)
    planner.run()
    for key in unblocked:  # a origem real continua bloqueada: o estado e a paridade são os de verdade
        real = real_primary.licenses[key]
        if key in planner.expected:
            planner.expected[key] = (real, planner.expected[key][1])
            if planner.differs(real, planner.expected[key][1]) and key not in planner.mismatches:
                planner.mismatches.append(key)
        if key in planner.current and not planner.differs(real, backup.licenses.get(key)):
            planner.current.remove(key)
    allowed, held, limits = guard_deletions(planner.deletions, primary, backup, options)
    touched = {a.key for a in allowed + held}
    backup_only = [] if two_way else sorted(set(backup.licenses) - set(primary.licenses) - touched)
    blocked_now = {chain[0].key for chain in planner.chains}
    shrink_limit = None
    if state is not None and not two_way and not options.mirror and options.protect_target:
        # bloqueios por ausência contam como exclusões: a mesma trava do --espelhar (listagem cortada)
        shrink_limit = options.max_deletions if options.max_deletions is not None else \
            default_max_deletions(state.count_primary)
    # restaurar não bloqueia nem apaga no destino o que sumiu da origem: lá o sumiço não é perda
    went_back = primary_went_back(state, primary, backup)
    # o sumiço vira bloqueio (reversível) só no unidirecional sem --espelhar; senão, exclusão: lá duas já param
    reversible = not two_way and not options.mirror
    vanished = vanished_together(state, Side.PRIMARY, primary, went_back[1],
                                 VANISHED_NEWEST_MIN if reversible else VANISHED_NEWEST_DOUBT) \
        if options.protect_target and state else None
    loss = data_loss(primary, backup, state, two_way, sorted(planner.rolled_back), went_back, shrink_limit, vanished)
    newest_vanished = doubtful_newest(vanished) if loss is None and reversible else []
    if loss is not None:
        loss = dataclasses.replace(loss, **damage(loss.side, state, primary, backup, planner))
    halted = loss is not None and not forced_past(loss, options)
    if halted:  # nada é gravado; as exclusões que haveria aparecem como retidas, e a paridade é a de agora
        user_actions, planner.chains, allowed, held = [], [], [], allowed + held
        planner.mismatches = list(planner.current)
    # o plano sai congelado: as listas do planejador viram tuplas (na mesma ordem) e o esperado, só leitura
    return Plan(
        halted=halted, loss=loss, clock=clock, backup_sales=tuple(sorted(planner.sales)),
        backup_unknown=tuple(sorted(planner.unknown)), not_restored=tuple(sorted(planner.not_restored)),
        newest_vanished=tuple(newest_vanished),
        unblocked=tuple(k for k in unblocked if any(c[0].key == k for c in planner.chains)),
        backup_only_allowed=tuple(k for k in backup_only
                                  if clock.might(backup.licenses[k], Side.BACKUP) and k not in blocked_now),
        user_actions=tuple(user_actions), license_chains=tuple(tuple(c) for c in planner.chains),
        divergences=(*learned, *user_divergences, *planner.divergences), backup_only_users=tuple(backup_only_users),
        backup_only_licenses=tuple(backup_only),
        skipped=tuple(p for p in primary.problems
                      if p.kind == RecordKind.LICENSE and p.reason != ProblemKind.UNREACHABLE),
        unreachable=tuple(p for p in primary.problems if p.reason == ProblemKind.UNREACHABLE),
        licenses_compared=planner.compared, parity_mismatches=tuple(planner.mismatches),
        current_mismatches=tuple(planner.current), deletions=tuple(allowed), held_deletions=tuple(held),
        limits=tuple(limits), conflicts=tuple(planner.conflicts), expected=types.MappingProxyType(planner.expected),
        first_sync=state is None, skipped_users=tuple(p for p in primary.problems if p.kind == RecordKind.USER),
    )


def as_before_our_blocks(source: Snapshot, target: Snapshot, state: PairState | None,
                         options: PlanOptions) -> tuple[Snapshot, list[str]]:
    """Restaurar (a origem é o backup): uma licença que a própria ferramenta bloqueou no backup porque sumiu do
    principal (PairState.blocked_from) volta ao principal como era ANTES desse bloqueio — uma venda paga volta
    liberada, nunca bloqueada. Devolve a origem como o plano a usa e as chaves devolvidas assim. Só vale
    enquanto o backup continua bloqueado e o principal não a tem (com --forcar, também sobre a dele)."""
    if options.protect_target or state is None or not state.blocked_from:
        return source, []
    changed = {key: dataclasses.replace(source.licenses[key], status=LicenseStatus.parse(status))
               for key, status in state.blocked_from.items()
               if key in source.licenses and source.licenses[key].status == BLOCKED
               and (key not in target.licenses or not options.only_missing) and key not in target.rejected}
    if not changed:
        return source, []
    return dataclasses.replace(source, licenses={**source.licenses, **changed}), sorted(changed)


ROLLBACK_MIN = 2  # registros que voltaram atrás no backup de uma vez: a partir daqui, "cópia antiga restaurada"


def primary_went_back(state: PairState | None, primary: Snapshot, backup: Snapshot) -> tuple[list[str], list[str]]:
    """O principal (no plano: a origem) desde a última sincronização: (voltaram, sumiram). Voltaram: registros
    que voltaram a uma versão sincronizada ANTES da última, ou apagados dos dois lados que reapareceram com
    dados que já tiveram. Sumiram: sincronizados, presentes no principal da última vez, ausentes agora e
    ainda no backup. É o que uma cópia antiga restaurada (ou uma listagem cortada) faz."""
    if state is None:
        return [], []
    outside = set(primary.rejected) | set(backup.rejected)
    back, gone = [], []
    for key, base in state.licenses.items():
        if key in outside:
            continue
        lic = primary.licenses.get(key)
        if lic is None:
            if base.fp(Side.PRIMARY) is not None and key in backup.licenses:
                gone.append(key)
        elif base.older_primary and moved_back(lic, None, base, Side.PRIMARY):  # sem versões antigas: nada a comparar
            back.append(key)
    for key, (_when, versions) in state.deleted.items():
        lic = primary.licenses.get(key)
        if lic is not None and key not in outside and fingerprint(lic) in {v.split("|", 1)[0] for v in versions}:
            back.append(key)
    return sorted(back), sorted(gone)


VANISHED_NEWEST_MIN = 3  # as mais novas sumidas juntas a partir daqui: cópia anterior restaurada
# duas mais novas juntas (sem id reusado): reembolsos OU uma cópia de pouco antes. Bloqueadas no backup como
# reembolsos (reversível: o status de antes fica no estado) e o par sai com 1, com os dois comandos
VANISHED_NEWEST_DOUBT = 2
VANISHED_BLOCK_MIN = 3  # um bloco seguido da listagem (meio ou fim) a partir daqui: listagem cortada


def vanished_together(state: PairState, side: Side, snap: Snapshot, gone: list[str],
                      newest_min: int = VANISHED_NEWEST_MIN) -> "Vanished":
    """Como sumiram do lado `side` (`snap`) as licenças `gone` (presentes nele na última sincronização e ainda
    no outro lado). A ordem de criação é o `id` local guardado no estado (a listagem vem da mais nova para a
    mais antiga). Uma cópia anterior restaurada pelo provedor perde as MAIS NOVAS, juntas, e devolve o contador
    de ids (as vendas feitas depois reusam os ids das perdidas); uma listagem cortada (proxy, página parcial)
    perde um bloco seguido; reembolsos são exclusões esparsas. Devolve (RESTORED ou CUT; None para exclusões
    esparsas ou sem ids para comparar), as sumidas da mais nova para a mais antiga, as que tiveram o id reusado
    e quantas das mais novas sumiram juntas."""
    if not gone:
        return None, (), (), 0
    index = 0 if side == Side.PRIMARY else 1
    stored = {k: local_id for k, pair in state.ids.items() if type(local_id := pair[index]) is int}
    owner_now = {i: k for k, i in snap.server_ids.items()}
    reused = tuple(sorted(k for k in gone if k in stored and owner_now.get(stored[k], k) != k))
    lost = set(gone)
    # as que o lado tinha na última sincronização, da mais nova para a mais antiga; as que sumiram dos dois
    # lados (apagadas pelo vendedor) não contam nem para um lado nem para o outro
    order = sorted((k for k, base in state.licenses.items() if base.fp(side) is not None and k in stored
                    and (k in lost or k in snap.licenses or k in snap.rejected)), key=lambda k: -stored[k])
    marks = [k in lost for k in order]
    newest = next((i for i, mark in enumerate(marks) if not mark), len(marks))
    longest = run = 0
    for mark in marks:
        run = run + 1 if mark else 0
        longest = max(longest, run)
    ordered = tuple(k for k in order if k in lost) + tuple(sorted(lost - set(order)))
    if reused or newest >= newest_min:
        return LossKind.RESTORED, ordered, reused, newest
    if longest >= VANISHED_BLOCK_MIN:
        return LossKind.CUT, ordered, (), newest
    return None, ordered, (), newest


Vanished = tuple[LossKind | None, tuple[str, ...], tuple[str, ...], int]  # o que vanished_together devolve


def doubtful_newest(vanished: Vanished | None) -> list[str]:
    """Do sumiço já classificado (vanished_together): as licenças mais novas do principal que sumiram juntas
    quando são poucas para parar o par (VANISHED_NEWEST_DOUBT até VANISHED_NEWEST_MIN − 1, sem id reusado):
    reembolsos das últimas vendas ou uma cópia de pouco antes, sem como saber. Da mais nova para a mais
    antiga; vazio quando não é o caso."""
    if vanished is None:
        return []
    kind, ordered, _reused, newest = vanished
    return list(ordered[:newest]) if kind is None and newest >= VANISHED_NEWEST_DOUBT else []


def data_loss(primary: Snapshot, backup: Snapshot, state: PairState | None, two_way: bool,
              rolled_back: Sequence[str] = (), primary_back: tuple[list[str], list[str]] = ([], []),
              shrink_limit: int | None = None, vanished: Vanished | None = None) -> DataLoss | None:
    """A regra única de "um lado perdeu dados", usada em todos os modos (restaurar inclusive: lá a origem é o
    backup). Um lado que serve de modelo (a origem; no bidirecional, os dois) e que voltou vazio, perdeu mais
    da metade das licenças desde a última sincronização, voltou a uma cópia antiga (`primary_back`: algum
    registro numa versão anterior e, com os que sumiram, ROLLBACK_MIN ou mais; o backup no bidirecional:
    `rolled_back`), perdeu juntas as licenças mais novas ou um bloco seguido da listagem (`vanished`: o sumiço
    do principal já classificado por vanished_together — cópia anterior restaurada ou listagem cortada;
    reembolsos são exclusões esparsas e seguem; None: não se olha) ou encolheu além do limite de exclusões
    (`shrink_limit`: bloquear por ausência também é excluir para o cliente) não pode servir de modelo."""
    sides = [(Side.PRIMARY, primary, backup, state.count_primary if state else 0)]
    if two_way:
        sides.append((Side.BACKUP, backup, primary, state.count_backup if state else 0))
    for name, snap, other, before in sides:
        now = snap.license_count
        # Origem vazia no unidirecional: suspeita mesmo sem estado. No bidirecional, sem estado, um lado
        # vazio é só a primeira sincronização (tudo é copiado para ele, nada é apagado).
        if now == 0 and other.license_count and (before or not two_way):
            return DataLoss(name, LossKind.EMPTY, now, before, other.license_count)
        if before and now < before / 2:
            return DataLoss(name, LossKind.HALF, now, before, other.license_count)
    back, gone = primary_back
    before_p = state.count_primary if state else 0
    if back and len(back) + len(gone) >= ROLLBACK_MIN:
        return DataLoss(Side.PRIMARY, LossKind.ROLLED_BACK, primary.license_count, before_p, backup.license_count,
                        tuple(sorted(back + gone)))
    together, ordered, reused, newest = vanished or (None, (), (), 0)
    if together is not None:
        return DataLoss(Side.PRIMARY, together, primary.license_count, before_p, backup.license_count,
                        ordered, reused=reused, newest=newest)
    if shrink_limit is not None and len(gone) > shrink_limit:
        return DataLoss(Side.PRIMARY, LossKind.SHRANK, primary.license_count, before_p, backup.license_count,
                        tuple(gone))
    if len(rolled_back) >= ROLLBACK_MIN:
        return DataLoss(Side.BACKUP, LossKind.ROLLED_BACK, backup.license_count, state.count_backup if state else 0,
                        primary.license_count, tuple(rolled_back))
    return None


class _Damage(TypedDict):
    """Os campos de DataLoss que damage() preenche."""
    would_delete: int
    would_overwrite: int


def damage(lost_side: Side, state: PairState | None, primary: Snapshot, backup: Snapshot,
           planner: "_Planner") -> _Damage:
    """O que seguir apesar da perda poderia fazer no lado BOM: apagar (ou bloquear) o que sumiu do lado que
    perdeu dados — seja por exclusão direta ou por um conflito resolvido a favor dele — e sobrescrever."""
    good = lost_side.other
    lost_snap, good_snap = (primary, backup) if lost_side == Side.PRIMARY else (backup, primary)
    gone = {key for key in (state.licenses if state else ()) if key not in lost_snap.licenses
            and key not in lost_snap.rejected and key in good_snap.licenses}
    gone |= {a.key for a in planner.deletions if a.side == good}
    gone |= {c[0].key for c in planner.chains if c[0].side == good and c[0].absence}
    overwritten = {c[0].key for c in planner.chains if c[0].side == good and c[0].kind in UPSERTS + (SET_CREATED_BY,)}
    return {"would_delete": len(gone), "would_overwrite": len(overwritten - gone)}


def forced_past(loss: DataLoss, options: PlanOptions) -> bool:
    """--forcar sozinho nunca passa por um lado que perdeu dados quando isso apagaria algo no lado bom:
    é preciso dizer quantas exclusões se aceita (--max-exclusoes N, com N >= o número)."""
    if not options.force:
        return False
    return loss.would_delete == 0 or (options.max_deletions is not None and options.max_deletions >= loss.would_delete)


def replan_after_reread(plan: Plan, side: Side, first: Snapshot, fresh: Snapshot, other: Snapshot, clock: Clock,
                        chains: Sequence[Sequence[Action]], deletions: list[Action]
                        ) -> tuple[Plan, Sequence[Sequence[Action]], list[Action]]:
    """O principal relido logo antes da primeira escrita nele (`fresh`; `side` = o lado do plano que ele é:
    "principal" no bidirecional, "backup" em restaurar). Toda escrita planejada num registro que mudou desde a
    primeira leitura (`first`) sai e vira conflito (a próxima execução decide); se o principal passou a negar o
    que o backup (`other`) libera, a cadeia do backup vira um bloqueio (deny_on_target). Devolve o plano novo
    (com esses conflitos e bloqueios) e as (cadeias, exclusões) que ainda podem ir ao principal. Puro: quem
    relê é o Run."""
    changed = {key for key in {c[0].key for c in chains} | {a.key for a in deletions}
               if key in fresh.rejected or fresh.licenses.get(key) != first.licenses.get(key)}
    found: list[Conflict] = []
    license_chains = plan.license_chains
    for key in sorted(changed):
        now, copy = fresh.licenses.get(key), other.licenses.get(key)
        p, b = (now, copy) if side == Side.PRIMARY else (copy, now)
        found.append(Conflict(
            key, "mudou no principal durante esta execução (depois da leitura e antes da escrita): nada foi "
            "escrito nele; a próxima execução decide", ConflictPolicy.REPORT, p, b))
        if side != Side.PRIMARY or copy is None:
            continue
        block = deny_on_target(key, copy.status, clock.might(copy, Side.BACKUP),
                               "negada no principal durante esta execução: bloqueada para negar igual",
                               source_allows=clock.sure(now, Side.PRIMARY))
        if block:  # aplicado na vez do backup, no lugar do que estava planejado para ele
            license_chains = (*(c for c in license_chains if not (c[0].key == key and c[0].side == Side.BACKUP)),
                              tuple(block))
    new = dataclasses.replace(plan, conflicts=plan.conflicts + tuple(found), license_chains=license_chains)
    return new, [c for c in chains if c[0].key not in changed], [a for a in deletions if a.key not in changed]




def merge_final(plan: Plan, again: Plan) -> Plan:
    """A releitura final (Run.settle): o replanejamento sobre ela (`again`) também decide o par. Um
    lado que perdeu dados lá para o par (código 5) mesmo que a primeira rodada não tenha visto; exclusões
    retidas se somam; as licenças liberadas só no backup e os conflitos passam a ser os de agora. Devolve
    o plano novo (`plan` não muda)."""
    held = {a.key for a in plan.held_deletions}
    return merge_conflicts(dataclasses.replace(
        plan, halted=plan.halted or again.halted, loss=again.loss if again.halted else plan.loss,
        held_deletions=(*plan.held_deletions, *(a for a in again.held_deletions if a.key not in held)),
        backup_only_allowed=again.backup_only_allowed, backup_sales=again.backup_sales,
        backup_unknown=again.backup_unknown,
        newest_vanished=(*plan.newest_vanished, *(k for k in again.newest_vanished if k not in plan.newest_vanished))),
        again.conflicts)


def merge_conflicts(plan: Plan, found: Iterable[Conflict]) -> Plan:
    """O plano com os conflitos `found` de outro plano do mesmo par (uma rodada extra, a releitura final) que ele
    ainda não tem (pela chave)."""
    known = {c.key for c in plan.conflicts}
    return dataclasses.replace(plan, conflicts=plan.conflicts + tuple(c for c in found if c.key not in known))


# ============================================================================
# Executor: aplica as ações pela API, em paralelo limitado
# ============================================================================

@dataclasses.dataclass
class Result:
    action: Action
    ok: bool
    message: str = ""
    unsyncable: bool = False  # não é falha: a API não permite (ex.: nome de super-admin)
    left_allowed: bool = False  # a cadeia pode ter deixado a licença LIBERADA onde a origem nega (diário)


PROGRESS_LOG_EVERY = 5.0  # sem terminal (cron, systemd, log): uma linha de progresso a cada tantos segundos


class Progress:
    """Contador ao vivo no terminal (enabled: a mesma linha reescrita); sem terminal (cron, systemd, a saída num
    arquivo), uma linha inteira a cada PROGRESS_LOG_EVERY segundos com as contagens, para o log não ficar mudo
    numa primeira sincronização longa. Nunca no --json (config.progress é falso)."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.done = label, total, 0
        tty = bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.enabled = enabled and total >= 20 and tty
        self.log_lines = enabled and total >= 20 and not tty
        self._lock = threading.Lock()
        self._last = 0.0
        self._started = time.monotonic()
        self._logged_at = self._started

    def step(self) -> None:
        with self._lock:
            self.done += 1
            now = time.monotonic()
            if self.log_lines and now - self._logged_at >= PROGRESS_LOG_EVERY:
                self._logged_at = now
                sys.stderr.write(f"   ⏳ gravando {self.label}: {self.done} de {self.total} "
                                 f"({100 * self.done // self.total}%), {now - self._started:.0f} s\n")
                sys.stderr.flush()
            if self.enabled and (now - self._last > 0.2 or self.done == self.total):
                self._last = now
                sys.stderr.write(f"\r   {self.label}: {self.done}/{self.total}")
                if self.done == self.total:
                    sys.stderr.write("\n")
                sys.stderr.flush()


class Interrupted(KeyboardInterrupt):
    """Ctrl+C ou SIGTERM fora das escritas: a execução para ali mesmo (code: 130 ou 143)."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


STOP_CODES = {"SIGINT": ExitCode.INTERRUPTED, "SIGTERM": ExitCode.TERMINATED}


class StopSignals:
    """Ctrl+C (SIGINT) e SIGTERM (systemd, kill, o agendador parando a tarefa), tratados do mesmo jeito.

    Fora de uma etapa protegida (login, leituras, planejamento), o sinal para a execução na hora
    (Interrupted). Dentro dela (escritas e registro do que foi feito), só anota o pedido: nenhuma
    sequência nova começa, as que estão no meio terminam (criar → bloquear nunca fica com a licença
    liberada) e a execução registra o que os servidores confirmaram e sai com 130 ou 143. Um segundo
    sinal não corta uma sequência. Um kill -9 (ou o Windows encerrando a tarefa à força) não passa por
    aqui: o diário do par cobre esse caso."""

    def __init__(self) -> None:
        self.code: int | None = None
        self.event = threading.Event()  # lido pelas threads do executor
        self._shield = 0  # só a thread principal mexe (e é nela que o tratador roda)

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def handle(self, signum: int, _frame: Any = None) -> None:
        if self.code is None:
            self.code = STOP_CODES.get(signal.Signals(signum).name, ExitCode.INTERRUPTED)
        self.event.set()
        if self._shield == 0:
            raise Interrupted(self.code)

    @contextlib.contextmanager
    def shielded(self):
        """Etapa protegida: o sinal só é anotado (quem está dentro confere `requested`)."""
        self._shield += 1
        try:
            yield
        finally:
            self._shield -= 1

    @contextlib.contextmanager
    def interruptible(self):
        """Etapa que pode parar na hora (só leituras), mesmo dentro de uma protegida."""
        saved, self._shield = self._shield, 0
        try:
            if self.code is not None:
                raise Interrupted(self.code)
            yield
        finally:
            self._shield = saved

    @contextlib.contextmanager
    def installed(self):
        """Liga os tratadores de SIGINT e SIGTERM (só na thread principal) e devolve os anteriores ao sair."""
        self.code, self._shield = None, 0
        self.event.clear()
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for name in STOP_CODES:
                sig = getattr(signal, name, None)
                if sig is not None:
                    try:
                        previous[sig] = signal.signal(sig, self.handle)
                    except (OSError, ValueError):
                        pass
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                try:
                    signal.signal(sig, handler)
                except (OSError, ValueError):
                    pass



def stop_signals() -> StopSignals:
    """Os sinais de parada da execução em andamento (RunContext.stop: um por chamada de main())."""
    return run_context().stop


def stop_label(code: int | None) -> str:
    return "SIGTERM" if code == ExitCode.TERMINATED else "Ctrl+C"


NOT_THERE = "não bloqueada: a licença não existe nesse servidor (negada lá, como na origem)"
PROBE_ID = "sincronizar-bancos-sonda"  # id que só aparece no caminho de uma sonda GET (nada é gravado)
# Rota de escrita → caminho da sonda. Um GET numa rota que só aceita POST/DELETE responde 405 num servidor
# que a tem e 404 (página HTML do Flask) numa versão antiga que não a tem; nenhum dos dois grava nada.
PROBED_ROUTES = {BLOCK: f"/admin/devices/{PROBE_ID}/deactivate", DELETE: f"/admin/devices/{PROBE_ID}/delete",
                 SET_CREATED_BY: "/admin/devices/update-created-by"}
ROUTE_NAMES = {BLOCK: "bloquear/ativar (POST /admin/devices/<id>/deactivate)",
               DELETE: "excluir (DELETE /admin/devices/<id>/delete)",
               SET_CREATED_BY: "corrigir created_by (POST /admin/devices/update-created-by)"}


# Larguras das colunas de um servidor sobre MySQL: um valor mais longo é cortado (modo não estrito) ou
# recusado com HTTP 500 (estrito). address é TEXT (sem limite).
MYSQL_WIDTHS = {"owner_name": 255, "email": 255, "cpf": 20, "created_by": 100, "license_type": 50}


def too_wide(payload: dict[str, Any] | None) -> list[str]:
    """Campos do envio maiores que as colunas de um servidor MySQL (num MySQL estrito, a causa de um 500)."""
    return [f"{field} com {len(value)} caracteres (máximo {width})" for field, width in MYSQL_WIDTHS.items()
            if isinstance(value := (payload or {}).get(field), str) and len(value) > width]


def fit_widths(payload: dict[str, Any]) -> dict[str, Any]:
    """O envio com cada texto cortado na largura da coluna do MySQL (o que um MySQL não estrito grava)."""
    return {field: value[:MYSQL_WIDTHS[field]] if field in MYSQL_WIDTHS and isinstance(value, str) else value
            for field, value in payload.items()}


def has_route(client: ApiClient, kind: ActionKind) -> bool | None:
    """A rota de escrita de `kind` existe nesse servidor? Sondada uma vez por execução (um GET, nada gravado):
    True = 405 (existe); False = 404 que não é JSON da API (versão antiga); None = não deu para saber (segue
    como se existisse: a compensação da cadeia cobre)."""
    if kind not in client.routes:
        try:
            resp = client.request("GET", PROBED_ROUTES[kind])
            client.routes[kind] = True if resp.status == 405 else \
                False if resp.status == 404 and resp.kind != "json" else None
        except ApiError:
            client.routes[kind] = None
    return client.routes[kind]


def unblocks_then_blocks(chain: Sequence[Action]) -> bool:
    """Cadeia que cria ou regrava (o upsert deixa a licença ativa: liberada) e termina bloqueando."""
    return chain[-1].kind == BLOCK and any(a.kind in UPSERTS for a in chain)


def needs_block_proof(chain: Sequence[Action]) -> bool:
    """Regrava um registro que JÁ EXISTE no destino e precisa terminar negado: só com a rota de bloqueio
    provada nesta execução (uma criação sem bloqueio é desfeita excluindo o que ela criou)."""
    return unblocks_then_blocks(chain) and chain[0].kind != CREATE


def transient_failure(resp: Response) -> bool:
    """HTTP 500 do aplicativo ou "database is locked" (dois escritores no mesmo SQLite): a mesma escrita
    costuma passar quando repetida. 502/503/504 já foram repetidos pelo urllib3."""
    message = (_api_error(resp) or "").lower()
    return resp.status == 500 or "database is locked" in message


class Executor:
    """Aplica as cadeias de um servidor. Regra: nenhuma cadeia deixa o servidor liberando mais do que antes
    da execução, mesmo falhando no meio. Escritas idempotentes são repetidas em 500/"database is locked";
    um bloqueio que falha depois de uma criação desfaz a criação (exclui o registro criado); um novo login
    recusado para de escrever nesse servidor; uma rota que falta (versão antiga) é sondada antes da primeira
    cadeia que precisa dela, e a cadeia que criaria uma licença liberada sem poder bloqueá-la não é enviada.
    Antes de regravar um registro que precisa terminar negado (o upsert desbloqueia), a rota de bloqueio
    tem de ter funcionado nesta execução nesse servidor (prove_block_route); antes de uma cadeia que
    regrava e bloqueia, um token perto de cair é renovado. As cadeias `urgent` vão antes de tudo."""

    def __init__(self, client: ApiClient, credentials: "CredentialStore", config: Config,
                 on_result: Callable[[Result], None] | None = None, backup: bool = False,
                 undo_journaled: bool = False):
        self.client = client
        self.credentials = credentials
        self.config = config
        self.on_result = on_result or (lambda result: None)  # ex.: auditoria gravada na hora
        # escreve num backup (nunca no principal): pode gravar texto cortado na largura da coluna de um MySQL
        # estrito e excluir um registro que já existia para desfazer uma cadeia que falhou: no unidirecional,
        # ou no bidirecional quando o desfazer está no diário (`undo_journaled`: gravado antes das escritas)
        self.backup = backup
        self.undo_journaled = undo_journaled
        self._stopping = threading.Event()
        self._auth_lost: str | None = None  # novo login recusado: nada mais é enviado a este servidor

    def run(self, user_actions: list[Action], chains: Sequence[Sequence[Action]],
            deletions: Sequence[Action] = ()) -> list[Result]:
        """Cadeias urgentes (uma licença que uma cadeia nossa deixou liberada) primeiro, depois usuários,
        as outras licenças (cada cadeia em ordem) e, por último, as exclusões."""
        urgent = [c for c in chains if c[0].urgent]
        results = self._run_licenses(urgent, []) if urgent else []
        results += self._run_chains([[a] for a in user_actions], "usuários")
        return results + self._run_licenses([c for c in chains if not c[0].urgent], deletions)

    def _run_licenses(self, chains: Sequence[Sequence[Action]], deletions: Sequence[Action]) -> list[Result]:
        results: list[Result] = []
        missing = self.missing_routes(chains, deletions)
        held = [c for c in chains if any(a.kind in missing for a in c)]
        chains = [c for c in chains if not any(a.kind in missing for a in c)]
        for chain in held:  # um resultado por cadeia (a primeira ação): a licença aparece uma vez no relatório
            results += self._not_sent(chain[:1], self._old_version_text(chain, missing))
        results += self._not_sent([a for a in deletions if a.kind in missing], "")
        deletions = [a for a in deletions if a.kind not in missing]
        results += self._run_license_chains(chains)
        results += self._run_chains([[a] for a in deletions], "exclusões")
        return results

    def _run_license_chains(self, chains: Sequence[Sequence[Action]]) -> list[Result]:
        """As cadeias que regravam um registro que já existe e precisa terminar negado (needs_block_proof) vão
        depois das outras: um bloqueio delas prova a rota; sem nenhum, uma prova só (prove_block_route). Os
        resultados voltam na ordem das cadeias (a mesma com --paralelo 1 ou 8)."""
        later = [c for c in chains if needs_block_proof(c)]
        if not later:
            return self._run_chains(chains, "licenças")
        progress = Progress("licenças", sum(len(c) for c in chains), self.config.progress)
        try:
            results = self._run_all([c for c in chains if not needs_block_proof(c)], progress)
            results += self.prove_block_route(later[0])
            results += self._run_all(later, progress)
        finally:
            if progress.enabled and 0 < progress.done < progress.total:  # parou no meio: fecha a linha "95/400"
                sys.stderr.write("\n")
        order = {c[0].key: i for i, c in enumerate(chains)}
        return sorted(results, key=lambda r: order.get(r.action.key, len(order)))  # estável: a cadeia em ordem

    # -- rotas que faltam (versões antigas do servidor) ---------------------------
    def missing_routes(self, chains: Sequence[Sequence[Action]], deletions: Sequence[Action]) -> set[str]:
        """Sonda (um GET cada, sem gravar nada) as rotas de que as cadeias precisam; devolve as que faltam.
        O resultado fica no cliente: uma sonda por rota e por servidor em toda a execução."""
        needed = ({a.kind for chain in chains for a in chain} | {a.kind for a in deletions}) & set(PROBED_ROUTES)
        return {kind for kind in needed if has_route(self.client, kind) is False}

    def _old_version_text(self, chain: Sequence[Action], missing: set[str]) -> str:
        kinds = {a.kind for a in chain} & missing
        routes = " e ".join(ROUTE_NAMES[k] for k in sorted(kinds))
        text = f"não enviada: {self.client.server.label} é de uma versão antiga, sem a rota de {routes}"
        if BLOCK in kinds and any(a.kind in UPSERTS for a in chain):
            return (f"{text}; criar ou atualizar a deixaria LIBERADA sem poder bloqueá-la (fica como está: "
                    "negada se não existe lá). Atualize esse servidor para a versão atual")
        if BLOCK in kinds:
            return (f"{text}: a licença continua como está lá (LIBERADA, enquanto a origem nega); bloqueie-a "
                    "no painel desse servidor ou atualize-o para a versão atual")
        return text

    def _not_sent(self, chain: Sequence[Action], message: str) -> list[Result]:
        results = [Result(a, False, message or f"não enviada: {self.client.server.label} não tem a rota de "
                          f"{ROUTE_NAMES.get(a.kind, a.kind)} (versão antiga)", unsyncable=True) for a in chain]
        for result in results:
            self.on_result(result)
        return results

    # -- cadeias ------------------------------------------------------------------
    def _run_chains(self, chains: Sequence[Sequence[Action]], label: str) -> list[Result]:
        progress = Progress(label, sum(len(c) for c in chains), self.config.progress)
        try:
            return self._run_all(chains, progress)
        finally:
            if progress.enabled and 0 < progress.done < progress.total:  # parou no meio: fecha a linha "95/400"
                sys.stderr.write("\n")

    def _run_all(self, chains: Sequence[Sequence[Action]], progress: Progress) -> list[Result]:
        if self.config.parallel <= 1 or len(chains) <= 1:
            return [r for chain in chains for r in self._run_chain(chain, progress)]
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.config.parallel)
        try:
            futures = [pool.submit(self._run_chain, chain, progress) for chain in chains]
            return [r for future in futures for r in future.result()]
        except KeyboardInterrupt:
            # Ctrl+C: nenhuma sequência nova começa; as que estão no meio terminam (criar → bloquear)
            self._stopping.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_chain(self, chain: Sequence[Action], progress: Progress) -> list[Result]:
        """Ações de um mesmo registro, em ordem. Segue mesmo após falha: um bloqueio
        depois de um upsert incerto é o que mantém o backup negando como o principal. Se o bloqueio
        falha (já repetido), desfaz o que a cadeia liberou (compensate)."""
        results: list[Result] = []
        if self._stopping.is_set() or stop_signals().requested:  # parando: nenhuma sequência nova começa
            return results
        if unblocks_then_blocks(chain):  # o upsert desbloqueia: só com token bom e rota de bloqueio provada
            held = self.renew_token() or self.route_broken(chain)
            if held:
                self._finish(Result(chain[0], False, held), results, progress)
                return results
        upserted = None  # a ação de criação/atualização já enviada nesta cadeia (mesmo sem confirmação)
        for action in chain:
            result = self._attempt(action)
            if action.kind == BLOCK:
                self._note_block(result)
            if action.kind in UPSERTS:
                upserted = upserted or action
            if action.kind == BLOCK and not result.ok and upserted is not None and result.message != NOT_THERE:
                extra = self.compensate(action, result)
                self._finish(result, results, progress)
                for undo in extra:
                    results.append(undo)
                    self.on_result(undo)
                break
            self._finish(result, results, progress)
        return results

    def _finish(self, result: Result, results: list[Result], progress: Progress) -> None:
        results.append(result)
        self.on_result(result)  # a auditoria nunca interrompe a sequência (Run.guard_local)
        try:
            progress.step()
        except OSError:  # terminal fechado: o contador some, a sequência segue
            progress.enabled = False

    def _attempt(self, action: Action) -> Result:
        if self._auth_lost is not None:
            return Result(action, False, f"não enviada: {self._auth_lost}")
        try:
            return self.apply(action)
        except AuthError as exc:  # o token caiu e o novo login foi recusado: este servidor para aqui
            self._auth_lost = f"o novo login em {self.client.server.label} foi recusado ({exc})"
            return Result(action, False, str(exc))
        except ApiError as exc:
            return Result(action, False, str(exc))
        except OSError as exc:  # ex.: arquivo de senhas sem permissão: essa ação não é feita
            return Result(action, False, f"erro de arquivo: {exc.strerror or exc.__class__.__name__}")

    def compensate(self, block: Action, failed: Result) -> list[Result]:
        """O bloqueio (já repetido) falhou depois de um upsert: a licença pode estar LIBERADA onde a origem
        nega. Faz o desfazer que o plano anotou no bloqueio (chain_undo: excluir o registro; a próxima execução
        a recria e bloqueia), se houver e se o diário o gravou antes das escritas quando ele precisa disso.
        O que não dá para desfazer fica marcado (left_allowed): relatado, e a primeira coisa da próxima."""
        undo = block.undo
        if undo is None or (undo.journaled and not self.undo_journaled) or self._auth_lost is not None:
            why = self._auth_lost or ("um registro que já existia não é excluído no principal" if undo is None
                                      else "o desfazer não pôde ser gravado no diário antes das escritas")
            failed.message += (f"; ATENÇÃO: a licença pode ter ficado LIBERADA em {self.client.server.label} "
                               f"enquanto a origem nega ({why}); a próxima execução a bloqueia antes de tudo")
            failed.left_allowed = True
            return []
        result = self._attempt(undo)
        failed.message += ("; a licença foi excluída de novo (negada, como na origem); a próxima execução a "
                           "recria e bloqueia" if result.ok else
                           f"; ATENÇÃO: a exclusão de compensação também falhou ({result.message}): a licença "
                           f"pode estar LIBERADA em {self.client.server.label} enquanto a origem nega; a próxima "
                           "execução a bloqueia antes de tudo")
        failed.left_allowed = not result.ok
        return [result]

    # -- antes de regravar o que precisa terminar negado ---------------------------
    def renew_token(self) -> str | None:
        """Token perto de cair (ApiClient.renew_if_near_expiry): novo login antes da cadeia. Recusado: nada
        mais vai a este servidor, e a cadeia não começa (nada dela foi enviado)."""
        if self._auth_lost is not None:
            return f"não enviada: {self._auth_lost}"
        try:
            self.client.renew_if_near_expiry()
        except AuthError as exc:
            self._auth_lost = f"o novo login em {self.client.server.label} foi recusado ({exc})"
            return f"não enviada: {self._auth_lost}"
        except ApiError as exc:
            return f"não enviada: o novo login antes da sequência falhou ({exc})"
        return None

    def prove_block_route(self, chain: Sequence[Action]) -> list[Result]:
        """Antes das cadeias que regravam um registro que já existe e precisa terminar negado: o upsert o
        desbloqueia, e só o bloqueio seguinte o nega de novo. A rota de bloqueio precisa ter funcionado NESTA
        execução neste servidor (um bloqueio que passou). Sem nenhum ainda, a prova é bloquear o registro da
        primeira dessas cadeias (idempotente se já está bloqueado lá; se não está, é o que a cadeia faz no
        fim): uma escrita por servidor e por execução. Devolve o resultado da prova, se ela passou."""
        if self.client.block_works is not None or self._auth_lost is not None or self._stopping.is_set() \
                or stop_signals().requested:
            return []
        before = next((old for field, old, _new in chain[0].changes if field == "status"), ACTIVE)
        probe = Action(BLOCK, chain[0].key, "prova de que a rota de bloqueio funciona nesta execução, antes de "
                       "regravar (o upsert desbloqueia)", changes=(("status", before, BLOCKED),), side=chain[0].side)
        result = self._attempt(probe)
        self._note_block(result)
        if not result.ok:  # o motivo vai na cadeia que não é enviada (route_broken)
            return []
        self.on_result(result)
        return [result]

    def route_broken(self, chain: Sequence[Action]) -> str | None:
        """O motivo para não enviar uma cadeia que regrava o que precisa terminar negado: um bloqueio falhou
        nesta execução neste servidor (_note_block). Fica como estava lá; a próxima execução tenta."""
        if not needs_block_proof(chain) or self.client.block_works is not False:
            return None
        before = next((old for field, old, _new in chain[0].changes if field == "status"), ACTIVE)
        return (f"não enviada: a rota de bloqueio de {self.client.server.label} falhou nesta execução "
                f"({self.client.block_failure}); regravar a licença a deixaria LIBERADA (o upsert desbloqueia) "
                f"sem poder bloqueá-la. Fica como estava lá (status {_jsonable(before)!r}); a próxima execução "
                "tenta de novo")

    def _note_block(self, result: Result) -> None:
        """O que um bloqueio diz da rota nesta execução: um que passou a prova (se nenhum falhou antes); um
        que falhou mesmo repetido, com uma resposta do servidor (não "não existe lá", nem login recusado),
        a condena até o fim da execução: as regravações seguintes de licenças que precisam terminar negadas
        ficam para a próxima (é o que evita regravar e ter de desfazer licença por licença)."""
        with self.client.block_lock:
            if result.ok:
                if self.client.block_works is None:
                    self.client.block_works = True
            elif result.message != NOT_THERE and self._auth_lost is None \
                    and not result.message.startswith("não enviada"):
                self.client.block_works, self.client.block_failure = False, result.message

    # -- uma ação ---------------------------------------------------------------
    def _write(self, method: str, path: str, payload: Any = None) -> Response:
        """Uma escrita idempotente, repetida em HTTP 500 / "database is locked" (WRITE_RETRIES vezes, WRITE_BACKOFF)."""
        resp = self.client.request(method, path, payload)
        backoff = self.config.paced(WRITE_BACKOFF)
        for retry in range(1, WRITE_RETRIES + 1):
            if not transient_failure(resp) or self._stopping.is_set():
                break
            if "database is locked" not in (_api_error(resp) or "").lower() and too_wide(payload):
                break  # MySQL estrito recusando texto longo: repetir não muda nada
            time.sleep(backoff.delay(retry))
            resp = self.client.request(method, path, payload)
        return resp

    def apply(self, action: Action) -> Result:
        if action.kind == CREATE_USER:
            return self._create_user(action)
        if action.kind in (*UPSERTS, SET_CREATED_BY):
            assert action.payload is not None  # estas ações sempre levam o corpo (plan_license)
            path = "/admin/devices/update-created-by" if action.kind == SET_CREATED_BY else "/admin/devices/create"
            resp = self._write("POST", path, action.payload)
            result = self._result(action, resp, 200 if action.kind == SET_CREATED_BY else 201)
            wide = too_wide(action.payload) if resp.status == 500 else []
            if wide and self.backup and self.strict_mysql(resp):  # grava como um MySQL não estrito gravaria
                cut = self._result(action, self._write("POST", path, fit_widths(action.payload)), 201)
                if cut.ok:
                    cut.message = (f"gravada CORTADA, pois o backup parece MySQL em modo estrito e recusa texto "
                                   f"maior que a coluna: {', '.join(wide)}; lá fica cortada e não é regravada")
                    return cut
            if wide:
                result.message += (f"; o servidor pode ser MySQL em modo estrito, que recusa texto maior que a "
                                   f"coluna: {', '.join(wide)}. Encurte no principal ou aumente a coluna lá")
            return result
        quoted = urllib.parse.quote(action.key, safe="")
        if action.kind == DELETE:
            resp = self._write("DELETE", f"/admin/devices/{quoted}/delete")
            if resp.status == 404 and _api_error(resp) == "Licença não encontrada.":
                return Result(action, True, "já não existia")  # ex.: nova tentativa após resposta perdida
            return self._result(action, resp, 200)
        path = f"/admin/devices/{quoted}/deactivate"
        wanted = BLOCKED if action.kind == BLOCK else ACTIVE
        resp = self._write("POST", path, {"action": "block" if action.kind == BLOCK else "activate"})
        if action.kind == BLOCK and resp.status == 404 and _api_error(resp) == "Licença não encontrada.":
            return Result(action, False, NOT_THERE)  # não existe lá (ex.: a criação falhou): já nega
        result = self._result(action, resp, 200)
        if result.ok and isinstance(resp.body, dict) and resp.body.get("status") not in (None, wanted):
            return Result(action, False, f"o servidor respondeu status {resp.body.get('status')!r}")
        return result

    def strict_mysql(self, resp: Response) -> bool:
        """O 500 é de um MySQL estrito recusando texto largo? Só se a listagem desse servidor já mostrou as
        datas do MySQL (um backup vazio ou SQLite nunca recebe texto cortado: um 500 passageiro num SQLite
        cortaria o dado para sempre) e o erro não é "database is locked" (SQLite ocupado)."""
        return looks_mysql(self.client.listings.get("/admin/devices")) \
            and "database is locked" not in (_api_error(resp) or "").lower()

    @staticmethod
    def _result(action: Action, resp: Response, expected: int) -> Result:
        if proven(resp):
            return Result(action, True)
        return Result(action, False, f"o servidor respondeu {_status_text(resp)}")

    def _create_user(self, action: Action) -> Result:
        password = secrets.token_urlsafe(18)  # 24 caracteres aleatórios
        add_secret(password)
        entry = self.credentials.record(self.client.server.url, action.key, password, "solicitado")
        assert action.payload is not None  # _create_user() do planejador sempre monta o corpo
        resp = self.client.request("POST", "/admin/users/create", {**action.payload, "password": password})
        if proven(resp):
            try:
                self.credentials.update(entry, "criado")
            except OSError:  # a senha já estava gravada (situação "solicitado"): o usuário existe e vale
                return Result(action, True, "senha gravada; a situação no arquivo de senhas não foi atualizada")
            return Result(action, True)
        if resp.status == 400 and _api_error(resp) == "Usuário já existe.":
            return self._user_exists(action, entry, resp.retried)
        self.credentials.update(entry, "falhou (usuário não criado)")
        return Result(action, False, f"o servidor respondeu {_status_text(resp)}")

    def _user_exists(self, action: Action, entry: int, retried: bool) -> Result:
        """"Usuário já existe." depois de uma nova tentativa nossa = foi criado por nós."""
        listed = {item.get("username") for item in self.client.list_items("/admin/users") if isinstance(item, dict)}
        if action.key in listed and retried:
            self.credentials.update(entry, "criado (confirmado após nova tentativa)")
            return Result(action, True, "confirmado após nova tentativa")
        if action.key in listed:
            self.credentials.update(entry, "não usada: o usuário já existia")
            return Result(action, True, "já existia no backup (criado por outra via)")
        self.credentials.update(entry, "não usada: nome de super-admin no backup")
        return Result(action, True, "nome já usado por um super-admin no backup (não sincronizável)",
                      unsyncable=True)


# -- limites do backup: o que ele não consegue guardar (MySQL, versão antiga) ------------------


def _held_as(field: str, wanted: Any, stored: Any, drops_created_by: bool) -> str | None:
    """Por que o backup guarda `stored` quando recebeu `wanted` (None: é uma diferença de verdade)."""
    width = MYSQL_WIDTHS.get(field)
    if width and isinstance(wanted, str) and isinstance(stored, str) and len(wanted) > width \
            and stored and wanted[:width].rstrip() == stored:  # a listagem é lida sem os espaços das pontas
        return f"o backup guarda no máximo {width} caracteres neste campo (coluna do MySQL): fica cortado lá"
    if field == "created_by" and drops_created_by and stored == DEFAULT_CREATED_BY and wanted != stored:
        return "o backup é de uma versão antiga que ignora o created_by enviado (grava 'admin')"
    return None


def might_drop_created_by(source: Snapshot, target: Snapshot) -> bool:
    """Há registros iguais nos dois lados, menos o created_by que no destino é 'admin'? (sinal de servidor
    da primeira versão; a sonda confirma)."""
    for key, b in target.licenses.items():
        p = source.licenses.get(key)
        if p is not None and b.created_by == DEFAULT_CREATED_BY and p.desired_settable()[-1] != DEFAULT_CREATED_BY:
            return True
    return False


def backup_limits(source: Snapshot, target: Snapshot, drops_created_by: bool) -> tuple[Snapshot, list[Divergence]]:
    """Aprende com o que o backup guardou o que ele não consegue guardar: um campo cortado na largura da coluna
    (MySQL) ou o created_by trocado por 'admin' (primeira versão do servidor). Para o plano, o registro do
    backup passa a ter o valor da origem nesse campo: não é regravado a cada execução (cada regravação
    recomeça o período e desbloqueia por um instante) e, no bidirecional, não vira "edição do vendedor"
    copiada para o principal. A diferença sai como divergência não sincronizável (servidor e campo)."""
    adapted: dict[str, License] = {}
    found: list[Divergence] = []
    for key, b in target.licenses.items():
        p = source.licenses.get(key)
        if p is None:
            continue
        wanted = dict(zip(SETTABLE_FIELDS, p.desired_settable(), strict=True))
        changes = {}
        for field in SETTABLE_FIELDS:
            stored = getattr(b, field)
            why = None if stored == wanted[field] else _held_as(field, wanted[field], stored, drops_created_by)
            if why:
                changes[field] = wanted[field]
                found.append(Divergence(RecordKind.LICENSE, key, field, wanted[field], stored,
                                        f"{why} ({target.server_url}); não é regravado"))
        if changes:
            adapted[key] = dataclasses.replace(b, **changes)
    if not adapted:
        return target, []
    return dataclasses.replace(target, licenses={**target.licenses, **adapted}), found


def mysql_key(device_id: str) -> str:
    """Como utf8mb4_unicode_ci compara chaves: sem acentos e sem maiúsculas (ß = ss)."""
    decomposed = unicodedata.normalize("NFKD", device_id)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def looks_mysql(raw_items: list[Any] | None) -> bool:
    """Datas da listagem no formato RFC 1123 ("Tue, 01 Jul 2025 00:00:00 GMT"): o servidor guarda sobre MySQL
    (e então as chaves comparam sem acentos e sem maiúsculas)."""
    return any(isinstance(item, dict) and isinstance(item.get("start_date"), str)
               and _RFC1123.match(item["start_date"].strip()) for item in raw_items or ())


def collation_groups(source: Snapshot, target: Snapshot,
                     clock: Clock) -> tuple[Snapshot, list[Divergence], frozenset[str]]:
    """Backup sobre MySQL: ids da origem que só diferem em maiúsculas/acentos ("ABC"/"abc", "José"/"Jose") são UM
    registro lá. Cada grupo vira um registro só no plano (o id que o backup já guarda, ou o primeiro), com o
    veredito mais restrito do grupo (se algum nega na origem, o registro do grupo é bloqueado lá): sem isso cada
    execução regravaria o mesmo registro com os dados de outro id do grupo, desbloqueando-o. Relata o grupo e
    os clientes que ficam negados no backup. Devolve também os ids dos grupos: no bidirecional eles vão só do
    principal para o backup (o registro do backup é uma mistura do grupo, nunca uma edição do vendedor)."""
    groups: dict[str, list[str]] = {}
    for key in source.licenses:
        groups.setdefault(mysql_key(key), []).append(key)
    groups = {fold: sorted(keys) for fold, keys in groups.items() if len(keys) > 1}
    if not groups:
        return source, [], frozenset()
    stored = {mysql_key(key): key for key in target.licenses}
    licenses = dict(source.licenses)
    found = []
    for fold, keys in sorted(groups.items()):
        kept = stored[fold] if stored.get(fold) in keys else keys[0]
        denied = [k for k in keys if not clock.sure(source.licenses[k], Side.PRIMARY)]
        for key in keys:
            if key != kept:
                del licenses[key]
        record = source.licenses[kept]
        if must_deny(not denied, clock.might(record, Side.PRIMARY)):  # o registro do grupo nega se algum nega
            licenses[kept] = dataclasses.replace(record, status=BLOCKED)
        losers = [k for k in keys if k not in denied] if denied else []
        note = (f"o backup ({target.server_url}) é MySQL e guarda {', '.join(keys)} como UMA licença ('{kept}'): "
                f"lá vale o veredito mais restrito do grupo")
        note += (f"; negados lá e liberados no principal: {', '.join(losers)}" if losers else "")
        found.append(Divergence(RecordKind.LICENSE, kept, "device_id", ", ".join(keys), kept, note))
    return dataclasses.replace(source, licenses=licenses), found, frozenset(k for keys in groups.values() for k in keys)


# ============================================================================
# Estado e histórico (arquivos gravados de forma atômica em DADOS_DIR)
# ============================================================================

CREDENTIALS_FILE = "credenciais_usuarios_criados.txt"
LAST_RUN_FILE = "ultima_execucao.json"
HISTORY_FILE = "historico.sqlite3"
LOCK_FILE = "sincronizacao.lock"


def ensure_data_dir(path: str) -> str:
    try:
        create_private_dir(path)
    except OSError as exc:
        raise ConfigError(f"Não foi possível criar a pasta de dados {path}: {exc.strerror}") from None
    return path


# -- arquivos nossos danificados: nunca impedem uma sincronização ----------------------------------
# Histórico (com a auditoria), estado e diário de um par que não se consegue ler são movidos para o
# lado com a data no nome (historico.sqlite3.danificado-20261203T120000), um novo é iniciado, a
# execução segue, o aviso diz o nome do arquivo guardado e o código de saída é 1. Pasta sem
# permissão ou disco cheio não é "danificado": continua sendo um erro de configuração (código 2).

DAMAGED_MARK = ".danificado-"


def set_aside_damaged(path: str, what: str, reason: str, then: str) -> str:
    """Move `path` (e os -wal/-shm/-journal do SQLite, se houver) para PATH.danificado-AAAAMMDDTHHMMSS
    e devolve o aviso, em português, com o nome do arquivo guardado e `then` (o que a execução fez sem
    ele). Sem conseguir mover, o aviso diz isso (a execução segue sem o arquivo do mesmo jeito)."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    target, n = f"{path}{DAMAGED_MARK}{stamp}", 1
    while os.path.exists(target):
        target, n = f"{path}{DAMAGED_MARK}{stamp}-{n}", n + 1
    try:
        os.replace(path, target)
        for suffix in ("-wal", "-shm", "-journal"):
            if os.path.exists(path + suffix):
                os.replace(path + suffix, target + suffix)
    except OSError as exc:
        return (f"{what} {path} danificado ({reason}) e não foi possível movê-lo para o lado "
                f"({exc.__class__.__name__}: {exc.strerror or exc}); {then}. Apague ou mova esse arquivo.")
    return f"{what} {path} danificado ({reason}): guardado como {target}; {then}."


def is_damaged_database(exc: BaseException) -> bool:
    """SQLite ilegível (não é um banco, imagem malformada, esquema de outro programa), e não pasta sem
    permissão, banco travado ou disco cheio (OperationalError desses casos continua código 2)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in (11, 26):  # SQLITE_CORRUPT, SQLITE_NOTADB
        return True
    text = str(exc)
    return not isinstance(exc, sqlite3.OperationalError) or "malformed" in text or "no such column" in text \
        or "has no column" in text






class CredentialStore:
    """Senhas dos usuários criados nos backups (arquivo 0600 em DADOS_DIR; nunca no relatório)."""

    HEADER = ("# Senhas geradas para usuários criados pela sincronização. Arquivo PRIVADO:\n"
              "# entregue cada senha só ao próprio revendedor e peça que a troque.\n"
              "# data_hora_utc | servidor | usuario | senha | situacao\n")

    def __init__(self, data_dir: str):
        self.path = os.path.join(data_dir, CREDENTIALS_FILE)
        self._lock = threading.Lock()
        self._lines: list[list[str]] = []
        self._old = ""
        self._loaded = False
        self.used = False
        self.warning: str | None = None  # arquivo danificado guardado ao lado (aviso da execução)

    def _load(self) -> None:
        """Lê uma única vez, no primeiro registro da execução, o que execuções anteriores gravaram."""
        if self._loaded:
            return
        self._loaded = True
        if os.path.exists(self.path):
            try:
                with open(self.path, encoding="utf-8") as handle:
                    self._old = handle.read()
            except UnicodeDecodeError as exc:  # danificado: guardado ao lado (as senhas de antes ficam nele)
                self.warning = set_aside_damaged(self.path, "arquivo de senhas", f"{exc.__class__.__name__}",
                                                 "um novo foi iniciado com as senhas desta execução")
                self._old = ""
            if self._old and not self._old.endswith("\n"):
                self._old += "\n"

    def record(self, server: str, username: str, password: str, status: str) -> int:
        with self._lock:
            self._load()
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._lines.append([stamp, server, username, password, status])
            self._save()
            self.used = True
            return len(self._lines) - 1

    def update(self, entry: int, status: str) -> None:
        with self._lock:
            self._lines[entry][4] = status
            self._save()

    def _save(self) -> None:
        body = self._old or self.HEADER
        body += "".join(" | ".join(line) + "\n" for line in self._lines)
        atomic_write(self.path, body, private=True)


CONTENT_REF = "ref_conteudo"  # {"ref_conteudo": hash}: o valor está na tabela conteudos, guardado uma vez


class History:
    """Histórico em SQLite: uma linha por execução e par, mais a auditoria de cada escrita.

    Uma execução a cada 15 minutos repete quase sempre as mesmas listas (as divergências que a API não
    deixa corrigir, por exemplo). Cada lista ou texto grande dos detalhes é guardado uma
    vez só, pelo hash do conteúdo e comprimido, na tabela conteudos; o dicionário de detalhes (com as
    referências) também, e a linha guarda só a referência. A leitura (runs, latest, find_runs) devolve as
    linhas já com o conteúdo inteiro, como se estivesse na própria linha."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS execucoes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        execucao TEXT NOT NULL, inicio TEXT NOT NULL, fim TEXT, duracao_s REAL,
        modo TEXT NOT NULL, principal TEXT NOT NULL, backup TEXT NOT NULL,
        situacao TEXT NOT NULL, codigo_saida INTEGER, contagens TEXT, falhas INTEGER DEFAULT 0,
        conflitos INTEGER DEFAULT 0, divergencias INTEGER DEFAULT 0, paridade_ok INTEGER,
        paridade_total INTEGER, paridade_diferentes INTEGER, erro TEXT, detalhes TEXT);
    CREATE INDEX IF NOT EXISTS idx_execucoes_inicio ON execucoes(inicio);
    CREATE TABLE IF NOT EXISTS auditoria (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        execucao TEXT NOT NULL, momento TEXT NOT NULL, servidor TEXT NOT NULL, chave TEXT NOT NULL,
        acao TEXT NOT NULL, ok INTEGER NOT NULL, mensagem TEXT, mudancas TEXT);
    CREATE INDEX IF NOT EXISTS idx_auditoria_execucao ON auditoria(execucao);
    CREATE TABLE IF NOT EXISTS conteudos (hash TEXT PRIMARY KEY, conteudo BLOB NOT NULL);
    """
    INLINE_MAX = 200  # caracteres: valores maiores vão para a tabela conteudos (uma vez por conteúdo)

    def __init__(self, data_dir: str, retention_days: int = 90):
        self.path = os.path.join(data_dir, HISTORY_FILE)
        self._lock = threading.Lock()
        try:  # criado 0600 antes do SQLite (que o criaria 0644 sob umask 022)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
        except OSError:
            pass  # pasta ausente ou sem permissão: o erro que vale é o do SQLite, logo abaixo
        keep_private(self.path)  # histórico de uma versão antiga, legível por todos
        self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            for suffix in ("-wal", "-shm", "-journal"):  # o SQLite os cria com as permissões do banco
                keep_private(self.path + suffix)
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(self.SCHEMA)
        except sqlite3.Error:
            self.db.close()  # (no Windows, um arquivo aberto não pode ser movido para o lado)
            raise
        self.retention_days = retention_days
        self._pending: list[tuple] = []
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._flush()
            self.db.close()

    @classmethod
    def open_or_replace(cls, data_dir: str, retention_days: int = 90) -> tuple[History | None, str | None]:
        """Abre (e poda) o histórico; um arquivo danificado é guardado com a data no nome e um novo é
        iniciado: (histórico, aviso). Se nem assim abrir (o arquivo danificado não pôde ser movido, por
        exemplo aberto pelo painel no Windows): (None, aviso), e a execução segue sem histórico.
        Pasta sem permissão ou disco cheio: a exceção original (código 2, antes de qualquer escrita)."""
        path = os.path.join(data_dir, HISTORY_FILE)
        try:
            return cls._opened(data_dir, retention_days), None
        except sqlite3.Error as exc:
            if not is_damaged_database(exc):
                raise
            warning = set_aside_damaged(path, "histórico", f"{exc.__class__.__name__}: {exc}",
                                        "a sincronização seguiu")
        try:
            return cls._opened(data_dir, retention_days), f"{warning} Um histórico novo foi iniciado."
        except sqlite3.Error as exc:
            if not is_damaged_database(exc):
                raise
            return None, f"{warning} Esta execução ficou sem histórico."

    @classmethod
    def _opened(cls, data_dir: str, retention_days: int) -> History:
        history = None
        try:
            history = cls(data_dir, retention_days=retention_days)
            history.db.execute("SELECT id, execucao, inicio, situacao, detalhes FROM execucoes LIMIT 1").fetchall()
            history.db.execute("SELECT id, execucao, chave, mudancas FROM auditoria LIMIT 1").fetchall()
            history.prune()
            return history
        except BaseException:
            if history is not None:
                history.db.close()
            raise

    def start_pair(self, run_id: str, started: str, mode: Mode, primary: str, backup: str) -> int:
        with self._lock, self.db:
            self.db.execute("UPDATE execucoes SET situacao=? WHERE situacao=? AND execucao != ?",
                            (PairStatus.INTERRUPTED, PairStatus.RUNNING, run_id))
            cursor = self.db.execute(
                "INSERT INTO execucoes (execucao, inicio, modo, principal, backup, situacao) "
                "VALUES (?, ?, ?, ?, ?, ?)", (run_id, started, Mode(mode), primary, backup, PairStatus.RUNNING))
            assert cursor.lastrowid is not None  # um INSERT que deu certo sempre tem o id da linha
            return cursor.lastrowid

    AUDIT_BATCH = 50

    def audit(self, run_id: str, server: str, result: Result) -> None:
        """Guarda a escrita na auditoria; grava em lotes de 50 ou a cada segundo (uma execução morta
        perde no máximo esse último pedaço da auditoria; os dados nos servidores não dependem dela)."""
        changes = [[f, _jsonable(a), _jsonable(b)] for f, a, b in result.action.changes]
        row = (run_id, now_iso(), server, result.action.key, result.action.kind, int(result.ok),
               mask(result.message) or None, json.dumps(changes, ensure_ascii=False))
        with self._lock:
            self._pending.append(row)
            if len(self._pending) >= self.AUDIT_BATCH or time.monotonic() - self._flushed_at > 1.0:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            with self.db:
                self.db.executemany(
                    "INSERT INTO auditoria (execucao, momento, servidor, chave, acao, ok, mensagem, mudancas) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self._pending)
            self._pending = []
        self._flushed_at = time.monotonic()

    def finish_pair(self, row_id: int, outcome: "PairOutcome", failover: FailoverReport | None = None) -> None:
        """Fecha a linha do par a partir do resultado tipado (contagens, erro e detalhes são renderizados dele)."""
        values = history_row(outcome, failover)
        with self._lock:
            self._flush()
        with self._lock, self.db:
            values["detalhes"] = self._pack_details(values["detalhes"])
            self.db.execute(f"UPDATE execucoes SET {', '.join(c + '=?' for c in values)} WHERE id=?",
                            (*values.values(), row_id))

    def _pack_details(self, details: dict[str, Any]) -> str:
        return dump_json(self._pack({k: self._pack(v) for k, v in details.items()}), indent=None)

    def add_aside(self, doc: dict[str, Any]) -> None:
        """Grava o registro de uma execução que achou o histórico travado (HistoryAside): as linhas dos pares
        e a auditoria, como se tivessem sido gravadas na hora."""
        with self._lock, self.db:
            for pair in doc.get("pares", []):
                pair = dict(pair)
                if isinstance(pair.get("detalhes"), dict):
                    pair["detalhes"] = self._pack_details(pair["detalhes"])
                columns = [c for c in HISTORY_ROW_COLUMNS if c in pair]
                self.db.execute(f"INSERT INTO execucoes ({', '.join(columns)}) VALUES "
                                f"({', '.join('?' for _ in columns)})", [pair[c] for c in columns])
            self.db.executemany(
                "INSERT INTO auditoria (execucao, momento, servidor, chave, acao, ok, mensagem, mudancas) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [tuple(row) for row in doc.get("auditoria", [])])

    def _pack(self, value: Any) -> Any:
        """Valor grande → {"ref_conteudo": hash}, com o conteúdo gravado uma vez só (chamar dentro da
        transação que grava a linha)."""
        text = dump_json(value, indent=None)
        if len(text) <= self.INLINE_MAX:
            return value
        data = text.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        self.db.execute("INSERT OR IGNORE INTO conteudos (hash, conteudo) VALUES (?, ?)", (digest, zlib.compress(data)))
        return {CONTENT_REF: digest}

    @staticmethod
    def _refs(value: Any) -> set[str]:
        """As referências de um valor: ele mesmo, ou os valores de um dicionário."""
        items = [value, *value.values()] if isinstance(value, dict) else []
        return {v[CONTENT_REF] for v in items if isinstance(v, dict) and len(v) == 1
                and isinstance(v.get(CONTENT_REF), str)}

    def _load(self, value: Any, cache: dict[str, str]) -> Any:
        """{"ref_conteudo": hash} → o valor guardado (None se sumiu); qualquer outro valor fica como está."""
        if not (isinstance(value, dict) and len(value) == 1 and isinstance(value.get(CONTENT_REF), str)):
            return value
        digest = value[CONTENT_REF]
        if digest not in cache:
            with self._lock:
                found = self.db.execute("SELECT conteudo FROM conteudos WHERE hash = ?", (digest,)).fetchone()
            stored = found[0] if found else b"null"
            try:
                cache[digest] = zlib.decompress(stored).decode("utf-8") if isinstance(stored, bytes) else stored
                json.loads(cache[digest])
            except (zlib.error, ValueError):  # conteúdo danificado: a linha aparece sem essa lista
                cache[digest] = "null"
        return json.loads(cache[digest])

    def _unpack(self, value: Any, cache: dict[str, str]) -> Any:
        """O valor da coluna com as referências resolvidas (a dele e as dos valores de um dicionário)."""
        value = self._load(value, cache)
        return {k: self._load(v, cache) for k, v in value.items()} if isinstance(value, dict) else value

    # -- leitura (historico, painel) ------------------------------------------
    def runs(self, limit: int = 20, pairs: list[tuple[str, str]] | None = None) -> list["HistoryRow"]:
        """Últimas execuções (uma linha por par), da mais nova para a mais antiga.
        pairs: só as dos pares (principal, backup) dados."""
        where = ""
        params: tuple[str, ...] = ()
        if pairs is not None:
            if not pairs:
                return []
            where = "WHERE " + " OR ".join(["(principal = ? AND backup = ?)"] * len(pairs))
            params = tuple(url for pair in pairs for url in pair)
        return self._decoded(f"SELECT * FROM execucoes {where} ORDER BY id DESC LIMIT ?", params + (limit,))

    def latest(self, primary: str, backup: str, ok_only: bool = False) -> "HistoryRow | None":
        """Última execução concluída do par (ou o último sucesso), sem contar as verificações."""
        only_ok = "AND situacao = ?" if ok_only else ""
        rows = self._decoded(
            "SELECT * FROM execucoes WHERE principal = ? AND backup = ? AND situacao != ? AND modo != ? "
            f"{only_ok} ORDER BY id DESC LIMIT 1",
            (primary, backup, PairStatus.RUNNING, Mode.CHECK) + ((PairStatus.OK,) if ok_only else ()))
        return rows[0] if rows else None

    def find_runs(self, ident: str) -> list["HistoryRow"]:
        """Linhas de uma execução: pelo número da linha (id) ou pelo identificador da execução."""
        ident = ident.strip()
        if ident.isdigit():
            rows = self._decoded("SELECT * FROM execucoes WHERE id = ?", (int(ident),))
            if rows:
                return rows
        return self._decoded("SELECT * FROM execucoes WHERE execucao = ? ORDER BY id", (ident,))

    def _decoded(self, sql: str, params: tuple) -> list["HistoryRow"]:
        """A ÚNICA leitura das linhas de execucoes: cada uma vira um HistoryRow (situacao é um PairStatus e
        modo um Mode; texto desconhecido, de uma versão futura, fica como texto e não passa por nenhuma regra)."""
        rows = self._dicts(sql, params)
        cache: dict[str, str] = {}
        for row in rows:
            row["situacao"] = _parse_enum(PairStatus, row["situacao"])
            row["modo"] = _parse_enum(Mode, row["modo"])
            counts = self._unpack(_json_or_none(row["contagens"]), cache)
            row["contagens"] = counts if isinstance(counts, dict) else {}
            details = self._unpack(_json_or_none(row["detalhes"]), cache)
            row["detalhes"] = details if isinstance(details, dict) else {}
        return [HistoryRow.from_columns(row) for row in rows]

    def _dicts(self, sql: str, params: tuple) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self.db.execute(sql, params)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def audit_trail(self, run_id: str) -> list["AuditEntry"]:
        """A ÚNICA leitura da auditoria: cada escrita vira um AuditEntry."""
        rows = self._dicts("SELECT momento, servidor, chave, acao, ok, mensagem, mudancas FROM auditoria "
                           "WHERE execucao = ? ORDER BY servidor, chave, id", (run_id,))
        for row in rows:
            row["ok"] = bool(row["ok"])
            row["mudancas"] = json.loads(row["mudancas"] or "[]")
        return [AuditEntry(row["servidor"], row["ok"], row) for row in rows]

    def prune(self) -> int:
        if self.retention_days <= 0:
            return 0
        limit = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=self.retention_days)).isoformat()
        with self._lock, self.db:
            old = [r[0] for r in self.db.execute("SELECT execucao FROM execucoes WHERE inicio < ?", (limit,))]
            self.db.executemany("DELETE FROM auditoria WHERE execucao = ?", [(r,) for r in set(old)])
            removed = self.db.execute("DELETE FROM execucoes WHERE inicio < ?", (limit,)).rowcount
            if removed:
                self._drop_unreferenced()
            return removed

    def _drop_unreferenced(self) -> None:
        """Apaga da tabela conteudos o que nenhuma linha restante referencia (dentro da transação)."""
        used: set[str] = set()
        pattern = f'%"{CONTENT_REF}"%'
        for (text,) in self.db.execute("SELECT DISTINCT detalhes FROM execucoes WHERE detalhes LIKE ?", (pattern,)):
            try:  # execuções sem mudanças repetem a mesma referência: DISTINCT deixa poucas para ler
                used |= self._refs(json.loads(text))
            except ValueError:
                continue
        for digest, data in self.db.execute("SELECT hash, conteudo FROM conteudos").fetchall():
            if digest in used and isinstance(data, bytes):  # os detalhes guardados referenciam as listas
                try:
                    used |= self._refs(json.loads(zlib.decompress(data)))
                except (zlib.error, ValueError):
                    continue
        stored = {r[0] for r in self.db.execute("SELECT hash FROM conteudos")}
        self.db.executemany("DELETE FROM conteudos WHERE hash = ?", [(h,) for h in stored - used])


STATE_DIR = "estado"
STATE_VERSION = 1


HISTORY_ROW_COLUMNS = ("execucao", "inicio", "modo", "principal", "backup", "situacao", "fim", "duracao_s",
                       "codigo_saida", "contagens", "falhas", "conflitos", "divergencias", "paridade_ok",
                       "paridade_total", "paridade_diferentes", "erro", "detalhes")


def history_row(outcome: "PairOutcome", failover: FailoverReport | None = None) -> dict[str, Any]:
    """As colunas do fim de um par no histórico (detalhes ainda como dicionário, sem a compactação do banco)."""
    parity = outcome.parity
    return {
        "fim": outcome.ended, "duracao_s": outcome.duration_s, "situacao": outcome.status.value,
        "codigo_saida": int(outcome.code),
        "contagens": json.dumps(pair_counts_json(outcome) if outcome.plan else {}, ensure_ascii=False),
        "falhas": len(outcome.failures), "conflitos": len(outcome.plan.conflicts) if outcome.plan else 0,
        "divergencias": len(outcome.divergences), "paridade_ok": None if parity is None else int(parity.ok),
        "paridade_total": None if parity is None else parity.total,
        "paridade_diferentes": None if parity is None else len(parity.different), "erro": pair_error_text(outcome),
        "detalhes": pair_details(outcome, failover),
    }


# -- histórico travado por outro programa: nunca impede uma sincronização --------------------------
# Um programa de backup ou um navegador de SQLite segurando o historico.sqlite3: a execução sincroniza
# do mesmo jeito, guarda o registro em historico-pendente/EXECUCAO.json (HistoryAside) e o grava no
# histórico assim que ele estiver livre (no fim desta execução ou na próxima), com um aviso.

HISTORY_ASIDE_DIR = "historico-pendente"
HISTORY_BUSY_WAIT = 2.0  # segundos esperando o outro programa largar o histórico antes de guardar à parte


def history_busy(data_dir: str, wait: float = HISTORY_BUSY_WAIT) -> bool:
    """Outro programa segura o historico.sqlite3 (não dá para gravar nele em `wait` segundos)? Arquivo ausente
    ou danificado não é "travado" (History.open_or_replace cuida deles)."""
    path = os.path.join(data_dir, HISTORY_FILE)
    if not os.path.exists(path):
        return False
    try:
        con = sqlite3.connect(path, timeout=wait)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.rollback()
        finally:
            con.close()
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc) or "busy" in str(exc)
    except sqlite3.Error:
        return False
    return False


def aside_files(data_dir: str) -> list[str]:
    folder = os.path.join(data_dir, HISTORY_ASIDE_DIR)
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except OSError:
        return []
    return [os.path.join(folder, n) for n in names]


def write_aside(history: History, data_dir: str) -> list[str]:
    """Grava no histórico (livre) os registros guardados à parte; devolve os arquivos gravados (e apagados).
    Um arquivo ilegível fica onde está (não some um registro por causa de outro)."""
    done = []
    for path in aside_files(data_dir):
        try:
            with open(path, encoding="utf-8") as handle:
                doc = json.load(handle)
            history.add_aside(doc if isinstance(doc, dict) else {})
            os.unlink(path)
        except (OSError, ValueError, sqlite3.Error, TypeError):
            continue
        done.append(path)
    return done


def _json_or_none(text: Any) -> Any:
    """Uma coluna JSON do histórico: vazia ou danificada (texto que não é JSON) → None (a linha fica com os
    padrões, em vez de derrubar o painel e o historico)."""
    try:
        return json.loads(text) if text else None
    except (TypeError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class HistoryRow:
    """Uma linha de execucoes lida de volta (History._decoded): as decisões (painel, /status.json,
    historico) leem os campos tipados; o texto e o --json mostram as colunas com os nomes do arquivo
    (`columns`, também por row["coluna"])."""
    id: int
    run_id: str
    started: str
    ended: str | None
    mode: Mode | str
    primary: str
    backup: str
    status: PairStatus | str
    error: str | None
    failures: int
    conflicts: int
    divergences: int
    parity_total: int | None
    parity_different: int
    writes: tuple[int, int]  # (no backup, no principal)
    backup_only_allowed: list[str]  # licenças só no backup e liberadas lá
    failover: StoredFailover | None  # a rota de falha registrada (detalhes; stored_failover)
    conflict_samples: tuple["StoredConflict", ...]  # os primeiros conflitos do par (detalhes)
    divergence_samples: tuple["StoredDivergence", ...]  # as primeiras divergências não sincronizáveis (detalhes)
    divergences_by_field: tuple[tuple[str, int], ...]  # divergências não sincronizáveis por campo (detalhes)
    details: dict[str, Any]
    columns: dict[str, Any] = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_columns(cls, row: dict[str, Any]) -> "HistoryRow":
        """A leitura de uma linha (History._decoded): campo ausente (linha de uma versão antiga) ou danificado
        (tipo errado) fica com o padrão dele."""
        counts, details = row["contagens"], row["detalhes"]
        backup_only = details.get("so_no_backup")
        allowed = backup_only.get("licencas_liberadas") if isinstance(backup_only, dict) else None
        by_field = details.get("divergencias_por_campo")
        return cls(id=row["id"], run_id=row["execucao"], started=row["inicio"], ended=row["fim"], mode=row["modo"],
                   primary=row["principal"], backup=row["backup"], status=row["situacao"], error=row["erro"] or None,
                   failures=int(row["falhas"] or 0), conflicts=row["conflitos"] or 0,
                   divergences=row["divergencias"] or 0, parity_total=row["paridade_total"],
                   parity_different=row["paridade_diferentes"] or 0,
                   writes=(count_changes(counts), count_changes(counts.get("no_principal") or {})),
                   backup_only_allowed=list(stored_texts(allowed)),
                   failover=stored_failover(details.get("rota_de_falha")),
                   conflict_samples=tuple(
                       StoredConflict(_parse_enum(RecordKind, stored_text(c.get("tipo"))), stored_text(c.get("chave")),
                                      stored_text(c.get("descricao")), stored_text(c.get("resolucao")))
                       for c in stored_objects(details.get("conflitos"))),
                   divergence_samples=tuple(
                       StoredDivergence(_parse_enum(RecordKind, stored_text(d.get("tipo"))),
                                        stored_text(d.get("chave")), stored_text(d.get("campo")), d.get("principal"),
                                        d.get("backup"), stored_text(d.get("observacao")))
                       for d in stored_objects(details.get("divergencias"))),
                   divergences_by_field=tuple((k, v) for k, v in by_field.items() if type(v) is int)
                   if isinstance(by_field, dict) else (),
                   details=details, columns=row)

    def __getitem__(self, column: str) -> Any:
        return self.columns[column]


@dataclasses.dataclass(frozen=True)
class StoredConflict:
    """Um conflito gravado nos detalhes de uma linha do histórico (Conflict.as_dict), como o painel o mostra."""
    kind: RecordKind | str  # texto desconhecido (de uma versão futura) fica como veio
    key: str
    description: str
    resolution: str  # a política com que foi resolvido (ConflictPolicy) como texto; "" em linhas sem ela


@dataclasses.dataclass(frozen=True)
class StoredDivergence:
    """Uma divergência não sincronizável gravada nos detalhes (Divergence.as_dict), como o painel a mostra."""
    kind: RecordKind | str
    key: str
    field: str
    primary: Any  # o valor no principal, como foi gravado (texto, número, lista... ou None)
    backup: Any
    note: str


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """Uma escrita da auditoria lida de volta (History.audit_trail): as decisões leem os campos; o texto e o
    --json mostram as colunas (`columns`, também por item["coluna"])."""
    server: str
    ok: bool
    columns: dict[str, Any] = dataclasses.field(repr=False, compare=False)

    def __getitem__(self, column: str) -> Any:
        return self.columns[column]


class HistoryAside:
    """O histórico desta execução enquanto o historico.sqlite3 está travado por outro programa: a mesma
    interface do History (start_pair, audit, finish_pair, close), gravando em historico-pendente/EXECUCAO.json.
    No close, se o histórico já estiver livre, o registro vai para ele na hora."""

    def __init__(self, data_dir: str, run_id: str, warn: Callable[[str], None]):
        self.data_dir, self.warn = data_dir, warn
        self.path = os.path.join(data_dir, HISTORY_ASIDE_DIR, f"{run_id}.json")
        self._lock = threading.Lock()
        self.pairs: dict[int, dict[str, Any]] = {}
        self.audits: list[list[Any]] = []

    def _save(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        atomic_write(self.path, dump_json({"pares": list(self.pairs.values()), "auditoria": self.audits},
                                          indent=None), private=True)

    def start_pair(self, run_id: str, started: str, mode: Mode, primary: str, backup: str) -> int:
        with self._lock:
            row = len(self.pairs) + 1
            self.pairs[row] = {"execucao": run_id, "inicio": started, "modo": Mode(mode).value, "principal": primary,
                               "backup": backup, "situacao": PairStatus.RUNNING.value}
            self._save()
            return row

    def audit(self, run_id: str, server: str, result: Result) -> None:
        changes = [[f, _jsonable(a), _jsonable(b)] for f, a, b in result.action.changes]
        with self._lock:
            self.audits.append([run_id, now_iso(), server, result.action.key, str(result.action.kind),
                                int(result.ok), mask(result.message) or None,
                                json.dumps(changes, ensure_ascii=False)])

    def finish_pair(self, row_id: int, outcome: "PairOutcome", failover: FailoverReport | None = None) -> None:
        with self._lock:
            self.pairs[row_id].update(history_row(outcome, failover))
            self._save()

    def close(self) -> None:
        with self._lock:
            self._save()
        if not history_busy(self.data_dir):
            history, _ = History.open_or_replace(self.data_dir)
            if history is not None:
                try:
                    write_aside(history, self.data_dir)
                finally:
                    history.close()
        if os.path.exists(self.path):
            self.warn(f"   ⚠️  O histórico ({os.path.join(self.data_dir, HISTORY_FILE)}) continua travado por outro "
                      f"programa: o registro desta execução ficou guardado em {self.path} e vai para o histórico na "
                      "próxima execução em que ele estiver livre.")
        else:
            self.warn("   ✅ O histórico ficou livre: o registro desta execução já foi gravado nele.")


def state_path(data_dir: str, primary_url: str, backup_url: str) -> str:
    digest = hashlib.sha256(f"{primary_url}|{backup_url}".encode("utf-8")).hexdigest()[:16]
    return os.path.join(data_dir, STATE_DIR, f"par-{digest}.json")


def load_state(data_dir: str, primary_url: str, backup_url: str,
               set_aside: bool = True) -> tuple[PairState | None, str | None]:
    """Lê e valida o estado do par. Ausente → (None, None). Danificado (JSON ilegível ou com tipos
    errados) → (None, aviso): sem estado, e o arquivo é guardado com a data no nome (set_aside=False,
    na simulação e no verificar, que não gravam nada: só o aviso)."""
    path = state_path(data_dir, primary_url, backup_url)
    if not os.path.exists(path):
        return None, None
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
        return _state_from_json(raw, primary_url, backup_url), None
    except Exception as exc:  # noqa: BLE001 - conteúdo inesperado é "danificado", nunca um erro da execução
        reason = f"{exc.__class__.__name__}: {mask(str(exc)[:120])}"
    then = "este par seguiu sem estado salvo, como numa primeira sincronização"
    if not set_aside:
        return None, f"estado do par {path} danificado ({reason}): {then}."
    return None, set_aside_damaged(path, "estado do par", reason, then)


def check_state_versions(config: Config) -> None:
    """Antes de qualquer acesso à rede: um estado de par salvo por uma versão MAIS NOVA do script (alguém voltou
    a uma versão anterior) para a execução com código 2, sem mexer no arquivo. Lido como "danificado", ele seria
    posto de lado e o bidirecional acusaria conflitos falsos; adivinhar o formato novo seria pior."""
    for d in directions(config):
        path = state_path(config.data_dir, d.primary.url, d.backup.url)
        try:
            with open(path, encoding="utf-8") as handle:
                version = json.load(handle).get("versao")
        except (OSError, ValueError, AttributeError):
            continue  # ausente ou ilegível: load_state cuida (danificado)
        if isinstance(version, int) and not isinstance(version, bool) and version > STATE_VERSION:
            raise ConfigError(
                f"o estado salvo do par {d.primary.url} → {d.backup.url} ({path}) foi gravado por uma versão mais "
                f"nova do sincronizar_bancos.py (formato {version}; esta versão, {VERSAO}, entende até o formato "
                f"{STATE_VERSION}). Nada foi feito e o arquivo não foi alterado. Volte a usar a versão mais nova; "
                "para recomeçar com esta, mova a pasta de estado para outro lugar (a próxima execução será como a "
                "primeira sincronização).")


def _state_from_json(raw: Any, primary_url: str, backup_url: str) -> PairState:
    if not isinstance(raw, dict) or raw.get("versao") != STATE_VERSION:
        raise ValueError("versão desconhecida")
    if raw.get("principal") != primary_url or raw.get("backup") != backup_url:
        raise ValueError("par diferente")
    licenses = {}
    for key, entry in raw["licencas"].items():
        licenses[key] = _state_entry(key, entry)
    users = raw["usuarios"]
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise ValueError("usuarios")
    deleted = {}
    for key, item in (raw.get("excluidas") or {}).items():
        versions = item["versoes"]
        if not (isinstance(item["em"], str) and isinstance(versions, list)
                and all(isinstance(v, str) for v in versions)):
            raise ValueError(f"exclusão inválida {key!r}")
        deleted[key] = (dt.date.fromisoformat(item["em"]).isoformat(), tuple(versions))
    synced_on = raw.get("sincronizado_em")
    if synced_on is not None and not isinstance(synced_on, str):
        raise ValueError("sincronizado_em")
    backup_only = raw.get("so_no_backup") or {}
    if not isinstance(backup_only, dict) or not all(v in (BACKUP_SALE, BACKUP_UNKNOWN) for v in backup_only.values()):
        raise ValueError("so_no_backup")
    ids = {}
    for key, pair in (raw.get("ids") or {}).items():
        if not (isinstance(pair, list) and len(pair) == 2 and all(v is None or type(v) is int for v in pair)):
            raise ValueError(f"ids inválidos {key!r}")
        ids[key] = (pair[0], pair[1])
    blocked_from = raw.get("antes_do_bloqueio") or {}
    if not isinstance(blocked_from, dict) or not all(isinstance(v, str) for v in blocked_from.values()):
        raise ValueError("antes_do_bloqueio")
    return PairState(primary_url, backup_url, int(raw["contagem"]["principal"]), int(raw["contagem"]["backup"]),
                     set(users), licenses, deleted, dt.date.fromisoformat(synced_on) if synced_on else None,
                     dict(backup_only), ids=ids, blocked_from=dict(blocked_from))


def _state_entry(key: str, entry: Any) -> StateEntry:
    """Valida uma licença do estado: 6 valores (versão antiga do arquivo) ou 8 (com as versões anteriores)."""
    if not (isinstance(entry, list) and len(entry) in (6, 8)
            and all(v is None or isinstance(v, str) for v in entry[:6])):
        raise ValueError(f"registro inválido {key!r}")
    for stored in entry[4:6]:
        if stored:
            dt.date.fromisoformat(stored)
    older = [tuple(v) for v in entry[6:]]
    if not all(isinstance(v, str) for versions in older for v in versions):
        raise ValueError(f"registro inválido {key!r}")
    return StateEntry(*entry[:6], *older)


def save_state(data_dir: str, state: PairState) -> None:
    path = state_path(data_dir, state.primary_url, state.backup_url)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    doc = {"versao": STATE_VERSION, "principal": state.primary_url, "backup": state.backup_url,
           "atualizado_em": now_iso(),
           "sincronizado_em": state.synced_on.isoformat() if state.synced_on else None,
           "so_no_backup": dict(sorted(state.backup_only.items())),
           "contagem": {"principal": state.count_primary, "backup": state.count_backup},
           "usuarios": sorted(state.users),
           "licencas": {key: [*state.licenses[key][:6], *map(list, state.licenses[key][6:])]
                        for key in sorted(state.licenses)},
           "excluidas": {key: {"em": when, "versoes": list(versions)}
                         for key, (when, versions) in sorted(state.deleted.items())},
           "ids": {key: list(state.ids[key]) for key in sorted(state.ids)},
           "antes_do_bloqueio": dict(sorted(state.blocked_from.items()))}
    atomic_write(path, json.dumps(doc, ensure_ascii=False, separators=(",", ":")))


def journal_path(data_dir: str, primary_url: str, backup_url: str) -> str:
    return state_path(data_dir, primary_url, backup_url)[:-len(".json")] + ".diario.json"


def journal_entries(plan: "Plan", primary: Snapshot, backup: Snapshot, today: dt.date,
                    only: set[str] | None = None, left_allowed: Iterable[str] = (),
                    undone: set[str] | None = None) -> dict[str, JournalEntry]:
    """Para cada cadeia: lado de origem e os estados (hash, status) por que o destino passa. O desfazer
    entra ANTES da escrita que ele desfaz: uma cadeia que o Executor pode desfazer excluindo o registro
    (undone_by_delete) tem também o estado "ausente" ([None, None]), e um fim abrupto entre a exclusão e o
    estado do par não vira "apagada no backup" (conflito que apagaria no principal). Depois das escritas,
    `undone` limita o "ausente" às que foram mesmo desfeitas assim. `left_allowed`: as licenças que uma
    cadeia deixou LIBERADAS onde a origem nega ("liberada": a primeira coisa da próxima execução)."""
    entries: dict[str, JournalEntry] = {}
    left_allowed = set(left_allowed)
    for chain in plan.license_chains:
        key, side = chain[0].key, chain[0].side
        if only is not None and key not in only:
            continue
        source, target = (primary, backup) if side == Side.BACKUP else (backup, primary)
        current, states = target.licenses.get(key), []
        for action in chain:
            current = model_apply(current, action, today, source.licenses.get(key))
            if current is not None:
                states.append([fingerprint(current), current.status])
        if undone_by_delete(chain) and (undone is None or key in undone):
            states.append([None, None])
        origin = source.licenses.get(key)
        entries[key] = JournalEntry(side.other, states, version_of(origin) if origin else None, key in left_allowed)
    return entries


@dataclasses.dataclass(frozen=True)
class JournalEntry:
    """Uma cadeia no diário do par (arquivo ESTADO.diario.json): o lado de origem dela ("origem"), os
    estados [hash, status] por que o destino passa ("alvo"), a versão da origem quando ela foi planejada
    ("fonte") e se ela deixou a licença LIBERADA onde a origem nega ("liberada"). journal_entries a cria,
    journal_json a grava e journal_entry (a ÚNICA leitura) a lê de volta."""
    origin: Side
    targets: list[list[Any]]
    source: str | None = None
    left_allowed: bool = False


def journal_json(entry: JournalEntry) -> dict[str, Any]:
    doc: dict[str, Any] = {"origem": entry.origin, "alvo": entry.targets, "fonte": entry.source}
    if entry.left_allowed:
        doc["liberada"] = True
    return doc


def journal_entry(raw: Any) -> JournalEntry | None:
    """A ÚNICA leitura de uma entrada do diário: None se ela não é uma entrada (origem ou alvo inválidos)."""
    if not isinstance(raw, dict) or raw.get("origem") not in tuple(Side) or not isinstance(raw.get("alvo"), list):
        return None
    source = raw.get("fonte")
    return JournalEntry(Side(raw["origem"]), raw["alvo"], source if isinstance(source, str) else None,
                        raw.get("liberada") is True)


def undone_by_delete(chain: Sequence[Action]) -> bool:
    """O plano anotou um desfazer na cadeia (chain_undo): se o bloqueio do fim falhar, o Executor a desfaz
    excluindo o registro (Executor.compensate)."""
    return chain[-1].undo is not None


def save_journal(data_dir: str, primary_url: str, backup_url: str, entries: dict[str, JournalEntry]) -> None:
    path = journal_path(data_dir, primary_url, backup_url)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    atomic_write(path, json.dumps({key: journal_json(e) for key, e in entries.items()}, ensure_ascii=False))


def load_journal(data_dir: str, primary_url: str, backup_url: str) -> dict[str, JournalEntry]:
    return load_journal_checked(data_dir, primary_url, backup_url, set_aside=False)[0]


def load_journal_checked(data_dir: str, primary_url: str, backup_url: str,
                         set_aside: bool = True) -> tuple[dict[str, JournalEntry], str | None]:
    """O diário do par e um aviso: ausente → ({}, None); danificado (JSON ilegível ou que não é um
    objeto) → ({}, aviso) e, com set_aside, o arquivo é guardado com a data no nome."""
    path = journal_path(data_dir, primary_url, backup_url)
    if not os.path.exists(path):
        return {}, None
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
        if not isinstance(raw, dict):
            raise TypeError(f"esperado um objeto JSON, veio {type(raw).__name__}")
        entries = {k: journal_entry(v) for k, v in raw.items()}
        return {k: e for k, e in entries.items() if e is not None}, None
    except Exception as exc:  # noqa: BLE001 - qualquer conteúdo inesperado é "danificado"
        reason = f"{exc.__class__.__name__}: {mask(str(exc)[:120])}"
    then = "este par seguiu sem ele (escritas interrompidas numa execução anterior não são retomadas por ele)"
    if not set_aside:
        return {}, f"diário do par {path} danificado ({reason}): {then}."
    return {}, set_aside_damaged(path, "diário do par", reason, then)


def next_state(plan: Plan, results: list[Result], old: PairState | None, primary: Snapshot, backup: Snapshot,
               primary_url: str, backup_url: str, today: dt.date | None = None) -> PairState:
    """Estado depois da execução: o que ficou igual nos dois lados. Registros com falha,
    conflito não resolvido ou exclusão retida mantêm a versão antiga (serão vistos de novo).
    `today`: a data UTC da execução (padrão: a do relógio do plano, que segue --agora/--hoje)."""
    if today is None:
        assert plan.clock is not None  # plan_pair sempre grava no plano o relógio com que o fez
        today = plan.clock.utc
    failed = {r.action.key for r in results if not r.ok and r.action.kind != CREATE_USER}
    keep_old = failed | {c.key for c in plan.conflicts if c.open} | \
        {a.key for a in plan.held_deletions}
    licenses: dict[str, StateEntry] = {}
    for key, (p_after, b_after) in plan.expected.items():
        if key not in keep_old:
            previous = old.licenses.get(key) if old else None
            new = StateEntry(fingerprint(p_after), fingerprint(b_after), p_after.status, b_after.status,
                             _jsonable(p_after.end_date), _jsonable(b_after.end_date))
            older_backup = _older(previous, new, Side.BACKUP)
            if previous is None and old and key in old.deleted:  # recriada: as versões de antes continuam "antigas"
                older_backup = tuple(v for v in old.deleted[key][1]
                                     if v != new.version(Side.BACKUP))[-OLDER_VERSIONS_KEPT:]
            licenses[key] = new._replace(older_primary=_older(previous, new, Side.PRIMARY), older_backup=older_backup)
    deleted = {r.action.key for r in results if r.ok and r.action.kind == DELETE}
    present = set(primary.licenses) | set(backup.licenses)
    for key, entry in (old.licenses.items() if old else ()):
        # não planejados agora (só no backup no modo unidirecional, inválidos, com falha, em conflito):
        # continuam lembrados enquanto existirem em algum lado
        if (key in keep_old or key not in licenses) and key in present and key not in deleted:
            if key not in primary.licenses and key not in primary.rejected:
                # o principal não a tem mais: lembrada como "apagada no principal" (o que sumir depois é que
                # conta como sumiço; restaurar não a recria)
                entry = entry._replace(fp_primary=None, status_primary=None, end_primary=None)
            licenses[key] = entry
    for result in results:  # bloqueio derivado de uma licença que só restou no backup: não é "mudança do backup"
        key = result.action.key
        if result.ok and result.action.kind == BLOCK and key not in plan.expected and key in licenses:
            licenses[key] = licenses[key]._replace(status_backup=status_after(result.action))
    deleted_both = _tombstones(old, licenses, (set(primary.licenses) | set(backup.licenses)) - deleted, today=today)
    done = [r.action for r in results if r.ok and not r.unsyncable]
    delta = {Side.PRIMARY: 0, Side.BACKUP: 0}
    for action in done:
        if action.kind in (CREATE, DELETE):
            delta[action.side] += 1 if action.kind == CREATE else -1
    users = set(primary.users) & set(backup.users)
    users |= {a.key for a in done if a.kind == CREATE_USER}
    count_p, count_b = primary.license_count + delta[Side.PRIMARY], backup.license_count + delta[Side.BACKUP]
    held_sides = {a.side for a in plan.held_deletions}
    if old and Side.BACKUP in held_sides:  # exclusões no backup retidas: o principal encolhido não vira referência
        count_p = old.count_primary
    if old and Side.PRIMARY in held_sides:
        count_b = old.count_backup
    seen = {**{k: BACKUP_SALE for k in plan.backup_sales}, **{k: BACKUP_UNKNOWN for k in plan.backup_unknown}}
    present_after = present - deleted
    return PairState(primary_url, backup_url, count_p, count_b, users, licenses, deleted_both, synced_on=today,
                     backup_only=seen, ids=_server_ids(old, licenses, primary, backup),
                     blocked_from=_blocked_from(old, licenses, present_after, results))


def _server_ids(old: PairState | None, licenses: dict[str, StateEntry], primary: Snapshot,
                backup: Snapshot) -> dict[str, tuple[int | None, int | None]]:
    """O `id` local de cada licença do estado em cada lado: o lido agora ou, de um lado que não a tem mais,
    o que ela tinha (um id que uma cópia restaurada devolve a outra licença é sinal de restauração). Criada
    nesta execução: id ainda desconhecido (a próxima leitura o traz)."""
    found = {}
    for key, entry in licenses.items():
        before = old.ids.get(key, (None, None)) if old else (None, None)
        primary_id, backup_id = (snap.server_ids.get(key, before[i] if entry.fp(side) is None else None)
                                 for i, (side, snap) in enumerate(((Side.PRIMARY, primary), (Side.BACKUP, backup))))
        pair = (primary_id, backup_id)
        if pair != (None, None):
            found[key] = pair
    return found


def _blocked_from(old: PairState | None, licenses: dict[str, StateEntry], present: set[str],
                  results: list[Result]) -> dict[str, str]:
    """Status do backup antes de cada bloqueio NOSSO por ausência no principal (Action.absence): os desta
    execução mais os lembrados, enquanto a licença existir só de um lado (voltou aos dois — restaurada ou
    vendida de novo — ou sumiu de todo: esquecido)."""
    kept = dict(old.blocked_from) if old else {}
    for result in results:
        action = result.action
        if result.ok and action.kind == BLOCK and action.absence and action.side == Side.BACKUP:
            before = action.changes[0][1] if action.changes else None
            kept[action.key] = before if isinstance(before, str) and before != BLOCKED else ACTIVE
    return {key: status for key, status in kept.items() if key in present and not (
        key in licenses and licenses[key].fp_primary is not None and licenses[key].fp_backup is not None)}


TOMBSTONE_DAYS = 60  # por quanto tempo uma licença apagada dos dois lados é lembrada


def _tombstones(old: PairState | None, licenses: dict[str, StateEntry], present: set[str],
                today: dt.date) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Licenças que saíram do estado por terem sido apagadas (as versões que o backup teve ficam lembradas).
    `present`: as que existem em algum lado depois da execução."""
    if old is None:
        return {}
    limit = (today - dt.timedelta(days=TOMBSTONE_DAYS)).isoformat()
    # lembrada até voltar a ser sincronizada (ou vencer o prazo), mesmo que uma cópia antiga a traga de volta
    kept = {k: v for k, v in old.deleted.items() if v[0] >= limit and k not in licenses}
    for key, entry in old.licenses.items():
        if key not in licenses and key not in present:
            versions = tuple(v for v in entry.older(Side.BACKUP) + (entry.version(Side.BACKUP),)
                             if not v.startswith("None|"))
            kept[key] = (today.isoformat(), versions[-(OLDER_VERSIONS_KEPT + 1):])
    return kept


def _older(previous: StateEntry | None, new: StateEntry, side: Side) -> tuple[str, ...]:
    """Versões anteriores de um lado: as lembradas mais a que era a base, sem a atual, as últimas N."""
    if previous is None:
        return ()
    versions = [v for v in previous.older(side) + (previous.version(side),)
                if v != new.version(side) and not v.startswith("None|")]
    newest_first = list(dict.fromkeys(reversed(versions)))
    return tuple(reversed(newest_first[:OLDER_VERSIONS_KEPT]))


def swap_state(state: PairState) -> PairState:
    """A orientação do estado: ele é salvo pelos servidores reais (principal, backup) e o plano de restaurar
    tem os lados trocados (origem = backup); converte de uma orientação para a outra (é a sua inversa)."""
    return PairState(state.backup_url, state.primary_url, state.count_backup, state.count_primary, state.users,
                     {k: entry.swapped() for k, entry in state.licenses.items()}, dict(state.deleted),
                     state.synced_on, dict(state.backup_only),
                     ids={k: (b, p) for k, (p, b) in state.ids.items()}, blocked_from=dict(state.blocked_from))




def acquire_lock(data_dir: str) -> FileLock:
    """Impede duas sincronizações ao mesmo tempo. A trava é do sistema operacional:
    se o processo morrer (até com kill -9), ela é liberada sozinha."""
    lock = FileLock(os.path.join(data_dir, LOCK_FILE), timeout=0, mode=PRIVATE_FILE)
    try:
        lock.acquire()
    except LockTimeout:
        problem = lock_file_problem(os.path.join(data_dir, LOCK_FILE))
        if problem is not None:  # a trava não foi pega porque esta conta não consegue gravar, não por outra execução
            raise data_dir_error(data_dir, problem) from None
        raise LockBusy() from None
    except OSError as exc:  # pasta somente leitura, disco cheio...
        raise data_dir_error(data_dir, exc) from None
    return lock


def lock_file_problem(path: str) -> OSError | None:
    """Uma trava que não pôde ser pega: o erro de abrir o arquivo dela para gravar (pasta ou arquivo que a conta
    desta execução não pode gravar; o filelock trata isso como "ocupada"), ou None (é outra execução mesmo)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        return exc
    os.close(fd)
    return None


def account_name() -> str:
    """O nome da conta que roda esta execução (a do agendador), para as mensagens de permissão."""
    try:
        import pwd  # só POSIX
        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        return os.environ.get("USERNAME") or os.environ.get("USER") or "desta execução"


def data_dir_error(data_dir: str, exc: BaseException) -> ConfigError:
    """Pasta de dados em que não se consegue gravar: a execução é recusada antes de falar com os servidores."""
    if isinstance(exc, PermissionError) or getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
        account = account_name()
        fix = ("dê a essa conta permissão de gravar na pasta (Propriedades → Segurança → Editar) " if os.name == "nt"
               else f"dê a essa conta permissão de gravar na pasta (ex.: sudo chown -R {account} {data_dir}) ")
        return ConfigError(f"a conta {account} não tem permissão de gravar na pasta de dados {data_dir} "
                           f"({exc.__class__.__name__}: {getattr(exc, 'strerror', None) or exc}); nada foi enviado aos "
                           f"servidores. Para resolver, {fix}ou aponte DADOS_DIR para uma pasta dessa conta.")
    return ConfigError(f"não é possível gravar na pasta de dados {data_dir} ({exc.__class__.__name__}: {exc}); "
                       "nada foi enviado aos servidores. Libere espaço ou corrija as permissões.")


def remove_stale_temp_files(data_dir: str) -> int:
    """Apaga temporários de uma execução morta no meio de atomic_write (podem conter senhas).
    Só é chamada com a trava na mão: nenhuma outra execução pode estar gravando."""
    removed = 0
    for folder in (data_dir, os.path.join(data_dir, STATE_DIR)):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            if name.startswith(".tmp-"):
                try:
                    os.unlink(os.path.join(folder, name))
                    removed += 1
                except OSError:
                    pass
    return removed





# ============================================================================
# Relatório (texto em português e JSON)
# ============================================================================

ACTION_LABELS = {  # ícone, feito, a fazer, verbo (para falhas)
    CREATE_USER: ("👤", "usuário criado", "usuário a criar", "criar o usuário"),
    CREATE: ("➕", "criada", "a criar", "criar"),
    UPDATE: ("✏️ ", "atualizada", "a atualizar", "atualizar"),
    RENEW: ("🔁", "período reiniciado", "a reiniciar o período", "reiniciar o período"),
    DELETE: ("🗑️ ", "excluída", "a excluir", "excluir"),
    SET_CREATED_BY: ("✏️ ", "created_by corrigido", "a corrigir o created_by", "corrigir o created_by"),
    BLOCK: ("🔒", "bloqueada", "a bloquear", "bloquear"),
    ACTIVATE: ("🔓", "ativada", "a ativar", "ativar"),
}
COUNT_KEYS = {
    CREATE_USER: "usuarios_criados", CREATE: "licencas_criadas", UPDATE: "licencas_atualizadas",
    RENEW: "licencas_renovadas", BLOCK: "licencas_bloqueadas", ACTIVATE: "licencas_ativadas",
    DELETE: "licencas_excluidas", SET_CREATED_BY: "licencas_atualizadas",
}
MAX_LINES = 20


class Reporter:
    """Escreve o relatório humano à medida que a execução anda (nada no modo --json).

    Cada chamada é UMA linha: o texto sai sem segredos e com controles e marcas bidirecionais à vista
    (terminal_text), inclusive uma quebra de linha vinda de um valor do servidor."""

    def __init__(self, json_mode: bool, stream=None):
        self.json_mode = json_mode
        self.stream = stream or sys.stdout

    def say(self, text: str = "") -> None:
        if not self.json_mode:
            self.stream.write(terminal_text(text) + "\n")
            self.stream.flush()

    def warn(self, text: str) -> None:
        """Avisos vão para stderr também no modo --json (o stdout fica só com o JSON)."""
        if self.json_mode:
            sys.stderr.write(terminal_text(text) + "\n")
        else:
            self.say(text)


def count_changes(counts: dict[str, Any]) -> int:
    """Total de escritas de um dicionário de contagens de um lado (criadas, atualizadas, ...)."""
    return sum(v for k, v in counts.items() if k in COUNT_KEYS.values())


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


@dataclasses.dataclass(frozen=True)
class Direction:
    """Um par de servidores com os papéis reais (principal, backup). No plano, a origem é o lado
    Side.PRIMARY e o destino o Side.BACKUP; em restaurar a origem é o backup e o destino o principal.
    role_of é a ÚNICA tradução de lado do plano para servidor real."""
    primary: ServerConfig
    backup: ServerConfig
    restore: bool = False

    @property
    def source(self) -> ServerConfig:
        return self.server(Side.PRIMARY)

    @property
    def target(self) -> ServerConfig:
        return self.server(Side.BACKUP)

    def role_of(self, side: Side) -> Role:
        """O servidor real (principal ou backup) que o plano chama de `side`."""
        role = Role.PRIMARY if side == Side.PRIMARY else Role.BACKUP
        return role.other if self.restore else role

    def server(self, side: Side) -> ServerConfig:
        """A configuração do servidor que o plano chama de `side`."""
        return self.with_role(self.role_of(side))

    def with_role(self, role: Role) -> ServerConfig:
        return self.primary if role == Role.PRIMARY else self.backup


@dataclasses.dataclass
class Parity:
    """Veredito (liberada/negada) igual nos dois lados, licença a licença."""
    total: int
    different: list[str]
    ignored: int = 0
    observed: bool = True  # False: previsão do plano (simulação)

    @property
    def ok(self) -> bool:
        return not self.different and not self.ignored

    @property
    def equal(self) -> int:
        return self.total - len(self.different)


@dataclasses.dataclass
class PairOutcome:
    """Tudo o que aconteceu num par. O texto, o --json, o histórico, o ultima_execucao.json e o painel
    são feitos a partir daqui, nunca o contrário."""
    direction: Direction
    started: str
    clock: Clock | None = None
    ended: str = ""
    duration_s: float = 0.0
    plan: Plan | None = None
    results: list[Result] | None = None
    parity: Parity | None = None  # o que os servidores têm agora (None: não foi possível conferir)
    parity_before: Parity | None = None
    divergences: list[Divergence] = dataclasses.field(default_factory=list)
    leftover: list[Action] = dataclasses.field(default_factory=list)  # escritas que o servidor não guardou
    warnings: list[str] = dataclasses.field(default_factory=list)  # conferência e arquivos locais
    users_total: int = 0
    users_present: int = 0
    error: str | None = None
    error_code: int = ExitCode.SERVER
    code: int = ExitCode.OK
    status: PairStatus = PairStatus.OK
    waited_s: float = 0.0
    reread: bool = False  # True: paridade lida de novo nos servidores depois das escritas
    interrupted: int | None = None  # 130 (Ctrl+C) ou 143 (SIGTERM): parou no meio deste par
    not_run: list[Action] = dataclasses.field(default_factory=list)  # escritas que a interrupção deixou por fazer
    # releitura final (Run.settle): rodadas extras para o que mudou nos servidores (ou a data) durante a execução
    extra_rounds: int = 0
    extra_writes: int = 0  # escritas confirmadas nessas rodadas
    moved: list[str] = dataclasses.field(default_factory=list)  # quem mudou: Role.PRIMARY, Role.BACKUP, "data"
    still_moving: list[str] = dataclasses.field(default_factory=list)  # chaves ainda mudando depois do limite

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results or [] if not r.ok]

    @property
    def open_conflicts(self) -> list["Conflict"]:
        return [c for c in (self.plan.conflicts if self.plan else []) if c.open]

    def writes(self, role: Role) -> dict[ActionKind, int]:
        """Escritas feitas (ou planejadas, numa simulação) no servidor `role`, por tipo de ação."""
        counts = dict.fromkeys(ActionKind, 0)
        for result in self.done():
            if result.ok and not result.unsyncable and self.direction.role_of(result.action.side) == role:
                counts[result.action.kind] += 1
        return counts

    def write_total(self, role: Role) -> int:
        return sum(self.writes(role).values())

    def planned(self) -> list[Action]:
        return [] if self.plan is None or self.plan.halted else self.plan.actions

    def done(self) -> list[Result]:
        """Os resultados das escritas; numa simulação, o plano como se tudo desse certo."""
        return self.results if self.results is not None else [Result(a, True) for a in self.planned()]


def pair_verdict(outcome: PairOutcome, check: bool) -> tuple[int, PairStatus]:
    """O código de saída de um par (a única regra; o da execução é o pior dos pares)."""
    plan = outcome.plan
    if outcome.interrupted:
        return outcome.interrupted, PairStatus.INTERRUPTED
    if outcome.error is not None or plan is None:
        return outcome.error_code, PairStatus.ERROR
    if plan.held_deletions or plan.halted:
        return ExitCode.SAFETY, PairStatus.HELD
    if check:
        # verificar: qualquer pendência ou veredito diferente agora é "fora de sincronia"
        parity_ok = outcome.parity is not None and outcome.parity.ok
        behind = plan.actions or not parity_ok or plan.conflicts or plan.backup_only_allowed
        return (ExitCode.FAILURES, PairStatus.FAILURES) if behind else (ExitCode.OK, PairStatus.OK)
    in_conflict = {c.key for c in outcome.open_conflicts}
    parity_problem = outcome.parity is None or outcome.parity.ignored or set(outcome.parity.different) - in_conflict
    if outcome.failures or outcome.leftover or outcome.warnings or parity_problem or plan.skipped_users \
            or plan.backup_sales or plan.backup_unknown \
            or plan.newest_vanished:  # liberada só no backup, venda talvez negada por nós: nunca sai com 0
        return ExitCode.FAILURES, PairStatus.FAILURES
    if outcome.open_conflicts:
        return ExitCode.FAILURES, PairStatus.CONFLICTS
    return ExitCode.OK, PairStatus.OK


def refill_command(d: Direction, lost: Role, overwrite: bool = False, unknown_pair: bool = False) -> str:
    """O comando que recompleta o servidor que perdeu dados a partir do outro (para o principal: restaurar a
    partir do backup, que recria o que falta com o status do backup; `overwrite`: também reverte os registros
    que voltaram a uma versão antiga, com --forcar; `unknown_pair`: sem estado salvo do par, restaurar de um
    principal vazio só é aceito com --aceitar-backup-desconhecido, depois de quem usa conferir o backup)."""
    if lost == Role.BACKUP:
        return f"{PY} sincronizar_bancos.py --backup {d.backup.url}"
    return (f"{PY} sincronizar_bancos.py restaurar --de {d.backup.url}" + (" --forcar" if overwrite else "")
            + (f" --aceitar-backup-desconhecido {d.backup.url}" if unknown_pair else ""))


def restore_overwrites(loss: DataLoss, d: Direction) -> bool:
    """O principal voltou a uma cópia antiga: só restaurar com --forcar devolve a ele as versões novas."""
    return loss.kind == LossKind.ROLLED_BACK and d.role_of(loss.side) == Role.PRIMARY


def backup_only_commands(d: Direction) -> tuple[str, str]:
    """Os dois comandos para licenças liberadas só no backup: levar ao principal (venda) ou bloquear no
    backup (reembolso; reversível)."""
    return (f"{PY} sincronizar_bancos.py restaurar --de {d.backup.url}",
            f"{PY} sincronizar_bancos.py --backup {d.backup.url} --bloquear-so-no-backup")


def loss_text(loss: DataLoss, d: Direction, halted: bool, written: int = 0, first_sync: bool = False) -> str:
    """A perda de dados de um lado, em português, com os números e o comando que resolve. `written`: escritas
    já confirmadas neste par quando a perda só apareceu na releitura final (a primeira rodada gravou);
    `first_sync`: não há estado salvo do par (o backup pode nem ser deste principal: confira antes)."""
    lost = d.role_of(loss.side)
    good = lost.other
    url = d.with_role(lost).url
    what = {
        LossKind.EMPTY: f"a listagem do {lost.upper()} ({url}) está VAZIA (o {good} tem "
                        f"{plural(loss.other, 'licença')})",
        LossKind.HALF: f"o {lost.upper()} ({url}) perdeu mais da metade das licenças desde a última "
                       f"sincronização ({loss.before} → {loss.now})",
        LossKind.ROLLED_BACK: f"o {lost.upper()} ({url}) voltou atrás em {plural(len(loss.keys), 'registro')} desde "
                              f"a última sincronização ({sample(list(loss.keys), 5)}): parece uma cópia antiga "
                              "restaurada",
        LossKind.SHRANK: (
            f"{plural(len(loss.keys), 'licença já sincronizada sumiu', 'licenças já sincronizadas sumiram')}"
            f" do {lost.upper()} ({url}) de uma vez ({sample(list(loss.keys), 5)}), acima do limite de "
            "exclusões (--max-exclusoes): listagem cortada (proxy, página parcial) ou cópia antiga? "
            "Bloqueá-las no backup negaria licenças que talvez o principal ainda libere"
        ),
        LossKind.RESTORED: (
            f"{plural(len(loss.keys), 'licença já sincronizada sumiu', 'licenças já sincronizadas sumiram')} do "
            f"{lost.upper()} ({url}) de uma vez ({sample(list(loss.keys), 5)}"
            + ("; as MAIS NOVAS que ele tinha)" if loss.newest == len(loss.keys) else
               f"; entre elas as {loss.newest} MAIS NOVAS que ele tinha)" if loss.newest > 1 else ")")
            + (f", e o {lost} já deu a outras licenças "
               + ("o id local que uma delas tinha" if len(loss.reused) == 1 else
                  f"os ids locais que {len(loss.reused)} delas tinham")
               + f" ({sample(list(loss.reused), 5)})" if loss.reused else "")
            + f": parece o {lost} restaurado de uma cópia anterior do banco (o provedor voltou o banco), e não "
            f"reembolsos. Bloqueá-las no {good} negaria vendas pagas"
        ),
        LossKind.CUT: (
            f"{plural(len(loss.keys), 'licença já sincronizada sumiu', 'licenças já sincronizadas sumiram')} do "
            f"{lost.upper()} ({url}) de uma vez, um bloco seguido da listagem ({sample(list(loss.keys), 5)}): "
            f"listagem cortada (proxy, página parcial) ou registros perdidos, e não reembolsos (que somem "
            f"espalhados). Bloqueá-las no {good} negaria licenças que talvez o {lost} ainda libere"
        ),
    }[loss.kind]
    if not halted:
        return f"--forcar: seguindo apesar de: {what}."
    effects = []
    if loss.would_delete:
        effects.append(f"apagaria {plural(loss.would_delete, 'licença')} do {good.upper()}")
    if loss.would_overwrite:
        effects.append(f"sobrescreveria {plural(loss.would_overwrite, 'licença')} do {good.upper()} com a versão "
                       f"do {lost}")
    forced = ""
    if effects:
        forced = " Seguir assim mesmo (--forcar) " + " e ".join(effects)
        forced += (f"; isso só é aceito com --forcar --max-exclusoes {loss.would_delete} (ou mais)."
                   if loss.would_delete else ".")
    check = ""
    if loss.kind == LossKind.CUT:
        check = (f". Antes, confira no painel do {lost} se elas existem lá: se existem, a listagem veio cortada; "
                 "não restaure e rode de novo quando ela voltar inteira.")
    elif loss.kind == LossKind.RESTORED:
        check = (f" (restaurar só cria no {lost} o que falta, com o status que cada licença tem no {good}; "
                 "nada é apagado).")
    done = (f"Depois de {plural(written, 'escrita confirmada', 'escritas confirmadas')} neste par, nada mais "
            "foi gravado" if written else "NADA foi gravado neste par")
    unknown = first_sync and lost == Role.PRIMARY
    if unknown:  # um principal vazio não diz de quem é o backup: copiar um servidor alheio seria o pior erro
        check = (f" (não há estado salvo deste par: antes, confira no painel de {d.backup.url} que ele é mesmo o "
                 "backup deste principal; se for de outro vendedor, restaurar copiaria as licenças dele para o seu "
                 "principal).")
    return (f"{done}: {what}. Para recompletar o {lost} a partir do {good}, rode: "
            f"{refill_command(d, lost, restore_overwrites(loss, d), unknown)}{check or '.'}{forced}")


def safety_text(outcome: "PairOutcome") -> str | None:
    """O que as travas de segurança disseram neste par (perda de dados ou limite de exclusões)."""
    plan = outcome.plan
    if plan is None:
        return None
    texts = [loss_text(plan.loss, outcome.direction, plan.halted, confirmed_writes(outcome), plan.first_sync)] \
        if plan.loss else []
    if plan.limits:
        texts.append(limits_text(plan, outcome.direction))
    return " ".join(texts) or None


def confirmed_writes(outcome: PairOutcome) -> int:
    """Escritas que os servidores confirmaram neste par (os dois lados)."""
    return outcome.write_total(Role.BACKUP) + outcome.write_total(Role.PRIMARY)


def interrupted_text(outcome: PairOutcome) -> str | None:
    """O que a interrupção (Ctrl+C ou SIGTERM) deixou neste par, com o que fazer."""
    if not outcome.interrupted:
        return None
    how = stop_label(outcome.interrupted)
    if outcome.error is not None or not outcome.results:
        return (f"interrompida ({how}) antes de escrever neste par: nada foi gravado nele; "
                "rode de novo para sincronizar.")
    return (f"interrompida ({how}): {plural(confirmed_writes(outcome), 'escrita confirmada', 'escritas confirmadas')} "
            f"pelos servidores antes de parar, {plural(len(outcome.not_run), 'escrita')} por fazer. Nenhuma "
            "sequência ficou pela metade; rode de novo para completar (continua de onde parou).")


def extra_rounds_text(outcome: PairOutcome) -> str | None:
    """As rodadas extras da releitura final (o que mudou durante a execução e foi aplicado depois)."""
    if not outcome.extra_rounds:
        return None
    roles = [role for role in (Role.PRIMARY, Role.BACKUP) if role in outcome.moved]
    who = f"O {roles[0]} mudou" if len(roles) == 1 else "O principal e o backup mudaram" if roles else "A data mudou"
    rounds = "numa rodada extra" if outcome.extra_rounds == 1 else f"em {outcome.extra_rounds} rodadas extras"
    return (f"🔁 {who} durante a execução: "
            f"{plural(outcome.extra_writes, 'alteração aplicada', 'alterações aplicadas')} {rounds}")


def limits_text(plan: Plan, d: Direction) -> str:
    """Exclusões acima do limite, em português, com o que fazer."""
    numbers = "; ".join(f"{plural(lim.count, 'exclusão', 'exclusões')} no {d.role_of(lim.side)} passam do "
                        f"limite de {lim.limit} (--max-exclusoes)" for lim in plan.limits)
    if not plan.held_deletions:
        return f"--forcar: exclusões aplicadas apesar de: {numbers}."
    return (f"Exclusões RETIDAS ({len(plan.held_deletions)}): {numbers}. Se as exclusões são mesmo desejadas, rode "
            "de novo com --forcar ou com um --max-exclusoes maior.")


def _result_dict(result: Result) -> dict[str, Any]:
    return {"tipo": result.action.kind, "chave": result.action.key, "motivo": result.action.reason,
            "ok": result.ok, "mensagem": result.message or None, "nao_sincronizavel": result.unsyncable,
            "mudancas": [{"campo": f, "antes": _jsonable(a), "depois": _jsonable(b)}
                         for f, a, b in result.action.changes]}


def _parity_json(parity: Parity | None) -> dict[str, Any] | None:
    if parity is None:
        return {"ok": False, "conferida": False, "total": None, "iguais": None, "diferentes": [], "ignoradas": 0}
    return {"ok": parity.ok, "conferida": parity.observed, "total": parity.total, "iguais": parity.equal,
            "diferentes": parity.different, "ignoradas": parity.ignored}


def pair_json(outcome: PairOutcome, simulate: bool) -> dict[str, Any]:
    """O par em JSON (chaves em português): o único lugar em que essas chaves são criadas."""
    d = outcome.direction
    doc: dict[str, Any] = {
        "backup": d.backup.url, "principal": d.primary.url, "origem": d.source.url, "destino": d.target.url,
        "simulacao": simulate, "situacao": outcome.status.value, "codigo_saida": outcome.code,
        "erro": pair_error_text(outcome),
        "inicio": outcome.started, "fim": outcome.ended, "duracao_s": outcome.duration_s,
        "interrompida": None if not outcome.interrupted else {
            "sinal": stop_label(outcome.interrupted), "escritas_confirmadas": confirmed_writes(outcome),
            "por_fazer": len(outcome.not_run)},
    }
    plan = outcome.plan
    if plan is None:
        return doc
    assert outcome.parity_before is not None  # o Run grava a paridade de antes junto com o plano
    divergences = [item.as_dict(d.role_of) for item in outcome.divergences]
    doc.update({
        "contagens": pair_counts_json(outcome),
        "acoes": [dict(_result_dict(r), servidor=d.role_of(r.action.side)) for r in outcome.done()],
        "falhas": [_result_dict(r) for r in outcome.failures],
        "nao_gravadas": [{"tipo": a.kind, "chave": a.key, "motivo": a.reason} for a in outcome.leftover],
        "avisos": outcome.warnings,
        "divergencias": divergences,
        "conflitos": [c.as_dict(d.role_of) for c in plan.conflicts],
        "exclusoes_retidas": [{"chave": a.key, "lado": d.role_of(a.side), "motivo": a.reason}
                              for a in plan.held_deletions],
        "trava_exclusoes": safety_text(outcome),
        "perda_de_dados": None if plan.loss is None else {
            "lado": d.role_of(plan.loss.side), "tipo": plan.loss.kind.value, "agora": plan.loss.now,
            "antes": plan.loss.before, "registros": list(plan.loss.keys), "apagaria": plan.loss.would_delete,
            "sobrescreveria": plan.loss.would_overwrite, "ids_reusados": list(plan.loss.reused),
            "comando": refill_command(d, d.role_of(plan.loss.side), restore_overwrites(plan.loss, d),
                                      plan.first_sync and d.role_of(plan.loss.side) == Role.PRIMARY)},
        "primeira_sincronizacao": plan.first_sync,
        # listas (não as tuplas do plano): bound_lists corta as listas do --json
        "so_no_backup": {"usuarios": list(plan.backup_only_users), "licencas": list(plan.backup_only_licenses),
                         "licencas_liberadas": list(plan.backup_only_allowed),
                         "vendas_no_backup": list(plan.backup_sales), "origem_desconhecida": list(plan.backup_unknown)},
        "comandos_so_no_backup": dict(zip(("levar_ao_principal", "bloquear_no_backup"),
                                             backup_only_commands(d), strict=True)),
        "nao_restauradas": list(plan.not_restored),
        "mais_novas_sumidas": list(plan.newest_vanished),
        "restauradas_como_antes_do_bloqueio": list(plan.unblocked),
        "parado_por_perda_de_dados": plan.halted,
        "registros_ignorados": [p.as_dict() for p in plan.skipped + plan.skipped_users + plan.unreachable],
        "paridade": _parity_json(outcome.parity),
        "paridade_antes": {"ok": outcome.parity_before.ok, "total": outcome.parity_before.total,
                           "diferentes": outcome.parity_before.different},
        "pendencias": len(outcome.planned()) + len(plan.held_deletions),
        "releitura_final": {"relida": outcome.reread, "rodadas_extras": outcome.extra_rounds,
                            "alteracoes_aplicadas": outcome.extra_writes,
                            "mudou": [str(m) for m in outcome.moved], "ainda_mudando": outcome.still_moving},
        "espera_despertar_s": round(outcome.waited_s, 1),
    })
    return doc


def counts_json(counts: dict[ActionKind, int]) -> dict[str, int]:
    """Escritas de um servidor, por tipo, com as chaves do --json e do histórico (criadas, atualizadas...)."""
    doc = {name: 0 for name in COUNT_KEYS.values()}
    for kind, count in counts.items():
        doc[COUNT_KEYS[kind]] += count
    return doc


def pair_counts_json(outcome: PairOutcome) -> dict[str, Any]:
    """A chave "contagens" do par (--json e coluna do histórico)."""
    plan = outcome.plan
    assert plan is not None  # só chamada para um par que chegou a planejar (pair_json, o histórico)
    return {**counts_json(outcome.writes(Role.BACKUP)), "falhas": len(outcome.failures),
            "licencas_sem_mudanca": plan.licenses_compared - len(plan.license_chains),
            "divergencias": len(outcome.divergences), "conflitos": len(plan.conflicts),
            "exclusoes_retidas": len(plan.held_deletions), "no_principal": counts_json(outcome.writes(Role.PRIMARY)),
            "escritas": {"principal": outcome.write_total(Role.PRIMARY), "backup": outcome.write_total(Role.BACKUP)}}


def pair_error_text(outcome: PairOutcome) -> str | None:
    """O erro do par (a interrupção, o que o impediu, ou o que as travas de segurança retiveram)."""
    return (interrupted_text(outcome) or outcome.error
            or (safety_text(outcome) if outcome.code == ExitCode.SAFETY else None))


JSON_LIST_LIMIT = 200  # itens por lista no --json (--json-completo: todos)


def bound_lists(doc: dict[str, Any], limit: int | None) -> dict[str, Any]:
    """Corta cada lista do par (e as de um nível abaixo, como paridade.diferentes) nos `limit` primeiros
    itens; o total de cada lista cortada vai para "listas_truncadas" ({"divergencias": 2543}). Assim o
    --json de uma execução sem mudanças não cresce com o número de licenças."""
    cut: dict[str, int] = {}
    if limit is not None:
        for key, value in doc.items():
            inner = value.items() if isinstance(value, dict) else [(None, value)]
            for sub, item in list(inner):
                if isinstance(item, list) and len(item) > limit:
                    cut[key if sub is None else f"{key}.{sub}"] = len(item)
                    if sub is None:
                        doc[key] = item[:limit]
                    else:
                        value[sub] = item[:limit]
    doc["listas_truncadas"] = cut
    return doc


def pair_details(outcome: PairOutcome, failover: FailoverReport | None = None, limit: int = 200) -> dict[str, Any]:
    """O que o histórico guarda de um par para o painel: amostras das listas do par, feitas do resultado."""
    plan, d = outcome.plan, outcome.direction
    divergences = [item.as_dict(d.role_of) for item in outcome.divergences[:limit]]
    by_field: dict[str, int] = {}
    for item in outcome.divergences:
        by_field[item[2]] = by_field.get(item[2], 0) + 1
    only_backup = {} if plan is None else {
        "usuarios": plan.backup_only_users[:limit], "licencas": plan.backup_only_licenses[:limit],
        "licencas_liberadas": plan.backup_only_allowed[:limit]}
    return {
        "divergencias_por_campo": by_field,
        "divergencias": divergences,
        "falhas": [_result_dict(r) for r in outcome.failures[:limit]],
        "nao_gravadas": [{"tipo": a.kind, "chave": a.key, "motivo": a.reason} for a in outcome.leftover[:limit]],
        "avisos": outcome.warnings[:limit] if plan else [],
        "conflitos": [c.as_dict(d.role_of) for c in (plan.conflicts if plan else [])[:limit]],
        "so_no_backup": only_backup,
        "paridade_diferentes": (outcome.parity.different if outcome.parity and plan else [])[:limit],
        "rota_de_falha": failover_json(failover),
    }


def _action_line(result: Result, simulate: bool, where: Role | None = None) -> str:
    """where: o servidor que recebe a escrita ("principal"/"backup"), dito quando o modo grava nos dois."""
    icon, done, todo, verb = ACTION_LABELS[result.action.kind]
    place = f" no {where}" if where else ""
    if not result.ok:
        return f"   ❌ {result.action.key}: falhou ao {verb}{place} — {result.message}"
    extra = f" ({result.message})" if result.message else ""
    return f"   {icon} {result.action.key}: {todo if simulate else done}{place} — {result.action.reason}{extra}"


def _writes_primary(outcome: PairOutcome) -> bool:
    """O plano deste par grava no principal (bidirecional ou restaurar)."""
    return outcome.direction.restore or any(a.side == Side.PRIMARY for a in outcome.planned())


def summarize_divergences(divergences: list[Divergence]) -> list[str]:
    groups: dict[tuple[str, str], list[str]] = {}
    for kind, key, field, _p, _b, _note in divergences:
        groups.setdefault((kind, field), []).append(key)
    lines = []
    for (kind, field), keys in sorted(groups.items()):
        noun = "usuário(s)" if kind == RecordKind.USER else "licença(s)"
        sample = ", ".join(keys[:5]) + (f", … e mais {len(keys) - 5}" if len(keys) > 5 else "")
        lines.append(f"   - {field}: {len(keys)} {noun}: {sample}")
    return lines


def sample(keys: Sequence[str], limit: int = 10) -> str:
    return ", ".join(keys[:limit]) + (f", … e mais {len(keys) - limit}" if len(keys) > limit else "")


def backup_only_cause(pairs: list[PairOutcome]) -> list[str]:
    """verificar: as licenças liberadas só no backup, quando são a única diferença dos pares fora de sincronia
    (sincronizar sem --espelhar não muda isso); [] quando há algo que a sincronização resolve."""
    behind = [p for p in pairs if p.status != PairStatus.OK]
    keys: list[str] = []
    for outcome in behind:
        plan, parity = outcome.plan, outcome.parity
        if outcome.status != PairStatus.FAILURES or plan is None or plan.actions or plan.conflicts \
                or parity is None or not parity.ok or not plan.backup_only_allowed:
            return []
        keys += plan.backup_only_allowed
    return keys


class TextReport:
    """O relatório em texto de um par, feito a partir do PairOutcome."""

    def __init__(self, rep: Reporter, simulate: bool, check: bool, force: bool):
        self.rep, self.simulate, self.check, self.force = rep, simulate, check, force

    def pair(self, outcome: PairOutcome) -> None:
        plan, rep = outcome.plan, self.rep
        if outcome.error is not None:
            rep.say(f"   ❌ Par ignorado, nada foi gravado nele: {outcome.error}")
            rep.say("")
            return
        if plan is None:  # interrompida antes do plano
            text = interrupted_text(outcome)
            assert text is not None  # sem erro e sem plano, o par só pode ter sido interrompido
            rep.say(f"   ⏹️  {text[0].upper()}{text[1:]}")
            rep.say("")
            return
        results = outcome.done()
        if plan.halted:
            rep.say(f"   🛑 Par parado: {safety_text(outcome)}")
        else:
            self.users(outcome, [r for r in results if r.action.kind == CREATE_USER])
            self.licenses(outcome, [r for r in results if r.action.kind != CREATE_USER])
        self.differences(outcome)
        extra = extra_rounds_text(outcome)
        if extra:
            rep.say(f"   {extra}")
        for warning in outcome.warnings:
            rep.say(f"   ⚠️  {warning}")
        if outcome.interrupted:
            text = interrupted_text(outcome)
            assert text is not None  # interrompida: interrupted_text sempre tem o que dizer
            rep.say(f"   ⏹️  {text[0].upper()}{text[1:]}")
        rep.say("")

    def actions(self, results: list[Result], d: Direction | None = None, two_way: bool = False) -> None:
        shown = [r for r in results if not r.ok] + [r for r in results if r.ok]
        say_where = d is not None and (two_way or d.restore)  # o modo grava no principal: dizer onde
        for result in shown[:MAX_LINES]:
            self.rep.say(_action_line(result, self.simulate,
                                      d.role_of(result.action.side) if d is not None and say_where else None))
        if len(shown) > MAX_LINES:
            where = "com --json" if self.simulate else "com --json ou no histórico"  # simulação não vai ao histórico
            self.rep.say(f"   … e mais {len(shown) - MAX_LINES} ações (lista completa {where})")

    def users(self, outcome: PairOutcome, results: list[Result]) -> None:
        self.rep.say("👥 Usuários" if self.check else "👥 Sincronizando usuários...")
        self.actions(results, outcome.direction, _writes_primary(outcome))
        done = "em dia após o plano" if self.simulate else "sincronizados"
        self.rep.say(f"   ✅ {outcome.users_present}/{outcome.users_total} usuários {done}")
        self.rep.say("")

    def licenses(self, outcome: PairOutcome, results: list[Result]) -> None:
        rep, plan = self.rep, outcome.plan
        assert plan is not None  # pair() só mostra as licenças de um par com plano
        rep.say("📋 Licenças" if self.check else "📋 Sincronizando licenças...")
        self.actions(results, outcome.direction, _writes_primary(outcome))
        failed = {r.action.key for r in outcome.failures} | {a.key for a in outcome.leftover} | \
            {a.key for a in outcome.not_run}
        done = "em dia após o plano" if self.simulate else "sincronizadas"
        rep.say(f"   ✅ {plan.licenses_compared - len(failed)}/{plan.licenses_compared} licenças {done}")
        if self.check:
            before = outcome.parity_before
            assert before is not None  # gravada junto com o plano
            rep.say(f"   {'✅' if before.ok else '❌'} Veredito agora: {before.equal}/{before.total} licenças com a "
                    "mesma resposta (liberada/negada) no principal e no backup")
        if outcome.interrupted and outcome.parity is None:
            rep.say("   ⏹️  Paridade de veredito não conferida: a execução foi interrompida antes da conferência")
        else:
            self.parity(outcome.parity)
        if plan.skipped:
            rep.say(f"   ⚠️  {plural(len(plan.skipped), 'licença')} do principal fora da sincronização por dados "
                    "ilegíveis (o backup não libera nenhuma delas se o principal as nega)")
        if plan.unreachable:
            rep.say(f"   ℹ️  {plural(len(plan.unreachable), 'licença')} com id que nenhum cliente alcança (espaços "
                    "nas pontas): não copiada(s): " + sample([repr(p.key) for p in plan.unreachable]))

    def parity(self, parity: Parity | None) -> None:
        if parity is None:
            self.rep.say("   ❌ Paridade de veredito NÃO conferida: o backup não respondeu à releitura")
            return
        how = "previsão do plano" if not parity.observed else (
            "conferido no servidor" if not self.check else "agora")
        self.rep.say(f"   {'✅' if parity.ok else '❌'} Paridade de veredito: {parity.equal}/{parity.total} licenças "
                     f"com a mesma resposta (liberada/negada) no principal e no backup ({how})")
        if parity.different:
            self.rep.say("      Diferentes: " + sample(parity.different, MAX_LINES))

    def differences(self, outcome: PairOutcome) -> None:
        """O que continua diferente: limitações da API, registros só no backup, conflitos, exclusões."""
        rep, plan = self.rep, outcome.plan
        assert plan is not None  # pair() só chega aqui com um plano
        if outcome.leftover:
            rep.say(f"   ❌ Conferência: o servidor não guardou {plural(len(outcome.leftover), 'escrita')} desta "
                    f"execução ({sample([a.key for a in outcome.leftover])}). Ele pode ter reiniciado vazio ou um "
                    "proxy ter respondido no lugar da API; a próxima execução tenta de novo.")
        if outcome.divergences:
            rep.say(f"   ⚠️  Divergências não sincronizáveis (a API não permite copiar): {len(outcome.divergences)}")
            for line in summarize_divergences(outcome.divergences):
                rep.say(line)
        if plan.backup_only_users or plan.backup_only_licenses:
            rep.say(f"   ℹ️  Só no backup (mantidos, nada apagado): {plural(len(plan.backup_only_users), 'usuário')}, "
                    f"{plural(len(plan.backup_only_licenses), 'licença')}: "
                    + sample(plan.backup_only_users + plan.backup_only_licenses))
        bring, block = backup_only_commands(outcome.direction)
        if plan.backup_sales:
            rep.say(f"   ⚠️  {plural(len(plan.backup_sales), 'venda feita', 'vendas feitas')} no BACKUP depois da "
                    "última sincronização (o principal não as tem e negaria; continuam LIBERADAS no backup): "
                    + sample(plan.backup_sales) + f". Leve-as ao principal: {bring} (ou use --bidirecional).")
        if plan.backup_unknown:
            rep.say(f"   ⚠️  {plural(len(plan.backup_unknown), 'licença')} LIBERADA(S) só no backup, sem como saber "
                    "se é venda feita lá ou licença apagada no principal (estado salvo ausente ou de outra URL): "
                    + sample(plan.backup_unknown) + f". Se são vendas: {bring}. Se foram apagadas no principal "
                    f"(reembolso): {block} (bloqueio reversível; --espelhar apagaria).")
        if plan.newest_vanished and not plan.halted:
            rep.say(f"   ⚠️  As {plural(len(plan.newest_vanished), 'licença mais nova', 'licenças mais novas')} do "
                    "principal sumiram juntas desde a última sincronização e foram bloqueadas no backup como "
                    f"reembolsos (bloqueio reversível): {sample(plan.newest_vanished)}. Se foram reembolsos, nada a "
                    "fazer. Se o principal voltou de uma cópia de segurança e elas eram vendas, devolva-as ao "
                    f"principal como eram antes do bloqueio: {refill_command(outcome.direction, Role.PRIMARY)}.")
        other_allowed = sorted(set(plan.backup_only_allowed) - set(plan.backup_sales) - set(plan.backup_unknown))
        if other_allowed and not outcome.direction.restore:
            rep.say(f"   ⚠️  {plural(len(other_allowed), 'licença')} só no backup "
                    f"{'está LIBERADA' if len(other_allowed) == 1 else 'estão LIBERADAS'} lá (o principal "
                    f"não {'a' if len(other_allowed) == 1 else 'as'} conhece e negaria): " + sample(other_allowed)
                    + ". Bloqueie ou apague no backup, ou cadastre no principal (--espelhar apaga).")
        if plan.not_restored:
            rep.say(f"   ℹ️  {plural(len(plan.not_restored), 'licença')} apagada(s) no principal depois de "
                    "sincronizada(s) não foi(ram) recriada(s): " + sample(plan.not_restored)
                    + " (--forcar recria).")
        if plan.unblocked:
            rep.say(f"   ℹ️  {plural(len(plan.unblocked), 'licença')} que a ferramenta tinha bloqueado no backup "
                    "(por ter sumido do principal) volta(m) ao principal como era(m) antes do bloqueio, LIBERADA(S): "
                    + sample(plan.unblocked) + ". No backup ela(s) segue(m) bloqueada(s) até a próxima "
                    f"sincronização: rode {PY} sincronizar_bancos.py --backup {outcome.direction.backup.url} "
                    "para liberá-la(s) lá também.")
        self.conflicts(plan)
        if plan.held_deletions:
            rep.say(f"   🛑 {plural(len(plan.held_deletions), 'exclusão retida', 'exclusões retidas')}: "
                    + sample([f"{a.key} ({outcome.direction.role_of(a.side)})" for a in plan.held_deletions]))
        if outcome.direction.restore and not self.force:
            rep.say("   ℹ️  Restaurar só cria o que falta no principal; registros que já existem lá ficam como "
                    "estão (--forcar sobrescreve com a versão do backup).")
        if outcome.direction.restore:
            rep.say("   ℹ️  Não restaurável pela API: as datas recomeçam hoje no principal (licenças vencidas ou "
                    "pendentes no backup ficam bloqueadas para negar igual) e os usuários recriados têm senhas "
                    "novas (veja o arquivo de senhas).")

    def conflicts(self, plan: Plan) -> None:
        if not plan.conflicts:
            return
        how = {ConflictPolicy.REPORT: "nada foi copiado (o backup só é bloqueado onde o principal nega); "
                                      "resolva e rode de novo, ou use --conflito principal|backup",
               ConflictPolicy.PRIMARY: "resolvidos a favor do principal",
               ConflictPolicy.BACKUP: "resolvidos a favor do backup"}
        policies = sorted({c.resolution for c in plan.conflicts})
        self.rep.say(f"   ⚔️  Conflitos: {len(plan.conflicts)} ({'; '.join(how[p] for p in policies)})")
        for conflict in plan.conflicts[:MAX_LINES]:
            self.rep.say(f"      {conflict.key}: {conflict.why}")
            for field, pv, bv in conflict.fields():
                self.rep.say(f"         {field}: principal={_jsonable(pv)!r} | backup={_jsonable(bv)!r}")
        if len(plan.conflicts) > MAX_LINES:
            self.rep.say(f"      … e mais {len(plan.conflicts) - MAX_LINES}")

    def summary(self, run: "RunOutcome") -> None:
        """O fecho do relatório: título, uma linha por par, avisos e o código de saída."""
        rep, code = self.rep, run.code
        for line in failover_text(run.failover):
            rep.say(line)
        rep.say(SEP)
        only_conflicts = all(p.status in (PairStatus.OK, PairStatus.CONFLICTS) for p in run.pairs)
        title = {ExitCode.OK: "✅ Sincronização concluída!",
                 ExitCode.FAILURES: "⚠️  Sincronização concluída com conflito(s) a resolver." if only_conflicts
                 else "⚠️  Sincronização concluída com problemas."}
        if self.check:
            title = {ExitCode.OK: "✅ Verificação: todos os backups em dia e com o mesmo veredito.",
                     ExitCode.FAILURES: "⚠️  Verificação: há backups fora de sincronia (rode a sincronização)."}
        elif self.simulate:
            title = {ExitCode.OK: "🧪 Simulação concluída (nada foi gravado).",
                     ExitCode.FAILURES: "🧪 Simulação concluída (nada foi gravado)."}
        backup_only = backup_only_cause(run.pairs) if self.check else []
        if backup_only:
            title = {ExitCode.FAILURES: f"⚠️  Verificação: backups em dia, mas "
                                  f"{plural(len(backup_only), 'licença')} só no "
                                  f"backup {'está LIBERADA' if len(backup_only) == 1 else 'estão LIBERADAS'} lá e o "
                                  "principal negaria (sincronizar não muda isso)."}
        if code != run.sync_code:
            title = {ExitCode.FAILURES: "⚠️  Verificação: backups em dia, mas a rota de falha precisa de ajuste."}
        title[ExitCode.INTERRUPTED] = "⏹️  Interrompida pelo usuário (Ctrl+C)."
        title[ExitCode.TERMINATED] = "⏹️  Encerrada pelo sistema (SIGTERM)."
        rep.say(title.get(code, "❌ Não concluída."))
        rep.say("-" * 60)
        rep.say("Resumo da restauração:" if any(p.direction.restore for p in run.pairs) else "Resumo por backup:")
        for pair in run.pairs:
            rep.say(self.summary_line(pair))
        for warning in run.warnings + run.notes:
            rep.say(f"   ⚠️  {warning}")
        if run.interrupted and not self.simulate:
            writes = sum(confirmed_writes(p) for p in run.pairs)
            left = sum(len(p.not_run) for p in run.pairs)
            rep.say(f"   ⏹️  Antes de parar: {plural(writes, 'escrita confirmada', 'escritas confirmadas')} pelos "
                    f"servidores; {plural(left, 'escrita')} por fazer"
                    + (" e backup(s) não sincronizado(s)" if any(p.error for p in run.pairs) else "")
                    + ". Nenhuma sequência ficou pela metade. Rode a sincronização de novo para completar "
                    "(ela continua de onde parou).")
        rep.say(f"Código de saída: {code} ({run.meaning})")
        if code != run.sync_code and run.failover is not None:  # a causa real e o conserto, por último
            rep.say("   → O conserto está nos servidores, não na sincronização: em cada um, "
                    f"{license_servers_line(run.failover.configured, run.failover.aliases)} (e reinicie-o).")
        elif backup_only:
            rep.say(f"   → O conserto: bloqueie ou apague no backup ({sample(backup_only)}), ou cadastre no "
                    "principal; 'sincronizar --espelhar' apaga no backup o que o principal não tem.")
        rep.say(SEP)

    def summary_line(self, outcome: PairOutcome) -> str:
        d = outcome.direction
        if outcome.status == PairStatus.ERROR or outcome.error is not None:
            return f"   ❌ {d.target.url}: {outcome.error}"
        icon = "✅" if outcome.status == PairStatus.OK else "⚠️ "
        verb = "planejada" if self.simulate else "feita"
        parts = []
        for role in (d.target.role, d.source.role):  # primeiro o servidor que recebe a cópia
            c = outcome.writes(role)
            total = sum(c.values())
            where = f"no {role}"
            if not total:
                parts.append(f"0 escritas {where}")
                continue
            detail = ", ".join(f"{n} {label}" for n, label in (
                (c[CREATE_USER], "usuário(s) criado(s)"), (c[CREATE], "criada(s)"),
                (c[UPDATE] + c[SET_CREATED_BY], "atualizada(s)"), (c[RENEW], "renovada(s)"),
                (c[BLOCK], "bloqueada(s)"), (c[ACTIVATE], "ativada(s)"), (c[DELETE], "excluída(s)")) if n)
            parts.append(f"{plural(total, 'escrita ' + verb, 'escritas ' + verb + 's')} {where} ({detail})")
        parity = outcome.parity
        parity_text = "paridade não conferida" if parity is None else f"paridade {parity.equal}/{parity.total}"
        problems = [plural(len(outcome.failures), "falha")]
        if outcome.interrupted:
            problems.insert(0, f"interrompida ({plural(len(outcome.not_run), 'escrita')} por fazer)")
        if outcome.open_conflicts:
            problems.append(plural(len(outcome.open_conflicts), "conflito"))
        if outcome.leftover:
            problems.append(f"{plural(len(outcome.leftover), 'escrita')} não guardada(s) pelo servidor")
        label = (f"principal {d.primary.url} ← backup {d.backup.url}" if d.restore else d.backup.url)
        total_writes = outcome.write_total(Role.PRIMARY) + outcome.write_total(Role.BACKUP)
        return (
            f"   {icon} {label}: {total_writes} mudança(s) {'planejadas' if self.simulate else 'aplicadas'} — "
            + "; ".join(parts) + f"; {', '.join(problems)}, {parity_text}, "
            f"{plural(len(outcome.divergences), 'divergência não sincronizável', 'divergências não sincronizáveis')}"
        )


# ============================================================================
# Execução: conecta, lê, planeja, aplica e confere um par de cada vez (Run); o código de saída de
# cada par sai de pair_verdict, e o texto/JSON são renderizações do resultado tipado
# ============================================================================

def parallel_map(func: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """Roda func em cada item em paralelo; devolve o resultado ou a exceção, na ordem dos itens."""
    items = list(items)

    def safe(item):
        try:
            return func(item)
        except Exception as exc:  # devolvida ao chamador, que decide o que fazer
            return exc

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(items)))
    try:
        results = list(pool.map(safe, items))
    except BaseException:  # Ctrl+C/SIGTERM nas leituras: não espera o pedido em andamento (até SYNC_TIMEOUT)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def _connect(client: ApiClient) -> None:
    client.wake()
    client.login()


def _is_fatal(exc: BaseException) -> bool:
    """Falhas que param a execução inteira antes de tudo: configuração (senha, conta, URL que não é a
    API, certificado TLS recusado ou http/https trocados) e nome de servidor que não resolve. Host lento
    ou fora do ar não: os outros pares seguem."""
    return isinstance(exc, (AuthError, HostNotFound, TlsError))


def connect_servers(config: Config) -> list[tuple[ServerConfig, BaseException]]:
    """Acorda e faz login em todos os servidores, em paralelo, antes da execução. Devolve as falhas
    fatais (na ordem da configuração); o resto (token, espera, ou a falha) fica para os clientes da
    execução (RunContext.handoff), que não repetem /health nem o login. Na primeira falha fatal, as
    esperas dos outros servidores são interrompidas."""
    servers = [config.primary] + config.backups
    clients = [ApiClient(server, config) for server in servers]
    run_context().handoff.clear()
    fatal: dict[str, BaseException] = {}
    try:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(clients))
        futures = {pool.submit(_connect, client): client for client in clients}
        try:
            for future in concurrent.futures.as_completed(futures):
                client, exc = futures[future], future.exception()
                run_context().handoff[client._handoff_key()] = exc if exc is not None else (
                    client.token, client.role, client.waited_seconds)
                if exc is not None and _is_fatal(exc):
                    fatal[client.server.url] = exc
                    for other in clients:
                        other.cancel.set()
        except BaseException:  # Ctrl+C/SIGTERM na espera: as esperas param já, e o pedido em andamento não é
            for client in clients:  # esperado (nada foi gravado: main sai sem esperar a thread dele)
                client.cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
    finally:
        for client in clients:
            client.close()
    if fatal:
        run_context().handoff.clear()
    return [(server, fatal[server.url]) for server in servers if server.url in fatal]


class SafetyStop(Exception):
    """Um par recusado por uma trava de segurança antes de qualquer escrita (o texto diz qual)."""


def error_exit_code(exc: BaseException, connecting: bool = True) -> ExitCode:
    """A ÚNICA tradução de exceção em código (o desfecho que ela vira; quem junta os desfechos é
    run_exit_code). Credenciais, conta sem papel admin, URL que não é a API (ServerMismatch), TLS (TlsError),
    configuração e opção inválida: 2; trava de segurança: 5; outra execução com a trava: 3; Ctrl+C/SIGTERM:
    130/143. O resto: 4 ao conectar e ler (`connecting`), senão 1 (erro de arquivo ou inesperado: a
    sincronização não terminou)."""
    if isinstance(exc, Interrupted):
        return ExitCode(exc.code)  # type: ignore[call-arg]  # busca pelo valor: python/mypy#10573
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    if isinstance(exc, SystemExit):  # o argparse: --help/--version (0) ou uso errado
        return ExitCode.CONFIG if exc.code else ExitCode.OK
    if isinstance(exc, LockBusy):
        return ExitCode.BUSY
    if isinstance(exc, SafetyStop):
        return ExitCode.SAFETY
    if isinstance(exc, (AuthError, ServerMismatch, ConfigError, TlsError, OptionError)):
        return ExitCode.CONFIG
    return ExitCode.SERVER if connecting or isinstance(exc, ApiError) else ExitCode.FAILURES


def report_connection_errors(config: Config, errors: list[tuple[ServerConfig, BaseException]],
                             outcome: RunOutcome) -> int:
    """Uma linha por servidor com problema (a primeira já diz o que fazer) e uma dica se couber; o código
    e os pares do --json vêm do RunOutcome (o mesmo do histórico): 2 (configuração, TLS) ou 4 (nome que
    não resolve). No --json, o documento traz também "principal" e "backups" (situacao "erro") como o de
    uma execução, para quem já lê esses campos."""
    code = ExitCode(outcome.code)  # type: ignore[call-arg]  # busca pelo valor: python/mypy#10573
    lines = [("" if i == 0 else "❌ ") + _error_text(exc) for i, (_, exc) in enumerate(errors)]
    refused = [server for server, exc in errors if isinstance(exc, AuthError) and getattr(exc, "status", None) == 401]
    if refused:
        names = " ou ".join(sorted({"PRINCIPAL_ADMIN_PASSWORD" if s.role == Role.PRIMARY else "BACKUP_ADMIN_PASSWORD"
                                    for s in refused}))
        lines.append(f"   Dica: a senha vem de ADMIN_PASSWORD (ou {names}, que vale só para esse lado). "
                     "Se um servidor reiniciou e voltou vazio, nele só existe o administrador de fábrica "
                     "'admin': configure a senha dele para esse servidor.")
    lines.append("   Nada foi sincronizado nem gravado nos servidores"
                 + ("." if config.simulate else " (a falha fica no histórico e no painel)."))
    backups = [{"backup": p.direction.backup.url, "situacao": p.status, "codigo_saida": p.code, "erro": p.error}
               for p in outcome.pairs]
    return fail(lines, code, meaning=outcome.meaning,
                servidores=[{"papel": s.role, "url": s.url, "erro": _error_text(exc)} for s, exc in errors],
                principal={"url": outcome.primary_url, "erro": outcome.primary_error}, backups=backups)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return mask(exc)
    return mask(f"erro inesperado ({exc.__class__.__name__}): {exc}")


def _duration_text(delta: dt.timedelta) -> str:
    """"2 dias e 3 h", "3 h e 12 min", "7 min"."""
    minutes = int(delta.total_seconds() // 60)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return plural(days, "dia") + (f" e {hours} h" if hours else "")
    return f"{hours} h e {minutes} min" if hours else f"{minutes} min"


def _utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%d/%m/%Y %H:%M")


def directions(config: Config) -> list[Direction]:
    """Os pares da execução, com os papéis reais; restaurar usa um par só (backup escolhido → principal)."""
    if config.mode != Mode.RESTORE:
        return [Direction(config.primary, backup) for backup in config.backups]
    chosen = config.restore_from or config.backups[0].url
    source = next((b for b in config.backups if b.url == chosen), None)
    if source is None:
        raise ConfigError(f"--de {chosen} não é um dos backups configurados em SERVIDOR_BACKUP.")
    return [Direction(config.primary, source, restore=True)]


@dataclasses.dataclass
class RunOutcome:
    """Uma execução inteira: os pares e o que deu errado fora deles (arquivos locais)."""
    run_id: str
    started: str
    mode: Mode
    clock: Clock
    pairs: list[PairOutcome]
    primary_url: str
    primary_error: str | None
    primary_counts: tuple[int, int] | None  # (usuários, licenças) lidos do principal
    primary_waited_s: float
    credentials_file: str | None
    ended: str = ""
    duration_s: float = 0.0
    warnings: list[str] = dataclasses.field(default_factory=list)
    failover: FailoverReport | None = None
    check: bool = False
    stopped_code: int = ExitCode.OK  # parada antes dos pares: configuração sem pares legíveis, erros no login
    recorded: bool = True  # False: não há linha no histórico (o painel mostra o ultima_execucao.json)
    notes: list[str] = dataclasses.field(default_factory=list)  # avisos que não mudam o código (relógio do PC)

    @property
    def interrupted(self) -> ExitCode | None:
        # ExitCode(x) é a busca pelo valor, não o __new__ da tabela (python/mypy#10573)
        return next((ExitCode(p.interrupted) for p in self.pairs if p.interrupted), None)  # type: ignore[call-arg]

    @property
    def sync_code(self) -> ExitCode:
        if self.interrupted:
            return self.interrupted
        return run_exit_code([*(p.code for p in self.pairs), self.stopped_code], problems=bool(self.warnings))

    @property
    def code(self) -> ExitCode:
        """O código da execução: o pior dos pares; no verificar, a rota de falha também conta."""
        return failover_check_code(self.failover, self.check, self.sync_code)

    @property
    def meaning(self) -> str:
        code = self.code
        if code != self.sync_code:
            return FAILOVER_CHECK_MEANING
        return code.check_meaning if self.check else code.meaning


def run_json(run: RunOutcome, simulate: bool, check: bool, limit: int | None = JSON_LIST_LIMIT) -> dict[str, Any]:
    """O documento do --json; `limit`: itens por lista (None = --json-completo)."""
    code, meaning = run.code, run.meaning
    return {
        "versao": 1, "ferramenta": f"sincronizar_bancos {VERSAO}", "execucao": run.run_id,
        "inicio": run.started, "fim": run.ended, "duracao_s": run.duration_s,
        "modo": Mode.CHECK if check else run.mode, "simulacao": simulate,
        "hoje": run.clock.utc.isoformat(), "codigo_saida": code, "significado": meaning,
        "avisos": run.warnings + run.notes,
        "principal": {"url": run.primary_url,
                      "usuarios": run.primary_counts[0] if run.primary_counts else None,
                      "licencas": run.primary_counts[1] if run.primary_counts else None,
                      "espera_despertar_s": round(run.primary_waited_s, 1), "erro": run.primary_error},
        "limite_listas": limit,
        "backups": [bound_lists(pair_json(p, simulate), limit) for p in run.pairs],
        "arquivo_credenciais": run.credentials_file,
        "rota_de_falha": failover_json(run.failover),
    }


def last_run_json(run: RunOutcome) -> dict[str, Any]:
    """ultima_execucao.json: o resumo que o agendador e os monitores leem."""
    servers = [{"papel": Role.PRIMARY, "url": run.primary_url, "ok": run.primary_error is None,
                "erro": run.primary_error}]
    for pair in run.pairs:
        d = pair.direction
        failures = len(pair.failures) + len(pair.leftover)
        error = pair_error_text(pair) \
            or (f"{plural(failures, 'escrita')} com falha" if failures else None) \
            or ("; ".join(pair.warnings) if pair.warnings else None)
        servers.append({"papel": Role.BACKUP, "url": d.backup.url, "ok": pair.status == PairStatus.OK, "erro": error,
                        "escritas": {"principal": pair.write_total(Role.PRIMARY),
                                     "backup": pair.write_total(Role.BACKUP)}})
    return {"versao": 1, "inicio": run.started, "fim": run.ended, "codigo_saida": run.code,
            "mensagem": run.code.meaning, "avisos": run.warnings + run.notes, "servidores": servers,
            "registrada_no_historico": run.recorded}


@dataclasses.dataclass(frozen=True)
class LastRunServer:
    """Um servidor do ultima_execucao.json, tipado (read_last_run)."""
    role: str
    url: str
    ok: bool
    error: str | None


@dataclasses.dataclass(frozen=True)
class LastRun:
    """O ultima_execucao.json lido de volta (read_last_run): o que o painel, o /status.json e o
    sincronizar_automatico.py usam dele. Um campo ausente ou de outro tipo vem None (ou vazio)."""
    started: str | None
    ended: str | None
    code: int | None
    message: str | None
    servers: tuple[LastRunServer, ...]
    recorded: bool | None  # registrada_no_historico (False: só este arquivo conta a execução)

    @property
    def first_error(self) -> str | None:
        return next((s.error for s in self.servers if s.error), None)


def read_last_run(path: str | os.PathLike[str]) -> LastRun | None:
    """A ÚNICA leitura do ultima_execucao.json (last_run_json o escreve): None se não existe ou não é um
    objeto JSON. Nenhuma decisão lê as chaves do arquivo: todas leem o LastRun."""
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict):
        return None

    def text(value: Any) -> str | None:
        return value if isinstance(value, str) else None

    servers = tuple(
        LastRunServer(role=text(item.get("papel")) or "", url=text(item.get("url")) or "", ok=item.get("ok") is True,
                      error=None if item.get("erro") in (None, "") else str(item.get("erro")))
        for item in stored_objects(doc.get("servidores")))
    code = doc.get("codigo_saida")
    recorded = doc.get("registrada_no_historico")
    return LastRun(started=text(doc.get("inicio")), ended=text(doc.get("fim")),
                   code=code if isinstance(code, int) and not isinstance(code, bool) else None,
                   message=text(doc.get("mensagem")), servers=servers,
                   recorded=recorded if isinstance(recorded, bool) else None)


def users_present(source: Snapshot, target: Snapshot) -> int:
    """Usuários da origem que o destino tem (mesmo os que a listagem dele trouxe com problema)."""
    listed = set(target.users) | {p.key for p in target.problems if p.kind == RecordKind.USER}
    return len(set(source.users) & listed)


MAX_EXTRA_ROUNDS = 2  # rodadas extras da releitura final para o que mudou nos servidores durante a execução


def changed_during_run(before: Snapshot, after: Snapshot, written: set[str]) -> set[tuple[RecordKind, str]]:
    """Registros de um lado que mudaram entre duas leituras sem que esta execução tenha escrito neles nesse
    intervalo (`written`: as chaves em que ela escreveu nesse lado): o vendedor (ou outro programa) mexeu."""
    keys = set(before.licenses) | set(after.licenses) | set(before.rejected) | set(after.rejected)
    licenses = {k for k in keys - written if before.licenses.get(k) != after.licenses.get(k)
                or (k in before.rejected) != (k in after.rejected) or before.rejected.get(k) != after.rejected.get(k)}
    users = {u for u in (set(before.users) | set(after.users)) - written if before.users.get(u) != after.users.get(u)}
    return {(RecordKind.LICENSE, k) for k in licenses} | {(RecordKind.USER, u) for u in users}


def moved_by(action: Action, moved: dict[Side, set[tuple[RecordKind, str]]]) -> list[Side]:
    """Os lados (do plano) cuja mudança durante a execução (changed_during_run) pede esta ação."""
    kind = RecordKind.USER if action.kind == CREATE_USER else RecordKind.LICENSE
    return [side for side in Side if (kind, action.key) in moved[side]]


def still_moving_text(outcome: PairOutcome, roles: list[Role], date_moved: bool) -> str:
    """O aviso do que ainda mudava depois da última rodada extra permitida (as chaves, e o que fazer)."""
    who = (f"o {roles[0]} continuou mudando" if len(roles) == 1 else
           "o principal e o backup continuaram mudando" if roles else
           "a data mudou de novo" if date_moved else "os servidores continuaram mudando")
    rounds = plural(outcome.extra_rounds, "rodada extra", "rodadas extras")
    left = plural(len(outcome.still_moving), "registro ainda diferente", "registros ainda diferentes")
    return (f"{who} durante a execução: {left} depois de {rounds} ({sample(outcome.still_moving)}); a próxima "
            "execução continua de onde parou.")


def new_passwords(plan: Plan, results: list[Result], again: Plan) -> list[Divergence]:
    """As senhas dos usuários que esta execução criou: a releitura não as vê (a API não expõe senhas), mas a
    diferença existe de fato (uma senha nova foi gerada). Sem isso, a execução contaria menos divergências
    que a simulação do mesmo plano."""
    created = {r.action.key for r in results if r.ok and r.action.kind == CREATE_USER}
    known = set(again.divergences)
    return [item for item in plan.divergences
            if item[0] == RecordKind.USER and item[2] == "senha" and item[1] in created and item not in known]


def exposed_passwords(config: Config, snapshots: Iterable[Snapshot]) -> list[str]:
    """Senha de administrador que outros veem: igual ao nome de usuário configurado, ou ao nome de um usuário
    (revendedor) que a API lista. O nome continua mascarado (ele É a senha: mostrá-lo a poria no log e no
    histórico); o aviso não diz qual é, só o que aconteceu e o que fazer. É um problema a resolver (código 1)."""
    names = {name for snap in snapshots for name in snap.users}
    warnings: list[str] = []
    for server in [config.primary, *config.backups]:
        where = f"do servidor {server.role.title.lower()} ({server.url})"
        if server.password == server.username:
            text = (f"a senha de administrador {where} é igual ao nome de usuário: quem vê o nome sabe a senha. "
                    "Troque a senha no painel do servidor e no .env")
        elif server.password in names:
            text = (f"a senha de administrador {where} é igual ao nome de um usuário (revendedor) listado pela "
                    "API: quem vê a lista de usuários sabe a senha, e esse nome aparece como *** nos relatórios. "
                    "Troque a senha no painel do servidor e no .env")
        else:
            continue
        if text not in warnings:
            warnings.append(text)
    return warnings


def date_moved_text(before: Clock, after: Clock) -> str:
    """A linha da data que mudou: as datas esperadas (fuso configurado), ou, quando elas são as mesmas, a virada
    de dia num dos fusos possíveis (de UTC−12 a UTC+14; veja Clock), que também muda o que se pode afirmar."""
    if (before.primary, before.backup) == (after.primary, after.backup):
        return ("A data virou em algum fuso possível dos servidores durante a execução (a margem de fusos de "
                "UTC−12 a UTC+14 mudou)")
    return (f"A data mudou durante a execução ({before.primary} → {after.primary} no principal, "
            f"{before.backup} → {after.backup} no backup)")


class Run:
    """Conduz uma execução: conecta, lê, planeja, aplica, confere. Os textos vêm do TextReport."""

    def __init__(self, config: Config, rep: Reporter):
        self.config = config
        self.rep = rep
        self.text = TextReport(rep, config.simulate, config.check, config.force)
        self.run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        self.started = now_iso()
        self._fixed_now = config.now.astimezone(dt.timezone.utc) if config.now else None  # --agora (testes)
        self.clock_start = time.monotonic()
        self.directions = directions(config)
        servers = [config.primary] + [d.backup for d in self.directions]
        self.clients = {s.url: ApiClient(s, config) for s in servers}
        self.errors: dict[str, BaseException] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.record = RunRecord(None if config.simulate else config.data_dir, self.guard_local)
        self.credentials: CredentialStore | None = None
        self.warnings: list[str] = []
        self.notes: list[str] = []  # avisos que não mudam o código de saída (relógio do PC)
        self.failover: FailoverReport | None = None  # rota de falha
        self.stopped: BaseException | None = None  # parada antes dos pares: vale para todo par sem erro próprio

    @property
    def history(self) -> "History | HistoryAside | None":
        """O histórico aberto desta execução (guardado no registro dela, RunRecord)."""
        return self.record.history

    @history.setter
    def history(self, value: "History | HistoryAside | None") -> None:
        self.record.history = value

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        if self.history:
            self.guard_local("fechar o histórico", self.history.close)

    def guard_local(self, what: str, func: Callable[..., Any], *args: Any) -> Any:
        """Arquivos locais (histórico, estado, diário) nunca interrompem uma sequência nos servidores:
        uma falha vira aviso e a execução termina com código diferente de zero."""
        try:
            return func(*args)
        except (OSError, sqlite3.Error) as exc:
            message = mask(f"não foi possível {what} em {self.config.data_dir}: "
                                   f"{exc.__class__.__name__}: {exc}")
            if message not in self.warnings:  # a mesma falha a cada escrita vira um aviso só
                self.warnings.append(message)
                self.rep.warn(f"   ⚠️  {message}")
            return None

    @property
    def now(self) -> dt.datetime:
        """O instante da execução: o --agora (testes) ou a hora dos servidores agora (instant())."""
        return self._fixed_now or self.instant()

    def server_now(self, url: str, *fallback: str) -> dt.datetime:
        """A hora UTC do servidor `url` pelo relógio dele (cabeçalho Date); sem nenhuma leitura dele, a dos
        servidores `fallback` (o outro lado do par), depois a de qualquer servidor e, por último, a do PC."""
        others = [c.server.url for c in self.clients.values()]
        for candidate in (url, *fallback, *others):
            client = self.clients.get(candidate)
            moment = client.clock.now() if client else None
            if moment is not None:
                return moment
        return dt.datetime.now(dt.timezone.utc)

    def instant(self) -> dt.datetime:
        """Agora: a hora dos servidores (a do principal; sem ela, a de um backup; sem nenhuma, a do PC), ou o
        --agora mais o tempo que esta execução já levou (assim uma execução que atravessa a meia-noite também a
        atravessa com --agora). Nunca o relógio de parede do PC quando algum servidor respondeu."""
        if self._fixed_now:
            return self._fixed_now + dt.timedelta(seconds=time.monotonic() - self.clock_start)
        return self.server_now(self.config.primary.url)

    def clock_for(self, direction: Direction, moment: dt.datetime | None = None) -> Clock:
        """As datas do par no instante `moment` (padrão: agora) da execução: o lado de origem pelo relógio do
        servidor de origem, o de destino pelo do destino (sem Date de um, o do outro), com a margem de fusos
        (Clock.at). --hoje fixa as datas (sem margem); --agora fixa o instante dos dois."""
        if self.config.today:
            return Clock.of(self.config.today)
        source, target = direction.source, direction.target
        if self._fixed_now:
            moment = moment or self.now
            return Clock.at(moment, moment, source.time_zone, target.time_zone)
        reference = self.instant()
        moment = moment or reference
        return Clock.at(moment + (self.server_now(source.url, target.url) - reference),
                        moment + (self.server_now(target.url, source.url) - reference),
                        source.time_zone, target.time_zone)

    PC_CLOCK_TOLERANCE = dt.timedelta(minutes=5)

    def check_pc_clock(self) -> None:
        """Compara o relógio do PC com o dos servidores (uma vez, depois das leituras). Mais de 5 minutos de
        diferença viram um aviso (texto e --json), que nunca muda veredito nem código de saída: as datas vêm
        dos servidores."""
        pc = dt.datetime.now(dt.timezone.utc)
        readings = [(c.server, c.clock.now()) for c in self.clients.values()]
        off = [(server, moment - pc) for server, moment in readings
               if moment is not None and abs(moment - pc) > self.PC_CLOCK_TOLERANCE]
        if not off or self.notes:
            return
        server, delta = max(off, key=lambda item: abs(item[1]))
        note = (f"o relógio deste computador está {_duration_text(abs(delta))} "
                f"{'atrasado' if delta > dt.timedelta(0) else 'adiantado'} em relação ao do servidor "
                f"{server.label} ({_utc_text(pc + delta)} UTC no servidor, {_utc_text(pc)} UTC no PC). As datas das "
                "licenças (vencimento, renovação e conferência) seguem o relógio dos servidores, não o do PC; "
                "acerte a data e a hora deste computador (os horários do histórico e do painel usam o relógio dele)")
        self.notes.append(mask(note))  # sai uma vez, no resumo (texto) e em "avisos" (--json)

    # -- fases -------------------------------------------------------------
    def header(self) -> None:
        rep, cfg = self.rep, self.config
        rep.say(SEP)
        rep.say("🔄 SISTEMA DE SINCRONIZAÇÃO DE BANCO DE DADOS")
        rep.say(SEP)
        rep.say(f"Principal: {cfg.primary.url}")
        for d in self.directions:
            rep.say(f"Backup: {d.backup.url}")
        rep.say(SEP)
        if cfg.check:
            rep.say("🔎 VERIFICAÇÃO: só compara os servidores; nada será gravado.")
        elif cfg.simulate:
            rep.say("🧪 SIMULAÇÃO: o plano será mostrado e nada será gravado.")
        rep.say("")
        several = "s" if len(self.directions) > 1 else ""
        if cfg.mode == Mode.RESTORE:
            rep.say(f"♻️  Restaurando o principal a partir do backup: Backup ({self.directions[0].backup.url}) "
                    "→ Principal")
        elif cfg.mode == Mode.TWO_WAY:
            rep.say(f"🔄 Sincronizando banco de dados nos dois sentidos: Principal ⇄ Backup{several} "
                    f"(conflitos: {cfg.conflict})")
        elif not cfg.check:
            rep.say(f"🔄 Sincronizando banco de dados: Principal → Backup{several}"
                    + (" (espelhando: exclusões no backup)" if cfg.mirror else ""))
        rep.say("")

    def connect_all(self) -> None:
        self.rep.say("🔐 Fazendo login nos servidores...")
        clients = list(self.clients.values())
        for client, outcome in zip(clients, parallel_map(_connect, clients), strict=True):
            name = client.server.role.title
            if isinstance(outcome, BaseException):
                self.errors[client.server.url] = outcome
                self.rep.say(f"   ❌ {name}: {_error_text(outcome)}")
                continue
            waited = (f" (aguardou {client.waited_seconds:.0f} s o servidor acordar)"
                      if client.waited_seconds >= 2 else "")
            self.rep.say(f"   {name}: {client.server.url}{waited}")
        if not self.errors:
            self.rep.say("✅ Login realizado em "
                         + ("ambos os servidores!" if len(clients) == 2 else "todos os servidores!"))
        self.rep.say("")

    def fetch_all(self) -> None:
        ready = [c for c in self.clients.values() if c.server.url not in self.errors]
        finish_failover = start_failover_check(self.config, ready)  # rota de falha
        for client, outcome in zip(ready, parallel_map(fetch_snapshot, ready), strict=True):
            if isinstance(outcome, BaseException):
                self.errors[client.server.url] = outcome
            else:
                self.snapshots[client.server.url] = outcome
        check_distinct_servers([c for c in ready if c.server.url in self.snapshots])  # helper-cli: same-server check
        self.failover = finish_failover()  # rota de falha
        for client in ready:
            self._report_fetch(client)
        self.check_pc_clock()
        for warning in exposed_passwords(self.config, self.snapshots.values()):
            self.warnings.append(warning)
            self.rep.warn(f"   ⚠️  {warning}")

    def _report_fetch(self, client: ApiClient) -> None:
        where = "principal" if client.server.role == Role.PRIMARY else f"backup ({client.server.url})"
        self.rep.say(f"📥 Buscando dados do servidor {where}...")
        snap = self.snapshots.get(client.server.url)
        if snap is None:
            self.rep.say(f"   ❌ {_error_text(self.errors[client.server.url])}")
        else:
            self.rep.say(f"   ✅ {plural(len(snap.users), 'usuário encontrado', 'usuários encontrados')}")
            self.rep.say(f"   ✅ {plural(snap.license_count, 'licença encontrada', 'licenças encontradas')}")
            for problem in snap.problems[:MAX_LINES]:
                what = "Licença" if problem.kind == RecordKind.LICENSE else "Usuário"
                self.rep.warn(f"   ⚠️  {what} {problem.key!r} fora da sincronização: {problem.text}")
            if len(snap.problems) > MAX_LINES:
                self.rep.warn(f"   … e mais {len(snap.problems) - MAX_LINES}")
        self.rep.say("")

    def sync_pair(self, direction: Direction) -> PairOutcome:
        outcome = PairOutcome(direction, started=now_iso(), clock=self.clock_for(direction))
        clock = time.monotonic()
        error = self.errors.get(direction.source.url) or self.errors.get(direction.target.url) or self.stopped
        if error is not None:  # a falha veio antes do par (espera, login, leitura): ele durou desde o início
            outcome.started, clock = self.started, self.clock_start
        if len(self.directions) > 1:
            self.rep.say(f"🔄 Principal → Backup {direction.backup.url}")
        self.record.start(outcome, self.run_id, self.config.mode)
        if error is not None:
            outcome.error, outcome.error_code = _error_text(error), error_exit_code(error)
        else:
            try:
                with stop_signals().interruptible():  # leituras e planejamento param na hora; as escritas, não
                    self.plan_and_apply(outcome)
            except Interrupted:
                pass  # o que foi feito até aqui está em outcome
            except (ConfigError, SafetyStop) as exc:  # par recusado antes de qualquer escrita (os outros seguem)
                outcome.error, outcome.error_code = str(exc), error_exit_code(exc)
        if stop_signals().requested:
            self.mark_interrupted(outcome)
        outcome.code, outcome.status = pair_verdict(outcome, self.config.check)
        outcome.ended, outcome.duration_s = now_iso(), round(time.monotonic() - clock, 3)
        self.text.pair(outcome)
        self.record.finish(outcome, self.failover)  # já agora: um kill -9 no próximo par não apaga este
        return outcome

    def mark_interrupted(self, outcome: PairOutcome) -> None:
        """Ctrl+C ou SIGTERM durante o par: valem só as escritas que os servidores confirmaram."""
        outcome.interrupted = stop_signals().code
        if outcome.results is None:  # nada foi escrito neste par (o plano não é "feito")
            outcome.results = []
        elif not outcome.reread:  # escritas feitas e paridade não conferida depois delas
            outcome.parity = None

    def skipped_pair(self, direction: Direction) -> PairOutcome:
        """Backup que ficou para depois porque a execução foi interrompida antes dele."""
        outcome = PairOutcome(direction, started=now_iso(), clock=self.clock_for(direction))
        outcome.error = "não sincronizado: a execução foi interrompida antes deste backup"
        outcome.interrupted = stop_signals().code
        outcome.code, outcome.status = pair_verdict(outcome, self.config.check)
        outcome.ended = now_iso()
        self.text.pair(outcome)
        return outcome

    def plan_options(self, direction: Direction) -> PlanOptions:
        cfg = self.config
        return PlanOptions(mode=Mode.TWO_WAY if cfg.mode == Mode.TWO_WAY else Mode.ONE_WAY,
                           conflict=cfg.conflict, mirror=cfg.mirror, max_deletions=cfg.max_deletions,
                           force=cfg.force, only_missing=direction.restore and not cfg.force,
                           protect_target=not direction.restore, block_backup_only=cfg.block_backup_only,
                           role_of=direction.role_of)

    def plan_and_apply(self, outcome: PairOutcome) -> None:
        cfg, d = self.config, outcome.direction
        assert outcome.clock is not None  # o Run cria o resultado do par já com o relógio (clock_for)
        source, target = self.snapshots[d.source.url], self.snapshots[d.target.url]
        outcome.waited_s = self.clients[d.backup.url].waited_seconds
        if d.restore and not source.license_count and not source.users:
            raise SafetyStop(f"o backup de origem {d.source.url} também está vazio: nada a restaurar")
        state, warning = load_state(cfg.data_dir, d.primary.url, d.backup.url, set_aside=not cfg.simulate)
        if state is None and warning is None and d.backup.url not in cfg.accept_unknown:
            found = foreign_backup(self.snapshots[d.primary.url], self.snapshots[d.backup.url],
                                   into_primary=d.restore or cfg.mode == Mode.TWO_WAY)
            if found:  # servidor de outro vendedor: recusado antes de qualquer escrita (os outros pares seguem)
                raise ConfigError(mask(foreign_backup_error(found, d)))
        if warning:  # arquivo nosso danificado: a execução segue sem ele, e o par termina com código 1
            outcome.warnings.append(mask(warning))
        options = self.plan_options(d)
        if not d.restore:  # bidirecional: termina cadeias cortadas; nos dois: o que ficou liberado vai primeiro
            options.journal, warning = load_journal_checked(cfg.data_dir, d.primary.url, d.backup.url,
                                                            set_aside=not cfg.simulate)
            if warning:
                outcome.warnings.append(mask(warning))
        seen = (source, target)  # o que o plano lê: a base do "mudou durante a execução" (settle)
        plan, source, target = self.plan_on(d, state, options, source, target, outcome.clock)
        outcome.plan = plan
        outcome.parity_before = plan.parity_now()
        self.observe(outcome, source, target, plan)
        safety = safety_text(outcome)
        if safety and not plan.halted:  # os números aparecem antes de qualquer exclusão
            self.rep.warn(f"   🛑 {safety}")
        if cfg.simulate or plan.halted:
            if cfg.simulate and not cfg.check:  # simulação: a paridade é a prevista pelo plano
                outcome.parity = plan.parity_predicted()
            elif cfg.check and not plan.halted:
                self.settle(outcome, state, options, seen)
            return
        if not plan.actions:  # nada a escrever: o estado do par é gravado mesmo assim (é a nova base)
            with stop_signals().shielded():
                new_state = self.save_pair_files(outcome, state, source, target, [])
        else:
            outcome.results, new_state = self.execute_and_record(outcome, state, source, target)
            if stop_signals().requested:  # interrompida durante as escritas: sem releitura, registra e sai
                return
        if not stop_signals().requested:
            self.settle(outcome, new_state, options, seen)

    def settle(self, outcome: PairOutcome, state: PairState | None, options: PlanOptions,
               seen: tuple[Snapshot, Snapshot]) -> None:
        """A releitura final (a única; usada por sincronizar, bidirecional, meia-noite, restaurar e verificar).
        Acredita nos servidores, não no plano: depois da última escrita, relê os DOIS lados (2 requisições por
        servidor, em paralelo) e replaneja com as mesmas opções (plan_pair é o único que decide). O que mudou
        durante a execução (num lado, fora das escritas desta execução, ou a data) e o novo plano corrige vai
        numa rodada extra, pelo mesmo caminho da primeira (diário antes, estado e diário depois, a cada rodada),
        e os dois lados são relidos de novo; no máximo MAX_EXTRA_ROUNDS rodadas. O que ainda muda depois disso
        é nomeado num aviso (código 1). Paridade, divergências, pendências e usuários relatados são os da
        ÚLTIMA releitura. Sem escrita e na mesma data, a primeira leitura já é a final. No verificar, só compara.
        `seen`: os retratos crus (origem, destino) de que o plano da primeira rodada foi feito."""
        cfg, d = self.config, outcome.direction
        assert outcome.clock is not None  # o Run cria o resultado do par já com o relógio (clock_for)
        later = self.clock_for(d, self.instant())
        if not outcome.results and later == outcome.clock:
            return  # nada foi escrito e a data é a mesma: a primeira leitura já foi feita depois da última escrita
        written = outcome.results or []  # as escritas da rodada que acabou (não contam como "mudou")
        while True:
            date_moved = later != outcome.clock
            if date_moved:
                self.rep.say(f"   🕛 {date_moved_text(outcome.clock, later)}: relendo e conferindo na data nova")
            fresh = self.reread_pair(outcome, date_moved)
            if fresh is None:
                return
            source, target = fresh
            moved = {side: changed_during_run(before, now, {r.action.key for r in written if r.action.side == side})
                     for side, before, now in ((Side.PRIMARY, seen[0], source), (Side.BACKUP, seen[1], target))}
            again = self.replan(outcome, state, options, source, target, later)
            outcome.reread = True
            if cfg.check:  # verificar: tudo passa a ser o que se vê agora (nada é gravado)
                outcome.plan, outcome.clock = again, later
                outcome.parity = outcome.parity_before = again.parity_now()
                return
            assert outcome.plan is not None  # settle só é chamado depois do plano
            outcome.plan = plan = merge_final(outcome.plan, again)  # a releitura também decide: perda, retidas...
            failed = {r.action.key for r in outcome.failures}  # com falha: ficam no diário para a próxima execução
            moving = [a for a in again.actions if a.key not in failed and (date_moved or moved_by(a, moved))]
            chosen, in_conflict = {id(a) for a in moving}, {c.key for c in plan.conflicts}
            outcome.clock, outcome.parity = later, again.parity_now()
            outcome.divergences = [*again.divergences, *new_passwords(plan, outcome.results or [], again)]
            outcome.leftover = [a for a in again.actions  # o que foi escrito e o servidor não guardou
                                if id(a) not in chosen and a.key not in failed | in_conflict]
            outcome.users_total, outcome.users_present = len(source.users), users_present(source, target)
            if not moving or again.halted or stop_signals().requested or outcome.extra_rounds >= MAX_EXTRA_ROUNDS:
                if moving and not again.halted and not stop_signals().requested:
                    outcome.still_moving = sorted({a.key for a in moving})
                    outcome.warnings.append(still_moving_text(outcome, sorted(
                        {d.role_of(side) for a in moving for side in moved_by(a, moved)}), date_moved))
                return
            # rodada extra: só o que mudou; o resto fica como pendência (não é apagado do estado como feito)
            left = {a.key for a in outcome.leftover}
            extra = dataclasses.replace(
                again, user_actions=tuple(a for a in again.user_actions if id(a) in chosen),
                license_chains=tuple(c for c in again.license_chains if id(c[0]) in chosen),
                deletions=tuple(a for a in again.deletions if id(a) in chosen),
                expected=types.MappingProxyType({k: v for k, v in again.expected.items() if k not in left}))
            round_outcome = PairOutcome(d, started=outcome.started, clock=later, plan=extra)
            carried = {} if d.restore else self.guard_local(
                "ler o diário do par", load_journal, cfg.data_dir, d.primary.url, d.backup.url) or {}
            outcome.reread, outcome.parity = False, None  # as escritas vêm depois desta releitura
            written, state = self.execute_and_record(round_outcome, state, source, target, carried)
            outcome.results = (outcome.results or []) + written
            outcome.not_run += round_outcome.not_run
            outcome.warnings += round_outcome.warnings
            # os que a releitura do principal achou (recheck_primary)
            outcome.plan = plan = merge_conflicts(plan, (round_outcome.plan or extra).conflicts)
            outcome.extra_rounds += 1
            outcome.extra_writes += sum(1 for r in written if r.ok and not r.unsyncable)
            for who in [*(d.role_of(side) for a in moving for side in moved_by(a, moved)),
                        *(["data"] if date_moved else [])]:
                if who not in outcome.moved:
                    outcome.moved.append(who)
            seen = fresh
            if stop_signals().requested:  # interrompida durante a rodada extra: sem releitura (paridade não conferida)
                return
            later = self.clock_for(d, self.instant())

    def reread_pair(self, outcome: PairOutcome, date_moved: bool) -> tuple[Snapshot, Snapshot] | None:
        """Relê os dois lados do par em paralelo (usuários e licenças: 2 requisições por servidor). Uma falha
        vira "paridade não conferida" (None)."""
        d = outcome.direction
        servers = (d.source, d.target)
        answers = parallel_map(fetch_snapshot, [self.clients[s.url] for s in servers])
        for server, answer in zip(servers, answers, strict=True):
            if isinstance(answer, BaseException):
                outcome.parity, outcome.reread = None, False
                why = "a data mudou durante a execução e " if date_moved else ""
                outcome.warnings.append(f"{why}não foi possível reler {server.url} para conferir: "
                                        f"{_error_text(answer)}")
                return None
        for server, answer in zip(servers, answers, strict=True):
            self.snapshots[server.url] = answer
        return answers[0], answers[1]

    def plan_on(self, d: Direction, state: PairState | None, options: PlanOptions, source: Snapshot,
                target: Snapshot, clock: Clock) -> tuple[Plan, Snapshot, Snapshot]:
        """O único caminho até o planejador (primeira rodada e releituras): os limites do backup (learn_limits:
        o que ele não consegue guardar não é regravado) e plan_pair, com o estado como o plano o vê (em
        restaurar, com os lados trocados: a origem é o backup). Devolve o plano e os retratos que ele leu."""
        limits: list[Divergence] = []
        if not d.restore:
            source, target, limits, options = self.learn_limits(d, source, target, clock, options)
        with collector_paused():
            plan = plan_pair(source, target, clock, swap_state(state) if d.restore and state else state,
                             options, limits)
        return plan, source, target

    def replan(self, outcome: PairOutcome, state: PairState | None, options: PlanOptions, source: Snapshot,
               target: Snapshot, clock: Clock) -> Plan:
        """O plano sobre uma releitura, com as mesmas opções da primeira rodada (o diário da execução anterior
        já foi usado por ela)."""
        return self.plan_on(outcome.direction, state, dataclasses.replace(options, journal=None), source, target,
                            clock)[0]

    def learn_limits(self, d: Direction, source: Snapshot, target: Snapshot, clock: Clock,
                     options: PlanOptions) -> tuple[Snapshot, Snapshot, list[Divergence], PlanOptions]:
        """backup_limits (a sonda da rota de created_by, um GET, só quando há sinal de servidor antigo) e, num
        backup MySQL, os grupos de ids que ele guarda como um só (collation_groups; no bidirecional, os ids
        dos grupos vão em one_way_keys das opções devolvidas: só vão do principal para o backup). O que devolve
        é a entrada de plan_pair (retratos, divergências aprendidas e opções); `options` não muda."""
        drops = False
        client = self.clients[d.target.url]
        if might_drop_created_by(source, target):
            drops = has_route(client, SET_CREATED_BY) is False
        groups: list[Divergence] = []
        raw = client.listings.get("/admin/devices")
        # backup vazio: não dá para saber se é MySQL; por segurança, como se fosse (a execução seguinte já sabe)
        if not raw or looks_mysql(raw):
            source, groups, one_way_keys = collation_groups(source, target, clock)
            options = dataclasses.replace(options, one_way_keys=one_way_keys)
        target, limits = backup_limits(source, target, drops)
        return source, target, groups + limits, options

    def observe(self, outcome: PairOutcome, source: Snapshot, target: Snapshot, plan: Plan) -> None:
        """O que os servidores têm agora, lido antes de qualquer escrita (settle refaz depois delas)."""
        outcome.parity = outcome.parity_before
        outcome.divergences = list(plan.divergences)
        outcome.users_total = len(source.users)
        outcome.users_present = users_present(source, target)
        if self.config.simulate:  # simulação: conta os que o plano criaria
            outcome.users_present += sum(1 for a in outcome.planned()
                                         if a.kind == CREATE_USER and a.side == Side.BACKUP)

    def execute_and_record(self, outcome: PairOutcome, state: PairState | None, source: Snapshot,
                           target: Snapshot, carried: dict[str, JournalEntry] | None = None
                           ) -> tuple[list[Result], PairState]:
        """Aplica o plano. Antes, grava no diário as sequências que vão começar; depois, o estado do
        par e, no diário, só as sequências que falharam (a próxima execução as termina). `carried`: o que
        uma rodada anterior desta execução deixou no diário (uma rodada extra não o apaga)."""
        assert outcome.plan is not None and outcome.clock is not None  # só chamada depois de plan_and_apply planejar
        cfg, d, plan, write_day = self.config, outcome.direction, outcome.plan, outcome.clock.utc
        with stop_signals().shielded():  # Ctrl+C/SIGTERM: as sequências no meio terminam e o estado fica certo
            journaled = False
            if not d.restore:  # antes: as sequências que vão começar (e o desfazer de cada uma)
                # `or True`: guard_local devolve None quando a gravação falhou, e save_journal devolve sempre None
                journaled = self.guard_local("gravar o diário do par", lambda: save_journal(  # type: ignore[func-returns-value]
                    cfg.data_dir, d.primary.url, d.backup.url,
                    {**(carried or {}), **journal_entries(plan, source, target, write_day)}) or True) is True
            results = self.execute(outcome, undo_journaled=journaled)
            # o que a interrupção deixou por fazer conta como não feito (fica no diário; a próxima execução faz)
            undone = [Result(a, False, "não feita: execução interrompida") for a in outcome.not_run]
            return results, self.save_pair_files(outcome, state, source, target, results + undone, carried)

    def save_pair_files(self, outcome: PairOutcome, state: PairState | None, source: Snapshot, target: Snapshot,
                        results: list[Result], carried: dict[str, JournalEntry] | None = None) -> PairState:
        """Estado do par depois da execução (a base da próxima comparação) e, no diário, só as sequências
        que falharam (a próxima execução as termina)."""
        cfg, d, plan = self.config, outcome.direction, outcome.plan
        assert plan is not None and outcome.clock is not None  # só chamada depois de plan_and_apply planejar
        if d.restore:  # no plano a origem é o backup: o estado é calculado com os lados trocados
            old = swap_state(state) if state else None
            new_state = swap_state(next_state(plan, results, old, source, target, d.backup.url, d.primary.url))
        else:
            new_state = next_state(plan, results, state, source, target, d.primary.url, d.backup.url)
            failed_keys = {r.action.key for r in results if not r.ok}
            left = {r.action.key for r in results if r.left_allowed}  # a primeira coisa da próxima execução
            planned = {id(a) for a in plan.deletions}  # as outras exclusões desfazem uma cadeia (compensate)
            undone = {r.action.key for r in results if r.action.kind == DELETE and id(r.action) not in planned}
            self.guard_local("gravar o diário do par", save_journal, cfg.data_dir, d.primary.url, d.backup.url,
                             {**(carried or {}), **journal_entries(plan, source, target, outcome.clock.utc,
                                                                   only=failed_keys, left_allowed=left,
                                                                   undone=undone)})
        self.guard_local("gravar o estado do par", save_state, cfg.data_dir, new_state)
        return new_state

    def execute(self, outcome: PairOutcome, undo_journaled: bool = False) -> list[Result]:
        """Escritas na origem (bidirecional) e depois no destino, cada lado com seu cliente. Antes de tudo, as
        cadeias urgentes do backup (uma licença que uma cadeia nossa deixou liberada lá)."""
        plan, d = outcome.plan, outcome.direction
        assert plan is not None  # só chamada com um plano a executar
        clients = {side: self.clients[d.server(side).url] for side in Side}
        executors: dict[Side, Executor] = {}
        results: list[Result] = []

        def executor_for(side: Side) -> Executor:
            if side not in executors:
                assert self.credentials is not None  # open_local_files abre o arquivo de senhas antes de escrever
                url = clients[side].server.url
                on_backup = d.role_of(side) == Role.BACKUP  # desfazer excluindo e gravar cortado: só num backup
                executors[side] = Executor(clients[side], self.credentials, self.config,
                                           on_result=functools.partial(self.audit, url),
                                           backup=on_backup, undo_journaled=undo_journaled)
            return executors[side]

        def apply(side: Side, users: list[Action], chains: Sequence[Sequence[Action]],
                  deletions: list[Action]) -> None:
            nonlocal results
            if not stop_signals().requested:
                results += executor_for(side).run(users, chains, deletions)
            done = {id(r.action) for r in results}  # uma cadeia começada (ou não enviada a um servidor antigo)
            # conta inteira: só as que a interrupção deixou sem começar ficam "por fazer"
            groups = [*([a] for a in users), *chains, *([a] for a in deletions)]
            outcome.not_run += [a for group in groups if not any(id(x) in done for x in group) for a in group]

        first = [c for c in plan.license_chains if c[0].urgent and d.role_of(c[0].side) == Role.BACKUP]
        if first:
            apply(first[0][0].side, [], first, [])
        for side in (Side.PRIMARY, Side.BACKUP):
            plan = outcome.plan  # a releitura do principal (recheck_primary) pode ter dado um plano novo
            assert plan is not None
            users = [a for a in plan.user_actions if a.side == side]
            chains: Sequence[Sequence[Action]] = [c for c in plan.license_chains
                                                  if c[0].side == side and not any(c is f for f in first)]
            deletions = [a for a in plan.deletions if a.side == side]
            if not (users or chains or deletions):
                continue
            if d.role_of(side) == Role.PRIMARY and (chains or deletions):
                chains, deletions = self.recheck_primary(outcome, side, chains, deletions)
            apply(side, users, chains, deletions)
        return results

    def recheck_primary(self, outcome: PairOutcome, side: Side, chains: Sequence[Sequence[Action]],
                        deletions: list[Action]) -> tuple[Sequence[Sequence[Action]], list[Action]]:
        """Logo antes da primeira escrita no PRINCIPAL, relê as licenças dele (1 requisição) e deixa de fora
        toda escrita planejada num registro que mudou desde a primeira leitura (o vendedor mexeu nele
        durante a execução): vira conflito e a próxima execução decide. A API não tem escrita condicional:
        sobra só o intervalo entre esta releitura e a escrita. Quem decide é o planejador (replan_after_reread)."""
        d, plan = outcome.direction, outcome.plan
        assert plan is not None and outcome.clock is not None  # chamada por execute(), com o plano do par
        server = d.server(side)
        first = self.snapshots[server.url]
        try:
            fresh, _problems, rejected = parse_licenses(self.clients[server.url].list_items("/admin/devices"))
        except Exception as exc:  # noqa: BLE001 - sem conferir, nada é escrito no principal
            outcome.warnings.append(f"nada foi escrito no principal: não foi possível relê-lo antes "
                                    f"({_error_text(exc)})")
            return [], []
        other = self.snapshots[d.server(side.other).url]
        self.snapshots[server.url] = dataclasses.replace(first, licenses=fresh, rejected=rejected)  # a releitura
        outcome.plan, chains, deletions = replan_after_reread(plan, side, first, self.snapshots[server.url], other,
                                                              outcome.clock, chains, deletions)
        return chains, deletions

    def audit(self, url: str, result: Result) -> None:
        if self.history:
            self.guard_local("gravar a auditoria", self.history.audit, self.run_id, url, result)

    def finish(self, pairs: list[PairOutcome]) -> RunOutcome:
        primary = self.snapshots.get(self.config.primary.url)
        if self.credentials and self.credentials.warning:  # arquivo de senhas danificado, guardado ao lado
            self.warnings.append(mask(self.credentials.warning))
        run = RunOutcome(
            run_id=self.run_id, started=self.started, mode=self.config.mode,
            clock=Clock.of(self.config.today or self.now.date()), pairs=pairs,
            primary_url=self.config.primary.url,
            primary_error=_error_text(self.errors[self.config.primary.url])
            if self.config.primary.url in self.errors else None,
            primary_counts=(len(primary.users), primary.license_count) if primary else None,
            primary_waited_s=self.clients[self.config.primary.url].waited_seconds,
            credentials_file=self.credentials.path if self.credentials and self.credentials.used else None,
            ended=now_iso(), duration_s=round(time.monotonic() - self.clock_start, 3), warnings=self.warnings,
            failover=self.failover, check=self.config.check, notes=self.notes)
        if run.credentials_file:
            self.rep.say(f"🔑 Senhas dos usuários criados (novas, aleatórias): {run.credentials_file}")
        return run


def open_local_files(run: Run, config: Config) -> None:
    """Histórico e arquivo de senhas. Uma pasta de dados em que não se consegue gravar recusa a execução
    ANTES da primeira escrita nos servidores (uma sequência criar → bloquear nunca fica pela metade)."""
    ensure_data_dir(config.data_dir)
    try:
        atomic_write(os.path.join(config.data_dir, ".teste-de-escrita"), "ok\n")
        os.unlink(os.path.join(config.data_dir, ".teste-de-escrita"))
        if history_busy(config.data_dir):  # outro programa segura o histórico: sincroniza e guarda à parte
            run.history = HistoryAside(config.data_dir, run.run_id, run.rep.warn)
            run.rep.warn(f"⚠️  O histórico {os.path.join(config.data_dir, HISTORY_FILE)} está travado por outro "
                         "programa (um backup, um navegador de SQLite?): a sincronização segue e o registro desta "
                         "execução é guardado à parte, para ir ao histórico quando ele estiver livre.")
            warning = None
        else:
            run.history, warning = History.open_or_replace(config.data_dir, retention_days=config.history_days)
            if run.history is not None and aside_files(config.data_dir):
                written = write_aside(run.history, config.data_dir)
                if written:
                    run.rep.warn(f"ℹ️  {plural(len(written), 'registro guardado', 'registros guardados')} enquanto o "
                                 "histórico estava travado foi(ram) gravado(s) nele agora.")
    except (OSError, sqlite3.Error) as exc:
        raise data_dir_error(config.data_dir, exc) from None
    if warning:
        run.warnings.append(mask(warning))
    run.credentials = CredentialStore(config.data_dir)


def restore_mode(config: Config) -> Config:
    """restaurar: a origem é um backup (o primeiro, ou --de) e o destino é o principal."""
    if config.mode == Mode.TWO_WAY or config.mirror:
        raise ConfigError("restaurar não combina com --bidirecional nem com --espelhar.")
    config = dataclasses.replace(config, mode=Mode.RESTORE)
    directions(config)  # valida --de antes de qualquer acesso à rede
    return config


def run_sync(config: Config, rep: Reporter, run: Run | None = None) -> RunOutcome:
    """Uma sincronização completa; devolve o resultado tipado (o --json é run_json dele).
    run: a execução cujo cabeçalho já foi impresso (antes do login e da espera do despertar)."""
    header = run is None
    run = run or Run(config, rep)
    with stop_signals().shielded():  # Ctrl+C/SIGTERM só param na hora nas etapas interruptible (leituras)
        try:
            with stop_signals().interruptible():  # antes de qualquer escrita: para na hora, nada foi gravado
                if not config.simulate:
                    open_local_files(run, config)
                if header:
                    run.header()
                run.connect_all()
                run.fetch_all()
            pairs = [run.skipped_pair(d) if stop_signals().requested else run.sync_pair(d) for d in run.directions]
            outcome = run.finish(pairs)
        finally:
            run.close()
        record_run(outcome, run.record)
        run.text.summary(outcome)
        return outcome


@dataclasses.dataclass
class RunRecord:
    """Onde uma execução fica registrada: o histórico (uma linha por par) e o ultima_execucao.json, que o
    painel e o /status.json leem. Só ele escreve esse registro, para uma execução que terminou, parou no
    login ou falhou (configuração, erro inesperado): record_run. A linha de um par é aberta quando o par
    começa ("em andamento": uma execução morta com kill -9 fica assim e a próxima a marca "interrompida")
    e fechada quando ele termina (um kill -9 no par seguinte não a desfaz); record_run fecha o que ainda
    estiver aberto e grava o resumo."""
    data_dir: str | None  # None: nada é gravado (simulação, verificação, pasta de dados sem escrita)
    guard: Callable[..., Any]  # (o que, função, *args): a falha num arquivo local vira aviso, não exceção
    history: "History | HistoryAside | None" = None  # sem histórico: fica só o ultima_execucao.json
    open_rows: dict[int, int] = dataclasses.field(default_factory=dict)  # id(PairOutcome) → linha aberta

    def start(self, pair: "PairOutcome", run_id: str, mode: Mode) -> None:
        if self.history:
            d = pair.direction
            row = self.guard("registrar o início do par no histórico", self.history.start_pair, run_id,
                             pair.started, mode, d.primary.url, d.backup.url)
            if row is not None:
                self.open_rows[id(pair)] = row

    def finish(self, pair: "PairOutcome", failover: FailoverReport | None) -> None:
        row = self.open_rows.pop(id(pair), None)
        if self.history and row is not None:
            self.guard("gravar o par no histórico", self.history.finish_pair, row, pair, failover)


def record_run(outcome: RunOutcome, record: RunRecord) -> None:
    """O registro de uma execução, a partir do RunOutcome (o mesmo do texto e do --json): fecha a linha de
    cada par ainda aberta no histórico e grava o ultima_execucao.json. O único que escreve esse registro."""
    for pair in outcome.pairs:
        record.finish(pair, outcome.failover)
    if record.data_dir is not None:
        record.guard("gravar o resumo da última execução", atomic_write,
                     os.path.join(record.data_dir, LAST_RUN_FILE), dump_json(last_run_json(outcome)))


def stopped_run(config: Config, errors: list[tuple[ServerConfig, BaseException]],
                origin: Run | None = None) -> RunOutcome:
    """Falha antes da sincronização (senha, conta, URL que não é a API, nome que não resolve, TLS): a
    execução vira um RunOutcome como qualquer outra, com o código dos pares (pair_verdict), uma linha por
    par no histórico (pela mesma API History dos pares) e o ultima_execucao.json, para o painel e o
    /status.json ficarem vermelhos já nesta execução. Simulação: só o RunOutcome, nada gravado. Não
    imprime nada: o texto e o --json saem dele em report_connection_errors."""
    run = Run(config, Reporter(False, io.StringIO()))
    if origin is not None:  # a execução começou antes da espera e do login que falharam: a duração conta daí
        run.started, run.clock_start = origin.started, origin.clock_start
    run.errors = {server.url: exc for server, exc in errors}
    run.stopped = ApiError("não sincronizado: a execução parou no login (veja o erro do outro servidor)")
    try:
        if not config.simulate:
            try:
                open_local_files(run, config)
            except ConfigError:  # pasta de dados sem escrita: não há onde registrar (o erro já diz o que fazer)
                run.record.data_dir = None
        outcome = run.finish([run.sync_pair(d) for d in run.directions])
    finally:
        run.close()
    # Cada par mostra um erro só (o da origem, o do destino ou "parou no login"); o código conta TODOS os
    # erros fatais: uma senha errada num backup fora dos pares (restaurar --de outro) ainda é 2, não 4.
    outcome.stopped_code = run_exit_code(error_exit_code(exc) for _, exc in errors)
    record_run(outcome, run.record)
    return outcome


def _run_mode(args: argparse.Namespace) -> Mode:
    if args.comando == Command.RESTORE:
        return Mode.RESTORE
    return Mode.TWO_WAY if getattr(args, "bidirecional", False) else Mode.ONE_WAY


def record_failure(args: argparse.Namespace, message: str, code: ExitCode) -> None:
    """Erro de configuração (ou erro inesperado no meio da execução) num sincronizar/restaurar: também é uma
    execução registrada, com o código dado (linha no histórico
    para cada par que a configuração ainda deixa ler, e o ultima_execucao.json). Quando nem DADOS_DIR
    pode ser lido (o .env ilegível, por exemplo), não há onde registrar e nada é gravado. Sem pasta de dados
    ainda (nenhuma execução antes: o painel não tem verde a mostrar), nada é criado."""
    if args.comando not in (Command.SYNC, Command.RESTORE) or getattr(args, "simular", False):
        return
    try:
        get = settings_reader(args)
        data_dir = resolve_data_dir(get, args.dados_dir)
    except (ConfigError, OSError):
        return
    if not os.path.isdir(data_dir):
        return
    try:
        pairs = configured_pairs(get, args.principal, ",".join(args.backup) if args.backup else None) or []
    except ConfigError:
        pairs = []
    try:
        lock = acquire_lock(data_dir)
    except (LockBusy, ConfigError, OSError):
        return  # outra execução em andamento registra a dela
    try:
        _record_failure(args, data_dir, pairs, mask(message), code)
    except Exception as exc:  # noqa: BLE001 - registrar é o melhor possível; nunca um traceback por cima do erro
        sys.stderr.write(terminal_text(f"   ⚠️  a falha não pôde ser registrada em {data_dir} "
                                       f"({exc.__class__.__name__}); o painel não a mostra.") + "\n")
    finally:
        lock.release()


def _record_failure(args: argparse.Namespace, data_dir: str, pairs: list[tuple[str, str]], error: str,
                    code: ExitCode) -> None:
    started = now_iso()
    today = dt.datetime.now(dt.timezone.utc).date()
    outcomes: list[PairOutcome] = []
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
    failed: list[str] = []

    def best_effort(what: str, func: Callable[..., Any], *func_args: Any) -> Any:
        """Registrar é o melhor possível: o erro já foi dito na tela."""
        try:
            return func(*func_args)
        except (OSError, sqlite3.Error):
            failed.append(what)
            return None

    record = RunRecord(data_dir, best_effort, history=best_effort("abrir o histórico", History, data_dir))
    try:
        for primary, backup in pairs if record.history else []:
            direction = Direction(ServerConfig(Role.PRIMARY, primary, "", ""),
                                  ServerConfig(Role.BACKUP, backup, "", ""))
            outcome = PairOutcome(direction, started=started, clock=Clock.of(today), error=error,
                                  error_code=code)
            outcome.code, outcome.status = pair_verdict(outcome, False)
            outcome.ended = now_iso()
            record.start(outcome, run_id, _run_mode(args))
            outcomes.append(outcome)
        if failed:
            outcomes = []  # histórico ilegível: fica só o ultima_execucao.json (o painel o mostra)
        run = RunOutcome(run_id=run_id, started=started, mode=_run_mode(args), clock=Clock.of(today),
                         pairs=outcomes, primary_url=pairs[0][0] if pairs else "", primary_error=error,
                         primary_counts=None, primary_waited_s=0.0, credentials_file=None, ended=now_iso(),
                         stopped_code=code, recorded=bool(outcomes))
        record_run(run, record)
    finally:
        if record.history:
            best_effort("fechar o histórico", record.history.close)


# ============================================================================
# Modo contínuo (vigiar): ciclos do MESMO caminho da sincronização (Run.sync_pair: plano, cadeias, releitura
# final dos dois lados, diário, histórico); um ciclo sem mudança relevante no principal não fala com os backups
# ============================================================================

WATCH_FILE = "vigiar.json"  # batimento (atômico) que o painel, o /status.json e uma execução agendada leem
WATCH_STALE_INTERVALS = 3  # sem ciclo completo em 3 intervalos: /status.json vermelho
WATCH_READY = "em dia"
WATCH_PAUSED = "pausado"
WATCH_PROBLEM = "com problema"
WATCH_WAITING = "aguardando o primeiro ciclo"


def snapshot_fingerprint(snap: Snapshot) -> str:
    """Resumo do que o planejador usa de um retrato: usuários, licenças (os campos do License; last_seen_*
    nunca entram nele), as fora do plano, os problemas e os ids locais (uma cópia restaurada os reusa). Duas
    leituras com o mesmo resumo, na mesma data, dão o mesmo plano: o vigiar não precisa ler os backups."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(snap.users):
        digest.update(repr(snap.users[name]).encode("utf-8", "surrogatepass"))
    for key in sorted(snap.licenses):
        digest.update(repr(snap.licenses[key]).encode("utf-8", "surrogatepass"))
    for key in sorted(snap.rejected):
        digest.update(repr((key, snap.rejected[key])).encode("utf-8", "surrogatepass"))
    digest.update(repr(sorted(repr(p) for p in snap.problems)).encode("utf-8", "surrogatepass"))
    digest.update(repr(sorted(snap.server_ids.items())).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class TransferMeter:
    """O que chega de um servidor: bytes no fio (comprimidos, quando o servidor comprime: o requests pede
    gzip sempre) e depois de descomprimidos. Um gancho de resposta guarda as respostas; take() soma e esquece
    (a memória não cresce de um ciclo para o outro)."""

    def __init__(self) -> None:
        self._responses: list[Any] = []
        self._lock = threading.Lock()

    def hook(self, resp: Any, **_: Any) -> None:
        with self._lock:
            self._responses.append(resp)

    def take(self) -> tuple[int, int, bool]:
        """(bytes no fio, bytes descomprimidos, veio comprimido) desde a última chamada."""
        with self._lock:
            responses, self._responses = self._responses, []
        wire = body = 0
        compressed = False
        for resp in responses:
            try:
                size = len(resp.content or b"")
            except Exception:  # noqa: BLE001 - corpo que não chegou inteiro: conta o que o fio trouxe
                size = 0
            body += size
            try:
                wire += int(resp.raw.tell())
            except (AttributeError, TypeError, ValueError, OSError):
                wire += size
            if (resp.headers.get("Content-Encoding") or "identity").lower() != "identity":
                compressed = True
        return wire, body, compressed


@dataclasses.dataclass
class CycleRecord(RunRecord):
    """O registro de um ciclo do vigiar: o mesmo RunRecord (o único que abre e fecha linhas no histórico), mas a
    linha de um par só é aberta e fechada quando o ciclo escreveu, parou, falhou ou é o primeiro do par; um
    ciclo sem nada a fazer não enche o histórico. (Por isso a linha de um ciclo morto com kill -9 no meio não
    fica "em andamento": o diário do par cobre a sequência, como sempre.) A auditoria passa direto."""
    first: set[str] = dataclasses.field(default_factory=set)  # backups ainda sem linha deste vigiar
    recorded: list["PairOutcome"] = dataclasses.field(default_factory=list)
    begun: dict[int, tuple[str, Mode]] = dataclasses.field(default_factory=dict)

    def start(self, pair: "PairOutcome", run_id: str, mode: Mode) -> None:
        self.begun[id(pair)] = (run_id, mode)

    def finish(self, pair: "PairOutcome", failover: FailoverReport | None) -> None:
        begun = self.begun.pop(id(pair), None)
        if begun is None:
            return
        url = pair.direction.backup.url
        wrote = any(r.ok and not r.unsyncable for r in pair.results or [])
        if not (wrote or pair.code != ExitCode.OK or url in self.first):
            return
        self.first.discard(url)
        super().start(pair, *begun)
        super().finish(pair, failover)
        self.recorded.append(pair)


@dataclasses.dataclass
class WatchedPair:
    """O que o vigiar sabe de um par entre os ciclos."""
    direction: Direction
    synced: tuple[str, Any] | None = None  # (resumo do principal, datas) que o backup reflete, conferido
    reflects: str | None = None  # quando foi lido o principal que o backup reflete (o ponto de recuperação)
    backup_read: float | None = None  # time.monotonic() da última leitura inteira do backup
    backup_read_at: str | None = None
    paused: str | None = None  # parada de segurança (código 5): o par espera, os outros seguem
    paused_at: str | None = None  # o resumo do principal quando o par pausou
    problem: str | None = None  # o último ciclo do par não terminou em dia (código 1, 2 ou 4)
    unreachable: bool = False  # o problema é o backup fora do ar (espera crescente)
    failures: int = 0
    retry_at: float = 0.0


def watch_due(pair: WatchedPair, fingerprint_now: str, clock: Any, mono: float, backup_read_s: float) -> str | None:
    """Por que este par precisa de um ciclo de sincronização agora (None: nada a fazer, nem a ler no backup).
    A data conta como mudança: uma licença que vence à meia-noite do servidor muda de veredito sem que a
    listagem mude."""
    periodic = pair.backup_read is None or mono - pair.backup_read >= backup_read_s
    if pair.paused is not None:  # relido quando o principal muda (uma listagem cortada uma vez) e na periódica
        return "nova leitura do par pausado" if periodic or pair.paused_at != fingerprint_now else None
    if pair.problem is not None:
        if mono >= pair.retry_at:
            return "nova tentativa"
        if pair.unreachable or pair.synced is None:
            return None
    if pair.synced is None:
        return "primeiro ciclo"
    if pair.synced[0] != fingerprint_now:
        return "mudança no principal"
    if pair.synced[1] != clock:
        return "a data mudou"
    if periodic:
        return "leitura periódica do backup"
    return None


def _hhmmss() -> str:
    return dt.datetime.now().astimezone().strftime("%H:%M:%S")


class Watcher:
    """O vigiar: um login por servidor para a vida do processo (renovado num 401 ou perto do prazo, como em
    qualquer execução), ciclos a cada `interval` segundos. Cada ciclo lê só o principal; um par passa pelo
    caminho da sincronização (Run.sync_pair) só quando o que importa mudou (watch_due)."""

    def __init__(self, config: Config, rep: Reporter, interval: float, backup_read_min: float, budget_mb: float):
        self.config, self.rep = config, rep
        self.interval = self.effective = float(interval)
        self.backup_read_s = float(backup_read_min) * 60
        self.budget_bytes = float(budget_mb) * 1_000_000
        run_context().handoff.clear()
        self.clients = {s.url: ApiClient(s, config) for s in [config.primary] + config.backups}
        self.primary_client = self.clients[config.primary.url]
        self.meter = TransferMeter()
        self.primary_client.session.hooks["response"].append(self.meter.hook)
        self.pairs = [WatchedPair(d) for d in directions(config)]
        self.first_rows = {p.direction.backup.url for p in self.pairs}
        self.history: History | HistoryAside | None = None
        self.credentials: CredentialStore | None = None
        self.warnings: list[str] = []
        self.started, self.mono_start = now_iso(), time.monotonic()
        self.cycles = self.write_cycles = 0
        self.last_complete: str | None = None
        self.primary_down_since: str | None = None
        self.primary_error: str | None = None
        self.primary_failures = 0
        self.primary_read_at: str | None = None
        self.last_wire = self.last_body = 0
        self.compressed = False
        self.day: str | None = None
        self.day_bytes = 0
        self.budget_note: str | None = None
        self.stopped_by: int | None = None

    # -- arquivos e clientes ------------------------------------------------
    def open(self) -> None:
        """Histórico e arquivo de senhas, uma vez para a vida do processo (como open_local_files)."""
        holder = Run(self.config, Reporter(False, io.StringIO()))
        for client in holder.clients.values():
            client.close()
        open_local_files(holder, self.config)
        self.history, self.credentials, self.warnings = holder.history, holder.credentials, holder.warnings

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        if self.history is not None:
            try:
                self.history.close()
            except (OSError, sqlite3.Error):
                pass

    def cycle_config(self) -> Config:
        """Com --agora (testes), o instante anda com o processo: um vigiar atravessa a meia-noite."""
        if self.config.now is None:
            return self.config
        return dataclasses.replace(self.config, now=self.config.now + dt.timedelta(
            seconds=time.monotonic() - self.mono_start))

    def new_run(self, quiet: bool = False) -> Run:
        """Uma execução por ciclo (id, relógio e retratos novos) com os clientes, o histórico e o arquivo de
        senhas do vigiar."""
        run = Run(self.cycle_config(), Reporter(False, io.StringIO()) if quiet else self.rep)
        for client in run.clients.values():
            client.close()
        run.clients = self.clients
        run.record = CycleRecord(self.config.data_dir, run.guard_local, history=self.history, first=self.first_rows)
        run.credentials = self.credentials
        return run

    def connect(self) -> None:
        """Acorda e entra em todos os servidores (em paralelo). Senha, conta, TLS, redirecionamento e URL que
        não é a API: ConfigError (código 2). Servidor fora do ar: o vigiar começa assim mesmo e tenta de novo."""
        clients = list(self.clients.values())
        try:
            outcomes = parallel_map(_connect, clients)
        except BaseException:  # Ctrl+C/SIGTERM na espera de um servidor dormindo: as esperas param já
            for client in clients:
                client.cancel.set()
            raise
        for client, outcome in zip(clients, outcomes, strict=True):
            if isinstance(outcome, AuthError) or isinstance(outcome, TlsError):
                raise ConfigError(_error_text(outcome))
            if isinstance(outcome, BaseException):
                self.rep.warn(f"   ⚠️  {client.server.label}: {_error_text(outcome)} (o vigiar tenta de novo)")
            else:
                self.rep.say(f"   ✅ {client.server.label}: login feito")

    @staticmethod
    def read_backup(client: ApiClient) -> Snapshot:
        """Leitura inteira de um backup: acorda-o (um backup gratuito dorme entre as leituras) e entra se
        ainda não entrou (o mesmo token serve os ciclos seguintes)."""
        client.wake()
        if client.token is None:
            client.login()
        return fetch_snapshot(client)

    # -- ciclo ---------------------------------------------------------------
    def cycle(self) -> None:
        """Um ciclo: lê o principal (usuários e licenças); só os pares em que algo relevante mudou (ou cuja
        leitura periódica venceu, ou que esperam nova tentativa) passam por Run.sync_pair."""
        self.cycles += 1
        client = self.primary_client
        try:
            with stop_signals().interruptible():
                if self.primary_failures:
                    client.wake()  # dormindo: espera acordar (até SYNC_ESPERA_DESPERTAR)
                if client.token is None:
                    client.login()
                primary = fetch_snapshot(client)
        except Interrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - principal fora do ar: o vigiar espera e tenta de novo
            self.count_transfer(*self.meter.take(), listing=False)  # uma página de erro não é a medida da listagem
            self.primary_failed(exc)
            return
        self.count_transfer(*self.meter.take())
        run = self.new_run()
        # pelo relógio deste PC: o painel compara com o dele (a idade do ponto de recuperação)
        self.primary_read_at = dt.datetime.now(dt.timezone.utc).isoformat()
        if self.primary_down_since is not None:
            self.rep.say(f"✅ {_hhmmss()} O principal voltou (fora do ar desde "
                         f"{local_time(self.primary_down_since, seconds=True)}).")
            self.primary_down_since = self.primary_error = None
        self.primary_failures = 0
        fingerprint_now = snapshot_fingerprint(primary)
        mono = time.monotonic()
        due: list[tuple[WatchedPair, str]] = []
        for pair in self.pairs:
            clock = run.clock_for(pair.direction)
            why = watch_due(pair, fingerprint_now, clock, mono, self.backup_read_s)
            if why:
                due.append((pair, why))
            elif pair.synced == (fingerprint_now, clock) and pair.problem is None and pair.paused is None:
                pair.reflects = self.primary_read_at  # nada mudou: o backup reflete esta leitura do principal
        if due:
            self.sync_due(run, primary, fingerprint_now, due)
            self.count_transfer(*self.meter.take(), listing=False)  # releituras do principal no ciclo
        if not stop_signals().requested:
            self.last_complete = now_iso()
        self.adjust_interval()

    def sync_due(self, run: Run, primary: Snapshot, fingerprint_now: str, due: list[tuple[WatchedPair, str]]) -> None:
        """Os pares que precisam: lê cada backup inteiro (em paralelo) e roda o par pelo caminho da
        sincronização. O estado do vigiar de cada par sai do PairOutcome (código 0, 5 ou outro)."""
        primary_url = self.config.primary.url
        run.snapshots[primary_url] = primary
        self.write_cycles += 1
        whys = sorted({why for _, why in due})
        self.rep.say(f"🔄 {_hhmmss()} Ciclo {self.cycles}: {', '.join(whys)} → "
                     + ", ".join(p.direction.backup.url for p, _ in due))
        # Leituras em paralelo; cada par sincroniza assim que o backup dele respondeu: um backup fora do ar
        # (ou dormindo até SYNC_ESPERA_DESPERTAR) não segura os outros.
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(due))
        futures = {pool.submit(self.read_backup, self.clients[p.direction.backup.url]): p for p, _ in due}
        outcomes: list[PairOutcome] = []
        try:
            pending = set(futures)
            while pending and not stop_signals().requested:
                with stop_signals().interruptible():
                    done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    pair = futures[future]
                    url = pair.direction.backup.url
                    failure = future.exception()
                    if failure is not None:
                        run.errors[url] = failure
                    else:
                        run.snapshots[url] = future.result()
                        pair.backup_read, pair.backup_read_at = time.monotonic(), now_iso()
                        check_distinct_servers([c for c in self.clients.values() if c.server.url in run.snapshots])
                    if stop_signals().requested:
                        break
                    self.clients[url].block_works, self.clients[url].block_failure = None, ""  # provada a cada ciclo
                    outcome = run.sync_pair(pair.direction)
                    outcomes.append(outcome)
                    self.judge(pair, outcome, run, fingerprint_now)
        except BaseException:  # Ctrl+C/SIGTERM numa leitura: as esperas de despertar param já
            for client in self.clients.values():
                if client is not self.primary_client:
                    client.cancel.set()
            raise
        finally:
            pool.shutdown(wait=False)
        self.finish_run(run, outcomes)

    def finish_run(self, run: Run, outcomes: list[PairOutcome]) -> None:
        """ultima_execucao.json quando o ciclo gravou linha no histórico (o agendador e os monitores o leem)."""
        record = run.record
        if isinstance(record, CycleRecord) and record.recorded:
            record_run(run.finish(record.recorded), record)  # as linhas já fechadas; grava o ultima_execucao.json
        self.warnings = (self.warnings + [w for w in run.warnings if w not in self.warnings])[-20:]  # memória plana

    def judge(self, pair: WatchedPair, outcome: PairOutcome, run: Run, fingerprint_now: str) -> None:
        """O que o ciclo deixou no par: em dia (reflete a leitura do principal), pausado (código 5: nada é
        gravado até a trava sair; os outros pares seguem) ou com problema (nova tentativa com espera
        crescente, até a leitura periódica)."""
        url = pair.direction.backup.url
        if outcome.interrupted:
            return
        if outcome.code == ExitCode.SAFETY:
            reason = mask(pair_error_text(outcome) or "parada de segurança")
            if pair.paused is None:  # dito uma vez por pausa (o motivo atualizado fica no painel)
                self.rep.warn(f"⏸️  {_hhmmss()} Par PAUSADO ({url}): {reason} O vigiar segue com os outros "
                              f"backups e relê este quando o principal mudar e a cada "
                              f"{self.backup_read_s / 60:.0f} min; para rodar o comando indicado, pare o vigiar antes.")
            pair.paused, pair.problem, pair.synced = reason, None, None
            pair.paused_at = fingerprint_now
            return
        if pair.paused is not None:
            self.rep.say(f"▶️  {_hhmmss()} Par retomado ({url}): a parada de segurança não vale mais.")
            pair.paused = None
        final = run.snapshots.get(self.config.primary.url)
        parity_ok = outcome.parity is not None and outcome.parity.ok and outcome.error is None
        if parity_ok and final is not None:
            pair.synced = (snapshot_fingerprint(final), outcome.clock)
            pair.reflects = self.primary_read_at
        if outcome.code == ExitCode.OK:
            if pair.problem is not None:
                self.rep.say(f"✅ {_hhmmss()} Backup {url} em dia de novo.")
            pair.problem, pair.unreachable, pair.failures = None, False, 0
            return
        reason = pair_error_text(outcome) or "; ".join(outcome.warnings) or ExitCode.meaning_of(outcome.code)
        pair.failures += 1
        pair.unreachable = outcome.error is not None
        wait = WATCH_PAIR_BACKOFF.capped_at(self.backup_read_s).starting_at(self.effective).delay(pair.failures)
        pair.retry_at = time.monotonic() + wait
        if not parity_ok:
            pair.synced = None
        if pair.problem is None:
            self.rep.warn(f"⚠️  {_hhmmss()} Backup {url}: {reason} (nova tentativa em {wait:.0f} s; os outros "
                          "backups seguem)")
        pair.problem = mask(reason)

    def primary_failed(self, exc: BaseException) -> None:
        """Principal fora do ar, dormindo ou recusando: diz uma vez, registra a falha de cada par (o mesmo
        caminho de uma execução que não leu o principal) e espera cada vez mais (até WATCH_PRIMARY_BACKOFF_MAX)."""
        self.primary_failures += 1
        self.primary_error = _error_text(exc)
        if self.primary_down_since is None:
            self.primary_down_since = now_iso()
            self.rep.warn(f"⚠️  {_hhmmss()} Principal sem resposta: {self.primary_error} O vigiar continua e "
                          f"tenta de novo (espera crescente, até {self.backoff_max():.0f} s); nada é enviado "
                          "aos backups enquanto isso.")
        run = self.new_run(quiet=True)
        run.errors[self.config.primary.url] = exc
        outcomes = [run.sync_pair(p.direction) for p in self.pairs if p.paused is None]
        self.finish_run(run, outcomes)

    def cycle_failed(self, exc: BaseException) -> None:
        """Erro inesperado num ciclo (disco cheio, histórico que não grava...): dito uma vez por mensagem, o
        ciclo não conta como completo (o painel fica vermelho se isso se repetir) e o próximo tenta de novo."""
        message = mask(f"erro inesperado no ciclo {self.cycles} ({exc.__class__.__name__}): {exc}")
        key = f"{exc.__class__.__name__}: {exc}"
        if key not in self.warnings:
            self.warnings = (self.warnings + [key])[-20:]
            self.rep.warn(f"⚠️  {_hhmmss()} {message}; o vigiar continua.")

    def backoff_max(self) -> float:
        return WATCH_PRIMARY_BACKOFF.starting_at(self.effective).cap

    def next_wait(self) -> float:
        if self.primary_failures:
            return WATCH_PRIMARY_BACKOFF.starting_at(self.effective).delay(self.primary_failures)
        return self.effective

    # -- transferência e orçamento ----------------------------------------------
    def count_transfer(self, wire: int, body: int, compressed: bool, listing: bool = True) -> None:
        """Soma ao dia (UTC) o que veio do principal; `listing`: é a leitura do ciclo (a medida do orçamento)."""
        day = dt.datetime.now(dt.timezone.utc).date().isoformat()
        if day != self.day:
            self.day, self.day_bytes = day, 0
        self.day_bytes += wire
        if wire and listing:
            self.last_wire, self.last_body, self.compressed = wire, body, compressed

    def adjust_interval(self) -> None:
        """Com a listagem do principal grande demais para o intervalo dentro do orçamento diário, o intervalo
        aumenta (e o vigiar diz uma vez o ponto de recuperação que o orçamento permite); volta quando cabe."""
        if not self.last_wire or self.budget_bytes <= 0:
            return
        needed = self.last_wire * 86400 / self.budget_bytes
        wanted = max(self.interval, round(needed, 1))
        if wanted > self.interval and (self.budget_note is None or abs(wanted - self.effective) > 0.2 * self.effective):
            self.effective = wanted
            kind = "comprimida" if self.compressed else "sem compressão"
            self.budget_note = (
                f"a listagem do principal tem {self.last_wire / 1000:.0f} KB por leitura ({kind}); com "
                f"SYNC_VIGIAR_MB_DIA={number_text(self.budget_bytes / 1_000_000)}, o intervalo passa de "
                f"{self.interval:.0f} s para {wanted:.0f} s: uma venda chega aos backups em até ~{wanted:.0f} s "
                "mais a duração do ciclo (ponto de recuperação). Aumente SYNC_VIGIAR_MB_DIA para um intervalo menor.")
            self.rep.warn(f"⚠️  {_hhmmss()} {self.budget_note}")
        elif wanted <= self.interval and self.effective != self.interval:
            self.effective, self.budget_note = self.interval, None
            self.rep.say(f"ℹ️  {_hhmmss()} A listagem cabe no orçamento: intervalo de volta a {self.interval:.0f} s.")

    # -- batimento ---------------------------------------------------------------
    def heartbeat(self, active: bool = True) -> dict[str, Any]:
        now = dt.datetime.now(dt.timezone.utc)

        def age(text: str | None) -> float | None:
            moment = _parse_iso(text)
            return None if moment is None else round((now - moment).total_seconds(), 1)

        pairs = []
        for pair in self.pairs:
            state = (WATCH_PAUSED if pair.paused else WATCH_PROBLEM if pair.problem
                     else WATCH_READY if pair.synced else WATCH_WAITING)
            pairs.append({"principal": pair.direction.primary.url, "backup": pair.direction.backup.url,
                          "situacao": state, "motivo": pair.paused or pair.problem,
                          "reflete_o_principal_de": pair.reflects, "ponto_de_recuperacao_s": age(pair.reflects),
                          "ultima_leitura_do_backup": pair.backup_read_at})
        return {
            "versao": 1, "pid": os.getpid(), "ativo": active, "inicio": self.started, "atualizado_em": now_iso(),
            "ultimo_ciclo_completo": self.last_complete, "intervalo_s": self.interval,
            "intervalo_efetivo_s": self.effective, "leitura_backup_min": self.backup_read_s / 60,
            "orcamento_mb_dia": self.budget_bytes / 1_000_000, "aviso_orcamento": self.budget_note,
            "ciclos": self.cycles, "ciclos_com_sincronizacao": self.write_cycles,
            "principal": {"url": self.config.primary.url, "no_ar": self.primary_down_since is None,
                          "fora_desde": self.primary_down_since, "erro": self.primary_error,
                          "ultima_leitura": self.primary_read_at},
            "transferencia": {"ultima_leitura_bytes": self.last_wire,
                              "ultima_leitura_bytes_descomprimidos": self.last_body, "comprimida": self.compressed,
                              "dia": self.day, "bytes_no_dia": self.day_bytes},
            "encerrado_por": stop_label(self.stopped_by) if self.stopped_by else None,
            "pares": pairs,
        }

    def beat(self, active: bool = True) -> None:
        try:
            atomic_write(os.path.join(self.config.data_dir, WATCH_FILE), dump_json(self.heartbeat(active)),
                         private=True)
        except OSError as exc:
            message = f"não foi possível gravar {WATCH_FILE} em {self.config.data_dir}: {exc.strerror or exc}"
            if message not in self.warnings:
                self.warnings.append(message)
                self.rep.warn(f"⚠️  {message} (o painel não vê o vigiar)")

    # -- laço ----------------------------------------------------------------
    def loop(self, max_cycles: int | None = None) -> int:
        """Ciclos até Ctrl+C ou SIGTERM (130 ou 143, depois da sequência em andamento). Dentro do laço só um
        erro de configuração (ConfigError, código 2) termina o processo."""
        with stop_signals().shielded():  # como run_sync: sinais param na hora nas leituras e na espera, não escrevendo
            try:
                while max_cycles is None or self.cycles < max_cycles:
                    started = time.monotonic()
                    try:
                        self.cycle()
                    except (Interrupted, ConfigError):
                        raise
                    except Exception as exc:  # noqa: BLE001 - um ciclo que quebrou não termina dias de vigília
                        self.cycle_failed(exc)
                    self.beat()
                    if stop_signals().requested:
                        break
                    with stop_signals().interruptible():
                        stop_signals().event.wait(max(0.0, started + self.next_wait() - time.monotonic()))
            except Interrupted:
                pass
            self.stopped_by = stop_signals().code
            self.beat(active=False)
        return stop_signals().code or ExitCode.OK


def watch_settings(args: argparse.Namespace) -> tuple[float, float, float]:
    """(intervalo em s, leitura periódica dos backups em min, orçamento em MB/dia), da linha de comando, do
    ambiente ou do .env (lidos uma vez, no início)."""
    get = settings_reader(args)
    return (setting_value(get, "SYNC_VIGIAR_INTERVALO", getattr(args, "intervalo", None)),
            setting_value(get, "SYNC_VIGIAR_LEITURA_BACKUP_MIN"), setting_value(get, "SYNC_VIGIAR_MB_DIA"))


def cmd_watch(args: argparse.Namespace) -> int:
    """vigiar: a trava da sincronização fica com este processo a vida toda; código 2 (configuração), 3 (outra
    execução com a trava), 130/143 (Ctrl+C/SIGTERM). Nada mais o termina."""
    config = build_config(args)
    if config.simulate:
        raise ConfigError("vigiar não combina com --simular (use verificar para só comparar).")
    interval, backup_read_min, budget_mb = watch_settings(args)
    config.json_output = False
    rep = Reporter(False)
    if config.allow_http:
        rep.warn("⚠️  ATENÇÃO: --permitir-http ativo: senha e token podem trafegar sem criptografia.")
    ensure_data_dir(config.data_dir)
    lock = acquire_lock(config.data_dir)
    watcher = Watcher(config, rep, interval, backup_read_min, budget_mb)
    try:
        with stop_signals().installed():
            try:
                with stop_signals().interruptible():
                    watcher.open()
                    watcher.beat()  # antes do login (um servidor dormindo pode levar minutos): a trava tem dono
                    remove_stale_temp_files(config.data_dir)
                    rep.say(SEP)
                    rep.say(f"👁️  VIGIAR: mantém os backups em dia com o principal até Ctrl+C (pid {os.getpid()})")
                    rep.say(SEP)
                    rep.say(f"Principal: {config.primary.url}")
                    for backup in config.backups:
                        rep.say(f"Backup: {backup.url}")
                    rep.say(f"Intervalo: {interval:.0f} s · cada backup é lido inteiro a cada "
                            f"{backup_read_min:.0f} min ou quando o principal muda · orçamento: "
                            f"{number_text(budget_mb)} MB/dia do principal")
                    rep.say("A configuração (.env) foi lida agora: para mudá-la, reinicie o vigiar.")
                    rep.say("")
                    watcher.connect()
                    watcher.beat()
            except Interrupted:
                watcher.stopped_by = stop_signals().code
                watcher.beat(active=False)
                return stop_signals().code or ExitCode.INTERRUPTED
            try:
                code = watcher.loop()
            except BaseException:  # configuração (código 2) ou erro inesperado: o painel não o vê mais ativo
                watcher.beat(active=False)
                raise
    finally:
        watcher.close()
        lock.release()
    rep.say(f"⏹️  {_hhmmss()} Vigiar encerrado ({stop_label(code)}) depois de {watcher.cycles} ciclos "
            f"({watcher.write_cycles} com sincronização). Código de saída: {code}")
    return code


@dataclasses.dataclass(frozen=True)
class WatchedPairBeat:
    """Um par no batimento do vigiar."""
    primary: str
    backup: str
    state: str  # WATCH_READY, WATCH_PAUSED, WATCH_PROBLEM ou WATCH_WAITING
    reason: str | None
    reflects: dt.datetime | None  # quando foi lido o principal que o backup reflete


@dataclasses.dataclass(frozen=True)
class WatchBeat:
    """O batimento do vigiar (vigiar.json), lido uma vez por read_watch; as decisões (painel, /status.json,
    execução que achou a trava ocupada) leem daqui, nunca das chaves do arquivo."""
    pid: int | None
    active: bool
    started: dt.datetime | None
    last_complete: dt.datetime | None
    interval_s: float
    effective_s: float
    budget_mb: float
    budget_note: str | None
    stopped_by: str | None
    last_read_bytes: int
    compressed: bool
    day_bytes: int
    primary: dict[str, Any]  # só mostrado (url, no_ar, fora_desde, erro, ultima_leitura)
    transfer: dict[str, Any]  # só mostrado
    pairs: tuple[WatchedPairBeat, ...]

    def alive(self, now: dt.datetime) -> bool:
        """Ativo e com um ciclo completo nos últimos WATCH_STALE_INTERVALS intervalos (ou começou há menos)."""
        last = self.last_complete or self.started
        return self.active and last is not None and \
            (now - last).total_seconds() <= WATCH_STALE_INTERVALS * self.effective_s

    def stale_text(self, now: dt.datetime) -> str:
        last = self.last_complete or self.started
        since = "" if last is None else f" há {age_text((now - last).total_seconds() / 60)}"
        return (f"o vigiar (pid {self.pid}) não completa um ciclo{since} (intervalo de {self.effective_s:.0f} s): "
                "veja a janela ou o log dele")

    def last_text(self) -> str:
        last = self.last_complete or self.started
        return local_time(last.isoformat() if last else None, seconds=True)

    def summary(self, now: dt.datetime) -> dict[str, Any]:
        """A chave "vigiar" do /status.json."""
        return {"ativo": self.active, "em_dia": self.alive(now), "pid": self.pid,
                "ultimo_ciclo_completo": self.last_complete.isoformat() if self.last_complete else None,
                "intervalo_s": self.interval_s, "intervalo_efetivo_s": self.effective_s,
                "aviso_orcamento": self.budget_note, "principal": self.primary, "transferencia": self.transfer,
                "orcamento_mb_dia": self.budget_mb, "encerrado_por": self.stopped_by}


def _beat_number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else default


def _beat_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def read_watch(data_dir: str) -> WatchBeat | None:
    """O batimento do vigiar (vigiar.json) tipado, ou None quando não há (ou não é legível)."""
    try:
        with open(os.path.join(data_dir, WATCH_FILE), encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("versao") != 1:
        return None
    found_transfer, found_primary = doc.get("transferencia"), doc.get("principal")
    transfer: dict[str, Any] = found_transfer if isinstance(found_transfer, dict) else {}
    primary: dict[str, Any] = found_primary if isinstance(found_primary, dict) else {}
    pairs = tuple(WatchedPairBeat(str(p.get("principal")), str(p.get("backup")), str(p.get("situacao")),
                                  _beat_text(p.get("motivo")), _parse_iso(_beat_text(p.get("reflete_o_principal_de"))))
                  for p in doc.get("pares") or [] if isinstance(p, dict))
    interval = _beat_number(doc.get("intervalo_s"), 60.0)
    pid = doc.get("pid")
    return WatchBeat(
        pid=pid if isinstance(pid, int) else None, active=doc.get("ativo") is True,
        started=_parse_iso(_beat_text(doc.get("inicio"))),
        last_complete=_parse_iso(_beat_text(doc.get("ultimo_ciclo_completo"))), interval_s=interval,
        effective_s=_beat_number(doc.get("intervalo_efetivo_s"), interval),
        budget_mb=_beat_number(doc.get("orcamento_mb_dia"), 0.0), budget_note=_beat_text(doc.get("aviso_orcamento")),
        stopped_by=_beat_text(doc.get("encerrado_por")),
        last_read_bytes=int(_beat_number(transfer.get("ultima_leitura_bytes"), 0)),
        compressed=transfer.get("comprimida") is True, day_bytes=int(_beat_number(transfer.get("bytes_no_dia"), 0)),
        primary=primary, transfer=transfer,
        pairs=pairs)


def watcher_holds_lock(config: Config, command: Command) -> int | None:
    """Uma execução que achou a trava ocupada: se quem a segura é um vigiar ativo, o código e a mensagem
    (sincronizar: 0, "nada a fazer", para o agendador não ficar vermelho; restaurar: 3, pare o vigiar antes);
    None quando não é um vigiar (a mensagem de sempre, código 3)."""
    beat = read_watch(config.data_dir)
    if beat is None or not beat.active:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    if command == Command.RESTORE:
        return fail(f"vigiar está ativo (pid {beat.pid}) e mantém os backups iguais ao principal: pare o vigiar "
                    "antes de restaurar (Ctrl+C na janela dele, ou pare o serviço) e rode restaurar de novo.",
                    ExitCode.BUSY, meaning="o vigiar está ativo; restaurar não roda junto com ele")
    if not beat.alive(now):
        return fail(f"vigiar (pid {beat.pid}) segura a trava, mas não completa um ciclo desde {beat.last_text()}: "
                    "veja a janela ou o log dele (ou o painel).", ExitCode.BUSY,
                    meaning="o vigiar segura a trava sem completar ciclos")
    message = (f"vigiar está ativo (pid {beat.pid}): nada a fazer. Ele mantém os backups em dia (último ciclo às "
               f"{beat.last_text()}).")
    if config.json_output:
        print_json({"versao": 1, "ferramenta": f"sincronizar_bancos {VERSAO}", "codigo_saida": 0,
                    "significado": message, "vigiar": beat.summary(now), "backups": []})
    else:
        sys.stdout.write(terminal_text(f"ℹ️  {message}") + "\n")
        sys.stdout.flush()
    return ExitCode.OK


def watch_pairs(pairs: list[PanelPair], beat: WatchBeat | None, now: dt.datetime,
                max_delay_min: float) -> list[PanelPair]:
    """Os pares do painel com o que o batimento de um vigiar ativo diz (ele só grava histórico nos ciclos que
    escreveram, pararam ou falharam): em dia → saudável enquanto o principal refletido tiver menos de
    PAINEL_MAX_ATRASO; pausado ou com problema → falhando, com o motivo; vigiar sem ciclo completo em
    WATCH_STALE_INTERVALS intervalos → atrasado. Sem vigiar ativo, os pares ficam como o histórico diz."""
    if beat is None or not beat.active:
        return pairs
    alive = beat.alive(now)
    by_pair = {(w.primary, w.backup): w for w in beat.pairs}
    judged: list[PanelPair] = []
    for pair in pairs:
        watched = by_pair.get((pair.primary, pair.backup))
        if watched is None:
            judged.append(pair)
            continue
        age_s = None if watched.reflects is None else max(0.0, (now - watched.reflects).total_seconds())
        state, delay, error = pair.state, pair.delay_min, pair.doc.get("ultimo_erro")
        if not alive:
            state, error = PanelState.LATE, beat.stale_text(now)
        elif watched.state == WATCH_READY and age_s is not None:
            delay, error = round(age_s / 60, 1), None
            state = PanelState.LATE if age_s / 60 > max_delay_min else PanelState.HEALTHY
        elif watched.state in (WATCH_PAUSED, WATCH_PROBLEM):
            state, error = PanelState.FAILING, f"vigiar: par {watched.state}: {watched.reason}"
        doc = {**pair.doc, "estado": state, "saudavel": state == PanelState.HEALTHY, "atraso_min": delay,
               "ultimo_erro": error,
               "vigiar": {"situacao": watched.state, "motivo": watched.reason,
                          "reflete_o_principal_de": watched.reflects.isoformat() if watched.reflects else None,
                          "ponto_de_recuperacao_s": None if age_s is None else round(age_s, 1)}}
        judged.append(dataclasses.replace(pair, state=state, delay_min=delay, doc=doc))
    return judged


def _render_watch(beat: WatchBeat | None, pairs: list[PanelPair], now: dt.datetime) -> str:
    """Cartão do modo contínuo: ciclo, ponto de recuperação de cada backup e transferência do principal."""
    if beat is None or not beat.active:
        return ""
    alive = beat.alive(now)
    kind = "comprimida" if beat.compressed else "sem compressão"
    lines = [f'<div class="estado">VIGIAR {"ATIVO" if alive else "SEM CICLO"}</div>',
             f"<div>pid {_esc(beat.pid)} · último ciclo completo: {_esc(beat.last_text())} · intervalo "
             f"{beat.effective_s:.0f} s</div>",
             f"<div>Transferência do principal: {beat.last_read_bytes / 1000:.0f} KB por leitura ({_esc(kind)}); "
             f"hoje {beat.day_bytes / 1_000_000:.1f} MB de {beat.budget_mb:.0f} MB</div>"]
    by_pair = {(w.primary, w.backup): w for w in beat.pairs}
    for pair in pairs:
        watched = by_pair.get((pair.primary, pair.backup))
        if watched is not None:
            age = None if watched.reflects is None else max(0.0, (now - watched.reflects).total_seconds())
            point = "—" if age is None else f"{age:.0f} s"
            lines.append(f"<div>Backup {_esc(pair.backup)}: {_esc(watched.state)} · ponto de recuperação "
                         f"(idade do principal que ele reflete): {_esc(point)}</div>")
    if not alive:
        lines.append(f'<div class="erro">{_esc(beat.stale_text(now))}</div>')
    if beat.budget_note:
        lines.append(f'<div class="nota">{_esc(beat.budget_note)}</div>')
    return f'<div class="par {"saudavel" if alive else "falhando"} vigiar">' + "".join(lines) + "</div>"


# ============================================================================
# Painel web e /status.json (bloco à parte, antes da linha de comando) (servidor HTTP da biblioteca padrão)
# ============================================================================

PANEL_DEFAULT_PORT = 8765
PANEL_LIST_LIMIT = 200  # itens por lista no painel; o resto vira "… e mais N"
CHART_RUNS = 30  # execuções no gráfico

# MODE_LABELS e SITUATION_LABELS são lidas com o texto gravado no histórico (Mode e PairStatus são str)
MODE_LABELS: dict[str, str] = {Mode.ONE_WAY: "unidirecional", Mode.TWO_WAY: "bidirecional", Mode.RESTORE: "restauração",
                               Mode.CHECK: "verificação"}
RECORD_KINDS = {kind: kind.noun for kind in RecordKind}
SITUATION_LABELS: dict[str, str] = {PairStatus.OK: "ok", PairStatus.FAILURES: "com falhas", PairStatus.ERROR: "erro",
                                    PairStatus.HELD: "exclusões retidas", PairStatus.RUNNING: "em andamento",
                                    PairStatus.INTERRUPTED: "interrompida"}


def _parse_iso(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def zone_label(moment: dt.datetime) -> str:
    """Fuso de um horário já convertido: "UTC", "-03", "+05:30"."""
    minutes = int((moment.utcoffset() or dt.timedelta(0)).total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    hours, rest = divmod(abs(minutes), 60)
    return f"{'-' if minutes < 0 else '+'}{hours:02d}" + (f":{rest:02d}" if rest else "")


def local_time(text: str | None, seconds: bool = False) -> str:
    """Horário ISO do histórico (UTC) no fuso desta máquina, com o fuso à vista: "30/11/2026 14:05 (-03)"."""
    moment = _parse_iso(text)
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    local = moment.astimezone()
    return local.strftime("%d/%m/%Y %H:%M:%S" if seconds else "%d/%m/%Y %H:%M") + f" ({zone_label(local)})"


def with_count(count: int, singular: str, plural: str | None = None) -> str:
    """"1 escrita", "2 escritas"."""
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def age_text(minutes: float) -> str:
    """"há 5 min", "há 3 h 10 min", "há 2 dias"."""
    minutes = max(0, int(minutes))
    if minutes < 60:
        return f"há {minutes} min"
    if minutes < 48 * 60:
        return f"há {minutes // 60} h {minutes % 60} min"
    return f"há {with_count(minutes // (24 * 60), 'dia')}"


def mode_label(mode: str | None) -> str:
    return MODE_LABELS.get(mode or "", mode or "—")


def situation_label(situation: str | None) -> str:
    return SITUATION_LABELS.get(situation or "", situation or "—")


def writes_by_side(row: HistoryRow) -> tuple[int, int]:
    """(escritas no backup, escritas no principal) de uma linha do histórico."""
    return row.writes


def writes_phrase(backup: int, primary: int, mode: Mode | str | None) -> str:
    """Onde as escritas foram parar: "backup 3 · principal 2" (o principal só quando o modo grava nele)."""
    if backup == 0 and primary == 0:
        return "nenhuma"
    parts = []
    if backup or mode != Mode.RESTORE:
        parts.append(f"backup {backup}")
    if primary or mode in (Mode.TWO_WAY, Mode.RESTORE):
        parts.append(f"principal {primary}")
    return " · ".join(parts)


def writes_text(row: HistoryRow) -> str:
    return writes_phrase(*writes_by_side(row), row.mode)


def parity_text(row: HistoryRow) -> str:
    total = row.parity_total
    return "—" if total is None else f"{total - row.parity_different}/{total}"


def failures_of(row: HistoryRow) -> int:
    return row.failures


def duration_text(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f} s".replace(".", ",")


def configured_pairs(get: Callable[..., Any], primary_cli: str | None = None,
                     backup_cli: str | None = None) -> list[tuple[str, str]] | None:
    """Pares (principal, backup) da configuração atual (opções, ambiente, .env), só pelas URLs (sem senha).
    None quando SERVIDOR_PRINCIPAL ou SERVIDOR_BACKUP não estão configurados."""
    primary = get("SERVIDOR_PRINCIPAL", primary_cli)
    backups = [part.strip() for part in str(get("SERVIDOR_BACKUP", backup_cli) or "").split(",") if part.strip()]
    if not primary or not backups:
        return None
    primary_url = normalize_url(primary)
    return [(primary_url, normalize_url(url)) for url in backups]


def pair_health(rows: list[HistoryRow], max_delay_min: float, now: dt.datetime,
                current: list[tuple[str, str]] | None = None) -> list["PanelPair"]:
    """Estado de cada par (principal → backup) a partir das execuções, da mais nova para a mais antiga.
    current: pares da configuração atual ("atual": True, mesmo sem execução); os demais saem com
    "atual": False. None: todos os pares do histórico contam. Verificações não mudam o estado."""
    pairs: dict[tuple[str, str], _PairRuns] = {}
    for primary, backup in current or []:
        pairs.setdefault((primary, backup), _PairRuns())
    for row in rows:
        info = pairs.setdefault((row.primary, row.backup), _PairRuns())
        if row.status == PairStatus.RUNNING:
            info.running = True
        elif row.mode != Mode.CHECK:
            info.last = info.last or row
            if row.status == PairStatus.OK:
                info.success = info.success or row
    wanted = None if current is None else {tuple(key) for key in current}
    return [_pair_state(key, info, max_delay_min, now, wanted is None or key in wanted)
            for key, info in pairs.items()]


@dataclasses.dataclass
class _PairRuns:
    """As execuções de um par que decidem o estado dele (pair_health)."""
    last: HistoryRow | None = None
    success: HistoryRow | None = None
    running: bool = False


@dataclasses.dataclass(frozen=True)
class PanelPair:
    """O estado de um par no painel e no /status.json (pair_health): as decisões (vermelho/verde, o status
    503, os cartões) leem os campos; o /status.json e o HTML mostram `doc` (também por pair["chave"])."""
    primary: str
    backup: str
    current: bool
    state: PanelState
    last: HistoryRow | None
    success: HistoryRow | None
    delay_min: float | None  # minutos desde o último sucesso (arredondado como no /status.json)
    doc: dict[str, Any] = dataclasses.field(repr=False, compare=False)

    @property
    def healthy(self) -> bool:
        return self.state == PanelState.HEALTHY

    def __getitem__(self, key: str) -> Any:
        return self.doc[key]


def _pair_state(key: tuple[str, str], info: _PairRuns, max_delay_min: float, now: dt.datetime,
                current: bool) -> PanelPair:
    last, success = info.last, info.success
    ended = _parse_iso(success.ended) if success else None
    delay = (now - ended).total_seconds() / 60 if ended else None
    if last is None:
        state = PanelState.FIRST_RUNNING if info.running else PanelState.NEVER
    elif last.status != PairStatus.OK:
        state = PanelState.FAILING
    elif delay is None or delay > max_delay_min:
        state = PanelState.LATE
    else:
        state = PanelState.HEALTHY
    backup_writes, primary_writes = writes_by_side(last) if last else (0, 0)
    delay_min = None if delay is None else round(delay, 1)
    return PanelPair(key[0], key[1], current, state, last, success, delay_min, {
        "principal": key[0], "backup": key[1], "atual": current, "estado": state,
        "saudavel": state == PanelState.HEALTHY,
        "ultima_execucao": last.ended if last else None, "ultima_situacao": last.status if last else None,
        "ultimo_modo": last.mode if last else None, "ultimo_erro": last.columns["erro"] if last else None,
        "ultimo_sucesso": success.ended if success else None,
        "atraso_min": delay_min,
        "escritas": {"backup": backup_writes, "principal": primary_writes},
        "paridade": parity_text(last) if last and last.parity_total is not None else None,
        "conflitos": last.conflicts if last else 0,
        "liberadas_so_no_backup": len(last.backup_only_allowed) if last else 0,
        "divergencias": last.divergences if last else 0,
        "detalhes": last.details if last else {}, "ultima": last,
    })


def panel_pairs(history: History, max_delay_min: float, now: dt.datetime,
                current: list[tuple[str, str]] | None) -> list[PanelPair]:
    """pair_health sobre as execuções recentes mais a última e o último sucesso de cada par atual
    (por mais antigos que sejam)."""
    rows = history.runs(300)
    seen = {row.id for row in rows}
    for primary, backup in current or []:
        for ok_only in (False, True):
            row = history.latest(primary, backup, ok_only)
            if row is not None and row.id not in seen:
                rows.append(row)
                seen.add(row.id)
    rows.sort(key=lambda row: row.id, reverse=True)
    return watch_pairs(pair_health(rows, max_delay_min, now, current), read_watch(os.path.dirname(history.path)),
                       now, max_delay_min)


def _public_pair(pair: PanelPair) -> dict[str, Any]:
    return {k: v for k, v in pair.doc.items() if k not in ("detalhes", "ultima")}


def status_message(judged: list[PanelPair]) -> str:
    if not judged:
        return "nenhuma execução registrada"
    problems = []
    for p in judged:
        if p.healthy:
            continue
        if p.state == PanelState.NEVER:
            problems.append(f"{p.backup}: nenhuma execução registrada com a configuração atual "
                            "(o status fica 503 até a primeira sincronização deste backup)")
        else:
            problems.append(f"{p.backup}: {p.state}")
    if not problems:
        return "todos os backups sincronizados"
    more = f"; … e mais {len(problems) - 5}" if len(problems) > 5 else ""
    return "há backups que precisam de atenção: " + "; ".join(problems[:5]) + more


def unrecorded_failure(history: History) -> dict[str, Any] | None:
    """A última execução, quando ela falhou sem linha no histórico (configuração sem nenhum par legível):
    o que o painel e o /status.json mostram dela (do LastRun); None quando a última execução está no
    histórico (o caso comum)."""
    last = read_last_run(os.path.join(os.path.dirname(history.path), LAST_RUN_FILE))
    if last is None or last.recorded is not False or not last.code:
        return None
    return {"fim": last.ended, "codigo_saida": last.code,
            "erro": mask(last.first_error or last.message or "")}


def status_document(history: History, max_delay_min: float,
                    current: list[tuple[str, str]] | None = None) -> tuple[int, dict[str, Any]]:
    """Resposta de /status.json: 200 se cada par da configuração atual teve sucesso recente, 503 caso
    contrário. Pares de configurações antigas vêm em "pares_antigos" e não contam. Uma última execução
    que parou antes de ter pares (configuração ilegível) também deixa 503."""
    now = dt.datetime.now(dt.timezone.utc)
    pairs = panel_pairs(history, max_delay_min, now, current)
    judged = [p for p in pairs if p.current]
    stopped = unrecorded_failure(history)
    ok = bool(judged) and all(p.healthy for p in judged) and stopped is None
    message = status_message(judged)
    watch = read_watch(os.path.dirname(history.path))
    if watch is not None and watch.active and not watch.alive(now):
        message = watch.stale_text(now)
    if stopped:
        message = f"a última execução parou antes de sincronizar: {stopped['erro']}"
    return status_body(ok, message, max_delay_min, current, stopped=stopped,
                       vigiar=watch.summary(now) if watch else None,
                       pairs=[_public_pair(p) for p in judged],
                       old_pairs=[_public_pair(p) for p in pairs if not p.current])


def status_body(ok: bool, message: str, max_delay_min: float, current: list[tuple[str, str]] | None,
                stopped: dict[str, Any] | None = None, pairs: Sequence[dict[str, Any]] = (),
                old_pairs: Sequence[dict[str, Any]] = (), **extra: Any) -> tuple[int, dict[str, Any]]:
    """(código HTTP, documento) do /status.json: 200 só quando ok; os mesmos campos em todo caso."""
    body = {"ok": ok, "gerado_em": now_iso(), "max_atraso_min": max_delay_min, "mensagem": message,
            "configuracao_atual": current is not None, "ultima_execucao_parada": stopped, **extra,
            "pares": list(pairs), "pares_antigos": list(old_pairs)}
    return (200 if ok else 503), body


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def chart_points(rows: list[HistoryRow]) -> list[dict[str, Any]]:
    """Uma entrada por execução (somando os pares dela), da mais antiga à mais nova."""
    points: dict[str, dict[str, Any]] = {}
    for row in reversed(rows):
        if row.status == PairStatus.RUNNING:
            continue
        point = points.setdefault(row.run_id, {"inicio": row.started, "modo": row.mode, "backup": 0,
                                               "principal": 0, "falhou": False, "iguais": 0, "total": None})
        backup, primary = writes_by_side(row)
        point["backup"] += backup
        point["principal"] += primary
        point["falhou"] = point["falhou"] or row.status != PairStatus.OK or failures_of(row) > 0
        if row.parity_total is not None:
            point["total"] = (point["total"] or 0) + row.parity_total
            point["iguais"] += row.parity_total - row.parity_different
    return list(points.values())[-CHART_RUNS:]


def _parity_pct(point: dict[str, Any]) -> float | None:
    if point["total"] is None:
        return None
    return 100.0 if point["total"] == 0 else 100.0 * point["iguais"] / point["total"]


def _chart_tooltip(point: dict[str, Any]) -> str:
    pct = _parity_pct(point)
    parity = "paridade não medida" if pct is None else f"paridade {point['iguais']}/{point['total']} ({pct:.0f}%)"
    return (f"{local_time(point['inicio'])} · {mode_label(point['modo'])} · mudanças: "
            f"{writes_phrase(point['backup'], point['principal'], point['modo'])} · {parity} · "
            f"{'com erro ou falhas' if point['falhou'] else 'ok'}")


def _label_indexes(count: int, most: int = 4) -> list[int]:
    """Quais execuções ganham data no eixo: a primeira, a última e algumas entre elas."""
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def render_chart(rows: list[HistoryRow], width: int = 480, height: int = 210) -> str:
    """Gráfico SVG das execuções (da mais antiga à mais nova): barras com as escritas no backup e no
    principal, linha com a paridade depois de cada execução e datas no eixo. A legenda fica fora do SVG."""
    points = chart_points(rows)
    if not points:
        return '<p class="vazio">Sem execuções para o gráfico.</p>'
    peak = max([p["backup"] + p["principal"] for p in points] + [1])
    left, right, top, bottom = 14 + 10 * len(str(peak)), 58, 12, 44  # margens para os rótulos dos eixos
    plot_w, plot_h = width - left - right, height - top - bottom
    base = top + plot_h
    step = plot_w / len(points)
    bar_w = min(step * 0.6, 36.0)
    parts = [f'<line x1="{left}" y1="{top}" x2="{left + plot_w}" y2="{top}" stroke="#e3e3e3"/>',
             f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#888"/>',
             f'<text class="eixo" x="{left - 5}" y="{top + 5}" text-anchor="end">{peak}</text>',
             f'<text class="eixo" x="{left - 5}" y="{base}" text-anchor="end">0</text>',
             f'<text class="eixo paridade" x="{left + plot_w + 5}" y="{top + 5}">100%</text>',
             f'<text class="eixo paridade" x="{left + plot_w + 5}" y="{base}">0%</text>']
    line = []
    for index, point in enumerate(points):
        center = left + step * (index + 0.5)
        parts.append(_chart_column(point, left + step * index, step, center - bar_w / 2, bar_w, top, plot_h, peak))
        pct = _parity_pct(point)
        if pct is not None:
            line.append((center, top + plot_h * (1 - pct / 100)))
    if line:
        parts.append('<polyline class="linha-paridade" fill="none" stroke="#27ae60" stroke-width="2" points="'
                     + " ".join(f"{x:.1f},{y:.1f}" for x, y in line) + '"/>')
        parts += [f'<circle class="ponto-paridade" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#27ae60"/>' for x, y in line]
    for index in _label_indexes(len(points)):
        moment = _parse_iso(points[index]["inicio"])
        if moment is None:
            continue
        local = (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).astimezone()
        x = left + step * (index + 0.5)
        parts.append(f'<text class="data" x="{x:.1f}" y="{base + 16}" text-anchor="middle">{local:%d/%m}'
                     f'<tspan x="{x:.1f}" dy="16">{local:%H:%M}</tspan></text>')
    return (f'<figure class="grafico"><svg viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Mudanças e paridade por execução" xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
            f'{_chart_caption(peak)}</figure>')


def _chart_column(point: dict[str, Any], x0: float, step: float, x: float, bar_w: float, top: float,
                  plot_h: float, peak: int) -> str:
    """Uma execução no gráfico: área de toque com a dica e as barras empilhadas (backup embaixo)."""
    base = top + plot_h
    colors = ("#c0392b", "#922b21") if point["falhou"] else ("#2e86de", "#8e44ad")
    h_backup = plot_h * point["backup"] / peak
    h_primary = plot_h * point["principal"] / peak
    if point["falhou"] and h_backup + h_primary < 4:
        h_backup = 4.0  # execução com erro e sem escritas: um traço vermelho, para não sumir
    bars = [f'<rect class="alvo" x="{x0:.1f}" y="{top}" width="{step:.1f}" height="{plot_h}" fill="transparent"/>']
    if h_backup > 0:
        bars.append(f'<rect class="barra backup" x="{x:.1f}" y="{base - h_backup:.1f}" width="{bar_w:.1f}" '
                    f'height="{h_backup:.1f}" fill="{colors[0]}"/>')
    if h_primary > 0:
        bars.append(f'<rect class="barra principal" x="{x:.1f}" y="{base - h_backup - h_primary:.1f}" '
                    f'width="{bar_w:.1f}" height="{h_primary:.1f}" fill="{colors[1]}"/>')
    return f'<g class="coluna"><title>{_esc(_chart_tooltip(point))}</title>{"".join(bars)}</g>'


def _chart_caption(peak: int) -> str:
    zone = zone_label(dt.datetime.now().astimezone())
    return ('<figcaption><span class="cor cor-backup"></span>escritas no backup · '
            '<span class="cor cor-principal"></span>escritas no principal · '
            '<span class="cor cor-erro"></span>execução com erro ou falhas · '
            '<span class="cor linha cor-paridade"></span>paridade depois da execução '
            f'(% das licenças com o mesmo veredito, escala à direita). Escala das barras: até '
            f'{with_count(peak, "mudança")} por execução; horários em {_esc(zone)}. No computador, passe o mouse sobre '
            'uma barra para ver os números dela.</figcaption>')


PANEL_CSS = (
    """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:1rem;background:#f5f6f8;
color:#222;line-height:1.35}
h1{font-size:1.4rem;margin:.2rem 0 1rem} h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.pares{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:.8rem}
.par{background:#fff;border-radius:8px;padding:.8rem;border-left:6px solid #999;box-shadow:0 1px 2px #0002}
.par.saudavel{border-color:#27ae60}.par.atrasado{border-color:#f39c12}.par.falhando{border-color:#c0392b}
.estado{font-weight:bold;margin-bottom:.2rem} .url{overflow-wrap:anywhere;font-size:.9rem;color:#444}
.papel{display:inline-block;min-width:4.6rem;font-weight:600;color:#555} .nota{color:#555;font-size:.9rem}
.tabela{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.85rem}
th,td{padding:.35rem .4rem;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
td{overflow-wrap:break-word} .rotulo{display:none} .erro{color:#a93226;font-size:.8rem;max-width:30em} """
    """.id{color:#666;font-size:.8rem}
figure.grafico{margin:0;background:#fff;border-radius:8px;padding:.5rem .6rem;max-width:640px}
figure.grafico svg{width:100%;height:auto;display:block}
figure.grafico text{font-size:14px;fill:#444} figure.grafico text.paridade{fill:#1e8449}
figcaption{font-size:.8rem;color:#444;margin-top:.4rem}
.cor{display:inline-block;width:.8em;height:.8em;border-radius:2px;vertical-align:-.1em;margin-right:.25em}
.cor.linha{height:.25em;vertical-align:.2em}
.cor-backup{background:#2e86de}.cor-principal{background:#8e44ad}.cor-erro{background:#c0392b}
.cor-paridade{background:#27ae60}
details.antigas{margin-top:1.6rem;background:#e9ecf0;border-radius:8px;padding:.6rem .8rem}
details.antigas summary{cursor:pointer;font-weight:600}
.parada{margin-bottom:.8rem}
.vazio{color:#666;font-style:italic} footer{margin-top:1.5rem;font-size:.8rem;color:#666}
@media (max-width:820px){
body{padding:.75rem}
table.cartoes,table.cartoes tbody,table.cartoes tr,table.cartoes td{display:block;width:100%}
table.cartoes{background:none} table.cartoes thead{display:none}
table.cartoes tr{background:#fff;border-radius:8px;margin:0 0 .6rem;padding:.4rem .6rem;box-shadow:0 1px 2px #0002}
table.cartoes td{display:flex;gap:.6rem;border:0;padding:.2rem 0;overflow-wrap:anywhere}
table.cartoes .rotulo{display:block;flex:0 0 6.2rem;font-weight:600;color:#555}
table.cartoes .valor{flex:1 1 auto;min-width:0}
figure.grafico text{font-size:17px}
}
"""
)


def render_panel(history: History, max_delay_min: float, refresh_s: int = 60,
                 current: list[tuple[str, str]] | None = None) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    pairs = panel_pairs(history, max_delay_min, now, current)
    present = [p for p in pairs if p.current]
    rows = history.runs(200, current)
    parts = [
        _panel_head(refresh_s),
        "<h2>Estado agora</h2>", _render_config_note(current), _render_stopped(unrecorded_failure(history)),
        _render_pairs(present), _render_watch(read_watch(os.path.dirname(history.path)), present, now),
        _render_failover(present), _render_backup_only(present),
        "<h2>Mudanças e paridade por execução</h2>", render_chart(rows),
        "<h2>Últimas execuções</h2>", _render_runs(rows[:25]),
        "<h2>Conflitos abertos</h2>", _render_conflicts(present),
        "<h2>Divergências não sincronizáveis (última execução)</h2>", _render_divergences(present),
        _render_old_pairs([p for p in pairs if not p.current], history),
        f"<footer>Atualizado em {_esc(local_time(now.isoformat(), seconds=True))} · horários no fuso desta "
        f"máquina · recarrega a cada {refresh_s} s · atraso máximo aceito: {max_delay_min:.0f} min · "
        "<a href=\"status.json\">status.json</a></footer>",
        "</body></html>",
    ]
    return "".join(parts)


def damaged_history_message(data_dir: str, exc: BaseException) -> str:
    return (f"O histórico {os.path.join(data_dir, HISTORY_FILE)} está danificado ({exc}): o painel não sabe o "
            "estado dos pares. A próxima sincronização o guarda ao lado, com a data no nome, e começa um novo.")


def _panel_head(refresh_s: int) -> str:
    """Início de toda página do painel: cabe no celular, recarrega sozinha, o único estilo (hash na CSP)."""
    return ("<!DOCTYPE html><html lang=\"pt-BR\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta http-equiv="refresh" content="{refresh_s}">'
            f"<title>Sincronização dos servidores de licença</title><style>{PANEL_CSS}</style></head><body>"
            "<h1>Sincronização dos servidores de licença</h1>")


def render_damaged_panel(message: str, refresh_s: int = 60) -> str:
    return (_panel_head(refresh_s) + "<h2>Estado agora</h2>"
            '<div class="par falhando parada"><div class="estado">HISTÓRICO DANIFICADO</div>'
            f'<div class="erro">{_esc(message)}</div></div>'
            '<footer><a href="status.json">status.json</a></footer></body></html>')


def _render_config_note(current: list[tuple[str, str]] | None) -> str:
    if current is not None:
        return ""
    return ('<p class="nota">SERVIDOR_PRINCIPAL e SERVIDOR_BACKUP não estão configurados para o painel: '
            "todos os pares do histórico contam para o status.</p>")


def _render_stopped(stopped: dict[str, Any] | None) -> str:
    """Cartão vermelho da última execução que parou antes de ter pares (não está no histórico)."""
    if not stopped:
        return ""
    return ('<div class="par falhando parada"><div class="estado">ÚLTIMA EXECUÇÃO PAROU ANTES DE SINCRONIZAR</div>'
            f'<div>Em {_esc(local_time(stopped["fim"]))} — código {_esc(stopped["codigo_saida"])}</div>'
            f'<div class="erro">Erro: {_esc(stopped["erro"])}</div>'
            '<div class="nota">Corrija a configuração (.env) e rode a sincronização: os pares abaixo mostram a '
            "última execução que chegou até eles.</div></div>")


def _render_failover(pairs: list[PanelPair]) -> str:
    """Cartão da rota de falha (detalhes["rota_de_falha"] da última execução); vazio quando nenhum par a tem."""
    if not any(p.last and p.last.failover for p in pairs):
        return ""
    return "<h2>Rota de falha dos clientes</h2>" + render_failover_card(latest_failover(pairs))


def backup_only_allowed(pair: PanelPair) -> list[str]:
    """Licenças que a última execução do par viu só no backup e LIBERADAS lá (o principal negaria)."""
    return list(pair.last.backup_only_allowed) if pair.last else []


def _render_backup_only(pairs: list[PanelPair]) -> str:
    """O mesmo aviso do terminal: licença só no backup e liberada lá (o principal não a conhece e negaria)."""
    items = [(p, backup_only_allowed(p)) for p in pairs]
    items = [(p, keys) for p, keys in items if keys]
    if not items:
        return ""
    rows = [("so-no-backup", [f"{_esc(p.primary)}<br>→ {_esc(p.backup)}",
                              _esc(with_count(len(keys), "licença")),
                              _esc(", ".join(keys[:PANEL_LIST_LIMIT])
                                   + (" …" if len(keys) > PANEL_LIST_LIMIT else ""))])
            for p, keys in items]
    return ("<h2>Licenças liberadas só no backup</h2>"
            '<p class="nota">⚠️ O principal não conhece estas licenças e negaria; o backup as libera para quem cair '
            "nele. Bloqueie ou apague no backup, ou cadastre no principal (--espelhar apaga no backup).</p>"
            + _table(["Principal → Backup", "Quantas", "Licenças"], rows, "so-no-backup"))


def _render_pairs(pairs: list[PanelPair]) -> str:
    if not pairs:
        return '<p class="vazio">Nenhuma sincronização registrada ainda.</p>'
    return f'<div class="pares">{"".join(_render_pair_card(p) for p in pairs)}</div>'


def _render_pair_card(p: PanelPair) -> str:
    css = {PanelState.HEALTHY: "saudavel", PanelState.LATE: "atrasado",
           PanelState.FAILING: "falhando"}.get(p.state, "sem-execucoes")
    lines = [f'<div class="estado">{_esc(p.state).upper()}</div>',
             f'<div class="url"><span class="papel">Principal</span> {_esc(p.primary)}</div>',
             f'<div class="url"><span class="papel">Backup</span> {_esc(p.backup)}</div>']
    last = p.last
    if last is None:
        note = ("a primeira execução ainda não terminou" if p.state != PanelState.NEVER else
                "nenhuma execução registrada para este par; o status.json fica 503 (vermelho) até a primeira "
                "sincronização dele")
        lines.append(f'<div class="nota">{note}.</div>')
    else:
        delay = "" if p.delay_min is None else f" ({age_text(p.delay_min)})"
        success = local_time(p.success.ended) if p.success and p.success.ended else "nunca"
        lines += [f'<div>Última execução: {_esc(local_time(last.ended))} — '
                  f'{_esc(situation_label(last.status))} ({_esc(mode_label(last.mode))})</div>',
                  f'<div>Mudanças: {_esc(writes_text(last))} · paridade {_esc(parity_text(last))}</div>',
                  f'<div>Último sucesso: {_esc(success)}{_esc(delay)}</div>']
        if last.error:
            lines.append(f'<div class="erro">Erro: {_esc(p["ultimo_erro"])}</div>')  # o vigiar pode trocá-lo
        allowed = backup_only_allowed(p)
        if allowed:
            lines.append(f'<div class="erro">⚠️ {_esc(with_count(len(allowed), "licença"))} só no backup e '
                         "liberada(s) lá (o principal negaria)</div>")
    return (f'<div class="par {css}" data-principal="{_esc(p.primary)}" data-backup="{_esc(p.backup)}">'
            + "".join(lines) + "</div>")


def _table(headers: list[str], rows: list[tuple[str, list[str]]], css: str = "", more: int = 0) -> str:
    """Tabela que vira cartões no celular: cada célula leva o rótulo da coluna (mostrado só na tela estreita).
    rows: (classe da linha, células já em HTML). more: itens que ficaram de fora ("… e mais N")."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = [f'<tr class="{row_class}">' + "".join(
        f'<td><span class="rotulo">{_esc(h)}</span><span class="valor">{cell}</span></td>'
        for h, cell in zip(headers, cells, strict=False)) + "</tr>" for row_class, cells in rows]
    if more > 0:
        body.append(f'<tr class="mais"><td colspan="{len(headers)}">… e mais {more}</td></tr>')
    return (f'<div class="tabela"><table class="cartoes {css}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


RUN_HEADERS = ["Início", "Principal → Backup", "Modo", "Situação", "Mudanças", "Falhas", "Paridade", "Duração",
               "Execução"]


def _render_runs(rows: list[HistoryRow]) -> str:
    if not rows:
        return '<p class="vazio">Nenhuma execução.</p>'
    lines = []
    for r in rows:
        error = f'<div class="erro">{_esc(r.error[:300])}</div>' if r.error else ""
        lines.append(("execucao", [
            _esc(local_time(r.started)), f"{_esc(r.primary)}<br>→ {_esc(r.backup)}",
            _esc(mode_label(r.mode)), _esc(situation_label(r.status)) + error, _esc(writes_text(r)),
            str(failures_of(r)), _esc(parity_text(r)), _esc(duration_text(r["duracao_s"])),
            f'<span class="id">#{r.id}</span> {_esc(r.run_id)}']))
    return _table(RUN_HEADERS, lines, "execucoes")


def _render_conflicts(pairs: list[PanelPair]) -> str:
    items = [(p, c) for p in pairs if p.last for c in p.last.conflict_samples]
    if not items:
        return '<p class="vazio">Nenhum conflito aberto.</p>'
    total = max(len(items), sum(p.last.conflicts for p in pairs if p.last))
    rows = [("conflito", [f"{_esc(p.primary)}<br>→ {_esc(p.backup)}",
                          f"{_esc(c.kind.noun if isinstance(c.kind, RecordKind) else c.kind)} {_esc(c.key)}",
                          _esc(c.description) + (f'<div class="nota">{_esc(c.resolution)}</div>'
                                                 if c.resolution else "")])
            for p, c in items[:PANEL_LIST_LIMIT]]
    return _table(["Principal → Backup", "Registro", "Conflito"], rows, "conflitos", total - len(rows))


def _render_divergences(pairs: list[PanelPair]) -> str:
    items = [(p, d) for p in pairs if p.last for d in p.last.divergence_samples]
    if not items:
        return '<p class="vazio">Nenhuma divergência registrada.</p>'
    total = max(len(items), sum(p.last.divergences for p in pairs if p.last))
    totals = "; ".join(f"{_esc(p.backup)}: " + ", ".join(f"{_esc(k)} {v}" for k, v in p.last.divergences_by_field)
                       for p in pairs if p.last and p.last.divergences_by_field)
    rows = [("divergencia", [f"{_esc(p.primary)}<br>→ {_esc(p.backup)}",
                             f"{_esc(d.kind.noun if isinstance(d.kind, RecordKind) else d.kind)} {_esc(d.key)}",
                             _esc(d.field), _esc(d.primary), _esc(d.backup), _esc(d.note)])
            for p, d in items[:PANEL_LIST_LIMIT]]
    return (f"<p>Totais por campo — {totals}</p>" +
            _table(["Principal → Backup", "Registro", "Campo", "No principal", "No backup", "Por quê"], rows,
                   "divergencias",
                   total - len(rows)))


def _render_old_pairs(old: list[PanelPair], history: History) -> str:
    """Pares que não estão mais na configuração: dobrados, informativos, fora do status.json."""
    if not old:
        return ""
    rows = history.runs(10, [(p.primary, p.backup) for p in old])
    return (f'<details class="antigas"><summary>Configurações antigas (fora do status.json): '
            f'{with_count(len(old), "par", "pares")}</summary>'
            '<p class="nota">Servidores que já foram sincronizados mas não estão mais em SERVIDOR_PRINCIPAL / '
            "SERVIDOR_BACKUP. O histórico deles some sozinho depois de SYNC_HISTORICO_DIAS.</p>"
            f'<div class="pares">{"".join(_render_pair_card(p) for p in old)}</div>'
            f"<h3>Últimas execuções desses pares</h3>{_render_runs(rows)}</details>")


# Só o <style> da própria página (pelo hash dele) e nenhum script: um texto vindo do servidor que escapasse
# do HTML não roda. Sem quadros, formulários nem <base>; sem Referer (o ?token= não vaza por links).
PANEL_CSP = ("default-src 'none'; style-src 'sha256-"
             + base64.b64encode(hashlib.sha256(PANEL_CSS.encode("utf-8")).digest()).decode()
             + "'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def panel_host_names(bound_host: str, names: str | None) -> set[str]:
    """Nomes aceitos no cabeçalho Host do painel: os desta máquina (127.0.0.1, localhost, ::1), o endereço
    em que o painel escuta e os de PAINEL_NOMES (separados por vírgula, ex.: "loja-pc,painel.loja.lan")."""
    accepted = {"127.0.0.1", "localhost", "::1", bound_host.strip("[]").lower()}
    accepted |= {n.strip().strip("[]").lower().rstrip(".") for n in (names or "").split(",") if n.strip()}
    return accepted


def panel_host_ok(header: str | None, accepted: set[str], port: int, wildcard: bool) -> bool:
    """O Host do pedido é um nome aceito e a porta é a do painel: uma página de outro site que faça o nome
    dela apontar para cá (DNS rebinding) chega com o nome dela e é recusada. Escutando em 0.0.0.0/::, vale
    também qualquer IP literal (um IP não é renomeável)."""
    found = re.fullmatch(r"\[?([^\[\]]+?)\]?(?::(\d+))?", (header or "").strip())
    if not found:
        return False
    name, given_port = found.group(1).lower().rstrip("."), found.group(2)
    if given_port is not None and int(given_port) != port:
        return False
    if given_port is None and port != 80:
        return False
    if name in accepted:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return wildcard


def make_panel_handler(data_dir: str, token: str | None, max_delay_min: float,
                       current: Callable[[], list[tuple[str, str]] | None] | None = None,
                       host_ok: Callable[[str | None], bool] | None = None):
    """current: devolve os pares da configuração atual a cada pedido (None: todos os pares contam).
    host_ok: confere o cabeçalho Host (None: qualquer um)."""

    class PanelHandler(http.server.BaseHTTPRequestHandler):
        server_version = "painel-sincronizacao"
        sys_version = ""
        timeout = PANEL_IDLE_TIMEOUT  # cada leitura e escrita da conexão (um cliente que para no meio é largado)

        def log_message(self, fmt: str, *args: Any) -> None:  # sem token nos logs
            sys.stderr.write(terminal_text(f"   painel: {self.address_string()} {fmt % args}") + "\n")

        def _authorized(self) -> bool:
            if not token:
                return True
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            given = (query.get("token") or [""])[0]
            header = self.headers.get("Authorization", "")
            if header.startswith("Bearer "):
                given = header[7:]
            return secrets.compare_digest(given.encode(), token.encode())

        def _send(self, status: int, body: str, content_type: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", PANEL_CSP)
            self.send_header("X-Frame-Options", "DENY")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (nome exigido pelo http.server)
            if host_ok and not host_ok(self.headers.get("Host")):
                self._send(403, json.dumps({"erro": "nome de host não aceito pelo painel: abra pelo endereço "
                                                    "mostrado ao iniciá-lo ou inclua o nome em PAINEL_NOMES"},
                                           ensure_ascii=False), "application/json; charset=utf-8")
                return
            if not self._authorized():
                self._send(401, json.dumps({"erro": "token do painel ausente ou inválido"}), "application/json")
                return
            path = urllib.parse.urlsplit(self.path).path
            if path not in ("/", "/index.html", "/status.json"):
                self._send(404, json.dumps({"erro": "não encontrado"}), "application/json")
                return
            pairs = current() if current else None
            try:
                self._answer(path, pairs)
            except sqlite3.Error as exc:
                if not is_damaged_database(exc):
                    raise
                self._answer_damaged(path, pairs, exc)

        def _answer(self, path: str, pairs: list[tuple[str, str]] | None) -> None:
            history = History(data_dir)
            try:
                if path == "/status.json":
                    status, body = status_document(history, max_delay_min, pairs)
                    self._send(status, json.dumps(body, ensure_ascii=False), "application/json; charset=utf-8")
                else:
                    self._send(200, render_panel(history, max_delay_min, current=pairs), "text/html; charset=utf-8")
            finally:
                history.close()

        def _answer_damaged(self, path: str, pairs: list[tuple[str, str]] | None, exc: sqlite3.Error) -> None:
            """Histórico ilegível: vermelho (503), nunca o último estado bom nem um erro sem resposta."""
            message = damaged_history_message(data_dir, exc)
            if path == "/status.json":
                status, body = status_body(False, message, max_delay_min, pairs, historico_danificado=True)
                self._send(status, json.dumps(body, ensure_ascii=False), "application/json; charset=utf-8")
            else:
                self._send(503, render_damaged_panel(message), "text/html; charset=utf-8")

    return PanelHandler


PANEL_IDLE_TIMEOUT = 10.0  # segundos que uma conexão do painel pode ficar calada (antes do pedido ou no meio)
PANEL_WORKERS = 8  # threads que respondem pedidos (o painel é leve; o resto espera na fila)
PANEL_MAX_WAITING = 256  # conexões abertas esperando o pedido chegar; passando disso, a mais antiga é fechada


class PanelServer(http.server.HTTPServer):
    """O servidor do painel: uma thread só espera (com um seletor) o primeiro byte de cada conexão, e só então
    ela vai para um grupo fixo de PANEL_WORKERS threads. Conexão calada por PANEL_IDLE_TIMEOUT é fechada, e
    acima de PANEL_MAX_WAITING a mais antiga sai: centenas de conexões mudas (um scanner, um proxy, um
    ataque) não criam centenas de threads nem esgotam os descritores, e o painel continua respondendo."""

    # fila de conexões que o sistema completa antes do accept (o padrão do socketserver é 5): numa rajada, com
    # ela cheia, o sistema descarta o SYN e o cliente só tenta de novo 1 s depois (e 3, 7 s...): o navegador
    # esperava atrás de uma rajada de conexões mudas
    request_queue_size = PANEL_MAX_WAITING

    def __init__(self, address: tuple[str, int], handler: Any, workers: int = PANEL_WORKERS,
                 idle: float = PANEL_IDLE_TIMEOUT, max_waiting: int = PANEL_MAX_WAITING):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.request_queue_size = max_waiting  # antes do listen (em super().__init__)
        super().__init__(address, handler)
        self.idle, self.max_waiting = idle, max_waiting
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="painel")
        self._incoming: list[tuple[Any, Any]] = []  # conexões aceitas, ainda não vistas pela thread de espera
        self._incoming_lock = threading.Lock()
        self._stopping = threading.Event()
        self._waiter = threading.Thread(target=self._wait_loop, name="painel-espera", daemon=True)
        self._waiter.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._incoming_lock:
            self._incoming.append((request, client_address))

    def _wait_loop(self) -> None:
        """Só esta thread mexe no seletor: registra as novas, manda as que têm dados para o grupo de threads e
        fecha as caladas demais (ou as mais antigas, acima do limite)."""
        import selectors
        selector = selectors.DefaultSelector()
        waiting: dict[Any, tuple[Any, float]] = {}  # conexão → (endereço, prazo), na ordem de chegada
        try:
            while not self._stopping.is_set():
                with self._incoming_lock:
                    incoming, self._incoming = self._incoming, []
                for conn, address in incoming:
                    try:
                        selector.register(conn, selectors.EVENT_READ)
                    except (OSError, ValueError):
                        self.shutdown_request(conn)
                        continue
                    waiting[conn] = (address, time.monotonic() + self.idle)
                while len(waiting) > self.max_waiting:
                    self._drop(selector, waiting, next(iter(waiting)))
                if not waiting:
                    time.sleep(0.02)
                    continue
                for key, _ in selector.select(0.05):
                    address, _deadline = waiting.pop(key.fileobj)
                    selector.unregister(key.fileobj)
                    self.pool.submit(self._serve, key.fileobj, address)
                now = time.monotonic()
                for conn in [c for c, (_a, deadline) in waiting.items() if deadline < now]:
                    self._drop(selector, waiting, conn)
        finally:
            for conn in list(waiting):
                self._drop(selector, waiting, conn)
            selector.close()

    def _drop(self, selector: Any, waiting: dict[Any, Any], conn: Any) -> None:
        waiting.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            selector.unregister(conn)
        self.shutdown_request(conn)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        self._stopping.set()
        super().server_close()
        self.pool.shutdown(wait=False, cancel_futures=True)


def serve_panel(data_dir: str, host: str, port: int, token: str | None, max_delay_min: float,
                ready: Callable[[Any], None] | None = None,
                current: Callable[[], list[tuple[str, str]] | None] | None = None,
                names: str | None = None) -> None:
    if not token and not is_loopback(f"http://{host}/"):
        raise ConfigError(f"Para abrir o painel em {host} (fora desta máquina) defina PAINEL_TOKEN; "
                          "o token será exigido em toda requisição.")
    add_secret(token)
    ensure_data_dir(data_dir)
    try:
        History(data_dir).close()  # cria o banco vazio se ainda não existir
    except sqlite3.Error as exc:
        if not is_damaged_database(exc):
            raise
        print(f"⚠️  {damaged_history_message(data_dir, exc)}", file=sys.stderr)
    accepted, wildcard = panel_host_names(host, names), host.strip("[]") in ("0.0.0.0", "::", "")
    bound: dict[str, int] = {}  # a porta aberta de fato (conhecida só depois do bind)
    handler = make_panel_handler(data_dir, token, max_delay_min, current,
                                 lambda header: panel_host_ok(header, accepted, bound["port"], wildcard))
    try:
        httpd = PanelServer((host, port), handler)
    except OSError as exc:
        raise ConfigError(f"Não foi possível abrir o painel em {host}:{port}: {exc.strerror}") from None
    bound["port"] = httpd.server_address[1]  # --porta 0: a porta que o sistema escolheu
    if ready:
        ready(httpd)
    try:
        httpd.serve_forever()
    finally:
        httpd.server_close()

# ============================================================================
# Demonstração: dois servidores de referência locais e uma sincronização real
# ============================================================================

def load_reference_server():
    """Carrega tests/servidor_referencia.py (vem junto do repositório)."""
    path = os.path.join(SCRIPT_DIR, "tests", "servidor_referencia.py")
    if not os.path.exists(path):
        raise ConfigError(f"A demonstração precisa do servidor de referência em {path} (baixe o repositório completo).")
    spec = importlib.util.spec_from_file_location("servidor_referencia", path)
    assert spec is not None and spec.loader is not None  # um arquivo .py sempre tem especificação e carregador
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("servidor_referencia", module)
    spec.loader.exec_module(module)
    return module


def seed_demo(primary, backup, today: dt.date) -> None:
    """Dados pequenos e realistas: novidades, bloqueio, vencimento, renovação e acentos."""
    past, future = (today - dt.timedelta(days=40)).isoformat(), add_months(today, 11).isoformat()
    primary.add_user("sergio", secrets.token_urlsafe(12), email="sergio@exemplo.com.br")
    primary.add_user("conceicao", secrets.token_urlsafe(12), email="conceicao@exemplo.com.br", role="admin")
    primary.add_user("joao.revenda", secrets.token_urlsafe(12))
    backup.add_user("sergio", secrets.token_urlsafe(12), email="sergio@exemplo.com.br")
    licenses = [
        ("DEMO-0001", "mensal", "José da Silva", "active", None, "sergio"),
        ("DEMO-0002", "anual", "Maria Conceição Araújo", "blocked", None, "conceicao"),
        ("DEMO-0003", "trimestral", "Padaria Pão de Açúcar LTDA", "active", past, "sergio"),
        ("DEMO-0004", "anual", "Oficina São João", "active", future, "joao.revenda"),
        ("DEMO-0005", "vitalicia", "Ótica Visão Clara", "active", None, "admin"),
        ("DEMO-0006", "semestral", "Açougue Boi Feliz", "pending", None, "sergio"),
        ("DEMO-0007", "anual", "Farmácia Saúde & Cia", "active", None, "conceicao"),
    ]
    for device_id, kind, owner, status, end, creator in licenses:
        primary.add_device(device_id, license_type=kind, owner_name=owner, cpf="123.456.789-09",
                           email=None, address="Rua das Flores, 10 - São Paulo", created_by=creator,
                           status=status, end_date=end)
    # No backup: a renovada (DEMO-0004) está vencida, a DEMO-0005 tem endereço antigo,
    # a DEMO-0007 já está igual e a DEMO-0099 só existe lá (bloqueada: liberada só no backup, a execução
    # sairia com 1 até o vendedor dizer se é venda ou reembolso).
    backup.add_device("DEMO-0004", license_type="anual", owner_name="Oficina São João", cpf="123.456.789-09",
                      address="Rua das Flores, 10 - São Paulo", created_by="joao.revenda", end_date=past)
    backup.add_device("DEMO-0005", license_type="vitalicia", owner_name="Ótica Visão Clara", cpf="123.456.789-09",
                      address="Av. Antiga, 1", created_by="admin")
    backup.add_device("DEMO-0007", license_type="anual", owner_name="Farmácia Saúde & Cia", cpf="123.456.789-09",
                      address="Rua das Flores, 10 - São Paulo", created_by="conceicao")
    backup.add_device("DEMO-0099", license_type="mensal", owner_name="Loja Só no Backup", created_by="admin",
                      status="blocked")


def run_demo(args: argparse.Namespace) -> int:
    module = load_reference_server()
    rep = Reporter(bool(args.json))
    today = dt.datetime.now(dt.timezone.utc).date()
    passwords = [secrets.token_urlsafe(16), secrets.token_urlsafe(16)]  # nunca uma senha fixa
    for password in passwords:
        add_secret(password)
    with module.ServidorReferencia(admins={"admin": passwords[0]}) as primary, \
            module.ServidorReferencia(admins={"admin": passwords[1]}) as backup, \
            tempfile.TemporaryDirectory(prefix="demo-sincronizar-") as data_dir:
        seed_demo(primary, backup, today)
        configure_demo_failover(primary, backup)  # rota de falha
        config = Config(primary=ServerConfig(Role.PRIMARY, primary.url, "admin", passwords[0]),
                        backups=[ServerConfig(Role.BACKUP, backup.url, "admin", passwords[1])],
                        data_dir=data_dir, wake_wait=10, json_output=bool(args.json),
                        progress=not args.json)
        rep.say("🎬 DEMONSTRAÇÃO: dois servidores de referência locais, com dados de exemplo.")
        rep.say("   (senhas de administrador aleatórias; tudo é apagado ao final)")
        rep.say("")
        first = run_sync(config, rep)
        backup.reset_counts()
        rep.say("")
        rep.say("🔁 Segunda execução: não deve restar nada a fazer.")
        rep.say("")
        second = run_sync(config, rep)
        writes = backup.write_count()
        rep.say(f"📊 Escritas no backup durante a segunda execução: {writes} (esperado: 0)")
        same = demo_verdicts_match(primary, backup)
        rep.say(f"⚖️  Veredito conferido direto nos dois bancos: {'igual' if same else 'DIFERENTE'} "
                "para todas as licenças do principal.")
    if args.json:
        print_json({"primeira_execucao": run_json(first, False, False),
                    "segunda_execucao": run_json(second, False, False), "escritas_na_segunda": writes})
    return run_exit_code([first.code, second.code], problems=writes != 0 or not same)


def demo_verdicts_match(primary, backup) -> bool:
    """Confere pelo próprio servidor de referência (o veredito que o /verify daria), não pelo modelo da
    ferramenta: toda licença do principal tem a mesma resposta no backup."""
    return all(backup.veredito(key) == allowed for key, allowed in primary.vereditos().items())


# ============================================================================
# Linha de comando: opções, subcomandos e main() (por último)
# ============================================================================
def print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(dump_json(doc) + "\n")
    sys.stdout.flush()


class _HelpFormatter(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        return super().add_usage(usage, actions, groups, prefix="uso: ")


PROG = "sincronizar_bancos.py"


class OptionError(Exception):
    """Opção de linha de comando inválida (código 2); a mensagem já está em português. `prog`: de quem é a
    opção ("sincronizar_bancos.py" ou "sincronizar_bancos.py historico"), para a mensagem indicar a ajuda certa."""

    def __init__(self, message: str, prog: str = PROG):
        super().__init__(message)
        self.prog = prog


# Mensagens do argparse (em inglês) → português. A primeira regra que casar vale.
_ARGPARSE_PT = (
    (r"unrecognized arguments: (.*)", r"opção ou argumento desconhecido: \1"),
    (r"invalid choice: (.*?) \(choose from (.*)\)", r"valor inválido \1 (escolha entre \2)"),
    (r"expected one argument", "falta o valor desta opção"),
    (r"expected at most one argument", "esta opção aceita no máximo um valor"),
    (r"expected at least one argument", "esta opção precisa de ao menos um valor"),
    (r"invalid (int|float) value: (.*)", lambda m: f"valor inválido {m.group(2)} (esperado um número"
                                                    f"{' inteiro' if m.group(1) == 'int' else ''})"),
    (r"invalid (\w+) value: (.*)", r"valor inválido \2"),
    (r"ambiguous option: (\S+) could match (.*)", r"opção ambígua \1 (pode ser \2)"),
    (r"ignored explicit argument (.*)", r"esta opção não aceita valor (recebido \1)"),
    (r"not allowed with argument (.*)", r"não pode ser usada junto com \1"),
    (r"the following arguments are required: (.*)", r"faltam os argumentos obrigatórios: \1"),
)


def translate_argparse(message: str) -> str:
    """Traduz uma mensagem de erro do argparse ("argument --x: invalid choice ..." etc.)."""
    prefix = ""
    found = re.match(r"argument ([^:]+): (.*)", message, re.S)
    if found:
        prefix, message = f"{found.group(1).split('/')[-1]}: ", found.group(2)
    for pattern, repl in _ARGPARSE_PT:
        if re.fullmatch(pattern, message, re.S):
            return prefix + re.sub(pattern, repl, message, count=1, flags=re.S)
    return prefix + message


class _Parser(argparse.ArgumentParser):
    """argparse com textos em português (ajuda e erros); o erro vira OptionError, tratado em main()."""

    def error(self, message: str) -> NoReturn:
        raise OptionError(translate_argparse(message), self.prog)


class Command(TextEnum):
    """Os subcomandos; o valor é a palavra da linha de comando. Sem comando: SYNC."""
    SYNC = "sincronizar"
    DEMO = "demo"
    CHECK = "verificar"
    HISTORY = "historico"
    PANEL = "painel"
    RESTORE = "restaurar"
    WATCH = "vigiar"


def _setting_option(name: str, metavar: str | None = None, **extra: Any) -> tuple[str, dict[str, Any]]:
    """Uma opção que é uma configuração da tabela SETTINGS: a ajuda (com a variável e o padrão) e o tipo vêm
    de lá. O valor padrão da opção é None (ou False): sem a opção, vale a variável, o .env ou o padrão."""
    setting = SETTING[name]
    assert setting.option is not None  # só as configurações com opção de linha de comando na tabela
    spec: dict[str, Any] = {"help": setting.option_help()}
    if setting.kind == SettingKind.FLAG:
        spec["action"] = "store_true"
    else:
        spec["metavar"] = metavar
        if setting.kind in (SettingKind.DECIMAL, SettingKind.INTEGER):
            spec["type"] = setting.cli_type()
    return setting.option, {**spec, **extra}


def cli_options() -> dict[str, dict[str, Any]]:
    """Cada opção da linha de comando, uma vez só: a opção → os argumentos do add_argument ("default" quando
    não é None nem False). A ajuda geral as lista nesta ordem; a de cada comando, só as dele (COMMANDS)."""
    return dict([
        ("--env", {"metavar": "ARQUIVO", "help": "arquivo .env a usar (padrão: .env ao lado do script)"}),
        _setting_option("SERVIDOR_PRINCIPAL", "URL"),
        _setting_option("SERVIDOR_BACKUP", "URL", action="append"),
        _setting_option("ADMIN_USER", "NOME"),
        _setting_option("DADOS_DIR", "PASTA"),
        ("--simular", {"action": "store_true", "help": "mostra o plano e não grava nada"}),
        ("--json", {"action": "store_true",
                    "help": f"imprime só um documento JSON no stdout (listas com até {JSON_LIST_LIMIT} itens; o "
                            "total das cortadas fica em listas_truncadas)"}),
        ("--json-completo", {"action": "store_true", "help": "como --json, mas com as listas inteiras (pode ter "
                                                             "vários MB com milhares de licenças)"}),
        _setting_option("SYNC_TIMEOUT", "SEG"),
        _setting_option("SYNC_ESPERA_DESPERTAR", "SEG"),
        _setting_option("SYNC_TENTATIVAS_HTTP", "N"),
        _setting_option("SYNC_PARALELO", "N"),
        _setting_option("SYNC_PERMITIR_HTTP"),
        ("--hoje", {"metavar": "AAAA-MM-DD", "help": "data de referência para vencimentos (testes)"}),
        ("--agora", {"metavar": "AAAA-MM-DDTHH:MM", "help": "instante de referência (UTC se sem fuso) para a data "
                                                            "local de cada servidor (testes)"}),
        ("--sem-progresso", {"action": "store_true", "help": "não mostra o contador de progresso"}),
        ("--bidirecional", {"action": "store_true",
                            "help": "sincroniza nos dois sentidos (comparação em três vias com o estado salvo)"}),
        ("--conflito", {"choices": [p.value for p in ConflictPolicy], "default": ConflictPolicy.REPORT.value,
                        "help": "bidirecional: o que fazer quando os dois lados mudaram o mesmo registro "
                                "(relatar: não mexe em nenhum e sai com 1)"}),
        ("--espelhar", {"action": "store_true",
                        "help": "unidirecional: apaga no backup as licenças que não existem no principal"}),
        ("--bloquear-so-no-backup", {"action": "store_true",
                                     "help": "unidirecional: bloqueia no backup (reversível) as licenças liberadas "
                                             "que só existem lá e que o estado salvo não diz se são vendas ou "
                                             "licenças apagadas no principal"}),
        ("--max-exclusoes", {"type": number_type(integer=True, minimum=0), "metavar": "N",
                             "help": "máximo de exclusões por lado (padrão: 10%% das licenças do lado, até 50)"}),
        ("--forcar", {"action": "store_true", "help": "aplica exclusões mesmo quando as travas as reteriam"}),
        ("--de", {"metavar": "URL", "help": "restaurar: backup de origem (padrão: o primeiro backup)"}),
        ("--aceitar-backup-desconhecido", {"metavar": "URL", "action": "append",
                                           "help": "sincroniza (ou restaura) mesmo assim um backup sem estado salvo "
                                                   "que tem muitos registros e nenhum do principal (por padrão "
                                                   "recusado com código 2: parece ser o servidor de outro "
                                                   "vendedor); repita para vários"}),
        _setting_option("SYNC_VIGIAR_INTERVALO", "SEG"),
        ("--limite", {"type": int, "default": 20, "metavar": "N", "help": "historico: quantas execuções (20)"}),
        ("--detalhes", {"metavar": "EXECUCAO", "help": "historico: auditoria de uma execução"}),
        ("--porta", {"type": int, "default": PANEL_DEFAULT_PORT, "metavar": "N", "help": "painel: porta (8765)"}),
        ("--host", {"default": "127.0.0.1",
                    "help": "painel: endereço (127.0.0.1; outro endereço exige PAINEL_TOKEN)"}),
    ])


def option_dest(option: str) -> str:
    """O nome do atributo de uma opção no resultado do argparse: --dados-dir → dados_dir."""
    return option.removeprefix("--").replace("-", "_")


def option_default(spec: dict[str, Any]) -> Any:
    """O valor de uma opção não dada (o argparse a define como SUPPRESS; main() recebe este)."""
    return spec.get("default", False if spec.get("action") == "store_true" else None)


# Grupos de opções que vários comandos compartilham (cada opção é definida uma vez, em cli_options)
_CONNECTION_OPTIONS = ("--env", "--principal", "--backup", "--usuario", "--timeout", "--espera-despertar",
                       "--tentativas-http", "--permitir-http")
_JSON_OPTIONS = ("--json", "--json-completo")
_CLOCK_OPTIONS = ("--hoje", "--agora")  # data e instante de referência (testes)
_PLAN_OPTIONS = ("--bidirecional", "--conflito", "--espelhar", "--bloquear-so-no-backup", "--max-exclusoes")


@dataclasses.dataclass(frozen=True)
class CommandSpec:
    """Um subcomando: a linha dele na ajuda geral, o texto da ajuda dele (COMANDO --help) e as opções que
    valem para ele (as outras são recusadas com código 2)."""
    summary: str
    description: str
    options: tuple[str, ...]


COMMANDS: dict[Command, CommandSpec] = {
    Command.SYNC: CommandSpec(
        "sincroniza os backups com o principal (o padrão, sem COMANDO)",
        "Sincroniza cada backup com o principal (é o que roda sem COMANDO): lê os dois lados, grava só o que "
        "falta ou difere, relê os dois depois da última escrita e confere a resposta (liberada/negada) licença "
        "a licença. Com --simular, mostra o plano e não grava nada; com --bidirecional, as mudanças feitas em "
        "qualquer lado vão para o outro.",
        _CONNECTION_OPTIONS + ("--dados-dir", "--paralelo", "--simular") + _JSON_OPTIONS + ("--sem-progresso",)
        + _CLOCK_OPTIONS + _PLAN_OPTIONS + ("--forcar", "--aceitar-backup-desconhecido")),
    Command.DEMO: CommandSpec(
        "dois servidores locais de referência",
        "Demonstração sem configurar nada: sobe dois servidores de referência nesta máquina (portas "
        "livres, senhas aleatórias), roda uma sincronização real entre eles, roda de novo (não deve "
        "sobrar nada a fazer) e confere o veredito licença a licença. Não lê o .env, não usa a internet "
        "e apaga tudo ao terminar. Sai com 0 quando tudo confere.",
        ("--json",)),
    Command.CHECK: CommandSpec(
        "só compara, nunca grava",
        "Só compara o principal com cada backup e diz o que a sincronização faria; nunca grava nada "
        "(nem nos servidores, nem em DADOS_DIR). Sai com 0 quando todos os backups estão em dia e "
        "dão a mesma resposta (liberada/negada) que o principal, 1 quando não (a última linha diz a "
        "causa e o conserto), 2 configuração, 4 servidor fora do ar.",
        _CONNECTION_OPTIONS + ("--dados-dir", "--bidirecional", "--aceitar-backup-desconhecido") + _JSON_OPTIONS
        + ("--sem-progresso",) + _CLOCK_OPTIONS),
    Command.HISTORY: CommandSpec(
        "últimas execuções",
        "Mostra as últimas execuções registradas em DADOS_DIR (uma linha por backup: modo, situação, "
        "escritas em cada servidor, falhas, paridade). Com --detalhes, a auditoria de uma execução: "
        "cada escrita, em qual servidor e com qual resultado.",
        ("--env", "--dados-dir", "--limite", "--detalhes", "--json")),
    Command.PANEL: CommandSpec(
        "página web de acompanhamento",
        "Abre uma página de acompanhamento (e /status.json para monitores) feita a partir do histórico "
        "em DADOS_DIR; não fala com os servidores de licença. Fica aberta até Ctrl+C. Fora desta "
        "máquina (--host 0.0.0.0) exige PAINEL_TOKEN; nomes extras aceitos no endereço: PAINEL_NOMES.",
        ("--env", "--dados-dir", "--porta", "--host", "--principal", "--backup")),
    Command.RESTORE: CommandSpec(
        "copia um backup de volta para o principal que perdeu dados",
        "Copia um backup de volta para o PRINCIPAL que perdeu dados (por exemplo, voltou vazio depois "
        "de reiniciar): cria no principal só o que falta nele; o que já existe lá fica como está "
        "(--forcar sobrescreve com a versão do backup). Rode primeiro com --simular.",
        _CONNECTION_OPTIONS + ("--de", "--aceitar-backup-desconhecido", "--forcar", "--simular", "--dados-dir",
                               "--paralelo") + _JSON_OPTIONS + ("--sem-progresso",) + _CLOCK_OPTIONS),
    Command.WATCH: CommandSpec(
        "modo contínuo: mantém os backups em dia até Ctrl+C",
        "Modo contínuo: fica rodando e mantém cada backup igual ao principal até Ctrl+C ou SIGTERM "
        "(sai com 130/143 depois da sequência em andamento). A cada intervalo lê só o principal; "
        "só quando algo que a sincronização usa mudou (ou a data) lê o backup e sincroniza, pelo mesmo "
        "caminho de sincronizar; cada backup também é lido inteiro a cada SYNC_VIGIAR_LEITURA_BACKUP_MIN "
        "minutos. Principal ou backup fora do ar: espera e tenta de novo; uma parada de segurança "
        "(código 5) pausa só aquele par. Segura a trava de DADOS_DIR enquanto roda: uma sincronização "
        "agendada sai com 0 (nada a fazer), restaurar sai com 3. A configuração (.env) é lida uma vez, "
        "no início: depois de mudá-la, reinicie o vigiar. Só termina sozinho com 2 (configuração) ou 3 "
        "(outra execução segura a trava).",
        _CONNECTION_OPTIONS + ("--intervalo", "--dados-dir", "--paralelo") + _PLAN_OPTIONS
        + ("--aceitar-backup-desconhecido", "--sem-progresso") + _CLOCK_OPTIONS),
}


class _SubcommandAction(argparse._SubParsersAction):
    """O COMANDO e as opções depois dele. O argparse as lê num resultado novo, que substitui o valor de uma opção
    dada também antes do comando: uma opção repetível (--backup A verificar --backup B) fica com as duas."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        before = {k: v for k, v in vars(namespace).items() if isinstance(v, list) and not k.startswith("_")}
        super().__call__(parser, namespace, values, option_string)
        for key, value in before.items():
            after = getattr(namespace, key)
            if after is not value:
                setattr(namespace, key, value + after)


class _CommandLine(_Parser):
    """O analisador geral. Cada comando é um subanalisador do argparse, com a sua ajuda e só as suas opções;
    este aceita também, ANTES do comando, as opções de todos (`--json verificar` como `verificar --json`;
    sem comando, são as de sincronizar) e confere depois que cada opção dada vale para o comando. Nos dois,
    o padrão de cada opção é SUPPRESS (o do subanalisador apagaria a opção dada antes do comando); os padrões
    de verdade (option_default) entram no fim, para todas as opções, e `comando` sai como Command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = cli_options()
        self.command_parsers: dict[Command, argparse.ArgumentParser] = {}

    def add_options(self, parser: argparse.ArgumentParser, wanted: tuple[str, ...] | None = None) -> None:
        for option, spec in self.options.items():
            if wanted is None or option in wanted:
                parser.add_argument(option, **{k: v for k, v in spec.items() if k != "default"},
                                    default=argparse.SUPPRESS)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        """Sem recusar a opção de outro comando (ela volta lida, ou em `extras`): o invólucro só quer achar
        --env e --dados-dir na linha do filho; quem recusa é o próprio filho, com a mensagem dele."""
        parsed, extras, _ = self._parse(args, namespace, strict=False)
        return parsed, extras

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        parsed, extras, owner = self._parse(args, namespace, strict=True)
        if extras:
            owner.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def _parse(self, args: Any, namespace: Any,
               strict: bool) -> tuple[argparse.Namespace, list[str], argparse.ArgumentParser]:
        """(opções, o que sobrou, o analisador de quem é o erro: o do comando dado, ou este sem comando);
        `strict`: a opção de outro comando é recusada (código 2)."""
        parsed, extras = super().parse_known_args(args, namespace)
        given: dict[str, Any] = parsed.__dict__
        name = given.pop("comando", None)
        command = Command(name) if name else Command.SYNC
        owner = self.command_parsers[command] if name else self
        if given.pop("ajuda", False):  # `--help verificar`: a ajuda do comando, como `verificar --help`
            owner.print_help()
            self.exit(0)
        for option in self.options if strict else ():
            if option_dest(option) in given and option not in COMMANDS[command].options:
                self.refuse(owner, command, option)
        foreign = next((e.split("=", 1)[0] for e in extras if e.split("=", 1)[0] in self.options), None)
        if foreign and strict:
            self.refuse(owner, command, foreign)
        for option, spec in self.options.items():
            given.setdefault(option_dest(option), option_default(spec))
        parsed.comando = command
        return parsed, extras, owner

    def refuse(self, owner: argparse.ArgumentParser, command: Command, option: str) -> NoReturn:
        """Uma opção de outro comando: código 2, com o comando e onde ver as opções dele."""
        where = ", ".join(c.value for c, spec in COMMANDS.items() if option in spec.options)
        this = f"o comando {command}" if owner is not self else f"{command} (o comando padrão)"
        owner.error(f"{option} não vale para {this}; vale para: {where}")


def build_parser() -> argparse.ArgumentParser:
    """A linha de comando: um subanalisador por Command, montado da tabela COMMANDS e das opções de
    cli_options (nenhuma opção escrita duas vezes)."""
    common: dict[str, Any] = {"add_help": False, "formatter_class": _HelpFormatter, "allow_abbrev": False}
    parser = _CommandLine(
        prog=PROG, **common,
        description="Sincroniza os servidores de backup da API de licenças com o principal.",
        epilog=f"Ajuda de cada comando: {PY} {PROG} COMANDO --help. Códigos de saída: "
               + "; ".join(f"{c.value} = {c.meaning}" for c in ExitCode),
    )
    parser._positionals.title = "comando"
    parser._optionals.title = "opções"
    parser.add_argument("-h", "--help", action="store_true", dest="ajuda", default=argparse.SUPPRESS,
                        help="mostra esta ajuda e sai")
    version: dict[str, Any] = {"action": "version", "version": f"{PROG} {VERSAO}", "help": "mostra a versão e sai"}
    parser.add_argument("--version", **version)
    subparsers = parser.add_subparsers(dest="comando", metavar="COMANDO", prog=PROG, parser_class=_Parser,
                                       action=_SubcommandAction)
    for command, spec in COMMANDS.items():
        sub = subparsers.add_parser(command.value, help=spec.summary, description=spec.description, **common,
                                    epilog=f"Os outros comandos e os códigos de saída: {PY} {PROG} --help")
        sub._optionals.title = "opções"
        sub.add_argument("-h", "--help", action="help", help="mostra esta ajuda e sai")
        sub.add_argument("--version", **version)
        parser.add_options(sub, spec.options)
        parser.command_parsers[command] = sub
    parser.add_options(parser)
    return parser


def cmd_history(args: argparse.Namespace) -> int:
    """historico: últimas execuções em tabela (ou JSON); --detalhes ID mostra uma execução e a auditoria dela."""
    data_dir = resolve_data_dir(settings_reader(args), args.dados_dir)
    if not os.path.exists(os.path.join(data_dir, HISTORY_FILE)):
        return fail(f"Nenhum histórico em {data_dir} (ainda não houve sincronização).", ExitCode.CONFIG)
    try:
        history = History(data_dir)
        try:
            if args.detalhes:
                return show_run(history, args.detalhes, args.json)
            rows = history.runs(max(1, args.limite))
        finally:
            history.close()
    except sqlite3.Error as exc:
        if not is_damaged_database(exc):
            raise
        return fail(f"O histórico {os.path.join(data_dir, HISTORY_FILE)} está danificado ({exc}). A próxima "
                    "sincronização o guarda ao lado, com a data no nome, e começa um novo.", ExitCode.CONFIG)
    if args.json:
        print_json({"execucoes": [row.columns for row in rows]})
    else:
        print_history(rows)
    return ExitCode.OK


def show_run(history: History, ident: str, as_json: bool) -> int:
    """historico --detalhes: aceita o número da linha (id) ou o código da execução, como em historico --json."""
    rows = history.find_runs(ident)
    if not rows:
        return fail(f"Execução {ident.strip()!r} não encontrada no histórico. Use o ID (número) ou o código da "
                    "execução que aparecem em 'historico' ou 'historico --json'.", ExitCode.CONFIG)
    trail = history.audit_trail(rows[0].run_id)
    if len(rows) == 1 and ident.strip() == str(rows[0].id):  # uma linha: só as escritas deste par
        trail = [item for item in trail if item.server in (rows[0].primary, rows[0].backup)]
    if as_json:
        print_json({"execucao": rows[0].run_id, "execucoes": [row.columns for row in rows],
                    "auditoria": [item.columns for item in trail]})
    else:
        print_audit(rows, trail)
    return ExitCode.OK


HISTORY_WIDTHS = (5, 23, 13, 17, 22, 6, 9)


def print_history(rows: list[HistoryRow]) -> None:
    rep = Reporter(False)
    if not rows:
        rep.say("Nenhuma execução registrada.")
        return
    w = HISTORY_WIDTHS
    rep.say(f"{'ID':>{w[0]}}  {'Início':<{w[1]}} {'Modo':<{w[2]}} {'Situação':<{w[3]}} {'Mudanças':<{w[4]}} "
            f"{'Falhas':>{w[5]}} {'Paridade':>{w[6]}}")
    for r in rows:
        rep.say(f"{r.id:>{w[0]}}  {local_time(r.started):<{w[1]}} {mode_label(r.mode):<{w[2]}} "
                f"{situation_label(r.status):<{w[3]}} {writes_text(r):<{w[4]}} {failures_of(r):>{w[5]}} "
                f"{parity_text(r):>{w[6]}}")
        rep.say(f"{'':>{w[0]}}  {r.primary} → {r.backup} · {duration_text(r['duracao_s'])} · "
                f"execução {r.run_id}")
        if r.error:
            rep.say(f"{'':>{w[0]}}  ↳ {r.error}")
    rep.say("")
    rep.say("Horários no fuso desta máquina. Mudanças: escritas feitas no backup e no principal. "
            "Detalhes: historico --detalhes ID")


def print_audit(rows: list[HistoryRow], trail: list[AuditEntry]) -> None:
    rep = Reporter(False)
    first = rows[0]
    rep.say(f"Execução {first.run_id} · {local_time(first.started)} · {mode_label(first.mode)}")
    for r in rows:
        rep.say(f"   #{r.id} {r.primary} → {r.backup}: {situation_label(r.status)} · mudanças: "
                f"{writes_text(r)} · {with_count(failures_of(r), 'falha')} · paridade {parity_text(r)} · "
                f"{duration_text(r['duracao_s'])}")
        if r.error:
            rep.say(f"      ↳ {r.error}")
    primaries = {r.primary for r in rows}
    on_primary = sum(1 for item in trail if item.server in primaries)
    sides = f" ({on_primary} no principal, {len(trail) - on_primary} no backup)" if trail else ""
    rep.say(f"Auditoria: {with_count(len(trail), 'escrita')}{sides}")
    for item in trail:
        side = Role.PRIMARY if item.server in primaries else Role.BACKUP
        changes = "; ".join(f"{f}: {audit_value(f, a)} → {audit_value(f, b)}" for f, a, b in item["mudancas"])
        rep.say(f"   {local_time(item['momento'], seconds=True)} {side} {item.server} {item['chave']}: "
                f"{audit_outcome(item)}  {changes}")


AUDIT_STATUS = {ACTIVE: "ativa", BLOCKED: "bloqueada", PENDING: "pendente"}


def audit_value(field: str, value: Any) -> str:
    """Um valor da auditoria em português: vazio, ativa/bloqueada/pendente, "texto" entre aspas, números."""
    if value is None or value == "":
        return "vazio"
    if field == "status" and value in AUDIT_STATUS:
        return AUDIT_STATUS[value]
    if isinstance(value, bool):
        return "sim" if value else "não"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def audit_outcome(item: AuditEntry) -> str:
    """"bloqueada ✅" ou "❌ não foi possível bloquear: motivo" (o código da ação fica no --json)."""
    label = ACTION_LABELS.get(item["acao"])
    if item.ok:
        return f"{label[1] if label else item['acao']} ✅"
    return f"❌ não foi possível {label[3] if label else item['acao']}: {item['mensagem']}"


def cmd_panel(args: argparse.Namespace) -> int:
    get = settings_reader(args)
    data_dir = resolve_data_dir(get, args.dados_dir)
    max_delay = setting_value(get, "PAINEL_MAX_ATRASO")
    token = get("PAINEL_TOKEN")
    if not 0 <= args.porta <= 65535:
        raise ConfigError(f"--porta deve estar entre 0 e 65535 (recebido: {args.porta}).")
    backup_cli = ",".join(args.backup) if args.backup else None
    known = {"pares": configured_pairs(get, args.principal, backup_cli)}  # URL inválida: código 2 já na partida

    def current() -> list[tuple[str, str]] | None:
        """Relê o .env a cada pedido: trocar os servidores lá vale sem reiniciar o painel."""
        try:
            known["pares"] = configured_pairs(settings_reader(args), args.principal, backup_cli)
        except ConfigError:
            pass  # .env com erro (ou salvo pela metade): fica a última configuração válida
        return known["pares"]

    def ready(httpd: Any) -> None:
        host, port = httpd.server_address[:2]
        sys.stdout.write(f"🖥️  Painel em http://{host}:{port}/ (status para monitores: /status.json). "
                         "Ctrl+C para sair.\n")
        sys.stdout.flush()
    try:
        serve_panel(data_dir, args.host, args.porta, token, max_delay, ready, current, get("PAINEL_NOMES"))
    except KeyboardInterrupt:  # Ctrl+C é o jeito normal de fechar o painel
        sys.stdout.write("Painel encerrado.\n")
        sys.stdout.flush()
    return ExitCode.OK


def closed_pipe(exc: OSError, windows: bool = os.name == "nt") -> bool:
    """Quem lia a saída foi embora: BrokenPipeError no Linux/Mac; no Windows, a escrita num pipe fechado
    (ex.: `| findstr` que terminou) falha com EINVAL ("Invalid argument"), não com EPIPE."""
    return isinstance(exc, BrokenPipeError) or (windows and exc.errno == errno.EINVAL)


class _QuietStream:
    """stdout/stderr que, se quem lê fechar o pipe (ex.: | head) ou a escrita falhar (disco cheio, /dev/full,
    console que sumiu), passa a descartar a saída em silêncio: a execução continua até o fim, é registrada e o
    código de saída não muda (como recomenda a documentação do Python para BrokenPipeError: o descritor passa
    a apontar para os.devnull). Não conseguir imprimir nunca para uma sincronização."""

    def __init__(self, stream: Any):
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except OSError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self._silence()

    def _silence(self) -> None:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass


def configure_output() -> None:
    """Emojis e acentos sem quebrar no console do Windows nem em arquivos de log; pipe fechado
    (| head), disco cheio e falta de console (pythonw: sys.stdout é None) terminam em silêncio."""
    for stream in (sys.stdout, sys.stderr):
        try:
            # o typeshed diz TextIO (sem reconfigure); na prática é um TextIOWrapper, e o que não for (ou o
            # None do pythonw) dá o AttributeError tratado abaixo
            if stream.isatty():
                stream.reconfigure(errors="replace")  # type: ignore[union-attr]
            else:
                stream.reconfigure(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass
    if sys.stdout is None:  # pythonw.exe (tarefa agendada sem console): a saída vai para lugar nenhum
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")
    if not isinstance(sys.stdout, _QuietStream):
        sys.stdout = _QuietStream(sys.stdout)
    if not isinstance(sys.stderr, _QuietStream):  # `2>&1 | head`: o código não muda
        sys.stderr = _QuietStream(sys.stderr)


def error_document(code: int, message: str, meaning: str | None = None, **extra: Any) -> dict[str, Any]:
    """Documento --json de uma execução que parou antes de sincronizar (sempre um JSON no stdout)."""
    return {"versao": 1, "ferramenta": f"sincronizar_bancos {VERSAO}", "codigo_saida": code,
            "significado": meaning or ExitCode.meaning_of(code),
            "erro": mask(message), **extra}


def fail(message: str | list[str], code: int, json_mode: bool | None = None, meaning: str | None = None,
         **extra: Any) -> int:
    """Erro que encerra a execução: uma linha (ou uma lista de linhas) em stderr e, no modo --json, o
    documento de erro com a primeira. Cada linha sai à vista (terminal_text): uma quebra de linha num texto
    do servidor não vira outra linha."""
    json_mode = run_context().json_output if json_mode is None else json_mode
    lines = [message] if isinstance(message, str) else list(message)
    sys.stderr.write("\n".join(terminal_text(("❌ " if i == 0 else "") + line) for i, line in enumerate(lines))
                     + "\n")
    sys.stderr.flush()
    if json_mode:
        print_json(error_document(code, lines[0], meaning, **extra))
    return code


def _json_requested(argv: list[str]) -> bool:
    return "--json" in argv or "--json-completo" in argv


def _run_command(args: argparse.Namespace) -> int:
    if args.comando == Command.DEMO:
        return run_demo(args)
    if args.comando == Command.HISTORY:
        return cmd_history(args)
    if args.comando == Command.PANEL:
        return cmd_panel(args)
    if args.comando == Command.WATCH:
        return cmd_watch(args)
    config = build_config(args)
    if args.comando == Command.CHECK:
        config.check = config.simulate = True
    if args.comando == Command.RESTORE:
        config = restore_mode(config)
    check_state_versions(config)
    rep = Reporter(config.json_output)
    if config.allow_http:
        rep.warn("⚠️  ATENÇÃO: --permitir-http ativo: senha e token podem trafegar sem criptografia.")
    lock = None
    if not config.simulate:
        ensure_data_dir(config.data_dir)
        try:
            lock = acquire_lock(config.data_dir)
        except LockBusy:  # um vigiar ativo: sincronizar sai com 0 (nada a fazer), restaurar com 3
            code = watcher_holds_lock(config, args.comando)
            if code is None:
                raise
            return code
    run = Run(config, rep)
    run.header()  # antes do login: a espera de um servidor dormindo já aparece com os servidores na tela
    try:
        with stop_signals().installed():  # Ctrl+C e SIGTERM: param na hora fora das escritas; nas escritas, param limpo
            errors = connect_servers(config)  # senha, URL e DNS errados param aqui, antes de gravar qualquer coisa
            if errors:
                run.close()
                return report_connection_errors(config, errors, stopped_run(config, errors, run))
            if lock is not None:
                remove_stale_temp_files(config.data_dir)
            outcome = run_sync(config, rep, run)
    finally:
        if lock is not None:
            lock.release()
    if config.json_output:
        print_json(run_json(outcome, config.simulate, config.check, None if config.json_full else JSON_LIST_LIMIT))
    return outcome.code


def main(argv: list[str] | None = None, context: RunContext | None = None) -> int:
    """Uma execução da linha de comando (argv: sem o nome do programa; None = sys.argv[1:]), com um RunContext
    novo (ou `context`, para quem quer ler depois os sinais que ela recebeu), o atual só enquanto ela dura:
    nada desta chamada passa para a seguinte no mesmo processo. O cache dos contextos TLS (por arquivo de CA)
    também é desta execução: a chamada seguinte relê os arquivos."""
    try:
        with using_run_context(RunContext() if context is None else context):
            return _main(argv)
    finally:
        tls_context.cache_clear()


def _main(argv: list[str] | None) -> int:
    configure_output()
    private_umask()
    argv = sys.argv[1:] if argv is None else list(argv)
    json_mode = run_context().json_output = _json_requested(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except OptionError as exc:  # primeira linha: o que está errado (o uso completo fica no --help do comando)
        return fail([f"Opção inválida: {exc}", f"   Veja: {PY} {exc.prog} --help"],
                    stopped_code(exc), json_mode)
    except SystemExit as exc:  # --help e --version já escreveram o que tinham a escrever
        return stopped_code(exc)
    args.json = args.json or args.json_completo
    error: BaseException
    try:
        return _run_command(args)
    except ConfigError as exc:
        message, meaning, error = f"Configuração: {exc}", None, exc
    except LockBusy as exc:
        return fail("Outra sincronização já está em andamento (trava em DADOS_DIR). Tente de novo mais tarde.",
                    stopped_code(exc), json_mode)
    except Interrupted as exc:  # fora das escritas: nenhuma escrita desta execução tinha começado
        what = "Encerrada pelo sistema (SIGTERM)" if exc.code == ExitCode.TERMINATED \
            else "Interrompida pelo usuário (Ctrl+C)"
        return fail(f"{what} antes de escrever nos servidores: nada foi gravado. Rode de novo para sincronizar.",
                    stopped_code(exc), json_mode)
    except KeyboardInterrupt as exc:
        return fail("Interrompido pelo usuário.", stopped_code(exc), json_mode)
    except OSError as exc:
        message = f"Erro de arquivo ou sistema: {exc.strerror or exc.__class__.__name__} " \
                  f"({getattr(exc, 'filename', '') or ''})"
        meaning, error = "erro de arquivo ou sistema; a sincronização não terminou", exc
    except Exception as exc:  # última barreira: mensagem clara, sem traceback nem segredo
        message = f"Erro inesperado ({exc.__class__.__name__}): {exc}"
        meaning, error = "erro inesperado; a sincronização não terminou", exc
    code = stopped_code(error)
    fail(message, code, json_mode, meaning=meaning)
    record_failure(args, message, code)  # depois da mensagem; o painel e o /status.json ficam vermelhos já agora
    return code


def stopped_code(exc: BaseException) -> ExitCode:
    """O código de uma execução que parou numa exceção antes de ter pares: o desfecho dela (error_exit_code)
    julgado pela regra de sempre (run_exit_code)."""
    return run_exit_code([error_exit_code(exc, connecting=False)])


def exit_without_waiting(code: int, stopped_by: int | None) -> None:
    """Depois de um Ctrl+C/SIGTERM (stopped_by: o RunContext.stop.code da execução), com tudo já registrado
    (main voltou): sai na hora, sem esperar as threads de leitura com um pedido em andamento (o Python as
    espera ao sair, até o SYNC_TIMEOUT de cada pedido). Nada fica pela metade: as escritas são protegidas e já
    terminaram quando main volta."""
    lingering = [t for t in threading.enumerate() if t is not threading.current_thread() and not t.daemon]
    if stopped_by is None or not lingering:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    _context = RunContext()
    _code = main(context=_context)
    exit_without_waiting(_code, _context.stop.code)
    sys.exit(_code)
