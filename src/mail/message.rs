//! Writing a plain-text message (RFC 5322, with the MIME headers of RFC 2045/2047) by hand: a
//! notice needs a handful of headers, and writing them here keeps every byte that reaches a
//! header under our control. Text that comes from users (an item's title) is reduced to one line
//! before it goes anywhere near a header, so no CR or LF can start a header of its own; the
//! subject and the sender's name are then encoded as RFC 2047 words when they are not plain
//! ASCII, and the body is UTF-8 in base64, which no relay rewraps or misreads.

use std::fmt::Write as _;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

/// A sender: an address with an optional display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: lettre::Address,
}

impl Mailbox {
    /// `user@domain` or `Display Name <user@domain>` (the name may be in double quotes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.chars().any(char::is_control) {
            return Err("must be one line without control characters".into());
        }
        let (name, address) = match text.strip_suffix('>') {
            Some(rest) => {
                let (name, address) = rest
                    .rsplit_once('<')
                    .ok_or("expected Name <user@domain> or user@domain")?;
                let name = name.trim();
                let name = name
                    .strip_prefix('"')
                    .and_then(|n| n.strip_suffix('"'))
                    .unwrap_or(name)
                    .trim();
                if name.contains(['"', '\\', '<', '>']) {
                    return Err("the display name must not hold \", \\, < or >".into());
                }
                ((!name.is_empty()).then(|| name.to_owned()), address.trim())
            }
            None => (None, text),
        };
        let address = lettre::Address::from_str(address)
            .map_err(|_| format!("{address:?} is not an e-mail address (user@domain)"))?;
        Ok(Self { name, address })
    }

    /// The header value: the name quoted, or encoded when it is not ASCII.
    fn header_value(&self) -> String {
        match &self.name {
            None => self.address.to_string(),
            Some(name) if name.is_ascii() => format!("\"{name}\" <{}>", self.address),
            Some(name) => format!("{} <{}>", encoded_words(name), self.address),
        }
    }
}

/// `text` on one line: line breaks, tabs and every other control or separator character become
/// spaces, runs of spaces one, and the ends are trimmed. Applied to anything from users before
/// it goes in a header (or a line of the body).
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        let c = if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{85}') {
            ' '
        } else {
            c
        };
        if c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

/// RFC 2047 "B" encoded words for a header value that is not plain ASCII, each at most 75
/// characters and split on character boundaries, folded onto continuation lines.
fn encoded_words(text: &str) -> String {
    // 45 bytes of UTF-8 make 60 characters of base64; with `=?UTF-8?B?` and `?=`, 72.
    const CHUNK: usize = 45;
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        if i + c.len_utf8() - start > CHUNK {
            words.push(&text[start..end]);
            start = i;
        }
        end = i + c.len_utf8();
    }
    if end > start {
        words.push(&text[start..end]);
    }
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", BASE64.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// A header value from users' text: one line, then plain if it is printable ASCII, else
/// encoded words.
fn text_header(text: &str) -> String {
    let line = one_line(text);
    if line.is_ascii() && line.len() <= 900 && !line.contains("=?") {
        line
    } else {
        encoded_words(&line)
    }
}

/// `Thu, 26 Nov 2026 04:16:50 +0000` (RFC 5322 section 3.3), in UTC.
pub fn rfc5322_date(unix_secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let day = match t.weekday() {
        time::Weekday::Monday => "Mon",
        time::Weekday::Tuesday => "Tue",
        time::Weekday::Wednesday => "Wed",
        time::Weekday::Thursday => "Thu",
        time::Weekday::Friday => "Fri",
        time::Weekday::Saturday => "Sat",
        time::Weekday::Sunday => "Sun",
    };
    let month = match t.month() {
        time::Month::January => "Jan",
        time::Month::February => "Feb",
        time::Month::March => "Mar",
        time::Month::April => "Apr",
        time::Month::May => "May",
        time::Month::June => "Jun",
        time::Month::July => "Jul",
        time::Month::August => "Aug",
        time::Month::September => "Sep",
        time::Month::October => "Oct",
        time::Month::November => "Nov",
        time::Month::December => "Dec",
    };
    format!(
        "{day}, {:02} {month} {:04} {:02}:{:02}:{:02} +0000",
        t.day(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A new Message-ID, `<random@domain>`, the domain being the sender's.
pub fn new_message_id(from: &Mailbox) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "<{}@{}>",
        hex::encode(bytes),
        from.address.domain()
    ))
}

/// What a message says, before it is written out.
#[derive(Debug, Clone)]
pub struct Content<'a> {
    pub from: &'a Mailbox,
    pub to: &'a lettre::Address,
    pub subject: &'a str,
    /// Plain text; line ends may be `\n` or `\r\n`.
    pub body: &'a str,
    pub message_id: &'a str,
    /// The languages of the text, first the main one (`Content-Language`).
    pub languages: &'a str,
    pub date: i64,
}

/// The message as sent: headers, a blank line, the body in base64 (76-character lines).
pub fn render(content: &Content<'_>) -> Vec<u8> {
    let mut out = String::new();
    let message_id = one_line(content.message_id);
    let languages = one_line(content.languages);
    let _ = write!(
        out,
        "Date: {}\r\nFrom: {}\r\nTo: {}\r\nSubject: {}\r\nMessage-ID: {message_id}\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\nContent-Language: {languages}\r\n\
         Auto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\n\r\n",
        rfc5322_date(content.date),
        content.from.header_value(),
        content.to,
        text_header(content.subject),
    );
    let body = content.body.replace("\r\n", "\n").replace('\n', "\r\n");
    let encoded = BASE64.encode(body.as_bytes());
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(raw: &[u8]) -> Vec<String> {
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let (head, _) = text.split_once("\r\n\r\n").unwrap();
        head.split("\r\n").map(str::to_owned).collect()
    }

    #[test]
    fn mailboxes_parse_and_junk_is_refused() {
        let m = Mailbox::parse("Intranet <intranet@agence.gouv.fr>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Intranet"));
        assert_eq!(m.address.to_string(), "intranet@agence.gouv.fr");
        let m = Mailbox::parse("\"Mairie de Brest\" <ne-pas-repondre@brest.fr>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Mairie de Brest"));
        assert!(
            Mailbox::parse("intranet@agence.gouv.fr")
                .unwrap()
                .name
                .is_none()
        );
        for junk in [
            "",
            "intranet",
            "a@b.fr\r\nBcc: x@y.fr",
            "Name <not an address>",
            "Na\"me <a@b.fr>",
            "<a@b.fr",
        ] {
            assert!(Mailbox::parse(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn titles_cannot_inject_headers() {
        let from = Mailbox::parse("Intranet <intranet@agence.gouv.fr>").unwrap();
        let to = lettre::Address::from_str("agent@agence.gouv.fr").unwrap();
        for subject in [
            "Rappel\r\nBcc: victim@example.org",
            "Rappel\nBcc: victim@example.org",
            "Rappel\rBcc: victim@example.org",
            "Rappel\u{2028}Bcc: victim@example.org",
            "Rappel — été\r\nBcc: victim@example.org",
        ] {
            let raw = render(&Content {
                from: &from,
                to: &to,
                subject,
                body: "texte",
                message_id: "<1@agence.gouv.fr>",
                languages: "fr, en",
                date: 1_764_130_610,
            });
            let lines = headers(&raw);
            assert!(
                !lines
                    .iter()
                    .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
                "{subject:?} gave {lines:?}"
            );
            assert!(lines.iter().any(|l| l == "Auto-Submitted: auto-generated"));
            assert_eq!(
                lines.iter().filter(|l| l.starts_with("Subject:")).count(),
                1
            );
        }
    }

    #[test]
    fn non_ascii_is_encoded_and_decodes_back() {
        let long = "Procédure d'évacuation du bâtiment — exercice obligatoire pour tous les agents";
        let words = encoded_words(long);
        let mut decoded = Vec::new();
        for word in words.split("\r\n ") {
            assert!(word.len() <= 75, "{word}");
            let inner = word
                .strip_prefix("=?UTF-8?B?")
                .and_then(|w| w.strip_suffix("?="))
                .unwrap();
            decoded.extend(BASE64.decode(inner).unwrap());
        }
        assert_eq!(String::from_utf8(decoded).unwrap(), long);
        assert_eq!(text_header("Plain title"), "Plain title");
        assert_eq!(one_line("  a \t\r\n b\u{7}c  "), "a b c");
    }

    #[test]
    fn dates_are_rfc5322() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_764_130_610),
            "Wed, 26 Nov 2025 04:16:50 +0000"
        );
    }

    #[test]
    fn body_is_base64_of_crlf_text() {
        let from = Mailbox::parse("intranet@agence.gouv.fr").unwrap();
        let to = lettre::Address::from_str("agent@agence.gouv.fr").unwrap();
        let raw = render(&Content {
            from: &from,
            to: &to,
            subject: "s",
            body: "ligne 1\nligne 2 — é\n",
            message_id: "<1@agence.gouv.fr>",
            languages: "fr",
            date: 0,
        });
        let text = String::from_utf8(raw).unwrap();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        let joined: String = body.split("\r\n").collect();
        assert_eq!(
            String::from_utf8(BASE64.decode(joined).unwrap()).unwrap(),
            "ligne 1\r\nligne 2 — é\r\n"
        );
        assert!(body.split("\r\n").all(|l| l.len() <= 76));
    }
}
