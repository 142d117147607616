"""O que cada backup consegue guardar: colunas estreitas do MySQL (cortando calado), datas RFC 1123 e a
primeira versão do servidor (ignora o created_by e grava 'admin').

Regras: o que o backup guardou cortado ou trocado é relatado como divergência não sincronizável (servidor
e campo), nunca regravado a cada execução e, no bidirecional, nunca tomado como edição do vendedor (o
principal fica byte a byte igual). A segunda execução não escreve nada. Veredito conferido pelo oráculo
de cada servidor de referência.
"""

from __future__ import annotations

import pytest
from apoio import backup_libera_o_que_o_principal_nega, diferentes_no_oraculo, rodar_json, semear_misto, trocar_backup

NOME_LONGO = "Comércio de Peças e Serviços Automotivos " * 8  # 320 caracteres
CRIADOR_LONGO = "revendedor.com.um.nome.de.usuario.bem.comprido." * 3  # 141 caracteres


def semear_longos(srv) -> None:
    srv.add_device("LONGO-1", owner_name=NOME_LONGO.strip(), cpf="123.456.789-09 / 987.654.321-00",
                   created_by=CRIADOR_LONGO, email="cliente@exemplo.com")
    srv.add_device("LONGO-BLQ", owner_name=NOME_LONGO.strip(), status="blocked", created_by="sergio")
    srv.add_device("CURTO-1", owner_name="José", created_by="sergio")


@pytest.mark.parametrize("modo", [[], ["--bidirecional"]])
def test_mysql_que_corta_nao_e_regravado_e_a_diferenca_e_relatada(par, modo):
    semear_longos(par.principal)
    semear_misto(par.principal)
    trocar_backup(par, colacao="mysql", colunas="corta", datas="rfc1123")
    principal_antes = par.principal.devices()
    r, pair = rodar_json(par, *modo)
    assert r.codigo == 0, (pair["falhas"], pair.get("pendencias"))
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert par.backup.devices()["LONGO-1"]["owner_name"] == NOME_LONGO.strip()[:255]
    campos = {(d["chave"], d["campo"]) for d in pair["divergencias"] if "caracteres" in d["observacao"]}
    assert {("LONGO-1", "owner_name"), ("LONGO-1", "cpf"), ("LONGO-1", "created_by"),
            ("LONGO-BLQ", "owner_name")} <= campos
    assert all(par.backup.url in d["observacao"] for d in pair["divergencias"] if "caracteres" in d["observacao"])
    for _ in range(2):  # as seguintes não escrevem nada e não mexem no principal
        escritas = (par.principal.write_count(), par.backup.write_count())
        r, pair = rodar_json(par, *modo)
        assert r.codigo == 0 and (par.principal.write_count(), par.backup.write_count()) == escritas
        assert backup_libera_o_que_o_principal_nega(par) == []
    assert par.principal.devices() == principal_antes


@pytest.mark.parametrize("modo", [[], ["--bidirecional"]])
def test_primeira_versao_que_grava_admin_no_created_by_nunca_chega_ao_principal(par, modo):
    par.principal.add_device("LIB-1", owner_name="José da Silva", created_by="sergio")
    par.principal.add_device("LIB-2", owner_name="Ótica Visão", created_by="ana")
    par.principal.add_device("LIB-3", owner_name="Sem revendedor", created_by="admin")
    trocar_backup(par, versao="primeira")
    principal_antes = par.principal.devices()
    r, pair = rodar_json(par, *modo)
    assert r.codigo == 0, pair["falhas"]
    assert {k: d["created_by"] for k, d in par.backup.devices().items()} == {
        "LIB-1": "admin", "LIB-2": "admin", "LIB-3": "admin"}
    trocados = {d["chave"] for d in pair["divergencias"] if d["campo"] == "created_by"}
    assert trocados == {"LIB-1", "LIB-2"}
    for _ in range(2):
        escritas = (par.principal.write_count(), par.backup.write_count())
        r, pair = rodar_json(par, *modo)
        assert r.codigo == 0 and (par.principal.write_count(), par.backup.write_count()) == escritas
    assert par.principal.devices() == principal_antes  # byte a byte: o 'admin' do backup nunca subiu


def test_created_by_admin_num_servidor_atual_e_corrigido_e_nao_vira_limite(par):
    """Sinal parecido num servidor atual (created_by 'admin' no backup): a sonda diz que a rota existe,
    e a correção é feita pela rota própria (sem regravar o registro)."""
    par.principal.add_device("LIB-1", owner_name="José", created_by="sergio")
    par.backup.add_device("LIB-1", owner_name="José", created_by="admin")
    r, pair = rodar_json(par)
    assert r.codigo == 0
    assert par.backup.devices()["LIB-1"]["created_by"] == "sergio"
    assert par.backup.counts[("POST", "/admin/devices/update-created-by")] == 1
    assert par.backup.counts[("POST", "/admin/devices/create")] == 0
    assert not [d for d in pair["divergencias"] if d["campo"] == "created_by"]


def test_valor_editado_no_backup_que_nao_e_corte_continua_sendo_diferenca(par):
    par.principal.add_device("E-1", owner_name=NOME_LONGO.strip(), created_by="sergio")
    trocar_backup(par, colunas="corta").add_device("E-1", owner_name="Outro nome qualquer", created_by="sergio")
    r, _ = rodar_json(par)
    assert par.backup.counts[("POST", "/admin/devices/create")] == 1  # regravado (e então cortado)
    assert par.backup.devices()["E-1"]["owner_name"] == NOME_LONGO.strip()[:255]
    assert r.codigo == 0


def test_mysql_estrito_recusa_texto_longo_e_a_licenca_e_gravada_cortada_como_no_nao_estrito(par):
    """MySQL estrito: o 500 de um texto maior que a coluna não é repetido igual. Com o backup ainda vazio
    (não dá para saber se é MySQL) a escrita falha e o campo é apontado; quando a listagem já mostra as datas
    do MySQL, a licença é gravada com o texto cortado na largura (o que o MySQL não estrito faria) e responde
    aos clientes como no principal. A execução seguinte aprende o corte (divergência não sincronizável, com
    o campo) e não regrava nada."""
    par.principal.add_device("LONGO-1", owner_name="Cliente", cpf="123.456.789-09 / 987.654.321-00")
    par.principal.add_device("LONGO-BLQ", owner_name=NOME_LONGO.strip(), status="blocked")
    par.principal.add_device("CURTO-1", owner_name="José")
    trocar_backup(par, colacao="mysql", colunas="estrito", datas="rfc1123")
    r, pair = rodar_json(par)
    assert r.codigo == 1 and set(par.backup.devices()) == {"CURTO-1"}
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert par.backup.counts[("POST", "/admin/devices/create")] == 3  # um 500 de texto longo não é repetido
    falhas = {}
    for f in pair["falhas"]:
        falhas[f["chave"]] = falhas.get(f["chave"], "") + f["mensagem"] + " | "
    assert "cpf com 31 caracteres (máximo 20)" in falhas["LONGO-1"] and "MySQL em modo estrito" in falhas["LONGO-1"]
    assert "não existe nesse servidor" in falhas["LONGO-BLQ"]  # o bloqueio depois da criação recusada
    r, pair = rodar_json(par)  # agora a listagem do backup mostra as datas do MySQL
    assert backup_libera_o_que_o_principal_nega(par) == [] and not diferentes_no_oraculo(par), pair
    assert set(par.backup.devices()) == {"LONGO-1", "LONGO-BLQ", "CURTO-1"}
    assert par.backup.devices()["LONGO-1"]["cpf"] == "123.456.789-09 / 987"  # 20 caracteres
    assert par.backup.counts[("POST", "/admin/devices/create")] == 3 + 4  # 2 longos: inteiro e depois cortado
    assert r.codigo == 0, (pair["falhas"], pair["paridade"])
    antes = par.backup.write_count()
    r, pair = rodar_json(par)
    assert r.codigo == 0 and par.backup.write_count() == antes
    cortes = {(d["chave"], d["campo"]): d["observacao"] for d in pair["divergencias"]}
    assert "no máximo 20 caracteres" in cortes[("LONGO-1", "cpf")]
    assert "no máximo 255 caracteres" in cortes[("LONGO-BLQ", "owner_name")]


def test_500_passageiro_num_backup_sqlite_nunca_grava_texto_cortado(par):
    """Backup SQLite (datas ISO): um 500 qualquer (ou "database is locked" além das novas tentativas) na
    criação de um registro de texto longo não vira gravação cortada; a execução seguinte grava inteiro."""
    par.principal.add_device("JA-EXISTE", owner_name="Curto")
    assert rodar_json(par)[0].codigo == 0  # o backup tem dados: a listagem mostra que não é MySQL
    par.principal.add_device("LONGO-1", owner_name=NOME_LONGO.strip())
    par.backup.fail_next("POST", "/admin/devices/create", 500, {"error": "falha passageira"})
    r, _ = rodar_json(par)
    assert r.codigo == 1 and "LONGO-1" not in par.backup.devices()
    par.backup.fail_next("POST", "/admin/devices/create", 500, {"error": "database is locked"}, times=4)
    r, _ = rodar_json(par)
    assert r.codigo == 1 and "LONGO-1" not in par.backup.devices()
    r, _ = rodar_json(par)
    assert r.codigo == 0 and par.backup.devices()["LONGO-1"]["owner_name"] == NOME_LONGO.strip()


def test_texto_longo_nunca_e_gravado_cortado_no_principal(tmp_path):
    """O corte é só para backups: a mesma escrita num servidor MySQL estrito que é o PRINCIPAL (restaurar,
    bidirecional) falha e é relatada com o campo; nada é gravado cortado lá."""
    import sincronizar_bancos as sb
    from servidor_referencia import ServidorReferencia

    estrito = ServidorReferencia(admins={"admin": "senha-estrito-1"}, colacao="mysql", colunas="estrito").start()
    try:
        config = sb.Config(primary=sb.ServerConfig(sb.Role.PRIMARY, estrito.url, "admin", "senha-estrito-1"),
                           backups=[], data_dir=str(tmp_path), timeout=5, wake_wait=0, http_retries=0,
                           backoff=0.01, progress=False)
        cliente = sb.ApiClient(config.primary, config)
        cliente.login()
        venda = sb.License("VENDA-1", owner_name="Cliente", cpf="123.456.789-09 / 987.654.321-00", email=None,
                           address=None, license_type="anual", created_by="ana", status="active", start_date=None,
                           end_date=None)
        acao = sb.Action(sb.CREATE, "VENDA-1", "venda no backup", payload=venda.payload(), side=sb.Side.BACKUP)
        [resultado] = sb.Executor(cliente, sb.CredentialStore(str(tmp_path)), config, backup=False).run([], [[acao]])
        cliente.close()
        assert not resultado.ok and "cpf com 31 caracteres (máximo 20)" in resultado.message
        assert estrito.devices() == {} and estrito.counts[("POST", "/admin/devices/create")] == 1
    finally:
        estrito.stop()


# ---------------------------------------------------------------------------
# Colação do MySQL: ids que só diferem em maiúsculas/acentos são UM registro no backup
# ---------------------------------------------------------------------------

def test_grupo_de_ids_iguais_para_o_mysql_leva_o_veredito_mais_restrito_e_nao_e_regravado(par):
    par.principal.add_device("ABC", owner_name="Cliente maiúsculo", status="blocked", created_by="sergio")
    par.principal.add_device("abc", owner_name="Cliente minúsculo", created_by="sergio")
    par.principal.add_device("José", owner_name="José liberado", created_by="ana")
    par.principal.add_device("Jose", owner_name="Jose liberado", created_by="ana")
    par.principal.add_device("OUTRA", owner_name="Sem grupo", created_by="ana")
    trocar_backup(par, colacao="mysql", colunas="corta", datas="rfc1123")
    for _ in range(2):  # backup vazio (não dá para saber se é MySQL) e depois com as datas RFC 1123 à vista
        r, pair = rodar_json(par)
        # abc é liberada no principal, mas no backup é o mesmo registro que ABC (bloqueada): lá nega
        assert par.backup.veredito("abc") is False and par.backup.veredito("ABC") is False
        assert backup_libera_o_que_o_principal_nega(par) == []
        assert par.backup.veredito("Jose") is True and par.backup.veredito("OUTRA") is True
        assert set(par.backup.devices()) == {"ABC", "Jose", "OUTRA"}
        grupos = {d["chave"]: d["observacao"] for d in pair["divergencias"] if d["campo"] == "device_id"}
        assert set(grupos) == {"ABC", "Jose"}
        assert "negados lá e liberados no principal: abc" in grupos["ABC"]
        assert r.codigo == 0, (pair["falhas"], pair["paridade"])
    antes = par.backup.write_count()
    rodar_json(par)
    assert par.backup.write_count() == antes  # não regrava o grupo a cada execução


def test_grupo_de_ids_iguais_para_o_mysql_no_bidirecional_nunca_muda_o_principal(par):
    """No bidirecional, o registro que o backup MySQL guarda para ABC/abc é uma mistura do grupo, nunca uma
    edição do vendedor: nada vai para o principal, e o backup leva o veredito mais restrito do grupo."""
    par.principal.add_device("ABC", owner_name="Cliente maiúsculo", status="blocked", created_by="sergio")
    par.principal.add_device("abc", owner_name="Cliente minúsculo", created_by="sergio")
    par.principal.add_device("OUTRA", owner_name="Sem grupo", created_by="ana")
    trocar_backup(par, colacao="mysql", datas="rfc1123")
    antes = par.principal.devices()
    for _ in range(3):
        r, pair = rodar_json(par, "--bidirecional")
        assert par.principal.devices() == antes, pair["acoes"]
        assert par.backup.veredito("ABC") is False and par.backup.veredito("abc") is False
        assert backup_libera_o_que_o_principal_nega(par) == []
        assert pair["contagens"]["escritas"]["principal"] == 0
    gravadas = par.backup.write_count()
    rodar_json(par, "--bidirecional")
    assert par.backup.write_count() == gravadas  # não regrava o grupo a cada execução


def test_backup_sqlite_com_ids_de_maiusculas_diferentes_guarda_os_dois(par):
    par.principal.add_device("ABC", owner_name="Maiúsculo", status="blocked")
    par.principal.add_device("abc", owner_name="Minúsculo")
    # listagem com datas ISO: não é MySQL (negada lá: liberada só no backup, a execução sairia com 1)
    par.backup.add_device("OUTRA", owner_name="Já existia no backup", status="blocked")
    r, _ = rodar_json(par)
    assert r.codigo == 0 and {"ABC", "abc"} <= set(par.backup.devices())
    assert par.backup.veredito("abc") is True and par.backup.veredito("ABC") is False
