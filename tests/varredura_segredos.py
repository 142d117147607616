"""Varredura de segredos no que a ferramenta imprimiu (artefatos/saidas_dos_testes.<trabalhador>.log) e
gravou (pastas de dados): senhas de administrador dos testes, tokens emitidos pelos servidores, senhas dos
usuários criados e "Bearer <token>" (a forma mascarada "Bearer ***" é a esperada). O arquivo de credenciais é
o único lugar onde as senhas dos usuários criados podem estar (e só com permissão 0600 em POSIX)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import apoio
import sincronizar_bancos as sb

LOG = apoio.LOG_SAIDAS
BEARER_COM_TOKEN = re.compile(rb"Bearer\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{8,}")
ARQUIVOS_DA_FERRAMENTA = {sb.HISTORY_FILE, sb.LAST_RUN_FILE, sb.LOCK_FILE, sb.CREDENTIALS_FILE}


def pastas_de_dados(base: Path) -> set[Path]:
    return {p.parent for p in base.rglob("*") if p.is_file() and p.name in ARQUIVOS_DA_FERRAMENTA}


def e_credenciais(caminho: Path) -> bool:
    """O arquivo de credenciais ou uma cópia temporária dele (gravação atômica interrompida)."""
    if caminho.name == sb.CREDENTIALS_FILE:
        return True
    if caminho.name.startswith(".tmp-"):
        with open(caminho, "rb") as arquivo:
            return arquivo.read(200).startswith(sb.CredentialStore.HEADER.encode("utf-8")[:40])
    return False


def senhas_de_usuarios_criados(pastas: set[Path]) -> set[str]:
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


def varrer(base: Path, inicio_do_log: int, tokens: set[str]) -> tuple[list[str], int, str]:
    """Varre o log a partir de `inicio_do_log` e as pastas de dados sob `base`. Devolve (achados, arquivos
    varridos, texto do log varrido)."""
    pastas = pastas_de_dados(base)
    segredos = {s for s in set(apoio.SEGREDOS_USADOS) | set(tokens) | senhas_de_usuarios_criados(pastas)
                if s and len(s) >= 8}
    achados = []
    texto = ""
    if LOG.exists():
        with open(LOG, "rb") as log:
            log.seek(inicio_do_log)
            texto = log.read().decode("utf-8", errors="replace")
    achados += [f"{LOG.name}: {s[:4]}…" for s in segredos if s in texto]
    if BEARER_COM_TOKEN.search(texto.encode("utf-8")):
        achados.append(f"{LOG.name}: 'Bearer <token>'")
    varridos = 0
    for pasta in sorted(pastas):
        for arquivo in sorted(p for p in pasta.rglob("*") if p.is_file()):
            if e_credenciais(arquivo):
                modo = stat.S_IMODE(arquivo.stat().st_mode)
                if os.name == "posix" and modo & 0o077:  # no Windows não há bits de permissão
                    achados.append(f"{arquivo}: permissão {oct(modo)} (devia ser 0600)")
                continue
            conteudo = arquivo.read_bytes()
            varridos += 1
            achados += [f"{arquivo.relative_to(base)}: {s[:4]}…" for s in segredos if s.encode("utf-8") in conteudo]
            if BEARER_COM_TOKEN.search(conteudo):
                achados.append(f"{arquivo.relative_to(base)}: 'Bearer <token>'")
    return achados, varridos, texto
