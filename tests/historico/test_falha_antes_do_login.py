"""Uma execução que falha antes do login (senha errada, nome que não resolve, configuração) também é uma
execução: linha no histórico, ultima_execucao.json novo, e o painel/status.json vermelhos já nessa execução."""

from __future__ import annotations

import json
import sqlite3

import pytest

from apoio import abrir_painel, get


def status(url: str) -> tuple[int, dict]:
    codigo, corpo = get(url + "/status.json")
    return codigo, json.loads(corpo)


def linhas(par) -> list[tuple]:
    with sqlite3.connect(par.dados / "historico.sqlite3") as db:
        return db.execute("SELECT backup, situacao, codigo_saida, erro FROM execucoes ORDER BY id").fetchall()


def ultima(par) -> dict:
    return json.loads((par.dados / "ultima_execucao.json").read_text(encoding="utf-8"))


@pytest.fixture
def painel_verde(par):
    """Um sucesso registrado e o painel aberto respondendo 200: o verde que a falha seguinte não pode manter."""
    par.principal.add_device("P-1")
    assert par.rodar().codigo == 0
    proc, url = abrir_painel(par.ambiente())
    try:
        assert status(url)[0] == 200
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_senha_errada_deixa_o_painel_vermelho_na_mesma_execucao(par, painel_verde):
    url = painel_verde
    errada = "errada-" + "x" * 10
    r = par.rodar(PRINCIPAL_ADMIN_PASSWORD=errada)
    assert r.codigo == 2 and "login recusado" in r.stderr and "Traceback" not in r.stderr
    codigo, dados = status(url)
    assert codigo == 503 and dados["ok"] is False
    assert dados["pares"][0]["estado"] == "falhando" and "login recusado" in dados["pares"][0]["ultimo_erro"]
    _, pagina = get(url + "/")
    assert "FALHANDO" in pagina.decode() and "SAUDÁVEL" not in pagina.decode()
    assert [(b, s, c) for b, s, c, _ in linhas(par)] == [(par.backup.url, "ok", 0), (par.backup.url, "erro", 2)]
    resumo = ultima(par)
    assert resumo["codigo_saida"] == 2 and resumo["servidores"][0]["ok"] is False
    texto = (par.dados / "ultima_execucao.json").read_text(encoding="utf-8")
    assert errada not in texto and par.senha_principal not in texto
    # O painel volta ao verde na primeira execução boa.
    assert par.rodar().codigo == 0 and ultima(par)["codigo_saida"] == 0


def test_nome_que_nao_resolve_fica_no_historico_com_codigo_4(par):
    r = par.rodar(SERVIDOR_BACKUP="https://servidor-que-nao-existe.invalid")
    assert r.codigo == 4 and "Traceback" not in r.stderr
    assert [(b, s, c) for b, s, c, _ in linhas(par)] == [("https://servidor-que-nao-existe.invalid", "erro", 4)]
    assert ultima(par)["codigo_saida"] == 4


def test_json_da_falha_no_login_e_o_mesmo_desfecho_do_historico_e_do_ultima_execucao(par_dois_backups):
    """Um backup com senha errada e o outro são: o código e cada par do --json são os mesmos que o histórico
    e o ultima_execucao.json guardam (um RunOutcome só, não um documento montado à parte)."""
    par = par_dois_backups
    assert par.rodar().codigo == 0
    r = par.rodar("--json", **{"BACKUP_ADMIN_PASSWORD": "errada-" + "y" * 10})
    doc = json.loads(r.stdout)
    assert r.codigo == 2 == doc["codigo_saida"] == ultima(par)["codigo_saida"]
    registradas = linhas(par)[2:]
    assert [(b["backup"], b["situacao"], b["codigo_saida"], b["erro"]) for b in doc["backups"]] == registradas
    assert [(s["url"], s["erro"]) for s in ultima(par)["servidores"][1:]] == [(b, e) for b, _, _, e in registradas]


def test_senha_ausente_e_erro_de_configuracao_registrado_por_par(par_dois_backups):
    par = par_dois_backups
    assert par.rodar().codigo == 0  # já houve um sucesso: o painel tem um verde a perder
    antes = sum(par.principal.counts.values())
    r = par.rodar(BACKUP_ADMIN_PASSWORD="", ADMIN_PASSWORD="")
    assert r.codigo == 2 and "Configuração" in r.stderr
    registradas = linhas(par)[2:]
    assert [(b, s, c) for b, s, c, _ in registradas] == [(b.url, "erro", 2) for b in par.backups]
    assert all("senha" in e.lower() for *_, e in registradas)
    assert ultima(par)["codigo_saida"] == 2 and ultima(par)["registrada_no_historico"] is True
    assert sum(par.principal.counts.values()) == antes  # parou antes de qualquer requisição


def test_configuracao_ilegivel_sem_pares_deixa_o_status_503(par, painel_verde):
    url = painel_verde
    r = par.rodar(SERVIDOR_BACKUP="http://")
    assert r.codigo == 2 and "URL inválida" in r.stderr
    assert ultima(par)["registrada_no_historico"] is False and ultima(par)["codigo_saida"] == 2
    codigo, dados = status(url)
    assert codigo == 503 and "parou antes de sincronizar" in dados["mensagem"]
    assert "URL inválida" in dados["ultima_execucao_parada"]["erro"]
    _, pagina = get(url + "/")
    assert "ÚLTIMA EXECUÇÃO PAROU ANTES DE SINCRONIZAR" in pagina.decode()
    assert par.rodar().codigo == 0
    assert status(url)[0] == 200


def test_simulacao_com_senha_errada_nao_grava_nada(par):
    r = par.rodar("--simular", PRINCIPAL_ADMIN_PASSWORD="errada-123456")
    assert r.codigo == 2
    assert not (par.dados / "historico.sqlite3").exists() and not (par.dados / "ultima_execucao.json").exists()


def test_certificado_tls_recusado_fica_no_historico(montar, ca):  # fixtures do TLS: tests/conftest.py
    par = montar(backup="autoassinado")
    ambiente = par.ambiente(SYNC_CA_BUNDLE=str(ca.arquivo))
    r = par.rodar(env=ambiente)
    assert r.codigo == 2 and "Traceback" not in r.stderr
    [(backup, situacao, codigo, erro)] = linhas(par)
    assert (backup, situacao, codigo) == (par.backup.url, "erro", 2) and "certificado" in erro
    assert ultima(par)["codigo_saida"] == 2


_QUEBRA_NO_MEIO = """
import sys
sys.path.insert(0, sys.argv[1])
import sincronizar_bancos as sb
def quebra(*_args):
    raise RuntimeError("falha interna simulada")
sb.Run.plan_and_apply = quebra
sys.exit(sb.main(sys.argv[2:]))
"""


def test_erro_inesperado_no_meio_da_execucao_deixa_o_status_vermelho(par):
    """Um erro que ninguém previu no meio da execução (a linha do par fica "em andamento") também vira uma
    execução registrada: o /status.json e o painel não continuam mostrando o verde da anterior."""
    import subprocess
    import sys

    from apoio import SCRIPT

    par.principal.add_device("P-1")
    assert par.rodar().codigo == 0
    proc = subprocess.run([sys.executable, "-c", _QUEBRA_NO_MEIO, str(SCRIPT.parent)], env=par.ambiente(),
                          cwd=par.tmp_path, capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert proc.returncode == 1 and "falha interna simulada" in proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert ultima(par)["codigo_saida"] == 1
    painel, url = abrir_painel(par.ambiente())
    try:
        codigo, dados = status(url)
        assert codigo == 503 and dados["ok"] is False, dados
    finally:
        painel.terminate()
        painel.wait(10)


def test_senha_errada_num_backup_fora_do_par_ainda_e_codigo_2(par_dois_backups):
    """restaurar --de o primeiro backup com o login do segundo recusado: nenhum par mostra o erro dele, mas
    o código da execução (e o que o invólucro decide repetir) conta todos os erros fatais: 2, não 4."""
    par = par_dois_backups
    par.principal.add_device("P-1")
    assert par.rodar().codigo == 0
    par.zerar_contagens()
    par.backups[1].override("POST", "/admin/login", 401, {"error": "Credenciais inválidas"})
    r = par.rodar("restaurar", "--de", par.backups[0].url, "--json")
    doc = json.loads(r.stdout)
    assert r.codigo == 2 == doc["codigo_saida"] == ultima(par)["codigo_saida"], r.stderr
    assert [s["url"] for s in doc["servidores"]] == [par.backups[1].url]
    assert par.principal.write_count() == 0 and par.backups[0].write_count() == 0
