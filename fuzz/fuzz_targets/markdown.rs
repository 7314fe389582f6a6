//! Markdown written by agents and editors, rendered and sanitised (src/markdown.rs) before it
//! is inserted unescaped into every reader's page. Raw HTML is allowed in Markdown, so the
//! input is anything a writer can type.
//!
//! Invariants on the output, read the way a browser reads it: no element that runs or embeds
//! anything (`script`, `style`, `iframe`, `object`, `svg`…), no event handler (`on…=`) or
//! `style` attribute, every link's URL (resolved as a browser resolves it) uses http, https or
//! mailto, and every image is same-site: its `src`, resolved against a page of this site, stays
//! on this site. Both `render` (Markdown) and `sanitise` (HTML) are checked.

#![no_main]

use beffroi::markdown::{plain_text, render, sanitise};
use libfuzzer_sys::fuzz_target;
use url::Url;

const PAGE: &str = "https://intranet.example/news/42";

const FORBIDDEN_ELEMENTS: &[&str] = &[
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math",
    "form", "input", "button", "textarea", "select", "base", "link", "meta", "template",
    "noscript", "video", "audio", "source", "portal",
];

/// html5ever escapes `&`, `"` and U+00A0 in attribute values, `&`, `<`, `>` and U+00A0 in text.
fn unescape(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Checks one attribute of `element`.
fn check_attribute(html: &str, element: &str, name: &str, value: &str) {
    let name = name.to_ascii_lowercase();
    assert!(!name.starts_with("on"), "event handler {name} in {html:?}");
    assert!(
        !matches!(name.as_str(), "style" | "srcdoc" | "formaction" | "srcset"),
        "attribute {name} in {html:?}"
    );
    let Ok(page) = Url::parse(PAGE) else {
        unreachable!()
    };
    let is_url = matches!(name.as_str(), "href" | "src" | "cite" | "action" | "poster");
    if !is_url {
        return;
    }
    // Resolved as the browser will (WHATWG URL: tabs and newlines dropped, backslashes read as
    // slashes, leading control characters trimmed).
    let Ok(resolved) = page.join(value) else {
        return;
    };
    assert!(
        matches!(resolved.scheme(), "http" | "https" | "mailto"),
        "{name}={value:?} resolves to {resolved} in {html:?}"
    );
    if element == "img" && name == "src" {
        assert_eq!(
            resolved.origin(),
            page.origin(),
            "img src={value:?} leaves the site ({resolved}) in {html:?}"
        );
    }
}

/// Walks the serialised output: every `<` starts a tag (text has them escaped), every attribute
/// value is double-quoted.
fn check_html(html: &str) {
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(offset) = html[i..].find('<') {
        let start = i + offset + 1;
        if bytes.get(start) == Some(&b'/') {
            let end = html[start..]
                .find('>')
                .map_or(html.len(), |e| start + e + 1);
            i = end;
            continue;
        }
        let name_end = html[start..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(html.len(), |e| start + e);
        let element = html[start..name_end].to_ascii_lowercase();
        assert!(!element.is_empty(), "unescaped '<' at {start} in {html:?}");
        assert!(
            !FORBIDDEN_ELEMENTS.contains(&element.as_str()),
            "<{element}> in {html:?}"
        );
        let mut j = name_end;
        loop {
            let rest = &html[j..];
            let trimmed = rest.trim_start();
            j += rest.len() - trimmed.len();
            if trimmed.starts_with('>') {
                j += 1;
                break;
            }
            if trimmed.starts_with("/>") {
                j += 2;
                break;
            }
            assert!(!trimmed.is_empty(), "unterminated tag in {html:?}");
            let attr_end = trimmed
                .find(|c: char| c == '=' || c == '>' || c.is_whitespace())
                .unwrap_or(trimmed.len());
            assert!(attr_end > 0, "malformed tag in {html:?}");
            let attr = &trimmed[..attr_end];
            j += attr_end;
            assert!(
                !html[j..].starts_with('=') || html[j..].starts_with("=\""),
                "unquoted attribute value in {html:?}"
            );
            if html[j..].starts_with("=\"") {
                let value_start = j + 2;
                let value_end = html[value_start..]
                    .find('"')
                    .map(|e| value_start + e)
                    .unwrap_or_else(|| panic!("unterminated attribute value in {html:?}"));
                check_attribute(
                    html,
                    &element,
                    attr,
                    &unescape(&html[value_start..value_end]),
                );
                j = value_end + 1;
            } else {
                check_attribute(html, &element, attr, "");
            }
        }
        i = j;
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    check_html(&render(source));
    check_html(&sanitise(source));
    let text = plain_text(source);
    assert!(!text.starts_with(' ') && !text.ends_with(' '));
});
