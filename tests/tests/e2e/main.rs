//! End-to-end tests of Storyteller: the real `storyteller` binary, a real SQLite database in a
//! temporary home, real videos made with ffmpeg, and no network.
//!
//! Build the binary first: `cargo build --workspace && cargo test -p storyteller-e2e`
//! (or point `STORYTELLER_BIN` at a build).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_inputs;
mod cli;
mod crash;
mod gemini;
#[path = "../../../crates/engine/tests/engine/postgres_server.rs"]
mod postgres_server;
mod support;
mod team;
mod watch;
