//! `optc doc`: the standard library's documentation. `optc doc NAME` prints a definition's
//! signature (defaults and ranges as written) and its doc comment; `optc doc` lists every
//! transform, alias, schedule, wrapper and function by family (one family per library file).

use std::process::ExitCode;

use crate::check::program::{DefKind, Definition};
use crate::check::types::Ty;
use crate::check::{self, Expect};
use crate::source::SourceMap;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The definition to show (`adam`, `cosine_decay_schedule`, ...); none lists them all.
    pub name: Option<String>,
}

pub fn run(args: &Args, stdlib_dir: Option<&std::path::Path>) -> ExitCode {
    let sources = match super::sources_with_stdlib(stdlib_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let checked = check::check_as(&sources, None, Expect::Pipeline);
    let defs = &checked.program.defs;
    let Some(name) = &args.name else {
        out!("{}", list(defs, &sources));
        return ExitCode::SUCCESS;
    };
    match defs.iter().find(|d| d.name == *name) {
        Some(def) => {
            out!("{}", describe(def, &sources));
            ExitCode::SUCCESS
        }
        None => {
            let names = defs.iter().map(|d| d.name.as_str());
            let d = check::suggest::unknown_name(name, crate::source::Span::new(crate::source::FileId(0), 0..0), names);
            eprintln!("error: {}", d.message);
            for line in d.notes.iter().chain(&d.help) {
                eprintln!("  {line}");
            }
            eprintln!("  `optc doc` lists every definition");
            ExitCode::FAILURE
        }
    }
}

/// What a definition is, in the words of the listing.
fn kind(def: &Definition) -> &'static str {
    match def.kind {
        DefKind::Def if def.gives == Some(Ty::Transform) || def.ret == Some(Ty::Transform) => "alias",
        DefKind::Transform if def.params.iter().any(|p| p.ty.ty == Ty::Transform) => "wrapper",
        kind => kind.describe(),
    }
}

/// `optc doc NAME`: the signature as written, where it is, what it reads and keeps, its doc.
pub fn describe(def: &Definition, sources: &SourceMap) -> String {
    let location = sources.get(def.name_span.file).map_or(String::new(), |f| {
        format!(", {}:{}", f.name, f.line_index(def.name_span.start as usize) + 1)
    });
    let mut out = format!("{} ({}{location})\n\n", def.name, kind(def));
    let params: Vec<String> =
        def.params.iter().map(|p| one_line(sources.slice(p.span))).collect();
    let ret = match (&def.ret, def.kind) {
        (Some(ty), _) => format!(" -> {ty}"),
        (None, DefKind::Transform) => " -> transform".to_string(),
        (None, DefKind::Schedule) => " -> schedule".to_string(),
        (None, _) => def.gives.as_ref().map_or(String::new(), |ty| format!(" -> {ty}")),
    };
    let one = format!("    {}({}){ret}", def.name, params.join(", "));
    if one.len() <= 100 {
        out.push_str(&one);
        out.push('\n');
    } else {
        out.push_str(&format!("    {}(\n", def.name));
        for p in &params {
            out.push_str(&format!("        {p},\n"));
        }
        out.push_str(&format!("    ){ret}\n"));
    }
    if !def.states.is_empty() {
        let states: Vec<String> = def.states.iter().map(|s| format!("{}: {}", s.name, s.ty)).collect();
        out.push_str(&format!("\n    state: {}\n", states.join(", ")));
    }
    if def.reads_value {
        out.push_str("    reads `value`: the loss must be passed at every step\n");
    }
    if let Some(doc) = &def.doc {
        out.push('\n');
        for line in doc.lines() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `optc doc`: every public definition, by family, with the first sentence of its doc.
pub fn list(defs: &[Definition], sources: &SourceMap) -> String {
    let mut out = String::new();
    let mut files: Vec<crate::source::FileId> = Vec::new();
    for def in defs.iter().filter(|d| d.is_stdlib) {
        if !files.contains(&def.name_span.file) {
            files.push(def.name_span.file);
        }
    }
    for file in files {
        let Some(source) = sources.get(file) else { continue };
        out.push_str(&format!("{} ({})\n", family(&source.text), source.name));
        for def in defs.iter().filter(|d| d.name_span.file == file && !d.name.starts_with('_')) {
            let summary = def.doc.as_deref().map(first_sentence).unwrap_or_default();
            out.push_str(&format!("  {:<34} {:<10} {summary}\n", def.name, kind(def)));
        }
        out.push('\n');
    }
    out.push_str("Not supported yet: muon, shampoo, galore (matrix products of a leaf), add_noise, noisy_sgd\n");
    out.push_str("(a random key), sam (several gradients per step).\n");
    out.push_str("`optc doc NAME` shows a definition's parameters, defaults, ranges and documentation.\n");
    out
}

/// A family's name: the start of its file's opening comment, up to a colon or parenthesis.
fn family(text: &str) -> String {
    let first = text.lines().next().unwrap_or("").trim_start_matches('#').trim();
    let end = first.find([':', '(']).unwrap_or(first.len());
    first[..end].trim().trim_end_matches('.').to_string()
}

/// The first sentence of a doc comment, on one line.
fn first_sentence(doc: &str) -> String {
    let text = one_line(doc.split("\n    ").next().unwrap_or(doc));
    match text.find(". ").or_else(|| text.strip_suffix('.').map(str::len)) {
        Some(end) => text[..end + 1].to_string(),
        None => text,
    }
}

/// Text with its line breaks and runs of spaces made single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_and_families_are_short() {
        assert_eq!(first_sentence("Adds one.\nThen more. And more."), "Adds one.");
        assert_eq!(first_sentence("No full stop"), "No full stop");
        assert_eq!(family("# Clipping: transforms that bound\n"), "Clipping");
        assert_eq!(family("# MADGRAD (Optax's contrib).\n"), "MADGRAD");
    }
}
