"""Makes the project's own reference cases, in the format of ../shared/conformance/README.md,
with the real Optax. Run it with optax 0.2.8 and jax installed:

    python3 -m venv /tmp/optax && /tmp/optax/bin/pip install optax==0.2.8 jax==0.10.2 jaxlib==0.10.2
    /tmp/optax/bin/python tests/conformance/make_cases.py

The cases inject NaN and infinity into the gradients of pipelines whose Optax source decides
what a non-finite value does (MultiSteps multiplies by `emit`, so a NaN is never zeroed), and
check that `inject_hyperparams` gives a state initialiser its hyperparameters' values.
"""

import json
import math
import os
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {"layer1.bias": (4,), "layer1.weight": (3, 4)}

# name -> (DSL pipeline, Optax expression, steps, injections [(step, leaf, index, value)])
CASES = {
    "multi_steps_nan_on_a_mini_step": (
        "multi_steps(adam(learning_rate=0.01), every_k_schedule=2)",
        "optax.MultiSteps(optax.adam(learning_rate=0.01), every_k_schedule=2)",
        6, [(2, "layer1.weight", 5, float("nan"))]),
    "multi_steps_inf_on_an_emitting_step": (
        "multi_steps(sgd(learning_rate=0.1), every_k_schedule=3, use_grad_mean=False)",
        "optax.MultiSteps(optax.sgd(learning_rate=0.1), every_k_schedule=3, use_grad_mean=False)",
        7, [(2, "layer1.bias", 1, float("inf"))]),
    "multi_steps_nan_through_a_global_norm": (
        "multi_steps(chain(clip_by_global_norm(max_norm=1.0), sgd(learning_rate=0.1)), every_k_schedule=2)",
        "optax.MultiSteps(optax.chain(optax.clip_by_global_norm(max_norm=1.0), optax.sgd(learning_rate=0.1)), every_k_schedule=2)",
        5, [(2, "layer1.bias", 0, float("nan"))]),
    "multi_steps_neg_inf_first_step": (
        "multi_steps(adam(learning_rate=0.01), every_k_schedule=3)",
        "optax.MultiSteps(optax.adam(learning_rate=0.01), every_k_schedule=3)",
        5, [(0, "layer1.weight", 0, float("-inf"))]),
    "inject_rmsprop_initial_scale": (
        "inject_hyperparams(rmsprop)(learning_rate=0.01, initial_scale=0.5)",
        "optax.inject_hyperparams(optax.rmsprop)(learning_rate=0.01, initial_scale=0.5)",
        4, []),
    "inject_adagrad_schedule": (
        "inject_hyperparams(adagrad)(learning_rate=linear_schedule(init_value=0.1, end_value=0.01, transition_steps=3))",
        "optax.inject_hyperparams(optax.adagrad)(learning_rate=optax.linear_schedule(init_value=0.1, end_value=0.01, transition_steps=3))",
        4, []),
    "multi_steps_skip_inf": (
        "multi_steps(adam(learning_rate=0.01), every_k_schedule=2, should_skip_update_fn=skip_not_finite)",
        "optax.MultiSteps(optax.adam(learning_rate=0.01), every_k_schedule=2, should_skip_update_fn=optax.skip_not_finite)",
        6, [(1, "layer1.weight", 3, float("inf"))]),
}

# Optax's `mu_dtype="bfloat16"` (and `accumulator_dtype`): the moment is stored in bfloat16.
# name -> (DSL pipeline, Optax expression, the same with its decays as float32 arrays)
#
# JAX computes `b1 * mu` with the Python float `b1` weakly typed, so in bfloat16 (`b1` and the
# product rounded to bfloat16), while optc reads the stored moment exactly as a float32 and
# computes in float32 (what Optax computes when the decays are float32 arrays: the third
# expression). The tolerance of these cases is derived as the README's: 4 x the largest
# difference between the two Optax runs, at least 1e-6 x the largest parameter, rounded up to
# 1, 2 or 5 x 10^k.
def _bf16_case(call, args, decays, dtype="mu_dtype"):
    plain = ", ".join(f"{k}={v}" for k, v in decays.items())
    arrays = ", ".join(f"{k}=jnp.float32({v})" for k, v in decays.items())
    name = call.split(".")[-1]
    return (f'{name}({args}, {plain}, {dtype}="bfloat16")',
            f'{call}({args}, {plain}, {dtype}="bfloat16")',
            f'{call}({args}, {arrays}, {dtype}="bfloat16")')


ADAM_DECAYS = {"b1": 0.9, "b2": 0.999}
BF16_CASES = {
    "adam_mu_bfloat16": _bf16_case("optax.adam", "learning_rate=0.01", ADAM_DECAYS),
    "adamw_mu_bfloat16": _bf16_case("optax.adamw", "learning_rate=0.01, weight_decay=0.1", ADAM_DECAYS),
    "nadam_mu_bfloat16": _bf16_case("optax.nadam", "learning_rate=0.01", ADAM_DECAYS),
    "nadamw_mu_bfloat16": _bf16_case("optax.nadamw", "learning_rate=0.01", ADAM_DECAYS),
    "amsgrad_mu_bfloat16": _bf16_case("optax.amsgrad", "learning_rate=0.01", ADAM_DECAYS),
    "lion_mu_bfloat16": _bf16_case("optax.lion", "learning_rate=0.001", {"b1": 0.9, "b2": 0.99}),
    "optimistic_adam_mu_bfloat16": _bf16_case("optax.optimistic_adam", "learning_rate=0.01", ADAM_DECAYS),
    "optimistic_adam_v2_mu_bfloat16": _bf16_case("optax.optimistic_adam_v2", "learning_rate=0.01", ADAM_DECAYS),
    "adopt_mu_bfloat16": _bf16_case("optax.contrib.adopt", "learning_rate=0.01", {"b1": 0.9, "b2": 0.9999}),
    "ademamix_mu_bfloat16": _bf16_case("optax.contrib.ademamix", "learning_rate=0.01", ADAM_DECAYS),
    "sgd_momentum_accumulator_bfloat16": _bf16_case(
        "optax.sgd", "learning_rate=0.1", {"momentum": 0.9}, dtype="accumulator_dtype"),
    "signum_accumulator_bfloat16": _bf16_case(
        "optax.signum", "learning_rate=0.01",
        {"beta": 0.9}, dtype="accumulator_dtype"),
    "scale_by_adam_mu_bfloat16": (
        'chain(scale_by_adam(mu_dtype="bfloat16"), scale(-0.01))',
        'optax.chain(optax.scale_by_adam(b1=0.9, b2=0.999, mu_dtype="bfloat16"), optax.scale(-0.01))',
        'optax.chain(optax.scale_by_adam(b1=jnp.float32(0.9), b2=jnp.float32(0.999), mu_dtype="bfloat16"), optax.scale(-0.01))'),
}


# Muon on leaves of more than two axes (`weight_dimension_numbers`): each a batch of matrices.
# name -> (DSL pipeline, Optax expression, the leaves' shapes)
MDN = "optax.contrib.MuonDimensionNumbers"
MUON_CASES = {
    "muon_conv_kernels": (
        "muon(learning_rate=0.01, muon_weight_dimension_numbers=[(ndim == 4, MuonDimensionNumbers([0, 1, 2], 3)), (ndim == 2, MuonDimensionNumbers())])",
        f'optax.contrib.muon(learning_rate=0.01, muon_weight_dimension_numbers={{"conv.kernel": {MDN}((0, 1, 2), 3), "dense.bias": None, "dense.kernel": {MDN}()}})',
        {"conv.kernel": (3, 3, 2, 4), "dense.bias": (5,), "dense.kernel": (4, 5)}),
    "muon_stacked_layers": (
        'muon(learning_rate=0.01, adaptive=True, consistent_rms=0.2, muon_weight_dimension_numbers=[("*.w", MuonDimensionNumbers(1, 2))])',
        f'optax.contrib.muon(learning_rate=0.01, adaptive=True, consistent_rms=0.2, muon_weight_dimension_numbers={{"layers.b": None, "layers.w": {MDN}(1, 2)}})',
        {"layers.b": (3, 6), "layers.w": (3, 4, 6)}),
    "scale_by_muon_output_first": (
        'chain(scale_by_muon(preconditioning="aol", nesterov=False, weight_dimension_numbers=MuonDimensionNumbers([1, 2, 3], 0)), scale(-0.01))',
        f'optax.chain(optax.contrib.scale_by_muon(preconditioning="aol", nesterov=False, weight_dimension_numbers=lambda p: jax.tree.map(lambda x: {MDN}((1, 2, 3), 0), p)), optax.scale(-0.01))',
        {"conv.weight": (6, 2, 3, 3)}),
    "scale_by_muon_spectral_batch": (
        'chain(scale_by_muon(preconditioning="spectral", ns_steps=3, weight_dimension_numbers=MuonDimensionNumbers(-2, -1)), scale_by_shape(weight_dimension_numbers=MuonDimensionNumbers(-2, -1)), scale(-0.01))',
        f'optax.chain(optax.contrib.scale_by_muon(preconditioning="spectral", ns_steps=3, weight_dimension_numbers=lambda p: jax.tree.map(lambda x: {MDN}(-2, -1), p)), optax.contrib._muon.scale_by_shape(weight_dimension_numbers=lambda p: jax.tree.map(lambda x: {MDN}(-2, -1), p)), optax.scale(-0.01))',
        {"heads": (2, 5, 4)}),
    "scale_by_muon_schatten_heads": (
        'chain(scale_by_muon(preconditioning="schatten", weight_dimension_numbers=MuonDimensionNumbers(0, [1, 2])), scale(-0.01))',
        f'optax.chain(optax.contrib.scale_by_muon(preconditioning="schatten", weight_dimension_numbers=lambda p: jax.tree.map(lambda x: {MDN}(0, (1, 2)), p)), optax.scale(-0.01))',
        {"attention.query": (8, 2, 3)}),
}


def number(x):
    """A float32 as JSON: a decimal that parses back to it exactly, or a string if not finite."""
    x = float(np.float32(x))
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return x


def leaves(tree):
    return {k: [number(v) for v in np.asarray(tree[k]).reshape(-1)] for k in sorted(tree)}


def tolerance(expected, spread=0.0):
    finite = [abs(v) for step in expected for vs in step.values() for v in vs if isinstance(v, float)]
    atol = max(1e-6 * max(finite + [1.0]), 4 * spread)
    k = math.floor(math.log10(atol))
    for m in (1, 2, 5, 10):
        if m * 10.0 ** k >= atol:
            return {"rtol": 2e-06, "atol": float(f"{m}e{k}")}


def run(expression, params, grads):
    """The params after every step of the Optax transformation `expression`."""
    tx = eval(expression, {"optax": optax, "jnp": jnp, "jax": jax})
    state = tx.init(params)
    p = params
    out = []
    for g in grads:
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
        out.append(leaves(p))
    return out


def make(name, pipeline, expression, n_steps, injections, rng, other=None, shapes=SHAPES):
    params = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()}
    grads = []
    for t in range(n_steps):
        g = {k: np.asarray(rng.normal(scale=0.1, size=s), np.float32) for k, s in shapes.items()}
        for step, leaf, index, value in injections:
            if step == t:
                g[leaf].reshape(-1)[index] = value
        grads.append({k: jnp.asarray(v) for k, v in g.items()})
    expected = run(expression, params, grads)
    # The largest difference from the same pipeline computed another way, if there is one.
    spread = 0.0
    if other is not None:
        again = run(other, params, grads)
        spread = max(abs(a - b) for e, f in zip(expected, again) for k in e for a, b in zip(e[k], f[k]))
    case = {
        "name": name,
        "pipeline": pipeline,
        "optax": expression,
        "needs_value": False,
        "params": {k: {"shape": list(shapes[k]), "data": leaves(params)[k]} for k in sorted(shapes)},
        "steps": [{"grads": leaves(g)} for g in grads],
        "expected": expected,
        "tolerance": tolerance(expected, spread),
    }
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump(case, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    assert optax.__version__ == "0.2.8", optax.__version__
    for name, spec in sorted(CASES.items()):
        make(name, *spec, np.random.default_rng(zlib.crc32(name.encode())))
        print(name)
    for name, (pipeline, expression, other) in sorted(BF16_CASES.items()):
        make(name, pipeline, expression, 20, [], np.random.default_rng(zlib.crc32(name.encode())), other)
        print(name)
    for name, (pipeline, expression, shapes) in sorted(MUON_CASES.items()):
        make(name, pipeline, expression, 6, [], np.random.default_rng(zlib.crc32(name.encode())), shapes=shapes)
        print(name)
