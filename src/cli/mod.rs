//! The command line: clap definitions and dispatch. The only place that prints and picks exit
//! codes.

/// `println!` that stops quietly when standard output is closed (`optc ... | head`) instead of
/// panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `print!`, likewise.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}

mod bench;
pub mod check;
pub mod conform;
mod doc;
mod emit;
mod interrupt;
mod run;
mod schedule;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// optc: a compiler for optimizer pipelines written in Optax's vocabulary.
#[derive(Parser, Debug)]
#[command(name = "optc", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Use the standard library in DIR instead of the embedded one (for working on it).
    #[arg(long, global = true, value_name = "DIR")]
    pub stdlib: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a built-in model with a pipeline and show what the optimizer does.
    Run(Box<run::Args>),
    /// Print or plot a schedule's values, step by step.
    Schedule(schedule::Args),
    /// Time a step of a pipeline in ns per parameter, against a hand-written Adam and a memory probe.
    Bench(bench::Args),
    /// Check pipelines: print diagnostics, or what each pipeline needs and keeps.
    Check(check::Args),
    /// Show a standard library definition's parameters, defaults, ranges and documentation, or list them all.
    Doc(doc::Args),
    /// Replay reference cases and compare with their expected trajectories.
    Conform(conform::Args),
    /// Show what a stage makes of a file: `--ast`, `--ir`, `--plan`, `--clif` or `--asm`.
    Emit(emit::Args),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    let stdlib = cli.stdlib.as_deref();
    match cli.command {
        Command::Run(args) => run::run(&args, stdlib),
        Command::Schedule(args) => schedule::run(&args, stdlib),
        Command::Bench(args) => bench::run(&args, stdlib),
        Command::Check(args) => check::run(&args, stdlib),
        Command::Conform(args) => conform::run(&args, stdlib),
        Command::Doc(args) => doc::run(&args, stdlib),
        Command::Emit(args) => emit::run(&args, stdlib),
    }
}

/// A source map holding the standard library: the embedded one, or the files of `dir`.
pub(crate) fn sources_with_stdlib(dir: Option<&std::path::Path>) -> Result<crate::source::SourceMap, String> {
    let mut sources = crate::source::SourceMap::new();
    match dir {
        Some(dir) => crate::stdlib::load_dir(&mut sources, dir)
            .map_err(|e| format!("cannot read the standard library in `{}`: {e}", dir.display()))?,
        None => crate::stdlib::load(&mut sources),
    }
    Ok(sources)
}

/// A user file checked against the standard library.
struct Loaded {
    name: String,
    sources: crate::source::SourceMap,
    id: crate::source::FileId,
    checked: crate::check::Checked,
}

/// Checks `text` (named `name`) against the standard library, its last expression expected to
/// be `expect`; prints the diagnostics and refuses the file if any is an error. (A command that
/// goes on to compile the file calls [`crate::jit::prepare`] first.)
fn check_text(
    name: String,
    text: String,
    stdlib_dir: Option<&std::path::Path>,
    expect: crate::check::Expect,
) -> Result<Loaded, String> {
    let mut sources = sources_with_stdlib(stdlib_dir)?;
    let id = sources.add(name.clone(), text, false);
    let checked = crate::check::check_needed(&sources, id, expect);
    crate::diagnostic::emit_to_stderr(&checked.diagnostics, &sources);
    if checked.has_errors() {
        return Err(format!("`{name}` has errors"));
    }
    Ok(Loaded { name, sources, id, checked })
}

/// The exit code of a command that reports its failure as a message: printed as `error: ...`,
/// unless it is empty (what went wrong was printed already, as diagnostics).
fn exit_code(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Reads a file named on the command line; `-` is standard input.
pub(crate) fn read_input(path: &PathBuf) -> Result<(String, String), String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        return Ok(("<stdin>".to_string(), text));
    }
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(|text| (name.clone(), text))
            .map_err(|_| format!("`{name}` is not UTF-8 text")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!("`{name}`: no such file")),
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Err(format!("`{name}` is a directory, not a .opt file")),
        Err(e) => Err(format!("cannot read `{name}`: {e}")),
    }
}
