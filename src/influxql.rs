//! The InfluxQL that Grafana's and Chronograf's InfluxDB 1.x data sources send,
//! parsed into statements. Pure: no store, no HTTP (`web::query` answers them).
//!
//! The subset: `SHOW DATABASES | MEASUREMENTS | FIELD KEYS | TAG KEYS | TAG VALUES |
//! RETENTION POLICIES`, and `SELECT agg("field") [AS "alias"] FROM [db.rp.]"m"
//! [WHERE …] [GROUP BY time(d)[, "tag"]] [fill(…)] [ORDER BY time DESC] [LIMIT n]
//! [tz('Zone')]`, agg one of `sum count mean max min first last spread`, optionally
//! wrapped in `cumulative_sum`, `non_negative_difference` or `difference`. Several
//! statements are separated by `;` outside quotes.

use std::fmt;

/// One parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    ShowDatabases,
    ShowRetentionPolicies,
    /// `WITH MEASUREMENT =~ /re/`: the pattern, `(?i)` meaning case-insensitive.
    ShowMeasurements {
        pattern: Option<String>,
        limit: Option<usize>,
    },
    ShowFieldKeys {
        from: Option<String>,
    },
    ShowTagKeys {
        from: Option<String>,
    },
    ShowTagValues {
        from: Option<String>,
        key: String,
    },
    Select(Select),
    /// `CREATE DATABASE …`: answered as done (write-only clients send it).
    CreateDatabase,
    /// A statement InfluxDB knows and watermeter does not do (`DROP …`, `DELETE …`,
    /// other `SHOW …`): answered with a statement error, as InfluxDB answers what
    /// it refuses.
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Select {
    pub fields: Vec<Field>,
    pub measurement: String,
    pub condition: Option<Cond>,
    /// `GROUP BY time(d)` in milliseconds.
    pub interval_ms: Option<i64>,
    /// `GROUP BY …, "tag"`.
    pub group_tags: Vec<String>,
    pub fill: Fill,
    pub descending: bool,
    pub limit: Option<usize>,
    pub tz: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// `sum`, `count`, `mean`, `max`, `min`, `first`, `last`, `spread`.
    pub agg: String,
    /// `cumulative_sum`, `non_negative_difference` or `difference` around it.
    pub transform: Option<String>,
    pub field: String,
    /// The column name: the alias, else the (outer) function's name.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    Null,
    None,
    Value(f64),
    Previous,
    Linear,
}

/// A condition: time comparisons and tag comparisons joined by AND/OR.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    /// `time <op> <instant in ms>`.
    Time(Op, i64),
    /// `"tag" <op> 'value'` (or a regex for `=~`/`!~`).
    Tag(String, Op, String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Match,
    NotMatch,
}

/// Why a statement was not understood, in InfluxDB's words where it has them.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Regex(String),
    Num(String),
    Sym(String),
}

fn tokens(s: &str) -> Result<Vec<Tok>, ParseError> {
    let c: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |m: String| Err(ParseError(m));
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() {
            i += 1;
        } else if ch == '"' || ch == '\'' {
            let mut v = String::new();
            i += 1;
            while i < c.len() && c[i] != ch {
                if c[i] == '\\' && i + 1 < c.len() {
                    i += 1;
                }
                v.push(c[i]);
                i += 1;
            }
            if i >= c.len() {
                return err(format!("found EOF, expected closing {ch}"));
            }
            i += 1;
            out.push(if ch == '"' {
                Tok::Ident(v)
            } else {
                Tok::Str(v)
            });
        } else if ch == '/' && matches!(out.last(), Some(Tok::Sym(s)) if s == "=~" || s == "!~") {
            let mut v = String::new();
            i += 1;
            while i < c.len() && c[i] != '/' {
                if c[i] == '\\' && i + 1 < c.len() && c[i + 1] == '/' {
                    i += 1;
                }
                v.push(c[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Regex(v));
        } else if ch.is_ascii_digit() {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.' || c[i] == 'µ') {
                i += 1;
            }
            out.push(Tok::Num(c[start..i].iter().collect()));
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(c[start..i].iter().collect()));
        } else {
            let two: String = c[i..(i + 2).min(c.len())].iter().collect();
            if ["<=", ">=", "!=", "<>", "=~", "!~"].contains(&two.as_str()) {
                out.push(Tok::Sym(two));
                i += 2;
            } else if "=<>(),.;*+-/".contains(ch) {
                out.push(Tok::Sym(ch.to_string()));
                i += 1;
            } else {
                return err(format!("found {ch}, expected a statement"));
            }
        }
    }
    Ok(out)
}

/// Statements of `q`, split on `;` outside quotes; an empty one is skipped.
pub fn parse(q: &str) -> Vec<Result<Statement, ParseError>> {
    parse_at(q, chrono::Utc::now().timestamp_millis())
}

/// [`parse`] with `now()` at `now_ms` (the caller's clock).
pub fn parse_at(q: &str, now_ms: i64) -> Vec<Result<Statement, ParseError>> {
    match tokens(q) {
        Err(e) => vec![Err(e)],
        Ok(toks) => toks
            .split(|t| *t == Tok::Sym(";".into()))
            .filter(|s| !s.is_empty())
            .take(MAX_STATEMENTS + 1)
            .enumerate()
            .map(|(n, s)| {
                if n == MAX_STATEMENTS {
                    return Err(ParseError(format!(
                        "the query has more than {MAX_STATEMENTS} statements, the most one request may hold; send them in several requests"
                    )));
                }
                Parser {
                    t: s,
                    i: 0,
                    now_ms,
                    depth: 0,
                    conditions: 0,
                }
                .statement()
            })
            .collect(),
    }
}

struct Parser<'a> {
    t: &'a [Tok],
    i: usize,
    now_ms: i64,
    /// Parentheses open around the condition being read.
    depth: usize,
    /// Comparisons read in this statement's condition.
    conditions: usize,
}

/// Parentheses a condition may nest (evaluation recurses on them).
pub const MAX_DEPTH: usize = 100;
/// Comparisons one condition may join with AND/OR (a left-deep tree as deep).
pub const MAX_CONDITIONS: usize = 1_000;
/// Statements one request may hold.
pub const MAX_STATEMENTS: usize = 1_000;

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.t.get(self.i).cloned();
        self.i += 1;
        t
    }

    /// The next token is the keyword `kw` (case-insensitive): consume it.
    fn kw(&mut self, kw: &str) -> bool {
        match self.peek() {
            Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw) => {
                self.i += 1;
                true
            }
            _ => false,
        }
    }

    fn sym(&mut self, s: &str) -> bool {
        if self.peek() == Some(&Tok::Sym(s.into())) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn found(&self) -> String {
        match self.peek() {
            None => "EOF".into(),
            Some(Tok::Ident(s) | Tok::Num(s) | Tok::Sym(s)) => s.clone(),
            Some(Tok::Str(s)) => format!("'{s}'"),
            Some(Tok::Regex(s)) => format!("/{s}/"),
        }
    }

    fn expected<T>(&self, what: &str) -> Result<T, ParseError> {
        Err(ParseError(format!(
            "error parsing query: found {}, expected {what}",
            self.found()
        )))
    }

    fn ident(&mut self, what: &str) -> Result<String, ParseError> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            _ => {
                self.i -= 1;
                self.expected(what)
            }
        }
    }

    fn statement(mut self) -> Result<Statement, ParseError> {
        let s = if self.kw("SHOW") {
            self.show()?
        } else if self.kw("SELECT") {
            Statement::Select(self.select()?)
        } else if self.kw("CREATE") && self.kw("DATABASE") {
            self.i = self.t.len();
            Statement::CreateDatabase
        } else if let Some(Tok::Ident(k)) = self.peek().cloned().filter(|t| {
            matches!(t, Tok::Ident(k) if ["DROP", "DELETE", "ALTER", "GRANT", "REVOKE", "KILL", "CREATE", "EXPLAIN", "SET"]
                .iter()
                .any(|w| k.eq_ignore_ascii_case(w)))
        }) {
            self.i = self.t.len();
            Statement::Unsupported(format!(
                "watermeter does not do {} statements; it answers SELECT and SHOW reads (its data changes only through writes and corrections)",
                k.to_ascii_uppercase()
            ))
        } else {
            return self.expected("SELECT or SHOW");
        };
        if self.i < self.t.len() {
            return self.expected("end of statement");
        }
        Ok(s)
    }

    /// `FROM [db.rp.]m`: the measurement.
    fn from(&mut self) -> Result<Option<String>, ParseError> {
        if !self.kw("FROM") {
            return Ok(None);
        }
        let mut name = self.ident("a measurement")?;
        while self.sym(".") {
            name = self.ident("a measurement")?;
        }
        Ok(Some(name))
    }

    fn show(&mut self) -> Result<Statement, ParseError> {
        const OTHER: [&str; 10] = [
            "SERIES",
            "USERS",
            "STATS",
            "DIAGNOSTICS",
            "QUERIES",
            "SHARDS",
            "SHARD",
            "CONTINUOUS",
            "SUBSCRIPTIONS",
            "GRANTS",
        ];
        if let Some(Tok::Ident(k)) = self.peek() {
            if OTHER.iter().any(|w| k.eq_ignore_ascii_case(w)) {
                let what = k.to_ascii_uppercase();
                self.i = self.t.len();
                return Ok(Statement::Unsupported(format!("watermeter does not answer SHOW {what}; it answers SHOW DATABASES, MEASUREMENTS, FIELD KEYS, TAG KEYS, TAG VALUES and RETENTION POLICIES")));
            }
        }
        if self.kw("DATABASES") {
            return Ok(Statement::ShowDatabases);
        }
        if self.kw("RETENTION") {
            if !self.kw("POLICIES") {
                return self.expected("POLICIES");
            }
            if self.kw("ON") {
                self.ident("a database")?;
            }
            return Ok(Statement::ShowRetentionPolicies);
        }
        if self.kw("MEASUREMENTS") {
            if self.kw("ON") {
                self.ident("a database")?;
            }
            let mut pattern = None;
            if self.kw("WITH") {
                if !self.kw("MEASUREMENT") {
                    return self.expected("MEASUREMENT");
                }
                match (self.next(), self.next()) {
                    (Some(Tok::Sym(op)), Some(Tok::Regex(r))) if op == "=~" => pattern = Some(r),
                    (Some(Tok::Sym(op)), Some(Tok::Ident(n) | Tok::Str(n))) if op == "=" => {
                        pattern = Some(format!("^{n}$"))
                    }
                    _ => return self.expected("=~ /regex/"),
                }
            }
            let limit = self.limit()?;
            return Ok(Statement::ShowMeasurements { pattern, limit });
        }
        if self.kw("FIELD") {
            if !self.kw("KEYS") {
                return self.expected("KEYS");
            }
            if self.kw("ON") {
                self.ident("a database")?;
            }
            return Ok(Statement::ShowFieldKeys { from: self.from()? });
        }
        if self.kw("TAG") {
            if self.kw("KEYS") {
                if self.kw("ON") {
                    self.ident("a database")?;
                }
                let from = self.from()?;
                self.limit()?;
                return Ok(Statement::ShowTagKeys { from });
            }
            if self.kw("VALUES") {
                if self.kw("ON") {
                    self.ident("a database")?;
                }
                let from = self.from()?;
                if !(self.kw("WITH") && self.kw("KEY") && self.sym("=")) {
                    return self.expected("WITH KEY =");
                }
                let key = match self.next() {
                    Some(Tok::Ident(k) | Tok::Str(k)) => k,
                    _ => return self.expected("a tag key"),
                };
                // A WHERE on other tags narrows nothing here: meters have fixed tags.
                while self.i < self.t.len()
                    && !matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case("LIMIT"))
                {
                    self.i += 1;
                }
                self.limit()?;
                return Ok(Statement::ShowTagValues { from, key });
            }
        }
        self.expected(
            "DATABASES, MEASUREMENTS, FIELD KEYS, TAG KEYS, TAG VALUES or RETENTION POLICIES",
        )
    }

    fn limit(&mut self) -> Result<Option<usize>, ParseError> {
        if !self.kw("LIMIT") {
            return Ok(None);
        }
        match self.next() {
            Some(Tok::Num(n)) => n.parse().map(Some).map_err(|_| {
                ParseError(format!("error parsing query: found {n}, expected integer"))
            }),
            _ => self.expected("integer"),
        }
    }

    fn select(&mut self) -> Result<Select, ParseError> {
        let mut fields = Vec::new();
        loop {
            fields.push(self.field()?);
            if !self.sym(",") {
                break;
            }
        }
        let measurement = match self.from()? {
            Some(m) => m,
            None => return self.expected("FROM"),
        };
        let mut s = Select {
            fields,
            measurement,
            condition: None,
            interval_ms: None,
            group_tags: Vec::new(),
            fill: Fill::Null,
            descending: false,
            limit: None,
            tz: None,
        };
        if self.kw("WHERE") {
            s.condition = Some(self.or()?);
        }
        if self.kw("GROUP") {
            if !self.kw("BY") {
                return self.expected("BY");
            }
            loop {
                if self.kw("time") {
                    if !self.sym("(") {
                        return self.expected("(");
                    }
                    let d = match self.next() {
                        Some(Tok::Num(n)) => {
                            let d = duration_ms(&n)
                                .ok_or_else(|| ParseError(format!("invalid duration {n}")))?;
                            if d == 0 && n.starts_with(|c: char| c.is_ascii_digit() && c != '0') {
                                return Err(ParseError(format!(
                                    "GROUP BY time({n}) is below the 1 ms resolution watermeter keeps; use 1ms or more"
                                )));
                            }
                            d
                        }
                        _ => return self.expected("a duration"),
                    };
                    if d <= 0 {
                        return Err(ParseError(
                            "GROUP BY time must be a positive duration".into(),
                        ));
                    }
                    if !self.sym(")") {
                        return self.expected(")");
                    }
                    s.interval_ms = Some(d);
                } else if self.sym("*") {
                    s.group_tags.push("*".into());
                } else {
                    s.group_tags.push(self.ident("time(…) or a tag")?);
                }
                if !self.sym(",") {
                    break;
                }
            }
        }
        loop {
            if self.kw("fill") {
                if !self.sym("(") {
                    return self.expected("(");
                }
                s.fill = match self.next() {
                    Some(Tok::Ident(f)) if f.eq_ignore_ascii_case("null") => Fill::Null,
                    Some(Tok::Ident(f)) if f.eq_ignore_ascii_case("none") => Fill::None,
                    Some(Tok::Ident(f)) if f.eq_ignore_ascii_case("previous") => Fill::Previous,
                    Some(Tok::Ident(f)) if f.eq_ignore_ascii_case("linear") => Fill::Linear,
                    Some(Tok::Num(n)) => Fill::Value(
                        n.parse()
                            .map_err(|_| ParseError(format!("invalid fill value {n}")))?,
                    ),
                    Some(Tok::Sym(m)) if m == "-" => match self.next() {
                        Some(Tok::Num(n)) => Fill::Value(
                            -n.parse::<f64>()
                                .map_err(|_| ParseError(format!("invalid fill value -{n}")))?,
                        ),
                        _ => return self.expected("a number"),
                    },
                    _ => return self.expected("null, none, previous, linear or a number"),
                };
                if !self.sym(")") {
                    return self.expected(")");
                }
            } else if self.kw("ORDER") {
                if !(self.kw("BY") && self.kw("time")) {
                    return self.expected("BY time");
                }
                if self.kw("DESC") {
                    s.descending = true;
                } else {
                    self.kw("ASC");
                }
            } else if self.kw("LIMIT") {
                self.i -= 1;
                s.limit = self.limit()?;
            } else if self.kw("SLIMIT") || self.kw("OFFSET") || self.kw("SOFFSET") {
                self.next();
            } else if self.kw("tz") {
                if !self.sym("(") {
                    return self.expected("(");
                }
                s.tz = match self.next() {
                    Some(Tok::Str(z)) => Some(z),
                    _ => return self.expected("a time zone in single quotes"),
                };
                if !self.sym(")") {
                    return self.expected(")");
                }
            } else {
                break;
            }
        }
        Ok(s)
    }

    fn field(&mut self) -> Result<Field, ParseError> {
        const RAW: &str = "watermeter answers aggregates such as sum(\"liters\") GROUP BY time(1h), not raw points; single events are in /api/v1/meters/{id}/usage?step=minute and watermeter export";
        let outer = match self.next() {
            Some(Tok::Ident(name)) => name.to_ascii_lowercase(),
            _ => return Err(ParseError(RAW.into())),
        };
        if !self.sym("(") {
            return Err(ParseError(RAW.into()));
        }
        let (agg, transform) = if ["cumulative_sum", "non_negative_difference", "difference"]
            .contains(&outer.as_str())
        {
            let inner = self
                .ident("an aggregate such as sum(\"liters\")")?
                .to_ascii_lowercase();
            if !self.sym("(") {
                return self.expected("(");
            }
            (inner, Some(outer.clone()))
        } else {
            (outer.clone(), None)
        };
        const AGGS: [&str; 8] = [
            "sum", "count", "mean", "max", "min", "first", "last", "spread",
        ];
        if !AGGS.contains(&agg.as_str()) {
            return Err(ParseError(format!(
                "unsupported function {agg}(); watermeter answers {}",
                AGGS.join(", ")
            )));
        }
        let field = self.ident("a field key")?;
        if !self.sym(")") {
            return self.expected(")");
        }
        if transform.is_some() && !self.sym(")") {
            return self.expected(")");
        }
        let name = if self.kw("AS") {
            self.ident("an alias")?
        } else {
            outer
        };
        Ok(Field {
            agg,
            transform,
            field,
            name,
        })
    }

    fn or(&mut self) -> Result<Cond, ParseError> {
        let mut left = self.and()?;
        while self.kw("OR") {
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, ParseError> {
        let mut left = self.term()?;
        while self.kw("AND") {
            left = Cond::And(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Cond, ParseError> {
        if self.sym("(") {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(ParseError(format!(
                    "the condition is nested too deeply: more than {MAX_DEPTH} levels of parentheses"
                )));
            }
            let c = self.or()?;
            if !self.sym(")") {
                return self.expected(")");
            }
            self.depth -= 1;
            return Ok(c);
        }
        self.conditions += 1;
        if self.conditions > MAX_CONDITIONS {
            return Err(ParseError(format!(
                "the condition is nested too deeply: more than {MAX_CONDITIONS} comparisons joined by AND or OR"
            )));
        }
        let lhs = self.ident("a condition")?;
        let op = match self.next() {
            Some(Tok::Sym(s)) => match s.as_str() {
                "=" => Op::Eq,
                "!=" | "<>" => Op::Ne,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                "=~" => Op::Match,
                "!~" => Op::NotMatch,
                _ => {
                    self.i -= 1;
                    return self.expected("a comparison");
                }
            },
            _ => {
                self.i -= 1;
                return self.expected("a comparison");
            }
        };
        if lhs.eq_ignore_ascii_case("time") {
            return Ok(Cond::Time(op, self.instant()?));
        }
        match self.next() {
            Some(Tok::Str(v) | Tok::Regex(v) | Tok::Num(v) | Tok::Ident(v)) => {
                Ok(Cond::Tag(lhs, op, v))
            }
            _ => {
                self.i -= 1;
                self.expected("a tag value")
            }
        }
    }

    /// `now() [± d]`, `123ms`/`123s`/`123` (ns), `'RFC 3339'`, each `± d`.
    fn instant(&mut self) -> Result<i64, ParseError> {
        let mut t = match self.next() {
            Some(Tok::Ident(n)) if n.eq_ignore_ascii_case("now") => {
                if !(self.sym("(") && self.sym(")")) {
                    return self.expected("()");
                }
                self.now_ms
            }
            Some(Tok::Str(s)) => chrono::DateTime::parse_from_rfc3339(&s)
                .map(|d| d.timestamp_millis())
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
                        .map(|d| d.and_utc().timestamp_millis())
                })
                .map_err(|_| ParseError(format!("unable to parse time {s:?}")))?,
            Some(Tok::Num(n)) => {
                if n.chars().all(|c| c.is_ascii_digit()) {
                    n.parse::<i64>()
                        .map_err(|_| ParseError(format!("invalid time {n}")))?
                        / 1_000_000
                } else {
                    duration_ms(&n).ok_or_else(|| ParseError(format!("invalid time {n}")))?
                }
            }
            _ => {
                self.i -= 1;
                return self.expected("a time");
            }
        };
        loop {
            let sign = if self.sym("+") {
                1
            } else if self.sym("-") {
                -1
            } else {
                break;
            };
            match self.next() {
                Some(Tok::Num(n)) => {
                    t = duration_ms(&n)
                        .and_then(|d| t.checked_add(sign * d))
                        .ok_or_else(|| ParseError(format!("invalid duration {n}")))?
                }
                _ => return self.expected("a duration"),
            }
        }
        Ok(t)
    }
}

/// `90s`, `5m`, `1h`, `240000ms`, `2d`, `1w`, `1000u`, `5ns` in milliseconds.
pub fn duration_ms(s: &str) -> Option<i64> {
    let digits = s.find(|c: char| !c.is_ascii_digit())?;
    let n: i64 = s[..digits].parse().ok()?;
    match &s[digits..] {
        "ns" => Some(n / 1_000_000),
        "u" | "µ" | "us" => Some(n / 1000),
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        "w" => n.checked_mul(7 * 86_400_000),
        _ => None,
    }
}

#[cfg(test)]
#[path = "influxql_tests.rs"]
mod tests;
