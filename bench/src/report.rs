//! Results: a printed table and `target/bench/SCENARIO.json`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

/// p50, p99 and max of a set of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Percentiles {
    /// Percentiles of `samples` (nearest rank); zeros when empty.
    pub fn of(samples: &mut [Duration]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let rank = |q: f64| {
            let index = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index].as_secs_f64() * 1000.0
        };
        Self {
            p50_ms: rank(0.50),
            p99_ms: rank(0.99),
            max_ms: rank(1.0),
        }
    }

    /// As JSON.
    pub fn to_json(self) -> Value {
        json!({ "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "max_ms": self.max_ms })
    }
}

/// A results table: one row per figure, one column per system measured.
#[derive(Debug)]
pub struct Table {
    title: String,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table whose first column names the figure.
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Self {
        Self {
            title: title.into(),
            columns: columns.iter().map(|column| (*column).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as Markdown (also readable in a terminal).
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.columns.iter().map(String::len).collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate() {
                if index < widths.len() {
                    widths[index] = widths[index].max(cell.len());
                }
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(index, width)| {
                    format!("{:width$}", cells.get(index).map_or("", String::as_str))
                })
                .collect();
            format!("| {} |\n", padded.join(" | "))
        };
        let mut out = format!("### {}\n\n", self.title);
        out.push_str(&line(&self.columns));
        let rules: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
        out.push_str(&line(&rules));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// Prints the tables and writes `{tables, results}` to `target/bench/SCENARIO.json`.
pub fn publish(scenario: &str, tables: &[Table], results: Value) -> anyhow::Result<PathBuf> {
    for table in tables {
        println!("\n{}", table.render());
    }
    let dir = bench_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{scenario}.json"));
    let rendered: Vec<String> = tables.iter().map(Table::render).collect();
    let document = json!({ "scenario": scenario, "tables": rendered, "results": results });
    std::fs::write(&path, serde_json::to_string_pretty(&document)?)?;
    println!("results written to {}", path.display());
    Ok(path)
}

/// `target/bench` beside the running binary (`target/release/fleetgate-bench`).
pub fn bench_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("bench")))
        .unwrap_or_else(|| PathBuf::from("target/bench"))
}

/// `a / b` to two decimals, or `n/a`.
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "n/a".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let p = Percentiles::of(&mut samples);
        assert_eq!((p.p50_ms, p.p99_ms, p.max_ms), (50.0, 99.0, 100.0));
    }

    #[test]
    fn a_table_renders_aligned_markdown() {
        let mut table = Table::new("t", &["figure", "value"]);
        table.row(vec!["a long name".into(), "1".into()]);
        let text = table.render();
        assert!(text.contains("| figure      | value |"), "{text}");
        assert!(text.contains("| a long name | 1     |"), "{text}");
    }
}
