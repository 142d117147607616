"""Testes de ponta a ponta de sincronizar_bancos.py.

Cada teste sobe servidores de referência reais (HTTP em 127.0.0.1, portas efêmeras),
roda o script por main(argv) no processo do pytest (sem mock de requests) e confere
o resultado DIRETO no banco dos servidores (devices(), users(), counts, requests_log).

O veredito (liberada/negada) vem do oráculo do servidor de referência (`ServidorReferencia.veredito`, os
passos do /verify), independente do script: nunca de uma cópia local das regras.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import socket
import sqlite3
import stat
import unicodedata
from pathlib import Path

import pytest

from apoio import (Par, conferir_paridade, ler_credenciais, login_http, rodar_cronometrado, rodar_script, semear_iguais,
                   so_escritas)

CAMPOS_DEFINIVEIS = ("owner_name", "cpf", "email", "address", "license_type", "created_by")
ARQUIVO_CREDENCIAIS = "credenciais_usuarios_criados.txt"

GET_HEALTH = ("GET", "/health")
LOGIN = ("POST", "/admin/login")
GET_USERS = ("GET", "/admin/users")
GET_DEVICES = ("GET", "/admin/devices")
GET_SERVERS = ("GET", "/servers")
CRIAR_USUARIO = ("POST", "/admin/users/create")
UPSERT = ("POST", "/admin/devices/create")
STATUS = ("POST", "/admin/devices/<id>/deactivate")
LEITURAS_MINIMAS = {GET_HEALTH: 1, LOGIN: 1, GET_USERS: 1, GET_DEVICES: 1, GET_SERVERS: 1}


# ---------------------------------------------------------------------------
# Ajudantes
# ---------------------------------------------------------------------------

def data(valor) -> dt.date | None:
    return None if valor in (None, "") else dt.date.fromisoformat(str(valor)[:10])


def sem_id(dev: dict) -> dict:
    return {k: v for k, v in dev.items() if k != "id"}


def conteudo_de_dados(dados: Path, exceto: str = ARQUIVO_CREDENCIAIS) -> bytes:
    """Bytes crus de todos os arquivos de DADOS_DIR (histórico, -wal, estado...), menos um."""
    partes = []
    for arquivo in sorted(dados.rglob("*")):
        if arquivo.is_file() and arquivo.name != exceto:
            partes.append(arquivo.read_bytes())
    return b"\n".join(partes)


def texto_do_historico(dados: Path) -> str:
    """Todas as linhas de todas as tabelas do histórico SQLite, como texto."""
    caminho = dados / "historico.sqlite3"
    assert caminho.exists(), "o histórico não foi gravado"
    con = sqlite3.connect(caminho)
    try:
        tabelas = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        linhas = [repr(row) for t in tabelas for row in con.execute(f"SELECT * FROM {t}")]
    finally:
        con.close()
    return "\n".join(linhas)


def porta_fechada() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def par_do_doc(doc: dict, url: str) -> dict:
    return next(b for b in doc["backups"] if b["backup"] == url)


def divergencias(pair: dict, campo: str) -> dict[str, dict]:
    return {d["chave"]: d for d in pair["divergencias"] if d["campo"] == campo}


# ---------------------------------------------------------------------------
# Conjunto de dados conhecido (o mesmo usado para contar requisições)
# ---------------------------------------------------------------------------

def semear_completo(par_ou_principal, backup=None) -> dict:
    """Principal e backup com um caso de cada regra. Devolve o que se espera."""
    principal = par_ou_principal.principal if backup is None else par_ou_principal
    backup = par_ou_principal.backup if backup is None else backup
    hoje = principal.today()
    passado = (hoje - dt.timedelta(days=40)).isoformat()
    inicio_antigo = (hoje - dt.timedelta(days=400)).isoformat()
    futuro = (hoje + dt.timedelta(days=200)).isoformat()
    ha_30_dias = (hoje - dt.timedelta(days=30)).isoformat()

    principal.add_user("sergio", "senha-do-sergio-1", email="sergio@exemplo.com.br")
    principal.add_user("conceição", "senha-da-conceicao", email="conceição@exemplo.com.br", role="admin")
    principal.add_user("ana", "senha-da-ana-123", email="ana@exemplo.com", role="user")
    backup.add_user("ana", "senha-antiga-ana", email="ana.antiga@exemplo.com", role="admin")
    backup.add_user("so_no_backup", "senha-so-backup", email="sb@exemplo.com")

    comum = dict(cpf="123.456.789-09", email="cliente@exemplo.com", address="Rua das Flores, 10")
    # novas no backup
    principal.add_device("L-NOVA", license_type="anual", owner_name="José da Silva", created_by="sergio", **comum)
    principal.add_device("L-BLOQ", license_type="mensal", owner_name="Maria Bloqueada", created_by="conceição",
                         status="blocked", **comum)
    principal.add_device("L-PEND", license_type="semestral", owner_name="Pedro Pendente", created_by="sergio",
                         status="pending", **comum)
    principal.add_device("L-VIT", license_type="vitalicia", owner_name="Ótica Vitalícia", created_by=None, **comum)
    # iguais nos campos definíveis (datas diferentes): nenhuma requisição
    principal.add_device("L-IGUAL", license_type="anual", owner_name="Igualzinho", created_by="sergio", **comum)
    backup.add_device("L-IGUAL", license_type="anual", owner_name="Igualzinho", created_by="sergio",
                      start_date=ha_30_dias, end_date=futuro, **comum)
    # campo definível diferente: atualização com o registro completo
    principal.add_device("L-DIF", license_type="trimestral", owner_name="Diferente Ltda", created_by="sergio",
                         features="core,relatorios", **comum)
    backup.add_device("L-DIF", license_type="trimestral", owner_name="Diferente Ltda", created_by="sergio",
                      cpf="123.456.789-09", email="antigo@exemplo.com", address="Endereço Antigo, 1")
    # vencida no principal, no prazo no backup: bloquear (sem upsert)
    principal.add_device("L-VENC", license_type="anual", owner_name="Vencida", created_by="sergio",
                         start_date=inicio_antigo, end_date=passado, **comum)
    backup.add_device("L-VENC", license_type="anual", owner_name="Vencida", created_by="sergio",
                      start_date=ha_30_dias, end_date=futuro, **comum)
    # renovada no principal, vencida no backup: o período recomeça
    principal.add_device("L-RENOV", license_type="anual", owner_name="Renovada", created_by="sergio",
                         start_date=ha_30_dias, end_date=futuro, **comum)
    backup.add_device("L-RENOV", license_type="anual", owner_name="Renovada", created_by="sergio",
                      start_date=inicio_antigo, end_date=passado, **comum)
    # bloqueada só no backup, ativa no principal: ativar (sem upsert)
    principal.add_device("L-DESBLOQ", license_type="anual", owner_name="Desbloquear", created_by="sergio", **comum)
    backup.add_device("L-DESBLOQ", license_type="anual", owner_name="Desbloquear", created_by="sergio",
                      status="blocked", start_date=ha_30_dias, end_date=futuro, **comum)
    # só no backup
    backup.add_device("L-SO-BACKUP", license_type="mensal", owner_name="Só no Backup", created_by="admin",
                      status="blocked")  # negada lá como no principal (liberada, sairia com 1)

    return {
        "hoje": hoje,
        "escritas": {CRIAR_USUARIO: 2, UPSERT: 6, STATUS: 4},  # NOVA BLOQ PEND VIT DIF RENOV | BLOQ PEND VENC DESBLOQ
        "chaves_principal": {"L-NOVA", "L-BLOQ", "L-PEND", "L-VIT", "L-IGUAL", "L-DIF", "L-VENC", "L-RENOV",
                             "L-DESBLOQ"},
    }


# ---------------------------------------------------------------------------
# Issue 7: número exato de requisições
# ---------------------------------------------------------------------------

def test_primeira_e_segunda_execucao_fazem_exatamente_o_minimo_de_requisicoes(par):
    esperado = semear_completo(par)
    r = par.rodar("--json")
    assert r.codigo == 0, r.stderr
    # principal: só leituras; a primeira e a releitura final dos dois lados depois da última escrita (uma
    # listagem de usuários e uma de licenças: o que o vendedor mudou durante a execução não passa como igual)
    assert par.principal.counts == collections.Counter({**LEITURAS_MINIMAS, GET_USERS: 2, GET_DEVICES: 2})
    # backup: as mesmas leituras + exatamente uma requisição por escrita necessária + a releitura que
    # confere a paridade no servidor depois das escritas (uma listagem de usuários e uma de licenças)
    # + a sonda (um GET, 405 = a rota de bloqueio existe) antes da primeira cadeia que bloqueia
    assert par.backup.counts == collections.Counter({**LEITURAS_MINIMAS, **esperado["escritas"],
                                                     GET_USERS: 2, GET_DEVICES: 2,
                                                     ("GET", "/admin/devices/<id>/deactivate"): 1})
    assert all(status in (200, 201) for method, _, status in par.backup.requests_log if method != "GET" or
               status != 405)
    assert par.backup.write_count() == 12

    # segunda execução: nada a fazer, e de novo só o mínimo de leituras
    par.principal.reset_counts()
    par.backup.reset_counts()
    conexoes_antes = (par.principal.connections_accepted, par.backup.connections_accepted)
    r2 = par.rodar("--json")
    assert r2.codigo == 0, r2.stdout + r2.stderr
    assert par.principal.counts == collections.Counter(LEITURAS_MINIMAS)
    assert par.backup.counts == collections.Counter(LEITURAS_MINIMAS)
    assert par.backup.write_count() == 0
    assert r2.json()["backups"][0]["acoes"] == []
    # keep-alive: as requisições de cada servidor reaproveitam as conexões (1 para acordar e entrar,
    # que confere a configuração antes de tudo, e 1 ou 2 para as listagens em paralelo)
    assert par.principal.connections_accepted - conexoes_antes[0] <= 3
    assert par.backup.connections_accepted - conexoes_antes[1] <= 3


def test_segunda_execucao_nao_faz_nenhuma_escrita_e_sai_com_zero(par):
    semear_completo(par)
    r = par.rodar()
    assert r.codigo == 0, r.stdout + r.stderr
    estado = {k: sem_id(v) for k, v in par.backup.devices().items()}
    usuarios = par.backup.users()
    par.backup.reset_counts()
    r2 = par.rodar()
    assert r2.codigo == 0, r2.stdout + r2.stderr
    assert par.backup.write_count() == 0
    assert so_escritas(par.principal.counts) == {}
    assert {k: sem_id(v) for k, v in par.backup.devices().items()} == estado
    assert par.backup.users() == usuarios
    assert "0 mudança(s) aplicadas" in r2.stdout
    conferir_paridade(par.principal, par.backup)


# ---------------------------------------------------------------------------
# Usuários
# ---------------------------------------------------------------------------

def test_usuarios_criados_com_mesmos_dados_e_senha_aleatoria_em_arquivo_0600(par):
    par.principal.add_user("sergio", "senha-original-1", email="sergio@exemplo.com.br", role="user")
    par.principal.add_user("conceição", "senha-original-2", email="conceição@exemplo.com.br", role="admin")
    par.principal.add_user("sem.email", "senha-original-3", email=None, role="user")
    r = par.rodar()
    assert r.codigo == 0, r.stdout + r.stderr

    no_backup = par.backup.users()
    for nome, original in par.principal.users().items():
        assert nome in no_backup
        assert (no_backup[nome]["email"], no_backup[nome]["role"]) == (original["email"], original["role"])

    arquivo = par.dados / ARQUIVO_CREDENCIAIS
    assert arquivo.exists()
    if os.name == "posix":
        assert stat.S_IMODE(arquivo.stat().st_mode) == 0o600
    linhas = ler_credenciais(par.dados)
    por_usuario = {linha[2]: linha for linha in linhas}
    assert set(por_usuario) == {"sergio", "conceição", "sem.email"}
    senhas = [linha[3] for linha in por_usuario.values()]
    assert len(set(senhas)) == 3, "cada usuário recebe uma senha nova e diferente"
    for linha in linhas:
        assert len(linha) == 5
        assert linha[1] == par.backup.url
        assert linha[3] == por_usuario[linha[2]][3]
        assert len(linha[3]) >= 16
        assert linha[3] not in ("senha-original-1", "senha-original-2", "senha-original-3")
    for linha in por_usuario.values():
        assert linha[4] == "criado"

    # o usuário criado entra no backup com a senha do arquivo (e com o papel certo)
    for nome, linha in por_usuario.items():
        resp = login_http(par.backup, nome, linha[3])
        assert resp.status_code == 200, (nome, resp.text)
        assert resp.json()["role"] == par.principal.users()[nome]["role"]

    # a senha nunca aparece na saída, no histórico nem em outro arquivo de DADOS_DIR
    brutos = conteudo_de_dados(par.dados)
    historico = texto_do_historico(par.dados)
    for senha in senhas:
        assert senha not in r.stdout and senha not in r.stderr
        assert senha.encode() not in brutos
        assert senha not in historico
    # o relatório diz onde está o arquivo
    assert str(arquivo) in r.stdout

    # uma nova execução acrescenta (não apaga) e mantém 0600
    par.principal.add_user("novo.revendedor", "senha-original-4", email="novo@exemplo.com")
    r2 = par.rodar("--json")
    assert r2.codigo == 0, r2.stderr
    linhas2 = ler_credenciais(par.dados)
    assert linhas2[:len(linhas)] == linhas
    assert [linha[2] for linha in linhas2[len(linhas):]] == ["novo.revendedor"]
    nova = linhas2[-1][3]
    assert nova not in r2.stdout and nova not in r2.stderr
    assert r2.json()["arquivo_credenciais"] == str(arquivo)
    if os.name == "posix":
        assert stat.S_IMODE(arquivo.stat().st_mode) == 0o600
    assert login_http(par.backup, "novo.revendedor", nova).status_code == 200


def test_usuario_com_email_ou_papel_diferente_e_reportado_e_nao_alterado(par):
    par.principal.add_user("ana", "senha-ana-principal", email="ana@exemplo.com", role="user")
    par.principal.add_user("bruno", "senha-bruno-princ", email="bruno@exemplo.com", role="admin")
    par.backup.add_user("ana", "senha-ana-backup", email="ana.antiga@exemplo.com", role="user")
    par.backup.add_user("bruno", "senha-bruno-backup", email="bruno@exemplo.com", role="user")
    antes = par.backup.users()
    r = par.rodar("--json")
    assert r.codigo == 0, r.stderr
    assert par.backup.users() == antes
    assert so_escritas(par.backup.counts) == {}
    # a senha do backup continua valendo (nada foi recriado)
    assert login_http(par.backup, "ana", "senha-ana-backup").status_code == 200

    pair = r.json()["backups"][0]
    emails, papeis = divergencias(pair, "email"), divergencias(pair, "role")
    assert emails["ana"]["principal"] == "ana@exemplo.com"
    assert emails["ana"]["backup"] == "ana.antiga@exemplo.com"
    assert emails["ana"]["tipo"] == "usuario"
    assert "bruno" not in emails
    assert (papeis["bruno"]["principal"], papeis["bruno"]["backup"]) == ("admin", "user")
    assert "ana" not in papeis
    assert pair["contagens"]["usuarios_criados"] == 0

    # o relatório humano também lista as divergências
    r2 = par.rodar()
    assert "Divergências não sincronizáveis" in r2.stdout
    assert "email" in r2.stdout and "role" in r2.stdout


# ---------------------------------------------------------------------------
# Licenças: criação, atualização, igualdade
# ---------------------------------------------------------------------------

def test_licenca_nova_criada_com_registro_completo(par):
    par.principal.add_device("L-1", license_type="trimestral", owner_name="José da Silva", cpf="123.456.789-09",
                             email="jose@exemplo.com", address="Rua A, 10", created_by="sergio")
    par.principal.add_device("L-2", license_type="vitalicia", owner_name="Ótica", cpf=None, email=None,
                             address="Av. B, 20", created_by="conceicao")
    r = par.rodar()
    assert r.codigo == 0, r.stdout + r.stderr
    hoje = par.backup.today()
    principal, backup = par.principal.devices(), par.backup.devices()
    for chave in ("L-1", "L-2"):
        for campo in CAMPOS_DEFINIVEIS:
            assert backup[chave][campo] == principal[chave][campo], (chave, campo)
        assert backup[chave]["status"] == "active"
        assert data(backup[chave]["start_date"]) == hoje
    assert backup["L-2"]["end_date"] is None
    assert par.backup.counts[UPSERT] == 2
    conferir_paridade(par.principal, par.backup)


def test_atualizacao_envia_registro_completo_sem_anular_campos(par):
    hoje = par.principal.today()
    par.principal.add_device("L-DIF", license_type="semestral", owner_name="Padaria Pão Quente",
                             cpf="987.654.321-00", email="padaria@exemplo.com", address="Rua Nova, 99",
                             created_by="sergio", features="core,relatorios")
    # no backup: só o endereço e o e-mail diferem; datas e features próprios
    par.backup.add_device("L-DIF", license_type="semestral", owner_name="Padaria Pão Quente",
                          cpf="987.654.321-00", email="antigo@exemplo.com", address="Rua Velha, 1",
                          created_by="sergio", start_date=(hoje - dt.timedelta(days=10)).isoformat(),
                          features="core")
    # igual nos campos definíveis (datas diferentes): NENHUMA requisição, datas intocadas
    par.principal.add_device("L-IGUAL", license_type="anual", owner_name="Igual", cpf="111", created_by="sergio")
    inicio_b, fim_b = (hoje - dt.timedelta(days=100)).isoformat(), (hoje + dt.timedelta(days=265)).isoformat()
    par.backup.add_device("L-IGUAL", license_type="anual", owner_name="Igual", cpf="111", created_by="sergio",
                          start_date=inicio_b, end_date=fim_b)
    r = par.rodar("--json")
    assert r.codigo == 0, r.stderr

    dif = par.backup.devices()["L-DIF"]
    origem = par.principal.devices()["L-DIF"]
    for campo in CAMPOS_DEFINIVEIS:
        assert dif[campo] == origem[campo], campo
        assert dif[campo] is not None, f"{campo} foi anulado pela atualização"
    assert dif["status"] == "active"
    assert dif["features"] == "core"  # a API não define features: continua a do backup...
    pair = r.json()["backups"][0]
    assert divergencias(pair, "features")["L-DIF"]["principal"] == "core,relatorios"  # ...e isso é reportado
    assert pair["contagens"]["licencas_atualizadas"] == 1
    acao = next(a for a in pair["acoes"] if a["chave"] == "L-DIF")
    assert acao["tipo"] == "atualizar_licenca"

    igual = par.backup.devices()["L-IGUAL"]
    assert (igual["start_date"], igual["end_date"], igual["status"]) == (inicio_b, fim_b, "active")
    assert par.backup.counts[UPSERT] == 1
    assert par.backup.counts[STATUS] == 0
    assert "L-IGUAL" not in {a["chave"] for a in pair["acoes"]}
    conferir_paridade(par.principal, par.backup)


# ---------------------------------------------------------------------------
# Veredito: bloqueio, vencimento, renovação, pendente
# ---------------------------------------------------------------------------

def test_bloqueada_continua_bloqueada_no_backup(par):
    hoje = par.principal.today()
    par.principal.add_device("B-NOVA", license_type="anual", owner_name="Bloqueada Nova", status="blocked",
                             created_by="sergio")
    # já existe igual e ativa no backup: só o bloqueio, sem upsert (datas intocadas)
    inicio = (hoje - dt.timedelta(days=20)).isoformat()
    par.principal.add_device("B-EXISTE", license_type="anual", owner_name="Bloqueada Existente",
                             status="blocked", created_by="sergio")
    par.backup.add_device("B-EXISTE", license_type="anual", owner_name="Bloqueada Existente", created_by="sergio",
                          start_date=inicio)
    r = par.rodar()
    assert r.codigo == 0, r.stdout + r.stderr
    backup = par.backup.devices()
    assert backup["B-NOVA"]["status"] == "blocked"
    assert backup["B-EXISTE"]["status"] == "blocked"
    assert backup["B-EXISTE"]["start_date"] == inicio
    assert par.backup.veredito("B-NOVA") is False
    assert par.backup.veredito("B-EXISTE") is False
    # ordem no servidor: a criação e depois o bloqueio (um só upsert: o da B-NOVA)
    escritas = [(m, t) for m, t, _ in par.backup.requests_log if (m, t) in (UPSERT, STATUS)]
    assert escritas.count(UPSERT) == 1 and escritas.count(STATUS) == 2
    assert escritas.index(UPSERT) < max(i for i, e in enumerate(escritas) if e == STATUS)
    assert all(s == 200 for m, t, s in par.backup.requests_log if (m, t) == STATUS)

    par.backup.reset_counts()
    r2 = par.rodar()
    assert r2.codigo == 0
    assert par.backup.write_count() == 0
    assert par.backup.devices()["B-NOVA"]["status"] == "blocked"


def test_vencida_no_principal_e_negada_no_backup(par):
    hoje = par.principal.today()
    passado_ini, passado_fim = (hoje - dt.timedelta(days=400)).isoformat(), (hoje - dt.timedelta(days=35)).isoformat()
    # ausente no backup: criada (período novo) e bloqueada para negar igual
    par.principal.add_device("V-NOVA", license_type="anual", owner_name="Vencida Nova", created_by="sergio")
    par.principal.set_dates("V-NOVA", passado_ini, passado_fim)
    # presente e no prazo no backup: bloqueada sem upsert
    par.principal.add_device("V-EXISTE", license_type="mensal", owner_name="Vencida Existente", created_by="sergio")
    par.principal.set_dates("V-EXISTE", passado_ini, passado_fim)
    par.backup.add_device("V-EXISTE", license_type="mensal", owner_name="Vencida Existente", created_by="sergio")
    assert par.principal.vereditos() == {"V-NOVA": False, "V-EXISTE": False}

    r = par.rodar("--json")
    assert r.codigo == 0, r.stderr
    backup = par.backup.devices()
    assert backup["V-NOVA"]["status"] == "blocked"
    assert backup["V-EXISTE"]["status"] == "blocked"
    assert par.backup.veredito("V-NOVA") is False and par.backup.veredito("V-EXISTE") is False
    assert par.backup.counts[UPSERT] == 1
    assert par.backup.counts[STATUS] == 2
    pair = r.json()["backups"][0]
    # a diferença de status/datas é reportada, não escondida
    assert "V-NOVA" in divergencias(pair, "end_date")
    assert divergencias(pair, "status")["V-EXISTE"]["backup"] == "blocked"
    assert pair["paridade"] == {"ok": True, "conferida": True, "total": 2, "iguais": 2, "diferentes": [],
                                "ignoradas": 0}
    conferir_paridade(par.principal, par.backup)


def test_renovacao_no_principal_libera_no_backup_com_periodo_novo(par):
    hoje = par.principal.today()
    passado_ini, passado_fim = (hoje - dt.timedelta(days=400)).isoformat(), (hoje - dt.timedelta(days=35)).isoformat()
    par.principal.add_device("R-1", license_type="anual", owner_name="Renovada", cpf="1", created_by="sergio")
    par.backup.add_device("R-1", license_type="anual", owner_name="Renovada", cpf="1", created_by="sergio",
                          start_date=passado_ini, end_date=passado_fim)
    r = par.rodar()
    assert r.codigo == 0, r.stdout + r.stderr
    r1 = par.backup.devices()["R-1"]
    assert r1["status"] == "active"
    assert data(r1["start_date"]) == hoje
    assert data(r1["end_date"]) > hoje
    assert par.backup.veredito("R-1") is True
    assert par.backup.counts[UPSERT] == 1 and par.backup.counts[STATUS] == 0

    # em duas etapas: vence no principal (backup bloqueado) e depois é renovada lá
    par.principal.add_device("R-2", license_type="mensal", owner_name="Vence e Renova", created_by="sergio")
    par.principal.set_dates("R-2", passado_ini, passado_fim)
    r = par.rodar()
    assert r.codigo == 0
    assert par.backup.devices()["R-2"]["status"] == "blocked"
    conferir_paridade(par.principal, par.backup)
    par.principal.set_dates("R-2", hoje.isoformat(), (hoje + dt.timedelta(days=30)).isoformat())
    par.backup.reset_counts()
    r = par.rodar()
    assert r.codigo == 0
    r2 = par.backup.devices()["R-2"]
    assert r2["status"] == "active" and par.backup.veredito("R-2") is True
    assert so_escritas(par.backup.counts) == {STATUS: 1}  # só ativar, sem upsert
    conferir_paridade(par.principal, par.backup)


def test_pendente_no_principal_fica_bloqueada_no_backup_e_e_divergencia(par):
    par.principal.add_device("P-1", license_type="semestral", owner_name="Pendente", status="pending",
                             created_by="sergio")
    par.principal.add_device("P-2", license_type="anual", owner_name="Pendente Existente", status="pending",
                             created_by="sergio")
    par.backup.add_device("P-2", license_type="anual", owner_name="Pendente Existente", created_by="sergio")
    r = par.rodar("--json")
    assert r.codigo == 0, r.stderr
    backup = par.backup.devices()
    assert backup["P-1"]["status"] == "blocked"
    assert backup["P-2"]["status"] == "blocked"
    pair = r.json()["backups"][0]
    status = divergencias(pair, "status")
    for chave in ("P-1", "P-2"):
        assert (status[chave]["principal"], status[chave]["backup"]) == ("pending", "blocked")
    assert pair["contagens"]["divergencias"] == len(pair["divergencias"])
    conferir_paridade(par.principal, par.backup)


def test_created_by_preservado_e_nulo_no_principal_reportado(par):
    par.principal.add_device("C-1", owner_name="Do Sérgio", created_by="sergio")
    par.principal.add_device("C-2", owner_name="Da Conceição", created_by="conceição")
    par.principal.add_device("C-NULO", owner_name="Sem Criador", created_by=None)
    # no backup com outro created_by: atualizado para o do principal
    par.principal.add_device("C-3", owner_name="Trocado", created_by="revenda.x")
    par.backup.add_device("C-3", owner_name="Trocado", created_by="admin")
    r = par.rodar("--json")
    assert r.codigo == 0, r.stderr
    backup = par.backup.devices()
    assert backup["C-1"]["created_by"] == "sergio"
    assert backup["C-2"]["created_by"] == "conceição"
    assert backup["C-3"]["created_by"] == "revenda.x"
    assert backup["C-NULO"]["created_by"] == "admin"  # o que a API grava para vazio
    pair = r.json()["backups"][0]
    criador = divergencias(pair, "created_by")
    assert set(criador) == {"C-NULO"}
    assert criador["C-NULO"]["principal"] is None and criador["C-NULO"]["backup"] == "admin"

    par.backup.reset_counts()
    assert par.rodar().codigo == 0
    assert par.backup.write_count() == 0


def test_acentos_e_emojis_chegam_byte_a_byte(par):
    nfd = unicodedata.normalize("NFD", "José Conceição")  # decomposto: não pode virar NFC
    assert nfd != unicodedata.normalize("NFC", nfd)
    par.principal.add_user("joão.açaí", "senha-do-joao-1", email="joão@exemplo.com.br")
    casos = {
        "ACENTO-1": dict(owner_name="Maria Conceição Araújo ☕😀", address="Rua São João, nº 10 — Açaí 🚀",
                         email="conceição@exemplo.com.br", cpf="123.456.789-09", created_by="joão.açaí"),
        "ACENTO-2": dict(owner_name=nfd, address="Praça da Sé, 1º andar", email=None, cpf=None,
                         created_by="joão.açaí"),
        "DISPOSITIVO-ÇÃÉ-😀": dict(owner_name="Ótica Visão — Ação", address="Avenida Paulista, 1000",
                                  email="otica@exemplo.com", cpf="000", created_by="joão.açaí"),
    }
    for chave, campos in casos.items():
        par.principal.add_device(chave, license_type="anual", **campos)
    par.principal.set_status("DISPOSITIVO-ÇÃÉ-😀", "blocked")  # o bloqueio passa pela URL
    r = par.rodar("--json")
    assert r.codigo == 0, r.stderr
    principal, backup = par.principal.devices(), par.backup.devices()
    assert set(backup) == set(casos)
    for chave in casos:
        assert chave.encode("utf-8") in {k.encode("utf-8") for k in backup}
        for campo in CAMPOS_DEFINIVEIS:
            original, copiado = principal[chave][campo], backup[chave][campo]
            assert (copiado or "").encode("utf-8") == (original or "").encode("utf-8"), (chave, campo)
    assert backup["DISPOSITIVO-ÇÃÉ-😀"]["status"] == "blocked"
    assert par.backup.users()["joão.açaí"]["email"] == "joão@exemplo.com.br"
    chaves_json = {a["chave"] for a in r.json()["backups"][0]["acoes"]}
    assert {"joão.açaí", "ACENTO-1", "ACENTO-2", "DISPOSITIVO-ÇÃÉ-😀"} <= chaves_json
    assert "Maria Conceição Araújo ☕😀" in r.stdout  # JSON sem escapes (\uXXXX)

    par.backup.reset_counts()
    r2 = par.rodar()
    assert r2.codigo == 0
    assert par.backup.write_count() == 0
    conferir_paridade(par.principal, par.backup)


def test_registros_so_no_backup_sao_mantidos_e_reportados(par):
    par.principal.add_device("COMUM", owner_name="Comum")
    par.backup.add_device("SO-BACKUP-1", owner_name="Só Aqui", created_by="admin", status="blocked")
    par.backup.add_device("SO-BACKUP-2", owner_name="Só Aqui 2", created_by="sergio")
    par.backup.add_user("revenda.local", "senha-local-123", email="local@exemplo.com")
    antes = {k: sem_id(v) for k, v in par.backup.devices().items()}
    r = par.rodar("--json")
    assert r.codigo == 1, r.stderr  # SO-BACKUP-2 liberada só no backup: nunca sai com 0
    depois = par.backup.devices()
    assert {k: sem_id(depois[k]) for k in antes} == antes
    assert "revenda.local" in par.backup.users()
    assert par.backup.counts[("DELETE", "/admin/devices/<id>/delete")] == 0
    assert so_escritas(par.backup.counts) == {UPSERT: 1}
    pair = r.json()["backups"][0]
    assert pair["so_no_backup"] == {"usuarios": ["revenda.local"], "licencas": ["SO-BACKUP-1", "SO-BACKUP-2"],
                                    "licencas_liberadas": ["SO-BACKUP-2"],  # a outra está bloqueada lá
                                    "vendas_no_backup": [], "origem_desconhecida": ["SO-BACKUP-2"]}
    humano = par.rodar()
    assert "Só no backup" in humano.stdout
    assert "SO-BACKUP-1" in humano.stdout and "revenda.local" in humano.stdout


# ---------------------------------------------------------------------------
# --simular e --json
# ---------------------------------------------------------------------------

def test_simular_nao_grava_nada_e_mostra_o_plano(par):
    semear_completo(par)
    antes_p, antes_b = par.principal.devices(), par.backup.devices()
    usuarios_b = par.backup.users()
    r = par.rodar("--simular")
    assert r.codigo == 0, r.stdout + r.stderr
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
    assert par.backup.counts == collections.Counter(LEITURAS_MINIMAS)
    assert par.principal.devices() == antes_p and par.backup.devices() == antes_b
    assert par.backup.users() == usuarios_b
    assert not par.dados.exists(), "--simular não deve criar DADOS_DIR (nem histórico nem credenciais)"
    assert "SIMULAÇÃO" in r.stdout
    for chave, verbo in (("L-NOVA", "a criar"), ("L-BLOQ", "a bloquear"), ("L-DIF", "a atualizar"),
                         ("L-RENOV", "a reiniciar o período"), ("L-DESBLOQ", "a ativar"),
                         ("sergio", "usuário a criar")):
        assert any(chave in linha and verbo in linha for linha in r.stdout.splitlines()), (chave, verbo)

    rj = par.rodar("--simular", "--json")
    assert rj.codigo == 0
    doc = rj.json()
    assert doc["simulacao"] is True
    tipos = collections.Counter(a["tipo"] for a in doc["backups"][0]["acoes"])
    assert tipos == {"criar_usuario": 2, "criar_licenca": 4, "atualizar_licenca": 1, "renovar_licenca": 1,
                     "bloquear": 3, "ativar": 1}
    assert par.backup.write_count() == 0


def test_simular_e_a_execucao_contam_as_mesmas_divergencias_nao_sincronizaveis(par):
    """Issue 26: a simulação mostrava 7 divergências e a execução de verdade 4 ou 5. A diferença eram as senhas
    dos usuários criados (a API não as expõe; uma senha nova foi gerada): a releitura final não as vê e as
    perdia. Um usuário criado nesta execução tem, de fato, senha diferente da do principal."""
    semear_completo(par)
    simulada = par.rodar("--simular", "--json").json()["backups"][0]
    real = par.rodar("--json").json()["backups"][0]
    assert real["codigo_saida"] == 0
    chaves = sorted((d["chave"], d["campo"]) for d in simulada["divergencias"])
    assert ("sergio", "senha") in chaves
    assert sorted((d["chave"], d["campo"]) for d in real["divergencias"]) == chaves


def test_json_e_um_unico_documento_valido_e_nada_mais_no_stdout(par):
    semear_completo(par)
    par.backup.add_user("papel.estranho", "senha-estranha", role="gerente")  # gera um aviso (vai ao stderr)
    r = par.rodar("--json")
    assert r.codigo == 0, r.stderr
    doc = json.loads(r.stdout)  # estrito: texto extra antes ou depois faria falhar
    assert r.stdout.lstrip().startswith("{") and r.stdout.rstrip().endswith("}")
    assert "papel.estranho" in r.stderr  # o aviso foi para o stderr, o stdout segue só JSON
    assert doc["codigo_saida"] == 0
    assert len(doc["backups"]) == 1
    pair = doc["backups"][0]
    assert pair["backup"] == par.backup.url
    for chave in ("contagens", "acoes", "falhas", "divergencias", "paridade", "so_no_backup"):
        assert chave in pair, chave
    c = pair["contagens"]
    assert (c["usuarios_criados"], c["licencas_criadas"], c["licencas_atualizadas"], c["licencas_renovadas"],
            c["licencas_bloqueadas"], c["licencas_ativadas"], c["falhas"]) == (2, 4, 1, 1, 3, 1, 0)
    assert c["licencas_sem_mudanca"] == 1  # L-IGUAL
    assert pair["falhas"] == []
    assert pair["paridade"]["ok"] is True and pair["paridade"]["total"] == 9
    assert pair["paridade"]["diferentes"] == []
    assert len(pair["acoes"]) == 12 == par.backup.write_count()
    # nenhuma senha (admin nem gerada) no documento
    for senha in [par.senha_principal, par.senhas_backup] + [ln[3] for ln in ler_credenciais(par.dados)]:
        assert senha not in r.stdout and senha not in r.stderr


# ---------------------------------------------------------------------------
# Credenciais e configuração
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("lado", ["principal", "backup"])
def test_credenciais_de_revendedor_nao_admin_recusadas(par, lado):
    semear_completo(par)
    servidor = par.principal if lado == "principal" else par.backup
    servidor.add_user("revenda.comum", "senha-da-revenda-1", role="user")
    prefixo = "PRINCIPAL" if lado == "principal" else "BACKUP"
    r = par.rodar(**{f"{prefixo}_ADMIN_USER": "revenda.comum", f"{prefixo}_ADMIN_PASSWORD": "senha-da-revenda-1"})
    assert r.codigo == 2, r.stdout + r.stderr
    assert par.principal.write_count() == 0
    assert par.backup.write_count() == 0
    assert "papel 'user'" in r.stdout + r.stderr
    assert "senha-da-revenda-1" not in r.stdout + r.stderr
    # nada de listagens com o token de revendedor (que veria só parte das licenças)
    assert servidor.counts[GET_DEVICES] == 0


@pytest.mark.parametrize("lado", ["principal", "backup"])
def test_senha_errada_sai_com_2_sem_escrever(par, lado):
    semear_completo(par)
    prefixo = "PRINCIPAL" if lado == "principal" else "BACKUP"
    r = par.rodar("--json", **{f"{prefixo}_ADMIN_PASSWORD": "senha-errada-123"})
    assert r.codigo == 2, r.stdout + r.stderr
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
    doc = r.json()
    assert doc["codigo_saida"] == 2
    assert doc["backups"][0]["situacao"] == "erro"
    assert "login recusado" in doc["backups"][0]["erro"]
    assert "senha-errada-123" not in r.stdout + r.stderr


def test_principal_repetido_como_backup_e_recusado(par):
    mesma_url = par.principal.url.replace("http://", "HTTP://") + "/"  # mesma, escrita diferente
    r = par.rodar(SERVIDOR_BACKUP=mesma_url)
    assert r.codigo == 2, r.stdout + r.stderr
    assert "também está listado como backup" in r.stderr
    assert par.principal.counts == collections.Counter()


# ---------------------------------------------------------------------------
# Dois backups, um fora do ar
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("como", ["parado", "porta_fechada"])
def test_dois_backups_um_fora_do_ar_o_outro_e_sincronizado_saida_4(par_dois_backups, como):
    par = par_dois_backups
    semear_completo(par.principal, par.backups[1])
    fora, vivo = par.backups[0], par.backups[1]  # o que falha vem primeiro na lista
    if como == "parado":
        url_fora = fora.url
        fora.stop()
    else:
        url_fora = f"http://127.0.0.1:{porta_fechada()}"
    env = par.ambiente(SERVIDOR_BACKUP=f"{url_fora},{vivo.url}", SYNC_TENTATIVAS_HTTP="0",
                       SYNC_ESPERA_DESPERTAR="1")
    r = par.rodar("--json", env=env)
    assert r.codigo == 4, r.stdout + r.stderr
    doc = r.json()
    assert doc["codigo_saida"] == 4
    caido = par_do_doc(doc, url_fora)
    assert caido["situacao"] == "erro" and caido["codigo_saida"] == 4 and caido["erro"]
    ok = par_do_doc(doc, vivo.url)
    assert ok["situacao"] == "ok" and ok["paridade"]["ok"] is True
    assert set(vivo.devices()) >= set(par.principal.devices())
    conferir_paridade(par.principal, vivo)
    assert par.principal.write_count() == 0


def test_backup_fora_do_ar_respeita_a_espera_configurada(par_dois_backups):
    """Regressão: cada sondagem de /health passava pelas novas tentativas do urllib3 (espera
    exponencial), e um backup fora do ar segurava a execução ~15 s com SYNC_ESPERA_DESPERTAR=1."""
    par = par_dois_backups
    par.principal.add_device("X-1", owner_name="Qualquer")
    par.backups[0].stop()
    # novas tentativas HTTP no padrão (5); o tempo é o que passa da partida do script
    r, decorrido = rodar_cronometrado(par.rodar, "--json", SYNC_ESPERA_DESPERTAR="1")
    assert r.codigo == 4
    assert "X-1" in par.backups[1].devices()
    assert decorrido < 3.5, f"esperou {decorrido:.1f} s com SYNC_ESPERA_DESPERTAR=1"


# ---------------------------------------------------------------------------
# Falhas de ações
# ---------------------------------------------------------------------------

def test_acao_que_falha_e_reportada_com_a_mensagem_do_servidor_e_o_resto_e_aplicado(par):
    par.principal.add_user("sergio", "senha-do-sergio-1", email="s@exemplo.com")
    par.principal.add_device("F-1", owner_name="Vai Falhar", created_by="sergio")
    par.principal.add_device("F-2", owner_name="Bloqueada", created_by="sergio", status="blocked")
    par.principal.add_device("F-3", owner_name="Normal", created_by="sergio")
    # --paralelo 1: as licenças vão em ordem, a primeira criação (F-1) recebe o 500
    # 4 vezes: a escrita e as 3 novas tentativas (um 500 só é repetido)
    par.backup.fail_next("POST", "/admin/devices/create", 500, {"error": "Erro interno: banco travado"}, times=4)
    r = par.rodar("--json", "--paralelo", "1")
    assert r.codigo == 1, r.stdout + r.stderr
    backup = par.backup.devices()
    assert "F-1" not in backup
    assert backup["F-2"]["status"] == "blocked"
    assert backup["F-3"]["status"] == "active"
    assert "sergio" in par.backup.users()
    pair = r.json()["backups"][0]
    assert [f["chave"] for f in pair["falhas"]] == ["F-1"]
    assert "Erro interno: banco travado" in pair["falhas"][0]["mensagem"]
    assert "500" in pair["falhas"][0]["mensagem"]
    assert pair["contagens"]["falhas"] == 1
    assert pair["contagens"]["licencas_criadas"] == 2
    assert pair["paridade"]["ok"] is False and pair["paridade"]["diferentes"] == ["F-1"]
    assert r.json()["codigo_saida"] == 1

    # relatório humano: a falha com a mensagem do servidor (agora um 400)
    par.backup.fail_next("POST", "/admin/devices/create", 400, {"error": "Tipo de licença inválido."})
    r2 = par.rodar()
    assert r2.codigo == 1
    linha = next(ln for ln in r2.stdout.splitlines() if "❌" in ln and "F-1" in ln)
    assert "Tipo de licença inválido." in linha
    assert "F-1" not in par.backup.devices()

    # sem falha injetada: completa e sai com 0
    r3 = par.rodar()
    assert r3.codigo == 0, r3.stdout
    assert "F-1" in par.backup.devices()
    conferir_paridade(par.principal, par.backup)


def test_falha_ao_criar_usuario_e_reportada_e_licencas_seguem(par):
    par.principal.add_user("aaa.primeiro", "senha-aaa-1234")
    par.principal.add_user("zzz.segundo", "senha-zzz-1234")
    par.principal.add_device("U-1", owner_name="Licença", created_by="aaa.primeiro")
    par.backup.fail_next("POST", "/admin/users/create", 400, {"error": "Senha deve ter no mínimo 6 caracteres."})
    r = par.rodar("--json", "--paralelo", "1")
    assert r.codigo == 1, r.stderr
    assert set(par.backup.users()) == {"zzz.segundo"}
    assert "U-1" in par.backup.devices()
    pair = r.json()["backups"][0]
    assert [(f["tipo"], f["chave"]) for f in pair["falhas"]] == [("criar_usuario", "aaa.primeiro")]
    assert "Senha deve ter no mínimo 6 caracteres." in pair["falhas"][0]["mensagem"]
    assert pair["contagens"]["usuarios_criados"] == 1
    # a senha da tentativa que falhou não vale para ninguém e não aparece na saída
    for linha in ler_credenciais(par.dados):
        assert linha[3] not in r.stdout + r.stderr


# ---------------------------------------------------------------------------
# Paridade de veredito, paralelismo e ordem
# ---------------------------------------------------------------------------

def test_veredito_igual_em_todas_as_licencas_nos_dois_backups(par_dois_backups):
    par = par_dois_backups
    semear_completo(par.principal, par.backups[0])  # o segundo backup começa vazio
    r = par.rodar("--json")
    assert r.codigo == 0, r.stderr
    esperados = {"L-NOVA": True, "L-BLOQ": False, "L-PEND": False, "L-VIT": True, "L-IGUAL": True,
                 "L-DIF": True, "L-VENC": False, "L-RENOV": True, "L-DESBLOQ": True}
    assert par.principal.vereditos() == esperados
    for backup in par.backups:
        conferir_paridade(par.principal, backup)
        v = backup.vereditos()
        assert {k: v[k] for k in esperados} == esperados
        assert par_do_doc(r.json(), backup.url)["paridade"]["ok"] is True


def _semear_muitos(principal, backup) -> None:
    hoje = principal.today()
    passado = (hoje - dt.timedelta(days=10)).isoformat()
    for i in range(6):
        principal.add_user(f"revenda{i:02d}", f"senha-revenda-{i:02d}", email=f"r{i}@exemplo.com",
                           role="admin" if i % 3 == 0 else "user")
    for i in range(40):
        chave = f"M-{i:03d}"
        status = ("active", "blocked", "pending", "active")[i % 4]
        principal.add_device(chave, license_type=("mensal", "anual", "vitalicia", "trimestral")[i % 4],
                             owner_name=f"Cliente {i} Ação", cpf=f"{i:011d}", created_by=f"revenda{i % 6:02d}",
                             status=status)
        if i % 5 == 0 and i % 4 != 2:  # vencida no principal (vitalícia não vence)
            principal.set_dates(chave, "2020-01-01", passado)
        if i % 3 == 0:  # já existe no backup, com endereço diferente
            backup.add_device(chave, license_type=("mensal", "anual", "vitalicia", "trimestral")[i % 4],
                              owner_name=f"Cliente {i} Ação", cpf=f"{i:011d}", address="antigo",
                              created_by=f"revenda{i % 6:02d}")


def test_paralelo_1_e_8_dao_o_mesmo_estado_final_e_o_mesmo_json(par, tmp_path):
    segundo_dir = tmp_path / "segundo"
    segundo_dir.mkdir()
    outro = Par(segundo_dir)
    try:
        _semear_muitos(par.principal, par.backup)
        _semear_muitos(outro.principal, outro.backup)
        r1 = par.rodar("--json", "--paralelo", "1")
        r8 = outro.rodar("--json", "--paralelo", "8")
        assert r1.codigo == 0 and r8.codigo == 0, (r1.stderr, r8.stderr)

        assert {k: sem_id(v) for k, v in par.backup.devices().items()} == \
            {k: sem_id(v) for k, v in outro.backup.devices().items()}
        usuarios = lambda s: {k: (u["email"], u["role"]) for k, u in s.users().items()}  # noqa: E731
        assert usuarios(par.backup) == usuarios(outro.backup) == usuarios(par.principal)
        assert par.backup.counts == outro.backup.counts

        def essencial(doc):
            pair = doc["backups"][0]
            return ([(a["tipo"], a["chave"], a["motivo"], a["ok"], a["mudancas"]) for a in pair["acoes"]],
                    pair["contagens"], pair["divergencias"], pair["paridade"])
        assert essencial(r1.json()) == essencial(r8.json())

        # ordenado: usuários (por nome) e depois licenças (por device_id), upsert antes do status
        acoes = r8.json()["backups"][0]["acoes"]
        usuarios_acoes = [a["chave"] for a in acoes if a["tipo"] == "criar_usuario"]
        licencas_acoes = [a for a in acoes if a["tipo"] != "criar_usuario"]
        assert acoes[:len(usuarios_acoes)] == [a for a in acoes if a["tipo"] == "criar_usuario"]
        assert usuarios_acoes == sorted(usuarios_acoes)
        chaves = [a["chave"] for a in licencas_acoes]
        assert chaves == sorted(chaves)
        for i, a in enumerate(licencas_acoes[1:], 1):
            if a["chave"] == licencas_acoes[i - 1]["chave"]:
                assert a["tipo"] in ("bloquear", "ativar")
        conferir_paridade(par.principal, par.backup)
        conferir_paridade(outro.principal, outro.backup)
    finally:
        outro.parar()


def test_mudanca_de_status_vem_depois_da_criacao_da_mesma_licenca(par):
    n_novas, n_existentes = 16, 8
    for i in range(n_novas):
        par.principal.add_device(f"N-{i:02d}", owner_name=f"Nova {i}", status="blocked", created_by="sergio")
    for i in range(n_existentes):
        # existe no backup com dados diferentes: upsert (que desbloqueia) e só então o bloqueio
        par.principal.add_device(f"E-{i:02d}", owner_name=f"Existente {i}", status="blocked", created_by="sergio")
        par.backup.add_device(f"E-{i:02d}", owner_name=f"Existente {i} (antigo)", created_by="sergio")
    r = par.rodar("--paralelo", "8")
    assert r.codigo == 0, r.stdout + r.stderr
    log = [(m, t, s) for m, t, s in par.backup.requests_log if (m, t) in (UPSERT, STATUS)]
    assert sum(1 for m, t, _ in log if (m, t) == UPSERT) == n_novas + n_existentes
    assert sum(1 for m, t, _ in log if (m, t) == STATUS) == n_novas + n_existentes
    # um bloqueio antes da criação da mesma licença daria 404; em qualquer prefixo do registro,
    # não pode haver mais bloqueios que upserts
    upserts = bloqueios = 0
    for m, t, s in log:
        if (m, t) == UPSERT:
            upserts += 1
        else:
            bloqueios += 1
            assert s == 200, "bloqueio chegou antes da criação (404)"
        assert bloqueios <= upserts
    # um upsert depois do bloqueio da mesma licença a deixaria ativa
    assert all(dev["status"] == "blocked" for dev in par.backup.devices().values())
    assert len(par.backup.devices()) == n_novas + n_existentes
    # keep-alive e paralelismo limitado: no máximo 8 conexões de escrita (+1 das leituras)
    assert par.backup.connections_accepted <= 9


# ---------------------------------------------------------------------------
# Demonstração
# ---------------------------------------------------------------------------

def test_demo_roda_sozinha_e_a_segunda_execucao_nao_escreve(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SERVIDOR_", "ADMIN_", "PRINCIPAL_", "BACKUP_", "SYNC_", "DADOS_DIR"))}
    env["PYTHONIOENCODING"] = "utf-8"
    # processo=True: a demonstração como o usuário a roda, num Python novo (ela carrega o servidor de referência
    # pelo caminho, e no processo do pytest ele já está importado)
    r = rodar_script("demo", env=env, cwd=tmp_path, timeout=60, processo=True)
    assert r.codigo == 0, r.stdout + r.stderr
    assert "Escritas no backup durante a segunda execução: 0" in r.stdout
    assert "DIFERENTE" not in r.stdout
    assert list(tmp_path.iterdir()) == [], "a demo não deve deixar arquivos na pasta atual"


# ---------------------------------------------------------------------------
# Bugs encontrados (regressões, já corrigidos)
# ---------------------------------------------------------------------------

def test_device_id_com_espacos_nas_pontas_nunca_e_liberado_no_backup(par):
    """' PAD-7 ' no principal é inalcançável (o /verify tira os espaços do id e não o acha: nega). Copiá-lo
    'aparado' liberaria no backup o que o principal nega: ele é relatado e nunca criado; uma cópia
    aparada que já estava liberada no backup (ferramentas antigas) é bloqueada."""
    par.principal.add_device(" PAD-7 ", owner_name="Padaria", created_by="sergio")
    par.principal.add_device(" PAD-8", owner_name="Padaria 2", created_by="sergio")
    par.principal.add_device("OK-1", owner_name="Normal")
    par.backup.add_device("PAD-8", owner_name="Padaria 2", created_by="sergio")  # cópia aparada, liberada
    r = par.rodar("--json")
    assert r.codigo == 0, r.stdout + r.stderr
    backup = par.backup.devices()
    assert "PAD-7" not in backup and " PAD-7 " not in backup
    assert backup["PAD-8"]["status"] == "blocked"
    assert par.backup.veredito("OK-1") is True
    ignorados = {p["chave"]: p["motivo"] for p in r.json()["backups"][0]["registros_ignorados"]}
    assert ignorados == {" PAD-7 ": "inalcancavel", " PAD-8": "inalcancavel"}
    par.backup.reset_counts()
    assert par.rodar().codigo == 0
    assert par.backup.write_count() == 0


def test_username_com_espacos_nas_pontas_casa_com_o_criado_no_backup(par):
    """Regressão: ' ana ' no principal era criado como 'ana' e, na execução seguinte, o relatório dizia
    que ' ana ' fora apagado no backup (ou, antes do estado por par, recriava e gravava outra senha)."""
    par.principal.add_user(" ana ", "senha-da-ana-123", email="ana@exemplo.com")
    r = par.rodar()
    assert r.codigo == 0
    assert "ana" in par.backup.users()
    par.backup.reset_counts()
    r2 = par.rodar("--json")
    assert r2.codigo == 0
    assert par.backup.write_count() == 0
    pair = r2.json()["backups"][0]
    assert not any(a.get("nao_sincronizavel") for a in pair["acoes"])
    assert divergencias(pair, "username") == {}, "relata ' ana ' como apagado no backup"
    assert pair["so_no_backup"]["usuarios"] == [], "relata 'ana' como só no backup"


def test_arquivo_de_credenciais_tem_uma_linha_por_usuario_criado(par):
    """Regressão: o arquivo lido de novo no segundo registro da mesma execução duplicava as linhas."""
    for nome in ("aaa", "bbb", "ccc"):
        par.principal.add_user(nome, f"senha-{nome}-123")
    r = par.rodar("--paralelo", "1")
    assert r.codigo == 0
    linhas = ler_credenciais(par.dados)
    assert sorted(linha[2] for linha in linhas) == ["aaa", "bbb", "ccc"]
    assert all(linha[4] == "criado" for linha in linhas)


# ---------------------------------------------------------------------------
# Estado e exclusões (unidirecional)
# ---------------------------------------------------------------------------

def test_execucao_sem_escritas_grava_o_estado_e_o_unidirecional_bloqueia_o_apagado(par):
    semear_iguais(par, ["L1", "L2", "L3"])
    assert par.rodar("--json").codigo == 0
    par.principal.remove_device("L2")
    r = par.rodar("--json")
    assert r.codigo == 0 and par.backup.veredito("L2") is False


# ---------------------------------------------------------------------------
# Licença apagada no principal e created_by
# ---------------------------------------------------------------------------

def test_licenca_apagada_no_principal_e_bloqueada_no_backup_e_nunca_sincronizada_e_avisada(par):
    par.principal.add_device("X-1")
    par.principal.add_device("X-2")
    assert par.rodar().codigo == 0
    par.principal.remove_device("X-1")
    par.backup.add_device("SO-NO-BACKUP", owner_name="Cadastrada só no backup")
    r = par.rodar("--json")
    assert r.codigo == 1  # liberada só no backup (venda feita lá?) nunca sai com 0
    pair = r.json()["backups"][0]
    assert par.backup.devices()["X-1"]["status"] == "blocked"  # apagada no principal: nega igual
    assert par.backup.devices()["SO-NO-BACKUP"]["status"] == "active"  # nunca sincronizada: deixada como está
    assert pair["so_no_backup"]["licencas_liberadas"] == ["SO-NO-BACKUP"]
    texto = par.rodar("--simular").stdout
    assert "LIBERADA" in texto and "SO-NO-BACKUP" in texto
    # Depois, no bidirecional, o bloqueio feito pela ferramenta não vira "mudança do backup":
    r = par.rodar("--bidirecional", "--json")
    doc = r.json()["backups"][0]
    assert doc["conflitos"] == [] and "X-1" not in par.backup.devices() and "X-1" not in par.principal.devices()


def test_so_created_by_diferente_usa_o_endpoint_proprio(par):
    par.principal.add_device("CB-1", created_by="sergio", status="blocked")
    par.backup.add_device("CB-1", created_by="admin", status="blocked", start_date="2026-01-01",
                          end_date="2027-01-01")
    par.backup.reset_counts()
    r = par.rodar()
    assert r.codigo == 0
    escritas = {k: v for k, v in par.backup.counts.items() if k[0] in ("POST", "DELETE") and k[1] != "/admin/login"}
    assert escritas == {("POST", "/admin/devices/update-created-by"): 1}
    dev = par.backup.devices()["CB-1"]
    assert (dev["created_by"], dev["status"], dev["start_date"], dev["end_date"]) == \
        ("sergio", "blocked", "2026-01-01", "2027-01-01")
