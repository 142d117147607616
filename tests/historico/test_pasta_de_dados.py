"""Pasta de dados (DADOS_DIR) que não aceita gravação: um tmpfs que enche DURANTE a execução e uma pasta
cheia ou somente leitura desde o início. Só Linux e root (montar um tmpfs); nos outros, os testes pulam."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apoio import conferir_convergencia, convergir, diferentes_no_oraculo, saida, sem_traceback, semear_licencas, \
    semear_usuarios

STATUS = ("POST", "/admin/devices/<id>/deactivate")


# ---------------------------------------------------------------------------
# tmpfs na pasta de dados
# ---------------------------------------------------------------------------

def _encher(pasta: Path) -> Path:
    """Grava um arquivo na pasta até o disco recusar (ENOSPC), em pedaços cada vez menores."""
    arquivo = pasta / "enchimento.bin"
    fd = os.open(arquivo, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        pedaco = 1 << 16
        while pedaco >= 1:
            try:
                os.write(fd, b"\0" * pedaco)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                pedaco //= 2
    finally:
        os.close(fd)
    return arquivo


@pytest.fixture
def tmpfs_dados(par):
    """Monta um tmpfs pequeno na pasta de dados do par (DADOS_DIR). Só Linux e root."""
    if not sys.platform.startswith("linux"):
        pytest.skip("tmpfs só existe no Linux")
    if os.geteuid() != 0:
        pytest.skip("montar um tmpfs exige root")
    par.dados.mkdir(parents=True, exist_ok=True)
    montado = []

    def montar(tamanho: str = "2m", somente_leitura: bool = False) -> Path:
        opcoes = f"size={tamanho},mode=0700" + (",ro" if somente_leitura else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opcoes, "tmpfs", str(par.dados)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"não foi possível montar um tmpfs em {par.dados}: {proc.stderr.strip()}")
        montado.append(par.dados)
        return par.dados
    yield montar
    for pasta in montado:
        subprocess.run(["umount", "-l", str(pasta)], capture_output=True)


def test_pasta_de_dados_enche_no_meio_e_nenhuma_sequencia_criar_bloquear_fica_pela_metade(par, tmpfs_dados):
    pasta = tmpfs_dados("2m")
    bloqueadas = [f"BLOQ-{i:02d}" for i in range(8)]
    for i, chave in enumerate(bloqueadas):
        par.principal.add_device(chave, license_type=("mensal", "anual", "vitalicia")[i % 3],
                                 owner_name=f"Cliente {i} — São José", status="blocked")
    semear_licencas(par.principal, 4, prefixo="ATIVA")
    enchimentos = []
    par.backup.on_request("POST", "/admin/devices/create", lambda s: enchimentos.append(_encher(pasta)),
                          when="before")

    r = par.rodar("--sem-progresso")

    texto = saida(r)
    sem_traceback(r)
    assert enchimentos and not par.backup.hook_errors, par.backup.hook_errors
    assert r.codigo == 1, texto[-4000:]
    assert "não foi possível" in texto and str(pasta) in texto, texto[-4000:]
    assert "No space left" in texto or "Errno 28" in texto, texto[-4000:]
    # nenhuma criação sem o bloqueio: cada uma criada E bloqueada no backup
    backup = par.backup.devices()
    for chave in bloqueadas:
        assert chave in backup, chave
        assert backup[chave]["status"] == "blocked", chave
        assert not par.backup.veredito(chave) and not par.principal.veredito(chave)
    assert par.backup.counts[STATUS] >= len(bloqueadas)
    assert not diferentes_no_oraculo(par)

    enchimentos[0].unlink()  # espaço liberado
    convergir(par)
    conferir_convergencia(par)


@pytest.mark.parametrize("como", ["cheia", "somente_leitura"])
def test_pasta_de_dados_que_nao_aceita_gravacao_recusa_com_2_antes_de_escrever(par, tmpfs_dados, como):
    semear_licencas(par.principal, 6)
    semear_usuarios(par.principal, ["ana"])
    pasta = tmpfs_dados("1m", somente_leitura=como == "somente_leitura")
    if como == "cheia":
        _encher(pasta)

    inicio = time.monotonic()
    r = par.rodar("--sem-progresso")
    duracao = time.monotonic() - inicio

    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-4000:]
    assert str(pasta) in saida(r), saida(r)[-4000:]
    assert "nada foi enviado" in saida(r) or "Nada foi" in saida(r), saida(r)[-4000:]
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
    assert par.backup.devices() == {}
    assert duracao < 30, f"levou {duracao:.1f} s para recusar"


# ---------------------------------------------------------------------------
# Pasta de dados de outra conta (a tarefa agendada roda com uma conta que não pode gravar nela)
# ---------------------------------------------------------------------------

NOBODY = 65534


@pytest.fixture(params=["vazia", "usada_pelo_root"])
def pasta_de_outra_conta(request):
    """Uma pasta de dados do root (0755) que a conta nobody enxerga mas não grava: vazia, ou já usada numa
    execução manual como root (com as travas dele, 0600). Só POSIX e root."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("rodar como outra conta exige POSIX e root")
    import tempfile
    pasta = Path(tempfile.mkdtemp(prefix="dados-do-root-"))
    os.chmod(pasta, 0o755)
    if request.param == "usada_pelo_root":
        for trava in ("sincronizacao.lock", "sincronizacao_automatica.lock"):
            (pasta / trava).touch(mode=0o600)
    yield pasta
    import shutil
    shutil.rmtree(pasta, ignore_errors=True)


def _python_de_nobody() -> tuple[str, str] | None:
    """(Python que a conta nobody consegue executar, PYTHONPATH com as dependências deste): o deste processo, ou
    o do sistema da mesma versão (o deste pode morar numa pasta fechada, como /root/.pyenv)."""
    import site
    caminhos = os.pathsep.join(p for p in sys.path if "site-packages" in p or p in site.getsitepackages())
    versao = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for python in (sys.executable, f"/usr/bin/python{versao}", f"/usr/local/bin/python{versao}"):
        try:
            ok = subprocess.run([python, "-c", "import requests, filelock, dotenv"], env={"PYTHONPATH": caminhos},
                                cwd="/", user=NOBODY, group=NOBODY, extra_groups=[], capture_output=True,
                                timeout=60).returncode == 0
        except OSError:
            ok = False
        if ok:
            return python, caminhos
    return None


def _como_nobody(comando: list[str], env: dict) -> subprocess.CompletedProcess:
    achado = _python_de_nobody()
    if achado is None:
        pytest.skip("nenhum Python com as dependências que a conta nobody consiga executar")
    python, caminhos = achado
    comando = [python, *comando[1:]]
    env = {**env, "PYTHONPATH": caminhos}
    proc = subprocess.run(comando, env=env, cwd="/", user=NOBODY, group=NOBODY, extra_groups=[],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    from apoio import anotar_saida
    anotar_saida("[como nobody] " + " ".join(comando[-2:]), proc.returncode, proc.stdout, proc.stderr)
    return proc


def test_pasta_de_dados_que_a_conta_nao_grava_nao_vira_outra_sincronizacao_em_andamento(par, pasta_de_outra_conta):
    from apoio import comando_script
    semear_licencas(par.principal, 3)
    r = _como_nobody(comando_script("--sem-progresso"), par.ambiente(DADOS_DIR=str(pasta_de_outra_conta)))
    texto = r.stdout + r.stderr
    assert r.returncode == 2, texto
    assert "em andamento" not in texto, texto
    assert "a conta nobody não tem permissão de gravar na pasta de dados" in texto, texto
    assert str(pasta_de_outra_conta) in texto and "Traceback" not in texto, texto
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0


def test_involucro_com_pasta_que_a_conta_nao_grava_sai_com_2_e_avisa_a_permissao(par, pasta_de_outra_conta):
    from apoio import WRAPPER, ServidorStub, enviar
    with ServidorStub({("POST", "*"): lambda h: enviar(h, 204)}) as webhook:
        env = par.ambiente(DADOS_DIR=str(pasta_de_outra_conta), SYNC_WEBHOOK_URL=webhook.url + "/aviso",
                           SYNC_ESPERA_INICIAL="0.1")
        r = _como_nobody([sys.executable, str(WRAPPER)], env)
        texto = r.stdout + r.stderr
        assert r.returncode == 2, texto
        assert "já está em andamento" not in texto and "não tem permissão de gravar" in texto, texto
        assert len(webhook.pedidos) == 1
        aviso = webhook.pedidos[0]["corpo"].decode()
        assert "não tem permissão de gravar" in aviso and "em andamento" not in aviso, aviso
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
