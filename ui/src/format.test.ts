import { describe, expect, it } from "vitest";
import { exportFormatOf, lastPathPart } from "./format";
import { rowDetail } from "./view/queue";
import { mediaFacts } from "./view/story";
import { job } from "./test-jobs";

describe("words for people", () => {
  it("picks the export format from the file name the save dialog gave", () => {
    expect(exportFormatOf("/home/a/Stories.DOCX")).toBe("docx");
    expect(exportFormatOf("/home/a/stories.pdf")).toBe("pdf");
    expect(exportFormatOf("C:\\out\\stories.txt")).toBe("text");
    expect(exportFormatOf("/x/stories.json")).toBe("json");
    expect(exportFormatOf("/x/stories.md")).toBe("markdown");
    expect(exportFormatOf("/x/stories")).toBe("markdown");
  });

  it("says in a row what a job is doing, how long its video is and how it is told", () => {
    const media = {
      durationSecs: 75,
      container: "QuickTime / MOV",
      title: "Harbour",
      recordedAt: null,
      bitRate: null,
      video: { codec: "h264", width: 1920, height: 1080, fps: 29.97, rotation: 0 },
      audio: { codec: "aac", sampleRate: 48000, channels: 2, channelLayout: "stereo" },
    };
    const running = job(1, { state: "running", stage: "analysing", progress: 0.42, media });
    expect(rowDetail(running)).toBe("Watching · 42% · 1:15 · narrative");
    expect(rowDetail(job(2, { storyteller: "gemini", preset: "social" }))).toBe("Queued · gemini · social");
    const facts = Object.fromEntries(mediaFacts(running));
    expect(facts["Length"]).toBe("1:15");
    expect(facts["Picture"]).toBe("1920×1080 · 29.97 fps · h264");
    expect(facts["Sound"]).toBe("stereo · 48 kHz · aac");
    expect(facts["Title"]).toBe("Harbour");
    expect(facts["File"]).toBe("/videos/clip-1.mp4");
    expect(Object.fromEntries(mediaFacts(job(3)))["Length"]).toBeUndefined();
    // What telling it cost, once tokens were spent; nothing for a video told for free.
    expect(Object.fromEntries(mediaFacts(job(3)))["Cost"]).toBeUndefined();
    const paid = job(4, {
      usage: { inputTokens: 9120, audioInputTokens: 960, outputTokens: 412, costUsd: 0.004438 },
    });
    expect(Object.fromEntries(mediaFacts(paid))["Cost"]).toBe("$0.0044 · 9,120 tokens in, 412 out");
  });

  it("lists what was asked beyond the preset among a job's facts", () => {
    const asked = job(1, { style: { prompt: "Call the dog Rex.", words: 120, language: "French" } });
    const facts = Object.fromEntries(mediaFacts(asked));
    expect(facts["Asked"]).toBe("in French, about 120 words");
    expect(facts["Instructions"]).toBe("Call the dog Rex.");
    expect(Object.keys(Object.fromEntries(mediaFacts(job(2)))).includes("Asked")).toBe(false);
  });
});

describe("lastPathPart", () => {
  it("names a file or folder by the last part of its path", () => {
    expect(lastPathPart("/home/ana/Videos/Camera")).toBe("Camera");
    expect(lastPathPart("/home/ana/Videos/Camera/")).toBe("Camera");
    expect(lastPathPart("C:\\Users\\ana\\Videos")).toBe("Videos");
    expect(lastPathPart("/watched/done/clip-1 (2).mp4")).toBe("clip-1 (2).mp4");
    expect(lastPathPart("/")).toBe("/");
  });
});
