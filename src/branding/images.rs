//! The logo and the favicon: which types and sizes are accepted. Types are sniffed from the
//! bytes ([`MediaType::sniff`]), never taken from the file name or the browser's claim, and SVG
//! is never accepted: an SVG can carry script, and these images are served from our origin.

use crate::blobs::MediaType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Logo,
    Favicon,
}

impl ImageKind {
    /// The stored name, also the form field and the URL segment.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Logo => "logo",
            ImageKind::Favicon => "favicon",
        }
    }

    /// The largest accepted file. The logo is on every page (cached for a year by its URL); a
    /// favicon needs far less.
    pub fn max_bytes(self) -> usize {
        match self {
            ImageKind::Logo => 512 * 1024,
            ImageKind::Favicon => 128 * 1024,
        }
    }

    pub fn accepts(self, media_type: MediaType) -> bool {
        match self {
            ImageKind::Logo => matches!(
                media_type,
                MediaType::Png | MediaType::Jpeg | MediaType::Webp
            ),
            ImageKind::Favicon => media_type == MediaType::Png,
        }
    }

    /// The audit action recording a change of this image.
    pub fn audit_action(self) -> &'static str {
        match self {
            ImageKind::Logo => "branding.logo",
            ImageKind::Favicon => "branding.favicon",
        }
    }
}

/// Why an uploaded file was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRefusal {
    NoFile,
    TooLarge { size: usize, max: usize },
    WrongType,
}

/// Checks an upload; returns its sniffed type.
pub fn check(kind: ImageKind, bytes: Option<&[u8]>) -> Result<MediaType, ImageRefusal> {
    let bytes = bytes
        .filter(|b| !b.is_empty())
        .ok_or(ImageRefusal::NoFile)?;
    if bytes.len() > kind.max_bytes() {
        return Err(ImageRefusal::TooLarge {
            size: bytes.len(),
            max: kind.max_bytes(),
        });
    }
    MediaType::sniff(bytes)
        .filter(|m| kind.accepts(*m))
        .ok_or(ImageRefusal::WrongType)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn only_raster_images_within_the_limit_pass() {
        assert_eq!(check(ImageKind::Logo, Some(PNG)), Ok(MediaType::Png));
        assert_eq!(check(ImageKind::Favicon, Some(PNG)), Ok(MediaType::Png));
        assert_eq!(
            check(ImageKind::Logo, Some(b"\xff\xd8\xff\xe0JFIF")),
            Ok(MediaType::Jpeg)
        );
        assert_eq!(
            check(ImageKind::Favicon, Some(b"\xff\xd8\xff\xe0JFIF")),
            Err(ImageRefusal::WrongType)
        );
        for refused in [
            &b"<svg xmlns='http://www.w3.org/2000/svg'/>"[..],
            b"<!DOCTYPE html><script>alert(1)</script>",
            b"GIF89a....",
            b"%PDF-1.7",
            b"just some text",
        ] {
            assert_eq!(
                check(ImageKind::Logo, Some(refused)),
                Err(ImageRefusal::WrongType)
            );
        }
        assert_eq!(check(ImageKind::Logo, None), Err(ImageRefusal::NoFile));
        assert_eq!(check(ImageKind::Logo, Some(b"")), Err(ImageRefusal::NoFile));
        let big = [PNG, &vec![0u8; 512 * 1024][..]].concat();
        assert_eq!(
            check(ImageKind::Logo, Some(&big)),
            Err(ImageRefusal::TooLarge {
                size: big.len(),
                max: 512 * 1024
            })
        );
    }
}
