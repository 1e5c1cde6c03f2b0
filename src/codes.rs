//! The long explanation of every diagnostic code, for `optc check --explain CODE`. A test checks
//! that every code the compiler emits is listed here.

/// `(code, explanation)`, sorted by code.
pub const CODES: &[(&str, &str)] = &[
    ("assign-to-parameter", "A parameter (hyperparameter) of a definition is fixed; it cannot be assigned. Bind a new name with `let` instead."),
    ("bad-application", "Inside `update`, only a parameter of type `transform` can be applied to an update tree, as `inner(g)`. Transforms are built at compile time and passed in."),
    ("bad-assignment", "Only `list[float]` state can be assigned by index (`s[i] = ...`)."),
    ("bad-escape", "Strings know the escapes `\\n`, `\\t`, `\\\\`, `\\\"` and `\\'`."),
    ("bad-glob", "Globs follow Python's fnmatchcase: `*` any run of characters, `?` one character, `[abc]` a set. An empty glob, or a `[` never closed, is almost surely a mistake."),
    ("bad-index", "Lists and tuples are indexed by ints, maps by their keys; state lists by compile-time ints (loop variables over `range`)."),
    ("bad-range", "A range `in [lo, hi)` applies to a number parameter, and its bounds are numbers, `inf` or `-inf`, with lo <= hi."),
    ("bad-reset", "`reset name` re-initialises the state of a nested transform: `name` must be a `transform` parameter of the transform whose `update` this is."),
    ("bad-type", "A type is `float`, `int`, `bool`, `str`, `list[T]`, `tuple[A, B]`, `map[K, V]`, `schedule`, `transform`, `mask`, `fn(A) -> R`, a union of strings, or `T?`; hyperparameters cannot be `tensor` or `leaf`."),
    ("bad-value", "A compile-time computation received a value it cannot work with."),
    ("builtin-as-value", "Built-in functions (`sqrt`, `norm`, ...) are called, not passed as values. Wrap one in a `def` to pass it."),
    ("chained-comparison", "Comparisons do not chain: write `a < b and b < c` instead of `a < b < c`."),
    ("division-by-zero", "A compile-time division by zero."),
    ("duplicate-argument", "Each parameter receives one value: by position or by keyword, once."),
    ("duplicate-definition", "Every definition has its own name, across the user's file and the standard library."),
    ("duplicate-key", "A map literal names each key once."),
    ("duplicate-update", "A transform has exactly one `update(g) { ... }` block."),
    ("empty-partition", "A `partition { ... }` needs at least one arm; `_ => transform` covers every leaf."),
    ("failed-assert", "A definition requires something of its arguments (Optax raises a ValueError for the same); the message says what."),
    ("if-without-value", "An `if` used as a value needs an `else`, and both branches must end with an expression."),
    ("internal-error", "A bug in optc, not in your file. Please report it with the file that triggers it."),
    ("keyword-colon", "Keyword arguments are written `name=value`, as in Python; `name: value` is the syntax of parameter declarations and maps."),
    ("level-mismatch", "Values live at levels: compile-time, uniform (one per step), per leaf, per element. An operation takes the highest level of its operands; reductions (`sum`, `norm`, `leaf_norm`, ...) lower it. State keeps the level it was declared with, `if` statements need a uniform or per-leaf condition, hyperparameters and loops are compile-time."),
    ("missing-argument", "A parameter without a default needs a value at every call."),
    ("missing-comma", "Arguments are separated by commas."),
    ("missing-result", "A block that gives a value (a `def`, a schedule, `update`) ends with an expression."),
    ("missing-update", "A transform computes its outgoing updates in `update(g) { ... }`."),
    ("not-callable", "Only functions, schedules, and transform parameters inside `update`, can be called."),
    ("not-constant", "This needs a compile-time value, but the value is only known at run time (for example a hyperparameter made dynamic by `inject_hyperparams`, or a reduction)."),
    ("number-too-large", "Ints are 64-bit and floats are binary64; use `inf` for an unbounded value."),
    ("out-of-range", "The parameter is declared with a range (`in [lo, hi)`) in its definition, and the value given is outside it. Square brackets include the bound, round ones exclude it. Optax would accept the value and misbehave; optc stops here."),
    ("overflow", "A compile-time int computation overflowed 64 bits."),
    ("partition-arrow", "Partition arms are written `\"glob\" => transform`."),
    ("python-syntax", "optc's pipelines are Python calls: `and`/`or`/`not`, `True`/`False`/`None`."),
    ("recursive-definition", "Definitions are inlined where they are called, so they cannot call themselves."),
    ("stdlib-item", "A standard library file holds definitions only."),
    ("syntax-error", "The file does not follow the grammar of .opt files; the message says what was expected where."),
    ("too-deeply-nested", "Expressions are limited in depth so that no input can exhaust the compiler's stack; split deep expressions with `let`."),
    ("too-many-arguments", "The call passes more positional arguments than the definition has parameters."),
    ("transform-applied-twice", "A nested transform keeps one state, so `update` applies it at most once per step (and never in a loop)."),
    ("type-mismatch", "A value of one type was given where another is expected. Ints widen to floats, and numbers to constant schedules; nothing else converts implicitly."),
    ("unknown-keyword", "The definition has no parameter by that name. optc uses Optax's keyword names (`learning_rate`, not `lr`)."),
    ("unknown-name", "No definition, `let`, parameter or built-in has this name. optc uses Optax's names for transforms and schedules."),
    ("unknown-option", "The parameter takes one of a fixed set of strings."),
    ("unknown-type", "Not a type name; see `bad-type` for the list."),
    ("unreachable-arm", "`_` takes every leaf, so partition arms after it are never used."),
    ("unused-value", "A value computed and thrown away is almost always a mistake: only the last expression of a file is its pipeline, and only the last expression of a block is its value."),
    ("wrong-arity", "The call passes the wrong number of arguments."),
];

/// The explanation of a code.
pub fn explain(code: &str) -> Option<&'static str> {
    CODES.iter().find(|(c, _)| *c == code).map(|(_, text)| *text)
}
