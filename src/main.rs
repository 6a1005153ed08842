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
    /// Manage named credentials directly in the database (no token needed: this is how the
    /// first admin credential is made).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Print the OpenAPI document.
    Openapi {
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create a credential and print its secret, alone on one line (the only time it is
    /// shown).
    Create {
        /// Its name, as the audit log and rate limits show it.
        #[arg(long)]
        name: String,
        /// read, write, admin or cluster:<cluster_dns>; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// How long it works: a number and s, m, h or d (`90d`); forever without it.
        #[arg(long, value_parser = parse_duration)]
        expires: Option<Duration>,
    },
    /// List credentials: name, scopes, creation, expiry, last use (never secrets).
    List,
    /// Revoke a credential: every server refuses it within a second.
    Revoke { name: String },
}

/// `90d`, `12h`, `30m`, `45s`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and s, m, h or d, such as 90d"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "{text:?}: the unit must be s, m, h or d, such as 90d"
            ));
        }
    };
    match number.checked_mul(seconds) {
        Some(s) if s > 0 => Ok(Duration::from_secs(s)),
        _ => Err(format!("{text:?}: must be positive and reasonable")),
    }
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
        Command::Token { action } => token(cli.config, action).await,
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

/// Applies the migrations, waiting up to [`COMMAND_WAIT`] for the database to arrive.
async fn migrate_when_available(database: &Database) -> anyhow::Result<()> {
    startup::when_available(
        &database.description,
        "apply migrations",
        Some(Instant::now() + COMMAND_WAIT),
        |_| {},
        async || database.migrate().await,
    )
    .await
}

async fn migrate(config: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = settings(config)?;
    let database = Database::open(&settings).await?;
    let outcome = migrate_when_available(&database).await;
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
            migrate_when_available(&database).await?;
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

/// The actor of credential changes made from the command line, in the audit log.
const COMMAND_LINE_ACTOR: &str = "command-line";

async fn token(config: Option<PathBuf>, action: TokenAction) -> anyhow::Result<()> {
    use flux_catalog::http::tokens::{self, TokenRequest};
    use flux_catalog::storage::credentials::Change;
    let settings = settings(config)?;
    let database = Database::open(&settings).await?;
    let change = Change {
        actor: COMMAND_LINE_ACTOR,
        request_id: None,
    };
    let outcome = async {
        if settings.database.migrate_on_start {
            migrate_when_available(&database).await?;
        }
        let store = &database.store;
        match action {
            TokenAction::Create {
                name,
                scopes,
                expires,
            } => {
                let expires_at = expires
                    .map(|d| {
                        (time::OffsetDateTime::now_utc() + d)
                            .format(&time::format_description::well_known::Rfc3339)
                    })
                    .transpose()?;
                let request = TokenRequest {
                    name,
                    scopes,
                    expires_at,
                };
                let (info, secret) = tokens::issue(store, &request, None, &change)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.problem().detail))?;
                log::info!(
                    "created credential {:?} with scopes {}",
                    info.name,
                    tokens::TokenView::from(info.clone()).scopes.join(", ")
                );
                println!("{secret}");
            }
            TokenAction::List => {
                for info in store.credentials().await? {
                    let view = tokens::TokenView::from(info);
                    println!(
                        "{}\t{}\tcreated {}\texpires {}\tlast used {}",
                        view.name,
                        view.scopes.join(","),
                        view.created_at,
                        view.expires_at.as_deref().unwrap_or("never"),
                        view.last_used_at.as_deref().unwrap_or("never"),
                    );
                }
            }
            TokenAction::Revoke { name } => {
                store.revoke_credential(&name, &change).await?;
                log::info!("revoked credential {name:?}");
            }
        }
        anyhow::Ok(())
    }
    .await;
    database.close().await;
    outcome
}
