"""Catálogo de entradas inválidas: configuração errada e servidores que devolvem lixo.

Cada caso confere o código de saída, uma mensagem clara em português (sem traceback
nem "erro inesperado"), que nenhum segredo aparece na saída e que nada de errado foi
gravado: nos casos que derrubam o par, nenhuma escrita no backup; nos casos de um
registro ruim, só esse registro fica de fora e o resto é sincronizado.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from typing import Callable

import pytest

from apoio import conferir_convergencia, saida, sem_traceback, semear_licencas, semear_usuarios

HTML_PROXY = ("<!DOCTYPE html><html><head><title>Bem-vindo</title></head>"
              "<body><h1>Hospedagem gratuita</h1><p>Seu app está iniciando...</p></body></html>")
UM_MEGA = 1024 * 1024


@dataclasses.dataclass
class Caso:
    id: str
    preparar: Callable  # (par, tmp_path) -> (args, env_extra)
    codigo: int
    mensagens: tuple[str, ...]  # trechos que a saída (stdout + stderr) deve conter
    nada_gravado: bool = True  # nenhuma escrita no backup
    sem_rede: bool = False  # erro de configuração: nem chega a falar com os servidores
    nomeia: str | None = None  # "principal" ou "backup": a mensagem cita a URL desse servidor
    conferir: Callable | None = None  # (par, execucao) -> None, conferência extra
    xfail: str | None = None


def _env(**extra):
    return lambda par, tmp: ([], extra)


def _dados_reais(srv) -> list[dict]:
    return [dict(v) for v in srv.devices().values()]


def _override_listagem(lado: str, caminho: str, corpo, status: int = 200, content_type: str = "application/json",
                       vezes: int | None = None):
    def preparar(par, tmp):
        srv = par.principal if lado == "principal" else par.backup
        corpo_final = corpo(srv) if callable(corpo) else corpo
        if not isinstance(corpo_final, (str, bytes)):
            corpo_final = json.dumps(corpo_final)
        srv.override("GET", caminho, status, corpo_final, content_type=content_type, times=vezes)
        return ["--tentativas-http", "1"], {}
    return preparar


def _itens_com(mudar: Callable[[list[dict]], list]):
    return lambda srv: {"items": mudar(_dados_reais(srv))}


def _duplicar_primeiro(itens):
    return itens + [dict(itens[0])]


def _anular_chave(itens):
    itens[1]["device_id"] = None
    return itens


def _dono_numero(itens):
    itens[2]["owner_name"] = 12345
    return itens


def _item_texto(itens):
    return itens[:1] + ["LIC-0001"] + itens[1:]


def _usuarios_duplicados(srv):
    itens = list(srv.users().values())
    return {"items": itens + [dict(itens[0])]}


def _usuario_email_lista(srv):
    itens = [dict(u) for u in srv.users().values()]
    itens[0]["email"] = ["a@x.com", "b@x.com"]
    return {"items": itens}


# --- casos de configuração ---------------------------------------------------

def _arquivo_env_vazio(tmp):
    caminho = tmp / "vazio.env"
    caminho.write_text("# nada aqui\n", encoding="utf-8")
    return str(caminho)


def _sem_variavel(nome):
    def preparar(par, tmp):
        return ["--env", _arquivo_env_vazio(tmp)], {nome: ""}
    return preparar


def _backup_igual_ao_principal(transformar):
    return lambda par, tmp: ([], {"SERVIDOR_BACKUP": transformar(par.principal.url)})


def _conta_nao_admin(par, tmp):
    for srv in (par.principal, par.backup):
        srv.add_user("revenda.comum", "senha-da-revenda-1", role="user")
    return [], {"BACKUP_ADMIN_USER": "revenda.comum", "BACKUP_ADMIN_PASSWORD": "senha-da-revenda-1"}


def _dados_dir_arquivo(par, tmp):
    arquivo = tmp / "dados-e-um-arquivo"
    arquivo.write_text("não sou uma pasta\n", encoding="utf-8")
    return [], {"DADOS_DIR": str(arquivo)}


def _env_inexistente(par, tmp):
    return ["--env", str(tmp / "nao-existe.env")], {}


def _env_ilegivel(par, tmp):
    pasta = tmp / "isto-e-uma-pasta.env"
    pasta.mkdir()
    return ["--env", str(pasta)], {}


def _env_binario(par, tmp):
    caminho = tmp / "binario.env"
    caminho.write_bytes(b"SERVIDOR_PRINCIPAL=\xff\xfe\x00\x81 lixo\n")
    return ["--env", str(caminho)], {}


def _url_malformada_com_senha(lado):
    """A senha configurada também aparece (por engano do usuário) numa URL malformada.

    Usa uma senha nova, fora de apoio.SEGREDOS_USADOS: o vazamento é cobrado aqui, por
    este caso, e não derruba a varredura geral de segredos (a do fim da sessão, no conftest)."""
    def preparar(par, tmp):
        senha = secrets.token_urlsafe(16)
        par.senha_do_caso = senha
        if lado == "principal":
            return [], {"SERVIDOR_PRINCIPAL": f"ftp://admin:{senha}@principal.exemplo.com",
                        "PRINCIPAL_ADMIN_PASSWORD": senha}
        return [], {"SERVIDOR_BACKUP": f"htps://admin:{senha}@backup.exemplo.com", "BACKUP_ADMIN_PASSWORD": senha}
    return preparar


def _login_html_200(par, tmp):
    par.backup.override("POST", "/admin/login", 200, HTML_PROXY, content_type="text/html")
    return ["--tentativas-http", "1"], {}


# --- casos de um registro ruim (o resto sincroniza) --------------------------

def _registro_ruim(**campos):
    def preparar(par, tmp):
        par.principal.add_device("RUIM-0001", **campos)
        return [], {}
    return preparar


def _conferir_registro_copiado(par, r):
    conferir_convergencia(par, par.so_no_backup)
    assert "RUIM-0001" in par.backup.devices()
    assert par.backup.veredito("RUIM-0001") == par.principal.veredito("RUIM-0001")


def _conferir_resto_sincronizado(par, r):
    """Só o registro ruim ficou de fora: o resto chegou ao backup, com o mesmo veredito."""
    texto = saida(r)
    assert "fora da sincronização" in texto, texto[-3000:]
    for srv in (par.principal, par.backup):
        srv.clear_overrides()
    faltando = set(par.principal.devices()) - set(par.backup.devices())
    assert len(faltando) <= 1, faltando  # no máximo o registro ruim
    for chave in set(par.principal.devices()) - faltando:
        assert par.backup.veredito(chave) == par.principal.veredito(chave), chave
    assert len(set(par.principal.users()) - set(par.backup.users())) <= 1  # no máximo o usuário ruim


def _conferir_registro_ruim_ignorado(par, r):
    texto = saida(r)
    assert "RUIM-0001" in texto and "fora da sincronização" in texto, texto[-3000:]
    conferir_convergencia(par, par.so_no_backup)  # todas as outras licenças chegaram ao backup
    assert set(par.backup.devices()) == (set(par.principal.devices()) - {"RUIM-0001"}) | set(par.so_no_backup)


def _papel_desconhecido(par, tmp):
    par.principal.add_user("papel.estranho", "senha-qualquer-1")
    itens = [dict(u) for u in par.principal.users().values()]
    for item in itens:
        if item["username"] == "papel.estranho":
            item["role"] = "superuser"
    par.principal.override("GET", "/admin/users", 200, json.dumps({"items": itens}))
    return [], {}


def _conferir_papel_desconhecido(par, r):
    assert "papel.estranho" in saida(r)
    assert "papel.estranho" not in par.backup.users()
    assert {"ana", "bia"} <= set(par.backup.users())
    assert set(par.principal.devices()) <= set(par.backup.devices())  # as licenças sincronizaram


def _falha_500_numa_criacao(par, tmp):
    par.backup.fail_next("POST", "/admin/devices/create", 500, {"error": "Falha simulada no banco do backup"},
                         times=4)  # a escrita e as 3 novas tentativas (em ordem: --paralelo 1)
    return ["--paralelo", "1"], {}


def _conferir_500_numa_criacao(par, r):
    texto = saida(r)
    assert "HTTP 500: Falha simulada no banco do backup" in texto, texto[-3000:]
    faltando = set(par.principal.devices()) - set(par.backup.devices())
    assert set(par.so_no_backup) <= set(par.backup.devices())
    assert len(faltando) == 1, faltando  # só a que falhou; as outras foram aplicadas
    assert next(iter(faltando)) in texto
    r2 = par.rodar("--sem-progresso")  # a próxima execução completa o que faltou
    assert r2.codigo == 0, saida(r2)[-3000:]
    conferir_convergencia(par, par.so_no_backup)


def _falha_401_uma_vez(par, tmp):
    par.backup.fail_next("POST", "/admin/devices/create", 401, {"error": "Unauthorized"})
    return [], {}


def _conferir_401(par, r):
    assert par.backup.counts[("POST", "/admin/login")] == 2
    conferir_convergencia(par, par.so_no_backup)


CASOS = [
    # configuração (código 2)
    Caso("sem_SERVIDOR_PRINCIPAL", _sem_variavel("SERVIDOR_PRINCIPAL"), 2,
         ("SERVIDOR_PRINCIPAL não foi configurado",), sem_rede=True),
    Caso("sem_SERVIDOR_BACKUP", _sem_variavel("SERVIDOR_BACKUP"), 2,
         ("SERVIDOR_BACKUP não foi configurado",), sem_rede=True),
    Caso("url_sem_esquema", _env(SERVIDOR_BACKUP="backup.exemplo.com.br"), 2, ("URL inválida",), sem_rede=True),
    Caso("url_esquema_ftp", _env(SERVIDOR_PRINCIPAL="ftp://principal.exemplo.com.br"), 2, ("URL inválida",),
         sem_rede=True),
    Caso("url_so_esquema", _env(SERVIDOR_BACKUP="https://"), 2, ("URL inválida",), sem_rede=True),
    Caso("url_porta_invalida", _env(SERVIDOR_BACKUP="http://127.0.0.1:porta"), 2, ("Porta inválida",),
         sem_rede=True),
    Caso("url_com_usuario_e_senha", lambda par, tmp: ([], {"SERVIDOR_BACKUP":
         f"https://admin:{par.senhas_backup}@backup.exemplo.com.br"}), 2,
         ("Não coloque usuário ou senha dentro da URL",), sem_rede=True),
    Caso("url_malformada_com_senha_do_principal", _url_malformada_com_senha("principal"), 2, ("URL inválida",),
         sem_rede=True),
    Caso("url_malformada_com_senha_do_backup", _url_malformada_com_senha("backup"), 2, ("URL inválida",),
         sem_rede=True),
    Caso("url_ipv6_malformada", _env(SERVIDOR_BACKUP="http://[::1"), 2, ("URL inválida",), sem_rede=True),
    Caso("url_com_query", lambda par, tmp: ([], {"SERVIDOR_BACKUP": par.backup.url + "/?debug=1"}), 2,
         ("não deve ter '?' nem '#'",), sem_rede=True),
    Caso("SERVIDOR_BACKUP_so_virgulas", _env(SERVIDOR_BACKUP=" , ,"), 2, ("SERVIDOR_BACKUP está vazio",),
         sem_rede=True),
    Caso("mesmo_servidor_principal_e_backup", _backup_igual_ao_principal(lambda u: u), 2,
         ("também está listado como backup",), sem_rede=True),
    Caso("mesmo_servidor_com_barra_final", _backup_igual_ao_principal(lambda u: u + "/"), 2,
         ("também está listado como backup",), sem_rede=True),
    Caso("mesmo_servidor_em_maiusculas", _backup_igual_ao_principal(lambda u: u.upper() + "//"), 2,
         ("também está listado como backup",), sem_rede=True),
    Caso("backup_repetido", lambda par, tmp: ([], {"SERVIDOR_BACKUP": f"{par.backup.url},{par.backup.url}/"}), 2,
         ("listado mais de uma vez",), sem_rede=True),
    Caso("senha_errada_no_backup", _env(BACKUP_ADMIN_PASSWORD="senha-errada-123"), 2,
         ("login recusado", "Confira usuário e senha"), nomeia="backup"),
    Caso("senha_errada_no_principal", _env(PRINCIPAL_ADMIN_PASSWORD="senha-errada-123"), 2,
         ("login recusado", "Confira usuário e senha"), nomeia="principal"),
    Caso("senha_ausente", _env(BACKUP_ADMIN_PASSWORD="", ADMIN_PASSWORD=""), 2,
         ("Senha do servidor de backup não configurada",), sem_rede=True),
    Caso("conta_nao_admin", _conta_nao_admin, 2, ("papel 'user'", "administrador"), nomeia="backup"),
    Caso("arquivo_env_inexistente", _env_inexistente, 2, ("Arquivo de configuração não encontrado",),
         sem_rede=True),
    Caso("arquivo_env_ilegivel", _env_ilegivel, 2, ("Não foi possível ler o arquivo de configuração",),
         sem_rede=True),
    Caso("arquivo_env_binario", _env_binario, 2, ("salve o .env como UTF-8",),
         sem_rede=True),
    Caso("SYNC_TIMEOUT_nao_numerico", _env(SYNC_TIMEOUT="trinta"), 2, ("SYNC_TIMEOUT deve ser um número",),
         sem_rede=True),
    Caso("SYNC_TIMEOUT_nan", _env(SYNC_TIMEOUT="nan"), 2, ("SYNC_TIMEOUT",), sem_rede=True),
    Caso("SYNC_TIMEOUT_inf", _env(SYNC_TIMEOUT="inf"), 2, ("SYNC_TIMEOUT",), sem_rede=True),
    Caso("SYNC_ESPERA_DESPERTAR_nan", _env(SYNC_ESPERA_DESPERTAR="nan"), 2, ("SYNC_ESPERA_DESPERTAR",),
         sem_rede=True),
    Caso("DADOS_DIR_e_um_arquivo", _dados_dir_arquivo, 2, ("Não foi possível criar a pasta de dados",),
         sem_rede=True),
    Caso("SYNC_TENTATIVAS_HTTP_negativo", _env(SYNC_TENTATIVAS_HTTP="-1"), 2,
         ("SYNC_TENTATIVAS_HTTP deve ser no mínimo",), sem_rede=True),
    Caso("SYNC_PARALELO_zero", _env(SYNC_PARALELO="0"), 2, ("SYNC_PARALELO deve ser no mínimo",), sem_rede=True),
    Caso("SYNC_ESPERA_DESPERTAR_texto", _env(SYNC_ESPERA_DESPERTAR="muito"), 2,
         ("SYNC_ESPERA_DESPERTAR deve ser um número",), sem_rede=True),

    # servidor devolvendo lixo: o par é ignorado (código 4) e nada é gravado
    Caso("devices_pagina_html_200", _override_listagem("backup", "/admin/devices", HTML_PROXY,
         content_type="text/html; charset=utf-8"), 4, ("não devolveu JSON",), nomeia="backup"),
    Caso("users_texto_nao_json", _override_listagem("principal", "/admin/users", "ok, tudo certo",
         content_type="text/plain"), 4, ("não devolveu JSON",), nomeia="principal"),
    Caso("devices_json_sem_items", _override_listagem("principal", "/admin/devices", {"dados": []}), 4,
         ("sem o campo 'items'",), nomeia="principal"),
    Caso("devices_json_lista_sem_objeto", _override_listagem("backup", "/admin/devices", []), 4,
         ("sem o campo 'items'",), nomeia="backup"),
    Caso("devices_items_nao_e_lista", _override_listagem("backup", "/admin/devices", {"items": {"a": 1}}), 4,
         ("não é uma lista",), nomeia="backup"),
    # um registro ruim na listagem recusa só esse registro: o resto sincroniza (código 1 quando é do principal)
    Caso("device_id_duplicado", _override_listagem("principal", "/admin/devices",
         _itens_com(_duplicar_primeiro)), 1, ("device_id duplicado",), nada_gravado=False,
         conferir=_conferir_resto_sincronizado),
    Caso("device_id_nulo", _override_listagem("principal", "/admin/devices", _itens_com(_anular_chave)), 1,
         ("não tem 'device_id' válido",), nada_gravado=False, conferir=_conferir_resto_sincronizado),
    Caso("owner_name_numero", _override_listagem("principal", "/admin/devices", _itens_com(_dono_numero)), 1,
         ("tipo inesperado",), nada_gravado=False, conferir=_conferir_resto_sincronizado),
    Caso("item_que_nao_e_objeto", _override_listagem("principal", "/admin/devices", _itens_com(_item_texto)), 1,
         ("não é um objeto JSON",), nada_gravado=False, conferir=_conferir_resto_sincronizado),
    # (só a primeira leitura vem duplicada: a releitura de conferência mostra o backup de verdade)
    Caso("usuario_duplicado_no_backup", _override_listagem("backup", "/admin/users", _usuarios_duplicados, vezes=1), 0,
         ("usuário duplicado",), nada_gravado=False, conferir=_conferir_resto_sincronizado),
    Caso("email_de_usuario_lista", _override_listagem("principal", "/admin/users", _usuario_email_lista), 1,
         ("tipo inesperado",), nada_gravado=False, conferir=_conferir_resto_sincronizado),
    Caso("listagem_500", _override_listagem("principal", "/admin/users", {"error": "Internal Server Error"},
         status=500), 4, ("HTTP 500",), nomeia="principal"),
    Caso("proxy_502_html_sempre", _override_listagem("backup", "/admin/devices", "<html>502 Bad Gateway</html>",
         status=502, content_type="text/html"), 4, ("HTTP 502",), nomeia="backup"),
    Caso("login_html_200", _login_html_200, 4, ("resposta inesperada ao fazer login",), nomeia="backup"),

    # um registro ruim no principal: ignorado e relatado, o resto sincroniza (código 1)
    # dados que o servidor aceita: um texto de 1 MB e um status desconhecido (o servidor libera) sincronizam
    Caso("owner_name_de_1_MB", _registro_ruim(owner_name="A" * UM_MEGA), 0, ("Sincronização concluída",),
         nada_gravado=False, conferir=_conferir_registro_copiado),
    Caso("status_desconhecido", _registro_ruim(status="suspenso"), 0, ("Sincronização concluída",),
         nada_gravado=False, conferir=_conferir_registro_copiado),
    # um registro ruim no principal: fora da sincronização e relatado, o resto sincroniza (código 1)
    Caso("license_type_desconhecido", _registro_ruim(license_type="semanal"), 1,
         ("tipo de licença desconhecido 'semanal'",), nada_gravado=False, conferir=_conferir_registro_ruim_ignorado),
    Caso("data_em_formato_errado", _registro_ruim(end_date="31/12/2026"), 1, ("data inválida em 'end_date'",),
         nada_gravado=False, conferir=_conferir_registro_ruim_ignorado),

    Caso("papel_de_usuario_desconhecido", _papel_desconhecido, 1, ("papel desconhecido 'superuser'",),
         nada_gravado=False, conferir=_conferir_papel_desconhecido),

    # falhas em escritas
    Caso("500_numa_criacao", _falha_500_numa_criacao, 1, ("falhou ao criar",), nada_gravado=False,
         conferir=_conferir_500_numa_criacao),
    Caso("401_no_meio", _falha_401_uma_vez, 0, ("Sincronização concluída",), nada_gravado=False,
         conferir=_conferir_401),
]


def _parametros():
    for caso in CASOS:
        marcas = [pytest.mark.xfail(reason=caso.xfail, strict=True)] if caso.xfail else []
        yield pytest.param(caso, id=caso.id, marks=marcas)


@pytest.mark.parametrize("caso", list(_parametros()))
def test_entrada_invalida(par, tmp_path, caso: Caso):
    semear_licencas(par.principal, 12)
    semear_usuarios(par.principal, ["ana", "bia"])
    semear_usuarios(par.backup, ["ana"])
    # só no backup e negada lá (liberada, a execução sairia com 1: venda ou reembolso?)
    par.backup.add_device("SO-BACKUP-1", owner_name="Só no backup", license_type="mensal", status="blocked")
    par.so_no_backup = {k: dict(v) for k, v in par.backup.devices().items()}
    args, extra = caso.preparar(par, tmp_path)

    r = par.rodar("--sem-progresso", *args, **extra)

    texto = saida(r)
    sem_traceback(r)
    assert r.codigo == caso.codigo, texto[-4000:]
    for trecho in caso.mensagens:
        assert trecho in texto, f"faltou {trecho!r} em:\n{texto[-4000:]}"
    if caso.codigo != 0:
        assert "❌" in texto or "⚠️" in texto, texto[-3000:]
    for segredo in (par.senha_principal, par.senhas_backup, getattr(par, "senha_do_caso", None)):
        assert not segredo or segredo not in texto, "senha de administrador na saída"
    assert "Bearer " not in texto
    if caso.nomeia:
        srv = par.principal if caso.nomeia == "principal" else par.backup
        assert srv.url in texto, f"a mensagem não diz qual servidor: {texto[-3000:]}"
    if caso.sem_rede:
        assert sum(par.principal.counts.values()) + sum(par.backup.counts.values()) == 0
    if caso.nada_gravado:
        assert par.backup.write_count() == 0, par.backup.counts
        assert par.principal.write_count() == 0, par.principal.counts
        assert {k: dict(v) for k, v in par.backup.devices().items()} == par.so_no_backup
    if caso.conferir:
        caso.conferir(par, r)


def test_catalogo_tem_ao_menos_15_casos():
    assert len(CASOS) >= 15
    assert len({c.id for c in CASOS}) == len(CASOS)


def test_json_com_dados_ruins_continua_json_valido(par):
    """No modo --json o stdout continua sendo só um documento JSON, mesmo com o par ignorado."""
    semear_licencas(par.principal, 3)
    par.backup.override("GET", "/admin/devices", 200, HTML_PROXY, content_type="text/html")
    r = par.rodar("--json", "--tentativas-http", "1")
    sem_traceback(r)
    assert r.codigo == 4
    doc = json.loads(r.stdout)
    assert doc["codigo_saida"] == 4
    [par_doc] = doc["backups"]
    assert par_doc["situacao"] == "erro" and "não devolveu JSON" in par_doc["erro"]
    assert par.backup.write_count() == 0
