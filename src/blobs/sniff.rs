//! Upload types, decided from the bytes and never from the name or the browser's claim. Only
//! types that cannot carry script are accepted: no SVG, no HTML.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Png,
    Jpeg,
    Gif,
    Webp,
    Pdf,
    /// Office documents: OOXML and OpenDocument are ZIP files.
    Zip,
    /// UTF-8 text without control characters other than tab, CR and LF.
    Text,
}

impl MediaType {
    /// Recognises the type from the first bytes; `None` for anything not accepted.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        let starts = |magic: &[u8]| bytes.starts_with(magic);
        if starts(b"\x89PNG\r\n\x1a\n") {
            Some(MediaType::Png)
        } else if starts(b"\xff\xd8\xff") {
            Some(MediaType::Jpeg)
        } else if starts(b"GIF87a") || starts(b"GIF89a") {
            Some(MediaType::Gif)
        } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
            Some(MediaType::Webp)
        } else if starts(b"%PDF-") {
            Some(MediaType::Pdf)
        } else if starts(b"PK\x03\x04") {
            Some(MediaType::Zip)
        } else if !bytes.is_empty()
            && std::str::from_utf8(bytes).is_ok_and(|s| {
                !s.chars()
                    .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
            })
            && !looks_like_markup(bytes)
        {
            Some(MediaType::Text)
        } else {
            None
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Png => "image/png",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Gif => "image/gif",
            MediaType::Webp => "image/webp",
            MediaType::Pdf => "application/pdf",
            MediaType::Zip => "application/zip",
            MediaType::Text => "text/plain; charset=utf-8",
        }
    }

    pub fn is_image(self) -> bool {
        matches!(
            self,
            MediaType::Png | MediaType::Jpeg | MediaType::Gif | MediaType::Webp
        )
    }

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Png => "png",
            MediaType::Jpeg => "jpeg",
            MediaType::Gif => "gif",
            MediaType::Webp => "webp",
            MediaType::Pdf => "pdf",
            MediaType::Zip => "zip",
            MediaType::Text => "text",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            MediaType::Png,
            MediaType::Jpeg,
            MediaType::Gif,
            MediaType::Webp,
            MediaType::Pdf,
            MediaType::Zip,
            MediaType::Text,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

/// Browsers may sniff "text" that starts like HTML or SVG as markup; refuse it outright.
fn looks_like_markup(bytes: &[u8]) -> bool {
    let head: Vec<u8> = bytes
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(16)
        .map(u8::to_ascii_lowercase)
        .collect();
    head.starts_with(b"<")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(
            MediaType::sniff(b"\x89PNG\r\n\x1a\n...."),
            Some(MediaType::Png)
        );
        assert_eq!(MediaType::sniff(b"\xff\xd8\xff\xe0"), Some(MediaType::Jpeg));
        assert_eq!(
            MediaType::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(MediaType::Webp)
        );
        assert_eq!(MediaType::sniff(b"%PDF-1.7"), Some(MediaType::Pdf));
        assert_eq!(
            MediaType::sniff("Règlement\n".as_bytes()),
            Some(MediaType::Text)
        );
        for refused in [
            &b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>"[..],
            b"  <html><script>",
            b"\x00\x01binary",
            b"",
        ] {
            assert_eq!(MediaType::sniff(refused), None);
        }
        for m in [MediaType::Png, MediaType::Zip, MediaType::Text] {
            assert_eq!(MediaType::parse(m.as_str()), Some(m));
        }
    }
}
