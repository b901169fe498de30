//! How a SQLite store knows which workers are alive: a lock file per worker.
//!
//! Each worker (a pool's run) holds an exclusive lock on `<database>-runners/<owner>.lock`
//! for as long as it runs; the operating system lets go of it the moment the process dies,
//! however it dies. A lock that can be taken is a worker that has gone, and its running jobs
//! go back to the queue at once instead of waiting out their leases. The file also says
//! which machine and process the worker is, and since when, for `storyteller workers`.
//!
//! All of this is file I/O: callers run it on the blocking pool.

use crate::error::{EngineError, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The folder of lock files beside the database at `database` (like SQLite's own `-wal`).
pub(super) fn runners_dir(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push("-runners");
    database.with_file_name(name)
}

/// What a worker's lock file says about it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RunnerFacts {
    /// The machine's name.
    pub machine: String,
    /// The process.
    pub pid: u32,
    /// When the worker started (ms since the Unix epoch, this machine's clock).
    pub started_at_ms: i64,
}

fn lock_path(dir: &Path, owner: &str) -> PathBuf {
    dir.join(format!("{owner}.lock"))
}

/// A worker's lock, held while it lives. Dropped, it lets go as a killed process would (the
/// file stays: whoever finds it free reclaims the worker's jobs); stopped, it removes the file.
pub(super) struct RunnerLock {
    path: PathBuf,
    _file: File,
    owner: String,
    here: Arc<LiveHere>,
}

/// The workers registered through this process's store: alive while registered, so nobody
/// here tries their locks (a lock just let go looks held for a moment; see [`is_gone`]).
#[derive(Default)]
pub(super) struct LiveHere(Mutex<HashSet<String>>);

impl LiveHere {
    /// Whether `owner` is registered here now.
    pub(super) fn contains(&self, owner: &str) -> bool {
        self.0.lock().is_ok_and(|owners| owners.contains(owner))
    }

    fn insert(&self, owner: &str) {
        if let Ok(mut owners) = self.0.lock() {
            owners.insert(owner.to_owned());
        }
    }

    fn remove(&self, owner: &str) {
        if let Ok(mut owners) = self.0.lock() {
            owners.remove(owner);
        }
    }
}

impl Drop for RunnerLock {
    fn drop(&mut self) {
        self.here.remove(&self.owner);
    }
}

impl super::KeptAlive for RunnerLock {
    fn stop(self: Box<Self>) -> crate::storyteller::BoxFuture<'static, ()> {
        let path = self.path.clone();
        // Let go first; then the file has no one left to tell anything.
        drop(self);
        let _ = std::fs::remove_file(path);
        Box::pin(async {})
    }
}

/// Takes the lock of worker `owner` in `dir`, writing `facts` into it, and counts it among
/// the workers registered `here`.
pub(super) fn take(
    dir: &Path,
    owner: &str,
    facts: &RunnerFacts,
    here: &Arc<LiveHere>,
) -> Result<RunnerLock> {
    use std::io::Write;
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, &e))?;
    let path = lock_path(dir, owner);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| EngineError::io(&path, &e))?;
    file.try_lock().map_err(|e| EngineError::Io {
        path: path.clone(),
        message: format!("could not lock the runner file: {e}"),
    })?;
    // The facts are for people; a worker whose file could not say them is still alive.
    if let Ok(json) = serde_json::to_vec(facts) {
        let _ = file.set_len(0).and_then(|()| file.write_all(&json));
    }
    here.insert(owner);
    Ok(RunnerLock {
        path,
        _file: file,
        owner: owner.to_owned(),
        here: here.clone(),
    })
}

/// Whether worker `owner` has stopped, looked at without taking its lock over (that is for
/// the worker that will reclaim its jobs): the lock is tried and let go at once. An owner
/// with no lock file is not known to have stopped (it is left to its lease).
pub(super) fn has_stopped(dir: &Path, owner: &str) -> bool {
    std::fs::OpenOptions::new()
        .write(true)
        .open(lock_path(dir, owner))
        .is_ok_and(|file| file.try_lock().is_ok())
}

/// Whether worker `owner` is gone for good: its lock is taken, and its file removed so no one
/// asks again. An owner with no lock file is left to its lease.
pub(super) fn is_gone(dir: &Path, owner: &str) -> bool {
    let path = lock_path(dir, owner);
    let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else {
        return false;
    };
    // Between `fork` and `exec` a child holds a copy of every descriptor of the process that
    // starts it, so a lock a worker of this process has just let go (workers in one process: an
    // engine reopened, tests) stays held for the few milliseconds an ffmpeg takes to start.
    // A lock still held a moment later is a worker that is alive.
    for wait_ms in [0, 10, 40] {
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        if file.try_lock().is_ok() {
            // It is ours now and nobody else will want it.
            let _ = std::fs::remove_file(&path);
            return true;
        }
    }
    false
}

/// The workers whose locks are held in `dir`, with what their files say, by owner.
pub(super) fn alive(dir: &Path) -> Vec<(String, Option<RunnerFacts>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, Option<RunnerFacts>)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let owner = name.strip_suffix(".lock")?.to_owned();
            let path = entry.path();
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .ok()?;
            // Free: not a live worker (its jobs are reclaimed by the next claim round).
            if file.try_lock().is_ok() {
                return None;
            }
            let facts = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok());
            Some((owner, facts))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// This machine's name, as people know it.
pub(crate) fn machine_name() -> String {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_owned();
    if name.is_empty() {
        "this machine".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_with_its_facts_and_a_dropped_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let facts = RunnerFacts {
            machine: "studio".into(),
            pid: 42,
            started_at_ms: 1_000,
        };
        let here = Arc::new(LiveHere::default());
        let lock = take(dir.path(), "w1", &facts, &here).unwrap();
        assert!(here.contains("w1"));
        let found = alive(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "w1");
        assert_eq!(found[0].1.as_ref().map(|f| f.pid), Some(42));
        assert!(!has_stopped(dir.path(), "w1"));
        assert!(!is_gone(dir.path(), "w1"));
        // Let go as a killed process would: the file stays, free.
        drop(lock);
        assert!(!here.contains("w1"));
        assert!(alive(dir.path()).is_empty());
        assert!(has_stopped(dir.path(), "w1"));
        assert!(is_gone(dir.path(), "w1"));
        // Taken over and removed: nobody asks again.
        assert!(!lock_path(dir.path(), "w1").exists());

        // A clean stop removes the file: not known to have stopped; left to the lease.
        let lock: Box<dyn super::super::KeptAlive> =
            Box::new(take(dir.path(), "w2", &facts, &here).unwrap());
        drop(lock.stop());
        assert!(!lock_path(dir.path(), "w2").exists());
        assert!(!has_stopped(dir.path(), "w2"));
        assert!(!is_gone(dir.path(), "w2"));
    }

    #[test]
    fn the_runners_folder_sits_beside_the_database() {
        assert_eq!(
            runners_dir(Path::new("/home/a/storyteller.db")),
            PathBuf::from("/home/a/storyteller.db-runners")
        );
    }
}
