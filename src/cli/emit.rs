//! `optc emit`: print what a stage makes of a file: the syntax tree, the step IR, the plan, the
//! Cranelift IR of the compiled passes.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::check;
use crate::diagnostic;
use crate::ir::{self, Layout};
use crate::jit;
use crate::syntax;

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("stage").required(true).args(["ast", "ir", "plan", "clif", "asm"])))]
pub struct Args {
    /// The `.opt` file (`-` reads standard input).
    pub file: PathBuf,
    /// The syntax tree.
    #[arg(long)]
    pub ast: bool,
    /// The step IR for `--layout`.
    #[arg(long)]
    pub ir: bool,
    /// The pass plan for `--layout`: passes, what each reads and writes, bytes moved.
    #[arg(long)]
    pub plan: bool,
    /// The Cranelift IR of each pass's kernel for `--layout`, annotated with the step IR.
    #[arg(long)]
    pub clif: bool,
    /// The machine code of each pass's kernel for `--layout`, as Cranelift disassembles it.
    #[arg(long)]
    pub asm: bool,
    /// The parameter layout: `name:4x3,other:3,scalar:`.
    #[arg(long, value_name = "SPEC", default_value = "layer.weight:16x16,layer.bias:16")]
    pub layout: String,
}

pub fn run(args: &Args, stdlib_dir: Option<&std::path::Path>) -> ExitCode {
    let (name, text) = match super::read_input(&args.file) {
        Ok(input) => input,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let mut sources = match super::sources_with_stdlib(stdlib_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let id = sources.add(name.clone(), text.clone(), false);
    if args.ast {
        let text = sources.get(id).map_or("", |f| &*f.text);
        let (ast, diags) = syntax::parse(id, text);
        diagnostic::emit_to_stderr(&diags, &sources);
        return match ast {
            Some(ast) => {
                outln!("{ast:#?}");
                if diags.iter().any(|d| d.is_error()) { ExitCode::FAILURE } else { ExitCode::SUCCESS }
            }
            None => ExitCode::FAILURE,
        };
    }
    let layout = match Layout::parse(&args.layout) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: bad --layout: {e}");
            return ExitCode::FAILURE;
        }
    };
    let checked = check::check_needed(&sources, id, check::Expect::Pipeline);
    diagnostic::emit_to_stderr(&checked.diagnostics, &sources);
    if checked.has_errors() {
        eprintln!("error: `{name}` does not check");
        return ExitCode::FAILURE;
    }
    let step_ir = match ir::instantiate::instantiate(&checked.program, &layout) {
        Ok(ir) => ir,
        Err(diags) => {
            diagnostic::emit_to_stderr(&diags, &sources);
            return ExitCode::FAILURE;
        }
    };
    diagnostic::emit_to_stderr(&step_ir.warnings, &sources);
    if args.ir {
        out!("{}", ir::print::ir(&step_ir));
        return ExitCode::SUCCESS;
    }
    let plan = ir::plan::plan(&step_ir.graph, step_ir.groups.len(), ir::plan::step_outputs(&step_ir, ir::plan::Target::Params));
    if args.clif || args.asm {
        match jit::compile_with(&step_ir.graph, &plan, jit::Listing { clif: args.clif, asm: args.asm, sources: Some(&sources) }) {
            Ok(compiled) => {
                for (k, pass) in compiled.passes().iter().enumerate() {
                    if args.asm {
                        outln!("; optc_pass{k}\n{}", pass.asm.as_deref().unwrap_or("; (no disassembly)"));
                    } else {
                        outln!("{}", pass.clif.as_deref().unwrap_or("; (no listing)"));
                    }
                }
            }
            Err(e) => {
                eprintln!("error: internal error (a bug in optc): {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        out!("{}", ir::print::plan(&step_ir, &plan));
    }
    ExitCode::SUCCESS
}
