"""A `.opt` pipeline as a `torch.optim.Optimizer`, stepping CPU float32 parameters in place.

    model = torch.nn.Sequential(...)
    opt = optc.torch.Optimizer(model.named_parameters(), "examples/plateau.opt")
    for x, y in data:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step(value=loss)      # `value` only for pipelines that read the loss

The leaves are named as `named_parameters()` names them, so `"*.bias"` in a `partition` or a
`mask=` means what it says. The step runs in optc's compiled code, on the tensors' own memory.

Parameters whose `grad` is None: as PyTorch's optimizers skip them, the step leaves them
alone — their values and their own state (moments, per-leaf statistics) stay as they were —
while the other parameters step; state shared by every parameter (step counters, the plateau
logic) advances, as it is one for the whole model. When no parameter has a gradient, the step
does nothing at all.
"""

from __future__ import annotations

import functools
import math
from itertools import chain

import numpy as np
import torch
from torch.optim import optimizer as _torch_optimizer

import optc as _optc

__all__ = ["Optimizer"]


def _as_pipeline(pipeline, stdlib):
    if isinstance(pipeline, _optc.Pipeline):
        return pipeline
    return _optc.compile(pipeline, stdlib=stdlib)


def _lr(lr: float | None) -> float:
    # NaN until the first step has made the learning rate known.
    return math.nan if lr is None else lr


def _check_tensor(name: str, t: torch.Tensor, what: str) -> None:
    if t.is_sparse or t.layout != torch.strided:
        raise TypeError(f"{what} {name!r} is sparse: optc steps dense tensors")
    if t.device.type != "cpu":
        raise TypeError(f"{what} {name!r} is on {t.device}: optc steps CPU tensors (move the model with .cpu())")
    if t.dtype != torch.float32:
        raise TypeError(f"{what} {name!r} is {t.dtype}: optc steps float32 tensors (convert the model with .float())")


def _grad_array(name: str, g: torch.Tensor) -> np.ndarray:
    """A gradient as a float32 C-contiguous array, its own memory when it can be. The checks
    run only when the quick way fails: they cost more than a small model's step."""
    try:
        a = g.numpy()
    except (TypeError, RuntimeError):  # on another device, sparse, or requiring grad
        _check_tensor(name, g, "the gradient of")
        a = g.detach().numpy()
    if a.dtype != np.float32:
        _check_tensor(name, g, "the gradient of")
    return a if g.is_contiguous() else np.ascontiguousarray(a)


def _hooked(step):
    """`step` with the optimizer hooks PyTorch calls around every step (global and the
    optimizer's own), inside a profiler range only while a profiler records: the range costs
    about 15 µs per call, more than optc's whole step on a small model."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        global_pre = getattr(_torch_optimizer, "_global_optimizer_pre_hooks", None)
        global_post = getattr(_torch_optimizer, "_global_optimizer_post_hooks", None)
        if global_pre or self._optimizer_step_pre_hooks:
            for hook in chain((global_pre or {}).values(), self._optimizer_step_pre_hooks.values()):
                result = hook(self, (self, *args), kwargs)
                if result is not None:
                    (_, *args), kwargs = result
        if torch.autograd._profiler_enabled():
            with torch.autograd.profiler.record_function(f"Optimizer.step#{type(self).__name__}.step"):
                out = step(self, *args, **kwargs)
        else:
            out = step(self, *args, **kwargs)
        self._optimizer_step_code()
        if global_post or self._optimizer_step_post_hooks:
            for hook in chain(self._optimizer_step_post_hooks.values(), (global_post or {}).values()):
                hook(self, (self, *args), kwargs)
        return out

    wrapper.hooked = True
    return wrapper


class Optimizer(torch.optim.Optimizer):
    """Steps a model's parameters with a `.opt` pipeline.

    `named_parameters`: `model.named_parameters()`, or any iterable of `(name, parameter)`
    pairs, or a dict; parameters with `requires_grad=False` are left out. `pipeline`: an
    `optc.Pipeline`, or a `.opt` path or text compiled here (`stdlib` as in `optc.compile`).
    `threads`: threads a step's passes are split over (default: every core).
    """

    def __init__(self, named_parameters, pipeline, *, threads: int | None = None, stdlib=None):
        if isinstance(named_parameters, dict):
            named_parameters = named_parameters.items()
        named = []
        for item in named_parameters:
            if isinstance(item, torch.Tensor) or not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError(
                    "optc.torch.Optimizer takes named parameters, e.g. model.named_parameters(): "
                    "their names are the leaves' names that a pipeline's globs match"
                )
            name, p = item
            if not isinstance(p, torch.Tensor):
                raise TypeError(f"parameter {name!r} is {type(p).__name__}, not a tensor")
            if p.requires_grad:
                named.append((str(name), p))
        if not named:
            raise ValueError("optc.torch.Optimizer got no parameters that require grad")
        names = [n for n, _ in named]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"parameters named twice: {twice}")
        for name, p in named:
            _check_tensor(name, p, "the parameter")
            if not p.is_contiguous():
                raise ValueError(f"parameter {name!r} is not contiguous: optc updates parameters in place, in row-major order")
        self.pipeline = _as_pipeline(pipeline, stdlib)
        self._names = names
        self._tensors = dict(named)
        self._views = {name: p.detach().numpy() for name, p in named}
        self._pointers = {name: p.data_ptr() for name, p in named}
        self._optimizer = self.pipeline.init(self._views, threads=threads)
        # One torch parameter group per optc group with its own learning rate (a partition's
        # arms), so that learning-rate monitors show each.
        groups = [
            {"params": [self._tensors[n] for n in g["leaves"]], "param_names": list(g["leaves"]), "label": g["label"], "lr": _lr(g["lr"])}
            for g in self._optimizer.param_groups
        ]
        super().__init__(groups, {})
        self._lr_shown = [g["lr"] for g in self.param_groups]

    def _patch_step_function(self) -> None:
        # PyTorch wraps `step` in its hooks and a profiler range when an optimizer is made;
        # this class wraps it once, in `_hooked`.
        self._zero_grad_profile_name = f"Optimizer.zero_grad#{type(self).__name__}.zero_grad"
        if not getattr(type(self).step, "hooked", False):
            type(self).step = _hooked(type(self).step)

    @property
    def optimizer(self) -> _optc.Optimizer:
        """The underlying `optc.Optimizer` (its `hyperparams`, `state_dict`, ...)."""
        return self._optimizer

    @property
    def hyperparams(self) -> dict:
        """Every value a user can name after a step, as `optc.Optimizer.hyperparams`."""
        return self._optimizer.hyperparams

    @torch.no_grad()
    def eval_params(self) -> dict[str, torch.Tensor]:
        """The weights to evaluate the model with, by parameter name (new tensors): Schedule-Free's
        average, Lookahead's slow weights, `ema_params`'s average; copies of the parameters for a
        pipeline that defines none. Load them for evaluation with
        `model.load_state_dict(opt.eval_params(), strict=False)`."""
        weights = self._optimizer.eval_params(self._param_views())
        return {name: torch.from_numpy(weights[name]) for name in self._tensors}

    def _order(self) -> list[str]:
        return [n for g in self.param_groups for n in g["param_names"]]

    def _param_views(self) -> dict[str, np.ndarray]:
        # A parameter whose storage was replaced (`p.data = ...`) gets a new view.
        for name, p in self._tensors.items():
            if p.data_ptr() != self._pointers[name]:
                _check_tensor(name, p, "the parameter")
                self._views[name] = p.detach().numpy()
                self._pointers[name] = p.data_ptr()
        return self._views

    def step(self, closure=None, value=None):
        """One step of the pipeline on the parameters, in place.

        `closure`, as for any PyTorch optimizer, re-evaluates the model and returns the loss;
        `value` is the loss for pipelines that read it (default: the closure's loss, if any).
        Returns the closure's loss. (The parameters change through their memory, outside
        autograd: as with any optimizer, step after the backward pass, not between a forward
        pass and its backward.)
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if value is None and loss is not None and self._optimizer.needs_value:
            value = loss
        if isinstance(value, torch.Tensor):
            value = value.detach().item()
        for i, (group, shown) in enumerate(zip(self.param_groups, self._lr_shown)):
            if not (group["lr"] == shown or (math.isnan(group["lr"]) and math.isnan(shown))):
                raise ValueError(
                    f"param_groups[{i}]['lr'] was changed, but the learning rate is the pipeline's: "
                    "write its schedule in the .opt file (e.g. cosine_decay_schedule) instead of using a torch LR scheduler"
                )
        grads = {}
        held = []
        for name, p in self._tensors.items():
            g = p.grad
            if g is None:
                held.append(name)
                continue
            grads[name] = _grad_array(name, g)
        if len(held) == len(self._names):
            return loss
        self._optimizer.step(self._param_views(), grads, value, hold=held or None)
        self._show_learning_rates()
        return loss

    def _show_learning_rates(self) -> None:
        self._lr_shown = [_lr(lr) for lr in self._optimizer.learning_rates_by_group]
        for group, lr in zip(self.param_groups, self._lr_shown):
            group["lr"] = lr

    def state_dict(self) -> dict:
        """The optimizer's state in PyTorch's form (per-element state by parameter index under
        "state", the groups under "param_groups") plus optc's own under "optc"; survives
        `torch.save`/`torch.load` (tensors and plain values only)."""
        sd = self._optimizer.state_dict()
        # Parameters are numbered as PyTorch numbers them: in the order of the groups.
        order = self._order()
        state: dict[int, dict[str, torch.Tensor]] = {i: {} for i in range(len(order))}
        elementwise = []
        for slot, value in sd["state"].items():
            if isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
                elementwise.append(slot)
                # A partition arm's state holds the arm's parameters only.
                for i, name in enumerate(order):
                    if name in value:
                        state[i][slot] = torch.from_numpy(value[name])
        optc_part = {k: v for k, v in sd.items() if k != "state"}
        optc_part["state"] = {k: v for k, v in sd["state"].items() if k not in elementwise}
        optc_part["elementwise"] = elementwise
        index = {n: i for i, n in enumerate(order)}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[n] for n in g["param_names"]]} for g in self.param_groups]
        return {"state": state, "param_groups": groups, "optc": optc_part}

    def load_state_dict(self, state_dict: dict) -> None:
        """Loads a `state_dict` of an optimizer of the same pipeline and parameters; another
        pipeline's or model's is refused with the reason, and nothing changes."""
        try:
            part = dict(state_dict["optc"])
            per_param = state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError("not the state_dict of an optc.torch.Optimizer (it has no 'optc' part)") from None
        names = [n for g in state_dict.get("param_groups", []) for n in g.get("param_names", [])]
        if names != self._order():
            raise ValueError(f"this state belongs to other parameters: {sorted(names)} (this optimizer has {sorted(self._names)})")
        state = dict(part.get("state", {}))
        for slot in part.get("elementwise", []):
            state[slot] = {}
            for i, name in enumerate(names):
                if slot in per_param.get(i, {}):
                    t = per_param[i][slot]
                    # As torch.optim casts floating state to its parameter's dtype (a bfloat16
                    # tensor holds float32 values exactly; numpy has no bfloat16).
                    if isinstance(t, torch.Tensor) and t.is_floating_point():
                        t = t.detach().cpu().float()
                    state[slot][name] = t.numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        part["state"] = state
        part.pop("elementwise", None)
        self._optimizer.load_state_dict(part)
        self._show_learning_rates()

    def __repr__(self) -> str:
        return f"optc.torch.Optimizer({self.pipeline.name}, {len(self._names)} parameters)"
