//! How jobs, stories and stats are printed: a JSON shape for scripts, plain text for people.

use serde_json::{json, Value};
use storyteller_engine::intake::Refusal;
use storyteller_engine::job::{iso8601, Job};
use storyteller_engine::{JobId, QueueStats};

/// The first 8 hex digits of an id: unique enough to type, accepted by every id argument.
pub fn short_id(id: JobId) -> String {
    id.to_string().chars().take(8).collect()
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
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Refused paths on stderr, one line each.
pub fn print_refusals(refused: &[Refusal]) {
    for refusal in refused {
        eprintln!("refused {}: {}", refusal.path.display(), refusal.reason);
    }
}

/// One line per job.
pub fn print_table(jobs: &[Job]) {
    if jobs.is_empty() {
        println!("no jobs");
        return;
    }
    println!(
        "{:<8}  {:<9}  {:<9}  {:>4}  {:<6}  FILE",
        "ID", "STATE", "STAGE", "%", "PRIO"
    );
    for job in jobs {
        let note = match (&job.error, job.cached) {
            (Some(error), _) => format!("  — {}", error.message),
            (None, true) => "  (cached)".into(),
            _ => String::new(),
        };
        println!(
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
    println!("id:          {}", job.id);
    println!("file:        {}", job.source.display());
    println!("state:       {} ({})", job.state, job.stage);
    println!("progress:    {:.0}%", job.progress * 100.0);
    println!("attempts:    {}", job.attempts);
    println!("priority:    {}", job.priority);
    println!(
        "storyteller: {} · {} · {}",
        job.storyteller, job.model, job.preset
    );
    println!("added:       {}", iso8601(job.created_at_ms));
    if let Some(finished) = job.finished_at_ms {
        println!("finished:    {}", iso8601(finished));
    }
    if job.cached {
        println!("cached:      yes (story reused from an identical video)");
    }
    if let Some(error) = &job.error {
        println!("error:       {} ({})", error.message, error.kind.as_str());
    }
    if let Some(story) = &job.story {
        println!("\n{}", story.trim_end());
    }
}

/// The stories of `jobs`, each under its file name; failures say why.
pub fn print_stories(jobs: &[Job]) {
    for job in jobs {
        println!("── {} ──", job.file_name());
        match (&job.story, &job.error) {
            (Some(story), _) => println!("{}\n", story.trim_end()),
            (None, Some(error)) => println!("({}: {})\n", job.state, error.message),
            (None, None) => println!("({})\n", job.state),
        }
    }
}

/// Counts and cache figures.
pub fn print_stats(stats: &QueueStats) {
    println!("queued:     {}", stats.queued);
    println!("running:    {}", stats.running);
    println!("succeeded:  {}", stats.succeeded);
    println!("dead:       {}", stats.dead);
    println!("cancelled:  {}", stats.cancelled);
    println!(
        "cache:      {} hits, {} misses",
        stats.cache_hits, stats.cache_misses
    );
    if let Some(reason) = &stats.paused {
        println!("paused:     {reason}");
    }
}
