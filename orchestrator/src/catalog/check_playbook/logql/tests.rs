use super::*;
use crate::model::template::Variable;

fn check(query: &str) -> Vec<QueryProblem> {
    check_logql(&Template::parse(query, &[Variable::Label]).unwrap())
}

fn accepted(query: &str) {
    assert_eq!(check(query), Vec::new(), "{query}");
}

/// Refused with one problem at `column` (`None`: the whole value) whose message contains `says`.
fn refused(query: &str, column: Option<usize>, says: &str) {
    let problems = check(query);
    assert_eq!(problems.len(), 1, "{query}: {problems:?}");
    assert_eq!(problems[0].column, column, "{query}: {problems:?}");
    assert!(
        problems[0].message.contains(says),
        "{query}: {}",
        problems[0].message
    );
}

#[test]
fn the_grammar_accepts_loki_queries() {
    for q in [
        r#"{service="x"}"#,
        r#"{service="x", pod=~"a.*", ns!="b", c!~`d`}"#,
        r#"sum(count_over_time({service="x"} |~ "timeout.*payment" [5m]))"#,
        r#"sum(count_over_time({service="x"} |= "Connection leak detection triggered" [15m]))"#,
        r#"{a="b"} |= "x" or "y" != `z` |~ "r" !~ "s" |> "<_> p" !> "q" |= ip("10.0.0.0/8")"#,
        r#"{a="b"} | json | logfmt --strict | unpack | decolorize"#,
        r#"{a="b"} | json first="a.b", second="c" | logfmt x, y="z""#,
        r#"{a="b"} | regexp "(?P<code>\\d+)" | pattern `<ip> - <_>`"#,
        r#"{a="b"} | json | status >= 500 and path =~ "/api.*" or (level="error", x!="y") | latency > 1s | size <= 10KB | n == -1"#,
        r#"{a="b"} | logfmt | a="b" c="d" | line_format "{{.msg}}" | label_format x=y, z="{{.a}}""#,
        r#"{a="b"} | drop x, y="z" | keep a"#,
        r#"quantile_over_time(0.99, {a="b"} | json | unwrap duration(latency) [1m]) by (pod)"#,
        r#"sum by (pod) (rate({a="b"}[5m] |= "x" offset 1h)) / on (pod) group_left sum(bytes_rate({a="b"}[1m]))"#,
        r#"topk(3, sum without (x) (count_over_time({a="b"}[5m]))) > bool 2 or vector(0)"#,
        r#"label_replace(rate({a="b"}[1m]), "dst", "$1", "src", "(.*)") # a comment"#,
        r#"-sum(rate({a="b"}[1m])) * 2 ^ 3 % 4"#,
    ] {
        assert!(recognise(q).is_ok(), "{q}: {:?}", recognise(q));
    }
}

#[test]
fn the_grammar_refuses_what_loki_refuses() {
    for (q, says) in [
        (r#"count_over_time(service="x" [5m])"#, "needs a stream selector"),
        (r#"sum(count_over_time({service="x"}[5m])"#, "unclosed `(`"),
        (r#"{service="x"}]"#, "unbalanced `]`"),
        (r#"{service="x"} |~ "unterminated"#, "unterminated string"),
        (r#"{service=x}"#, "expected a string"),
        (r#"{service='x'}"#, "double quotes or backticks"),
        (r#"{}"#, "expected a label name"),
        (r#"count_over_time({a="b"})"#, "expected `[`"),
        (r#"sum({a="b"})"#, "metric query to aggregate"),
        (r#"{a="b"} + 1"#, "metric queries on both sides"),
        (r#"{a="b"} |= "x" "y""#, "the end of the query"),
        (
            r#"{a="b"} | unwrap foo(x)"#,
            "bytes, duration or duration_seconds",
        ),
        (r#"nosuch({a="b"})"#, "a selector, a function or a number"),
        (r#"{a="b"} ; 1"#, "unexpected `;`"),
    ] {
        let e = recognise(q).unwrap_err();
        assert!(e.message.contains(says), "{q}: {}", e.message);
    }
}

#[test]
fn placeholders_in_values_are_accepted() {
    accepted(r#"{service="{{ $labels.x }}"}"#);
    accepted(
        r#"sum(count_over_time({service="{{ $labels.x }}", pod!="{{ $labels.x }}-0"} |= "a{{ $labels.x }}b" != "{{ $labels.x }}" [5m]))"#,
    );
    accepted(r#"{a="b"} | json | status="{{ $labels.x }}" | ip = ip("{{ $labels.x }}")"#);
    accepted(r#"{a="b"} |= ip("{{ $labels.x }}") or "{{ $labels.x }}""#);
}

#[test]
fn placeholders_elsewhere_are_refused() {
    let outside = "is outside a string literal";
    refused(r#"{ {{ $labels.x }}="a"}"#, Some(3), outside);
    refused(r#"{a="b"} | {{ $labels.x }}"#, Some(11), outside);
    refused(r#"{a="b"} | json | status > {{ $labels.x }}"#, Some(27), outside);
    refused(r#"count_over_time({a="b"} [{{ $labels.x }}])"#, Some(26), outside);
    refused(
        r#"count_over_time({a="b"}[5m] offset {{ $labels.x }})"#,
        Some(36),
        outside,
    );
    refused(
        r#"sum by ({{ $labels.x }}) (rate({a="b"}[1m]))"#,
        Some(9),
        outside,
    );
    refused(r#"{a="b"} |= "x" # {{ $labels.x }}"#, Some(18), outside);
    refused(r#"{{ $labels.x }}"#, Some(1), outside);
    refused(r#"{a=`{{ $labels.x }}`}"#, Some(5), "backtick");
    refused(r#"{a="b"} |= `{{ $labels.x }}`"#, Some(13), "backtick");
    refused(r#"{a='{{ $labels.x }}'}"#, Some(5), "'-quoted");
    refused(r#"{a="\{{ $labels.x }}"}"#, Some(6), "follows a backslash");
}

#[test]
fn placeholders_in_strings_read_as_more_than_a_value_are_refused() {
    // line_format and label_format are Go templates Loki executes; regexp and pattern decide the
    // labels; json/logfmt expressions and label_replace's arguments are not plain values.
    refused(
        r#"{a="b"} | line_format "{{ $labels.x }}""#,
        Some(24),
        "a line_format template",
    );
    refused(
        r#"{a="b"} | label_format y="{{ $labels.x }}""#,
        Some(27),
        "a label_format template",
    );
    refused(
        r#"{a="b"} | regexp "(?P<a>{{ $labels.x }})""#,
        Some(25),
        "a regexp parser's expression",
    );
    refused(
        r#"{a="b"} | pattern "<_> {{ $labels.x }}""#,
        Some(24),
        "a pattern parser's expression",
    );
    refused(
        r#"{a="b"} | json y="{{ $labels.x }}""#,
        Some(19),
        "an extraction expression",
    );
    refused(
        r#"label_replace(rate({a="b"}[1m]), "d", "{{ $labels.x }}", "s", "")"#,
        Some(40),
        "a label_replace argument",
    );
}

#[test]
fn grammar_errors_point_into_the_template() {
    // The position maps back through the placeholder, which is longer than its stand-in.
    refused(
        r#"{a="{{ $labels.x }}"} |= "x" "y""#,
        Some(30),
        "the end of the query",
    );
    refused(r#"count_over_time(a="b" [5m])"#, None, "needs a stream selector");
}

#[test]
fn shapes_leave_string_contents_out() {
    assert_eq!(
        shape(r#"{a="x\"y"} |= `z`"#).unwrap(),
        ["{", "a", "=", "\"…\"", "}", "|=", "`…`"]
    );
}
