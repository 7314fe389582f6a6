//! Translations (Fluent files in `locales/`, compiled into the binary) and the choice of
//! language: the agent's profile, then the language cookie, then `Accept-Language`, then French.

use std::collections::HashMap;

use axum::http::HeaderMap;
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "fr",
        // Bidi isolation marks would end up inside attributes and page titles.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static FR: LanguageIdentifier = langid!("fr");
static EN: LanguageIdentifier = langid!("en");

/// Cookie remembering the language chosen by a visitor who is not signed in.
pub const LANG_COOKIE: &str = "__Host-beffroi-lang";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Fr, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    /// The language's own name, as shown in the switcher.
    pub fn endonym(self) -> &'static str {
        match self {
            Lang::Fr => "Français",
            Lang::En => "English",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    fn id(self) -> &'static LanguageIdentifier {
        match self {
            Lang::Fr => &FR,
            Lang::En => &EN,
        }
    }

    pub fn t(self, id: &str) -> String {
        LOCALES.lookup(self.id(), id)
    }

    pub fn t_args(self, id: &str, args: &[(&'static str, String)]) -> String {
        let args: HashMap<std::borrow::Cow<'static, str>, FluentValue<'_>> = args
            .iter()
            .map(|(k, v)| (std::borrow::Cow::Borrowed(*k), FluentValue::from(v.clone())))
            .collect();
        LOCALES.lookup_with_args(self.id(), id, &args)
    }

    /// The language for a request: profile, cookie, then Accept-Language (by q-value).
    pub fn negotiate(profile: Option<&str>, headers: &HeaderMap) -> Lang {
        if let Some(lang) = profile.and_then(Lang::parse) {
            return lang;
        }
        if let Some(lang) =
            crate::http::cookies::get(headers, LANG_COOKIE).and_then(|v| Lang::parse(&v))
        {
            return lang;
        }
        let Some(accept) = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
        else {
            return Lang::default();
        };
        let mut ranked: Vec<(f32, Lang)> = accept
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let lang = Lang::parse(pieces.next()?)?;
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, lang))
            })
            .collect();
        // Stable sort keeps the header's order among equal weights.
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked.first().map(|(_, l)| *l).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|l| !l.starts_with(['#', ' ', '\t']) && l.contains('='))
            .filter_map(|l| l.split('=').next().map(|k| k.trim().to_owned()))
            .collect()
    }

    #[test]
    fn french_and_english_define_the_same_messages() {
        let fr = ids(include_str!("../locales/fr/main.ftl"));
        let en = ids(include_str!("../locales/en/main.ftl"));
        assert!(fr.len() > 20);
        assert_eq!(fr, en);
    }

    #[test]
    fn accept_language_is_ranked_by_quality() {
        let mut h = HeaderMap::new();
        h.insert(
            "accept-language",
            "de-DE, en;q=0.8, fr;q=0.5".parse().unwrap(),
        );
        assert_eq!(Lang::negotiate(None, &h), Lang::En);
        h.insert("accept-language", "de-DE".parse().unwrap());
        assert_eq!(Lang::negotiate(None, &h), Lang::Fr);
        assert_eq!(Lang::negotiate(Some("en"), &HeaderMap::new()), Lang::En);
        assert_eq!(Lang::En.t("sign-in"), "Sign in");
        assert_eq!(Lang::Fr.t("sign-in"), "Se connecter");
    }
}
