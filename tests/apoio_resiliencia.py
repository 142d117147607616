"""Nome antigo de `apoio.py` (mantido só para testes escritos antes da troca): importe de `apoio`."""

from apoio import *  # noqa: F401,F403
from apoio import __all__  # noqa: F401
from conftest import par_r  # noqa: F401,E402
