//! The event bridge: every engine event, as it happens, to the window.
//!
//! One Tauri event, `engine-event`, carries the engine's [`Envelope`] unchanged (its `seq`,
//! `type` and fields), so the window reads the same shapes `storyteller events --json` prints.
//! Nothing is dropped or merged here: the engine already sends one event per add however many
//! files it holds, and a subscriber that falls behind gets `resync` from the engine.

use serde::{Deserialize, Serialize};
use storyteller_engine::{Engine, Envelope};
use tauri_specta::Event as _;

/// An engine event, for the window.
#[derive(Clone, Debug, Serialize, Deserialize, specta::Type, tauri_specta::Event)]
pub struct EngineEvent(pub Envelope);

/// Forwards `engine`'s events to every window of `app` until the engine goes.
pub fn start<R: tauri::Runtime>(app: tauri::AppHandle<R>, engine: &Engine) {
    let mut events = engine.subscribe();
    tauri::async_runtime::spawn(async move {
        while let Some(envelope) = events.recv().await {
            if let Err(error) = EngineEvent(envelope).emit(&app) {
                tracing::warn!(%error, "an event could not reach the window");
            }
        }
    });
}
