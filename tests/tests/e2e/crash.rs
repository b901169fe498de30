//! Stopping a runner: `kill -9` in the middle of the work, then a restart that reclaims the
//! interrupted jobs at once (the runner lock files, not the 30 s lease) and tells every video
//! exactly once, with `storyteller workers` knowing the runner alive and then gone; and a clean SIGTERM that puts running jobs back without counting the attempt.

use crate::support::{count_in, summary, text, Look, Sandbox, RUN_DEADLINE};
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The lease a claimed job holds without a heartbeat (`PoolConfig::default().lease`).
const LEASE: Duration = Duration::from_secs(30);

fn ids_in(jobs: &[Value], state: &str) -> Vec<String> {
    jobs.iter()
        .filter(|j| j["state"] == state)
        .map(|j| text(j, "id").to_owned())
        .collect()
}

#[test]
fn a_restart_after_kill_9_reclaims_at_once_and_tells_every_video_exactly_once() {
    let sandbox = Sandbox::new();
    let videos = sandbox.queue_videos(12, 5);

    let runner = sandbox.spawn(&["run", "--concurrency", "3"]);
    let before_kill =
        sandbox.wait_for_jobs(RUN_DEADLINE, "two succeeded jobs and one running", |jobs| {
            count_in(jobs, "succeeded") >= 2 && count_in(jobs, "running") >= 1
        });
    // The queue knows its worker: this runner, on this machine, and what it holds.
    let workers = sandbox.ok(&["workers", "--json"]).json();
    let workers = workers.as_array().expect("a list of workers");
    assert_eq!(workers.len(), 1, "{workers:#?}");
    assert_eq!(workers[0]["pid"], runner.pid(), "{workers:#?}");
    assert!(!text(&workers[0], "machine").is_empty());
    let held = workers[0]["running"].as_array().expect("its jobs");
    assert!(
        !held.is_empty() && held.iter().all(|job| job["state"] == "running"),
        "{workers:#?}"
    );
    let killed = runner.kill_hard();
    assert_eq!(
        killed.code, None,
        "the runner was not killed by a signal:\n{killed}"
    );
    // Killed: no longer a live worker, whatever its leases say.
    let workers = sandbox.ok(&["workers", "--json"]).json();
    assert_eq!(workers, serde_json::json!([]), "{workers:#?}");
    let listed = sandbox.ok(&["workers"]);
    assert!(listed.stderr.contains("no worker is running"), "{listed}");

    // The dead runner's claims are still in the database, and `stats` says they wait for a
    // runner rather than pretend they are being told.
    let stats = sandbox.ok(&["stats"]);
    assert!(
        stats.stdout.contains("left by a runner that stopped"),
        "{stats}"
    );
    let after_kill = sandbox.jobs();
    let interrupted = ids_in(&after_kill, "running");
    assert!(
        !interrupted.is_empty(),
        "no job was left running by the killed runner: {:#?} (just before: {:#?})",
        summary(&after_kill),
        summary(&before_kill)
    );
    let succeeded_before = ids_in(&after_kill, "succeeded");

    let restart_at = Instant::now();
    let restart = sandbox.spawn(&["run", "--until-empty", "--concurrency", "3"]);
    // Reclaimed (queued again, or claimed by the new runner as attempt 2), not left to the lease:
    // the wait is a third of the lease, so a runner that waited for the lease fails it. How long
    // the rest of the run then takes depends on the machine's load, so it is not timed.
    let reclaimed = sandbox.wait_for_jobs(
        LEASE / 3,
        "the killed runner's jobs to be reclaimed",
        |jobs| {
            interrupted.iter().all(|id| {
                let job = jobs.iter().find(|j| j["id"] == id.as_str()).expect("job");
                job["state"] != "running" || job["attempts"] == 2
            })
        },
    );
    let reclaim_took = restart_at.elapsed();
    assert!(
        reclaim_took < Duration::from_secs(5),
        "reclaiming took {reclaim_took:?}: {:#?}",
        summary(&reclaimed)
    );
    let out = restart.wait(RUN_DEADLINE);
    assert_eq!(out.code, Some(0), "the restarted runner failed:\n{out}");

    let jobs = sandbox.jobs();
    assert_eq!(jobs.len(), videos.len(), "{:#?}", summary(&jobs));
    assert_eq!(
        count_in(&jobs, "succeeded"),
        videos.len(),
        "not every video was told: {:#?}",
        summary(&jobs)
    );
    let sources: HashSet<&str> = jobs.iter().map(|j| text(j, "source")).collect();
    assert_eq!(sources.len(), videos.len(), "a video was told twice");
    for video in &videos {
        assert!(sources.contains(video.to_str().expect("UTF-8")));
    }
    for job in &jobs {
        let id = text(job, "id");
        assert!(job["error"].is_null(), "{job:#}");
        assert_eq!(job["cached"], false, "{job:#}");
        let expected_attempts = if interrupted.iter().any(|i| i == id) {
            2
        } else {
            1
        };
        assert_eq!(
            job["attempts"], expected_attempts,
            "attempts of {}: {job:#}",
            job["file"]
        );
        if succeeded_before.iter().any(|s| s == id) {
            let before = after_kill.iter().find(|j| j["id"] == id).expect("job");
            assert_eq!(
                job["story"], before["story"],
                "a finished story was rewritten"
            );
            assert_eq!(job["finishedAt"], before["finishedAt"]);
        }
    }
    let stats = sandbox.stats();
    assert_eq!(stats["succeeded"], videos.len(), "{stats:#}");
    assert_eq!(stats["running"], 0, "{stats:#}");
    // The dead runner's lock file was taken over and removed; the restart's own is released.
    let runners: Vec<_> = std::fs::read_dir(sandbox.home().join("storyteller.db-runners"))
        .expect("runners folder")
        .collect();
    assert!(runners.len() <= 1, "stale runner lock files: {runners:?}");
    sandbox.assert_database_intact();
}

#[test]
fn sigterm_stops_promptly_and_puts_running_jobs_back_without_counting_them() {
    let sandbox = Sandbox::new();
    let videos = sandbox.queue_videos(6, 6);

    let runner = sandbox.spawn(&["run", "--concurrency", "3"]);
    let seen = sandbox.wait_for_jobs(RUN_DEADLINE, "jobs running", |jobs| {
        count_in(jobs, "running") >= 2
    });
    let running_when_stopped = ids_in(&seen, "running");
    let stop_at = Instant::now();
    runner.signal("TERM");
    let out = runner.wait(Duration::from_secs(20));
    let stop_took = stop_at.elapsed();
    assert_eq!(out.code, Some(0), "SIGTERM is a clean stop:\n{out}");
    assert!(
        stop_took < Duration::from_secs(10),
        "stopping took {stop_took:?}"
    );
    assert!(out.stderr.contains("stopping"), "{out}");

    let jobs = sandbox.jobs();
    assert_eq!(count_in(&jobs, "running"), 0, "{:#?}", summary(&jobs));
    for job in &jobs {
        match text(job, "state") {
            "succeeded" => assert_eq!(job["attempts"], 1, "{job:#}"),
            "queued" => {
                assert_eq!(
                    job["attempts"], 0,
                    "a clean stop counted an attempt: {job:#}"
                );
                assert_eq!(job["stage"], "waiting", "{job:#}");
                assert!(job["error"].is_null(), "{job:#}");
            }
            other => panic!("after a clean stop a job is {other}: {job:#}"),
        }
    }
    let put_back = running_when_stopped
        .iter()
        .filter(|id| {
            let job = jobs.iter().find(|j| j["id"] == id.as_str()).expect("job");
            job["state"] == "queued"
        })
        .count();
    assert!(
        put_back >= 1,
        "none of the jobs running at SIGTERM went back to the queue: {:#?}",
        summary(&jobs)
    );

    sandbox.work_queue();
    let jobs = sandbox.jobs();
    assert_eq!(
        count_in(&jobs, "succeeded"),
        videos.len(),
        "{:#?}",
        summary(&jobs)
    );
    assert!(
        jobs.iter().all(|j| j["attempts"] == 1),
        "the interrupted attempt was counted: {:#?}",
        summary(&jobs)
    );
    sandbox.assert_database_intact();
}

/// The children (pid, command name) of the process `parent`, from `/proc`.
fn children_of(parent: u32) -> Vec<(u32, String)> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid …"; comm may hold spaces, so split after its ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let name = head
            .split_once('(')
            .map(|(_, n)| n)
            .unwrap_or("")
            .to_owned();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            children.push((pid, name));
        }
    }
    children
}

/// Whether process `pid` still runs (a zombie waiting to be reaped does not).
fn still_running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with(['R', 'S', 'D']))
        })
        .unwrap_or(false)
}

#[test]
fn no_ffmpeg_outlives_a_runner_killed_with_sigkill() {
    let sandbox = Sandbox::new();
    sandbox.queue_videos(2, 3);
    // A probe that hangs without a word: nothing it writes can fail and end it once its parent
    // is gone, as a real ffmpeg busy on a long video would not either.
    let hanging = sandbox.videos().join("ffprobe-that-hangs");
    std::fs::write(&hanging, "#!/bin/sh\nexec sleep 300\n").expect("writing the fake ffprobe");
    std::fs::set_permissions(
        &hanging,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("making the fake ffprobe executable");
    let runner = sandbox.spawn_with_env(
        &[("STORYTELLER_FFPROBE", hanging.to_str().expect("UTF-8"))],
        &["run", "--concurrency", "2"],
    );
    let pid = runner.pid();
    let deadline = Instant::now() + RUN_DEADLINE;
    let children = loop {
        let tools = children_of(pid);
        if tools.len() >= 2 {
            break tools;
        }
        assert!(Instant::now() < deadline, "no ffmpeg child ever started");
        std::thread::sleep(Duration::from_millis(50));
    };
    runner.kill_hard();
    let gone_by = Instant::now() + Duration::from_secs(3);
    loop {
        let orphans: Vec<&(u32, String)> = children
            .iter()
            .filter(|(child, _)| still_running(*child))
            .collect();
        if orphans.is_empty() {
            break;
        }
        assert!(
            Instant::now() < gone_by,
            "children of the killed runner still running: {orphans:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_is_a_clean_stop_that_counts_no_attempt() {
    let sandbox = Sandbox::new();
    sandbox.queue_videos(3, 30);
    let runner = sandbox.spawn(&["run", "--concurrency", "3"]);
    sandbox.wait_for_jobs(RUN_DEADLINE, "jobs running", |jobs| {
        count_in(jobs, "running") >= 2
    });
    runner.signal("HUP");
    let out = runner.wait(Duration::from_secs(20));
    assert_eq!(out.code, Some(0), "SIGHUP is a clean stop:\n{out}");
    let jobs = sandbox.jobs();
    assert_eq!(count_in(&jobs, "running"), 0, "{:#?}", summary(&jobs));
    assert!(
        jobs.iter()
            .filter(|j| j["state"] == "queued")
            .all(|j| j["attempts"] == 0 && j["error"].is_null()),
        "a hang-up counted an attempt: {:#?}",
        summary(&jobs)
    );
    sandbox.assert_database_intact();
}

#[test]
fn after_a_clean_exit_the_database_file_alone_holds_every_job() {
    let sandbox = Sandbox::new();
    let videos = sandbox.queue_videos(2, 3);
    sandbox.work_queue();
    let database = sandbox.database();
    let wal = database.with_file_name("storyteller.db-wal");
    let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        wal_bytes, 0,
        "the write-ahead log still holds {wal_bytes} bytes"
    );
    // A backup of the `.db` file and nothing else.
    let backup = Sandbox::new();
    std::fs::create_dir_all(backup.home()).expect("backup home");
    std::fs::copy(&database, backup.database()).expect("copying the database alone");
    let jobs = backup.jobs();
    assert_eq!(
        count_in(&jobs, "succeeded"),
        videos.len(),
        "{:#?}",
        summary(&jobs)
    );
    assert!(jobs.iter().all(|j| j["story"].is_string()), "{jobs:#?}");
}

#[test]
fn a_job_killed_after_its_decoding_passes_resumes_without_decoding_again() {
    let sandbox = Sandbox::new();
    sandbox.queue_videos(1, 20);
    // An ffmpeg that logs every run and takes its time over thumbnails, so the runner can be
    // killed after the passes (saved as a checkpoint) and before the story is done.
    let log = sandbox.videos().join("ffmpeg-runs.log");
    let wrapper = sandbox.videos().join("ffmpeg-logged");
    let real = which("ffmpeg");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\ncase \"$*\" in *.jpg.part*) sleep 0.5 ;; esac\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .expect("writing the ffmpeg wrapper");
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("making the wrapper executable");
    let env = [("STORYTELLER_FFMPEG", wrapper.to_str().expect("UTF-8"))];

    let runner = sandbox.spawn_with_env(&env, &["run"]);
    let deadline = Instant::now() + RUN_DEADLINE;
    let conn = rusqlite::Connection::open(sandbox.database()).expect("the database");
    loop {
        let saved: Option<String> = conn
            .query_row("SELECT checkpoint FROM jobs", [], |r| r.get(0))
            .expect("reading the checkpoint");
        if saved.is_some_and(|s| s.contains("\"passes\":{")) {
            break;
        }
        assert!(Instant::now() < deadline, "the passes were never saved");
        std::thread::sleep(Duration::from_millis(20));
    }
    runner.kill_hard();
    let jobs = sandbox.jobs();
    assert_eq!(
        count_in(&jobs, "running"),
        1,
        "killed too late: {:#?}",
        summary(&jobs)
    );

    let out = sandbox
        .spawn_with_env(&env, &["run", "--until-empty"])
        .wait(RUN_DEADLINE);
    assert_eq!(out.code, Some(0), "{out}");
    let runs = std::fs::read_to_string(&log).expect("the ffmpeg log");
    assert!(
        runs.lines().filter(|l| l.contains(".jpg.part")).count() > 1,
        "the restart ran no ffmpeg through the wrapper:\n{runs}"
    );
    let scene_passes = runs
        .lines()
        .filter(|l| l.contains("metadata=mode=print"))
        .count();
    let audio_passes = runs.lines().filter(|l| l.contains("ebur128")).count();
    assert_eq!(
        (scene_passes, audio_passes),
        (1, 1),
        "the passes ran again after the restart:\n{runs}"
    );
    let job = &sandbox.jobs()[0];
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(job["attempts"], 2, "{job:#}");
    assert!(text(job, "story").contains("analyser"), "{job:#}");
}

/// The full path of `program` on `PATH`.
fn which(program: &str) -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{program} is not on PATH"))
}

#[test]
fn fifteen_kills_at_random_moments_set_no_good_video_aside() {
    let sandbox = Sandbox::new();
    let folder = sandbox.videos().join("batch");
    std::fs::create_dir_all(&folder).expect("the batch folder");
    let videos: Vec<(PathBuf, Look)> = (0..40)
        .map(|i| {
            let seconds = 20 + u32::try_from(i * 13 % 41).expect("small");
            (
                folder.join(format!("take-{i:02}.mp4")),
                Look::varied(i, seconds),
            )
        })
        .collect();
    std::thread::scope(|scope| {
        for half in videos.chunks(20) {
            scope.spawn(move || {
                for (path, look) in half {
                    crate::support::make_video(path, *look);
                }
            });
        }
    });
    let (added, _, code) = sandbox.add(&[&folder], &[]);
    assert_eq!((added.len(), code), (40, Some(0)));

    // A fixed seed: the same "random" moments on every run of the test.
    let mut seed: u64 = 0x5eed_cafe;
    for kill in 0..15 {
        let runner = sandbox.spawn(&["run", "--concurrency", "3"]);
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let wait_ms = 1000 + (seed >> 33) % 3000;
        std::thread::sleep(Duration::from_millis(wait_ms));
        let out = runner.kill_hard();
        assert_eq!(
            out.code, None,
            "kill {kill}: the runner had already exited:\n{out}"
        );
    }
    sandbox.work_queue();
    let jobs = sandbox.jobs();
    assert_eq!(jobs.len(), 40, "{:#?}", summary(&jobs));
    assert_eq!(
        count_in(&jobs, "succeeded"),
        40,
        "a good video was set aside: {:#?}",
        summary(&jobs)
    );
    let sources: HashSet<&str> = jobs.iter().map(|j| text(j, "source")).collect();
    assert_eq!(sources.len(), 40, "a video was told twice");
    assert!(
        jobs.iter().all(|j| j["error"].is_null()),
        "{:#?}",
        summary(&jobs)
    );
    sandbox.assert_database_intact();
}

/// 200 queued jobs (files that are not videos: nothing runs them here).
fn queue_many_files(sandbox: &Sandbox) {
    let folder = sandbox.videos().join("many");
    std::fs::create_dir_all(&folder).expect("a folder");
    for i in 0..200 {
        std::fs::write(folder.join(format!("clip-{i:03}.mp4")), format!("clip {i}"))
            .expect("a file");
    }
    let (added, _, code) = sandbox.add(&[&folder], &[]);
    assert_eq!((added.len(), code), (200, Some(0)));
}

#[test]
fn a_damaged_database_is_caught_at_open_copied_aside_and_never_written() {
    let sandbox = Sandbox::new();
    queue_many_files(&sandbox);
    let database = sandbox.database();
    // Garbage over 8 KB from the middle of each page that holds a job's source path: the
    // middle of the file may be free pages (some with stale copies of rows), which hold nothing
    // live and are not checked, so each page the path is found in is damaged.
    let mut bytes = std::fs::read(&database).expect("the database");
    let page_size = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    let needle = b"clip-100.mp4";
    let pages: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(at, _)| at / page_size)
        .collect();
    assert!(!pages.is_empty(), "no job's source in the database file");
    for page in pages {
        let middle = page * page_size + page_size / 2;
        let end = (middle + 8192).min(bytes.len());
        for (i, byte) in bytes[middle..end].iter_mut().enumerate() {
            *byte = (i * 7 + 13) as u8;
        }
    }
    std::fs::write(&database, &bytes).expect("damaging the database");

    for args in [
        &["stats"][..],
        &["add", "--again", "x.mp4"][..],
        &["run", "--until-empty"][..],
    ] {
        let out = sandbox.run(args);
        assert_eq!(
            out.code,
            Some(1),
            "`{}` on a damaged database:\n{out}",
            args[0]
        );
        assert!(out.stderr.contains("is damaged"), "{out}");
        assert!(out.stderr.contains("from a backup"), "{out}");
        assert!(
            !out.stderr.to_lowercase().contains("error code"),
            "raw SQLite words:\n{out}"
        );
        assert_eq!(
            out.stderr.matches("is damaged").count(),
            1,
            "told twice:\n{out}"
        );
    }
    assert_eq!(
        std::fs::read(&database).expect("the database"),
        bytes,
        "the damaged database was written to"
    );
    let copies: Vec<_> = std::fs::read_dir(sandbox.home())
        .expect("the home")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".damaged-"))
        .collect();
    assert!(!copies.is_empty(), "no copy was set aside");
}

#[test]
fn a_database_deleted_while_running_stops_the_runner_with_a_clear_error() {
    let sandbox = Sandbox::new();
    sandbox.queue_videos(3, 40);
    let runner = sandbox.spawn(&["run", "--concurrency", "1"]);
    sandbox.wait_for_jobs(RUN_DEADLINE, "a job running", |jobs| {
        count_in(jobs, "running") == 1
    });
    let database = sandbox.database();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
    let out = runner.wait(Duration::from_secs(30));
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.stderr
            .contains("was deleted or replaced while Storyteller was using it"),
        "{out}"
    );
}

#[test]
fn a_killed_add_queues_nothing_and_the_next_add_does_not_read_again_what_it_hashed() {
    use std::io::{Seek, SeekFrom, Write};
    let sandbox = Sandbox::new();
    // Big files that cost no disk (sparse), each with its own first bytes. The add is killed
    // once it has kept a few hashes, long before it could have read them all.
    let folder = sandbox.videos().join("big");
    std::fs::create_dir_all(&folder).expect("folder");
    let files: Vec<PathBuf> = (0..10)
        .map(|i| {
            let path = folder.join(format!("take-{i:02}.mp4"));
            let mut file = std::fs::File::create(&path).expect("file");
            writeln!(file, "recording {i}").expect("header");
            file.seek(SeekFrom::Start(0)).expect("seek");
            file.set_len(512 << 20).expect("a sparse 512 MiB file");
            path
        })
        .collect();
    let kept_hashes = || -> i64 {
        let Ok(conn) = rusqlite::Connection::open_with_flags(
            sandbox.database(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        ) else {
            return 0;
        };
        conn.query_row("SELECT count(*) FROM file_hashes", [], |r| r.get(0))
            .unwrap_or(0)
    };
    let adding = sandbox.spawn(&["add", "big"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while kept_hashes() < 2 {
        assert!(Instant::now() < deadline, "the add kept no hashes");
        std::thread::sleep(Duration::from_millis(20));
    }
    adding.kill_hard();
    let kept = kept_hashes();
    assert!(
        kept < 16,
        "the add finished before it was killed: make the files bigger"
    );
    // Atomic: not one job from the killed add.
    assert!(sandbox.jobs().is_empty(), "{:#?}", summary(&sandbox.jobs()));
    sandbox.assert_database_intact();

    let out = sandbox.ok(&["add", "--json", "big"]);
    let report = out.json();
    assert_eq!(report["reusedHashes"], kept, "{report:#}");
    let jobs = sandbox.jobs();
    assert_eq!(count_in(&jobs, "queued"), 10, "{:#?}", summary(&jobs));
    // Every job has its file's true hash, kept or read, and nothing is kept any more.
    let conn = rusqlite::Connection::open(sandbox.database()).expect("database");
    for path in &files {
        let stored: String = conn
            .query_row(
                "SELECT content_hash FROM jobs WHERE source = ?1",
                [path.to_str().expect("UTF-8 path")],
                |r| r.get(0),
            )
            .expect("a job for every file");
        let mut hasher = blake3::Hasher::new();
        hasher
            .update_reader(std::fs::File::open(path).expect("file"))
            .expect("reading");
        assert_eq!(
            stored,
            hasher.finalize().to_hex().as_str(),
            "{}",
            path.display()
        );
    }
    drop(conn);
    assert_eq!(kept_hashes(), 0);
    // Said in words too.
    let out = sandbox.ok(&["add", "--again", "big/take-00.mp4"]);
    assert!(
        out.stdout.contains("1 file not read again"),
        "{}",
        out.stdout
    );
}
