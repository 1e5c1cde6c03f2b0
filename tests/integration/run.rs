//! `optc run` and `optc schedule` as a user runs them: training, logs, plots, checkpoints that
//! resume bit for bit, foreign checkpoints and bad data refused, divergence stopped.

use std::path::PathBuf;

use crate::support::{assert_no_panic, files_with_extension, optc, root, text};

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("optc-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn s(path: &std::path::Path) -> String {
    path.display().to_string()
}

/// Runs `optc` and insists on success; returns stdout and stderr.
fn ok(args: &[&str]) -> (String, String) {
    let out = optc(args, None);
    assert_no_panic(&out);
    assert!(out.status.success(), "optc {args:?} failed:\n{}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

/// Runs `optc`, insists on failure without a panic; returns stderr.
fn fails(args: &[&str]) -> String {
    let out = optc(args, None);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "optc {args:?}:\n{}{}", text(&out.stdout), text(&out.stderr));
    text(&out.stderr)
}

#[test]
fn every_example_trains_for_a_few_steps() {
    for path in files_with_extension(&root().join("examples"), "opt") {
        let (stdout, _) = ok(&["run", &s(&path), "--steps", "5", "--quiet"]);
        assert!(stdout.contains("steps          5"), "{}: {stdout}", path.display());
    }
}

#[test]
fn muon_with_optaxs_dimension_numbers_on_the_mlp_is_told_its_order() {
    // The MLP's weights are [out, in]; Muon's defaults read them as [in, out]. The warning
    // names the dimension numbers that fit, and giving them (or a pipeline without Muon)
    // quiets it.
    let dir = scratch("muon_order");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("writes the pipeline");
        s(&path)
    };
    let default = write("default.opt", "muon(learning_rate=0.02)\n");
    let fitted = write("fitted.opt", "muon(learning_rate=0.02, muon_weight_dimension_numbers=[(ndim == 2, MuonDimensionNumbers(1, 0))])\n");
    let (_, stderr) = ok(&["run", &default, "--steps", "3", "--quiet"]);
    assert!(stderr.contains("[out, in]") && stderr.contains("MuonDimensionNumbers(1, 0)"), "{stderr}");
    for quiet in [fitted.as_str(), "examples/plateau.opt"] {
        let (_, stderr) = ok(&["run", quiet, "--steps", "3", "--quiet"]);
        assert!(!stderr.contains("[out, in]"), "{quiet}: {stderr}");
    }
}

#[test]
fn backends_and_thread_counts_train_the_same_model() {
    // A model wide enough (about 70 000 parameters) that a step is split over threads.
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "examples/plateau.opt", "--hidden", "256,256", "--steps", "40", "--quiet"];
        args.extend_from_slice(extra);
        let (stdout, _) = ok(&args);
        let losses: Vec<String> = stdout.lines().filter(|l| l.contains("loss") || l.contains("validation")).map(String::from).collect();
        assert_eq!(losses.len(), 3, "{stdout}");
        losses
    };
    let reference = run(&["--backend", "interp"]);
    assert_eq!(run(&["--backend", "jit", "--threads", "1"]), reference);
    assert_eq!(run(&["--backend", "jit", "--threads", "2"]), reference);
    // Usage errors are clap's: exit code 2.
    let out = optc(&["run", "examples/plateau.opt", "--backend", "gpu"], None);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown backend `gpu`"), "{}", text(&out.stderr));
}

#[test]
fn the_article_run_halves_the_learning_rate_on_plateaus_and_logs_it() {
    let dir = scratch("article");
    let (log, plot) = (dir.join("log.csv"), dir.join("plot.svg"));
    let (stdout, stderr) = ok(&["run", "examples/plateau.opt", "--steps", "6000", "--log", &s(&log), "--plot", &s(&plot)]);
    assert!(stderr.contains(": reduce_on_plateau.scale 1 → 0.5"), "{stderr}");
    assert!(stdout.contains("learning rate  5.000e-4"), "{stdout}");
    let log = std::fs::read_to_string(&log).expect("log written");
    let header: Vec<&str> = log.lines().next().unwrap_or("").split(',').collect();
    for column in ["step", "loss", "val_loss", "lr", "reduce_on_plateau.scale", "adam.scale_by_adam.count"] {
        assert!(header.contains(&column), "no `{column}` in {header:?}");
    }
    assert_eq!(log.lines().count(), 6001);
    let lr = header.iter().position(|c| *c == "lr").unwrap_or(0);
    let rates: Vec<f64> = log.lines().skip(1).filter_map(|l| l.split(',').nth(lr)?.parse().ok()).collect();
    assert_eq!((rates[0], rates[rates.len() - 1]), (0.001, 0.0005));
    let svg = std::fs::read_to_string(&plot).expect("plot written");
    assert!(svg.starts_with("<svg") && svg.contains("learning rate"), "{}", &svg[..svg.len().min(200)]);
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one_bit_for_bit() {
    let dir = scratch("resume");
    let (straight, resumed, checkpoints) = (dir.join("straight.safetensors"), dir.join("resumed.safetensors"), dir.join("ckpt"));
    let common = ["--data", "moons", "--batch-size", "16", "--hidden", "8,8", "--activation", "tanh", "--quiet"];
    for pipeline in ["examples/plateau.opt", "examples/transformer.opt"] {
        let run = |extra: &[&str]| {
            let mut args = vec!["run", pipeline];
            args.extend(common);
            args.extend(extra);
            ok(&args)
        };
        run(&["--steps", "60", "--save", &s(&straight)]);
        let _ = std::fs::remove_dir_all(&checkpoints);
        run(&["--steps", "30", "--checkpoint", &s(&checkpoints), "--every", "10"]);
        let (_, stderr) = run(&["--steps", "60", "--resume", &s(&checkpoints), "--save", &s(&resumed)]);
        assert!(stderr.contains("at step 30"), "{stderr}");
        let (a, b) = (std::fs::read(&straight).expect("weights"), std::fs::read(&resumed).expect("weights"));
        assert!(a == b, "{pipeline}: resumed weights differ from the uninterrupted run's");
    }
}

#[test]
fn checkpoints_of_another_pipeline_or_model_are_refused() {
    let dir = scratch("foreign");
    let checkpoints = dir.join("ckpt");
    ok(&["run", "examples/plateau.opt", "--steps", "4", "--checkpoint", &s(&checkpoints), "--every", "2", "--quiet"]);
    let stderr = fails(&["run", "examples/powersign.opt", "--steps", "8", "--resume", &s(&checkpoints)]);
    assert!(stderr.contains("pipeline"), "{stderr}");
    let stderr = fails(&["run", "examples/plateau.opt", "--steps", "8", "--hidden", "32", "--resume", &s(&checkpoints)]);
    assert!(stderr.contains("another run") && stderr.contains("model"), "{stderr}");
    let stderr = fails(&["run", "examples/plateau.opt", "--resume", &s(&dir.join("nowhere"))]);
    assert!(stderr.contains("no such checkpoint folder"), "{stderr}");
    // A new run does not write its checkpoints over another run's: it is refused before it
    // starts, and the folder is as it was.
    let names = || {
        let mut names: Vec<_> = std::fs::read_dir(&checkpoints).expect("folder").map(|e| e.expect("entry").file_name()).collect();
        names.sort();
        names
    };
    let before = names();
    let stderr = fails(&["run", "examples/plateau.opt", "--steps", "6", "--checkpoint", &s(&checkpoints), "--every", "2"]);
    assert!(stderr.contains("holds the checkpoints of another run") && stderr.contains("--resume"), "{stderr}");
    assert_eq!(before, names());
    // Resuming into the same folder, however it is spelt, goes on.
    let same = format!("{}/../ckpt", s(&checkpoints));
    ok(&["run", "examples/plateau.opt", "--steps", "6", "--resume", &s(&checkpoints), "--checkpoint", &same, "--every", "2", "--quiet"]);
}

#[test]
fn weights_go_out_and_come_back_through_safetensors() {
    let dir = scratch("weights");
    let (first, second) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    ok(&["run", "examples/plateau.opt", "--steps", "3", "--save", &s(&first), "--quiet"]);
    ok(&["run", "examples/plateau.opt", "--steps", "0", "--init", &s(&first), "--save", &s(&second), "--quiet"]);
    assert_eq!(std::fs::read(&first).ok(), std::fs::read(&second).ok());
    let stderr = fails(&["run", "examples/plateau.opt", "--steps", "1", "--hidden", "8", "--init", &s(&first)]);
    assert!(stderr.contains("shape"), "{stderr}");
    std::fs::write(dir.join("junk.safetensors"), b"not weights").expect("write");
    let stderr = fails(&["run", "examples/plateau.opt", "--init", &s(&dir.join("junk.safetensors"))]);
    assert!(stderr.contains("not a safetensors file"), "{stderr}");
}

#[test]
fn a_users_csv_trains_and_bad_csvs_name_the_line_and_column() {
    let dir = scratch("csv");
    let good = dir.join("good.csv");
    let rows: String = (0..40).map(|i| format!("{},{},{}\n", i as f32 / 40.0, (i % 7) as f32, (i % 3) as f32 * 0.5)).collect();
    std::fs::write(&good, format!("a,b,y\n{rows}")).expect("write");
    let (stdout, _) = ok(&["run", "examples/plateau.opt", "--data", &s(&good), "--target", "y", "--steps", "20", "--quiet"]);
    assert!(stdout.contains("mlp 2-64-1"), "{stdout}");

    let cases = [
        ("a,b,y\n1,2,3\n4,x,6\n", "bad.csv:3: column `b` (2) is `x`, not a number"),
        ("a,b,y\n1,2,3\n4,5\n", "bad.csv:3: this row has 2 fields, but the header has 3"),
        ("a,b,y\n", "no data rows"),
        ("", "empty"),
        ("a,b,y\n1,2,nan\n", "not a finite number"),
    ];
    for (content, message) in cases {
        std::fs::write(dir.join("bad.csv"), content).expect("write");
        let stderr = fails(&["run", "examples/plateau.opt", "--data", &s(&dir.join("bad.csv")), "--target", "y"]);
        assert!(stderr.contains(message), "expected `{message}` in:\n{stderr}");
    }
    std::fs::write(dir.join("bad.csv"), "a,b,y\n1,2,3\n").expect("write");
    let stderr = fails(&["run", "examples/plateau.opt", "--data", &s(&dir.join("bad.csv")), "--target", "z"]);
    assert!(stderr.contains("no column `z`; the columns are `a`, `b`, `y`"), "{stderr}");
    let stderr = fails(&["run", "examples/plateau.opt", "--data", &s(&dir.join("missing.csv")), "--target", "y"]);
    assert!(stderr.contains("no such file"), "{stderr}");
}

#[test]
fn bad_flags_get_messages() {
    for (args, message) in [
        (&["--model", "resnet"][..], "expected mlp, linear"),
        (&["--activation", "swish"], "expected relu, tanh or gelu"),
        (&["--data", "mnist"], "expected regression, moons, spirals, blobs or a CSV file"),
        (&["--loss", "hinge"], "expected mse or xent"),
        (&["--val-fraction", "1.5"], "must be in [0, 1)"),
        (&["--plot", "out.pdf"], "a plot is `.svg` or `.png`"),
        (&["--model", "logistic", "--data", "regression"], "`--model logistic` classifies"),
        (&["--model", "logistic", "--data", "moons", "--loss", "mse"], "cannot train on `--loss mse`"),
    ] {
        let mut all = vec!["run", "examples/plateau.opt", "--steps", "2", "--quiet"];
        all.extend(args);
        let stderr = fails(&all);
        assert!(stderr.contains(message), "{args:?}: expected `{message}` in:\n{stderr}");
    }
    let stderr = fails(&["run", "examples/no_such.opt"]);
    assert!(stderr.contains("no such file"), "{stderr}");
}

#[test]
fn divergence_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let dir = scratch("diverge");
    let pipeline = dir.join("huge.opt");
    std::fs::write(&pipeline, "sgd(learning_rate=1e3)\n").expect("write");
    let checkpoints = dir.join("ckpt");
    let stderr = fails(&[
        "run", &s(&pipeline), "--model", "rosenbrock", "--dim", "4", "--steps", "100",
        "--checkpoint", &s(&checkpoints), "--every", "1",
    ]);
    assert!(stderr.contains("training stopped at step"), "{stderr}");
    assert!(stderr.contains("the last checkpoint is"), "{stderr}");
    let newest = std::fs::read_dir(&checkpoints).expect("checkpoints").filter_map(Result::ok).count();
    assert!(newest >= 1, "no checkpoint kept");
}

#[test]
fn test_functions_train_without_data() {
    for model in ["rosenbrock", "quadratic", "rastrigin"] {
        let (stdout, _) = ok(&["run", "examples/plateau.opt", "--model", model, "--dim", "3", "--steps", "50", "--quiet"]);
        assert!(stdout.contains(model), "{stdout}");
    }
}

#[test]
fn schedule_prints_the_values_a_pipeline_would_use() {
    let (stdout, _) = ok(&["schedule", "piecewise_constant_schedule(0.1, {2: 0.5})", "--steps", "4"]);
    let values: Vec<&str> = stdout.lines().skip(1).map(|l| l.split_whitespace().last().unwrap_or("")).collect();
    assert_eq!(values, ["0.1", "0.1", "0.05", "0.05"]);
    let stderr = fails(&["schedule", "adam(1e-3)"]);
    assert!(stderr.contains("expected a schedule, found transform"), "{stderr}");
    let dir = scratch("schedule");
    let plot = dir.join("s.svg");
    ok(&["schedule", "warmup_cosine_decay_schedule(0.0, 1e-3, 10, 100)", "--steps", "100", "--plot", &s(&plot)]);
    assert!(plot.exists());
}

#[test]
fn a_huge_bad_csv_field_is_not_echoed_whole() {
    let dir = scratch("huge-field");
    let csv = dir.join("big.csv");
    std::fs::write(&csv, format!("a,y\n1,2\n{},3\n", "x".repeat(100_000))).expect("write");
    let stderr = fails(&["run", "examples/plateau.opt", "--data", &s(&csv), "--target", "y"]);
    assert!(stderr.contains("big.csv:3: column `a` (1) is `xxxx") && stderr.contains("(100000 bytes)"), "{}", &stderr[..stderr.len().min(300)]);
    assert!(stderr.len() < 1000, "{} bytes of message", stderr.len());
}

#[test]
fn conform_fails_a_case_that_checks_nothing() {
    let dir = scratch("empty-case");
    let params = r#"{"w": {"shape": [2], "data": [1.0, 2.0]}}"#;
    let grads = r#"{"w": {"shape": [2], "data": [0.1, 0.2]}}"#;
    for (what, steps, expected, params) in [
        ("no steps", "[]".to_string(), "[]".to_string(), params),
        ("no expected", format!("[{{\"grads\": {grads}}}]"), "[]".to_string(), params),
        ("no params", "[]".to_string(), "[]".to_string(), "{}"),
    ] {
        let case = dir.join("case.json");
        let json = format!(r#"{{"pipeline": "sgd(learning_rate=0.1)", "params": {params}, "steps": {steps}, "expected": {expected}, "tolerance": {{"rtol": 1e-6, "atol": 1e-7}}}}"#);
        std::fs::write(&case, json).expect("write");
        let out = optc(&["conform", &s(&case)], None);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stdout));
        assert!(text(&out.stdout).contains("checks nothing") && text(&out.stdout).contains("0 passed, 1 failed"), "{what}: {}", text(&out.stdout));
    }
}

#[test]
fn conform_refuses_a_malformed_tolerance_or_shape() {
    let dir = scratch("malformed-case");
    let case = dir.join("case.json");
    // sgd's first step is far from "expected": only a tolerance that passes anything would pass it.
    for (what, tolerance, shape, message) in [
        ("negative", r#"{"rtol": -1}"#, "[2]", "tolerance.rtol is -1"),
        ("both negative", r#"{"rtol": -1, "atol": -1}"#, "[2]", "tolerance.rtol is -1"),
        ("a string", r#"{"rtol": "x", "atol": 1e-7}"#, "[2]", "tolerance.rtol is \"x\""),
        ("a negative size", r#"{"rtol": 1e-6}"#, "[-2]", "params.w.shape holds something other than a size"),
    ] {
        let json = format!(
            r#"{{"pipeline": "sgd(learning_rate=0.5)", "params": {{"w": {{"shape": {shape}, "data": [1.0, 2.0]}}}}, "steps": [{{"grads": {{"w": {{"shape": [2], "data": [1.0, 1.0]}}}}}}], "expected": [{{"w": {{"shape": [2], "data": [9.0, 9.0]}}}}], "tolerance": {tolerance}}}"#
        );
        std::fs::write(&case, json).expect("write");
        let out = optc(&["conform", &s(&case)], None);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stdout));
        assert!(text(&out.stdout).contains(message), "{what}: {}", text(&out.stdout));
    }
}

#[test]
fn the_learning_rate_column_is_the_step_each_family_takes() {
    let dir = scratch("lr");
    let cases: &[(&str, &[(&str, f64)])] = &[
        ("sgd(learning_rate=1e-3)", &[("lr", 0.001)]),
        ("chain(scale_by_adam(), scale(-1e-3))", &[("lr", 0.001)]),
        ("chain(sgd(0.1), reduce_on_plateau(factor=0.5))", &[("lr", 0.1)]),
        ("inject_hyperparams(sgd)(learning_rate=0.05)", &[("lr", 0.05), ("inject_hyperparams.learning_rate", 0.05)]),
        ("partition { \"*.bias\" => sgd(learning_rate=0.1), _ => adam(learning_rate=1e-3) }", &[("lr[*.bias]", 0.1), ("lr[_]", 0.001)]),
        ("prodigy()", &[("lr", 3.1622565e-7)]),
        // Adafactor scales by each leaf's parameter norm after the learning rate.
        ("adafactor(learning_rate=0.01)", &[("lr", 0.01)]),
        // Momentum after the learning rate: the rate scales what goes into the moment.
        ("adafactor(learning_rate=0.5, momentum=0.9)", &[("lr", 0.5)]),
        ("chain(scale_by_adam(), scale(-0.01), ema(0.9, debias=False))", &[("lr", 0.01)]),
        // Muon scales each matrix by its shape: one group per shape, named by it.
        ("muon(learning_rate=0.02)", &[("lr[_; ndim == 2 (64x2)]", 0.02), ("lr[ndim == 2 (3x64)]", 0.02 * (64.0f64 / 3.0).sqrt())]),
        // D-Adaptation folds its step into the moments: d * lr * bias correction at step 1.
        ("dadapt_adamw()", &[("lr", 3.1622565e-7)]),
        // Lookahead and Schedule-Free move the parameters by no single factor: measured.
        ("lookahead(sgd(learning_rate=0.1), sync_period=5, slow_step_size=0.5)", &[("lr", 0.1)]),
        // Schedules other than the learning rate are logged under the names `optc check` gives.
        ("adamw(learning_rate=1e-3, weight_decay=exponential_decay(0.01, 10, 0.5))", &[("lr", 0.001), ("add_decayed_weights.weight_decay", 0.01)]),
        ("multi_steps(sgd(0.1), every_k_schedule=piecewise_constant_schedule(2, {10: 2}))", &[("every_k_schedule", 2.0), ("opt.count", 0.0)]),
        ("conditionally_transform(sgd(0.1), should_transform_fn=even)\ndef even(step: int) -> bool = step % 2 == 0", &[("conditionally_transform.step", 1.0)]),
    ];
    for (pipeline, expected) in cases {
        let (file, log) = (dir.join("p.opt"), dir.join("p.csv"));
        std::fs::write(&file, format!("{pipeline}\n")).expect("write");
        ok(&["run", &s(&file), "--steps", "2", "--log", &s(&log), "--quiet"]);
        let text = std::fs::read_to_string(&log).expect("log");
        let header: Vec<&str> = text.lines().next().unwrap_or("").split(',').collect();
        let first: Vec<&str> = text.lines().nth(1).unwrap_or("").split(',').collect();
        for (column, value) in *expected {
            let i = header.iter().position(|c| c == column).unwrap_or_else(|| panic!("{pipeline}: no `{column}` in {header:?}"));
            let found: f64 = first[i].parse().unwrap_or(f64::NAN);
            assert!((found - value).abs() <= 1e-6 * value.abs(), "{pipeline}: {column} is {found}, expected {value}");
        }
        assert!(!header.iter().any(|c| c.ends_with(".lr") || c.ends_with(".cosine_decay")), "{pipeline}: locals logged: {header:?}");
        let mut unique = header.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), header.len(), "{pipeline}: duplicate columns {header:?}");
    }
    // COCOB has no scalar step: the log holds the one it took, measured.
    std::fs::write(dir.join("p.opt"), "cocob()\n").expect("write");
    ok(&["run", &s(&dir.join("p.opt")), "--steps", "2", "--log", &s(&dir.join("p.csv")), "--quiet"]);
    let text = std::fs::read_to_string(dir.join("p.csv")).expect("log");
    let lr: f64 = text.lines().nth(1).and_then(|l| l.split(',').nth(4)).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
    assert!(lr.is_finite() && lr > 0.0, "{text}");
}

#[test]
fn the_plot_shows_only_what_the_run_has() {
    let dir = scratch("plot-legend");
    let plot = dir.join("p.svg");
    ok(&["run", "examples/plateau.opt", "--model", "rosenbrock", "--steps", "20", "--plot", &s(&plot), "--quiet"]);
    let svg = std::fs::read_to_string(&plot).expect("plot");
    assert!(svg.contains("training loss") && !svg.contains("validation loss"), "a test function has no validation set");
    ok(&["run", "examples/plateau.opt", "--data", "moons", "--batch-size", "32", "--steps", "20", "--plot", &s(&plot), "--quiet"]);
    let svg = std::fs::read_to_string(&plot).expect("plot");
    // plotters writes each label on a line of its own.
    for label in ["\nvalidation loss\n", "\nsmoothed (0.6)\n", "\nlearning rate\n", "\nlr\n"] {
        assert!(svg.contains(label), "no `{label}` in the plot");
    }
}

/// Every float of a safetensors file, tensor by tensor in name order.
fn floats(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("a weights file");
    let file = safetensors::SafeTensors::deserialize(&bytes).expect("a safetensors file");
    let mut names = file.names();
    names.sort();
    names.iter().flat_map(|n| file.tensor(n).expect("a tensor").data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<_>>()).collect()
}

#[test]
fn runs_validate_on_and_save_the_evaluation_weights() {
    let dir = scratch("eval-weights");
    let (file, eval, trained) = (dir.join("p.opt"), dir.join("eval.safetensors"), dir.join("trained.safetensors"));
    // Lookahead's fast weights restart from the slow ones at each sync: after 10 steps with a
    // sync every 5 they are the same weights (up to the float32 rounding of the update that
    // moves them there), after 12 they are not.
    std::fs::write(&file, "lookahead(sgd(learning_rate=0.01), sync_period=5, slow_step_size=0.5)\n").expect("write");
    let (stdout, _) = ok(&["check", &s(&file)]);
    assert!(stdout.contains("evaluation weights: from the `eval_params` of `lookahead`"), "{stdout}");
    let base = ["run", &s(&file), "--model", "quadratic", "--quiet"];
    for (steps, same) in [("10", true), ("12", false)] {
        let (stdout, _) = ok(&[&base[..], &["--steps", steps, "--save", &s(&eval)]].concat());
        assert!(stdout.contains("evaluated on   the pipeline's evaluation weights"), "{stdout}");
        assert!(stdout.contains("eval loss"), "{stdout}");
        assert!(stdout.contains("(the evaluation weights; `--save-trained` saves the trained parameters)"), "{stdout}");
        let (stdout, _) = ok(&[&base[..], &["--steps", steps, "--save", &s(&trained), "--save-trained"]].concat());
        assert!(stdout.contains("(the trained parameters)"), "{stdout}");
        let (a, b) = (floats(&eval), floats(&trained));
        let most = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert_eq!(a.len(), b.len());
        assert_eq!(most <= 1e-6, same, "{steps} steps: they differ by up to {most}");
    }

    // The validation loss is the saved weights' own: a run that starts from them and steps by
    // nothing (SGD with rate 0) measures the same after its one step.
    std::fs::write(&file, "schedule_free_sgd(learning_rate=0.5)\n").expect("write");
    let data = ["--data", "moons", "--hidden", "8", "--eval-every", "1", "--quiet"];
    let (stdout, _) = ok(&[&["run", &s(&file), "--steps", "30", "--save", &s(&eval)][..], &data[..]].concat());
    let validation = |out: &str| out.lines().find(|l| l.trim_start().starts_with("validation")).map(str::to_string);
    let trained_on = validation(&stdout).expect("a validation line");
    std::fs::write(dir.join("still.opt"), "sgd(learning_rate=0.0)\n").expect("write");
    let (stdout, _) = ok(&[&["run", &s(&dir.join("still.opt")), "--steps", "1", "--init", &s(&eval)][..], &data[..]].concat());
    assert_eq!(validation(&stdout).as_deref(), Some(trained_on.as_str()));
    assert!(!stdout.contains("evaluated on"), "plain SGD has no evaluation weights: {stdout}");

    // `--save-trained` means nothing without `--save`: a usage error.
    let out = optc(&["run", &s(&file), "--save-trained"], None);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // Two transforms giving evaluation weights for the same leaves: refused before training.
    std::fs::write(&file, "chain(ema_params(decay=0.9), schedule_free_sgd(learning_rate=0.1))\n").expect("write");
    let stderr = fails(&["run", &s(&file), "--model", "rosenbrock", "--steps", "3"]);
    assert!(stderr.contains("eval-params-overlap") && stderr.contains("two transforms give evaluation weights"), "{stderr}");
}

#[test]
fn a_resumed_run_plots_and_summarises_the_whole_run() {
    let dir = scratch("resumed-plot");
    let args = |steps: &'static str, out: &str| -> Vec<String> {
        // Validation every 5 steps: the first run's last step (25) is measured by both.
        ["run", "examples/plateau.opt", "--data", "moons", "--hidden", "8", "--batch-size", "32", "--eval-every", "5", "--steps", steps, "--quiet"]
            .iter()
            .map(|a| a.to_string())
            .chain(["--log", &format!("{out}.csv"), "--plot", &format!("{out}.svg")].map(String::from))
            .collect()
    };
    let run = |args: Vec<String>| ok(&args.iter().map(String::as_str).collect::<Vec<_>>()).0;
    let whole = run(args("60", &s(&dir.join("whole"))));
    let ck = s(&dir.join("ck"));
    let first = [args("25", &s(&dir.join("part"))), vec!["--checkpoint".into(), ck.clone()]].concat();
    run(first);
    let resumed = run([args("60", &s(&dir.join("part"))), vec!["--resume".into(), ck]].concat());
    // The same picture as the uninterrupted run's, steps 1 to 25 included.
    let (a, b) = (std::fs::read_to_string(dir.join("whole.svg")).expect("plot"), std::fs::read_to_string(dir.join("part.svg")).expect("plot"));
    assert!(a == b, "the resumed run's plot differs from the uninterrupted run's");
    // And the same summary numbers (the best validation loss may be from before the resume).
    let numbers = |out: &str| -> Vec<String> {
        out.lines().filter(|l| ["training loss", "validation", "best val", "accuracy"].iter().any(|k| l.contains(k))).map(String::from).collect()
    };
    assert_eq!(numbers(&resumed), numbers(&whole));
}
