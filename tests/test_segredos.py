"""Varredura de segredos: nada do que a ferramenta imprimiu ou gravou contém senha ou token.

O teste faz a sua própria execução "isca" (cria usuários, leva um 401 no meio, uma falha 500 e um par
ignorado, em modo texto e --json) e varre SÓ o que ela produziu: não depende da ordem dos testes.
A varredura de tudo o que a suíte inteira escreveu roda no fim da sessão (conftest.pytest_sessionfinish,
com as mesmas funções de varredura_segredos.py) e faz a sessão falhar se achar algo.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import conftest
from apoio_resiliencia import TOKENS_VISTOS, guardar_tokens, semear_licencas, semear_usuarios
from varredura_segredos import LOG, pastas_de_dados, senhas_de_usuarios_criados, varrer

import sincronizar_bancos as sb


def _execucao_isca(tmp_path: Path) -> None:
    par = conftest.Par(tmp_path)
    try:
        semear_licencas(par.principal, 15)
        semear_usuarios(par.principal, ["isca.ana", "isca.bia", "isca.caio"])
        par.backup.fail_next("POST", "/admin/devices/create", 401, {"error": "Unauthorized"})
        par.backup.fail_next("POST", "/admin/devices/<id>/deactivate", 500, {"error": "falha simulada"})
        r1 = par.rodar("--sem-progresso")
        assert r1.codigo in (0, 1), r1.stdout[-2000:] + r1.stderr[-2000:]
        semear_usuarios(par.principal, ["isca.dora", "isca.eva", "isca.fabio"])  # mais senhas novas, em --json
        r2 = par.rodar("--json")
        json.loads(r2.stdout)
        par.backup.override("GET", "/admin/devices", 200, "<html>proxy</html>", content_type="text/html")
        r3 = par.rodar("--sem-progresso", "--tentativas-http", "0")
        assert r3.codigo == 4
        guardar_tokens(par.principal, par.backup)
        assert TOKENS_VISTOS
    finally:
        par.parar()


def test_nenhum_segredo_no_que_a_execucao_isca_imprimiu_ou_gravou(tmp_path):
    inicio_do_log = LOG.stat().st_size if LOG.exists() else 0
    _execucao_isca(tmp_path)
    pastas = pastas_de_dados(tmp_path)
    assert pastas, f"nenhuma pasta de dados encontrada em {tmp_path}"
    senhas_criadas = senhas_de_usuarios_criados(pastas)
    assert len(senhas_criadas) >= 6, "a execução isca devia ter criado usuários com senhas novas"
    assert len(conftest.SEGREDOS_USADOS) >= 2
    achados, varridos, texto = varrer(tmp_path, inicio_do_log, TOKENS_VISTOS)
    assert texto.strip() and "Sincronização" in texto, "o log de saídas da isca está vazio: nada para varrer"
    assert varridos >= 3, "quase nada foi varrido nas pastas de dados"
    assert not achados, "segredos encontrados:\n" + "\n".join(achados)


def test_a_varredura_acha_um_segredo_plantado(tmp_path):
    """A varredura não é de enfeite: uma senha plantada num arquivo de dados é achada."""
    pasta = tmp_path / "dados"
    pasta.mkdir()
    segredo = "senha-plantada-" + os.urandom(4).hex()
    conftest.SEGREDOS_USADOS.add(segredo)
    try:
        (pasta / sb.LAST_RUN_FILE).write_text(f'{{"erro": "{segredo}"}}', encoding="utf-8")
        (pasta / sb.HISTORY_FILE).write_bytes(b"Bearer abcdefgh12345678")
        achados, _varridos, _texto = varrer(tmp_path, LOG.stat().st_size if LOG.exists() else 0, set())
    finally:  # a isca plantada não pode sobrar para a varredura da sessão inteira
        shutil.rmtree(pasta)
        conftest.SEGREDOS_USADOS.discard(segredo)
    assert any(sb.LAST_RUN_FILE in a for a in achados) and any("Bearer" in a for a in achados)
