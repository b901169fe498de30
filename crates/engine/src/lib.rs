//! Storyteller's engine: a durable SQLite job queue, a bounded task pool, media analysis and the
//! storytellers that turn videos into stories. It knows nothing of any UI toolkit; it reports
//! through its typed [`event`] stream.
//!
//! - [`engine`]: the [`Engine`] facade every front end calls (the CLI, the desktop window).
//! - [`wire`]: the types front ends see (IPC, `--json`, events).
//! - [`event`]: the event stream.
//! - [`job`]: jobs and their state machine.
//! - [`store`]: the SQLite job store behind the narrow [`store::JobStore`] interface.
//! - [`pool`]: the task pool that claims and runs jobs.
//! - [`retry`]: backoff policy; [`clock`]: the one clock timed decisions read.
//! - [`settings`]: what new jobs get, kept in the home folder; [`config`]: settings by key.
//! - [`intake`]: turning paths into jobs (folders, checks, hashing).
//! - [`media`]: ffprobe/ffmpeg analysis.
//! - [`storyteller`]: the storyteller trait, the built-in offline storyteller, Gemini (the
//!   whole video), and the image-model storytellers (Ollama, OpenAI-compatible servers).
//! - [`secrets`]: API keys (environment, then the OS keychain); [`pricing`]: what tokens cost.
//! - [`estimate`]: what a batch will cost and take, before it is queued.
//! - [`export`]: stories out in bulk; [`search`]: searching the history.
//! - [`watcher`]: watched folders (so far: a folder's choices, which paths under it are told,
//!   the catch-up scan, and when a file in it is complete).
//! - [`home`]: where state lives.
//! - [`error`]: the engine's error type.

#![warn(missing_docs)]

pub mod batches;
pub mod clock;
pub mod config;
pub mod engine;
pub mod error;
pub mod estimate;
pub mod event;
pub mod export;
pub mod home;
pub mod intake;
pub mod job;
pub mod media;
pub mod pool;
pub mod pricing;
pub mod retry;
pub mod search;
pub mod secrets;
pub mod settings;
pub mod store;
pub mod storyteller;
pub mod watcher;
pub mod wire;

pub use engine::{Engine, EngineOptions};
pub use error::{EngineError, ErrorPayload, Result, StorageError, StorageFault, StoreBackend};
pub use event::{Envelope, Event, EventBus, Subscription};
pub use job::{BatchId, Job, JobId, JobState, Priority, Stage};
pub use wire::{JobView, QueueStats};
