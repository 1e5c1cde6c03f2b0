//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

/// The crate's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `../shared/conformance`, beside the project.
pub fn conformance_dir() -> PathBuf {
    root().join("../shared/conformance")
}

/// Every file under `dir` with extension `ext`, sorted, recursively.
pub fn files_with_extension(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == ext) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Whether a conformance pipeline uses a shape-aware family.
pub fn is_shape_aware(pipeline: &str) -> bool {
    optc::cli::conform::SHAPE_AWARE.iter().any(|f| pipeline.contains(f))
}

/// Runs `f` on a thread with the stack of a main thread (8 MiB), as the `optc` binary does.
pub fn with_main_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(f)
        .expect("cannot spawn a test thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}
