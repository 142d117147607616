"""verificar: só compara (nunca grava) e sai com 1 quando um cliente seria atendido diferente por algum backup."""

from __future__ import annotations


def test_verificar_conta_licenca_liberada_so_no_backup_como_diferenca(par):
    par.principal.add_user("ana", "senha-da-ana-123")
    par.backup.add_user("ana", "senha-da-ana-123")
    for servidor in (par.principal, par.backup):
        servidor.add_device("A-1", owner_name="Igual", created_by="admin")
    par.backup.add_device("SO-B", owner_name="Só no backup", created_by="admin")  # o principal não conhece: nega
    r = par.rodar("verificar", "--sem-progresso")
    assert r.codigo == 1, r.stdout[-3000:]
    assert par.principal.write_count() == 0 and par.backup.write_count() == 0
    assert "SO-B" in r.stdout and "LIBERADA" in r.stdout
    assert "restaurar --de" in r.stdout and "--bloquear-so-no-backup" in r.stdout  # os dois caminhos
    assert "Sincronizando" not in r.stdout  # verificar não sincroniza
    assert "1 usuário encontrado" in r.stdout and "1 licença encontrada" in r.stdout
    # sem a licença só do backup, verificar sai com 0
    par.backup.remove_device("SO-B")
    r = par.rodar("verificar", "--sem-progresso")
    assert r.codigo == 0, r.stdout[-3000:]
