// The AI storytellers' settings by key, in the settings dialog: each storyteller's address,
// model, pace, time limits and spending caps, and the price table. The rows come from the
// engine's list of keys (the same `storyteller config list` prints), so names, defaults and
// checks are the engine's; what is changed here is sent when the dialog is saved, one key at a
// time, and a value the engine refuses is shown beside its row.

import type { ConfigEntry } from "../bindings";
import { providerName } from "./keys";

/** The group a key is shown in: its storyteller, or the prices. */
export function groupOf(entry: ConfigEntry): string {
  return entry.key.startsWith("price.") ? "price" : (entry.storyteller ?? "general");
}

/** A group's title. */
export function groupTitle(group: string): string {
  switch (group) {
    case "price":
      return "Prices (US dollars per million tokens)";
    case "transcription":
      return "Transcription (what is said, for the image models)";
    default:
      return providerName(group);
  }
}

/** A row's label: what the key does, as a sentence start. */
export function labelWords(entry: ConfigEntry): string {
  const about = entry.about;
  return about.charAt(0).toUpperCase() + about.slice(1);
}

/** What the field shows: empty for the default (shown as its placeholder). */
export function fieldValue(entry: ConfigEntry): string {
  if (entry.source === "default") return "";
  return entry.hiddenValue ?? entry.value ?? "";
}

/** The line under a row: where the value comes from, and the default. */
export function hintWords(entry: ConfigEntry): string {
  const fallback = entry.defaultValue ?? "none";
  if (entry.source === "environment") {
    return `Set by ${entry.envVar} to ${entry.value ?? ""}, which comes first while it is set`;
  }
  return `${entry.key} · default ${fallback}`;
}

/**
 * The change a field makes, if any: `null` puts the key back to its default. A field emptied,
 * or holding just the default, is the default.
 */
export function changeOf(entry: ConfigEntry, typed: string): { key: string; value: string | null } | null {
  const value = typed.trim();
  const before = fieldValue(entry);
  if (value === before) return null;
  if (value === "" || (entry.source === "default" && value === (entry.defaultValue ?? ""))) {
    return entry.source === "default" ? null : { key: entry.key, value: null };
  }
  return { key: entry.key, value };
}

export interface ConfigCommands {
  list(): Promise<ConfigEntry[]>;
  set(key: string, value: string | null): Promise<ConfigEntry>;
  describe(error: unknown): string;
}

interface Row {
  entry: ConfigEntry;
  read(): string;
  problem: HTMLElement;
  hint: HTMLElement;
}

export class ConfigRows {
  private readonly container = document.getElementById("ai-config")!;
  private rows: Row[] = [];

  constructor(private readonly commands: ConfigCommands) {}

  /** Fills the rows in from the engine (when the dialog opens). */
  async show(): Promise<void> {
    try {
      const entries = (await this.commands.list()).filter((e) => groupOf(e) !== "general");
      this.rows = [];
      const groups = new Map<string, ConfigEntry[]>();
      for (const entry of entries) {
        const group = groupOf(entry);
        groups.set(group, [...(groups.get(group) ?? []), entry]);
      }
      this.container.replaceChildren(
        ...[...groups].map(([group, members]) => this.group(group, members)),
      );
    } catch (error) {
      this.container.textContent = this.commands.describe(error);
    }
  }

  /**
   * Sends what was changed; `null` when all of it was taken, else what went wrong (each
   * refused row says why beside it, and keeps what was typed).
   */
  async apply(): Promise<string | null> {
    let failed = 0;
    let first: HTMLElement | null = null;
    for (const row of this.rows) {
      const change = changeOf(row.entry, row.read());
      row.problem.textContent = "";
      if (!change) continue;
      try {
        row.entry = await this.commands.set(change.key, change.value);
        row.hint.textContent = hintWords(row.entry);
      } catch (error) {
        failed += 1;
        row.problem.textContent = this.commands.describe(error);
        // A folded group would hide why: open it, and bring the first refusal into view.
        const group = row.problem.closest("details");
        if (group) group.open = true;
        first ??= row.problem;
      }
    }
    first?.scrollIntoView({ block: "center" });
    return failed ? `${failed === 1 ? "One AI setting was" : `${failed} AI settings were`} not saved: see below.` : null;
  }

  private group(group: string, entries: ConfigEntry[]): HTMLElement {
    const details = document.createElement("details");
    details.className = "ai-config-group";
    details.dataset.group = group;
    const summary = document.createElement("summary");
    summary.textContent = groupTitle(group);
    details.append(summary, ...entries.map((entry) => this.row(entry)));
    return details;
  }

  private row(entry: ConfigEntry): HTMLElement {
    const id = `config-${entry.key.replace(/[^a-z0-9-]/gi, "-")}`;
    const row = document.createElement("div");
    row.className = "ai-config-row";
    row.dataset.key = entry.key;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = labelWords(entry);
    const hint = document.createElement("span");
    hint.className = "meta";
    hint.textContent = hintWords(entry);
    const problem = document.createElement("p");
    problem.className = "error";
    problem.setAttribute("role", "alert");
    let read: () => string;
    let field: HTMLElement;
    if (entry.kind === "switch") {
      const box = document.createElement("input");
      box.type = "checkbox";
      box.id = id;
      box.checked = (entry.value ?? entry.defaultValue) === "on";
      const initial = box.checked;
      // Untouched, it is whatever it was (the default stays the default).
      read = () => (box.checked === initial ? fieldValue(entry) : box.checked ? "on" : "off");
      field = box;
    } else {
      const input = document.createElement("input");
      input.id = id;
      input.autocomplete = "off";
      input.spellcheck = false;
      input.value = fieldValue(entry);
      input.placeholder = entry.defaultValue ?? (entry.kind === "dollars" ? "no cap" : "no limit");
      input.inputMode = ["limit", "seconds", "count"].includes(entry.kind)
        ? "numeric"
        : entry.kind === "dollars" || entry.kind === "price"
          ? "decimal"
          : "text";
      read = () => input.value;
      field = input;
    }
    if (entry.source === "environment") (field as HTMLInputElement).disabled = true;
    row.append(label, field, hint, problem);
    this.rows.push({ entry, read, problem, hint });
    return row;
  }
}
