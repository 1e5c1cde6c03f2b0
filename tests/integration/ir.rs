//! Every `tests/ir/*.opt` file through instantiation and planning, with its step IR and pass
//! plan snapshotted beside it (`NAME.ir.snap`, `NAME.plan.snap`). The first line names the
//! layout; a `# plan: N pass(es)` line is checked against the plan before the snapshots.

use std::path::Path;

use optc::ir::{self, Layout};

use crate::support::{files_with_extension, root};

#[test]
fn ir_and_plan_snapshots() {
    let files = files_with_extension(&root().join("tests/ir"), "opt");
    assert!(files.len() >= 5, "expected the IR fixtures in tests/ir");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable fixture");
        let relative = path.strip_prefix(root()).unwrap_or(&path).display().to_string();
        let spec = text.lines().next().and_then(|l| l.strip_prefix("# layout: ")).expect("first line `# layout: SPEC`");
        let layout = Layout::parse(spec.trim()).expect("a valid layout");
        let (sources, checked) = optc::check_str(&relative, &text);
        assert!(!checked.has_errors(), "{relative}:\n{}", optc::diagnostic::render(&checked.diagnostics, &sources));
        let step = ir::instantiate::instantiate(&checked.program, &layout)
            .unwrap_or_else(|d| panic!("{relative}:\n{}", optc::diagnostic::render(&d, &sources)));
        let plan = ir::plan::plan(&step.graph, step.groups.len(), ir::plan::step_outputs(&step, ir::plan::Target::Params));
        let promised = text
            .lines()
            .find_map(|l| l.strip_prefix("# plan: "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(n) = promised {
            assert_eq!(plan.passes.len(), n, "{relative}: expected {n} passes\n{}", ir::print::plan(&step, &plan));
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
        insta::with_settings!({
            snapshot_path => folder,
            prepend_module_to_snapshot => false,
            input_file => &path,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("{stem}.ir"), ir::print::ir(&step));
            insta::assert_snapshot!(format!("{stem}.plan"), ir::print::plan(&step, &plan));
        });
    }
}
