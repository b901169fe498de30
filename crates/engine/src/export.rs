//! Stories out in bulk: every succeeded story with its source file, as Markdown, JSON or text.

use crate::job::{iso8601, Job};
use crate::wire::display_path;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// An export format.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExportFormat {
    /// One `##` section per video.
    Markdown,
    /// A JSON array of `{ id, file, source, storyteller, model, preset, cached, finishedAt, story }`.
    Json,
    /// Plain text, videos separated by rules.
    Text,
}

impl ExportFormat {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Markdown => "md",
            ExportFormat::Json => "json",
            ExportFormat::Text => "txt",
        }
    }
}

/// Where the story of the video at `source` goes beside it: `clip.mp4` → `clip.story.md`.
pub fn beside_path(source: &Path, format: ExportFormat) -> PathBuf {
    let mut name = source.file_stem().unwrap_or_default().to_os_string();
    name.push(".story.");
    name.push(format.extension());
    source.with_file_name(name)
}

/// Writes `job`'s story beside its video, once per format, each file whole (written aside,
/// then renamed); with `skip_existing`, a file already there is left as it is. The files
/// written.
pub fn write_beside(
    job: &Job,
    formats: &[ExportFormat],
    skip_existing: bool,
) -> crate::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for &format in formats {
        let path = beside_path(&job.source, format);
        if skip_existing && path.exists() {
            continue;
        }
        let mut partial = path.clone().into_os_string();
        partial.push(".part");
        let partial = PathBuf::from(partial);
        let text = render(std::slice::from_ref(job), format);
        std::fs::write(&partial, text).map_err(|e| crate::EngineError::io(&partial, &e))?;
        std::fs::rename(&partial, &path).map_err(|e| crate::EngineError::io(&path, &e))?;
        written.push(path);
    }
    Ok(written)
}

impl FromStr for ExportFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "md" | "markdown" => Ok(ExportFormat::Markdown),
            "json" => Ok(ExportFormat::Json),
            "txt" | "text" => Ok(ExportFormat::Text),
            other => Err(format!(
                "unknown export format '{other}' (expected md, json or txt)"
            )),
        }
    }
}

/// One story in a JSON export (camelCase, times in ISO-8601, like the wire model).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExportedStory<'a> {
    id: String,
    file: String,
    source: String,
    storyteller: &'a str,
    model: &'a str,
    preset: &'a str,
    cached: bool,
    finished_at: Option<String>,
    story: &'a str,
}

/// Renders the stories of `jobs` (those without a story are left out) in `format`.
pub fn render(jobs: &[Job], format: ExportFormat) -> String {
    let with_story: Vec<(&Job, &str)> = jobs
        .iter()
        .filter_map(|job| job.story.as_deref().map(|story| (job, story)))
        .collect();
    match format {
        ExportFormat::Json => {
            let rows: Vec<ExportedStory<'_>> = with_story
                .iter()
                .map(|(job, story)| ExportedStory {
                    id: job.id.to_string(),
                    file: job.file_name(),
                    source: display_path(&job.source),
                    storyteller: &job.storyteller,
                    model: &job.model,
                    preset: &job.preset,
                    cached: job.cached,
                    finished_at: job.finished_at_ms.map(iso8601),
                    story,
                })
                .collect();
            let mut out = serde_json::to_string_pretty(&rows).unwrap_or_else(|_| "[]".into());
            out.push('\n');
            out
        }
        ExportFormat::Markdown => {
            let mut out = String::from("# Stories\n");
            for (job, story) in &with_story {
                let _ = write!(
                    out,
                    "\n## {}\n\n*{}*\n\n{}\n",
                    job.file_name(),
                    display_path(&job.source),
                    story.trim_end()
                );
            }
            out
        }
        ExportFormat::Text => {
            let mut out = String::new();
            for (index, (job, story)) in with_story.iter().enumerate() {
                if index > 0 {
                    out.push_str("\n----------------------------------------\n\n");
                }
                let _ = write!(
                    out,
                    "{}\n{}\n\n{}\n",
                    job.file_name(),
                    display_path(&job.source),
                    story.trim_end()
                );
            }
            out
        }
    }
}
