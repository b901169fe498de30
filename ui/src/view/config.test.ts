import { describe, expect, it } from "vitest";
import type { ConfigEntry } from "../bindings";
import { changeOf, fieldValue, groupOf, groupTitle, hintWords } from "./config";

const entry = (over: Partial<ConfigEntry>): ConfigEntry => ({
  key: "gemini.requests-per-minute",
  storyteller: "gemini",
  value: "10",
  defaultValue: "10",
  source: "default",
  envVar: "STORYTELLER_GEMINI_REQUESTS_PER_MINUTE",
  hiddenValue: null,
  kind: "limit",
  about: "Gemini requests a minute",
  ...over,
});

describe("the storytellers' settings", () => {
  it("are grouped by storyteller, prices apart", () => {
    expect(groupOf(entry({}))).toBe("gemini");
    expect(groupOf(entry({ key: "price.gemini.flash", kind: "price" }))).toBe("price");
    expect(groupOf(entry({ key: "concurrency", storyteller: null }))).toBe("general");
    expect(groupTitle("ollama")).toBe("Ollama");
    expect(groupTitle("price")).toContain("per million tokens");
    expect(groupTitle("transcription")).toContain("what is said");
  });

  it("show the default as a placeholder, not a value to keep", () => {
    expect(fieldValue(entry({}))).toBe("");
    expect(fieldValue(entry({ source: "settings", value: "60" }))).toBe("60");
    expect(hintWords(entry({}))).toBe("gemini.requests-per-minute · default 10");
    expect(hintWords(entry({ source: "environment", value: "5" }))).toContain(
      "Set by STORYTELLER_GEMINI_REQUESTS_PER_MINUTE to 5",
    );
  });

  it("send only what changed, and an emptied field as back to the default", () => {
    expect(changeOf(entry({}), "")).toBeNull();
    expect(changeOf(entry({}), " 10 ")).toBeNull();
    expect(changeOf(entry({}), "60")).toEqual({ key: "gemini.requests-per-minute", value: "60" });
    const set = entry({ source: "settings", value: "60" });
    expect(changeOf(set, "60")).toBeNull();
    expect(changeOf(set, "")).toEqual({ key: "gemini.requests-per-minute", value: null });
    expect(changeOf(set, "fast")).toEqual({ key: "gemini.requests-per-minute", value: "fast" });
  });
});
