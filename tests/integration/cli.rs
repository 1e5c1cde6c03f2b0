//! The binary as a user runs it: good and bad input, never a panic, the right exit codes.

use crate::support::{assert_no_panic, optc, text};

#[test]
fn check_accepts_the_article_pipeline_and_summarises_it() {
    let out = optc(&["check", "examples/plateau.opt"], None);
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("examples/plateau.opt: ok"), "{stdout}");
    assert!(stdout.contains("reduce_on_plateau(factor=0.5, patience=10"), "{stdout}");
    assert!(stdout.contains("a value (the loss) at every step"), "{stdout}");
    assert!(stdout.contains("per element"), "{stdout}");
}

#[test]
fn check_reads_standard_input() {
    let out = optc(&["check", "-"], Some("sgd(learning_rate=0.1)\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("<stdin>: ok"));
    assert!(text(&out.stdout).contains("gradients only"));
}

#[test]
fn check_says_state_that_follows_each_leafs_shape_keeps_less() {
    // Adafactor keeps a row and a column per matrix: the checker, without a layout, gives the
    // bound, and says where the true size is.
    let out = optc(&["check", "-"], Some("adafactor(learning_rate=0.01)\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("per element (at most 12 bytes per parameter: state that follows each leaf's shape keeps less, as `optc check --layout"), "{}", text(&out.stdout));
    let out = optc(&["emit", "--ir", "-", "--layout", "w:64x32,b:32"], Some("adafactor(learning_rate=0.01, min_dim_size_to_factor=2)\n"));
    assert!(text(&out.stdout).contains("v_row : per-element F32 reduced over axes 0 in group"), "{}", text(&out.stdout));
}

#[test]
fn check_says_at_most_only_where_a_mask_or_a_shape_leaves_out_state() {
    // AdamW's mask is weight decay's, which keeps nothing per element, and `centralize` reads
    // each leaf's shape but keeps nothing: every parameter keeps Adam's 8 bytes. A masked
    // Adam keeps them for its leaves only.
    let out = optc(&["check", "-"], Some("adamw(1e-3, mask=ndim == 2)\n"));
    assert!(text(&out.stdout).contains("per element (8 bytes per parameter): scale_by_adam.mu"), "{}", text(&out.stdout));
    let out = optc(&["check", "-"], Some("chain(centralize(), adam(1e-3))\n"));
    assert!(text(&out.stdout).contains("per element (8 bytes per parameter): adam.scale_by_adam.mu"), "{}", text(&out.stdout));
    let out = optc(&["check", "-"], Some("masked(adam(1e-3), ndim == 2)\n"));
    assert!(text(&out.stdout).contains("per element (at most 8 bytes per parameter: the leaves a mask leaves out keep none"), "{}", text(&out.stdout));
}

#[test]
fn check_with_a_layout_gives_the_state_kept_for_it() {
    // SM3 on a 64x32 matrix and a 32-vector: a per-element momentum (2080 floats), the
    // matrix's row and column maxima (64 and 32), the vector's per element (32); the six
    // accumulators of axes no leaf has keep nothing.
    let out = optc(&["check", "-", "--layout", "w:64x32,b:32"], Some("sm3(learning_rate=0.1)\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("state for the layout (2080 parameters in 2 leaves): 8832 bytes, 4.25 per parameter"), "{stdout}");
    for line in ["scale_by_sm3.nu: 8320 bytes", "scale_by_sm3.mu[0]: 384 bytes", "scale_by_sm3.mu[1]: 128 bytes", "scale_by_sm3.mu[2]: 0 bytes"] {
        assert!(stdout.contains(line), "`{line}` missing from:\n{stdout}");
    }
    // A bfloat16 moment keeps 2 bytes an element, a masked one its leaves' only; the step
    // counts are uniform.
    let out = optc(&["check", "-", "--layout", "w:64x32,b:32"], Some("adamw(1e-3, mu_dtype=\"bfloat16\", mask=ndim == 2)\n"));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("scale_by_adam.mu: 4160 bytes") && stdout.contains("scale_by_adam.nu: 8320 bytes"), "{stdout}");
    assert!(stdout.contains("uniform state: "), "{stdout}");
    // Leaves of no elements keep no per-element state, and there is no per-parameter figure.
    let out = optc(&["check", "-", "--layout", "w:0x3"], Some("adam(1e-3)\n"));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("(0 parameters in 1 leaf): 4 bytes\n") && stdout.contains("scale_by_adam.mu: 0 bytes"), "{stdout}");
    // A layout the pipeline cannot take, or one that does not parse, is an error.
    let out = optc(&["check", "-", "--layout", "w:1x1x1x1x1x1x1x1x1"], Some("sm3(learning_rate=0.1)\n"));
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("does not instantiate for the layout"), "{}", text(&out.stderr));
    let out = optc(&["check", "-", "--layout", "w:2x"], Some("sm3(learning_rate=0.1)\n"));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("bad --layout"), "{}", text(&out.stderr));
}

#[test]
fn check_reports_errors_with_exit_code_one() {
    let out = optc(&["check", "-"], Some("adam(lr=1e-3)\n"));
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error[unknown-keyword]"), "{stderr}");
    assert!(stderr.contains("did you mean `learning_rate`?"), "{stderr}");
}

#[test]
fn missing_files_directories_and_binary_input_get_messages() {
    let out = optc(&["check", "no/such/file.opt"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no such file"), "{}", text(&out.stderr));

    let out = optc(&["check", "examples"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("is a directory"), "{}", text(&out.stderr));

    let dir = std::env::temp_dir().join(format!("optc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let binary = dir.join("binary.opt");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x41]).expect("write");
    let out = optc(&["check", binary.to_str().expect("utf-8 path")], None);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not UTF-8"), "{}", text(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_flags_and_unknown_codes_are_rejected() {
    let out = optc(&["check", "--frobnicate", "x.opt"], None);
    assert_eq!(out.status.code(), Some(2));
    let out = optc(&["check", "--explain", "no-such-code"], None);
    assert_eq!(out.status.code(), Some(1));
    let out = optc(&["check", "--explain", "out-of-range"], None);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("range"));
}

#[test]
fn garbage_input_is_a_diagnostic_not_a_crash() {
    for input in ["(((((", ")))", "\u{0}\u{1}", "adam(learning_rate=", "partition {", "@", "let", "transform {"] {
        let out = optc(&["check", "-"], Some(input));
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "input {input:?}: {}", text(&out.stderr));
    }
}

#[test]
fn emit_names_the_leaves_a_glob_or_partition_misses() {
    let layout = "dense.kernel:4x3,dense.bias:3";
    // A glob that selects nothing is a warning (Optax accepts it; it is most likely a typo).
    let out = optc(&["emit", "--ir", "--layout", layout, "-"], Some("masked(sgd(learning_rate=0.1), mask=\"*.wieght\")\n"));
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0));
    let err = text(&out.stderr);
    assert!(err.contains("warning[unmatched-glob]") && err.contains("`dense.bias`, `dense.kernel`"), "{err}");

    let out = optc(&["emit", "--plan", "--layout", layout, "-"], Some("partition { \"*.bias\" => sgd(learning_rate=0.1) }\n"));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("unmatched-leaf") && err.contains("`dense.kernel`"), "{err}");

    // A layout of no leaves at all is refused, not instantiated.
    for layout in ["", ","] {
        let out = optc(&["emit", "--plan", "--layout", layout, "-"], Some("adam(learning_rate=1e-3)\n"));
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{layout:?}");
        assert!(text(&out.stderr).contains("no leaves"), "{}", text(&out.stderr));
    }
}

#[test]
fn emit_plans_clip_and_adamw_as_two_passes() {
    let out = optc(
        &["emit", "--plan", "--layout", "w:64,b:8", "-"],
        Some("chain(clip_by_global_norm(max_norm=1.0), adamw(learning_rate=3e-4))\n"),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(plan.contains("\n2 pass(es)"), "{plan}");
}

#[test]
fn bench_json_has_every_number() {
    let out = optc(&["bench", "-", "--params", "5000", "--leaves", "3", "--threads", "2", "--isa", "plain", "--json"], Some("adam(learning_rate=1e-3)\n"));
    assert_no_panic(&out);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object on stdout");
    for key in [
        "params",
        "leaves",
        "passes",
        "bytes_per_param",
        "threads",
        "rounds",
        "setup_ms",
        "pipeline_ns_per_param",
        "pipeline_gbps",
        "adam_ns_per_param",
        "adam_gbps",
        "probe_ns_per_param",
        "probe_gbps",
        "adam_probe_ns_per_param",
        "adam_probe_gbps",
        "fraction_of_probe",
        "adam_fraction",
        "speed_vs_adam",
    ] {
        let x = json[key].as_f64().unwrap_or_else(|| panic!("`{key}` is not a number in {json}"));
        assert!(x > 0.0, "`{key}` = {x} in {json}");
    }
    for compile in ["compile", "compile_first"] {
        for stage in ["total_ms", "check_ms", "instantiate_ms", "plan_ms", "jit_ms"] {
            let x = json[compile][stage].as_f64().unwrap_or_else(|| panic!("`{compile}.{stage}` is not a number in {json}"));
            assert!(x > 0.0, "`{compile}.{stage}` = {x} in {json}");
        }
    }
    assert_eq!(json["params"], 5000);
    assert_eq!(json["leaves"], 3);
    assert_eq!(json["bytes_per_param"], 28);
    assert_eq!(json["isa"], "plain");
    for key in ["file", "backend", "isa"] {
        assert!(json[key].as_str().is_some_and(|s| !s.is_empty()), "`{key}` in {json}");
    }
}

#[test]
fn bench_refuses_bad_sizes_and_input_with_a_message() {
    let adam = Some("adam(learning_rate=1e-3)\n");
    let cases: [(&[&str], Option<&str>, &str); 9] = [
        (&["--leaves", "0"], adam, "--leaves must be at least 1"),
        // More than any machine has: refused with the estimate, never an aborted allocation.
        (&["--params", "16000000000"], adam, "parameters need about 512.0 GB (8 floats per parameter"),
        (&["--params", "16000000000"], adam, "try `--params "),
        (&["--layout", "w:100000x100000"], Some("sgd(learning_rate=0.1)\n"), "give a layout of "),
        (&["--params", "10", "--leaves", "11"], adam, "more than --params"),
        (&["--params", "0"], adam, "--params must be at least 1"),
        (&["--threads", "0"], adam, "--threads must be at least 1"),
        (&[], Some("adam(lr=1e-3)\n"), "has errors"),
        (&["--layout", "w:0"], adam, "no parameters"),
    ];
    for (flags, input, message) in cases {
        let mut args = vec!["bench", "-"];
        args.extend(flags);
        let out = optc(&args, input);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(text(&out.stderr).contains(message), "{args:?}: {}", text(&out.stderr));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = optc(&["bench", "no/such/file.opt"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no such file"), "{}", text(&out.stderr));
    // `--leaves` splits `--params`; a layout says both itself.
    let out = optc(&["bench", "-", "--layout", "w:10", "--leaves", "2"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot be used with"), "{}", text(&out.stderr));
    let out = optc(&["bench", "-", "--isa", "sse9"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown instruction set `sse9`"), "{}", text(&out.stderr));
}

#[test]
fn doc_shows_a_definition_and_lists_them_all() {
    let out = optc(&["doc", "adam"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("adam (alias, stdlib/adam.opt:"), "{stdout}");
    assert!(stdout.contains("b1: float in [0, 1) = 0.9,"), "{stdout}");
    assert!(stdout.contains("Kingma & Ba"), "{stdout}");

    let out = optc(&["doc", "multi_steps"], None);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("(wrapper, stdlib/wrappers.opt:"), "{stdout}");
    assert!(stdout.contains("every_k_schedule: schedule[int] in [1, inf),"), "{stdout}");
    assert!(stdout.contains("state: mini_step"), "{stdout}");

    let out = optc(&["doc"], None);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for line in ["Schedules (stdlib/schedules.opt)", "  cosine_decay_schedule", "  masked ", "Not supported yet: shampoo"] {
        assert!(stdout.contains(line), "`{line}` missing from:\n{stdout}");
    }
    assert!(!stdout.contains("  _safe_norm"), "private helpers are not listed");

    let out = optc(&["doc", "adma"], None);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("did you mean `adam`?"), "{}", text(&out.stderr));
}

#[test]
fn explain_lists_every_code_and_shows_examples() {
    let out = optc(&["check", "--explain"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().filter(|l| l.starts_with(|c: char| c.is_ascii_lowercase())).count(), optc::codes::CODES.len());
    assert!(stdout.contains("out-of-range "), "{stdout}");

    let out = optc(&["check", "--explain", "positional-after-keyword"], None);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("wrong:\n    adam(learning_rate=1e-3, 0.9)\n"), "{stdout}");
    assert!(stdout.contains("right:\n    adam(learning_rate=1e-3, b1=0.9)\n"), "{stdout}");
}

#[test]
fn check_counts_every_entry_of_a_list_of_tensors() {
    let out = optc(&["check", "-"], Some("lbfgs(learning_rate=0.1, linesearch=None)\n"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // params, updates and two histories of 10: 22 floats.
    assert!(stdout.contains("per element (88 bytes per parameter): "), "{stdout}");
    assert!(stdout.contains("scale_by_lbfgs.diff_params_memory[0:10]"), "{stdout}");
    assert!(stdout.contains("scale_by_lbfgs.weights_memory[0:10]"), "{stdout}");
}

#[test]
fn check_counts_the_state_a_parameter_keeps_in_its_own_group() {
    let out = optc(&["check", "examples/transformer.opt"], None);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("per element (8 bytes per parameter, of its own group's)"), "{stdout}");
}
