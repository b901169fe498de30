//! Watched folders: videos that appear in a folder become jobs by themselves, exactly once.
//!
//! - [`folder`]: a watched folder's choices, and which paths under it are videos to tell
//!   from it (never what the app writes there itself).
//! - [`scan`]: every file a folder would tell as it stands on disk (the catch-up on start, and
//!   the polling of network shares).
//! - [`settle`]: which names are never videos to tell (downloads in progress, editors' lock
//!   files, the file managers' own files), and when a file has stopped changing long enough to
//!   be complete.
//! - [`watch`]: the watcher of one folder (system events or polling, the settling window,
//!   the catch-up, and re-arming a folder that went and came back), and its status.
pub mod folder;
pub mod scan;
pub mod settle;
pub mod watch;
