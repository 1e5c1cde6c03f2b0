//! The runtime on small user-defined transforms, computed by hand: masks, partitions,
//! reductions over groups, per-leaf state, flatten, state committed only by taken branches,
//! reset, save and load, and every misuse giving an error.

use optc::ir::{Layout, op::Scalar};
use optc::runtime::Optimizer;
use optc::runtime::snapshot::SlotData;
use optc::runtime::checkpoint::LoadError;

/// Definitions the tests share, written as a user would.
const DEFS: &str = r#"
# Multiplies the updates by a constant.
transform times(c: float) {
    update(g) {
        c * g
    }
}

# Scales the updates to global norm 1.
transform unit_norm() {
    update(g) {
        g / norm(g)
    }
}

# Counts its steps and adds the count.
transform counter() {
    state count: int = 0
    update(g) {
        count = count + 1
        g + count
    }
}

# A running sum of the updates, one per element.
transform running_sum() {
    state s: tensor = 0
    update(g) {
        s = s + g
        s
    }
}

# Each leaf divided by its own norm, with the norm's running max kept per leaf.
transform leaf_unit() {
    state biggest: leaf = 0
    update(g) {
        biggest = max(biggest, leaf_norm(g))
        g / leaf_norm(g)
    }
}

# Applies `inner` only every other step; its state advances only then.
transform every_other(inner: transform) {
    state k: int = 0
    update(g) {
        k = k + 1
        let out = 0 * g
        if k % 2 == 0 {
            out = inner(g)
        }
        out
    }
}

# Applies `inner` and resets it every `period` steps.
transform restarting(inner: transform, period: int) {
    state k: int = 0
    update(g) {
        let out = inner(g)
        k = k + 1
        if k % period == 0 {
            reset inner
        }
        out
    }
}

# Adds the loss to the updates.
transform plus_value() {
    update(g) {
        g + value
    }
}
"#;

fn optimizer(pipeline: &str, layout: &str, params: &[f32]) -> Optimizer {
    let text = format!("{DEFS}\n{pipeline}\n");
    let (sources, checked) = optc::check_str("test.opt", &text);
    assert!(!checked.has_errors(), "{}", optc::diagnostic::render(&checked.diagnostics, &sources));
    let layout = Layout::parse(layout).expect("layout");
    match Optimizer::new(&checked.program, &layout, params) {
        Ok(o) => o,
        Err(d) => panic!("{}", optc::diagnostic::render(&d, &sources)),
    }
}

/// `pipeline` on `layout` after `steps` steps from 0.5 everywhere, every pipeline given the
/// same gradients: the optimizer and its parameters.
fn stepped(pipeline: &str, layout: &str, steps: usize) -> (Optimizer, Vec<f32>) {
    let n = Layout::parse(layout).expect("layout").total();
    let (mut opt, mut params) = (optimizer(pipeline, layout, &vec![0.5; n]), vec![0.5; n]);
    for t in 0..steps {
        let g: Vec<f32> = (0..n).map(|i| ((i * 7 + t) % 11) as f32 / 11.0 - 0.5).collect();
        opt.step(&mut params, &g, None).expect("step");
    }
    (opt, params)
}

/// Runs one step with zero params and these grads; returns the updates.
fn updates(opt: &mut Optimizer, grads: &[f32], value: Option<f32>) -> Vec<f32> {
    let mut params = vec![0.0; grads.len()];
    opt.step(&mut params, grads, value).expect("step");
    params
}

#[test]
fn masked_transforms_leave_other_leaves_alone() {
    // Layout order is by name: a.b (2), a.w (2).
    let mut opt = optimizer(r#"masked(times(c=2.0), mask="*.w")"#, "a.w:2,a.b:2", &[0.0; 4]);
    assert_eq!(updates(&mut opt, &[1.0, 2.0, 3.0, 4.0], None), vec![1.0, 2.0, 6.0, 8.0]);
}

#[test]
fn reductions_inside_a_partition_see_only_its_leaves() {
    let pipeline = r#"partition { "*.w" => unit_norm(), _ => times(c=0.5) }"#;
    let mut opt = optimizer(pipeline, "a.w:2,a.b:1", &[0.0; 3]);
    // a.b = [10], a.w = [3, 4] with norm 5.
    assert_eq!(updates(&mut opt, &[10.0, 3.0, 4.0], None), vec![5.0, 0.6, 0.8]);
}

#[test]
fn a_leaf_no_arm_takes_is_an_error_naming_it() {
    let text = format!("{DEFS}\npartition {{ \"*.w\" => times(c=1.0) }}\n");
    let (_, checked) = optc::check_str("test.opt", &text);
    let layout = Layout::parse("a.w:2,a.b:1").expect("layout");
    let err = Optimizer::new(&checked.program, &layout, &[0.0; 3]).err().expect("an error");
    assert_eq!(err[0].code, "unmatched-leaf");
    assert!(err[0].message.contains("`a.b`"), "{}", err[0].message);
}

#[test]
fn uniform_and_element_state_advance_each_step() {
    let mut opt = optimizer("chain(counter(), running_sum())", "p:2", &[0.0; 2]);
    assert_eq!(updates(&mut opt, &[1.0, 1.0], None), vec![2.0, 2.0]);
    assert_eq!(updates(&mut opt, &[1.0, 1.0], None), vec![5.0, 5.0]);
    assert_eq!(opt.uniform("counter.count"), Some(Scalar::I32(2)));
}

#[test]
fn uniforms_are_read_by_the_names_optc_check_prints() {
    let pipeline = r#"partition { "*.b" => chain(counter(), sgd(learning_rate=0.5)), _ => adamw(learning_rate=exponential_decay(0.1, 1, 0.5)) }"#;
    let mut opt = optimizer(pipeline, "a.w:2,a.b:1", &[0.0; 3]);
    updates(&mut opt, &[1.0, 1.0, 1.0], None);
    let names: Vec<String> = opt.uniforms().into_iter().map(|(n, _)| n).collect();
    for name in ["partition[*.b].counter.count", "partition[_].add_decayed_weights.count", "partition[_].scale_by_learning_rate.learning_rate", "lr[*.b]", "lr[_]"] {
        assert!(names.iter().any(|n| n == name), "no `{name}` in {names:?}");
    }
    assert_eq!(opt.uniform("lr[*.b]"), Some(Scalar::F32(0.5)));
    // The schedule's value at the step just taken (count 0), and the rate it made.
    assert_eq!(opt.uniform("partition[_].scale_by_learning_rate.learning_rate"), Some(Scalar::F32(0.1)));
    assert_eq!(opt.uniform("lr[_]"), Some(Scalar::F32(0.1)));
    // A transform's own `let`s are its internals.
    assert!(!names.iter().any(|n| n.ends_with(".lr") || n.ends_with(".s")), "{names:?}");
}

#[test]
fn per_leaf_values_and_flatten() {
    let mut opt = optimizer("leaf_unit()", "a:2,b:1", &[0.0; 3]);
    assert_eq!(updates(&mut opt, &[3.0, 4.0, -2.0], None), vec![0.6, 0.8, -1.0]);
    // Flattened, the leaves form one: the norm is global.
    let mut opt = optimizer("flatten(leaf_unit())", "a:1,b:1", &[0.0; 2]);
    assert_eq!(updates(&mut opt, &[3.0, 4.0], None), vec![0.6, 0.8]);
    // Masks inside see that one vector too: by rank it is one leaf of one axis, so a 2-D leaf
    // takes no arm of its own, and a rank mask leaves every leaf out.
    let mut opt = optimizer("flatten(partition { ndim == 2 => sgd(learning_rate=1.0), _ => sgd(learning_rate=0.5) })", "a:2x1,b:1", &[0.0; 3]);
    assert_eq!(updates(&mut opt, &[1.0, 1.0, 1.0], None), vec![-0.5; 3]);
    let mut opt = optimizer("flatten(masked(sgd(learning_rate=1.0), ndim == 1))", "a:2x1,b:1", &[0.0; 3]);
    assert_eq!(updates(&mut opt, &[1.0, 1.0, 1.0], None), vec![-1.0; 3]);
}

#[test]
fn a_nested_transform_commits_state_only_when_its_branch_runs() {
    let mut opt = optimizer("every_other(inner=running_sum())", "p:1", &[0.0]);
    let outs: Vec<f32> = (0..4).map(|_| updates(&mut opt, &[1.0], None)[0]).collect();
    // Steps 2 and 4 apply the running sum, which saw only those two steps.
    assert_eq!(outs, vec![0.0, 1.0, 0.0, 2.0]);
}

#[test]
fn reset_puts_a_nested_transform_back_to_its_initial_state() {
    let mut opt = optimizer("restarting(inner=running_sum(), period=2)", "p:1", &[0.0]);
    let outs: Vec<f32> = (0..5).map(|_| updates(&mut opt, &[1.0], None)[0]).collect();
    assert_eq!(outs, vec![1.0, 2.0, 1.0, 2.0, 1.0]);
}

#[test]
fn value_is_required_exactly_when_the_pipeline_reads_it() {
    let mut opt = optimizer("plus_value()", "p:1", &[0.0]);
    assert!(opt.needs_value());
    assert_eq!(updates(&mut opt, &[1.0], Some(0.5)), vec![1.5]);
    let mut params = vec![0.0];
    let err = opt.step(&mut params, &[1.0], None).expect_err("no value");
    assert!(err.to_string().contains("pass `value`"), "{err}");
    let mut opt = optimizer("times(c=1.0)", "p:1", &[0.0]);
    let err = opt.step(&mut params, &[1.0], Some(1.0)).expect_err("a value given");
    assert!(err.to_string().contains("does not read a value"), "{err}");
    let err = opt.step(&mut params, &[1.0, 2.0], None).expect_err("wrong length");
    assert!(err.to_string().contains("grads has 2 elements"), "{err}");
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("optc-runtime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn save_then_load_then_continue_is_bit_identical() {
    // User state of every level, then the standard library's: Adam with the plateau logic (it
    // reads the loss), gradient accumulation, a per-leaf trust ratio with momentum.
    let pipelines = [
        "chain(counter(), running_sum(), leaf_unit())",
        "chain(adam(learning_rate=1e-2), reduce_on_plateau(patience=1, cooldown=1, factor=0.5))",
        "multi_steps(adamw(learning_rate=1e-2, weight_decay=0.1), every_k_schedule=2)",
        "lars(learning_rate=0.1, weight_decay=1e-3)",
        "adam(learning_rate=1e-2, mu_dtype=\"bfloat16\", nu_dtype=\"bfloat16\")",
        // History lists of tensors, saved when only part of the memory is filled.
        "lbfgs(learning_rate=0.1, memory_size=4, linesearch=None)",
    ];
    let grads = |t: usize| vec![t as f32 * 0.3 - 1.0, 2.5 - t as f32, 0.125 * t as f32];
    let loss = |t: usize| Some(1.0 + (t % 3) as f32);
    for pipeline in pipelines {
        let value = |t: usize| if pipeline.contains("plateau") { loss(t) } else { None };
        let mut straight = optimizer(pipeline, "a:2,b:1", &[0.0; 3]);
        let mut p1 = vec![0.5, -0.25, 1.0];
        for t in 0..8 {
            straight.step(&mut p1, &grads(t), value(t)).expect("step");
        }
        let mut first = optimizer(pipeline, "a:2,b:1", &[0.0; 3]);
        let mut p2 = vec![0.5, -0.25, 1.0];
        for t in 0..3 {
            first.step(&mut p2, &grads(t), value(t)).expect("step");
        }
        let path = temp("state.optc");
        first.save(&path).expect("save");
        let mut resumed = optimizer(pipeline, "a:2,b:1", &[9.0; 3]);
        resumed.load(&path).expect("load");
        assert_eq!(resumed.steps(), 3);
        for t in 3..8 {
            resumed.step(&mut p2, &grads(t), value(t)).expect("step");
        }
        // The same through a snapshot (what the Python package's `state_dict` holds).
        let mut p3 = vec![0.5, -0.25, 1.0];
        let mut again = optimizer(pipeline, "a:2,b:1", &[0.0; 3]);
        for t in 0..3 {
            again.step(&mut p3, &grads(t), value(t)).expect("step");
        }
        let mut restored = optimizer(pipeline, "a:2,b:1", &[9.0; 3]);
        restored.restore(&again.snapshot()).expect("restore");
        assert_eq!(restored.steps(), 3);
        // And packed into two vectors (what the Optax adapter carries), into a third one.
        let (f, i) = restored.packed_state();
        let mut unpacked = optimizer(pipeline, "a:2,b:1", &[9.0; 3]);
        assert!(unpacked.load_packed_state(&f[1..], &i, 3).is_err(), "a short vector is refused");
        unpacked.load_packed_state(&f, &i, 3).expect("unpack");
        assert_eq!(unpacked.snapshot(), restored.snapshot());
        for t in 3..8 {
            restored.step(&mut p3, &grads(t), value(t)).expect("step");
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&p1), bits(&p2), "{pipeline}");
        assert_eq!(bits(&p1), bits(&p3), "{pipeline}");
    }
}

/// Each entry of a `list[tensor]` state is a per-element slot of its own, named by its index;
/// a `list[float]`'s entries are uniform slots.
#[test]
fn a_list_of_tensors_keeps_one_element_slot_per_entry() {
    let opt = optimizer("lbfgs(learning_rate=0.1, memory_size=3, linesearch=None)", "a:2,b:1", &[0.0; 3]);
    let slots = opt.snapshot().slots;
    let find = |name: &str| slots.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no slot `{name}`"));
    for k in 0..3 {
        for list in ["diff_params_memory", "diff_updates_memory"] {
            let slot = find(&format!("scale_by_lbfgs.{list}[{k}]"));
            assert!(matches!(&slot.data, SlotData::Element(v) if v.len() == 3), "{}: {:?}", slot.name, slot.data);
        }
        assert!(matches!(find(&format!("scale_by_lbfgs.weights_memory[{k}]")).data, SlotData::Uniform(_)));
    }
    assert!(!slots.iter().any(|s| s.name.contains("[3]")), "three entries, not four");
}

#[test]
fn snapshots_from_elsewhere_are_refused_and_change_nothing() {
    let mut opt = optimizer("adam(learning_rate=1e-3)", "a:2", &[0.0; 2]);
    opt.step(&mut [1.0, 2.0], &[0.5, -0.5], None).expect("step");
    let before = opt.snapshot();
    // Another pipeline with the very same slots, or other hyperparameters.
    for other in ["adamw(learning_rate=1e-3)", "adam(learning_rate=1e-2)"] {
        let theirs = optimizer(other, "a:2", &[0.0; 2]).snapshot();
        assert!(matches!(opt.restore(&theirs), Err(LoadError::Pipeline { .. })), "{other}");
    }
    let theirs = optimizer("adam(learning_rate=1e-3)", "a:3", &[0.0; 3]).snapshot();
    assert!(matches!(opt.restore(&theirs), Err(LoadError::Layout { .. })));
    // Tampered values: a slot of the wrong length, kind or level, a renamed or missing slot.
    let mut tampered = Vec::new();
    let element = before.slots.iter().position(|s| matches!(s.data, SlotData::Element(_))).expect("an element slot");
    let uniform = before.slots.iter().position(|s| matches!(s.data, SlotData::Uniform(_))).expect("a uniform slot");
    let mut s = before.clone();
    s.slots[element].data = SlotData::Element(vec![7.0; 3]);
    tampered.push(s);
    let mut s = before.clone();
    s.slots[uniform].data = SlotData::Uniform(Scalar::F32(7.0));
    tampered.push(s);
    let mut s = before.clone();
    s.slots[element].data = SlotData::Leaf(vec![7.0]);
    tampered.push(s);
    let mut s = before.clone();
    s.slots[element].name = "mu".into();
    tampered.push(s);
    let mut s = before.clone();
    s.slots.pop();
    tampered.push(s);
    for (i, s) in tampered.iter().enumerate() {
        let err = opt.restore(s).expect_err("tampered");
        assert!(matches!(err, LoadError::Corrupt(_)), "case {i}: {err}");
        assert_eq!(opt.snapshot(), before, "case {i} changed the state");
    }
}

#[test]
fn state_files_from_elsewhere_are_refused_with_a_reason() {
    let path = temp("other.optc");
    let opt = optimizer("running_sum()", "a:2", &[0.0; 2]);
    opt.save(&path).expect("save");
    let mut other_pipeline = optimizer("counter()", "a:2", &[0.0; 2]);
    assert!(matches!(other_pipeline.load(&path), Err(LoadError::Pipeline { .. })));
    // The pipeline itself is compared, not only its slots: `adam` and `adamw` keep the same.
    let adam = temp("adam.optc");
    optimizer("adam(learning_rate=1e-3)", "a:2", &[0.0; 2]).save(&adam).expect("save");
    for other in ["adamw(learning_rate=1e-3)", "adam(learning_rate=10.0, b1=0.0)"] {
        let err = optimizer(other, "a:2", &[0.0; 2]).load(&adam).expect_err(other);
        assert!(matches!(err, LoadError::Pipeline { .. }), "{other}: {err}");
    }
    // The same call with another definition behind it (another optc or standard library) says
    // what state each keeps, since the call reads the same.
    let text = |state: &str| format!("transform t() {{\n    state {state}: tensor = 0\n    update(g) {{ {state} = {state} + g\n {state} }}\n}}\nt()\n");
    let load = |text: String| {
        let (_, checked) = optc::check_str("test.opt", &text);
        Optimizer::new(&checked.program, &Layout::parse("a:2").expect("layout"), &[0.0; 2]).map_err(|_| "instantiate")
    };
    let renamed = temp("renamed.optc");
    load(text("acc")).expect("acc").save(&renamed).expect("save");
    let err = load(text("mu")).expect("mu").load(&renamed).expect_err("other definitions");
    assert!(err.to_string().contains("keep [acc]") && err.to_string().contains("keep [mu]"), "{err}");
    let mut other_layout = optimizer("running_sum()", "a:3", &[0.0; 3]);
    let err = other_layout.load(&path).expect_err("another layout");
    assert!(matches!(err, LoadError::Layout { .. }), "{err}");
    assert!(err.to_string().contains("a:2"), "{err}");
    // Damaged files.
    let bytes = std::fs::read(&path).expect("read");
    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    std::fs::write(&path, &flipped).expect("write");
    let mut same = optimizer("running_sum()", "a:2", &[0.0; 2]);
    assert!(matches!(same.load(&path), Err(LoadError::Corrupt(_))));
    std::fs::write(&path, &bytes[..bytes.len() - 3]).expect("write");
    assert!(matches!(same.load(&path), Err(LoadError::Corrupt(_))));
    std::fs::write(&path, b"garbage").expect("write");
    assert!(matches!(same.load(&path), Err(LoadError::Corrupt(_))));
    assert!(matches!(same.load(&temp("missing.optc")), Err(LoadError::Io(_))));
}

/// A transform keeping a running sum stored as `dtype`.
const KEEP: &str = "transform keep(dtype: \"float32\" | \"bfloat16\"? = None) {\n    state s: tensor[dtype] = 0\n    update(g) {\n        s = s + g\n        s\n    }\n}\n";

#[test]
fn a_state_of_another_storage_type_is_refused_naming_the_slot_and_both_types() {
    let grads = [0.1, 1.0 / 3.0, 1e-3];
    let path = temp("bfloat16.optc");
    let mut saved = optimizer(&format!("{KEEP}keep(dtype=\"bfloat16\")"), "a:3", &[0.0; 3]);
    saved.step(&mut [0.0; 3], &grads, None).expect("step");
    saved.save(&path).expect("save");
    let wide = temp("float32.optc");
    optimizer(&format!("{KEEP}keep()"), "a:3", &[0.0; 3]).save(&wide).expect("save");
    // Two bytes per element instead of four (the headers differ by a few bytes).
    let size = |dtype: &str| {
        let file = temp(&format!("{dtype}-1000.optc"));
        optimizer(&format!("{KEEP}keep(dtype=\"{dtype}\")"), "a:1000", &[0.0; 1000]).save(&file).expect("save");
        std::fs::metadata(&file).expect("saved").len()
    };
    let (four, two) = (size("float32"), size("bfloat16"));
    assert!((1980..2000).contains(&(four - two)), "{four} and {two} bytes");
    for (file, other) in [(&path, "keep()"), (&path, "keep(dtype=\"float32\")"), (&wide, "keep(dtype=\"bfloat16\")")] {
        let mut opt = optimizer(&format!("{KEEP}{other}"), "a:3", &[0.0; 3]);
        let before = opt.snapshot();
        let err = opt.load(file).expect_err(other);
        assert!(matches!(err, LoadError::Storage { .. }), "{other}: {err}");
        let slot = opt.ir.slots.iter().find(|s| s.level == optc::ir::Level::Element).map(|s| s.name.clone()).unwrap_or_default();
        assert!(err.to_string().contains(&format!("the state `{slot}`")) && err.to_string().contains("bfloat16") && err.to_string().contains("float32"), "{err}");
        assert_eq!(opt.snapshot(), before);
        // A snapshot is judged by the same rule.
        let theirs = if file == &path { saved.snapshot() } else { optimizer(&format!("{KEEP}keep()"), "a:3", &[0.0; 3]).snapshot() };
        assert!(matches!(opt.restore(&theirs), Err(LoadError::Storage { .. })), "{other}");
    }
    // The same pipeline text, its transform redefined with another storage type.
    let redefined = "transform keep() {\n    state s: tensor = 0\n    update(g) {\n        s = s + g\n        s\n    }\n}\nkeep()";
    let same_text = temp("same-text.optc");
    optimizer(&redefined.replace("tensor", "tensor[bfloat16]"), "a:3", &[0.0; 3]).save(&same_text).expect("save");
    let err = optimizer(redefined, "a:3", &[0.0; 3]).load(&same_text).expect_err("another storage type");
    assert!(matches!(err, LoadError::Storage { .. }), "{err}");
    // A slot whose name holds spaces (a partition arm's mask) is named whole.
    let arm = |dtype: &str| format!("{KEEP}partition {{ ndim == 1 => keep(dtype=\"{dtype}\"), _ => sgd(0.1) }}");
    let in_arm = temp("bfloat16-in-an-arm.optc");
    optimizer(&arm("bfloat16"), "a:3,w:2x2", &[0.0; 7]).save(&in_arm).expect("save");
    let mut opt = optimizer(&arm("float32"), "a:3,w:2x2", &[0.0; 7]);
    let slot = opt.ir.slots.iter().find(|s| s.level == optc::ir::Level::Element).map(|s| s.name.clone()).unwrap_or_default();
    assert!(slot.contains("ndim == 1"), "{slot}");
    let err = opt.load(&in_arm).expect_err("another storage type");
    assert!(matches!(err, LoadError::Storage { .. }) && err.to_string().contains(&format!("the state `{slot}`")), "{err}");
    // The state read back is what was stored: the sums rounded to bfloat16.
    let mut loaded = optimizer(&format!("{KEEP}keep(dtype=\"bfloat16\")"), "a:3", &[0.0; 3]);
    loaded.load(&path).expect("load");
    let Some(SlotData::Element(v)) = loaded.snapshot().slots.iter().map(|s| s.data.clone()).find(|d| matches!(d, SlotData::Element(_))) else {
        panic!("an element slot")
    };
    let want: Vec<f32> = grads.iter().map(|&g| optc::ir::Storage::Bf16.round(g)).collect();
    assert_eq!(v, want);
}

#[test]
fn held_leaves_keep_their_params_and_state_while_the_rest_step() {
    // Adam with a per-leaf trust ratio (lars keeps per-leaf state): leaf `b` held at step 2.
    for pipeline in ["adam(learning_rate=0.1)", "lars(learning_rate=0.1, momentum=0.9)"] {
        let mut held = optimizer(pipeline, "a:2,b:1", &[0.0; 3]);
        let mut free = optimizer(pipeline, "a:2,b:1", &[0.0; 3]);
        let (mut pa, mut pb) = (vec![1.0, 2.0], vec![3.0]);
        let mut flat = vec![1.0, 2.0, 3.0];
        let grads = [vec![0.5, -0.5], vec![0.25]];
        let step = |opt: &mut Optimizer, pa: &mut Vec<f32>, pb: &mut Vec<f32>, hold: &[usize]| {
            let mut params: Vec<&mut [f32]> = vec![pa, pb];
            opt.step_leaves_holding(&mut params, &[&grads[0], &grads[1]], None, hold).expect("step");
        };
        step(&mut held, &mut pa, &mut pb, &[]);
        let before = held.snapshot();
        let b_before = pb.clone();
        step(&mut held, &mut pa, &mut pb, &[1]);
        assert_eq!(pb, b_before, "{pipeline}: the held leaf's params moved");
        // Its per-element and per-leaf state is as before; leaf `a` stepped.
        let after = held.snapshot();
        for (x, y) in before.slots.iter().zip(&after.slots) {
            match (&x.data, &y.data) {
                (SlotData::Element(x), SlotData::Element(y)) => {
                    assert_eq!(x[2], y[2], "{pipeline}: {}", after.slots.len());
                    assert_ne!(x[0], y[0], "{pipeline}");
                }
                (SlotData::Leaf(x), SlotData::Leaf(y)) => assert_eq!(x[1], y[1], "{pipeline}"),
                _ => {}
            }
        }
        free.step(&mut flat, &[0.5, -0.5, 0.25], None).expect("step");
        free.step(&mut flat, &[0.5, -0.5, 0.25], None).expect("step");
        assert_eq!(pa, flat[..2], "{pipeline}: the other leaf steps as without holding");
    }
}

#[test]
fn a_parameter_group_keeps_state_for_its_own_leaves_only() {
    // The README's transformer recipe, AdamW in two partition arms, against the same maths
    // written with a mask: each parameter keeps two floats either way.
    let layout = "encoder.weight:8x4,encoder.bias:8,norm.scale:8,head.weight:3x8,head.bias:3";
    let partition = r#"partition { "*.bias" | "*norm*" => adamw(learning_rate=1e-3, weight_decay=0.0), _ => adamw(learning_rate=1e-3, weight_decay=0.1) }"#;
    let masked = r#"adamw(learning_rate=1e-3, weight_decay=0.1, mask="*.weight")"#;
    let n = Layout::parse(layout).expect("layout").total();
    let element_floats = |pipeline: &str| -> usize {
        let opt = optimizer(pipeline, layout, &vec![0.5; n]);
        opt.snapshot().slots.iter().map(|s| if let SlotData::Element(v) = &s.data { v.len() } else { 0 }).sum()
    };
    assert_eq!(element_floats(partition), 2 * n);
    assert_eq!(element_floats(masked), 2 * n);
    // The arms step as the masked form does.
    let ((mut a, pa), (_, pb)) = (stepped(partition, layout, 5), stepped(masked, layout, 5));
    assert_eq!(pa, pb);
    // A state that holds some leaves is refused for others: a partition arm's state
    // restored with one more element is another layout's.
    let mut snapshot = a.snapshot();
    for slot in &mut snapshot.slots {
        if let SlotData::Element(v) = &mut slot.data {
            v.push(0.0);
        }
    }
    assert!(matches!(a.restore(&snapshot), Err(LoadError::Corrupt(_))));
}

/// The evaluation weights after each of `steps` steps of constant gradient `grad` from `params`.
fn eval_trajectory(pipeline: &str, layout: &str, params: &[f32], grad: f32, steps: usize) -> Vec<Vec<f32>> {
    let mut opt = optimizer(pipeline, layout, params);
    let mut params = params.to_vec();
    let grads = vec![grad; params.len()];
    let mut out = Vec::new();
    for _ in 0..steps {
        opt.step(&mut params, &grads, None).expect("step");
        let mut weights = vec![f32::NAN; params.len()];
        opt.eval_params(&params, &mut weights).expect("eval_params");
        out.push(weights);
    }
    out
}

#[test]
fn evaluation_weights_are_what_each_method_evaluates_with() {
    // An EMA of the parameters after each step: e_t = d * e_(t-1) + (1 - d) * p_t, e_0 = p_0.
    // SGD with lr 1 and gradient 1 from [1, 2]: p_1 = [0, 1], p_2 = [-1, 0].
    let ema = eval_trajectory("chain(ema_params(decay=0.5), sgd(learning_rate=1.0))", "p:2", &[1.0, 2.0], 1.0, 2);
    assert_eq!(ema, vec![vec![0.5, 1.5], vec![-0.25, 0.75]]);

    // Lookahead's slow weights: they move half way to the fast ones every 2 steps, and the
    // fast ones restart from them.
    let slow = eval_trajectory("lookahead(sgd(learning_rate=1.0), sync_period=2, slow_step_size=0.5)", "p:1", &[0.0], 1.0, 4);
    assert_eq!(slow, vec![vec![0.0], vec![-1.0], vec![-1.0], vec![-2.0]]);

    // Schedule-Free's x, the average of the z iterates weighted by lr^0 = 1 (Optax's
    // schedule_free_eval_params): z_t = p_0 - t * lr * g, so x_t = p_0 - lr * g * (t + 1) / 2.
    let x = eval_trajectory("schedule_free_sgd(learning_rate=0.1, b1=0.9, weight_lr_power=0.0)", "p:1", &[1.0], 2.0, 6);
    for (t, w) in x.iter().enumerate() {
        let expected = 1.0 - 0.1 * 2.0 * (t as f32 + 2.0) / 2.0;
        assert!((w[0] - expected).abs() < 1e-5, "step {}: {} against {expected}", t + 1, w[0]);
    }

    // A user's Polyak average (the mean of every iterate so far), defined in `.opt`.
    let polyak = r#"
transform polyak_average() {
    state avg: tensor = param
    state n: int = 0
    update(g) {
        n = n + 1
        avg = avg + (param - avg) / n
        g
    }
    eval_params { avg + (param - avg) / (n + 1) }
}
chain(polyak_average(), sgd(learning_rate=1.0))"#;
    let mean = eval_trajectory(polyak, "p:1", &[0.0], 1.0, 3);
    // Iterates 0, -1, -2, -3: their means after each step.
    assert_eq!(mean, vec![vec![-0.5], vec![-1.0], vec![-1.5]]);
}

#[test]
fn evaluation_weights_are_the_parameters_without_eval_params_and_misuse_is_refused() {
    let mut opt = optimizer("chain(counter(), times(c=2.0))", "a.w:2,a.b:1", &[0.0; 3]);
    assert!(!opt.has_eval_params());
    let mut out = vec![0.0; 3];
    opt.eval_params(&[1.0, 2.0, 3.0], &mut out).expect("eval_params");
    assert_eq!(out, vec![1.0, 2.0, 3.0]);

    let mut opt = optimizer("chain(ema_params(decay=0.5), times(c=-1.0))", "a.w:2,a.b:1", &[1.0, 2.0, 3.0]);
    assert!(opt.has_eval_params());
    let err = opt.eval_params(&[0.0; 3], &mut [0.0; 2]).expect_err("short output");
    assert_eq!(err.to_string(), "eval_params has 2 elements, but the layout has 3");
    let err = opt.eval_params_leaves(&[&[0.0], &[0.0, 0.0]], &mut [&mut [0.0], &mut [0.0]]).expect_err("short leaf");
    assert_eq!(err.to_string(), "eval_params of `a.w` has 1 elements, but the leaf has 2");
    // Asking changes nothing: the state and the next step are as without asking.
    let mut params = vec![1.0, 2.0, 3.0];
    let mut weights = vec![0.0; 3];
    opt.eval_params(&params, &mut weights).expect("eval_params");
    assert_eq!(weights, params);
    opt.step(&mut params, &[1.0; 3], None).expect("step");
    assert_eq!(params, vec![0.0, 1.0, 2.0]);
}

#[test]
fn two_transforms_giving_evaluation_weights_for_one_leaf_are_refused() {
    let text = "chain(ema_params(decay=0.9), lookahead(sgd(learning_rate=0.1), sync_period=2, slow_step_size=0.5))";
    let (sources, checked) = optc::check_str("test.opt", text);
    assert!(!checked.has_errors(), "{}", optc::diagnostic::render(&checked.diagnostics, &sources));
    let layout = Layout::parse("a.w:2,a.b:1").expect("layout");
    let err = Optimizer::new(&checked.program, &layout, &[0.0; 3]).err().expect("an error");
    let rendered = optc::diagnostic::render(&err, &sources);
    assert_eq!(err[0].code, "eval-params-overlap", "{rendered}");
    assert!(err[0].message.contains("`a.b`") && err[0].message.contains("`a.w`"), "{rendered}");
    // Masked apart, each gives its own leaves'.
    let text = r#"chain(masked(chain(ema_params(decay=0.5), sgd(learning_rate=0.1)), mask="*.b"),
                     masked(lookahead(sgd(learning_rate=0.1), sync_period=2, slow_step_size=0.5), mask="*.w"))"#;
    let (_, checked) = optc::check_str("test.opt", text);
    let mut params = vec![1.0, 2.0, 3.0];
    let mut opt = Optimizer::new(&checked.program, &layout, &params).unwrap_or_else(|_| panic!("masked apart"));
    assert!(opt.has_eval_params());
    opt.step(&mut params, &[1.0; 3], None).expect("step");
    let mut w = vec![f32::NAN; 3];
    opt.eval_params(&params, &mut w).expect("eval_params");
    // a.b: the EMA of 1 and 0.9; a.w: the slow weights, still the initial ones.
    assert!((w[0] - 0.95).abs() < 1e-6, "{w:?}");
    assert_eq!(w[1..], [2.0, 3.0]);
}

#[test]
fn masks_select_leaves_by_shape_and_combine() {
    // Optax's rank mask (`x.ndim > 1`) and Muon's routing (2-D leaves apart), against the same
    // leaves named by globs: the steps are bit-identical.
    let layout = "embed.weight:6x4,layer.weight:4x4,layer.bias:4,norm.scale:4,temperature:,head.weight:3x4x2";
    let same = |a: &str, b: &str| {
        let (px, py) = (stepped(a, layout, 4).1, stepped(b, layout, 4).1);
        assert_eq!(px, py, "{a}\nagainst\n{b}");
        // And a mask that selects something else steps differently (the test can fail).
        px
    };
    let rank = same("adamw(1e-2, weight_decay=0.5, mask=ndim > 1)", r#"adamw(1e-2, weight_decay=0.5, mask=["*.weight"])"#);
    let all = same("adamw(1e-2, weight_decay=0.5, mask=ndim >= 0)", "adamw(1e-2, weight_decay=0.5)");
    assert_ne!(rank, all);
    same(
        r#"partition { ndim == 2 and not "embed.*" => sgd(0.1, momentum=0.9), "*.bias" | size < 2 => sgd(0.01), _ => adam(1e-3) }"#,
        r#"partition { "layer.weight" => sgd(0.1, momentum=0.9), "*.bias" | "temperature" => sgd(0.01), _ => adam(1e-3) }"#,
    );
    same(r#"adamw(1e-2, weight_decay=0.5, mask=not ("*.bias" or "norm.*") and size > 1)"#, r#"adamw(1e-2, weight_decay=0.5, mask="*.weight")"#);
    same(r#"masked(sgd(0.1), 2 < ndim)"#, r#"masked(sgd(0.1), "head.*")"#);
}

#[test]
fn a_transform_reads_each_leafs_ndim_and_size() {
    let text = r#"
transform by_shape() {
    update(g) {
        if ndim >= 2 { g * size } else { g * (10 + ndim) }
    }
}
by_shape()
"#;
    let (sources, checked) = optc::check_str("test.opt", text);
    assert!(!checked.has_errors(), "{}", optc::diagnostic::render(&checked.diagnostics, &sources));
    // Leaves by name: b (3), s (scalar), w (2x3).
    let layout = Layout::parse("w:2x3,b:3,s:").expect("layout");
    let mut opt = Optimizer::new(&checked.program, &layout, &[0.0; 10]).unwrap_or_else(|d| panic!("{}", optc::diagnostic::render(&d, &sources)));
    assert_eq!(updates(&mut opt, &[1.0; 10], None), [vec![11.0; 3], vec![10.0], vec![6.0; 6]].concat());
}

#[test]
fn adafactor_keeps_a_row_and_a_column_per_matrix_and_a_moment_per_vector_element() {
    // A 64x32 matrix factors (v_row over its largest axis, 0; v_col over axis 1); the vector
    // keeps `v`. Each slot holds only the leaves it is used for, reduced where it can be:
    // 32 + 64 + 32 floats instead of 3 x 2080.
    let params = vec![0.5; 64 * 32 + 32];
    let opt = optimizer("adafactor(learning_rate=0.01, min_dim_size_to_factor=2)", "w:64x32,b:32", &params);
    let lens: Vec<(String, usize)> = opt
        .ir
        .slots
        .iter()
        .zip(opt.slot_layout().lens())
        .filter(|(s, _)| s.level == optc::ir::Level::Element)
        .map(|(s, n)| (s.name.clone(), *n))
        .collect();
    let expected = [("scale_by_factored_rms.v_row", 32), ("scale_by_factored_rms.v_col", 64), ("scale_by_factored_rms.v", 32)];
    assert_eq!(lens, expected.map(|(n, k)| (n.to_string(), k)).to_vec());
}
