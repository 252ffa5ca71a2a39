//! What the fuzz targets share: oracles written apart from the code they check.

/// Lines as YAML counts them (and so every position rootfix reports): LF, CRLF and a lone CR each
/// end one. Counted here on its own, not with rootfix's `TextEnd`, so a bug there cannot hide.
pub fn yaml_lines(text: &str) -> usize {
    1 + text
        .replace("\r\n", "\n")
        .chars()
        .filter(|c| matches!(c, '\n' | '\r'))
        .count()
}
