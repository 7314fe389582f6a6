//! The time the news rules see. Publication, expiry, deadlines and receipts all ask this clock
//! rather than the system, so that tests can move time forward and check that a scheduled item
//! appears and an expired one vanishes without sleeping. In production it is the system clock.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch: the system time, or a time set by a test.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// 0 means "the system time"; anything else is a frozen time.
    frozen: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> i64 {
        match self.frozen.load(Ordering::Relaxed) {
            0 => crate::db::now(),
            frozen => frozen,
        }
    }

    /// Freezes the clock at `unix_secs` (tests only need this; nothing in the server calls it).
    pub fn set(&self, unix_secs: i64) {
        self.frozen.store(unix_secs, Ordering::Relaxed);
    }

    /// Back to the system time.
    pub fn release(&self) {
        self.frozen.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frozen_clock_stays_put_until_released() {
        let clock = Clock::default();
        assert!(clock.now() > 1_700_000_000);
        clock.set(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.release();
        assert!(clock.now() > 1_700_000_000);
    }
}
