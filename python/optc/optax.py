"""A `.opt` pipeline as an Optax gradient transformation, for JAX and Flax NNX.

    tx = optc.optax.transform("examples/plateau.opt")
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    ...
    optimizer.update(model, grads, value=loss)   # inside nnx.jit, as with any Optax transform

The transform is an `optax.GradientTransformationExtraArgs`: its state is a pytree of arrays
(`OptcState`), its `update(updates, state, params=None, **extra_args)` takes the loss as
`value=` (and ignores extra arguments it does not read, as Optax's transforms do), and it
composes inside `optax.chain`. Each step is a host call (`jax.pure_callback`) into optc's
compiled code, so it works under `jax.jit` and `nnx.jit` on CPU. Leaves are named by their
paths, joined with dots (`layers.0.kernel`), so `"*.bias"` means what it says.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optc as _optc

__all__ = ["OptcState", "transform", "leaf_names"]


class OptcState(NamedTuple):
    """The state of a pipeline: one array per state slot, named as `optc check` names it
    (a uniform slot is a 0-d array, a per-leaf slot one float per leaf, a per-element slot
    one float per parameter, leaves in name order), and the steps taken."""

    slots: dict[str, jax.Array]
    steps: jax.Array


def _key(k) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _name(path) -> str:
    # A Flax NNX Variable holds its array as the attribute `value`: `layer.kernel` is the
    # parameter whether the tree holds Variables (what `tx.init` gets) or arrays (`update`).
    if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "value":
        path = path[:-1]
    return ".".join(_key(k) for k in path)


def leaf_names(tree) -> list[str]:
    """The names optc gives the leaves of a pytree: their paths, joined with dots."""
    return [_name(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _flatten(tree, what: str):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    names = leaf_names(tree)
    for name, leaf in zip(names, leaves):
        dtype = getattr(leaf, "dtype", None)
        if dtype != jnp.float32:
            raise TypeError(f"{what}[{name!r}] is {dtype}: optc steps float32 arrays")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} has leaves whose paths give the same name: {sorted({n for n in names if names.count(n) > 1})}")
    return names, leaves, treedef


def transform(pipeline, *, stdlib=None, threads: int | None = None) -> optax.GradientTransformationExtraArgs:
    """The Optax transformation of `pipeline`: an `optc.Pipeline`, or a `.opt` path or text
    (compiled here; `stdlib` as in `optc.compile`). `threads` splits a step's passes (default:
    every core)."""
    pipeline = pipeline if isinstance(pipeline, _optc.Pipeline) else _optc.compile(pipeline, stdlib=stdlib)
    # One optimizer per layout, built on zeros: the host calls load their state into it.
    optimizers: dict[tuple, tuple[_optc.Optimizer, threading.Lock]] = {}

    def optimizer_for(names, shapes):
        key = tuple(zip(names, shapes))
        if key not in optimizers:
            zeros = {n: np.zeros(s, np.float32) for n, s in zip(names, shapes)}
            optimizers[key] = (pipeline.init(zeros, threads=threads, separate_updates=True), threading.Lock())
        return optimizers[key]

    def state_shapes(opt: _optc.Optimizer):
        return {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in opt.state_arrays().items()}

    def init_fn(params):
        names, leaves, _ = _flatten(params, "params")
        shapes = [tuple(x.shape) for x in leaves]
        opt, _ = optimizer_for(names, shapes)

        def host_init(*arrays):
            params = {n: np.asarray(a) for n, a in zip(names, arrays)}
            return pipeline.init(params, threads=threads, separate_updates=True).state_arrays()

        slots = jax.pure_callback(host_init, state_shapes(opt), *leaves)
        return OptcState(slots=slots, steps=jnp.zeros((), jnp.int32))

    def update_fn(updates, state: OptcState, params=None, **extra_args: Any):
        names, grads, treedef = _flatten(updates, "updates")
        shapes = [tuple(x.shape) for x in grads]
        if params is None:
            if pipeline.reads_params:
                raise ValueError(f"{pipeline.name} reads the parameters (weight decay, for one): pass them, update(grads, state, params)")
            params_leaves = grads  # not read
        else:
            pnames, params_leaves, _ = _flatten(params, "params")
            if pnames != names:
                raise ValueError(f"params and updates have different leaves: {pnames} and {names}")
        value = extra_args.get("value")
        if pipeline.needs_value and value is None:
            raise TypeError(f"{pipeline.name} reads the loss at every step: pass value=loss to update")
        value = jnp.asarray(value if pipeline.needs_value else 0.0, jnp.float32)
        opt, lock = optimizer_for(names, shapes)

        def host_update(grads, params, slots, steps, value):
            grads = {n: np.asarray(g) for n, g in zip(names, grads)}
            params = {n: np.asarray(p) for n, p in zip(names, params)}
            slots = {k: np.asarray(v) for k, v in slots.items()}
            with lock:
                opt.load_state_arrays(slots, int(steps))
                ups = opt.updates(params, grads, float(value) if pipeline.needs_value else None)
                return [ups[n] for n in names], opt.state_arrays(), np.asarray(steps + 1, np.int32)

        result = (
            [jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes],
            state_shapes(opt),
            jax.ShapeDtypeStruct((), jnp.int32),
        )
        new_updates, slots, steps = jax.pure_callback(host_update, result, grads, params_leaves, state.slots, state.steps, value)
        return jax.tree_util.tree_unflatten(treedef, new_updates), OptcState(slots=slots, steps=steps)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
