"""O modo contínuo instalado como serviço (agendamento/): unidade systemd, agente launchd do Mac e o lançador
sem console que a tarefa do Windows usa.

- systemd: `systemd-analyze verify` (o verificador do próprio systemd) na unidade como o usuário a deixa
  depois de trocar /opt/protecao pela pasta dele (aqui, uma pasta temporária com um Python de verdade), como
  serviço do usuário e do sistema; as regras de reinício conferidas contra a tabela de códigos do script
  (ExitCode); a parada acima do tempo de uma sequência de escritas em andamento; um modo de cada vez (o
  timer das execuções agendadas e o vigiar nunca ligados juntos).
- launchd: o plist lido pelo plistlib, com as chaves que o launchd usa.
- o comando do ExecStart rodado de verdade (quando o script tem o `vigiar`): sincroniza, e os códigos
  com que ele sai (SIGTERM, trava ocupada, configuração errada) caem nas regras de reinício da unidade.
- lançador: rodado sem saída padrão (sys.stdout e sys.stderr None, como no pythonw.exe) contra servidores de
  referência reais; a saída vai para DADOS_DIR/logs/vigiar.log e o código de saída é o do script.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from apoio import RAIZ, ambiente_limpo, rodar_python, semear_iguais, semear_licencas, texto_anotado, vereditos
import sincronizar_bancos as sb

AGENDAMENTO = RAIZ / "agendamento"
UNIDADE = AGENDAMENTO / "sincronizar-bancos-vigiar.service"
SERVICO_AGENDADO = AGENDAMENTO / "sincronizar-bancos.service"
TIMER = AGENDAMENTO / "sincronizar-bancos.timer"
PLIST = AGENDAMENTO / "com.sincronizar-bancos.vigiar.plist"
LANCADOR = AGENDAMENTO / "rodar_sem_console.py"
DOC = RAIZ / "docs" / "AGENDAMENTO.md"
PASTA_EXEMPLO = "/opt/protecao"  # o que o usuário troca pela pasta dele
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
# Proteções que só valem no serviço do sistema (comentadas na unidade, descomentadas na variante "sistema").
SO_NO_SISTEMA = ("User", "PrivateTmp", "ProtectSystem", "ProtectHome", "ReadWritePaths")


def ler_unidade(caminho: Path) -> dict[str, list[tuple[str, str]]]:
    """Seções da unidade com os pares (chave, valor) em ordem (chaves repetidas, como Environment=, ficam)."""
    secoes: dict[str, list[tuple[str, str]]] = {}
    atual = None
    for linha in caminho.read_text(encoding="utf-8").splitlines():
        linha = linha.strip()
        if not linha or linha.startswith(("#", ";")):
            continue
        if linha.startswith("["):
            atual = secoes.setdefault(linha.strip("[]"), [])
            continue
        chave, valor = linha.split("=", 1)
        atual.append((chave.strip(), valor.strip()))
    return secoes


def valores(secao: list[tuple[str, str]], chave: str) -> list[str]:
    return [v for k, v in secao if k == chave]


def valor(secao: list[tuple[str, str]], chave: str) -> str:
    achados = valores(secao, chave)
    assert len(achados) == 1, (chave, achados)
    return achados[0]


def segundos(texto: str) -> float:
    """Duração do systemd ("2min", "30s", "90") em segundos."""
    unidades = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0.0
    for numero, sufixo in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", texto):
        total += float(numero) * unidades[sufixo]
    return total


def ambiente_da_unidade(servico: list[tuple[str, str]]) -> dict[str, str]:
    return dict(v.split("=", 1) for v in valores(servico, "Environment"))


# ---------------------------------------------------------------------------
# systemd: o verificador do próprio systemd
# ---------------------------------------------------------------------------


def instalar_como_o_usuario(destino: Path, sistema: bool) -> Path:
    """Copia as três unidades trocando /opt/protecao por uma pasta real (com .venv/bin/python executável),
    como a instalação manda. `sistema`: descomenta User= e as proteções e usa multi-user.target."""
    pasta = destino / "protecao"
    (pasta / ".venv" / "bin").mkdir(parents=True)
    (pasta / ".venv" / "bin" / "python").symlink_to(sys.executable)
    (pasta / "dados").mkdir()
    unidades = destino / "unidades"
    unidades.mkdir()
    for origem in (UNIDADE, SERVICO_AGENDADO, TIMER):
        texto = origem.read_text(encoding="utf-8").replace(PASTA_EXEMPLO, str(pasta))
        if sistema:
            for chave in SO_NO_SISTEMA:
                texto = re.sub(rf"^#({chave}=)", r"\1", texto, flags=re.MULTILINE)
            texto = texto.replace("WantedBy=default.target", "WantedBy=multi-user.target")
        (unidades / origem.name).write_text(texto, encoding="utf-8")
    return unidades


def verificar_com_systemd(unidades: Path, sistema: bool, nomes=None) -> subprocess.CompletedProcess:
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze não está instalado (no Debian: apt-get install systemd; o .ci/run instala)")
    nomes = nomes or [UNIDADE.name, SERVICO_AGENDADO.name, TIMER.name]
    comando = [SYSTEMD_ANALYZE] + ([] if sistema else ["--user"]) + ["verify"] + [str(unidades / n) for n in nomes]
    env = dict(os.environ)
    if not sistema:  # o modo --user precisa de uma pasta de execução do usuário (não há sessão aqui)
        execucao = unidades.parent / "run-user"
        execucao.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(execucao)
    return subprocess.run(comando, capture_output=True, text=True, env=env, timeout=120, cwd=unidades)


@pytest.mark.parametrize("sistema", [False, True], ids=["servico-do-usuario", "servico-do-sistema"])
def test_unidade_do_vigiar_passa_no_systemd_analyze_verify(tmp_path, sistema):
    unidades = instalar_como_o_usuario(tmp_path, sistema)
    if sistema:
        texto = (unidades / UNIDADE.name).read_text(encoding="utf-8")
        for chave in SO_NO_SISTEMA:
            assert re.search(rf"^{chave}=", texto, re.MULTILINE), chave
    r = verificar_com_systemd(unidades, sistema)
    saida = r.stdout + r.stderr
    assert r.returncode == 0, saida
    # Nenhum aviso sobre as nossas unidades (o verify só avisa e sai com 0 numa diretiva inválida).
    assert not [linha for linha in saida.splitlines() if "sincronizar-bancos" in linha], saida


@pytest.mark.parametrize(
    "estrago, codigo_zero",
    [
        (lambda t: t.replace("Restart=on-failure", "Restart=quando-falhar"), True),
        (lambda t: t.replace("RestartPreventExitStatus=2", "RestartPreventExitStatus=dois"), True),
        (lambda t: t.replace("/.venv/bin/python ", "/.venv/bin/pyton "), False),
    ],
    ids=["restart-invalido", "codigo-invalido", "python-inexistente"],
)
def test_verify_acusa_copia_estragada_da_unidade(tmp_path, estrago, codigo_zero):
    """O verify tem dentes: uma cópia estragada da unidade é acusada (aviso ou código de saída)."""
    unidades = instalar_como_o_usuario(tmp_path, sistema=False)
    alvo = unidades / UNIDADE.name
    original = alvo.read_text(encoding="utf-8")
    alvo.write_text(estrago(original), encoding="utf-8")
    assert alvo.read_text(encoding="utf-8") != original
    r = verificar_com_systemd(unidades, sistema=False, nomes=[UNIDADE.name])
    saida = r.stdout + r.stderr
    assert UNIDADE.name in saida, saida
    assert (r.returncode == 0) is codigo_zero, saida


# ---------------------------------------------------------------------------
# systemd: o que a unidade promete, contra o que o script faz
# ---------------------------------------------------------------------------


def test_reinicio_segue_os_codigos_de_saida_do_vigiar():
    unidade = ler_unidade(UNIDADE)
    servico = unidade["Service"]
    assert valor(servico, "Restart") == "on-failure"
    nao_reinicia = valor(servico, "RestartPreventExitStatus").split()
    sucesso = valor(servico, "SuccessExitStatus").split()
    # Configuração errada: reiniciar não resolve. Trava ocupada (3): reinicia quando a outra termina.
    assert str(int(sb.ExitCode.CONFIG)) in nao_reinicia
    assert str(int(sb.ExitCode.BUSY)) not in nao_reinicia + sucesso
    for codigo in (sb.ExitCode.SERVER, sb.ExitCode.SAFETY, sb.ExitCode.FAILURES):
        assert str(int(codigo)) not in nao_reinicia + sucesso  # nunca "parada pedida": o vigiar caiu
    # Parada pedida (systemctl stop = SIGTERM; SIGINT) não é falha.
    assert {str(int(sb.ExitCode.TERMINATED)), str(int(sb.ExitCode.INTERRUPTED))} <= set(sucesso)
    assert valor(servico, "KillSignal") == "SIGTERM"
    assert 5 <= segundos(valor(servico, "RestartSec")) <= 120
    assert valor(unidade["Unit"], "StartLimitIntervalSec") == "0"  # nunca desiste de reiniciar
    assert valor(unidade["Install"], "WantedBy") == "default.target"  # serviço do usuário, como o timer


def test_unidade_roda_o_vigiar_na_pasta_da_ferramenta_com_a_pasta_de_dados():
    texto = UNIDADE.read_text(encoding="utf-8")
    servico = ler_unidade(UNIDADE)["Service"]
    pasta = valor(servico, "WorkingDirectory")
    assert pasta == PASTA_EXEMPLO
    assert valor(servico, "ExecStart") == f"{pasta}/.venv/bin/python {pasta}/sincronizar_bancos.py vigiar"
    ambiente = ambiente_da_unidade(servico)
    assert ambiente["DADOS_DIR"] == f"{pasta}/dados"  # o padrão do script: "dados" na pasta dele
    assert ambiente["PYTHONUNBUFFERED"] == "1"
    assert valor(servico, "NoNewPrivileges") == "yes"
    assert valor(servico, "UMask") == "0077"
    # A pasta gravável das proteções do serviço do sistema é a pasta de dados.
    assert re.search(rf"^#ReadWritePaths={re.escape(ambiente['DADOS_DIR'])}$", texto, re.MULTILINE)
    assert re.search(r"^#ProtectSystem=strict$", texto, re.MULTILINE)
    # Mesmo padrão de instalação da unidade agendada: o usuário troca /opt/protecao, e mais nada.
    assert f"WorkingDirectory={PASTA_EXEMPLO}" in SERVICO_AGENDADO.read_text(encoding="utf-8")


def test_parada_espera_a_sequencia_de_escritas_em_andamento():
    """SIGTERM: o vigiar termina a sequência em andamento (até 3 escritas de até SYNC_TIMEOUT cada) antes de
    sair; o systemd e o launchd só matam à força depois disso."""
    sequencia = 3 * sb.SETTING["SYNC_TIMEOUT"].default
    parada = segundos(valor(ler_unidade(UNIDADE)["Service"], "TimeoutStopSec"))
    assert sequencia < parada <= 300
    with PLIST.open("rb") as arquivo:
        assert plistlib.load(arquivo)["ExitTimeOut"] == parada


def test_timer_agendado_e_vigiar_nunca_ligados_juntos():
    """Um modo de cada vez: os dois usariam a mesma trava (um deles sairia sempre com o código 3)."""
    unidade = ler_unidade(UNIDADE)
    assert TIMER.name in valor(unidade["Unit"], "Conflicts").split()  # iniciar um para o outro
    texto = UNIDADE.read_text(encoding="utf-8")
    desligar = texto.index(f"systemctl --user disable --now {TIMER.name}")
    ligar = texto.index(f"systemctl --user enable --now {UNIDADE.name}")
    assert desligar < ligar
    for arquivo in (SERVICO_AGENDADO, TIMER):  # a unidade agendada aponta a alternativa e a regra
        conteudo = arquivo.read_text(encoding="utf-8")
        assert UNIDADE.name in conteudo and "nunca os dois" in conteudo, arquivo.name
    # A documentação manda o mesmo: ligar um modo desliga o outro.
    doc = DOC.read_text(encoding="utf-8")
    assert f"systemctl --user disable --now {TIMER.name}" in doc
    assert f"systemctl --user disable --now {UNIDADE.name}" in doc
    assert f"systemctl --user enable --now {UNIDADE.name}" in doc


# ---------------------------------------------------------------------------
# launchd (Mac)
# ---------------------------------------------------------------------------


def test_agente_launchd_do_vigiar():
    with PLIST.open("rb") as arquivo:
        agente = plistlib.load(arquivo)
    assert agente["Label"] == PLIST.stem
    pasta = agente["WorkingDirectory"]
    assert pasta.startswith("/Users/") and "~" not in pasta  # o launchd não expande "~"
    assert agente["ProgramArguments"] == [f"{pasta}/.venv/bin/python3", f"{pasta}/sincronizar_bancos.py", "vigiar"]
    dados = agente["EnvironmentVariables"]["DADOS_DIR"]
    assert dados == f"{pasta}/dados"
    assert agente["StandardOutPath"] == agente["StandardErrorPath"] == f"{dados}/logs/vigiar.log"
    assert agente["RunAtLoad"] is True
    assert agente["KeepAlive"] == {"SuccessfulExit": False}  # reinicia quando sai com código diferente de 0
    reinicio = segundos(valor(ler_unidade(UNIDADE)["Service"], "RestartSec"))
    assert agente["ThrottleInterval"] == reinicio  # mesmo espaço entre reinícios do systemd
    assert agente["Umask"] == 0o077
    texto = PLIST.read_text(encoding="utf-8")
    assert f"launchctl bootout gui/$(id -u)/{agente['Label']}" in texto
    assert f"launchctl bootstrap gui/$(id -u) ~/Library/LaunchAgents/{PLIST.name}" in texto


# ---------------------------------------------------------------------------
# Lançador sem console (a tarefa contínua do Windows roda pythonw.exe)
# ---------------------------------------------------------------------------

SEM_CONSOLE = """\
import runpy, sys
sys.stdout = sys.stderr = None  # como no pythonw.exe: sem saída padrão
sys.argv = [{lancador!r}] + sys.argv[1:]
runpy.run_path({lancador!r}, run_name="__main__")
"""


def rodar_sem_console(tmp_path: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    programa = tmp_path / "como_pythonw.py"
    programa.write_text(SEM_CONSOLE.format(lancador=str(LANCADOR)), encoding="utf-8")
    return texto_anotado(rodar_python(programa, *args, env=env, cwd=tmp_path, timeout=120), "[sem console]")


def test_lancador_sem_console_grava_a_saida_no_log_com_o_codigo_do_script(par, tmp_path):
    semear_iguais(par, ["VIGIA-1", "VIGIA-2"])
    r = rodar_sem_console(tmp_path, "verificar", env=par.ambiente())
    log = par.dados / "logs" / "vigiar.log"
    assert r.returncode == sb.ExitCode.OK, log.read_text(encoding="utf-8") if log.exists() else r
    assert r.stdout == "" and r.stderr == ""  # sem console, nada na tela: tudo no log
    texto = log.read_text(encoding="utf-8")
    assert "INÍCIO: sincronizar_bancos.py verificar sem console" in texto
    assert par.backup.url in texto  # o relatório do script, linha a linha
    assert f"FIM: código de saída 0 ({sb.ExitCode.OK.meaning})" in texto
    assert "Traceback" not in texto
    for senha in (par.senha_principal, par.senhas_backup):
        assert senha not in texto
    if os.name == "posix":
        assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_lancador_sem_console_explica_erro_de_configuracao_no_log(tmp_path):
    dados = tmp_path / "dados"
    r = rodar_sem_console(tmp_path, "verificar", "--env", str(tmp_path / "nao-existe.env"),
                          env=ambiente_limpo(DADOS_DIR=str(dados)))
    assert r.returncode == sb.ExitCode.CONFIG
    texto = (dados / "logs" / "vigiar.log").read_text(encoding="utf-8")
    assert r.stdout == "" and r.stderr == ""
    assert "ERRO    ❌ Configuração: Arquivo de configuração não encontrado" in texto
    assert f"FIM: código de saída 2 ({sb.ExitCode.CONFIG.meaning})" in texto
    assert "Traceback" not in texto


# ---------------------------------------------------------------------------
# A unidade contra o programa de verdade: o comando do ExecStart, os códigos com que ele sai
# ---------------------------------------------------------------------------


def _tem_vigiar() -> bool:
    try:
        sb.build_parser().parse_known_args(["vigiar"])
    except (SystemExit, sb.OptionError):
        return False
    return True


def comando_da_unidade(par) -> tuple[list[str], dict[str, str], Path]:
    """argv, ambiente e pasta do ExecStart, com /opt/protecao trocado por esta pasta e o Python dos testes."""
    servico = ler_unidade(UNIDADE)["Service"]
    argv = valor(servico, "ExecStart").split()
    assert argv[0] == f"{PASTA_EXEMPLO}/.venv/bin/python"
    argv = [sys.executable] + [a.replace(PASTA_EXEMPLO, str(RAIZ)) for a in argv[1:]]
    env = par.ambiente(**{k: v.replace(f"{PASTA_EXEMPLO}/dados", str(par.dados))
                          for k, v in ambiente_da_unidade(servico).items()})
    return argv, env, Path(valor(servico, "WorkingDirectory").replace(PASTA_EXEMPLO, str(RAIZ)))


@pytest.mark.skipif(not _tem_vigiar(), reason="o comando vigiar ainda não existe neste sincronizar_bancos.py")
@pytest.mark.timeout(180)
def test_comando_da_unidade_sincroniza_e_sai_com_os_codigos_que_ela_espera(par):
    """O ExecStart da unidade, rodado como o systemd roda: leva uma venda ao backup; SIGTERM sai com um código
    de SuccessExitStatus; um segundo (trava ocupada) sai com uma falha que é reiniciada; configuração errada sai
    com um código de RestartPreventExitStatus."""
    servico = ler_unidade(UNIDADE)["Service"]
    sucesso = {int(c) for c in valor(servico, "SuccessExitStatus").split()}
    nao_reinicia = {int(c) for c in valor(servico, "RestartPreventExitStatus").split()}
    argv, env, pasta = comando_da_unidade(par)
    assert env["DADOS_DIR"] == str(par.dados)
    semear_licencas(par.principal, 3, prefixo="VIGIA")
    processo = subprocess.Popen(argv, cwd=pasta, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, encoding="utf-8")
    try:
        prazo = time.monotonic() + 90
        while time.monotonic() < prazo and len(vereditos(par.backup)) < 3:
            time.sleep(0.2)
        assert len(vereditos(par.backup)) == 3  # o primeiro ciclo levou as vendas ao backup
        segundo = subprocess.run(argv, cwd=pasta, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                                 text=True, encoding="utf-8", timeout=60)
        # Trava ocupada: tem de ser uma falha que o systemd repete depois de RestartSec (com 0, ou um código de
        # SuccessExitStatus/RestartPreventExitStatus, o serviço ficaria parado quando a outra execução acabasse).
        assert segundo.returncode != 0, segundo.stdout + segundo.stderr
        assert segundo.returncode not in nao_reinicia | sucesso, segundo.stdout + segundo.stderr
        processo.send_signal(signal.SIGTERM)
        saida, _ = processo.communicate(timeout=120)
    finally:
        if processo.poll() is None:
            processo.kill()
            processo.communicate()
    assert processo.returncode in sucesso, saida  # parada pedida: o systemd não reinicia nem marca falha
    assert processo.returncode == sb.ExitCode.TERMINATED
    sem_principal = {k: v for k, v in env.items() if k != "SERVIDOR_PRINCIPAL"}
    errado = subprocess.run(argv, cwd=pasta, env={**sem_principal, "SERVIDOR_PRINCIPAL": ""},
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert errado.returncode in nao_reinicia, errado.stdout + errado.stderr
