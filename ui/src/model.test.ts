import type { Envelope } from "./bindings";
import { job } from "./test-jobs";
import { emptyChange, mergeChange, QueueModel } from "./model";

let seq = 0;
function envelope(event: Record<string, unknown>): Envelope {
  seq += 1;
  return { seq, ...event } as unknown as Envelope;
}


beforeEach(() => {
  seq = 0;
});

describe("QueueModel", () => {
  it("keeps jobs in the order they were added, whatever order they change in", () => {
    const model = new QueueModel();
    model.load([job(1), job(2)]);
    model.apply(envelope({ type: "jobsAdded", batchId: "b", jobs: [job(3), job(4)] }));
    model.apply(
      envelope({
        type: "jobUpdated",
        jobId: job(4).id,
        state: "running",
        stage: "analysing",
        progress: 0.5,
        attempts: 1,
        error: null,
      }),
    );
    expect(model.all().map((j) => j.file)).toEqual([
      "clip-1.mp4",
      "clip-2.mp4",
      "clip-3.mp4",
      "clip-4.mp4",
    ]);
    expect(model.job(job(4).id)?.progress).toBe(0.5);
  });

  it("takes a 5,000-file add as one change, and removes as one", () => {
    const model = new QueueModel();
    const many = Array.from({ length: 5000 }, (_, i) => job(i));
    const added = model.apply(envelope({ type: "jobsAdded", batchId: "b", jobs: many }));
    expect(added.structure).toBe(true);
    expect(model.size).toBe(5000);
    const removed = model.apply(
      envelope({ type: "jobsRemoved", jobIds: many.slice(0, 2500).map((j) => j.id) }),
    );
    expect(removed.structure).toBe(true);
    expect(model.size).toBe(2500);
    expect(model.all()[0].file).toBe("clip-2500.mp4");
  });

  it("merges the changes of many events between two frames into one repaint", () => {
    const model = new QueueModel();
    model.load([job(1), job(2)]);
    const frame = emptyChange();
    for (let i = 0; i < 100; i++) {
      mergeChange(
        frame,
        model.apply(
          envelope({
            type: "jobUpdated",
            jobId: job(1 + (i % 2)).id,
            state: "running",
            stage: "analysing",
            progress: i / 100,
            attempts: 1,
            error: null,
          }),
        ),
      );
    }
    expect([...frame.rows].sort()).toEqual([job(1).id, job(2).id]);
    expect(frame.structure).toBe(false);
    expect(model.job(job(2).id)?.progress).toBe(0.99);
  });

  it("streams a story and re-reads the job when it finishes", () => {
    const model = new QueueModel();
    model.load([job(1)]);
    const id = job(1).id;
    model.apply(envelope({ type: "storyDelta", jobId: id, attempt: 1, offset: 0, text: "It " }));
    const delta = model.apply(
      envelope({ type: "storyDelta", jobId: id, attempt: 1, offset: 3, text: "opens." }),
    );
    expect(delta.stories.has(id)).toBe(true);
    expect(model.storyText(id)).toBe("It opens.");
    const finished = model.apply(
      envelope({ type: "jobFinished", jobId: id, state: "succeeded", cached: false, error: null }),
    );
    expect(finished.reread.has(id)).toBe(true);
    expect(model.job(id)?.state).toBe("succeeded");
  });

  it("asks for the story again when a delta is missing", () => {
    const model = new QueueModel();
    model.load([job(1)]);
    const id = job(1).id;
    const change = model.apply(
      envelope({ type: "storyDelta", jobId: id, attempt: 1, offset: 40, text: "late" }),
    );
    expect(change.reread.has(id)).toBe(true);
  });

  it("asks for the settings again when they changed", () => {
    const model = new QueueModel();
    expect(model.apply(envelope({ type: "settingsChanged" })).settings).toBe(true);
    expect(model.apply(envelope({ type: "queueResumed" })).settings).toBe(false);
  });

  it("resyncs when events were missed", () => {
    const model = new QueueModel();
    model.load([]);
    model.apply(envelope({ type: "queueResumed" }));
    seq += 5;
    expect(model.apply(envelope({ type: "queueResumed" })).resync).toBe(true);
    expect(model.apply(envelope({ type: "resync", missed: 3 })).resync).toBe(true);
  });

  it("searches file names, paths and stories", () => {
    const model = new QueueModel();
    model.load([
      job(1, { file: "beach.mp4", state: "succeeded", story: "Waves roll in." }),
      job(2, { file: "city.mp4" }),
    ]);
    expect(model.filtered("BEACH").map((j) => j.file)).toEqual(["beach.mp4"]);
    expect(model.filtered("waves").map((j) => j.file)).toEqual(["beach.mp4"]);
    expect(model.filtered("  ").length).toBe(2);
  });

  it("filters by state and takes in what the engine's search of the history found", () => {
    const model = new QueueModel();
    model.load([
      job(1, { file: "beach.mp4", state: "succeeded" }),
      job(2, { file: "city.mp4", state: "dead" }),
      job(3, { file: "forest.mp4", state: "succeeded" }),
    ]);
    expect(model.filtered("", "succeeded").map((j) => j.file)).toEqual(["beach.mp4", "forest.mp4"]);
    expect(model.filtered("", "dead").map((j) => j.file)).toEqual(["city.mp4"]);
    // The stories are not in the window (listings leave them out): the engine found "gulls".
    const found = new Set([job(3).id]);
    expect(model.filtered("gulls", null, found).map((j) => j.file)).toEqual(["forest.mp4"]);
    expect(model.filtered("gulls", "dead", found)).toEqual([]);
  });

  it("follows priority changes", () => {
    const model = new QueueModel();
    model.load([job(1)]);
    const change = model.apply(envelope({ type: "priorityChanged", jobId: job(1).id, priority: "high" }));
    expect(change.rows.has(job(1).id)).toBe(true);
    expect(model.job(job(1).id)?.priority).toBe("high");
  });

  it("tracks the pause and the counts", () => {
    const model = new QueueModel();
    model.apply(envelope({ type: "queuePaused", reason: "ffmpeg is missing" }));
    expect(model.paused).toBe("ffmpeg is missing");
    model.apply(envelope({ type: "queueResumed" }));
    expect(model.paused).toBeNull();
  });

  it("tracks paused storytellers, uploads and what each job spent", () => {
    const model = new QueueModel();
    model.load([job(1)]);
    const pause = {
      storyteller: "gemini",
      reason: "Gemini's daily quota is spent",
      kind: "quota" as const,
      until: "2026-12-03T08:00:00.000Z",
      queued: 38,
    };
    expect(model.apply(envelope({ type: "storytellerPaused", pause })).stats).toBe(true);
    model.apply(envelope({ type: "storytellerPaused", pause: { ...pause, queued: 37 } }));
    expect(model.pausedStorytellers).toEqual([{ ...pause, queued: 37 }]);
    expect(model.paused).toBeNull();
    model.apply(envelope({ type: "storytellerResumed", storyteller: "gemini" }));
    expect(model.pausedStorytellers).toEqual([]);

    const id = job(1).id;
    const upload = model.apply(envelope({ type: "uploadProgress", jobId: id, sentBytes: 8, totalBytes: 32 }));
    expect(upload.rows.has(id)).toBe(true);
    expect(model.uploads.get(id)).toEqual({ sent: 8, total: 32 });
    const usage = { inputTokens: 9120, audioInputTokens: 960, outputTokens: 412, costUsd: 0.004438 };
    model.apply(envelope({ type: "jobSpent", jobId: id, usage }));
    expect(model.job(id)?.usage).toEqual(usage);
  });
});

describe("watched folders in the model", () => {
  it("follows a told video moved into its folder's done folder", () => {
    const model = new QueueModel();
    model.load([job(1, { source: "/watched/clip-1.mp4", folder: "/watched" })]);
    const change = model.apply(
      envelope({ type: "jobMoved", jobId: job(1).id, source: "/watched/done/clip-1 (2).mp4" }),
    );
    expect(change.rows.has(job(1).id)).toBe(true);
    expect(model.job(job(1).id)?.source).toBe("/watched/done/clip-1 (2).mp4");
    expect(model.job(job(1).id)?.file).toBe("clip-1 (2).mp4");
  });

  it("refuses a read of the finished job begun before its video moved into done/", () => {
    const model = new QueueModel();
    const id = job(1).id;
    model.load([job(1, { source: "/watched/clip-1.mp4", folder: "/watched", state: "running" })]);
    const mark = model.markFor(id);
    // The finished record is asked for; before it comes back, the video is moved.
    model.apply(envelope({ type: "jobMoved", jobId: id, source: "/watched/done/clip-1.mp4" }));
    const staleRead = job(1, { source: "/watched/clip-1.mp4", folder: "/watched", state: "succeeded" });
    expect(model.putRead(staleRead, mark)).toBe(false);
    expect(model.job(id)?.source).toBe("/watched/done/clip-1.mp4");
    // Read again after the move: taken.
    const freshRead = { ...staleRead, source: "/watched/done/clip-1.mp4", file: "clip-1.mp4" };
    expect(model.putRead(freshRead, model.markFor(id))).toBe(true);
    expect(model.job(id)?.state).toBe("succeeded");
  });

  it("passes statuses on, the last of a frame winning, and asks for the list when folders change", () => {
    const model = new QueueModel();
    const first = model.apply(
      envelope({ type: "watchedFolderStatus", folder: "/a", status: { state: "starting" } }),
    );
    const second = model.apply(
      envelope({
        type: "watchedFolderStatus",
        folder: "/a",
        status: { state: "missing", reason: "the folder /a is not there" },
      }),
    );
    const merged = mergeChange(first, second);
    expect(merged.folderStatuses.get("/a")).toEqual({
      state: "missing",
      reason: "the folder /a is not there",
    });
    expect(merged.folders).toBe(false);
    const changed = model.apply(envelope({ type: "watchedFoldersChanged" }));
    expect(changed.folders).toBe(true);
    expect(changed.resync).toBe(false);
  });
});
