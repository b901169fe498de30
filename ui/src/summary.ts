// The queue in one line: how much is done and left, how much video that is, and how long the
// rest will take at the pace measured on this machine. Pure, from what the events keep in the
// model, so it is unit-tested directly and costs the engine nothing.

import type { JobView, QueueStats } from "./bindings";

/** Jobs the pace is measured over: the latest ones told, so it follows the machine's load. */
const PACE_SAMPLE = 20;

export interface QueueSummary {
  /** Jobs with a story. */
  done: number;
  /** Jobs waiting or being worked on. */
  remaining: number;
  /** Jobs that failed for good. */
  failed: number;
  /** Length of every video in the queue whose length is known, in seconds. */
  videoSecs: number;
  /** Time left for the whole queue, in seconds; `null` until a pace has been measured. */
  leftSecs: number | null;
  /** Stories that came from the cache (identical videos told before). */
  cacheHits: number;
}

function millis(iso: string | null): number | null {
  if (!iso) return null;
  const at = Date.parse(iso);
  return Number.isNaN(at) ? null : at;
}

/**
 * Sums up `jobs`; `stats` (the engine's counts) wins for the counts when it is known, since
 * the window may not have every job yet. `concurrency` is how many run at once.
 */
export function summarize(jobs: JobView[], stats: QueueStats | null, concurrency: number): QueueSummary {
  let videoSecs = 0;
  let knownLengths = 0;
  const told: { finished: number; took: number; length: number }[] = [];
  let done = 0;
  let failed = 0;
  let cacheHits = 0;
  const open: JobView[] = [];
  for (const job of jobs) {
    const length = job.media?.durationSecs ?? null;
    if (length !== null) {
      videoSecs += length;
      knownLengths += 1;
    }
    if (job.state === "succeeded") {
      done += 1;
      if (job.cached) {
        cacheHits += 1;
        continue;
      }
      const started = millis(job.startedAt);
      const finished = millis(job.finishedAt);
      if (started !== null && finished !== null && finished > started && length) {
        told.push({ finished, took: (finished - started) / 1000, length });
      }
    } else if (job.state === "dead") {
      failed += 1;
    } else if (job.state === "queued" || job.state === "running") {
      open.push(job);
    }
  }
  const remaining = stats ? stats.queued + stats.running : open.length;
  let leftSecs: number | null = null;
  if (remaining === 0) {
    leftSecs = 0;
  } else if (told.length > 0) {
    told.sort((a, b) => b.finished - a.finished);
    const sample = told.slice(0, PACE_SAMPLE);
    const secsPerVideoSec =
      sample.reduce((sum, t) => sum + t.took, 0) / sample.reduce((sum, t) => sum + t.length, 0);
    // A queued video's length is known once it is read: until then, the average length.
    const averageLength = knownLengths ? videoSecs / knownLengths : sample[0].length;
    let work = 0;
    for (const job of open) {
      const length = job.media?.durationSecs ?? averageLength;
      const left = job.state === "running" ? 1 - job.progress : 1;
      work += length * secsPerVideoSec * left;
    }
    // Jobs the window has not listed yet count at the average.
    work += Math.max(0, remaining - open.length) * averageLength * secsPerVideoSec;
    leftSecs = work / Math.max(1, Math.min(concurrency, remaining));
  }
  return {
    done: stats ? stats.succeeded : done,
    remaining,
    failed: stats ? stats.dead : failed,
    videoSecs,
    leftSecs,
    cacheHits: stats ? stats.cacheHits : cacheHits,
  };
}

/** `95` → `about 2 min`, `4000` → `about 1 h 7 min`, under a minute → `less than a minute`. */
export function timeLeft(seconds: number): string {
  if (seconds < 60) return "less than a minute left";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min left`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `about ${hours} h ${rest} min left` : `about ${hours} h left`;
}
