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

/// The names of a step IR's state and values are those `optc check` prints (one naming
/// function, `check::names`), unique, and never a definition's internals: for every example
/// and conformance pipeline, and for the cases where paths are made (lone transforms, chains
/// with repeated parts, partitions, injected and scheduled hyperparameters).
#[test]
fn state_and_value_names_are_those_optc_check_prints() {
    let layout = Layout::parse("layers.0.weight:5x3,layers.0.bias:3,norm.scale:").expect("a layout");
    let mut cases = crate::stdlib::pipelines();
    for text in [
        "scale_by_adam()",
        "conditionally_transform(scale_by_adam(), should_transform_fn=every_other)\ndef every_other(step: int) -> bool = step % 2 == 0",
        "chain(adam(1e-3), adam(1e-3), masked(sgd(0.1), mask=\"*.bias\"))",
        "partition { \"*.bias\" | \"norm.*\" => sgd(learning_rate=0.1, momentum=0.9), _ => adamw(learning_rate=cosine_decay_schedule(1e-3, 100), weight_decay=exponential_decay(0.01, 10, 0.5)) }",
        "chain(clip_by_global_norm(1.0), partition { \"*.bias\" => sgd(0.1), _ => partition { \"*.weight\" => adam(1e-3), _ => sgd(0.2) } })",
        "inject_hyperparams(adamw)(learning_rate=warmup_cosine_decay_schedule(0.0, 1e-3, 10, 100), weight_decay=0.01)",
        "named_chain((\"clip\", clip_by_global_norm(1.0)), (\"opt\", lookahead(schedule_free_adamw(1e-3), sync_period=5, slow_step_size=0.5)))",
        "multi_steps(adamw(1e-3), every_k_schedule=piecewise_constant_schedule(2, {10: 2}))",
    ] {
        cases.push((text.to_string(), text.to_string()));
    }
    for (name, text) in &cases {
        let (sources, checked) = optc::check_str(name, text);
        let Some(tx) = &checked.program.pipeline else {
            panic!("{name}: no pipeline\n{}", optc::diagnostic::render(&checked.diagnostics, &sources));
        };
        let states: Vec<String> = optc::check::summary::states(&checked.program, tx).into_iter().map(|s| s.path).collect();
        let values = optc::check::summary::values(&checked.program, tx);
        let Ok(step) = ir::instantiate::instantiate(&checked.program, &layout) else { continue };
        // A `list[float]` state is one slot per entry, `s[0]`, `s[1]`, ...: `s` in the summary.
        let entry = |n: &str| n.strip_suffix(']').and_then(|n| n.rsplit_once('[')).filter(|(_, k)| k.parse::<usize>().is_ok()).map_or(n.to_string(), |(n, _)| n.to_string());
        let slots: Vec<String> = step.slots.iter().flat_map(|s| std::iter::once(&s.name).chain(&s.aliases)).map(|n| entry(n)).collect();
        let named: Vec<&String> = step.named.iter().map(|n| &n.name).collect();
        for slot in &slots {
            assert!(states.contains(slot), "{name}: the slot `{slot}` is not among `optc check`'s states {states:?}");
        }
        for value in &named {
            assert!(values.contains(value), "{name}: the value `{value}` is not among `optc check`'s {values:?}");
        }
        // Without globs every part of the pipeline holds leaves, so nothing is left out.
        if !text.contains('"') {
            for state in &states {
                assert!(slots.contains(state), "{name}: `optc check`'s state `{state}` is not a slot: {slots:?}");
            }
            for value in &values {
                assert!(named.contains(&value), "{name}: `optc check`'s value `{value}` is not named: {named:?}");
            }
        }
        let mut all: Vec<&String> = step.slots.iter().flat_map(|s| std::iter::once(&s.name).chain(&s.aliases)).chain(named.iter().copied()).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "{name}: names are not unique");
        assert!(!all.iter().any(|n| n.split('.').any(|part| part.starts_with('_'))), "{name}: a definition's internals show: {all:?}");
    }
}
