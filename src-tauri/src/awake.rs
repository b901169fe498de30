//! Keeping the computer awake while videos are being told: a sleep inhibitor from the login
//! manager (systemd-logind's `Inhibit`, over the system D-Bus), held while the queue has running
//! jobs and the setting is on, and let go as soon as it has none. Where there is no login
//! manager (a container, another OS) the app says so once in its log and goes on.

use zbus::zvariant::OwnedFd;

/// A held inhibitor, released on drop (the login manager watches the descriptor).
pub struct Inhibitor {
    _fd: OwnedFd,
}

/// Whether the inhibitor should be held, and holding or letting it go.
#[derive(Default)]
pub struct KeepAwake {
    held: Option<Inhibitor>,
    unavailable: bool,
}

impl KeepAwake {
    /// Holds the inhibitor when `want`, else lets it go.
    pub async fn set(&mut self, want: bool) {
        if !want {
            if self.held.take().is_some() {
                tracing::debug!("the computer may sleep again");
            }
            return;
        }
        if self.held.is_some() || self.unavailable {
            return;
        }
        match inhibit().await {
            Ok(fd) => {
                tracing::debug!("keeping the computer awake while videos are told");
                self.held = Some(Inhibitor { _fd: fd });
            }
            Err(error) => {
                self.unavailable = true;
                tracing::info!(%error, "the computer cannot be kept awake here (no login manager)");
            }
        }
    }

    /// Whether an inhibitor is held now.
    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }
}

async fn inhibit() -> zbus::Result<OwnedFd> {
    let connection = zbus::Connection::system().await?;
    let reply = connection
        .call_method(
            Some("org.freedesktop.login1"),
            "/org/freedesktop/login1",
            Some("org.freedesktop.login1.Manager"),
            "Inhibit",
            &(
                "sleep:idle",
                "Storyteller",
                "Videos are being turned into stories",
                "block",
            ),
        )
        .await?;
    reply.body().deserialize::<OwnedFd>()
}
