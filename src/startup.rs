//! Start-up wiring, in one place: database (configured or embedded), migrations, seed,
//! and the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;

use crate::embedded_pg::{EmbeddedOptions, EmbeddedPostgres};
use crate::http::auth::Credentials;
use crate::http::crud::Rules;
use crate::http::openapi::Documents;
use crate::http::{self, AppState};
use crate::settings::{Settings, redacted_url};
use crate::snapshot::Snapshot;
use crate::storage::connect::Connector;
use crate::storage::{PoolOptions, Store, migrate};

/// The database the server runs on: the configured one, or an embedded PostgreSQL it
/// started itself and stops on [`Database::close`].
pub struct Database {
    pub store: Store,
    /// Opens further connections (the snapshot's LISTEN) as the pool does.
    pub connector: Connector,
    embedded: Option<EmbeddedPostgres>,
}

/// The database name used inside the embedded server.
pub const EMBEDDED_DATABASE: &str = "flux_catalog";

impl Database {
    /// Connects (starting the embedded server when no `DATABASE_URL` is set) and applies
    /// migrations when configured to.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let (connector, embedded) = match settings.database.connector() {
            Some(connector) => {
                log::info!(
                    "database: {}, {}",
                    redacted_url(secrecy::ExposeSecret::expose_secret(
                        settings
                            .database
                            .url
                            .as_ref()
                            .expect("a connector implies a url")
                    )),
                    settings.database.tls
                );
                (connector, None)
            }
            None => {
                let options = EmbeddedOptions {
                    bin_dir: settings.database.embedded_bin_dir.clone(),
                    ..EmbeddedOptions::persistent(settings.database.embedded_data_dir.clone())
                };
                log::info!(
                    "no DATABASE_URL: starting an embedded PostgreSQL with its data in {}",
                    options.data_dir.display()
                );
                let embedded =
                    tokio::task::spawn_blocking(move || EmbeddedPostgres::start(options))
                        .await
                        .context("the embedded PostgreSQL launcher panicked")?
                        .context("cannot start the embedded PostgreSQL")?;
                embedded.ensure_database(EMBEDDED_DATABASE).await?;
                log::info!(
                    "embedded PostgreSQL ready (data in {}); it stops when flux-catalog exits",
                    embedded.data_dir().display()
                );
                let connector = Connector::plain(
                    embedded.connect_config(EMBEDDED_DATABASE),
                    "the embedded PostgreSQL",
                );
                (connector, Some(embedded))
            }
        };
        if settings.database.migrate_on_start {
            let applied = migrate::run(&connector)
                .await
                .context("cannot apply database migrations")?;
            if applied.is_empty() {
                log::info!("database schema is up to date");
            } else {
                log::info!("applied migrations: {}", applied.join(", "));
            }
        }
        let store = Store::new(
            connector.clone(),
            &PoolOptions {
                max_size: settings.database.pool_size,
                wait_timeout: settings.database.wait_timeout,
                operation_timeout: settings.database.operation_timeout,
            },
        )?;
        Ok(Self {
            store,
            connector,
            embedded,
        })
    }

    /// Stops the embedded server, if there is one, after the pool's connections are closed.
    pub async fn close(self) {
        self.store.close();
        if let Some(embedded) = self.embedded {
            match tokio::task::spawn_blocking(move || embedded.stop()).await {
                Ok(Ok(())) => log::info!("embedded PostgreSQL stopped"),
                Ok(Err(error)) => log::error!("embedded PostgreSQL did not stop cleanly: {error}"),
                Err(error) => log::error!("embedded PostgreSQL stop panicked: {error}"),
            }
        }
    }
}

/// The HTTP server, bound and ready to run, and the snapshot it serves Flux from.
pub struct Application {
    port: u16,
    server: Server,
    snapshot: Arc<Snapshot>,
}

impl Application {
    /// Binds the listener (port 0 picks a free one), builds the server around `store`, and
    /// starts the snapshot following the database (`notifications` is where it LISTENs).
    /// The Flux endpoints and `/ready` answer 503 until the first load completes; see
    /// [`Application::snapshot`].
    pub fn build(
        settings: &Settings,
        store: Store,
        notifications: Connector,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(settings.listen_addr)
            .with_context(|| format!("cannot listen on {}", settings.listen_addr))?;
        let port = listener.local_addr()?.port();
        let mode = settings.api_mode;
        let snapshot = Snapshot::new(store.clone(), settings.snapshot.check_timeout);
        tokio::spawn(
            snapshot
                .clone()
                .follow(notifications, settings.snapshot.poll_interval),
        );
        let state = web::Data::new(AppState {
            store,
            mode,
            credentials: Credentials::from_settings(settings),
            rules: Rules {
                environments: settings.environments.clone(),
            },
            max_body_bytes: settings.http.max_body_bytes,
            snapshot: snapshot.clone(),
            limits: settings.flux,
        });
        let documents = web::Data::new(Documents::generate());
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(documents.clone())
                .wrap(from_fn(http::head_as_get))
                .wrap(from_fn(http::request_id))
                .wrap(from_fn(http::access_log))
                .wrap(from_fn(http::normalize_path))
                .configure(|config| http::configure(config, mode))
        })
        .shutdown_timeout(settings.http.shutdown_timeout.as_secs())
        .listen(listener)?;
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            snapshot,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.clone()
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish (up to the
    /// shutdown timeout) before returning.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
