#!/usr/bin/env python3
"""Sincroniza os servidores de backup da API de licenças com o servidor principal.

Fluxo (cada etapa é uma seção deste arquivo, na ordem em que os dados passam):

    segredos (máscara aplicada a tudo o que sai do programa)
    configuração (.env / ambiente / opções)
        → cliente HTTP (uma requests.Session por servidor, com novas tentativas)
        → retrato (busca usuários e licenças, valida e normaliza)
        → planejador (puro: retratos + estado salvo + hoje → ações; sem E/S)
        → executor (aplica as ações pela API, em paralelo limitado)
        → estado e histórico (arquivos gravados de forma atômica em DADOS_DIR)
        → relatório (texto em português e JSON; painel web e /status.json)
        → linha de comando (main; também a demonstração)

Regra de ouro: depois de uma execução, o programa de um cliente que cair no backup
recebe a MESMA resposta (liberado / negado) que receberia do principal. O que a API
não permite copiar (datas, status "pending", features, custom_interval, senhas,
e-mail e papel de usuários) é listado como "divergência não sincronizável", nunca
escondido.

Uso rápido:
    python sincronizar_bancos.py demo        # demonstração com dois servidores locais
    python sincronizar_bancos.py             # sincroniza conforme o .env
    python sincronizar_bancos.py --simular   # mostra o plano sem gravar nada
    python sincronizar_bancos.py --json      # relatório em JSON no stdout
    python sincronizar_bancos.py verificar | historico | painel | restaurar
    python sincronizar_bancos.py --bidirecional   # três vias, conflitos, exclusões com travas

Códigos de saída: 0 tudo certo e paridade de veredito em todos os backups;
1 alguma ação falhou (ou há conflitos a resolver); 2 problema de configuração ou
credenciais; 3 outra execução em andamento; 4 servidor inacessível ou com dados
inutilizáveis (nada gravado nesse par); 5 travas de segurança (origem vazia ou que
perdeu metade das licenças; exclusões acima do limite).
"""

from __future__ import annotations

import argparse
import calendar
import concurrent.futures
import dataclasses
import datetime as dt
import enum  # rota de falha
import ipaddress
import json
import math
import os
import re
import secrets
import sys
import tempfile
import threading
import time
import urllib.parse
from typing import Any, Callable, Iterable

try:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry
    from dotenv import dotenv_values
    from filelock import FileLock, Timeout as LockTimeout
except ImportError as _erro:  # pragma: no cover - depende da instalação do usuário
    sys.stderr.write(
        f"❌ Dependência ausente: {_erro.name}. Instale com:\n"
        "   pip install -r requirements.txt\n"
    )
    raise SystemExit(2)

VERSAO = "1.0.0"
SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))

EXIT_OK = 0
EXIT_FALHAS = 1
EXIT_CONFIG = 2
EXIT_EM_ANDAMENTO = 3
EXIT_SERVIDOR = 4
EXIT_EXCLUSOES = 5

EXIT_SIGNIFICADO = {
    EXIT_OK: "concluída, todos os backups com o mesmo veredito do principal",
    EXIT_FALHAS: "concluída com falhas em algumas ações",
    EXIT_CONFIG: "problema de configuração ou credenciais",
    EXIT_EM_ANDAMENTO: "outra sincronização já está em andamento",
    EXIT_SERVIDOR: "servidor inacessível ou com dados inutilizáveis",
    EXIT_EXCLUSOES: "travas de segurança: servidor vazio ou que perdeu dados, ou exclusões acima do limite",
}

CHECK_SIGNIFICADO = {
    EXIT_OK: "todos os backups em dia e com o mesmo veredito do principal",
    EXIT_FALHAS: "há diferenças a sincronizar ou veredito diferente em algum backup",
}

LICENSE_PERIOD_MONTHS = {
    "mensal": 1,
    "trimestral": 3,
    "semestral": 6,
    "anual": 12,
    "trianual": 36,
    "vitalicia": None,
}
LICENSE_STATUSES = ("active", "blocked", "pending")
USER_ROLES = ("admin", "user")
SETTABLE_FIELDS = ("owner_name", "cpf", "email", "address", "license_type", "created_by")
TEXT_FIELDS = SETTABLE_FIELDS + ("status", "features")
MAX_TEXT_LEN = 10_000
DEFAULT_CREATED_BY = "admin"

SEP = "=" * 60


# ============================================================================
# Segredos: tudo o que sai do programa passa por aqui
# ============================================================================

class Secrets:
    """Guarda senhas e tokens conhecidos e os mascara em qualquer texto."""

    _PATTERNS = (
        (re.compile(r"(Bearer\s+)[^\s\"',}]+", re.I), r"\1***"),
        (re.compile(r"([\"'](?:password|senha|token)[\"']\s*:\s*)(\"[^\"]*\"|'[^']*')", re.I), r'\1"***"'),
        (re.compile(r"([?&](?:password|senha|token)=)[^&\s]+", re.I), r"\1***"),
        (re.compile(r"([a-z][a-z0-9+.\-]*://)[^/\s@]+@", re.I), r"\1***@"),
    )

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        if value and len(value) >= 4:
            with self._lock:
                self._values.add(value)

    def mask(self, text: Any) -> str:
        text = str(text)
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            text = text.replace(value, "***")
        for pattern, repl in self._PATTERNS:
            text = pattern.sub(repl, text)
        return text


SECRETS = Secrets()


# ============================================================================
# Configuração
# ============================================================================

class ConfigError(Exception):
    """Configuração ausente ou inválida (código de saída 2)."""


@dataclasses.dataclass
class ServerConfig:
    role: str  # "principal" ou "backup"
    url: str
    username: str
    password: str = dataclasses.field(repr=False)

    @property
    def label(self) -> str:
        return f"{'Principal' if self.role == 'principal' else 'Backup'} ({self.url})"


@dataclasses.dataclass
class Config:
    primary: ServerConfig
    backups: list[ServerConfig]
    data_dir: str
    timeout: float = 30.0
    connect_timeout: float = 10.0
    wake_wait: float = 90.0
    http_retries: int = 5
    backoff: float = 0.5
    parallel: int = 8
    ca_bundle: str | None = None
    simulate: bool = False
    json_output: bool = False
    today: dt.date | None = None
    progress: bool = True
    allow_http: bool = False
    check: bool = False  # subcomando verificar: só compara, nunca grava
    history_days: int = 90
    mode: str = "unidirecional"  # unidirecional | bidirecional | restauracao
    conflict: str = "relatar"
    mirror: bool = False
    max_deletions: int | None = None
    force: bool = False
    restore_from: str | None = None  # restaurar --de URL (padrão: o primeiro backup)
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)  # rota de falha: {apelido: servidor}


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
        raise ConfigError(
            f"URL inválida: {SECRETS.mask(raw)!r}. Use o formato https://servidor.exemplo.com"
        )
    if parts.username or parts.password:
        raise ConfigError("Não coloque usuário ou senha dentro da URL; use ADMIN_USER e ADMIN_PASSWORD.")
    if parts.query or parts.fragment:
        raise ConfigError(f"A URL {parts.hostname} não deve ter '?' nem '#'.")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"Porta inválida na URL do servidor {parts.hostname}.") from None
    host = parts.hostname.lower()
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
        with open(path, encoding="utf-8-sig") as handle:
            handle.read(1)
        values = dotenv_values(path, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Não foi possível ler o arquivo de configuração {path}: {exc.__class__.__name__}") from None
    return {k: v for k, v in values.items() if v is not None}


def _setting(name: str, cli_value: Any, env: dict[str, str], file_values: dict[str, str]) -> Any:
    if cli_value not in (None, ""):
        return cli_value
    if env.get(name, "").strip():
        return env[name].strip()
    if file_values.get(name, "").strip():
        return file_values[name].strip()
    return None


def _number(name: str, value: Any, default: float, minimum: float, cast=float) -> Any:
    if value in (None, ""):
        return cast(default)
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} deve ser um número (recebido: {value!r}).") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ConfigError(f"{name} deve ser um número finito (recebido: {value!r}).")
    if number < minimum:
        raise ConfigError(f"{name} deve ser no mínimo {minimum} (recebido: {value!r}).")
    return number


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "sim", "yes", "s", "y", "on")


def settings_reader(args: argparse.Namespace, env: dict[str, str] | None = None) -> Callable[..., Any]:
    """Devolve get(NOME, valor_da_opção): opção da linha de comando > ambiente > arquivo .env."""
    env = dict(os.environ if env is None else env)
    env_path = args.env or os.path.join(SCRIPT_DIR, ".env")
    file_values = read_env_file(env_path, required=bool(args.env))

    def get(name: str, cli: Any = None) -> Any:
        return _setting(name, cli, env, file_values)
    return get


def resolve_data_dir(get: Callable[..., Any], cli_value: str | None) -> str:
    data_dir = get("DADOS_DIR", cli_value) or os.path.join(SCRIPT_DIR, "dados")
    if not os.path.isabs(data_dir):
        data_dir = os.path.join(SCRIPT_DIR, data_dir)
    return os.path.abspath(data_dir)


def build_config(args: argparse.Namespace, env: dict[str, str] | None = None) -> Config:
    """Monta a configuração: opções da linha de comando > ambiente > arquivo .env."""
    get = settings_reader(args, env)
    for name in ("ADMIN_PASSWORD", "PRINCIPAL_ADMIN_PASSWORD", "BACKUP_ADMIN_PASSWORD", "PAINEL_TOKEN"):
        SECRETS.add(get(name))  # antes de qualquer mensagem sobre URLs
    primary_url = get("SERVIDOR_PRINCIPAL", args.principal)
    backup_raw = get("SERVIDOR_BACKUP", ",".join(args.backup) if args.backup else None)
    if not primary_url:
        raise ConfigError("SERVIDOR_PRINCIPAL não foi configurado (veja o arquivo .env.example).")
    if not backup_raw:
        raise ConfigError("SERVIDOR_BACKUP não foi configurado (uma URL ou várias separadas por vírgula).")

    admin_user = get("ADMIN_USER", args.usuario)
    admin_password = get("ADMIN_PASSWORD")
    primary = _server_config("principal", primary_url, get("PRINCIPAL_ADMIN_USER") or admin_user,
                             get("PRINCIPAL_ADMIN_PASSWORD") or admin_password)
    backup_user = get("BACKUP_ADMIN_USER") or admin_user
    backup_password = get("BACKUP_ADMIN_PASSWORD") or admin_password
    backups = [
        _server_config("backup", url, backup_user, backup_password)
        for url in (part.strip() for part in str(backup_raw).split(",")) if url
    ]
    if not backups:
        raise ConfigError("SERVIDOR_BACKUP está vazio.")
    _check_distinct(primary, backups)

    allow_http = bool(args.permitir_http) or _truthy(get("SYNC_PERMITIR_HTTP") or "")
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
    ca_bundle = get("SYNC_CA_BUNDLE")
    if ca_bundle and not os.path.isfile(ca_bundle):
        raise ConfigError(f"SYNC_CA_BUNDLE aponta para um arquivo que não existe: {ca_bundle}")

    return Config(
        primary=primary,
        backups=backups,
        data_dir=data_dir,
        timeout=_number("SYNC_TIMEOUT", get("SYNC_TIMEOUT", args.timeout), 30, 0.1),
        wake_wait=_number("SYNC_ESPERA_DESPERTAR", get("SYNC_ESPERA_DESPERTAR", args.espera_despertar), 90, 0),
        http_retries=_number("SYNC_TENTATIVAS_HTTP", get("SYNC_TENTATIVAS_HTTP", args.tentativas_http), 5, 0, int),
        parallel=_number("SYNC_PARALELO", get("SYNC_PARALELO", args.paralelo), 8, 1, int),
        ca_bundle=ca_bundle,
        history_days=_number("SYNC_HISTORICO_DIAS", get("SYNC_HISTORICO_DIAS"), 90, 0, int),
        mode="bidirecional" if args.bidirecional else "unidirecional",
        conflict=args.conflito,
        mirror=bool(args.espelhar),
        max_deletions=None if args.max_exclusoes is None else _number("--max-exclusoes", args.max_exclusoes, 0, 0, int),
        force=bool(args.forcar),
        restore_from=normalize_url(args.de) if args.de else None,
        simulate=bool(args.simular),
        json_output=bool(args.json),
        today=today,
        progress=not args.json and not args.sem_progresso,
        allow_http=allow_http,
        aliases=parse_aliases(get("SERVIDORES_APELIDOS"), [primary.url] + [b.url for b in backups]),  # rota de falha
    )


def _server_config(role: str, url: str, username: str | None, password: str | None) -> ServerConfig:
    normalized = normalize_url(url)
    who = "principal" if role == "principal" else "de backup"
    if not username:
        raise ConfigError(f"Usuário administrador do servidor {who} não configurado (ADMIN_USER).")
    if not password:
        raise ConfigError(f"Senha do servidor {who} não configurada (ADMIN_PASSWORD).")
    SECRETS.add(password)
    return ServerConfig(role=role, url=normalized, username=username, password=password)


def _check_distinct(primary: ServerConfig, backups: list[ServerConfig]) -> None:
    seen = {primary.url}
    for backup in backups:
        if backup.url == primary.url:
            raise ConfigError(f"O servidor principal {primary.url} também está listado como backup.")
        if backup.url in seen:
            raise ConfigError(f"O backup {backup.url} está listado mais de uma vez.")
        seen.add(backup.url)


# ============================================================================
# Cliente HTTP (uma requests.Session por servidor)
# ============================================================================

class ApiError(Exception):
    """Falha ao falar com um servidor; a mensagem já está em português e sem segredos."""

    def __init__(self, message: str, status: int | None = None, server_message: str | None = None):
        super().__init__(SECRETS.mask(message))
        self.status = status
        self.server_message = server_message


class AuthError(ApiError):
    """Credenciais recusadas ou conta sem papel de administrador (código 2)."""


def describe_exception(exc: BaseException) -> str:
    """Descrição curta, em português, de uma falha de rede (sem URLs com segredo)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return "erro de certificado TLS (use SYNC_CA_BUNDLE para uma CA própria)"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "tempo esgotado ao conectar"
    if isinstance(exc, (requests.exceptions.ReadTimeout, requests.exceptions.Timeout)):
        return "tempo esgotado esperando a resposta"
    if isinstance(exc, requests.exceptions.RetryError):
        return "o servidor continuou respondendo com erro depois de várias tentativas"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "Connection refused" in text or "Errno 111" in text or "10061" in text:
            return "conexão recusada (servidor fora do ar?)"
        if "Name or service not known" in text or "getaddrinfo" in text or "nodename" in text:
            return "nome do servidor não encontrado (DNS)"
        return "conexão interrompida"
    return exc.__class__.__name__


class Ticker:
    """Mostra, no terminal, que uma espera longa continua viva (uma linha a cada 10 s)."""

    def __init__(self, label: str, enabled: bool, every: float = 10.0):
        self.label, self.every = label, every
        self.enabled = enabled and sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.every):
            sys.stderr.write(SECRETS.mask(f"   ⏳ {self.label}... {time.monotonic() - start:.0f} s") + "\n")
            sys.stderr.flush()

    def __enter__(self) -> "Ticker":
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()


@dataclasses.dataclass
class Response:
    status: int
    body: Any
    retried: bool


class ApiClient:
    """Fala com um servidor da API de licenças: login, listagens e escritas."""

    def __init__(self, server: ServerConfig, config: Config):
        self.server = server
        self.config = config
        self.token: str | None = None
        self.role: str | None = None
        self.waited_seconds = 0.0
        self._login_lock = threading.Lock()
        self._token_generation = 0
        self.session = requests.Session()
        self.session.headers["User-Agent"] = f"sincronizar-bancos/{VERSAO}"
        # Proxies e CA do ambiente lidos uma vez só (o requests os relê a cada requisição, ~0,3 ms cada);
        # sem trust_env, um ~/.netrc também não substitui o nosso cabeçalho Authorization.
        self.session.proxies = requests.utils.get_environ_proxies(server.url)
        self.session.trust_env = False
        self.session.verify = (config.ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE")
                               or os.environ.get("CURL_CA_BUNDLE") or True)
        retry = Retry(
            total=config.http_retries,
            connect=config.http_retries,
            read=config.http_retries,
            status=config.http_retries,
            other=config.http_retries,
            backoff_factor=config.backoff,
            backoff_max=30,
            backoff_jitter=config.backoff / 2,
            status_forcelist=(429, 502, 503, 504),
            allowed_methods=None,  # todas as escritas que fazemos podem ser repetidas com segurança
            respect_retry_after_header=True,
            retry_after_max=120,  # um Retry-After de 1 hora não segura a execução
            raise_on_status=False,
            raise_on_redirect=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=max(config.parallel, 2))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # /health (despertar) sem novas tentativas automáticas: o laço de wake() controla o tempo total.
        health = HTTPAdapter(max_retries=0)
        health.poolmanager = adapter.poolmanager  # mesma conexão keep-alive do resto
        self.session.mount(self.server.url + "/health", health)

    def close(self) -> None:
        self.session.close()

    # -- baixo nível -------------------------------------------------------
    def _send(self, method: str, path: str, payload: Any = None, auth: bool = True,
              timeout: float | None = None) -> Response:
        headers = {"Accept": "application/json"}
        if auth and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.server.url + path
        attempts = max(1, self.config.http_retries + 1)
        retried = False
        for attempt in range(attempts):
            try:
                resp = self.session.request(
                    method, url, json=payload, headers=headers,
                    timeout=(self.config.connect_timeout, timeout or self.config.timeout),
                )
            except requests.exceptions.RequestException as exc:
                raise ApiError(f"{self.server.label}: {describe_exception(exc)}") from None
            history = getattr(getattr(resp.raw, "retries", None), "history", None)
            retried = retried or bool(history)
            try:
                body = resp.json()
            except ValueError:
                body = None
            if body is not None or not 200 <= resp.status_code < 300 or attempt + 1 >= attempts:
                return Response(resp.status_code, body, retried)
            # Resposta 2xx ilegível (cortada no meio): repete; todas as nossas
            # requisições podem ser repetidas com segurança.
            retried = True
            time.sleep(min(self.config.backoff * (2 ** attempt), 10))
        raise AssertionError("inalcançável")

    def request(self, method: str, path: str, payload: Any = None) -> Response:
        """Requisição autenticada; um 401 no meio da execução leva a um novo login (uma vez)."""
        generation = self._token_generation
        resp = self._send(method, path, payload)
        if resp.status == 401:  # o servidor não processou o pedido: repetir não é "nova tentativa"
            self._relogin(generation)
            resp = self._send(method, path, payload)
        return resp

    def _relogin(self, seen_generation: int) -> None:
        with self._login_lock:
            if self._token_generation == seen_generation:
                self.login()

    # -- operações ---------------------------------------------------------
    def wake(self) -> float:
        """Acorda um servidor que dorme (hospedagem gratuita) com GET /health."""
        if self.config.wake_wait <= 0:
            return 0.0
        start = time.monotonic()
        deadline = start + self.config.wake_wait
        with Ticker(f"{self.server.label}: aguardando o servidor acordar", self.config.progress):
            self._wake_loop(deadline)
        self.waited_seconds = time.monotonic() - start
        return self.waited_seconds

    def _wake_loop(self, deadline: float) -> None:
        last_error = "sem resposta"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(
                    f"{self.server.label} não respondeu a /health em {self.config.wake_wait:.0f} s "
                    f"({last_error})."
                )
            try:
                resp = self.session.get(self.server.url + "/health", timeout=(
                    min(self.config.connect_timeout, remaining), max(min(remaining, 120.0), 0.5)))
                if resp.status_code == 200:
                    return
                last_error = f"HTTP {resp.status_code}"
            except requests.exceptions.RequestException as exc:
                last_error = describe_exception(exc)
            time.sleep(min(2.0, max(deadline - time.monotonic(), 0)))

    def login(self) -> str:
        resp = self._send("POST", "/admin/login",
                          {"username": self.server.username, "password": self.server.password}, auth=False)
        body = resp.body if isinstance(resp.body, dict) else {}
        if resp.status in (400, 401):
            raise AuthError(
                f"{self.server.label}: login recusado para o usuário '{self.server.username}' "
                f"({body.get('error') or 'HTTP ' + str(resp.status)}). Confira usuário e senha. Se o servidor "
                "voltou vazio, ele só tem a conta padrão de fábrica: configure a senha dela "
                "(PRINCIPAL_ADMIN_PASSWORD ou BACKUP_ADMIN_PASSWORD) para restaurar.",
                resp.status,
            )
        token = body.get("token")
        if resp.status != 200 or not isinstance(token, str) or not token:
            raise ApiError(f"{self.server.label}: resposta inesperada ao fazer login ({_status_text(resp)}).",
                           resp.status)
        SECRETS.add(token)
        role = body.get("role")
        if role != "admin":
            raise AuthError(
                f"{self.server.label}: a conta '{self.server.username}' tem papel '{role}', não 'admin'. "
                "Com uma conta comum a API mostra só parte das licenças; use uma conta de administrador."
            )
        self.token = token
        self.role = role
        self._token_generation += 1
        return role

    def list_items(self, path: str) -> list[Any]:
        resp = self.request("GET", path)
        if resp.status != 200:
            raise ApiError(f"{self.server.label}: GET {path} respondeu {_status_text(resp)}.", resp.status)
        if resp.body is None:
            raise ApiError(f"{self.server.label}: GET {path} não devolveu JSON (página HTML de proxy ou resposta cortada).")
        if not isinstance(resp.body, dict) or "items" not in resp.body:
            raise ApiError(f"{self.server.label}: GET {path} devolveu JSON sem o campo 'items'.")
        if not isinstance(resp.body["items"], list):
            raise ApiError(f"{self.server.label}: GET {path} devolveu 'items' que não é uma lista.")
        return resp.body["items"]


def _api_error(resp: Response) -> str | None:
    return resp.body.get("error") if isinstance(resp.body, dict) else None


def _status_text(resp: Response) -> str:
    message = _api_error(resp)
    return f"HTTP {resp.status}" + (f": {message}" if message else "")


# ============================================================================
# Retrato: busca, valida e normaliza os dados de um servidor
# ============================================================================

class SnapshotError(Exception):
    """A listagem de um servidor não é confiável: nada é gravado nesse par."""


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
    status: str | None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    custom_interval: int | None = None
    features: str | None = None

    def settable(self) -> tuple:
        return (self.owner_name, self.cpf, self.email, self.address, self.license_type, self.created_by)

    def desired_settable(self) -> tuple:
        """O que o backup guardará ao receber este registro (created_by vazio vira 'admin')."""
        return self.settable()[:-1] + (self.created_by or DEFAULT_CREATED_BY,)

    def payload(self) -> dict[str, Any]:
        """Registro completo para o upsert. Campos vazios vão omitidos: a API grava o campo omitido
        como nulo (é o mesmo efeito), e um servidor real pode não aceitar null explícito."""
        values = dict(zip(SETTABLE_FIELDS, self.desired_settable()))
        return {"device_id": self.device_id, **{k: v for k, v in values.items() if v is not None}}


@dataclasses.dataclass
class Snapshot:
    server_url: str
    users: dict[str, User]
    licenses: dict[str, License]
    problems: list[dict[str, str]] = dataclasses.field(default_factory=list)  # registros estranhos
    login_username: str | None = None

    @property
    def invalid_keys(self) -> set[str]:
        return {p["chave"] for p in self.problems if p["tipo"] == "licenca"}


def normalize_text(value: Any, field: str, key: str) -> str | None:
    """Como o servidor guarda textos: sem espaços nas pontas, vazio vira nulo."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise SnapshotError(f"campo '{field}' com tipo inesperado ({type(value).__name__}) no registro {key!r}")
    value = value.strip()
    return value or None


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
        import email.utils
        return email.utils.parsedate_to_datetime(text).date()
    raise ValueError(value)


def _parse_interval(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise SnapshotError(f"campo 'custom_interval' com tipo inesperado ({type(value).__name__}) no registro {key!r}")


def _item_key(item: Any, index: int, key_field: str) -> str:
    if not isinstance(item, dict):
        raise SnapshotError(f"o item {index + 1} da lista não é um objeto JSON")
    key = item.get(key_field)
    if not isinstance(key, str) or not key.strip():
        raise SnapshotError(f"o item {index + 1} da lista não tem '{key_field}' válido")
    return key.strip()  # o servidor guarda a chave sem espaços nas pontas


def _problem(kind: str, key: str, text: str) -> dict[str, str]:
    return {"tipo": kind, "chave": key, "problema": text}


def _parse_listing(items: list[Any], key_field: str, kind: str,
                   parse_one: Callable[[dict[str, Any], str], tuple[Any, list[str]]]) -> tuple[dict[str, Any], list]:
    """Valida uma listagem inteira: chave presente e única (senão SnapshotError); problemas de um
    registro só (tipo desconhecido, texto gigante...) ficam anotados nele."""
    records: dict[str, Any] = {}
    problems = []
    for index, item in enumerate(items):
        key = _item_key(item, index, key_field)
        if key in records:
            noun = "usuário" if kind == "usuario" else key_field
            raise SnapshotError(f"{noun} duplicado na listagem: {key!r}")
        record, issues = parse_one(item, key)
        problems.extend(_problem(kind, key, text) for text in issues)
        records[key] = record
    return records, problems


def parse_user(item: dict[str, Any], key: str) -> tuple[User, list[str]]:
    user = User(key, normalize_text(item.get("email"), "email", key), normalize_text(item.get("role"), "role", key))
    return user, ([] if user.role in USER_ROLES else [f"papel desconhecido {user.role!r}"])


def parse_users(items: list[Any]) -> tuple[dict[str, User], list[dict[str, str]]]:
    return _parse_listing(items, "username", "usuario", parse_user)


def parse_license(item: dict[str, Any], key: str) -> tuple[License, list[str]]:
    issues = []
    texts = {name: normalize_text(item.get(name), name, key) for name in TEXT_FIELDS}
    for name, value in texts.items():
        if value and len(value) > MAX_TEXT_LEN:
            issues.append(f"campo '{name}' com {len(value)} caracteres (limite {MAX_TEXT_LEN})")
    if texts["license_type"] not in LICENSE_PERIOD_MONTHS:
        issues.append(f"tipo de licença desconhecido {texts['license_type']!r}")
    if texts["status"] not in LICENSE_STATUSES:
        issues.append(f"status desconhecido {texts['status']!r}")
    dates = {}
    for name in ("start_date", "end_date"):
        try:
            dates[name] = parse_date(item.get(name))
        except (ValueError, TypeError, OverflowError):
            dates[name] = None
            issues.append(f"data inválida em '{name}': {str(item.get(name))[:40]!r}")
    lic = License(
        device_id=key, **{name: texts[name] for name in SETTABLE_FIELDS}, status=texts["status"],
        features=texts["features"], custom_interval=_parse_interval(item.get("custom_interval"), key), **dates,
    )
    return lic, issues


def parse_licenses(items: list[Any]) -> tuple[dict[str, License], list[dict[str, str]]]:
    return _parse_listing(items, "device_id", "licenca", parse_license)


def fetch_snapshot(client: ApiClient) -> Snapshot:
    """Busca usuários e licenças; levanta SnapshotError se algo não for confiável."""
    try:
        users, user_problems = parse_users(client.list_items("/admin/users"))
        licenses, license_problems = parse_licenses(client.list_items("/admin/devices"))
    except SnapshotError as exc:
        raise SnapshotError(f"{client.server.label}: dados inutilizáveis: {exc}") from None
    return Snapshot(client.server.url, users, licenses, user_problems + license_problems,
                    login_username=client.server.username)


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
    role: str  # "principal" ou "backup"
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
    elas e monta o relatório. Em restaurar (a configuração é virada ao contrário) nada é consultado."""
    if config.mode == "restauracao":
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


def _server_list(server: str, role: str, raw: list[str] | None, asked: bool, aliases: dict[str, str]) -> ServerList:
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
    server_lists = tuple(_server_list(url, "principal" if index == 0 else "backup", lists.get(url), url in lists,
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


def failover_check_code(report: FailoverReport | None, check: bool, code: int) -> int:
    """verificar sai com 1 quando a rota de falha passa por URL não sincronizada (ou pela lista padrão);
    a sincronização normal não muda de código por isso."""
    if check and code == EXIT_OK and report is not None and report.serious:
        return EXIT_FALHAS
    return code


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


def failover_text(report: FailoverReport | None) -> list[str]:
    """Bloco curto do relatório humano; vazio quando a rota de falha está como configurada."""
    if report is None or not report.off:
        return []
    lines = ["🧭 Rota de falha dos clientes (GET /servers de cada servidor):"]
    for finding in report.findings:
        lines.append(f"   {'❌' if finding.serious else '⚠️ '} {finding.message}")
        lines += [f"      {server}: {_failover_route(urls)}" for server, urls in finding.lists]
    lines += [f"   ❔ {item.server}: {_UNKNOWN_TEXT}." for item in report.unknown]
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


def latest_failover(pairs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A rota de falha registrada na execução mais recente (detalhes dos pares do painel)."""
    found = [p for p in pairs if (p.get("detalhes") or {}).get("rota_de_falha")]
    newest = max(found, key=lambda p: p["ultima_execucao"] or "", default=None)
    return newest["detalhes"]["rota_de_falha"] if newest else None


def render_failover_card(details: dict[str, Any] | None) -> str:
    """Cartão "rota de falha dos clientes" do painel (a partir de failover_json; tudo escapado)."""
    if not details:
        return '<p class="vazio">Rota de falha dos clientes ainda não conferida (nenhuma execução registrada).</p>'
    unknown = [s for s in details.get("servidores", []) if s.get("estado") == ListState.UNKNOWN.value]
    css, state = (("falhando", "clientes caem em servidor não sincronizado") if details.get("grave") else
                  ("atrasado", "atenção") if details.get("achados") or unknown else ("saudavel", "como configurada"))
    servers = "".join(
        f'<li><span class="url">{_esc(s.get("url"))}</span> ({_esc(s.get("papel"))}): '
        + (_esc(_failover_route(tuple(s["lista"]))) if s.get("lista") is not None else _esc(s.get("estado")))
        + "</li>" for s in details.get("servidores", []))
    findings = "".join(f'<li class="{"grave" if f.get("grave") else "aviso"}">{_esc(f.get("mensagem"))}</li>'
                       for f in details.get("achados", []))
    findings += "".join(f"<li>{_esc(s.get('url'))}: {_esc(_UNKNOWN_TEXT)}</li>" for s in unknown)
    return (f'<div class="pares"><div class="par {css} rota-de-falha">'
            f'<div class="estado">{_esc(state.upper())}</div>'
            f"<div>Listas publicadas (GET /servers):</div><ul>{servers}</ul>"
            + (f"<ul>{findings}</ul>" if findings else "") + "</div></div>")


def configure_demo_failover(*servers: Any) -> None:
    """Demonstração: cada servidor de referência publica a lista certa (principal, depois o backup)."""
    for server in servers:
        if hasattr(server, "set_license_servers"):
            server.set_license_servers([s.url for s in servers])


# ============================================================================
# Planejador (puro): retratos + hoje → ações. Sem rede, sem arquivos.
# ============================================================================

CREATE_USER = "criar_usuario"
CREATE = "criar_licenca"
UPDATE = "atualizar_licenca"
RENEW = "renovar_licenca"
BLOCK = "bloquear"
ACTIVATE = "ativar"
DELETE = "excluir_licenca"
SET_CREATED_BY = "corrigir_created_by"
UPSERTS = (CREATE, UPDATE, RENEW)


@dataclasses.dataclass(frozen=True)
class Action:
    kind: str
    key: str
    reason: str
    payload: dict[str, Any] | None = None
    changes: tuple[tuple[str, Any, Any], ...] = ()  # (campo, antes, depois) para a auditoria
    side: str = "backup"  # servidor que recebe a escrita: "backup" ou "principal"


class Divergence(tuple):
    """Diferença que a API não permite corrigir: (tipo, chave, campo, principal, backup, observação)."""

    __slots__ = ()

    def __new__(cls, kind: str, key: str, field: str, primary: Any, backup: Any, note: str):
        return super().__new__(cls, (kind, key, field, primary, backup, note))

    def as_dict(self) -> dict[str, Any]:
        kind, key, field, primary, backup, note = self
        return {"tipo": kind, "chave": key, "campo": field, "principal": _jsonable(primary),
                "backup": _jsonable(backup), "observacao": note}


@dataclasses.dataclass
class PlanOptions:
    mode: str = "unidirecional"  # ou "bidirecional"
    conflict: str = "relatar"  # relatar | principal | backup
    mirror: bool = False  # --espelhar: apaga no backup o que não existe no principal
    max_deletions: int | None = None  # None = 10 % das licenças do lado, no máximo 50
    force: bool = False  # --forcar: passa por cima das travas de exclusão
    labels: dict[str, str] | None = None  # nomes exibidos dos lados (restaurar inverte principal e backup)
    only_missing: bool = False  # restaurar sem --forcar: só cria o que falta, não sobrescreve o destino
    journal: dict[str, Any] | None = None  # cadeias da execução anterior que podem ter ficado pela metade


@dataclasses.dataclass
class PairState:
    """Última versão sincronizada de cada registro de um par (principal, backup)."""
    primary_url: str
    backup_url: str
    count_primary: int = 0
    count_backup: int = 0
    users: set[str] = dataclasses.field(default_factory=set)
    # device_id → (hash principal, hash backup, status principal, status backup, fim principal, fim backup)
    licenses: dict[str, tuple] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Plan:
    user_actions: list[Action]
    license_chains: list[list[Action]]
    divergences: list[Divergence]
    backup_only_users: list[str]
    backup_only_licenses: list[str]
    skipped: list[dict[str, str]]
    licenses_compared: int
    parity_mismatches: list[str]  # veredito diferente mesmo depois do plano (não deveria acontecer)
    current_mismatches: list[str] = dataclasses.field(default_factory=list)  # diferente agora, antes do plano
    deletions: list[Action] = dataclasses.field(default_factory=list)
    held_deletions: list[Action] = dataclasses.field(default_factory=list)
    guard_message: str | None = None
    conflicts: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skipped_users: list[dict[str, str]] = dataclasses.field(default_factory=list)
    halted: bool = False  # um lado perdeu dados: nada é gravado neste par
    backup_only_allowed: list[str] = dataclasses.field(default_factory=list)  # só no backup e liberadas lá
    expected: dict[str, tuple[License, License]] = dataclasses.field(default_factory=dict)
    first_sync: bool = True

    @property
    def actions(self) -> list[Action]:
        return self.user_actions + [a for chain in self.license_chains for a in chain] + self.deletions


def add_months(start: dt.date, months: int) -> dt.date:
    """Soma meses como o servidor: o dia é limitado ao último dia do mês de destino."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def period_end(license_type: str | None, start: dt.date) -> dt.date | None:
    months = LICENSE_PERIOD_MONTHS.get(license_type or "anual", 12)
    return None if months is None else add_months(start, months)


def is_expired(lic: License, today: dt.date) -> bool:
    return lic.license_type != "vitalicia" and lic.end_date is not None and lic.end_date < today


def allows(lic: License | None, today: dt.date) -> bool:
    """O veredito que o servidor dá ao programa do cliente: liberado (True) ou negado."""
    return lic is not None and lic.status == "active" and not is_expired(lic, today)


def model_upsert(before: License | None, source: License, today: dt.date) -> License:
    """O que o servidor guarda depois de POST /admin/devices/create com o registro de `source`."""
    fields = dict(zip(SETTABLE_FIELDS, source.desired_settable()))
    kept = {"custom_interval": 60, "features": "core"} if before is None else {
        "custom_interval": before.custom_interval, "features": before.features}
    return License(device_id=source.device_id, **fields, status="active", start_date=today,
                   end_date=period_end(source.license_type, today), **kept)


def model_apply(lic: License | None, action: Action, today: dt.date, source: License | None = None) -> License | None:
    """Efeito de uma ação sobre a licença do servidor que a recebe (modelo usado pelo planejador e pelos testes)."""
    if action.kind in UPSERTS:
        return model_upsert(lic, source, today)
    if action.kind == DELETE or lic is None:
        return None
    if action.kind == BLOCK:
        return dataclasses.replace(lic, status="blocked")
    if action.kind == SET_CREATED_BY:
        return dataclasses.replace(lic, created_by=action.payload["created_by"])
    if action.kind == ACTIVATE:
        return dataclasses.replace(lic, status="active")
    return lic


def target_status(source: License, after: License, today: dt.date) -> str:
    """Status que o destino deve ter para dar o mesmo veredito da origem, com o mínimo de escritas.

    Origem liberada → 'active'. Origem negada (bloqueada, pendente ou vencida) e destino
    que já nega → fica como está. Origem negada e destino que liberaria → 'blocked'
    ('pending' não pode ser definido pela API, e as datas não podem ser copiadas).
    """
    if allows(source, today):
        return "active"
    if not allows(after, today):
        return after.status
    return "blocked"


def _changes(before: License | None, after: License) -> tuple[tuple[str, Any, Any], ...]:
    fields = SETTABLE_FIELDS + ("status",)
    if before is None:
        return tuple((f, None, getattr(after, f)) for f in fields if getattr(after, f) is not None)
    return tuple((f, getattr(before, f), getattr(after, f)) for f in fields
                 if getattr(before, f) != getattr(after, f))


SIDE_NAMES = {"backup": ("backup", "principal"), "principal": ("principal", "backup")}


def plan_license(source: License, target: License | None, today: dt.date, side: str = "backup",
                 labels: dict[str, str] | None = None, two_way: bool = False) -> tuple[list[Action], License]:
    """Ações (em ordem) que levam `target` (no servidor `side`) ao mesmo veredito e dados de `source`,
    e como o destino ficará depois delas."""
    here, there = ((labels or {}).get(name, name) for name in SIDE_NAMES[side])
    key = source.device_id
    chain: list[Action] = []
    after = target
    if target is None:
        after = model_upsert(None, source, today)
        chain.append(Action(CREATE, key, f"não existe no {here}", source.payload(), _changes(None, after), side))
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
    status = target_status(source, after, today)
    if allows(source, today) and is_expired(after, today):
        renewed = model_upsert(after, source, today)
        chain.append(Action(RENEW, key, f"vencida no {here} e válida no {there}: o período recomeça",
                            source.payload(), (("end_date", after.end_date, renewed.end_date),), side))
        after = renewed
    if after.status != status:
        kind = BLOCK if status == "blocked" else ACTIVATE
        chain.append(Action(kind, key, _status_reason(source, status, there),
                            changes=(("status", after.status, status),), side=side))
        after = dataclasses.replace(after, status=status)
    return chain, after


def _status_reason(source: License, status: str, there: str) -> str:
    if status == "active":
        return f"ativa e no prazo no {there}"
    if source.status == "blocked":
        return f"bloqueada no {there}"
    if source.status == "pending":
        return f"pendente no {there} (a API não define 'pending'; bloqueada para negar igual)"
    return f"vencida no {there} (datas não são copiáveis; bloqueada para negar igual)"


_NOTE_DATES = "datas não podem ser definidas pela API (o período recomeça onde a licença é criada)"
_NOTE_FIELD = "a API não permite definir este campo"
_NOTE_STATUS = "status diferente com o mesmo veredito ('pending' e datas não são copiáveis)"


def license_divergences(primary: License, backup: License) -> list[Divergence]:
    """O que continuará diferente entre os dois lados depois do plano, por limitação da API."""
    found = []
    key = primary.device_id
    for field, note in (("start_date", _NOTE_DATES), ("end_date", _NOTE_DATES), ("custom_interval", _NOTE_FIELD),
                        ("features", _NOTE_FIELD), ("status", _NOTE_STATUS)):
        if getattr(primary, field) != getattr(backup, field):
            found.append(Divergence("licenca", key, field, getattr(primary, field), getattr(backup, field), note))
    if primary.created_by != backup.created_by:
        found.append(Divergence("licenca", key, "created_by", primary.created_by, backup.created_by,
                                "vazio de um lado; a API grava 'admin'"))
    return found


def _create_user(user: User, side: str) -> Action:
    payload = {"username": user.username, "email": user.email, "role": user.role or "user"}
    payload = {k: v for k, v in payload.items() if v is not None}  # e-mail vazio vai omitido
    return Action(CREATE_USER, user.username, f"não existe no {side}", payload,
                  tuple((f, None, v) for f, v in payload.items()), side)


def plan_users(primary: Snapshot, backup: Snapshot, state: PairState | None = None,
               two_way: bool = False) -> tuple[list[Action], list[Divergence], list[str]]:
    """Usuários: só criação (a API não altera nem apaga usuários)."""
    actions, divergences = [], []
    known = state.users if state and two_way else set()  # no unidirecional, o que falta é recriado
    sources = [(primary, backup, "backup")] + ([(backup, primary, "principal")] if two_way else [])
    for source, target, side in sources:
        invalid = {p["chave"] for p in source.problems if p["tipo"] == "usuario"}
        for name in sorted(source.users):
            if name in target.users or name in invalid:
                continue
            if name in known:  # existia dos dois lados: foi apagado direto no servidor
                divergences.append(Divergence("usuario", name, "username", name if side == "backup" else None,
                                              None if side == "backup" else name,
                                              f"apagado no {side} desde a última sincronização; não foi recriado"))
            elif name == target.login_username:
                divergences.append(Divergence("usuario", name, "username", name, name,
                                              f"nome já usado por um super-admin no {side} (não listado pela API)"))
            else:
                actions.append(_create_user(source.users[name], side))
                divergences.append(Divergence("usuario", name, "senha", None, None,
                                              "senhas não são expostas pela API; uma senha nova foi gerada"))
    for name in sorted(set(primary.users) & set(backup.users)):
        p_user, b_user = primary.users[name], backup.users[name]
        for field in ("email", "role"):
            if getattr(p_user, field) != getattr(b_user, field):
                divergences.append(Divergence("usuario", name, field, getattr(p_user, field), getattr(b_user, field),
                                              "a API não altera e-mail nem papel de usuário existente"))
    backup_only = [] if two_way else sorted(set(backup.users) - set(primary.users))
    return actions, divergences, backup_only


# -- comparação em três vias (estado × principal × backup) ------------------------

def fingerprint(lic: License) -> str:
    """Resumo curto dos campos definíveis (o estado não guarda dados pessoais em claro)."""
    import hashlib
    return hashlib.blake2b(repr(lic.settable()).encode("utf-8"), digest_size=8).hexdigest()


def _renewed(now: dt.date | None, stored: str | None) -> bool:
    """Período renovado desde a última sincronização (o fim andou mais de 2 dias para frente)."""
    return bool(now and stored) and now > dt.date.fromisoformat(stored) + dt.timedelta(days=2)


def changed_since(lic: License | None, base: tuple, side: int) -> bool:
    """O registro de um lado (0 = principal, 1 = backup) mudou desde o estado salvo?"""
    if lic is None:
        return True
    return (fingerprint(lic) != base[side] or lic.status != base[2 + side]
            or _renewed(lic.end_date, base[4 + side]))


def same_record(a: License, b: License, today: dt.date) -> bool:
    return (a.desired_settable() == b.desired_settable() and a.status == b.status
            and allows(a, today) == allows(b, today))


def describe_conflict(key: str, p: License | None, b: License | None, why: str, resolution: str) -> dict[str, Any]:
    fields = []
    for field in SETTABLE_FIELDS + ("status", "end_date"):
        pv, bv = (getattr(p, field) if p else None), (getattr(b, field) if b else None)
        if pv != bv or p is None or b is None:
            fields.append({"campo": field, "principal": _jsonable(pv), "backup": _jsonable(bv)})
    return {"tipo": "licenca", "chave": key, "descricao": why, "resolucao": resolution,
            "principal_existe": p is not None, "backup_existe": b is not None, "campos": fields}


class _Planner:
    """Monta o plano de um par; acumula ações, divergências e o resultado esperado."""

    def __init__(self, primary: Snapshot, backup: Snapshot, today: dt.date, state: PairState | None,
                 options: PlanOptions):
        self.primary, self.backup, self.today, self.state, self.options = primary, backup, today, state, options
        self.chains: list[list[Action]] = []
        self.deletions: list[Action] = []
        self.conflicts: list[dict[str, Any]] = []
        self.divergences: list[Divergence] = []
        self.expected: dict[str, tuple[License, License]] = {}
        self.mismatches: list[str] = []
        self.current: list[str] = []
        self.compared = 0
        self.journal = options.journal or {}

    def resume(self, key: str, p: License | None, b: License | None) -> bool:
        """Cadeia da execução anterior cortada no meio (morta ou com falha): o lado de destino está num
        dos estados que a própria cadeia produziria → termina a cadeia em vez de ver 'mudou dos dois lados'."""
        entry = self.journal.get(key)
        if not entry or p is None or b is None:
            return False
        target = b if entry["origem"] == "principal" else p
        if [fingerprint(target), target.status] not in entry["alvo"]:
            return False
        self.sync(key, entry["origem"])
        return True

    def sync(self, key: str, source_side: str) -> None:
        """Leva o outro lado ao registro de `source_side` (criação, atualização, status)."""
        p, b = self.primary.licenses.get(key), self.backup.licenses.get(key)
        labels, two_way = self.options.labels, self.options.mode == "bidirecional"
        if source_side == "principal":
            chain, b_after = plan_license(p, b, self.today, "backup", labels, two_way)
            p_after = p
        else:
            chain, p_after = plan_license(b, p, self.today, "principal", labels, two_way)
            b_after = b
        if any(a.kind in (BLOCK, ACTIVATE) for a in chain) and not path_safe(key):
            return self._unreachable(key, p, b)
        if chain:
            self.chains.append(chain)
        self._settle(key, p_after, b_after)

    def _unreachable(self, key: str, p: License | None, b: License | None) -> None:
        """device_id que não cabe num caminho de URL (ex.: com '/'): o servidor real não acha a rota de
        bloqueio. Criar ou atualizar deixaria a licença liberada sem poder bloquear: nada é enviado."""
        self.divergences.append(Divergence(
            "licenca", key, "device_id", key if p else None, key if b else None,
            "contém '/' (ou é '.'/'..'): a API não consegue bloquear/ativar este id; nada foi enviado"))
        if allows(p, self.today) != allows(b, self.today):
            self.mismatches.append(key)
        if p is not None and b is not None:
            self.expected[key] = (p, b)

    def _settle(self, key: str, p_after: License, b_after: License) -> None:
        self.expected[key] = (p_after, b_after)
        self.divergences.extend(license_divergences(p_after, b_after))
        if allows(p_after, self.today) != allows(b_after, self.today):
            self.mismatches.append(key)

    def delete(self, key: str, side: str, why: str) -> None:
        self.deletions.append(Action(DELETE, key, why, side=side))

    def conflict(self, key: str, why: str) -> None:
        p, b = self.primary.licenses.get(key), self.backup.licenses.get(key)
        winner = self.options.conflict
        self.conflicts.append(describe_conflict(key, p, b, why, winner))
        if winner == "relatar":
            if allows(p, self.today) != allows(b, self.today):
                self.mismatches.append(key)
            return
        kept = p if winner == "principal" else b
        if kept is None:  # a versão vencedora é "apagada"
            self.delete(key, "backup" if winner == "principal" else "principal",
                        f"conflito resolvido a favor do {winner} (apagada lá)")
        else:
            self.sync(key, winner)

    def one_way(self, key: str) -> None:
        p, b = self.primary.licenses.get(key), self.backup.licenses.get(key)
        if p is not None and b is not None and self.options.only_missing:
            self._settle(key, p, b)  # restaurar sem --forcar: o que já existe no destino fica como está
        elif p is not None:
            self.sync(key, "principal")
        elif self.options.mirror and self.state is not None:
            self.delete(key, "backup", "não existe no principal (--espelhar)")
        elif self.state is not None and key in self.state.licenses and allows(b, self.today):
            # já foi sincronizada e sumiu do principal: bloqueia (reversível) para negar igual
            self.chains.append([Action(BLOCK, key, "apagada no principal desde a última sincronização "
                                       "(bloqueada para negar igual; --espelhar apagaria)",
                                       changes=(("status", b.status, "blocked"),))])

    def two_way(self, key: str) -> None:
        p, b = self.primary.licenses.get(key), self.backup.licenses.get(key)
        base = self.state.licenses.get(key) if self.state else None
        if self.resume(key, p, b):
            return None
        if base is None:
            if p is not None and b is not None and not same_record(p, b, self.today):
                if self.state is None:
                    return self.conflict(key, "diferente nos dois lados e sem estado salvo (primeira sincronização)")
                return self.conflict(key, "criada nos dois lados com dados diferentes")
            return self.sync(key, "principal" if p is not None else "backup")
        changed_p, changed_b = changed_since(p, base, 0), changed_since(b, base, 1)
        if p is None and b is None:
            return None
        if p is None or b is None:
            gone, present, survivor = ("principal", "backup", b) if p is None else ("backup", "principal", p)
            if changed_since(survivor, base, 0 if survivor is p else 1):
                return self.conflict(key, f"apagada no {gone} e alterada no {present}")
            return self.delete(key, present, f"apagada no {gone} desde a última sincronização")
        if changed_p and changed_b and not same_record(p, b, self.today):
            return self.conflict(key, "alterada nos dois lados desde a última sincronização")
        self.sync(key, "backup" if changed_b and not changed_p else "principal")

    def run(self) -> None:
        invalid = self.primary.invalid_keys
        two_way = self.options.mode == "bidirecional"
        keys = set(self.primary.licenses) | set(self.backup.licenses)
        if two_way and self.state:
            keys |= set(self.state.licenses)
        for key in sorted(keys - invalid):
            p, b = self.primary.licenses.get(key), self.backup.licenses.get(key)
            if p is not None or two_way:
                self.compared += 1
                if allows(p, self.today) != allows(b, self.today):
                    self.current.append(key)
            self.two_way(key) if two_way else self.one_way(key)


class _collector_paused:
    """Pausa o coletor de lixo cíclico durante o plano: o plano só cria objetos sem ciclos, e
    com 100 mil licenças as coletas completas (que varrem os retratos inteiros) eram metade do tempo."""

    def __enter__(self) -> None:
        import gc
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: Any) -> None:
        import gc
        if self._was_enabled:
            gc.enable()


def path_safe(device_id: str) -> bool:
    """O id pode ir no caminho /admin/devices/<id>/...? O Flask decodifica %2F antes de rotear."""
    return "/" not in device_id and device_id not in (".", "..")


def default_max_deletions(total: int) -> int:
    return min(50, max(1, -(-total // 10)))  # 10 % (arredondado para cima), no mínimo 1, no máximo 50


def guard_deletions(deletions: list[Action], primary: Snapshot, backup: Snapshot, state: PairState | None,
                    options: PlanOptions) -> tuple[list[Action], list[Action], str | None]:
    """Travas antes de qualquer exclusão: devolve (permitidas, retidas, explicação)."""
    if not deletions:
        return [], [], None
    reasons = []
    snapshots = {"principal": primary, "backup": backup}
    stored = {"principal": state.count_primary if state else 0, "backup": state.count_backup if state else 0}
    for side in ("backup", "principal"):
        count = sum(1 for a in deletions if a.side == side)
        if not count:
            continue
        other = "principal" if side == "backup" else "backup"
        now, before = len(snapshots[other].licenses), stored[other]
        if now == 0:
            reasons.append(f"a listagem do {other} está VAZIA ({before} licença(s) na última sincronização)")
        elif before and now < before / 2:
            reasons.append(f"o {other} perdeu mais da metade das licenças desde a última sincronização "
                           f"({before} → {now})")
        limit = options.max_deletions if options.max_deletions is not None else \
            default_max_deletions(len(snapshots[side].licenses))
        if count > limit:
            reasons.append(f"{count} exclusão(ões) no {side} passam do limite de {limit} (--max-exclusoes)")
    if not reasons:
        return deletions, [], None
    numbers = "; ".join(reasons)
    if options.force:
        return deletions, [], f"--forcar: exclusões aplicadas apesar de: {numbers}"
    return [], deletions, (f"Exclusões RETIDAS ({len(deletions)}): {numbers}. Se um servidor voltou vazio ou "
                           "perdeu dados, use 'python sincronizar_bancos.py restaurar' para copiá-los de volta; "
                           "se as exclusões são mesmo desejadas, rode de novo com --forcar.")


def plan_pair(primary: Snapshot, backup: Snapshot, today: dt.date, state: PairState | None = None,
              options: PlanOptions | None = None) -> Plan:
    """Planeja a sincronização de um par (principal, backup). Puro: sem rede e sem arquivos."""
    options = options or PlanOptions()
    two_way = options.mode == "bidirecional"
    user_actions, user_divergences, backup_only_users = plan_users(primary, backup, state, two_way)
    planner = _Planner(primary, backup, today, state, options)
    with _collector_paused():
        planner.run()
    allowed, held, message = guard_deletions(planner.deletions, primary, backup, state, options)
    touched = {a.key for a in allowed + held}
    backup_only = [] if two_way else sorted(set(backup.licenses) - set(primary.licenses) - touched)
    blocked_now = {chain[0].key for chain in planner.chains}
    lost = data_loss(primary, backup, state, two_way)
    halted = bool(lost) and not options.force
    if lost:
        message = (f"{'--forcar: seguindo apesar de: ' if options.force else 'NADA foi gravado neste par: '}{lost}. "
                   "Se um servidor voltou vazio ou perdeu dados, use 'python sincronizar_bancos.py restaurar' "
                   "para copiá-los de volta." + ("" if options.force else " Para seguir assim mesmo: --forcar.")
                   + (f" {message}" if message else ""))
    if halted:  # nada é gravado; as exclusões que haveria aparecem como retidas, e a paridade é a de agora
        user_actions, planner.chains, allowed, held = [], [], [], allowed + held
        planner.mismatches = list(planner.current)
    return Plan(
        halted=halted,
        backup_only_allowed=[k for k in backup_only if allows(backup.licenses[k], today) and k not in blocked_now],
        user_actions=user_actions, license_chains=planner.chains,
        divergences=user_divergences + planner.divergences, backup_only_users=backup_only_users,
        backup_only_licenses=backup_only, skipped=[p for p in primary.problems if p["tipo"] == "licenca"],
        licenses_compared=planner.compared, parity_mismatches=planner.mismatches,
        current_mismatches=planner.current, deletions=allowed, held_deletions=held, guard_message=message,
        conflicts=planner.conflicts, expected=planner.expected, first_sync=state is None,
        skipped_users=[p for p in primary.problems if p["tipo"] == "usuario"],
    )


def data_loss(primary: Snapshot, backup: Snapshot, state: PairState | None, two_way: bool) -> str | None:
    """Um lado (a origem; no bidirecional, qualquer um) que voltou vazio ou perdeu mais da metade das
    licenças desde a última sincronização não pode servir de modelo: o par inteiro para (código 5)."""
    sides = [("principal", primary, backup, state.count_primary if state else 0)]
    if two_way:
        sides.append(("backup", backup, primary, state.count_backup if state else 0))
    for name, snap, other, before in sides:
        now = len(snap.licenses)
        # Origem vazia no unidirecional: suspeita mesmo sem estado. No bidirecional, sem estado, um lado
        # vazio é só a primeira sincronização (tudo é copiado para ele, nada é apagado).
        if now == 0 and other.licenses and (before or not two_way):
            return f"a listagem do {name} está VAZIA (o outro lado tem {len(other.licenses)} licença(s))"
        if before and now < before / 2:
            return f"o {name} perdeu mais da metade das licenças desde a última sincronização ({before} → {now})"
    return None


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


# ============================================================================
# Executor: aplica as ações pela API, em paralelo limitado
# ============================================================================

@dataclasses.dataclass
class Result:
    action: Action
    ok: bool
    message: str = ""
    unsyncable: bool = False  # não é falha: a API não permite (ex.: nome de super-admin)


class Progress:
    """Contador ao vivo no terminal (só em terminal interativo)."""

    def __init__(self, label: str, total: int, enabled: bool):
        self.label, self.total, self.done = label, total, 0
        self.enabled = enabled and total >= 20 and sys.stderr.isatty()
        self._lock = threading.Lock()
        self._last = 0.0

    def step(self) -> None:
        with self._lock:
            self.done += 1
            now = time.monotonic()
            if self.enabled and (now - self._last > 0.2 or self.done == self.total):
                self._last = now
                sys.stderr.write(f"\r   {self.label}: {self.done}/{self.total}")
                if self.done == self.total:
                    sys.stderr.write("\n")
                sys.stderr.flush()


class Executor:
    def __init__(self, client: ApiClient, credentials: "CredentialStore", config: Config,
                 on_result: Callable[[Result], None] | None = None):
        self.client = client
        self.credentials = credentials
        self.config = config
        self.on_result = on_result or (lambda result: None)  # ex.: auditoria gravada na hora
        self._stopping = threading.Event()

    def run(self, user_actions: list[Action], chains: list[list[Action]], deletions: list[Action] = ()) -> list[Result]:
        """Usuários primeiro, depois as licenças (cada cadeia em ordem), por último as exclusões."""
        results = self._run_chains([[a] for a in user_actions], "usuários")
        results += self._run_chains(chains, "licenças")
        results += self._run_chains([[a] for a in deletions], "exclusões")
        return results

    def _run_chains(self, chains: list[list[Action]], label: str) -> list[Result]:
        progress = Progress(label, sum(len(c) for c in chains), self.config.progress)
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

    def _run_chain(self, chain: list[Action], progress: Progress) -> list[Result]:
        """Ações de um mesmo registro, em ordem. Segue mesmo após falha: um bloqueio
        depois de um upsert incerto é o que mantém o backup negando como o principal."""
        results = []
        if self._stopping.is_set():
            return results
        for action in chain:
            try:
                result = self.apply(action)
            except ApiError as exc:
                result = Result(action, False, str(exc))
            except OSError as exc:  # ex.: arquivo de senhas sem permissão: essa ação não é feita
                result = Result(action, False, f"erro de arquivo: {exc.strerror or exc.__class__.__name__}")
            results.append(result)
            self.on_result(result)
            progress.step()
        return results

    def apply(self, action: Action) -> Result:
        if action.kind == CREATE_USER:
            return self._create_user(action)
        if action.kind in UPSERTS:
            resp = self.client.request("POST", "/admin/devices/create", action.payload)
            return self._result(action, resp, 201)
        quoted = urllib.parse.quote(action.key, safe="")
        if action.kind == SET_CREATED_BY:
            return self._result(action, self.client.request("POST", "/admin/devices/update-created-by",
                                                            action.payload), 200)
        if action.kind == DELETE:
            resp = self.client.request("DELETE", f"/admin/devices/{quoted}/delete")
            if resp.status == 404 and _api_error(resp) == "Licença não encontrada.":
                return Result(action, True, "já não existia")  # ex.: nova tentativa após resposta perdida
            return self._result(action, resp, 200)
        path = f"/admin/devices/{quoted}/deactivate"
        wanted = "blocked" if action.kind == BLOCK else "active"
        resp = self.client.request("POST", path, {"action": "block" if action.kind == BLOCK else "activate"})
        result = self._result(action, resp, 200)
        if result.ok and isinstance(resp.body, dict) and resp.body.get("status") not in (None, wanted):
            return Result(action, False, f"o servidor respondeu status {resp.body.get('status')!r}")
        return result

    @staticmethod
    def _result(action: Action, resp: Response, expected: int) -> Result:
        if resp.status == expected or (200 <= resp.status < 300 and resp.body is not None):
            return Result(action, True)
        return Result(action, False, f"o servidor respondeu {_status_text(resp)}")

    def _create_user(self, action: Action) -> Result:
        password = secrets.token_urlsafe(18)  # 24 caracteres aleatórios
        SECRETS.add(password)
        entry = self.credentials.record(self.client.server.url, action.key, password, "solicitado")
        resp = self.client.request("POST", "/admin/users/create", {**action.payload, "password": password})
        if resp.status == 201:
            self.credentials.update(entry, "criado")
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


# ============================================================================
# Estado e histórico (arquivos gravados de forma atômica em DADOS_DIR)
# ============================================================================

CREDENTIALS_FILE = "credenciais_usuarios_criados.txt"
LAST_RUN_FILE = "ultima_execucao.json"
HISTORY_FILE = "historico.sqlite3"
LOCK_FILE = "sincronizacao.lock"


def ensure_data_dir(path: str) -> str:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"Não foi possível criar a pasta de dados {path}: {exc.strerror}") from None
    return path


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

    def _load(self) -> None:
        """Lê uma única vez, no primeiro registro da execução, o que execuções anteriores gravaram."""
        if self._loaded:
            return
        self._loaded = True
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as handle:
                self._old = handle.read()
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


class History:
    """Histórico em SQLite: uma linha por execução e par, mais a auditoria de cada escrita."""

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
    """

    def __init__(self, data_dir: str, retention_days: int = 90):
        import sqlite3
        self.path = os.path.join(data_dir, HISTORY_FILE)
        self._lock = threading.Lock()
        self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(self.SCHEMA)
        self.retention_days = retention_days
        self._pending: list[tuple] = []
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self._flush()
            self.db.close()

    def start_pair(self, run_id: str, started: str, mode: str, primary: str, backup: str) -> int:
        with self._lock, self.db:
            self.db.execute("UPDATE execucoes SET situacao='interrompida' WHERE situacao='em andamento' "
                            "AND execucao != ?", (run_id,))
            cursor = self.db.execute(
                "INSERT INTO execucoes (execucao, inicio, modo, principal, backup, situacao) "
                "VALUES (?, ?, ?, ?, ?, 'em andamento')", (run_id, started, mode, primary, backup))
            return cursor.lastrowid

    AUDIT_BATCH = 50

    def audit(self, run_id: str, server: str, result: Result) -> None:
        """Guarda a escrita na auditoria; grava em lotes de 50 ou a cada segundo (uma execução morta
        perde no máximo esse último pedaço da auditoria; os dados nos servidores não dependem dela)."""
        changes = [[f, _jsonable(a), _jsonable(b)] for f, a, b in result.action.changes]
        row = (run_id, now_iso(), server, result.action.key, result.action.kind, int(result.ok),
               SECRETS.mask(result.message) or None, json.dumps(changes, ensure_ascii=False))
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

    def finish_pair(self, row_id: int, pair: dict[str, Any]) -> None:
        parity = pair.get("paridade") or {}
        with self._lock:
            self._flush()
        with self._lock, self.db:
            self.db.execute(
                "UPDATE execucoes SET fim=?, duracao_s=?, situacao=?, codigo_saida=?, contagens=?, falhas=?, "
                "conflitos=?, divergencias=?, paridade_ok=?, paridade_total=?, paridade_diferentes=?, erro=?, "
                "detalhes=? WHERE id=?",
                (pair["fim"], pair["duracao_s"], pair["situacao"], pair["codigo_saida"],
                 json.dumps(pair.get("contagens", {}), ensure_ascii=False), len(pair.get("falhas", [])),
                 len(pair.get("conflitos", [])), len(pair.get("divergencias", [])),
                 None if not parity else int(bool(parity.get("ok"))), parity.get("total"),
                 len(parity.get("diferentes", [])) if parity else None, pair.get("erro"),
                 SECRETS.mask(json.dumps(_pair_details(pair), ensure_ascii=False)), row_id))

    # -- leitura (historico, painel) ------------------------------------------
    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Últimas execuções (uma linha por par), da mais nova para a mais antiga."""
        rows = self._dicts("SELECT * FROM execucoes ORDER BY id DESC LIMIT ?", (limit,))
        for row in rows:
            row["contagens"] = json.loads(row["contagens"] or "{}")
            row["detalhes"] = json.loads(row["detalhes"] or "{}")
        return rows

    def _dicts(self, sql: str, params: tuple) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self.db.execute(sql, params)
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def audit_trail(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._dicts("SELECT momento, servidor, chave, acao, ok, mensagem, mudancas FROM auditoria "
                           "WHERE execucao = ? ORDER BY servidor, chave, id", (run_id,))
        for row in rows:
            row["ok"] = bool(row["ok"])
            row["mudancas"] = json.loads(row["mudancas"] or "[]")
        return rows

    def prune(self) -> int:
        if self.retention_days <= 0:
            return 0
        limit = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=self.retention_days)).isoformat()
        with self._lock, self.db:
            old = [r[0] for r in self.db.execute("SELECT execucao FROM execucoes WHERE inicio < ?", (limit,))]
            self.db.executemany("DELETE FROM auditoria WHERE execucao = ?", [(r,) for r in set(old)])
            return self.db.execute("DELETE FROM execucoes WHERE inicio < ?", (limit,)).rowcount


STATE_DIR = "estado"
STATE_VERSION = 1


def state_path(data_dir: str, primary_url: str, backup_url: str) -> str:
    import hashlib
    digest = hashlib.sha256(f"{primary_url}|{backup_url}".encode("utf-8")).hexdigest()[:16]
    return os.path.join(data_dir, STATE_DIR, f"par-{digest}.json")


def load_state(data_dir: str, primary_url: str, backup_url: str) -> tuple[PairState | None, str | None]:
    """Lê e valida o estado do par. Ausente ou corrompido → None (primeira sincronização)."""
    path = state_path(data_dir, primary_url, backup_url)
    if not os.path.exists(path):
        return None, None
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
        return _state_from_json(raw, primary_url, backup_url), None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        return None, (f"estado salvo do par ilegível ({exc.__class__.__name__}); tratado como primeira "
                      "sincronização: nenhuma exclusão, conflitos relatados")


def _state_from_json(raw: Any, primary_url: str, backup_url: str) -> PairState:
    if not isinstance(raw, dict) or raw.get("versao") != STATE_VERSION:
        raise ValueError("versão desconhecida")
    if raw.get("principal") != primary_url or raw.get("backup") != backup_url:
        raise ValueError("par diferente")
    licenses = {}
    for key, entry in raw["licencas"].items():
        if not (isinstance(entry, list) and len(entry) == 6 and all(v is None or isinstance(v, str) for v in entry)):
            raise ValueError(f"registro inválido {key!r}")
        for stored in entry[4:]:
            if stored:
                dt.date.fromisoformat(stored)
        licenses[key] = tuple(entry)
    users = raw["usuarios"]
    if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
        raise ValueError("usuarios")
    return PairState(primary_url, backup_url, int(raw["contagem"]["principal"]), int(raw["contagem"]["backup"]),
                     set(users), licenses)


def save_state(data_dir: str, state: PairState) -> None:
    path = state_path(data_dir, state.primary_url, state.backup_url)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    doc = {"versao": STATE_VERSION, "principal": state.primary_url, "backup": state.backup_url,
           "atualizado_em": now_iso(),
           "contagem": {"principal": state.count_primary, "backup": state.count_backup},
           "usuarios": sorted(state.users),
           "licencas": {key: list(state.licenses[key]) for key in sorted(state.licenses)}}
    atomic_write(path, json.dumps(doc, ensure_ascii=False, separators=(",", ":")))


def journal_path(data_dir: str, primary_url: str, backup_url: str) -> str:
    return state_path(data_dir, primary_url, backup_url)[:-len(".json")] + ".diario.json"


def journal_entries(plan: "Plan", primary: Snapshot, backup: Snapshot, today: dt.date,
                    only: set[str] | None = None) -> dict[str, Any]:
    """Para cada cadeia: lado de origem e os estados (hash, status) por que o destino passa."""
    entries = {}
    for chain in plan.license_chains:
        key, side = chain[0].key, chain[0].side
        if only is not None and key not in only:
            continue
        source, target = (primary, backup) if side == "backup" else (backup, primary)
        current, states = target.licenses.get(key), []
        for action in chain:
            current = model_apply(current, action, today, source.licenses.get(key))
            if current is not None:
                states.append([fingerprint(current), current.status])
        entries[key] = {"origem": "principal" if side == "backup" else "backup", "alvo": states}
    return entries


def save_journal(data_dir: str, primary_url: str, backup_url: str, entries: dict[str, Any]) -> None:
    path = journal_path(data_dir, primary_url, backup_url)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    atomic_write(path, json.dumps(entries, ensure_ascii=False))


def load_journal(data_dir: str, primary_url: str, backup_url: str) -> dict[str, Any]:
    try:
        with open(journal_path(data_dir, primary_url, backup_url), encoding="utf-8") as handle:
            raw = json.load(handle)
        return {k: v for k, v in raw.items() if isinstance(v, dict)
                and v.get("origem") in ("principal", "backup") and isinstance(v.get("alvo"), list)}
    except (OSError, ValueError, AttributeError):
        return {}


def next_state(plan: Plan, results: list[Result], old: PairState | None, primary: Snapshot, backup: Snapshot,
               primary_url: str, backup_url: str) -> PairState:
    """Estado depois da execução: o que ficou igual nos dois lados. Registros com falha,
    conflito não resolvido ou exclusão retida mantêm a versão antiga (serão vistos de novo)."""
    failed = {r.action.key for r in results if not r.ok and r.action.kind != CREATE_USER}
    keep_old = failed | {c["chave"] for c in plan.conflicts if c["resolucao"] == "relatar"} | \
        {a.key for a in plan.held_deletions}
    licenses: dict[str, tuple] = {}
    for key, (p_after, b_after) in plan.expected.items():
        if key not in keep_old:
            licenses[key] = (fingerprint(p_after), fingerprint(b_after), p_after.status, b_after.status,
                             _jsonable(p_after.end_date), _jsonable(b_after.end_date))
    deleted = {r.action.key for r in results if r.ok and r.action.kind == DELETE}
    present = set(primary.licenses) | set(backup.licenses)
    for key, entry in (old.licenses.items() if old else ()):
        # não planejados agora (só no backup no modo unidirecional, inválidos, com falha, em conflito):
        # continuam lembrados enquanto existirem em algum lado
        if (key in keep_old or key not in licenses) and key in present and key not in deleted:
            licenses[key] = entry
    for result in results:  # bloqueio derivado de uma licença que só restou no backup: não é "mudança do backup"
        key = result.action.key
        if result.ok and result.action.kind == BLOCK and key not in plan.expected and key in licenses:
            entry = licenses[key]
            licenses[key] = entry[:3] + ("blocked",) + entry[4:]
    done = [r.action for r in results if r.ok and not r.unsyncable]
    delta = {"principal": 0, "backup": 0}
    for action in done:
        if action.kind in (CREATE, DELETE):
            delta[action.side] += 1 if action.kind == CREATE else -1
    users = set(primary.users) & set(backup.users)
    users |= {a.key for a in done if a.kind == CREATE_USER}
    count_p, count_b = len(primary.licenses) + delta["principal"], len(backup.licenses) + delta["backup"]
    held_sides = {a.side for a in plan.held_deletions}
    if old and "backup" in held_sides:  # exclusões no backup retidas: o principal encolhido não vira referência
        count_p = old.count_primary
    if old and "principal" in held_sides:
        count_b = old.count_backup
    return PairState(primary_url, backup_url, count_p, count_b, users, licenses)


def swap_state(state: PairState) -> PairState:
    """Estado calculado com os lados trocados (restaurar: origem = backup, destino = principal)."""
    return PairState(state.backup_url, state.primary_url, state.count_backup, state.count_primary, state.users,
                     {k: (t[1], t[0], t[3], t[2], t[5], t[4]) for k, t in state.licenses.items()})


def _pair_details(pair: dict[str, Any], limit: int = 200) -> dict[str, Any]:
    """O que o painel mostra de um par: divergências (amostra), falhas, só no backup, diferentes."""
    by_field: dict[str, int] = {}
    for item in pair.get("divergencias", []):
        by_field[item["campo"]] = by_field.get(item["campo"], 0) + 1
    return {
        "divergencias_por_campo": by_field,
        "divergencias": pair.get("divergencias", [])[:limit],
        "falhas": pair.get("falhas", [])[:limit],
        "conflitos": pair.get("conflitos", [])[:limit],
        "so_no_backup": {k: v[:limit] for k, v in pair.get("so_no_backup", {}).items()},
        "paridade_diferentes": (pair.get("paridade") or {}).get("diferentes", [])[:limit],
        "rota_de_falha": pair.get("rota_de_falha"),  # rota de falha
    }


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def acquire_lock(data_dir: str) -> FileLock:
    """Impede duas sincronizações ao mesmo tempo. A trava é do sistema operacional:
    se o processo morrer (até com kill -9), ela é liberada sozinha."""
    lock = FileLock(os.path.join(data_dir, LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except LockTimeout:
        raise LockBusy() from None
    return lock


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


class LockBusy(Exception):
    """Outra execução segura a trava (código de saída 3)."""


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
    """Escreve o relatório humano à medida que a execução anda (nada no modo --json)."""

    def __init__(self, json_mode: bool, stream=None):
        self.json_mode = json_mode
        self.stream = stream or sys.stdout

    def say(self, text: str = "") -> None:
        if not self.json_mode:
            self.stream.write(SECRETS.mask(text) + "\n")
            self.stream.flush()

    def warn(self, text: str) -> None:
        """Avisos vão para stderr também no modo --json (o stdout fica só com o JSON)."""
        if self.json_mode:
            sys.stderr.write(SECRETS.mask(text) + "\n")
        else:
            self.say(text)


def count_changes(counts: dict[str, Any]) -> int:
    """Total de escritas no backup de um dicionário de contagens (criadas, atualizadas, ...)."""
    return sum(v for k, v in counts.items() if k in COUNT_KEYS.values())


def count_results(plan: Plan, results: list[Result] | None) -> dict[str, Any]:
    """Contagens das escritas no backup (chaves planas) e, no modo bidirecional, no principal."""
    sides = {side: {name: 0 for name in COUNT_KEYS.values()} for side in ("backup", "principal")}
    failures = 0
    for result in results if results is not None else [Result(a, True) for a in plan.actions]:
        if result.unsyncable:
            continue
        if result.ok:
            sides[result.action.side][COUNT_KEYS[result.action.kind]] += 1
        else:
            failures += 1
    counts: dict[str, Any] = dict(sides["backup"])
    counts.update(falhas=failures, licencas_sem_mudanca=plan.licenses_compared - len(plan.license_chains),
                  divergencias=len(plan.divergences), conflitos=len(plan.conflicts),
                  exclusoes_retidas=len(plan.held_deletions), no_principal=sides["principal"])
    return counts


def _action_line(result: Result, simulate: bool) -> str:
    icon, done, todo, verb = ACTION_LABELS[result.action.kind]
    if not result.ok:
        return f"   ❌ {result.action.key}: falhou ao {verb} — {result.message}"
    extra = f" ({result.message})" if result.message else ""
    return f"   {icon} {result.action.key}: {todo if simulate else done} — {result.action.reason}{extra}"


def report_actions(rep: Reporter, results: list[Result], simulate: bool, total: int, noun: str, synced: int,
                   done_word: str) -> None:
    shown = [r for r in results if not r.ok] + [r for r in results if r.ok]
    for result in shown[:MAX_LINES]:
        rep.say(_action_line(result, simulate))
    if len(shown) > MAX_LINES:
        rep.say(f"   … e mais {len(shown) - MAX_LINES} ações (lista completa com --json ou no histórico)")
    rep.say(f"   ✅ {synced}/{total} {noun} {'em dia após o plano' if simulate else done_word}")


def summarize_divergences(divergences: list[Divergence]) -> list[str]:
    groups: dict[tuple[str, str], list[str]] = {}
    for kind, key, field, _p, _b, _note in divergences:
        groups.setdefault((kind, field), []).append(key)
    lines = []
    for (kind, field), keys in sorted(groups.items()):
        noun = "usuário(s)" if kind == "usuario" else "licença(s)"
        sample = ", ".join(keys[:5]) + (f", … (+{len(keys) - 5})" if len(keys) > 5 else "")
        lines.append(f"   - {field}: {len(keys)} {noun}: {sample}")
    return lines


def pair_document(backup_url: str, plan: Plan | None, results: list[Result] | None, simulate: bool,
                  swap_sides: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {"backup": backup_url, "simulacao": simulate}
    if plan is None:
        return doc
    failed_keys = {r.action.key for r in results or [] if not r.ok}
    mismatches = sorted(set(plan.parity_mismatches) | {k for k in failed_keys if k in _license_keys(plan)})
    divergences = [d.as_dict() for d in plan.divergences]
    if swap_sides:  # restaurar: no plano a origem (backup) faz o papel de "principal"
        for item in divergences:
            item["principal"], item["backup"] = item["backup"], item["principal"]
    parity_ok = not mismatches and not plan.skipped
    doc.update({
        "contagens": count_results(plan, results),
        "acoes": [_result_dict(r) for r in (results if results is not None else [Result(a, True) for a in plan.actions])],
        "falhas": [_result_dict(r) for r in results or [] if not r.ok],
        "divergencias": divergences,
        "conflitos": plan.conflicts,
        "exclusoes_retidas": [{"chave": a.key, "lado": a.side, "motivo": a.reason} for a in plan.held_deletions],
        "trava_exclusoes": plan.guard_message,
        "primeira_sincronizacao": plan.first_sync,
        "so_no_backup": {"usuarios": plan.backup_only_users, "licencas": plan.backup_only_licenses,
                         "licencas_liberadas": plan.backup_only_allowed},
        "parado_por_perda_de_dados": plan.halted,
        "registros_ignorados": plan.skipped + plan.skipped_users,
        "paridade": {"ok": parity_ok, "total": plan.licenses_compared,
                     "iguais": plan.licenses_compared - len(mismatches), "diferentes": mismatches,
                     "ignoradas": len(plan.skipped)},
        "paridade_antes": {"ok": not plan.current_mismatches, "total": plan.licenses_compared,
                           "diferentes": plan.current_mismatches},
        "pendencias": len(plan.actions) + len(plan.held_deletions),
    })
    return doc


def _license_keys(plan: Plan) -> set[str]:
    return {chain[0].key for chain in plan.license_chains} | {a.key for a in plan.deletions}


def _result_dict(result: Result) -> dict[str, Any]:
    return {"tipo": result.action.kind, "chave": result.action.key, "motivo": result.action.reason,
            "ok": result.ok, "mensagem": result.message or None, "nao_sincronizavel": result.unsyncable,
            "mudancas": [{"campo": f, "antes": _jsonable(a), "depois": _jsonable(b)}
                         for f, a, b in result.action.changes]}


# ============================================================================
# Painel web e /status.json (servidor HTTP da biblioteca padrão)
# ============================================================================

PANEL_DEFAULT_PORT = 8765
PANEL_DEFAULT_MAX_DELAY_MIN = 120.0


def _parse_iso(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def pair_health(rows: list[dict[str, Any]], max_delay_min: float, now: dt.datetime) -> list[dict[str, Any]]:
    """Estado de cada par (principal → backup) a partir das execuções, da mais nova para a mais antiga."""
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["principal"], row["backup"])
        info = pairs.setdefault(key, {"principal": key[0], "backup": key[1], "ultima": None, "ultimo_sucesso": None})
        if row["situacao"] == "em andamento":
            continue
        if info["ultima"] is None:
            info["ultima"] = row
        if info["ultimo_sucesso"] is None and row["situacao"] == "ok":
            info["ultimo_sucesso"] = row
    result = []
    for info in pairs.values():
        last, success = info["ultima"], info["ultimo_sucesso"]
        ended = _parse_iso(success["fim"]) if success else None
        delay = (now - ended).total_seconds() / 60 if ended else None
        if last is None:
            state = "sem execuções concluídas"
        elif last["situacao"] != "ok":
            state = "falhando"
        elif delay is None or delay > max_delay_min:
            state = "atrasado"
        else:
            state = "saudável"
        result.append({
            "principal": info["principal"], "backup": info["backup"], "estado": state,
            "saudavel": state == "saudável", "ultima_execucao": last["fim"] if last else None,
            "ultima_situacao": last["situacao"] if last else None, "ultimo_erro": last["erro"] if last else None,
            "ultimo_sucesso": success["fim"] if success else None,
            "atraso_min": None if delay is None else round(delay, 1),
            "detalhes": last["detalhes"] if last else {},
        })
    return sorted(result, key=lambda item: (item["principal"], item["backup"]))


def status_document(history: History, max_delay_min: float) -> tuple[int, dict[str, Any]]:
    """Resposta de /status.json: 200 se todo par teve sucesso recente, 503 caso contrário."""
    now = dt.datetime.now(dt.timezone.utc)
    pairs = pair_health(history.runs(500), max_delay_min, now)
    ok = bool(pairs) and all(p["saudavel"] for p in pairs)
    body = {"ok": ok, "gerado_em": now.isoformat(timespec="seconds"), "max_atraso_min": max_delay_min,
            "mensagem": "todos os backups sincronizados" if ok else (
                "nenhuma execução registrada" if not pairs else "há backups atrasados ou falhando"),
            "pares": [{k: v for k, v in p.items() if k != "detalhes"} for p in pairs]}
    return (200 if ok else 503), body


def _when(text: str | None) -> str:
    moment = _parse_iso(text)
    return moment.strftime("%d/%m/%Y %H:%M UTC") if moment else "—"


def _esc(value: Any) -> str:
    import html
    return html.escape("" if value is None else str(value), quote=True)


def render_chart(rows: list[dict[str, Any]], width: int = 640, height: int = 160) -> str:
    """Gráfico SVG (inline) das mudanças aplicadas por execução, da mais antiga à mais nova."""
    rows = list(reversed(rows[:40]))
    if not rows:
        return '<p class="vazio">Sem execuções para o gráfico.</p>'
    values = [count_changes(r["contagens"]) for r in rows]
    failures = [r["contagens"].get("falhas", 0) + (1 if r["situacao"] not in ("ok", "em andamento") else 0)
                for r in rows]
    top = max(values + failures + [1])
    step = min(width / len(rows), 40.0)
    bars = []
    for index, (row, value, failed) in enumerate(zip(rows, values, failures)):
        x = index * step + step * 0.15
        h = (height - 20) * value / top
        color = "#c0392b" if failed else "#2e86de"
        bars.append(f'<rect x="{x:.1f}" y="{height - 15 - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" '
                    f'fill="{color}"><title>{_esc(row["inicio"])} → {_esc(row["backup"])}: {value} mudança(s), '
                    f'{_esc(row["situacao"])}</title></rect>')
    return (f'<svg class="grafico" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="Mudanças por execução" xmlns="http://www.w3.org/2000/svg">'
            f'<line x1="0" y1="{height - 15}" x2="{width}" y2="{height - 15}" stroke="#888"/>'
            + "".join(bars) +
            f'<text x="2" y="12" font-size="11" fill="#555">máx. {top} mudança(s) por execução</text></svg>')


PANEL_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:1rem;background:#f5f6f8;color:#222}
h1{font-size:1.4rem;margin:.2rem 0 1rem} h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.pares{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:.8rem}
.par{background:#fff;border-radius:8px;padding:.8rem;border-left:6px solid #999;box-shadow:0 1px 2px #0002}
.par.saudavel{border-color:#27ae60}.par.atrasado{border-color:#f39c12}.par.falhando{border-color:#c0392b}
.estado{font-weight:bold} .url{word-break:break-all;font-size:.9rem;color:#444}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.85rem}
th,td{padding:.35rem .4rem;border-bottom:1px solid #e3e3e3;text-align:left;vertical-align:top}
.tabela{overflow-x:auto} .grafico{width:100%;height:auto;background:#fff;border-radius:8px}
.vazio{color:#666;font-style:italic} footer{margin-top:1.5rem;font-size:.8rem;color:#666}
"""


def render_panel(history: History, max_delay_min: float, refresh_s: int = 60) -> str:
    now = dt.datetime.now(dt.timezone.utc)
    rows = history.runs(200)
    pairs = pair_health(rows, max_delay_min, now)
    parts = [
        "<!DOCTYPE html><html lang=\"pt-BR\"><head><meta charset=\"utf-8\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="refresh" content="{refresh_s}">',
        f"<title>Sincronização dos servidores de licença</title><style>{PANEL_CSS}</style></head><body>",
        "<h1>🔄 Sincronização dos servidores de licença</h1>",
        "<h2>Estado agora</h2>", _render_pairs(pairs),
        "<h2>Mudanças por execução</h2>", render_chart(rows),
        "<h2>Últimas execuções</h2>", _render_runs(rows[:25]),
        "<h2>Conflitos abertos</h2>", _render_conflicts(pairs),
        "<h2>Divergências não sincronizáveis (última execução)</h2>", _render_divergences(pairs),
        "<h2>Rota de falha dos clientes</h2>", render_failover_card(latest_failover(pairs)),  # rota de falha
        f"<footer>Atualizado em {_esc(now.strftime('%d/%m/%Y %H:%M:%S'))} UTC · recarrega a cada {refresh_s} s · "
        f"atraso máximo aceito: {max_delay_min:.0f} min · <a href=\"status.json\">status.json</a></footer>",
        "</body></html>",
    ]
    return "".join(parts)


def _render_pairs(pairs: list[dict[str, Any]]) -> str:
    if not pairs:
        return '<p class="vazio">Nenhuma sincronização registrada ainda.</p>'
    cards = []
    for p in pairs:
        css = {"saudável": "saudavel", "atrasado": "atrasado", "falhando": "falhando"}.get(p["estado"], "")
        delay = "" if p["atraso_min"] is None else f" (há {p['atraso_min']:.0f} min)"
        error = f"<div>Erro: {_esc(p['ultimo_erro'])}</div>" if p["ultimo_erro"] else ""
        cards.append(
            f'<div class="par {css}" data-backup="{_esc(p["backup"])}">'
            f'<div class="estado">{_esc(p["estado"]).upper()}</div>'
            f'<div class="url">{_esc(p["principal"])} → {_esc(p["backup"])}</div>'
            f'<div>Última execução: {_when(p["ultima_execucao"])} ({_esc(p["ultima_situacao"] or "—")})</div>'
            f'<div>Último sucesso: {_when(p["ultimo_sucesso"]) if p["ultimo_sucesso"] else "nunca"}{_esc(delay)}</div>'
            f'{error}</div>')
    return f'<div class="pares">{"".join(cards)}</div>'


def _render_runs(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="vazio">Nenhuma execução.</p>'
    body = []
    for r in rows:
        c = r["contagens"]
        changes = count_changes(c)
        parity = "—" if r["paridade_total"] is None else f"{r['paridade_total'] - (r['paridade_diferentes'] or 0)}/{r['paridade_total']}"
        body.append(f"<tr class=\"execucao\"><td>{_when(r['inicio'])}</td><td>{_esc(r['backup'])}</td>"
                    f"<td>{_esc(r['modo'])}</td><td>{_esc(r['situacao'])}</td><td>{changes}</td>"
                    f"<td>{c.get('falhas', 0)}</td><td>{parity}</td><td>{_esc(r['duracao_s'])}</td>"
                    f"<td>{_esc(r['execucao'])}</td></tr>")
    head = ("<tr><th>Início (UTC)</th><th>Backup</th><th>Modo</th><th>Situação</th><th>Mudanças</th>"
            "<th>Falhas</th><th>Paridade</th><th>Duração (s)</th><th>Execução</th></tr>")
    return f'<div class="tabela"><table>{head}{"".join(body)}</table></div>'


def _render_conflicts(pairs: list[dict[str, Any]]) -> str:
    items = [(p["backup"], c) for p in pairs for c in p["detalhes"].get("conflitos", [])]
    if not items:
        return '<p class="vazio">Nenhum conflito aberto.</p>'
    rows = "".join(f"<tr><td>{_esc(b)}</td><td>{_esc(c.get('chave'))}</td><td>{_esc(c.get('descricao', c))}</td></tr>"
                   for b, c in items)
    return f'<div class="tabela"><table><tr><th>Backup</th><th>Registro</th><th>Conflito</th></tr>{rows}</table></div>'


def _render_divergences(pairs: list[dict[str, Any]]) -> str:
    items = [(p["backup"], d) for p in pairs for d in p["detalhes"].get("divergencias", [])]
    if not items:
        return '<p class="vazio">Nenhuma divergência registrada.</p>'
    totals = "; ".join(f"{_esc(p['backup'])}: " + ", ".join(f"{_esc(k)} {v}" for k, v in
                                                            p["detalhes"].get("divergencias_por_campo", {}).items())
                       for p in pairs if p["detalhes"].get("divergencias_por_campo"))
    rows = "".join(f"<tr><td>{_esc(b)}</td><td>{_esc(d['tipo'])} {_esc(d['chave'])}</td><td>{_esc(d['campo'])}</td>"
                   f"<td>{_esc(d['principal'])}</td><td>{_esc(d['backup'])}</td><td>{_esc(d['observacao'])}</td></tr>"
                   for b, d in items[:200])
    return (f"<p>Totais por campo — {totals}</p><div class=\"tabela\"><table><tr><th>Backup</th><th>Registro</th>"
            f"<th>Campo</th><th>Principal</th><th>Backup</th><th>Por quê</th></tr>{rows}</table></div>")


def make_panel_handler(data_dir: str, token: str | None, max_delay_min: float):
    import http.server

    class PanelHandler(http.server.BaseHTTPRequestHandler):
        server_version = "painel-sincronizacao"
        sys_version = ""

        def log_message(self, fmt: str, *args: Any) -> None:  # sem token nos logs
            sys.stderr.write(SECRETS.mask(f"   painel: {self.address_string()} {fmt % args}") + "\n")

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
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (nome exigido pelo http.server)
            if not self._authorized():
                self._send(401, json.dumps({"erro": "token do painel ausente ou inválido"}), "application/json")
                return
            path = urllib.parse.urlsplit(self.path).path
            history = History(data_dir)
            try:
                if path in ("/", "/index.html"):
                    self._send(200, render_panel(history, max_delay_min), "text/html; charset=utf-8")
                elif path == "/status.json":
                    status, body = status_document(history, max_delay_min)
                    self._send(status, json.dumps(body, ensure_ascii=False), "application/json; charset=utf-8")
                else:
                    self._send(404, json.dumps({"erro": "não encontrado"}), "application/json")
            finally:
                history.close()

    return PanelHandler


def serve_panel(data_dir: str, host: str, port: int, token: str | None, max_delay_min: float,
                ready: Callable[[Any], None] | None = None) -> None:
    import http.server
    if not token and not is_loopback(f"http://{host}/"):
        raise ConfigError(f"Para abrir o painel em {host} (fora desta máquina) defina PAINEL_TOKEN; "
                          "o token será exigido em toda requisição.")
    SECRETS.add(token)
    ensure_data_dir(data_dir)
    History(data_dir).close()  # cria o banco vazio se ainda não existir
    handler = make_panel_handler(data_dir, token, max_delay_min)
    try:
        httpd = http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ConfigError(f"Não foi possível abrir o painel em {host}:{port}: {exc.strerror}") from None
    httpd.daemon_threads = True
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
    import importlib.util
    path = os.path.join(SCRIPT_DIR, "tests", "servidor_referencia.py")
    if not os.path.exists(path):
        raise ConfigError(f"A demonstração precisa do servidor de referência em {path} (baixe o repositório completo).")
    spec = importlib.util.spec_from_file_location("servidor_referencia", path)
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
    # a DEMO-0007 já está igual e a DEMO-0099 só existe lá.
    backup.add_device("DEMO-0004", license_type="anual", owner_name="Oficina São João", cpf="123.456.789-09",
                      address="Rua das Flores, 10 - São Paulo", created_by="joao.revenda", end_date=past)
    backup.add_device("DEMO-0005", license_type="vitalicia", owner_name="Ótica Visão Clara", cpf="123.456.789-09",
                      address="Av. Antiga, 1", created_by="admin")
    backup.add_device("DEMO-0007", license_type="anual", owner_name="Farmácia Saúde & Cia", cpf="123.456.789-09",
                      address="Rua das Flores, 10 - São Paulo", created_by="conceicao")
    backup.add_device("DEMO-0099", license_type="mensal", owner_name="Loja Só no Backup", created_by="admin")


def run_demo(args: argparse.Namespace) -> int:
    module = load_reference_server()
    rep = Reporter(bool(args.json))
    today = dt.datetime.now(dt.timezone.utc).date()
    passwords = [secrets.token_urlsafe(16), secrets.token_urlsafe(16)]  # nunca uma senha fixa
    for password in passwords:
        SECRETS.add(password)
    with module.ServidorReferencia(admins={"admin": passwords[0]}) as primary, \
            module.ServidorReferencia(admins={"admin": passwords[1]}) as backup, \
            tempfile.TemporaryDirectory(prefix="demo-sincronizar-") as data_dir:
        seed_demo(primary, backup, today)
        configure_demo_failover(primary, backup)  # rota de falha
        config = Config(primary=ServerConfig("principal", primary.url, "admin", passwords[0]),
                        backups=[ServerConfig("backup", backup.url, "admin", passwords[1])],
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
        same = demo_verdicts_match(primary, backup, today)
        rep.say(f"⚖️  Veredito conferido direto nos dois bancos: {'igual' if same else 'DIFERENTE'} "
                "para todas as licenças do principal.")
    if args.json:
        print_json({"primeira_execucao": first, "segunda_execucao": second, "escritas_na_segunda": writes})
    ok = first["codigo_saida"] == EXIT_OK and second["codigo_saida"] == EXIT_OK and writes == 0 and same
    return EXIT_OK if ok else EXIT_FALHAS


def demo_verdicts_match(primary, backup, today: dt.date) -> bool:
    def verdicts(server):
        licenses, _ = parse_licenses(list(server.devices().values()))
        return {key: allows(lic, today) for key, lic in licenses.items()}
    mine, theirs = verdicts(primary), verdicts(backup)
    return all(theirs.get(key) == value for key, value in mine.items())


# ============================================================================
# Linha de comando: conduz a execução e escolhe o código de saída
# ============================================================================

def parallel_map(func: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """Roda func em cada item em paralelo; devolve o resultado ou a exceção, na ordem dos itens."""
    items = list(items)

    def safe(item):
        try:
            return func(item)
        except Exception as exc:  # devolvida ao chamador, que decide o que fazer
            return exc

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        return list(pool.map(safe, items))


def _connect(client: ApiClient) -> None:
    client.wake()
    client.login()


def _error_code(exc: BaseException) -> int:
    return EXIT_CONFIG if isinstance(exc, AuthError) else EXIT_SERVIDOR


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, (ApiError, SnapshotError)):
        return SECRETS.mask(exc)
    return SECRETS.mask(f"erro inesperado ({exc.__class__.__name__}): {exc}")


class Run:
    """Uma execução: servidores, retratos, pares e o documento final."""

    def __init__(self, config: Config, rep: Reporter):
        self.config = config
        self.rep = rep
        self.run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
        self.started = now_iso()
        self.clock = time.monotonic()
        self.today = config.today or dt.datetime.now(dt.timezone.utc).date()
        self.clients = {s.url: ApiClient(s, config) for s in [config.primary] + config.backups}
        self.errors: dict[str, BaseException] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.history: History | None = None
        self.credentials: CredentialStore | None = None
        self.failover: FailoverReport | None = None  # rota de falha

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        if self.history:
            self.history.close()

    # -- fases -------------------------------------------------------------
    def header(self) -> None:
        rep, cfg = self.rep, self.config
        rep.say(SEP)
        rep.say("🔄 SISTEMA DE SINCRONIZAÇÃO DE BANCO DE DADOS")
        rep.say(SEP)
        for server in sorted([cfg.primary] + cfg.backups, key=lambda srv: srv.role != "principal"):
            rep.say(f"{'Principal' if server.role == 'principal' else 'Backup'}: {server.url}")
        rep.say(SEP)
        if cfg.check:
            rep.say("🔎 VERIFICAÇÃO: só compara os servidores; nada será gravado.")
        elif cfg.simulate:
            rep.say("🧪 SIMULAÇÃO: o plano será mostrado e nada será gravado.")
        rep.say("")
        if cfg.mode == "restauracao":
            rep.say(f"♻️  Restaurando o principal a partir do backup: Backup ({cfg.primary.url}) → Principal")
        elif cfg.mode == "bidirecional":
            rep.say("🔄 Sincronizando banco de dados nos dois sentidos: Principal ⇄ Backup"
                    + ("s" if len(cfg.backups) > 1 else "") + f" (conflitos: {cfg.conflict})")
        else:
            rep.say("🔄 Sincronizando banco de dados: Principal → Backup" + ("s" if len(cfg.backups) > 1 else "")
                    + (" (espelhando: exclusões no backup)" if cfg.mirror else ""))
        rep.say("")

    def connect_all(self) -> None:
        self.rep.say("🔐 Fazendo login nos servidores...")
        clients = list(self.clients.values())
        for client, outcome in zip(clients, parallel_map(_connect, clients)):
            name = "Principal" if client.server.role == "principal" else "Backup"
            if isinstance(outcome, BaseException):
                self.errors[client.server.url] = outcome
                self.rep.say(f"   ❌ {name}: {_error_text(outcome)}")
                continue
            waited = f" (aguardou {client.waited_seconds:.0f} s o servidor acordar)" if client.waited_seconds >= 2 else ""
            self.rep.say(f"   {name}: {client.server.url}{waited}")
        if not self.errors:
            self.rep.say("✅ Login realizado em " + ("ambos os servidores!" if len(clients) == 2 else "todos os servidores!"))
        self.rep.say("")

    def fetch_all(self) -> None:
        ready = [c for c in self.clients.values() if c.server.url not in self.errors]
        finish_failover = start_failover_check(self.config, ready)  # rota de falha
        for client, outcome in zip(ready, parallel_map(fetch_snapshot, ready)):
            if isinstance(outcome, BaseException):
                self.errors[client.server.url] = outcome
            else:
                self.snapshots[client.server.url] = outcome
        self.failover = finish_failover()  # rota de falha
        for client in ready:
            self._report_fetch(client)

    def _report_fetch(self, client: ApiClient) -> None:
        where = "principal" if client.server.role == "principal" else f"backup ({client.server.url})"
        self.rep.say(f"📥 Buscando dados do servidor {where}...")
        snap = self.snapshots.get(client.server.url)
        if snap is None:
            self.rep.say(f"   ❌ {_error_text(self.errors[client.server.url])}")
        else:
            self.rep.say(f"   ✅ {len(snap.users)} usuários encontrados")
            self.rep.say(f"   ✅ {len(snap.licenses)} licenças encontradas")
            for problem in snap.problems[:MAX_LINES]:
                what = "Licença" if problem["tipo"] == "licenca" else "Usuário"
                action = "ignorada" if client.server.role == "principal" and problem["tipo"] == "licenca" else "anotada"
                self.rep.warn(f"   ⚠️  {what} {problem['chave']!r} com problema ({action}): {problem['problema']}")
        self.rep.say("")

    @property
    def restoring(self) -> bool:
        return self.config.mode == "restauracao"

    def real_pair(self, target: ServerConfig) -> tuple[str, str]:
        """(principal, backup) de verdade; em restaurar a origem é o backup e o destino o principal."""
        source = self.config.primary.url
        return (target.url, source) if self.restoring else (source, target.url)

    def sync_pair(self, target: ServerConfig) -> dict[str, Any]:
        started, clock = now_iso(), time.monotonic()
        if len(self.config.backups) > 1:
            self.rep.say(f"🔄 Principal → Backup {target.url}")
        real_primary, real_backup = self.real_pair(target)
        error = self.errors.get(self.config.primary.url) or self.errors.get(target.url)
        row = self.history.start_pair(self.run_id, started, self.config.mode, real_primary, real_backup) \
            if self.history else None
        if error is not None:
            pair = pair_document(target.url, None, None, self.config.simulate)
            pair.update(situacao="erro", codigo_saida=_error_code(error), erro=_error_text(error))
            self.rep.say(f"   ❌ Par ignorado, nada foi gravado nele: {pair['erro']}")
            self.rep.say("")
        else:
            pair = self._apply(target)
        pair.update(principal=real_primary, backup=real_backup, origem=self.config.primary.url, destino=target.url,
                    inicio=started, fim=now_iso(), duracao_s=round(time.monotonic() - clock, 3))
        if self.history and row is not None:
            self.history.finish_pair(row, {**pair, "rota_de_falha": failover_json(self.failover)})  # rota de falha
        return pair

    def plan_options(self) -> PlanOptions:
        cfg = self.config
        return PlanOptions(mode="bidirecional" if cfg.mode == "bidirecional" else "unidirecional",
                           conflict=cfg.conflict, mirror=cfg.mirror, max_deletions=cfg.max_deletions,
                           force=cfg.force, only_missing=self.restoring and not cfg.force,
                           labels={"backup": "principal", "principal": "backup"} if self.restoring else None)

    def _apply(self, target: ServerConfig) -> dict[str, Any]:
        cfg = self.config
        real_primary, real_backup = self.real_pair(target)
        source, destination = self.snapshots[cfg.primary.url], self.snapshots[target.url]
        if self.restoring and not source.licenses and not source.users:
            message = f"o backup de origem {cfg.primary.url} também está vazio: nada a restaurar"
            self.rep.say(f"   🛑 {message}")
            pair = pair_document(target.url, None, None, cfg.simulate)
            pair.update(situacao="erro", codigo_saida=EXIT_EXCLUSOES, erro=message)
            return pair
        state, warning = (None, None) if self.restoring else load_state(cfg.data_dir, real_primary, real_backup)
        if warning:
            self.rep.warn(f"   ⚠️  {warning}")
        options = self.plan_options()
        if cfg.mode == "bidirecional":
            options.journal = load_journal(cfg.data_dir, real_primary, real_backup)
        plan = plan_pair(source, destination, self.today, state, options)
        if plan.guard_message:  # os números aparecem antes de qualquer exclusão
            self.rep.warn(f"   🛑 {plan.guard_message}")
        halted_or_simulated = cfg.simulate or plan.halted
        results = None if halted_or_simulated else self._execute_and_record(plan, target, state, source, destination)
        pair = pair_document(target.url, plan, results, cfg.simulate, swap_sides=self.restoring)
        pair["espera_despertar_s"] = round(self.clients[target.url].waited_seconds, 1)
        self._report_pair(plan, results, pair, target.url)
        code = self._pair_code(plan, pair)
        pair.update(situacao={EXIT_OK: "ok", EXIT_FALHAS: "falhas"}.get(code, "exclusoes retidas"),
                    codigo_saida=code, erro=plan.guard_message if code == EXIT_EXCLUSOES else None)
        return pair

    def _execute_and_record(self, plan: Plan, target: ServerConfig, state: PairState | None,
                            source: Snapshot, destination: Snapshot) -> list[Result]:
        """Aplica o plano. Antes, grava no diário as sequências que vão começar; depois, o estado do
        par e, no diário, só as sequências que falharam (a próxima execução as termina)."""
        cfg = self.config
        real_primary, real_backup = self.real_pair(target)
        if not self.restoring:
            save_journal(cfg.data_dir, real_primary, real_backup,
                         journal_entries(plan, source, destination, self.today))
        results = self._execute(plan, target)
        if self.restoring:  # no plano a origem é o backup: o estado é gravado com os lados trocados
            save_state(cfg.data_dir, swap_state(next_state(plan, results, None, source, destination,
                                                           real_backup, real_primary)))
            return results
        save_state(cfg.data_dir, next_state(plan, results, state, source, destination, real_primary, real_backup))
        failed_keys = {r.action.key for r in results if not r.ok}
        save_journal(cfg.data_dir, real_primary, real_backup,
                     journal_entries(plan, source, destination, self.today, only=failed_keys))
        return results

    def _pair_code(self, plan: Plan, pair: dict[str, Any]) -> int:
        if plan.held_deletions or plan.halted:
            return EXIT_EXCLUSOES
        if self.config.check:  # verificar: qualquer pendência ou veredito diferente agora é "fora de sincronia"
            return EXIT_FALHAS if plan.actions or plan.current_mismatches or plan.skipped or plan.conflicts else EXIT_OK
        open_conflicts = any(c["resolucao"] == "relatar" for c in plan.conflicts)
        failed = (pair["contagens"]["falhas"] > 0 or not pair["paridade"]["ok"] or open_conflicts
                  or bool(plan.skipped_users))
        return EXIT_FALHAS if failed else EXIT_OK

    def _execute(self, plan: Plan, target: ServerConfig) -> list[Result]:
        """Escritas no principal (modo bidirecional) e depois no destino, cada lado com seu cliente."""
        clients = {"principal": self.clients[self.config.primary.url], "backup": self.clients[target.url]}
        results: list[Result] = []
        for side in ("principal", "backup"):
            users = [a for a in plan.user_actions if a.side == side]
            chains = [c for c in plan.license_chains if c[0].side == side]
            deletions = [a for a in plan.deletions if a.side == side]
            if not (users or chains or deletions):
                continue
            url = clients[side].server.url
            executor = Executor(clients[side], self.credentials, self.config,
                                on_result=lambda result, url=url: self.history.audit(self.run_id, url, result))
            results += executor.run(users, chains, deletions)
        return results

    def _report_pair(self, plan: Plan, results: list[Result] | None, pair: dict[str, Any], target_url: str) -> None:
        results = results if results is not None else [Result(a, True) for a in plan.actions]
        if plan.halted:
            self.rep.say(f"   🛑 Par parado, nada foi gravado: {plan.guard_message}")
        else:
            self._report_users([r for r in results if r.action.kind == CREATE_USER], target_url)
            self._report_licenses(plan, [r for r in results if r.action.kind != CREATE_USER], pair)
        self._report_differences(plan)
        self.rep.say("")

    def _report_users(self, user_results: list[Result], target_url: str) -> None:
        primary = self.snapshots[self.config.primary.url]
        self.rep.say("👥 Sincronizando usuários...")
        created = sum(1 for r in user_results if r.ok and not r.unsyncable and r.action.side == "backup")
        present = len(set(primary.users) & set(self.snapshots[target_url].users)) + created
        report_actions(self.rep, user_results, self.config.simulate, len(primary.users), "usuários", present,
                       "sincronizados")
        if self.credentials and self.credentials.used:
            self.rep.say(f"   🔑 Senhas dos usuários criados (novas, aleatórias): {self.credentials.path}")
        self.rep.say("")

    def _report_licenses(self, plan: Plan, license_results: list[Result], pair: dict[str, Any]) -> None:
        rep, simulate = self.rep, self.config.simulate
        rep.say("📋 Sincronizando licenças...")
        failed = {r.action.key for r in license_results if not r.ok}
        report_actions(rep, license_results, simulate, plan.licenses_compared, "licenças",
                       plan.licenses_compared - len(failed), "sincronizadas")
        parity = pair["paridade"]
        if self.config.check:
            now_ok = pair["paridade_antes"]
            rep.say(f"   {'✅' if now_ok['ok'] else '❌'} Veredito agora: {parity['total'] - len(now_ok['diferentes'])}"
                    f"/{parity['total']} licenças com a mesma resposta (liberada/negada) no principal e no backup")
        when = "depois do plano" if simulate else "no principal e no backup"
        rep.say(f"   {'✅' if parity['ok'] else '❌'} Paridade de veredito: {parity['iguais']}/{parity['total']} "
                f"licenças com a mesma resposta (liberada/negada) {when}")
        if parity["diferentes"]:
            rep.say("      Diferentes: " + ", ".join(parity["diferentes"][:MAX_LINES]))
        if plan.skipped:
            rep.say(f"   ⚠️  {len(plan.skipped)} licença(s) do principal ignorada(s) por dados inválidos")

    def _report_differences(self, plan: Plan) -> None:
        """O que continua diferente: limitações da API, registros só no backup, conflitos, exclusões."""
        rep = self.rep
        if plan.divergences:
            rep.say(f"   ⚠️  Divergências não sincronizáveis (a API não permite copiar): {len(plan.divergences)}")
            for line in summarize_divergences(plan.divergences):
                rep.say(line)
        if plan.backup_only_users or plan.backup_only_licenses:
            rep.say(f"   ℹ️  Só no backup (mantidos, nada apagado): {len(plan.backup_only_users)} usuário(s), "
                    f"{len(plan.backup_only_licenses)} licença(s)"
                    + (": " + ", ".join((plan.backup_only_users + plan.backup_only_licenses)[:10])))
        if plan.backup_only_allowed:
            rep.say(f"   ⚠️  {len(plan.backup_only_allowed)} licença(s) só no backup estão LIBERADAS lá (o principal "
                    "não as conhece e negaria): " + ", ".join(plan.backup_only_allowed[:10])
                    + (" …" if len(plan.backup_only_allowed) > 10 else "")
                    + ". Bloqueie ou apague no backup, ou cadastre no principal (--espelhar apaga).")
        self._report_conflicts(plan)
        if plan.held_deletions:
            rep.say(f"   🛑 {len(plan.held_deletions)} exclusão(ões) retida(s): "
                    + ", ".join(f"{a.key} ({a.side})" for a in plan.held_deletions[:10])
                    + (" …" if len(plan.held_deletions) > 10 else ""))
        if self.restoring and not self.config.force:
            rep.say("   ℹ️  Restaurar só cria o que falta no principal; registros que já existem lá ficam como "
                    "estão (--forcar sobrescreve com a versão do backup).")
        if self.restoring:
            rep.say("   ℹ️  Não restaurável pela API: as datas recomeçam hoje no principal (licenças vencidas ou "
                    "pendentes no backup ficam bloqueadas para negar igual) e os usuários recriados têm senhas "
                    "novas (veja o arquivo de senhas).")

    def _report_conflicts(self, plan: Plan) -> None:
        if not plan.conflicts:
            return
        how = {"relatar": "nenhum lado foi alterado; resolva e rode de novo, ou use --conflito principal|backup",
               "principal": "resolvidos a favor do principal", "backup": "resolvidos a favor do backup"}
        self.rep.say(f"   ⚔️  Conflitos: {len(plan.conflicts)} ({how[self.config.conflict]})")
        for conflict in plan.conflicts[:MAX_LINES]:
            self.rep.say(f"      {conflict['chave']}: {conflict['descricao']}")
            for field in conflict["campos"]:
                self.rep.say(f"         {field['campo']}: principal={field['principal']!r} | "
                             f"backup={field['backup']!r}")

    def finish(self, pairs: list[dict[str, Any]]) -> dict[str, Any]:
        codes = [p["codigo_saida"] for p in pairs]
        code = next((c for c in (EXIT_CONFIG, EXIT_SERVIDOR, EXIT_EXCLUSOES, EXIT_FALHAS) if c in codes), EXIT_OK)
        failover_code = failover_check_code(self.failover, self.config.check, code)  # rota de falha
        primary = self.snapshots.get(self.config.primary.url)
        doc = {
            "versao": 1, "ferramenta": f"sincronizar_bancos {VERSAO}", "execucao": self.run_id,
            "inicio": self.started, "fim": now_iso(), "duracao_s": round(time.monotonic() - self.clock, 3),
            "modo": "verificacao" if self.config.check else self.config.mode,
            "simulacao": self.config.simulate, "hoje": self.today.isoformat(),
            "codigo_saida": failover_code,  # rota de falha
            "significado": FAILOVER_CHECK_MEANING if failover_code != code  # rota de falha
            else CHECK_SIGNIFICADO.get(code, EXIT_SIGNIFICADO[code]) if self.config.check
            else EXIT_SIGNIFICADO[code],
            "principal": {"url": self.config.primary.url,
                          "usuarios": len(primary.users) if primary else None,
                          "licencas": len(primary.licenses) if primary else None,
                          "espera_despertar_s": round(self.clients[self.config.primary.url].waited_seconds, 1),
                          "erro": _error_text(self.errors[self.config.primary.url])
                          if self.config.primary.url in self.errors else None},
            "backups": pairs,
            "arquivo_credenciais": self.credentials.path if self.credentials and self.credentials.used else None,
            "rota_de_falha": failover_json(self.failover),  # rota de falha
        }
        for line in failover_text(self.failover):  # rota de falha
            self.rep.say(line)  # rota de falha
        self._report_summary(doc)
        return doc

    def _report_summary(self, doc: dict[str, Any]) -> None:
        rep, code = self.rep, doc["codigo_saida"]
        rep.say(SEP)
        title = {EXIT_OK: "✅ Sincronização concluída!", EXIT_FALHAS: "⚠️  Sincronização concluída com falhas."}
        if self.config.check:
            title = {EXIT_OK: "✅ Verificação: todos os backups em dia e com o mesmo veredito.",
                     EXIT_FALHAS: "⚠️  Verificação: há backups fora de sincronia (rode a sincronização)."}
        elif self.config.simulate:
            title = {EXIT_OK: "🧪 Simulação concluída (nada foi gravado).",
                     EXIT_FALHAS: "🧪 Simulação concluída (nada foi gravado)."}
        if doc["significado"] == FAILOVER_CHECK_MEANING:  # rota de falha
            title = {EXIT_FALHAS: "⚠️  Verificação: backups em dia, mas a rota de falha precisa de ajuste."}  # rota de falha
        rep.say(title.get(code, "❌ Não concluída."))
        rep.say("-" * 60)
        rep.say("Resumo por backup:")
        for pair in doc["backups"]:
            if pair["situacao"] == "erro":
                rep.say(f"   ❌ {pair['backup']}: {pair['erro']}")
                continue
            c, parity = pair["contagens"], pair["paridade"]
            verb = "planejadas" if self.config.simulate else "aplicadas"
            changes = count_changes(c)
            icon = "✅" if pair["situacao"] == "ok" else "⚠️ "
            rep.say(f"   {icon} {pair['backup']}: {changes} mudança(s) {verb} "
                    f"({c['usuarios_criados']} usuário(s) criado(s), {c['licencas_criadas']} licença(s) criada(s), "
                    f"{c['licencas_atualizadas']} atualizada(s), {c['licencas_renovadas']} renovada(s), "
                    f"{c['licencas_bloqueadas']} bloqueada(s), {c['licencas_ativadas']} ativada(s)), "
                    f"{c['falhas']} falha(s), paridade {parity['iguais']}/{parity['total']}, "
                    f"{c['divergencias']} divergência(s) não sincronizável(is)")
        rep.say(f"Código de saída: {code} ({doc['significado']})")
        rep.say(SEP)


def run_sync(config: Config, rep: Reporter) -> dict[str, Any]:
    """Uma sincronização completa principal → backups; devolve o documento JSON."""
    run = Run(config, rep)
    try:
        if not config.simulate:
            ensure_data_dir(config.data_dir)
            run.history = History(config.data_dir, retention_days=config.history_days)
            run.history.prune()
            run.credentials = CredentialStore(config.data_dir)
        run.header()
        run.connect_all()
        run.fetch_all()
        pairs = [run.sync_pair(backup) for backup in config.backups]
        doc = run.finish(pairs)
    finally:
        run.close()
    if not config.simulate:
        write_last_run(config, doc)
    return doc


def write_last_run(config: Config, doc: dict[str, Any]) -> None:
    servers = [{"papel": "principal", "url": config.primary.url, "ok": doc["principal"]["erro"] is None,
                "erro": doc["principal"]["erro"]}]
    servers += [{"papel": "backup", "url": p["backup"], "ok": p["situacao"] == "ok",
                 "erro": p.get("erro") or (f"{p['contagens']['falhas']} ação(ões) falharam"
                                           if p.get("contagens", {}).get("falhas") else None)}
                for p in doc["backups"]]
    summary = {"versao": 1, "inicio": doc["inicio"], "fim": doc["fim"], "codigo_saida": doc["codigo_saida"],
               "mensagem": EXIT_SIGNIFICADO[doc["codigo_saida"]], "servidores": servers}
    atomic_write(os.path.join(config.data_dir, LAST_RUN_FILE),
                 SECRETS.mask(json.dumps(summary, ensure_ascii=False, indent=2)))


def print_json(doc: dict[str, Any]) -> None:
    sys.stdout.write(SECRETS.mask(json.dumps(doc, ensure_ascii=False, indent=2, default=_jsonable)) + "\n")
    sys.stdout.flush()


class _HelpFormatter(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):
        return super().add_usage(usage, actions, groups, prefix="uso: ")


class _Parser(argparse.ArgumentParser):
    """argparse com textos em português (ajuda e erros)."""

    def error(self, message: str) -> None:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"❌ Opção inválida: {message}\n   Veja: python sincronizar_bancos.py --help\n")
        raise SystemExit(EXIT_CONFIG)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sincronizar_bancos.py", add_help=False, formatter_class=_HelpFormatter,
        description="Sincroniza os servidores de backup da API de licenças com o principal.",
        epilog="Códigos de saída: " + "; ".join(f"{k} = {v}" for k, v in EXIT_SIGNIFICADO.items()),
    )
    parser._positionals.title = "comando"
    parser._optionals.title = "opções"
    parser.add_argument("-h", "--help", action="help", help="mostra esta ajuda e sai")
    parser.add_argument("comando", nargs="?", default="sincronizar",
                        choices=["sincronizar", "demo", "verificar", "historico", "painel", "restaurar"],
                        help="sincronizar (padrão); demo (dois servidores locais de referência); verificar "
                             "(só compara, nunca grava); historico (últimas execuções); painel (página web); "
                             "restaurar (copia um backup de volta para o principal que perdeu dados)")
    parser.add_argument("--env", metavar="ARQUIVO", help="arquivo .env a usar (padrão: .env ao lado do script)")
    parser.add_argument("--principal", metavar="URL", help="URL do servidor principal (SERVIDOR_PRINCIPAL)")
    parser.add_argument("--backup", metavar="URL", action="append",
                        help="URL de um backup (repita para vários; SERVIDOR_BACKUP)")
    parser.add_argument("--usuario", metavar="NOME", help="usuário administrador (ADMIN_USER)")
    parser.add_argument("--dados-dir", metavar="PASTA", help="pasta de estado, histórico e logs (DADOS_DIR)")
    parser.add_argument("--simular", action="store_true", help="mostra o plano e não grava nada")
    parser.add_argument("--json", action="store_true", help="imprime só um documento JSON no stdout")
    parser.add_argument("--timeout", type=float, metavar="SEG", help="tempo máximo de resposta (SYNC_TIMEOUT, 30)")
    parser.add_argument("--espera-despertar", type=float, metavar="SEG",
                        help="quanto esperar um servidor adormecido acordar (SYNC_ESPERA_DESPERTAR, 90)")
    parser.add_argument("--tentativas-http", type=int, metavar="N",
                        help="novas tentativas por requisição (SYNC_TENTATIVAS_HTTP, 5)")
    parser.add_argument("--paralelo", type=int, metavar="N", help="escritas simultâneas por servidor (SYNC_PARALELO, 8)")
    parser.add_argument("--permitir-http", action="store_true",
                        help="aceita http:// sem criptografia para servidores que não são locais")
    parser.add_argument("--hoje", metavar="AAAA-MM-DD", help="data de referência para vencimentos (testes)")
    parser.add_argument("--sem-progresso", action="store_true", help="não mostra o contador de progresso")
    parser.add_argument("--bidirecional", action="store_true",
                        help="sincroniza nos dois sentidos (comparação em três vias com o estado salvo)")
    parser.add_argument("--conflito", choices=["relatar", "principal", "backup"], default="relatar",
                        help="bidirecional: o que fazer quando os dois lados mudaram o mesmo registro "
                             "(relatar: não mexe em nenhum e sai com 1)")
    parser.add_argument("--espelhar", action="store_true",
                        help="unidirecional: apaga no backup as licenças que não existem no principal")
    parser.add_argument("--max-exclusoes", type=int, metavar="N",
                        help="máximo de exclusões por lado (padrão: 10%% das licenças do lado, até 50)")
    parser.add_argument("--forcar", action="store_true", help="aplica exclusões mesmo quando as travas as reteriam")
    parser.add_argument("--de", metavar="URL", help="restaurar: backup de origem (padrão: o primeiro backup)")
    parser.add_argument("--limite", type=int, default=20, metavar="N", help="historico: quantas execuções (20)")
    parser.add_argument("--detalhes", metavar="EXECUCAO", help="historico: auditoria de uma execução")
    parser.add_argument("--porta", type=int, default=PANEL_DEFAULT_PORT, metavar="N", help="painel: porta (8765)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="painel: endereço (127.0.0.1; outro endereço exige PAINEL_TOKEN)")
    return parser


def restore_config(config: Config) -> Config:
    """restaurar: a origem é um backup (o primeiro, ou --de) e o destino é o principal."""
    if config.mode == "bidirecional" or config.mirror:
        raise ConfigError("restaurar não combina com --bidirecional nem com --espelhar.")
    chosen = config.restore_from or config.backups[0].url
    source = next((b for b in config.backups if b.url == chosen), None)
    if source is None:
        raise ConfigError(f"--de {chosen} não é um dos backups configurados em SERVIDOR_BACKUP.")
    return dataclasses.replace(config, primary=source, backups=[config.primary], mode="restauracao")


def cmd_history(args: argparse.Namespace) -> int:
    """historico: últimas execuções em tabela (ou JSON); --detalhes mostra a auditoria de uma."""
    data_dir = resolve_data_dir(settings_reader(args), args.dados_dir)
    if not os.path.exists(os.path.join(data_dir, HISTORY_FILE)):
        return fail(f"Nenhum histórico em {data_dir} (ainda não houve sincronização).", EXIT_CONFIG)
    history = History(data_dir)
    try:
        if args.detalhes:
            trail = history.audit_trail(args.detalhes)
            if args.json:
                print_json({"execucao": args.detalhes, "auditoria": trail})
            else:
                print_audit(args.detalhes, trail)
            return EXIT_OK
        rows = history.runs(max(1, args.limite))
    finally:
        history.close()
    if args.json:
        print_json({"execucoes": rows})
    else:
        print_history(rows)
    return EXIT_OK


def print_history(rows: list[dict[str, Any]]) -> None:
    rep = Reporter(False)
    if not rows:
        rep.say("Nenhuma execução registrada.")
        return
    rep.say(f"{'Início (UTC)':<26} {'Situação':<13} {'Mudanças':>8} {'Falhas':>6} {'Paridade':>11} {'Duração':>8}  "
            "Backup / Execução")
    for r in rows:
        changes = count_changes(r["contagens"])
        parity = "—" if r["paridade_total"] is None else f"{r['paridade_total'] - (r['paridade_diferentes'] or 0)}/{r['paridade_total']}"
        duration = "—" if r["duracao_s"] is None else f"{r['duracao_s']:.1f}s"
        rep.say(f"{r['inicio']:<26} {r['situacao']:<13} {changes:>8} {r['contagens'].get('falhas', 0):>6} "
                f"{parity:>11} {duration:>8}  {r['backup']} / {r['execucao']}")
        if r["erro"]:
            rep.say(f"{'':<26} ↳ {r['erro']}")


def print_audit(run_id: str, trail: list[dict[str, Any]]) -> None:
    rep = Reporter(False)
    rep.say(f"Auditoria da execução {run_id}: {len(trail)} escrita(s)")
    for item in trail:
        changes = "; ".join(f"{f}: {a!r} → {b!r}" for f, a, b in item["mudancas"])
        status = "✅" if item["ok"] else f"❌ {item['mensagem']}"
        rep.say(f"   {item['momento']} {item['servidor']} {item['acao']} {item['chave']} {status}  {changes}")


def cmd_panel(args: argparse.Namespace) -> int:
    get = settings_reader(args)
    data_dir = resolve_data_dir(get, args.dados_dir)
    max_delay = _number("PAINEL_MAX_ATRASO", get("PAINEL_MAX_ATRASO"), PANEL_DEFAULT_MAX_DELAY_MIN, 1)
    token = get("PAINEL_TOKEN")
    if not 0 <= args.porta <= 65535:
        raise ConfigError(f"--porta deve estar entre 0 e 65535 (recebido: {args.porta}).")

    def ready(httpd: Any) -> None:
        host, port = httpd.server_address[:2]
        sys.stdout.write(f"🖥️  Painel em http://{host}:{port}/ (status para monitores: /status.json). "
                         "Ctrl+C para sair.\n")
        sys.stdout.flush()
    serve_panel(data_dir, args.host, args.porta, token, max_delay, ready)
    return EXIT_OK


def configure_output() -> None:
    """Emojis e acentos sem quebrar no console do Windows nem em arquivos de log."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream.isatty():
                stream.reconfigure(errors="replace")
            else:
                stream.reconfigure(encoding="utf-8", errors="replace")
        except (AttributeError, ValueError):
            pass


def fail(message: str, code: int) -> int:
    sys.stderr.write(SECRETS.mask(f"❌ {message}") + "\n")
    return code


def main(argv: list[str] | None = None) -> int:
    configure_output()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse já explicou o erro
        return EXIT_CONFIG if exc.code else EXIT_OK
    try:
        if args.comando == "demo":
            return run_demo(args)
        if args.comando == "historico":
            return cmd_history(args)
        if args.comando == "painel":
            return cmd_panel(args)
        config = build_config(args)
        if args.comando == "verificar":
            config.check = config.simulate = True
        if args.comando == "restaurar":
            config = restore_config(config)
        rep = Reporter(config.json_output)
        if config.allow_http:
            rep.warn("⚠️  ATENÇÃO: --permitir-http ativo: senha e token podem trafegar sem criptografia.")
        lock = None
        if not config.simulate:
            ensure_data_dir(config.data_dir)
            lock = acquire_lock(config.data_dir)
            remove_stale_temp_files(config.data_dir)
        try:
            doc = run_sync(config, rep)
        finally:
            if lock is not None:
                lock.release()
        if config.json_output:
            print_json(doc)
        return doc["codigo_saida"]
    except ConfigError as exc:
        return fail(f"Configuração: {exc}", EXIT_CONFIG)
    except LockBusy:
        return fail("Outra sincronização já está em andamento (trava em DADOS_DIR). Tente de novo mais tarde.",
                    EXIT_EM_ANDAMENTO)
    except KeyboardInterrupt:
        return fail("Interrompido pelo usuário.", 130)
    except OSError as exc:
        return fail(f"Erro de arquivo ou sistema: {exc.strerror or exc.__class__.__name__} "
                    f"({getattr(exc, 'filename', '') or ''})", EXIT_FALHAS)
    except Exception as exc:  # última barreira: mensagem clara, sem traceback nem segredo
        return fail(f"Erro inesperado ({exc.__class__.__name__}): {exc}", EXIT_FALHAS)


if __name__ == "__main__":
    sys.exit(main())
