//! What a window test needs: the built `storyteller-desktop`, a display, `tauri-driver`, a private
//! D-Bus session bus, a temporary home and videos, and a WebDriver session on the real window,
//! with deadlines on every wait and a screenshot whenever something is not as it should be.

use fantoccini::wd::TimeoutConfiguration;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long the window may take to open and paint its first list.
pub const OPEN_DEADLINE: Duration = Duration::from_secs(60);

/// How long a few short videos may take to be told.
pub const STORY_DEADLINE: Duration = Duration::from_secs(120);

/// How long the page may take to reflect something it was just told or shown.
pub const UI_DEADLINE: Duration = Duration::from_secs(15);

/// How long after the session is asked for the app's process must be there.
const APP_START_GRACE: Duration = Duration::from_secs(10);

/// How often a wait looks again.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// Set to `1` to skip these tests where no display can be had; they never skip silently.
const SKIP_VARIABLE: &str = "STORYTELLER_SKIP_WINDOW_TESTS";

/// Two windows (each with its web processes) and ffmpeg at once overload a two-core machine,
/// and timing-sensitive scenarios (a job caught while running) then fail for no reason of theirs.
static ONE_WINDOW_AT_A_TIME: Mutex<()> = Mutex::new(());

fn workspace() -> PathBuf {
    // Cargo's run-time value first: a test binary built from another checkout sharing this
    // target folder keeps that checkout's path in the compile-time one.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("the e2e package lives inside the workspace")
        .to_path_buf()
}

pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => workspace().join(dir),
        None => workspace().join("target"),
    }
}

/// Where screenshots go, for people to look at after a run.
pub fn screenshot_dir() -> PathBuf {
    target_dir().join("screenshots")
}

/// The desktop binary: `cargo test` builds only this package, so it must have been built before.
pub fn app_binary() -> PathBuf {
    // The benchmark may measure a release build; the tests use the debug one.
    let profile = std::env::var("STORYTELLER_APP_PROFILE").unwrap_or_else(|_| "debug".into());
    let bin = target_dir().join(profile).join("storyteller-desktop");
    assert!(
        bin.is_file(),
        "the desktop app is not built ({} is missing): run `cargo build -p storyteller-desktop` \
         before these tests",
        bin.display()
    );
    bin
}

fn tauri_driver() -> PathBuf {
    let in_cargo_bin = std::env::var_os("HOME")
        .map(|home| Path::new(&home).join(".cargo/bin/tauri-driver"))
        .filter(|path| path.is_file());
    let on_path = || {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("tauri-driver"))
                .find(|path| path.is_file())
        })
    };
    in_cargo_bin.or_else(on_path).unwrap_or_else(|| {
        panic!(
            "tauri-driver is not installed: run `cargo install tauri-driver --locked --version 2.1.0`"
        )
    })
}

/// Whether a window can be opened here. Without a display the test fails, unless it was told to
/// skip, and then it says so.
fn display_available(test: &str) -> bool {
    if std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty()) {
        return true;
    }
    if std::env::var(SKIP_VARIABLE).is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED {test}: no DISPLAY to open the window on, and {SKIP_VARIABLE}=1");
        return false;
    }
    panic!(
        "{test} opens the real window and needs a display, but DISPLAY is not set: run the tests \
         under `xvfb-run -a -s '-screen 0 1280x800x24' cargo test …`, or set {SKIP_VARIABLE}=1 \
         to skip them"
    );
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("finding a free port")
        .port()
}

fn accepts_connections(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok()
}

/// Sends `signal` by pid with the `kill` command (the workspace forbids `unsafe`, so no libc).
fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn wait_for_exit(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if start.elapsed() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let Ok(file) = File::open(path) else {
        return String::from("(no log)");
    };
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A D-Bus session bus of the test's own. The single-instance plugin finds the first window
/// through the session bus: without one every launch would open its own window, and on a
/// desktop the user's own Storyteller would take the test's launches over.
struct PrivateBus {
    daemon: Child,
    address: String,
}

impl PrivateBus {
    fn start(dir: &Path) -> Self {
        let address = format!("unix:path={}", dir.join("bus").display());
        // No service folders: nothing on the machine (a notification daemon, the accessibility
        // bus) is started on the test's behalf and outlives it.
        let config = dir.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>{address}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#
            ),
        )
        .expect("writing the bus configuration");
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("could not start dbus-daemon (Debian package `dbus-daemon`): {e}")
            });
        // The daemon prints its address once it listens: that line is the sign it is ready.
        let mut stdout = daemon.stdout.take().expect("dbus-daemon's stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut byte = [0u8; 1];
            while stdout.read(&mut byte).is_ok_and(|n| n == 1) && byte[0] != b'\n' {
                line.push(char::from(byte[0]));
            }
            let _ = ready_tx.send(line);
        });
        let printed = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        assert!(
            printed.starts_with("unix:"),
            "dbus-daemon did not start listening on {address} within 10 s (it printed {printed:?})"
        );
        Self { daemon, address }
    }
}

impl PrivateBus {
    /// The well-known names owned on the bus (unique `:1.n` names left out).
    fn names(&self) -> Vec<String> {
        let reply = Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args([
                "--dest=org.freedesktop.DBus",
                "--type=method_call",
                "--print-reply",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.ListNames",
            ])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("dbus-send (Debian package `dbus-bin`) must be installed");
        String::from_utf8_lossy(&reply.stdout)
            .lines()
            .filter_map(|line| line.trim().strip_prefix("string \""))
            .filter_map(|name| name.strip_suffix('"'))
            .filter(|name| !name.starts_with(':') && *name != "org.freedesktop.DBus")
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// One test's world: its home, its videos, its display settings and bus, and the lock that
/// keeps other window tests from running beside it.
pub struct Desktop {
    name: String,
    root: tempfile::TempDir,
    bus: PrivateBus,
    /// What the app's environment has beside the test's own (a service's address, a key).
    extra_env: std::sync::Mutex<Vec<(String, String)>>,
    _alone: MutexGuard<'static, ()>,
}

impl Desktop {
    /// A fresh world for the test called `name`, or `None` when window tests are to be skipped.
    pub fn new(name: &str) -> Option<Self> {
        if !display_available(name) {
            return None;
        }
        let alone = ONE_WINDOW_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let root = tempfile::Builder::new()
            .prefix("storyteller-window-")
            .tempdir()
            .expect("creating a temporary folder");
        for dir in [
            "home",
            "videos",
            "logs",
            "xdg/data",
            "xdg/config",
            "xdg/cache",
        ] {
            std::fs::create_dir_all(root.path().join(dir)).expect("creating a test folder");
        }
        let runtime = root.path().join("xdg/runtime");
        std::fs::create_dir_all(&runtime).expect("creating the runtime folder");
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .expect("making the runtime folder private");
        let bus = PrivateBus::start(&runtime);
        Some(Self {
            name: name.to_owned(),
            root,
            bus,
            extra_env: std::sync::Mutex::new(Vec::new()),
            _alone: alone,
        })
    }

    /// The app's home (`--home`).
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// Where this test's videos are made.
    pub fn videos(&self) -> PathBuf {
        self.root.path().join("videos")
    }

    /// A scratch folder for files the test writes (exports).
    pub fn scratch(&self) -> PathBuf {
        self.root.path().to_path_buf()
    }

    fn logs(&self) -> PathBuf {
        self.root.path().join("logs")
    }

    /// The environment every process of the app gets: the test's bus, and XDG folders of its
    /// own, so the web view's storage never carries over from a user's session or another test.
    /// Sets `name` to `value` in the app's environment from its next start on.
    pub fn set_env(&self, name: &str, value: &str) {
        let mut extra = self.extra_env.lock().unwrap_or_else(|p| p.into_inner());
        extra.retain(|(n, _)| n != name);
        extra.push((name.to_owned(), value.to_owned()));
    }

    fn environment(&self, command: &mut Command) {
        let xdg = self.root.path().join("xdg");
        command
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
            .env("XDG_DATA_HOME", xdg.join("data"))
            .env("XDG_CONFIG_HOME", xdg.join("config"))
            .env("XDG_CACHE_HOME", xdg.join("cache"))
            .env("XDG_RUNTIME_DIR", xdg.join("runtime"))
            // Without it GTK looks for an accessibility bus that no test session has.
            .env("NO_AT_BRIDGE", "1")
            .env("NO_COLOR", "1")
            .env_remove("STORYTELLER_HOME")
            .env_remove("RUST_LOG")
            .env_remove("GEMINI_API_KEY")
            .env_remove("OPENAI_API_KEY");
        let extra = self.extra_env.lock().unwrap_or_else(|p| p.into_inner());
        command.envs(extra.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    }

    /// Makes a real video called `file` with ffmpeg.
    pub fn video(&self, file: &str, clip: Clip) -> PathBuf {
        let path = self.videos().join(file);
        let separator = if clip.source.contains('=') { ':' } else { '=' };
        let picture = format!(
            "{}{separator}size={}x{}:rate=25",
            clip.source, clip.width, clip.height
        );
        let sound = format!("sine=frequency={}:sample_rate=44100", clip.tone);
        let out = Command::new("ffmpeg")
            .args(["-y", "-hide_banner", "-loglevel", "error", "-nostdin"])
            .args(["-f", "lavfi", "-i", &picture])
            .args(["-f", "lavfi", "-i", &sound])
            .args(["-t", &clip.seconds.to_string()])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-c:a", "aac", "-shortest"])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .expect("ffmpeg must be installed to run the window tests");
        assert!(
            out.status.success(),
            "ffmpeg could not make {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        path
    }

    /// A video cut off halfway: it looks like a video when added and fails in its job.
    pub fn broken_video(&self, file: &str) -> PathBuf {
        let whole = self.video(&format!("whole-{file}"), Clip::short("rgbtestsrc", 660));
        let bytes = std::fs::read(&whole).expect("reading the whole video");
        std::fs::remove_file(&whole).expect("removing the whole video");
        let path = self.videos().join(file);
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("writing the cut video");
        path
    }

    /// Starts the app under `tauri-driver` and opens a WebDriver session on its window.
    pub async fn open(&self) -> Window<'_> {
        let application = app_binary();
        let alone = tokio::task::block_in_place(|| self.wait_until_no_app(Duration::from_secs(20)));
        assert!(
            alone,
            "an app still runs on the home or holds the single-instance name, so a new one would \
             hand over to it: processes {:?}, names {:?}",
            self.app_processes(),
            self.instance_names()
        );
        let driver = Driver::start(self);
        let capabilities = json!({
            "tauri:options": {
                "application": application,
                "args": ["--home", self.home()],
            }
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let url = format!("http://127.0.0.1:{}", driver.port);
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(capabilities);
        let connecting = builder.connect(&url);
        tokio::pin!(connecting);
        // WebKitWebDriver waits for ever on an app that exits while starting (one that handed
        // over to another instance, or crashed): watching the app turns that into a failure
        // that says so. It may exit before it is ever seen, hence the grace period.
        let start = Instant::now();
        let mut seen = false;
        let connected = loop {
            tokio::select! {
                connected = &mut connecting => break connected,
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
            let running = !self.app_processes().is_empty();
            seen |= running;
            if !running && (seen || start.elapsed() > APP_START_GRACE) {
                panic!(
                    "the app exited while its window was opening, or never started \
                     (single-instance names on the bus: {:?})\n\
                     --- tauri-driver and app log ---\n{}",
                    self.instance_names(),
                    tail(&driver.log, 60)
                );
            }
            assert!(
                start.elapsed() < OPEN_DEADLINE,
                "the app's window did not open within {OPEN_DEADLINE:?} (app processes: {:?}, \
                 single-instance names on the bus: {:?})\n--- tauri-driver and app log ---\n{}",
                self.app_processes(),
                self.instance_names(),
                tail(&driver.log, 60)
            );
        };
        let client = match connected {
            Ok(client) => client,
            Err(error) => panic!(
                "no WebDriver session on the app: {error}\n--- tauri-driver and app log ---\n{}",
                tail(&driver.log, 60)
            ),
        };
        client
            .update_timeouts(TimeoutConfiguration::new(
                Some(Duration::from_secs(60)),
                Some(Duration::from_secs(60)),
                Some(Duration::ZERO),
            ))
            .await
            .expect("setting the WebDriver timeouts");
        Window {
            desktop: self,
            client: Some(client),
            driver,
        }
    }

    /// Runs the app binary directly (as a person starting it a second time would) and waits
    /// up to `deadline` for it to exit: its exit status, or `None` if it is still running (then
    /// it has been stopped).
    pub fn launch_again(&self, deadline: Duration) -> (Option<ExitStatus>, String) {
        let log = self.logs().join("second-launch.log");
        let output = File::create(&log).expect("creating the log");
        let mut command = Command::new(app_binary());
        command
            .arg("--home")
            .arg(self.home())
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log"))
            .stderr(output);
        self.environment(&mut command);
        let mut child = command.spawn().expect("starting the app a second time");
        let status = wait_for_exit(&mut child, deadline);
        if status.is_none() {
            send_signal(child.id(), "TERM");
            if wait_for_exit(&mut child, Duration::from_secs(5)).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        (status, tail(&log, 40))
    }

    /// Starts `program ARGS…` with this test's display, bus and folders (the benchmark's
    /// launches outside WebDriver); its output goes to a log named after it.
    #[allow(dead_code)]
    pub fn spawn(&self, program: &Path, args: &[&std::ffi::OsStr]) -> Child {
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let log = self
            .logs()
            .join(format!("{}.log", name.unwrap_or_else(|| "program".into())));
        let output = File::create(&log).expect("creating the log");
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log"))
            .stderr(output);
        self.environment(&mut command);
        command.spawn().expect("starting a program")
    }

    /// Starts a real notification server (dunst) on the test's bus and display; what it was
    /// sent is read back with [`Desktop::notifications`].
    #[allow(dead_code)]
    pub fn start_notification_server(&self) -> Child {
        let server = self.spawn(Path::new("dunst"), &[]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self
            .bus
            .names()
            .iter()
            .any(|n| n == "org.freedesktop.Notifications")
        {
            assert!(
                Instant::now() < deadline,
                "dunst did not take the notification name on the test's bus within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The summaries and bodies of the notifications the server received (`dunstctl history`).
    #[allow(dead_code)]
    pub fn notifications(&self) -> String {
        let out = Command::new("dunstctl")
            .arg("history")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
            .output()
            .expect("running dunstctl (Debian package `dunst`)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pids of this test's running app processes (those started on its home).
    pub fn app_processes(&self) -> Vec<u32> {
        let home = self.home().into_os_string().into_encoded_bytes();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                    return false;
                };
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                let is_app = args
                    .first()
                    .is_some_and(|program| program.ends_with(b"storyteller-desktop"));
                let on_our_home = args
                    .windows(2)
                    .any(|pair| pair[0] == b"--home" && pair[1] == home.as_slice());
                // A zombie keeps its cmdline until reaped but holds nothing any more.
                let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .and_then(|stat| {
                        let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
                        Some(state != 'Z')
                    })
                    .unwrap_or(false);
                is_app && on_our_home && alive
            })
            .collect()
    }

    /// The single-instance names owned on the test's bus: while one is, a new launch hands
    /// over to its owner and exits.
    pub fn instance_names(&self) -> Vec<String> {
        self.bus
            .names()
            .into_iter()
            .filter(|name| name.contains("SingleInstance"))
            .collect()
    }

    /// Waits until no app runs on this home and none holds the single-instance name; whether
    /// that happened within `deadline`. The bus releases an exited app's name a little later
    /// (up to a few hundred milliseconds), and a launch in that moment hands over to the dead
    /// app and exits.
    fn wait_until_no_app(&self, deadline: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if self.app_processes().is_empty() && self.instance_names().is_empty() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn stop_leftover_apps(&self) {
        for pid in self.app_processes() {
            send_signal(pid, "TERM");
        }
        if !self.wait_until_no_app(Duration::from_secs(5)) {
            for pid in self.app_processes() {
                send_signal(pid, "KILL");
            }
        }
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop_leftover_apps();
    }
}

/// How a generated video looks, sounds and lasts.
#[derive(Clone, Copy, Debug)]
pub struct Clip {
    /// An ffmpeg lavfi source that takes `size` and `rate` (`testsrc2`, `color=c=navy`, …).
    pub source: &'static str,
    /// The sine tone's pitch, which also keeps clips of the same picture apart.
    pub tone: u32,
    /// Length in seconds.
    pub seconds: u32,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
}

impl Clip {
    /// Four seconds at 320×240.
    pub const fn short(source: &'static str, tone: u32) -> Self {
        Self {
            source,
            tone,
            seconds: 4,
            width: 320,
            height: 240,
        }
    }
}

/// `tauri-driver` on two free ports, its output (and the app's) going to a log file.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    fn start(desktop: &Desktop) -> Self {
        let port = free_port();
        let native_port = loop {
            let candidate = free_port();
            if candidate != port {
                break candidate;
            }
        };
        let log = desktop.logs().join(format!("tauri-driver-{port}.log"));
        let output = File::create(&log).expect("creating the tauri-driver log");
        let mut command = Command::new(tauri_driver());
        command
            .args(["--port", &port.to_string()])
            .args(["--native-port", &native_port.to_string()])
            .current_dir(desktop.scratch())
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("log"))
            .stderr(output);
        desktop.environment(&mut command);
        let child = command.spawn().expect("starting tauri-driver");
        let mut driver = Self { child, port, log };
        let start = Instant::now();
        while !(accepts_connections(port) && accepts_connections(native_port)) {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!(
                    "tauri-driver exited ({status}) before accepting connections:\n{}",
                    tail(&driver.log, 40)
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "tauri-driver did not accept connections on ports {port} and {native_port} \
                 within 20 s:\n{}",
                tail(&driver.log, 40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: tauri-driver then stops WebKitWebDriver, which SIGKILL orphans.
        send_signal(self.child.id(), "TERM");
        if wait_for_exit(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One row of `#queue`, as the page shows it.
#[derive(Clone, Debug)]
pub struct Row {
    /// `data-job-id`.
    pub id: String,
    /// `data-state`.
    pub state: String,
    /// The text of `.file`.
    pub file: String,
    /// The text of `.error`, when the row has one.
    pub error: Option<String>,
    /// Whether it takes up room on the page (not hidden by a filter).
    pub visible: bool,
    /// `aria-selected="true"`.
    pub selected: bool,
}

impl Row {
    fn from_json(value: &Value) -> Self {
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        Self {
            id: text("id"),
            state: text("state"),
            file: text("file"),
            error: value["error"].as_str().map(str::to_owned),
            visible: value["visible"].as_bool().unwrap_or(false),
            selected: value["selected"].as_bool().unwrap_or(false),
        }
    }
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} [{}] id={}{}{}{}",
            self.file,
            self.state,
            self.id,
            if self.visible { "" } else { " hidden" },
            if self.selected { " selected" } else { "" },
            self.error
                .as_deref()
                .map(|e| format!(" error={e:?}"))
                .unwrap_or_default()
        )
    }
}

/// Renders rows one a line, for failure messages.
pub fn describe(rows: &[Row]) -> String {
    if rows.is_empty() {
        return String::from("(no rows)");
    }
    rows.iter()
        .map(|row| format!("  {row}"))
        .collect::<Vec<_>>()
        .join("\n")
}

const ROWS_SCRIPT: &str = r#"
return [...document.querySelectorAll('#queue [data-job-id]')].map((row) => {
  const style = getComputedStyle(row);
  const error = row.querySelector('.error');
  return {
    id: row.getAttribute('data-job-id'),
    state: row.getAttribute('data-state'),
    file: (row.querySelector('.file')?.textContent ?? '').trim(),
    error: error ? error.textContent.trim() : null,
    visible: !row.hidden && row.getClientRects().length > 0
      && style.visibility !== 'hidden' && style.display !== 'none',
    selected: row.getAttribute('aria-selected') === 'true',
  };
});
"#;

const INVOKE_SCRIPT: &str = r#"
const [command, args, done] = arguments;
window.__TAURI_INTERNALS__.invoke(command, args).then(
  (value) => done({ ok: value === undefined ? null : value }),
  (error) => done({ error: error ?? null }),
);
"#;

const PAGE_SCRIPT: &str = r#"
const text = (selector) => document.querySelector(selector)?.innerText ?? null;
return {
  title: document.title,
  url: location.href,
  ready: document.documentElement.getAttribute('data-ready'),
  queue: text('#queue'),
  status: text('#status'),
  search: document.querySelector('#search')?.value ?? null,
  body: (document.body?.innerText ?? '').slice(0, 2000),
};
"#;

/// A WebDriver session on the app's window.
pub struct Window<'a> {
    desktop: &'a Desktop,
    client: Option<Client>,
    driver: Driver,
}

impl Window<'_> {
    fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the session is open until the window is closed")
    }

    /// Fails the test: says `why`, shows what the page shows, saves a screenshot and the log.
    pub async fn fail(&self, why: impl std::fmt::Display) -> ! {
        let page = self
            .client()
            .execute(PAGE_SCRIPT, Vec::new())
            .await
            .unwrap_or_else(|e| json!({ "unreadable": e.to_string() }));
        let rows = self.rows_or_nothing().await;
        let shot = format!("{}-failure.png", self.desktop.name);
        let saved = self.save_screenshot(&shot).await;
        panic!(
            "{why}\n--- rows ---\n{}\n--- #queue text ---\n{}\n--- #status ---\n{}\n\
             --- page ---\ntitle={} url={} data-ready={} #search={}\n{}\n\
             --- screenshot ---\n{saved}\n\
             --- tauri-driver and app log (end) ---\n{}",
            describe(&rows),
            page["queue"].as_str().unwrap_or("(no #queue)"),
            page["status"].as_str().unwrap_or("(no #status)"),
            page["title"],
            page["url"],
            page["ready"],
            page["search"],
            page["body"].as_str().unwrap_or_default(),
            tail(&self.driver.log, 40),
        );
    }

    /// Saves the WebDriver screenshot (the web view) as `file_name` in the screenshot folder;
    /// where it went, or why it could not be taken.
    pub async fn save_screenshot(&self, file_name: &str) -> String {
        // The WebDriver screenshot is the last frame painted, which can lag the DOM just
        // changed: two animation frames later the change is on screen.
        let _ = self
            .client()
            .execute_async(
                "const done = arguments[0];
                 requestAnimationFrame(() => requestAnimationFrame(() => done(null)));",
                Vec::new(),
            )
            .await;
        let path = screenshot_dir().join(file_name);
        match self.client().screenshot().await {
            Ok(png) => match std::fs::create_dir_all(screenshot_dir())
                .and_then(|()| std::fs::write(&path, png))
            {
                Ok(()) => path.display().to_string(),
                Err(e) => format!("could not write {}: {e}", path.display()),
            },
            Err(e) => format!("could not take a screenshot: {e}"),
        }
    }

    /// Calls one of the app's commands from the page, as the UI does: its answer, or the error
    /// it rejected with.
    pub async fn invoke(&self, command: &str, args: Value) -> Result<Value, Value> {
        let answer = self
            .client()
            .execute_async(INVOKE_SCRIPT, vec![json!(command), args])
            .await;
        match answer {
            Ok(Value::Object(mut answer)) if answer.contains_key("ok") => {
                Ok(answer.remove("ok").unwrap_or(Value::Null))
            }
            Ok(Value::Object(mut answer)) if answer.contains_key("error") => {
                Err(answer.remove("error").unwrap_or(Value::Null))
            }
            Ok(other) => self.fail(format!("`{command}` answered {other}")).await,
            Err(e) => {
                self.fail(format!("could not call `{command}` from the page: {e}"))
                    .await
            }
        }
    }

    /// [`Window::invoke`] that must succeed.
    pub async fn call(&self, command: &str, args: Value) -> Value {
        match self.invoke(command, args.clone()).await {
            Ok(value) => value,
            Err(error) => {
                self.fail(format!("`{command}` with {args} failed: {error}"))
                    .await
            }
        }
    }

    /// Runs `script` (a function body) in the page.
    pub async fn script(&self, script: &str, args: Vec<Value>) -> Value {
        match self.client().execute(script, args).await {
            Ok(value) => value,
            Err(e) => self.fail(format!("a script failed in the page: {e}")).await,
        }
    }

    async fn rows_or_nothing(&self) -> Vec<Row> {
        match self.client().execute(ROWS_SCRIPT, Vec::new()).await {
            Ok(Value::Array(rows)) => rows.iter().map(Row::from_json).collect(),
            _ => Vec::new(),
        }
    }

    /// The rows of `#queue`.
    pub async fn rows(&self) -> Vec<Row> {
        match self.script(ROWS_SCRIPT, Vec::new()).await {
            Value::Array(rows) => rows.iter().map(Row::from_json).collect(),
            other => self.fail(format!("the rows script answered {other}")).await,
        }
    }

    /// Polls the rows until `done` holds; fails the test after `deadline`. `done` may also
    /// answer `Err` to fail at once, when what it sees can never turn right.
    pub async fn wait_for_rows(
        &self,
        what: &str,
        deadline: Duration,
        mut done: impl FnMut(&[Row]) -> Result<bool, String>,
    ) -> Vec<Row> {
        let start = Instant::now();
        loop {
            let rows = self.rows().await;
            match done(&rows) {
                Ok(true) => return rows,
                Ok(false) => {}
                Err(why) => self.fail(format!("while waiting for {what}: {why}")).await,
            }
            if start.elapsed() > deadline {
                self.fail(format!("waited {deadline:?} for {what}")).await;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// Polls `script` (a function body) until it answers something other than `null` or
    /// `false`, and returns that; fails the test after `deadline`.
    pub async fn wait_for_script(&self, what: &str, deadline: Duration, script: &str) -> Value {
        let start = Instant::now();
        loop {
            match self.client().execute(script, Vec::new()).await {
                Ok(Value::Null | Value::Bool(false)) => {}
                Ok(value) => return value,
                Err(e) => self.fail(format!("while waiting for {what}: {e}")).await,
            }
            if start.elapsed() > deadline {
                self.fail(format!("waited {deadline:?} for {what}")).await;
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// From now on, counts the commands the page calls, as they cross to the app (Tauri sends
    /// each as a request to its `ipc:` protocol, named by its path). The test's own calls
    /// through [`Window::invoke`] cross the same way and are counted too.
    pub async fn count_commands(&self) {
        self.script(
            "window.__storytellerCalls = {};
             const count = (url) => {
               const match = /^(?:ipc:\\/\\/localhost|http:\\/\\/ipc\\.localhost)\\/([^?#]+)/
                 .exec(String(url));
               if (!match) return;
               const command = decodeURIComponent(match[1]);
               window.__storytellerCalls[command] = (window.__storytellerCalls[command] ?? 0) + 1;
             };
             const fetch = window.fetch.bind(window);
             window.fetch = (input, ...rest) => {
               count(typeof input === 'string' ? input : (input?.url ?? input));
               return fetch(input, ...rest);
             };
             return true;",
            Vec::new(),
        )
        .await;
    }

    /// The commands the page called since [`Window::count_commands`], with how many times.
    pub async fn commands_called(&self) -> std::collections::BTreeMap<String, u64> {
        let counts = self
            .script("return window.__storytellerCalls ?? null;", Vec::new())
            .await;
        match serde_json::from_value(counts.clone()) {
            Ok(counts) => counts,
            Err(_) => {
                self.fail(format!("no command counts in the page: {counts}"))
                    .await
            }
        }
    }

    /// Waits for `<html data-ready="true">`: the first list has been painted.
    pub async fn wait_until_ready(&self) {
        self.wait_for_script(
            "the first list to be painted (<html data-ready=\"true\">)",
            OPEN_DEADLINE,
            "return document.documentElement.getAttribute('data-ready') === 'true';",
        )
        .await;
    }

    /// Clicks the first element matching `selector`, scrolled to the middle of its scrolling
    /// box first, as a person would bring it into view (not to an edge, where a dialog's
    /// sticky buttons may cover it).
    pub async fn click(&self, selector: &str) {
        let _ = self
            .client()
            .execute(
                "document.querySelector(arguments[0])?.scrollIntoView({ block: 'center' });",
                vec![serde_json::json!(selector)],
            )
            .await;
        let element = match self.client().find(Locator::Css(selector)).await {
            Ok(element) => element,
            Err(e) => {
                self.fail(format!("nothing to click at `{selector}`: {e}"))
                    .await
            }
        };
        if let Err(e) = element.click().await {
            self.fail(format!("could not click `{selector}`: {e}"))
                .await;
        }
    }

    /// Types `text` into the first element matching `selector`.
    pub async fn type_into(&self, selector: &str, text: &str) {
        let element = match self.client().find(Locator::Css(selector)).await {
            Ok(element) => element,
            Err(e) => {
                self.fail(format!("nothing to type into at `{selector}`: {e}"))
                    .await
            }
        };
        if let Err(e) = element.send_keys(text).await {
            self.fail(format!("could not type into `{selector}`: {e}"))
                .await;
        }
    }

    /// Resizes the window to `width` × `height` (logical pixels).
    pub async fn resize(&self, width: u32, height: u32) {
        if let Err(e) = self.client().set_window_size(width, height).await {
            self.fail(format!("could not resize the window: {e}")).await;
        }
    }

    /// The window's title.
    pub async fn title(&self) -> String {
        match self.client().title().await {
            Ok(title) => title,
            Err(e) => self.fail(format!("could not read the title: {e}")).await,
        }
    }

    /// Ends the session, which quits the app, and waits until the app has exited.
    pub async fn close(mut self) {
        let client = self.client.take().expect("the session is open");
        if let Err(e) = client.close().await {
            panic!(
                "closing the WebDriver session failed: {e}\n--- log ---\n{}",
                tail(&self.driver.log, 40)
            );
        }
        let desktop = self.desktop;
        let exited =
            tokio::task::block_in_place(|| desktop.wait_until_no_app(Duration::from_secs(20)));
        assert!(
            exited,
            "the app was still running 20 s after its session closed (processes {:?}, \
             single-instance names on the bus {:?})\n--- log ---\n{}",
            desktop.app_processes(),
            desktop.instance_names(),
            tail(&self.driver.log, 40)
        );
    }
}

/// What `xclip` reads from the clipboard, from outside the app; `None` if it could not read
/// within `deadline` (nothing owns the clipboard, or the owner does not answer).
pub fn read_clipboard(deadline: Duration) -> Option<String> {
    let mut child = Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("xclip must be installed to read the clipboard");
    let mut stdout = child.stdout.take().expect("xclip's stdout");
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let status = wait_for_exit(&mut child, deadline);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = reader.join().unwrap_or_default();
    status
        .filter(ExitStatus::success)
        .map(|_| String::from_utf8_lossy(&text).into_owned())
}

/// Collapses runs of white space, to compare text as typeset on the page with the text itself.
pub fn squeeze(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
