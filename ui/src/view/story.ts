// The story panel: the selected video's story as it is written, its keyframes, what it is,
// and what can be done with it.

import type { JobView, Priority } from "../bindings";
import { activity, bytes, dollars, duration, styleWords, thumbnailUrl } from "../format";

/** Keyframes shown at most. */
const THUMBNAILS = 6;

export interface StoryActions {
  copy(id: string): void;
  retry(id: string): void;
  cancel(id: string): void;
  remove(id: string): void;
  setPriority(id: string, priority: Priority): void;
  retell(id: string, preset: string): void;
  openVideo(id: string): void;
  showInFolder(id: string): void;
  /** The presets the job's storyteller has (for "tell again with…"). */
  presetsOf(storyteller: string): string[];
}

export class StoryPanel {
  private shown: string | null = null;
  /** The story text on screen (kept, so a delta is not compared with the whole DOM text). */
  private shownText = "";
  private readonly title = document.getElementById("story-title")!;
  private readonly meta = document.getElementById("story-meta")!;
  private readonly text = document.getElementById("story-text")!;
  private readonly copyButton = document.getElementById("copy-story") as HTMLButtonElement;
  private readonly thumbnails = document.getElementById("thumbnails")!;
  private readonly buttons = document.getElementById("story-actions")!;
  private readonly facts = document.getElementById("story-facts")!;

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
      this.shownText = "";
      this.thumbnails.replaceChildren();
      this.buttons.replaceChildren();
      delete this.buttons.dataset.key;
      this.facts.replaceChildren();
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
    this.paintFacts(job);
  }

  /**
   * Updates the story text alone (a delta arrived). Text written after what is shown is
   * appended as it comes, so a long story streaming in costs the frame only its new words,
   * not a relayout of everything written so far.
   */
  setStory(story: string, job: JobView): void {
    if (story !== this.shownText) {
      if (this.shownText && story.startsWith(this.shownText) && this.text.lastChild) {
        this.text.append(story.slice(this.shownText.length));
      } else {
        this.text.textContent = story;
      }
      this.shownText = story;
    }
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
    const key = [job.id, job.state, job.priority].join(",");
    if (this.buttons.dataset.key === key) return;
    this.buttons.dataset.key = key;
    const controls: HTMLElement[] = [];
    const button = (id: string, label: string, act: () => void) => {
      const element = document.createElement("button");
      element.type = "button";
      element.id = id;
      element.textContent = label;
      element.addEventListener("click", act);
      controls.push(element);
    };
    if (job.state === "dead" || job.state === "cancelled") {
      button("retry-job", "Try again", () => this.actions.retry(job.id));
    }
    if (job.state === "queued" || job.state === "running") {
      button("cancel-job", "Cancel", () => this.actions.cancel(job.id));
    }
    if (job.state === "queued") {
      const priority = document.createElement("select");
      priority.id = "job-priority";
      priority.setAttribute("aria-label", "Priority");
      for (const [value, label] of [
        ["high", "High priority"],
        ["normal", "Normal priority"],
        ["low", "Low priority"],
      ] as const) {
        priority.append(new Option(label, value, false, job.priority === value));
      }
      priority.addEventListener("change", () =>
        this.actions.setPriority(job.id, priority.value as Priority),
      );
      controls.push(priority);
    }
    if (job.state === "succeeded") {
      const presets = this.actions.presetsOf(job.storyteller);
      if (presets.length > 0) {
        const preset = document.createElement("select");
        preset.id = "retell-preset";
        preset.setAttribute("aria-label", "Preset to tell it again with");
        for (const name of presets) {
          preset.append(new Option(name, name, false, name === job.preset));
        }
        controls.push(preset);
        button("retell", "Tell again", () => this.actions.retell(job.id, preset.value));
      }
    }
    button("open-video", "Open video", () => this.actions.openVideo(job.id));
    button("show-in-folder", "Show in folder", () => this.actions.showInFolder(job.id));
    if (job.state !== "running") {
      button("remove-job", "Remove", () => this.actions.remove(job.id));
    }
    this.buttons.replaceChildren(...controls);
  }

  private paintFacts(job: JobView): void {
    const rows = mediaFacts(job);
    const key = job.id + JSON.stringify(rows);
    if (this.facts.dataset.key === key) return;
    this.facts.dataset.key = key;
    this.facts.replaceChildren(
      ...rows.flatMap(([term, value]) => {
        const dt = document.createElement("dt");
        dt.textContent = term;
        const dd = document.createElement("dd");
        dd.textContent = value;
        return [dt, dd];
      }),
    );
  }
}

/** What the file is, as label and value pairs (only what is known). */
export function mediaFacts(job: JobView): [string, string][] {
  const facts: [string, string][] = [];
  const media = job.media;
  if (media) {
    facts.push(["Length", duration(media.durationSecs)]);
    const v = media.video;
    const picture = [`${v.width}×${v.height}`];
    if (v.fps) picture.push(`${Math.round(v.fps * 100) / 100} fps`);
    picture.push(v.codec);
    facts.push(["Picture", picture.join(" · ")]);
    if (media.audio) {
      const a = media.audio;
      const sound: string[] = [];
      if (a.channelLayout) sound.push(a.channelLayout);
      else if (a.channels) sound.push(`${a.channels} channels`);
      if (a.sampleRate) sound.push(`${a.sampleRate / 1000} kHz`);
      sound.push(a.codec);
      facts.push(["Sound", sound.join(" · ")]);
    } else {
      facts.push(["Sound", "none"]);
    }
    facts.push(["Container", media.container]);
    if (media.title) facts.push(["Title", media.title]);
    if (media.recordedAt) facts.push(["Recorded", new Date(media.recordedAt).toLocaleString()]);
  }
  facts.push(["Size", bytes(job.sizeBytes)]);
  facts.push(["Told by", `${job.storyteller} · ${job.model} · ${job.preset}`]);
  const asked = styleWords(job.style);
  if (asked) facts.push(["Asked", asked]);
  if (job.style.prompt) facts.push(["Instructions", job.style.prompt]);
  const usage = job.usage;
  if (usage && usage.inputTokens + usage.outputTokens > 0) {
    const tokens = `${usage.inputTokens.toLocaleString("en")} tokens in, ${usage.outputTokens.toLocaleString("en")} out`;
    facts.push(["Cost", usage.costUsd > 0 ? `${dollars(usage.costUsd)} · ${tokens}` : tokens]);
  }
  facts.push(["File", job.source]);
  return facts;
}

/** What the job is doing, and why it failed (the facts of the file are listed below it). */
export function describeJob(job: JobView): string {
  const parts = [activity(job)];
  if (job.error && job.state !== "succeeded") parts.push(job.error.message);
  return parts.join(" · ");
}
