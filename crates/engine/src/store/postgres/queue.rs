//! [`JobStore`] for [`PostgresStore`]: each call one short transaction.

use super::*;

/// Runs `$body` (an async block using `tx` and `outbox`) in a transaction of `$store`, commits,
/// and publishes what it changed.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident, $outbox:ident| $body:expr) => {{
        let store: &PostgresStore = $store;
        let mut client = store.client().await?;
        let $tx = client.transaction().await?;
        let mut outbox = Outbox::default();
        let $outbox = &mut outbox;
        let value = $body;
        store.log(&$tx, $outbox).await?;
        $tx.commit().await?;
        // Back to the pool before the counts are read (which takes a connection of its own).
        drop(client);
        store.publish(outbox).await;
        Ok(value)
    }};
}

impl JobStore for PostgresStore {
    fn enqueue(&self, jobs: Vec<NewJob>) -> StoreFuture<'_, (BatchId, Vec<Enqueued>)> {
        Box::pin(async move {
            if jobs.is_empty() {
                return Ok((BatchId::new(), Vec::new()));
            }
            in_transaction!(self, |tx, outbox| enqueue_batch(self, &tx, outbox, jobs)
                .await?)
        })
    }

    fn find_existing(&self, keys: Vec<SourceKey>) -> StoreFuture<'_, Vec<Option<Job>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let mut found = Vec::with_capacity(keys.len());
            for key in &keys {
                found.push(
                    existing_job(&client, &key.source, key.size, key.mtime_ms, &key.spec).await?,
                );
            }
            Ok(found)
        })
    }

    fn claim_within(
        &self,
        owner: &str,
        room: ClaimRoom,
        lease: Duration,
    ) -> StoreFuture<'_, Vec<Job>> {
        let owner = owner.to_owned();
        let lease_ms = duration_ms(lease);
        Box::pin(async move {
            let mut races = 0;
            loop {
                let attempt: Result<Vec<Job>> = async {
                    in_transaction!(self, |tx, outbox| claim_jobs(
                        &tx, outbox, &owner, &room, lease_ms
                    )
                    .await?)
                }
                .await;
                match attempt {
                    // Another machine took a twin of one of these at the same moment: the
                    // next try sees it running and passes the twin over.
                    Err(EngineError::Storage(ref e))
                        if e.fault == StorageFault::Other
                            && e.message.contains("jobs_one_running_twin")
                            && races < CLAIM_RACES =>
                    {
                        races += 1;
                    }
                    other => return other,
                }
            }
        })
    }

    fn heartbeat(&self, owner: &str, lease: Duration) -> StoreFuture<'_, Vec<JobId>> {
        let owner = owner.to_owned();
        let lease_ms = duration_ms(lease);
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "UPDATE jobs SET lease_expires = st_now_ms() + $2 \
                     WHERE lease_owner = $1 AND state = 'running' RETURNING id",
                    &[&owner, &lease_ms],
                )
                .await?;
            rows.iter().map(|row| Ok(JobId(row.try_get(0)?))).collect()
        })
    }

    fn known_hashes(&self, files: Vec<FileKey>) -> StoreFuture<'_, Vec<Option<String>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let mut known = Vec::with_capacity(files.len());
            for file in &files {
                let args: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [
                    &path_bytes(&file.source),
                    &clamp_i64(file.size),
                    &file.mtime_ms,
                ];
                let kept = client
                    .query_opt(
                        "SELECT content_hash FROM file_hashes \
                         WHERE source = $1 AND size = $2 AND mtime_ms = $3",
                        &args,
                    )
                    .await?;
                let hash = match kept {
                    Some(row) => Some(row.try_get(0)?),
                    None => client
                        .query_opt(
                            "SELECT content_hash FROM jobs \
                             WHERE source = $1 AND size = $2 AND mtime_ms = $3 LIMIT 1",
                            &args,
                        )
                        .await?
                        .map(|row| row.try_get(0))
                        .transpose()?,
                };
                known.push(hash);
            }
            Ok(known)
        })
    }

    fn remember_hashes(&self, hashes: Vec<(FileKey, String)>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if hashes.is_empty() {
                return Ok(());
            }
            let client = self.client().await?;
            for (file, hash) in &hashes {
                client
                    .execute(
                        "INSERT INTO file_hashes (source, size, mtime_ms, content_hash, hashed_at) \
                         VALUES ($1, $2, $3, $4, st_now_ms()) ON CONFLICT (source) DO UPDATE \
                         SET size = excluded.size, mtime_ms = excluded.mtime_ms, \
                         content_hash = excluded.content_hash, hashed_at = excluded.hashed_at",
                        &[
                            &path_bytes(&file.source),
                            &clamp_i64(file.size),
                            &file.mtime_ms,
                            hash,
                        ],
                    )
                    .await?;
            }
            Ok(())
        })
    }

    fn forget_hashes(&self, sources: Vec<PathBuf>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if sources.is_empty() {
                return Ok(());
            }
            let sources: Vec<Vec<u8>> = sources.iter().map(|s| path_bytes(s)).collect();
            self.client()
                .await?
                .execute(
                    "DELETE FROM file_hashes WHERE source = ANY($1)",
                    &[&sources],
                )
                .await?;
            Ok(())
        })
    }

    fn report(&self, id: JobId, owner: &str, stage: Stage, progress: f64) -> StoreFuture<'_, ()> {
        let owner = owner.to_owned();
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let changed = tx
                    .query_opt(
                        "UPDATE jobs SET stage = $3, progress = $4, updated_at = st_now_ms() \
                         FROM (SELECT stage AS before FROM jobs WHERE id = $1) AS old \
                         WHERE id = $1 AND lease_owner = $2 AND state = 'running' \
                         RETURNING old.before <> $3",
                        &[&id.0, &owner, &stage.as_str(), &progress],
                    )
                    .await?;
                // Other processes show the stage; progress alone is not worth a log row.
                if let Some(row) = changed {
                    if row.try_get::<_, bool>(0)? {
                        outbox.changes.push(("job", id.to_string()));
                    }
                }
            })
        })
    }

    fn save_checkpoint(
        &self,
        id: JobId,
        owner: &str,
        checkpoint: serde_json::Value,
    ) -> StoreFuture<'_, ()> {
        let owner = owner.to_owned();
        Box::pin(async move {
            self.client()
                .await?
                .execute(
                    "UPDATE jobs SET checkpoint = $3 \
                     WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                    &[&id.0, &owner, &checkpoint],
                )
                .await?;
            Ok(())
        })
    }

    fn update_source(
        &self,
        id: JobId,
        owner: &str,
        size: u64,
        mtime_ms: i64,
        content_hash: String,
    ) -> StoreFuture<'_, ()> {
        let owner = owner.to_owned();
        Box::pin(async move {
            let client = self.client().await?;
            let job = Self::load_job(&client, id)
                .await?
                .ok_or_else(|| EngineError::JobNotFound(id.to_string()))?;
            let cache_key = job.spec().cache_key(&content_hash);
            let updated = client
                .execute(
                    "UPDATE jobs SET size = $3, mtime_ms = $4, content_hash = $5, \
                     cache_key = $6, checkpoint = NULL, updated_at = st_now_ms() \
                     WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                    &[
                        &id.0,
                        &owner,
                        &clamp_i64(size),
                        &mtime_ms,
                        &content_hash,
                        &cache_key,
                    ],
                )
                .await?;
            if updated == 0 {
                return Err(EngineError::LeaseLost(id));
            }
            Ok(())
        })
    }

    fn finish(&self, id: JobId, owner: &str, outcome: Outcome) -> StoreFuture<'_, Job> {
        let owner = owner.to_owned();
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| finish_job(
                &tx, outbox, id, &owner, outcome
            )
            .await?)
        })
    }

    fn finish_and_claim(
        &self,
        id: JobId,
        owner: &str,
        outcome: Outcome,
        lease: Duration,
        room: ClaimRoom,
    ) -> StoreFuture<'_, (Job, Option<Job>)> {
        let owner = owner.to_owned();
        Box::pin(async move {
            // Two transactions: a claim that loses a race for a twin must not undo the finish.
            let done = self.finish(id, &owner, outcome).await?;
            let next = self
                .claim_within(&owner, ClaimRoom { max: 1, ..room }, lease)
                .await?;
            Ok((done, next.into_iter().next()))
        })
    }

    fn book_usage(&self, id: JobId, usage: Usage) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                book_usage(&tx, id, &usage).await?;
                let job = Self::load_job(&tx, id)
                    .await?
                    .ok_or_else(|| EngineError::JobNotFound(id.to_string()))?;
                outbox.changes.push(("job", id.to_string()));
                outbox.events.push(Event::JobSpent {
                    job_id: id,
                    usage: (&job.usage).into(),
                });
                job
            })
        })
    }

    fn spending(&self, from_day: String) -> StoreFuture<'_, Vec<DaySpending>> {
        Box::pin(async move {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT day, storyteller, attempts, input_tokens, output_tokens, \
                     cost_micro_usd, audio_input_tokens FROM spending WHERE day >= $1 \
                     ORDER BY day, storyteller",
                    &[&from_day],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    let n =
                        |i: usize| -> Result<u64> { Ok(row.try_get::<_, i64>(i)?.max(0) as u64) };
                    Ok(DaySpending {
                        day: row.try_get(0)?,
                        storyteller: row.try_get(1)?,
                        attempts: n(2)?,
                        usage: Usage {
                            input_tokens: n(3)?,
                            audio_input_tokens: n(6)?,
                            output_tokens: n(4)?,
                            cost_micro_usd: n(5)?,
                        },
                    })
                })
                .collect()
        })
    }

    fn set_storyteller_paused(
        &self,
        storyteller: String,
        pause: Option<StorytellerPause>,
    ) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                match pause {
                    Some(pause) => {
                        tx.execute(
                            "INSERT INTO storyteller_pauses \
                             (storyteller, kind, reason, until_ms, paused_at) \
                             VALUES ($1, $2, $3, $4, st_now_ms()) ON CONFLICT (storyteller) \
                             DO UPDATE SET kind = excluded.kind, reason = excluded.reason, \
                             until_ms = excluded.until_ms, paused_at = excluded.paused_at",
                            &[
                                &storyteller,
                                &pause.kind.as_str(),
                                &pause.reason,
                                &pause.until_ms,
                            ],
                        )
                        .await?;
                        let view = storyteller_pauses(&tx, true)
                            .await?
                            .into_iter()
                            .find(|p| p.storyteller == storyteller);
                        if let Some(view) = view {
                            outbox.events.push(Event::StorytellerPaused { pause: view });
                        }
                    }
                    None => {
                        let removed = tx
                            .execute(
                                "DELETE FROM storyteller_pauses WHERE storyteller = $1",
                                &[&storyteller],
                            )
                            .await?;
                        if removed > 0 {
                            outbox.events.push(Event::StorytellerResumed {
                                storyteller: storyteller.clone(),
                            });
                        }
                    }
                }
                outbox.changes.push(("storytellers", storyteller));
                outbox.counts = true;
            })
        })
    }

    fn register_worker(&self, owner: &str) -> StoreFuture<'_, WorkerRegistration> {
        let owner = owner.to_owned();
        Box::pin(async move {
            let facts = WorkerFacts {
                owner: owner.clone(),
                machine: self.inner.machine.clone(),
                pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
            };
            // The first session is opened here, so a registration that returns is alive; the
            // task keeps it (and opens it again after a lost connection).
            let (session, key) = WorkerSession::open(&self.inner.config, &facts, None).await?;
            let stop = tokio_util::sync::CancellationToken::new();
            let keeper = tokio::spawn(keep_alive(
                self.inner.config.clone(),
                facts,
                key,
                session,
                stop.clone(),
            ));
            Ok(WorkerRegistration::new(
                owner.clone(),
                WorkerKeeper {
                    owner,
                    store: self.clone(),
                    stop,
                    keeper: Some(keeper),
                },
            ))
        })
    }

    fn workers(&self) -> StoreFuture<'_, Vec<LiveWorker>> {
        Box::pin(async move {
            let rows = self
                .client()
                .await?
                .query(
                    &format!(
                        "SELECT w.owner, w.machine, w.pid, w.started_at, \
                         coalesce(array_agg(j.id ORDER BY j.seq) FILTER (WHERE j.id IS NOT NULL), '{{}}') \
                         FROM workers AS w \
                         LEFT JOIN jobs AS j ON j.state = 'running' AND j.lease_owner = w.owner \
                         WHERE {WORKER_ALIVE} \
                         GROUP BY w.owner, w.machine, w.pid, w.started_at ORDER BY w.owner"
                    ),
                    &[],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    let running: Vec<Uuid> = row.try_get(4)?;
                    Ok(LiveWorker {
                        owner: row.try_get(0)?,
                        machine: Some(row.try_get(1)?),
                        pid: u32::try_from(row.try_get::<_, i32>(2)?).ok(),
                        started_at_ms: Some(row.try_get(3)?),
                        running: running.into_iter().map(JobId).collect(),
                    })
                })
                .collect()
        })
    }

    fn reclaim(&self, max_attempts: u32) -> StoreFuture<'_, Vec<JobId>> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| reclaim_jobs(&tx, outbox, max_attempts)
                .await?)
        })
    }

    fn stranded_jobs(&self) -> StoreFuture<'_, u32> {
        Box::pin(async move {
            let client = self.client().await?;
            let gone = gone_workers(&client).await?;
            let row = client
                .query_one(
                    "SELECT count(*) FROM jobs WHERE state = 'running' \
                     AND (lease_owner IS NULL OR lease_owner = ANY($1))",
                    &[&gone],
                )
                .await?;
            Ok(u32::try_from(row.try_get::<_, i64>(0)?).unwrap_or(u32::MAX))
        })
    }

    fn cancel(&self, id: JobId) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let Some(from) = Self::load_job(&tx, id).await?.map(|j| j.state) else {
                    return Err(EngineError::JobNotFound(id.to_string()));
                };
                from.check_transition(JobState::Cancelled)?;
                let row = tx
                    .query_opt(
                        &format!(
                            "UPDATE jobs SET state = 'cancelled', stage = 'done', \
                             lease_owner = NULL, lease_expires = NULL, updated_at = st_now_ms(), \
                             finished_at = st_now_ms() WHERE id = $1 AND state = $2 \
                             RETURNING {JOB_COLUMNS}"
                        ),
                        &[&id.0, &from.as_str()],
                    )
                    .await?
                    .ok_or(EngineError::LeaseLost(id))?;
                let job = job_from_row(&row)?;
                outbox.job(&job);
                job
            })
        })
    }

    fn retry(&self, id: JobId) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let Some(from) = Self::load_job(&tx, id).await?.map(|j| j.state) else {
                    return Err(EngineError::JobNotFound(id.to_string()));
                };
                if !matches!(from, JobState::Dead | JobState::Cancelled) {
                    return Err(crate::job::IllegalTransition {
                        from,
                        to: JobState::Queued,
                    }
                    .into());
                }
                let row = tx
                    .query_opt(
                        &format!(
                            "UPDATE jobs SET state = 'queued', stage = 'waiting', progress = 0, \
                             attempts = 0, run_after = 0, story = NULL, search = NULL, \
                             finished_at = NULL, checkpoint = NULL, interruptions = 0, \
                             furthest_progress = 0, longest_interrupted_ms = 0, \
                             updated_at = st_now_ms() WHERE id = $1 AND state = $2 \
                             RETURNING {JOB_COLUMNS}"
                        ),
                        &[&id.0, &from.as_str()],
                    )
                    .await?
                    .ok_or(EngineError::LeaseLost(id))?;
                let job = job_from_row(&row)?;
                outbox.job(&job);
                job
            })
        })
    }

    fn retry_failed(&self) -> StoreFuture<'_, Vec<Job>> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let rows = tx
                    .query(
                        &format!(
                            "UPDATE jobs SET state = 'queued', stage = 'waiting', progress = 0, \
                             attempts = 0, run_after = 0, story = NULL, search = NULL, \
                             finished_at = NULL, checkpoint = NULL, interruptions = 0, \
                             furthest_progress = 0, longest_interrupted_ms = 0, \
                             updated_at = st_now_ms() WHERE state = 'dead' \
                             RETURNING {JOB_COLUMNS}"
                        ),
                        &[],
                    )
                    .await?;
                let jobs = jobs_from_rows(&rows)?;
                for job in &jobs {
                    outbox.job(job);
                }
                jobs
            })
        })
    }

    fn set_priority(&self, id: JobId, priority: Priority) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let rank = priority.rank() as i16;
                let front = fair_front(&tx, rank).await?;
                let row = tx
                    .query_opt(
                        &format!(
                            "UPDATE jobs SET priority = $2, \
                             fair_key = CASE WHEN state = 'queued' AND priority <> $2 \
                                 THEN $3 ELSE fair_key END, \
                             updated_at = st_now_ms() WHERE id = $1 RETURNING {JOB_COLUMNS}"
                        ),
                        &[&id.0, &rank, &front],
                    )
                    .await?
                    .ok_or_else(|| EngineError::JobNotFound(id.to_string()))?;
                let job = job_from_row(&row)?;
                outbox.changes.push(("job", id.to_string()));
                outbox.events.push(Event::PriorityChanged {
                    job_id: id,
                    priority,
                });
                job
            })
        })
    }

    fn delete(&self, id: JobId) -> StoreFuture<'_, Removed> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let gone = tx
                    .query_opt(
                        "DELETE FROM jobs WHERE id = $1 AND state <> 'running' \
                         RETURNING content_hash",
                        &[&id.0],
                    )
                    .await?;
                let Some(gone) = gone else {
                    return Err(match Self::load_job(&tx, id).await? {
                        Some(_) => EngineError::JobRunning(id),
                        None => EngineError::JobNotFound(id.to_string()),
                    });
                };
                let hash: String = gone.try_get(0)?;
                outbox.changes.push(("gone", id.to_string()));
                outbox.events.push(Event::JobsRemoved { job_ids: vec![id] });
                outbox.counts = true;
                Removed {
                    jobs: 1,
                    orphaned_hashes: orphans(&tx, vec![hash]).await?,
                }
            })
        })
    }

    fn clear_finished(&self) -> StoreFuture<'_, Removed> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let rows = tx
                    .query(
                        "DELETE FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') \
                         RETURNING id, content_hash",
                        &[],
                    )
                    .await?;
                let mut hashes = std::collections::BTreeSet::new();
                let mut job_ids = Vec::with_capacity(rows.len());
                for row in &rows {
                    let id = JobId(row.try_get(0)?);
                    outbox.changes.push(("gone", id.to_string()));
                    job_ids.push(id);
                    hashes.insert(row.try_get::<_, String>(1)?);
                }
                if !job_ids.is_empty() {
                    outbox.events.push(Event::JobsRemoved { job_ids });
                    outbox.counts = true;
                }
                Removed {
                    jobs: rows.len() as u64,
                    orphaned_hashes: orphans(&tx, hashes.into_iter().collect()).await?,
                }
            })
        })
    }

    fn set_paused(&self, reason: Option<String>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let was: Option<String> = tx
                    .query_opt("SELECT value FROM queue_settings WHERE key = 'paused'", &[])
                    .await?
                    .map(|row| row.try_get(0))
                    .transpose()?;
                match &reason {
                    Some(reason) => {
                        tx.execute(
                            "INSERT INTO queue_settings (key, value) VALUES ('paused', $1) \
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            &[reason],
                        )
                        .await?;
                        outbox.events.push(Event::QueuePaused {
                            reason: reason.clone(),
                        });
                    }
                    None => {
                        tx.execute("DELETE FROM queue_settings WHERE key = 'paused'", &[])
                            .await?;
                        if was.is_some() {
                            outbox.events.push(Event::QueueResumed);
                        }
                        // Resuming the queue is the person saying "go on": with everything.
                        let resumed = tx
                            .query("DELETE FROM storyteller_pauses RETURNING storyteller", &[])
                            .await?;
                        for row in resumed {
                            let storyteller: String = row.try_get(0)?;
                            outbox.changes.push(("storytellers", storyteller.clone()));
                            outbox
                                .events
                                .push(Event::StorytellerResumed { storyteller });
                            outbox.counts = true;
                        }
                    }
                }
                outbox.changes.push(("queue", String::new()));
                outbox.counts |= was != reason;
            })
        })
    }

    fn note_settings_changed(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let _ = &tx;
                outbox.changes.push(("settings", String::new()));
            })
        })
    }

    fn watched_folders(&self) -> StoreFuture<'_, Vec<WatchedFolder>> {
        Box::pin(async move {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT path, choices FROM watched_folders ORDER BY path",
                    &[],
                )
                .await?;
            let mut folders = Vec::with_capacity(rows.len());
            for row in &rows {
                let path = path_from_bytes(row.try_get::<_, &[u8]>(0)?);
                let choices: &str = row.try_get(1)?;
                match serde_json::from_str::<WatchedFolder>(choices) {
                    Ok(folder) => folders.push(WatchedFolder { path, ..folder }),
                    Err(e) => {
                        tracing::warn!(folder = %path.display(), error = %e, "a watched folder's choices cannot be read")
                    }
                }
            }
            Ok(folders)
        })
    }

    fn save_watched_folder(&self, folder: WatchedFolder) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let choices = serde_json::to_string(&folder).map_err(|e| {
                EngineError::InvalidArgument(format!("a watched folder's choices: {e}"))
            })?;
            in_transaction!(self, |tx, outbox| {
                tx.execute(
                    "INSERT INTO watched_folders (path, choices, added_at) \
                     VALUES ($1, $2, st_now_ms()) \
                     ON CONFLICT (path) DO UPDATE SET choices = excluded.choices",
                    &[&path_bytes(&folder.path), &choices],
                )
                .await?;
                outbox.changes.push(("folders", String::new()));
            })
        })
    }

    fn remove_watched_folder(&self, path: PathBuf) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let bytes = path_bytes(&path);
                tx.execute("DELETE FROM watched_sightings WHERE folder = $1", &[&bytes])
                    .await?;
                let removed = tx
                    .execute("DELETE FROM watched_folders WHERE path = $1", &[&bytes])
                    .await?;
                outbox.changes.push(("folders", String::new()));
                removed > 0
            })
        })
    }

    fn enqueue_watched(
        &self,
        folder: PathBuf,
        jobs: Vec<NewJob>,
    ) -> StoreFuture<'_, (BatchId, Vec<Option<Enqueued>>)> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let folder_bytes = path_bytes(&folder);
                let mut fresh = Vec::new();
                let mut is_fresh = Vec::with_capacity(jobs.len());
                for mut job in jobs {
                    let size = clamp_i64(job.size);
                    let source = path_bytes(&job.source);
                    // Two processes sighting one content at once: the primary key lets one
                    // in, the other waits for it and then finds the row there.
                    let new = tx
                        .execute(
                            "INSERT INTO watched_sightings \
                             (folder, content_hash, source, seen_at, size, mtime_ms) \
                             VALUES ($1, $2, $3, st_now_ms(), $4, $5) ON CONFLICT DO NOTHING",
                            &[
                                &folder_bytes,
                                &job.content_hash,
                                &source,
                                &size,
                                &job.mtime_ms,
                            ],
                        )
                        .await?
                        > 0;
                    if new {
                        job.watched_folder = Some(folder.clone());
                        fresh.push(job);
                    } else {
                        tx.execute(
                            "UPDATE watched_sightings SET source = $3, size = $4, mtime_ms = $5 \
                             WHERE folder = $1 AND content_hash = $2",
                            &[
                                &folder_bytes,
                                &job.content_hash,
                                &source,
                                &size,
                                &job.mtime_ms,
                            ],
                        )
                        .await?;
                    }
                    is_fresh.push(new);
                }
                let (batch, enqueued) = if fresh.is_empty() {
                    (BatchId::new(), Vec::new())
                } else {
                    enqueue_batch(self, &tx, outbox, fresh).await?
                };
                let mut enqueued = enqueued.into_iter();
                let results = is_fresh
                    .into_iter()
                    .map(|new| if new { enqueued.next() } else { None })
                    .collect();
                (batch, results)
            })
        })
    }

    fn sighted_files(&self, folder: PathBuf) -> StoreFuture<'_, Vec<FileKey>> {
        Box::pin(async move {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT source, size, mtime_ms FROM watched_sightings WHERE folder = $1",
                    &[&path_bytes(&folder)],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    Ok(FileKey {
                        source: path_from_bytes(row.try_get::<_, &[u8]>(0)?),
                        size: u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(u64::MAX),
                        mtime_ms: row.try_get(2)?,
                    })
                })
                .collect()
        })
    }

    fn report_watch_status(&self, path: PathBuf, status: String) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.client()
                .await?
                .execute(
                    "UPDATE watched_folders SET status = $2, status_at = st_now_ms() \
                     WHERE path = $1",
                    &[&path_bytes(&path), &status],
                )
                .await?;
            Ok(())
        })
    }

    fn watched_folder_reports(&self) -> StoreFuture<'_, Vec<WatchedFolderReport>> {
        Box::pin(async move {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT f.path, f.status, f.status_at, \
                     (SELECT count(*) FROM watched_sightings AS s WHERE s.folder = f.path), \
                     count(j.id) FILTER (WHERE j.state = 'queued'), \
                     count(j.id) FILTER (WHERE j.state = 'running'), \
                     count(j.id) FILTER (WHERE j.state = 'succeeded'), \
                     count(j.id) FILTER (WHERE j.state IN ('dead', 'cancelled')) \
                     FROM watched_folders AS f \
                     LEFT JOIN jobs AS j ON j.watched_folder = f.path \
                     GROUP BY f.path, f.status, f.status_at ORDER BY f.path",
                    &[],
                )
                .await?;
            let count = |row: &Row, i: usize| -> Result<u32> {
                Ok(u32::try_from(row.try_get::<_, i64>(i)?).unwrap_or(u32::MAX))
            };
            rows.iter()
                .map(|row| {
                    Ok(WatchedFolderReport {
                        path: path_from_bytes(row.try_get::<_, &[u8]>(0)?),
                        status: row.try_get(1)?,
                        status_at_ms: row.try_get(2)?,
                        found: count(row, 3)?,
                        queued: count(row, 4)?,
                        running: count(row, 5)?,
                        succeeded: count(row, 6)?,
                        failed: count(row, 7)?,
                    })
                })
                .collect()
        })
    }

    fn move_source(&self, id: JobId, source: PathBuf) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            in_transaction!(self, |tx, outbox| {
                let row = tx
                    .query_opt(
                        &format!(
                            "UPDATE jobs SET source = $2, updated_at = st_now_ms() WHERE id = $1 \
                             RETURNING {JOB_COLUMNS}"
                        ),
                        &[&id.0, &path_bytes(&source)],
                    )
                    .await?
                    .ok_or_else(|| EngineError::JobNotFound(id.to_string()))?;
                let job = job_from_row(&row)?;
                if job.story.is_some() {
                    index_story(&tx, &job).await?;
                }
                outbox.changes.push(("job", id.to_string()));
                outbox.events.push(Event::JobMoved {
                    job_id: id,
                    source: crate::wire::display_path(&job.source),
                });
                job
            })
        })
    }

    fn get(&self, id: JobId) -> StoreFuture<'_, Job> {
        Box::pin(async move {
            let client = self.client().await?;
            Self::load_job(&client, id)
                .await?
                .ok_or_else(|| EngineError::JobNotFound(id.to_string()))
        })
    }

    fn resolve(&self, id_or_prefix: &str) -> StoreFuture<'_, JobId> {
        let typed = id_or_prefix.to_owned();
        Box::pin(async move {
            let needle = typed.trim().to_ascii_lowercase();
            let client = self.client().await?;
            if let Ok(id) = needle.parse::<JobId>() {
                let known = client
                    .query_opt("SELECT 1 FROM jobs WHERE id = $1", &[&id.0])
                    .await?;
                return match known {
                    Some(_) => Ok(id),
                    None => Err(EngineError::JobNotFound(typed)),
                };
            }
            if needle.is_empty() || !needle.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                return Err(EngineError::JobNotFound(typed));
            }
            // A prefix, else a suffix (short ids are the random tail); only a person typing
            // an id asks this.
            let mut found = client
                .query(
                    "SELECT id FROM jobs WHERE id::text LIKE $1 || '%' LIMIT 2",
                    &[&needle],
                )
                .await?;
            if found.is_empty() {
                found = client
                    .query(
                        "SELECT id FROM jobs WHERE id::text LIKE '%' || $1 LIMIT 2",
                        &[&needle],
                    )
                    .await?;
            }
            match found.as_slice() {
                [one] => Ok(JobId(one.try_get(0)?)),
                [] => Err(EngineError::JobNotFound(typed)),
                _ => Err(EngineError::AmbiguousJobId(typed)),
            }
        })
    }

    fn list(&self, filter: JobFilter) -> StoreFuture<'_, Vec<Job>> {
        Box::pin(async move {
            let state = filter.state.map(|s| s.as_str().to_owned());
            let batch = filter.batch.map(|b| b.0);
            let ids: Option<Vec<Uuid>> = filter.ids.map(|ids| ids.iter().map(|id| id.0).collect());
            let after = filter.after.map(|id| id.0);
            let limit = filter.limit.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
            let newest_first = filter.order == ListOrder::NewestFirst;
            // Keyset paging: a cursor whose job was deleted since leaves nothing to seek from,
            // and the listing ends there.
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1::text IS NULL OR state = $1) \
                 AND ($2::uuid IS NULL OR batch_id = $2) \
                 AND ($3::text IS NULL OR storyteller = $3) \
                 AND ($4::uuid[] IS NULL OR id = ANY($4)) \
                 AND ($5::uuid IS NULL OR seq {} (SELECT seq FROM jobs WHERE id = $5)) \
                 ORDER BY seq {} LIMIT $6",
                if newest_first { "<" } else { ">" },
                if newest_first { "DESC" } else { "ASC" },
            );
            let rows = self
                .client()
                .await?
                .query(
                    &sql,
                    &[&state, &batch, &filter.storyteller, &ids, &after, &limit],
                )
                .await?;
            jobs_from_rows(&rows)
        })
    }

    fn search(&self, query: StorySearch) -> StoreFuture<'_, Vec<Job>> {
        Box::pin(async move {
            let words: Vec<String> = query
                .words
                .iter()
                .map(|w| fold(w))
                .flat_map(|w| crate::search::words(&w))
                .collect();
            if words.is_empty() || query.limit == 0 {
                return Ok(Vec::new());
            }
            // Every word required, each as the start of a word; a match in the file name
            // weighs more than one in the story.
            let expression = words
                .iter()
                .map(|word| format!("'{}':*", word.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(" & ");
            let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
            let rows = self
                .client()
                .await?
                .query(
                    &format!(
                        "SELECT {JOB_COLUMNS} FROM jobs, to_tsquery('simple', $1) AS q \
                         WHERE search @@ q \
                         ORDER BY ts_rank('{{0.1, 0.2, 0.4, 1.0}}', search, q, 2) DESC, seq DESC \
                         LIMIT $2"
                    ),
                    &[&expression, &limit],
                )
                .await?;
            jobs_from_rows(&rows)
        })
    }

    fn stats(&self) -> StoreFuture<'_, QueueStats> {
        Box::pin(async move {
            let client = self.client().await?;
            read_stats(&client).await
        })
    }

    fn next_ready_in(&self) -> StoreFuture<'_, Option<Duration>> {
        Box::pin(async move {
            let row = self
                .client()
                .await?
                .query_one(
                    "SELECT least( \
                       (SELECT min(run_after) FROM jobs \
                        WHERE state = 'queued' AND run_after > st_now_ms()), \
                       (SELECT min(until_ms) FROM storyteller_pauses WHERE until_ms IS NOT NULL)) \
                     - st_now_ms()",
                    &[],
                )
                .await?;
            Ok(row
                .try_get::<_, Option<i64>>(0)?
                .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
        })
    }

    fn place(&self) -> String {
        format!("the team queue on PostgreSQL at {}", self.inner.place)
    }

    fn follow_others(&self, sink: ForeignSink) -> StoreFuture<'_, Follower> {
        Box::pin(feed::follow(self.clone(), sink))
    }
}

/// How often a worker's session says it is still there.
const WORKER_HEARTBEAT: Duration = Duration::from_secs(2);

/// Who a worker is, as its row says.
struct WorkerFacts {
    owner: String,
    machine: String,
    pid: i32,
}

/// A worker's own connection, holding its advisory lock: what every other process sees.
struct WorkerSession {
    client: tokio_postgres::Client,
    connection: tokio::task::JoinHandle<()>,
}

impl WorkerSession {
    /// Connects, writes the worker's row (keeping lock key `key` when it has one already) and
    /// takes its lock, in one transaction: the row is seen only with its lock held, so nobody
    /// takes a worker that is starting for one that has gone. Waits for an old session of its
    /// own that the server has not yet seen go (after a lost connection). The lock key.
    async fn open(
        config: &tokio_postgres::Config,
        facts: &WorkerFacts,
        key: Option<i32>,
    ) -> Result<(WorkerSession, i32)> {
        let (mut client, connection) = config.connect(tokio_postgres::NoTls).await?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "a worker's connection to the queue ended");
            }
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let tx = client.transaction().await?;
            let row = tx
                .query_one(
                    &format!(
                        "INSERT INTO workers (owner, lock_key, machine, pid, started_at, \
                         heartbeat_at) OVERRIDING SYSTEM VALUE \
                         VALUES ($1, coalesce($2, nextval(pg_get_serial_sequence('workers', \
                         'lock_key'))::integer), $3, $4, st_now_ms(), {REAL_NOW_MS}) \
                         ON CONFLICT (owner) DO UPDATE SET machine = excluded.machine, \
                         pid = excluded.pid, heartbeat_at = excluded.heartbeat_at \
                         RETURNING lock_key"
                    ),
                    &[&facts.owner, &key, &facts.machine, &facts.pid],
                )
                .await?;
            let key: i32 = row.try_get(0)?;
            let taken: bool = tx
                .query_one(
                    "SELECT pg_try_advisory_lock($1, $2)",
                    &[&schema::LOCK_CLASS, &key],
                )
                .await?
                .try_get(0)?;
            if taken {
                // A session lock outlives the transaction that took it.
                tx.commit().await?;
                return Ok((WorkerSession { client, connection }, key));
            }
            tx.rollback().await?;
            if std::time::Instant::now() > deadline {
                return Err(EngineError::Storage(StorageError {
                    backend: StoreBackend::Postgres,
                    fault: StorageFault::Busy,
                    message: "another session still holds this worker's lock".into(),
                }));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Keeps worker `facts.owner`'s session: says every [`WORKER_HEARTBEAT`] that it is there, and
/// opens it again when the connection is lost (a server restarted), until `stop`.
async fn keep_alive(
    config: tokio_postgres::Config,
    facts: WorkerFacts,
    key: i32,
    mut session: WorkerSession,
    stop: tokio_util::sync::CancellationToken,
) -> Option<WorkerSession> {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Some(session),
            _ = tokio::time::sleep(WORKER_HEARTBEAT) => {}
        }
        let said = session
            .client
            .execute(
                &format!("UPDATE workers SET heartbeat_at = {REAL_NOW_MS} WHERE owner = $1"),
                &[&facts.owner],
            )
            .await;
        // Said, with the row there (it is written again if something took it away).
        if said.as_ref().is_ok_and(|rows| *rows > 0) {
            continue;
        }
        if said.is_err() {
            tracing::warn!(worker = %facts.owner, "lost the connection that keeps this worker known; opening it again");
        }
        drop(session);
        session = loop {
            match WorkerSession::open(&config, &facts, Some(key)).await {
                Ok((session, _)) => break session,
                Err(e) => {
                    tracing::warn!(error = %e, "could not reach the queue to keep this worker known")
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
    }
}

/// What keeps a registered worker known: its session's task. Stopped, it says the worker
/// stopped (its row goes) and lets go; dropped without a stop (the process killed, the
/// registration let go), the session closes and the server lets the lock go: the worker is
/// seen gone.
struct WorkerKeeper {
    owner: String,
    store: PostgresStore,
    stop: tokio_util::sync::CancellationToken,
    keeper: Option<tokio::task::JoinHandle<Option<WorkerSession>>>,
}

impl Drop for WorkerKeeper {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl KeptAlive for WorkerKeeper {
    fn stop(mut self: Box<Self>) -> crate::storyteller::BoxFuture<'static, ()> {
        let keeper = self.keeper.take();
        let owner = self.owner.clone();
        let store = self.store.clone();
        self.stop.cancel();
        Box::pin(async move {
            let session = match keeper {
                Some(keeper) => keeper.await.ok().flatten(),
                None => None,
            };
            // A clean end: the row goes first, then the session and its lock.
            let said = async {
                store
                    .client()
                    .await?
                    .execute("DELETE FROM workers WHERE owner = $1", &[&owner])
                    .await?;
                Ok::<_, EngineError>(())
            }
            .await;
            if let Err(e) = said {
                tracing::warn!(error = %e, "could not say this worker stopped; others will see it gone");
            }
            if let Some(session) = session {
                drop(session.client);
                let _ = session.connection.await;
            }
        })
    }
}

/// Those of `hashes` no job refers to any more.
async fn orphans<C: GenericClient>(client: &C, hashes: Vec<String>) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT h FROM unnest($1::text[]) AS h \
             WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE content_hash = h)",
            &[&hashes],
        )
        .await?;
    rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
}

/// Counts per state, cache figures, pauses and spending.
pub(super) async fn read_stats<C: GenericClient>(client: &C) -> Result<QueueStats> {
    let mut stats = QueueStats::default();
    for row in client
        .query("SELECT state, count(*) FROM jobs GROUP BY state", &[])
        .await?
    {
        let n = saturate(row.try_get::<_, i64>(1)?.max(0) as u64);
        match row.try_get::<_, &str>(0)?.parse::<JobState>() {
            Ok(JobState::Queued) => stats.queued = n,
            Ok(JobState::Running) => stats.running = n,
            Ok(JobState::Succeeded) => stats.succeeded = n,
            Ok(JobState::Dead) => stats.dead = n,
            Ok(JobState::Cancelled) => stats.cancelled = n,
            Err(e) => return Err(EngineError::CorruptRecord(e)),
        }
    }
    let tallies = client
        .query_one(
            "SELECT coalesce(sum(hits), 0)::bigint, coalesce(sum(misses), 0)::bigint \
             FROM cache_tallies",
            &[],
        )
        .await?;
    stats.cache_hits = saturate(tallies.try_get::<_, i64>(0)?.max(0) as u64);
    stats.cache_misses = saturate(tallies.try_get::<_, i64>(1)?.max(0) as u64);
    stats.paused = client
        .query_opt("SELECT value FROM queue_settings WHERE key = 'paused'", &[])
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    stats.paused_storytellers = storyteller_pauses(client, false).await?;
    let now: i64 = client
        .query_one("SELECT st_now_ms()", &[])
        .await?
        .try_get(0)?;
    let today = crate::clock::local::day(now);
    let month = crate::clock::local::month_start(now);
    let spent = client
        .query_one(
            "SELECT coalesce(sum(cost_micro_usd) FILTER (WHERE day = $1), 0)::bigint, \
             coalesce(sum(cost_micro_usd), 0)::bigint FROM spending WHERE day >= $2",
            &[&today, &month],
        )
        .await?;
    stats.spent_today_usd = spent.try_get::<_, i64>(0)?.max(0) as f64 / 1e6;
    stats.spent_this_month_usd = spent.try_get::<_, i64>(1)?.max(0) as f64 / 1e6;
    Ok(stats)
}
