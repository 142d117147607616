"""O início rápido do README: os dois comandos (demonstração e testes) para Linux/Mac e Windows, o
.ci/run rodando EXATAMENTE o comando de testes dele, e as dependências declaradas no cabeçalho do
script (PEP 723, para `uv run`/`pipx run`) iguais às do requirements.txt."""

from __future__ import annotations

import re
import shutil
import sys

from apoio import RAIZ, SCRIPT, ambiente_limpo, rodar_script

README = (RAIZ / "README.md").read_text(encoding="utf-8")
CI = (RAIZ / ".ci" / "run").read_text(encoding="utf-8")


def inicio_rapido() -> str:
    inicio = README.index("## Início rápido")
    return README[inicio:README.index("\n## ", inicio + 1)]


def bloco(linguagem: str) -> list[str]:
    achado = re.search(rf"```{linguagem}\n(.*?)```", inicio_rapido(), re.S)
    assert achado, f"o início rápido não tem o bloco {linguagem}"
    return [linha for linha in achado.group(1).splitlines() if linha.strip()]


def dependencias(linhas) -> dict[str, str]:
    """nome → versões, de linhas no formato do requirements.txt."""
    deps = {}
    for linha in linhas:
        linha = linha.split("#")[0].strip()
        if linha and not linha.startswith("-"):
            nome = re.match(r"[A-Za-z0-9_.-]+", linha).group(0)
            deps[nome.lower()] = linha[len(nome):].replace(" ", "")
    return deps


def test_inicio_rapido_tem_dois_comandos_demo_e_testes_no_linux_e_no_windows():
    linux, windows = bloco("bash"), bloco("powershell")
    assert len(linux) == 2 and len(windows) == 2, (linux, windows)
    assert linux[0].endswith(".venv/bin/python sincronizar_bancos.py demo")
    assert linux[1].endswith(".venv/bin/python -m pytest")
    assert windows[0].endswith(r".venv\Scripts\python sincronizar_bancos.py demo")
    assert windows[1].endswith(r".venv\Scripts\python -m pytest")
    for linha in linux:  # Debian/Ubuntu: sem o comando `python` e sem pip no Python do sistema
        assert linha.startswith("python3 -m venv .venv && .venv/bin/pip install -r requirements"), linha
    for linha in windows:
        assert linha.startswith(r"py -3 -m venv .venv; .venv\Scripts\pip install -r requirements"), linha
    assert "python3-venv" in inicio_rapido() and "git clone" in inicio_rapido()


def test_ci_roda_exatamente_o_comando_de_testes_do_readme():
    comando = bloco("bash")[1]
    linhas_do_ci = [linha.strip() for linha in CI.splitlines()]
    assert comando in linhas_do_ci, f"o .ci/run não roda a linha do README: {comando!r}"
    assert "ruff check ." in CI
    assert "if ! .venv/bin/mypy; then" in CI  # os tipos: arquivos e regras no mypy.ini


def test_windows_instala_e_roda_o_mesmo_que_o_linux():
    def passos(linha: str, separador: str) -> list[str]:
        return [re.sub(r"^\.venv[/\\](bin|Scripts)[/\\]", "", p.strip()) for p in linha.split(separador)][1:]
    for linux, windows in zip(bloco("bash"), bloco("powershell"), strict=True):
        assert passos(linux, "&&") == passos(windows, ";"), (linux, windows)


def test_dependencias_do_cabecalho_pep_723_sao_as_do_requirements():
    script = (RAIZ / "sincronizar_bancos.py").read_text(encoding="utf-8")
    achado = re.search(r"^# /// script\n(.*?)^# ///$", script, re.S | re.M)
    assert achado and script.index("# /// script") < script.index('"""'), "cabeçalho PEP 723 ausente no topo"
    cabecalho = "\n".join(linha[2:] for linha in achado.group(1).splitlines())
    if sys.version_info >= (3, 11):
        import tomllib
        dados = tomllib.loads(cabecalho)
        declaradas, versao = dados["dependencies"], dados["requires-python"]
    else:
        declaradas = re.findall(r'"([^"]+)"', cabecalho.split("dependencies", 1)[1])
        versao = re.search(r'requires-python = "([^"]+)"', cabecalho).group(1)
    requisitos = (RAIZ / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert dependencias(declaradas) == dependencias(requisitos)
    assert versao == ">=3.10"


def test_demo_do_script_copiado_sozinho_diz_que_precisa_do_repositorio_e_sai_com_2(tmp_path):
    """O README diz que `uv run`/`pipx run` rodam a demonstração na pasta do projeto, e que o script copiado
    sozinho para outra pasta (C:\\protecao) não a roda: diz de onde vem o servidor de referência, código 2."""
    copia = tmp_path / "sincronizar_bancos.py"
    shutil.copy(SCRIPT, copia)
    r = rodar_script("demo", env=ambiente_limpo(DADOS_DIR=str(tmp_path / "dados")), cwd=tmp_path, script=copia)
    assert r.codigo == 2, r.stdout + r.stderr
    assert "servidor_referencia.py" in r.stdout + r.stderr and "repositório completo" in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "na pasta do projeto" in inicio_rapido() and "repositório completo" in inicio_rapido()
