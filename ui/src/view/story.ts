// The story panel: the selected video's story as it is written, its keyframes, what it is,
// and what can be done with it.

import type { JobView } from "../bindings";
import { activity, bytes, duration, thumbnailUrl } from "../format";

/** Keyframes shown at most. */
const THUMBNAILS = 6;

export interface StoryActions {
  copy(id: string): void;
  retry(id: string): void;
  cancel(id: string): void;
  remove(id: string): void;
}

export class StoryPanel {
  private shown: string | null = null;
  private readonly title = document.getElementById("story-title")!;
  private readonly meta = document.getElementById("story-meta")!;
  private readonly text = document.getElementById("story-text")!;
  private readonly copyButton = document.getElementById("copy-story") as HTMLButtonElement;
  private readonly thumbnails = document.getElementById("thumbnails")!;
  private readonly buttons = document.getElementById("story-actions")!;

  constructor(private readonly actions: StoryActions) {
    this.copyButton.addEventListener("click", () => {
      if (this.shown) this.actions.copy(this.shown);
    });
  }

  get jobId(): string | null {
    return this.shown;
  }

  /** Shows `job` (or nothing), with `story` as far as it is written. */
  show(job: JobView | undefined, story: string): void {
    if (!job) {
      this.shown = null;
      this.title.textContent = "No video selected";
      this.meta.textContent = "";
      this.text.textContent = "";
      this.thumbnails.replaceChildren();
      this.buttons.replaceChildren();
      this.copyButton.disabled = true;
      return;
    }
    const changedJob = this.shown !== job.id;
    this.shown = job.id;
    this.title.textContent = job.file;
    this.title.title = job.source;
    this.meta.textContent = describeJob(job);
    this.setStory(story, job);
    if (changedJob || this.thumbnails.dataset.hash !== job.contentHash || this.thumbnails.dataset.state !== job.state) {
      this.paintThumbnails(job);
    }
    this.paintButtons(job);
  }

  /** Updates the story text alone (a delta arrived). */
  setStory(story: string, job: JobView): void {
    if (this.text.textContent !== story) this.text.textContent = story;
    this.text.dataset.streaming = String(job.state === "running");
    this.copyButton.disabled = !story || job.state !== "succeeded";
  }

  private paintThumbnails(job: JobView): void {
    this.thumbnails.dataset.hash = job.contentHash;
    this.thumbnails.dataset.state = job.state;
    this.thumbnails.replaceChildren();
    if (job.state !== "succeeded") return;
    for (let i = 0; i < THUMBNAILS; i++) {
      const img = document.createElement("img");
      img.alt = `Keyframe ${i + 1} of ${job.file}`;
      img.loading = "lazy";
      img.src = thumbnailUrl(job.contentHash, i);
      img.addEventListener("error", () => img.remove(), { once: true });
      this.thumbnails.append(img);
    }
  }

  private paintButtons(job: JobView): void {
    const wanted: [string, string, () => void][] = [];
    if (job.state === "dead" || job.state === "cancelled") {
      wanted.push(["retry-job", "Try again", () => this.actions.retry(job.id)]);
    }
    if (job.state === "queued" || job.state === "running") {
      wanted.push(["cancel-job", "Cancel", () => this.actions.cancel(job.id)]);
    }
    if (job.state !== "running") {
      wanted.push(["remove-job", "Remove", () => this.actions.remove(job.id)]);
    }
    const key = wanted.map(([id]) => id).join(",") + job.id;
    if (this.buttons.dataset.key === key) return;
    this.buttons.dataset.key = key;
    this.buttons.replaceChildren(
      ...wanted.map(([id, label, act]) => {
        const button = document.createElement("button");
        button.type = "button";
        button.id = id;
        button.textContent = label;
        button.addEventListener("click", act);
        return button;
      }),
    );
  }
}

/** One line of facts: state, length, picture, size. */
export function describeJob(job: JobView): string {
  const parts = [activity(job)];
  if (job.media) {
    parts.push(duration(job.media.durationSecs));
    parts.push(`${job.media.video.width}×${job.media.video.height}`);
  }
  parts.push(bytes(job.sizeBytes));
  parts.push(`${job.storyteller} · ${job.preset}`);
  if (job.error && job.state !== "succeeded") parts.push(job.error.message);
  return parts.join(" · ");
}
