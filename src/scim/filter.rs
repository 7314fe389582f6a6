//! SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2), parsed against the published
//! schema and evaluated in Rust over a resource's JSON representation.
//!
//! A filter is never turned into SQL: the store loads rows with fixed, bound queries and this
//! module decides which match. Attribute names are checked against [`schema`](super::schema) at
//! parse time, so a filter on an attribute Beffroi does not publish, an operator that makes no
//! sense for a type (`gt` on a boolean) or a malformed literal is refused before any work.
//! Length and nesting are bounded so that a hostile filter cannot exhaust the stack.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::parse_time;
use super::schema::{AttrType, Attribute, ResourceSchema};

const MAX_FILTER_CHARS: usize = 4096;
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    LParen,
    RParen,
    LBracket,
    RBracket,
    Str(String),
    Word(String),
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | '[' | ']' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    '[' => Token::LBracket,
                    _ => Token::RBracket,
                });
            }
            '"' => {
                chars.next();
                let mut escaped = false;
                let mut end = None;
                for (i, ch) in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if ch == '\\' {
                        escaped = true;
                    } else if ch == '"' {
                        end = Some(i);
                        break;
                    }
                }
                let end = end.ok_or("unterminated string")?;
                // The literal is a JSON string (RFC 7644 §3.4.2.2 compValue).
                let s: String = serde_json::from_str(&text[start..=end])
                    .map_err(|_| "invalid escape in string")?;
                tokens.push(Token::Str(s));
            }
            _ => {
                let mut end = text.len();
                while let Some(&(i, ch)) = chars.peek() {
                    if ch.is_whitespace() || "()[]\"".contains(ch) {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                tokens.push(Token::Word(text[start..end].to_owned()));
            }
        }
    }
    Ok(tokens)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Bool(bool),
    Null,
}

/// An attribute a filter names: `attr` or `attr.sub`, already resolved.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub attr: &'static Attribute,
    pub sub: Option<&'static Attribute>,
}

impl Target {
    /// The attribute whose values are compared: the sub-attribute, or for a multi-valued
    /// complex attribute its `value` (RFC 7644 §3.4.2.2).
    fn leaf(&self) -> Option<&'static Attribute> {
        match (self.sub, self.attr.kind) {
            (Some(sub), _) => Some(sub),
            (None, AttrType::Complex) if self.attr.multi_valued => self.attr.value_sub(),
            (None, AttrType::Complex) => None,
            (None, _) => Some(self.attr),
        }
    }

    /// The values at this path in `obj`, flattened over multi-valued attributes.
    fn values<'v>(&self, obj: &'v Map<String, Value>) -> Vec<&'v Value> {
        let Some(v) = obj.get(self.attr.name) else {
            return Vec::new();
        };
        let elements: Vec<&Value> = match v {
            Value::Array(a) if self.attr.multi_valued => a.iter().collect(),
            other => vec![other],
        };
        let leaf_name = match (self.sub, self.attr.kind, self.attr.multi_valued) {
            (Some(sub), _, _) => Some(sub.name),
            (None, AttrType::Complex, true) => Some("value"),
            _ => None,
        };
        elements
            .into_iter()
            .filter_map(|e| match leaf_name {
                Some(name) => e.get(name),
                None => Some(e),
            })
            .filter(|v| !v.is_null())
            .collect()
    }
}

#[derive(Debug, Clone)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(Target),
    Compare(Target, Op, Literal),
    /// `attr[filter]`: some value of a multi-valued complex attribute matches the inner filter,
    /// whose attribute names are sub-attributes of `attr`.
    ValuePath(&'static Attribute, Box<Filter>),
}

#[derive(Clone, Copy)]
enum Scope {
    Resource(&'static ResourceSchema),
    Within(&'static Attribute),
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    scope: Scope,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&Token> {
        let t = self.tokens.get(self.pos);
        self.pos += 1;
        t
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn descend(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("filter nests too deeply".into());
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Filter, String> {
        self.descend()?;
        let mut left = self.and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        self.depth -= 1;
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.peek_keyword("not") {
            self.pos += 1;
            if self.peek() != Some(&Token::LParen) {
                return Err("\"not\" must be followed by a parenthesised filter".into());
            }
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Token::LParen) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Token::RParen) => Ok(inner),
                    _ => Err("missing \")\"".into()),
                }
            }
            Some(Token::Word(w)) => {
                let w = w.clone();
                self.attribute_expression(&w)
            }
            Some(other) => Err(format!("unexpected {other:?}")),
            None => Err("filter ends too early".into()),
        }
    }

    fn resolve(&self, path: &str) -> Result<Target, String> {
        let found = match self.scope {
            Scope::Resource(schema) => schema.resolve(path),
            Scope::Within(parent) => parent.sub(path).map(|a| (a, None)),
        };
        found
            .map(|(attr, sub)| Target { attr, sub })
            .ok_or_else(|| format!("unknown attribute {path:?}"))
    }

    fn attribute_expression(&mut self, path: &str) -> Result<Filter, String> {
        let target = self.resolve(path)?;
        if self.peek() == Some(&Token::LBracket) {
            let Scope::Resource(_) = self.scope else {
                return Err("value filters do not nest".into());
            };
            if target.sub.is_some()
                || target.attr.kind != AttrType::Complex
                || !target.attr.multi_valued
            {
                return Err(format!("{path} is not a multi-valued complex attribute"));
            }
            self.pos += 1;
            let outer = self.scope;
            self.scope = Scope::Within(target.attr);
            let inner = self.or()?;
            self.scope = outer;
            if self.next() != Some(&Token::RBracket) {
                return Err("missing \"]\"".into());
            }
            return Ok(Filter::ValuePath(target.attr, Box::new(inner)));
        }
        let op_word = match self.next() {
            Some(Token::Word(w)) => w.clone(),
            _ => return Err(format!("expected an operator after {path}")),
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(target));
        }
        let op = Op::parse(&op_word).ok_or_else(|| format!("unknown operator {op_word:?}"))?;
        let literal = match self.next() {
            Some(Token::Str(s)) => Literal::Str(s.clone()),
            Some(Token::Word(w)) if w == "true" => Literal::Bool(true),
            Some(Token::Word(w)) if w == "false" => Literal::Bool(false),
            Some(Token::Word(w)) if w == "null" => Literal::Null,
            Some(Token::Word(w)) if w.parse::<f64>().is_ok() => {
                return Err(format!("{path} is not a number"));
            }
            _ => return Err(format!("expected a value after {path} {op_word}")),
        };
        check_comparison(path, &target, op, &literal)?;
        Ok(Filter::Compare(target, op, literal))
    }
}

/// Refuses comparisons RFC 7644 §3.4.2.2 does not define for the attribute's type.
fn check_comparison(path: &str, target: &Target, op: Op, literal: &Literal) -> Result<(), String> {
    let leaf = target
        .leaf()
        .ok_or_else(|| format!("{path} is complex: compare one of its sub-attributes"))?;
    let equality = matches!(op, Op::Eq | Op::Ne);
    match (leaf.kind, literal) {
        (_, Literal::Null) if equality => Ok(()),
        (AttrType::Boolean, Literal::Bool(_)) if equality => Ok(()),
        (AttrType::Boolean, _) => Err(format!("{path} is a boolean: only eq/ne true/false")),
        (AttrType::String | AttrType::Reference, Literal::Str(_)) => Ok(()),
        (AttrType::DateTime, Literal::Str(s))
            if matches!(op, Op::Co | Op::Sw | Op::Ew) || parse_time(s).is_some() =>
        {
            Ok(())
        }
        (AttrType::DateTime, _) => Err(format!("{path} takes an RFC 3339 date-time")),
        _ => Err(format!("{path} takes a string")),
    }
}

fn parse_with(tokens: &[Token], scope: Scope) -> Result<(Filter, usize), String> {
    let mut parser = Parser {
        tokens,
        pos: 0,
        scope,
        depth: 0,
    };
    let filter = parser.or()?;
    Ok((filter, parser.pos))
}

/// Parses a `filter` query parameter or SearchRequest member against `schema`.
pub fn parse(text: &str, schema: &'static ResourceSchema) -> Result<Filter, ScimError> {
    let fail = |why: String| ScimError::invalid_filter(format!("invalid filter: {why}"));
    if text.chars().count() > MAX_FILTER_CHARS {
        return Err(fail("too long".into()));
    }
    let tokens = lex(text).map_err(fail)?;
    let (filter, used) = parse_with(&tokens, Scope::Resource(schema)).map_err(fail)?;
    if used != tokens.len() {
        return Err(fail("unexpected text after the filter".into()));
    }
    Ok(filter)
}

fn lower(s: &str, case_exact: bool) -> String {
    if case_exact {
        s.to_owned()
    } else {
        s.to_lowercase()
    }
}

fn compare(value: &Value, leaf: &Attribute, op: Op, literal: &Literal) -> bool {
    match (value, literal) {
        (Value::Bool(b), Literal::Bool(l)) => (op == Op::Eq) == (b == l),
        (Value::String(s), Literal::Str(l)) => {
            if leaf.kind == AttrType::DateTime && !matches!(op, Op::Co | Op::Sw | Op::Ew) {
                let (Some(a), Some(b)) = (parse_time(s), parse_time(l)) else {
                    return false;
                };
                return ordered(op, a.cmp(&b));
            }
            let (s, l) = (lower(s, leaf.case_exact), lower(l, leaf.case_exact));
            match op {
                Op::Co => s.contains(&l),
                Op::Sw => s.starts_with(&l),
                Op::Ew => s.ends_with(&l),
                _ => ordered(op, s.cmp(&l)),
            }
        }
        _ => false,
    }
}

fn ordered(op: Op, ord: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Op::Eq => ord == Equal,
        Op::Ne => ord != Equal,
        Op::Gt => ord == Greater,
        Op::Ge => ord != Less,
        Op::Lt => ord == Less,
        Op::Le => ord != Greater,
        Op::Co | Op::Sw | Op::Ew => false,
    }
}

fn is_present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

impl Filter {
    /// Whether the resource (or, inside a value filter, the complex value) `obj` matches.
    pub fn matches(&self, obj: &Map<String, Value>) -> bool {
        match self {
            Filter::And(a, b) => a.matches(obj) && b.matches(obj),
            Filter::Or(a, b) => a.matches(obj) || b.matches(obj),
            Filter::Not(f) => !f.matches(obj),
            Filter::Present(t) => t.values(obj).into_iter().any(is_present),
            Filter::ValuePath(attr, inner) => obj
                .get(attr.name)
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .filter_map(Value::as_object)
                        .any(|e| inner.matches(e))
                }),
            Filter::Compare(t, op, literal) => {
                let values = t.values(obj);
                let Some(leaf) = t.leaf() else {
                    return false;
                };
                match (op, literal) {
                    (Op::Eq, Literal::Null) => values.is_empty(),
                    (Op::Ne, Literal::Null) => !values.is_empty(),
                    // "ne" holds when no value is equal, so that `ne` is the negation of `eq`
                    // on multi-valued attributes too.
                    (Op::Ne, _) => !values.iter().any(|v| compare(v, leaf, Op::Eq, literal)),
                    _ => values.iter().any(|v| compare(v, leaf, *op, literal)),
                }
            }
        }
    }

    /// For a filter made only of `sub eq value` terms joined by `and`, those terms: what a new
    /// value must hold to match it (used when PATCH adds through a value filter that matches
    /// nothing yet, e.g. `emails[type eq "work"].value`).
    pub fn equalities(&self) -> Option<Vec<(&'static Attribute, Value)>> {
        match self {
            Filter::Compare(Target { attr, sub: None }, Op::Eq, literal) => {
                let v = match literal {
                    Literal::Str(s) => Value::String(s.clone()),
                    Literal::Bool(b) => Value::Bool(*b),
                    Literal::Null => return None,
                };
                Some(vec![(*attr, v)])
            }
            Filter::And(a, b) => {
                let mut all = a.equalities()?;
                all.extend(b.equalities()?);
                Some(all)
            }
            _ => None,
        }
    }
}

/// A PATCH target (RFC 7644 §3.5.2: `attrPath` or `valuePath [subAttr]`).
#[derive(Debug, Clone)]
pub struct PatchPath {
    pub attr: &'static Attribute,
    pub filter: Option<Filter>,
    pub sub: Option<&'static Attribute>,
}

/// Parses a PATCH `path` against `schema`.
pub fn parse_path(text: &str, schema: &'static ResourceSchema) -> Result<PatchPath, ScimError> {
    let fail = |why: String| ScimError::invalid_path(format!("invalid path {text:?}: {why}"));
    if text.chars().count() > MAX_FILTER_CHARS {
        return Err(fail("too long".into()));
    }
    let rest = schema
        .strip_urn(text.trim())
        .ok_or_else(|| fail("not an attribute of this resource".into()))?;
    let tokens = lex(rest).map_err(fail)?;
    let Some(Token::Word(head)) = tokens.first() else {
        return Err(fail("expected an attribute name".into()));
    };
    let (attr, sub) = schema
        .resolve(head)
        .ok_or_else(|| fail("unknown attribute".into()))?;
    if tokens.len() == 1 {
        return Ok(PatchPath {
            attr,
            filter: None,
            sub,
        });
    }
    if sub.is_some() || tokens.get(1) != Some(&Token::LBracket) {
        return Err(fail("unexpected text".into()));
    }
    if attr.kind != AttrType::Complex || !attr.multi_valued {
        return Err(fail(
            "a value filter needs a multi-valued complex attribute".into(),
        ));
    }
    let (filter, used) = parse_with(&tokens[2..], Scope::Within(attr)).map_err(fail)?;
    let mut pos = 2 + used;
    if tokens.get(pos) != Some(&Token::RBracket) {
        return Err(fail("missing \"]\"".into()));
    }
    pos += 1;
    let sub = match tokens.get(pos) {
        None => None,
        Some(Token::Word(w)) if w.starts_with('.') && pos + 1 == tokens.len() => Some(
            attr.sub(&w[1..])
                .ok_or_else(|| fail("unknown sub-attribute".into()))?,
        ),
        Some(_) => return Err(fail("unexpected text after \"]\"".into())),
    };
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
