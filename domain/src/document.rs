//! Documents shared in a room: which files are accepted, decided by their content (magic bytes),
//! and the name they are stored and offered for download under.
//!
//! Why content and not the client's name or `Content-Type`: both are chosen by whoever uploads, and a
//! `.pdf` that is really an executable must not reach the other side looking like a PDF. Anything
//! that could run or render active content in a browser (executables, HTML, SVG, scripts) is refused.

/// An accepted kind of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    Pdf,
    Png,
    Jpeg,
    Gif,
    Webp,
    Docx,
    Xlsx,
    Pptx,
    Odt,
    Ods,
    Odp,
    /// UTF-8 text without control characters (and not markup).
    Text,
}

impl DocumentKind {
    /// The MIME type stored and served (never the client's).
    pub fn content_type(self) -> &'static str {
        use DocumentKind::*;
        match self {
            Pdf => "application/pdf",
            Png => "image/png",
            Jpeg => "image/jpeg",
            Gif => "image/gif",
            Webp => "image/webp",
            Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Pptx => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            Odt => "application/vnd.oasis.opendocument.text",
            Ods => "application/vnd.oasis.opendocument.spreadsheet",
            Odp => "application/vnd.oasis.opendocument.presentation",
            Text => "text/plain; charset=utf-8",
        }
    }

    /// The extension the stored name ends with.
    pub fn extension(self) -> &'static str {
        use DocumentKind::*;
        match self {
            Pdf => "pdf",
            Png => "png",
            Jpeg => "jpg",
            Gif => "gif",
            Webp => "webp",
            Docx => "docx",
            Xlsx => "xlsx",
            Pptx => "pptx",
            Odt => "odt",
            Ods => "ods",
            Odp => "odp",
            Text => "txt",
        }
    }

    /// Other spellings of the extension that may stay as they are.
    fn also_known_as(self) -> &'static [&'static str] {
        match self {
            DocumentKind::Jpeg => &["jpeg"],
            _ => &[],
        }
    }
}

const ZIP_LOCAL_HEADER: &[u8] = b"PK\x03\x04";

/// The kind of `bytes`, or `None` when it is not an accepted document.
pub fn sniff(bytes: &[u8]) -> Option<DocumentKind> {
    use DocumentKind::*;
    if bytes.starts_with(b"%PDF-") {
        return Some(Pdf);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Png);
    }
    if bytes.starts_with(b"\xff\xd8\xff") {
        return Some(Jpeg);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Some(Gif);
    }
    if bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Some(Webp);
    }
    if bytes.starts_with(ZIP_LOCAL_HEADER) {
        return sniff_zip(bytes);
    }
    if looks_like_text(bytes) {
        return Some(Text);
    }
    None
}

/// The first entry of a zip archive: its name and, when stored uncompressed, its data.
fn first_zip_entry(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let u16_at = |at: usize| bytes.get(at..at + 2).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])));
    let method = u16_at(8)?;
    let size = bytes.get(18..22).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)?;
    let (name_len, extra_len) = (u16_at(26)?, u16_at(28)?);
    let name = bytes.get(30..30 + name_len)?;
    let data_start = 30 + name_len + extra_len;
    let data = if method == 0 { bytes.get(data_start..data_start.checked_add(size)?).unwrap_or(&[]) } else { &[] };
    Some((name, data))
}

/// Office documents are zip archives: OOXML starts with `[Content_Types].xml`, ODF with a stored
/// `mimetype` entry naming the kind. Any other zip (archives of anything) is refused.
fn sniff_zip(bytes: &[u8]) -> Option<DocumentKind> {
    let (name, data) = first_zip_entry(bytes)?;
    match name {
        b"[Content_Types].xml" => {
            // The part names sit uncompressed in the local headers and the central directory.
            let has = |part: &[u8]| bytes.windows(part.len()).any(|w| w == part);
            if has(b"word/document.xml") {
                Some(DocumentKind::Docx)
            } else if has(b"xl/workbook.xml") {
                Some(DocumentKind::Xlsx)
            } else if has(b"ppt/presentation.xml") {
                Some(DocumentKind::Pptx)
            } else {
                None
            }
        }
        b"mimetype" => match data {
            b"application/vnd.oasis.opendocument.text" => Some(DocumentKind::Odt),
            b"application/vnd.oasis.opendocument.spreadsheet" => Some(DocumentKind::Ods),
            b"application/vnd.oasis.opendocument.presentation" => Some(DocumentKind::Odp),
            _ => None,
        },
        _ => None,
    }
}

/// UTF-8, no control characters but tab/newline/carriage return/form feed, and not markup (a page
/// or an SVG must not travel as "text").
fn looks_like_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    !text.trim().is_empty()
        && !text.trim_start().starts_with('<')
        && text.chars().all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\u{c}'))
}

/// Longest stem kept (characters), before the extension.
pub const MAX_STEM_CHARS: usize = 100;
/// What an upload without a usable name is called.
pub const FALLBACK_STEM: &str = "documento";

/// Invisible characters that reorder or hide text: `a\u{202e}fdp.exe` displays as `aexe.pdf`.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{00ad}' | '\u{061c}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// Names Windows refuses for a file, whatever the extension.
fn is_reserved_device_name(stem: &str) -> bool {
    let upper = stem.split('.').next().unwrap_or("").trim().to_ascii_uppercase();
    matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit())
}

/// A safe file name for a document of `kind` named `given` by the uploader: the last path component
/// only, no control or invisible characters, no reserved characters (`<>:"/\|?*`), no leading dots,
/// at most [`MAX_STEM_CHARS`] before the extension, and the extension of the detected kind.
pub fn sanitize_file_name(given: &str, kind: DocumentKind) -> String {
    let last = given.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|&c| !c.is_control() && !is_invisible_format(c))
        .map(|c| if matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    // Drop the given extension: ours replaces it (kept only when it already says the same).
    let stem = match cleaned.rsplit_once('.') {
        Some((stem, ext)) if !ext.is_empty() && ext.len() <= 8 && ext.chars().all(|c| c.is_ascii_alphanumeric()) => {
            stem
        }
        _ => cleaned,
    };
    let stem = stem.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let mut stem: String = stem.chars().take(MAX_STEM_CHARS).collect();
    stem = stem.trim_end_matches(|c: char| c == '.' || c.is_whitespace()).to_owned();
    if stem.is_empty() {
        stem = FALLBACK_STEM.to_owned();
    }
    if is_reserved_device_name(&stem) {
        stem.insert(0, '_');
    }
    let given_ext = cleaned.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    let ext = match given_ext {
        Some(e) if kind.also_known_as().contains(&e.as_str()) => kind.also_known_as()[0],
        _ => kind.extension(),
    };
    format!("{stem}.{ext}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zip_with_first_entry(name: &[u8], data: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut z = Vec::new();
        z.extend_from_slice(ZIP_LOCAL_HEADER);
        z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method 0, time, date, crc
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&(data.len() as u32).to_le_bytes());
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(name);
        z.extend_from_slice(data);
        z.extend_from_slice(rest);
        z
    }

    #[test]
    fn accepted_kinds_by_magic_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), Some(DocumentKind::Pdf));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(DocumentKind::Png));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some(DocumentKind::Jpeg));
        assert_eq!(sniff(b"GIF89a\x01\0"), Some(DocumentKind::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(DocumentKind::Webp));
        assert_eq!(sniff("Buongiorno,\nallego la ricevuta.\n".as_bytes()), Some(DocumentKind::Text));
        let docx = zip_with_first_entry(b"[Content_Types].xml", b"<Types/>", b"PK\x03\x04....word/document.xml");
        assert_eq!(sniff(&docx), Some(DocumentKind::Docx));
        let xlsx = zip_with_first_entry(b"[Content_Types].xml", b"<Types/>", b"xl/workbook.xml");
        assert_eq!(sniff(&xlsx), Some(DocumentKind::Xlsx));
        let pptx = zip_with_first_entry(b"[Content_Types].xml", b"<Types/>", b"ppt/presentation.xml");
        assert_eq!(sniff(&pptx), Some(DocumentKind::Pptx));
        let odt = zip_with_first_entry(b"mimetype", b"application/vnd.oasis.opendocument.text", b"");
        assert_eq!(sniff(&odt), Some(DocumentKind::Odt));
        let ods = zip_with_first_entry(b"mimetype", b"application/vnd.oasis.opendocument.spreadsheet", b"");
        assert_eq!(sniff(&ods), Some(DocumentKind::Ods));
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            &b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff"[..], // Windows executable
            b"\x7fELF\x02\x01\x01\0",                     // Linux executable
            b"<!DOCTYPE html><html><script>alert(1)</script>",
            b"  <svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
            b"<?xml version='1.0'?><svg/>",
            b"#!/bin/sh\nrm -rf /\0",
            b"",
            b"   \n",
            b"\xca\xfe\xba\xbe", // Mach-O / Java class
            b"hello\x1b[31m",    // terminal escape
        ] {
            assert_eq!(sniff(bad), None, "{bad:?}");
        }
        // A zip that is neither OOXML nor ODF, and office look-alikes with the wrong entries.
        assert_eq!(sniff(&zip_with_first_entry(b"setup.exe", b"MZ", b"")), None);
        assert_eq!(sniff(&zip_with_first_entry(b"[Content_Types].xml", b"<Types/>", b"other/x.xml")), None);
        assert_eq!(sniff(&zip_with_first_entry(b"mimetype", b"application/x-msdownload", b"")), None);
        assert_eq!(sniff(b"PK\x03\x04\0"), None, "truncated zip");
    }

    #[test]
    fn names_keep_only_a_safe_last_component_with_the_detected_extension() {
        use DocumentKind::*;
        assert_eq!(sanitize_file_name("Carta d'identità.pdf", Pdf), "Carta d'identità.pdf");
        assert_eq!(sanitize_file_name("../../etc/passwd", Pdf), "passwd.pdf");
        assert_eq!(sanitize_file_name("C:\\Users\\anna\\ricevuta.PDF", Pdf), "ricevuta.pdf");
        assert_eq!(sanitize_file_name("a\u{202e}fdp.exe", Pdf), "afdp.pdf");
        assert_eq!(sanitize_file_name("virus.exe", Pdf), "virus.pdf");
        assert_eq!(sanitize_file_name(".htaccess", Text), "htaccess.txt");
        assert_eq!(sanitize_file_name("...", Png), "documento.png");
        assert_eq!(sanitize_file_name("", Png), "documento.png");
        assert_eq!(sanitize_file_name("foto.jpeg", Jpeg), "foto.jpeg");
        assert_eq!(sanitize_file_name("foto.png", Jpeg), "foto.jpg");
        assert_eq!(sanitize_file_name("a<b>:c\"d|e?f*g.pdf", Pdf), "a_b__c_d_e_f_g.pdf");
        assert_eq!(sanitize_file_name("riga\r\nX-Header: y.pdf", Pdf), "rigaX-Header_ y.pdf");
        assert_eq!(sanitize_file_name("CON.pdf", Pdf), "_CON.pdf");
        assert_eq!(sanitize_file_name("lpt1", Pdf), "_lpt1.pdf");
        assert_eq!(sanitize_file_name("verbale.2024.03.odt", Odt), "verbale.2024.03.odt");
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let long = format!("{}.pdf", "è".repeat(300));
        let name = sanitize_file_name(&long, DocumentKind::Pdf);
        assert_eq!(name.chars().count(), MAX_STEM_CHARS + 4);
        assert!(name.ends_with(".pdf"));
        let long_ext = format!("x.{}", "a".repeat(300));
        assert!(sanitize_file_name(&long_ext, DocumentKind::Pdf).chars().count() <= MAX_STEM_CHARS + 4);
    }

    #[test]
    fn no_sanitized_name_has_dangerous_characters() {
        let hostile = ["/", "\\", "..", "\0", "\u{202e}", "\u{200b}", "a/../b", "\u{feff}.pdf", " . ", "\n"];
        for a in hostile {
            for b in hostile {
                let name = sanitize_file_name(&format!("{a}x{b}y{a}"), DocumentKind::Pdf);
                assert!(!name.starts_with('.'), "{name:?}");
                assert!(!name.contains(['/', '\\', '\0', '\u{202e}', '\u{200b}', '\n']), "{name:?}");
                assert!(name.ends_with(".pdf"), "{name:?}");
            }
        }
    }
}
