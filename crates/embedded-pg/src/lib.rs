//! A private PostgreSQL server run from the machine's own PostgreSQL installation.
//!
//! For a service that wants a database without asking for one (flux-catalog's `serve` keeps
//! its data in a local directory across restarts) and for tests that want one throw-away server
//! per process. Nothing is downloaded: `initdb` and `postgres` come from the installed server
//! package. See the crate's README for the API in one page.
//!
//! The server listens on no TCP port, only on a Unix socket in a directory only its owner can
//! enter, and trusts every connection as the `postgres` superuser. The socket directory's
//! permissions are therefore the only access control, which is why it is private.
//!
//! The server must never outlive the process that started it, even one killed with SIGKILL,
//! and `forbid(unsafe_code)` rules out `prctl(PR_SET_PDEATHSIG)`. So a small shell watchdog
//! starts the server, with a pipe that only we write to as its stdin. The pipe reaches end of
//! file when we ask for a stop or when the kernel closes it because we died; the watchdog then
//! asks the postmaster for a fast shutdown and waits for it.
//!
//! The watchdog also exits when the server exits by itself, and a thread of ours waits for the
//! watchdog, which is how [`EmbeddedPostgres::exited`] learns that the server is gone without
//! polling anything.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// Database superuser created by initdb; every connection logs in as it.
const SUPERUSER: &str = "postgres";
/// System user that runs the server when we are root. The server package creates it.
const SYSTEM_USER: &str = "postgres";
/// Only names the socket file: the server listens on no TCP port.
const PORT: u16 = 5432;
const SOCKET_FILE: &str = ".s.PGSQL.5432";
/// `sun_path` is 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
/// PostgreSQL silently truncates longer names (NAMEDATALEN - 1), so a lookup by the full name
/// would never find the database it created.
const MAX_IDENTIFIER_BYTES: usize = 63;
/// Line 8 of `postmaster.pid` (the readiness status) first appeared in PostgreSQL 10.
const OLDEST_SUPPORTED_MAJOR: u32 = 10;
/// `initdb --no-instructions` first appeared in PostgreSQL 14.
const NO_INSTRUCTIONS_SINCE: u32 = 14;
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The watchdog escalates to an immediate shutdown after about 16 s and to SIGKILL after about
/// 20 s (counted in naps, not clock time), so a stop finishes within this bound. A stopped
/// (SIGSTOP) server is continued along with the shutdown request, so it needs no more time.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// After a crash, the postmaster's children notice its death and exit within milliseconds;
/// a restart waits this long for them, since postgres refuses to start while any is left.
const LEFTOVER_TIMEOUT: Duration = Duration::from_secs(5);
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// The log is appended to across restarts; past this size the previous one is set aside.
const LOG_ROTATE_BYTES: u64 = 10 * 1024 * 1024;
const LOG_TAIL_LINES: usize = 30;
/// A tail is read from at most this many bytes at the end of the log.
const LOG_TAIL_BYTES: u64 = 64 * 1024;
/// What the owner writes to the watchdog's pipe before closing it for a restart: the watchdog
/// then keeps the socket directory and an ephemeral server's data.
const RESTART_REQUEST: &[u8] = b"restart\n";

/// Runs the server and shuts it down once stdin reaches end of file.
///
/// Arguments: data directory, log file, `1` if ephemeral, socket directory, then the server
/// command line. The watchdog runs in its own process group, which is how it recognises its own
/// postmaster: the pid in `postmaster.pid` alone could be a crashed server's, since reused.
///
/// Every process between the watchdog and the postmaster (the subshell below, and `setpriv`,
/// which execs, or the shell under `runuser`: see [`Switcher`]) waits for its child without
/// job control, so a stopped postmaster stops nothing else, and continuing it continues all.
/// The shutdown continues the whole process group anyway, so a server someone stopped with
/// SIGSTOP shuts down as fast as a running one.
const WATCHDOG_SCRIPT: &str = r#"
data=$1 log=$2 ephemeral=$3 sockdir=$4
shift 4
# fd 3 keeps the owner's pipe and everything started from here gets /dev/null as stdin, so the
# pipe reaches end of file exactly when the owner's write end is closed.
exec 3<&0 </dev/null 2>>"$log"
# A server that exits by itself (failed start, crash, kill) takes the watchdog with it, which is
# how the owner notices; the log says how it ended.
( "$@" >>"$log" 2>&1
  status=$?
  if [ "$status" -gt 128 ]; then
    echo "embedded-pg: the server was killed by signal $((status - 128))" >&2
  elif [ "$status" -ne 0 ]; then
    echo "embedded-pg: the server exited with status $status" >&2
  fi
  kill -s TERM $$ 2>/dev/null ) 3<&- &
# The owner writes `restart` before closing the pipe when it will start the server again.
request=
while read -r line <&3; do request=$line; done
server_gone=0
trap 'server_gone=1' TERM
our_postmaster() {
  pid=
  read -r pid 2>/dev/null <"$data/postmaster.pid" || return 1
  case $pid in ''|*[!0-9]*) return 1 ;; esac
  if [ -d "/proc/$$" ]; then
    read -r _ _ state _ pgrp _ 2>/dev/null <"/proc/$pid/stat" || return 1
    # Exited, only not yet reaped: gone all the same.
    [ "$state" != Z ] || return 1
  else
    pgrp=$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')
  fi
  [ "$pgrp" = "$$" ]
}
waited=0
while ! our_postmaster; do
  [ "$server_gone" = 1 ] && exit 0
  waited=$((waited + 1))
  # No pid file after 30 s: the server is stuck before doing anything worth a clean shutdown.
  [ "$waited" -ge 300 ] && kill -s KILL 0
  sleep 0.1
done
# A stopped postmaster acts on the request only once continued: continue our whole group.
kill -s INT "$pid"
kill -s CONT 0
# Short naps: a fast shutdown usually takes a few tens of milliseconds.
waited=0
while our_postmaster; do
  waited=$((waited + 1))
  [ "$waited" -eq 800 ] && kill -s QUIT "$pid" && kill -s CONT 0
  [ "$waited" -eq 1000 ] && kill -s KILL "$pid"
  sleep 0.02
done
# Nothing left in our group may be stopped, or this would wait for it forever.
kill -s CONT 0
wait
rm -f -- "$sockdir/.s.PGSQL.5432" "$sockdir/.s.PGSQL.5432.lock"
if [ "$request" != restart ]; then
  rmdir -- "$sockdir" 2>/dev/null
  if [ "$ephemeral" = 1 ]; then rm -rf -- "$data" "$log"; fi
fi
exit 0
"#;

/// How to run an [`EmbeddedPostgres`].
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Where the cluster lives. Made absolute, created if missing, and initialised with
    /// `initdb` when it holds no `PG_VERSION`.
    pub data_dir: PathBuf,
    /// Directory holding `initdb` and `postgres`; `None` searches as [`find_bin_dir`] does.
    pub bin_dir: Option<PathBuf>,
    /// Remove the data directory, its log and its socket directory once the server has stopped.
    pub ephemeral: bool,
    /// `false` turns off fsync, synchronous commit and full-page writes: much faster, but a
    /// server crash loses the last commits and an operating-system crash can corrupt the
    /// data. Only for data nobody needs to keep.
    pub durable: bool,
    /// The server's `max_connections`.
    pub max_connections: u32,
}

impl EmbeddedOptions {
    /// Durable data kept in `data_dir` across restarts (the embedded default of `serve`).
    pub fn persistent(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            bin_dir: None,
            ephemeral: false,
            durable: true,
            max_connections: 100,
        }
    }

    /// A fresh, uniquely named directory under [`std::env::temp_dir`], removed after the stop,
    /// with durability traded for speed and room for many parallel test connections.
    pub fn ephemeral_for_tests() -> Self {
        Self {
            data_dir: std::env::temp_dir().join(unique_name("embedded-pg")),
            bin_dir: None,
            ephemeral: true,
            durable: false,
            max_connections: 200,
        }
    }
}

/// Why the embedded server could not be found, started, used or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No directory with both `initdb` and `postgres` was found.
    #[error(
        "PostgreSQL server binaries (initdb and postgres) not found on PATH, under \
         /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin, /opt/homebrew/opt/postgresql*/bin or \
         /usr/local/opt/postgresql*/bin; install the server package (Debian/Ubuntu: \
         `apt-get install -y postgresql`) or set the PostgreSQL bin directory"
    )]
    BinariesNotFound,
    /// The configured bin directory lacks `initdb` or `postgres`.
    #[error(
        "{} does not contain executable `initdb` and `postgres`; set the PostgreSQL bin \
         directory to the one holding them (e.g. /usr/lib/postgresql/15/bin)",
        dir.display()
    )]
    BinDirInvalid {
        /// The directory that was given.
        dir: PathBuf,
    },
    /// `postgres -V` failed or printed something unexpected.
    #[error("could not determine the PostgreSQL version of {}: {detail}", postgres.display())]
    UnknownVersion {
        /// The `postgres` binary that was asked.
        postgres: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The binaries are older than this launcher supports.
    #[error(
        "PostgreSQL {major} in {} is too old; version {OLDEST_SUPPORTED_MAJOR} or newer is needed",
        bin_dir.display()
    )]
    UnsupportedVersion {
        /// The bin directory that was chosen.
        bin_dir: PathBuf,
        /// Its major version.
        major: u32,
    },
    /// The data directory was made by a different major version than the binaries.
    #[error(
        "{} was initialised by PostgreSQL {data_version}, but the binaries in {} are version \
         {bin_major}; set the bin directory to PostgreSQL {data_version}'s, or upgrade the data \
         with pg_upgrade",
        data_dir.display(),
        bin_dir.display()
    )]
    VersionMismatch {
        /// The data directory.
        data_dir: PathBuf,
        /// Contents of its `PG_VERSION`.
        data_version: String,
        /// The bin directory that was chosen.
        bin_dir: PathBuf,
        /// Its major version.
        bin_major: u32,
    },
    /// Running as root, but there is no `postgres` user to hand the server to.
    #[error(
        "running as root, but there is no `postgres` system user to run PostgreSQL as (initdb \
         and postgres refuse to run as root); install the postgresql package, which creates \
         it, or run as an ordinary user"
    )]
    NoPostgresUser,
    /// Running as root, but neither `setpriv` nor `runuser` is installed.
    #[error(
        "running as root needs `setpriv` or `runuser` (from util-linux) to run PostgreSQL as \
         the `postgres` user; install util-linux or run as an ordinary user"
    )]
    NoRunuser,
    /// Running as root, and the `postgres` user cannot get to the data directory.
    #[error(
        "running as root, PostgreSQL runs as the `postgres` user, which cannot enter {}{}; \
         choose a data directory it can reach (e.g. under /var/lib or /tmp), let it in \
         (`chmod o+x` on the blocking directory), or run as an ordinary user",
        data_dir.display(),
        blocked.as_ref().map(|b| format!(" ({} is closed to it)", b.display())).unwrap_or_default()
    )]
    DataDirUnreachable {
        /// The data directory.
        data_dir: PathBuf,
        /// The outermost directory on the way that it may not enter, if one was pinned down.
        blocked: Option<PathBuf>,
    },
    /// Running as root, and the existing data directory belongs to someone else.
    #[error(
        "{} belongs to uid {owner}, but running as root PostgreSQL runs as the `postgres` user \
         (uid {postgres_uid}); `chown -R postgres: {}` it, or run as its owner",
        data_dir.display(),
        data_dir.display()
    )]
    DataDirWrongOwner {
        /// The data directory.
        data_dir: PathBuf,
        /// Its owner.
        owner: u32,
        /// The `postgres` user's uid.
        postgres_uid: u32,
    },
    /// The data directory holds files but no cluster.
    #[error(
        "{} is not empty but holds no PostgreSQL cluster (no PG_VERSION); choose an empty or \
         new directory",
        data_dir.display()
    )]
    NotADataDir {
        /// The data directory.
        data_dir: PathBuf,
    },
    /// Another postmaster is serving the data directory.
    #[error(
        "{} is already used by a running PostgreSQL server (pid {pid}); is another process \
         running with the same data directory? Stop it or choose another directory",
        data_dir.display()
    )]
    DataDirInUse {
        /// The data directory.
        data_dir: PathBuf,
        /// The postmaster serving it.
        pid: u32,
    },
    /// initdb failed.
    #[error("initdb failed ({status}) for {}:\n{output}", data_dir.display())]
    InitdbFailed {
        /// The data directory.
        data_dir: PathBuf,
        /// initdb's exit status.
        status: ExitStatus,
        /// What initdb printed.
        output: String,
    },
    /// The server did not come up.
    #[error(
        "PostgreSQL did not start: {reason}; last lines of {}:\n{log_tail}",
        log_file.display()
    )]
    StartFailed {
        /// What was observed.
        reason: String,
        /// The server log.
        log_file: PathBuf,
        /// The end of what the server logged during this start.
        log_tail: String,
    },
    /// The server did not shut down in time.
    #[error(
        "PostgreSQL serving {} did not stop within {timeout:?}; see {}",
        data_dir.display(),
        log_file.display()
    )]
    StopTimeout {
        /// The data directory.
        data_dir: PathBuf,
        /// The server log.
        log_file: PathBuf,
        /// How long we waited.
        timeout: Duration,
    },
    /// A database name PostgreSQL would reject or silently truncate.
    #[error("invalid database name {name:?}: {reason}")]
    InvalidDatabaseName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file-system or process operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A request to the embedded server failed.
    #[error("request to the embedded PostgreSQL server failed")]
    Database(#[from] tokio_postgres::Error),
}

trait IoContext<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, EmbeddedError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T, EmbeddedError> {
        self.map_err(|source| EmbeddedError::Io {
            context: context(),
            source,
        })
    }
}

/// How a run of the embedded server ended, from [`EmbeddedPostgres::exited`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerExit {
    /// `true` when the owner asked for it ([`EmbeddedPostgres::stop`],
    /// [`EmbeddedPostgres::restart`] or a drop); `false` when the server went away by itself:
    /// it crashed, failed, or something killed it (or its watchdog).
    pub requested: bool,
    /// What happened, in a sentence for a log line.
    pub detail: String,
    /// The last lines the server logged during this run, which usually say why it ended.
    /// Empty when the log is gone (an ephemeral server removes it on a requested stop).
    pub log_tail: String,
}

impl std::fmt::Display for ServerExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)?;
        if !self.log_tail.is_empty() {
            write!(f, "; last lines of its log:\n{}", self.log_tail)?;
        }
        Ok(())
    }
}

/// One run of the server, from the watchdog's start to its exit, which the thread waiting for
/// the watchdog records here.
#[derive(Debug)]
struct Run {
    /// Set before the watchdog's pipe is closed, so its exit counts as requested.
    stop_requested: AtomicBool,
    /// Set once the server was ready: a failed start is reported by `start`, not logged.
    ready: AtomicBool,
    ended: Mutex<Option<ServerExit>>,
    ended_changed: Condvar,
    /// The same news for async code.
    notify: watch::Sender<Option<ServerExit>>,
}

impl Run {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            stop_requested: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            ended: Mutex::new(None),
            ended_changed: Condvar::new(),
            notify: watch::Sender::new(None),
        })
    }

    /// A run that has already ended, for a handle without a server.
    fn ended_with(exit: ServerExit) -> Arc<Self> {
        let run = Self::new();
        run.end(exit);
        run
    }

    fn end(&self, exit: ServerExit) {
        *self.ended.lock().unwrap_or_else(PoisonError::into_inner) = Some(exit.clone());
        self.ended_changed.notify_all();
        self.notify.send_replace(Some(exit));
    }

    fn ended(&self) -> Option<ServerExit> {
        self.ended
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Blocks until the run has ended or `timeout` has passed.
    fn wait(&self, timeout: Duration) -> Option<ServerExit> {
        let ended = self.ended.lock().unwrap_or_else(PoisonError::into_inner);
        let (ended, _) = self
            .ended_changed
            .wait_timeout_while(ended, timeout, |ended| ended.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        ended.clone()
    }
}

/// The running watchdog, as far as the owner holds it; a thread of its own waits for it.
#[derive(Debug)]
struct Watchdog {
    pid: u32,
    /// The pipe whose end of file is the shutdown request.
    stdin: ChildStdin,
}

/// Waits for the watchdog (also reaping it) and reports the end of the run.
fn wait_for_watchdog(mut child: Child, run: Arc<Run>, log_file: PathBuf, log_offset: u64) {
    let status = child.wait();
    let requested = run.stop_requested.load(Ordering::SeqCst);
    let detail = match status {
        // The watchdog exits 0 only after the pipe closed and the server has gone.
        Ok(status) if status.success() => "the server shut down as requested".to_owned(),
        // How the server's exit ends the watchdog.
        Ok(status) if status.signal() == Some(15) => {
            "the server exited by itself (crashed, failed or killed)".to_owned()
        }
        Ok(status) => format!(
            "the server's watchdog ended ({status}); if the server still runs, it is no longer \
             watched"
        ),
        Err(e) => format!("could not wait for the server's watchdog: {e}"),
    };
    let log_tail = read_log_tail(&log_file, log_offset);
    if !requested && run.ready.load(Ordering::SeqCst) {
        log::error!("embedded PostgreSQL is gone: {detail}; last lines of the log:\n{log_tail}");
    }
    run.end(ServerExit {
        requested,
        detail,
        log_tail,
    });
}

/// A running private PostgreSQL server. Stop it with [`EmbeddedPostgres::stop`]; dropping it
/// also shuts the server down, without waiting, so a new start on the same directory right
/// after a drop may still find it in use. One kept in a `static` is shut down (and, if
/// ephemeral, removed) when the process exits, however it exits.
///
/// [`EmbeddedPostgres::exited`] tells when the server has gone, which it may do by itself
/// (a crash, an out-of-memory kill); [`EmbeddedPostgres::restart`] starts it again.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    ephemeral: bool,
    /// What a restart needs to start the server again.
    launch: Launch,
    /// `None` once the shutdown has been requested.
    watchdog: Option<Watchdog>,
    /// The current run, or the last one once it has ended.
    run: Arc<Run>,
}

/// How the server is started, fixed by the first start.
#[derive(Debug, Clone)]
struct Launch {
    bin_dir: PathBuf,
    major: u32,
    run_as: RunAs,
    durable: bool,
    max_connections: u32,
}

impl EmbeddedPostgres {
    /// Initialises the data directory if needed and starts the server, returning once it
    /// accepts connections. Blocks (about a second with initdb), so call it from
    /// `spawn_blocking` inside async code.
    pub fn start(options: EmbeddedOptions) -> Result<Self, EmbeddedError> {
        // Collecting the components drops a trailing `/`, which would misplace `<dir>.log`.
        let data_dir: PathBuf = std::path::absolute(&options.data_dir)
            .context(|| {
                format!(
                    "could not make data directory {} absolute",
                    options.data_dir.display()
                )
            })?
            .components()
            .collect();
        let created = !data_dir.exists();
        let result = Self::start_in(&options, &data_dir);
        if result.is_err() && created && options.ephemeral {
            // Nothing of value can be in a directory this call created.
            let _ = fs::remove_dir_all(&data_dir);
            let _ = fs::remove_file(log_file_for(&data_dir));
        }
        result
    }

    fn start_in(options: &EmbeddedOptions, data_dir: &Path) -> Result<Self, EmbeddedError> {
        let bin_dir = find_bin_dir(options.bin_dir.as_deref())?;
        let major = server_major_version(&bin_dir)?;
        let run_as = RunAs::detect()?;
        let data_dir = create_data_dir(data_dir)?;

        let fresh = !data_dir.join("PG_VERSION").exists();
        let known_free = if fresh {
            if fs::read_dir(&data_dir)
                .context(|| format!("could not read {}", data_dir.display()))?
                .next()
                .is_some()
            {
                return Err(EmbeddedError::NotADataDir { data_dir });
            }
            run_as.take_ownership(&data_dir)?;
            run_as.check_reachable(&data_dir)?;
            initdb(&bin_dir, &data_dir, &run_as, major, options.durable)?;
            true
        } else {
            check_data_version(&data_dir, &bin_dir, major)?;
            run_as.check_owner(&data_dir)?;
            run_as.check_reachable(&data_dir)?;
            check_data_dir_free(&data_dir)?
        };

        let socket_dir = prepare_socket_dir(&data_dir, &run_as, known_free)?;
        let log_file = log_file_for(&data_dir);
        let mut server = Self {
            data_dir,
            socket_dir,
            log_file,
            ephemeral: options.ephemeral,
            launch: Launch {
                bin_dir,
                major,
                run_as,
                durable: options.durable,
                max_connections: options.max_connections,
            },
            watchdog: None,
            run: Run::ended_with(ServerExit {
                requested: false,
                detail: "the server has not been started".to_owned(),
                log_tail: String::new(),
            }),
        };
        if let Err(e) = server.launch(false) {
            if !matches!(e, EmbeddedError::DataDirInUse { .. }) {
                server.remove_socket_dir();
            }
            return Err(e);
        }
        Ok(server)
    }

    /// Starts the watchdog and the server in the prepared directories and waits until the
    /// server is ready; on failure, shuts down what it started (keeping the directories if
    /// `restarting`).
    fn launch(&mut self, restarting: bool) -> Result<(), EmbeddedError> {
        let log_offset = prepare_log(&self.log_file)?;
        let launch = &self.launch;
        let mut server_command = launch.run_as.argv(&launch.bin_dir.join("postgres"));
        server_command.extend(server_args(&self.data_dir, &self.socket_dir, launch));

        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("embedded-pg-watchdog")
            .arg(&self.data_dir)
            .arg(&self.log_file)
            .arg(if self.ephemeral { "1" } else { "0" })
            .arg(&self.socket_dir)
            .args(&server_command)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            // A terminal's Ctrl-C goes to our process group; the server must keep running
            // until we have drained in-flight requests and ask it to stop.
            .process_group(0);
        launch.run_as.set_user_env(&mut command);
        let mut child = command
            .spawn()
            .context(|| "could not start /bin/sh to run PostgreSQL".to_owned())?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let pid = child.id();
        let run = Run::new();
        let waiter = {
            let run = Arc::clone(&run);
            let log_file = self.log_file.clone();
            std::thread::Builder::new()
                .name("pg-watchdog-waiter".to_owned())
                .spawn(move || wait_for_watchdog(child, run, log_file, log_offset))
        };
        if let Err(e) = waiter {
            // Closing the pipe still stops the server; only nobody reaps the watchdog.
            drop(stdin);
            return Err(e).context(|| "could not start a thread to watch PostgreSQL".to_owned());
        }
        self.run = run;
        self.watchdog = Some(Watchdog { pid, stdin });

        if let Err(e) = self.wait_until_ready(log_offset) {
            let _ = self.shutdown(restarting);
            return Err(e);
        }
        self.run.ready.store(true, Ordering::SeqCst);
        log::info!(
            "embedded PostgreSQL {} serving {} on {} (log: {}, watchdog: pid {})",
            self.launch.major,
            self.data_dir.display(),
            self.socket_dir.display(),
            self.log_file.display(),
            self.watchdog.as_ref().map_or(0, |w| w.pid)
        );
        Ok(())
    }

    /// Connection settings for `dbname`: the private Unix socket, superuser `postgres`, no
    /// password.
    pub fn connect_config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.socket_dir)
            .port(PORT)
            .user(SUPERUSER)
            .dbname(dbname);
        config
    }

    /// The same settings as a libpq key=value string, usable as `DATABASE_URL` by a child
    /// process, e.g. `host=/tmp/x.sock port=5432 user=postgres dbname=app`.
    pub fn connection_string(&self, dbname: &str) -> String {
        // The socket directory is always valid UTF-8: see `sibling_socket_dir`.
        format!(
            "host={} port={PORT} user={} dbname={}",
            conninfo_value(&self.socket_dir.to_string_lossy()),
            conninfo_value(SUPERUSER),
            conninfo_value(dbname)
        )
    }

    /// The absolute data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The server log, kept beside the data directory.
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// Creates database `name` unless it exists. Safe to call concurrently and repeatedly.
    pub async fn ensure_database(&self, name: &str) -> Result<(), EmbeddedError> {
        validate_database_name(name)?;
        let (client, connection) = self.connect_config("postgres").connect(NoTls).await?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                log::warn!("embedded PostgreSQL maintenance connection failed: {e}");
            }
        });
        let result = create_database_if_missing(&client, name).await;
        drop(client);
        let _ = connection.await;
        result
    }

    /// Fast shutdown (open transactions are rolled back), waiting at most 30 s; then removes
    /// an ephemeral server's directories. A server stopped with SIGSTOP is continued first, so
    /// it stops as fast as a running one.
    pub fn stop(mut self) -> Result<(), EmbeddedError> {
        self.shutdown(false)?;
        self.remove_socket_dir();
        if self.ephemeral {
            removed(fs::remove_dir_all(&self.data_dir), &self.data_dir)?;
            removed(fs::remove_file(&self.log_file), &self.log_file)?;
            if self.socket_dir.exists() {
                fs::remove_dir(&self.socket_dir)
                    .context(|| format!("could not remove {}", self.socket_dir.display()))?;
            }
        }
        Ok(())
    }

    /// Resolves once the current run of the server has ended: at once if it already has, when
    /// the server exits by itself (a crash, a kill, a failure), or when [`Self::stop`],
    /// [`Self::restart`] or a drop shuts it down; [`ServerExit::requested`] tells these apart.
    ///
    /// Nothing is polled: a thread blocked in `waitpid` on the server's watchdog reports the
    /// exit within milliseconds. The future does not borrow the handle, so it can be spawned
    /// or used in `select!`; after a restart, call this again to watch the new run.
    pub fn exited(&self) -> impl Future<Output = ServerExit> + Send + use<> {
        let mut receiver = self.run.notify.subscribe();
        async move {
            if let Ok(exit) = receiver.wait_for(Option::is_some).await
                && let Some(exit) = exit.clone()
            {
                return exit;
            }
            // Only if the waiting thread died without reporting, which it does not do.
            ServerExit {
                requested: false,
                detail: "the thread waiting for the server's watchdog is gone".to_owned(),
                log_tail: String::new(),
            }
        }
    }

    /// Whether the server is running: started, not asked to stop, and not known to have
    /// exited. An exit is known within milliseconds; use [`Self::exited`] to wait for it.
    pub fn is_running(&self) -> bool {
        self.watchdog.is_some() && self.run.ended().is_none()
    }

    /// Starts the server again, after a fast shutdown if it is still running, on the same data
    /// directory and the same socket directory, so connection settings taken before keep
    /// working. An ephemeral server keeps its data. Blocks like [`Self::start`] (about 0.1 s
    /// after a clean stop; after a crash, postgres first replays its write-ahead log).
    ///
    /// On failure the server is not running; `restart` may be tried again, and
    /// [`Self::stop`] still cleans up.
    pub fn restart(&mut self) -> Result<(), EmbeddedError> {
        self.shutdown(true)?;
        // After a crash, postgres refuses to start while any child of the old postmaster lives.
        let deadline = Instant::now() + LEFTOVER_TIMEOUT;
        while server_processes(&self.data_dir).is_some_and(|pids| !pids.is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(POLL_INTERVAL);
        }
        let known_free = check_data_dir_free(&self.data_dir)?;
        if !claim_socket_dir(&self.socket_dir, &self.launch.run_as, known_free)? {
            return Err(EmbeddedError::Io {
                context: format!(
                    "could not restart PostgreSQL on socket directory {}",
                    self.socket_dir.display()
                ),
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "it has been replaced by something that is not a directory of ours",
                ),
            });
        }
        self.launch(true)
    }

    /// Closes the watchdog's pipe, which is the shutdown request, and waits for the watchdog,
    /// which exits once the postmaster has. `restarting` keeps the directories for a restart.
    fn shutdown(&mut self, restarting: bool) -> Result<(), EmbeddedError> {
        let Some(mut watchdog) = self.watchdog.take() else {
            return Ok(());
        };
        self.run.stop_requested.store(true, Ordering::SeqCst);
        if restarting && self.run.ended().is_none() {
            // If the watchdog has just exited, there is nothing left to keep: ignore the error.
            let _ = watchdog.stdin.write_all(RESTART_REQUEST);
        }
        drop(watchdog);
        match self.run.wait(STOP_TIMEOUT) {
            Some(_) => Ok(()),
            None => Err(EmbeddedError::StopTimeout {
                data_dir: self.data_dir.clone(),
                log_file: self.log_file.clone(),
                timeout: STOP_TIMEOUT,
            }),
        }
    }

    /// Ready means the postmaster says so in `postmaster.pid` and a connection succeeds: where
    /// procfs is missing, a crashed server's stale file may still say `ready`, and only the
    /// connection shows that this server answers on this socket.
    fn wait_until_ready(&mut self, log_offset: u64) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last_probe_error = None;
        loop {
            if self.run.ended().is_some() {
                return Err(self.start_failed("it exited during start-up".to_owned(), log_offset));
            }
            if postmaster_status(&self.data_dir).as_deref() == Some("ready") {
                match probe(self.connect_config("postgres")) {
                    Ok(()) => return Ok(()),
                    Err(e) => last_probe_error = Some(e),
                }
            }
            if Instant::now() >= deadline {
                let detail = last_probe_error
                    .map(|e| format!(" (last connection attempt: {e})"))
                    .unwrap_or_default();
                return Err(self.start_failed(
                    format!("not ready within {START_TIMEOUT:?}{detail}"),
                    log_offset,
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn start_failed(&self, reason: String, log_offset: u64) -> EmbeddedError {
        let log_tail = read_log_tail(&self.log_file, log_offset);
        // Where /proc cannot tell us beforehand, the postmaster's own lock check does.
        if let Some(pid) = lock_conflict_pid(&log_tail) {
            return EmbeddedError::DataDirInUse {
                data_dir: self.data_dir.clone(),
                pid,
            };
        }
        EmbeddedError::StartFailed {
            reason,
            log_file: self.log_file.clone(),
            log_tail,
        }
    }

    /// Best effort: the directory holds nothing but sockets the server removes itself.
    fn remove_socket_dir(&self) {
        for name in [SOCKET_FILE, &format!("{SOCKET_FILE}.lock")] {
            let _ = fs::remove_file(self.socket_dir.join(name));
        }
        let _ = fs::remove_dir(&self.socket_dir);
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Some(watchdog) = self.watchdog.take() {
            // Closing the pipe is the shutdown request; the watchdog also removes an ephemeral
            // server's directories once the server has gone, and the waiting thread reaps it.
            self.run.stop_requested.store(true, Ordering::SeqCst);
            drop(watchdog);
        }
    }
}

/// The directory holding `initdb` and `postgres`: `hint` if given (an error if it lacks
/// them), else the first directory on `PATH` with both, else the newest installed version
/// under `/usr/lib/postgresql/*/bin`, `/usr/pgsql-*/bin`, `/opt/homebrew/opt/postgresql*/bin`
/// or `/usr/local/opt/postgresql*/bin`, searched in that order.
pub fn find_bin_dir(hint: Option<&Path>) -> Result<PathBuf, EmbeddedError> {
    if let Some(hint) = hint {
        // Binaries run with `/` as working directory, so a relative hint must be resolved now.
        let dir = std::path::absolute(hint).unwrap_or_else(|_| hint.to_path_buf());
        return if has_server_binaries(&dir) {
            Ok(dir)
        } else {
            Err(EmbeddedError::BinDirInvalid { dir })
        };
    }
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    on_path
        .into_iter()
        .filter(|dir| dir.is_absolute())
        .chain(versioned_bin_dirs("/usr/lib/postgresql", ""))
        .chain(versioned_bin_dirs("/usr", "pgsql-"))
        .chain(versioned_bin_dirs("/opt/homebrew/opt", "postgresql"))
        .chain(versioned_bin_dirs("/usr/local/opt", "postgresql"))
        .find(|dir| has_server_binaries(dir))
        .ok_or(EmbeddedError::BinariesNotFound)
}

/// `<root>/<prefix><version>/bin` for each entry of `root`, newest version first.
fn versioned_bin_dirs(root: &str, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name.strip_prefix(prefix)?;
            Some((version_key(version), entry.path().join("bin")))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, dir)| dir).collect()
}

/// Numeric components of a version such as `9.6`, `15` or `@16`, compared as numbers so 10
/// sorts above 9; an unversioned name sorts below every versioned one.
fn version_key(version: &str) -> Vec<u32> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map_while(|part| part.parse().ok())
        .collect()
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "postgres"]
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn server_major_version(bin_dir: &Path) -> Result<u32, EmbeddedError> {
    let postgres = bin_dir.join("postgres");
    let unknown = |detail: String| EmbeddedError::UnknownVersion {
        postgres: postgres.clone(),
        detail,
    };
    // `-V` is answered before postgres's refusal to run as root, so it needs no runuser.
    let output = Command::new(&postgres)
        .arg("-V")
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| unknown(e.to_string()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(unknown(format!(
            "{}: {}{}",
            output.status,
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let major =
        parse_major_version(&text).ok_or_else(|| unknown(format!("unexpected output {text:?}")))?;
    if major < OLDEST_SUPPORTED_MAJOR {
        return Err(EmbeddedError::UnsupportedVersion {
            bin_dir: bin_dir.to_path_buf(),
            major,
        });
    }
    Ok(major)
}

/// `postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)` → 15; also `17beta1` → 17.
fn parse_major_version(text: &str) -> Option<u32> {
    let version = text.split_once("(PostgreSQL) ")?.1;
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn check_data_version(data_dir: &Path, bin_dir: &Path, major: u32) -> Result<(), EmbeddedError> {
    let path = data_dir.join("PG_VERSION");
    let data_version = fs::read_to_string(&path)
        .context(|| format!("could not read {}", path.display()))?
        .trim()
        .to_owned();
    if data_version == major.to_string() {
        return Ok(());
    }
    Err(EmbeddedError::VersionMismatch {
        data_dir: data_dir.to_path_buf(),
        data_version,
        bin_dir: bin_dir.to_path_buf(),
        bin_major: major,
    })
}

/// Creates the data directory if missing (only its owner may enter it, as postgres requires)
/// and returns its canonical path, which is what `/proc/<pid>/cwd` of its server shows.
fn create_data_dir(data_dir: &Path) -> Result<PathBuf, EmbeddedError> {
    if !data_dir.exists() {
        if let Some(parent) = data_dir.parent() {
            // Default permissions: as root, the `postgres` user must be able to pass through.
            fs::create_dir_all(parent)
                .context(|| format!("could not create {}", parent.display()))?;
        }
        match fs::DirBuilder::new().mode(0o700).create(data_dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(e)
                    .context(|| format!("could not create data directory {}", data_dir.display()));
            }
            _ => {}
        }
    }
    fs::canonicalize(data_dir)
        .context(|| format!("could not resolve data directory {}", data_dir.display()))
}

fn initdb(
    bin_dir: &Path,
    data_dir: &Path,
    run_as: &RunAs,
    major: u32,
    durable: bool,
) -> Result<(), EmbeddedError> {
    log::info!(
        "initialising PostgreSQL data directory {}",
        data_dir.display()
    );
    let mut command = run_as.command(&bin_dir.join("initdb"));
    command.arg("-D").arg(data_dir).args([
        "-U",
        SUPERUSER,
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
    ]);
    if major >= NO_INSTRUCTIONS_SINCE {
        command.arg("--no-instructions");
    }
    if !durable {
        command.arg("--no-sync");
    }
    let output = command
        .stdin(Stdio::null())
        .output()
        .context(|| format!("could not run {}", bin_dir.join("initdb").display()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(EmbeddedError::InitdbFailed {
        data_dir: data_dir.to_path_buf(),
        status: output.status,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
        .trim_end()
        .to_owned(),
    })
}

/// What the pid in a leftover `postmaster.pid` is now.
#[derive(Debug)]
enum PidOwner {
    /// The postmaster serving this data directory.
    Serving,
    /// No process, or one that is not this data directory's postmaster.
    Stale,
    /// Cannot tell without procfs.
    Unknown,
}

/// Refuses a data directory another postmaster is serving, and removes a `postmaster.pid`
/// left by a crash when its pid now belongs to some other process: postgres refuses to start
/// while that pid is alive and runs as the server's user, as recycled pids in a container
/// often do. Returns whether the directory is known to be free.
fn check_data_dir_free(data_dir: &Path) -> Result<bool, EmbeddedError> {
    let pid_file = data_dir.join("postmaster.pid");
    let text = match fs::read_to_string(&pid_file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e).context(|| format!("could not read {}", pid_file.display())),
    };
    let pid = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok());
    let owner = match pid {
        // An empty or torn file from a crash during start-up; postgres refuses those too.
        None => PidOwner::Stale,
        Some(pid) => pid_owner(pid, data_dir),
    };
    match (owner, pid) {
        (PidOwner::Serving, Some(pid)) => Err(EmbeddedError::DataDirInUse {
            data_dir: data_dir.to_path_buf(),
            pid,
        }),
        (PidOwner::Unknown, _) => Ok(false),
        _ => {
            log::warn!(
                "removing {} left behind by a server that is no longer running",
                pid_file.display()
            );
            fs::remove_file(&pid_file)
                .context(|| format!("could not remove stale {}", pid_file.display()))?;
            Ok(true)
        }
    }
}

fn pid_owner(pid: u32, data_dir: &Path) -> PidOwner {
    if !Path::new("/proc/self").exists() {
        return PidOwner::Unknown;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !proc_dir.exists() {
        return PidOwner::Stale;
    }
    let comm = fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
    if !matches!(comm.trim(), "postgres" | "postmaster") {
        return PidOwner::Stale;
    }
    // Every server process runs in its data directory. If we may not look, assume the worst.
    match fs::read_link(proc_dir.join("cwd")) {
        Ok(cwd) if cwd != data_dir => PidOwner::Stale,
        _ => PidOwner::Serving,
    }
}

/// Line 8 of `postmaster.pid`: `starting`, `ready`, `stopping` or `standby`.
fn postmaster_status(data_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
    text.lines().nth(7).map(|line| line.trim().to_owned())
}

/// The pid in postgres's "lock file already exists" hint, if the log has one.
fn lock_conflict_pid(log: &str) -> Option<u32> {
    if !log.contains("lock file \"postmaster.pid\" already exists") {
        return None;
    }
    let after = log.split_once("postmaster (PID ")?.1;
    after.split(')').next()?.trim().parse().ok()
}

fn log_file_for(data_dir: &Path) -> PathBuf {
    with_suffix(data_dir, ".log")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Sets an oversized log aside, makes sure the log can be written (the watchdog could only
/// fail silently), and returns where this start's messages will begin.
fn prepare_log(log_file: &Path) -> Result<u64, EmbeddedError> {
    // A symlink planted in a shared parent such as /tmp would have us append to its target.
    if fs::symlink_metadata(log_file).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(EmbeddedError::Io {
            context: format!(
                "refusing to write the PostgreSQL log to {}",
                log_file.display()
            ),
            source: io::Error::new(io::ErrorKind::InvalidInput, "it is a symbolic link"),
        });
    }
    if fs::metadata(log_file).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        let old = with_suffix(log_file, ".1");
        fs::rename(log_file, &old).context(|| {
            format!(
                "could not rotate {} to {}",
                log_file.display(),
                old.display()
            )
        })?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)
        .context(|| format!("could not open PostgreSQL log {}", log_file.display()))?;
    let len = file
        .metadata()
        .context(|| format!("could not inspect {}", log_file.display()))?
        .len();
    Ok(len)
}

/// The last lines written to the log from `offset` on, read from at most its last 64 KiB (a
/// long run's log can be large).
fn read_log_tail(log_file: &Path, offset: u64) -> String {
    let mut bytes = Vec::new();
    let mut skipped = false;
    if let Ok(mut file) = File::open(log_file)
        && let Ok(len) = file.metadata().map(|m| m.len())
    {
        let start = offset.max(len.saturating_sub(LOG_TAIL_BYTES));
        skipped = start > offset;
        if file.seek(SeekFrom::Start(start)).is_ok() {
            let _ = file.read_to_end(&mut bytes);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if skipped && !lines.is_empty() {
        // Probably cut in the middle.
        lines.remove(0);
    }
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// The processes whose working directory is `data_dir`: every server process runs there.
/// `None` without procfs. As an ordinary user, other users' processes cannot be seen, but the
/// server runs as us; as root, all can be.
fn server_processes(data_dir: &Path) -> Option<Vec<u32>> {
    let entries = fs::read_dir("/proc").ok()?;
    // How the kernel shows the working directory once it has been removed.
    let deleted = with_suffix(data_dir, " (deleted)");
    Some(
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
                let cwd = fs::read_link(entry.path().join("cwd")).ok()?;
                (cwd == data_dir || cwd == deleted).then_some(pid)
            })
            .collect(),
    )
}

/// `<data_dir>.sock` when the socket path fits in `sun_path` and is valid UTF-8 (it goes into
/// a connection string), else a new private directory under `/tmp`.
fn prepare_socket_dir(
    data_dir: &Path,
    run_as: &RunAs,
    known_free: bool,
) -> Result<PathBuf, EmbeddedError> {
    if let Some(dir) = sibling_socket_dir(data_dir) {
        if claim_socket_dir(&dir, run_as, known_free)? {
            return Ok(dir);
        }
        log::warn!(
            "not using {}: it is not a directory of ours; using one under /tmp instead",
            dir.display()
        );
    }
    let dir = create_temp_socket_dir()?;
    run_as.take_ownership(&dir)?;
    Ok(dir)
}

/// Creates `dir` for the server's socket, or makes an existing one ready for another start;
/// `false` if something else is there.
fn claim_socket_dir(dir: &Path, run_as: &RunAs, known_free: bool) -> Result<bool, EmbeddedError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .context(|| format!("could not create socket directory {}", dir.display()))?;
        }
        Err(e) => return Err(e).context(|| format!("could not inspect {}", dir.display())),
        Ok(meta) if meta.is_dir() && run_as.trusts_owner(meta.uid()) => {
            if known_free {
                // A crash leaves the socket lock behind, and postgres refuses it when its pid
                // has been reused. With the data directory free, nothing else uses the socket.
                for name in [SOCKET_FILE, &format!("{SOCKET_FILE}.lock")] {
                    let _ = fs::remove_file(dir.join(name));
                }
            }
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .context(|| format!("could not restrict socket directory {}", dir.display()))?;
        }
        // A symlink or a stranger's directory, planted in a shared parent such as /tmp: using
        // it would hand its target to the server user.
        Ok(_) => return Ok(false),
    }
    run_as.take_ownership(dir)?;
    Ok(true)
}

fn sibling_socket_dir(data_dir: &Path) -> Option<PathBuf> {
    let dir = with_suffix(data_dir, ".sock");
    (dir.to_str().is_some() && socket_path_fits(&dir)).then_some(dir)
}

fn socket_path_fits(dir: &Path) -> bool {
    dir.as_os_str().len() + 1 + SOCKET_FILE.len() <= MAX_SOCKET_PATH
}

/// `/tmp` rather than `temp_dir()`, which may itself be too long (macOS). Creating the
/// directory ourselves, with a name nobody else has used, keeps others out of it.
fn create_temp_socket_dir() -> Result<PathBuf, EmbeddedError> {
    let mut last_error = None;
    for _ in 0..100 {
        let dir = Path::new("/tmp").join(unique_name("embedded-pg"));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e).context(|| format!("could not create {}", dir.display())),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no unique name found")))
        .context(|| "could not create a socket directory under /tmp".to_owned())
}

fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // The time keeps apart directories a crashed process with a recycled pid left behind.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

fn server_args(data_dir: &Path, socket_dir: &Path, options: &Launch) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "-D".into(),
        data_dir.into(),
        // Explicit, so a PGPORT in our environment cannot rename the socket.
        "-p".into(),
        PORT.to_string().into(),
    ];
    let mut set = |name: &str, value: &OsStr| {
        let mut setting = OsString::from(format!("{name}="));
        setting.push(value);
        args.push("-c".into());
        args.push(setting);
    };
    set("listen_addresses", OsStr::new(""));
    set(
        "unix_socket_directories",
        &quote_socket_directory(socket_dir),
    );
    set("unix_socket_permissions", OsStr::new("0700"));
    set(
        "max_connections",
        OsStr::new(&options.max_connections.to_string()),
    );
    // Logs go to the watchdog's stderr redirection, whatever the cluster's config says.
    set("logging_collector", OsStr::new("off"));
    if !options.durable {
        for name in ["fsync", "synchronous_commit", "full_page_writes"] {
            set(name, OsStr::new("off"));
        }
    }
    args
}

/// `unix_socket_directories` is a comma-separated list; double quotes protect commas and
/// spaces in the path.
fn quote_socket_directory(dir: &Path) -> OsString {
    let mut bytes = vec![b'"'];
    for &b in dir.as_os_str().as_bytes() {
        if b == b'"' {
            bytes.push(b'"');
        }
        bytes.push(b);
    }
    bytes.push(b'"');
    OsString::from_vec(bytes)
}

fn probe(config: tokio_postgres::Config) -> Result<(), String> {
    // A thread of its own, because start() may be called from inside a tokio runtime, where
    // blocking on another runtime panics.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            match tokio::time::timeout(PROBE_TIMEOUT, config.connect(NoTls)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
            }
        })
    })
    .join()
    .unwrap_or_else(|_| Err("connection probe panicked".to_owned()))
}

async fn create_database_if_missing(
    client: &tokio_postgres::Client,
    name: &str,
) -> Result<(), EmbeddedError> {
    // Checking first keeps a routine restart from logging a duplicate-database error.
    let exists = client
        .query_opt("select 1 from pg_database where datname = $1", &[&name])
        .await?
        .is_some();
    if exists {
        return Ok(());
    }
    match client
        .batch_execute(&format!("create database {}", quote_identifier(name)))
        .await
    {
        Ok(()) => {
            log::info!("created database {name:?} in the embedded PostgreSQL server");
            Ok(())
        }
        // Someone else created it between the check and the create.
        Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn validate_database_name(name: &str) -> Result<(), EmbeddedError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_IDENTIFIER_BYTES {
        "it is longer than 63 bytes"
    } else if name.contains('\0') {
        "it contains a NUL character"
    } else {
        return Ok(());
    };
    Err(EmbeddedError::InvalidDatabaseName {
        name: name.to_owned(),
        reason,
    })
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A libpq connection-string value, quoted only when it has to be.
fn conninfo_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\');
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// The outcome of removing `path`, where already gone counts as success.
fn removed(result: io::Result<()>, path: &Path) -> Result<(), EmbeddedError> {
    match result {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(e).context(|| format!("could not remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Who runs initdb and postgres. Both refuse to run as root, so root hands them to the
/// `postgres` system user.
#[derive(Debug, Clone)]
enum RunAs {
    CurrentUser {
        uid: Option<u32>,
    },
    SystemUser {
        switcher: Switcher,
        user: PasswdEntry,
    },
}

/// How root runs a program as the `postgres` user.
#[derive(Debug, Clone)]
enum Switcher {
    /// `setpriv` sets the user, group and supplementary groups, then execs the program: no
    /// process is left between the program and whoever started it.
    Setpriv(PathBuf),
    /// `runuser` stays as the program's parent and, like `su`, stops itself whenever its child
    /// stops, and nothing continues it when the child is continued. So its child is a shell
    /// that runs the program as a background job and waits for it without job control: that
    /// shell never stops, and neither does `runuser`.
    Runuser(PathBuf),
}

/// Runs `"$@"` and exits with its status, whatever happens to its job-control state.
const UNSTOPPABLE_PARENT: &str = r#""$@" & wait $!"#;

impl RunAs {
    fn detect() -> Result<Self, EmbeddedError> {
        let uid = effective_uid();
        if uid != Some(0) {
            return Ok(Self::CurrentUser { uid });
        }
        let user = lookup_user(SYSTEM_USER).ok_or(EmbeddedError::NoPostgresUser)?;
        let setpriv = find_system_tool("setpriv").filter(|_| !runuser_preferred());
        let switcher = match setpriv {
            Some(setpriv) => Switcher::Setpriv(setpriv),
            None => Switcher::Runuser(find_system_tool("runuser").ok_or(EmbeddedError::NoRunuser)?),
        };
        Ok(Self::SystemUser { switcher, user })
    }

    fn argv(&self, program: &Path) -> Vec<OsString> {
        match self {
            Self::CurrentUser { .. } => vec![program.into()],
            Self::SystemUser {
                switcher: Switcher::Setpriv(setpriv),
                user,
            } => vec![
                setpriv.into(),
                format!("--reuid={}", user.uid).into(),
                format!("--regid={}", user.gid).into(),
                // The `postgres` user's own supplementary groups (e.g. ssl-cert), not root's.
                "--init-groups".into(),
                "--".into(),
                program.into(),
            ],
            Self::SystemUser {
                switcher: Switcher::Runuser(runuser),
                ..
            } => vec![
                runuser.into(),
                "-u".into(),
                SYSTEM_USER.into(),
                "--".into(),
                "/bin/sh".into(),
                "-c".into(),
                UNSTOPPABLE_PARENT.into(),
                "sh".into(),
                program.into(),
            ],
        }
    }

    fn command(&self, program: &Path) -> Command {
        let argv = self.argv(program);
        let mut command = Command::new(&argv[0]);
        // The `postgres` user may not be allowed into our working directory.
        command.args(&argv[1..]).current_dir("/");
        self.set_user_env(&mut command);
        command
    }

    /// The variables `runuser` sets; `setpriv` leaves root's, such as `HOME=/root`.
    fn set_user_env(&self, command: &mut Command) {
        if let Self::SystemUser { user, .. } = self {
            command
                .env("HOME", &user.home)
                .env("USER", SYSTEM_USER)
                .env("LOGNAME", SYSTEM_USER);
        }
    }

    fn take_ownership(&self, dir: &Path) -> Result<(), EmbeddedError> {
        if let Self::SystemUser { user, .. } = self {
            std::os::unix::fs::chown(dir, Some(user.uid), Some(user.gid))
                .context(|| format!("could not hand {} to the postgres user", dir.display()))?;
        }
        Ok(())
    }

    /// Whether a directory owned by `owner` is ours or the server's to use.
    fn trusts_owner(&self, owner: u32) -> bool {
        match self {
            Self::CurrentUser { uid } => *uid == Some(owner),
            Self::SystemUser { user, .. } => owner == 0 || owner == user.uid,
        }
    }

    fn check_owner(&self, data_dir: &Path) -> Result<(), EmbeddedError> {
        if let Self::SystemUser { user, .. } = self {
            let owner = fs::metadata(data_dir)
                .context(|| format!("could not inspect {}", data_dir.display()))?
                .uid();
            if owner != user.uid {
                return Err(EmbeddedError::DataDirWrongOwner {
                    data_dir: data_dir.to_path_buf(),
                    owner,
                    postgres_uid: user.uid,
                });
            }
        }
        Ok(())
    }

    /// Asks the `postgres` user itself rather than reading mode bits, which miss groups and ACLs.
    fn check_reachable(&self, data_dir: &Path) -> Result<(), EmbeddedError> {
        if matches!(self, Self::CurrentUser { .. }) || self.can_enter(data_dir) {
            return Ok(());
        }
        let mut outermost_first: Vec<&Path> = data_dir.ancestors().collect();
        outermost_first.reverse();
        let blocked = outermost_first
            .into_iter()
            .find(|dir| !self.can_enter(dir))
            .map(Path::to_path_buf);
        Err(EmbeddedError::DataDirUnreachable {
            data_dir: data_dir.to_path_buf(),
            blocked,
        })
    }

    fn can_enter(&self, dir: &Path) -> bool {
        self.command(Path::new("test"))
            .arg("-x")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// The owner of `/proc/self` is our effective uid; elsewhere `id -u` says.
fn effective_uid() -> Option<u32> {
    if let Ok(meta) = fs::metadata("/proc/self") {
        return Some(meta.uid());
    }
    let output = Command::new("id").arg("-u").output().ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// What `/etc/passwd` says about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

/// `user`'s entry, from `/etc/passwd`, or from `getent` for users kept elsewhere.
fn lookup_user(user: &str) -> Option<PasswdEntry> {
    if let Some(found) = fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| find_passwd_entry(&text, user))
    {
        return Some(found);
    }
    let output = Command::new("getent")
        .args(["passwd", user])
        .output()
        .ok()?;
    find_passwd_entry(&String::from_utf8_lossy(&output.stdout), user)
}

fn find_passwd_entry(text: &str, user: &str) -> Option<PasswdEntry> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != user {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        let _gecos = fields.next()?;
        let home = PathBuf::from(fields.next()?);
        Some(PasswdEntry { uid, gid, home })
    })
}

fn find_system_tool(name: &str) -> Option<PathBuf> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    // Non-login root shells in containers often lack the sbin directories on PATH.
    on_path
        .into_iter()
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|path| path.is_absolute() && is_executable(path))
}

/// Tests of the `runuser` fallback set this for their own thread.
#[cfg(test)]
fn runuser_preferred() -> bool {
    tests::PREFER_RUNUSER.with(std::cell::Cell::get)
}

#[cfg(not(test))]
fn runuser_preferred() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set in the child process of `server_stops_when_its_owner_is_killed`.
    const OWNER_REPORT_ENV: &str = "FLUX_CATALOG_EMBEDDED_PG_OWNER_REPORT";

    thread_local! {
        /// Makes root use `runuser` even where `setpriv` is installed, on this thread only.
        pub(super) static PREFER_RUNUSER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    fn postmaster_pid(data_dir: &Path) -> u32 {
        let text = fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    /// Every server process (postmaster and children) runs in its data directory, which the
    /// kernel marks as deleted once an ephemeral one has been removed.
    fn processes_in(data_dir: &Path) -> Vec<u32> {
        server_processes(data_dir).expect("these tests need /proc")
    }

    fn eventually(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        condition()
    }

    async fn query_i32(config: tokio_postgres::Config, sql: &str) -> i32 {
        let (client, connection) = config.connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        client.query_one(sql, &[]).await.unwrap().get(0)
    }

    /// A persistent data directory under the temp dir, removed with its siblings on drop.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new(label: &str) -> Self {
            Self(std::env::temp_dir().join(unique_name(&format!("embedded-pg-{label}"))))
        }

        fn options(&self) -> EmbeddedOptions {
            EmbeddedOptions {
                durable: false,
                ..EmbeddedOptions::persistent(self.0.clone())
            }
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
            let _ = fs::remove_dir_all(with_suffix(&self.0, ".sock"));
            let _ = fs::remove_file(log_file_for(&self.0));
        }
    }

    #[tokio::test]
    async fn ephemeral_server_serves_queries_and_leaves_nothing_behind() {
        let server = EmbeddedPostgres::start(EmbeddedOptions::ephemeral_for_tests()).unwrap();
        let data_dir = server.data_dir().to_path_buf();
        let socket_dir = server.socket_dir.clone();
        let log_file = server.log_file().to_path_buf();
        let pid = postmaster_pid(&data_dir);

        server.ensure_database("app").await.unwrap();
        server.ensure_database("app").await.unwrap();
        server.ensure_database("we\"ird name").await.unwrap();
        assert_eq!(
            query_i32(server.connect_config("app"), "select 1 + 1").await,
            2
        );
        let from_string: tokio_postgres::Config =
            server.connection_string("we\"ird name").parse().unwrap();
        assert_eq!(query_i32(from_string, "select 3").await, 3);

        server.stop().unwrap();
        assert!(
            processes_in(&data_dir).is_empty(),
            "postmaster {pid} survived stop"
        );
        for path in [&data_dir, &socket_dir, &log_file] {
            assert!(!path.exists(), "{} survived stop", path.display());
        }
    }

    #[test]
    fn a_terminal_ctrl_c_does_not_reach_the_server() {
        fn process_group(pid: &str) -> String {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
            // Fields after the parenthesised command name: state, ppid, pgrp.
            let after_comm = stat.rsplit_once(") ").unwrap().1;
            after_comm.split(' ').nth(2).unwrap().to_owned()
        }
        let server = EmbeddedPostgres::start(EmbeddedOptions::ephemeral_for_tests()).unwrap();
        let watchdog = server.watchdog.as_ref().unwrap().pid.to_string();
        let postmaster = postmaster_pid(server.data_dir()).to_string();
        assert_ne!(process_group("self"), process_group(&watchdog));
        assert_eq!(process_group(&postmaster), watchdog);
        server.stop().unwrap();
    }

    #[tokio::test]
    async fn persistent_data_survives_a_restart() {
        let dir = ScratchDir::new("persistent");
        let server = EmbeddedPostgres::start(EmbeddedOptions::persistent(dir.0.clone())).unwrap();
        server.ensure_database("app").await.unwrap();
        let (client, connection) = server.connect_config("app").connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute("create table kept (n int); insert into kept values (42)")
            .await
            .unwrap();
        drop(client);
        server.stop().unwrap();
        assert!(dir.0.join("PG_VERSION").exists());

        let server = EmbeddedPostgres::start(EmbeddedOptions::persistent(dir.0.clone())).unwrap();
        server.ensure_database("app").await.unwrap();
        assert_eq!(
            query_i32(server.connect_config("app"), "select n from kept").await,
            42
        );
        let log = fs::read_to_string(server.log_file()).unwrap();
        assert_eq!(
            log.matches("database system was shut down at").count(),
            2,
            "the second start should reuse the cleanly stopped cluster:\n{log}"
        );
        server.stop().unwrap();
    }

    #[test]
    fn dropping_the_server_shuts_it_down() {
        let server = EmbeddedPostgres::start(EmbeddedOptions::ephemeral_for_tests()).unwrap();
        let data_dir = server.data_dir().to_path_buf();
        let pid = postmaster_pid(&data_dir);
        drop(server);
        assert!(
            eventually(Duration::from_secs(10), || processes_in(&data_dir)
                .is_empty()),
            "postmaster {pid} survived drop"
        );
        assert!(
            eventually(Duration::from_secs(5), || !data_dir.exists()),
            "the watchdog did not remove {}",
            data_dir.display()
        );
    }

    #[test]
    fn a_server_can_be_shared_through_a_static() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<EmbeddedPostgres>();
    }

    #[test]
    fn find_bin_dir_rejects_a_bogus_hint() {
        let bogus = Path::new("/nonexistent/postgresql/bin");
        let err = find_bin_dir(Some(bogus)).unwrap_err();
        assert!(
            matches!(err, EmbeddedError::BinDirInvalid { .. }),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("/nonexistent/postgresql/bin") && message.contains("initdb"),
            "{message}"
        );
    }

    #[test]
    fn find_bin_dir_finds_the_installed_server() {
        let dir = find_bin_dir(None).unwrap();
        assert!(has_server_binaries(&dir), "{}", dir.display());
    }

    #[tokio::test]
    async fn a_second_start_on_a_dir_in_use_fails_clearly() {
        let dir = ScratchDir::new("in-use");
        let first = EmbeddedPostgres::start(dir.options()).unwrap();
        let started = Instant::now();
        let err = EmbeddedPostgres::start(dir.options()).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        let pid = postmaster_pid(first.data_dir());
        assert!(
            matches!(err, EmbeddedError::DataDirInUse { pid: p, .. } if p == pid),
            "{err:?}"
        );
        assert!(err.to_string().contains("already used"), "{err}");
        assert_eq!(
            query_i32(first.connect_config("postgres"), "select 1").await,
            1
        );
        first.stop().unwrap();
    }

    #[tokio::test]
    async fn a_crashed_servers_leftovers_do_not_block_the_next_start() {
        let dir = ScratchDir::new("crash");
        // Durable: without synchronous commit, a crash may lose the row this test looks for.
        let options = EmbeddedOptions::persistent(dir.0.clone());
        let server = EmbeddedPostgres::start(options.clone()).unwrap();
        let (client, connection) = server
            .connect_config("postgres")
            .connect(NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute("create table kept (n int); insert into kept values (7)")
            .await
            .unwrap();
        drop(client);

        let data_dir = server.data_dir().to_path_buf();
        let pid = postmaster_pid(&data_dir);
        let killed = Command::new("/bin/sh")
            .args(["-c", &format!("kill -s KILL {pid}")])
            .status();
        assert!(killed.unwrap().success());
        assert!(eventually(Duration::from_secs(10), || processes_in(
            &data_dir
        )
        .is_empty()));
        server.stop().unwrap();

        // As if the dead postmaster's pid had since gone to another process of the server's
        // user, which postgres itself takes for a running postmaster and refuses to start.
        let mut sleeper = RunAs::detect()
            .unwrap()
            .command(Path::new("/bin/sh"))
            .args(["-c", "echo $$; exec sleep 30"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        io::BufRead::read_line(
            &mut io::BufReader::new(sleeper.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let sleeper_pid: u32 = line.trim().parse().unwrap();
        let pid_file = data_dir.join("postmaster.pid");
        let text = fs::read_to_string(&pid_file).unwrap();
        let rest = text.split_once('\n').unwrap().1;
        fs::write(&pid_file, format!("{sleeper_pid}\n{rest}")).unwrap();

        let restarted = EmbeddedPostgres::start(options.clone());
        let _ = Command::new("/bin/sh")
            .args(["-c", &format!("kill {sleeper_pid}")])
            .status();
        let _ = sleeper.wait();
        let server = restarted.unwrap();
        assert_eq!(
            query_i32(server.connect_config("postgres"), "select n from kept").await,
            7
        );
        server.stop().unwrap();

        // A crash while the file was being written leaves it empty, which postgres also refuses.
        fs::write(&pid_file, "").unwrap();
        EmbeddedPostgres::start(options).unwrap().stop().unwrap();
    }

    #[tokio::test]
    async fn a_long_data_dir_path_gets_a_short_socket_dir() {
        let dir = ScratchDir::new(&"x".repeat(100));
        let server = EmbeddedPostgres::start(dir.options()).unwrap();
        assert!(
            server.socket_dir.starts_with("/tmp") && socket_path_fits(&server.socket_dir),
            "{}",
            server.socket_dir.display()
        );
        assert_eq!(
            query_i32(server.connect_config("postgres"), "select 5").await,
            5
        );
        let socket_dir = server.socket_dir.clone();
        server.stop().unwrap();
        assert!(
            !socket_dir.exists(),
            "{} survived stop",
            socket_dir.display()
        );
    }

    #[test]
    fn a_failed_start_reports_the_server_log_and_removes_what_it_created() {
        let options = EmbeddedOptions {
            max_connections: 0,
            ..EmbeddedOptions::ephemeral_for_tests()
        };
        let data_dir = options.data_dir.clone();
        let err = EmbeddedPostgres::start(options).unwrap_err();
        match &err {
            EmbeddedError::StartFailed { log_tail, .. } => {
                assert!(log_tail.contains("max_connections"), "{err}")
            }
            _ => panic!("{err:?}"),
        }
        for path in [
            data_dir.clone(),
            log_file_for(&data_dir),
            with_suffix(&data_dir, ".sock"),
        ] {
            assert!(!path.exists(), "{} survived", path.display());
        }
    }

    #[test]
    fn data_from_another_major_version_is_refused() {
        let dir = ScratchDir::new("old-version");
        fs::create_dir(&dir.0).unwrap();
        fs::write(dir.0.join("PG_VERSION"), "9.6\n").unwrap();
        let err = EmbeddedPostgres::start(dir.options()).unwrap_err();
        assert!(
            matches!(&err, EmbeddedError::VersionMismatch { data_version, .. } if data_version == "9.6"),
            "{err:?}"
        );
        assert!(err.to_string().contains("pg_upgrade"), "{err}");
    }

    #[test]
    fn as_root_a_data_dir_the_postgres_user_cannot_reach_is_reported() {
        if effective_uid() != Some(0) {
            return;
        }
        let closed = ScratchDir::new("closed");
        fs::DirBuilder::new().mode(0o700).create(&closed.0).unwrap();
        let data_dir = closed.0.join("data");
        let err = EmbeddedPostgres::start(EmbeddedOptions::persistent(data_dir)).unwrap_err();
        assert!(
            matches!(&err, EmbeddedError::DataDirUnreachable { blocked: Some(b), .. } if *b == closed.0),
            "{err:?}"
        );
    }

    #[test]
    fn a_planted_socket_dir_symlink_is_not_followed() {
        let dir = ScratchDir::new("planted");
        let target = ScratchDir::new("planted-target");
        fs::DirBuilder::new().mode(0o755).create(&target.0).unwrap();
        let before = fs::metadata(&target.0).unwrap();
        std::os::unix::fs::symlink(&target.0, with_suffix(&dir.0, ".sock")).unwrap();

        let server = EmbeddedPostgres::start(dir.options()).unwrap();
        assert!(
            server.socket_dir.starts_with("/tmp"),
            "{}",
            server.socket_dir.display()
        );
        let after = fs::metadata(&target.0).unwrap();
        assert_eq!((after.uid(), after.mode()), (before.uid(), before.mode()));
        server.stop().unwrap();
        let _ = fs::remove_file(with_suffix(&dir.0, ".sock"));
    }

    /// Not a test by itself: the child process of `server_stops_when_its_owner_is_killed`,
    /// which reports its data directory and waits to be killed.
    #[test]
    fn owner_helper_process() {
        let Some(report) = std::env::var_os(OWNER_REPORT_ENV) else {
            return;
        };
        let server = EmbeddedPostgres::start(EmbeddedOptions::ephemeral_for_tests()).unwrap();
        let partial = with_suffix(Path::new(&report), ".partial");
        fs::write(&partial, server.data_dir().as_os_str().as_bytes()).unwrap();
        fs::rename(&partial, &report).unwrap();
        std::thread::sleep(Duration::from_secs(120));
        drop(server);
    }

    #[test]
    fn server_stops_when_its_owner_is_killed() {
        let report = std::env::temp_dir().join(unique_name("embedded-pg-owner-report"));
        let mut owner = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tests::owner_helper_process", "--nocapture"])
            .env(OWNER_REPORT_ENV, &report)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut data_dir = None;
        let reported = eventually(Duration::from_secs(30), || {
            data_dir = fs::read(&report)
                .ok()
                .map(|b| PathBuf::from(OsString::from_vec(b)));
            data_dir.is_some() || owner.try_wait().unwrap().is_some()
        });
        let _ = fs::remove_file(&report);
        let data_dir = data_dir.unwrap_or_else(|| {
            let _ = owner.kill();
            panic!("the owner process did not start a server (reported: {reported})")
        });
        let pid = postmaster_pid(&data_dir);

        owner.kill().unwrap();
        owner.wait().unwrap();
        assert!(
            eventually(Duration::from_secs(10), || processes_in(&data_dir)
                .is_empty()),
            "postmaster {pid} outlived its SIGKILLed owner"
        );
        assert!(
            eventually(Duration::from_secs(5), || !data_dir.exists()),
            "{} outlived its SIGKILLed owner",
            data_dir.display()
        );
    }

    fn signal(pid: u32, signal: &str) {
        let sent = Command::new("kill")
            .args(["-s", signal, &pid.to_string()])
            .status();
        assert!(sent.unwrap().success(), "kill -s {signal} {pid}");
    }

    /// Fields of `/proc/<pid>/stat` after the command name: state, ppid, pgrp.
    fn state_and_group(pid: &str) -> Option<(char, String)> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let mut fields = stat.rsplit_once(") ")?.1.split(' ');
        let state = fields.next()?.chars().next()?;
        Some((state, fields.nth(1)?.to_owned()))
    }

    /// The processes of process group `group` that are stopped (state `T`).
    fn stopped_in_group(group: u32) -> Vec<u32> {
        let group = group.to_string();
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let pid = entry.file_name().into_string().ok()?;
                let (state, pgrp) = state_and_group(&pid)?;
                (state == 'T' && pgrp == group).then(|| pid.parse().ok())?
            })
            .collect()
    }

    /// Runs `f` on a thread of its own and fails the test if it takes longer than `timeout`.
    fn within<T: Send + 'static>(
        timeout: Duration,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> (T, Duration) {
        let started = Instant::now();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = sender.send(f());
        });
        let result = receiver
            .recv_timeout(timeout)
            .unwrap_or_else(|e| panic!("not done within {timeout:?}: {e}"));
        (result, started.elapsed())
    }

    /// SIGSTOP, then SIGCONT, the postmaster: nothing may stay stopped, and a stop is prompt.
    fn stopped_and_continued_server_stops_promptly() {
        let server = EmbeddedPostgres::start(EmbeddedOptions::ephemeral_for_tests()).unwrap();
        let data_dir = server.data_dir().to_path_buf();
        let pid = postmaster_pid(&data_dir);
        let group = server.watchdog.as_ref().unwrap().pid;

        signal(pid, "STOP");
        assert!(eventually(Duration::from_secs(2), || {
            state_and_group(&pid.to_string()).is_some_and(|(state, _)| state == 'T')
        }));
        // Time for a wrapper such as runuser to notice and stop itself, as it would.
        std::thread::sleep(Duration::from_millis(200));
        signal(pid, "CONT");
        assert!(
            eventually(Duration::from_secs(2), || stopped_in_group(group)
                .is_empty()),
            "still stopped after SIGCONT: {:?}",
            stopped_in_group(group)
        );
        assert!(server.is_running());

        let (stopped, took) = within(Duration::from_secs(10), move || server.stop());
        stopped.unwrap();
        eprintln!("stop after SIGSTOP and SIGCONT took {took:?}");
        assert!(took < Duration::from_secs(3), "stop took {took:?}");
        assert_eq!(processes_in(&data_dir), Vec::<u32>::new());
        assert!(!data_dir.exists());
    }

    #[test]
    fn a_stopped_and_continued_server_stops_promptly() {
        stopped_and_continued_server_stops_promptly();
    }

    #[test]
    fn with_runuser_a_stopped_and_continued_server_stops_promptly() {
        if effective_uid() != Some(0) || find_system_tool("runuser").is_none() {
            return;
        }
        PREFER_RUNUSER.with(|prefer| prefer.set(true));
        assert!(matches!(
            RunAs::detect().unwrap(),
            RunAs::SystemUser {
                switcher: Switcher::Runuser(_),
                ..
            }
        ));
        stopped_and_continued_server_stops_promptly();
    }

    #[test]
    fn a_server_left_stopped_stops_promptly() {
        let server = EmbeddedPostgres::start(EmbeddedOptions::ephemeral_for_tests()).unwrap();
        let data_dir = server.data_dir().to_path_buf();
        let pid = postmaster_pid(&data_dir);
        signal(pid, "STOP");
        assert!(eventually(Duration::from_secs(2), || {
            state_and_group(&pid.to_string()).is_some_and(|(state, _)| state == 'T')
        }));

        let (stopped, took) = within(Duration::from_secs(10), move || server.stop());
        stopped.unwrap();
        eprintln!("stop of a stopped server took {took:?}");
        assert!(took < Duration::from_secs(3), "stop took {took:?}");
        assert_eq!(processes_in(&data_dir), Vec::<u32>::new());
        assert!(!data_dir.exists());
    }

    #[tokio::test]
    async fn a_killed_server_is_reported_and_restarts_on_the_same_socket() {
        let dir = ScratchDir::new("killed");
        let mut server = EmbeddedPostgres::start(dir.options()).unwrap();
        let config = server.connect_config("postgres");
        let exited = server.exited();
        assert!(server.is_running());

        signal(postmaster_pid(server.data_dir()), "KILL");
        let killed = Instant::now();
        let exit = tokio::time::timeout(Duration::from_secs(5), exited)
            .await
            .expect("no exit report within 5 s");
        let noticed = killed.elapsed();
        eprintln!("exit of a SIGKILLed server reported after {noticed:?}");
        assert!(noticed < Duration::from_secs(2), "took {noticed:?}");
        assert!(!exit.requested, "{exit}");
        assert!(
            exit.log_tail
                .contains("embedded-pg: the server was killed by signal 9"),
            "{exit}"
        );
        assert!(!server.is_running());
        // Once ended, a run reports at once.
        let again = tokio::time::timeout(Duration::from_millis(100), server.exited()).await;
        assert_eq!(again.unwrap(), exit);

        let (server, took) = within(Duration::from_secs(15), move || {
            server.restart().map(|()| server)
        });
        let server = server.unwrap();
        eprintln!("restart after SIGKILL took {took:?}");
        assert!(server.is_running());
        assert_eq!(query_i32(config, "select 6").await, 6);
        server.stop().unwrap();
    }

    #[tokio::test]
    async fn a_restart_keeps_the_data_and_the_connection_settings() {
        let mut server = EmbeddedPostgres::start(EmbeddedOptions::ephemeral_for_tests()).unwrap();
        let config = server.connect_config("postgres");
        let (client, connection) = config.connect(NoTls).await.unwrap();
        tokio::spawn(connection);
        client
            .batch_execute("create table kept (n int); insert into kept values (5)")
            .await
            .unwrap();
        drop(client);
        let exited = server.exited();
        let socket_dir = server.socket_dir.clone();

        let (server, took) = within(Duration::from_secs(15), move || {
            server.restart().map(|()| server)
        });
        let server = server.unwrap();
        eprintln!("restart of a running server took {took:?}");
        let exit = tokio::time::timeout(Duration::from_secs(1), exited)
            .await
            .expect("the restart did not end the first run");
        assert!(exit.requested, "{exit}");
        assert!(server.is_running());
        assert_eq!(server.socket_dir, socket_dir);
        assert_eq!(query_i32(config, "select n from kept").await, 5);

        let data_dir = server.data_dir().to_path_buf();
        server.stop().unwrap();
        for path in [&data_dir, &socket_dir] {
            assert!(!path.exists(), "{} survived stop", path.display());
        }
    }

    /// A handle with no server behind it, for what needs none.
    fn detached(socket_dir: &str) -> EmbeddedPostgres {
        EmbeddedPostgres {
            data_dir: PathBuf::from("/nonexistent"),
            socket_dir: PathBuf::from(socket_dir),
            log_file: PathBuf::from("/nonexistent.log"),
            ephemeral: false,
            launch: Launch {
                bin_dir: PathBuf::from("/nonexistent"),
                major: 15,
                run_as: RunAs::CurrentUser { uid: None },
                durable: false,
                max_connections: 1,
            },
            watchdog: None,
            run: Run::ended_with(ServerExit {
                requested: false,
                detail: "detached".to_owned(),
                log_tail: String::new(),
            }),
        }
    }

    #[tokio::test]
    async fn ensure_database_rejects_names_postgres_would_truncate() {
        // Validation happens before any connection, so no server is needed.
        let server = detached("/nonexistent");
        for name in ["", &"a".repeat(64), "a\0b"] {
            let err = server.ensure_database(name).await.unwrap_err();
            assert!(
                matches!(err, EmbeddedError::InvalidDatabaseName { .. }),
                "{name:?}: {err:?}"
            );
        }
    }

    #[test]
    fn connection_string_round_trips_through_the_parser() {
        assert_eq!(
            detached("/tmp/s").connection_string("app"),
            "host=/tmp/s port=5432 user=postgres dbname=app"
        );
        let odd_dir = "/tmp/o'dd dir\\x";
        let parsed: tokio_postgres::Config = detached(odd_dir)
            .connection_string("my 'db'")
            .parse()
            .unwrap();
        assert_eq!(
            parsed.get_hosts(),
            [tokio_postgres::config::Host::Unix(PathBuf::from(odd_dir))]
        );
        assert_eq!(parsed.get_dbname(), Some("my 'db'"));
        assert_eq!(parsed.get_user(), Some("postgres"));
        assert_eq!(parsed.get_ports(), [PORT]);
    }

    #[test]
    fn versions_parse_and_sort_numerically() {
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 17beta1"),
            Some(17)
        );
        assert_eq!(parse_major_version("postgres (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(parse_major_version("something else"), None);
        let mut keys = ["9.6", "15", "", "10", "@16"].map(version_key);
        keys.sort();
        assert_eq!(keys, [vec![], vec![9, 6], vec![10], vec![15], vec![16]]);
    }

    #[test]
    fn passwd_entries_are_found_by_exact_name() {
        let passwd = "postgresql:x:7:7::/:/bin/sh\npostgres:x:101:104:PostgreSQL administrator,,,:/var/lib/postgresql:/bin/bash\n";
        assert_eq!(
            find_passwd_entry(passwd, "postgres"),
            Some(PasswdEntry {
                uid: 101,
                gid: 104,
                home: PathBuf::from("/var/lib/postgresql")
            })
        );
        assert_eq!(find_passwd_entry(passwd, "nobody"), None);
    }

    #[test]
    fn identifiers_and_socket_directories_are_quoted() {
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(
            quote_socket_directory(Path::new("/tmp/a,\"b")),
            OsString::from("\"/tmp/a,\"\"b\"")
        );
    }

    #[test]
    fn lock_conflicts_are_recognised_in_the_log() {
        let log = "FATAL:  lock file \"postmaster.pid\" already exists\n\
                   HINT:  Is another postmaster (PID 4242) running in data directory \"/d\"?";
        assert_eq!(lock_conflict_pid(log), Some(4242));
        assert_eq!(lock_conflict_pid("LOG:  database system is ready"), None);
    }

    #[test]
    fn socket_paths_longer_than_sun_path_are_refused() {
        assert!(socket_path_fits(Path::new("/tmp/short")));
        let longest = format!("/{}", "d".repeat(MAX_SOCKET_PATH - SOCKET_FILE.len() - 2));
        assert!(socket_path_fits(Path::new(&longest)));
        assert!(!socket_path_fits(Path::new(&format!("{longest}d"))));
        assert!(sibling_socket_dir(Path::new(&format!("/{}", "d".repeat(100)))).is_none());
    }
}
