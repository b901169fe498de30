//! The catch-up scan: every file a watched folder would tell, as it stands on disk now. It is
//! how videos that arrived while the app was closed are found, and how a polled folder (a
//! network share) notices new files.
//!
//! The walk goes into subfolders only for a recursive folder, never into hidden folders, the
//! done folder or an output folder inside the tree, and never through a link to a folder (a
//! link back up the tree would loop). Blocking: call it off the async threads.

use super::folder::{StoryOutput, WatchedFolder};
use std::path::{Path, PathBuf};

/// Why a watched folder could not be scanned.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// The folder is not there (deleted, renamed, or on a drive that is not mounted).
    #[error("the folder {} is missing", .0.display())]
    Missing(PathBuf),
    /// Something other than a folder is at its path.
    #[error("{} is not a folder", .0.display())]
    NotAFolder(PathBuf),
    /// It is there but cannot be read.
    #[error("the folder {} cannot be read: {}", .path.display(), .reason)]
    Unreadable {
        /// The folder (or the subfolder) that could not be read.
        path: PathBuf,
        /// Why, in words.
        reason: String,
    },
}

/// The files under `folder` it would tell, in path order: those [`WatchedFolder::passes_over`]
/// does not pass over. A subfolder that cannot be read is left out, and said in `skipped`.
pub fn candidates(folder: &WatchedFolder) -> Result<Scan, ScanError> {
    match std::fs::metadata(&folder.path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(ScanError::NotAFolder(folder.path.clone())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ScanError::Missing(folder.path.clone()))
        }
        Err(e) => {
            return Err(ScanError::Unreadable {
                path: folder.path.clone(),
                reason: crate::intake::describe_io_error(&e),
            })
        }
    }
    let mut scan = Scan::default();
    walk(folder, &folder.path, &mut scan, true)?;
    scan.files.sort();
    Ok(scan)
}

/// What a scan found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// The files to tell, in path order.
    pub files: Vec<PathBuf>,
    /// Subfolders that could not be read, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

fn walk(folder: &WatchedFolder, dir: &Path, scan: &mut Scan, top: bool) -> Result<(), ScanError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            let reason = crate::intake::describe_io_error(&e);
            if top {
                return Err(ScanError::Unreadable {
                    path: dir.to_path_buf(),
                    reason,
                });
            }
            scan.skipped.push((dir.to_path_buf(), reason));
            return Ok(());
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // The entry's own type: a link is not followed into a folder.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if folder.recursive && !is_pruned(folder, &path) {
                walk(folder, &path, scan, false)?;
            }
            continue;
        }
        let is_file = kind.is_file()
            || (kind.is_symlink() && std::fs::metadata(&path).is_ok_and(|m| m.is_file()));
        if is_file && folder.passes_over(&path).is_none() {
            scan.files.push(path);
        }
    }
    Ok(())
}

/// Whether the walk stays out of the subfolder `dir`: hidden, the done folder, or the folder
/// the stories are written to.
fn is_pruned(folder: &WatchedFolder, dir: &Path) -> bool {
    let hidden = dir
        .file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with('.'));
    let done = folder.done_folder().is_some_and(|done| dir == done);
    let output = matches!(&folder.output, StoryOutput::Folder { path, .. } if dir == path);
    hidden || done || output
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::ExportFormat;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn a_scan_finds_what_the_folder_tells_and_stays_out_of_what_the_app_writes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("watched");
        for name in [
            "b.mp4",
            "a.MOV",
            "notes.txt",
            "a.story.md",
            "c.mp4.part",
            ".hidden.mp4",
            "sub/d.mkv",
            "sub/deeper/e.webm",
            "done/told.mp4",
            "stories/f.mp4",
            ".cache/g.mp4",
        ] {
            touch(&root.join(name));
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();

        let flat = WatchedFolder::new(root.clone());
        let found = candidates(&flat).unwrap();
        assert_eq!(found.files, [root.join("a.MOV"), root.join("b.mp4")]);

        let deep = WatchedFolder {
            recursive: true,
            move_done: true,
            output: StoryOutput::Folder {
                path: root.join("stories"),
                formats: vec![ExportFormat::Markdown],
            },
            ..WatchedFolder::new(root.clone())
        };
        let found = candidates(&deep).unwrap();
        assert_eq!(
            found.files,
            [
                root.join("a.MOV"),
                root.join("b.mp4"),
                root.join("sub/d.mkv"),
                root.join("sub/deeper/e.webm"),
            ],
            "no done folder, output folder, hidden folder, or loop through the link"
        );
        assert!(found.skipped.is_empty());
    }

    #[test]
    fn a_missing_folder_or_a_file_in_its_place_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("unmounted");
        let error = candidates(&WatchedFolder::new(gone.clone())).unwrap_err();
        assert!(
            matches!(error, ScanError::Missing(ref p) if *p == gone),
            "{error}"
        );
        assert!(error.to_string().contains("is missing"), "{error}");
        let file = dir.path().join("file");
        touch(&file);
        let error = candidates(&WatchedFolder::new(file)).unwrap_err();
        assert!(error.to_string().contains("is not a folder"), "{error}");
    }
}
