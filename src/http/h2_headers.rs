//! The HTTP/2 header deadline: a connection whose client leaves a header block unfinished for
//! longer than `server.header_read_timeout_secs` is closed, as an HTTP/1.1 connection is when
//! its request headers take that long.
//!
//! Why it is needed: HTTP/2 sends a request's headers as a HEADERS frame and, if they do not
//! fit, CONTINUATION frames, the last one flagged END_HEADERS (RFC 9113 §6.2, §6.10). Until
//! then nothing else may be sent on the connection, and the server must hold the partial block.
//! h2 bounds the size of that block and the number of CONTINUATION frames (the 2024
//! CONTINUATION-flood advisories), but not the time: a client that sends HEADERS without
//! END_HEADERS and then a byte now and then keeps its connection, past the idle timeout, for
//! ever. hyper offers no header timeout for HTTP/2, so this module watches the frames go by.
//!
//! The same deadline covers the start of a connection: the preface and the first request's
//! headers must arrive within it (a client that opens a connection and only sends pings does
//! not keep it).
//!
//! It only reads the nine-byte frame headers of what the client sends, after TLS; it never
//! decodes a header block nor changes a byte, and leaves every protocol error to h2.

use tokio::sync::watch;
use tokio::time::Instant;

/// The client connection preface (RFC 9113 §3.4), which precedes the first frame.
const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_CONTINUATION: u8 = 0x9;
const FLAG_END_HEADERS: u8 = 0x4;

#[derive(Debug, Clone, Copy)]
enum Position {
    /// Within the preface; this many of its bytes seen.
    Preface(usize),
    /// Within a frame header; the bytes seen so far.
    FrameHeader([u8; FRAME_HEADER_LEN], usize),
    /// Within a frame's payload: bytes left, and whether the frame ends a header block.
    Payload { left: u32, ends_block: bool },
}

/// Follows the client's byte stream frame by frame and knows since when a header block has
/// been open, if one is.
#[derive(Debug)]
pub struct FrameScanner {
    position: Position,
    /// When the open header block started (or the connection, before the first request).
    open_since: Option<Instant>,
}

impl FrameScanner {
    /// A scanner for a new connection: until the first request's headers are complete, the
    /// connection counts as one open header block, opened at `started`.
    pub fn new(started: Instant) -> Self {
        Self {
            position: Position::Preface(0),
            open_since: Some(started),
        }
    }

    /// Since when a header block has been open, if one is.
    pub fn open_since(&self) -> Option<Instant> {
        self.open_since
    }

    /// Takes in bytes the client sent, which arrived at `now`.
    pub fn feed(&mut self, mut bytes: &[u8], now: Instant) {
        while !bytes.is_empty() {
            match &mut self.position {
                Position::Preface(seen) => {
                    let take = (PREFACE_LEN - *seen).min(bytes.len());
                    *seen += take;
                    bytes = &bytes[take..];
                    if *seen == PREFACE_LEN {
                        self.position = Position::FrameHeader([0; FRAME_HEADER_LEN], 0);
                    }
                }
                Position::FrameHeader(header, seen) => {
                    let take = (FRAME_HEADER_LEN - *seen).min(bytes.len());
                    header[*seen..*seen + take].copy_from_slice(&bytes[..take]);
                    *seen += take;
                    bytes = &bytes[take..];
                    // The type is the fourth byte: a block opens as soon as it is known to be
                    // HEADERS, so that trickling the rest of the frame header counts too.
                    if *seen > 3 && header[3] == FRAME_HEADERS && self.open_since.is_none() {
                        self.open_since = Some(now);
                    }
                    if *seen == FRAME_HEADER_LEN {
                        let header = *header;
                        let left = u32::from_be_bytes([0, header[0], header[1], header[2]]);
                        let kind = header[3];
                        let ends_block = (kind == FRAME_HEADERS || kind == FRAME_CONTINUATION)
                            && header[4] & FLAG_END_HEADERS != 0;
                        self.position = Position::Payload { left, ends_block };
                    }
                }
                Position::Payload { left, .. } => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= u32::try_from(take).unwrap_or(*left);
                    bytes = &bytes[take..];
                }
            }
            // A frame complete (an empty one as soon as its header is): the next one starts.
            if let Position::Payload {
                left: 0,
                ends_block,
            } = self.position
            {
                if ends_block {
                    self.open_since = None;
                }
                self.position = Position::FrameHeader([0; FRAME_HEADER_LEN], 0);
            }
        }
    }
}

/// Resolves once the header block that `open_since` reports has been open for `limit`. The
/// sender side is updated by the connection's reader after each read.
pub async fn block_open_for(
    open_since: &mut watch::Receiver<Option<Instant>>,
    limit: std::time::Duration,
) {
    loop {
        let opened = *open_since.borrow_and_update();
        match opened {
            Some(opened) => {
                tokio::time::sleep_until(opened + limit).await;
                // Still the same block: it took too long. Otherwise look again.
                if *open_since.borrow() == Some(opened) {
                    return;
                }
            }
            None => {
                if open_since.changed().await.is_err() {
                    // The reader is gone, and with it the connection.
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut f = vec![len[1], len[2], len[3], kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn the_connection_counts_as_open_until_the_first_request_headers_end() {
        let t0 = Instant::now();
        let mut s = FrameScanner::new(t0);
        s.feed(PREFACE, t0);
        s.feed(&frame(0x4, 0, 0, &[]), t0); // SETTINGS
        s.feed(&frame(0x6, 0, 0, &[0; 8]), t0); // PING
        assert_eq!(s.open_since(), Some(t0), "pings are not a request");
        s.feed(
            &frame(
                FRAME_HEADERS,
                FLAG_END_HEADERS | 0x1,
                1,
                &[0x82, 0x87, 0x84],
            ),
            t0,
        );
        assert_eq!(s.open_since(), None);
    }

    #[test]
    fn a_block_stays_open_through_continuations_until_end_headers_byte_by_byte() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let t2 = t0 + Duration::from_secs(2);
        let mut s = FrameScanner::new(t0);
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, &[0x82]));
        s.feed(&bytes, t0);
        assert_eq!(s.open_since(), None);

        // A large DATA frame is no header block, even one whose bytes look like one.
        s.feed(
            &frame(0x0, 0, 1, &frame(FRAME_HEADERS, 0, 3, &[1, 2, 3])),
            t1,
        );
        assert_eq!(s.open_since(), None);

        let mut stuck = frame(FRAME_HEADERS, 0, 3, &[0x82, 0x87]);
        stuck.extend(frame(FRAME_CONTINUATION, 0, 3, &[0x84]));
        for (i, b) in stuck.iter().enumerate() {
            s.feed(std::slice::from_ref(b), t1);
            // Open from the frame type on (the fourth byte), not before.
            assert_eq!(s.open_since().is_some(), i >= 3, "after byte {i}");
        }
        assert_eq!(s.open_since(), Some(t1));
        // A continuation without END_HEADERS, then one with it, split across reads.
        let end = frame(FRAME_CONTINUATION, FLAG_END_HEADERS, 3, &[0x41, 0x01, 0x61]);
        s.feed(&end[..10], t2);
        assert_eq!(
            s.open_since(),
            Some(t1),
            "the last frame is not complete yet"
        );
        s.feed(&end[10..], t2);
        assert_eq!(s.open_since(), None);
        // An empty HEADERS frame with END_HEADERS closes at once.
        s.feed(&frame(FRAME_HEADERS, FLAG_END_HEADERS, 5, &[]), t2);
        assert_eq!(s.open_since(), None);
    }
}
