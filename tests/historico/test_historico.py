"""Histórico (SQLite em DADOS_DIR), subcomandos historico e verificar, contra servidores reais."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from apoio import comando_script


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
    assert r.codigo == 0 and "H-2: bloqueada ✅" in r.stdout and "H-1: criada ✅" in r.stdout
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
    proc = subprocess.Popen(comando_script("--paralelo", "1"), env=par.ambiente(),
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


# --- historico: fuso local, escritas por lado, --detalhes por ID -------------------------------------------

FUSO = {"TZ": "<-03>3"} if os.name == "posix" else {}  # fuso POSIX fixo (sem tzdata): UTC-3


def zona_esperada() -> str:
    import sincronizar_bancos as sb
    return "-03" if FUSO else sb.zone_label(dt.datetime.now().astimezone())


def test_historico_em_horario_local_com_escritas_por_lado(par):
    par.principal.add_device("P-1")
    assert par.rodar().codigo == 0
    par.backup.add_device("B-1")
    par.principal.add_device("P-2")
    assert par.rodar("--bidirecional").codigo == 0
    execucoes = par.rodar("historico", "--json", **FUSO).json()["execucoes"]
    assert [e["modo"] for e in execucoes] == ["bidirecional", "unidirecional"]
    r = par.rodar("historico", **FUSO)
    assert r.codigo == 0
    inicio = dt.datetime.fromisoformat(execucoes[0]["inicio"]).astimezone()
    if FUSO:
        inicio = dt.datetime.fromisoformat(execucoes[0]["inicio"]) - dt.timedelta(hours=3)
    linha = next(li for li in r.stdout.splitlines() if li.strip().startswith(str(execucoes[0]["id"]) + " "))
    assert f"{inicio:%d/%m/%Y %H:%M} ({zona_esperada()})" in linha
    assert "bidirecional" in linha and "backup 1 · principal 1" in linha
    assert f"{par.principal.url} → {par.backup.url}" in r.stdout
    assert "backup 1 " in r.stdout.splitlines()[3] and "principal" not in r.stdout.splitlines()[3]

    r = par.rodar("historico", "--detalhes", execucoes[0]["execucao"], **FUSO)
    assert r.codigo == 0
    assert "mudanças: backup 1 · principal 1" in r.stdout
    assert "Auditoria: 2 escritas (1 no principal, 1 no backup)" in r.stdout
    assert f"principal {par.principal.url} B-1: criada ✅" in r.stdout
    assert f"({zona_esperada()}) backup {par.backup.url} P-2: criada ✅" in r.stdout


def test_historico_detalhes_pelo_id_e_id_desconhecido(par):
    par.principal.add_device("H-1")
    assert par.rodar().codigo == 0
    linha = par.rodar("historico", "--json").json()["execucoes"][0]
    r = par.rodar("historico", "--detalhes", str(linha["id"]))
    assert r.codigo == 0 and "Auditoria: 1 escrita (0 no principal, 1 no backup)" in r.stdout
    assert "0 falhas" in r.stdout and "H-1" in r.stdout
    r = par.rodar("historico", "--detalhes", str(linha["id"]), "--json")
    assert r.codigo == 0 and r.json()["execucao"] == linha["execucao"]
    assert [e["id"] for e in r.json()["execucoes"]] == [linha["id"]] and len(r.json()["auditoria"]) == 1
    for desconhecido in ("999", "20990101T000000-abcdef", "  "):
        for extra in ((), ("--json",)):
            r = par.rodar("historico", "--detalhes", desconhecido, *extra)
            assert r.codigo == 2, (desconhecido, r.stdout, r.stderr)
            assert "não encontrada no histórico" in r.stderr and "Traceback" not in r.stderr
            assert "escrita" not in r.stdout


def test_historico_travado_por_outro_programa_nao_impede_a_sincronizacao_e_o_registro_chega_depois(par):
    assert par.rodar().codigo == 0  # o histórico existe (uma execução antes)
    par.principal.add_device("T-1", owner_name="Travada")
    par.principal.add_device("T-2", status="blocked")
    outro = sqlite3.connect(par.dados / "historico.sqlite3", isolation_level=None)  # um navegador de SQLite
    try:
        outro.execute("BEGIN EXCLUSIVE")
        inicio = time.monotonic()
        r = par.rodar("--sem-progresso")
        duracao = time.monotonic() - inicio
        texto = r.stdout + r.stderr
        assert r.codigo == 0, texto
        assert "travado por outro programa" in texto and "guardado" in texto, texto
        assert duracao < 20, duracao  # antes: 40 s esperando e código 2, sem sincronizar
        assert {"T-1", "T-2"} <= set(par.backup.devices())  # sincronizou mesmo assim
        pendentes = list((par.dados / "historico-pendente").glob("*.json"))
        assert len(pendentes) == 1, texto
    finally:
        outro.rollback()
        outro.close()
    antes = {row["execucao"] for row in linhas(par)[0]}
    r = par.rodar("--sem-progresso")  # histórico livre: o registro guardado vai para ele
    assert r.codigo == 0, r.stdout + r.stderr
    execucoes, auditoria = linhas(par)
    guardada = pendentes[0].stem
    assert guardada not in antes and guardada in {row["execucao"] for row in execucoes}
    linha = next(row for row in execucoes if row["execucao"] == guardada)
    assert linha["situacao"] == "ok" and linha["codigo_saida"] == 0 and linha["fim"], linha
    assert {a["chave"] for a in auditoria if a["execucao"] == guardada} >= {"T-1", "T-2"}
    assert not pendentes[0].exists()
    h = par.rodar("historico", "--detalhes", guardada, "--json")
    assert h.codigo == 0, h.stdout + h.stderr


@pytest.mark.parametrize("falha", ["dormindo", "senha_errada"])
def test_duracao_de_execucao_que_falhou_depois_de_esperar_e_a_de_verdade(par, falha):
    """Uma execução que esperou o backup (3 s) e falhou: o histórico mostra a duração real, não "0,0 s"."""
    par.principal.add_device("D-1")
    if falha == "dormindo":  # 503 em /health até desistir da espera (código 4)
        par.backup.override("GET", "/health", 503, "<html>503 acordando</html>", content_type="text/html")
        r = par.rodar("--sem-progresso", SYNC_ESPERA_DESPERTAR="3")
        esperado = 4
    else:  # acorda depois de 3 s e recusa a senha (código 2, a execução para no login)
        par.backup.set_faults(sleep_first_seconds=3)
        r = par.rodar("--sem-progresso", SYNC_ESPERA_DESPERTAR="30", BACKUP_ADMIN_PASSWORD="senha-errada-123")
        esperado = 2
    assert r.codigo == esperado, r.stdout[-2000:] + r.stderr[-2000:]
    execucoes, _ = linhas(par)
    assert len(execucoes) == 1 and execucoes[0]["duracao_s"] >= 2.5, execucoes
    h = par.rodar("historico")
    assert h.codigo == 0 and " 0,0 s" not in h.stdout, h.stdout
