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

import math

import numpy as np
import torch

import optc as _optc

__all__ = ["Optimizer"]


def _as_pipeline(pipeline, stdlib):
    if isinstance(pipeline, _optc.Pipeline):
        return pipeline
    return _optc.compile(pipeline, stdlib=stdlib)


def _check_tensor(name: str, t: torch.Tensor, what: str) -> None:
    if t.is_sparse or t.layout != torch.strided:
        raise TypeError(f"{what} of {name!r} is sparse: optc steps dense tensors")
    if t.device.type != "cpu":
        raise TypeError(f"{what} of {name!r} is on {t.device}: optc steps CPU tensors (move the model with .cpu())")
    if t.dtype != torch.float32:
        raise TypeError(f"{what} of {name!r} is {t.dtype}: optc steps float32 tensors (convert the model with .float())")


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
            _check_tensor(name, p, "parameter")
            if not p.is_contiguous():
                raise ValueError(f"parameter {name!r} is not contiguous: optc updates parameters in place, in row-major order")
        self.pipeline = _as_pipeline(pipeline, stdlib)
        self._names = names
        self._views = {name: p.detach().numpy() for name, p in named}
        self._pointers = {name: p.data_ptr() for name, p in named}
        self._optimizer = self.pipeline.init(self._views, threads=threads)
        self._zeros: dict[str, np.ndarray] = {}
        lr = self._optimizer.learning_rate
        super().__init__(
            [{"params": [p for _, p in named], "param_names": names, "lr": math.nan if lr is None else lr}],
            {},
        )
        self._lr_shown = self.param_groups[0]["lr"]

    @property
    def optimizer(self) -> _optc.Optimizer:
        """The underlying `optc.Optimizer` (its `hyperparams`, `state_dict`, ...)."""
        return self._optimizer

    @property
    def hyperparams(self) -> dict:
        """Every value a user can name after a step, as `optc.Optimizer.hyperparams`."""
        return self._optimizer.hyperparams

    def _params(self) -> dict[str, torch.Tensor]:
        return {name: p for name, p in zip(self._names, self.param_groups[0]["params"])}

    def _param_views(self) -> dict[str, np.ndarray]:
        # A parameter whose storage was replaced (`p.data = ...`) gets a new view.
        for name, p in self._params().items():
            if p.data_ptr() != self._pointers[name]:
                _check_tensor(name, p, "parameter")
                self._views[name] = p.detach().numpy()
                self._pointers[name] = p.data_ptr()
        return self._views

    @torch.no_grad()
    def step(self, closure=None, value=None):
        """One step of the pipeline on the parameters, in place.

        `closure`, as for any PyTorch optimizer, re-evaluates the model and returns the loss;
        `value` is the loss for pipelines that read it (default: the closure's loss, if any).
        Returns the closure's loss.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if value is None and loss is not None and self._optimizer.needs_value:
            value = loss
        if isinstance(value, torch.Tensor):
            value = value.detach().item()
        group = self.param_groups[0]
        if not (group["lr"] == self._lr_shown or (math.isnan(group["lr"]) and math.isnan(self._lr_shown))):
            raise ValueError(
                "param_groups[0]['lr'] was changed, but the learning rate is the pipeline's: "
                "write its schedule in the .opt file (e.g. cosine_decay_schedule) instead of a torch LR scheduler"
            )
        grads = {}
        held = []
        for name, p in self._params().items():
            g = p.grad
            if g is None:
                held.append(name)
                continue
            _check_tensor(name, g, "the gradient")
            grads[name] = g.detach().contiguous().numpy()
        if len(held) == len(self._names):
            return loss
        self._optimizer.step(self._param_views(), grads, value, hold=held or None)
        lr = self._optimizer.learning_rate
        group["lr"] = self._lr_shown = math.nan if lr is None else lr
        return loss

    def state_dict(self) -> dict:
        """The optimizer's state in PyTorch's form (per-element state by parameter index under
        "state", the groups under "param_groups") plus optc's own under "optc"; survives
        `torch.save`/`torch.load` (tensors and plain values only)."""
        sd = self._optimizer.state_dict()
        state: dict[int, dict[str, torch.Tensor]] = {i: {} for i in range(len(self._names))}
        elementwise = []
        for slot, value in sd["state"].items():
            if isinstance(value, dict) and value and all(isinstance(v, np.ndarray) for v in value.values()):
                elementwise.append(slot)
                for i, name in enumerate(self._names):
                    state[i][slot] = torch.from_numpy(value[name].copy())
        optc_part = {k: v for k, v in sd.items() if k != "state"}
        optc_part["state"] = {k: v for k, v in sd["state"].items() if k not in elementwise}
        optc_part["elementwise"] = elementwise
        groups = [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups]
        for g in groups:
            g["params"] = list(range(len(self._names)))
        return {"state": state, "param_groups": groups, "optc": optc_part}

    def load_state_dict(self, state_dict: dict) -> None:
        """Loads a `state_dict` of an optimizer of the same pipeline and parameters; another
        pipeline's or model's is refused with the reason, and nothing changes."""
        try:
            part = dict(state_dict["optc"])
            per_param = state_dict["state"]
        except (KeyError, TypeError):
            raise ValueError("not the state_dict of an optc.torch.Optimizer (it has no 'optc' part)") from None
        names = [n for n in state_dict.get("param_groups", [{}])[0].get("param_names", self._names)]
        if list(names) != self._names:
            raise ValueError(f"this state belongs to other parameters: {names} (this optimizer has {self._names})")
        state = dict(part.get("state", {}))
        for slot in part.get("elementwise", []):
            state[slot] = {}
            for i, name in enumerate(self._names):
                t = per_param[i][slot]
                state[slot][name] = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        part["state"] = state
        part.pop("elementwise", None)
        self._optimizer.load_state_dict(part)
        lr = self._optimizer.learning_rate
        self.param_groups[0]["lr"] = self._lr_shown = math.nan if lr is None else lr

    def __repr__(self) -> str:
        return f"optc.torch.Optimizer({self.pipeline.name}, {len(self._names)} parameters)"
