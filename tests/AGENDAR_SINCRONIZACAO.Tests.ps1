#Requires -Version 5.1
# Testes Pester 5 do AGENDAR_SINCRONIZACAO.ps1.
#
# Os cmdlets do Agendador (Register-, Unregister-, Get-, Get-...Info, Start- e
# Stop-ScheduledTask) são simulados: nenhuma tarefa de verdade é criada. Os
# New-ScheduledTask* reais só montam objetos na memória; num contexto próprio
# eles também são simulados (repassando ao cmdlet real) para conferir os
# parâmetros recebidos. Rodam na CI do Windows:
#
#     Invoke-Pester -Path tests/*.Tests.ps1 -CI

BeforeAll {
    $script:CaminhoScript = Join-Path (Split-Path -Parent $PSScriptRoot) 'AGENDAR_SINCRONIZACAO.ps1'
    . $script:CaminhoScript -SomenteFuncoes

    function New-ProjetoFalso {
        param([switch]$ComVenv, [switch]$SemInvolucro, [switch]$ComLancador)
        $pasta = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        New-Item -ItemType Directory -Path $pasta | Out-Null
        if (-not $SemInvolucro) {
            Set-Content -LiteralPath (Join-Path $pasta 'sincronizar_automatico.py') -Value '# falso'
        }
        if ($ComVenv) {
            $scripts = Join-Path (Join-Path $pasta '.venv') 'Scripts'
            New-Item -ItemType Directory -Path $scripts -Force | Out-Null
            Set-Content -LiteralPath (Join-Path $scripts 'python.exe') -Value ''
            Set-Content -LiteralPath (Join-Path $scripts 'pythonw.exe') -Value ''
        }
        if ($ComLancador) {
            # O modo contínuo roda o sincronizar_bancos.py pelo lançador sem console da pasta agendamento.
            Set-Content -LiteralPath (Join-Path $pasta 'sincronizar_bancos.py') -Value '# falso'
            $agendamento = Join-Path $pasta 'agendamento'
            New-Item -ItemType Directory -Path $agendamento -Force | Out-Null
            Set-Content -LiteralPath (Join-Path $agendamento 'rodar_sem_console.py') -Value '# falso'
        }
        return $pasta
    }

    function New-RespostaInformar {
        # O que o sincronizar_automatico.py --informar imprime (JSON).
        param([string]$ArquivoLog = 'C:\protecao\dados\logs\sincronizacao.log', [int]$Codigo = 0, [string]$Texto = '')
        if ($Codigo -ne 0) {
            return [pscustomobject]@{ Codigo = $Codigo; Texto = $Texto }
        }
        $json = @{
            pasta_dados = (Split-Path -Parent (Split-Path -Parent $ArquivoLog))
            arquivo_log = $ArquivoLog
            codigos     = @{
                '0' = 'concluída, todos os backups com o mesmo veredito do principal'
                '2' = 'problema de configuração ou credenciais'
                '3' = 'outra sincronização já está em andamento'
                '4' = 'servidor inacessível ou com dados inutilizáveis; ou tempo limite esgotado'
                '5' = 'travas de segurança: servidor vazio ou que perdeu dados, ou exclusões acima do limite'
            }
        } | ConvertTo-Json
        return [pscustomobject]@{ Codigo = 0; Texto = $json }
    }

    function New-TarefaFalsa {
        param(
            [string]$Usuario = $env:USERNAME,
            [string]$NivelExecucao = 'Limited',
            [string]$Pasta = 'C:\protecao',
            [string]$Estado = 'Ready',
            [string]$Argumentos = '"C:\protecao\sincronizar_automatico.py"'
        )
        return [pscustomobject]@{
            TaskName  = 'TesteSinc'
            TaskPath  = '\'
            State     = $Estado
            Principal = [pscustomobject]@{ UserId = $Usuario; RunLevel = $NivelExecucao }
            Actions   = @([pscustomobject]@{
                    Execute          = 'C:\protecao\.venv\Scripts\pythonw.exe'
                    Arguments        = $Argumentos
                    WorkingDirectory = $Pasta
                })
            Triggers  = @([pscustomobject]@{
                    Repetition = [pscustomobject]@{ Interval = 'PT1H'; Duration = '' }
                })
        }
    }
}

Describe 'AGENDAR_SINCRONIZACAO.ps1' {
    BeforeEach {
        $script:Registros = @()
        Mock Write-Mensagem { return }
        Mock Register-ScheduledTask {
            $script:Registros += [pscustomobject]@{
                TaskName    = $TaskName
                Action      = $Action
                Trigger     = $Trigger
                Settings    = $Settings
                Principal   = $Principal
                Description = $Description
                Force       = [bool]$Force
            }
            [pscustomobject]@{ TaskName = $TaskName }
        }
        Mock Unregister-ScheduledTask { return }
        Mock Start-ScheduledTask { return }
        Mock Stop-ScheduledTask { return }
        Mock Get-ScheduledTask { $null }
        Mock Get-ScheduledTaskInfo { $null }
        Mock Test-Administrador { $false }
        Mock Find-Comando { $null }
        Mock Invoke-ConsultaPython { [pscustomobject]@{ Executavel = $Executavel; Versao = '3.11' } }
        Mock Invoke-InformarInvolucro { New-RespostaInformar }
    }

    Context 'Carregar o script' {
        It 'dot-source sem -SomenteFuncoes não executa nada' {
            . $script:CaminhoScript
            Should -Invoke Register-ScheduledTask -Times 0 -Exactly
            Should -Invoke Unregister-ScheduledTask -Times 0 -Exactly
            Get-Command Invoke-AgendarSincronizacao | Should -Not -BeNullOrEmpty
        }
    }

    Context 'Instalação' {
        It 'registra a tarefa com a pasta do script, o invólucro, o intervalo e IgnoreNew' {
            $pasta = New-ProjetoFalso -ComVenv
            $codigo = Invoke-AgendarSincronizacao -IntervaloMinutos 30 -NomeTarefa 'TesteSinc' -PastaProjeto $pasta
            $codigo | Should -Be 0
            Should -Invoke Register-ScheduledTask -Times 1 -Exactly
            $script:Registros.Count | Should -Be 1
            $registro = $script:Registros[0]
            $registro.TaskName | Should -Be 'TesteSinc'
            $registro.Force | Should -BeTrue

            $acao = @($registro.Action)[0]
            $acao.WorkingDirectory | Should -Be $pasta
            $acao.Execute | Should -Be (Join-Path $pasta '.venv\Scripts\pythonw.exe')
            $acao.Arguments | Should -Be ('"' + (Join-Path $pasta 'sincronizar_automatico.py') + '"')

            $gatilho = @($registro.Trigger)[0]
            $gatilho.Repetition.Interval | Should -Be 'PT30M'
            $gatilho.Repetition.Duration | Should -BeNullOrEmpty

            "$($registro.Settings.MultipleInstances)" | Should -BeIn @('IgnoreNew', '2')
            $registro.Settings.StartWhenAvailable | Should -BeTrue
            $registro.Settings.ExecutionTimeLimit | Should -Be 'PT1H'
            $registro.Settings.DisallowStartIfOnBatteries | Should -BeFalse
            $registro.Settings.StopIfGoingOnBatteries | Should -BeFalse

            "$($registro.Principal.RunLevel)" | Should -BeIn @('Limited', '0')
            "$($registro.Principal.LogonType)" | Should -BeIn @('Interactive', '3')
            Should -Invoke Start-ScheduledTask -Times 0 -Exactly

            # O log mostrado é o que o invólucro informa, perguntado com o python.exe (com console).
            Should -Invoke Invoke-InformarInvolucro -Times 1 -Exactly -ParameterFilter {
                $Executavel -eq (Join-Path $pasta '.venv\Scripts\python.exe') -and
                $Involucro -eq (Join-Path $pasta 'sincronizar_automatico.py')
            }
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*Log:*C:\protecao\dados\logs\sincronizacao.log' }
        }

        It 'avisa quando o invólucro não roda com o Python escolhido, mas registra a tarefa' {
            $pasta = New-ProjetoFalso -ComVenv
            Mock Invoke-InformarInvolucro { New-RespostaInformar -Codigo 2 -Texto 'Dependência ausente: requests. Instale com: pip install -r requirements.txt' }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Register-ScheduledTask -Times 1 -Exactly
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*ATENÇÃO*' }
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*Dependência ausente: requests*' }
        }

        It 'usa 60 minutos por padrão' {
            $pasta = New-ProjetoFalso -ComVenv
            Invoke-AgendarSincronizacao -PastaProjeto $pasta | Should -Be 0
            @($script:Registros[0].Trigger)[0].Repetition.Interval | Should -Be 'PT1H'
            $script:Registros[0].TaskName | Should -Be 'SincronizarBancosAPI'
        }

        It 'rodar duas vezes substitui a tarefa (-Force), sem remover nem duplicar' {
            $pasta = New-ProjetoFalso -ComVenv
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Mock Get-ScheduledTask { New-TarefaFalsa } -ParameterFilter { $TaskName -eq 'TesteSinc' }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Register-ScheduledTask -Times 2 -Exactly -ParameterFilter { $TaskName -eq 'TesteSinc' -and $Force }
            Should -Invoke Unregister-ScheduledTask -Times 0 -Exactly
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*atualizada*' }
        }

        It '-ExecutarAgora registra e inicia a tarefa' {
            $pasta = New-ProjetoFalso -ComVenv
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -ExecutarAgora -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Register-ScheduledTask -Times 1 -Exactly
            Should -Invoke Start-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSinc' }
        }

        It 'recusa intervalo fora de 1 a 1440 minutos' {
            $pasta = New-ProjetoFalso -ComVenv
            Invoke-AgendarSincronizacao -IntervaloMinutos 0 -PastaProjeto $pasta | Should -Be 1
            Invoke-AgendarSincronizacao -IntervaloMinutos 1441 -PastaProjeto $pasta | Should -Be 1
            Should -Invoke Register-ScheduledTask -Times 0 -Exactly
        }

        It 'recusa opções que não combinam' {
            Invoke-AgendarSincronizacao -Remover -Status -PastaProjeto $TestDrive | Should -Be 1
            Invoke-AgendarSincronizacao -Remover -ExecutarAgora -PastaProjeto $TestDrive | Should -Be 1
            Should -Invoke Unregister-ScheduledTask -Times 0 -Exactly
        }

        It 'para com mensagem se o sincronizar_automatico.py não estiver na pasta' {
            $pasta = New-ProjetoFalso -ComVenv -SemInvolucro
            Invoke-AgendarSincronizacao -PastaProjeto $pasta | Should -Be 1
            Should -Invoke Register-ScheduledTask -Times 0 -Exactly
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*sincronizar_automatico.py*' }
        }

        It 'pede Administrador para substituir tarefa de outro usuário ou com privilégios mais altos' {
            $pasta = New-ProjetoFalso -ComVenv
            Mock Get-ScheduledTask { New-TarefaFalsa -Usuario 'OutroUsuario' -NivelExecucao 'Highest' }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 1
            Should -Invoke Register-ScheduledTask -Times 0 -Exactly
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*como Administrador*' }
        }

        It 'como Administrador, substitui a tarefa antiga de privilégios mais altos' {
            $pasta = New-ProjetoFalso -ComVenv
            Mock Get-ScheduledTask { New-TarefaFalsa -NivelExecucao 'Highest' }
            Mock Test-Administrador { $true }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Register-ScheduledTask -Times 1 -Exactly
        }

        It 'explica quando o registro é negado' {
            $pasta = New-ProjetoFalso -ComVenv
            Mock Register-ScheduledTask { throw [System.UnauthorizedAccessException]::new('Access is denied.') }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 1
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*como Administrador*' }
        }
    }

    Context 'Escolha do Python' {
        It 'prefere o .venv da pasta' {
            $pasta = New-ProjetoFalso -ComVenv
            $escolhido = Resolve-Python -Python '' -PastaProjeto $pasta
            $escolhido.Executavel | Should -Be (Join-Path $pasta '.venv\Scripts\python.exe')
            Should -Invoke Find-Comando -Times 0 -Exactly
        }

        It 'aceita também a pasta venv' {
            $pasta = New-ProjetoFalso
            $scripts = Join-Path (Join-Path $pasta 'venv') 'Scripts'
            New-Item -ItemType Directory -Path $scripts -Force | Out-Null
            Set-Content -LiteralPath (Join-Path $scripts 'python.exe') -Value ''
            (Resolve-Python -Python '' -PastaProjeto $pasta).Executavel | Should -Be (Join-Path $scripts 'python.exe')
        }

        It 'sem venv usa o inicializador py -3 e grava o caminho real do Python' {
            $pasta = New-ProjetoFalso
            Mock Find-Comando { 'C:\Windows\py.exe' } -ParameterFilter { $Nome -eq 'py' }
            Mock Invoke-ConsultaPython { [pscustomobject]@{ Executavel = 'C:\Python311\python.exe'; Versao = '3.11' } }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Invoke-ConsultaPython -ParameterFilter { $Executavel -eq 'C:\Windows\py.exe' -and ($ArgumentosExtras -contains '-3') }
            @($script:Registros[0].Action)[0].Execute | Should -Be 'C:\Python311\python.exe'
        }

        It 'sem venv nem py usa o python do PATH' {
            $pasta = New-ProjetoFalso
            Mock Find-Comando { 'C:\Python312\python.exe' } -ParameterFilter { $Nome -eq 'python' }
            (Resolve-Python -Python '' -PastaProjeto $pasta).Executavel | Should -Be 'C:\Python312\python.exe'
        }

        It 'recusa o atalho da Microsoft Store (WindowsApps)' {
            $pasta = New-ProjetoFalso
            Mock Find-Comando { 'C:\Users\ana\AppData\Local\Microsoft\WindowsApps\python.exe' } -ParameterFilter { $Nome -eq 'python' }
            { Resolve-Python -Python '' -PastaProjeto $pasta } | Should -Throw '*Microsoft Store*'
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 1
            Should -Invoke Register-ScheduledTask -Times 0 -Exactly
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*Microsoft Store*' }
        }

        It 'recusa -Python apontando para WindowsApps' {
            $pasta = New-ProjetoFalso -ComVenv
            Mock Find-Comando { 'C:\Users\ana\AppData\Local\Microsoft\WindowsApps\python3.exe' }
            { Resolve-Python -Python 'python3' -PastaProjeto $pasta } | Should -Throw '*Microsoft Store*'
        }

        It 'recusa Python antigo demais' {
            $pasta = New-ProjetoFalso -ComVenv
            Mock Invoke-ConsultaPython { [pscustomobject]@{ Executavel = $Executavel; Versao = '3.6' } }
            { Resolve-Python -Python '' -PastaProjeto $pasta } | Should -Throw '*3.10*'
        }

        It 'avisa quando nenhum Python é encontrado' {
            $pasta = New-ProjetoFalso
            { Resolve-Python -Python '' -PastaProjeto $pasta } | Should -Throw '*Nenhum Python encontrado*'
        }

        It 'usa pythonw.exe quando existe ao lado do python.exe' {
            $pasta = New-ProjetoFalso -ComVenv
            Get-PythonSemJanela -Executavel (Join-Path $pasta '.venv\Scripts\python.exe') |
                Should -Be (Join-Path $pasta '.venv\Scripts\pythonw.exe')
            Get-PythonSemJanela -Executavel 'C:\nao\existe\python.exe' | Should -Be 'C:\nao\existe\python.exe'
        }

        It 'para perguntar ao invólucro, troca pythonw.exe pelo python.exe ao lado' {
            $pasta = New-ProjetoFalso -ComVenv
            Get-PythonComConsole -Executavel (Join-Path $pasta '.venv\Scripts\pythonw.exe') |
                Should -Be (Join-Path $pasta '.venv\Scripts\python.exe')
            Get-PythonComConsole -Executavel 'C:\nao\existe\pythonw.exe' | Should -Be 'C:\nao\existe\pythonw.exe'
            Get-PythonComConsole -Executavel 'pythonw.exe' | Should -Be 'pythonw.exe'
        }
    }

    Context 'Cmdlets New-ScheduledTask* simulados' {
        BeforeEach {
            Mock New-ScheduledTaskAction { ScheduledTasks\New-ScheduledTaskAction @PesterBoundParameters }
            Mock New-ScheduledTaskTrigger { ScheduledTasks\New-ScheduledTaskTrigger @PesterBoundParameters }
            Mock New-ScheduledTaskSettingsSet { ScheduledTasks\New-ScheduledTaskSettingsSet @PesterBoundParameters }
            Mock New-ScheduledTaskPrincipal { ScheduledTasks\New-ScheduledTaskPrincipal @PesterBoundParameters }
        }

        It 'passa a pasta de trabalho, o invólucro, o intervalo sem duração e IgnoreNew' {
            $pasta = New-ProjetoFalso -ComVenv
            $involucro = Join-Path $pasta 'sincronizar_automatico.py'
            Invoke-AgendarSincronizacao -IntervaloMinutos 45 -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Should -Invoke New-ScheduledTaskAction -Times 1 -Exactly -ParameterFilter {
                $WorkingDirectory -eq $pasta -and $Argument -eq ('"' + $involucro + '"')
            }
            Should -Invoke New-ScheduledTaskTrigger -Times 1 -Exactly -ParameterFilter {
                $Once -and $RepetitionInterval -eq (New-TimeSpan -Minutes 45) -and -not $PesterBoundParameters.ContainsKey('RepetitionDuration')
            }
            Should -Invoke New-ScheduledTaskSettingsSet -Times 1 -Exactly -ParameterFilter {
                "$MultipleInstances" -eq 'IgnoreNew' -and $StartWhenAvailable -and $AllowStartIfOnBattery -and
                $DontStopIfGoingOnBatteries -and $ExecutionTimeLimit -eq (New-TimeSpan -Hours 1)
            }
            Should -Invoke New-ScheduledTaskPrincipal -Times 1 -Exactly -ParameterFilter {
                "$RunLevel" -eq 'Limited' -and "$LogonType" -eq 'Interactive'
            }
            Should -Invoke Register-ScheduledTask -Times 1 -Exactly
        }
    }

    Context 'Remoção' {
        It '-Remover remove a tarefa existente' {
            Mock Get-ScheduledTask { New-TarefaFalsa }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -Remover -PastaProjeto $TestDrive | Should -Be 0
            Should -Invoke Unregister-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSinc' }
            Should -Invoke Register-ScheduledTask -Times 0 -Exactly
        }

        It '-Remover sem tarefa não falha' {
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -Remover -PastaProjeto $TestDrive | Should -Be 0
            Should -Invoke Unregister-ScheduledTask -Times 0 -Exactly
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*não existe*' }
        }

        It '-Remover de tarefa com privilégios mais altos pede Administrador' {
            Mock Get-ScheduledTask { New-TarefaFalsa -NivelExecucao 'Highest' }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -Remover -PastaProjeto $TestDrive | Should -Be 1
            Should -Invoke Unregister-ScheduledTask -Times 0 -Exactly
        }

        It 'executar o script direto com -Remover usa o código de saída' {
            Mock Get-ScheduledTask { New-TarefaFalsa }
            & $script:CaminhoScript -NomeTarefa 'TesteSinc' -Remover 6> $null
            $LASTEXITCODE | Should -Be 0
            Should -Invoke Unregister-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSinc' }
        }
    }

    Context 'Status' {
        It '-Status mostra estado, última execução e o significado do resultado' {
            $pasta = New-ProjetoFalso
            Mock Get-ScheduledTask { New-TarefaFalsa -Pasta $pasta }
            Mock Get-ScheduledTaskInfo {
                [pscustomobject]@{
                    LastRunTime    = (Get-Date).AddMinutes(-5)
                    NextRunTime    = (Get-Date).AddMinutes(55)
                    LastTaskResult = 4
                }
            }
            $estado = Get-StatusTarefa -NomeTarefa 'TesteSinc' -PastaProjeto $pasta
            $estado.Estado | Should -Be 'Ready'
            $estado.UltimoResultado | Should -Be 4
            $estado.Significado | Should -BeLike '*servidor inacessível*'
            $estado.DiretorioTrabalho | Should -Be $pasta
            $estado.Intervalo | Should -Be 'PT1H'
            $estado.ArquivoLog | Should -Be 'C:\protecao\dados\logs\sincronizacao.log'
            Should -Invoke Invoke-InformarInvolucro -ParameterFilter {
                $Executavel -eq 'C:\protecao\.venv\Scripts\pythonw.exe' -and
                $Involucro -eq (Join-Path $pasta 'sincronizar_automatico.py')
            }

            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -Status -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Get-ScheduledTaskInfo -ParameterFilter { $TaskName -eq 'TesteSinc' }
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*Último resultado:*4*servidor inacessível*' }
            Should -Invoke Register-ScheduledTask -Times 0 -Exactly
        }

        It '-Status de tarefa nunca executada' {
            Mock Get-ScheduledTask { New-TarefaFalsa }
            Mock Get-ScheduledTaskInfo {
                [pscustomobject]@{ LastRunTime = [datetime]'1999-11-30'; NextRunTime = (Get-Date).AddMinutes(1); LastTaskResult = 267011 }
            }
            $estado = Get-StatusTarefa -NomeTarefa 'TesteSinc' -PastaProjeto $TestDrive
            $estado.UltimaExecucao | Should -BeNullOrEmpty
            $estado.Significado | Should -BeLike '*ainda não foi executada*'
        }

        It '-Status sem tarefa devolve 1 com mensagem' {
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -Status -PastaProjeto $TestDrive | Should -Be 1
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*não existe*' }
        }

        It 'não lê o .env: o log é o que o invólucro informa' {
            $pasta = New-ProjetoFalso
            Set-Content -LiteralPath (Join-Path $pasta '.env') -Value @('ADMIN_PASSWORD=x', 'DADOS_DIR="estado"')
            Mock Get-ScheduledTask { New-TarefaFalsa -Pasta $pasta }
            Mock Invoke-InformarInvolucro { New-RespostaInformar -ArquivoLog 'D:\decidido\pelo\python\logs\sincronizacao.log' }
            $estado = Get-StatusTarefa -NomeTarefa 'TesteSinc' -PastaProjeto $pasta
            $estado.ArquivoLog | Should -Be 'D:\decidido\pelo\python\logs\sincronizacao.log'
            Get-Command Get-PastaDados -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        }

        It 'sem resposta do invólucro, mostra o erro dele no lugar do log' {
            Mock Get-ScheduledTask { New-TarefaFalsa }
            Mock Get-ScheduledTaskInfo {
                [pscustomobject]@{ LastRunTime = (Get-Date).AddMinutes(-5); NextRunTime = (Get-Date).AddMinutes(55); LastTaskResult = 2 }
            }
            Mock Invoke-InformarInvolucro { New-RespostaInformar -Codigo 2 -Texto 'Dependência ausente: requests' }
            $estado = Get-StatusTarefa -NomeTarefa 'TesteSinc' -PastaProjeto $TestDrive
            $estado.ArquivoLog | Should -BeNullOrEmpty
            $estado.ErroInvolucro | Should -BeLike '*requests*'
            $estado.Significado | Should -BeLike '*código 2 do sincronizar_automatico.py*'
            Show-StatusTarefa -NomeTarefa 'TesteSinc' -PastaProjeto $TestDrive | Should -Be 0
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*Log:*não respondeu*requests*' }
        }
    }

    Context 'Modo contínuo' {
        It 'registra TesteSincContinuo: pythonw.exe com o lançador e vigiar, no login, sem tempo máximo' {
            $pasta = New-ProjetoFalso -ComVenv -ComLancador
            Invoke-AgendarSincronizacao -Continuo -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Register-ScheduledTask -Times 1 -Exactly
            $registro = $script:Registros[0]
            $registro.TaskName | Should -Be 'TesteSincContinuo'
            $registro.Force | Should -BeTrue

            $acao = @($registro.Action)[0]
            $acao.Execute | Should -Be (Join-Path $pasta '.venv\Scripts\pythonw.exe')
            $acao.Arguments | Should -Be ('"' + (Join-Path $pasta 'agendamento\rodar_sem_console.py') + '" vigiar')
            $acao.WorkingDirectory | Should -Be $pasta

            # No login, e de volta em até 5 minutos se parar (a repetição é ignorada enquanto ele roda).
            $gatilho = @($registro.Trigger)[0]
            $gatilho.CimClass.CimClassName | Should -Be 'MSFT_TaskLogonTrigger'
            $gatilho.Repetition.Interval | Should -Be 'PT5M'
            $gatilho.Repetition.Duration | Should -BeNullOrEmpty

            # Sem tempo máximo (o padrão, 72 h, encerraria o vigiar), uma cópia por vez, novas tentativas.
            $registro.Settings.ExecutionTimeLimit | Should -Be 'PT0S'
            "$($registro.Settings.MultipleInstances)" | Should -BeIn @('IgnoreNew', '2')
            $registro.Settings.RestartCount | Should -Be 3
            $registro.Settings.RestartInterval | Should -Be 'PT1M'
            $registro.Settings.DisallowStartIfOnBatteries | Should -BeFalse
            $registro.Settings.StopIfGoingOnBatteries | Should -BeFalse

            "$($registro.Principal.LogonType)" | Should -BeIn @('Interactive', '3')
            "$($registro.Principal.RunLevel)" | Should -BeIn @('Limited', '0')
            Should -Invoke Start-ScheduledTask -Times 0 -Exactly
            Should -Invoke Invoke-InformarInvolucro -ParameterFilter {
                $Involucro -eq (Join-Path $pasta 'agendamento\rodar_sem_console.py')
            }
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*-Continuo -ExecutarAgora*' }
        }

        It 'rodar de novo substitui a tarefa contínua, sem remover nem duplicar' {
            $pasta = New-ProjetoFalso -ComVenv -ComLancador
            Invoke-AgendarSincronizacao -Continuo -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Mock Get-ScheduledTask {
                New-TarefaFalsa -Argumentos '"C:\protecao\agendamento\rodar_sem_console.py" vigiar'
            } -ParameterFilter { $TaskName -eq 'TesteSincContinuo' }
            Invoke-AgendarSincronizacao -Continuo -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Register-ScheduledTask -Times 2 -Exactly -ParameterFilter { $TaskName -eq 'TesteSincContinuo' -and $Force }
            Should -Invoke Unregister-ScheduledTask -Times 0 -Exactly
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*modo contínuo*atualizada*' }
        }

        It '-ExecutarAgora inicia a tarefa contínua' {
            $pasta = New-ProjetoFalso -ComVenv -ComLancador
            Invoke-AgendarSincronizacao -Continuo -ExecutarAgora -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Start-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSincContinuo' }
        }

        It '-IntervaloSegundos vai para o vigiar; fora de 5 a 86400 ou sem -Continuo é recusado' {
            $pasta = New-ProjetoFalso -ComVenv -ComLancador
            Invoke-AgendarSincronizacao -Continuo -IntervaloSegundos 30 -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            @($script:Registros[0].Action)[0].Arguments | Should -BeLike '*rodar_sem_console.py" vigiar --intervalo 30'
            Invoke-AgendarSincronizacao -Continuo -IntervaloSegundos 4 -PastaProjeto $pasta | Should -Be 1
            Invoke-AgendarSincronizacao -Continuo -IntervaloSegundos 86401 -PastaProjeto $pasta | Should -Be 1
            Invoke-AgendarSincronizacao -IntervaloSegundos 30 -PastaProjeto $pasta | Should -Be 1
            Invoke-AgendarSincronizacao -NaInicializacao -PastaProjeto $pasta | Should -Be 1
            Should -Invoke Register-ScheduledTask -Times 1 -Exactly
        }

        It '-NaInicializacao sem Administrador é recusado com explicação' {
            $pasta = New-ProjetoFalso -ComVenv -ComLancador
            Invoke-AgendarSincronizacao -Continuo -NaInicializacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 1
            Should -Invoke Register-ScheduledTask -Times 0 -Exactly
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*como Administrador*' }
        }

        It '-NaInicializacao como Administrador: na inicialização, sem senha guardada (S4U)' {
            $pasta = New-ProjetoFalso -ComVenv -ComLancador
            Mock Test-Administrador { $true }
            Invoke-AgendarSincronizacao -Continuo -NaInicializacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            $registro = $script:Registros[0]
            @($registro.Trigger)[0].CimClass.CimClassName | Should -Be 'MSFT_TaskBootTrigger'
            @($registro.Trigger)[0].Repetition.Interval | Should -Be 'PT5M'
            "$($registro.Principal.LogonType)" | Should -BeIn @('S4U', '2')
            "$($registro.Principal.RunLevel)" | Should -BeIn @('Limited', '0')
        }

        It 'instalar o contínuo para e remove a tarefa a cada intervalo (um modo de cada vez)' {
            $pasta = New-ProjetoFalso -ComVenv -ComLancador
            Mock Get-ScheduledTask { New-TarefaFalsa -Estado 'Running' } -ParameterFilter { $TaskName -eq 'TesteSinc' }
            Invoke-AgendarSincronizacao -Continuo -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Register-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSincContinuo' }
            Should -Invoke Stop-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSinc' }
            Should -Invoke Unregister-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSinc' }
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like "*'TesteSinc' removida*um modo de cada vez*" }
        }

        It 'instalar a cada intervalo para e remove a tarefa contínua' {
            $pasta = New-ProjetoFalso -ComVenv
            Mock Get-ScheduledTask { New-TarefaFalsa -Estado 'Running' } -ParameterFilter { $TaskName -eq 'TesteSincContinuo' }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Register-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSinc' }
            Should -Invoke Stop-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSincContinuo' }
            Should -Invoke Unregister-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSincContinuo' }
        }

        It 'a tarefa do outro modo que só um Administrador remove: para antes de registrar' {
            $pasta = New-ProjetoFalso -ComVenv -ComLancador
            Mock Get-ScheduledTask { New-TarefaFalsa -NivelExecucao 'Highest' } -ParameterFilter { $TaskName -eq 'TesteSinc' }
            Invoke-AgendarSincronizacao -Continuo -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 1
            Should -Invoke Register-ScheduledTask -Times 0 -Exactly
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*mesma trava*' }
        }

        It 'sem o lançador na pasta, para com mensagem' {
            $pasta = New-ProjetoFalso -ComVenv
            Invoke-AgendarSincronizacao -Continuo -NomeTarefa 'TesteSinc' -PastaProjeto $pasta | Should -Be 1
            Should -Invoke Register-ScheduledTask -Times 0 -Exactly
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*pasta agendamento*' }
        }

        It '-Remover tira os dois modos e para o vigiar que está rodando' {
            Mock Get-ScheduledTask { New-TarefaFalsa -Estado 'Running' }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -Remover -PastaProjeto $TestDrive | Should -Be 0
            Should -Invoke Unregister-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSinc' }
            Should -Invoke Unregister-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSincContinuo' }
            Should -Invoke Stop-ScheduledTask -Times 1 -Exactly -ParameterFilter { $TaskName -eq 'TesteSincContinuo' }
            Should -Invoke Stop-ScheduledTask -Times 0 -Exactly -ParameterFilter { $TaskName -eq 'TesteSinc' }
        }

        It '-Status mostra a tarefa contínua, com o log informado pelo lançador' {
            $pasta = New-ProjetoFalso
            Mock Get-ScheduledTask {
                New-TarefaFalsa -Pasta $pasta -Estado 'Running' -Argumentos '"C:\protecao\agendamento\rodar_sem_console.py" vigiar'
            } -ParameterFilter { $TaskName -eq 'TesteSincContinuo' }
            Mock Get-ScheduledTaskInfo {
                [pscustomobject]@{ LastRunTime = (Get-Date).AddHours(-3); NextRunTime = $null; LastTaskResult = 267009 }
            }
            Mock Invoke-InformarInvolucro { New-RespostaInformar -ArquivoLog 'C:\protecao\dados\logs\vigiar.log' }
            Invoke-AgendarSincronizacao -NomeTarefa 'TesteSinc' -Status -PastaProjeto $pasta | Should -Be 0
            Should -Invoke Invoke-InformarInvolucro -ParameterFilter {
                $Involucro -eq (Join-Path $pasta 'agendamento\rodar_sem_console.py')
            }
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*Modo:*contínuo*' }
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*Log:*vigiar.log' }
            Should -Invoke Write-Mensagem -ParameterFilter { $Texto -like '*em execução agora*' }
        }
    }

    Context 'Significado dos resultados' {
        It 'traduz os códigos do invólucro (tabela informada por ele) e do Agendador' {
            $codigos = @{ '0' = 'concluída'; '2' = 'problema de configuração'; '3' = 'já está em andamento' }
            Get-SignificadoResultado -Codigo 0 -Codigos $codigos | Should -Be 'concluída'
            Get-SignificadoResultado -Codigo 2 -Codigos $codigos | Should -BeLike '*configuração*'
            Get-SignificadoResultado -Codigo 3 -Codigos $codigos | Should -BeLike '*em andamento*'
            Get-SignificadoResultado -Codigo 5 | Should -BeLike '*código 5 do sincronizar_automatico.py*'
            Get-SignificadoResultado -Codigo 267011 | Should -BeLike '*ainda não foi executada*'
            Get-SignificadoResultado -Codigo 2147750687 | Should -BeLike '*execução anterior*'
            Get-SignificadoResultado -Codigo -2147216609 | Should -BeLike '*execução anterior*'
            Get-SignificadoResultado -Codigo 999 | Should -Be 'código desconhecido (0x3E7)'
        }

        It 'reconhece caminhos do atalho da loja' {
            Test-AtalhoLojaWindows 'C:\Users\ana\AppData\Local\Microsoft\WindowsApps\python.exe' | Should -BeTrue
            Test-AtalhoLojaWindows 'C:\Python311\python.exe' | Should -BeFalse
            Test-AtalhoLojaWindows '' | Should -BeFalse
        }
    }
}
