// Jobs for unit tests: a queued offline job numbered `n`, with any fields changed.

import type { JobView } from "./bindings";

export function job(n: number, overrides: Partial<JobView> = {}): JobView {
  return {
    id: `00000000-0000-7000-8000-${String(n).padStart(12, "0")}`,
    shortId: String(n).padStart(8, "0"),
    file: `clip-${n}.mp4`,
    source: `/videos/clip-${n}.mp4`,
    state: "queued",
    stage: "waiting",
    progress: 0,
    attempts: 0,
    priority: "normal",
    batchId: "00000000-0000-7000-8000-0000000000b1",
    storyteller: "offline",
    model: "offline-analyser-4",
    preset: "narrative",
    style: { prompt: null, words: null, language: null },
    cached: false,
    noCache: false,
    story: null,
    error: null,
    sizeBytes: 1000,
    contentHash: `hash-${n}`,
    media: null,
    usage: { inputTokens: 0, audioInputTokens: 0, outputTokens: 0, costUsd: 0 },
    runAfter: null,
    createdAt: "2026-12-02T00:00:00.000Z",
    updatedAt: "2026-12-02T00:00:00.000Z",
    startedAt: null,
    finishedAt: null,
    ...overrides,
  } as JobView;
}
