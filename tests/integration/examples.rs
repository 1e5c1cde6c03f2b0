//! Every example checks clean; `run.rs` trains with each for a few steps.

use crate::support::{files_with_extension, root};

#[test]
fn every_example_checks_clean_and_has_a_pipeline() {
    let examples = files_with_extension(&root().join("examples"), "opt");
    assert!(examples.len() >= 4, "expected the shipped examples, found {}", examples.len());
    for path in examples {
        let text = std::fs::read_to_string(&path).expect("readable example");
        let name = path.strip_prefix(root()).unwrap_or(&path).display().to_string();
        let (sources, checked) = optc::check_str(&name, &text);
        let rendered = optc::diagnostic::render(&checked.diagnostics, &sources);
        assert!(checked.diagnostics.is_empty(), "{name}:\n{rendered}");
        assert!(checked.program.pipeline.is_some(), "{name} has no pipeline");
    }
}
