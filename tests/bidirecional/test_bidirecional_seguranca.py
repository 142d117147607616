"""O modo bidirecional nunca estraga o principal: backup restaurado de uma cópia antiga, backup zerado,
--forcar, bloqueio feito no principal durante a execução e contagens por lado.

Servidores de referência reais e o script por main() no processo do pytest. O que vale é o que está
NOS SERVIDORES depois: os registros do principal (devices()) e o veredito do oráculo do servidor de referência.
"""

from __future__ import annotations

import os
import signal

import pytest
from apoio import anotar_saida, backup_libera_o_que_o_principal_nega, iniciar_script, so_escritas

import sincronizar_bancos as sb

CAMPOS = ("owner_name", "cpf", "email", "address", "license_type", "created_by", "status")


def registros(srv) -> dict[str, tuple]:
    return {k: tuple(d[c] for c in CAMPOS) for k, d in srv.devices().items()}


def rodar(par, *args):
    r = par.rodar("--json", "--bidirecional", *args)
    assert r.stdout.strip(), r.stderr[-2000:]
    return r, r.json()


def semear(par, chaves) -> None:
    for i, chave in enumerate(chaves):
        par.principal.add_device(chave, license_type=("anual", "mensal", "vitalicia")[i % 3],
                                 owner_name=f"Cliente {chave}", cpf=f"{i:011d}", created_by="admin")


def iguais(par) -> None:
    assert registros(par.principal).keys() == registros(par.backup).keys()
    assert par.principal.vereditos() == par.backup.vereditos()


def test_backup_restaurado_de_copia_antiga_nao_apaga_nem_reativa_nem_reverte_o_principal(par):
    semear(par, [f"L{i:02d}" for i in range(10)])
    r, _ = rodar(par)
    assert r.codigo == 0, r.stdout[-3000:]
    copia_da_noite = par.backup.export_data()

    # um dia de trabalho no principal, sincronizado de hora em hora
    par.principal.add_device("VENDA-1", owner_name="Vendida hoje 1")
    par.principal.add_device("VENDA-2", owner_name="Vendida hoje 2")
    par.principal.set_status("L01", "blocked")  # o vendedor bloqueou
    par.principal.set_device_fields("L02", owner_name="Nome corrigido")
    par.principal.remove_device("L03")  # e apagou uma
    r, _ = rodar(par)
    assert r.codigo == 0, r.stdout[-3000:]
    iguais(par)
    principal_depois_do_dia = registros(par.principal)
    veredito_do_principal = par.principal.vereditos()

    par.backup.import_data(copia_da_noite)  # a hospedagem restaurou o backup da noite anterior
    par.zerar_contagens()
    r, doc = rodar(par)
    assert r.codigo == 5, r.stdout[-3000:]
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
    assert registros(par.principal) == principal_depois_do_dia  # nada apagado, reativado ou revertido
    assert par.principal.vereditos() == veredito_do_principal
    (pair,) = doc["backups"]
    perda = pair["perda_de_dados"]
    assert perda["lado"] == "backup" and perda["tipo"] == "versao_anterior"
    assert set(perda["registros"]) == {"VENDA-1", "VENDA-2", "L01", "L02", "L03"}
    assert perda["comando"] == f"{sb.python_command()} sincronizar_bancos.py --backup {par.backup.url}"
    texto = par.rodar("--bidirecional", "--sem-progresso")
    assert texto.codigo == 5 and perda["comando"] in texto.stdout and "BACKUP" in texto.stdout

    # o comando sugerido, rodado como está, recompleta o backup a partir do principal
    r = par.rodar(*perda["comando"].split()[2:], "--sem-progresso")
    assert r.codigo == 0, r.stdout[-3000:]
    assert registros(par.principal) == principal_depois_do_dia
    iguais(par)
    # e a execução bidirecional seguinte não escreve nada
    par.zerar_contagens()
    r, _ = rodar(par)
    assert r.codigo == 0, r.stdout[-3000:]
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0


def test_uma_exclusao_no_backup_vira_conflito_e_nao_apaga_no_principal(par):
    semear(par, [f"L{i:02d}" for i in range(6)])
    assert rodar(par)[0].codigo == 0
    par.backup.remove_device("L04")
    par.zerar_contagens()
    r, doc = rodar(par)
    assert r.codigo == 1 and "L04" in par.principal.devices()
    assert par.principal.write_count() == 0
    (pair,) = doc["backups"]
    assert [c["chave"] for c in pair["conflitos"]] == ["L04"] and pair["situacao"] == "conflitos"
    texto = par.rodar("--bidirecional", "--sem-progresso").stdout
    assert "conflito(s) a resolver" in texto and "falha" not in texto.split("Resumo")[0].lower().replace(
        "0 falhas", "")
    # o vendedor confirma que a exclusão vale: --conflito backup apaga no principal
    r, _ = rodar(par, "--conflito", "backup")
    assert r.codigo == 0 and "L04" not in par.principal.devices()


def test_backup_zerado_forcar_nao_apaga_nada_no_principal_e_o_comando_sugerido_recompleta(par):
    chaves = [f"Z{i:02d}" for i in range(21)]
    semear(par, chaves)
    assert rodar(par)[0].codigo == 0
    principal = registros(par.principal)
    par.backup.wipe()
    par.zerar_contagens()
    r = par.rodar("--bidirecional", "--sem-progresso")
    assert r.codigo == 5
    assert "apagaria 21 licenças do PRINCIPAL" in r.stdout
    assert "--forcar --max-exclusoes 21" in r.stdout
    comando = f"{sb.python_command()} sincronizar_bancos.py --backup {par.backup.url}"
    assert comando in r.stdout
    # seguir a dica de --forcar sozinho (mesmo com "o backup vence") não apaga nada no principal
    for extra in ([], ["--conflito", "backup"]):
        r, _ = rodar(par, "--forcar", *extra)
        assert r.codigo == 5 and registros(par.principal) == principal
    assert par.principal.write_count() == 0
    # o comando sugerido recompleta o backup
    r = par.rodar(*comando.split()[2:], "--sem-progresso")
    assert r.codigo == 0, r.stdout[-3000:]
    iguais(par)
    assert registros(par.principal) == principal


def test_bloqueio_feito_no_principal_durante_a_execucao_continua_valendo(par):
    semear(par, ["C-1", "C-2"])
    assert rodar(par)[0].codigo == 0
    # no backup, o revendedor corrigiu o nome: a execução vai levar essa versão para o principal
    par.backup.set_device_fields("C-1", owner_name="Nome corrigido no backup")
    # ... e o vendedor bloqueia C-1 no principal logo depois da primeira leitura da execução
    par.principal.on_request("GET", "/admin/devices", lambda s: s.set_status("C-1", "blocked"), when="after")
    par.zerar_contagens()
    r, doc = rodar(par)
    assert r.codigo == 1, r.stdout[-3000:]
    assert par.principal.devices()["C-1"]["status"] == "blocked"
    assert par.principal.veredito("C-1") is False
    (pair,) = doc["backups"]
    assert "C-1" in [c["chave"] for c in pair["conflitos"]]
    assert any("durante esta execução" in c["descricao"] for c in pair["conflitos"])
    # listagens do principal: a primeira leitura, a releitura antes da primeira escrita nele e a releitura final
    # dos dois lados (depois da última escrita), uma cada
    assert par.principal.counts[("GET", "/admin/devices")] == 3
    # o backup não fica liberando o que o principal agora nega, e o bloqueio segue nas próximas execuções
    for _ in range(2):
        r, _ = rodar(par)
        assert par.principal.devices()["C-1"]["status"] == "blocked"
        assert par.backup.veredito("C-1") is False


def test_contagens_por_lado_no_texto_no_json_e_no_historico_batem_com_os_servidores(par):
    semear(par, [f"Q{i:02d}" for i in range(5)])
    assert rodar(par)[0].codigo == 0
    par.principal.add_device("NOVA-P", owner_name="Nova no principal")  # 1 escrita no backup
    par.backup.add_device("NOVA-B", owner_name="Nova no backup")  # 1 escrita no principal
    par.backup.set_device_fields("Q01", owner_name="Mudou no backup")  # 1 escrita no principal
    par.backup.set_status("Q02", "blocked")  # 1 escrita no principal
    par.zerar_contagens()
    r, doc = rodar(par)
    assert r.codigo == 0, r.stdout[-3000:]
    no_principal, no_backup = par.principal.write_count(), par.backup.write_count()
    assert (no_principal, no_backup) == (3, 1)
    (pair,) = doc["backups"]
    assert pair["contagens"]["escritas"] == {"principal": 3, "backup": 1}
    assert sb.count_changes(pair["contagens"]) == 1 and sb.count_changes(pair["contagens"]["no_principal"]) == 3
    assert sum(1 for a in pair["acoes"] if a["servidor"] == "principal") == 3
    # o texto diz onde as escritas foram
    par.backup.set_device_fields("Q03", owner_name="De novo no backup")
    par.zerar_contagens()
    texto = par.rodar("--bidirecional", "--sem-progresso").stdout
    assert "1 escrita feita no principal" in texto and "0 escritas no backup" in texto
    # histórico (JSON) e resumo da última execução, pelos mesmos números
    hist = par.rodar("historico", "--json").json()["execucoes"]
    assert hist[0]["contagens"]["escritas"] == {"principal": 1, "backup": 0}
    assert hist[1]["contagens"]["escritas"] == {"principal": 3, "backup": 1}
    resumo = sb.json.loads((par.dados / sb.LAST_RUN_FILE).read_text(encoding="utf-8"))
    assert resumo["servidores"][1]["escritas"] == {"principal": 1, "backup": 0}


def test_restaurar_diz_que_as_escritas_foram_para_o_principal(par):
    semear(par, [f"R{i:02d}" for i in range(4)])
    assert par.rodar("--sem-progresso").codigo == 0
    par.principal.wipe()
    par.zerar_contagens()
    r = par.rodar("restaurar", "--json")
    assert r.codigo == 0, r.stdout[-3000:]
    (pair,) = r.json()["backups"]
    assert pair["contagens"]["escritas"] == {"principal": par.principal.write_count(), "backup": 0}
    assert par.backup.write_count() == 0 and par.principal.write_count() >= 4
    texto = par.rodar("restaurar", "--simular", "--sem-progresso").stdout
    assert f"principal {par.principal.url} ← backup {par.backup.url}" in texto


def test_estado_antigo_de_seis_campos_continua_legivel(tmp_path):
    """Um estado gravado pela versão anterior (6 valores por licença) é lido sem virar 'primeira sincronização'."""
    import json
    url_p, url_b = "https://p.exemplo.com.br", "https://b.exemplo.com.br"
    caminho = sb.state_path(str(tmp_path), url_p, url_b)
    (tmp_path / "estado").mkdir()
    with open(caminho, "w", encoding="utf-8") as arquivo:
        json.dump({"versao": 1, "principal": url_p, "backup": url_b, "contagem": {"principal": 1, "backup": 1},
                   "usuarios": [], "licencas": {"L1": ["a", "a", "active", "active", None, None]}}, arquivo)
    estado, aviso = sb.load_state(str(tmp_path), url_p, url_b)
    assert aviso is None and estado.licenses["L1"].older_backup == ()
    sb.save_state(str(tmp_path), estado)
    assert sb.load_state(str(tmp_path), url_p, url_b)[0] == estado


# ---------------------------------------------------------------------------
# Registro ilegível e bloqueio durante a execução
# ---------------------------------------------------------------------------

def test_bidirecional_registro_ilegivel_no_backup_nao_fica_liberado_se_o_principal_nega(par):
    par.principal.add_device("K")
    par.principal.add_device("OUTRA")
    assert par.rodar("--json", "--bidirecional").codigo == 0
    par.principal.set_status("K", "blocked")
    par.backup.set_dates("K", "2026-11-01", "31/12/2027")  # fim ilegível: o servidor o trata como ausente
    r = par.rodar("--json", "--bidirecional")
    assert par.backup.veredito("K") is False, r.stdout[-2000:]
    assert par.principal.devices()["K"]["status"] == "blocked"


def test_bloqueio_durante_a_execucao_ja_bloqueia_o_backup_na_mesma_execucao(par):
    for chave in ("C-1", "C-2"):
        par.principal.add_device(chave, owner_name=f"Cliente {chave}")
    assert par.rodar("--json", "--bidirecional").codigo == 0
    par.backup.set_device_fields("C-1", owner_name="Nome corrigido no backup")
    par.principal.on_request("GET", "/admin/devices", lambda s: s.set_status("C-1", "blocked"), when="after")
    r = par.rodar("--json", "--bidirecional")
    assert par.principal.veredito("C-1") is False and par.backup.veredito("C-1") is False, r.stdout[-2000:]
    (pair,) = r.json()["backups"]
    assert pair["paridade"]["ok"] is True  # conferida contra a releitura do principal


# ---------------------------------------------------------------------------
# Cadeia desfeita no backup e um fim abrupto no meio
# ---------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="kill -9 (SIGKILL) só existe em POSIX")
@pytest.mark.parametrize("excluiu", [False, True], ids=["antes_da_exclusao", "depois_da_exclusao"])
def test_morta_entre_o_diario_e_a_exclusao_que_desfaz_nunca_vira_conflito_que_apaga_no_principal(par, excluiu):
    """Bidirecional: o nome de uma licença bloqueada muda no principal; no backup o bloqueio funciona (a prova da
    rota) mas falha depois da regravação, que a deixou liberada. A cadeia é desfeita excluindo-a no backup, e o
    desfazer está no diário ANTES da exclusão. A execução morre com kill -9 quando a exclusão chega ao backup:
    antes de ela valer (a licença ainda liberada, regravada por nós) ou depois (ausente no backup). A seguinte
    nunca vê um conflito nem escreve no principal: bloqueia (como primeira escrita) ou recria e bloqueia."""
    chaves = [f"R-{i}" for i in range(5)]
    for srv in (par.principal, par.backup):
        for chave in chaves:
            srv.add_device(chave, owner_name=f"Cliente {chave}", status="blocked", created_by="sergio")
    r, _ = rodar(par)
    assert r.codigo == 0
    par.principal.set_device_fields("R-0", owner_name="Cliente R-0 (nome corrigido)")
    principal = registros(par.principal)
    filho = []
    # depois da regravação, o bloqueio passa a falhar; quando a exclusão que desfaz chega, a execução morre
    par.backup.on_request("POST", "/admin/devices/create", lambda s: s.fail_next(
        "POST", "/admin/devices/<id>/deactivate", 500, {"error": "falha no banco"}, times=None), when="after")
    if not excluiu:  # a exclusão não chega a valer (morreu antes)
        par.backup.fail_next("DELETE", "/admin/devices/<id>/delete", 500, {"error": "falha"}, times=None)
    par.backup.on_request("DELETE", "/admin/devices/<id>/delete",
                          lambda s: os.kill(filho[0].pid, signal.SIGKILL), when="before")
    proc = iniciar_script(par, "--bidirecional", "--sem-progresso")
    filho.append(proc)
    out, err = proc.communicate(timeout=90)
    anotar_saida(f"[kill -9 na exclusão que desfaz, excluiu={excluiu}]", proc.returncode, out, err)
    # morta no meio da cadeia: liberada (só antes da exclusão) até a próxima execução, que a bloqueia primeiro
    assert backup_libera_o_que_o_principal_nega(par) == ([] if excluiu else ["R-0"]), out[-3000:]
    assert proc.returncode == -signal.SIGKILL, out[-3000:]
    assert ("R-0" in par.backup.devices()) is not excluiu
    par.backup.clear_hooks()
    par.backup.clear_overrides()
    par.principal.add_device("A-NOVA", owner_name="Venda nova")  # outra escrita no backup, que vem depois
    par.zerar_contagens()
    r, doc = rodar(par)
    (pair,) = doc["backups"]
    assert pair["conflitos"] == [] and r.codigo == 0, r.stdout[-3000:]
    assert par.principal.write_count() == 0 and registros(par.principal) == {
        **principal, "A-NOVA": registros(par.principal)["A-NOVA"]}
    if not excluiu:  # a liberada por nós é a primeira escrita (antes da venda nova, que vem antes na ordem)
        escritas = [(m, c) for m, c, _ in par.backup.requests_log if (m, c) in so_escritas(par.backup.counts)]
        assert escritas[0] == ("POST", "/admin/devices/<id>/deactivate"), escritas
    assert par.backup.devices()["R-0"]["owner_name"] == "Cliente R-0 (nome corrigido)"
    assert par.backup.vereditos() == par.principal.vereditos()
    texto = par.rodar("--bidirecional", "--sem-progresso")
    assert texto.codigo == 0 and "--conflito backup" not in texto.stdout
