<#
.SYNOPSIS
    Agenda (no Agendador de Tarefas do Windows) a sincronização automática dos
    servidores de licença.

.DESCRIPTION
    Cria ou substitui uma tarefa agendada que roda o sincronizar_automatico.py
    desta pasta a cada -IntervaloMinutos minutos, para sempre, com esta pasta
    como diretório de trabalho (assim o arquivo .env é encontrado).

    Pode ser executado quantas vezes quiser: a tarefa é sempre substituída, nunca
    duplicada. Execute numa janela do PowerShell aberta nesta pasta, por exemplo:

        cd C:\protecao
        powershell -ExecutionPolicy Bypass -File .\AGENDAR_SINCRONIZACAO.ps1

    Permissões: a tarefa é registrada para o usuário atual, com privilégios
    limitados (RunLevel Limited) e só enquanto ele estiver conectado (LogonType
    Interactive). Isso NÃO exige PowerShell como Administrador. O Administrador
    só é necessário para substituir ou remover uma tarefa com o mesmo nome criada
    antes por outro usuário ou com "privilégios mais altos" (como fazia o
    instalador antigo); nesse caso o script avisa e para.

    Repetição sem fim: o gatilho é criado com -Once -At (agora + 1 min) e
    -RepetitionInterval, SEM -RepetitionDuration. No Windows 10/11 e no Windows
    Server 2016 ou mais novo, omitir -RepetitionDuration faz a tarefa se repetir
    indefinidamente (o instalador antigo usava 365 dias e parava depois de um
    ano). Não usamos [TimeSpan]::MaxValue, que falha em algumas versões.

    Este script não lê o .env nem resolve DADOS_DIR: o caminho do log e o
    significado dos códigos de saída são perguntados ao próprio
    sincronizar_automatico.py ("--informar"), com o Python da tarefa, para que
    valham exatamente as regras da sincronização.

    Modo contínuo (-Continuo): em vez de rodar a cada intervalo, cria a tarefa
    <NomeTarefa>Continuo, que inicia o "sincronizar_bancos.py vigiar" no login
    do usuário (ou na inicialização do Windows, com -NaInicializacao) e o deixa
    rodando: uma venda feita no principal chega aos backups em segundos. Um modo
    de cada vez: instalar um remove a tarefa do outro (os dois usariam a mesma
    trava). Veja docs\AGENDAMENTO.md para escolher.

.PARAMETER IntervaloMinutos
    Intervalo entre as execuções, em minutos (1 a 1440). Padrão: 60.

.PARAMETER NomeTarefa
    Nome da tarefa no Agendador. Padrão: SincronizarBancosAPI.

.PARAMETER Python
    Caminho do python.exe a usar. Padrão: .venv\Scripts\python.exe ou
    venv\Scripts\python.exe desta pasta, se existir; senão o inicializador
    "py -3"; senão o "python" do PATH. O atalho da Microsoft Store
    (...\Microsoft\WindowsApps\python.exe) é recusado.

.PARAMETER Remover
    Remove a tarefa agendada.

.PARAMETER Status
    Mostra o estado da tarefa, a última execução e o resultado (com o significado).

.PARAMETER ExecutarAgora
    Cria/atualiza a tarefa e a executa imediatamente.

.PARAMETER Continuo
    Instala o modo contínuo (vigiar) no lugar das execuções a cada intervalo.

.PARAMETER NaInicializacao
    Com -Continuo: inicia na inicialização do Windows, mesmo sem ninguém
    conectado (precisa de PowerShell como Administrador). Sem ele, inicia no
    login do usuário atual.

.PARAMETER IntervaloSegundos
    Com -Continuo: segundos entre as leituras do principal (5 a 86400; o padrão
    é o do vigiar, 60 s).

.PARAMETER SomenteFuncoes
    Só carrega as funções, sem executar nada (usado pelos testes Pester).

.EXAMPLE
    .\AGENDAR_SINCRONIZACAO.ps1
.EXAMPLE
    .\AGENDAR_SINCRONIZACAO.ps1 -IntervaloMinutos 30 -ExecutarAgora
.EXAMPLE
    .\AGENDAR_SINCRONIZACAO.ps1 -Python "C:\Python312\python.exe"
.EXAMPLE
    .\AGENDAR_SINCRONIZACAO.ps1 -Status
.EXAMPLE
    .\AGENDAR_SINCRONIZACAO.ps1 -Continuo -ExecutarAgora
.EXAMPLE
    .\AGENDAR_SINCRONIZACAO.ps1 -Continuo -NaInicializacao
.EXAMPLE
    .\AGENDAR_SINCRONIZACAO.ps1 -Remover
#>
[CmdletBinding()]
param(
    [int]$IntervaloMinutos = 60,
    [string]$NomeTarefa = 'SincronizarBancosAPI',
    [string]$Python = '',
    [switch]$Remover,
    [switch]$Status,
    [switch]$ExecutarAgora,
    [switch]$Continuo,
    [switch]$NaInicializacao,
    [int]$IntervaloSegundos = 0,
    [switch]$SomenteFuncoes
)

# As funções não usam variáveis de escopo de script: assim o arquivo pode ser
# carregado com ". .\AGENDAR_SINCRONIZACAO.ps1 -SomenteFuncoes" (testes Pester)
# sem depender de escopo. Os valores fixos ficam em funções.

function Get-NomeInvolucro {
    return 'sincronizar_automatico.py'
}

function Get-NomeScript {
    return 'sincronizar_bancos.py'
}

function Get-NomeLancadorContinuo {
    # O pythonw.exe não tem saída padrão, e o sincronizar_bancos.py pararia na primeira linha que
    # escrevesse. O lançador manda a saída para DADOS_DIR\logs\vigiar.log e roda o script.
    return 'agendamento\rodar_sem_console.py'
}

function Get-NomeTarefaContinua {
    # A tarefa do modo contínuo tem o nome da tarefa agendada + "Continuo": as duas de uma instalação
    # andam juntas (-NomeTarefa SincronizarLoja2 -> SincronizarLoja2Continuo).
    param([string]$NomeTarefa)
    return "$($NomeTarefa)Continuo"
}

function Get-RepeticaoContinuoMinutos {
    # O "reiniciar se falhar" do Agendador só vale quando a tarefa NÃO CONSEGUE INICIAR; se o vigiar
    # iniciou e depois terminou (queda, falta de memória, código 3), nada o traz de volta. Por isso o
    # gatilho também se repete a cada 5 minutos: com o vigiar rodando, a repetição é ignorada
    # (MultipleInstances IgnoreNew); se ele parou, volta em até 5 minutos.
    return 5
}

function Get-LimiteExecucaoMinutos {
    # Tempo máximo que o Agendador deixa a tarefa rodar. O invólucro já se
    # encerra sozinho: 3 tentativas x 15 min (SYNC_TENTATIVAS x
    # SYNC_TIMEOUT_TOTAL) mais as esperas entre elas (30 s + 60 s, +-25%) dá
    # cerca de 47 min. Uma hora fica um pouco acima disso; se aumentar as
    # tentativas ou o tempo limite no .env, aumente este valor também.
    return 60
}

function Get-TabelaSignificados {
    # Só os códigos próprios do Agendador de Tarefas e do Windows (LastTaskResult).
    # Os códigos de saída do sincronizar_automatico.py (0 a 5, 130, 143) e seus
    # significados vêm dele mesmo (Get-InformacoesInvolucro): a tabela mora no
    # sincronizar_bancos.py, não aqui.
    return @{
        '267008'     = 'tarefa pronta para executar'
        '267009'     = 'tarefa em execução agora'
        '267010'     = 'tarefa desabilitada'
        '267011'     = 'a tarefa ainda não foi executada'
        '267014'     = 'a tarefa foi encerrada pelo usuário ou pelo limite de tempo'
        '2147750687' = 'uma execução anterior ainda estava em andamento (nova execução ignorada)'
        '2147946720' = 'o usuário recusou ou cancelou a execução'
        '3221225786' = 'o programa foi fechado (Ctrl+C ou janela fechada)'
    }
}

function Write-Mensagem {
    param([string]$Texto, [string]$Cor = 'Gray')
    Write-Host $Texto -ForegroundColor $Cor
}

function Get-SignificadoResultado {
    # $Codigos: a tabela informada pelo sincronizar_automatico.py (--informar).
    param([long]$Codigo, [hashtable]$Codigos = @{})
    if ($Codigo -lt 0) {
        # O Agendador às vezes mostra códigos HRESULT como números negativos.
        $Codigo = $Codigo + 4294967296
    }
    $chave = [string]$Codigo
    if ($Codigos.ContainsKey($chave)) {
        return $Codigos[$chave]
    }
    $tabela = Get-TabelaSignificados
    if ($tabela.ContainsKey($chave)) {
        return $tabela[$chave]
    }
    if ($Codigo -lt 256) {
        return "código $Codigo do sincronizar_automatico.py (significado indisponível; veja o log)"
    }
    return ('código desconhecido (0x{0:X})' -f $Codigo)
}

function Test-Administrador {
    $identidade = [Security.Principal.WindowsIdentity]::GetCurrent()
    $principal = New-Object Security.Principal.WindowsPrincipal($identidade)
    return $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)
}

function Get-UsuarioAtual {
    return [Security.Principal.WindowsIdentity]::GetCurrent().Name
}

function Find-Comando {
    # Caminho de um executável do PATH, ou $null (função separada para os testes).
    param([string]$Nome)
    $comando = Get-Command $Nome -CommandType Application -ErrorAction SilentlyContinue | Select-Object -First 1
    if ($null -eq $comando) {
        return $null
    }
    return $comando.Path
}

function Test-AtalhoLojaWindows {
    # O "python.exe" em ...\Microsoft\WindowsApps\ é um atalho da Microsoft
    # Store: sem o Python da loja instalado ele só abre a loja e não roda nada.
    param([string]$Caminho)
    if ([string]::IsNullOrWhiteSpace($Caminho)) {
        return $false
    }
    return ($Caminho -match '[\\/]Microsoft[\\/]WindowsApps[\\/]')
}

function Invoke-ConsultaPython {
    # Executa o Python para confirmar que ele funciona e descobrir o caminho
    # real do executável e a versão. Devolve $null se não funcionar.
    param([string]$Executavel, [string[]]$ArgumentosExtras = @())
    $codigo = 'import sys; print(sys.executable); print(str(sys.version_info[0]) + chr(46) + str(sys.version_info[1]))'
    try {
        $saida = & $Executavel @ArgumentosExtras -c $codigo 2>$null
    }
    catch {
        return $null
    }
    if ($LASTEXITCODE -ne 0 -or $null -eq $saida) {
        return $null
    }
    $linhas = @($saida | ForEach-Object { "$_".Trim() } | Where-Object { $_ -ne '' })
    if ($linhas.Count -lt 2) {
        return $null
    }
    return [pscustomobject]@{
        Executavel = $linhas[0]
        Versao     = $linhas[1]
    }
}

function Resolve-Python {
    # Escolhe o Python da tarefa. Devolve um objeto com Executavel (caminho
    # completo), Origem e Versao, ou lança um erro com mensagem em português.
    param([string]$Python, [string]$PastaProjeto)

    $candidato = $null
    $argumentos = @()
    $origem = ''

    if (-not [string]::IsNullOrWhiteSpace($Python)) {
        $origem = 'parâmetro -Python'
        if (Test-Path -LiteralPath $Python -PathType Leaf) {
            $candidato = (Resolve-Path -LiteralPath $Python).ProviderPath
        }
        else {
            $candidato = Find-Comando -Nome $Python
            if ($null -eq $candidato) {
                throw "Python não encontrado: '$Python'. Informe o caminho completo do python.exe."
            }
        }
    }
    else {
        foreach ($pastaVenv in @('.venv', 'venv')) {
            $caminhoVenv = Join-Path (Join-Path (Join-Path $PastaProjeto $pastaVenv) 'Scripts') 'python.exe'
            if (Test-Path -LiteralPath $caminhoVenv -PathType Leaf) {
                $candidato = $caminhoVenv
                $origem = "ambiente virtual $pastaVenv"
                break
            }
        }
        if ($null -eq $candidato) {
            $lancador = Find-Comando -Nome 'py'
            if ($null -ne $lancador -and -not (Test-AtalhoLojaWindows $lancador)) {
                $candidato = $lancador
                $argumentos = @('-3')
                $origem = 'inicializador py -3'
            }
        }
        if ($null -eq $candidato) {
            $candidato = Find-Comando -Nome 'python'
            if ($null -eq $candidato) {
                throw ('Nenhum Python encontrado. Instale o Python 3 (python.org, marcando "Add python.exe to PATH") ' +
                    'ou crie o ambiente virtual nesta pasta: py -3 -m venv .venv')
            }
            $origem = 'python do PATH'
        }
    }

    if (Test-AtalhoLojaWindows $candidato) {
        throw ("O Python encontrado ($candidato) é o atalho da Microsoft Store (WindowsApps), que não serve " +
            'para tarefas agendadas. Instale o Python pelo site python.org ou crie o ambiente virtual ' +
            '(py -3 -m venv .venv) e execute este script de novo, ou informe -Python com o caminho do python.exe.')
    }

    $info = Invoke-ConsultaPython -Executavel $candidato -ArgumentosExtras $argumentos
    if ($null -eq $info) {
        throw "O Python '$candidato' não pôde ser executado. Verifique a instalação ou informe -Python."
    }
    if (Test-AtalhoLojaWindows $info.Executavel) {
        throw ("O Python encontrado ($($info.Executavel)) é o da Microsoft Store (WindowsApps). Instale o " +
            'Python pelo site python.org ou informe -Python com o caminho de outro python.exe.')
    }
    $partes = $info.Versao.Split('.')
    if ([int]$partes[0] -lt 3 -or ([int]$partes[0] -eq 3 -and [int]$partes[1] -lt 10)) {
        throw "O Python '$($info.Executavel)' é a versão $($info.Versao); é preciso Python 3.10 ou mais novo."
    }
    return [pscustomobject]@{
        Executavel = $info.Executavel
        Origem     = $origem
        Versao     = $info.Versao
    }
}

function Get-PythonSemJanela {
    # pythonw.exe é o mesmo Python sem janela de console: assim a tarefa não
    # abre uma janela preta a cada execução. O log continua em dados\logs.
    param([string]$Executavel)
    $pasta = Split-Path -Parent $Executavel
    $nome = Split-Path -Leaf $Executavel
    if ($nome -ieq 'python.exe') {
        $semJanela = Join-Path $pasta 'pythonw.exe'
        if (Test-Path -LiteralPath $semJanela -PathType Leaf) {
            return $semJanela
        }
    }
    return $Executavel
}

function Get-PythonComConsole {
    # O inverso de Get-PythonSemJanela: para ler a resposta do Python, usa o
    # python.exe ao lado do pythonw.exe (que não tem saída de console).
    param([string]$Executavel)
    if ([string]::IsNullOrWhiteSpace($Executavel)) {
        return $Executavel
    }
    $pasta = Split-Path -Parent $Executavel
    if (-not [string]::IsNullOrWhiteSpace($pasta) -and (Split-Path -Leaf $Executavel) -ieq 'pythonw.exe') {
        $comConsole = Join-Path $pasta 'python.exe'
        if (Test-Path -LiteralPath $comConsole -PathType Leaf) {
            return $comConsole
        }
    }
    return $Executavel
}

function Invoke-InformarInvolucro {
    # Roda "python sincronizar_automatico.py --informar" (função separada para os
    # testes). Devolve o texto impresso (saída e erros juntos) e o código de saída.
    param([string]$Executavel, [string]$Involucro)
    $codificacaoAnterior = $null
    $ioAnterior = $env:PYTHONIOENCODING
    try {
        try {
            # Acentos das mensagens de erro do Python chegam certos (a resposta em JSON já é ASCII).
            $codificacaoAnterior = [Console]::OutputEncoding
            [Console]::OutputEncoding = [System.Text.Encoding]::UTF8
        }
        catch {
            $codificacaoAnterior = $null
        }
        $env:PYTHONIOENCODING = 'utf-8'
        $linhas = @(& $Executavel $Involucro '--informar' 2>&1 | ForEach-Object { "$_" })
        return [pscustomobject]@{ Texto = ($linhas -join "`n"); Codigo = $LASTEXITCODE }
    }
    catch {
        return [pscustomobject]@{ Texto = "$($_.Exception.Message)"; Codigo = -1 }
    }
    finally {
        $env:PYTHONIOENCODING = $ioAnterior
        if ($null -ne $codificacaoAnterior) {
            try {
                [Console]::OutputEncoding = $codificacaoAnterior
            }
            catch {
                $codificacaoAnterior = $null
            }
        }
    }
}

function Get-InformacoesInvolucro {
    # Pergunta ao sincronizar_automatico.py onde fica o log e o que significa cada
    # código de saída. Este script não lê o .env nem resolve DADOS_DIR por conta
    # própria: quem decide é o Python, com as mesmas regras da sincronização.
    # Devolve ArquivoLog, Codigos (tabela) e Erro ($null quando deu certo).
    # -NomeArquivo: quem perguntar (padrão: o invólucro); o lançador do modo contínuo responde do mesmo
    # jeito, com o log dele.
    param([string]$Executavel, [string]$PastaProjeto, [string]$NomeArquivo = '')
    $resultado = [pscustomobject]@{ ArquivoLog = $null; Codigos = @{}; Erro = $null }
    if ([string]::IsNullOrWhiteSpace($Executavel)) {
        $resultado.Erro = 'a tarefa não informa qual Python usa.'
        return $resultado
    }
    if ([string]::IsNullOrWhiteSpace($NomeArquivo)) {
        $NomeArquivo = Get-NomeInvolucro
    }
    $involucro = Join-Path $PastaProjeto $NomeArquivo
    $resposta = Invoke-InformarInvolucro -Executavel (Get-PythonComConsole -Executavel $Executavel) -Involucro $involucro
    if ($resposta.Codigo -ne 0) {
        $resultado.Erro = "$($resposta.Texto)".Trim()
        return $resultado
    }
    try {
        $dados = $resposta.Texto | ConvertFrom-Json
    }
    catch {
        $resultado.Erro = 'resposta inesperada do sincronizar_automatico.py --informar.'
        return $resultado
    }
    $resultado.ArquivoLog = $dados.arquivo_log
    if ($null -ne $dados.codigos) {
        foreach ($propriedade in $dados.codigos.PSObject.Properties) {
            $resultado.Codigos[$propriedade.Name] = "$($propriedade.Value)"
        }
    }
    return $resultado
}

function Format-ArquivoLog {
    param($Informacoes)
    if (-not [string]::IsNullOrWhiteSpace($Informacoes.ArquivoLog)) {
        return $Informacoes.ArquivoLog
    }
    return "(o sincronizar_automatico.py não respondeu: $($Informacoes.Erro))"
}

function Get-TarefaExistente {
    param([string]$NomeTarefa)
    return (Get-ScheduledTask -TaskName $NomeTarefa -ErrorAction SilentlyContinue | Select-Object -First 1)
}

function Test-PrecisaAdministrador {
    # Uma tarefa de outro usuário ou com "privilégios mais altos" só pode ser
    # substituída ou removida por um Administrador.
    param($Tarefa)
    if ($null -eq $Tarefa -or $null -eq $Tarefa.Principal) {
        return $false
    }
    if ("$($Tarefa.Principal.RunLevel)" -eq 'Highest') {
        return $true
    }
    $dono = "$($Tarefa.Principal.UserId)"
    if ([string]::IsNullOrWhiteSpace($dono)) {
        return $false
    }
    $atual = Get-UsuarioAtual
    $donoCurto = ($dono -split '\\')[-1]
    $atualCurto = ($atual -split '\\')[-1]
    return ($donoCurto -ine $atualCurto)
}

function Write-MensagemAdministrador {
    param([string]$Acao)
    Write-Mensagem ("Não foi possível $Acao a tarefa sem permissão de Administrador: ela foi criada por outro " +
        'usuário ou com privilégios mais altos (por exemplo, pelo instalador antigo).') 'Red'
    Write-Mensagem ('Abra o PowerShell como Administrador (clique direito > "Executar como administrador") ' +
        'e execute este script de novo.') 'Yellow'
}

function Test-AcessoNegado {
    param($Erro)
    $texto = "$Erro"
    $excecao = $Erro.Exception
    if ($excecao -is [System.UnauthorizedAccessException]) {
        return $true
    }
    if ($null -ne $excecao -and $excecao.HResult -eq -2147024891) {
        return $true
    }
    return ($texto -match 'Access is denied|Acesso negado|0x80070005')
}

function New-DefinicaoTarefa {
    # Monta as partes da tarefa (ação, gatilho, configurações, usuário).
    param(
        [int]$IntervaloMinutos,
        [string]$PastaProjeto,
        [string]$ExecutavelPython
    )
    $involucro = Join-Path $PastaProjeto (Get-NomeInvolucro)
    $acao = New-ScheduledTaskAction -Execute $ExecutavelPython -Argument ('"' + $involucro + '"') -WorkingDirectory $PastaProjeto

    # Sem -RepetitionDuration: repete indefinidamente (Windows 10 ou mais novo).
    $gatilho = New-ScheduledTaskTrigger -Once -At ((Get-Date).AddMinutes(1)) -RepetitionInterval (New-TimeSpan -Minutes $IntervaloMinutos)

    $configuracoes = New-ScheduledTaskSettingsSet -StartWhenAvailable -MultipleInstances IgnoreNew -ExecutionTimeLimit (New-TimeSpan -Minutes (Get-LimiteExecucaoMinutos)) -AllowStartIfOnBattery -DontStopIfGoingOnBatteries

    # Usuário atual, privilégios limitados, só com o usuário conectado: não
    # precisa de Administrador nem guarda senha.
    $usuario = New-ScheduledTaskPrincipal -UserId (Get-UsuarioAtual) -LogonType Interactive -RunLevel Limited

    return [pscustomobject]@{
        Acao          = $acao
        Gatilho       = $gatilho
        Configuracoes = $configuracoes
        Usuario       = $usuario
        Involucro     = $involucro
    }
}

function New-DefinicaoTarefaContinua {
    # A tarefa do modo contínuo: pythonw.exe (sem janela) com o lançador e "vigiar", iniciada no login
    # do usuário (ou na inicialização, com -NaInicializacao), sem tempo máximo de execução.
    param(
        [string]$PastaProjeto,
        [string]$ExecutavelPython,
        [int]$IntervaloSegundos = 0,
        [switch]$NaInicializacao
    )
    $lancador = Join-Path $PastaProjeto (Get-NomeLancadorContinuo)
    $argumentos = '"' + $lancador + '" vigiar'
    if ($IntervaloSegundos -gt 0) {
        $argumentos = $argumentos + " --intervalo $IntervaloSegundos"
    }
    $acao = New-ScheduledTaskAction -Execute $ExecutavelPython -Argument $argumentos -WorkingDirectory $PastaProjeto

    if ($NaInicializacao) {
        # Antes de qualquer login: roda como o usuário atual sem guardar a senha (S4U).
        $gatilho = New-ScheduledTaskTrigger -AtStartup
        $usuario = New-ScheduledTaskPrincipal -UserId (Get-UsuarioAtual) -LogonType S4U -RunLevel Limited
    }
    else {
        $gatilho = New-ScheduledTaskTrigger -AtLogOn -User (Get-UsuarioAtual)
        $usuario = New-ScheduledTaskPrincipal -UserId (Get-UsuarioAtual) -LogonType Interactive -RunLevel Limited
    }
    # Repetição sem fim (sem -RepetitionDuration) que traz o vigiar de volta se ele parar.
    $repeticao = New-ScheduledTaskTrigger -Once -At (Get-Date) -RepetitionInterval (New-TimeSpan -Minutes (Get-RepeticaoContinuoMinutos))
    $gatilho.Repetition = $repeticao.Repetition

    # ExecutionTimeLimit zero: sem limite (o padrão do Windows encerraria o vigiar depois de 72 horas).
    # RestartCount/RestartInterval: novas tentativas quando a tarefa não consegue iniciar.
    $configuracoes = New-ScheduledTaskSettingsSet -MultipleInstances IgnoreNew -ExecutionTimeLimit (New-TimeSpan -Seconds 0) -RestartCount 3 -RestartInterval (New-TimeSpan -Minutes 1) -StartWhenAvailable -AllowStartIfOnBattery -DontStopIfGoingOnBatteries

    return [pscustomobject]@{
        Acao          = $acao
        Gatilho       = $gatilho
        Configuracoes = $configuracoes
        Usuario       = $usuario
        Lancador      = $lancador
        Argumentos    = $argumentos
    }
}

function Test-PodeRemoverOutroModo {
    # Antes de registrar um modo: a tarefa do outro modo, se existir, precisa poder ser removida.
    param([string]$NomeOutra)
    $outra = Get-TarefaExistente -NomeTarefa $NomeOutra
    if ($null -ne $outra -and (Test-PrecisaAdministrador $outra) -and -not (Test-Administrador)) {
        Write-MensagemAdministrador 'remover'
        Write-Mensagem ("A tarefa '$NomeOutra' é do outro modo e precisa sair antes: as execuções agendadas e " +
            'o modo contínuo usam a mesma trava e não rodam juntos.') 'Yellow'
        return $false
    }
    return $true
}

function Remove-TarefaOutroModo {
    # Um modo de cada vez: depois de registrar um, a tarefa do outro sai (parada antes, se estiver rodando).
    param([string]$NomeOutra, [string]$Explicacao)
    $outra = Get-TarefaExistente -NomeTarefa $NomeOutra
    if ($null -eq $outra) {
        return 0
    }
    try {
        if ("$($outra.State)" -eq 'Running') {
            Stop-ScheduledTask -TaskName $NomeOutra -ErrorAction Stop
        }
        Unregister-ScheduledTask -TaskName $NomeOutra -Confirm:$false -ErrorAction Stop
    }
    catch {
        Write-Mensagem ("A tarefa '$NomeOutra' (o outro modo) não pôde ser removida: $($_.Exception.Message). " +
            'As duas ficaram instaladas e disputam a mesma trava. Remova a outra com ' +
            '-Remover e instale de novo o modo que quer.') 'Red'
        return 1
    }
    Write-Mensagem "Tarefa '$NomeOutra' removida: $Explicacao" 'Yellow'
    return 0
}

function Install-TarefaSincronizacao {
    param(
        [int]$IntervaloMinutos,
        [string]$NomeTarefa,
        [string]$Python,
        [string]$PastaProjeto,
        [switch]$ExecutarAgora
    )

    $involucro = Join-Path $PastaProjeto (Get-NomeInvolucro)
    if (-not (Test-Path -LiteralPath $involucro -PathType Leaf)) {
        Write-Mensagem "Arquivo não encontrado: $involucro" 'Red'
        Write-Mensagem 'Coloque o AGENDAR_SINCRONIZACAO.ps1 na mesma pasta do sincronizar_automatico.py.' 'Yellow'
        return 1
    }

    try {
        $escolhido = Resolve-Python -Python $Python -PastaProjeto $PastaProjeto
    }
    catch {
        Write-Mensagem $_.Exception.Message 'Red'
        return 1
    }
    $executavel = Get-PythonSemJanela -Executavel $escolhido.Executavel

    $existente = Get-TarefaExistente -NomeTarefa $NomeTarefa
    if ($null -ne $existente -and (Test-PrecisaAdministrador $existente) -and -not (Test-Administrador)) {
        Write-MensagemAdministrador 'substituir'
        return 1
    }
    $nomeContinua = Get-NomeTarefaContinua -NomeTarefa $NomeTarefa
    if (-not (Test-PodeRemoverOutroModo -NomeOutra $nomeContinua)) {
        return 1
    }

    $definicao = New-DefinicaoTarefa -IntervaloMinutos $IntervaloMinutos -PastaProjeto $PastaProjeto -ExecutavelPython $executavel
    $descricao = "Sincroniza os servidores de licença (principal -> backups) a cada $IntervaloMinutos minuto(s). " +
        "Pasta: $PastaProjeto. Criada por AGENDAR_SINCRONIZACAO.ps1."

    try {
        # -Force substitui a tarefa se ela já existir: rodar de novo não duplica.
        Register-ScheduledTask -TaskName $NomeTarefa -Action $definicao.Acao -Trigger $definicao.Gatilho -Settings $definicao.Configuracoes -Principal $definicao.Usuario -Description $descricao -Force -ErrorAction Stop | Out-Null
    }
    catch {
        if (Test-AcessoNegado $_) {
            Write-MensagemAdministrador 'criar ou substituir'
        }
        else {
            Write-Mensagem "Falha ao registrar a tarefa '$NomeTarefa': $($_.Exception.Message)" 'Red'
        }
        return 1
    }

    if ($null -ne $existente) {
        Write-Mensagem "Tarefa '$NomeTarefa' atualizada (a anterior foi substituída)." 'Green'
    }
    else {
        Write-Mensagem "Tarefa '$NomeTarefa' criada." 'Green'
    }
    Write-Mensagem "  Python:        $executavel ($($escolhido.Origem), versão $($escolhido.Versao))"
    Write-Mensagem "  Script:        $involucro"
    Write-Mensagem "  Pasta:         $PastaProjeto"
    Write-Mensagem "  Intervalo:     a cada $IntervaloMinutos minuto(s), sem data para terminar (primeira execução em 1 minuto)"
    Write-Mensagem "  Tempo máximo:  $(Get-LimiteExecucaoMinutos) minutos por execução; se uma execução ainda estiver rodando, a próxima é ignorada"
    $informacoes = Get-InformacoesInvolucro -Executavel $escolhido.Executavel -PastaProjeto $PastaProjeto
    Write-Mensagem "  Log:           $(Format-ArquivoLog $informacoes)"
    Write-Mensagem '  A tarefa roda enquanto este usuário estiver conectado ao Windows.'
    Write-Mensagem "Para ver o estado: .\AGENDAR_SINCRONIZACAO.ps1 -Status"
    if ($null -ne $informacoes.Erro) {
        Write-Mensagem 'ATENÇÃO: com este Python, o sincronizar_automatico.py não consegue rodar; cada execução da tarefa vai falhar até isto ser corrigido:' 'Yellow'
        Write-Mensagem "  $($informacoes.Erro)" 'Yellow'
    }
    $explicacao = 'as execuções a cada intervalo substituem o modo contínuo (um modo de cada vez).'
    if ((Remove-TarefaOutroModo -NomeOutra $nomeContinua -Explicacao $explicacao) -ne 0) {
        return 1
    }

    if ($ExecutarAgora) {
        try {
            Start-ScheduledTask -TaskName $NomeTarefa -ErrorAction Stop
            Write-Mensagem 'Execução iniciada agora. Acompanhe com -Status ou no log.' 'Green'
        }
        catch {
            Write-Mensagem "Não foi possível iniciar a tarefa agora: $($_.Exception.Message)" 'Red'
            return 1
        }
    }
    return 0
}

function Install-TarefaContinua {
    # Modo contínuo: registra (ou substitui) <NomeTarefa>Continuo e remove a tarefa a cada intervalo.
    param(
        [string]$NomeTarefa,
        [string]$Python,
        [string]$PastaProjeto,
        [int]$IntervaloSegundos = 0,
        [switch]$NaInicializacao,
        [switch]$ExecutarAgora
    )
    $nomeContinua = Get-NomeTarefaContinua -NomeTarefa $NomeTarefa
    foreach ($nome in @((Get-NomeScript), (Get-NomeLancadorContinuo))) {
        $arquivo = Join-Path $PastaProjeto $nome
        if (-not (Test-Path -LiteralPath $arquivo -PathType Leaf)) {
            Write-Mensagem "Arquivo não encontrado: $arquivo" 'Red'
            Write-Mensagem ('O modo contínuo precisa do sincronizar_bancos.py e da pasta agendamento ao lado do ' +
                'AGENDAR_SINCRONIZACAO.ps1 (copie a pasta inteira da ferramenta).') 'Yellow'
            return 1
        }
    }
    if ($NaInicializacao -and -not (Test-Administrador)) {
        Write-Mensagem ('-NaInicializacao cria uma tarefa que roda antes de qualquer login, e isso só um ' +
            'Administrador pode fazer.') 'Red'
        Write-Mensagem ('Abra o PowerShell como Administrador (clique direito > "Executar como administrador") ' +
            'e execute este script de novo, ou use só -Continuo (inicia no seu login, sem Administrador).') 'Yellow'
        return 1
    }

    try {
        $escolhido = Resolve-Python -Python $Python -PastaProjeto $PastaProjeto
    }
    catch {
        Write-Mensagem $_.Exception.Message 'Red'
        return 1
    }
    $executavel = Get-PythonSemJanela -Executavel $escolhido.Executavel

    $existente = Get-TarefaExistente -NomeTarefa $nomeContinua
    if ($null -ne $existente -and (Test-PrecisaAdministrador $existente) -and -not (Test-Administrador)) {
        Write-MensagemAdministrador 'substituir'
        return 1
    }
    if (-not (Test-PodeRemoverOutroModo -NomeOutra $NomeTarefa)) {
        return 1
    }

    $definicao = New-DefinicaoTarefaContinua -PastaProjeto $PastaProjeto -ExecutavelPython $executavel -IntervaloSegundos $IntervaloSegundos -NaInicializacao:$NaInicializacao
    $quando = 'no login do usuário'
    if ($NaInicializacao) {
        $quando = 'na inicialização do Windows'
    }
    $descricao = "Modo contínuo (vigiar): mantém os backups dos servidores de licença em dia em segundos. " +
        "Inicia $quando. Pasta: $PastaProjeto. Criada por AGENDAR_SINCRONIZACAO.ps1 -Continuo."

    try {
        # -Force substitui a tarefa se ela já existir: rodar de novo não duplica.
        Register-ScheduledTask -TaskName $nomeContinua -Action $definicao.Acao -Trigger $definicao.Gatilho -Settings $definicao.Configuracoes -Principal $definicao.Usuario -Description $descricao -Force -ErrorAction Stop | Out-Null
    }
    catch {
        if (Test-AcessoNegado $_) {
            Write-MensagemAdministrador 'criar ou substituir'
        }
        else {
            Write-Mensagem "Falha ao registrar a tarefa '$nomeContinua': $($_.Exception.Message)" 'Red'
        }
        return 1
    }

    if ($null -ne $existente) {
        Write-Mensagem "Tarefa '$nomeContinua' (modo contínuo) atualizada (a anterior foi substituída)." 'Green'
    }
    else {
        Write-Mensagem "Tarefa '$nomeContinua' (modo contínuo) criada." 'Green'
    }
    Write-Mensagem "  Python:        $executavel ($($escolhido.Origem), versão $($escolhido.Versao))"
    Write-Mensagem "  Comando:       $($definicao.Argumentos)"
    Write-Mensagem "  Pasta:         $PastaProjeto"
    Write-Mensagem "  Início:        $quando; fica rodando, sem tempo máximo"
    Write-Mensagem "  Se parar:      volta em até $(Get-RepeticaoContinuoMinutos) minutos (uma cópia por vez)"
    $informacoes = Get-InformacoesInvolucro -Executavel $escolhido.Executavel -PastaProjeto $PastaProjeto -NomeArquivo (Get-NomeLancadorContinuo)
    Write-Mensagem "  Log:           $(Format-ArquivoLog $informacoes)"
    Write-Mensagem '  Está vivo? Abra o painel (python sincronizar_bancos.py painel) ou o /status.json.'
    Write-Mensagem "Para ver o estado: .\AGENDAR_SINCRONIZACAO.ps1 -Status"
    if ($null -ne $informacoes.Erro) {
        Write-Mensagem 'ATENÇÃO: com este Python, a sincronização não consegue rodar; a tarefa vai falhar até isto ser corrigido:' 'Yellow'
        Write-Mensagem "  $($informacoes.Erro)" 'Yellow'
    }
    $explicacao = 'o modo contínuo substitui as execuções a cada intervalo (um modo de cada vez).'
    if ((Remove-TarefaOutroModo -NomeOutra $NomeTarefa -Explicacao $explicacao) -ne 0) {
        return 1
    }

    if ($ExecutarAgora) {
        try {
            Start-ScheduledTask -TaskName $nomeContinua -ErrorAction Stop
            Write-Mensagem 'Modo contínuo iniciado agora. Acompanhe com -Status, no log ou no painel.' 'Green'
        }
        catch {
            Write-Mensagem "Não foi possível iniciar a tarefa agora: $($_.Exception.Message)" 'Red'
            return 1
        }
    }
    else {
        Write-Mensagem "Começa $quando. Para começar já: .\AGENDAR_SINCRONIZACAO.ps1 -Continuo -ExecutarAgora"
    }
    return 0
}

function Uninstall-TarefaSincronizacao {
    # -Parar: a tarefa do modo contínuo fica rodando; ela é parada antes de sair do Agendador.
    param([string]$NomeTarefa, [switch]$Parar)
    $existente = Get-TarefaExistente -NomeTarefa $NomeTarefa
    if ($null -eq $existente) {
        Write-Mensagem "A tarefa '$NomeTarefa' não existe; nada a remover." 'Yellow'
        return 0
    }
    if ((Test-PrecisaAdministrador $existente) -and -not (Test-Administrador)) {
        Write-MensagemAdministrador 'remover'
        return 1
    }
    try {
        if ($Parar -and "$($existente.State)" -eq 'Running') {
            Stop-ScheduledTask -TaskName $NomeTarefa -ErrorAction Stop
        }
        Unregister-ScheduledTask -TaskName $NomeTarefa -Confirm:$false -ErrorAction Stop
    }
    catch {
        if (Test-AcessoNegado $_) {
            Write-MensagemAdministrador 'remover'
        }
        else {
            Write-Mensagem "Falha ao remover a tarefa '$NomeTarefa': $($_.Exception.Message)" 'Red'
        }
        return 1
    }
    Write-Mensagem "Tarefa '$NomeTarefa' removida. Os arquivos e os logs desta pasta foram mantidos." 'Green'
    return 0
}

function Get-EstadoEmPortugues {
    param([string]$Estado)
    switch ($Estado) {
        'Ready' { return 'pronta (aguardando o próximo horário)' }
        'Running' { return 'em execução agora' }
        'Disabled' { return 'desabilitada' }
        'Queued' { return 'na fila' }
        default { return $Estado }
    }
}

function Get-StatusTarefa {
    # Devolve um objeto com o estado da tarefa, ou $null se ela não existir.
    param([string]$NomeTarefa, [string]$PastaProjeto)
    $tarefa = Get-TarefaExistente -NomeTarefa $NomeTarefa
    if ($null -eq $tarefa) {
        return $null
    }
    $info = Get-ScheduledTaskInfo -TaskName $NomeTarefa -ErrorAction SilentlyContinue
    $ultimaExecucao = $null
    $proximaExecucao = $null
    $resultado = $null
    if ($null -ne $info) {
        $ultimaExecucao = $info.LastRunTime
        $proximaExecucao = $info.NextRunTime
        $resultado = $info.LastTaskResult
    }
    # O Agendador usa 30/11/1999 como "nunca executada".
    if ($null -ne $ultimaExecucao -and $ultimaExecucao.Year -lt 2000) {
        $ultimaExecucao = $null
    }
    $acao = $null
    if ($null -ne $tarefa.Actions) {
        $acao = @($tarefa.Actions)[0]
    }
    $executavel = $(if ($null -ne $acao) { $acao.Execute } else { $null })
    $argumentosAcao = $(if ($null -ne $acao) { "$($acao.Arguments)" } else { '' })
    $continuo = $argumentosAcao -like "*$(Get-NomeLancadorContinuo)*"
    $perguntarA = $(if ($continuo) { Get-NomeLancadorContinuo } else { Get-NomeInvolucro })
    $informacoes = Get-InformacoesInvolucro -Executavel $executavel -PastaProjeto $PastaProjeto -NomeArquivo $perguntarA
    $significado = 'sem informação'
    if ($null -eq $ultimaExecucao) {
        $significado = 'a tarefa ainda não foi executada'
    }
    elseif ($null -ne $resultado) {
        $significado = Get-SignificadoResultado -Codigo ([long]$resultado) -Codigos $informacoes.Codigos
    }
    $intervalo = $null
    if ($null -ne $tarefa.Triggers) {
        $primeiro = @($tarefa.Triggers)[0]
        if ($null -ne $primeiro -and $null -ne $primeiro.Repetition) {
            $intervalo = $primeiro.Repetition.Interval
        }
    }
    return [pscustomobject]@{
        Nome               = $NomeTarefa
        Estado             = "$($tarefa.State)"
        EstadoDescricao    = Get-EstadoEmPortugues "$($tarefa.State)"
        UltimaExecucao     = $ultimaExecucao
        ProximaExecucao    = $proximaExecucao
        UltimoResultado    = $resultado
        Significado        = $significado
        Executavel         = $executavel
        Argumentos         = $(if ($null -ne $acao) { $acao.Arguments } else { $null })
        DiretorioTrabalho  = $(if ($null -ne $acao) { $acao.WorkingDirectory } else { $null })
        Intervalo          = $intervalo
        Continuo           = $continuo
        ArquivoLog         = $informacoes.ArquivoLog
        ErroInvolucro      = $informacoes.Erro
    }
}

function Show-StatusTarefa {
    param([string]$NomeTarefa, [string]$PastaProjeto)
    $estado = Get-StatusTarefa -NomeTarefa $NomeTarefa -PastaProjeto $PastaProjeto
    if ($null -eq $estado) {
        Write-Mensagem "A tarefa '$NomeTarefa' não existe. Para criá-la: .\AGENDAR_SINCRONIZACAO.ps1" 'Yellow'
        return 1
    }
    Write-Mensagem "Tarefa:            $($estado.Nome)" 'Cyan'
    Write-Mensagem "Estado:            $($estado.EstadoDescricao)"
    if ($null -ne $estado.UltimaExecucao) {
        Write-Mensagem "Última execução:   $($estado.UltimaExecucao)"
        $cor = 'Yellow'
        if ($estado.UltimoResultado -eq 0) {
            $cor = 'Green'
        }
        Write-Mensagem "Último resultado:  $($estado.UltimoResultado) - $($estado.Significado)" $cor
    }
    else {
        Write-Mensagem 'Última execução:   nunca'
    }
    if ($null -ne $estado.ProximaExecucao) {
        Write-Mensagem "Próxima execução:  $($estado.ProximaExecucao)"
    }
    if ($estado.Continuo) {
        Write-Mensagem "Modo:              contínuo (vigiar); se parar, volta em até $(Get-RepeticaoContinuoMinutos) minutos"
    }
    else {
        Write-Mensagem "Intervalo:         $($estado.Intervalo)"
    }
    Write-Mensagem "Comando:           $($estado.Executavel) $($estado.Argumentos)"
    Write-Mensagem "Pasta de trabalho: $($estado.DiretorioTrabalho)"
    if ($null -eq $estado.ArquivoLog) {
        Write-Mensagem "Log:               (o sincronizar_automatico.py não respondeu: $($estado.ErroInvolucro))" 'Yellow'
        return 0
    }
    Write-Mensagem "Log:               $($estado.ArquivoLog)"
    if (Test-Path -LiteralPath $estado.ArquivoLog -PathType Leaf) {
        Write-Mensagem 'Últimas linhas do log:' 'Cyan'
        Get-Content -LiteralPath $estado.ArquivoLog -Tail 15 -Encoding UTF8 | ForEach-Object { Write-Mensagem "  $_" }
    }
    return 0
}

function Invoke-AgendarSincronizacao {
    # Ponto de entrada; devolve o código de saída (0 = ok).
    param(
        [int]$IntervaloMinutos = 60,
        [string]$NomeTarefa = 'SincronizarBancosAPI',
        [string]$Python = '',
        [switch]$Remover,
        [switch]$Status,
        [switch]$ExecutarAgora,
        [switch]$Continuo,
        [switch]$NaInicializacao,
        [int]$IntervaloSegundos = 0,
        [string]$PastaProjeto = ''
    )

    if ([string]::IsNullOrWhiteSpace($PastaProjeto)) {
        $PastaProjeto = (Get-Location).Path
    }

    if ($null -eq (Get-Command Register-ScheduledTask -ErrorAction SilentlyContinue)) {
        Write-Mensagem 'Este script precisa do Windows 8/Windows Server 2012 ou mais novo (módulo ScheduledTasks).' 'Red'
        return 1
    }
    if ([string]::IsNullOrWhiteSpace($NomeTarefa)) {
        Write-Mensagem 'Informe um nome de tarefa válido em -NomeTarefa.' 'Red'
        return 1
    }
    if (($Remover -and $Status) -or ($Remover -and $ExecutarAgora) -or ($Status -and $ExecutarAgora)) {
        Write-Mensagem 'Use só uma destas opções por vez: -Remover, -Status ou -ExecutarAgora.' 'Red'
        return 1
    }
    $nomeContinua = Get-NomeTarefaContinua -NomeTarefa $NomeTarefa
    if ($Remover) {
        # Remove os dois modos (a tarefa a cada intervalo e a do modo contínuo).
        $codigo = Uninstall-TarefaSincronizacao -NomeTarefa $NomeTarefa
        $codigoContinua = Uninstall-TarefaSincronizacao -NomeTarefa $nomeContinua -Parar
        return [Math]::Max($codigo, $codigoContinua)
    }
    if ($Status) {
        # Mostra a tarefa de cada modo que existir.
        $existentes = @(@($NomeTarefa, $nomeContinua) | Where-Object { $null -ne (Get-TarefaExistente -NomeTarefa $_) })
        if ($existentes.Count -eq 0) {
            return (Show-StatusTarefa -NomeTarefa $NomeTarefa -PastaProjeto $PastaProjeto)
        }
        $codigo = 0
        foreach ($nome in $existentes) {
            $codigo = [Math]::Max($codigo, (Show-StatusTarefa -NomeTarefa $nome -PastaProjeto $PastaProjeto))
        }
        return $codigo
    }
    if (($NaInicializacao -or $IntervaloSegundos -ne 0) -and -not $Continuo) {
        Write-Mensagem '-NaInicializacao e -IntervaloSegundos só valem com -Continuo.' 'Red'
        return 1
    }
    if ($Continuo) {
        if ($IntervaloSegundos -ne 0 -and ($IntervaloSegundos -lt 5 -or $IntervaloSegundos -gt 86400)) {
            Write-Mensagem "Intervalo inválido: $IntervaloSegundos. Use de 5 a 86400 segundos (o padrão do vigiar é 60)." 'Red'
            return 1
        }
        return (Install-TarefaContinua -NomeTarefa $NomeTarefa -Python $Python -PastaProjeto $PastaProjeto -IntervaloSegundos $IntervaloSegundos -NaInicializacao:$NaInicializacao -ExecutarAgora:$ExecutarAgora)
    }
    if ($IntervaloMinutos -lt 1 -or $IntervaloMinutos -gt 1440) {
        Write-Mensagem "Intervalo inválido: $IntervaloMinutos. Use de 1 a 1440 minutos (24 horas)." 'Red'
        return 1
    }
    return (Install-TarefaSincronizacao -IntervaloMinutos $IntervaloMinutos -NomeTarefa $NomeTarefa -Python $Python -PastaProjeto $PastaProjeto -ExecutarAgora:$ExecutarAgora)
}

# Execução direta. Carregado com ". .\AGENDAR_SINCRONIZACAO.ps1" (dot-source) ou
# com -SomenteFuncoes, só define as funções (testes Pester).
if (-not $SomenteFuncoes -and $MyInvocation.InvocationName -ne '.') {
    $pastaDoScript = $PSScriptRoot
    if ([string]::IsNullOrWhiteSpace($pastaDoScript)) {
        $pastaDoScript = (Get-Location).Path
    }
    $codigoSaida = Invoke-AgendarSincronizacao -IntervaloMinutos $IntervaloMinutos -NomeTarefa $NomeTarefa -Python $Python -Remover:$Remover -Status:$Status -ExecutarAgora:$ExecutarAgora -Continuo:$Continuo -NaInicializacao:$NaInicializacao -IntervaloSegundos $IntervaloSegundos -PastaProjeto $pastaDoScript
    exit $codigoSaida
}
