//! Built-in models on ndarray, with exact analytic gradients: multi-layer perceptrons (linear
//! and logistic regression are MLPs without hidden layers) and classic optimizer test
//! functions. Generic over the float type so that tests can check gradients in `f64` against
//! finite differences; training runs in `f32`, on the parameter buffers the optimizer updates.
//!
//! Leaves are named as in PyTorch (`layers.0.weight` of shape `[out, in]`, `layers.0.bias`),
//! so globs such as `"*.bias"` select what a user expects and weights load from and save to
//! safetensors files of other frameworks.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis, LinalgScalar};
use num_traits::Float;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ir::Layout;
use crate::ir::layout::Leaf;

/// The float types a model computes in.
pub trait Real: Float + LinalgScalar + std::fmt::Debug {}
impl Real for f32 {}
impl Real for f64 {}

/// The nonlinearity between the layers of an MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Tanh,
    /// The tanh approximation, as `jax.nn.gelu` computes it by default.
    Gelu,
}

/// What an MLP minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Mean over samples and outputs of the squared error (class labels count as one-hot).
    Mse,
    /// Mean over samples of the softmax cross-entropy (value targets count as soft labels).
    CrossEntropy,
}

/// A built-in model.
#[derive(Clone, Debug, PartialEq)]
pub enum Model {
    /// Layers of the given widths, input first: `[2, 64, 3]` has one hidden layer of 64.
    Mlp { sizes: Vec<usize>, activation: Activation, loss: Loss },
    /// `sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2`, from the classic start (-1.2, 1, ...).
    Rosenbrock { dim: usize },
    /// `1/2 sum_i c^(i/(n-1)) x[i]^2`: curvatures spread log-evenly up to the condition number.
    Quadratic { dim: usize, condition: f64 },
    /// `10 n + sum_i x[i]^2 - 10 cos(2 pi x[i])`: many local minima around the global one at 0.
    Rastrigin { dim: usize },
}

/// What a batch asks the model to predict.
#[derive(Clone, Debug)]
pub enum Targets<'a, F> {
    /// One row of values per sample.
    Values(ArrayView2<'a, F>),
    /// One class index per sample, out of `count`.
    Classes { labels: &'a [usize], count: usize },
}

/// Inputs (one row per sample) and their targets.
#[derive(Clone, Debug)]
pub struct Batch<'a, F> {
    pub x: ArrayView2<'a, F>,
    pub y: Targets<'a, F>,
}

impl<'a, F> Batch<'a, F> {
    /// The samples `rows` of the batch, borrowed.
    pub fn rows(&self, rows: std::ops::Range<usize>) -> Batch<'a, F> {
        let x = self.x.slice_move(ndarray::s![rows.clone(), ..]);
        let y = match &self.y {
            Targets::Values(v) => Targets::Values((*v).slice_move(ndarray::s![rows, ..])),
            Targets::Classes { labels, count } => Targets::Classes { labels: &labels[rows], count: *count },
        };
        Batch { x, y }
    }
}

impl Model {
    /// A one-line description, recorded in checkpoints so that another model's are refused.
    pub fn describe(&self) -> String {
        match self {
            Model::Mlp { sizes, activation, loss } => {
                let shape: Vec<String> = sizes.iter().map(usize::to_string).collect();
                let shape = shape.join("-");
                match (sizes.len(), loss) {
                    (2, Loss::Mse) => format!("linear regression {shape}"),
                    (2, Loss::CrossEntropy) => format!("logistic regression {shape}"),
                    _ => format!("mlp {shape} {activation:?} {loss:?}").to_lowercase(),
                }
            }
            Model::Rosenbrock { dim } => format!("rosenbrock {dim}"),
            Model::Quadratic { dim, condition } => format!("quadratic {dim} condition {condition}"),
            Model::Rastrigin { dim } => format!("rastrigin {dim}"),
        }
    }

    /// The parameter tensors, named as in PyTorch.
    pub fn leaves(&self) -> Vec<Leaf> {
        match self {
            Model::Mlp { sizes, .. } => sizes
                .windows(2)
                .enumerate()
                .flat_map(|(i, w)| {
                    [
                        Leaf { name: format!("layers.{i}.weight"), shape: vec![w[1], w[0]] },
                        Leaf { name: format!("layers.{i}.bias"), shape: vec![w[1]] },
                    ]
                })
                .collect(),
            Model::Rosenbrock { dim } | Model::Quadratic { dim, .. } | Model::Rastrigin { dim } => {
                vec![Leaf { name: "x".into(), shape: vec![*dim] }]
            }
        }
    }

    /// Initial parameters in `layout` order: PyTorch's default for linear layers
    /// (uniform in ±1/sqrt(fan_in)), the classic starting points for the test functions.
    pub fn init(&self, layout: &Layout, seed: u64) -> Vec<f32> {
        let mut params = vec![0.0f32; layout.total()];
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match self {
            Model::Mlp { sizes, .. } => {
                for (i, w) in sizes.windows(2).enumerate() {
                    let bound = 1.0 / (w[0].max(1) as f32).sqrt();
                    for name in [format!("layers.{i}.weight"), format!("layers.{i}.bias")] {
                        let (offset, len) = slot(layout, &name);
                        for p in &mut params[offset..offset + len] {
                            *p = rng.random_range(-bound..bound);
                        }
                    }
                }
            }
            Model::Rosenbrock { .. } => {
                for (i, p) in params.iter_mut().enumerate() {
                    *p = if i % 2 == 0 { -1.2 } else { 1.0 };
                }
            }
            Model::Quadratic { .. } => params.fill(1.0),
            Model::Rastrigin { .. } => {
                for p in &mut params {
                    *p = rng.random_range(-5.12..5.12);
                }
            }
        }
        params
    }

    /// The loss on `batch` (ignored by the test functions) and, if `grads` is given, its exact
    /// gradient with respect to every parameter, written in `layout` order.
    pub fn loss_and_grad<F: Real>(
        &self,
        layout: &Layout,
        params: &[F],
        batch: Option<&Batch<F>>,
        grads: Option<&mut [F]>,
    ) -> F {
        self.loss_and_grad_in(&mut Workspace::default(), layout, params, batch, grads)
    }

    /// [`Model::loss_and_grad`], keeping its large intermediate arrays in `workspace` for the
    /// next call: a training step then allocates almost nothing.
    pub fn loss_and_grad_in<F: Real>(
        &self,
        workspace: &mut Workspace<F>,
        layout: &Layout,
        params: &[F],
        batch: Option<&Batch<F>>,
        grads: Option<&mut [F]>,
    ) -> F {
        match (self, batch) {
            (Model::Mlp { sizes, activation, loss }, Some(batch)) => {
                let net = Net { sizes, activation: *activation, loss: *loss };
                mlp(&net, layout, params, batch, grads, workspace, &mut |_, _| {})
            }
            (Model::Mlp { .. }, None) => F::nan(),
            (Model::Rosenbrock { .. }, _) => rosenbrock(params, grads),
            (Model::Quadratic { condition, .. }, _) => quadratic(*condition, params, grads),
            (Model::Rastrigin { .. }, _) => rastrigin(params, grads),
        }
    }
}

impl Model {
    /// The fraction of `batch`'s samples whose largest output is their class, for a model that
    /// classifies; `None` for values and the test functions.
    pub fn accuracy(&self, layout: &Layout, params: &[f32], batch: &Batch<f32>) -> Option<f32> {
        let (Model::Mlp { sizes, activation, loss }, Targets::Classes { labels, .. }) = (self, &batch.y) else { return None };
        let net = Net { sizes, activation: *activation, loss: *loss };
        let mut right = 0;
        mlp(&net, layout, params, batch, None, &mut Workspace::default(), &mut |start, out| {
            right += out
                .rows()
                .into_iter()
                .zip(&labels[start..])
                .filter(|(row, label)| {
                    let best = row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
                    best.0 == **label
                })
                .count();
        });
        Some(right as f32 / labels.len().max(1) as f32)
    }
}

/// The arrays of an MLP's forward and backward passes that grow with the batch, kept from one
/// step to the next. Freeing a step's worth of them lets malloc hand the top of its heap back
/// to the system, and the next step fault it in again page by page: over a third of a small
/// model's training time.
#[derive(Debug)]
pub struct Workspace<F> {
    /// By hidden layer: its pre-activation, then its activation (the next layer's input).
    pre: Vec<Array2<F>>,
    act: Vec<Array2<F>>,
    /// The output layer's values.
    out: Array2<F>,
    /// The gradient with respect to a layer's input, and to its pre-activation.
    da: Array2<F>,
    dz: Array2<F>,
}

impl<F: Real> Default for Workspace<F> {
    fn default() -> Self {
        Workspace { pre: Vec::new(), act: Vec::new(), out: Array2::zeros((0, 0)), da: Array2::zeros((0, 0)), dz: Array2::zeros((0, 0)) }
    }
}

/// `a` with the shape `shape`: itself if it has it (its values are to be overwritten), else a
/// new array.
fn shaped<F: Real>(a: &mut Array2<F>, shape: (usize, usize)) -> &mut Array2<F> {
    if a.dim() != shape {
        *a = Array2::zeros(shape);
    }
    a
}

/// The offset and length of the leaf `name` in the flat parameter buffer.
fn slot(layout: &Layout, name: &str) -> (usize, usize) {
    let mut offset = 0;
    for leaf in &layout.leaves {
        if leaf.name == name {
            return (offset, leaf.len());
        }
        offset += leaf.len();
    }
    (offset, 0)
}

fn c<F: Real>(x: f64) -> F {
    F::from(x).unwrap_or_else(F::nan)
}

/// `$body` with `$a` bound to `$activation` as a constant, one copy per activation: the element
/// loops inside then hold no `match`, and the compiler vectorizes them.
macro_rules! per_activation {
    ($activation:expr, $a:ident => $body:expr) => {
        match $activation {
            Activation::Relu => {
                let $a = Activation::Relu;
                $body
            }
            Activation::Tanh => {
                let $a = Activation::Tanh;
                $body
            }
            Activation::Gelu => {
                let $a = Activation::Gelu;
                $body
            }
        }
    };
}

fn activate<F: Real>(a: Activation, z: F) -> F {
    match a {
        Activation::Relu => z.max(F::zero()),
        Activation::Tanh => z.tanh(),
        Activation::Gelu => {
            let u = c::<F>(GELU_C) * (z + c::<F>(0.044715) * z * z * z);
            c::<F>(0.5) * z * (F::one() + u.tanh())
        }
    }
}

fn derivative<F: Real>(a: Activation, z: F) -> F {
    match a {
        Activation::Relu => {
            if z > F::zero() {
                F::one()
            } else {
                F::zero()
            }
        }
        Activation::Tanh => F::one() - z.tanh() * z.tanh(),
        Activation::Gelu => {
            let u = c::<F>(GELU_C) * (z + c::<F>(0.044715) * z * z * z);
            let t = u.tanh();
            let du = c::<F>(GELU_C) * (F::one() + c::<F>(3.0 * 0.044715) * z * z);
            c::<F>(0.5) * (F::one() + t) + c::<F>(0.5) * z * (F::one() - t * t) * du
        }
    }
}

/// sqrt(2 / pi)
const GELU_C: f64 = 0.797_884_560_802_865_4;

/// Rows an MLP works through at a time: a full batch of a large data set goes in chunks of
/// this many samples, so that the arrays of its forward and backward passes stay the size of a
/// chunk (a 2-million-row CSV would otherwise take half a gigabyte per hidden array).
const CHUNK_ROWS: usize = 8192;

/// An MLP's shape and what it computes.
struct Net<'a> {
    sizes: &'a [usize],
    activation: Activation,
    loss: Loss,
}

/// The loss of the MLP `net` on `batch` (the mean over its samples) and, with `grads`, its
/// gradient, worked through in chunks of [`CHUNK_ROWS`] samples; `outputs` sees each chunk's
/// outputs with the index of its first sample.
fn mlp<F: Real>(
    net: &Net,
    layout: &Layout,
    params: &[F],
    batch: &Batch<F>,
    mut grads: Option<&mut [F]>,
    ws: &mut Workspace<F>,
    outputs: &mut dyn FnMut(usize, &Array2<F>),
) -> F {
    let rows = batch.x.nrows();
    let width = net.sizes.last().copied().unwrap_or(0);
    // The loss is a mean over every sample (and output, for MSE): each chunk's sum and
    // gradient are divided by the whole batch's count.
    let count = match net.loss {
        Loss::Mse => rows * width,
        Loss::CrossEntropy => rows,
    };
    let count = c::<F>(count.max(1) as f64);
    let mut total = F::zero();
    let mut start = 0;
    loop {
        let end = (start + CHUNK_ROWS).min(rows);
        let chunk = batch.rows(start..end);
        total = total + mlp_chunk(net, layout, params, &chunk, grads.as_deref_mut(), start == 0, count, ws);
        outputs(start, &ws.out);
        if end >= rows {
            break;
        }
        start = end;
    }
    total / count
}

/// One chunk of [`mlp`]: returns the sum of its samples' losses, and with `grads`, writes
/// (`first`) or adds its part of the gradient, divided by `count`.
#[allow(clippy::too_many_arguments)]
fn mlp_chunk<F: Real>(
    net: &Net,
    layout: &Layout,
    params: &[F],
    batch: &Batch<F>,
    grads: Option<&mut [F]>,
    first: bool,
    count: F,
    ws: &mut Workspace<F>,
) -> F {
    let Net { sizes, activation, loss } = *net;
    let layers = sizes.len().saturating_sub(1);
    let slots: Vec<((usize, usize), (usize, usize))> = (0..layers)
        .map(|i| (slot(layout, &format!("layers.{i}.weight")), slot(layout, &format!("layers.{i}.bias"))))
        .collect();
    let weight = |i: usize| -> ArrayView2<F> {
        let ((offset, len), _) = slots[i];
        ArrayView2::from_shape((sizes[i + 1], sizes[i]), &params[offset..offset + len])
            .expect("the layout is made from these sizes")
    };
    let bias = |i: usize| -> ArrayView1<F> {
        let (_, (offset, len)) = slots[i];
        ArrayView1::from(&params[offset..offset + len])
    };
    let rows = batch.x.nrows();
    let hidden = layers.saturating_sub(1);
    ws.pre.resize_with(hidden, || Array2::zeros((0, 0)));
    ws.act.resize_with(hidden, || Array2::zeros((0, 0)));

    // Forward, keeping every layer's input and pre-activation for the backward pass. Layer
    // `i` reads the batch (i = 0) or the activation of hidden layer `i - 1`.
    for i in 0..layers {
        let (before, after) = ws.act.split_at_mut(i.min(hidden));
        let input = if i == 0 { batch.x.view() } else { before[i - 1].view() };
        let z = if i < hidden { shaped(&mut ws.pre[i], (rows, sizes[i + 1])) } else { shaped(&mut ws.out, (rows, sizes[i + 1])) };
        ndarray::linalg::general_mat_mul(F::one(), &input, &weight(i).t(), F::zero(), z);
        z.zip_mut_with(&bias(i), |z, &b| *z = *z + b);
        if i < hidden {
            let a = shaped(&mut after[0], (rows, sizes[i + 1]));
            let zip = ndarray::Zip::from(a).and(&ws.pre[i]);
            per_activation!(activation, f => zip.for_each(|a, &z| *a = activate(f, z)));
        }
    }
    let out = &ws.out;

    let (sum, dz) = match loss {
        Loss::Mse => {
            let target = dense_targets(&batch.y, out.ncols());
            let diff = out - &target;
            let sum = diff.iter().fold(F::zero(), |s, &d| s + d * d);
            (sum, diff.mapv(|d| c::<F>(2.0) * d / count))
        }
        Loss::CrossEntropy => {
            let target = dense_targets(&batch.y, out.ncols());
            let mut probs = out.clone();
            let mut total = F::zero();
            for (mut row, t) in probs.rows_mut().into_iter().zip(target.rows()) {
                let max = row.iter().fold(F::neg_infinity(), |m, &v| m.max(v));
                let log_sum = row.iter().fold(F::zero(), |s, &v| s + (v - max).exp()).ln() + max;
                for (p, &y) in row.iter_mut().zip(t.iter()) {
                    total = total - y * (*p - log_sum);
                    *p = (*p - log_sum).exp();
                }
            }
            // d/dz of -sum y log softmax(z) is softmax(z) * sum(y) - y.
            let sums = target.sum_axis(Axis(1)).insert_axis(Axis(1));
            let dz = (&probs * &sums - &target).mapv(|v| v / count);
            (total, dz)
        }
    };

    if let Some(grads) = grads {
        // The output layer's gradient is small (one column per output); the hidden layers'
        // go through the workspace.
        let mut dz_out = Some(dz);
        for i in (0..layers).rev() {
            let ((w_off, w_len), (b_off, b_len)) = slots[i];
            let dz = dz_out.as_ref().unwrap_or(&ws.dz);
            let input = if i == 0 { batch.x.view() } else { ws.act[i - 1].view() };
            put(&mut grads[w_off..w_off + w_len], dz.t().dot(&input).iter(), first);
            put(&mut grads[b_off..b_off + b_len], dz.sum_axis(Axis(0)).iter(), first);
            if i > 0 {
                let da = shaped(&mut ws.da, (rows, sizes[i]));
                ndarray::linalg::general_mat_mul(F::one(), dz, &weight(i), F::zero(), da);
                dz_out = None;
                let next = shaped(&mut ws.dz, (rows, sizes[i]));
                let zip = ndarray::Zip::from(next).and(&ws.da).and(&ws.pre[i - 1]);
                per_activation!(activation, f => zip.for_each(|d, &a, &z| *d = a * derivative(f, z)));
            }
        }
    }
    sum
}

/// Writes (`first`) or adds `from` to `to`: a chunk's part of a gradient.
fn put<'a, F: Real + 'a>(to: &mut [F], from: impl Iterator<Item = &'a F>, first: bool) {
    for (g, v) in to.iter_mut().zip(from) {
        *g = if first { *v } else { *g + *v };
    }
}

/// Targets as a dense matrix: values as they are, class labels one-hot.
fn dense_targets<F: Real>(y: &Targets<F>, width: usize) -> Array2<F> {
    match y {
        Targets::Values(v) => v.to_owned(),
        Targets::Classes { labels, count } => {
            let mut dense = Array2::zeros((labels.len(), width.max(*count)));
            for (row, &label) in labels.iter().enumerate() {
                if label < dense.ncols() {
                    dense[[row, label]] = F::one();
                }
            }
            dense
        }
    }
}

fn rosenbrock<F: Real>(x: &[F], grads: Option<&mut [F]>) -> F {
    let mut value = F::zero();
    let mut g = vec![F::zero(); x.len()];
    for i in 0..x.len().saturating_sub(1) {
        let a = x[i + 1] - x[i] * x[i];
        let b = F::one() - x[i];
        value = value + c::<F>(100.0) * a * a + b * b;
        g[i] = g[i] - c::<F>(400.0) * x[i] * a - c::<F>(2.0) * b;
        g[i + 1] = g[i + 1] + c::<F>(200.0) * a;
    }
    if let Some(grads) = grads {
        grads.copy_from_slice(&g);
    }
    value
}

fn quadratic<F: Real>(condition: f64, x: &[F], grads: Option<&mut [F]>) -> F {
    let n = x.len();
    let curvature = |i: usize| -> F {
        if n <= 1 { F::one() } else { c::<F>(condition.powf(i as f64 / (n - 1) as f64)) }
    };
    let value = x.iter().enumerate().fold(F::zero(), |s, (i, &v)| s + c::<F>(0.5) * curvature(i) * v * v);
    if let Some(grads) = grads {
        for (i, (g, &v)) in grads.iter_mut().zip(x).enumerate() {
            *g = curvature(i) * v;
        }
    }
    value
}

fn rastrigin<F: Real>(x: &[F], grads: Option<&mut [F]>) -> F {
    let two_pi = c::<F>(2.0 * std::f64::consts::PI);
    let ten = c::<F>(10.0);
    let value = x.iter().fold(ten * c::<F>(x.len() as f64), |s, &v| s + v * v - ten * (two_pi * v).cos());
    if let Some(grads) = grads {
        for (g, &v) in grads.iter_mut().zip(x) {
            *g = c::<F>(2.0) * v + ten * two_pi * (two_pi * v).sin();
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Central differences in f64 against the analytic gradient, on every parameter.
    fn check_gradient(model: &Model, batch: Option<&Batch<f64>>, seed: u64) {
        let layout = Layout::new(model.leaves()).expect("layout");
        let params: Vec<f64> = model.init(&layout, seed).iter().map(|&p| f64::from(p) + 0.013).collect();
        let mut grads = vec![0.0; params.len()];
        model.loss_and_grad(&layout, &params, batch, Some(&mut grads));
        let h = 1e-6;
        for i in 0..params.len() {
            let mut plus = params.clone();
            plus[i] += h;
            let mut minus = params.clone();
            minus[i] -= h;
            let numeric = (model.loss_and_grad(&layout, &plus, batch, None)
                - model.loss_and_grad(&layout, &minus, batch, None))
                / (2.0 * h);
            let tolerance = 1e-6 * (1.0 + numeric.abs().max(grads[i].abs()));
            assert!(
                (numeric - grads[i]).abs() <= tolerance,
                "{}: parameter {i}: analytic {} vs numeric {numeric}",
                model.describe(),
                grads[i]
            );
        }
    }

    fn inputs() -> Array2<f64> {
        Array2::from_shape_fn((5, 3), |(i, j)| ((i * 3 + j) as f64 * 0.37).sin())
    }

    #[test]
    fn mlp_gradients_match_finite_differences() {
        let x = inputs();
        let values = Array2::from_shape_fn((5, 2), |(i, j)| ((i + 2 * j) as f64 * 0.5).cos());
        let labels = [0usize, 2, 1, 1, 0];
        for activation in [Activation::Relu, Activation::Tanh, Activation::Gelu] {
            for loss in [Loss::Mse, Loss::CrossEntropy] {
                let model = Model::Mlp { sizes: vec![3, 4, 3, 2], activation, loss };
                let batch = Batch { x: x.view(), y: Targets::Values(values.view()) };
                check_gradient(&model, Some(&batch), 7);
                let model = Model::Mlp { sizes: vec![3, 4, 3], activation, loss };
                let batch = Batch { x: x.view(), y: Targets::Classes { labels: &labels, count: 3 } };
                check_gradient(&model, Some(&batch), 8);
            }
        }
    }

    #[test]
    fn a_reused_workspace_gives_the_very_numbers_of_a_fresh_one_whatever_the_batch_size() {
        let model = Model::Mlp { sizes: vec![3, 4, 5, 2], activation: Activation::Tanh, loss: Loss::Mse };
        let layout = Layout::new(model.leaves()).expect("layout");
        let params = model.init(&layout, 3);
        let mut workspace = Workspace::default();
        for rows in [5, 2, 5, 7, 1] {
            let x = Array2::from_shape_fn((rows, 3), |(i, j)| ((i * 3 + j) as f32 * 0.37).sin());
            let y = Array2::from_shape_fn((rows, 2), |(i, j)| ((i + 2 * j) as f32 * 0.5).cos());
            let batch = Batch { x: x.view(), y: Targets::Values(y.view()) };
            let (mut fresh, mut reused) = (vec![0.0f32; params.len()], vec![0.0f32; params.len()]);
            let a = model.loss_and_grad(&layout, &params, Some(&batch), Some(&mut fresh));
            let b = model.loss_and_grad_in(&mut workspace, &layout, &params, Some(&batch), Some(&mut reused));
            assert_eq!(a.to_bits(), b.to_bits(), "loss, {rows} rows");
            assert!(fresh.iter().zip(&reused).all(|(x, y)| x.to_bits() == y.to_bits()), "gradients, {rows} rows");
            assert!(fresh.iter().any(|&g| g != 0.0), "{rows} rows: no gradient at all");
        }
    }

    #[test]
    fn a_batch_larger_than_a_chunk_gives_the_mean_over_every_sample() {
        // 2.5 chunks, computed in chunks, against the same samples as three batches of their own
        // (each a chunk or less), weighted by their sizes; and the accuracy over all of them.
        let rows = 2 * CHUNK_ROWS + CHUNK_ROWS / 2;
        let x = Array2::from_shape_fn((rows, 3), |(i, j)| ((i * 3 + j) as f64 * 0.37).sin());
        let labels: Vec<usize> = (0..rows).map(|i| (i * 7 / 3) % 3).collect();
        let model = Model::Mlp { sizes: vec![3, 5, 3], activation: Activation::Tanh, loss: Loss::CrossEntropy };
        let layout = Layout::new(model.leaves()).expect("layout");
        let params: Vec<f64> = model.init(&layout, 4).iter().map(|&p| f64::from(p)).collect();
        let whole = Batch { x: x.view(), y: Targets::Classes { labels: &labels, count: 3 } };
        let mut grads = vec![0.0; params.len()];
        let loss = model.loss_and_grad(&layout, &params, Some(&whole), Some(&mut grads));
        let (mut expected_loss, mut expected) = (0.0, vec![0.0; params.len()]);
        for part in [0..CHUNK_ROWS, CHUNK_ROWS..2 * CHUNK_ROWS, 2 * CHUNK_ROWS..rows] {
            let weight = part.len() as f64 / rows as f64;
            let mut g = vec![0.0; params.len()];
            expected_loss += weight * model.loss_and_grad(&layout, &params, Some(&whole.rows(part)), Some(&mut g));
            expected.iter_mut().zip(&g).for_each(|(e, g)| *e += weight * g);
        }
        assert!((loss - expected_loss).abs() < 1e-12, "{loss} vs {expected_loss}");
        assert!(grads.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-12), "{grads:?} vs {expected:?}");
        let params32: Vec<f32> = params.iter().map(|&p| p as f32).collect();
        let x32 = x.mapv(|v| v as f32);
        let batch32 = Batch { x: x32.view(), y: Targets::Classes { labels: &labels, count: 3 } };
        let accuracy = model.accuracy(&layout, &params32, &batch32).expect("classes");
        let right: f32 = [0..CHUNK_ROWS, CHUNK_ROWS..2 * CHUNK_ROWS, 2 * CHUNK_ROWS..rows]
            .into_iter()
            .map(|part| model.accuracy(&layout, &params32, &batch32.rows(part.clone())).expect("classes") * part.len() as f32)
            .sum();
        assert!((accuracy - right / rows as f32).abs() < 1e-6, "{accuracy} vs {}", right / rows as f32);
    }

    #[test]
    fn linear_and_logistic_regression_gradients_match_finite_differences() {
        let x = inputs();
        let values = Array2::from_shape_fn((5, 1), |(i, _)| i as f64 * 0.1);
        let linear = Model::Mlp { sizes: vec![3, 1], activation: Activation::Relu, loss: Loss::Mse };
        check_gradient(&linear, Some(&Batch { x: x.view(), y: Targets::Values(values.view()) }), 1);
        let labels = [0usize, 1, 1, 0, 1];
        let logistic = Model::Mlp { sizes: vec![3, 2], activation: Activation::Relu, loss: Loss::CrossEntropy };
        check_gradient(&logistic, Some(&Batch { x: x.view(), y: Targets::Classes { labels: &labels, count: 2 } }), 2);
    }

    #[test]
    fn test_function_gradients_match_finite_differences() {
        check_gradient(&Model::Rosenbrock { dim: 5 }, None, 0);
        check_gradient(&Model::Quadratic { dim: 6, condition: 1e3 }, None, 0);
        check_gradient(&Model::Rastrigin { dim: 4 }, None, 3);
    }

    #[test]
    fn test_functions_have_their_known_minima() {
        let layout = Layout::new(Model::Rosenbrock { dim: 4 }.leaves()).expect("layout");
        assert_eq!(Model::Rosenbrock { dim: 4 }.loss_and_grad::<f64>(&layout, &[1.0; 4], None, None), 0.0);
        assert_eq!(Model::Rastrigin { dim: 4 }.loss_and_grad::<f64>(&layout, &[0.0; 4], None, None), 0.0);
        let start = Model::Rosenbrock { dim: 2 }.loss_and_grad::<f64>(&layout, &[-1.2, 1.0], None, None);
        assert!((start - 24.2).abs() < 1e-12, "{start}");
    }

    #[test]
    fn leaves_are_named_as_in_pytorch() {
        let model = Model::Mlp { sizes: vec![2, 64, 3], activation: Activation::Relu, loss: Loss::Mse };
        let names: Vec<String> = model.leaves().into_iter().map(|l| format!("{}{:?}", l.name, l.shape)).collect();
        assert_eq!(names, ["layers.0.weight[64, 2]", "layers.0.bias[64]", "layers.1.weight[3, 64]", "layers.1.bias[3]"]);
    }
}
