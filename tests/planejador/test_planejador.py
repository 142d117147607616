"""Planejador (puro): tabelas de casos, sem rede e sem arquivos."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

import sincronizar_bancos as sb
from servidor_referencia import verdict_reason

HOJE = dt.date(2026, 11, 29)
PASSADO = dt.date(2026, 10, 1)
FUTURO = dt.date(2027, 6, 1)


def lic(device_id="L1", status="active", end=FUTURO, license_type="anual", **kw) -> sb.License:
    base = dict(owner_name="José da Silva", cpf="123", email="j@x.com", address="Rua A, 10",
                license_type=license_type, created_by="sergio", status=status,
                start_date=dt.date(2026, 6, 1), end_date=end, custom_interval=60, features="core")
    base.update(kw)
    return sb.License(device_id=device_id, **base)


def snap(*licenses, users=(), login="admin") -> sb.Snapshot:
    return sb.Snapshot("http://x", {u.username: u for u in users}, {ln.device_id: ln for ln in licenses},
                       login_username=login)


def kinds(plan: sb.Plan) -> list[tuple[str, str]]:
    return [(a.kind, a.key) for a in plan.actions]


# (descrição, licença no principal, licença no backup, ações esperadas em ordem)
CASOS_LICENCA = [
    ("ausente e ativa → cria", lic(), None, [sb.CREATE]),
    ("ausente e bloqueada → cria e bloqueia", lic(status="blocked"), None, [sb.CREATE, sb.BLOCK]),
    ("ausente e pendente → cria e bloqueia", lic(status="pending"), None, [sb.CREATE, sb.BLOCK]),
    ("ausente e vencida → cria e bloqueia", lic(end=PASSADO), None, [sb.CREATE, sb.BLOCK]),
    ("ausente e vitalícia com data passada → cria", lic(license_type="vitalicia", end=PASSADO), None, [sb.CREATE]),
    ("igual → nada", lic(), lic(), []),
    ("igual com datas diferentes → nada", lic(), lic(start_date=HOJE, end=dt.date(2027, 11, 29)), []),
    ("nome diferente → atualiza", lic(), lic(owner_name="Outro"), [sb.UPDATE]),
    ("tipo diferente → atualiza", lic(license_type="mensal"), lic(), [sb.UPDATE]),
    ("só o created_by diferente → endpoint próprio (sem reiniciar datas nem desbloquear)",
     lic(), lic(created_by="admin"), [sb.SET_CREATED_BY]),
    ("só o created_by diferente e bloqueada → nada de desbloquear",
     lic(status="blocked"), lic(status="blocked", created_by="admin"), [sb.SET_CREATED_BY]),
    ("created_by nulo no principal e 'admin' no backup → nada", lic(created_by=None), lic(created_by="admin"), []),
    ("created_by nulo no principal e outro no backup → corrige para 'admin'", lic(created_by=None), lic(),
     [sb.SET_CREATED_BY]),
    ("diferente e bloqueada no principal → atualiza e bloqueia de novo",
     lic(status="blocked", owner_name="Novo"), lic(status="blocked"), [sb.UPDATE, sb.BLOCK]),
    ("bloqueada no principal, ativa no backup → bloqueia", lic(status="blocked"), lic(), [sb.BLOCK]),
    ("bloqueada nos dois → nada", lic(status="blocked"), lic(status="blocked"), []),
    ("ativa no principal, bloqueada no backup → ativa", lic(), lic(status="blocked"), [sb.ACTIVATE]),
    ("ativa no principal, pendente no backup → ativa", lic(), lic(status="pending"), [sb.ACTIVATE]),
    ("pendente nos dois → nada", lic(status="pending"), lic(status="pending"), []),
    ("pendente no principal, ativa no backup → bloqueia", lic(status="pending"), lic(), [sb.BLOCK]),
    ("pendente no principal, bloqueada no backup → nada", lic(status="pending"), lic(status="blocked"), []),
    ("renovada no principal, vencida no backup → reinicia período", lic(), lic(end=PASSADO), [sb.RENEW]),
    ("renovada no principal, vencida e bloqueada no backup → reinicia (upsert já ativa)",
     lic(), lic(end=PASSADO, status="blocked"), [sb.RENEW]),
    ("vencida no principal, no prazo no backup → bloqueia", lic(end=PASSADO), lic(), [sb.BLOCK]),
    ("vencida nos dois → nada", lic(end=PASSADO), lic(end=PASSADO), []),
    ("vencida nos dois e bloqueada no backup → nada (ambas negam; mínimo de escritas)",
     lic(end=PASSADO), lic(end=PASSADO, status="blocked"), []),
    ("bloqueada no principal, vencida e ativa no backup → nada (já nega)",
     lic(status="blocked"), lic(end=PASSADO), []),
    ("pendente no principal, vencida no backup → nada (já nega)", lic(status="pending"), lic(end=PASSADO), []),
    ("vencida no principal e bloqueada no backup no prazo → nada", lic(end=PASSADO), lic(status="blocked"), []),
    ("vence hoje no principal (ainda vale) e ausente → cria", lic(end=HOJE), None, [sb.CREATE]),
    ("atualização de licença vencida no principal → atualiza e bloqueia",
     lic(end=PASSADO, owner_name="Novo"), lic(), [sb.UPDATE, sb.BLOCK]),
]


@pytest.mark.parametrize("descricao,principal,backup,esperado", CASOS_LICENCA, ids=[c[0] for c in CASOS_LICENCA])
def test_plano_por_licenca(descricao, principal, backup, esperado):
    plan = sb.plan_pair(snap(principal), snap(*([backup] if backup else [])), HOJE)
    assert [a.kind for a in plan.actions] == esperado
    assert plan.parity_mismatches == ()
    # O modelo do backup depois do plano dá o mesmo veredito do principal.
    estado = backup
    for acao in plan.actions:
        estado = sb.model_apply(estado, acao, HOJE, principal)
    assert sb.allows(estado, HOJE) == sb.allows(principal, HOJE)


def test_upsert_envia_registro_completo_com_created_by():
    principal = lic(owner_name="Conceição Araújo", email=None, created_by=None)
    plan = sb.plan_pair(snap(principal), snap(), HOJE)
    # email vazio vai omitido: a API grava campo omitido como nulo (mesmo efeito, sem null explícito)
    assert plan.actions[0].payload == {"device_id": "L1", "owner_name": "Conceição Araújo", "cpf": "123",
                                       "address": "Rua A, 10", "license_type": "anual", "created_by": "admin"}


def test_licencas_so_no_backup_sao_mantidas_e_listadas():
    plan = sb.plan_pair(snap(lic("A")), snap(lic("A"), lic("Z")), HOJE)
    assert plan.actions == [] and plan.backup_only_licenses == ("Z",)


def rejeitado(snapshot: sb.Snapshot, licenca: sb.License | None, chave: str | None = None,
              motivo=sb.ProblemKind.UNKNOWN_LICENSE_TYPE) -> sb.Snapshot:
    """Põe no retrato um registro que a leitura recusou (como parse_licenses faria)."""
    chave = chave or licenca.device_id
    snapshot.rejected[chave] = licenca
    snapshot.problems.append(sb.Problem(sb.RecordKind.LICENSE, chave, motivo, "recusado"))
    return snapshot


def test_registro_invalido_do_principal_e_ignorado():
    principal = rejeitado(snap(lic("A")), lic("B", license_type="desconhecido"))
    plan = sb.plan_pair(principal, snap(), HOJE)
    assert kinds(plan) == [(sb.CREATE, "A")]
    assert plan.skipped[0].key == "B"


@pytest.mark.parametrize("no_principal,no_backup,esperado", [
    # principal nega (ou não dá para saber): o backup que libera é bloqueado; nada é criado
    (lic("B", license_type="semanal", status="blocked"), lic("B"), [(sb.BLOCK, "B")]),
    (None, lic("B"), [(sb.BLOCK, "B")]),  # veredito desconhecido (ex.: data ilegível, chave duplicada)
    (lic("B", license_type="semanal", end=PASSADO), lic("B"), [(sb.BLOCK, "B")]),
    # principal libera: o backup que já libera fica como está
    (lic("B", license_type="semanal"), lic("B"), []),
    # backup que já nega: nada a fazer
    (None, lic("B", status="blocked"), []),
    # ausente no backup: nunca é criado
    (None, None, []),
])
def test_registro_recusado_no_principal_mantem_o_backup_negando(no_principal, no_backup, esperado):
    principal = rejeitado(snap(), no_principal, chave="B")
    backup = snap(*([no_backup] if no_backup else []))
    for modo in ("unidirecional", "bidirecional"):
        plan = sb.plan_pair(principal, backup, HOJE, options=sb.PlanOptions(mode=modo))
        assert kinds(plan) == esperado, modo


def test_registro_ilegivel_no_backup_e_regravado_com_o_do_principal():
    backup = rejeitado(snap(), lic(license_type="semanal"))
    plan = sb.plan_pair(snap(lic()), backup, HOJE)
    assert kinds(plan) == [(sb.UPDATE, "L1")]
    assert "ilegível" in plan.actions[0].reason


def test_registro_ilegivel_no_backup_nao_vira_exclusao_no_bidirecional():
    base = sb.StateEntry(sb.fingerprint(lic()), sb.fingerprint(lic()), "active", "active", None, None)
    estado = sb.PairState("http://x", "http://x", 1, 1, set(), {"L1": base})
    backup = rejeitado(snap(), None, chave="L1", motivo=sb.ProblemKind.BAD_DATE)
    plan = sb.plan_pair(snap(lic()), backup, HOJE, estado, sb.PlanOptions(mode="bidirecional"))
    assert plan.actions == [] and plan.deletions == () and plan.held_deletions == ()


def test_id_com_espacos_nunca_e_copiado_e_a_copia_aparada_liberada_e_bloqueada():
    principal = snap(lic("B"))
    principal.problems.append(sb.Problem(sb.RecordKind.LICENSE, " ABC", sb.ProblemKind.UNREACHABLE, "espaços"))
    plan = sb.plan_pair(principal, snap(lic("ABC"), lic("B")), HOJE)
    assert kinds(plan) == [(sb.BLOCK, "ABC")]
    assert [p.key for p in plan.unreachable] == [" ABC"] and plan.skipped == ()


def test_listagem_com_registros_ruins_recusa_so_esses_registros():
    itens = [
        {"device_id": "OK", "license_type": "anual", "status": "active", "end_date": "2027-01-01"},
        {"device_id": "DUP", "license_type": "anual", "status": "active"},
        {"device_id": "DUP", "license_type": "anual", "status": "blocked"},
        {"device_id": None}, "texto",
        {"device_id": " ESP ", "license_type": "anual", "status": "active"},
        {"device_id": "NUM", "owner_name": 12, "license_type": "anual", "status": "active"},
        {"device_id": "DATA", "license_type": "anual", "status": "active", "end_date": "31/12/2026"},
        {"device_id": "PIX", "license_type": "mensal", "status": "pending", "custom_interval": "30min",
         "features": ["a", "b"], "start_date": "ontem", "end_date": "2026-12-30", "last_seen_at": {"x": 1}},
        {"device_id": "GRANDE", "owner_name": "A" * 1_000_001, "license_type": "anual", "status": "active"},
    ]
    licencas, problemas, recusados = sb.parse_licenses(itens)
    assert set(licencas) == {"OK", "PIX", "GRANDE"}
    assert licencas["PIX"].custom_interval == "30min" and licencas["PIX"].start_date == "ontem"
    assert len(licencas["GRANDE"].owner_name) == 1_000_001
    assert set(recusados) == {"DUP", "NUM", "DATA"}
    motivos = {(p.key, p.reason) for p in problemas}
    assert {("DUP", sb.ProblemKind.DUPLICATE), (" ESP ", sb.ProblemKind.UNREACHABLE),
            ("NUM", sb.ProblemKind.BAD_TYPE), ("DATA", sb.ProblemKind.BAD_DATE),
            ("item 4", sb.ProblemKind.NO_KEY), ("item 5", sb.ProblemKind.NOT_OBJECT)} <= motivos


def test_divergencias_nao_sincronizaveis_sao_listadas():
    principal = lic(status="pending", features="core,extra", custom_interval=30, created_by=None)
    plan = sb.plan_pair(snap(principal), snap(), HOJE)
    campos = {d[2] for d in plan.divergences}
    assert {"start_date", "end_date", "features", "custom_interval", "status", "created_by"} <= campos


def test_usuarios():
    u = sb.User
    principal = snap(users=[u("ana", "a@x.com", "user"), u("bia", "b@x.com", "admin"), u("admin", None, "user")])
    backup = snap(users=[u("bia", "outro@x.com", "user"), u("caio", None, "user")], login="admin")
    plan = sb.plan_pair(principal, backup, HOJE)
    assert kinds(plan) == [(sb.CREATE_USER, "ana")]
    assert plan.actions[0].payload == {"username": "ana", "email": "a@x.com", "role": "user"}
    assert "password" not in plan.actions[0].payload
    div = {(d[1], d[2]) for d in plan.divergences}
    assert {("bia", "email"), ("bia", "role"), ("admin", "username"), ("ana", "senha")} <= div
    assert plan.backup_only_users == ("caio",)


@pytest.mark.parametrize("inicio,tipo,fim", [
    (dt.date(2026, 1, 31), "mensal", dt.date(2026, 2, 28)),
    (dt.date(2024, 1, 31), "mensal", dt.date(2024, 2, 29)),
    (dt.date(2026, 11, 30), "trimestral", dt.date(2027, 2, 28)),
    (dt.date(2026, 8, 31), "semestral", dt.date(2027, 2, 28)),
    (dt.date(2024, 2, 29), "anual", dt.date(2025, 2, 28)),
    (dt.date(2026, 5, 15), "trianual", dt.date(2029, 5, 15)),
    (dt.date(2026, 5, 15), "vitalicia", None),
])
def test_periodos(inicio, tipo, fim):
    assert sb.period_end(tipo, inicio) == fim


@pytest.mark.parametrize("status,tipo,fim,liberada", [
    ("active", "anual", FUTURO, True), ("active", "anual", HOJE, True), ("active", "anual", PASSADO, False),
    ("active", "vitalicia", PASSADO, True), ("active", "anual", None, True), ("blocked", "anual", FUTURO, False),
    ("pending", "vitalicia", None, False),
    # status desconhecido ou nulo: o servidor libera (passo 5 do contrato)
    (None, "anual", FUTURO, True), ("suspenso", "anual", FUTURO, True), ("suspenso", "anual", PASSADO, False),
    ("blocked", "vitalicia", None, False), ("pending", "anual", PASSADO, False),
])
def test_veredito(status, tipo, fim, liberada):
    registro = {"status": status, "license_type": tipo, "end_date": fim and fim.isoformat()}
    assert (verdict_reason(registro, HOJE) == "liberada") is liberada  # a tabela é a do oráculo do servidor
    assert sb.allows(lic(status=status, license_type=tipo, end=fim), HOJE) is liberada


@pytest.mark.parametrize("tipo,inicio,liberada", [
    # fim nulo e início gravado: o servidor calcula o fim (início + período do tipo)
    ("mensal", dt.date(2024, 3, 10), False),
    ("mensal", dt.date(2026, 10, 29), True),    # fim calculado = hoje: ainda vale
    ("mensal", dt.date(2026, 10, 28), False),   # fim calculado = ontem
    ("anual", dt.date(2025, 11, 29), True),
    ("anual", dt.date(2025, 11, 28), False),
    ("mensal", dt.date(2026, 10, 31), True),    # 31/10 + 1 mês = 30/11 (dia limitado ao fim do mês)
    ("vitalicia", dt.date(2001, 1, 1), True),
    ("semanal", dt.date(2001, 1, 1), True),     # tipo desconhecido: sem fim calculado
    ("mensal", None, True),                     # sem início: nada a calcular
])
def test_veredito_com_fim_calculado_pelo_servidor(tipo, inicio, liberada):
    registro = {"status": "active", "license_type": tipo, "end_date": None, "start_date": inicio and inicio.isoformat()}
    assert (verdict_reason(registro, HOJE) == "liberada") is liberada  # a tabela é a do oráculo do servidor
    licenca = lic(license_type=tipo, end=None, start_date=inicio)
    assert sb.allows(licenca, HOJE) is liberada


@pytest.mark.parametrize("tipo,inicio,fim", [
    ("anual ", dt.date(2020, 1, 1), None),          # tipo desconhecido para o servidor: sem fim calculado
    (" mensal", dt.date(2026, 1, 1), None),
    ("anual\t", dt.date(2026, 11, 1), None),
    ("vitalicia ", dt.date(2020, 1, 1), PASSADO),   # não é vitalícia: o fim gravado vale (vencida)
    ("vitalicia ", dt.date(2020, 1, 1), None),
    ("trianual ", dt.date(2020, 1, 1), FUTURO),
    ("anual", dt.date(2020, 1, 1), None),           # sem espaços: fim calculado (vencida)
])
def test_veredito_do_tipo_com_espacos_e_o_do_servidor(tipo, inicio, fim):
    """A listagem traz o tipo como está gravado; o veredito da ferramenta é o do servidor, que compara o
    texto exato. O tipo sem os espaços continua sendo o que um upsert grava (e o que se compara)."""
    item = {"device_id": "L1", "license_type": tipo, "status": "active", "start_date": inicio.isoformat(),
            "end_date": fim and fim.isoformat(), "created_by": "admin"}
    licencas, problemas, _recusadas = sb.parse_licenses([item])
    assert not problemas and licencas["L1"].license_type == tipo.strip()
    assert sb.allows(licencas["L1"], HOJE) is (verdict_reason(item, HOJE) == "liberada")
    # o backup guarda o tipo sem os espaços: o plano dá a ele o veredito do principal
    plan = sb.plan_pair(snap(licencas["L1"]), snap(), HOJE)
    assert plan.parity_mismatches == ()


def test_fim_calculado_com_dia_limitado_ao_mes():
    assert sb.effective_end(lic(license_type="mensal", end=None, start_date=dt.date(2024, 1, 31))) == \
        dt.date(2024, 2, 29)


def test_cada_lado_julgado_pela_sua_data_local():
    """Principal em Brasília (ainda 30/11) e backup em UTC (já 01/12): a licença que vence em 30/11
    vale no principal; o backup precisa reiniciar o período, nunca negar o que o principal libera."""
    relogio = sb.Clock(utc=dt.date(2026, 12, 1), primary=dt.date(2026, 11, 30), backup=dt.date(2026, 12, 1))
    venc = dt.date(2026, 11, 30)
    plan = sb.plan_pair(snap(lic(end=venc)), snap(lic(end=venc)), relogio)
    assert kinds(plan) == [(sb.RENEW, "L1")]
    assert plan.parity_mismatches == ()
    # o inverso: principal já em 01/12 (nega) e backup ainda em 30/11 (libera) → bloqueia no backup
    relogio = sb.Clock(utc=dt.date(2026, 12, 1), primary=dt.date(2026, 12, 1), backup=dt.date(2026, 11, 30))
    plan = sb.plan_pair(snap(lic(end=venc)), snap(lic(end=venc)), relogio)
    assert kinds(plan) == [(sb.BLOCK, "L1")]


@pytest.mark.parametrize("status", [None, "suspensa"])
def test_renovar_ja_deixa_a_licenca_ativa_sem_ativar_de_novo(status):
    """Backup com um status que o servidor libera sem ser 'active' (nulo, desconhecido), no último dia dentro
    da margem de fusos: a renovação (upsert) já grava 'active'. Nada de uma ativação a mais depois dela (com o
    motivo falso "vencida no principal... bloqueada para negar igual") nem de um estado previsto com o status
    de antes, que o servidor não terá."""
    amanha = HOJE + dt.timedelta(days=1)
    relogio = sb.Clock(utc=HOJE, primary=HOJE, backup=HOJE, primary_span=(HOJE, HOJE), backup_span=(HOJE, amanha))
    plan = sb.plan_pair(snap(lic()), snap(lic(status=status, end=HOJE)), relogio)
    assert [(a.kind, a.changes) for a in plan.actions] == [(sb.RENEW, (("end_date", HOJE, dt.date(2027, 11, 29)),))]
    depois = plan.expected["L1"][1]  # o que o plano prevê no backup
    assert depois.status == "active" and sb.allows(depois, amanha)


def test_principal_com_fim_nulo_e_inicio_antigo_bloqueia_o_backup():
    antiga = lic(license_type="mensal", end=None, start_date=dt.date(2024, 3, 10))
    plan = sb.plan_pair(snap(antiga), snap(lic(license_type="mensal")), HOJE)
    assert kinds(plan) == [(sb.BLOCK, "L1")]
    plan = sb.plan_pair(snap(antiga), snap(), HOJE)
    assert kinds(plan) == [(sb.CREATE, "L1"), (sb.BLOCK, "L1")]


def test_plano_e_deterministico_e_ordenado():
    chaves = ["c", "a", "b"]
    plan = sb.plan_pair(snap(*[lic(k, status="blocked") for k in chaves]), snap(), HOJE)
    assert [a.key for a in plan.actions] == ["a", "a", "b", "b", "c", "c"]


def test_normalizacao_como_o_servidor():
    licencas, problemas, _ = sb.parse_licenses([
        {"device_id": "X", "owner_name": "  Ana  ", "cpf": "", "email": None, "address": " ",
         "license_type": "anual", "status": "active", "start_date": "Sat, 28 Nov 2026 00:00:00 GMT",
         "end_date": "2027-11-28", "custom_interval": "60", "features": "core", "created_by": "admin"}])
    x = licencas["X"]
    assert (x.owner_name, x.cpf, x.address, x.custom_interval) == ("Ana", None, None, "60")  # opaco
    assert x.start_date == dt.date(2026, 11, 28) and x.end_date == dt.date(2027, 11, 28)
    assert problemas == []


def test_model_upsert_segue_o_contrato():
    antes = lic(status="blocked", custom_interval=30, features="x")
    depois = sb.model_upsert(antes, lic(owner_name="Novo"), HOJE)
    assert depois.status == "active" and depois.start_date == HOJE
    assert depois.end_date == dt.date(2027, 11, 29)
    assert (depois.custom_interval, depois.features) == (30, "x")  # o upsert de atualização não mexe neles
    novo = sb.model_upsert(None, lic(), HOJE)
    assert (novo.custom_interval, novo.features) == (60, "core")
    assert dataclasses.replace(novo, owner_name="?").owner_name == "?"


def test_device_id_com_barra_nao_e_criado_se_precisaria_de_bloqueio():
    """Com '/', o servidor real (Flask) não acha a rota de bloqueio: criar deixaria liberada no backup."""
    plan = sb.plan_pair(snap(lic("A/1", status="blocked"), lic("B/2")), snap(), HOJE)
    assert kinds(plan) == [(sb.CREATE, "B/2")]  # liberada no principal: criar basta, sem rota por id
    assert ("A/1", "device_id") in {(d[1], d[2]) for d in plan.divergences}
    assert plan.parity_mismatches == ()  # ausente no backup também nega


# ---------------------------------------------------------------------------
# Status comparado como o servidor
# ---------------------------------------------------------------------------

def test_status_com_espaco_no_backup_e_liberado_pelo_servidor_e_corrigido():
    def lic(status):
        return sb.License("S", "Ana", None, None, None, "anual", "admin", status, HOJE, dt.date(2027, 11, 29))
    licencas, _problemas, _recusadas = sb.parse_licenses([{"device_id": "S", "license_type": "anual",
                                                           "owner_name": "Ana", "created_by": "admin",
                                                           "status": "blocked ", "end_date": "2027-11-29"}])
    assert verdict_reason({"status": "blocked ", "license_type": "anual", "end_date": "2027-11-29"},
                          HOJE) == "liberada"  # o servidor compara status == "blocked" exatamente...
    assert sb.allows(licencas["S"], HOJE) is True  # ...e a ferramenta também
    plan = sb.plan_pair(sb.Snapshot("p", {}, {"S": lic("blocked")}),
                        sb.Snapshot("b", {}, {"S": licencas["S"]}), HOJE)
    assert [(a.kind, a.key) for a in plan.actions] == [(sb.BLOCK, "S")]


# ---------------------------------------------------------------------------
# Sumiço do principal: cópia restaurada / listagem cortada × reembolsos (ordem de criação pelos ids locais)
# ---------------------------------------------------------------------------

CEM = [f"K{i:03d}" for i in range(100)]  # K000 a mais antiga (id 1), K099 a mais nova (id 100)


def snap_ids(chaves, ids=None, url="http://x") -> sb.Snapshot:
    """Retrato com os ids locais da listagem (padrão: K000 → 1 ... K099 → 100), da mais nova para a mais antiga."""
    ids = ids or {k: CEM.index(k) + 1 for k in chaves}
    ordem = sorted(chaves, key=lambda k: -ids[k])
    return sb.Snapshot(url, {}, {k: lic(k) for k in ordem}, login_username="admin",
                       server_ids={k: ids[k] for k in ordem})


def estado_com_ids() -> sb.PairState:
    p = snap_ids(CEM)
    b = snap_ids(CEM, {k: 1000 + i for i, k in enumerate(CEM)}, url="http://b")
    plan = sb.plan_pair(p, b, HOJE)
    return sb.next_state(plan, [], None, p, b, "http://x", "http://b")


# (descrição, sumidas do principal, vendas novas no principal depois: chave → id, o que se espera)
CASOS_SUMICO = [
    ("as 8 mais novas juntas → cópia restaurada", CEM[-8:], {}, sb.LossKind.RESTORED),
    ("as 3 mais novas juntas → cópia restaurada", CEM[-3:], {}, sb.LossKind.RESTORED),
    ("as 2 mais novas juntas → reembolsos, mas o par sai com 1 (newest_vanished)", CEM[-2:], {}, None),
    ("a mais nova só, e uma venda nova com o id dela → cópia restaurada (contador de ids voltou)",
     CEM[-1:], {"NOVA": 100}, sb.LossKind.RESTORED),
    ("a mais nova só → reembolso", CEM[-1:], {}, None),
    ("a mais nova só e uma venda nova com id novo → reembolso", CEM[-1:], {"NOVA": 101}, None),
    ("as 5 mais antigas (proxy entregou as 95 primeiras) → listagem cortada", CEM[:5], {}, sb.LossKind.CUT),
    ("4 seguidas no meio → listagem cortada (página que faltou)", CEM[40:44], {}, sb.LossKind.CUT),
    ("3 espalhadas → reembolsos", [CEM[10], CEM[50], CEM[90]], {}, None),
    ("2 vizinhas no meio → reembolsos", CEM[30:32], {}, None),
    ("2 mais antigas → reembolsos", CEM[:2], {}, None),
]


@pytest.mark.parametrize("descricao,sumidas,novas,esperado", CASOS_SUMICO, ids=[c[0] for c in CASOS_SUMICO])
def test_sumico_do_principal_separa_copia_restaurada_e_listagem_cortada_de_reembolsos(descricao, sumidas, novas,
                                                                                       esperado):
    estado = estado_com_ids()
    ids = {k: CEM.index(k) + 1 for k in CEM if k not in sumidas} | novas
    p = snap_ids([k for k in CEM if k not in sumidas] + list(novas), ids)
    b = snap_ids(CEM, {k: 1000 + i for i, k in enumerate(CEM)}, url="http://b")
    plan = sb.plan_pair(p, b, HOJE, estado)
    if esperado is None:  # reembolsos: bloqueados no backup (reversível), o par segue
        assert not plan.halted and plan.loss is None
        assert sorted(a.key for a in plan.actions if a.kind == sb.BLOCK) == sorted(sumidas)
        assert all(a.absence for a in plan.actions if a.kind == sb.BLOCK)
        assert list(plan.newest_vanished) == (sorted(sumidas, reverse=True) if sumidas == CEM[-2:] else [])
    else:  # para: nada gravado, e as sumidas nomeadas da mais nova para a mais antiga
        assert plan.halted and plan.actions == []
        assert (plan.loss.side, plan.loss.kind) == ("principal", esperado)
        assert list(plan.loss.keys) == sorted(sumidas, reverse=True)
        assert plan.loss.reused == tuple(k for k in sumidas if novas.get("NOVA") == CEM.index(k) + 1)


@pytest.mark.parametrize("modo", [sb.Mode.ONE_WAY, sb.Mode.TWO_WAY])
def test_copia_restaurada_para_tambem_no_espelhar_e_no_bidirecional(modo):
    """Com --espelhar ou no bidirecional o sumiço viraria EXCLUSÃO no backup: a mesma regra para o par."""
    estado = estado_com_ids()
    b = snap_ids(CEM, {k: 1000 + i for i, k in enumerate(CEM)}, url="http://b")
    for perdidas in (8, 2):  # lá até as 2 mais novas param: seriam excluídas, não bloqueadas (irreversível)
        p = snap_ids(CEM[:-perdidas])
        plan = sb.plan_pair(p, b, HOJE, estado, sb.PlanOptions(mode=modo, mirror=modo == sb.Mode.ONE_WAY))
        assert plan.halted and plan.loss.kind == sb.LossKind.RESTORED and plan.actions == [], perdidas


def test_sem_ids_no_estado_o_sumico_segue_a_regra_de_antes():
    """Estado gravado por uma versão anterior (sem ids): nada a comparar; vale o limite de exclusões."""
    estado = dataclasses.replace(estado_com_ids(), ids={})
    plan = sb.plan_pair(snap_ids(CEM[:-8]), snap_ids(CEM, url="http://b"), HOJE, estado)
    assert not plan.halted and len(plan.actions) == 8


def test_estado_guarda_ids_e_status_antes_do_nosso_bloqueio(tmp_path):
    estado = estado_com_ids()
    assert estado.ids["K000"] == (1, 1000) and estado.ids["K099"] == (100, 1099)
    p = snap_ids([k for k in CEM if k != "K050"])
    b = snap_ids(CEM, {k: 1000 + i for i, k in enumerate(CEM)}, url="http://b")
    plan = sb.plan_pair(p, b, HOJE, estado)
    assert kinds(plan) == [(sb.BLOCK, "K050")]
    novo = sb.next_state(plan, [sb.Result(a, True) for a in plan.actions], estado, p, b, "http://x", "http://b")
    assert novo.blocked_from == {"K050": "active"}
    assert novo.ids["K050"] == (51, 1050)  # o id que ela tinha no principal continua lembrado
    sb.save_state(str(tmp_path), novo)
    lido, aviso = sb.load_state(str(tmp_path), "http://x", "http://b")
    assert aviso is None and lido.ids == novo.ids and lido.blocked_from == {"K050": "active"}
    # ela volta ao principal (restaurada ou vendida de novo) e é sincronizada: o registro é esquecido
    b2 = dataclasses.replace(b, licenses={**b.licenses, "K050": lic("K050", status="blocked")})
    plan2 = sb.plan_pair(snap_ids(CEM), b2, HOJE, lido)
    depois = sb.next_state(plan2, [sb.Result(a, True) for a in plan2.actions], lido, snap_ids(CEM), b2,
                           "http://x", "http://b")
    assert depois.blocked_from == {}


def test_restaurar_devolve_ao_principal_o_status_de_antes_do_nosso_bloqueio():
    """Restaurar (lados trocados: a origem é o backup): a licença bloqueada por nós volta ao principal
    LIBERADA; uma bloqueada no backup por outro motivo (estorno copiado do principal) volta bloqueada."""
    estado = sb.PairState("http://x", "http://b", 3, 3, set(), {}, blocked_from={"VENDA": "active"})
    backup = snap(lic("VENDA", status="blocked"), lic("ESTORNO", status="blocked"), lic("OK"))
    principal = snap(lic("OK"))
    for forcar in (False, True):
        opcoes = sb.PlanOptions(protect_target=False, only_missing=not forcar, force=forcar)
        plan = sb.plan_pair(backup, principal, HOJE, sb.swap_state(estado), opcoes)
        assert kinds(plan) == [(sb.CREATE, "ESTORNO"), (sb.BLOCK, "ESTORNO"), (sb.CREATE, "VENDA")]
        assert plan.unblocked == ("VENDA",)
        # o backup real continua bloqueado até a próxima sincronização: a previsão não esconde a diferença
        assert plan.expected["VENDA"][0].status == "blocked" and "VENDA" in plan.parity_mismatches
    sem_estado = sb.plan_pair(backup, principal, HOJE, None, sb.PlanOptions(protect_target=False, only_missing=True))
    assert (sb.BLOCK, "VENDA") in kinds(sem_estado) and sem_estado.unblocked == ()
