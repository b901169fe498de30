//! The task pool: claims jobs from a [`JobStore`] and runs at most N of them at once.
//!
//! One loop owns the running set (a `JoinSet`): it claims as many jobs as there are free slots,
//! renews every lease in one heartbeat, and returns the jobs of workers that died to the queue.
//! Each job runs in its own task, racing its storyteller against its cancel token; dropping the
//! storyteller's future is what stops it (HTTP requests are dropped, ffmpeg children killed).
//!
//! A pool holds an exclusive lock on `runners/<owner>.lock` for as long as it lives. Another pool
//! that can take that lock knows the owner is gone and reclaims its jobs at once instead of waiting
//! for their leases to run out, which is how a restart after `kill -9` resumes without delay.

use crate::error::{EngineError, Result};
use crate::event::{Event, EventBus};
use crate::intake;
use crate::job::{ErrorKind, Job, JobError, JobId};
use crate::retry::{duration_ms, Clock, RetryPolicy};
use crate::store::{JobStore, Outcome};
use crate::storyteller::{StoryError, StoryRequest, StorySink, StorytellerRegistry};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How a pool runs.
#[derive(Clone, Debug)]
pub struct PoolConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long a claim lasts without a heartbeat.
    pub lease: Duration,
    /// How often leases are renewed (well inside `lease`).
    pub heartbeat: Duration,
    /// How often expired leases and dead workers' jobs are looked for.
    pub reclaim_every: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// A running job's stage and progress are saved at most this often.
    pub save_progress_every: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            concurrency: 3,
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            reclaim_every: Duration::from_secs(15),
            retry: RetryPolicy::default(),
            save_progress_every: Duration::from_secs(1),
        }
    }
}

/// How long the run loop waits before asking a failing store again.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// When [`Pool::run`] returns (besides its shutdown future resolving).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunUntil {
    /// Keep waiting for new jobs.
    Shutdown,
    /// Return once no job is running here and none is queued (ready or waiting to retry).
    Empty,
}

/// Why a running job's token fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopReason {
    /// The person cancelled it; the store already says so.
    Cancelled,
    /// The heartbeat found the job no longer ours.
    LeaseLost,
    /// The pool is shutting down: put the job back.
    Shutdown,
}

struct RunningJob {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

/// A bounded pool of job runners over a store.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    store: Arc<dyn JobStore>,
    storytellers: StorytellerRegistry,
    bus: EventBus,
    clock: Arc<dyn Clock>,
    config: PoolConfig,
    concurrency: AtomicUsize,
    owner: String,
    wake: Notify,
    // std Mutex: held only for map inserts/lookups, never across an await.
    running: Mutex<HashMap<JobId, RunningJob>>,
    // Set by `external_change`: the next wake also renews leases (which finds cancelled jobs).
    recheck_leases: std::sync::atomic::AtomicBool,
    // Set once the run loop ends: workers stop taking successors.
    stopping: std::sync::atomic::AtomicBool,
    runners_dir: Option<PathBuf>,
    // Held for the pool's life; see the module docs.
    _lock: Option<std::fs::File>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("owner", &self.inner.owner)
            .field("concurrency", &self.concurrency())
            .finish()
    }
}

impl Pool {
    /// A pool over `store`. With `runners_dir`, it takes a liveness lock there so other pools can
    /// tell when it has died (and it can tell when they have).
    pub fn new(
        store: Arc<dyn JobStore>,
        storytellers: StorytellerRegistry,
        bus: EventBus,
        clock: Arc<dyn Clock>,
        config: PoolConfig,
        runners_dir: Option<&Path>,
    ) -> Result<Self> {
        let owner = format!(
            "pid{}-{}",
            std::process::id(),
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
        let lock = match runners_dir {
            Some(dir) => Some(take_runner_lock(dir, &owner)?),
            None => None,
        };
        Ok(Self {
            inner: Arc::new(PoolInner {
                store,
                storytellers,
                bus,
                clock,
                concurrency: AtomicUsize::new(config.concurrency.max(1)),
                config,
                owner,
                wake: Notify::new(),
                running: Mutex::new(HashMap::new()),
                recheck_leases: std::sync::atomic::AtomicBool::new(false),
                stopping: std::sync::atomic::AtomicBool::new(false),
                runners_dir: runners_dir.map(Path::to_path_buf),
                _lock: lock,
            }),
        })
    }

    /// The lease owner name this pool claims under.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// Jobs run at once.
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency.load(Ordering::SeqCst)
    }

    /// Changes how many jobs run at once, taking effect at once (running jobs are not stopped
    /// when it shrinks; no new one starts until the count is under the new limit).
    pub fn set_concurrency(&self, n: usize) {
        self.inner.concurrency.store(n.max(1), Ordering::SeqCst);
        self.wake();
    }

    /// Tells the loop to look for work now (after enqueueing, resuming, another process's write).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Another process changed the database (a job added, cancelled or paused elsewhere): look
    /// for work now, and re-check that this pool still holds its running jobs, so a cancel from
    /// another process stops its job within a moment rather than at the next heartbeat.
    pub fn external_change(&self) {
        self.inner.recheck_leases.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Stops claiming new jobs, with a reason people see; running jobs finish.
    pub async fn pause(&self, reason: impl Into<String>) -> Result<()> {
        self.inner.store.set_paused(Some(reason.into())).await
    }

    /// Claims jobs again.
    pub async fn resume(&self) -> Result<()> {
        self.inner.store.set_paused(None).await?;
        self.wake();
        Ok(())
    }

    /// Cancels a queued or running job; a running one here stops promptly.
    pub async fn cancel(&self, id: JobId) -> Result<Job> {
        let job = self.inner.store.cancel(id).await?;
        self.inner.stop(id, StopReason::Cancelled);
        Ok(job)
    }

    /// Works the queue until `shutdown` resolves (or, with [`RunUntil::Empty`], the queue is
    /// empty). On shutdown, running jobs are put back as `queued` with their attempt refunded.
    pub async fn run(&self, until: RunUntil, shutdown: impl Future<Output = ()>) -> Result<()> {
        let inner = &self.inner;
        // A pool can run again after a run ends.
        inner.stopping.store(false, Ordering::SeqCst);
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut task_jobs: HashMap<tokio::task::Id, Arc<Mutex<Job>>> = HashMap::new();
        let mut heartbeat = tokio::time::interval(inner.config.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reclaim = tokio::time::interval(inner.config.reclaim_every);
        reclaim.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Both intervals tick at once: a start-up reclaim before the first claim.
        reclaim.tick().await;
        heartbeat.tick().await;
        inner.reclaim_dead().await?;
        tokio::pin!(shutdown);
        let mut last_recheck = tokio::time::Instant::now();
        let mut result = Ok(());
        loop {
            let free = self.concurrency().saturating_sub(tasks.len());
            let idle = if free > 0 {
                match inner
                    .store
                    .claim(&inner.owner, free, inner.config.lease)
                    .await
                {
                    Ok(jobs) => {
                        let idle = jobs.len() < free;
                        for job in jobs {
                            let (task, current) = inner.spawn_worker(&mut tasks, job);
                            task_jobs.insert(task, current);
                        }
                        idle
                    }
                    Err(EngineError::StoreClosed) => {
                        result = Err(EngineError::StoreClosed);
                        break;
                    }
                    Err(e) => {
                        // The database may be busy or the disk full for a while: keep trying
                        // rather than leave the queue without a worker.
                        tracing::error!(error = %e, "claiming jobs failed; trying again shortly");
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = tokio::time::sleep(STORE_RETRY) => continue,
                        }
                    }
                }
            } else {
                false
            };
            let next_ready_at = match inner.after_claim(until, idle, tasks.is_empty()).await {
                Ok(Next::Stop) => break,
                Ok(Next::WaitUntil(at)) => at,
                Err(EngineError::StoreClosed) => {
                    result = Err(EngineError::StoreClosed);
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, "reading the queue failed; trying again shortly");
                    Some(inner.clock.now_ms() + duration_ms(STORE_RETRY))
                }
            };
            let sleep_for = next_ready_at.map(|at| {
                Duration::from_millis((at - inner.clock.now_ms()).clamp(1, 60_000) as u64)
            });
            tokio::select! {
                _ = &mut shutdown => break,
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    inner.worker_ended(&mut task_jobs, joined).await;
                    // Workers that ended together leave room: claim for all of it in one go.
                    while let Some(joined) = tasks.try_join_next_with_id() {
                        inner.worker_ended(&mut task_jobs, joined).await;
                    }
                }
                _ = inner.wake.notified() => {
                    // At most one extra heartbeat per 250 ms however chatty the other process is.
                    if last_recheck.elapsed() >= Duration::from_millis(250)
                        && inner.recheck_leases.swap(false, Ordering::SeqCst)
                    {
                        last_recheck = tokio::time::Instant::now();
                        inner.renew_leases().await;
                    }
                }
                _ = heartbeat.tick() => inner.renew_leases().await,
                _ = reclaim.tick() => {
                    if let Err(e) = inner.reclaim_dead().await {
                        tracing::error!(error = %e, "reclaiming stale jobs failed");
                    }
                }
                _ = sleep_or_never(sleep_for) => {}
            }
        }
        // Shutdown: put running jobs back, then wait for their tasks to report it.
        inner.stopping.store(true, Ordering::SeqCst);
        let running: Vec<JobId> = inner.running_ids();
        for id in running {
            inner.stop(id, StopReason::Shutdown);
        }
        while let Some(joined) = tasks.join_next_with_id().await {
            inner.worker_ended(&mut task_jobs, joined).await;
        }
        result
    }
}

/// What the run loop does after a claim.
enum Next {
    /// Return: the queue is empty (with [`RunUntil::Empty`]).
    Stop,
    /// Wait for an event, or until this time (ms) when a job waiting to retry becomes ready.
    WaitUntil(Option<i64>),
}

async fn sleep_or_never(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

fn runner_lock_path(dir: &Path, owner: &str) -> PathBuf {
    dir.join(format!("{owner}.lock"))
}

fn take_runner_lock(dir: &Path, owner: &str) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, &e))?;
    let path = runner_lock_path(dir, owner);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| EngineError::io(&path, &e))?;
    file.try_lock().map_err(|e| EngineError::Io {
        path: path.clone(),
        message: format!("could not lock the runner file: {e}"),
    })?;
    Ok(file)
}

/// Whether the pool that took `owner`'s lock file has gone (its lock can be taken).
/// Unknown owners (no lock file) are left to lease expiry.
fn owner_is_gone(dir: &Path, owner: &str) -> bool {
    let path = runner_lock_path(dir, owner);
    let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => {
            // It is ours now and nobody else will want it.
            let _ = std::fs::remove_file(&path);
            true
        }
        Err(_) => false,
    }
}

impl PoolInner {
    fn running_ids(&self) -> Vec<JobId> {
        self.running
            .lock()
            .map(|running| running.keys().copied().collect())
            .unwrap_or_default()
    }

    fn stop(&self, id: JobId, reason: StopReason) {
        if let Ok(running) = self.running.lock() {
            if let Some(job) = running.get(&id) {
                let _ = job.reason.set(reason);
                job.token.cancel();
            }
        }
    }

    async fn renew_leases(&self) {
        // Only jobs registered before the heartbeat can be judged by it: a successor claimed
        // while it was under way is held but was not renewed by it.
        let before = self.running_ids();
        match self.store.heartbeat(&self.owner, self.config.lease).await {
            Ok(held) => {
                let held: HashSet<JobId> = held.into_iter().collect();
                for id in before {
                    if !held.contains(&id) {
                        // Cancelled from another process, or reclaimed after a stall.
                        tracing::warn!(job = %id, "job is no longer ours; stopping it");
                        self.stop(id, StopReason::LeaseLost);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "renewing leases failed"),
        }
    }

    async fn reclaim_dead(&self) -> Result<()> {
        let mut dead = Vec::new();
        if let Some(dir) = self.runners_dir.clone() {
            let mut owners = self.store.lease_owners().await?;
            owners.retain(|owner| *owner != self.owner);
            if !owners.is_empty() {
                // Lock files are file I/O: off the async workers.
                dead = tokio::task::spawn_blocking(move || {
                    owners.retain(|owner| owner_is_gone(&dir, owner));
                    owners
                })
                .await
                .unwrap_or_default();
            }
        }
        let touched = self
            .store
            .reclaim(dead, self.config.retry.max_attempts)
            .await?;
        if !touched.is_empty() {
            tracing::info!(
                jobs = touched.len(),
                "returned interrupted jobs to the queue"
            );
            self.wake.notify_one();
        }
        Ok(())
    }

    /// After a claim that left slots free (`idle`): when the next waiting job is ready, or
    /// whether a run until empty is done.
    async fn after_claim(&self, until: RunUntil, idle: bool, none_running: bool) -> Result<Next> {
        if !idle {
            return Ok(Next::WaitUntil(None));
        }
        let next_ready_at = self.store.next_ready_at().await?;
        if until == RunUntil::Empty && none_running && next_ready_at.is_none() {
            let stats = self.store.stats().await?;
            // Queued jobs that could not be claimed wait for a running twin (maybe in another
            // process); a paused queue has nothing to wait for.
            if stats.queued == 0 || stats.paused.is_some() {
                return Ok(Next::Stop);
            }
        }
        Ok(Next::WaitUntil(next_ready_at))
    }

    /// Forgets a worker task that ended; one that panicked fails the job it was on.
    async fn worker_ended(
        &self,
        task_jobs: &mut HashMap<tokio::task::Id, Arc<Mutex<Job>>>,
        joined: std::result::Result<(tokio::task::Id, ()), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((id, ())) => {
                task_jobs.remove(&id);
            }
            Err(failure) => {
                if let Some(job) = task_jobs.remove(&failure.id()) {
                    self.task_panicked(&job, &failure).await;
                }
            }
        }
    }

    async fn task_panicked(&self, job: &Mutex<Job>, failure: &tokio::task::JoinError) {
        let Ok(job) = job.lock().map(|job| job.clone()) else {
            return;
        };
        tracing::error!(job = %job.id, error = %failure, "job task panicked");
        let error = JobError {
            kind: ErrorKind::Permanent,
            message: format!(
                "internal error while telling this video ({failure}); please report it"
            ),
        };
        if let Err(e) = self
            .store
            .finish(job.id, &self.owner, Outcome::Dead { error })
            .await
        {
            tracing::error!(job = %job.id, error = %e, "could not record the failure");
        }
        if let Ok(mut running) = self.running.lock() {
            running.remove(&job.id);
        }
    }

    /// Registers `job` as running here; its token fires when it must stop.
    fn register(&self, job: &Job) -> (CancellationToken, Arc<OnceLock<StopReason>>) {
        let token = CancellationToken::new();
        let reason = Arc::new(OnceLock::new());
        if let Ok(mut running) = self.running.lock() {
            running.insert(
                job.id,
                RunningJob {
                    token: token.clone(),
                    reason: reason.clone(),
                },
            );
        }
        // A successor claimed while the pool began shutting down goes straight back.
        if self.stopping.load(Ordering::SeqCst) {
            let _ = reason.set(StopReason::Shutdown);
            token.cancel();
        }
        (token, reason)
    }

    fn unregister(&self, id: JobId) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&id);
        }
    }

    /// Spawns a worker for `job`. When its job ends, the worker records the outcome and claims
    /// its successor in one store call, and runs that too, for as long as the pool has room:
    /// one round trip per job instead of two. Returns the task id and the job it is on.
    fn spawn_worker(
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
                    let (token, reason) = pool.register(&job);
                    let span = tracing::info_span!("job", id = %job.id, file = %job.file_name());
                    let next = async {
                        let outcome = pool.run_job(&job, token, reason).await;
                        // Off the running list before recording: a heartbeat racing the
                        // record must not take the job's own completion for a lost lease.
                        pool.unregister(job.id);
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
        let job = match self.store.get(&id.to_string()).await {
            Ok(job) => job,
            Err(EngineError::JobNotFound(_)) => {
                self.bus.publish(Event::JobRemoved { job_id: id });
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
        let go_on = room && !self.stopping.load(Ordering::SeqCst);
        let recorded = if go_on {
            self.store
                .finish_and_claim(job.id, &self.owner, outcome, self.config.lease)
                .await
        } else {
            self.store
                .finish(job.id, &self.owner, outcome)
                .await
                .map(|done| (done, None))
        };
        match recorded {
            Ok((done, next)) => {
                tracing::info!(state = %done.state, "job finished");
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

    /// The content hash to tell `job` under. A file edited or replaced since it was added is
    /// hashed again and the job updated, so the story is cached under the content it tells,
    /// never under the old content's hash.
    async fn check_source(&self, job: &Job) -> String {
        let (path, size, mtime) = (job.source.clone(), job.size, job.mtime_ms);
        let changed =
            tokio::task::spawn_blocking(move || intake::changed_since(&path, size, mtime))
                .await
                .ok()
                .flatten();
        let Some((size, mtime_ms, content_hash)) = changed else {
            return job.content_hash.clone();
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
        content_hash
    }

    /// Runs one job to an outcome to record; `None` when there is nothing to record (cancelled
    /// by the person, or no longer ours).
    async fn run_job(
        &self,
        job: &Job,
        token: CancellationToken,
        reason: Arc<OnceLock<StopReason>>,
    ) -> Option<Outcome> {
        tracing::info!(attempt = job.attempts, storyteller = %job.storyteller, "job started");
        let result = match self.storytellers.get(&job.storyteller) {
            None => Some(Err(StoryError::permanent(format!(
                "this app has no storyteller called '{}' (available: {})",
                job.storyteller,
                self.storytellers.names().join(", ")
            )))),
            Some(storyteller) => {
                let content_hash = self.check_source(job).await;
                let request = StoryRequest {
                    job_id: job.id,
                    source: job.source.clone(),
                    content_hash,
                    preset: job.preset.clone(),
                    model: job.model.clone(),
                };
                let mut sink = StorySink::new(job.id, job.attempts, self.bus.clone());
                let mut status = sink.watch_status();
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
                result.map(|r| r.map(|usage| (usage, sink.into_parts())))
            }
        };
        match result {
            None => match reason.get().copied().unwrap_or(StopReason::Shutdown) {
                StopReason::Shutdown => {
                    tracing::info!("job put back for later (shutting down)");
                    Some(Outcome::Released { error: None })
                }
                StopReason::Cancelled => {
                    tracing::info!("job cancelled");
                    None
                }
                StopReason::LeaseLost => {
                    self.announce_changed_elsewhere(job.id).await;
                    None
                }
            },
            Some(Ok((usage, (story, media)))) => Some(Outcome::Succeeded {
                story,
                media,
                usage,
            }),
            Some(Err(error)) => Some(self.outcome_for_error(job, error).await),
        }
    }

    async fn outcome_for_error(&self, job: &Job, error: StoryError) -> Outcome {
        let job_error = error.to_job_error();
        tracing::warn!(kind = job_error.kind.as_str(), error = %job_error.message, "job failed");
        match error {
            StoryError::Transient { retry_after, .. } => {
                if self.config.retry.may_retry(job.attempts) {
                    let delay = self.config.retry.delay(job.attempts, retry_after);
                    Outcome::Retry {
                        error: job_error,
                        run_after_ms: self.clock.now_ms() + duration_ms(delay),
                    }
                } else {
                    Outcome::Dead {
                        error: JobError {
                            kind: ErrorKind::Transient,
                            message: format!(
                                "gave up after {} attempts: {}",
                                job.attempts, job_error.message
                            ),
                        },
                    }
                }
            }
            StoryError::Permanent { .. } => Outcome::Dead { error: job_error },
            StoryError::Auth { ref message } | StoryError::Setup { ref message } => {
                // Every other job would fail the same way: pause instead and keep this one.
                if let Err(e) = self.store.set_paused(Some(message.clone())).await {
                    tracing::error!(error = %e, "could not pause the queue");
                }
                Outcome::Released {
                    error: Some(job_error),
                }
            }
        }
    }
}
