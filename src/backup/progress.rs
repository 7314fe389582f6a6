//! Progress of a long backup or restore: a bar on stderr when it is a terminal, and otherwise
//! (systemd, cron, a pipe) one plain line per quarter, so the journal shows the job moving
//! without a line per megabyte.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Below this size a non-terminal gets no progress lines.
const QUIET_BELOW: u64 = 64 * 1024 * 1024;

pub struct Progress {
    label: &'static str,
    total: AtomicU64,
    done: AtomicU64,
    /// Quarters already reported on a non-terminal.
    reported: AtomicU64,
    bar: Option<ProgressBar>,
    quiet: bool,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn for_stderr(label: &'static str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{msg:>8} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label);
            bar
        });
        Self {
            label,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            bar,
            quiet: false,
        }
    }

    /// Reports nothing (library callers and tests).
    pub fn hidden() -> Self {
        Self {
            label: "",
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            bar: None,
            quiet: true,
        }
    }

    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
        }
    }

    pub fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        if self.quiet {
            return;
        }
        let total = self.total.load(Ordering::Relaxed);
        // Small jobs finish before anyone reads the journal: no lines for them.
        if total < QUIET_BELOW {
            return;
        }
        let quarter = (done.min(total) * 4) / total;
        let before = self.reported.fetch_max(quarter, Ordering::Relaxed);
        if quarter > before && quarter < 4 {
            eprintln!(
                "{}: {}% ({} of {} MiB)",
                self.label,
                quarter * 25,
                done >> 20,
                total >> 20
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
