//! One audit entry as one RFC 5424 syslog message, and the RFC 6587 octet-counting frame that
//! carries it over a stream (RFC 5425 for TLS).
//!
//! Every field comes from the database, where a hostile client chose some of them (the login
//! typed at sign-in, a SCIM `userName`, a request's target). The message must hold no byte that a
//! collector or an analyst's screen could take for the end of a record: no CR, LF or any other
//! control character, no Unicode line separator, no bidirectional override, and in the
//! structured data every `"`, `\` and `]` escaped (RFC 5424 §6.3.3). Lengths are bounded too, so
//! one entry cannot exceed what collectors accept (`max_message_bytes`).

use std::fmt::Write as _;

use crate::audit::entry::Entry;

/// SD-ID of the element carrying the entry's fields. 32473 is the private enterprise number
/// reserved for documentation (RFC 5612); the `name@number` form is RFC 5424 §7.2.2's.
pub const SD_ID: &str = "beffroi@32473";

/// The byte order mark RFC 5424 §6.4 puts before a MSG that is UTF-8.
const BOM: &str = "\u{feff}";

/// Longest structured-data value, in characters: names and targets are short; anything longer
/// is cut (and marked) rather than allowed to push the message past the collector's limit.
const MAX_VALUE_CHARS: usize = 128;

const ELLIPSIS: char = '\u{2026}';

/// RFC 5424 §6.2.1 severities used: a success is normal but significant, anything refused or
/// failed is a warning.
const NOTICE: u8 = 5;
const WARNING: u8 = 4;

/// What stays the same for every message a server sends.
#[derive(Debug, Clone)]
pub struct MessageFormat {
    /// Facility code, 0 to 23 (RFC 5424 Table 1).
    pub facility: u8,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    /// Largest message, in bytes, before framing.
    pub max_bytes: usize,
}

impl MessageFormat {
    /// The RFC 5424 message for `entry`:
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [beffroi@32473 …] BOM details`.
    pub fn render(&self, entry: &Entry) -> Vec<u8> {
        let severity = if entry.outcome == "success" {
            NOTICE
        } else {
            WARNING
        };
        let pri = u16::from(self.facility) * 8 + u16::from(severity);
        let header = format!(
            "<{pri}>1 {} {} {} {} {}",
            timestamp(entry.time_us).unwrap_or_else(|| "-".into()),
            header_field(&self.hostname, 255),
            header_field(&self.app_name, 48),
            header_field(&self.procid, 128),
            header_field(&entry.action, 32),
        );

        let actor_id = entry.actor_id.map(|id| id.to_string());
        let seq = entry.seq.to_string();
        let params: [(&str, Option<&str>); 7] = [
            ("seq", Some(&seq)),
            ("actor_id", actor_id.as_deref()),
            ("actor", entry.actor_name.as_deref()),
            ("ip", entry.actor_ip.as_deref()),
            ("request_id", entry.request_id.as_deref()),
            ("target", entry.target.as_deref()),
            ("outcome", Some(&entry.outcome)),
        ];
        let mut sd = format!("[{SD_ID}");
        let mut truncated = false;
        for (name, value) in params {
            if let Some(value) = value {
                let (escaped, cut) = param_value(value);
                truncated |= cut;
                let _ = write!(sd, " {name}=\"{escaped}\"");
            }
        }

        let msg = json_text(&entry.details);
        let flag = " truncated=\"true\"";
        let fixed = header.len() + 1 + sd.len() + 1 + 1 + BOM.len();
        if fixed + msg.len() > self.max_bytes {
            truncated = true;
        }
        if truncated {
            sd.push_str(flag);
        }
        sd.push(']');
        let mut out = String::with_capacity(self.max_bytes.min(fixed + msg.len() + flag.len()));
        out.push_str(&header);
        out.push(' ');
        out.push_str(&sd);
        out.push(' ');
        out.push_str(BOM);
        let room = self.max_bytes.saturating_sub(out.len());
        if msg.len() <= room {
            out.push_str(&msg);
        } else {
            let keep = floor_char_boundary(&msg, room.saturating_sub(ELLIPSIS.len_utf8()));
            out.push_str(msg.get(..keep).unwrap_or_default());
            out.push(ELLIPSIS);
        }
        out.into_bytes()
    }
}

/// RFC 6587 §3.4.1 octet counting: `MSG-LEN SP SYSLOG-MSG`. The receiver reads exactly that
/// many bytes, so no content can end a frame early.
pub fn octet_counted(message: &[u8]) -> Vec<u8> {
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(message);
    frame
}

/// RFC 3339 UTC with microseconds (RFC 5424 §6.2.3 allows six fraction digits), or `None` for a
/// time that is not a four-digit year (the NILVALUE is sent instead).
pub fn timestamp(time_us: i64) -> Option<String> {
    let secs = time_us.div_euclid(1_000_000);
    let micros = time_us.rem_euclid(1_000_000);
    let t = time::OffsetDateTime::from_unix_timestamp(secs).ok()?;
    if !(0..=9999).contains(&t.year()) {
        return None;
    }
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// A header field (HOSTNAME, APP-NAME, PROCID, MSGID) is 1 to `max` printable US-ASCII
/// characters without spaces (RFC 5424 §6); anything else becomes `_`, and an empty value the
/// NILVALUE `-`.
pub fn header_field(value: &str, max: usize) -> String {
    let cleaned: String = value
        .chars()
        .take(max)
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .collect();
    if cleaned.is_empty() {
        "-".into()
    } else {
        cleaned
    }
}

/// Whether `c` could end a line, reorder what an analyst reads, or hide text: control
/// characters (C0, DEL, C1), the Unicode line and paragraph separators, bidirectional
/// overrides and isolates, marks and the byte order mark.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// A PARAM-VALUE: at most [`MAX_VALUE_CHARS`] characters (then `…`), unsafe characters replaced
/// by U+FFFD, and `"`, `\`, `]` escaped with a backslash. Returns whether it was cut.
fn param_value(value: &str) -> (String, bool) {
    let mut out = String::with_capacity(value.len().min(4 * MAX_VALUE_CHARS) + 8);
    let mut chars = value.chars();
    for c in chars.by_ref().take(MAX_VALUE_CHARS) {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if is_unsafe(c) => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    let cut = chars.next().is_some();
    if cut {
        out.push(ELLIPSIS);
    }
    (out, cut)
}

/// The details JSON with every unsafe character written as a JSON `\uXXXX` escape. Details are
/// compact JSON written by serde_json, where such characters can only sit inside strings, so
/// the result is the same JSON value; whatever the stored text, it holds no line break.
fn json_text(details: &str) -> String {
    let mut out = String::with_capacity(details.len());
    for c in details.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// The largest index `<= at` on a character boundary of `s`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    (0..=at).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format() -> MessageFormat {
        MessageFormat {
            facility: 10,
            hostname: "intranet.example.gouv.fr".into(),
            app_name: "beffroi".into(),
            procid: "4242".into(),
            max_bytes: 8192,
        }
    }

    fn entry() -> Entry {
        Entry {
            seq: 1,
            time_us: 1_764_079_200_000_042,
            actor_id: Some(7),
            actor_name: Some("Alice Martin".into()),
            actor_ip: Some("192.0.2.10".into()),
            request_id: Some("00ff".into()),
            action: "auth.sign_in".into(),
            target: None,
            outcome: "success".into(),
            details: "{\"method\":\"sso\"}".into(),
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_success_is_a_notice_with_every_field() {
        assert_eq!(
            text(format().render(&entry())),
            "<85>1 2025-11-25T14:00:00.000042Z intranet.example.gouv.fr beffroi 4242 auth.sign_in \
             [beffroi@32473 seq=\"1\" actor_id=\"7\" actor=\"Alice Martin\" ip=\"192.0.2.10\" \
             request_id=\"00ff\" outcome=\"success\"] \u{feff}{\"method\":\"sso\"}"
        );
    }

    #[test]
    fn a_refusal_is_a_warning_and_absent_fields_are_left_out() {
        let e = Entry {
            seq: 12,
            time_us: 0,
            actor_id: None,
            actor_name: None,
            actor_ip: Some("2001:db8::1".into()),
            request_id: None,
            action: "auth.sign_in_failure".into(),
            target: Some("admin".into()),
            outcome: "denied".into(),
            details: "{}".into(),
        };
        let f = MessageFormat {
            facility: 13,
            ..format()
        };
        assert_eq!(
            text(f.render(&e)),
            "<108>1 1970-01-01T00:00:00.000000Z intranet.example.gouv.fr beffroi 4242 \
             auth.sign_in_failure [beffroi@32473 seq=\"12\" ip=\"2001:db8::1\" target=\"admin\" \
             outcome=\"denied\"] \u{feff}{}"
        );
    }

    #[test]
    fn param_values_escape_quote_backslash_and_bracket() {
        let mut e = entry();
        e.actor_name = Some(r#"a"b\c]d"#.into());
        e.target = Some("x] [fake@1 k=\"v\"".into());
        let line = text(format().render(&e));
        assert!(line.contains(r#" actor="a\"b\\c\]d" "#), "{line}");
        assert!(line.contains(r#" target="x\] [fake@1 k=\"v\"" "#), "{line}");
        // Exactly one SD element closes: the one we opened.
        let sd_end = line.find("] \u{feff}").unwrap();
        let unescaped_brackets = line[..sd_end]
            .char_indices()
            .filter(|(i, c)| *c == ']' && !line[..*i].ends_with('\\'))
            .count();
        assert_eq!(unescaped_brackets, 0, "{line}");
    }

    #[test]
    fn hostile_values_cannot_forge_a_record() {
        let forged = "x\n<13>1 2025-01-01T00:00:00Z evil beffroi - auth.sign_in - forged";
        let mut e = entry();
        e.actor_name = Some(forged.into());
        e.target = Some("t\r\n\u{0}\u{7f}\u{85}\u{2028}\u{202e}end".into());
        e.request_id = Some("\u{1b}[2J".into());
        e.action = "auth.sign_in\nfake".into();
        e.details = "{\"login\":\"a\u{2028}b\u{85}c\"}\n<13>1 forged".into();
        let line = text(format().render(&e));
        assert!(
            !line.chars().any(|c| is_unsafe(c) && c != '\u{feff}'),
            "{line:?}"
        );
        assert_eq!(line.matches('\u{feff}').count(), 1);
        assert!(
            line.contains(" auth.sign_in_fake [beffroi@32473 "),
            "{line}"
        );
        assert!(line.contains("actor=\"x\u{fffd}<13>1 "), "{line}");
        assert!(
            line.contains(
                "target=\"t\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}\u{fffd}end\""
            )
        );
        assert!(line.contains("request_id=\"\u{fffd}[2J\""), "{line}");
        assert!(
            line.ends_with("{\"login\":\"a\\u2028b\\u0085c\"}\\u000a<13>1 forged"),
            "{line}"
        );
    }

    #[test]
    fn details_stay_the_same_json_value() {
        let mut e = entry();
        let value = serde_json::json!({ "login": "a\u{2028}b\u{85}\u{202e}c\u{7f}", "n": 1 });
        e.details = value.to_string();
        let line = text(format().render(&e));
        let (_, msg) = line.split_once('\u{feff}').unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(msg).unwrap(),
            value
        );
    }

    #[test]
    fn long_values_are_cut_and_the_message_bounded() {
        let mut e = entry();
        e.actor_name = Some("é".repeat(10_000));
        e.target = Some("\"".repeat(10_000));
        e.details = serde_json::json!({ "x": "y".repeat(100_000) }).to_string();
        let f = MessageFormat {
            max_bytes: 2048,
            ..format()
        };
        let line = text(f.render(&e));
        assert!(line.len() <= 2048, "{}", line.len());
        assert!(line.contains(&format!("actor=\"{}\u{2026}\"", "é".repeat(128))));
        assert!(line.contains(&format!("target=\"{}\u{2026}\"", "\\\"".repeat(128))));
        assert!(
            line.contains(" truncated=\"true\"] \u{feff}{\"x\":\"yyy"),
            "{line}"
        );
        assert!(line.ends_with("y\u{2026}"));
        // Short enough: untouched, no flag.
        let short = text(f.render(&entry()));
        assert!(!short.contains("truncated"));
    }

    #[test]
    fn header_fields_are_printable_ascii_or_nil() {
        assert_eq!(header_field("", 48), "-");
        assert_eq!(header_field("a b\u{e9}c", 48), "a_b_c");
        assert_eq!(header_field(&"x".repeat(40), 32).len(), 32);
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        assert_eq!(
            timestamp(1_764_079_200_123_456).as_deref(),
            Some("2025-11-25T14:00:00.123456Z")
        );
        assert_eq!(
            timestamp(-1).as_deref(),
            Some("1969-12-31T23:59:59.999999Z")
        );
        assert_eq!(timestamp(i64::MAX), None);
        let mut e = entry();
        e.time_us = i64::MIN;
        assert!(text(format().render(&e)).starts_with("<85>1 - intranet"));
    }

    #[test]
    fn octet_counting_counts_bytes_not_characters() {
        assert_eq!(octet_counted("é".as_bytes()), b"2 \xc3\xa9".to_vec());
        assert_eq!(octet_counted(b""), b"0 ".to_vec());
    }
}
