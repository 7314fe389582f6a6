//! Footer links (legal notice, accessibility statement, personal data…): an ordered list of
//! labels and addresses shown on every page. An address is either `https://` or a path on this
//! site; `javascript:`, `data:` and every other scheme are refused, because a footer link is
//! shown to every agent and a script URL there would run in their session.

use serde::{Deserialize, Serialize};

/// A short footer; RGAA asks for three links, the rest is the organisation's choice.
pub const MAX_FOOTER_LINKS: usize = 8;
pub const MAX_LABEL_CHARS: usize = 80;
const MAX_URL_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FooterLink {
    pub label: String,
    pub url: String,
}

/// What is wrong with the footer form; rows are numbered from 1, as the page shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FooterError {
    TooMany,
    BadLabel(usize),
    BadUrl(usize),
}

/// The address, if it is `https://…` with a host and no credentials, or a path on this site.
pub fn check_url(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty()
        || url.len() > MAX_URL_BYTES
        || url.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return None;
    }
    if url.starts_with('/') {
        // `//host` and `/\host` are read by browsers as another host.
        return (!url.starts_with("//") && !url.contains('\\')).then(|| url.to_owned());
    }
    // As typed, not only as parsed: the URL parser would turn `https:///x` into `https://x/`.
    let after_scheme = url
        .get(..8)?
        .eq_ignore_ascii_case("https://")
        .then(|| &url[8..])?;
    if after_scheme.starts_with(['/', '\\']) {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    let acceptable = parsed.scheme() == "https"
        && parsed.host_str().is_some_and(|h| !h.is_empty())
        && parsed.username().is_empty()
        && parsed.password().is_none();
    acceptable.then(|| parsed.to_string())
}

/// Reads the footer form: fields `label_N` and `url_N`, rows in the order of N; a row with
/// both empty is skipped.
pub fn from_form(fields: &[(String, String)]) -> Result<Vec<FooterLink>, FooterError> {
    let mut rows: std::collections::BTreeMap<usize, (String, String)> = Default::default();
    for (name, value) in fields {
        let (slot, index) = if let Some(n) = name.strip_prefix("label_") {
            (0, n)
        } else if let Some(n) = name.strip_prefix("url_") {
            (1, n)
        } else {
            continue;
        };
        let Ok(index) = index.parse::<usize>() else {
            continue;
        };
        if index > 64 {
            return Err(FooterError::TooMany);
        }
        let row = rows.entry(index).or_default();
        if slot == 0 {
            row.0 = value.trim().to_owned();
        } else {
            row.1 = value.trim().to_owned();
        }
    }
    let rows: Vec<(usize, (String, String))> = rows
        .into_iter()
        .filter(|(_, (l, u))| !(l.is_empty() && u.is_empty()))
        .collect();
    if rows.len() > MAX_FOOTER_LINKS {
        return Err(FooterError::TooMany);
    }
    let mut links = Vec::new();
    for (index, (label, url)) in rows {
        // Numbered as the form shows its rows.
        let row = index + 1;
        if label.is_empty() || label.chars().count() > MAX_LABEL_CHARS {
            return Err(FooterError::BadLabel(row));
        }
        let url = check_url(&url).ok_or(FooterError::BadUrl(row))?;
        links.push(FooterLink { label, url });
    }
    Ok(links)
}

/// The stored list, dropping anything that would not pass the form's checks today (a row
/// edited directly in the database is not trusted either).
pub fn from_stored(json: &str) -> Vec<FooterLink> {
    let links: Vec<FooterLink> = serde_json::from_str(json).unwrap_or_default();
    links
        .into_iter()
        .filter(|l| !l.label.trim().is_empty() && l.label.chars().count() <= MAX_LABEL_CHARS)
        .filter_map(|l| {
            check_url(&l.url).map(|url| FooterLink {
                label: l.label,
                url,
            })
        })
        .take(MAX_FOOTER_LINKS)
        .collect()
}

/// Whether one link looks like the accessibility statement RGAA requires on every page
/// ("Accessibilité : non conforme", "Accessibility: partially compliant"…).
pub fn has_accessibility_link(links: &[FooterLink]) -> bool {
    links.iter().any(|l| {
        let label = l.label.to_lowercase();
        label.starts_with("accessibilit")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_https_and_site_paths_are_links() {
        for ok in [
            "/mentions-legales",
            "/accessibilite?x=1#top",
            "https://www.example.gouv.fr/accessibilite",
        ] {
            assert!(check_url(ok).is_some(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,<script>",
            "http://example.fr",
            "//evil.example",
            "/\\evil.example",
            "https://user:pw@example.fr/",
            "https:///nohost",
            "mentions",
            "/a b",
            "",
        ] {
            assert_eq!(check_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn form_rows_keep_their_order_and_skip_empty_ones() {
        let links = from_form(&fields(&[
            ("csrf_token", "x"),
            ("label_1", "Données personnelles"),
            ("url_1", "/donnees"),
            ("label_0", "Mentions légales"),
            ("url_0", "/mentions"),
            ("label_2", ""),
            ("url_2", ""),
            ("label_10", "Accessibilité : non conforme"),
            ("url_10", "/accessibilite"),
        ]))
        .unwrap();
        let labels: Vec<&str> = links.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Mentions légales",
                "Données personnelles",
                "Accessibilité : non conforme"
            ]
        );
        assert!(has_accessibility_link(&links));
        assert_eq!(
            from_form(&fields(&[
                ("label_0", "X"),
                ("url_0", "javascript:alert(1)")
            ])),
            Err(FooterError::BadUrl(1))
        );
        assert_eq!(
            from_form(&fields(&[("label_3", ""), ("url_3", "/x")])),
            Err(FooterError::BadLabel(4))
        );
        let many: Vec<(String, String)> = (0..9)
            .flat_map(|i| {
                [
                    (format!("label_{i}"), "L".into()),
                    (format!("url_{i}"), "/l".into()),
                ]
            })
            .collect();
        assert_eq!(from_form(&many), Err(FooterError::TooMany));
        assert_eq!(
            from_stored(r#"[{"label":"ok","url":"/ok"},{"label":"x","url":"javascript:x"}]"#).len(),
            1
        );
        assert!(from_stored("not json").is_empty());
    }
}
