//! The grammar of LogQL over [`Token`]s: a recursive-descent recogniser that also notes which
//! strings the query reads as values and what it makes of the others.

use super::{Kind, Syntax, Token, fail};

/// A query's type: a log query (lines) or a metric query (numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Log,
    Metric,
}

const RANGE_FNS: [&str; 16] = [
    "rate",
    "count_over_time",
    "bytes_rate",
    "bytes_over_time",
    "absent_over_time",
    "sum_over_time",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "first_over_time",
    "last_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "quantile_over_time",
    "rate_counter",
    "present_over_time",
];
const VECTOR_OPS: [&str; 12] = [
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "sort",
    "sort_desc",
    "approx_topk",
];
const LINE_FILTERS: [&str; 6] = ["|=", "!=", "|~", "!~", "|>", "!>"];
const MATCH_OPS: [&str; 4] = ["=", "!=", "=~", "!~"];
const COMPARE_OPS: [&str; 9] = ["=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="];

/// What LogQL makes of the string after `op`: `None` for a plain value.
fn read_as(op: &str) -> Option<&'static str> {
    match op {
        "=~" | "!~" | "|~" => Some("a regular expression"),
        "|>" | "!>" => Some("a pattern line filter"),
        _ => None,
    }
}

/// What the recogniser found: the tokens of strings read as values, and of the other strings
/// with what LogQL makes of them.
#[derive(Debug, Default)]
pub(crate) struct Reading {
    pub values: Vec<usize>,
    pub others: Vec<(usize, &'static str)>,
}

struct Parser<'a> {
    text: &'a str,
    tokens: &'a [Token],
    pos: usize,
    reading: Reading,
}

impl Parser<'_> {
    fn peek_text(&self, ahead: usize) -> Option<&str> {
        self.tokens
            .get(self.pos + ahead)
            .map(|t| &self.text[t.range.clone()])
    }

    fn at(&self, s: &str) -> bool {
        self.tokens
            .get(self.pos)
            .is_some_and(|t| !matches!(t.kind, Kind::Str(_)) && &self.text[t.range.clone()] == s)
    }

    /// Eats the first of `ops` that is next; `None` when none is.
    fn eat_any(&mut self, ops: &[&'static str]) -> Option<&'static str> {
        let op = ops.iter().find(|op| self.at(op)).copied()?;
        self.pos += 1;
        Some(op)
    }

    fn eat(&mut self, s: &str) -> bool {
        let here = self.at(s);
        if here {
            self.pos += 1;
        }
        here
    }

    fn error<T>(&self, expected: &str) -> Result<T, Syntax> {
        match self.tokens.get(self.pos) {
            Some(t) => fail(
                t.range.start,
                format!(
                    "LogQL does not parse: expected {expected}, found `{}`",
                    &self.text[t.range.clone()]
                ),
            ),
            None => fail(
                self.text.len(),
                format!("LogQL does not parse: expected {expected}, found the end"),
            ),
        }
    }

    fn need(&mut self, s: &str) -> Result<(), Syntax> {
        if self.eat(s) {
            Ok(())
        } else {
            self.error(&format!("`{s}`"))
        }
    }

    fn kind(&self) -> Option<Kind> {
        self.tokens.get(self.pos).map(|t| t.kind)
    }

    fn ident(&mut self, what: &str) -> Result<String, Syntax> {
        if self.kind() == Some(Kind::Ident) {
            let s = self.peek_text(0).unwrap_or_default().to_string();
            self.pos += 1;
            Ok(s)
        } else {
            self.error(what)
        }
    }

    fn number(&mut self, what: &str) -> Result<(), Syntax> {
        if self.kind() == Some(Kind::Number) {
            self.pos += 1;
            Ok(())
        } else {
            self.error(what)
        }
    }

    /// A string; `read_as` is `None` for a value, else what LogQL makes of it.
    fn string(&mut self, read_as: Option<&'static str>) -> Result<(), Syntax> {
        match self.kind() {
            Some(Kind::Str('"' | '`')) => {
                match read_as {
                    None => self.reading.values.push(self.pos),
                    Some(what) => self.reading.others.push((self.pos, what)),
                }
                self.pos += 1;
                Ok(())
            }
            Some(Kind::Str(_)) => self.error("a string in double quotes or backticks"),
            _ => self.error("a string"),
        }
    }

    fn query(&mut self) -> Result<Ty, Syntax> {
        let ty = self.binary(1)?;
        if self.pos < self.tokens.len() {
            return self.error("the end of the query");
        }
        Ok(ty)
    }

    fn precedence(&self) -> Option<u8> {
        match self.peek_text(0)? {
            "or" => Some(1),
            "and" | "unless" => Some(2),
            "==" | "!=" | ">" | ">=" | "<" | "<=" => Some(3),
            "+" | "-" => Some(4),
            "*" | "/" | "%" => Some(5),
            "^" => Some(6),
            _ => None,
        }
    }

    fn binary(&mut self, min: u8) -> Result<Ty, Syntax> {
        let mut lhs = self.unary()?;
        while let Some(prec) = self.precedence().filter(|p| *p >= min) {
            let op_at = self.pos;
            self.pos += 1;
            self.eat("bool");
            if self.at("on") || self.at("ignoring") {
                self.pos += 1;
                self.labels()?;
                if (self.eat("group_left") || self.eat("group_right")) && self.at("(") {
                    self.labels()?;
                }
            }
            let rhs = self.binary(prec + 1)?;
            if lhs != Ty::Metric || rhs != Ty::Metric {
                let at = self.tokens[op_at].range.start;
                return fail(
                    at,
                    "LogQL does not parse: binary operators need metric queries on both sides",
                );
            }
            lhs = Ty::Metric;
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Ty, Syntax> {
        if self.eat("-") || self.eat("+") {
            return self.unary().and_then(|ty| match ty {
                Ty::Metric => Ok(ty),
                Ty::Log => self.error("a metric query after a sign"),
            });
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Ty, Syntax> {
        if self.kind() == Some(Kind::Number) {
            self.pos += 1;
            return Ok(Ty::Metric);
        }
        if self.eat("(") {
            let ty = self.binary(1)?;
            self.need(")")?;
            return Ok(ty);
        }
        if self.at("{") {
            self.selector()?;
            self.pipeline()?;
            return Ok(Ty::Log);
        }
        let name = self.peek_text(0).unwrap_or_default().to_string();
        if self.kind() != Some(Kind::Ident) {
            return self.error("a selector, a function or a number");
        }
        self.pos += 1;
        if RANGE_FNS.contains(&name.as_str()) {
            self.range_aggregation()
        } else if VECTOR_OPS.contains(&name.as_str()) {
            self.vector_aggregation()
        } else if name == "vector" {
            self.need("(")?;
            self.number("a number")?;
            self.need(")")?;
            Ok(Ty::Metric)
        } else if name == "label_replace" {
            self.need("(")?;
            if self.binary(1)? != Ty::Metric {
                return self.error("a metric query in label_replace");
            }
            for _ in 0..4 {
                self.need(",")?;
                self.string(Some("a label_replace argument"))?;
            }
            self.need(")")?;
            Ok(Ty::Metric)
        } else {
            self.pos -= 1;
            self.error("a selector, a function or a number")
        }
    }

    fn grouping(&mut self) -> Result<(), Syntax> {
        if self.eat("by") || self.eat("without") {
            self.labels()?;
        }
        Ok(())
    }

    /// `( l1, l2 )`, possibly empty.
    fn labels(&mut self) -> Result<(), Syntax> {
        self.need("(")?;
        if !self.eat(")") {
            loop {
                self.ident("a label name")?;
                if self.eat(")") {
                    break;
                }
                self.need(",")?;
            }
        }
        Ok(())
    }

    fn range_aggregation(&mut self) -> Result<Ty, Syntax> {
        self.need("(")?;
        if self.kind() == Some(Kind::Number) {
            self.pos += 1;
            self.need(",")?;
        }
        if !self.at("{") {
            return self.error("a stream selector");
        }
        self.selector()?;
        self.pipeline()?;
        self.need("[")?;
        self.number("a duration")?;
        self.need("]")?;
        self.pipeline()?;
        if self.eat("offset") {
            self.number("a duration")?;
        }
        self.need(")")?;
        self.grouping()?;
        Ok(Ty::Metric)
    }

    fn vector_aggregation(&mut self) -> Result<Ty, Syntax> {
        self.grouping()?;
        self.need("(")?;
        if self.kind() == Some(Kind::Number) && self.peek_text(1) == Some(",") {
            self.pos += 2;
        }
        if self.binary(1)? != Ty::Metric {
            return self.error("a metric query to aggregate");
        }
        self.need(")")?;
        self.grouping()?;
        Ok(Ty::Metric)
    }

    fn selector(&mut self) -> Result<(), Syntax> {
        self.need("{")?;
        loop {
            self.ident("a label name")?;
            let Some(op) = self.eat_any(&MATCH_OPS) else {
                return self.error("`=`, `!=`, `=~` or `!~`");
            };
            self.string(read_as(op))?;
            if self.eat("}") {
                return Ok(());
            }
            self.need(",")?;
        }
    }

    fn pipeline(&mut self) -> Result<(), Syntax> {
        loop {
            if let Some(op) = self.eat_any(&LINE_FILTERS) {
                loop {
                    self.filter_value(read_as(op))?;
                    if !self.eat("or") {
                        break;
                    }
                }
            } else if self.eat("|") {
                self.stage()?;
            } else {
                return Ok(());
            }
        }
    }

    /// A string, or `ip("…")` (a value).
    fn filter_value(&mut self, read_as: Option<&'static str>) -> Result<(), Syntax> {
        if self.eat("ip") {
            self.need("(")?;
            self.string(None)?;
            return self.need(")");
        }
        self.string(read_as)
    }

    fn stage(&mut self) -> Result<(), Syntax> {
        let word = self.peek_text(0).unwrap_or_default().to_string();
        match word.as_str() {
            "json" | "logfmt" => {
                self.pos += 1;
                while self.at("-") && self.peek_text(1) == Some("-") {
                    self.pos += 2;
                    self.ident("a flag")?;
                }
                self.extraction_params()
            }
            "regexp" | "pattern" => {
                self.pos += 1;
                self.string(Some(if word == "regexp" {
                    "a regexp parser's expression"
                } else {
                    "a pattern parser's expression"
                }))
            }
            "line_format" => {
                self.pos += 1;
                self.string(Some("a line_format template"))
            }
            "label_format" => {
                self.pos += 1;
                loop {
                    self.ident("a label name")?;
                    self.need("=")?;
                    if self.kind() == Some(Kind::Ident) {
                        self.pos += 1;
                    } else {
                        self.string(Some("a label_format template"))?;
                    }
                    if !self.eat(",") {
                        return Ok(());
                    }
                }
            }
            "unwrap" => {
                self.pos += 1;
                let name = self.ident("a label name")?;
                if self.eat("(") {
                    if !matches!(name.as_str(), "bytes" | "duration" | "duration_seconds") {
                        return self.error("bytes, duration or duration_seconds");
                    }
                    self.ident("a label name")?;
                    self.need(")")?;
                }
                Ok(())
            }
            "drop" | "keep" => {
                self.pos += 1;
                loop {
                    self.ident("a label name")?;
                    if let Some(op) = self.eat_any(&MATCH_OPS) {
                        self.string(read_as(op))?;
                    }
                    if !self.eat(",") {
                        return Ok(());
                    }
                }
            }
            "unpack" | "decolorize" => {
                self.pos += 1;
                Ok(())
            }
            _ => self.label_filter_or(),
        }
    }

    /// `l="expr", …` after `json` or `logfmt`.
    fn extraction_params(&mut self) -> Result<(), Syntax> {
        while self.kind() == Some(Kind::Ident) && !self.at("or") && !self.at("and") {
            self.ident("a label name")?;
            if self.eat("=") {
                self.string(Some("an extraction expression"))?;
            }
            if !self.eat(",") {
                break;
            }
        }
        Ok(())
    }

    fn label_filter_or(&mut self) -> Result<(), Syntax> {
        self.label_filter_and()?;
        while self.eat("or") {
            self.label_filter_and()?;
        }
        Ok(())
    }

    fn label_filter_and(&mut self) -> Result<(), Syntax> {
        self.label_filter()?;
        loop {
            // `and`, `,` or nothing at all between two label filters.
            let next_is_filter = self.kind() == Some(Kind::Ident)
                && !self.at("or")
                && self.peek_text(1).is_some_and(|op| COMPARE_OPS.contains(&op));
            if !(self.eat("and") || self.eat(",") || next_is_filter) {
                return Ok(());
            }
            self.label_filter()?;
        }
    }

    fn label_filter(&mut self) -> Result<(), Syntax> {
        if self.eat("(") {
            self.label_filter_or()?;
            return self.need(")");
        }
        self.ident("a label filter, a parser or a format stage")?;
        let Some(op) = self.eat_any(&COMPARE_OPS) else {
            return self.error("a comparison (`=`, `!=`, `=~`, `!~`, `==`, `>`, `>=`, `<`, `<=`)");
        };
        if self.eat("-") {
            return self.number("a number");
        }
        match self.kind() {
            Some(Kind::Number) => self.number("a number"),
            _ => self.filter_value(read_as(op)),
        }
    }
}

/// Recognises the whole token stream as one query.
pub(super) fn parse(text: &str, tokens: &[Token]) -> Result<Reading, Syntax> {
    let mut parser = Parser {
        text,
        tokens,
        pos: 0,
        reading: Reading::default(),
    };
    parser.query()?;
    Ok(parser.reading)
}
