"""Zigoto dos testes: um processo que já importou as dependências do script (requests, urllib3, filelock...)
e, a cada pedido, cria por fork um processo filho NOVO que roda como __main__ o arquivo pedido: o
sincronizar_bancos.py (pelo bytecode) ou outro, como o sincronizar_automatico.py ou uma cópia do script
noutra pasta (pelo código-fonte, como `python arquivo.py`).

Não é um arquivo de testes: `tests/apoio.py` (`rodar_script`, `rodar_python`) o sobe uma vez por processo do pytest e
manda os pedidos. Por quê: a suíte parte o script ~700 vezes e cada partida de um Python novo gasta
~0,3 s de CPU só importando as dependências; numa máquina de 2 núcleos, isso era metade do tempo da suíte.

O filho é um processo de verdade: o próprio pid, os arquivos de saída que o teste lê, o ambiente e a
pasta de trabalho do pedido, os sinais no padrão, o código de saída (negativo se morto por sinal) como o
do subprocess. O arquivo é executado do zero em cada filho (runpy, como `python arquivo.py`, com a pasta
dele em sys.path[0]); só os módulos das dependências já vêm carregados (intocados: o zigoto não faz nada
com eles). O sincronizar_bancos.py nunca fica carregado no zigoto: quem o importa (o invólucro) o lê
da pasta dele, como num Python novo.
Diferenças conhecidas de um Python novo: a entrada padrão é /dev/null; os filhos de um mesmo zigoto
têm a mesma semente de hash (a ordem de um set de textos não varia entre eles dentro de uma sessão); as
dependências já carregadas não são procuradas de novo (um requests.py falso na pasta do programa não as
substituiria: para isso, PYTHONPATH próprio, que parte um Python novo); os filtros de aviso que elas
instalaram já estão lá; um traceback não tratado mostra também os quadros do zigoto e do runpy; e
__loader__ do programa é None. HOME fica fora da comparação de ambiente (só mudaria o site-packages do
usuário, que o venv desliga).

Protocolo (socket AF_UNIX SOCK_SEQPACKET herdado no fd argv[2]): cada pedido é um JSON
{"programa", "args", "env", "cwd"} com 3 descritores: o socket de resposta, a saída e a saída de erro. Um processo
monitor (fork) cria o filho (fork), responde {"pid"} e, quando o filho termina, {"codigo"}.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import socket
import sys
import time


def _filho(pedido: dict, saida: int, erro: int) -> None:
    """No processo filho: vira a execução pedida do script (não volta: sai pelo SystemExit do script)."""
    os.dup2(saida, 1)
    os.dup2(erro, 2)
    nulo = os.open(os.devnull, os.O_RDONLY)
    os.dup2(nulo, 0)
    for fd in (saida, erro, nulo):
        os.close(fd)
    os.chdir(pedido["cwd"])
    os.environ.clear()
    os.environ.update(pedido["env"])
    time.tzset()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    programa = pedido["programa"]
    sys.path[0] = os.path.dirname(programa)  # como `python programa`: a pasta do arquivo vem primeiro
    sys.argv = [programa, *pedido["args"]]
    if programa == SCRIPT:  # pelo bytecode em __pycache__ (o conftest o grava uma vez por sessão)
        runpy.run_module("sincronizar_bancos", run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(programa, run_name="__main__")
    raise SystemExit(0)


def _monitor(pedido: dict, resposta: socket.socket, saida: int, erro: int) -> None:
    """Cria o filho, responde o pid e, quando ele termina, o código. Nunca volta ao laço do zigoto."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        resposta.close()
        _filho(pedido, saida, erro)  # uma exceção do script sobe até o topo, como num Python novo
    try:
        os.close(saida)
        os.close(erro)
        resposta.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        resposta.sendall(json.dumps({"codigo": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    finally:
        os._exit(0)


SCRIPT = ""  # o caminho de sincronizar_bancos.py (definido em main)


def main() -> None:
    global SCRIPT
    sys.path[0] = sys.argv[1]  # a pasta do script, como em `python sincronizar_bancos.py` (não a de tests/)
    SCRIPT = os.path.join(sys.argv[1], "sincronizar_bancos.py")
    import sincronizar_bancos  # noqa: F401  (carrega as dependências; o módulo em si roda de novo no filho)

    del sys.modules["sincronizar_bancos"]
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # os monitores terminam sozinhos, sem zumbis
    controle = socket.socket(fileno=int(sys.argv[2]))
    while True:
        try:
            mensagem, fds, _flags, _endereco = socket.recv_fds(controle, 1 << 20, 3)
        except OSError:
            return
        if not mensagem:
            return  # o pytest fechou o controle: fim
        if os.fork() == 0:
            controle.close()
            _monitor(json.loads(mensagem), socket.socket(fileno=fds[0]), fds[1], fds[2])
        for fd in fds:
            os.close(fd)


if __name__ == "__main__":
    main()
