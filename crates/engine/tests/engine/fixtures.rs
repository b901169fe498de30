//! Queue fixtures: stores on real SQLite files, fabricated jobs, and scripted storytellers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storyteller_engine::job::{NewJob, Priority, StorySpec, Usage};
use storyteller_engine::pool::{Pool, PoolConfig};
use storyteller_engine::retry::RetryPolicy;
use storyteller_engine::store::{
    Enqueued, FileKey, Follower, ForeignSink, JobFilter, JobStore, LiveWorker, Outcome, Removed,
    SourceKey, SqliteStore, StoreFuture, StorySearch, WorkerRegistration,
};
use storyteller_engine::storyteller::{
    http, BoxFuture, StoryError, StoryRequest, StorySink, Storyteller, StorytellerRegistry,
};
use storyteller_engine::watcher::folder::WatchedFolder;
use storyteller_engine::{BatchId, EventBus, Job, JobId, QueueStats, Stage};
use tokio::time::Instant;

/// The jobs an enqueue names, new or already there, in order.
pub trait EnqueuedJobs {
    /// The jobs.
    fn jobs(self) -> Vec<Job>;
    /// The one job of an enqueue of one.
    fn only(self) -> Job;
}

impl EnqueuedJobs for (BatchId, Vec<Enqueued>) {
    fn jobs(self) -> Vec<Job> {
        self.1.into_iter().map(|e| e.job().clone()).collect()
    }

    fn only(self) -> Job {
        let [job] = self.jobs().try_into().expect("exactly one job");
        job
    }
}

/// A store on a fresh database file in `dir`.
pub async fn store_in(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir.join("jobs.db"), EventBus::new())
        .await
        .unwrap()
}

/// A job for a (fake) file `name`; jobs with the same `content` share a cache key.
pub fn job(name: &str, content: &str) -> NewJob {
    job_for("scripted", name, content)
}

/// [`job`] for storyteller `storyteller`.
pub fn job_for(storyteller: &str, name: &str, content: &str) -> NewJob {
    NewJob {
        source: PathBuf::from(format!("/videos/{name}")),
        size: 1000,
        mtime_ms: 0,
        content_hash: blake3::hash(content.as_bytes()).to_hex().to_string(),
        spec: StorySpec {
            storyteller: storyteller.into(),
            model: "test-model".into(),
            preset: "narrative".into(),
            style: Default::default(),
        },
        priority: Priority::Normal,
        no_cache: false,
        again: false,
        watched_folder: None,
    }
}

/// `n` jobs with distinct content, named `{prefix}{i}`.
pub fn jobs(prefix: &str, n: usize) -> Vec<NewJob> {
    (0..n)
        .map(|i| job(&format!("{prefix}{i}.mp4"), &format!("{prefix}-{i}")))
        .collect()
}

/// Fast timings for tests: short leases and backoff.
pub fn fast_config(concurrency: usize) -> PoolConfig {
    PoolConfig {
        concurrency,
        lease: Duration::from_secs(5),
        heartbeat: Duration::from_millis(200),
        reclaim_every: Duration::from_millis(500),
        retry: RetryPolicy {
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
            max_attempts: 5,
        },
        save_progress_every: Duration::from_millis(50),
    }
}

/// A pool over `store` with one storyteller, reading the store's clock.
pub fn pool_with(
    store: &SqliteStore,
    storyteller: Arc<dyn Storyteller>,
    config: PoolConfig,
) -> Pool {
    pool_over(store, registry_of(storyteller), config)
}

/// A store on a fresh database file in `dir` that reads tokio's clock, for tests under
/// `tokio::time::pause()`.
pub async fn paused_store_in(dir: &Path) -> SqliteStore {
    SqliteStore::open_with_clock(
        dir.join("jobs.db"),
        EventBus::new(),
        Arc::new(storyteller_engine::clock::TokioClock::new()),
    )
    .await
    .unwrap()
}

/// A registry holding `storyteller` alone.
pub fn registry_of(storyteller: Arc<dyn Storyteller>) -> StorytellerRegistry {
    let mut registry = StorytellerRegistry::new();
    registry.register(storyteller);
    registry
}

/// What a scripted storyteller does for one call.
pub type Script =
    dyn Fn(&StoryRequest, u32) -> BoxFuture<'static, Result<String, StoryError>> + Send + Sync;

/// A storyteller named `scripted` that records every call and does what its script says;
/// it tracks how many calls run at once.
pub struct Scripted {
    script: Box<Script>,
    pub calls: Mutex<Vec<(JobId, PathBuf, Instant)>>,
    pub per_job: Mutex<HashMap<JobId, u32>>,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
}

impl Scripted {
    pub fn new(
        script: impl Fn(&StoryRequest, u32) -> BoxFuture<'static, Result<String, StoryError>>
            + Send
            + Sync
            + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            script: Box::new(script),
            calls: Mutex::new(Vec::new()),
            per_job: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
        })
    }

    /// A storyteller whose story is `story_of` the video's file name.
    pub fn telling(story_of: impl Fn(&str) -> String + Send + Sync + 'static) -> Arc<Self> {
        Self::new(move |request, _| {
            let name = request
                .source
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let story = story_of(&name);
            Box::pin(async move { Ok(story) })
        })
    }

    /// Succeeds after `delay` with a story naming the file.
    pub fn sleeping(delay: Duration) -> Arc<Self> {
        Self::new(move |request, _| {
            let name = request.source.display().to_string();
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(format!("A story of {name}."))
            })
        })
    }

    /// Files in the order they were first called.
    pub fn order(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|(_, source, _)| {
                source
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches(".mp4")
                    .to_owned()
            })
            .collect()
    }

    pub fn call_count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

struct RunningGuard<'a>(&'a AtomicUsize);
impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Storyteller for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn default_model(&self) -> &str {
        "test-model"
    }
    fn presets(&self) -> &[&'static str] {
        &["narrative"]
    }
    fn tell<'a>(
        &'a self,
        request: &'a StoryRequest,
        sink: &'a mut StorySink,
    ) -> BoxFuture<'a, Result<Usage, StoryError>> {
        Box::pin(async move {
            let now_running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            let _guard = RunningGuard(&self.running);
            self.max_running.fetch_max(now_running, Ordering::SeqCst);
            let call = {
                let mut per_job = self.per_job.lock().unwrap();
                let n = per_job.entry(request.job_id).or_default();
                *n += 1;
                *n
            };
            self.calls.lock().unwrap().push((
                request.job_id,
                request.source.clone(),
                Instant::now(),
            ));
            sink.stage(storyteller_engine::Stage::Writing);
            let story = (self.script)(request, call).await?;
            sink.write(&story);
            sink.progress(1.0);
            Ok(Usage::default())
        })
    }
}

/// A storyteller that asks a real HTTP server (wiremock on 127.0.0.1) for each story, so
/// retries, `Retry-After` and auth handling run against a real wire.
pub fn http_storyteller(base_url: String) -> Arc<Scripted> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    Scripted::new(move |request, _| {
        let url = format!("{base_url}/v1/story");
        let body = serde_json::json!({ "source": request.source, "preset": request.preset });
        let call = client.post(url).json(&body);
        Box::pin(async move {
            let response = http::send_checked("Test provider", call).await?;
            response
                .text()
                .await
                .map_err(|e| http::error_for_transport("Test provider", &e))
        })
    })
}

/// A store whose first `failures` claims fail as a busy database would, then behaves.
pub struct FlakyStore {
    pub inner: SqliteStore,
    pub failures: AtomicUsize,
}

impl JobStore for FlakyStore {
    fn enqueue(&self, jobs: Vec<NewJob>) -> StoreFuture<'_, (BatchId, Vec<Enqueued>)> {
        self.inner.enqueue(jobs)
    }
    fn find_existing(&self, keys: Vec<SourceKey>) -> StoreFuture<'_, Vec<Option<Job>>> {
        self.inner.find_existing(keys)
    }
    fn retry_failed(&self) -> StoreFuture<'_, Vec<Job>> {
        self.inner.retry_failed()
    }
    fn known_hashes(&self, files: Vec<FileKey>) -> StoreFuture<'_, Vec<Option<String>>> {
        self.inner.known_hashes(files)
    }
    fn remember_hashes(&self, hashes: Vec<(FileKey, String)>) -> StoreFuture<'_, ()> {
        self.inner.remember_hashes(hashes)
    }
    fn forget_hashes(&self, sources: Vec<PathBuf>) -> StoreFuture<'_, ()> {
        self.inner.forget_hashes(sources)
    }
    fn follow_others(&self, sink: ForeignSink) -> StoreFuture<'_, Follower> {
        self.inner.follow_others(sink)
    }
    fn claim_within(
        &self,
        owner: &str,
        room: storyteller_engine::store::ClaimRoom,
        lease: Duration,
    ) -> StoreFuture<'_, Vec<Job>> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Box::pin(async {
                Err(storyteller_engine::EngineError::CommitFailed(
                    "database is locked".into(),
                ))
            });
        }
        self.inner.claim_within(owner, room, lease)
    }
    fn heartbeat(&self, owner: &str, lease: Duration) -> StoreFuture<'_, Vec<JobId>> {
        self.inner.heartbeat(owner, lease)
    }
    fn report(&self, id: JobId, owner: &str, stage: Stage, progress: f64) -> StoreFuture<'_, ()> {
        self.inner.report(id, owner, stage, progress)
    }
    fn save_checkpoint(
        &self,
        id: JobId,
        owner: &str,
        checkpoint: serde_json::Value,
    ) -> StoreFuture<'_, ()> {
        self.inner.save_checkpoint(id, owner, checkpoint)
    }
    fn update_source(
        &self,
        id: JobId,
        owner: &str,
        size: u64,
        mtime_ms: i64,
        content_hash: String,
    ) -> StoreFuture<'_, ()> {
        self.inner
            .update_source(id, owner, size, mtime_ms, content_hash)
    }
    fn finish(&self, id: JobId, owner: &str, outcome: Outcome) -> StoreFuture<'_, Job> {
        self.inner.finish(id, owner, outcome)
    }
    fn finish_and_claim(
        &self,
        id: JobId,
        owner: &str,
        outcome: Outcome,
        lease: Duration,
        room: storyteller_engine::store::ClaimRoom,
    ) -> StoreFuture<'_, (Job, Option<Job>)> {
        self.inner.finish_and_claim(id, owner, outcome, lease, room)
    }
    fn book_usage(&self, id: JobId, usage: storyteller_engine::job::Usage) -> StoreFuture<'_, Job> {
        self.inner.book_usage(id, usage)
    }
    fn spending(
        &self,
        from_day: String,
    ) -> StoreFuture<'_, Vec<storyteller_engine::store::DaySpending>> {
        self.inner.spending(from_day)
    }
    fn set_storyteller_paused(
        &self,
        storyteller: String,
        pause: Option<storyteller_engine::store::StorytellerPause>,
    ) -> StoreFuture<'_, ()> {
        self.inner.set_storyteller_paused(storyteller, pause)
    }
    fn register_worker(&self, owner: &str) -> StoreFuture<'_, WorkerRegistration> {
        self.inner.register_worker(owner)
    }

    fn workers(&self) -> StoreFuture<'_, Vec<LiveWorker>> {
        self.inner.workers()
    }

    fn stranded_jobs(&self) -> StoreFuture<'_, u32> {
        self.inner.stranded_jobs()
    }

    fn place(&self) -> String {
        self.inner.place()
    }

    fn reclaim(&self, max_attempts: u32) -> StoreFuture<'_, Vec<JobId>> {
        self.inner.reclaim(max_attempts)
    }
    fn cancel(&self, id: JobId) -> StoreFuture<'_, Job> {
        self.inner.cancel(id)
    }
    fn retry(&self, id: JobId) -> StoreFuture<'_, Job> {
        self.inner.retry(id)
    }
    fn delete(&self, id: JobId) -> StoreFuture<'_, Removed> {
        self.inner.delete(id)
    }
    fn clear_finished(&self) -> StoreFuture<'_, Removed> {
        self.inner.clear_finished()
    }
    fn set_paused(&self, reason: Option<String>) -> StoreFuture<'_, ()> {
        self.inner.set_paused(reason)
    }
    fn note_settings_changed(&self) -> StoreFuture<'_, ()> {
        self.inner.note_settings_changed()
    }
    fn watched_folders(&self) -> StoreFuture<'_, Vec<WatchedFolder>> {
        self.inner.watched_folders()
    }
    fn save_watched_folder(&self, folder: WatchedFolder) -> StoreFuture<'_, ()> {
        self.inner.save_watched_folder(folder)
    }
    fn remove_watched_folder(&self, path: PathBuf) -> StoreFuture<'_, bool> {
        self.inner.remove_watched_folder(path)
    }
    fn enqueue_watched(
        &self,
        folder: PathBuf,
        jobs: Vec<NewJob>,
    ) -> StoreFuture<'_, (storyteller_engine::BatchId, Vec<Option<Enqueued>>)> {
        self.inner.enqueue_watched(folder, jobs)
    }
    fn sighted_files(&self, folder: PathBuf) -> StoreFuture<'_, Vec<FileKey>> {
        self.inner.sighted_files(folder)
    }
    fn report_watch_status(&self, path: PathBuf, status: String) -> StoreFuture<'_, ()> {
        self.inner.report_watch_status(path, status)
    }
    fn watched_folder_reports(
        &self,
    ) -> StoreFuture<'_, Vec<storyteller_engine::store::WatchedFolderReport>> {
        self.inner.watched_folder_reports()
    }
    fn move_source(&self, id: JobId, source: PathBuf) -> StoreFuture<'_, Job> {
        self.inner.move_source(id, source)
    }
    fn get(&self, id: JobId) -> StoreFuture<'_, Job> {
        self.inner.get(id)
    }

    fn resolve(&self, id_or_prefix: &str) -> StoreFuture<'_, JobId> {
        self.inner.resolve(id_or_prefix)
    }
    fn list(&self, filter: JobFilter) -> StoreFuture<'_, Vec<Job>> {
        self.inner.list(filter)
    }
    fn set_priority(
        &self,
        id: JobId,
        priority: storyteller_engine::Priority,
    ) -> StoreFuture<'_, Job> {
        self.inner.set_priority(id, priority)
    }
    fn search(&self, query: StorySearch) -> StoreFuture<'_, Vec<Job>> {
        self.inner.search(query)
    }
    fn stats(&self) -> StoreFuture<'_, QueueStats> {
        self.inner.stats()
    }
    fn next_ready_in(&self) -> StoreFuture<'_, Option<Duration>> {
        self.inner.next_ready_in()
    }
}

/// A [`Scripted`] storyteller under another name, with the capacity its service takes: for
/// tests of several storytellers side by side.
pub struct Named {
    pub name: &'static str,
    pub capacity: storyteller_engine::storyteller::Capacity,
    pub inner: Arc<Scripted>,
}

impl Named {
    pub fn new(
        name: &'static str,
        capacity: storyteller_engine::storyteller::Capacity,
        inner: Arc<Scripted>,
    ) -> Arc<Self> {
        Arc::new(Self {
            name,
            capacity,
            inner,
        })
    }
}

impl Storyteller for Named {
    fn name(&self) -> &str {
        self.name
    }
    fn default_model(&self) -> &str {
        "test-model"
    }
    fn presets(&self) -> &[&'static str] {
        &["narrative"]
    }
    fn capacity(&self) -> storyteller_engine::storyteller::Capacity {
        self.capacity
    }
    fn tell<'a>(
        &'a self,
        request: &'a StoryRequest,
        sink: &'a mut StorySink,
    ) -> BoxFuture<'a, Result<Usage, StoryError>> {
        self.inner.tell(request, sink)
    }
}

/// A pool over `store` with these storytellers.
pub fn pool_of(
    store: &SqliteStore,
    storytellers: Vec<Arc<dyn Storyteller>>,
    config: PoolConfig,
) -> Pool {
    let mut registry = StorytellerRegistry::new();
    for storyteller in storytellers {
        registry.register(storyteller);
    }
    pool_over(store, registry, config)
}

/// A pool over `store` with `registry`, reading the store's clock.
fn pool_over(store: &SqliteStore, registry: StorytellerRegistry, config: PoolConfig) -> Pool {
    Pool::new(
        Arc::new(store.clone()),
        registry,
        store.bus().clone(),
        store.clock(),
        config,
    )
    .unwrap()
}
