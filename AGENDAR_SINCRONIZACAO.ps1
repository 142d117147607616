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
    [switch]$SomenteFuncoes
)

# As funções não usam variáveis de escopo de script: assim o arquivo pode ser
# carregado com ". .\AGENDAR_SINCRONIZACAO.ps1 -SomenteFuncoes" (testes Pester)
# sem depender de escopo. Os valores fixos ficam em funções.

function Get-NomeInvolucro {
    return 'sincronizar_automatico.py'
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
    param([string]$Executavel, [string]$PastaProjeto)
    $resultado = [pscustomobject]@{ ArquivoLog = $null; Codigos = @{}; Erro = $null }
    if ([string]::IsNullOrWhiteSpace($Executavel)) {
        $resultado.Erro = 'a tarefa não informa qual Python usa.'
        return $resultado
    }
    $involucro = Join-Path $PastaProjeto (Get-NomeInvolucro)
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

function Uninstall-TarefaSincronizacao {
    param([string]$NomeTarefa)
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
    $informacoes = Get-InformacoesInvolucro -Executavel $executavel -PastaProjeto $PastaProjeto
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
    Write-Mensagem "Intervalo:         $($estado.Intervalo)"
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
    if ($Remover) {
        return (Uninstall-TarefaSincronizacao -NomeTarefa $NomeTarefa)
    }
    if ($Status) {
        return (Show-StatusTarefa -NomeTarefa $NomeTarefa -PastaProjeto $PastaProjeto)
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
    $codigoSaida = Invoke-AgendarSincronizacao -IntervaloMinutos $IntervaloMinutos -NomeTarefa $NomeTarefa -Python $Python -Remover:$Remover -Status:$Status -ExecutarAgora:$ExecutarAgora -PastaProjeto $pastaDoScript
    exit $codigoSaida
}
