"""TLS de verdade: o servidor de referência falando https com certificados de uma CA descartável
(trustme), e o script de verdade (no processo do pytest, por main()). Cada problema de TLS que não se resolve repetindo
(certificado não confiável, de outro nome, vencido; http e https trocados) sai com código 2 e a sua
própria mensagem, sem novas tentativas e sem a senha ter saído da máquina; a verificação nunca é
desligada; com SYNC_CA_BUNDLE, uma sincronização inteira por https funciona."""

from __future__ import annotations

import time

import trustme

from apoio import (Par, conferir_convergencia, conferir_paridade, contexto_tls, rodar_wrapper, saida,
                   sem_traceback, semear_licencas)


def _requisicoes(srv) -> int:
    return sum(srv.counts.values())


def _recusado_na_hora(r, par, lado="backup"):
    """Código 2, sem traceback, nada gravado, e nenhuma requisição HTTP (nem a senha) chegou ao
    servidor recusado: o aperto de mão TLS falhou uma vez só (sem novas tentativas)."""
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    srv = par.backup if lado == "backup" else par.principal
    assert _requisicoes(srv) == 0
    assert srv.conexoes_tls_recusadas() == 1
    assert par.backup.write_count() == 0 and par.principal.write_count() == 0


def test_sincronizacao_completa_por_https_com_a_ca_em_sync_ca_bundle(montar, ca):
    par = montar()
    assert par.principal.url.startswith("https://") and par.backup.url.startswith("https://")
    r = par.rodar("--sem-progresso", SYNC_CA_BUNDLE=str(ca.arquivo))
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    assert par.backup.write_count() > 0
    assert par.principal.conexoes_tls_recusadas() == 0 and par.backup.conexoes_tls_recusadas() == 0
    conferir_convergencia_tls(par, ca)


def conferir_convergencia_tls(par, ca):
    """conferir_convergencia lista por requests: aqui, confiando na CA do teste."""
    import os
    antes = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = str(ca.arquivo)
    try:
        conferir_convergencia(par)
    finally:
        if antes is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = antes


def test_certificado_nao_confiavel_sai_com_2_e_nomeia_sync_ca_bundle(montar):
    par = montar()
    inicio = time.monotonic()
    r = par.rodar("--sem-progresso")
    duracao = time.monotonic() - inicio
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert "não confiável" in r.stderr and "SYNC_CA_BUNDLE" in r.stderr
    assert _requisicoes(par.principal) == 0 and _requisicoes(par.backup) == 0
    assert par.principal.conexoes_tls_recusadas() == 1 and par.backup.conexoes_tls_recusadas() == 1
    assert duracao < 20, duracao  # sem esperar o servidor "acordar" nem repetir


def test_certificado_de_ca_desconhecida_mesmo_com_sync_ca_bundle_sai_com_2(montar, ca):
    par = montar(backup="autoassinado")
    r = par.rodar("--sem-progresso", SYNC_CA_BUNDLE=str(ca.arquivo))
    _recusado_na_hora(r, par)
    assert "não confiável" in r.stderr and f"nem a CA de {ca.arquivo}" in r.stderr
    assert par.backup.url in r.stderr


def test_certificado_de_outro_nome_sai_com_2(montar, ca):
    par = montar(backup="outro_nome")
    r = par.rodar("--sem-progresso", SYNC_CA_BUNDLE=str(ca.arquivo))
    _recusado_na_hora(r, par)
    assert "outro nome" in r.stderr and "127.0.0.1" in r.stderr
    assert "não confiável" not in r.stderr


def test_certificado_vencido_sai_com_2(montar, ca):
    par = montar(principal="vencido")
    r = par.rodar("--sem-progresso", SYNC_CA_BUNDLE=str(ca.arquivo))
    _recusado_na_hora(r, par, lado="principal")
    assert "vencido" in r.stderr and par.principal.url in r.stderr


def test_https_numa_porta_http_sai_com_2(par, ca):
    semear_licencas(par.principal, 3)
    url = par.backup.url.replace("http://", "https://")
    r = par.rodar("--sem-progresso", SERVIDOR_BACKUP=url, SYNC_CA_BUNDLE=str(ca.arquivo))
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert "não fala https" in r.stderr and "SERVIDOR_BACKUP" in r.stderr
    assert par.backup.write_count() == 0 and par.principal.write_count() == 0
    # o aperto de mão TLS chega ao servidor http como uma "requisição" ilegível: uma só, sem repetir
    assert par.backup.connections_accepted == 1


def test_http_numa_porta_https_sai_com_2(montar, ca):
    par = montar()
    url = par.backup.url.replace("https://", "http://")
    r = par.rodar("--sem-progresso", SERVIDOR_BACKUP=url, SYNC_CA_BUNDLE=str(ca.arquivo))
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert "só fala https" in r.stderr and "https://" in r.stderr and "SERVIDOR_BACKUP" in r.stderr
    assert _requisicoes(par.backup) == 0 and par.backup.write_count() == 0 and par.principal.write_count() == 0
    # a requisição http (recusada no aperto de mão) e o teste de TLS, que não envia nada além do aperto de mão
    assert par.backup.conexoes_tls_recusadas() <= 2


def test_pagina_de_proxy_http_numa_porta_https_sai_com_2(par):
    """nginx/Cloudflare respondem 400 com uma página HTML a quem fala http numa porta https."""
    semear_licencas(par.principal, 3)
    pagina = ("<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head><body>"
              "<center><h1>400 Bad Request</h1></center><center>The plain HTTP request was sent to HTTPS port"
              "</center><hr><center>nginx</center></body></html>")
    for rota in ("/health", "/admin/login"):
        par.backup.override("GET" if rota == "/health" else "POST", rota, 400, pagina, content_type="text/html")
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert "só fala https" in r.stderr and "não é a API" not in r.stderr
    assert par.backup.counts[("POST", "/admin/login")] == 0


def test_sync_ca_bundle_que_nao_e_certificado_sai_com_2_antes_da_rede(montar, tmp_path):
    par = montar()
    ruim = tmp_path / "nao-e-ca.pem"
    ruim.write_text("isto não é um certificado\n", encoding="utf-8")
    r = par.rodar("--sem-progresso", SYNC_CA_BUNDLE=str(ruim))
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    assert "SYNC_CA_BUNDLE" in r.stderr and "PEM" in r.stderr
    assert par.principal.conexoes_tls_recusadas() == 0 and _requisicoes(par.principal) == 0


def test_json_traz_o_erro_de_tls_e_o_codigo_2(montar):
    par = montar()
    r = par.rodar("--json")
    sem_traceback(r)
    assert r.codigo == 2
    doc = r.json()
    assert doc["codigo_saida"] == 2 and "não confiável" in doc["principal"]["erro"]


def test_agendador_nao_repete_certificado_recusado(montar):
    par = montar(backup="bom")
    r = rodar_wrapper(par, "--tentativas", "3")
    assert r.returncode == 2, r.stdout + r.stderr
    log = (par.dados / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert "tentativa 2 de 3" not in log and "não confiável" in log
    assert par.backup.conexoes_tls_recusadas() == 1


def test_sync_ca_bundle_soma_a_ca_propria_as_autoridades_de_sempre(tmp_path, ca):
    """Principal com certificado de uma CA "de sempre" (aqui, a de REQUESTS_CA_BUNDLE) e backup com
    certificado próprio (a CA de SYNC_CA_BUNDLE): os dois são aceitos na mesma execução."""
    publica = trustme.CA()
    arquivo_publica = tmp_path / "autoridades-de-sempre.pem"
    publica.cert_pem.write_to_path(str(arquivo_publica))
    par = Par(tmp_path, tls_principal=contexto_tls(publica.issue_cert("127.0.0.1")),
              tls_backup=contexto_tls(ca.issue_cert("127.0.0.1")))
    try:
        semear_licencas(par.principal, 4)
        r = par.rodar("--sem-progresso", SYNC_CA_BUNDLE=str(ca.arquivo), REQUESTS_CA_BUNDLE=str(arquivo_publica))
        sem_traceback(r)
        assert r.codigo == 0, saida(r)[-3000:]
        assert set(par.backup.devices()) == set(par.principal.devices())
        assert par.principal.conexoes_tls_recusadas() == 0 and par.backup.conexoes_tls_recusadas() == 0
        # sem SYNC_CA_BUNDLE, o backup de certificado próprio é recusado (a CA dele não é "de sempre")
        r = par.rodar("--sem-progresso", REQUESTS_CA_BUNDLE=str(arquivo_publica))
        assert r.codigo == 2 and par.backup.url in r.stderr and "não confiável" in r.stderr
    finally:
        par.parar()


def test_ca_trocada_no_mesmo_arquivo_vale_na_execucao_seguinte(montar, ca, tmp_path):
    """O vendedor corrige o arquivo de SYNC_CA_BUNDLE (mesmo caminho) e roda de novo no mesmo processo (os
    testes rodam main() no processo): a execução seguinte relê o arquivo, não usa o contexto TLS da anterior."""
    par = montar()
    arquivo = tmp_path / "ca-do-vendedor.pem"
    trustme.CA().cert_pem.write_to_path(str(arquivo))  # a CA errada primeiro
    r = par.rodar("--sem-progresso", SYNC_CA_BUNDLE=str(arquivo))
    assert r.codigo == 2 and "não confiável" in r.stderr, saida(r)[-3000:]
    ca.cert_pem.write_to_path(str(arquivo))  # a certa, no mesmo arquivo
    r = par.rodar("--sem-progresso", SYNC_CA_BUNDLE=str(arquivo))
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    conferir_paridade(par.principal, par.backup)
