"""Apoio comum dos testes de resiliência, entradas inválidas e segredos.

Não é um arquivo de testes: reúne a preparação de dados nos servidores de referência,
a conferência "no servidor" (paridade de veredito, nada faltando, nada duplicado,
nada só-do-backup alterado) e o registro dos tokens vistos, que o teste de segredos
(test_zz_segredos.py) procura em tudo o que a ferramenta deixou para trás.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
from pathlib import Path

import pytest
import requests

import sincronizar_bancos as sb

# Tokens emitidos pelos servidores de referência durante os testes destes módulos
# (lidos no fim de cada teste, antes de parar os servidores).
TOKENS_VISTOS: set[str] = set()

TIPOS = ("mensal", "trimestral", "semestral", "anual", "trianual", "vitalicia")
NOMES = ("José da Silva", "Maria Conceição Araújo", "Padaria Pão de Açúcar", "Ótica Visão",
         "João Ninguém", "  espaços nas pontas  ")


def hoje_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def guardar_tokens(*servidores) -> None:
    """Anota os tokens que os servidores emitiram (para a varredura de segredos)."""
    for srv in servidores:
        app = getattr(srv, "_app", None)
        tokens = getattr(app, "_tokens", None)
        if tokens:
            TOKENS_VISTOS.update(t for t in list(tokens) if isinstance(t, str))


@pytest.fixture
def par_r(par):
    """O `par` do conftest, guardando os tokens emitidos antes de parar os servidores."""
    yield par
    guardar_tokens(par.principal, *par.backups)


# ---------------------------------------------------------------------------
# Preparação de dados
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Conferência no servidor (por HTTP, como um cliente veria)
# ---------------------------------------------------------------------------

def listar(srv, senha: str, caminho: str, usuario: str = "admin") -> list[dict]:
    """Lista de verdade por HTTP (login + GET), sem passar pela ferramenta."""
    sessao = requests.Session()
    resp = sessao.post(f"{srv.url}/admin/login", json={"username": usuario, "password": senha}, timeout=10)
    assert resp.status_code == 200, resp.text
    sessao.headers["Authorization"] = "Bearer " + resp.json()["token"]
    resp = sessao.get(srv.url + caminho, timeout=30)
    assert resp.status_code == 200, resp.text[:300]
    return resp.json()["items"]


def conferir_convergencia(par, so_no_backup: dict | None = None, hoje: dt.date | None = None) -> dict:
    """Confere direto nos servidores: paridade de veredito para toda licença válida do
    principal, nenhuma faltando, nenhuma duplicada, usuários todos presentes e
    registros só-do-backup intactos. Devolve as licenças do backup por chave."""
    for srv in [par.principal] + par.backups:
        srv.clear_faults()
        srv.clear_overrides()
    hoje = hoje or hoje_utc()
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
        # o veredito vem do oráculo do servidor de referência (independente da ferramenta)
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


def licencas_cruas(srv) -> dict[str, dict]:
    """Licenças do servidor como a API as devolve (dicts), por device_id."""
    return {k: dict(v) for k, v in srv.devices().items()}


# ---------------------------------------------------------------------------
# Saída e arquivos da ferramenta
# ---------------------------------------------------------------------------

def saida(execucao) -> str:
    return execucao.stdout + "\n" + execucao.stderr


def sem_traceback(execucao) -> None:
    texto = saida(execucao)
    assert "Traceback" not in texto, texto[-3000:]
    assert "Erro inesperado" not in texto and "erro inesperado" not in texto, texto[-3000:]


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
