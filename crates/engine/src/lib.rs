//! Storyteller's engine: a durable SQLite job queue, a bounded task pool, media analysis and the
//! storytellers that turn videos into stories. It knows nothing of any UI toolkit; it reports
//! through its typed [`event`] stream.
//!
//! - [`job`]: jobs and their state machine.
//! - [`store`]: the SQLite job store behind the narrow [`store::JobStore`] interface.
//! - [`pool`]: the task pool that claims and runs jobs.
//! - [`event`]: the event stream.
//! - [`retry`]: backoff policy and the clock it reads.
//! - [`intake`]: turning paths into jobs (folders, checks, hashing).
//! - [`media`]: ffprobe/ffmpeg analysis.
//! - [`storyteller`]: the storyteller trait and the built-in offline storyteller.
//! - [`export`]: stories out in bulk.
//! - [`home`]: where state lives.
//! - [`error`]: the engine's error type.

#![warn(missing_docs)]

pub mod error;
pub mod event;
pub mod export;
pub mod home;
pub mod intake;
pub mod job;
pub mod media;
pub mod pool;
pub mod retry;
pub mod store;
pub mod storyteller;

pub use error::{EngineError, ErrorPayload, Result};
pub use event::{Event, EventBus, QueueStats};
pub use job::{BatchId, Job, JobId, JobState, Priority, Stage};
