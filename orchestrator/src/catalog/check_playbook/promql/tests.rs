use super::*;
use crate::model::template::Variable;

fn check(query: &str) -> Vec<QueryProblem> {
    check_promql(&Template::parse(query, &[Variable::Label]).unwrap())
}

fn accepted(query: &str) {
    assert_eq!(check(query), Vec::new(), "{query}");
}

/// Refused with one problem at `column` whose message contains `says`.
fn refused(query: &str, column: usize, says: &str) {
    let problems = check(query);
    assert_eq!(problems.len(), 1, "{query}: {problems:?}");
    assert_eq!(problems[0].column, Some(column), "{query}: {problems:?}");
    assert!(
        problems[0].message.contains(says),
        "{query}: {}",
        problems[0].message
    );
    assert!(
        problems[0].message.contains("`{{ $labels.x }}`"),
        "{query}: names the placeholder: {}",
        problems[0].message
    );
}

#[test]
fn double_quoted_values_and_string_arguments_are_accepted() {
    accepted(r#"up{service="{{ $labels.x }}"}"#);
    accepted(r#"up{service="{{ $labels.x }}-0", pod!="a{{ $labels.x }}b", x=~"a.*"}"#);
    accepted(r#"sum by (le) (rate(h_bucket{service="{{ $labels.x }}"}[5m])) / 2"#);
    accepted(r#"label_replace(up, "dst", "{{ $labels.x }}", "src", "(.*)")"#);
    accepted(r#"up{a="\\{{ $labels.x }}"}"#);
    accepted(r#"up{a="{{ $labels.x }}"} or on() vector(0) # {service="x"}"#);
    accepted("max(up)");
}

#[test]
fn single_quotes_backticks_and_escapes_are_refused() {
    refused("up{service='{{ $labels.x }}'}", 13, "'-quoted string");
    refused("up{service=`{{ $labels.x }}`}", 13, "backtick");
    refused(r#"up{service="\{{ $labels.x }}"}"#, 14, "follows a backslash");
    refused(r#"up{service="\x4{{ $labels.x }}"}"#, 16, "follows a backslash");
    refused(
        r#"label_replace(up, "a", '{{ $labels.x }}', "b", "")"#,
        25,
        "'-quoted",
    );
}

#[test]
fn placeholders_outside_a_string_are_refused() {
    let outside = "is outside a string literal";
    // Bare, a metric name, a label name, a function, `by (...)`, a range, `offset`, a number.
    refused("{{ $labels.x }}", 1, outside);
    refused("{{ $labels.x }}_total", 1, outside);
    refused(r#"up{ {{ $labels.x }}="a"}"#, 5, outside);
    refused("{{ $labels.x }}(up)", 1, outside);
    refused("sum by ({{ $labels.x }}) (up)", 9, outside);
    refused("rate(up[{{ $labels.x }}])", 9, outside);
    refused("up offset {{ $labels.x }}", 11, outside);
    refused("up > {{ $labels.x }}", 6, outside);
    refused(r#"up{a="b"} or {{ $labels.x }}"#, 14, outside);
    refused("up # {{ $labels.x }}", 6, outside);
}

#[test]
fn every_misplaced_placeholder_is_reported() {
    let problems = check(r#"{{ $labels.x }}{a='{{ $labels.y }}', b="{{ $labels.z }}"}"#);
    let columns: Vec<_> = problems.iter().map(|p| p.column).collect();
    assert_eq!(columns, [Some(1), Some(20)]);
}

#[test]
fn a_quoted_name_is_not_a_value() {
    // Prometheus 3 quotes UTF-8 metric and label names; a placeholder there names what is read.
    refused(r#"{"{{ $labels.x }}"="c"}"#, 3, "reads as a name");
    refused(r#"{"{{ $labels.x }}"}"#, 3, "reads as a name");
    refused(r#"{__name__="{{ $labels.x }}"}"#, 12, "reads as a name");
    refused(r#"sum by ("{{ $labels.x }}") (up)"#, 10, "reads as a name");
}

#[test]
fn a_regular_expression_is_not_a_value() {
    refused(r#"up{service=~"{{ $labels.x }}-.*"}"#, 14, "regular expression");
    refused(r#"up{service!~"{{ $labels.x }}"}"#, 14, "regular expression");
}

#[test]
fn a_query_that_does_not_parse_is_reported_at_the_value() {
    let problems = check(r#"max(up{service="{{ $labels.x }}"}"#);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].column, None);
    assert!(problems[0].message.starts_with("PromQL does not parse"));
}

#[test]
fn escape_lengths_follow_go() {
    assert_eq!(escape_len(r"\n", 0), 2);
    assert_eq!(escape_len(r"\x41", 0), 4);
    assert_eq!(escape_len(r"\u00e9", 0), 6);
    assert_eq!(escape_len(r"\101", 0), 4);
    assert_eq!(escape_len(r"\", 0), 1);
}
