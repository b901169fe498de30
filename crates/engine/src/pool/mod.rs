//! The task pool: claims jobs from a [`JobStore`] and runs at most N of them at once.
//!
//! - this module: the scheduling loop. It owns the running set (a `JoinSet`), claims as many
//!   jobs as there are free slots, renews every lease in one heartbeat, returns the jobs of
//!   workers that died to the queue, and sleeps until the next event or the next job waiting to
//!   retry becomes ready. Every wait reads the pool's [`Clock`] and tokio's timers, so tests run
//!   it under `tokio::time::pause()`.
//! - `worker`: one job from claim to recorded outcome, and on to its successor.
//! - [`policy`]: what a failure or a stop means (retry, dead, pause), without a store.
//! - [`limits`]: each storyteller's pace (at once, a minute, a day); every claim takes only
//!   the room it leaves, and a storyteller with none is passed over, not waited for.
//!
//! Whatever an attempt spent is priced from the pool's [`PriceTable`] and booked with the job,
//! succeeded, failed or cancelled; [`spending`] pauses a storyteller whose books reach its cap.
//!
//! While a pool runs, its worker is registered with the store
//! ([`JobStore::register_worker`]): every other pool on the store knows it alive, and once it
//! dies (however it dies) reclaims its jobs at once instead of waiting for their leases to run
//! out, which is how a restart after `kill -9` resumes without delay. How the store knows is
//! the store's business (a lock file beside a SQLite database).

pub mod limits;
pub mod policy;
pub mod spending;
mod worker;

use crate::clock::{duration_ms, Clock};
use crate::error::{EngineError, Result};
use crate::event::{Event, EventBus};
use crate::job::{ErrorKind, Job, JobError, JobId, JobState};
use crate::pricing::PriceTable;
use crate::retry::RetryPolicy;
use crate::store::ClaimRoom;
use crate::store::{ForeignChanges, JobStore, Outcome};
use crate::storyteller::{Capacity, StorytellerRegistry};
use policy::StopReason;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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
    /// A running job's stage and progress are saved at most this often (how far a job had got
    /// when it was interrupted decides whether the interruption counts against it).
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
            save_progress_every: Duration::from_millis(250),
        }
    }
}

/// How long the run loop waits before asking a failing store again.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Whether `folder` (or the nearest folder above it that exists) takes a small file now.
fn has_room(folder: &Path) -> bool {
    let Some(existing) = folder.ancestors().find(|dir| dir.is_dir()) else {
        return false;
    };
    let probe = existing.join(".storyteller-room-check");
    let written = std::fs::File::create(&probe).and_then(|mut file| {
        std::io::Write::write_all(&mut file, &[0u8; 16 * 1024])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&probe);
    written.is_ok()
}

/// How many interruptions without progress set a job aside as `crashed`: twice the attempts a
/// failing job gets. A video that brings the process down at the same point is set aside after
/// that many tries; a good one killed from outside faster than it can get further (a machine
/// under load, a restart loop) has that much slack before it is blamed.
fn interruptions_allowed(retry: &crate::retry::RetryPolicy) -> u32 {
    retry.max_attempts.saturating_mul(2)
}

/// How often a queue paused by a full disk looks for room again.
const ROOM_CHECK_EVERY: Duration = Duration::from_secs(3);

/// When [`Pool::run`] returns (besides its shutdown future resolving).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunUntil {
    /// Keep waiting for new jobs.
    Shutdown,
    /// Return once no job is running here and none is queued (ready or waiting to retry).
    Empty,
}

struct RunningJob {
    token: CancellationToken,
    /// Fires only when the person cancels: the storyteller's cue to clean up.
    cancelled: CancellationToken,
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
    // Set once the run loop ends: workers stop taking successors.
    stopping: AtomicBool,
    // Set while a run is under way: one run at a time.
    in_run: AtomicBool,
    // The pause a full disk caused and the folder that was full: the run loop looks for room
    // there and starts the queue again once there is. std Mutex: never held across an await.
    waiting_for_room: Mutex<Option<(String, PathBuf)>>,
    // Told of each job this pool has just told (set once by the engine; never blocks).
    on_told: OnceLock<ToldHook>,
    // Each storyteller's pace.
    limiter: limits::Limiter,
    // What tokens cost. std RwLock: read for a multiplication, never across an await.
    prices: std::sync::RwLock<PriceTable>,
    // Each storyteller's spending caps (std RwLock: copied out, never held across an await).
    caps: std::sync::RwLock<std::collections::BTreeMap<String, crate::pricing::SpendingCap>>,
}

/// Hears of each job a pool has told, once it is stored as succeeded. It must not block: it
/// runs on the worker.
pub type ToldHook = Arc<dyn Fn(&Job) + Send + Sync>;

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("owner", &self.inner.owner)
            .field("concurrency", &self.concurrency())
            .finish()
    }
}

impl Pool {
    /// Running jobs whose runner has stopped (killed, or its machine lost power): nobody is
    /// telling them, and they go back to the queue as soon as a runner starts.
    pub async fn left_by_stopped_runners(&self) -> Result<u32> {
        self.inner.left_by_stopped_runners().await
    }

    /// A pool over `store`. Each run registers its worker with the store, so other pools can
    /// tell when it has died (and it can tell when they have).
    pub fn new(
        store: Arc<dyn JobStore>,
        storytellers: StorytellerRegistry,
        bus: EventBus,
        clock: Arc<dyn Clock>,
        config: PoolConfig,
    ) -> Result<Self> {
        let owner = format!(
            "pid{}-{}",
            std::process::id(),
            &uuid::Uuid::now_v7().simple().to_string()[20..]
        );
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
                stopping: AtomicBool::new(false),
                in_run: AtomicBool::new(false),
                waiting_for_room: Mutex::new(None),
                on_told: OnceLock::new(),
                limiter: limits::Limiter::default(),
                prices: std::sync::RwLock::new(PriceTable::default()),
                caps: std::sync::RwLock::new(std::collections::BTreeMap::new()),
            }),
        })
    }

    /// The prices attempts are booked at.
    pub fn prices(&self) -> PriceTable {
        self.inner
            .prices
            .read()
            .map(|prices| prices.clone())
            .unwrap_or_default()
    }

    /// Prices the tokens of every attempt from now on with `prices`.
    pub fn set_prices(&self, prices: PriceTable) {
        if let Ok(mut current) = self.inner.prices.write() {
            *current = prices;
        }
    }

    /// Keeps each storyteller to `caps` from now on: one whose books already reach its cap
    /// pauses at once, one paused by a cap now raised or lifted goes on.
    pub async fn set_spending_caps(
        &self,
        caps: std::collections::BTreeMap<String, crate::pricing::SpendingCap>,
    ) -> Result<()> {
        if let Ok(mut current) = self.inner.caps.write() {
            *current = caps;
        }
        self.inner.keep_to_spending_caps(None).await
    }

    /// Sets what hears of each job this pool tells (only the first call counts).
    pub fn on_told(&self, hook: ToldHook) {
        let _ = self.inner.on_told.set(hook);
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
        let n = n.max(1);
        if self.inner.concurrency.swap(n, Ordering::SeqCst) != n {
            self.inner.bus.publish(Event::ConcurrencyChanged {
                concurrency: u32::try_from(n).unwrap_or(u32::MAX),
            });
        }
        self.wake();
    }

    /// Tells the loop to look for work now (after enqueueing, resuming, another process's write).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// How many jobs are running in this pool now.
    pub fn running_here(&self) -> usize {
        self.inner.running.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Whether `id` is running in this pool now.
    pub fn is_running_here(&self, id: JobId) -> bool {
        self.inner
            .running
            .lock()
            .map(|running| running.contains_key(&id))
            .unwrap_or(false)
    }

    /// Another process changed the database: stop at once any job running here that it took
    /// away (cancelled, deleted or reclaimed), and look for work it may have made.
    pub fn foreign_change(&self, changes: &ForeignChanges) {
        for job in &changes.changed {
            let still_ours =
                job.state == JobState::Running && job.lease_owner.as_deref() == Some(self.owner());
            if !still_ours && self.is_running_here(job.id) {
                tracing::info!(job = %job.id, state = %job.state, "job changed elsewhere; stopping it here");
                self.inner.stop(job.id, StopReason::LeaseLost);
            }
        }
        for id in &changes.removed {
            self.inner.stop(*id, StopReason::LeaseLost);
        }
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
    /// A pool runs once at a time; it can run again after a run ends.
    pub async fn run(&self, until: RunUntil, shutdown: impl Future<Output = ()>) -> Result<()> {
        let inner = &self.inner;
        if inner.in_run.swap(true, Ordering::SeqCst) {
            return Err(EngineError::InvalidArgument(
                "the queue is already being worked here".into(),
            ));
        }
        let result = self.run_once(until, shutdown).await;
        inner.in_run.store(false, Ordering::SeqCst);
        result
    }

    async fn run_once(&self, until: RunUntil, shutdown: impl Future<Output = ()>) -> Result<()> {
        let inner = &self.inner;
        inner.stopping.store(false, Ordering::SeqCst);
        // Held for this run: while it is, every process on the store knows this worker alive.
        let registration = inner.store.register_worker(&inner.owner).await?;
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
        if let Err(e) = inner.keep_to_spending_caps(None).await {
            tracing::error!(error = %e, "could not read what the storytellers have spent");
        }
        let mut room_check = tokio::time::interval(ROOM_CHECK_EVERY);
        room_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        let mut result = Ok(());
        loop {
            let free = self.concurrency().saturating_sub(tasks.len());
            let idle = if free > 0 {
                let capacities = inner.capacities();
                let reservation = inner
                    .limiter
                    .reserve(&capacities, free, inner.clock.now_ms());
                let room = ClaimRoom {
                    max: free,
                    per_storyteller: reservation.room().clone(),
                };
                let claimed = inner
                    .store
                    .claim_within(&inner.owner, room, inner.config.lease)
                    .await;
                let taken = claimed.as_ref().map(|jobs| jobs.as_slice()).unwrap_or(&[]);
                inner.limiter.settle(
                    reservation,
                    taken.iter().map(|job| job.storyteller.as_str()),
                );
                match claimed {
                    Ok(jobs) => {
                        crate::error::say_database_disk_full(false);
                        let idle = jobs.len() < free;
                        for job in jobs {
                            let (task, current) = inner.spawn_worker(&mut tasks, job);
                            task_jobs.insert(task, current);
                        }
                        idle
                    }
                    Err(e @ (EngineError::StoreClosed | EngineError::DatabaseDamaged(_))) => {
                        result = Err(e);
                        break;
                    }
                    Err(e) if e.is_disk_full() => {
                        // Said once, not twice a second: nothing changes until space is freed.
                        crate::error::say_database_disk_full(true);
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = tokio::time::sleep(ROOM_CHECK_EVERY) => continue,
                        }
                    }
                    Err(e) => {
                        // The database may be busy for a while: keep trying rather than leave
                        // the queue without a worker.
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
                Err(e @ (EngineError::StoreClosed | EngineError::DatabaseDamaged(_))) => {
                    result = Err(e);
                    break;
                }
                Err(e) if e.is_disk_full() => {
                    crate::error::say_database_disk_full(true);
                    Some(inner.clock.now_ms() + duration_ms(ROOM_CHECK_EVERY))
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
                _ = inner.wake.notified() => {}
                _ = heartbeat.tick() => inner.renew_leases().await,
                _ = reclaim.tick() => {
                    if let Err(e) = inner.reclaim_dead().await {
                        tracing::error!(error = %e, "reclaiming stale jobs failed");
                    }
                }
                _ = room_check.tick() => inner.resume_if_room().await,
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
        // A clean end: nothing is left for anyone to reclaim.
        registration.stop().await;
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
                if reason == StopReason::Cancelled {
                    job.cancelled.cancel();
                }
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
                        tracing::warn!(job = %id, "another runner has this job now (its lease here ran out); stopping it here");
                        self.stop(id, StopReason::LeaseLost);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "renewing leases failed"),
        }
    }

    /// After a full disk paused the queue: once the folder takes a write again, and the queue
    /// is still paused for that reason (not paused by a person since), starts it again.
    async fn resume_if_room(&self) {
        let waiting = self.waiting_for_room.lock().ok().and_then(|w| w.clone());
        let Some((reason, folder)) = waiting else {
            return;
        };
        let probe_folder = folder.clone();
        let room = tokio::task::spawn_blocking(move || has_room(&probe_folder))
            .await
            .unwrap_or(false);
        if !room {
            return;
        }
        if let Ok(mut waiting) = self.waiting_for_room.lock() {
            *waiting = None;
        }
        match self.store.stats().await {
            Ok(stats) if stats.paused.as_deref() == Some(reason.as_str()) => {
                tracing::info!(folder = %folder.display(), "there is room again; the queue goes on");
                if let Err(e) = self.store.set_paused(None).await {
                    tracing::error!(error = %e, "could not start the queue again");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the queue"),
        }
    }

    /// Remembers that a full disk at `folder` paused the queue with `reason`.
    pub(super) fn wait_for_room(&self, reason: String, folder: PathBuf) {
        if let Ok(mut waiting) = self.waiting_for_room.lock() {
            *waiting = Some((reason, folder));
        }
    }

    /// Running jobs whose runner has stopped (killed, or its machine lost power): they are not
    /// being told, and go back to the queue as soon as a runner starts.
    pub(super) async fn left_by_stopped_runners(&self) -> Result<u32> {
        self.store.stranded_jobs().await
    }

    async fn reclaim_dead(&self) -> Result<()> {
        let touched = self
            .store
            .reclaim(interruptions_allowed(&self.config.retry))
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
        let next_ready_at = self
            .store
            .next_ready_in()
            .await?
            .map(|wait| self.clock.now_ms().saturating_add(duration_ms(wait)));
        let opening = self
            .limiter
            .next_opening(&self.capacities(), self.clock.now_ms());
        let wake_at = match (next_ready_at, opening) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if until == RunUntil::Empty && none_running {
            let stats = self.store.stats().await?;
            // Queued jobs that could not be claimed wait for a running twin (maybe in another
            // process), a retry's time or a storyteller's pace; a paused queue, or jobs all of
            // paused storytellers, have nothing to wait for here.
            let held: u32 = stats
                .paused_storytellers
                .iter()
                .map(|pause| pause.queued)
                .sum();
            if stats.queued == 0 || stats.paused.is_some() || stats.queued <= held {
                return Ok(Next::Stop);
            }
        }
        Ok(Next::WaitUntil(wake_at))
    }

    /// What each storyteller's service can take, as it says now.
    fn capacities(&self) -> Vec<(String, Capacity)> {
        self.storytellers
            .names()
            .into_iter()
            .filter_map(|name| {
                let capacity = self.storytellers.get(&name)?.capacity();
                Some((name, capacity))
            })
            .collect()
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
}
