//! API keys: where they come from, and the one place they live in memory.
//!
//! A storyteller's key is its environment variable (`GEMINI_API_KEY`, `OPENAI_API_KEY`) when
//! that is set, else what the person entered, kept in the OS keychain (the Secret Service on
//! Linux, the Keychain on macOS, the Credential Manager on Windows) under the service
//! `Storyteller`. Never in SQLite, the settings file, a log line, an event or the window after
//! entry: front ends see only [`KeyStatusView`], which says where the key came from and its last
//! four characters.
//!
//! A storyteller reads its key through an [`ApiKey`], a cell the engine shares with it, so a key
//! entered while the app runs is used from the next request on, with no restart. Keychain calls
//! block (D-Bus on Linux), so the engine makes them on a blocking thread, each with a time limit:
//! a keychain that does not answer is reported as unavailable, never waited for.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// The keychain service every key is filed under.
pub const SERVICE: &str = "Storyteller";
/// How long a keychain may take to answer.
pub const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A storyteller that takes a key, and where it looks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyedStoryteller {
    /// The storyteller's name.
    pub storyteller: &'static str,
    /// The environment variable read first.
    pub env_var: &'static str,
    /// Who issues the key, for messages.
    pub provider: &'static str,
}

/// Every storyteller that takes a key.
pub const KEYED: [KeyedStoryteller; 2] = [
    KeyedStoryteller {
        storyteller: "gemini",
        env_var: "GEMINI_API_KEY",
        provider: "Google AI Studio",
    },
    KeyedStoryteller {
        storyteller: "openai",
        env_var: "OPENAI_API_KEY",
        provider: "the OpenAI-compatible server",
    },
];

/// The keyed storyteller called `name`.
pub fn keyed(name: &str) -> Option<KeyedStoryteller> {
    KEYED.iter().copied().find(|k| k.storyteller == name)
}

/// A key shared between the engine and the storyteller using it; `Debug` never shows it.
#[derive(Clone, Default)]
pub struct ApiKey {
    slot: Arc<RwLock<Slot>>,
}

#[derive(Default)]
struct Slot {
    key: Option<String>,
    /// The keychain entry to look in, once, when no key is set: the lookup waits for the first
    /// request, so commands that tell nothing never touch the keychain.
    look_in_keychain: Option<&'static str>,
}

impl ApiKey {
    /// A cell holding `key` (blank counts as none).
    pub fn new(key: Option<String>) -> Self {
        let cell = Self::default();
        cell.set(key);
        cell
    }

    /// The key of `keyed`: its environment variable, else (looked up when first needed) what
    /// the keychain keeps for it.
    pub fn from_env_or_keychain(keyed: KeyedStoryteller) -> Self {
        let cell = Self::new(env_key(keyed.env_var));
        if let Ok(mut slot) = cell.slot.write() {
            if slot.key.is_none() {
                slot.look_in_keychain = Some(keyed.storyteller);
            }
        }
        cell
    }

    /// The key now, without looking in the keychain.
    pub fn get(&self) -> Option<String> {
        self.slot
            .read()
            .map(|slot| slot.key.clone())
            .unwrap_or_default()
    }

    /// The key, looking in the keychain first if that is still to be done. A keychain that
    /// cannot be used counts as holding no key (and is asked again next time).
    pub async fn current(&self) -> Option<String> {
        let pending = self.slot.read().ok().and_then(|slot| {
            slot.key
                .is_none()
                .then_some(slot.look_in_keychain)
                .flatten()
        });
        let Some(entry) = pending else {
            return self.get();
        };
        match off_thread(move || keychain_get(entry)).await {
            Ok(found) => {
                if let Ok(mut slot) = self.slot.write() {
                    if slot.key.is_none() {
                        slot.key = found.filter(|k| !k.trim().is_empty());
                    }
                    slot.look_in_keychain = None;
                }
            }
            Err(error) => tracing::debug!(%error, "no key from the keychain"),
        }
        self.get()
    }

    /// Whether there is a key (without looking in the keychain).
    pub fn is_set(&self) -> bool {
        self.slot
            .read()
            .map(|slot| slot.key.is_some())
            .unwrap_or(false)
    }

    /// Replaces the key (the keychain is not looked in after this).
    pub fn set(&self, key: Option<String>) {
        let key = key
            .map(|key| key.trim().to_owned())
            .filter(|key| !key.is_empty());
        if let Ok(mut slot) = self.slot.write() {
            slot.key = key;
            slot.look_in_keychain = None;
        }
    }

    /// The last four characters, for recognising a key without showing it.
    pub fn masked(&self) -> Option<String> {
        self.get().map(|key| mask(&key))
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() {
            "ApiKey(set)"
        } else {
            "ApiKey(none)"
        })
    }
}

/// `key` as `••••9a2d`: short keys show nothing of themselves.
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return "••••".into();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("••••{tail}")
}

/// Where a storyteller's key came from.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// Its environment variable (which wins over the keychain).
    Environment,
    /// The OS keychain.
    Keychain,
    /// Nowhere: the storyteller cannot run.
    None,
}

/// What a front end may know of a storyteller's key.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatusView {
    /// The storyteller.
    pub storyteller: String,
    /// Where its key came from.
    pub source: KeySource,
    /// The environment variable that sets it.
    pub env_var: String,
    /// The key's last four characters (`••••9a2d`), when there is one.
    pub masked: Option<String>,
    /// Whether a keychain can be used on this machine now.
    pub keychain_available: bool,
}

/// Why the keychain could not be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeychainError {
    /// There is no keychain to use (no Secret Service on the session bus, a locked keyring,
    /// no session bus at all).
    #[error("no keychain can be used here ({0})")]
    Unavailable(String),
    /// The keychain answered with an error.
    #[error("the keychain failed: {0}")]
    Failed(String),
    /// The keychain did not answer in time.
    #[error("the keychain did not answer within {} s", KEYCHAIN_TIMEOUT.as_secs())]
    TimedOut,
}

fn entry(storyteller: &str) -> Result<keyring::Entry, KeychainError> {
    keyring::Entry::new(SERVICE, storyteller).map_err(keychain_error)
}

fn keychain_error(error: keyring::Error) -> KeychainError {
    match error {
        keyring::Error::PlatformFailure(e) => KeychainError::Unavailable(e.to_string()),
        keyring::Error::NoStorageAccess(e) => {
            KeychainError::Unavailable(format!("the keyring is locked or missing: {e}"))
        }
        other => KeychainError::Failed(other.to_string()),
    }
}

/// The key kept for `storyteller`, if any (blocking).
pub fn keychain_get(storyteller: &str) -> Result<Option<String>, KeychainError> {
    match entry(storyteller)?.get_password() {
        Ok(key) => Ok(Some(key)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(keychain_error(e)),
    }
}

/// Keeps `key` for `storyteller` (blocking).
pub fn keychain_set(storyteller: &str, key: &str) -> Result<(), KeychainError> {
    entry(storyteller)?
        .set_password(key)
        .map_err(keychain_error)
}

/// Forgets the key kept for `storyteller` (blocking); none kept is fine.
pub fn keychain_delete(storyteller: &str) -> Result<(), KeychainError> {
    match entry(storyteller)?.delete_credential() {
        Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(keychain_error(e)),
    }
}

/// Runs a blocking keychain call on a blocking thread, within [`KEYCHAIN_TIMEOUT`].
pub async fn off_thread<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, KeychainError> + Send + 'static,
) -> Result<T, KeychainError> {
    match tokio::time::timeout(KEYCHAIN_TIMEOUT, tokio::task::spawn_blocking(call)).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(KeychainError::Failed("the keychain call panicked".into())),
        Err(_) => Err(KeychainError::TimedOut),
    }
}

/// The environment variable `name`, when set to something.
pub fn env_key(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Whether `key` looks like a key at all: one line, no spaces, printable.
pub fn check_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    if key.is_empty() {
        return Err("the key is empty".into());
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a key is one word, with no spaces or line breaks inside it".into());
    }
    if key.len() > 512 {
        return Err("that is too long to be an API key".into());
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_masked_and_never_debug_printed() {
        let key = ApiKey::new(Some("  AIzaSy-0123456789-9a2d \n".into()));
        assert_eq!(key.get().as_deref(), Some("AIzaSy-0123456789-9a2d"));
        assert_eq!(key.masked().as_deref(), Some("••••9a2d"));
        assert_eq!(format!("{key:?}"), "ApiKey(set)");
        assert_eq!(mask("short"), "••••");
        let shared = key.clone();
        key.set(Some("   ".into()));
        assert!(!shared.is_set(), "a blank key is none, for every holder");
    }

    #[test]
    fn a_key_is_one_printable_word() {
        assert_eq!(check_key(" AIzaSy-abc\n").unwrap(), "AIzaSy-abc");
        assert!(check_key("").is_err());
        assert!(check_key("two words").is_err());
    }
}
