//! Rotation: which archives to keep. The newest archive of each of the last `keep_daily` days
//! that have one, of the last `keep_weekly` ISO weeks, and of the last `keep_monthly` months are
//! kept (one archive can count for all three); the newest archive is always kept. The others
//! are deleted with their signed manifests.
//!
//! Only this instance's archives are considered (the directory may be shared), and an archive's
//! time is read from its name, which `backup create` writes, not from the file's modification
//! time, which a copy changes. Files whose names do not parse are never touched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::{ARCHIVE_SUFFIX, BackupError, envelope_path};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub keep_monthly: u32,
}

impl From<&crate::config::BackupConfig> for Policy {
    fn from(c: &crate::config::BackupConfig) -> Self {
        Self {
            keep_daily: c.keep_daily,
            keep_weekly: c.keep_weekly,
            keep_monthly: c.keep_monthly,
        }
    }
}

/// For archives created at `times` (seconds since the epoch, any order), whether each is kept.
pub fn select(times: &[i64], policy: Policy) -> Vec<bool> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    // Newest first; equal times keep input order so the choice is stable.
    order.sort_by(|&a, &b| times[b].cmp(&times[a]).then(a.cmp(&b)));
    let mut keep = vec![false; times.len()];
    if let Some(&newest) = order.first() {
        keep[newest] = true;
    }
    let dates: Vec<Option<OffsetDateTime>> = times
        .iter()
        .map(|&t| OffsetDateTime::from_unix_timestamp(t).ok())
        .collect();
    type PeriodOf = fn(&OffsetDateTime) -> (i32, u32);
    let buckets: [(u32, PeriodOf); 3] = [
        (policy.keep_daily, |d| (d.year(), u32::from(d.ordinal()))),
        (policy.keep_weekly, |d| {
            let (year, week, _) = d.to_iso_week_date();
            (year, u32::from(week))
        }),
        (policy.keep_monthly, |d| {
            (d.year(), u32::from(u8::from(d.month())))
        }),
    ];
    for (count, period_of) in buckets {
        let mut seen = BTreeSet::new();
        for &i in &order {
            if seen.len() >= count as usize {
                break;
            }
            let Some(date) = &dates[i] else { continue };
            // The first archive met in a period is that period's newest.
            if seen.insert(period_of(date)) {
                keep[i] = true;
            }
        }
    }
    keep
}

/// One archive found in the backup directory.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    pub archive: PathBuf,
    pub created_unix: i64,
}

/// Parses `beffroi-YYYYMMDDTHHMMSSZ-<instance prefix>.tar.age`.
pub fn parse_name(name: &str) -> Option<(i64, &str)> {
    let rest = name
        .strip_prefix("beffroi-")?
        .strip_suffix(ARCHIVE_SUFFIX)?;
    let (stamp, instance) = rest.split_once('-')?;
    if stamp.len() != 16 || !stamp.ends_with('Z') || stamp.as_bytes().get(8) != Some(&b'T') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<u32>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let month = time::Month::try_from(u8::try_from(mo).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?)
        .ok()?;
    let t = date
        .with_hms(
            u8::try_from(h).ok()?,
            u8::try_from(mi).ok()?,
            u8::try_from(s).ok()?,
        )
        .ok()?
        .assume_utc();
    Some((t.unix_timestamp(), instance))
}

/// This instance's archives in `dir`.
pub fn list(dir: &Path, instance_id: &str) -> Result<Vec<Found>, BackupError> {
    let prefix = instance_id.get(..16).unwrap_or(instance_id);
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(BackupError::io(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(BackupError::io(dir))?;
        let name = entry.file_name();
        let Some((created_unix, instance)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        if instance == prefix && entry.file_type().is_ok_and(|t| t.is_file()) {
            found.push(Found {
                archive: entry.path(),
                created_unix,
            });
        }
    }
    found.sort_by_key(|f| f.created_unix);
    Ok(found)
}

#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub kept: Vec<PathBuf>,
    pub deleted: Vec<PathBuf>,
    pub dry_run: bool,
}

/// Deletes the archives (and their manifests) the policy does not keep.
pub fn prune(
    dir: &Path,
    instance_id: &str,
    policy: Policy,
    dry_run: bool,
) -> Result<PruneReport, BackupError> {
    let found = list(dir, instance_id)?;
    let times: Vec<i64> = found.iter().map(|f| f.created_unix).collect();
    let keep = select(&times, policy);
    let mut report = PruneReport {
        kept: Vec::new(),
        deleted: Vec::new(),
        dry_run,
    };
    for (f, keep) in found.into_iter().zip(keep) {
        if keep {
            report.kept.push(f.archive);
            continue;
        }
        if !dry_run {
            std::fs::remove_file(&f.archive).map_err(BackupError::io(&f.archive))?;
            let manifest = envelope_path(&f.archive);
            match std::fs::remove_file(&manifest) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BackupError::io(&manifest)(e)),
            }
        }
        report.deleted.push(f.archive);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T02:00:00Z (a Thursday), plus `days` days and `hours` hours.
    fn at(days: i64, hours: i64) -> i64 {
        1_767_232_800 + days * 86_400 + hours * 3600
    }

    fn kept(times: &[i64], policy: Policy) -> Vec<i64> {
        let keep = select(times, policy);
        let mut out: Vec<i64> = times
            .iter()
            .zip(keep)
            .filter_map(|(t, k)| k.then_some(*t))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn keeps_the_newest_of_each_of_the_last_days() {
        // Two backups a day for ten days.
        let times: Vec<i64> = (0..10).flat_map(|d| [at(d, 0), at(d, 12)]).collect();
        let policy = Policy {
            keep_daily: 3,
            keep_weekly: 0,
            keep_monthly: 0,
        };
        assert_eq!(kept(&times, policy), vec![at(7, 12), at(8, 12), at(9, 12)]);
    }

    #[test]
    fn weeks_and_months_keep_the_newest_of_their_period() {
        // One backup a day for 100 days from Thursday 2026-01-01.
        let times: Vec<i64> = (0..100).map(|d| at(d, 0)).collect();
        let policy = Policy {
            keep_daily: 2,
            keep_weekly: 3,
            keep_monthly: 3,
        };
        let newest = at(99, 0); // 2026-04-10, a Friday
        let k = kept(&times, policy);
        // Daily: 04-10 and 04-09. Weekly (ISO weeks, Monday first): 04-10 (week 15), Sunday
        // 04-05 (week 14), Sunday 03-29 (week 13). Monthly: 04-10, 03-31, 02-28.
        let expected = vec![
            at(58, 0), // 2026-02-28
            at(89, 0), // 2026-03-31
            at(87, 0), // 2026-03-29
            at(94, 0), // 2026-04-05
            at(98, 0), // 2026-04-09
            newest,
        ];
        let mut expected = expected;
        expected.sort();
        assert_eq!(k, expected);
    }

    #[test]
    fn the_newest_is_kept_even_with_nothing_to_keep_and_input_order_does_not_matter() {
        let policy = Policy {
            keep_daily: 0,
            keep_weekly: 0,
            keep_monthly: 0,
        };
        assert_eq!(
            kept(&[at(1, 0), at(5, 0), at(3, 0)], policy),
            vec![at(5, 0)]
        );
        assert!(select(&[], policy).is_empty());
        let policy = Policy {
            keep_daily: 2,
            keep_weekly: 0,
            keep_monthly: 0,
        };
        assert_eq!(
            kept(&[at(3, 1), at(1, 1), at(2, 1), at(3, 2)], policy),
            vec![at(2, 1), at(3, 2)]
        );
    }

    #[test]
    fn gaps_count_days_with_backups_not_calendar_days() {
        // Backups on days 0, 10 and 20 only: keep_daily = 2 keeps days 20 and 10.
        let times = [at(0, 0), at(10, 0), at(20, 0)];
        let policy = Policy {
            keep_daily: 2,
            keep_weekly: 0,
            keep_monthly: 0,
        };
        assert_eq!(kept(&times, policy), vec![at(10, 0), at(20, 0)]);
    }

    #[test]
    fn names_parse_and_prune_deletes_only_this_instances_unkept_archives() {
        let name =
            crate::backup::create::archive_name(at(0, 0), "00112233445566778899aabbccddeeff");
        assert_eq!(name, "beffroi-20260101T020000Z-0011223344556677.tar.age");
        assert_eq!(parse_name(&name), Some((at(0, 0), "0011223344556677")));
        assert_eq!(parse_name("beffroi-20261341T020000Z-00.tar.age"), None);
        assert_eq!(parse_name("notes.txt"), None);

        let dir = tempfile::tempdir().unwrap();
        let ours = "00112233445566778899aabbccddeeff";
        let theirs = "ffeeddccbbaa99887766554433221100";
        for d in 0..5 {
            for id in [ours, theirs] {
                let a = dir
                    .path()
                    .join(crate::backup::create::archive_name(at(d, 0), id));
                std::fs::write(&a, b"x").unwrap();
                std::fs::write(envelope_path(&a), b"{}").unwrap();
            }
        }
        std::fs::write(dir.path().join("README"), b"keep me").unwrap();
        let policy = Policy {
            keep_daily: 2,
            keep_weekly: 0,
            keep_monthly: 0,
        };
        let dry = prune(dir.path(), ours, policy, true).unwrap();
        assert_eq!((dry.kept.len(), dry.deleted.len()), (2, 3));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 21);
        let report = prune(dir.path(), ours, policy, false).unwrap();
        assert_eq!(report.deleted.len(), 3);
        for gone in &report.deleted {
            assert!(!gone.exists() && !envelope_path(gone).exists());
        }
        // 2 of ours + 5 of theirs, each with its manifest, and the README.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 15);
    }
}
