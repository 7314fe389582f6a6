//! Agents' and editors' text (news, pages, HR information) is Markdown, rendered with
//! pulldown-cmark and then sanitised with ammonia, so whatever HTML a writer types (raw HTML is
//! allowed in Markdown) reaches readers only as the safe subset: no script, no style, no event
//! handlers, no iframes, links limited to http, https and mailto, and every link opened with
//! `rel="noopener noreferrer"`. Images may only point at this site (relative URLs), because the
//! Content-Security-Policy would block others anyway and an external image leaks who reads what.

use std::collections::HashSet;

use pulldown_cmark::{Options, Parser, html};

/// Markdown source longer than this is refused by the forms that accept it.
pub const MAX_SOURCE_BYTES: usize = 200 * 1024;

/// Renders Markdown to sanitised HTML, safe to insert into a page unescaped.
pub fn render(source: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let mut unsafe_html = String::with_capacity(source.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(source, options));
    sanitise(&unsafe_html)
}

/// Keeps the safe subset of HTML.
pub fn sanitise(html: &str) -> String {
    let schemes: HashSet<&str> = ["http", "https", "mailto"].into_iter().collect();
    ammonia::Builder::default()
        .url_schemes(schemes)
        .link_rel(Some("noopener noreferrer"))
        .attribute_filter(|element, attribute, value| {
            // Same-site images only: relative URLs, never another host or a data: URL.
            if element == "img" && attribute == "src" {
                let v = value.trim_start();
                if v.starts_with("//") || v.contains(':') || !stays_on_site(value) {
                    return None;
                }
            }
            Some(value.into())
        })
        .clean(html)
        .to_string()
}

/// Whether a relative URL, resolved the way a browser resolves it (the WHATWG URL standard,
/// which the `url` crate implements), still points at this site. Looking at the text is not
/// enough: a browser drops leading control characters and any tab or newline, and reads `\`
/// as `/`, so `\u{2}//evil.example/p.gif`, `/\tevil.example` or `/\evil.example` are
/// another host.
fn stays_on_site(relative: &str) -> bool {
    let Ok(page) = url::Url::parse("https://this-site.invalid/a/page") else {
        return false;
    };
    page.join(relative)
        .is_ok_and(|resolved| resolved.origin() == page.origin())
}

/// The text of a Markdown source without markup, for summaries and search.
pub fn plain_text(source: &str) -> String {
    use pulldown_cmark::{Event, TagEnd};
    let mut text = String::new();
    for event in Parser::new(source) {
        match event {
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::TableCell
                | TagEnd::CodeBlock,
            ) => text.push(' '),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markdown_and_strips_what_could_run() {
        let html =
            render("# Télétravail\n\n**Deux jours** par semaine. [Note](https://intra.example/n)");
        assert!(html.contains("<h1>Télétravail</h1>"));
        assert!(html.contains("<strong>Deux jours</strong>"));
        assert!(html.contains("rel=\"noopener noreferrer\""));
        for attack in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[x](javascript:alert(1))",
            "<a href=\"data:text/html,<script>\">x</a>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<style>body{display:none}</style>",
            "<div style=\"position:fixed\">x</div>",
        ] {
            let out = render(attack);
            for bad in [
                "<script",
                "onerror",
                "javascript:",
                "data:",
                "<iframe",
                "<style",
                "style=",
            ] {
                assert!(!out.contains(bad), "{attack:?} gave {out:?}");
            }
        }
        assert!(!render("![x](https://tracker.example/p.gif)").contains("tracker"));
        assert!(render("![plan](/spaces/rh/files/1)").contains("src=\"/spaces/rh/files/1\""));
        assert!(render("![plan](plan.png)").contains("src=\"plan.png\""));
        // Found by the markdown fuzz target: what a browser resolves to another host.
        for src in [
            "\u{2}//evil.example/p.gif",
            "/\\evil.example/p.gif",
            "\\\\evil.example/p.gif",
            "/\t/evil.example/p.gif",
            "/\n/evil.example/p.gif",
        ] {
            let out = sanitise(&format!("<img src=\"{src}\">"));
            assert!(!out.contains("src="), "{src:?} gave {out:?}");
        }
    }

    #[test]
    fn plain_text_drops_markup() {
        assert_eq!(
            plain_text("# Titre\n\nUn *mot* et `code`."),
            "Titre Un mot et code."
        );
    }
}
