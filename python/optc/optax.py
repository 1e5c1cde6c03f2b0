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
    """The state of a pipeline: its slots packed by kind into three arrays (`f32`, `i32`,
    `bool`), and the steps taken. `slots` shows each slot by the name `optc check` gives it (a
    uniform slot as a 0-d array, a per-leaf slot one float per leaf, a per-element slot one
    float per parameter, leaves in name order)."""

    def __init__(self, f32, i32, bool_, steps, layout):
        self.f32, self.i32, self.bool, self.steps = f32, i32, bool_, steps
        # (name, kind, offset, length, shape) of each slot: static, part of the tree's structure.
        self.layout = layout

    @property
    def slots(self) -> dict[str, Any]:
        packed = {"f32": self.f32, "i32": self.i32, "bool": self.bool}
        return {name: packed[kind][at : at + n].reshape(shape) for name, kind, at, n, shape in self.layout}

    def tree_flatten(self):
        return (self.f32, self.i32, self.bool, self.steps), self.layout

    @classmethod
    def tree_unflatten(cls, layout, children):
        return cls(*children, layout)

    def __repr__(self) -> str:
        return f"OptcState({len(self.layout)} slots, steps={self.steps})"


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

    def state_of(opt: _optc.Optimizer, packed, steps) -> OptcState:
        layout = tuple((name, kind, at, n, tuple(shape)) for name, kind, at, n, shape in opt._state_layout())
        return OptcState(*packed, steps, layout)

    def packed_shapes(opt: _optc.Optimizer):
        return tuple(jax.ShapeDtypeStruct(a.shape, a.dtype) for a in opt._state_packed())

    def flat(leaves):
        # One array through the host call instead of one per leaf: each costs more than a
        # small model's whole step.
        return jnp.concatenate([jnp.ravel(x) for x in leaves]) if len(leaves) > 1 else jnp.ravel(leaves[0])

    def init_fn(params):
        names, leaves, _ = _flatten(params, "params")
        shapes = [tuple(x.shape) for x in leaves]
        opt, _ = optimizer_for(names, shapes)

        def host_init(*arrays):
            params = {n: np.asarray(a) for n, a in zip(names, arrays)}
            return pipeline.init(params, threads=threads, separate_updates=True)._state_packed()

        packed = jax.pure_callback(host_init, packed_shapes(opt), *leaves)
        return state_of(opt, packed, jnp.zeros((), jnp.int32))

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
        # optc keeps leaves in name order; the tree may hold them in another.
        order = sorted(range(len(names)), key=lambda k: names[k].encode())
        sizes = [int(np.prod(shapes[k], dtype=np.int64)) for k in order]

        def host_update(grads, params, f32, i32, bool_, steps, value):
            with lock:
                opt._load_state_packed(np.asarray(f32), np.asarray(i32), np.asarray(bool_), int(steps))
                ups = opt._updates_flat(np.asarray(params), np.asarray(grads), float(value) if pipeline.needs_value else None)
                return (ups, *opt._state_packed(), np.asarray(steps + 1, np.int32))

        result = (jax.ShapeDtypeStruct((sum(sizes),), jnp.float32), *packed_shapes(opt), jax.ShapeDtypeStruct((), jnp.int32))
        ordered = lambda leaves: flat([leaves[k] for k in order])
        ups, f32, i32, bool_, steps = jax.pure_callback(
            host_update, result, ordered(grads), ordered(params_leaves), state.f32, state.i32, state.bool, state.steps, value
        )
        pieces = jnp.split(ups, np.cumsum(sizes)[:-1]) if len(sizes) > 1 else [ups]
        new_updates = [None] * len(names)
        for k, piece in zip(order, pieces):
            new_updates[k] = piece.reshape(shapes[k])
        return jax.tree_util.tree_unflatten(treedef, new_updates), OptcState(f32, i32, bool_, steps, state.layout)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
