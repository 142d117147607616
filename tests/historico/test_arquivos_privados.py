"""Arquivos com dados de clientes só para o dono: sob a umask 022 de sempre, cada arquivo que a ferramenta e o
agendador criam na pasta de dados (histórico do SQLite, estado, última execução, credenciais, travas, o log e as
cópias da rotação) sai 0600 e cada pasta 0700. No Windows não há esses bits (o que protege é a pasta do perfil
do usuário, docs/AGENDAMENTO.md): os testes pulam."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from apoio import ambiente_de_partida_proprio, rodar_wrapper, saida, semear_licencas, semear_usuarios, umask

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sem bits de permissão fora do POSIX")


def _abertos(pasta: Path) -> list[str]:
    """Cada arquivo ou pasta sob `pasta` (ela inclusive) que não é só do dono (0600 / 0700)."""
    achados = []
    for caminho in [pasta, *sorted(pasta.rglob("*"))]:
        modo = stat.S_IMODE(caminho.lstat().st_mode)
        esperado = 0o700 if caminho.is_dir() else 0o600
        if modo != esperado:
            achados.append(f"{caminho.relative_to(pasta.parent)}: {oct(modo)} (devia ser {oct(esperado)})")
    return achados


def test_pasta_de_dados_e_log_so_do_dono_sob_umask_022_na_sincronizacao_e_no_agendador(par):
    semear_licencas(par.principal, 6)
    semear_usuarios(par.principal, ["ana.privada"])  # usuário criado no backup: o arquivo de credenciais
    env = ambiente_de_partida_proprio(par.ambiente())  # um Python novo, com a umask deste processo
    no_meio: dict[str, list[str]] = {}
    # no meio da execução (o histórico aberto): os -wal/-shm do SQLite e a trava existem e são vistos aqui
    par.backup.on_request("POST", "/admin/devices/create", lambda _srv: no_meio.update(
        nomes=[p.name for p in par.dados.rglob("*")], abertos=_abertos(par.dados)), when="before")
    with umask(0o022):
        r = par.rodar("--sem-progresso", env=env)
        assert r.codigo == 0, saida(r)[-3000:]
        assert {"historico.sqlite3-wal", "historico.sqlite3-shm"} <= set(no_meio["nomes"]), no_meio
        assert not no_meio["abertos"], "\n".join(no_meio["abertos"])
        nomes = {p.name for p in par.dados.rglob("*")}
        assert {"historico.sqlite3", "ultima_execucao.json", "sincronizacao.lock"} <= nomes, nomes
        assert not _abertos(par.dados), "\n".join(_abertos(par.dados))

        # o histórico de uma versão anterior, legível por todos, volta a ser só do dono
        (par.dados / "historico.sqlite3").chmod(0o644)
        par.principal.add_device("PRIV-1", owner_name="Cliente Novo")
        w = rodar_wrapper(par, "--tentativas", "1", "--log-max-bytes", "400", "--log-backups", "2",
                          env=ambiente_de_partida_proprio(par.ambiente(SYNC_ESPERA_INICIAL="0.1")))
        assert w.returncode == 0, w.stdout + w.stderr
    assert "PRIV-1" in par.backup.devices()
    nomes = {p.name for p in par.dados.rglob("*")}
    assert {"logs", "sincronizacao.log", "sincronizacao.log.1", "sincronizacao_automatica.lock"} <= nomes, nomes
    assert not _abertos(par.dados), "\n".join(_abertos(par.dados))
