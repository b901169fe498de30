import { describe, expect, it } from "vitest";
import type { EstimateReport } from "../bindings";
import { asksFirst, estimateNotes, estimateWords, isRefusedWish, spanWords, wishesOf, wishesWords } from "./drop";

const report = (over: Partial<EstimateReport>): EstimateReport => ({
  storyteller: "gemini",
  model: "gemini-flash-latest",
  preset: "narrative",
  videos: [
    {
      path: "/v/harbour.mp4",
      durationSecs: 120,
      inputTokens: 39_000,
      audioInputTokens: 3_840,
      outputTokens: 600,
      costUsd: 0.0156,
      requests: 1,
      note: null,
      error: null,
    },
    {
      path: "/v/broken.mp4",
      durationSecs: null,
      inputTokens: 0,
      audioInputTokens: 0,
      outputTokens: 0,
      costUsd: 0,
      requests: 0,
      note: null,
      error: "it is cut short",
    },
  ],
  refused: [{ path: "/v/notes.txt", outcome: "refused", job: null, reason: "not a video" }],
  inputTokens: 39_000,
  outputTokens: 600,
  costUsd: 0.0156,
  priced: true,
  requests: 1,
  expectedSecs: 95,
  timeBasis: "4 at once, about 30 s a video (typical)",
  ...over,
});

describe("the drop sheet", () => {
  it("asks first only for storytellers that may cost money or hours", () => {
    expect(asksFirst("offline")).toBe(false);
    expect(asksFirst("gemini")).toBe(true);
    expect(asksFirst("ollama")).toBe(true);
  });

  it("says what a drop will cost and take in a line", () => {
    expect(estimateWords(report({}))).toBe(
      "1 video · about 39,600 tokens · about $0.016 · about 2 min (4 at once, about 30 s a video (typical))",
    );
    expect(estimateWords(report({ priced: false }))).toContain(
      "cost unknown: no price is set for gemini-flash-latest",
    );
    expect(estimateWords(report({ costUsd: 0, storyteller: "ollama" }))).toContain("free");
  });

  it("rounds times as an estimate deserves", () => {
    expect(spanWords(0.2)).toBe("1 s");
    expect(spanWords(42)).toBe("42 s");
    expect(spanWords(719)).toBe("12 min");
    expect(spanWords(3 * 3600 + 20 * 60)).toBe("3 h 20 min");
    expect(spanWords(7200)).toBe("2 h");
  });

  it("lists the videos that would fail and the paths refused", () => {
    expect(estimateNotes(report({}))).toEqual([
      "broken.mp4: it is cut short",
      "/v/notes.txt: not a video",
    ]);
  });

  it("takes blank wishes as none and says the rest in a few words", () => {
    expect(wishesOf("  ", "", " \n ")).toEqual({ language: null, words: null, prompt: null });
    const wishes = wishesOf(" French ", "120", "  Call the dog Rex. ");
    expect(wishes).toEqual({ language: "French", words: 120, prompt: "Call the dog Rex." });
    expect(wishesWords(wishes)).toBe("Told in French, about 120 words, with your instructions.");
    expect(wishesWords(wishesOf("", "", ""))).toBe("");
    expect(wishesOf("", "abc", "").words).toBeNull();
  });

  it("tells a refused wish from a failed estimate", () => {
    expect(isRefusedWish({ code: "invalid_argument", message: "the offline storyteller writes in English only" })).toBe(true);
    expect(isRefusedWish({ code: "tool_missing", message: "ffprobe" })).toBe(false);
    expect(isRefusedWish("boom")).toBe(false);
  });
});
