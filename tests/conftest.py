"""Configuração comum do pytest: põe a pasta tests/ no sys.path e oferece, como fixtures, servidores
de referência reais (portas efêmeras em 127.0.0.1). Os ajudantes moram em `apoio.py` (`Par`,
`rodar_script`, `Execucao`, `SCRIPT`, `ARTEFATOS`, `SEGREDOS_USADOS` continuam importáveis daqui).
`rodar_script` roda o script no próprio processo do trabalhador (sincronizar_bancos.main), e só como processo
filho quando o processo é o assunto; no fim da sessão, as contagens de cada caminho vão para
artefatos/execucoes.<trabalhador>.json.

Com o pytest-xdist, cada trabalhador é um processo com seus próprios servidores, seu log de saídas
(artefatos/saidas_dos_testes.<trabalhador>.log) e sua pasta temporária; a varredura de segredos do fim
da sessão roda em cada trabalhador e varre exatamente o que ELE imprimiu e gravou."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
import trustme

PASTA_TESTES = str(Path(__file__).resolve().parent)
if PASTA_TESTES not in sys.path:
    sys.path.insert(0, PASTA_TESTES)

from apoio import (ARTEFATOS, EXECUCOES, LOG_SAIDAS, RAIZ, SCRIPT, SEGREDOS_USADOS, TOKENS_VISTOS,  # noqa: E402
                   TRABALHADOR, ZIGOTO, Execucao, Par, compilar_script, contexto_tls, rodar_script,
                   semear_licencas)

__all__ = ["ARTEFATOS", "RAIZ", "SCRIPT", "SEGREDOS_USADOS", "Execucao", "Par", "rodar_script"]


def pytest_configure(config):
    """O bytecode do script, uma vez por processo do pytest (para os processos filhos: apoio.comando_script)."""
    compilar_script()


@pytest.fixture
def par(tmp_path):
    """Principal + um backup de referência, parados ao final do teste (com os tokens anotados)."""
    p = Par(tmp_path)
    yield p
    p.parar()


@pytest.fixture
def par_dois_backups(tmp_path):
    p = Par(tmp_path, backups=2)
    yield p
    p.parar()


@pytest.fixture(autouse=True)
def pasta_do_projeto_fica_limpa():
    """Nenhum teste deixa a pasta de dados padrão (dados/ ao lado do script) no projeto: um filho sem DADOS_DIR
    grava ali (a trava, o histórico). Só confere quando ela não existia antes do teste (a de quem usa a
    ferramenta de dentro do clone fica como está)."""
    padrao = RAIZ / "dados"
    existia = padrao.exists()
    yield
    if not existia and padrao.exists():
        criados = sorted(p.name for p in padrao.iterdir())
        raise AssertionError(f"o teste deixou {padrao} no projeto ({', '.join(criados)}): passe DADOS_DIR a quem "
                             "roda o script")


@pytest.fixture(scope="session", autouse=True)
def varredura_de_segredos_da_sessao(tmp_path_factory):
    """No fim da sessão (de cada trabalhador), varre o log de saídas deste processo e as pastas de dados
    da pasta temporária dele: uma senha ou token achado vira ERRO na finalização, com a lista do achado."""
    from varredura_segredos import varrer  # importado aqui: precisa do sys.path acima

    ARTEFATOS.mkdir(exist_ok=True)
    LOG_SAIDAS.write_text("", encoding="utf-8")  # o log é deste trabalhador e desta sessão
    yield
    ZIGOTO.parar()
    (ARTEFATOS / f"execucoes.{TRABALHADOR}.json").write_text(json.dumps(EXECUCOES), encoding="utf-8")
    achados, _varridos, _texto = varrer(tmp_path_factory.getbasetemp(), 0, TOKENS_VISTOS)
    assert not achados, "varredura de segredos da sessão: segredos encontrados:\n" + "\n".join(achados)


# TLS de verdade (CA descartável do trustme): usados por cliente_http/test_tls.py e historico/
@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    """CA descartável; o .pem dela fica num arquivo para SYNC_CA_BUNDLE."""
    autoridade = trustme.CA()
    arquivo = tmp_path_factory.mktemp("ca") / "minha-ca.pem"
    autoridade.cert_pem.write_to_path(str(arquivo))
    autoridade.arquivo = arquivo
    return autoridade


@pytest.fixture
def certificados(ca):
    return {
        "bom": contexto_tls(ca.issue_cert("127.0.0.1", "localhost")),
        "outro_nome": contexto_tls(ca.issue_cert("licencas.outro-nome.test")),
        "vencido": contexto_tls(ca.issue_cert("127.0.0.1", not_after=dt.datetime(2021, 1, 1, tzinfo=dt.timezone.utc))),
        "autoassinado": contexto_tls(trustme.CA().issue_cert("127.0.0.1")),  # de uma CA que ninguém conhece
    }


@pytest.fixture
def montar(tmp_path, certificados):
    pares = []

    def _montar(backup="bom", principal="bom"):
        par = Par(tmp_path, tls_principal=certificados[principal], tls_backup=certificados[backup])
        pares.append(par)
        semear_licencas(par.principal, 6)
        return par
    yield _montar
    for par in pares:
        par.parar()  # anota os tokens emitidos
