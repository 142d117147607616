"""Servidor de outro vendedor configurado como backup (uma URL copiada e colada por engano): muitas licenças
e usuários, nenhum do principal, e nenhum estado salvo do par. A ferramenta recusa o par antes de qualquer
escrita (código 2, nos dois servidores 0 escritas, contadas no servidor) e nunca sugere copiá-lo para o
principal (`restaurar --de`); `restaurar --de` esse servidor também é recusado. Um backup novo (vazio ou
quase) e um backup que já tem registros do principal seguem sincronizando; os outros backups da mesma
execução também. --aceitar-backup-desconhecido URL é a saída quando é mesmo um backup do vendedor."""

from __future__ import annotations

import pytest
from apoio import (conferir_convergencia, saida, sem_traceback, semear_iguais, semear_licencas,
                   semear_usuarios, so_escritas)

import sincronizar_bancos as sb


def _principal_do_vendedor(par, servidor=None) -> None:
    servidor = servidor or par.principal
    semear_licencas(servidor, 30, prefixo="MINHA")
    semear_usuarios(servidor, ["ana", "bruno"])


def _servidor_de_outro_vendedor(servidor, licencas: int = 400, usuarios: int = 20) -> None:
    semear_licencas(servidor, licencas, prefixo="OUTRO")
    semear_usuarios(servidor, [f"revenda{i:02d}" for i in range(usuarios)])


def _sem_escritas(*servidores) -> None:
    for servidor in servidores:
        assert not so_escritas(servidor.counts), servidor.counts


def _sem_sugestao_de_copiar_para_o_principal(r) -> None:
    assert "restaurar --de" not in saida(r), saida(r)[-3000:]


# ---------------------------------------------------------------------------
# Sincronizar: o par é recusado antes de qualquer escrita
# ---------------------------------------------------------------------------

def test_backup_de_outro_vendedor_e_recusado_antes_de_qualquer_escrita(par):
    _principal_do_vendedor(par)
    _servidor_de_outro_vendedor(par.backup)
    antes_b = dict(par.backup.devices())

    r = par.rodar("--sem-progresso")

    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-4000:]
    _sem_escritas(par.principal, par.backup)
    assert par.backup.devices() == antes_b
    assert "400 licenças e 20 usuários" in r.stdout and "nenhum é do principal" in r.stdout, r.stdout[-3000:]
    assert "não parece ser um backup deste principal" in r.stdout
    assert f"--aceitar-backup-desconhecido {par.backup.url}" in r.stdout  # a saída, quando é mesmo um backup
    _sem_sugestao_de_copiar_para_o_principal(r)


def test_backup_de_outro_vendedor_no_json_codigo_2_e_nenhum_comando_de_restaurar(par):
    _principal_do_vendedor(par)
    _servidor_de_outro_vendedor(par.backup)

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-4000:]
    doc = r.json()
    [pair] = doc["backups"]
    assert doc["codigo_saida"] == 2 and pair["codigo_saida"] == 2
    assert "não parece ser um backup deste principal" in pair["erro"]
    assert "restaurar --de" not in r.stdout
    _sem_escritas(par.principal, par.backup)


def test_backup_de_outro_vendedor_tambem_e_recusado_no_bidirecional_e_no_verificar(par):
    _principal_do_vendedor(par)
    _servidor_de_outro_vendedor(par.backup, licencas=40, usuarios=0)

    for args in (("--bidirecional",), ("verificar",), ("--simular",)):
        r = par.rodar("--sem-progresso", *args)
        sem_traceback(r)
        assert r.codigo == 2, (args, saida(r)[-3000:])
        assert "não parece ser um backup deste principal" in r.stdout, args
        _sem_sugestao_de_copiar_para_o_principal(r)
    _sem_escritas(par.principal, par.backup)
    assert not any(k.startswith("OUTRO") for k in par.principal.devices())


def test_so_o_par_do_backup_estranho_para_os_outros_backups_sincronizam(par_dois_backups):
    par = par_dois_backups
    bom, estranho = par.backups
    _principal_do_vendedor(par)
    _servidor_de_outro_vendedor(estranho, licencas=50, usuarios=3)

    r = par.rodar("--sem-progresso", "--json")

    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-4000:]
    pares = {p["backup"]: p for p in r.json()["backups"]}
    assert pares[bom.url]["codigo_saida"] == 0 and pares[estranho.url]["codigo_saida"] == 2
    assert set(par.principal.devices()) <= set(bom.devices())
    _sem_escritas(par.principal, estranho)
    assert f"restaurar --de {estranho.url}" not in r.stdout


# ---------------------------------------------------------------------------
# restaurar --de um servidor estranho: recusado
# ---------------------------------------------------------------------------

def test_restaurar_de_um_servidor_estranho_e_recusado(par):
    _principal_do_vendedor(par)
    _servidor_de_outro_vendedor(par.backup)

    r = par.rodar("restaurar", "--de", par.backup.url, "--sem-progresso")

    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-4000:]
    assert "não parece ser um backup deste principal" in r.stdout, r.stdout[-3000:]
    _sem_escritas(par.principal, par.backup)
    assert not any(k.startswith("OUTRO") for k in par.principal.devices())
    assert not set(par.principal.users()) & {f"revenda{i:02d}" for i in range(20)}


def test_aceitar_backup_desconhecido_deixa_sincronizar_e_depois_o_estado_basta(par):
    _principal_do_vendedor(par)
    _servidor_de_outro_vendedor(par.backup, licencas=12, usuarios=0)

    r = par.rodar("--sem-progresso", "--aceitar-backup-desconhecido", par.backup.url + "/")

    sem_traceback(r)
    # 1: as 12 licenças só no backup, liberadas lá, sem estado para saber se são vendas ou reembolsos
    assert r.codigo == 1, saida(r)[-4000:]
    assert set(par.principal.devices()) <= set(par.backup.devices())
    assert not so_escritas(par.principal.counts)
    r = par.rodar("--sem-progresso", "--simular")  # o estado salvo do par: não é mais "desconhecido"
    assert r.codigo != 2, saida(r)[-3000:]


def test_aceitar_backup_desconhecido_com_url_que_nao_e_backup_e_erro_de_configuracao(par):
    r = par.rodar("--sem-progresso", "--aceitar-backup-desconhecido", "http://127.0.0.1:9")
    sem_traceback(r)
    assert r.codigo == 2 and "não é um dos backups configurados" in r.stderr, saida(r)
    _sem_escritas(par.principal, par.backup)


# ---------------------------------------------------------------------------
# Regressão: backups que são mesmo do vendedor seguem sincronizando
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("no_backup,codigo", [(0, 0), (9, 1)], ids=["vazio", "poucos_registros_proprios"])
def test_backup_novo_ou_quase_vazio_sincroniza(par, no_backup, codigo):
    _principal_do_vendedor(par)
    semear_licencas(par.backup, no_backup, prefixo="VENDA-NO-BACKUP")

    r = par.rodar("--sem-progresso")

    sem_traceback(r)
    assert r.codigo == codigo, saida(r)[-4000:]  # 1: as vendas só no backup, sem estado (venda ou reembolso?)
    assert "não parece ser um backup" not in r.stdout
    conferir_convergencia(par)


def test_backup_com_registros_do_principal_sincroniza_mesmo_sem_estado(par):
    _principal_do_vendedor(par)
    semear_iguais(par, ["COMUM-1"])
    _servidor_de_outro_vendedor(par.backup, licencas=40, usuarios=0)  # muitos só no backup, mas um em comum

    r = par.rodar("--sem-progresso")

    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-4000:]  # as 40 só no backup, liberadas lá: nunca 0
    assert "não parece ser um backup" not in r.stdout
    conferir_convergencia(par)


def test_usuario_em_comum_tambem_prova_que_e_backup_do_principal(par):
    _principal_do_vendedor(par)
    _servidor_de_outro_vendedor(par.backup, licencas=40, usuarios=0)
    semear_usuarios(par.backup, ["ana"])

    r = par.rodar("--sem-progresso")

    sem_traceback(r)
    assert r.codigo == 1, saida(r)[-4000:]  # as 40 só no backup, liberadas lá: nunca 0
    assert "não parece ser um backup" not in r.stdout


def test_principal_vazio_continua_na_regra_de_perda_de_dados(par):
    _servidor_de_outro_vendedor(par.backup, licencas=40, usuarios=2)

    r = par.rodar("--sem-progresso")

    sem_traceback(r)
    assert r.codigo == 5, saida(r)[-3000:]  # principal vazio: a trava de perda de dados, como antes
    assert "não parece ser um backup" not in r.stdout
    _sem_escritas(par.principal, par.backup)


# ---------------------------------------------------------------------------
# A regra, direto na função
# ---------------------------------------------------------------------------

def _snap(url, licencas=(), usuarios=()):
    lic = {k: sb.License(k, "X", None, None, None, "anual", "admin", "active") for k in licencas}
    return sb.Snapshot(url, {u: sb.User(u, None, "user") for u in usuarios}, lic, login_username="admin")


@pytest.mark.parametrize(("principal", "backup", "estranho"), [
    ((["A"], []), ([f"O{i}" for i in range(10)], []), True),       # 10 registros, nada em comum
    ((["A"], []), ([f"O{i}" for i in range(9)], []), False),       # 9: backup novo com poucas vendas
    ((["A"], []), ([f"O{i}" for i in range(5)], ["u1", "u2", "u3", "u4", "u5"]), True),  # usuários contam
    ((["A"], []), ([f"O{i}" for i in range(20)] + ["A"], []), False),  # uma licença em comum
    ((["A"], ["ana"]), ([f"O{i}" for i in range(20)], ["ana"]), False),  # um usuário em comum
    (([], []), ([f"O{i}" for i in range(20)], []), False),          # principal vazio: regra da perda de dados
    (([], ["ana"]), ([f"O{i}" for i in range(20)], []), True),      # principal só com usuários, nenhum lá
])
def test_regra_do_backup_estranho(principal, backup, estranho):
    p, b = _snap("https://p", *principal), _snap("https://b", *backup)
    assert (sb.foreign_backup(p, b) is not None) is estranho


def test_principal_vazio_e_backup_de_outro_vendedor_nunca_sugere_nem_faz_copia_para_o_principal(par):
    """Revisão: o principal novo (ou que voltou vazio do disco efêmero) com a URL de outro vendedor como backup
    e nenhum estado do par. foreign_backup não olha um principal vazio (fica para a regra da perda de dados), e
    essa regra sugere `restaurar --de <servidor de outro vendedor>`; restaurar também não recusa (o principal
    vazio passa em foreign_backup) e copia 40 licenças e 2 usuários de outro vendedor para o principal."""
    _servidor_de_outro_vendedor(par.backup, licencas=40, usuarios=2)
    r = par.rodar("--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 5, saida(r)[-3000:]  # principal vazio: a trava da perda de dados (não dá para saber se é alheio)
    _sem_escritas(par.principal, par.backup)
    # sem estado do par, a sugestão manda conferir o backup antes, e o comando já diz que ele é aceito sem estado
    parada = next(linha for linha in saida(r).splitlines() if "restaurar --de" in linha)
    assert "não há estado salvo deste par" in parada and "confira" in parada, parada
    assert f"--aceitar-backup-desconhecido {par.backup.url}" in parada, parada
    # o comando que a parada sugere (restaurar --de <esse servidor>) é recusado antes de qualquer escrita
    r2 = par.rodar("restaurar", "--de", par.backup.url, "--sem-progresso")
    sem_traceback(r2)
    assert not [k for k in par.principal.devices() if k.startswith("OUTRO")], saida(r2)[-3000:]
    assert r2.codigo == 2, saida(r2)[-3000:]
    _sem_escritas(par.principal, par.backup)
    assert "--aceitar-backup-desconhecido" in saida(r2)


def test_bidirecional_com_principal_vazio_e_backup_de_outro_vendedor_e_recusado_antes_de_gravar(par):
    """Revisão: no bidirecional sem estado, um principal vazio não cai na trava de perda de dados (é a 'primeira
    sincronização'), e foreign_backup pulava o principal vazio: as 40 licenças e os 2 usuários de outro vendedor
    eram copiados para o principal, com código 0. O par é recusado antes de qualquer escrita (código 2)."""
    _servidor_de_outro_vendedor(par.backup, licencas=40, usuarios=2)
    r = par.rodar("--bidirecional", "--sem-progresso")
    sem_traceback(r)
    assert r.codigo == 2, saida(r)[-3000:]
    _sem_escritas(par.principal, par.backup)
    assert par.principal.devices() == {}
    _sem_sugestao_de_copiar_para_o_principal(r)
