//! Parsing of the small value types that files hold as text: durations, sizes, names.

use std::time::Duration;

/// `30s`, `5m`, `1h30m`, `250ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| format!("`{text}` is not a duration; write e.g. 250ms, 30s, 5m, 1h30m"))
}

/// `64Mi`, `1Gi`, `500M`, `1048576`.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let multiplier: u64 = match unit {
        "" => 1,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return Err(format!("`{text}` is not a memory size; write e.g. 64Mi or 1Gi")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("`{text}` is not a memory size; write e.g. 64Mi or 1Gi"))
}

/// Object names: lowercase letters, digits and `-`, starting and ending with a letter or digit.
pub fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Identifiers (node ids, signal names, params): lowercase letters, digits and `_`, not starting
/// with a digit. They are read in CEL as `evidence.<name>`, so they must be CEL identifiers.
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("3 parsecs").is_err());
        assert_eq!(parse_memory("64Mi"), Ok(64 << 20));
        assert!(parse_memory("64MB").is_err());
        assert!(parse_memory("0").is_err());
    }

    #[test]
    fn names() {
        assert!(is_object_name("order-service-timeout"));
        assert!(!is_object_name("Order"));
        assert!(is_identifier("jvm_heap"));
        assert!(!is_identifier("jvm-heap"));
        assert!(!is_identifier("1x"));
    }
}
