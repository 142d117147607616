"""Configurações e códigos de saída: um lugar só para cada coisa.

A tabela SETTINGS do sincronizar_bancos.py é a fonte do tipo, do padrão, da ajuda e da linha do
.env.example de cada variável; parse_number é a única leitura de números (nos dois scripts);
ExitCode é a única tabela de códigos e run_exit_code() a única regra que junta os códigos de uma
execução. O sincronizar_automatico.py usa tudo isso por nomes públicos do script."""

from __future__ import annotations

import ast
import dataclasses
import re
import secrets
from pathlib import Path

import pytest

from apoio import RAIZ, SCRIPT, WRAPPER, ambiente_limpo, rodar_cronometrado, rodar_script

import sincronizar_bancos as sb

ENV_EXAMPLE = RAIZ / ".env.example"
LINHA_DE_VARIAVEL = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]+)=(.*)$")


def _linhas_do_env_example() -> list[str]:
    return ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()


def _comentario_acima(linhas: list[str], indice: int) -> str:
    """As linhas de comentário logo acima de uma variável (até a linha em branco ou a variável anterior)."""
    bloco = []
    for linha in reversed(linhas[:indice]):
        if not linha.startswith("#") or LINHA_DE_VARIAVEL.match(linha):
            break
        bloco.append(linha)
    return " ".join(reversed(bloco))


def test_env_example_documenta_cada_variavel_da_tabela_e_nenhuma_outra():
    nomes = {m.group(1) for linha in _linhas_do_env_example() if (m := LINHA_DE_VARIAVEL.match(linha))}
    assert nomes == set(sb.SETTING)


def test_env_example_tem_a_linha_de_cada_configuracao_com_o_padrao_da_tabela():
    linhas = _linhas_do_env_example()
    for config in sb.SETTINGS:
        assert config.env_line in linhas, config.env_line
        comentario = _comentario_acima(linhas, linhas.index(config.env_line))
        if config.default is not None and not config.required:
            # a linha comentada mostra o padrão; um "Padrão: N" no comentário acima também é o da tabela
            assert config.env_line.endswith(f"={config.default_text}")
            for citado in re.findall(r"Padrão: ([0-9][0-9.,]*[0-9]|[0-9])", comentario):
                assert citado == config.default_text, (config.name, citado)
        elif not config.required:
            assert "Padrão: " not in comentario or config.name.endswith("FUSO_HORARIO"), config.name


def test_env_example_ativo_so_com_as_obrigatorias():
    ativas = {m.group(1) for linha in _linhas_do_env_example()
              if not linha.startswith("#") and (m := LINHA_DE_VARIAVEL.match(linha))}
    assert ativas == {c.name for c in sb.SETTINGS if c.required}


def test_padroes_do_config_sao_os_da_tabela():
    campos = {"timeout": "SYNC_TIMEOUT", "wake_wait": "SYNC_ESPERA_DESPERTAR", "http_retries": "SYNC_TENTATIVAS_HTTP",
              "parallel": "SYNC_PARALELO", "history_days": "SYNC_HISTORICO_DIAS"}
    padroes = {f.name: f.default for f in dataclasses.fields(sb.Config)}
    for campo, nome in campos.items():
        assert padroes[campo] == sb.SETTING[nome].default, campo


def test_docs_de_agendamento_mostram_os_padroes_da_tabela():
    texto = (RAIZ / "docs" / "AGENDAMENTO.md").read_text(encoding="utf-8")
    for config in sb.SETTINGS:
        if config.wrapper and config.option:
            linha = next(li for li in texto.splitlines() if li.startswith(f"| `{config.option} "))
            assert f"| `{config.name}` | `{config.default_text}`" in linha, linha


def _sem_quebras(texto: str) -> str:
    return " ".join(texto.split())


@pytest.mark.parametrize("script, wrapper", [(SCRIPT, False), (WRAPPER, True)], ids=["script", "involucro"])
def test_ajuda_de_cada_script_mostra_ajuda_e_padrao_da_tabela(tmp_path, script, wrapper):
    r = rodar_script("--help", env=ambiente_limpo(), cwd=tmp_path, timeout=60, script=script)
    assert r.codigo == 0, r.stderr
    ajuda = _sem_quebras(r.stdout)
    opcoes = [c for c in sb.SETTINGS if c.option and c.wrapper == wrapper]
    assert len(opcoes) >= 5
    for config in opcoes:
        assert _sem_quebras(config.option_help().replace("%%", "%")) in ajuda, config.name


# --- números: a mesma regra e a mesma mensagem nos dois scripts -------------------------------------------

def _ambiente_do_script(tmp_path: Path, **extra: str) -> dict[str, str]:
    """Configuração válida que não chega à rede: o erro de número aparece antes de qualquer conexão."""
    return ambiente_limpo(SERVIDOR_PRINCIPAL="http://127.0.0.1:9", SERVIDOR_BACKUP="http://127.0.0.1:8",
                          ADMIN_USER="admin", ADMIN_PASSWORD="senha-" + secrets.token_hex(6),
                          DADOS_DIR=str(tmp_path / "dados"), **extra)


def _motivo(texto: str, nome: str) -> str:
    achado = re.search(rf"{nome} (deve ser [^\n]*?\))\.", texto)
    assert achado, texto
    return achado.group(1)


@pytest.mark.parametrize("bruto, motivo", [
    ("1,5", "deve ser um número inteiro (recebido: '1,5')"),
    ("abc", "deve ser um número inteiro (recebido: 'abc')"),
    ("-1", "deve ser no mínimo 1 (recebido: '-1')"),
], ids=["virgula_em_inteiro", "texto", "negativo"])
def test_numero_invalido_da_mesma_mensagem_e_codigo_2_no_script_e_no_involucro(tmp_path, bruto, motivo):
    script = rodar_script("--sem-progresso", env=_ambiente_do_script(tmp_path, SYNC_PARALELO=bruto),
                          cwd=tmp_path, timeout=60)
    involucro = rodar_script("--script", str(SCRIPT),
                             env=_ambiente_do_script(tmp_path, SYNC_TENTATIVAS=bruto), cwd=tmp_path, timeout=60,
                             script=WRAPPER)
    assert script.codigo == involucro.codigo == sb.ExitCode.CONFIG
    assert _motivo(script.stderr, "SYNC_PARALELO") == _motivo(involucro.stderr, "SYNC_TENTATIVAS") == motivo
    for r in (script, involucro):
        assert "Traceback" not in r.stdout + r.stderr
    assert not (tmp_path / "dados" / "historico.sqlite3").exists()  # nada rodou


def test_decimal_com_virgula_ou_ponto_vale_igual_nos_dois_scripts(tmp_path, monkeypatch):
    import sincronizar_automatico as auto

    vazio = tmp_path / "vazio.env"
    vazio.write_text("", encoding="utf-8")
    for texto in ("1,5", "1.5", " 1,5 "):
        assert sb.parse_number(texto) == 1.5
        assert sb.build_parser().parse_args(["--timeout", texto]).timeout == 1.5
        config = sb.build_config(sb.build_parser().parse_args(["--env", str(vazio)]),
                                 env=_ambiente_do_script(tmp_path, SYNC_TIMEOUT=texto))
        assert config.timeout == 1.5
        monkeypatch.setenv("SYNC_TIMEOUT_TOTAL", texto)
        monkeypatch.setenv("DADOS_DIR", str(tmp_path / "dados"))
        opcoes, filho = auto.ler_opcoes(["--espera-inicial", texto])
        ajustes = auto.ler_ajustes(opcoes, filho)
        assert (ajustes.timeout, ajustes.espera_inicial, ajustes.erros) == (1.5, 1.5, [])
    for texto in ("1e3", "inf", "nan", "1_000", "1.000.000", "1,5,0", ""):
        with pytest.raises(ValueError):
            sb.parse_number(texto or " x")


def test_opcao_sem_valor_tem_a_mesma_traducao_nos_dois_scripts(tmp_path):
    script = rodar_script("--timeout", env=ambiente_limpo(), cwd=tmp_path, timeout=60)
    involucro = rodar_script("--timeout-total", env=ambiente_limpo(), cwd=tmp_path, timeout=60, script=WRAPPER)
    assert script.codigo == involucro.codigo == sb.ExitCode.CONFIG
    assert "--timeout: falta o valor desta opção" in script.stderr
    assert "--timeout-total: falta o valor desta opção" in involucro.stderr


# --- o invólucro usa só nomes públicos do script --------------------------------------------------------

def _nomes_do_script_usados_pelo_involucro() -> set[str]:
    arvore = ast.parse(WRAPPER.read_text(encoding="utf-8"))
    return {no.attr for no in ast.walk(arvore)
            if isinstance(no, ast.Attribute) and isinstance(no.value, ast.Name) and no.value.id == "sb"}


def test_involucro_nao_usa_nome_privado_do_script():
    usados = _nomes_do_script_usados_pelo_involucro()
    assert {"ExitCode", "SETTINGS", "SECRET_SETTINGS", "setting_value", "translate_argparse"} <= usados
    assert not [nome for nome in usados if nome.startswith("_")]
    assert not re.search(r"\bsb\._", WRAPPER.read_text(encoding="utf-8"))
    publicos = getattr(sb, "__all__", None)
    if publicos is not None:  # o __all__ do script lista tudo o que o invólucro usa
        assert usados <= set(publicos), usados - set(publicos)


def test_involucro_nao_tem_tabela_propria_de_padroes_segredos_ou_traducoes():
    import sincronizar_automatico as auto

    for nome in ("VARIAVEIS_SECRETAS", "OPCOES_NUMERICAS", "_TRADUCOES", "PADRAO_TENTATIVAS", "_numero"):
        assert not hasattr(auto, nome), nome
    assert {c.name for c in auto.CONFIGURACOES_NUMERICAS} == {
        "SYNC_TIMEOUT_TOTAL", "SYNC_TENTATIVAS", "SYNC_ESPERA_INICIAL", "SYNC_LOG_MAX_BYTES", "SYNC_LOG_BACKUPS"}


def test_variaveis_secretas_de_uma_lista_so_sao_mascaradas_pelo_involucro(tmp_path, monkeypatch):
    import sincronizar_automatico as auto

    assert set(sb.SECRET_SETTINGS) == {"ADMIN_PASSWORD", "PRINCIPAL_ADMIN_PASSWORD", "BACKUP_ADMIN_PASSWORD",
                                       "PAINEL_TOKEN", "SYNC_WEBHOOK_URL"}
    valores = {nome: "segredo-" + secrets.token_hex(8) for nome in sb.SECRET_SETTINGS}
    for nome, valor in valores.items():
        monkeypatch.setenv(nome, valor)
    monkeypatch.setenv("DADOS_DIR", str(tmp_path / "dados"))
    opcoes, filho = auto.ler_opcoes([])
    auto.ler_ajustes(opcoes, filho)
    for nome, valor in valores.items():
        assert auto.mascarar(f"antes {valor} depois") == "antes *** depois", nome


# --- códigos de saída -------------------------------------------------------------------------------------

def test_codigos_de_saida_tem_os_valores_de_sempre():
    assert [int(c) for c in sb.ExitCode] == [0, 1, 2, 3, 4, 5, 130, 143]
    assert [int(c) for c in sb.ExitCode.by_precedence()] == [2, 4, 5, 1, 0]
    assert str(sb.ExitCode.CONFIG) == "2" and f"{sb.ExitCode.SAFETY}" == "5"
    assert sb.ExitCode.meaning_of(99) == "código inesperado"


@pytest.mark.parametrize("codigos, problemas, esperado", [
    ([], False, 0),
    ([0, 0], False, 0),
    ([0, 0], True, 1),           # aviso sobre arquivos locais ou rota de falha no verificar
    ([1, 5, 0], False, 5),
    ([5, 4, 1], False, 4),
    ([4, 2, 5], True, 2),
    ([1, 130, 2], False, 130),   # interrompida: vale sozinho
], ids=["nada", "tudo_ok", "ok_com_problema", "trava", "servidor", "configuracao", "interrompida"])
def test_codigo_da_execucao_e_o_mais_grave_pela_precedencia(codigos, problemas, esperado):
    assert sb.run_exit_code(codigos, problems=problemas) == esperado


@pytest.mark.parametrize("separador", [" ", ";", " ; ", "\t"])
def test_backups_separados_por_espaco_ou_ponto_e_virgula_param_com_2_na_hora_nomeando_variavel_e_virgula(
        par_dois_backups, separador):
    par = par_dois_backups
    a, b = (s.url for s in par.backups)
    valor = f"{a}{separador}{b}"
    r, segundos = rodar_cronometrado(par.rodar, SERVIDOR_BACKUP=valor)
    texto = r.stdout + r.stderr
    assert r.codigo == 2, texto
    assert "SERVIDOR_BACKUP" in texto and a in texto and b in texto and "vírgula (,)" in texto, texto
    assert f"SERVIDOR_BACKUP={a},{b}" in texto, texto  # o valor certo, pronto para colar
    assert segundos < 1.0, segundos
    assert sum(sum(s.counts.values()) for s in par.servidores) == 0  # parou antes da rede


def test_https_separados_por_espaco_nao_viram_servidor_dormindo(tmp_path):
    env = ambiente_limpo(SERVIDOR_PRINCIPAL="https://principal.minhaempresa.test",
                         SERVIDOR_BACKUP="https://a.minhaempresa.test https://b.minhaempresa.test",
                         ADMIN_USER="admin", ADMIN_PASSWORD="s3nha-qualquer-9", DADOS_DIR=str(tmp_path / "dados"),
                         SYNC_ESPERA_DESPERTAR="90")
    r, segundos = rodar_cronometrado(rodar_script, env=env, cwd=tmp_path)
    assert r.codigo == 2 and "SERVIDOR_BACKUP" in r.stdout + r.stderr and "vírgula (,)" in r.stdout + r.stderr
    assert segundos < 1.0, segundos


def test_backups_separados_por_virgula_e_espaco_continuam_valendo(par_dois_backups):
    par = par_dois_backups
    r = par.rodar(SERVIDOR_BACKUP=" , ".join(s.url for s in par.backups))
    assert r.codigo == 0, r.stdout + r.stderr


def test_duas_urls_no_principal_param_com_2_nomeando_a_variavel(par):
    r = par.rodar(SERVIDOR_PRINCIPAL=f"{par.principal.url} {par.backup.url}")
    assert r.codigo == 2 and "SERVIDOR_PRINCIPAL deve ter uma URL só" in r.stdout + r.stderr, r.stdout + r.stderr
