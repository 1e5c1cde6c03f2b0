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


def tolerance(expected):
    finite = [abs(v) for step in expected for vs in step.values() for v in vs if isinstance(v, float)]
    atol = 1e-6 * max(finite + [1.0])
    k = math.floor(math.log10(atol))
    for m in (1, 2, 5, 10):
        if m * 10.0 ** k >= atol:
            return {"rtol": 2e-06, "atol": float(f"{m}e{k}")}


def make(name, pipeline, expression, n_steps, injections, rng):
    params = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in SHAPES.items()}
    grads = []
    for t in range(n_steps):
        g = {k: np.asarray(rng.normal(scale=0.1, size=s), np.float32) for k, s in SHAPES.items()}
        for step, leaf, index, value in injections:
            if step == t:
                g[leaf].reshape(-1)[index] = value
        grads.append({k: jnp.asarray(v) for k, v in g.items()})
    tx = eval(expression, {"optax": optax})
    state = tx.init(params)
    p = params
    expected = []
    for g in grads:
        updates, state = tx.update(g, state, p)
        p = optax.apply_updates(p, updates)
        expected.append(leaves(p))
    case = {
        "name": name,
        "pipeline": pipeline,
        "optax": expression,
        "needs_value": False,
        "params": {k: {"shape": list(SHAPES[k]), "data": leaves(params)[k]} for k in sorted(SHAPES)},
        "steps": [{"grads": leaves(g)} for g in grads],
        "expected": expected,
        "tolerance": tolerance(expected),
    }
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        json.dump(case, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    assert optax.__version__ == "0.2.8", optax.__version__
    for name, spec in sorted(CASES.items()):
        make(name, *spec, np.random.default_rng(zlib.crc32(name.encode())))
        print(name)
