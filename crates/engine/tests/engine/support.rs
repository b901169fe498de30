//! Media fixtures: real videos made on the spot with ffmpeg's `lavfi` sources (nothing binary is
//! committed, nothing touches the network), a located [`Media`], and story sinks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use storyteller_engine::media::Media;
use storyteller_engine::storyteller::StorySink;
use storyteller_engine::{Event, EventBus, JobId, Subscription};

/// Default picture size of generated videos: small, so they are quick to make and analyse.
pub const SIZE: (u32, u32) = (320, 180);
/// Default frame rate of generated videos.
pub const FPS: u32 = 25;

/// What a generated video shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Look {
    /// ffmpeg's `testsrc2`: colour bars, a gradient and moving shapes.
    TestSrc,
    /// SMPTE colour bars (still).
    Bars,
    /// A slowly zooming Mandelbrot set (everything moves).
    Mandelbrot,
    /// Conway's game of life in green on black (busy).
    Life,
    /// One flat colour, by ffmpeg colour name (`navy`, `orange`, `black`).
    Colour(&'static str),
    /// A flat colour (the first) with a band of another down its left side, covering the
    /// given share of the picture.
    Split(&'static str, &'static str, f64),
}

impl Look {
    /// The `lavfi` source for `seconds` of this look at `width`×`height`.
    pub fn source(self, width: u32, height: u32, fps: u32, seconds: f64) -> String {
        let size = format!("{width}x{height}");
        match self {
            Look::TestSrc => format!("testsrc2=s={size}:r={fps}:d={seconds}"),
            Look::Bars => format!("smptebars=s={size}:r={fps}:d={seconds}"),
            Look::Mandelbrot => {
                format!("mandelbrot=s={size}:r={fps},trim=duration={seconds}")
            }
            Look::Life => format!(
                "life=s={size}:r={fps}:mold=10:ratio=0.1:life_color=#00ff00:death_color=#C83232,\
                 trim=duration={seconds}"
            ),
            Look::Colour(name) => format!("color=c={name}:s={size}:r={fps}:d={seconds}"),
            Look::Split(base, band, share) => format!(
                "color=c={base}:s={size}:r={fps}:d={seconds},\
                 drawbox=x=0:y=0:w=iw*{share}:h=ih:color={band}:t=fill"
            ),
        }
    }
}

/// Runs ffmpeg with `args`, panicking with its stderr if it fails.
pub fn ffmpeg(args: &[&str]) {
    let output = Command::new(ffmpeg_program())
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs (install FFmpeg to run these tests)");
    assert!(
        output.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The ffmpeg used to make fixtures (`STORYTELLER_FFMPEG` if set).
fn ffmpeg_program() -> PathBuf {
    std::env::var_os("STORYTELLER_FFMPEG")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("ffmpeg"), PathBuf::from)
}

/// A `seconds`-long 320×180 25 fps H.264 MP4 of `look` in `dir`, with a 440 Hz tone if `audio`.
pub fn make_video(dir: &Path, name: &str, seconds: u32, look: Look, audio: bool) -> PathBuf {
    make_scenes(dir, name, &[(look, f64::from(seconds))], audio)
}

/// An MP4 whose scenes are `segments` (look, seconds) back to back: each join is a cut.
pub fn make_scenes(dir: &Path, name: &str, segments: &[(Look, f64)], audio: bool) -> PathBuf {
    make_scenes_with(dir, name, segments, audio, &VideoOptions::default())
}

/// Encoding knobs for [`make_scenes_with`].
#[derive(Clone, Debug)]
pub struct VideoOptions {
    /// Picture size.
    pub size: (u32, u32),
    /// Frames per second.
    pub fps: u32,
    /// Keyframe interval in frames (x264's default when `None`).
    pub gop: Option<u32>,
    /// Move the MP4 index to the front (`-movflags +faststart`).
    pub faststart: bool,
}

impl Default for VideoOptions {
    fn default() -> Self {
        Self {
            size: SIZE,
            fps: FPS,
            gop: None,
            faststart: false,
        }
    }
}

/// [`make_scenes`] with explicit encoding options.
pub fn make_scenes_with(
    dir: &Path,
    name: &str,
    segments: &[(Look, f64)],
    audio: bool,
    options: &VideoOptions,
) -> PathBuf {
    let path = dir.join(name);
    let total: f64 = segments.iter().map(|s| s.1).sum();
    let (w, h) = options.size;
    let mut args: Vec<String> = Vec::new();
    for (look, seconds) in segments {
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!(
                "{},setsar=1,format=yuv420p",
                look.source(w, h, options.fps, *seconds)
            ),
        ]);
    }
    let inputs: String = (0..segments.len()).map(|i| format!("[{i}:v]")).collect();
    let mut graph = format!("{inputs}concat=n={}:v=1:a=0[v]", segments.len());
    if audio {
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("sine=frequency=440:sample_rate=48000:duration={total}"),
        ]);
        graph.push_str(&format!(";[{}:a]anull[a]", segments.len()));
    }
    args.extend(["-filter_complex".into(), graph, "-map".into(), "[v]".into()]);
    if audio {
        args.extend(["-map".into(), "[a]".into(), "-c:a".into(), "aac".into()]);
    }
    encode_args(&mut args, options);
    args.push(path.display().to_string());
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    path
}

/// The video encoder arguments every fixture shares.
pub fn encode_args(args: &mut Vec<String>, options: &VideoOptions) {
    args.extend(
        [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ]
        .map(String::from),
    );
    if let Some(gop) = options.gop {
        args.extend(["-g".into(), gop.to_string()]);
    }
    if options.faststart {
        args.extend(["-movflags".into(), "+faststart".into()]);
    }
}

/// A `seconds`-long test-pattern video whose sound is a tone with silence from `silent.0` to
/// `silent.1` seconds.
pub fn make_video_with_silence(
    dir: &Path,
    name: &str,
    seconds: f64,
    silent: (f64, f64),
) -> PathBuf {
    let path = dir.join(name);
    let (from, to) = silent;
    let video = Look::TestSrc.source(SIZE.0, SIZE.1, FPS, seconds);
    let graph = format!(
        "sine=frequency=440:sample_rate=48000:duration={from}[a0];\
         anullsrc=r=48000:cl=mono,atrim=duration={gap}[a1];\
         sine=frequency=660:sample_rate=48000:duration={rest}[a2];\
         [a0][a1][a2]concat=n=3:v=0:a=1[a]",
        gap = to - from,
        rest = seconds - to
    );
    let mut args: Vec<String> = vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        video,
        "-filter_complex".into(),
        graph,
        "-map".into(),
        "0:v".into(),
        "-map".into(),
        "[a]".into(),
        "-c:a".into(),
        "aac".into(),
    ];
    encode_args(&mut args, &VideoOptions::default());
    args.push(path.display().to_string());
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    path
}

/// A [`Media`] using the installed ffmpeg, keeping thumbnails in a fresh temporary folder that
/// outlives the test (so paths in results stay valid).
pub fn media() -> Media {
    let root = tempfile::Builder::new()
        .prefix("storyteller-thumbs-")
        .tempdir()
        .expect("a temporary folder")
        .keep();
    media_in(&root)
}

/// A [`Media`] using the installed ffmpeg, keeping thumbnails under `root`.
pub fn media_in(root: &Path) -> Media {
    Media::locate(root.to_owned()).expect("ffmpeg and ffprobe are installed")
}

/// A sink for a fresh job on a fresh bus.
pub fn sink() -> StorySink {
    StorySink::new(JobId::new(), 1, EventBus::new())
}

/// A sink and a receiver of everything it publishes.
pub fn sink_with_events() -> (StorySink, Subscription) {
    let bus = EventBus::new();
    let events = bus.subscribe();
    (StorySink::new(JobId::new(), 1, bus), events)
}

/// Everything received so far.
pub fn drain(events: &mut Subscription) -> Vec<Event> {
    let mut out = Vec::new();
    while let Some(envelope) = events.try_recv() {
        out.push(envelope.event);
    }
    out
}

/// Whether `bytes` start like a JPEG file.
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF])
}

/// A local server answering every POST to `route` with `answer`, as a model's server would.
pub async fn server_answering(
    route: &str,
    answer: wiremock::ResponseTemplate,
) -> wiremock::MockServer {
    use wiremock::matchers::{method, path};
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("POST"))
        .and(path(route))
        .respond_with(answer)
        .mount(&server)
        .await;
    server
}

/// An address on this machine where nothing listens (a port just freed).
pub fn nobody_listening() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}")
}

/// A 4-second video of two 2-second shots, `first` then test bars, with sound.
pub fn two_shots(dir: &Path, name: &str, first: Look) -> PathBuf {
    make_scenes(dir, name, &[(first, 2.0), (Look::TestSrc, 2.0)], true)
}
