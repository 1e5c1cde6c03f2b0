"""optc: optimizer pipelines in Optax's vocabulary, checked like code and compiled to fused
loops that update a model's parameters in place.

    import numpy as np, optc

    pipeline = optc.compile("examples/plateau.opt")   # a path, or the pipeline's text
    params = {"w": np.zeros((3, 2), np.float32), "b": np.zeros(3, np.float32)}
    opt = pipeline.init(params)                       # leaves by name; nested dicts flatten with dots
    opt.step(params, grads, value=loss)               # params updated in place
    opt.hyperparams["reduce_on_plateau.scale"]

A pipeline with mistakes raises `CompileError`, whose text is what `optc check` prints.
`optc.torch.Optimizer` steps a PyTorch model's parameters; `optc.optax.transform` is an Optax
gradient transformation (for JAX and Flax NNX). Each is imported on first use.
"""

import importlib as _importlib

from ._optc import CompileError, Diagnostic, Optimizer, Pipeline, __version__, compile

__all__ = ["CompileError", "Diagnostic", "Optimizer", "Pipeline", "compile", "__version__"]

_ADAPTERS = ("torch", "optax")


def __getattr__(name):
    # `optc.torch` and `optc.optax` import their framework, so only when asked for.
    if name in _ADAPTERS:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
