//! CEL conditions: `when` of a node, confidence signals and verify checks.
//!
//! A condition is compiled once at load time. Compiling also finds every evidence signal it reads
//! (`evidence.name` or `evidence["name"]`), so the walker can fetch exactly those signals, lazily,
//! before evaluating it; and every identifier and function it uses, so that a typo is a load-time
//! error with its position rather than a failed walk.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::{Context, Env, Program, Value};

/// CEL's standard environment, built once: building it registers every standard function, which
/// costs far more than evaluating a condition.
static STDLIB: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// The variables a condition may read, by where it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `alert` and `evidence`: node conditions and confidence signals.
    Diagnosis,
    /// `alert`, `evidence` (fresh values) and `baseline` (values at diagnosis): verify checks.
    Verify,
}

impl Scope {
    fn roots(self) -> &'static [&'static str] {
        match self {
            Scope::Diagnosis => &["alert", "evidence"],
            Scope::Verify => &["alert", "evidence", "baseline"],
        }
    }
}

/// An evidence signal read by a condition, with its 1-based position inside the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRef {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

/// A compile error with its 1-based position inside the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConditionError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A condition failed at evaluation time (e.g. a comparison with a missing value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{source_text}`: {message}")]
pub struct EvaluationError {
    pub source_text: String,
    pub message: String,
}

/// A compiled condition.
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<Program>,
    signals: Vec<SignalRef>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Condition").field("source", &self.source).finish()
    }
}

/// Functions of CEL's standard library that conditions may call. Operators (`_>_`, `@in`, ...) are
/// always allowed; anything else is a typo or an extension rootfix does not load.
const KNOWN_FUNCTIONS: &[&str] = &[
    "size",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "string",
    "int",
    "uint",
    "double",
    "bytes",
    "bool",
    "dyn",
    "type",
    "duration",
    "timestamp",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "max",
    "min",
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
];

impl Condition {
    /// Compiles `source` for `scope`.
    pub fn compile(source: &str, scope: Scope) -> Result<Self, ConditionError> {
        let trimmed = source.trim();
        if trimmed.is_empty() {
            return Err(ConditionError {
                line: 1,
                column: 1,
                message: "empty condition".into(),
            });
        }
        let program = Program::compile(source).map_err(|errors| {
            let first = errors.errors.first();
            ConditionError {
                line: first.map_or(1, |e| usize::try_from(e.pos.0).unwrap_or(1).max(1)),
                column: first.map_or(1, |e| usize::try_from(e.pos.1).unwrap_or(1).max(1)),
                message: first.map_or_else(|| "does not parse".to_string(), |e| e.msg.clone()),
            }
        })?;
        let mut analysis = Analysis {
            source,
            program: &program,
            roots: scope.roots(),
            locals: Vec::new(),
            signals: Vec::new(),
            error: None,
        };
        analysis.visit(program.expression());
        if let Some(error) = analysis.error {
            return Err(error);
        }
        let signals = analysis.signals;
        Ok(Self {
            source: source.to_string(),
            program: Arc::new(program),
            signals,
        })
    }

    /// The constant `true`, for nodes without a `when`.
    pub fn always() -> Self {
        // A literal that always compiles; a failure here is a bug in this function.
        match Self::compile("true", Scope::Diagnosis) {
            Ok(c) => c,
            Err(e) => unreachable!("`true` must compile: {e}"),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evidence signals read (first occurrence of each name, in source order).
    pub fn signals(&self) -> &[SignalRef] {
        &self.signals
    }

    /// Names of the evidence signals read.
    pub fn signal_names(&self) -> BTreeSet<&str> {
        self.signals.iter().map(|s| s.name.as_str()).collect()
    }

    /// Evaluates with `alert`, `evidence` and (for verify) `baseline` bound; must yield a bool.
    pub fn evaluate(&self, inputs: &ConditionInputs<'_>) -> Result<bool, EvaluationError> {
        let fail = |message: String| EvaluationError {
            source_text: self.source.clone(),
            message,
        };
        let mut context = Context::with_env(STDLIB.clone());
        context.add_variable_from_value("alert", inputs.alert.0.clone());
        context
            .add_variable("evidence", inputs.evidence)
            .map_err(|e| fail(e.to_string()))?;
        if let Some(baseline) = inputs.baseline {
            context
                .add_variable("baseline", baseline)
                .map_err(|e| fail(e.to_string()))?;
        }
        match self.program.execute(&context) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(fail(format!("yields {other:?}, not a bool"))),
            Err(e) => Err(fail(e.to_string())),
        }
    }
}

/// An alert converted once to a CEL value, for the many conditions of a walk.
#[derive(Debug, Clone)]
pub struct AlertValue(Value);

impl AlertValue {
    pub fn from_json(view: &serde_json::Value) -> Self {
        Self(cel::to_value(view).unwrap_or(Value::Null))
    }
}

/// What a condition sees.
pub struct ConditionInputs<'a> {
    pub alert: &'a AlertValue,
    pub evidence: &'a BTreeMap<String, serde_json::Value>,
    pub baseline: Option<&'a BTreeMap<String, serde_json::Value>>,
}

struct Analysis<'a> {
    source: &'a str,
    program: &'a Program,
    roots: &'static [&'static str],
    /// Variables bound by comprehensions (`x` in `list.all(x, ...)`), innermost last.
    locals: Vec<String>,
    signals: Vec<SignalRef>,
    error: Option<ConditionError>,
}

impl Analysis<'_> {
    fn position(&self, id: u64) -> (usize, usize) {
        let Some((start, _)) = self.program.source_info().offset_for(id) else {
            return (1, 1);
        };
        let start = start as usize;
        let mut line = 1;
        let mut column = 1;
        for c in self.source.chars().take(start) {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        (line, column)
    }

    fn fail(&mut self, id: u64, message: String) {
        if self.error.is_none() {
            let (line, column) = self.position(id);
            self.error = Some(ConditionError {
                line,
                column,
                message,
            });
        }
    }

    /// Reports at the start of a call's name: the parser places a call at its `(`.
    fn fail_at_name(&mut self, id: u64, name: &str, message: String) {
        if self.error.is_none() {
            let (line, column) = self.position(id);
            let column = column.saturating_sub(name.chars().count()).max(1);
            self.error = Some(ConditionError {
                line,
                column,
                message,
            });
        }
    }

    fn record_signal(&mut self, id: u64, name: &str) {
        if !self.signals.iter().any(|s| s.name == name) {
            let (line, column) = self.position(id);
            self.signals.push(SignalRef {
                name: name.to_string(),
                line,
                column,
            });
        }
    }

    fn visit(&mut self, node: &IdedExpr) {
        match &node.expr {
            Expr::Ident(name) => {
                let known = self.roots.contains(&name.as_str()) || self.locals.iter().any(|l| l == name);
                if !known {
                    self.fail(
                        node.id,
                        format!(
                            "unknown variable `{name}`; conditions read {}",
                            self.roots.join(", ")
                        ),
                    );
                } else if name == "evidence" || name == "baseline" {
                    self.fail(
                        node.id,
                        format!("`{name}` must be read by signal name, e.g. {name}.my_signal"),
                    );
                }
            }
            Expr::Select(select) => {
                if let Expr::Ident(root) = &select.operand.expr
                    && (root == "evidence" || root == "baseline")
                    && self.roots.contains(&root.as_str())
                    && !self.locals.iter().any(|l| l == root)
                {
                    self.record_signal(select.operand.id, &select.field);
                    return;
                }
                self.visit(&select.operand);
            }
            Expr::Call(call) => {
                let is_operator = call.func_name.starts_with(['_', '@', '!', '-']);
                if !is_operator && !KNOWN_FUNCTIONS.contains(&call.func_name.as_str()) {
                    self.fail_at_name(
                        node.id,
                        &call.func_name,
                        format!("unknown function `{}`", call.func_name),
                    );
                }
                if call.func_name == "_[_]"
                    && let [target, key] = call.args.as_slice()
                    && let Expr::Ident(root) = &target.expr
                    && (root == "evidence" || root == "baseline")
                    && self.roots.contains(&root.as_str())
                {
                    if let Expr::Literal(LiteralValue::String(name)) = &key.expr {
                        self.record_signal(target.id, name.inner());
                    } else {
                        self.fail(key.id, format!("`{root}[...]` takes a quoted signal name"));
                    }
                    return;
                }
                if let Some(target) = &call.target {
                    self.visit(target);
                }
                for arg in &call.args {
                    self.visit(arg);
                }
            }
            Expr::Comprehension(comp) => {
                self.visit(&comp.iter_range);
                self.visit(&comp.accu_init);
                self.locals.push(comp.iter_var.clone());
                if let Some(second) = &comp.iter_var2 {
                    self.locals.push(second.clone());
                }
                self.locals.push(comp.accu_var.clone());
                self.visit(&comp.loop_cond);
                self.visit(&comp.loop_step);
                self.visit(&comp.result);
                self.locals.pop();
                if comp.iter_var2.is_some() {
                    self.locals.pop();
                }
                self.locals.pop();
            }
            Expr::List(list) => list.elements.iter().for_each(|e| self.visit(e)),
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(e) = &entry.expr {
                        self.visit(&e.key);
                        self.visit(&e.value);
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.visit(&f.value);
                    }
                }
            }
            Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(src: &str, evidence: serde_json::Value) -> Result<bool, EvaluationError> {
        let condition = Condition::compile(src, Scope::Diagnosis).unwrap();
        let evidence: BTreeMap<String, serde_json::Value> = serde_json::from_value(evidence).unwrap();
        condition.evaluate(&ConditionInputs {
            alert: &AlertValue::from_json(&json!({"labels": {"service": "order"}})),
            evidence: &evidence,
            baseline: None,
        })
    }

    #[test]
    fn finds_every_signal_read_with_its_position() {
        let c = Condition::compile(
            "evidence.heap > 0.95 &&\n  evidence['gc_pause'] > 1 && evidence.heap < 2",
            Scope::Diagnosis,
        )
        .unwrap();
        let names: Vec<_> = c
            .signals()
            .iter()
            .map(|s| (s.name.as_str(), s.line, s.column))
            .collect();
        assert_eq!(names, vec![("heap", 1, 1), ("gc_pause", 2, 3)]);
    }

    #[test]
    fn evaluates_numbers_maps_and_labels() {
        assert_eq!(eval("evidence.ratio > 0.5", json!({"ratio": 0.7})), Ok(true));
        assert_eq!(eval("evidence.count >= 5", json!({"count": 5})), Ok(true));
        assert_eq!(
            eval("evidence.http.status == 200", json!({"http": {"status": 200}})),
            Ok(true)
        );
        assert_eq!(eval("alert.labels.service == 'order'", json!({})), Ok(true));
        assert!(eval("evidence.ratio > 0.5", json!({"ratio": null})).is_err());
        assert!(eval("evidence.ratio", json!({"ratio": 1})).is_err());
    }

    #[test]
    fn compile_errors_carry_positions() {
        let e = Condition::compile("evidence.x > 0.5 &&", Scope::Diagnosis).unwrap_err();
        assert_eq!((e.line, e.column), (1, 20));
        let e = Condition::compile("evidnce.x > 1", Scope::Diagnosis).unwrap_err();
        assert_eq!((e.line, e.column), (1, 1));
        assert!(
            e.message.starts_with("unknown variable `evidnce`"),
            "{}",
            e.message
        );
        let e = Condition::compile("evidence.x > 1 && sise(evidence.y) > 0", Scope::Diagnosis).unwrap_err();
        assert_eq!(e.message, "unknown function `sise`");
        assert_eq!((e.line, e.column), (1, 19));
        let e = Condition::compile("baseline.x > 1", Scope::Diagnosis).unwrap_err();
        assert!(e.message.starts_with("unknown variable `baseline`"));
        assert!(Condition::compile("evidence.x < baseline.x * 0.2", Scope::Verify).is_ok());
    }

    #[test]
    fn comprehension_variables_are_in_scope() {
        let c = Condition::compile("evidence.hosts.all(h, h.ok)", Scope::Diagnosis).unwrap();
        assert_eq!(c.signal_names().into_iter().collect::<Vec<_>>(), vec!["hosts"]);
    }

    /// What the shipped trees' null guards rely on (`cel` 0.15): a probe's `tls` is `null` when
    /// no handshake happened, and JSON integers (a diagnostic's counts) are unsigned.
    #[test]
    fn null_fields_and_unsigned_counts() {
        let probe = json!({"p": {"status": 0, "tls": null, "redirects": []}});
        assert_eq!(eval("evidence.p.status != 200", probe.clone()), Ok(true));
        assert_eq!(eval("evidence.p.tls == null", probe.clone()), Ok(true));
        // `has` is true for a field that is present and null: it does not guard a null.
        assert_eq!(eval("has(evidence.p.tls)", probe.clone()), Ok(true));
        assert!(eval("evidence.p.tls.verified", probe.clone()).is_err());
        assert!(eval("size(evidence.p.tls) > 0", probe.clone()).is_err());
        assert!(eval("evidence.p.tls == null || evidence.p.tls.verified", probe.clone()).unwrap());
        assert_eq!(
            eval("evidence.p.tls != null && evidence.p.tls.verified", probe),
            Ok(false)
        );
        let dump = json!({"d": {"total": 200, "blocked": 150}});
        assert!(eval("evidence.d.blocked > 0.5 * evidence.d.total", dump.clone()).is_err());
        assert_eq!(
            eval(
                "double(evidence.d.blocked) > 0.5 * double(evidence.d.total)",
                dump
            ),
            Ok(true)
        );
    }
}
