//! The `flux-catalog` command: serve, migrate, seed, openapi.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};

use flux_catalog::http::{self, catalog_document};
use flux_catalog::settings::{self, CONFIG_FILE_VARIABLE, Settings};
use flux_catalog::startup::{self, Database};
use flux_catalog::storage::Existing;

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
    #[command(after_help = settings::variables_help())]
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load a catalog document (JSON) and exit: creates what is missing and leaves what
    /// exists as it is (as SEED_FILE does at start-up); safe to repeat.
    Seed {
        /// The catalog document.
        file: PathBuf,
        /// Also replace existing resources that differ from the document.
        #[arg(long)]
        replace: bool,
    },
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
    let cli = Cli::parse();
    // The logger comes first, so that even an error in the settings is logged in the chosen
    // format; when the settings cannot be read, the environment alone decides.
    flux_catalog::logging::init(Settings::from_process(cli.config.as_deref()).map_or_else(
        |_| flux_catalog::logging::format_from_env(),
        |s| s.log_format,
    ));
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
        Command::Seed { file, replace } => seed_file(cli.config, file, replace).await,
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

async fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = settings(config)?;
    settings.require_tokens()?;
    log::info!("effective configuration: {settings:?}");
    startup::serve(&settings).await
}

/// How long the one-shot commands wait for a database that is not there yet.
const COMMAND_WAIT: Duration = Duration::from_secs(120);

async fn migrate(config: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = settings(config)?;
    let database = Database::open(&settings).await?;
    let outcome = startup::when_available(
        &database.description,
        "apply migrations",
        Some(Instant::now() + COMMAND_WAIT),
        |_| {},
        async || database.migrate().await,
    )
    .await;
    database.close().await;
    outcome
}

async fn seed_file(config: Option<PathBuf>, file: PathBuf, replace: bool) -> anyhow::Result<()> {
    let settings = settings(config)?;
    let database = Database::open(&settings).await?;
    let existing = if replace {
        Existing::Replace
    } else {
        Existing::Keep
    };
    let outcome = async {
        if settings.database.migrate_on_start {
            startup::when_available(
                &database.description,
                "apply migrations",
                Some(Instant::now() + COMMAND_WAIT),
                |_| {},
                async || database.migrate().await,
            )
            .await?;
        }
        let report = catalog_document::load_file(
            &database.store,
            &file,
            existing,
            &settings.rules(),
            settings.flux,
        )
        .await?;
        log::info!(
            "loaded {}: {}",
            file.display(),
            catalog_document::summarize(&report)
        );
        anyhow::Ok(())
    }
    .await;
    database.close().await;
    outcome
}
