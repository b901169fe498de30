// A story as it streams in: deltas carry the attempt that wrote them and where their text
// starts (in UTF-16 code units, JavaScript's string length), so text from an abandoned attempt
// is dropped and a missed delta is noticed rather than shown as a garbled story.

export type DeltaResult = "applied" | "ignored" | "gap";

export class StoryBuffer {
  attempt = 0;
  text = "";

  /** Applies one delta; "gap" means text is missing and the story must be re-read. */
  apply(attempt: number, offset: number, text: string): DeltaResult {
    if (attempt < this.attempt) return "ignored";
    if (attempt > this.attempt) {
      // A newer attempt starts its story afresh.
      this.attempt = attempt;
      this.text = "";
    }
    if (offset > this.text.length) return "gap";
    // A delta that overlaps what is there (sent again) replaces from its offset.
    this.text = this.text.slice(0, offset) + text;
    return "applied";
  }

  /** The whole story, as read from the engine (after a gap, or once the job is done). */
  replace(attempt: number, text: string): void {
    this.attempt = attempt;
    this.text = text;
  }
}
