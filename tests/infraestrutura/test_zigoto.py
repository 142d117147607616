"""O zigoto dos testes (tests/zigoto.py) parte o script como um Python novo partiria: mesma saída, mesmo
código de saída, o ambiente e a pasta do pedido (nada herdado de um pedido anterior), e o prazo mata o filho."""

from __future__ import annotations

import subprocess
import sys

import pytest

from apoio import SCRIPT, WRAPPER, ZIGOTO, ambiente_limpo, comando_script


pytestmark = pytest.mark.skipif(not ZIGOTO.ligado(), reason="zigoto desligado (SEM_ZIGOTO=1) ou fora de POSIX")


def _novo(comando, env, cwd):
    """Um Python novo, com a entrada em /dev/null como a do filho do zigoto: (código, saída, erro) em bytes."""
    proc = subprocess.run(comando, env=env, cwd=cwd, capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("args", [("--help",), ("verificar", "--help"), ("--json",), ("historico",)])
def test_filho_do_zigoto_e_igual_a_um_python_novo(tmp_path, args):
    env = ambiente_limpo(DADOS_DIR=str(tmp_path / "dados"))
    assert ZIGOTO.atende(env)
    assert ZIGOTO.rodar(SCRIPT, args, env, tmp_path, 60) == _novo(comando_script(*args), env, tmp_path)


_SONDA = """import os, sys
print(sys.path[0] == os.path.dirname(os.path.abspath(__file__)), sys.argv[1:], os.path.basename(__file__))
print(os.getcwd() == sys.argv[1], os.environ.get("SONDA"), __name__, "sincronizar_bancos" in sys.modules)
"""


def _outros_programas(tmp_path):
    """O invólucro (ele importa o script da pasta dele), uma cópia do script noutra pasta e uma sonda."""
    import shutil

    copia = tmp_path / "copia"
    copia.mkdir()
    shutil.copy(SCRIPT, copia / SCRIPT.name)
    sonda = tmp_path / "sonda.py"
    sonda.write_text(_SONDA, encoding="utf-8")
    return [(WRAPPER, ("--ajuda",)), (WRAPPER, ("--xyz",)), (copia / SCRIPT.name, ("--help",)),
            (sonda, (str(tmp_path), "ç"))]


def test_outro_programa_pelo_zigoto_e_igual_a_um_python_novo(tmp_path):
    env = ambiente_limpo(SONDA="sim", DADOS_DIR=str(tmp_path / "dados"))
    for programa, args in _outros_programas(tmp_path):
        novo = _novo([sys.executable, str(programa), *args], env, tmp_path)
        assert ZIGOTO.rodar(programa, args, env, tmp_path, 60) == novo
    assert novo[1].decode() == f"True {[str(tmp_path), 'ç']!r} sonda.py\nTrue sim __main__ False\n"


def test_cada_filho_tem_o_ambiente_e_a_pasta_do_seu_pedido(tmp_path):
    """--env relativo lê o .env da pasta do pedido; o ambiente de um pedido não passa para o seguinte."""
    for pasta in ("a", "b"):
        (tmp_path / pasta).mkdir()
        (tmp_path / pasta / ".env").write_text(f"SERVIDOR_PRINCIPAL=ftp://{pasta}-do-env\n"
                                               "SERVIDOR_BACKUP=https://backup.exemplo.test\n", encoding="utf-8")
    args = ("--simular", "--env", ".env")
    codigo_a, _, erro_a = ZIGOTO.rodar(SCRIPT, args, ambiente_limpo(SERVIDOR_PRINCIPAL="ftp://do-ambiente"),
                                       tmp_path / "a", 60)
    codigo_b, _, erro_b = ZIGOTO.rodar(SCRIPT, args, ambiente_limpo(), tmp_path / "b", 60)
    erro_a, erro_b = erro_a.decode(), erro_b.decode()
    assert codigo_a == codigo_b == 2
    assert "ftp://do-ambiente" in erro_a, erro_a  # o ambiente vale mais que o .env
    assert "ftp://b-do-env" in erro_b and "do-ambiente" not in erro_b and "a-do-env" not in erro_b, erro_b


def test_prazo_estourado_mata_o_filho(tmp_path):
    """Um servidor que aceita a conexão e nunca responde: o prazo do pedido (1,5 s) vence e o filho morre."""
    import socket
    import time

    with socket.create_server(("127.0.0.1", 0)) as mudo:
        url = f"http://127.0.0.1:{mudo.getsockname()[1]}"
        env = ambiente_limpo(SERVIDOR_PRINCIPAL=url, SERVIDOR_BACKUP=url.replace("127.0.0.1", "localhost"),
                             ADMIN_USER="admin",
                             ADMIN_PASSWORD="senha-qualquer-123", SYNC_ESPERA_DESPERTAR="60",
                             DADOS_DIR=str(tmp_path / "dados"))  # morto no meio: a trava fica na pasta do teste
        inicio = time.monotonic()
        with pytest.raises(subprocess.TimeoutExpired):
            ZIGOTO.rodar(SCRIPT, ("--permitir-http",), env, tmp_path, 1.5)
        assert time.monotonic() - inicio < 10


def test_resposta_lida_de_uma_vez_so_nao_confunde_o_leitor(tmp_path):
    """O pid e o código chegam às vezes num recv só (teste lento): o leitor separa as linhas."""
    import socket

    from apoio import _Linhas

    a, b = socket.socketpair()
    with a, b:
        b.sendall(b'{"pid": 12}\n{"codigo": 2}\n')
        linhas = _Linhas(a)
        assert linhas.proxima(None) == b'{"pid": 12}' and linhas.proxima(None) == b'{"codigo": 2}'
