#!/usr/bin/env python3
"""Benchmark de desempenho da sincronização (issue 7). Roda à mão, fora do pytest
(o nome não começa com test_, então o pytest não o coleta):

    python tests/benchmark_sync.py                   # tamanhos da issue (~2 minutos)
    python tests/benchmark_sync.py --rapido          # tamanhos reduzidos, conferência rápida
    python tests/benchmark_sync.py --repeticoes 3    # parte 2 vale a mediana de 3 rodadas
    python tests/benchmark_sync.py --so-mascara      # só a parte 6: textos de 200.000 caracteres (~10 s)
    (opções: --latencia-ms, --paralelo, --licencas; veja --help)

Sobe dois servidores de referência locais (tests/servidor_referencia.py) com latência
adicionada configurável, semeia N usuários e M licenças direto no banco (sem HTTP) e
imprime uma tabela com:

 1. requisições feitas × mínimo teórico, contadas nos servidores (1ª sincronização,
    sincronização sem mudanças e uma incremental com mudanças de todo tipo);
 2. tempo de parede da 1ª sincronização de 2.000 licenças a 20 ms: a ferramenta real
    (linha de comando, --paralelo 8 --json, processo filho) × uma base sequencial escrita
    aqui como o script antigo fazia (uma conexão nova por requisição, também em processo
    filho) × o limite dado pela latência (escritas × latência / paralelismo); e, só como
    referência, um cliente mínimo (http.client puro) com as mesmas escritas, para separar
    o que é custo da máquina do que é custo da ferramenta;
 3. tempo (time.perf_counter; também CPU) e pico de memória do planejador (plan_pair) com
    100.000 licenças por lado, num processo filho de memória limpa: tracemalloc (alocações
    Python) e ru_maxrss do getrusage (memória residente); o alvo usa o maior dos dois
    totais (retratos + plano) e o pior de 3 tempos;
 4. sincronização sem mudanças de 10.000 licenças, de ponta a ponta, em loopback;
 5. crescimento dos arquivos locais: o histórico de um ano de execuções a cada 15 minutos com 1.000
    licenças (linhas reais gravadas pela ferramenta, clonadas 35.040 vezes num banco à parte, mais uma
    venda por dia com a lista de divergências mudando) e o tamanho do --json de uma execução sem
    mudanças (e do --json-completo). Só esta parte: --so-crescimento.
 6. textos de 200.000 caracteres na listagem (issue 26: a máscara de segredos era quadrática e um id de
    60.000 caracteres custava 76 s): a máscara sozinha com 200.000 e 400.000 caracteres de cada forma que
    a deixava lenta (o dobro do texto deve custar o dobro, não o quádruplo) e, de ponta a ponta (processo
    filho, saída em texto), a 1ª sincronização, o verificar e o historico --detalhes com licenças cujos
    id e nome têm 200.000 caracteres, ao lado das mesmas execuções sem os textos longos. Só esta parte:
    --so-mascara.

Termina com uma linha por alvo: ATINGIDA / NÃO ATINGIDA, com os números. Código de
saída 0 só se todos os alvos forem atingidos.

O número esperado de escritas é calculado aqui, independentemente do planejador, a
partir do que foi semeado (regras dos servidores reais, docs/API_DOS_SERVIDORES.md): cada licença ausente no backup
custa 1 criação, mais 1 bloqueio se o principal nega (bloqueada, pendente ou vencida),
porque o upsert sempre deixa a licença ativa e com período novo.

Os servidores são sempre parados (e os bancos temporários apagados) num finally.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime as dt
import gc
import hashlib
import json
import os
import platform
import random
import resource
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

from caminhos import SCRIPT  # noqa: E402  (também põe tests/ e a raiz no sys.path)

# Os processos filhos da base e do cliente mínimo só importam o que um script desses
# importaria (a partida do Python entra na medida deles, como entra na da ferramenta).
_FILHO = next((a for a in sys.argv[1:] if a in ("--_base", "--_minimo")), None)
if _FILHO != "--_minimo":
    import requests  # noqa: E402
if _FILHO is None:
    import sincronizar_bancos as sb  # noqa: E402
    from servidor_referencia import ServidorReferencia, add_months  # noqa: E402

# ---------------------------------------------------------------------------
# Parâmetros
# ---------------------------------------------------------------------------

ALVO_VELOCIDADE = 8.0        # ≥ 8× mais rápido que a base sequencial
ALVO_LIMITE = 1.5            # ≤ 1,5× o limite dado pela latência
ALVO_PLANO_S = 2.0           # planejar 100.000 licenças por lado em < 2 s
ALVO_PLANO_MB = 300.0        # ... com pico de memória < 300 MB
ALVO_SEM_MUDANCAS_S = 2.0    # sincronização sem mudanças de 10.000 licenças em < 2 s
ALVO_HISTORICO_MB = 50.0     # histórico de um ano de execuções a cada 15 min com 1.000 licenças < 50 MB
ALVO_TEXTO_LONGO_S = 2.0     # o que campos de 200.000 caracteres custam a mais em sincronizar, verificar e historico

# Senha fixa da base "à moda antiga": só existe nos servidores descartáveis deste benchmark.
SENHA_FIXA_BASE = "mudar123"


@dataclasses.dataclass(frozen=True)
class Tamanhos:
    usuarios: int = 50                 # revendedores no principal (1ª sincronização)
    licencas_primeira: int = 2_000     # partes 1 e 2
    latencia_ms: float = 20.0
    paralelo: int = 8
    licencas_plano: int = 100_000      # parte 3 (por lado)
    usuarios_plano: int = 1_000
    licencas_sem_mudancas: int = 10_000  # parte 4
    usuarios_sem_mudancas: int = 200


TAMANHOS_RAPIDOS = Tamanhos(usuarios=10, licencas_primeira=300, licencas_plano=20_000, usuarios_plano=200,
                            licencas_sem_mudancas=2_000, usuarios_sem_mudancas=40)

TIPOS = ("mensal", "trimestral", "semestral", "anual", "trianual", "vitalicia")
MESES = {"mensal": 1, "trimestral": 3, "semestral": 6, "anual": 12, "trianual": 36, "vitalicia": None}
NOMES = ("José da Silva", "Maria Conceição Araújo", "Padaria Pão de Açúcar LTDA", "Oficina São João",
         "Ótica Visão Clara", "Açougue Boi Feliz", "Farmácia Saúde & Cia", "João Gonçalves", "Lúcia Ribeiro",
         "Mercadinho Três Irmãos", "Clínica Sorriso Perfeito", "Auto Peças Irmãos Conceição")
RUAS = ("Rua das Flores", "Av. Brasil", "Rua São Bento", "Travessa da Paz", "Rua Sete de Setembro",
        "Av. Getúlio Vargas", "Rua Dom Pedro II", "Rua da Conceição")
CIDADES = ("São Paulo", "Belo Horizonte", "Curitiba", "Salvador", "Goiânia", "Maceió", "Ribeirão Preto")

# Categorias de licença no principal, com o peso no sorteio.
# ativa: ativa e no prazo; bloqueada: bloqueada (no prazo); pendente; vencida: ativa com end_date no passado.
CATEGORIAS = (("ativa", 0.85), ("bloqueada", 0.07), ("pendente", 0.02), ("vencida", 0.06))


def hoje_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


# ---------------------------------------------------------------------------
# Máquina
# ---------------------------------------------------------------------------

def descrever_maquina() -> list[str]:
    modelo = "desconhecido"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as arquivo:
            for linha in arquivo:
                if linha.lower().startswith("model name"):
                    modelo = linha.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nucleos_usaveis = len(os.sched_getaffinity(0))
    except AttributeError:
        nucleos_usaveis = os.cpu_count()
    memoria = "?"
    try:
        with open("/proc/meminfo", encoding="utf-8") as arquivo:
            for linha in arquivo:
                if linha.startswith("MemTotal:"):
                    memoria = f"{int(linha.split()[1]) / 1024 / 1024:.1f} GiB"
                    break
    except OSError:
        pass
    return [
        f"CPU: {modelo}",
        f"Núcleos: {os.cpu_count()} lógicos ({nucleos_usaveis} disponíveis para este processo); memória: {memoria}",
        f"Python: {platform.python_implementation()} {platform.python_version()} em {platform.platform()}",
        f"requests {requests.__version__}; sincronizar_bancos {sb.VERSAO}",
    ]


def carga() -> str:
    try:
        return num(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return "?"


# ---------------------------------------------------------------------------
# Dados sintéticos (os mesmos para a ferramenta e para a base)
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Registro:
    """Uma licença como é semeada direto no banco do servidor."""
    campos: dict[str, Any]
    categoria: str

    @property
    def device_id(self) -> str:
        return self.campos["device_id"]


def device_id_de(prefixo: str, indice: int) -> str:
    """32 dígitos hexadecimais, como os device_id reais."""
    return hashlib.md5(f"{prefixo}-{indice}".encode()).hexdigest()


def sortear_categoria(rng: random.Random) -> str:
    sorteio, acumulado = rng.random(), 0.0
    for nome, peso in CATEGORIAS:
        acumulado += peso
        if sorteio < acumulado:
            return nome
    return CATEGORIAS[0][0]


def datas_para(categoria: str, tipo: str, hoje: dt.date, rng: random.Random) -> tuple[dt.date, dt.date | None]:
    """Início e fim coerentes com a categoria: no prazo, ou vencida (fim no passado)."""
    meses = MESES[tipo]
    if categoria == "vencida":
        fim = hoje - dt.timedelta(days=rng.randint(1, 90))
        return add_months(fim, -meses), fim
    inicio = hoje - dt.timedelta(days=rng.randint(0, 27))  # +1 mês ou mais ainda fica no futuro
    return inicio, None if meses is None else add_months(inicio, meses)


def gerar_usuarios(quantidade: int, prefixo: str = "revenda") -> list[dict[str, Any]]:
    return [{"username": f"{prefixo}{i:05d}", "email": f"{prefixo}{i:05d}@exemplo.com.br",
             "role": "admin" if i % 10 == 0 else "user"} for i in range(quantidade)]


def gerar_licenca(prefixo: str, indice: int, hoje: dt.date, rng: random.Random, criadores: list[str],
                  categoria: str | None = None) -> Registro:
    categoria = categoria or sortear_categoria(rng)
    tipo = rng.choice(TIPOS[:-1] if categoria == "vencida" else TIPOS)  # vitalícia nunca vence
    inicio, fim = datas_para(categoria, tipo, hoje, rng)
    status = {"bloqueada": "blocked", "pendente": "pending"}.get(categoria, "active")
    nome = rng.choice(NOMES)
    campos = {
        "device_id": device_id_de(prefixo, indice),
        "license_type": tipo,
        "owner_name": f"{nome} {indice}",
        "cpf": f"{rng.randrange(10**11):011d}",
        "email": None if rng.random() < 0.2 else f"cliente{indice}@exemplo.com.br",
        "address": f"{rng.choice(RUAS)}, {rng.randint(1, 3000)} - {rng.choice(CIDADES)}",
        "created_by": rng.choice(criadores),
        "status": status,
        "start_date": inicio.isoformat(),
        "end_date": None if fim is None else fim.isoformat(),
    }
    return Registro(campos, categoria)


def gerar_licencas(quantidade: int, hoje: dt.date, seed: int, criadores: list[str],
                   prefixo: str = "lic") -> list[Registro]:
    rng = random.Random(seed)
    return [gerar_licenca(prefixo, i, hoje, rng, criadores) for i in range(quantidade)]


def escritas_primeira_sincronizacao(usuarios: list[dict], licencas: list[Registro]) -> int:
    """Mínimo de escritas num backup vazio, pelas regras do contrato (não pelo planejador):
    1 criação por usuário e por licença, + 1 bloqueio por licença que o principal nega
    (o upsert sempre grava 'active' com período novo)."""
    return len(usuarios) + sum(1 if r.categoria == "ativa" else 2 for r in licencas)


def semear(servidor: ServidorReferencia, usuarios: list[dict], licencas: list[Registro]) -> None:
    """Semeia direto no banco do servidor (sem HTTP)."""
    for usuario in usuarios:
        servidor.add_user(usuario["username"], secrets.token_urlsafe(12), email=usuario["email"],
                          role=usuario["role"])
    for registro in licencas:
        servidor.add_device(**registro.campos)


# ---------------------------------------------------------------------------
# Servidores de referência (sempre parados no finally de quem os cria)
# ---------------------------------------------------------------------------

def pasta_rapida() -> str | None:
    """Bancos dos servidores em memória (tmpfs) quando houver: o SQLite com fsync a cada
    inserção deixaria a semeadura lenta, e o que se mede aqui é a ferramenta, não o disco
    do servidor (os servidores reais estão longe; a latência adicionada faz esse papel)."""
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


class ParDeServidores:
    """Principal + backup de referência, com senhas aleatórias e pastas temporárias."""

    def __init__(self, hoje: dt.date, latencia_ms: float = 0.0):
        self.hoje = hoje
        self.senha_principal = secrets.token_urlsafe(16)
        self.senha_backup = secrets.token_urlsafe(16)
        self.pasta_bancos = tempfile.mkdtemp(prefix="benchmark-bancos-", dir=pasta_rapida())
        self.pasta_dados = tempfile.mkdtemp(prefix="benchmark-dados-")
        self.arquivo_env = os.path.join(self.pasta_dados, "vazio.env")  # isola de um .env do usuário
        Path(self.arquivo_env).write_text("", encoding="utf-8")
        self.principal: ServidorReferencia | None = None
        self.backup: ServidorReferencia | None = None
        try:
            self.principal = ServidorReferencia(admins={"admin": self.senha_principal}, today=hoje,
                                                db_path=os.path.join(self.pasta_bancos, "principal.sqlite")).start()
            # ids locais próprios, como servidores reais (listagens idênticas = o mesmo servidor duas vezes)
            self.backup = ServidorReferencia(admins={"admin": self.senha_backup}, today=hoje, primeiro_id=1_000_000,
                                             db_path=os.path.join(self.pasta_bancos, "backup.sqlite")).start()
            self.definir_latencia(latencia_ms)
        except BaseException:
            self.parar()
            raise

    def definir_latencia(self, latencia_ms: float) -> None:
        for servidor in self.servidores():
            servidor.set_faults(latency_ms=latencia_ms)

    def servidores(self) -> list[ServidorReferencia]:
        return [s for s in (self.principal, self.backup) if s is not None]

    def zerar_contagens(self) -> dict[str, int]:
        """Zera as contagens e devolve as conexões já aceitas (o contador delas não zera)."""
        for servidor in self.servidores():
            servidor.reset_counts()
        return {"principal": self.principal.connections_accepted, "backup": self.backup.connections_accepted}

    def ambiente(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SERVIDOR_", "ADMIN_", "PRINCIPAL_", "BACKUP_", "SYNC_", "DADOS_DIR"))}
        env.update({
            "SERVIDOR_PRINCIPAL": self.principal.url,
            "SERVIDOR_BACKUP": self.backup.url,
            "ADMIN_USER": "admin",
            "PRINCIPAL_ADMIN_PASSWORD": self.senha_principal,
            "BACKUP_ADMIN_PASSWORD": self.senha_backup,
            "DADOS_DIR": self.pasta_dados,
            "SYNC_ESPERA_DESPERTAR": "10",
            "SYNC_TIMEOUT": "30",
            "PYTHONIOENCODING": "utf-8",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        })
        return env

    def parar(self) -> None:
        for servidor in self.servidores():
            try:
                servidor.stop()
            except Exception as exc:  # noqa: BLE001 - parar o resto mesmo assim
                print(f"   (aviso: falha ao parar servidor: {exc.__class__.__name__})", file=sys.stderr)
        shutil.rmtree(self.pasta_bancos, ignore_errors=True)
        shutil.rmtree(self.pasta_dados, ignore_errors=True)


@dataclasses.dataclass
class ExecucaoFerramenta:
    parede_s: float
    codigo: int
    documento: dict | None
    stderr: str
    cpu_s: float = 0.0  # CPU (usuário + sistema) do processo filho

    @property
    def duracao_interna_s(self) -> float | None:
        return self.documento.get("duracao_s") if self.documento else None

    def resumo_erro(self) -> str:
        return f"código {self.codigo}; stderr: {self.stderr.strip()[-500:]!r}"


def rodar_ferramenta(par: ParDeServidores, paralelo: int, timeout: float = 600) -> ExecucaoFerramenta:
    """A ferramenta real, como o usuário a roda: processo filho, --json, --paralelo N."""
    comando = [sys.executable, str(SCRIPT), "--json", "--paralelo", str(paralelo), "--env", par.arquivo_env,
               "--hoje", par.hoje.isoformat()]
    proc, parede, cpu = rodar_filho(comando, par.ambiente(), timeout, par.pasta_dados)
    try:
        documento = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        documento = None
    return ExecucaoFerramenta(parede, proc.returncode, documento, proc.stderr, cpu)


def rodar_filho(comando: list[str], env: dict[str, str] | None, timeout: float,
                cwd: str | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """Roda um processo filho; devolve o resultado, o tempo de parede e a CPU que ele usou."""
    antes = resource.getrusage(resource.RUSAGE_CHILDREN)
    inicio = time.perf_counter()
    proc = subprocess.run(comando, env=env, capture_output=True, text=True, encoding="utf-8", timeout=timeout,
                          cwd=cwd)
    parede = time.perf_counter() - inicio
    depois = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (depois.ru_utime - antes.ru_utime) + (depois.ru_stime - antes.ru_stime)
    return proc, parede, cpu


# ---------------------------------------------------------------------------
# Contagem de requisições (nos servidores)
# ---------------------------------------------------------------------------

ROTAS_INICIAIS = (("GET", "/health"), ("POST", "/admin/login"), ("GET", "/admin/users"), ("GET", "/admin/devices"),
                  ("GET", "/servers"))
RELEITURA = 2  # GET /admin/users + GET /admin/devices de novo em cada servidor do par, depois da última escrita


@dataclasses.dataclass
class Contagem:
    execucao: str
    servidor: str
    total: int
    minimo: int
    escritas: int
    escritas_esperadas: int
    conexoes: int
    detalhe: str

    @property
    def ok(self) -> bool:
        return self.total == self.minimo and self.escritas == self.escritas_esperadas


def contar(execucao: str, par: ParDeServidores, conexoes_antes: dict[str, int],
           escritas_esperadas_backup: int) -> list[Contagem]:
    linhas = []
    for nome, servidor, esperadas in (("principal", par.principal, 0),
                                      ("backup", par.backup, escritas_esperadas_backup)):
        contagens = servidor.counts
        total = sum(contagens.values())
        extras = {f"{m} {p}": n for (m, p), n in sorted(contagens.items())
                  if (m, p) not in ROTAS_INICIAIS and m not in ("POST", "DELETE")}
        iniciais = "+".join(str(contagens.get(rota, 0)) for rota in ROTAS_INICIAIS)
        detalhe = f"health+login+users+devices+servers={iniciais}" + (f"; outras leituras: {extras}" if extras else "")
        # depois da última escrita no par, a ferramenta relê os DOIS servidores (a releitura final)
        conferencia = RELEITURA if escritas_esperadas_backup else 0
        linhas.append(Contagem(execucao, nome, total, len(ROTAS_INICIAIS) + conferencia + esperadas,
                               servidor.write_count(), esperadas, servidor.connections_accepted - conexoes_antes[nome],
                               detalhe))
    return linhas


# ---------------------------------------------------------------------------
# Base sequencial: como o script antigo sincronizava
# ---------------------------------------------------------------------------

def sincronizar_a_moda_antiga(url_principal: str, senha_principal: str, url_backup: str,
                              senha_backup: str) -> int:
    """Uma requisição depois da outra, cada uma numa conexão nova (requests.post/get sem
    Session), reenviando TODAS as licenças como upsert e criando usuários com senha fixa.
    Devolve quantas requisições fez."""
    feitas = 0

    def pedir(metodo: Callable, url: str, **kw) -> requests.Response:
        nonlocal feitas
        feitas += 1
        resposta = metodo(url, timeout=30, **kw)
        resposta.raise_for_status()
        return resposta

    token_p = pedir(requests.post, f"{url_principal}/admin/login",
                    json={"username": "admin", "password": senha_principal}).json()["token"]
    token_b = pedir(requests.post, f"{url_backup}/admin/login",
                    json={"username": "admin", "password": senha_backup}).json()["token"]
    cab_p, cab_b = {"Authorization": f"Bearer {token_p}"}, {"Authorization": f"Bearer {token_b}"}
    usuarios = pedir(requests.get, f"{url_principal}/admin/users", headers=cab_p).json()["items"]
    existentes = {u["username"]
                  for u in pedir(requests.get, f"{url_backup}/admin/users", headers=cab_b).json()["items"]}
    for usuario in usuarios:
        if usuario["username"] not in existentes:
            pedir(requests.post, f"{url_backup}/admin/users/create", headers=cab_b,
                  json={"username": usuario["username"], "password": SENHA_FIXA_BASE,
                        "email": usuario["email"], "role": usuario["role"]})
    licencas = pedir(requests.get, f"{url_principal}/admin/devices", headers=cab_p).json()["items"]
    for licenca in licencas:
        pedir(requests.post, f"{url_backup}/admin/devices/create", headers=cab_b,
              json={campo: licenca.get(campo) for campo in ("device_id", "license_type", "owner_name", "cpf",
                                                            "email", "address", "created_by")})
        if licenca.get("status") != "active":
            pedir(requests.post, f"{url_backup}/admin/devices/{licenca['device_id']}/deactivate",
                  headers=cab_b, json={"action": "block"})
    return feitas


def rodar_base(par: ParDeServidores, timeout: float = 1800) -> ExecucaoFerramenta:
    """A base também roda como processo filho (como o script antigo rodava): as duas medidas
    incluem a partida do Python e a importação do requests. Senhas vão pelo ambiente."""
    env = par.ambiente()
    env.update({"BENCH_URL_PRINCIPAL": par.principal.url, "BENCH_URL_BACKUP": par.backup.url,
                "BENCH_SENHA_PRINCIPAL": par.senha_principal, "BENCH_SENHA_BACKUP": par.senha_backup})
    proc, parede, cpu = rodar_filho([sys.executable, __file__, "--_base"], env, timeout, par.pasta_dados)
    try:
        documento = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        documento = None
    return ExecucaoFerramenta(parede, proc.returncode, documento, proc.stderr, cpu)


def base_no_filho() -> int:
    inicio = time.perf_counter()
    feitas = sincronizar_a_moda_antiga(os.environ["BENCH_URL_PRINCIPAL"], os.environ["BENCH_SENHA_PRINCIPAL"],
                                       os.environ["BENCH_URL_BACKUP"], os.environ["BENCH_SENHA_BACKUP"])
    print(json.dumps({"requisicoes": feitas, "duracao_s": round(time.perf_counter() - inicio, 3)}))
    return 0


def cliente_minimo_no_filho() -> int:
    """Referência (informativa): o cliente mais enxuto possível em Python — http.client puro,
    8 threads com uma conexão keep-alive cada, as mesmas escritas mínimas da ferramenta.
    Mostra quanto da distância até o limite da latência é da máquina (CPU, loopback,
    servidor) e quanto é da ferramenta."""
    import http.client
    import queue
    import threading
    import urllib.parse

    inicio = time.perf_counter()
    hoje = os.environ["BENCH_HOJE"]
    paralelo = int(os.environ["BENCH_PARALELO"])

    def conectar(url: str) -> http.client.HTTPConnection:
        partes = urllib.parse.urlsplit(url)
        return http.client.HTTPConnection(partes.hostname, partes.port, timeout=30)

    def chamar(conexao, metodo: str, caminho: str, corpo=None, token: str | None = None) -> Any:
        cabecalhos = {"Content-Type": "application/json"}
        if token:
            cabecalhos["Authorization"] = f"Bearer {token}"
        conexao.request(metodo, caminho, body=None if corpo is None else json.dumps(corpo), headers=cabecalhos)
        resposta = conexao.getresponse()
        dados = json.loads(resposta.read())
        if resposta.status >= 300:
            raise RuntimeError(f"{metodo} {caminho}: HTTP {resposta.status}")
        return dados

    url_b = os.environ["BENCH_URL_BACKUP"]
    cp, cb = conectar(os.environ["BENCH_URL_PRINCIPAL"]), conectar(url_b)
    tp = chamar(cp, "POST", "/admin/login",
                {"username": "admin", "password": os.environ["BENCH_SENHA_PRINCIPAL"]})["token"]
    tb = chamar(cb, "POST", "/admin/login",
                {"username": "admin", "password": os.environ["BENCH_SENHA_BACKUP"]})["token"]
    usuarios = chamar(cp, "GET", "/admin/users", token=tp)["items"]
    licencas = chamar(cp, "GET", "/admin/devices", token=tp)["items"]
    chamar(cb, "GET", "/admin/users", token=tb)
    chamar(cb, "GET", "/admin/devices", token=tb)

    def nega(lic: dict) -> bool:
        vencida = lic["license_type"] != "vitalicia" and bool(lic["end_date"]) and lic["end_date"] < hoje
        return lic["status"] != "active" or vencida

    campos = ("device_id", "license_type", "owner_name", "cpf", "email", "address", "created_by")
    fila_usuarios = [[("/admin/users/create", {"username": u["username"], "password": secrets.token_urlsafe(18),
                                               "email": u["email"], "role": u["role"]})] for u in usuarios]
    fila_licencas = [[("/admin/devices/create", {c: lic[c] for c in campos})]
                     + ([(f"/admin/devices/{lic['device_id']}/deactivate", {"action": "block"})] if nega(lic) else [])
                     for lic in licencas]
    feitas = [0]
    trava = threading.Lock()

    def executar(cadeias: list) -> None:
        fila: queue.Queue = queue.Queue()
        for cadeia in cadeias:
            fila.put(cadeia)

        def trabalhador() -> None:
            conexao = conectar(url_b)
            while True:
                try:
                    cadeia = fila.get_nowait()
                except queue.Empty:
                    return
                for caminho, corpo in cadeia:
                    chamar(conexao, "POST", caminho, corpo, tb)
                    with trava:
                        feitas[0] += 1

        threads = [threading.Thread(target=trabalhador) for _ in range(paralelo)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    executar(fila_usuarios)
    executar(fila_licencas)
    print(json.dumps({"escritas": feitas[0], "duracao_s": round(time.perf_counter() - inicio, 3)}))
    return 0


def rodar_cliente_minimo(par: ParDeServidores, paralelo: int, timeout: float = 600) -> ExecucaoFerramenta:
    env = par.ambiente()
    env.update({"BENCH_URL_PRINCIPAL": par.principal.url, "BENCH_URL_BACKUP": par.backup.url,
                "BENCH_SENHA_PRINCIPAL": par.senha_principal, "BENCH_SENHA_BACKUP": par.senha_backup,
                "BENCH_HOJE": par.hoje.isoformat(), "BENCH_PARALELO": str(paralelo)})
    proc, parede, cpu = rodar_filho([sys.executable, __file__, "--_minimo"], env, timeout, par.pasta_dados)
    try:
        documento = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        documento = None
    return ExecucaoFerramenta(parede, proc.returncode, documento, proc.stderr, cpu)


# ---------------------------------------------------------------------------
# Partes 1 e 2: contagem de requisições e tempo da 1ª sincronização
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class ResultadoTempo:
    licencas: int
    escritas: int
    latencia_ms: float
    paralelo: int
    nossas: list[ExecucaoFerramenta]
    nossas_conexoes: list[int]
    bases: list[ExecucaoFerramenta]
    bases_conexoes: list[int]
    minimos: list[ExecucaoFerramenta] = dataclasses.field(default_factory=list)

    @property
    def nossa_s(self) -> float:
        return statistics.median(e.parede_s for e in self.nossas)

    @property
    def base_s(self) -> float:
        return statistics.median(e.parede_s for e in self.bases)

    @property
    def limite_s(self) -> float:
        return self.escritas * self.latencia_ms / 1000 / self.paralelo

    @property
    def velocidade(self) -> float:
        return self.base_s / self.nossa_s

    @property
    def razao_limite(self) -> float:
        return self.nossa_s / self.limite_s


def mudar_para_incremental(par: ParDeServidores, licencas: list[Registro], usuarios: list[dict],
                           hoje: dt.date, quantos: int, seed: int) -> tuple[int, dict[str, int]]:
    """Mudanças de todo tipo, feitas direto nos bancos; devolve as escritas mínimas esperadas
    no backup (pelas regras do contrato) e o detalhamento por tipo."""
    rng = random.Random(seed)
    por_categoria = collections.defaultdict(list)
    for registro in licencas:
        por_categoria[registro.categoria].append(registro)
    ativas_com_prazo = [r for r in por_categoria["ativa"] if r.campos["license_type"] != "vitalicia"]
    rng.shuffle(ativas_com_prazo)
    ativas_vitalicias = [r for r in por_categoria["ativa"] if r.campos["license_type"] == "vitalicia"]
    bloqueadas = list(por_categoria["bloqueada"])
    rng.shuffle(bloqueadas)

    def tirar(lista: list[Registro], n: int) -> list[Registro]:
        escolhidos, lista[:] = lista[:n], lista[n:]
        return escolhidos

    k = quantos
    esperado: dict[str, int] = {}
    criadores = [u["username"] for u in usuarios] + ["admin"]
    # novas no principal: ativa → 1 criação; bloqueada → criação + bloqueio
    for i in range(k):
        par.principal.add_device(**gerar_licenca("nova", i, hoje, rng, criadores, "ativa").campos)
        par.principal.add_device(**gerar_licenca("nova-bloq", i, hoje, rng, criadores, "bloqueada").campos)
    esperado["licenças novas ativas (criar)"] = k
    esperado["licenças novas bloqueadas (criar+bloquear)"] = 2 * k
    # dados alterados no principal: ativa → 1 atualização; bloqueada → atualização + bloqueio (o upsert desbloqueia)
    for r in tirar(ativas_com_prazo, k):
        par.principal.set_device_fields(r.device_id, owner_name=r.campos["owner_name"] + " (novo dono)")
    esperado["dados alterados, ativa (atualizar)"] = k
    for r in tirar(bloqueadas, k):
        par.principal.set_device_fields(r.device_id, address="Rua Nova, 1 - São Paulo")
    esperado["dados alterados, bloqueada (atualizar+bloquear)"] = 2 * k
    # só o status mudou no principal
    for r in tirar(ativas_com_prazo, k):
        par.principal.set_status(r.device_id, "blocked")
    esperado["bloqueada no principal (bloquear)"] = k
    for r in tirar(bloqueadas, k):
        par.principal.set_status(r.device_id, "active")
    esperado["desbloqueada no principal (ativar)"] = k
    # vencida no principal (o backup tem período novo): bloquear para negar igual
    for r in tirar(ativas_com_prazo, k):
        par.principal.set_dates(r.device_id, r.campos["start_date"], hoje - dt.timedelta(days=3))
    esperado["vencida no principal (bloquear)"] = k
    # renovada no principal, vencida no backup: 1 upsert reinicia o período
    for r in tirar(ativas_com_prazo, k):
        par.backup.set_dates(r.device_id, hoje - dt.timedelta(days=400), hoje - dt.timedelta(days=5))
    esperado["vencida só no backup (renovar)"] = k
    # diferenças que a API não copia: nenhuma escrita (só divergência relatada)
    for r in tirar(ativas_vitalicias or ativas_com_prazo, k):
        par.principal.set_device_fields(r.device_id, features="core,relatorios", custom_interval=30,
                                        last_seen_at=f"{hoje.isoformat()} 10:00:00", last_seen_ip="10.0.0.1")
    esperado["features/intervalo/last_seen (nada a gravar)"] = 0
    # só no backup: mantidas, nada apagado
    for i in range(k):
        par.backup.add_device(**gerar_licenca("so-backup", i, hoje, rng, ["admin"], "ativa").campos)
    par.backup.add_user("so.no.backup", secrets.token_urlsafe(12))
    esperado["só no backup (nada a gravar)"] = 0
    # usuários novos no principal
    novos = max(1, len(usuarios) // 10)
    for u in gerar_usuarios(novos, "novo.revenda"):
        par.principal.add_user(u["username"], secrets.token_urlsafe(12), email=u["email"], role=u["role"])
    esperado["usuários novos (criar)"] = novos
    return sum(esperado.values()), esperado


def medir_partes_1_e_2(tam: Tamanhos, hoje: dt.date, repeticoes: int) -> tuple[list[Contagem], ResultadoTempo,
                                                                               dict[str, int], list[str]]:
    usuarios = gerar_usuarios(tam.usuarios)
    criadores = [u["username"] for u in usuarios] + ["admin"]
    licencas = gerar_licencas(tam.licencas_primeira, hoje, seed=7, criadores=criadores)
    escritas = escritas_primeira_sincronizacao(usuarios, licencas)
    contagens: list[Contagem] = []
    problemas: list[str] = []
    tempo = ResultadoTempo(len(licencas), escritas, tam.latencia_ms, tam.paralelo, [], [], [], [])
    detalhe_inc: dict[str, int] = {}

    for rodada in range(repeticoes):
        sufixo = f" (rodada {rodada + 1}/{repeticoes})" if repeticoes > 1 else ""
        # --- a ferramenta real, em servidores novos ---
        par = ParDeServidores(hoje, tam.latencia_ms)
        try:
            semear(par.principal, usuarios, licencas)
            print(f"   ferramenta: 1ª sincronização de {len(licencas)} licenças e {len(usuarios)} usuários "
                  f"a {tam.latencia_ms:g} ms{sufixo}...", flush=True)
            conexoes = par.zerar_contagens()
            primeira = rodar_ferramenta(par, tam.paralelo)
            linhas = contar("1ª sincronização", par, conexoes, escritas)
            tempo.nossas.append(primeira)
            tempo.nossas_conexoes.append(sum(c.conexoes for c in linhas))
            if primeira.codigo != 0:
                problemas.append(f"1ª sincronização{sufixo} terminou com {primeira.resumo_erro()}")
            if rodada == 0:  # contagens de requisições: só na 1ª rodada
                contagens += linhas
                print("   ferramenta: sincronização sem mudanças...", flush=True)
                conexoes = par.zerar_contagens()
                segunda = rodar_ferramenta(par, tam.paralelo)
                contagens += contar("sem mudanças", par, conexoes, 0)
                if segunda.codigo != 0:
                    problemas.append(f"sincronização sem mudanças terminou com {segunda.resumo_erro()}")
                print("   ferramenta: sincronização incremental (mudanças de todo tipo)...", flush=True)
                esperadas_inc, detalhe_inc = mudar_para_incremental(
                    par, licencas, usuarios, hoje, max(1, tam.licencas_primeira // 100), seed=11)
                conexoes = par.zerar_contagens()
                terceira = rodar_ferramenta(par, tam.paralelo)
                contagens += contar("incremental", par, conexoes, esperadas_inc)
                if terceira.codigo != 0:
                    problemas.append(f"sincronização incremental terminou com {terceira.resumo_erro()}")
        finally:
            par.parar()

        # --- a base sequencial, em servidores novos com os mesmos dados ---
        par = ParDeServidores(hoje, tam.latencia_ms)
        try:
            semear(par.principal, usuarios, licencas)
            print(f"   base sequencial (uma conexão por requisição) com os mesmos dados{sufixo}...", flush=True)
            conexoes = par.zerar_contagens()
            base = rodar_base(par)
            tempo.bases.append(base)
            tempo.bases_conexoes.append(par.principal.connections_accepted - conexoes["principal"]
                                        + par.backup.connections_accepted - conexoes["backup"])
            if base.codigo != 0:
                problemas.append(f"base sequencial{sufixo} terminou com {base.resumo_erro()}")
        finally:
            par.parar()

        # --- referência informativa: cliente mínimo (http.client), servidores novos ---
        par = ParDeServidores(hoje, tam.latencia_ms)
        try:
            semear(par.principal, usuarios, licencas)
            print(f"   referência: cliente mínimo (http.client, {tam.paralelo} conexões){sufixo}...", flush=True)
            minimo = rodar_cliente_minimo(par, tam.paralelo)
            tempo.minimos.append(minimo)
            if minimo.codigo != 0:
                problemas.append(f"cliente mínimo{sufixo} terminou com {minimo.resumo_erro()}")
            elif par.backup.write_count() != escritas:
                problemas.append(f"cliente mínimo{sufixo} fez {par.backup.write_count()} escritas, "
                                 f"esperadas {escritas}")
        finally:
            par.parar()
    return contagens, tempo, detalhe_inc, problemas


# ---------------------------------------------------------------------------
# Parte 3: planejador com 100.000 licenças por lado (processo filho, memória limpa)
# ---------------------------------------------------------------------------

def montar_retratos(n: int, usuarios: int, hoje: dt.date, seed: int = 3) -> tuple[sb.Snapshot, sb.Snapshot]:
    """Retratos em memória com diferenças realistas: ~10% ausentes no backup, ~10% com dados
    alterados, bloqueadas/pendentes/vencidas, algumas vencidas só no backup ou bloqueadas só
    no backup, 1% só no backup, e datas diferentes em quase todas (o backup recebeu cada
    licença por sincronização, em outro dia: as datas não são copiáveis)."""
    rng = random.Random(seed)
    criadores = [f"revenda{i:05d}" for i in range(usuarios)] + ["admin"]
    users_p = {nome: sb.User(nome, f"{nome}@exemplo.com.br", "user") for nome in criadores[:-1]}
    users_b = {nome: sb.User(nome, f"{nome}@exemplo.com.br" if rng.random() > 0.02 else None, "user")
               for nome in criadores[:-1] if rng.random() > 0.05}
    lic_p: dict[str, sb.License] = {}
    lic_b: dict[str, sb.License] = {}
    for i in range(n):
        reg = gerar_licenca("plano", i, hoje, rng, criadores)
        c = reg.campos
        p = sb.License(device_id=c["device_id"], owner_name=c["owner_name"], cpf=c["cpf"], email=c["email"],
                       address=c["address"], license_type=c["license_type"], created_by=c["created_by"],
                       status=c["status"], start_date=dt.date.fromisoformat(c["start_date"]),
                       end_date=dt.date.fromisoformat(c["end_date"]) if c["end_date"] else None,
                       custom_interval=60, features="core")
        lic_p[p.device_id] = p
        sorteio = rng.random()
        if sorteio < 0.10:
            continue  # ausente no backup
        inicio_b = hoje - dt.timedelta(days=rng.randint(0, 27))
        meses = MESES[p.license_type]
        b = dataclasses.replace(p, start_date=inicio_b,
                                end_date=None if meses is None else add_months(inicio_b, meses),
                                status="active" if p.status == "active" and reg.categoria != "vencida" else "blocked")
        if sorteio < 0.20:  # dados alterados (no principal, depois da última sincronização)
            b = dataclasses.replace(b, **rng.choice(({"owner_name": "Nome Antigo"},
                                                     {"address": "Endereço antigo, 1"},
                                                     {"license_type": "mensal"}, {"email": None})))
        elif sorteio < 0.21 and reg.categoria == "ativa" and meses is not None:
            b = dataclasses.replace(b, end_date=hoje - dt.timedelta(days=2))  # vencida só no backup
        elif sorteio < 0.22 and reg.categoria == "ativa":
            b = dataclasses.replace(b, status="blocked")  # bloqueada só no backup
        lic_b[b.device_id] = b
    for i in range(n // 100):  # 1% só no backup
        reg = gerar_licenca("so-backup", i, hoje, rng, ["admin"], "ativa")
        c = reg.campos
        lic_b[c["device_id"]] = sb.License(device_id=c["device_id"], owner_name=c["owner_name"], cpf=c["cpf"],
                                           email=c["email"], address=c["address"],
                                           license_type=c["license_type"], created_by="admin", status="active",
                                           start_date=dt.date.fromisoformat(c["start_date"]), end_date=None)
    primario = sb.Snapshot("http://principal.exemplo", users_p, lic_p, login_username="admin")
    backup = sb.Snapshot("http://backup.exemplo", users_b, lic_b, login_username="admin")
    return primario, backup


def maxrss_mb() -> float:
    """Pico de memória residente do processo (ru_maxrss: KiB no Linux, bytes no macOS)."""
    valor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return valor / (1024 * 1024) if sys.platform == "darwin" else valor / 1024


def medir_planejamento_no_filho(n: int, usuarios: int, repeticoes: int, hoje: dt.date) -> dict[str, Any]:
    """Roda no processo filho (memória limpa): tempos sem tracemalloc; depois uma rodada com
    tracemalloc para o pico exato das alocações Python."""
    rss_inicio = maxrss_mb()
    inicio = time.perf_counter()
    primario, backup = montar_retratos(n, usuarios, hoje)
    montagem_s = time.perf_counter() - inicio
    gc.collect()
    rss_retratos = maxrss_mb()
    tempos, cpus, divergencias = [], [], 0
    rss_plano = rss_retratos
    for rodada in range(repeticoes):
        inicio, cpu = time.perf_counter(), time.process_time()
        with sb.collector_paused():  # como a execução (Run) planeja
            plano = sb.plan_pair(primario, backup, hoje)
        tempos.append(time.perf_counter() - inicio)
        cpus.append(time.process_time() - cpu)
        divergencias = len(plano.divergences)
        if rodada == 0:
            rss_plano = maxrss_mb()  # pico depois da 1ª rodada, com o plano ainda vivo
        del plano
        gc.collect()
    # Diagnóstico: quanto do planejamento vai para o coletor de lixo cíclico (gc.callbacks).
    coletas: dict[int, list] = collections.defaultdict(lambda: [0, 0.0])
    comeco: dict[int, float] = {}

    def cronometrar_gc(fase: str, info: dict) -> None:
        geracao = info["generation"]
        if fase == "start":
            comeco[geracao] = time.perf_counter()
        else:
            coletas[geracao][0] += 1
            coletas[geracao][1] += time.perf_counter() - comeco[geracao]

    gc.callbacks.append(cronometrar_gc)
    inicio = time.perf_counter()
    plano = sb.plan_pair(primario, backup, hoje)
    tempo_com_gc = time.perf_counter() - inicio
    gc.callbacks.remove(cronometrar_gc)
    del plano
    gc.collect()
    # tracemalloc: pico das alocações durante plan_pair (retratos já existentes = linha de base)
    tracemalloc.start()
    del primario, backup
    gc.collect()
    primario, backup = montar_retratos(n, usuarios, hoje)
    gc.collect()
    base_retratos, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    plano = sb.plan_pair(primario, backup, hoje)
    atual, pico = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "licencas_principal": len(primario.licenses), "licencas_backup": len(backup.licenses),
        "acoes": len(plano.actions), "divergencias": divergencias, "montagem_s": montagem_s,
        "tempos_s": tempos, "cpu_s": cpus,
        "gc_s": sum(t for _, t in coletas.values()), "gc_rodada_s": tempo_com_gc,
        "gc_coletas": {str(g): n for g, (n, _) in sorted(coletas.items())},
        "gc_geracao2_s": coletas[2][1] if 2 in coletas else 0.0,
        "tracemalloc_retratos_mb": base_retratos / 2**20,
        "tracemalloc_pico_plano_mb": (pico - base_retratos) / 2**20,
        "tracemalloc_pico_total_mb": pico / 2**20,
        "tracemalloc_plano_retido_mb": (atual - base_retratos) / 2**20,
        "rss_inicio_mb": rss_inicio, "rss_retratos_mb": rss_retratos, "rss_plano_mb": rss_plano,
    }


def medir_parte_3(tam: Tamanhos, hoje: dt.date) -> dict[str, Any]:
    comando = [sys.executable, __file__, "--_planejamento", str(tam.licencas_plano),
               "--_usuarios", str(tam.usuarios_plano), "--_hoje", hoje.isoformat()]
    proc = subprocess.run(comando, capture_output=True, text=True, encoding="utf-8", timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"medição do planejador falhou: {proc.stderr.strip()[-1000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# Parte 4: sincronização sem mudanças de 10.000 licenças em loopback
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class ResultadoSemMudancas:
    licencas: int
    acomodacao: ExecucaoFerramenta
    escritas_acomodacao: int
    medida: ExecucaoFerramenta
    contagens: list[Contagem]
    realista: ExecucaoFerramenta | None
    contagens_realista: list[Contagem]


def medir_parte_4(tam: Tamanhos, hoje: dt.date) -> ResultadoSemMudancas:
    usuarios = gerar_usuarios(tam.usuarios_sem_mudancas)
    criadores = [u["username"] for u in usuarios] + ["admin"]
    licencas = gerar_licencas(tam.licencas_sem_mudancas, hoje, seed=13, criadores=criadores)
    par = ParDeServidores(hoje, latencia_ms=0)
    try:
        print(f"   semeando {len(licencas)} licenças idênticas nos dois servidores...", flush=True)
        semear(par.principal, usuarios, licencas)
        semear(par.backup, usuarios, licencas)
        print("   execução de acomodação...", flush=True)
        par.zerar_contagens()
        acomodacao = rodar_ferramenta(par, tam.paralelo)
        escritas_acomodacao = par.backup.write_count()
        print("   execução medida (sem mudanças)...", flush=True)
        conexoes = par.zerar_contagens()
        medida = rodar_ferramenta(par, tam.paralelo)
        contagens = contar(f"sem mudanças {inteiro(len(licencas))} (loopback)", par, conexoes, 0)
        # Informativo: o estado real depois de uma 1ª sincronização tem datas diferentes em
        # todas as licenças (o backup recebeu cada uma em outro dia; datas não são copiáveis),
        # então cada execução relata divergências não sincronizáveis.
        print("   execução informativa: sem mudanças, mas com datas diferentes no backup...", flush=True)
        for registro in licencas:
            if registro.categoria == "ativa" and registro.campos["license_type"] != "vitalicia":
                inicio = hoje - dt.timedelta(days=1)
                par.backup.set_dates(registro.device_id, inicio,
                                     add_months(inicio, MESES[registro.campos["license_type"]]))
        conexoes = par.zerar_contagens()
        realista = rodar_ferramenta(par, tam.paralelo)
        contagens_realista = contar(f"sem mudanças {inteiro(len(licencas))}, datas ≠", par, conexoes, 0)
    finally:
        par.parar()
    return ResultadoSemMudancas(len(licencas), acomodacao, escritas_acomodacao, medida, contagens, realista,
                                contagens_realista)


# ---------------------------------------------------------------------------
# Parte 5: crescimento dos arquivos locais (histórico e --json)
# ---------------------------------------------------------------------------

EXECUCOES_POR_DIA = 96  # uma a cada 15 minutos
DIAS_NO_ANO = 365
MB = 1024 * 1024


@dataclasses.dataclass
class ResultadoCrescimento:
    licencas: int
    divergencias: int
    linha_sem_mudancas_b: int   # bytes das colunas de uma linha sem mudanças, como a ferramenta grava
    linha_antiga_b: int         # a mesma linha com os detalhes inteiros na própria linha (formato anterior)
    venda_b: int                # bytes acrescentados por uma execução com uma venda (linha, auditoria, conteúdos)
    arquivo_sem_mudancas_b: int  # arquivo com um ano de linhas sem mudanças (medido: linhas reais clonadas)
    sobrecarga: float           # bytes do arquivo / bytes de dados, no banco clonado
    poda_s: float               # retenção (prune) de uma execução com o ano cheio
    json_b: int                 # --json de uma execução sem mudanças
    json_completo_b: int        # --json-completo da mesma execução
    execucao_s: float           # tempo de uma execução sem mudanças (processo filho)

    @property
    def vendas(self) -> int:
        return DIAS_NO_ANO

    @property
    def ano_b(self) -> float:
        """Um ano: as linhas sem mudanças medidas + uma venda por dia (com a sobrecarga medida do arquivo)."""
        return self.arquivo_sem_mudancas_b + self.vendas * self.venda_b * self.sobrecarga

    @property
    def ano_antigo_b(self) -> float:
        return self.ano_b + DIAS_NO_ANO * EXECUCOES_POR_DIA * (self.linha_antiga_b - self.linha_sem_mudancas_b)


def bytes_de_dados(con: sqlite3.Connection) -> int:
    """Soma do tamanho de todos os valores de todas as tabelas (o que o SQLite guarda, sem páginas)."""
    total = 0
    for (tabela_,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"):
        colunas = [c[1] for c in con.execute(f"PRAGMA table_info({tabela_})")]
        soma = " + ".join(f"coalesce(length({c}), 0)" for c in colunas)
        total += con.execute(f"SELECT coalesce(sum({soma}), 0) FROM {tabela_}").fetchone()[0]
    return total


def rodar_json(par: ParDeServidores, *extra: str) -> tuple[str, float]:
    comando = [sys.executable, str(SCRIPT), "--json", "--sem-progresso", "--env", par.arquivo_env,
               "--hoje", par.hoje.isoformat(), *extra]
    proc, parede, _cpu = rodar_filho(comando, par.ambiente(), 600, par.pasta_dados)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"a ferramenta saiu com {proc.returncode}: {proc.stderr[-500:]!r}")
    return proc.stdout, parede


def clonar_ano(origem: Path, destino: Path, linha_id: int) -> int:
    """Copia o histórico e clona a linha `linha_id` (uma execução sem mudanças, gravada pela ferramenta)
    até completar um ano de execuções a cada 15 minutos; devolve o tamanho do arquivo."""
    shutil.copy(origem, destino)
    con = sqlite3.connect(destino)
    try:
        colunas = [c[1] for c in con.execute("PRAGMA table_info(execucoes)")
                   if c[1] not in ("id", "execucao", "inicio", "fim")]
        lista = ", ".join(colunas)
        agora = dt.datetime.now(dt.UTC)
        total = DIAS_NO_ANO * EXECUCOES_POR_DIA - con.execute("SELECT count(*) FROM execucoes").fetchone()[0]
        linhas = []
        for i in range(total):
            momento = agora - dt.timedelta(days=DIAS_NO_ANO) + dt.timedelta(minutes=15 * i)
            codigo = momento.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)
            linhas.append((codigo, momento.isoformat(), (momento + dt.timedelta(seconds=2)).isoformat(), linha_id))
        with con:
            con.executemany(f"INSERT INTO execucoes (execucao, inicio, fim, {lista}) "
                            f"SELECT ?, ?, ?, {lista} FROM execucoes WHERE id = ?", linhas)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return destino.stat().st_size


def medir_parte_5(licencas: int, hoje: dt.date) -> ResultadoCrescimento:
    usuarios = gerar_usuarios(10)
    criadores = [u["username"] for u in usuarios] + ["admin"]
    registros = gerar_licencas(licencas, hoje, seed=21, criadores=criadores)
    par = ParDeServidores(hoje, latencia_ms=0)
    pasta = Path(tempfile.mkdtemp(prefix="benchmark-historico-"))
    try:
        semear(par.principal, usuarios, registros)
        print("   1ª sincronização e uma execução sem mudanças...", flush=True)
        rodar_json(par)
        saida, execucao_s = rodar_json(par)
        completo, _ = rodar_json(par, "--json-completo")
        divergencias = json.loads(completo)["backups"][0]["contagens"]["divergencias"]
        banco = Path(par.pasta_dados) / "historico.sqlite3"
        historico = sb.History(par.pasta_dados)
        try:
            linha = historico.runs(1)[0]  # a execução sem mudanças, já com os detalhes inteiros
        finally:
            historico.close()
        con = sqlite3.connect(banco)
        try:
            colunas = [c[1] for c in con.execute("PRAGMA table_info(execucoes)")]
            soma = " + ".join(f"coalesce(length({c}), 0)" for c in colunas)
            linha_b, detalhes_b = con.execute(f"SELECT {soma}, length(detalhes) FROM execucoes WHERE id = ?",
                                              (linha["id"],)).fetchone()
            antes = bytes_de_dados(con)
        finally:
            con.close()
        linha_antiga_b = linha_b - detalhes_b + len(sb.dump_json(linha["detalhes"], indent=None).encode("utf-8"))
        print("   uma venda (licença nova no principal: lista de divergências muda)...", flush=True)
        venda = gerar_licenca("venda", 0, hoje, random.Random(1), criadores, categoria="ativa")
        venda.campos["start_date"] = (hoje - dt.timedelta(days=3)).isoformat()  # vendida antes: datas ≠
        venda.campos["end_date"] = None
        semear(par.principal, [], [venda])
        rodar_json(par)
        con = sqlite3.connect(banco)
        try:
            venda_b = bytes_de_dados(con) - antes
        finally:
            con.close()
        print(f"   clonando a linha real até {inteiro(DIAS_NO_ANO * EXECUCOES_POR_DIA)} execuções...", flush=True)
        copia = pasta / "historico.sqlite3"
        arquivo_b = clonar_ano(banco, copia, linha["id"])
        con = sqlite3.connect(copia)
        try:
            sobrecarga = arquivo_b / max(1, bytes_de_dados(con))
        finally:
            con.close()
        historico = sb.History(str(pasta), retention_days=DIAS_NO_ANO)
        try:
            inicio = time.perf_counter()
            historico.prune()  # apaga o primeiro dia (passou de 365 dias) e os conteúdos sem uso
            poda_s = time.perf_counter() - inicio
        finally:
            historico.close()
    finally:
        par.parar()
        shutil.rmtree(pasta, ignore_errors=True)
    return ResultadoCrescimento(licencas, divergencias, linha_b, linha_antiga_b, venda_b, arquivo_b, sobrecarga,
                                poda_s, len(saida.encode("utf-8")), len(completo.encode("utf-8")), execucao_s)


def imprimir_parte_5(r: ResultadoCrescimento) -> bool:
    execucoes = DIAS_NO_ANO * EXECUCOES_POR_DIA
    ok = r.ano_b / MB < ALVO_HISTORICO_MB
    linhas = [
        ["linha de uma execução sem mudanças", f"{inteiro(r.linha_sem_mudancas_b)} B",
         f"formato anterior (detalhes na linha): {inteiro(r.linha_antiga_b)} B"],
        ["execução com uma venda (acréscimo)", f"{inteiro(r.venda_b)} B", "linha, auditoria e a lista nova"],
        [f"{inteiro(execucoes)} execuções sem mudanças", f"{num(r.arquivo_sem_mudancas_b / MB, 1)} MB",
         f"arquivo medido (linhas reais clonadas; {num(r.sobrecarga, 2)}× os dados)"],
        [f"um ano ({DIAS_NO_ANO} vendas)", f"{num(r.ano_b / MB, 1)} MB",
         f"formato anterior: {num(r.ano_antigo_b / MB, 0)} MB"],
        ["retenção (prune) com o ano cheio", f"{num(r.poda_s * 1000, 0)} ms", "por execução"],
        ["--json sem mudanças", f"{num(r.json_b / 1024, 1)} KiB",
         f"--json-completo: {num(r.json_completo_b / 1024, 1)} KiB ({inteiro(r.divergencias)} divergências)"],
        ["execução sem mudanças (processo filho)", f"{num(r.execucao_s, 2)} s", ""],
    ]
    print(f"Parte 5: arquivos locais com {inteiro(r.licencas)} licenças, uma execução a cada 15 minutos", flush=True)
    for linha in tabela(["medida", "resultado", "observação"], linhas):
        print("   " + linha, flush=True)
    print(f"   {resultado_alvo(ok):<13} histórico de um ano < {num(ALVO_HISTORICO_MB, 0)} MB: "
          f"{num(r.ano_b / MB, 1)} MB", flush=True)
    return ok


# ---------------------------------------------------------------------------
# Parte 6: textos de 200.000 caracteres (máscara de segredos em tempo linear)
# ---------------------------------------------------------------------------

TEXTO_LONGO = 200_000


def textos_longos(n: int) -> dict[str, str]:
    """Textos de n caracteres nas formas que faziam a máscara antiga revarrer o texto a cada caractere
    (letras seguidas, sinais como '!', esquema://, usuário:senha sem @) e com controles do terminal."""
    def repetir(trecho: str) -> str:
        return (trecho * (n // len(trecho) + 1))[:n]
    return {
        "letras": repetir("a"),
        "letras e dígitos": repetir("a1"),
        "sinais": repetir("!"),
        "esquema://": "x://" + repetir("a")[4:],
        "usuário:senha sem @": repetir("!:"),
        "controles (ESC, U+202E)": repetir("ab\x1b[31m\u202e"),
    }


def medir_mascara(n: int, repeticoes: int = 3) -> dict[str, float]:
    """Segundos de CPU (time.process_time, o melhor de `repeticoes`: a carga da máquina não entra) de
    sb.terminal_text (máscara + controles à vista) em cada texto, com segredos registrados como numa
    execução de verdade."""
    sb.run_context().secrets.add(secrets.token_urlsafe(16))
    sb.run_context().secrets.add("abc1")  # valor curto: a regra da palavra inteira
    tempos = {}
    for nome, texto in textos_longos(n).items():
        melhor = float("inf")
        for _ in range(repeticoes):
            inicio = time.process_time()
            sb.terminal_text(texto)
            melhor = min(melhor, time.process_time() - inicio)
        tempos[nome] = melhor
    return tempos


@dataclasses.dataclass
class ResultadoTextoLongo:
    mascara: dict[int, dict[str, float]]          # tamanho → forma → segundos
    longas: int                                   # licenças com id e nome de 200.000 caracteres
    comuns: int
    tempos: dict[str, tuple[float, float]]        # execução → (com textos longos, sem eles), em segundos
    cpu: dict[str, tuple[float, float]]           # o mesmo, em segundos de CPU do processo filho
    codigos: dict[str, tuple[int, int]]


def rodar_texto(par: ParDeServidores, *args: str, timeout: float = 900) -> tuple[float, float, int]:
    """A ferramenta em modo texto (o que passa pela máscara), como processo filho: (parede, CPU, código)."""
    comando = [sys.executable, str(SCRIPT), *args]
    proc, parede, cpu = rodar_filho(comando, par.ambiente(), timeout, par.pasta_dados)
    return parede, cpu, proc.returncode


def execucoes_de_ponta_a_ponta(par: ParDeServidores) -> dict[str, tuple[float, float, int]]:
    comum = ["--env", par.arquivo_env, "--hoje", par.hoje.isoformat()]
    resultado = {}
    for nome, args in (("1ª sincronização", ["--sem-progresso", *comum]),
                       ("verificar", ["verificar", "--sem-progresso", *comum])):
        resultado[nome] = rodar_texto(par, *args)
    with sqlite3.connect(os.path.join(par.pasta_dados, "historico.sqlite3")) as con:
        [(execucao,)] = con.execute("SELECT execucao FROM execucoes ORDER BY id DESC LIMIT 1").fetchall()
    resultado["historico --detalhes"] = rodar_texto(par, "historico", "--detalhes", execucao, "--env", par.arquivo_env)
    return resultado


def medir_parte_6(hoje: dt.date, comuns: int = 200) -> ResultadoTextoLongo:
    mascara = {n: medir_mascara(n) for n in (TEXTO_LONGO, 2 * TEXTO_LONGO)}
    usuarios = gerar_usuarios(5)
    licencas = gerar_licencas(comuns, hoje, seed=17, criadores=[u["username"] for u in usuarios] + ["admin"])
    longas = []
    for i, texto in enumerate(textos_longos(TEXTO_LONGO).values()):
        # id e nome do cliente longos (o id começa com o índice: cada um é uma licença); ativa e vitalícia,
        # como a licença grátis que um revendedor cria (nenhuma escrita por caminho com o id)
        campos = {"device_id": f"{i}{texto}"[:TEXTO_LONGO], "license_type": "vitalicia", "owner_name": texto,
                  "address": texto, "created_by": "admin"}
        longas.append(Registro(campos, "ativa"))
    tempos: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    codigos: dict[str, list[int]] = {}
    for com_longas in (True, False):
        par = ParDeServidores(hoje)
        try:
            print(f"   ponta a ponta {'com' if com_longas else 'sem'} os textos longos...", flush=True)
            semear(par.principal, usuarios, licencas + (longas if com_longas else []))
            for nome, (segundos, cpu_s, codigo) in execucoes_de_ponta_a_ponta(par).items():
                tempos.setdefault(nome, []).append(segundos)
                cpu.setdefault(nome, []).append(cpu_s)
                codigos.setdefault(nome, []).append(codigo)
        finally:
            par.parar()
    return ResultadoTextoLongo(mascara, len(longas), comuns, {k: (v[0], v[1]) for k, v in tempos.items()},
                               {k: (v[0], v[1]) for k, v in cpu.items()}, {k: (v[0], v[1]) for k, v in codigos.items()})


def imprimir_parte_6(r: ResultadoTextoLongo) -> bool:
    menor, maior = sorted(r.mascara)
    linhas = [[forma, f"{num(r.mascara[menor][forma] * 1000, 1)} ms", f"{num(r.mascara[maior][forma] * 1000, 1)} ms",
               f"{num(r.mascara[maior][forma] / max(r.mascara[menor][forma], 1e-9), 1)}×"]
              for forma in r.mascara[menor]]
    print(f"Parte 6: textos de {inteiro(TEXTO_LONGO)} caracteres", flush=True)
    print("   máscara de segredos + controles à vista (sb.terminal_text), CPU, o melhor de 3:", flush=True)
    for linha in tabela(["texto", f"{inteiro(menor)} caracteres", f"{inteiro(maior)} caracteres", "razão"], linhas):
        print("   " + linha, flush=True)
    print(f"   ponta a ponta (processo filho, saída em texto): {r.longas} licenças com id, nome e endereço de "
          f"{inteiro(TEXTO_LONGO)} caracteres + {r.comuns} comuns, ao lado das mesmas {r.comuns} sem as longas:",
          flush=True)
    linhas = [[nome, f"{num(com, 2)} s", f"{num(sem, 2)} s", f"{num(com - sem, 2)} s",
               f"{num(r.cpu[nome][0], 2)} s / {num(r.cpu[nome][1], 2)} s",
               f"{r.codigos[nome][0]} / {r.codigos[nome][1]}"]
              for nome, (com, sem) in r.tempos.items()]
    for linha in tabela(["execução", "com os textos longos", "sem eles", "diferença", "CPU com / sem", "códigos"],
                        linhas):
        print("   " + linha, flush=True)
    # códigos iguais com e sem os textos longos (o verificar sai 1 aqui com ou sem eles: os servidores do
    # benchmark publicam em GET /servers a lista embutida, não a deles); a sincronização sai 0
    ok = all(com - sem < ALVO_TEXTO_LONGO_S for com, sem in r.tempos.values()) and \
        all(com == sem for com, sem in r.codigos.values()) and r.codigos["1ª sincronização"][0] == 0
    pior = max(com - sem for com, sem in r.tempos.values())
    print(f"   {resultado_alvo(ok):<13} o que os textos de {inteiro(TEXTO_LONGO)} caracteres custam a mais, de ponta a "
          f"ponta, em cada execução < {num(ALVO_TEXTO_LONGO_S, 0)} s: pior {num(pior, 2)} s", flush=True)
    return ok


# ---------------------------------------------------------------------------
# Tabela
# ---------------------------------------------------------------------------

def tabela(cabecalho: list[str], linhas: list[list[str]]) -> list[str]:
    larguras = [max(len(str(x)) for x in coluna) for coluna in zip(cabecalho, *linhas, strict=True)]

    def formato(valores) -> str:
        return "  ".join(str(v).ljust(largura) for v, largura in zip(valores, larguras, strict=True)).rstrip()
    return [formato(cabecalho), formato(["-" * largura for largura in larguras])] + [formato(lin) for lin in linhas]


def num(valor: float, casas: int = 2) -> str:
    """Número no formato brasileiro (vírgula decimal, ponto de milhar)."""
    texto = f"{valor:,.{casas}f}"
    return texto.replace(",", "_").replace(".", ",").replace("_", ".")


def inteiro(valor: int) -> str:
    return f"{valor:,}".replace(",", ".")


def resultado_alvo(ok: bool) -> str:
    return "ATINGIDA" if ok else "NÃO ATINGIDA"


def imprimir_relatorio(tam: Tamanhos, maquina: list[str], contagens: list[Contagem], detalhe_inc: dict[str, int],
                       tempo: ResultadoTempo, plano: dict[str, Any], sem_mudancas: ResultadoSemMudancas,
                       problemas: list[str], rapido: bool) -> bool:
    saida: list[str] = []
    p = saida.append
    p("")
    p("=" * 78)
    p("BENCHMARK DA SINCRONIZAÇÃO" + ("  (modo --rapido: tamanhos reduzidos, alvos só indicativos)" if rapido else ""))
    p("=" * 78)
    for linha in maquina:
        p(linha)
    p("")

    p(f"1. Requisições × mínimo teórico (contadas nos servidores; {tam.usuarios} usuários, "
      f"{inteiro(tam.licencas_primeira)} licenças, --paralelo {tam.paralelo})")
    p("   mínimo por servidor = 1 GET /health + 1 login + 1 GET /admin/users + 1 GET /admin/devices + 1 GET /servers "
      "+ 1 por escrita + 2 leituras de conferência (usuários e licenças) no servidor que recebeu escritas")
    linhas = [[c.execucao, c.servidor, inteiro(c.total), inteiro(c.minimo),
               f"{inteiro(c.escritas)}/{inteiro(c.escritas_esperadas)}", inteiro(c.conexoes),
               "= mínimo" if c.ok else f"DIFERENTE {c.total - c.minimo:+d} ({c.detalhe})"]
              for c in contagens + sem_mudancas.contagens + sem_mudancas.contagens_realista]
    for linha in tabela(["execução", "servidor", "requisições", "mínimo", "escritas/esperadas", "conexões",
                         "resultado"], linhas):
        p("   " + linha)
    p("   escritas esperadas na incremental (calculadas dos dados semeados): "
      + "; ".join(f"{k}: {v}" for k, v in detalhe_inc.items()))
    p("")

    p(f"2. Tempo de parede da 1ª sincronização: {inteiro(tempo.licencas)} licenças + {tam.usuarios} usuários, "
      f"{num(tempo.latencia_ms, 0)} ms de latência adicionada por requisição")
    nossa, base = tempo.nossas[0], tempo.bases[0]
    rodadas = len(tempo.nossas)

    def todas(execs) -> str:
        return "" if rodadas == 1 else f"mediana de {rodadas}: " + ", ".join(num(e.parede_s) for e in execs) + " s; "
    base_requisicoes = (base.documento or {}).get("requisicoes", 0)
    requisicoes_1a = max(1, sum(c.total for c in contagens if c.execucao == '1ª sincronização'))
    linhas = [
        ["nossa (linha de comando, processo filho)", f"{num(tempo.nossa_s)} s",
         f"{todas(tempo.nossas)}--paralelo {tempo.paralelo}; "
         f"{inteiro(sum(c.total for c in contagens if c.execucao == '1ª sincronização'))} requisições em "
         f"{inteiro(tempo.nossas_conexoes[0])} conexões; duração interna {num(nossa.duracao_interna_s or 0)} s; "
         f"CPU do processo {num(nossa.cpu_s)} s "
         f"(≈ {num(1000 * nossa.cpu_s / requisicoes_1a)} ms "
         f"por requisição)"],
        ["base sequencial (script antigo, processo filho)", f"{num(tempo.base_s)} s",
         f"{todas(tempo.bases)}{inteiro(base_requisicoes)} requisições em {inteiro(tempo.bases_conexoes[0])} "
         f"conexões; CPU do processo {num(base.cpu_s)} s (≈ {num(1000 * base.cpu_s / max(1, base_requisicoes))} ms "
         f"por requisição)"],
        ["referência: cliente mínimo (http.client)", f"{num(statistics.median(m.parede_s for m in tempo.minimos))} s",
         f"{todas(tempo.minimos)}informativo: {tempo.paralelo} conexões keep-alive, as mesmas escritas; "
         f"{num(statistics.median(m.parede_s for m in tempo.minimos) / tempo.limite_s, 2)}× o limite; "
         f"CPU do processo {num(tempo.minimos[0].cpu_s)} s"],
        ["limite da latência", f"{num(tempo.limite_s)} s",
         f"{inteiro(tempo.escritas)} escritas × {num(tempo.latencia_ms, 0)} ms / {tempo.paralelo}"],
        ["base / nossa", f"{num(tempo.velocidade, 1)}×", f"alvo ≥ {num(ALVO_VELOCIDADE, 0)}×"],
        ["nossa / limite", f"{num(tempo.razao_limite, 2)}×", f"alvo ≤ {num(ALVO_LIMITE, 1)}×"],
        ["base / limite (teto da razão)", f"{num(tempo.base_s / tempo.limite_s, 1)}×",
         "a maior razão base/nossa possível, se a nossa chegasse ao limite"],
    ]
    for linha in tabela(["medida", "valor", "observação"], linhas):
        p("   " + linha)
    p("")

    tempos = plano["tempos_s"]
    p(f"3. Planejamento (plan_pair) com {inteiro(plano['licencas_principal'])} licenças no principal e "
      f"{inteiro(plano['licencas_backup'])} no backup ({inteiro(plano['acoes'])} ações, "
      f"{inteiro(plano['divergencias'])} divergências)")
    linhas = [
        ["tempo (time.perf_counter)", f"{num(statistics.median(tempos), 3)} s",
         f"mediana de {len(tempos)}; todas: {', '.join(num(t, 3) for t in tempos)} s; CPU (process_time): "
         f"{', '.join(num(t, 3) for t in plano['cpu_s'])} s"],
        ["coletor de lixo (gc) no plano", f"{num(plano['gc_s'], 3)} s",
         f"de {num(plano['gc_rodada_s'], 3)} s numa rodada extra (gc.callbacks); coletas por geração "
         f"{plano['gc_coletas']}, das quais a geração 2 custou {num(plano['gc_geracao2_s'], 3)} s"],
        ["pico do plano (tracemalloc)", f"{num(plano['tracemalloc_pico_plano_mb'], 1)} MB",
         f"alocações Python durante plan_pair, acima dos retratos; retido no plano: "
         f"{num(plano['tracemalloc_plano_retido_mb'], 1)} MB"],
        ["pico total (tracemalloc)", f"{num(plano['tracemalloc_pico_total_mb'], 1)} MB",
         f"retratos ({num(plano['tracemalloc_retratos_mb'], 1)} MB) + plano"],
        ["Δ maxrss do plano (getrusage)", f"{num(plano['rss_plano_mb'] - plano['rss_retratos_mb'], 1)} MB",
         "ru_maxrss depois da 1ª rodada − depois de montar os retratos"],
        ["Δ maxrss total (getrusage)", f"{num(plano['rss_plano_mb'] - plano['rss_inicio_mb'], 1)} MB",
         f"retratos + plano (processo filho; base {num(plano['rss_inicio_mb'], 1)} MB após importar)"],
        ["montagem dos retratos", f"{num(plano['montagem_s'], 2)} s", "não entra no alvo"],
    ]
    for linha in tabela(["medida", "valor", "observação"], linhas):
        p("   " + linha)
    p("")

    medida, realista = sem_mudancas.medida, sem_mudancas.realista
    p(f"4. Sincronização sem mudanças de {inteiro(sem_mudancas.licencas)} licenças, ponta a ponta em loopback "
      f"(latência 0)")
    linhas = [
        ["dados idênticos", f"{num(medida.parede_s, 2)} s",
         f"processo filho inteiro; duração interna {num(medida.duracao_interna_s or 0, 2)} s; "
         f"escritas na acomodação: {sem_mudancas.escritas_acomodacao}"],
    ]
    if realista is not None:
        divergencias = sum((b.get("contagens") or {}).get("divergencias", len(b.get("divergencias", [])))
                           for b in (realista.documento or {}).get("backups", []))
        linhas.append(["datas ≠ (informativo)", f"{num(realista.parede_s, 2)} s",
                       f"estado real após a 1ª sincronização: {inteiro(divergencias)} divergências relatadas; "
                       f"duração interna {num(realista.duracao_interna_s or 0, 2)} s"])
    for linha in tabela(["cenário", "tempo", "observação"], linhas):
        p("   " + linha)
    p("")

    codigos = {"1ª sincronização": nossa.codigo, "base": base.codigo,
               f"sem mudanças {inteiro(sem_mudancas.licencas)}": medida.codigo,
               "acomodação": sem_mudancas.acomodacao.codigo}
    if realista is not None:
        codigos["sem mudanças, datas ≠"] = realista.codigo
    p("Códigos de saída da ferramenta: " + ", ".join(f"{k}: {v}" for k, v in codigos.items()))
    for problema in problemas + [f"{k} terminou com {e.resumo_erro()}" for k, e in
                                 (("sem mudanças", medida), ("acomodação", sem_mudancas.acomodacao))
                                 if e.codigo != 0]:
        p(f"⚠️  {problema}")
    p("")

    todas = contagens + sem_mudancas.contagens + sem_mudancas.contagens_realista
    requisicoes_ok = all(c.ok for c in todas)
    pior_plano = max(tempos)
    memoria = max(plano["tracemalloc_pico_total_mb"], plano["rss_plano_mb"] - plano["rss_inicio_mb"])
    alvos = [
        (requisicoes_ok, "Requisições = mínimo exato",
         f"{sum(c.ok for c in todas)}/{len(todas)} linhas no mínimo; excesso total "
         f"{sum(c.total - c.minimo for c in todas):+d}"),
        (tempo.velocidade >= ALVO_VELOCIDADE, f"≥ {num(ALVO_VELOCIDADE, 0)}× mais rápida que a base sequencial",
         f"{num(tempo.velocidade, 1)}× ({num(tempo.base_s)} s / {num(tempo.nossa_s)} s)"),
        (tempo.razao_limite <= ALVO_LIMITE, f"≤ {num(ALVO_LIMITE, 1)}× o limite da latência",
         f"{num(tempo.razao_limite, 2)}× ({num(tempo.nossa_s)} s / {num(tempo.limite_s)} s)"),
        (pior_plano < ALVO_PLANO_S, f"planejamento de {inteiro(plano['licencas_principal'])} licenças < "
                                    f"{num(ALVO_PLANO_S, 0)} s",
         f"{num(pior_plano, 3)} s (pior de {len(tempos)})"),
        (memoria < ALVO_PLANO_MB, f"pico de memória do planejamento < {num(ALVO_PLANO_MB, 0)} MB",
         f"{num(memoria, 1)} MB (maior entre tracemalloc total e Δ maxrss total, retratos incluídos)"),
        (medida.parede_s < ALVO_SEM_MUDANCAS_S and medida.codigo == 0,
         f"sem mudanças de {inteiro(sem_mudancas.licencas)} licenças < {num(ALVO_SEM_MUDANCAS_S, 0)} s",
         f"{num(medida.parede_s, 2)} s de ponta a ponta (código {medida.codigo})"),
    ]
    p("ALVOS" + (" (modo --rapido: tamanhos reduzidos, rode sem --rapido para valer)" if rapido else ""))
    for ok, nome, numeros in alvos:
        p(f"   {resultado_alvo(ok):<13} {nome}: {numeros}")
    p("=" * 78)
    print("\n".join(saida), flush=True)
    return all(ok for ok, _, _ in alvos)


# ---------------------------------------------------------------------------
# Linha de comando
# ---------------------------------------------------------------------------

def analisar_argumentos(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark da sincronização (issue 7); roda à mão, fora do pytest.")
    parser.add_argument("--rapido", action="store_true", help="tamanhos reduzidos para uma conferência rápida")
    parser.add_argument("--latencia-ms", type=float, default=None, help="latência adicionada nas partes 1 e 2 (20)")
    parser.add_argument("--paralelo", type=int, default=None, help="escritas simultâneas da ferramenta (8)")
    parser.add_argument("--licencas", type=int, default=None, help="licenças da 1ª sincronização (2000)")
    parser.add_argument("--repeticoes", type=int, default=1,
                        help="rodadas da parte 2 (nossa e base, em servidores novos); vale a mediana (1)")
    parser.add_argument("--so-crescimento", action="store_true",
                        help="só a parte 5 (histórico de um ano e tamanho do --json, 1.000 licenças)")
    parser.add_argument("--so-mascara", action="store_true",
                        help="só a parte 6 (textos de 200.000 caracteres: máscara de segredos e ponta a ponta)")
    parser.add_argument("--_base", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_minimo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--_planejamento", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--_usuarios", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--_hoje", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = analisar_argumentos(argv)
    if args._base:  # processo filho da base sequencial
        return base_no_filho()
    if args._minimo:  # processo filho do cliente mínimo de referência
        return cliente_minimo_no_filho()
    if args._planejamento is not None:  # processo filho da parte 3
        hoje = dt.date.fromisoformat(args._hoje) if args._hoje else hoje_utc()
        resultado = medir_planejamento_no_filho(args._planejamento, args._usuarios, 3, hoje)
        print(json.dumps(resultado))
        return 0

    if args.so_crescimento:
        inicio = time.perf_counter()
        for linha in descrever_maquina():
            print("   " + linha, flush=True)
        resultado = medir_parte_5(1_000, hoje_utc())
        ok = imprimir_parte_5(resultado)
        print(f"(parte 5 em {num(time.perf_counter() - inicio, 0)} s; carga {carga()})", flush=True)
        return 0 if ok else 1
    if args.so_mascara:
        inicio = time.perf_counter()
        for linha in descrever_maquina():
            print("   " + linha, flush=True)
        ok = imprimir_parte_6(medir_parte_6(hoje_utc()))
        print(f"(parte 6 em {num(time.perf_counter() - inicio, 0)} s; carga {carga()})", flush=True)
        return 0 if ok else 1
    tam = TAMANHOS_RAPIDOS if args.rapido else Tamanhos()
    mudancas = {k: v for k, v in (("latencia_ms", args.latencia_ms), ("paralelo", args.paralelo),
                                  ("licencas_primeira", args.licencas)) if v is not None}
    tam = dataclasses.replace(tam, **mudancas)
    hoje = hoje_utc()
    maquina = descrever_maquina()
    carga_inicio = carga()
    print("⏱️  Benchmark da sincronização" + (" (--rapido)" if args.rapido else ""), flush=True)
    for linha in maquina:
        print("   " + linha, flush=True)
    inicio = time.perf_counter()
    print("Partes 1 e 2: requisições e tempo da 1ª sincronização", flush=True)
    contagens, tempo, detalhe_inc, problemas = medir_partes_1_e_2(tam, hoje, max(1, args.repeticoes))
    print(f"Parte 3: planejador com {inteiro(tam.licencas_plano)} licenças por lado (processo filho)...", flush=True)
    plano = medir_parte_3(tam, hoje)
    print(f"Parte 4: sem mudanças com {inteiro(tam.licencas_sem_mudancas)} licenças em loopback", flush=True)
    sem_mudancas = medir_parte_4(tam, hoje)
    print("Parte 5: crescimento dos arquivos locais (1.000 licenças)", flush=True)
    crescimento = medir_parte_5(1_000, hoje)
    print(f"Parte 6: textos de {inteiro(TEXTO_LONGO)} caracteres", flush=True)
    texto_longo = medir_parte_6(hoje)
    duracao = time.perf_counter() - inicio
    print(f"(benchmark concluído em {num(duracao, 0)} s)", flush=True)
    maquina.append(f"Carga do sistema (loadavg de 1 min): {carga_inicio} no início, {carga()} no fim; benchmark "
                   f"em {num(duracao, 0)} s (outros processos na máquina distorcem os tempos)")
    tudo_ok = imprimir_relatorio(tam, maquina, contagens, detalhe_inc, tempo, plano, sem_mudancas, problemas,
                                 args.rapido)
    tudo_ok = imprimir_parte_5(crescimento) and tudo_ok
    tudo_ok = imprimir_parte_6(texto_longo) and tudo_ok
    return 0 if tudo_ok else 1


if __name__ == "__main__":
    sys.exit(main())
