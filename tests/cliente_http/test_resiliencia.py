"""Resiliência: rede ruim, host dormindo, 401 no meio, trava, kill -9, http:// e CA.

Tudo com servidores de referência reais (portas efêmeras em 127.0.0.1) e a ferramenta rodando por
main() no processo do pytest (o kill -9, num processo filho, como o agendador a roda). A conferência
final é sempre feita direto nos servidores (apoio.conferir_convergencia).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from filelock import FileLock

import sincronizar_bancos as sb
from apoio import (SCRIPT, anotar_saida, comando_script, conferir_arquivos_legiveis, conferir_convergencia,
                   guardar_tokens, licencas_cruas, rodar_cronometrado, saida, sem_traceback, semear_licencas,
                   semear_usuarios)
from servidor_referencia import ServidorReferencia


TODOS_OS_MODOS = ["503", "html502", "reset", "hang", "truncated", "lost"]


def _cenario_com_historia(par, quantidade=60):
    """Principal com licenças e usuários variados; backup com dados antigos, um usuário
    já existente e registros que só existem nele (que nunca podem ser mexidos)."""
    chaves = semear_licencas(par.principal, quantidade)
    semear_usuarios(par.principal, ["ana", "bia.revenda", "caio"])
    semear_usuarios(par.principal, ["dora"], role="admin")
    semear_usuarios(par.backup, ["ana"])
    par.backup.add_device(chaves[1], owner_name="Nome Antigo", license_type="mensal")
    par.backup.add_device(chaves[2], status="active")                      # bloqueada no principal
    par.backup.add_device(chaves[5], end_date="2020-01-01", license_type="anual")  # vencida no backup
    par.backup.add_device("SO-BACKUP-1", owner_name="Loja Só no Backup", license_type="mensal",
                          status="blocked", created_by="zeca")
    # negada lá: liberada só no backup, a execução sairia com 1 (venda ou reembolso?)
    par.backup.add_device("SO-BACKUP-2", owner_name=None, license_type="vitalicia", status="pending")
    so_no_backup = {k: v for k, v in licencas_cruas(par.backup).items() if k.startswith("SO-")}
    return chaves, so_no_backup


def _falhas_observadas(srv) -> int:
    """Requisições que o servidor estragou (503/502) ou deixou sem resposta (reset, hang, lost)."""
    return sum(1 for _m, _t, status in srv.requests_log if status in (None, 502, 503))


# ---------------------------------------------------------------------------
# (a) 30 % das requisições falhando de jeitos variados nos dois servidores
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("semente", [11])
def test_falhas_mistas_nos_dois_servidores_convergem_numa_execucao(par, semente):
    _chaves, so_no_backup = _cenario_com_historia(par)
    for deslocamento, srv in enumerate((par.principal, par.backup)):
        srv.set_faults(fail_rate=0.3, fail_modes=TODOS_OS_MODOS, hang_seconds=3.0,
                       seed=semente * 10 + deslocamento)

    # SYNC_ESPERA_DESPERTAR realista (o padrão é 90): o próprio GET /health também falha 30 % das vezes
    r = par.rodar("--timeout", "1.5", "--sem-progresso", SYNC_TENTATIVAS_HTTP="8", SYNC_ESPERA_DESPERTAR="60",
                  timeout=150)

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    # as falhas aconteceram mesmo (o principal recebe poucas requisições: conta-se o total)
    assert _falhas_observadas(par.principal) + _falhas_observadas(par.backup) >= 10
    conferir_convergencia(par, so_no_backup)  # desliga as falhas antes de conferir

    # e não restou nada por fazer: a execução seguinte, sem falhas, não grava nada
    par.backup.reset_counts()
    r2 = par.rodar("--sem-progresso")
    assert r2.codigo == 0, saida(r2)[-3000:]
    assert par.backup.write_count() == 0


# ---------------------------------------------------------------------------
# Novas tentativas: a política única (sb.Backoff) que todas as esperas usam
# ---------------------------------------------------------------------------

def _extremos(politica, tentativa):
    """A menor e a maior espera que a política pode sortear antes da nova tentativa `tentativa`."""
    return politica.delay(tentativa, draw=lambda: 0.0), politica.delay(tentativa, draw=lambda: 1.0)


def test_espera_entre_tentativas_dobra_ate_o_teto_e_a_variacao_fica_nos_limites():
    politica = sb.Backoff(first=1.0, factor=2.0, cap=30.0, jitter=0.25)
    assert [_extremos(politica, n) for n in (1, 2, 3)] == [(0.75, 1.25), (1.5, 2.5), (3.0, 5.0)]
    assert _extremos(politica, 5) == (12.0, 20.0)
    assert _extremos(politica, 6) == _extremos(politica, 40) == (22.5, 30.0)  # 32 passa do teto: ±25 % abaixo dele
    rng = random.Random(7)
    sorteios = [politica.delay(3, draw=rng.random) for _ in range(2000)]
    assert 3.0 <= min(sorteios) < 3.1 and 4.9 < max(sorteios) <= 5.0  # espalha por toda a faixa de ±25 %
    assert all(politica.delay(n) <= 30.0 for n in range(1, 60))  # o teto nunca é passado, nem com a variação
    # as primeiras `immediate` saem na hora (o urllib3 repete a 1ª sem esperar); sem variação, exata
    http = sb.Backoff(first=1.0, cap=30.0, immediate=1)
    assert [http.delay(n) for n in range(1, 8)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    # dias de falhas seguidas (vigiar): o teto, não um OverflowError
    assert sb.Backoff(first=60.0, cap=300.0).delay(5000) == 300.0
    # escalada (Config.backoff) só na primeira espera; começando mais alto, o teto sobe junto
    assert http.scaled(0.01).delay(3) == pytest.approx(0.02) and http.scaled(100).delay(3) == 30.0
    assert sb.Backoff(first=60.0, cap=300.0).starting_at(900.0).delay(4) == 900.0
    assert sb.Backoff(first=60.0, cap=600.0).capped_at(120.0).delay(4) == 120.0


def test_cada_espera_da_ferramenta_e_a_da_politica_declarada():
    """O que é repetido, quantas vezes e com que espera: a tabela de docs/API_DOS_SERVIDORES.md, em números."""
    assert sb.HTTP_RETRY_STATUSES == (429, 502, 503, 504) and sb.RETRY_AFTER_MAX == 120
    assert [sb.HTTP_BACKOFF.delay(n, draw=lambda: 0.5) for n in range(1, 6)] == [0.0, 1.0, 2.0, 4.0, 8.0]
    assert _extremos(sb.HTTP_BACKOFF, 2) == (0.875, 1.125) and sb.HTTP_BACKOFF.delay(20) <= 30.0
    assert [sb.UNREADABLE_BACKOFF.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]
    assert sb.WRITE_RETRIES == 3 and [sb.WRITE_BACKOFF.delay(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    assert {sb.WAKE_POLL.delay(n) for n in range(1, 50)} == {2.0}
    assert sb.RETRIED_EXIT_CODES == (sb.ExitCode.SERVER,)
    agendada = sb.SCHEDULED_BACKOFF
    assert [_extremos(agendada, n) for n in (1, 2)] == [(22.5, 37.5), (45.0, 75.0)] and agendada.delay(30) <= 900.0


# ---------------------------------------------------------------------------
# (b) host dormindo (hospedagem gratuita)
# ---------------------------------------------------------------------------

def test_host_dormindo_espera_acordar_e_mostra_no_relatorio(par):
    semear_licencas(par.principal, 5)
    for srv in (par.principal, par.backup):
        srv.set_faults(sleep_first_seconds=3)
    inicio = time.monotonic()
    r = par.rodar("--sem-progresso", SYNC_ESPERA_DESPERTAR="20")
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    assert time.monotonic() - inicio >= 2.5
    assert "aguardou" in r.stdout and "acordar" in r.stdout, r.stdout[:2000]
    conferir_convergencia(par)


def _conferir_desistiu_de_acordar(par, r):
    sem_traceback(r)
    assert r.codigo == 4, saida(r)[-3000:]
    texto = saida(r)
    assert "/health" in texto and "não respondeu" in texto, texto[-3000:]
    assert par.principal.url in texto
    assert par.backup.write_count() == 0
    assert par.principal.write_count() == 0


@pytest.mark.parametrize("tentativas", ["0", "5"])
def test_host_que_nao_acorda_a_tempo_sai_com_4_e_nada_gravado(par, tentativas):
    """SYNC_ESPERA_DESPERTAR é o limite da espera, mesmo com novas tentativas de HTTP ligadas."""
    semear_licencas(par.principal, 5)
    for srv in (par.principal, par.backup):
        srv.set_faults(sleep_first_seconds=5)
    r, duracao = rodar_cronometrado(par.rodar, "--sem-progresso", SYNC_ESPERA_DESPERTAR="1",
                                    SYNC_TENTATIVAS_HTTP=tentativas)
    _conferir_desistiu_de_acordar(par, r)
    assert duracao < 4.5, f"esperou {duracao:.1f} s com SYNC_ESPERA_DESPERTAR=1"


# ---------------------------------------------------------------------------
# (c) 401 no meio da execução: novo login, uma vez, e segue
# ---------------------------------------------------------------------------

def _invalidar_tokens_na_primeira_escrita(srv, parar: threading.Event) -> threading.Thread:
    def vigiar():
        while not parar.is_set():
            if srv.write_count() > 0:
                srv.invalidate_tokens()
                return
            time.sleep(0.002)
    vigia = threading.Thread(target=vigiar, daemon=True)
    vigia.start()
    return vigia


@pytest.mark.parametrize("como", ["401_na_primeira_escrita", "tokens_invalidados_no_servidor"])
def test_401_no_meio_faz_login_de_novo_uma_vez_e_termina(par, como):
    semear_licencas(par.principal, 30)
    semear_usuarios(par.principal, ["ana", "bia"])
    parar = threading.Event()
    if como == "401_na_primeira_escrita":
        par.backup.fail_next("POST", "/admin/users/create", 401, {"error": "Unauthorized"})
    else:
        par.backup.set_faults(latency_ms=30)  # escritas em voo quando os tokens caem
        _invalidar_tokens_na_primeira_escrita(par.backup, parar)
    try:
        r = par.rodar("--sem-progresso")
    finally:
        parar.set()
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    assert par.backup.counts[("POST", "/admin/login")] == 2, par.backup.counts
    assert par.principal.counts[("POST", "/admin/login")] == 1
    conferir_convergencia(par)


# ---------------------------------------------------------------------------
# (d) trava: nunca duas execuções ao mesmo tempo
# ---------------------------------------------------------------------------

def _total_requisicoes(*servidores) -> int:
    return sum(sum(srv.counts.values()) for srv in servidores)


def test_trava_segura_por_outro_processo_sai_com_3_sem_gravar(par):
    semear_licencas(par.principal, 5)
    par.dados.mkdir(parents=True, exist_ok=True)
    trava = FileLock(str(par.dados / "sincronizacao.lock"))
    with trava.acquire(timeout=5):
        r = par.rodar("--sem-progresso")
        r_json = par.rodar("--json")
    for execucao in (r, r_json):
        sem_traceback(execucao)
        assert execucao.codigo == 3, saida(execucao)
        assert "Outra sincronização já está em andamento" in execucao.stderr
    assert _total_requisicoes(par.principal, par.backup) == 0
    assert par.backup.write_count() == 0
    # liberada a trava, a próxima execução anda normalmente
    r3 = par.rodar("--sem-progresso")
    assert r3.codigo == 0, saida(r3)[-3000:]


def test_duas_execucoes_simultaneas_a_segunda_sai_com_3(par):
    semear_licencas(par.principal, 10)
    # A primeira execução fica segurando a trava: o principal só responde à leitura das licenças dela
    # depois que a segunda terminou (sem corrida com o tempo de partida numa máquina ocupada).
    liberar = threading.Event()
    par.principal.on_request("GET", "/admin/devices", lambda _srv: liberar.wait(120), when="before")
    primeira = subprocess.Popen(comando_script("--sem-progresso"),
                                env=par.ambiente(SYNC_TIMEOUT="150"), cwd=par.tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        prazo = time.monotonic() + 60
        while par.principal.counts[("GET", "/admin/devices")] == 0 and time.monotonic() < prazo:
            assert primeira.poll() is None, "a primeira execução terminou antes de ler as licenças"
            time.sleep(0.02)
        segunda = par.rodar("--sem-progresso")
        liberar.set()
        out, err = primeira.communicate(timeout=120)
    finally:
        liberar.set()
        if primeira.poll() is None:
            primeira.kill()
            primeira.wait()
    anotar_saida("[execução concorrente]", primeira.returncode, out, err)
    sem_traceback(segunda)
    assert segunda.codigo == 3, saida(segunda)
    assert "em andamento" in segunda.stderr
    assert primeira.returncode == 0, out[-2000:] + err[-2000:]
    conferir_convergencia(par)


_SEGURA_TRAVA = """
import sys, time
from filelock import FileLock
trava = FileLock(sys.argv[1])
trava.acquire(timeout=5)
print("segurando", flush=True)
time.sleep(120)
"""


@pytest.mark.skipif(os.name != "posix", reason="kill -9 (SIGKILL) só existe em POSIX")
def test_trava_de_processo_morto_com_kill_9_nao_bloqueia(par):
    semear_licencas(par.principal, 5)
    par.dados.mkdir(parents=True, exist_ok=True)
    caminho = par.dados / "sincronizacao.lock"
    dono = subprocess.Popen([sys.executable, "-c", _SEGURA_TRAVA, str(caminho)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert dono.stdout.readline().strip() == "segurando"
        bloqueada = par.rodar("--sem-progresso")
        assert bloqueada.codigo == 3, saida(bloqueada)
    finally:
        dono.send_signal(signal.SIGKILL)
        dono.wait(timeout=10)
    assert dono.returncode == -signal.SIGKILL
    assert caminho.exists()  # o arquivo da trava ficou para trás...
    r = par.rodar("--sem-progresso")  # ...mas não impede a próxima execução
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    conferir_convergencia(par)


# ---------------------------------------------------------------------------
# (e) kill -9 em 10 pontos aleatórios de uma execução grande
# ---------------------------------------------------------------------------

def _execucoes_em_andamento(dados) -> int:
    caminho = dados / "historico.sqlite3"
    if not caminho.exists():
        return 0
    con = sqlite3.connect(caminho)
    try:
        return con.execute("SELECT count(*) FROM execucoes WHERE situacao = 'em andamento'").fetchone()[0]
    finally:
        con.close()


@pytest.mark.skipif(os.name != "posix", reason="kill -9 (SIGKILL) só existe em POSIX")
@pytest.mark.parametrize("rodadas", [range(0, 5), range(5, 10)], ids=["rodadas_0_a_4", "rodadas_5_a_9"])
def test_kill_9_em_pontos_aleatorios_e_a_proxima_execucao_converge(par, rodadas):
    """10 mortes no total, em duas metades independentes (cada uma com o seu par de servidores), para as
    duas rodarem em paralelo em trabalhadores diferentes do pytest-xdist."""
    semente = int(os.environ.get("SEMENTE_KILL", "20261128"))
    rng = random.Random(f"{semente}-{rodadas.start}")
    chaves = semear_licencas(par.principal, 400, rng=random.Random(semente))
    # (o backup que volta VAZIO, com usuários e tudo, é o teste_backup_que_voltou_vazio_...)
    so_no_backup_spec = [("SO-BACKUP-1", "mensal", "blocked"), ("SO-BACKUP-2", "vitalicia", "pending")]

    for chave, tipo, status in so_no_backup_spec:
        par.backup.add_device(chave, license_type=tipo, status=status, owner_name="Só no backup")
    so_no_backup = {k: v for k, v in licencas_cruas(par.backup).items() if k.startswith("SO-")}

    mortas = 0
    for rodada in rodadas:
        # cada rodada começa com bastante trabalho (e usuários novos a criar): backup que perdeu
        # todas as licenças, ou principal todo mudado
        semear_usuarios(par.principal, [f"revenda{rodada}.a", f"revenda{rodada}.b"])
        if rodada % 2 == 0:
            for chave in chaves:
                par.backup.remove_device(chave)
        else:
            for i, chave in enumerate(chaves):
                campos = {"owner_name": f"Dono {rodada}-{i} ção"}
                if i % 7 == rodada % 7:
                    campos["status"] = rng.choice(["active", "blocked", "pending"])
                par.principal.set_device_fields(chave, **campos)
        for srv in (par.principal, par.backup):
            srv.set_faults(latency_ms=5)

        # 7 rodadas: morte quando o backup já recebeu um número sorteado de escritas (sempre no
        # meio, qualquer que seja a velocidade da máquina); 3 rodadas: morte após 0,2–3 s (pode
        # cair no login, nas listagens, nas escritas ou na gravação do histórico)
        par.backup.reset_counts()
        por_escritas = rodada % 10 not in (2, 5, 8)
        alvo = rng.randint(1, 380) if por_escritas else None
        atraso = rng.uniform(0.2, 3.0)
        momento = f"após {alvo} escritas" if por_escritas else f"após {atraso:.2f} s"
        proc = subprocess.Popen(comando_script("--sem-progresso"), env=par.ambiente(),
                                cwd=par.tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, encoding="utf-8")
        limite = time.monotonic() + (60 if por_escritas else atraso)
        while proc.poll() is None and time.monotonic() < limite:
            if por_escritas and par.backup.write_count() >= alvo:
                break
            time.sleep(0.002)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        anotar_saida(f"[kill -9 {momento}]", proc.returncode, out, err)
        if proc.returncode == -signal.SIGKILL:
            mortas += 1
        contexto = f"semente={semente} rodada={rodada} morte {momento} código={proc.returncode}"
        assert "Traceback" not in err, contexto + err[-2000:]
        conferir_arquivos_legiveis(par.dados)  # legível logo depois da morte

        r = par.rodar("--sem-progresso")
        sem_traceback(r)
        assert r.codigo == 0, contexto + "\n" + saida(r)[-3000:]
        conferir_convergencia(par, so_no_backup)
        conferir_arquivos_legiveis(par.dados)
        assert _execucoes_em_andamento(par.dados) == 0, contexto
        guardar_tokens(par.principal, par.backup)
    por_escritas = sum(1 for rodada in rodadas if rodada % 10 not in (2, 5, 8))  # 4 + 3 = 7 das 10
    assert mortas >= por_escritas, f"só {mortas} execuções foram mortas no meio (semente={semente})"


def test_backup_que_voltou_vazio_recebe_tudo_de_volta_inclusive_usuarios(par):
    semear_licencas(par.principal, 20)
    semear_usuarios(par.principal, ["ana", "bia.revenda", "caio"])
    r1 = par.rodar("--sem-progresso")
    assert r1.codigo == 0, saida(r1)[-3000:]
    par.backup.wipe()  # hospedagem com disco efêmero: reiniciou e voltou só com o super-admin
    r2 = par.rodar("--sem-progresso")
    sem_traceback(r2)
    assert r2.codigo == 0, saida(r2)[-3000:]
    conferir_convergencia(par)  # licenças E usuários de volta no backup


# ---------------------------------------------------------------------------
# (f) http:// para host que não é local; (g) SYNC_CA_BUNDLE
# ---------------------------------------------------------------------------

@pytest.fixture
def servidor_nao_local(par):
    """Um backup alcançável por http://0.0.0.0:porta: IP que não é de loopback."""
    srv = ServidorReferencia(host="0.0.0.0", admins={"admin": par.senhas_backup}).start()
    yield srv, f"http://0.0.0.0:{srv.port}"
    guardar_tokens(srv)
    srv.stop()


@pytest.mark.parametrize("lado", ["principal", "backup"])
def test_http_para_host_nao_local_e_recusado_com_2(par, servidor_nao_local, lado):
    srv, url = servidor_nao_local
    semear_licencas(par.principal, 3)
    variavel = "SERVIDOR_PRINCIPAL" if lado == "principal" else "SERVIDOR_BACKUP"
    extra = {variavel: url}
    if lado == "principal":
        extra["PRINCIPAL_ADMIN_PASSWORD"] = par.senhas_backup
    r = par.rodar("--sem-progresso", **extra)
    sem_traceback(r)
    assert r.codigo == 2, saida(r)
    assert "http://" in r.stderr and "--permitir-http" in r.stderr and "sem criptografia" in r.stderr
    assert _total_requisicoes(par.principal, par.backup, srv) == 0


@pytest.mark.parametrize("como", ["opcao", "variavel"])
def test_http_para_host_nao_local_com_permissao_avisa_e_sincroniza(par, servidor_nao_local, como):
    srv, url = servidor_nao_local
    semear_licencas(par.principal, 3)
    args = ["--sem-progresso"] + (["--permitir-http"] if como == "opcao" else [])
    extra = {"SERVIDOR_BACKUP": url}
    if como == "variavel":
        extra["SYNC_PERMITIR_HTTP"] = "1"
    r = par.rodar(*args, **extra)
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    assert "ATENÇÃO" in saida(r) and "permitir-http" in saida(r)
    assert set(srv.devices()) == set(par.principal.devices())


def test_ca_bundle_inexistente_sai_com_2(par, tmp_path):
    ausente = tmp_path / "nao-existe" / "minha-ca.pem"
    r = par.rodar("--sem-progresso", SYNC_CA_BUNDLE=str(ausente))
    sem_traceback(r)
    assert r.codigo == 2, saida(r)
    assert "SYNC_CA_BUNDLE" in r.stderr and "não existe" in r.stderr
    assert _total_requisicoes(par.principal, par.backup) == 0


def test_ca_bundle_existente_e_aceito(par, tmp_path):
    semear_licencas(par.principal, 2)
    ca = tmp_path / "minha-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", encoding="utf-8")
    r = par.rodar("--sem-progresso", SYNC_CA_BUNDLE=str(ca))
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]


_MORRE_AO_TROCAR_CREDENCIAIS = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import sincronizar_bancos as sb
trocar, vezes = os.replace, [0]
def replace(origem, destino, *a, **k):
    if os.path.basename(str(destino)) == sb.CREDENTIALS_FILE:
        vezes[0] += 1
        if vezes[0] == 2:  # 2ª gravação: o usuário já foi criado com a senha nova
            os.kill(os.getpid(), signal.SIGKILL)
    return trocar(origem, destino, *a, **k)
os.replace = replace
sys.exit(sb.main(["--sem-progresso"]))
"""


@pytest.mark.skipif(os.name != "posix", reason="kill -9 (SIGKILL) só existe em POSIX")
def test_kill_9_no_meio_da_gravacao_atomica_nao_deixa_copia_de_senhas(par):
    semear_licencas(par.principal, 3)
    semear_usuarios(par.principal, ["ana"])
    proc = subprocess.run([sys.executable, "-c", _MORRE_AO_TROCAR_CREDENCIAIS, str(SCRIPT.parent)],
                          env=par.ambiente(), cwd=par.tmp_path, capture_output=True, text=True,
                          encoding="utf-8", timeout=60)
    anotar_saida("[morre ao trocar credenciais]", proc.returncode, proc.stdout, proc.stderr)
    try:
        assert proc.returncode == -signal.SIGKILL, proc.stdout[-2000:] + proc.stderr[-2000:]
        conferir_arquivos_legiveis(par.dados)  # o arquivo de verdade continua inteiro
        assert "ana" in par.backup.users()
        r = par.rodar("--sem-progresso")
        assert r.codigo == 0, saida(r)[-3000:]
        sobras = sorted(p.name for p in par.dados.glob(".tmp-*"))
        assert not sobras, f"temporários esquecidos em DADOS_DIR: {sobras}"
    finally:
        for sobra in par.dados.glob(".tmp-*"):  # não deixa a cópia para a varredura de segredos
            sobra.unlink()
