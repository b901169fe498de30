// Words and numbers for people.

import type { ExportFormat, JobView, Stage, JobState } from "./bindings";

const STAGE_WORDS: Record<Stage, string> = {
  waiting: "Waiting",
  probing: "Reading the file",
  analysing: "Watching",
  uploading: "Uploading",
  processing: "Being prepared",
  writing: "Writing",
  done: "Done",
};

const STATE_WORDS: Record<JobState, string> = {
  queued: "Queued",
  running: "Working",
  succeeded: "Done",
  dead: "Failed",
  cancelled: "Cancelled",
};

export function stateWord(state: JobState): string {
  return STATE_WORDS[state] ?? state;
}

/** What a job is doing, in words. */
export function activity(job: JobView): string {
  if (job.state === "running") {
    const stage = STAGE_WORDS[job.stage] ?? job.stage;
    return `${stage} · ${Math.round(job.progress * 100)}%`;
  }
  if (job.state === "queued" && job.runAfter) return "Waiting to try again";
  if (job.state === "succeeded" && job.cached) return "Done (told before)";
  return stateWord(job.state);
}

/** `75` → `1:15`, `3725` → `1:02:05`. */
export function duration(seconds: number): string {
  const whole = Math.max(0, Math.round(seconds));
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = whole % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

/** `1536000` → `1.5 MB`. */
export function bytes(size: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = size;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A count with its noun: `1 video`, `3 videos`. */
export function count(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Where the N-th thumbnail of a video is served (the `thumb:` protocol of the app). */
export function thumbnailUrl(contentHash: string, index: number): string {
  const windows = typeof navigator !== "undefined" && navigator.userAgent.includes("Windows");
  const base = windows ? "http://thumb.localhost" : "thumb://localhost";
  return `${base}/${encodeURIComponent(contentHash)}/${index}`;
}

/** The export format a file name asks for (Markdown when it says none we know). */
export function exportFormatOf(path: string): ExportFormat {
  const extension = path.toLowerCase().split(".").pop();
  switch (extension) {
    case "json":
      return "json";
    case "txt":
      return "text";
    case "docx":
      return "docx";
    case "pdf":
      return "pdf";
    default:
      return "markdown";
  }
}

/** Money for people: `$0`, `$0.0044`, `$0.012`, `$1.25`. */
/** A story's language and length as asked, in a few words: `in French, about 120 words`
 * (empty when neither was asked). */
export function styleWords(style: { language?: string | null; words?: number | null }): string {
  const parts: string[] = [];
  if (style.language) parts.push(`in ${style.language}`);
  if (style.words) parts.push(`about ${style.words} words`);
  return parts.join(", ");
}

export function dollars(usd: number): string {
  if (!(usd > 0)) return "$0";
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  if (usd >= 0.01) return `$${usd.toFixed(3)}`;
  return `$${usd.toFixed(4)}`;
}

/** A paused storyteller in words: who, why, and when it goes on by itself (local time). */
export function pauseWords(pause: {
  storyteller: string;
  reason: string;
  until: string | null;
}): string {
  const until = pause.until
    ? ` (until ${new Date(pause.until).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })})`
    : "";
  return `${pause.storyteller} paused${until}: ${pause.reason}`;
}

/** The last part of a path (a file's or a folder's name), with `/` or `\\` between parts. */
export function lastPathPart(path: string): string {
  const trimmed = path.replace(/[\\/]+$/, "");
  if (!trimmed) return path;
  const cut = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  return cut >= 0 ? trimmed.slice(cut + 1) : trimmed;
}
