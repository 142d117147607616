"""Servidor de licenças de referência, fiel ao comportamento dos servidores reais (docs/API_DOS_SERVIDORES.md).

Reproduz o comportamento dos servidores reais (Flask + SQLite/MySQL), inclusive as
esquisitices: upsert que sobrescreve tudo e desbloqueia, token que não confere o papel,
mensagens de erro em pt-BR com os códigos exatos. Só usa a biblioteca padrão.

Além da API HTTP, oferece acesso direto aos dados (para preparar cenários nos testes),
contagem de requisições e "botões" de falha (latência, 503, página HTML de proxy,
conexão resetada, conexão pendurada, corpo truncado, resposta perdida depois da
escrita, host dormindo, respostas enlatadas).

Comportamentos de produção que os testes de ponta a ponta reproduzem:
- Relógio e fuso: `set_now(datetime com fuso)` / `set_today(data)` (= 12:00 UTC). As escritas
  carimbam a data UTC (`today()`); o veredito usa a data local do processo, no fuso dado em
  `ServidorReferencia(fuso="America/Sao_Paulo")` (`local_today()`, `fuso`). O cabeçalho Date de toda
  resposta e o GET /ping seguem esse relógio (não o do processo); `sem_date = True` tira o Date das
  respostas (um proxy que não o manda).
- Veredito (o que /verify responderia, passos 1 a 5 do contrato), implementado à parte como
  oráculo: `veredito(id)`, `veredito_motivo(id)`, `vereditos()`. A rota /verify não existe aqui.
- Outros escritores de licenças: POST /payments/pix/create (pendente, custom_interval e features
  crus) e POST /user/devices/create (vitalícia grátis do revendedor); `add_device` grava ids com
  espaços, valores JSON de qualquer tipo, texto de qualquer tamanho e end_date NULL
  (`calcular_fim=False`).
- Falhas por rota: `interstitial_200`, `trickle` (um byte por vez), `delay`, ganchos
  `on_request(..., when="before"|"after", skip=...)` e `clear_hooks()`.
- Link lento: `limitar_banda(bytes_por_segundo, rota="/admin/devices", metodo="GET", vezes=None,
  calar_apos=None)`: a aplicação responde normalmente e os cabeçalhos saem na hora (com Content-Length),
  mas o corpo sai a `bytes_por_segundo` (em fatias de 50 ms, no ritmo de um relógio: a média é exata).
  `calar_apos=n`: depois de n bytes do corpo o servidor se cala (sem fechar a conexão) até o cliente
  desistir ou o servidor parar. `respostas_limitadas()`: uma entrada por resposta limitada, com
  `inicio`, `ultimo_byte` e `fim` (time.monotonic(): fim = corpo inteiro enviado ou cliente que desistiu),
  `enviados`, `tamanho` e `completa`. `limitar_banda(None)` desfaz.
- Redirecionamento (o http→https de uma hospedagem, um domínio que mudou): `redirecionar(status, para,
  rota="*", metodo="*", manter_caminho=True, vezes=None)`: responde `status` (301, 302, 303, 307, 308)
  com `Location: <para><caminho pedido>` (ou exatamente `para`, com `manter_caminho=False`) e a página
  HTML de um nginx, antes da aplicação (nada é gravado, o host nem acorda); a requisição é contada.
  `rota`/`metodo` "*" casam qualquer um. `para` pode ser qualquer texto (outro servidor, https, uma URL
  com usuário:senha ou token). `redirecionar(None)` desfaz.
- Compressão: `comprimir()` responde com gzip (Content-Encoding: gzip) a quem pede Accept-Encoding: gzip,
  como o proxy de uma hospedagem na frente do Flask; `comprimir(False)` desfaz.
- Cópia de segurança: `export_data()` / `import_data(copia)` ("voltei o backup de ontem").
- Pausa numa requisição: `pausa = pausar("POST", "/admin/devices/create", skip=9)` segura a 10ª que
  casar (por padrão depois de a aplicação gravar, antes de responder); `pausa.chegou` (Event) avisa que
  ela está segura e `pausa.liberar()` a solta. Serve para mandar um sinal ao cliente no meio de uma
  sequência (criar → bloquear) de forma determinística. Parar o servidor também solta.
- GET /servers (público): `servidores=[...]` / `set_license_servers(...)`; None = a lista
  embutida `SERVIDORES_PADRAO` (de outro dono); `set_servers_endpoint(False)` = servidor antigo.
- Eco do corpo recebido: `ecoar_corpo("POST", "/admin/login", 400, forma="json"|"url")` é um proxy ou
  servidor mal configurado que devolve, na mensagem de erro, o corpo que recebeu (num login: a senha).
- Variantes dos servidores reais (MySQL com colação e colunas estreitas, datas RFC 1123, versões
  antigas sem rotas, "database is locked", 500 na n-ésima escrita, token revogado): opções do
  construtor, descritas na docstring de `ServidorReferencia`.

TLS (https), como todo servidor real:
- `ServidorReferencia(tls=contexto)`: `contexto` é um `ssl.SSLContext` do lado servidor com o
  certificado carregado (nos testes, de uma CA descartável do `trustme`:
  `ca.issue_cert("127.0.0.1").configure_cert(contexto)`). A porta passa a falar SÓ https e `url`
  começa com https://. Quem fala http puro nessa porta (ou recusa o certificado) tem a conexão
  fechada sem resposta, como o Flask/gunicorn com certificado; nada chega à aplicação.
- `conexoes_tls_recusadas()`: quantos apertos de mão TLS falharam (certificado recusado pelo
  cliente, http puro na porta https); as requisições HTTP continuam em `request_counts()`.

Listagem cortada (proxy ou página parcial na frente do app):
- `cortar_listagem(maximo, vezes=None)`: GET /admin/devices responde 200 com o JSON da API, mas só com
  os `maximo` primeiros itens (os mais novos) — nada indica que faltam licenças. `vezes`: quantas
  listagens saem cortadas (None = todas); `cortar_listagem(None)` desfaz. Os dados não mudam: o
  veredito (`veredito`) continua o de todas as licenças gravadas.

Segredo compartilhado (todos os servidores de um vendedor têm o mesmo SHARED_SECRET):
- `compartilhar_segredo(segredo)`: um token de administrador emitido por qualquer servidor com o mesmo
  `segredo` vale neste (e vice-versa), como nos servidores reais. Devolve o próprio servidor.

Uso como programa:
    python tests/servidor_referencia.py --porta 8001 [--hoje 2026-12-01]
        [--fuso America/Sao_Paulo] [--servidores https://a.example,https://b.example]
        [--sem-rota-servers]
"""

from __future__ import annotations

import argparse
import calendar
import collections
import copy
import datetime as dt
import email.utils
import gzip
import hashlib
import hmac
import io
import json
import os
import random
import re
import secrets
import select
import signal
import socket
import sqlite3
import ssl
import struct
import sys
import tempfile
import threading
import time
import unicodedata
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any, Optional
from urllib.parse import unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# ---------------------------------------------------------------------------
# Constantes do contrato
# ---------------------------------------------------------------------------

DEFAULT_ADMIN_PASSWORD = "admin123"
PERIOD_MONTHS = {"mensal": 1, "trimestral": 3, "semestral": 6, "anual": 12, "trianual": 36}
LICENSE_TYPES = tuple(PERIOD_MONTHS) + ("vitalicia",)
DEFAULT_LICENSE_TYPE = "anual"
USER_ROLES = ("admin", "user")
DEVICE_ACTIONS = ("block", "activate", "toggle")

USER_FIELDS = ("id", "username", "email", "role", "created_at")
DEVICE_FIELDS = (
    "id", "device_id", "owner_name", "cpf", "email", "address", "license_type", "status",
    "start_date", "end_date", "custom_interval", "features", "last_seen_at", "last_seen_ip",
    "last_hostname", "last_version", "created_by",
)
EDITABLE_TEXT_FIELDS = ("owner_name", "cpf", "email", "address")
# Colunas que guardam qualquer valor JSON como veio ("30min" continua texto, 60 continua número)
JSON_COLUMNS = ("custom_interval", "features")

MSG_CREDENTIALS_REQUIRED = "Credenciais obrigatórias."
MSG_BAD_CREDENTIALS = "Usuário ou senha inválidos."
MSG_USER_FIELDS_REQUIRED = "Usuário e senha são obrigatórios."
MSG_SHORT_PASSWORD = "Senha deve ter no mínimo 6 caracteres."
MSG_BAD_ROLE = "Role deve ser 'admin' ou 'user'."
MSG_USER_EXISTS = "Usuário já existe."
MSG_DEVICE_ID_REQUIRED = "Device ID é obrigatório."
MSG_BAD_LICENSE_TYPE = "Tipo de licença inválido."
MSG_DEVICE_NOT_FOUND = "Licença não encontrada."
MSG_BAD_ACTION = "Ação inválida."
MSG_DELETED = "Licença excluída permanentemente."
MSG_BAD_JSON = "JSON inválido."
MSG_OWNER_CPF_REQUIRED = "Nome e CPF são obrigatórios."
MSG_DEVICE_EXISTS = "Licença já existe."

# Lista embutida de GET /servers quando LICENSE_SERVERS não está configurado: os servidores do
# autor original, não os do vendedor. Hosts fictícios (domínios reservados .example.*).
SERVIDORES_PADRAO = (
    "https://licencas-autor-a.example.com",
    "https://licencas-autor-b.example.net",
    "https://licencas-autor-c.example.org",
)
SERVERS_LIST_VERSION = 1
# Página de "aguarde" de host/túnel na frente do app: 200 em HTML, o app nunca vê a requisição.
INTERSTITIAL_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Just a moment...</title></head>\n"
    "<body><h1>Checking your browser before accessing the site.</h1>\n"
    "<p>This process is automatic. Your browser will redirect shortly.</p></body></html>\n"
)

JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
PROXY_502_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
    "<body><center><h1>502 Bad Gateway</h1></center>\n"
    "<hr><center>nginx</center>\n</body></html>\n"
)

FLASK_404_PAGE = (
    "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    "<p>The requested URL was not found on the server. If you entered the URL manually please check "
    "your spelling and try again.</p>\n"
)
FLASK_405_PAGE = (
    "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n"
    "<p>The method is not allowed for the requested URL.</p>\n"
)


class HtmlPage(str):
    """Corpo HTML (as páginas de erro do próprio Flask), enviado como text/html."""


FAULT_MODES = ("503", "html502", "reset", "hang", "truncated", "lost")
DEFAULT_FAULT_MODES = ("503", "html502", "reset")
FAULT_KNOBS = (
    "latency_ms", "fail_rate", "fail_modes", "fail_paths", "hang_seconds",
    "sleep_first_seconds", "seed",
)
PBKDF2_ITERATIONS = 1000

# ---------------------------------------------------------------------------
# Funções auxiliares
# ---------------------------------------------------------------------------


def add_months(start: dt.date, months: int) -> dt.date:
    """Soma meses a uma data, limitando o dia ao último dia do mês de destino."""
    year, month_index = divmod(start.month - 1 + months, 12)
    year += start.year
    month = month_index + 1
    last_day = calendar.monthrange(year, month)[1]
    return dt.date(year, month, min(start.day, last_day))


def end_date_for(start: dt.date, license_type: str) -> Optional[str]:
    """Data de término de uma licença do tipo dado (None para vitalícia)."""
    months = PERIOD_MONTHS.get(license_type)
    return None if months is None else add_months(start, months).isoformat()


def worked_out_end_date(record: dict) -> Optional[dt.date]:
    """Data de término que o servidor usa: a gravada ou, se não houver, início + período.

    Vitalícia nunca vence; tipo desconhecido não ganha data calculada; data ilegível vale
    como ausente."""
    if record.get("license_type") == "vitalicia":
        return None
    end = _parse_day(record.get("end_date"))
    if end is not None or record.get("end_date") not in (None, ""):
        return end
    start = _parse_day(record.get("start_date"))
    months = PERIOD_MONTHS.get(record.get("license_type"))
    if start is None or months is None:
        return None
    return add_months(start, months)


def _parse_day(value: Any) -> Optional[dt.date]:
    """Lê "AAAA-MM-DD" (aceita hora depois); None ou ilegível devolve None."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


def verdict_reason(record: Optional[dict], local_today: dt.date) -> str:
    """Passos 1 a 5 do contrato: "inexistente", "bloqueada", "expirada", "pendente" ou "liberada"."""
    if record is None:
        return "inexistente"
    if record.get("status") == "blocked":
        return "bloqueada"
    end = worked_out_end_date(record)
    if end is not None and local_today > end:
        return "expirada"
    if record.get("status") == "pending":
        return "pendente"
    return "liberada"


def to_date(value: Any) -> Optional[dt.date]:
    """Converte str ISO, date ou datetime em date (None continua None)."""
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    return dt.date.fromisoformat(str(value).strip())


def to_date_text(value: Any) -> Optional[str]:
    """Converte uma data em texto ISO para gravar; texto é gravado como veio."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def clean_text(value: Any) -> Optional[str]:
    """Tira espaços das pontas; vazio vira None; não-texto é convertido com str()."""
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else str(value).strip()
    return text or None


def hash_password(password: str) -> str:
    """Gera o hash com sal (PBKDF2-SHA256, poucas iterações para ser rápido)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    return f"pbkdf2_sha256${PBKDF2_ITERATIONS}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Confere a senha contra o hash gravado."""
    try:
        _, iterations, salt_hex, digest_hex = stored.split("$")
        digest = hashlib.pbkdf2_hmac(
            "sha256", password.encode("utf-8"), bytes.fromhex(salt_hex), int(iterations))
    except (ValueError, AttributeError):
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)


def json_bytes(payload: Any) -> bytes:
    """Serializa como o Flask (jsonify escapa não-ASCII)."""
    return json.dumps(payload).encode("utf-8")


def parse_json_body(raw: bytes) -> Optional[dict]:
    """Lê o corpo JSON; corpo vazio vale {}; inválido ou não-objeto devolve None."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


# ---------------------------------------------------------------------------
# Relógio ("hoje" ajustável)
# ---------------------------------------------------------------------------


class Clock:
    """Relógio do servidor: o instante atual (real ou fixado pelos testes) e o fuso do processo.

    As escritas carimbam datas com a data UTC do relógio (today); o veredito usa a data local
    do processo, no fuso do servidor (local_today)."""

    def __init__(self, today: Any = None, fuso: str = "UTC", now: Any = None):
        self.zone = load_zone(fuso)
        self.fuso = fuso
        self._fixed_now: Optional[dt.datetime] = None
        self._exact = False  # True: fixado por set_now (o created_at usa a hora exata)
        if now is not None:
            self.set_now(now)
        else:
            self.set_today(today)

    def set_today(self, today: Any) -> None:
        """Fixa o dia: o instante passa a ser esse dia às 12:00 UTC (None = relógio real)."""
        day = to_date(today)
        self._fixed_now = None if day is None else dt.datetime.combine(
            day, dt.time(12, 0), tzinfo=dt.timezone.utc)
        self._exact = False

    def set_now(self, moment: Optional[dt.datetime]) -> None:
        """Fixa o instante atual (datetime com fuso); None volta ao relógio real."""
        aware = isinstance(moment, dt.datetime) and moment.utcoffset() is not None
        if moment is not None and not aware:
            raise ValueError(f"set_now precisa de um datetime com fuso (aware): {moment!r}")
        self._fixed_now = None if moment is None else moment.astimezone(dt.timezone.utc)
        self._exact = moment is not None

    def now(self) -> dt.datetime:
        """Instante atual em UTC."""
        return self._fixed_now or dt.datetime.now(dt.timezone.utc)

    def today(self) -> dt.date:
        """Data UTC (a que as escritas carimbam em start_date/end_date)."""
        return self.now().date()

    def local_now(self) -> dt.datetime:
        return self.now().astimezone(self.zone)

    def local_today(self) -> dt.date:
        """Data local do processo do servidor (a que o veredito compara com end_date)."""
        return self.local_now().date()

    def timestamp(self) -> str:
        """Data e hora no formato do created_at ("AAAA-MM-DD HH:MM:SS", UTC)."""
        real = dt.datetime.now(dt.timezone.utc)
        moment = self.now() if self._exact else real
        return f"{self.today().isoformat()} {moment.strftime('%H:%M:%S')}"


def load_zone(fuso: str) -> ZoneInfo:
    """Carrega o fuso IANA (ex.: America/Sao_Paulo); nome inválido vira ValueError em pt-BR."""
    try:
        return ZoneInfo(str(fuso))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"Fuso horário desconhecido: {fuso!r} (use um nome IANA, ex.: "
                         "America/Sao_Paulo ou UTC).") from exc


# ---------------------------------------------------------------------------
# Banco SQLite (uma conexão compartilhada, protegida por trava)
# ---------------------------------------------------------------------------

# custom_interval e features sem tipo (sem afinidade) e gravados como texto JSON: qualquer valor
# volta exatamente como foi enviado (o texto "60" não vira o número 60, nem o contrário).
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    email TEXT,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL UNIQUE,
    owner_name TEXT, cpf TEXT, email TEXT, address TEXT,
    license_type TEXT, status TEXT, start_date TEXT, end_date TEXT,
    custom_interval, features,
    last_seen_at TEXT, last_seen_ip TEXT, last_hostname TEXT, last_version TEXT,
    created_by TEXT
);
"""


class Database:
    """Acesso ao SQLite; toda operação é atômica sob a trava."""

    def __init__(self, path: str, collation: Callable[[str, str], int] | None = None, duravel: bool = True):
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        if not duravel:  # banco temporário (testes, demo): sem fsync nem diário em disco a cada escrita.
            # O que os clientes veem pela API não muda; só a durabilidade numa queda de energia, que não
            # importa para um arquivo apagado ao parar. Medido: a suíte gastava ~1/6 do tempo nesses fsync.
            self._conn.execute("PRAGMA synchronous=OFF")
            self._conn.execute("PRAGMA journal_mode=MEMORY")
        schema = SCHEMA
        if collation is not None:  # variante MySQL: a chave compara como utf8mb4_unicode_ci (veja colacao_mysql)
            self._conn.create_collation("mysql_ci", collation)
            schema = SCHEMA.replace("device_id TEXT NOT NULL UNIQUE", "device_id TEXT NOT NULL UNIQUE COLLATE mysql_ci")
        with self._lock, self._conn:
            self._conn.executescript(schema)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _query(self, sql: str, params: tuple = ()) -> list[dict]:
        with self._lock:
            return [dict(row) for row in self._conn.execute(sql, params).fetchall()]

    def _write(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        with self._lock, self._conn:
            return self._conn.execute(sql, params)

    # --- usuários (revendedores) ---

    def insert_user(self, username, password_hash, email, role, created_at) -> int:
        try:
            cursor = self._write(
                "INSERT INTO users (username, email, role, password_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?)", (username, email, role, password_hash, created_at))
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"Usuário já existe: {username!r}") from exc
        return cursor.lastrowid

    def find_user(self, username: str) -> Optional[dict]:
        rows = self._query("SELECT * FROM users WHERE username = ?", (username,))
        return rows[0] if rows else None

    def list_users(self) -> list[dict]:
        columns = ", ".join(USER_FIELDS)
        return self._query(f"SELECT {columns} FROM users ORDER BY id DESC")

    # --- licenças ---

    def insert_device(self, record: dict) -> int:
        record = encode_json_columns(record)
        columns = ", ".join(record)
        marks = ", ".join("?" for _ in record)
        try:
            cursor = self._write(
                f"INSERT INTO devices ({columns}) VALUES ({marks})", tuple(record.values()))
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"Licença já existe: {record.get('device_id')!r}") from exc
        return cursor.lastrowid

    def update_device(self, device_id: str, changes: dict) -> bool:
        changes = encode_json_columns(changes)
        assignments = ", ".join(f"{name} = ?" for name in changes)
        cursor = self._write(
            f"UPDATE devices SET {assignments} WHERE device_id = ?",
            tuple(changes.values()) + (device_id,))
        return cursor.rowcount > 0

    def upsert_device(self, device_id: str, changes: dict, insert_defaults: dict) -> None:
        """Atualiza se existir; senão insere com os padrões de inserção."""
        with self._lock:
            if not self.update_device(device_id, changes):
                self.insert_device({"device_id": device_id, **changes, **insert_defaults})

    def change_status(self, device_id: str, next_status) -> Optional[str]:
        """Troca o status de forma atômica; devolve o novo status ou None se não existir."""
        with self._lock:
            device = self.find_device(device_id)
            if device is None:
                return None
            status = next_status(device["status"])
            self.update_device(device_id, {"status": status})
            return status

    def find_device(self, device_id: str) -> Optional[dict]:
        columns = ", ".join(DEVICE_FIELDS)
        rows = self._query(f"SELECT {columns} FROM devices WHERE device_id = ?", (device_id,))
        return decode_json_columns(rows[0]) if rows else None

    def list_devices(self, created_by: Optional[str] = None) -> list[dict]:
        columns = ", ".join(DEVICE_FIELDS)
        if created_by is None:
            rows = self._query(f"SELECT {columns} FROM devices ORDER BY id DESC")
        else:
            rows = self._query(
                f"SELECT {columns} FROM devices WHERE created_by = ? ORDER BY id DESC",
                (created_by,))
        return [decode_json_columns(row) for row in rows]

    def delete_device(self, device_id: str) -> bool:
        return self._write("DELETE FROM devices WHERE device_id = ?", (device_id,)).rowcount > 0

    def delete_all(self) -> None:
        """Apaga revendedores e licenças e reinicia os ids (como um banco novo)."""
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM users")
            self._conn.execute("DELETE FROM devices")
            self._conn.execute("DELETE FROM sqlite_sequence")

    def start_ids(self, first: int) -> None:
        """Os próximos ids locais começam em `first` (servidores reais têm históricos de ids diferentes)."""
        with self._lock, self._conn:
            for table in ("users", "devices"):
                self._conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
                self._conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, first - 1))

    # --- cópia de segurança (linhas cruas, com hashes, ids locais e sequências) ---

    def dump(self) -> dict:
        with self._lock:
            return {table: [dict(row) for row in self._conn.execute(
                        f"SELECT * FROM {table} ORDER BY rowid").fetchall()]
                    for table in ("users", "devices", "sqlite_sequence")}

    def restore(self, tables: dict) -> None:
        """Troca todo o conteúdo pelas linhas dadas, numa transação só."""
        with self._lock, self._conn:
            for table in ("users", "devices"):
                self._conn.execute(f"DELETE FROM {table}")
                self._insert_rows(table, tables[table])
            # inserir com id explícito mexe nas sequências: elas são restauradas por último
            self._conn.execute("DELETE FROM sqlite_sequence")
            self._insert_rows("sqlite_sequence", tables["sqlite_sequence"])

    def _insert_rows(self, table: str, rows: list) -> None:
        for row in rows:
            columns = ", ".join(row)
            marks = ", ".join("?" for _ in row)
            self._conn.execute(
                f"INSERT INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))


def encode_json_columns(record: dict) -> dict:
    """Grava custom_interval e features como texto JSON (None continua NULL)."""
    return {name: (json.dumps(value) if name in JSON_COLUMNS and value is not None else value)
            for name, value in record.items()}


def decode_json_columns(row: dict) -> dict:
    """Lê de volta o valor JSON; valores que não são texto JSON (bancos antigos) ficam como estão."""
    for name in JSON_COLUMNS:
        value = row.get(name)
        if isinstance(value, str):
            try:
                row[name] = json.loads(value)
            except ValueError:
                pass
    return row


# ---------------------------------------------------------------------------
# Rotas
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    template: str
    action: str
    needs_auth: bool
    reads_body: bool


def _route(method, regex, template, action, needs_auth=True, reads_body=False) -> Route:
    return Route(method, re.compile(regex), template, action, needs_auth, reads_body)


ROUTES = (
    _route("POST", r"/admin/login", "/admin/login", "login", False, True),
    _route("GET", r"/admin/users", "/admin/users", "list_users"),
    _route("POST", r"/admin/users/create", "/admin/users/create", "create_user", True, True),
    _route("GET", r"/admin/devices", "/admin/devices", "list_devices"),
    _route("POST", r"/admin/devices/create", "/admin/devices/create", "upsert_device",
           True, True),
    _route("POST", r"/admin/devices/update-created-by", "/admin/devices/update-created-by",
           "update_created_by", True, True),
    _route("POST", r"/admin/devices/([^/]+)/deactivate", "/admin/devices/<id>/deactivate",
           "change_status", True, True),
    _route("DELETE", r"/admin/devices/([^/]+)/delete", "/admin/devices/<id>/delete",
           "delete_device"),
    _route("POST", r"/payments/pix/create", "/payments/pix/create", "create_pix", True, True),
    _route("POST", r"/user/devices/create", "/user/devices/create", "create_free_device",
           True, True),
    _route("GET", r"/servers", "/servers", "servers", False),
    _route("GET", r"/health", "/health", "health", False),
    _route("GET", r"/ping", "/ping", "ping", False),
)


@dataclass
class RouteMatch:
    """Resultado do roteamento: rota (ou None), modelo do caminho e id da licença."""
    route: Optional[Route]
    template: str
    device_id: Optional[str] = None
    method_not_allowed: bool = False


def resolve_route(method: str, path: str, disabled: frozenset = frozenset()) -> RouteMatch:
    """Encontra a rota; caminho conhecido com método errado vira 405. Como o Werkzeug (Flask), o
    caminho é decodificado ANTES do roteamento: um device_id com '/' (%2F) não casa com nenhuma rota.
    Rotas cujas ações estão em `disabled` não existem (servidor de versão antiga)."""
    wrong_method = None
    path = unquote(path)
    for route in ROUTES:
        if route.action in disabled:
            continue
        found = route.pattern.fullmatch(path)
        if not found:
            continue
        if route.method != method:
            wrong_method = wrong_method or route
            continue
        device_id = found.group(1) if found.groups() else None
        return RouteMatch(route, route.template, device_id)
    if wrong_method:
        return RouteMatch(None, wrong_method.template, method_not_allowed=True)
    return RouteMatch(None, path)


# ---------------------------------------------------------------------------
# Aplicação (regras do contrato)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    username: str
    role: str


@dataclass
class ApiRequest:
    session: Optional[Session]
    body: dict
    device_id: Optional[str]


class LicenseApp:
    """Implementa cada rota do contrato; devolve (status, payload)."""

    def __init__(self, db: Database, clock: Clock, admins: dict):
        self.db = db
        self.clock = clock
        self._admins = {name: hash_password(pw) for name, pw in admins.items()}
        self._admin_must_change = {name: pw == DEFAULT_ADMIN_PASSWORD
                                   for name, pw in admins.items()}
        self._tokens: dict[str, Session] = {}
        self._tokens_lock = threading.Lock()
        self.license_servers: Optional[list] = None  # LICENSE_SERVERS (None = lista embutida)
        self.variant = Variante()  # MySQL / versão antiga (bloco "Variantes dos servidores reais")
        self.login_refused = False  # senha trocada depois de revogar os tokens: todo login dá 401

    # --- infraestrutura ---

    def handle(self, match: RouteMatch, headers, raw_body: bytes) -> tuple[int, dict]:
        """Autentica, lê o corpo e chama a ação da rota."""
        if match.route is None:
            return self._unrouted(match)
        session = self._session_from(headers) if match.route.needs_auth else None
        if match.route.needs_auth and session is None:
            return 401, {"error": "Unauthorized"}
        body = parse_json_body(raw_body) if match.route.reads_body else {}
        if body is None:
            return 400, {"error": MSG_BAD_JSON}
        action = getattr(self, match.route.action)
        return action(ApiRequest(session, body, match.device_id))

    @staticmethod
    def _unrouted(match: RouteMatch) -> tuple[int, Any]:
        """Rota inexistente: a página HTML padrão do Flask/Werkzeug (não JSON)."""
        if match.method_not_allowed:
            return 405, HtmlPage(FLASK_405_PAGE)
        return 404, HtmlPage(FLASK_404_PAGE)

    def _session_from(self, headers) -> Optional[Session]:
        header = headers.get("Authorization") or ""
        if not header.startswith("Bearer "):
            return None
        with self._tokens_lock:
            return self._tokens.get(header[len("Bearer "):].strip())

    def _issue_token(self, username: str, role: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._tokens_lock:
            self._tokens[token] = Session(username, role)
        return token

    def invalidate_tokens(self) -> None:
        with self._tokens_lock:
            self._tokens.clear()

    def is_super_admin(self, username: str) -> bool:
        return username in self._admins

    # --- autenticação ---

    def login(self, req: ApiRequest) -> tuple[int, dict]:
        username = clean_text(req.body.get("username"))
        password = req.body.get("password")
        if not username or not isinstance(password, str) or not password.strip():
            return 400, {"error": MSG_CREDENTIALS_REQUIRED}
        account = None if self.login_refused else self._authenticate(username, password)
        if account is None:
            return 401, {"error": MSG_BAD_CREDENTIALS}
        role, must_change = account
        token = self._issue_token(username, role)
        return 200, {"token": token, "must_change_password": must_change, "role": role}

    def _authenticate(self, username: str, password: str) -> Optional[tuple[str, bool]]:
        """Devolve (role, must_change_password) ou None se as credenciais falharem."""
        if username in self._admins:
            if check_password(password, self._admins[username]):
                return "admin", self._admin_must_change[username]
            return None
        user = self.db.find_user(username)
        if user and check_password(password, user["password_hash"]):
            return user["role"], False
        return None

    # --- usuários ---

    def list_users(self, req: ApiRequest) -> tuple[int, dict]:
        return 200, {"items": self.db.list_users()}

    def create_user(self, req: ApiRequest) -> tuple[int, dict]:
        error = self._validate_new_user(req.body)
        if error:
            return 400, {"error": error}
        username = clean_text(req.body["username"])
        role = clean_text(req.body.get("role")) or "user"
        try:
            user_id = self.db.insert_user(
                username, hash_password(str(req.body["password"])),
                clean_text(req.body.get("email")), role, self.clock.timestamp())
        except ValueError:  # outra requisição criou o mesmo nome no meio do caminho
            return 400, {"error": MSG_USER_EXISTS}
        return 201, {"ok": True, "user_id": user_id, "username": username, "role": role}

    def _validate_new_user(self, body: dict) -> Optional[str]:
        """Aplica as validações na ordem do servidor real; devolve a mensagem de erro."""
        username = clean_text(body.get("username"))
        password = body.get("password")
        password = None if password is None else str(password)
        if not username or not password or not password.strip():
            return MSG_USER_FIELDS_REQUIRED
        if len(password) < 6:
            return MSG_SHORT_PASSWORD
        if (clean_text(body.get("role")) or "user") not in USER_ROLES:
            return MSG_BAD_ROLE
        if self.is_super_admin(username) or self.db.find_user(username):
            return MSG_USER_EXISTS
        return None

    # --- licenças ---

    def list_devices(self, req: ApiRequest) -> tuple[int, dict]:
        only_mine = req.session.role != "admin"
        owner = req.session.username if only_mine else None
        return 200, {"items": [self.variant.listed(d) for d in self.db.list_devices(created_by=owner)]}

    def upsert_device(self, req: ApiRequest) -> tuple[int, dict]:
        device_id = clean_text(req.body.get("device_id"))
        if not device_id:
            return 400, {"error": MSG_DEVICE_ID_REQUIRED}
        license_type = clean_text(req.body.get("license_type")) or DEFAULT_LICENSE_TYPE
        if license_type not in LICENSE_TYPES:
            return 400, {"error": MSG_BAD_LICENSE_TYPE}
        changes = self._upsert_changes(req.body, license_type)
        if self.variant.drops_created_by:  # primeira versão: o created_by enviado é ignorado
            changes["created_by"] = "admin"
        stored = self.variant.fit({"device_id": device_id, **changes})  # larguras das colunas (MySQL)
        device_id = stored.pop("device_id")
        self.db.upsert_device(device_id, stored, {"custom_interval": 60, "features": "core"})
        return 201, {"success": True, "device_id": device_id, "license_type": license_type}

    def _upsert_changes(self, body: dict, license_type: str) -> dict:
        """Campos gravados tanto na inserção quanto na atualização (sobrescreve tudo)."""
        today = self.clock.today()
        changes = {name: clean_text(body.get(name)) for name in EDITABLE_TEXT_FIELDS}
        changes.update(
            license_type=license_type, status="active", start_date=today.isoformat(),
            end_date=end_date_for(today, license_type),
            created_by=clean_text(body.get("created_by")) or "admin")
        return changes

    def change_status(self, req: ApiRequest) -> tuple[int, dict]:
        action = req.body.get("action")
        if action not in DEVICE_ACTIONS:
            return 400, {"error": MSG_BAD_ACTION}
        status = self.db.change_status(
            req.device_id, lambda current: self._next_status(action, current))
        if status is None:
            return 404, {"error": MSG_DEVICE_NOT_FOUND}
        return 200, {"success": True, "device_id": req.device_id, "status": status}

    @staticmethod
    def _next_status(action: str, current: Optional[str]) -> str:
        """toggle: bloqueada vira ativa; qualquer outro estado vira bloqueada."""
        if action == "block":
            return "blocked"
        if action == "activate":
            return "active"
        return "active" if current == "blocked" else "blocked"

    def delete_device(self, req: ApiRequest) -> tuple[int, dict]:
        if req.session.role != "admin":
            return 403, {"error": "Forbidden"}
        if not self.db.delete_device(req.device_id):
            return 404, {"error": MSG_DEVICE_NOT_FOUND}
        return 200, {"success": True, "device_id": req.device_id, "message": MSG_DELETED}

    def update_created_by(self, req: ApiRequest) -> tuple[int, dict]:
        device_id = clean_text(req.body.get("device_id"))
        if not device_id:
            return 400, {"error": MSG_DEVICE_ID_REQUIRED}
        created_by = clean_text(req.body.get("created_by")) or "admin"
        created_by = self.variant.fit({"created_by": created_by})["created_by"]
        if not self.db.update_device(device_id, {"created_by": created_by}):
            return 404, {"error": MSG_DEVICE_NOT_FOUND}
        return 200, {"success": True, "device_id": device_id, "created_by": created_by}

    # --- outros escritores de licenças ---

    def create_pix(self, req: ApiRequest) -> tuple[int, dict]:
        """Cobrança Pix: cria ou reinicia a licença como pendente, com intervalo e recursos crus.
        Como o resto da API, confere só o token, não o papel; created_by = quem chamou."""
        owner_name, cpf = clean_text(req.body.get("owner_name")), clean_text(req.body.get("cpf"))
        if not owner_name or not cpf:
            return 400, {"error": MSG_OWNER_CPF_REQUIRED}
        license_type = clean_text(req.body.get("license_type")) or DEFAULT_LICENSE_TYPE
        if license_type not in LICENSE_TYPES:
            return 400, {"error": MSG_BAD_LICENSE_TYPE}
        device_id = clean_text(req.body.get("device_id")) or secrets.token_hex(16)
        changes = self._upsert_changes(
            {**req.body, "created_by": req.session.username}, license_type)
        changes.update(
            owner_name=owner_name, cpf=cpf, status="pending",
            custom_interval=req.body.get("custom_interval", 60),
            features=req.body.get("features", "core"))
        self.db.upsert_device(device_id, changes, {})
        return 201, {"success": True, "device_id": device_id, "license_type": license_type,
                     "status": "pending"}

    def create_free_device(self, req: ApiRequest) -> tuple[int, dict]:
        """Revendedor cria uma licença vitalícia gratuita em seu nome (não sobrescreve)."""
        device_id = clean_text(req.body.get("device_id"))
        if not device_id:
            return 400, {"error": MSG_DEVICE_ID_REQUIRED}
        record = {name: clean_text(req.body.get(name)) for name in EDITABLE_TEXT_FIELDS}
        record.update(
            device_id=device_id, license_type="vitalicia", status="active",
            start_date=self.clock.today().isoformat(), end_date=None, custom_interval=60,
            features="core", created_by=req.session.username)
        try:
            self.db.insert_device(record)
        except ValueError:
            return 400, {"error": MSG_DEVICE_EXISTS}
        return 201, {"success": True, "device_id": device_id, "license_type": "vitalicia"}

    # --- diversos ---

    def servers(self, req: ApiRequest) -> tuple[int, dict]:
        """Lista pública de failover dos clientes (LICENSE_SERVERS ou a lista embutida)."""
        configured = self.license_servers
        servers = list(SERVIDORES_PADRAO if configured is None else configured)
        stamp = int(self.clock.local_now().strftime("%Y%m%d%H%M%S"))
        return 200, {"version": SERVERS_LIST_VERSION, "timestamp": stamp, "servers": servers}

    def health(self, req: ApiRequest) -> tuple[int, dict]:
        return 200, {"status": "ok"}

    def ping(self, req: ApiRequest) -> tuple[int, dict]:
        return 200, {"pong": True, "time": self.clock.now().isoformat()}  # a hora UTC do relógio do servidor


# ---------------------------------------------------------------------------
# Injeção de falhas
# ---------------------------------------------------------------------------


@dataclass
class Override:
    """Resposta enlatada para um método + rota (modelo ou caminho concreto)."""
    method: str
    path: str
    status: int
    body: Any  # bytes, ou uma função (corpo recebido → bytes): ecoar_corpo
    content_type: str
    remaining: Optional[int]


@dataclass
class RouteRule:
    """Regra por método + rota (modelo ou caminho concreto): trickle, atraso ou gancho."""
    method: str
    path: str
    value: Any
    remaining: Optional[int]  # None = sempre
    skip: int = 0


class FaultInjector:
    """Guarda os botões de falha e decide, de forma reprodutível, o que falha."""

    def __init__(self, stop_event: threading.Event):
        self._stop_event = stop_event
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._overrides: list[Override] = []
        self._rules: dict[str, list[RouteRule]] = collections.defaultdict(list)
        self._sleeping = True
        self._wake_at = 0.0
        self.clear()

    def clear(self) -> None:
        """Desliga todas as falhas (não mexe nas respostas enlatadas)."""
        self.latency_ms = 0
        self.fail_rate = 0.0
        self.fail_modes = list(DEFAULT_FAULT_MODES)
        self.fail_paths = None
        self.hang_seconds = 5.0
        self.sleep_first_seconds = 0.0
        self.seed = None

    def set(self, name: str, value: Any) -> None:
        if name not in FAULT_KNOBS:
            raise ValueError(f"Botão de falha desconhecido: {name!r}")
        if name == "fail_modes":
            value = self._checked_modes(value)
        if name == "fail_paths" and value is not None:
            value = set(value)
        if name in ("latency_ms", "fail_rate", "hang_seconds", "sleep_first_seconds"):
            value = float(value or 0)
        if name == "seed":
            with self._lock:
                self._rng.seed(value)
        object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in FAULT_KNOBS:
            self.set(name, value)
        else:
            object.__setattr__(self, name, value)

    @staticmethod
    def _checked_modes(modes) -> list[str]:
        modes = [modes] if isinstance(modes, str) else list(modes)
        unknown = [mode for mode in modes if mode not in FAULT_MODES]
        if unknown or not modes:
            raise ValueError(f"Modos de falha inválidos: {unknown or modes!r}")
        return modes

    # --- esperas (interrompíveis pelo stop) ---

    def pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stop_event.wait(seconds)

    def apply_latency(self) -> None:
        self.pause((self.latency_ms or 0) / 1000.0)

    def sleep_again(self) -> None:
        with self._lock:
            self._sleeping = True

    def wait_awake(self) -> None:
        """Host dormindo: a primeira requisição acorda o host e todas esperam o despertar."""
        with self._lock:
            if self._sleeping:
                self._sleeping = False
                self._wake_at = time.monotonic() + (self.sleep_first_seconds or 0)
            wake_at = self._wake_at
        self.pause(wake_at - time.monotonic())

    # --- falhas aleatórias ---

    def pick_fault(self, template: str, path: str) -> Optional[str]:
        """Sorteia se esta requisição falha e como (None = sem falha)."""
        if not self.fail_rate or self.fail_rate <= 0:
            return None
        paths = self.fail_paths
        if paths is not None and template not in paths and path not in paths:
            return None
        with self._lock:
            if self._rng.random() >= self.fail_rate:
                return None
            return self._rng.choice(self.fail_modes)

    # --- respostas enlatadas ---

    def add_override(self, override: Override) -> None:
        with self._lock:
            self._overrides.append(override)

    def clear_overrides(self) -> None:
        with self._lock:
            self._overrides.clear()

    def take_override(self, method: str, template: str, path: str) -> Optional[Override]:
        """Consome a primeira resposta enlatada que casa (ordem de cadastro)."""
        with self._lock:
            for override in self._overrides:
                if override.method == method and override.path in (template, path):
                    self._consume(override)
                    return override
        return None

    def _consume(self, override: Override) -> None:
        if override.remaining is None:
            return
        override.remaining -= 1
        if override.remaining <= 0:
            self._overrides.remove(override)

    # --- regras por rota (trickle, atrasos, ganchos) ---

    def add_rule(self, kind: str, rule: RouteRule) -> None:
        with self._lock:
            self._rules[kind].append(rule)

    def clear_rules(self, *kinds: str) -> None:
        with self._lock:
            for kind in kinds or list(self._rules):
                self._rules[kind] = []

    def take_rules(self, kind: str, method: str, template: str, path: str) -> list[RouteRule]:
        """Consome as regras do tipo que casam com a requisição (as que ainda pulam só contam)."""
        taken = []
        with self._lock:
            rules = self._rules.get(kind) or []
            for rule in list(rules):
                if rule.method not in ("*", method) or rule.path not in ("*", template, path):
                    continue
                if rule.skip > 0:
                    rule.skip -= 1
                    continue
                taken.append(rule)
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        rules.remove(rule)
        return taken


def _encode_body(body: Any) -> Any:
    """Corpo enlatado: bytes e str vão crus; uma função (corpo da requisição → bytes) é chamada a cada
    resposta; outros valores viram JSON."""
    if isinstance(body, bytes) or callable(body):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json_bytes(body)


# ---------------------------------------------------------------------------
# Estatísticas de requisições
# ---------------------------------------------------------------------------


class RequestStats:
    """Conta requisições por (método, modelo de caminho) e guarda o registro em ordem."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: collections.Counter = collections.Counter()
        self._log: list[list] = []
        self.connections_accepted = 0

    def arrival(self, method: str, template: str) -> list:
        entry = [method, template, None]
        with self._lock:
            self._counts[(method, template)] += 1
            self._log.append(entry)
        return entry

    @staticmethod
    def finish(entry: list, status: Optional[int]) -> None:
        entry[2] = status

    def connection_opened(self) -> None:
        with self._lock:
            self.connections_accepted += 1

    def counts(self) -> collections.Counter:
        with self._lock:
            return collections.Counter(self._counts)

    def log(self) -> list[tuple]:
        with self._lock:
            return [tuple(entry) for entry in self._log]

    def reset(self) -> None:
        with self._lock:
            self._counts = collections.Counter()
            self._log = []


# ---------------------------------------------------------------------------
# Camada HTTP
# ---------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64
    tls_context: ssl.SSLContext | None = None  # https (ServidorReferencia(tls=...))

    def get_request(self):
        """Com TLS, a conexão aceita é embrulhada aqui e o aperto de mão fica para a thread da
        conexão (RequestHandler.setup): um cliente lento ou que fala http puro não trava o accept."""
        sock, address = super().get_request()
        if self.tls_context is not None:
            sock = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request, client_address):
        """Conexões derrubadas pelo cliente ou pelo stop não sujam a saída."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class RequestHandler(BaseHTTPRequestHandler):
    """Lê a requisição, entrega ao ServidorReferencia e escreve a resposta."""

    protocol_version = "HTTP/1.1"
    owner: "ServidorReferencia" = None  # definido na subclasse criada por servidor

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            self.owner._tls_handshake(self.request)  # falhou: OSError, conexão fechada sem resposta
        super().setup()
        # cabeçalho e corpo saem em escritas separadas: sem NODELAY o Nagle atrasa ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.owner._connection_opened(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.owner._connection_closed(self.connection)

    def log_message(self, format, *args):  # noqa: A002 - assinatura da stdlib
        """Silencioso: os testes não querem log de acesso no stderr."""

    def send_header(self, keyword, value):
        if keyword.lower() == "date" and self.owner is not None and self.owner.sem_date:
            return  # um proxy que não manda o Date
        super().send_header(keyword, value)

    def date_time_string(self, timestamp=None):
        """O cabeçalho Date segue o relógio DESTE servidor (o fixado por set_now/set_today, se houver), como o
        de um servidor real segue o dele: um teste pode ter um servidor dias à frente do processo do teste."""
        if timestamp is None and self.owner is not None:
            return email.utils.format_datetime(self.owner.now(), usegmt=True)
        return super().date_time_string(timestamp)

    def do_GET(self):
        self.owner._process(self)

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def send_raw(self, status: int, body: bytes, content_type: str) -> None:
        """Envia a resposta sempre com Content-Length (mantém a conexão viva)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_gzip(self, status: int, body: bytes, content_type: str) -> None:
        """Como send_raw, com o corpo comprimido (gzip) e Content-Length do comprimido."""
        packed = gzip.compress(body, compresslevel=6)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(packed)))
        self.end_headers()
        self.wfile.write(packed)

    def send_trickled(self, status: int, body: bytes, content_type: str, seconds_per_byte: float,
                      headers_too: bool, stop: threading.Event) -> None:
        """Envia a resposta um byte por vez; cliente que desiste ou stop() só encerram a conexão."""
        phrase = self.responses.get(status, ("",))[0]
        head = (f"{self.protocol_version} {status} {phrase}\r\n"
                f"Server: {self.version_string()}\r\nDate: {self.date_time_string()}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode("latin-1")
        try:
            if not headers_too:
                self.wfile.write(head)
            data = head + body if headers_too else body
            for index in range(len(data)):
                if stop.wait(seconds_per_byte):
                    break
                self.wfile.write(data[index:index + 1])
            else:
                return
        except OSError:
            pass
        self.close_connection = True

    def send_limited(self, status: int, body: bytes, content_type: str, rate: float, silent_after: int | None,
                     stop: threading.Event, record: dict) -> None:
        """Cabeçalhos na hora; o corpo a `rate` bytes por segundo (fatias de 50 ms no ritmo de um relógio).
        Com `silent_after`, cala-se depois desse tanto do corpo até o cliente desistir (ou stop()).
        `record` recebe ultimo_byte, enviados, fim e completa."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        limit = len(body) if silent_after is None else min(len(body), max(0, int(silent_after)))
        start, sent = time.monotonic(), 0
        try:
            while sent < limit:
                due = start + sent / rate
                if stop.wait(max(0.0, due - time.monotonic())):
                    break
                piece = body[sent:min(limit, sent + max(1, int(rate * 0.05)))]
                self.wfile.write(piece)
                self.wfile.flush()
                sent += len(piece)
                record.update(ultimo_byte=time.monotonic(), enviados=sent)
            if sent < len(body):
                self._wait_client_gone(stop)
        except OSError:
            pass
        record.update(fim=time.monotonic(), completa=sent == len(body))
        if sent < len(body):
            self.close_connection = True

    def _wait_client_gone(self, stop: threading.Event, limit: float = 300.0) -> None:
        """Calado: espera o cliente fechar a conexão (leitura de 0 bytes), o stop() ou `limit` s."""
        end = time.monotonic() + limit
        while time.monotonic() < end and not stop.is_set():
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable and not self.connection.recv(1, socket.MSG_PEEK):
                return

    def reset_connection(self) -> None:
        """Fecha com SO_LINGER 0: o cliente recebe um RST, sem resposta."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # o makefile segura o descritor: sem isto o close não fecha
        self.connection.close()
        # a stdlib ainda faz flush/close nesses arquivos: troca por arquivos de mentira
        self.rfile, self.wfile = io.BytesIO(), io.BytesIO()

    def drop_connection(self) -> None:
        """Fecha normalmente sem ter respondido nada."""
        self.close_connection = True


# ---------------------------------------------------------------------------
# Variantes dos servidores reais: MySQL, versões antigas e falhas de escrita
# ---------------------------------------------------------------------------
# Opções de ServidorReferencia(...) (descritas na docstring da classe). Ficam num bloco só para
# que o resto do servidor continue sendo o servidor "atual sobre SQLite" do contrato.

# Larguras das colunas no MySQL (caracteres). address é TEXT: sem limite.
MYSQL_WIDTHS = {"device_id": 255, "owner_name": 255, "email": 255, "cpf": 20, "created_by": 100,
                "license_type": 50, "status": 50}
MSG_DB_LOCKED = "database is locked"
VERSOES = ("atual", "antiga", "primeira")


def chave_mysql(text: str) -> str:
    """Como utf8mb4_unicode_ci compara: sem acentos e sem maiúsculas (ß = ss, É = e)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def colacao_mysql(a: str, b: str) -> int:
    """Colação do SQLite que imita utf8mb4_unicode_ci (usada na coluna device_id)."""
    ka, kb = chave_mysql(a), chave_mysql(b)
    return (ka > kb) - (ka < kb)


def data_rfc1123(value: Any) -> Any:
    """'2025-07-01' → 'Tue, 01 Jul 2025 00:00:00 GMT' (como o Flask serializa uma coluna DATE do MySQL)."""
    day = _parse_day(value)
    if day is None:
        return value
    return email.utils.format_datetime(dt.datetime.combine(day, dt.time(0), tzinfo=dt.timezone.utc), usegmt=True)  # noqa: UP017


class ValorLongoDemais(Exception):
    """Modo estrito do MySQL: valor maior que a coluna (o servidor responde 500)."""


@dataclass
class Variante:
    """O que este servidor faz diferente do atual sobre SQLite."""
    collation: bool = False  # chave de licença sem acento/maiúscula (MySQL)
    widths: str | None = None  # None | "estrito" (500) | "corta" (corta calado)
    rfc1123: bool = False  # datas da listagem em RFC 1123
    disabled: frozenset = frozenset()  # rotas que esta versão não tem
    drops_created_by: bool = False  # primeira versão: grava sempre created_by = "admin"

    @classmethod
    def build(cls, colacao: str | None, colunas: str | None, datas: str, versao: str) -> Variante:
        if colacao not in (None, "mysql"):
            raise ValueError(f"colacao deve ser None ou 'mysql': {colacao!r}")
        if colunas not in (None, "estrito", "corta"):
            raise ValueError(f"colunas deve ser None, 'estrito' ou 'corta': {colunas!r}")
        if datas not in ("iso", "rfc1123"):
            raise ValueError(f"datas deve ser 'iso' ou 'rfc1123': {datas!r}")
        if versao not in VERSOES:
            raise ValueError(f"versao deve ser uma de {VERSOES}: {versao!r}")
        disabled = frozenset()
        if versao in ("antiga", "primeira"):
            disabled = frozenset({"change_status", "delete_device", "servers"})
        if versao == "primeira":
            disabled |= {"update_created_by"}
        return cls(colacao == "mysql", colunas, datas == "rfc1123", disabled, versao == "primeira")

    def fit(self, fields: dict) -> dict:
        """Aplica as larguras das colunas: estrito = ValorLongoDemais (500); corta = corta calado."""
        if self.widths is None:
            return dict(fields)
        out = {}
        for name, value in fields.items():
            width = MYSQL_WIDTHS.get(name)
            if width is not None and isinstance(value, str) and len(value) > width:
                if self.widths == "estrito":
                    raise ValorLongoDemais(f"Data too long for column '{name}'")
                value = value[:width]
            out[name] = value
        return out

    def listed(self, device: dict) -> dict:
        if not self.rfc1123:
            return device
        return {**device, "start_date": data_rfc1123(device.get("start_date")),
                "end_date": data_rfc1123(device.get("end_date"))}


class FalhasDeEscrita:
    """500 em escritas escolhidas (a N-ésima escrita), "database is locked" que passa quando repetido,
    e token revogado depois de N escritas (com novo login aceito ou recusado)."""

    def __init__(self, travado: int = 0, falhar: Any = (), revogar_apos: int | None = None,
                 login_apos_revogar: bool = True):
        self._lock = threading.Lock()
        self.travado = int(travado)
        self.falhar = set(falhar or ())
        self.revogar_apos = revogar_apos
        self.login_apos_revogar = login_apos_revogar
        self.recebidas = 0  # escritas que chegaram (conta também as que levaram 500)
        self.aceitas = 0  # escritas respondidas com 2xx pela aplicação
        self._tentativas: collections.Counter = collections.Counter()

    @staticmethod
    def _is_write(match: RouteMatch) -> bool:
        return match.route is not None and match.route.method in ("POST", "DELETE") \
            and match.route.action != "login"

    def before(self, match: RouteMatch, path: str, raw_body: bytes) -> dict | None:
        """Corpo do 500 para esta escrita (nada é gravado), ou None para seguir."""
        if not self._is_write(match):
            return None
        with self._lock:
            self.recebidas += 1
            if self.recebidas in self.falhar:
                return {"error": "Internal Server Error"}
            if self.travado:
                key = (match.route.method, path, raw_body)
                self._tentativas[key] += 1
                if self._tentativas[key] <= self.travado:
                    return {"error": MSG_DB_LOCKED}
        return None

    def after(self, match: RouteMatch, status: int, app: LicenseApp) -> None:
        if not self._is_write(match) or not 200 <= status < 300:
            return
        with self._lock:
            self.aceitas += 1
            if self.revogar_apos is not None and self.aceitas == self.revogar_apos:
                app.invalidate_tokens()
                app.login_refused = not self.login_apos_revogar


# ---------------------------------------------------------------------------
# Servidor de referência
# ---------------------------------------------------------------------------


class ServidorReferencia:
    """Servidor de licenças de referência, com dados diretos e botões de falha.

    Variantes dos servidores reais (opções do construtor; padrão = o servidor atual sobre SQLite):
    - `colacao="mysql"`: chaves de licença comparadas como utf8mb4_unicode_ci (sem maiúsculas e sem
      acentos, ß = ss): `ABC`/`abc`, `José`/`Jose`, `straße`/`STRASSE` são UM registro; o upsert de
      uma grafia atualiza o registro da outra (que mantém a grafia gravada primeiro); o oráculo
      `veredito(id)` acha qualquer grafia, como /verify.
    - `colunas="estrito"|"corta"`: larguras do MySQL (`MYSQL_WIDTHS`: device_id, owner_name e email 255,
      cpf 20, created_by 100, license_type e status 50). Estrito: valor mais longo → HTTP 500 e nada é
      gravado; corta: gravado cortado na largura e a escrita responde sucesso.
    - `datas="rfc1123"`: start_date/end_date da listagem como `Tue, 01 Jul 2025 00:00:00 GMT`.
    - `versao="antiga"`: sem POST /admin/devices/<id>/deactivate, sem DELETE .../delete e sem
      GET /servers (404 HTML do Flask). `versao="primeira"`: além disso sem
      /admin/devices/update-created-by, e o upsert grava sempre created_by = "admin".
    - `banco_travado=k`: cada escrita (mesmo método, caminho e corpo) responde 500
      `{"error": "database is locked"}` nas k primeiras vezes e passa na seguinte.
    - `falhar_escritas={n, ...}`: a n-ésima escrita que chega (1 = a primeira; login não conta)
      responde 500 sem gravar nada. Para o 500 no primeiro bloqueio de um id, use
      `fail_next("POST", "/admin/devices/<o id>/deactivate", 500, {...})`.
    - `revogar_token_apos=N`: depois da N-ésima escrita aceita, todos os tokens deixam de valer;
      com `login_apos_revogar=False` todo login seguinte também é recusado (senha trocada).
    `falhas_de_escrita(...)` troca as três últimas com o servidor rodando (e zera as contagens).
    `mysql("estrito"|"corta")` é um atalho: colação, colunas e datas do MySQL.
    """

    @classmethod
    def mysql(cls, colunas: str = "estrito", **kwargs) -> ServidorReferencia:
        return cls(colacao="mysql", colunas=colunas, datas="rfc1123", **kwargs)

    def falhas_de_escrita(self, banco_travado: int = 0, falhar_escritas: Any = (),
                          revogar_token_apos: int | None = None, login_apos_revogar: bool = True) -> None:
        """Troca as falhas de escrita (veja a docstring da classe); as contagens recomeçam do zero."""
        self._write_faults = FalhasDeEscrita(banco_travado, falhar_escritas, revogar_token_apos, login_apos_revogar)
        self._app.login_refused = False

    @property
    def escritas_recebidas(self) -> int:
        """Escritas que chegaram desde a criação (ou desde falhas_de_escrita), inclusive as que levaram 500."""
        return self._write_faults.recebidas

    def __init__(self, host: str = "127.0.0.1", port: int = 0, db_path: Optional[str] = None,
                 admins: Optional[dict] = None, today: Any = None, fuso: str = "UTC",
                 servidores: Optional[list] = None, now: Optional[dt.datetime] = None, primeiro_id: int = 1,
                 colacao: str | None = None, colunas: str | None = None, datas: str = "iso",
                 versao: str = "atual", banco_travado: int = 0, falhar_escritas: Any = (),
                 revogar_token_apos: int | None = None, login_apos_revogar: bool = True,
                 tls: ssl.SSLContext | None = None,  # https: veja o bloco TLS do docstring do módulo
                 **faults):
        self.host, self.port = host, port
        variante = Variante.build(colacao, colunas, datas, versao)  # opção inválida: nada é criado
        self._clock = Clock(today, fuso, now)
        self._temp_db = self._make_temp_db() if db_path is None else None
        self._db = Database(self._temp_db or db_path, colacao_mysql if variante.collation else None,
                            duravel=self._temp_db is None)
        if primeiro_id != 1:
            self._db.start_ids(primeiro_id)
        admins = {"admin": DEFAULT_ADMIN_PASSWORD} if admins is None else dict(admins)
        self._app = LicenseApp(self._db, self._clock, admins)
        self._app.variant = variante
        self._write_faults = FalhasDeEscrita(banco_travado, falhar_escritas, revogar_token_apos, login_apos_revogar)
        self._disabled_actions: frozenset = frozenset()
        self.hook_errors: list = []  # exceções levantadas pelos ganchos de on_request
        self.set_license_servers(servidores)
        self._stop_event = threading.Event()
        self._faults = FaultInjector(self._stop_event)
        self._stats = RequestStats()
        self._sockets: set = set()
        self._sockets_lock = threading.Lock()
        self._httpd: Optional[_HTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._stopped = False
        self._tls = tls
        self._tls_refused = 0
        self._limited: list[dict] = []  # limitar_banda: uma entrada por resposta limitada
        self.set_faults(**faults)

    @staticmethod
    def _make_temp_db() -> str:
        fd, path = tempfile.mkstemp(prefix="servidor_referencia_", suffix=".sqlite")
        os.close(fd)
        return path

    # --- ciclo de vida ---

    def start(self) -> "ServidorReferencia":
        if self._httpd is not None or self._stopped:
            raise RuntimeError("Servidor já foi iniciado (ou já foi parado).")
        handler = type("BoundRequestHandler", (RequestHandler,), {"owner": self})
        self._httpd = _HTTPServer((self.host, self.port), handler)
        self._httpd.tls_context = self._tls
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01},
            name=f"servidor-referencia-{self.port}", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("Servidor não iniciado: chame start() antes de usar url.")
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    def stop(self) -> None:
        """Para o servidor, derruba as conexões abertas e apaga o banco temporário."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_event.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._close_open_connections()
            self._thread.join(timeout=5)
        self._db.close()
        self._remove_temp_db()

    def _close_open_connections(self) -> None:
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _remove_temp_db(self) -> None:
        if self._temp_db:
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    os.remove(self._temp_db + suffix)
                except FileNotFoundError:
                    pass

    def __enter__(self) -> "ServidorReferencia":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # --- TLS ---

    def _tls_handshake(self, sock: ssl.SSLSocket) -> None:
        sock.settimeout(10)
        try:
            sock.do_handshake()
        except OSError:  # ssl.SSLError também: certificado recusado, http puro na porta https
            with self._sockets_lock:
                self._tls_refused += 1
            raise
        finally:
            sock.settimeout(None)

    def conexoes_tls_recusadas(self) -> int:
        """Apertos de mão TLS que falharam (cliente recusou o certificado ou falou http puro)."""
        with self._sockets_lock:
            return self._tls_refused

    def _connection_opened(self, sock) -> None:
        self._stats.connection_opened()
        with self._sockets_lock:
            self._sockets.add(sock)

    def _connection_closed(self, sock) -> None:
        with self._sockets_lock:
            self._sockets.discard(sock)

    # --- tratamento de cada requisição ---

    def _process(self, handler: RequestHandler) -> None:
        path = urlsplit(handler.path).path
        raw_body = handler.read_body()
        match = resolve_route(handler.command, path, self._disabled_actions | self._app.variant.disabled)
        entry = self._stats.arrival(handler.command, match.template)
        if self._answer_redirect(handler, match.template, path, entry):
            return None
        self._faults.wait_awake()
        self._faults.apply_latency()
        where = (handler.command, match.template, path)
        self._route_extras("before", *where)
        if self._stop_event.is_set():
            return handler.drop_connection()
        if self._answer_override(handler, match.template, path, entry, raw_body):
            return None
        fault = self._faults.pick_fault(match.template, path)
        if fault in ("503", "html502", "reset", "hang"):
            return self._early_fault(handler, fault, entry)
        refused = self._write_faults.before(match, path, raw_body)  # 500 escolhido ou "database is locked"
        if refused is not None:
            self._stats.finish(entry, 500)
            return handler.send_raw(500, json_bytes(refused), JSON_TYPE)
        status, payload = self._run_app(match, handler.headers, raw_body)
        payload = self._cut_listing(handler.command, match.template, status, payload)
        self._write_faults.after(match, status, self._app)  # token revogado depois de N escritas
        self._route_extras("after", *where)
        if self._stop_event.is_set():
            return handler.drop_connection()
        return self._deliver(handler, fault, status, payload, entry, where)

    def _route_extras(self, when: str, method: str, template: str, path: str) -> None:
        """Ganchos e atrasos por rota, no momento `when` ("before" ou "after" da aplicação)."""
        for rule in self._faults.take_rules("hook_" + when, method, template, path):
            self._run_hook(rule.value)
        for rule in self._faults.take_rules("delay_" + when, method, template, path):
            self._faults.pause(rule.value)

    def _run_hook(self, callback) -> None:
        try:
            callback(self)
        except Exception as exc:  # noqa: BLE001 - o teste confere srv.hook_errors
            self.hook_errors.append(exc)

    def _run_app(self, match: RouteMatch, headers, raw_body: bytes) -> tuple[int, dict]:
        try:
            return self._app.handle(match, headers, raw_body)
        except Exception:  # noqa: BLE001 - o servidor real responde 500 em qualquer erro
            return 500, {"error": "Internal Server Error"}

    def _answer_override(self, handler, template: str, path: str, entry: list, raw_body: bytes = b"") -> bool:
        override = self._faults.take_override(handler.command, template, path)
        if override is None:
            return False
        self._stats.finish(entry, override.status)
        body = override.body(raw_body) if callable(override.body) else override.body
        handler.send_raw(override.status, body, override.content_type)
        return True

    def _early_fault(self, handler: RequestHandler, fault: str, entry: list) -> None:
        """Falhas que acontecem antes do processamento (nada é gravado)."""
        if fault == "503":
            self._stats.finish(entry, 503)
            handler.send_raw(503, json_bytes({"error": "Service Unavailable"}), JSON_TYPE)
        elif fault == "html502":
            self._stats.finish(entry, 502)
            handler.send_raw(502, PROXY_502_PAGE.encode("utf-8"), HTML_TYPE)
        elif fault == "reset":
            handler.reset_connection()
        else:
            self._faults.pause(self._faults.hang_seconds or 0)
            handler.drop_connection()

    def _deliver(self, handler, fault, status: int, payload: dict, entry: list,
                 where: tuple) -> None:
        """Entrega a resposta processada; "lost" e "truncated" a estragam depois da escrita;
        uma regra de trickle a manda um byte por vez."""
        if fault == "lost":
            return handler.reset_connection()
        is_html = isinstance(payload, HtmlPage)
        body = payload.encode("utf-8") if is_html else json_bytes(payload)
        if fault == "truncated":
            body = body[: len(body) // 2]
        self._stats.finish(entry, status)
        content_type = HTML_TYPE if is_html else JSON_TYPE
        trickles = self._faults.take_rules("trickle", *where)
        if trickles:
            seconds, headers_too = trickles[0].value
            return handler.send_trickled(status, body, content_type, seconds, headers_too,
                                         self._stop_event)
        limits = self._faults.take_rules("banda", *where)
        if limits:
            rate, silent_after = limits[0].value
            record = {"inicio": time.monotonic(), "ultimo_byte": None, "fim": None, "enviados": 0,
                      "tamanho": len(body), "completa": False}
            with self._sockets_lock:
                self._limited.append(record)
            return handler.send_limited(status, body, content_type, rate, silent_after, self._stop_event, record)
        if getattr(self, "_gzip", False) and "gzip" in (handler.headers.get("Accept-Encoding") or "").lower():
            return handler.send_gzip(status, body, content_type)
        return handler.send_raw(status, body, content_type)

    def comprimir(self, ligar: bool = True) -> None:
        """Respostas da aplicação comprimidas com gzip (Content-Encoding: gzip) para quem pede
        Accept-Encoding: gzip, como o proxy de uma hospedagem (Render, Cloudflare) faz na frente do Flask."""
        self._gzip = bool(ligar)

    def _answer_redirect(self, handler, template: str, path: str, entry: list) -> bool:
        """redirecionar(): o 3xx de um proxy na frente do app (a aplicação não vê a requisição)."""
        rules = self._faults.take_rules("redirect", handler.command, template, path)
        if not rules:
            return False
        status, target, keep_path = rules[0].value
        location = target.rstrip("/") + handler.path if keep_path else target  # caminho e consulta, como um host
        phrase = handler.responses.get(status, ("Redirect",))[0]
        page = (f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n<center><h1>{status} "
                f"{phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n").encode()
        self._stats.finish(entry, status)
        handler.send_response(status)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(page)))
        handler.send_header("Location", location)
        handler.end_headers()
        handler.wfile.write(page)
        return True

    # --- "hoje" ---

    sem_date = False  # True: as respostas saem sem o cabeçalho Date

    def set_today(self, today: Any) -> None:
        """Fixa a data de hoje (str ISO ou date); None volta à data UTC real."""
        self._clock.set_today(today)

    def today(self) -> dt.date:
        """Data UTC do relógio (a que as escritas carimbam)."""
        return self._clock.today()

    def set_now(self, moment: Optional[dt.datetime]) -> None:
        """Fixa o instante atual do servidor (datetime com fuso); None volta ao relógio real."""
        self._clock.set_now(moment)

    def now(self) -> dt.datetime:
        """Instante atual do relógio do servidor, em UTC."""
        return self._clock.now()

    def local_today(self) -> dt.date:
        """Data do relógio no fuso do servidor (a que o veredito usa)."""
        return self._clock.local_today()

    @property
    def fuso(self) -> str:
        return self._clock.fuso

    # --- veredito (o que /verify responderia; oráculo dos testes) ---

    def veredito_motivo(self, device_id: str) -> str:
        """Como /verify: tira os espaços das pontas do id e procura; devolve o motivo
        ("liberada", "bloqueada", "expirada", "pendente" ou "inexistente")."""
        record = self._db.find_device(str(device_id).strip())
        return verdict_reason(record, self.local_today())

    def veredito(self, device_id: str) -> bool:
        """True se /verify liberaria um cliente que manda este id (passos 1 a 5 do contrato)."""
        return self.veredito_motivo(device_id) == "liberada"

    def vereditos(self) -> dict:
        """Veredito de cada licença gravada, pela chave como está gravada. Uma licença com espaços
        nas pontas do device_id nunca é alcançada por um cliente: False (mesmo que exista a
        "gêmea" sem espaços, cujo veredito é o dela própria)."""
        today = self.local_today()
        return {device["device_id"]: (device["device_id"] == device["device_id"].strip()
                                      and verdict_reason(device, today) == "liberada")
                for device in self._db.list_devices()}

    # --- acesso direto aos dados ---

    def add_user(self, username: str, password: str, email: Optional[str] = None,
                 role: str = "user", created_at: Optional[str] = None) -> int:
        """Cria um revendedor direto no banco (sem HTTP); devolve o id."""
        if self._app.is_super_admin(username):
            raise ValueError(f"Nome reservado a um super-admin: {username!r}")
        return self._db.insert_user(
            username, hash_password(password), email, role, created_at or self._clock.timestamp())

    def add_device(self, device_id: str, license_type: Optional[str] = "anual",
                   owner_name=None, cpf=None, email=None, address=None,
                   created_by: Optional[str] = "admin", status: Optional[str] = "active",
                   start_date=None, end_date=None, custom_interval=60, features="core",
                   last_seen_at=None, last_seen_ip=None, last_hostname=None,
                   last_version=None, calcular_fim: bool = True) -> int:
        """Grava uma licença exatamente como dada (device_id sem strip, custom_interval e features
        de qualquer tipo JSON, texto de qualquer tamanho). start_date None vira hoje (UTC);
        end_date None é calculado como na inserção, ou fica NULL com calcular_fim=False
        (importação antiga direto no banco)."""
        record = dict(locals())
        del record["self"], record["calcular_fim"]
        start = to_date(start_date) or self._clock.today()
        record["start_date"] = start.isoformat()
        if end_date is not None:
            record["end_date"] = to_date_text(end_date)
        else:
            record["end_date"] = end_date_for(start, license_type) if calcular_fim else None
        return self._db.insert_device(record)

    def remove_device(self, device_id: str) -> bool:
        return self._db.delete_device(device_id)

    def set_status(self, device_id: str, status: Optional[str]) -> None:
        self._update_existing(device_id, {"status": status})

    def set_dates(self, device_id: str, start_date, end_date) -> None:
        self._update_existing(
            device_id, {"start_date": to_date_text(start_date), "end_date": to_date_text(end_date)})

    def set_device_fields(self, device_id: str, **fields) -> None:
        """Altera quaisquer colunas de uma licença (ex.: last_seen_at, features)."""
        unknown = set(fields) - set(DEVICE_FIELDS[2:])
        if unknown:
            raise ValueError(f"Campos desconhecidos: {sorted(unknown)}")
        self._update_existing(device_id, fields)

    def _update_existing(self, device_id: str, changes: dict) -> None:
        if not self._db.update_device(device_id, changes):
            raise KeyError(f"Licença não encontrada: {device_id!r}")

    def users(self) -> dict:
        return {user["username"]: user for user in self._db.list_users()}

    def devices(self) -> dict:
        return {device["device_id"]: device for device in self._db.list_devices()}

    def wipe(self) -> None:
        """Simula um servidor que voltou vazio: só os super-admins continuam."""
        self._db.delete_all()

    def invalidate_tokens(self) -> None:
        """Todos os tokens deixam de valer (como depois de um reinício)."""
        self._app.invalidate_tokens()

    def export_data(self) -> "CopiaDados":
        """Cópia de segurança do arquivo de dados: revendedores (com hash de senha), licenças
        (com ids locais) e as sequências de id, exatamente como estão."""
        return CopiaDados(copy.deepcopy(self._db.dump()))

    def import_data(self, copia: "CopiaDados") -> None:
        """Restaura uma cópia de export_data (como "voltei o backup de ontem à noite").
        Os tokens emitidos continuam valendo."""
        if not isinstance(copia, CopiaDados):
            raise TypeError("import_data espera o objeto devolvido por export_data().")
        self._db.restore(copy.deepcopy(copia.tables))

    # --- GET /servers ---

    def set_license_servers(self, servidores: Optional[list]) -> None:
        """O LICENSE_SERVERS do servidor; None = a lista embutida (SERVIDORES_PADRAO)."""
        if servidores is not None and (isinstance(servidores, str) or not all(
                isinstance(url, str) for url in servidores)):
            raise ValueError("servidores deve ser uma lista de URLs (texto) ou None.")
        self._app.license_servers = None if servidores is None else list(servidores)

    def set_servers_endpoint(self, enabled: bool) -> None:
        """False: a rota GET /servers some (404 HTML do Flask), como num servidor antigo."""
        self._disabled_actions = frozenset() if enabled else frozenset({"servers"})

    # --- contagem ---

    @property
    def counts(self) -> collections.Counter:
        return self._stats.counts()

    @property
    def requests_log(self) -> list[tuple]:
        return self._stats.log()

    @property
    def connections_accepted(self) -> int:
        return self._stats.connections_accepted

    def reset_counts(self) -> None:
        self._stats.reset()

    def write_count(self) -> int:
        return sum(n for (method, template), n in self.counts.items()
                   if method in ("POST", "DELETE") and template != "/admin/login")

    # --- falhas ---

    def set_faults(self, **knobs) -> None:
        for name, value in knobs.items():
            self._faults.set(name, value)

    def clear_faults(self) -> None:
        self._faults.clear()

    def sleep_again(self) -> None:
        """O host volta a dormir: a próxima requisição espera sleep_first_seconds."""
        self._faults.sleep_again()

    def override(self, method: str, path_template: str, status: int, body: Any,
                 content_type: str = JSON_TYPE, times: Optional[int] = None) -> None:
        """Responde a rota com um corpo cru `times` vezes (None = sempre)."""
        self._faults.add_override(Override(
            method.upper(), path_template, int(status), _encode_body(body), content_type, times))

    def ecoar_corpo(self, method: str, path_template: str, status: int = 400, times: Optional[int] = None,
                    forma: str = "json") -> None:
        """Um proxy ou servidor mal configurado que devolve, na mensagem de erro, o corpo que recebeu (num
        login: usuário e senha): {"error": "Requisição recusada: <corpo>"}. `forma` "json": o corpo como o
        cliente o mandou (JSON escapado, com \\uXXXX); "url": os campos dele codificados como formulário."""
        def eco(recebido: bytes) -> bytes:
            texto = recebido.decode("utf-8", errors="replace")
            if forma == "url":
                texto = urlencode(json.loads(texto))
            return json_bytes({"error": "Requisição recusada: " + texto})
        self.override(method, path_template, status, eco, times=times)

    def fail_next(self, method: str, path_template: str, status: int, body_dict: Any,
                  times: int = 1) -> None:
        self.override(method, path_template, status, json_bytes(body_dict), times=times)

    def clear_overrides(self) -> None:
        self._faults.clear_overrides()

    def interstitial_200(self, method: str, path_template: str, times: Optional[int] = 1) -> None:
        """Página HTML 200 de host/túnel: responde sem a aplicação ver a requisição."""
        self.override(method, path_template, 200, HtmlPage(INTERSTITIAL_PAGE),
                      content_type=HTML_TYPE, times=times)

    def trickle(self, method: str, path_template: str, seconds_per_byte: float = 0.5,
                times: Optional[int] = 1, headers_too: bool = True) -> None:
        """A aplicação responde normalmente, mas a resposta (linha de status e cabeçalhos, depois
        o corpo) sai um byte a cada `seconds_per_byte` segundos."""
        value = (float(seconds_per_byte), bool(headers_too))
        self._faults.add_rule("trickle", _rule(method, path_template, value, times))

    def limitar_banda(self, bytes_por_segundo: float | None, rota: str = "/admin/devices", metodo: str = "GET",
                      vezes: Optional[int] = None, calar_apos: int | None = None) -> None:
        """Link lento: o corpo da resposta de `metodo rota` sai a `bytes_por_segundo` (os cabeçalhos na
        hora); `calar_apos` bytes: depois disso, silêncio até o cliente desistir. None desfaz."""
        self._faults.clear_rules("banda")
        if bytes_por_segundo is None:
            return
        if bytes_por_segundo <= 0:
            raise ValueError(f"bytes_por_segundo deve ser > 0: {bytes_por_segundo!r}")
        value = (float(bytes_por_segundo), calar_apos)
        self._faults.add_rule("banda", _rule(metodo, rota, value, vezes))

    def respostas_limitadas(self, esperar: float = 5.0) -> list[dict]:
        """Cópia das entradas de limitar_banda (inicio, ultimo_byte, fim, enviados, tamanho, completa). Espera
        até `esperar` s que as respostas em andamento terminem (o `fim` é anotado pela thread do servidor
        quando ela nota que o cliente desistiu, um instante depois de o cliente ter saído)."""
        prazo = time.monotonic() + esperar
        while True:
            with self._sockets_lock:
                copia = [dict(r) for r in self._limited]
            if all(r["fim"] is not None for r in copia) or time.monotonic() >= prazo:
                return copia
            time.sleep(0.02)

    def redirecionar(self, status: int | None, para: str = "", rota: str = "*", metodo: str = "*",
                     manter_caminho: bool = True, vezes: Optional[int] = None) -> None:
        """Responde `status` com Location para `para` (+ o caminho pedido, com manter_caminho), antes da
        aplicação. None desfaz."""
        self._faults.clear_rules("redirect")
        if status is None:
            return
        if not 300 <= int(status) < 400:
            raise ValueError(f"status de redirecionamento deve ser 3xx: {status!r}")
        self._faults.add_rule("redirect", _rule(metodo, rota, (int(status), para, bool(manter_caminho)), vezes))

    def on_request(self, method: str, path_template: str, callback, when: str = "after",
                   times: Optional[int] = 1, skip: int = 0) -> None:
        """Roda callback(srv) na thread do servidor para a requisição que casar: "before" = ao
        chegar, antes da aplicação (conta toda requisição que casa, mesmo as respondidas por
        override); "after" = depois de a aplicação calcular a resposta e ANTES de enviá-la (só
        conta as que chegaram à aplicação). `skip` requisições que casam passam antes;
        `times` None = sempre. Exceções do callback vão para srv.hook_errors."""
        self._faults.add_rule("hook_" + _checked_when(when),
                              _rule(method, path_template, callback, times, skip))

    def clear_hooks(self) -> None:
        self._faults.clear_rules("hook_before", "hook_after")

    def delay(self, method: str, path_template: str, seconds: float,
              times: Optional[int] = 1, when: str = "before") -> None:
        """Atraso só nesta rota: "before" = antes da aplicação; "after" = depois de a aplicação
        gravar, antes de responder."""
        self._faults.add_rule("delay_" + _checked_when(when),
                              _rule(method, path_template, float(seconds), times))

    def clear_route_rules(self) -> None:
        """Desfaz respostas enlatadas, trickles, atrasos, ganchos, limites de banda e redirecionamentos."""
        self._faults.clear_overrides()
        self._faults.clear_rules()

    # --- pausa numa requisição (ex.: um sinal para o cliente no meio de uma sequência) ---

    def pausar(self, method: str, path_template: str, when: str = "after", skip: int = 0) -> "Pausa":
        """Segura a requisição que casar depois de `skip` outras até `pausa.liberar()` (ou até o servidor
        parar). "after" (padrão) = a aplicação já gravou e a resposta ainda não saiu: o cliente fica
        esperando a resposta de uma escrita feita; "before" = nada gravado ainda. `pausa.chegou` é
        ligado quando a requisição está segura. Cuidado com o tempo limite do cliente (SYNC_TIMEOUT)."""
        pausa = Pausa(threading.Event(), threading.Event())

        def segurar(_srv) -> None:
            pausa.chegou.set()
            while not pausa.solta.wait(0.05) and not self._stop_event.is_set():
                pass

        self.on_request(method, path_template, segurar, when=when, times=1, skip=skip)
        return pausa


    # --- listagem cortada (proxy ou página parcial) ---

    def cortar_listagem(self, maximo: Optional[int], vezes: Optional[int] = None) -> None:
        """GET /admin/devices devolve só os `maximo` primeiros itens, `vezes` vezes (None = sempre);
        maximo None desfaz. A resposta continua o JSON da API, 200: nada indica o corte."""
        if maximo is not None and int(maximo) < 0:
            raise ValueError(f"maximo deve ser >= 0 ou None: {maximo!r}")
        if vezes is not None and int(vezes) < 1:
            raise ValueError(f"vezes deve ser >= 1 ou None: {vezes!r}")
        self._cut = None if maximo is None else [int(maximo), None if vezes is None else int(vezes)]

    def _cut_listing(self, method: str, template: str, status: int, payload: Any) -> Any:
        cut = getattr(self, "_cut", None)
        if cut is None or method != "GET" or template != "/admin/devices" or status != 200:
            return payload
        if cut[1] is not None:
            cut[1] -= 1
            if cut[1] <= 0:
                self._cut = None
        return {**payload, "items": payload["items"][:cut[0]]}

    # --- segredo compartilhado (SHARED_SECRET): tokens aceitos entre servidores ---

    _shared_tokens: dict = {}  # segredo → {token: Session}, comum a todas as instâncias do processo

    def compartilhar_segredo(self, segredo: str) -> "ServidorReferencia":
        """Tokens emitidos por servidores com o mesmo `segredo` passam a valer aqui (e os daqui, lá)."""
        app, tokens = self._app, ServidorReferencia._shared_tokens.setdefault(segredo, {})
        issue, session_from = app._issue_token, app._session_from

        def issue_shared(username: str, role: str) -> str:
            token = issue(username, role)
            tokens[token] = Session(username, role)
            return token

        def session_shared(headers) -> Optional[Session]:
            found = session_from(headers)
            header = headers.get("Authorization") or ""
            if found is None and header.startswith("Bearer "):
                found = tokens.get(header[len("Bearer "):].strip())
            return found

        app._issue_token, app._session_from = issue_shared, session_shared
        return self


@dataclass(frozen=True)
class Pausa:
    """Uma requisição segura por ServidorReferencia.pausar()."""
    chegou: threading.Event
    solta: threading.Event

    def liberar(self) -> None:
        self.solta.set()


@dataclass(frozen=True)
class CopiaDados:
    """Cópia opaca dos dados de um servidor (export_data / import_data)."""
    tables: dict


def _checked_when(when: str) -> str:
    if when not in ("before", "after"):
        raise ValueError(f"when deve ser 'before' ou 'after': {when!r}")
    return when


def _rule(method: str, path_template: str, value: Any, times: Optional[int],
          skip: int = 0) -> "RouteRule":
    if times is not None and int(times) < 1:
        raise ValueError(f"times deve ser >= 1 ou None: {times!r}")
    return RouteRule(method.upper(), path_template, value,
                     None if times is None else int(times), max(0, int(skip)))


def _fault_property(name: str) -> property:
    """Expõe um botão de falha como atributo do servidor (srv.latency_ms = 50)."""
    return property(lambda self: getattr(self._faults, name),
                    lambda self, value: self._faults.set(name, value))


for _knob in FAULT_KNOBS:
    setattr(ServidorReferencia, _knob, _fault_property(_knob))


# ---------------------------------------------------------------------------
# Linha de comando
# ---------------------------------------------------------------------------


def _cli_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"data inválida (use AAAA-MM-DD): {text!r}") from exc


def _cli_zone(text: str) -> str:
    try:
        load_zone(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text


def _cli_servers(text: str) -> list:
    """Lista de URLs separadas por vírgula (texto vazio = lista vazia)."""
    return [url.strip() for url in text.split(",") if url.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Servidor de licenças de referência (fiel aos servidores reais; veja docs/API_DOS_SERVIDORES.md).")
    parser.add_argument("--porta", type=int, default=8001, help="porta (0 = qualquer livre)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", default=None, help="arquivo SQLite (padrão: temporário)")
    parser.add_argument("--admin-user", default="admin")
    parser.add_argument("--admin-password", default=DEFAULT_ADMIN_PASSWORD)
    parser.add_argument("--hoje", type=_cli_date, default=None, help="fixa a data de hoje")
    parser.add_argument("--latencia-ms", type=int, default=0, help="latência por resposta")
    parser.add_argument("--fuso", type=_cli_zone, default="UTC",
                        help="fuso do processo do servidor (nome IANA), usado no veredito")
    parser.add_argument("--servidores", type=_cli_servers, default=None,
                        help="LICENSE_SERVERS de GET /servers, separados por vírgula "
                             "(padrão: a lista embutida de outro dono)")
    parser.add_argument("--sem-rota-servers", action="store_true",
                        help="GET /servers não existe (servidor antigo)")
    return parser.parse_args(argv)


def _wait_for_interrupt(stop: threading.Event) -> None:
    """Espera Ctrl+C (SIGINT) ou SIGTERM sem deixar escapar KeyboardInterrupt."""
    while not stop.wait(0.2):
        pass


def main(argv=None) -> int:
    args = parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = ServidorReferencia(
        host=args.host, port=args.porta, db_path=args.db,
        admins={args.admin_user: args.admin_password}, today=args.hoje,
        fuso=args.fuso, servidores=args.servidores, latency_ms=args.latencia_ms)
    server.set_servers_endpoint(not args.sem_rota_servers)
    try:
        server.start()
    except OSError as exc:
        server.stop()
        print(f"Não foi possível abrir {args.host}:{args.porta}: {exc}", file=sys.stderr)
        return 1
    print(f"Servidor de referência ouvindo em {server.url} (Ctrl+C para parar)", flush=True)
    try:
        _wait_for_interrupt(stop)
    finally:
        server.stop()
    print("Servidor encerrado.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
