//! Progress bars fed by the engine's event stream: one per running job plus a total.
//! Nothing here reads the queue for changes; it only looks up a job's file name once.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write as _;
use storyteller_engine::job::ErrorKind;
use storyteller_engine::wire::AddProgress;
use storyteller_engine::{Engine, Event, JobId, JobState, Subscription};
use tokio::task::JoinHandle;

/// What happened while the display ran.
#[derive(Debug, Default)]
pub struct Summary {
    /// Jobs that succeeded.
    pub succeeded: u64,
    /// Jobs that ended dead.
    pub failed: u64,
}

/// A bar for hashing files before they are queued. Where stderr is not a terminal (a log, a
/// pipe) there is no bar: a line every few seconds says how far hashing has got instead.
pub struct HashingBar {
    bar: ProgressBar,
}

/// How often a line reports hashing when there is no bar to draw.
const HASHING_LINE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl HashingBar {
    /// A bar on stderr, drawn once hashing starts.
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} hashing {pos}/{len} files, {msg}…")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Self { bar }
    }

    /// What [`Engine::add`] calls as each file is hashed.
    pub fn on_progress(&self) -> impl Fn(AddProgress) + Send + Sync + 'static {
        let bar = self.bar.clone();
        let last_line = std::sync::Mutex::new(std::time::Instant::now());
        move |progress| {
            let amount = format!(
                "{} of {}",
                size_words(progress.hashed_bytes),
                size_words(progress.total_bytes)
            );
            bar.set_length(u64::from(progress.total));
            bar.set_position(u64::from(progress.hashed));
            if bar.is_hidden() {
                let Ok(mut last) = last_line.lock() else {
                    return;
                };
                if last.elapsed() >= HASHING_LINE_EVERY && progress.hashed < progress.total {
                    *last = std::time::Instant::now();
                    let _ = writeln!(
                        std::io::stderr().lock(),
                        "hashing: {}/{} files, {amount}",
                        progress.hashed,
                        progress.total
                    );
                }
            } else {
                bar.set_message(amount);
            }
        }
    }

    /// Clears the bar.
    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}

/// The running display; [`Display::finish`] stops it.
pub struct Display {
    task: JoinHandle<Summary>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Display {
    /// Starts drawing from `engine`'s events.
    pub fn start(engine: &Engine) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(draw(engine.clone(), engine.subscribe(), stopped));
        Self { task, stop }
    }

    /// Stops drawing; what happened.
    pub async fn finish(self) -> Summary {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

fn job_style() -> ProgressStyle {
    ProgressStyle::with_template("  {bar:24.cyan/blue} {percent:>3}% {prefix:.bold} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("█▌ ")
}

fn total_style() -> ProgressStyle {
    // The estimate comes from the pace of jobs finished so far, the best guide a queue of
    // unknown videos has.
    ProgressStyle::with_template(
        "{bar:30.green/white} {pos}/{len} done {msg} [{elapsed_precise}, about {eta} left]",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("█▌ ")
}

/// The job's file name, looked up once per job.
async fn file_name(engine: &Engine, job_id: JobId) -> String {
    engine
        .get(&job_id.to_string())
        .await
        .map(|j| j.file)
        .unwrap_or_else(|_| job_id.to_string())
}

async fn draw(
    engine: Engine,
    mut events: Subscription,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) -> Summary {
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let total = multi.add(ProgressBar::new(0));
    total.set_style(total_style());
    let mut bars: HashMap<JobId, ProgressBar> = HashMap::new();
    let mut names: HashMap<JobId, String> = HashMap::new();
    let mut summary = Summary::default();
    let mut baseline: Option<u64> = None;
    // Lines go through the multi-progress when bars are drawn, straight to stderr otherwise.
    let say = |multi: &MultiProgress, line: String| {
        if multi.is_hidden() {
            // A closed terminal (SIGHUP) must not turn a line into a panic.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        } else {
            let _ = multi.println(line);
        }
    };
    let mut stopping = false;
    loop {
        let event = if stopping {
            // Stopped: what is already published still gets its line (the last jobs of a run
            // finish just before the stop), then the display ends.
            match events.try_recv() {
                Some(envelope) => envelope.event,
                None => break,
            }
        } else {
            tokio::select! {
                biased;
                event = events.recv() => match event {
                    Some(envelope) => envelope.event,
                    None => break,
                },
                _ = &mut stopped => {
                    stopping = true;
                    continue;
                }
            }
        };
        match event {
            Event::JobUpdated {
                job_id,
                state: JobState::Running,
                stage,
                progress,
                ..
            } => {
                if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(job_id) {
                    slot.insert(file_name(&engine, job_id).await);
                }
                let bar = bars.entry(job_id).or_insert_with(|| {
                    let bar = multi.insert_before(&total, ProgressBar::new(100));
                    bar.set_style(job_style());
                    bar.set_prefix(names.get(&job_id).cloned().unwrap_or_default());
                    bar
                });
                bar.set_message(stage.as_str());
                bar.set_position((progress * 100.0).round() as u64);
            }
            Event::JobUpdated {
                job_id,
                state: JobState::Queued,
                error: Some(error),
                ..
            } => {
                if let Some(bar) = bars.remove(&job_id) {
                    bar.finish_and_clear();
                }
                let name = names
                    .get(&job_id)
                    .cloned()
                    .unwrap_or_else(|| job_id.to_string());
                // Put back because the queue paused (a broken tool, a full disk, a refused key):
                // the pause line already says why, once.
                if !matches!(error.kind, ErrorKind::Setup | ErrorKind::Auth) {
                    say(&multi, format!("↻ {name} — will retry: {}", error.message));
                }
            }
            Event::JobFinished {
                job_id,
                state,
                cached,
                error,
            } => {
                if let Some(bar) = bars.remove(&job_id) {
                    bar.finish_and_clear();
                }
                let name = match names.get(&job_id) {
                    Some(name) => name.clone(),
                    None => file_name(&engine, job_id).await,
                };
                let line = match (state, error) {
                    (JobState::Succeeded, _) => {
                        summary.succeeded += 1;
                        format!("✓ {name}{}", if cached { " (from cache)" } else { "" })
                    }
                    (JobState::Dead, Some(error)) => {
                        summary.failed += 1;
                        format!("✗ {name} — {}", error.message)
                    }
                    (state, _) => {
                        if state == JobState::Dead {
                            summary.failed += 1;
                        }
                        format!("· {name} — {state}")
                    }
                };
                say(&multi, line);
            }
            Event::JobsAdded { jobs, .. } => {
                for job in jobs.iter() {
                    names.insert(job.id, job.file.clone());
                }
            }
            Event::QueueStats { stats } => {
                let finished = u64::from(stats.finished());
                let base = *baseline
                    .get_or_insert(finished.saturating_sub(summary.succeeded + summary.failed));
                let done = finished.saturating_sub(base);
                total.set_length(done + u64::from(stats.queued) + u64::from(stats.running));
                total.set_position(done);
                total.set_message(format!(
                    "· {} running · {} queued",
                    stats.running, stats.queued
                ));
            }
            Event::QueuePaused { reason } => say(&multi, format!("⏸ queue paused: {reason}")),
            Event::QueueResumed => say(&multi, "▶ queue resumed".into()),
            Event::StorytellerPaused { pause } => {
                say(&multi, format!("⏸ {}", crate::output::pause_words(&pause)))
            }
            Event::StorytellerResumed { storyteller } => {
                say(&multi, format!("▶ {storyteller} resumed"))
            }
            _ => {}
        }
    }
    for bar in bars.values() {
        bar.finish_and_clear();
    }
    total.finish_and_clear();
    summary
}

/// A size in bytes in words a person reads at a glance (1000-based, as disks are sold).
fn size_words(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0.0);
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::size_words;

    #[test]
    fn sizes_read_at_a_glance() {
        assert_eq!(size_words(0.0), "0 B");
        assert_eq!(size_words(999.0), "999 B");
        assert_eq!(size_words(1_500.0), "1.5 KB");
        assert_eq!(size_words(3.2e9), "3.2 GB");
        assert_eq!(size_words(1.0e13), "10.0 TB");
    }
}
