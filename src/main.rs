//! The `optc` command; everything lives in [`optc::cli`].

fn main() -> std::process::ExitCode {
    optc::cli::main()
}
