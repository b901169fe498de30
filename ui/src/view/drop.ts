// What happens to a drop: the toolbar's "Tell with" chooses the storyteller for the videos
// added next. With the offline analyser (free, on this machine) a drop is queued at once; with
// an AI storyteller the drop sheet first says what the videos will cost and take — the
// engine's estimate, the same `storyteller estimate` prints, with nothing sent — and lets the
// person pick the preset, choose another storyteller, or think again.

import type { AddOptions, EstimateReport, StorytellerInfo } from "../bindings";
import { count, dollars, lastPathPart, styleWords } from "../format";
import { providerName } from "./keys";

/** Whether drops for `storyteller` are asked about first (it may cost money or hours). */
export function asksFirst(storyteller: string): boolean {
  return storyteller !== "offline";
}

/** A time ahead, as round as an estimate deserves: `40 s`, `12 min`, `3 h 20 min`. */
export function spanWords(seconds: number): string {
  const secs = Math.max(1, Math.round(seconds));
  if (secs < 60) return `${secs} s`;
  const minutes = Math.round(secs / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest ? `${hours} h ${rest} min` : `${hours} h`;
}

/** An estimate in a line: videos, tokens, cost and time. */
export function estimateWords(report: EstimateReport): string {
  const videos = report.videos.filter((v) => !v.error).length;
  const parts = [count(videos, "video", "videos")];
  const tokens = report.inputTokens + report.outputTokens;
  if (tokens > 0) parts.push(`about ${tokens.toLocaleString("en-US")} tokens`);
  if (report.priced) {
    parts.push(report.costUsd > 0 ? `about ${dollars(report.costUsd)}` : "free");
  } else {
    parts.push(`cost unknown: no price is set for ${report.model}`);
  }
  parts.push(`about ${spanWords(report.expectedSecs)} (${report.timeBasis})`);
  return parts.join(" · ");
}

/** What to know before adding: each video's note and error, and the refused paths. */
export function estimateNotes(report: EstimateReport): string[] {
  const notes: string[] = [];
  for (const video of report.videos) {
    const name = lastPathPart(video.path);
    if (video.error) notes.push(`${name}: ${video.error}`);
    else if (video.note) notes.push(`${name}: ${video.note}`);
  }
  for (const refused of report.refused) {
    notes.push(`${refused.path}: ${refused.reason ?? "not added"}`);
  }
  return notes;
}

/** The wishes typed into the sheet, as the engine takes them: blank is none. */
export function wishesOf(
  language: string,
  words: string,
  prompt: string,
): Pick<AddOptions, "language" | "words" | "prompt"> {
  const count = Number.parseInt(words, 10);
  return {
    language: language.trim() || null,
    words: Number.isFinite(count) ? count : null,
    prompt: prompt.trim() || null,
  };
}

/** The wishes said back in the sheet: `Told in French, about 120 words, with your instructions.` */
export function wishesWords(options: Pick<AddOptions, "language" | "words" | "prompt">): string {
  const parts = [styleWords(options)];
  if (options.prompt) parts.push("with your instructions");
  const said = parts.filter((part) => part).join(", ");
  return said ? `Told ${said}.` : "";
}

/** Whether `error` is the engine refusing what was asked (a wish out of range, or one the
 * storyteller cannot keep), rather than a fault in working out the estimate. */
export function isRefusedWish(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === "invalid_argument";
}

export interface DropCommands {
  estimate(paths: string[], options: AddOptions): Promise<EstimateReport>;
  describe(error: unknown): string;
}

export class DropSheet {
  private readonly dialog = document.getElementById("drop-sheet") as HTMLDialogElement;
  private readonly title = document.getElementById("drop-sheet-title")!;
  private readonly storyteller = document.getElementById("drop-sheet-storyteller") as HTMLSelectElement;
  private readonly preset = document.getElementById("drop-sheet-preset") as HTMLSelectElement;
  private readonly estimate = document.getElementById("drop-sheet-estimate")!;
  private readonly notes = document.getElementById("drop-sheet-notes")!;
  private readonly add = document.getElementById("drop-sheet-add") as HTMLButtonElement;
  private readonly wishes = document.getElementById("drop-sheet-wishes") as HTMLDetailsElement;
  private readonly language = document.getElementById("drop-sheet-language") as HTMLInputElement;
  private readonly words = document.getElementById("drop-sheet-words") as HTMLInputElement;
  private readonly prompt = document.getElementById("drop-sheet-prompt") as HTMLTextAreaElement;
  private readonly wishesNote = document.getElementById("drop-sheet-wishes-note")!;
  private typing: ReturnType<typeof setTimeout> | undefined;
  private storytellers: StorytellerInfo[] = [];
  private paths: string[] = [];
  private answer: ((options: AddOptions | null) => void) | null = null;
  // Estimates are asked for in turn; only the latest one is shown.
  private asked = 0;

  constructor(private readonly commands: DropCommands) {
    this.storyteller.addEventListener("change", () => {
      this.fillPresets(null);
      void this.reestimate();
    });
    this.preset.addEventListener("change", () => void this.reestimate());
    // Typed wishes are estimated once the typing pauses, not at every key.
    for (const field of [this.language, this.words, this.prompt]) {
      field.addEventListener("input", () => {
        clearTimeout(this.typing);
        this.typing = setTimeout(() => void this.reestimate(), 300);
      });
    }
    document.getElementById("drop-sheet-cancel")!.addEventListener("click", () => this.finish(null));
    this.dialog.addEventListener("cancel", () => this.finish(null));
    document.getElementById("drop-sheet-form")!.addEventListener("submit", (event) => {
      event.preventDefault();
      this.finish(this.options());
    });
  }

  /** Asks about `paths` to be told by `storyteller`: the options to add them with, or `null`. */
  ask(paths: string[], storyteller: string, storytellers: StorytellerInfo[], preset: string | null): Promise<AddOptions | null> {
    this.finish(null);
    this.paths = paths;
    this.storytellers = storytellers;
    this.storyteller.replaceChildren(
      ...storytellers.map(
        (s) => new Option(providerName(s.name), s.name, false, s.name === storyteller),
      ),
    );
    this.fillPresets(preset);
    this.title.textContent = `Add ${count(paths.length, "item", "items")}?`;
    this.dialog.showModal();
    void this.reestimate();
    return new Promise((resolve) => {
      this.answer = resolve;
    });
  }

  /** What the sheet asks for now. The wishes stay from one drop to the next, as a person
   * writing in one language wants. */
  private options(): AddOptions {
    return {
      storyteller: this.storyteller.value,
      preset: this.preset.value || null,
      ...wishesOf(this.language.value, this.words.value, this.prompt.value),
    };
  }

  private finish(options: AddOptions | null): void {
    clearTimeout(this.typing);
    const answer = this.answer;
    this.answer = null;
    if (this.dialog.open) this.dialog.close();
    answer?.(options);
  }

  private fillPresets(chosen: string | null): void {
    const teller = this.storytellers.find((s) => s.name === this.storyteller.value);
    const presets = teller?.presets ?? [];
    this.preset.replaceChildren(
      ...presets.map((p, i) => new Option(p, p, false, chosen && presets.includes(chosen) ? p === chosen : i === 0)),
    );
  }

  private async reestimate(): Promise<void> {
    const asked = ++this.asked;
    this.estimate.textContent = "Working out what it will cost and take…";
    this.notes.replaceChildren();
    this.add.disabled = true;
    try {
      const options = this.options();
      const report = await this.commands.estimate(this.paths, options);
      if (asked !== this.asked) return;
      this.wishesNote.textContent = wishesWords(options);
      const videos = report.videos.filter((v) => !v.error).length;
      this.estimate.textContent = estimateWords(report);
      this.notes.replaceChildren(
        ...estimateNotes(report).map((note) => {
          const item = document.createElement("li");
          item.textContent = note;
          return item;
        }),
      );
      this.add.textContent = `Add ${count(videos, "video", "videos")}`;
      this.add.disabled = videos === 0;
    } catch (error) {
      if (asked !== this.asked) return;
      this.estimate.textContent = this.commands.describe(error);
      if (isRefusedWish(error)) {
        // A wish the storyteller cannot keep would be refused on adding too: say so by the
        // wishes, and add nothing until it is changed.
        this.wishes.open = true;
        this.wishesNote.textContent = this.commands.describe(error);
        this.add.textContent = "Add";
        this.add.disabled = true;
        return;
      }
      // The estimate is advice: the videos can be added all the same.
      this.add.textContent = "Add anyway";
      this.add.disabled = false;
    }
  }
}
