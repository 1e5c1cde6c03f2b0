//! The long explanation of every diagnostic code, with a file that gets it and the same file
//! fixed, for `optc check --explain [CODE]`. A test checks that every code the compiler emits is
//! listed here, and that each wrong example gets its code and each right one checks clean.

/// One diagnostic code.
pub struct Code {
    pub code: &'static str,
    /// What it means and how to fix it; the first sentence is its summary.
    pub text: &'static str,
    /// A file that gets this diagnostic ("" where no short file can: a checkpoint's layout, a
    /// bug, the standard library's own files).
    pub wrong: &'static str,
    /// The same file, fixed.
    pub right: &'static str,
}

/// Every code, sorted.
pub const CODES: &[Code] = &[
    Code {
        code: "assign-to-parameter",
        text: "A parameter (hyperparameter) of a definition is fixed; it cannot be assigned. Bind a new name with `let` instead.",
        wrong: r#"transform halve(k: float) {
    update(g) {
        k = k / 2
        k * g
    }
}
halve(k=1.0)"#,
        right: r#"transform halve(k: float) {
    update(g) {
        let h = k / 2
        h * g
    }
}
halve(k=1.0)"#,
    },
    Code {
        code: "bad-application",
        text: "Inside `update`, only a parameter of type `transform` can be applied to an update tree, as `inner(g)`. Transforms are built at compile time and passed in.",
        wrong: r#"transform t() {
    update(g) { identity()(g) }
}
t()"#,
        right: r#"transform t(inner: transform) {
    update(g) { inner(g) }
}
t(inner=identity())"#,
    },
    Code {
        code: "bad-assignment",
        text: "Only a list state (`list[float]`, `list[tensor]`, `list[leaf]`) can be assigned by index (`s[i] = ...`).",
        wrong: r#"transform t() {
    update(g) {
        let x = 1.0
        x[0] = 2.0
        g
    }
}
t()"#,
        right: r#"transform t() {
    state s: list[float] = [0.0]
    update(g) {
        s[0] = sum(g)
        g
    }
}
t()"#,
    },
    Code {
        code: "bad-escape",
        text: "Strings know the escapes `\\n`, `\\t`, `\\\\`, `\\\"` and `\\'`.",
        wrong: r#"masked(sgd(learning_rate=0.1), mask="layer\q")"#,
        right: r#"masked(sgd(learning_rate=0.1), mask="layer.*")"#,
    },
    Code {
        code: "bad-glob",
        text: "Globs follow Python's fnmatchcase: `*` any run of characters, `?` one character, `[abc]` a set. An empty glob, or a `[` never closed, is almost surely a mistake.",
        wrong: r#"masked(sgd(learning_rate=0.1), mask="layer[0.w")"#,
        right: r#"masked(sgd(learning_rate=0.1), mask="layer[0].w")"#,
    },
    Code {
        code: "bad-index",
        text: "Lists and tuples are indexed by ints, maps by their keys; state lists by compile-time ints (loop variables over `range`).",
        wrong: r#"let rates = [0.1, 0.01]
sgd(learning_rate=rates[2])"#,
        right: r#"let rates = [0.1, 0.01]
sgd(learning_rate=rates[1])"#,
    },
    Code {
        code: "bad-range",
        text: "A range `in [lo, hi)` applies to a number parameter, and its bounds are numbers, `inf` or `-inf`, with lo <= hi.",
        wrong: r#"transform t(name: str in [0, 1)) {
    update(g) { g }
}
t(name="a")"#,
        right: r#"transform t(k: float in [0, 1)) {
    update(g) { k * g }
}
t(k=0.5)"#,
    },
    Code {
        code: "bad-reset",
        text: "`reset name` re-initialises the state of a nested transform, and `revert name` undoes what applying it did to its state this step: `name` must be a `transform` parameter of the transform whose `update` this is, applied before a `revert`.",
        wrong: r#"transform t(period: int) {
    update(g) {
        reset period
        g
    }
}
t(period=2)"#,
        right: r#"transform t(inner: transform) {
    update(g) {
        let u = inner(g)
        reset inner
        u
    }
}
t(inner=trace(decay=0.9))"#,
    },
    Code {
        code: "bad-type",
        text: "A type is `float`, `int`, `bool`, `str`, `list[T]`, `tuple[A, B]`, `map[K, V]`, `schedule`, `transform`, `mask`, `fn(A) -> R`, a union of strings, or `T?`; hyperparameters cannot be `tensor` or `leaf`.",
        wrong: r#"transform t(k: tensor) {
    update(g) { k * g }
}
t(k=1.0)"#,
        right: r#"transform t(k: float) {
    update(g) { k * g }
}
t(k=1.0)"#,
    },
    Code {
        code: "bad-value",
        text: "A compile-time computation received a value it cannot work with.",
        wrong: r#"let n = int(inf)
sgd(learning_rate=0.1)"#,
        right: r#"let n = int(1e6)
sgd(learning_rate=0.1)"#,
    },
    Code {
        code: "builtin-as-value",
        text: "Built-in functions (`sqrt`, `norm`, ...) are called, not passed as values. Wrap one in a `def` to pass it.",
        wrong: r#"def apply(f: fn, x: float) = x
sgd(learning_rate=apply(sqrt, 0.01))"#,
        right: r#"def root(x: float) = sqrt(x)
def apply(f: fn, x: float) = x
sgd(learning_rate=apply(root, 0.01))"#,
    },
    Code {
        code: "chained-comparison",
        text: "Comparisons do not chain: write `a < b and b < c` instead of `a < b < c`.",
        wrong: r#"def inside(x: float) = 0 < x < 1
sgd(learning_rate=0.1)"#,
        right: r#"def inside(x: float) = 0 < x and x < 1
sgd(learning_rate=0.1)"#,
    },
    Code {
        code: "division-by-zero",
        text: "A compile-time division by zero.",
        wrong: r#"sgd(learning_rate=1 / 0)"#,
        right: r#"sgd(learning_rate=1 / 10)"#,
    },
    Code {
        code: "duplicate-argument",
        text: "Each parameter receives one value: by position or by keyword, once.",
        wrong: r#"adam(1e-3, learning_rate=1e-2)"#,
        right: r#"adam(learning_rate=1e-2)"#,
    },
    Code {
        code: "duplicate-definition",
        text: "Every definition has its own name, across the user's file and the standard library.",
        wrong: r#"def lr() = 0.1
def lr() = 0.2
sgd(learning_rate=lr())"#,
        right: r#"def lr() = 0.1
def slow_lr() = 0.2
sgd(learning_rate=lr())"#,
    },
    Code {
        code: "duplicate-eval-params",
        text: "A transform has at most one `eval_params { ... }` block: the weights to evaluate the model with are one expression.",
        wrong: r#"transform t() {
    state avg: tensor = param
    update(g) { g }
    eval_params { param }
    eval_params { avg }
}
t()"#,
        right: r#"transform t() {
    state avg: tensor = param
    update(g) { g }
    eval_params { avg }
}
t()"#,
    },
    Code {
        code: "duplicate-key",
        text: "A map literal names each key once.",
        wrong: r#"sgd(learning_rate=piecewise_constant_schedule(0.1, {100: 0.1, 100: 0.5}))"#,
        right: r#"sgd(learning_rate=piecewise_constant_schedule(0.1, {100: 0.1, 200: 0.5}))"#,
    },
    Code {
        code: "duplicate-update",
        text: "A transform has exactly one `update(g) { ... }` block.",
        wrong: r#"transform t() {
    update(g) { g }
    update(g) { 2 * g }
}
t()"#,
        right: r#"transform t() {
    update(g) { 2 * g }
}
t()"#,
    },
    Code {
        code: "empty-partition",
        text: "A `partition { ... }` needs at least one arm; `_ => transform` covers every leaf.",
        wrong: r#"partition {}"#,
        right: r#"partition {
    _ => sgd(learning_rate=0.1),
}"#,
    },
    Code {
        code: "eval-params-overlap",
        text: "Two transforms of a pipeline define evaluation weights (`eval_params`) for the same leaves, such as `ema_params` beside `schedule_free`. The weights of one are not the parameters the other's are computed from, so neither would be right: keep one per leaf, or mask one away from the other's leaves.",
        wrong: r#"chain(ema_params(decay=0.99), schedule_free_sgd(learning_rate=0.1))"#,
        right: r#"schedule_free_sgd(learning_rate=0.1)"#,
    },
    Code {
        code: "failed-assert",
        text: "A definition requires something of its arguments (Optax raises a ValueError for the same); the message says what. A requirement on the leaves' `ndim`, `shape` or `size` is checked when the pipeline meets the parameters' layout, and names the leaves it fails for.",
        wrong: r#"adam(learning_rate=piecewise_constant_schedule(0.1, {100: -0.1}))"#,
        right: r#"adam(learning_rate=piecewise_constant_schedule(0.1, {100: 0.1}))"#,
    },
    Code {
        code: "glob-in-flatten",
        text: "`flatten(tx)` hands `tx` every leaf as one vector, as `optax.flatten` does, so a mask inside it (of `masked`, a `partition` arm, a `mask=` argument) judges that one vector: by `ndim` (1) or `size` it takes all of it or none, and a glob has no leaf name to match. Mask outside the `flatten` instead.",
        wrong: r#"flatten(adamw(learning_rate=1e-3, mask="*.weight"))"#,
        right: r#"masked(flatten(adamw(learning_rate=1e-3)), mask="*.weight")"#,
    },
    Code {
        code: "if-without-value",
        text: "An `if` used as a value needs an `else`, and both branches must end with an expression.",
        wrong: r#"def f(x: float) = if x > 0 { 1.0 }
sgd(learning_rate=f(0.1))"#,
        right: r#"def f(x: float) = if x > 0 { 1.0 } else { 0.5 }
sgd(learning_rate=f(0.1))"#,
    },
    Code {
        code: "internal-error",
        text: "A bug in optc, not in your file. Please report it with the file that triggers it.",
        wrong: r#""#,
        right: r#""#,
    },
    Code {
        code: "keyword-colon",
        text: "Keyword arguments are written `name=value`, as in Python; `name: value` is the syntax of parameter declarations and maps.",
        wrong: r#"adam(learning_rate: 1e-3)"#,
        right: r#"adam(learning_rate=1e-3)"#,
    },
    Code {
        code: "bad-axis",
        text: "An axis reduction (`sum(x, axis=...)`, `mean`, `max`, `min`) names an axis that a leaf it applies to does not have: a leaf of `ndim` axes has axes 0 to ndim - 1, or -ndim to -1 counted from the end. Found when the pipeline meets a layout; test `ndim` in the body, or mask the transform to the leaves that have the axis.",
        wrong: r#""#,
        right: r#""#,
    },
    Code {
        code: "bad-shape",
        text: "A matrix operation (`matmul`, `transpose`, `spectral_norm`) is given values that are not matrices that fit ((r x k) by (k x c) for `matmul`), or a transform gives updates or state of a shape its leaf does not have. Found when the pipeline meets a layout, since the shapes are the leaves'; test `ndim` in the body, or mask the transform to the leaves it is for.",
        wrong: r#""#,
        right: r#""#,
    },
    Code {
        code: "layout-mismatch",
        text: "Saved optimizer state belongs to one pipeline and one parameter layout; it cannot be loaded into an optimizer for another. The message says which differs.",
        wrong: r#""#,
        right: r#""#,
    },
    Code {
        code: "level-mismatch",
        text: "Values live at levels: compile-time, uniform (one per step), per leaf, per element. An operation takes the highest level of its operands; reductions (`sum`, `norm`, `leaf_norm`, ...) lower it. State keeps the level it was declared with, `if` statements need a uniform or per-leaf condition, hyperparameters and loops are compile-time.",
        wrong: r#"transform t() {
    state s: float = 0.0
    update(g) {
        s = g
        g
    }
}
t()"#,
        right: r#"transform t() {
    state s: float = 0.0
    update(g) {
        s = sum(g)
        g
    }
}
t()"#,
    },
    Code {
        code: "missing-argument",
        text: "A parameter without a default needs a value at every call.",
        wrong: r#"adam()"#,
        right: r#"adam(learning_rate=1e-3)"#,
    },
    Code {
        code: "missing-comma",
        text: "Arguments are separated by commas.",
        wrong: r#"adam(learning_rate=1e-3 b1=0.9)"#,
        right: r#"adam(learning_rate=1e-3, b1=0.9)"#,
    },
    Code {
        code: "missing-pipeline",
        text: "Only a file that ends with a pipeline (an expression giving a transform) can be instantiated and run; a file of definitions alone can only be checked.",
        wrong: r#"let tx = adam(learning_rate=1e-3)"#,
        right: r#"let tx = adam(learning_rate=1e-3)
tx"#,
    },
    Code {
        code: "missing-result",
        text: "A block that gives a value (a `def`, a schedule, `update`) ends with an expression.",
        wrong: r#"def f(x: float) {
    let y = 2 * x
}
sgd(learning_rate=f(0.1))"#,
        right: r#"def f(x: float) {
    let y = 2 * x
    y
}
sgd(learning_rate=f(0.1))"#,
    },
    Code {
        code: "missing-update",
        text: "A transform computes its outgoing updates in `update(g) { ... }`.",
        wrong: r#"transform t() {
    state s: float = 0.0
}
t()"#,
        right: r#"transform t() {
    state s: float = 0.0
    update(g) { g }
}
t()"#,
    },
    Code {
        code: "not-callable",
        text: "Only functions, schedules, and transform parameters inside `update`, can be called.",
        wrong: r#"sgd(learning_rate=0.1(2))"#,
        right: r#"sgd(learning_rate=0.1 * 2)"#,
    },
    Code {
        code: "not-constant",
        text: "This needs a compile-time value, but the value is only known at run time (for example a hyperparameter made dynamic by `inject_hyperparams`, or a reduction).",
        wrong: r#"def pick(momentum: float) = if momentum > 0.5 { sgd(learning_rate=0.1, momentum=momentum) } else { adam(learning_rate=0.1) }
inject_hyperparams(pick)(momentum=0.9)"#,
        right: r#"def pick(momentum: float) = if momentum > 0.5 { sgd(learning_rate=0.1, momentum=momentum) } else { adam(learning_rate=0.1) }
inject_hyperparams(pick, static_args=["momentum"])(momentum=0.9)"#,
    },
    Code {
        code: "not-supported",
        text: "An Optax transform that optc does not have yet: the message says what it needs that optc cannot give it (a matrix factorization of a leaf, a random key, several gradients per step).",
        wrong: r#"scale_by_shampoo()"#,
        right: r#"adam(learning_rate=1e-3)"#,
    },
    Code {
        code: "number-too-large",
        text: "Ints are 64-bit and floats are binary64; use `inf` for an unbounded value.",
        wrong: r#"let steps = 99999999999999999999
sgd(learning_rate=0.1)"#,
        right: r#"let steps = 1e20
sgd(learning_rate=0.1)"#,
    },
    Code {
        code: "out-of-range",
        text: "The parameter is declared with a range (`in [lo, hi)`) in its definition, and the value given is outside it. Square brackets include the bound, round ones exclude it. Optax would accept the value and misbehave; optc stops here.",
        wrong: r#"adam(learning_rate=1e-3, b1=1.5)"#,
        right: r#"adam(learning_rate=1e-3, b1=0.95)"#,
    },
    Code {
        code: "overflow",
        text: "A compile-time int computation overflowed 64 bits.",
        wrong: r#"let n = 2 ^ 70
sgd(learning_rate=0.1)"#,
        right: r#"let n = 2.0 ^ 70
sgd(learning_rate=0.1)"#,
    },
    Code {
        code: "partition-arrow",
        text: "Partition arms are written `\"glob\" => transform`.",
        wrong: r#"partition {
    _: sgd(learning_rate=0.1),
}"#,
        right: r#"partition {
    _ => sgd(learning_rate=0.1),
}"#,
    },
    Code {
        code: "positional-after-keyword",
        text: "As in Python, arguments given by position come before those given by keyword: `adam(1e-3, b1=0.9)`, not `adam(learning_rate=1e-3, 0.9)`. Name the argument, or move it before the keyword arguments.",
        wrong: r#"adam(learning_rate=1e-3, 0.9)"#,
        right: r#"adam(learning_rate=1e-3, b1=0.9)"#,
    },
    Code {
        code: "python-syntax",
        text: "optc's pipelines are Python calls, but a file is not a Python module: no `import`, `let name = ...` instead of `name = ...`, `#` comments, `else if` for `elif`, blocks in `{ }`, no `return` (a block's last expression is its value), built-in math without `np.`, globs instead of `lambda` masks, `and`/`or`/`not`, `True`/`False`/`None`.",
        wrong: r#"tx = adam(learning_rate=1e-3)
tx"#,
        right: r#"let tx = adam(learning_rate=1e-3)
tx"#,
    },
    Code {
        code: "recursive-definition",
        text: "Definitions are inlined where they are called, so they cannot call themselves.",
        wrong: r#"def f(x: float) = f(x)
sgd(learning_rate=f(0.1))"#,
        right: r#"def f(x: float) = x
sgd(learning_rate=f(0.1))"#,
    },
    Code {
        code: "step-too-large",
        text: "The step of this pipeline, instantiated for the layout, has more operations than `optc` compiles (docs/language.md lists the limits). Use fewer or smaller transforms.",
        wrong: r#""#,
        right: r#""#,
    },
    Code {
        code: "stdlib-item",
        text: "A standard library file holds definitions only.",
        wrong: r#""#,
        right: r#""#,
    },
    Code {
        code: "syntax-error",
        text: "The file does not follow the grammar of .opt files; the message says what was expected where.",
        wrong: r#"adam(learning_rate=1e-3"#,
        right: r#"adam(learning_rate=1e-3)"#,
    },
    Code {
        code: "too-deeply-nested",
        text: "Nesting is limited in depth so that no input can exhaust the compiler's stack: brackets, operators in one expression, transforms inside transforms (through `let`s too), definitions calling definitions, and lists inside lists. docs/language.md lists the limits. Split deep expressions with `let`; put transforms side by side in one `chain(...)`.",
        wrong: r#""#,
        right: r#""#,
    },
    Code {
        code: "too-many-arguments",
        text: "The call passes more positional arguments than the definition has parameters.",
        wrong: r#"sgd(0.1, 0.9, True, None, 1)"#,
        right: r#"sgd(0.1, 0.9, True)"#,
    },
    Code {
        code: "transform-applied-twice",
        text: "A nested transform keeps one state, so `update` applies it at most once per step (and never in a loop).",
        wrong: r#"transform t(inner: transform) {
    update(g) { inner(g) + inner(g) }
}
t(inner=trace(decay=0.9))"#,
        right: r#"transform t(inner: transform) {
    update(g) {
        let u = inner(g)
        u + u
    }
}
t(inner=trace(decay=0.9))"#,
    },
    Code {
        code: "type-mismatch",
        text: "A value of one type was given where another is expected. Ints widen to floats, and numbers to constant schedules; nothing else converts implicitly.",
        wrong: r#"adam(learning_rate="fast")"#,
        right: r#"adam(learning_rate=1e-3)"#,
    },
    Code {
        code: "shape-dependent-state",
        text: "A transform whose body reads a leaf's `ndim`, `size` or `shape` runs once per shape among its leaves; a uniform state (one value for every leaf, such as a step count) cannot be given a different value for each. Keep such a value per leaf or per element, or compute it without the leaf's shape. Found when the pipeline meets a layout.",
        wrong: r#""#,
        right: r#""#,
    },
    Code {
        code: "unmatched-glob",
        text: "A glob given to `masked`, `partition`, `freeze` or a `mask=` argument matches no leaf of the layout, which is almost surely a typo in a leaf name: Optax would silently apply nothing. Globs follow Python's fnmatchcase over whole dotted names.",
        wrong: r#"masked(sgd(learning_rate=0.1), mask="*.weigth")"#,
        right: r#"masked(sgd(learning_rate=0.1), mask="*.weight")"#,
    },
    Code {
        code: "empty-arm",
        text: "A `partition` arm takes no leaf of the layout: its mask selects none (a rank or size no leaf has), or the arms before it take every leaf it selects. Its transform never runs, which is almost surely not what was meant. Found when the pipeline meets a layout: `muon` on a model without matrices gets it too, as its matrix arm takes nothing. A `_` arm that is left nothing is not reported.",
        wrong: r#""#,
        right: r#""#,
    },
    Code {
        code: "unmatched-leaf",
        text: "Every leaf needs a transform: a `partition` without a `_` arm must match each leaf with some glob. The message names the leaves no arm takes.",
        wrong: r#"partition {
    "*.weight" => sgd(learning_rate=0.1),
}"#,
        right: r#"partition {
    "*.weight" => sgd(learning_rate=0.1),
    _ => adam(learning_rate=1e-3),
}"#,
    },
    Code {
        code: "unknown-keyword",
        text: "The definition has no parameter by that name. optc uses Optax's keyword names (`learning_rate`, not `lr`).",
        wrong: r#"adam(lr=1e-3)"#,
        right: r#"adam(learning_rate=1e-3)"#,
    },
    Code {
        code: "unknown-name",
        text: "No definition, `let`, parameter or built-in has this name. optc uses Optax's names for transforms and schedules.",
        wrong: r#"adma(learning_rate=1e-3)"#,
        right: r#"adam(learning_rate=1e-3)"#,
    },
    Code {
        code: "unknown-option",
        text: "The parameter takes one of a fixed set of strings.",
        wrong: r#"scale_by_lion(mode="soft")"#,
        right: r#"scale_by_lion(mode="smooth")"#,
    },
    Code {
        code: "unknown-type",
        text: "Not a type name; see `bad-type` for the list.",
        wrong: r#"def half(x: double) = x / 2
sgd(learning_rate=half(0.2))"#,
        right: r#"def half(x: float) = x / 2
sgd(learning_rate=half(0.2))"#,
    },
    Code {
        code: "unreachable-arm",
        text: "In a `partition` the first arm whose glob matches a leaf takes it, so an arm after `_` (an error), or one whose globs only match leaves that earlier arms take (a warning), is never used.",
        wrong: r#"partition {
    _ => adam(learning_rate=1e-3),
    "*.bias" => sgd(learning_rate=0.1),
}"#,
        right: r#"partition {
    "*.bias" => sgd(learning_rate=0.1),
    _ => adam(learning_rate=1e-3),
}"#,
    },
    Code {
        code: "unrolled-too-large",
        text: "Compile-time evaluation ran more operations than `optc` allows (docs/language.md lists the limits): a `for` loop over many items in an `update` body, definitions that call each other many times, or a pipeline that uses a transform many times over. Everything a transform's body computes at compile time is unrolled into its step, so loop over fewer items or use the transform fewer times.",
        wrong: r#""#,
        right: r#""#,
    },
    Code {
        code: "unused-value",
        text: "A value computed and thrown away is almost always a mistake: only the last expression of a file is its pipeline, and only the last expression of a block is its value.",
        wrong: r#"adam(learning_rate=1e-3)
sgd(learning_rate=0.1)"#,
        right: r#"sgd(learning_rate=0.1)"#,
    },
    Code {
        code: "value-too-large",
        text: "A compile-time list, tuple, map or string has more items than `optc` allows (65,536, counting every level). Compile-time values hold hyperparameters: boundaries, scales, globs.",
        wrong: r#"let steps = [i for i in range(40000)]
sgd(learning_rate=0.1 * len(steps + steps))"#,
        right: r#"let steps = [i for i in range(4)]
sgd(learning_rate=0.1 * len(steps + steps))"#,
    },
    Code {
        code: "wrong-arity",
        text: "The call passes the wrong number of arguments.",
        wrong: r#"transform t(s: schedule) {
    state count: int = 0
    update(g) { s(count, count) * g }
}
t(s=0.1)"#,
        right: r#"transform t(s: schedule) {
    state count: int = 0
    update(g) {
        let u = s(count) * g
        count = count + 1
        u
    }
}
t(s=0.1)"#,
    },
];

/// The explanation of a code.
pub fn explain(code: &str) -> Option<&'static Code> {
    CODES.iter().find(|c| c.code == code)
}

impl Code {
    /// The first sentence of the explanation.
    pub fn summary(&self) -> &'static str {
        match self.text.find(". ") {
            Some(end) => &self.text[..=end],
            None => self.text,
        }
    }
}
