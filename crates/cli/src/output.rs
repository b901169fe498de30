//! How the engine's wire types are printed: the types themselves as JSON for scripts, plain
//! text for people.

use storyteller_engine::settings::Settings;
use storyteller_engine::wire::{AddOutcome, AddReport, JobPage, SearchHit};
use storyteller_engine::{Envelope, Event, JobState, JobView, QueueStats};

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

/// Pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// One line of compact JSON on stdout.
pub fn print_json_line(value: &impl serde::Serialize) -> anyhow::Result<()> {
    out!("{}", serde_json::to_string(value)?);
    Ok(())
}

/// What an add did: a line per new or known job on stdout, refusals on stderr.
pub fn print_add_report(report: &AddReport) {
    for entry in &report.entries {
        let Some(job) = &entry.job else { continue };
        match entry.outcome {
            AddOutcome::Queued => out!("added {}  {}", job.short_id, one_line(&job.source)),
            AddOutcome::Cached => out!(
                "added {}  {} (story from cache)",
                job.short_id,
                one_line(&job.source)
            ),
            AddOutcome::AlreadyAdded => out!(
                "already added {}  {} ({}; --again adds it once more)",
                job.short_id,
                one_line(&job.source),
                job.state
            ),
            AddOutcome::Refused | AddOutcome::Skipped => {}
        }
    }
    if report.reused_hashes > 0 {
        let n = report.reused_hashes;
        let noun = if n == 1 { "file" } else { "files" };
        out!("{n} {noun} not read again: hashed before, and unchanged since");
    }
    print_add_problems(report);
}

/// Refused and skipped paths on stderr, one line each.
pub fn print_add_problems(report: &AddReport) {
    for entry in &report.entries {
        let verb = match entry.outcome {
            AddOutcome::Refused => "refused",
            AddOutcome::Skipped => "skipped",
            _ => continue,
        };
        eprintln!(
            "{verb} {}: {}",
            one_line(&entry.path),
            entry.reason.as_deref().unwrap_or("")
        );
    }
}

/// One line per job.
pub fn print_table(page: &JobPage) {
    if page.jobs.is_empty() {
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
    for job in &page.jobs {
        let note = match (&job.error, job.cached) {
            (Some(error), _) => format!("  — {}", error.message),
            (None, true) => "  (cached)".into(),
            _ => String::new(),
        };
        // How far a job that ended without a story had got says nothing useful.
        let percent = match job.state {
            JobState::Dead | JobState::Cancelled => "-".to_owned(),
            _ => format!("{:.0}", job.progress * 100.0),
        };
        out!(
            "{:<8}  {:<9}  {:<9}  {:>4}  {:<6}  {}{}",
            job.short_id,
            job.state.as_str(),
            job.stage.as_str(),
            percent,
            job.priority.as_str(),
            one_line(&job.file),
            one_line(&note),
        );
    }
    if let Some(next) = page.next {
        out!("… more: --after {next}");
    }
}

/// Everything about one job, then its story.
pub fn print_job(job: &JobView) {
    out!("id:          {}", job.id);
    out!("file:        {}", job.source);
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
    let wishes = job.style.describe();
    if !wishes.is_empty() {
        out!("asked:       {wishes}");
    }
    if let Some(prompt) = &job.style.prompt {
        out!("instructions: {prompt}");
    }
    out!("added:       {}", job.created_at);
    if let Some(finished) = &job.finished_at {
        out!("finished:    {finished}");
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
pub fn print_stories(jobs: &[JobView]) {
    for job in jobs {
        out!("── {} ──", job.file);
        match (&job.story, &job.error) {
            (Some(story), _) => out!("{}\n", story.trim_end()),
            (None, Some(error)) => out!("({}: {})\n", job.state, error.message),
            (None, None) => out!("({})\n", job.state),
        }
    }
}

/// Search hits: the short id and file name, then the line of the story that matched.
pub fn print_search_hits(hits: &[SearchHit]) {
    if hits.is_empty() {
        out!("no story found");
        return;
    }
    for (index, hit) in hits.iter().enumerate() {
        if index > 0 {
            out!("");
        }
        out!("{}  {}", hit.job.short_id, one_line(&hit.job.file));
        out!("    {}", one_line(&hit.snippet));
    }
}

/// Counts and cache figures.
/// `left` of the running jobs were left by a runner that stopped.
pub fn print_stats(stats: &QueueStats, left: u32) {
    out!("queued:     {}", stats.queued);
    if left > 0 {
        out!(
            "running:    {} ({left} left by a runner that stopped: they go back to the queue \
             when `storyteller run` starts)",
            stats.running
        );
    } else {
        out!("running:    {}", stats.running);
    }
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
    for pause in &stats.paused_storytellers {
        out!("{}", pause_words(pause));
    }
}

/// The live workers, a paragraph each: who and where, since when, what it tells.
pub fn print_workers(workers: &[storyteller_engine::wire::WorkerView]) {
    if workers.is_empty() {
        eprintln!("no worker is running; `storyteller run` starts one");
        return;
    }
    for worker in workers {
        let mut about = vec![worker.owner.clone()];
        if let Some(machine) = &worker.machine {
            about.push(format!("on {}", one_line(machine)));
        }
        if let Some(pid) = worker.pid {
            about.push(format!("process {pid}"));
        }
        if let Some(since) = &worker.started_at {
            about.push(format!("since {since}"));
        }
        out!("{}", about.join(", "));
        if worker.running.is_empty() {
            out!("  idle");
        }
        for job in &worker.running {
            out!(
                "  {}  {}  {} {:.0}%",
                job.short_id,
                one_line(&job.file),
                job.stage.as_str(),
                job.progress * 100.0
            );
        }
    }
}

/// A paused storyteller in a line: who, why, how many wait, until when.
pub fn pause_words(pause: &storyteller_engine::wire::StorytellerPauseView) -> String {
    let until = pause
        .until
        .as_deref()
        .map(|until| format!(", until {until}"))
        .unwrap_or_else(|| {
            format!(
                "; `storyteller resume --storyteller {}` starts it again",
                pause.storyteller
            )
        });
    format!(
        "{} paused ({} waiting{until}): {}",
        pause.storyteller, pause.queued, pause.reason
    )
}

/// One check of `doctor`, in a line: a tick or a cross, what, and what was found.
pub fn check_words(check: &storyteller_engine::wire::DoctorCheck) -> String {
    let mark = match (check.ok, check.needed) {
        (true, _) => "ok ",
        (false, true) => "FIX",
        // Not set up, and not in use: for information.
        (false, false) => " - ",
    };
    let model = check
        .model
        .as_deref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    format!("{mark} {}{model}: {}", check.subject, check.message)
}

/// An estimate: a line per video, then the totals and the time.
pub fn print_estimate(report: &storyteller_engine::wire::EstimateReport) {
    let free = report.input_tokens + report.output_tokens == 0.0;
    let money = |usd: f64| {
        if free {
            "free (told on this machine)".to_owned()
        } else if report.priced {
            storyteller_engine::pricing::dollars((usd * 1e6).round() as u64)
        } else {
            "price unknown".to_owned()
        }
    };
    for video in &report.videos {
        let name = one_line(&video.path);
        match &video.error {
            Some(error) => out!("{name}: cannot be told: {error}"),
            None => {
                let length = video
                    .duration_secs
                    .map(storyteller_engine::media::clock)
                    .unwrap_or_default();
                if free {
                    out!("{name}  {length}");
                } else {
                    out!(
                        "{name}  {length}  ~{} tokens in, ~{} out  {}",
                        thousands(video.input_tokens),
                        thousands(video.output_tokens),
                        money(video.cost_usd)
                    );
                }
                if let Some(note) = &video.note {
                    out!("  {note}");
                }
            }
        }
    }
    for refused in &report.refused {
        out!(
            "{}: {}",
            one_line(&refused.path),
            refused.reason.as_deref().unwrap_or("not a video")
        );
    }
    let told = report.videos.iter().filter(|v| v.error.is_none()).count();
    let spend = if free {
        money(0.0)
    } else {
        format!(
            "~{} tokens in, ~{} out, {} in all",
            thousands(report.input_tokens),
            thousands(report.output_tokens),
            money(report.cost_usd)
        )
    };
    out!(
        "{told} video{} with {} ({}, {}): {spend}; about {} ({})",
        if told == 1 { "" } else { "s" },
        report.storyteller,
        report.model,
        report.preset,
        duration_words(report.expected_secs),
        report.time_basis
    );
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

fn duration_words(secs: f64) -> String {
    let secs = secs.round() as u64;
    match secs {
        0..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, (secs % 3600) / 60),
    }
}

/// Where a storyteller's key comes from, in a line.
pub fn key_words(key: &storyteller_engine::secrets::KeyStatusView) -> String {
    use storyteller_engine::secrets::KeySource;
    let masked = key.masked.as_deref().unwrap_or("");
    match key.source {
        KeySource::Environment => format!("{}: {masked} from {}", key.storyteller, key.env_var),
        KeySource::Keychain => format!("{}: {masked} from the keychain", key.storyteller),
        KeySource::None if key.keychain_available => format!(
            "{}: no key (`storyteller config set-key {}`, or set {})",
            key.storyteller, key.storyteller, key.env_var
        ),
        KeySource::None => format!(
            "{}: no key (set {}; no keychain can be used here)",
            key.storyteller, key.env_var
        ),
    }
}

/// The settings, one per line.
pub fn print_settings(settings: &Settings) {
    out!("concurrency:  {}", settings.concurrency);
    out!("storyteller:  {}", settings.storyteller);
    out!(
        "model:        {}",
        settings
            .model
            .as_deref()
            .unwrap_or("(the storyteller's own)")
    );
    out!(
        "preset:       {}",
        settings
            .preset
            .as_deref()
            .unwrap_or("(the storyteller's first)")
    );
    out!("priority:     {}", settings.priority);
    let formats: Vec<&str> = settings
        .beside_formats
        .iter()
        .map(|f| f.extension())
        .collect();
    out!(
        "beside video: {}",
        if settings.save_beside_video {
            format!("on ({})", formats.join(", "))
        } else {
            "off".into()
        }
    );
}

/// One event in a line for people.
pub fn print_event(envelope: &Envelope) {
    let line = match &envelope.event {
        Event::JobsAdded { jobs, .. } => format!("{} job(s) added", jobs.len()),
        Event::JobUpdated {
            job_id,
            state,
            stage,
            progress,
            ..
        } => format!("{job_id} {state} {stage} {:.0}%", progress * 100.0),
        Event::StoryDelta { job_id, text, .. } => format!("{job_id} writes: {text}"),
        Event::JobFinished {
            job_id,
            state,
            error,
            ..
        } => match error {
            Some(error) => format!("{job_id} {state}: {}", error.message),
            None => format!("{job_id} {state}"),
        },
        Event::PriorityChanged { job_id, priority } => format!("{job_id} priority {priority}"),
        Event::JobsRemoved { job_ids } => format!("{} job(s) deleted", job_ids.len()),
        Event::QueueStats { stats } => format!(
            "{} queued, {} running, {} finished",
            stats.queued,
            stats.running,
            stats.finished()
        ),
        Event::QueuePaused { reason } => format!("queue paused: {reason}"),
        Event::QueueResumed => "queue resumed".into(),
        Event::UploadProgress {
            job_id,
            sent_bytes,
            total_bytes,
        } => format!("{job_id} uploaded {sent_bytes} of {total_bytes} bytes"),
        Event::JobSpent { job_id, usage } => format!(
            "{job_id} spent {} input and {} output tokens in all, ${:.6}",
            usage.input_tokens, usage.output_tokens, usage.cost_usd
        ),
        Event::StorytellerPaused { pause } => pause_words(pause),
        Event::StorytellerResumed { storyteller } => format!("{storyteller} resumed"),
        Event::ConcurrencyChanged { concurrency } => format!(
            "{concurrency} job{} at once",
            if *concurrency == 1 { "" } else { "s" }
        ),
        Event::SettingsChanged => "settings changed".into(),
        Event::JobMoved { job_id, source } => format!("{job_id} video moved to {source}"),
        Event::WatchedFoldersChanged => "watched folders changed".into(),
        Event::WatchedFolderStatus { folder, status } => {
            format!("{folder}: {}", status.describe())
        }
        Event::Resync { missed } => format!("(missed {missed} events)"),
    };
    out!("{} {line}", envelope.seq);
}

/// `text` fit for output that is one line per job: line breaks, tabs and other control
/// characters in a file name are shown escaped (`\n`), so a row never splits.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Every setting in a table: key, value, where it comes from (blank for the default), and
/// what it does, grouped by storyteller with a blank line between groups.
pub fn config_table(entries: &[storyteller_engine::config::ConfigEntry]) -> String {
    use storyteller_engine::config::ConfigSource;
    let width = entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
    let value_width = entries
        .iter()
        .map(|e| e.value.as_deref().unwrap_or("none").chars().count())
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    let mut group: Option<String> = None;
    for entry in entries {
        let this = entry
            .key
            .split('.')
            .take(if entry.key.starts_with("price.") {
                1
            } else {
                entry.key.matches('.').count()
            })
            .collect::<Vec<_>>()
            .join(".");
        if group.as_ref().is_some_and(|g| *g != this) {
            lines.push(String::new());
        }
        group = Some(this);
        let value = entry.value.as_deref().unwrap_or("none");
        let source = match entry.source {
            ConfigSource::Default => String::new(),
            ConfigSource::Settings => "set".to_owned(),
            ConfigSource::Environment => {
                format!(
                    "from {}",
                    entry.env_var.as_deref().unwrap_or("the environment")
                )
            }
        };
        let source = if source.is_empty() {
            String::new()
        } else {
            format!("[{source}] ")
        };
        lines.push(format!(
            "{:width$}  {:value_width$}  {source}{}",
            entry.key, value, entry.about
        ));
    }
    lines.join("\n")
}

/// What a person should know about a setting just read or set: an environment variable that
/// hides the value kept in the settings.
pub fn config_note(entry: &storyteller_engine::config::ConfigEntry) -> Option<String> {
    use storyteller_engine::config::ConfigSource;
    if entry.source != ConfigSource::Environment {
        return None;
    }
    let var = entry
        .env_var
        .as_deref()
        .unwrap_or("an environment variable");
    Some(format!(
        "note: {var}={} is set and comes first while it is",
        entry.value.as_deref().unwrap_or("")
    ))
}

/// A watched folder's choices, status and counts, indented under its path.
pub fn print_watched_folder(folder: &storyteller_engine::wire::WatchedFolderView) {
    out!("  status:      {}", one_line(&folder.status.describe()));
    let mut choices = Vec::new();
    choices.push(if folder.recursive {
        "with its subfolders".to_owned()
    } else {
        "this folder only".to_owned()
    });
    choices.push(format!(
        "told by {}",
        folder
            .storyteller
            .as_deref()
            .unwrap_or("the settings' storyteller")
    ));
    if let Some(preset) = &folder.preset {
        choices.push(format!("as {preset}"));
    }
    if let Some(priority) = folder.priority {
        choices.push(format!("{priority} priority"));
    }
    if !folder.extensions.is_empty() {
        choices.push(format!("only {}", folder.extensions.join(", ")));
    }
    out!("  choices:     {}", choices.join(", "));
    let formats: Vec<&str> = folder.formats.iter().map(|f| f.extension()).collect();
    let after = match (folder.output.as_str(), &folder.output_folder) {
        ("beside", _) => format!("story beside the video ({})", formats.join(", ")),
        ("folder", Some(dir)) => format!("story into {} ({})", one_line(dir), formats.join(", ")),
        _ => "story kept in the history".to_owned(),
    };
    let moved = if folder.move_done {
        ", video moved into done/"
    } else {
        ""
    };
    out!("  once told:   {after}{moved}");
    if folder.poll {
        out!("  polled:      every 2 s (for network shares)");
    }
    out!(
        "  videos:      {} found, {} queued, {} being told, {} told, {} failed",
        folder.found,
        folder.queued,
        folder.running,
        folder.succeeded,
        folder.failed
    );
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn names_with_line_breaks_stay_on_one_line() {
        assert_eq!(one_line("plain name.mp4"), "plain name.mp4");
        assert_eq!(one_line("two\nlines\r.mp4"), "two\\nlines\\r.mp4");
        assert_eq!(one_line("tab\there.mp4"), "tab\\there.mp4");
    }
}
