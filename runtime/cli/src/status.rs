//! `sluice status`: a worker's connectors and tasks as a table (state, worker, records/s, slot
//! lag) and a progress bar per table while a snapshot runs, from the status page's data
//! (`GET /ui/data`). Exits non-zero when a connector or task has FAILED, so scripts can use
//! it; `--watch` redraws every second.

use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value as Json;

/// One line of the output: text, or a snapshot table's progress.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    Text(String),
    Progress {
        label: String,
        done: u64,
        total: u64,
    },
}

fn get(url: &str) -> anyhow::Result<Json> {
    let data = format!("{}/ui/data", url.trim_end_matches('/'));
    let mut response = ureq::get(&data)
        .call()
        .with_context(|| format!("GET {data} (is a worker listening at --url?)"))?;
    response
        .body_mut()
        .read_json()
        .with_context(|| format!("GET {data}: not the status page's data"))
}

fn number(value: &Json) -> String {
    value
        .as_f64()
        .map(|n| format!("{:.0}", n))
        .unwrap_or_else(|| "-".to_owned())
}

fn bytes(value: &Json) -> String {
    let Some(mut n) = value.as_f64() else {
        return "-".to_owned();
    };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while n >= 1024.0 && unit < units.len() - 1 {
        n /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n:.0} B")
    } else {
        format!("{n:.1} {}", units[unit])
    }
}

/// The table and progress lines for `data`, and whether anything has FAILED.
fn lines(data: &Json) -> (Vec<Line>, bool) {
    let mut rows = vec![
        [
            "CONNECTOR",
            "TYPE",
            "STATE",
            "TASK",
            "TASK STATE",
            "WORKER",
            "RECORDS/S",
            "IN",
            "OUT",
            "SLOT LAG",
        ]
        .map(str::to_owned),
    ];
    let mut progress: Vec<(usize, Line)> = Vec::new();
    let mut failed = false;
    let empty = Vec::new();
    for connector in data["connectors"].as_array().unwrap_or(&empty) {
        let name = connector["name"].as_str().unwrap_or("?").to_owned();
        let state = connector["state"].as_str().unwrap_or("?").to_owned();
        failed |= state == "FAILED";
        let tasks = connector["tasks"].as_array().unwrap_or(&empty);
        if tasks.is_empty() {
            rows.push([
                name.clone(),
                connector["type"].as_str().unwrap_or("?").to_owned(),
                state.clone(),
                "-".into(),
                "-".into(),
                connector["worker_id"].as_str().unwrap_or("?").to_owned(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ]);
        }
        for task in tasks {
            let task_state = task["state"].as_str().unwrap_or("?").to_owned();
            failed |= task_state == "FAILED";
            let figures = &task["figures"];
            rows.push([
                name.clone(),
                connector["type"].as_str().unwrap_or("?").to_owned(),
                state.clone(),
                task["id"].to_string(),
                task_state,
                task["worker_id"].as_str().unwrap_or("?").to_owned(),
                number(&figures["rate"]),
                number(&figures["records_in"]),
                number(&figures["records_out"]),
                bytes(&figures["gauges"]["slot_lag_bytes"]),
            ]);
            if let Some(done) = figures["gauges"]["snapshot_rows"].as_object() {
                for (table, rows_done) in done {
                    let done = rows_done.as_f64().unwrap_or(0.0) as u64;
                    let estimated = figures["gauges"]["snapshot_rows_estimated"][table]
                        .as_f64()
                        .unwrap_or(0.0) as u64;
                    progress.push((
                        rows.len() - 1,
                        Line::Progress {
                            label: format!("  {name}-{} {table}", task["id"]),
                            done,
                            total: estimated.max(done),
                        },
                    ));
                }
            }
        }
        if let Some(trace) = connector["trace"].as_str() {
            let first = trace.lines().next().unwrap_or_default();
            progress.push((rows.len() - 1, Line::Text(format!("  {name}: {first}"))));
        }
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = Vec::new();
    for (index, row) in rows.iter().enumerate() {
        let text: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect();
        out.push(Line::Text(text.join("  ").trim_end().to_owned()));
        out.extend(
            progress
                .iter()
                .filter(|(after, _)| *after == index)
                .map(|(_, line)| line.clone()),
        );
    }
    (out, failed)
}

/// A progress line as text, for output that is not redrawn.
fn progress_text(label: &str, done: u64, total: u64) -> String {
    const WIDTH: usize = 30;
    let filled = if total == 0 {
        WIDTH
    } else {
        ((done as f64 / total as f64) * WIDTH as f64) as usize
    };
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    format!(
        "{label} [{}{}] {percent}% {done}/{total} rows",
        "#".repeat(filled.min(WIDTH)),
        "-".repeat(WIDTH - filled.min(WIDTH))
    )
}

/// Prints the worker's status once (`watch` false; the error when anything FAILED) or every
/// second until interrupted.
pub(crate) fn run(url: &str, watch: bool) -> anyhow::Result<()> {
    if !watch {
        let (lines, failed) = lines(&get(url)?);
        for line in lines {
            match line {
                Line::Text(text) => println!("{text}"),
                Line::Progress { label, done, total } => {
                    println!("{}", progress_text(&label, done, total))
                }
            }
        }
        if failed {
            bail!("a connector or task has FAILED");
        }
        return Ok(());
    }
    let multi = MultiProgress::new();
    let bar_style =
        ProgressStyle::with_template("{msg} [{wide_bar}] {percent}% {pos}/{len} rows, ETA {eta}")
            .context("the progress bar's template")?
            .progress_chars("#>-");
    let text_style = ProgressStyle::with_template("{msg}").context("the text line's template")?;
    let mut shown: Vec<(Line, ProgressBar)> = Vec::new();
    loop {
        let lines = match get(url) {
            Ok(data) => lines(&data).0,
            Err(e) => vec![Line::Text(format!("{e:#}"))],
        };
        let same_shape = shown.len() == lines.len()
            && shown.iter().zip(&lines).all(|((old, _), new)| {
                matches!(
                    (old, new),
                    (Line::Text(_), Line::Text(_)) | (Line::Progress { .. }, Line::Progress { .. })
                )
            });
        if !same_shape {
            multi.clear().ok();
            for (_, bar) in shown.drain(..) {
                multi.remove(&bar);
            }
            for line in &lines {
                let bar = match line {
                    Line::Text(_) => ProgressBar::new_spinner().with_style(text_style.clone()),
                    Line::Progress { .. } => ProgressBar::new(0).with_style(bar_style.clone()),
                };
                shown.push((line.clone(), multi.add(bar)));
            }
        }
        for ((old, bar), line) in shown.iter_mut().zip(lines) {
            match &line {
                Line::Text(text) => bar.set_message(text.clone()),
                Line::Progress { label, done, total } => {
                    bar.set_length(*total);
                    bar.set_position(*done);
                    bar.set_message(label.clone());
                }
            }
            *old = line;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failed_task_is_reported_and_a_snapshot_has_its_progress_line() {
        let data = json!({"connectors": [
            {"name": "inventory", "type": "source", "state": "RUNNING", "worker_id": "w:1", "tasks": [
                {"id": 0, "state": "RUNNING", "worker_id": "w:1", "figures": {"rate": 1500.4, "records_in": 10,
                 "records_out": 10, "gauges": {"slot_lag_bytes": 2048, "snapshot_rows": {"public.a": 50},
                 "snapshot_rows_estimated": {"public.a": 200}}}}]},
            {"name": "broken", "type": "sink", "state": "RUNNING", "worker_id": "w:1", "tasks": [
                {"id": 0, "state": "FAILED", "worker_id": "w:1", "figures": null}]},
        ]});
        let (lines, failed) = lines(&data);
        assert!(failed);
        let Line::Text(header) = &lines[0] else {
            panic!()
        };
        assert!(header.starts_with("CONNECTOR"));
        let Line::Text(row) = &lines[1] else { panic!() };
        assert!(row.contains("inventory") && row.contains("1500") && row.contains("2.0 KiB"));
        assert_eq!(
            lines[2],
            Line::Progress {
                label: "  inventory-0 public.a".into(),
                done: 50,
                total: 200
            }
        );
        assert!(progress_text("t", 50, 200).contains("25% 50/200"));
    }
}
