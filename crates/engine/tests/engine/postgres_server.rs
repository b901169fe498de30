//! A real PostgreSQL server for the integration tests of the team queue, which runs on
//! PostgreSQL.
//!
//! A mock would not do: what these tests are about is what a real server does — transactions,
//! locks, `LISTEN`/`NOTIFY`, and connections that drop when the server goes away. So
//! [`PostgresServer::start`] makes a server of its own: `initdb` into a temporary folder (user
//! `storyteller`, trust authentication, UTF-8), then `pg_ctl -w start` listening on a free port
//! of 127.0.0.1 only (never any other address) with its Unix socket in that folder too. It is
//! stopped (immediate mode) and its folder removed when dropped. [`PostgresServer::shared`] is
//! one server for the whole test binary, and [`PostgresServer::fresh_database`] gives each test
//! an empty database of its own on it, so tests do not see each other's rows.
//!
//! The binaries are `$STORYTELLER_PG_BIN` if set, else the highest version under
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package), else whatever `initdb` is on
//! `PATH`; with none, starting panics saying what to install.
//!
//! `initdb` and `postgres` refuse to run as root, so when the tests run as root (in containers)
//! every server binary runs as the `postgres` user through `runuser -u postgres --`, and the
//! temporary folder is handed to that user.
//!
//! The server is a daemon (`pg_ctl start` detaches it into a session of its own), not a child
//! process held by one tokio runtime: `#[tokio::test]` makes a runtime per test, and the shared
//! server must outlive the one of the test that happened to start it. Every command has a time
//! limit. Statics are never dropped, so for the shared server (and for any server whose test
//! process is killed) a watchdog — a small `sh` loop in a process group of its own, on Unix —
//! notices within a second that the test process is gone, stops the server (immediate mode) and
//! removes its folder. That is best effort: should the watchdog be killed too, a server is left
//! running with its folder in the temporary directory (`storyteller-pg-*`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::process::Command;

/// What the panic says when no PostgreSQL binaries are found.
const NOT_INSTALLED: &str =
    "PostgreSQL is not installed: `./run.sh test` installs it (Debian's `postgresql` package)";

/// The variable naming a folder of PostgreSQL binaries to use instead of the installed ones.
const BIN_VARIABLE: &str = "STORYTELLER_PG_BIN";

/// How long `initdb` may take (it writes and syncs a whole cluster).
const INITDB_LIMIT: Duration = Duration::from_secs(120);

/// How long `pg_ctl start -w` waits for the server to accept connections (its `-t`); the command
/// itself gets a little more.
const START_WAIT_SECS: u32 = 60;

/// How long `pg_ctl stop -w` waits for the server to be gone (its `-t`).
const STOP_WAIT_SECS: u32 = 30;

/// How long a connection, or a statement of the harness, may take.
const SQL_LIMIT: Duration = Duration::from_secs(30);

/// How many free ports starting tries when another process takes the one it picked first.
const PORT_ATTEMPTS: usize = 5;

/// The user `initdb` makes the superuser, the one every URL names.
const USER: &str = "storyteller";

/// A PostgreSQL server of its own: initdb into a temporary folder, listening on a free loopback
/// port, trust authentication for local TCP, stopped (immediate mode) and its folder removed
/// when dropped.
pub struct PostgresServer {
    /// The folder of `initdb`, `pg_ctl` and `postgres`.
    bin: PathBuf,
    /// Whether the binaries run as the `postgres` user (the tests run as root).
    as_postgres: bool,
    /// The data directory.
    data: PathBuf,
    /// The server's log (`pg_ctl -l`).
    log: PathBuf,
    /// The folder of the server's Unix socket.
    socket_dir: PathBuf,
    port: u16,
    /// The number in the next fresh database's name.
    next_database: AtomicU64,
    /// The process that stops the server and removes its folder should the test process die
    /// without dropping it (Unix only); killed on drop.
    watchdog: Mutex<Option<std::process::Child>>,
    /// Everything above lives in here; removed on drop (after the server is stopped).
    root: tempfile::TempDir,
}

impl PostgresServer {
    /// Starts one. Panics with a clear message naming what to install if no binaries are found,
    /// and with the tail of the server's log if the server does not start.
    pub async fn start() -> PostgresServer {
        let began = Instant::now();
        let bin = binaries();
        let root = tempfile::Builder::new()
            .prefix("storyteller-pg-")
            .tempdir_in(temporary_base())
            .expect("making a temporary folder for PostgreSQL");
        let as_postgres = owned_by_root(root.path());
        let data = root.path().join("data");
        let socket_dir = root.path().join("socket");
        let log = root.path().join("server.log");
        for dir in [&data, &socket_dir] {
            tokio::fs::create_dir(dir)
                .await
                .unwrap_or_else(|e| panic!("making {}: {e}", dir.display()));
        }
        tokio::fs::write(&log, b"")
            .await
            .unwrap_or_else(|e| panic!("making {}: {e}", log.display()));
        if as_postgres {
            hand_to_postgres(root.path()).await;
        }
        let mut server = PostgresServer {
            bin,
            as_postgres,
            data,
            log,
            socket_dir,
            port: 0,
            next_database: AtomicU64::new(1),
            watchdog: Mutex::new(None),
            root,
        };
        server.initdb().await;
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            let log_before = std::fs::metadata(&server.log).map_or(0, |m| m.len());
            match server.pg_ctl_start().await {
                Ok(()) => break,
                Err(failure) => {
                    let new_log = read_log_from(&server.log, log_before);
                    if !new_log.contains("Address already in use") {
                        panic!(
                            "PostgreSQL did not start on 127.0.0.1:{}: {failure}\n\
                             --- the end of {} ---\n{}",
                            server.port,
                            server.log.display(),
                            server.log_tail()
                        );
                    }
                    failures.push(format!("port {}: {failure}", server.port));
                    server.port = 0;
                }
            }
        }
        assert!(
            server.port != 0,
            "PostgreSQL found no free port on 127.0.0.1 in {PORT_ATTEMPTS} attempts:\n{}\n\
             --- the end of {} ---\n{}",
            failures.join("\n"),
            server.log.display(),
            server.log_tail()
        );
        server.spawn_watchdog();
        eprintln!(
            "postgres_server: PostgreSQL ({}) on 127.0.0.1:{} in {}, started in {:.2?}",
            server.bin.display(),
            server.port,
            server.root.path().display(),
            began.elapsed()
        );
        server
    }

    /// One server shared by every test of this binary, started on first use. It lives until the
    /// test process exits; then its watchdog stops it and removes its folder (see the module's
    /// documentation). Each test should take a [`PostgresServer::fresh_database`] of its own.
    pub async fn shared() -> &'static PostgresServer {
        static SHARED: tokio::sync::OnceCell<PostgresServer> = tokio::sync::OnceCell::const_new();
        SHARED.get_or_init(PostgresServer::start).await
    }

    /// A new, empty database on it with a unique name, and its URL
    /// `postgres://storyteller@127.0.0.1:PORT/NAME`.
    pub async fn fresh_database(&self) -> String {
        let number = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("storyteller_test_{number}");
        let client = self.connect("postgres").await;
        tokio::time::timeout(
            SQL_LIMIT,
            client.batch_execute(&format!("CREATE DATABASE \"{name}\"")),
        )
        .await
        .unwrap_or_else(|_| panic!("CREATE DATABASE {name} took over {SQL_LIMIT:?}"))
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(&name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The port, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server the hard way (`pg_ctl stop -m immediate`) — every connection drops — and
    /// starts it again on the same port and data (it recovers from its write-ahead log); returns
    /// once it accepts connections again.
    pub async fn restart(&self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Stops the server (immediate mode: every connection drops, nothing is flushed but the
    /// write-ahead log) without starting it again; [`PostgresServer::start_again`] does.
    pub async fn stop(&self) {
        let mut command = self.command("pg_ctl");
        command.arg("stop").arg("-D").arg(&self.data).args([
            "-m",
            "immediate",
            "-w",
            "-t",
            &STOP_WAIT_SECS.to_string(),
        ]);
        let limit = Duration::from_secs(u64::from(STOP_WAIT_SECS) + 10);
        if let Err(failure) = run(command, limit, "pg_ctl stop").await {
            panic!(
                "PostgreSQL on 127.0.0.1:{} did not stop: {failure}\n--- the end of {} ---\n{}",
                self.port,
                self.log.display(),
                self.log_tail()
            );
        }
    }

    /// Starts the server again after [`PostgresServer::stop`], on the same port and data;
    /// returns once it accepts connections.
    pub async fn start_again(&self) {
        if let Err(failure) = self.pg_ctl_start().await {
            panic!(
                "PostgreSQL did not start again on 127.0.0.1:{}: {failure}\n\
                 --- the end of {} ---\n{}",
                self.port,
                self.log.display(),
                self.log_tail()
            );
        }
    }

    /// A client of database `name`, its connection driven by a task on the current runtime.
    async fn connect(&self, name: &str) -> tokio_postgres::Client {
        connect(&self.url(name)).await
    }

    /// `initdb` with the C.UTF-8 locale, or with none where that locale is missing.
    async fn initdb(&self) {
        let mut failures = Vec::new();
        for locale in ["--locale=C.UTF-8", "--no-locale"] {
            let mut command = self.command("initdb");
            command.arg("-D").arg(&self.data).args([
                "-U",
                USER,
                "--auth=trust",
                "-E",
                "UTF8",
                locale,
            ]);
            match run(command, INITDB_LIMIT, "initdb").await {
                Ok(_) => return,
                Err(failure) => failures.push(format!("initdb {locale}: {failure}")),
            }
            // initdb empties the folder it failed in, but make sure before the second try.
            let _ = tokio::fs::remove_dir_all(&self.data).await;
            tokio::fs::create_dir(&self.data)
                .await
                .unwrap_or_else(|e| panic!("making {}: {e}", self.data.display()));
            if self.as_postgres {
                hand_to_postgres(&self.data).await;
            }
        }
        panic!(
            "initdb failed in {}:\n{}",
            self.data.display(),
            failures.join("\n")
        );
    }

    /// `pg_ctl start -w` on [`PostgresServer::port`]: returns once the server accepts
    /// connections, or why not.
    async fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200",
            self.port,
            self.socket_dir.display()
        );
        let mut command = self.command("pg_ctl");
        command
            .arg("start")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .arg("-o")
            .arg(options)
            .args(["-w", "-t", &START_WAIT_SECS.to_string()]);
        let limit = Duration::from_secs(u64::from(START_WAIT_SECS) + 30);
        run(command, limit, "pg_ctl start").await.map(drop)
    }

    /// A command running server binary `program`, as the `postgres` user if the tests run as
    /// root.
    fn command(&self, program: &str) -> Command {
        let binary = self
            .bin
            .join(format!("{program}{}", std::env::consts::EXE_SUFFIX));
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary);
            command
        } else {
            Command::new(binary)
        };
        // The test's own folder may be closed to the `postgres` user.
        command.current_dir(self.root.path());
        command
    }

    /// The last lines of the server's log.
    fn log_tail(&self) -> String {
        let text = read_log_from(&self.log, 0);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Starts the watchdog that stops the server and removes its folder once the test process is
    /// gone (while that folder still exists); best effort, so a failure only says so.
    #[cfg(unix)]
    fn spawn_watchdog(&self) {
        use std::os::unix::process::CommandExt;
        const SCRIPT: &str = r#"
            pid=$1 pg_ctl=$2 data=$3 root=$4 as_postgres=$5
            while kill -0 "$pid" 2>/dev/null && [ -d "$data" ]; do sleep 1; done
            if [ -d "$data" ]; then
                if [ "$as_postgres" = 1 ]; then
                    runuser -u postgres -- "$pg_ctl" stop -D "$data" -m immediate -w -t 30
                else
                    "$pg_ctl" stop -D "$data" -m immediate -w -t 30
                fi
                rm -rf "$root"
            fi
        "#;
        let spawned = std::process::Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("storyteller-pg-watchdog")
            .arg(std::process::id().to_string())
            .arg(self.bin.join("pg_ctl"))
            .arg(&self.data)
            .arg(self.root.path())
            .arg(if self.as_postgres { "1" } else { "0" })
            .current_dir(self.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of the test's process group, so that Ctrl-C of the tests does not end it too.
            .process_group(0)
            .spawn();
        match spawned {
            Ok(child) => *self.watchdog.lock().unwrap_or_else(|e| e.into_inner()) = Some(child),
            Err(e) => eprintln!(
                "postgres_server: no watchdog for the server in {} ({e}); should the tests be \
                 killed, it keeps running",
                self.root.path().display()
            ),
        }
    }

    #[cfg(not(unix))]
    fn spawn_watchdog(&self) {}
}

impl Drop for PostgresServer {
    /// Stops the server (immediate mode) and removes its folder. `Drop` cannot wait
    /// asynchronously, so on a multi-threaded runtime the stop runs in `block_in_place`; it is
    /// quick (a tenth of a second) and bounded by `pg_ctl -t`.
    fn drop(&mut self) {
        let watchdog = self
            .watchdog
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut watchdog) = watchdog {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let binary = self
            .bin
            .join(format!("pg_ctl{}", std::env::consts::EXE_SUFFIX));
        let mut command = if self.as_postgres {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(binary);
            command
        } else {
            std::process::Command::new(binary)
        };
        command
            .arg("stop")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "-t", "10"])
            .current_dir(self.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // It fails harmlessly when the server is stopped already.
        let mut stop = || drop(command.status());
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(stop)
            }
            _ => stop(),
        }
        // The `TempDir` removes the folder as the fields drop.
    }
}

/// A client of `url`, its connection driven by a task on the current runtime; panics if it
/// cannot connect within [`SQL_LIMIT`].
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio::time::timeout(
        SQL_LIMIT,
        tokio_postgres::connect(url, tokio_postgres::NoTls),
    )
    .await
    .unwrap_or_else(|_| panic!("connecting to {url} took over {SQL_LIMIT:?}"))
    .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    tokio::spawn(async move {
        // Ends with an error when the server goes away; the client's calls say so.
        let _ = connection.await;
    });
    client
}

/// Runs `command` to its end within `limit`: its output, or why it failed (with that output).
async fn run(mut command: Command, limit: Duration, what: &str) -> Result<String, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(limit, command.output()).await {
        Err(_) => return Err(format!("{what} did not finish within {limit:?}")),
        Ok(Err(e)) => return Err(format!("{what} could not be run: {e}")),
        Ok(Ok(output)) => output,
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "{what} failed ({}):\n{}",
            output.status,
            text.trim_end()
        ))
    }
}

/// The folder of the PostgreSQL binaries: `$STORYTELLER_PG_BIN`, else the highest version under
/// `/usr/lib/postgresql/*/bin`, else that of the `initdb` on `PATH`.
fn binaries() -> PathBuf {
    let initdb = format!("initdb{}", std::env::consts::EXE_SUFFIX);
    if let Some(bin) = std::env::var_os(BIN_VARIABLE).filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.join(&initdb).is_file(),
            "${BIN_VARIABLE} is {}, which holds no `{initdb}`. {NOT_INSTALLED}",
            bin.display()
        );
        return bin;
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|part| part.parse::<u32>().ok())
                .collect::<Option<Vec<u32>>>()?;
            let bin = entry.path().join("bin");
            bin.join(&initdb).is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&initdb))
        .find(|path| path.is_file())
        // Through symbolic links (Homebrew's), to where `pg_ctl` and `postgres` are too.
        .and_then(|path| path.canonicalize().ok())
        .and_then(|path| path.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| panic!("{NOT_INSTALLED} (no `{initdb}` found)"))
}

/// Where the temporary folder goes: the system's temporary directory, or `/tmp` if the
/// `postgres` user could not get into that one (when the tests run as root).
fn temporary_base() -> PathBuf {
    let base = std::env::temp_dir();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let open_to_all = base
            .ancestors()
            .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
        if !open_to_all {
            return PathBuf::from("/tmp");
        }
    }
    base
}

/// Whether `path` (a folder this process just made) belongs to root, that is, whether the
/// tests run as root.
#[cfg(unix)]
fn owned_by_root(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .uid()
        == 0
}

#[cfg(not(unix))]
fn owned_by_root(_path: &Path) -> bool {
    false
}

/// Gives `path` and everything in it to the `postgres` user.
async fn hand_to_postgres(path: &Path) {
    let mut command = Command::new("chown");
    command.args(["-R", "postgres:postgres"]).arg(path);
    if let Err(failure) = run(command, SQL_LIMIT, "chown").await {
        panic!(
            "handing {} to the `postgres` user, as the tests run as root: {failure}",
            path.display()
        );
    }
}

/// A port of 127.0.0.1 free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .expect("binding a free port of 127.0.0.1")
        .port()
}

/// The server's log from byte `from` on (lossily decoded).
fn read_log_from(log: &Path, from: u64) -> String {
    let bytes = std::fs::read(log).unwrap_or_default();
    let from = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
    String::from_utf8_lossy(&bytes[from..]).into_owned()
}

// The harness's own tests.

/// `SELECT 1` on `client`, or the error.
async fn select_one(client: &tokio_postgres::Client) -> Result<i32, tokio_postgres::Error> {
    tokio::time::timeout(SQL_LIMIT, client.query_one("SELECT 1", &[]))
        .await
        .expect("SELECT 1 took too long")
        .map(|row| row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_shared_gives_distinct_fresh_databases() {
    let server = PostgresServer::shared().await;
    let first = server.fresh_database().await;
    let second = server.fresh_database().await;
    assert_ne!(first, second);
    for url in [&first, &second] {
        assert!(url.starts_with(&format!(
            "postgres://storyteller@127.0.0.1:{}/",
            server.port()
        )));
        let client = connect(url).await;
        assert_eq!(select_one(&client).await.unwrap(), 1);
        let row = client
            .query_one(
                "SELECT current_database(), \
                 (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')",
                &[],
            )
            .await
            .unwrap();
        let name: String = row.get(0);
        assert_eq!(server.url(&name), *url);
        assert_eq!(row.get::<_, i64>(1), 0, "a fresh database is empty");
    }
}

/// A second test on the shared server, in a runtime of its own: the server outlives the runtime
/// of whichever test started it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_shared_survives_runtimes() {
    let server = PostgresServer::shared().await;
    assert!(std::ptr::eq(server, PostgresServer::shared().await));
    let client = connect(&server.fresh_database().await).await;
    client
        .batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (7);")
        .await
        .unwrap();
    let row = client.query_one("SELECT x FROM t", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_restart_drops_connections() {
    let server = PostgresServer::start().await;
    let url = server.fresh_database().await;
    let old = connect(&url).await;
    old.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1);")
        .await
        .unwrap();
    let port = server.port();

    server.restart().await;

    assert_eq!(server.port(), port);
    assert!(
        select_one(&old).await.is_err(),
        "a connection from before the restart is gone"
    );
    let new = connect(&url).await;
    assert_eq!(select_one(&new).await.unwrap(), 1);
    let row = new.query_one("SELECT x FROM t", &[]).await.unwrap();
    assert_eq!(
        row.get::<_, i32>(0),
        1,
        "committed rows survive the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server_stop_then_start_again() {
    let server = PostgresServer::start().await;
    let url = server.fresh_database().await;
    let before = connect(&url).await;
    assert_eq!(select_one(&before).await.unwrap(), 1);

    server.stop().await;
    assert!(select_one(&before).await.is_err());
    let refused = tokio::time::timeout(
        SQL_LIMIT,
        tokio_postgres::connect(&url, tokio_postgres::NoTls),
    )
    .await
    .expect("a refused connection is quick");
    assert!(
        refused.is_err(),
        "nothing accepts connections while stopped"
    );

    server.start_again().await;
    let after = connect(&url).await;
    assert_eq!(select_one(&after).await.unwrap(), 1);

    let root = server.root.path().to_path_buf();
    drop(server);
    assert!(!root.exists(), "dropping the server removes its folder");
}

/// Runs `sql` on the database at `url`, as an operator would (settings, the tests' clock).
pub async fn execute(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connecting to the test server");
    let connection = tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .expect("running SQL on the test server");
    drop(client);
    let _ = connection.await;
}
