"""Varredura de segredos (roda por último): nada do que a ferramenta imprimiu ou gravou
durante a suíte contém senha ou token.

Varre:
- artefatos/saidas_dos_testes.log (stdout e stderr de toda execução feita por
  conftest.rodar_script), a partir do ponto em que estava quando esta sessão começou;
- todo arquivo das pastas de dados (DADOS_DIR) criadas sob o diretório temporário do
  pytest desta sessão, MENOS credenciais_usuarios_criados.txt (cuja função é guardar as
  senhas dos usuários criados) e cópias temporárias dele.

Procura: as senhas de administrador (conftest.SEGREDOS_USADOS), os tokens emitidos
pelos servidores nos testes que os anotaram (apoio_resiliencia.TOKENS_VISTOS), as
senhas dos usuários criados (lidas dos arquivos de credenciais) e "Bearer <token>" (a forma
mascarada "Bearer ***" é permitida).

Para nunca varrer o vazio, o teste faz antes a sua própria execução "isca": cria
usuários, leva um 401 no meio, uma falha 500 e um par ignorado, em modo texto e --json.
"""

from __future__ import annotations

import json
import re
import os
import stat
from pathlib import Path

import conftest
from apoio_resiliencia import TOKENS_VISTOS, guardar_tokens, semear_licencas, semear_usuarios

import sincronizar_bancos as sb

LOG = conftest.ARTEFATOS / "saidas_dos_testes.log"
# Tamanho do log quando os módulos de teste foram coletados (antes de qualquer teste rodar).
INICIO_DO_LOG = LOG.stat().st_size if LOG.exists() else 0
# "Bearer " seguido de algo que parece um token (a forma mascarada "Bearer ***" é a esperada)
BEARER_COM_TOKEN = re.compile(rb"Bearer\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}")
ARQUIVOS_DA_FERRAMENTA = {sb.HISTORY_FILE, sb.LAST_RUN_FILE, sb.LOCK_FILE, sb.CREDENTIALS_FILE}


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


def _pastas_de_dados(base: Path) -> set[Path]:
    return {p.parent for p in base.rglob("*") if p.is_file() and p.name in ARQUIVOS_DA_FERRAMENTA}


def _e_credenciais(caminho: Path) -> bool:
    """O arquivo de credenciais ou uma cópia temporária dele (gravação atômica interrompida)."""
    if caminho.name == sb.CREDENTIALS_FILE:
        return True
    if caminho.name.startswith(".tmp-"):
        with open(caminho, "rb") as arquivo:
            return arquivo.read(200).startswith(sb.CredentialStore.HEADER.encode("utf-8")[:40])
    return False


def _senhas_de_usuarios_criados(pastas: set[Path]) -> set[str]:
    senhas = set()
    for pasta in pastas:
        arquivo = pasta / sb.CREDENTIALS_FILE
        if not arquivo.exists():
            continue
        for linha in arquivo.read_text(encoding="utf-8").splitlines():
            partes = linha.split(" | ")
            if not linha.startswith("#") and len(partes) == 5 and len(partes[3]) >= 8:
                senhas.add(partes[3])
    return senhas


def test_nenhum_segredo_no_que_a_ferramenta_imprimiu_ou_gravou(tmp_path_factory, tmp_path):
    _execucao_isca(tmp_path)

    base = tmp_path_factory.getbasetemp()
    pastas = _pastas_de_dados(base)
    assert pastas, f"nenhuma pasta de dados encontrada em {base}"
    senhas_criadas = _senhas_de_usuarios_criados(pastas)
    assert len(senhas_criadas) >= 6, "a execução isca devia ter criado usuários com senhas novas"
    segredos = {s for s in set(conftest.SEGREDOS_USADOS) | TOKENS_VISTOS | senhas_criadas if s and len(s) >= 8}
    assert len(conftest.SEGREDOS_USADOS) >= 2

    achados = []
    with open(LOG, "rb") as log:
        log.seek(INICIO_DO_LOG)
        texto = log.read().decode("utf-8", errors="replace")
    assert texto.strip(), "o log de saídas desta sessão está vazio: nada para varrer"
    assert "Sincronização" in texto
    for segredo in segredos:
        if segredo in texto:
            achados.append(f"{LOG.name}: {segredo[:4]}…")
    if BEARER_COM_TOKEN.search(texto.encode("utf-8")):
        achados.append(f"{LOG.name}: 'Bearer <token>'")

    varridos = 0
    for pasta in sorted(pastas):
        for arquivo in sorted(p for p in pasta.rglob("*") if p.is_file()):
            if _e_credenciais(arquivo):
                modo = stat.S_IMODE(arquivo.stat().st_mode)
                if os.name == "posix":  # no Windows não há bits de permissão (o README ensina o icacls)
                    assert modo & 0o077 == 0, f"{arquivo} com permissão {oct(modo)} (devia ser 0600)"
                continue
            conteudo = arquivo.read_bytes()
            varridos += 1
            for segredo in segredos:
                if segredo.encode("utf-8") in conteudo:
                    achados.append(f"{arquivo.relative_to(base)}: {segredo[:4]}…")
            if BEARER_COM_TOKEN.search(conteudo):
                achados.append(f"{arquivo.relative_to(base)}: 'Bearer <token>'")
    assert varridos >= 3, "quase nada foi varrido nas pastas de dados"
    assert not achados, "segredos encontrados:\n" + "\n".join(achados)
