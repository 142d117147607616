"""Isca para test_segredos.py (não é coletado sozinho: não começa com test_): deixa a senha de administrador
do par no log de saídas, como um vazamento da ferramenta. A varredura do fim da sessão tem de falhar."""

from apoio import anotar_saida


def test_isca_que_deixa_uma_senha_no_log_de_saidas(par):
    anotar_saida("[isca]", 0, f"senha vazada: {par.senha_principal}", "")
