//! Expressions: pest's flat runs of operands and operators → AST, ordered by a `PrattParser`;
//! primaries, calls and their arguments, `if` and `partition`.

use std::sync::OnceLock;

use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};

use super::ast::*;
use super::grammar::Rule;
use super::lower::Lowerer;
use crate::diagnostic::Diagnostic;
use crate::limits;
use crate::source::Span;

/// The deepest expression tree accepted ([`limits::EXPRESSION`]); deeper input is reported, not
/// built, so that no later recursive pass can run out of stack.
const MAX_DEPTH: usize = limits::EXPRESSION.max;

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        PrattParser::new()
            .op(Op::infix(Rule::or, Assoc::Left) | Op::infix(Rule::bad_or, Assoc::Left))
            .op(Op::infix(Rule::and, Assoc::Left) | Op::infix(Rule::bad_and, Assoc::Left))
            .op(Op::prefix(Rule::not))
            .op(Op::infix(Rule::eq, Assoc::Left)
                | Op::infix(Rule::ne, Assoc::Left)
                | Op::infix(Rule::lt, Assoc::Left)
                | Op::infix(Rule::le, Assoc::Left)
                | Op::infix(Rule::gt, Assoc::Left)
                | Op::infix(Rule::ge, Assoc::Left)
                | Op::infix(Rule::is, Assoc::Left)
                | Op::infix(Rule::is_not, Assoc::Left))
            .op(Op::infix(Rule::add, Assoc::Left) | Op::infix(Rule::sub, Assoc::Left))
            .op(Op::infix(Rule::mul, Assoc::Left) | Op::infix(Rule::div, Assoc::Left) | Op::infix(Rule::rem, Assoc::Left))
            .op(Op::prefix(Rule::neg) | Op::prefix(Rule::pos))
            .op(Op::infix(Rule::pow, Assoc::Right))
            .op(Op::postfix(Rule::call_args) | Op::postfix(Rule::index))
    })
}

impl Lowerer<'_> {
    pub(super) fn lower_opt_expr(&mut self, pair: Option<Pair<Rule>>, span: Span) -> Expr {
        match pair {
            Some(p) => self.lower_expr(p),
            None => Expr { kind: ExprKind::Error, span },
        }
    }

    /// Lowers an `expr` or `bexpr` pair: a flat run of operands and operators.
    pub(super) fn lower_expr(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let pairs = pair.into_inner();
        let operators = pairs.clone().filter(|p| is_operator(p.as_rule())).count();
        if operators > MAX_DEPTH {
            self.error(too_deep(span));
            return Expr { kind: ExprKind::Error, span };
        }
        let expr = self.pratt_expr(pairs);
        if depth(&expr) > MAX_DEPTH {
            self.error(too_deep(span));
            return Expr { kind: ExprKind::Error, span };
        }
        expr
    }

    fn pratt_expr(&mut self, pairs: Pairs<Rule>) -> Expr {
        let this = std::cell::RefCell::new(self);
        pratt()
            .map_primary(|p| this.borrow_mut().lower_primary(p))
            .map_prefix(|op, operand| this.borrow_mut().lower_prefix(op, operand))
            .map_infix(|lhs, op, rhs| this.borrow_mut().lower_infix(lhs, op, rhs))
            .map_postfix(|base, op| this.borrow_mut().lower_postfix(base, op))
            .parse(pairs)
    }

    fn lower_prefix(&mut self, op: Pair<Rule>, operand: Expr) -> Expr {
        let span = self.span(&op).to(operand.span);
        let op = match op.as_rule() {
            Rule::neg => UnaryOp::Neg,
            Rule::pos => UnaryOp::Pos,
            _ => UnaryOp::Not,
        };
        Expr { kind: ExprKind::Unary { op, operand: Box::new(operand) }, span }
    }

    fn lower_infix(&mut self, lhs: Expr, op: Pair<Rule>, rhs: Expr) -> Expr {
        let op_span = self.span(&op);
        let span = lhs.span.to(rhs.span);
        let op = match op.as_rule() {
            Rule::or => BinaryOp::Or,
            Rule::bad_or => {
                self.error(
                    Diagnostic::error("python-syntax", "`||` is not an operator in .opt files")
                        .with_primary(op_span, "use `or` here")
                        .with_help("write `or`, as in Python"),
                );
                BinaryOp::Or
            }
            Rule::and => BinaryOp::And,
            Rule::bad_and => {
                self.error(
                    Diagnostic::error("python-syntax", "`&&` is not an operator in .opt files")
                        .with_primary(op_span, "use `and` here")
                        .with_help("write `and`, as in Python"),
                );
                BinaryOp::And
            }
            Rule::eq | Rule::is => BinaryOp::Eq,
            Rule::ne | Rule::is_not => BinaryOp::Ne,
            Rule::lt => BinaryOp::Lt,
            Rule::le => BinaryOp::Le,
            Rule::gt => BinaryOp::Gt,
            Rule::ge => BinaryOp::Ge,
            Rule::add => BinaryOp::Add,
            Rule::sub => BinaryOp::Sub,
            Rule::mul => BinaryOp::Mul,
            Rule::div => BinaryOp::Div,
            Rule::rem => BinaryOp::Rem,
            _ => BinaryOp::Pow,
        };
        if op.is_comparison()
            && let ExprKind::Binary { op: inner, op_span: inner_span, .. } = &lhs.kind
            && inner.is_comparison()
        {
            self.error(
                Diagnostic::error("chained-comparison", "comparisons cannot be chained")
                    .with_primary(op_span, "second comparison")
                    .with_secondary(*inner_span, "first comparison")
                    .with_help("split it with `and`: `a < b and b < c`"),
            );
            // An error node, so the checker does not add a type error about `bool < int`.
            return Expr { kind: ExprKind::Error, span };
        }
        Expr { kind: ExprKind::Binary { op, op_span, lhs: Box::new(lhs), rhs: Box::new(rhs) }, span }
    }

    fn lower_postfix(&mut self, base: Expr, op: Pair<Rule>) -> Expr {
        let op_span = self.span(&op);
        let span = base.span.to(op_span);
        match op.as_rule() {
            Rule::call_args => {
                let args = self.lower_args(op);
                Expr { kind: ExprKind::Call { callee: Box::new(base), args, args_span: op_span }, span }
            }
            _ => {
                // index: `[i]` or a slice `[a:b]`, whose `:` tells the bounds apart
                let mut colon = false;
                let (mut start, mut end) = (None, None);
                for part in op.into_inner() {
                    match part.as_rule() {
                        Rule::slice_colon => colon = true,
                        _ if colon => end = Some(Box::new(self.lower_expr(part))),
                        _ => start = Some(Box::new(self.lower_expr(part))),
                    }
                }
                match (colon, start) {
                    (true, start) => Expr { kind: ExprKind::Slice { base: Box::new(base), start, end }, span },
                    (false, Some(index)) => Expr { kind: ExprKind::Index { base: Box::new(base), index }, span },
                    (false, None) => Expr { kind: ExprKind::Error, span },
                }
            }
        }
    }

    fn lower_args(&mut self, pair: Pair<Rule>) -> Vec<Arg> {
        let mut args = Vec::new();
        for part in pair.into_inner() {
            let span = self.span(&part);
            match part.as_rule() {
                Rule::kwarg | Rule::bad_kwarg_colon => {
                    let bad = part.as_rule() == Rule::bad_kwarg_colon;
                    let mut inner = part.into_inner();
                    let name = inner.next().map(|n| self.lower_ident(n));
                    let value = self.lower_opt_expr(inner.next(), span);
                    let Some(name) = name else { continue };
                    if bad {
                        let colon = self.find_after(name.span, ':');
                        self.error(
                            Diagnostic::error("keyword-colon", "keyword arguments are written `name=value`")
                                .with_primary(colon, "expected `=`, found `:`")
                                .with_help(format!("write `{}={}`", name.name, self.text(value.span))),
                        );
                    }
                    args.push(Arg::Keyword { name, value });
                }
                Rule::splat => {
                    let value = self.lower_opt_expr(part.into_inner().next(), span);
                    args.push(Arg::Splat(value));
                }
                Rule::bad_missing_comma => {
                    let at = span.end_point();
                    let prev_end = args.last().map(arg_span).map_or(at, Span::end_point);
                    self.error(
                        Diagnostic::error("missing-comma", "arguments must be separated by commas")
                            .with_primary(prev_end, "expected `,` here")
                            .with_help("add a `,` between the two arguments"),
                    );
                }
                _ => args.push(Arg::Positional(self.lower_expr(part))),
            }
        }
        args
    }

    /// The diagnostic for a Python `lambda`, with the fix for what it stands in: a mask (the
    /// keyword says so, or it reads `ndim` as Optax's mask idiom does), a schedule (a keyword
    /// such as `learning_rate`, or a function of the step), or another function.
    fn lambda(&self, span: Span) -> Diagnostic {
        let before = self.source.get(..span.start as usize).unwrap_or("").trim_end();
        let keyword = before
            .strip_suffix('=')
            .map(|b| b.trim_end())
            .map(|b| &b[b.rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |i| i + 1)..])
            .unwrap_or("");
        let body = self.text(span);
        let d = Diagnostic::error("python-syntax", "`lambda` is not part of .opt files").with_primary(span, "a Python function");
        if keyword.contains("mask") || body.contains("ndim") || body.contains("tree") {
            d.with_note("a mask selects leaves by their shape (`ndim`, `size`) or their dotted names (globs), combined with `and`, `or`, `not`")
                .with_help(format!(
                    "write the mask itself: `{}=ndim > 1` (Optax's rank mask), `not \"*.bias\"`, `[\"*.weight\", \"*.kernel\"]`",
                    if keyword.is_empty() { "mask" } else { keyword }
                ))
        } else if keyword.contains("learning_rate") || keyword.contains("schedule") || keyword.ends_with("_fn") || body.contains("step") || body.contains("count") {
            d.with_note("a schedule is a function of the step count, written as a `schedule` definition")
                .with_help("use a library schedule (`exponential_decay(init_value=1e-3, transition_steps=1, decay_rate=0.99)`), or define one: `schedule my_lr() = 1e-3 * 0.99 ^ step`, then `learning_rate=my_lr()`")
        } else {
            d.with_help("define the function with `def` and pass it by name")
        }
    }

    fn text(&self, span: Span) -> &str {
        self.source.get(span.range()).unwrap_or("")
    }

    /// The span of the first `c` at or after the end of `span`.
    fn find_after(&self, span: Span, c: char) -> Span {
        let from = span.end as usize;
        let offset = self.source.get(from..).and_then(|rest| rest.find(c)).unwrap_or(0);
        Span::new(self.file, from + offset..from + offset + c.len_utf8())
    }

    pub(super) fn unquote(&mut self, pair: &Pair<Rule>) -> String {
        let raw = pair.as_str();
        let body = raw.get(1..raw.len().saturating_sub(1)).unwrap_or("");
        let mut out = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other @ ('\\' | '"' | '\'')) => out.push(other),
                Some(other) => {
                    let span = self.span(pair);
                    self.error(
                        Diagnostic::error("bad-escape", format!("unknown escape `\\{other}` in a string"))
                            .with_primary(span, "in this string")
                            .with_help("the escapes are `\\n`, `\\t`, `\\\\`, `\\\"` and `\\'`"),
                    );
                    out.push(other);
                }
                None => out.push('\\'),
            }
        }
        out
    }

    fn lower_primary(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::number => self.lower_number(&pair, span),
            Rule::string => ExprKind::Str(self.unquote(&pair)),
            Rule::true_lit => ExprKind::Bool(true),
            Rule::false_lit => ExprKind::Bool(false),
            Rule::none_lit => ExprKind::None,
            Rule::bad_bool => {
                let text = pair.as_str();
                let fix = match text {
                    "TRUE" => "True",
                    "FALSE" => "False",
                    _ => "None",
                };
                self.error(
                    Diagnostic::error("python-syntax", format!("`{text}` is not a constant in .opt files"))
                        .with_primary(span, format!("did you mean `{fix}`?"))
                        .with_help(format!("write `{fix}`, as in Python")),
                );
                match fix {
                    "True" => ExprKind::Bool(true),
                    "False" => ExprKind::Bool(false),
                    _ => ExprKind::None,
                }
            }
            Rule::ident => ExprKind::Name(pair.as_str().to_string()),
            Rule::bad_qualified => {
                let mut parts = pair.into_inner();
                let module = parts.next().map_or("optax.", |m| m.as_str());
                let name = parts.next().map_or("", |n| n.as_str()).to_string();
                self.error(
                    Diagnostic::error("python-syntax", format!("`{module}` is not needed in .opt files"))
                        .with_primary(span, format!("write `{name}`"))
                        .with_help("every name in an .opt file is already Optax's: drop the module path"),
                );
                ExprKind::Name(name)
            }
            Rule::bad_lambda => {
                let d = self.lambda(span);
                self.error(d);
                ExprKind::Error
            }
            Rule::paren_or_tuple => {
                let mut trailing = false;
                let mut items = Vec::new();
                for part in pair.into_inner() {
                    if part.as_rule() == Rule::trailing_comma {
                        trailing = true;
                    } else {
                        items.push(self.lower_expr(part));
                    }
                }
                if items.len() == 1 && !trailing {
                    let mut e = items.remove(0);
                    e.span = span;
                    return e;
                }
                ExprKind::Tuple(items)
            }
            Rule::list => {
                let mut items = Vec::new();
                let mut comp = None;
                for part in pair.into_inner() {
                    if part.as_rule() == Rule::comprehension {
                        let mut inner = part.into_inner().filter(|p| p.as_rule() != Rule::kw_for && p.as_rule() != Rule::kw_in);
                        let pattern = self.lower_pattern(inner.next());
                        let iter = self.lower_opt_expr(inner.next(), span);
                        comp = Some((pattern, iter));
                    } else {
                        items.push(self.lower_expr(part));
                    }
                }
                match (comp, items.pop()) {
                    (Some((pattern, iter)), Some(elem)) => {
                        ExprKind::ListComp { elem: Box::new(elem), pattern, iter: Box::new(iter) }
                    }
                    (_, last) => {
                        items.extend(last);
                        ExprKind::List(items)
                    }
                }
            }
            Rule::map => {
                let mut entries = Vec::new();
                for entry in pair.into_inner() {
                    let mut kv = entry.into_inner();
                    let k = self.lower_opt_expr(kv.next(), span);
                    let v = self.lower_opt_expr(kv.next(), span);
                    entries.push((k, v));
                }
                ExprKind::Map(entries)
            }
            Rule::if_expr => return self.lower_if(pair),
            Rule::partition_expr => ExprKind::Partition(
                pair.into_inner().filter(|p| p.as_rule() == Rule::arm).map(|arm| self.lower_arm(arm)).collect(),
            ),
            _ => ExprKind::Error,
        };
        Expr { kind, span }
    }

    fn lower_number(&mut self, pair: &Pair<Rule>, span: Span) -> ExprKind {
        let text: String = pair.as_str().chars().filter(|&c| c != '_').collect();
        let is_float = text.contains(['.', 'e', 'E']);
        if !is_float && let Ok(n) = text.parse::<i64>() {
            return ExprKind::Int(n);
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() && is_float => ExprKind::Float(x),
            _ => {
                self.error(
                    Diagnostic::error("number-too-large", format!("`{}` does not fit in a number", pair.as_str()))
                        .with_primary(span, if is_float { "beyond the largest float" } else { "beyond the largest int" })
                        .with_help("use `inf` for an unbounded value"),
                );
                ExprKind::Error
            }
        }
    }

    fn lower_if(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let mut cond = None;
        let mut then = None;
        let mut otherwise = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::expr => cond = Some(self.lower_expr(part)),
                Rule::block if then.is_none() => then = Some(self.lower_block(part)),
                Rule::block => otherwise = Some(self.lower_block(part)),
                Rule::if_expr => {
                    // `else if`: a block holding just the nested `if`.
                    let nested = self.lower_if(part);
                    otherwise = Some(Block { stmts: Vec::new(), span: nested.span, result: Some(Box::new(nested)) });
                }
                _ => {}
            }
        }
        let cond = Box::new(cond.unwrap_or(Expr { kind: ExprKind::Error, span }));
        let then = then.unwrap_or(Block { stmts: Vec::new(), result: None, span });
        Expr { kind: ExprKind::If { cond, then, otherwise }, span }
    }

    fn lower_arm(&mut self, pair: Pair<Rule>) -> Arm {
        let span = self.span(&pair);
        let mut patterns = Vec::new();
        let mut value = None;
        for part in pair.into_inner() {
            let part_span = self.span(&part);
            match part.as_rule() {
                Rule::wildcard => patterns.push(ArmPattern::Wildcard(part_span)),
                Rule::expr => match self.lower_expr(part) {
                    Expr { kind: ExprKind::Str(glob), span } => patterns.push(ArmPattern::Glob(glob, span)),
                    mask => patterns.push(ArmPattern::Mask(mask)),
                },
                Rule::bad_arrow => self.error(
                    Diagnostic::error("partition-arrow", format!("expected `=>`, found `{}`", part.as_str()))
                        .with_primary(part_span, "partition arms are written `\"glob\" => transform`")
                        .with_help("replace it with `=>`"),
                ),
                Rule::bexpr => value = Some(self.lower_expr(part)),
                _ => {}
            }
        }
        Arm { patterns, value: value.unwrap_or(Expr { kind: ExprKind::Error, span }), span }
    }
}

fn is_operator(rule: Rule) -> bool {
    !matches!(
        rule,
        Rule::number
            | Rule::string
            | Rule::ident
            | Rule::true_lit
            | Rule::false_lit
            | Rule::none_lit
            | Rule::bad_bool
            | Rule::bad_qualified
            | Rule::bad_lambda
            | Rule::paren_or_tuple
            | Rule::list
            | Rule::map
            | Rule::if_expr
            | Rule::partition_expr
    )
}

fn arg_span(arg: &Arg) -> Span {
    match arg {
        Arg::Positional(e) | Arg::Splat(e) => e.span,
        Arg::Keyword { value, .. } => value.span,
    }
}

fn too_deep(span: Span) -> Diagnostic {
    limits::EXPRESSION.exceeded(span)
}

/// The depth of an expression tree, counted without recursion.
fn depth(expr: &Expr) -> usize {
    let mut max = 0;
    let mut stack = vec![(expr, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        if d > MAX_DEPTH {
            break;
        }
        stack.extend(children(e).into_iter().map(|c| (c, d + 1)));
    }
    max
}

/// The direct sub-expressions of an expression (blocks were checked when they were lowered).
fn children(e: &Expr) -> Vec<&Expr> {
    match &e.kind {
        ExprKind::Unary { operand, .. } => vec![operand],
        ExprKind::Binary { lhs, rhs, .. } => vec![lhs, rhs],
        ExprKind::Call { callee, args, .. } => {
            let mut out: Vec<&Expr> = vec![callee];
            out.extend(args.iter().map(|a| match a {
                Arg::Positional(e) | Arg::Splat(e) | Arg::Keyword { value: e, .. } => e,
            }));
            out
        }
        ExprKind::Index { base, index } => vec![base, index],
        ExprKind::Slice { base, start, end } => {
            std::iter::once(&**base).chain(start.as_deref()).chain(end.as_deref()).collect()
        }
        ExprKind::List(items) | ExprKind::Tuple(items) => items.iter().collect(),
        ExprKind::Map(entries) => entries.iter().flat_map(|(k, v)| [k, v]).collect(),
        ExprKind::ListComp { elem, iter, .. } => vec![elem, iter],
        _ => Vec::new(),
    }
}
