//! End-to-end tests for Storyteller; the tests live in `tests/e2e/` and drive the built `storyteller` binary.
