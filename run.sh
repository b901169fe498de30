#!/usr/bin/env bash
# Storyteller's one entry point.
#   ./run.sh         install what is missing, build, open the window with sample videos queued
#   ./run.sh app     the same
#   ./run.sh demo    no window: build the command, turn the sample videos into stories
#   ./run.sh test    install what is missing, then fmt, clippy, docs, the UI's checks and every
#                    test, the window's under Xvfb
#   ./run.sh bench   the engine, offline-storyteller, Gemini, watched-folder, team-queue and
#                    window benchmarks (prints figures)
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
# Where cargo builds (CARGO_TARGET_DIR when it is set, as cargo itself reads it).
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# System packages, installed only when missing. The command and the engine need a C toolchain,
# ffmpeg and D-Bus's headers (for the keychain); the window needs WebKitGTK, and its tests a
# virtual display, the WebDriver for WebKit, a clipboard reader, a notification server and a
# keyring; the team queue's tests, a PostgreSQL server.
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing system packages: $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

has_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

ensure_system_packages() {
  local missing=()
  command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
  command -v cc >/dev/null 2>&1 || missing+=(build-essential)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  command -v curl >/dev/null 2>&1 || missing+=(curl ca-certificates)
  # The OS keychain (Secret Service) is reached over D-Bus.
  has_package libdbus-1-dev || missing+=(libdbus-1-dev)
  if [ "${1:-}" = window ] || [ "${1:-}" = test ]; then
    has_package libwebkit2gtk-4.1-dev || missing+=(libwebkit2gtk-4.1-dev)
    command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
  fi
  if [ "${1:-}" = test ]; then
    command -v xvfb-run >/dev/null 2>&1 || missing+=(xvfb)
    command -v xauth >/dev/null 2>&1 || missing+=(xauth)
    command -v WebKitWebDriver >/dev/null 2>&1 || missing+=(webkit2gtk-driver)
    command -v xclip >/dev/null 2>&1 || missing+=(xclip)
    command -v dunst >/dev/null 2>&1 || missing+=(dunst)
    command -v dbus-run-session >/dev/null 2>&1 || missing+=(dbus-daemon)
    command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
    command -v gnome-keyring-daemon >/dev/null 2>&1 || missing+=(gnome-keyring)
    # The team queue's tests start a PostgreSQL server of their own.
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

# The UI: its packages exactly as locked, then the type check and the bundle the app embeds.
build_ui() {
  log "building the UI (ui/)"
  (cd ui && { [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] \
      || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build)
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      log "installing the Rust toolchain (rustup)"
      curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
      export PATH="$HOME/.cargo/bin:$PATH"
    fi
  fi
}

# Sample videos made with ffmpeg's generators: different looks, scene cuts, sound and silence.
make_samples() {
  local dir=$1
  mkdir -p "$dir"
  local enc=(-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -b:a 96k -loglevel error -y)
  [ -s "$dir/city lights.mp4" ] || ffmpeg -f lavfi -i "testsrc2=duration=12:size=640x360:rate=25" \
    -f lavfi -i "sine=frequency=440:duration=12" -shortest "${enc[@]}" "$dir/city lights.mp4"
  [ -s "$dir/test pattern.mp4" ] || ffmpeg -f lavfi -i "smptebars=duration=8:size=640x360:rate=25" \
    -f lavfi -i "anullsrc=r=44100:cl=stereo" -t 8 "${enc[@]}" "$dir/test pattern.mp4"
  [ -s "$dir/deep dive.mp4" ] || ffmpeg -f lavfi -i "mandelbrot=size=640x360:rate=25" \
    -f lavfi -i "sine=frequency=220:duration=10" -t 10 "${enc[@]}" "$dir/deep dive.mp4"
  [ -s "$dir/night sea.mp4" ] || ffmpeg -f lavfi -i "color=c=navy:size=640x360:rate=25:duration=6" \
    -f lavfi -i "color=c=orange:size=640x360:rate=25:duration=6" \
    -f lavfi -i "life=size=640x360:rate=25:mold=10:ratio=0.5:death_color=#101040:life_color=#e0e0ff" \
    -f lavfi -i "sine=frequency=330:duration=6" -f lavfi -i "anullsrc=r=44100:cl=stereo" \
    -filter_complex "[2:v]trim=duration=6,setpts=PTS-STARTPTS[l];[0:v][1:v][l]concat=n=3:v=1:a=0[v];[3:a][4:a]concat=n=2:v=0:a=1,atrim=duration=18[a]" \
    -map "[v]" -map "[a]" "${enc[@]}" "$dir/night sea.mp4"
}

case "${1:-app}" in
  app)
    if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
      echo "No display here to open a window on; ./run.sh demo tells the sample videos' stories without one." >&2
      exit 1
    fi
    ensure_system_packages window
    ensure_rust
    build_ui
    log "building the app (release)"
    cargo build --release --locked -p storyteller-desktop
    demo="$root/target/demo"
    log "making sample videos in $demo/videos"
    make_samples "$demo/videos"
    log "opening Storyteller (state in $demo/app-home); the samples are being told"
    exec "$target/release/storyteller-desktop" --home "$demo/app-home" "$demo/videos"
    ;;
  demo)
    ensure_system_packages
    ensure_rust
    log "building the storyteller command (release)"
    cargo build --release --locked -p storyteller-cli
    demo="$root/target/demo"
    log "making sample videos in $demo/videos"
    make_samples "$demo/videos"
    export STORYTELLER_HOME="$demo/home"
    log "telling their stories, offline (state in $STORYTELLER_HOME)"
    "$target/release/storyteller" process "$demo/videos" --concurrency 3
    "$target/release/storyteller" export --format md --out "$demo/stories.md"
    "$target/release/storyteller" stats
    log "done: every story is in $demo/stories.md"
    ;;
  test)
    ensure_system_packages test
    ensure_rust
    log "cargo fmt --check"
    cargo fmt --all --check
    build_ui
    log "UI: lint and unit tests"
    (cd ui && npm run --silent lint && npm run --silent test)
    log "cargo clippy"
    cargo clippy --locked --workspace --all-targets -- -D warnings
    log "cargo doc"
    RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps
    log "building every binary once (the end-to-end tests run them)"
    cargo build --locked --workspace --all-targets
    if ! command -v tauri-driver >/dev/null 2>&1; then
      log "installing tauri-driver (WebDriver for the window)"
      cargo install --locked --quiet tauri-driver --version 2.1.0
    fi
    log "unit, integration and end-to-end tests (the window in a virtual display)"
    xvfb-run -a -s "-screen 0 1280x800x24" \
      dbus-run-session -- cargo test --locked --workspace --no-fail-fast
    log "benchmark smoke runs (figures are not checked here; ./run.sh bench prints the real ones)"
    BENCH_QUICK=1 cargo bench --locked -p storyteller-engine --profile dev --bench engine
    BENCH_QUICK=1 cargo bench --locked -p storyteller-engine --profile dev --bench gemini
    BENCH_QUICK=1 cargo bench --locked -p storyteller-engine --profile dev --bench watch
    BENCH_QUICK=1 cargo bench --locked -p storyteller-engine --profile dev --bench queue
    BENCH_QUICK=1 xvfb-run -a -s "-screen 0 1280x800x24" \
      cargo bench --locked -p storyteller-e2e --profile dev --bench window
    ;;
  bench)
    ensure_system_packages test
    ensure_rust
    build_ui
    cargo build --release --locked -p storyteller-cli -p storyteller-desktop --bins --example empty_window
    cargo bench --locked -p storyteller-engine --bench engine
    cargo bench --locked -p storyteller-engine --bench offline
    cargo bench --locked -p storyteller-engine --bench gemini
    cargo bench --locked -p storyteller-engine --bench watch
    log "the window's figures (release build, in a virtual display)"
    STORYTELLER_APP_PROFILE=release xvfb-run -a -s "-screen 0 1280x800x24" \
      cargo bench --locked -p storyteller-e2e --bench window
    ;;
  *)
    echo "usage: ./run.sh [app] | demo | test | bench" >&2
    exit 2
    ;;
esac
