import type { WatchedFolderView } from "../bindings";
import { choiceWords, outcomeWords, requestFromForm, statusTone, statusWords } from "./folders";

function folder(overrides: Partial<WatchedFolderView> = {}): WatchedFolderView {
  return {
    path: "/home/ana/Videos/Camera",
    recursive: false,
    storyteller: null,
    preset: null,
    priority: null,
    extensions: [],
    output: "none",
    outputFolder: null,
    formats: [],
    moveDone: false,
    poll: false,
    paused: false,
    status: { state: "watching", polling: false, note: null },
    found: 0,
    queued: 0,
    running: 0,
    succeeded: 0,
    failed: 0,
    ...overrides,
  };
}

describe("a watched folder's status", () => {
  it("says what the watcher does, with the reason when it cannot", () => {
    expect(statusWords({ state: "watching", polling: false, note: null })).toBe("Watching");
    expect(statusWords({ state: "watching", polling: true, note: null })).toBe(
      "Watching (checked every few seconds)",
    );
    expect(
      statusWords({ state: "watching", polling: true, note: "the system's folder watches ran out" }),
    ).toBe("Watching (checked every few seconds): the system's folder watches ran out");
    expect(statusWords({ state: "missing", reason: "/mnt/share is not there" })).toBe(
      "Missing: /mnt/share is not there. Watching resumes when it is back",
    );
    expect(statusWords({ state: "error", reason: "permission denied" })).toBe(
      "Not watched: permission denied. Tried again by itself",
    );
    expect(statusWords({ state: "paused" })).toBe("Paused");
    expect(statusWords({ state: "starting" })).toMatch(/^Starting/);
    expect(statusWords({ state: "idle" })).toMatch(/^Not watched now/);
  });

  it("is coloured by how well it goes", () => {
    expect(statusTone({ state: "watching", polling: false, note: null })).toBe("good");
    expect(statusTone({ state: "missing", reason: "x" })).toBe("bad");
    expect(statusTone({ state: "error", reason: "x" })).toBe("bad");
    expect(statusTone({ state: "paused" })).toBe("quiet");
  });
});

describe("what a watched folder shows", () => {
  it("counts only what there is", () => {
    expect(outcomeWords(folder())).toBe("0 videos found");
    expect(outcomeWords(folder({ found: 1, succeeded: 1 }))).toBe("1 video found · 1 told");
    expect(outcomeWords(folder({ found: 12, queued: 2, running: 1, succeeded: 8, failed: 1 }))).toBe(
      "12 videos found · 2 waiting · 1 being told · 8 told · 1 failed",
    );
  });

  it("tells its choices in words", () => {
    expect(choiceWords(folder())).toBe("this folder only · the settings' storyteller");
    expect(
      choiceWords(
        folder({
          recursive: true,
          storyteller: "gemini",
          preset: "short",
          extensions: ["mp4", "mov"],
          output: "beside",
          moveDone: true,
          poll: true,
        }),
      ),
    ).toBe(
      "with its subfolders · Gemini · short · .mp4 .mov · stories beside the videos · told videos moved into done · polled",
    );
    expect(choiceWords(folder({ output: "folder", outputFolder: "/srv/stories" }))).toContain(
      "stories into /srv/stories",
    );
  });

});

describe("the add form", () => {
  const form = { path: "", recursive: false, storyteller: "", beside: false, moveDone: false, poll: false };

  it("asks for a folder first", () => {
    expect(requestFromForm(form)).toBe("Choose a folder, or type its path, first.");
    expect(requestFromForm({ ...form, path: "   " })).toBe("Choose a folder, or type its path, first.");
  });

  it("sends what was chosen, the settings' storyteller as none", () => {
    expect(requestFromForm({ ...form, path: " /srv/in ", recursive: true, moveDone: true })).toEqual({
      path: "/srv/in",
      recursive: true,
      storyteller: null,
      beside: false,
      moveDone: true,
      poll: false,
    });
    expect(requestFromForm({ ...form, path: "/srv/in", storyteller: "ollama", poll: true })).toMatchObject({
      storyteller: "ollama",
      poll: true,
    });
  });
});
