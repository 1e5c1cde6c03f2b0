//! `optc check`: diagnostics, or a summary of what each pipeline needs and keeps.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::check::{self, summary};
use crate::diagnostic;
use crate::ir::Layout;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `.opt` files to check (`-` reads standard input).
    #[arg(required_unless_present = "explain")]
    pub files: Vec<PathBuf>,
    /// Explain a diagnostic code (e.g. `out-of-range`) with a wrong and a right example and exit;
    /// without a code, list every code with its summary.
    #[arg(long, value_name = "CODE", num_args = 0..=1, default_missing_value = "")]
    pub explain: Option<String>,
    /// Also give the state each pipeline keeps for this parameter layout (`name:4x3,other:3`),
    /// in bytes: state that follows each leaf's shape, or that a mask or partition keeps for
    /// some leaves only, is counted as it is kept.
    #[arg(long, value_name = "SPEC")]
    pub layout: Option<String>,
}

pub fn run(args: &Args, stdlib_dir: Option<&std::path::Path>) -> ExitCode {
    if let Some(code) = &args.explain {
        if code.is_empty() {
            for c in crate::codes::CODES {
                outln!("{:<26} {}", c.code, c.summary());
            }
            outln!("\n`optc check --explain CODE` explains one, with an example.");
            return ExitCode::SUCCESS;
        }
        return match crate::codes::explain(code) {
            Some(c) => {
                out!("{}", explanation(c));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("error: no diagnostic has the code `{code}`");
                let codes = crate::codes::CODES.iter().map(|c| c.code);
                if let Some(fix) = crate::check::suggest::closest(code, codes) {
                    eprintln!("  did you mean `{fix}`?");
                }
                eprintln!("  `optc check --explain` lists every code");
                ExitCode::FAILURE
            }
        };
    }
    let layout = match args.layout.as_deref().map(Layout::parse).transpose() {
        Ok(layout) => layout,
        Err(e) => {
            eprintln!("error: bad --layout: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = false;
    for path in &args.files {
        let (name, text) = match super::read_input(path) {
            Ok(input) => input,
            Err(message) => {
                eprintln!("error: {message}");
                failed = true;
                continue;
            }
        };
        let mut sources = match super::sources_with_stdlib(stdlib_dir) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let id = sources.add(name.clone(), text, false);
        let checked = check::check_needed(&sources, id, check::Expect::Pipeline);
        diagnostic::emit_to_stderr(&checked.diagnostics, &sources);
        if let Some(summary) = error_summary(&name, &checked.diagnostics) {
            eprintln!("{summary}");
            failed = true;
            continue;
        }
        out!("{}", report(&name, &checked.program));
        if let Some(layout) = &layout {
            match crate::ir::instantiate::instantiate(&checked.program, layout) {
                Ok(ir) => {
                    diagnostic::emit_to_stderr(&ir.warnings, &sources);
                    out!("{}", kept_for(&ir));
                }
                Err(diags) => {
                    diagnostic::emit_to_stderr(&diags, &sources);
                    eprintln!("error: `{name}` does not instantiate for the layout `{}`", args.layout.as_deref().unwrap_or_default());
                    failed = true;
                }
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// The state `ir` keeps for its layout, in bytes: the whole, per parameter, and by slot.
fn kept_for(ir: &crate::ir::StepIr) -> String {
    use crate::ir::Level;
    let words = crate::ir::buffers::SlotLayout::new(ir).words();
    let leaves = ir.layout.leaves.len();
    let bytes: Vec<usize> = ir
        .slots
        .iter()
        .enumerate()
        .map(|(s, slot)| match slot.level {
            Level::Element => 4 * words[s],
            Level::Leaf => 4 * leaves,
            _ => 4,
        })
        .collect();
    let total: usize = bytes.iter().sum();
    let params = ir.layout.total();
    let noun = if leaves == 1 { "leaf" } else { "leaves" };
    // A layout of empty leaves has no parameter to divide by.
    let per = if params == 0 { String::new() } else { format!(", {:.2} per parameter", total as f64 / params as f64) };
    let mut out = format!("  state for the layout ({params} parameters in {leaves} {noun}): {total} bytes{per}\n");
    let mut uniform = 0;
    for (slot, b) in ir.slots.iter().zip(&bytes) {
        match slot.level {
            Level::Uniform => uniform += b,
            _ => out.push_str(&format!("    {}: {b} bytes\n", slot.name)),
        }
    }
    if uniform > 0 {
        out.push_str(&format!("    uniform state: {uniform} bytes\n"));
    }
    out
}

/// `--explain CODE`: the explanation, then a file that gets the diagnostic and the same file
/// fixed.
fn explanation(c: &crate::codes::Code) -> String {
    let mut out = format!("{}: {}\n", c.code, c.text);
    let indent = |text: &str| text.lines().map(|l| format!("    {l}\n")).collect::<String>();
    if !c.wrong.is_empty() {
        out.push_str(&format!("\nwrong:\n{}\nright:\n{}", indent(c.wrong), indent(c.right)));
    }
    out
}

/// The line printed after the diagnostics of a file with errors (`error: `f.opt` has 2
/// errors`); none if it has none.
pub fn error_summary(name: &str, diagnostics: &[crate::Diagnostic]) -> Option<String> {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let s = if errors == 1 { "" } else { "s" };
    (errors > 0).then(|| format!("error: `{name}` has {errors} error{s}"))
}

/// The summary printed for a file that checks clean.
pub fn report(name: &str, program: &check::Program) -> String {
    let mut out = format!("{name}: ok\n");
    let Some(tx) = &program.pipeline else {
        let counts: Vec<String> = summary::count_definitions(program, true)
            .iter()
            .map(|(kind, n)| format!("{n} {}{}", kind.describe(), if *n == 1 { "" } else { "s" }))
            .collect();
        let what = if counts.is_empty() { "nothing".to_string() } else { counts.join(", ") };
        out.push_str(&format!("  no pipeline; defines {what}\n"));
        return out;
    };
    out.push_str("  pipeline:\n");
    for line in summary::describe(program, tx).lines() {
        out.push_str(&format!("    {line}\n"));
    }
    let inputs = match (summary::needs_value(program, tx), summary::reads_params(program, tx)) {
        (true, true) => "gradients, params and a value (the loss) at every step",
        (true, false) => "gradients and a value (the loss) at every step",
        (false, true) => "gradients and params",
        (false, false) => "gradients only",
    };
    out.push_str(&format!("  needs: {inputs}\n"));
    let states = summary::states(program, tx);
    if states.is_empty() {
        out.push_str("  state: none\n");
    } else {
        out.push_str("  state:\n");
        let bytes = summary::bytes_per_parameter(program, tx);
        // What a parameter would keep if it kept every per-element state of the pipeline.
        let every: usize = states.iter().filter(|e| e.level == check::types::Level::Element).map(|e| e.bytes()).sum();
        // A transform whose state follows each leaf's shape (Adafactor's rows and columns)
        // keeps less, which only a layout tells.
        // So does a masked transform's per-element state, kept for the leaves of its mask only.
        let (mut by_shape, mut masked) = (false, false);
        let keeps_elements = |t: &check::program::Tx| summary::states(program, t).iter().any(|e| e.level == check::types::Level::Element);
        crate::ir::groups::visit(tx, &mut |t| match t {
            check::program::Tx::Instance { def, .. } => {
                by_shape |= program.def(*def).reads_leaf.contains(&check::program::LeafProp::Shape) && keeps_elements(t);
            }
            check::program::Tx::Masked { inner, .. } => masked |= keeps_elements(inner),
            _ => {}
        });
        for (level, names) in summary::describe_states(&states) {
            let what = match level {
                check::types::Level::Element if by_shape => format!(
                    "per element (at most {bytes} bytes per parameter: state that follows each leaf's shape keeps less, as `optc check --layout ...` shows)"
                ),
                check::types::Level::Element if masked => {
                    format!("per element (at most {bytes} bytes per parameter: the leaves a mask leaves out keep none, as `optc check --layout ...` shows)")
                }
                // Parameter groups each keep their own: a parameter keeps its group's only.
                check::types::Level::Element if bytes < every => {
                    format!("per element ({bytes} bytes per parameter, of its own group's)")
                }
                check::types::Level::Element => format!("per element ({bytes} bytes per parameter)"),
                check::types::Level::Leaf => "per leaf".to_string(),
                _ => "uniform".to_string(),
            };
            out.push_str(&format!("    {what}: {}\n", names.join(", ")));
        }
    }
    let values = summary::values(program, tx);
    if !values.is_empty() {
        out.push_str(&format!("  values by name: {}\n", values.join(", ")));
    }
    let evaluated = summary::eval_params(program, tx);
    if !evaluated.is_empty() {
        let names: Vec<String> = evaluated.iter().map(|n| format!("`{n}`")).collect();
        out.push_str(&format!("  evaluation weights: from the `eval_params` of {} (optc run validates on them and saves them)\n", names.join(", ")));
    }
    out
}
