//! Watched folders: videos that appear in a folder become jobs by themselves, exactly once.
//!
//! - [`settle`]: which names are never videos to tell (downloads in progress, editors' lock
//!   files, the file managers' own files), and when a file has stopped changing long enough to
//!   be complete.
pub mod settle;
