import { StoryBuffer } from "./story";

describe("StoryBuffer", () => {
  it("reassembles deltas in order", () => {
    const story = new StoryBuffer();
    expect(story.apply(1, 0, "This video ")).toBe("applied");
    expect(story.apply(1, 11, "runs for 3 seconds.")).toBe("applied");
    expect(story.text).toBe("This video runs for 3 seconds.");
  });

  it("counts offsets in UTF-16 units, as the engine sends them", () => {
    const story = new StoryBuffer();
    story.apply(1, 0, "Waves 🌊 ");
    expect(story.apply(1, "Waves 🌊 ".length, "roll in.")).toBe("applied");
    expect(story.text).toBe("Waves 🌊 roll in.");
  });

  it("drops what an abandoned attempt wrote when a newer attempt starts", () => {
    const story = new StoryBuffer();
    story.apply(1, 0, "A first try that ");
    expect(story.apply(2, 0, "The second try.")).toBe("applied");
    expect(story.text).toBe("The second try.");
    // A late delta of the abandoned attempt changes nothing.
    expect(story.apply(1, 17, "was cut off")).toBe("ignored");
    expect(story.text).toBe("The second try.");
  });

  it("says when text is missing instead of showing a garbled story", () => {
    const story = new StoryBuffer();
    story.apply(1, 0, "Start ");
    expect(story.apply(1, 20, "much later")).toBe("gap");
    expect(story.text).toBe("Start ");
  });

  it("replaces from the offset when a delta is sent again", () => {
    const story = new StoryBuffer();
    story.apply(1, 0, "One two ");
    story.apply(1, 4, "two three");
    expect(story.text).toBe("One two three");
  });
});
