//! `storyteller`: the headless command over the Storyteller engine — the glue between the
//! command line and the engine crate; everything it does, the desktop app does through the same
//! engine.
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

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use storyteller_engine::export::{self, ExportFormat};
use storyteller_engine::home::Home;
use storyteller_engine::intake::{self, IntakeOptions};
use storyteller_engine::job::{JobState, Priority, StorySpec};
use storyteller_engine::media::{self, Media};
use storyteller_engine::pool::{Pool, PoolConfig, RunUntil};
use storyteller_engine::retry::{RetryPolicy, SystemClock};
use storyteller_engine::store::{JobFilter, JobStore, SqliteStore};
use storyteller_engine::storyteller::offline::OfflineStoryteller;
use storyteller_engine::storyteller::StorytellerRegistry;
use storyteller_engine::{EngineError, Event, EventBus, JobId};

/// Turns videos into written stories, offline or with an AI model.
#[derive(Parser, Debug)]
#[command(name = "storyteller", version, about, propagate_version = true)]
struct Cli {
    /// Keep the database, thumbnails and settings in DIR (default: $STORYTELLER_HOME, else the
    /// OS data folder).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
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
        /// Print the added jobs and refusals as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Work the queue.
    Run {
        #[command(flatten)]
        run: RunOptions,
        /// Stop when nothing is left to do, instead of waiting for new jobs.
        #[arg(long)]
        until_empty: bool,
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
        /// Print a JSON array of jobs.
        #[arg(long)]
        json: bool,
    },
    /// Show one job and its story.
    Show {
        /// Job id (or a unique prefix of it).
        id: String,
        /// Print the job as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a queued or running job.
    Cancel {
        /// Job id (or a unique prefix).
        id: String,
    },
    /// Queue a dead or cancelled job again.
    Retry {
        /// Job id (or a unique prefix).
        id: String,
    },
    /// Delete a job that is not running.
    Rm {
        /// Job id (or a unique prefix).
        id: String,
    },
    /// Delete every finished job (succeeded, dead, cancelled).
    Clear,
    /// Stop starting new jobs (running ones finish).
    Pause {
        /// Why, shown to anyone looking at the queue.
        #[arg(long, default_value = "paused by the user")]
        reason: String,
    },
    /// Start jobs again.
    Resume,
    /// Counts per state and result-cache figures.
    Stats {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write every story, with its source file name, to one file or stdout.
    Export {
        /// md, json or txt.
        #[arg(long, default_value = "md")]
        format: ExportFormat,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct StoryOptions {
    /// high, normal or low.
    #[arg(long, default_value = "normal")]
    priority: Priority,
    /// The storyteller's preset (offline: narrative, summary, social).
    #[arg(long)]
    preset: Option<String>,
    /// Which storyteller writes the stories.
    #[arg(long, default_value = "offline")]
    storyteller: String,
    /// The model (default: the storyteller's own).
    #[arg(long)]
    model: Option<String>,
    /// Write fresh stories even for videos already told.
    #[arg(long)]
    no_cache: bool,
}

#[derive(Args, Debug)]
struct RunOptions {
    /// Jobs run at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
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
    fn pool_config(&self) -> PoolConfig {
        PoolConfig {
            concurrency: usize::from(self.concurrency),
            retry: RetryPolicy {
                base: self.backoff_base,
                cap: self.backoff_cap,
                max_attempts: self.max_attempts,
            },
            ..PoolConfig::default()
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
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
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // A storyteller or preset that does not exist is a mistake in the command line.
            let usage = matches!(
                e.downcast_ref::<EngineError>(),
                Some(EngineError::UnknownPreset { .. } | EngineError::UnknownStoryteller { .. })
            );
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// Parses a number of seconds (≥ 0, fractions allowed) for clap.
fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("'{text}' is not a number of seconds ≥ 0"))
}

/// What every command shares: where state lives, the store and the event bus.
struct App {
    home: Home,
    store: SqliteStore,
    bus: EventBus,
}

impl App {
    async fn open(home: Option<PathBuf>) -> anyhow::Result<Self> {
        let home = tokio::task::spawn_blocking(move || Home::resolve(home.as_deref())).await??;
        let bus = EventBus::new();
        let store = SqliteStore::open(home.database(), bus.clone())
            .await
            .with_context(|| format!("opening {}", home.database().display()))?;
        Ok(Self { home, store, bus })
    }

    fn storytellers(&self) -> anyhow::Result<StorytellerRegistry> {
        let media = Media::locate(self.home.thumbnails())?;
        let mut registry = StorytellerRegistry::new();
        registry.register(Arc::new(OfflineStoryteller::new(media)));
        Ok(registry)
    }

    fn spec(
        &self,
        registry: &StorytellerRegistry,
        options: &StoryOptions,
    ) -> Result<StorySpec, EngineError> {
        let storyteller =
            registry
                .get(&options.storyteller)
                .ok_or_else(|| EngineError::UnknownStoryteller {
                    name: options.storyteller.clone(),
                    available: registry.names().join(", "),
                })?;
        let presets = storyteller.presets();
        let preset = match &options.preset {
            Some(preset) if presets.contains(&preset.as_str()) => preset.clone(),
            Some(preset) => {
                return Err(EngineError::UnknownPreset {
                    storyteller: options.storyteller.clone(),
                    preset: preset.clone(),
                    available: presets.join(", "),
                })
            }
            None => presets.first().copied().unwrap_or("default").to_owned(),
        };
        Ok(StorySpec {
            storyteller: options.storyteller.clone(),
            model: options
                .model
                .clone()
                .unwrap_or_else(|| storyteller.default_model().to_owned()),
            preset,
        })
    }

    /// Hashes and queues `paths`; prints refusals. Returns the added jobs' ids and whether any
    /// path was refused.
    async fn add(
        &self,
        registry: &StorytellerRegistry,
        paths: Vec<PathBuf>,
        options: &StoryOptions,
    ) -> anyhow::Result<(Vec<storyteller_engine::Job>, Vec<intake::Refusal>)> {
        let spec = self.spec(registry, options)?;
        let hashing = progress::hashing_bar();
        let bar = hashing.clone();
        let intake = intake::prepare(
            paths,
            IntakeOptions {
                spec,
                priority: options.priority,
                no_cache: options.no_cache,
            },
            move |_| bar.inc(1),
        )
        .await;
        hashing.finish_and_clear();
        let jobs = self.store.enqueue(intake.jobs).await?;
        Ok((jobs, intake.refused))
    }

    fn pool(&self, registry: StorytellerRegistry, run: &RunOptions) -> anyhow::Result<Pool> {
        let config = run.pool_config();
        Ok(Pool::new(
            Arc::new(self.store.clone()),
            registry,
            self.bus.clone(),
            Arc::new(SystemClock),
            config,
            Some(&self.home.runners()),
        )?)
    }

    /// Tells the person when the queue is paused (nothing will start); whether it is.
    async fn say_if_paused(&self) -> anyhow::Result<bool> {
        let stats = self.store.stats().await?;
        if let Some(reason) = &stats.paused {
            eprintln!("the queue is paused ({reason}); `storyteller resume` starts it again");
        }
        Ok(stats.paused.is_some())
    }

    /// Wakes `pool` whenever another process writes to the database (a `storyteller add` in
    /// another terminal, the desktop app), so `run` picks up new work without polling.
    fn watch_database(&self, pool: &Pool) -> Option<notify::RecommendedWatcher> {
        use notify::Watcher as _;
        let pool = pool.clone();
        let wal_name = format!(
            "{}-wal",
            self.home
                .database()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Ok(event) = event {
                    let touches_wal = event.paths.iter().any(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy() == wal_name)
                    });
                    if touches_wal {
                        pool.external_change();
                    }
                }
            })
            .ok()?;
        watcher
            .watch(self.home.root(), notify::RecursiveMode::NonRecursive)
            .ok()?;
        Some(watcher)
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let app = App::open(cli.home).await?;
    match cli.command {
        Command::Add { paths, story, json } => {
            let registry = app.storytellers()?;
            let (jobs, refused) = app.add(&registry, paths, &story).await?;
            if json {
                output::print_json(&serde_json::json!({
                    "added": jobs.iter().map(output::job_json).collect::<Vec<_>>(),
                    "refused": refused,
                }))?;
            } else {
                for job in &jobs {
                    let note = if job.cached {
                        " (story from cache)"
                    } else {
                        ""
                    };
                    out!(
                        "added {}  {}{note}",
                        output::short_id(job.id),
                        job.source.display()
                    );
                }
                output::print_refusals(&refused);
            }
            Ok(exit_code(refused.iter().any(|r| !r.skipped)))
        }
        Command::Run { run, until_empty } => {
            let registry = app.storytellers()?;
            let pool = app.pool(registry, &run)?;
            app.say_if_paused().await?;
            let _watcher = app.watch_database(&pool);
            let display = progress::Display::start(&app.store, &app.bus);
            let until = if until_empty {
                RunUntil::Empty
            } else {
                RunUntil::Shutdown
            };
            pool.run(until, shutdown_signal()).await?;
            let summary = display.finish().await;
            Ok(exit_code(summary.failed > 0))
        }
        Command::Process {
            paths,
            story,
            run,
            json,
        } => {
            let registry = app.storytellers()?;
            let mut events = app.bus.subscribe();
            let (jobs, refused) = app.add(&registry, paths, &story).await?;
            output::print_refusals(&refused);
            let ids: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
            let pool = app.pool(registry, &run)?;
            // A cancel from another terminal must reach the jobs this command waits for.
            let _watcher = app.watch_database(&pool);
            let paused = app.say_if_paused().await?;
            let pending_any = jobs.iter().any(|j| !j.state.is_finished());
            if paused && pending_any {
                // Nothing would run: say so rather than wait for a resume that may never come.
                return Ok(ExitCode::from(1));
            }
            let display = progress::Display::start(&app.store, &app.bus);
            let pending: std::collections::HashSet<JobId> = jobs
                .iter()
                .filter(|j| !j.state.is_finished())
                .map(|j| j.id)
                .collect();
            let store = app.store.clone();
            let done = async move {
                let mut pending = pending;
                // Listened for once, not re-installed for every event that arrives.
                let interrupted = shutdown_signal();
                tokio::pin!(interrupted);
                while !pending.is_empty() {
                    tokio::select! {
                        event = events.recv() => match event {
                            Ok(Event::JobFinished { job_id, .. }) => { pending.remove(&job_id); }
                            Ok(Event::QueuePaused { reason }) => {
                                eprintln!("queue paused: {reason}");
                                return;
                            }
                            Ok(_) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                // Missed some events: ask the store which are still open.
                                if let Ok(current) = store.list(JobFilter { ids: Some(pending.iter().copied().collect()), ..JobFilter::default() }).await {
                                    pending = current.into_iter().filter(|j| !j.state.is_finished()).map(|j| j.id).collect();
                                }
                            }
                            Err(_) => return,
                        },
                        _ = &mut interrupted => return,
                    }
                }
            };
            pool.run(RunUntil::Shutdown, done).await?;
            display.finish().await;
            let finished = app
                .store
                .list(JobFilter {
                    ids: Some(ids),
                    ..JobFilter::default()
                })
                .await?;
            let failed =
                finished.iter().any(|j| j.state != JobState::Succeeded) || !refused.is_empty();
            if json {
                output::print_json(&finished.iter().map(output::job_json).collect::<Vec<_>>())?;
            } else {
                output::print_stories(&finished);
            }
            Ok(exit_code(failed))
        }
        Command::List { state, json } => {
            let jobs = app
                .store
                .list(JobFilter {
                    state,
                    ..JobFilter::default()
                })
                .await?;
            if json {
                output::print_json(&jobs.iter().map(output::job_json).collect::<Vec<_>>())?;
            } else {
                output::print_table(&jobs);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show { id, json } => {
            let job = app.store.get(&id).await?;
            if json {
                output::print_json(&output::job_json(&job))?;
            } else {
                output::print_job(&job);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { id } => {
            let job = app.store.get(&id).await?;
            let job = app.store.cancel(job.id).await?;
            out!(
                "cancelled {}  {}",
                output::short_id(job.id),
                job.file_name()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Retry { id } => {
            let job = app.store.get(&id).await?;
            let job = app.store.retry(job.id).await?;
            out!(
                "queued again {}  {}",
                output::short_id(job.id),
                job.file_name()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Rm { id } => {
            let job = app.store.get(&id).await?;
            let removed = app.store.delete(job.id).await?;
            media::remove_thumbnails(app.home.thumbnails(), removed.orphaned_hashes).await;
            out!("deleted {}  {}", output::short_id(job.id), job.file_name());
            Ok(ExitCode::SUCCESS)
        }
        Command::Clear => {
            let removed = app.store.clear_finished().await?;
            media::remove_thumbnails(app.home.thumbnails(), removed.orphaned_hashes).await;
            let n = removed.jobs;
            out!("deleted {n} finished job{}", if n == 1 { "" } else { "s" });
            Ok(ExitCode::SUCCESS)
        }
        Command::Pause { reason } => {
            app.store.set_paused(Some(reason)).await?;
            out!("queue paused");
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume => {
            app.store.set_paused(None).await?;
            out!("queue resumed");
            Ok(ExitCode::SUCCESS)
        }
        Command::Stats { json } => {
            let stats = app.store.stats().await?;
            if json {
                output::print_json(&stats)?;
            } else {
                output::print_stats(&stats);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { format, out } => {
            let jobs = app
                .store
                .list(JobFilter {
                    state: Some(JobState::Succeeded),
                    ..JobFilter::default()
                })
                .await?;
            let text = export::render(&jobs, format);
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("exported {} stories to {}", jobs.len(), path.display());
                }
                None => out!("{}", text.trim_end()),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn exit_code(failed: bool) -> ExitCode {
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Resolves on Ctrl-C or SIGTERM; a second signal exits at once.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    eprintln!("stopping: running jobs go back to the queue (press Ctrl-C again to quit at once)");
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}
