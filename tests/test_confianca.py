"""Confiar no que os servidores respondem (ponta a ponta e uma propriedade pura).

Cada teste de ponta a ponta sobe servidores de referência reais (127.0.0.1, portas efêmeras),
roda o script como processo filho e confere NOS SERVIDORES, com o oráculo `veredito()` do
servidor de referência (nunca com `sb.allows` da própria ferramenta), que toda licença tem o
mesmo veredito no principal e no backup (ou que a execução sai com código diferente de zero e
diz por quê), e que a execução seguinte converge (código 0 e, na outra, nenhuma escrita).

Casos:
1. Paridade observada: backup que reinicia VAZIO no meio da execução; proxy que responde 200 com
   HTML a um bloqueio.
2. Veredito: fim de vigência calculado (end_date nulo, início em 2024); servidores no horário de
   Brasília, de Tóquio, e principal em Brasília com backup em UTC (--agora fixa o instante).
3. Licença criada pelo POST /payments/pix/create de verdade (custom_interval "30min").
4. Arquivos locais: pasta de dados num tmpfs que enche DURANTE a execução; pasta que não aceita
   gravação desde o início (cheia ou somente leitura); textos de 1 MB e de 10.001 caracteres.
5. Id que fica vazio depois de tirar os espaços.
6–9. O que faltava em test_config_http.py / test_cli.py: ADMIN_PASSWORD=true com --json, e resposta
   pingada (trickle) do servidor de referência com SYNC_TIMEOUT=3.
Mais uma propriedade (hypothesis, sem servidores): com relógios locais diferentes e falhas
aleatórias nas cadeias do plano, o backup só libera o que o principal nega numa cadeia que falhou.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import random
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import conftest
from apoio_resiliencia import (conferir_convergencia, guardar_tokens, par_r, saida, sem_traceback,
                               semear_licencas, semear_usuarios)
from conftest import Par
from servidor_referencia import ServidorReferencia
from test_planejador_propriedades import HOJE, pares_de_retratos

import sincronizar_bancos as sb

__all__ = ["par_r"]  # fixture importada

UPSERT = ("POST", "/admin/devices/create")
STATUS = ("POST", "/admin/devices/<id>/deactivate")


# ---------------------------------------------------------------------------
# Ajudantes
# ---------------------------------------------------------------------------

class ParComFusos(Par):
    """Principal e backup com fuso horário e instante escolhidos pelo teste (senhas aleatórias)."""

    def __init__(self, tmp_path: Path, fuso_principal: str, fuso_backup: str, agora: dt.datetime):
        self.senha_principal = secrets.token_urlsafe(16)
        self.senhas_backup = secrets.token_urlsafe(16)
        conftest.SEGREDOS_USADOS.update({self.senha_principal, self.senhas_backup})
        self.principal = ServidorReferencia(admins={"admin": self.senha_principal}, fuso=fuso_principal,
                                            now=agora).start()
        self.backups = [ServidorReferencia(admins={"admin": self.senhas_backup}, fuso=fuso_backup, now=agora,
                                           primeiro_id=1000).start()]
        for servidor in [self.principal] + self.backups:
            servidor.set_license_servers([s.url for s in [self.principal] + self.backups])
        self.dados = tmp_path / "dados"
        self.tmp_path = tmp_path


@pytest.fixture
def par_fusos(tmp_path):
    """Fábrica de ParComFusos, parados (e com os tokens anotados) ao final do teste."""
    criados = []

    def criar(fuso_principal: str, fuso_backup: str, agora: dt.datetime) -> ParComFusos:
        par = ParComFusos(tmp_path, fuso_principal, fuso_backup, agora)
        criados.append(par)
        return par
    yield criar
    for par in criados:
        guardar_tokens(par.principal, *par.backups)
        par.parar()


def utc(texto: str) -> dt.datetime:
    return dt.datetime.fromisoformat(texto).replace(tzinfo=dt.timezone.utc)


def sessao_admin(srv, senha: str) -> requests.Session:
    """Login de verdade por HTTP (como o painel do vendedor faria), sem passar pela ferramenta."""
    sessao = requests.Session()
    resp = sessao.post(f"{srv.url}/admin/login", json={"username": "admin", "password": senha}, timeout=10)
    assert resp.status_code == 200, resp.text
    sessao.headers["Authorization"] = "Bearer " + resp.json()["token"]
    return sessao


def convergir(par, *args: str, **extra: str) -> None:
    """A execução seguinte termina com 0; a outra não escreve nada em nenhum servidor."""
    r = par.rodar("--sem-progresso", *args, **extra)
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    for srv in [par.principal] + par.backups:
        srv.reset_counts()
    r = par.rodar("--sem-progresso", *args, **extra)
    assert r.codigo == 0, saida(r)[-4000:]
    assert par.backup.write_count() == 0, par.backup.counts
    assert par.principal.write_count() == 0, par.principal.counts


def diferentes_no_oraculo(par) -> dict[str, tuple[bool, bool]]:
    """Licenças (do principal ou do backup) com veredito diferente, pelo oráculo de cada servidor."""
    chaves = set(par.principal.devices()) | set(par.backup.devices())
    return {k: (par.principal.veredito(k), par.backup.veredito(k)) for k in sorted(chaves)
            if par.principal.veredito(k) != par.backup.veredito(k)}


def backup_libera_o_que_o_principal_nega(par) -> list[str]:
    return sorted(k for k in par.principal.devices()
                  if par.backup.veredito(k) and not par.principal.veredito(k))


def escritas_de_status(srv) -> int:
    return srv.counts[STATUS]


# ---------------------------------------------------------------------------
# 1. Paridade observada (relida nos servidores depois das escritas)
# ---------------------------------------------------------------------------

def _reinicia_vazio(srv) -> None:
    srv.wipe()
    srv.invalidate_tokens()  # um reinício de verdade também esquece os tokens


@pytest.mark.parametrize("modo", ["json", "texto"])
def test_backup_que_reinicia_vazio_no_meio_da_execucao_nao_vira_paridade_ok(par_r, modo):
    par = par_r
    semear_licencas(par.principal, 12)
    semear_usuarios(par.principal, ["ana", "bia"])
    # depois da 4ª criação (já gravada e respondida com 201), o backup volta vazio
    gancho = _reinicia_vazio if modo == "json" else (lambda s: s.wipe())
    par.backup.on_request("POST", "/admin/devices/create", gancho, when="after", skip=3)

    r = par.rodar("--sem-progresso", *(["--json"] if modo == "json" else []), SYNC_PARALELO="1")

    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-4000:]
    assert not par.backup.hook_errors
    assert par.backup.counts[UPSERT] == 12  # o gancho rodou no meio: as outras criações vieram depois dele
    assert diferentes_no_oraculo(par), "o backup voltou vazio e mesmo assim tudo bate?"
    if modo == "json":
        [pair] = r.json()["backups"]
        assert pair["paridade"]["ok"] is False and pair["paridade"]["conferida"] is True
        assert pair["paridade"]["diferentes"], pair["paridade"]
        nao_gravadas = {(item["tipo"], item["chave"]) for item in pair["nao_gravadas"]}
        assert nao_gravadas, pair
        # os usuários (criados antes do reinício) e a licença liberada LIC-0001 sumiram do backup
        assert {(sb.CREATE_USER, "ana"), (sb.CREATE_USER, "bia"), (sb.CREATE, "LIC-0001")} <= nao_gravadas
        assert "LIC-0001" in pair["paridade"]["diferentes"]
        assert r.json()["codigo_saida"] == 1
    else:
        assert "o servidor não guardou" in r.stdout, r.stdout[-4000:]
        assert "reiniciado vazio" in r.stdout
        assert "❌ Paridade de veredito" in r.stdout
        assert "Código de saída: 1" in r.stdout

    convergir(par)
    conferir_convergencia(par)
    assert not diferentes_no_oraculo(par)


@pytest.mark.parametrize("modo", ["json", "texto"])
def test_bloqueio_respondido_com_html_200_por_um_proxy_e_falha(par_r, modo):
    par = par_r
    semear_licencas(par.principal, 6)
    par.principal.add_device("BLOQ-1", owner_name="Ótica Visão", license_type="anual", status="blocked")
    par.principal.add_device("BLOQ-2", owner_name="Padaria Pão de Açúcar", license_type="mensal",
                             status="blocked")
    # BLOQ-1 já está no backup, liberada (só falta bloquear); BLOQ-2 falta (criar → bloquear)
    par.backup.add_device("BLOQ-1", owner_name="Ótica Visão", license_type="anual")
    for chave in ("BLOQ-1", "BLOQ-2"):
        par.backup.interstitial_200("POST", f"/admin/devices/{chave}/deactivate", times=10)

    r = par.rodar("--sem-progresso", *(["--json"] if modo == "json" else []), SYNC_TENTATIVAS_HTTP="2")

    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-4000:]
    # o app nunca viu os bloqueios: BLOQ-1 (que já existia) continua liberada no backup; BLOQ-2, criada
    # nesta execução, é excluída de novo (compensação): não fica liberada onde o principal nega
    assert backup_libera_o_que_o_principal_nega(par) == ["BLOQ-1"]
    assert "BLOQ-2" not in par.backup.devices()
    assert par.backup.counts[STATUS] >= 2 * 3  # cada bloqueio tentado 1 + 2 vezes, todas respondidas pelo proxy
    if modo == "json":
        [pair] = r.json()["backups"]
        falhas = {(f["tipo"], f["chave"]) for f in pair["falhas"]}
        assert falhas == {(sb.BLOCK, "BLOQ-1"), (sb.BLOCK, "BLOQ-2")}, pair["falhas"]
        assert all("sem a confirmação JSON da API" in f["mensagem"] for f in pair["falhas"]), pair["falhas"]
        assert pair["paridade"]["ok"] is False
        assert "BLOQ-1" in pair["paridade"]["diferentes"] and "BLOQ-2" not in pair["paridade"]["diferentes"]
        assert pair["contagens"]["licencas_bloqueadas"] == sum(
            1 for a in pair["acoes"] if a["tipo"] == sb.BLOCK and a["ok"])
        assert pair["codigo_saida"] == 1
    else:
        assert "falhou ao bloquear" in r.stdout
        assert "❌ Paridade de veredito" in r.stdout
        total = len(par.principal.devices())
        assert f"paridade {total}/{total}" not in r.stdout, r.stdout[-3000:]
        assert "Código de saída: 1" in r.stdout

    par.backup.clear_overrides()  # o proxy saiu da frente
    convergir(par)
    conferir_convergencia(par)
    assert par.backup.devices()["BLOQ-1"]["status"] == "blocked"
    assert not par.backup.veredito("BLOQ-2")


# ---------------------------------------------------------------------------
# 2. Veredito exato do servidor
# ---------------------------------------------------------------------------

AGORA_MEIO_DIA = "2026-11-29T12:00"


def test_end_date_nulo_com_inicio_em_2024_e_vencida_e_o_backup_nega_igual(par_fusos):
    par = par_fusos("UTC", "UTC", utc(AGORA_MEIO_DIA))
    # importação antiga: end_date NULL, o servidor calcula início + período (vencida há muito)
    par.principal.add_device("VELHA-1", license_type="mensal", owner_name="José da Silva",
                             start_date="2024-03-10", calcular_fim=False)
    par.principal.add_device("VELHA-2", license_type="anual", owner_name="Maria Conceição",
                             start_date="2024-01-31", calcular_fim=False)
    par.principal.add_device("NOVA-1", license_type="mensal", owner_name="Ótica Visão",
                             start_date="2026-11-20", calcular_fim=False)  # calculado: 20/12, ainda vale
    # no backup, uma cópia de VELHA-1 com os mesmos dados e período novo: liberada
    par.backup.add_device("VELHA-1", license_type="mensal", owner_name="José da Silva")
    assert not par.principal.veredito("VELHA-1") and not par.principal.veredito("VELHA-2")
    assert par.principal.veredito("NOVA-1") and par.backup.veredito("VELHA-1")

    r = par.rodar("--sem-progresso", "--json", "--agora", AGORA_MEIO_DIA)

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    assert not diferentes_no_oraculo(par)
    backup = par.backup.devices()
    assert backup["VELHA-1"]["status"] == "blocked"
    assert "VELHA-2" not in backup or not par.backup.veredito("VELHA-2")
    assert par.backup.veredito("NOVA-1")
    convergir(par, "--agora", AGORA_MEIO_DIA)


def _fim_30_de_novembro(par, outro_fim_no_backup: str) -> None:
    """FIM-30 (fim 30/11 nos dois), FIM-30-B (fim 30/11 no principal, 30/12 no backup), FIM-30-NOVA (só
    no principal) e FIM-29 (fim 29/11 nos dois): os mesmos dados copiáveis dos dois lados."""
    dados = dict(license_type="mensal", owner_name="Padaria Pão de Açúcar", created_by="sergio")
    for chave, inicio, fim in (("FIM-30", "2026-10-30", "2026-11-30"), ("FIM-30-B", "2026-10-30", "2026-11-30"),
                               ("FIM-30-NOVA", "2026-10-30", "2026-11-30"), ("FIM-29", "2026-10-29", "2026-11-29")):
        par.principal.add_device(chave, start_date=inicio, end_date=fim, **dados)
    par.backup.add_device("FIM-30", start_date="2026-10-30", end_date="2026-11-30", **dados)
    par.backup.add_device("FIM-30-B", start_date="2026-11-30", end_date=outro_fim_no_backup, **dados)
    par.backup.add_device("FIM-29", start_date="2026-10-29", end_date="2026-11-29", **dados)


def test_servidores_em_brasilia_a_licenca_vale_ate_o_fim_do_dia_local(par_fusos):
    agora = "2026-12-01T01:00"  # 30/11, 22:00 em Brasília
    par = par_fusos("America/Sao_Paulo", "America/Sao_Paulo", utc(agora))
    _fim_30_de_novembro(par, "2026-12-30")
    assert par.principal.local_today() == dt.date(2026, 11, 30)
    assert par.principal.veredito("FIM-30") and par.principal.veredito("FIM-30-NOVA")

    r = par.rodar("--sem-progresso", "--json", "--agora", agora, SYNC_FUSO_HORARIO="America/Sao_Paulo")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    assert escritas_de_status(par.backup) == 0, "bloqueou no backup o que o principal ainda libera"
    for chave in ("FIM-30", "FIM-30-B", "FIM-30-NOVA"):
        assert par.principal.veredito(chave) and par.backup.veredito(chave), chave
    assert not par.principal.veredito("FIM-29") and not par.backup.veredito("FIM-29")
    assert not diferentes_no_oraculo(par)
    assert r.json()["backups"][0]["paridade"]["ok"] is True
    convergir(par, "--agora", agora, SYNC_FUSO_HORARIO="America/Sao_Paulo")


def test_servidores_em_toquio_a_licenca_ja_venceu_e_o_backup_nega_tambem(par_fusos):
    agora = "2026-11-30T16:00"  # já é 01/12, 01:00 em Tóquio
    par = par_fusos("Asia/Tokyo", "Asia/Tokyo", utc(agora))
    _fim_30_de_novembro(par, "2026-12-30")
    assert par.principal.local_today() == dt.date(2026, 12, 1)
    assert not par.principal.veredito("FIM-30") and par.backup.veredito("FIM-30-B")

    r = par.rodar("--sem-progresso", "--json", "--agora", agora, SYNC_FUSO_HORARIO="Asia/Tokyo")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    for chave in ("FIM-30", "FIM-30-B", "FIM-30-NOVA", "FIM-29"):
        assert not par.principal.veredito(chave) and not par.backup.veredito(chave), chave
    assert par.backup.devices()["FIM-30-B"]["status"] == "blocked"
    assert not diferentes_no_oraculo(par)
    convergir(par, "--agora", agora, SYNC_FUSO_HORARIO="Asia/Tokyo")


def test_principal_em_brasilia_e_backup_em_utc_o_backup_nunca_nega_o_que_o_principal_libera(par_fusos):
    agora = "2026-12-01T01:00"  # 30/11 no principal (Brasília), 01/12 no backup (UTC)
    par = par_fusos("America/Sao_Paulo", "UTC", utc(agora))
    _fim_30_de_novembro(par, "2026-11-30")
    assert par.principal.veredito("FIM-30") and not par.backup.veredito("FIM-30")

    r = par.rodar("--sem-progresso", "--json", "--agora", agora,
                  PRINCIPAL_FUSO_HORARIO="America/Sao_Paulo", BACKUP_FUSO_HORARIO="UTC")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    nega = sorted(k for k in par.principal.devices() if par.principal.veredito(k) and not par.backup.veredito(k))
    assert nega == [], f"o backup nega o que o principal libera: {nega}"
    assert backup_libera_o_que_o_principal_nega(par) == []
    for chave in ("FIM-30", "FIM-30-B", "FIM-30-NOVA"):
        assert par.backup.veredito(chave), chave
    assert not par.backup.veredito("FIM-29")
    convergir(par, "--agora", agora, PRINCIPAL_FUSO_HORARIO="America/Sao_Paulo", BACKUP_FUSO_HORARIO="UTC")


# ---------------------------------------------------------------------------
# 3. Licença criada pelo Pix de verdade
# ---------------------------------------------------------------------------

def test_licenca_do_pix_com_intervalo_em_texto_nao_impede_o_resto(par_r):
    par = par_r
    semear_licencas(par.principal, 8)
    semear_usuarios(par.principal, ["ana"])
    sessao = sessao_admin(par.principal, par.senha_principal)
    resp = sessao.post(f"{par.principal.url}/payments/pix/create", timeout=10, json={
        "owner_name": "Cliente do Pix", "cpf": "12345678900", "device_id": "PIX-1", "license_type": "mensal",
        "email": "pix@exemplo.com.br", "custom_interval": "30min", "features": "core,relatorios"})
    assert resp.status_code == 201 and resp.json()["status"] == "pending", resp.text
    resp = sessao.post(f"{par.principal.url}/admin/devices/LIC-0001/deactivate", json={"action": "block"}, timeout=10)
    assert resp.status_code == 200 and resp.json()["status"] == "blocked", resp.text
    assert par.principal.devices()["PIX-1"]["custom_interval"] == "30min"

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    backup = par.backup.devices()
    assert set(par.principal.devices()) <= set(backup)
    assert backup["LIC-0001"]["status"] == "blocked"
    assert not par.backup.veredito("PIX-1")  # pendente no principal: negada igual (bloqueada)
    assert "ana" in par.backup.users()
    conferir_convergencia(par)
    [pair] = r.json()["backups"]
    campos = {(d["chave"], d["campo"]) for d in pair["divergencias"]}
    assert ("PIX-1", "custom_interval") in campos and ("PIX-1", "features") in campos
    convergir(par)


# ---------------------------------------------------------------------------
# 4. Problemas nos arquivos locais
# ---------------------------------------------------------------------------

def _encher(pasta: Path) -> Path:
    """Grava um arquivo na pasta até o disco recusar (ENOSPC), em pedaços cada vez menores."""
    arquivo = pasta / "enchimento.bin"
    fd = os.open(arquivo, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        pedaco = 1 << 16
        while pedaco >= 1:
            try:
                os.write(fd, b"\0" * pedaco)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                pedaco //= 2
    finally:
        os.close(fd)
    return arquivo


@pytest.fixture
def tmpfs_dados(par_r):
    """Monta um tmpfs pequeno na pasta de dados do par (DADOS_DIR). Só Linux e root."""
    if not sys.platform.startswith("linux"):
        pytest.skip("tmpfs só existe no Linux")
    if os.geteuid() != 0:
        pytest.skip("montar um tmpfs exige root")
    par_r.dados.mkdir(parents=True, exist_ok=True)
    montado = []

    def montar(tamanho: str = "2m", somente_leitura: bool = False) -> Path:
        opcoes = f"size={tamanho},mode=0700" + (",ro" if somente_leitura else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opcoes, "tmpfs", str(par_r.dados)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"não foi possível montar um tmpfs em {par_r.dados}: {proc.stderr.strip()}")
        montado.append(par_r.dados)
        return par_r.dados
    yield montar
    for pasta in montado:
        subprocess.run(["umount", "-l", str(pasta)], capture_output=True)


def test_pasta_de_dados_enche_no_meio_e_nenhuma_sequencia_criar_bloquear_fica_pela_metade(par_r, tmpfs_dados):
    par = par_r
    pasta = tmpfs_dados("2m")
    bloqueadas = [f"BLOQ-{i:02d}" for i in range(8)]
    for i, chave in enumerate(bloqueadas):
        par.principal.add_device(chave, license_type=("mensal", "anual", "vitalicia")[i % 3],
                                 owner_name=f"Cliente {i} — São José", status="blocked")
    semear_licencas(par.principal, 4, prefixo="ATIVA")
    enchimentos = []
    par.backup.on_request("POST", "/admin/devices/create", lambda s: enchimentos.append(_encher(pasta)),
                          when="before")

    r = par.rodar("--sem-progresso")

    texto = saida(r)
    sem_traceback(r)
    assert enchimentos and not par.backup.hook_errors, par.backup.hook_errors
    assert r.codigo == 1, texto[-4000:]
    assert "não foi possível" in texto and str(pasta) in texto, texto[-4000:]
    assert "No space left" in texto or "Errno 28" in texto, texto[-4000:]
    # nenhuma criação sem o bloqueio: cada uma criada E bloqueada no backup
    backup = par.backup.devices()
    for chave in bloqueadas:
        assert chave in backup, chave
        assert backup[chave]["status"] == "blocked", chave
        assert not par.backup.veredito(chave) and not par.principal.veredito(chave)
    assert par.backup.counts[STATUS] >= len(bloqueadas)
    assert not diferentes_no_oraculo(par)

    enchimentos[0].unlink()  # espaço liberado
    convergir(par)
    conferir_convergencia(par)


@pytest.mark.parametrize("como", ["cheia", "somente_leitura"])
def test_pasta_de_dados_que_nao_aceita_gravacao_recusa_com_2_antes_de_escrever(par_r, tmpfs_dados, como):
    par = par_r
    semear_licencas(par.principal, 6)
    semear_usuarios(par.principal, ["ana"])
    pasta = tmpfs_dados("1m", somente_leitura=como == "somente_leitura")
    if como == "cheia":
        _encher(pasta)

    inicio = time.monotonic()
    r = par.rodar("--sem-progresso")
    duracao = time.monotonic() - inicio

    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-4000:]
    assert str(pasta) in saida(r), saida(r)[-4000:]
    assert "nada foi enviado" in saida(r) or "Nada foi" in saida(r), saida(r)[-4000:]
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
    assert par.backup.devices() == {}
    assert duracao < 30, f"levou {duracao:.1f} s para recusar"


def test_textos_de_1_mb_e_de_10001_caracteres_sao_copiados_com_o_bloqueio(par_r):
    par = par_r
    um_mega = "Ç" * (1024 * 1024)
    longo = ("Padaria Pão de Açúcar " * 455)[:10_001]  # 10.001 caracteres, sem espaço nas pontas
    assert len(longo) == 10_001 and longo == longo.strip()
    par.principal.add_device("GRANDE-1", owner_name=um_mega, license_type="anual", status="blocked")
    par.principal.add_device("GRANDE-2", owner_name=longo, license_type="mensal", address=longo)
    semear_licencas(par.principal, 3)

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    backup = par.backup.devices()
    assert backup["GRANDE-1"]["owner_name"] == um_mega and backup["GRANDE-1"]["status"] == "blocked"
    assert backup["GRANDE-2"]["owner_name"] == longo and backup["GRANDE-2"]["address"] == longo
    assert not par.backup.veredito("GRANDE-1") and par.backup.veredito("GRANDE-2")
    conferir_convergencia(par)
    convergir(par)


# ---------------------------------------------------------------------------
# 5. Id que fica vazio depois de tirar os espaços
# ---------------------------------------------------------------------------

def _ids_vazios(par) -> None:
    par.principal.add_device("   ", owner_name="Importação antiga", license_type="vitalicia")
    par.principal.add_device("\t", owner_name="Importação antiga 2", license_type="anual")
    semear_licencas(par.principal, 4)


def test_id_vazio_depois_do_strip_nunca_chega_ao_backup(par_r):
    par = par_r
    _ids_vazios(par)
    assert not par.principal.veredito("   ")  # o /verify tira os espaços e não acha nada: nega

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    assert r.codigo in (0, 1), saida(r)[-3000:]
    backup = par.backup.devices()
    assert not [k for k in backup if not k.strip()], backup.keys()
    assert not diferentes_no_oraculo(par)
    ignorados = {p["chave"] for p in r.json()["backups"][0]["registros_ignorados"]}
    assert len(ignorados) == 2, ignorados  # os dois registros aparecem no relatório
    assert all(u["chave"] != "   " for u in r.json()["backups"][0]["acoes"])


def test_id_vazio_depois_do_strip_nao_impede_a_convergencia(par_r):
    par = par_r
    _ids_vazios(par)
    r = par.rodar("--sem-progresso", "--json")
    assert not diferentes_no_oraculo(par)
    motivos = {p["chave"]: p["motivo"] for p in r.json()["backups"][0]["registros_ignorados"]}
    assert r.codigo == 0, (r.codigo, motivos, r.json()["backups"][0]["paridade"])
    assert set(motivos.values()) == {"inalcancavel"}, motivos
    convergir(par)


# ---------------------------------------------------------------------------
# 6–9. O que faltava nos testes de configuração e HTTP
# ---------------------------------------------------------------------------

class ParSenhaComum(Par):
    """Principal e backup com a MESMA senha, dada só em ADMIN_PASSWORD (a variável comum)."""

    def __init__(self, tmp_path: Path, senha: str):
        self.senha_principal = self.senhas_backup = senha  # senha curta: fora de SEGREDOS_USADOS de propósito
        self.principal = ServidorReferencia(admins={"admin": senha}).start()
        self.backups = [ServidorReferencia(admins={"admin": senha}, primeiro_id=1000).start()]
        self.dados = tmp_path / "dados"
        self.tmp_path = tmp_path

    def ambiente(self, **extra: str) -> dict[str, str]:
        return super().ambiente(**{"ADMIN_PASSWORD": self.senha_principal, "PRINCIPAL_ADMIN_PASSWORD": "",
                                   "BACKUP_ADMIN_PASSWORD": "", **extra})


def test_admin_password_true_com_json_continua_json_valido(tmp_path):
    """ADMIN_PASSWORD=true (a variável comum aos dois servidores): a máscara não pode trocar o `true` do JSON."""
    par = ParSenhaComum(tmp_path, "true")
    try:
        semear_licencas(par.principal, 4)
        r = par.rodar("--json", "--hoje", "2026-11-30")
        sem_traceback(r)
        assert r.codigo == 0, saida(r)[-3000:]
        doc = json.loads(r.stdout)
        assert doc["backups"][0]["paridade"]["ok"] is True and doc["simulacao"] is False
        assert doc["hoje"] == "2026-11-30"
        assert set(par.backup.devices()) == set(par.principal.devices())
        guardar_tokens(par.principal, par.backup)
    finally:
        par.parar()


def test_listagem_pingada_pelo_servidor_de_referencia_termina_em_segundos_nomeando_o_servidor(par_r):
    par = par_r
    semear_licencas(par.principal, 4)
    par.backup.trickle("GET", "/admin/devices", seconds_per_byte=0.5, times=None)

    inicio = time.monotonic()
    r = par.rodar("--sem-progresso", SYNC_TIMEOUT="3", SYNC_TENTATIVAS_HTTP="1")
    duracao = time.monotonic() - inicio

    sem_traceback(r)
    assert r.codigo == 4, saida(r)[-3000:]
    assert par.backup.url in saida(r) and "tempo esgotado" in saida(r), saida(r)[-3000:]
    assert duracao < 30, f"levou {duracao:.1f} s com SYNC_TIMEOUT=3"
    assert par.backup.counts[("GET", "/admin/devices")] == 2  # 1 + 1 nova tentativa, contadas no servidor
    assert par.backup.write_count() == 0


# ---------------------------------------------------------------------------
# Propriedade (pura): falhas aleatórias na execução das cadeias do plano
# ---------------------------------------------------------------------------

@st.composite
def relogios(draw):
    """Data UTC em volta de HOJE e a data local de cada servidor a até um dia dela."""
    base = HOJE + dt.timedelta(days=draw(st.integers(-1, 1)))
    perto = st.integers(-1, 1).map(lambda d: base + dt.timedelta(days=d))
    return sb.Clock(base, draw(perto), draw(perto))


def veredito_no_principal(principal: sb.Snapshot, chave: str, hoje: dt.date) -> bool:
    """Veredito do principal; registro fora do plano sem leitura possível conta como negado."""
    lic = principal.licenses.get(chave, principal.rejected.get(chave))
    return lic is not None and sb.allows(lic, hoje)


def executar_com_falhas(plano: sb.Plan, principal: sb.Snapshot, backup: sb.Snapshot, relogio: sb.Clock,
                        rng: random.Random, chance: float) -> tuple[dict, set[str]]:
    """Como o Executor: cada cadeia em ordem, segue depois de uma falha. Uma ação com falha às vezes
    aconteceu mesmo assim (resposta perdida). Devolve o modelo do backup e as chaves com falha."""
    modelo = dict(backup.licenses)
    falhas = set()
    for cadeia in plano.license_chains:
        for acao in cadeia:
            assert acao.side == "backup", acao
            falhou = rng.random() < chance
            if falhou:
                falhas.add(acao.key)
            if not falhou or rng.random() < 0.3:
                modelo[acao.key] = sb.model_apply(modelo.get(acao.key), acao, relogio.utc,
                                                  principal.licenses.get(acao.key))
    return modelo, falhas


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pares_de_retratos(), relogios(), st.sampled_from([0.0, 0.0, 0.15, 0.5]), st.randoms(use_true_random=False))
def test_backup_so_libera_o_que_o_principal_nega_numa_cadeia_que_falhou(retratos, relogio, chance, rng):
    principal, backup = retratos
    plano = sb.plan_pair(principal, backup, relogio)
    modelo, falhas = executar_com_falhas(plano, principal, backup, relogio, rng, chance)
    note(f"relógio: {relogio}; falhas: {sorted(falhas)}; "
         f"cadeias: {[[(a.kind, a.key) for a in c] for c in plano.license_chains]}")
    do_principal = set(principal.licenses) | set(principal.rejected)
    for chave, lic in modelo.items():
        if not sb.allows(lic, relogio.backup):
            continue
        if chave not in do_principal:  # só no backup: mantida e relatada como "só no backup, liberada"
            assert chave in plano.backup_only_allowed or chave in falhas, chave
            continue
        if not veredito_no_principal(principal, chave, relogio.primary):
            assert chave in falhas, (f"{chave}: liberada no backup e negada no principal sem falha nenhuma: "
                                     f"principal={principal.licenses.get(chave, principal.rejected.get(chave))} "
                                     f"backup={lic}")
    if not falhas:
        for chave, lic in principal.licenses.items():
            assert sb.allows(modelo.get(chave), relogio.backup) == sb.allows(lic, relogio.primary), (
                f"veredito diferente em {chave} sem falha nenhuma: principal={lic} backup={modelo.get(chave)}")
        assert plano.parity_mismatches == []
