// The Watched folders part of the settings dialog: each folder the engine watches, with what
// its watcher is doing (watching, missing, error with the reason …), what came of its videos,
// and buttons to pause, resume and stop watching it; and a form to watch another one (a path
// typed or chosen in the system's folder dialog). Changes here are the engine's at once, like
// the keys: they do not wait for Save. Statuses arrive as events; the list is read again only
// when folders were added, removed or changed (here or in another process).

import type { StorytellerInfo, WatchedFolderView, WatchRequest, WatchStatus } from "../bindings";
import { providerName } from "./keys";

/** What a folder's watcher is doing, in words. */
export function statusWords(status: WatchStatus): string {
  switch (status.state) {
    case "starting":
      return "Starting: looking for videos added while it was not watched";
    case "watching": {
      const how = status.polling ? "Watching (checked every few seconds)" : "Watching";
      return status.note ? `${how}: ${status.note}` : how;
    }
    case "missing":
      return `Missing: ${status.reason}. Watching resumes when it is back`;
    case "error":
      return `Not watched: ${status.reason}. Tried again by itself`;
    case "paused":
      return "Paused";
    case "idle":
      return "Not watched now: the queue is not running";
  }
}

/** A short class name for the status, for its colour. */
export function statusTone(status: WatchStatus): "good" | "warn" | "bad" | "quiet" {
  switch (status.state) {
    case "watching":
      return "good";
    case "missing":
    case "error":
      return "bad";
    case "starting":
      return "warn";
    default:
      return "quiet";
  }
}

/** What came of a folder's videos, e.g. "12 videos found · 2 waiting · 1 being told · 9 told". */
export function outcomeWords(folder: WatchedFolderView): string {
  const parts = [folder.found === 1 ? "1 video found" : `${folder.found} videos found`];
  if (folder.queued) parts.push(`${folder.queued} waiting`);
  if (folder.running) parts.push(`${folder.running} being told`);
  if (folder.succeeded) parts.push(`${folder.succeeded} told`);
  if (folder.failed) parts.push(`${folder.failed} failed`);
  return parts.join(" · ");
}

/** How a folder is watched and what is done with its stories, in words. */
export function choiceWords(folder: WatchedFolderView): string {
  const parts = [folder.recursive ? "with its subfolders" : "this folder only"];
  parts.push(folder.storyteller ? providerName(folder.storyteller) : "the settings' storyteller");
  if (folder.preset) parts.push(folder.preset);
  if (folder.extensions.length) parts.push(folder.extensions.map((e) => `.${e}`).join(" "));
  if (folder.output === "beside") parts.push("stories beside the videos");
  if (folder.output === "folder" && folder.outputFolder) parts.push(`stories into ${folder.outputFolder}`);
  if (folder.moveDone) parts.push("told videos moved into done");
  if (folder.poll) parts.push("polled");
  return parts.join(" · ");
}

/** What the add form holds, as the engine is asked. */
export interface AddForm {
  path: string;
  recursive: boolean;
  storyteller: string;
  beside: boolean;
  moveDone: boolean;
  poll: boolean;
}

/** The request for the add form, or why it cannot be sent. */
export function requestFromForm(form: AddForm): WatchRequest | string {
  const path = form.path.trim();
  if (!path) return "Choose a folder, or type its path, first.";
  return {
    path,
    recursive: form.recursive,
    storyteller: form.storyteller || null,
    beside: form.beside,
    moveDone: form.moveDone,
    poll: form.poll,
  };
}

export interface FolderCommands {
  list(): Promise<WatchedFolderView[]>;
  add(request: WatchRequest): Promise<WatchedFolderView>;
  remove(path: string): Promise<WatchedFolderView>;
  pause(path: string, paused: boolean): Promise<WatchedFolderView>;
  /** The system's folder dialog: the chosen folder, or null. */
  chooseFolder(): Promise<string | null>;
  describe(error: unknown): string;
}

export class FolderSettings {
  private readonly rows = document.getElementById("watched-folders")!;
  private readonly pathInput = document.getElementById("watch-path") as HTMLInputElement;
  private readonly storyteller = document.getElementById("watch-storyteller") as HTMLSelectElement;
  private readonly problem = document.getElementById("watch-error")!;
  private readonly addButton = document.getElementById("watch-add") as HTMLButtonElement;
  private readonly box = (id: string) => document.getElementById(id) as HTMLInputElement;
  private folders: WatchedFolderView[] = [];
  private shown = false;

  constructor(private readonly commands: FolderCommands) {
    document.getElementById("watch-choose")!.addEventListener("click", async () => {
      try {
        const chosen = await this.commands.chooseFolder();
        if (chosen) this.pathInput.value = chosen;
      } catch (error) {
        this.problem.textContent = this.commands.describe(error);
      }
    });
    this.addButton.addEventListener("click", () => void this.add());
    // Enter in the path field watches it rather than saving the whole dialog.
    this.pathInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        void this.add();
      }
    });
  }

  /** Fills the list in (when the dialog opens), with the storytellers to choose from. */
  async show(storytellers: StorytellerInfo[]): Promise<void> {
    this.shown = true;
    this.problem.textContent = "";
    const keep = this.storyteller.value;
    this.storyteller.replaceChildren(
      new Option("The settings' storyteller", ""),
      ...storytellers.map((s) => new Option(providerName(s.name), s.name, false, s.name === keep)),
    );
    await this.refresh();
  }

  /** Whether the dialog shows the list (events repaint it only then). */
  get isShown(): boolean {
    return this.shown;
  }

  /** The dialog closed: events stop repainting the list. */
  hide(): void {
    this.shown = false;
  }

  /** Reads the folders again (they were added, removed or changed, maybe elsewhere). */
  async refresh(): Promise<void> {
    if (!this.shown) return;
    try {
      this.folders = await this.commands.list();
      this.paint();
    } catch (error) {
      this.rows.textContent = this.commands.describe(error);
    }
  }

  /** A folder's watcher said what it is doing now. */
  statusChanged(path: string, status: WatchStatus): void {
    const folder = this.folders.find((f) => f.path === path);
    if (!folder) return;
    folder.status = status;
    const words = this.rows.querySelector<HTMLElement>(`[data-folder="${CSS.escape(path)}"] .folder-status`);
    if (words) paintStatus(words, status);
  }

  private paint(): void {
    if (this.folders.length === 0) {
      const none = document.createElement("p");
      none.className = "meta";
      none.id = "watched-folders-none";
      none.textContent = "No folder is watched. Videos added to a watched folder are told by themselves.";
      this.rows.replaceChildren(none);
      return;
    }
    this.rows.replaceChildren(...this.folders.map((folder) => this.row(folder)));
  }

  private row(folder: WatchedFolderView): HTMLElement {
    const row = document.createElement("div");
    row.className = "watched-folder";
    row.dataset.folder = folder.path;
    const path = document.createElement("div");
    path.className = "folder-path";
    path.textContent = folder.path;
    path.title = folder.path;
    const status = document.createElement("div");
    status.className = "folder-status";
    paintStatus(status, folder.status);
    const choices = document.createElement("div");
    choices.className = "meta folder-choices";
    choices.textContent = choiceWords(folder);
    const outcome = document.createElement("div");
    outcome.className = "meta folder-outcome";
    outcome.textContent = outcomeWords(folder);
    const pause = document.createElement("button");
    pause.type = "button";
    pause.className = "folder-pause";
    pause.textContent = folder.paused ? "Resume" : "Pause";
    pause.setAttribute("aria-label", `${folder.paused ? "Resume" : "Pause"} watching ${folder.path}`);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "folder-remove";
    remove.textContent = "Stop watching";
    remove.setAttribute("aria-label", `Stop watching ${folder.path}`);
    const problem = document.createElement("p");
    problem.className = "error";
    problem.setAttribute("role", "alert");
    pause.addEventListener("click", () =>
      this.act(problem, () => this.commands.pause(folder.path, !folder.paused)),
    );
    remove.addEventListener("click", () => this.act(problem, () => this.commands.remove(folder.path)));
    row.append(path, status, choices, outcome, pause, remove, problem);
    return row;
  }

  private async act(problem: HTMLElement, action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
      await this.refresh();
    } catch (error) {
      problem.textContent = this.commands.describe(error);
    }
  }

  private async add(): Promise<void> {
    const request = requestFromForm({
      path: this.pathInput.value,
      recursive: this.box("watch-recursive").checked,
      storyteller: this.storyteller.value,
      beside: this.box("watch-beside").checked,
      moveDone: this.box("watch-move-done").checked,
      poll: this.box("watch-poll").checked,
    });
    if (typeof request === "string") {
      this.problem.textContent = request;
      return;
    }
    this.addButton.disabled = true;
    this.problem.textContent = "";
    try {
      await this.commands.add(request);
      // Ready for the next folder, with the choices fresh.
      this.pathInput.value = "";
      for (const id of ["watch-recursive", "watch-beside", "watch-move-done", "watch-poll"]) {
        this.box(id).checked = false;
      }
      await this.refresh();
    } catch (error) {
      this.problem.textContent = this.commands.describe(error);
    } finally {
      this.addButton.disabled = false;
    }
  }
}

function paintStatus(element: HTMLElement, status: WatchStatus): void {
  element.textContent = statusWords(status);
  element.dataset.tone = statusTone(status);
  element.dataset.state = status.state;
}
