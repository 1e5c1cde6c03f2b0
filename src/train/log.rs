//! What a run leaves behind: a per-step log (CSV or JSON lines) of the loss, the validation
//! loss, the learning rate and every named uniform, and a plot of loss and learning rate
//! against step.

use std::io::Write;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::{Record, learning_rate};

/// A per-step log file; the format follows the extension (`.jsonl` or `.json`, else CSV).
pub struct Log {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    json: bool,
    columns: Option<Vec<String>>,
}

impl Log {
    pub fn create(path: &Path) -> Result<Log, String> {
        let file = std::fs::File::create(path).map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
        let json = matches!(path.extension().and_then(|e| e.to_str()), Some("jsonl" | "json"));
        Ok(Log { path: path.to_path_buf(), out: std::io::BufWriter::new(file), json, columns: None })
    }

    /// Appends one step.
    pub fn write(&mut self, record: &Record) -> Result<(), String> {
        let lr = learning_rate(&record.uniforms);
        let result = if self.json {
            let mut row = serde_json::Map::new();
            row.insert("step".into(), record.step.into());
            row.insert("loss".into(), number(f64::from(record.loss)));
            row.insert("val_loss".into(), record.validation.map_or(serde_json::Value::Null, |v| number(f64::from(v))));
            row.insert("lr".into(), lr.map_or(serde_json::Value::Null, number));
            for (name, v) in &record.uniforms {
                row.insert(name.clone(), number(*v));
            }
            writeln!(self.out, "{}", serde_json::Value::Object(row))
        } else {
            let mut line = String::new();
            if self.columns.is_none() {
                let names: Vec<String> = record.uniforms.iter().map(|(n, _)| n.clone()).collect();
                let header: Vec<String> =
                    ["step", "loss", "val_loss", "lr"].iter().map(|s| s.to_string()).chain(names.iter().map(|c| csv_field(c))).collect();
                line.push_str(&header.join(","));
                line.push('\n');
                self.columns = Some(names);
            }
            let columns = self.columns.as_deref().unwrap_or_default();
            let mut fields = vec![
                record.step.to_string(),
                record.loss.to_string(),
                record.validation.map_or(String::new(), |v| v.to_string()),
                lr.map_or(String::new(), |v| v.to_string()),
            ];
            for c in columns.iter() {
                let v = record.uniforms.iter().find(|(n, _)| n == c).map(|(_, v)| v.to_string());
                fields.push(v.unwrap_or_default());
            }
            line.push_str(&fields.join(","));
            writeln!(self.out, "{line}")
        };
        result.map_err(|e| format!("cannot write `{}`: {e}", self.path.display()))
    }

    pub fn finish(mut self) -> Result<(), String> {
        self.out.flush().map_err(|e| format!("cannot write `{}`: {e}", self.path.display()))
    }
}

fn number(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or_else(|| serde_json::Value::String(v.to_string()), serde_json::Value::Number)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// One point of the plot.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    pub step: u64,
    pub loss: f32,
    pub validation: Option<f32>,
    pub lr: Option<f64>,
}

/// What to draw.
#[derive(Clone, Copy, Debug)]
pub enum Figure<'a> {
    /// Loss (training and validation, log scale) above learning rate, against step.
    Training(&'a [Point]),
    /// A schedule's value against step.
    Schedule(&'a [(u64, f64)]),
}

/// Draws `figure` as SVG or PNG (by the extension of `path`).
pub fn plot(path: &Path, title: &str, figure: Figure) -> Result<(), String> {
    let shown = path.display().to_string();
    let size = (900, 640);
    match check_plot_path(path)? {
        "svg" => {
            register_system_font()?;
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                draw(&root, title, figure).map_err(|e| format!("cannot draw `{shown}`: {e}"))?;
                root.present().map_err(|e| format!("cannot draw `{shown}`: {e}"))?;
            }
            super::write_atomically(path, svg.as_bytes())
        }
        _ => {
            register_system_font()?;
            let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            let tmp = path.with_file_name(format!(".{file_name}.tmp-{}.png", std::process::id()));
            let drawn = (|| {
                let root = BitMapBackend::new(&tmp, size).into_drawing_area();
                draw(&root, title, figure).map_err(|e| e.to_string())?;
                root.present().map_err(|e| e.to_string())
            })();
            match drawn.and_then(|()| std::fs::rename(&tmp, path).map_err(|e| e.to_string())) {
                Ok(()) => Ok(()),
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(format!("cannot draw `{shown}`: {e}"))
                }
            }
        }
    }
}

/// The format of a plot file, `svg` or `png`, from its extension; checked before a run so that
/// a typo does not cost the run.
pub fn check_plot_path(path: &Path) -> Result<&'static str, String> {
    let shown = path.display();
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => Ok("svg"),
        Some("png") => Ok("png"),
        Some(other) => Err(format!("`{shown}`: a plot is `.svg` or `.png`, not `.{other}`")),
        None => Err(format!("`{shown}`: name the plot `FILE.svg` or `FILE.png`")),
    }
}

/// Fonts a plot's labels are measured (SVG) or drawn (PNG) with, in order of preference; optc
/// ships none, so it takes one installed on the machine.
const FONT_FILES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Folders searched for any TrueType font when none of [`FONT_FILES`] exists.
const FONT_FOLDERS: &[&str] = &["/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts"];

/// Every `.ttf` under `dir`, sorted, a few levels deep.
fn fonts_under(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() && depth > 0 {
            fonts_under(&path, depth - 1, out);
        } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("ttf")) {
            out.push(path);
        }
    }
}

fn register_system_font() -> Result<(), String> {
    static REGISTERED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let mut candidates: Vec<PathBuf> = FONT_FILES.iter().map(PathBuf::from).collect();
            for folder in FONT_FOLDERS {
                fonts_under(Path::new(folder), 4, &mut candidates);
            }
            for file in candidates {
                if let Ok(bytes) = std::fs::read(&file) {
                    // The font lives as long as the process, as plotters requires.
                    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                    if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                        return Ok(());
                    }
                }
            }
            Err("drawing a plot's labels needs a TrueType font (such as DejaVu Sans, Debian's `fonts-dejavu-core`), and none was found".into())
        })
        .clone()
}

type Area<DB> = DrawingArea<DB, plotters::coord::Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;

fn draw<DB: DrawingBackend>(root: &Area<DB>, title: &str, figure: Figure) -> Drawn
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    match figure {
        Figure::Training(points) => draw_training(&root, points),
        Figure::Schedule(values) => draw_schedule(&root, values),
    }
}

fn draw_schedule<DB: DrawingBackend>(root: &Area<DB>, values: &[(u64, f64)]) -> Drawn
where
    DB::ErrorType: 'static,
{
    let last = values.last().map_or(1, |(s, _)| (*s).max(1));
    let finite = values.iter().map(|(_, v)| *v).filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 1.0 };
    let mut chart = ChartBuilder::on(root)
        .margin(10)
        .margin_right(30)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0u64..last, (lo - if lo < 0.0 { pad } else { 0.0 })..hi + pad)?;
    chart.configure_mesh().y_desc("value").x_desc("step").draw()?;
    chart.draw_series(LineSeries::new(values.iter().copied().filter(|(_, v)| v.is_finite()), &BLUE))?;
    Ok(())
}

/// At most about this many points per line: more do not show, and make big SVG files.
const MAX_POINTS: usize = 1500;

/// Every `stride`-th point, the last, and every point where the learning rate changes (so its
/// steps stay sharp).
fn thin(points: &[Point]) -> Vec<Point> {
    let stride = points.len().div_ceil(MAX_POINTS).max(1);
    points
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            i % stride == 0 || *i + 1 == points.len() || *i > 0 && points[i - 1].lr != p.lr
        })
        .map(|(_, p)| *p)
        .collect()
}

fn draw_training<DB: DrawingBackend>(root: &Area<DB>, points: &[Point]) -> Drawn
where
    DB::ErrorType: 'static,
{
    let validation: Vec<(u64, f64)> =
        points.iter().filter_map(|p| p.validation.map(|v| (p.step, f64::from(v)))).collect();
    let validation: Vec<(u64, f64)> =
        validation.iter().step_by(validation.len().div_ceil(MAX_POINTS).max(1)).copied().collect();
    let points = &thin(points);
    let (top, bottom) = root.split_vertically(400);
    let last = points.last().map_or(1, |p| p.step.max(1));

    let positive = |v: f64| v.is_finite() && v > 0.0;
    let losses: Vec<f64> = points
        .iter()
        .map(|p| f64::from(p.loss))
        .chain(validation.iter().map(|(_, v)| *v))
        .filter(|v| positive(*v))
        .collect();
    let lo = losses.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = losses.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo * 0.9, hi * 1.1) } else { (1e-3, 1.0) };
    let mut chart = ChartBuilder::on(&top)
        .margin(10)
        .margin_right(30)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0u64..last, (lo..hi).log_scale())?;
    chart.configure_mesh().y_desc("loss").x_desc("step").draw()?;
    chart
        .draw_series(LineSeries::new(
            points.iter().filter(|p| positive(f64::from(p.loss))).map(|p| (p.step, f64::from(p.loss))),
            &BLUE,
        ))?
        .label("training loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(validation.iter().copied().filter(|(_, v)| positive(*v)), &RED))?
        .label("validation loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;

    let rates: Vec<(u64, f64)> = points.iter().filter_map(|p| p.lr.map(|lr| (p.step, lr))).collect();
    let top_lr = rates.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(&bottom)
        .margin(10)
        .margin_right(30)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0u64..last, 0.0..if top_lr > 0.0 { top_lr * 1.1 } else { 1.0 })?;
    chart.configure_mesh().y_desc("learning rate").x_desc("step").draw()?;
    chart.draw_series(LineSeries::new(rates, &GREEN.mix(0.9)))?;
    Ok(())
}
