//! Reading an archive back: check the envelope against the file (size, SHA-256) without
//! decrypting, then decrypt and check every member against the signed manifest inside, which
//! must equal the one beside. Shared by `verify` and `restore`, so a restore checks exactly what
//! a verification does before it touches anything.
//!
//! Member names come from the archive, which an attacker may have crafted: only plain relative
//! paths under the known top-level folders are accepted, and only regular files are written,
//! each created new inside the private work directory (never following a link).

use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use secrecy::ExposeSecret;

use super::create::{CONFIG_MEMBER, FILES_PREFIX, INSTANCE_ID_MEMBER, SIGNING_KEY_MEMBER};
use super::hashing::{HashingReader, HashingWriter, hash_file};
use super::manifest::{Envelope, MANIFEST_MEMBER, MAX_MANIFEST_BYTES, Member, SignedManifest};
use super::pipeline;
use super::progress::Progress;
use super::{BackupError, envelope_path};

/// How much of the archive [`check_envelope`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Hash the whole archive now.
    Hash,
    /// Leave the hash to [`unpack`], which computes it while decrypting (one pass instead of two).
    Later,
}

/// Reads the signed manifest beside `archive` and checks it: instance, signature, size, then
/// (with [`Content::Hash`]) the archive's SHA-256, streamed. Nothing is decrypted.
pub fn check_envelope(
    archive: &Path,
    key: &[u8; 32],
    expected_instance: Option<&str>,
    content: Content,
    progress: &Progress,
) -> Result<Envelope, BackupError> {
    let envelope = Envelope::read(&envelope_path(archive))?;
    if let Some(ours) = expected_instance {
        if envelope.manifest.instance_id != ours {
            return Err(BackupError::Refused(format!(
                "the archive is from another instance ({}); this data directory belongs to \
                 instance {ours}",
                envelope.manifest.instance_id
            )));
        }
    }
    envelope.verify(key)?;
    let actual = std::fs::metadata(archive)
        .map_err(BackupError::io(archive))?
        .len();
    let expected = envelope.archive.size;
    if actual < expected {
        return Err(BackupError::Refused(format!(
            "the archive is truncated: {actual} bytes, the signed manifest says {expected}"
        )));
    }
    if actual > expected {
        return Err(BackupError::Refused(format!(
            "the archive is longer than the signed manifest says ({actual} bytes, not \
             {expected}): something was appended"
        )));
    }
    if content == Content::Hash {
        progress.set_total(actual);
        let (_, sha256) = hash_file(archive, Some(progress)).map_err(BackupError::io(archive))?;
        check_hash(&sha256, &envelope)?;
    }
    Ok(envelope)
}

fn check_hash(sha256: &str, envelope: &Envelope) -> Result<(), BackupError> {
    if sha256 != envelope.archive.sha256 {
        return Err(BackupError::Refused(format!(
            "the archive's SHA-256 is {sha256}, the signed manifest says {}: its content was \
             changed or damaged",
            envelope.archive.sha256
        )));
    }
    Ok(())
}

/// Reads an age identity file (as `age-keygen` writes it): X25519 identities only, one per
/// line, `#` comments. The key itself is never echoed in an error.
pub fn read_identities(path: &Path) -> Result<Vec<age::x25519::Identity>, BackupError> {
    let meta = std::fs::metadata(path).map_err(BackupError::io(path))?;
    if meta.len() > 1024 * 1024 {
        return Err(BackupError::Config(format!(
            "{}: too large for an age identity file",
            path.display()
        )));
    }
    let text =
        secrecy::SecretString::from(std::fs::read_to_string(path).map_err(BackupError::io(path))?);
    let mut identities = Vec::new();
    for (n, line) in text.expose_secret().lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let identity = line.parse::<age::x25519::Identity>().map_err(|_| {
            BackupError::Config(format!(
                "{} line {}: not an age X25519 identity (AGE-SECRET-KEY-1…); passphrase-protected \
                 and plugin identities are not supported",
                path.display(),
                n + 1
            ))
        })?;
        identities.push(identity);
    }
    if identities.is_empty() {
        return Err(BackupError::Config(format!(
            "{}: no age identity in this file",
            path.display()
        )));
    }
    Ok(identities)
}

/// What to keep of the members while checking them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Only the database (to check it opens); the rest is hashed and dropped.
    Database,
    Everything,
}

/// Whether `name` is an acceptable member name, and the relative path it maps to.
fn member_path(name: &str) -> Option<PathBuf> {
    let known = name.starts_with("database/")
        || name.starts_with(FILES_PREFIX)
        || name == CONFIG_MEMBER
        || name == INSTANCE_ID_MEMBER
        || name == SIGNING_KEY_MEMBER;
    if !known {
        return None;
    }
    let path = Path::new(name);
    path.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| path.to_path_buf())
}

/// Decrypts `archive` and checks every member against the signed manifest inside, and that
/// manifest against `envelope` and `key`; the archive's SHA-256 is computed on the way and
/// checked against the envelope's. Members are written under `into` (which must be a fresh
/// private directory) as `keep` says.
pub fn unpack(
    archive: &Path,
    envelope: &Envelope,
    key: &[u8; 32],
    identities: &[age::x25519::Identity],
    into: &Path,
    keep: Keep,
    progress: &Progress,
) -> Result<SignedManifest, BackupError> {
    match unpack_hashed(archive, envelope, identities, into, keep, progress) {
        Ok((signed, sha256)) => {
            check_hash(&sha256, envelope)?;
            signed.verify(key)?;
            check_manifests(&signed, envelope)?;
            Ok(signed)
        }
        // A changed byte shows first as a decryption failure; name the cause the operator can
        // act on when the hash says the file itself differs from what was signed.
        Err(e) => match hash_file(archive, None) {
            Ok((_, sha256)) if sha256 != envelope.archive.sha256 => {
                check_hash(&sha256, envelope).and(Err(e))
            }
            _ => Err(e),
        },
    }
}

fn check_manifests(signed: &SignedManifest, envelope: &Envelope) -> Result<(), BackupError> {
    if signed.manifest != envelope.manifest {
        return Err(BackupError::Refused(
            "the manifest inside the archive differs from the signed manifest beside it: the two \
             files do not belong together"
                .into(),
        ));
    }
    Ok(())
}

fn damaged(e: io::Error) -> BackupError {
    BackupError::Refused(format!(
        "the archive does not decrypt or unpack cleanly ({e}): it is damaged or truncated"
    ))
}

/// Three stages (see `pipeline`): one thread reads and hashes the ciphertext, one decrypts,
/// and this one unpacks and checks the members. Returns the manifest and the ciphertext's hash.
fn unpack_hashed(
    archive: &Path,
    envelope: &Envelope,
    identities: &[age::x25519::Identity],
    into: &Path,
    keep: Keep,
    progress: &Progress,
) -> Result<(SignedManifest, String), BackupError> {
    let mut file = std::fs::File::open(archive).map_err(BackupError::io(archive))?;
    progress.set_total(file.metadata().map(|m| m.len()).unwrap_or(0));
    let (cipher_tx, cipher_rx) = pipeline::channel();
    let (plain_tx, plain_rx) = pipeline::channel();
    let (members, read, decrypted) = std::thread::scope(|scope| {
        let read = scope.spawn(move || -> io::Result<(u64, String)> {
            let mut out = HashingWriter::new(cipher_tx);
            let mut buf = vec![0u8; pipeline::BLOCK];
            loop {
                let n = file.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                out.write_all(buf.get(..n).unwrap_or_default())?;
                progress.advance(n as u64);
            }
            let (tx, count, sha256) = out.finish();
            tx.finish()?;
            Ok((count, sha256))
        });
        let decrypt = scope.spawn(move || decrypt_stage(cipher_rx, plain_tx, identities));
        let members = read_members(plain_rx, into, keep);
        (
            members,
            pipeline::join(read),
            decrypt
                .join()
                .unwrap_or_else(|_| Err(BackupError::Refused("the decryption stopped".into()))),
        )
    });
    // The first real failure, from the start of the line: a stage that failed only because its
    // neighbour stopped reports a broken pipe or an early end.
    let (count, sha256) = match read {
        Ok(r) => r,
        Err(e) if pipeline::is_echo(&e) => (0, String::new()),
        Err(e) => return Err(BackupError::io(archive)(e)),
    };
    match decrypted {
        Err(BackupError::Io { source, .. }) if pipeline::is_echo(&source) => {}
        Err(e) => return Err(e),
        Ok(()) => {}
    }
    let (signed, seen) = members?;
    if count != envelope.archive.size {
        return Err(BackupError::Refused(format!(
            "the age stream ends after {count} bytes, the file has {}",
            envelope.archive.size
        )));
    }
    let signed = signed.ok_or_else(|| {
        BackupError::Refused(
            "the archive has no manifest: it is truncated or not a Beffroi backup".into(),
        )
    })?;
    compare_members(&signed.manifest.members, &seen)?;
    Ok((signed, sha256))
}

fn decrypt_stage(
    ciphertext: pipeline::BlockReader,
    mut out: pipeline::BlockWriter,
    identities: &[age::x25519::Identity],
) -> Result<(), BackupError> {
    let stage = Path::new("(decryption)");
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(1 << 16, ciphertext))
        .map_err(|e| {
            BackupError::Refused(format!("the archive is not a readable age file: {e}"))
        })?;
    let mut plaintext = decryptor
        .decrypt(identities.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => BackupError::Refused(
                "wrong identity: the archive is not encrypted to any key in the identity file"
                    .into(),
            ),
            other => BackupError::Refused(format!("the archive does not decrypt: {other}")),
        })?;
    // To the end of the age stream: its last chunk is authenticated as the last one, which is
    // what proves nothing was cut off.
    let mut buf = vec![0u8; pipeline::BLOCK];
    loop {
        let n = plaintext.read(&mut buf).map_err(damaged)?;
        if n == 0 {
            break;
        }
        out.write_all(buf.get(..n).unwrap_or_default())
            .map_err(BackupError::io(stage))?;
    }
    out.finish().map_err(BackupError::io(stage))
}

/// The members of the plaintext tar stream: written or hashed, and the signed manifest.
fn read_members(
    plaintext: pipeline::BlockReader,
    into: &Path,
    keep: Keep,
) -> Result<(Option<SignedManifest>, Vec<Member>), BackupError> {
    let mut tar = tar::Archive::new(plaintext);
    let mut seen: Vec<Member> = Vec::new();
    let mut signed: Option<SignedManifest> = None;
    for entry in tar.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        if signed.is_some() {
            return Err(BackupError::Refused(
                "the archive has a member after its manifest".into(),
            ));
        }
        let name = entry
            .path()
            .map_err(damaged)?
            .to_str()
            .map(str::to_owned)
            .ok_or_else(|| BackupError::Refused("a member name is not UTF-8".into()))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(BackupError::Refused(format!(
                "member {name} is not a regular file"
            )));
        }
        let size = entry.size();
        if name == MANIFEST_MEMBER {
            if size > MAX_MANIFEST_BYTES {
                return Err(BackupError::Refused("the manifest is too large".into()));
            }
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(damaged)?;
            signed = Some(serde_json::from_slice(&bytes).map_err(|e| {
                BackupError::Refused(format!(
                    "the manifest inside the archive is unreadable: {e}"
                ))
            })?);
            continue;
        }
        let Some(relative) = member_path(&name) else {
            return Err(BackupError::Refused(format!(
                "unexpected member {name:?} in the archive"
            )));
        };
        let write = keep == Keep::Everything || name.starts_with("database/");
        let mut reader = HashingReader::new(&mut entry, None);
        if write {
            let target = into.join(&relative);
            if let Some(parent) = target.parent() {
                crate::db::create_private_dir(parent)?;
            }
            let mut out = create_new_private(&target)?;
            io::copy(&mut reader, &mut out).map_err(damaged)?;
            out.sync_all().map_err(BackupError::io(&target))?;
        } else {
            io::copy(&mut reader, &mut io::sink()).map_err(damaged)?;
        }
        let (count, sha256) = reader.finish();
        if count != size {
            return Err(BackupError::Refused(format!(
                "member {name} is truncated ({count} of {size} bytes)"
            )));
        }
        seen.push(Member {
            name,
            size: count,
            sha256,
        });
    }
    // Read the stream to its end, so the decryption stage reaches the authenticated last chunk.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(damaged)?;
    Ok((signed, seen))
}

/// Names the first difference between what the manifest lists and what the archive holds.
fn compare_members(listed: &[Member], found: &[Member]) -> Result<(), BackupError> {
    for m in listed {
        match found.iter().find(|f| f.name == m.name) {
            None => {
                return Err(BackupError::Refused(format!(
                    "member {} listed in the manifest is missing from the archive",
                    m.name
                )));
            }
            Some(f) if f.size != m.size || f.sha256 != m.sha256 => {
                return Err(BackupError::Refused(format!(
                    "member {}: {} bytes with SHA-256 {}, the manifest says {} bytes with {}",
                    m.name, f.size, f.sha256, m.size, m.sha256
                )));
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = found
        .iter()
        .find(|f| !listed.iter().any(|m| m.name == f.name))
    {
        return Err(BackupError::Refused(format!(
            "member {} is in the archive but not in its manifest",
            extra.name
        )));
    }
    if listed.len() != found.len() {
        return Err(BackupError::Refused(
            "the archive holds a member twice".into(),
        ));
    }
    Ok(())
}

fn create_new_private(path: &Path) -> Result<std::fs::File, BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(BackupError::io(path))
}

/// Checks the database in an unpacked archive: SQLite's integrity check, its schema version and
/// its audit log (hashes, sequence, checkpoints signed by `key`); for PostgreSQL, that the dump's
/// table of contents reads. Returns a one-line description of what was checked.
/// How thoroughly [`check_database`] checks a SQLite snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseCheck {
    /// `PRAGMA integrity_check`: structure, and every index against its table.
    Full,
    /// `PRAGMA quick_check`: structure only, linear time. Used by restore, where the member's
    /// SHA-256 already proves the file is the snapshot the signed manifest names.
    Quick,
}

pub async fn check_database(
    dir: &Path,
    manifest: &super::manifest::Manifest,
    key: &[u8; 32],
    depth: DatabaseCheck,
) -> Result<String, BackupError> {
    use super::create::{POSTGRES_MEMBER, SQLITE_MEMBER};
    match manifest.backend.as_str() {
        "sqlite" => {
            let path = dir.join(SQLITE_MEMBER);
            let db = crate::db::Database::connect_sqlite(&path, 1).await?;
            let result = check_sqlite(&db, manifest, key, depth).await;
            db.close().await;
            result
        }
        "postgres" => {
            super::pg::check_dump(&dir.join(POSTGRES_MEMBER)).await?;
            Ok("PostgreSQL dump reads back (pg_restore --list)".into())
        }
        other => Err(BackupError::Refused(format!(
            "unknown database backend {other:?} in the manifest"
        ))),
    }
}

async fn check_sqlite(
    db: &crate::db::Database,
    manifest: &super::manifest::Manifest,
    key: &[u8; 32],
    depth: DatabaseCheck,
) -> Result<String, BackupError> {
    let crate::db::Database::Sqlite(pool) = db else {
        return Err(BackupError::Refused("not a SQLite database".into()));
    };
    let rows: Vec<String> = sqlx::query_scalar(match depth {
        DatabaseCheck::Full => "PRAGMA integrity_check",
        DatabaseCheck::Quick => "PRAGMA quick_check",
    })
    .fetch_all(pool)
    .await
    .map_err(|e| BackupError::Refused(format!("the database in the archive does not open: {e}")))?;
    if rows != ["ok"] {
        return Err(BackupError::Refused(format!(
            "the database in the archive fails its integrity check: {}",
            rows.join("; ")
        )));
    }
    let version = super::schema_version(db).await?;
    if version != manifest.schema_version {
        return Err(BackupError::Refused(format!(
            "the database is at schema version {version}, the manifest says {}",
            manifest.schema_version
        )));
    }
    let report = crate::audit::verify::verify(db, Some(key))
        .await
        .map_err(|e| BackupError::Refused(format!("in the archived database: {e}")))?;
    Ok(format!(
        "SQLite {} ok, schema version {version}, audit log verified ({} entries, {} checkpoints)",
        match depth {
            DatabaseCheck::Full => "integrity_check",
            DatabaseCheck::Quick => "quick_check",
        },
        report.entries,
        report.checkpoints
    ))
}
