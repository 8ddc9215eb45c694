//! `impact-connect`: serves the app on LEPTOS_SITE_ADDR with the database at DATABASE_URL;
//! `impact-connect migrate` and `impact-connect check-config` do one thing and exit
//! (`--help` lists every setting, see `settings`).

use std::process::ExitCode;

use clap::Parser;
use server::{
    config::Config,
    settings::{Cli, Command},
    startup::Application,
    telemetry,
};

// Many long-lived event streams allocated among short-lived requests fragment glibc's heap, and
// what a burst of reconnecting subscribers frees is never handed back; mimalloc keeps the
// resident size close to what is live (see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // --help, --version and a malformed command line end here (exit 0 or 2, clap's message).
    let cli = Cli::parse();
    // Logging starts in the format asked for, before anything else is said; a bad format is
    // refused with the other settings just below (it is logged as text until then).
    telemetry::init_as(
        telemetry::LogFormat::from_setting(&cli.settings.log_format).unwrap_or_default(),
    );
    let config = match Config::from_settings(&cli.settings) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("impact-connect: invalid setting: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::CheckConfig => {
            println!("The settings are valid (the database was not opened).");
            Ok(())
        }
        Command::Migrate => migrate(&config).await,
        Command::Serve => serve(config).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("impact-connect: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Brings the database's schema up to date, as every start does, and nothing else.
async fn migrate(config: &Config) -> anyhow::Result<()> {
    let db = app::server::db::Db::connect(&config.database_url).await?;
    db.pool.close().await;
    println!("The database is migrated.");
    Ok(())
}

async fn serve(mut config: Config) -> anyhow::Result<()> {
    // No provider configured: start the built-in provider simulator and connect to it over HTTP.
    let _simulator = if config.settings.provider_url.is_empty() {
        let sim = simulator::Simulator::spawn(config.simulator_addr).await?;
        config.settings.provider_url = sim.instance_url("default");
        // The built-in simulator is the one plain-http, loopback provider allowed by default.
        config.settings.outbound.allow(&sim.address().to_string())?;
        println!(
            "Provider simulator at {} (faults: PUT http://{}/sim/instances/default/faults)",
            config.settings.provider_url,
            sim.address()
        );
        Some(sim)
    } else {
        None
    };
    let app = Application::build(config).await?;
    println!("Impact Connect is running at http://{}", app.address());
    match &app.setup_link {
        Some(link) => println!("First start: create the first administrator at {link}"),
        None => println!("Sign in at http://{}/login", app.address()),
    }
    app.run_until_stopped().await
}
