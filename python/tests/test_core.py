"""The core API over numpy: compile, inspect, init, step in place, read the hyperparameters,
keep and restore the state; and every misuse raising an error that names the leaf, with
nothing changed."""

import copy
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

import optc
from conftest import EXAMPLES, ROOT, run_optc, same_bits

ADAM = "adam(learning_rate=0.1)"


def model(seed=0):
    """A small model's parameters, nested as Flax would nest them."""
    rng = np.random.default_rng(seed)
    return {
        "layers": {
            "0": {"weight": rng.standard_normal((4, 3), np.float32), "bias": rng.standard_normal(4, np.float32)},
            "1": {"weight": rng.standard_normal((2, 4), np.float32), "bias": rng.standard_normal(2, np.float32)},
        },
        "scale": np.array(1.5, np.float32),
    }


def flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat(v, name + "."))
        else:
            out[name] = v
    return out


def grads_for(params, seed=1):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in flat(params).items()}


# --- compile ---------------------------------------------------------------------------------


def test_compile_takes_a_path_a_pathlike_or_the_text():
    by_str = optc.compile("examples/plateau.opt") if Path("examples/plateau.opt").exists() else None
    by_path = optc.compile(EXAMPLES / "plateau.opt")
    by_text = optc.compile((EXAMPLES / "plateau.opt").read_text())
    assert by_path.name.endswith("plateau.opt")
    assert by_text.name == "<string>"
    assert by_path.resolved == by_text.resolved
    if by_str is not None:
        assert by_str.resolved == by_path.resolved
    with pytest.raises(FileNotFoundError, match="nope.opt"):
        optc.compile("nope.opt")
    with pytest.raises(TypeError, match="path of a .opt file"):
        optc.compile(3)


def test_a_standard_library_can_come_from_a_folder(tmp_path):
    assert optc.compile("adam(learning_rate=1e-3)", stdlib=ROOT / "stdlib").needs_value is False
    with pytest.raises(OSError, match="standard library"):
        optc.compile("adam(learning_rate=1e-3)", stdlib=tmp_path / "none")


def test_a_pipeline_says_what_optc_check_says(optc_bin):
    path = EXAMPLES / "plateau.opt"
    pipeline = optc.compile(path)
    out = run_optc(optc_bin, "check", str(path))
    assert out.returncode == 0
    assert str(pipeline) == out.stdout
    assert pipeline.resolved.splitlines()[0] == "chain"
    assert "reduce_on_plateau(factor=0.5" in pipeline.resolved
    assert pipeline.needs_value and not pipeline.reads_params
    assert pipeline.state["element"] == ["adam.scale_by_adam.mu", "adam.scale_by_adam.nu"]
    assert "reduce_on_plateau.scale" in pipeline.state["uniform"]
    assert pipeline.state["leaf"] == []
    assert optc.compile("adamw(learning_rate=1e-3)").reads_params


def test_a_compile_error_is_what_optc_check_prints(optc_bin, tmp_path):
    path = tmp_path / "bad.opt"
    path.write_text("chain(\n    adam(lr=1e-3, b1=1.5),\n    reduce_on_plateau(patience=10),\n)\n")
    with pytest.raises(optc.CompileError) as caught:
        optc.compile(path)
    out = run_optc(optc_bin, "check", str(path))
    assert out.returncode != 0
    assert str(caught.value) == out.stderr.rstrip("\n")
    assert isinstance(caught.value, ValueError)
    codes = [(d.code, d.severity, d.line, d.column) for d in caught.value.diagnostics]
    assert codes == [("unknown-keyword", "error", 2, 10), ("out-of-range", "error", 2, 19)]
    first = caught.value.diagnostics[0]
    assert first.file == str(path) and "learning_rate" in " ".join(first.help)
    assert "has no parameter `lr`" in first.message


# --- stepping --------------------------------------------------------------------------------


def test_steps_update_the_arrays_in_place_as_the_flat_runtime_does():
    params = model()
    before = {k: v.copy() for k, v in flat(params).items()}
    views = flat(params)
    opt = optc.compile(ADAM).init(params)
    assert opt.leaves == [("layers.0.bias", [4]), ("layers.0.weight", [4, 3]), ("layers.1.bias", [2]), ("layers.1.weight", [2, 4]), ("scale", [])]
    g = grads_for(params)
    opt.step(params, g)
    after = flat(params)
    for k in before:
        assert after[k] is views[k], "the same arrays"
        # Adam's first step moves every element by the learning rate against its gradient's sign.
        np.testing.assert_allclose(after[k], before[k] - 0.1 * np.sign(g[k]), rtol=1e-5, atol=1e-6)
    assert opt.steps == 1
    assert opt.hyperparams["scale_by_adam.count"] == 1


def test_the_interpreter_threads_and_updates_apart_agree_bit_for_bit():
    runs = {}
    for name, kwargs in {"jit": {}, "interp": {"backend": "interp"}, "two": {"threads": 2}, "apart": {"separate_updates": True}}.items():
        params = model()
        opt = optc.compile("chain(clip_by_global_norm(max_norm=0.5), adamw(learning_rate=0.01, weight_decay=0.1))").init(params, **kwargs)
        for t in range(4):
            g = grads_for(params, seed=t)
            if name == "apart":
                ups = opt.updates(params, g)
                for k, v in flat(params).items():
                    v += ups[k]
            else:
                opt.step(params, g, threads=1 if t == 0 else None)
        runs[name] = flat(params)
    for name, params in runs.items():
        for k, v in params.items():
            assert same_bits(v, runs["jit"][k]), f"{name}: {k}"


def test_a_thread_count_below_one_is_refused_everywhere():
    params = model()
    pipeline = optc.compile("sgd(learning_rate=0.1)")
    for bad in [0, -1]:
        with pytest.raises(ValueError, match="threads must be at least 1"):
            pipeline.init(params, threads=bad)
    opt = pipeline.init(params, threads=1)
    for bad in [0, -1]:
        with pytest.raises(ValueError, match="threads must be at least 1"):
            opt.step(params, grads_for(params, seed=0), threads=bad)
        with pytest.raises(ValueError, match="threads must be at least 1"):
            opt.threads = bad
    assert opt.threads == 1


def test_hyperparams_name_the_learning_rate_counters_and_plateau_scale():
    params = model()
    opt = optc.compile(EXAMPLES / "plateau.opt").init(params)
    for t in range(15):
        opt.step(params, grads_for(params, seed=t), value=1.0)
    h = opt.hyperparams
    assert h["adam.scale_by_adam.count"] == 15
    assert h["reduce_on_plateau.scale"] == 0.5, "a constant loss is a plateau"
    assert opt.learning_rate == pytest.approx(0.0005)
    assert isinstance(h["reduce_on_plateau.plateau_count"], int)


def test_eval_params_are_the_weights_to_evaluate_with():
    # An EMA of the parameters with decay 0.5 after SGD steps of 1 against a gradient of ones.
    params = {"w": np.array([1.0, 2.0], dtype=np.float32)}
    opt = optc.compile("chain(ema_params(decay=0.5), sgd(learning_rate=1.0))").init(params)
    assert opt.has_eval_params
    ones = {"w": np.ones(2, dtype=np.float32)}
    opt.step(params, ones)
    opt.step(params, ones)
    weights = opt.eval_params(params)
    np.testing.assert_array_equal(weights["w"], [-0.25, 0.75])
    np.testing.assert_array_equal(params["w"], [-1.0, 0.0]), "the parameters are not touched"
    # A pipeline without evaluation weights gives copies of the parameters.
    plain = optc.compile("sgd(learning_rate=1.0)").init(params)
    assert not plain.has_eval_params
    copies = plain.eval_params(params)
    np.testing.assert_array_equal(copies["w"], params["w"])
    assert copies["w"] is not params["w"]
    with pytest.raises(ValueError, match="w"):
        opt.eval_params({"w": np.zeros(3, dtype=np.float32)})


def test_held_leaves_keep_their_values_and_state():
    params = model()
    opt = optc.compile(ADAM).init(params)
    g = grads_for(params)
    opt.step(params, g)
    bias = params["layers"]["0"]["bias"].copy()
    mu = opt.state_dict()["state"]["scale_by_adam.mu"]["layers.0.bias"].copy()
    g.pop("layers.0.bias")
    opt.step(params, g, hold=["layers.0.bias"])
    assert same_bits(params["layers"]["0"]["bias"], bias)
    assert same_bits(opt.state_dict()["state"]["scale_by_adam.mu"]["layers.0.bias"], mu)
    with pytest.raises(ValueError, match="not a leaf"):
        opt.step(params, grads_for(params), hold=["nope"])


# --- bad input -------------------------------------------------------------------------------


def bad_inputs():
    """(what, make the step's arguments, the error, what its message says)."""

    def with_grad(name, value):
        def make(params, grads):
            grads = dict(grads)
            grads[name] = value(grads[name])
            return params, grads, {}
        return make

    def with_param(name, value):
        def make(params, grads):
            p = flat(params)
            p[name] = value(p[name])
            return p, grads, {}
        return make

    return [
        ("float64 grads", with_grad("layers.0.weight", lambda g: g.astype(np.float64)), TypeError, "float64"),
        ("a list", with_grad("layers.0.bias", lambda g: g.tolist()), TypeError, "list"),
        ("a torch-like object", with_grad("scale", lambda g: object()), TypeError, "object"),
        ("a wrong shape", with_grad("layers.0.weight", lambda g: g.reshape(3, 4)), ValueError, r"shape \(3, 4\); expected \(4, 3\)"),
        ("a transposed view", with_grad("layers.1.weight", lambda g: np.ascontiguousarray(g.T).T), ValueError, "C-contiguous"),
        ("a strided param", with_param("layers.0.bias", lambda p: np.zeros(8, np.float32)[::2]), ValueError, "C-contiguous"),
        ("a read-only param", with_param("layers.0.bias", lambda p: np.frombuffer(p.tobytes(), np.float32)), ValueError, "read-only"),
        ("a missing leaf", lambda p, g: (p, {k: v for k, v in g.items() if k != "scale"}, {}), ValueError, "no leaf 'scale'"),
        ("an extra leaf", lambda p, g: (p, {**g, "extra": np.zeros(1, np.float32)}, {}), ValueError, "'extra'.* not a leaf"),
        ("a value given", lambda p, g: (p, g, {"value": 1.0}), TypeError, "does not read a value"),
        ("not a mapping", lambda p, g: (p, list(g.values()), {}), TypeError, "must map leaf names"),
        ("grads that are the params", lambda p, g: (p, flat(p), {}), ValueError, "shares memory"),
    ]


@pytest.mark.parametrize("what,make,error,message", bad_inputs(), ids=[b[0] for b in bad_inputs()])
def test_every_bad_input_names_the_leaf_and_changes_nothing(what, make, error, message):
    params = model()
    opt = optc.compile(ADAM).init(params)
    opt.step(params, grads_for(params))
    before = copy.deepcopy(flat(params))
    state = opt.state_dict()
    p, g, kwargs = make(params, grads_for(params, seed=5))
    with pytest.raises(error, match=message):
        opt.step(p, g, **kwargs)
    for k, v in flat(params).items():
        assert same_bits(v, before[k]), k
    assert pickle.dumps(opt.state_dict()) == pickle.dumps(state)
    assert opt.steps == 1


def test_a_value_is_required_exactly_when_the_pipeline_reads_it():
    params = model()
    opt = optc.compile(EXAMPLES / "plateau.opt").init(params)
    with pytest.raises(TypeError, match="pass value=loss"):
        opt.step(params, grads_for(params))
    with pytest.raises(TypeError, match="a number"):
        opt.step(params, grads_for(params), value="loss")
    opt.step(params, grads_for(params), value=np.float32(0.5))
    assert opt.steps == 1


def test_init_refuses_what_it_cannot_step():
    with pytest.raises(TypeError, match="float64"):
        optc.compile(ADAM).init({"w": np.zeros(3)})
    with pytest.raises(ValueError, match="no leaves"):
        optc.compile(ADAM).init({})
    with pytest.raises(ValueError, match="backend"):
        optc.compile(ADAM).init({"w": np.zeros(3, np.float32)}, backend="gpu")
    # A leaf no partition arm takes is the pipeline's error, with optc's message.
    with pytest.raises(optc.CompileError, match="bias"):
        optc.compile('partition { "*.weight" => sgd(learning_rate=0.1) }').init({"a.weight": np.zeros(2, np.float32), "a.bias": np.zeros(2, np.float32)})
    with pytest.warns(UserWarning, match="matches no leaf"):
        optc.compile('masked(sgd(learning_rate=0.1), mask="*.nothing")').init({"w": np.zeros(2, np.float32)})


# --- state -----------------------------------------------------------------------------------


def run(opt, params, steps, start=0, value=None):
    for t in range(start, start + steps):
        kwargs = {} if value is None else {"value": value(t)}
        opt.step(params, grads_for(params, seed=t), **kwargs)


def test_a_state_dict_survives_pickle_and_continues_bit_for_bit():
    pipeline = optc.compile(EXAMPLES / "plateau.opt")
    loss = lambda t: 1.0 / (1 + t % 4)
    straight, params = None, model()
    straight = pipeline.init(params)
    run(straight, params, 12, value=loss)

    resumed_params = model()
    first = pipeline.init(resumed_params)
    run(first, resumed_params, 5, value=loss)
    saved = pickle.loads(pickle.dumps(first.state_dict()))
    assert saved["steps"] == 5 and saved["format"] == "optc-state"
    assert isinstance(saved["state"]["adam.scale_by_adam.mu"]["layers.0.weight"], np.ndarray)
    assert saved["state"]["adam.scale_by_adam.mu"]["layers.0.weight"].shape == (4, 3)
    second = pipeline.init(model(seed=9))
    second.load_state_dict(saved)
    assert second.steps == 5
    run(second, resumed_params, 7, start=5, value=loss)
    for k, v in flat(params).items():
        assert same_bits(v, flat(resumed_params)[k]), k


def test_state_kept_reduced_over_axes_has_size_one_there_and_round_trips():
    # Adafactor keeps a row and a column statistic per factored matrix (numpy's keepdims).
    pipeline = optc.compile("adafactor(learning_rate=0.01, min_dim_size_to_factor=2)")
    straight, params = None, model()
    straight = pipeline.init(params)
    run(straight, params, 6)
    resumed_params = model()
    first = pipeline.init(resumed_params)
    run(first, resumed_params, 3)
    saved = pickle.loads(pickle.dumps(first.state_dict()))
    rows = saved["state"]["scale_by_factored_rms.v_row"]["layers.0.weight"]
    cols = saved["state"]["scale_by_factored_rms.v_col"]["layers.0.weight"]
    # (4, 3): the largest axis is 0, so v_row is the mean over it.
    assert rows.shape == (1, 3) and cols.shape == (4, 1), (rows.shape, cols.shape)
    second = pipeline.init(model(seed=9))
    second.load_state_dict(saved)
    run(second, resumed_params, 3, start=3)
    for k, v in flat(params).items():
        assert same_bits(v, flat(resumed_params)[k]), k
    wrong = copy.deepcopy(saved)
    wrong["state"]["scale_by_factored_rms.v_row"]["layers.0.weight"] = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="shape"):
        second.load_state_dict(wrong)


def test_another_pipelines_or_layouts_state_is_refused_with_the_reason():
    params = model()
    adam = optc.compile("adam(learning_rate=1e-3)").init(params)
    run(adam, params, 2)
    saved = adam.state_dict()
    for other in ["adamw(learning_rate=1e-3)", "adam(learning_rate=10.0, b1=0.0)"]:
        opt = optc.compile(other).init(model())
        before = pickle.dumps(opt.state_dict())
        with pytest.raises(ValueError, match="another pipeline"):
            opt.load_state_dict(saved)
        assert pickle.dumps(opt.state_dict()) == before
    # Another spelling of the same step shares its state.
    same = optc.compile('adam(learning_rate=0.001, b1=0.9, mu_dtype="float32")').init(model())
    same.load_state_dict(saved)
    assert same.state_dict()["steps"] == 2
    smaller = {"w": np.zeros(3, np.float32)}
    with pytest.raises(ValueError, match="another parameter layout"):
        optc.compile("adam(learning_rate=1e-3)").init(smaller).load_state_dict(saved)
    tampered = copy.deepcopy(saved)
    tampered["state"]["scale_by_adam.mu"]["scale"] = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="shape"):
        optc.compile("adam(learning_rate=1e-3)").init(model()).load_state_dict(tampered)
    with pytest.raises(ValueError, match="not an optc state dict"):
        adam.load_state_dict({"state": {}})


def test_save_and_load_use_optc_runs_state_files(optc_bin, tmp_path):
    # A checkpoint made by `optc run`, loaded into an optimizer of the same model's leaves.
    out = run_optc(optc_bin, "run", str(EXAMPLES / "plateau.opt"), "--steps", "7", "--checkpoint", str(tmp_path / "ck"))
    assert out.returncode == 0, out.stderr
    state = next((tmp_path / "ck").rglob("optimizer.state"))
    params = read_safetensors(next((tmp_path / "ck").rglob("params.safetensors")))
    opt = optc.compile(EXAMPLES / "plateau.opt").init(params)
    opt.load(state)
    assert opt.steps == 7
    opt.step(params, grads_for(params), value=0.5)
    opt.save(tmp_path / "mine.state")
    again = optc.compile(EXAMPLES / "plateau.opt").init(params)
    again.load(tmp_path / "mine.state")
    assert again.steps == 8
    with pytest.raises(ValueError, match="another pipeline"):
        optc.compile("adam(learning_rate=1e-3)").init(params).load(state)
    with pytest.raises(OSError):
        opt.load(tmp_path / "missing.state")


def read_safetensors(path: Path) -> dict:
    """A safetensors file of float32 tensors (the format is an 8-byte header size, a JSON
    header, then the data)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a : 8 + n + b], np.float32).reshape(t["shape"]).copy()
    return out


def test_the_package_is_typed():
    package = Path(optc.__file__).parent
    assert (package / "py.typed").exists()
    assert (package / "_optc.pyi").exists()
    assert ROOT.exists()
