import { describe, expect, it } from "vitest";
import type { KeyStatusView } from "../bindings";
import { checkWords, keyStatusWords } from "./keys";

const status = (over: Partial<KeyStatusView>): KeyStatusView => ({
  storyteller: "gemini",
  source: "none",
  envVar: "GEMINI_API_KEY",
  masked: null,
  keychainAvailable: true,
  ...over,
});

describe("keyStatusWords", () => {
  it("says where a key comes from and shows only its end", () => {
    expect(keyStatusWords(status({ source: "keychain", masked: "••••9a2d" }))).toBe(
      "Kept in the keychain (••••9a2d)",
    );
    expect(keyStatusWords(status({ source: "environment", masked: "••••0000" }))).toBe(
      "Set by GEMINI_API_KEY (••••0000)",
    );
    expect(keyStatusWords(status({}))).toBe("No key yet");
  });

  it("names the variable to set when there is no keychain", () => {
    expect(keyStatusWords(status({ keychainAvailable: false }))).toContain("set GEMINI_API_KEY");
  });
});

describe("checkWords", () => {
  it("marks a pass and a failure", () => {
    expect(checkWords({ subject: "gemini", ok: true, message: "fine", model: "gemini-flash-latest", needed: true })).toBe(
      "✓ gemini (gemini-flash-latest): fine",
    );
    expect(checkWords({ subject: "ollama", ok: false, message: "not running", model: null, needed: false })).toBe(
      "✗ ollama: not running",
    );
  });
});
