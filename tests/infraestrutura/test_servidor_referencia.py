"""Testes do servidor de referência: cada regra dos servidores reais (docs/API_DOS_SERVIDORES.md),
por HTTP de verdade."""

import datetime as dt
import email.utils
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from apoio import ctrl_c_no_padrao
from caminhos import PASTA_TESTES
from servidor_referencia import (
    HTML_TYPE, SERVIDORES_PADRAO, HtmlPage, ServidorReferencia, add_months)

TODAY = "2026-11-28"
TIMEOUT = 5
DEVICE_KEYS = {
    "id", "device_id", "owner_name", "cpf", "email", "address", "license_type", "status",
    "start_date", "end_date", "custom_interval", "features", "last_seen_at", "last_seen_ip",
    "last_hostname", "last_version", "created_by",
}
USER_KEYS = {"id", "username", "email", "role", "created_at"}


class Client:
    """Cliente HTTP mínimo (sessão requests com keep-alive) para um servidor."""

    def __init__(self, srv, token=None):
        self.base = srv.url
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path, **kw):
        kw.setdefault("timeout", TIMEOUT)
        return self.session.get(self.base + path, **kw)

    def post(self, path, body=None, **kw):
        kw.setdefault("timeout", TIMEOUT)
        return self.session.post(self.base + path, json=body, **kw)

    def delete(self, path, **kw):
        kw.setdefault("timeout", TIMEOUT)
        return self.session.delete(self.base + path, **kw)


def login(srv, username="admin", password="admin123"):
    credentials = {"username": username, "password": password}
    response = requests.post(f"{srv.url}/admin/login", json=credentials, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def create_device(client, **fields):
    return client.post("/admin/devices/create", fields)


@pytest.fixture
def srv():
    with ServidorReferencia(today=TODAY, seed=1) as server:
        yield server


@pytest.fixture
def admin(srv):
    return Client(srv, login(srv))


@pytest.fixture
def anonymous(srv):
    return Client(srv)


@pytest.fixture
def reseller(srv):
    srv.add_user("sergio", "senha123", email="s@x.com")
    return Client(srv, login(srv, "sergio", "senha123"))


# ---------------------------------------------------------------------------
# Autenticação
# ---------------------------------------------------------------------------


def test_login_default_admin_must_change_password(anonymous):
    response = anonymous.post("/admin/login", {"username": "admin", "password": "admin123"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "must_change_password", "role"}
    assert body["must_change_password"] is True and body["role"] == "admin"
    assert isinstance(body["token"], str) and len(body["token"]) >= 20


def test_login_changed_password_no_change_required():
    with ServidorReferencia(admins={"admin": "outra-senha", "chefe": "segredo1"}) as server:
        for username, password in (("admin", "outra-senha"), ("chefe", "segredo1")):
            body = Client(server).post(
                "/admin/login", {"username": username, "password": password}).json()
            assert body["must_change_password"] is False and body["role"] == "admin"


@pytest.mark.parametrize("body", [
    {}, {"username": "admin"}, {"password": "admin123"}, {"username": "   ", "password": "x"},
    {"username": "admin", "password": ""}, {"username": None, "password": None},
])
def test_login_missing_credentials_400(anonymous, body):
    response = anonymous.post("/admin/login", body)
    assert response.status_code == 400
    assert response.json() == {"error": "Credenciais obrigatórias."}


@pytest.mark.parametrize("username,password", [("admin", "errada"), ("ninguem", "admin123")])
def test_login_bad_credentials_401(anonymous, username, password):
    response = anonymous.post("/admin/login", {"username": username, "password": password})
    assert response.status_code == 401
    assert response.json() == {"error": "Usuário ou senha inválidos."}


def test_resellers_log_in_with_their_role(srv, admin, anonymous):
    srv.add_user("sergio", "senha123")
    admin.post("/admin/users/create",
               {"username": "manager", "password": "123456", "role": "admin"})
    accounts = (("sergio", "senha123", "user"), ("manager", "123456", "admin"))
    for username, password, role in accounts:
        body = anonymous.post("/admin/login", {"username": username, "password": password}).json()
        assert body["role"] == role and body["must_change_password"] is False


PROTECTED_ROUTES = [
    ("GET", "/admin/users"), ("POST", "/admin/users/create"), ("GET", "/admin/devices"),
    ("POST", "/admin/devices/create"), ("POST", "/admin/devices/abc/deactivate"),
    ("DELETE", "/admin/devices/abc/delete"), ("POST", "/admin/devices/update-created-by"),
]


@pytest.mark.parametrize("method,path", PROTECTED_ROUTES)
@pytest.mark.parametrize("auth_header", [None, "Bearer token-falso", "Token x", "Bearer "])
def test_missing_or_bad_token_401(srv, method, path, auth_header):
    headers = {"Authorization": auth_header} if auth_header else {}
    response = requests.request(method, srv.url + path, headers=headers, json={},
                                timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


def test_invalid_json_400(admin, anonymous):
    for client, path in ((anonymous, "/admin/login"), (admin, "/admin/devices/create"),
                             (admin, "/admin/users/create")):
        response = client.session.post(client.base + path, data="{isto não é json",
                                       headers={"Content-Type": "application/json"},
                                       timeout=TIMEOUT)
        assert response.status_code == 400
        assert response.json() == {"error": "JSON inválido."}


def test_unknown_path_404_html_como_o_flask(admin, anonymous):
    for client, path in ((anonymous, "/nada"), (admin, "/admin/qualquer"),
                         (admin, "/admin/devices/")):
        response = client.get(path)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("text/html")
        assert "404 Not Found" in response.text


def test_wrong_method_on_known_route_405(admin):
    response = admin.get("/admin/devices/create")
    assert response.status_code == 405 and response.headers["Content-Type"].startswith("text/html")


def test_barra_no_device_id_nao_casa_com_rota_como_no_werkzeug(srv, admin):
    """O Werkzeug decodifica %2F antes de rotear: /admin/devices/A%2F1/deactivate vira 404 HTML."""
    srv.add_device("A/1")
    response = change_status(admin, "A/1", "block")
    assert response.status_code == 404 and response.headers["Content-Type"].startswith("text/html")
    assert srv.devices()["A/1"]["status"] == "active"


def test_health_and_ping_without_auth(srv, anonymous):
    assert anonymous.get("/health").json() == {"status": "ok"}
    body = anonymous.get("/ping").json()
    assert body["pong"] is True
    moment = dt.datetime.fromisoformat(body["time"])
    assert moment == srv.now()  # a hora UTC do relógio do servidor (fixado pelo teste)


def test_date_e_ping_seguem_o_relogio_do_servidor_nao_o_do_processo(srv, anonymous):
    """Um servidor real manda no cabeçalho Date (e no /ping) o relógio dele: o de referência também, mesmo
    fixado dias longe do relógio do processo do teste."""
    longe = dt.datetime(2031, 5, 17, 3, 4, 5, tzinfo=dt.timezone.utc)
    srv.set_now(longe)
    for path in ("/health", "/ping", "/admin/devices"):
        response = anonymous.get(path)
        assert email.utils.parsedate_to_datetime(response.headers["Date"]) == longe, path
    assert dt.datetime.fromisoformat(anonymous.get("/ping").json()["time"]) == longe
    srv.set_now(None)  # relógio real: o Date volta a ser o de agora
    real = email.utils.parsedate_to_datetime(anonymous.get("/health").headers["Date"])
    assert abs((dt.datetime.now(dt.timezone.utc) - real).total_seconds()) < 60


# ---------------------------------------------------------------------------
# Usuários (revendedores)
# ---------------------------------------------------------------------------


def test_super_admin_not_listed(admin):
    response = admin.get("/admin/users")
    assert response.status_code == 200 and response.json() == {"items": []}


def test_create_user_and_list(srv, admin):
    response = admin.post("/admin/users/create",
                          {"username": " ana ", "password": "123456", "email": "a@x.com"})
    assert response.status_code == 201
    body = response.json()
    assert body == {"ok": True, "user_id": body["user_id"], "username": "ana", "role": "user"}
    admin.post("/admin/users/create", {"username": "bia", "password": "abcdef", "email": "",
                                       "role": "admin"})
    items = admin.get("/admin/users").json()["items"]
    assert [item["username"] for item in items] == ["bia", "ana"]  # mais novo primeiro
    for item in items:
        assert set(item) == USER_KEYS
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", item["created_at"])
        assert item["created_at"].startswith(TODAY)
    assert items[0]["email"] is None and items[0]["role"] == "admin"
    assert items[1]["email"] == "a@x.com" and items[1]["id"] == body["user_id"]
    assert "password" not in json.dumps(items) and "pbkdf2" not in json.dumps(items)
    assert srv.users()["ana"] == items[1]


@pytest.mark.parametrize("body,message", [
    ({"password": "123456"}, "Usuário e senha são obrigatórios."),
    ({"username": "novo"}, "Usuário e senha são obrigatórios."),
    ({"username": "  ", "password": "123456"}, "Usuário e senha são obrigatórios."),
    ({"username": "novo", "password": ""}, "Usuário e senha são obrigatórios."),
    ({"username": "novo", "password": "12345"}, "Senha deve ter no mínimo 6 caracteres."),
    ({"username": "novo", "password": "123456", "role": "dono"},
     "Role deve ser 'admin' ou 'user'."),
    ({"username": "sergio", "password": "123456"}, "Usuário já existe."),
    ({"username": "admin", "password": "123456"}, "Usuário já existe."),
])
def test_create_user_errors(srv, admin, body, message):
    srv.add_user("sergio", "senha123")
    response = admin.post("/admin/users/create", body)
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_user_created_by_api_logs_in(admin, anonymous):
    admin.post("/admin/users/create", {"username": "carla", "password": "minhasenha"})
    body = anonymous.post("/admin/login", {"username": "carla", "password": "minhasenha"}).json()
    assert body["role"] == "user"
    assert anonymous.post("/admin/login", {"username": "carla", "password": "outra1"}).status_code \
        == 401


def test_user_token_lists_users(reseller):
    items = reseller.get("/admin/users").json()["items"]
    assert [item["username"] for item in items] == ["sergio"]


# ---------------------------------------------------------------------------
# Licenças: upsert
# ---------------------------------------------------------------------------


def test_insert_defaults(srv, admin):
    response = create_device(
        admin, device_id="02592614b69110a201bf84c68d1c9247", license_type="mensal",
        owner_name="José da Silva", cpf="12345678900", email="j@x.com", address="Rua A, 10",
        created_by="sergio")
    assert response.status_code == 201
    assert response.json() == {"success": True, "device_id": "02592614b69110a201bf84c68d1c9247",
                               "license_type": "mensal"}
    items = admin.get("/admin/devices").json()["items"]
    assert items == [{
        "id": 1, "device_id": "02592614b69110a201bf84c68d1c9247", "owner_name": "José da Silva",
        "cpf": "12345678900", "email": "j@x.com", "address": "Rua A, 10",
        "license_type": "mensal", "status": "active", "start_date": TODAY,
        "end_date": "2026-12-28", "custom_interval": 60, "features": "core",
        "last_seen_at": None, "last_seen_ip": None, "last_hostname": None,
        "last_version": None, "created_by": "sergio"}]
    assert set(items[0]) == DEVICE_KEYS


@pytest.mark.parametrize("today,kind,end", [
    ("2026-01-31", "mensal", "2026-02-28"),
    ("2026-01-31", "trimestral", "2026-04-30"),
    ("2026-01-31", "semestral", "2026-07-31"),
    ("2026-01-31", "anual", "2027-01-31"),
    ("2026-01-31", "trianual", "2029-01-31"),
    ("2026-01-31", "vitalicia", None),
    ("2027-11-30", "trimestral", "2028-02-29"),
    ("2028-02-29", "anual", "2029-02-28"),
    ("2026-12-15", "mensal", "2027-01-15"),
])
def test_dates_per_type_with_day_clamped(srv, admin, today, kind, end):
    srv.set_today(today)
    assert create_device(admin, device_id="d1", license_type=kind).status_code == 201
    device = srv.devices()["d1"]
    assert (device["start_date"], device["end_date"]) == (today, end)


def test_add_months_clamps_day():
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2026, 11, 30), 3) == dt.date(2027, 2, 28)


def test_default_today_is_utc_date(srv, admin):
    srv.set_today(None)
    create_device(admin, device_id="d1", license_type="vitalicia")
    assert srv.devices()["d1"]["start_date"] == dt.datetime.now(dt.timezone.utc).date().isoformat()
    srv.set_today(dt.date(2030, 5, 31))
    create_device(admin, device_id="d2", license_type="mensal")
    assert srv.devices()["d2"]["end_date"] == "2030-06-30"


@pytest.mark.parametrize("extra", [{}, {"license_type": None}, {"license_type": "  "}])
def test_default_type_is_anual(srv, admin, extra):
    response = create_device(admin, device_id="d1", **extra)
    assert response.status_code == 201 and response.json()["license_type"] == "anual"
    assert srv.devices()["d1"]["end_date"] == "2027-11-28"


@pytest.mark.parametrize("fields,message", [
    ({"license_type": "mensal"}, "Device ID é obrigatório."),
    ({"device_id": "   ", "license_type": "mensal"}, "Device ID é obrigatório."),
    ({"device_id": None}, "Device ID é obrigatório."),
    ({"device_id": "d1", "license_type": "semanal"}, "Tipo de licença inválido."),
    ({"device_id": "d1", "license_type": "Mensal"}, "Tipo de licença inválido."),
])
def test_upsert_errors(srv, admin, fields, message):
    response = create_device(admin, **fields)
    assert response.status_code == 400 and response.json() == {"error": message}
    assert srv.devices() == {}


def test_text_stripped_and_empty_becomes_null(srv, admin):
    response = create_device(
        admin, device_id="  d1 ", license_type=" mensal ", owner_name="  Conceição ", cpf="",
        email="   ", address=" Rua Ç ", created_by="  ")
    assert response.json()["device_id"] == "d1"
    device = srv.devices()["d1"]
    assert device["owner_name"] == "Conceição" and device["address"] == "Rua Ç"
    assert device["cpf"] is None and device["email"] is None
    assert device["license_type"] == "mensal" and device["created_by"] == "admin"


def test_update_overwrites_unblocks_and_resets_dates(srv, admin):
    srv.add_device("d1", license_type="mensal", owner_name="Ana", cpf="1", email="a@x",
                   address="Rua", created_by="sergio", status="blocked",
                   start_date="2025-01-01", end_date="2025-02-01", custom_interval=30,
                   features="core,extra", last_seen_at="2025-01-02 10:00:00")
    srv.add_device("d2")
    response = create_device(admin, device_id="d1", owner_name="Ana Maria",
                             license_type="trimestral")
    assert response.status_code == 201
    device = srv.devices()["d1"]
    assert device["id"] == 1
    assert device["owner_name"] == "Ana Maria"
    assert (device["cpf"], device["email"], device["address"]) == (None, None, None)
    assert device["status"] == "active" and device["created_by"] == "admin"
    assert (device["start_date"], device["end_date"]) == (TODAY, "2027-02-28")
    assert device["custom_interval"] == 30 and device["features"] == "core,extra"
    assert device["last_seen_at"] == "2025-01-02 10:00:00"
    order = [item["device_id"] for item in admin.get("/admin/devices").json()["items"]]
    assert order == ["d2", "d1"]


def test_update_without_type_becomes_anual_and_active(srv, admin):
    srv.add_device("d1", license_type="vitalicia", status="pending")
    create_device(admin, device_id="d1", created_by="sergio")
    device = srv.devices()["d1"]
    assert (device["license_type"], device["status"], device["created_by"]) == \
        ("anual", "active", "sergio")


def test_user_token_sees_only_own_licenses(srv, admin, reseller):
    srv.add_device("da", created_by="admin")
    srv.add_device("ds", created_by="sergio")
    assert create_device(reseller, device_id="ds2", created_by="sergio").status_code == 201
    assert create_device(reseller, device_id="dx").status_code == 201  # created_by vira admin
    mine = [item["device_id"] for item in reseller.get("/admin/devices").json()["items"]]
    everything = [item["device_id"] for item in admin.get("/admin/devices").json()["items"]]
    assert mine == ["ds2", "ds"]
    assert everything == ["dx", "ds2", "ds", "da"]


def test_reseller_with_admin_role_sees_all(srv, admin):
    srv.add_user("manager", "123456", role="admin")
    srv.add_device("d1", created_by="outro")
    manager = Client(srv, login(srv, "manager", "123456"))
    assert len(manager.get("/admin/devices").json()["items"]) == 1
    assert manager.delete("/admin/devices/d1/delete").status_code == 200


# ---------------------------------------------------------------------------
# Licenças: bloquear, excluir, dono
# ---------------------------------------------------------------------------


def change_status(client, device_id, action):
    return client.post(f"/admin/devices/{quote(device_id, safe='')}/deactivate", {"action": action})


@pytest.mark.parametrize("initial,action,final", [
    ("active", "block", "blocked"), ("blocked", "block", "blocked"),
    ("blocked", "activate", "active"), ("pending", "activate", "active"),
    ("blocked", "toggle", "active"), ("active", "toggle", "blocked"),
    ("pending", "toggle", "blocked"),
])
def test_deactivate_actions(srv, admin, initial, action, final):
    srv.add_device("d1", status=initial)
    response = change_status(admin, "d1", action)
    assert response.status_code == 200
    assert response.json() == {"success": True, "device_id": "d1", "status": final}
    assert srv.devices()["d1"]["status"] == final


def test_deactivate_errors_and_decoded_id(srv, admin, reseller):
    srv.add_device("PC José 01 ç")
    assert change_status(admin, "PC José 01 ç", "block").json()["device_id"] == "PC José 01 ç"
    assert change_status(reseller, "PC José 01 ç", "activate").status_code == 200
    response = change_status(admin, "nao-existe", "block")
    assert response.status_code == 404 and response.json() == {"error": "Licença não encontrada."}
    for action in ("desligar", None, ""):
        response = change_status(admin, "PC José 01 ç", action)
        assert response.status_code == 400 and response.json() == {"error": "Ação inválida."}


def test_delete(srv, admin, reseller):
    srv.add_device("d1", created_by="sergio")
    response = reseller.delete("/admin/devices/d1/delete")
    assert response.status_code == 403 and response.json() == {"error": "Forbidden"}
    assert "d1" in srv.devices()
    response = admin.delete("/admin/devices/d1/delete")
    assert response.status_code == 200
    assert response.json() == {"success": True, "device_id": "d1",
                               "message": "Licença excluída permanentemente."}
    assert srv.devices() == {}
    response = admin.delete("/admin/devices/d1/delete")
    assert response.status_code == 404 and response.json() == {"error": "Licença não encontrada."}


def test_update_created_by(srv, admin):
    srv.add_device("d1", created_by="admin")
    response = admin.post("/admin/devices/update-created-by", {"device_id": "d1",
                                                               "created_by": "sergio"})
    assert response.status_code == 200 and srv.devices()["d1"]["created_by"] == "sergio"
    response = admin.post("/admin/devices/update-created-by", {"device_id": "zz",
                                                               "created_by": "sergio"})
    assert response.status_code == 404 and response.json() == {"error": "Licença não encontrada."}
    response = admin.post("/admin/devices/update-created-by", {"created_by": "sergio"})
    assert response.status_code == 400


def test_direct_access_stores_exactly(srv):
    srv.add_device("d1", license_type="mensal", start_date="2026-01-31", owner_name="Zé")
    srv.add_device("d2", license_type="mensal", start_date=dt.date(2026, 1, 1),
                   end_date="2020-01-01", status="pending", last_version="1.2")
    assert srv.devices()["d1"]["end_date"] == "2026-02-28"
    assert srv.devices()["d2"]["end_date"] == "2020-01-01"
    srv.set_status("d1", "pending")
    srv.set_dates("d1", None, None)
    assert (srv.devices()["d1"]["status"], srv.devices()["d1"]["end_date"]) == ("pending", None)
    with pytest.raises(KeyError):
        srv.set_status("nao-existe", "active")
    with pytest.raises(ValueError):
        srv.add_device("d1")
    with pytest.raises(ValueError):
        srv.add_user("admin", "123456")


# ---------------------------------------------------------------------------
# Estado do servidor: wipe, tokens, parada, arquivo
# ---------------------------------------------------------------------------


def test_wipe_removes_resellers_and_licenses(srv, admin):
    srv.add_user("sergio", "senha123")
    srv.add_device("d1")
    srv.wipe()
    assert admin.get("/admin/devices").json() == {"items": []}
    assert admin.get("/admin/users").json() == {"items": []}
    assert login(srv)  # o super-admin continua
    create_device(admin, device_id="d2")
    assert srv.devices()["d2"]["id"] == 1  # ids recomeçam como num banco novo


def test_invalidate_tokens_gives_401_then_login_works(srv, admin):
    assert admin.get("/admin/devices").status_code == 200
    srv.invalidate_tokens()
    response = admin.get("/admin/devices")
    assert response.status_code == 401 and response.json() == {"error": "Unauthorized"}
    assert Client(srv, login(srv)).get("/admin/devices").status_code == 200


def test_stop_idempotent_closes_connections_removes_db():
    server = ServidorReferencia().start()
    db_file = Path(server._temp_db)
    client = Client(server)
    assert client.get("/health").status_code == 200 and db_file.exists()
    server.stop()
    server.stop()
    assert not db_file.exists()
    with pytest.raises(requests.ConnectionError):
        client.get("/health", timeout=1)


def test_file_database_persists(tmp_path):
    """Um banco num arquivo dado por quem usa é durável (fsync a cada escrita); só o temporário dos testes e
    da demonstração, apagado ao parar, grava sem fsync."""
    db_path = str(tmp_path / "licencas.sqlite")
    with ServidorReferencia(db_path=db_path) as server:
        assert server._db._query("PRAGMA synchronous")[0]["synchronous"] == 2  # FULL
        create_device(Client(server, login(server)), device_id="d1")
    with ServidorReferencia() as server:
        assert server._db._query("PRAGMA synchronous")[0]["synchronous"] == 0  # OFF
    with ServidorReferencia(db_path=db_path) as server:
        assert list(server.devices()) == ["d1"]
    with ServidorReferencia(db_path=":memory:") as server:
        server.add_device("m1")
        assert Client(server, login(server)).get("/admin/devices").json()["items"][0][
            "device_id"] == "m1"


def test_concurrent_requests(srv, admin):
    token = admin.session.headers["Authorization"]

    def send(index):
        requests.post(f"{srv.url}/admin/devices/create", json={"device_id": f"c{index}"},
                      headers={"Authorization": token}, timeout=TIMEOUT)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(srv.devices()) == 20


# ---------------------------------------------------------------------------
# Transporte e contagem
# ---------------------------------------------------------------------------


def test_keep_alive_reuses_connection(srv, anonymous):
    responses = [anonymous.get("/health"), anonymous.get("/nada"), anonymous.get("/admin/users"),
                 anonymous.post("/admin/login", {"username": "admin", "password": "x"})]
    assert [r.status_code for r in responses] == [200, 404, 401, 401]
    assert srv.connections_accepted == 1
    for response in responses:
        expected = "text/html" if response.status_code == 404 else "application/json"
        assert response.headers["Content-Type"].startswith(expected)
        assert int(response.headers["Content-Length"]) == len(response.content)


def test_counts_and_log(srv, admin, anonymous):
    srv.reset_counts()
    create_device(admin, device_id="d1")
    change_status(admin, "d1", "block")
    change_status(admin, "d1", "toggle")
    admin.get("/admin/devices")
    anonymous.post("/admin/login", {"username": "admin", "password": "admin123"})
    admin.delete("/admin/devices/zz/delete")
    assert srv.counts[("POST", "/admin/devices/<id>/deactivate")] == 2
    assert srv.counts[("GET", "/admin/devices")] == 1
    assert srv.write_count() == 4
    assert srv.requests_log == [
        ("POST", "/admin/devices/create", 201), ("POST", "/admin/devices/<id>/deactivate", 200),
        ("POST", "/admin/devices/<id>/deactivate", 200), ("GET", "/admin/devices", 200),
        ("POST", "/admin/login", 200), ("DELETE", "/admin/devices/<id>/delete", 404)]
    srv.reset_counts()
    assert srv.counts == {} and srv.requests_log == [] and srv.write_count() == 0


# ---------------------------------------------------------------------------
# Falhas simuladas
# ---------------------------------------------------------------------------


def test_fault_503_json(srv, anonymous):
    srv.set_faults(fail_rate=1, fail_modes=["503"])
    response = anonymous.get("/health")
    assert response.status_code == 503
    assert response.json() == {"error": "Service Unavailable"}
    assert srv.requests_log[-1] == ("GET", "/health", 503)


def test_fault_html_502(srv, anonymous):
    srv.set_faults(fail_rate=1, fail_modes=["html502"])
    response = anonymous.post("/admin/login", {"username": "admin", "password": "admin123"})
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text
    with pytest.raises(ValueError):
        response.json()


def test_fault_reset(srv, anonymous):
    srv.set_faults(fail_rate=1, fail_modes=["reset"])
    with pytest.raises(requests.ConnectionError):
        anonymous.get("/health")
    assert srv.requests_log[-1] == ("GET", "/health", None)


def test_fault_hang(srv, anonymous):
    srv.set_faults(fail_rate=1, fail_modes=["hang"], hang_seconds=0.6)
    with pytest.raises(requests.ReadTimeout):
        anonymous.get("/health", timeout=0.2)


def test_fault_truncated(srv, admin):
    srv.add_device("d1")
    srv.set_faults(fail_rate=1, fail_modes=["truncated"])
    response = admin.get("/admin/devices")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_fault_lost_writes_but_client_gets_error(srv, admin):
    srv.set_faults(fail_rate=1, fail_modes=["lost"], fail_paths={"/admin/devices/create"})
    assert admin.get("/admin/devices").status_code == 200  # fora de fail_paths
    with pytest.raises(requests.ConnectionError):
        create_device(admin, device_id="d1")
    assert "d1" in srv.devices()
    assert srv.write_count() == 1


def test_fault_paths_restrict_faults(srv, anonymous):
    srv.set_faults(fail_rate=1, fail_modes=["503"], fail_paths={"/admin/devices"})
    assert anonymous.get("/health").status_code == 200
    srv.fail_paths = None
    assert anonymous.get("/health").status_code == 503
    srv.clear_faults()
    assert anonymous.get("/health").status_code == 200


def test_faults_reproducible_with_seed(srv, anonymous):
    def sequence():
        srv.set_faults(seed=42, fail_rate=0.5, fail_modes=["503"])
        return [anonymous.get("/health").status_code for _ in range(12)]

    first = sequence()
    assert first == sequence()
    assert set(first) == {200, 503}


def test_invalid_fault_knob(srv):
    with pytest.raises(ValueError):
        srv.set_faults(fail_modes=["explodir"])
    with pytest.raises(ValueError):
        srv.set_faults(nao_existe=1)


def test_latency(srv, anonymous):
    srv.latency_ms = 150
    started = time.monotonic()
    anonymous.get("/health")
    assert time.monotonic() - started >= 0.15


def test_sleeping_host(srv, anonymous):
    srv.sleep_first_seconds = 0.5
    srv.sleep_again()
    timings = {}

    def fetch(name):
        started = time.monotonic()
        requests.get(f"{srv.url}/health", timeout=TIMEOUT)
        timings[name] = time.monotonic() - started

    first = threading.Thread(target=fetch, args=("first",))
    first.start()
    time.sleep(0.1)
    fetch("during")
    first.join()
    fetch("after")
    assert max(timings["first"], timings["during"]) >= 0.5
    assert min(timings["first"], timings["during"]) >= 0.3  # quem chega durante espera junto
    assert timings["after"] < 0.3


def test_override_and_fail_next(srv, admin):
    srv.override("GET", "/admin/devices", 200, "<html>login</html>", content_type="text/html",
                 times=1)
    srv.fail_next("POST", "/admin/devices/create", 500, {"error": "boom"})
    response = admin.get("/admin/devices")
    assert response.status_code == 200 and response.text == "<html>login</html>"
    assert admin.get("/admin/devices").json() == {"items": []}
    response = create_device(admin, device_id="d1")
    assert response.status_code == 500 and response.json() == {"error": "boom"}
    assert srv.devices() == {}
    assert create_device(admin, device_id="d1").status_code == 201


def test_override_forever_concrete_path_and_clear(srv, admin):
    srv.add_device("a")
    srv.add_device("b")
    srv.override("POST", "/admin/devices/a/deactivate", 200, b'{"success": "sim"}')
    srv.override("GET", "/admin/devices", 200, {"items": [{"device_id": "x"}] * 2})
    for _ in range(2):
        assert change_status(admin, "a", "block").json() == {"success": "sim"}
        assert len(admin.get("/admin/devices").json()["items"]) == 2
    assert change_status(admin, "b", "block").json()["status"] == "blocked"
    srv.clear_overrides()
    assert change_status(admin, "a", "block").json()["status"] == "blocked"


def test_ecoar_corpo_devolve_o_corpo_recebido_na_mensagem_de_erro(srv):
    corpo = {"username": "admin", "password": 'Pa"9 wörd'}
    srv.ecoar_corpo("POST", "/admin/login", 400, times=1)
    srv.ecoar_corpo("POST", "/admin/login", 401, times=1, forma="url")
    eco = requests.post(f"{srv.url}/admin/login", json=corpo, timeout=TIMEOUT)
    assert eco.status_code == 400 and eco.json()["error"] == "Requisição recusada: " + json.dumps(corpo)
    eco = requests.post(f"{srv.url}/admin/login", json=corpo, timeout=TIMEOUT)
    assert eco.status_code == 401
    assert eco.json()["error"] == "Requisição recusada: username=admin&password=Pa%229+w%C3%B6rd"
    assert requests.post(f"{srv.url}/admin/login", json=corpo, timeout=TIMEOUT).status_code == 401  # a API de novo


# ---------------------------------------------------------------------------
# Linha de comando
# ---------------------------------------------------------------------------


@pytest.mark.skipif(os.name != "posix", reason="Ctrl+C (SIGINT) num processo filho só se envia em POSIX")
def test_cli_answers_and_exits_cleanly_on_sigint():
    script = PASTA_TESTES / "servidor_referencia.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--porta", "0", "--hoje", "2026-12-01",
         "--latencia-ms", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **ctrl_c_no_padrao())
    try:
        line = process.stdout.readline()
        url = re.search(r"http://\S+", line).group(0)
        assert requests.get(f"{url}/health", timeout=TIMEOUT).json() == {"status": "ok"}
        process.send_signal(signal.SIGINT)
        out, errors = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "Traceback" not in errors


# ---------------------------------------------------------------------------
# Relógio e fuso do servidor
# ---------------------------------------------------------------------------

UTC = dt.timezone.utc
SAO_PAULO = "America/Sao_Paulo"


def test_set_now_writes_utc_date_and_local_today_in_zone():
    with ServidorReferencia(fuso=SAO_PAULO) as server:
        server.set_now(dt.datetime(2026, 12, 1, 1, 30, tzinfo=UTC))  # 22:30 do dia 30 em Brasília
        assert server.fuso == SAO_PAULO
        assert server.today() == dt.date(2026, 12, 1)
        assert server.local_today() == dt.date(2026, 11, 30)
        client = Client(server, login(server))
        assert create_device(client, device_id="d1", license_type="mensal").status_code == 201
        device = server.devices()["d1"]
        assert (device["start_date"], device["end_date"]) == ("2026-12-01", "2027-01-01")
        server.add_user("ana", "123456")
        assert server.users()["ana"]["created_at"] == "2026-12-01 01:30:00"


def test_set_today_is_noon_utc_and_validation(srv):
    srv.set_today("2026-11-28")
    assert srv.now() == dt.datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert srv.local_today() == dt.date(2026, 11, 28) and srv.fuso == "UTC"
    with pytest.raises(ValueError):
        srv.set_now(dt.datetime(2026, 11, 28, 12, 0))  # sem fuso
    with pytest.raises(ValueError, match="Fuso horário desconhecido"):
        ServidorReferencia(fuso="Marte/Base")
    srv.set_now(None)
    assert abs((srv.now() - dt.datetime.now(UTC)).total_seconds()) < 60


# ---------------------------------------------------------------------------
# Veredito (o que /verify responderia)
# ---------------------------------------------------------------------------

VERDICT_TABLE = [
    # status, tipo, início, fim, calcular_fim, esperado, motivo
    ("active", "anual", "2025-11-28", "2026-11-28", True, True, "liberada"),  # no dia do fim
    ("active", "anual", "2025-11-27", "2026-11-27", True, False, "expirada"),
    ("blocked", "vitalicia", "2020-01-01", None, True, False, "bloqueada"),
    ("blocked", "anual", "2026-11-01", "2027-11-01", True, False, "bloqueada"),
    ("pending", "anual", "2026-11-01", "2027-11-01", True, False, "pendente"),
    ("pending", "mensal", "2020-01-01", "2020-02-01", True, False, "expirada"),
    ("suspenso", "anual", "2026-11-01", "2027-11-01", True, True, "liberada"),
    (None, "anual", "2026-11-01", "2027-11-01", True, True, "liberada"),
    ("active", "vitalicia", "2020-01-01", "2020-02-01", True, True, "liberada"),
    ("active", "mensal", "2026-10-28", None, False, True, "liberada"),  # calculado: 2026-11-28
    ("active", "mensal", "2026-10-27", None, False, False, "expirada"),  # calculado: 2026-11-27
    ("active", "anual", "2020-01-01", None, False, False, "expirada"),
    ("active", "semanal", "2020-01-01", None, False, True, "liberada"),  # tipo desconhecido
    ("active", "semanal", "2020-01-01", "2026-11-27", True, False, "expirada"),
    ("active", None, "2020-01-01", None, False, True, "liberada"),
]


@pytest.mark.parametrize("status,kind,start,end,compute,expected,reason", VERDICT_TABLE)
def test_verdict_table(srv, status, kind, start, end, compute, expected, reason):
    srv.add_device("d1", license_type=kind, status=status, start_date=start, end_date=end,
                   calcular_fim=compute)
    assert srv.veredito("d1") is expected
    assert srv.veredito_motivo("d1") == reason
    assert srv.vereditos() == {"d1": expected}


def test_verdict_without_any_date_is_allowed_and_unknown_id_denied(srv):
    srv.add_device("d1", license_type="mensal")
    srv.set_dates("d1", None, None)
    assert srv.veredito("d1") is True
    assert srv.veredito("nao-existe") is False and srv.veredito_motivo("x") == "inexistente"


@pytest.mark.parametrize("moment,expected", [
    (dt.datetime(2024, 2, 29, 23, 0, tzinfo=UTC), True),
    (dt.datetime(2024, 3, 1, 0, 0, tzinfo=UTC), False),
])
def test_worked_out_end_date_clamps_day(srv, moment, expected):
    """2024-01-31 mensal com end_date NULL: o servidor calcula 2024-02-29 (ano bissexto)."""
    srv.add_device("d1", license_type="mensal", start_date="2024-01-31", calcular_fim=False)
    assert srv.devices()["d1"]["end_date"] is None
    srv.set_now(moment)
    assert srv.veredito("d1") is expected


@pytest.mark.parametrize("moment,utc_verdict,brasilia_verdict", [
    (dt.datetime(2026, 11, 30, 23, 59, tzinfo=UTC), True, True),
    (dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC), False, True),    # 21:00 do dia 30 em Brasília
    (dt.datetime(2026, 12, 1, 2, 59, 59, tzinfo=UTC), False, True),
    (dt.datetime(2026, 12, 1, 3, 0, tzinfo=UTC), False, False),   # meia-noite em Brasília
])
def test_verdict_uses_server_local_date(moment, utc_verdict, brasilia_verdict):
    verdicts = []
    for fuso in ("UTC", SAO_PAULO):
        with ServidorReferencia(fuso=fuso, now=moment) as server:
            server.add_device("d1", license_type="mensal", start_date="2026-10-30",
                              end_date="2026-11-30")
            verdicts.append(server.veredito("d1"))
    assert verdicts == [utc_verdict, brasilia_verdict]


def test_stray_space_id_is_stored_but_unreachable(srv, admin):
    srv.add_device(" abc ", license_type="vitalicia", owner_name="Importado")
    assert admin.get("/admin/devices").json()["items"][0]["device_id"] == " abc "
    assert srv.veredito(" abc ") is False and srv.veredito("abc") is False
    assert srv.vereditos() == {" abc ": False}
    srv.add_device("abc", license_type="vitalicia")
    assert srv.veredito(" abc ") is True  # /verify tira os espaços e acha a "gêmea"
    assert srv.vereditos() == {" abc ": False, "abc": True}


def test_verdicts_cover_every_stored_license(srv):
    srv.add_device("ok", license_type="anual")
    srv.add_device("venc", license_type="mensal", start_date="2020-01-01")
    srv.add_device("pix", status="pending")
    srv.add_device("blq", status="blocked")
    assert srv.vereditos() == {"ok": True, "venc": False, "pix": False, "blq": False}


# ---------------------------------------------------------------------------
# Outros escritores de licenças
# ---------------------------------------------------------------------------


def pix(client, **fields):
    return client.post("/payments/pix/create", fields)


def test_pix_creates_pending_with_raw_interval_and_features(srv, admin):
    srv.add_device("normal")
    response = pix(admin, device_id="p1", owner_name=" Ana ", cpf="123", license_type="mensal",
                   custom_interval="30min", features="core,nfe")
    assert response.status_code == 201
    assert response.json()["success"] is True and response.json()["device_id"] == "p1"
    items = {item["device_id"]: item for item in admin.get("/admin/devices").json()["items"]}
    record = items["p1"]
    assert record["custom_interval"] == "30min" and record["features"] == "core,nfe"
    assert (record["status"], record["owner_name"], record["license_type"]) == \
        ("pending", "Ana", "mensal")
    assert (record["start_date"], record["end_date"]) == (TODAY, "2026-12-28")
    assert record["created_by"] == "admin"
    assert items["normal"]["custom_interval"] == 60
    assert type(items["normal"]["custom_interval"]) is int
    assert srv.veredito("p1") is False


def test_pix_generates_hex_id_and_resets_existing(srv, admin):
    response = pix(admin, owner_name="Zé", cpf="1")
    assert response.status_code == 201
    assert re.fullmatch(r"[0-9a-f]{32}", response.json()["device_id"])
    srv.add_device("d1", owner_name="Antigo", status="blocked", custom_interval=5,
                   start_date="2020-01-01", last_seen_at="2025-01-01 10:00:00")
    assert pix(admin, device_id="d1", owner_name="Novo", cpf="2").status_code == 201
    device = srv.devices()["d1"]
    assert (device["id"], device["owner_name"], device["status"]) == (2, "Novo", "pending")
    assert (device["custom_interval"], device["features"]) == (60, "core")
    assert device["start_date"] == TODAY and device["last_seen_at"] == "2025-01-01 10:00:00"


@pytest.mark.parametrize("value", ["30min", "60", 60, 2.5, None, True, [1, "a"], {"x": 1}])
def test_pix_keeps_any_json_type(srv, admin, value):
    assert pix(admin, device_id="p1", owner_name="Ana", cpf="1", custom_interval=value,
               features=value).status_code == 201
    item = admin.get("/admin/devices").json()["items"][0]
    assert item["custom_interval"] == value and type(item["custom_interval"]) is type(value)
    assert item["features"] == value and type(item["features"]) is type(value)


@pytest.mark.parametrize("fields,status,message", [
    ({"cpf": "1"}, 400, "Nome e CPF são obrigatórios."),
    ({"owner_name": "Ana", "cpf": "  "}, 400, "Nome e CPF são obrigatórios."),
    ({"owner_name": "Ana", "cpf": "1", "license_type": "semanal"}, 400,
     "Tipo de licença inválido."),
])
def test_pix_errors_write_nothing(srv, admin, fields, status, message):
    response = pix(admin, **fields)
    assert (response.status_code, response.json()) == (status, {"error": message})
    assert srv.devices() == {}


def test_pix_needs_token(srv, anonymous):
    response = pix(anonymous, owner_name="Ana", cpf="1")
    assert response.status_code == 401 and srv.devices() == {}


def test_reseller_creates_free_lifetime_license(srv, reseller):
    response = reseller.post("/user/devices/create", {"device_id": " R1 ", "owner_name": " Zé ",
                                                      "license_type": "mensal",
                                                      "created_by": "outro"})
    assert response.status_code == 201
    assert response.json() == {"success": True, "device_id": "R1", "license_type": "vitalicia"}
    device = srv.devices()["R1"]
    assert (device["license_type"], device["end_date"], device["status"]) == \
        ("vitalicia", None, "active")
    assert (device["created_by"], device["owner_name"], device["start_date"]) == \
        ("sergio", "Zé", TODAY)
    assert [item["device_id"] for item in reseller.get("/admin/devices").json()["items"]] == ["R1"]
    again = reseller.post("/user/devices/create", {"device_id": "R1"})
    assert again.status_code == 400 and again.json() == {"error": "Licença já existe."}
    missing = reseller.post("/user/devices/create", {"owner_name": "x"})
    assert missing.status_code == 400 and missing.json() == {"error": "Device ID é obrigatório."}
    assert len(srv.devices()) == 1


def test_add_device_stores_old_imports_exactly(srv, admin):
    long_text = "ç" * 10_001
    huge_text = "x" * 1_000_000
    srv.add_device("  espaço ", owner_name=long_text, address=huge_text, custom_interval="30min",
                   features=["core", "nfe"], license_type="anual", start_date="2019-05-31",
                   calcular_fim=False)
    item = admin.get("/admin/devices").json()["items"][0]
    assert item["device_id"] == "  espaço "
    assert item["owner_name"] == long_text and item["address"] == huge_text
    assert (item["custom_interval"], item["features"]) == ("30min", ["core", "nfe"])
    assert (item["start_date"], item["end_date"]) == ("2019-05-31", None)


# ---------------------------------------------------------------------------
# Falhas por rota: página 200 de host, trickle, ganchos, atrasos
# ---------------------------------------------------------------------------


def test_interstitial_200_answers_without_the_app(srv, admin):
    seen_by_app = []
    srv.on_request("POST", "/admin/devices/create", lambda s: seen_by_app.append(1),
                   when="after", times=None)
    srv.interstitial_200("POST", "/admin/devices/create")
    response = create_device(admin, device_id="d1")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        response.json()
    assert srv.devices() == {} and seen_by_app == []
    assert srv.requests_log[-1] == ("POST", "/admin/devices/create", 200)
    assert create_device(admin, device_id="d1").status_code == 201
    assert "d1" in srv.devices() and seen_by_app == [1]


def test_override_with_html_page_writes_nothing(srv, admin):
    srv.add_device("d1")
    srv.override("POST", "/admin/devices/<id>/deactivate", 200, HtmlPage("<html>aguarde</html>"),
                 content_type=HTML_TYPE, times=2)
    for _ in range(2):
        response = change_status(admin, "d1", "block")
        assert response.status_code == 200 and response.text == "<html>aguarde</html>"
    assert srv.devices()["d1"]["status"] == "active"
    assert change_status(admin, "d1", "block").json()["status"] == "blocked"


def read_raw_response(srv, request: bytes, limit=None):
    """Manda a requisição por um socket cru e lê tudo (ou só `limit` bytes); conta os pedaços."""
    chunks = []
    with socket.create_connection((srv.host, srv.port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        received = 0
        while limit is None or received < limit:
            chunk = sock.recv(1 if limit else 65536)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
            if limit is None and b"\r\n\r\n" in b"".join(chunks):
                head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
                if len(body) >= length:
                    break
    return chunks


def test_trickle_sends_one_byte_at_a_time(srv):
    interval = 0.01
    srv.trickle("GET", "/health", seconds_per_byte=interval)
    started = time.monotonic()
    chunks = read_raw_response(srv, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    elapsed = time.monotonic() - started
    data = b"".join(chunks)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b'{"status": "ok"}')
    assert elapsed >= len(data) * interval
    assert len(chunks) > len(data) // 2  # chegou aos pedaços, não de uma vez
    assert b"".join(read_raw_response(srv, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")) \
        .endswith(b'{"status": "ok"}')  # times=1: a segunda vem normal


def test_trickle_app_writes_and_client_closing_early_is_harmless(srv, admin):
    srv.trickle("POST", "/admin/devices/create", seconds_per_byte=0.002)
    response = create_device(admin, device_id="d1")
    assert response.status_code == 201 and response.json()["device_id"] == "d1"
    srv.trickle("GET", "/health", seconds_per_byte=0.05)
    partial = read_raw_response(srv, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", limit=3)
    assert b"".join(partial) == b"HTT"
    time.sleep(0.2)  # o servidor continua mandando para um socket fechado
    assert Client(srv).get("/health").json() == {"status": "ok"}
    assert "d1" in srv.devices()


def test_hook_after_runs_after_answer_computed(srv, admin):
    srv.add_device("d1")
    srv.on_request("GET", "/admin/devices", lambda s: s.set_status("d1", "blocked"))
    assert admin.get("/admin/devices").json()["items"][0]["status"] == "active"
    assert srv.devices()["d1"]["status"] == "blocked"
    srv.set_status("d1", "active")
    assert admin.get("/admin/devices").json()["items"][0]["status"] == "active"  # times=1
    assert srv.devices()["d1"]["status"] == "active"


def test_hook_before_runs_before_the_app(srv, admin):
    srv.add_device("d1")
    srv.on_request("GET", "/admin/devices", lambda s: s.set_status("d1", "blocked"),
                   when="before")
    assert admin.get("/admin/devices").json()["items"][0]["status"] == "blocked"


def test_hook_skip_times_clear_and_errors(srv, admin):
    calls = []
    srv.on_request("GET", "/admin/devices",
                   lambda s: calls.append(s.counts[("GET", "/admin/devices")]), skip=1, times=2)
    for _ in range(4):
        assert admin.get("/admin/devices").status_code == 200
    assert calls == [2, 3]
    srv.on_request("GET", "/health", lambda s: calls.append("sempre"), times=None)
    srv.on_request("GET", "/health", lambda s: 1 / 0, when="before", times=None)
    for _ in range(2):
        assert Client(srv).get("/health").json() == {"status": "ok"}
    assert calls == [2, 3, "sempre", "sempre"]
    assert len(srv.hook_errors) == 2 and isinstance(srv.hook_errors[0], ZeroDivisionError)
    srv.clear_hooks()
    Client(srv).get("/health")
    assert calls[-1] == "sempre" and len(calls) == 4 and len(srv.hook_errors) == 2
    with pytest.raises(ValueError):
        srv.on_request("GET", "/health", print, when="durante")


def test_delay_only_on_its_route_and_times(srv, anonymous):
    srv.delay("GET", "/health", 0.4)
    started = time.monotonic()
    assert anonymous.get("/health").status_code == 200
    assert time.monotonic() - started >= 0.4
    srv.delay("GET", "/health", 5)
    started = time.monotonic()
    assert anonymous.get("/ping").status_code == 200  # outra rota: sem atraso
    assert time.monotonic() - started < 5


def test_delay_after_the_write_client_times_out_but_write_happened(srv, admin):
    srv.delay("POST", "/admin/devices/create", 1.0, when="after")
    with pytest.raises(requests.ReadTimeout):
        admin.post("/admin/devices/create", {"device_id": "d1"}, timeout=0.3)
    assert "d1" in srv.devices()


# ---------------------------------------------------------------------------
# Cópia de segurança do arquivo de dados
# ---------------------------------------------------------------------------


def test_export_import_round_trip(srv, admin):
    srv.add_user("sergio", "senha123", email="s@x.com")
    srv.add_user("bia", "abcdef", role="admin")
    srv.add_device("d1", custom_interval="30min", features=["a"], status="blocked")
    srv.add_device(" d2 ", license_type="mensal", start_date="2020-01-01", calcular_fim=False)
    create_device(admin, device_id="d3", license_type="vitalicia", created_by="sergio")
    srv.add_device("apagada")  # id 4, apagada: a sequência do banco fica em 4
    srv.remove_device("apagada")
    users, devices = srv.users(), srv.devices()
    copia = srv.export_data()

    srv.remove_device("d1")
    srv.set_status(" d2 ", "active")
    srv.add_user("novo", "123456")
    create_device(admin, device_id="d4")
    assert srv.devices() != devices

    srv.import_data(copia)
    assert srv.users() == users and srv.devices() == devices
    assert login(srv, "sergio", "senha123")  # o hash da senha voltou igual
    create_device(admin, device_id="d5")  # o token emitido antes continua valendo
    assert srv.devices()["d5"]["id"] == 5  # a sequência voltou (4), não o maior id (3)
    srv.import_data(copia)  # a cópia não muda com o que aconteceu depois
    assert srv.devices() == devices
    with pytest.raises(TypeError):
        srv.import_data({"users": []})


def test_import_into_another_server_copies_everything(srv):
    srv.add_user("sergio", "senha123")
    srv.add_device("d1", custom_interval=2.5)
    with ServidorReferencia() as other:
        other.add_device("sobra")
        other.import_data(srv.export_data())
        assert other.devices() == srv.devices() and other.users() == srv.users()
        assert login(other, "sergio", "senha123")


# ---------------------------------------------------------------------------
# GET /servers
# ---------------------------------------------------------------------------


def test_servers_default_list_is_someone_elses(srv, anonymous):
    srv.reset_counts()
    response = anonymous.get("/servers")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"version", "timestamp", "servers"} and body["version"] == 1
    assert body["servers"] == list(SERVIDORES_PADRAO) and len(body["servers"]) == 3
    assert all(url.startswith("https://") for url in body["servers"])
    assert body["timestamp"] == 20261128120000  # o relógio fixo (12:00), no fuso do servidor
    assert srv.counts[("GET", "/servers")] == 1 and srv.write_count() == 0
    assert srv.devices() == {} and srv.users() == {}


def test_servers_timestamp_in_server_zone():
    moment = dt.datetime(2026, 11, 30, 4, 45, tzinfo=UTC)
    with ServidorReferencia(fuso=SAO_PAULO, now=moment) as server:
        assert Client(server).get("/servers").json()["timestamp"] == 20261130014500


def test_servers_custom_then_default_again(anonymous, srv):
    urls = ["https://a.example", "https://b.example"]
    with ServidorReferencia(servidores=urls) as server:
        assert Client(server).get("/servers").json()["servers"] == urls
    srv.set_license_servers(["https://c.example"])
    assert anonymous.get("/servers").json()["servers"] == ["https://c.example"]
    srv.set_license_servers([])
    assert anonymous.get("/servers").json()["servers"] == []
    srv.set_license_servers(None)
    assert len(anonymous.get("/servers").json()["servers"]) == 3
    with pytest.raises(ValueError):
        srv.set_license_servers("https://a.example")


def test_servers_endpoint_disabled_is_flask_404(srv, anonymous):
    srv.set_servers_endpoint(False)
    for method in ("GET", "POST"):
        response = anonymous.session.request(method, srv.url + "/servers", timeout=TIMEOUT)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("text/html")
        assert "404 Not Found" in response.text
    assert srv.counts[("GET", "/servers")] == 1
    srv.set_servers_endpoint(True)
    assert anonymous.get("/servers").status_code == 200


def test_cli_zone_and_servers():
    script = PASTA_TESTES / "servidor_referencia.py"
    bad = subprocess.run([sys.executable, str(script), "--fuso", "Marte/Base"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode == 2 and "Fuso horário desconhecido" in bad.stderr
    assert "Traceback" not in bad.stderr
    process = subprocess.Popen(
        [sys.executable, str(script), "--porta", "0", "--fuso", SAO_PAULO,
         "--servidores", "https://a.example, https://b.example"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **ctrl_c_no_padrao())
    try:
        url = re.search(r"http://\S+", process.stdout.readline()).group(0)
        body = requests.get(f"{url}/servers", timeout=TIMEOUT).json()
        assert body["servers"] == ["https://a.example", "https://b.example"]
    finally:
        if os.name == "posix":
            process.send_signal(signal.SIGINT)
        else:  # no Windows não há SIGINT para um filho: TerminateProcess (código 1)
            process.terminate()
        _, errors = process.communicate(timeout=5)
    assert process.returncode == (0 if os.name == "posix" else 1)
    assert "Traceback" not in errors


# ---------------------------------------------------------------------------
# Variantes dos servidores reais: MySQL, versões antigas e falhas de escrita
# ---------------------------------------------------------------------------


def _variante(**opcoes):
    server = ServidorReferencia(today=TODAY, **opcoes).start()
    return server, Client(server, login(server))


@pytest.mark.parametrize("gravada, outra",
                         [("ABC", "abc"), ("José", "Jose"), ("straße", "STRASSE"), ("Ética", "etica")])
def test_colacao_mysql_grafias_sem_acento_e_maiuscula_sao_um_registro(gravada, outra):
    server, admin = _variante(colacao="mysql")
    try:
        assert create_device(admin, device_id=gravada, owner_name="Primeira").status_code == 201
        assert create_device(admin, device_id=outra, owner_name="Segunda").status_code == 201
        items = admin.get("/admin/devices").json()["items"]
        assert [(d["device_id"], d["owner_name"]) for d in items] == [(gravada, "Segunda")]
        bloqueio = admin.post(f"/admin/devices/{quote(outra)}/deactivate", {"action": "block"})
        assert bloqueio.json()["status"] == "blocked"
        assert server.veredito(gravada) is False and server.veredito_motivo(outra) == "bloqueada"
        assert admin.delete(f"/admin/devices/{quote(outra)}/delete").status_code == 200
        assert server.devices() == {}
    finally:
        server.stop()


def test_sem_colacao_as_grafias_sao_registros_diferentes(admin, srv):
    create_device(admin, device_id="ABC")
    create_device(admin, device_id="abc")
    assert set(srv.devices()) == {"ABC", "abc"}


def test_colunas_estritas_respondem_500_e_nao_gravam():
    server, admin = _variante(colunas="estrito")
    try:
        response = create_device(admin, device_id="LONGO", cpf="1" * 21)
        assert response.status_code == 500 and server.devices() == {}
        assert create_device(admin, device_id="LONGO", cpf="1" * 20, created_by="x" * 100).status_code == 201
        assert admin.post("/admin/devices/update-created-by",
                          {"device_id": "LONGO", "created_by": "y" * 101}).status_code == 500
        assert server.devices()["LONGO"]["created_by"] == "x" * 100
        assert create_device(admin, device_id="ENDERECO", address="r" * 5000).status_code == 201  # address é TEXT
    finally:
        server.stop()


def test_colunas_que_cortam_gravam_cortado_e_respondem_sucesso():
    server, admin = _variante(colunas="corta")
    try:
        response = create_device(admin, device_id="CORTA", cpf="9" * 30, owner_name="N" * 300,
                                 created_by="c" * 150)
        assert response.status_code == 201 and response.json()["success"] is True
        stored = server.devices()["CORTA"]
        assert (stored["cpf"], stored["owner_name"], stored["created_by"]) == ("9" * 20, "N" * 255, "c" * 100)
    finally:
        server.stop()


def test_datas_rfc1123_na_listagem_e_veredito_inalterado():
    server, admin = _variante(datas="rfc1123")
    try:
        server.add_device("D", start_date="2025-07-01", end_date="2025-08-01")
        item = admin.get("/admin/devices").json()["items"][0]
        assert item["start_date"] == "Tue, 01 Jul 2025 00:00:00 GMT"
        assert item["end_date"] == "Fri, 01 Aug 2025 00:00:00 GMT"
        assert server.veredito_motivo("D") == "expirada"
    finally:
        server.stop()


def test_atalho_mysql_liga_colacao_colunas_e_datas():
    server = ServidorReferencia.mysql("corta", today=TODAY).start()
    try:
        admin = Client(server, login(server))
        create_device(admin, device_id="Á", cpf="1" * 25)
        create_device(admin, device_id="a", cpf="2")
        item = admin.get("/admin/devices").json()["items"]
        assert len(item) == 1 and item[0]["cpf"] == "2" and item[0]["start_date"].endswith("GMT")
    finally:
        server.stop()


@pytest.mark.parametrize("versao, sem_update_created_by", [("antiga", False), ("primeira", True)])
def test_versoes_antigas_sem_rotas_de_bloqueio_exclusao_e_servers(versao, sem_update_created_by):
    server, admin = _variante(versao=versao)
    try:
        assert create_device(admin, device_id="V", created_by="sergio").status_code == 201
        bloqueio = admin.post("/admin/devices/V/deactivate", {"action": "block"})
        assert bloqueio.status_code == 404 and bloqueio.headers["Content-Type"].startswith("text/html")
        assert admin.delete("/admin/devices/V/delete").status_code == 404
        assert admin.get("/servers").status_code == 404
        assert server.devices()["V"]["status"] == "active"
        # GET numa rota que existe só com POST: 405 num servidor atual, 404 num antigo (a sonda do sincronizador)
        assert admin.get("/admin/devices/V/deactivate").status_code == 404
        corrigir = admin.post("/admin/devices/update-created-by", {"device_id": "V", "created_by": "ana"})
        assert (corrigir.status_code == 404) is sem_update_created_by
        assert server.devices()["V"]["created_by"] == ("admin" if sem_update_created_by else "ana")
    finally:
        server.stop()


def test_versao_atual_responde_405_ao_get_nas_rotas_de_escrita(admin):
    for path in ("/admin/devices/X/deactivate", "/admin/devices/X/delete", "/admin/devices/update-created-by"):
        assert admin.get(path).status_code == 405


def test_banco_travado_responde_500_e_passa_quando_repetido():
    server, admin = _variante(banco_travado=2)
    try:
        respostas = [create_device(admin, device_id="T", owner_name="x") for _ in range(3)]
        assert [r.status_code for r in respostas] == [500, 500, 201]
        assert respostas[0].json() == {"error": "database is locked"}
        assert create_device(admin, device_id="T", owner_name="outro corpo").status_code == 500  # outra escrita
        assert server.escritas_recebidas == 4 and server.devices()["T"]["owner_name"] == "x"
    finally:
        server.stop()


def test_falhar_a_n_esima_escrita_sem_gravar():
    server, admin = _variante(falhar_escritas={2})
    try:
        admin.get("/admin/devices")  # leituras não contam
        assert create_device(admin, device_id="A").status_code == 201
        assert create_device(admin, device_id="B").status_code == 500
        assert create_device(admin, device_id="B").status_code == 201
        assert set(server.devices()) == {"A", "B"} and server.escritas_recebidas == 3
    finally:
        server.stop()


@pytest.mark.parametrize("login_depois", [True, False])
def test_token_revogado_depois_de_n_escritas(login_depois):
    server, admin = _variante(revogar_token_apos=2, login_apos_revogar=login_depois)
    try:
        assert create_device(admin, device_id="A").status_code == 201
        assert create_device(admin, device_id="B").status_code == 201
        assert create_device(admin, device_id="C").status_code == 401
        novo = requests.post(f"{server.url}/admin/login", json={"username": "admin", "password": "admin123"},
                             timeout=TIMEOUT)
        assert novo.status_code == (200 if login_depois else 401)
        assert set(server.devices()) == {"A", "B"}
    finally:
        server.stop()


def test_opcao_de_variante_invalida_e_recusada():
    with pytest.raises(ValueError, match="versao"):
        ServidorReferencia(versao="2.0")
    with pytest.raises(ValueError, match="colunas"):
        ServidorReferencia(colunas="largas")


# ---------------------------------------------------------------------------
# TLS (ServidorReferencia(tls=contexto))
# ---------------------------------------------------------------------------

def test_tls_fala_so_https_e_conta_os_apertos_de_mao_recusados(tmp_path):
    import ssl

    import trustme

    ca = trustme.CA()
    contexto = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(contexto)
    arquivo_ca = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(arquivo_ca))
    with ServidorReferencia(tls=contexto) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        response = requests.post(f"{srv.url}/admin/login", json={"username": "admin", "password": "admin123"},
                                 timeout=TIMEOUT, verify=str(arquivo_ca))
        assert response.status_code == 200 and response.json()["token"]
        with pytest.raises(requests.exceptions.SSLError):  # certificado de uma CA que o cliente não conhece
            requests.get(srv.url + "/health", timeout=TIMEOUT)
        with pytest.raises(requests.exceptions.ConnectionError):  # http puro na porta https: fechada sem resposta
            requests.get(srv.url.replace("https://", "http://") + "/health", timeout=TIMEOUT)
        # o servidor conta o aperto de mão recusado na thread dele, logo depois de o cliente desistir
        prazo = time.monotonic() + 5
        while srv.conexoes_tls_recusadas() < 2 and time.monotonic() < prazo:
            time.sleep(0.01)
        assert srv.conexoes_tls_recusadas() == 2
        assert srv.counts[("POST", "/admin/login")] == 1 and srv.counts[("GET", "/health")] == 0


# ---------------------------------------------------------------------------
# Listagem cortada e segredo compartilhado
# ---------------------------------------------------------------------------

def test_cortar_listagem_devolve_so_os_primeiros_sem_mudar_os_dados(srv, admin):
    for i in range(5):
        create_device(admin, device_id=f"C{i}", license_type="anual")
    srv.cortar_listagem(2, vezes=1)
    cortada = admin.get("/admin/devices")
    assert cortada.status_code == 200 and [d["device_id"] for d in cortada.json()["items"]] == ["C4", "C3"]
    assert len(admin.get("/admin/devices").json()["items"]) == 5  # vezes=1: a seguinte vem inteira
    srv.cortar_listagem(0)
    assert admin.get("/admin/devices").json()["items"] == [] and len(srv.devices()) == 5
    assert srv.veredito("C0")
    srv.cortar_listagem(None)
    assert len(admin.get("/admin/devices").json()["items"]) == 5


def test_compartilhar_segredo_faz_o_token_de_um_valer_no_outro():
    with ServidorReferencia(today=TODAY) as a, ServidorReferencia(today=TODAY) as b, \
            ServidorReferencia(today=TODAY) as c:
        token_a = login(a)
        assert Client(b, token_a).get("/admin/users").status_code == 401  # sem segredo comum
        a.compartilhar_segredo("s1")
        b.compartilhar_segredo("s1")
        c.compartilhar_segredo("outro")
        token_a = login(a)
        assert Client(b, token_a).get("/admin/users").status_code == 200
        assert Client(a, login(b)).get("/admin/devices").status_code == 200
        assert Client(c, token_a).get("/admin/users").status_code == 401
