//! The municipality's crest, as an administrator uploads it: a PNG (checked to be one) or an SVG
//! written back with only what a picture needs. Every page shows it, so an SVG must not carry
//! script, event handlers, links out, external references, styles or entities: it is read as XML
//! and only known drawing elements and presentation attributes are kept — an allow-list, so what
//! SVG adds tomorrow is dropped until someone decides otherwise.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// Largest crest accepted (an emblem, not a photograph).
pub const MAX_BYTES: usize = 512 * 1024;
/// Largest PNG side, in pixels.
pub const MAX_PNG_SIDE: u32 = 4096;
/// How deep an SVG may nest.
const MAX_DEPTH: usize = 64;

pub const SVG: &str = "image/svg+xml";
pub const PNG: &str = "image/png";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CrestError {
    #[error("the crest is larger than {MAX_BYTES} bytes")]
    TooLarge,
    #[error("a crest is an SVG or PNG image, not {0:?}")]
    Type(String),
    #[error("not a PNG image")]
    NotPng,
    #[error("the PNG is larger than {MAX_PNG_SIDE}×{MAX_PNG_SIDE} pixels or empty")]
    PngSize,
    #[error("not an SVG image: {0}")]
    NotSvg(String),
}

/// The bytes to store and serve for an upload of `content_type`.
pub fn sanitise(content_type: &str, bytes: &[u8]) -> Result<Vec<u8>, CrestError> {
    if bytes.len() > MAX_BYTES {
        return Err(CrestError::TooLarge);
    }
    match content_type.split(';').next().unwrap_or_default().trim() {
        PNG => png(bytes).map(|()| bytes.to_vec()),
        SVG => svg(bytes).map(String::into_bytes),
        other => Err(CrestError::Type(other.to_owned())),
    }
}

/// A PNG's signature and header: the browser decodes it as an `<img>`, which runs nothing.
fn png(bytes: &[u8]) -> Result<(), CrestError> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 33 || !bytes.starts_with(SIGNATURE) || &bytes[12..16] != b"IHDR" {
        return Err(CrestError::NotPng);
    }
    let side = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    let (width, height) = (side(16), side(20));
    if width == 0 || height == 0 || width > MAX_PNG_SIDE || height > MAX_PNG_SIDE {
        return Err(CrestError::PngSize);
    }
    Ok(())
}

const ELEMENTS: &[&str] = &[
    "svg",
    "g",
    "path",
    "rect",
    "circle",
    "ellipse",
    "line",
    "polyline",
    "polygon",
    "text",
    "tspan",
    "defs",
    "linearGradient",
    "radialGradient",
    "stop",
    "clipPath",
    "mask",
    "symbol",
    "use",
    "title",
    "desc",
];

const ATTRIBUTES: &[&str] = &[
    "id",
    "d",
    "x",
    "y",
    "x1",
    "y1",
    "x2",
    "y2",
    "cx",
    "cy",
    "r",
    "rx",
    "ry",
    "fx",
    "fy",
    "width",
    "height",
    "viewBox",
    "points",
    "transform",
    "preserveAspectRatio",
    "version",
    "xmlns",
    "xmlns:xlink",
    "fill",
    "fill-opacity",
    "fill-rule",
    "stroke",
    "stroke-width",
    "stroke-linecap",
    "stroke-linejoin",
    "stroke-miterlimit",
    "stroke-dasharray",
    "stroke-dashoffset",
    "stroke-opacity",
    "opacity",
    "offset",
    "stop-color",
    "stop-opacity",
    "gradientUnits",
    "gradientTransform",
    "spreadMethod",
    "clip-path",
    "clip-rule",
    "clipPathUnits",
    "mask",
    "maskUnits",
    "maskContentUnits",
    "font-family",
    "font-size",
    "font-weight",
    "font-style",
    "text-anchor",
    "dominant-baseline",
    "letter-spacing",
    "display",
    "visibility",
    "href",
    "xlink:href",
    "dx",
    "dy",
    "role",
    "aria-label",
];

/// A value that may refer only inside the document: `#id` for `href`, `url(#id)` elsewhere.
fn value_allowed(name: &str, value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if name.ends_with("href") {
        return value.starts_with('#');
    }
    if lower.contains("url(") {
        // Only `url(#id)`, as many times as it appears.
        return lower.match_indices("url(").all(|(at, _)| lower[at + 4..].trim_start().starts_with('#'));
    }
    !lower.contains("javascript:") && !lower.contains("data:") && !lower.contains("expression(")
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

fn open_tag(e: &BytesStart<'_>, out: &mut String) -> Result<(), CrestError> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    out.push('<');
    out.push_str(&name);
    for attr in e.attributes() {
        let attr = attr.map_err(|err| CrestError::NotSvg(err.to_string()))?;
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        if !ATTRIBUTES.contains(&key.as_str()) {
            continue;
        }
        let value = attr.unescape_value().map_err(|err| CrestError::NotSvg(err.to_string()))?;
        if value_allowed(&key, &value) {
            out.push_str(&format!(" {key}=\"{}\"", escape(&value)));
        }
    }
    Ok(())
}

/// The SVG written back with the allow-listed elements and attributes; everything inside an
/// element that is not allowed is dropped with it.
fn svg(bytes: &[u8]) -> Result<String, CrestError> {
    let text = std::str::from_utf8(bytes).map_err(|_| CrestError::NotSvg("not UTF-8".into()))?;
    let mut reader = Reader::from_str(text);
    let mut out = String::with_capacity(text.len());
    // Open elements: whether each is kept.
    let mut open: Vec<bool> = Vec::new();
    let mut skipping = 0usize;
    let mut root_seen = false;
    loop {
        let event = reader.read_event().map_err(|e| CrestError::NotSvg(e.to_string()))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                if !root_seen {
                    if name != "svg" {
                        return Err(CrestError::NotSvg(format!("the root element is <{name}>, not <svg>")));
                    }
                    root_seen = true;
                } else if open.is_empty() {
                    return Err(CrestError::NotSvg("more than one root element".into()));
                }
                let keep = skipping == 0 && ELEMENTS.contains(&name.as_str());
                if keep {
                    let at = out.len();
                    open_tag(e, &mut out)?;
                    // An `<img>` shows an SVG only in the SVG namespace.
                    if open.is_empty() && !out[at..].contains(" xmlns=\"") {
                        out.push_str(" xmlns=\"http://www.w3.org/2000/svg\"");
                    }
                    out.push_str(if empty { "/>" } else { ">" });
                }
                if !empty {
                    if !keep {
                        skipping += 1;
                    }
                    open.push(keep);
                    if open.len() > MAX_DEPTH {
                        return Err(CrestError::NotSvg("nested too deep".into()));
                    }
                }
            }
            Event::End(ref e) => match open.pop() {
                Some(true) => {
                    out.push_str("</");
                    out.push_str(&String::from_utf8_lossy(e.name().as_ref()));
                    out.push('>');
                }
                Some(false) => skipping -= 1,
                None => return Err(CrestError::NotSvg("an end tag without its start".into())),
            },
            Event::Text(ref t) if skipping == 0 && !open.is_empty() => {
                out.push_str(&escape(&t.decode().map_err(|e| CrestError::NotSvg(e.to_string()))?));
            }
            Event::GeneralRef(ref r) if skipping == 0 && !open.is_empty() => {
                // Character references and XML's five entities only (no DOCTYPE is kept to define more).
                let name = r.decode().map_err(|e| CrestError::NotSvg(e.to_string()))?;
                let numeric = name.strip_prefix('#').is_some_and(|n| {
                    n.strip_prefix('x')
                        .map_or(n.chars().all(|c| c.is_ascii_digit()), |h| h.chars().all(|c| c.is_ascii_hexdigit()))
                });
                if numeric || ["lt", "gt", "amp", "quot", "apos"].contains(&name.as_ref()) {
                    out.push_str(&format!("&{name};"));
                }
            }
            Event::Eof => break,
            // Declarations, comments, CDATA, processing instructions, DOCTYPE (and with it every
            // entity it could define): dropped.
            _ => {}
        }
    }
    if !root_seen || !open.is_empty() {
        return Err(CrestError::NotSvg("the document is incomplete".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(svg: &str) -> String {
        String::from_utf8(sanitise(SVG, svg.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn a_plain_emblem_keeps_its_drawing() {
        let emblem = r##"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><title>Stemma &amp; co</title><defs><linearGradient id="g"><stop offset="0" stop-color="#c00"/></linearGradient></defs><path d="M0 0h10v10z" fill="url(#g)"/></svg>"##;
        assert_eq!(
            clean(emblem),
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><title>Stemma &amp; co</title><defs><linearGradient id="g"><stop offset="0" stop-color="#c00"/></linearGradient></defs><path d="M0 0h10v10z" fill="url(#g)"/></svg>"##
        );
    }

    #[test]
    fn script_handlers_links_styles_and_external_references_are_dropped() {
        let hostile = r##"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script><style>@import url(https://evil.example/x.css);</style><a href="javascript:alert(3)"><circle r="1"/></a><foreignObject><iframe src="https://evil.example"/></foreignObject><image href="https://evil.example/p.png"/><use href="https://evil.example/s.svg#x"/><use xlink:href="#ok"/><rect width="1" fill="url(https://evil.example/f)" style="fill:url(https://evil.example)" onclick="x()"/></svg>"##;
        let out = clean(hostile);
        assert_eq!(
            out,
            r##"<svg xmlns="http://www.w3.org/2000/svg"><use/><use xlink:href="#ok"/><rect width="1"/></svg>"##
        );
        for gone in ["script", "alert", "evil", "style", "onload", "onclick", "<a", "foreignObject", "image"] {
            assert!(!out.contains(gone), "{gone}: {out}");
        }
    }

    #[test]
    fn entities_cannot_be_defined() {
        let laughs = r#"<!DOCTYPE svg [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><svg xmlns="http://www.w3.org/2000/svg"><text>&lol2;&#65;</text></svg>"#;
        assert_eq!(clean(laughs), r#"<svg xmlns="http://www.w3.org/2000/svg"><text>&#65;</text></svg>"#);
    }

    #[test]
    fn what_is_not_a_crest_is_refused_with_its_reason() {
        assert!(matches!(sanitise(SVG, b"<html><body/></html>"), Err(CrestError::NotSvg(_))));
        assert!(matches!(sanitise(SVG, b"<svg><g></svg>"), Err(CrestError::NotSvg(_))));
        assert!(matches!(sanitise(SVG, b"<svg/><svg/>"), Err(CrestError::NotSvg(_))));
        assert!(matches!(sanitise(SVG, b"plain text"), Err(CrestError::NotSvg(_))));
        assert_eq!(sanitise("image/gif", b"GIF89a"), Err(CrestError::Type("image/gif".into())));
        assert_eq!(sanitise(PNG, b"<svg/>"), Err(CrestError::NotPng));
        assert_eq!(sanitise(PNG, &vec![0; MAX_BYTES + 1]), Err(CrestError::TooLarge));
        let deep = format!("<svg>{}{}</svg>", "<g>".repeat(100), "</g>".repeat(100));
        assert!(matches!(sanitise(SVG, deep.as_bytes()), Err(CrestError::NotSvg(_))));
    }

    #[test]
    fn a_png_is_checked_by_its_header() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&64u32.to_be_bytes());
        png.extend_from_slice(&48u32.to_be_bytes());
        png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(sanitise(PNG, &png), Ok(png.clone()));
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        assert_eq!(sanitise(PNG, &png), Err(CrestError::PngSize));
    }
}
