//! vCard 4.0 (RFC 6350) for one agent, built only from what the viewer may see. Text values are
//! escaped (§3.4: backslash, comma, semicolon, newline) and content lines are folded at 75
//! octets (§3.2) without splitting a UTF-8 character; lines end with CRLF.

/// What goes into a card; `None` and empty fields are left out.
#[derive(Debug, Clone, Default)]
pub struct Card<'a> {
    pub full_name: &'a str,
    pub organisation: &'a str,
    /// Department path from the top, one ORG unit each.
    pub units: Vec<&'a str>,
    pub title: Option<&'a str>,
    pub email: Option<&'a str>,
    pub office_phone: Option<&'a str>,
    pub mobile_phone: Option<&'a str>,
    pub skills: &'a [String],
    pub note: Option<&'a str>,
}

/// Escapes a text value (RFC 6350 §3.4).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds one content line: at most 75 octets per physical line, continuation lines start with
/// one space (which counts towards their 75), never inside a multi-byte character.
pub fn fold(line: &str) -> String {
    const LIMIT: usize = 75;
    let mut out = String::with_capacity(line.len() + line.len() / LIMIT * 3 + 2);
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > LIMIT {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
    out
}

pub fn render(card: &Card<'_>) -> String {
    let mut lines = vec![
        "BEGIN:VCARD".to_owned(),
        "VERSION:4.0".to_owned(),
        format!("FN:{}", escape(card.full_name)),
    ];
    let mut org: Vec<String> = vec![escape(card.organisation)];
    org.extend(card.units.iter().map(|u| escape(u)));
    lines.push(format!("ORG:{}", org.join(";")));
    let present = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(escape);
    if let Some(title) = present(card.title) {
        lines.push(format!("TITLE:{title}"));
    }
    if let Some(email) = present(card.email) {
        lines.push(format!("EMAIL;TYPE=work:{email}"));
    }
    if let Some(phone) = present(card.office_phone) {
        lines.push(format!("TEL;VALUE=text;TYPE=work,voice:{phone}"));
    }
    if let Some(phone) = present(card.mobile_phone) {
        lines.push(format!("TEL;VALUE=text;TYPE=cell:{phone}"));
    }
    if !card.skills.is_empty() {
        let skills: Vec<String> = card.skills.iter().map(|s| escape(s)).collect();
        lines.push(format!("CATEGORIES:{}", skills.join(",")));
    }
    if let Some(note) = present(card.note) {
        lines.push(format!("NOTE:{note}"));
    }
    lines.push("END:VCARD".to_owned());
    lines.iter().map(|l| fold(l)).collect()
}

/// A download name made of ASCII letters, digits and dashes ("camille-martin.vcf").
pub fn file_name(full_name: &str) -> String {
    let mut out = String::new();
    for c in full_name.chars() {
        let c = match c {
            'à' | 'â' | 'ä' | 'À' | 'Â' | 'Ä' => 'a',
            'ç' | 'Ç' => 'c',
            'é' | 'è' | 'ê' | 'ë' | 'É' | 'È' | 'Ê' | 'Ë' => 'e',
            'î' | 'ï' | 'Î' | 'Ï' => 'i',
            'ô' | 'ö' | 'Ô' | 'Ö' => 'o',
            'ù' | 'û' | 'ü' | 'Ù' | 'Û' | 'Ü' => 'u',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        "contact.vcf".to_owned()
    } else {
        format!("{out}.vcf")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_special_characters() {
        assert_eq!(escape("a,b;c\\d\ne\r\nf"), "a\\,b\\;c\\\\d\\ne\\nf");
        assert_eq!(escape("plain"), "plain");
        assert_eq!(escape("bell\u{7}"), "bell");
    }

    #[test]
    fn folds_at_75_octets_without_splitting_characters() {
        let short = fold("FN:Camille");
        assert_eq!(short, "FN:Camille\r\n");
        let long = format!("NOTE:{}", "é".repeat(100));
        let folded = fold(&long);
        for line in folded.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets: {line}", line.len());
        }
        // Unfolding (remove CRLF + one space) gives the line back.
        let unfolded = folded.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, long);
        let ascii = fold(&"x".repeat(160));
        let lines: Vec<&str> = ascii.trim_end().split("\r\n").collect();
        assert_eq!(lines[0].len(), 75);
        assert!(lines[1].starts_with(' ') && lines[1].len() == 75);
    }

    #[test]
    fn renders_only_given_fields() {
        let skills = vec!["Marchés publics".to_owned(), "Excel, avancé".to_owned()];
        let card = Card {
            full_name: "Camille Martin",
            organisation: "Commune de Démo-sur-Loire",
            units: vec!["Direction des finances", "Comptabilité"],
            title: Some("Gestionnaire; comptable"),
            email: Some("camille@example.org"),
            office_phone: None,
            mobile_phone: Some("06 00 00 00 00"),
            skills: &skills,
            note: None,
        };
        let text = render(&card);
        assert!(text.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Camille Martin\r\n"));
        assert!(
            text.contains("ORG:Commune de Démo-sur-Loire;Direction des finances;Comptabilité\r\n")
        );
        assert!(text.contains("TITLE:Gestionnaire\\; comptable\r\n"));
        assert!(text.contains("TEL;VALUE=text;TYPE=cell:06 00 00 00 00\r\n"));
        assert!(text.contains("CATEGORIES:Marchés publics,Excel\\, avancé\r\n"));
        assert!(!text.contains("TYPE=work,voice"));
        assert!(!text.contains("NOTE"));
        assert!(text.ends_with("END:VCARD\r\n"));
        assert_eq!(file_name("Éloïse d'Arc"), "eloise-d-arc.vcf");
        assert_eq!(file_name("人"), "contact.vcf");
    }
}
