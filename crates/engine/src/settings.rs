//! The person's settings: what new jobs get when nothing else is asked for, how many run at
//! once, what happens when a story is told (written beside the video, copied, notified), and
//! how each AI storyteller is reached, paced, priced and capped (by key, see
//! [`crate::config`]). Kept as `settings.json` in the home folder, written whole (a temporary
//! file renamed over the old one), so a crash never leaves half a file. API keys are never
//! kept here.

use crate::error::{EngineError, Result};
use crate::export::ExportFormat;
use crate::job::Priority;
use crate::pricing::ModelPrice;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Most jobs that may run at once.
pub const MAX_CONCURRENCY: u32 = 64;

/// The settings, in the wire shape.
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Jobs run at once (1 to [`MAX_CONCURRENCY`]).
    pub concurrency: u32,
    /// The storyteller new jobs use.
    pub storyteller: String,
    /// The model new jobs use (the storyteller's own when not set).
    pub model: Option<String>,
    /// The preset new jobs use (the storyteller's first when not set).
    pub preset: Option<String>,
    /// The priority new jobs get.
    pub priority: Priority,
    /// The language new stories are written in when an add names none (`None`: English).
    /// For the storytellers that can: the offline one writes English whatever this says.
    pub language: Option<String>,
    /// About how many words new stories have when an add says nothing (`None`: the preset's
    /// length). For the storytellers that can keep it, like [`Settings::language`].
    pub words: Option<u32>,
    /// Write each story beside its video when it is told (`NAME.story.md`, …).
    pub save_beside_video: bool,
    /// The formats written beside the video.
    pub beside_formats: Vec<ExportFormat>,
    /// Leave a story file that is already there as it is (else it is replaced).
    pub beside_skip_existing: bool,
    /// Put each story on the clipboard when it is told (the window does this).
    pub copy_when_done: bool,
    /// Say so with a desktop notification when a batch has been told.
    pub notify_when_done: bool,
    /// Keep the computer from sleeping while videos are being told.
    pub keep_awake: bool,
    /// Ask before quitting while videos are being told.
    pub confirm_quit: bool,
    /// The storytellers' keys set here (`gemini.requests-per-minute` → `60`), checked and
    /// written one way by [`crate::config::set`]; what is not here is the key's default.
    pub storytellers: BTreeMap<String, String>,
    /// Prices that replace the built-in table's for the same storyteller and family.
    pub prices: Vec<ModelPrice>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            concurrency: 3,
            storyteller: "offline".into(),
            model: None,
            preset: None,
            priority: Priority::Normal,
            language: None,
            words: None,
            save_beside_video: false,
            beside_formats: vec![ExportFormat::Markdown],
            beside_skip_existing: true,
            copy_when_done: false,
            notify_when_done: true,
            keep_awake: true,
            confirm_quit: true,
            storytellers: BTreeMap::new(),
            prices: Vec::new(),
        }
    }
}

impl Settings {
    /// The settings in `path`; the defaults when there is no file yet. A file that does not
    /// parse is named in the error rather than silently replaced.
    pub fn load(path: &Path) -> Result<Settings> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                EngineError::InvalidArgument(format!(
                    "the settings file {} cannot be read ({e}); fix or delete it",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(EngineError::io(path, &e)),
        }
    }

    /// Writes the settings to `path` whole.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| EngineError::InvalidArgument(format!("settings: {e}")))?;
        let partial = path.with_extension("json.part");
        std::fs::write(&partial, text).map_err(|e| EngineError::io(&partial, &e))?;
        std::fs::rename(&partial, path).map_err(|e| EngineError::io(path, &e))
    }

    /// Checks the values that need no storyteller to check.
    pub fn check(&self) -> Result<()> {
        check_concurrency(self.concurrency)?;
        crate::job::Style::new(None, self.words, self.language.as_deref())
            .map_err(EngineError::InvalidArgument)?;
        if self.save_beside_video && self.beside_formats.is_empty() {
            return Err(EngineError::InvalidArgument(
                "choose at least one format to write beside the videos".into(),
            ));
        }
        Ok(())
    }
}

/// `Ok` for a concurrency the pool accepts.
pub fn check_concurrency(n: u32) -> Result<()> {
    if (1..=MAX_CONCURRENCY).contains(&n) {
        Ok(())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "concurrency must be between 1 and {MAX_CONCURRENCY} (got {n})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default());
        let mine = Settings {
            concurrency: 5,
            preset: Some("summary".into()),
            priority: Priority::High,
            ..Settings::default()
        };
        mine.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), mine);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"concurrency\": 5"), "{text}");
        std::fs::write(&path, "{ not json").unwrap();
        let error = Settings::load(&path).unwrap_err().to_string();
        assert!(error.contains("fix or delete it"), "{error}");
        assert!(check_concurrency(0).is_err() && check_concurrency(65).is_err());
    }
}
