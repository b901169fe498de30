// The settings dialog. The settings live in the engine: the dialog shows what it holds and
// sends back what was chosen; the engine checks it.

import type { ExportFormat, Priority, Settings, StorytellerInfo } from "../bindings";

/** The on/off choices of the dialog, by the id of their checkbox. */
export interface Choices {
  beside: boolean;
  besideFormats: ExportFormat[];
  besideSkip: boolean;
  copy: boolean;
  notify: boolean;
  awake: boolean;
  confirmQuit: boolean;
}

/** The settings as the form would save them, from `current` and what is chosen. */
export function settingsFromForm(
  current: Settings,
  form: {
    storyteller: string;
    model?: string;
    preset: string;
    concurrency: string;
    priority: string;
    language?: string;
    words?: string;
  },
  storytellers: StorytellerInfo[],
  choices?: Choices,
): Settings | string {
  const teller = storytellers.find((s) => s.name === form.storyteller);
  if (!teller) return `There is no storyteller called “${form.storyteller}”.`;
  const concurrency = Number(form.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    return "Videos at once must be a whole number from 1 to 64.";
  }
  const preset = teller.presets.includes(form.preset) ? form.preset : (teller.presets[0] ?? null);
  const wordsTyped = form.words?.trim() ?? "";
  const words = wordsTyped === "" ? null : Number(wordsTyped);
  if (words !== null && (!Number.isInteger(words) || words < 10 || words > 5000)) {
    return "The length of new stories must be a whole number of words from 10 to 5000, or empty for each preset's own.";
  }
  if (choices?.beside && choices.besideFormats.length === 0) {
    return "Choose at least one format to save beside the videos.";
  }
  const chosen: Partial<Settings> = choices
    ? {
        saveBesideVideo: choices.beside,
        besideFormats: choices.besideFormats,
        besideSkipExisting: choices.besideSkip,
        copyWhenDone: choices.copy,
        notifyWhenDone: choices.notify,
        keepAwake: choices.awake,
        confirmQuit: choices.confirmQuit,
      }
    : {};
  return {
    ...current,
    ...chosen,
    storyteller: teller.name,
    // What was typed (empty: the storyteller's own default); without a model field, the
    // model kept, unless it was another storyteller's, which means nothing to this one.
    model:
      form.model !== undefined
        ? form.model.trim() || null
        : teller.name === current.storyteller
          ? current.model
          : null,
    preset,
    concurrency,
    priority: form.priority as Priority,
    // Without the fields, what is set stays; the engine checks the language's name.
    language: form.language !== undefined ? form.language.trim() || null : (current.language ?? null),
    words: form.words !== undefined ? words : (current.words ?? null),
  };
}

export class SettingsDialog {
  private readonly dialog = document.getElementById("settings") as HTMLDialogElement;
  private readonly storyteller = document.getElementById("setting-storyteller") as HTMLSelectElement;
  private readonly preset = document.getElementById("setting-preset") as HTMLSelectElement;
  private readonly model = document.getElementById("setting-model") as HTMLInputElement;
  private readonly models = document.getElementById("setting-models") as HTMLDataListElement;
  private readonly concurrency = document.getElementById("setting-concurrency") as HTMLInputElement;
  private readonly priority = document.getElementById("setting-priority") as HTMLSelectElement;
  private readonly language = document.getElementById("setting-language") as HTMLInputElement;
  private readonly words = document.getElementById("setting-words") as HTMLInputElement;
  private readonly error = document.getElementById("settings-error")!;
  private readonly box = (id: string) => document.getElementById(id) as HTMLInputElement;
  private current: Settings | null = null;
  private storytellers: StorytellerInfo[] = [];

  constructor(private readonly save: (settings: Settings) => Promise<string | null>) {
    this.storyteller.addEventListener("change", () => {
      this.fillPresets(null);
      this.fillModels(null);
    });
    document.getElementById("settings-cancel")!.addEventListener("click", () => this.dialog.close());
    document.getElementById("settings-form")!.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.submit();
    });
  }

  open(settings: Settings, storytellers: StorytellerInfo[]): void {
    this.current = settings;
    this.storytellers = storytellers;
    this.storyteller.replaceChildren(
      ...storytellers.map((s) => new Option(s.name, s.name, false, s.name === settings.storyteller)),
    );
    this.fillPresets(settings.preset ?? null);
    this.fillModels(settings.model ?? null);
    this.concurrency.value = String(settings.concurrency ?? 3);
    this.priority.value = settings.priority ?? "normal";
    this.language.value = settings.language ?? "";
    this.words.value = settings.words == null ? "" : String(settings.words);
    const formats = settings.besideFormats ?? ["markdown"];
    this.box("setting-beside").checked = settings.saveBesideVideo ?? false;
    this.box("setting-beside-md").checked = formats.includes("markdown");
    this.box("setting-beside-txt").checked = formats.includes("text");
    this.box("setting-beside-json").checked = formats.includes("json");
    this.box("setting-beside-docx").checked = formats.includes("docx");
    this.box("setting-beside-pdf").checked = formats.includes("pdf");
    this.box("setting-beside-skip").checked = settings.besideSkipExisting ?? true;
    this.box("setting-copy").checked = settings.copyWhenDone ?? false;
    this.box("setting-notify").checked = settings.notifyWhenDone ?? true;
    this.box("setting-awake").checked = settings.keepAwake ?? true;
    this.box("setting-confirm-quit").checked = settings.confirmQuit ?? true;
    this.error.textContent = "";
    this.dialog.showModal();
  }

  private fillPresets(chosen: string | null): void {
    const teller = this.storytellers.find((s) => s.name === this.storyteller.value);
    const presets = teller?.presets ?? [];
    this.preset.replaceChildren(
      ...presets.map((p, i) => new Option(p, p, false, chosen ? p === chosen : i === 0)),
    );
  }

  /** The model field: what is set, the storyteller's models to pick from, its default shown. */
  private fillModels(chosen: string | null): void {
    const teller = this.storytellers.find((s) => s.name === this.storyteller.value);
    this.model.value = chosen ?? "";
    this.model.placeholder = teller ? `${teller.defaultModel} (its default)` : "";
    this.models.replaceChildren(...(teller?.models ?? []).map((m) => new Option(m, m)));
  }

  private choices(): Choices {
    const formats: ExportFormat[] = [];
    if (this.box("setting-beside-md").checked) formats.push("markdown");
    if (this.box("setting-beside-txt").checked) formats.push("text");
    if (this.box("setting-beside-json").checked) formats.push("json");
    if (this.box("setting-beside-docx").checked) formats.push("docx");
    if (this.box("setting-beside-pdf").checked) formats.push("pdf");
    return {
      beside: this.box("setting-beside").checked,
      besideFormats: formats,
      besideSkip: this.box("setting-beside-skip").checked,
      copy: this.box("setting-copy").checked,
      notify: this.box("setting-notify").checked,
      awake: this.box("setting-awake").checked,
      confirmQuit: this.box("setting-confirm-quit").checked,
    };
  }

  private async submit(): Promise<void> {
    if (!this.current) return;
    const next = settingsFromForm(
      this.current,
      {
        storyteller: this.storyteller.value,
        model: this.model.value,
        preset: this.preset.value,
        concurrency: this.concurrency.value,
        priority: this.priority.value,
        language: this.language.value,
        words: this.words.value,
      },
      this.storytellers,
      this.choices(),
    );
    if (typeof next === "string") {
      this.error.textContent = next;
      return;
    }
    const problem = await this.save(next);
    if (problem) this.error.textContent = problem;
    else this.dialog.close();
  }
}
