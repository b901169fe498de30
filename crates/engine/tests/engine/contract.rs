//! The store contract: one suite of tests that every [`JobStore`] backend passes.
//!
//! Each test takes a [`Queue`]: a fresh, empty queue on some backend, a handle on it, more
//! handles as other processes (or machines) would open, and a way to move the store's clock.
//! A backend runs the whole suite with [`store_contract!`], which names every test once.

use crate::fixtures::{job, jobs, EnqueuedJobs};
use std::sync::Arc;
use std::time::Duration;
use storyteller_engine::job::{ErrorKind, JobError, JobId, Priority, Usage};
use storyteller_engine::store::{Enqueued, JobFilter, JobStore, Outcome, StorySearch};
use storyteller_engine::storyteller::BoxFuture;
use storyteller_engine::{EngineError, Event, EventBus, JobState};

const LEASE: Duration = Duration::from_secs(30);

/// A fresh queue on one backend, for one test.
pub trait Queue: Send + Sync {
    /// The first handle on it, publishing on [`Queue::bus`].
    fn store(&self) -> Arc<dyn JobStore>;
    /// The bus the first handle publishes on.
    fn bus(&self) -> &EventBus;
    /// Another handle on the same queue, as another process (or machine) opens it.
    fn another(&self) -> BoxFuture<'_, Arc<dyn JobStore>>;
    /// Moves the store's clock on by `by` (leases, retry waits).
    fn advance(&self, by: Duration) -> BoxFuture<'_, ()>;
    /// Checks that the backend's own storage is intact.
    fn check_intact(&self) -> BoxFuture<'_, ()>;
}

/// Every test of the contract, run on the queues `$open` (an async fn giving a `Box<dyn
/// Queue>`) makes.
#[macro_export]
macro_rules! store_contract {
    ($open:path) => {
        $crate::store_contract!(@tests $open;
            every_transition_through_the_store_follows_the_state_machine,
            claim_order_is_priority_then_round_robin_across_batches_then_fifo,
            a_claim_takes_at_most_what_is_asked_and_nothing_while_paused,
            retry_waits_for_run_after_and_leases_expire_back_to_the_queue,
            a_job_that_kills_its_worker_every_time_ends_dead,
            interruptions_after_which_the_job_got_further_are_not_held_against_it,
            an_attempt_cut_short_sooner_than_earlier_ones_is_not_held_against_the_video,
            a_checkpoint_comes_back_with_the_next_claim_until_the_job_succeeds,
            result_cache_serves_identical_videos_and_counts_hits_and_misses,
            a_job_put_back_twice_by_clean_stops_counts_one_cache_miss,
            events_follow_commits_and_stats_stay_exact,
            ids_resolve_by_unique_prefix_or_suffix,
            deleting_reports_which_videos_no_job_shows_any_more,
            counts_kept_by_the_store_equal_a_full_count_through_every_kind_of_change,
            a_batch_lists_exactly_its_jobs_even_after_removed_jobs_numbers_are_reused,
            the_same_file_twice_in_one_batch_makes_one_job,
            a_name_that_is_not_text_is_kept_byte_for_byte_and_found_again,
            hashes_are_known_only_for_files_unchanged_and_kept_until_their_jobs_hold_them,
            the_history_is_searched_by_story_and_file_name_and_follows_every_change,
            watched_folders_are_kept_and_each_content_is_sighted_once_across_processes,
            get_takes_an_id_and_resolve_what_a_person_typed,
            lists_page_by_key_in_either_order_without_gaps_or_repeats,
            a_paused_storyteller_waits_while_the_others_go_on,
            twins_claimed_by_racing_claimers_are_told_once,
            a_vanished_worker_is_seen_gone_by_another_process_and_its_jobs_reclaimed_at_once,
            only_the_worker_holding_a_job_changes_it,
        );
    };
    (@tests $open:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let queue = $open().await;
                $crate::contract::$test(&*queue).await;
            }
        )*
    };
}

/// Reclaims once a worker just dropped is seen gone (a server notices a closed session a
/// moment later, not at once); the ids reclaimed.
async fn reclaim_once_gone(store: &dyn JobStore, max_attempts: u32) -> Vec<JobId> {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let touched = store.reclaim(max_attempts).await.unwrap();
        if !touched.is_empty() || std::time::Instant::now() > deadline {
            return touched;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The jobs in each state, counted from a full list.
async fn counted(store: &dyn JobStore) -> (u32, u32, u32, u32, u32) {
    let all = store.list(JobFilter::default()).await.unwrap();
    let of = |state: JobState| all.iter().filter(|job| job.state == state).count() as u32;
    (
        of(JobState::Queued),
        of(JobState::Running),
        of(JobState::Succeeded),
        of(JobState::Dead),
        of(JobState::Cancelled),
    )
}

pub fn succeeded(story: &str) -> Outcome {
    Outcome::Succeeded {
        story: story.into(),
        media: None,
        usage: Usage::default(),
    }
}

fn error(kind: ErrorKind) -> JobError {
    JobError {
        kind,
        message: "boom".into(),
    }
}

pub async fn every_transition_through_the_store_follows_the_state_machine(q: &dyn Queue) {
    let store = q.store();
    let owner = "worker";

    // queued → running → succeeded
    let a = store.enqueue(vec![job("a.mp4", "a")]).await.unwrap().only();
    assert_eq!(a.state, JobState::Queued);
    // queued → succeeded is illegal (finish needs a claim).
    let illegal = store.finish(a.id, owner, succeeded("x")).await.unwrap_err();
    assert!(
        matches!(illegal, EngineError::IllegalTransition(_)),
        "{illegal}"
    );
    // queued → queued via retry is illegal.
    assert!(matches!(
        store.retry(a.id).await.unwrap_err(),
        EngineError::IllegalTransition(_)
    ));
    let claimed = store.claim(owner, 1, LEASE).await.unwrap();
    assert_eq!(claimed[0].id, a.id);
    assert_eq!(claimed[0].state, JobState::Running);
    assert_eq!(claimed[0].attempts, 1);
    // running → deleted is refused.
    assert!(matches!(
        store.delete(a.id).await.unwrap_err(),
        EngineError::JobRunning(_)
    ));
    // Another owner cannot finish it.
    assert!(matches!(
        store
            .finish(a.id, "someone-else", succeeded("x"))
            .await
            .unwrap_err(),
        EngineError::LeaseLost(_)
    ));
    let done = store
        .finish(a.id, owner, succeeded("the story"))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.story.as_deref(), Some("the story"));
    // succeeded is final: no cancel, no retry, no finish.
    for result in [
        store.cancel(a.id).await.map(|_| ()),
        store.retry(a.id).await.map(|_| ()),
        store
            .finish(a.id, owner, succeeded("again"))
            .await
            .map(|_| ()),
    ] {
        assert!(matches!(
            result.unwrap_err(),
            EngineError::IllegalTransition(_)
        ));
    }

    // running → queued (retry later) → running → dead → queued (retry) → cancelled → queued.
    let b = store.enqueue(vec![job("b.mp4", "b")]).await.unwrap().only();
    store.claim(owner, 1, LEASE).await.unwrap();
    let later = store
        .finish(
            b.id,
            owner,
            Outcome::Retry {
                error: error(ErrorKind::Transient),
                wait: Duration::ZERO,
            },
        )
        .await
        .unwrap();
    assert_eq!((later.state, later.attempts), (JobState::Queued, 1));
    assert_eq!(later.error.as_ref().unwrap().kind, ErrorKind::Transient);
    store.claim(owner, 1, LEASE).await.unwrap();
    let dead = store
        .finish(
            b.id,
            owner,
            Outcome::Dead {
                error: error(ErrorKind::Permanent),
            },
        )
        .await
        .unwrap();
    assert_eq!((dead.state, dead.attempts), (JobState::Dead, 2));
    // dead → cancelled is illegal; dead → queued is the retry.
    assert!(matches!(
        store.cancel(b.id).await.unwrap_err(),
        EngineError::IllegalTransition(_)
    ));
    let again = store.retry(b.id).await.unwrap();
    assert_eq!((again.state, again.attempts), (JobState::Queued, 0));
    let cancelled = store.cancel(b.id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_eq!(store.retry(b.id).await.unwrap().state, JobState::Queued);

    // running → cancelled, then the worker's finish is refused.
    let c = store.enqueue(vec![job("c.mp4", "c")]).await.unwrap().only();
    let claimed = store.claim(owner, 2, LEASE).await.unwrap();
    assert!(claimed.iter().any(|j| j.id == c.id));
    store.cancel(c.id).await.unwrap();
    assert!(matches!(
        store
            .finish(c.id, owner, succeeded("late"))
            .await
            .unwrap_err(),
        EngineError::IllegalTransition(_)
    ));
    // running → queued by release refunds the attempt.
    let released = store
        .finish(b.id, owner, Outcome::Released { error: None })
        .await
        .unwrap();
    assert_eq!((released.state, released.attempts), (JobState::Queued, 0));

    // Deleting a finished job works; unknown ids are reported.
    store.delete(a.id).await.unwrap();
    assert!(matches!(
        store.get(a.id).await.unwrap_err(),
        EngineError::JobNotFound(_)
    ));
    q.check_intact().await;
}

pub async fn claim_order_is_priority_then_round_robin_across_batches_then_fifo(q: &dyn Queue) {
    let store = q.store();
    let mut low = jobs("low", 2);
    for j in &mut low {
        j.priority = Priority::Low;
    }
    store.enqueue(low).await.unwrap().jobs();
    store.enqueue(jobs("a", 5)).await.unwrap().jobs();
    store.enqueue(jobs("b", 2)).await.unwrap().jobs();
    let mut high = jobs("high", 1);
    high[0].priority = Priority::High;
    store.enqueue(high).await.unwrap().jobs();

    let mut order = Vec::new();
    // Claim one at a time, adding a batch part-way through: it joins the rotation at once,
    // neither ahead of the batches already waiting nor behind all of their jobs.
    for step in 0..12 {
        if step == 4 {
            store.enqueue(jobs("c", 2)).await.unwrap().jobs();
        }
        let claimed = store.claim("w", 1, LEASE).await.unwrap();
        order.push(claimed[0].file_name().trim_end_matches(".mp4").to_owned());
    }
    assert_eq!(
        order,
        ["high0", "a0", "b0", "a1", "b1", "a2", "c0", "a3", "c1", "a4", "low0", "low1"]
    );
    assert!(store.claim("w", 1, LEASE).await.unwrap().is_empty());
}

pub async fn a_claim_takes_at_most_what_is_asked_and_nothing_while_paused(q: &dyn Queue) {
    let store = q.store();
    store.enqueue(jobs("j", 10)).await.unwrap().jobs();
    store.set_paused(Some("maintenance".into())).await.unwrap();
    assert!(store.claim("w", 5, LEASE).await.unwrap().is_empty());
    assert_eq!(
        store.stats().await.unwrap().paused.as_deref(),
        Some("maintenance")
    );
    store.set_paused(None).await.unwrap();
    assert_eq!(store.claim("w", 4, LEASE).await.unwrap().len(), 4);
    assert_eq!(store.claim("w", 100, LEASE).await.unwrap().len(), 6);
    assert!(store.claim("w", 1, LEASE).await.unwrap().is_empty());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.queued, stats.running), (0, 10));
}

pub async fn retry_waits_for_run_after_and_leases_expire_back_to_the_queue(q: &dyn Queue) {
    let store = q.store();
    let a = store.enqueue(vec![job("a.mp4", "a")]).await.unwrap().only();
    store.claim("w", 1, LEASE).await.unwrap();
    store
        .finish(
            a.id,
            "w",
            Outcome::Retry {
                error: error(ErrorKind::Transient),
                wait: Duration::from_secs(5),
            },
        )
        .await
        .unwrap();
    assert!(
        store.claim("w", 1, LEASE).await.unwrap().is_empty(),
        "claimed before run_after"
    );
    assert_eq!(
        store.next_ready_in().await.unwrap(),
        Some(Duration::from_secs(5))
    );
    q.advance(Duration::from_secs(5)).await;
    assert_eq!(store.claim("w", 1, LEASE).await.unwrap().len(), 1);

    // The worker stops heartbeating: nothing happens until the lease runs out.
    assert!(store.reclaim(5).await.unwrap().is_empty());
    q.advance(Duration::from_secs(20)).await;
    assert_eq!(store.heartbeat("w", LEASE).await.unwrap(), vec![a.id]);
    q.advance(Duration::from_secs(29)).await;
    assert!(store.reclaim(5).await.unwrap().is_empty());
    q.advance(Duration::from_secs(2)).await;
    assert_eq!(store.reclaim(5).await.unwrap(), vec![a.id]);
    let back = store.get(a.id).await.unwrap();
    assert_eq!((back.state, back.attempts), (JobState::Queued, 2));
    // The old owner's heartbeat no longer holds it.
    assert!(store.heartbeat("w", LEASE).await.unwrap().is_empty());
}

pub async fn a_job_that_kills_its_worker_every_time_ends_dead(q: &dyn Queue) {
    let store = q.store();
    let a = store
        .enqueue(vec![job("poison.mp4", "p")])
        .await
        .unwrap()
        .only();
    for attempt in 1..=3 {
        let owner = format!("worker-{attempt}");
        let worker = store.register_worker(&owner).await.unwrap();
        let claimed = store.claim(&owner, 1, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 1, "attempt {attempt}");
        // The worker dies; a sibling's reclaim finds it gone.
        drop(worker);
        assert_eq!(reclaim_once_gone(&*store, 3).await, vec![a.id]);
    }
    let dead = store.get(a.id).await.unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.error.as_ref().unwrap().kind, ErrorKind::Crashed);
    assert!(dead.error.unwrap().message.contains("3 times"));
    assert!(store.claim("w", 1, LEASE).await.unwrap().is_empty());
}

/// Claims job `id` as a new worker, lets `ran_ms` pass on the store's clock, reports `progress`, and lets
/// the worker die; the job's state after the reclaim.
async fn interrupt_at(
    q: &dyn Queue,
    id: storyteller_engine::JobId,
    n: u32,
    progress: f64,
    ran_ms: u64,
) -> JobState {
    let store = q.store();
    let owner = format!("worker-{n}");
    let worker = store.register_worker(&owner).await.unwrap();
    let claimed = store.claim(&owner, 1, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1, "interruption {n}: nothing to claim");
    assert_eq!(claimed[0].id, id);
    q.advance(Duration::from_millis(ran_ms)).await;
    store
        .report(
            id,
            &owner,
            storyteller_engine::job::Stage::Analysing,
            progress,
        )
        .await
        .unwrap();
    // Killed: gone without a clean stop.
    drop(worker);
    reclaim_once_gone(&*store, 3).await;
    store.get(id).await.unwrap().state
}

pub async fn interruptions_after_which_the_job_got_further_are_not_held_against_it(q: &dyn Queue) {
    // Time stands still: every attempt runs as long as the others (not at all).
    let store = q.store();
    let a = store
        .enqueue(vec![job("long.mp4", "l")])
        .await
        .unwrap()
        .only();
    // Killed ten times, each time further on (as a job resuming from its checkpoints is).
    for n in 1..=10u32 {
        interrupt_at(q, a.id, n, f64::from(n) / 20.0, 0).await;
    }
    let job = store.get(a.id).await.unwrap();
    assert_eq!(job.state, JobState::Queued, "{job:?}");
    assert_eq!(job.attempts, 10);
    // Killed again without getting further: those count; a few of them set it aside.
    for n in 11..=13u32 {
        interrupt_at(q, a.id, n, 0.5, 0).await;
    }
    let job = store.get(a.id).await.unwrap();
    assert_eq!(job.state, JobState::Dead, "{job:?}");
    let error = job.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Crashed);
    assert!(
        error
            .message
            .contains("3 times without getting any further"),
        "{}",
        error.message
    );
    // Retried by hand, it starts with a clean slate.
    store.retry(a.id).await.unwrap();
    interrupt_at(q, a.id, 14, 0.1, 0).await;
    assert_eq!(store.get(a.id).await.unwrap().state, JobState::Queued);
}

pub async fn an_attempt_cut_short_sooner_than_earlier_ones_is_not_held_against_the_video(
    q: &dyn Queue,
) {
    let store = q.store();
    let a = store
        .enqueue(vec![job("slow.mp4", "s")])
        .await
        .unwrap()
        .only();
    let interrupt = |n: u32, progress: f64, ran_ms: u64| interrupt_at(q, a.id, n, progress, ran_ms);
    // A long attempt gets to 30%; then a machine restarting every second: none got further, but
    // none had the time to.
    assert_eq!(interrupt(1, 0.3, 4_000).await, JobState::Queued);
    for n in 2..=14 {
        assert_eq!(
            interrupt(n, 0.1, 1_000).await,
            JobState::Queued,
            "interruption {n}"
        );
    }
    // As long as before and no further, three times: that is the video.
    assert_eq!(interrupt(15, 0.3, 4_000).await, JobState::Queued);
    assert_eq!(interrupt(16, 0.3, 4_000).await, JobState::Queued);
    assert_eq!(interrupt(17, 0.3, 4_000).await, JobState::Dead);
}

pub async fn a_checkpoint_comes_back_with_the_next_claim_until_the_job_succeeds(q: &dyn Queue) {
    let store = q.store();
    let a = store.enqueue(vec![job("a.mp4", "a")]).await.unwrap().only();
    let worker = store.register_worker("w1").await.unwrap();
    let claimed = store.claim("w1", 1, LEASE).await.unwrap();
    assert_eq!(claimed[0].checkpoint, None);
    let saved = serde_json::json!({ "probe": { "durationSecs": 12.5 } });
    store
        .save_checkpoint(a.id, "w1", saved.clone())
        .await
        .unwrap();
    // Another worker's checkpoint for a job it does not hold is ignored.
    store
        .save_checkpoint(a.id, "intruder", serde_json::json!({ "bad": true }))
        .await
        .unwrap();
    drop(worker);
    reclaim_once_gone(&*store, 3).await;
    let claimed = store.claim("w2", 1, LEASE).await.unwrap();
    assert_eq!(claimed[0].checkpoint.as_ref(), Some(&saved));
    // Listing jobs never carries it.
    assert!(store.get(a.id).await.unwrap().checkpoint.is_none());
    store.finish(a.id, "w2", succeeded("told")).await.unwrap();
    // Once it is finished, nothing of it comes back.
    store.retry(a.id).await.unwrap_err();
}

pub async fn result_cache_serves_identical_videos_and_counts_hits_and_misses(q: &dyn Queue) {
    let store = q.store();
    let first = store
        .enqueue(vec![job("a.mp4", "same")])
        .await
        .unwrap()
        .only();
    store.claim("w", 1, LEASE).await.unwrap();
    store
        .finish(first.id, "w", succeeded("told once"))
        .await
        .unwrap();

    // Same content under another name: a hit at once.
    let copy = store
        .enqueue(vec![job("copy.mp4", "same")])
        .await
        .unwrap()
        .only();
    assert_eq!(copy.state, JobState::Succeeded);
    assert!(copy.cached);
    assert_eq!(copy.story.as_deref(), Some("told once"));
    // --no-cache, another preset, or other content: queued.
    let mut fresh = job("fresh.mp4", "same");
    fresh.no_cache = true;
    let mut other_preset = job("social.mp4", "same");
    other_preset.spec.preset = "social".into();
    let added = store
        .enqueue(vec![fresh, other_preset, job("new.mp4", "different")])
        .await
        .unwrap()
        .jobs();
    assert!(added
        .iter()
        .all(|j| j.state == JobState::Queued && !j.cached));

    // Two identical videos queued together: the second waits for the first, then takes its story.
    let twins = store
        .enqueue(vec![job("t1.mp4", "twin"), job("t2.mp4", "twin")])
        .await
        .unwrap()
        .jobs();
    let mut running = store.claim("w", 10, LEASE).await.unwrap();
    assert!(running.iter().any(|j| j.id == twins[0].id));
    assert!(
        !running.iter().any(|j| j.id == twins[1].id),
        "twin ran in parallel"
    );
    running.retain(|j| j.id == twins[0].id);
    store
        .finish(twins[0].id, "w", succeeded("twin story"))
        .await
        .unwrap();
    assert!(store.claim("w", 10, LEASE).await.unwrap().is_empty());
    let second = store.get(twins[1].id).await.unwrap();
    assert_eq!((second.state, second.cached), (JobState::Succeeded, true));
    assert_eq!(second.story.as_deref(), Some("twin story"));
    assert_eq!(second.attempts, 0);

    let stats = store.stats().await.unwrap();
    assert_eq!(stats.cache_hits, 2);
    // Misses: a, social, new, t1 (no-cache jobs do not look).
    assert_eq!(stats.cache_misses, 4);
}

pub async fn a_job_put_back_twice_by_clean_stops_counts_one_cache_miss(q: &dyn Queue) {
    let store = q.store();
    let added = store.enqueue(jobs("s", 3)).await.unwrap().jobs();
    for _ in 0..2 {
        let claimed = store.claim("w", 3, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 3);
        for job in &claimed {
            store
                .finish(job.id, "w", Outcome::Released { error: None })
                .await
                .unwrap();
        }
    }
    store.claim("w", 3, LEASE).await.unwrap();
    for job in &added {
        store.finish(job.id, "w", succeeded("told")).await.unwrap();
    }
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.cache_misses, stats.cache_hits), (3, 0));
}

pub async fn events_follow_commits_and_stats_stay_exact(q: &dyn Queue) {
    let store = q.store();
    let mut events = q.bus().subscribe();
    let added = store.enqueue(jobs("e", 3)).await.unwrap().jobs();
    let claimed = store.claim("w", 1, LEASE).await.unwrap();
    store
        .finish(claimed[0].id, "w", succeeded("s"))
        .await
        .unwrap();
    store.cancel(added[2].id).await.unwrap();

    // Job events are published as their changes commit; the counts follow them (a server
    // store publishes them once a burst of writes is over): read until they say where the
    // queue is now.
    let counted_now = |event: &Event| {
        matches!(event, Event::QueueStats { stats }
            if (stats.queued, stats.running, stats.succeeded, stats.cancelled) == (1, 0, 1, 1))
    };
    let mut seen = Vec::new();
    while let Some(envelope) = events.try_recv() {
        seen.push(envelope.event);
    }
    while !seen.iter().any(counted_now) {
        let envelope = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("the counts after the changes were never published")
            .unwrap();
        seen.push(envelope.event);
    }
    // One add is one event, with every job in it.
    let added_events: Vec<&Event> = seen
        .iter()
        .filter(|e| matches!(e, Event::JobsAdded { .. }))
        .collect();
    assert_eq!(added_events.len(), 1);
    assert_eq!(
        added_events[0].job_ids(),
        added.iter().map(|j| j.id).collect::<Vec<_>>()
    );
    assert!(seen.iter().any(|e| matches!(e, Event::JobFinished { job_id, state: JobState::Succeeded, .. } if *job_id == claimed[0].id)));
    assert!(seen.iter().any(|e| matches!(e, Event::JobFinished { job_id, state: JobState::Cancelled, .. } if *job_id == added[2].id)));
    let Some(Event::QueueStats { stats: last }) = seen
        .iter()
        .rev()
        .find(|e| matches!(e, Event::QueueStats { .. }))
    else {
        panic!("no stats event");
    };
    assert_eq!(
        (last.queued, last.running, last.succeeded, last.cancelled),
        (1, 0, 1, 1)
    );
    assert!(seen
        .iter()
        .all(|e| !e.job_ids().is_empty() || matches!(e, Event::QueueStats { .. })));

    // Counts kept by triggers equal a full count.
    let listed = store.list(JobFilter::default()).await.unwrap();
    assert_eq!(listed.len() as u32, store.stats().await.unwrap().total());
    let cleared = store.clear_finished().await.unwrap();
    assert_eq!(cleared.jobs, 2);
    // Their contents were theirs alone: both sets of thumbnails can go.
    assert_eq!(cleared.orphaned_hashes.len(), 2);
    assert_eq!(store.stats().await.unwrap().total(), 1);
}

pub async fn ids_resolve_by_unique_prefix_or_suffix(q: &dyn Queue) {
    let store = q.store();
    let added = store.enqueue(jobs("p", 2)).await.unwrap().jobs();
    let full = added[0].id.to_string();
    assert_eq!(store.resolve(&full).await.unwrap(), added[0].id);
    assert_eq!(store.resolve(&full[..34]).await.unwrap(), added[0].id);
    // Both share their first 8 digits (same millisecond): ambiguous.
    let common: String = full
        .chars()
        .zip(added[1].id.to_string().chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    if !common.is_empty() {
        assert!(matches!(
            store.resolve(&common).await.unwrap_err(),
            EngineError::AmbiguousJobId(_)
        ));
    }
    assert!(matches!(
        store.resolve("zzz").await.unwrap_err(),
        EngineError::JobNotFound(_)
    ));
}

pub async fn deleting_reports_which_videos_no_job_shows_any_more(q: &dyn Queue) {
    let store = q.store();
    let added = store
        .enqueue(vec![
            job("a.mp4", "shared"),
            job("copy.mp4", "shared"),
            job("b.mp4", "own"),
        ])
        .await
        .unwrap()
        .jobs();
    // A copy of the same video still shows the thumbnails.
    let removed = store.delete(added[0].id).await.unwrap();
    assert_eq!((removed.jobs, removed.orphaned_hashes.len()), (1, 0));
    let removed = store.delete(added[1].id).await.unwrap();
    assert_eq!(removed.orphaned_hashes, vec![added[1].content_hash.clone()]);
    // Nothing finished: clearing removes nothing.
    let cleared = store.clear_finished().await.unwrap();
    assert_eq!(cleared, Default::default());
    assert_eq!(store.stats().await.unwrap().total(), 1);
}

pub async fn counts_kept_by_the_store_equal_a_full_count_through_every_kind_of_change(
    q: &dyn Queue,
) {
    let store = q.store();
    let check = |stats: storyteller_engine::QueueStats, real: (u32, u32, u32, u32, u32)| {
        assert_eq!(
            (
                stats.queued,
                stats.running,
                stats.succeeded,
                stats.dead,
                stats.cancelled
            ),
            real
        );
    };
    store.enqueue(jobs("c", 12)).await.unwrap();
    // A cached twin enters as succeeded.
    store.enqueue(vec![job("told.mp4", "told")]).await.unwrap();
    let told = store.claim("w", 1, LEASE).await.unwrap();
    let told_id = told.iter().map(|j| j.id).next().unwrap();
    store.finish(told_id, "w", succeeded("s")).await.unwrap();
    let mut copy = job("copy.mp4", told[0].content_hash.as_str());
    copy.content_hash = told[0].content_hash.clone();
    store.enqueue(vec![copy]).await.unwrap();
    check(store.stats().await.unwrap(), counted(&*store).await);

    let worker = store.register_worker("w").await.unwrap();
    let running = store.claim("w", 6, LEASE).await.unwrap();
    store
        .finish(running[0].id, "w", succeeded("a"))
        .await
        .unwrap();
    store
        .finish(
            running[1].id,
            "w",
            Outcome::Dead {
                error: error(ErrorKind::Permanent),
            },
        )
        .await
        .unwrap();
    store
        .finish(
            running[2].id,
            "w",
            Outcome::Retry {
                error: error(ErrorKind::Transient),
                wait: Duration::ZERO,
            },
        )
        .await
        .unwrap();
    store
        .finish(running[3].id, "w", Outcome::Released { error: None })
        .await
        .unwrap();
    store.cancel(running[4].id).await.unwrap();
    check(store.stats().await.unwrap(), counted(&*store).await);

    // Refused changes move nothing.
    assert!(store.retry(running[0].id).await.is_err());
    assert!(store.delete(running[5].id).await.is_err());
    check(store.stats().await.unwrap(), counted(&*store).await);

    store.retry(running[4].id).await.unwrap();
    store.retry_failed().await.unwrap();
    drop(worker);
    reclaim_once_gone(&*store, 5).await;
    let queued = store
        .list(JobFilter {
            state: Some(JobState::Queued),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    store.cancel(queued[0].id).await.unwrap();
    store.delete(queued[1].id).await.unwrap();
    check(store.stats().await.unwrap(), counted(&*store).await);
    store.clear_finished().await.unwrap();
    check(store.stats().await.unwrap(), counted(&*store).await);
    assert!(store.stats().await.unwrap().total() > 0);
}

/// The jobs of batch `batch`, as `list` finds them.
pub async fn batch_jobs(
    store: &dyn JobStore,
    batch: storyteller_engine::job::BatchId,
) -> Vec<String> {
    let filter = JobFilter {
        batch: Some(batch),
        ..JobFilter::default()
    };
    store
        .list(filter)
        .await
        .unwrap()
        .into_iter()
        .map(|job| job.source.to_string_lossy().into_owned())
        .collect()
}

pub async fn a_batch_lists_exactly_its_jobs_even_after_removed_jobs_numbers_are_reused(
    q: &dyn Queue,
) {
    let store = q.store();
    let (first, added) = store.enqueue(jobs("a", 3)).await.unwrap();
    // The newest job goes: the next batch's first job gets its row number back.
    store.delete(added[2].job().id).await.unwrap();
    let (second, _) = store.enqueue(jobs("b", 2)).await.unwrap();
    assert_eq!(
        batch_jobs(&*store, first).await,
        ["/videos/a0.mp4", "/videos/a1.mp4"]
    );
    assert_eq!(
        batch_jobs(&*store, second).await,
        ["/videos/b0.mp4", "/videos/b1.mp4"]
    );
    // A batch whose every file was there already stores nothing.
    let (third, again) = store.enqueue(jobs("b", 2)).await.unwrap();
    assert!(again.iter().all(|e| matches!(e, Enqueued::Existing(_))));
    assert!(batch_jobs(&*store, third).await.is_empty());
}

pub async fn the_same_file_twice_in_one_batch_makes_one_job(q: &dyn Queue) {
    let store = q.store();
    let (_, added) = store
        .enqueue(vec![
            job("a.mp4", "a"),
            job("b.mp4", "b"),
            job("a.mp4", "a"),
        ])
        .await
        .unwrap();
    assert!(matches!(added[0], Enqueued::Added(_)));
    assert!(matches!(added[1], Enqueued::Added(_)));
    let Enqueued::Existing(twice) = &added[2] else {
        panic!("the second a.mp4 made a job: {:?}", added[2]);
    };
    assert_eq!(twice.id, added[0].job().id);
    assert_eq!(store.stats().await.unwrap().queued, 2);
}

pub async fn a_name_that_is_not_text_is_kept_byte_for_byte_and_found_again(q: &dyn Queue) {
    use std::os::unix::ffi::OsStrExt;
    let store = q.store();
    let odd = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b"/videos/clip\xff.mp4"));
    // Another name that is not text, which a lossy conversion would make the same.
    let other = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(b"/videos/clip\xfe.mp4"));
    let with_source = |source: &std::path::Path, content: &str| {
        let mut new = job("unused.mp4", content);
        new.source = source.to_path_buf();
        new
    };
    let (_, added) = store
        .enqueue(vec![
            with_source(&odd, "a"),
            with_source(&other, "b"),
            with_source(&odd, "a"),
        ])
        .await
        .unwrap();
    assert!(matches!(added[0], Enqueued::Added(_)));
    assert!(matches!(added[1], Enqueued::Added(_)), "{:?}", added[1]);
    assert!(matches!(added[2], Enqueued::Existing(_)), "{:?}", added[2]);
    let stored = store.get(added[0].job().id).await.unwrap();
    assert_eq!(stored.source, odd);
    // A later batch, and the check before hashing, find it too.
    let (_, again) = store.enqueue(vec![with_source(&odd, "a")]).await.unwrap();
    assert!(matches!(again[0], Enqueued::Existing(_)), "{:?}", again[0]);
    let key = storyteller_engine::store::SourceKey {
        source: other.clone(),
        size: 1000,
        mtime_ms: 0,
        spec: with_source(&other, "b").spec,
    };
    let found = store.find_existing(vec![key]).await.unwrap();
    assert_eq!(found[0].as_ref().map(|j| &j.source), Some(&other));
}

pub async fn hashes_are_known_only_for_files_unchanged_and_kept_until_their_jobs_hold_them(
    q: &dyn Queue,
) {
    use storyteller_engine::store::FileKey;
    let store = q.store();
    let key = |name: &str, size: u64, mtime_ms: i64| FileKey {
        source: format!("/videos/{name}").into(),
        size,
        mtime_ms,
    };
    // A file with a job (the fixture's size and mtime): its hash is known, for any spec.
    let (_, added) = store.enqueue(vec![job("queued.mp4", "q")]).await.unwrap();
    let queued_hash = added[0].job().content_hash.clone();
    store
        .remember_hashes(vec![(key("kept.mp4", 5, 7), "kept-hash".into())])
        .await
        .unwrap();
    let asked = vec![
        key("queued.mp4", 1000, 0),
        key("kept.mp4", 5, 7),
        // The same files since changed: nothing is known of them.
        key("queued.mp4", 1000, 1),
        key("kept.mp4", 6, 7),
        key("never.mp4", 5, 7),
    ];
    let known = store.known_hashes(asked.clone()).await.unwrap();
    assert_eq!(
        known,
        [
            Some(queued_hash.clone()),
            Some("kept-hash".into()),
            None,
            None,
            None
        ]
    );
    // Kept again for a changed file, the newer one wins.
    store
        .remember_hashes(vec![(key("kept.mp4", 6, 7), "newer".into())])
        .await
        .unwrap();
    let known = store.known_hashes(asked.clone()).await.unwrap();
    assert_eq!(known[1], None);
    assert_eq!(known[3].as_deref(), Some("newer"));
    store
        .forget_hashes(vec!["/videos/kept.mp4".into()])
        .await
        .unwrap();
    let known = store.known_hashes(asked).await.unwrap();
    assert_eq!(known, [Some(queued_hash), None, None, None, None]);
}

/// The file names of what a search of `text` finds, best first.
pub async fn found(store: &dyn JobStore, text: &str) -> Vec<String> {
    let words = storyteller_engine::search::words(text);
    store
        .search(StorySearch { words, limit: 50 })
        .await
        .unwrap()
        .iter()
        .map(|job| job.file_name())
        .collect()
}

pub async fn the_history_is_searched_by_story_and_file_name_and_follows_every_change(
    q: &dyn Queue,
) {
    let store = q.store();
    let told = store
        .enqueue(vec![
            job("harbour.mp4", "a"),
            job("Lighthouse at dusk.mp4", "b"),
            job("kitchen.mp4", "c"),
        ])
        .await
        .unwrap()
        .jobs();
    store.claim("w", 3, LEASE).await.unwrap();
    let stories = [
        "Boats rock in the harbour while gulls circle.",
        "A lighthouse beam sweeps the water. The crème-coloured tower glows.",
        "Someone slices bread; the kettle whistles. A boat is painted on a mug.",
    ];
    for (job, story) in told.iter().zip(stories) {
        store.finish(job.id, "w", succeeded(story)).await.unwrap();
    }

    // Every word must be found; each also as the start of a word; case and accents aside.
    assert_eq!(found(&*store, "boat").await, ["harbour.mp4", "kitchen.mp4"]);
    assert_eq!(found(&*store, "BOATS gull").await, ["harbour.mp4"]);
    assert_eq!(found(&*store, "creme").await, ["Lighthouse at dusk.mp4"]);
    assert_eq!(found(&*store, "whist").await, ["kitchen.mp4"]);
    assert!(found(&*store, "boat lighthouse").await.is_empty());
    assert!(
        found(&*store, "\"*( ").await.is_empty(),
        "no words, no hits"
    );
    // A match in the file name ranks above one in the story.
    assert_eq!(
        found(&*store, "lighthouse").await,
        ["Lighthouse at dusk.mp4"]
    );
    assert_eq!(found(&*store, "dusk").await, ["Lighthouse at dusk.mp4"]);
    store
        .enqueue(vec![job("sea.mp4", "e")])
        .await
        .unwrap()
        .only();
    let sea = store.claim("w", 1, LEASE).await.unwrap();
    store
        .finish(
            sea[0].id,
            "w",
            succeeded("From the cliff a kitchen light, then the harbour."),
        )
        .await
        .unwrap();
    assert_eq!(found(&*store, "harbour").await[0], "harbour.mp4");
    assert_eq!(found(&*store, "kitchen").await[0], "kitchen.mp4");

    // A story served from the cache is found too; a removed job is gone from the index.
    let copy = store
        .enqueue(vec![job("copy of harbour.mp4", "a")])
        .await
        .unwrap()
        .only();
    assert!(copy.cached);
    let mut both = found(&*store, "gulls").await;
    both.sort();
    assert_eq!(both, ["copy of harbour.mp4", "harbour.mp4"]);
    store.delete(copy.id).await.unwrap();
    assert_eq!(found(&*store, "gulls").await, ["harbour.mp4"]);
    store.delete(told[0].id).await.unwrap();
    assert!(found(&*store, "gulls").await.is_empty());
    assert_eq!(found(&*store, "boat").await, ["kitchen.mp4"]);
    // A queued job has no story yet: found by nothing, not even its name.
    store
        .enqueue(vec![job("boat-trip.mp4", "d")])
        .await
        .unwrap();
    assert_eq!(found(&*store, "boat").await, ["kitchen.mp4"]);
}

pub async fn watched_folders_are_kept_and_each_content_is_sighted_once_across_processes(
    q: &dyn Queue,
) {
    use storyteller_engine::watcher::folder::{StoryOutput, WatchedFolder};
    let store = q.store();
    assert!(store.watched_folders().await.unwrap().is_empty());

    let camera = WatchedFolder {
        recursive: true,
        storyteller: Some("gemini".into()),
        ..WatchedFolder::new("/media/camera".into())
    };
    let screen = WatchedFolder::new("/home/me/Videos/Screen".into());
    store.save_watched_folder(screen.clone()).await.unwrap();
    store.save_watched_folder(camera.clone()).await.unwrap();
    assert_eq!(
        store.watched_folders().await.unwrap(),
        [screen.clone(), camera.clone()],
        "in path order"
    );
    // Saved again: its choices replaced, still one folder.
    let beside = WatchedFolder {
        output: StoryOutput::Beside {
            formats: vec![storyteller_engine::export::ExportFormat::Markdown],
        },
        ..camera.clone()
    };
    store.save_watched_folder(beside.clone()).await.unwrap();
    assert_eq!(
        store.watched_folders().await.unwrap(),
        [screen.clone(), beside.clone()]
    );

    // Each content once per folder, whatever its name; another folder sees it anew.
    let sight = |store: &Arc<dyn JobStore>, folder: &str, hash: &str, source: &str| {
        let store = store.clone();
        let folder = std::path::PathBuf::from(folder);
        // Another content is another file: its modification time differs.
        let found = storyteller_engine::job::NewJob {
            source: source.into(),
            content_hash: hash.to_owned(),
            mtime_ms: hash.bytes().map(i64::from).sum(),
            ..job(source, hash)
        };
        async move {
            let (_, results) = store
                .enqueue_watched(folder.clone(), vec![found])
                .await
                .unwrap();
            match &results[..] {
                [Some(Enqueued::Added(job))] => {
                    assert_eq!(job.watched_folder.as_deref(), Some(folder.as_path()));
                    true
                }
                // New to the folder, but the file already has its job (from before the folder
                // was removed): none is added twice.
                [Some(Enqueued::Existing(_))] => true,
                [None] => false,
                other => panic!("{other:?}"),
            }
        }
    };
    assert!(sight(&store, "/media/camera", "h1", "/media/camera/a.mp4").await);
    assert!(!sight(&store, "/media/camera", "h1", "/media/camera/renamed.mp4").await);
    assert!(
        sight(&store, "/media/camera", "h2", "/media/camera/a.mp4").await,
        "new content under an old name"
    );
    assert!(
        sight(
            &store,
            "/home/me/Videos/Screen",
            "h1",
            "/home/me/Videos/Screen/a.mp4"
        )
        .await
    );

    // Two processes on one database, both hearing of the same files: each is told once.
    let other = q.another().await;
    let mut races = tokio::task::JoinSet::new();
    for i in 0..50 {
        for store in [store.clone(), other.clone()] {
            races.spawn(async move {
                let hash = format!("race{i}");
                let source = format!("/media/camera/{i}.mp4");
                (hash.clone(), {
                    let found = storyteller_engine::job::NewJob {
                        source: source.clone().into(),
                        content_hash: hash.clone(),
                        ..job(&source, &hash)
                    };
                    let (_, results) = store
                        .enqueue_watched("/media/camera".into(), vec![found])
                        .await
                        .unwrap();
                    results[0].is_some()
                })
            });
        }
    }
    let mut firsts = std::collections::HashMap::new();
    while let Some(joined) = races.join_next().await {
        let (hash, first) = joined.unwrap();
        *firsts.entry(hash).or_insert(0) += usize::from(first);
    }
    assert_eq!(firsts.len(), 50);
    assert!(firsts.values().all(|n| *n == 1), "{firsts:?}");

    // Removed: gone, with what it saw (added again, it starts afresh); removed twice: false.
    assert!(store
        .remove_watched_folder("/media/camera".into())
        .await
        .unwrap());
    assert!(!other
        .remove_watched_folder("/media/camera".into())
        .await
        .unwrap());
    assert_eq!(other.watched_folders().await.unwrap(), [screen]);
    assert!(sight(&store, "/media/camera", "h1", "/media/camera/a.mp4").await);
    // What a folder sighted is known by file, as last seen: a rename moves the sighting.
    assert!(!sight(&store, "/media/camera", "h1", "/media/camera/b.mp4").await);
    let files = store.sighted_files("/media/camera".into()).await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].source, std::path::Path::new("/media/camera/b.mp4"));
    let reports = store.watched_folder_reports().await.unwrap();
    assert_eq!(
        reports.len(),
        1,
        "the folder was removed, so only the other is left"
    );
    // Kept through a reopen.
    drop((store, other));
    let reopened = q.another().await;
    assert_eq!(reopened.watched_folders().await.unwrap().len(), 1);
}

pub async fn get_takes_an_id_and_resolve_what_a_person_typed(q: &dyn Queue) {
    let store = q.store();
    let added = store.enqueue(jobs("g", 1)).await.unwrap().only();
    assert_eq!(store.get(added.id).await.unwrap().id, added.id);
    let stranger = JobId::new();
    assert!(matches!(
        store.get(stranger).await.unwrap_err(),
        EngineError::JobNotFound(_)
    ));
    // A whole id that names no job is not found either, not taken on trust.
    assert!(matches!(
        store.resolve(&stranger.to_string()).await.unwrap_err(),
        EngineError::JobNotFound(_)
    ));
    let typed = added.id.to_string().to_uppercase();
    assert_eq!(store.resolve(&typed[28..]).await.unwrap(), added.id);
}

pub async fn lists_page_by_key_in_either_order_without_gaps_or_repeats(q: &dyn Queue) {
    let store = q.store();
    let mut all = Vec::new();
    for batch in 0..3 {
        all.extend(
            store
                .enqueue(jobs(&format!("p{batch}-"), 7))
                .await
                .unwrap()
                .jobs(),
        );
    }
    for order in [
        storyteller_engine::wire::ListOrder::OldestFirst,
        storyteller_engine::wire::ListOrder::NewestFirst,
    ] {
        let mut seen: Vec<JobId> = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list(JobFilter {
                    order,
                    after,
                    limit: Some(4),
                    ..JobFilter::default()
                })
                .await
                .unwrap();
            assert!(page.len() <= 4);
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            seen.extend(page.iter().map(|job| job.id));
            // A job added while paging comes after the pages already read (oldest first) or
            // is not among them (newest first): never a repeat.
            if seen.len() == 8 {
                store.enqueue(jobs("late-", 1)).await.unwrap();
            }
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{order:?}: a job was listed twice"
        );
        let mut expected: Vec<JobId> = all.iter().map(|job| job.id).collect();
        if order == storyteller_engine::wire::ListOrder::NewestFirst {
            expected.reverse();
        }
        let listed: Vec<JobId> = seen
            .iter()
            .copied()
            .filter(|id| expected.contains(id))
            .collect();
        assert_eq!(listed, expected, "{order:?}: out of order or missing");
    }
}

pub async fn a_paused_storyteller_waits_while_the_others_go_on(q: &dyn Queue) {
    use storyteller_engine::store::StorytellerPause;
    let store = q.store();
    store
        .enqueue(vec![
            crate::fixtures::job_for("gemini", "g1.mp4", "g1"),
            crate::fixtures::job_for("gemini", "g2.mp4", "g2"),
            job("s1.mp4", "s1"),
        ])
        .await
        .unwrap();
    store
        .set_storyteller_paused(
            "gemini".into(),
            Some(StorytellerPause {
                kind: storyteller_engine::wire::PauseKind::Auth,
                reason: "the key was refused".into(),
                until_ms: None,
            }),
        )
        .await
        .unwrap();
    let claimed = store.claim("w", 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].storyteller, "scripted");
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.paused, None, "the queue as a whole goes on");
    assert_eq!(stats.paused_storytellers.len(), 1);
    assert_eq!(stats.paused_storytellers[0].storyteller, "gemini");
    store
        .set_storyteller_paused("gemini".into(), None)
        .await
        .unwrap();
    assert_eq!(store.claim("w", 10, LEASE).await.unwrap().len(), 2);
    assert!(store.stats().await.unwrap().paused_storytellers.is_empty());
}

pub async fn twins_claimed_by_racing_claimers_are_told_once(q: &dyn Queue) {
    let store = q.store();
    let other = q.another().await;
    // Twenty contents, each queued three times (three people dropped the same clips).
    let mut added = Vec::new();
    for copy in 0..3 {
        let batch: Vec<_> = (0..20)
            .map(|i| job(&format!("copy{copy}-{i}.mp4"), &format!("clip-{i}")))
            .collect();
        added.extend(store.enqueue(batch).await.unwrap().jobs());
    }
    // Two machines claim as fast as they can, both at once.
    let claim_all = |store: Arc<dyn JobStore>, owner: &'static str| async move {
        let mut claimed = Vec::new();
        for _ in 0..30 {
            claimed.extend(store.claim(owner, 3, LEASE).await.unwrap());
        }
        claimed
    };
    let (a, b) = tokio::join!(
        tokio::spawn(claim_all(store.clone(), "machine-a")),
        tokio::spawn(claim_all(other.clone(), "machine-b")),
    );
    let running: Vec<_> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    let mut contents: Vec<&str> = running
        .iter()
        .map(|job| job.content_hash.as_str())
        .collect();
    contents.sort_unstable();
    let claimed = contents.len();
    contents.dedup();
    assert_eq!(
        claimed,
        contents.len(),
        "a content was being told twice at once"
    );
    assert_eq!(claimed, 20, "every content is being told once");
    // Told: every twin takes its story from the cache, none is told again.
    for job in &running {
        let owner = job.lease_owner.clone().unwrap();
        store
            .finish(job.id, &owner, succeeded("told once"))
            .await
            .unwrap();
    }
    assert!(store.claim("w", 100, LEASE).await.unwrap().is_empty());
    assert!(other.claim("w", 100, LEASE).await.unwrap().is_empty());
    let stats = store.stats().await.unwrap();
    assert_eq!((stats.succeeded, stats.queued), (60, 0));
    assert_eq!(stats.cache_hits, 40);
}

pub async fn a_vanished_worker_is_seen_gone_by_another_process_and_its_jobs_reclaimed_at_once(
    q: &dyn Queue,
) {
    let store = q.store();
    let elsewhere = q.another().await;
    store.enqueue(jobs("v", 3)).await.unwrap();
    let worker = elsewhere.register_worker("doomed").await.unwrap();
    let held = elsewhere.claim("doomed", 2, LEASE).await.unwrap();
    assert_eq!(held.len(), 2);
    // Alive: known by every process, with what it holds; its jobs are not reclaimed.
    let workers = store.workers().await.unwrap();
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(workers[0].owner, "doomed");
    let mut holding = workers[0].running.clone();
    holding.sort();
    let mut expected: Vec<JobId> = held.iter().map(|job| job.id).collect();
    expected.sort();
    assert_eq!(holding, expected);
    assert!(store.reclaim(5).await.unwrap().is_empty());
    assert_eq!(store.stranded_jobs().await.unwrap(), 0);
    // Gone without a word (killed): seen within moments, long before its lease runs out.
    drop(worker);
    drop(elsewhere);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while store.stranded_jobs().await.unwrap() != 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the vanished worker's jobs were not seen stranded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut reclaimed = store.reclaim(5).await.unwrap();
    reclaimed.sort();
    assert_eq!(reclaimed, expected);
    assert!(store.workers().await.unwrap().is_empty());
    assert_eq!(store.claim("heir", 5, LEASE).await.unwrap().len(), 3);

    // A clean stop leaves nothing to reclaim and no worker listed.
    let worker = store.register_worker("tidy").await.unwrap();
    assert_eq!(store.workers().await.unwrap().len(), 1);
    worker.stop().await;
    assert!(store.workers().await.unwrap().is_empty());
}

pub async fn only_the_worker_holding_a_job_changes_it(q: &dyn Queue) {
    let store = q.store();
    let a = store.enqueue(jobs("h", 1)).await.unwrap().only();
    store.claim("first", 1, LEASE).await.unwrap();
    // Its lease runs out; another worker takes it up.
    q.advance(LEASE + Duration::from_secs(1)).await;
    assert_eq!(store.reclaim(5).await.unwrap(), vec![a.id]);
    assert_eq!(store.claim("second", 1, LEASE).await.unwrap().len(), 1);
    // The first worker wakes up: its heartbeat, report and finish change nothing.
    assert!(store.heartbeat("first", LEASE).await.unwrap().is_empty());
    store
        .report(a.id, "first", storyteller_engine::job::Stage::Writing, 0.9)
        .await
        .unwrap();
    assert!(store
        .finish(a.id, "first", succeeded("stale"))
        .await
        .is_err());
    let job = store.get(a.id).await.unwrap();
    assert_eq!(job.state, JobState::Running);
    assert_eq!(job.lease_owner.as_deref(), Some("second"));
    assert!(job.progress < 0.9);
    let done = store
        .finish(a.id, "second", succeeded("fresh"))
        .await
        .unwrap();
    assert_eq!(done.story.as_deref(), Some("fresh"));
}
