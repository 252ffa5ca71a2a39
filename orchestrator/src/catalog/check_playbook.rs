//! Checks one `kind: Playbook` document against the actions it names and builds the run-time
//! [`Playbook`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::parse::ParsedFile;
use super::report::Reporter;
use super::spans::join_index;
use super::values::{is_identifier, is_object_name};
use crate::document::playbook::{NodeSpec, PlaybookDocument, SignalSpec};
use crate::model::action::{Action, Purpose};
use crate::model::condition::{Condition, Scope};
use crate::model::jsonpath::JsonPath;
use crate::model::matcher::{Matcher, first_line};
use crate::model::playbook::{
    ConfidenceRule, Diagnose, HttpMethod, Node, NodeIndex, Playbook, PrunePolicy, Remedy, Signal, SignalKind,
    VerifyCondition, WeightedSignal,
};
use crate::model::template::{Template, Variable};

const DEFAULT_WINDOW: Duration = Duration::from_secs(3);
const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_VERIFY_RETRIES: u32 = 5;
const DEFAULT_VERIFY_INTERVAL: Duration = Duration::from_secs(10);
/// Tolerance when comparing sums of weights written as decimals.
const WEIGHT_EPSILON: f64 = 1e-9;

pub fn check_playbook(
    file: &ParsedFile,
    doc: &PlaybookDocument,
    actions: &BTreeMap<String, Arc<Action>>,
    r: &mut Reporter<'_>,
) -> Option<Playbook> {
    let before = r.problems.len();
    let spec = &doc.spec;
    if !is_object_name(&doc.metadata.name) {
        r.at_value(
            "metadata.name",
            "must be lowercase letters, digits and `-` (at most 63)",
        );
    }

    if spec.matchers.is_empty() {
        r.at_key("spec.match", "needs at least one matcher, e.g. alertname=\"X\"");
    }
    let mut matchers = Vec::new();
    for (i, text) in spec.matchers.iter().enumerate() {
        let field = join_index("spec.match", i);
        match Matcher::parse(text) {
            Ok(m) => matchers.push(m),
            Err(e) => r.inside_value(&field, 1, e.column, e.message),
        }
    }

    let window = r.duration("spec.window", spec.window.as_deref(), DEFAULT_WINDOW);
    let target_service = match &spec.target {
        Some(t) => label_template(r, "spec.target.service", &t.service),
        None => Template::parse("{{ $labels.service }}", &[Variable::Label]).ok(),
    };

    let defaults = PrunePolicy::default();
    let prune_spec = spec.prune.clone().unwrap_or_default();
    let prune = PrunePolicy {
        after: positive(r, "spec.prune.after", prune_spec.after, defaults.after),
        reprobe_every: positive(
            r,
            "spec.prune.reprobe_every",
            prune_spec.reprobe_every,
            defaults.reprobe_every,
        ),
        ttl: r.duration("spec.prune.ttl", prune_spec.ttl.as_deref(), defaults.ttl),
    };

    let mut evidence = BTreeMap::new();
    for (name, signal) in &spec.evidence {
        if let Some(s) = check_signal(r, name, signal) {
            evidence.insert(name.clone(), s);
        }
    }

    let mut walk = TreeCheck {
        r,
        actions,
        declared: spec.evidence.keys().cloned().collect(),
        nodes: Vec::new(),
        ids: HashMap::new(),
    };
    walk.node(&spec.tree, "spec.tree", None, 0, &BTreeSet::new());
    let nodes = walk.nodes;

    if r.problems.len() > before {
        return None;
    }
    Some(Playbook {
        name: doc.metadata.name.clone(),
        description: doc.metadata.description.clone(),
        source: file.path.clone(),
        matchers,
        window,
        target_service: target_service?,
        prune,
        evidence,
        nodes,
    })
}

fn positive(r: &mut Reporter<'_>, field: &str, value: Option<u32>, default: u32) -> u32 {
    match value {
        Some(0) => {
            r.at_value(field, "must be at least 1");
            default
        }
        Some(n) => n,
        None => default,
    }
}

fn label_template(r: &mut Reporter<'_>, field: &str, text: &str) -> Option<Template> {
    match Template::parse(text, &[Variable::Label]) {
        Ok(t) => Some(t),
        Err(e) => {
            r.inside_value(field, 1, e.column, e.message);
            None
        }
    }
}

fn check_signal(r: &mut Reporter<'_>, name: &str, signal: &SignalSpec) -> Option<Signal> {
    let field = format!("spec.evidence.{name}");
    if !is_identifier(name) {
        r.at_key(
            &field,
            "signal names are lowercase letters, digits and `_` (conditions read them as evidence.<name>)",
        );
    }
    let set = [
        signal.prometheus.is_some(),
        signal.loki.is_some(),
        signal.http.is_some(),
        signal.dns.is_some(),
        signal.tcp.is_some(),
        signal.jsonhttp.is_some(),
    ]
    .into_iter()
    .filter(|s| *s)
    .count();
    if set != 1 {
        r.at_key(
            &field,
            "set exactly one of prometheus, loki, http, dns, tcp, jsonhttp",
        );
        return None;
    }
    let timeout = |r: &mut Reporter<'_>, kind: &str, t: &Option<String>| {
        r.duration(
            &format!("{field}.{kind}.timeout"),
            t.as_deref(),
            DEFAULT_PROBE_TIMEOUT,
        )
    };
    let kind = if let Some(q) = &signal.prometheus {
        let qfield = format!("{field}.prometheus.query");
        let query = label_template(r, &qfield, &q.query)?;
        // Placeholders sit inside string literals; a stand-in lets the query be parsed now.
        if let Err(e) = promql_parser::parser::parse(&query.render_with_stand_in("x")) {
            r.at_value(&qfield, format!("PromQL does not parse: {}", first_line(&e)));
        }
        SignalKind::Prometheus {
            query,
            source: source_name(r, &format!("{field}.prometheus.source"), &q.source),
        }
    } else if let Some(q) = &signal.loki {
        let qfield = format!("{field}.loki.query");
        let query = label_template(r, &qfield, &q.query)?;
        if let Err(message) = check_logql_shape(&query.render_with_stand_in("x")) {
            r.at_value(&qfield, message);
        }
        SignalKind::Loki {
            query,
            source: source_name(r, &format!("{field}.loki.source"), &q.source),
        }
    } else if let Some(h) = &signal.http {
        let url = url_template(r, &format!("{field}.http.url"), &h.url)?;
        let method = match h.method.as_deref().unwrap_or("GET") {
            "GET" => HttpMethod::Get,
            "HEAD" => HttpMethod::Head,
            other => {
                r.at_value(
                    &format!("{field}.http.method"),
                    format!("`{other}` is not allowed; probes are read-only: GET or HEAD"),
                );
                HttpMethod::Get
            }
        };
        let json_path = h
            .json_path
            .as_ref()
            .and_then(|p| json_path(r, &format!("{field}.http.json_path"), p));
        SignalKind::Http {
            url,
            method,
            max_redirects: h.max_redirects.unwrap_or(10),
            timeout: timeout(r, "http", &h.timeout),
            json_path,
        }
    } else if let Some(d) = &signal.dns {
        SignalKind::Dns {
            name: label_template(r, &format!("{field}.dns.name"), &d.name)?,
            timeout: timeout(r, "dns", &d.timeout),
        }
    } else if let Some(t) = &signal.tcp {
        let afield = format!("{field}.tcp.address");
        let address = label_template(r, &afield, &t.address)?;
        let stand_in = address.render_with_stand_in("host");
        let port_ok = stand_in
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            r.at_value(&afield, "expected host:port");
        }
        SignalKind::Tcp {
            address,
            timeout: timeout(r, "tcp", &t.timeout),
        }
    } else if let Some(j) = &signal.jsonhttp {
        let ufield = format!("{field}.jsonhttp.url");
        let url = match &j.source {
            None => url_template(r, &ufield, &j.url)?,
            Some(_) => {
                let t = label_template(r, &ufield, &j.url)?;
                if !t.render_with_stand_in("x").starts_with('/') {
                    r.at_value(
                        &ufield,
                        "with `source`, the url is a path under that backend, starting with /",
                    );
                }
                t
            }
        };
        let source = j
            .source
            .as_ref()
            .map(|_| source_name(r, &format!("{field}.jsonhttp.source"), &j.source));
        SignalKind::JsonHttp {
            url,
            source,
            path: json_path(r, &format!("{field}.jsonhttp.path"), &j.path)?,
            timeout: timeout(r, "jsonhttp", &j.timeout),
        }
    } else {
        return None;
    };
    Some(Signal {
        name: name.to_string(),
        description: signal.description.clone(),
        kind,
    })
}

fn source_name(r: &mut Reporter<'_>, field: &str, source: &Option<String>) -> String {
    let name = source.clone().unwrap_or_else(|| "default".to_string());
    if !is_object_name(&name) {
        r.at_value(field, "backend names are lowercase letters, digits and `-`");
    }
    name
}

fn url_template(r: &mut Reporter<'_>, field: &str, text: &str) -> Option<Template> {
    let t = label_template(r, field, text)?;
    // A template may start with a label holding the base URL; the stand-in is itself a URL.
    let rendered = t.render_with_stand_in("https://stand-in");
    if !(rendered.starts_with("http://") || rendered.starts_with("https://")) {
        r.at_value(field, "expected an http:// or https:// URL");
    }
    Some(t)
}

fn json_path(r: &mut Reporter<'_>, field: &str, text: &str) -> Option<JsonPath> {
    match JsonPath::parse(text) {
        Ok(p) => Some(p),
        Err(e) => {
            r.inside_value(field, 1, e.column, e.message);
            None
        }
    }
}

/// No LogQL parser exists for Rust; this catches the common mistakes: no stream selector, or
/// unbalanced brackets.
fn check_logql_shape(query: &str) -> Result<(), String> {
    if !query.contains('{') {
        return Err("a LogQL query needs a stream selector, e.g. {service=\"x\"}".into());
    }
    let mut depth: Vec<char> = Vec::new();
    let mut in_string: Option<char> = None;
    let mut escaped = false;
    for c in query.chars() {
        if let Some(quote) = in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' && quote == '"' {
                escaped = true;
            } else if c == quote {
                in_string = None;
            }
            continue;
        }
        match c {
            '"' | '`' => in_string = Some(c),
            '(' | '{' | '[' => depth.push(c),
            ')' | '}' | ']' => {
                let open = match c {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                if depth.pop() != Some(open) {
                    return Err(format!("LogQL has an unbalanced `{c}`"));
                }
            }
            _ => {}
        }
    }
    if in_string.is_some() {
        return Err("LogQL has an unterminated string".into());
    }
    if let Some(open) = depth.pop() {
        return Err(format!("LogQL has an unclosed `{open}`"));
    }
    Ok(())
}

struct TreeCheck<'r, 'p, 'a> {
    r: &'r mut Reporter<'p>,
    actions: &'a BTreeMap<String, Arc<Action>>,
    declared: BTreeSet<String>,
    nodes: Vec<Node>,
    /// id → line where it was first written.
    ids: HashMap<String, usize>,
}

impl TreeCheck<'_, '_, '_> {
    /// Checks `spec` and its subtree; `outputs` are the diagnose outputs of its ancestors.
    fn node(
        &mut self,
        spec: &NodeSpec,
        field: &str,
        parent: Option<NodeIndex>,
        depth: usize,
        outputs: &BTreeSet<String>,
    ) {
        let id_field = format!("{field}.id");
        if !is_identifier(&spec.id) {
            self.r
                .at_value(&id_field, "node ids are lowercase letters, digits and `_`");
        }
        let line = self.r.spans.value_position(&id_field).line;
        if let Some(first) = self.ids.get(&spec.id) {
            self.r.at_value(
                &id_field,
                format!("duplicate node id `{}` (first at line {first})", spec.id),
            );
        } else {
            self.ids.insert(spec.id.clone(), line);
        }

        let when = match &spec.when {
            Some(text) => self.condition(&format!("{field}.when"), text, Scope::Diagnosis, outputs),
            None => Some(Condition::always()),
        };

        // What this node's own remedy and children may read: the ancestors' outputs and its own.
        let mut below = outputs.clone();
        let diagnose = spec.diagnose.as_ref().and_then(|d| {
            let dfield = format!("{field}.diagnose");
            let action_ok = self.action_ref(&format!("{dfield}.action"), &d.action, Purpose::Diagnostic);
            let params = self.params(&dfield, &d.action, &d.params, action_ok);
            let out_field = format!("{dfield}.as");
            if !is_identifier(&d.output) {
                self.r.at_value(
                    &out_field,
                    "lowercase letters, digits and `_` (read as evidence.<name>)",
                );
            } else if self.declared.contains(&d.output) || outputs.contains(&d.output) {
                self.r.at_value(
                    &out_field,
                    format!("`{}` is already an evidence name here", d.output),
                );
            }
            below.insert(d.output.clone());
            Some(Diagnose {
                action: d.action.clone(),
                params: params?,
                output: d.output.clone(),
            })
        });

        let remedy = match &spec.remedy {
            Some(_) if !spec.children.is_empty() => {
                self.r.at_key(
                    &format!("{field}.remedy"),
                    "a node with children cannot have a remedy; put it on a leaf",
                );
                None
            }
            Some(remedy) => self.remedy(&format!("{field}.remedy"), remedy, &below),
            None => None,
        };

        let index = self.nodes.len();
        if let Some(when) = when {
            self.nodes.push(Node {
                id: spec.id.clone(),
                description: spec.description.clone(),
                when,
                diagnose,
                children: Vec::new(),
                remedy,
                parent,
                depth,
            });
        }
        for (i, child) in spec.children.iter().enumerate() {
            let child_index = self.nodes.len();
            self.node(
                child,
                &join_index(&format!("{field}.children"), i),
                Some(index),
                depth + 1,
                &below,
            );
            if self.nodes.len() > child_index
                && let Some(node) = self.nodes.get_mut(index)
            {
                node.children.push(child_index);
            }
        }
    }

    fn condition(
        &mut self,
        field: &str,
        text: &str,
        scope: Scope,
        outputs: &BTreeSet<String>,
    ) -> Option<Condition> {
        match Condition::compile(text, scope) {
            Ok(c) => {
                for signal in c.signals() {
                    let known = self.declared.contains(&signal.name)
                        || (scope == Scope::Diagnosis && outputs.contains(&signal.name));
                    if !known {
                        let message = if scope == Scope::Verify && outputs.contains(&signal.name) {
                            format!(
                                "`{}` is a diagnose output; verify reads fresh values of spec.evidence signals only",
                                signal.name
                            )
                        } else {
                            format!(
                                "evidence `{}` is not defined in spec.evidence or by a diagnose above this node",
                                signal.name
                            )
                        };
                        self.r.inside_value(field, signal.line, signal.column, message);
                    }
                }
                Some(c)
            }
            Err(e) => {
                self.r
                    .inside_value(field, e.line, e.column, format!("CEL: {}", e.message));
                None
            }
        }
    }

    /// Checks that `name` is an action of `purpose`; returns whether it is.
    fn action_ref(&mut self, field: &str, name: &str, purpose: Purpose) -> bool {
        match self.actions.get(name) {
            None => {
                self.r.at_value(field, format!("no Action named `{name}`"));
                false
            }
            Some(action) if action.purpose != purpose => {
                let wanted = if purpose == Purpose::Fix {
                    "fix"
                } else {
                    "diagnostic"
                };
                self.r
                    .at_value(field, format!("action `{name}` is not a {wanted} action"));
                false
            }
            Some(_) => true,
        }
    }

    fn params(
        &mut self,
        field: &str,
        action_name: &str,
        given: &BTreeMap<String, String>,
        action_ok: bool,
    ) -> Option<BTreeMap<String, Template>> {
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (name, text) in given {
            let pfield = format!("{field}.params.{name}");
            let Some(template) = label_template(self.r, &pfield, text) else {
                ok = false;
                continue;
            };
            if action_ok && let Some(action) = self.actions.get(action_name) {
                match action.params.get(name) {
                    None => {
                        self.r
                            .at_key(&pfield, format!("action `{action_name}` has no param `{name}`"));
                        ok = false;
                    }
                    Some(spec) if template.references(Variable::Label).is_empty() && !spec.accepts(text) => {
                        self.r.at_value(
                            &pfield,
                            format!(
                                "`{text}` does not match the param's pattern `{}`",
                                spec.pattern_source
                            ),
                        );
                        ok = false;
                    }
                    Some(_) => {}
                }
            }
            out.insert(name.clone(), template);
        }
        if action_ok && let Some(action) = self.actions.get(action_name) {
            for (name, spec) in &action.params {
                if spec.required && spec.default.is_none() && !given.contains_key(name) {
                    self.r
                        .at_key(field, format!("action `{action_name}` needs param `{name}`"));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn remedy(
        &mut self,
        field: &str,
        spec: &crate::document::playbook::RemedySpec,
        outputs: &BTreeSet<String>,
    ) -> Option<Remedy> {
        let action_ok = self.action_ref(&format!("{field}.action"), &spec.action, Purpose::Fix);
        let params = self.params(field, &spec.action, &spec.params, action_ok);

        let cfield = format!("{field}.confidence");
        let threshold = spec.confidence.threshold;
        let mut ok = true;
        if !(threshold > 0.0 && threshold <= 1.0) {
            self.r.at_value(
                &format!("{cfield}.threshold"),
                format!("{threshold} is outside (0, 1]"),
            );
            ok = false;
        }
        if spec.confidence.signals.is_empty() {
            self.r
                .at_key(&format!("{cfield}.signals"), "needs at least one weighted signal");
            ok = false;
        }
        let mut signals = Vec::new();
        let mut total = 0.0;
        for (i, s) in spec.confidence.signals.iter().enumerate() {
            let sfield = join_index(&format!("{cfield}.signals"), i);
            if !(0.0..=1.0).contains(&s.weight) {
                self.r.at_value(
                    &format!("{sfield}.weight"),
                    format!("{} is outside [0, 1]", s.weight),
                );
                ok = false;
            } else {
                total += s.weight;
            }
            match self.condition(&format!("{sfield}.when"), &s.when, Scope::Diagnosis, outputs) {
                Some(when) => signals.push(WeightedSignal {
                    when,
                    weight: s.weight,
                    description: s.description.clone(),
                }),
                None => ok = false,
            }
        }
        if ok && total + WEIGHT_EPSILON < threshold {
            self.r.at_value(
                &format!("{cfield}.threshold"),
                format!(
                    "{threshold} cannot be reached: the weights sum to {}",
                    round(total)
                ),
            );
            ok = false;
        }

        let verify = match &spec.verify {
            None => None,
            Some(v) => {
                let vfield = format!("{field}.verify");
                let when = self.condition(&format!("{vfield}.when"), &v.when, Scope::Verify, outputs);
                let retries = positive(
                    self.r,
                    &format!("{vfield}.retries"),
                    v.retries,
                    DEFAULT_VERIFY_RETRIES,
                );
                let interval = self.r.duration(
                    &format!("{vfield}.interval"),
                    v.interval.as_deref(),
                    DEFAULT_VERIFY_INTERVAL,
                );
                match when {
                    Some(when) => Some(VerifyCondition {
                        when,
                        retries,
                        interval,
                    }),
                    None => {
                        ok = false;
                        None
                    }
                }
            }
        };
        if !ok {
            return None;
        }
        Some(Remedy {
            action: spec.action.clone(),
            params: params?,
            confidence: ConfidenceRule { threshold, signals },
            verify,
        })
    }
}

/// Rounds to 6 decimals for messages, so 0.1 + 0.2 reads as 0.3.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::check_logql_shape;

    #[test]
    fn logql_shape() {
        assert!(
            check_logql_shape("sum(count_over_time({service=\"x\"} |~ \"timeout.*payment\" [5m]))").is_ok()
        );
        assert!(check_logql_shape("count_over_time(service=\"x\" [5m])").is_err());
        assert!(check_logql_shape("sum(count_over_time({service=\"x\"}[5m])").is_err());
        assert!(check_logql_shape("{service=\"x\"} |~ \"unterminated").is_err());
    }
}
