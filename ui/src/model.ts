// The window's picture of the queue, kept up to date by the engine's events alone (the window
// never polls). Pure: no DOM here, so it is unit-tested directly.

import type {
  Envelope,
  JobState,
  JobView,
  QueueStats,
  StorytellerPauseView,
  WatchStatus,
} from "./bindings";
import { lastPathPart } from "./format";
import { StoryBuffer } from "./story";

/** What one event changed, for the views to repaint just that. */
export interface Change {
  /** Jobs whose row changed. */
  rows: Set<string>;
  /** Jobs added or removed: the list's length or order changed. */
  structure: boolean;
  /** Jobs whose story text changed. */
  stories: Set<string>;
  /** Jobs whose whole record must be read again (finished, or a story gap). */
  reread: Set<string>;
  /** Counts or the pause changed. */
  stats: boolean;
  /** The settings changed (here or in another process): what drops get must be read again. */
  settings: boolean;
  /** Watched folders were added, removed or changed: the list of them must be read again. */
  folders: boolean;
  /** Watched folders whose watcher reported a new status, with it (the last one wins). */
  folderStatuses: Map<string, WatchStatus>;
  /** Events were missed: everything must be read again. */
  resync: boolean;
}

export function emptyChange(): Change {
  return {
    rows: new Set(),
    structure: false,
    stories: new Set(),
    reread: new Set(),
    stats: false,
    settings: false,
    folders: false,
    folderStatuses: new Map(),
    resync: false,
  };
}

/** Merges `more` into `into` (events between two paints become one repaint). */
export function mergeChange(into: Change, more: Change): Change {
  for (const id of more.rows) into.rows.add(id);
  for (const id of more.stories) into.stories.add(id);
  for (const id of more.reread) into.reread.add(id);
  into.structure ||= more.structure;
  into.stats ||= more.stats;
  into.settings ||= more.settings;
  into.folders ||= more.folders;
  for (const [folder, status] of more.folderStatuses) into.folderStatuses.set(folder, status);
  into.resync ||= more.resync;
  return into;
}

export class QueueModel {
  private readonly jobs = new Map<string, JobView>();
  /** Ids in the order they were added (oldest first). */
  private order: string[] = [];
  private readonly stories = new Map<string, StoryBuffer>();
  stats: QueueStats | null = null;
  paused: string | null = null;
  /** Storytellers paused on their own (the rest of the queue goes on). */
  pausedStorytellers: StorytellerPauseView[] = [];
  /** Bytes sent so far of each job whose video is being uploaded. */
  readonly uploads = new Map<string, { sent: number; total: number }>();
  concurrency: number | null = null;
  /** The last event's sequence number. */
  lastSeq = 0;
  /** Each job's last event's sequence number: a read begun before it is stale. */
  private readonly lastEventAbout = new Map<string, number>();

  get size(): number {
    return this.order.length;
  }

  job(id: string): JobView | undefined {
    return this.jobs.get(id);
  }

  /** Every job, oldest first. */
  all(): JobView[] {
    return this.order.map((id) => this.jobs.get(id)!);
  }

  /**
   * The jobs in `state` (any when `null`) whose file name, path or story contains `query` (any
   * case), or that the engine's search of the history found (`found`), oldest first.
   */
  filtered(query: string, state: JobState | null = null, found?: ReadonlySet<string>): JobView[] {
    const needle = query.trim().toLocaleLowerCase();
    const jobs = state ? this.all().filter((job) => job.state === state) : this.all();
    if (!needle) return jobs;
    return jobs.filter(
      (job) =>
        found?.has(job.id) ||
        job.file.toLocaleLowerCase().includes(needle) ||
        job.source.toLocaleLowerCase().includes(needle) ||
        this.storyText(job.id).toLocaleLowerCase().includes(needle),
    );
  }

  /** The story as far as it is known: streamed text, else the stored story. */
  storyText(id: string): string {
    const streamed = this.stories.get(id)?.text;
    if (streamed) return streamed;
    return this.jobs.get(id)?.story ?? "";
  }

  /** Replaces everything with `jobs` (oldest first), as read from the engine. */
  load(jobs: JobView[]): void {
    this.jobs.clear();
    this.stories.clear();
    this.order = [];
    for (const job of jobs) this.put(job);
  }

  /** Puts a job as read from the engine, keeping its place if it is known. */
  put(job: JobView): void {
    if (!this.jobs.has(job.id)) this.order.push(job.id);
    this.jobs.set(job.id, job);
    if (job.story !== null && job.state === "succeeded") {
      this.storyBuffer(job.id).replace(job.attempts, job.story);
    }
  }

  /** A mark to pass to `putRead` for a read of job `id` begun now. */
  markFor(id: string): number {
    return this.lastEventAbout.get(id) ?? 0;
  }

  /**
   * Puts a job read from the engine unless an event about it arrived after the read began
   * (`mark`): the read may predate what that event changed (a told video moved into done/ just
   * after the finished record was asked for), so the caller reads again.
   */
  putRead(job: JobView, mark: number): boolean {
    if (this.markFor(job.id) !== mark) return false;
    this.put(job);
    return true;
  }

  /** Applies one event from the engine. */
  apply(envelope: Envelope): Change {
    const change = emptyChange();
    if (this.lastSeq && envelope.seq !== this.lastSeq + 1 && envelope.seq > this.lastSeq) {
      // Only a restarted engine starts again from 1; a jump means events were lost.
      change.resync = true;
    }
    this.lastSeq = envelope.seq;
    if ("jobId" in envelope) this.lastEventAbout.set(envelope.jobId, envelope.seq);
    switch (envelope.type) {
      case "jobsAdded":
        for (const job of envelope.jobs) {
          if (!this.jobs.has(job.id)) change.structure = true;
          this.put(job);
          change.rows.add(job.id);
        }
        break;
      case "jobUpdated": {
        const job = this.jobs.get(envelope.jobId);
        if (!job) {
          // A job this window has not seen (added elsewhere while a page was loading).
          change.reread.add(envelope.jobId);
          break;
        }
        if (envelope.attempts > job.attempts && job.state !== "running") {
          this.stories.delete(job.id);
          change.stories.add(job.id);
        }
        this.jobs.set(job.id, {
          ...job,
          state: envelope.state,
          stage: envelope.stage,
          progress: envelope.progress,
          attempts: envelope.attempts,
          error: envelope.error,
        });
        change.rows.add(job.id);
        break;
      }
      case "storyDelta": {
        const result = this.storyBuffer(envelope.jobId).apply(
          envelope.attempt,
          envelope.offset,
          envelope.text,
        );
        if (result === "gap") change.reread.add(envelope.jobId);
        if (result === "applied") change.stories.add(envelope.jobId);
        break;
      }
      case "jobFinished": {
        const job = this.jobs.get(envelope.jobId);
        if (job) {
          this.jobs.set(job.id, {
            ...job,
            state: envelope.state,
            cached: envelope.cached,
            error: envelope.error,
            progress: envelope.state === "succeeded" ? 1 : job.progress,
            stage: envelope.state === "succeeded" ? "done" : job.stage,
          });
          change.rows.add(job.id);
        }
        // The finished record has the final story and media facts.
        change.reread.add(envelope.jobId);
        break;
      }
      case "priorityChanged": {
        const job = this.jobs.get(envelope.jobId);
        if (job) {
          this.jobs.set(job.id, { ...job, priority: envelope.priority });
          change.rows.add(job.id);
        }
        break;
      }
      case "jobsRemoved":
        for (const id of envelope.jobIds) {
          if (this.jobs.delete(id)) change.structure = true;
          this.stories.delete(id);
          this.lastEventAbout.delete(id);
        }
        if (change.structure) {
          const gone = new Set(envelope.jobIds);
          this.order = this.order.filter((id) => !gone.has(id));
        }
        break;
      case "queueStats":
        this.stats = envelope.stats;
        this.paused = envelope.stats.paused;
        this.pausedStorytellers = envelope.stats.pausedStorytellers;
        change.stats = true;
        break;
      case "storytellerPaused":
        this.pausedStorytellers = [
          ...this.pausedStorytellers.filter((p) => p.storyteller !== envelope.pause.storyteller),
          envelope.pause,
        ];
        change.stats = true;
        break;
      case "storytellerResumed":
        this.pausedStorytellers = this.pausedStorytellers.filter(
          (p) => p.storyteller !== envelope.storyteller,
        );
        change.stats = true;
        break;
      case "uploadProgress":
        this.uploads.set(envelope.jobId, { sent: envelope.sentBytes, total: envelope.totalBytes });
        change.rows.add(envelope.jobId);
        break;
      case "jobSpent": {
        const job = this.jobs.get(envelope.jobId);
        if (job) {
          this.jobs.set(job.id, { ...job, usage: envelope.usage });
          change.rows.add(job.id);
          change.stats = true;
        }
        break;
      }
      case "queuePaused":
        this.paused = envelope.reason;
        change.stats = true;
        break;
      case "queueResumed":
        this.paused = null;
        change.stats = true;
        break;
      case "concurrencyChanged":
        this.concurrency = envelope.concurrency;
        change.stats = true;
        break;
      case "settingsChanged":
        change.settings = true;
        break;
      case "jobMoved": {
        // A told video moved into its watched folder's done folder: the row follows it.
        const job = this.jobs.get(envelope.jobId);
        if (job) {
          this.jobs.set(job.id, { ...job, source: envelope.source, file: lastPathPart(envelope.source) });
          change.rows.add(job.id);
        }
        break;
      }
      case "watchedFoldersChanged":
        change.folders = true;
        break;
      case "watchedFolderStatus":
        change.folderStatuses.set(envelope.folder, envelope.status);
        break;
      case "resync":
        change.resync = true;
        break;
    }
    return change;
  }

  private storyBuffer(id: string): StoryBuffer {
    let buffer = this.stories.get(id);
    if (!buffer) {
      buffer = new StoryBuffer();
      this.stories.set(id, buffer);
    }
    return buffer;
  }
}
