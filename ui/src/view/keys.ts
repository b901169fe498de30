// The AI storytellers part of the settings dialog: each storyteller's key (kept in the system
// keychain by the engine, shown only as where it came from and its last four characters), and
// a Test button that asks the engine whether the chosen storyteller answers, takes its key and
// has its model, without telling anything. A key typed here is sent once and the field is
// emptied: it is never shown again.

import type { DoctorCheck, KeyStatusView } from "../bindings";

/** What the window shows of a key: where it comes from, never the key. */
export function keyStatusWords(status: KeyStatusView): string {
  const masked = status.masked ?? "";
  switch (status.source) {
    case "environment":
      return `Set by ${status.envVar} (${masked})`;
    case "keychain":
      return `Kept in the keychain (${masked})`;
    default:
      return status.keychainAvailable
        ? "No key yet"
        : `No key: no keychain can be used here, so set ${status.envVar} before starting the app`;
  }
}

/** A test's outcome in words. */
export function checkWords(check: DoctorCheck): string {
  return `${check.ok ? "✓" : "✗"} ${check.subject}${check.model ? ` (${check.model})` : ""}: ${check.message}`;
}

/** A storyteller's name as people read it. */
export function providerName(storyteller: string): string {
  switch (storyteller) {
    case "gemini":
      return "Gemini";
    case "openai":
      return "OpenAI-compatible server";
    case "ollama":
      return "Ollama";
    default:
      return storyteller;
  }
}

export interface KeyCommands {
  keys(): Promise<KeyStatusView[]>;
  setKey(storyteller: string, key: string): Promise<KeyStatusView>;
  forgetKey(storyteller: string): Promise<KeyStatusView>;
  check(storyteller: string): Promise<DoctorCheck>;
  describe(error: unknown): string;
}

export class AiSettings {
  private readonly rows = document.getElementById("ai-keys")!;
  private readonly testButton = document.getElementById("ai-test") as HTMLButtonElement;
  private readonly testResult = document.getElementById("ai-test-result")!;

  constructor(
    private readonly commands: KeyCommands,
    private readonly chosenStoryteller: () => string,
  ) {
    this.testButton.addEventListener("click", () => void this.test());
  }

  /** Fills the keys in (when the dialog opens). */
  async show(): Promise<void> {
    this.testResult.textContent = "";
    try {
      const keys = await this.commands.keys();
      this.rows.replaceChildren(...keys.map((status) => this.row(status)));
    } catch (error) {
      this.rows.textContent = this.commands.describe(error);
    }
  }

  private row(status: KeyStatusView): HTMLElement {
    const name = status.storyteller;
    const row = document.createElement("div");
    row.className = "ai-key";
    row.dataset.storyteller = name;
    const label = document.createElement("label");
    label.htmlFor = `key-${name}`;
    label.textContent = `${providerName(name)} key`;
    const words = document.createElement("span");
    words.className = "key-status";
    words.id = `key-status-${name}`;
    words.textContent = keyStatusWords(status);
    const input = document.createElement("input");
    input.id = `key-${name}`;
    input.type = "password";
    input.autocomplete = "off";
    input.spellcheck = false;
    input.placeholder = status.source === "none" ? "Paste the key" : "Paste a new key";
    const keep = document.createElement("button");
    keep.type = "button";
    keep.id = `key-keep-${name}`;
    keep.textContent = "Keep";
    const forget = document.createElement("button");
    forget.type = "button";
    forget.id = `key-forget-${name}`;
    forget.textContent = "Forget";
    forget.disabled = status.source !== "keychain";
    const problem = document.createElement("p");
    problem.className = "error";
    problem.id = `key-error-${name}`;
    problem.setAttribute("role", "alert");
    const refresh = (next: KeyStatusView) => {
      words.textContent = keyStatusWords(next);
      forget.disabled = next.source !== "keychain";
      problem.textContent = "";
    };
    keep.addEventListener("click", async () => {
      const typed = input.value.trim();
      if (!typed) {
        problem.textContent = "Paste the key first.";
        return;
      }
      keep.disabled = true;
      try {
        refresh(await this.commands.setKey(name, typed));
      } catch (error) {
        problem.textContent = this.commands.describe(error);
      } finally {
        // Sent once: the key is not kept in the page, whatever became of it.
        input.value = "";
        keep.disabled = false;
      }
    });
    forget.addEventListener("click", async () => {
      try {
        refresh(await this.commands.forgetKey(name));
      } catch (error) {
        problem.textContent = this.commands.describe(error);
      }
    });
    row.append(label, words, input, keep, forget, problem);
    return row;
  }

  private async test(): Promise<void> {
    const storyteller = this.chosenStoryteller();
    this.testButton.disabled = true;
    this.testResult.textContent = `Testing ${providerName(storyteller)}…`;
    try {
      this.testResult.textContent = checkWords(await this.commands.check(storyteller));
    } catch (error) {
      this.testResult.textContent = this.commands.describe(error);
    } finally {
      this.testButton.disabled = false;
    }
  }
}
