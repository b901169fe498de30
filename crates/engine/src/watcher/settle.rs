//! When a file in a watched folder may be told.
//!
//! A file is told only once it is complete: a copy in progress, a download still growing and a
//! camera still writing all look like a video with the wrong length. Its size and modification
//! time must stay the same for a whole window (2 s by default) before it is taken; every change
//! starts the window again. The watcher re-reads the metadata of each file still settling on
//! every tick and on every event, and hands what [`Settler::settled`] returns to intake, which
//! then checks that it opens for reading.
//!
//! Some names are never videos to tell, whatever their extension says ([`ignored_name`]):
//! partial downloads (`.part`, `.crdownload`, `.download`, `.partial`), temporary files
//! (`.tmp`, Office's `~$…` lock files), dotfiles and the file managers' own files
//! (`.DS_Store`, `Thumbs.db`, `desktop.ini`).
//!
//! Time is the engine's clock in milliseconds, so tests move it by hand.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a file must stay unchanged when the folder's settings do not say.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(2);

/// Endings of files still being written by a browser or a download tool.
const PARTIAL_ENDINGS: [&str; 6] = [
    ".part",
    ".crdownload",
    ".download",
    ".partial",
    ".tmp",
    ".temp",
];

/// Why a file called `name` is never told (a download in progress, a lock file, a hidden
/// file), or `None` for a name that may be a video.
pub fn ignored_name(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with('.') {
        return Some("a hidden file");
    }
    if lower.starts_with("~$") {
        return Some("an editor's lock file");
    }
    if lower == "thumbs.db" || lower == "desktop.ini" {
        return Some("a file manager's own file");
    }
    if PARTIAL_ENDINGS.iter().any(|ending| lower.ends_with(ending)) {
        return Some("a file still being downloaded or written");
    }
    None
}

/// Whether `path`'s file name is one [`ignored_name`] passes over.
pub fn is_ignored(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| ignored_name(name).is_some())
}

/// What a file looked like when last read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, ms since the Unix epoch.
    pub modified_ms: i64,
}

/// A file still settling: how it looked and since when.
#[derive(Clone, Copy, Debug)]
struct Settling {
    look: Look,
    unchanged_since_ms: i64,
}

/// The files of a watched folder that are not complete yet.
#[derive(Debug)]
pub struct Settler {
    window_ms: i64,
    settling: HashMap<PathBuf, Settling>,
}

impl Settler {
    /// Files are complete once unchanged for `window`.
    pub fn new(window: Duration) -> Self {
        Settler {
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            settling: HashMap::new(),
        }
    }

    /// `path` read at `now_ms` as `look`. A file not seen before, or changed since it was
    /// last read, starts its window again; one unchanged keeps the time it stopped changing.
    pub fn observe(&mut self, path: PathBuf, look: Look, now_ms: i64) {
        let settling = self.settling.entry(path).or_insert(Settling {
            look,
            unchanged_since_ms: now_ms,
        });
        if settling.look != look {
            *settling = Settling {
                look,
                unchanged_since_ms: now_ms,
            };
        }
    }

    /// Stops following `path` (removed, renamed away, or found not to be a video).
    pub fn forget(&mut self, path: &Path) {
        self.settling.remove(path);
    }

    /// The files unchanged for the whole window at `now_ms`, in path order, no longer
    /// followed. Their metadata must have been read again (see [`Settler::observe`]) since
    /// their last change could have been missed.
    pub fn settled(&mut self, now_ms: i64) -> Vec<(PathBuf, Look)> {
        let window = self.window_ms;
        let mut done: Vec<(PathBuf, Look)> = self
            .settling
            .iter()
            .filter(|(_, s)| now_ms.saturating_sub(s.unchanged_since_ms) >= window)
            .map(|(path, s)| (path.clone(), s.look))
            .collect();
        for (path, _) in &done {
            self.settling.remove(path);
        }
        done.sort_by(|a, b| a.0.cmp(&b.0));
        done
    }

    /// The files still settling, for the watcher to read again on its next tick.
    pub fn pending(&self) -> impl Iterator<Item = &Path> {
        self.settling.keys().map(PathBuf::as_path)
    }

    /// When the next file will have been unchanged for the window, if any is settling.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.settling
            .values()
            .map(|s| s.unchanged_since_ms.saturating_add(self.window_ms))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(size: u64, modified_ms: i64) -> Look {
        Look { size, modified_ms }
    }

    #[test]
    fn downloads_lock_files_and_hidden_files_are_never_told() {
        for name in [
            "holiday.mp4.part",
            "holiday.mp4.crdownload",
            "clip.MOV.download",
            "clip.mkv.partial",
            "render.mp4.tmp",
            "~$notes.mp4",
            ".hidden.mp4",
            ".DS_Store",
            "Thumbs.db",
            "desktop.ini",
        ] {
            assert!(ignored_name(name).is_some(), "{name}");
        }
        for name in [
            "holiday.mp4",
            "part.mp4",
            "tmp.mov",
            "a~$b.mp4",
            "clip.partial.mp4",
        ] {
            assert_eq!(ignored_name(name), None, "{name}");
        }
        assert!(is_ignored(Path::new("/w/sub/.x.mp4")));
        assert!(
            !is_ignored(Path::new("/w/.sub/x.mp4")),
            "the name, not the folder"
        );
    }

    #[test]
    fn a_file_is_complete_only_after_a_whole_window_without_change() {
        let mut settler = Settler::new(Duration::from_secs(2));
        let path = PathBuf::from("/w/copying.mp4");
        // A copy in progress: it grows every half second for three seconds.
        for step in 0..6 {
            let now = step * 500;
            settler.observe(path.clone(), look(1000 * (step as u64 + 1), now), now);
            assert!(
                settler.settled(now).is_empty(),
                "taken while growing at {now} ms"
            );
        }
        // Then it stops at 2.5 s: complete at 4.5 s, not a moment before.
        let last = look(6000, 2500);
        assert_eq!(settler.next_due_ms(), Some(4500));
        settler.observe(path.clone(), last, 3000);
        settler.observe(path.clone(), last, 4000);
        assert!(settler.settled(4499).is_empty());
        assert_eq!(settler.settled(4500), [(path.clone(), last)]);
        // Taken once: it is no longer followed.
        assert!(settler.settled(10_000).is_empty());
        assert_eq!(settler.pending().count(), 0);
        assert_eq!(settler.next_due_ms(), None);
    }

    #[test]
    fn a_touch_without_growth_starts_the_window_again_and_forgotten_files_are_not_taken() {
        let mut settler = Settler::new(Duration::from_secs(2));
        let (a, b) = (PathBuf::from("/w/a.mp4"), PathBuf::from("/w/b.mp4"));
        settler.observe(a.clone(), look(10, 0), 0);
        settler.observe(b.clone(), look(10, 0), 0);
        // Same size, new modification time: a camera rewriting its header.
        settler.observe(a.clone(), look(10, 1500), 1500);
        settler.forget(&b);
        assert!(settler.settled(2000).is_empty());
        assert_eq!(settler.settled(3500), [(a, look(10, 1500))]);
    }

    #[test]
    fn files_settled_together_come_out_in_path_order() {
        let mut settler = Settler::new(Duration::ZERO);
        for name in ["c", "a", "b"] {
            settler.observe(PathBuf::from(format!("/w/{name}.mp4")), look(1, 0), 0);
        }
        let names: Vec<PathBuf> = settler.settled(0).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            names,
            ["/w/a.mp4", "/w/b.mp4", "/w/c.mp4"].map(PathBuf::from)
        );
    }
}
