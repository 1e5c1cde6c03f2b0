"""A step's cost through Python, against PyTorch's and Optax's Adam, in one run.

    python python/bench.py [--optc target/release/optc] [--json out.json]

For N = 2^10, 2^14, 2^18, 2^22 float32 parameters (one leaf), the median time of one Adam step
(learning rate 1e-3) of:
  - optc through numpy (`optc.Optimizer.step`), and through `optc.torch.Optimizer.step`;
  - the Rust runtime's own step on the same arrays, steps run back to back in Rust with no Python
    between them (`Optimizer._time_steps`), and `optc bench adam.opt --params N` (its own buffers);
  - `torch.optim.Adam(fused=True)` and `torch.optim.Adam(foreach=True)`;
  - `optax.adam` under `jax.jit` (update and apply, donated buffers).
Every framework runs on the same cores (torch's and optc's thread counts are printed). Then the
article's Flax NNX `train_step` under `nnx.jit`, with `optax.chain(adam, reduce_on_plateau)` and
with `optc.optax.transform("examples/plateau.opt")`, against the model's forward and backward
pass alone. Times are medians of interleaved rounds; compare the columns of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# Import the installed package, not the sources beside this script (they lack the extension).
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
SIZES = [2**10, 2**14, 2**18, 2**22]
ROUNDS = 7


def timed(fns: dict, seconds: float = 0.25) -> dict:
    """The median seconds per call of each function, in interleaved rounds. A function that
    returns a number has measured itself: that number is its seconds per call."""
    reps = {}
    for name, fn in fns.items():
        fn()
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < seconds / 4 or calls < 3:
            fn()
            calls += 1
        reps[name] = max(3, int(seconds / ((time.perf_counter() - start) / calls)))
    samples = {name: [] for name in fns}
    for _ in range(ROUNDS):
        for name, fn in fns.items():
            start, own = time.perf_counter(), []
            for _ in range(reps[name]):
                own.append(fn())
            wall = (time.perf_counter() - start) / reps[name]
            samples[name].append(float(np.mean(own)) if isinstance(own[0], float) else wall)
    return {name: float(np.median(s)) for name, s in samples.items()}


def rust_step(optc_bin: str, n: int) -> float:
    """Seconds per step of the Rust runtime, from `optc bench` (all cores, as the others)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "adam.opt"
        path.write_text("adam(learning_rate=1e-3)\n")
        out = subprocess.run([optc_bin, "bench", str(path), "--params", str(n), "--json"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["pipeline_ns_per_param"] * n * 1e-9


def steps(n: int) -> dict:
    import jax
    import jax.numpy as jnp
    import optax
    import torch

    import optc
    import optc.torch

    rng = np.random.default_rng(0)
    w, g = rng.standard_normal(n).astype(np.float32), (1e-3 * rng.standard_normal(n)).astype(np.float32)
    fns = {}

    params, grads = {"w": w.copy()}, {"w": g.copy()}
    numpy_opt = optc.compile("adam(learning_rate=1e-3)").init(params)
    fns["optc (numpy)"] = lambda: numpy_opt.step(params, grads)

    rust_params, rust_grads = {"w": w.copy()}, {"w": g.copy()}
    rust_opt = optc.compile("adam(learning_rate=1e-3)").init(rust_params)
    back_to_back = max(1, 2**20 // n)
    fns["Rust step, same arrays"] = lambda: rust_opt._time_steps(rust_params, rust_grads, back_to_back)

    p = torch.nn.Parameter(torch.from_numpy(w.copy()))
    p.grad = torch.from_numpy(g.copy())
    torch_opt = optc.torch.Optimizer({"w": p}, "adam(learning_rate=1e-3)")
    fns["optc.torch"] = lambda: torch_opt.step()

    for kind in ("fused", "foreach"):
        q = torch.nn.Parameter(torch.from_numpy(w.copy()))
        q.grad = torch.from_numpy(g.copy())
        opt = torch.optim.Adam([q], lr=1e-3, **{kind: True})
        fns[f"torch Adam({kind}=True)"] = opt.step

    tx = optax.adam(1e-3)
    jparams, jgrads = {"w": jnp.asarray(w)}, {"w": jnp.asarray(g)}
    state = [jparams, tx.init(jparams)]

    def update(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    jax_step = jax.jit(update, donate_argnums=(0, 1))

    def optax_step():
        state[0], state[1] = jax_step(state[0], state[1], jgrads)
        jax.block_until_ready(state[0])

    fns["optax.adam (jax.jit)"] = optax_step
    return timed(fns)


def article() -> dict:
    import jax
    import optax
    from flax import nnx

    import optc
    import optc.optax

    sys.path.insert(0, str(ROOT / "examples"))
    import flax_nnx_plateau as ex

    x, y = ex.data(jax.random.key(0))
    fns = {}
    for name, tx in {
        "optax": optax.chain(optax.adam(1e-3), optax.contrib.reduce_on_plateau(patience=10, cooldown=1, factor=0.5, rtol=1e-5)),
        "optc": optc.optax.transform(ROOT / "examples" / "plateau.opt"),
    }.items():
        model = ex.MLP(nnx.Rngs(0))
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

        @nnx.jit
        def train_step(model, optimizer, x, y):
            loss, grads = nnx.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(model)
            optimizer.update(model, grads, value=loss)
            return loss

        fns[f"train_step with {name}"] = (lambda f, m, o: lambda: f(m, o, x, y).block_until_ready())(train_step, model, optimizer)
    model = ex.MLP(nnx.Rngs(0))

    @nnx.jit
    def forward_backward(model, x, y):
        return nnx.value_and_grad(lambda m: ((m(x) - y) ** 2).mean())(model)

    fns["forward and backward alone"] = lambda: jax.block_until_ready(forward_backward(model, x, y))
    return timed(fns, seconds=0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optc", default=str(ROOT / "target" / "release" / "optc"), help="the optc binary (for the Rust step)")
    parser.add_argument("--json", help="also write every number to this file")
    args = parser.parse_args()

    import torch

    import optc

    print(f"optc {optc.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), {os.cpu_count()} cores")
    results = {"sizes": {}, "article": {}}
    header = None
    for n in SIZES:
        times = steps(n)
        times["Rust runtime (optc bench)"] = rust_step(args.optc, n)
        results["sizes"][n] = times
        if header is None:
            header = list(times)
            print("\nµs per Adam step")
            print("| parameters | " + " | ".join(header) + " |")
            print("|---|" + "---|" * len(header))
        print(f"| 2^{n.bit_length() - 1} | " + " | ".join(f"{times[h] * 1e6:.1f}" for h in header) + " |")
    small, mid, big = results["sizes"][SIZES[0]], results["sizes"][2**14], results["sizes"][SIZES[-1]]
    rust = "Rust step, same arrays"
    print(f"\nPython over the Rust step at 2^10: {(small['optc (numpy)'] - small[rust]) * 1e6:.1f} µs (numpy), "
          f"{(small['optc.torch'] - small[rust]) * 1e6:.1f} µs (optc.torch)")
    print(f"optc.torch at 2^14: {mid['torch Adam(fused=True)'] / mid['optc.torch']:.2f}x faster than torch Adam(fused=True)")
    print(f"at 2^22: optc.torch {big['optc.torch'] / big[rust]:.3f}x and optc (numpy) {big['optc (numpy)'] / big[rust]:.3f}x the Rust step on the same arrays; "
          f"that step {big[rust] / big['Rust runtime (optc bench)']:.3f}x optc bench's on its own buffers")
    art = article()
    results["article"] = art
    print("\nThe article's train_step under nnx.jit (ms per step)")
    for name, t in art.items():
        print(f"  {name:32} {t * 1e3:.3f}")
    host = art["train_step with optc"] - art["train_step with optax"]
    fb = art["forward and backward alone"]
    print(f"  optc's host call costs {host * 1e3:.3f} ms more than optax's update; the forward and backward pass {fb * 1e3:.3f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
