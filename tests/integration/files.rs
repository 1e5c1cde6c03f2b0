//! Files `optc run` writes, against what users and accidents put in their way: device nodes,
//! symlinks, planted temporary names, a full disk, damaged checkpoints, and Ctrl-C or SIGTERM
//! at any step. Every test runs the binary; none is timed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{assert_no_panic, optc, root, text};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("optc-files-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// Runs `optc run examples/plateau.opt` on a small model with `extra`; returns (exit code,
/// stdout, stderr).
fn run(extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["run", "examples/plateau.opt", "--data", "moons", "--batch-size", "16", "--hidden", "8", "--quiet"];
    args.extend_from_slice(extra);
    let out = optc(&args, None);
    assert_no_panic(&out);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Names in `dir` that look like optc's temporary files.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            found.push(name);
        }
        if entry.path().is_dir() {
            found.extend(temporaries(&entry.path()));
        }
    }
    found
}

#[test]
fn bad_output_paths_fail_before_the_first_step() {
    let dir = scratch("paths");
    let missing = dir.join("no/such/folder");
    for flag in ["--save", "--plot", "--log"] {
        let ext = if flag == "--plot" { "png" } else { "csv" };
        let (code, stdout, stderr) = run(&["--steps", "100000", flag, &s(&missing.join(format!("out.{ext}")))]);
        assert_eq!(code, Some(1), "{flag}: {stderr}");
        assert!(stderr.contains("which does not exist") && !stdout.contains("trained"), "{flag}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line naming the path: {stderr}");
    }
    let file = dir.join("ck");
    std::fs::write(&file, "not a folder").expect("write");
    let (code, _, stderr) = run(&["--steps", "5", "--checkpoint", &s(&file)]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("is a file, not a checkpoint folder"), "{stderr}");
}

#[cfg(unix)]
#[test]
fn device_nodes_and_folders_are_refused_and_left_alone() {
    use std::os::unix::fs::FileTypeExt;
    let dir = scratch("devices");
    for (path, what) in [("/dev/full", "a character device"), ("/dev/null", "a character device"), (&*s(&dir), "a folder")] {
        let (code, _, stderr) = run(&["--steps", "3", "--save", path]);
        assert_eq!(code, Some(1), "{path}");
        assert!(stderr.contains(what) && stderr.contains("not a regular file"), "{path}: {stderr}");
    }
    assert!(std::fs::metadata("/dev/null").expect("/dev/null").file_type().is_char_device());
    assert!(std::fs::metadata("/dev/full").expect("/dev/full").file_type().is_char_device());
}

#[cfg(unix)]
#[test]
fn symlinks_are_written_through_and_planted_temporary_names_are_never_followed() {
    let dir = scratch("symlinks");
    let real = dir.join("real");
    std::fs::create_dir_all(&real).expect("folder");
    let link = dir.join("w.safetensors");
    std::os::unix::fs::symlink(real.join("w.safetensors"), &link).expect("symlink");
    std::fs::write(real.join("w.safetensors"), "old").expect("write");
    // Names an attacker might plant beside the target, pointing at a file to overwrite.
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious").expect("write");
    for name in [".w.safetensors.tmp", ".w.safetensors.0000000000000000.tmp", ".plot.svg.tmp"] {
        std::os::unix::fs::symlink(&victim, real.join(name)).expect("symlink");
    }
    let plot = real.join("plot.svg");
    let (code, _, stderr) = run(&["--steps", "3", "--save", &s(&link), "--plot", &s(&plot)]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(std::fs::symlink_metadata(&link).expect("link").file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::read(real.join("w.safetensors")).expect("weights").len() > 100);
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "precious");
    let mut left = temporaries(&real);
    left.sort();
    assert_eq!(left, [".plot.svg.tmp", ".w.safetensors.0000000000000000.tmp", ".w.safetensors.tmp"], "only the planted names");

    let dangling = dir.join("dangling.safetensors");
    std::os::unix::fs::symlink(dir.join("nowhere/w.safetensors"), &dangling).expect("symlink");
    let (code, _, stderr) = run(&["--steps", "3", "--save", &s(&dangling)]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("a symlink to"), "{stderr}");
}

/// Runs `script` in a private mount namespace with a tmpfs of `size` at `dir` (needs root);
/// `None` when this machine cannot.
#[cfg(target_os = "linux")]
fn on_small_disk(dir: &Path, size: &str, script: &str) -> Option<(Option<i32>, String)> {
    let mount = format!("mount -t tmpfs -o size={size} tmpfs '{}' || exit 99; {script}", dir.display());
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &mount])
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .ok()?;
    (out.status.code() != Some(99) && !text(&out.stderr).contains("unshare failed")).then(|| (out.status.code(), text(&out.stderr)))
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_fails_with_the_reason_and_leaves_no_temporary_file() {
    let dir = scratch("full");
    let optc = env!("CARGO_BIN_EXE_optc");
    // About 70 KB of weights and 140 KB per checkpoint, on a 64 KB disk.
    let common = "run examples/plateau.opt --hidden 128,128 --steps 3 --quiet";
    let script = format!(
        "{optc} {common} --save '{d}/w.safetensors'; a=$?; {optc} {common} --checkpoint '{d}/ck' --every 1; b=$?; ls -A '{d}' '{d}/ck' 1>&2; exit $((a * 10 + b))",
        d = dir.display()
    );
    let Some((code, stderr)) = on_small_disk(&dir, "64k", &script) else {
        eprintln!("note: cannot mount a tmpfs here (not root, or no mount namespaces); the full-disk case was not run");
        return;
    };
    assert_eq!(code, Some(11), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(!stderr.contains(".tmp"), "a temporary file was left:\n{stderr}");
}

#[test]
fn damaged_checkpoints_are_passed_over_for_the_newest_intact_one() {
    let dir = scratch("damage");
    let ck = dir.join("ck");
    assert_eq!(run(&["--steps", "40", "--checkpoint", &s(&ck), "--every", "10"]).0, Some(0));
    let params = |step: u32| ck.join(format!("step-{step:08}/params.safetensors"));
    // A flipped byte in the newest; an older step's weights copied into the next; a manifest
    // claiming another step.
    let mut bytes = std::fs::read(params(40)).expect("params");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(params(40), bytes).expect("write");
    std::fs::copy(params(10), params(30)).expect("copy");
    let manifest = ck.join("step-00000020/manifest.json");
    let text = std::fs::read_to_string(&manifest).expect("manifest").replace("\"step\": 20", "\"step\": 999999");
    std::fs::write(&manifest, text).expect("write");
    let (code, _, stderr) = run(&["--steps", "50", "--resume", &s(&ck)]);
    assert_eq!(code, Some(0), "{stderr}");
    let params = "`params.safetensors` does not match the checksum in its manifest";
    for (step, why) in [(40, params), (30, params), (20, "`manifest.json` does not match its checksum")] {
        assert!(stderr.contains(&format!("step-{step:08}` is damaged ({why}")), "step {step}: {stderr}");
    }
    assert!(stderr.contains("resuming from") && stderr.contains("step-00000010` at step 10"), "{stderr}");
    // Nothing intact at all.
    std::fs::write(ck.join("step-00000010/optimizer.state"), "junk").expect("write");
    for step in [50, 40, 30, 20] {
        let _ = std::fs::remove_dir_all(ck.join(format!("step-{step:08}")));
    }
    let (code, _, stderr) = run(&["--steps", "60", "--resume", &s(&ck)]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("holds no intact checkpoint"), "{stderr}");
}

#[test]
fn checkpoints_of_other_hyperparameters_split_or_data_are_refused() {
    let dir = scratch("foreign");
    let ck = s(&dir.join("ck"));
    let csv = dir.join("data.csv");
    let rows = |k: usize| -> String { (0..40).map(|i| format!("{},{},{}\n", i as f32 / 40.0, (i * k % 7) as f32, i % 2)).collect() };
    std::fs::write(&csv, format!("a,b,y\n{}", rows(1))).expect("write");
    let adam = dir.join("adam.opt");
    std::fs::write(&adam, "adam(learning_rate=1e-3)\n").expect("write");
    let base = |pipeline: &Path, extra: &[&str]| {
        let (p, c) = (s(pipeline), s(&csv));
        let mut args = vec!["run", &*p, "--data", &*c, "--target", "y", "--quiet", "--checkpoint", &*ck, "--every", "5"];
        args.extend_from_slice(extra);
        let out = optc(&args, None);
        assert_no_panic(&out);
        (out.status.code(), text(&out.stderr))
    };
    assert_eq!(base(&adam, &["--steps", "5"]).0, Some(0));
    let other = dir.join("other.opt");
    for (pipeline, why) in [("adam(learning_rate=10.0, b1=0.0)\n", "another pipeline"), ("adamw(learning_rate=1e-3)\n", "another pipeline")] {
        std::fs::write(&other, pipeline).expect("write");
        let (code, stderr) = base(&other, &["--steps", "10", "--resume", &ck]);
        assert_eq!(code, Some(1), "{pipeline}");
        assert!(stderr.contains(why), "{pipeline}: {stderr}");
    }
    let (code, stderr) = base(&adam, &["--steps", "10", "--resume", &ck, "--val-fraction", "0.3"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("its val_fraction is 0.2"), "{stderr}");
    std::fs::write(&csv, format!("a,b,y\n{}", rows(3))).expect("write");
    let (code, stderr) = base(&adam, &["--steps", "10", "--resume", &ck]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("its data_checksum is"), "{stderr}");
    // Another spelling of the same step (defaults written out, float32 named) is the same
    // pipeline, and resumes.
    std::fs::write(&csv, format!("a,b,y\n{}", rows(1))).expect("write");
    std::fs::write(&other, "adam(learning_rate=0.001, b1=0.9, mu_dtype=\"float32\")\n").expect("write");
    let (code, stderr) = base(&other, &["--steps", "10", "--resume", &ck]);
    assert_eq!(code, Some(0), "{stderr}");
}

/// Starts a long run, sends `signals` once it has taken a few hundred steps, and returns
/// its exit code and stderr.
#[cfg(unix)]
fn interrupted(args: &[String], signals: &[&str]) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_optc"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("optc runs");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    // Progress lines come every tenth of the run; the signal lands somewhere after the first.
    while stderr.read_line(&mut seen).map(|n| n > 0).unwrap_or(false) && !seen.contains("step ") {}
    for signal in signals {
        let _ = Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
    }
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    let status = child.wait().expect("optc ends");
    (status.code(), seen + &rest)
}

/// The steps of a JSON-lines log, each line parsed whole.
fn logged_steps(path: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(path).expect("log");
    assert!(text.ends_with('\n'), "the log ends mid-line");
    text.lines()
        .map(|line| {
            let fixed = line.replace("-Infinity", "null").replace("Infinity", "null").replace("NaN", "null");
            let row: serde_json::Value = serde_json::from_str(&fixed).unwrap_or_else(|e| panic!("{e}: {line}"));
            row["step"].as_f64().expect("a step") as u64
        })
        .collect()
}

#[cfg(unix)]
#[test]
fn an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one() {
    let dir = scratch("interrupt");
    let steps = "4000";
    let common = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["run", "examples/plateau.opt", "--data", "moons", "--batch-size", "16", "--hidden", "8", "--value", "val_loss"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let straight = dir.join("straight.safetensors");
    let out = optc(&common(&["--steps", steps, "--quiet", "--save", &s(&straight), "--eval-every", "7"]).iter().map(String::as_str).collect::<Vec<_>>(), None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let (ck, log, plot, resumed) = (dir.join(format!("ck-{signal}")), dir.join(format!("{signal}.jsonl")), dir.join(format!("{signal}.svg")), dir.join(format!("{signal}.safetensors")));
        let unfinished = dir.join(format!("{signal}-unfinished.safetensors"));
        let args = common(&["--steps", steps, "--checkpoint", &s(&ck), "--every", "500", "--log", &s(&log), "--plot", &s(&plot), "--eval-every", "7", "--save", &s(&unfinished)]);
        let (status, stderr) = interrupted(&args, &[signal]);
        if status == Some(0) {
            eprintln!("note: the run ended before SIGTERM arrived; nothing to resume");
            continue;
        }
        assert_eq!(status, Some(code), "{stderr}");
        assert!(stderr.contains("interrupted by") && stderr.contains("resume with `--resume"), "{stderr}");
        assert!(stderr.contains("not saved to `--save`") && !unfinished.exists(), "an unfinished run's weights are not `--save`d: {stderr}");
        let stopped = logged_steps(&log);
        assert_eq!(stopped, (1..=stopped.len() as u64).collect::<Vec<_>>(), "every step once");
        assert!(stderr.contains(&format!("at step {}; checkpoint", stopped.len())), "{stderr}");
        assert!(std::fs::read_to_string(&plot).expect("plot").contains("training loss"));
        let out = optc(&common(&["--steps", steps, "--quiet", "--resume", &s(&ck), "--log", &s(&log), "--save", &s(&resumed), "--eval-every", "7"]).iter().map(String::as_str).collect::<Vec<_>>(), None);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(logged_steps(&log), (1..=4000).collect::<Vec<_>>(), "every step exactly once after resuming");
        assert!(std::fs::read(&resumed).ok() == std::fs::read(&straight).ok(), "{signal}: resumed weights differ");
        assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
    }
}

#[cfg(unix)]
#[test]
fn a_second_signal_exits_at_once_and_leaves_no_half_written_file() {
    let dir = scratch("twice");
    let log = dir.join("run.jsonl");
    let args: Vec<String> = ["run", "examples/plateau.opt", "--hidden", "256,256", "--steps", "20000", "--checkpoint", &s(&dir.join("ck")), "--every", "50", "--log", &s(&log)]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (status, stderr) = interrupted(&args, &["INT", "INT"]);
    assert!(matches!(status, Some(130)), "{status:?}: {stderr}");
    let steps = logged_steps(&log);
    assert_eq!(steps, (1..=steps.len() as u64).collect::<Vec<_>>());
    assert!(temporaries(&dir).is_empty(), "{:?}", temporaries(&dir));
}
