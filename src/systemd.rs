//! systemd integration, without linking libsystemd: the sd_notify protocol is one datagram per
//! message on the Unix socket named by `NOTIFY_SOCKET`. `serve` sends `READY=1` once it
//! listens (so `Type=notify` units start dependants only then), `WATCHDOG=1` at half the
//! `WatchdogSec=` interval while the database answers (a wedged server stops pinging and is
//! restarted), and `STOPPING=1` on shutdown. Outside systemd nothing is sent.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

pub struct Notifier {
    socket: UnixDatagram,
    target: SocketAddr,
}

impl Notifier {
    /// The notifier systemd asked for, if any. A malformed `NOTIFY_SOCKET` is logged and
    /// ignored: the service still runs, systemd will report that readiness never came.
    pub fn from_env() -> Option<Self> {
        let path = std::env::var_os("NOTIFY_SOCKET")?;
        let path = path.to_string_lossy().into_owned();
        let target = match path.strip_prefix('@') {
            // Linux abstract namespace socket.
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(name.as_bytes())
            }
            None => SocketAddr::from_pathname(&path),
        };
        let made = target.and_then(|target| Ok((UnixDatagram::unbound()?, target)));
        match made {
            Ok((socket, target)) => Some(Self { socket, target }),
            Err(e) => {
                tracing::warn!(error = %e, "NOTIFY_SOCKET is unusable; not notifying systemd");
                None
            }
        }
    }

    /// Sends one notification (`READY=1`, `WATCHDOG=1`, `STOPPING=1`, `STATUS=…`).
    pub fn notify(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.target) {
            tracing::warn!(error = %e, state, "cannot notify systemd");
        }
    }
}

/// How often to ping the watchdog: half the interval systemd set, when it set one for this
/// process (`WATCHDOG_PID`, when present, must be ours).
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
