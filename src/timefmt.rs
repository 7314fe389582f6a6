//! Times as people read and type them: in the organisation's time zone (`[locale] timezone`),
//! summer and winter, whatever zone the server runs in. The database stores instants (Unix
//! seconds, UTC); this module is the one place that turns them into wall-clock time and back.
//!
//! The zone comes from the IANA database embedded in the binary (jiff's bundled copy), not from
//! the server's `/usr/share/zoneinfo`: the systemd sandbox and minimal hosts may have none, and
//! a time should not change meaning with the host's packages. Upgrading Beffroi upgrades it.
//!
//! Typed times (`datetime-local` inputs) are wall-clock times in that zone. Around a change of
//! offset some wall-clock times do not exist (the spring-forward gap) and some happen twice (the
//! autumn fold): a time in the gap is refused, never moved silently; a time in the fold is the
//! earlier of the two instants, which the forms say.

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{AmbiguousOffset, Offset, TimeZone, TimeZoneDatabase};
use serde::Deserialize;

use crate::i18n::Lang;

/// The zone used when the configuration names none: French public bodies' own.
pub const DEFAULT_ZONE: &str = "Europe/Paris";

/// The organisation's time zone, as configured (`locale.timezone`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgZone {
    tz: TimeZone,
    /// The canonical IANA name (`Europe/Paris` for `europe/paris`).
    name: String,
}

/// Why a typed time was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputTimeError {
    /// Not a `YYYY-MM-DDTHH:MM[:SS]` value, or not a real date.
    Invalid,
    /// A wall-clock time skipped when the clocks went forward: it names no instant.
    Gap,
}

impl OrgZone {
    /// The zone of an IANA name, from the embedded database; the error says why not.
    pub fn named(name: &str) -> Result<Self, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("give an IANA time zone name such as \"Europe/Paris\"".to_owned());
        }
        let tz = TimeZoneDatabase::bundled().get(name).map_err(|_| {
            format!(
                "{name:?} is not a time zone of the IANA database; use a name such as \
                 \"Europe/Paris\", \"America/Cayenne\" or \"Pacific/Noumea\""
            )
        })?;
        let name = tz.iana_name().unwrap_or(name).to_owned();
        Ok(Self { tz, name })
    }

    /// The canonical IANA name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The place the zone is named after, for people: `Paris`, `Cayenne`, `Noumea`.
    pub fn city(&self) -> String {
        self.name
            .rsplit('/')
            .next()
            .unwrap_or(&self.name)
            .replace('_', " ")
    }

    fn offset_and_time(&self, unix_secs: i64) -> (Offset, DateTime) {
        let ts = Timestamp::from_second(unix_secs).unwrap_or(Timestamp::UNIX_EPOCH);
        let offset = self.tz.to_offset(ts);
        (offset, offset.to_datetime(ts))
    }

    /// The instant for a reader, in the page's language: `26 nov. 2026 à 14:30`,
    /// `26 Nov 2026, 14:30`.
    pub fn display(&self, lang: Lang, unix_secs: i64) -> String {
        let (_, t) = self.offset_and_time(unix_secs);
        lang.t_args(
            "time-display",
            &[
                ("day", t.day().to_string()),
                ("month", lang.t(&format!("time-month-{}", t.month()))),
                ("year", t.year().to_string()),
                ("time", format!("{:02}:{:02}", t.hour(), t.minute())),
            ],
        )
    }

    /// The value of a `datetime-local` input: `2026-11-26T14:30`, wall-clock time in the zone.
    pub fn input_value(&self, unix_secs: i64) -> String {
        let (_, t) = self.offset_and_time(unix_secs);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute()
        )
    }

    /// The `datetime` attribute of `<time>`: a global instant with its offset,
    /// `2026-11-26T14:30+01:00`, so that machines read the same instant people see.
    pub fn iso(&self, unix_secs: i64) -> String {
        let (offset, _) = self.offset_and_time(unix_secs);
        let seconds = offset.seconds();
        let sign = if seconds < 0 { '-' } else { '+' };
        let abs = seconds.unsigned_abs();
        format!(
            "{}{sign}{:02}:{:02}",
            self.input_value(unix_secs),
            abs / 3600,
            abs % 3600 / 60
        )
    }

    /// The offset at an instant for people: `UTC+1`, `UTC-3`, `UTC+5:30`.
    pub fn offset_label(&self, unix_secs: i64) -> String {
        let (offset, _) = self.offset_and_time(unix_secs);
        let seconds = offset.seconds();
        let sign = if seconds < 0 { '-' } else { '+' };
        let abs = seconds.unsigned_abs();
        match abs % 3600 / 60 {
            0 => format!("UTC{sign}{}", abs / 3600),
            minutes => format!("UTC{sign}{}:{minutes:02}", abs / 3600),
        }
    }

    /// Where times are typed: `Heure de Paris (UTC+1)`, with the offset in force at `now`.
    pub fn hint(&self, lang: Lang, now: i64) -> String {
        lang.t_args(
            "time-zone-hint",
            &[("city", self.city()), ("offset", self.offset_label(now))],
        )
    }

    /// Reads a `datetime-local` value (`YYYY-MM-DDTHH:MM`, optionally `:SS`) as wall-clock time
    /// in the zone. A time in a gap is refused; a time in a fold is its earlier instant.
    pub fn parse_input(&self, text: &str) -> Result<i64, InputTimeError> {
        let dt = parse_civil(text).ok_or(InputTimeError::Invalid)?;
        let ambiguous = self.tz.to_ambiguous_timestamp(dt);
        let offset = match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { offset } => offset,
            AmbiguousOffset::Gap { .. } => return Err(InputTimeError::Gap),
            AmbiguousOffset::Fold { before, .. } => before,
        };
        offset
            .to_timestamp(dt)
            .map(Timestamp::as_second)
            .map_err(|_| InputTimeError::Invalid)
    }
}

impl Default for OrgZone {
    fn default() -> Self {
        // The embedded database always has Europe/Paris (a test checks it); UTC is only the
        // type system's due, never reached.
        Self::named(DEFAULT_ZONE).unwrap_or_else(|_| Self {
            tz: TimeZone::UTC,
            name: "UTC".to_owned(),
        })
    }
}

impl<'de> Deserialize<'de> for OrgZone {
    /// A name the database does not know fails here, so the error names `locale.timezone`.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        OrgZone::named(&name).map_err(serde::de::Error::custom)
    }
}

/// `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS` (a space for the `T` is accepted), as a civil
/// date and time with no zone.
fn parse_civil(text: &str) -> Option<DateTime> {
    let text = text.trim();
    let (date, clock) = text.split_once('T').or_else(|| text.split_once(' '))?;
    let mut d = date.split('-');
    let year: i16 = d.next()?.parse().ok()?;
    let month: i8 = d.next()?.parse().ok()?;
    let day: i8 = d.next()?.parse().ok()?;
    let mut c = clock.split(':');
    let hour: i8 = c.next()?.parse().ok()?;
    let minute: i8 = c.next()?.parse().ok()?;
    let second: i8 = c.next().map(str::parse).transpose().ok()?.unwrap_or(0);
    if d.next().is_some() || c.next().is_some() || !(1000..=9999).contains(&year) {
        return None;
    }
    DateTime::new(year, month, day, hour, minute, second, 0).ok()
}

/// `2026-11-25 18:30`, in UTC: for the command line (administrators' terminals may be anywhere)
/// and for CSV exports whose column says UTC, which outlive any zone setting.
pub fn utc_minutes(unix_secs: i64) -> String {
    let ts = Timestamp::from_second(unix_secs).unwrap_or(Timestamp::UNIX_EPOCH);
    let t = Offset::UTC.to_datetime(ts);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> OrgZone {
        OrgZone::named("Europe/Paris").unwrap()
    }

    /// Unix seconds of a UTC time, computed independently of the code under test.
    fn utc(text: &str) -> i64 {
        Offset::UTC
            .to_timestamp(parse_civil(text).unwrap())
            .unwrap()
            .as_second()
    }

    #[test]
    fn the_default_is_paris_from_the_embedded_database() {
        assert_eq!(OrgZone::default().name(), "Europe/Paris");
        assert_eq!(OrgZone::default(), paris());
        assert_eq!(
            OrgZone::named("europe/paris").unwrap().name(),
            "Europe/Paris"
        );
        for bad in ["", "Europe/Pariss", "Paris", "CET+1", "../etc/passwd"] {
            assert!(OrgZone::named(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn winter_and_summer_in_paris() {
        let z = paris();
        // Winter: UTC+1.
        let t = utc("2026-11-26T13:30");
        assert_eq!(z.input_value(t), "2026-11-26T14:30");
        assert_eq!(z.iso(t), "2026-11-26T14:30+01:00");
        assert_eq!(z.display(Lang::Fr, t), "26 nov. 2026 à 14:30");
        assert_eq!(z.display(Lang::En, t), "26 Nov 2026, 14:30");
        assert_eq!(z.parse_input("2026-11-26T14:30"), Ok(t));
        assert_eq!(z.hint(Lang::Fr, t), "Heure de Paris (UTC+1)");
        assert_eq!(z.hint(Lang::En, t), "Paris time (UTC+1)");
        // Summer: UTC+2; 08:00 local is 06:00 UTC.
        let t = utc("2026-07-14T06:00");
        assert_eq!(z.parse_input("2026-07-14T08:00"), Ok(t));
        assert_eq!(z.iso(t), "2026-07-14T08:00+02:00");
        assert_eq!(z.display(Lang::Fr, t), "14 juil. 2026 à 08:00");
        assert_eq!(z.offset_label(t), "UTC+2");
    }

    #[test]
    fn spring_forward_on_29_march_2026() {
        let z = paris();
        // 02:00 → 03:00 local: 01:59 is UTC+1, 03:00 is UTC+2, between is no time at all.
        assert_eq!(
            z.parse_input("2026-03-29T01:59"),
            Ok(utc("2026-03-29T00:59"))
        );
        assert_eq!(
            z.parse_input("2026-03-29T03:00"),
            Ok(utc("2026-03-29T01:00"))
        );
        for gap in [
            "2026-03-29T02:00",
            "2026-03-29T02:30",
            "2026-03-29T02:59:59",
        ] {
            assert_eq!(z.parse_input(gap), Err(InputTimeError::Gap), "{gap}");
        }
        // The instant of the change reads as 03:00 summer time.
        let change = utc("2026-03-29T01:00");
        assert_eq!(z.iso(change), "2026-03-29T03:00+02:00");
        assert_eq!(z.iso(change - 60), "2026-03-29T01:59+01:00");
        // Round trip either side.
        for t in [change - 3600, change - 60, change, change + 3600] {
            assert_eq!(z.parse_input(&z.input_value(t)), Ok(t));
        }
    }

    #[test]
    fn fall_back_on_25_october_2026() {
        let z = paris();
        // 03:00 → 02:00 local: 02:00–02:59 happen twice; the earlier (UTC+2) is taken.
        assert_eq!(
            z.parse_input("2026-10-25T02:30"),
            Ok(utc("2026-10-25T00:30"))
        );
        assert_eq!(
            z.parse_input("2026-10-25T01:59"),
            Ok(utc("2026-10-24T23:59"))
        );
        assert_eq!(
            z.parse_input("2026-10-25T03:00"),
            Ok(utc("2026-10-25T02:00"))
        );
        // Both instants of the fold display the same wall time, told apart by the offset.
        let first = utc("2026-10-25T00:30");
        let second = utc("2026-10-25T01:30");
        assert_eq!(z.iso(first), "2026-10-25T02:30+02:00");
        assert_eq!(z.iso(second), "2026-10-25T02:30+01:00");
        assert_eq!(z.display(Lang::En, second), "25 Oct 2026, 02:30");
        assert_eq!(z.offset_label(second), "UTC+1");
    }

    #[test]
    fn overseas_zones() {
        let cayenne = OrgZone::named("America/Cayenne").unwrap();
        let t = utc("2026-03-29T11:00");
        assert_eq!(cayenne.parse_input("2026-03-29T08:00"), Ok(t));
        assert_eq!(cayenne.iso(t), "2026-03-29T08:00-03:00");
        assert_eq!(cayenne.hint(Lang::Fr, t), "Heure de Cayenne (UTC-3)");
        // No DST there: Paris's gap hour is an ordinary hour in Cayenne.
        assert!(cayenne.parse_input("2026-03-29T02:30").is_ok());

        let noumea = OrgZone::named("Pacific/Noumea").unwrap();
        let t = utc("2026-11-25T21:00");
        assert_eq!(noumea.input_value(t), "2026-11-26T08:00");
        assert_eq!(noumea.iso(t), "2026-11-26T08:00+11:00");
        assert_eq!(noumea.display(Lang::Fr, t), "26 nov. 2026 à 08:00");
        assert_eq!(noumea.parse_input("2026-11-26T08:00"), Ok(t));
        assert_eq!(noumea.city(), "Noumea");

        let kolkata = OrgZone::named("Asia/Kolkata").unwrap();
        assert_eq!(kolkata.offset_label(t), "UTC+5:30");
        assert_eq!(kolkata.iso(t), "2026-11-26T02:30+05:30");
        assert_eq!(
            OrgZone::named("America/Port_of_Spain").unwrap().city(),
            "Port of Spain"
        );
    }

    #[test]
    fn typed_junk_is_refused_and_seconds_are_kept() {
        let z = paris();
        let t = z.parse_input("2026-11-25T18:30").unwrap();
        assert_eq!(z.parse_input("2026-11-25T18:30:15"), Ok(t + 15));
        assert_eq!(z.parse_input(" 2026-11-25 18:30 "), Ok(t));
        for junk in [
            "",
            "2026-13-01T00:00",
            "2026-02-30T00:00",
            "2026-11-25",
            "x-y-zTa:b",
            "2026-11-25T18:30:00:00",
            "2026-11-25T24:00",
            "0999-11-25T18:30",
        ] {
            assert_eq!(
                z.parse_input(junk),
                Err(InputTimeError::Invalid),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn every_month_has_a_name_in_both_languages() {
        let z = OrgZone::named("UTC").unwrap();
        for (month, fr, en) in [
            (1, "janv.", "Jan"),
            (2, "févr.", "Feb"),
            (5, "mai", "May"),
            (6, "juin", "Jun"),
            (8, "août", "Aug"),
            (12, "déc.", "Dec"),
        ] {
            let t = utc(&format!("2026-{month:02}-01T09:05"));
            assert_eq!(z.display(Lang::Fr, t), format!("1 {fr} 2026 à 09:05"));
            assert_eq!(z.display(Lang::En, t), format!("1 {en} 2026, 09:05"));
        }
        assert_eq!(z.iso(0), "1970-01-01T00:00+00:00");
        assert_eq!(utc_minutes(utc("2026-11-25T18:30")), "2026-11-25 18:30");
    }
}
