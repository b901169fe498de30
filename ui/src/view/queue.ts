// The list of videos: one row per job, only the rows in view exist in the page (a history of
// thousands of videos scrolls as smoothly as ten), and each row repaints alone when its job
// changes.

import type { JobView } from "../bindings";
import { activity, duration, lastPathPart, thumbnailUrl } from "../format";

export const ROW_HEIGHT = 64;
/** Rows painted beyond each edge of the view, so a quick scroll shows no blank. */
const OVERSCAN = 8;

export interface QueueListActions {
  select(id: string): void;
  open(id: string): void;
  remove(id: string): void;
  copy(id: string): void;
  retry(id: string): void;
}

export class QueueList {
  private rows: JobView[] = [];
  private readonly index = new Map<string, number>();
  private readonly painted = new Map<string, HTMLElement>();
  private readonly spacer: HTMLElement;
  /** While searching: the line of each hit's story that matched, shown in its row. */
  private snippets = new Map<string, string>();
  selected: string | null = null;

  constructor(
    private readonly container: HTMLElement,
    private readonly actions: QueueListActions,
  ) {
    this.spacer = document.createElement("div");
    this.spacer.className = "queue-spacer";
    container.append(this.spacer);
    container.addEventListener("scroll", () => this.paint(), { passive: true });
    container.addEventListener("keydown", (event) => this.onKey(event));
    container.addEventListener("click", (event) => {
      const target = event.target as HTMLElement;
      const row = target.closest<HTMLElement>("[data-job-id]");
      if (!row) return;
      if (target.closest("[data-action='retry']")) {
        this.actions.retry(row.dataset.jobId!);
        return;
      }
      this.actions.select(row.dataset.jobId!);
    });
    container.addEventListener("dblclick", (event) => {
      const row = (event.target as HTMLElement).closest<HTMLElement>("[data-job-id]");
      if (row) this.actions.open(row.dataset.jobId!);
    });
  }

  /** The jobs to show, in order, and while searching the line of each story that matched. */
  setRows(rows: JobView[], snippets = new Map<string, string>()): void {
    this.rows = rows;
    this.snippets = snippets;
    this.index.clear();
    rows.forEach((job, i) => this.index.set(job.id, i));
    this.spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
    for (const [id, element] of this.painted) {
      if (!this.index.has(id)) {
        element.remove();
        this.painted.delete(id);
      }
    }
    this.paint(true);
  }

  /** Repaints the row of `job`, if it is in view. */
  update(job: JobView): void {
    const i = this.index.get(job.id);
    if (i === undefined) return;
    this.rows[i] = job;
    const element = this.painted.get(job.id);
    if (element) fillRow(element, job, job.id === this.selected, this.snippets.get(job.id));
  }

  /** Moves the selection to `id` and brings it into view. */
  setSelected(id: string | null): void {
    const previous = this.selected;
    this.selected = id;
    for (const changed of [previous, id]) {
      if (!changed) continue;
      const element = this.painted.get(changed);
      const i = this.index.get(changed);
      if (element && i !== undefined) {
        fillRow(element, this.rows[i], changed === id, this.snippets.get(changed));
      }
    }
    if (id) this.scrollTo(id);
  }

  visibleIds(): string[] {
    return [...this.painted.keys()];
  }

  private scrollTo(id: string): void {
    const i = this.index.get(id);
    if (i === undefined) return;
    const top = i * ROW_HEIGHT;
    const view = this.container;
    if (top < view.scrollTop) view.scrollTop = top;
    else if (top + ROW_HEIGHT > view.scrollTop + view.clientHeight) {
      view.scrollTop = top + ROW_HEIGHT - view.clientHeight;
    }
    this.paint();
  }

  private paint(all = false): void {
    const view = this.container;
    const height = view.clientHeight || 800;
    const first = Math.max(0, Math.floor(view.scrollTop / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(this.rows.length, Math.ceil((view.scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
    const wanted = new Set<string>();
    for (let i = first; i < last; i++) {
      const job = this.rows[i];
      wanted.add(job.id);
      let element = this.painted.get(job.id);
      const fresh = !element;
      if (!element) {
        element = document.createElement("div");
        element.setAttribute("role", "option");
        element.className = "row";
        this.painted.set(job.id, element);
        view.append(element);
      }
      element.style.transform = `translateY(${i * ROW_HEIGHT}px)`;
      if (fresh || all) fillRow(element, job, job.id === this.selected, this.snippets.get(job.id));
    }
    for (const [id, element] of this.painted) {
      if (!wanted.has(id)) {
        element.remove();
        this.painted.delete(id);
      }
    }
  }

  private onKey(event: KeyboardEvent): void {
    if (this.rows.length === 0) return;
    const current = this.selected ? (this.index.get(this.selected) ?? -1) : -1;
    const move = (to: number) => {
      event.preventDefault();
      const i = Math.max(0, Math.min(this.rows.length - 1, to));
      this.actions.select(this.rows[i].id);
    };
    switch (event.key) {
      case "ArrowDown":
        return move(current + 1);
      case "ArrowUp":
        return move(current - 1);
      case "PageDown":
        return move(current + Math.floor(this.container.clientHeight / ROW_HEIGHT));
      case "PageUp":
        return move(current - Math.floor(this.container.clientHeight / ROW_HEIGHT));
      case "Home":
        return move(0);
      case "End":
        return move(this.rows.length - 1);
      case "Enter":
        if (this.selected) {
          event.preventDefault();
          this.actions.open(this.selected);
        }
        return;
      case "Delete":
        if (this.selected) {
          event.preventDefault();
          this.actions.remove(this.selected);
        }
        return;
      case "c":
      case "C":
        if ((event.ctrlKey || event.metaKey) && this.selected && !window.getSelection()?.toString()) {
          event.preventDefault();
          this.actions.copy(this.selected);
        }
        return;
    }
  }
}

/** What a row says under the file name: what it is doing, its length, who tells it. */
export function rowDetail(job: JobView): string {
  const parts = [activity(job)];
  if (job.media) parts.push(duration(job.media.durationSecs));
  parts.push(job.storyteller === "offline" ? job.preset : `${job.storyteller} · ${job.preset}`);
  if (job.style.language) parts.push(job.style.language);
  if (job.folder) parts.push(`from ${lastPathPart(job.folder)}`);
  return parts.join(" · ");
}

/** Paints one row: thumbnail, name, what it is doing, and why it failed (with Retry). */
export function fillRow(element: HTMLElement, job: JobView, selected: boolean, snippet?: string): void {
  element.dataset.jobId = job.id;
  element.dataset.state = job.state;
  element.setAttribute("aria-selected", String(selected));
  element.id = `job-${job.id}`;
  element.replaceChildren();

  const thumb = document.createElement("div");
  thumb.className = "thumb";
  if (job.state === "succeeded") {
    const img = document.createElement("img");
    img.alt = "";
    img.loading = "lazy";
    img.src = thumbnailUrl(job.contentHash, 0);
    img.addEventListener("error", () => img.remove(), { once: true });
    thumb.append(img);
  }

  const text = document.createElement("div");
  text.className = "row-text";
  const file = document.createElement("div");
  file.className = "file";
  file.textContent = job.file;
  file.title = job.folder ? `${job.source}\nfrom the watched folder ${job.folder}` : job.source;
  const detail = document.createElement("div");
  detail.className = snippet ? "detail snippet" : "detail";
  detail.textContent = snippet ?? rowDetail(job);
  if (snippet) detail.title = snippet;
  text.append(file, detail);
  if (job.error && job.state !== "succeeded") {
    const error = document.createElement("div");
    error.className = "error";
    error.textContent = job.error.message;
    error.title = job.error.message;
    text.append(error);
  }

  const bar = document.createElement("div");
  bar.className = "progress";
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", `${job.file} progress`);
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "100");
  const percent = job.state === "succeeded" ? 100 : Math.round(job.progress * 100);
  bar.setAttribute("aria-valuenow", String(percent));
  const fill = document.createElement("div");
  fill.className = "progress-fill";
  fill.style.width = `${percent}%`;
  bar.append(fill);

  const badge = document.createElement("span");
  badge.className = `badge badge-${job.state}`;
  badge.textContent = job.state === "dead" ? "Failed" : "";

  element.append(thumb, text, bar, badge);
  if (job.state === "dead" || job.state === "cancelled") {
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "row-retry";
    retry.dataset.action = "retry";
    retry.textContent = "Retry";
    retry.setAttribute("aria-label", `Retry ${job.file}`);
    retry.tabIndex = -1;
    element.append(retry);
  }
}
