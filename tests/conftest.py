"""Configuração comum do pytest: põe a pasta tests/ no sys.path e oferece servidores
de referência reais (portas efêmeras em 127.0.0.1) e um executor do script como
processo filho."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PASTA_TESTES = str(Path(__file__).resolve().parent)
RAIZ = Path(PASTA_TESTES).parent
SCRIPT = RAIZ / "sincronizar_bancos.py"
if PASTA_TESTES not in sys.path:
    sys.path.insert(0, PASTA_TESTES)
if str(RAIZ) not in sys.path:
    sys.path.insert(0, str(RAIZ))

from servidor_referencia import ServidorReferencia  # noqa: E402

# Tudo o que o script imprimir nos testes é guardado aqui para a varredura de segredos.
ARTEFATOS = RAIZ / "artefatos"
SEGREDOS_USADOS: set[str] = set()


@dataclass
class Execucao:
    codigo: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


class Par:
    """Um principal e um ou mais backups de referência, com senhas aleatórias."""

    def __init__(self, tmp_path: Path, backups: int = 1):
        self.senha_principal = secrets.token_urlsafe(16)
        self.senhas_backup = secrets.token_urlsafe(16)
        SEGREDOS_USADOS.update({self.senha_principal, self.senhas_backup})
        self.principal = ServidorReferencia(admins={"admin": self.senha_principal}).start()
        # Cada servidor com sua própria sequência de ids locais, como na vida real (listagens idênticas,
        # com os mesmos ids, só acontecem quando duas URLs levam ao MESMO servidor).
        self.backups = [ServidorReferencia(admins={"admin": self.senhas_backup}, primeiro_id=1000 * (i + 1)).start()
                        for i in range(backups)]
        # Vendedor bem configurado: todo servidor publica em GET /servers o principal e os backups, em ordem.
        for servidor in [self.principal] + self.backups:
            servidor.set_license_servers([s.url for s in [self.principal] + self.backups])
        self.dados = tmp_path / "dados"
        self.tmp_path = tmp_path

    @property
    def backup(self) -> ServidorReferencia:
        return self.backups[0]

    def ambiente(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SERVIDOR_", "ADMIN_", "PRINCIPAL_", "BACKUP_", "SYNC_", "DADOS_DIR"))}
        env.update({
            "SERVIDOR_PRINCIPAL": self.principal.url,
            "SERVIDOR_BACKUP": ",".join(b.url for b in self.backups),
            "ADMIN_USER": "admin",
            "PRINCIPAL_ADMIN_PASSWORD": self.senha_principal,
            "BACKUP_ADMIN_PASSWORD": self.senhas_backup,
            "ADMIN_PASSWORD": "",
            "DADOS_DIR": str(self.dados),
            "SYNC_ESPERA_DESPERTAR": "5",
            "SYNC_TIMEOUT": "5",
            "PYTHONIOENCODING": "utf-8",
        })
        env.update(extra)
        return env

    def rodar(self, *args: str, timeout: float = 120, env: dict | None = None, **extra: str) -> Execucao:
        return rodar_script(*args, env=env or self.ambiente(**extra), timeout=timeout, cwd=self.tmp_path)

    def parar(self) -> None:
        for servidor in [self.principal] + self.backups:
            servidor.stop()


def rodar_script(*args: str, env: dict, timeout: float = 120, cwd=None, script: Path = SCRIPT) -> Execucao:
    """Roda o script como processo filho (como o usuário faria) e guarda a saída."""
    proc = subprocess.run([sys.executable, str(script), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)
    ARTEFATOS.mkdir(exist_ok=True)
    with open(ARTEFATOS / "saidas_dos_testes.log", "a", encoding="utf-8") as log:
        log.write(f"$ {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}\n")
    return Execucao(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def par(tmp_path):
    """Principal + um backup de referência, parados ao final do teste."""
    p = Par(tmp_path)
    yield p
    p.parar()


@pytest.fixture
def par_dois_backups(tmp_path):
    p = Par(tmp_path, backups=2)
    yield p
    p.parar()


@pytest.fixture(scope="session", autouse=True)
def varredura_de_segredos_da_sessao(tmp_path_factory):
    """No fim da sessão, varre tudo o que a suíte imprimiu e gravou (log de saídas e pastas de dados):
    uma senha ou token achado vira ERRO na finalização, com a lista do que foi achado."""
    from varredura_segredos import LOG, varrer  # importado aqui: precisa do sys.path acima

    inicio = LOG.stat().st_size if LOG.exists() else 0
    yield
    from apoio_resiliencia import TOKENS_VISTOS

    achados, _varridos, _texto = varrer(tmp_path_factory.getbasetemp(), inicio, TOKENS_VISTOS)
    assert not achados, "varredura de segredos da sessão: segredos encontrados:\n" + "\n".join(achados)
