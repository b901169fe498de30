//! The engine facade as front ends use it: adding files and folders, validation, events in the
//! wire shape, cancel, and changes made by another process on the same home.

use crate::fixtures::{fast_config, registry_of, Scripted};
use rand::RngExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use storyteller_engine::job::Usage;
use storyteller_engine::pool::RunUntil;
use storyteller_engine::storyteller::{
    BoxFuture, StoryError, StoryRequest, StorySink, Storyteller, StorytellerRegistry,
};
use storyteller_engine::wire::{AddOptions, AddOutcome, ListQuery};
use storyteller_engine::{Engine, EngineError, EngineOptions, Event, JobId, JobState};
use tokio::time::Instant;

/// An engine on `home` with these storytellers and fast timings.
async fn engine_with(home: &Path, storytellers: StorytellerRegistry) -> Engine {
    Engine::open(EngineOptions {
        home: Some(home.to_path_buf()),
        pool: fast_config(3),
        storytellers: Some(storytellers),
        ..EngineOptions::default()
    })
    .await
    .unwrap()
}

async fn scripted_engine(home: &Path, teller: Arc<Scripted>) -> Engine {
    let engine = engine_with(home, registry_of(teller)).await;
    let mut settings = engine.settings();
    settings.storyteller = "scripted".into();
    engine.update_settings(settings).await.unwrap();
    engine
}

/// `n` small files with video names in `dir` (the scripted storyteller never opens them).
fn files(dir: &Path, prefix: &str, n: usize) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let path = dir.join(format!("{prefix}{i:05}.mp4"));
            std::fs::write(&path, format!("not really a video {prefix} {i}")).unwrap();
            path
        })
        .collect()
}

fn outcomes(report: &storyteller_engine::wire::AddReport) -> Vec<AddOutcome> {
    report.entries.iter().map(|e| e.outcome).collect()
}

/// Adds `videos` with the settings' choices and works the queue until it is empty.
async fn add_and_tell(engine: &Engine, videos: Vec<std::path::PathBuf>) {
    engine
        .add(videos, AddOptions::default(), |_| {})
        .await
        .unwrap();
    engine
        .run(RunUntil::Empty, std::future::pending())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_folder_twice_reports_what_is_already_there_and_again_adds_it_anyway() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dir.path().join("videos");
    files(&videos, "v", 3);
    std::fs::write(videos.join("notes.txt"), "not a video").unwrap();
    let engine =
        scripted_engine(&dir.path().join("home"), Scripted::sleeping(Duration::ZERO)).await;

    let first = engine
        .add(vec![videos.clone()], AddOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(
        outcomes(&first),
        [
            AddOutcome::Queued,
            AddOutcome::Queued,
            AddOutcome::Queued,
            AddOutcome::Skipped
        ]
    );
    assert!(first.batch_id.is_some());
    let again = engine
        .add(vec![videos.clone()], AddOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(
        outcomes(&again)[..3],
        [AddOutcome::AlreadyAdded; 3],
        "{again:#?}"
    );
    assert_eq!(again.batch_id, None, "no batch for no new jobs");
    let first_ids: Vec<JobId> = first.jobs().map(|j| j.id).collect();
    let again_ids: Vec<JobId> = again.jobs().map(|j| j.id).collect();
    assert_eq!(first_ids, again_ids, "already added names the job it has");
    assert_eq!(engine.stats().await.unwrap().total(), 3);

    // Told, they are still there: a done job counts as much as a queued one.
    engine
        .run(RunUntil::Empty, std::future::pending())
        .await
        .unwrap();
    let told = engine
        .add(vec![videos.clone()], AddOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(outcomes(&told)[..3], [AddOutcome::AlreadyAdded; 3]);

    // A file changed since it was added is a new file.
    std::fs::write(videos.join("v00001.mp4"), "edited, and longer than before").unwrap();
    let edited = engine
        .add(vec![videos.clone()], AddOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(
        outcomes(&edited)[..3],
        [
            AddOutcome::AlreadyAdded,
            AddOutcome::AlreadyAdded,
            AddOutcome::Queued
        ]
    );

    let forced = engine
        .add(
            vec![videos],
            AddOptions {
                again: true,
                ..AddOptions::default()
            },
            |_| {},
        )
        .await
        .unwrap();
    // Asked for on purpose: new jobs, whose stories come from the cache.
    assert_eq!(forced.new_jobs().count(), 3, "{forced:#?}");
    assert_eq!(engine.stats().await.unwrap().total(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_storyteller_preset_or_model_is_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let videos = files(&dir.path().join("videos"), "v", 1);
    let engine =
        scripted_engine(&dir.path().join("home"), Scripted::sleeping(Duration::ZERO)).await;
    let ask = |options: AddOptions| {
        let engine = engine.clone();
        let videos = videos.clone();
        async move { engine.add(videos, options, |_| {}).await.unwrap_err() }
    };
    let model = ask(AddOptions {
        model: Some("gpt-9".into()),
        ..AddOptions::default()
    })
    .await;
    assert!(matches!(model, EngineError::UnknownModel { .. }), "{model}");
    assert_eq!(
        model.to_string(),
        "storyteller 'scripted' has no model 'gpt-9' (available: test-model)"
    );
    assert!(model.is_usage());
    let preset = ask(AddOptions {
        preset: Some("epic".into()),
        ..AddOptions::default()
    })
    .await;
    assert_eq!(preset.code(), "unknown_preset");
    let teller = ask(AddOptions {
        storyteller: Some("gemini-9".into()),
        ..AddOptions::default()
    })
    .await;
    assert_eq!(teller.code(), "unknown_storyteller");
    assert_eq!(engine.stats().await.unwrap().total(), 0);
    // The settings cannot name them either.
    let mut settings = engine.settings();
    settings.model = Some("gpt-9".into());
    assert_eq!(
        engine.update_settings(settings).await.unwrap_err().code(),
        "unknown_model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wishes_reach_the_storyteller_and_each_is_a_story_of_its_own_never_paid_twice() {
    let dir = tempfile::tempdir().unwrap();
    let videos = files(&dir.path().join("videos"), "v", 1);
    // The story says what was asked, so each wish visibly gets its own.
    let teller = Scripted::new(|request, _| {
        let style = request.style.clone();
        Box::pin(async move {
            Ok(format!(
                "A story [{}] {}",
                style.describe(),
                style.prompt.unwrap_or_default()
            ))
        })
    });
    let engine = scripted_engine(&dir.path().join("home"), teller.clone()).await;
    let french = |again: bool| AddOptions {
        language: Some(" French ".into()),
        words: Some(120),
        prompt: Some("Call the dog Rex.".into()),
        again,
        ..AddOptions::default()
    };
    let tell = |options: AddOptions| {
        let engine = engine.clone();
        let videos = videos.clone();
        async move {
            let report = engine.add(videos, options, |_| {}).await.unwrap();
            engine
                .run(RunUntil::Empty, std::future::pending())
                .await
                .unwrap();
            report
        }
    };

    let plain = tell(AddOptions::default()).await;
    assert_eq!(outcomes(&plain), [AddOutcome::Queued]);
    let wished = tell(french(false)).await;
    assert_eq!(outcomes(&wished), [AddOutcome::Queued], "{wished:#?}");
    let job = wished.jobs().next().unwrap().clone();
    let job = engine.get(&job.id.to_string()).await.unwrap();
    assert_eq!(job.style.language.as_deref(), Some("French"));
    assert_eq!(
        job.story.as_deref(),
        Some("A story [in French, about 120 words, own instructions] Call the dog Rex.")
    );
    assert_eq!(teller.calls.lock().unwrap().len(), 2);

    // The same wishes again are the job there is; English is what stories are written in.
    assert_eq!(
        outcomes(&tell(french(false)).await),
        [AddOutcome::AlreadyAdded]
    );
    let english = tell(AddOptions {
        language: Some("en-GB".into()),
        ..AddOptions::default()
    })
    .await;
    assert_eq!(outcomes(&english), [AddOutcome::AlreadyAdded]);
    // Asked for anew, the story told with those wishes comes from the cache, unpaid.
    assert_eq!(outcomes(&tell(french(true)).await), [AddOutcome::Cached]);
    // Another language is another story.
    let german = tell(AddOptions {
        language: Some("German".into()),
        ..AddOptions::default()
    })
    .await;
    assert_eq!(outcomes(&german), [AddOutcome::Queued]);
    assert_eq!(teller.calls.lock().unwrap().len(), 3);

    // Retelling keeps the wishes.
    let retold = engine
        .retell(&job.id.to_string(), "narrative")
        .await
        .unwrap();
    assert_eq!(outcomes(&retold), [AddOutcome::Cached]);
    assert_eq!(retold.jobs().next().unwrap().style, job.style);

    // A wish that cannot be kept is refused, naming why, before anything is stored.
    let total = engine.stats().await.unwrap().total();
    for (options, says) in [
        (
            AddOptions {
                words: Some(3),
                ..AddOptions::default()
            },
            "choose between 10 and 5000 words",
        ),
        (
            AddOptions {
                language: Some("French; more".into()),
                ..AddOptions::default()
            },
            "is not a language's name",
        ),
    ] {
        let refused = engine
            .add(videos.clone(), options, |_| {})
            .await
            .unwrap_err();
        assert_eq!(refused.code(), "invalid_argument");
        assert!(refused.to_string().contains(says), "{refused}");
    }
    assert_eq!(engine.stats().await.unwrap().total(), total);
}

#[tokio::test]
async fn the_offline_storyteller_refuses_wishes_it_cannot_keep_and_says_who_can() {
    let dir = tempfile::tempdir().unwrap();
    let videos = files(&dir.path().join("videos"), "v", 1);
    let engine = Engine::open(EngineOptions {
        home: Some(dir.path().join("home")),
        pool: fast_config(1),
        ..EngineOptions::default()
    })
    .await
    .unwrap();
    for (options, says) in [
        (
            AddOptions {
                language: Some("Français".into()),
                ..AddOptions::default()
            },
            "the offline storyteller writes in English only, not in Français",
        ),
        (
            AddOptions {
                prompt: Some("Make it rhyme.".into()),
                ..AddOptions::default()
            },
            "cannot follow instructions of your own",
        ),
        (
            AddOptions {
                words: Some(300),
                ..AddOptions::default()
            },
            "writes each preset at its own length",
        ),
    ] {
        let options = AddOptions {
            storyteller: Some("offline".into()),
            ..options
        };
        let refused = engine
            .add(videos.clone(), options, |_| {})
            .await
            .unwrap_err();
        assert!(refused.is_usage());
        let words = refused.to_string();
        assert!(
            words.contains(says) && words.contains("choose an AI storyteller"),
            "{words}"
        );
    }
    // English, asked for in so many words, is what it writes anyway.
    let english = engine
        .add(
            videos,
            AddOptions {
                storyteller: Some("offline".into()),
                language: Some("English".into()),
                ..AddOptions::default()
            },
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(outcomes(&english), [AddOutcome::Queued]);
}

#[tokio::test]
async fn a_default_language_and_length_are_kept_by_the_storytellers_that_can() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineOptions {
        home: Some(dir.path().join("home")),
        pool: fast_config(1),
        ..EngineOptions::default()
    })
    .await
    .unwrap();
    engine
        .config_set("language", Some(" French "))
        .await
        .unwrap();
    engine.config_set("words", Some("250")).await.unwrap();
    assert_eq!(engine.settings().language.as_deref(), Some("French"));
    assert_eq!(engine.settings().words, Some(250));
    let entry = engine.config_get("language").unwrap();
    assert_eq!(entry.value.as_deref(), Some("French"));
    let style_of = |report: &storyteller_engine::wire::AddReport| {
        report.jobs().next().expect("a job").style.clone()
    };
    let add = |name: &str, options: AddOptions| {
        let engine = engine.clone();
        let video = files(&dir.path().join(name), name, 1);
        async move { engine.add(video, options, |_| {}).await }
    };

    // The offline storyteller (the default here) writes English at the preset's length: the
    // defaults do not refuse its videos.
    let offline = add("offline", AddOptions::default()).await.unwrap();
    assert_eq!(outcomes(&offline), [AddOutcome::Queued]);
    assert!(style_of(&offline).is_plain(), "{:?}", style_of(&offline));

    // An AI storyteller gets them, and what an add says comes first.
    let ollama = |more: AddOptions| AddOptions {
        storyteller: Some("ollama".into()),
        ..more
    };
    let style = style_of(&add("ai", ollama(AddOptions::default())).await.unwrap());
    assert_eq!(style.language.as_deref(), Some("French"));
    assert_eq!(style.words, Some(250));
    let asked = ollama(AddOptions {
        language: Some("English".into()),
        words: Some(80),
        ..AddOptions::default()
    });
    let style = style_of(&add("asked", asked).await.unwrap());
    assert_eq!(style.language, None, "English asked for in so many words");
    assert_eq!(style.words, Some(80));

    // Checked on the way in, in the words an add's wishes get.
    let refused = engine.config_set("words", Some("3")).await.unwrap_err();
    assert!(
        refused.to_string().contains("between 10 and 5000"),
        "{refused}"
    );
    let refused = engine
        .config_set("language", Some("French; more"))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("not a language's name"),
        "{refused}"
    );
    // English and `none` put them back.
    engine
        .config_set("language", Some("english"))
        .await
        .unwrap();
    engine.config_set("words", Some("none")).await.unwrap();
    assert_eq!(engine.settings().language, None);
    assert_eq!(engine.settings().words, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_files_reach_a_subscriber_as_one_batch_event() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dir.path().join("videos");
    files(&videos, "v", 10_000);
    let engine =
        scripted_engine(&dir.path().join("home"), Scripted::sleeping(Duration::ZERO)).await;
    let mut events = engine.subscribe();
    let report = engine
        .add(vec![videos], AddOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.new_jobs().count(), 10_000);
    let mut seen = Vec::new();
    while let Some(envelope) = events.try_recv() {
        seen.push(envelope.event);
    }
    let added: Vec<&Event> = seen
        .iter()
        .filter(|e| matches!(e, Event::JobsAdded { .. }))
        .collect();
    assert_eq!(added.len(), 1, "one add, one event");
    assert_eq!(added[0].job_ids().len(), 10_000);
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Resync { .. })),
        "the subscriber lagged"
    );
    assert!(seen.len() < 10, "{} events for one add", seen.len());
}

/// Writes half a story and fails on its first attempt, then writes the whole story in pieces.
struct Stammering;

const PIECES: [&str; 4] = ["Once upon ", "a time, ", "in 🎬 Zürich, ", "it ended."];

impl Storyteller for Stammering {
    fn name(&self) -> &str {
        "stammering"
    }
    fn default_model(&self) -> &str {
        "v1"
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
            if sink.text().is_empty() && !FAILED_ONCE.swap(true, Ordering::SeqCst) {
                sink.write("Half a sto");
                sink.write("ry that will be dropped");
                return Err(StoryError::transient("the connection dropped"));
            }
            for piece in PIECES {
                sink.write(piece);
                tokio::task::yield_now().await;
            }
            Ok(Usage::default())
        })
    }
}

static FAILED_ONCE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_deltas_reassemble_the_story_exactly_across_a_retry() {
    let dir = tempfile::tempdir().unwrap();
    let videos = files(&dir.path().join("videos"), "s", 1);
    let engine = engine_with(&dir.path().join("home"), registry_of(Arc::new(Stammering))).await;
    let mut events = engine.subscribe();
    let report = engine
        .add(
            videos,
            AddOptions {
                storyteller: Some("stammering".into()),
                ..AddOptions::default()
            },
            |_| {},
        )
        .await
        .unwrap();
    let id = report.new_jobs().next().unwrap().id;
    engine
        .run(RunUntil::Empty, std::future::pending())
        .await
        .unwrap();

    // What a window does: keep the newest attempt's text, in UTF-16 units, checking offsets.
    let mut attempt = 0;
    let mut story: Vec<u16> = Vec::new();
    let mut dropped = 0;
    while let Some(envelope) = events.try_recv() {
        if let Event::StoryDelta {
            job_id,
            attempt: writer,
            offset,
            text,
        } = envelope.event
        {
            assert_eq!(job_id, id);
            if writer < attempt {
                continue;
            }
            if writer > attempt {
                dropped += story.len();
                attempt = writer;
                story.clear();
            }
            assert_eq!(offset as usize, story.len(), "a gap or an overlap");
            story.extend(text.encode_utf16());
        }
    }
    let stored = engine.get(&id.to_string()).await.unwrap();
    assert_eq!((stored.state, stored.attempts), (JobState::Succeeded, 2));
    assert!(dropped > 0, "the first attempt's text was never seen");
    assert_eq!(attempt, 2);
    assert_eq!(String::from_utf16(&story).unwrap(), stored.story.unwrap());
    assert_eq!(String::from_utf16(&story).unwrap(), PIECES.concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_job_running_in_this_process_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let videos = files(&dir.path().join("videos"), "long", 1);
    let teller = Scripted::sleeping(Duration::from_secs(600));
    let engine = scripted_engine(&dir.path().join("home"), teller.clone()).await;
    let report = engine
        .add(videos, AddOptions::default(), |_| {})
        .await
        .unwrap();
    let job = report.new_jobs().next().unwrap().clone();
    let runner = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.run(RunUntil::Empty, std::future::pending()).await })
    };
    let mut events = engine.subscribe();
    while teller.running.load(Ordering::SeqCst) == 0 {
        let _ = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
    }
    let cancelled_at = Instant::now();
    // By the short id, as a person types it.
    let cancelled = engine.cancel(&job.short_id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .expect("the run went on")
        .unwrap()
        .unwrap();
    assert!(cancelled_at.elapsed() < Duration::from_secs(1));
    assert_eq!(teller.running.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_taken_whole_by_prefix_or_by_short_id() {
    let dir = tempfile::tempdir().unwrap();
    let videos = files(&dir.path().join("videos"), "id", 2);
    let engine =
        scripted_engine(&dir.path().join("home"), Scripted::sleeping(Duration::ZERO)).await;
    let report = engine
        .add(videos, AddOptions::default(), |_| {})
        .await
        .unwrap();
    let jobs: Vec<_> = report.new_jobs().cloned().collect();
    for job in &jobs {
        let full = job.id.to_string();
        assert_eq!(engine.get(&full).await.unwrap().id, job.id);
        assert_eq!(engine.get(&full[..30]).await.unwrap().id, job.id);
        assert_eq!(engine.get(&job.short_id).await.unwrap().id, job.id);
        assert_eq!(
            engine.get(&job.short_id.to_uppercase()).await.unwrap().id,
            job.id
        );
    }
    // Jobs added together share their first digits: a short start names neither.
    let error = engine.get(&jobs[0].id.to_string()[..4]).await.unwrap_err();
    assert_eq!(error.code(), "ambiguous_job_id");
    let page = engine
        .list(ListQuery {
            limit: Some(1),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.jobs.len(), 1);
    assert_eq!(page.next, Some(jobs[0].id));
}

/// What one process's subscriber hears of another process's change, and how long it took.
async fn heard_within(
    events: &mut storyteller_engine::Subscription,
    limit: Duration,
    what: &str,
    mut matches: impl FnMut(&Event) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(envelope)) if matches(&envelope.event) => return started.elapsed(),
            Ok(Some(_)) => {}
            Ok(None) => panic!("the engine went away"),
            Err(_) => panic!("{what} was not heard within {limit:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_processs_add_pause_and_cancel_reach_this_process_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let videos = files(&dir.path().join("videos"), "x", 50);
    // Two engines on one home are two processes to each other: two connections, two writers,
    // two change-log cursors.
    let here = scripted_engine(&home, Scripted::sleeping(Duration::ZERO)).await;
    let there = scripted_engine(&home, Scripted::sleeping(Duration::ZERO)).await;
    let mut events = here.subscribe();
    let limit = Duration::from_secs(1);
    let mut rng = rand::rng();
    let mut slowest = Duration::ZERO;
    for (round, video) in videos.into_iter().enumerate() {
        // Random gaps, so notices land at every point of the follower's cycle.
        let gap = || Duration::from_millis(rand::rng().random_range(0..40));
        tokio::time::sleep(gap()).await;
        let report = there
            .add(vec![video], AddOptions::default(), |_| {})
            .await
            .unwrap();
        let id = report.new_jobs().next().unwrap().id;
        let took = heard_within(
            &mut events,
            limit,
            "an add",
            |e| matches!(e, Event::JobsAdded { jobs, .. } if jobs.iter().any(|j| j.id == id)),
        )
        .await;
        slowest = slowest.max(took);

        tokio::time::sleep(gap()).await;
        let reason = format!("round {round}");
        there.pause(reason.clone()).await.unwrap();
        let took = heard_within(
            &mut events,
            limit,
            "a pause",
            |e| matches!(e, Event::QueuePaused { reason: r } if *r == reason),
        )
        .await;
        slowest = slowest.max(took);

        if rng.random_bool(0.5) {
            tokio::time::sleep(gap()).await;
        }
        there.cancel(&id.to_string()).await.unwrap();
        let took = heard_within(&mut events, limit, "a cancel", |e| {
            matches!(e, Event::JobFinished { job_id, state: JobState::Cancelled, .. } if *job_id == id)
        })
        .await;
        slowest = slowest.max(took);

        there.resume().await.unwrap();
        let took = heard_within(&mut events, limit, "a resume", |e| {
            matches!(e, Event::QueueResumed)
        })
        .await;
        slowest = slowest.max(took);
    }
    eprintln!("slowest notice from the other process: {slowest:?}");
    // This process's own changes are not echoed back as if they came from elsewhere.
    let mut own = here.subscribe();
    here.pause("here").await.unwrap();
    let mut pauses = 0;
    let settle = Instant::now() + Duration::from_millis(300);
    while let Ok(Some(envelope)) = tokio::time::timeout_at(settle, own.recv()).await {
        pauses += usize::from(matches!(envelope.event, Event::QueuePaused { .. }));
    }
    assert_eq!(pauses, 1, "a change made here was announced twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_saved_by_another_process_are_in_force_here_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    // The built-in storytellers, built from the settings, as the window and the command have.
    let open = |concurrency| {
        Engine::open(EngineOptions {
            home: Some(home.clone()),
            pool: fast_config(3),
            concurrency,
            ..EngineOptions::default()
        })
    };
    let window = open(None).await.unwrap();
    let fixed = open(Some(2)).await.unwrap();
    let command = open(None).await.unwrap();
    let gemini_model = |engine: &Engine| {
        engine
            .storytellers()
            .into_iter()
            .find(|s| s.name == "gemini")
            .unwrap()
            .default_model
    };
    assert_eq!(gemini_model(&window), "gemini-flash-latest");
    let mut heard = window.subscribe();
    let mut own = command.subscribe();
    command
        .config_set("gemini.model", Some("gemini-pro-latest"))
        .await
        .unwrap();
    command.config_set("concurrency", Some("7")).await.unwrap();
    command.config_set("preset", Some("summary")).await.unwrap();
    let limit = Duration::from_secs(2);
    heard_within(&mut heard, limit, "the new settings", |e| {
        matches!(e, Event::SettingsChanged)
    })
    .await;
    // Saves in quick succession may be read as one: wait until the last is in force.
    let deadline = Instant::now() + limit;
    while window.settings().preset.as_deref() != Some("summary") {
        assert!(
            Instant::now() < deadline,
            "the last save never reached the window"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(gemini_model(&window), "gemini-pro-latest");
    assert_eq!(window.concurrency(), 7);
    assert_eq!(window.settings(), command.settings());
    // An engine opened with a concurrency of its own keeps it, and takes the rest.
    let deadline = Instant::now() + limit;
    while gemini_model(&fixed) != "gemini-pro-latest" {
        assert!(
            Instant::now() < deadline,
            "the other engine never took the model"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fixed.concurrency(), 2);
    // The engine that saved announced each save once, not again when its own note came back.
    let settle = Instant::now() + Duration::from_millis(400);
    let mut saves = 0;
    while let Ok(Some(envelope)) = tokio::time::timeout_at(settle, own.recv()).await {
        saves += usize::from(matches!(envelope.event, Event::SettingsChanged));
    }
    assert_eq!(saves, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_settings_file_out_of_range_does_not_lock_the_app_out() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("settings.json"), r#"{ "concurrency": 0 }"#).unwrap();
    let engine = engine_with(&home, registry_of(Scripted::sleeping(Duration::ZERO))).await;
    assert_eq!(engine.concurrency(), 3);
    // And the settings can be mended through the engine.
    let mut settings = engine.settings();
    settings.storyteller = "scripted".into();
    settings.concurrency = 5;
    engine.update_settings(settings).await.unwrap();
    assert_eq!(engine.concurrency(), 5);
    let mut bad = engine.settings();
    bad.concurrency = 0;
    assert_eq!(
        engine.update_settings(bad).await.unwrap_err().code(),
        "invalid_argument"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_reports_files_and_bytes_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let videos = dir.path().join("videos");
    let paths = files(&videos, "b", 5);
    let bytes: u64 = paths
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let engine =
        scripted_engine(&dir.path().join("home"), Scripted::sleeping(Duration::ZERO)).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    engine
        .add(vec![videos], AddOptions::default(), move |progress| {
            record.lock().unwrap().push(progress);
        })
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 5);
    assert!(seen
        .iter()
        .all(|p| p.total == 5 && p.total_bytes == bytes as f64));
    let last = seen.iter().max_by_key(|p| p.hashed).unwrap();
    assert_eq!((last.hashed, last.hashed_bytes), (5, bytes as f64));
}

/// The text of the file at `path` once it is there (it is written off the worker).
async fn file_once_written(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} was never written",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_is_written_beside_its_video_when_the_settings_ask_and_a_file_there_is_kept() {
    use storyteller_engine::export::ExportFormat;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("videos");
    let videos = files(&folder, "b", 2);
    let teller = Scripted::telling(|name| format!("The story of {name}."));
    let engine = scripted_engine(&dir.path().join("home"), teller).await;
    let mut settings = engine.settings();
    settings.save_beside_video = true;
    settings.beside_formats = vec![ExportFormat::Markdown, ExportFormat::Json];
    engine.update_settings(settings).await.unwrap();
    // Someone's own notes under the name of the second video's story: not to be replaced.
    let kept = folder.join("b00001.story.md");
    std::fs::write(&kept, "my own notes").unwrap();
    add_and_tell(&engine, videos).await;

    for (file, video) in [
        ("b00000.story.md", "b00000"),
        ("b00000.story.json", "b00000"),
    ] {
        let text = file_once_written(&folder.join(file)).await;
        assert!(
            text.contains(&format!("The story of {video}.mp4.")),
            "{file}: {text}"
        );
    }
    let second = file_once_written(&folder.join("b00001.story.json")).await;
    assert!(second.contains("The story of b00001.mp4."), "{second}");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "my own notes");
    // Nothing half-written is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_story_exports_into_one_word_or_pdf_file() {
    use storyteller_engine::export::ExportFormat;
    use storyteller_engine::wire::ExportQuery;
    let dir = tempfile::tempdir().unwrap();
    let videos = files(&dir.path().join("videos"), "e", 2);
    let teller = Scripted::telling(|name| format!("Il était une fois {name}.\n\nПривет."));
    let engine = scripted_engine(&dir.path().join("home"), teller).await;
    add_and_tell(&engine, videos).await;

    let (docx, count) = engine
        .export(ExportFormat::Docx, ExportQuery::default())
        .await
        .unwrap();
    assert_eq!(count, 2);
    assert!(docx.starts_with(b"PK"), "a Word document is a zip archive");

    let path = dir.path().join("stories.pdf");
    let count = engine
        .export_to(&path, ExportFormat::Pdf, ExportQuery::default())
        .await
        .unwrap();
    assert_eq!(count, 2);
    let pdf = std::fs::read(&path).unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    assert!(!dir.path().join("stories.pdf.part").exists());
    let text = std::process::Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .unwrap_or_else(|e| panic!("pdftotext could not run ({e}): install poppler-utils"));
    let text = String::from_utf8(text.stdout).unwrap();
    for expected in [
        "Il était une fois e00000.mp4.",
        "Il était une fois e00001.mp4.",
        "Привет.",
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text}");
    }
}
