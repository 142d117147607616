"""Sincronização bidirecional, travas de exclusão e restaurar, de ponta a ponta.

Servidores de referência reais (HTTP em 127.0.0.1, portas efêmeras) e o script rodando como processo
filho, do jeito que o usuário (ou o agendador) o roda. Tudo é conferido DIRETO nos bancos dos servidores
(devices(), users(), write_count()); o veredito é o do oráculo do servidor de referência (os passos do /verify).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import os

import pytest
import requests

from apoio import comando_script, anotar_saida, ler_credenciais, semear_iguais

import sincronizar_bancos as sb

CAMPOS = ("owner_name", "cpf", "email", "address", "license_type", "created_by")


# ---------------------------------------------------------------------------
# Ajudantes
# ---------------------------------------------------------------------------

def dados(srv) -> dict[str, tuple]:
    return {k: tuple(d[c] for c in CAMPOS) for k, d in srv.devices().items()}


def assert_iguais(par) -> None:
    """Os dois lados com as mesmas chaves, os mesmos campos definíveis e o mesmo veredito."""
    assert dados(par.principal) == dados(par.backup)
    assert par.principal.vereditos() == par.backup.vereditos()


def rodar(par, *args, **env):
    r = par.rodar("--json", *args, **env)
    assert r.stdout.strip(), f"sem JSON (código {r.codigo}): {r.stderr[-2000:]}"
    return r, r.json()


def par_doc(doc) -> dict:
    (pair,) = doc["backups"]
    return pair


def escritas(par) -> tuple[int, int]:
    return par.principal.write_count(), par.backup.write_count()


def semear(srv, chaves, **campos) -> None:
    for i, chave in enumerate(chaves):
        base = dict(license_type=("anual", "mensal", "vitalicia")[i % 3], owner_name=f"Cliente {chave} Açaí",
                    cpf=f"{i:011d}", email=f"c{i}@exemplo.com.br", address="Rua das Flores, 10",
                    created_by=("admin", "sergio")[i % 2])
        base.update(campos)
        srv.add_device(chave, **base)


def arquivo_de_estado(par) -> Path:
    """DADOS_DIR/estado/par-*.json do par (principal, backup)."""
    return Path(sb.state_path(str(par.dados), sb.normalize_url(par.principal.url), sb.normalize_url(par.backup.url)))


def sincronizado(par, *args) -> None:
    """Primeira execução (cria o estado do par); tem de terminar limpa."""
    r, doc = rodar(par, *args)
    assert r.codigo == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert arquivo_de_estado(par).is_file()


# ---------------------------------------------------------------------------
# Ida e volta
# ---------------------------------------------------------------------------

def test_ida_e_volta_e_segunda_execucao_sem_escritas(par):
    semear(par.principal, [f"L{i}" for i in range(6)])
    par.principal.set_status("L5", "blocked")
    par.principal.add_user("ana", "senha-ana-123", email="ana@x.com")
    sincronizado(par, "--bidirecional")
    assert_iguais(par)

    # edições dos dois lados entre as execuções
    par.backup.set_device_fields("L1", owner_name="Editado no backup", email="novo@b.com")
    par.principal.set_device_fields("L2", address="Av. Editada no principal, 99")
    par.backup.set_status("L3", "blocked")
    par.principal.set_status("L5", "active")
    par.backup.add_device("SO-NO-BACKUP", owner_name="Criada no backup", created_by="sergio")
    par.principal.remove_device("L4")
    par.backup.add_user("bia", "senha-bia-123", email="bia@x.com", role="admin")
    par.zerar_contagens()
    r, doc = rodar(par, "--bidirecional")
    assert r.codigo == 0, r.stdout[-3000:]
    p, b = par.principal.devices(), par.backup.devices()
    assert p["L1"]["owner_name"] == "Editado no backup" and p["L1"]["email"] == "novo@b.com"
    assert b["L2"]["address"] == "Av. Editada no principal, 99"
    assert p["L3"]["status"] == "blocked" and b["L5"]["status"] == "active"
    assert p["SO-NO-BACKUP"]["owner_name"] == "Criada no backup" and p["SO-NO-BACKUP"]["created_by"] == "sergio"
    assert "L4" not in b
    assert "bia" in par.principal.users() and par.principal.users()["bia"]["role"] == "admin"
    assert_iguais(par)
    pair = par_doc(doc)
    assert pair["conflitos"] == [] and pair["exclusoes_retidas"] == []
    c = pair["contagens"]
    assert (c["licencas_atualizadas"], c["licencas_ativadas"], c["licencas_excluidas"]) == (1, 1, 1)
    assert c["no_principal"]["licencas_atualizadas"] == 1 and c["no_principal"]["licencas_bloqueadas"] == 1
    assert c["no_principal"]["licencas_criadas"] == 1 and c["no_principal"]["usuarios_criados"] == 1
    assert escritas(par) == (4, 3)  # principal: atualizar, bloquear, criar licença, criar usuário
    linhas = [ln for ln in ler_credenciais(par.dados) if ln[2] == "bia"]
    assert len(linhas) == 1 and linhas[0][1] == par.principal.url and linhas[0][4] == "criado"

    # segunda execução: nada mudou → zero escritas nos dois servidores
    par.zerar_contagens()
    r, doc = rodar(par, "--bidirecional")
    assert r.codigo == 0
    assert escritas(par) == (0, 0)
    assert par_doc(doc)["acoes"] == []


# ---------------------------------------------------------------------------
# Conflitos
# ---------------------------------------------------------------------------

def test_conflito_relatar_nao_mexe_em_nada_e_principal_resolve(par):
    semear(par.principal, ["C1", "C2"])
    sincronizado(par, "--bidirecional")
    par.principal.set_device_fields("C1", owner_name="Versão do principal")
    par.backup.set_device_fields("C1", owner_name="Versão do backup", cpf="999")
    par.backup.set_device_fields("C2", address="Só o backup mudou")  # só de um lado: é aplicada
    antes_p, antes_b = par.principal.devices(), par.backup.devices()
    par.zerar_contagens()
    r, doc = rodar(par, "--bidirecional")
    assert r.codigo == 1
    pair = par_doc(doc)
    (conflito,) = pair["conflitos"]
    assert conflito["chave"] == "C1" and conflito["resolucao"] == "relatar"
    campos = {c["campo"]: (c["principal"], c["backup"]) for c in conflito["campos"]}
    assert campos == {"owner_name": ("Versão do principal", "Versão do backup"), "cpf": ("00000000000", "999")}
    # o registro em conflito ficou intocado nos dois lados; o outro (C2) foi sincronizado
    depois_p, depois_b = par.principal.devices(), par.backup.devices()
    assert depois_p["C1"] == antes_p["C1"] and depois_b["C1"] == antes_b["C1"]
    assert depois_p["C2"]["address"] == "Só o backup mudou" and depois_b == antes_b
    assert escritas(par) == (1, 0)

    # o relatório em texto também mostra as duas versões
    par.zerar_contagens()
    r = par.rodar("--bidirecional", "--sem-progresso")
    assert r.codigo == 1 and escritas(par) == (0, 0)
    assert "Conflitos: 1" in r.stdout and "nada foi copiado" in r.stdout
    assert "owner_name: principal='Versão do principal' | backup='Versão do backup'" in r.stdout

    r, doc = rodar(par, "--bidirecional", "--conflito", "principal")
    assert r.codigo == 0, r.stdout[-3000:]
    assert par_doc(doc)["conflitos"][0]["resolucao"] == "principal"
    assert par.principal.devices()["C1"] == antes_p["C1"]
    assert par.backup.devices()["C1"]["owner_name"] == "Versão do principal"
    assert par.backup.devices()["C1"]["cpf"] == "00000000000"
    assert_iguais(par)
    par.zerar_contagens()
    r, _doc = rodar(par, "--bidirecional")
    assert r.codigo == 0 and escritas(par) == (0, 0)


# ---------------------------------------------------------------------------
# Servidor que voltou vazio: nada é apagado, saída 5, sugestão de restaurar
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("modo", [["--bidirecional"], ["--espelhar"]], ids=["bidirecional", "espelhar"])
def test_principal_vazio_nao_apaga_nada_e_sai_com_5(par, modo):
    semear(par.principal, [f"V{i:02d}" for i in range(12)])
    par.principal.add_user("ana", "senha-ana-123")
    sincronizado(par, *modo)
    assert len(par.backup.devices()) == 12
    par.principal.wipe()
    antes = par.backup.devices()
    usuarios_antes = par.backup.users()
    par.zerar_contagens()
    r = par.rodar(*modo, "--sem-progresso")
    assert r.codigo == 5, r.stdout[-3000:]
    assert escritas(par) == (0, 0)
    assert par.backup.devices() == antes and par.backup.users() == usuarios_antes
    assert par.principal.devices() == {}
    saida = r.stdout + r.stderr
    assert f"a listagem do PRINCIPAL ({par.principal.url}) está VAZIA (o backup tem 12 licenças)" in saida
    assert f"{sb.python_command()} sincronizar_bancos.py restaurar --de {par.backup.url}" in saida
    # o que --forcar faria, em números, e o número explícito que ele exige
    assert "apagaria 12 licenças do BACKUP" in saida and "--forcar --max-exclusoes 12" in saida
    assert "Código de saída: 5" in saida

    # de novo, em JSON: continua retendo (o estado não "aprendeu" que o principal está vazio)
    r, doc = rodar(par, *modo)
    assert r.codigo == 5 and par.backup.devices() == antes
    pair = par_doc(doc)
    assert sorted(x["chave"] for x in pair["exclusoes_retidas"]) == sorted(antes)
    assert {x["lado"] for x in pair["exclusoes_retidas"]} == {"backup"}
    assert "restaurar" in pair["trava_exclusoes"] and doc["codigo_saida"] == 5
    assert pair["contagens"]["exclusoes_retidas"] == 12 and pair["contagens"]["licencas_excluidas"] == 0


@pytest.mark.parametrize("modo", [["--bidirecional"], ["--espelhar"]], ids=["bidirecional", "espelhar"])
def test_forcar_apaga_exatamente_o_conjunto_relatado(par, modo):
    chaves = [f"F{i:02d}" for i in range(20)]
    semear(par.principal, chaves)
    sincronizado(par, *modo)
    apagadas = {"F01", "F04", "F07", "F11", "F15", "F18"}  # 6 > limite padrão de 2 (10 % de 20)
    for chave in apagadas:
        par.principal.remove_device(chave)
    r, doc = rodar(par, *modo)
    assert r.codigo == 5
    retidas = {(x["chave"], x["lado"]) for x in par_doc(doc)["exclusoes_retidas"]}
    assert retidas == {(k, "backup") for k in apagadas}
    assert "passam do limite de 2" in par_doc(doc)["trava_exclusoes"]
    antes = set(par.backup.devices())
    assert antes == set(chaves)

    par.zerar_contagens()
    r, doc = rodar(par, *modo, "--forcar")
    assert r.codigo == 0, r.stdout[-3000:]
    sumiram = antes - set(par.backup.devices())
    assert sumiram == {k for k, _lado in retidas}
    assert set(par.principal.devices()) == set(chaves) - apagadas
    assert par.backup.write_count() == len(apagadas) and par.principal.write_count() == 0
    pair = par_doc(doc)
    assert "--forcar" in pair["trava_exclusoes"] and pair["exclusoes_retidas"] == []
    assert pair["contagens"]["licencas_excluidas"] == len(apagadas)
    par.zerar_contagens()
    r, _doc = rodar(par, *modo)
    assert r.codigo == 0 and escritas(par) == (0, 0)


# ---------------------------------------------------------------------------
# restaurar
# ---------------------------------------------------------------------------

def test_restaurar_reabastece_o_principal_vazio_e_as_execucoes_seguintes_nao_mudam_nada(par):
    chaves = [f"R{i:02d}" for i in range(10)]
    semear(par.principal, chaves)
    par.principal.set_status("R02", "blocked")
    par.principal.set_status("R05", "blocked")
    par.principal.add_user("ana", "senha-ana-123", email="ana@x.com")
    par.principal.add_user("bia", "senha-bia-123", role="admin")
    sincronizado(par)
    assert_iguais(par)
    backup_antes = par.backup.devices()

    par.principal.wipe()
    r, doc = rodar(par, "restaurar")
    assert r.codigo == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert doc["modo"] == "restauracao"
    assert par.backup.devices() == backup_antes  # a origem não é tocada
    assert set(par.principal.devices()) == set(chaves)
    assert dados(par.principal) == dados(par.backup)
    assert par.principal.vereditos() == par.backup.vereditos()
    assert {k for k, d in par.principal.devices().items() if d["status"] == "blocked"} == {"R02", "R05"}
    assert set(par.principal.users()) == {"ana", "bia"}
    assert par.principal.users()["bia"]["role"] == "admin"
    # usuários recriados com senhas novas, guardadas no arquivo de credenciais, que funcionam
    linhas = {ln[2]: ln for ln in ler_credenciais(par.dados) if ln[1] == par.principal.url}
    assert set(linhas) == {"ana", "bia"}
    for nome, linha in linhas.items():
        assert linha[4] == "criado" and linha[3] not in ("senha-ana-123", "senha-bia-123")
        resp = requests.post(par.principal.url + "/admin/login", json={"username": nome, "password": linha[3]},
                             timeout=10)
        assert resp.status_code == 200, resp.text
    # relatório: o que não se restaura
    texto = par.rodar("restaurar", "--simular", "--sem-progresso").stdout
    assert "as datas recomeçam hoje no principal" in texto and "senhas" in texto

    par.zerar_contagens()
    r, doc = rodar(par)
    assert r.codigo == 0, r.stdout[-3000:]
    assert escritas(par) == (0, 0)
    par.zerar_contagens()
    r, doc = rodar(par, "--bidirecional")
    assert escritas(par) == (0, 0)
    assert r.codigo == 0 and par_doc(doc)["conflitos"] == []
    assert_iguais(par)


def test_bidirecional_depois_de_restaurar_nao_relata_conflito_de_bloqueio_derivado(par):
    semear(par.backup, ["OK-1", "OK-2"])
    par.backup.add_device("VENCIDA", owner_name="Vencida nos dois", end_date="2020-01-01", created_by="sergio")
    par.backup.add_device("PENDENTE", owner_name="Pendente", status="pending", created_by="sergio")
    r, _doc = rodar(par, "restaurar")
    assert r.codigo == 0
    assert par.principal.vereditos() == par.backup.vereditos()
    par.zerar_contagens()
    r, doc = rodar(par, "--bidirecional")
    assert escritas(par) == (0, 0)
    assert par_doc(doc)["conflitos"] == []
    assert r.codigo == 0


def test_restaurar_de_escolhe_o_backup_de_origem(par_dois_backups):
    par = par_dois_backups
    b1, b2 = par.backups
    semear(b1, ["SO-B1"])
    semear(b2, ["SO-B2-1", "SO-B2-2"])
    b2.set_status("SO-B2-2", "blocked")
    r, doc = rodar(par, "restaurar", "--de", b2.url + "/")
    assert r.codigo == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert set(par.principal.devices()) == {"SO-B2-1", "SO-B2-2"}
    assert par.principal.devices()["SO-B2-2"]["status"] == "blocked"
    assert set(b1.devices()) == {"SO-B1"}  # o outro backup não é tocado
    # --de que não é um backup configurado: erro de configuração, nada gravado
    par.zerar_contagens()
    r = par.rodar("restaurar", "--de", "http://127.0.0.1:9/")
    assert r.codigo == 2 and "não é um dos backups configurados" in r.stderr
    assert par.principal.write_count() == 0
    # restaurar não combina com --bidirecional: a opção nem é do comando
    r = par.rodar("restaurar", "--bidirecional")
    assert r.codigo == 2 and "--bidirecional não vale para o comando restaurar" in r.stderr


def test_restaurar_de_backup_vazio_nao_faz_nada_e_sai_com_5(par):
    semear(par.principal, ["P1", "P2"])
    r = par.rodar("restaurar", "--sem-progresso")
    assert r.codigo == 5
    assert "também está vazio: nada a restaurar" in r.stdout
    assert set(par.principal.devices()) == {"P1", "P2"} and escritas(par) == (0, 0)


def test_estado_corrompido_vira_primeira_sincronizacao_sem_exclusoes(par):
    semear(par.principal, [f"E{i}" for i in range(10)])
    sincronizado(par, "--bidirecional")
    arquivo = arquivo_de_estado(par)
    arquivo.write_text('{"versao": 1, "licencas": [', encoding="utf-8")
    par.principal.remove_device("E3")  # sem estado, isto não pode virar exclusão no backup
    par.principal.set_device_fields("E4", owner_name="Mudou no principal")
    r, doc = rodar(par, "--bidirecional")
    pair = par_doc(doc)
    avisos = " ".join(pair["avisos"])  # o arquivo danificado foi guardado ao lado, com a data no nome
    assert "danificado" in avisos and "primeira sincronização" in avisos and ".danificado-" in avisos
    assert pair["primeira_sincronizacao"] is True
    assert "E3" in par.backup.devices() and "E3" in par.principal.devices()  # recriada, nunca apagada
    assert [c["chave"] for c in pair["conflitos"]] == ["E4"] and r.codigo == 1
    assert par.backup.devices()["E4"]["owner_name"] != "Mudou no principal"
    _estado_legivel(par)  # e o estado foi regravado, válido


# ---------------------------------------------------------------------------
# Execução morta com SIGKILL no meio, seguida de outra
# ---------------------------------------------------------------------------

def _iniciar(par, *args) -> subprocess.Popen:
    return subprocess.Popen(comando_script(*args), env=par.ambiente(), cwd=par.tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")


def _matar_depois_de(proc: subprocess.Popen, srv, escritas_min: int, limite_s: float = 30) -> None:
    fim = time.monotonic() + limite_s
    while srv.write_count() < escritas_min:
        assert proc.poll() is None, "a execução terminou antes do ponto de corte"
        assert time.monotonic() < fim, "a execução não chegou ao ponto de corte"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=10)
    anotar_saida("[morto com SIGKILL]", proc.returncode, out, err)
    assert proc.returncode == -signal.SIGKILL


def _estado_legivel(par) -> None:
    arquivo = arquivo_de_estado(par)
    assert arquivo.parent.name == "estado" and arquivo.name.startswith("par-")
    doc = json.loads(arquivo.read_text(encoding="utf-8"))
    assert doc["versao"] == 1 and doc["principal"] == par.principal.url and doc["backup"] == par.backup.url


@pytest.mark.skipif(os.name != "posix", reason="kill -9 (SIGKILL) só existe em POSIX")
@pytest.mark.parametrize("modo", [[], ["--bidirecional"]], ids=["unidirecional", "bidirecional"])
def test_execucao_morta_com_sigkill_e_a_seguinte_nao_perde_nem_duplica(par, modo):
    semear(par.principal, [f"BASE-{i}" for i in range(5)])
    sincronizado(par, *modo)
    novas_p = [f"P-{i:03d}" for i in range(300)]
    semear(par.principal, novas_p)
    if modo:  # no bidirecional, o backup também tem novidades que vão para o principal
        semear(par.backup, [f"B-{i:03d}" for i in range(20)], created_by="sergio")
        par.backup.add_user("bia", "senha-bia-123")
    for nome in ("ana", "caio", "dora"):
        par.principal.add_user(nome, f"senha-{nome}-123")
    esperadas = set(par.principal.devices()) | set(par.backup.devices())
    for srv in (par.principal, par.backup):
        srv.set_faults(latency_ms=15)

    proc = _iniciar(par, "--sem-progresso", "--paralelo", "4", *modo)
    _matar_depois_de(proc, par.backup, 60)
    assert 60 <= par.backup.write_count() < 300  # morreu no meio mesmo
    _estado_legivel(par)

    for srv in (par.principal, par.backup):
        srv.clear_faults()
    r, doc = rodar(par, *modo)
    assert r.codigo == 0, r.stdout[-3000:] + r.stderr[-2000:]
    _estado_legivel(par)
    assert set(par.principal.devices()) == set(par.backup.devices()) == esperadas
    assert_iguais(par)
    assert set(par.principal.users()) <= set(par.backup.users())
    if modo:
        assert set(par.principal.users()) == set(par.backup.users()) == {"ana", "caio", "dora", "bia"}
    # cada usuário criado uma única vez: uma linha "criado" por (servidor, usuário)
    criados = [(ln[1], ln[2]) for ln in ler_credenciais(par.dados) if ln[4].startswith("criado")]
    assert len(criados) == len(set(criados))
    assert {u for _s, u in criados} == ({"ana", "caio", "dora", "bia"} if modo else {"ana", "caio", "dora"})
    par.zerar_contagens()
    r, _doc = rodar(par, *modo)
    assert r.codigo == 0 and escritas(par) == (0, 0)


@pytest.mark.skipif(os.name != "posix", reason="kill -9 (SIGKILL) só existe em POSIX")
def test_bidirecional_morta_entre_criar_e_bloquear_e_completada_na_seguinte(par):
    semear(par.principal, ["BASE-1"])
    sincronizado(par, "--bidirecional")
    bloqueadas = [f"BLQ-{i:02d}" for i in range(6)]  # menos que --paralelo (8): todas as cadeias ao mesmo tempo
    semear(par.principal, bloqueadas, status="blocked")
    # o bloqueio no backup fica pendurado: a execução é morta depois de criar todas
    # (só o POST: o GET que sonda a rota antes das cadeias responde normalmente)
    par.backup.delay("POST", "/admin/devices/<id>/deactivate", 20, times=None)
    proc = _iniciar(par, "--sem-progresso", "--bidirecional")
    fim = time.monotonic() + 20
    while not all(k in par.backup.devices() for k in bloqueadas):
        assert time.monotonic() < fim and proc.poll() is None
        time.sleep(0.02)
    _matar_depois_de(proc, par.backup, len(bloqueadas))
    par.backup.clear_route_rules()
    _estado_legivel(par)
    r, doc = rodar(par, "--bidirecional")
    assert par.backup.vereditos() == par.principal.vereditos()
    assert par_doc(doc)["conflitos"] == [] and r.codigo == 0


def test_bidirecional_bloqueio_que_falhou_e_repetido_na_seguinte(par):
    semear(par.principal, ["BASE-1"])
    sincronizado(par, "--bidirecional")
    par.principal.add_device("NOVA", owner_name="Nova bloqueada", status="blocked", created_by="sergio")
    # o bloqueio falha mesmo repetido (4 vezes): a criação é desfeita, o backup nunca fica liberando
    par.backup.fail_next("POST", "/admin/devices/<id>/deactivate", 500, {"error": "falha simulada"}, times=4)
    r, doc = rodar(par, "--bidirecional")
    assert r.codigo == 1 and len(par_doc(doc)["falhas"]) == 1
    assert "NOVA" not in par.backup.devices() and par.principal.veredito("NOVA") is False
    r, doc = rodar(par, "--bidirecional")
    assert par_doc(doc)["conflitos"] == []
    assert par.backup.devices()["NOVA"]["status"] == "blocked"
    assert r.codigo == 0


# ---------------------------------------------------------------------------
# Estado e exclusões (bidirecional)
# ---------------------------------------------------------------------------

def test_execucao_sem_escritas_grava_o_estado_e_o_bidirecional_nao_recria_o_apagado(par):
    semear_iguais(par, ["L1", "L2", "L3"])
    assert par.rodar("--json", "--bidirecional").codigo == 0  # nada a escrever, mas o estado vira a base
    par.principal.remove_device("L2")
    r = par.rodar("--json", "--bidirecional")
    assert "L2" not in par.principal.devices(), r.stdout[-2000:]
    assert par.backup.veredito("L2") is False


# ---------------------------------------------------------------------------
# Restaurar sem --forcar
# ---------------------------------------------------------------------------

def test_restaurar_sem_forcar_nunca_bloqueia_licenca_viva_no_principal(par):
    par.principal.add_device("ABC")
    par.principal.add_device("XYZ")
    par.backup.add_device(" ABC")  # id com espaços: inalcançável
    par.backup.add_device("XYZ", end_date="lixo")  # data ilegível no backup
    par.backup.add_device("FALTANDO")
    r = par.rodar("restaurar", "--json")
    assert par.principal.veredito("ABC") and par.principal.veredito("XYZ"), r.stdout[-2000:]
    assert "FALTANDO" in par.principal.devices()


# ---------------------------------------------------------------------------
# Exclusões: resposta que não é da API e modos misturados
# ---------------------------------------------------------------------------

def test_404_html_ao_excluir_nao_conta_como_excluida(par):
    par.principal.add_device("A-1", owner_name="Vai ser apagada")
    par.principal.add_device("B-1")
    assert par.rodar("--bidirecional").codigo == 0
    par.principal.remove_device("A-1")
    # Um túnel/proxy (ou o Flask, numa rota que não casa) responde 404 com uma página HTML.
    par.backup.override("DELETE", "/admin/devices/<id>/delete", 404, "<html><h1>Not Found</h1></html>",
                        content_type="text/html")
    r = par.rodar("--bidirecional", "--json")
    assert r.codigo == 1
    falhas = r.json()["backups"][0]["falhas"]
    assert [f["chave"] for f in falhas] == ["A-1"]
    par.backup.clear_overrides()
    assert "A-1" in par.backup.devices()
    r = par.rodar("--bidirecional")  # lembra que foi apagada no principal: tenta de novo, não recria lá
    assert r.codigo == 0 and "A-1" not in par.backup.devices() and "A-1" not in par.principal.devices()


def test_modos_misturados_nao_ressuscitam_licenca_apagada(par):
    for k in ("C-1", "C-2", "C-3"):
        par.principal.add_device(k)
    assert par.rodar("--bidirecional").codigo == 0
    par.principal.remove_device("C-1")
    assert par.rodar().codigo == 0  # unidirecional no meio
    assert par.rodar("--bidirecional").codigo == 0
    assert "C-1" not in par.principal.devices() and "C-1" not in par.backup.devices()


# ---------------------------------------------------------------------------
# Principal que voltou vazio (unidirecional) e restaurar com o principal intacto
# ---------------------------------------------------------------------------

def test_principal_que_voltou_vazio_para_tudo_mesmo_sem_exclusoes(par):
    for i in range(20):
        par.principal.add_device(f"E-{i:02d}")
    assert par.rodar().codigo == 0
    par.principal.wipe()
    par.backup.reset_counts()
    r = par.rodar()
    assert r.codigo == 5 and "VAZIA" in r.stdout + r.stderr and "restaurar" in r.stdout + r.stderr
    assert "Par parado: NADA foi gravado" in r.stdout and "licenças sincronizadas" not in r.stdout
    assert par.backup.write_count() == 0
    doc = par.rodar("--json").json()["backups"][0]
    assert doc["parado_por_perda_de_dados"] is True and doc["codigo_saida"] == 5
    par.principal.add_device("E-NOVA")  # um cadastro novo não desarma a trava (perdeu mais da metade)
    r = par.rodar("--espelhar", "--max-exclusoes", "100")
    assert r.codigo == 5 and par.backup.write_count() == 0 and len(par.backup.devices()) == 20
    estado = json.loads(next((par.dados / "estado").glob("par-*[0-9a-f].json")).read_text(encoding="utf-8"))
    assert estado["contagem"]["principal"] == 20


def test_restaurar_com_principal_intacto_nao_sobrescreve(par):
    par.principal.add_device("R-1", owner_name="Original")
    par.principal.add_device("R-2")
    assert par.rodar().codigo == 0
    par.principal.set_status("R-2", "blocked")            # revendedor bloqueou no principal...
    par.principal.set_device_fields("R-1", owner_name="Editado")  # ...e editou, depois da sincronização
    par.principal.remove_device("R-1")
    par.principal.add_device("R-1", owner_name="Editado")
    par.backup.add_device("R-3", owner_name="Só no backup")
    r = par.rodar("restaurar", "--json")
    assert r.codigo == 1  # o veredito de R-2 difere e restaurar não sobrescreve: relatado, não "corrigido"
    assert r.json()["backups"][0]["paridade"]["diferentes"] == ["R-2"]
    devs = par.principal.devices()
    assert devs["R-2"]["status"] == "blocked" and devs["R-1"]["owner_name"] == "Editado"
    assert devs["R-3"]["owner_name"] == "Só no backup"  # o que faltava foi criado
    r = par.rodar("restaurar", "--forcar")
    assert r.codigo == 0 and par.principal.devices()["R-1"]["owner_name"] == "Original"
