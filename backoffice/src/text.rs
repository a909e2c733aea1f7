//! [`Text`]: a message for a person, in Italian and English — what the back office stores or
//! mails and what the HTTP edge answers in the request's language.

use sportello_domain::booking::Lang;

/// A message for the person using the page, in Italian and English: built from an `(it, en)` pair,
/// e.g. `ApiError::bad_request("invalid_note", ("La nota è troppo lunga.", "The note is too long."))`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub it: String,
    pub en: String,
}

impl Text {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::It => &self.it,
            Lang::En => &self.en,
        }
    }
}

impl<I: Into<String>, E: Into<String>> From<(I, E)> for Text {
    fn from((it, en): (I, E)) -> Text {
        Text { it: it.into(), en: en.into() }
    }
}

/// Logs show the Italian text.
impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.it)
    }
}

/// HTML text escaping (element content and quoted attribute values) for what comes from the
/// database or a person: pages built on the server and HTML emails.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
