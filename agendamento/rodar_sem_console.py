"""Roda o sincronizar_bancos.py SEM CONSOLE, como a tarefa do modo contínuo do Windows faz (pythonw.exe).

O pythonw.exe não abre janela, mas também não tem saída padrão (sys.stdout e sys.stderr são None): o
sincronizar_bancos.py, que escreve o relatório na tela, pararia na primeira linha, sem deixar rastro. Este
lançador manda cada linha da saída e dos erros para um log com rotação em DADOS_DIR/logs/vigiar.log (a
pasta de dados, a rotação e a máscara de segredos são as do sincronizar_automatico.py: as mesmas regras) e
roda o sincronizar_bancos.py da pasta acima desta, no mesmo processo, com os argumentos recebidos:

    pythonw.exe agendamento\\rodar_sem_console.py vigiar [--intervalo SEGUNDOS]
    python agendamento/rodar_sem_console.py --informar      # pasta de dados, log e códigos, em JSON

Aberto num console (python.exe), não há o que desviar: a saída fica na tela, como no sincronizar_bancos.py.
O código de saída é o do sincronizar_bancos.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import traceback
from pathlib import Path

PASTA_PROJETO = Path(__file__).resolve().parent.parent
NOME_LOG = "vigiar.log"

if str(PASTA_PROJETO) not in sys.path:
    sys.path.insert(0, str(PASTA_PROJETO))

import sincronizar_automatico as sa  # noqa: E402  (carrega o sincronizar_bancos.py da mesma pasta)


class _LinhasParaRegistro(io.TextIOBase):
    """Saída padrão de mentira: cada linha completa vai para o log (mascarada pelo Registro)."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, registro: sa.Registro, erro: bool) -> None:
        super().__init__()
        self._registro = registro
        self._erro = erro
        self._pendente = ""
        self._trava = threading.Lock()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, texto: str) -> int:
        with self._trava:
            linhas = (self._pendente + texto.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
            self._pendente = linhas.pop()
        for linha in linhas:
            self._enviar(linha)
        return len(texto)

    def flush(self) -> None:
        with self._trava:
            resto, self._pendente = self._pendente, ""
        if resto:
            self._enviar(resto)

    def _enviar(self, linha: str) -> None:
        if self._erro:
            self._registro.erro(linha)
        else:
            self._registro.info(linha)


def _ajustes(argumentos: list[str]) -> sa.Ajustes:
    opcoes, _ = sa.ler_opcoes([])
    return sa.ler_ajustes(opcoes, argumentos)


def _arquivo_log(ajustes: sa.Ajustes) -> Path:
    return ajustes.pasta_dados / "logs" / NOME_LOG


def informar(ajustes: sa.Ajustes) -> int:
    """O que o AGENDAR_SINCRONIZACAO.ps1 mostra no -Status da tarefa contínua (JSON só com ASCII)."""
    documento = {
        "pasta_dados": str(ajustes.pasta_dados),
        "arquivo_log": str(_arquivo_log(ajustes)),
        "codigos": {str(codigo.value): sa.significado(codigo) for codigo in sa.sb.ExitCode},
    }
    print(json.dumps(documento, ensure_ascii=True, indent=2))
    return sa.sb.ExitCode.OK


def _codigo_de(saida: SystemExit) -> int:
    if saida.code is None:
        return 0
    return saida.code if isinstance(saida.code, int) else 1


def rodar_no_log(argumentos: list[str]) -> int:
    """Sem console: a saída do sincronizar_bancos.py vai para DADOS_DIR/logs/vigiar.log."""
    ajustes = _ajustes(argumentos)
    # Uma falha ao gravar o log (a rotação com o arquivo aberto por outro programa, no Windows) não pode
    # voltar para cá: o logging a escreveria em sys.stderr, que agora é o próprio log.
    logging.raiseExceptions = False
    registro = sa.Registro(sa.mascarar)  # sem console, ele não ecoa nada na tela (só grava no log)
    registro.abrir_arquivo(_arquivo_log(ajustes), ajustes.log_max_bytes, ajustes.log_backups)
    registro.info(f"===== INÍCIO: sincronizar_bancos.py {' '.join(argumentos)} sem console | pid {os.getpid()} "
                  f"| pasta de dados {ajustes.pasta_dados} =====")
    saida, erros = _LinhasParaRegistro(registro, erro=False), _LinhasParaRegistro(registro, erro=True)
    sys.stdout, sys.stderr = saida, erros
    try:
        # a máscara da execução é a do invólucro (a que o log usa), também para o que sair depois dela
        codigo = sa.sb.main(argumentos, context=sa.sb.RunContext(secrets=sa.mascara_do_script()))
    except SystemExit as fim:  # erro de uso do argparse (código 2) e saídas diretas
        codigo = _codigo_de(fim)
    except KeyboardInterrupt:
        codigo = sa.sb.ExitCode.INTERRUPTED
    except Exception:  # noqa: BLE001 - sem console, o erro inesperado só existe se for para o log
        registro.erro("erro inesperado no sincronizar_bancos.py:\n" + traceback.format_exc())
        codigo = 1
    finally:
        for fluxo in (saida, erros):
            fluxo.flush()
        sys.stdout, sys.stderr = None, None
    registro.info(f"===== FIM: código de saída {int(codigo)} ({sa.significado(int(codigo))}) =====")
    registro.fechar()
    return int(codigo)


def main(argv: list[str] | None = None) -> int:
    argumentos = list(sys.argv[1:] if argv is None else argv)
    if sa.sb is None:  # dependência ausente ou sincronizar_bancos.py fora da pasta
        sa._imprimir_erro(sa.ERRO_AO_CARREGAR)
        return sa.CODIGO_SEM_SCRIPT
    sa.umask_privada()
    if argumentos[:1] == ["--informar"]:
        return informar(_ajustes(argumentos[1:]))
    if sys.stdout is not None and sys.stderr is not None:  # com console: nada a desviar
        return sa.sb.main(argumentos)
    return rodar_no_log(argumentos)


if __name__ == "__main__":
    sys.exit(main())
