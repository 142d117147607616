"""O agendador (sincronizar_automatico.py) com o sincronizar_bancos.py de verdade e servidores reais."""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

from apoio import SCRIPT, WRAPPER, ServidorStub, enviar, rodar_python, rodar_wrapper, texto_anotado


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


def test_credencial_errada_nao_e_repetida(par):
    """Código 2 (configuração/credenciais) não se resolve repetindo: uma tentativa só."""
    env_errado = {"BACKUP_ADMIN_PASSWORD": "senha-errada-" + par.senhas_backup[:6]}
    direto = par.rodar(**env_errado)
    assert direto.codigo == 2
    logins_de_uma_execucao = par.backup.counts[("POST", "/admin/login")]
    assert logins_de_uma_execucao >= 1
    par.backup.reset_counts()
    r = rodar_wrapper(par, "--tentativas", "3", **env_errado)
    assert r.returncode == 2, r.stdout + r.stderr
    assert par.backup.counts[("POST", "/admin/login")] == logins_de_uma_execucao
    log = (par.dados / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert "tentativa 2 de 3" not in log and "código 2 não se resolve repetindo" in log


# ---------------------------------------------------------------------------
# Aviso por webhook com servidores de verdade
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def receptor_de_avisos():
    """Recebe os avisos (POST com JSON) e devolve a URL e a lista dos avisos já lidos."""
    recebidos = []
    with ServidorStub({("POST", "/aviso"): lambda h: (recebidos.append(json.loads(h.corpo.decode("utf-8"))),
                                                      enviar(h, 204))}) as stub:
        yield f"{stub.url}/aviso", recebidos


def test_aviso_nomeia_o_backup_que_falhou_e_nao_o_principal(par_dois_backups):
    par = par_dois_backups
    par.principal.add_device("W-1")
    fora, dentro = par.backups[1], par.backups[0]
    fora.stop()
    with receptor_de_avisos() as (url, recebidos):
        r = rodar_wrapper(par, "--tentativas", "1", SYNC_ESPERA_DESPERTAR="1", SYNC_WEBHOOK_URL=url)
    assert r.returncode == 4, r.stdout + r.stderr
    assert len(recebidos) == 1
    aviso = recebidos[0]
    assert [(s["papel"], s["url"]) for s in aviso["falhas"]] == [("backup", fora.url)]
    assert {s["url"]: s["ok"] for s in aviso["servidores"]} == {par.principal.url: True, dentro.url: True,
                                                                fora.url: False}
    com_falha = next(ln for ln in aviso["text"].splitlines() if ln.startswith("Com falha:"))
    assert fora.url in com_falha and par.principal.url not in com_falha and dentro.url not in com_falha
    assert dentro.devices()["W-1"]  # o backup que estava no ar foi sincronizado


# ---------------------------------------------------------------------------
# Contrato: os dois scripts resolvem DADOS_DIR do mesmo jeito
# ---------------------------------------------------------------------------

# (forma, DADOS_DIR no ambiente (None = ausente), DADOS_DIR no .env (None = sem linha), pasta esperada)
FORMAS_DADOS_DIR = [
    ("absoluto", "{tmp}/absoluto", None, "{tmp}/absoluto"),
    ("relativo", "rel/dados", None, "{proj}/rel/dados"),
    ("til", "~/dados_sinc", None, "{casa}/dados_sinc"),
    ("vazio-usa-o-env", "", "do_env", "{proj}/do_env"),
    ("ambiente-vence-o-env", "{tmp}/venceu", "do_env", "{tmp}/venceu"),
    ("so-no-env-com-til", None, "~/do_env_til", "{casa}/do_env_til"),
    ("nenhum", None, None, "{proj}/dados"),
]


@pytest.mark.parametrize("forma,no_ambiente,no_env,esperada", FORMAS_DADOS_DIR, ids=[f[0] for f in FORMAS_DADOS_DIR])
def test_contrato_dados_dir_igual_nos_dois_scripts(par, forma, no_ambiente, no_env, esperada):
    tmp = par.tmp_path
    proj, casa, outra = tmp / "proj", tmp / "casa", tmp / "outra_pasta"
    for pasta in (proj, casa, outra):
        pasta.mkdir()
    for arquivo in (SCRIPT, WRAPPER):  # instalados juntos, como o usuário faz
        shutil.copy(arquivo, proj / arquivo.name)
    valores = {"tmp": str(tmp), "proj": str(proj), "casa": str(casa)}
    if no_env is not None:
        (proj / ".env").write_text(f"DADOS_DIR={no_env}\n", encoding="utf-8")
    env = par.ambiente(SYNC_ESPERA_INICIAL="0.1", HOME=str(casa), USERPROFILE=str(casa))
    env.pop("DADOS_DIR")
    if no_ambiente is not None:
        env["DADOS_DIR"] = no_ambiente.format(**valores)
    alvo = Path(esperada.format(**valores))
    par.principal.add_device("C-1")

    # 1) O sincronizar_bancos.py sozinho, chamado de outra pasta.
    direto = texto_anotado(rodar_python(proj / SCRIPT.name, env=env, cwd=outra), "[cópia do script]")
    assert direto.returncode == 0, direto.stdout + direto.stderr
    assert (alvo / "ultima_execucao.json").is_file()
    (alvo / "ultima_execucao.json").unlink()

    # 2) O invólucro diz a mesma pasta...
    info = texto_anotado(rodar_python(proj / WRAPPER.name, "--informar", env=env, cwd=outra), "[agendador] --informar")
    assert info.returncode == 0, info.stderr
    assert Path(json.loads(info.stdout)["pasta_dados"]) == alvo

    # 3) ...e grava nela o log, enquanto o filho grava o resumo no mesmo lugar.
    r = texto_anotado(rodar_python(proj / WRAPPER.name, "--tentativas", "1", env=env, cwd=outra), "[agendador]")
    assert r.returncode == 0, r.stdout + r.stderr
    log = (alvo / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert f"pasta de dados {alvo} " in log
    assert "ausente ou desatualizado" not in log  # achou o resumo que o filho acabou de gravar
    assert (alvo / "ultima_execucao.json").is_file()

    # Nada fora da pasta esperada: nem na pasta de trabalho, nem uma pasta "~" literal.
    assert list(outra.iterdir()) == []
    assert not (proj / "~").exists()
    criadas = {p.name for p in proj.iterdir()} - {SCRIPT.name, WRAPPER.name, ".env", "__pycache__"}
    assert criadas == ({alvo.relative_to(proj).parts[0]} if alvo.is_relative_to(proj) else set())
