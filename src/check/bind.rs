//! Argument binding: positional and keyword arguments → parameters, with defaults and
//! variadics, and the diagnostics for every way a call can get this wrong.

use super::program::Definition;
use super::suggest;
use crate::diagnostic::Diagnostic;
use crate::source::Span;
use crate::syntax::ast::Ident;

/// What a parameter received.
#[derive(Clone, Debug)]
pub enum Slot<A> {
    /// An argument, with the span of the argument (for keywords: `name=value`).
    Given(A, Span),
    /// The arguments gathered by a `*name` parameter.
    Variadic(Vec<(A, Span)>),
    /// Nothing: the default applies (or the parameter is missing, already reported).
    Default,
}

/// A call's arguments, already evaluated or typed into `A`.
pub struct CallArgs<A> {
    pub positional: Vec<(A, Span)>,
    pub keywords: Vec<(Ident, A, Span)>,
    /// True when a `**map` argument could not be expanded (so missing ones are not reported).
    pub opaque_splat: bool,
    /// The span of `(...)`.
    pub span: Span,
}

/// Binds `args` to the parameters of `def`, reporting every mistake.
pub fn bind<A: Clone>(def: &Definition, args: CallArgs<A>, errors: &mut Vec<Diagnostic>) -> Vec<Slot<A>> {
    let mut slots: Vec<Slot<A>> = vec![Slot::Default; def.params.len()];
    let mut given_at: Vec<Option<Span>> = vec![None; def.params.len()];
    let variadic = def.params.iter().position(|p| p.variadic);

    let positional_capacity = variadic.unwrap_or(def.params.len());
    for (i, (value, span)) in args.positional.into_iter().enumerate() {
        if i < positional_capacity {
            slots[i] = Slot::Given(value, span);
            given_at[i] = Some(span);
        } else if let Some(v) = variadic {
            match &mut slots[v] {
                Slot::Variadic(items) => items.push((value, span)),
                slot => *slot = Slot::Variadic(vec![(value, span)]),
            }
            given_at[v] = Some(span);
        } else {
            let n = def.params.len();
            errors.push(
                Diagnostic::error(
                    "too-many-arguments",
                    format!("`{}` takes {n} argument{}, but more were given", def.name, plural(n)),
                )
                .with_primary(span, "unexpected argument")
                .with_secondary(def.name_span, format!("`{}` is defined here", def.name))
                .with_help("remove it, or pass it by keyword if a parameter was meant"),
            );
        }
    }

    // Parameters an unknown keyword was probably meant for: not reported missing as well.
    let mut meant: Vec<String> = Vec::new();
    for (name, value, span) in args.keywords {
        let Some(i) = def.params.iter().position(|p| p.name == name.name && !p.variadic) else {
            let (d, fix) = unknown_keyword(def, &name);
            meant.extend(fix);
            errors.push(d);
            continue;
        };
        if let Some(first) = given_at[i] {
            errors.push(
                Diagnostic::error("duplicate-argument", format!("`{}` is given more than once", name.name))
                    .with_primary(span, "given again here")
                    .with_secondary(first, "first given here"),
            );
            continue;
        }
        slots[i] = Slot::Given(value, span);
        given_at[i] = Some(span);
    }

    if !args.opaque_splat {
        for (i, p) in def.params.iter().enumerate() {
            if given_at[i].is_none() && p.default.is_none() && !p.variadic && !meant.contains(&p.name) {
                let ty = &p.ty;
                errors.push(
                    Diagnostic::error("missing-argument", format!("`{}` needs a value for `{}`", def.name, p.name))
                        .with_primary(args.span, format!("`{}` is missing", p.name))
                        .with_secondary(p.span, format!("`{}: {ty}` has no default", p.name))
                        .with_help(format!("add `{}=...`", p.name)),
                );
            }
        }
    }
    slots
}

/// The diagnostic for an unknown keyword, and the parameter it was probably meant for.
fn unknown_keyword(def: &Definition, name: &Ident) -> (Diagnostic, Option<String>) {
    let names = def.params.iter().filter(|p| !p.variadic).map(|p| p.name.as_str());
    let mut d = Diagnostic::error("unknown-keyword", format!("`{}` has no parameter `{}`", def.name, name.name))
        .with_primary(name.span, "unknown keyword");
    let alias = suggest::known_alias(&name.name).filter(|a| def.param(a).is_some());
    let fix = alias.map(String::from).or_else(|| suggest::closest(&name.name, names.clone()));
    if let Some(fix) = &fix {
        d = d.with_help(format!("did you mean `{fix}`?"));
        if alias.is_some() {
            d = d.with_note(format!("Optax calls it `{fix}`; optc uses Optax's names"));
        }
    } else {
        let list: Vec<String> = names.map(|n| format!("`{n}`")).collect();
        if list.is_empty() {
            d = d.with_note(format!("`{}` takes no arguments", def.name));
        } else {
            d = d.with_note(format!("the parameters of `{}` are {}", def.name, list.join(", ")));
        }
    }
    (d.with_secondary(def.name_span, format!("`{}` is defined here", def.name)), fix)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
