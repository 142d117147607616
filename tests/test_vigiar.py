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

import pytest
from apoio import Vigiar, esperar, semear_licencas

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sinais a um filho só em POSIX")

INTERVALO = 5  # o mínimo do --intervalo
PRAZO = INTERVALO + 10  # o limite do issue: uma escrita no principal chega ao backup em intervalo + 10 s


def _iguais(par) -> bool:
    return par.principal.vereditos() == par.backup.vereditos()


def test_vigiar_leva_ao_backup_venda_bloqueio_e_vencimento_sem_falar_com_o_backup_nos_ciclos_ociosos(par):
    semear_licencas(par.principal, 30)
    vigiar = Vigiar(par, "--intervalo", str(INTERVALO))
    try:
        esperar(lambda: set(par.backup.devices()) == set(par.principal.devices()) and _iguais(par), 30)
        vigiar.esperar_texto("Paridade de veredito")
        # ciclos ociosos: nenhuma requisição ao backup, nem com um cliente conferindo a licença (last_seen_*)
        par.zerar_contagens()
        par.principal.set_device_fields("LIC-0001", last_seen_at="2026-12-01 10:00:00", last_seen_ip="10.0.0.9",
                                        last_hostname="caixa-1", last_version="2.1")
        esperar(lambda: par.principal.counts[("GET", "/admin/devices")] >= 3, 3 * INTERVALO + 5)
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
