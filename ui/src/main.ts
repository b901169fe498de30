// The window: loads the queue once, then follows the engine's events. Events between two
// frames are merged and painted once, so a busy queue costs one repaint per frame at most;
// no timer ever asks the engine for anything.

import { getCurrentWebview } from "@tauri-apps/api/webview";
import { open, save } from "@tauri-apps/plugin-dialog";
import { events, type AddOptions, type AddReport, type Envelope, type JobState, type StorytellerInfo } from "./bindings";
import { api, describe } from "./api";
import { count, dollars, duration, exportFormatOf, pauseWords } from "./format";
import { summarize, timeLeft } from "./summary";
import { emptyChange, mergeChange, QueueModel, type Change } from "./model";
import { QueueList } from "./view/queue";
import { ConfigRows } from "./view/config";
import { asksFirst, DropSheet } from "./view/drop";
import { FolderSettings } from "./view/folders";
import { AiSettings, providerName } from "./view/keys";
import { SettingsDialog } from "./view/settings";
import { StoryPanel } from "./view/story";

const VIDEO_EXTENSIONS = [
  "3g2", "3gp", "asf", "avi", "dv", "f4v", "flv", "m2t", "m2ts", "m4v", "mkv", "mod", "mov",
  "mp4", "mpeg", "mpg", "mts", "mxf", "ogv", "qt", "rm", "rmvb", "ts", "vob", "webm", "wmv",
];

const model = new QueueModel();
let pending: Change | null = null;
/** When the oldest event not yet painted arrived (for the event-to-screen figure). */
let pendingSince: number | null = null;

/**
 * Figures the benchmarks read from the page: how long events waited to be on screen (ms, one
 * per painted frame that carried events), and when the first list was painted.
 */
const metrics = { eventToPaint: [] as number[], readyAt: 0 };
(window as unknown as { storytellerMetrics: typeof metrics }).storytellerMetrics = metrics;
let query = "";
let stateFilter: JobState | null = null;
/** What the engine's search of the history found for `query`: each hit's matching line. */
let found = new Map<string, string>();
let searchTimer: number | undefined;
let storytellers: StorytellerInfo[] = [];
let loaded = false;
const early: Envelope[] = [];

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const banner = byId<HTMLDivElement>("banner");
const statusLine = byId<HTMLElement>("status");
const dropZone = byId<HTMLElement>("drop-zone");
const overlay = byId<HTMLElement>("drop-overlay");
const pauseButton = byId<HTMLButtonElement>("pause");
const concurrencyInput = byId<HTMLInputElement>("concurrency");

let bannerTimer: number | undefined;

/** Shows `message` above the list: news goes by itself after a while, errors stay until clicked. */
function say(message: string, kind: "info" | "error" = "info"): void {
  banner.textContent = message;
  banner.dataset.kind = kind;
  banner.hidden = false;
  window.clearTimeout(bannerTimer);
  if (kind === "info") bannerTimer = window.setTimeout(() => (banner.hidden = true), 8000);
}

function fail(error: unknown): void {
  say(describe(error), "error");
}

const story = new StoryPanel({
  copy: (id) => void copy(id),
  retry: (id) => api.retry(id).catch(fail),
  cancel: (id) => api.cancel(id).catch(fail),
  remove: (id) => void remove(id),
  setPriority: (id, priority) => api.setPriority(id, priority).catch(fail),
  retell: (id, preset) =>
    api
      .retell(id, preset)
      .then((report) => reportAdd(report))
      .catch(fail),
  openVideo: (id) => api.openVideo(id).catch(fail),
  showInFolder: (id) => api.showInFolder(id).catch(fail),
  presetsOf: (name) => storytellers.find((s) => s.name === name)?.presets ?? [],
});

const list = new QueueList(byId("queue"), {
  select: (id) => select(id),
  open: (id) => {
    select(id);
    byId("story-text").focus();
  },
  remove: (id) => void remove(id),
  copy: (id) => void copy(id),
  retry: (id) => api.retry(id).catch(fail),
});

const configRows = new ConfigRows({ list: api.configList, set: api.configSet, describe });

const settings = new SettingsDialog(async (next) => {
  try {
    // The storytellers' keys and prices are the rows' to change (maybe in a save before this
    // one that was partly refused): what the engine holds, not what the dialog opened with.
    const latest = await api.settings();
    await api.updateSettings({ ...next, storytellers: latest.storytellers, prices: latest.prices });
  } catch (error) {
    return describe(error);
  }
  // The storytellers' keys go after the rest, which was read before they changed.
  const problem = await configRows.apply();
  await refreshStorytellers(next.storyteller);
  return problem;
});

const dropSheet = new DropSheet({ estimate: api.estimate, describe });
const dropStoryteller = byId<HTMLSelectElement>("drop-storyteller");
// The settings' storyteller and preset, which drops get unless "Tell with" says otherwise.
let defaults: { storyteller: string; preset: string | null } = { storyteller: "offline", preset: null };

/** Reads the storytellers again (their default models follow the settings). */
async function refreshStorytellers(chosen?: string): Promise<void> {
  try {
    const [tellers, current] = await Promise.all([api.storytellers(), api.settings()]);
    storytellers = tellers;
    const before = defaults.storyteller;
    defaults = { storyteller: current.storyteller ?? "offline", preset: current.preset ?? null };
    // The drop sheet's wishes left empty are the settings' defaults: it says which.
    byId<HTMLInputElement>("drop-sheet-language").placeholder = current.language ?? "English";
    byId<HTMLInputElement>("drop-sheet-words").placeholder =
      current.words == null ? "the preset's length" : `${current.words} (the default)`;
    // "Tell with" follows the settings unless the person chose another storyteller there.
    const shown = dropStoryteller.value;
    const keep = chosen ?? (shown && shown !== before ? shown : defaults.storyteller);
    dropStoryteller.replaceChildren(
      ...tellers.map((t) => new Option(providerName(t.name), t.name, false, t.name === keep)),
    );
  } catch (error) {
    fail(error);
  }
}

const aiSettings = new AiSettings(
  {
    keys: api.apiKeys,
    setKey: api.setApiKey,
    forgetKey: api.forgetApiKey,
    check: api.checkStoryteller,
    describe,
  },
  () => byId<HTMLSelectElement>("setting-storyteller").value,
);

const folderSettings = new FolderSettings({
  list: () => api.watchedFolders(),
  add: (request) => api.watchAdd(request),
  remove: (path) => api.watchRemove(path),
  pause: (path, paused) => api.watchPause(path, paused),
  chooseFolder: async () => {
    const chosen = await open({ directory: true, multiple: false, title: "Watch a folder" });
    return typeof chosen === "string" ? chosen : null;
  },
  describe,
});
byId<HTMLDialogElement>("settings").addEventListener("close", () => folderSettings.hide());
/** When the watched folders' counts were last read for jobs that changed (at most twice a second). */
let foldersReadAt = 0;
let foldersTimer: number | undefined;

/** Reads the watched folders again soon: their jobs moved on, so their counts did. */
function refreshFolderCounts(): void {
  if (foldersTimer !== undefined) return;
  const wait = Math.max(0, foldersReadAt + 500 - performance.now());
  foldersTimer = window.setTimeout(() => {
    foldersTimer = undefined;
    foldersReadAt = performance.now();
    void folderSettings.refresh();
  }, wait);
}

function select(id: string | null): void {
  list.setSelected(id);
  const job = id ? model.job(id) : undefined;
  story.show(job, id ? model.storyText(id) : "");
  // Listings leave the stories out: a told story is read when it is first shown.
  if (job && job.state === "succeeded" && !model.storyText(job.id)) void reread(job.id);
}

async function copy(id: string): Promise<void> {
  try {
    await api.copyStory(id);
    const button = byId<HTMLButtonElement>("copy-story");
    button.textContent = "Copied";
    button.dataset.copied = "true";
    window.setTimeout(() => {
      button.textContent = "Copy";
      delete button.dataset.copied;
    }, 1500);
  } catch (error) {
    fail(error);
  }
}

async function remove(id: string): Promise<void> {
  const job = model.job(id);
  if (job?.state === "running") {
    say(`${job.file} is being worked on; cancel it first.`);
    return;
  }
  await api.remove(id).catch(fail);
}

/** Queues a repaint of what `change` touched, on the next frame. */
function schedule(change: Change): void {
  if (pending) {
    mergeChange(pending, change);
    return;
  }
  pending = change;
  requestAnimationFrame(paint);
}

function paint(): void {
  const change = pending ?? emptyChange();
  pending = null;
  if (change.resync) {
    void resync();
    return;
  }
  if (change.structure) {
    const searching = query.trim() !== "";
    list.setRows(
      model.filtered(query, stateFilter, searching ? new Set(found.keys()) : undefined),
      searching ? found : undefined,
    );
  } else {
    for (const id of change.rows) {
      const job = model.job(id);
      if (job) list.update(job);
    }
  }
  const shown = story.jobId;
  if (shown) {
    const job = model.job(shown);
    if (!job) select(null);
    else if (change.rows.has(shown) || change.stories.has(shown)) story.show(job, model.storyText(shown));
  }
  if (change.stats || change.structure) paintStatus();
  if (change.settings) void refreshStorytellers();
  for (const [folder, status] of change.folderStatuses) folderSettings.statusChanged(folder, status);
  if (change.folders) void folderSettings.refresh();
  else if (folderSettings.isShown) {
    const ids = [...change.rows, ...change.reread];
    if (change.structure || ids.some((id) => model.job(id)?.folder)) refreshFolderCounts();
  }
  dropZone.hidden = model.size > 0;
  for (const id of change.reread) void reread(id);
  if (pendingSince !== null) {
    const since = pendingSince;
    pendingSince = null;
    // Measured once the browser has laid out and painted this frame's changes.
    requestAnimationFrame(() => {
      if (metrics.eventToPaint.length < 100_000) metrics.eventToPaint.push(performance.now() - since);
    });
  }
}

async function reread(id: string): Promise<void> {
  try {
    // An event about the job while it was read makes the read stale: read it again (a few times
    // at most; a job that busy is read again by its next event anyway).
    for (let tries = 1; ; tries++) {
      const mark = model.markFor(id);
      const job = await api.getJob(id);
      const isNew = !model.job(id);
      if (!model.putRead(job, mark)) {
        if (tries < 5) continue;
        model.put(job);
      }
      const change = emptyChange();
      change.rows.add(id);
      change.stories.add(id);
      change.structure = isNew;
      schedule(change);
      return;
    }
  } catch {
    // Removed meanwhile: its `jobsRemoved` event follows.
  }
}

function paintStatus(): void {
  const stats = model.stats;
  const concurrency = model.concurrency ?? (Number(concurrencyInput.value) || 1);
  const summary = summarize(model.all(), stats, concurrency);
  const parts: string[] = [];
  const total = stats ? stats.queued + stats.running + stats.succeeded + stats.dead + stats.cancelled : model.size;
  parts.push(`${summary.done} of ${count(total, "video", "videos")} done`);
  if (summary.remaining) parts.push(`${summary.remaining} left`);
  if (stats?.running) parts.push(`${stats.running} working`);
  if (summary.failed) parts.push(`${summary.failed} failed`);
  if (stats?.cancelled) parts.push(`${stats.cancelled} cancelled`);
  if (summary.videoSecs > 0) parts.push(`${duration(summary.videoSecs)} of video`);
  if (summary.remaining && !model.paused) {
    parts.push(summary.leftSecs === null ? "estimating time left…" : timeLeft(summary.leftSecs));
  }
  if (summary.cacheHits) parts.push(`${summary.cacheHits} told before`);
  const spent = model.all().reduce((sum, job) => sum + (job.usage?.costUsd ?? 0), 0);
  if (spent > 0) parts.push(`${dollars(spent)} spent`);
  if (stats && (stats.spentTodayUsd > 0 || stats.spentThisMonthUsd > 0)) {
    parts.push(`${dollars(stats.spentTodayUsd)} today, ${dollars(stats.spentThisMonthUsd)} this month`);
  }
  if (model.paused) parts.push(`Paused: ${model.paused}`);
  for (const pause of model.pausedStorytellers) parts.push(pauseWords(pause));
  statusLine.textContent = parts.join(" · ");
  pauseButton.textContent = model.paused ? "Resume" : "Pause";
  pauseButton.setAttribute("aria-pressed", String(Boolean(model.paused)));
  if (model.concurrency !== null && document.activeElement !== concurrencyInput) {
    concurrencyInput.value = String(model.concurrency);
  }
}

/** Asks the engine's history search for `query`, once typing pauses. */
function searchHistory(): void {
  window.clearTimeout(searchTimer);
  const asked = query.trim();
  if (!asked) {
    found = new Map();
    return;
  }
  searchTimer = window.setTimeout(async () => {
    try {
      const hits = await api.search(asked);
      if (query.trim() !== asked) return;
      found = new Map(hits.map((hit) => [hit.job.id, hit.snippet]));
      const change = emptyChange();
      change.structure = true;
      schedule(change);
    } catch (error) {
      fail(error);
    }
  }, 80);
}

function onEvent(envelope: Envelope): void {
  if (!loaded) {
    early.push(envelope);
    return;
  }
  pendingSince ??= performance.now();
  schedule(model.apply(envelope));
}

/** Reads everything again; `onFirstPage` runs once the first rows are in the model. */
async function reload(onFirstPage?: () => void): Promise<void> {
  const stats = api.stats();
  model.load([]);
  let first = true;
  await api.listPages((jobs) => {
    for (const job of jobs) model.put(job);
    const change = emptyChange();
    change.structure = true;
    schedule(change);
    if (first) {
      first = false;
      onFirstPage?.();
    }
  });
  const counts = await stats;
  model.stats = counts;
  model.paused = counts.paused;
  model.pausedStorytellers = counts.pausedStorytellers;
  const change = emptyChange();
  change.stats = true;
  schedule(change);
}

/**
 * Events were missed: reads everything again, holding the events that arrive meanwhile until
 * the listing is in, so rows keep the order they were added in.
 */
async function resync(): Promise<void> {
  if (!loaded) return;
  loaded = false;
  try {
    await reload();
  } catch (error) {
    fail(error);
  }
  loaded = true;
  for (const envelope of early.splice(0)) schedule(model.apply(envelope));
}

function reportAdd(report: AddReport): void {
  const counts = { queued: 0, cached: 0, alreadyAdded: 0, refused: 0, skipped: 0 };
  for (const entry of report.entries) counts[entry.outcome] += 1;
  const parts: string[] = [];
  if (counts.queued) parts.push(`${count(counts.queued, "video", "videos")} added`);
  if (counts.cached) parts.push(`${counts.cached} told before (story reused)`);
  if (counts.alreadyAdded) parts.push(`${counts.alreadyAdded} already in the queue`);
  const refused = report.entries.filter((e) => e.outcome === "refused");
  if (refused.length) {
    parts.push(
      `${refused.length} refused: ` + refused.map((e) => `${e.path} (${e.reason})`).join("; "),
    );
  }
  if (!parts.length) parts.push("Nothing to add: no videos there.");
  say(parts.join(" · "), refused.length ? "error" : "info");
}

// What a drop onto the window does, also reachable from the page for the window's tests (an
// automated browser cannot make a drop from the desktop).
(window as unknown as { storytellerDrop: typeof addPaths }).storytellerDrop = (paths) => addPaths(paths);

async function addPaths(paths: string[]): Promise<void> {
  if (!paths.length) return;
  const teller = dropStoryteller.value || defaults.storyteller;
  let options: AddOptions = teller === defaults.storyteller ? {} : { storyteller: teller };
  if (asksFirst(teller)) {
    const preset = teller === defaults.storyteller ? defaults.preset : null;
    const chosen = await dropSheet.ask(paths, teller, storytellers, preset);
    if (!chosen) return;
    options = chosen;
  }
  try {
    reportAdd(await api.addPaths(paths, options));
  } catch (error) {
    fail(error);
  }
}

function wireButtons(): void {
  byId("add-videos").addEventListener("click", async () => {
    const chosen = await open({
      multiple: true,
      title: "Add videos",
      filters: [{ name: "Videos", extensions: VIDEO_EXTENSIONS }],
    }).catch(fail);
    if (chosen) await addPaths(Array.isArray(chosen) ? chosen : [chosen]);
  });
  pauseButton.addEventListener("click", () =>
    (model.paused ? api.resume() : api.pause()).catch(fail),
  );
  byId("retry-failed").addEventListener("click", () =>
    api
      .retryFailed()
      .then((jobs) => say(jobs.length ? `${count(jobs.length, "video", "videos")} queued again` : "Nothing has failed."))
      .catch(fail),
  );
  byId("clear-finished").addEventListener("click", () =>
    api
      .clearFinished()
      .then((n) => say(`${count(n, "finished video", "finished videos")} cleared`))
      .catch(fail),
  );
  byId("copy-all").addEventListener("click", () =>
    api
      .copyStories(null)
      .then((n) => say(`${count(n, "story", "stories")} copied, each under its file name`))
      .catch(fail),
  );
  byId("export-all").addEventListener("click", async () => {
    const path = await save({
      title: "Export every story",
      defaultPath: "stories.md",
      filters: [
        { name: "Markdown", extensions: ["md"] },
        { name: "Word", extensions: ["docx"] },
        { name: "PDF", extensions: ["pdf"] },
        { name: "Text", extensions: ["txt"] },
        { name: "JSON", extensions: ["json"] },
      ],
    }).catch(fail);
    if (!path) return;
    const format = exportFormatOf(path);
    try {
      const n = await api.exportStories(path, format);
      say(`${count(n, "story", "stories")} exported to ${path}`);
    } catch (error) {
      fail(error);
    }
  });
  byId<HTMLInputElement>("search").addEventListener("input", (event) => {
    query = (event.target as HTMLInputElement).value;
    searchHistory();
    const change = emptyChange();
    change.structure = true;
    schedule(change);
  });
  byId<HTMLSelectElement>("state-filter").addEventListener("change", (event) => {
    stateFilter = ((event.target as HTMLSelectElement).value || null) as JobState | null;
    const change = emptyChange();
    change.structure = true;
    schedule(change);
  });
  concurrencyInput.addEventListener("change", () => {
    const n = Number(concurrencyInput.value);
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      say("Videos at once must be a whole number from 1 to 64.", "error");
      return;
    }
    api.setConcurrency(n).catch(fail);
  });
  byId("open-settings").addEventListener("click", async () => {
    try {
      const [current, storytellers] = await Promise.all([api.settings(), api.storytellers()]);
      settings.open(current, storytellers);
      void aiSettings.show();
      void folderSettings.show(storytellers);
      void configRows.show();
    } catch (error) {
      fail(error);
    }
  });
  banner.addEventListener("click", () => (banner.hidden = true));
}

async function start(): Promise<void> {
  wireButtons();
  void Promise.all([refreshStorytellers(), api.settings()])
    .then(([, current]) => {
      if (model.concurrency === null) concurrencyInput.value = String(current.concurrency);
    })
    .catch(fail);
  // Each of these is a round trip to the app: they go together, and only the listening must
  // be in place before the first listing (so that no change falls between the two).
  const listening = events.engineEvent.listen((event) => onEvent(event.payload));
  void getCurrentWebview()
    .onDragDropEvent((event) => {
      const kind = event.payload.type;
      overlay.hidden = !(kind === "enter" || kind === "over");
      if (kind === "drop") void addPaths(event.payload.paths);
    })
    .catch(fail);
  void api
    .status()
    .then((status) => {
      if (status.problem) say(status.problem.message, "error");
    })
    .catch(fail);
  await listening;
  const firstPainted = () =>
    requestAnimationFrame(() =>
      requestAnimationFrame(() => {
        metrics.readyAt = Date.now();
        document.documentElement.dataset.ready = "true";
      }),
    );
  try {
    await reload(firstPainted);
  } catch (error) {
    fail(error);
    firstPainted();
  }
  loaded = true;
  for (const envelope of early.splice(0)) schedule(model.apply(envelope));
  // Open on a story rather than an empty panel: the newest one told, else the first video.
  const jobs = model.all();
  const first = [...jobs].reverse().find((job) => job.state === "succeeded") ?? jobs[0];
  if (first) requestAnimationFrame(() => select(first.id));
}

void start();
