"""Modo contínuo (`sincronizar_bancos.py vigiar`), com o script como processo filho (o processo é o assunto:
ciclos, sinais, trava, código de saída) e servidores de referência reais. Cada ciclo lê só o principal; só
quando algo que a sincronização usa mudou (ou a data, ou venceu a leitura periódica) o backup é lido e o par
passa pelo caminho da sincronização (o mesmo Run.sync_pair do sincronizar). Um ciclo sem mudança relevante
não manda nada aos backups (contado no servidor); uma venda, um bloqueio e um vencimento chegam em até
intervalo + 10 s; principal fora do ar e de volta; backup apagado pausa só aquele par; SIGTERM e Ctrl+C no
meio de uma sequência saem com 143/130 depois dela; uma execução agendada enquanto o vigiar roda."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import pytest
import sincronizar_bancos as sb
from apoio import Vigiar, esperar, rodar_wrapper, semear_licencas

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sinais a um filho só em POSIX")

INTERVALO = 5  # o mínimo do --intervalo
PRAZO = INTERVALO + 10  # o limite do issue: uma escrita no principal chega ao backup em intervalo + 10 s


def _status(par) -> tuple[int, dict]:
    """O /status.json do painel (a mesma função que o servidor do painel usa) sobre a pasta de dados do par."""
    historico = sb.History(str(par.dados))
    try:
        return sb.status_document(historico, 120, [(par.principal.url, b.url) for b in par.backups])
    finally:
        historico.close()


def _iguais(par) -> bool:
    return par.principal.vereditos() == par.backup.vereditos()


def _vigiar_em_dia(par, licencas: int, *args: str, **env: str) -> Vigiar:
    """Semeia `licencas` no principal, parte o vigiar e espera o primeiro ciclo deixar o backup igual (se a
    espera falha, o processo é parado antes do erro subir)."""
    semear_licencas(par.principal, licencas)
    vigiar = Vigiar(par, "--intervalo", str(INTERVALO), *args, **env)
    try:
        esperar(lambda: _iguais(par) and len(par.backup.devices()) == licencas, 30)
        vigiar.esperar_texto("Paridade de veredito")
    except BaseException:
        vigiar.parar()
        raise
    return vigiar

def test_vigiar_leva_ao_backup_venda_bloqueio_e_vencimento_sem_falar_com_o_backup_nos_ciclos_ociosos(par):
    vigiar = _vigiar_em_dia(par, 30)
    try:
        # ciclos ociosos: nenhuma requisição ao backup, nem com um cliente conferindo a licença (last_seen_*)
        par.zerar_contagens()
        par.principal.set_device_fields("LIC-0001", last_seen_at="2026-12-01 10:00:00", last_seen_ip="10.0.0.9",
                                        last_hostname="caixa-1", last_version="2.1")
        # dois ciclos ociosos (o 2º inteiro depois da mudança em last_seen_*); um 3º era mais um intervalo
        esperar(lambda: par.principal.counts[("GET", "/admin/devices")] >= 2, 2 * INTERVALO + 5)
        assert dict(par.backup.counts) == {}
        assert ("POST", "/admin/login") not in par.principal.counts  # um login para a vida do processo

        # venda, bloqueio (estorno) e vencimento feitos no principal enquanto o vigiar roda
        par.principal.add_device("VENDA-1", owner_name="Cliente Novo", license_type="mensal")
        assert par.backup.veredito("LIC-0001") is True
        par.principal.set_status("LIC-0001", "blocked")
        ontem = dt.date.fromisoformat(par.principal.devices()["LIC-0004"]["start_date"]) - dt.timedelta(days=1)
        assert par.backup.veredito("LIC-0004") is True
        par.principal.set_dates("LIC-0004", ontem - dt.timedelta(days=30), ontem)
        levou = esperar(lambda: par.backup.veredito("VENDA-1") and not par.backup.veredito("LIC-0001")
                        and not par.backup.veredito("LIC-0004"), PRAZO)
        assert levou <= PRAZO
        assert _iguais(par)
        assert vigiar.proc.poll() is None
        doc = vigiar.batimento()
        assert doc["ativo"] is True and doc["pares"][0]["situacao"] == "em dia"
        assert doc["pares"][0]["ponto_de_recuperacao_s"] is not None
    finally:
        codigo, _ = vigiar.parar(signal.SIGTERM)
    assert codigo == 143, vigiar.saida[-3000:]
    assert "Traceback" not in vigiar.saida
    assert vigiar.batimento()["ativo"] is False
    # histórico: uma linha por ciclo que sincronizou (o primeiro e os das escritas), nenhuma por ciclo ocioso
    historico = sb.History(str(par.dados))
    try:
        linhas = historico.runs(100)
    finally:
        historico.close()
    ciclos_com_escrita = vigiar.saida.count(" Ciclo ")
    assert 2 <= ciclos_com_escrita < vigiar.batimento()["ciclos"]
    assert len(linhas) == ciclos_com_escrita


def test_vigiar_espera_o_principal_fora_do_ar_diz_uma_vez_quando_caiu_e_quando_voltou(par):
    vigiar = _vigiar_em_dia(par, 10, SYNC_TENTATIVAS_HTTP="0", SYNC_ESPERA_DESPERTAR="1")
    try:
        par.principal.set_faults(fail_rate=1.0, fail_modes=["503"])  # fora do ar (ou dormindo) para tudo
        par.zerar_contagens()
        vigiar.esperar_texto("Principal sem resposta", 2 * INTERVALO + 5)
        esperar(lambda: vigiar.batimento()["principal"]["no_ar"] is False, 10)  # gravado no fim do 1º ciclo sem ele
        ciclos = vigiar.batimento()["ciclos"]
        par.principal.add_device("VENDA-NA-QUEDA", owner_name="Cliente")  # o banco segue lá, só a API não responde
        # um 2º ciclo com o principal fora: ele diria "sem resposta" de novo se o aviso não fosse uma vez só. Um 3º
        # não prova mais nada e custava ~20 s (a espera dobra: 5, 10, 20 s antes de a volta ser vista). Contado a
        # partir do batimento do 1º ciclo sem o principal (não do lido antes: ele pode ser o de antes do 1º ciclo)
        esperar(lambda: vigiar.batimento()["ciclos"] >= ciclos + 1, 60)
        doc = vigiar.batimento()
        assert doc["principal"]["no_ar"] is False and doc["principal"]["fora_desde"]
        assert dict(par.backup.counts) == {}  # nada vai aos backups enquanto o principal não responde
        par.principal.clear_faults()
        vigiar.esperar_texto("O principal voltou", 60)
        esperar(lambda: par.backup.veredito("VENDA-NA-QUEDA"), PRAZO)
        assert vigiar.proc.poll() is None
    finally:
        codigo, _ = vigiar.parar(signal.SIGTERM)
    assert codigo == 143
    assert vigiar.saida.count("Principal sem resposta") == 1, vigiar.saida[-3000:]
    assert vigiar.saida.count("O principal voltou") == 1
    assert "Traceback" not in vigiar.saida


def test_vigiar_pausa_so_o_par_do_backup_apagado_com_o_motivo_e_segue_com_os_outros(par_dois_backups):
    """No bidirecional, um backup que voltou vazio é uma parada de segurança (código 5 numa execução: o sumiço
    viraria exclusão no principal). No unidirecional ele só é recompletado, como numa execução agendada."""
    par = par_dois_backups
    semear_licencas(par.principal, 12)
    vigiar = Vigiar(par, "--intervalo", str(INTERVALO), "--bidirecional")
    apagado, outro = par.backups
    try:
        esperar(lambda: all(set(b.devices()) == set(par.principal.devices()) for b in par.backups), 30)
        vigiar.esperar_texto("Paridade de veredito", vezes=2)
        apagado.wipe()  # o backup voltou vazio (disco efêmero de hospedagem gratuita)
        apagado.reset_counts()
        par.principal.add_device("VENDA-2", owner_name="Cliente")
        esperar(lambda: outro.veredito("VENDA-2"), PRAZO)  # o outro backup segue
        vigiar.esperar_texto("Par PAUSADO", PRAZO)

        def situacao(url: str) -> str:
            return next(p for p in vigiar.batimento()["pares"] if p["backup"] == url)["situacao"]

        esperar(lambda: situacao(apagado.url) == "pausado", PRAZO)  # o batimento é gravado no fim do ciclo
        doc = vigiar.batimento()
        pausado = next(p for p in doc["pares"] if p["backup"] == apagado.url)
        assert pausado["situacao"] == "pausado" and pausado["motivo"]
        assert next(p for p in doc["pares"] if p["backup"] == outro.url)["situacao"] == "em dia"
        assert apagado.write_count() == 0  # parada de segurança: nada gravado no backup apagado
        assert vigiar.proc.poll() is None  # o processo não termina com o código 5
        par.principal.add_device("VENDA-3", owner_name="Cliente")
        esperar(lambda: outro.veredito("VENDA-3"), PRAZO)
        assert apagado.write_count() == 0
        assert par.principal.write_count() == 0  # e nada do sumiço chegou ao principal
        codigo_http, status = _status(par)  # o painel nomeia o par pausado e o motivo
        assert codigo_http == 503
        pares = {p["backup"]: p for p in status["pares"]}
        assert "pausado" in pares[apagado.url]["ultimo_erro"] and "VAZIA" in pares[apagado.url]["ultimo_erro"]
        assert pares[outro.url]["saudavel"] is True
    finally:
        codigo, _ = vigiar.parar(signal.SIGTERM)
    assert codigo == 143
    assert "Traceback" not in vigiar.saida
    assert vigiar.saida.count("Par PAUSADO") == 1  # dito uma vez, não a cada ciclo


@pytest.mark.parametrize("nome,codigo", [("SIGTERM", 143), ("SIGINT", 130)])
def test_sinal_no_meio_de_uma_sequencia_do_vigiar_termina_a_sequencia_e_sai_com_o_codigo_do_sinal(par, nome, codigo):
    chaves = [f"SIG-{i:03d}" for i in range(20)]
    for chave in chaves:
        par.principal.add_device(chave, owner_name=f"Cliente {chave}", status="blocked")
    pausa = par.backup.pausar("POST", "/admin/devices/create", skip=5)  # a 6ª criação, já gravada, segura
    vigiar = Vigiar(par, "--intervalo", str(INTERVALO), "--paralelo", "1")
    try:
        esperar(pausa.chegou.is_set, 30)
        vigiar.proc.send_signal(getattr(signal, nome))
        time.sleep(0.5)  # o tratador roda na hora; a escrita segura ainda não respondeu
        pausa.liberar()
        saiu, levou = vigiar.parar(getattr(signal, nome), limite=15)
    finally:
        pausa.liberar()
        if vigiar.proc.poll() is None:
            vigiar.parar(signal.SIGKILL)
    assert saiu == codigo, vigiar.saida[-3000:]
    assert levou < 5  # em poucos segundos, depois da sequência em andamento
    principal = par.principal.vereditos()
    assert [k for k, liberada in par.backup.vereditos().items() if liberada and not principal.get(k)] == []
    assert 6 <= len(par.backup.devices()) < len(chaves)  # parou de verdade
    assert "Traceback" not in vigiar.saida
    assert vigiar.batimento()["ativo"] is False


def test_execucao_agendada_com_o_vigiar_ativo_sai_com_zero_restaurar_com_tres_e_verificar_roda(par):
    vigiar = _vigiar_em_dia(par, 5)
    try:
        pid = vigiar.proc.pid
        agendada = par.rodar()
        assert agendada.codigo == 0, agendada.stderr
        assert f"vigiar está ativo (pid {pid}): nada a fazer" in agendada.stdout
        involucro = rodar_wrapper(par)  # o agendador: 0, e o log diz por que não há resumo novo (não é aviso)
        assert involucro.returncode == 0, involucro.stdout[-2000:]
        log = (par.dados / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
        assert "o vigiar (modo contínuo) está ativo" in log and "ausente ou desatualizado" not in log, log[-2000:]
        restaurar = par.rodar("restaurar")
        assert restaurar.codigo == 3
        assert f"vigiar está ativo (pid {pid})" in restaurar.stderr and "pare o vigiar" in restaurar.stderr
        verificar = par.rodar("verificar")  # só lê: roda junto
        assert verificar.codigo == 0, verificar.stdout[-2000:]
        outro = Vigiar(par, "--intervalo", str(INTERVALO))  # um segundo vigiar: a trava está com o primeiro
        assert outro.proc.wait(timeout=30) == 3
        outro.parar()
        assert vigiar.proc.poll() is None
    finally:
        vigiar.parar(signal.SIGTERM)
    assert par.rodar().codigo == 0  # sem o vigiar, a execução agendada volta a sincronizar


def test_vigiar_bloqueia_no_backup_a_licenca_no_ultimo_dia_quando_a_data_muda_sem_mudanca_na_listagem(tmp_path):
    """O veredito depende da data: no último dia de uma licença, às 10:00 UTC já é o dia seguinte em UTC+14, e o
    backup passa a negar (a margem de fusos: um fuso errado nunca deixa o backup mais permissivo) sem que a
    listagem do principal mude. O vigiar trata a troca de data (de qualquer fuso possível) como mudança
    relevante e lê o backup; sem isso, ela só chegaria na leitura periódica."""
    from apoio import Par, hoje_utc

    dia = hoje_utc()
    quase = dt.datetime.combine(dia, dt.time(9, 59, 54), tzinfo=dt.timezone.utc)
    par = Par(tmp_path, agora=quase)
    try:
        par.principal.add_device("VENCE-HOJE", owner_name="Cliente", license_type="mensal",
                                 start_date=dia - dt.timedelta(days=30), end_date=dia)
        par.principal.add_device("SEGUE", owner_name="Outro", license_type="anual")
        vigiar = Vigiar(par, "--intervalo", str(INTERVALO), "--agora", quase.strftime("%Y-%m-%dT%H:%M:%S"))
        try:
            esperar(lambda: par.backup.veredito("VENCE-HOJE") is True, 30)  # em todo fuso, ainda vale
            vigiar.esperar_texto("Paridade de veredito")
            for servidor in par.servidores:
                servidor.set_now(quase + dt.timedelta(seconds=36))
            listagem = par.principal.devices()
            levou = esperar(lambda: par.backup.veredito("VENCE-HOJE") is False, PRAZO)
            assert levou <= PRAZO
            assert par.principal.devices() == listagem  # nada mudou na listagem do principal
            assert "a data mudou" in vigiar.saida
            assert par.backup.veredito("SEGUE") is True
        finally:
            codigo, _ = vigiar.parar(signal.SIGTERM)
        assert codigo == 143
    finally:
        par.parar()


def test_status_json_mostra_o_ponto_de_recuperacao_do_vigiar_e_fica_vermelho_sem_ciclo_em_tres_intervalos(par):
    vigiar = _vigiar_em_dia(par, 5)
    try:
        def reflete() -> str | None:
            return vigiar.batimento()["pares"][0]["reflete_o_principal_de"]

        esperar(lambda: reflete() is not None, 10)  # o batimento do fim do 1º ciclo
        primeiro = reflete()
        # um ciclo ocioso (sem linha nova) já move o ponto de recuperação: conferido direto no batimento, em vez de
        # esperar três ciclos para que um ponto parado passasse do limite abaixo (um intervalo a menos de espera)
        esperar(lambda: vigiar.batimento()["ciclos"] >= 2, 2 * INTERVALO + 5)
        assert reflete() > primeiro, (primeiro, reflete())
        codigo_http, status = _status(par)
        assert codigo_http == 200, status["mensagem"]
        ponto = status["pares"][0]["vigiar"]["ponto_de_recuperacao_s"]
        assert ponto is not None and ponto <= INTERVALO + 2
        assert status["vigiar"]["em_dia"] is True and status["vigiar"]["transferencia"]["ultima_leitura_bytes"] > 0
        historico = sb.History(str(par.dados))
        try:  # a página do painel: o cartão do vigiar com o ponto de recuperação do backup
            pagina = sb.render_panel(historico, 120, 60, [(par.principal.url, par.backup.url)])
        finally:
            historico.close()
        assert "VIGIAR ATIVO" in pagina and "ponto de recuperação" in pagina and par.backup.url in pagina
        vigiar.proc.send_signal(signal.SIGSTOP)  # travado (não morto): a trava e o batimento ficam
        try:
            esperar(lambda: _status(par)[0] == 503, sb.WATCH_STALE_INTERVALS * INTERVALO + 10)
            codigo_http, status = _status(par)
            assert "não completa um ciclo" in status["mensagem"]
            agendada = par.rodar()  # um vigiar travado não faz a execução agendada sair com 0
            assert agendada.codigo == 3 and "não completa um ciclo" in agendada.stderr
        finally:
            vigiar.proc.send_signal(signal.SIGCONT)
        esperar(lambda: _status(par)[0] == 200, 2 * INTERVALO + 5)
    finally:
        codigo, _ = vigiar.parar(signal.SIGTERM)
    assert codigo == 143


def test_mil_ciclos_ociosos_nao_fazem_a_memoria_crescer_nem_falam_com_o_backup(par):
    """Dias sem ninguém, em segundos: o ciclo do vigiar (Watcher.cycle, o mesmo do processo) chamado mil
    vezes (depois do aquecimento) dentro do processo do teste contra servidores de referência reais. A memória
    alocada pela ferramenta (tracemalloc, sem a do servidor de referência, que guarda o log das requisições) não
    cresce; nenhum ciclo ocioso fala com o backup; um login por servidor.

    Por que mil bastam: o que fica alocado entre as duas fotos é um piso fixo de ~18 KB (medido: o mesmo com
    1.000 e com 2.000 ciclos: caches limitados de datas e cabeçalhos), não algo por ciclo. Com 40 KB de limite
    em 1.000 ciclos, um vazamento a partir de ~22 bytes por ciclo reprova, a mesma sensibilidade dos 64 KB em
    2.000 ciclos de antes; cada ciclo sob o tracemalloc custa ~18 ms, e os 1.000 a menos eram ~18 s."""
    import gc
    import io
    import tracemalloc

    semear_licencas(par.principal, 20)
    config = sb.Config(primary=sb.ServerConfig(sb.Role.PRIMARY, par.principal.url, "admin", par.senha_principal),
                       backups=[sb.ServerConfig(sb.Role.BACKUP, par.backup.url, "admin", par.senhas_backup)],
                       data_dir=str(par.dados), wake_wait=5, timeout=5)
    vigiar = sb.Watcher(config, sb.Reporter(False, io.StringIO()), INTERVALO, 60, 1000)
    vigiar.open()
    try:
        vigiar.connect()
        vigiar.cycle()
        assert _iguais(par) and len(par.backup.devices()) == 20
        for _ in range(200):  # aquecimento: caches do requests, do urllib3 e do SQLite
            vigiar.cycle()
        par.zerar_contagens()
        ignorar = [tracemalloc.Filter(False, "*servidor_referencia.py"), tracemalloc.Filter(False, "*http/server.py"),
                   tracemalloc.Filter(False, "*socketserver.py"), tracemalloc.Filter(False, tracemalloc.__file__)]
        tracemalloc.start()
        try:
            for _ in range(50):
                vigiar.cycle()
            gc.collect()  # o lixo com ciclos de referência (sessões do requests) não é crescimento
            antes = tracemalloc.take_snapshot().filter_traces(ignorar)
            ciclos = 1000
            for _ in range(ciclos):
                vigiar.cycle()
            gc.collect()
            depois = tracemalloc.take_snapshot().filter_traces(ignorar)
        finally:
            tracemalloc.stop()
        cresceu = sum(stat.size_diff for stat in depois.compare_to(antes, "filename"))
        assert cresceu < 40 * 1024, [str(s) for s in depois.compare_to(antes, "lineno")[:8]]
        assert dict(par.backup.counts) == {}
        assert par.principal.counts[("GET", "/admin/devices")] == ciclos + 50
        assert ("POST", "/admin/login") not in par.principal.counts
        assert vigiar.write_cycles == 1 and vigiar.last_complete is not None
        assert len(vigiar.history.runs(100)) == 1  # uma linha: o primeiro ciclo; nenhuma por ciclo ocioso
    finally:
        vigiar.close()


def _vigiar_no_processo(par, orcamento_mb: float = 1000, saida=None, **ajustes):
    import io

    config = sb.Config(primary=sb.ServerConfig(sb.Role.PRIMARY, par.principal.url, "admin", par.senha_principal),
                       backups=[sb.ServerConfig(sb.Role.BACKUP, par.backup.url, "admin", par.senhas_backup)],
                       data_dir=str(par.dados), **{"wake_wait": 5, "timeout": 5, **ajustes})
    vigiar = sb.Watcher(config, sb.Reporter(False, saida if saida is not None else io.StringIO()), INTERVALO, 60,
                        orcamento_mb)
    vigiar.open()
    vigiar.connect()
    return vigiar


def test_vigiar_conta_o_que_chega_comprimido_e_alarga_o_intervalo_quando_a_listagem_nao_cabe_no_orcamento(par):
    import io

    semear_licencas(par.principal, 300)
    par.principal.comprimir()  # o proxy da hospedagem comprime para quem pede gzip (o requests pede sempre)
    saida = io.StringIO()
    vigiar = _vigiar_no_processo(par, orcamento_mb=1, saida=saida)
    try:
        for _ in range(3):
            vigiar.cycle()
        doc = vigiar.heartbeat()
        transferencia = doc["transferencia"]
        assert transferencia["comprimida"] is True
        assert transferencia["ultima_leitura_bytes"] * 3 < transferencia["ultima_leitura_bytes_descomprimidos"]
        assert transferencia["bytes_no_dia"] >= 3 * transferencia["ultima_leitura_bytes"]
        # 1 MB por dia não paga uma leitura a cada 5 s: o intervalo aumenta para o que o orçamento paga
        esperado = transferencia["ultima_leitura_bytes"] * 86400 / 1_000_000
        assert esperado > INTERVALO
        assert vigiar.next_wait() == pytest.approx(esperado, rel=0.25)
        assert doc["intervalo_efetivo_s"] == vigiar.next_wait() and doc["aviso_orcamento"]
        assert saida.getvalue().count("SYNC_VIGIAR_MB_DIA=1") == 1  # dito uma vez, não a cada ciclo
        assert "comprimida" in doc["aviso_orcamento"]
        par.principal.comprimir(False)
        vigiar.cycle()
        transferencia = vigiar.heartbeat()["transferencia"]
        assert transferencia["comprimida"] is False
        assert transferencia["ultima_leitura_bytes"] == transferencia["ultima_leitura_bytes_descomprimidos"]
        assert _iguais(par)
    finally:
        vigiar.close()


def test_principal_ou_backup_fora_do_ar_por_dias_o_vigiar_espera_o_teto_sem_quebrar(par):
    """Umas 1.025 falhas seguidas (3,5 dias de principal fora do ar com esperas de 5 min, 7 dias de um backup com
    esperas de 10 min): intervalo × 2^(falhas − 1) não cabe num float. A espera é o teto, não um OverflowError
    (que derrubava o vigiar, no principal, ou virava "erro inesperado" a cada ciclo, no backup)."""
    semear_licencas(par.principal, 3)
    vigiar = _vigiar_no_processo(par, wake_wait=0, http_retries=0)
    try:
        vigiar.cycle()
        assert _iguais(par)
        [par_vigiado] = vigiar.pairs
        par.backup.set_faults(fail_rate=1.0, fail_modes=["503"])
        par.principal.add_device("VENDA-NA-QUEDA", owner_name="Cliente")  # mudou: o par vai ao backup, que falha
        par_vigiado.failures = 1100
        vigiar.cycle()
        assert par_vigiado.failures == 1101 and par_vigiado.problem
        assert par_vigiado.retry_at - time.monotonic() == pytest.approx(sb.WATCH_PAIR_BACKOFF.cap, abs=5)
        par.principal.set_faults(fail_rate=1.0, fail_modes=["503"])
        vigiar.primary_failures = 1100
        vigiar.cycle()
        assert vigiar.primary_failures == 1101 and vigiar.primary_error
        assert vigiar.next_wait() == vigiar.backoff_max() == sb.WATCH_PRIMARY_BACKOFF.cap == 300
    finally:
        vigiar.close()


def test_backup_fora_do_ar_nao_segura_os_outros_e_volta_a_ser_sincronizado(par_dois_backups):
    par = par_dois_backups
    fora, outro = par.backups
    semear_licencas(par.principal, 8)
    # a espera pelo que dorme (SYNC_ESPERA_DESPERTAR) é o que o outro NÃO pode esperar: basta que seja maior que
    # o prazo afirmado abaixo (INTERVALO + 8 s); com 20 s, o teste esperava 7 s a mais sem provar mais nada
    despertar = INTERVALO + 9
    vigiar = Vigiar(par, "--intervalo", str(INTERVALO), SYNC_ESPERA_DESPERTAR=str(despertar),
                    SYNC_TENTATIVAS_HTTP="0")
    try:
        esperar(lambda: all(len(b.devices()) == 8 for b in par.backups), 30)
        vigiar.esperar_texto("Paridade de veredito", vezes=2)
        fora.set_faults(fail_rate=1.0, fail_modes=["503"])  # dormindo/fora do ar: 503 em tudo, /health também
        par.principal.add_device("VENDA-5", owner_name="Cliente")
        levou = esperar(lambda: outro.veredito("VENDA-5"), 30)
        vigiar.esperar_texto(f"Backup {fora.url}:", 40)  # a espera pelo que dorme terminou depois
        assert levou < INTERVALO + 8 < despertar, levou  # não esperou o backup fora do ar
        # o aviso sai no meio do ciclo; o batimento, no fim dele (ler logo depois do aviso era uma corrida)
        esperar(lambda: vigiar.batimento()["pares"][0]["situacao"] == "com problema", 10)
        fora.clear_faults()
        esperar(lambda: fora.veredito("VENDA-5") and fora.vereditos() == par.principal.vereditos(), 40)
        vigiar.esperar_texto(f"Backup {fora.url} em dia de novo", 10)
    finally:
        codigo, _ = vigiar.parar(signal.SIGTERM)
    assert codigo == 143
    assert vigiar.saida.count(f"Backup {fora.url}:") == 1, vigiar.saida[-3000:]


def test_token_que_caiu_no_meio_da_vida_do_vigiar_leva_a_um_login_so(par):
    semear_licencas(par.principal, 5)
    vigiar = _vigiar_no_processo(par)
    try:
        vigiar.cycle()
        assert _iguais(par)
        par.zerar_contagens()
        for servidor in par.servidores:
            servidor.invalidate_tokens()  # reinício do servidor: os tokens emitidos não valem mais
        par.principal.add_device("VENDA-4", owner_name="Cliente")
        vigiar.cycle()
        vigiar.cycle()
        assert par.backup.veredito("VENDA-4") is True
        assert par.principal.counts[("POST", "/admin/login")] == 1
        assert par.backup.counts[("POST", "/admin/login")] == 1
    finally:
        vigiar.close()


def test_leitura_periodica_do_backup_conserta_o_que_mudaram_a_mao_nele_sem_mudanca_no_principal(par):
    semear_licencas(par.principal, 8)
    vigiar = _vigiar_no_processo(par)
    vigiar.backup_read_s = 2.0  # SYNC_VIGIAR_LEITURA_BACKUP_MIN em segundos, para o teste
    try:
        vigiar.cycle()
        assert _iguais(par)
        bloqueada = next(k for k, d in par.principal.devices().items() if d["status"] == "blocked")
        par.backup.set_status(bloqueada, "active")  # alguém liberou à mão no backup
        par.backup.remove_device("LIC-0001")  # e apagou outra
        par.zerar_contagens()
        vigiar.cycle()
        assert dict(par.backup.counts) == {}  # antes do prazo: o principal não mudou, o backup não é lido
        time.sleep(2.2)
        vigiar.cycle()
        assert par.backup.counts[("GET", "/admin/devices")] >= 1
        assert par.backup.veredito(bloqueada) is False and par.backup.veredito("LIC-0001") is True
        assert _iguais(par)
    finally:
        vigiar.close()


def test_listagem_cortada_uma_vez_pausa_o_par_sem_gravar_e_ele_volta_no_ciclo_seguinte(par):
    """Um proxy que corta a listagem do principal uma vez (o que numa execução é o código 5) pausa o par sem
    gravar nada; a leitura seguinte, inteira, muda o resumo do principal e o par volta sem esperar a leitura
    periódica."""
    vigiar = _vigiar_em_dia(par, 30)
    try:
        par.backup.reset_counts()
        par.principal.cortar_listagem(12, vezes=1)  # só as 12 mais novas, uma vez
        vigiar.esperar_texto("Par PAUSADO", PRAZO)
        vigiar.esperar_texto("Par retomado", 2 * INTERVALO + 5)
        assert par.backup.write_count() == 0
        assert len(par.backup.devices()) == 30 and _iguais(par)
        par.principal.add_device("VENDA-6", owner_name="Cliente")
        esperar(lambda: par.backup.veredito("VENDA-6"), PRAZO)
    finally:
        codigo, _ = vigiar.parar(signal.SIGTERM)
    assert codigo == 143
