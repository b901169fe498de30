import { describe, expect, it } from "vitest";
import type { MediaView, QueueStats } from "./bindings";
import { summarize, timeLeft } from "./summary";
import { job } from "./test-jobs";

function media(durationSecs: number): MediaView {
  return {
    durationSecs,
    container: "QuickTime / MOV",
    title: null,
    recordedAt: null,
    bitRate: null,
    video: { codec: "h264", width: 320, height: 180, fps: 25, rotation: 0 },
    audio: null,
  };
}

/** A job told in `took` seconds, finishing `ago` seconds before noon. */
function told(n: number, length: number, took: number, ago = 0) {
  const finished = Date.parse("2026-12-02T12:00:00.000Z") - ago * 1000;
  return job(n, {
    state: "succeeded",
    stage: "done",
    progress: 1,
    media: media(length),
    startedAt: new Date(finished - took * 1000).toISOString(),
    finishedAt: new Date(finished).toISOString(),
  });
}

describe("the queue summary", () => {
  it("measures the pace on told videos and applies it to what is left, shared by the workers", () => {
    // Told at 2 s of work per second of video.
    const jobs = [
      told(1, 10, 20),
      told(2, 30, 60, 5),
      job(3, { state: "running", stage: "analysing", progress: 0.5, media: media(20) }),
      job(4), // not read yet: counted at the average known length, 25 s
      job(5, { media: media(40) }),
    ];
    const summary = summarize(jobs, null, 2);
    expect(summary.done).toBe(2);
    expect(summary.remaining).toBe(3);
    expect(summary.videoSecs).toBe(100);
    // Work left: 20 × 2 × 0.5 + 25 × 2 + 40 × 2 = 150 s, over 2 workers.
    expect(summary.leftSecs).toBeCloseTo(75, 5);
  });

  it("says nothing of time before a pace is measured, and nothing is left once all is done", () => {
    expect(summarize([job(1), job(2)], null, 3).leftSecs).toBeNull();
    expect(summarize([told(1, 10, 20)], null, 3).leftSecs).toBe(0);
  });

  it("leaves cached stories out of the pace and takes the engine's counts over the window's", () => {
    const cached = { ...told(2, 10, 0.01), cached: true };
    const stats: QueueStats = {
      queued: 9,
      running: 1,
      succeeded: 40,
      dead: 2,
      cancelled: 0,
      cacheHits: 5,
      cacheMisses: 35,
      paused: null,
      pausedStorytellers: [],
      spentTodayUsd: 0,
      spentThisMonthUsd: 0,
    };
    const summary = summarize([told(1, 10, 10), cached, job(3, { media: media(10) })], stats, 1);
    expect(summary.done).toBe(40);
    expect(summary.remaining).toBe(10);
    expect(summary.cacheHits).toBe(5);
    // One listed job of 10 s and nine not listed at the average (10 s), at 1 s per second.
    expect(summary.leftSecs).toBeCloseTo(100, 5);
  });

  it("follows the latest pace: the newest twenty told videos", () => {
    const slowlyLongAgo = Array.from({ length: 30 }, (_, i) => told(i, 10, 100, 1000 + i));
    const quicklyNow = Array.from({ length: 20 }, (_, i) => told(100 + i, 10, 10, i));
    const summary = summarize([...slowlyLongAgo, ...quicklyNow, job(999, { media: media(10) })], null, 1);
    expect(summary.leftSecs).toBeCloseTo(10, 5);
  });

  it("words the time left as a person would", () => {
    expect(timeLeft(30)).toBe("less than a minute left");
    expect(timeLeft(95)).toBe("about 2 min left");
    expect(timeLeft(4000)).toBe("about 1 h 7 min left");
    expect(timeLeft(7200)).toBe("about 2 h left");
  });
});
