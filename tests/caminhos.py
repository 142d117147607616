"""Caminhos do repositório para os testes e o benchmark (só a biblioteca padrão: o benchmark o importa
também nos processos filhos mínimos, que não podem carregar requests). Importá-lo põe tests/ e a raiz no
sys.path (o script e o servidor de referência passam a ser importáveis)."""

from __future__ import annotations

import sys
from pathlib import Path

PASTA_TESTES = Path(__file__).resolve().parent
RAIZ = PASTA_TESTES.parent
SCRIPT = RAIZ / "sincronizar_bancos.py"
WRAPPER = RAIZ / "sincronizar_automatico.py"  # o invólucro dos agendadores
for _pasta in (str(PASTA_TESTES), str(RAIZ)):
    if _pasta not in sys.path:
        sys.path.insert(0, _pasta)
