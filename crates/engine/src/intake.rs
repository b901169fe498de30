//! Turning the paths a person gives (files, folders) into jobs: which files are videos, which are
//! refused and why, and each file's content hash.
//!
//! Folders are walked recursively; in a folder, files without a video extension are skipped (and
//! listed). A file named explicitly is refused only if it cannot be a video at all: missing,
//! empty, unreadable, not a regular file, or neither a video extension nor video bytes. A file
//! that looks like a video but is broken is accepted here and fails its own job when probed.

use crate::job::{NewJob, Priority, StorySpec};
use crate::store::{FileKey, SourceKey};
use serde::Serialize;
use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// File extensions treated as video (lower case).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "3g2", "3gp", "asf", "avi", "dv", "f4v", "flv", "m2t", "m2ts", "m4v", "mkv", "mod", "mov",
    "mp4", "mpeg", "mpg", "mts", "mxf", "ogv", "qt", "rm", "rmvb", "ts", "vob", "webm", "wmv",
];

/// A path that did not become a job, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The path as given or found.
    pub path: PathBuf,
    /// Why, for people.
    pub reason: String,
    /// A non-video passed over inside a folder (not an error), rather than a path refused.
    pub skipped: bool,
}

impl Refusal {
    fn new(path: PathBuf, reason: impl Into<String>) -> Self {
        Self {
            path,
            reason: reason.into(),
            skipped: false,
        }
    }
}

/// What came of a set of paths: jobs ready to enqueue and the paths refused.
#[derive(Debug, Default)]
pub struct Intake {
    /// One per video found, hashed.
    pub jobs: Vec<NewJob>,
    /// Paths refused (explicit files) or skipped (non-videos in folders).
    pub refused: Vec<Refusal>,
}

/// How the jobs made from these paths should run.
#[derive(Clone, Debug)]
pub struct IntakeOptions {
    /// Storyteller, model, preset.
    pub spec: StorySpec,
    /// Scheduling class.
    pub priority: Priority,
    /// Skip the result cache.
    pub no_cache: bool,
    /// Make new jobs even for files that already have one.
    pub again: bool,
}

/// A sentence for an I/O error that names the problem rather than the errno.
pub fn describe_io_error(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => {
            "permission denied (Storyteller is not allowed to read it)".into()
        }
        std::io::ErrorKind::IsADirectory => "is a folder, not a file".into(),
        _ => error.to_string(),
    }
}

/// Whether `path` has a video file extension.
pub fn has_video_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Whether the first bytes of a file look like a video container we know.
pub fn looks_like_video(head: &[u8]) -> bool {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    at(4, b"ftyp")                                    // MP4, MOV, 3GP
        || at(0, &[0x1A, 0x45, 0xDF, 0xA3])          // Matroska, WebM
        || (at(0, b"RIFF") && at(8, b"AVI "))         // AVI
        || at(0, b"FLV")                              // Flash video
        || at(0, b"OggS")                             // Ogg (Theora)
        || at(0, &[0x00, 0x00, 0x01, 0xBA])          // MPEG program stream
        || at(0, &[0x30, 0x26, 0xB2, 0x75])          // ASF, WMV
        || (head.len() >= 189 && head[0] == 0x47 && head[188] == 0x47) // MPEG transport stream
}

/// Expands `paths` into candidate video files (recursing into folders) and refusals.
/// Synchronous: call it from a blocking context.
pub fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Refusal>) {
    let mut found = Vec::new();
    let mut refused = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for path in paths {
        match std::fs::metadata(path) {
            Err(e) => refused.push(Refusal::new(path.clone(), describe_io_error(&e))),
            Ok(meta) if meta.is_dir() => {
                let (found_before, refused_before) = (found.len(), refused.len());
                walk(path, &mut found, &mut refused, &mut seen);
                // A folder that gave nothing at all says so, rather than adding nothing silently.
                if found.len() == found_before && refused.len() == refused_before {
                    refused.push(Refusal::new(
                        path.clone(),
                        "no videos in this folder (hidden files are ignored)",
                    ));
                }
            }
            Ok(_) => {
                if let Some(reason) = explicit_file_problem(path) {
                    refused.push(Refusal::new(path.clone(), reason));
                } else if seen.insert(canonical(path)) {
                    found.push(path.clone());
                }
            }
        }
    }
    (found, refused)
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn walk(
    dir: &Path,
    found: &mut Vec<PathBuf>,
    refused: &mut Vec<Refusal>,
    seen: &mut std::collections::HashSet<PathBuf>,
) {
    // Canonical folders in `seen` stop symlink loops.
    if !seen.insert(canonical(dir)) {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            refused.push(Refusal::new(
                dir.to_path_buf(),
                format!("folder cannot be read: {}", describe_io_error(&e)),
            ));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    // Sorted, so a folder becomes jobs in the order people see it in a file manager.
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.starts_with('.'))
            .unwrap_or(false);
        if hidden {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk(&path, found, refused, seen),
            Ok(_) if !has_video_extension(&path) => refused.push(Refusal {
                path,
                reason: "not a video file".into(),
                skipped: true,
            }),
            Ok(_) => match file_problem(&path) {
                Some(reason) => refused.push(Refusal::new(path, reason)),
                None => {
                    if seen.insert(canonical(&path)) {
                        found.push(path);
                    }
                }
            },
            Err(e) => refused.push(Refusal::new(path, describe_io_error(&e))),
        }
    }
}

/// Why a file cannot be a job, whatever its name: not regular, empty or unreadable.
pub(crate) fn file_problem(path: &Path) -> Option<String> {
    // On Unix a path is bytes and the store keeps them as they are. Elsewhere a name that is
    // not Unicode would come back as another name ("the file is gone" at run time), so it is
    // refused plainly instead.
    #[cfg(not(unix))]
    if path.to_str().is_none() {
        return Some(
            "its name is not valid Unicode text, which Storyteller cannot keep; rename the file"
                .into(),
        );
    }
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => return Some(describe_io_error(&e)),
    };
    if !meta.is_file() {
        return Some("not a regular file (a device, pipe or socket)".into());
    }
    if meta.len() == 0 {
        return Some("the file is empty (0 bytes)".into());
    }
    match File::open(path) {
        Ok(_) => None,
        Err(e) => Some(format!("cannot be read: {}", describe_io_error(&e))),
    }
}

/// [`file_problem`], plus: without a video extension, the bytes must look like a video.
fn explicit_file_problem(path: &Path) -> Option<String> {
    if let Some(problem) = file_problem(path) {
        return Some(problem);
    }
    if has_video_extension(path) {
        return None;
    }
    let mut head = [0u8; 189];
    let read = File::open(path).and_then(|mut f| {
        let mut filled = 0;
        while filled < head.len() {
            match f.read(&mut head[filled..])? {
                0 => break,
                n => filled += n,
            }
        }
        Ok(filled)
    });
    match read {
        Ok(n) if looks_like_video(&head[..n]) => None,
        Ok(_) => Some(format!(
            "not a video file{}; Storyteller reads {}",
            path.extension()
                .and_then(|e| e.to_str())
                .map(|e| format!(" (.{e})"))
                .unwrap_or_default(),
            "mp4, mov, mkv, webm, avi and other video files"
        )),
        Err(e) => Some(format!("cannot be read: {}", describe_io_error(&e))),
    }
}

/// A file's modification time in ms since the Unix epoch (0 when the OS does not say).
pub fn mtime_ms(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// What a file is now, when it is no longer what a job recorded: (size, mtime, content hash).
/// `Ok(None)` when it is unchanged, or cannot be read (the storyteller then reports why); an
/// error when something that is not a file stands at its path now (a pipe or a device swapped
/// in after it was added), which is never opened: opening a pipe waits for a writer for ever.
pub fn changed_since(
    path: &Path,
    size: u64,
    mtime: i64,
) -> Result<Option<(u64, i64, String)>, String> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    if !meta.is_file() {
        return Err("not a regular file any more (a device, pipe or socket is there now)".into());
    }
    if meta.len() == size && mtime_ms(&meta) == mtime {
        return Ok(None);
    }
    Ok(hash_file(path)
        .ok()
        .map(|content_hash| (meta.len(), mtime_ms(&meta), content_hash)))
}

/// Streams the file through blake3; the hex digest. Memory stays at one buffer whatever the size.
pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buffer)? {
            0 => break,
            n => {
                hasher.update(&buffer[..n]);
            }
        }
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// A job for `path`, hashed unless `known` holds its hash for the file as it is now; with the
/// file's key when it was hashed here.
fn new_job(
    path: PathBuf,
    options: &IntakeOptions,
    known: Option<&(FileKey, String)>,
) -> Result<(NewJob, Option<FileKey>), Refusal> {
    let refuse = |reason: String| Refusal::new(path.clone(), reason);
    let meta = std::fs::metadata(&path).map_err(|e| refuse(describe_io_error(&e)))?;
    let mtime_ms = mtime_ms(&meta);
    let source = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    let (content_hash, hashed) = match known {
        Some((key, hash)) if key.size == meta.len() && key.mtime_ms == mtime_ms => {
            (hash.clone(), None)
        }
        _ => {
            let hash = hash_file(&path)
                .map_err(|e| refuse(format!("cannot be read: {}", describe_io_error(&e))))?;
            let key = FileKey {
                source: source.clone(),
                size: meta.len(),
                mtime_ms,
            };
            (hash, Some(key))
        }
    };
    let job = NewJob {
        source,
        size: meta.len(),
        mtime_ms,
        content_hash,
        spec: options.spec.clone(),
        priority: options.priority,
        no_cache: options.no_cache,
        again: options.again,
        watched_folder: None,
    };
    Ok((job, hashed))
}

/// The file `path` is now, for [`crate::store::JobStore::known_hashes`]; `None` when it cannot
/// be looked at (hashing it will say why).
pub fn file_key(path: &Path) -> Option<FileKey> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileKey {
        source: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        size: meta.len(),
        mtime_ms: mtime_ms(&meta),
    })
}

/// What names `path`'s job for "is it already there?" (see [`SourceKey`]); `None` when the file
/// cannot be looked at (hashing it will say why).
pub fn source_key(path: &Path, spec: &StorySpec) -> Option<SourceKey> {
    let meta = std::fs::metadata(path).ok()?;
    Some(SourceKey {
        source: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        size: meta.len(),
        mtime_ms: mtime_ms(&meta),
        spec: spec.clone(),
    })
}

/// [`collect`] on the blocking pool.
pub async fn collect_off_thread(paths: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<Refusal>) {
    match tokio::task::spawn_blocking(move || collect(&paths)).await {
        Ok(collected) => collected,
        Err(e) => (
            Vec::new(),
            vec![Refusal::new(
                PathBuf::new(),
                format!("could not list the files: {e}"),
            )],
        ),
    }
}

/// What one file hashed by [`hash_files`] brought: its size, and its key and hash when it was
/// read here (not known before).
pub struct Hashed<'a> {
    /// The file's size in bytes (0 when it was refused).
    pub size: u64,
    /// The file and its content hash, when it was read for it.
    pub fresh: Option<(&'a FileKey, &'a str)>,
}

/// Hashes `candidates` (found by [`collect`]) into new jobs on the blocking pool, two files at
/// a time (one per core here), except those whose hash `known` holds (by path, for the file
/// unchanged); calls `on_file` as each file is done.
pub async fn hash_files(
    candidates: Vec<PathBuf>,
    known: HashMap<PathBuf, (FileKey, String)>,
    options: IntakeOptions,
    on_file: impl Fn(Hashed<'_>) + Send + Sync + 'static,
) -> Intake {
    let mut refused = Vec::new();
    let on_file = Arc::new(on_file);
    let known = Arc::new(known);
    let limit = Arc::new(tokio::sync::Semaphore::new(2));
    let mut tasks = Vec::with_capacity(candidates.len());
    for path in candidates {
        let options = options.clone();
        let limit = limit.clone();
        let on_file = on_file.clone();
        let known = known.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            tokio::task::spawn_blocking(move || {
                let result = new_job(path.clone(), &options, known.get(&path));
                on_file(match &result {
                    Ok((job, Some(key))) => Hashed {
                        size: job.size,
                        fresh: Some((key, &job.content_hash)),
                    },
                    Ok((job, None)) => Hashed {
                        size: job.size,
                        fresh: None,
                    },
                    Err(_) => Hashed {
                        size: 0,
                        fresh: None,
                    },
                });
                result.map(|(job, _)| job)
            })
            .await
        }));
    }
    let mut jobs = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(Ok(Ok(job))) => jobs.push(job),
            Ok(Ok(Err(refusal))) => refused.push(refusal),
            Ok(Err(e)) | Err(e) => refused.push(Refusal::new(
                PathBuf::new(),
                format!("could not hash a file: {e}"),
            )),
        }
    }
    Intake { jobs, refused }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        let mut mp4 = vec![0, 0, 0, 0x20];
        mp4.extend_from_slice(b"ftypisom");
        assert!(looks_like_video(&mp4));
        assert!(looks_like_video(&[0x1A, 0x45, 0xDF, 0xA3, 1, 2]));
        assert!(!looks_like_video(b"hello, this is text"));
        assert!(!looks_like_video(b""));
    }

    #[test]
    fn extensions_ignore_case() {
        assert!(has_video_extension(Path::new("a/B.MP4")));
        assert!(has_video_extension(Path::new("clip.webm")));
        assert!(!has_video_extension(Path::new("notes.txt")));
        assert!(!has_video_extension(Path::new("mp4")));
    }
}
