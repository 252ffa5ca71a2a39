//! Property tests of query safety: for any label value, a query template the catalog accepts,
//! rendered as the evidence providers render it (`escape_query_string`), still parses and has the
//! same syntax tree (PromQL, promql-parser) or token shape (LogQL, the recogniser) as with a
//! harmless value; in PromQL every string value also reads back as exactly what was inserted.

use std::collections::BTreeMap;

use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use proptest::prelude::*;

use super::logql::{check_logql, recognise, shape};
use super::promql::{StringPlace, check_promql, marker, visit_strings};
use crate::model::template::{Template, Variable, escape_query_string};

/// How many values each property tries.
const CASES: u32 = 512;

const PROMQL: [&str; 5] = [
    r#"sum(rate(node_netstat_Tcp_RetransSegs{service="{{ $labels.service }}"}[5m])) / sum(rate(node_netstat_Tcp_OutSegs{service="{{ $labels.service }}"}[5m]))"#,
    r#"histogram_quantile(0.99, sum by (le) (rate(h_bucket{service="{{ $labels.service }}", pod!="{{ $labels.pod }}", le=~"0.5|1"}[5m])))"#,
    r#"label_replace(up{job="{{ $labels.job }}"}, "dst", "{{ $labels.service }}", "src", "(.*)") or vector(0)"#,
    r#"max(up{service="a-{{ $labels.service }}-{{ $labels.pod }}\n"} offset 5m) > 0 # {{ note }}"#,
    r#"sum(increase(x_total{instance="{{ $labels.service | default "none" }}"}[30s])) or vector(0)"#,
];

const LOGQL: [&str; 5] = [
    r#"sum(count_over_time({service="{{ $labels.service }}"} |~ "timeout.*payment" [5m]))"#,
    r#"sum(count_over_time({service="{{ $labels.service }}"} |= "Connection leak detection triggered" [15m]))"#,
    r#"sum by (pod) (rate({service="{{ $labels.service }}", pod!="{{ $labels.pod }}"} |= "{{ $labels.service }}" | json | level="{{ $labels.pod }}" [1m]))"#,
    r#"{job="{{ $labels.job }}"} != "a{{ $labels.service }}b" |= ip("{{ $labels.pod }}") | logfmt | n > 5 or m="{{ $labels.job }}""#,
    r#"topk(3, sum_over_time({a="b"} | json | x!="\t{{ $labels.service }}" | unwrap bytes(size) [5m]))"#,
];

fn template(text: &str) -> Template {
    // `{{ note }}` in a PromQL comment is not a placeholder the template parser knows.
    let text = text.replace("{{ note }}", "note");
    Template::parse(&text, &[Variable::Label]).unwrap()
}

fn render(t: &Template, service: &str, pod: &str, job: &str) -> String {
    let labels = BTreeMap::from([
        ("service".to_string(), service.to_string()),
        ("pod".to_string(), pod.to_string()),
        ("job".to_string(), job.to_string()),
    ]);
    t.render(&labels, &BTreeMap::new(), escape_query_string).unwrap()
}

/// A label value: any characters, with the ones that matter to PromQL and LogQL more often.
fn label_value() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '"', '\\', '\n', '\r', '\t', '}', '{', '|', '`', '\'', '#', '[', ']', '(', ')', ',', '=', '~', '!',
        'u', 'x', '0', 'é', '€', '💥', '\u{0}', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}',
    ]);
    prop::collection::vec(prop_oneof![3 => any::<char>(), 2 => special], 0..24)
        .prop_map(|chars| chars.into_iter().collect())
}

/// The tree with every string value, and every regex, left out.
fn promql_shape(query: &str) -> String {
    let mut expr = promql_parser::parser::parse(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    visit_strings(&mut expr, &mut |place| match place {
        StringPlace::Matcher(m) => {
            m.value.clear();
            if matches!(m.op, MatchOp::Re(_) | MatchOp::NotRe(_)) {
                m.op = MatchOp::Equal;
            }
        }
        StringPlace::Literal(s) => s.clear(),
    });
    format!("{expr:?}")
}

fn promql_values(query: &str) -> Vec<String> {
    let mut expr: Expr = promql_parser::parser::parse(query).unwrap();
    let mut out = Vec::new();
    visit_strings(&mut expr, &mut |place| match place {
        StringPlace::Matcher(m) => out.push(m.value.clone()),
        StringPlace::Literal(s) => out.push(s.clone()),
    });
    out
}

#[test]
fn the_templates_of_the_properties_are_accepted() {
    for q in PROMQL {
        assert_eq!(check_promql(&template(q)), Vec::new(), "{q}");
    }
    for q in LOGQL {
        assert_eq!(check_logql(&template(q)), Vec::new(), "{q}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_label_value_keeps_a_promql_query_s_tree(
        which in 0..PROMQL.len(),
        service in label_value(),
        pod in label_value(),
        job in label_value(),
    ) {
        let t = template(PROMQL[which]);
        let hostile = render(&t, &service, &pod, &job);
        prop_assert_eq!(promql_shape(&hostile), promql_shape(&render(&t, "x", "x", "x")));
        // Each string reads back as what was inserted: the value stayed inside its literal.
        let mut expected = promql_values(&t.render_marked(marker).text);
        for (i, p) in t.render_marked(marker).placeholders.iter().enumerate() {
            let value = match p.reference.as_str() {
                "$labels.service" => &service,
                "$labels.pod" => &pod,
                _ => &job,
            };
            for v in &mut expected {
                *v = v.replace(&marker(i), value);
            }
        }
        prop_assert_eq!(promql_values(&hostile), expected);
    }

    #[test]
    fn any_label_value_keeps_a_logql_query_s_shape(
        which in 0..LOGQL.len(),
        service in label_value(),
        pod in label_value(),
        job in label_value(),
    ) {
        let t = template(LOGQL[which]);
        let hostile = render(&t, &service, &pod, &job);
        prop_assert!(recognise(&hostile).is_ok(), "{hostile}: {:?}", recognise(&hostile));
        prop_assert_eq!(shape(&hostile).unwrap(), shape(&render(&t, "x", "x", "x")).unwrap());
    }
}
