//! Embeds every `stdlib/*.opt` file in the binary: writes a list of `(name, include_str!)`
//! pairs that `src/stdlib.rs` includes, so adding a file to `stdlib/` needs no code change,
//! and the index of their top-level items (found by the compiler's own lexical scan), so that
//! a compile finds the definitions it needs without reading the whole library.

use std::fmt::Write;
use std::path::Path;

#[allow(dead_code)]
#[path = "src/syntax/scan.rs"]
mod scan;

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
    let mut files = String::from("&[\n");
    let mut items = String::from("&[\n");
    for (index, name) in names.iter().enumerate() {
        let path = dir.join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(files, "    (\"stdlib/{name}\", include_str!({:?})),", path.display().to_string());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
        for item in scan::items(&text) {
            let (start, end) = (item.range.start, item.range.end);
            let _ = writeln!(items, "    Item {{ file: {index}, name: {:?}, range: {start}..{end} }},", item.name);
        }
    }
    files.push(']');
    items.push(']');
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    for (file, text) in [("stdlib_files.rs", files), ("stdlib_items.rs", items)] {
        if let Err(e) = std::fs::write(Path::new(&out_dir).join(file), text) {
            fail(&format!("cannot write {file}: {e}"));
        }
    }
}

fn fail(message: &str) -> ! {
    println!("cargo:warning={message}");
    std::process::exit(1);
}
