//! Training data: seeded synthetic sets and a user's CSV, a seeded train/validation split, and
//! mini-batches whose order depends only on the seed and the step (so a resumed run sees the
//! same batches as an uninterrupted one).

use std::path::Path;

use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::models::{Batch, Targets};

/// What the samples are labelled with.
#[derive(Clone, Debug, PartialEq)]
pub enum Labels {
    /// One row of values per sample (regression).
    Values(Array2<f32>),
    /// One class per sample, out of `count` (classification).
    Classes { labels: Vec<usize>, count: usize },
}

/// Samples: inputs, one row each, and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub x: Array2<f32>,
    pub y: Labels,
}

/// The built-in synthetic sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synthetic {
    /// The article's regression: 2 inputs in [-1, 1], 3 smooth targets plus a little noise.
    Regression,
    /// Two interleaving half circles, 2 classes.
    Moons,
    /// Three interleaved spiral arms, 3 classes.
    Spirals,
    /// Four Gaussian blobs, 4 classes.
    Blobs,
}

impl Synthetic {
    /// The names `--data` accepts.
    pub const NAMES: [&'static str; 4] = ["regression", "moons", "spirals", "blobs"];

    pub fn from_name(name: &str) -> Option<Synthetic> {
        match name {
            "regression" => Some(Synthetic::Regression),
            "moons" => Some(Synthetic::Moons),
            "spirals" => Some(Synthetic::Spirals),
            "blobs" => Some(Synthetic::Blobs),
            _ => None,
        }
    }
}

impl Dataset {
    /// `samples` samples of a synthetic set, the same for the same seed.
    pub fn synthetic(kind: Synthetic, samples: usize, seed: u64) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Array2::zeros((samples, 2));
        match kind {
            Synthetic::Regression => {
                let mut y = Array2::zeros((samples, 3));
                for i in 0..samples {
                    let (a, b): (f32, f32) = (rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0));
                    x[[i, 0]] = a;
                    x[[i, 1]] = b;
                    y[[i, 0]] = (std::f32::consts::PI * a).sin() + normal(&mut rng, 0.05);
                    y[[i, 1]] = a * b + normal(&mut rng, 0.05);
                    y[[i, 2]] = (a - b).tanh() + 0.5 * b * b + normal(&mut rng, 0.05);
                }
                Dataset { x, y: Labels::Values(y) }
            }
            Synthetic::Moons => {
                let mut labels = Vec::with_capacity(samples);
                for i in 0..samples {
                    let class = i % 2;
                    let t: f32 = rng.random_range(0.0..std::f32::consts::PI);
                    let (cx, cy) = if class == 0 { (t.cos(), t.sin()) } else { (1.0 - t.cos(), 0.5 - t.sin()) };
                    x[[i, 0]] = cx + normal(&mut rng, 0.1);
                    x[[i, 1]] = cy + normal(&mut rng, 0.1);
                    labels.push(class);
                }
                Dataset { x, y: Labels::Classes { labels, count: 2 } }
            }
            Synthetic::Spirals => {
                let mut labels = Vec::with_capacity(samples);
                for i in 0..samples {
                    let class = i % 3;
                    let r: f32 = rng.random_range(0.05..1.0);
                    let angle = 4.0 * r + class as f32 * 2.0 * std::f32::consts::PI / 3.0 + normal(&mut rng, 0.2);
                    x[[i, 0]] = r * angle.cos();
                    x[[i, 1]] = r * angle.sin();
                    labels.push(class);
                }
                Dataset { x, y: Labels::Classes { labels, count: 3 } }
            }
            Synthetic::Blobs => {
                let centres = [(-2.0, -2.0), (2.0, -2.0), (-2.0, 2.0), (2.0, 2.0)];
                let mut labels = Vec::with_capacity(samples);
                for i in 0..samples {
                    let class = i % centres.len();
                    x[[i, 0]] = centres[class].0 + normal(&mut rng, 1.0);
                    x[[i, 1]] = centres[class].1 + normal(&mut rng, 1.0);
                    labels.push(class);
                }
                Dataset { x, y: Labels::Classes { labels, count: centres.len() } }
            }
        }
    }

    /// Reads a CSV file with a header row: the `targets` columns are labels, every other column
    /// an input. With `classes`, the one target column holds class indices 0, 1, 2, ...
    pub fn from_csv(path: &Path, targets: &[String], classes: bool) -> Result<Dataset, String> {
        let name = path.display().to_string();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(|e| csv_error(&name, &e))?;
        let header: Vec<String> =
            reader.headers().map_err(|e| csv_error(&name, &e))?.iter().map(str::to_string).collect();
        if header.iter().all(String::is_empty) {
            return Err(format!("{name}: the file is empty; it needs a header row naming the columns"));
        }
        let mut target_columns = Vec::new();
        for t in targets {
            match header.iter().position(|h| h == t) {
                Some(i) => target_columns.push(i),
                None => {
                    return Err(format!("{name}: no column `{t}`; the columns are {}", quoted(&header)));
                }
            }
        }
        if target_columns.is_empty() {
            return Err(format!("{name}: name the target column(s) with `--target`; the columns are {}", quoted(&header)));
        }
        if classes && target_columns.len() != 1 {
            return Err(format!("{name}: classification takes one target column of class indices, found {}", targets.len()));
        }
        let input_columns: Vec<usize> = (0..header.len()).filter(|i| !target_columns.contains(i)).collect();
        if input_columns.is_empty() {
            return Err(format!("{name}: every column is a target; at least one input column is needed"));
        }

        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        let mut rows = 0;
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(&name, &e))?;
            let line = record.position().map_or(rows + 2, |p| p.line() as usize);
            let number = |i: usize| -> Result<f32, String> {
                let field = record.get(i).unwrap_or("");
                let text = || shortened(field);
                match field.parse::<f32>() {
                    Ok(v) if v.is_finite() => Ok(v),
                    Ok(_) => Err(format!("{name}:{line}: column `{}` ({}) is `{}`, not a finite number", header[i], i + 1, text())),
                    Err(_) => Err(format!("{name}:{line}: column `{}` ({}) is `{}`, not a number", header[i], i + 1, text())),
                }
            };
            for &i in &input_columns {
                inputs.push(number(i)?);
            }
            for &i in &target_columns {
                let v = number(i)?;
                if classes && (v < 0.0 || v.fract() != 0.0 || v > 1e6) {
                    return Err(format!(
                        "{name}:{line}: column `{}` ({}) is `{v}`, but a class is an index 0, 1, 2, ...",
                        header[i],
                        i + 1
                    ));
                }
                outputs.push(v);
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(format!("{name}: no data rows after the header"));
        }
        let x = Array2::from_shape_vec((rows, input_columns.len()), inputs).map_err(|e| format!("{name}: {e}"))?;
        let y = if classes {
            let labels: Vec<usize> = outputs.iter().map(|&v| v as usize).collect();
            let count = labels.iter().max().map_or(1, |m| m + 1).max(2);
            Labels::Classes { labels, count }
        } else {
            Labels::Values(Array2::from_shape_vec((rows, target_columns.len()), outputs).map_err(|e| format!("{name}: {e}"))?)
        };
        Ok(Dataset { x, y })
    }

    pub fn len(&self) -> usize {
        self.x.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The checksum `h` continued over the samples' bytes (inputs, then labels), without
    /// gathering them ([`crate::fsio::checksum_more`]).
    pub fn checksum_more(&self, h: u64) -> u64 {
        use crate::fsio::checksum_more;
        let h = self.x.iter().fold(h, |h, v| checksum_more(h, &v.to_le_bytes()));
        match &self.y {
            Labels::Values(v) => v.iter().fold(h, |h, v| checksum_more(h, &v.to_le_bytes())),
            Labels::Classes { labels, count } => {
                let h = labels.iter().fold(h, |h, l| checksum_more(h, &(*l as u64).to_le_bytes()));
                checksum_more(h, &(*count as u64).to_le_bytes())
            }
        }
    }

    /// Number of input columns.
    pub fn inputs(&self) -> usize {
        self.x.ncols()
    }

    /// Number of outputs a model needs: target columns, or classes.
    pub fn outputs(&self) -> usize {
        match &self.y {
            Labels::Values(v) => v.ncols(),
            Labels::Classes { count, .. } => *count,
        }
    }

    pub fn is_classification(&self) -> bool {
        matches!(self.y, Labels::Classes { .. })
    }

    /// The samples at `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Dataset {
        let y = match &self.y {
            Labels::Values(v) => Labels::Values(v.select(Axis(0), rows)),
            Labels::Classes { labels, count } => {
                Labels::Classes { labels: rows.iter().map(|&r| labels[r]).collect(), count: *count }
            }
        };
        Dataset { x: self.x.select(Axis(0), rows), y }
    }

    /// A seeded shuffle, then the last `fraction` of the samples (at least one if any are asked
    /// for) become the validation set.
    /// Without a validation set, the samples are the training set as they are (not a copy).
    pub fn split(self, fraction: f64, seed: u64) -> (Dataset, Option<Dataset>) {
        let wanted = (self.len() as f64 * fraction).round() as usize;
        let held = if fraction > 0.0 { wanted.max(1).min(self.len().saturating_sub(1)) } else { 0 };
        if held == 0 {
            return (self, None);
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ SPLIT_SEED));
        let (train, val) = order.split_at(self.len() - held);
        (self.select(train), if val.is_empty() { None } else { Some(self.select(val)) })
    }

    /// The whole set as one batch.
    pub fn batch(&self) -> Batch<'_, f32> {
        let y = match &self.y {
            Labels::Values(v) => Targets::Values(v.view()),
            Labels::Classes { labels, count } => Targets::Classes { labels, count: *count },
        };
        Batch { x: self.x.view(), y }
    }
}

/// Mixed into the user's seed for the split, so that it differs from the batches' shuffle.
const SPLIT_SEED: u64 = 0x5eed_0001;

/// Mini-batch order: each epoch a permutation seeded by the seed and the epoch number, cut
/// into batches; the last, shorter batch of an epoch is kept.
#[derive(Clone, Debug)]
pub struct Batches {
    samples: usize,
    size: usize,
    seed: u64,
    epoch: Option<(u64, Vec<usize>)>,
}

impl Batches {
    /// `size` 0 means full batches.
    pub fn new(samples: usize, size: usize, seed: u64) -> Batches {
        let size = if size == 0 { samples } else { size.min(samples) }.max(1);
        Batches { samples, size, seed, epoch: None }
    }

    /// Batches per epoch.
    pub fn per_epoch(&self) -> u64 {
        self.samples.div_ceil(self.size).max(1) as u64
    }

    /// The sample indices of the batch of `step` (counted from 0); `None` when every batch is
    /// the whole set, which is then used as it is: a full batch needs no shuffle (its mean
    /// loss and gradient are the same in any order, rounding aside) and no copy.
    pub fn rows(&mut self, step: u64) -> Option<&[usize]> {
        if self.size >= self.samples {
            return None;
        }
        let epoch = step / self.per_epoch();
        let k = (step % self.per_epoch()) as usize;
        if self.epoch.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut order: Vec<usize> = (0..self.samples).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ epoch);
            order.shuffle(&mut rng);
            self.epoch = Some((epoch, order));
        }
        let order = self.epoch.as_ref().map_or(&[][..], |(_, o)| o.as_slice());
        let start = (k * self.size).min(order.len());
        Some(&order[start..(start + self.size).min(order.len())])
    }
}

/// A normal sample with standard deviation `sd`.
fn normal(rng: &mut ChaCha8Rng, sd: f32) -> f32 {
    let z: f32 = StandardNormal.sample(rng);
    sd * z
}

fn csv_error(name: &str, e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound => format!("`{name}`: no such file"),
        csv::ErrorKind::Io(io) => format!("cannot read `{name}`: {io}"),
        csv::ErrorKind::Utf8 { pos, .. } => {
            format!("{name}:{}: not UTF-8 text", pos.as_ref().map_or(0, |p| p.line()))
        }
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => format!(
            "{name}:{}: this row has {len} fields, but the header has {expected_len}",
            pos.as_ref().map_or(0, |p| p.line())
        ),
        _ => format!("{name}: {e}"),
    }
}

/// A field as a message shows it: whole if short, else its start and its length (a bad field
/// may be megabytes long).
fn shortened(field: &str) -> String {
    const SHOWN: usize = 40;
    match field.char_indices().nth(SHOWN) {
        None => field.to_string(),
        Some((end, _)) => format!("{}... ({} bytes)", &field[..end], field.len()),
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_sets_are_seeded() {
        for name in Synthetic::NAMES {
            let kind = Synthetic::from_name(name).expect("known");
            assert_eq!(Dataset::synthetic(kind, 50, 3), Dataset::synthetic(kind, 50, 3));
            assert_ne!(Dataset::synthetic(kind, 50, 3), Dataset::synthetic(kind, 50, 4));
        }
    }

    #[test]
    fn split_keeps_every_sample_once() {
        let data = Dataset::synthetic(Synthetic::Moons, 10, 0);
        let (train, val) = data.clone().split(0.2, 1);
        let val = val.expect("a validation set");
        assert_eq!((train.len(), val.len()), (8, 2));
        // Without validation, the samples as they are.
        let (all, none) = data.clone().split(0.0, 1);
        assert_eq!((all, none), (data, None));
    }

    #[test]
    fn batches_cover_each_epoch_and_depend_only_on_the_step() {
        let mut batches = Batches::new(10, 4, 9);
        assert_eq!(batches.per_epoch(), 3);
        let mut seen: Vec<usize> = (0..3).flat_map(|s| batches.rows(s).unwrap_or_default().to_vec()).collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let later = batches.rows(7).map(<[usize]>::to_vec);
        let mut fresh = Batches::new(10, 4, 9);
        assert_eq!(fresh.rows(7).map(<[usize]>::to_vec), later);
        assert!(later.is_some());
    }

    #[test]
    fn a_full_batch_is_the_whole_set_as_it_is() {
        for size in [0, 10, 50] {
            let mut batches = Batches::new(10, size, 9);
            assert_eq!(batches.per_epoch(), 1);
            assert_eq!(batches.rows(3), None);
        }
    }
}
