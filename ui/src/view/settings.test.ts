import type { Settings, StorytellerInfo } from "../bindings";
import { settingsFromForm } from "./settings";

const current: Settings = {
  concurrency: 3,
  storyteller: "offline",
  model: null,
  preset: "narrative",
  priority: "normal",
  language: null,
  words: null,
} as Settings;

const storytellers: StorytellerInfo[] = [
  { name: "offline", defaultModel: "offline-analyser-4", models: ["offline-analyser-4"], presets: ["narrative", "summary", "social"] },
];

describe("settingsFromForm", () => {
  it("takes what was chosen", () => {
    const next = settingsFromForm(
      current,
      { storyteller: "offline", preset: "summary", concurrency: "4", priority: "high" },
      storytellers,
    );
    expect(next).toEqual({ ...current, preset: "summary", concurrency: 4, priority: "high" });
  });

  it("takes a default language and length, and refuses a length out of range", () => {
    const form = { storyteller: "offline", preset: "summary", concurrency: "3", priority: "normal" };
    expect(settingsFromForm(current, { ...form, language: " French ", words: "250" }, storytellers)).toMatchObject({
      language: "French",
      words: 250,
    });
    const set = { ...current, language: "German", words: 300 } as Settings;
    // Emptied: back to English and each preset's length; without the fields: kept.
    expect(settingsFromForm(set, { ...form, language: "", words: "" }, storytellers)).toMatchObject({
      language: null,
      words: null,
    });
    expect(settingsFromForm(set, form, storytellers)).toMatchObject({ language: "German", words: 300 });
    for (const bad of ["5", "5001", "12.5", "lots"]) {
      expect(settingsFromForm(current, { ...form, words: bad }, storytellers)).toMatch(/from 10 to 5000/);
    }
  });

  it("refuses a concurrency out of range, in words", () => {
    for (const bad of ["0", "65", "2.5", "many"]) {
      const next = settingsFromForm(
        current,
        { storyteller: "offline", preset: "summary", concurrency: bad, priority: "high" },
        storytellers,
      );
      expect(typeof next).toBe("string");
    }
  });

  it("takes the on/off choices, and refuses saving beside videos in no format", () => {
    const choices = {
      beside: true,
      besideFormats: ["markdown", "json"] as ("markdown" | "json")[],
      besideSkip: false,
      copy: true,
      notify: false,
      awake: false,
      confirmQuit: false,
    };
    const form = { storyteller: "offline", preset: "narrative", concurrency: "3", priority: "normal" };
    expect(settingsFromForm(current, form, storytellers, choices)).toMatchObject({
      saveBesideVideo: true,
      besideFormats: ["markdown", "json"],
      besideSkipExisting: false,
      copyWhenDone: true,
      notifyWhenDone: false,
      keepAwake: false,
      confirmQuit: false,
    });
    expect(typeof settingsFromForm(current, form, storytellers, { ...choices, besideFormats: [] })).toBe(
      "string",
    );
  });

  it("falls back to the storyteller's first preset when the chosen one is not its own", () => {
    const next = settingsFromForm(
      current,
      { storyteller: "offline", preset: "haiku", concurrency: "3", priority: "normal" },
      storytellers,
    );
    expect(next).toMatchObject({ preset: "narrative" });
  });

  it("takes the model typed, and an empty model field as the storyteller's default", () => {
    const form = { storyteller: "offline", preset: "summary", concurrency: "3", priority: "normal" };
    const typed = settingsFromForm(current, { ...form, model: " llava:13b " }, storytellers);
    expect(typed).toMatchObject({ model: "llava:13b" });
    const empty = settingsFromForm({ ...current, model: "old" }, { ...form, model: "" }, storytellers);
    expect(empty).toMatchObject({ model: null });
  });
});
