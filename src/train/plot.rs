//! Plots of a run (loss above learning rate, against step) and of a schedule, as SVG or PNG,
//! written through [`crate::fsio`]. Made to be read at a glance: a log loss axis labelled at
//! 1, 2 and 5 of each decade, the legend beside the data rather than over it, only the series
//! and panels that have data, colours that stand out on white, and an optional smoothed
//! training loss over the faint raw one for mini-batch runs.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

/// One step of a run, as plotted.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub step: u64,
    pub loss: f32,
    pub validation: Option<f32>,
    /// The effective learning rate of each group, in the order of [`Figure::Training`]'s names.
    pub lrs: Vec<Option<f64>>,
}

/// What to draw.
#[derive(Clone, Copy, Debug)]
pub enum Figure<'a> {
    /// Loss (training and validation) above the learning rate of each group, against step;
    /// `smoothing` in [0, 1) is the weight of TensorBoard's smoothing of the training loss
    /// (0: none).
    Training { points: &'a [Point], groups: &'a [String], smoothing: f64 },
    /// A schedule's value against step.
    Schedule(&'a [(u64, f64)]),
}

/// Draws `figure` as SVG or PNG (by the extension of `path`).
pub fn plot(path: &Path, title: &str, figure: Figure) -> Result<(), String> {
    let shown = path.display().to_string();
    let size = (960, 640);
    let format = check_path(path)?;
    register_system_font()?;
    let bytes = match format {
        "svg" => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                draw(&root, title, figure).map_err(|e| format!("cannot draw `{shown}`: {e}"))?;
                root.present().map_err(|e| format!("cannot draw `{shown}`: {e}"))?;
            }
            svg.into_bytes()
        }
        _ => {
            let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                draw(&root, title, figure).map_err(|e| format!("cannot draw `{shown}`: {e}"))?;
                root.present().map_err(|e| format!("cannot draw `{shown}`: {e}"))?;
            }
            encode_png(&rgb, size).map_err(|e| format!("cannot draw `{shown}`: {e}"))?
        }
    };
    crate::fsio::write(path, &bytes).map_err(|e| e.to_string())
}

/// The format of a plot file, `svg` or `png`, from its extension, once its path is known to be
/// writable: checked before a run so that a typo does not cost the run.
pub fn check_path(path: &Path) -> Result<&'static str, String> {
    let shown = path.display();
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => "svg",
        Some("png") => "png",
        Some(other) => return Err(format!("`{shown}`: a plot is `.svg` or `.png`, not `.{other}`")),
        None => return Err(format!("`{shown}`: name the plot `FILE.svg` or `FILE.png`")),
    };
    crate::fsio::check(path).map_err(|e| e.to_string())?;
    Ok(format)
}

fn encode_png(rgb: &[u8], (width, height): (u32, u32)) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(rgb)?;
    Ok(out)
}

/// Okabe and Ito's colours, told apart by colour-blind readers too; dark enough on white.
const PALETTE: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
];
const TRAINING: RGBColor = PALETTE[0];
const VALIDATION: RGBColor = PALETTE[1];

/// Width of the legend beside each panel.
const LEGEND: u32 = 210;

type Area<DB> = DrawingArea<DB, Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;

fn draw<DB: DrawingBackend>(root: &Area<DB>, title: &str, figure: Figure) -> Drawn
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    match figure {
        Figure::Training { points, groups, smoothing } => draw_training(&root, points, groups, smoothing),
        Figure::Schedule(values) => {
            let line = Line { label: "value".into(), color: TRAINING, width: 2, points: finite(values.iter().copied()) };
            draw_panel(&root, "value", Scale::Linear, &[line])
        }
    }
}

/// A line of a panel and its legend entry.
struct Line {
    label: String,
    color: RGBColor,
    width: u32,
    points: Vec<(u64, f64)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    Log,
}

fn draw_training<DB: DrawingBackend>(root: &Area<DB>, points: &[Point], groups: &[String], smoothing: f64) -> Drawn
where
    DB::ErrorType: 'static,
{
    let raw: Vec<(u64, f64)> = points.iter().map(|p| (p.step, f64::from(p.loss))).collect();
    let mut losses = Vec::new();
    if smoothing > 0.0 {
        let faint = RGBColor(160, 190, 220);
        losses.push(Line { label: "training loss".into(), color: faint, width: 1, points: finite(thin(&raw)) });
        let smooth = smoothed(&raw, smoothing);
        losses.push(Line { label: format!("smoothed ({smoothing})"), color: TRAINING, width: 2, points: finite(thin(&smooth)) });
    } else {
        losses.push(Line { label: "training loss".into(), color: TRAINING, width: 2, points: finite(thin(&raw)) });
    }
    let validation: Vec<(u64, f64)> = points.iter().filter_map(|p| p.validation.map(|v| (p.step, f64::from(v)))).collect();
    if !validation.is_empty() {
        losses.push(Line { label: "validation loss".into(), color: VALIDATION, width: 2, points: finite(thin(&validation)) });
    }
    let rates: Vec<Line> = groups
        .iter()
        .enumerate()
        .map(|(g, name)| Line {
            label: name.clone(),
            color: PALETTE[(g + 2) % PALETTE.len()],
            width: 2,
            points: finite(thin(&points.iter().filter_map(|p| p.lrs.get(g).copied().flatten().map(|v| (p.step, v))).collect::<Vec<_>>())),
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    let all_positive = losses.iter().flat_map(|l| &l.points).all(|(_, v)| *v > 0.0);
    let scale = if all_positive { Scale::Log } else { Scale::Linear };
    if rates.is_empty() {
        return draw_panel(root, "loss", scale, &losses);
    }
    let (top, bottom) = root.split_vertically(root.dim_in_pixel().1 * 3 / 5);
    draw_panel(&top, "loss", scale, &losses)?;
    draw_panel(&bottom, "learning rate", Scale::Linear, &rates)
}

/// One panel: its lines against step, with their legend to the right. A panel whose lines are
/// all empty shows a note instead of empty axes.
fn draw_panel<DB: DrawingBackend>(area: &Area<DB>, what: &str, scale: Scale, lines: &[Line]) -> Drawn
where
    DB::ErrorType: 'static,
{
    let (chart_area, legend_area) = area.split_horizontally(area.dim_in_pixel().0.saturating_sub(LEGEND));
    let values: Vec<f64> = lines.iter().flat_map(|l| l.points.iter().map(|(_, v)| *v)).collect();
    if values.is_empty() {
        chart_area.draw(&Text::new(format!("no finite {what} to draw"), (80, 40), ("sans-serif", 16)))?;
        return Ok(());
    }
    let first = lines.iter().flat_map(|l| l.points.first()).map(|(s, _)| *s).min().unwrap_or(0);
    let last = lines.iter().flat_map(|l| l.points.last()).map(|(s, _)| *s).max().unwrap_or(1).max(first + 1);
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut builder = ChartBuilder::on(&chart_area);
    builder.margin(12).x_label_area_size(36).y_label_area_size(80);
    match scale {
        Scale::Log => {
            let (lo, hi) = if hi > lo { (lo / 1.15, hi * 1.15) } else { (lo / 2.0, hi * 2.0) };
            let ticks = log_ticks(lo, hi);
            let mut chart = builder.build_cartesian_2d(first..last, (lo..hi).log_scale().with_key_points(ticks))?;
            chart.configure_mesh().y_desc(what).x_desc("step").y_label_formatter(&|v| tick(*v)).draw()?;
            for line in lines {
                let style = line.color.stroke_width(line.width);
                chart.draw_series(LineSeries::new(line.points.iter().copied(), style))?;
            }
        }
        Scale::Linear => {
            let (lo, hi) = (lo.min(0.0), hi.max(0.0));
            let pad = if hi > lo { (hi - lo) * 0.06 } else { hi.abs().max(1.0) * 0.5 };
            let lo = if lo < 0.0 { lo - pad } else { lo };
            let mut chart = builder.build_cartesian_2d(first..last, lo..hi + pad)?;
            chart.configure_mesh().y_desc(what).x_desc("step").y_label_formatter(&|v| tick(*v)).draw()?;
            for line in lines {
                let style = line.color.stroke_width(line.width);
                chart.draw_series(LineSeries::new(line.points.iter().copied(), style))?;
            }
        }
    }
    for (i, line) in lines.iter().filter(|l| !l.points.is_empty()).enumerate() {
        let y = 24 + 24 * i as i32;
        legend_area.draw(&PathElement::new(vec![(6, y), (34, y)], line.color.stroke_width(line.width.max(2))))?;
        legend_area.draw(&Text::new(line.label.clone(), (42, y - 8), ("sans-serif", 15)))?;
    }
    Ok(())
}

/// Ticks of a log axis from `lo` to `hi`: 1, 2 and 5 of each decade; only the decades (or
/// every few) when the range spans many.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (first, last) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades = (last - first).max(1);
    let mantissas: &[f64] = if decades <= 4 { &[1.0, 2.0, 5.0] } else { &[1.0] };
    let every = (decades / 8).max(1);
    let mut ticks: Vec<f64> = (first..=last)
        .filter(|d| (d - first) % every == 0)
        .flat_map(|d| mantissas.iter().map(move |m| m * 10f64.powi(d)))
        .filter(|v| *v >= lo && *v <= hi)
        .collect();
    if ticks.len() < 3 && decades <= 1 {
        ticks = (first..=last)
            .flat_map(|d| (1..10).map(move |m| f64::from(m) * 10f64.powi(d)))
            .filter(|v| *v >= lo && *v <= hi)
            .collect();
    }
    ticks
}

/// A tick label: a short decimal, or `2e-5` / `3.5e+34` for the very small and large.
pub fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let s = format!("{v:.6}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        return s.to_string();
    }
    let s = format!("{v:.2e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    format!("{mantissa}e{exponent}")
}

/// TensorBoard's smoothing: an exponential moving average with weight `w`, debiased so that
/// it starts at the first value. Non-finite values are passed over.
pub fn smoothed(values: &[(u64, f64)], w: f64) -> Vec<(u64, f64)> {
    let (mut average, mut weight) = (0.0, 0.0);
    let mut out = Vec::with_capacity(values.len());
    for &(step, v) in values {
        if !v.is_finite() {
            continue;
        }
        average = w * average + (1.0 - w) * v;
        weight = w * weight + (1.0 - w);
        out.push((step, average / weight));
    }
    out
}

/// At most about this many points per line: more do not show, and make big SVG files.
const MAX_POINTS: usize = 2000;

/// Every `stride`-th point, the last, and every point where the value changes after holding
/// still (so the steps of a piecewise-constant learning rate stay sharp).
fn thin(points: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let stride = points.len().div_ceil(MAX_POINTS).max(1);
    if stride == 1 {
        return points.to_vec();
    }
    points
        .iter()
        .enumerate()
        .filter(|(i, p)| i % stride == 0 || *i + 1 == points.len() || *i > 0 && points[i - 1].1 != p.1 && (*i < 2 || points[i - 2].1 == points[i - 1].1))
        .map(|(_, p)| *p)
        .collect()
}

fn finite(points: impl IntoIterator<Item = (u64, f64)>) -> Vec<(u64, f64)> {
    points.into_iter().filter(|(_, v)| v.is_finite()).collect()
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


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_are_one_two_five() {
        assert_eq!(log_ticks(0.0015, 0.3), vec![0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2]);
        let wide = log_ticks(1e-3, 1e30);
        assert!(wide.len() <= 12 && wide.iter().all(|t| tick(*t).len() <= 6), "{wide:?}");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(0.0027), "0.0027");
        assert_eq!(tick(20.0), "20");
        assert_eq!(tick(2e34), "2e34");
        assert_eq!(tick(-1.5e-5), "-1.5e-5");
    }

    #[test]
    fn smoothing_starts_at_the_first_value() {
        let s = smoothed(&[(1, 4.0), (2, f64::NAN), (3, 2.0)], 0.5);
        assert_eq!(s[0], (1, 4.0));
        assert_eq!(s.len(), 2);
        assert!((s[1].1 - (0.5 * 0.5 * 4.0 + 0.5 * 2.0) / 0.75).abs() < 1e-12);
    }
}
