"""Varredura de segredos: nada do que a ferramenta imprimiu ou gravou contém senha ou token.

O teste faz a sua própria execução "isca" (cria usuários, leva um 401 no meio, uma falha 500 e um par
ignorado, em modo texto e --json) e varre SÓ o que ela produziu: não depende da ordem dos testes.
A varredura de tudo o que a suíte inteira escreveu roda no fim da sessão de cada trabalhador do
pytest-xdist (conftest.varredura_de_segredos_da_sessao, com as mesmas funções de varredura_segredos.py)
e faz a sessão falhar se achar algo.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from apoio import RAIZ, SEGREDOS_USADOS, TOKENS_VISTOS, Par, saida, semear_licencas, semear_usuarios
from varredura_segredos import LOG, pastas_de_dados, senhas_de_usuarios_criados, varrer

import sincronizar_bancos as sb


def _execucao_isca(tmp_path: Path) -> None:
    par = Par(tmp_path)
    try:
        semear_licencas(par.principal, 15)
        semear_usuarios(par.principal, ["isca.ana", "isca.bia", "isca.caio"])
        par.backup.fail_next("POST", "/admin/devices/create", 401, {"error": "Unauthorized"})
        par.backup.fail_next("POST", "/admin/devices/<id>/deactivate", 500, {"error": "falha simulada"})
        r1 = par.rodar("--sem-progresso")
        # 0: o 401 no meio renova o token e repete a escrita; o 500 (falha do aplicativo) é repetido uma vez e
        # passa (transient_failure). Nada falha, e a paridade é conferida nos dois servidores
        assert r1.codigo == 0, r1.stdout[-2000:] + r1.stderr[-2000:]
        semear_usuarios(par.principal, ["isca.dora", "isca.eva", "isca.fabio"])  # mais senhas novas, em --json
        r2 = par.rodar("--json")
        json.loads(r2.stdout)
        par.backup.override("GET", "/admin/devices", 200, "<html>proxy</html>", content_type="text/html")
        r3 = par.rodar("--sem-progresso", "--tentativas-http", "0")
        assert r3.codigo == 4
    finally:
        par.parar()  # anota os tokens emitidos
    assert TOKENS_VISTOS


def test_nenhum_segredo_no_que_a_execucao_isca_imprimiu_ou_gravou(tmp_path):
    inicio_do_log = LOG.stat().st_size if LOG.exists() else 0
    _execucao_isca(tmp_path)
    pastas = pastas_de_dados(tmp_path)
    assert pastas, f"nenhuma pasta de dados encontrada em {tmp_path}"
    senhas_criadas = senhas_de_usuarios_criados(pastas)
    assert len(senhas_criadas) >= 6, "a execução isca devia ter criado usuários com senhas novas"
    assert len(SEGREDOS_USADOS) >= 2
    achados, varridos, texto = varrer(tmp_path, inicio_do_log, TOKENS_VISTOS)
    assert texto.strip() and "Sincronização" in texto, "o log de saídas da isca está vazio: nada para varrer"
    assert varridos >= 3, "quase nada foi varrido nas pastas de dados"
    assert not achados, "segredos encontrados:\n" + "\n".join(achados)


def test_a_varredura_acha_um_segredo_plantado(tmp_path):
    """A varredura não é de enfeite: uma senha plantada num arquivo de dados é achada."""
    pasta = tmp_path / "dados"
    pasta.mkdir()
    segredo = "senha-plantada-" + os.urandom(4).hex()
    SEGREDOS_USADOS.add(segredo)
    try:
        (pasta / sb.LAST_RUN_FILE).write_text(f'{{"erro": "{segredo}"}}', encoding="utf-8")
        (pasta / sb.HISTORY_FILE).write_bytes(b"Bearer abcdefgh12345678")
        achados, _varridos, _texto = varrer(tmp_path, LOG.stat().st_size if LOG.exists() else 0, set())
    finally:  # a isca plantada não pode sobrar para a varredura da sessão inteira
        shutil.rmtree(pasta)
        SEGREDOS_USADOS.discard(segredo)
    assert any(sb.LAST_RUN_FILE in a for a in achados) and any("Bearer" in a for a in achados)


def test_varredura_da_sessao_pega_o_vazamento_no_trabalhador_do_xdist_que_o_fez(tmp_path):
    """Sessão filha com 2 trabalhadores rodando tests/isca_vazamento.py: o trabalhador que rodou a isca varre
    o SEU log e a sessão falha, sem mostrar a senha; cada trabalhador grava num log próprio."""
    artefatos = tmp_path / "artefatos"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    env["ARTEFATOS_DOS_TESTES"] = str(artefatos)
    env["PYTHONIOENCODING"] = "utf-8"  # no Windows, um pipe sai na página de código local (cp1252), não em UTF-8
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
                           "--basetemp", str(tmp_path / "base"),
                           "isca_vazamento.py"],
                          cwd=RAIZ / "tests", env=env, capture_output=True, text=True, encoding="utf-8", timeout=240)
    texto = proc.stdout + proc.stderr
    assert proc.returncode == 1, texto[-3000:]
    assert "1 passed, 1 error" in texto and "varredura de segredos da sessão" in texto, texto[-3000:]
    logs = sorted(p.name for p in artefatos.glob("saidas_dos_testes.*.log"))
    assert len(logs) == 1 and logs[0].startswith("saidas_dos_testes.gw"), logs
    vazado = (artefatos / logs[0]).read_text(encoding="utf-8").split("senha vazada: ")[1].split()[0]
    assert len(vazado) >= 16 and vazado not in texto  # achada, e nunca repetida no relatório



def test_senha_numa_url_sem_esquema_nunca_aparece_nem_no_ultima_execucao(tmp_path):
    """URL digitada sem o https:// mas com usuário:senha@: o erro de configuração (código 2) não mostra a
    senha no terminal, no --json nem no ultima_execucao.json que o painel e o /status.json leem."""
    from apoio import ambiente_limpo, rodar_script

    senha = "Sup3r" + os.urandom(6).hex()
    SEGREDOS_USADOS.add(senha)
    dados = tmp_path / "dados"
    dados.mkdir()  # pasta de dados de uma instalação que já rodou: a falha é registrada nela
    env = ambiente_limpo(SERVIDOR_PRINCIPAL=f"admin:{senha}@principal.exemplo.test",
                         SERVIDOR_BACKUP="https://backup.exemplo.test", ADMIN_USER="admin",
                         ADMIN_PASSWORD="x" * 12, DADOS_DIR=str(dados))
    for args in ((), ("--json",)):
        r = rodar_script(*args, env=env, cwd=tmp_path)
        assert r.codigo == 2, r.stdout + r.stderr
        assert senha not in r.stdout + r.stderr
        assert "principal.exemplo.test" in r.stdout + r.stderr  # o endereço (sem a senha) continua dito
    gravados = "".join(p.read_text(encoding="utf-8", errors="replace") for p in dados.rglob("*") if p.is_file())
    assert senha not in gravados


# ---------------------------------------------------------------------------
# Um servidor (ou proxy) que devolve o corpo do login na mensagem de erro
# ---------------------------------------------------------------------------

def _formas(segredo: str) -> set[str]:
    """O segredo como pode aparecer numa saída: cru, escapado em JSON (uma e duas vezes, com e sem \\uXXXX)
    e codificado em URL."""
    escapado = {json.dumps(segredo, ensure_ascii=a)[1:-1] for a in (True, False)}
    return {segredo, *escapado, *(json.dumps(e)[1:-1] for e in escapado),
            urllib.parse.quote(segredo, safe=""), urllib.parse.quote_plus(segredo, safe="")}


def _pedacos(segredo: str) -> set[str]:
    """Pedaços de cada forma do segredo que não podem aparecer na saída: de 5 caracteres (de 2, num segredo
    curto), só os que têm uma letra (um "\\\"" sozinho é só JSON)."""
    tamanho = 5 if len(segredo) >= 8 else 2
    pedacos = {f[i:i + tamanho] for f in _formas(segredo) for i in range(max(1, len(f) - tamanho + 1))}
    return {p for p in pedacos if any(c.isalpha() for c in p)}


@pytest.mark.parametrize("senha", [
    'Pa"9 wörd-Secret#42',  # aspas, espaço e não ASCII: o eco em JSON traz "Pa\"9 w\u00f6rd-Secret#42"
    '"Zq',  # menos de 4 caracteres: só a regra do campo "password" a esconde
])
def test_servidor_que_ecoa_o_corpo_do_login_nao_mostra_pedaco_da_senha(tmp_path, senha):
    """O login recusado mostra a mensagem do servidor; um servidor ou proxy que põe nela o corpo recebido (em
    JSON ou como formulário) não pode levar nenhum pedaço da senha, de qualquer tamanho, ao texto, ao --json
    nem ao verificar."""
    if len(senha) >= 8:
        SEGREDOS_USADOS.add(senha)  # a varredura da sessão também a procura
    inicio_do_log = LOG.stat().st_size if LOG.exists() else 0
    par = Par(tmp_path, senha=senha)
    try:
        for forma in ("json", "url"):
            par.principal.clear_overrides()
            par.principal.ecoar_corpo("POST", "/admin/login", 400, forma=forma)
            for args in (("--sem-progresso",), ("--json",), ("verificar",), ("verificar", "--json")):
                r = par.rodar(*args)
                texto = r.stdout + r.stderr
                assert r.codigo == 2, texto[-3000:]
                assert "Requisição recusada" in texto and "admin" in texto, texto[-3000:]  # o eco chegou à saída
                if "--json" in args:
                    json.loads(r.stdout)
                vazados = sorted(p for p in _pedacos(senha) if p in texto)
                assert not vazados, f"{forma} {args}: pedaços da senha na saída: {vazados}\n{texto[-3000:]}"
                assert ("password=***" if forma == "url" else '"password": "***"') in texto, texto[-3000:]
    finally:
        par.parar()
    achados, _varridos, _texto = varrer(tmp_path, inicio_do_log, set())
    assert not achados, "segredos encontrados:\n" + "\n".join(achados)


def test_campos_de_200_mil_caracteres_sao_mascarados_e_mostrados(par):
    """A máscara passa por todo texto que sai; com ids e nomes de 200.000 caracteres (um revendedor cria
    isso) a sincronização termina, o texto mostra os ids com o usuário:senha@ de dentro mascarado e o --json
    traz os valores exatos. (O tempo, linear, é medido em tests/benchmark_sync.py --so-mascara.)"""
    longo_a = "x://" + ("a1!b" * 50_000)[:100_000] + " conta:segredo-do-id@host " + "c" * 99_970
    longo_b = "Ç" * 50_000 + ("https" * 20_000) + "d" * 50_000
    nome = ("!:" * 100_000)[:200_000]
    assert len(longo_a) == len(longo_b) == len(nome) == 200_000
    par.principal.add_device(longo_a, owner_name=nome, license_type="vitalicia")
    par.principal.add_device(longo_b, owner_name=nome, license_type="anual")
    semear_licencas(par.principal, 3)

    simulada = par.rodar("--simular", "--json")
    assert simulada.codigo == 0, simulada.stderr[-2000:]
    assert {longo_a, longo_b} <= {a["chave"] for a in simulada.json()["backups"][0]["acoes"]}
    r = par.rodar("--sem-progresso")

    assert r.codigo == 0, (r.stdout + r.stderr)[-2000:]
    assert par.backup.devices()[longo_a]["owner_name"] == nome and longo_b in par.backup.devices()
    assert "segredo-do-id" not in r.stdout + r.stderr
    assert longo_a.replace("conta:segredo-do-id@", "***@") in r.stdout  # o resto do id, inteiro
    assert longo_b in r.stdout


def test_senha_igual_a_um_nome_de_usuario_continua_mascarada_e_a_execucao_diz_por_que(tmp_path):
    """Issue 26: um nome de usuário igual à senha de administrador saía como *** sem explicação. O nome É a senha:
    mostrá-lo a poria no log. Continua mascarado, e a execução diz o que aconteceu (sem dizer qual nome) e o que
    fazer; quem lê a lista de usuários do servidor sabe a senha, então é um problema a resolver (código 1)."""
    par = Par(tmp_path, senha="loja2024x")
    try:
        par.principal.add_user("loja2024x", "outra-senha-1")
        par.principal.add_user("maria", "outra-senha-2")
        r = par.rodar("--sem-progresso")
        assert r.codigo == 1, saida(r)[-3000:]
        assert "loja2024x" not in r.stdout + r.stderr
        assert "👤 ***: usuário criado" in r.stdout and "maria" in r.stdout
        avisos = [linha for linha in r.stdout.splitlines() if "igual ao nome de um usuário" in linha]
        assert avisos and "Troque a senha" in avisos[0], r.stdout[-3000:]
        doc = par.rodar("--json", "--sem-progresso").json()
        assert any("igual ao nome de um usuário" in aviso for aviso in doc["avisos"]), doc["avisos"]
    finally:
        par.parar()


def test_senha_igual_ao_nome_do_administrador_e_avisada(tmp_path):
    """ADMIN_USER igual à senha: quem vê o nome de usuário (no .env, numa tela) sabe a senha. Aviso e código 1."""
    par = Par(tmp_path, senha="admin")
    try:
        r = par.rodar("--sem-progresso")
        assert r.codigo == 1, saida(r)[-3000:]
        assert any("é igual ao nome de usuário" in linha and "Troque a senha" in linha
                   for linha in r.stdout.splitlines()), r.stdout[-3000:]
    finally:
        par.parar()
