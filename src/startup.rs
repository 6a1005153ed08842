//! Start-up wiring, in one place: the listening socket, the database (configured or
//! embedded), migrations and seed once the database answers, the snapshot, the HTTP server,
//! and the signals that stop it.
//!
//! The order is what Kubernetes needs: the port is bound first (a busy port fails at once),
//! the server then answers `/health` at once and `/ready` with 503 and the reason while the
//! database is not there yet (it usually starts after us), and the database work is
//! retried with backoff until it answers.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use anyhow::Context;
use embedded_pg::{EmbeddedOptions, EmbeddedPostgres};

use crate::http::auth::{Credentials, Named};
use crate::http::catalog_document;
use crate::http::openapi::Documents;
use crate::http::{self, AppState};
use crate::metrics::Metrics;
use crate::settings::{Settings, redacted_url};
use crate::snapshot::Snapshot;
use crate::storage::connect::Connector;
use crate::storage::{Existing, PoolOptions, Store, StoreError, migrate};

/// The database the server runs on: the configured one, or an embedded PostgreSQL it
/// started itself and stops on [`Database::close`].
pub struct Database {
    pub store: Store,
    /// Opens further connections (migrations, the snapshot's LISTEN) as the pool does.
    pub connector: Connector,
    /// Where the database is, for messages: `DATABASE_URL (host=… port=… …)`, never a
    /// password.
    pub description: String,
    embedded: Option<EmbeddedPostgres>,
}

/// The database name used inside the embedded server.
pub const EMBEDDED_DATABASE: &str = "flux_catalog";

impl Database {
    /// The configured database (nothing is connected yet: the pool connects on first use),
    /// or the embedded server, started now.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        let (connector, description, embedded) = match settings.database.connector() {
            Some(connector) => {
                let url = settings
                    .database
                    .url
                    .as_ref()
                    .expect("a connector implies a url");
                let description = format!(
                    "DATABASE_URL ({}, {})",
                    redacted_url(secrecy::ExposeSecret::expose_secret(url)),
                    settings.database.tls
                );
                log::info!("database: {description}");
                (connector, description, None)
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
                let description = format!(
                    "the embedded PostgreSQL (data in {})",
                    embedded.data_dir().display()
                );
                let connector = Connector::plain(
                    embedded.connect_config(EMBEDDED_DATABASE),
                    "the embedded PostgreSQL",
                );
                (connector, description, Some(embedded))
            }
        };
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
            description,
            embedded,
        })
    }

    /// Resolves if the embedded server goes away by itself (crashed, killed); never for the
    /// configured database, nor for the embedded one's requested stop.
    pub fn unexpected_exit(&self) -> impl Future<Output = embedded_pg::ServerExit> + use<> {
        let exited = self.embedded.as_ref().map(EmbeddedPostgres::exited);
        async move {
            if let Some(exited) = exited {
                let exit = exited.await;
                if !exit.requested {
                    return exit;
                }
            }
            std::future::pending().await
        }
    }

    /// Applies the migrations not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let applied = migrate::run(&self.connector).await?;
        if applied.is_empty() {
            log::info!("database schema is up to date");
        } else {
            log::info!("applied migrations: {}", applied.join(", "));
        }
        Ok(())
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

/// The first wait between attempts to reach the database; it doubles up to
/// [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(15);

/// Runs `step` until the database answers it, waiting longer after each failure (and,
/// with `deadline`, giving up once it has passed). Only an unreachable database is waited
/// for; any other failure is returned at once. Each failure is logged and handed to
/// `waiting`, which `/ready` shows.
pub async fn when_available<T>(
    database: &str,
    what: &str,
    deadline: Option<Instant>,
    waiting: impl Fn(String),
    mut step: impl AsyncFnMut() -> Result<T, StoreError>,
) -> anyhow::Result<T> {
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(error @ (StoreError::Unavailable(_) | StoreError::TimedOut(_))) => {
                let reason = format!("cannot reach {database} to {what}: {}", chain(&error));
                if deadline.is_some_and(|d| Instant::now() + delay > d) {
                    anyhow::bail!("{reason}; giving up");
                }
                log::warn!("{reason}; retrying in {:.1} s", delay.as_secs_f64());
                waiting(reason);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
            Err(error) => {
                return Err(anyhow::anyhow!(
                    "cannot {what} on {database}: {}",
                    chain(&error)
                ));
            }
        }
    }
}

/// An error and its causes on one line: the driver's message is in the causes.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What start-up does once the database answers, in order: migrations (when configured),
/// the seed file (creating only what is missing), then the snapshot starts following the
/// database. Waits as long as it takes for the database to arrive; returns an error only
/// for what waiting cannot fix (a failing migration, an invalid seed file).
pub async fn prepare(
    settings: &Settings,
    database: &Database,
    snapshot: &Arc<Snapshot>,
    credentials: &Arc<Named>,
) -> anyhow::Result<()> {
    let waiting = |reason: String| snapshot.note_waiting(reason);
    if settings.database.migrate_on_start {
        when_available(
            &database.description,
            "apply migrations",
            None,
            waiting,
            async || database.migrate().await,
        )
        .await?;
    }
    if let Some(file) = &settings.seed_file {
        let rules = settings.rules();
        let report = when_available(
            &database.description,
            &format!("load {}", file.display()),
            None,
            waiting,
            async || {
                // Only what is missing: a restart must never undo changes made through the
                // API since.
                catalog_document::load_file(
                    &database.store,
                    file,
                    Existing::Keep,
                    &rules,
                    settings.flux,
                )
                .await
                .map_err(|e| match e {
                    catalog_document::LoadError::Store { source, .. } => source,
                    other => StoreError::Unexpected(other.into()),
                })
            },
        )
        .await?;
        log::info!(
            "seeded from {}: {}",
            file.display(),
            catalog_document::summarize(&report)
        );
    }
    tokio::spawn(
        snapshot
            .clone()
            .follow(database.connector.clone(), settings.snapshot.poll_interval),
    );
    tokio::spawn(
        credentials
            .clone()
            .follow(database.store.with_own_connection()?),
    );
    Ok(())
}

/// `flux-catalog serve`: binds, opens the database, serves until a signal (or the embedded
/// database's end) stops it, and closes the database.
pub async fn serve(settings: &Settings) -> anyhow::Result<()> {
    // The port first, so a busy one fails before any database work.
    let listener = bind(settings.listen_addr)?;
    let database = Database::open(settings).await?;
    let outcome = serve_on(listener, settings, &database).await;
    database.close().await;
    outcome
}

async fn serve_on(
    listener: TcpListener,
    settings: &Settings,
    database: &Database,
) -> anyhow::Result<()> {
    let application = Application::build_on(listener, settings, database.store.clone())?;
    log::info!(
        "flux-catalog {} serving in {} mode on {} (port {})",
        env!("CARGO_PKG_VERSION"),
        settings.api_mode,
        settings.listen_addr,
        application.port()
    );
    let server = application.handle();
    let stop_requested = StopRequest::default();
    tokio::spawn(stop_on_signals(
        server.clone(),
        settings.http.shutdown_timeout,
        stop_requested.clone(),
    ));
    let database_gone = stop_if_embedded_database_ends(database, server.clone());
    // The database may arrive after us: /health answers meanwhile, /ready says why not.
    let snapshot = application.snapshot();
    let credentials = application.credentials();
    let run = application.run_until_stopped();
    tokio::pin!(run);
    let served = tokio::select! {
        // Stopped (by a signal, or the embedded server's end) before the database was ready.
        served = &mut run => served,
        prepared = prepare(settings, database, &snapshot, &credentials) => {
            if let Err(error) = prepared {
                // The server future must keep running for the stop to complete.
                let ((), served) = tokio::join!(server.stop(true), &mut run);
                served?;
                return Err(error);
            }
            run.await
        }
    };
    served?;
    log_stopped(&stop_requested, settings.http.shutdown_timeout);
    match database_gone.get() {
        Some(exit) => anyhow::bail!("the embedded PostgreSQL ended: {exit}"),
        None => Ok(()),
    }
}

/// Writes would fail forever while `/health` says 200: when the embedded server ends by
/// itself, the server stops (and the process exits non-zero) so that the supervisor starts
/// both again. The returned cell says why, once it happened.
fn stop_if_embedded_database_ends(
    database: &Database,
    server: ServerHandle,
) -> Arc<std::sync::OnceLock<String>> {
    let gone = Arc::new(std::sync::OnceLock::new());
    let exited = database.unexpected_exit();
    let noted = gone.clone();
    tokio::spawn(async move {
        let exit = exited.await;
        log::error!(
            "the embedded PostgreSQL ended: {exit}; stopping so that flux-catalog (and it) \
             can be started again\n{}",
            exit.log_tail
        );
        let _ = noted.set(exit.to_string());
        server.stop(true).await;
    });
    gone
}

/// The last line of a server's log: why it stopped and how long draining took.
fn log_stopped(requested: &StopRequest, timeout: Duration) {
    match requested.get() {
        Some((signal, at)) if at.elapsed() >= timeout => log::warn!(
            "stopped serving: the shutdown timeout ({} s after {signal}) passed; requests \
             still in flight were cut off",
            timeout.as_secs()
        ),
        Some((signal, at)) => log::info!(
            "stopped serving: in-flight requests finished {:.1} s after {signal}",
            at.elapsed().as_secs_f64()
        ),
        None => log::info!("stopped serving"),
    }
}

/// Binds `LISTEN_ADDR` before any database work, so a busy port fails at once.
pub fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).with_context(|| format!("cannot listen on {address} (LISTEN_ADDR)"))
}

/// The HTTP server, bound and ready to run, and the snapshot it serves Flux from.
pub struct Application {
    port: u16,
    server: Server,
    snapshot: Arc<Snapshot>,
    credentials: Arc<Named>,
}

impl Application {
    /// Binds the listener (port 0 picks a free one), builds the server around `store`, and
    /// starts the snapshot following the database (`notifications` is where it LISTENs):
    /// for a database that is there and migrated, as in the tests.
    pub fn build(
        settings: &Settings,
        store: Store,
        notifications: Connector,
    ) -> anyhow::Result<Self> {
        let application = Self::build_on(bind(settings.listen_addr)?, settings, store.clone())?;
        tokio::spawn(
            application
                .credentials
                .clone()
                .follow(store.with_own_connection()?),
        );
        tokio::spawn(
            application
                .snapshot
                .clone()
                .follow(notifications, settings.snapshot.poll_interval),
        );
        Ok(application)
    }

    /// The server on `listener`, with a snapshot that is not following the database yet
    /// (see [`prepare`]): the Flux endpoints and `/ready` answer 503 until its first load.
    /// It does not react to signals itself: [`stop_on_signals`] does, draining for both.
    pub fn build_on(
        listener: TcpListener,
        settings: &Settings,
        store: Store,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let mode = settings.api_mode;
        let metrics = Arc::new(Metrics::new(env!("CARGO_PKG_VERSION")));
        let snapshot = Snapshot::new(
            store.with_own_connection()?,
            settings.snapshot.check_timeout,
            metrics.clone(),
        );
        let credentials = Credentials::from_settings(settings);
        let named = credentials.named.clone();
        let state = web::Data::new(AppState {
            store,
            mode,
            credentials,
            rules: settings.rules(),
            bodies: http::BodyLimits {
                max_bytes: settings.http.max_body_bytes,
                timeout: settings.http.body_timeout,
                max_depth: settings.http.max_json_depth,
            },
            writes: http::WriteSlots::new(
                settings.http.max_concurrent_writes,
                settings.database.wait_timeout,
            ),
            headers: http::HeaderLimits {
                max_count: settings.http.max_header_count,
                max_bytes: settings.http.max_header_bytes,
            },
            snapshot: snapshot.clone(),
            limits: settings.flux,
            trusted_proxies: settings.http.trusted_proxies.clone(),
            metrics,
            rate_limits: http::rate_limit::RateLimits::from_settings(&settings.rate_limit),
            cors: http::cors::Policy::from_settings(&settings.cors, mode),
        });
        let metrics_need_token = settings.metrics_require_token;
        let documents = web::Data::new(Documents::generate());
        let expect = http::expect::service(state.clone());
        let app = move || {
            App::new()
                .app_data(state.clone())
                .app_data(documents.clone())
                .wrap(from_fn(http::bounded_headers))
                .wrap(from_fn(http::head_as_get))
                .wrap(from_fn(http::rate_limit::limit))
                .wrap(from_fn(http::cors::cors))
                .wrap(from_fn(http::request_id))
                .wrap(from_fn(http::access_log))
                .wrap(from_fn(http::metrics::observe))
                .wrap(from_fn(http::normalize_path))
                .configure(|config| http::configure(config, mode, metrics_need_token))
        };
        // What actix-web's HttpServer::listen does, plus the `expect` service it has no
        // hook for (see http::expect), with HttpServer's defaults.
        let mut builder = actix_server::Server::build()
            .disable_signals()
            .shutdown_timeout(settings.http.shutdown_timeout.as_secs());
        let workers = match settings.http.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // The limit is per worker; the setting is for the whole server.
        builder = builder
            .workers(workers)
            .max_concurrent_connections(settings.http.max_connections.div_ceil(workers));
        let send_timeout = settings.http.send_timeout;
        let graceful = builder.graceful_shutdown_signal();
        let local = listener.local_addr()?;
        let server = builder.listen("flux-catalog", listener, move || {
            let graceful = graceful.clone();
            let service = actix_http::HttpService::build()
                .graceful_shutdown_signal(move || {
                    let graceful = graceful.clone();
                    async move { graceful.notified().await }
                })
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
                .local_addr(local)
                .expect(expect.clone())
                .finish(actix_service::map_config(
                    actix_service::IntoServiceFactory::into_factory(app()),
                    |()| actix_web::dev::AppConfig::default(),
                ));
            // What HttpService::tcp does, with each connection's writes guarded.
            actix_service::ServiceFactoryExt::and_then(
                actix_service::fn_service(move |io: actix_web::rt::net::TcpStream| {
                    let peer = io.peer_addr().ok();
                    let io = http::connection::StallGuard::new(io, send_timeout);
                    std::future::ready(Ok::<_, actix_http::error::DispatchError>((
                        io,
                        actix_http::Protocol::Http1,
                        peer,
                    )))
                }),
                service,
            )
        })?;
        Ok(Self {
            port,
            server: server.run(),
            snapshot,
            credentials: named,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.clone()
    }

    /// The named credentials, to follow the database once it is ready (see [`prepare`]).
    pub fn credentials(&self) -> Arc<Named> {
        self.credentials.clone()
    }

    /// Stops the server: with `graceful`, after in-flight requests finish (up to the
    /// shutdown timeout).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through [`Application::handle`].
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// When and why the server was asked to stop, for the last lines of the log.
pub type StopRequest = Arc<std::sync::OnceLock<(&'static str, Instant)>>;

/// Stops `server` gracefully on SIGTERM or SIGINT (Kubernetes sends the first, a terminal
/// the second; both drain: new connections are refused, in-flight requests finish within
/// `timeout`), noting which in `requested`. A second signal stops at once.
pub async fn stop_on_signals(server: ServerHandle, timeout: Duration, requested: StopRequest) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        log::error!("cannot listen for SIGTERM and SIGINT: stop the process with SIGKILL");
        return;
    };
    let first = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    let _ = requested.set((first, Instant::now()));
    log::info!(
        "{first} received: refusing new connections and letting in-flight requests finish \
         (up to {} s; a second signal stops at once)",
        timeout.as_secs()
    );
    let drained = server.stop(true);
    tokio::select! {
        () = drained => {}
        second = async {
            tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
            }
        } => {
            log::warn!("{second} received again: stopping now, cutting off in-flight requests");
            server.stop(false).await;
        }
    }
}
