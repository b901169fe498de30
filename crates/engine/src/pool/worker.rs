//! One worker: runs a claimed job to its outcome, records it, and goes straight on to the next
//! job it claimed in the same store call, for as long as the pool has room.
//!
//! A job runs in its own task, racing its storyteller against its cancel token; dropping the
//! storyteller's future is what stops it (HTTP requests are dropped, ffmpeg children killed).
//! What a failure or a stop means is decided in [`super::policy`].

use super::policy::{self, StopReason};
use super::{PoolInner, RunningJob};
use crate::error::EngineError;
use crate::event::Event;
use crate::intake;
use crate::job::{Job, JobId};
use crate::store::Outcome;
use crate::storyteller::{StoryError, StoryRequest, StorySink};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Time allowed for looking at a job's file before it is told, whatever its size …
const SOURCE_CHECK_BASE: Duration = Duration::from_secs(30);
/// … plus a second for every this many bytes (a slow USB disk's pace), for hashing a file that
/// changed since it was added.
const SLOW_READ_BYTES_PER_S: u64 = 10 * 1024 * 1024;

impl PoolInner {
    /// Registers `job` as running here; its token fires when it must stop.
    pub(super) fn register(&self, job: &Job) -> Registered {
        let token = CancellationToken::new();
        let cancelled = CancellationToken::new();
        let reason = Arc::new(OnceLock::new());
        if let Ok(mut running) = self.running.lock() {
            running.insert(
                job.id,
                RunningJob {
                    token: token.clone(),
                    cancelled: cancelled.clone(),
                    reason: reason.clone(),
                },
            );
        }
        // A successor claimed while the pool began shutting down goes straight back.
        if self.stopping.load(Ordering::SeqCst) {
            let _ = reason.set(StopReason::Shutdown);
            token.cancel();
        }
        Registered {
            token,
            cancelled,
            reason,
        }
    }

    pub(super) fn unregister(&self, id: JobId) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&id);
        }
    }

    /// Spawns a worker for `job`. When its job ends, the worker records the outcome and claims
    /// its successor in one store call, and runs that too, for as long as the pool has room:
    /// one round trip per job instead of two. Returns the task id and the job it is on.
    pub(super) fn spawn_worker(
        self: &Arc<Self>,
        tasks: &mut JoinSet<()>,
        job: Job,
    ) -> (tokio::task::Id, Arc<Mutex<Job>>) {
        let current = Arc::new(Mutex::new(job.clone()));
        let on_job = current.clone();
        let pool = self.clone();
        let id = tasks
            .spawn(async move {
                let mut job = job;
                loop {
                    if let Ok(mut on_job) = on_job.lock() {
                        on_job.clone_from(&job);
                    }
                    let registered = pool.register(&job);
                    let span = tracing::info_span!("job", id = %job.id, file = %job.file_name());
                    let next = async {
                        let outcome = pool.run_job(&job, registered).await;
                        // Off the running list before recording: a heartbeat racing the
                        // record must not take the job's own completion for a lost lease.
                        pool.unregister(job.id);
                        pool.limiter.finished(&job.storyteller);
                        pool.record(&job, outcome?).await
                    }
                    .instrument(span)
                    .await;
                    match next {
                        Some(next) => job = next,
                        None => break,
                    }
                }
                pool.wake.notify_one();
            })
            .id();
        (id, current)
    }

    /// Publishes what became of a job that another process (or a reclaim) took from this worker:
    /// that process's events do not reach this one's subscribers, who would otherwise wait on a
    /// job that has long been cancelled.
    async fn announce_changed_elsewhere(&self, id: JobId) {
        let job = match self.store.get(id).await {
            Ok(job) => job,
            Err(EngineError::JobNotFound(_)) => {
                self.bus.publish(Event::JobsRemoved { job_ids: vec![id] });
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read a job changed elsewhere");
                return;
            }
        };
        self.bus.publish(Event::about(&job));
    }

    /// Stores `outcome`; returns the next job to run when this worker should go on.
    async fn record(&self, job: &Job, outcome: Outcome) -> Option<Job> {
        // This job has left the running list; its successor takes its place if that fits.
        let room = self.running.lock().map(|r| r.len()).unwrap_or(usize::MAX)
            < self.concurrency.load(Ordering::SeqCst);
        // A capped storyteller's books are read between this job and the next, so a cap
        // reached by this attempt holds back the next one: no successor in the same call.
        let capped = self.is_capped(&job.storyteller);
        let go_on = room && !self.stopping.load(Ordering::SeqCst) && !capped;
        let recorded = if go_on {
            let reservation = self
                .limiter
                .reserve(&self.capacities(), 1, self.clock.now_ms());
            let room = crate::store::ClaimRoom {
                max: 1,
                per_storyteller: reservation.room().clone(),
            };
            let recorded = self
                .store
                .finish_and_claim(
                    job.id,
                    &self.owner,
                    outcome.clone(),
                    self.config.lease,
                    room,
                )
                .await;
            let recorded = match recorded {
                Err(e) if is_passing(&e) => self
                    .finish_again(job, outcome, e)
                    .await
                    .map(|done| (done, None)),
                other => other,
            };
            let taken = match &recorded {
                Ok((_, Some(next))) => Some(next.storyteller.as_str()),
                _ => None,
            };
            self.limiter.settle(reservation, taken);
            recorded
        } else {
            match self
                .store
                .finish(job.id, &self.owner, outcome.clone())
                .await
            {
                Err(e) if is_passing(&e) => self.finish_again(job, outcome, e).await,
                other => other,
            }
            .map(|done| (done, None))
        };
        if capped {
            if let Err(e) = self
                .keep_to_spending_caps(Some(&[job.storyteller.as_str()]))
                .await
            {
                tracing::error!(error = %e, "could not read what the storyteller has spent");
            }
        }
        match recorded {
            Ok((done, next)) => {
                tracing::info!(state = %done.state, "job finished");
                if done.state == crate::job::JobState::Succeeded {
                    if let Some(hook) = self.on_told.get() {
                        hook(&done);
                    }
                }
                next
            }
            Err(EngineError::LeaseLost(_)) | Err(EngineError::IllegalTransition(_)) => {
                tracing::info!("job was taken from this worker before it finished");
                self.announce_changed_elsewhere(job.id).await;
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "could not record the job's outcome");
                None
            }
        }
    }

    /// Records `outcome` again after `first` (a store that could not be reached, or was busy):
    /// the story is written and paid for, so it is kept trying for while the lease would still
    /// hold, rather than left for the job to be told a second time.
    async fn finish_again(
        &self,
        job: &Job,
        outcome: Outcome,
        first: EngineError,
    ) -> crate::error::Result<Job> {
        let until = std::time::Instant::now() + self.config.lease / 2;
        let mut pause = Duration::from_millis(200);
        let mut last = first;
        tracing::warn!(error = %last, "could not record the job's outcome; trying again");
        while std::time::Instant::now() + pause < until {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
            match self
                .store
                .finish(job.id, &self.owner, outcome.clone())
                .await
            {
                Err(e) if is_passing(&e) => last = e,
                done => return done,
            }
        }
        Err(last)
    }

    /// The content hash to tell `job` under. A file edited or replaced since it was added is
    /// hashed again and the job updated, so the story is cached under the content it tells,
    /// never under the old content's hash.
    async fn check_source(&self, job: &Job) -> Result<String, StoryError> {
        let (path, size, mtime) = (job.source.clone(), job.size, job.mtime_ms);
        let check = tokio::task::spawn_blocking(move || intake::changed_since(&path, size, mtime));
        // A read that stalls (a dead network mount) fails the job instead of holding a worker
        // for ever; the time allowed grows with the file, at a slow disk's pace.
        let limit = SOURCE_CHECK_BASE + Duration::from_secs(job.size / SLOW_READ_BYTES_PER_S);
        let changed = match tokio::time::timeout(limit, check).await {
            Err(_) => {
                return Err(StoryError::permanent(format!(
                    "not readable: timed out after {} s reading the file (is its drive still \
                     there?)",
                    limit.as_secs()
                )))
            }
            Ok(Err(_)) => None,
            Ok(Ok(Err(reason))) => return Err(StoryError::permanent(reason)),
            Ok(Ok(Ok(changed))) => changed,
        };
        let Some((size, mtime_ms, content_hash)) = changed else {
            return Ok(job.content_hash.clone());
        };
        tracing::info!(
            size,
            "the file changed since it was added; telling its new content"
        );
        if let Err(e) = self
            .store
            .update_source(job.id, &self.owner, size, mtime_ms, content_hash.clone())
            .await
        {
            tracing::warn!(error = %e, "could not record the file's new content");
        }
        Ok(content_hash)
    }

    /// Runs one job to an outcome to record; `None` when there is nothing to record (cancelled
    /// by the person, or no longer ours).
    async fn run_job(&self, job: &Job, registered: Registered) -> Option<Outcome> {
        let Registered {
            token,
            cancelled,
            reason,
        } = registered;
        tracing::info!(attempt = job.attempts, storyteller = %job.storyteller, "job started");
        let result = match self.storytellers.get(&job.storyteller) {
            None => Some(Err(StoryError::permanent(format!(
                "this app has no storyteller called '{}' (available: {})",
                job.storyteller,
                self.storytellers.names().join(", ")
            )))),
            Some(storyteller) => 'told: {
                // A cancel or a shutdown does not wait for a look at the file that stalls.
                let checked = tokio::select! {
                    biased;
                    _ = token.cancelled() => break 'told None,
                    checked = self.check_source(job) => checked,
                };
                let content_hash = match checked {
                    Ok(content_hash) => content_hash,
                    Err(error) => break 'told Some(Err(error)),
                };
                let request = StoryRequest {
                    job_id: job.id,
                    source: job.source.clone(),
                    content_hash,
                    preset: job.preset.clone(),
                    style: job.style.clone(),
                    model: job.model.clone(),
                    checkpoint: job.checkpoint.clone(),
                    cancelled,
                };
                let mut sink = StorySink::new(job.id, job.attempts, self.bus.clone());
                let mut status = sink.watch_status();
                let mut checkpoints = sink.watch_checkpoints();
                let result = {
                    let tell = storyteller.tell(&request, &mut sink);
                    tokio::pin!(tell);
                    // The first save is one period in: a quick job never writes progress at all.
                    let period = self.config.save_progress_every;
                    let mut save =
                        tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                    save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            biased;
                            _ = token.cancelled() => break None,
                            result = &mut tell => break Some(result),
                            // Saved at once: a checkpoint is work a kill must not undo.
                            Ok(()) = checkpoints.changed() => {
                                self.keep_checkpoint(job, &mut checkpoints, &mut status).await;
                            }
                            _ = save.tick() => {
                                if status.has_changed().unwrap_or(false) {
                                    let (stage, progress) = *status.borrow_and_update();
                                    if let Err(e) = self.store.report(job.id, &self.owner, stage, progress).await {
                                        tracing::debug!(error = %e, "could not save progress");
                                    }
                                }
                            }
                        }
                    }
                };
                // A failure right after a checkpoint: the next attempt still starts from it.
                if !matches!(result, Some(Ok(_))) && checkpoints.has_changed().unwrap_or(false) {
                    self.keep_checkpoint(job, &mut checkpoints, &mut status)
                        .await;
                }
                // What the attempt spent, priced, whatever its end: the storyteller's own
                // figures where it returned them, else the last it reported on the way.
                let reported = match &result {
                    Some(Ok(usage)) if !usage.is_empty() => usage.clone(),
                    _ => sink.spent().clone(),
                };
                let model = sink.answered_by().unwrap_or(&job.model).to_owned();
                let spent = self.price(&job.storyteller, &model, &reported);
                if !matches!(result, Some(Ok(_))) && !spent.is_empty() {
                    self.book(job, spent.clone()).await;
                }
                result.map(|r| r.map(|_| (spent, sink.into_parts())))
            }
        };
        match result {
            None => {
                let reason = reason.get().copied().unwrap_or(StopReason::Shutdown);
                match reason {
                    StopReason::Shutdown => {
                        tracing::info!("job put back for later (shutting down)")
                    }
                    StopReason::Cancelled => tracing::info!("job cancelled"),
                    StopReason::LeaseLost => self.announce_changed_elsewhere(job.id).await,
                }
                policy::after_stop(reason)
            }
            Some(Ok((usage, (story, media)))) => Some(Outcome::Succeeded {
                story,
                media,
                usage,
            }),
            Some(Err(error)) => Some(self.outcome_for_error(job, error).await),
        }
    }

    /// Writes the latest checkpoint, and the progress it stands for: how far a job had got
    /// when it was interrupted decides whether the interruption counts against it.
    async fn keep_checkpoint(
        &self,
        job: &Job,
        checkpoints: &mut tokio::sync::watch::Receiver<Option<Arc<serde_json::Value>>>,
        status: &mut tokio::sync::watch::Receiver<(crate::job::Stage, f64)>,
    ) {
        let saved = checkpoints.borrow_and_update().clone();
        let Some(saved) = saved else {
            return;
        };
        if let Err(e) = self
            .store
            .save_checkpoint(job.id, &self.owner, (*saved).clone())
            .await
        {
            tracing::warn!(error = %e, "could not save the work done so far");
            return;
        }
        let (stage, progress) = *status.borrow_and_update();
        if let Err(e) = self
            .store
            .report(job.id, &self.owner, stage, progress)
            .await
        {
            tracing::debug!(error = %e, "could not save progress");
        }
    }

    async fn outcome_for_error(&self, job: &Job, error: StoryError) -> Outcome {
        let job_error = error.to_job_error();
        tracing::warn!(kind = job_error.kind.as_str(), error = %job_error.message, "job failed");
        let decision = policy::after_failure(
            &error,
            job.attempts,
            &self.config.retry,
            self.clock.now_ms(),
        );
        if let Some(reason) = decision.pause {
            if let Some(folder) = decision.resume_when_room_at {
                self.wait_for_room(reason.clone(), folder);
            }
            if let Err(e) = self.store.set_paused(Some(reason)).await {
                tracing::error!(error = %e, "could not pause the queue");
            }
        }
        if let Some(pause) = decision.pause_storyteller {
            tracing::warn!(storyteller = %job.storyteller, kind = pause.kind.as_str(), "pausing the storyteller");
            if let Err(e) = self
                .store
                .set_storyteller_paused(job.storyteller.clone(), Some(pause))
                .await
            {
                tracing::error!(error = %e, "could not pause the storyteller");
            }
        }
        if let Some(until) = decision.slow_down_until {
            let capacity = self
                .storytellers
                .get(&job.storyteller)
                .map(|s| s.capacity())
                .unwrap_or_default();
            self.limiter
                .rate_limited(&job.storyteller, &capacity, self.clock.now_ms(), until);
        }
        decision.outcome
    }

    /// `usage` with its cost from the price table (a storyteller's own cost where it gave one
    /// and the table has no price).
    fn price(
        &self,
        storyteller: &str,
        model: &str,
        usage: &crate::job::Usage,
    ) -> crate::job::Usage {
        match self.prices.read() {
            Ok(prices) => prices.priced(storyteller, model, usage),
            Err(_) => usage.clone(),
        }
    }

    /// Books what a failed or stopped attempt spent with its job.
    async fn book(&self, job: &Job, spent: crate::job::Usage) {
        tracing::info!(
            input_tokens = spent.input_tokens,
            output_tokens = spent.output_tokens,
            cost_micro_usd = spent.cost_micro_usd,
            "booking what the attempt spent"
        );
        if let Err(e) = self.store.book_usage(job.id, spent).await {
            tracing::error!(error = %e, "could not book what the attempt spent");
        }
    }
}

/// What a job running here is registered with.
pub(super) struct Registered {
    /// Fires when the job must stop, whatever the reason.
    token: CancellationToken,
    /// Fires when the person cancels it.
    cancelled: CancellationToken,
    /// Why the token fired.
    reason: Arc<OnceLock<StopReason>>,
}

/// Whether a store error passes by itself (its server unreachable for a moment, or busy).
fn is_passing(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::Storage(crate::error::StorageError {
            fault: crate::error::StorageFault::Unreachable | crate::error::StorageFault::Busy,
            ..
        })
    )
}
