"""O agendador (sincronizar_automatico.py) com o sincronizar_bancos.py de verdade e servidores reais."""

from __future__ import annotations

import json
import subprocess
import sys

from filelock import FileLock

from conftest import RAIZ

WRAPPER = RAIZ / "sincronizar_automatico.py"


def rodar_wrapper(par, *args, **extra):
    env = par.ambiente(SYNC_ESPERA_INICIAL="0.1", **extra)
    return subprocess.run([sys.executable, str(WRAPPER), *args], env=env, cwd=par.tmp_path, capture_output=True,
                          text=True, encoding="utf-8", timeout=180)


def test_sincronizacao_real_pelo_agendador(par):
    par.principal.add_device("W-1", owner_name="Mercearia São Jorge")
    par.principal.add_device("W-2", status="blocked")
    r = rodar_wrapper(par)
    assert r.returncode == 0, r.stdout + r.stderr
    assert par.backup.devices()["W-2"]["status"] == "blocked"
    log = (par.dados / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert log.count("INÍCIO") == 1 and log.count("FIM") == 1
    assert par.senha_principal not in log and par.senhas_backup not in log
    ultima = json.loads((par.dados / "ultima_execucao.json").read_text(encoding="utf-8"))
    assert ultima["codigo_saida"] == 0 and [s["papel"] for s in ultima["servidores"]] == ["principal", "backup"]


def test_trava_ocupada_nao_e_repetida(par):
    par.dados.mkdir(parents=True)
    with FileLock(str(par.dados / "sincronizacao.lock")):
        r = rodar_wrapper(par, "--tentativas", "3")
    assert r.returncode == 3
    log = (par.dados / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert log.count("tentativa 1 de 3") == 1 and "tentativa 2 de 3" not in log
    assert par.backup.write_count() == 0


def test_backup_fora_do_ar_e_repetido_e_termina_com_4(par):
    par.principal.add_device("W-1")
    par.backup.stop()
    r = rodar_wrapper(par, "--tentativas", "2", SYNC_ESPERA_DESPERTAR="1")
    assert r.returncode == 4
    log = (par.dados / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert "tentativa 2 de 2" in log
    ultima = json.loads((par.dados / "ultima_execucao.json").read_text(encoding="utf-8"))
    backup = next(s for s in ultima["servidores"] if s["papel"] == "backup")
    assert backup["ok"] is False and backup["erro"]
