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
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optc as _optc

__all__ = ["OptcState", "transform", "leaf_names"]


@jax.tree_util.register_pytree_node_class
class OptcState:
    """The state of a pipeline, packed into two arrays (a host call pays for every array it
    passes): `f32`, the float32 slots, and `i32`, the int32 slots (bools as 0 or 1) followed by
    the step count. `slots` shows each slot by the name `optc check` gives it (a uniform slot
    as a 0-d array, a per-leaf slot one float per leaf, a per-element slot one float per
    parameter, leaves in name order)."""

    def __init__(self, f32, i32, layout):
        self.f32, self.i32 = f32, i32
        # (name, kind, offset, length, shape) of each slot: static, part of the tree's structure.
        self.layout = layout

    @property
    def slots(self) -> dict[str, Any]:
        out = {}
        for name, kind, at, n, shape in self.layout:
            part = (self.f32 if kind == "f32" else self.i32)[at : at + n].reshape(shape)
            out[name] = part != 0 if kind == "bool" else part
        return out

    @property
    def steps(self):
        return self.i32[-1]

    def tree_flatten(self):
        return (self.f32, self.i32), self.layout

    @classmethod
    def tree_unflatten(cls, layout, children):
        return cls(*children, layout)

    def __repr__(self) -> str:
        return f"OptcState({len(self.layout)} slots)"


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

    def layout_of(opt: _optc.Optimizer):
        return tuple((name, kind, at, n, tuple(shape)) for name, kind, at, n, shape in opt._state_layout())

    def packed_shapes(opt: _optc.Optimizer):
        return tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in opt._state_packed())

    def init_fn(params):
        names, leaves, _ = _flatten(params, "params")
        opt, _ = optimizer_for(names, [tuple(x.shape) for x in leaves])

        def host_init(*arrays):
            params = {n: np.asarray(a) for n, a in zip(names, arrays)}
            return pipeline.init(params, threads=threads, separate_updates=True)._state_packed()

        f32, i32 = jax.pure_callback(host_init, packed_shapes(opt), *leaves)
        return OptcState(f32, i32, layout_of(opt))

    def update_fn(updates, state: OptcState, params=None, **extra_args: Any):
        names, grads, treedef = _flatten(updates, "updates")
        shapes = [tuple(x.shape) for x in grads]
        if params is None and pipeline.reads_params:
            raise ValueError(f"{pipeline.name} reads the parameters (weight decay, for one): pass them, update(grads, state, params)")
        if params is not None and pipeline.reads_params:
            pnames, params_leaves, _ = _flatten(params, "params")
            if pnames != names:
                raise ValueError(f"params and updates have different leaves: {pnames} and {names}")
        value = extra_args.get("value")
        if pipeline.needs_value and value is None:
            raise TypeError(f"{pipeline.name} reads the loss at every step: pass value=loss to update")
        opt, lock = optimizer_for(names, shapes)
        # optc keeps leaves in name order; the tree may hold them in another.
        order = sorted(range(len(names)), key=lambda k: names[k].encode())
        sizes = [int(np.prod(shapes[k], dtype=np.int64)) for k in order]
        flat = lambda leaves: [jnp.ravel(leaves[k]) for k in order]
        # One float array and one int array through the host call: each costs more than a
        # small model's whole step.
        floats = jnp.concatenate(
            flat(grads)
            + (flat(params_leaves) if pipeline.reads_params else [])
            + [state.f32, jnp.reshape(jnp.asarray(value if pipeline.needs_value else 0.0, jnp.float32), (1,))]
        )

        def host_update(floats, ints):
            with lock:
                return opt._step_packed(np.asarray(floats), np.asarray(ints), pipeline.reads_params)

        total = sum(sizes)
        result = (jax.ShapeDtypeStruct((total + state.f32.shape[0],), jnp.float32), jax.ShapeDtypeStruct(state.i32.shape, jnp.int32))
        out, i32 = jax.pure_callback(host_update, result, floats, state.i32)
        pieces = jnp.split(out[:total], np.cumsum(sizes)[:-1]) if len(sizes) > 1 else [out[:total]]
        new_updates = [None] * len(names)
        for k, piece in zip(order, pieces):
            new_updates[k] = piece.reshape(shapes[k])
        return jax.tree_util.tree_unflatten(treedef, new_updates), OptcState(out[total:], i32, state.layout)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
