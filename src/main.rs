//! fleetgate's entry point: parse the command line, load settings, dispatch.

use std::process::ExitCode;

use clap::Parser;
use fleetgate::app::Application;
use fleetgate::cli::client::server_trust::ServerTrust;
use fleetgate::cli::client::{commands, play, shell, watch};
use fleetgate::cli::{self, Cli, Command};
use fleetgate::settings::Settings;
use fleetgate::telemetry;

/// jemalloc: less heap per agent socket and less fragmentation than glibc's malloc with
/// ten thousand connections (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code for a bad configuration.
const EXIT_BAD_CONFIG: u8 = 2;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(outcome) = run_client(cli.command.as_ref()).await {
        return outcome;
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("fleetgate: {err}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    telemetry::init(&settings.log);

    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate { action } => cli::run_migrate(&settings, action).await,
        Command::Machine { action } => cli::run_machine(&settings, action).await,
        Command::User { action } => cli::run_user(&settings, action).await,
        Command::Secrets { action } => cli::run_secrets(&settings, action).await,
        Command::Doctor => cli::doctor::run_doctor(&settings, cli.config.as_deref()).await,
        Command::Backup { file } => cli::backup::run_backup(&settings, &file).await,
        // Client commands were handled by `run_client` above.
        _ => Ok(()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fleetgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Client commands talk to a server and need no server settings; `None` for server commands.
async fn run_client(command: Option<&Command>) -> Option<ExitCode> {
    let outcome = match command? {
        Command::Login {
            server,
            user,
            ca_file,
            pin_sha256,
        } => {
            let tls = ServerTrust {
                ca_file: ca_file.clone(),
                pin_sha256: pin_sha256.clone(),
            };
            commands::login(server, user.clone(), tls).await.map(|_| 0)
        }
        Command::Machines { json } => commands::machines(*json).await.map(|_| 0),
        Command::Exec {
            machine,
            timeout,
            command,
        } => commands::exec(machine, command, *timeout).await,
        Command::Shell {
            watch: Some(session),
            ..
        } => watch::watch(session).await.map(|_| 0),
        Command::Shell {
            machine, attach, ..
        } => shell::shell(machine.as_deref(), attach.as_deref())
            .await
            .map(|_| 0),
        Command::Sessions {
            machine,
            ended,
            json,
        } => commands::sessions(machine.as_deref(), *ended, *json)
            .await
            .map(|_| 0),
        Command::Audit { json, limit } => commands::audit(*json, *limit).await.map(|_| 0),
        Command::Play { session, speed } => play::play(session, *speed).await.map(|_| 0),
        _ => return None,
    };
    Some(match outcome {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("fleetgate: {err:#}");
            ExitCode::FAILURE
        }
    })
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
