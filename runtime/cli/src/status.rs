//! `sluice status`: a worker's connectors and tasks as a table (state, worker, records/s, slot
//! lag) and a progress bar per table while a snapshot runs, from the status page's data
//! (`GET /ui/data`). Exits non-zero when a connector or task has FAILED, so scripts can use
//! it; `--watch` redraws every second.

use std::path::PathBuf;
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

/// How to reach a worker whose REST API is on https or asks for credentials.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct Access {
    /// PEM file of the CA(s) to trust for an https worker (its
    /// `listeners.https.ssl.truststore.location` CA, say), besides the public roots.
    #[arg(long, value_name = "PEM")]
    cacert: Option<PathBuf>,
    /// PEM client certificate, for a worker with `ssl.client.auth=required` (with --key).
    #[arg(long, value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// HTTP basic authentication as USER; the password is read from the environment variable
    /// SLUICE_STATUS_PASSWORD (never from the command line, which other users can see).
    #[arg(long, value_name = "USER", conflicts_with = "token_file")]
    user: Option<String>,
    /// A file whose first line is a bearer token (`rest.auth.bearer.tokens.file`).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

/// The environment variable `--user`'s password is read from.
const PASSWORD_VARIABLE: &str = "SLUICE_STATUS_PASSWORD";

/// A client for the worker at `url`, with what `access` says.
struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
    data: String,
    basic: Option<(String, String)>,
    token: Option<String>,
}

impl Client {
    fn new(url: &str, access: &Access) -> anyhow::Result<Client> {
        let read = |path: &PathBuf, flag: &str| {
            std::fs::read(path).with_context(|| format!("{flag} {}", path.display()))
        };
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(20));
        if let Some(path) = &access.cacert {
            let certificates = reqwest::Certificate::from_pem_bundle(&read(path, "--cacert")?)
                .with_context(|| format!("--cacert {}: not PEM certificates", path.display()))?;
            anyhow::ensure!(
                !certificates.is_empty(),
                "--cacert {}: no certificate in the file",
                path.display()
            );
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if let (Some(cert), Some(key)) = (&access.cert, &access.key) {
            let pem = [read(cert, "--cert")?, read(key, "--key")?].concat();
            builder = builder.identity(
                reqwest::Identity::from_pem(&pem)
                    .context("--cert and --key: not a PEM certificate and its unencrypted key")?,
            );
        }
        let basic = match &access.user {
            Some(user) => {
                let password = std::env::var(PASSWORD_VARIABLE).with_context(|| {
                    format!("--user {user}: set the password in the environment variable {PASSWORD_VARIABLE}")
                })?;
                Some((user.clone(), password))
            }
            None => None,
        };
        let token = match &access.token_file {
            Some(path) => {
                let text = String::from_utf8(read(path, "--token-file")?)
                    .with_context(|| format!("--token-file {}: not text", path.display()))?;
                let token = text.lines().next().unwrap_or_default().trim().to_owned();
                anyhow::ensure!(
                    !token.is_empty(),
                    "--token-file {}: the first line holds no token",
                    path.display()
                );
                Some(token)
            }
            None => None,
        };
        Ok(Client {
            http: builder.build().context("the https client")?,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
            data: format!("{}/ui/data", url.trim_end_matches('/')),
            basic,
            token,
        })
    }

    /// The status page's data.
    fn get(&self) -> anyhow::Result<Json> {
        let data = &self.data;
        let mut request = self.http.get(data);
        if let Some((user, password)) = &self.basic {
            request = request.basic_auth(user, Some(password));
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let (status, body) = self
            .runtime
            .block_on(async {
                let response = request.send().await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.text().await?))
            })
            .map_err(|e| {
                let mut why = format!("GET {data}: {e}");
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    why.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                if why.contains("certificate") || why.contains("UnknownIssuer") {
                    why.push_str(" (an https worker's CA is trusted with --cacert)");
                } else {
                    why.push_str(" (is a worker listening at --url?)");
                }
                anyhow::anyhow!(why)
            })?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!(
                "GET {data}: 401 Unauthorized: the worker asks for credentials; give --user USER \
                 (password in {PASSWORD_VARIABLE}) or --token-file FILE"
            );
        }
        if !status.is_success() {
            bail!("GET {data}: {status}: {body}");
        }
        serde_json::from_str(&body)
            .with_context(|| format!("GET {data}: not the status page's data"))
    }
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
pub(crate) fn run(url: &str, watch: bool, access: &Access) -> anyhow::Result<()> {
    let client = Client::new(url, access)?;
    if !watch {
        let (lines, failed) = lines(&client.get()?);
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
        let lines = match client.get() {
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
