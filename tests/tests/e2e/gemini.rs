//! The `storyteller` binary telling videos with Gemini, against a Generative Language API on
//! 127.0.0.1: the key kept out of everything but its header, a process killed mid-upload and
//! started again, and a spent daily quota that pauses Gemini alone.

#[path = "../../../crates/engine/tests/engine/gemini_server.rs"]
mod gemini_server;

use crate::support::{arg, Look, Sandbox, RUN_DEADLINE};
use gemini_server::{Answer, GeminiServer};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const KEY: &str = "AIzaSy-e2e-4f1c9b7a2d";

fn env(server: &GeminiServer) -> Vec<(&'static str, String)> {
    vec![
        ("GEMINI_API_KEY", KEY.to_owned()),
        ("STORYTELLER_GEMINI_BASE_URL", server.base.clone()),
        // Every video through the resumable upload, in 256 KiB requests.
        ("STORYTELLER_GEMINI_INLINE_BYTES", "0".to_owned()),
        ("STORYTELLER_GEMINI_CHUNK_BYTES", "262144".to_owned()),
    ]
}

fn with<'a>(
    env: &'a [(&'static str, String)],
    more: &[(&'static str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    env.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(more.iter().copied())
        .collect()
}

/// Every file under `dir`, read whole.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                found.push((path, bytes));
            }
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_tells_a_video_and_its_key_is_found_nowhere_but_in_the_requests_header() {
    let server = GeminiServer::start(KEY).await;
    server.processing_polls(1);
    let story = ["A test card ", "hums at ", "440 hertz."];
    server.answer(vec![Answer::story(&story)]);
    let sandbox = Sandbox::new();
    let video = sandbox.video("card.mp4", Look::varied(0, 3));
    let env = env(&server);
    let traced = with(&env, &[("RUST_LOG", "trace")]);

    let out = tokio::task::block_in_place(|| {
        // A second process following the events as the window would.
        let watcher = sandbox.spawn_with_env(&traced, &["events", "--json"]);
        std::thread::sleep(Duration::from_millis(500));
        let told = sandbox
            .spawn_with_env(
                &traced,
                &["process", arg(&video), "--storyteller", "gemini"],
            )
            .wait(RUN_DEADLINE);
        std::thread::sleep(Duration::from_millis(500));
        watcher.signal("INT");
        (told, watcher.wait(RUN_DEADLINE))
    });
    let (told, watched) = out;
    assert_eq!(told.code, Some(0), "{told}");
    assert!(told.stdout.contains(&story.concat()), "{told}");
    let job = sandbox.job_for("card.mp4");
    assert_eq!(job["storyteller"], "gemini");
    assert_eq!(job["model"], "gemini-flash-latest");
    assert_eq!(job["story"], story.concat());
    assert_eq!(job["usage"]["inputTokens"], gemini_server::PROMPT_TOKENS);
    assert_eq!(
        job["usage"]["audioInputTokens"],
        gemini_server::AUDIO_TOKENS
    );
    assert_eq!(job["usage"]["outputTokens"], 30);
    assert!(job["usage"]["costUsd"].as_f64().unwrap() > 0.0, "{job:#}");
    assert_eq!(server.uploaded_bytes(), std::fs::read(&video).unwrap());
    assert!(server.files().is_empty(), "the upload is deleted once told");
    assert!(
        watched.stdout.contains("\"jobUpdated\"") || watched.stdout.contains("jobUpdated"),
        "{watched}"
    );
    assert!(
        told.stderr.contains("TRACE") || told.stderr.contains("DEBUG"),
        "logging was on: {told}"
    );

    // The key went in the API's header, and nowhere else: not to the upload session, not in
    // a log line, the database, a checkpoint, the settings or an event.
    let seen = server.seen();
    assert!(seen
        .iter()
        .filter(|s| !s.target.contains("upload_id="))
        .all(|s| s.header("x-goog-api-key") == Some(KEY)));
    assert!(seen
        .iter()
        .filter(|s| s.target.contains("upload_id="))
        .all(|s| s.header("x-goog-api-key").is_none()));
    assert!(seen
        .iter()
        .all(|s| !s.target.contains(KEY) && !contains(&s.body, KEY)));
    for (what, text) in [
        ("stdout", &told.stdout),
        ("stderr", &told.stderr),
        ("events", &watched.stdout),
        ("watch log", &watched.stderr),
    ] {
        assert!(!text.contains(KEY), "the key is in the {what}");
    }
    let listed = sandbox.ok(&["list", "--json"]);
    assert!(!listed.stdout.contains(KEY));
    for (path, bytes) in files_under(&sandbox.home()) {
        assert!(!contains(&bytes, KEY), "the key is in {}", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_upload_goes_on_from_what_the_service_has_without_a_second_start() {
    let server = GeminiServer::start(KEY).await;
    server.chunk_delay(Duration::from_millis(150));
    let sandbox = Sandbox::new();
    let video = gemini_server::noisy_video(&sandbox.videos(), "long take.mp4");
    let env = env(&server);
    let env = with(&env, &[]);
    tokio::task::block_in_place(|| {
        sandbox.ok(&["add", arg(&video), "--storyteller", "gemini"]);
        let runner = sandbox.spawn_with_env(&env, &["run", "--until-empty"]);
        let started = Instant::now();
        while server.commands("upload") < 3 {
            assert!(
                started.elapsed() < RUN_DEADLINE,
                "the upload never got going"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        runner.kill_hard();
        // The chunk the killed process had in flight lands on the service after a delay of
        // its own: a restart seconds later, as a person makes it, finds it there. (Started at
        // once, it would find the service still taking it and rightly ask again.)
        std::thread::sleep(Duration::from_millis(500));
        let sent_before = server.commands("upload");
        let out = sandbox
            .spawn_with_env(&env, &["run", "--until-empty"])
            .wait(RUN_DEADLINE);
        assert_eq!(out.code, Some(0), "{out}");
        let size = std::fs::metadata(&video).unwrap().len();
        let requests = size.div_ceil(gemini_server::GRANULE) as usize;
        assert!(
            server.commands("upload") + 1 < requests + sent_before,
            "the second run sent only what was missing"
        );
    });
    assert_eq!(server.commands("start"), 1, "no second upload session");
    assert_eq!(
        server.commands("query"),
        1,
        "it asked the service what it had"
    );
    assert_eq!(
        server.uploaded_bytes(),
        std::fs::read(&video).unwrap(),
        "every byte once, in order"
    );
    let job = sandbox.job_for("long take.mp4");
    assert_eq!(job["state"], "succeeded", "{job:#}");
    assert_eq!(server.generate_calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_daily_quota_pauses_gemini_alone_until_midnight_pacific() {
    let server = GeminiServer::start(KEY).await;
    let per_day = r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier","quotaValue":"250"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"43s"}]}}"#;
    server.answer(vec![Answer::error(429, per_day)]);
    let sandbox = Sandbox::new();
    let keyed: Vec<PathBuf> = (0..3)
        .map(|i| sandbox.video(&format!("g{i}.mp4"), Look::varied(i, 2)))
        .collect();
    let offline = sandbox.video("local.mp4", Look::varied(5, 2));
    let env = env(&server);
    let env = with(&env, &[]);
    let out = tokio::task::block_in_place(|| {
        let paths: Vec<&Path> = keyed.iter().map(PathBuf::as_path).collect();
        sandbox.add(&paths, &["--storyteller", "gemini"]);
        sandbox.add(&[&offline], &["--storyteller", "offline"]);
        sandbox
            .spawn_with_env(&env, &["run", "--until-empty"])
            .wait(RUN_DEADLINE)
    });
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("midnight Pacific"), "{out}");
    assert_eq!(
        sandbox.job_for("local.mp4")["state"],
        "succeeded",
        "offline videos are still told"
    );
    for i in 0..3 {
        let job = sandbox.job_for(&format!("g{i}.mp4"));
        assert_eq!(job["state"], "queued", "{job:#}");
        assert_eq!(job["attempts"], 0, "no attempt is used: {job:#}");
    }
    let stats = sandbox.stats();
    assert!(stats["paused"].is_null(), "the queue goes on: {stats:#}");
    let pause = &stats["pausedStorytellers"][0];
    assert_eq!(pause["storyteller"], "gemini", "{stats:#}");
    assert_eq!(pause["kind"], "quota", "{stats:#}");
    assert_eq!(pause["queued"], 3, "{stats:#}");
    // Midnight Pacific is 07:00 or 08:00 UTC.
    let until = pause["until"].as_str().unwrap();
    assert!(
        until.contains("T07:00:00") || until.contains("T08:00:00"),
        "{until}"
    );
    // At most the requests already under way when the first answer came.
    assert!(
        server.generate_calls().len() <= 3,
        "{}",
        server.generate_calls().len()
    );
}

/// Runs `script` in `sh` on a session bus of its own with an unlocked GNOME Keyring, `HOME` in
/// the sandbox (so no real keyring is touched), and `$ST` the `storyteller` command on the
/// sandbox's home.
fn with_keyring(sandbox: &Sandbox, env: &[(&str, &str)], script: &str) -> std::process::Output {
    let home = sandbox.home();
    let user_home = home.parent().unwrap().join("user");
    std::fs::create_dir_all(&user_home).unwrap();
    let st = format!(
        "{} --home {}",
        crate::support::binary().display(),
        home.display()
    );
    let full = format!(
        "printf pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1\n{script}"
    );
    Command::new("dbus-run-session")
        .args(["--", "sh", "-c", &full])
        .env("HOME", &user_home)
        .env("ST", st)
        .env_remove("GEMINI_API_KEY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect(
            "dbus-run-session and gnome-keyring-daemon are installed (./run.sh test installs them)",
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_kept_in_the_keychain_tells_videos_and_is_never_shown_again() {
    let server = GeminiServer::start(KEY).await;
    let sandbox = Sandbox::new();
    let video = sandbox.video("keyed.mp4", Look::varied(1, 2));
    let base = server.base.clone();
    let script = format!(
        "set -e\n\
         printf '%s\\n' \"$THE_KEY\" | $ST config set-key gemini\n\
         $ST config keys --json > keys.json\n\
         $ST process '{}' --storyteller gemini\n\
         $ST config forget-key gemini\n\
         $ST config keys --json > forgotten.json\n",
        video.display()
    );
    let out = tokio::task::block_in_place(|| {
        with_keyring(
            &sandbox,
            &[
                ("THE_KEY", KEY),
                ("STORYTELLER_GEMINI_BASE_URL", &base),
                ("RUST_LOG", "debug"),
            ],
            &format!("cd '{}'\n{script}", sandbox.videos().display()),
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("gemini key kept in the keychain (••••"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "the key was shown: {stdout}{stderr}"
    );
    let keys: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sandbox.videos().join("keys.json")).unwrap())
            .unwrap();
    let gemini = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["storyteller"] == "gemini")
        .unwrap();
    assert_eq!(gemini["source"], "keychain", "{keys:#}");
    assert_eq!(gemini["masked"], format!("••••{}", &KEY[KEY.len() - 4..]));
    assert_eq!(gemini["keychainAvailable"], true);
    let forgotten: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(sandbox.videos().join("forgotten.json")).unwrap(),
    )
    .unwrap();
    let gemini = forgotten
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["storyteller"] == "gemini")
        .unwrap();
    assert_eq!(gemini["source"], "none", "{forgotten:#}");
    // The key from the keychain told the video.
    assert_eq!(sandbox.job_for("keyed.mp4")["state"], "succeeded");
    assert!(server
        .generate_calls()
        .iter()
        .all(|s| s.header("x-goog-api-key") == Some(KEY)));
    for (path, bytes) in files_under(&sandbox.home()) {
        assert!(!contains(&bytes, KEY), "the key is in {}", path.display());
    }
}

#[test]
fn without_a_keychain_set_key_says_to_use_the_environment_variable() {
    let sandbox = Sandbox::new();
    let out = Command::new(crate::support::binary())
        .arg("--home")
        .arg(sandbox.home())
        .args(["config", "set-key", "gemini"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .env("HOME", sandbox.home())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{KEY}\n").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("could not be kept"), "{said}");
    assert!(
        said.contains("Set GEMINI_API_KEY in the environment"),
        "{said}"
    );
    assert!(!said.contains(KEY), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_estimate_says_what_a_batch_will_cost_and_take_and_sends_nothing() {
    let server = GeminiServer::start(KEY).await;
    let sandbox = Sandbox::new();
    let short = sandbox.video("short.mp4", Look::varied(0, 2));
    let long = sandbox.video("long.mp4", Look::varied(1, 12));
    std::fs::write(sandbox.videos().join("notes.txt"), "not a video").unwrap();
    let env = env(&server);
    let env = with(&env, &[]);
    let out = tokio::task::block_in_place(|| {
        sandbox
            .spawn_with_env(
                &env,
                &[
                    "estimate",
                    arg(&sandbox.videos()),
                    "--storyteller",
                    "gemini",
                    "--json",
                ],
            )
            .wait(RUN_DEADLINE)
    });
    // A non-video found in a folder is passed over, not refused: the exit is clean.
    assert_eq!(out.code, Some(0), "{out}");
    let report = out.json();
    assert_eq!(report["storyteller"], "gemini");
    assert_eq!(report["model"], "gemini-flash-latest");
    assert_eq!(report["priced"], true);
    let videos = report["videos"].as_array().unwrap();
    assert_eq!(videos.len(), 2, "{report:#}");
    let tokens = |name: &str| {
        let video = videos
            .iter()
            .find(|v| v["path"].as_str().unwrap().ends_with(name))
            .unwrap();
        video["inputTokens"].as_f64().unwrap()
    };
    // 258 tokens a frame at one frame a second, and 32 a second of sound: a 12 s video reads
    // about six times what a 2 s one does.
    let (two, twelve) = (tokens("short.mp4"), tokens("long.mp4"));
    assert!(
        (12.0 * 290.0..=12.0 * 290.0 + 1000.0).contains(&twelve),
        "{twelve}"
    );
    assert!(twelve > 4.0 * two, "{two} {twelve}");
    let cost = report["costUsd"].as_f64().unwrap();
    assert!(cost > 0.0 && cost < 0.05, "{cost}");
    assert!(report["expectedSecs"].as_f64().unwrap() > 0.0);
    assert!(server.seen().is_empty(), "an estimate sends nothing");
    assert!(sandbox.jobs().is_empty(), "an estimate queues nothing");

    let out = tokio::task::block_in_place(|| {
        sandbox.run(&[
            "estimate",
            arg(&short),
            arg(&long),
            "--storyteller",
            "gemini",
        ])
    });
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("2 videos with gemini"), "{out}");
    assert!(out.stdout.contains(" in all; about "), "{out}");

    // The model asked for is the one estimated: Gemini 3 reads 70 tokens a frame, not 258.
    let out = tokio::task::block_in_place(|| {
        sandbox
            .spawn_with_env(
                &env,
                &[
                    "estimate",
                    arg(&long),
                    "--storyteller",
                    "gemini",
                    "--model",
                    "gemini-3-flash-preview",
                    "--json",
                ],
            )
            .wait(RUN_DEADLINE)
    });
    assert_eq!(out.code, Some(0), "{out}");
    let report = out.json();
    assert_eq!(report["model"], "gemini-3-flash-preview");
    let tokens = report["inputTokens"].as_f64().unwrap();
    assert!(tokens < 12.0 * 110.0 + 1000.0, "{tokens}: {report:#}");
    assert_eq!(report["requests"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_key_and_the_model_and_says_what_to_fix() {
    let server = GeminiServer::start(KEY).await;
    let sandbox = Sandbox::new();
    let dead = "http://127.0.0.1:9";
    let env = env(&server);
    let mut env = with(
        &env,
        &[
            ("STORYTELLER_OLLAMA_BASE_URL", dead),
            ("STORYTELLER_OPENAI_BASE_URL", dead),
        ],
    );
    let doctor = |env: &[(&str, &str)]| {
        tokio::task::block_in_place(|| {
            sandbox
                .spawn_with_env(env, &["doctor", "--json"])
                .wait(RUN_DEADLINE)
        })
    };
    tokio::task::block_in_place(|| sandbox.ok(&["settings", "--storyteller", "gemini"]));
    let check = |out: &crate::support::Output, subject: &str| {
        out.json()["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["subject"] == subject)
            .cloned()
            .unwrap()
    };

    let out = doctor(&env);
    assert_eq!(out.code, Some(0), "{out}");
    let gemini = check(&out, "gemini");
    assert_eq!(gemini["ok"], true, "{gemini:#}");
    assert_eq!(gemini["needed"], true);
    assert_eq!(check(&out, "ffmpeg")["ok"], true);
    let ollama = check(&out, "ollama");
    assert_eq!(
        (ollama["ok"].clone(), ollama["needed"].clone()),
        (false.into(), false.into())
    );
    assert!(
        ollama["message"]
            .as_str()
            .unwrap()
            .contains("Ollama is not running"),
        "{ollama:#}"
    );

    // The model retired: named, with the setting to change.
    server.only_models(&["gemini-2.5-flash"]);
    let out = doctor(&env);
    assert_eq!(out.code, Some(1), "{out}");
    let gemini = check(&out, "gemini");
    assert!(
        gemini["message"]
            .as_str()
            .unwrap()
            .contains("no model 'gemini-flash-latest'"),
        "{gemini:#}"
    );
    assert!(
        gemini["message"]
            .as_str()
            .unwrap()
            .contains("STORYTELLER_GEMINI_MODEL"),
        "{gemini:#}"
    );

    // A wrong key: said so, and the key is not shown.
    let wrong = "AIzaSy-not-the-right-one";
    env.retain(|(k, _)| *k != "GEMINI_API_KEY");
    env.push(("GEMINI_API_KEY", wrong));
    let out = doctor(&env);
    assert_eq!(out.code, Some(1), "{out}");
    let message = check(&out, "gemini")["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("refused the API key"), "{message}");
    assert!(!out.stdout.contains(wrong) && !out.stdout.contains(KEY));
    assert!(server.generate_calls().is_empty(), "doctor tells nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_spending_cap_pauses_gemini_once_reached_and_raising_it_goes_on() {
    let server = GeminiServer::start(KEY).await;
    server.answer(vec![Answer::story(&["A story ", "for a price."])]);
    let sandbox = Sandbox::new();
    let videos: Vec<PathBuf> = (0..3)
        .map(|i| sandbox.video(&format!("c{i}.mp4"), Look::varied(i + 10, 2)))
        .collect();
    // The address comes from the settings this time, not the environment.
    let env = [("GEMINI_API_KEY", KEY)];
    let set = |key: &str, value: &str| {
        let out = sandbox.ok(&["config", "set", key, value]);
        assert!(out.stdout.starts_with(&format!("{key} = ")), "{out}");
    };
    let out = tokio::task::block_in_place(|| {
        set("gemini.base-url", &server.base);
        // Each story costs its 1,000-odd tokens at $1,000 a million: just over a $1 cap.
        set("price.gemini", "1000/1000/1000");
        set("price.gemini.flash", "1000/1000/1000");
        set("gemini.day-cap", "1");
        let paths: Vec<&Path> = videos.iter().map(PathBuf::as_path).collect();
        sandbox.add(&paths, &["--storyteller", "gemini"]);
        sandbox
            .spawn_with_env(&env, &["run", "--until-empty", "--concurrency", "1"])
            .wait(RUN_DEADLINE)
    });
    assert_eq!(out.code, Some(0), "{out}");
    assert_eq!(
        server.generate_calls().len(),
        1,
        "nothing is sent past the cap"
    );
    let states: Vec<(String, u64)> = (0..3)
        .map(|i| {
            let job = sandbox.job_for(&format!("c{i}.mp4"));
            (
                job["state"].as_str().unwrap().to_owned(),
                job["attempts"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states.iter().filter(|(s, _)| s == "succeeded").count(),
        1,
        "{states:?}"
    );
    assert!(
        states
            .iter()
            .filter(|(s, _)| s == "queued")
            .all(|(_, a)| *a == 0),
        "the others wait with no attempt used: {states:?}"
    );
    let stats = sandbox.stats();
    let pause = &stats["pausedStorytellers"][0];
    assert_eq!(pause["kind"], "spending", "{stats:#}");
    assert_eq!(pause["queued"], 2, "{stats:#}");
    let told = (0..3)
        .map(|i| sandbox.job_for(&format!("c{i}.mp4")))
        .find(|job| job["state"] == "succeeded")
        .unwrap();
    let cost = told["usage"]["costUsd"].as_f64().unwrap();
    assert!(cost > 1.0 && cost < 1.25, "{told:#}");
    let reason = pause["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!(
            "Gemini has spent ${cost:.2} today, its daily cap of $1.00 (gemini.day-cap)"
        )),
        "{reason}"
    );
    assert!(
        pause["until"].is_string(),
        "it goes on at midnight: {stats:#}"
    );
    assert!(
        (stats["spentTodayUsd"].as_f64().unwrap() - cost).abs() < 1e-9,
        "{stats:#}"
    );
    assert!((stats["spentThisMonthUsd"].as_f64().unwrap() - cost).abs() < 1e-9);

    // Raising the cap lets Gemini go on at once, and the rest are told.
    let out = tokio::task::block_in_place(|| {
        set("gemini.day-cap", "$2.50");
        assert!(
            sandbox.stats()["pausedStorytellers"]
                .as_array()
                .unwrap()
                .is_empty(),
            "no longer paused"
        );
        sandbox
            .spawn_with_env(&env, &["run", "--until-empty", "--concurrency", "1"])
            .wait(RUN_DEADLINE)
    });
    assert_eq!(out.code, Some(0), "{out}");
    for i in 0..3 {
        assert_eq!(sandbox.job_for(&format!("c{i}.mp4"))["state"], "succeeded");
    }
    assert_eq!(server.generate_calls().len(), 3);
    // The third story took the day past $2.50: Gemini waits again.
    assert_eq!(sandbox.stats()["pausedStorytellers"][0]["kind"], "spending");
}

#[test]
fn settings_by_key_are_checked_kept_and_said_to_be_hidden_by_the_environment() {
    let sandbox = Sandbox::new();
    let listed = sandbox.ok(&["config", "list", "--json"]);
    let entries: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let rpm = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "gemini.requests-per-minute")
        .unwrap();
    assert_eq!(rpm["value"], "10");
    assert_eq!(rpm["source"], "default");
    assert_eq!(rpm["envVar"], "STORYTELLER_GEMINI_REQUESTS_PER_MINUTE");

    let set = sandbox.ok(&["config", "set", "gemini.requests-per-minute", "60"]);
    assert_eq!(set.stdout.trim(), "gemini.requests-per-minute = 60");
    assert_eq!(
        sandbox
            .ok(&["config", "get", "gemini.requests-per-minute"])
            .stdout
            .trim(),
        "60"
    );
    let bad = sandbox.run(&["config", "set", "gemini.requests-per-minute", "fast"]);
    assert_ne!(bad.code, Some(0));
    assert!(bad.stderr.contains("'fast' is not a limit"), "{bad}");
    let unknown = sandbox.run(&["config", "set", "gemini.speed", "9"]);
    assert!(
        unknown
            .stderr
            .contains("there is no setting 'gemini.speed'"),
        "{unknown}"
    );
    assert_eq!(
        sandbox
            .ok(&["config", "get", "gemini.requests-per-minute"])
            .stdout
            .trim(),
        "60",
        "a refused value changes nothing"
    );

    let hidden = sandbox
        .spawn_with_env(
            &[("STORYTELLER_GEMINI_REQUESTS_PER_MINUTE", "5")],
            &["config", "get", "gemini.requests-per-minute"],
        )
        .wait(RUN_DEADLINE);
    assert_eq!(hidden.stdout.trim(), "5", "{hidden}");
    assert!(
        hidden
            .stderr
            .contains("STORYTELLER_GEMINI_REQUESTS_PER_MINUTE=5 is set and comes first"),
        "{hidden}"
    );
    let unset = sandbox.ok(&["config", "unset", "gemini.requests-per-minute"]);
    assert_eq!(
        unset.stdout.trim(),
        "gemini.requests-per-minute = 10 (the default)"
    );
    let settings = std::fs::read_to_string(sandbox.home().join("settings.json")).unwrap();
    assert!(!settings.contains("requests-per-minute"), "{settings}");
}
