//! The `sluice` binary: a Kafka Connect-compatible worker in one small process.

mod status;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use sluice_api::config::Props;
use sluice_runtime::config::connector as connector_config;
use sluice_runtime::config::file as config_file;
use sluice_runtime::config::worker::WorkerConfig;
use sluice_runtime::{DistributedProcess, Registry, StandaloneProcess};

/// sluice: change-data-capture and file connectors with Kafka Connect's configs and REST API.
///
/// Connector configs are Kafka Connect `.properties`, JSON (the REST `{"name","config"}` body
/// or a flat map), TOML or YAML, chosen by file extension. Worker settings can be overridden
/// by environment variables: `SLUICE__REST_PORT=9090` sets `rest.port`.
#[derive(Parser, Debug)]
#[command(name = "sluice", version, propagate_version = true)]
struct Cli {
    /// Log line format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    log_format: LogFormat,

    /// Log level filter (`info`, `debug`, `sluice_runtime=debug`, …); RUST_LOG wins if set.
    #[arg(long, default_value = "info", global = true)]
    log_level: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a standalone worker with the given connectors.
    ///
    /// Without `bootstrap.servers` in the worker config, sources feed sinks in-process (the
    /// embedded direct pipeline) and source offsets are kept in `offset.storage.file.filename`.
    /// The REST API listens on `listeners` (default http://127.0.0.1:8083). SIGINT or SIGTERM
    /// stops the connectors, flushes sinks and commits offsets before exiting.
    Standalone {
        /// The worker config (Kafka Connect's connect-standalone.properties works as is).
        worker_config: PathBuf,
        /// Connector configs to run at start (more can be added over REST).
        connector_configs: Vec<PathBuf>,
    },
    /// Run a distributed worker: one of a group coordinated by Kafka.
    ///
    /// Reads Kafka Connect's connect-distributed.properties unchanged (`bootstrap.servers`,
    /// `group.id`, the three internal topics, …). Workers with the same `group.id` share the
    /// connectors created through any of their REST APIs; when one stops or dies, the others
    /// take over its work. SIGINT or SIGTERM stops the work held here, commits offsets and
    /// leaves the group.
    Distributed {
        /// The worker config (Kafka Connect's connect-distributed.properties works as is).
        worker_config: PathBuf,
    },
    /// Check worker and connector configs without running anything.
    ///
    /// A file with `connector.class` is checked as a connector config, any other as a worker
    /// config. Prints every problem with its file and key; exits non-zero if there is one.
    Validate {
        /// Config files to check.
        #[arg(required = true)]
        configs: Vec<PathBuf>,
    },
    /// List the connector, transform and predicate plugins this binary contains.
    Plugins,
    /// Show a running worker's connectors and tasks: state, worker, records/s, slot lag, and a
    /// progress bar per table while a snapshot runs. Exits non-zero when a connector or task
    /// has FAILED.
    Status {
        /// The worker's REST address.
        #[arg(long, default_value = "http://127.0.0.1:8083")]
        url: String,
        /// Redraw every second until interrupted.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        access: status::Access,
    },
    /// Hash a password for `rest.auth.basic.credentials.file`: reads it from standard input
    /// (one line) and prints an argon2id hash to write as `user: <hash>`.
    HashPassword,
}

/// `sluice hash-password`: the password from standard input, its hash to standard output.
fn hash_password() -> anyhow::Result<()> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    println!("{}", sluice_runtime::rest::hash_password(password)?);
    Ok(())
}

/// Every plugin this binary ships, listed explicitly.
fn registry() -> Registry {
    Registry::with_builtins()
        .connector(sluice_connector_file::FILE_SOURCE)
        .connector(sluice_connector_file::FILE_SINK)
        .connector(sluice_connector_postgres::POSTGRES_SOURCE)
        .connector(sluice_connector_mysql::MYSQL_SOURCE)
        .connector(sluice_connector_mysql::MARIADB_SOURCE)
        .connector(sluice_connector_elasticsearch::ELASTICSEARCH_SINK)
        .transform(sluice_wasm::WASM_TRANSFORM)
}

/// jemalloc, built (see .cargo/config.toml) with a background thread that returns freed pages
/// to the OS a second after they are freed, whichever thread freed them: RSS falls back after
/// a burst (a stalled sink, a long line) instead of staying at its peak as with glibc's malloc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log_level);
    let result = match cli.command {
        Command::Standalone {
            worker_config,
            connector_configs,
        } => run_async(standalone(&worker_config, &connector_configs)),
        Command::Distributed { worker_config } => run_async(distributed(&worker_config)),
        Command::Validate { configs } => validate(&configs),
        Command::Plugins => {
            plugins();
            Ok(())
        }
        Command::Status { url, watch, access } => status::run(&url, watch, &access),
        Command::HashPassword => hash_password(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat, level: &str) {
    // RUST_LOG wins over --log-level, as before; either can be changed at run time through
    // /admin/loggers.
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| level.to_owned());
    if let Err(e) = sluice_runtime::logging::init(&directives, matches!(format, LogFormat::Json)) {
        eprintln!("error: {}", e.message());
        std::process::exit(2);
    }
}

fn run_async(future: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(future);
    // A task abandoned at shutdown may still sit in a blocking call (a FIFO nobody opens);
    // dropping the runtime would wait for it forever. Everything that could be committed
    // was, so give such calls a moment and exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn standalone(worker_path: &Path, connector_paths: &[PathBuf]) -> anyhow::Result<()> {
    let process = StandaloneProcess::start(worker_path, connector_paths, registry())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    wait_for_signal().await;
    process.stop().await;
    Ok(())
}

async fn distributed(worker_path: &Path) -> anyhow::Result<()> {
    let process = DistributedProcess::start(worker_path, registry())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    wait_for_signal().await;
    process.stop().await;
    Ok(())
}

/// Waits for SIGINT, SIGTERM or SIGHUP. SIGHUP stops the worker cleanly too, as Kafka
/// Connect's JVM runs its shutdown hooks on it (a closed terminal ends the worker without
/// losing what it delivered).
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (term, hangup) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    );
    match (term, hangup) {
        (Ok(mut term), Ok(mut hangup)) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = hangup.recv() => tracing::info!("SIGHUP received: stopping as for SIGTERM"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn validate(paths: &[PathBuf]) -> anyhow::Result<()> {
    let registry = registry();
    let mut failures = 0;
    for path in paths {
        match validate_one(&registry, path) {
            Ok(summary) => println!("OK   {}: {summary}", path.display()),
            Err(problems) => {
                failures += 1;
                for problem in problems {
                    println!("FAIL {}: {problem}", path.display());
                }
            }
        }
    }
    if failures > 0 {
        bail!("{failures} of {} config file(s) have problems", paths.len());
    }
    Ok(())
}

fn validate_one(registry: &Registry, path: &Path) -> Result<String, Vec<String>> {
    let props: Props = config_file::read_props(path).map_err(|e| vec![e.message().to_owned()])?;
    let is_connector =
        props.contains_key("connector.class") || props.contains_key("config.connector.class");
    if !is_connector {
        return WorkerConfig::parse(props)
            .map(|w| {
                if w.is_embedded() {
                    "worker config (embedded direct pipeline)".to_owned()
                } else {
                    "worker config (Kafka transport)".to_owned()
                }
            })
            .map_err(|e| vec![e.message().to_owned()]);
    }
    let spec =
        config_file::connector_from_props(props).map_err(|e| vec![e.message().to_owned()])?;
    let validation = connector_config::validate(registry, &spec.config);
    if validation.errors.is_empty() {
        let plugin = validation
            .plugin
            .map(|p| p.simple_name())
            .unwrap_or_default();
        Ok(format!("connector `{}` ({plugin})", spec.name))
    } else {
        Err(validation.errors.iter().map(ToString::to_string).collect())
    }
}

fn plugins() {
    let registry = registry();
    println!("Connectors:");
    for plugin in registry.connectors() {
        let aliases = if plugin.aliases.is_empty() {
            String::new()
        } else {
            format!(", {}", plugin.aliases.join(", "))
        };
        println!(
            "  {:<6} {} (also {}{aliases})",
            plugin.kind().as_str(),
            plugin.class,
            plugin.simple_name()
        );
    }
    println!("Transforms:");
    for plugin in registry.transforms() {
        println!("  {}", plugin.class);
    }
    println!("Predicates:");
    for plugin in registry.predicates() {
        println!("  {}", plugin.class);
    }
}
