//! The engine's error type: one `thiserror` enum with a stable `code` per variant, and the
//! `{ code, message }` form it takes across process and IPC boundaries.

use crate::job::{IllegalTransition, JobId};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The store's database said no: which backend, what kind of fault, and its own words.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The database file is damaged, or was deleted or replaced while in use: nothing more is
    /// written to it. Says what happened and what to do.
    #[error("{0}")]
    DatabaseDamaged(String),
    /// The state machine forbids what was asked.
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// No job has that id.
    #[error("no job with id {0}")]
    JobNotFound(String),
    /// More than one job starts with that id prefix.
    #[error("'{0}' matches more than one job; give more of the id")]
    AmbiguousJobId(String),
    /// The job is running, which the operation does not allow.
    #[error("job {0} is running; cancel it first")]
    JobRunning(JobId),
    /// A file or folder could not be used.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong, for people.
        message: String,
    },
    /// The database was changed by a newer Storyteller in a way this build cannot work with.
    #[error("the database at {path} is at schema version {found} and needs a Storyteller that knows at least version {needs}; this build knows versions up to {known}: update Storyteller")]
    SchemaTooNew {
        /// Where the database is.
        path: PathBuf,
        /// The database's schema version (its latest migration).
        found: i64,
        /// The oldest schema a build must know to use it.
        needs: i64,
        /// The latest schema this build knows.
        known: i64,
    },
    /// No place for the database could be found.
    #[error("no data directory could be found for this user; set STORYTELLER_HOME to a folder")]
    NoHome,
    /// A transaction could not be committed; none of its changes happened.
    #[error("the database could not save the change: {0}")]
    CommitFailed(String),
    /// The job is no longer held by this worker (cancelled, or its lease expired and was reclaimed).
    #[error(
        "job {0} changed elsewhere while it was being told here (cancelled, removed, or \
             taken over by another runner after its lease ran out); what was done here is dropped"
    )]
    LeaseLost(JobId),
    /// The store's connection thread has stopped.
    #[error("the job store has shut down")]
    StoreClosed,
    /// A job named a storyteller this app does not have.
    #[error("unknown storyteller '{name}' (available: {available})")]
    UnknownStoryteller {
        /// The name asked for.
        name: String,
        /// The names there are.
        available: String,
    },
    /// A storyteller does not have that preset.
    #[error("storyteller '{storyteller}' has no preset '{preset}' (available: {available})")]
    UnknownPreset {
        /// The storyteller.
        storyteller: String,
        /// The preset asked for.
        preset: String,
        /// The presets there are.
        available: String,
    },
    /// A storyteller does not have that model.
    #[error("storyteller '{storyteller}' has no model '{model}' (available: {available})")]
    UnknownModel {
        /// The storyteller.
        storyteller: String,
        /// The model asked for.
        model: String,
        /// The models there are.
        available: String,
    },
    /// Something the app needs on this machine is missing (ffmpeg, ffprobe); nothing can run.
    #[error("{0}")]
    ToolMissing(String),
    /// A value given to the engine makes no sense (a concurrency of 0, a bad setting).
    #[error("{0}")]
    InvalidArgument(String),
    /// Stored data that does not parse (a database edited by hand, or a bug).
    #[error("corrupt record in the database: {0}")]
    CorruptRecord(String),
    /// An export could not be made into its format (a Word or PDF document); nothing was
    /// written.
    #[error("the export could not be made: {0}")]
    ExportFailed(String),
    /// The OS keychain could not keep or give back a key; says what to do instead.
    #[error("{0}")]
    Keychain(String),
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    /// A stable, machine-readable code; UIs branch on this, never on the message.
    pub fn code(&self) -> ErrorCode {
        match self {
            EngineError::Storage(_) => ErrorCode::Database,
            EngineError::DatabaseDamaged(_) => ErrorCode::DatabaseDamaged,
            EngineError::IllegalTransition(_) => ErrorCode::IllegalTransition,
            EngineError::JobNotFound(_) => ErrorCode::JobNotFound,
            EngineError::AmbiguousJobId(_) => ErrorCode::AmbiguousJobId,
            EngineError::JobRunning(_) => ErrorCode::JobRunning,
            EngineError::Io { .. } => ErrorCode::Io,
            EngineError::SchemaTooNew { .. } => ErrorCode::SchemaTooNew,
            EngineError::NoHome => ErrorCode::NoHome,
            EngineError::StoreClosed => ErrorCode::StoreClosed,
            EngineError::CommitFailed(_) => ErrorCode::Database,
            EngineError::LeaseLost(_) => ErrorCode::LeaseLost,
            EngineError::UnknownStoryteller { .. } => ErrorCode::UnknownStoryteller,
            EngineError::UnknownPreset { .. } => ErrorCode::UnknownPreset,
            EngineError::CorruptRecord(_) => ErrorCode::CorruptRecord,
            EngineError::UnknownModel { .. } => ErrorCode::UnknownModel,
            EngineError::ToolMissing(_) => ErrorCode::ToolMissing,
            EngineError::InvalidArgument(_) => ErrorCode::InvalidArgument,
            EngineError::ExportFailed(_) => ErrorCode::ExportFailed,
            EngineError::Keychain(_) => ErrorCode::Keychain,
        }
    }

    /// Whether the error is a mistake in what was asked (an unknown storyteller, preset or
    /// model, a bad value), rather than something that went wrong.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            EngineError::UnknownStoryteller { .. }
                | EngineError::UnknownPreset { .. }
                | EngineError::UnknownModel { .. }
                | EngineError::InvalidArgument(_)
        )
    }

    /// Whether the database could not be written because its disk is full: the machine's
    /// fault, which passes once space is freed.
    pub fn is_disk_full(&self) -> bool {
        match self {
            EngineError::Storage(error) => error.fault == StorageFault::DiskFull,
            // The writer reports a failed group commit in words: SQLite's own for SQLITE_FULL.
            EngineError::CommitFailed(message) => message.contains("database or disk is full"),
            _ => false,
        }
    }

    /// Whether the database found its own file damaged ("malformed", "not a database").
    pub fn is_corruption(&self) -> bool {
        match self {
            EngineError::Storage(error) => error.fault == StorageFault::Corrupt,
            EngineError::CommitFailed(message) => {
                message.contains("malformed") || message.contains("not a database")
            }
            _ => false,
        }
    }

    /// An [`EngineError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, error: &std::io::Error) -> Self {
        EngineError::Io {
            path: path.into(),
            message: crate::intake::describe_io_error(error),
        }
    }
}

/// The stable, machine-readable kind of an error: front ends branch on it, never on the
/// message. Written in snake_case (`"job_not_found"`); the window's TypeScript gets the union.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The database failed (locked, full, unreadable).
    Database,
    /// The database file is damaged, or was deleted or replaced while in use.
    DatabaseDamaged,
    /// A job cannot go from its state to the one asked (e.g. retry a succeeded job).
    IllegalTransition,
    /// No job has that id.
    JobNotFound,
    /// More than one job starts with that id.
    AmbiguousJobId,
    /// The job is running, so it cannot be removed.
    JobRunning,
    /// A file or folder could not be read or written.
    Io,
    /// The database was made by a newer Storyteller.
    SchemaTooNew,
    /// No home folder could be found for the database and settings.
    NoHome,
    /// The engine is shutting down.
    StoreClosed,
    /// Another worker has taken over the job.
    LeaseLost,
    /// No storyteller has that name.
    UnknownStoryteller,
    /// The storyteller has no such preset.
    UnknownPreset,
    /// A stored record could not be read.
    CorruptRecord,
    /// The storyteller has no such model.
    UnknownModel,
    /// A tool the storyteller needs (ffmpeg) is missing or cannot run.
    ToolMissing,
    /// A value asked for is out of range or malformed.
    InvalidArgument,
    /// An export could not be made into its format (Word, PDF).
    ExportFailed,
    /// A story was asked for that is not written yet (front ends).
    NoStory,
    /// The system clipboard could not be written (front ends).
    Clipboard,
    /// The OS keychain could not be used (none on this machine, locked).
    Keychain,
}

impl ErrorCode {
    /// The code as it is written.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Database => "database",
            ErrorCode::DatabaseDamaged => "database_damaged",
            ErrorCode::IllegalTransition => "illegal_transition",
            ErrorCode::JobNotFound => "job_not_found",
            ErrorCode::AmbiguousJobId => "ambiguous_job_id",
            ErrorCode::JobRunning => "job_running",
            ErrorCode::Io => "io",
            ErrorCode::SchemaTooNew => "schema_too_new",
            ErrorCode::NoHome => "no_home",
            ErrorCode::StoreClosed => "store_closed",
            ErrorCode::LeaseLost => "lease_lost",
            ErrorCode::UnknownStoryteller => "unknown_storyteller",
            ErrorCode::UnknownPreset => "unknown_preset",
            ErrorCode::CorruptRecord => "corrupt_record",
            ErrorCode::UnknownModel => "unknown_model",
            ErrorCode::ToolMissing => "tool_missing",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::ExportFailed => "export_failed",
            ErrorCode::NoStory => "no_story",
            ErrorCode::Clipboard => "clipboard",
            ErrorCode::Keychain => "keychain",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// An error as it crosses a process or IPC boundary.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPayload {
    /// Stable code, see [`EngineError::code`].
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

impl From<&EngineError> for ErrorPayload {
    fn from(error: &EngineError) -> Self {
        ErrorPayload {
            code: error.code(),
            message: error.to_string(),
        }
    }
}

/// Which kind of database a store keeps its jobs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreBackend {
    /// One local SQLite file.
    Sqlite,
    /// A PostgreSQL server shared by a team.
    Postgres,
}

impl std::fmt::Display for StoreBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StoreBackend::Sqlite => "SQLite",
            StoreBackend::Postgres => "PostgreSQL",
        })
    }
}

/// What kind of fault a database had, whichever backend it is: what the engine decides on
/// (wait for room, stop writing, try again).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageFault {
    /// Its disk is full: the machine's fault, which passes once space is freed.
    DiskFull,
    /// Its files are damaged.
    Corrupt,
    /// Another writer holds it for now.
    Busy,
    /// It cannot be reached (a server down, a connection lost).
    Unreachable,
    /// Anything else (a constraint, a statement it refused).
    Other,
}

/// A failure of the store's database, without the driver's own types: the backend, the kind of
/// fault and the database's own words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} error: {message}", match backend { StoreBackend::Sqlite => "database", StoreBackend::Postgres => "queue database (PostgreSQL)" })]
pub struct StorageError {
    /// The kind of database.
    pub backend: StoreBackend,
    /// The kind of fault.
    pub fault: StorageFault,
    /// What the database said, for people.
    pub message: String,
}

/// Whether this process has said that the database's disk is full (and not yet that there is
/// room again): said once, however many connections and claims run into it meanwhile.
static DATABASE_DISK_FULL_SAID: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Says, once, that the disk holding the database is full (`full`), or, once there is room
/// again, that the work goes on.
pub(crate) fn say_database_disk_full(full: bool) {
    use std::sync::atomic::Ordering;
    if full {
        if !DATABASE_DISK_FULL_SAID.swap(true, Ordering::SeqCst) {
            tracing::error!(
                "the disk holding the database is full: free some space there; the queue goes \
                 on by itself once there is room"
            );
        }
    } else if DATABASE_DISK_FULL_SAID.swap(false, Ordering::SeqCst) {
        tracing::info!("there is room for the database again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_written_as_their_snake_case_names_and_read_back() {
        for code in [
            ErrorCode::Database,
            ErrorCode::JobNotFound,
            ErrorCode::AmbiguousJobId,
            ErrorCode::ToolMissing,
            ErrorCode::ExportFailed,
            ErrorCode::NoStory,
            ErrorCode::Clipboard,
            ErrorCode::Keychain,
        ] {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::from(code.as_str()));
            assert_eq!(serde_json::from_value::<ErrorCode>(json).unwrap(), code);
        }
        let error = EngineError::JobNotFound("abc".into());
        let payload = ErrorPayload::from(&error);
        assert_eq!(payload.code, "job_not_found");
        assert_eq!(
            serde_json::to_value(&payload).unwrap()["code"],
            "job_not_found"
        );
    }
}
