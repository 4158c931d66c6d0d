//! fleetgate's entry point: parse the command line, load settings, dispatch.

use std::process::ExitCode;

use clap::Parser;
use fleetgate::app::Application;
use fleetgate::cli::{self, Cli, Command};
use fleetgate::settings::Settings;
use fleetgate::telemetry;

/// Exit code for a bad configuration.
const EXIT_BAD_CONFIG: u8 = 2;

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
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
        Command::Secrets { action } => cli::run_secrets(&settings, action),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("fleetgate: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
