//! One watched folder: what its videos get, what is done after a story, and which of the
//! paths under it are videos to tell from it.
//!
//! A folder never tells what the app writes into it itself: the stories written beside the
//! videos (`NAME.story.md`, …), the `done/` folder videos are moved to, and an output folder
//! that lies inside the watched tree. Without that rule a story written into the folder would
//! be found by the folder, and an output folder inside it would loop for ever.

use crate::export::ExportFormat;
use crate::intake;
use crate::job::Priority;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// The folder under a watched folder that told videos are moved to, when that is asked.
pub const DONE_FOLDER: &str = "done";

/// Where a watched folder's stories are written once told, beyond the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum StoryOutput {
    /// Nowhere: the stories are in the history, to copy and export.
    None,
    /// Beside each video, in these formats (`NAME.story.md`, …).
    Beside {
        /// The formats written.
        formats: Vec<ExportFormat>,
    },
    /// Into this folder, in these formats.
    Folder {
        /// The folder.
        path: PathBuf,
        /// The formats written.
        formats: Vec<ExportFormat>,
    },
}

/// A watched folder and what its videos get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchedFolder {
    /// The folder, as it was added (made absolute).
    pub path: PathBuf,
    /// Whether videos in its subfolders count too.
    pub recursive: bool,
    /// The storyteller its videos get (the settings' when not set).
    pub storyteller: Option<String>,
    /// The preset (the storyteller's default when not set).
    pub preset: Option<String>,
    /// The priority (the settings' when not set).
    pub priority: Option<Priority>,
    /// The file extensions it takes, lower case without the dot; empty for every video.
    pub extensions: Vec<String>,
    /// Where the stories are written.
    pub output: StoryOutput,
    /// Whether a told video is moved into [`DONE_FOLDER`].
    pub move_done: bool,
    /// Whether the folder is polled rather than watched through the system's events (for
    /// network shares, whose events are unreliable).
    pub poll: bool,
    /// Whether watching it is paused by the person.
    pub paused: bool,
}

impl WatchedFolder {
    /// A folder at `path` with nothing chosen: not recursive, the settings' storyteller,
    /// preset and priority, every video, no story written out, nothing moved, system events.
    pub fn new(path: PathBuf) -> Self {
        WatchedFolder {
            path,
            recursive: false,
            storyteller: None,
            preset: None,
            priority: None,
            extensions: Vec::new(),
            output: StoryOutput::None,
            move_done: false,
            poll: false,
            paused: false,
        }
    }

    /// Where told videos are moved, when they are.
    pub fn done_folder(&self) -> Option<PathBuf> {
        self.move_done.then(|| self.path.join(DONE_FOLDER))
    }

    /// Whether videos in the subfolder `dir` count: the folder is recursive, and `dir` is
    /// inside it but not hidden, the done folder or the output folder (nor inside one).
    pub fn walks_into(&self, dir: &Path) -> bool {
        let Ok(inside) = dir.strip_prefix(&self.path) else {
            return false;
        };
        let hidden = inside.components().any(|c| match c {
            Component::Normal(name) => name.to_string_lossy().starts_with('.'),
            _ => false,
        });
        let done = self.done_folder().is_some_and(|done| dir.starts_with(done));
        let output =
            matches!(&self.output, StoryOutput::Folder { path, .. } if dir.starts_with(path));
        self.recursive && !hidden && !done && !output
    }

    /// Why the file at `path` is not a video to tell from this folder, or `None` when it is.
    /// Only the names are read: whether the file is complete and readable is checked apart.
    pub fn passes_over(&self, path: &Path) -> Option<String> {
        let Ok(inside) = path.strip_prefix(&self.path) else {
            return Some("it is not in the watched folder".into());
        };
        let folders: Vec<&std::ffi::OsStr> = inside
            .parent()
            .map(|parent| {
                parent
                    .components()
                    .filter_map(|c| match c {
                        Component::Normal(name) => Some(name),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !self.recursive && !folders.is_empty() {
            return Some(
                "it is in a subfolder, and the folder is not watched with its subfolders".into(),
            );
        }
        if folders
            .iter()
            .any(|name| name.to_string_lossy().starts_with('.'))
        {
            return Some("it is in a hidden folder".into());
        }
        if self
            .done_folder()
            .is_some_and(|done| path.starts_with(done))
        {
            return Some("it is in the done folder, where told videos are moved".into());
        }
        if let StoryOutput::Folder { path: output, .. } = &self.output {
            if path.starts_with(output) {
                return Some("it is in the folder the stories are written to".into());
            }
        }
        let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
            return Some("it is not a file".into());
        };
        if let Some(why) = super::settle::ignored_name(&name) {
            return Some(format!("it is {why}"));
        }
        if is_story_file(&name) {
            return Some("it is a story Storyteller wrote".into());
        }
        if !intake::has_video_extension(path) {
            return Some("it is not a video file".into());
        }
        if !self.extensions.is_empty() {
            let extension = path
                .extension()
                .map(|e| e.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if !self.extensions.contains(&extension) {
                return Some(format!(
                    "the folder takes only {} files",
                    self.extensions.join(", ")
                ));
            }
        }
        None
    }
}

/// Whether `name` is a story written beside a video (`clip.story.md`, see
/// [`crate::export::beside_path`]).
fn is_story_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ExportFormat::ALL
        .iter()
        .any(|format| lower.ends_with(&format!(".story.{}", format.extension())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> WatchedFolder {
        WatchedFolder::new(PathBuf::from("/w"))
    }

    #[test]
    fn a_plain_folder_takes_its_own_videos_only() {
        let f = folder();
        assert_eq!(f.passes_over(Path::new("/w/clip.mp4")), None);
        assert_eq!(f.passes_over(Path::new("/w/CLIP.MOV")), None);
        for (path, says) in [
            ("/elsewhere/clip.mp4", "not in the watched folder"),
            ("/w/sub/clip.mp4", "in a subfolder"),
            ("/w/notes.txt", "not a video file"),
            ("/w/clip.mp4.part", "still being downloaded"),
            ("/w/.clip.mp4", "hidden file"),
        ] {
            let why = f.passes_over(Path::new(path)).unwrap_or_default();
            assert!(why.contains(says), "{path}: {why}");
        }
    }

    #[test]
    fn what_the_app_writes_into_the_folder_is_never_told() {
        let f = WatchedFolder {
            recursive: true,
            move_done: true,
            output: StoryOutput::Folder {
                path: PathBuf::from("/w/stories"),
                formats: vec![ExportFormat::Markdown],
            },
            ..folder()
        };
        assert_eq!(f.passes_over(Path::new("/w/sub/clip.mp4")), None);
        for (path, says) in [
            ("/w/done/clip.mp4", "done folder"),
            ("/w/done/deeper/clip.mp4", "done folder"),
            ("/w/stories/clip.mp4", "the stories are written to"),
            ("/w/clip.story.md", "a story Storyteller wrote"),
            ("/w/clip.story.PDF", "a story Storyteller wrote"),
            ("/w/.cache/clip.mp4", "hidden folder"),
        ] {
            let why = f.passes_over(Path::new(path)).unwrap_or_default();
            assert!(why.contains(says), "{path}: {why}");
        }
        // Without `move_done`, a folder called done is only a folder.
        let f = WatchedFolder {
            recursive: true,
            ..folder()
        };
        assert_eq!(f.passes_over(Path::new("/w/done/clip.mp4")), None);
    }

    #[test]
    fn a_type_filter_names_what_the_folder_takes() {
        let f = WatchedFolder {
            extensions: vec!["mp4".into(), "mov".into()],
            ..folder()
        };
        assert_eq!(f.passes_over(Path::new("/w/a.MP4")), None);
        let why = f.passes_over(Path::new("/w/a.mkv")).unwrap_or_default();
        assert_eq!(why, "the folder takes only mp4, mov files");
    }

    #[test]
    fn folders_keep_their_choices_through_json() {
        let f = WatchedFolder {
            storyteller: Some("gemini".into()),
            priority: Some(Priority::High),
            output: StoryOutput::Beside {
                formats: vec![ExportFormat::Markdown, ExportFormat::Pdf],
            },
            poll: true,
            ..folder()
        };
        let text = serde_json::to_string(&f).unwrap();
        assert_eq!(serde_json::from_str::<WatchedFolder>(&text).unwrap(), f);
        assert!(
            text.contains(r#""output":{"kind":"beside","formats":["markdown","pdf"]}"#),
            "{text}"
        );
    }
}
