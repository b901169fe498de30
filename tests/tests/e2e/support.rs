//! What every end-to-end test needs: the built `storyteller` binary, a sandbox (its own home
//! folder and video folder) to run it in with deadlines, small real videos made with ffmpeg, and
//! a look at the database file itself.

use serde_json::Value;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a one-shot command (`add`, `list`, `show`, …) may take before the test fails.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// How long a command that works the queue may take before the test fails.
pub const RUN_DEADLINE: Duration = Duration::from_secs(120);

/// How often a test polls the queue while it waits for something to happen.
pub const POLL_EVERY: Duration = Duration::from_millis(100);

/// The `storyteller` binary under test: `$STORYTELLER_BIN`, else `target/debug/storyteller` in
/// this workspace (built by `cargo build --workspace` before the tests run).
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("STORYTELLER_BIN").filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "STORYTELLER_BIN points at {}, which is not a file",
            bin.display()
        );
        return bin;
    }
    // Cargo's run-time value first: a test binary built from another checkout sharing this
    // target folder keeps that checkout's path in the compile-time one.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let workspace = manifest_dir
        .parent()
        .expect("the e2e package lives inside the workspace")
        .to_path_buf();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|t| !t.is_empty())
        .map(PathBuf::from)
        .map(|t| {
            if t.is_relative() {
                workspace.join(t)
            } else {
                t
            }
        })
        .unwrap_or_else(|| workspace.join("target"));
    let bin = target
        .join("debug")
        .join(format!("storyteller{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "the storyteller binary is not at {}: build it first with `cargo build --workspace` \
         (or point STORYTELLER_BIN at it)",
        bin.display()
    );
    bin
}

/// What a finished command left behind.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Output {
    /// stdout as JSON, or a panic that shows what was printed instead.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A `storyteller` process started in the background, its output going to files.
pub struct Background {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    what: String,
}

impl Background {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: the process gets no chance to tidy up.
    pub fn kill_hard(mut self) -> Output {
        self.child.kill().expect("sending SIGKILL");
        let status = self.child.wait().expect("waiting for the killed process");
        self.output(status)
    }

    /// Sends `signal` (e.g. `TERM`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// Waits for it to exit; kills it and fails the test if it takes longer than `deadline`.
    pub fn wait(mut self, deadline: Duration) -> Output {
        let status = wait_with_deadline(&mut self.child, deadline, &self.what);
        self.output(status)
    }

    fn output(&self, status: ExitStatus) -> Output {
        Output {
            code: status.code(),
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // A test that panicked must not leave a runner behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_with_deadline(child: &mut Child, deadline: Duration, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {deadline:?}; it was killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One test's world: a home folder for Storyteller's state, a folder for videos, and a folder
/// for the captured output of the commands run.
pub struct Sandbox {
    root: tempfile::TempDir,
    runs: AtomicUsize,
    // Set for every command run in it (a shared queue's address).
    env: Vec<(String, String)>,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A fresh, empty sandbox.
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("storyteller-e2e-")
            .tempdir()
            .expect("creating a temporary folder");
        for dir in ["home", "videos", "logs"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("creating a sandbox folder");
        }
        Self {
            root,
            runs: AtomicUsize::new(0),
            env: Vec::new(),
        }
    }

    /// A fresh sandbox — another machine, with a home of its own — whose every command works
    /// the shared queue at `url` (`STORYTELLER_QUEUE_URL`).
    pub fn on_queue(url: &str) -> Self {
        let mut sandbox = Self::new();
        sandbox
            .env
            .push(("STORYTELLER_QUEUE_URL".into(), url.into()));
        sandbox
    }

    /// Storyteller's home (`--home`).
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// Where the test's videos go.
    pub fn videos(&self) -> PathBuf {
        self.root.path().join("videos")
    }

    /// The job database.
    pub fn database(&self) -> PathBuf {
        self.home().join("storyteller.db")
    }

    fn command(&self, env: &[(&str, &str)], args: &[&str]) -> (Command, PathBuf, PathBuf, String) {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let logs = self.root.path().join("logs");
        let stdout = logs.join(format!("{n:03}.stdout"));
        let stderr = logs.join(format!("{n:03}.stderr"));
        let mut cmd = Command::new(binary());
        cmd.arg("--home")
            .arg(self.home())
            .args(args)
            .current_dir(self.videos())
            .env_remove("STORYTELLER_HOME")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .env_remove("STORYTELLER_QUEUE_URL")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(File::create(&stdout).expect("creating the stdout file"))
            .stderr(File::create(&stderr).expect("creating the stderr file"));
        cmd.envs(env.iter().copied());
        let what = format!("storyteller {}", args.join(" "));
        (cmd, stdout, stderr, what)
    }

    /// Starts `storyteller --home <home> ARGS…` in the background.
    pub fn spawn(&self, args: &[&str]) -> Background {
        self.spawn_with_env(&[], args)
    }

    /// [`Sandbox::spawn`] with extra environment variables.
    pub fn spawn_with_env(&self, env: &[(&str, &str)], args: &[&str]) -> Background {
        let (mut cmd, stdout, stderr, what) = self.command(env, args);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("could not start `{what}`: {e}"));
        Background {
            child,
            stdout,
            stderr,
            what,
        }
    }

    /// Runs `storyteller --home <home> ARGS…` to the end (failing the test after `deadline`).
    pub fn run_within(&self, deadline: Duration, args: &[&str]) -> Output {
        self.spawn(args).wait(deadline)
    }

    /// Runs a one-shot command.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_within(COMMAND_DEADLINE, args)
    }

    /// Runs a command and fails the test unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert_eq!(
            out.code,
            Some(0),
            "`storyteller {}` failed:\n{out}",
            args.join(" ")
        );
        out
    }

    /// `run --until-empty`, which must exit 0.
    pub fn work_queue(&self) -> Output {
        let out = self.run_within(
            RUN_DEADLINE,
            &["run", "--until-empty", "--concurrency", "3"],
        );
        assert_eq!(out.code, Some(0), "`run --until-empty` failed:\n{out}");
        out
    }

    /// `add PATHS…` with `--json`: (the new jobs, the refused or skipped paths as
    /// `{ path, reason, skipped }`, the exit code).
    pub fn add(&self, paths: &[&Path], extra: &[&str]) -> (Vec<Value>, Vec<Value>, Option<i32>) {
        let (report, code) = self.add_with_code(paths, extra);
        let entries = report["entries"].as_array().expect("an `entries` array");
        let added = entries
            .iter()
            .filter(|e| e["outcome"] == "queued" || e["outcome"] == "cached")
            .map(|e| e["job"].clone())
            .collect();
        let refused = entries
            .iter()
            .filter(|e| e["outcome"] == "refused" || e["outcome"] == "skipped")
            .map(|e| {
                serde_json::json!({
                    "path": e["path"],
                    "reason": e["reason"],
                    "skipped": e["outcome"] == "skipped",
                })
            })
            .collect();
        (added, refused, code)
    }

    /// `add PATHS…` with `--json`: the whole report.
    pub fn add_report(&self, paths: &[&Path], extra: &[&str]) -> Value {
        self.add_with_code(paths, extra).0
    }

    fn add_with_code(&self, paths: &[&Path], extra: &[&str]) -> (Value, Option<i32>) {
        let mut args: Vec<String> = vec!["add".into(), "--json".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(
            paths
                .iter()
                .map(|p| p.to_str().expect("UTF-8 path").to_owned()),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&args);
        assert!(
            matches!(out.code, Some(0 | 1)),
            "`add` neither succeeded nor refused:\n{out}"
        );
        (out.json(), out.code)
    }

    /// Every job, from `list --json`.
    pub fn jobs(&self) -> Vec<Value> {
        let out = self.ok(&["list", "--json"]);
        let page = out.json();
        assert!(
            page["next"].is_null(),
            "an unlimited list has one page: {page:#}"
        );
        page["jobs"]
            .as_array()
            .expect("list --json prints a page of jobs")
            .clone()
    }

    /// One job, from `show ID --json`.
    pub fn job(&self, id: &str) -> Value {
        self.ok(&["show", id, "--json"]).json()
    }

    /// The job whose file is called `file_name` (there must be exactly one).
    pub fn job_for(&self, file_name: &str) -> Value {
        let jobs = self.jobs();
        let matching: Vec<&Value> = jobs.iter().filter(|j| j["file"] == file_name).collect();
        assert_eq!(
            matching.len(),
            1,
            "expected one job for {file_name}, found {}: {jobs:#?}",
            matching.len()
        );
        matching[0].clone()
    }

    /// `count` different videos of `seconds` each, made and queued; every one must be added.
    pub fn queue_videos(&self, count: usize, seconds: u32) -> Vec<PathBuf> {
        let videos: Vec<PathBuf> = (0..count)
            .map(|i| self.video(&format!("take-{i:02}.mp4"), Look::varied(i, seconds)))
            .collect();
        let paths: Vec<&Path> = videos.iter().map(PathBuf::as_path).collect();
        let (added, refused, code) = self.add(&paths, &[]);
        assert_eq!(
            (added.len(), refused.len(), code),
            (count, 0, Some(0)),
            "{refused:#?}"
        );
        videos
    }

    /// `stats --json`.
    pub fn stats(&self) -> Value {
        self.ok(&["stats", "--json"]).json()
    }

    /// Polls `list --json` until `done(jobs)` holds; fails the test after `deadline`.
    pub fn wait_for_jobs(
        &self,
        deadline: Duration,
        what: &str,
        mut done: impl FnMut(&[Value]) -> bool,
    ) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let jobs = self.jobs();
            if done(&jobs) {
                return jobs;
            }
            assert!(
                start.elapsed() < deadline,
                "waited {deadline:?} for {what}; the jobs are: {:#?}",
                summary(&jobs)
            );
            std::thread::sleep(POLL_EVERY);
        }
    }

    /// `PRAGMA integrity_check` on the database file; panics unless it says `ok`.
    pub fn assert_database_intact(&self) {
        let conn = rusqlite::Connection::open(self.database()).expect("opening the database");
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .expect("preparing integrity_check");
        let rows: Vec<String> = stmt
            .query_map([], |row| row.get(0))
            .expect("running integrity_check")
            .collect::<Result<_, _>>()
            .expect("reading integrity_check");
        assert_eq!(rows, ["ok"], "the database is damaged");
    }

    /// Makes a real video called `name` in the video folder.
    pub fn video(&self, name: &str, look: Look) -> PathBuf {
        let path = self.videos().join(name);
        make_video(&path, look);
        path
    }
}

/// Count of jobs in `state`.
pub fn count_in(jobs: &[Value], state: &str) -> usize {
    jobs.iter().filter(|j| j["state"] == state).count()
}

/// A compact view of jobs for failure messages.
pub fn summary(jobs: &[Value]) -> Vec<String> {
    jobs.iter()
        .map(|j| {
            format!(
                "{} {} {} attempts={} error={}",
                j["file"].as_str().unwrap_or("?"),
                j["state"].as_str().unwrap_or("?"),
                j["stage"].as_str().unwrap_or("?"),
                j["attempts"],
                j["error"]["message"].as_str().unwrap_or("-"),
            )
        })
        .collect()
}

/// How a generated video looks and sounds.
#[derive(Clone, Copy, Debug)]
pub struct Look {
    /// An ffmpeg lavfi video source that takes `size` and `rate` (`testsrc2`, `color=c=navy`, …).
    pub source: &'static str,
    /// Length in seconds.
    pub seconds: u32,
    /// The sine tone's pitch in Hz (also keeps videos of the same picture apart).
    pub tone: u32,
}

impl Look {
    /// The default: 3 seconds of `testsrc2` with a 440 Hz tone.
    pub const fn plain() -> Self {
        Self {
            source: "testsrc2",
            seconds: 3,
            tone: 440,
        }
    }

    /// The `i`-th of a set of looks that all differ (picture and tone), `seconds` long.
    pub fn varied(i: usize, seconds: u32) -> Self {
        const SOURCES: [&str; 14] = [
            "testsrc2",
            "smptebars",
            "mandelbrot",
            "rgbtestsrc",
            "cellauto",
            "life",
            "color=c=navy",
            "yuvtestsrc",
            "pal100bars",
            "testsrc",
            "colorspectrum",
            "sierpinski",
            "smptehdbars",
            "gradients",
        ];
        Self {
            source: SOURCES[i % SOURCES.len()],
            seconds,
            tone: 220 + 55 * u32::try_from(i).expect("a small index"),
        }
    }
}

/// Writes a small real MP4 (H.264 + AAC, 320×180, 25 fps) to `path` with ffmpeg.
pub fn make_video(path: &Path, look: Look) {
    let separator = if look.source.contains('=') { ':' } else { '=' };
    let picture = format!("{}{separator}size=320x180:rate=25", look.source);
    let sound = format!("sine=frequency={}:sample_rate=44100", look.tone);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-y", "-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-f", "lavfi", "-i", &picture])
        .args(["-f", "lavfi", "-i", &sound])
        .args(["-t", &look.seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-c:a", "aac", "-shortest"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd
        .spawn()
        .expect("ffmpeg must be installed to run the end-to-end tests");
    let out = child.wait_with_output().expect("waiting for ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg could not make {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether this process ignores file permissions (root): then `chmod 000` stops nothing.
pub fn permissions_are_ignored(probe: &Path) -> bool {
    File::open(probe).is_ok()
}

/// A string field of a job.
pub fn text<'a>(job: &'a Value, field: &str) -> &'a str {
    job[field]
        .as_str()
        .unwrap_or_else(|| panic!("job has no string `{field}`: {job:#}"))
}

/// The error message of a job (panics when there is none).
pub fn error_message(job: &Value) -> &str {
    job["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("job has no error: {job:#}"))
}

/// A path as a command-line argument.
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}
