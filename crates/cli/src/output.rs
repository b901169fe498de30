//! How jobs, stories and stats are printed: a JSON shape for scripts, plain text for people.

use serde_json::{json, Value};
use storyteller_engine::intake::Refusal;
use storyteller_engine::job::{iso8601, Job};
use storyteller_engine::{JobId, QueueStats};

/// The last 8 hex digits of an id. Its first digits are a timestamp shared by every job added
/// in the same minute; the tail is random, so it tells jobs apart. Every id argument accepts it.
pub fn short_id(id: JobId) -> String {
    let full = id.to_string();
    full[full.len() - 8..].to_owned()
}

/// Writes one line to stdout; a closed stdout (`storyteller list | head -1`) ends the program
/// quietly instead of panicking like `println!`.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: could not write to stdout: {e}");
        std::process::exit(1);
    }
}

/// A job as scripts see it (`--json`).
pub fn job_json(job: &Job) -> Value {
    json!({
        "id": job.id,
        "source": job.source,
        "file": job.file_name(),
        "state": job.state,
        "stage": job.stage,
        "progress": job.progress,
        "attempts": job.attempts,
        "priority": job.priority,
        "batch": job.batch_id,
        "storyteller": job.storyteller,
        "model": job.model,
        "preset": job.preset,
        "cached": job.cached,
        "story": job.story,
        "error": job.error,
        "size": job.size,
        "content_hash": job.content_hash,
        "media": job.media,
        "usage": job.usage,
        "run_after": (job.run_after_ms > 0).then(|| iso8601(job.run_after_ms)),
        "created_at": iso8601(job.created_at_ms),
        "started_at": job.started_at_ms.map(iso8601),
        "finished_at": job.finished_at_ms.map(iso8601),
    })
}

/// Pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Refused paths on stderr, one line each.
pub fn print_refusals(refused: &[Refusal]) {
    for refusal in refused {
        let verb = if refusal.skipped {
            "skipped"
        } else {
            "refused"
        };
        eprintln!("{verb} {}: {}", refusal.path.display(), refusal.reason);
    }
}

/// One line per job.
pub fn print_table(jobs: &[Job]) {
    if jobs.is_empty() {
        out!("no jobs");
        return;
    }
    out!(
        "{:<8}  {:<9}  {:<9}  {:>4}  {:<6}  FILE",
        "ID",
        "STATE",
        "STAGE",
        "%",
        "PRIO"
    );
    for job in jobs {
        let note = match (&job.error, job.cached) {
            (Some(error), _) => format!("  — {}", error.message),
            (None, true) => "  (cached)".into(),
            _ => String::new(),
        };
        out!(
            "{:<8}  {:<9}  {:<9}  {:>4.0}  {:<6}  {}{note}",
            short_id(job.id),
            job.state.as_str(),
            job.stage.as_str(),
            job.progress * 100.0,
            job.priority.as_str(),
            job.file_name(),
        );
    }
}

/// Everything about one job, then its story.
pub fn print_job(job: &Job) {
    out!("id:          {}", job.id);
    out!("file:        {}", job.source.display());
    out!("state:       {} ({})", job.state, job.stage);
    out!("progress:    {:.0}%", job.progress * 100.0);
    out!("attempts:    {}", job.attempts);
    out!("priority:    {}", job.priority);
    out!(
        "storyteller: {} · {} · {}",
        job.storyteller,
        job.model,
        job.preset
    );
    out!("added:       {}", iso8601(job.created_at_ms));
    if let Some(finished) = job.finished_at_ms {
        out!("finished:    {}", iso8601(finished));
    }
    if job.cached {
        out!("cached:      yes (story reused from an identical video)");
    }
    if let Some(error) = &job.error {
        out!("error:       {} ({})", error.message, error.kind.as_str());
    }
    if let Some(story) = &job.story {
        out!("\n{}", story.trim_end());
    }
}

/// The stories of `jobs`, each under its file name; failures say why.
pub fn print_stories(jobs: &[Job]) {
    for job in jobs {
        out!("── {} ──", job.file_name());
        match (&job.story, &job.error) {
            (Some(story), _) => out!("{}\n", story.trim_end()),
            (None, Some(error)) => out!("({}: {})\n", job.state, error.message),
            (None, None) => out!("({})\n", job.state),
        }
    }
}

/// Counts and cache figures.
pub fn print_stats(stats: &QueueStats) {
    out!("queued:     {}", stats.queued);
    out!("running:    {}", stats.running);
    out!("succeeded:  {}", stats.succeeded);
    out!("dead:       {}", stats.dead);
    out!("cancelled:  {}", stats.cancelled);
    out!(
        "cache:      {} hits, {} misses",
        stats.cache_hits,
        stats.cache_misses
    );
    if let Some(reason) = &stats.paused {
        out!("paused:     {reason}");
    }
}
