import { job } from "../test-jobs";
import { StoryPanel } from "./story";

function panelPage(): void {
  document.body.innerHTML = `
    <h2 id="story-title"></h2><button id="copy-story"></button>
    <p id="story-meta"></p><dl id="story-facts"></dl><div id="thumbnails"></div>
    <div id="story-actions"></div><article id="story-text"></article>`;
}

const noActions = {
  copy: () => {},
  retry: () => {},
  cancel: () => {},
  remove: () => {},
  setPriority: () => {},
  retell: () => {},
  openVideo: () => {},
  showInFolder: () => {},
  presetsOf: () => ["narrative", "summary"],
};

describe("the story panel", () => {
  it("appends what is written after the shown text, and starts again when a retry rewrites it", () => {
    panelPage();
    const copies: string[] = [];
    const panel = new StoryPanel({ ...noActions, copy: (id) => copies.push(id) });
    const running = job(1, { state: "running", stage: "writing", progress: 0.8 });
    panel.show(running, "Waves roll");
    const text = document.getElementById("story-text")!;
    const first = text.firstChild;
    panel.setStory("Waves roll in. Gulls 🐦 circle.", running);
    expect(text.textContent).toBe("Waves roll in. Gulls 🐦 circle.");
    // The words already shown stayed as they were: only the new ones were added.
    expect(text.firstChild).toBe(first);
    expect(text.dataset.streaming).toBe("true");
    // A new attempt writes another story: replaced whole.
    panel.setStory("A calm sea.", running);
    expect(text.textContent).toBe("A calm sea.");
    expect((document.getElementById("copy-story") as HTMLButtonElement).disabled).toBe(true);

    const told = job(1, { state: "succeeded", stage: "done", progress: 1, story: "A calm sea." });
    panel.show(told, "A calm sea.");
    const copy = document.getElementById("copy-story") as HTMLButtonElement;
    expect(copy.disabled).toBe(false);
    copy.click();
    expect(copies).toEqual([told.id]);
    // A told video offers telling it again with each of its storyteller's presets.
    const presets = [...document.querySelectorAll("#retell-preset option")].map((o) => o.textContent);
    expect(presets).toEqual(["narrative", "summary"]);
    expect(document.querySelector("#open-video")).not.toBeNull();
    expect(document.querySelector("#job-priority")).toBeNull();

    // Another job: its own text, not appended to the last one's.
    panel.show(job(2, { state: "queued" }), "");
    expect(text.textContent).toBe("");
    expect(document.querySelector("#job-priority")).not.toBeNull();
  });
});
