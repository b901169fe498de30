//! The engine's integration tests: one binary, a module per area, shared fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod contract;
mod engine;
mod fixtures;
mod gemini;
mod gemini_server;
mod media;
mod offline_storyteller;
mod ollama;
mod openai;
mod pool;
mod postgres;
mod postgres_server;
mod store;
mod support;
mod truth;
mod watched;
