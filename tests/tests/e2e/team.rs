//! Team mode: several machines (homes of their own) working one queue on a real PostgreSQL
//! server started for the test. Every video is told exactly once whoever claims it; a worker
//! killed mid-job has its jobs finished by the others at once, not after its lease; every
//! machine sees the others' workers.

use crate::postgres_server::PostgresServer;
use crate::support::{count_in, summary, Sandbox, RUN_DEADLINE};
use std::time::{Duration, Instant};

/// A server of the test's own, and a runtime to drive it (the tests themselves are plain
/// threads running the binary).
struct Server {
    runtime: tokio::runtime::Runtime,
    server: Option<PostgresServer>,
}

impl Server {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let server = runtime.block_on(PostgresServer::start());
        Server {
            runtime,
            server: Some(server),
        }
    }

    fn fresh_queue(&self) -> String {
        let server = self.server.as_ref().expect("started");
        self.runtime.block_on(server.fresh_database())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            // Its stop runs where a runtime can block for it.
            self.runtime.block_on(async move { drop(server) });
        }
    }
}

#[test]
fn three_machines_on_one_queue_tell_every_video_exactly_once() {
    let server = Server::start();
    let url = server.fresh_queue();
    let machines: Vec<Sandbox> = (0..3).map(|_| Sandbox::on_queue(&url)).collect();
    let videos = machines[0].queue_videos(12, 3);

    // Runners that stay up until stopped: however fast the videos go, all three are there.
    let runners: Vec<_> = machines
        .iter()
        .map(|m| m.spawn(&["run", "--concurrency", "2"]))
        .collect();
    // Every machine sees the workers of all of them.
    let start = Instant::now();
    loop {
        let workers = machines[2].ok(&["workers", "--json"]).json();
        if workers.as_array().map_or(0, Vec::len) == 3 {
            break;
        }
        if start.elapsed() > RUN_DEADLINE {
            let said: Vec<String> = runners
                .into_iter()
                .map(|runner| runner.kill_hard().to_string())
                .collect();
            panic!(
                "the three workers were never seen at once: {workers:#}\n{}",
                said.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    machines[1].wait_for_jobs(RUN_DEADLINE, "every video told", |jobs| {
        count_in(jobs, "succeeded") == videos.len()
    });
    for runner in runners {
        runner.signal("TERM");
        let out = runner.wait(RUN_DEADLINE);
        assert_eq!(out.code, Some(0), "{out}");
    }
    let jobs = machines[1].jobs();
    assert_eq!(
        count_in(&jobs, "succeeded"),
        videos.len(),
        "{:#?}",
        summary(&jobs)
    );
    // Each told once: one attempt each, never claimed twice.
    assert!(
        jobs.iter().all(|job| job["attempts"] == 1),
        "{:#?}",
        summary(&jobs)
    );
    let stats = machines[2].stats();
    assert_eq!(stats["cacheMisses"], videos.len(), "{stats:#}");
    let workers = machines[0].ok(&["workers", "--json"]).json();
    assert_eq!(workers, serde_json::json!([]), "they all stopped cleanly");
    // The doctor says where the jobs are: the server, not the home's file.
    let doctor = machines[0].run(&["doctor", "--json"]).json();
    let database = doctor["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["subject"] == "database"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(database["ok"], true, "{doctor:#}");
    assert!(
        database["message"]
            .as_str()
            .is_some_and(|m| m.contains("PostgreSQL at 127.0.0.1:") && m.contains("12 jobs")),
        "{doctor:#}"
    );
}

#[test]
fn a_machine_killed_mid_job_leaves_its_jobs_to_the_others_at_once() {
    let server = Server::start();
    let url = server.fresh_queue();
    let doomed = Sandbox::on_queue(&url);
    let heir = Sandbox::on_queue(&url);
    let videos = doomed.queue_videos(8, 6);

    let runner = doomed.spawn(&["run", "--concurrency", "3"]);
    doomed.wait_for_jobs(RUN_DEADLINE, "jobs running on the doomed machine", |jobs| {
        count_in(jobs, "running") >= 2
    });
    let killed = runner.kill_hard();
    assert_eq!(killed.code, None, "not killed by a signal:\n{killed}");
    let stranded: Vec<String> = heir
        .jobs()
        .iter()
        .filter(|job| job["state"] == "running")
        .map(|job| job["id"].as_str().expect("an id").to_owned())
        .collect();
    assert!(!stranded.is_empty());
    let stats = heir.ok(&["stats"]);
    assert!(
        stats.stdout.contains("left by a runner that stopped"),
        "{stats}"
    );

    // The other machine takes them up at once: within a third of the 30 s lease, so a
    // machine that waited for the lease fails this.
    let restart = heir.spawn(&["run", "--until-empty", "--concurrency", "3"]);
    heir.wait_for_jobs(
        Duration::from_secs(10),
        "the killed machine's jobs to be taken up",
        |jobs| {
            stranded.iter().all(|id| {
                let job = jobs.iter().find(|j| j["id"] == id.as_str()).expect("job");
                job["state"] != "running" || job["attempts"] == 2
            })
        },
    );
    let out = restart.wait(RUN_DEADLINE);
    assert_eq!(out.code, Some(0), "{out}");
    let jobs = heir.jobs();
    assert_eq!(
        count_in(&jobs, "succeeded"),
        videos.len(),
        "{:#?}",
        summary(&jobs)
    );
    for id in &stranded {
        let job = jobs
            .iter()
            .find(|j| j["id"] == id.as_str())
            .expect("the job");
        assert_eq!(job["attempts"], 2, "{job:#}");
    }
}
