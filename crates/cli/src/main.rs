//! `storyteller`: the headless command over the Storyteller engine. It parses the command line,
//! calls the engine's one facade ([`storyteller_engine::Engine`]) — the same the desktop app
//! calls — and prints what comes back: plain text for people, the engine's wire types for
//! `--json`.
//!
//! Exit codes: 0 success, 1 some jobs failed (or an operation was refused), 2 usage error.

/// `println!` that survives a closed stdout; see [`output::write_line`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}

mod output;
mod progress;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use storyteller_engine::export::ExportFormat;
use storyteller_engine::job::{JobState, Priority};
use storyteller_engine::pool::{PoolConfig, RunUntil};
use storyteller_engine::retry::RetryPolicy;
use storyteller_engine::settings::Settings;
use storyteller_engine::wire::{
    AddOptions, ExportQuery, JobView, ListOrder, ListQuery, SearchQuery, WaitOutcome, WatchRequest,
};
use storyteller_engine::{BatchId, Engine, EngineError, EngineOptions, JobId};

/// Turns videos into written stories, offline or with an AI model.
#[derive(Parser, Debug)]
#[command(name = "storyteller", version, about, propagate_version = true)]
struct Cli {
    /// Keep the database, thumbnails and settings in DIR (default: $STORYTELLER_HOME, else the
    /// OS data folder).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,

    /// Work a queue shared by a team on PostgreSQL (`postgres://user:password@host/database`;
    /// add `?listen=off` behind a pooler that passes no notices) instead of this machine's
    /// own (default: $STORYTELLER_QUEUE_URL, else the home's database).
    #[arg(long, global = true, value_name = "URL")]
    queue: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum QueueCommand {
    /// Bring the shared queue's tables up to this build's version (every command does it
    /// too; this does only that, for an administrator before a team upgrades).
    Migrate,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Queue videos (folders are searched recursively).
    Add {
        /// Video files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        story: StoryOptions,
        /// Print the report of every path as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check ffmpeg, the database and every storyteller (reachable, key, model), and say what
    /// to fix.
    Doctor {
        /// Print the checks as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What telling videos would cost and take, before anything is queued or sent.
    Estimate {
        /// Video files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        story: StoryOptions,
        /// Print the estimate as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Work the queue.
    Run {
        #[command(flatten)]
        run: RunOptions,
        /// Stop when nothing is left to do, instead of waiting for new jobs (the watched
        /// folders' new videos are queued first).
        #[arg(long)]
        until_empty: bool,
        /// Leave the watched folders alone in this run.
        #[arg(long)]
        no_watch: bool,
    },
    /// Queue videos, work the queue until they are done, and print their stories.
    Process {
        /// Video files or folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        story: StoryOptions,
        #[command(flatten)]
        run: RunOptions,
        /// Print the jobs as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// List jobs.
    List {
        /// Only jobs in this state (queued, running, succeeded, dead, cancelled).
        #[arg(long)]
        state: Option<JobState>,
        /// Only jobs of this batch (its full id).
        #[arg(long, value_name = "ID")]
        batch: Option<BatchId>,
        /// Only jobs of this storyteller.
        #[arg(long, value_name = "NAME")]
        storyteller: Option<String>,
        /// Newest first.
        #[arg(long)]
        newest: bool,
        /// At most this many (the JSON then says where the next page starts).
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Start after this job (the `next` of the previous page).
        #[arg(long, value_name = "ID")]
        after: Option<JobId>,
        /// Print a page of jobs as JSON: `{ "jobs": [...], "next": ... }`.
        #[arg(long)]
        json: bool,
    },
    /// Search every story told, and the file names, as the window's search does: every word
    /// must be found (each also as the start of a longer word, case and accents aside).
    Search {
        /// The words.
        #[arg(required = true, num_args = 1..)]
        words: Vec<String>,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: u32,
        /// Print the hits as JSON: `[{ "job": {...}, "snippet": "..." }]`.
        #[arg(long)]
        json: bool,
    },
    /// Show one job and its story.
    Show {
        /// The job: its id, a unique start of it, or the short id `list` prints.
        id: String,
        /// Print the job as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a queued or running job.
    Cancel {
        /// The job: its id, a unique start of it, or its short id.
        id: String,
    },
    /// Queue a dead or cancelled job again (or, with --failed, every dead job).
    Retry {
        /// The job: its id, a unique start of it, or its short id.
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        id: Option<String>,
        /// Every dead job.
        #[arg(long)]
        failed: bool,
    },
    /// Delete a job that is not running.
    Rm {
        /// The job: its id, a unique start of it, or its short id.
        id: String,
    },
    /// Delete every finished job (succeeded, dead, cancelled).
    Clear,
    /// Stop starting new jobs (running ones finish).
    Pause {
        /// Why, shown to anyone looking at the queue.
        #[arg(long, default_value = "paused by the user")]
        reason: String,
        /// Pause only this storyteller's jobs; the others go on.
        #[arg(long)]
        storyteller: Option<String>,
    },
    /// Start jobs again (every paused storyteller too).
    Resume {
        /// Start only this storyteller's jobs again (after fixing its key, model or server).
        #[arg(long)]
        storyteller: Option<String>,
    },
    /// Counts per state and result-cache figures.
    Stats {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The shared queue itself (`storyteller queue migrate`).
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// The workers alive on the queue (on this machine, or every machine of a shared queue)
    /// and what each is telling.
    Workers {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write every story, with its source file name, to one file or stdout.
    Export {
        /// md, json, txt, docx or pdf.
        #[arg(long, default_value = "md")]
        format: ExportFormat,
        /// Write here instead of stdout (needed for docx and pdf on a terminal).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Only the stories of this batch (its full id).
        #[arg(long, value_name = "ID")]
        batch: Option<BatchId>,
    },
    /// Show the settings, or change them.
    Settings {
        /// Jobs run at once.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
        concurrency: Option<u32>,
        /// The storyteller new jobs use.
        #[arg(long)]
        storyteller: Option<String>,
        /// The model new jobs use ("" for the storyteller's own).
        #[arg(long)]
        model: Option<String>,
        /// The preset new jobs use ("" for the storyteller's first).
        #[arg(long)]
        preset: Option<String>,
        /// The priority new jobs get.
        #[arg(long)]
        priority: Option<Priority>,
        /// Write each story beside its video when it is told (NAME.story.md, …): on or off.
        #[arg(long, value_name = "on|off", value_parser = on_off)]
        beside_video: Option<bool>,
        /// The formats written beside the video, e.g. md,json (md, json, txt, docx, pdf).
        #[arg(long, value_name = "FORMATS", value_delimiter = ',')]
        beside_formats: Option<Vec<ExportFormat>>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The storytellers there are, with their models and presets.
    Storytellers {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// API keys and the storytellers' configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Print every event as it happens, this process's and other processes' (until Ctrl-C).
    Events {
        /// One JSON object per line, as the desktop window receives them.
        #[arg(long)]
        json: bool,
    },
    /// Watched folders: videos that appear in them become jobs by themselves, once each,
    /// while the window is open or `storyteller run` is going.
    Watch {
        #[command(subcommand)]
        command: WatchCommand,
    },
}

#[derive(Subcommand, Debug)]
enum WatchCommand {
    /// Watch a folder (or change how one is watched).
    Add {
        /// The folder.
        dir: PathBuf,
        /// Its subfolders too.
        #[arg(long)]
        recursive: bool,
        /// The storyteller its videos get (the settings' when not given).
        #[arg(long)]
        storyteller: Option<String>,
        /// The preset (the storyteller's default when not given).
        #[arg(long)]
        preset: Option<String>,
        /// The priority (the settings' when not given).
        #[arg(long)]
        priority: Option<Priority>,
        /// Only these file types, e.g. mp4,mov (every video when not given).
        #[arg(long, value_name = "TYPES", value_delimiter = ',')]
        types: Vec<String>,
        /// Write each story into this folder once told.
        #[arg(long, value_name = "DIR", conflicts_with = "beside")]
        output: Option<PathBuf>,
        /// Write each story beside its video once told (NAME.story.md).
        #[arg(long)]
        beside: bool,
        /// The formats written with --output or --beside, e.g. md,txt (md when not given).
        #[arg(long, value_name = "FORMATS", value_delimiter = ',')]
        formats: Vec<ExportFormat>,
        /// Move each told video into a done/ subfolder.
        #[arg(long)]
        move_done: bool,
        /// Poll the folder every 2 s instead of following the system's file events (network
        /// shares, whose events are unreliable).
        #[arg(long)]
        poll: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The watched folders, with their status and what came of their videos.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop watching a folder (its jobs and stories stay).
    Rm {
        /// The folder.
        dir: PathBuf,
    },
    /// Pause a watched folder: new videos wait until it goes on.
    Pause {
        /// The folder.
        dir: PathBuf,
    },
    /// Go on watching a paused folder (what arrived meanwhile is queued).
    Resume {
        /// The folder.
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Every setting: its value, where it comes from, and what it does.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// One setting's value.
    Get {
        /// The setting, e.g. gemini.requests-per-minute (`config list` shows them all).
        key: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change a setting: a storyteller's address, model, pace, time limits or spending caps,
    /// or a price (`price.gemini.flash 0.30/1.00/2.50`, dollars per million tokens).
    Set {
        /// The setting.
        key: String,
        /// Its new value (`none` lifts a limit or a cap).
        value: String,
    },
    /// Put a setting back to its default.
    Unset {
        /// The setting.
        key: String,
    },
    /// Keep a storyteller's API key in the OS keychain, read from stdin (a terminal does not
    /// show it as it is typed). It is used from the next request on and never shown again.
    SetKey {
        /// gemini or openai.
        storyteller: String,
    },
    /// Forget the key kept in the keychain for a storyteller.
    ForgetKey {
        /// gemini or openai.
        storyteller: String,
    },
    /// Where each storyteller's key comes from (its last four characters only).
    Keys {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct StoryOptions {
    /// high, normal or low (default: the settings').
    #[arg(long)]
    priority: Option<Priority>,
    /// The storyteller's preset: narrative, summary, social, bedtime or documentary.
    #[arg(long)]
    preset: Option<String>,
    /// Instructions of your own for the story, on top of the preset's (AI storytellers).
    #[arg(long, value_name = "TEXT", conflicts_with = "prompt_file")]
    prompt: Option<String>,
    /// Read those instructions from a file.
    #[arg(long, value_name = "FILE")]
    prompt_file: Option<PathBuf>,
    /// About how many words each story should have (AI storytellers; default: the preset's).
    #[arg(long, value_name = "N")]
    words: Option<u32>,
    /// The language to write in, e.g. French or pt-BR (AI storytellers; default: English).
    #[arg(long)]
    language: Option<String>,
    /// Which storyteller writes the stories (default: the settings').
    #[arg(long)]
    storyteller: Option<String>,
    /// The model (default: the storyteller's own).
    #[arg(long)]
    model: Option<String>,
    /// Write fresh stories even for videos already told (makes new jobs).
    #[arg(long)]
    no_cache: bool,
    /// Make new jobs even for files that already have one.
    #[arg(long)]
    again: bool,
}

impl StoryOptions {
    fn add_options(&self) -> anyhow::Result<AddOptions> {
        let prompt = match &self.prompt_file {
            Some(file) => Some(anyhow::Context::with_context(
                std::fs::read_to_string(file),
                || format!("the instructions could not be read from {}", file.display()),
            )?),
            None => self.prompt.clone(),
        };
        Ok(AddOptions {
            storyteller: self.storyteller.clone(),
            model: self.model.clone(),
            preset: self.preset.clone(),
            prompt,
            words: self.words,
            language: self.language.clone(),
            priority: self.priority,
            no_cache: self.no_cache,
            // A fresh story needs a job of its own.
            again: self.again || self.no_cache,
        })
    }
}

#[derive(Args, Debug)]
struct RunOptions {
    /// Jobs run at once (default: the settings', 3 at first).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    concurrency: Option<u32>,
    /// Claims a job gets before it is given up as dead.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,
    /// First retry waits up to this many seconds (doubling after each failure, with jitter).
    #[arg(long, default_value = "2", value_name = "SECS", value_parser = seconds)]
    backoff_base: Duration,
    /// No retry waits longer than this many seconds (unless the server asks for longer).
    #[arg(long, default_value = "300", value_name = "SECS", value_parser = seconds)]
    backoff_cap: Duration,
}

impl RunOptions {
    fn apply(&self, options: &mut EngineOptions) {
        options.concurrency = self.concurrency;
        options.pool = PoolConfig {
            retry: RetryPolicy {
                base: self.backoff_base,
                cap: self.backoff_cap,
                max_attempts: self.max_attempts,
            },
            ..PoolConfig::default()
        };
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_ansi(colour_on_stderr())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A storyteller, preset or model that does not exist is a mistake in the command.
            let usage = e
                .downcast_ref::<EngineError>()
                .is_some_and(EngineError::is_usage);
            ExitCode::from(if usage { 2 } else { 1 })
        }
    };
    // Dropping a runtime waits for every blocking task, and one stuck in the kernel (a stat on
    // a dead network mount) would hold the exit for ever; the work that matters is done.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    code
}

/// How long the exit waits for blocking work still under way.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Parses a number of seconds (≥ 0, fractions allowed) for clap.
fn on_off(text: &str) -> Result<bool, String> {
    match text {
        "on" | "yes" | "true" => Ok(true),
        "off" | "no" | "false" => Ok(false),
        other => Err(format!("expected on or off, not '{other}'")),
    }
}

fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("'{text}' is not a number of seconds ≥ 0"))
}

/// Where the engine keeps its things: the home folder, and the queue if it is not the home's.
#[derive(Clone, Debug)]
struct Place {
    home: Option<PathBuf>,
    queue: Option<String>,
}

async fn open(place: Place, run: Option<&RunOptions>) -> anyhow::Result<Engine> {
    let mut options = EngineOptions {
        home: place.home,
        queue: place.queue,
        ..EngineOptions::default()
    };
    if let Some(run) = run {
        run.apply(&mut options);
    }
    Ok(Engine::open(options).await?)
}

/// Tells the person when the queue is paused (nothing will start); whether it is. Paused
/// storytellers are named too (their jobs wait; the others run).
async fn say_if_paused(engine: &Engine) -> anyhow::Result<bool> {
    let stats = engine.stats().await?;
    if let Some(reason) = &stats.paused {
        eprintln!("the queue is paused ({reason}); `storyteller resume` starts it again");
    }
    for pause in &stats.paused_storytellers {
        eprintln!("{}", output::pause_words(pause));
    }
    Ok(stats.paused.is_some())
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let home = Place {
        home: cli.home,
        queue: cli.queue,
    };
    match cli.command {
        Command::Add { paths, story, json } => {
            let engine = open(home, None).await?;
            let hashing = progress::HashingBar::new();
            let report = engine
                .add(paths, story.add_options()?, hashing.on_progress())
                .await?;
            hashing.finish();
            if json {
                output::print_json(&report)?;
            } else {
                output::print_add_report(&report);
            }
            Ok(exit_code(report.any_refused()))
        }
        Command::Run {
            run,
            until_empty,
            no_watch,
        } => {
            let engine = open(home, Some(&run)).await?;
            let paused_before = say_if_paused(&engine).await?;
            let display = progress::Display::start(&engine);
            let until = if until_empty {
                RunUntil::Empty
            } else {
                RunUntil::Shutdown
            };
            // The watched folders: caught up once before a run that ends when the queue is
            // empty, watched for as long as one that waits for more.
            let (stop_watching, stopped) = tokio::sync::oneshot::channel::<()>();
            let watching = if no_watch {
                None
            } else if until_empty {
                engine.catch_up_folders().await?;
                None
            } else {
                let watcher = engine.clone();
                Some(tokio::spawn(async move {
                    watcher
                        .watch_folders(async move {
                            let _ = stopped.await;
                        })
                        .await
                }))
            };
            let result = engine.run(until, shutdown_signal()).await;
            let _ = stop_watching.send(());
            if let Some(watching) = watching {
                if let Ok(Err(error)) = watching.await {
                    eprintln!("watching the folders stopped: {error}");
                }
            }
            let summary = display.finish().await;
            result?;
            // Paused by a fault during the run (a broken tool, a full disk) before the queue
            // was empty: not done. A queue the person had paused is theirs to resume.
            let stopped_short = until_empty && !paused_before && {
                let stats = engine.stats().await?;
                stats.paused.is_some() && stats.queued + stats.running > 0
            };
            Ok(exit_code(summary.failed > 0 || stopped_short))
        }
        Command::Process {
            paths,
            story,
            run,
            json,
        } => {
            let engine = open(home, Some(&run)).await?;
            let hashing = progress::HashingBar::new();
            let report = engine
                .add(paths, story.add_options()?, hashing.on_progress())
                .await?;
            hashing.finish();
            output::print_add_problems(&report);
            let ids: Vec<JobId> = report.jobs().map(|j| j.id).collect();
            let pending_any = report.jobs().any(|j| !j.state.is_finished());
            if say_if_paused(&engine).await? && pending_any {
                // Nothing would run: say so rather than wait for a resume that may never come.
                return Ok(ExitCode::from(1));
            }
            let display = progress::Display::start(&engine);
            let waiter = engine.clone();
            let wait_ids = ids.clone();
            let (outcome_tx, outcome_rx) = tokio::sync::oneshot::channel();
            let result = engine
                .run(RunUntil::Shutdown, async move {
                    let outcome = waiter.wait_for(&wait_ids, shutdown_signal()).await;
                    let _ = outcome_tx.send(outcome);
                })
                .await;
            display.finish().await;
            result?;
            match outcome_rx.await {
                Ok(Ok(WaitOutcome::Paused { reason })) => eprintln!("queue paused: {reason}"),
                Ok(Ok(WaitOutcome::StorytellerPaused { reason })) => {
                    eprintln!("not told yet: {reason}")
                }
                _ => {}
            }
            let finished = engine.jobs(&ids).await?;
            // A job removed meanwhile (`rm` from another terminal) ends the wait for it too.
            let removed: Vec<&JobView> = report
                .jobs()
                .filter(|job| !finished.iter().any(|f| f.id == job.id))
                .collect();
            for job in &removed {
                eprintln!(
                    "{} was removed from the queue before its story was written",
                    job.file
                );
            }
            let failed = finished.iter().any(|j| j.state != JobState::Succeeded)
                || report.any_refused()
                || !removed.is_empty();
            if json {
                output::print_json(&finished)?;
            } else {
                output::print_stories(&finished);
            }
            Ok(exit_code(failed))
        }
        Command::List {
            state,
            batch,
            storyteller,
            newest,
            limit,
            after,
            json,
        } => {
            let engine = open(home, None).await?;
            let page = engine
                .list(ListQuery {
                    state,
                    batch_id: batch,
                    storyteller,
                    order: if newest {
                        ListOrder::NewestFirst
                    } else {
                        ListOrder::OldestFirst
                    },
                    after,
                    limit,
                    without_stories: false,
                })
                .await?;
            if json {
                output::print_json(&page)?;
            } else {
                output::print_table(&page);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Search { words, limit, json } => {
            let hits = open(home, None)
                .await?
                .search(SearchQuery {
                    text: words.join(" "),
                    limit: Some(limit),
                })
                .await?;
            if json {
                output::print_json(&hits)?;
            } else {
                output::print_search_hits(&hits);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id, json } => {
            let job = open(home, None).await?.get(&id).await?;
            if json {
                output::print_json(&job)?;
            } else {
                output::print_job(&job);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { id } => {
            let job = open(home, None).await?.cancel(&id).await?;
            out!("cancelled {}  {}", job.short_id, job.file);
            Ok(ExitCode::SUCCESS)
        }
        Command::Retry { id, failed } => {
            let engine = open(home, None).await?;
            let jobs = match id {
                Some(id) if !failed => vec![engine.retry(&id).await?],
                _ => engine.retry_failed().await?,
            };
            for job in &jobs {
                out!("queued again {}  {}", job.short_id, job.file);
            }
            if failed && jobs.is_empty() {
                out!("no failed jobs");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rm { id } => {
            let job = open(home, None).await?.remove(&id).await?;
            out!("deleted {}  {}", job.short_id, job.file);
            Ok(ExitCode::SUCCESS)
        }
        Command::Clear => {
            let n = open(home, None).await?.clear_finished().await?;
            out!("deleted {n} finished job{}", if n == 1 { "" } else { "s" });
            Ok(ExitCode::SUCCESS)
        }
        Command::Pause {
            reason,
            storyteller: Some(storyteller),
        } => {
            open(home, None)
                .await?
                .pause_storyteller(&storyteller, reason)
                .await?;
            out!("{storyteller} paused (other storytellers go on)");
            Ok(ExitCode::SUCCESS)
        }
        Command::Pause {
            reason,
            storyteller: None,
        } => {
            open(home, None).await?.pause(reason).await?;
            out!("queue paused");
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume {
            storyteller: Some(storyteller),
        } => {
            open(home, None)
                .await?
                .resume_storyteller(&storyteller)
                .await?;
            out!("{storyteller} resumed");
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume { storyteller: None } => {
            open(home, None).await?.resume().await?;
            out!("queue resumed");
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { json } => {
            let engine = open(home, None).await?;
            let stats = engine.stats().await?;
            if json {
                output::print_json(&stats)?;
            } else {
                output::print_stats(&stats, engine.left_by_stopped_runners().await?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Queue {
            command: QueueCommand::Migrate,
        } => {
            let url = home
                .queue
                .clone()
                .or_else(|| std::env::var(storyteller_engine::store::QUEUE_URL_VAR).ok())
                .filter(|url| !url.trim().is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "no shared queue is named: give --queue postgres://… or set {}",
                        storyteller_engine::store::QUEUE_URL_VAR
                    )
                })?;
            let schema = storyteller_engine::store::migrate_queue(&url).await?;
            if schema.ran == 0 {
                out!(
                    "the queue at {} is up to date (schema version {})",
                    schema.place,
                    schema.version
                );
            } else {
                out!(
                    "the queue at {} is now at schema version {} ({} migration{} ran)",
                    schema.place,
                    schema.version,
                    schema.ran,
                    if schema.ran == 1 { "" } else { "s" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Workers { json } => {
            let engine = open(home, None).await?;
            let workers = engine.workers().await?;
            if json {
                output::print_json(&workers)?;
            } else {
                output::print_workers(&workers);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { format, out, batch } => {
            if out.is_none()
                && format.is_binary()
                && std::io::IsTerminal::is_terminal(&std::io::stdout())
            {
                return Err(EngineError::InvalidArgument(format!(
                    "a {} export is a binary file and is not printed on a terminal: \
                     write it to a file with --out FILE (or redirect stdout)",
                    format.extension()
                ))
                .into());
            }
            let engine = open(home, None).await?;
            let query = ExportQuery {
                batch_id: batch,
                ids: None,
            };
            match out {
                Some(path) => {
                    let n = engine.export_to(&path, format, query).await?;
                    let noun = if n == 1 { "story" } else { "stories" };
                    eprintln!("exported {n} {noun} to {}", path.display());
                }
                None if format.is_binary() => {
                    let (document, _) = engine.export(format, query).await?;
                    write_stdout(&document);
                }
                None => {
                    let (document, _) = engine.export(format, query).await?;
                    out!("{}", String::from_utf8_lossy(&document).trim_end());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Settings {
            concurrency,
            storyteller,
            model,
            preset,
            priority,
            beside_video,
            beside_formats,
            json,
        } => {
            let engine = open(home, None).await?;
            let mut settings: Settings = engine.settings();
            let changing = concurrency.is_some()
                || storyteller.is_some()
                || model.is_some()
                || preset.is_some()
                || priority.is_some()
                || beside_video.is_some()
                || beside_formats.is_some();
            if let Some(on) = beside_video {
                settings.save_beside_video = on;
            }
            if let Some(formats) = beside_formats {
                settings.beside_formats = formats;
            }
            if let Some(n) = concurrency {
                settings.concurrency = n;
            }
            if let Some(name) = storyteller {
                settings.storyteller = name;
            }
            if let Some(model) = model {
                settings.model = Some(model).filter(|m| !m.is_empty());
            }
            if let Some(preset) = preset {
                settings.preset = Some(preset).filter(|p| !p.is_empty());
            }
            if let Some(priority) = priority {
                settings.priority = priority;
            }
            if changing {
                settings = engine.update_settings(settings).await?;
            }
            if json {
                output::print_json(&settings)?;
            } else {
                output::print_settings(&settings);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Storytellers { json } => {
            let storytellers = open(home, None).await?.storytellers();
            if json {
                output::print_json(&storytellers)?;
            } else {
                for teller in &storytellers {
                    out!(
                        "{}  models: {}  presets: {}",
                        teller.name,
                        teller.models.join(", "),
                        teller.presets.join(", ")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Config { command } => config(home, command).await,
        Command::Doctor { json } => {
            let report = open(home, None).await?.doctor().await?;
            if json {
                output::print_json(&report)?;
            } else {
                for check in &report.checks {
                    out!("{}", output::check_words(check));
                }
            }
            Ok(if report.ready {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Estimate { paths, story, json } => {
            let engine = open(home, None).await?;
            let report = engine.estimate(paths, story.add_options()?).await?;
            if json {
                output::print_json(&report)?;
            } else {
                output::print_estimate(&report);
            }
            Ok(
                if report
                    .refused
                    .iter()
                    .any(|r| r.outcome == storyteller_engine::wire::AddOutcome::Refused)
                {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                },
            )
        }
        Command::Watch { command } => watch(home, command).await,
        Command::Events { json } => {
            let engine = open(home, None).await?;
            let mut events = engine.subscribe();
            let interrupted = interrupt();
            tokio::pin!(interrupted);
            // Said on stderr once listening, so a script knows nothing after this is missed.
            eprintln!(
                "listening to {} (Ctrl-C stops)",
                engine.home().root().display()
            );
            loop {
                tokio::select! {
                    _ = &mut interrupted => break,
                    envelope = events.recv() => match envelope {
                        Some(envelope) if json => output::print_json_line(&envelope)?,
                        Some(envelope) => output::print_event(&envelope),
                        None => break,
                    },
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `storyteller config …`.
async fn config(home: Place, command: ConfigCommand) -> anyhow::Result<ExitCode> {
    let engine = open(home, None).await?;
    match command {
        ConfigCommand::List { json } => {
            let entries = engine.config_list();
            if json {
                output::print_json(&entries)?;
            } else {
                out!("{}", output::config_table(&entries));
            }
        }
        ConfigCommand::Get { key, json } => {
            let entry = engine.config_get(&key)?;
            if json {
                output::print_json(&entry)?;
            } else {
                out!("{}", entry.value.as_deref().unwrap_or("none"));
                if let Some(note) = output::config_note(&entry) {
                    eprintln!("{note}");
                }
            }
        }
        ConfigCommand::Set { key, value } => {
            let entry = engine.config_set(&key, Some(&value)).await?;
            out!(
                "{} = {}",
                entry.key,
                entry
                    .hidden_value
                    .as_deref()
                    .or(entry.value.as_deref())
                    .unwrap_or("none")
            );
            if let Some(note) = output::config_note(&entry) {
                eprintln!("{note}");
            }
        }
        ConfigCommand::Unset { key } => {
            let entry = engine.config_set(&key, None).await?;
            out!(
                "{} = {} (the default)",
                entry.key,
                entry.default_value.as_deref().unwrap_or("none")
            );
            if let Some(note) = output::config_note(&entry) {
                eprintln!("{note}");
            }
        }
        ConfigCommand::SetKey { storyteller } => {
            let key = read_key(&storyteller)?;
            let status = engine.set_api_key(&storyteller, &key).await?;
            out!(
                "{} key kept in the keychain ({})",
                storyteller,
                status.masked.as_deref().unwrap_or("••••")
            );
            if status.source == storyteller_engine::secrets::KeySource::Environment {
                out!(
                    "note: {} is set, and is used before the keychain while it is",
                    status.env_var
                );
            }
        }
        ConfigCommand::ForgetKey { storyteller } => {
            let status = engine.forget_api_key(&storyteller).await?;
            out!("{} key forgotten", storyteller);
            if status.source == storyteller_engine::secrets::KeySource::Environment {
                out!("note: {} is still set, and is used", status.env_var);
            }
        }
        ConfigCommand::Keys { json } => {
            let keys = engine.api_keys().await?;
            if json {
                output::print_json(&keys)?;
            } else {
                for key in &keys {
                    out!("{}", output::key_words(key));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The key from stdin: hidden as it is typed on a terminal, else the first line piped in.
fn read_key(storyteller: &str) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let key = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{storyteller} API key (not shown): "))?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line
    };
    Ok(key.trim().to_owned())
}

/// Colour codes only for a terminal that shows them: never into a file or a pipe, and never
/// when `NO_COLOR` is set or `TERM` is `dumb`.
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |term| term != "dumb")
}

/// Writes `bytes` to stdout as they are; like [`output::write_line`], a closed stdout ends the
/// program quietly.
fn write_stdout(bytes: &[u8]) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: could not write to stdout: {e}");
        std::process::exit(1);
    }
}

fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Resolves on Ctrl-C, SIGTERM or SIGHUP, saying that running jobs go back; a second signal
/// exits at once.
async fn shutdown_signal() {
    interrupt().await;
    // Not `eprintln!`: after SIGHUP the terminal may be gone, and a failed write must not turn a
    // clean stop into a panic.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        b"stopping: running jobs go back to the queue (press Ctrl-C again to quit at once)\n",
    );
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}

/// Resolves on Ctrl-C, SIGTERM or SIGHUP (the terminal closed, the session logged out): each
/// is a clean stop.
async fn interrupt() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            _ = hangup.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn watch(home: Place, command: WatchCommand) -> anyhow::Result<ExitCode> {
    let engine = open(home, None).await?;
    match command {
        WatchCommand::Add {
            dir,
            recursive,
            storyteller,
            preset,
            priority,
            types,
            output,
            beside,
            formats,
            move_done,
            poll,
            json,
        } => {
            let folder = engine
                .watch_add(WatchRequest {
                    path: dir.display().to_string(),
                    recursive,
                    storyteller,
                    preset,
                    priority,
                    extensions: types,
                    beside,
                    output_folder: output.map(|o| o.display().to_string()),
                    formats,
                    move_done,
                    poll,
                })
                .await?;
            if json {
                output::print_json(&folder)?;
            } else {
                out!("watching {}", output::one_line(&folder.path));
                output::print_watched_folder(&folder);
            }
        }
        WatchCommand::List { json } => {
            let folders = engine.watched_folders().await?;
            if json {
                output::print_json(&folders)?;
            } else if folders.is_empty() {
                eprintln!("no folder is watched; `storyteller watch add DIR` watches one");
            } else {
                for folder in &folders {
                    out!("{}", output::one_line(&folder.path));
                    output::print_watched_folder(folder);
                }
            }
        }
        WatchCommand::Rm { dir } => {
            let folder = engine.watch_remove(&dir.display().to_string()).await?;
            out!(
                "no longer watching {} (its {} job(s) stay)",
                output::one_line(&folder.path),
                folder.queued + folder.running + folder.succeeded + folder.failed
            );
        }
        WatchCommand::Pause { dir } => {
            let folder = engine.watch_pause(&dir.display().to_string(), true).await?;
            out!("paused {}", output::one_line(&folder.path));
        }
        WatchCommand::Resume { dir } => {
            let folder = engine
                .watch_pause(&dir.display().to_string(), false)
                .await?;
            out!("watching {} again", output::one_line(&folder.path));
        }
    }
    Ok(ExitCode::SUCCESS)
}
