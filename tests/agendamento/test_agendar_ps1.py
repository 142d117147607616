"""Verifica o AGENDAR_SINCRONIZACAO.ps1 com uma gramática real de PowerShell.

Não há PowerShell nesta máquina: o script é analisado com tree-sitter +
tree-sitter-powershell (sem erros de sintaxe) e sua estrutura é conferida
(parâmetros e padrões, registro idempotente, pasta de trabalho, repetição sem
limite, configurações da tarefa, recusa do atalho da Microsoft Store; e a
tarefa do modo contínuo: o vigiar sem janela pelo lançador, sem tempo máximo,
de volta se parar, um modo de cada vez, -Remover tira os dois). Os
testes de comportamento com os cmdlets simulados ficam no Pester
(tests/AGENDAR_SINCRONIZACAO.Tests.ps1), que roda no Windows da CI.
"""

from __future__ import annotations

import re

import pytest

tree_sitter = pytest.importorskip("tree_sitter")
tree_sitter_powershell = pytest.importorskip("tree_sitter_powershell")

from apoio import RAIZ, WRAPPER, ambiente_limpo, rodar_python  # noqa: E402

SCRIPT = RAIZ / "AGENDAR_SINCRONIZACAO.ps1"
TESTES_PESTER = RAIZ / "tests" / "AGENDAR_SINCRONIZACAO.Tests.ps1"

# Cmdlets do Windows PowerShell 5.1 que o script pode chamar; qualquer outro
# comando "Verbo-Substantivo" precisa ser uma função definida no próprio script
# (pega erros de digitação que o PowerShell só acusaria ao executar).
CMDLETS_CONHECIDOS = {
    "Get-Command", "Get-Content", "Get-Date", "Get-Location", "Join-Path", "New-Object", "New-TimeSpan",
    "Out-Null", "Resolve-Path", "Select-Object", "Split-Path", "Test-Path", "Where-Object", "ForEach-Object",
    "Write-Host", "Get-ScheduledTask", "Get-ScheduledTaskInfo", "Register-ScheduledTask",
    "Unregister-ScheduledTask", "Start-ScheduledTask", "New-ScheduledTaskAction", "New-ScheduledTaskTrigger",
    "New-ScheduledTaskSettingsSet", "New-ScheduledTaskPrincipal", "ConvertFrom-Json", "Stop-ScheduledTask",
}


def _parser():
    linguagem = tree_sitter.Language(tree_sitter_powershell.language())
    return tree_sitter.Parser(linguagem)


def analisar(fonte: bytes):
    return _parser().parse(fonte)


def nos(no, tipo=None):
    """Todos os nós da árvore (opcionalmente de um tipo)."""
    pilha = [no]
    while pilha:
        atual = pilha.pop()
        if tipo is None or atual.type == tipo:
            yield atual
        pilha.extend(reversed(atual.children))


def erros(arvore):
    return [n for n in nos(arvore.root_node) if n.type == "ERROR" or n.is_missing]


def texto(no) -> str:
    return no.text.decode("utf-8")


class Comando:
    """Um comando com seus parâmetros (-Nome valor) e argumentos."""

    def __init__(self, no) -> None:
        self.no = no
        self.nome = ""
        self.parametros: dict[str, str | None] = {}
        nome = next((c for c in no.children if c.type == "command_name"), None)
        if nome is not None:
            self.nome = texto(nome)
        elementos = next((c for c in no.children if c.type == "command_elements"), None)
        if elementos is None:
            return
        filhos = list(elementos.children)
        i = 0
        while i < len(filhos):
            filho = filhos[i]
            if filho.type == "command_parameter":
                nome_param = texto(filho).lstrip("-").lower()
                valor = None
                j = i + 1
                # "-Confirm:$false": o separador é ":" e o valor vem em seguida.
                colado = j < len(filhos) and filhos[j].type == "command_argument_sep" and ":" in texto(filhos[j])
                if colado and texto(filhos[j]).split(":", 1)[1].strip():
                    valor = texto(filhos[j]).split(":", 1)[1].strip()
                else:
                    while j < len(filhos) and filhos[j].type == "command_argument_sep":
                        j += 1
                    if j < len(filhos) and filhos[j].type != "command_parameter":
                        valor = texto(filhos[j])
                        i = j
                self.parametros[nome_param] = valor
            i += 1

    def __repr__(self) -> str:
        return f"Comando({self.nome!r}, {self.parametros!r})"


def comandos(no, nome=None):
    lista = [Comando(n) for n in nos(no, "command")]
    if nome is not None:
        lista = [c for c in lista if c.nome.lower() == nome.lower()]
    return lista


def funcoes(arvore) -> dict:
    resultado = {}
    for no in nos(arvore.root_node, "function_statement"):
        nome = next(c for c in no.children if c.type == "function_name")
        resultado[texto(nome)] = no
    return resultado


def comandos_da_funcao(arvore, funcao: str, nome: str):
    """Os comandos `nome` chamados dentro da função `funcao` do script."""
    return comandos(funcoes(arvore)[funcao], nome)


def funcao_que_contem(arvore, alvo):
    for nome, no in funcoes(arvore).items():
        if no.start_byte <= alvo.start_byte and alvo.end_byte <= no.end_byte:
            return nome, no
    return None, None


@pytest.fixture(scope="module")
def fonte() -> bytes:
    return SCRIPT.read_bytes()


@pytest.fixture(scope="module")
def arvore(fonte):
    return analisar(fonte)


# ---------------------------------------------------------------------------
# Sintaxe
# ---------------------------------------------------------------------------


def test_arquivo_utf8_com_bom(fonte):
    # Sem BOM, o Windows PowerShell 5.1 lê o arquivo como ANSI e estraga os acentos.
    assert fonte.startswith(b"\xef\xbb\xbf")
    fonte.decode("utf-8")  # não levanta


def test_sem_erros_de_sintaxe(arvore):
    problemas = erros(arvore)
    descricao = [(n.type, n.start_point, texto(n)[:60]) for n in problemas[:10]]
    assert problemas == [], f"erros de sintaxe: {descricao}"
    assert not arvore.root_node.has_error


@pytest.mark.parametrize(
    "estrago",
    [
        lambda s: s.replace(b"function Resolve-Python {", b"function Resolve-Python {{", 1),
        lambda s: s.replace(b"if ($null -eq $candidato) {", b"if ($null -eq $candidato {", 1),
        lambda s: s + b"\nfunction Quebrada { param([int]$x = ) }\n",
    ],
    ids=["chave-a-mais", "parentese-faltando", "parametro-sem-valor"],
)
def test_copia_quebrada_produz_erros(fonte, estrago):
    quebrada = estrago(fonte)
    assert quebrada != fonte
    assert erros(analisar(quebrada)), "a análise deveria acusar a cópia quebrada"


# ---------------------------------------------------------------------------
# Estrutura
# ---------------------------------------------------------------------------


def _parametros_do_script(arvore) -> dict:
    bloco = next(c for c in arvore.root_node.children if c.type == "param_block")
    resultado = {}
    for parametro in nos(bloco, "script_parameter"):
        variavel = next(c for c in parametro.children if c.type == "variable")
        padrao = next((c for c in parametro.children if c.type == "script_parameter_default"), None)
        tipo = next((texto(t) for t in nos(parametro, "type_name")), None)
        valor = None
        if padrao is not None:
            valor = texto(padrao).split("=", 1)[1].strip()
        resultado[texto(variavel).lstrip("$")] = (tipo, valor)
    return resultado


def test_bloco_param_com_todos_os_parametros_e_padroes(arvore):
    parametros = _parametros_do_script(arvore)
    assert parametros["IntervaloMinutos"] == ("int", "60")
    assert parametros["NomeTarefa"] == ("string", "'SincronizarBancosAPI'")
    assert parametros["Python"][0] == "string"
    for chave in ("Remover", "Status", "ExecutarAgora", "SomenteFuncoes"):
        assert parametros[chave] == ("switch", None), chave


def test_registro_substitui_a_tarefa_existente(arvore):
    registros = comandos(arvore.root_node, "Register-ScheduledTask")
    assert registros, "Register-ScheduledTask não encontrado"
    for registro in registros:
        assert "force" in registro.parametros, "Register-ScheduledTask sem -Force"
        assert registro.parametros.get("taskname") in ("$NomeTarefa", "$nomeContinua")
        for parte in ("action", "trigger", "settings", "principal"):
            assert parte in registro.parametros, parte
    # Cada modo registra a sua tarefa (a contínua tem o nome da agendada + "Continuo").
    assert [r.parametros["taskname"] for r in comandos_da_funcao(arvore, "Install-TarefaSincronizacao",
                                                                  "Register-ScheduledTask")] == ["$NomeTarefa"]
    assert [r.parametros["taskname"] for r in comandos_da_funcao(arvore, "Install-TarefaContinua",
                                                                  "Register-ScheduledTask")] == ["$nomeContinua"]


def test_acao_chama_o_involucro_com_a_pasta_de_trabalho(arvore):
    acoes = comandos_da_funcao(arvore, "New-DefinicaoTarefa", "New-ScheduledTaskAction")
    assert len(acoes) == 1
    acao = acoes[0]
    assert acao.parametros.get("workingdirectory") == "$PastaProjeto"
    assert "$involucro" in (acao.parametros.get("argument") or "")
    assert acao.parametros.get("execute") == "$ExecutavelPython"
    # $involucro = Join-Path $PastaProjeto (Get-NomeInvolucro), na mesma função.
    _, funcao = funcao_que_contem(arvore, acao.no)
    corpo = texto(funcao)
    assert re.search(r"\$involucro\s*=\s*Join-Path\s+\$PastaProjeto\s+\(Get-NomeInvolucro\)", corpo)
    nome_involucro = texto(funcoes(arvore)["Get-NomeInvolucro"])
    assert "'sincronizar_automatico.py'" in nome_involucro
    # A pasta do projeto, na execução direta, é a pasta do próprio script.
    principal = [c for c in comandos(arvore.root_node, "Invoke-AgendarSincronizacao")]
    assert principal and principal[-1].parametros.get("pastaprojeto") == "$pastaDoScript"
    assert re.search(rb"\$pastaDoScript\s*=\s*\$PSScriptRoot", arvore.root_node.text)


def test_gatilho_repete_sem_limite(arvore, fonte):
    gatilhos = comandos_da_funcao(arvore, "New-DefinicaoTarefa", "New-ScheduledTaskTrigger")
    assert len(gatilhos) == 1
    gatilho = gatilhos[0]
    assert "once" in gatilho.parametros
    assert "at" in gatilho.parametros
    assert "(New-TimeSpan -Minutes $IntervaloMinutos)" == gatilho.parametros.get("repetitioninterval")
    assert "repetitionduration" not in gatilho.parametros
    # Nenhum limite de duração em lugar nenhum do código (comentários à parte).
    codigo = b"".join(
        n.text for n in nos(arvore.root_node) if n.child_count == 0 and n.type != "comment"
    ).decode("utf-8")
    assert "RepetitionDuration" not in codigo
    assert "MaxValue" not in codigo
    assert not re.search(r"\b365\b", codigo)
    assert not re.search(r"-Days\b", codigo)


def test_configuracoes_da_tarefa(arvore):
    configuracoes = comandos_da_funcao(arvore, "New-DefinicaoTarefa", "New-ScheduledTaskSettingsSet")
    assert len(configuracoes) == 1
    p = configuracoes[0].parametros
    assert p.get("multipleinstances") == "IgnoreNew"
    for chave in ("startwhenavailable", "allowstartifonbattery", "dontstopifgoingonbatteries"):
        assert chave in p, chave
    assert p.get("executiontimelimit") == "(New-TimeSpan -Minutes (Get-LimiteExecucaoMinutos))"
    limite = texto(funcoes(arvore)["Get-LimiteExecucaoMinutos"])
    minutos = int(re.search(r"return\s+(\d+)", limite).group(1))
    # Acima do total do invólucro: 3 x 15 min + esperas (30 s + 60 s, +25%).
    assert 3 * 15 + (30 + 60) * 1.25 / 60 < minutos <= 120


def test_usuario_atual_com_privilegios_limitados(arvore):
    principais = comandos_da_funcao(arvore, "New-DefinicaoTarefa", "New-ScheduledTaskPrincipal")
    assert len(principais) == 1
    p = principais[0].parametros
    assert p.get("runlevel") == "Limited"
    assert p.get("logontype") == "Interactive"


def test_recusa_o_atalho_da_microsoft_store(arvore):
    todas = funcoes(arvore)
    atalho = texto(todas["Test-AtalhoLojaWindows"])
    assert "WindowsApps" in atalho
    resolver = todas["Resolve-Python"]
    chamadas = comandos(resolver, "Test-AtalhoLojaWindows")
    assert len(chamadas) >= 2  # o candidato e o caminho real informado pelo Python
    lancamentos = [texto(n) for n in nos(resolver, "throw_statement")] or [
        texto(n) for n in nos(resolver) if n.type == "flow_control_statement" and texto(n).startswith("throw")
    ]
    assert any("Microsoft Store" in t for t in lancamentos)
    # Ordem de preferência: venv do projeto, py -3, python do PATH.
    corpo = texto(resolver)
    assert corpo.index("'.venv', 'venv'") < corpo.index("-Nome 'py'") < corpo.index("-Nome 'python'")
    assert "@('-3')" in corpo


def test_remover_status_e_executar_agora(arvore):
    remocoes = comandos(arvore.root_node, "Unregister-ScheduledTask")
    assert remocoes and remocoes[0].parametros.get("confirm") == "$false"
    assert comandos(arvore.root_node, "Get-ScheduledTaskInfo")
    assert comandos(arvore.root_node, "Start-ScheduledTask")
    fonte = arvore.root_node.text.decode("utf-8")
    assert "if ($Remover)" in fonte and "if ($Status)" in fonte and "if ($ExecutarAgora)" in fonte


def test_verifica_administrador_com_mensagem_em_portugues(arvore):
    todas = funcoes(arvore)
    assert "WindowsBuiltInRole]::Administrator" in texto(todas["Test-Administrador"])
    assert "como Administrador" in texto(todas["Write-MensagemAdministrador"])


def test_carregar_funcoes_nao_executa_nada(arvore):
    """No nível de cima só há funções e a execução protegida (para o Pester)."""
    lista = next(c for c in arvore.root_node.children if c.type == "statement_list")
    executaveis = [c for c in lista.children if c.type not in ("function_statement", "comment")]
    assert len(executaveis) == 1
    guarda = executaveis[0]
    assert guarda.type == "if_statement"
    condicao = texto(guarda).split("{", 1)[0]
    assert "$SomenteFuncoes" in condicao
    assert "$MyInvocation.InvocationName -ne '.'" in condicao
    assert "exit $codigoSaida" in texto(guarda)


def test_comandos_chamados_existem(arvore):
    definidas = set(funcoes(arvore))
    desconhecidos = set()
    for comando in comandos(arvore.root_node):
        nome = comando.nome
        if "-" not in nome or nome.startswith(("$", "&", ".")):
            continue  # executável nativo (& $Executavel) ou variável
        if nome not in definidas and nome not in CMDLETS_CONHECIDOS:
            desconhecidos.add(nome)
    assert desconhecidos == set()


def test_mensagens_em_portugues(fonte):
    texto_fonte = fonte.decode("utf-8-sig")
    mensagens = re.findall(r"Write-Mensagem\s+(['\"])(.+?)\1", texto_fonte)
    assert len(mensagens) > 10
    ingles = re.compile(r"\b(the|task|error|failed|not found|please|run as)\b", re.IGNORECASE)
    for _, mensagem in mensagens:
        assert not ingles.search(mensagem.replace("-Status", "")), mensagem


def test_testes_pester_existem_e_sao_validos():
    assert TESTES_PESTER.is_file()
    arvore_pester = analisar(TESTES_PESTER.read_bytes())
    assert erros(arvore_pester) == []
    conteudo = TESTES_PESTER.read_text(encoding="utf-8-sig")
    for cmdlet in ("Register-ScheduledTask", "Unregister-ScheduledTask", "Get-ScheduledTask",
                   "Get-ScheduledTaskInfo", "Start-ScheduledTask", "New-ScheduledTaskAction"):
        assert f"Mock {cmdlet}" in conteudo, cmdlet
    assert "-SomenteFuncoes" in conteudo
    # O modo contínuo também é coberto pelo Pester (parar a tarefa que roda é simulado).
    assert "Mock Stop-ScheduledTask" in conteudo
    assert "Context 'Modo contínuo'" in conteudo
    for trecho in ("-Continuo", "-NaInicializacao", "-IntervaloSegundos", "PT0S", "Continuo'"):
        assert trecho in conteudo, trecho


# ---------------------------------------------------------------------------
# Nada resolvido por conta própria: o invólucro decide (--informar)
# ---------------------------------------------------------------------------


def _codigo_sem_comentarios(no) -> str:
    return " ".join(texto(n) for n in nos(no) if n.child_count == 0 and n.type != "comment")


def test_nao_le_o_env_nem_resolve_dados_dir(arvore):
    codigo = _codigo_sem_comentarios(arvore.root_node)
    assert "DADOS_DIR" not in codigo
    assert "'.env'" not in codigo and '".env"' not in codigo
    assert "Get-PastaDados" not in funcoes(arvore)
    # Get-Content só para mostrar o fim do log (nunca para ler configuração).
    leituras = comandos(arvore.root_node, "Get-Content")
    assert leituras and all("tail" in c.parametros for c in leituras)


def test_codigos_do_programa_nao_sao_repetidos_no_ps1(arvore):
    tabela = texto(funcoes(arvore)["Get-TabelaSignificados"])
    chaves = set(re.findall(r"'(\d+)'\s*=", tabela))
    assert chaves and all(int(c) > 255 for c in chaves), chaves  # só os do Agendador/Windows
    significado = funcoes(arvore)["Get-SignificadoResultado"]
    assert "$Codigos" in texto(significado)


def test_status_e_instalacao_perguntam_ao_involucro(arvore):
    todas = funcoes(arvore)
    invocar = texto(todas["Invoke-InformarInvolucro"])
    assert "'--informar'" in invocar and "& $Executavel $Involucro" in invocar
    for nome in ("Get-StatusTarefa", "Install-TarefaSincronizacao"):
        assert comandos(todas[nome], "Get-InformacoesInvolucro"), nome


def test_campos_lidos_pelo_ps1_existem_na_resposta_do_involucro(arvore, tmp_path):
    """Os nomes que o .ps1 lê do JSON ($dados.xxx) são os que o --informar imprime de verdade."""
    import json

    corpo = texto(funcoes(arvore)["Get-InformacoesInvolucro"])
    lidos = set(re.findall(r"\$dados\.(\w+)", corpo))
    assert lidos >= {"arquivo_log", "codigos"}
    r = rodar_python(WRAPPER, "--informar", env=ambiente_limpo(), cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.isascii()
    resposta = json.loads(r.stdout)
    assert lidos <= set(resposta)
    assert all(isinstance(v, str) for v in resposta["codigos"].values())


# ---------------------------------------------------------------------------
# Modo contínuo (-Continuo): o vigiar como tarefa que fica rodando
# ---------------------------------------------------------------------------

LANCADOR = RAIZ / "agendamento" / "rodar_sem_console.py"


def _retorno_literal(arvore, funcao: str) -> str:
    return re.search(r"return\s+(.+)", texto(funcoes(arvore)[funcao])).group(1).strip()


def test_parametros_do_modo_continuo(arvore):
    parametros = _parametros_do_script(arvore)
    assert parametros["Continuo"] == ("switch", None)
    assert parametros["NaInicializacao"] == ("switch", None)
    assert parametros["IntervaloSegundos"] == ("int", "0")  # 0 = o padrão do próprio vigiar
    # A execução direta repassa os três ao ponto de entrada.
    principal = comandos(arvore.root_node, "Invoke-AgendarSincronizacao")[-1].parametros
    assert principal.get("continuo") == "$Continuo"
    assert principal.get("nainicializacao") == "$NaInicializacao"
    assert principal.get("intervalosegundos") == "$IntervaloSegundos"


def test_tarefa_continua_roda_o_vigiar_sem_janela_pelo_lancador(arvore):
    """pythonw.exe não tem saída padrão: a tarefa roda o lançador, que manda a saída para o log."""
    assert _retorno_literal(arvore, "Get-NomeLancadorContinuo") == "'agendamento\\rodar_sem_console.py'"
    assert LANCADOR.is_file()
    acoes = comandos_da_funcao(arvore, "New-DefinicaoTarefaContinua", "New-ScheduledTaskAction")
    assert len(acoes) == 1
    acao = acoes[0].parametros
    assert acao.get("execute") == "$ExecutavelPython"
    assert acao.get("workingdirectory") == "$PastaProjeto"
    assert acao.get("argument") == "$argumentos"
    corpo = texto(funcoes(arvore)["New-DefinicaoTarefaContinua"])
    assert re.search(r"\$lancador\s*=\s*Join-Path\s+\$PastaProjeto\s+\(Get-NomeLancadorContinuo\)", corpo)
    assert "$argumentos = '\"' + $lancador + '\" vigiar'" in corpo
    assert '" --intervalo $IntervaloSegundos"' in corpo
    # O Python da tarefa é o sem janela (pythonw.exe), como na tarefa a cada intervalo.
    instalar = funcoes(arvore)["Install-TarefaContinua"]
    assert comandos(instalar, "Get-PythonSemJanela")
    definicao = comandos(instalar, "New-DefinicaoTarefaContinua")[0].parametros
    assert definicao.get("executavelpython") == "$executavel"


def test_tarefa_continua_sem_tempo_maximo_e_de_volta_se_parar(arvore):
    configuracoes = comandos_da_funcao(arvore, "New-DefinicaoTarefaContinua", "New-ScheduledTaskSettingsSet")
    assert len(configuracoes) == 1
    p = configuracoes[0].parametros
    # Zero = sem limite: o padrão do Windows (72 h) encerraria o vigiar no terceiro dia.
    assert p.get("executiontimelimit") == "(New-TimeSpan -Seconds 0)"
    assert p.get("multipleinstances") == "IgnoreNew"
    assert 1 <= int(p["restartcount"]) <= 255  # o esquema do Agendador aceita de 1 a 255
    assert p.get("restartinterval") == "(New-TimeSpan -Minutes 1)"  # mínimo do Agendador: 1 minuto
    for chave in ("allowstartifonbattery", "dontstopifgoingonbatteries"):
        assert chave in p, chave
    # O "reiniciar se falhar" só cobre a falha ao INICIAR: a repetição do gatilho traz o vigiar de volta.
    gatilhos = comandos_da_funcao(arvore, "New-DefinicaoTarefaContinua", "New-ScheduledTaskTrigger")
    tipos = {next(k for k in g.parametros if k in ("atlogon", "atstartup", "once")): g.parametros for g in gatilhos}
    assert set(tipos) == {"atlogon", "atstartup", "once"}
    assert tipos["atlogon"].get("user") == "(Get-UsuarioAtual)"
    assert tipos["once"].get("repetitioninterval") == "(New-TimeSpan -Minutes (Get-RepeticaoContinuoMinutos))"
    assert "repetitionduration" not in tipos["once"]
    corpo = texto(funcoes(arvore)["New-DefinicaoTarefaContinua"])
    assert "$gatilho.Repetition = $repeticao.Repetition" in corpo
    assert 1 <= int(_retorno_literal(arvore, "Get-RepeticaoContinuoMinutos")) <= 10


def test_na_inicializacao_exige_administrador_e_nao_guarda_senha(arvore):
    principais = comandos_da_funcao(arvore, "New-DefinicaoTarefaContinua", "New-ScheduledTaskPrincipal")
    tipos = sorted(p.parametros.get("logontype") for p in principais)
    assert tipos == ["Interactive", "S4U"]  # no login; na inicialização, sem senha guardada
    assert all(p.parametros.get("runlevel") == "Limited" for p in principais)
    corpo = texto(funcoes(arvore)["Install-TarefaContinua"])
    recusa = corpo.index("if ($NaInicializacao -and -not (Test-Administrador))")
    assert recusa < corpo.index("Register-ScheduledTask")
    assert "Administrador" in corpo[recusa:corpo.index("return 1", recusa)]


def test_um_modo_de_cada_vez(arvore):
    """Instalar um modo remove a tarefa do outro, e confere antes que pode removê-la."""
    todas = funcoes(arvore)
    for funcao, outra in (("Install-TarefaSincronizacao", "$nomeContinua"), ("Install-TarefaContinua", "$NomeTarefa")):
        corpo = texto(todas[funcao])
        antes = corpo.index(f"Test-PodeRemoverOutroModo -NomeOutra {outra}")
        registro = corpo.index("Register-ScheduledTask")
        depois = corpo.index(f"Remove-TarefaOutroModo -NomeOutra {outra}")
        assert antes < registro < depois, funcao
    remover = texto(todas["Remove-TarefaOutroModo"])
    # A contínua que está rodando é parada antes de sair (senão o vigiar seguiria segurando a trava).
    assert remover.index("Stop-ScheduledTask") < remover.index("Unregister-ScheduledTask")
    assert "'Running'" in remover
    assert _retorno_literal(arvore, "Get-NomeTarefaContinua") == '"$($NomeTarefa)Continuo"'


def test_remover_tira_os_dois_modos(arvore):
    entrada = texto(funcoes(arvore)["Invoke-AgendarSincronizacao"])
    bloco = entrada[entrada.index("if ($Remover) {"):entrada.index("if ($Status) {")]
    chamadas = [c.parametros for c in comandos_da_funcao(arvore, "Invoke-AgendarSincronizacao",
                                                         "Uninstall-TarefaSincronizacao")]
    assert {c.get("nometarefa") for c in chamadas} == {"$NomeTarefa", "$nomeContinua"}
    assert "-Parar" in bloco and "$nomeContinua -Parar" in bloco
    desinstalar = texto(funcoes(arvore)["Uninstall-TarefaSincronizacao"])
    assert desinstalar.index("Stop-ScheduledTask") < desinstalar.index("Unregister-ScheduledTask")


def test_opcoes_do_modo_continuo_validadas(arvore):
    entrada = texto(funcoes(arvore)["Invoke-AgendarSincronizacao"])
    assert "if (($NaInicializacao -or $IntervaloSegundos -ne 0) -and -not $Continuo)" in entrada
    assert "$IntervaloSegundos -lt 5 -or $IntervaloSegundos -gt 86400" in entrada


def test_status_do_modo_continuo_pergunta_ao_lancador(arvore, tmp_path):
    """O -Status da tarefa contínua mostra o log do lançador, informado por ele (--informar)."""
    import json

    status = texto(funcoes(arvore)["Get-StatusTarefa"])
    assert "-NomeArquivo $perguntarA" in status and "Get-NomeLancadorContinuo" in status
    lidos = set(re.findall(r"\$dados\.(\w+)", texto(funcoes(arvore)["Get-InformacoesInvolucro"])))
    r = rodar_python(LANCADOR, "--informar", env=ambiente_limpo(DADOS_DIR=str(tmp_path / "d")), cwd=tmp_path,
                     timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.isascii()
    resposta = json.loads(r.stdout)
    assert lidos <= set(resposta)
    assert resposta["arquivo_log"] == str(tmp_path / "d" / "logs" / "vigiar.log")
    assert all(isinstance(v, str) for v in resposta["codigos"].values())
