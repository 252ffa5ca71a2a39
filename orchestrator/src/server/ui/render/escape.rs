//! Making values safe for the page: [`escape`] for HTML text and quoted attributes, [`seg`] and
//! [`path_segment`] for ids in URLs, [`back_to`] for where a form returns, and the hidden CSRF
//! field every form carries.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// The text made safe for HTML text and quoted attribute values.
pub fn escape(s: &str) -> String {
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

/// Characters kept in a URL path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// An id as one URL path segment (for a `Location` header).
pub fn path_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// An id as one URL path segment, escaped for an attribute.
pub fn seg(s: &str) -> String {
    escape(&path_segment(s))
}

/// Where a form sends the browser back to: the incident page it was posted from (`back` is that
/// incident's id), else the dashboard. Always a path of this page, whatever `back` holds.
pub fn back_to(back: &str) -> String {
    let back = back.trim();
    if back.is_empty() {
        "/ui/".into()
    } else {
        format!("/ui/incidents/{}", path_segment(back))
    }
}

pub(super) fn csrf_field(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(csrf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<script>alert(\"x\")</script> & 'y'"),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(seg("inc-1/../x y"), "inc-1%2F..%2Fx%20y");
    }

    #[test]
    fn forms_return_only_to_this_page() {
        assert_eq!(back_to(""), "/ui/");
        assert_eq!(back_to("inc-1-0"), "/ui/incidents/inc-1-0");
        assert_eq!(
            back_to("//evil.example/x"),
            "/ui/incidents/%2F%2Fevil.example%2Fx"
        );
        assert_eq!(
            back_to("https://evil.example"),
            "/ui/incidents/https%3A%2F%2Fevil.example"
        );
    }
}
