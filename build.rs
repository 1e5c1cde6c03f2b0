//! Embeds every `stdlib/*.opt` file in the binary: writes a list of `(name, include_str!)`
//! pairs that `src/stdlib.rs` includes, so adding a file to `stdlib/` needs no code change.

use std::fmt::Write;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=stdlib");
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&manifest).join("stdlib");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".opt"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from("&[\n");
    for name in &names {
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(out, "    (\"stdlib/{name}\", include_str!({:?})),", path.display().to_string());
    }
    out.push(']');
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    if let Err(e) = std::fs::write(Path::new(&out_dir).join("stdlib_files.rs"), out) {
        println!("cargo:warning=cannot write the stdlib list: {e}");
        std::process::exit(1);
    }
}
