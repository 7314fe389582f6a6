//! Readers and writers that hash and count what passes through them, so that every byte of a
//! backup is hashed on its single way through memory instead of being read twice.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::progress::Progress;

/// Counts and hashes the bytes written to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The writer, the byte count and the SHA-256 (hex) of everything written.
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.count, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let written = buf.get(..n).unwrap_or(buf);
        self.hasher.update(written);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts and hashes the bytes read from `inner`, and reports them to a progress display.
pub struct HashingReader<'p, R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    progress: Option<&'p Progress>,
}

impl<'p, R: Read> HashingReader<'p, R> {
    pub fn new(inner: R, progress: Option<&'p Progress>) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
            progress,
        }
    }

    pub fn finish(self) -> (u64, String) {
        (self.count, hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let read = buf.get(..n).unwrap_or(buf);
        self.hasher.update(read);
        self.count += n as u64;
        if let Some(p) = self.progress {
            p.advance(n as u64);
        }
        Ok(n)
    }
}

/// SHA-256 (hex) and size of a file, streamed.
pub fn hash_file(path: &std::path::Path, progress: Option<&Progress>) -> io::Result<(u64, String)> {
    let file = std::fs::File::open(path)?;
    let mut reader = HashingReader::new(io::BufReader::with_capacity(1 << 20, file), progress);
    io::copy(&mut reader, &mut io::sink())?;
    Ok(reader.finish())
}
