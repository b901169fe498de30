//! What the benchmarks share (each uses some of it).
#![allow(dead_code)]

use std::time::Duration;
use storyteller_engine::job::Usage;
use storyteller_engine::storyteller::{
    BoxFuture, StoryError, StoryRequest, StorySink, Storyteller,
};

/// Whether the part called `name` runs: all do, unless `BENCH_ONLY` names some (`a,b`).
pub fn wanted(name: &str) -> bool {
    std::env::var("BENCH_ONLY").map_or(true, |only| only.split(',').any(|part| part.trim() == name))
}

/// Writes a one-word story after `delay` (zero: a no-op job).
pub struct Fixed {
    pub delay: Duration,
}

impl Storyteller for Fixed {
    fn name(&self) -> &str {
        "bench"
    }
    fn default_model(&self) -> &str {
        "none"
    }
    fn presets(&self) -> &[&'static str] {
        &["narrative"]
    }
    fn tell<'a>(
        &'a self,
        _request: &'a StoryRequest,
        sink: &'a mut StorySink,
    ) -> BoxFuture<'a, Result<Usage, StoryError>> {
        Box::pin(async move {
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            sink.write("done");
            Ok(Usage::default())
        })
    }
}
