//! The per-step log of a run: CSV, or JSON lines for `.jsonl` / `.json`. Both hold the same
//! columns with the same values, and load as float columns (`pd.read_csv`,
//! `pd.read_json(lines=True)`): a float is written as the shortest decimal that reads back as
//! itself (a float32 as the float32's), a value not measured at that step is empty in CSV and
//! `null` in JSON, and a NaN or an infinity is `NaN`, `inf` or `-inf` in CSV and `NaN`,
//! `Infinity` or `-Infinity` in JSON (as Python's `json` and pandas read them).
//!
//! Rows are appended whole, through [`crate::fsio::Appender`], and flushed at every checkpoint
//! and at the end; a resumed run cuts the rows after its checkpoint's step (rows written after
//! that checkpoint by the run that stopped) and appends, so every step is in the log once.

use std::path::{Path, PathBuf};

use crate::fsio;

/// A log file being written.
pub struct Log {
    path: PathBuf,
    out: fsio::Appender,
    json: bool,
    columns: Vec<String>,
    /// Whole rows not yet written to the file.
    pending: String,
}

/// Rows are written to the file in pieces of about this size, between flushes.
const PIECE: usize = 1 << 16;

impl Log {
    /// Starts a new log at `path` with `columns` (the first is `step`), emptying an old one.
    pub fn create(path: &Path, columns: Vec<String>) -> Result<Log, String> {
        let json = is_json(path);
        let mut log = Log { path: path.to_path_buf(), out: open(path, true)?, json, columns, pending: String::new() };
        if !json {
            log.pending = header(&log.columns);
        }
        Ok(log)
    }

}

/// A log continued by a resumed run ([`Log::resume`]).
pub struct Resumed {
    pub log: Log,
    /// The rows it keeps (up to the checkpoint's step), a value or none for each column.
    pub rows: Vec<Vec<Option<f64>>>,
    /// Said when the log does not reach the checkpoint's step.
    pub warning: Option<String>,
}

impl Log {
    /// Continues the log at `path` after `step`: rows after it are cut, so that the resumed
    /// run's rows follow. Refuses a log with other columns.
    pub fn resume(path: &Path, step: u64, columns: Vec<String>) -> Result<Resumed, String> {
        let shown = path.display();
        let text = match std::fs::read(path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| format!("`{shown}` is not a log of optc (not UTF-8 text)"))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let log = Log::create(path, columns)?;
                let warning = (step > 0).then(|| format!("`{shown}` is new: it starts at step {}", step + 1));
                return Ok(Resumed { log, rows: Vec::new(), warning });
            }
            Err(e) => return Err(format!("cannot read `{shown}`: {e}")),
        };
        let json = is_json(path);
        let mut kept = String::new();
        let mut rows = Vec::new();
        let mut last = 0;
        let mut lines = text.split_inclusive('\n');
        let same_columns = if json {
            text.lines().next().is_none_or(|first| json_keys(first) == columns)
        } else {
            let first = lines.next().unwrap_or("");
            kept.push_str(first);
            first == header(&columns)
        };
        if !same_columns {
            return Err(format!("`{shown}` is not a log of this run (its columns differ); name another file with `--log`"));
        }
        for line in lines {
            // A line without its newline was cut by a crash; rows after the step are redone.
            let Some(row_step) = line.strip_suffix('\n').and_then(|l| row_step(l, json, &columns)) else { break };
            if row_step > step {
                break;
            }
            kept.push_str(line);
            rows.push(values(line.trim_end(), json));
            last = row_step;
        }
        if kept.len() != text.len() {
            fsio::write(path, kept.as_bytes()).map_err(|e| e.to_string())?;
        }
        let log = Log { path: path.to_path_buf(), out: open(path, false)?, json, columns, pending: String::new() };
        let warning = (last < step).then(|| {
            format!("`{shown}` ends at step {last}, before the checkpoint's step {step}; the steps between are not in it")
        });
        Ok(Resumed { log, rows, warning })
    }

    /// Adds one row: a value (or none) for each column, in order.
    pub fn write(&mut self, row: &[Option<f64>]) -> Result<(), String> {
        if self.json {
            let fields: Vec<String> = self
                .columns
                .iter()
                .zip(row)
                .map(|(name, v)| format!("{}:{}", serde_json::Value::from(name.as_str()), json_number(*v)))
                .collect();
            self.pending.push('{');
            self.pending.push_str(&fields.join(","));
            self.pending.push_str("}\n");
        } else {
            let fields: Vec<String> = row.iter().map(|v| v.map_or(String::new(), number)).collect();
            self.pending.push_str(&fields.join(","));
            self.pending.push('\n');
        }
        if self.pending.len() >= PIECE { self.write_pending() } else { Ok(()) }
    }

    /// Writes every row so far to the file and makes it durable (before a checkpoint, so that
    /// the log holds every step the checkpoint does).
    pub fn flush(&mut self) -> Result<(), String> {
        self.write_pending()?;
        self.out.sync().map_err(|e| e.to_string())
    }

    fn write_pending(&mut self) -> Result<(), String> {
        if !self.pending.is_empty() {
            self.out.append(self.pending.as_bytes()).map_err(|e| e.to_string())?;
            self.pending.clear();
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Checks, before a run, that a log can be written at `path`.
pub fn check_path(path: &Path) -> Result<(), String> {
    fsio::check(path).map_err(|e| e.to_string())
}

fn open(path: &Path, truncate: bool) -> Result<fsio::Appender, String> {
    fsio::Appender::open(path, truncate).map_err(|e| e.to_string())
}

fn is_json(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("jsonl" | "json"))
}

fn header(columns: &[String]) -> String {
    let names: Vec<String> = columns.iter().map(|c| csv_field(c)).collect();
    format!("{}\n", names.join(","))
}

/// The step of a complete row of a log, if it is one.
fn row_step(line: &str, json: bool, columns: &[String]) -> Option<u64> {
    if json {
        // Rows are written as `{"step":N,...}`; the keys of the first are checked apart.
        let digits = line.strip_prefix("{\"step\":")?.split(',').next()?;
        return line.ends_with('}').then(|| digits.parse().ok()).flatten();
    }
    let mut fields = line.split(',');
    let step = fields.next()?.parse().ok()?;
    (fields.count() + 1 == columns.len()).then_some(step)
}

/// The keys of a JSON row, in order.
fn json_keys(line: &str) -> Vec<String> {
    json_fields(line).into_iter().map(|(k, _)| k).collect()
}

/// The keys of a JSON row with their values' text, in order (its numbers may be `NaN` or
/// `Infinity`, which a JSON parser refuses, so values are read as text up to a `,` or `}`).
fn json_fields(line: &str) -> Vec<(String, &str)> {
    let mut fields = Vec::new();
    let mut rest = line.trim().trim_start_matches('{');
    while let Some(after) = rest.strip_prefix('"') {
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else { break };
        let key = serde_json::from_str::<String>(&format!("\"{}\"", &after[..end])).unwrap_or_default();
        rest = after[end + 1..].trim_start_matches(':');
        // Numbers, `null`, `NaN` and `Infinity` hold no comma.
        let (value, next) = rest.split_once(',').unwrap_or((rest, ""));
        fields.push((key, value.trim_end_matches('}')));
        rest = next;
    }
    fields
}

/// The values of a complete row, in column order: none where empty or `null`.
fn values(line: &str, json: bool) -> Vec<Option<f64>> {
    let parse = |v: &str| -> Option<f64> {
        match v {
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => v.parse().ok(),
        }
    };
    if json { json_fields(line).into_iter().map(|(_, v)| parse(v)).collect() } else { line.split(',').map(parse).collect() }
}

fn json_number(v: Option<f64>) -> String {
    match v {
        None => "null".into(),
        Some(v) if v.is_nan() => "NaN".into(),
        Some(v) if v.is_infinite() => if v > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        Some(v) => number(v),
    }
}

/// A finite float as CSV and JSON both write it: the shortest decimal that reads back as `v`,
/// with an exponent when it is very small or large (`1e-8`, `2.5e34`). NaN and infinities are
/// `NaN`, `inf` and `-inf` (as CSV readers take them).
fn number(v: f64) -> String {
    if v == 0.0 || (1e-5..1e16).contains(&v.abs()) || !v.is_finite() { format!("{v}") } else { format!("{v:e}") }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// A float32 as the float64 of its shortest decimal (`0.1f32` is 0.1, not 0.100000001490116),
/// so that logs show what a float32 holds and CSV and JSON agree.
pub fn widen(x: f32) -> f64 {
    if !x.is_finite() {
        return f64::from(x);
    }
    x.to_string().parse().unwrap_or(f64::from(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_write_the_same_numbers() {
        assert_eq!(json_number(Some(widen(0.1))), "0.1");
        assert_eq!(format!("{}", widen(0.1)), "0.1");
        assert_eq!(json_number(Some(f64::INFINITY)), "Infinity");
        assert_eq!(json_number(Some(f64::NAN)), "NaN");
        assert_eq!(json_number(None), "null");
        assert_eq!(number(f64::NEG_INFINITY), "-inf");
        assert_eq!((number(1e-8), number(2.5e34), number(3.0)), ("1e-8".into(), "2.5e34".into(), "3".into()));
    }

    #[test]
    fn json_rows_are_read_back() {
        let columns: Vec<String> = ["step", "loss", "a\"b"].iter().map(|s| s.to_string()).collect();
        let line = r#"{"step":12,"loss":NaN,"a\"b":-Infinity}"#;
        assert_eq!(json_keys(line), columns);
        assert_eq!(row_step(line, true, &columns), Some(12));
        assert_eq!(row_step(r#"{"step":12,"loss":0.5"#, true, &columns), None);
        assert_eq!(row_step("3,0.5,", false, &columns), Some(3));
        assert_eq!(row_step("3,0.5", false, &columns), None);
        let read = values(line, true);
        assert_eq!((read[0], read[1].map(f64::is_nan), read[2]), (Some(12.0), Some(true), Some(f64::NEG_INFINITY)));
        assert_eq!(values(r#"{"step":3,"loss":null,"x":1e-8}"#, true), [Some(3.0), None, Some(1e-8)]);
        assert_eq!(values("3,,inf", false)[..2], [Some(3.0), None]);
        assert_eq!(values("3,,inf", false)[2], Some(f64::INFINITY));
    }
}
