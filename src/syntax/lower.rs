//! pest pairs → AST. One `lower_*` function per grammar rule; expressions, whose operators a
//! `PrattParser` orders, are in `lower_expr.rs`. The `bad_*` error rules of the grammar become diagnostics here, and the
//! lowering goes on as if the user had written what they meant.

use std::sync::Arc;

use pest::iterators::Pair;

use super::ast::*;
use super::grammar::Rule;
use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};

/// Lowers the pairs of one file.
pub struct Lowerer<'s> {
    pub file: FileId,
    /// The whole file; spans and the text around them come from here.
    pub source: &'s str,
    /// Where in `source` the parsed text starts: pest's offsets are relative to it.
    pub base: usize,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'s> Lowerer<'s> {
    pub(super) fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, self.base + s.start()..self.base + s.end())
    }

    pub(super) fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    pub fn lower_file(&mut self, pair: Pair<Rule>) -> File {
        let mut items = Vec::new();
        for item in pair.into_inner() {
            match item.as_rule() {
                Rule::let_item => items.push(Item::Let(self.lower_let(item))),
                Rule::def_item => items.push(Item::Def(Arc::new(self.lower_def(item)))),
                Rule::schedule_item => items.push(Item::Schedule(Arc::new(self.lower_def(item)))),
                Rule::builtin_item => items.push(Item::Builtin(Arc::new(self.lower_def(item)))),
                Rule::transform_item => items.push(Item::Transform(Arc::new(self.lower_transform(item)))),
                Rule::expr_item => {
                    if let Some(e) = item.into_inner().next() {
                        items.push(Item::Expr(self.lower_expr(e)));
                    }
                }
                _ => {}
            }
        }
        File { items }
    }

    /// The comment block directly above byte `start`, without the `#`s.
    fn doc_above(&self, start: usize) -> Option<String> {
        let before = self.source.get(..start)?;
        let mut lines: Vec<&str> = Vec::new();
        // Skip the (possibly indented) start of the item's own line.
        let mut rest = before.trim_end_matches([' ', '\t']);
        rest = rest.strip_suffix('\n').unwrap_or(rest);
        rest = rest.strip_suffix('\r').unwrap_or(rest);
        if rest.len() == before.len() && !before.is_empty() {
            return None; // something else precedes the item on its line
        }
        for line in rest.rsplit('\n') {
            let trimmed = line.trim();
            match trimmed.strip_prefix('#') {
                Some(text) => lines.push(text.strip_prefix(' ').unwrap_or(text).trim_end()),
                None => break,
            }
        }
        if lines.is_empty() {
            return None;
        }
        lines.reverse();
        Some(lines.join("\n"))
    }

    pub(super) fn lower_ident(&self, pair: Pair<Rule>) -> Ident {
        Ident { name: pair.as_str().to_string(), span: self.span(&pair) }
    }

    fn lower_let(&mut self, pair: Pair<Rule>) -> Let {
        let span = self.span(&pair);
        let mut inner = pair.into_inner().filter(|p| p.as_rule() != Rule::kw_let);
        let pattern = self.lower_pattern(inner.next());
        let value = self.lower_opt_expr(inner.next(), span);
        Let { pattern, value, span }
    }

    pub(super) fn lower_pattern(&mut self, pair: Option<Pair<Rule>>) -> Pattern {
        let Some(pair) = pair else {
            return Pattern::Tuple(Vec::new(), Span::new(self.file, 0..0));
        };
        let span = self.span(&pair);
        let mut parts: Vec<Pair<Rule>> = pair.into_inner().collect();
        if parts.len() == 1 && parts[0].as_rule() == Rule::ident {
            return Pattern::Name(self.lower_ident(parts.remove(0)));
        }
        let items = parts.into_iter().map(|p| self.lower_pattern(Some(p))).collect();
        Pattern::Tuple(items, span)
    }

    fn lower_def(&mut self, pair: Pair<Rule>) -> Def {
        let span = self.span(&pair);
        let doc = self.doc_above(span.start as usize);
        let mut name = None;
        let mut params = Vec::new();
        let mut ret = None;
        let mut body = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::ident => name = Some(self.lower_ident(part)),
                Rule::params => params = self.lower_params(part),
                Rule::ret_type => ret = part.into_inner().next().map(|t| self.lower_type(t)),
                Rule::block => body = Some(self.lower_block(part)),
                Rule::expr => {
                    let e = self.lower_expr(part);
                    body = Some(Block { stmts: Vec::new(), span: e.span, result: Some(Box::new(e)) });
                }
                _ => {}
            }
        }
        let name = name.unwrap_or(Ident { name: String::new(), span });
        Def { name, doc, params, ret, body, span }
    }

    fn lower_params(&mut self, pair: Pair<Rule>) -> Vec<Param> {
        pair.into_inner().filter(|p| p.as_rule() == Rule::param).map(|p| self.lower_param(p)).collect()
    }

    fn lower_param(&mut self, pair: Pair<Rule>) -> Param {
        let span = self.span(&pair);
        let mut variadic = false;
        let mut name = None;
        let mut ty = None;
        let mut range = None;
        let mut default = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::variadic => variadic = true,
                Rule::ident => name = Some(self.lower_ident(part)),
                Rule::type_expr => ty = Some(self.lower_type(part)),
                Rule::range => range = Some(self.lower_range(part)),
                Rule::bexpr => default = Some(self.lower_expr(part)),
                _ => {}
            }
        }
        Param {
            name: name.unwrap_or(Ident { name: String::new(), span }),
            ty: ty.unwrap_or(TypeExpr::None(span)),
            range,
            default,
            variadic,
            span,
        }
    }

    fn lower_range(&mut self, pair: Pair<Rule>) -> RangeBound {
        let span = self.span(&pair);
        let mut lo_inclusive = true;
        let mut hi_inclusive = true;
        let mut bounds = Vec::new();
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::range_open => lo_inclusive = part.as_str() == "[",
                Rule::range_close => hi_inclusive = part.as_str() == "]",
                Rule::bexpr => bounds.push(self.lower_expr(part)),
                _ => {}
            }
        }
        let mut bounds = bounds.into_iter();
        let lo = bounds.next().unwrap_or(Expr { kind: ExprKind::Error, span });
        let hi = bounds.next().unwrap_or(Expr { kind: ExprKind::Error, span });
        RangeBound { lo, hi, lo_inclusive, hi_inclusive, span }
    }

    fn lower_type(&mut self, pair: Pair<Rule>) -> TypeExpr {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::type_expr => {
                let mut optional = false;
                let mut atoms = Vec::new();
                for part in pair.into_inner() {
                    if part.as_rule() == Rule::optional_mark {
                        optional = true;
                    } else {
                        atoms.push(self.lower_type(part));
                    }
                }
                let ty = if atoms.len() == 1 { atoms.remove(0) } else { TypeExpr::Union(atoms, span) };
                if optional { TypeExpr::Optional(Box::new(ty), span) } else { ty }
            }
            Rule::named_type => {
                let mut parts = pair.into_inner();
                let name = parts
                    .next()
                    .map(|p| Ident { name: p.as_str().to_string(), span: self.span(&p) })
                    .unwrap_or(Ident { name: String::new(), span });
                let args = parts.map(|p| self.lower_type(p)).collect();
                TypeExpr::Named { name, args, span }
            }
            Rule::fn_type => {
                let mut types: Vec<TypeExpr> =
                    pair.into_inner().filter(|p| p.as_rule() == Rule::type_expr).map(|p| self.lower_type(p)).collect();
                let sig = types.pop().map(|ret| (types, Box::new(ret)));
                TypeExpr::Fn { sig, span }
            }
            Rule::string => TypeExpr::Literal { value: self.unquote(&pair), span },
            Rule::paren_type => match pair.into_inner().next() {
                Some(inner) => self.lower_type(inner),
                None => TypeExpr::None(span),
            },
            _ => TypeExpr::None(span),
        }
    }

    fn lower_transform(&mut self, pair: Pair<Rule>) -> Transform {
        let span = self.span(&pair);
        let doc = self.doc_above(span.start as usize);
        let mut name = None;
        let mut params = Vec::new();
        let mut states = Vec::new();
        let mut update: Option<Update> = None;
        let mut eval_params: Option<EvalParams> = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::ident => name = Some(self.lower_ident(part)),
                Rule::params => params = self.lower_params(part),
                Rule::state_decl => states.push(self.lower_state(part)),
                Rule::update_def => {
                    let u = self.lower_update(part);
                    if let Some(first) = &update {
                        self.error(
                            Diagnostic::error("duplicate-update", "a transform has one `update` block")
                                .with_primary(u.span, "second `update` block")
                                .with_secondary(first.span, "first `update` block here"),
                        );
                    } else {
                        update = Some(u);
                    }
                }
                Rule::eval_params_def => {
                    let span = self.span(&part);
                    let body = part.into_inner().find(|p| p.as_rule() == Rule::block).map(|b| self.lower_block(b));
                    let body = body.unwrap_or(Block { stmts: Vec::new(), result: None, span });
                    if let Some(first) = &eval_params {
                        self.error(
                            Diagnostic::error("duplicate-eval-params", "a transform has at most one `eval_params` block")
                                .with_primary(span, "second `eval_params` block")
                                .with_secondary(first.span, "first `eval_params` block here"),
                        );
                    } else {
                        eval_params = Some(EvalParams { body, span });
                    }
                }
                _ => {}
            }
        }
        let name = name.unwrap_or(Ident { name: String::new(), span });
        Transform { name, doc, params, states, update, eval_params, span }
    }

    fn lower_state(&mut self, pair: Pair<Rule>) -> StateDecl {
        let span = self.span(&pair);
        let doc = self.doc_above(span.start as usize);
        let mut name = None;
        let mut ty = None;
        let mut init = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::ident => name = Some(self.lower_ident(part)),
                Rule::type_expr => ty = Some(self.lower_type(part)),
                Rule::expr => init = Some(self.lower_expr(part)),
                _ => {}
            }
        }
        StateDecl {
            name: name.unwrap_or(Ident { name: String::new(), span }),
            doc,
            ty: ty.unwrap_or(TypeExpr::None(span)),
            init: init.unwrap_or(Expr { kind: ExprKind::Error, span }),
            span,
        }
    }

    fn lower_update(&mut self, pair: Pair<Rule>) -> Update {
        let span = self.span(&pair);
        let mut input = None;
        let mut body = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::ident => input = Some(self.lower_ident(part)),
                Rule::block => body = Some(self.lower_block(part)),
                _ => {}
            }
        }
        Update {
            input: input.unwrap_or(Ident { name: "g".into(), span }),
            body: body.unwrap_or(Block { stmts: Vec::new(), result: None, span }),
            span,
        }
    }

    pub(super) fn lower_block(&mut self, pair: Pair<Rule>) -> Block {
        let span = self.span(&pair);
        let mut stmts: Vec<Stmt> = pair.into_inner().map(|s| self.lower_stmt(s)).collect();
        // A block's value is its last statement when that is an expression.
        let result = match stmts.last() {
            Some(Stmt::Expr(_)) => match stmts.pop() {
                Some(Stmt::Expr(e)) => Some(Box::new(e)),
                _ => None,
            },
            _ => None,
        };
        Block { stmts, result, span }
    }

    fn lower_stmt(&mut self, pair: Pair<Rule>) -> Stmt {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::let_stmt => Stmt::Let(self.lower_let(pair)),
            Rule::for_stmt => {
                let mut pattern = None;
                let mut iter = None;
                let mut body = None;
                for part in pair.into_inner() {
                    match part.as_rule() {
                        Rule::pattern => pattern = Some(self.lower_pattern(Some(part))),
                        Rule::expr => iter = Some(self.lower_expr(part)),
                        Rule::block => body = Some(self.lower_block(part)),
                        _ => {}
                    }
                }
                Stmt::For(For {
                    pattern: pattern.unwrap_or(Pattern::Tuple(Vec::new(), span)),
                    iter: iter.unwrap_or(Expr { kind: ExprKind::Error, span }),
                    body: body.unwrap_or(Block { stmts: Vec::new(), result: None, span }),
                    span,
                })
            }
            Rule::assert_stmt => {
                let mut cond = None;
                let mut message = None;
                for part in pair.into_inner() {
                    match part.as_rule() {
                        Rule::expr => cond = Some(self.lower_expr(part)),
                        Rule::string => message = Some(self.unquote(&part)),
                        _ => {}
                    }
                }
                Stmt::Assert { cond: cond.unwrap_or(Expr { kind: ExprKind::Error, span }), message, span }
            }
            Rule::reset_stmt | Rule::revert_stmt => {
                let revert = pair.as_rule() == Rule::revert_stmt;
                let name = pair.into_inner().find(|p| p.as_rule() == Rule::ident);
                let name = name.map(|n| self.lower_ident(n)).unwrap_or(Ident { name: String::new(), span });
                if revert { Stmt::Revert(name) } else { Stmt::Reset(name) }
            }
            _ => {
                // expr_stmt: an expression, or the place an assignment after it sets.
                let mut parts = pair.into_inner();
                let e = self.lower_opt_expr(parts.next(), span);
                match parts.next() {
                    Some(assignment) => self.lower_assignment(e, assignment, span),
                    None => Stmt::Expr(e),
                }
            }
        }
    }

    /// `place op value`: the place must be a name or one entry of a name (`s[i]`).
    fn lower_assignment(&mut self, place: Expr, pair: Pair<Rule>, span: Span) -> Stmt {
        let mut op = AssignOp::Set;
        let mut value = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::assign_op => {
                    op = match part.as_str() {
                        "+=" => AssignOp::Add,
                        "-=" => AssignOp::Sub,
                        "*=" => AssignOp::Mul,
                        "/=" => AssignOp::Div,
                        _ => AssignOp::Set,
                    }
                }
                Rule::expr => value = Some(self.lower_expr(part)),
                _ => {}
            }
        }
        let value = value.unwrap_or(Expr { kind: ExprKind::Error, span });
        let place_span = place.span;
        let target = match place.kind {
            ExprKind::Name(name) => Some((Ident { name, span: place_span }, None)),
            ExprKind::Index { base, index } => match base.kind {
                ExprKind::Name(name) => Some((Ident { name, span: base.span }, Some(*index))),
                _ => None,
            },
            ExprKind::Error => return Stmt::Expr(Expr { kind: ExprKind::Error, span }),
            _ => None,
        };
        let Some((target, index)) = target else {
            self.error(
                Diagnostic::error("syntax-error", "cannot assign to this expression")
                    .with_primary(place_span, "not a name")
                    .with_help("assign to a name (`x = ...`) or to one entry of a list state (`s[i] = ...`)"),
            );
            return Stmt::Expr(Expr { kind: ExprKind::Error, span });
        };
        Stmt::Assign(Assign { target, index, op, value, span })
    }
}
