"""Configuração e cliente HTTP, de ponta a ponta (o script por main() no processo do pytest, servidores reais em
127.0.0.1): máscara de segredos por lugar, .env lido ao pé da letra, os prazos de cada requisição
(SYNC_TIMEOUT é o silêncio máximo; o prazo da resposta inteira cresce com o que chega, a um mínimo de
5 KB/s em média: uma listagem grande num link lento termina, o conta-gotas não), o mesmo servidor
configurado duas vezes, redirecionamentos nomeados e nunca seguidos, e configurações erradas que falham
em segundos.

Os servidores "estranhos" (corpo pingado byte a byte, página que não é da API, JSON de outro
serviço) são o `ServidorStub` de apoio.py.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from apoio import (RAIZ, SEGREDOS_USADOS, Par, ServidorStub, ambiente_limpo, backup_libera_o_que_o_principal_nega,
                   enviar, pingar, rodar_cronometrado, rodar_script, saida, sem_traceback, semear_iguais,
                   semear_licencas, semear_usuarios)
from servidor_referencia import ServidorReferencia

import sincronizar_bancos as sb


SENHA_LONGA = "abc${X}def-9"
SEGREDOS_USADOS.add(SENHA_LONGA)  # nunca pode aparecer em nada do que o script deixou


def arquivos_gravados(dados: Path) -> dict[str, str]:
    """Texto de todo arquivo que o script deixou na pasta de dados (sqlite lido como bytes)."""
    if not dados.exists():
        return {}
    return {str(p.relative_to(dados)): p.read_bytes().decode("utf-8", "replace")
            for p in dados.rglob("*") if p.is_file()}


def nada_gravado(par) -> None:
    """Nada nos servidores; na pasta de dados, só o registro da falha (histórico e ultima_execucao.json, para
    o painel ficar vermelho): nem estado, nem diário, nem arquivo de senhas."""
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
    gravados = set(arquivos_gravados(par.dados)) - {sb.LOCK_FILE}
    assert gravados <= {sb.HISTORY_FILE, sb.LAST_RUN_FILE}, f"arquivos gravados: {gravados}"
    if sb.LAST_RUN_FILE in gravados:
        assert json.loads((par.dados / sb.LAST_RUN_FILE).read_text(encoding="utf-8"))["codigo_saida"] != 0


# ---------------------------------------------------------------------------
# 1. Máscara por lugar, não por valor
# ---------------------------------------------------------------------------

SENHAS_ESTRANHAS = ["2026", "true", "null", '"', SENHA_LONGA]


@pytest.mark.parametrize("senha", SENHAS_ESTRANHAS, ids=["2026", "true", "null", "aspas", "cifrao"])
def test_senha_estranha_json_valido_datas_intactas(tmp_path, senha):
    par = Par(tmp_path, senha=senha)
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
    finally:
        par.parar()


@pytest.mark.parametrize("senha", ["2026", "true"])
def test_senha_estranha_ultima_execucao_valida(tmp_path, senha):
    par = Par(tmp_path, senha=senha)
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
    par = Par(tmp_path, senha="2026")
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
    par = Par(tmp_path, senha=SENHA_LONGA)
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
    finally:
        par.parar()


# ---------------------------------------------------------------------------
# Stubs http.server (servidores que não são a API, ou que pingam a resposta)
# ---------------------------------------------------------------------------

def health_ok(handler):
    enviar(handler, 200, {"status": "ok"})


def login_com_corpo_pingado(handler):
    corpo = json.dumps({"token": "t" * 40, "must_change_password": False, "role": "admin"}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(corpo)))
    handler.end_headers()
    handler.wfile.flush()
    pingar(corpo, handler)


def login_com_cabecalho_pingado(handler):
    corpo = json.dumps({"token": "t" * 40, "must_change_password": False, "role": "admin"}).encode()
    cabecalho = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Lento: {'x' * 80}\r\n"
                 f"Content-Length: {len(corpo)}\r\n\r\n").encode()
    pingar(cabecalho + corpo, handler)


@pytest.fixture
def stubs():
    criados = []

    def criar(rotas):
        stub = ServidorStub(rotas)
        criados.append(stub)
        return stub
    yield criar
    for stub in criados:
        stub.parar()


# ---------------------------------------------------------------------------
# 3. Resposta a conta-gotas (bem abaixo de 5 KB/s): cai logo depois de SYNC_TIMEOUT
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("como", ["corpo", "cabecalho"])
def test_resposta_pingada_falha_em_sync_timeout(par, stubs, como):
    lento = stubs({("GET", "/health"): health_ok,
                   ("POST", "/admin/login"): login_com_corpo_pingado if como == "corpo"
                   else login_com_cabecalho_pingado})
    r = par.rodar("--sem-progresso", SERVIDOR_PRINCIPAL=lento.url, SYNC_TIMEOUT="3", SYNC_TENTATIVAS_HTTP="0")
    sem_traceback(r)
    assert r.codigo == 4, saida(r)[-3000:]
    assert "tempo esgotado" in saida(r) and "SYNC_TIMEOUT" in saida(r), saida(r)[-3000:]
    assert lento.contagem[("POST", "/admin/login")] == 1
    # medido no servidor: do pedido até o cliente desistir (a escrita seguinte do byte pingado falha)
    [login] = lento.terminados("/admin/login")
    duracao = login["fim"] - login["inicio"]
    assert 2.5 <= duracao < 3 + 1 + 2, f"desistiu após {duracao:.1f} s com SYNC_TIMEOUT=3 (sem o prazo, ~40 s)"
    assert par.backup.write_count() == 0


def test_resposta_pingada_com_novas_tentativas_tem_limite(par, stubs):
    """Cabeçalhos pingados: cada nova tentativa do urllib3 tem o seu prazo. Total: no máximo
    (N + 1) × SYNC_TIMEOUT + as esperas entre as tentativas (0,5 s, 1 s... com SYNC_TENTATIVAS_HTTP=N)."""
    lento = stubs({("GET", "/health"): health_ok, ("POST", "/admin/login"): login_com_cabecalho_pingado})
    r = par.rodar("--sem-progresso", SERVIDOR_PRINCIPAL=lento.url, SYNC_TIMEOUT="2", SYNC_TENTATIVAS_HTTP="2")
    sem_traceback(r)
    assert r.codigo == 4, saida(r)[-3000:]
    assert "tempo esgotado" in saida(r)
    assert lento.contagem[("POST", "/admin/login")] == 3  # 1 + 2 novas tentativas, contadas no servidor
    logins = lento.terminados("/admin/login")
    duracao = logins[-1]["fim"] - logins[0]["inicio"]  # medido no servidor, sem a partida do processo
    assert 3 * 2 <= duracao < 3 * 2 + 2 + 4, f"levou {duracao:.1f} s"


def test_503_e_repetido_sync_tentativas_http_vezes_com_as_esperas_da_politica(par, stubs):
    """As novas tentativas do urllib3 esperam o que sb.HTTP_BACKOFF diz (a 1ª na hora, depois 1 s, 2 s...,
    ±12,5 %), contado e cronometrado no servidor."""
    fora = stubs({("GET", "/health"): health_ok,
                  ("POST", "/admin/login"): lambda h: enviar(h, 503, {"error": "Service Unavailable"})})
    r = par.rodar("--sem-progresso", SERVIDOR_PRINCIPAL=fora.url, SYNC_TENTATIVAS_HTTP="3")
    sem_traceback(r)
    assert r.codigo == 4, saida(r)[-3000:]
    logins = fora.terminados("/admin/login")
    assert len(logins) == 4  # 1 + SYNC_TENTATIVAS_HTTP, contadas no servidor
    esperas = [depois["inicio"] - antes["fim"] for antes, depois in itertools.pairwise(logins)]
    for tentativa, espera in enumerate(esperas, start=1):
        menor = sb.HTTP_BACKOFF.delay(tentativa, draw=lambda: 0.0)
        maior = sb.HTTP_BACKOFF.delay(tentativa, draw=lambda: 1.0)
        assert menor - 0.05 <= espera <= maior + 0.3, f"nova tentativa {tentativa}: {espera:.2f} s ({esperas})"


# ---------------------------------------------------------------------------
# 5. Configuração errada falha em segundos, código 2, e a primeira linha diz o que é
# ---------------------------------------------------------------------------

PADRAO = {"SYNC_ESPERA_DESPERTAR": "", "SYNC_TIMEOUT": "", "SYNC_TENTATIVAS_HTTP": ""}  # valores padrão (90/30/5)


def _rodar_cronometrado(par, *args, **extra):
    """(execução, segundos além da partida do script)."""
    return rodar_cronometrado(par.rodar, "--sem-progresso", *args, **{**PADRAO, **extra})


def _primeira_linha(texto: str) -> str:
    return texto.strip().splitlines()[0]


def test_url_com_caminho_que_nao_e_a_raiz_da_api_sai_com_2_na_hora(par):
    semear_licencas(par.principal, 3)
    r, duracao = _rodar_cronometrado(par, SERVIDOR_PRINCIPAL=par.principal.url + "/admin")
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert duracao < 5, f"levou {duracao:.1f} s (antes: 90 s esperando o host 'acordar')"
    primeira = _primeira_linha(r.stderr)
    assert primeira.startswith("❌ Principal (" + par.principal.url + "/admin)"), r.stderr
    assert "não é a API de licenças" in primeira and "HTTP 404" in primeira and "SERVIDOR_PRINCIPAL" in primeira
    assert "Fazendo login" not in r.stdout and "SISTEMA DE SINCRONIZAÇÃO" in r.stdout  # só o cabeçalho
    assert par.principal.counts[("GET", "/admin/health")] == 1  # uma pergunta só, sem esperar
    nada_gravado(par)


@pytest.mark.parametrize("resposta, trecho", [
    (lambda h: enviar(h, 200, {"status": "healthy", "service": "outra-coisa"}), "JSON que não é o da API"),
    (lambda h: enviar(h, 200, "<html><body><h1>Minha Loja</h1>Bem-vindo!</body></html>", "text/html"),
     "página HTML"),
    (lambda h: enviar(h, 401, {"message": "missing api key"}), "HTTP 401"),
], ids=["json_de_outro_servico", "site_html", "401_json"])
def test_quem_responde_nao_e_a_api_sai_com_2(par, stubs, resposta, trecho):
    outro = stubs({("GET", "/health"): resposta})
    r, duracao = _rodar_cronometrado(par, SERVIDOR_BACKUP=outro.url)
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert duracao < 5, f"levou {duracao:.1f} s"
    primeira = _primeira_linha(r.stderr)
    assert outro.url in primeira and "não é a API de licenças" in primeira and trecho in primeira, primeira
    assert "SERVIDOR_BACKUP" in primeira
    assert outro.contagem == {("GET", "/health"): 1}
    nada_gravado(par)


def test_pagina_502_503_do_host_acordando_continua_sendo_esperada(par, stubs):
    vezes = {"n": 0}

    def acordando(h):
        vezes["n"] += 1
        if vezes["n"] <= 2:
            enviar(h, 503 if vezes["n"] == 1 else 502, "<html><body>Bad Gateway</body></html>", "text/html")
        else:
            health_ok(h)

    lento = stubs({("GET", "/health"): acordando, ("POST", "/admin/login"):
                   lambda h: enviar(h, 401, {"error": "Usuário ou senha inválidos."})})
    r = par.rodar("--sem-progresso", SERVIDOR_BACKUP=lento.url, SYNC_TENTATIVAS_HTTP="0")
    sem_traceback(r)
    assert lento.contagem[("GET", "/health")] == 3  # esperou as duas páginas de proxy
    assert r.codigo == 2 and "login recusado" in _primeira_linha(r.stderr), saida(r)


def test_env_copiado_do_exemplo_sem_editar_pede_para_editar(tmp_path):
    env_arquivo = tmp_path / ".env"
    env_arquivo.write_text((RAIZ / ".env.example").read_text(encoding="utf-8"), encoding="utf-8")
    r, duracao = rodar_cronometrado(rodar_script, "--env", str(env_arquivo), "--sem-progresso",
                                    env=ambiente_limpo(DADOS_DIR=str(tmp_path / "dados")), cwd=tmp_path, timeout=30)
    sem_traceback(r)
    assert r.codigo == 2, saida(r)
    assert duracao < 5
    primeira = _primeira_linha(r.stderr)
    assert "edite o .env" in primeira and "exemplo" in primeira, primeira
    assert "troque-esta-senha" not in r.stderr  # a senha de exemplo não é repetida
    assert not (tmp_path / "dados").exists()


@pytest.mark.parametrize("variavel, valor", [
    ("SERVIDOR_BACKUP", "https://backup1.exemplo.com.br"),
    ("ADMIN_PASSWORD", "troque-esta-senha"),
])
def test_um_valor_de_exemplo_so_tambem_e_recusado_sem_rede(par, variavel, valor):
    extra = {variavel: valor}
    if variavel == "ADMIN_PASSWORD":
        extra.update(PRINCIPAL_ADMIN_PASSWORD="", BACKUP_ADMIN_PASSWORD="")
    r = par.rodar("--sem-progresso", **extra)
    assert r.codigo == 2 and "edite o .env" in _primeira_linha(r.stderr), saida(r)
    assert sum(par.principal.counts.values()) + sum(par.backup.counts.values()) == 0


def test_nome_de_servidor_que_nao_existe_falha_na_hora_com_4(par):
    r, duracao = _rodar_cronometrado(par, SERVIDOR_BACKUP="https://servidor-que-nao-existe.invalid")
    sem_traceback(r)
    assert r.codigo == 4, saida(r)[-3000:]
    assert duracao < 5, f"levou {duracao:.1f} s"
    primeira = _primeira_linha(r.stderr)
    assert "servidor-que-nao-existe.invalid" in primeira and "não foi encontrado (DNS)" in primeira, primeira
    nada_gravado(par)


@pytest.mark.parametrize("lado", ["backup", "os_dois"])
def test_senha_errada_uma_mensagem_por_servidor_uma_vez(par, lado):
    semear_licencas(par.principal, 3)
    extra = {"BACKUP_ADMIN_PASSWORD": "senha-errada-123"}
    if lado == "os_dois":
        extra["PRINCIPAL_ADMIN_PASSWORD"] = "senha-errada-456"
    r, duracao = _rodar_cronometrado(par, **extra)
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert duracao < 5
    texto = saida(r)
    primeira = _primeira_linha(r.stderr)
    assert "login recusado" in primeira and "Confira usuário e senha" in primeira
    assert texto.count("login recusado") == (2 if lado == "os_dois" else 1), texto
    assert r.stderr.count(par.backup.url) == 1, texto
    assert texto.count("voltou vazio") == 1  # a dica aparece uma vez só, no fim
    assert "Fazendo login" not in r.stdout and "SISTEMA DE SINCRONIZAÇÃO" in r.stdout  # só o cabeçalho
    nada_gravado(par)


def test_senha_errada_em_json_e_um_documento(par):
    r = par.rodar("--json", BACKUP_ADMIN_PASSWORD="senha-errada-123")
    assert r.codigo == 2
    doc = json.loads(r.stdout)
    assert doc["codigo_saida"] == 2 and "login recusado" in doc["erro"]
    assert [s["url"] for s in doc["servidores"]] == [par.backup.url]
    nada_gravado(par)


def test_sem_erro_o_login_da_verificacao_nao_e_repetido(par):
    """connect_servers entrega o despertar e o login à execução: uma requisição de cada por servidor."""
    semear_licencas(par.principal, 2)
    r = par.rodar("--sem-progresso")
    assert r.codigo == 0, saida(r)[-3000:]
    for srv in (par.principal, par.backup):
        assert srv.counts[("GET", "/health")] == 1 and srv.counts[("POST", "/admin/login")] == 1, srv.counts


# ---------------------------------------------------------------------------
# 4. O mesmo servidor configurado duas vezes (127.0.0.1:P e localhost:P)
# ---------------------------------------------------------------------------

def _outro_nome(url: str) -> str:
    return url.replace("127.0.0.1", "localhost")


@pytest.mark.parametrize("como", ["principal_e_backup", "dois_backups"])
def test_mesmo_servidor_duas_vezes_e_recusado_antes_de_gravar(par, como):
    semear_licencas(par.principal, 4)
    semear_usuarios(par.principal, ["ana"])
    semear_licencas(par.backup, 2, prefixo="OUTRA")
    if como == "dois_backups":
        extra = {"SERVIDOR_BACKUP": f"{par.backup.url},{_outro_nome(par.backup.url)}"}
        repetido = par.backup
    else:
        extra = {"SERVIDOR_BACKUP": _outro_nome(par.principal.url),
                 "BACKUP_ADMIN_PASSWORD": par.senha_principal}
        repetido = par.principal
    r = par.rodar("--sem-progresso", **extra)
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert "MESMO servidor" in r.stderr and _outro_nome(repetido.url) in r.stderr, r.stderr
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
    # a falha fica registrada (o painel fica vermelho), sem estado de par nenhum
    assert json.loads((par.dados / sb.LAST_RUN_FILE).read_text(encoding="utf-8"))["codigo_saida"] == 2
    assert not (par.dados / sb.STATE_DIR).exists()


def test_dois_servidores_vazios_diferentes_nao_sao_confundidos(par):
    """Dois backups novos (vazios) têm listagens iguais: isso não prova nada (nem o token, que o
    SHARED_SECRET comum faz valer em todos). Nenhuma recusa e nenhuma requisição a mais."""
    r = par.rodar("--sem-progresso")
    assert r.codigo == 0 and "MESMO servidor" not in saida(r), saida(r)[-3000:]
    assert par.backup.counts[("GET", "/admin/users")] == 1


def test_dois_backups_novos_com_o_mesmo_segredo_nao_sao_o_mesmo_servidor(par_dois_backups):
    """Issue: dois backups novos (vazios) de um vendedor, com o mesmo SHARED_SECRET: o token de um vale no
    outro e as listagens são iguais — nada disso prova que são o mesmo servidor. Sincroniza os dois."""
    par = par_dois_backups
    for srv in [par.principal] + par.backups:
        srv.compartilhar_segredo("segredo-do-vendedor")
    semear_licencas(par.principal, 3)
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 0 and "MESMO servidor" not in saida(r), saida(r)[-3000:]
    for backup in par.backups:
        assert set(backup.devices()) == set(par.principal.devices())


def test_mesmo_servidor_vazio_duas_vezes_nao_e_recusado_sem_prova(par):
    """O mesmo servidor vazio em duas URLs: listagens vazias não distinguem nada, então não há recusa
    (e não há o que gravar: nada é escrito)."""
    r = par.rodar("--sem-progresso", SERVIDOR_BACKUP=_outro_nome(par.principal.url),
                  BACKUP_ADMIN_PASSWORD=par.senha_principal)
    sem_traceback(r)
    assert r.codigo == 0 and "MESMO servidor" not in saida(r), saida(r)[-3000:]
    assert par.principal.write_count() == 0


def test_banco_copiado_com_outra_senha_nao_e_o_mesmo_servidor(tmp_path):
    """Backup feito por cópia do banco (mesmos ids e created_at): as listagens são idênticas, mas o mesmo
    usuário entrou nas duas URLs com senhas diferentes — são dois servidores; a sincronização segue."""
    par = Par(tmp_path)
    try:
        semear_licencas(par.principal, 3)
        semear_usuarios(par.principal, ["ana"])
        par.backup.import_data(par.principal.export_data())
        r = par.rodar("--sem-progresso")
        sem_traceback(r)
        assert "MESMO servidor" not in saida(r) and r.codigo == 0, saida(r)[-3000:]
    finally:
        par.parar()


def test_same_server_groups_agrupa_so_listagens_cruas_identicas():
    """Função pura: mesmas listagens (não vazias) com os mesmos ids locais e created_at formam um grupo;
    listagens vazias nunca (iguais sem provar nada)."""
    usuarios = [{"id": 1, "username": "ana", "created_at": "2026-11-28 23:48:53"}]
    licencas = [{"id": 1, "device_id": "D1"}]
    grupos = sb.same_server_groups({"https://a": (usuarios, licencas), "https://b": (list(usuarios), licencas),
                                    "https://c": (usuarios, [])})
    assert grupos == [["https://a", "https://b"]]
    assert sb.same_server_groups({"https://a": ([], []), "https://b": ([{"id": 2}], [])}) == []
    assert sb.same_server_groups({"https://a": ([], []), "https://b": ([], []), "https://c": ([], [])}) == []


# ---------------------------------------------------------------------------
# 6. Link lento: SYNC_TIMEOUT limita o silêncio; o prazo total cresce com o que chega
# ---------------------------------------------------------------------------

LICENCAS_LINK_LENTO = 1000  # ~425 KB de listagem (~425 bytes por licença)


def _estornos_no_principal(par, quantidade: int = LICENCAS_LINK_LENTO, estornos: int = 5) -> list[str]:
    """As mesmas licenças liberadas nos dois lados; `estornos` delas bloqueadas só no principal (chargeback)."""
    chaves = [f"LENTA-{i:04d}" for i in range(quantidade)]
    semear_iguais(par, chaves)
    bloqueadas = chaves[:: quantidade // estornos][:estornos]
    for chave in bloqueadas:
        par.principal.set_status(chave, "blocked")
    assert all(par.backup.veredito(chave) for chave in bloqueadas)
    return bloqueadas


def _duracao(resposta: dict) -> float:
    return resposta["fim"] - resposta["inicio"]


def test_listagem_grande_em_link_lento_termina_mostra_o_andamento_e_leva_os_estornos(par):
    """Issue 24 ("Slow links sync"): uma listagem que leva ~10 s num link lento, com SYNC_TIMEOUT=3, termina
    (o prazo total cresce com o que chega), mostra o andamento no terminal/log e os estornos chegam ao
    backup. Antes: código 4 em toda execução (o SYNC_TIMEOUT cortava a resposta inteira)."""
    bloqueadas = _estornos_no_principal(par)
    par.principal.limitar_banda(37_000, vezes=1)  # 1.000 licenças (~380 KB) em ~10 s: o link lento de 50 KB/s, menor
    # (só a primeira listagem: a releitura final do principal sai na hora e não confunde a contagem)
    r = par.rodar(SYNC_TIMEOUT="3", SYNC_TENTATIVAS_HTTP="1", timeout=180)
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    [listagem] = par.principal.respostas_limitadas()
    assert listagem["completa"] and _duracao(listagem) >= 3 * 3, listagem  # bem mais longa que SYNC_TIMEOUT
    assert not any(par.backup.veredito(chave) for chave in bloqueadas)  # os estornos chegaram (oráculo)
    assert backup_libera_o_que_o_principal_nega(par) == []
    assert par.backup.write_count() == len(bloqueadas)  # só os bloqueios: nada mais mudou
    # andamento: uma linha a cada ~5 s depois dos primeiros 5 s, com o que chegou e o tamanho declarado
    linhas = [linha for linha in r.stdout.splitlines() if "recebidos" in linha]
    assert 1 <= len(linhas) <= 3, r.stdout
    assert all("GET /admin/devices" in linha and "MB de 0,4 MB recebidos" in linha for linha in linhas), linhas
    assert par.principal.url in linhas[0]


def test_listagem_lenta_no_json_nao_mostra_andamento(par):
    """--json: a listagem lenta termina e nada de andamento sai (nem no stdout, que é só o JSON, nem no stderr)."""
    bloqueadas = _estornos_no_principal(par, 600, 3)
    par.principal.limitar_banda(36_000, vezes=1)  # ~255 KB em ~7 s: passa dos 5 s em que o andamento apareceria
    r = par.rodar("--json", SYNC_TIMEOUT="3", SYNC_TENTATIVAS_HTTP="1", timeout=180)
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    assert json.loads(r.stdout)["codigo_saida"] == 0
    [listagem] = par.principal.respostas_limitadas()
    assert listagem["completa"] and _duracao(listagem) > 6, listagem
    assert "recebidos" not in r.stdout + r.stderr
    assert not any(par.backup.veredito(chave) for chave in bloqueadas)


def test_resposta_abaixo_de_5_kb_por_segundo_e_cortada_pouco_depois_de_sync_timeout(par):
    """O prazo total cresce 1 s a cada 5 KB que chegam: a 2 KB/s, com SYNC_TIMEOUT=3, ele acaba em ~5 s
    (3 + 0,4 × t = t). A mensagem diz que a resposta chegava devagar demais; nada é gravado."""
    _estornos_no_principal(par, 300, 3)
    par.principal.limitar_banda(2_000)
    r = par.rodar("--sem-progresso", SYNC_TIMEOUT="3", SYNC_TENTATIVAS_HTTP="0")
    sem_traceback(r)
    assert r.codigo == 4, saida(r)[-3000:]
    assert "devagar demais" in saida(r) and "5 KB/s" in saida(r) and "SYNC_TIMEOUT" in saida(r), saida(r)[-3000:]
    [listagem] = par.principal.respostas_limitadas()
    assert not listagem["completa"]
    # medido no servidor; a listagem inteira levaria ~65 s: o teto (15 s) folga para uma máquina ocupada
    assert 4.5 <= _duracao(listagem) < 15, listagem
    assert par.backup.write_count() == 0


def test_listagem_que_se_cala_no_meio_falha_sync_timeout_depois_do_ultimo_byte(par):
    """SYNC_TIMEOUT é o silêncio permitido entre dois pedaços da resposta, em qualquer ponto dela: ~5 s de
    listagem correndo, depois silêncio (conexão aberta, nada chega) → a tentativa cai 3 s depois do último
    byte (medido no servidor), não 3 s depois do começo."""
    _estornos_no_principal(par, 600, 3)
    par.principal.limitar_banda(40_000, calar_apos=200_000)  # 200 KB em 5 s, e o servidor se cala
    r = par.rodar("--sem-progresso", SYNC_TIMEOUT="3", SYNC_TENTATIVAS_HTTP="0")
    sem_traceback(r)
    assert r.codigo == 4, saida(r)[-3000:]
    assert "tempo esgotado" in saida(r) and "3 s sem receber nada" in saida(r), saida(r)[-3000:]
    [listagem] = par.principal.respostas_limitadas()
    assert listagem["enviados"] == 200_000, listagem
    silencio = listagem["fim"] - listagem["ultimo_byte"]
    assert 2.5 <= silencio < 3 + 1.5, f"desistiu {silencio:.1f} s depois do último byte (SYNC_TIMEOUT=3)"
    assert par.backup.write_count() == 0


def test_servidor_calado_falha_em_sync_timeout(par):
    """Conexão pendurada (nenhum byte da resposta): a tentativa cai em SYNC_TIMEOUT, como sempre."""
    par.principal.delay("GET", "/admin/devices", 60, times=None)
    r, duracao = rodar_cronometrado(par.rodar, "--sem-progresso", SYNC_TIMEOUT="2", SYNC_TENTATIVAS_HTTP="0")
    sem_traceback(r)
    assert r.codigo == 4, saida(r)[-3000:]
    assert "tempo esgotado" in saida(r) and "2 s sem receber nada" in saida(r), saida(r)[-3000:]
    assert 2 <= duracao < 2 + 3, f"levou {duracao:.1f} s com SYNC_TIMEOUT=2"
    assert par.principal.counts[("GET", "/admin/devices")] == 1
    assert par.backup.write_count() == 0


# ---------------------------------------------------------------------------
# 7. Redirecionamentos: nomeados (status e Location), código 2, nunca seguidos
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ca_descartavel():
    trustme = pytest.importorskip("trustme")
    return trustme.CA()


@pytest.fixture
def destino_https(ca_descartavel):
    """Um servidor de referência https (o endereço para onde um host manda o http://)."""
    import ssl

    contexto = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca_descartavel.issue_cert("127.0.0.1", "localhost").configure_cert(contexto)
    srv = ServidorReferencia(tls=contexto).start()
    yield srv
    srv.stop()


@pytest.fixture
def destino():
    """Outro servidor de referência (outro host: localhost em vez de 127.0.0.1, outra porta)."""
    srv = ServidorReferencia().start()
    yield srv
    srv.stop()


def _nada_chegou(srv) -> None:
    """Nem uma conexão no destino do redirecionamento: a senha e o token nunca saíram para lá."""
    assert sum(srv.counts.values()) == 0 and srv.connections_accepted == 0, srv.counts
    assert srv.conexoes_tls_recusadas() == 0


def _redirecionado_na_hora(par, r, duracao, lado, status, location, raiz) -> None:
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert duracao < 5, f"levou {duracao:.1f} s"
    # antes do login: a primeira linha do stderr; numa listagem: a linha do servidor no relatório
    primeira = next((linha for linha in saida(r).splitlines() if "(redirecionamento" in linha), "")
    variavel = "SERVIDOR_PRINCIPAL" if lado == "principal" else "SERVIDOR_BACKUP"
    assert f"respondeu {status} (redirecionamento" in primeira and f"para {location}" in primeira, primeira
    assert f"use {raiz} em {variavel}" in primeira, primeira
    assert "HTTP 405" not in primeira and "HTTP 401" not in primeira and "não é a API" not in primeira
    nada_gravado(par)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("lado", ["principal", "backup"])
def test_redirecionamento_para_outro_host_sai_com_2_nomeando_o_location(par, destino, status, lado):
    """Issue 24 ("Redirects are named"): um host que redireciona tudo para outro endereço. O primeiro 3xx
    (GET /health) para a execução com código 2, nomeando o status e o Location; o endereço a usar no .env
    é a raiz dele. Nada é mandado ao destino (um 307/308 levaria a senha; um 301/302 viraria o POST do
    login num GET e a mensagem culparia um 405)."""
    semear_licencas(par.principal, 3)
    origem = par.principal if lado == "principal" else par.backup
    outro = _outro_nome(destino.url)
    origem.redirecionar(status, outro)
    r, duracao = _rodar_cronometrado(par)
    _redirecionado_na_hora(par, r, duracao, lado, status, outro + "/health", outro)
    assert "(redirecionamento" in _primeira_linha(r.stderr)  # a primeira linha já diz o que é
    assert origem.counts == {("GET", "/health"): 1}  # uma pergunta só: sem seguir, sem esperar "acordar"
    _nada_chegou(destino)


@pytest.mark.parametrize("status", [301, 308])
def test_http_redirecionado_para_https_sai_com_2_dizendo_o_endereco_https(par, destino_https, status):
    """O http:// que a hospedagem manda para o https://: o Location https é o que vai no .env."""
    semear_licencas(par.principal, 3)
    par.principal.redirecionar(status, destino_https.url)
    r, duracao = _rodar_cronometrado(par)
    _redirecionado_na_hora(par, r, duracao, "principal", status, destino_https.url + "/health", destino_https.url)
    assert destino_https.url.startswith("https://")
    _nada_chegou(destino_https)


@pytest.mark.parametrize("status, metodo, rota", [(307, "POST", "/admin/login"), (308, "GET", "/admin/devices"),
                                                  (302, "GET", "/admin/users")],
                         ids=["307_no_login", "308_na_listagem", "302_nos_usuarios"])
def test_redirecionamento_so_numa_rota_sai_com_2_e_a_senha_nao_sai(par, destino, status, metodo, rota):
    """Só uma rota redirecionada (o login, com a senha no corpo; uma listagem, com o token no cabeçalho):
    código 2 nomeando status e Location, nada gravado e nenhuma requisição no destino."""
    semear_licencas(par.principal, 3)
    outro = _outro_nome(destino.url)
    par.backup.redirecionar(status, outro, rota=rota, metodo=metodo)
    r, duracao = _rodar_cronometrado(par)
    _redirecionado_na_hora(par, r, duracao, "backup", status, outro + rota, outro)
    assert par.backup.counts[(metodo, rota)] == 1
    _nada_chegou(destino)


def test_location_com_senha_e_token_sai_mascarado(par, destino):
    """Um Location com usuário:senha e token na consulta (texto do servidor): mostrado sem os dois."""
    par.principal.redirecionar(302, f"http://usuario:senha-do-link-9@{_outro_nome(destino.url)[7:]}/entrar"
                                    "?token=tok-secreto-123&volta=1", manter_caminho=False)
    r, duracao = _rodar_cronometrado(par)
    sem_traceback(r)
    assert r.codigo == 2 and duracao < 5, saida(r)[-3000:]
    texto = saida(r)
    assert "senha-do-link-9" not in texto and "tok-secreto-123" not in texto and "usuario:" not in texto, texto
    primeira = _primeira_linha(r.stderr)
    assert "respondeu 302 (redirecionamento" in primeira and "token=***&volta=***" in primeira, primeira
    assert "SERVIDOR_PRINCIPAL" in primeira
    _nada_chegou(destino)
