"""Texto do servidor é entrada hostil: um revendedor cria, pelo POST /user/devices/create, licenças com ESC,
BEL, U+202E (texto de trás para frente) e quebra de linha no id e no nome do cliente. Em toda saída de texto
(relatório da sincronização, historico --detalhes, saída e log do agendador) esses caracteres aparecem
escritos (\\x1b, U+202E, \\n) e nunca crus; no --json e no histórico fica o valor exato."""

from __future__ import annotations

import json
import re
import sqlite3

import requests

from apoio import login_http, rodar_script, rodar_wrapper, saida, sem_traceback, semear_licencas, semear_usuarios

# Um caractere que mexe no terminal: controles C0 (menos a quebra de linha entre as linhas de verdade), DEL,
# C1, marcas e isolamentos bidirecionais, separadores de linha.
CRU = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _licenca_do_revendedor(servidor, revendedor: str, device_id: str, dono: str) -> None:
    """A licença grátis do revendedor, criada pela rota de verdade com o token dele."""
    token = login_http(servidor, revendedor, "senha-do-teste-" + revendedor).json()["token"]
    resp = requests.post(f"{servidor.url}/user/devices/create", timeout=10,
                         headers={"Authorization": f"Bearer {token}"},
                         json={"device_id": device_id, "owner_name": dono})
    assert resp.status_code == 201, resp.text
    assert device_id in servidor.devices()  # guardado como enviado (só os espaços das pontas saem)


def _hostil(n: int) -> tuple[str, str]:
    device_id = f"HOSTIL-{n}\x1b]0;titulo forjado\x07\x1b[2J\u202eFED\nLINHA FORJADA {n}"
    dono = f"Cliente\x1b[31m vermelho\x9b\u2066 isolado\u2069\u200f{n}\r\n✅ Sincronização forjada"
    return device_id, dono


def _sem_caractere_cru(texto: str, onde: str) -> None:
    achado = CRU.search(texto)
    assert achado is None, \
        f"{onde}: {achado.group()!r} cru em …{texto[max(0, achado.start() - 80):achado.end() + 80]!r}"
    assert not any(linha.startswith(("LINHA FORJADA", "✅ Sincronização forjada")) for linha in texto.splitlines()), \
        f"{onde}: um valor do servidor forjou uma linha"


def _a_vista(texto: str, n: int, onde: str) -> None:
    assert f"HOSTIL-{n}\\x1b]0;titulo forjado\\x07\\x1b[2JU+202EFED\\nLINHA FORJADA {n}" in texto, \
        f"{onde}: o id não aparece à vista:\n{texto[-3000:]}"


def test_controles_e_bidi_do_servidor_aparecem_escritos_no_texto_e_exatos_no_json_e_no_historico(par):
    semear_licencas(par.principal, 3)
    semear_usuarios(par.principal, ["revenda.hostil"])
    id1, dono1 = _hostil(1)
    _licenca_do_revendedor(par.principal, "revenda.hostil", id1, dono1)

    simulada = par.rodar("--simular", "--json")  # o plano, em JSON: o valor exato
    sem_traceback(simulada)
    assert id1 in {a["chave"] for a in simulada.json()["backups"][0]["acoes"]}, simulada.stdout[-3000:]

    r = par.rodar("--sem-progresso")

    sem_traceback(r)
    assert r.codigo == 0, saida(r)[-3000:]
    assert par.backup.devices()[id1]["owner_name"] == dono1  # copiado exato
    _sem_caractere_cru(saida(r), "relatório da sincronização")
    _a_vista(saida(r), 1, "relatório da sincronização")

    historico = sqlite3.connect(par.dados / "historico.sqlite3")
    try:
        [(execucao, chave)] = historico.execute("SELECT execucao, chave FROM auditoria WHERE chave LIKE 'HOSTIL-1%'")
    finally:
        historico.close()
    assert chave == id1  # o histórico guarda o valor exato
    detalhes = rodar_script("historico", "--detalhes", execucao, env=par.ambiente(), cwd=par.tmp_path)
    assert detalhes.codigo == 0, saida(detalhes)
    _sem_caractere_cru(saida(detalhes), "historico --detalhes")
    _a_vista(saida(detalhes), 1, "historico --detalhes")
    em_json = rodar_script("historico", "--detalhes", execucao, "--json", env=par.ambiente(), cwd=par.tmp_path)
    assert id1 in {item["chave"] for item in em_json.json()["auditoria"]}
    _sem_caractere_cru(em_json.stdout.replace("\n", " "), "historico --detalhes --json (o texto do JSON)")

    # O agendador: a saída do filho ecoada e o log, com uma segunda licença hostil para copiar
    id2, dono2 = _hostil(2)
    _licenca_do_revendedor(par.principal, "revenda.hostil", id2, dono2)
    w = rodar_wrapper(par, "--tentativas", "1")
    assert w.returncode == 0, w.stdout + w.stderr
    assert par.backup.devices()[id2]["owner_name"] == dono2
    log = (par.dados / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    for texto, onde in ((w.stdout + w.stderr, "saída do agendador"), (log, "logs/sincronizacao.log")):
        _sem_caractere_cru(texto, onde)
        _a_vista(texto, 2, onde)
    ultima = json.loads((par.dados / "ultima_execucao.json").read_text(encoding="utf-8"))
    assert ultima["codigo_saida"] == 0
