//! The `flux-catalog` command: serve, migrate, seed, openapi.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use flux_catalog::http::crud::Rules;
use flux_catalog::settings::{CONFIG_FILE_VARIABLE, Settings};
use flux_catalog::startup::{Application, Database};
use flux_catalog::{http, seed};

#[derive(Parser)]
#[command(
    version,
    about = "Catalog of platform components and clusters, served to Flux Operator"
)]
struct Cli {
    /// Configuration file (YAML), between the built-in defaults and the environment.
    #[arg(long, global = true, env = CONFIG_FILE_VARIABLE)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default). Uses DATABASE_URL, or an embedded PostgreSQL without it.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load a catalog document (JSON) and exit; safe to repeat.
    Seed { file: PathBuf },
    /// Print the OpenAPI document.
    Openapi {
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Yaml,
    Json,
}

#[actix_web::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi { format } => {
            print!(
                "{}",
                match format {
                    Format::Yaml => http::openapi::yaml_document(),
                    Format::Json => http::openapi::json_document() + "\n",
                }
            );
            Ok(())
        }
        Command::Serve => serve(cli.config).await,
        Command::Migrate => migrate(cli.config).await,
        Command::Seed { file } => seed_file(cli.config, file).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

fn settings(config: Option<PathBuf>) -> anyhow::Result<Settings> {
    let settings = Settings::from_process(config.as_deref())?;
    if !settings.unknown_keys.is_empty() {
        log::warn!(
            "ignoring unknown settings: {}",
            settings.unknown_keys.join(", ")
        );
    }
    Ok(settings)
}

fn rules(settings: &Settings) -> Rules {
    Rules {
        environments: settings.environments.clone(),
    }
}

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = settings(config)?;
    settings.require_tokens()?;
    log::info!("effective configuration: {settings:?}");
    let database = Database::open(&settings).await?;
    let outcome = async {
        if let Some(file) = &settings.seed_file {
            let report =
                seed::load_file(&database.store, file, &rules(&settings), settings.flux).await?;
            log::info!(
                "seeded from {}: {}",
                file.display(),
                seed::summarize(&report)
            );
        }
        let application = Application::build(
            &settings,
            database.store.clone(),
            database.connector.clone(),
        )?;
        log::info!(
            "flux-catalog {} serving in {} mode on {} (port {})",
            env!("CARGO_PKG_VERSION"),
            settings.api_mode,
            settings.listen_addr,
            application.port()
        );
        application.run_until_stopped().await?;
        log::info!("stopped serving; in-flight requests have finished");
        anyhow::Ok(())
    }
    .await;
    database.close().await;
    outcome
}

async fn migrate(config: Option<PathBuf>) -> anyhow::Result<()> {
    let mut settings = settings(config)?;
    settings.database.migrate_on_start = true;
    let database = Database::open(&settings).await?;
    database.close().await;
    Ok(())
}

async fn seed_file(config: Option<PathBuf>, file: PathBuf) -> anyhow::Result<()> {
    let settings = settings(config)?;
    let database = Database::open(&settings).await?;
    let outcome = seed::load_file(&database.store, &file, &rules(&settings), settings.flux).await;
    database.close().await;
    let report = outcome?;
    log::info!("loaded {}: {}", file.display(), seed::summarize(&report));
    Ok(())
}
