"""Testes do sincronizar_automatico.py com processos reais (sem mocks).

Cada teste escreve um sincronizar_bancos.py falso numa pasta temporária e o
passa ao invólucro com --script (ou copia o invólucro para o lado dele). O
comportamento do falso em cada execução vem de ``plano.json``; ele conta as
execuções em ``contador.txt`` e registra argumentos, pasta e horário em
``chamadas.jsonl``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apoio import RAIZ, SCRIPT, WRAPPER, ServidorStub, ctrl_c_no_padrao, enviar, rodar_python, texto_anotado

POSIX = os.name == "posix"

FILHO_FALSO = r'''
import json, os, subprocess, sys, time
from datetime import datetime, timedelta

aqui = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(aqui, "plano.json"), encoding="utf-8") as f:
    plano = json.load(f)
contador = os.path.join(aqui, "contador.txt")
n = 1
if os.path.exists(contador):
    with open(contador) as f:
        n = int(f.read()) + 1
with open(contador, "w") as f:
    f.write(str(n))
passos = plano["passos"]
passo = passos[min(n, len(passos)) - 1]
with open(os.path.join(aqui, "chamadas.jsonl"), "a", encoding="utf-8") as f:
    f.write(json.dumps({"n": n, "argv": sys.argv[1:], "cwd": os.getcwd(), "t": time.time()}) + "\n")

for linha in passo.get("imprimir", []):
    print(linha, flush=True)
for linha in passo.get("imprimir_erro", []):
    print(linha, file=sys.stderr, flush=True)

if "resumo" in passo:
    agora = datetime.now().astimezone()
    if passo.get("resumo_velho"):
        agora = agora - timedelta(days=1)
    resumo = {"versao": 1, "inicio": agora.isoformat(), "fim": agora.isoformat(),
              "codigo_saida": passo.get("codigo", 0)}
    resumo.update(passo["resumo"])
    destino = plano["arquivo_resumo"]
    os.makedirs(os.path.dirname(destino), exist_ok=True)
    with open(destino + ".tmp", "w", encoding="utf-8") as f:
        json.dump(resumo, f, ensure_ascii=False)
    os.replace(destino + ".tmp", destino)

if passo.get("neto"):
    codigo_neto = "import time; time.sleep(60)"
    if passo.get("neto_teimoso"):  # ignora SIGTERM: só SIGKILL o encerra
        codigo_neto = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    # neto_fora_do_grupo: numa sessão própria, longe do grupo que o invólucro encerra (como um órfão no Windows)
    fora = bool(passo.get("neto_fora_do_grupo"))
    neto = subprocess.Popen([sys.executable, "-c", codigo_neto], start_new_session=fora)
    with open(os.path.join(aqui, "netos.txt"), "a") as f:
        f.write(str(neto.pid) + "\n")
if passo.get("pendurar"):
    print("pendurado...", flush=True)
    time.sleep(60)
if passo.get("sinal"):
    os.kill(os.getpid(), 9)
sys.exit(passo.get("codigo", 0))
'''

SERVIDORES = [
    {"papel": "principal", "url": "https://principal.exemplo.test", "ok": True, "erro": None},
    {"papel": "backup", "url": "https://backup.exemplo.test", "ok": False, "erro": "tempo esgotado ao conectar"},
]


# ---------------------------------------------------------------------------
# Auxiliares
# ---------------------------------------------------------------------------


class Projeto:
    """Pasta com um sincronizar_bancos.py falso."""

    def __init__(self, pasta: Path, passos, dados: Path | None = None) -> None:
        self.pasta = pasta
        self.pasta.mkdir(parents=True, exist_ok=True)
        self.script = pasta / "sincronizar_bancos.py"
        self.script.write_text(FILHO_FALSO, encoding="utf-8")
        self.dados = dados or (pasta / "dados")
        self.plano(passos)

    def plano(self, passos) -> None:
        (self.pasta / "plano.json").write_text(
            json.dumps({"passos": passos, "arquivo_resumo": str(self.dados / "ultima_execucao.json")}),
            encoding="utf-8",
        )

    @property
    def contador(self) -> int:
        arquivo = self.pasta / "contador.txt"
        return int(arquivo.read_text()) if arquivo.exists() else 0

    @property
    def chamadas(self):
        arquivo = self.pasta / "chamadas.jsonl"
        if not arquivo.exists():
            return []
        return [json.loads(ln) for ln in arquivo.read_text(encoding="utf-8").splitlines() if ln.strip()]

    @property
    def netos(self):
        arquivo = self.pasta / "netos.txt"
        if not arquivo.exists():
            return []
        return [int(ln) for ln in arquivo.read_text().split()]

    @property
    def log(self) -> Path:
        return self.dados / "logs" / "sincronizacao.log"

    def texto_log(self) -> str:
        return self.log.read_text(encoding="utf-8")


def ambiente_base(**extras) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SYNC_")
        and k not in ("DADOS_DIR", "ADMIN_PASSWORD", "PRINCIPAL_ADMIN_PASSWORD", "BACKUP_ADMIN_PASSWORD",
                      "PAINEL_TOKEN")
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONIOENCODING"] = "utf-8"
    env.update({k: str(v) for k, v in extras.items()})
    return env


def rodar(projeto: Projeto | None, *args, env=None, cwd=None, com_script=True, timeout=60):
    argumentos = ["--script", str(projeto.script)] if com_script and projeto is not None else []
    argumentos += [str(a) for a in args]
    resultado = rodar_python(WRAPPER, *argumentos, env=env if env is not None else ambiente_base(),
                             cwd=str(cwd) if cwd else None, timeout=timeout)
    resultado.saida = resultado.stdout.decode("utf-8", errors="replace")
    resultado.erro = resultado.stderr.decode("utf-8", errors="replace")
    return resultado


def processo_vivo(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if os.path.isdir("/proc"):
        try:
            with open(f"/proc/{pid}/stat") as arquivo:
                estado = arquivo.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return estado not in ("Z", "X")  # zumbi ainda não recolhido = morto
    return True


def esperar_morte(pids, limite=5.0) -> list:
    fim = time.monotonic() + limite
    vivos = list(pids)
    while vivos and time.monotonic() < fim:
        vivos = [p for p in vivos if processo_vivo(p)]
        if vivos:
            time.sleep(0.05)
    return vivos


def sem_traceback(resultado) -> None:
    assert "Traceback" not in resultado.saida
    assert "Traceback" not in resultado.erro


def contar_cabecalhos(texto: str) -> tuple[int, int]:
    return texto.count("===== INÍCIO da sincronização automática"), texto.count(
        "===== FIM da sincronização automática"
    )


@pytest.fixture
def webhook():
    """Servidor HTTP local que guarda os POSTs recebidos (responde 204)."""
    token = secrets.token_hex(12)
    with ServidorStub({("POST", "*"): lambda h: enviar(h, 204)}) as stub:
        yield f"{stub.url}/api/webhooks/{token}", stub.pedidos


def carga(pedido) -> dict:
    return json.loads(pedido["corpo"].decode("utf-8"))


# ---------------------------------------------------------------------------
# Testes
# ---------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_sucesso_roda_uma_vez_e_nao_avisa(tmp_path, webhook):
    url, pedidos = webhook
    projeto = Projeto(
        tmp_path / "proj",
        [{"codigo": 0, "imprimir": ["✅ Sincronização concluída!"],
          "resumo": {"mensagem": "Tudo em paridade.", "servidores": SERVIDORES[:1]}}],
    )
    r = rodar(projeto, "--espera-inicial", "0.05", env=ambiente_base(SYNC_WEBHOOK_URL=url))
    assert r.returncode == 0, r.saida + r.erro
    assert projeto.contador == 1
    assert pedidos == []
    texto = projeto.texto_log()
    assert contar_cabecalhos(texto) == (1, 1)
    assert "✅ Sincronização concluída!" in texto
    assert "código de saída 0" in texto
    assert "Tudo em paridade." in texto
    assert "✅ Sincronização concluída!" in r.saida  # eco na saída padrão
    assert Path(projeto.chamadas[0]["cwd"]).resolve() == projeto.pasta.resolve()  # roda na pasta do script
    sem_traceback(r)


@pytest.mark.timeout(120)
def test_codigo_4_repete_com_espera_crescente_e_avisa_uma_vez(tmp_path, webhook):
    url, pedidos = webhook
    projeto = Projeto(
        tmp_path / "proj",
        [{"codigo": 4, "imprimir": ["Servidor backup não respondeu"],
          "resumo": {"mensagem": "Backup inacessível: tempo esgotado.", "servidores": SERVIDORES}}],
    )
    inicio = time.monotonic()
    r = rodar(
        projeto, "--tentativas", "3", "--espera-inicial", "0.2",
        env=ambiente_base(SYNC_WEBHOOK_URL=url),
    )
    duracao = time.monotonic() - inicio
    assert r.returncode == 4, r.saida + r.erro
    assert projeto.contador == 3
    horarios = [c["t"] for c in projeto.chamadas]
    assert horarios[1] - horarios[0] >= 0.2 * 0.75
    assert horarios[2] - horarios[1] >= 0.4 * 0.75  # dobra a cada tentativa (±25%)
    assert duracao < 20
    texto = projeto.texto_log()
    assert texto.count("nova tentativa em") == 2
    assert contar_cabecalhos(texto) == (1, 1)
    assert "tentativas 3 | código de saída 4" in texto

    assert len(pedidos) == 1
    assert pedidos[0]["cabecalhos"].get("Content-Type", "").startswith("application/json")
    assert "Python-urllib" not in pedidos[0]["cabecalhos"].get("User-Agent", "")
    dados = carga(pedidos[0])
    assert dados["codigo_saida"] == 4
    assert dados["tentativas"] == 3
    assert dados["host"] == socket.gethostname()
    assert dados["content"] == dados["text"]
    assert dados["servidores"] == SERVIDORES
    assert "https://principal.exemplo.test" in dados["text"]
    assert "https://backup.exemplo.test" in dados["text"]
    assert "Backup inacessível: tempo esgotado." in dados["text"]
    assert "tempo esgotado ao conectar" in dados["text"]
    assert len(dados["content"]) <= 2000  # limite do Discord
    assert "aviso de falha enviado ao webhook" in texto
    sem_traceback(r)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("codigo", [1, 2, 3, 5])
def test_codigos_que_nao_se_resolvem_nao_sao_repetidos(tmp_path, webhook, codigo):
    url, pedidos = webhook
    projeto = Projeto(tmp_path / "proj", [{"codigo": codigo, "imprimir": [f"falhou com {codigo}"]}])
    inicio = time.monotonic()
    r = rodar(projeto, "--tentativas", "3", "--espera-inicial", "40", env=ambiente_base(SYNC_WEBHOOK_URL=url))
    assert r.returncode == codigo
    assert projeto.contador == 1
    assert time.monotonic() - inicio < 25  # a espera mínima seria 30 s (40 - 25% de variação)
    assert "nova tentativa em" not in projeto.texto_log()
    assert "sem nova tentativa" in projeto.texto_log()
    assert len(pedidos) == 1
    dados = carga(pedidos[0])
    assert dados["codigo_saida"] == codigo
    assert dados["tentativas"] == 1
    assert dados["servidores"] == []
    # Sem ultima_execucao.json: o aviso traz as últimas linhas da saída.
    assert f"falhou com {codigo}" in dados["text"]
    sem_traceback(r)


@pytest.mark.timeout(120)
def test_codigo_4_e_depois_sucesso(tmp_path, webhook):
    url, pedidos = webhook
    projeto = Projeto(tmp_path / "proj", [{"codigo": 4}, {"codigo": 0}])
    r = rodar(projeto, "--tentativas", "3", "--espera-inicial", "0.05", env=ambiente_base(SYNC_WEBHOOK_URL=url))
    assert r.returncode == 0
    assert projeto.contador == 2
    assert pedidos == []
    assert "tentativas 2 | código de saída 0" in projeto.texto_log()


@pytest.mark.timeout(120)
def test_travado_e_encerrado_no_tempo_limite_com_os_netos_e_repetido(tmp_path, webhook):
    url, pedidos = webhook
    projeto = Projeto(tmp_path / "proj", [{"neto": True, "neto_teimoso": True, "pendurar": True}])
    inicio = time.monotonic()
    r = rodar(
        projeto, "--timeout-total", "1.5", "--tentativas", "2", "--espera-inicial", "0.1",
        env=ambiente_base(SYNC_WEBHOOK_URL=url),
    )
    duracao = time.monotonic() - inicio
    assert r.returncode == 4, r.saida + r.erro
    assert projeto.contador == 2
    assert duracao < 25
    texto = projeto.texto_log()
    assert texto.count("tempo limite de 1.5 s esgotado") == 2
    assert "pendurado..." in texto
    if POSIX:
        netos = projeto.netos
        assert len(netos) == 2
        assert esperar_morte(netos) == [], "processo neto continuou vivo depois do tempo limite"
    assert len(pedidos) == 1
    dados = carga(pedidos[0])
    assert dados["codigo_saida"] == 4
    assert dados["tentativas"] == 2
    assert "tempo limite" in dados["text"]
    sem_traceback(r)


@pytest.mark.timeout(120)
def test_processo_deixado_fora_do_alcance_nao_prende_o_involucro(tmp_path):
    """O filho termina com 0, mas um processo que ele abriu (fora do grupo encerrável: numa sessão própria, ou
    órfão no Windows, onde o taskkill /T não o acha sem o pai) segue vivo por 60 s segurando a saída. O
    invólucro não pode esperar por ele: antes, ficava preso até o neto sair (fechar o pipe aguarda a leitura)."""
    projeto = Projeto(tmp_path / "proj", [{"neto": True, "neto_fora_do_grupo": True, "imprimir": ["feito"]}])
    inicio = time.monotonic()
    try:
        r = rodar(projeto, "--tentativas", "1", timeout=90)
        duracao = time.monotonic() - inicio
    finally:
        for pid in projeto.netos:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL if POSIX else signal.SIGTERM)
    assert r.returncode == 0, r.saida + r.erro
    assert duracao < 30, f"o invólucro esperou {duracao:.0f} s pelo processo deixado para trás"
    assert len(projeto.netos) == 1
    texto = projeto.texto_log()
    assert "feito" in texto
    assert "continua ativo e segura a saída" in texto
    assert "código de saída 0" in texto
    sem_traceback(r)


@pytest.mark.skipif(not POSIX, reason="sinais POSIX")
@pytest.mark.timeout(120)
def test_filho_morto_por_sinal_vira_codigo_4(tmp_path):
    projeto = Projeto(tmp_path / "proj", [{"sinal": True}])
    r = rodar(projeto, "--tentativas", "1")
    assert r.returncode == 4
    assert "encerrado pelo sinal 9" in projeto.texto_log()


@pytest.mark.timeout(120)
def test_saida_fora_do_terminal_sai_em_utf8_como_a_do_script(tmp_path):
    """Fora de um terminal (pipe, arquivo), o Python do Windows escreve na página de código local (cp1252): o
    invólucro trocava ✅ e ❌ por '?', e o sincronizar_bancos.py, no mesmo lugar, escreve UTF-8. Aqui a
    página local é imitada com PYTHONIOENCODING=cp1252 (visto sob o Wine com o Python oficial do Windows)."""
    projeto = Projeto(tmp_path / "proj", [{"imprimir": ["✅ Sincronização concluída!", "❌ backup com falha"]}])
    r = rodar(projeto, "--tentativas", "1", env=ambiente_base(PYTHONIOENCODING="cp1252"))
    assert r.returncode == 0, r.saida + r.erro
    saida = r.stdout.decode("utf-8")  # UnicodeDecodeError se saísse em cp1252 (o 'á' de [automático])
    assert "✅ Sincronização concluída!" in saida and "❌ backup com falha" in saida
    assert "[automático]" in saida and "?" not in saida


@pytest.mark.timeout(120)
def test_log_um_cabecalho_por_execucao_e_nenhum_segredo(tmp_path, webhook):
    url, pedidos = webhook
    senha = "S3nh@-" + secrets.token_urlsafe(16)
    token_painel = secrets.token_hex(20)
    senha_backup = secrets.token_urlsafe(12)
    bearer = secrets.token_urlsafe(24)
    projeto = Projeto(
        tmp_path / "proj",
        [{
            "codigo": 1,
            "imprimir": [
                f"olá, a senha é {senha}",
                f"token do painel={token_painel}",
                f"Authorization: Bearer {bearer}",
                f"webhook: {url}",
                f"login em https://admin:{senha_backup}@backup.exemplo.test/admin/login",
            ],
            "imprimir_erro": [f"erro com {senha} e {senha_backup}"],
            "resumo": {
                "mensagem": f"falhou; senha {senha}",
                "servidores": [{"papel": "backup", "url": "https://backup.exemplo.test", "ok": False,
                                "erro": f"401 com token {token_painel}"}],
            },
        }],
    )
    # PAINEL_TOKEN e BACKUP_ADMIN_PASSWORD só no .env ao lado do script.
    (projeto.pasta / ".env").write_text(
        f"PAINEL_TOKEN={token_painel}\nBACKUP_ADMIN_PASSWORD='{senha_backup}'\n", encoding="utf-8"
    )
    env = ambiente_base(ADMIN_PASSWORD=senha, SYNC_WEBHOOK_URL=url)
    r1 = rodar(projeto, "--tentativas", "1", env=env)
    r2 = rodar(projeto, "--tentativas", "1", env=env)
    assert r1.returncode == r2.returncode == 1

    texto = projeto.texto_log()
    assert contar_cabecalhos(texto) == (2, 2)
    assert "olá, a senha é ***" in texto  # UTF-8 preservado
    assert "Bearer ***" in texto
    assert len(pedidos) == 2
    lugares = {
        "log": texto,
        "saída 1": r1.saida + r1.erro,
        "saída 2": r2.saida + r2.erro,
        "webhook": "".join(p["corpo"].decode("utf-8") for p in pedidos),
    }
    token_url = url.rsplit("/", 1)[1]
    for nome, conteudo in lugares.items():
        for segredo in (senha, token_painel, senha_backup, bearer, token_url):
            assert segredo not in conteudo, f"segredo apareceu em {nome}"
    dados = carga(pedidos[0])
    assert dados["servidores"][0]["erro"] == "401 com token ***"
    assert "falhou; senha ***" in dados["text"]


@pytest.mark.timeout(120)
def test_resumo_desatualizado_nao_e_usado(tmp_path, webhook):
    url, pedidos = webhook
    projeto = Projeto(
        tmp_path / "proj",
        [{"codigo": 2, "imprimir": ["ADMIN_PASSWORD não definida no .env"],
          "resumo": {"mensagem": "MENSAGEM ANTIGA", "servidores": SERVIDORES}, "resumo_velho": True}],
    )
    r = rodar(projeto, env=ambiente_base(SYNC_WEBHOOK_URL=url))
    assert r.returncode == 2
    dados = carga(pedidos[0])
    assert "MENSAGEM ANTIGA" not in dados["text"]
    assert dados["servidores"] == []
    assert "ADMIN_PASSWORD não definida no .env" in dados["text"]
    assert "ausente ou desatualizado" in projeto.texto_log()


def _instalar(pasta: Path, *arquivos: Path) -> None:
    """Copia os arquivos do projeto para uma pasta de instalação (como o usuário faria)."""
    pasta.mkdir(parents=True, exist_ok=True)
    for arquivo in arquivos:
        shutil.copy(arquivo, pasta / arquivo.name)


@pytest.mark.timeout(180)
def test_funciona_de_outra_pasta_de_trabalho_com_dados_dir_relativo(tmp_path):
    pasta = tmp_path / "C_protecao"
    _instalar(pasta, WRAPPER, SCRIPT)  # sem --script: usa o vizinho de verdade
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        porta = s.getsockname()[1]  # fechada depois do with: servidor fora do ar
    (pasta / ".env").write_text(
        f"SERVIDOR_PRINCIPAL=http://127.0.0.1:{porta}\nSERVIDOR_BACKUP=http://127.0.0.1:{porta + 1}\n"
        "ADMIN_USER=admin\nADMIN_PASSWORD=senha-qualquer\nSYNC_ESPERA_DESPERTAR=0\nSYNC_TENTATIVAS_HTTP=0\n"
        "DADOS_DIR=estado\nSYNC_TENTATIVAS=2\nSYNC_ESPERA_INICIAL=0.05\nSYNC_TIMEOUT_TOTAL=30\n",
        encoding="utf-8",
    )
    outra = tmp_path / "outra_pasta"
    outra.mkdir()
    r = rodar_python(pasta / WRAPPER.name, env=ambiente_base(), cwd=outra, timeout=60)
    assert r.returncode == 4, r.stdout.decode() + r.stderr.decode()
    log = (pasta / "estado" / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert "tentativa 2 de 2" in log  # SYNC_TENTATIVAS do .env
    assert (pasta / "estado" / "ultima_execucao.json").is_file()  # o filho gravou na mesma pasta
    assert "ausente ou desatualizado" not in log
    assert not (pasta / "dados").exists()
    assert list(outra.iterdir()) == []

    # O ambiente vence o .env; variável vazia conta como não definida (vale o .env).
    r = rodar_python(pasta / WRAPPER.name, env=ambiente_base(SYNC_TENTATIVAS=1, DADOS_DIR=""), cwd=outra, timeout=60)
    assert r.returncode == 4
    log = (pasta / "estado" / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert "tentativa 1 de 1" in log
    assert not (pasta / "dados").exists()


@pytest.mark.timeout(120)
def test_resumo_de_tentativa_anterior_nao_nomeia_servidor_errado(tmp_path, webhook):
    """A 2ª tentativa cai sem gravar resumo: o aviso não pode culpar o backup da 1ª."""
    url, pedidos = webhook
    culpado_antigo = {"papel": "backup", "url": "https://backup-a.exemplo.test", "ok": False,
                      "erro": "backup A não respondeu"}
    projeto = Projeto(
        tmp_path / "proj",
        [{"codigo": 4, "resumo": {"mensagem": "Backup A inacessível.",
                                  "servidores": [SERVIDORES[0], culpado_antigo]}},
         {"codigo": 4, "imprimir": ["o principal caiu agora"]}],
    )
    r = rodar(projeto, "--tentativas", "2", "--espera-inicial", "0.01",
              env=ambiente_base(SYNC_WEBHOOK_URL=url))
    assert r.returncode == 4
    assert projeto.contador == 2
    horarios = [c["t"] for c in projeto.chamadas]
    assert horarios[1] - horarios[0] < 2  # dentro da antiga tolerância de datas de 2 s
    dados = carga(pedidos[0])
    assert dados["servidores"] == [] and dados["falhas"] == []
    assert "backup-a" not in dados["text"] and "Backup A" not in dados["text"]
    assert "o principal caiu agora" in dados["text"]
    assert "ausente ou desatualizado após a tentativa 2" in projeto.texto_log()


@pytest.mark.timeout(120)
def test_aviso_diz_quais_servidores_falharam(tmp_path, webhook):
    url, pedidos = webhook
    projeto = Projeto(tmp_path / "proj", [{"codigo": 4, "resumo": {"mensagem": "x", "servidores": SERVIDORES}}])
    r = rodar(projeto, "--tentativas", "1", env=ambiente_base(SYNC_WEBHOOK_URL=url))
    assert r.returncode == 4
    dados = carga(pedidos[0])
    assert dados["falhas"] == [SERVIDORES[1]]
    linha = next(ln for ln in dados["text"].splitlines() if ln.startswith("Com falha:"))
    assert "https://backup.exemplo.test" in linha and "principal" not in linha


@pytest.mark.timeout(120)
def test_execucoes_sobrepostas_a_segunda_sai_com_3_sem_rodar(tmp_path, webhook):
    url, pedidos = webhook
    projeto = Projeto(tmp_path / "proj", [{"pendurar": True}])
    primeira = subprocess.Popen(
        [sys.executable, str(WRAPPER), "--script", str(projeto.script), "--timeout-total", "30"],
        env=ambiente_base(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        limite = time.monotonic() + 15
        while projeto.contador == 0 and time.monotonic() < limite:
            time.sleep(0.05)
        assert projeto.contador == 1, "a primeira execução não iniciou o filho"
        inicio = time.monotonic()
        r = rodar(projeto, "--tentativas", "3", "--espera-inicial", "40", env=ambiente_base(SYNC_WEBHOOK_URL=url))
        assert r.returncode == 3
        assert time.monotonic() - inicio < 25  # a espera mínima seria 30 s (40 - 25% de variação)
        assert projeto.contador == 1  # a segunda não rodou o filho
        assert "outra execução do sincronizar_automatico.py já está em andamento" in r.erro
        assert carga(pedidos[0])["codigo_saida"] == 3
    finally:
        if POSIX:
            primeira.terminate()
        else:  # TerminateProcess mataria só o invólucro, e o filho pendurado (outro grupo) ficaria órfão
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(primeira.pid)], capture_output=True, timeout=30)
            primeira.kill()  # se o taskkill não pôde (o do Wine não tem /T), ao menos o invólucro
        primeira.wait(timeout=20)
    # Com a primeira encerrada, a trava é liberada.
    projeto.plano([{"codigo": 0}])
    (projeto.pasta / "contador.txt").unlink()
    assert rodar(projeto).returncode == 0
    assert projeto.contador == 1
    texto = projeto.texto_log()
    # No Windows a primeira é morta à força (taskkill /F): ela não grava o FIM dela.
    assert contar_cabecalhos(texto) == ((3, 3) if POSIX else (3, 2))


@pytest.mark.timeout(120)
def test_sem_o_sincronizar_bancos_ao_lado_da_codigo_2(tmp_path):
    pasta = tmp_path / "so_o_involucro"
    _instalar(pasta, WRAPPER)
    r = texto_anotado(rodar_python(pasta / WRAPPER.name, env=ambiente_base(), cwd=tmp_path, timeout=60),
                      "[agendador sem o script ao lado]")
    assert r.returncode == 2
    assert "sincronizar_bancos.py não está em" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert list(pasta.iterdir()) == [pasta / WRAPPER.name]  # nada criado


@pytest.mark.timeout(120)
def test_dependencia_ausente_da_codigo_2_com_mensagem(tmp_path):
    pasta = tmp_path / "protecao"
    _instalar(pasta, WRAPPER, SCRIPT)
    sombra = tmp_path / "sombra"  # um "requests" que não carrega, como se não estivesse instalado
    sombra.mkdir()
    (sombra / "requests.py").write_text("raise ImportError('simulado', name='requests')\n", encoding="utf-8")
    env = ambiente_base(PYTHONPATH=str(sombra))
    for args in ([], ["--informar"], ["--ajuda"]):
        r = texto_anotado(rodar_python(pasta / WRAPPER.name, *args, env=env, cwd=tmp_path, timeout=60),
                          "[agendador sem requests]")  # PYTHONPATH próprio: sempre um Python novo
        assert r.returncode == 2, args
        assert "Dependência ausente: requests" in r.stderr
        assert "não conseguiu carregar" in r.stderr and "pip install -r requirements.txt" in r.stderr
        assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.timeout(120)
def test_informar_mostra_pasta_log_e_codigos_em_json_ascii(tmp_path):
    import sincronizar_bancos as sb

    projeto = Projeto(tmp_path / "proj", [{"codigo": 0}])
    (projeto.pasta / ".env").write_text("DADOS_DIR=Proteção/dados\nADMIN_PASSWORD=x\n", encoding="utf-8")
    r = rodar(projeto, "--informar")
    assert r.returncode == 0
    assert r.stdout.isascii()  # o PowerShell 5.1 lê a saída na página de código do console
    info = json.loads(r.saida)
    esperado = projeto.pasta.resolve() / "Proteção" / "dados"
    assert Path(info["pasta_dados"]) == esperado
    assert Path(info["arquivo_log"]) == esperado / "logs" / "sincronizacao.log"
    assert {int(c) for c in info["codigos"]} == set(sb.ExitCode)
    assert info["codigos"]["2"] == sb.ExitCode.CONFIG.meaning
    assert info["erros"] == []
    assert projeto.contador == 0 and not esperado.exists()  # só informa: não roda nem cria nada
    # --dados-dir repassado ao filho também vale para o invólucro.
    r = rodar(projeto, "--informar", "--", "--dados-dir", str(tmp_path / "outra"))
    assert Path(json.loads(r.saida)["pasta_dados"]) == tmp_path / "outra"
    for filho in (["verificar", "--dados-dir", str(tmp_path / "apos")], ["--dados-dir", str(tmp_path / "apos"),
                                                                        "verificar"]):  # antes ou depois do comando
        r = rodar(projeto, "--informar", "--", *filho)
        assert Path(json.loads(r.saida)["pasta_dados"]) == tmp_path / "apos", filho
    # uma opção de outro comando na linha do filho (ele a recusa com código 2, sem repetir) não faz o invólucro
    # esquecer a pasta de dados: o log e o aviso dessa recusa vão para a pasta que o vendedor escolheu
    for filho in (["--dados-dir", str(tmp_path / "mista"), "verificar", "--paralelo", "2"],
                  ["historico", "--dados-dir", str(tmp_path / "mista"), "--timeout", "5"]):
        r = rodar(projeto, "--informar", "--", *filho)
        assert Path(json.loads(r.saida)["pasta_dados"]) == tmp_path / "mista", filho


@pytest.mark.timeout(120)
def test_argumentos_depois_do_separador_vao_para_o_filho(tmp_path):
    projeto = Projeto(tmp_path / "proj", [{"codigo": 0}])
    r = rodar(projeto, "--tentativas", "1", "--", "--simular", "com espaço", "--tentativas", "9")
    assert r.returncode == 0
    assert projeto.chamadas[0]["argv"] == ["--simular", "com espaço", "--tentativas", "9"]


@pytest.mark.timeout(120)
def test_rotacao_do_log_com_tamanho_pequeno(tmp_path):
    linhas = [f"linha {i:03d} " + "x" * 40 for i in range(120)]
    projeto = Projeto(tmp_path / "proj", [{"codigo": 0, "imprimir": linhas}])
    r = rodar(projeto, "--log-max-bytes", "1000", "--log-backups", "2")
    assert r.returncode == 0
    logs = projeto.log.parent
    nomes = sorted(p.name for p in logs.iterdir())
    assert nomes == ["sincronizacao.log", "sincronizacao.log.1", "sincronizacao.log.2"]
    for arquivo in logs.iterdir():
        # O limite conta caracteres; acentos (2 bytes) e \r\n no Windows somam pouco.
        assert arquivo.stat().st_size <= 1000 + 200
    # O rodapé está no arquivo atual; as linhas antigas foram descartadas.
    assert "===== FIM da sincronização automática" in projeto.texto_log()
    # Variáveis de ambiente também valem.
    r = rodar(projeto, env=ambiente_base(SYNC_LOG_MAX_BYTES=1000, SYNC_LOG_BACKUPS=1))
    # O .2 da execução anterior fica; nenhum .3 é criado.
    assert sorted(p.name for p in logs.iterdir()) == nomes


@pytest.mark.timeout(120)
def test_opcoes_invalidas_dao_codigo_2_sem_traceback(tmp_path):
    projeto = Projeto(tmp_path / "proj", [{"codigo": 0}])
    r = rodar(projeto, "--tentativas", "abc")
    assert r.returncode == 2
    assert "--tentativas deve ser um número inteiro (recebido: 'abc')" in r.erro
    sem_traceback(r)
    r = rodar(projeto, "--nao-existe")
    assert r.returncode == 2
    assert "opção ou argumento desconhecido" in r.erro and "'--'" in r.erro
    sem_traceback(r)
    r = rodar(projeto, "--timeout-total")
    assert r.returncode == 2
    assert "--timeout-total: falta o valor desta opção" in r.erro
    r = rodar(projeto, env=ambiente_base(SYNC_TENTATIVAS="0"))
    assert r.returncode == 2
    assert "SYNC_TENTATIVAS" in projeto.texto_log()
    assert projeto.contador == 0
    sem_traceback(r)
    r = rodar(projeto, "--tent", "2")  # abreviações não são aceitas (allow_abbrev=False)
    assert r.returncode == 2
    assert "opção ou argumento desconhecido: --tent" in r.erro
    r = rodar(projeto, "--informar=sim")
    assert r.returncode == 2 and "não aceita valor" in r.erro
    sem_traceback(r)
    assert projeto.contador == 0
    r = rodar(projeto, "--ajuda")
    assert r.returncode == 0
    assert "Uso:" in r.saida
    import sincronizar_bancos as sb

    for codigo in sb.ExitCode:  # a tabela de códigos do script, na ajuda
        assert f"{codigo.value:>3}  {codigo.meaning}" in r.saida
    assert rodar(projeto, "-h").saida == rodar(projeto, "--help").saida == r.saida


@pytest.mark.timeout(120)
def test_script_inexistente_da_codigo_2(tmp_path, webhook):
    url, pedidos = webhook
    r = rodar_python(WRAPPER, "--script", str(tmp_path / "nao_existe.py"), env=ambiente_base(SYNC_WEBHOOK_URL=url),
                     timeout=60)
    assert r.returncode == 2
    erro = r.stderr.decode("utf-8")
    assert "script não encontrado" in erro
    assert "Traceback" not in erro
    assert (tmp_path / "dados" / "logs" / "sincronizacao.log").is_file()
    assert len(pedidos) == 1
    dados = carga(pedidos[0])
    assert dados["codigo_saida"] == 2
    assert dados["tentativas"] == 0
    assert "script não encontrado" in dados["text"]


@pytest.mark.timeout(120)
def test_falha_do_webhook_nao_derruba_o_involucro(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        porta = s.getsockname()[1]  # fechada depois do with
    projeto = Projeto(tmp_path / "proj", [{"codigo": 5}])
    r = rodar(projeto, env=ambiente_base(SYNC_WEBHOOK_URL=f"http://127.0.0.1:{porta}/segredo-do-hook"))
    assert r.returncode == 5
    texto = projeto.texto_log()
    assert "falha ao enviar o aviso ao webhook" in texto
    assert "segredo-do-hook" not in texto
    assert contar_cabecalhos(texto) == (1, 1)
    sem_traceback(r)

    r = rodar(projeto, env=ambiente_base(SYNC_WEBHOOK_URL="ftp://exemplo.test/x"))
    assert r.returncode == 5
    assert "SYNC_WEBHOOK_URL inválida" in projeto.texto_log()


@pytest.mark.skipif(not POSIX, reason="envio de SIGINT só em POSIX")
@pytest.mark.timeout(120)
def test_ctrl_c_encerra_a_arvore_e_sai_com_130(tmp_path, webhook):
    url, pedidos = webhook
    projeto = Projeto(tmp_path / "proj", [{"neto": True, "pendurar": True}])
    proc = subprocess.Popen(
        [sys.executable, str(WRAPPER), "--script", str(projeto.script), "--timeout-total", "60"],
        env=ambiente_base(SYNC_WEBHOOK_URL=url), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        **ctrl_c_no_padrao(),
    )
    try:
        limite = time.monotonic() + 15
        while not projeto.netos and time.monotonic() < limite:
            time.sleep(0.05)
        assert projeto.netos, "o filho falso não iniciou"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        saida, erro = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in erro.decode("utf-8")
    assert esperar_morte(projeto.netos) == []
    texto = projeto.texto_log()
    assert "interrompido pelo usuário" in texto
    assert contar_cabecalhos(texto) == (1, 1)
    assert pedidos == []  # interrupção manual não gera aviso


# ---------------------------------------------------------------------------
# Máscara (funções importadas do módulo)
# ---------------------------------------------------------------------------


def _modulo():
    spec = importlib.util.spec_from_file_location("sincronizar_automatico_teste", WRAPPER)
    modulo = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = modulo  # dataclasses procura o módulo em sys.modules
    spec.loader.exec_module(modulo)
    return modulo


MODULO = _modulo()


@settings(max_examples=200, deadline=None)
@given(
    segredo=st.text(min_size=4, max_size=40).filter(lambda s: s.strip() and "*" not in s),
    antes=st.text(max_size=30),
    depois=st.text(max_size=30),
)
def test_mascara_nunca_deixa_o_segredo(segredo, antes, depois):
    segredos = MODULO.sb.Secrets()  # a mesma classe da máscara do sincronizar_bancos.py
    MODULO.registrar_segredos([segredo], segredos)
    if len(segredo) >= MODULO.sb.Secrets.LONG_VALUE:
        resultado = segredos.mask(antes + segredo + depois + segredo)
    else:  # senha curta: mascarada como palavra inteira (uma data como 2026-11-30 fica intacta)
        resultado = segredos.mask(antes + "\n" + segredo + "\n" + depois + "\n" + segredo)
    assert segredo not in resultado


def test_mascara_bearer_credenciais_em_url_e_variantes():
    segredos = MODULO.sb.Secrets()
    MODULO.registrar_segredos(["p@ss word/ç"], segredos)
    mascarar = segredos.mask
    assert mascarar("Authorization: Bearer abc.DEF-123_x") == "Authorization: Bearer ***"
    assert mascarar("bearer   zzz") == "bearer   ***"
    assert mascarar("https://u:x@h.test/a") == "https://***@h.test/a"
    assert mascarar("senha=p%40ss%20word%2F%C3%A7") == "senha=***"  # codificada em URL
    assert mascarar('{"s": "p@ss word/\\u00e7"}') == '{"s": "***"}'  # escapada em JSON
    assert MODULO.sb.Secrets().mask("nada a esconder") == "nada a esconder"


def test_involucro_usa_a_tabela_e_a_mascara_do_sincronizar_bancos():
    import sincronizar_bancos as sb

    assert MODULO.sb is sb  # o invólucro importa o script vizinho, não uma cópia
    assert not hasattr(MODULO, "SIGNIFICADOS") and not hasattr(MODULO, "Mascarador")
    assert MODULO.CODIGO_SEM_SCRIPT == sb.ExitCode.CONFIG
    for codigo in sb.ExitCode:
        assert MODULO.significado(codigo).startswith(codigo.meaning)
    segredo = secrets.token_urlsafe(12)
    MODULO.registrar_segredos([segredo])
    assert sb.run_context().secrets.mask(f"x {segredo} y") == "x *** y"


def test_espera_dobra_com_variacao_e_nunca_passa_do_teto_de_15_minutos():
    for tentativa, base in ((1, 30), (2, 60), (3, 120)):
        valor = MODULO.calcular_espera(30, tentativa)
        assert base * 0.75 <= valor <= base * 1.25
    # o teto documentado (--espera-inicial: "teto de 15 minutos") vale depois da variação: antes, 900 × 1,25
    esperas = [MODULO.calcular_espera(30, tentativa) for tentativa in (6, 20, 2000) for _ in range(100)]
    assert max(esperas) <= 900 and min(esperas) >= 900 * 0.75
    assert all(675 <= MODULO.calcular_espera(1200, 1) <= 900 for _ in range(50))  # espera inicial acima do teto


def test_significados_em_portugues_para_todos_os_codigos_do_contrato():
    for codigo in (0, 1, 2, 3, 4, 5, 130, 143):
        assert MODULO.significado(codigo) != "código inesperado"
    assert "tempo limite" in MODULO.significado(4)  # o invólucro também usa 4 para o tempo esgotado


@pytest.mark.parametrize("codigo", [0, 1, 2, 3, 5, 130, 143])
def test_so_o_codigo_4_e_repetido(codigo):
    assert MODULO.deve_repetir(4)
    assert not MODULO.deve_repetir(codigo)


@pytest.mark.timeout(120)
def test_env_com_bom_do_bloco_de_notas_tambem_e_mascarado(tmp_path):
    senha = secrets.token_urlsafe(16)
    projeto = Projeto(tmp_path / "proj", [{"codigo": 0, "imprimir": [f"senha lida: {senha}"]}])
    (projeto.pasta / ".env").write_text(f"ADMIN_PASSWORD={senha}\r\n", encoding="utf-8-sig")
    r = rodar(projeto)
    assert r.returncode == 0
    assert senha not in projeto.texto_log()
    assert senha not in r.saida
    assert "senha lida: ***" in projeto.texto_log()


# ---------------------------------------------------------------------------
# Arquivos de agendamento para Linux/Mac
# ---------------------------------------------------------------------------

AGENDAMENTO = RAIZ / "agendamento"


def _unidade(nome: str):
    import configparser

    leitor = configparser.ConfigParser(interpolation=None, strict=True)
    leitor.optionxform = str  # systemd diferencia maiúsculas
    leitor.read_string((AGENDAMENTO / nome).read_text(encoding="utf-8"))
    return leitor


def test_crontab_exemplo_chama_o_involucro_com_o_python_do_venv():
    linhas = [
        ln for ln in (AGENDAMENTO / "crontab.exemplo").read_text(encoding="utf-8").splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    assert len(linhas) == 1
    campos = linhas[0].split()
    assert campos[1:5] == ["*", "*", "*", "*"]  # toda hora
    assert 0 <= int(campos[0]) <= 59
    assert campos[5] == "/opt/protecao/.venv/bin/python"
    assert campos[6] == "/opt/protecao/sincronizar_automatico.py"


def test_unidades_systemd():
    servico = _unidade("sincronizar-bancos.service")
    assert servico["Service"]["Type"] == "oneshot"
    assert servico["Service"]["ExecStart"] == (
        "/opt/protecao/.venv/bin/python /opt/protecao/sincronizar_automatico.py"
    )
    assert servico["Service"]["WorkingDirectory"] == "/opt/protecao"
    assert servico["Service"]["StandardOutput"] == "journal"
    temporizador = _unidade("sincronizar-bancos.timer")
    assert temporizador["Timer"]["OnCalendar"] == "hourly"
    assert temporizador["Timer"]["Persistent"] == "true"
    assert temporizador["Timer"]["Unit"] == "sincronizar-bancos.service"
    assert temporizador["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze ausente")
@pytest.mark.timeout(180)
def test_unidades_systemd_passam_no_systemd_analyze(tmp_path):
    for nome in ("sincronizar-bancos.service", "sincronizar-bancos.timer"):
        texto = (AGENDAMENTO / nome).read_text(encoding="utf-8")
        texto = texto.replace("/opt/protecao/.venv/bin/python", sys.executable)
        texto = texto.replace("/opt/protecao", str(tmp_path))
        (tmp_path / nome).write_text(texto, encoding="utf-8")
    shutil.copy(WRAPPER, tmp_path / WRAPPER.name)
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no",
         str(tmp_path / "sincronizar-bancos.timer"), str(tmp_path / "sincronizar-bancos.service")],
        capture_output=True, text=True, timeout=50,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.timeout(120)
@pytest.mark.parametrize("interface, desatualizado", [(None, "sincronizar_bancos.py"),
                                                      (99, "sincronizar_automatico.py")],
                         ids=["script_antigo", "involucro_antigo"])
def test_atualizacao_pela_metade_diz_qual_arquivo_atualizar_no_log_e_no_webhook(tmp_path, webhook, interface,
                                                                                desatualizado):
    url, pedidos = webhook
    pasta = tmp_path / "protecao"
    _instalar(pasta, WRAPPER, SCRIPT)
    script = pasta / SCRIPT.name
    texto = script.read_text(encoding="utf-8")
    linha = next(ln for ln in texto.splitlines() if ln.startswith("WRAPPER_INTERFACE = "))
    # Só um dos dois foi trocado: o script de antes da interface (sem a constante) ou um de uma versão futura.
    script.write_text(texto.replace(linha, "" if interface is None else f"WRAPPER_INTERFACE = {interface}"),
                      encoding="utf-8")
    dados = tmp_path / "dados_da_tarefa"
    r = texto_anotado(rodar_python(pasta / WRAPPER.name, env=ambiente_base(SYNC_WEBHOOK_URL=url, DADOS_DIR=dados),
                                   cwd=tmp_path, timeout=60), "[agendador pela metade]")
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"Atualize o {desatualizado}" in r.stderr and "Traceback" not in r.stdout + r.stderr, r.stderr
    log = (dados / "logs" / "sincronizacao.log").read_text(encoding="utf-8")
    assert f"Atualize o {desatualizado}" in log and "Atualização pela metade" in log
    assert len(pedidos) == 1
    aviso = carga(pedidos[0])
    assert aviso["codigo_saida"] == 2 and f"Atualize o {desatualizado}" in aviso["text"]
    assert not (dados / "ultima_execucao.json").exists()  # nenhuma sincronização foi tentada


@pytest.mark.timeout(120)
@pytest.mark.parametrize("conteudo", [b"MZ\x90\x00\x03\x00\x00\x00\x04\x00binario",
                                      "Write-Host 'PowerShell'\n$x = 1\n".encode(),
                                      "SERVIDOR_PRINCIPAL=https://a.test\nSERVIDOR_BACKUP=https://b.test\n".encode()],
                         ids=["exe", "ps1", "env"])
def test_script_que_nao_e_python_da_codigo_2_com_mensagem_propria(tmp_path, webhook, conteudo):
    url, pedidos = webhook
    falso = tmp_path / "sincronizar.exe"
    falso.write_bytes(conteudo)
    r = rodar_python(WRAPPER, "--script", str(falso), env=ambiente_base(SYNC_WEBHOOK_URL=url), timeout=60)
    erro = r.stderr.decode("utf-8")
    assert r.returncode == 2, erro
    assert "não é um programa Python" in erro and "Traceback" not in erro and "concluída com problemas" not in erro
    assert len(pedidos) == 1
    assert carga(pedidos[0])["codigo_saida"] == 2 and "não é um programa Python" in carga(pedidos[0])["text"]


@pytest.mark.timeout(60)
def test_ajuda_do_involucro_em_pipe_fechado_termina_em_silencio():
    """Como `python sincronizar_automatico.py --ajuda | head`: quem lê fecha o pipe antes da ajuda chegar."""
    proc = subprocess.Popen([sys.executable, str(WRAPPER), "--ajuda"], env=ambiente_base(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and err == b"", err


@pytest.mark.timeout(120)
def test_webhook_que_pinga_bytes_nao_segura_o_involucro(tmp_path):
    """O webhook responde um byte a cada 0,5 s (100 s no total): o aviso tem prazo total, não por leitura."""
    from apoio import pingar

    def pingado(handler):
        pingar(b"HTTP/1.1 204 No Content\r\n" + b"X-Lento: " + b"a" * 170 + b"\r\n\r\n", handler, 0.5)

    projeto = Projeto(tmp_path / "proj", [{"codigo": 5}])
    with ServidorStub({("POST", "*"): pingado}) as lento:
        inicio = time.monotonic()
        r = rodar(projeto, env=ambiente_base(SYNC_WEBHOOK_URL=f"{lento.url}/api/webhooks/x"), timeout=110)
        duracao = time.monotonic() - inicio
    assert r.returncode == 5, r.erro
    assert len(lento.pedidos) == 1  # o aviso foi tentado
    assert duracao < 25, f"o invólucro ficou {duracao:.0f} s preso no webhook"
    assert "não respondeu em 10 s" in projeto.texto_log()
    sem_traceback(r)
