"""Sinais de parada (Ctrl+C = SIGINT, SIGTERM do systemd/kill/agendador) no meio das escritas, com o script
como processo filho e servidores de referência reais: a sequência em andamento termina (criar → bloquear
nunca deixa a licença liberada no backup), o que os servidores confirmaram é contado e registrado, e a
execução sai com 130 (Ctrl+C) ou 143 (SIGTERM). Rodar de novo completa sem repetir nada."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from apoio import ARTEFATOS, WRAPPER, comando_script, ctrl_c_no_padrao

pytestmark = pytest.mark.skipif(os.name != "posix", reason="envio de SIGTERM/SIGINT a um filho só em POSIX")

CODIGOS = {"SIGTERM": 143, "SIGINT": 130}
TOTAL = 30  # licenças bloqueadas no principal: cada uma é uma sequência criar → bloquear no backup


def _semear_bloqueadas(par, total: int = TOTAL) -> list[str]:
    chaves = [f"SIG-{i:03d}" for i in range(total)]
    for chave in chaves:
        par.principal.add_device(chave, owner_name=f"Cliente {chave}", status="blocked")
    return chaves


def _iniciar(par, *args: str, comando: list[str] | None = None, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(comando or comando_script("--sem-progresso", *args),
                            env=par.ambiente(**extra), cwd=par.tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", **ctrl_c_no_padrao())


def _sinal_no_meio(proc: subprocess.Popen, pausa, sinal: int) -> tuple[str, str]:
    """Espera a escrita segura no servidor, manda o sinal ao filho e só então solta a escrita."""
    fim = time.monotonic() + 30
    while not pausa.chegou.wait(0.05):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < fim, "a execução não chegou à escrita pausada"
    proc.send_signal(sinal)
    time.sleep(0.5)  # o tratador roda na hora (a thread principal está esperando a resposta)
    pausa.liberar()
    out, err = proc.communicate(timeout=60)
    ARTEFATOS.mkdir(exist_ok=True)
    with open(ARTEFATOS / "saidas_dos_testes.log", "a", encoding="utf-8") as log:
        log.write(f"$ (sinal {sinal} no meio) → {proc.returncode}\n{out}\n{err}\n")
    return out, err


def _historico(par) -> list[dict]:
    con = sqlite3.connect(par.dados / "historico.sqlite3")
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM execucoes ORDER BY id")]
    finally:
        con.close()


def _liberadas_so_no_backup(par) -> list[str]:
    """Licenças que o backup libera e o principal nega (o que nunca pode acontecer)."""
    principal = par.principal.vereditos()
    return sorted(k for k, liberada in par.backup.vereditos().items() if liberada and not principal.get(k))


@pytest.mark.parametrize("nome", ["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("paralelo", ["1", "4"])
def test_sinal_no_meio_da_sequencia_termina_a_sequencia_e_sai_com_o_codigo_do_sinal(par, nome, paralelo):
    _semear_bloqueadas(par)
    # a 10ª criação no backup fica segura DEPOIS de gravada: a licença existe lá, liberada, e o bloqueio
    # dela ainda não foi pedido quando o sinal chega
    pausa = par.backup.pausar("POST", "/admin/devices/create", skip=9)
    proc = _iniciar(par, "--paralelo", paralelo)
    out, err = _sinal_no_meio(proc, pausa, getattr(signal, nome))

    assert proc.returncode == CODIGOS[nome], out[-3000:] + err[-2000:]
    assert "Traceback" not in out + err
    assert _liberadas_so_no_backup(par) == []  # a sequência no meio terminou: criada e bloqueada
    criadas = set(par.backup.devices())
    assert 10 <= len(criadas) < TOTAL  # parou de verdade, sem começar todas
    # contado pelo que os servidores confirmaram: o mesmo número que o backup recebeu
    escritas_no_servidor = par.backup.write_count()
    assert escritas_no_servidor == 2 * len(criadas)
    achado = re.search(r"Antes de parar: (\d+) escritas? confirmadas?", out)
    assert achado and int(achado.group(1)) == escritas_no_servidor, out[-3000:]
    assert f"{TOTAL * 2 - escritas_no_servidor} escritas por fazer" in out
    assert "Rode a sincronização de novo para completar" in out
    assert f"Código de saída: {CODIGOS[nome]}" in out

    linha = _historico(par)[-1]
    assert linha["situacao"] == "interrompida" and linha["codigo_saida"] == CODIGOS[nome]
    contagens = json.loads(linha["contagens"])
    assert contagens["licencas_criadas"] == contagens["licencas_bloqueadas"] == len(criadas)
    detalhes = par.rodar("historico", "--detalhes", str(linha["id"]))
    assert f"mudanças: backup {escritas_no_servidor}" in detalhes.stdout and "nenhuma" not in detalhes.stdout
    ultima = json.loads((par.dados / "ultima_execucao.json").read_text(encoding="utf-8"))
    assert ultima["codigo_saida"] == CODIGOS[nome]
    assert ultima["servidores"][1]["escritas"]["backup"] == escritas_no_servidor

    # rodar de novo completa, sem repetir o que já foi feito
    par.backup.reset_counts()
    r = par.rodar()
    assert r.codigo == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert par.backup.write_count() == 2 * (TOTAL - len(criadas))
    assert set(par.backup.devices()) == set(par.principal.devices())
    assert par.backup.vereditos() == par.principal.vereditos()


def test_sigterm_no_meio_com_json_conta_as_escritas_confirmadas(par):
    _semear_bloqueadas(par)
    pausa = par.backup.pausar("POST", "/admin/devices/<id>/deactivate", skip=4)  # o 5º bloqueio
    proc = _iniciar(par, "--json", "--paralelo", "1")
    out, err = _sinal_no_meio(proc, pausa, signal.SIGTERM)
    assert proc.returncode == 143, err[-2000:]
    doc = json.loads(out)
    assert doc["codigo_saida"] == 143 and "SIGTERM" in doc["significado"]
    par_doc = doc["backups"][0]
    assert par_doc["situacao"] == "interrompida"
    assert par_doc["contagens"]["escritas"]["backup"] == par.backup.write_count() == 10
    assert par_doc["interrompida"] == {"sinal": "SIGTERM", "escritas_confirmadas": 10, "por_fazer": 2 * TOTAL - 10}
    assert "rode de novo para completar" in par_doc["erro"]
    assert _liberadas_so_no_backup(par) == []


def test_sigterm_antes_das_escritas_para_na_hora_sem_gravar(par):
    _semear_bloqueadas(par, 3)
    pausa = par.backup.pausar("GET", "/admin/devices", when="before")  # a leitura do backup fica segura
    proc = _iniciar(par)
    out, err = _sinal_no_meio(proc, pausa, signal.SIGTERM)
    assert proc.returncode == 143, out[-2000:] + err[-2000:]
    assert "nada foi gravado" in err and "Traceback" not in err
    assert par.backup.write_count() == 0


@pytest.mark.timeout(90)
def test_sigterm_no_agendador_chega_ao_filho_e_sai_com_143(par):
    _semear_bloqueadas(par)
    pausa = par.backup.pausar("POST", "/admin/devices/create", skip=9)
    proc = _iniciar(par, comando=[sys.executable, str(WRAPPER), "--", "--sem-progresso", "--paralelo", "1"],
                    SYNC_ESPERA_INICIAL="0.1")
    out, err = _sinal_no_meio(proc, pausa, signal.SIGTERM)
    assert proc.returncode == 143, out[-3000:] + err[-2000:]
    assert "Traceback" not in out + err
    assert _liberadas_so_no_backup(par) == []  # o filho recebeu o sinal e terminou a sequência
    linha = _historico(par)[-1]
    assert linha["situacao"] == "interrompida" and linha["codigo_saida"] == 143
    assert json.loads(linha["contagens"])["licencas_bloqueadas"] * 2 == par.backup.write_count()
    log = (par.dados / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert "encerrado por um sinal do sistema" in log and "código de saída 143" in log


def test_sigterm_no_bidirecional_e_a_seguinte_completa_sem_conflito(par):
    par.principal.add_device("BASE-1", owner_name="Base")
    assert par.rodar("--bidirecional").codigo == 0
    _semear_bloqueadas(par)
    for i in range(5):  # novidades do backup, que vão para o principal antes
        par.backup.add_device(f"DO-BACKUP-{i}", owner_name=f"Venda no backup {i}", created_by="sergio")
    par.backup.reset_counts()
    pausa = par.backup.pausar("POST", "/admin/devices/create", skip=5)
    proc = _iniciar(par, "--bidirecional", "--paralelo", "2")
    out, err = _sinal_no_meio(proc, pausa, signal.SIGTERM)
    assert proc.returncode == 143, out[-3000:] + err[-2000:]
    assert _liberadas_so_no_backup(par) == []
    assert {f"DO-BACKUP-{i}" for i in range(5)} <= set(par.principal.devices())  # o lado principal foi antes

    r = par.rodar("--bidirecional", "--json")
    assert r.codigo == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert r.json()["backups"][0]["conflitos"] == []
    assert set(par.backup.devices()) == set(par.principal.devices())
    assert par.backup.vereditos() == par.principal.vereditos()


@pytest.mark.parametrize("nome", ["SIGTERM", "SIGINT"])
def test_sinal_na_espera_do_despertar_para_na_hora_sem_esperar_o_limite(par, nome):
    """Backup dormindo (503 em /health, limite de 120 s): o sinal para a execução em segundos, não no fim
    da espera, com o código do sinal e sem gravar nada."""
    _semear_bloqueadas(par, 2)
    par.backup.override("GET", "/health", 503, "<html>503 acordando</html>", content_type="text/html")
    proc = _iniciar(par, SYNC_ESPERA_DESPERTAR="120")
    fim = time.monotonic() + 30
    while par.backup.counts[("GET", "/health")] < 2:  # já está no laço de espera
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < fim, "a execução não chegou à espera do despertar"
        time.sleep(0.05)
    enviado = time.monotonic()
    proc.send_signal(getattr(signal, nome))
    out, err = proc.communicate(timeout=60)
    duracao = time.monotonic() - enviado
    assert proc.returncode == CODIGOS[nome], out[-2000:] + err[-2000:]
    assert duracao < 5, f"esperou {duracao:.1f} s depois do sinal (a espera do despertar não parou)"
    assert "Traceback" not in out + err and "nada foi gravado" in err, err[-2000:]
    assert par.backup.write_count() == 0 and par.principal.write_count() == 0


@pytest.mark.timeout(90)
@pytest.mark.parametrize("rota", ["/admin/devices", "/admin/login"])
def test_sigterm_com_pedido_pendurado_antes_das_escritas_sai_em_2_s(par, rota):
    """Um pedido que não responde (leitura ou login; SYNC_TIMEOUT de 30 s) quando o SIGTERM chega: nada foi
    gravado, então a execução sai em até 2 s, sem esperar o pedido (antes: esperava o tempo limite dele)."""
    _semear_bloqueadas(par, 3)
    metodo = "POST" if rota == "/admin/login" else "GET"
    pausa = par.backup.pausar(metodo, rota, when="before")
    proc = _iniciar(par, SYNC_TIMEOUT="30", SYNC_TENTATIVAS_HTTP="0")
    try:
        fim = time.monotonic() + 30
        while not pausa.chegou.wait(0.05):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < fim, "a execução não chegou ao pedido pendurado"
        time.sleep(0.3)
        enviado = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        duracao = time.monotonic() - enviado
    finally:
        pausa.liberar()
    assert proc.returncode == 143, out[-2000:] + err[-2000:]
    assert duracao < 2, f"levou {duracao:.1f} s para parar depois do SIGTERM"
    assert "nada foi gravado" in err and "Traceback" not in out + err, err[-2000:]
    assert par.backup.write_count() == 0 and par.principal.write_count() == 0
