//! Where Storyteller keeps its database, thumbnails and settings.
//!
//! An explicit folder (`--home`) wins, then `STORYTELLER_HOME`, then the OS data directory.

use crate::error::{EngineError, Result};
use std::path::{Path, PathBuf};

/// The environment variable that moves everything Storyteller stores.
pub const HOME_ENV: &str = "STORYTELLER_HOME";

/// The folder holding one Storyteller installation's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// `explicit`, else `$STORYTELLER_HOME`, else the OS data directory; the folders are created.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self> {
        let root = match explicit {
            Some(dir) => dir.to_path_buf(),
            None => match std::env::var_os(HOME_ENV).filter(|v| !v.is_empty()) {
                Some(dir) => PathBuf::from(dir),
                None => directories::ProjectDirs::from("app", "Storyteller", "Storyteller")
                    .ok_or(EngineError::NoHome)?
                    .data_dir()
                    .to_path_buf(),
            },
        };
        Self::at(root)
    }

    /// A home at exactly `root`; the folders are created.
    pub fn at(root: impl Into<PathBuf>) -> Result<Self> {
        let home = Self { root: root.into() };
        if home.root.exists() && !home.root.is_dir() {
            return Err(EngineError::InvalidArgument(format!(
                "the home {} is a file, not a folder: give --home (or STORYTELLER_HOME) a folder, \
                 new or one Storyteller made",
                home.root.display()
            )));
        }
        for dir in [home.root.clone(), home.thumbnails()] {
            std::fs::create_dir_all(&dir).map_err(|e| EngineError::io(&dir, &e))?;
        }
        Ok(home)
    }

    /// The home folder itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The job database.
    pub fn database(&self) -> PathBuf {
        self.root.join("storyteller.db")
    }

    /// The person's settings (JSON; never secrets).
    pub fn settings(&self) -> PathBuf {
        self.root.join("settings.json")
    }

    /// Keyframe thumbnails, one folder per content hash.
    pub fn thumbnails(&self) -> PathBuf {
        self.root.join("thumbnails")
    }
}
