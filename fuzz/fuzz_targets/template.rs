//! Template rendering with escaping: the first line is a template, the rest a label value. Any
//! template either parses or is refused; rendered with `escape_query_string` inside a
//! double-quoted PromQL string, any value reads back exactly as itself, so a value can never
//! change the query around it.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use promql_parser::parser::{self, Expr};
use rootfix::model::template::{Template, Variable, escape_query_string};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (source, value) = text.split_once('\n').unwrap_or((text, ""));
    let labels = BTreeMap::from([("service".to_string(), value.to_string())]);
    if let Ok(template) = Template::parse(source, &[Variable::Label, Variable::Param]) {
        let _ = template.render(&labels, &BTreeMap::new(), escape_query_string);
        let _ = template.render_with_stand_in("x");
    }
    let query = Template::parse("up{service=\"{{ $labels.service }}\"}", &[Variable::Label])
        .expect("the fixed template parses");
    let rendered = query
        .render(&labels, &BTreeMap::new(), escape_query_string)
        .expect("the label is given");
    let parsed = parser::parse(&rendered).unwrap_or_else(|e| panic!("{rendered:?} does not parse: {e}"));
    let Expr::VectorSelector(selector) = parsed else {
        panic!("{rendered:?} is not one selector: {parsed:?}");
    };
    let service: Vec<_> = selector
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name == "service")
        .collect();
    assert_eq!(service.len(), 1, "{rendered:?}");
    assert_eq!(service[0].value, value, "{rendered:?}");
});
