"""Through Python, the same numbers as Rust: every example and a sample of the conformance cases
stepped through the Python API equal the Rust runtime's steps bit for bit (references written
by tests/integration/python.rs), and every conformance case replayed through the Python API
passes or fails as `optc conform` says it does."""

import json

import numpy as np
import pytest

import optc
from conftest import CONFORMANCE, floats, load_reference, references, run_optc, same_bits

REFERENCES = references()


def test_references_were_written():
    if not REFERENCES:
        pytest.skip("no references: run the suite through `cargo test --release` (OPTC_REFERENCES)")
    assert len(REFERENCES) >= 30
    assert any(p.name.startswith("example_") for p in REFERENCES)


def leaves(tree: dict, layout) -> dict:
    return {name: floats(tree[name]).reshape(shape).copy() for name, shape in layout}


@pytest.mark.parametrize("path", REFERENCES, ids=[p.stem for p in REFERENCES])
@pytest.mark.parametrize("mode", ["step", "updates"])
def test_python_steps_equal_the_rust_runtimes(path, mode):
    ref = load_reference(path)
    layout = ref["layout"]
    params = leaves(ref["params"], layout)
    opt = optc.compile(ref["pipeline"]).init(params, separate_updates=mode == "updates")
    for t, (step, expected) in enumerate(zip(ref["steps"], ref["expected"])):
        grads = leaves(step["grads"], layout)
        value = None if step["value"] is None else float(floats([step["value"]])[0])
        if mode == "step":
            opt.step(params, grads, value)
        else:
            ups = opt.updates(params, grads, value)
            for name in params:
                params[name] += ups[name]
        for name, shape in layout:
            assert same_bits(params[name], floats(expected[name]).reshape(shape)), f"step {t}, {name}"
    hyper = opt.hyperparams
    for name, (kind, bits) in ref["uniforms"].items():
        got = hyper[name]
        if kind == "f32":
            assert same_bits(np.float32(got), floats([bits])[0]), name
        else:
            assert got == bits and type(got) is (int if kind == "i32" else bool), name


def number(v):
    return np.float32({"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}.get(v, v) if isinstance(v, str) else v)


def replay(case: dict) -> bool:
    """Replays a conformance case through the Python API; whether it passes by the case's
    tolerance (None if optc cannot run it)."""
    shapes = {name: leaf["shape"] for name, leaf in case["params"].items()}
    tree = lambda t: {n: np.array([number(x) for x in (t[n]["data"] if isinstance(t[n], dict) else t[n])], np.float32).reshape(s) for n, s in shapes.items()}
    params = tree(case["params"])
    try:
        opt = optc.compile(case["pipeline"]).init(params)
    except (optc.CompileError, ValueError):
        return None
    rtol, atol = case["tolerance"]["rtol"], case["tolerance"]["atol"]
    for step, expected in zip(case["steps"], case["expected"]):
        value = step.get("value")
        opt.step(params, tree(step["grads"]), None if value is None else float(number(value)))
        for name, want in tree(expected).items():
            got = params[name]
            finite = np.isfinite(want)
            ok = np.where(finite, np.abs(got - want) <= atol + rtol * np.abs(want), (got == want) | (np.isnan(got) & np.isnan(want)))
            if not ok.all():
                return False
    return True


def test_conformance_cases_pass_through_python_as_optc_conform_says(optc_bin):
    out = run_optc(optc_bin, "conform", str(CONFORMANCE))
    verdicts = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in ("pass", "FAIL"):
            verdicts[parts[0]] = parts[1] == "pass"
    assert len(verdicts) >= 248, out.stdout[-500:]
    python = {}
    for path in sorted(CONFORMANCE.glob("*.json")):
        case = json.loads(path.read_text())
        result = replay(case)
        python[case["name"]] = bool(result)
    disagree = sorted(n for n in verdicts if python.get(n) != verdicts[n])
    assert not disagree, f"Python and `optc conform` disagree on {disagree}"
    assert sum(python.values()) == sum(verdicts.values())
