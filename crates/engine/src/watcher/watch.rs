//! The watcher of one folder: the system's file events (or polling, for network shares) feed
//! the [`Settler`]; each file that stops changing is checked, hashed and queued through
//! [`JobStore::enqueue_watched`], which tells each content once per folder.
//!
//! The loop of one folder:
//! 1. **Arm.** The folder must be there and a folder: otherwise its status says it is
//!    missing (or why not) and it is looked for again every few seconds, so a folder deleted
//!    and recreated, renamed back, or on a drive mounted again is watched again by itself.
//! 2. **Catch up.** A scan finds every file the folder would tell ([`super::scan`]); files
//!    seen before, unchanged (same path, size and modification time), are not read again.
//! 3. **Follow.** Each event's paths are looked at again (the kind of event is not trusted:
//!    shares and editors report the same change in many ways). A file that may be a video
//!    starts or restarts its settling window; one gone is forgotten; a folder moved in is
//!    scanned. Events that came too fast to keep, or that the system says were dropped, mean a
//!    whole scan again. A polled folder (a network share, or a system out of watches) is
//!    scanned every [`POLL_EVERY`] instead, and its files compared by size and modification
//!    time to the millisecond.
//! 4. **Take.** A file unchanged for the window is read once more (it must still look the
//!    same and open for reading), hashed, and queued with the folder's choices. A file that
//!    changed while it was hashed settles again.
//! 5. **Check the folder** every couple of seconds: gone, or another folder in its place (a
//!    drive mounted again), and the watch is armed afresh (with a catch-up scan).
//!
//! Everything that touches the disk runs off the async threads, each within a time limit: a
//! dead network mount makes its folder's status say so; it never stalls the engine.

use super::folder::WatchedFolder;
use super::scan::{self, ScanError};
use super::settle::{Look, Settler};
use crate::clock::{duration_ms, Clock};
use crate::intake::{self, IntakeOptions};
use crate::job::NewJob;
use crate::store::{Enqueued, JobStore};
use notify::Watcher as _;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How often an armed folder checks it is still there, and the same folder.
const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How often a missing folder is looked for.
const LOOK_FOR_MISSING_EVERY: Duration = Duration::from_secs(2);
/// How long a folder that could not be watched waits before trying again.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(5);
/// How often a polled folder is read.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// How long a look at the disk may take before the folder is said not to answer.
const DISK_TIME_LIMIT: Duration = Duration::from_secs(20);
/// How often the status is reported again though it did not change, so other processes know
/// the folder is still watched.
pub const STATUS_REFRESH: Duration = Duration::from_secs(30);
/// Events held between two looks; more than this at once means a scan instead.
const EVENT_ROOM: usize = 8192;

/// What a watched folder is doing, for people.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum WatchStatus {
    /// Being armed: the catch-up scan is under way.
    Starting,
    /// Watched: new videos become jobs.
    #[serde(rename_all = "camelCase")]
    Watching {
        /// Whether it is polled rather than followed through the system's events.
        polling: bool,
        /// Something to know about how it is watched (polled because the system's events ran
        /// out), if anything.
        note: Option<String>,
    },
    /// Not there: deleted, renamed, or on a drive that is not mounted. Watching resumes when
    /// it is back.
    Missing {
        /// What is missing, in words.
        reason: String,
    },
    /// There but not watchable now (not a folder, unreadable, not answering); tried again.
    Error {
        /// Why, in words.
        reason: String,
    },
    /// Paused by the person.
    Paused,
    /// Not watched now: no window is open and no `storyteller run` is going on this home.
    Idle,
}

impl WatchStatus {
    /// The word `watch list` shows.
    pub fn word(&self) -> &'static str {
        match self {
            WatchStatus::Starting => "starting",
            WatchStatus::Watching { .. } => "watching",
            WatchStatus::Missing { .. } => "missing",
            WatchStatus::Error { .. } => "error",
            WatchStatus::Paused => "paused",
            WatchStatus::Idle => "idle",
        }
    }

    /// The status in a phrase: `watching`, `missing: …`, `idle (…)`.
    pub fn describe(&self) -> String {
        match self {
            WatchStatus::Starting => "starting (catching up with what arrived meanwhile)".into(),
            WatchStatus::Watching {
                polling: false,
                note: None,
            } => "watching".into(),
            WatchStatus::Watching {
                note: Some(note), ..
            } => format!("watching, {note}"),
            WatchStatus::Watching { polling: true, .. } => {
                format!("watching, polled every {} s", POLL_EVERY.as_secs())
            }
            WatchStatus::Missing { reason } => format!("missing: {reason}"),
            WatchStatus::Error { reason } => format!("error: {reason}"),
            WatchStatus::Paused => "paused".into(),
            WatchStatus::Idle => {
                "idle (watched while the window is open or `storyteller run` is going)".into()
            }
        }
    }
}

/// What a folder's watcher needs from the engine.
#[derive(Clone)]
pub struct WatchContext {
    /// Where jobs are queued and sightings kept.
    pub store: Arc<dyn JobStore>,
    /// The clock the settling window is measured on.
    pub clock: Arc<dyn Clock>,
    /// How long a file must stay unchanged.
    pub window: Duration,
    /// What the folder's new jobs get, worked out when its files are taken (so a change of
    /// settings applies to the next file); why not, when its choices cannot be met.
    pub options_for: OptionsFor,
    /// Called once jobs were queued (to wake the pool).
    pub queued: Arc<dyn Fn() + Send + Sync>,
    /// Called with each new status (and again every [`STATUS_REFRESH`]).
    pub on_status: StatusSink,
}

/// What a folder's new jobs get, or why its choices cannot be met.
pub type OptionsFor = Arc<dyn Fn(&WatchedFolder) -> Result<IntakeOptions, String> + Send + Sync>;
/// Where a folder's statuses go.
pub type StatusSink = Arc<dyn Fn(&Path, &WatchStatus) + Send + Sync>;

/// A folder's events armed: held for as long as they are wanted. A polled folder has no
/// watcher: it is scanned every [`POLL_EVERY`] and each file's size and modification time (to
/// the millisecond) compared with the last look, which catches a file replaced within the same
/// second (the system-independent pollers compare whole seconds, and miss it).
struct Armed {
    _watcher: Option<Box<dyn notify::Watcher + Send>>,
    polling: bool,
    note: Option<String>,
}

/// How long to watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchMode {
    /// Until stopped.
    Follow,
    /// One catch-up: scan, wait for what is found to settle, queue it, and return.
    CatchUp,
}

/// Watches `folder` until `stop` fires (or, with [`WatchMode::CatchUp`], until what is there
/// now is queued).
pub async fn watch_folder(
    folder: WatchedFolder,
    context: WatchContext,
    mode: WatchMode,
    stop: CancellationToken,
) {
    let span = tracing::info_span!("watch", folder = %folder.path.display());
    follow(folder, context, mode, stop).instrument(span).await
}

async fn follow(
    folder: WatchedFolder,
    context: WatchContext,
    mode: WatchMode,
    stop: CancellationToken,
) {
    let mut watch = FolderWatch::new(folder, context);
    if watch.folder.paused {
        watch.say(WatchStatus::Paused);
        if mode == WatchMode::Follow {
            stop.cancelled().await;
        }
        return;
    }
    loop {
        let wait = match watch.session(mode, &stop).await {
            SessionEnd::Stopped | SessionEnd::CaughtUp => return,
            SessionEnd::Rearm => Duration::ZERO,
            SessionEnd::Missing(reason) => {
                watch.say(WatchStatus::Missing { reason });
                LOOK_FOR_MISSING_EVERY
            }
            SessionEnd::Failed(reason) => {
                watch.say(WatchStatus::Error { reason });
                RETRY_AFTER_ERROR
            }
        };
        if mode == WatchMode::CatchUp && wait > Duration::ZERO {
            return;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Why a watch session ended.
enum SessionEnd {
    Stopped,
    CaughtUp,
    /// The folder changed under the watch (recreated, remounted): arm again now.
    Rearm,
    Missing(String),
    Failed(String),
}

/// One folder's watcher state, kept across sessions.
struct FolderWatch {
    folder: WatchedFolder,
    context: WatchContext,
    settler: Settler,
    /// Files taken (or sighted before), as they were then: an event about one unchanged is
    /// not a reason to read it again.
    known: HashMap<PathBuf, Look>,
    status: Option<WatchStatus>,
    status_said_ms: i64,
}

/// A file or folder as looked at after an event.
enum Seen {
    File(PathBuf, Look),
    Gone(PathBuf),
    /// A folder moved or made inside the watched tree: its files, found by a scan.
    Folder(Vec<(PathBuf, Look)>),
}

impl FolderWatch {
    fn new(folder: WatchedFolder, context: WatchContext) -> Self {
        FolderWatch {
            settler: Settler::new(context.window),
            folder,
            context,
            known: HashMap::new(),
            status: None,
            status_said_ms: 0,
        }
    }

    fn now_ms(&self) -> i64 {
        self.context.clock.now_ms()
    }

    fn say(&mut self, status: WatchStatus) {
        let now = self.now_ms();
        let stale = now.saturating_sub(self.status_said_ms) >= duration_ms(STATUS_REFRESH);
        if self.status.as_ref() != Some(&status) || stale {
            if self.status.as_ref() != Some(&status) {
                tracing::info!(folder = %self.folder.path.display(), status = status.word(), "watched folder");
            }
            (self.context.on_status)(&self.folder.path, &status);
            self.status = Some(status);
            self.status_said_ms = now;
        }
    }

    /// Arms the folder and follows it until it goes, changes, or the watch is stopped.
    async fn session(&mut self, mode: WatchMode, stop: &CancellationToken) -> SessionEnd {
        let root = self.folder.path.clone();
        let identity = match off_thread(move || folder_identity(&root)).await {
            Ok(Ok(identity)) => identity,
            Ok(Err(ScanError::Missing(_))) => {
                return SessionEnd::Missing(format!(
                    "{} is not there (deleted, renamed, or on a drive that is not mounted); \
                     it is watched again as soon as it is back",
                    self.folder.path.display()
                ))
            }
            Ok(Err(error)) => return SessionEnd::Failed(error.to_string()),
            Err(stalled) => return SessionEnd::Failed(stalled),
        };
        if self.status.is_none() {
            self.say(WatchStatus::Starting);
        }
        // What was sighted before, so the catch-up does not read it again.
        match self
            .context
            .store
            .sighted_files(self.folder.path.clone())
            .await
        {
            Ok(files) => {
                for file in files {
                    self.known.insert(
                        file.source,
                        Look {
                            size: file.size,
                            modified_ms: file.mtime_ms,
                        },
                    );
                }
            }
            Err(error) => return SessionEnd::Failed(format!("the queue cannot be read: {error}")),
        }

        let (events_tx, mut events) = mpsc::channel::<notify::Result<notify::Event>>(EVENT_ROOM);
        let overflowed = Arc::new(AtomicBool::new(false));
        // Held for the session: dropping it stops the system's events.
        let mut _armed = None;
        let mut polling = false;
        if mode == WatchMode::Follow {
            match arm(&self.folder, events_tx, overflowed.clone()) {
                Ok(armed) => {
                    polling = armed.polling;
                    self.say(WatchStatus::Watching {
                        polling: armed.polling,
                        note: armed.note.clone(),
                    });
                    _armed = Some(armed);
                }
                Err(reason) => return SessionEnd::Failed(reason),
            }
        }
        // The catch-up, after arming: a file arriving during the scan is in one or the other.
        let mut rescan = true;
        let mut next_check_ms = self.now_ms() + duration_ms(CHECK_EVERY);
        let mut next_poll_ms = self.now_ms() + duration_ms(POLL_EVERY);
        loop {
            if polling && self.now_ms() >= next_poll_ms {
                next_poll_ms = self.now_ms() + duration_ms(POLL_EVERY);
                rescan = true;
            }
            if rescan || overflowed.swap(false, Ordering::SeqCst) {
                rescan = false;
                let folder = self.folder.clone();
                match off_thread(move || scan::candidates(&folder)).await {
                    Ok(Ok(found)) => {
                        for (path, why) in &found.skipped {
                            tracing::warn!(path = %path.display(), why, "a subfolder cannot be read");
                        }
                        let files = found.files;
                        match off_thread(move || look_at_files(files)).await {
                            Ok(looks) => self.observe_all(looks),
                            Err(stalled) => return SessionEnd::Failed(stalled),
                        }
                    }
                    Ok(Err(ScanError::Missing(_))) => return SessionEnd::Rearm,
                    Ok(Err(error)) => return SessionEnd::Failed(error.to_string()),
                    Err(stalled) => return SessionEnd::Failed(stalled),
                }
            }
            // Files that stopped changing are taken.
            if self
                .settler
                .next_due_ms()
                .is_some_and(|due| due <= self.now_ms())
            {
                let pending: Vec<PathBuf> = self.settler.pending().map(Path::to_path_buf).collect();
                match off_thread(move || look_at_files(pending)).await {
                    Ok(looks) => self.observe_all(looks),
                    Err(stalled) => return SessionEnd::Failed(stalled),
                }
                let settled = self.settler.settled(self.now_ms());
                if !settled.is_empty() {
                    if let Err(reason) = self.take(settled).await {
                        return SessionEnd::Failed(reason);
                    }
                }
            }
            if mode == WatchMode::CatchUp && self.settler.next_due_ms().is_none() {
                return SessionEnd::CaughtUp;
            }
            // The folder itself: still there, still the same one.
            let now = self.now_ms();
            if now >= next_check_ms {
                next_check_ms = now + duration_ms(CHECK_EVERY);
                let root = self.folder.path.clone();
                match off_thread(move || folder_identity(&root)).await {
                    Ok(Ok(now_identity)) if now_identity == identity => {}
                    Ok(Ok(_)) => {
                        tracing::info!(folder = %self.folder.path.display(), "another folder is in its place now; watching it afresh");
                        return SessionEnd::Rearm;
                    }
                    Ok(Err(ScanError::Missing(_))) => {
                        return SessionEnd::Missing(format!(
                            "{} is gone (deleted, renamed, or its drive was unmounted); it is \
                             watched again as soon as it is back",
                            self.folder.path.display()
                        ))
                    }
                    Ok(Err(error)) => return SessionEnd::Failed(error.to_string()),
                    Err(stalled) => return SessionEnd::Failed(stalled),
                }
                if let Some(status) = self.status.clone() {
                    self.say(status);
                }
            }
            let until_due = self
                .settler
                .next_due_ms()
                .map_or(i64::MAX, |due| due.saturating_sub(now));
            let until_check = next_check_ms.saturating_sub(now);
            let until_poll = if polling {
                next_poll_ms.saturating_sub(now)
            } else {
                i64::MAX
            };
            let wait =
                Duration::from_millis(until_due.min(until_check).min(until_poll).max(0) as u64);
            tokio::select! {
                _ = stop.cancelled() => return SessionEnd::Stopped,
                first = events.recv(), if mode == WatchMode::Follow && !polling => {
                    let Some(first) = first else {
                        return SessionEnd::Failed("the system stopped sending the folder's events".into());
                    };
                    let mut batch = vec![first];
                    while batch.len() < EVENT_ROOM {
                        match events.try_recv() {
                            Ok(event) => batch.push(event),
                            Err(_) => break,
                        }
                    }
                    let (paths, needs_scan) = self.event_paths(batch);
                    rescan |= needs_scan;
                    if !paths.is_empty() {
                        let folder = self.folder.clone();
                        match off_thread(move || look_after_events(&folder, paths)).await {
                            Ok(seen) => self.apply(seen),
                            Err(stalled) => return SessionEnd::Failed(stalled),
                        }
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The paths the events name, each once, without those the folder never tells by name;
    /// whether a whole scan is needed.
    fn event_paths(&self, batch: Vec<notify::Result<notify::Event>>) -> (Vec<PathBuf>, bool) {
        let mut paths = HashSet::new();
        let mut needs_scan = false;
        for event in batch {
            match event {
                Ok(event) => {
                    needs_scan |= event.need_rescan();
                    if !is_change(&event.kind) {
                        continue;
                    }
                    for path in event.paths {
                        if path == self.folder.path {
                            continue;
                        }
                        paths.insert(path);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the folder's events reported an error; scanning it again");
                    needs_scan = true;
                }
            }
        }
        (paths.into_iter().collect(), needs_scan)
    }

    fn observe_all(&mut self, looks: Vec<(PathBuf, Option<Look>)>) {
        let now = self.now_ms();
        for (path, look) in looks {
            match look {
                Some(look) if self.known.get(&path) == Some(&look) => self.settler.forget(&path),
                Some(look) => self.settler.observe(path, look, now),
                None => self.settler.forget(&path),
            }
        }
    }

    fn apply(&mut self, seen: Vec<Seen>) {
        let now = self.now_ms();
        for seen in seen {
            match seen {
                Seen::File(path, look) => {
                    if self.known.get(&path) != Some(&look) {
                        self.settler.observe(path, look, now);
                    }
                }
                Seen::Gone(path) => self.settler.forget(&path),
                Seen::Folder(files) => {
                    for (path, look) in files {
                        if self.known.get(&path) != Some(&look) {
                            self.settler.observe(path, look, now);
                        }
                    }
                }
            }
        }
    }

    /// Checks, hashes and queues the files that stopped changing. An error only when the
    /// queue cannot be written (the files are followed again and taken once it can).
    async fn take(&mut self, settled: Vec<(PathBuf, Look)>) -> Result<(), String> {
        let options = match (self.context.options_for)(&self.folder) {
            Ok(options) => options,
            Err(reason) => {
                // Its videos wait (followed again) until the choices can be met.
                let now = self.now_ms();
                for (path, look) in settled {
                    self.settler.observe(path, look, now);
                }
                return Err(reason);
            }
        };
        let (ready, changed) = off_thread(move || hash_settled(settled, &options))
            .await
            .map_err(|stalled| stalled.to_string())?;
        let now = self.now_ms();
        for (path, look) in changed {
            self.settler.observe(path, look, now);
        }
        if ready.is_empty() {
            return Ok(());
        }
        let looks: Vec<(PathBuf, Look)> = ready
            .iter()
            .map(|job| {
                (
                    job.source.clone(),
                    Look {
                        size: job.size,
                        modified_ms: job.mtime_ms,
                    },
                )
            })
            .collect();
        match self
            .context
            .store
            .enqueue_watched(self.folder.path.clone(), ready)
            .await
        {
            Ok((_, results)) => {
                let mut any = false;
                for ((path, look), result) in looks.into_iter().zip(results) {
                    match result {
                        Some(Enqueued::Added(job)) => {
                            any = true;
                            tracing::info!(job_id = %job.id, path = %path.display(), "queued from the watched folder");
                        }
                        Some(Enqueued::Existing(job)) => {
                            tracing::debug!(job_id = %job.id, path = %path.display(), "already has its job");
                        }
                        None => {
                            tracing::debug!(path = %path.display(), "seen before in this folder (renamed, moved or announced again)");
                        }
                    }
                    self.known.insert(path, look);
                }
                if any {
                    (self.context.queued)();
                }
                Ok(())
            }
            Err(error) => {
                let now = self.now_ms();
                for (path, look) in looks {
                    self.settler.observe(path, look, now);
                }
                Err(format!("its videos cannot be queued: {error}"))
            }
        }
    }
}

/// The system's events for `folder` into `events` (or a poller's, for a polled folder, or
/// when the system has no more watches to give); whether it is polled, and a note.
fn arm(
    folder: &WatchedFolder,
    events: mpsc::Sender<notify::Result<notify::Event>>,
    overflowed: Arc<AtomicBool>,
) -> Result<Armed, String> {
    let mode = if folder.recursive {
        notify::RecursiveMode::Recursive
    } else {
        notify::RecursiveMode::NonRecursive
    };
    let handler = move |event: notify::Result<notify::Event>| {
        // Never waits on the system's thread: what does not fit is found by a scan instead.
        if events.try_send(event).is_err() {
            overflowed.store(true, Ordering::SeqCst);
        }
    };
    if folder.poll {
        return Ok(Armed {
            _watcher: None,
            polling: true,
            note: None,
        });
    }
    let native = notify::recommended_watcher(handler).and_then(|mut watcher| {
        watcher.watch(&folder.path, mode)?;
        Ok(watcher)
    });
    match native {
        Ok(watcher) => Ok(Armed {
            _watcher: Some(Box::new(watcher)),
            polling: false,
            note: None,
        }),
        Err(error) => {
            let why = match error.kind {
                notify::ErrorKind::MaxFilesWatch => {
                    "the system's limit on watched folders is reached".to_owned()
                }
                _ => error.to_string(),
            };
            tracing::warn!(folder = %folder.path.display(), why, "the system's file events are not available; polling");
            Ok(Armed {
                _watcher: None,
                polling: true,
                note: Some(format!("polled every {} s: {why}", POLL_EVERY.as_secs())),
            })
        }
    }
}

/// What names this folder: its device and inode on Unix (a folder recreated or a drive
/// mounted again at the same path is another folder), or only that it is one elsewhere.
fn folder_identity(path: &Path) -> Result<(u64, u64), ScanError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                Ok((meta.dev(), meta.ino()))
            }
            #[cfg(not(unix))]
            {
                Ok((0, 0))
            }
        }
        Ok(_) => Err(ScanError::NotAFolder(path.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ScanError::Missing(path.to_path_buf()))
        }
        Err(e) => Err(ScanError::Unreadable {
            path: path.to_path_buf(),
            reason: intake::describe_io_error(&e),
        }),
    }
}

fn look(meta: &std::fs::Metadata) -> Look {
    Look {
        size: meta.len(),
        modified_ms: intake::mtime_ms(meta),
    }
}

/// Each file as it is now (`None` when it is gone or not a file any more).
fn look_at_files(files: Vec<PathBuf>) -> Vec<(PathBuf, Option<Look>)> {
    files
        .into_iter()
        .map(|path| {
            let seen = std::fs::metadata(&path)
                .ok()
                .filter(|meta| meta.is_file())
                .map(|meta| look(&meta));
            (path, seen)
        })
        .collect()
}

/// Whether an event of `kind` can mean a file or folder changed. Reading is not a change:
/// the watcher's own reads (a subfolder listed, a file hashed) and anyone else's (a backup, an
/// indexer, a player) report opens and closes, and following those would read the folder
/// again for each, for ever. A file closed after writing is a change (a copy finishing).
fn is_change(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Each path an event named, as it is now.
fn look_after_events(folder: &WatchedFolder, paths: Vec<PathBuf>) -> Vec<Seen> {
    let mut seen = Vec::new();
    for path in paths {
        match std::fs::symlink_metadata(&path) {
            Err(_) => seen.push(Seen::Gone(path)),
            Ok(meta) if meta.is_dir() => {
                // A folder made or moved in: what it holds came with no event of its own.
                if folder.walks_into(&path) {
                    let inside = WatchedFolder {
                        path: path.clone(),
                        ..folder.clone()
                    };
                    if let Ok(found) = scan::candidates(&inside) {
                        let files = found
                            .files
                            .into_iter()
                            .filter(|file| folder.passes_over(file).is_none())
                            .collect();
                        let looks = look_at_files(files)
                            .into_iter()
                            .filter_map(|(path, look)| Some((path, look?)))
                            .collect();
                        seen.push(Seen::Folder(looks));
                    }
                }
            }
            Ok(_) if folder.passes_over(&path).is_some() => seen.push(Seen::Gone(path)),
            Ok(_) => match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => seen.push(Seen::File(path, look(&meta))),
                _ => seen.push(Seen::Gone(path)),
            },
        }
    }
    seen
}

/// The settled files that are ready, hashed into jobs; and those that changed since they
/// settled (to follow again). A file that cannot be a job (emptied, unreadable, gone) is left:
/// its next change brings it back.
fn hash_settled(
    settled: Vec<(PathBuf, Look)>,
    options: &IntakeOptions,
) -> (Vec<NewJob>, Vec<(PathBuf, Look)>) {
    let mut ready = Vec::new();
    let mut changed = Vec::new();
    for (path, settled_look) in settled {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let before = look(&meta);
        if before != settled_look {
            changed.push((path, before));
            continue;
        }
        if let Some(problem) = intake::file_problem(&path) {
            tracing::info!(path = %path.display(), problem, "not queued from the watched folder");
            continue;
        }
        let content_hash = match intake::hash_file(&path) {
            Ok(hash) => hash,
            Err(error) => {
                tracing::info!(path = %path.display(), error = %intake::describe_io_error(&error), "not queued: it cannot be read");
                continue;
            }
        };
        // Written to while it was read: what was read is not the file.
        match std::fs::metadata(&path) {
            Ok(meta) if look(&meta) == before => {}
            Ok(meta) => {
                changed.push((path, look(&meta)));
                continue;
            }
            Err(_) => continue,
        }
        ready.push(NewJob {
            source: path,
            size: before.size,
            mtime_ms: before.modified_ms,
            content_hash,
            spec: options.spec.clone(),
            priority: options.priority,
            no_cache: options.no_cache,
            // A folder's files are told once per content, by their sightings; a file whose
            // job was cleared must not be kept from a new one by an old job's row.
            again: false,
            watched_folder: None,
        });
    }
    (ready, changed)
}

/// Runs `work` on a blocking thread within [`DISK_TIME_LIMIT`]; the words for a disk that
/// did not answer.
async fn off_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    match tokio::time::timeout(DISK_TIME_LIMIT, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err("the folder's watcher stopped unexpectedly".into()),
        Err(_) => Err(format!(
            "the folder did not answer within {} s (a network share or drive that is gone?)",
            DISK_TIME_LIMIT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::is_change;
    use notify::event::{
        AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode,
    };

    #[test]
    fn reading_is_not_a_change_and_a_write_finishing_is() {
        for read in [
            EventKind::Access(AccessKind::Open(AccessMode::Any)),
            EventKind::Access(AccessKind::Read),
            EventKind::Access(AccessKind::Close(AccessMode::Read)),
            EventKind::Access(AccessKind::Any),
        ] {
            assert!(!is_change(&read), "{read:?}");
        }
        for change in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Create(CreateKind::Folder),
            EventKind::Modify(ModifyKind::Any),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
            EventKind::Other,
        ] {
            assert!(is_change(&change), "{change:?}");
        }
    }
}
