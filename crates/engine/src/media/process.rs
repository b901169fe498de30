//! Running ffmpeg and ffprobe as child processes.
//!
//! Every child is spawned with stdin closed and `kill_on_drop`, so dropping the future that owns
//! it (cancelling a job) kills the process at once. Output is streamed line by line (or capped
//! when binary), so memory stays bounded whatever the size of the file being read.
//!
//! A child must not outlive its parent either: killed with SIGKILL, the parent runs no drop, and
//! an orphaned ffmpeg would go on decoding for minutes beside the restarted runner. On Linux each
//! child asks the kernel for SIGKILL when the thread that spawned it ends (`PR_SET_PDEATHSIG`);
//! children are spawned from the runtime's worker threads, which live as long as the process.
//! Children also run at a lower CPU priority (`nice` 10), so decoding never starves the window.

use super::MediaError;
use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Longest line we keep; the rest of a longer line is dropped (ffmpeg never writes one).
const MAX_LINE: usize = 64 * 1024;
/// How many of the last stderr lines are kept to explain a failure.
const STDERR_TAIL: usize = 24;

/// A command for `program` with stdin closed, both outputs piped and kill-on-drop set.
pub(crate) fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(target_os = "linux")]
    die_with_parent(&mut cmd);
    cmd
}

/// How much lower than the app's own the tools' CPU priority is (`nice`).
#[cfg(target_os = "linux")]
const CHILD_NICENESS: libc::c_int = 10;

/// The one `unsafe` in the project (the workspace denies it elsewhere): a `pre_exec` hook has
/// no safe form.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut Command) {
    // The parent's pid, read before the fork: if the parent is already gone by the time the
    // child has set the signal up, the child is an orphan and must end itself.
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only `prctl`,
    // `getppid`, `setpriority` and `_exit`, which are async-signal-safe; it allocates nothing
    // and takes no lock.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            // Decoding is background work: at a lower priority it never starves the window
            // (or the person's other programs) of the CPU, and loses nothing when the machine
            // is otherwise idle. Failing to lower it is harmless.
            libc::setpriority(libc::PRIO_PROCESS, 0, CHILD_NICENESS);
            Ok(())
        });
    }
}

/// How a child process ended.
#[derive(Debug)]
pub(crate) struct Finished {
    /// Its exit status.
    pub status: ExitStatus,
    /// The last lines it wrote to stderr, oldest first.
    pub stderr_tail: Vec<String>,
}

/// What the child wrote to stdout, when collected as bytes.
#[derive(Debug)]
pub(crate) struct Collected {
    /// At most the cap asked for.
    pub stdout: Vec<u8>,
    /// How it ended.
    pub finished: Finished,
}

/// Runs `cmd`, handing every stdout line to `on_stdout` and every stderr line to `on_stderr`.
pub(crate) async fn run_lines(
    tool: &'static str,
    mut cmd: Command,
    mut on_stdout: impl FnMut(&str) + Send,
    mut on_stderr: impl FnMut(&str) + Send,
) -> Result<Finished, MediaError> {
    let mut child = cmd
        .spawn()
        .map_err(|e| spawn_error(tool, cmd.as_std(), &e))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut tail = VecDeque::with_capacity(STDERR_TAIL);
    // Both pipes are drained together: a child blocked on a full stderr pipe would never
    // finish its stdout.
    let (out, err) = tokio::join!(
        async {
            match stdout {
                Some(pipe) => for_each_line(pipe, &mut on_stdout).await,
                None => Ok(()),
            }
        },
        async {
            match stderr {
                Some(pipe) => {
                    for_each_line(pipe, |line| {
                        on_stderr(line);
                        keep_tail(&mut tail, line);
                    })
                    .await
                }
                None => Ok(()),
            }
        }
    );
    let status = child
        .wait()
        .await
        .map_err(|e| tool_failed(tool, &e.to_string()))?;
    out.and(err)
        .map_err(|e| tool_failed(tool, &format!("reading its output failed: {e}")))?;
    Ok(Finished {
        status,
        stderr_tail: tail.into(),
    })
}

/// Runs `cmd`, keeping at most `cap` bytes of its stdout (the rest is read and dropped).
pub(crate) async fn run_collect(
    tool: &'static str,
    mut cmd: Command,
    cap: usize,
) -> Result<Collected, MediaError> {
    let mut child = cmd
        .spawn()
        .map_err(|e| spawn_error(tool, cmd.as_std(), &e))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut tail = VecDeque::with_capacity(STDERR_TAIL);
    let mut collected = Vec::new();
    let (out, err) = tokio::join!(
        async {
            match stdout {
                Some(pipe) => read_capped(pipe, &mut collected, cap).await,
                None => Ok(()),
            }
        },
        async {
            match stderr {
                Some(pipe) => for_each_line(pipe, |line| keep_tail(&mut tail, line)).await,
                None => Ok(()),
            }
        }
    );
    let status = child
        .wait()
        .await
        .map_err(|e| tool_failed(tool, &e.to_string()))?;
    out.and(err)
        .map_err(|e| tool_failed(tool, &format!("reading its output failed: {e}")))?;
    Ok(Collected {
        stdout: collected,
        finished: Finished {
            status,
            stderr_tail: tail.into(),
        },
    })
}

/// Remembers `line` among the last [`STDERR_TAIL`] non-empty lines.
fn keep_tail(tail: &mut VecDeque<String>, line: &str) {
    if line.trim().is_empty() {
        return;
    }
    if tail.len() == STDERR_TAIL {
        tail.pop_front();
    }
    tail.push_back(line.to_owned());
}

/// Reads `reader` to its end, keeping the first `cap` bytes.
async fn read_capped(
    mut reader: impl AsyncRead + Unpin,
    into: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buffer).await?;
        if n == 0 {
            return Ok(());
        }
        let room = cap.saturating_sub(into.len());
        into.extend_from_slice(&buffer[..n.min(room)]);
    }
}

/// Calls `f` with every line of `reader`; `\r` ends a line too (ffmpeg's status lines use it).
pub(crate) async fn for_each_line(
    reader: impl AsyncRead + Unpin,
    mut f: impl FnMut(&str),
) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(16 * 1024, reader);
    let mut line: Vec<u8> = Vec::with_capacity(256);
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            if !line.is_empty() {
                f(&String::from_utf8_lossy(&line));
            }
            return Ok(());
        }
        for &byte in buf {
            if byte == b'\n' || byte == b'\r' {
                if !line.is_empty() {
                    f(&String::from_utf8_lossy(&line));
                    line.clear();
                }
            } else if line.len() < MAX_LINE {
                line.push(byte);
            }
        }
        let consumed = buf.len();
        reader.consume(consumed);
    }
}

/// What a tool's failure says about the machine rather than the file, if anything: a full disk
/// (naming `writing_to`, where the tool was writing, when it was writing somewhere), or a tool
/// that cannot run at all. A video is never blamed for either.
pub(crate) fn machine_fault(
    tool: &'static str,
    finished: &Finished,
    writing_to: Option<&Path>,
) -> Option<MediaError> {
    let said = |needle: &str| finished.stderr_tail.iter().any(|l| l.contains(needle));
    if let Some(folder) = writing_to {
        if said("No space left on device") || said("Disk quota exceeded") {
            return Some(MediaError::DiskFull {
                path: folder.to_owned(),
            });
        }
    }
    let broken_start = [
        "error while loading shared libraries",
        "cannot execute binary file",
        "Exec format error",
        "version `GLIBC",
        "Illegal instruction",
    ]
    .iter()
    .find_map(|needle| {
        finished
            .stderr_tail
            .iter()
            .find(|l| l.contains(needle))
            .cloned()
    });
    // 126 and 127 are what a shell or the loader answers for a program that cannot start.
    let code = finished.status.code();
    if broken_start.is_some() || matches!(code, Some(126 | 127)) {
        let message = broken_start
            .or_else(|| finished.stderr_tail.last().cloned())
            .unwrap_or_else(|| format!("it exited with code {} at once", code.unwrap_or(-1)));
        return Some(MediaError::ToolBroken {
            tool,
            env_var: if tool == "ffprobe" {
                super::locate::FFPROBE_ENV
            } else {
                super::locate::FFMPEG_ENV
            },
            message: message.trim().to_owned(),
        });
    }
    None
}

/// A full disk named for people, from an I/O error while writing at `path`; `None` for any
/// other error.
pub(crate) fn disk_full(error: &std::io::Error, path: &Path) -> Option<MediaError> {
    // ENOSPC and EDQUOT: no space, or none left in the person's quota.
    let full = error.kind() == std::io::ErrorKind::StorageFull
        || error.kind() == std::io::ErrorKind::QuotaExceeded;
    full.then(|| MediaError::DiskFull {
        path: path.to_owned(),
    })
}

/// The error for a child that could not be started.
fn spawn_error(
    tool: &'static str,
    cmd: &std::process::Command,
    error: &std::io::Error,
) -> MediaError {
    let program = Path::new(cmd.get_program());
    match error.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => {
            let env_var = if tool == "ffprobe" {
                super::locate::FFPROBE_ENV
            } else {
                super::locate::FFMPEG_ENV
            };
            MediaError::ToolMissing {
                tool,
                message: format!(
                    "{tool} could not be run from {} ({}); {} or set {env_var} to its path",
                    program.display(),
                    if error.kind() == std::io::ErrorKind::NotFound {
                        "no such file"
                    } else {
                        "permission denied"
                    },
                    super::locate::INSTALL_HINT
                ),
            }
        }
        _ => tool_failed(tool, &format!("it could not be started: {error}")),
    }
}

/// A transient failure to run `tool`.
fn tool_failed(tool: &'static str, message: &str) -> MediaError {
    MediaError::ToolFailed {
        tool,
        message: message.to_owned(),
    }
}

/// A short reason for a failure, for people: the last meaningful stderr line, without ffmpeg's
/// `[demuxer @ 0x…]` prefix or the file's path.
pub(crate) fn short_reason(tail: &[String], path: &Path) -> Option<String> {
    let path_text = path.display().to_string();
    tail.iter().rev().find_map(|line| {
        let mut text = line.trim();
        // "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d5c8f0] moov atom not found"
        if text.starts_with('[') {
            if let Some(end) = text.find("] ") {
                text = &text[end + 2..];
            }
        }
        for prefix in [format!("file:{path_text}: "), format!("{path_text}: ")] {
            if let Some(rest) = text.strip_prefix(prefix.as_str()) {
                text = rest;
            }
        }
        let text = text.trim();
        if text.is_empty() || text.starts_with("Conversion failed") {
            return None;
        }
        let mut reason: String = text.chars().take(160).collect();
        if reason.len() < text.len() {
            reason.push('…');
        }
        Some(reason)
    })
}

/// Whether `status` means the child was killed by a signal rather than exiting.
pub(crate) fn killed_by_signal(status: &ExitStatus) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        status.signal().is_some()
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_split_on_newline_and_carriage_return() {
        let input: &[u8] = b"one\ntwo\r\nthree\rfour";
        let mut lines = Vec::new();
        for_each_line(input, |l| lines.push(l.to_owned()))
            .await
            .unwrap();
        assert_eq!(lines, ["one", "two", "three", "four"]);
    }

    #[test]
    fn short_reason_strips_prefixes_and_paths() {
        let path = Path::new("/videos/a.mp4");
        let tail = vec![
            "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d5c8f0] moov atom not found".to_owned(),
            "file:/videos/a.mp4: Invalid data found when processing input".to_owned(),
        ];
        assert_eq!(
            short_reason(&tail, path).as_deref(),
            Some("Invalid data found when processing input")
        );
        assert_eq!(short_reason(&[], path), None);
    }
}
