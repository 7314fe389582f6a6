//! Stages on separate threads joined by bounded channels of 1 MiB blocks, so that hashing the
//! members, encrypting, and hashing and writing the ciphertext run on different cores instead of
//! one after the other. At most `DEPTH` blocks wait in each channel: memory stays bounded
//! whatever the archive's size.
//!
//! A stage that fails drops its end of the channels; its neighbours then see a closed channel
//! (a writer gets `BrokenPipe`, a reader an early end) and stop, and the first real error is
//! the one reported.

use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

pub const BLOCK: usize = 1 << 20;
const DEPTH: usize = 4;

pub fn channel() -> (BlockWriter, BlockReader) {
    let (tx, rx) = sync_channel(DEPTH);
    // Blocks travel back empty to be filled again: no allocation (and no fresh pages for the
    // kernel to zero) per MiB.
    let (back_tx, back_rx) = sync_channel(DEPTH + 2);
    (
        BlockWriter {
            buf: Vec::with_capacity(BLOCK),
            tx,
            spare: back_rx,
        },
        BlockReader {
            rx,
            back: back_tx,
            block: Vec::new(),
            pos: 0,
        },
    )
}

/// The sending end: gathers writes into blocks.
pub struct BlockWriter {
    buf: Vec<u8>,
    tx: SyncSender<Vec<u8>>,
    spare: Receiver<Vec<u8>>,
}

impl BlockWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = match self.spare.try_recv() {
            Ok(mut spare) => {
                spare.clear();
                spare
            }
            Err(_) => Vec::with_capacity(BLOCK),
        };
        let block = std::mem::replace(&mut self.buf, next);
        self.tx
            .send(block)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the next stage stopped"))
    }

    /// Sends what is left; the reader then sees the end of the stream.
    pub fn finish(mut self) -> io::Result<()> {
        self.send()
    }
}

impl Write for BlockWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = BLOCK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(data.get(..n).unwrap_or(data));
        if self.buf.len() >= BLOCK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The receiving end: reads the blocks as one stream, ending when the writer is finished or
/// dropped. A dropped writer (a failed stage) must be told apart by its stage's own error.
pub struct BlockReader {
    rx: Receiver<Vec<u8>>,
    back: SyncSender<Vec<u8>>,
    block: Vec<u8>,
    pos: usize,
}

impl Read for BlockReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.block.len() {
            match self.rx.recv() {
                Ok(block) => {
                    let used = std::mem::replace(&mut self.block, block);
                    let _ = self.back.try_send(used);
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let rest = self.block.get(self.pos..).unwrap_or_default();
        let n = rest.len().min(out.len());
        out.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(rest.get(..n).unwrap_or_default());
        self.pos += n;
        Ok(n)
    }
}

/// Joins a stage's thread, turning a panic into an error.
pub fn join<T>(handle: std::thread::ScopedJoinHandle<'_, io::Result<T>>) -> io::Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("a backup stage panicked")))
}

impl BlockReader {
    /// Hands each remaining block to `f` as it arrives (for a stage that consumes whole blocks),
    /// then sends it back to be reused.
    pub fn for_each_block(self, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        for block in self.rx.iter() {
            f(&block)?;
            let _ = self.back.try_send(block);
        }
        Ok(())
    }
}

/// Whether an error is only the echo of another stage's failure.
pub fn is_echo(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}
