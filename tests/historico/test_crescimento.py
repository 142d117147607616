"""Arquivos locais e saída que não crescem com execuções repetidas: o histórico guarda cada lista grande uma
vez só (execuções sem mudanças, a cada 15 minutos, repetem as mesmas divergências), a leitura devolve a
lista inteira para qualquer linha, a retenção apaga o que nenhuma linha usa, e o --json de uma execução sem
mudanças tem listas limitadas (o total fica em listas_truncadas; --json-completo traz tudo)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import sincronizar_bancos as sb

LICENCAS = 300


def _semear_com_divergencias(par, total: int = LICENCAS) -> None:
    """Licenças com datas antigas no principal e intervalo próprio em algumas: divergências que a API não
    deixa corrigir (o backup recomeça o período no dia em que a licença é criada lá)."""
    for i in range(total):
        par.principal.add_device(f"CR-{i:04d}", owner_name=f"Cliente {i}",
                                 start_date=dt.date(2026, 1 + i % 10, 1 + i % 27),
                                 custom_interval=30 if i % 3 == 0 else 60, status="blocked" if i % 9 == 0 else "active")


def _tabela(par, sql: str) -> list[tuple]:
    con = sqlite3.connect(par.dados / "historico.sqlite3")
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_execucao_sem_mudancas_nao_grava_de_novo_as_mesmas_listas_no_historico(par):
    _semear_com_divergencias(par)
    assert par.rodar().codigo == 0
    r = par.rodar("--json-completo")
    assert r.codigo == 0
    divergencias = r.json()["backups"][0]["divergencias"]
    assert len(divergencias) > 600  # a lista que antes ia inteira (até 200 itens) em cada linha
    conteudos = _tabela(par, "SELECT count(*), sum(length(conteudo)) FROM conteudos")[0]
    for _ in range(3):
        assert par.rodar().codigo == 0
    # as execuções sem mudanças não acrescentaram conteúdo: só a linha, com referências
    assert _tabela(par, "SELECT count(*), sum(length(conteudo)) FROM conteudos")[0] == conteudos
    tamanhos = _tabela(par, "SELECT length(contagens) + length(detalhes) FROM execucoes ORDER BY id")
    assert len(tamanhos) == 5 and all(t < 1000 for (t,) in tamanhos[1:]), tamanhos

    # historico --json (e o painel, que lê do mesmo jeito) mostra a lista inteira em qualquer linha
    h = par.rodar("historico", "--json")
    assert h.codigo == 0
    execucoes = h.json()["execucoes"]
    assert len(execucoes) == 5
    esperado = divergencias[:200]
    for linha in execucoes:
        assert linha["detalhes"]["divergencias"] == esperado
        assert sum(linha["detalhes"]["divergencias_por_campo"].values()) == len(divergencias)
        assert linha["contagens"]["divergencias"] == len(divergencias)
    historico = sb.History(str(par.dados))  # o painel lê por runs() e latest(), como aqui
    try:
        ultima = historico.latest(par.principal.url, par.backup.url)
        recentes = historico.runs(300)
    finally:
        historico.close()
    assert ultima["detalhes"]["divergencias"] == esperado
    assert [r["detalhes"]["divergencias"] for r in recentes] == [esperado] * 5


def test_retencao_apaga_os_conteudos_que_nenhuma_linha_usa(par):
    _semear_com_divergencias(par, 120)
    assert par.rodar().codigo == 0
    par.principal.set_device_fields("CR-0001", custom_interval=15)  # muda a lista de divergências
    assert par.rodar().codigo == 0
    antes = {h for (h,) in _tabela(par, "SELECT hash FROM conteudos")}
    velho = (dt.datetime.now(dt.UTC) - dt.timedelta(days=40)).isoformat()
    con = sqlite3.connect(par.dados / "historico.sqlite3")
    with con:
        con.execute("UPDATE execucoes SET inicio = ?", (velho,))
    con.close()
    assert par.rodar(SYNC_HISTORICO_DIAS="30").codigo == 0
    depois = {h for (h,) in _tabela(par, "SELECT hash FROM conteudos")}
    assert _tabela(par, "SELECT count(*) FROM execucoes") == [(1,)]
    assert depois < antes  # a lista antiga (sem a mudança de CR-0001) saiu com as linhas antigas
    linha = par.rodar("historico", "--json").json()["execucoes"][0]
    mudada = [d for d in linha["detalhes"]["divergencias"]
              if d["chave"] == "CR-0001" and d["campo"] == "custom_interval"]
    assert mudada and mudada[0]["principal"] == 15


def test_json_sem_mudancas_tem_listas_limitadas_e_json_completo_traz_tudo(par):
    _semear_com_divergencias(par)
    assert par.rodar().codigo == 0
    r = par.rodar("--json")
    assert r.codigo == 0
    doc = r.json()
    par_doc = doc["backups"][0]
    total = par_doc["contagens"]["divergencias"]
    assert total > 600
    assert doc["limite_listas"] == 200 and len(par_doc["divergencias"]) == 200
    assert par_doc["listas_truncadas"] == {"divergencias": total}
    assert len(r.stdout.encode("utf-8")) < 120_000, len(r.stdout)

    completo = par.rodar("--json-completo")
    assert completo.codigo == 0
    doc = completo.json()
    assert doc["limite_listas"] is None and len(doc["backups"][0]["divergencias"]) == total
    assert doc["backups"][0]["listas_truncadas"] == {}
    assert len(completo.stdout) > 3 * len(r.stdout)


def test_json_completo_aparece_na_ajuda(par):
    r = par.rodar("--help")
    assert r.codigo == 0 and "--json-completo" in r.stdout and "listas_truncadas" in r.stdout
