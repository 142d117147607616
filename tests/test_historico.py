"""Histórico (SQLite em DADOS_DIR), subcomandos historico e verificar, contra servidores reais."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import SCRIPT


def linhas(par):
    con = sqlite3.connect(par.dados / "historico.sqlite3")
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM execucoes ORDER BY id")], \
            [dict(r) for r in con.execute("SELECT * FROM auditoria ORDER BY id")]
    finally:
        con.close()


def test_historico_registra_execucoes_e_auditoria(par):
    par.principal.add_device("H-1", owner_name="Ana")
    par.principal.add_device("H-2", status="blocked")
    assert par.rodar().codigo == 0
    assert par.rodar().codigo == 0
    execucoes, auditoria = linhas(par)
    assert [e["situacao"] for e in execucoes] == ["ok", "ok"]
    assert json.loads(execucoes[0]["contagens"])["licencas_criadas"] == 2
    assert json.loads(execucoes[1]["contagens"])["licencas_criadas"] == 0
    assert execucoes[0]["paridade_ok"] == 1 and execucoes[0]["paridade_total"] == 2
    assert sorted((a["chave"], a["id"], a["acao"], a["ok"]) for a in auditoria)[0][0] == "H-1"
    assert [(a["chave"], a["acao"], a["ok"]) for a in sorted(auditoria, key=lambda a: (a["chave"], a["id"]))] == [
        ("H-1", "criar_licenca", 1), ("H-2", "criar_licenca", 1), ("H-2", "bloquear", 1)]
    mudancas = json.loads(next(a for a in auditoria if a["chave"] == "H-1")["mudancas"])
    assert ["owner_name", None, "Ana"] in mudancas

    r = par.rodar("historico", "--json")
    assert r.codigo == 0
    dados = r.json()
    assert len(dados["execucoes"]) == 2 and dados["execucoes"][0]["id"] > dados["execucoes"][1]["id"]
    r = par.rodar("historico", "--detalhes", execucoes[0]["execucao"])
    assert r.codigo == 0 and "H-2" in r.stdout and "bloquear" in r.stdout
    r = par.rodar("historico")
    assert r.codigo == 0 and "Situação" in r.stdout and execucoes[1]["execucao"] in r.stdout


def test_historico_registra_falha(par):
    par.principal.add_device("H-1")
    par.backup.stop()
    assert par.rodar().codigo == 4
    execucoes, auditoria = linhas(par)
    assert execucoes[-1]["situacao"] == "erro" and execucoes[-1]["codigo_saida"] == 4
    assert execucoes[-1]["erro"] and auditoria == []


@pytest.mark.skipif(os.name != "posix", reason="kill -9 (SIGKILL) só existe em POSIX")
def test_execucao_morta_fica_como_interrompida(par):
    for i in range(300):
        par.principal.add_device(f"K-{i:04d}")
    par.backup.set_faults(latency_ms=20)
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--paralelo", "1"], env=par.ambiente(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    inicio = time.monotonic()
    while par.backup.write_count() < 80 and time.monotonic() - inicio < 30:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    par.backup.clear_faults()
    assert par.rodar().codigo == 0
    execucoes, auditoria = linhas(par)
    assert [e["situacao"] for e in execucoes] == ["interrompida", "ok"]
    assert len({a["execucao"] for a in auditoria}) == 2  # a auditoria da morta ficou gravada


def test_retencao_apaga_execucoes_antigas(par):
    par.principal.add_device("R-1")
    assert par.rodar().codigo == 0
    con = sqlite3.connect(par.dados / "historico.sqlite3")
    velho = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=40)).isoformat()
    with con:
        con.execute("UPDATE execucoes SET inicio = ?", (velho,))
    con.close()
    assert par.rodar(SYNC_HISTORICO_DIAS="30").codigo == 0
    execucoes, auditoria = linhas(par)
    assert len(execucoes) == 1 and execucoes[0]["inicio"] > velho
    assert all(a["execucao"] == execucoes[0]["execucao"] for a in auditoria)


def test_verificar_codigos_e_zero_escritas(par):
    par.principal.add_user("ana", "senha-da-ana")
    par.principal.add_device("V-1", status="blocked")
    par.backup.reset_counts()
    r = par.rodar("verificar", "--json")
    assert r.codigo == 1
    doc = r.json()
    assert doc["modo"] == "verificacao" and doc["backups"][0]["pendencias"] == 3
    assert par.backup.write_count() == 0 and par.principal.write_count() == 0
    assert not (par.dados / "historico.sqlite3").exists()  # verificar não grava nada, nem localmente
    assert par.rodar().codigo == 0
    par.backup.reset_counts()
    r = par.rodar("verificar")
    assert r.codigo == 0 and "em dia" in r.stdout
    assert par.backup.write_count() == 0
    # Alguém desbloqueia direto no backup: o veredito diverge e verificar acusa.
    par.backup.set_status("V-1", "active")
    r = par.rodar("verificar", "--json")
    assert r.codigo == 1 and r.json()["backups"][0]["paridade_antes"]["diferentes"] == ["V-1"]
    assert par.backup.write_count() == 0
