//! Live forwarding of the audit log to a SIEM as RFC 5424 syslog (`[audit.syslog]`).
//!
//! A background task reads committed entries after the last one forwarded, sends them in
//! sequence order, and records its progress per destination in `audit_forwarding`. It never
//! touches the request path: appends do not wait for it, and a collector that is down only
//! makes it retry, with a capped exponential backoff, then catch up from where it was.
//!
//! Delivery is at least once. An entry counts as delivered when it was written (and flushed)
//! and the connection was still open one poll interval later: a collector that dies with
//! frames unread resets the connection, and those frames are sent again rather than lost.
//! What TCP cannot tell — a collector that accepted bytes, kept them unread for longer, then
//! lost them — only an application-level acknowledgement would, which syslog does not have.
//! Duplicates are possible after a reconnection; each message carries its `seq` to spot them.
//!
//! New entries are looked for every `poll_interval_ms` (1 s by default), which bounds the
//! latency when the collector is up.

pub mod format;
pub mod progress;
pub mod settings;
pub mod transport;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub use settings::{SyslogConfig, Transport};

use crate::config::ConfigError;
use crate::db::{Database, DbError};
use crate::http::metrics::Metrics;
use format::MessageFormat;
use progress::Session;
use transport::{Endpoint, Link, LinkError};

/// Entries read and sent at a time.
const BATCH: u32 = 200;

/// How often a node that does not hold the forwarding lock (PostgreSQL) tries to take it.
const STANDBY_RETRY: Duration = Duration::from_secs(5);

/// First wait after a failure; doubled at each further failure up to `retry_max_secs`.
const FIRST_RETRY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// A configured destination, ready to send.
#[derive(Debug)]
pub struct Forwarder {
    destination: String,
    endpoint: Endpoint,
    format: MessageFormat,
    poll: Duration,
    retry_max: Duration,
    timeout: Duration,
}

impl Forwarder {
    /// Resolves the section; for TLS this reads and checks `ca_file`.
    pub fn from_config(config: &SyslogConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            destination: config.destination(),
            endpoint: Endpoint::from_config(config)?,
            format: MessageFormat {
                facility: config.facility_code()?,
                hostname: config.effective_hostname(),
                app_name: config.app_name.clone(),
                procid: std::process::id().to_string(),
                max_bytes: config.max_message_bytes,
            },
            poll: Duration::from_millis(config.poll_interval_ms),
            retry_max: Duration::from_secs(config.retry_max_secs),
            timeout: Duration::from_secs(config.timeout_secs),
        })
    }

    /// The destination's name in `audit_forwarding`, e.g. `tls://siem.example:6514`.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Connects (and completes the TLS handshake) without sending anything, for
    /// `check-config`.
    pub async fn probe(&self) -> Result<(), LinkError> {
        self.endpoint.connect(self.timeout).await.map(drop)
    }

    /// Forwards until the task is aborted.
    pub async fn run(self, db: Database, metrics: Metrics) {
        let mut state = State::default();
        let mut failures: u32 = 0;
        loop {
            let pause = match self.step(&db, &mut state, &metrics).await {
                Ok(next) => {
                    if failures > 0 {
                        tracing::info!(destination = %self.destination, failures,
                            "audit forwarding resumed");
                        failures = 0;
                    }
                    match next {
                        Next::More => Duration::ZERO,
                        Next::Wait => self.poll,
                        Next::Standby => STANDBY_RETRY.max(self.poll),
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    metrics.count_audit_forward_failure();
                    let pause = backoff(failures, self.retry_max);
                    // The first failure of an outage is worth a warning, and so is a long
                    // outage now and then (every 10th attempt, every 10 minutes once the wait
                    // reaches its default cap); the retries in between are not.
                    if failures == 1 || failures % 10 == 0 {
                        tracing::warn!(destination = %self.destination, error = %e, failures,
                            retry_in_secs = pause.as_secs_f64(),
                            "audit forwarding failed; entries wait in the log");
                    } else {
                        tracing::debug!(destination = %self.destination, error = %e, failures,
                            "audit forwarding still failing");
                    }
                    state.reset().await;
                    pause
                }
            };
            if pause.is_zero() {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// One round: take the lock if needed, confirm what the collector has had time to read,
    /// send the next batch.
    async fn step(
        &self,
        db: &Database,
        state: &mut State,
        metrics: &Metrics,
    ) -> Result<Next, ForwardError> {
        let session = match &mut state.session {
            Some(session) => session,
            empty => {
                let Some(mut session) = Session::open(db).await? else {
                    return Ok(Next::Standby);
                };
                // Another node may have forwarded while this one was not: start from the
                // table, not from memory.
                state.confirmed = session.last_seq(&self.destination).await?;
                state.written = state.confirmed;
                state.unconfirmed.clear();
                empty.insert(session)
            }
        };
        let link = match &mut state.link {
            Some(link) => {
                if !link.is_open().await {
                    return Err(LinkError::Closed.into());
                }
                link
            }
            empty => empty.insert(self.endpoint.connect(self.timeout).await?),
        };

        let now = Instant::now();
        let mut delivered = None;
        while let Some(&(seq, written_at)) = state.unconfirmed.front() {
            if now.duration_since(written_at) < self.poll {
                break;
            }
            delivered = Some(seq);
            state.unconfirmed.pop_front();
        }
        if let Some(seq) = delivered {
            session.set_last_seq(&self.destination, seq).await?;
            metrics.count_audit_forwarded(seq.saturating_sub(state.confirmed));
            state.confirmed = seq;
        }

        let entries = session.entries_after(state.written, BATCH).await?;
        let newest = session.max_seq().await?;
        metrics.set_audit_forward_backlog(newest.saturating_sub(state.confirmed));
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Ok(Next::Wait);
        };
        let messages: Vec<Vec<u8>> = entries.iter().map(|e| self.format.render(e)).collect();
        link.send(&messages, self.timeout).await?;
        state.written = last;
        state.unconfirmed.push_back((last, Instant::now()));
        Ok(if entries.len() == BATCH as usize {
            Next::More
        } else {
            Next::Wait
        })
    }
}

/// What the forwarder holds between rounds.
#[derive(Default)]
struct State {
    session: Option<Session>,
    link: Option<Link>,
    /// Last sequence number recorded as delivered.
    confirmed: u64,
    /// Last sequence number written to the current connection.
    written: u64,
    /// Batches written but not yet confirmed: (last seq of the batch, when it was written).
    unconfirmed: VecDeque<(u64, Instant)>,
}

impl State {
    /// After any failure: drop the connection, forget what it had not confirmed (it will be
    /// sent again), and end the database session, which on PostgreSQL releases the lock so
    /// another node can try.
    async fn reset(&mut self) {
        self.link = None;
        self.unconfirmed.clear();
        self.written = self.confirmed;
        if let Some(session) = self.session.take() {
            session.close().await;
        }
    }
}

enum Next {
    /// A full batch went out: there may be more right away.
    More,
    /// Caught up: look again after the poll interval.
    Wait,
    /// Another node forwards (PostgreSQL).
    Standby,
}

/// 1 s, 2 s, 4 s… up to `max`.
fn backoff(failures: u32, max: Duration) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let max = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX, max), max);
        assert_eq!(backoff(3, Duration::from_secs(1)), Duration::from_secs(1));
    }
}
