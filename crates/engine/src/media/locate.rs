//! Finding the `ffmpeg` and `ffprobe` binaries: an environment variable first, then `PATH`.
//!
//! The lookup is a pure function of the variables' values ([`locate_tools`]) so it can be tested
//! without mutating the process environment, which is racy in multi-threaded tests.

use super::MediaError;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The environment variable that names the `ffmpeg` binary.
pub const FFMPEG_ENV: &str = "STORYTELLER_FFMPEG";
/// The environment variable that names the `ffprobe` binary.
pub const FFPROBE_ENV: &str = "STORYTELLER_FFPROBE";

/// How to get FFmpeg, appended to every "not found" message.
pub const INSTALL_HINT: &str = "install FFmpeg (Debian/Ubuntu: sudo apt install ffmpeg; \
Fedora: sudo dnf install ffmpeg; macOS: brew install ffmpeg; Windows: winget install ffmpeg)";

/// Finds `(ffmpeg, ffprobe)` given the values of `STORYTELLER_FFMPEG`, `STORYTELLER_FFPROBE` and
/// `PATH`; when either is missing, one error names everything that is missing and how to fix it.
pub fn locate_tools(
    ffmpeg_env: Option<&OsStr>,
    ffprobe_env: Option<&OsStr>,
    path_var: Option<&OsStr>,
) -> Result<(PathBuf, PathBuf), MediaError> {
    let ffmpeg = find_tool("ffmpeg", FFMPEG_ENV, ffmpeg_env, path_var);
    let ffprobe = find_tool("ffprobe", FFPROBE_ENV, ffprobe_env, path_var);
    match (ffmpeg, ffprobe) {
        (Ok(ffmpeg), Ok(ffprobe)) => Ok((ffmpeg, ffprobe)),
        (Err(Missing::Env(message)), _) | (_, Err(Missing::Env(message))) => {
            // A variable set to a wrong path is the more specific mistake: report that.
            Err(MediaError::ToolMissing {
                tool: "ffmpeg",
                message,
            })
        }
        (Err(Missing::Path), Err(Missing::Path)) => Err(MediaError::ToolMissing {
            tool: "ffmpeg",
            message: format!(
                "ffmpeg and ffprobe were not found on PATH; {INSTALL_HINT} or set {FFMPEG_ENV} \
                 and {FFPROBE_ENV} to their paths"
            ),
        }),
        (Err(Missing::Path), Ok(_)) => Err(not_on_path("ffmpeg", FFMPEG_ENV)),
        (Ok(_), Err(Missing::Path)) => Err(not_on_path("ffprobe", FFPROBE_ENV)),
    }
}

/// The error for one tool that is not on `PATH`.
fn not_on_path(tool: &'static str, env_var: &str) -> MediaError {
    MediaError::ToolMissing {
        tool,
        message: format!("{tool} was not found on PATH; {INSTALL_HINT} or set {env_var}"),
    }
}

/// Why one tool was not found.
enum Missing {
    /// Its variable names something that is not an executable file: the full message.
    Env(String),
    /// It is not on `PATH`.
    Path,
}

/// Finds one tool: its variable, when set and non-empty, wins over `PATH`.
fn find_tool(
    tool: &'static str,
    env_var: &str,
    env_value: Option<&OsStr>,
    path_var: Option<&OsStr>,
) -> Result<PathBuf, Missing> {
    if let Some(value) = env_value.filter(|v| !v.is_empty()) {
        let candidate = PathBuf::from(value);
        return if is_executable(&candidate) {
            Ok(candidate)
        } else {
            Err(Missing::Env(format!(
                "{env_var} is set to {}, but no {tool} program is there; fix or unset it, or \
                 {INSTALL_HINT}",
                candidate.display()
            )))
        };
    }
    let path_var = path_var.ok_or(Missing::Path)?;
    std::env::split_paths(path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| executable_names(tool).map(move |name| dir.join(name)))
        .find(|candidate| is_executable(candidate))
        .ok_or(Missing::Path)
}

/// The file names a tool may have on this platform.
fn executable_names(tool: &str) -> impl Iterator<Item = String> {
    let mut names = vec![tool.to_owned()];
    if cfg!(windows) {
        names.insert(0, format!("{tool}.exe"));
    }
    names.into_iter()
}

/// Whether `path` is a file we may execute.
fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn fake_tool(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        path
    }

    fn message(error: MediaError) -> String {
        error.to_string()
    }

    #[test]
    fn finds_both_on_path_in_order() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        fake_tool(second.path(), "ffmpeg");
        let probe = fake_tool(first.path(), "ffprobe");
        fake_tool(second.path(), "ffprobe");
        let path = std::env::join_paths([first.path(), second.path()]).unwrap();
        let (ffmpeg, ffprobe) = locate_tools(None, None, Some(&path)).unwrap();
        assert_eq!(ffmpeg, second.path().join("ffmpeg"));
        assert_eq!(ffprobe, probe);
    }

    #[test]
    fn env_var_wins_and_empty_env_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fake_tool(dir.path(), "ffmpeg");
        fake_tool(dir.path(), "ffprobe");
        let special = fake_tool(elsewhere.path(), "my-ffprobe");
        let path = OsString::from(dir.path());
        let (ffmpeg, ffprobe) =
            locate_tools(Some(OsStr::new("")), Some(special.as_os_str()), Some(&path)).unwrap();
        assert_eq!(ffmpeg, dir.path().join("ffmpeg"));
        assert_eq!(ffprobe, special);
    }

    #[test]
    fn one_missing_tool_is_named_with_install_advice() {
        let dir = tempfile::tempdir().unwrap();
        fake_tool(dir.path(), "ffmpeg");
        let text = message(locate_tools(None, None, Some(dir.path().as_os_str())).unwrap_err());
        assert!(text.starts_with("ffprobe was not found on PATH"), "{text}");
        assert!(text.contains("sudo apt install ffmpeg"), "{text}");
        assert!(text.contains("brew install ffmpeg"), "{text}");
        assert!(text.contains(FFPROBE_ENV), "{text}");
    }

    #[test]
    fn both_missing_is_one_error_and_maps_to_setup() {
        let dir = tempfile::tempdir().unwrap();
        let error = locate_tools(None, None, Some(dir.path().as_os_str())).unwrap_err();
        assert!(matches!(error, MediaError::ToolMissing { .. }));
        let text = message(error);
        assert!(
            text.starts_with("ffmpeg and ffprobe were not found"),
            "{text}"
        );
        let text = message(locate_tools(None, None, None).unwrap_err());
        assert!(
            text.starts_with("ffmpeg and ffprobe were not found"),
            "{text}"
        );
    }

    #[test]
    fn bogus_env_path_is_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        fake_tool(dir.path(), "ffmpeg");
        fake_tool(dir.path(), "ffprobe");
        let text = message(
            locate_tools(
                None,
                Some(OsStr::new("/nowhere/ffprobe")),
                Some(dir.path().as_os_str()),
            )
            .unwrap_err(),
        );
        assert!(
            text.starts_with("STORYTELLER_FFPROBE is set to /nowhere/ffprobe"),
            "{text}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn non_executable_files_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ffmpeg"), "not a program").unwrap();
        fake_tool(dir.path(), "ffprobe");
        let text = message(locate_tools(None, None, Some(dir.path().as_os_str())).unwrap_err());
        assert!(text.starts_with("ffmpeg was not found on PATH"), "{text}");
    }
}
