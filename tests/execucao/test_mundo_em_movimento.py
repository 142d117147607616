"""O mundo não para durante a execução: o par é julgado por uma releitura dos DOIS lados feita depois da
última escrita (Run.settle). O que o vendedor muda no principal enquanto a execução escreve (estorno,
exclusão, vencimento, venda nova) é aplicado numa rodada extra (no máximo 2); o que ainda muda depois disso
é nomeado e o par sai com 1. Nunca um código 0 com um veredito diferente entre os servidores.

O vendedor age por ganchos do servidor de referência (`on_request(..., when="before")` na escrita da
execução no backup), direto no banco do principal, como o painel dele faria."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from apoio import Par, backup_libera_o_que_o_principal_nega, diferentes_no_oraculo, rodar_json, saida, sem_traceback

import sincronizar_bancos as sb

UPSERT = ("POST", "/admin/devices/create")
LISTAR_LICENCAS, LISTAR_USUARIOS = ("GET", "/admin/devices"), ("GET", "/admin/users")
ONTEM = dt.date.today() - dt.timedelta(days=1)


def _semear(par, chaves) -> None:
    for chave in chaves:
        par.principal.add_device(chave, owner_name=f"Cliente {chave}", created_by="admin")


def _vendedor_mexe_no_principal(par) -> None:
    """Estorno (bloqueio), exclusão (reembolso) e vencimento (fim no passado), direto no banco do principal."""
    par.principal.set_status("L01", "blocked")
    par.principal.remove_device("L02")
    par.principal.set_dates("L03", ONTEM - dt.timedelta(days=30), ONTEM)


def _preparar(par, *args: str) -> None:
    """20 licenças sincronizadas (estado salvo) e 3 vendas novas no principal: a execução seguinte escreve."""
    _semear(par, [f"L{i:02d}" for i in range(20)])
    r = par.rodar("--sem-progresso", *args)
    assert r.codigo == 0, saida(r)[-3000:]
    _semear(par, ["NOVA-1", "NOVA-2", "NOVA-3"])
    par.zerar_contagens()


def test_unidirecional_o_que_o_principal_nega_durante_as_escritas_nao_fica_liberado_no_backup(par):
    _preparar(par)
    # na primeira escrita da execução no backup, o vendedor estorna, apaga e vence licenças no principal
    par.backup.on_request(*UPSERT, lambda _srv: _vendedor_mexe_no_principal(par), when="before")
    r, pair = rodar_json(par)
    sem_traceback(r)
    assert not par.backup.hook_errors
    assert not par.principal.veredito("L01") and not par.principal.veredito("L02")
    assert not par.principal.veredito("L03")
    assert backup_libera_o_que_o_principal_nega(par) == []
    # 0 só com a paridade de verdade (pelo oráculo de cada servidor) na releitura final
    assert r.codigo == 0, saida(r)[-4000:]
    assert diferentes_no_oraculo(par) == {}
    assert pair["paridade"]["ok"] is True and pair["paridade"]["conferida"] is True
    assert pair["releitura_final"] == {"relida": True, "rodadas_extras": 1, "alteracoes_aplicadas": 3,
                                       "mudou": ["principal"], "ainda_mudando": []}
    assert {(a["tipo"], a["chave"]) for a in pair["acoes"]} >= {("bloquear", "L01"), ("bloquear", "L02"),
                                                               ("bloquear", "L03")}
    # unidirecional nunca escreve no principal, nem na rodada extra
    assert par.principal.write_count() == 0
    # leituras: a primeira, a releitura final depois da primeira rodada e a depois da rodada extra;
    # cada releitura custa 2 GETs em cada lado (usuários e licenças)
    for srv in (par.principal, par.backup):
        assert srv.counts[LISTAR_LICENCAS] == 3 and srv.counts[LISTAR_USUARIOS] == 3, srv.counts
    # o estado gravado depois da rodada extra é a base certa: a execução seguinte não tem nada a fazer
    par.zerar_contagens()
    r = par.rodar("--sem-progresso")
    assert r.codigo == 0, saida(r)[-3000:]
    assert par.backup.write_count() == 0 and par.principal.write_count() == 0


def test_rodada_extra_nao_apaga_do_diario_a_cadeia_que_falhou_na_primeira(par):
    """Uma cadeia que falhou na primeira rodada fica no diário (a próxima execução a termina), mesmo depois
    de a rodada extra gravar o diário dela."""
    _preparar(par)
    par.principal.add_device("NOVA-BLOQ", owner_name="Estornada antes", created_by="admin", status="blocked")
    # o bloqueio da cadeia criar → bloquear de NOVA-BLOQ falha (a escrita e as novas tentativas)
    par.backup.fail_next("POST", "/admin/devices/<id>/deactivate", 500, {"error": "Falha simulada"}, times=4)
    par.backup.on_request(*UPSERT, lambda _srv: _vendedor_mexe_no_principal(par), when="before")
    r, pair = rodar_json(par, "--paralelo", "1")
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-4000:]
    assert pair["releitura_final"]["rodadas_extras"] == 1
    assert [f["chave"] for f in pair["falhas"]] == ["NOVA-BLOQ"]
    with open(sb.journal_path(str(par.dados), par.principal.url, par.backup.url), encoding="utf-8") as arquivo:
        diario = json.load(arquivo)
    assert "NOVA-BLOQ" in diario, diario
    assert backup_libera_o_que_o_principal_nega(par) in ([], ["NOVA-BLOQ"])
    # a próxima execução termina a cadeia: nada liberado no backup que o principal nega
    r = par.rodar("--sem-progresso")
    assert r.codigo == 0, saida(r)[-3000:]
    assert backup_libera_o_que_o_principal_nega(par) == [] and diferentes_no_oraculo(par) == {}


def test_unidirecional_o_texto_diz_a_rodada_extra(par):
    _preparar(par)
    par.backup.on_request(*UPSERT, lambda _srv: _vendedor_mexe_no_principal(par), when="before")
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-4000:]
    assert "🔁 O principal mudou durante a execução: 3 alterações aplicadas numa rodada extra" in r.stdout
    assert backup_libera_o_que_o_principal_nega(par) == []


def test_unidirecional_sem_mudanca_durante_a_execucao_rele_os_dois_lados_uma_vez(par):
    """A releitura final custa 2 GETs por lado (usuários e licenças), e nenhuma rodada extra."""
    _preparar(par)
    r, pair = rodar_json(par)
    assert r.codigo == 0, saida(r)[-4000:]
    assert pair["releitura_final"]["rodadas_extras"] == 0 and pair["releitura_final"]["relida"] is True
    for srv in (par.principal, par.backup):
        assert srv.counts[LISTAR_LICENCAS] == 2 and srv.counts[LISTAR_USUARIOS] == 2, srv.counts
    assert par.principal.write_count() == 0


def test_bidirecional_o_que_o_principal_nega_durante_as_escritas_nao_sai_com_0_e_veredito_diferente(par):
    _preparar(par, "--bidirecional")
    par.backup.on_request(*UPSERT, lambda _srv: _vendedor_mexe_no_principal(par), when="before")
    r, pair = rodar_json(par, "--bidirecional")
    sem_traceback(r)
    assert not par.backup.hook_errors
    diferentes = diferentes_no_oraculo(par)
    assert not (r.codigo == 0 and diferentes), (r.codigo, diferentes, saida(r)[-4000:])
    assert backup_libera_o_que_o_principal_nega(par) == []
    for chave in ("L01", "L02", "L03"):
        assert not par.backup.veredito(chave), chave
    assert pair["releitura_final"]["rodadas_extras"] >= 1 and "principal" in pair["releitura_final"]["mudou"]


def _nova_venda_no_principal(par, vendas: list[str]) -> None:
    vendas.append(f"MOV-{len(vendas) + 1}")
    par.principal.add_device(vendas[-1], owner_name="Venda durante a execução", created_by="admin")


@pytest.mark.parametrize("modo", [[], ["--bidirecional"]], ids=["unidirecional", "bidirecional"])
def test_principal_que_muda_a_cada_rodada_e_nomeado_e_sai_com_1(par, modo):
    _preparar(par, *modo)
    vendas: list[str] = []
    # a cada escrita no backup, o vendedor vende de novo no principal: nunca para de mudar
    par.backup.on_request(*UPSERT, lambda _srv: _nova_venda_no_principal(par, vendas), when="before", times=None)
    r, pair = rodar_json(par, *modo)
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-4000:]
    final = pair["releitura_final"]
    assert final["rodadas_extras"] == 2 and final["mudou"] == ["principal"]
    assert final["ainda_mudando"] and set(final["ainda_mudando"]) <= set(vendas), (final, vendas)
    aviso = next(a for a in pair["avisos"] if "continuou mudando" in a)
    assert all(chave in aviso for chave in final["ainda_mudando"]), aviso
    assert r.json()["codigo_saida"] == 1
    assert backup_libera_o_que_o_principal_nega(par) == []
    if not modo:
        assert par.principal.write_count() == 0


# ---------------------------------------------------------------------------
# Propriedade: atividade aleatória do vendedor no principal entre as escritas da execução
# ---------------------------------------------------------------------------

CHAVES = [f"L{i:02d}" for i in range(12)]
ACOES = ("estornar", "reativar", "apagar", "vencer", "vender", "renomear")


@st.composite
def atividade(draw):
    """Uma lista de (criação no backup antes da qual acontece, ação, licença) do vendedor no principal; a
    execução cria 4 licenças no backup (mais as vendas que a rodada extra leva)."""
    return draw(st.lists(st.tuples(st.integers(0, 4), st.sampled_from(ACOES), st.sampled_from(CHAVES)),
                         min_size=1, max_size=5))


_UM_VENDEDOR = threading.Lock()  # os ganchos rodam nas threads do servidor, em paralelo: um clique de cada vez


def _agir(par, acao: str, chave: str, n: int) -> None:
    with _UM_VENDEDOR:  # sem isto, "existe?" e a ação podiam ter uma exclusão de outro gancho no meio
        _agir_sozinho(par, acao, chave, n)


def _agir_sozinho(par, acao: str, chave: str, n: int) -> None:
    srv = par.principal
    existe = chave in srv.devices()
    if acao == "vender":
        srv.add_device(f"V{n}-{chave}", owner_name="Venda durante a execução", created_by="admin")
    elif not existe:
        return
    elif acao == "estornar":
        srv.set_status(chave, "blocked")
    elif acao == "reativar":
        srv.set_status(chave, "active")
    elif acao == "apagar":
        srv.remove_device(chave)
    elif acao == "vencer":
        srv.set_dates(chave, ONTEM - dt.timedelta(days=30), ONTEM)
    else:
        srv.set_device_fields(chave, owner_name=f"Nome novo {n}")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(eventos=atividade(), modo=st.sampled_from([(), ("--bidirecional",)]))
def test_atividade_do_vendedor_durante_a_execucao_nunca_termina_com_0_e_veredito_diferente(eventos, modo):
    note(f"modo={modo} eventos={eventos}")
    with tempfile.TemporaryDirectory() as pasta:
        par = Par(Path(pasta))
        try:
            _semear(par, CHAVES)
            assert par.rodar("--sem-progresso", *modo).codigo == 0
            _semear(par, ["NOVA-1", "NOVA-2", "NOVA-3", "NOVA-4"])  # a execução tem escritas no backup
            par.zerar_contagens()
            for n, (escrita, acao, chave) in enumerate(eventos):
                par.backup.on_request(*UPSERT, lambda _srv, a=acao, c=chave, n=n: _agir(par, a, c, n),
                                      when="before", skip=escrita)
            r, _pair = rodar_json(par, *modo)
            sem_traceback(r)
            assert not par.backup.hook_errors
            diferentes = diferentes_no_oraculo(par)
            assert not (r.codigo == 0 and diferentes), (r.codigo, diferentes, saida(r)[-3000:])
            assert backup_libera_o_que_o_principal_nega(par) == [] or r.codigo != 0
            if not modo:
                assert par.principal.write_count() == 0
        finally:
            par.parar()


def _sumir_do_principal_no_estorno(par, chaves) -> None:
    """Sincroniza 20 licenças, estorna L05 no principal e, no estorno de L05 que a execução seguinte manda ao
    backup (a primeira escrita dela), apaga `chaves` do principal (a execução vê isso só na releitura final)."""
    _semear(par, [f"L{i:02d}" for i in range(20)])
    assert par.rodar("--sem-progresso").codigo == 0
    par.principal.set_status("L05", "blocked")

    def sumir(_srv) -> None:
        for chave in chaves:
            if chave in par.principal.devices():
                par.principal.remove_device(chave)
    par.backup.on_request("POST", "/admin/devices/<id>/deactivate", sumir, when="before")


def test_perda_vista_so_na_releitura_final_nao_diz_que_nada_foi_gravado(par):
    """Revisão: a releitura final (settle → merge_final) acha uma perda de dados no principal (as três mais
    novas somem durante as escritas: cópia restaurada) e para o par com 5 — mas a primeira rodada já gravou (o
    estorno de L05 no backup). O texto não pode dizer 'NADA foi gravado neste par' (loss_text só conhecia a
    parada antes das escritas)."""
    _sumir_do_principal_no_estorno(par, ("L19", "L18", "L17"))
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 5, saida(r)[-3000:]
    assert par.backup.devices()["L05"]["status"] == "blocked"  # houve escrita neste par
    assert "NADA foi gravado neste par" not in saida(r), saida(r)[-3000:]
    assert "Depois de 1 escrita confirmada neste par, nada mais foi gravado" in saida(r), saida(r)[-3000:]


def test_duas_mais_novas_sumidas_durante_as_escritas_nao_saem_com_0(par):
    """As duas mais novas somem do principal durante as escritas: a releitura final as bloqueia no backup como
    reembolsos (rodada extra) — mas podem ser vendas de uma cópia de pouco antes, então o par sai com 1, nunca 0."""
    _sumir_do_principal_no_estorno(par, ("L19", "L18"))
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-3000:]
    assert "sumiram juntas" in saida(r) and not par.backup.veredito("L19") and not par.backup.veredito("L18")
