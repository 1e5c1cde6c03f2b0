"""Type stubs of optc's native module (src/python/ in the Rust crate)."""

import os
from collections.abc import Mapping, Sequence
from typing import Literal, Union

import numpy as np
import numpy.typing as npt

__version__: str

Scalar = Union[float, int, bool]
#: Leaf names to float32 arrays; nested mappings flatten with dots.
Tree = Mapping[str, Union[npt.NDArray[np.float32], "Tree"]]

class CompileError(ValueError):
    """A pipeline with errors: `str()` is what `optc check` prints."""

    diagnostics: list[Diagnostic]

class Diagnostic:
    """One diagnostic: its code (`optc check --explain CODE`), severity, message and place."""

    code: str
    severity: Literal["error", "warning", "bug"]
    message: str
    file: str | None
    line: int | None
    column: int | None
    notes: list[str]
    help: list[str]

def compile(source: str | os.PathLike[str], *, stdlib: str | os.PathLike[str] | None = None) -> Pipeline:
    """Checks a pipeline given as a `.opt` path or as its text; raises `CompileError`."""

class Pipeline:
    """A checked pipeline. `str()` is what `optc check` prints for it."""

    @property
    def name(self) -> str: ...
    @property
    def resolved(self) -> str:
        """The resolved pipeline, as `optc check` prints it."""
    @property
    def needs_value(self) -> bool: ...
    @property
    def reads_params(self) -> bool: ...
    @property
    def state(self) -> dict[Literal["element", "leaf", "uniform"], list[str]]: ...
    @property
    def warnings(self) -> list[Diagnostic]: ...
    def init(
        self,
        params: Tree,
        *,
        backend: Literal["jit", "interp"] = "jit",
        threads: int | None = None,
        separate_updates: bool = False,
    ) -> Optimizer:
        """The pipeline instantiated for `params`' leaves, its state initialised from them."""

class Optimizer:
    """A pipeline initialised for a model's leaves, with its state."""

    @property
    def leaves(self) -> list[tuple[str, list[int]]]: ...
    @property
    def pipeline(self) -> Pipeline: ...
    @property
    def needs_value(self) -> bool: ...
    @property
    def steps(self) -> int: ...
    @property
    def backend(self) -> str: ...
    @property
    def threads(self) -> int: ...
    @threads.setter
    def threads(self, threads: int) -> None: ...
    @property
    def warnings(self) -> list[Diagnostic]: ...
    @property
    def hyperparams(self) -> dict[str, Scalar]:
        """Every named value after the last step: counters, scales, learning rates."""
    @property
    def learning_rate(self) -> float | None:
        """The learning rate when the whole model has one (None before the first step)."""
    @property
    def learning_rates_by_group(self) -> list[float | None]: ...
    @property
    def param_groups(self) -> list[dict]:
        """The leaves that share a learning rate: `label`, `leaves`, `lr`."""
    def step(
        self,
        params: Tree,
        grads: Tree,
        value: float | None = None,
        *,
        threads: int | None = None,
        hold: Sequence[str] | None = None,
    ) -> None:
        """`params += update(grads)`, in place; `hold` names leaves to leave alone."""
    def updates(
        self, params: Tree, grads: Tree, value: float | None = None, *, threads: int | None = None
    ) -> dict[str, npt.NDArray[np.float32]]:
        """The updates (for an optimizer made with `separate_updates=True`)."""
    def eval_params(self, params: Tree) -> dict[str, npt.NDArray[np.float32]]:
        """The weights to evaluate the model with (Schedule-Free's average, Lookahead's slow
        weights, `ema_params`'s average), from `params` after the last step; copies of `params`
        when the pipeline defines none."""
    @property
    def has_eval_params(self) -> bool: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
    def save(self, path: str | os.PathLike[str]) -> None: ...
    def load(self, path: str | os.PathLike[str]) -> None: ...
