//! Settings a person changes by name: `storyteller config set gemini.requests-per-minute 60`,
//! the window's AI settings, and the storytellers that read them.
//!
//! Every key is in one table ([`KEYS`]) with its kind, its default and what it is for, so the
//! CLI, the window and the storytellers agree on names, defaults and checks. A storyteller's
//! key `NAME.FIELD` may also come from the environment, `STORYTELLER_NAME_FIELD`
//! (`STORYTELLER_GEMINI_BASE_URL`), which comes first: tests, proxies and services set it, and
//! the CLI says so when a value set here is hidden by one.
//!
//! Prices are keys too: `price.STORYTELLER[.FAMILY]` is `INPUT/OUTPUT` or
//! `INPUT/AUDIO/OUTPUT` in US dollars per million tokens (`price.gemini.flash 0.30/1.00/2.50`).
//! The family is what a model's name contains (see [`crate::pricing`]).

use crate::error::{EngineError, Result};
use crate::pricing::{ModelPrice, PriceTable};
use crate::settings::Settings;
use crate::storyteller::{gemini, ollama, openai};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What a key's value is, for checking and for the window's inputs.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ValueKind {
    /// An `http://` or `https://` address.
    Url,
    /// A name (a model, a storyteller).
    Name,
    /// Names, comma-separated; `none` for none.
    Names,
    /// A whole number; `none` (or 0) for no limit.
    Limit,
    /// A whole number of seconds, at least 1.
    Seconds,
    /// US dollars; `none` for no cap.
    Dollars,
    /// `on` or `off`.
    Switch,
    /// A price: `INPUT/OUTPUT` or `INPUT/AUDIO/OUTPUT`, dollars per million tokens.
    Price,
    /// A whole number from 1 to 64.
    Count,
    /// `low`, `normal` or `high`.
    Priority,
    /// A language as a person names it (`French`, `pt-BR`).
    Language,
    /// About how many words, from 10 to 5000; `none` for the preset's length.
    Words,
}

/// One key of the table.
#[derive(Clone, Copy, Debug)]
pub struct ConfigKey {
    /// The key, `gemini.base-url`.
    pub key: &'static str,
    /// Its kind.
    pub kind: ValueKind,
    /// Its value when nothing is set (`None`: no value, e.g. no cap).
    pub default: Option<&'static str>,
    /// What it does, for people.
    pub about: &'static str,
}

const fn key(
    key: &'static str,
    kind: ValueKind,
    default: Option<&'static str>,
    about: &'static str,
) -> ConfigKey {
    ConfigKey {
        key,
        kind,
        default,
        about,
    }
}

use ValueKind::*;

/// Every key, in the order `config list` shows them.
pub const KEYS: &[ConfigKey] = &[
    key("concurrency", Count, Some("3"), "videos told at once"),
    key(
        "storyteller",
        Name,
        Some("offline"),
        "the storyteller new videos get",
    ),
    key(
        "preset",
        Name,
        None,
        "the preset new videos get (the storyteller's first when not set)",
    ),
    key(
        "priority",
        Priority,
        Some("normal"),
        "the priority new videos get",
    ),
    key(
        "language",
        Language,
        Some("English"),
        "the language new stories are written in (AI storytellers; the offline one writes English)",
    ),
    key(
        "words",
        Words,
        None,
        "about how many words new stories have (AI storytellers; the preset's length when not set)",
    ),
    key(
        "watch.settle-seconds",
        Seconds,
        Some("2"),
        "seconds a file in a watched folder must stay unchanged before it is told",
    ),
    // Gemini.
    key(
        "gemini.base-url",
        Url,
        Some(gemini::DEFAULT_BASE_URL),
        "where the Gemini API is (a proxy's address works)",
    ),
    key(
        "gemini.model",
        Name,
        Some(gemini::DEFAULT_MODEL),
        "the Gemini model (gemini-pro-latest for the Pro model)",
    ),
    key(
        "gemini.at-once",
        Limit,
        Some("4"),
        "Gemini requests at once",
    ),
    key(
        "gemini.requests-per-minute",
        Limit,
        Some("10"),
        "Gemini requests a minute (the free tier's pace; raise it for a paid key)",
    ),
    key(
        "gemini.requests-per-day",
        Limit,
        None,
        "Gemini requests a day",
    ),
    key(
        "gemini.day-cap",
        Dollars,
        None,
        "the most Gemini may spend in a day (local time); it pauses when reached",
    ),
    key(
        "gemini.month-cap",
        Dollars,
        None,
        "the most Gemini may spend in a calendar month; it pauses when reached",
    ),
    key(
        "gemini.keep-uploads",
        Switch,
        Some("off"),
        "keep videos uploaded to Gemini after their story (they expire after 48 hours)",
    ),
    key(
        "gemini.connect-timeout",
        Seconds,
        Some("10"),
        "seconds connecting to Gemini may take",
    ),
    key(
        "gemini.upload-timeout",
        Seconds,
        Some("600"),
        "seconds one upload request (8 MiB) may take",
    ),
    key(
        "gemini.processing-timeout",
        Seconds,
        Some("600"),
        "seconds Gemini may take to process an upload before the attempt gives up",
    ),
    key(
        "gemini.idle-timeout",
        Seconds,
        Some("300"),
        "seconds an answer may stay silent before the attempt gives up",
    ),
    // OpenAI-compatible servers.
    key(
        "openai.base-url",
        Url,
        Some(openai::DEFAULT_BASE_URL),
        "the OpenAI-compatible server, the part before /v1 (llama.cpp, vLLM, LM Studio, OpenAI)",
    ),
    key(
        "openai.model",
        Name,
        Some(openai::DEFAULT_MODEL),
        "the image model on the OpenAI-compatible server (local servers use the one they loaded)",
    ),
    key(
        "openai.one-image-models",
        Names,
        None,
        "models that take one image per message, told in two passes (comma-separated; found \
         out by itself when the server says so)",
    ),
    key(
        "openai.at-once",
        Limit,
        None,
        "requests at once to the OpenAI-compatible server",
    ),
    key(
        "openai.requests-per-minute",
        Limit,
        None,
        "requests a minute to the OpenAI-compatible server",
    ),
    key(
        "openai.requests-per-day",
        Limit,
        None,
        "requests a day to the OpenAI-compatible server",
    ),
    key(
        "openai.day-cap",
        Dollars,
        None,
        "the most the OpenAI-compatible server may spend in a day",
    ),
    key(
        "openai.month-cap",
        Dollars,
        None,
        "the most the OpenAI-compatible server may spend in a month",
    ),
    key(
        "openai.connect-timeout",
        Seconds,
        Some("10"),
        "seconds connecting to the OpenAI-compatible server may take",
    ),
    key(
        "openai.idle-timeout",
        Seconds,
        Some("300"),
        "seconds its answer may stay silent (a model loading counts)",
    ),
    // Transcription, for the image models.
    key(
        "transcription.base-url",
        Url,
        None,
        "an OpenAI-compatible speech-to-text server (whisper.cpp, faster-whisper), the part \
         before /v1: what is said in each video joins the image models' prompt",
    ),
    key(
        "transcription.model",
        Name,
        Some("whisper-1"),
        "the speech-to-text model the transcription server is asked for",
    ),
    key(
        "transcription.timeout",
        Seconds,
        Some("600"),
        "seconds the transcription server may take for one video's sound",
    ),
    // Ollama.
    key(
        "ollama.base-url",
        Url,
        Some(ollama::DEFAULT_BASE_URL),
        "where Ollama runs",
    ),
    key(
        "ollama.model",
        Name,
        Some(ollama::DEFAULT_MODEL),
        "the Ollama image model (llava, llama3.2-vision, qwen2.5vl, …)",
    ),
    key(
        "ollama.one-image-models",
        Names,
        Some(ollama::ONE_IMAGE_MODELS),
        "models that take one image per message, told in two passes (comma-separated; `none` \
         for none; found out by itself when Ollama says so)",
    ),
    key("ollama.at-once", Limit, None, "requests at once to Ollama"),
    key(
        "ollama.requests-per-minute",
        Limit,
        None,
        "requests a minute to Ollama",
    ),
    key(
        "ollama.requests-per-day",
        Limit,
        None,
        "requests a day to Ollama",
    ),
    key(
        "ollama.day-cap",
        Dollars,
        None,
        "the most Ollama may spend in a day (when a price is set for it)",
    ),
    key(
        "ollama.month-cap",
        Dollars,
        None,
        "the most Ollama may spend in a month",
    ),
    key(
        "ollama.connect-timeout",
        Seconds,
        Some("10"),
        "seconds connecting to Ollama may take",
    ),
    key(
        "ollama.idle-timeout",
        Seconds,
        Some("300"),
        "seconds its answer may stay silent (a model loading counts)",
    ),
];

/// Where a value comes from.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConfigSource {
    /// Nothing is set: the default.
    Default,
    /// The settings file (set here, or in the window).
    Settings,
    /// An environment variable, which comes first.
    Environment,
}

/// One key and its value now, as `config list` and the window show it.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigEntry {
    /// The key.
    pub key: String,
    /// The storyteller it belongs to (`None` for the general keys).
    pub storyteller: Option<String>,
    /// The value in use (`None`: none, e.g. no cap).
    pub value: Option<String>,
    /// The value when nothing is set.
    pub default_value: Option<String>,
    /// Where `value` comes from.
    pub source: ConfigSource,
    /// The environment variable that sets it, for a storyteller's key.
    pub env_var: Option<String>,
    /// The value kept in the settings when an environment variable hides it.
    pub hidden_value: Option<String>,
    /// Its kind.
    pub kind: ValueKind,
    /// What it does.
    pub about: String,
}

/// The environment variable for a storyteller's key: `gemini.base-url` →
/// `STORYTELLER_GEMINI_BASE_URL`; general keys have none.
pub fn env_var(key: &str) -> Option<String> {
    if !key.contains('.') || key.starts_with("price.") {
        return None;
    }
    Some(format!(
        "STORYTELLER_{}",
        key.to_ascii_uppercase().replace(['.', '-'], "_")
    ))
}

/// The environment variable `name`, when it is set to something (surrounding blanks left
/// out).
pub fn env_value(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn from_env(key: &str) -> Option<String> {
    env_value(&env_var(key)?)
}

fn find(key: &str) -> Option<&'static ConfigKey> {
    KEYS.iter().find(|k| k.key == key)
}

fn unknown(key: &str) -> EngineError {
    let near: Vec<&str> = KEYS
        .iter()
        .map(|k| k.key)
        .filter(|k| {
            let (group, _) = k.split_once('.').unwrap_or(("", k));
            key.starts_with(group) && !group.is_empty()
        })
        .collect();
    let hint = if near.is_empty() {
        "`storyteller config list` shows every key".to_owned()
    } else {
        format!("did you mean one of: {}", near.join(", "))
    };
    EngineError::InvalidArgument(format!("there is no setting '{key}'; {hint}"))
}

/// Reads a storyteller's keys: the environment, then the settings, then the default. What
/// the storytellers are built from.
#[derive(Clone, Debug, Default)]
pub struct ServiceConfig {
    set: BTreeMap<String, String>,
}

impl ServiceConfig {
    /// The storytellers' values in `settings`.
    pub fn from_settings(settings: &Settings) -> Self {
        ServiceConfig {
            set: settings.storytellers.clone(),
        }
    }

    /// The value of `key` in use, and where it comes from.
    pub fn lookup(&self, key: &str) -> (Option<String>, ConfigSource) {
        if let Some(value) = from_env(key) {
            return (Some(value), ConfigSource::Environment);
        }
        if let Some(value) = self.set.get(key) {
            return (Some(value.clone()), ConfigSource::Settings);
        }
        (
            find(key).and_then(|k| k.default).map(str::to_owned),
            ConfigSource::Default,
        )
    }

    /// The text of `key` (its default when nothing usable is set).
    pub fn text(&self, key: &str) -> Option<String> {
        self.lookup(key).0
    }

    /// A limit: `None` for no limit (`none`, `0`), the default for a value that does not parse
    /// (the environment is not checked on the way in, so it is checked here).
    pub fn limit(&self, key: &str) -> Option<u32> {
        let parsed = self.text(key).map(|text| parse_limit(&text));
        match parsed {
            Some(Ok(limit)) => limit,
            _ => find(key)
                .and_then(|k| k.default)
                .and_then(|d| d.parse().ok()),
        }
    }

    /// Seconds, as a duration (the default for a value that does not parse).
    pub fn seconds(&self, key: &str) -> Duration {
        let default = find(key)
            .and_then(|k| k.default)
            .and_then(|d| d.parse().ok())
            .unwrap_or(60);
        let secs = self
            .text(key)
            .and_then(|text| parse_seconds(&text).ok())
            .unwrap_or(default);
        Duration::from_secs(u64::from(secs))
    }

    /// A switch (`on`, `1`, `true`, `yes` are on).
    pub fn switch(&self, key: &str) -> bool {
        self.text(key)
            .and_then(|text| parse_switch(&text).ok())
            .unwrap_or(false)
    }

    /// A cap in micro-dollars, `None` for no cap.
    pub fn cap_micro_usd(&self, key: &str) -> Option<u64> {
        self.text(key)
            .and_then(|text| parse_dollars(&text).ok().flatten())
            .map(|dollars| (dollars * 1e6).round() as u64)
    }
}

fn parse_limit(text: &str) -> Result<Option<u32>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") || text == "0" {
        return Ok(None);
    }
    text.parse::<u32>().map(Some).map_err(|_| {
        EngineError::InvalidArgument(format!(
            "'{text}' is not a limit: give a whole number, or none for no limit"
        ))
    })
}

fn parse_seconds(text: &str) -> Result<u32> {
    let text = text.trim();
    let number = text.strip_suffix('s').unwrap_or(text).trim();
    match number.parse::<u32>() {
        Ok(secs) if (1..=86_400).contains(&secs) => Ok(secs),
        _ => Err(EngineError::InvalidArgument(format!(
            "'{text}' is not a time limit: give whole seconds from 1 to 86400"
        ))),
    }
}

fn parse_switch(text: &str) -> Result<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "on" | "1" | "true" | "yes" => Ok(true),
        "off" | "0" | "false" | "no" => Ok(false),
        other => Err(EngineError::InvalidArgument(format!(
            "'{other}' is not on or off"
        ))),
    }
}

fn parse_dollars(text: &str) -> Result<Option<f64>> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let number = text.strip_prefix('$').unwrap_or(text);
    match number.parse::<f64>() {
        Ok(dollars) if (0.0..1e9).contains(&dollars) => Ok(Some(dollars)),
        _ => Err(EngineError::InvalidArgument(format!(
            "'{text}' is not an amount: give US dollars such as 5 or 2.50, or none for no cap"
        ))),
    }
}

fn parse_price(text: &str) -> Result<(f64, Option<f64>, f64)> {
    let bad = || {
        EngineError::InvalidArgument(format!(
            "'{text}' is not a price: give INPUT/OUTPUT or INPUT/AUDIO/OUTPUT in US dollars per \
             million tokens, such as 0.30/2.50 or 0.30/1.00/2.50"
        ))
    };
    let parts: Vec<f64> = text
        .split('/')
        .map(|part| {
            let part = part.trim();
            part.strip_prefix('$').unwrap_or(part).parse::<f64>()
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad())?;
    if parts
        .iter()
        .any(|p| !p.is_finite() || *p < 0.0 || *p > 10_000.0)
    {
        return Err(bad());
    }
    match parts.as_slice() {
        [input, output] => Ok((*input, None, *output)),
        [input, audio, output] => Ok((*input, Some(*audio), *output)),
        _ => Err(bad()),
    }
}

/// A number for people: `0.3`, `2.5`, `10`.
fn short_number(n: f64) -> String {
    let text = format!("{n:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// A price as its key's value: `0.3/1/2.5`.
pub fn price_words(price: &ModelPrice) -> String {
    match price.audio_input_per_million {
        Some(audio) => format!(
            "{}/{}/{}",
            short_number(price.input_per_million),
            short_number(audio),
            short_number(price.output_per_million)
        ),
        None => format!(
            "{}/{}",
            short_number(price.input_per_million),
            short_number(price.output_per_million)
        ),
    }
}

fn price_key(price: &ModelPrice) -> String {
    if price.family.is_empty() {
        format!("price.{}", price.storyteller)
    } else {
        format!("price.{}.{}", price.storyteller, price.family)
    }
}

/// `price.gemini.flash` → (`gemini`, `flash`); `price.gemini` → (`gemini`, ``).
fn parse_price_key(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix("price.")?;
    let (storyteller, family) = rest.split_once('.').unwrap_or((rest, ""));
    let fine = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
    };
    if storyteller.is_empty() || !fine(storyteller) || !fine(family) {
        return None;
    }
    Some((storyteller.to_owned(), family.to_ascii_lowercase()))
}

/// Every key with its value in `settings`, prices from `table` (the defaults with the
/// settings' prices in place).
pub fn list(settings: &Settings) -> Vec<ConfigEntry> {
    let mut entries: Vec<ConfigEntry> = KEYS
        .iter()
        .filter_map(|k| entry(settings, k.key).ok())
        .collect();
    let table = PriceTable::default().with(&settings.prices);
    let mut prices: Vec<&ModelPrice> = table.prices().iter().collect();
    prices.sort_by(|a, b| (&a.storyteller, &a.family).cmp(&(&b.storyteller, &b.family)));
    for price in prices {
        if let Ok(entry) = entry(settings, &price_key(price)) {
            entries.push(entry);
        }
    }
    entries
}

/// The entry for `key` in `settings`.
pub fn entry(settings: &Settings, key: &str) -> Result<ConfigEntry> {
    if let Some((storyteller, family)) = parse_price_key(key) {
        let defaults = PriceTable::default();
        let default = defaults
            .prices()
            .iter()
            .find(|p| p.storyteller == storyteller && p.family == family);
        let set = settings
            .prices
            .iter()
            .find(|p| p.storyteller == storyteller && p.family == family);
        let source = if set.is_some() {
            ConfigSource::Settings
        } else {
            ConfigSource::Default
        };
        return Ok(ConfigEntry {
            key: key.to_owned(),
            storyteller: Some(storyteller.clone()),
            value: set.or(default).map(price_words),
            default_value: default.map(price_words),
            source,
            env_var: None,
            hidden_value: None,
            kind: ValueKind::Price,
            about: if family.is_empty() {
                format!("the price of any {storyteller} model no other price names (input[/audio]/output dollars per million tokens)")
            } else {
                format!("the price of {storyteller} models whose name contains '{family}' (input[/audio]/output dollars per million tokens)")
            },
        });
    }
    let known = find(key).ok_or_else(|| unknown(key))?;
    let (value, source, hidden) = match key {
        "concurrency" => general(settings.concurrency.to_string(), known),
        "storyteller" => general(settings.storyteller.clone(), known),
        "preset" => (
            settings.preset.clone(),
            if settings.preset.is_some() {
                ConfigSource::Settings
            } else {
                ConfigSource::Default
            },
            None,
        ),
        "priority" => general(settings.priority.as_str().to_owned(), known),
        "language" => match &settings.language {
            Some(language) => (Some(language.clone()), ConfigSource::Settings, None),
            None => (
                known.default.map(str::to_owned),
                ConfigSource::Default,
                None,
            ),
        },
        "words" => (
            settings.words.map(|w| w.to_string()),
            if settings.words.is_some() {
                ConfigSource::Settings
            } else {
                ConfigSource::Default
            },
            None,
        ),
        _ => {
            let config = ServiceConfig::from_settings(settings);
            let (value, source) = config.lookup(key);
            let hidden = if source == ConfigSource::Environment {
                settings.storytellers.get(key).cloned()
            } else {
                None
            };
            (value, source, hidden)
        }
    };
    Ok(ConfigEntry {
        key: key.to_owned(),
        storyteller: key
            .split_once('.')
            .map(|(s, _)| s.to_owned())
            .filter(|s| s != "watch"),
        value,
        default_value: known.default.map(str::to_owned),
        source,
        env_var: env_var(key),
        hidden_value: hidden,
        kind: known.kind,
        about: known.about.to_owned(),
    })
}

fn general(value: String, known: &ConfigKey) -> (Option<String>, ConfigSource, Option<String>) {
    let source = if known.default == Some(value.as_str()) {
        ConfigSource::Default
    } else {
        ConfigSource::Settings
    };
    (Some(value), source, None)
}

/// `settings` with `key` set to `value` (`None`: back to its default), checked; the
/// storytellers' own checks (a model that exists, a preset) are the engine's.
pub fn set(settings: &Settings, key: &str, value: Option<&str>) -> Result<Settings> {
    let mut next = settings.clone();
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    if let Some((storyteller, family)) = parse_price_key(key) {
        next.prices
            .retain(|p| !(p.storyteller == storyteller && p.family == family));
        if let Some(text) = value {
            let (input, audio, output) = parse_price(text)?;
            next.prices.push(ModelPrice {
                storyteller,
                family,
                input_per_million: input,
                audio_input_per_million: audio,
                output_per_million: output,
            });
        }
        return Ok(next);
    }
    let known = find(key).ok_or_else(|| unknown(key))?;
    let default = Settings::default();
    match key {
        "concurrency" => {
            next.concurrency = match value {
                Some(text) => text.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!(
                        "'{text}' is not a number of videos at once"
                    ))
                })?,
                None => default.concurrency,
            };
        }
        "storyteller" => {
            next.storyteller = value.map_or(default.storyteller, str::to_owned);
            // A model and preset chosen for another storyteller do not carry over.
            if next.storyteller != settings.storyteller {
                next.model = None;
                next.preset = None;
            }
        }
        "preset" => next.preset = value.map(str::to_owned),
        "language" => {
            // Checked and put one way as a story's own wish is: English is no wish.
            next.language = crate::job::Style::new(None, None, value)
                .map_err(EngineError::InvalidArgument)?
                .language;
        }
        "words" => {
            let words = match value {
                None | Some("none") => None,
                Some(text) => Some(text.parse::<u32>().map_err(|_| {
                    EngineError::InvalidArgument(format!(
                        "'{text}' is not a number of words (or none for the preset's length)"
                    ))
                })?),
            };
            next.words = crate::job::Style::new(None, words, None)
                .map_err(EngineError::InvalidArgument)?
                .words;
        }
        "priority" => {
            next.priority = match value {
                Some(text) => text.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!(
                        "'{text}' is not a priority: low, normal or high"
                    ))
                })?,
                None => default.priority,
            };
        }
        _ => match value {
            None => {
                next.storytellers.remove(key);
            }
            Some(text) => {
                let normal = normalise(known, text)?;
                next.storytellers.insert(key.to_owned(), normal);
            }
        },
    }
    Ok(next)
}

/// `text` checked for `known`'s kind and written the one way it is kept.
fn normalise(known: &ConfigKey, text: &str) -> Result<String> {
    Ok(match known.kind {
        Url => {
            let url = text.trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || url.len() <= "https://".len()
            {
                return Err(EngineError::InvalidArgument(format!(
                    "'{text}' is not an address: give one starting http:// or https://"
                )));
            }
            url.to_owned()
        }
        Name => {
            if text.chars().any(char::is_whitespace) {
                return Err(EngineError::InvalidArgument(format!(
                    "'{text}' is not a name: it has spaces in it"
                )));
            }
            text.to_owned()
        }
        Names => {
            let names: Vec<&str> = text
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect();
            if let Some(bad) = names.iter().find(|n| n.chars().any(char::is_whitespace)) {
                return Err(EngineError::InvalidArgument(format!(
                    "'{bad}' is not a name: it has spaces in it (separate names with commas)"
                )));
            }
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(",")
            }
        }
        Limit => match parse_limit(text)? {
            None => "none".to_owned(),
            Some(n) => n.to_string(),
        },
        Seconds => parse_seconds(text)?.to_string(),
        Dollars => match parse_dollars(text)? {
            None => "none".to_owned(),
            Some(dollars) => short_number(dollars),
        },
        Switch => if parse_switch(text)? { "on" } else { "off" }.to_owned(),
        Price | Count | Priority | Language | Words => text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_kind_a_default_that_checks_and_an_environment_variable() {
        for known in KEYS {
            if let Some(default) = known.default {
                if known.key.contains('.') {
                    assert_eq!(normalise(known, default).unwrap(), default, "{}", known.key);
                }
            }
            assert_eq!(
                env_var(known.key).is_some(),
                known.key.contains('.'),
                "{}",
                known.key
            );
        }
        assert_eq!(
            env_var("gemini.requests-per-minute").as_deref(),
            Some("STORYTELLER_GEMINI_REQUESTS_PER_MINUTE")
        );
    }

    #[test]
    fn values_are_checked_and_kept_one_way() {
        let settings = Settings::default();
        let set_one = |key, value| set(&settings, key, Some(value));
        let kept = set_one("gemini.requests-per-minute", " 60 ").unwrap();
        assert_eq!(kept.storytellers["gemini.requests-per-minute"], "60");
        let none = set_one("gemini.at-once", "0").unwrap();
        assert_eq!(none.storytellers["gemini.at-once"], "none");
        assert_eq!(
            ServiceConfig::from_settings(&none).limit("gemini.at-once"),
            None
        );
        let cap = set_one("gemini.day-cap", "$2.50").unwrap();
        assert_eq!(cap.storytellers["gemini.day-cap"], "2.5");
        assert_eq!(
            ServiceConfig::from_settings(&cap).cap_micro_usd("gemini.day-cap"),
            Some(2_500_000)
        );
        let url = set_one("ollama.base-url", "http://gpu-box:11434/").unwrap();
        assert_eq!(url.storytellers["ollama.base-url"], "http://gpu-box:11434");
        for (key, bad, says) in [
            ("gemini.requests-per-minute", "fast", "not a limit"),
            ("gemini.day-cap", "-3", "not an amount"),
            ("gemini.base-url", "ftp://x", "not an address"),
            ("gemini.idle-timeout", "0", "not a time limit"),
            ("gemini.keep-uploads", "maybe", "not on or off"),
            ("price.gemini.flash", "cheap", "not a price"),
            ("priority", "urgent", "not a priority"),
            (
                "gemini.colour",
                "blue",
                "did you mean one of: gemini.base-url",
            ),
        ] {
            let error = set_one(key, bad).unwrap_err().to_string();
            assert!(error.contains(says), "{key} {bad}: {error}");
        }
        // Unset goes back to the default.
        let back = set(&kept, "gemini.requests-per-minute", None).unwrap();
        assert!(back.storytellers.is_empty());
        assert_eq!(
            ServiceConfig::from_settings(&back).limit("gemini.requests-per-minute"),
            Some(10)
        );
    }

    #[test]
    fn prices_are_keys_with_their_defaults_shown() {
        let settings = Settings::default();
        let flash = entry(&settings, "price.gemini.flash").unwrap();
        assert_eq!(flash.value.as_deref(), Some("0.3/1/2.5"));
        assert_eq!(flash.source, ConfigSource::Default);
        let cheaper = set(&settings, "price.gemini.flash", Some("0.15/0.5/1.25")).unwrap();
        let flash = entry(&cheaper, "price.gemini.flash").unwrap();
        assert_eq!(flash.value.as_deref(), Some("0.15/0.5/1.25"));
        assert_eq!(flash.default_value.as_deref(), Some("0.3/1/2.5"));
        assert_eq!(flash.source, ConfigSource::Settings);
        // A family of one's own, for a model the table does not know.
        let own = set(&settings, "price.openai.qwen", Some("0.1/0.2")).unwrap();
        let listed = list(&own);
        let qwen = listed
            .iter()
            .find(|e| e.key == "price.openai.qwen")
            .unwrap();
        assert_eq!(qwen.value.as_deref(), Some("0.1/0.2"));
        assert!(listed.iter().any(|e| e.key == "price.gemini"));
        let table = PriceTable::default().with(&own.prices);
        assert_eq!(
            table
                .price("openai", "qwen2.5-vl")
                .map(|p| p.output_per_million),
            Some(0.2)
        );
    }

    #[test]
    fn the_environment_comes_first_and_says_what_it_hides() {
        let settings = set(
            &Settings::default(),
            "ollama.model",
            Some("llama3.2-vision"),
        )
        .unwrap();
        // A variable no other test reads.
        std::env::set_var("STORYTELLER_OLLAMA_IDLE_TIMEOUT", "42");
        let idle = entry(&settings, "ollama.idle-timeout").unwrap();
        assert_eq!(idle.source, ConfigSource::Environment);
        assert_eq!(idle.value.as_deref(), Some("42"));
        assert_eq!(
            ServiceConfig::from_settings(&settings).seconds("ollama.idle-timeout"),
            Duration::from_secs(42)
        );
        std::env::remove_var("STORYTELLER_OLLAMA_IDLE_TIMEOUT");
        let model = entry(&settings, "ollama.model").unwrap();
        assert_eq!(model.source, ConfigSource::Settings);
        assert_eq!(model.value.as_deref(), Some("llama3.2-vision"));
        assert_eq!(model.default_value.as_deref(), Some("llava"));
    }
}
