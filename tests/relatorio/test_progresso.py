"""Progresso ao vivo: aparece num terminal de verdade (pty) e some sob agendador, em pipe ou com --json."""

from __future__ import annotations

import os
import subprocess

import pytest

from apoio import comando_script

# Os dois testes precisam de um pseudo-terminal, que só existe em POSIX. No Windows o módulo pty nem
# importa (falta o termios): importorskip pula o arquivo em vez de derrubar a coleta da suíte inteira.
pty = pytest.importorskip("pty", reason="pty só existe em POSIX")


def rodar_com_terminal(par, *args: str, **extra: str) -> tuple[int, str, str]:
    """stderr ligado a um pseudo-terminal (isatty() verdadeiro), stdout num arquivo (um pipe cheio
    travaria o filho enquanto lemos o terminal)."""
    mestre, escravo = pty.openpty()
    with open(par.tmp_path / "stdout.txt", "w+", encoding="utf-8") as saida_arquivo:
        proc = subprocess.Popen(comando_script(*args), env=par.ambiente(**extra),
                                stdout=saida_arquivo, stderr=escravo)
        os.close(escravo)
        pedacos = []
        while True:
            try:
                dados = os.read(mestre, 4096)
            except OSError:  # o filho fechou o terminal
                break
            if not dados:
                break
            pedacos.append(dados)
        proc.wait(60)
        os.close(mestre)
        saida_arquivo.seek(0)
        saida = saida_arquivo.read()
    return proc.returncode, saida, b"".join(pedacos).decode("utf-8", "replace")


def test_contador_de_escritas_e_espera_do_servidor_no_terminal(par):
    for i in range(120):
        par.principal.add_device(f"PG-{i:03d}")
    par.backup.set_faults(sleep_first_seconds=11)
    codigo, saida, terminal = rodar_com_terminal(par, SYNC_ESPERA_DESPERTAR="30")
    assert codigo == 0, saida + terminal
    assert "licenças: 120/120" in terminal
    assert "aguardando o servidor acordar" in terminal and "10 s" in terminal
    assert "licenças: 120/120" not in saida  # o relatório (stdout) fica limpo


def test_sem_terminal_ou_com_json_nao_ha_progresso(par):
    for i in range(120):
        par.principal.add_device(f"PG-{i:03d}")
    r = par.rodar()
    assert r.codigo == 0 and "licenças: " not in r.stderr and "⏳" not in r.stderr
    for i in range(120):  # mais escritas, agora com terminal mas com --json
        par.principal.add_device(f"PJ-{i:03d}")
    codigo, saida, terminal = rodar_com_terminal(par, "--json")
    assert codigo == 0 and "licenças: " not in terminal and saida.lstrip().startswith("{")
    assert '"licencas_criadas": 120' in saida


def test_sem_terminal_uma_linha_de_progresso_a_cada_poucos_segundos(par):
    """Sob cron/systemd/arquivo de log (stderr num pipe): uma primeira sincronização longa mostra linhas inteiras
    com as contagens a cada 5 s; o relatório (stdout) não as tem."""
    for i in range(200):
        par.principal.add_device(f"PL-{i:03d}")
    par.backup.set_faults(latency_ms=40)  # um backup a 40 ms: ~10 s de escritas uma a uma
    r = par.rodar(SYNC_PARALELO="1")
    assert r.codigo == 0, r.stdout[-2000:] + r.stderr[-2000:]
    linhas = [linha for linha in r.stderr.splitlines() if "⏳ gravando licenças:" in linha]
    assert linhas, r.stderr[-2000:]
    assert all(" de 200 (" in linha and "\r" not in linha for linha in linhas), linhas
    assert "gravando" not in r.stdout
