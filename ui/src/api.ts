// The engine's commands, as promises that reject with the engine's `{ code, message }`.

import {
  commands,
  type AddOptions,
  type ErrorCode,
  type ErrorPayload,
  type ExportFormat,
  type JobPage,
  type JobView,
  type Priority,
  type WatchRequest,
} from "./bindings";

/** An engine error, with its code to branch on and its message for people. */
export class EngineFailure extends Error {
  readonly code: ErrorCode;
  constructor(payload: ErrorPayload) {
    super(payload.message);
    this.code = payload.code;
  }
}

type Result<T> = { status: "ok"; data: T } | { status: "error"; error: ErrorPayload };

async function unwrap<T>(pending: Promise<Result<T>>): Promise<T> {
  const result = await pending;
  if (result.status === "error") throw new EngineFailure(result.error);
  return result.data;
}

export const api = {
  addPaths: (paths: string[], options: AddOptions = {}) => unwrap(commands.addPaths(paths, options)),
  estimate: (paths: string[], options: AddOptions) => unwrap(commands.estimatePaths(paths, options)),
  configList: () => unwrap(commands.configList()),
  configSet: (key: string, value: string | null) => unwrap(commands.configSet(key, value)),
  /**
   * Every job, oldest first, a page at a time (keyset pages, without the stories, which are
   * read when shown): `onPage` gets each page as it comes, so the first rows paint at once
   * however long the history.
   */
  listPages: async (onPage: (jobs: JobView[]) => void) => {
    let after: string | null = null;
    // A first page about a screenful, so the first rows paint at once.
    let limit = 60;
    for (;;) {
      const page: JobPage = await unwrap(
        commands.listJobs({
          state: null,
          batchId: null,
          storyteller: null,
          order: "oldestFirst",
          after,
          limit,
          withoutStories: true,
        }),
      );
      onPage(page.jobs);
      if (!page.next) return;
      after = page.next;
      limit = 2000;
    }
  },
  getJob: (id: string) => unwrap(commands.getJob(id)),
  cancel: (id: string) => unwrap(commands.cancelJob(id)),
  retry: (id: string) => unwrap(commands.retryJob(id)),
  retryFailed: () => unwrap(commands.retryFailed()),
  remove: (id: string) => unwrap(commands.removeJob(id)),
  clearFinished: () => unwrap(commands.clearFinished()),
  pause: () => unwrap(commands.pauseQueue()),
  resume: () => unwrap(commands.resumeQueue()),
  stats: () => unwrap(commands.queueStats()),
  settings: () => unwrap(commands.getSettings()),
  updateSettings: (settings: Parameters<typeof commands.updateSettings>[0]) =>
    unwrap(commands.updateSettings(settings)),
  storytellers: () => unwrap(commands.listStorytellers()),
  copyStory: (id: string) => unwrap(commands.copyStory(id)),
  exportStories: (path: string, format: ExportFormat) =>
    unwrap(commands.exportStories(path, format, { batchId: null, ids: null })),
  search: (text: string, limit = 200) => unwrap(commands.searchStories({ text, limit })),
  setPriority: (id: string, priority: Priority) => unwrap(commands.setPriority(id, priority)),
  setConcurrency: (n: number) => unwrap(commands.setConcurrency(n)),
  retell: (id: string, preset: string) => unwrap(commands.retell(id, preset)),
  /** Copies the stories of `ids`, or every told story; how many. */
  copyStories: (ids: string[] | null) => unwrap(commands.copyStories(ids)),
  openVideo: (id: string) => unwrap(commands.openVideo(id)),
  showInFolder: (id: string) => unwrap(commands.showInFolder(id)),
  status: () => unwrap(commands.appStatus()),
  apiKeys: () => unwrap(commands.apiKeys()),
  setApiKey: (storyteller: string, key: string) => unwrap(commands.setApiKey(storyteller, key)),
  forgetApiKey: (storyteller: string) => unwrap(commands.forgetApiKey(storyteller)),
  checkStoryteller: (storyteller: string) => unwrap(commands.checkStoryteller(storyteller)),
  resumeStoryteller: (storyteller: string) => unwrap(commands.resumeStoryteller(storyteller)),
  watchedFolders: () => unwrap(commands.watchedFolders()),
  watchAdd: (request: WatchRequest) => unwrap(commands.watchAdd(request)),
  watchRemove: (path: string) => unwrap(commands.watchRemove(path)),
  watchPause: (path: string, paused: boolean) => unwrap(commands.watchPause(path, paused)),
};

/** A sentence for any failure, engine or not. */
export function describe(error: unknown): string {
  if (error instanceof EngineFailure) return error.message;
  if (error instanceof Error) return error.message;
  if (typeof error === "object" && error && "message" in error) return String(error.message);
  return String(error);
}
