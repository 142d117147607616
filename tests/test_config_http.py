"""Configuração e cliente HTTP, de ponta a ponta (o script como processo filho, servidores reais em
127.0.0.1): máscara de segredos por lugar, .env lido ao pé da letra, SYNC_TIMEOUT como limite de
cada requisição inteira, o mesmo servidor configurado duas vezes e configurações erradas que
falham em segundos.

Os servidores "estranhos" (corpo pingado byte a byte, página que não é da API, JSON de outro
serviço) são stubs http.server pequenos, daqui mesmo.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import conftest
from apoio_resiliencia import guardar_tokens, saida, sem_traceback, semear_licencas, semear_usuarios
from conftest import Par, rodar_script
from servidor_referencia import ServidorReferencia

import sincronizar_bancos as sb

SENHA_LONGA = "abc${X}def-9"
conftest.SEGREDOS_USADOS.add(SENHA_LONGA)  # nunca pode aparecer em nada do que o script deixou


class ParComSenha(Par):
    """Principal e backup com a MESMA senha de administrador, escolhida pelo teste."""

    def __init__(self, tmp_path: Path, senha: str):
        self.senha_principal = self.senhas_backup = senha
        self.principal = ServidorReferencia(admins={"admin": senha}).start()
        self.backups = [ServidorReferencia(admins={"admin": senha}).start()]
        self.dados = tmp_path / "dados"
        self.tmp_path = tmp_path


def ambiente_limpo(**extra: str) -> dict[str, str]:
    """Ambiente sem nenhuma configuração do script herdada de fora."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SERVIDOR_", "ADMIN_", "PRINCIPAL_", "BACKUP_", "SYNC_", "DADOS_DIR", "PAINEL_"))}
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


def arquivos_gravados(dados: Path) -> dict[str, str]:
    """Texto de todo arquivo que o script deixou na pasta de dados (sqlite lido como bytes)."""
    if not dados.exists():
        return {}
    return {str(p.relative_to(dados)): p.read_bytes().decode("utf-8", "replace")
            for p in dados.rglob("*") if p.is_file()}


def nada_gravado(par) -> None:
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
    gravados = set(arquivos_gravados(par.dados)) - {sb.LOCK_FILE}
    assert not gravados, f"arquivos gravados: {gravados}"


# ---------------------------------------------------------------------------
# 1. Máscara por lugar, não por valor
# ---------------------------------------------------------------------------

SENHAS_ESTRANHAS = ["2026", "true", "null", '"', SENHA_LONGA]


@pytest.mark.parametrize("senha", SENHAS_ESTRANHAS, ids=["2026", "true", "null", "aspas", "cifrao"])
def test_senha_estranha_json_valido_datas_intactas(tmp_path, senha):
    par = ParComSenha(tmp_path, senha)
    try:
        semear_licencas(par.principal, 4)
        semear_usuarios(par.principal, ["ana"])
        r = par.rodar("--json", "--hoje", "2026-11-30")
        sem_traceback(r)
        assert r.codigo == 0, saida(r)[-3000:]
        doc = json.loads(r.stdout)  # o stdout é um JSON válido, qualquer que seja a senha
        assert doc["hoje"] == "2026-11-30"
        assert doc["inicio"].startswith("20") and "***" not in r.stdout
        assert doc["simulacao"] is False and doc["backups"][0]["paridade"]["ok"] is True
        assert set(par.backup.devices()) == set(par.principal.devices())
        if senha == SENHA_LONGA:
            assert senha not in r.stdout + r.stderr
            for nome, texto in arquivos_gravados(par.dados).items():
                assert senha not in texto, nome
        guardar_tokens(par.principal, par.backup)
    finally:
        par.parar()


_AINDA_MASCARA_O_JSON = pytest.mark.xfail(
    strict=True, reason="write_last_run ainda usa SECRETS.mask(json.dumps(...)): trocar por dump_json(summary) "
                        "(seção de estado, fora desta tarefa)")


@pytest.mark.parametrize("senha", ["2026", pytest.param("true", marks=_AINDA_MASCARA_O_JSON)])
def test_senha_estranha_ultima_execucao_valida(tmp_path, senha):
    par = ParComSenha(tmp_path, senha)
    try:
        semear_licencas(par.principal, 2)
        r = par.rodar("--sem-progresso")
        assert r.codigo == 0, saida(r)[-3000:]
        resumo = json.loads((par.dados / sb.LAST_RUN_FILE).read_text(encoding="utf-8"))
        assert resumo["codigo_saida"] == 0 and resumo["servidores"][0]["ok"] is True
        assert resumo["inicio"].startswith("20") and "***" not in json.dumps(resumo)
    finally:
        par.parar()


def test_mascara_texto_livre_por_palavra_inteira():
    segredos = sb.Secrets()
    for valor in ("2026", "true", SENHA_LONGA, "tok-1234567890"):
        segredos.add(valor)
    texto = segredos.mask(f"senha 2026 recusada em 2026-11-30; (true) truely; x{SENHA_LONGA}y; "
                          "Bearer tok-1234567890 https://u:p@h/x {\"password\": \"s3\"}")
    assert "senha *** recusada em 2026-11-30" in texto
    assert "(***) truely" in texto
    assert SENHA_LONGA not in texto and "x***y" in texto
    assert "tok-1234567890" not in texto and "u:p@" not in texto and "s3" not in texto


def test_erro_do_servidor_que_ecoa_a_senha_curta_sai_mascarado(tmp_path):
    """Texto livre vindo do servidor (corpo de erro) é mascarado onde nasce; o JSON continua válido."""
    par = ParComSenha(tmp_path, "2026")
    try:
        semear_licencas(par.principal, 1)
        par.backup.override("GET", "/admin/devices", 500, {"error": "falhou com a senha 2026 (2026-11-30)"})
        r = par.rodar("--json", "--tentativas-http", "0")
        assert r.codigo == 4, saida(r)[-3000:]
        erro = json.loads(r.stdout)["backups"][0]["erro"]
        assert "senha *** (2026-11-30)" in erro, erro
    finally:
        par.parar()


# ---------------------------------------------------------------------------
# 2. .env lido ao pé da letra
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("forma", ["sem_aspas", "aspas_duplas", "aspas_simples"])
def test_senha_com_cifrao_no_env_funciona(tmp_path, forma):
    par = ParComSenha(tmp_path, SENHA_LONGA)
    try:
        semear_licencas(par.principal, 3)
        valor = {"sem_aspas": SENHA_LONGA, "aspas_duplas": f'"{SENHA_LONGA}"',
                 "aspas_simples": f"'{SENHA_LONGA}'"}[forma]
        arquivo = tmp_path / "config.env"
        arquivo.write_text(f"SERVIDOR_PRINCIPAL={par.principal.url}\nSERVIDOR_BACKUP={par.backup.url}\n"
                           f"ADMIN_USER=admin\nADMIN_PASSWORD={valor}\nDADOS_DIR={par.dados}\n", encoding="utf-8")
        r = rodar_script("--env", str(arquivo), "--sem-progresso",
                         env=ambiente_limpo(X="EXPANDIDO", SYNC_ESPERA_DESPERTAR="5"), cwd=tmp_path)
        sem_traceback(r)
        assert r.codigo == 0, saida(r)[-3000:]
        assert set(par.backup.devices()) == set(par.principal.devices())
        assert SENHA_LONGA not in saida(r)
        guardar_tokens(par.principal, par.backup)
    finally:
        par.parar()
