//! [`Engine`]: the one facade every front end calls — the `storyteller` command and the desktop
//! window alike. It owns the store, the event bus, the pool, the storytellers and the settings,
//! and offers the product's operations in the [wire](crate::wire) shape, so a front end only
//! parses, converts and prints.
//!
//! | operation | what it does |
//! |---|---|
//! | [`Engine::add`] | files and folders → jobs, one report line per path (queued, cached, already added, refused, skipped) |
//! | [`Engine::run`] / [`Engine::stop`] | work the queue here until told to stop (or until it is empty) |
//! | [`Engine::set_concurrency`] | jobs run at once, live |
//! | [`Engine::pause`] / [`Engine::resume`] | stop and start claiming |
//! | [`Engine::cancel`] | a queued or running job; one running here stops at once |
//! | [`Engine::retry`] / [`Engine::retry_failed`] | queue dead or cancelled jobs again |
//! | [`Engine::remove`] / [`Engine::clear_finished`] | delete jobs and the thumbnails no job shows any more |
//! | [`Engine::get`] / [`Engine::list`] / [`Engine::stats`] | read the queue (keyset pages) |
//! | [`Engine::wait_for`] | until a set of jobs has finished, the queue pauses, or a cancel fires |
//! | [`Engine::set_priority`] / [`Engine::retell`] | reorder a job; tell a video again with another preset |
//! | [`Engine::search`] | the history: stories and file names, as one types |
//! | [`Engine::export`] / [`Engine::export_to`] / [`Engine::export_text`] | every story at once, as Markdown, JSON, text, Word or PDF |
//! | [`Engine::video_path`] | where a job's video is, checked (to open it or show it) |
//! | [`Engine::settings`] / [`Engine::update_settings`] / [`Engine::storytellers`] | what new jobs get |
//! | [`Engine::subscribe`] | the event stream, this process's changes and other processes' alike |
//!
//! Validation lives here: an unknown storyteller, preset or model is refused before anything
//! is hashed or stored. Ids may be given whole, as any unique prefix, or as the short id (the
//! last 8 digits; any unique ending works).

use crate::clock::{Clock, SystemClock};
use crate::config::{self, ConfigEntry, ServiceConfig};
use crate::error::{EngineError, Result};
use crate::event::{Event, EventBus, Subscription};
use crate::export::{self, ExportFormat};
use crate::home::Home;
use crate::intake::{self, IntakeOptions};
use crate::job::{Job, JobId, JobState, Priority, StorySpec, Style};
use crate::media;
use crate::pool::{Pool, PoolConfig, RunUntil};
use crate::pricing::{PriceTable, SpendingCap};
use crate::secrets::{self, ApiKey, KeySource, KeyStatusView};
use crate::settings::{self, Settings};
use crate::store::{
    Enqueued, FileKey, Follower, ForeignChanges, JobFilter, JobStore, SourceKey, SqliteStore,
    StorySearch,
};
use crate::storyteller::gemini::{self, GeminiStoryteller};
use crate::storyteller::offline::OfflineStoryteller;
use crate::storyteller::ollama::OllamaStoryteller;
use crate::storyteller::openai::{self, OpenAiStoryteller};
use crate::storyteller::{StoryError, Storyteller, StorytellerRegistry};
use crate::wire::{
    display_path, AddEntry, AddOptions, AddOutcome, AddProgress, AddReport, DoctorCheck,
    DoctorReport, EstimateReport, ExportQuery, JobPage, JobView, ListQuery, QueueStats, SearchHit,
    SearchQuery, StorytellerInfo, WaitOutcome,
};

/// Search hits when a query does not say how many: a screenful and more.
const DEFAULT_SEARCH_HITS: u32 = 50;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio_util::sync::CancellationToken;

mod watching;
pub use watching::SETTLE_KEY;

/// How to open an [`Engine`].
#[derive(Clone, Default)]
pub struct EngineOptions {
    /// The home folder (else `$STORYTELLER_HOME`, else the OS data folder).
    pub home: Option<PathBuf>,
    /// A queue shared by a team on PostgreSQL (`postgres://…`), instead of the home's own
    /// database (else `$STORYTELLER_QUEUE_URL`; see [`crate::store::open_queue`]).
    pub queue: Option<String>,
    /// Pool timings and retries; the concurrency comes from the settings unless
    /// [`EngineOptions::concurrency`] is given.
    pub pool: PoolConfig,
    /// Jobs run at once for this engine's life, instead of the settings' figure.
    pub concurrency: Option<u32>,
    /// The storytellers (tests and benchmarks bring their own); the built-in ones by default.
    pub storytellers: Option<StorytellerRegistry>,
    /// The clock (tests bring a [`TokioClock`](crate::clock::TokioClock) or a manual one).
    pub clock: Option<Arc<dyn Clock>>,
    /// Leave other processes' changes unheard (benchmarks of this process alone).
    pub ignore_other_processes: bool,
    /// How long a file in a watched folder must stay unchanged, instead of the settings'
    /// `watch.settle-seconds` (tests and benchmarks).
    pub settle_window: Option<std::time::Duration>,
}

/// The engine: cheap to clone, every clone the same engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    home: Home,
    store: Arc<dyn JobStore>,
    bus: EventBus,
    pool: Pool,
    storytellers: StorytellerRegistry,
    // Whether the storytellers are the built-in ones, built from the settings (and rebuilt
    // when they change), or ones brought by a test.
    builds_storytellers: bool,
    // The keys of the storytellers that take one, shared with them.
    keys: BTreeMap<&'static str, ApiKey>,
    // std Mutex: read and replaced whole, never held across an await.
    settings: Arc<Mutex<Settings>>,
    // Whether this engine was opened with a concurrency of its own, which settings saved
    // elsewhere leave as it is.
    concurrency_fixed: bool,
    // The run under way here, if any: `stop` cancels it.
    run_stop: Mutex<Option<CancellationToken>>,
    // The clock timed decisions read (the watchers' settling windows too).
    clock: Arc<dyn Clock>,
    // See `EngineOptions::settle_window`.
    settle_window: Option<std::time::Duration>,
    // The folders watched here, and what their watchers last said.
    watching: Mutex<watching::Watching>,
    watch_statuses: watching::Statuses,
    // Fired when the watched folders change, here or elsewhere.
    folders_changed: Arc<tokio::sync::Notify>,
    // Reads the others' changes for as long as the engine lives.
    _follower: Option<Follower>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("home", &self.inner.home.root())
            .field("pool", &self.inner.pool)
            .finish()
    }
}

impl Engine {
    /// Opens the engine on its home: creates the folders, opens (and migrates) the database,
    /// reads the settings and starts hearing other processes' changes.
    pub async fn open(options: EngineOptions) -> Result<Engine> {
        let explicit = options.home.clone();
        let home = tokio::task::spawn_blocking(move || Home::resolve(explicit.as_deref()))
            .await
            .map_err(|_| EngineError::StoreClosed)??;
        let clock = options
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(SystemClock));
        let bus = EventBus::new();
        let queue = options.queue.clone().or_else(|| {
            std::env::var(crate::store::QUEUE_URL_VAR)
                .ok()
                .filter(|url| !url.trim().is_empty())
        });
        let store: Arc<dyn JobStore> = match queue {
            Some(url) => crate::store::open_queue(&url, bus.clone()).await?,
            None => Arc::new(
                SqliteStore::open_with_clock(home.database(), bus.clone(), clock.clone()).await?,
            ),
        };
        let settings_path = home.settings();
        let settings = tokio::task::spawn_blocking(move || Settings::load(&settings_path))
            .await
            .map_err(|_| EngineError::StoreClosed)??;
        let mut keys = BTreeMap::new();
        let builds_storytellers = options.storytellers.is_none();
        let storytellers = options.storytellers.clone().unwrap_or_else(|| {
            for keyed in secrets::KEYED {
                keys.insert(keyed.storyteller, ApiKey::from_env_or_keychain(keyed));
            }
            let mut registry = StorytellerRegistry::new();
            registry.register(Arc::new(OfflineStoryteller::locating(home.thumbnails())));
            for teller in service_storytellers(&home, &keys, &settings) {
                registry.register(teller);
            }
            registry
        });
        let concurrency = match options.concurrency {
            Some(asked) => {
                settings::check_concurrency(asked)?;
                asked
            }
            // A settings file edited by hand must not lock the person out of the app that
            // would let them fix it.
            None if settings::check_concurrency(settings.concurrency).is_err() => {
                tracing::warn!(
                    concurrency = settings.concurrency,
                    "the settings' concurrency is out of range; using the default"
                );
                Settings::default().concurrency
            }
            None => settings.concurrency,
        };
        let pool = Pool::new(
            store.clone(),
            storytellers.clone(),
            bus.clone(),
            clock.clone(),
            PoolConfig {
                concurrency: concurrency as usize,
                ..options.pool.clone()
            },
        )?;
        pool.set_prices(PriceTable::default().with(&settings.prices));
        pool.set_spending_caps(spending_caps(&storytellers, &settings))
            .await?;
        let settings = Arc::new(Mutex::new(settings));
        pool.on_told(told_hook(settings.clone(), store.clone()));
        // Settings saved by another process are read again off the follower's thread: the
        // sink must not wait.
        let (settings_saved, settings_saved_rx) = tokio::sync::mpsc::unbounded_channel();
        let folders_changed = Arc::new(tokio::sync::Notify::new());
        let follower = if options.ignore_other_processes {
            None
        } else {
            let pool = pool.clone();
            let folders_changed = folders_changed.clone();
            let bus = bus.clone();
            let sink = Arc::new(move |changes: &ForeignChanges| {
                pool.foreign_change(changes);
                if changes.settings_changed {
                    let _ = settings_saved.send(());
                }
                if changes.watched_folders_changed {
                    folders_changed.notify_one();
                    bus.publish(Event::WatchedFoldersChanged);
                }
            });
            Some(store.follow_others(sink).await?)
        };
        let engine = Engine {
            inner: Arc::new(Inner {
                home,
                store,
                bus,
                pool,
                storytellers,
                builds_storytellers,
                keys,
                settings,
                concurrency_fixed: options.concurrency.is_some(),
                run_stop: Mutex::new(None),
                clock,
                settle_window: options.settle_window,
                watching: Mutex::new(watching::Watching::default()),
                watch_statuses: Arc::default(),
                folders_changed,
                _follower: follower,
            }),
        };
        tokio::spawn(follow_settings(
            Arc::downgrade(&engine.inner),
            settings_saved_rx,
        ));
        Ok(engine)
    }

    /// Where this engine keeps its state.
    pub fn home(&self) -> &Home {
        &self.inner.home
    }

    /// The store underneath (for tests and tools that need more than the facade offers).
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.inner.store
    }

    /// Every event from now on: this process's changes, and other processes' as they commit.
    pub fn subscribe(&self) -> Subscription {
        self.inner.bus.subscribe()
    }

    /// The storytellers this app has.
    pub fn storytellers(&self) -> Vec<StorytellerInfo> {
        self.inner
            .storytellers
            .names()
            .into_iter()
            .filter_map(|name| self.inner.storytellers.get(&name))
            .map(|teller| StorytellerInfo {
                name: teller.name().to_owned(),
                default_model: teller.default_model().to_owned(),
                models: teller.models(),
                presets: teller.presets().iter().map(|p| (*p).to_owned()).collect(),
            })
            .collect()
    }

    /// The settings now.
    pub fn settings(&self) -> Settings {
        self.inner
            .settings
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Checks and saves `settings`; the concurrency applies at once.
    pub async fn update_settings(&self, mut settings: Settings) -> Result<Settings> {
        settings.check()?;
        // The default language and length put one way, as an add's own are ("english" is
        // no wish).
        let style = Style::new(None, settings.words, settings.language.as_deref())
            .map_err(EngineError::InvalidArgument)?;
        settings.language = style.language;
        settings.words = style.words;
        // The defaults must name a storyteller, model and preset that exist.
        self.spec(&AddOptions::default(), &settings)?;
        let path = self.inner.home.settings();
        let saved = settings.clone();
        tokio::task::spawn_blocking(move || saved.save(&path))
            .await
            .map_err(|_| EngineError::StoreClosed)??;
        let before = match self.inner.settings.lock() {
            Ok(mut current) => std::mem::replace(&mut *current, settings.clone()).storytellers,
            Err(_) => BTreeMap::new(),
        };
        self.inner
            .pool
            .set_concurrency(settings.concurrency as usize);
        // The storytellers are built again only when their own keys changed: a rebuilt one
        // forgets what it learnt (the models found to take one image at a time).
        let rebuild = before != settings.storytellers;
        self.apply_storyteller_settings(&settings, rebuild).await?;
        self.inner.bus.publish(Event::SettingsChanged);
        // The file is saved whatever happens here: a note that does not reach the others
        // only means they apply it at their next start.
        if let Err(e) = self.inner.store.note_settings_changed().await {
            tracing::warn!(error = %e, "other processes were not told of the new settings");
        }
        Ok(settings)
    }

    /// Reads the settings file again after another process saved it, and puts what changed in
    /// force here as [`Engine::update_settings`] would (except a concurrency this engine was
    /// opened with). Whether anything changed.
    async fn reload_settings(&self) -> Result<bool> {
        let path = self.inner.home.settings();
        let loaded = tokio::task::spawn_blocking(move || Settings::load(&path))
            .await
            .map_err(|_| EngineError::StoreClosed)??;
        let before = match self.inner.settings.lock() {
            Ok(mut current) if *current != loaded => {
                std::mem::replace(&mut *current, loaded.clone()).storytellers
            }
            _ => return Ok(false),
        };
        if !self.inner.concurrency_fixed && settings::check_concurrency(loaded.concurrency).is_ok()
        {
            self.inner.pool.set_concurrency(loaded.concurrency as usize);
        }
        let rebuild = before != loaded.storytellers;
        self.apply_storyteller_settings(&loaded, rebuild).await?;
        self.inner.bus.publish(Event::SettingsChanged);
        Ok(true)
    }

    /// Builds the AI storytellers again from `settings` when `rebuild` (jobs under way finish
    /// with the ones they started with), and puts the prices and caps in force.
    async fn apply_storyteller_settings(&self, settings: &Settings, rebuild: bool) -> Result<()> {
        let inner = &self.inner;
        if rebuild && inner.builds_storytellers {
            for teller in service_storytellers(&inner.home, &inner.keys, settings) {
                inner.storytellers.replace(teller);
            }
        }
        inner
            .pool
            .set_prices(PriceTable::default().with(&settings.prices));
        inner
            .pool
            .set_spending_caps(spending_caps(&inner.storytellers, settings))
            .await?;
        inner.pool.wake();
        Ok(())
    }

    /// Every setting by key, with its value, default and where it comes from.
    pub fn config_list(&self) -> Vec<ConfigEntry> {
        config::list(&self.settings())
    }

    /// The setting `key`.
    pub fn config_get(&self, key: &str) -> Result<ConfigEntry> {
        config::entry(&self.settings(), key)
    }

    /// Sets `key` to `value` (`None`: back to its default), checked, saved and in force at
    /// once: a storyteller's address, model, pace and time limits apply from its next video,
    /// prices from the next attempt, and a cap at once (a storyteller paused by a cap it no
    /// longer reaches goes on).
    pub async fn config_set(&self, key: &str, value: Option<&str>) -> Result<ConfigEntry> {
        let next = config::set(&self.settings(), key, value)?;
        let saved = self.update_settings(next).await?;
        config::entry(&saved, key)
    }

    /// The storyteller, model and preset `options` ask for (the settings fill the gaps), or
    /// why they cannot be had.
    fn spec(&self, options: &AddOptions, settings: &Settings) -> Result<StorySpec> {
        let registry = &self.inner.storytellers;
        let name = options
            .storyteller
            .clone()
            .unwrap_or_else(|| settings.storyteller.clone());
        let teller = registry
            .get(&name)
            .ok_or_else(|| EngineError::UnknownStoryteller {
                name: name.clone(),
                available: registry.names().join(", "),
            })?;
        // The settings' model and preset belong to the settings' storyteller only.
        let from_settings = options.storyteller.is_none()
            || options.storyteller.as_deref() == Some(&settings.storyteller);
        let model = options
            .model
            .clone()
            .or_else(|| settings.model.clone().filter(|_| from_settings))
            .unwrap_or_else(|| teller.default_model().to_owned());
        if !teller.has_model(&model) {
            return Err(EngineError::UnknownModel {
                storyteller: name,
                model,
                available: teller.models().join(", "),
            });
        }
        let presets = teller.presets();
        let preset = options
            .preset
            .clone()
            .or_else(|| settings.preset.clone().filter(|_| from_settings))
            .unwrap_or_else(|| presets.first().copied().unwrap_or("default").to_owned());
        if !presets.contains(&preset.as_str()) {
            return Err(EngineError::UnknownPreset {
                storyteller: name,
                preset,
                available: presets.join(", "),
            });
        }
        let asked = Style::new(
            options.prompt.as_deref(),
            options.words,
            options.language.as_deref(),
        )
        .map_err(EngineError::InvalidArgument)?;
        if let Some(refused) = teller.refuses_style(&asked) {
            return Err(EngineError::InvalidArgument(refused));
        }
        // The settings' language and length fill what the add left open, for the storytellers
        // that can keep them: the offline one writes English at each preset's own length, and
        // a default chosen for the AI storytellers must not refuse its videos.
        let with_defaults = Style::new(
            options.prompt.as_deref(),
            options.words.or(settings.words),
            options.language.as_deref().or(settings.language.as_deref()),
        )
        .map_err(EngineError::InvalidArgument)?;
        let style = if teller.refuses_style(&with_defaults).is_none() {
            with_defaults
        } else {
            asked
        };
        Ok(StorySpec {
            storyteller: name,
            model,
            preset,
            style,
        })
    }

    /// Turns `paths` (files and folders, searched recursively) into jobs of one batch.
    ///
    /// A file that already has a queued, running or succeeded job for the same storyteller,
    /// model and preset, unchanged since (same path, size and modification time), gets no
    /// second job and is not hashed again, unless [`AddOptions::again`] asks for one.
    /// `on_progress` hears of each file hashed.
    pub async fn add(
        &self,
        paths: Vec<PathBuf>,
        options: AddOptions,
        on_progress: impl Fn(AddProgress) + Send + Sync + 'static,
    ) -> Result<AddReport> {
        let settings = self.settings();
        let spec = self.spec(&options, &settings)?;
        let (candidates, refused) = intake::collect_off_thread(paths).await;
        let mut entries: Vec<AddEntry> = Vec::new();

        // Files that already have their job are reported, not hashed again.
        let mut to_hash = candidates;
        if !options.again && !to_hash.is_empty() {
            let keyed_spec = spec.clone();
            let keyed: Vec<(PathBuf, Option<SourceKey>)> = tokio::task::spawn_blocking(move || {
                to_hash
                    .into_iter()
                    .map(|path| {
                        let key = intake::source_key(&path, &keyed_spec);
                        (path, key)
                    })
                    .collect()
            })
            .await
            .map_err(|_| EngineError::StoreClosed)?;
            let keys = keyed.iter().filter_map(|(_, key)| key.clone()).collect();
            // One answer per key, in order.
            let mut found = self.inner.store.find_existing(keys).await?.into_iter();
            to_hash = Vec::new();
            for (path, key) in keyed {
                let existing = key.and_then(|_| found.next().flatten());
                match existing {
                    Some(job) => entries.push(AddEntry {
                        path: display_path(&job.source),
                        outcome: AddOutcome::AlreadyAdded,
                        job: Some(JobView::from(&job)),
                        reason: None,
                    }),
                    None => to_hash.push(path),
                }
            }
        }

        // Hashes already known for these files as they are now (from another job for the
        // file, or kept by an add that was stopped before it queued anything) are not worked
        // out again.
        let to_hash_keys = to_hash.clone();
        let keyed: Vec<(PathBuf, FileKey)> = tokio::task::spawn_blocking(move || {
            to_hash_keys
                .into_iter()
                .filter_map(|path| intake::file_key(&path).map(|key| (path, key)))
                .collect()
        })
        .await
        .map_err(|_| EngineError::StoreClosed)?;
        // Sizes from the metadata alone (no reading): the bytes to hash, for the progress a
        // big folder shows.
        let total_bytes = keyed.iter().map(|(_, key)| key.size).sum::<u64>() as f64;
        let hashes = self
            .inner
            .store
            .known_hashes(keyed.iter().map(|(_, key)| key.clone()).collect())
            .await?;
        let known: HashMap<PathBuf, (FileKey, String)> = keyed
            .into_iter()
            .zip(hashes)
            .filter_map(|((path, key), hash)| Some((path, (key, hash?))))
            .collect();
        let reused_hashes = u32::try_from(known.len()).unwrap_or(u32::MAX);

        let total = u32::try_from(to_hash.len()).unwrap_or(u32::MAX);
        let progress = Arc::new(AtomicU32::new(0));
        let hashed_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // Each hash is kept as soon as it is done (in groups, by `keep_hashes`), so that an
        // add stopped half-way leaves no jobs but does not have to read those files again.
        let (finished, keeper) = keep_hashes(self.inner.store.clone());
        let intake = intake::hash_files(
            to_hash,
            known,
            IntakeOptions {
                spec,
                priority: options.priority.unwrap_or(settings.priority),
                no_cache: options.no_cache,
                again: options.again,
            },
            move |hashed| {
                if let Some((key, hash)) = hashed.fresh {
                    let _ = finished.send((key.clone(), hash.to_owned()));
                }
                let count = progress.fetch_add(1, Ordering::SeqCst) + 1;
                let done = hashed_bytes.fetch_add(hashed.size, Ordering::SeqCst) + hashed.size;
                on_progress(AddProgress {
                    hashed: count,
                    total,
                    hashed_bytes: done as f64,
                    total_bytes,
                });
            },
        )
        .await;
        // Every sender is gone with `hash_files`: the keeper writes what is left and ends.
        let _ = keeper.await;
        let hashed_sources: Vec<PathBuf> =
            intake.jobs.iter().map(|job| job.source.clone()).collect();

        let (batch_id, enqueued) = self.inner.store.enqueue(intake.jobs).await?;
        let mut any_added = false;
        for result in enqueued {
            let (outcome, job) = match result {
                Enqueued::Added(job) => {
                    any_added = true;
                    let outcome = if job.cached {
                        AddOutcome::Cached
                    } else {
                        AddOutcome::Queued
                    };
                    (outcome, job)
                }
                Enqueued::Existing(job) => (AddOutcome::AlreadyAdded, job),
            };
            entries.push(AddEntry {
                path: display_path(&job.source),
                outcome,
                job: Some(JobView::from(&job)),
                reason: None,
            });
        }
        entries.extend(
            refused
                .into_iter()
                .chain(intake.refused)
                .map(AddEntry::from),
        );
        if any_added {
            self.inner.pool.wake();
        }
        // Their jobs hold the hashes now. Losing this is harmless: a kept hash is only ever
        // used for the file unchanged.
        if let Err(error) = self.inner.store.forget_hashes(hashed_sources).await {
            tracing::debug!(%error, "could not drop the hashes kept during the add");
        }
        Ok(AddReport {
            batch_id: any_added.then_some(batch_id),
            entries,
            reused_hashes,
        })
    }

    /// Works the queue here until `shutdown` resolves, [`Engine::stop`] is called, or (with
    /// [`RunUntil::Empty`]) nothing is left to do. Running jobs are put back on the way out.
    /// Fails at once, naming what is missing, when a storyteller cannot work on this machine.
    pub async fn run(&self, until: RunUntil, shutdown: impl Future<Output = ()>) -> Result<()> {
        for name in self.inner.storytellers.names() {
            if let Some(teller) = self.inner.storytellers.get(&name) {
                if let Err(StoryError::Setup { message }) = teller.check_ready() {
                    return Err(EngineError::ToolMissing(message));
                }
            }
        }
        let stop = CancellationToken::new();
        if let Ok(mut current) = self.inner.run_stop.lock() {
            *current = Some(stop.clone());
        }
        let result = self
            .inner
            .pool
            .run(until, async move {
                tokio::select! {
                    _ = shutdown => {}
                    _ = stop.cancelled() => {}
                }
            })
            .await;
        if let Ok(mut current) = self.inner.run_stop.lock() {
            *current = None;
        }
        result
    }

    /// Ends the run under way here (running jobs go back to the queue).
    pub fn stop(&self) {
        if let Ok(current) = self.inner.run_stop.lock() {
            if let Some(stop) = current.as_ref() {
                stop.cancel();
            }
        }
    }

    /// Changes how many jobs run at once here, at once (not saved; see
    /// [`Engine::update_settings`]).
    pub fn set_concurrency(&self, n: u32) -> Result<()> {
        settings::check_concurrency(n)?;
        self.inner.pool.set_concurrency(n as usize);
        Ok(())
    }

    /// How many jobs are being told in this process now (to warn before quitting).
    pub fn running_here(&self) -> u32 {
        u32::try_from(self.inner.pool.running_here()).unwrap_or(u32::MAX)
    }

    /// Jobs run at once here.
    pub fn concurrency(&self) -> u32 {
        u32::try_from(self.inner.pool.concurrency()).unwrap_or(u32::MAX)
    }

    /// Stops claiming new jobs, with a reason people see; running ones finish.
    pub async fn pause(&self, reason: impl Into<String>) -> Result<()> {
        self.inner.pool.pause(reason).await
    }

    /// Claims jobs again, of every storyteller.
    pub async fn resume(&self) -> Result<()> {
        self.inner.pool.resume().await
    }

    /// Stops starting `storyteller`'s jobs, with a reason people see; the others go on.
    pub async fn pause_storyteller(
        &self,
        storyteller: &str,
        reason: impl Into<String>,
    ) -> Result<()> {
        self.check_storyteller(storyteller)?;
        self.inner
            .store
            .set_storyteller_paused(
                storyteller.to_owned(),
                Some(crate::store::StorytellerPause {
                    kind: crate::wire::PauseKind::Person,
                    reason: reason.into(),
                    until_ms: None,
                }),
            )
            .await
    }

    /// Starts `storyteller`'s jobs again (after its key or model was fixed, or early).
    pub async fn resume_storyteller(&self, storyteller: &str) -> Result<()> {
        self.check_storyteller(storyteller)?;
        self.inner
            .store
            .set_storyteller_paused(storyteller.to_owned(), None)
            .await?;
        self.inner.pool.wake();
        Ok(())
    }

    /// Checks what the app needs: ffmpeg, the database, and each storyteller with the model it
    /// would use (reachable, key taken, model there), all at once, each within 15 s. Nothing
    /// is told and no token spent.
    pub async fn doctor(&self) -> Result<DoctorReport> {
        let mut checks = Vec::new();
        checks.push(match media::Media::locate(self.inner.home.thumbnails()) {
            Ok(found) => DoctorCheck {
                subject: "ffmpeg".into(),
                ok: true,
                message: format!(
                    "{} and {}",
                    found.ffmpeg().display(),
                    found.ffprobe().display()
                ),
                model: None,
                needed: true,
            },
            Err(e) => DoctorCheck {
                subject: "ffmpeg".into(),
                ok: false,
                message: e.to_string(),
                model: None,
                needed: true,
            },
        });
        checks.push(match self.inner.store.stats().await {
            Ok(stats) => DoctorCheck {
                subject: "database".into(),
                ok: true,
                message: format!("{} ({} jobs)", self.inner.store.place(), stats.total()),
                model: None,
                needed: true,
            },
            Err(e) => DoctorCheck {
                subject: "database".into(),
                ok: false,
                message: e.to_string(),
                model: None,
                needed: true,
            },
        });
        let mut tasks = tokio::task::JoinSet::new();
        for (index, name) in self.inner.storytellers.names().into_iter().enumerate() {
            let engine = self.clone();
            tasks.spawn(async move { (index, engine.check_storyteller_now(&name).await) });
        }
        let mut tellers = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, Ok(check))) = joined {
                tellers.push((index, check));
            }
        }
        tellers.sort_by_key(|(index, _)| *index);
        checks.extend(tellers.into_iter().map(|(_, check)| check));
        Ok(DoctorReport {
            ready: checks.iter().all(|c| c.ok || !c.needed),
            checks,
        })
    }

    /// Checks `storyteller` now, with the model new jobs would give it (the window's Test
    /// button): reachable, key taken, model there.
    pub async fn check_storyteller_now(&self, storyteller: &str) -> Result<DoctorCheck> {
        self.check_storyteller(storyteller)?;
        let Some(teller) = self.inner.storytellers.get(storyteller) else {
            return Err(EngineError::UnknownStoryteller {
                name: storyteller.to_owned(),
                available: self.inner.storytellers.names().join(", "),
            });
        };
        let settings = self.settings();
        let model = settings
            .model
            .clone()
            .filter(|_| settings.storyteller == storyteller)
            .unwrap_or_else(|| teller.default_model().to_owned());
        let found = tokio::time::timeout(std::time::Duration::from_secs(15), teller.check(&model))
            .await
            .unwrap_or_else(|_| {
                Err(StoryError::transient(format!(
                    "{storyteller} did not answer within 15 s"
                )))
            });
        Ok(DoctorCheck {
            subject: storyteller.to_owned(),
            ok: found.is_ok(),
            message: match found {
                Ok(words) => words,
                Err(error) => error.to_string(),
            },
            model: Some(model),
            needed: settings.storyteller == storyteller,
        })
    }

    /// What telling `paths` (files or folders) with `options` would cost and take, worked out
    /// before anything is queued or sent.
    pub async fn estimate(
        &self,
        paths: Vec<PathBuf>,
        options: AddOptions,
    ) -> Result<EstimateReport> {
        let settings = self.settings();
        let spec = self.spec(&options, &settings)?;
        let teller = self
            .inner
            .storytellers
            .get(&spec.storyteller)
            .ok_or_else(|| EngineError::UnknownStoryteller {
                name: spec.storyteller.clone(),
                available: self.inner.storytellers.names().join(", "),
            })?;
        let media = media::Media::locate(self.inner.home.thumbnails())
            .map_err(|e| EngineError::ToolMissing(e.to_string()))?;
        let (videos, refused) = intake::collect_off_thread(paths).await;
        crate::estimate::estimate(
            crate::estimate::EstimateInputs {
                store: self.inner.store.as_ref(),
                teller,
                spec,
                prices: self.inner.pool.prices(),
                media,
                concurrency: self.inner.pool.concurrency(),
            },
            videos,
            refused,
        )
        .await
    }

    /// Keeps `key` for `storyteller` in the OS keychain and uses it from its next request on,
    /// without a restart; a storyteller paused because its key was refused starts again. Its
    /// environment variable, when set, still comes first.
    pub async fn set_api_key(&self, storyteller: &str, key: &str) -> Result<KeyStatusView> {
        let (keyed, cell) = self.keyed(storyteller)?;
        let key = secrets::check_key(key).map_err(EngineError::InvalidArgument)?;
        let kept = key.clone();
        let name = keyed.storyteller;
        secrets::off_thread(move || secrets::keychain_set(name, &kept))
            .await
            .map_err(|e| keychain_error(keyed, &e, "kept"))?;
        if secrets::env_key(keyed.env_var).is_none() {
            cell.set(Some(key));
        }
        tracing::info!(storyteller, "API key kept in the keychain");
        let paused_for_key = self
            .inner
            .store
            .stats()
            .await?
            .paused_storytellers
            .iter()
            .any(|p| p.storyteller == storyteller && p.kind == crate::wire::PauseKind::Auth);
        if paused_for_key {
            self.resume_storyteller(storyteller).await?;
        }
        self.api_key_status(storyteller).await
    }

    /// Forgets the key kept for `storyteller` in the keychain (its environment variable, if
    /// set, still counts).
    pub async fn forget_api_key(&self, storyteller: &str) -> Result<KeyStatusView> {
        let (keyed, cell) = self.keyed(storyteller)?;
        let name = keyed.storyteller;
        secrets::off_thread(move || secrets::keychain_delete(name))
            .await
            .map_err(|e| keychain_error(keyed, &e, "forgotten"))?;
        cell.set(secrets::env_key(keyed.env_var));
        self.api_key_status(storyteller).await
    }

    /// Where `storyteller`'s key comes from and its last four characters: all a front end
    /// may know of it.
    pub async fn api_key_status(&self, storyteller: &str) -> Result<KeyStatusView> {
        let (keyed, cell) = self.keyed(storyteller)?;
        let name = keyed.storyteller;
        let keychain = secrets::off_thread(move || secrets::keychain_get(name)).await;
        let key = cell.current().await;
        let source = if secrets::env_key(keyed.env_var).is_some() {
            KeySource::Environment
        } else if key.is_some() {
            KeySource::Keychain
        } else {
            KeySource::None
        };
        Ok(KeyStatusView {
            storyteller: storyteller.to_owned(),
            source,
            env_var: keyed.env_var.to_owned(),
            masked: key.as_deref().map(secrets::mask),
            keychain_available: keychain.is_ok(),
        })
    }

    /// [`Engine::api_key_status`] of every storyteller that takes a key.
    pub async fn api_keys(&self) -> Result<Vec<KeyStatusView>> {
        let mut statuses = Vec::new();
        for name in self.inner.keys.keys() {
            statuses.push(self.api_key_status(name).await?);
        }
        Ok(statuses)
    }

    fn keyed(&self, storyteller: &str) -> Result<(secrets::KeyedStoryteller, ApiKey)> {
        self.check_storyteller(storyteller)?;
        match (
            secrets::keyed(storyteller),
            self.inner.keys.get(storyteller),
        ) {
            (Some(keyed), Some(cell)) => Ok((keyed, cell.clone())),
            _ => Err(EngineError::InvalidArgument(format!(
                "the {storyteller} storyteller takes no API key (those that do: {})",
                self.inner
                    .keys
                    .keys()
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    fn check_storyteller(&self, name: &str) -> Result<()> {
        if self.inner.storytellers.get(name).is_some() {
            return Ok(());
        }
        Err(EngineError::UnknownStoryteller {
            name: name.to_owned(),
            available: self.inner.storytellers.names().join(", "),
        })
    }

    async fn resolve(&self, id: &str) -> Result<Job> {
        let id = self.inner.store.resolve(id).await?;
        self.inner.store.get(id).await
    }

    /// Cancels a queued or running job; one running in this process stops at once.
    pub async fn cancel(&self, id: &str) -> Result<JobView> {
        let job = self.resolve(id).await?;
        Ok(JobView::from(self.inner.pool.cancel(job.id).await?))
    }

    /// Queues a dead or cancelled job again.
    pub async fn retry(&self, id: &str) -> Result<JobView> {
        let job = self.resolve(id).await?;
        let job = self.inner.store.retry(job.id).await?;
        self.inner.pool.wake();
        Ok(JobView::from(job))
    }

    /// Queues every dead job again; the jobs queued.
    pub async fn retry_failed(&self) -> Result<Vec<JobView>> {
        let jobs = self.inner.store.retry_failed().await?;
        self.inner.pool.wake();
        Ok(jobs.iter().map(JobView::from).collect())
    }

    /// Gives a job another priority: a queued one takes its turn in the new class.
    pub async fn set_priority(&self, id: &str, priority: Priority) -> Result<JobView> {
        let job = self.resolve(id).await?;
        let job = self.inner.store.set_priority(job.id, priority).await?;
        self.inner.pool.wake();
        Ok(JobView::from(job))
    }

    /// Tells a job's video again as a new job, with `preset` (and the same storyteller and
    /// model); the job and its story stay as they are. A story already told with that preset
    /// for the same content comes from the cache, as for any add.
    pub async fn retell(&self, id: &str, preset: &str) -> Result<AddReport> {
        let job = self.resolve(id).await?;
        let options = AddOptions {
            storyteller: Some(job.storyteller.clone()),
            model: Some(job.model.clone()),
            preset: Some(preset.to_owned()),
            prompt: job.style.prompt.clone(),
            words: job.style.words,
            language: job.style.language.clone(),
            priority: Some(job.priority),
            no_cache: false,
            again: true,
        };
        self.add(vec![job.source], options, |_| {}).await
    }

    /// Where a job's video is, checked to be there still (to open it or show it in its folder).
    pub async fn video_path(&self, id: &str) -> Result<PathBuf> {
        let job = self.resolve(id).await?;
        let source = job.source.clone();
        let exists = tokio::task::spawn_blocking(move || source.try_exists())
            .await
            .map_err(|_| EngineError::StoreClosed)?;
        match exists {
            Ok(true) => Ok(job.source),
            Ok(false) => Err(EngineError::Io {
                path: job.source,
                message: "the video is no longer there (moved, renamed or deleted)".into(),
            }),
            Err(e) => Err(EngineError::io(&job.source, &e)),
        }
    }

    /// Deletes a job that is not running, and the thumbnails no job shows any more.
    pub async fn remove(&self, id: &str) -> Result<JobView> {
        let job = self.resolve(id).await?;
        let removed = self.inner.store.delete(job.id).await?;
        media::remove_thumbnails(self.inner.home.thumbnails(), removed.orphaned_hashes).await;
        Ok(JobView::from(job))
    }

    /// Deletes every finished job (and thumbnails no job shows); how many.
    pub async fn clear_finished(&self) -> Result<u32> {
        let removed = self.inner.store.clear_finished().await?;
        media::remove_thumbnails(self.inner.home.thumbnails(), removed.orphaned_hashes).await;
        Ok(crate::wire::saturate(removed.jobs))
    }

    /// One job, by id, unique prefix or short id.
    pub async fn get(&self, id: &str) -> Result<JobView> {
        self.resolve(id).await.map(JobView::from)
    }

    /// One page of jobs.
    pub async fn list(&self, query: ListQuery) -> Result<JobPage> {
        let limit = query.limit.map(u64::from);
        let jobs = self
            .inner
            .store
            .list(JobFilter {
                state: query.state,
                batch: query.batch_id,
                storyteller: query.storyteller,
                ids: None,
                order: query.order,
                after: query.after,
                // One more than asked tells whether there is another page.
                limit: limit.map(|n| n + 1),
            })
            .await?;
        let mut views: Vec<JobView> = jobs.iter().map(JobView::from).collect();
        if query.without_stories {
            for view in &mut views {
                view.story = None;
            }
        }
        let next = match limit {
            Some(n) if views.len() as u64 > n => {
                views.truncate(n as usize);
                views.last().map(|j| j.id)
            }
            _ => None,
        };
        Ok(JobPage { jobs: views, next })
    }

    /// The stories (and file names) that hold every word of `query.text`, best matches first,
    /// each with a line of its story around what matched. Nothing for a query with no words.
    pub async fn search(&self, query: SearchQuery) -> Result<Vec<SearchHit>> {
        let words = crate::search::words(&query.text);
        let limit = query.limit.unwrap_or(DEFAULT_SEARCH_HITS);
        let jobs = self
            .inner
            .store
            .search(StorySearch {
                words: words.clone(),
                limit: u64::from(limit),
            })
            .await?;
        Ok(jobs
            .iter()
            .map(|job| {
                let snippet = crate::search::snippet(job.story.as_deref().unwrap_or(""), &words);
                let mut view = JobView::from(job);
                view.story = None;
                SearchHit { job: view, snippet }
            })
            .collect())
    }

    /// Every succeeded story `query` names as one Markdown text, each under its file name as a
    /// heading (what "Copy all" puts on the clipboard): (the text, how many stories).
    pub async fn export_text(&self, query: ExportQuery) -> Result<(String, u32)> {
        let (markdown, count) = self.export(ExportFormat::Markdown, query).await?;
        let text = String::from_utf8(markdown)
            .map_err(|e| EngineError::ExportFailed(format!("the Markdown is not text: {e}")))?;
        Ok((text, count))
    }

    /// These jobs as they are now, in the order they were added (unknown ids are left out).
    pub async fn jobs(&self, ids: &[JobId]) -> Result<Vec<JobView>> {
        let jobs = self
            .inner
            .store
            .list(JobFilter {
                ids: Some(ids.to_vec()),
                ..JobFilter::default()
            })
            .await?;
        Ok(jobs.iter().map(JobView::from).collect())
    }

    /// Counts per state, cache figures, pause reason.
    pub async fn stats(&self) -> Result<QueueStats> {
        self.inner.store.stats().await
    }

    /// How many of the running jobs were left by a runner that has stopped (killed, a power
    /// cut): nobody is telling them, and they go back to the queue when a runner starts.
    pub async fn left_by_stopped_runners(&self) -> Result<u32> {
        self.inner.pool.left_by_stopped_runners().await
    }

    /// The workers alive on this queue (this process's and every other's), each with the jobs
    /// it is telling, in owner order.
    pub async fn workers(&self) -> Result<Vec<crate::wire::WorkerView>> {
        let live = self.inner.store.workers().await?;
        let ids: Vec<JobId> = live.iter().flat_map(|w| w.running.clone()).collect();
        let mut jobs: std::collections::HashMap<JobId, Job> = if ids.is_empty() {
            Default::default()
        } else {
            self.inner
                .store
                .list(crate::store::JobFilter {
                    ids: Some(ids),
                    ..Default::default()
                })
                .await?
                .into_iter()
                .map(|job| (job.id, job))
                .collect()
        };
        let here = self.inner.pool.owner().to_owned();
        Ok(live
            .into_iter()
            .map(|worker| crate::wire::WorkerView {
                here: worker.owner == here,
                running: worker
                    .running
                    .iter()
                    .filter_map(|id| jobs.remove(id))
                    .map(JobView::from)
                    .collect(),
                machine: worker.machine,
                pid: worker.pid,
                started_at: worker.started_at_ms.map(crate::job::iso8601),
                owner: worker.owner,
            })
            .collect())
    }

    /// Waits until every job in `ids` has finished (or is gone), the queue pauses (nothing more
    /// would run), or `interrupt` resolves — whichever comes first. Changes made by other
    /// processes count as well as this one's.
    pub async fn wait_for(
        &self,
        ids: &[JobId],
        interrupt: impl Future<Output = ()>,
    ) -> Result<WaitOutcome> {
        // Subscribed before reading, so nothing that happens in between is missed.
        let mut events = self.subscribe();
        let mut pending = self.unfinished(ids).await?;
        if pending.is_empty() {
            return Ok(WaitOutcome::Finished);
        }
        if let Some(reason) = self.stats().await?.paused {
            return Ok(WaitOutcome::Paused { reason });
        }
        if let Some(reason) = self.held_by_paused_storytellers(&pending).await? {
            return Ok(WaitOutcome::StorytellerPaused { reason });
        }
        let mut storyteller_paused = false;
        tokio::pin!(interrupt);
        use crate::event::Event;
        while !pending.is_empty() {
            let envelope = tokio::select! {
                _ = &mut interrupt => return Ok(WaitOutcome::Interrupted),
                envelope = events.recv() => envelope.ok_or(EngineError::StoreClosed)?,
            };
            match envelope.event {
                Event::JobFinished { job_id, .. } => {
                    pending.remove(&job_id);
                }
                Event::JobsRemoved { job_ids } => {
                    for id in job_ids {
                        pending.remove(&id);
                    }
                }
                Event::QueuePaused { reason } => return Ok(WaitOutcome::Paused { reason }),
                // A storyteller pauses while its job is still running; the job goes back to
                // the queue just after. Either may come last.
                Event::StorytellerPaused { .. } => {
                    storyteller_paused = true;
                    if let Some(reason) = self.held_by_paused_storytellers(&pending).await? {
                        return Ok(WaitOutcome::StorytellerPaused { reason });
                    }
                }
                Event::JobUpdated {
                    job_id,
                    state: JobState::Queued,
                    ..
                } if storyteller_paused && pending.contains(&job_id) => {
                    if let Some(reason) = self.held_by_paused_storytellers(&pending).await? {
                        return Ok(WaitOutcome::StorytellerPaused { reason });
                    }
                }
                Event::Resync { .. } => {
                    let ids: Vec<JobId> = pending.iter().copied().collect();
                    pending = self.unfinished(&ids).await?;
                }
                _ => {}
            }
        }
        Ok(WaitOutcome::Finished)
    }

    /// When every job in `pending` is of a paused storyteller, what their pauses say: nothing
    /// will start for them until the person acts or the pause's time comes.
    async fn held_by_paused_storytellers(
        &self,
        pending: &HashSet<JobId>,
    ) -> Result<Option<String>> {
        let pauses = self.stats().await?.paused_storytellers;
        if pauses.is_empty() || pending.is_empty() {
            return Ok(None);
        }
        let ids: Vec<JobId> = pending.iter().copied().collect();
        let jobs = self.jobs(&ids).await?;
        let mut reasons: Vec<String> = Vec::new();
        for job in jobs.iter().filter(|job| !job.state.is_finished()) {
            if job.state == JobState::Running {
                return Ok(None);
            }
            let Some(pause) = pauses.iter().find(|p| p.storyteller == job.storyteller) else {
                return Ok(None);
            };
            let reason = format!("{} is paused: {}", pause.storyteller, pause.reason);
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
        Ok((!reasons.is_empty()).then(|| reasons.join("; ")))
    }

    async fn unfinished(&self, ids: &[JobId]) -> Result<HashSet<JobId>> {
        Ok(self
            .jobs(ids)
            .await?
            .into_iter()
            .filter(|j| !j.state.is_finished())
            .map(|j| j.id)
            .collect())
    }

    async fn succeeded(&self, query: &ExportQuery) -> Result<Vec<Job>> {
        self.inner
            .store
            .list(JobFilter {
                state: Some(JobState::Succeeded),
                batch: query.batch_id,
                ids: query.ids.clone(),
                ..JobFilter::default()
            })
            .await
    }

    /// The keyframe thumbnails of the video with `content_hash` (a [`JobView::content_hash`]),
    /// in the order of their times: only files inside the thumbnails folder are ever read, so a
    /// front end can show them without any access to the file system of its own.
    pub async fn thumbnail(&self, content_hash: &str, index: u32) -> Result<Option<Vec<u8>>> {
        let dir = media::thumbnails_dir(&self.inner.home.thumbnails(), content_hash);
        tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                return Ok(None);
            };
            let mut images: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| {
                    path.extension()
                        .is_some_and(|ext| ext.eq_ignore_ascii_case("jpg"))
                })
                .collect();
            images.sort();
            match images.get(index as usize) {
                Some(path) => std::fs::read(path)
                    .map(Some)
                    .map_err(|e| EngineError::io(path, &e)),
                None => Ok(None),
            }
        })
        .await
        .map_err(|_| EngineError::StoreClosed)?
    }

    /// Every succeeded story `query` names, rendered in `format`: (the document, how many
    /// stories). The text formats are UTF-8; Word and PDF are binary.
    pub async fn export(&self, format: ExportFormat, query: ExportQuery) -> Result<(Vec<u8>, u32)> {
        let jobs = self.succeeded(&query).await?;
        let count = crate::wire::saturate(jobs.len() as u64);
        // Laying out a long PDF takes a while, and it may read fonts from disk.
        let document = tokio::task::spawn_blocking(move || export::render(&jobs, format))
            .await
            .map_err(|_| EngineError::StoreClosed)??;
        Ok((document, count))
    }

    /// [`Engine::export`] into the file at `path`, written whole (a half-written export never
    /// replaces a good one); how many stories.
    pub async fn export_to(
        &self,
        path: &Path,
        format: ExportFormat,
        query: ExportQuery,
    ) -> Result<u32> {
        let (document, count) = self.export(format, query).await?;
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut partial = path.clone().into_os_string();
            partial.push(".part");
            let partial = PathBuf::from(partial);
            std::fs::write(&partial, document).map_err(|e| EngineError::io(&partial, &e))?;
            std::fs::rename(&partial, &path).map_err(|e| EngineError::io(&path, &e))
        })
        .await
        .map_err(|_| EngineError::StoreClosed)??;
        Ok(count)
    }
}

/// What to say when the keychain could not be used for `keyed`'s key.
fn keychain_error(
    keyed: secrets::KeyedStoryteller,
    error: &secrets::KeychainError,
    what: &str,
) -> EngineError {
    EngineError::Keychain(format!(
        "the {} key could not be {what}: {error}. Set {} in the environment instead (for \
         example in your shell profile or the service's unit file), or unlock or start a keyring \
         (GNOME Keyring, KWallet) and try again",
        keyed.storyteller, keyed.env_var
    ))
}

/// Applies the settings other processes save, for as long as the engine lives (the channel
/// closes with its follower).
async fn follow_settings(engine: Weak<Inner>, mut saved: tokio::sync::mpsc::UnboundedReceiver<()>) {
    while saved.recv().await.is_some() {
        // Several saves in a row are one read.
        while saved.try_recv().is_ok() {}
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let engine = Engine { inner };
        match engine.reload_settings().await {
            Ok(true) => tracing::info!("settings saved elsewhere are in force"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "settings saved elsewhere could not be applied"),
        }
    }
}

/// The AI storytellers as `settings` (and the environment) ask for them, sharing `keys`.
fn service_storytellers(
    home: &Home,
    keys: &BTreeMap<&'static str, ApiKey>,
    settings: &Settings,
) -> Vec<Arc<dyn Storyteller>> {
    let config = ServiceConfig::from_settings(settings);
    let key = |name: &str| keys.get(name).cloned().unwrap_or_default();
    vec![
        Arc::new(GeminiStoryteller::from_config(
            home.thumbnails(),
            key(gemini::NAME),
            &config,
        )),
        Arc::new(OllamaStoryteller::from_config(home.thumbnails(), &config)),
        Arc::new(OpenAiStoryteller::from_config(
            home.thumbnails(),
            key(openai::NAME),
            &config,
        )),
    ]
}

/// Each storyteller's spending caps in `settings` (and the environment).
fn spending_caps(
    storytellers: &StorytellerRegistry,
    settings: &Settings,
) -> BTreeMap<String, SpendingCap> {
    let config = ServiceConfig::from_settings(settings);
    storytellers
        .names()
        .into_iter()
        .map(|name| {
            let cap = SpendingCap {
                per_day_micro_usd: config.cap_micro_usd(&format!("{name}.day-cap")),
                per_month_micro_usd: config.cap_micro_usd(&format!("{name}.month-cap")),
            };
            (name, cap)
        })
        .filter(|(_, cap)| cap.is_set())
        .collect()
}

/// What happens once a job is told here: its story is written beside the video when the
/// settings ask for it. Off the worker (a slow or full disk must not hold the queue), and a
/// folder that cannot be written to is said in the log, not held against the video.
fn told_hook(settings: Arc<Mutex<Settings>>, store: Arc<dyn JobStore>) -> crate::pool::ToldHook {
    Arc::new(move |job: &Job| {
        // A watched folder's own choices say what is done with its videos' stories.
        if job.watched_folder.is_some() {
            tokio::spawn(watching::after_told_in_folder(store.clone(), job.clone()));
            return;
        }
        let Some((formats, skip_existing)) = settings
            .lock()
            .ok()
            .filter(|s| s.save_beside_video)
            .map(|s| (s.beside_formats.clone(), s.beside_skip_existing))
        else {
            return;
        };
        let job = job.clone();
        tokio::task::spawn_blocking(move || {
            match export::write_beside(&job, &formats, skip_existing) {
                Ok(written) => {
                    for path in written {
                        tracing::info!(path = %path.display(), "story written beside the video");
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "the story could not be written beside the video")
                }
            }
        });
    })
}

/// A channel for the hashes an add finishes, and the task that keeps them in the store as they
/// come, whatever has gathered since its last write in one write. The task ends once every
/// sender is dropped and what they sent is written.
fn keep_hashes(
    store: Arc<dyn JobStore>,
) -> (
    tokio::sync::mpsc::UnboundedSender<(FileKey, String)>,
    tokio::task::JoinHandle<()>,
) {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let keeper = tokio::spawn(async move {
        while let Some(first) = receiver.recv().await {
            let mut batch = vec![first];
            while let Ok(more) = receiver.try_recv() {
                batch.push(more);
            }
            if let Err(error) = store.remember_hashes(batch).await {
                // Only a later add's time is at stake; the add itself goes on and says
                // what is wrong with the database if it is.
                tracing::debug!(%error, "could not keep finished hashes");
            }
        }
    });
    (sender, keeper)
}
