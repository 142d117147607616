"""Arquivos nossos danificados nunca impedem uma sincronização.

Histórico (com a auditoria), estado e diário de um par que não se consegue ler são guardados com a
data no nome (ARQUIVO.danificado-AAAAMMDDTHHMMSS), um novo é iniciado, a execução segue e grava nos
servidores, o aviso (uma vez) diz o nome do arquivo guardado, e o código de saída é 1. Tudo com o
script por main() no processo do pytest e servidores de referência reais."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from apoio import RAIZ, conferir_convergencia, rodar_wrapper, saida, sem_traceback

import sincronizar_bancos as sb



def _guardados(caminho):
    return sorted(caminho.parent.glob(caminho.name + ".danificado-*"))


def _so_um_aviso(r, guardado) -> None:
    assert saida(r).count(str(guardado)) == 1, saida(r)[-3000:]


def _primeira_execucao(par):
    par.principal.add_device("D-1", owner_name="Padaria Pão de Açúcar")
    r = par.rodar("--sem-progresso")
    assert r.codigo == 0, saida(r)[-3000:]


def _estragar_sqlite(caminho) -> bytes:
    """Banco que o SQLite não reconhece mais: a página 1 (esquema) sobrescrita."""
    dados = bytearray(caminho.read_bytes())
    dados[100:1100] = b"\xff" * 1000
    caminho.write_bytes(bytes(dados))
    for sufixo in ("-wal", "-shm"):
        (caminho.parent / (caminho.name + sufixo)).unlink(missing_ok=True)
    return bytes(dados)


@pytest.mark.parametrize("dano", ["lixo", "pagina_estragada"])
def test_historico_danificado_e_guardado_de_lado_e_o_bloqueio_chega_ao_backup(par, dano):
    _primeira_execucao(par)
    historico = par.dados / sb.HISTORY_FILE
    if dano == "lixo":
        conteudo = b"isto nao e um banco sqlite\x00\x01" * 50
        historico.write_bytes(conteudo)
    else:
        conteudo = _estragar_sqlite(historico)
    par.principal.set_status("D-1", "blocked")  # um bloqueio novo que PRECISA chegar ao backup
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-3000:]
    assert "Libere espaço" not in saida(r)
    assert par.backup.devices()["D-1"]["status"] == "blocked"
    guardados = _guardados(historico)
    assert len(guardados) == 1 and guardados[0].read_bytes() == conteudo
    _so_um_aviso(r, guardados[0])
    assert "danificado" in r.stdout
    con = sqlite3.connect(historico)  # o novo histórico já tem esta execução
    try:
        assert con.execute("SELECT count(*) FROM execucoes").fetchone()[0] == 1
    finally:
        con.close()
    r2 = par.rodar("--sem-progresso")  # depois disso, tudo normal de novo
    assert r2.codigo == 0, saida(r2)[-3000:]
    assert len(_guardados(historico)) == 1


def test_historico_danificado_no_json_vira_aviso_e_codigo_1(par):
    _primeira_execucao(par)
    historico = par.dados / sb.HISTORY_FILE
    historico.write_bytes(b"\x00" * 4096)
    r = par.rodar("--json")
    sem_traceback(r)
    assert r.codigo == 1
    doc = r.json()
    guardado = _guardados(historico)[0]
    assert doc["codigo_saida"] == 1 and any(str(guardado) in aviso for aviso in doc["avisos"])


ESTADOS_DANIFICADOS = {
    "json_cortado": lambda p, b: '{"versao": 1, "principal": "' + p,
    "licencas_lista": lambda p, b: json.dumps({"versao": 1, "principal": p, "backup": b, "licencas": [],
                                               "usuarios": [], "contagem": {"principal": 1, "backup": 1}}),
    "contagem_texto": lambda p, b: json.dumps({"versao": 1, "principal": p, "backup": b, "licencas": {},
                                               "usuarios": [], "contagem": "muitas"}),
    "raiz_lista": lambda p, b: "[1, 2, 3]",
    "bytes_invalidos": lambda p, b: b"\xff\xfe\x00lixo",
}


@pytest.mark.parametrize("dano", sorted(ESTADOS_DANIFICADOS))
def test_estado_danificado_vira_sem_estado_aviso_e_codigo_1(par, dano):
    _primeira_execucao(par)
    estado = sb.state_path(str(par.dados), par.principal.url, par.backup.url)
    conteudo = ESTADOS_DANIFICADOS[dano](par.principal.url, par.backup.url)
    with open(estado, "wb") as arquivo:
        arquivo.write(conteudo if isinstance(conteudo, bytes) else conteudo.encode("utf-8"))
    par.principal.add_device("D-2", status="blocked")
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-3000:]
    assert par.backup.devices()["D-2"]["status"] == "blocked"
    guardados = sorted(par.dados.glob("estado/*.danificado-*"))
    assert len(guardados) == 1
    _so_um_aviso(r, guardados[0])
    novo, aviso = sb.load_state(str(par.dados), par.principal.url, par.backup.url, set_aside=False)
    assert aviso is None and novo is not None and {"D-1", "D-2"} <= set(novo.licenses)
    conferir_convergencia(par)


def test_estado_danificado_na_simulacao_so_avisa_e_nao_mexe_no_arquivo(par):
    _primeira_execucao(par)
    estado = sb.state_path(str(par.dados), par.principal.url, par.backup.url)
    with open(estado, "w", encoding="utf-8") as arquivo:
        arquivo.write("{ estragado")
    r = par.rodar("--sem-progresso", "--simular")
    sem_traceback(r)
    assert "danificado" in saida(r) and estado in saida(r)
    assert not list(par.dados.glob("estado/*.danificado-*"))
    with open(estado, encoding="utf-8") as arquivo:
        assert arquivo.read() == "{ estragado"


@pytest.mark.parametrize("conteudo", ["[]", "{ cortado", "\"texto\""])
def test_diario_danificado_no_bidirecional_e_guardado_de_lado(par, conteudo):
    par.principal.add_device("D-1")
    r = par.rodar("--sem-progresso", "--bidirecional")
    assert r.codigo == 0, saida(r)[-3000:]
    diario = sb.journal_path(str(par.dados), par.principal.url, par.backup.url)
    with open(diario, "w", encoding="utf-8") as arquivo:
        arquivo.write(conteudo)
    par.backup.add_device("D-VENDA-NO-BACKUP")
    r = par.rodar("--sem-progresso", "--bidirecional")
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-3000:]
    assert "D-VENDA-NO-BACKUP" in par.principal.devices()
    guardados = sorted(par.dados.glob("estado/*.diario.json.danificado-*"))
    assert len(guardados) == 1
    _so_um_aviso(r, guardados[0])


def test_agendador_com_historico_danificado_leva_o_bloqueio_ao_backup(par):
    """Antes: código 2 ("Libere espaço...") em toda execução, e o agendador nunca repetia."""
    _primeira_execucao(par)
    (par.dados / sb.HISTORY_FILE).write_bytes(b"lixo" * 1000)
    par.principal.set_status("D-1", "blocked")
    r = rodar_wrapper(par, "--tentativas", "3")
    assert r.returncode == 1, r.stdout + r.stderr
    assert par.backup.devices()["D-1"]["status"] == "blocked"
    log = (par.dados / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert "danificado" in log and "tentativa 2 de 3" not in log



def test_comando_historico_com_arquivo_danificado_explica_sem_traceback(par):
    _primeira_execucao(par)
    (par.dados / sb.HISTORY_FILE).write_bytes(b"lixo" * 1000)
    r = par.rodar("historico")
    sem_traceback(r)
    assert r.codigo == 2 and "danificado" in r.stderr and "próxima" in r.stderr
    assert (par.dados / sb.HISTORY_FILE).read_bytes() == b"lixo" * 1000  # consultar não mexe em nada


def test_arquivo_de_senhas_danificado_e_guardado_de_lado_e_o_usuario_e_criado(par):
    """Antes: "Erro inesperado (UnicodeDecodeError)" ao criar o primeiro usuário, e nada sincronizado."""
    par.dados.mkdir(parents=True)
    senhas = par.dados / sb.CREDENTIALS_FILE
    senhas.write_bytes(b"\xff\xfe lixo de um editor\n")
    par.principal.add_user("ana", "senha-do-teste-ana")
    par.principal.add_device("D-1", status="blocked")
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-3000:]
    assert "ana" in par.backup.users() and par.backup.devices()["D-1"]["status"] == "blocked"
    guardados = _guardados(senhas)
    assert len(guardados) == 1 and guardados[0].read_bytes() == b"\xff\xfe lixo de um editor\n"
    _so_um_aviso(r, guardados[0])
    linhas = [linha for linha in senhas.read_text(encoding="utf-8").splitlines() if not linha.startswith("#")]
    assert len(linhas) == 1 and " | ana | " in linhas[0]


def test_historico_danificado_que_nao_pode_ser_movido_a_execucao_segue_sem_historico(par):
    """Como no Windows com o painel aberto: o arquivo danificado não sai do lugar. A execução segue
    sem histórico (código 1, aviso), e o bloqueio chega ao backup."""
    _primeira_execucao(par)
    historico = par.dados / sb.HISTORY_FILE
    historico.write_bytes(b"lixo" * 1000)
    par.principal.set_status("D-1", "blocked")
    script = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(RAIZ)!r})\n"
        "import sincronizar_bancos as sb\n"
        "trocar = os.replace\n"
        "def replace(origem, destino, *a, **k):\n"
        "    if sb.DAMAGED_MARK in str(destino):\n"
        "        raise PermissionError(13, 'arquivo em uso por outro processo')\n"
        "    return trocar(origem, destino, *a, **k)\n"
        "os.replace = replace\n"
        "sys.argv = ['sincronizar_bancos.py', '--sem-progresso']\n"
        "raise SystemExit(sb.main())\n"
    )
    r = subprocess.run([sys.executable, "-c", script], env=par.ambiente(), cwd=par.tmp_path, capture_output=True,
                       text=True, encoding="utf-8", timeout=180, check=False)
    saida_toda = r.stdout + r.stderr
    assert "Traceback" not in saida_toda and "inesperado" not in saida_toda, saida_toda[-3000:]
    assert r.returncode == 1, saida_toda[-3000:]
    assert par.backup.devices()["D-1"]["status"] == "blocked"
    assert "não foi possível movê-lo" in saida_toda and "ficou sem histórico" in saida_toda
    assert historico.read_bytes() == b"lixo" * 1000 and not _guardados(historico)


@pytest.mark.parametrize("comando", [["--bidirecional"], [], ["verificar"]], ids=["bidirecional", "ida", "verificar"])
def test_estado_de_uma_versao_mais_nova_para_com_2_sem_mexer_no_arquivo(par, comando):
    """Voltar a uma versão anterior do script: ela acha o estado gravado pela mais nova. Não é "danificado" (que
    seria posto de lado e daria conflitos falsos no bidirecional): diz isso e para, antes da rede."""
    par.principal.add_device("D-1", owner_name="Padaria Pão de Açúcar")
    assert par.rodar("--sem-progresso", "--bidirecional").codigo == 0
    estado = sb.state_path(str(par.dados), par.principal.url, par.backup.url)
    with open(estado, encoding="utf-8") as arquivo:
        doc = json.load(arquivo)
    doc["versao"] = sb.STATE_VERSION + 1
    doc["campo_novo"] = {"D-1": "algo que esta versão não conhece"}
    with open(estado, "w", encoding="utf-8") as arquivo:
        json.dump(doc, arquivo)
    with open(estado, "rb") as arquivo:
        antes = arquivo.read()
    par.principal.add_device("D-2", status="blocked")
    par.backup.add_device("D-3")
    par.zerar_contagens()
    r = par.rodar("--sem-progresso", *comando)
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert "versão mais nova" in saida(r) and estado in saida(r) and "conflito" not in saida(r).lower()
    with open(estado, "rb") as arquivo:
        assert arquivo.read() == antes
    assert not list(par.dados.glob("estado/*.danificado-*"))
    assert sum(sum(s.counts.values()) for s in par.servidores) == 0  # parou antes da rede
