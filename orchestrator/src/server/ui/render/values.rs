//! How one value is shown in a cell: times, rates, hours in a stage, long text clipped with the
//! whole in its `title`, and params as `key=value` codes.

use chrono::{DateTime, Utc};

use super::escape::escape;

pub(super) fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub(super) fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_string(), |r| format!("{:.1} %", r * 100.0))
}

pub(super) fn hours(h: f64) -> String {
    if h >= 48.0 {
        format!("{:.1} d", h / 24.0)
    } else {
        format!("{h:.1} h")
    }
}

/// Longest value shown whole in a table cell; a longer one is cut, whole in its `title`.
const CLIP: usize = 64;

/// `text` escaped; past `max` characters cut with `…`, the whole text in a `title` (hover).
fn clipped(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return escape(text);
    }
    let head: String = text.chars().take(max).collect();
    format!(
        "<span class=\"clip\" title=\"{}\">{}…</span>",
        escape(text),
        escape(&head)
    )
}

pub(super) fn params(p: &std::collections::BTreeMap<String, String>) -> String {
    if p.is_empty() {
        return "—".into();
    }
    let items: Vec<String> = p
        .iter()
        .map(|(k, v)| format!("<code>{}={}</code>", escape(k), clipped(v, CLIP)))
        .collect();
    items.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_with_the_whole_in_the_title() {
        assert_eq!(clipped("short <b>", 64), "short &lt;b&gt;");
        let long = format!("{}<x>", "a".repeat(70));
        assert_eq!(
            clipped(&long, 64),
            format!(
                "<span class=\"clip\" title=\"{}&lt;x&gt;\">{}…</span>",
                "a".repeat(70),
                "a".repeat(64)
            )
        );
    }
}
