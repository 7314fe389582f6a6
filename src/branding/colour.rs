//! Colours as the stylesheet accepts them, the WCAG 2.1 contrast ratio between two, and the
//! [`Palette`]: every colour pair the stylesheet actually draws text with, checked together so
//! that no combination the pages show can fall below the AA minimum.

/// A colour, written into the stylesheet only as `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour([u8; 3]);

/// WCAG 2.1 success criterion 1.4.3 (RGAA criterion 3.2): normal-size text needs 4.5:1.
pub const AA_MINIMUM: f64 = 4.5;

/// The page background of `static/app.css` (`--bg`); links in the brand colour sit on it.
pub const PAGE_BACKGROUND: Colour = Colour::rgb(0xff, 0xff, 0xff);
/// The panel background of `static/app.css` (`--surface`: alerts, table headers); links in the
/// brand colour can sit on it too.
pub const PANEL_BACKGROUND: Colour = Colour::rgb(0xf4, 0xf4, 0xf6);

impl Colour {
    pub const fn rgb(r: u8, g: u8, b: u8) -> Self {
        Colour([r, g, b])
    }

    /// Accepts what a colour input sends (`#1b4f72`) and what a person types where the browser
    /// shows a text box instead: either case, with or without `#`, and the `#abc` shorthand.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let hex = s.strip_prefix('#').unwrap_or(s);
        let full = match hex.len() {
            6 => hex.to_owned(),
            3 => hex.chars().flat_map(|c| [c, c]).collect(),
            _ => return None,
        };
        let bytes = hex::decode(full).ok()?;
        Some(Colour([*bytes.first()?, *bytes.get(1)?, *bytes.get(2)?]))
    }

    pub fn css(self) -> String {
        format!("#{}", hex::encode(self.0))
    }

    /// WCAG 2.1 relative luminance.
    fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(self.0[0]) + 0.7152 * channel(self.0[1]) + 0.0722 * channel(self.0[2])
    }

    /// WCAG 2.1 contrast ratio between two colours (1 to 21).
    pub fn contrast(self, other: Colour) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        (hi + 0.05) / (lo + 0.05)
    }
}

/// The organisation's colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    /// Header and button background; also the colour of links on the page.
    pub primary: Colour,
    pub on_primary: Colour,
    /// Footer background.
    pub secondary: Colour,
    pub on_secondary: Colour,
}

pub const DEFAULT_PALETTE: Palette = Palette {
    primary: Colour::rgb(0x00, 0x00, 0x91),
    on_primary: Colour::rgb(0xff, 0xff, 0xff),
    secondary: Colour::rgb(0xf4, 0xf4, 0xf6),
    on_secondary: Colour::rgb(0x1e, 0x1e, 0x1e),
};

/// Where a pair of colours is used together, as text on a background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairUse {
    /// `--on-brand` on `--brand`: the header, buttons (and the reverse, header buttons).
    Primary,
    /// `--on-brand-secondary` on `--brand-secondary`: the footer and its links.
    Secondary,
    /// `--brand` as link colour on the page background.
    LinksOnPage,
    /// `--brand` as link colour on panels (alerts, table headers).
    LinksOnPanel,
}

impl PairUse {
    /// The fluent id naming the pair for the administrator.
    pub fn message_id(self) -> &'static str {
        match self {
            PairUse::Primary => "branding-pair-primary",
            PairUse::Secondary => "branding-pair-secondary",
            PairUse::LinksOnPage => "branding-pair-links-page",
            PairUse::LinksOnPanel => "branding-pair-links-panel",
        }
    }
}

/// One pair as the pages draw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pair {
    pub usage: PairUse,
    pub foreground: Colour,
    pub background: Colour,
    pub ratio: f64,
}

impl Pair {
    pub fn passes(&self) -> bool {
        self.ratio >= AA_MINIMUM
    }
}

impl Palette {
    /// Every text-on-background combination `static/app.css` draws with these colours.
    pub fn pairs(&self) -> [Pair; 4] {
        let pair = |usage, foreground: Colour, background: Colour| Pair {
            usage,
            foreground,
            background,
            ratio: foreground.contrast(background),
        };
        [
            pair(PairUse::Primary, self.on_primary, self.primary),
            pair(PairUse::Secondary, self.on_secondary, self.secondary),
            pair(PairUse::LinksOnPage, self.primary, PAGE_BACKGROUND),
            pair(PairUse::LinksOnPanel, self.primary, PANEL_BACKGROUND),
        ]
    }

    /// The pairs below the AA minimum; empty when the palette may be saved.
    pub fn failures(&self) -> Vec<Pair> {
        self.pairs().into_iter().filter(|p| !p.passes()).collect()
    }
}

/// A ratio as shown to people, rounded down so that a refused 4.497 never reads "4.50".
pub fn format_ratio(ratio: f64, decimal_comma: bool) -> String {
    let text = format!("{:.2}", (ratio * 100.0).floor() / 100.0);
    if decimal_comma {
        text.replace('.', ",")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_matches_wcag_examples() {
        let black = Colour::parse("#000000").unwrap();
        let white = Colour::parse("#FFFFFF").unwrap();
        assert!((black.contrast(white) - 21.0).abs() < 0.01);
        assert!((white.contrast(white) - 1.0).abs() < 0.0001);
        // #767676 on white is the classic lightest AA grey (4.54:1); #777777 just fails.
        assert!(Colour::parse("#767676").unwrap().contrast(white) >= AA_MINIMUM);
        assert!(Colour::parse("#777777").unwrap().contrast(white) < AA_MINIMUM);
    }

    #[test]
    fn parsing_accepts_what_people_type_and_nothing_else() {
        let c = Colour::rgb(0x1b, 0x4f, 0x72);
        for ok in ["#1b4f72", "#1B4F72", "1b4f72", " #1b4f72 "] {
            assert_eq!(Colour::parse(ok), Some(c), "{ok}");
        }
        assert_eq!(Colour::parse("#abc"), Colour::parse("#aabbcc"));
        for bad in [
            "red",
            "#12345g",
            "#1234",
            "",
            "#",
            "rgb(0,0,0)",
            "#1b4f72;}",
        ] {
            assert_eq!(Colour::parse(bad), None, "{bad}");
        }
        assert_eq!(c.css(), "#1b4f72");
    }

    #[test]
    fn every_pair_the_stylesheet_draws_is_checked() {
        assert!(DEFAULT_PALETTE.failures().is_empty());
        // Yellow on white passes as a header pair but not as a link colour on the page.
        let palette = Palette {
            primary: Colour::rgb(0xff, 0xdd, 0x00),
            on_primary: Colour::rgb(0, 0, 0),
            ..DEFAULT_PALETTE
        };
        let failed: Vec<PairUse> = palette.failures().iter().map(|p| p.usage).collect();
        assert_eq!(failed, vec![PairUse::LinksOnPage, PairUse::LinksOnPanel]);
        let palette = Palette {
            secondary: Colour::rgb(0x77, 0x77, 0x77),
            on_secondary: Colour::rgb(0xff, 0xff, 0xff),
            ..DEFAULT_PALETTE
        };
        assert_eq!(palette.failures().len(), 1);
        assert_eq!(format_ratio(4.478, true), "4,47");
        assert_eq!(format_ratio(21.0, false), "21.00");
    }

    /// The backgrounds checked here are the ones the stylesheet really uses.
    #[test]
    fn backgrounds_match_the_stylesheet() {
        let css = include_str!("../../static/app.css");
        assert!(css.contains(&format!("--bg: {};", PAGE_BACKGROUND.css())));
        assert!(css.contains(&format!("--surface: {};", PANEL_BACKGROUND.css())));
    }
}
