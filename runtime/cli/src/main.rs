//! The `sluice` binary: a Kafka Connect-compatible worker in one small process.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use sluice_api::config::Props;
use sluice_api::connector::ConnectorKind;
use sluice_runtime::config_file::{self, ConnectorSpec};
use sluice_runtime::direct::DirectBus;
use sluice_runtime::herder::Herder;
use sluice_runtime::kafka::KafkaSettings;
use sluice_runtime::kafka::offsets::KafkaOffsetStore;
use sluice_runtime::offsets::{FileOffsetStore, OffsetStore};
use sluice_runtime::registry::Registry;
use sluice_runtime::standalone::StandaloneHerder;
use sluice_runtime::worker::WorkerContext;
use sluice_runtime::worker_config::WorkerConfig;
use sluice_runtime::{connector_config, rest};

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
}

/// Every plugin this binary ships, listed explicitly.
fn registry() -> Registry {
    Registry::with_builtins()
        .connector(sluice_connector_file::FILE_SOURCE)
        .connector(sluice_connector_file::FILE_SINK)
        .connector(sluice_connector_postgres::POSTGRES_SOURCE)
        .connector(sluice_connector_elasticsearch::ELASTICSEARCH_SINK)
        .transform(sluice_wasm::WASM_TRANSFORM)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, &cli.log_level);
    let result = match cli.command {
        Command::Standalone {
            worker_config,
            connector_configs,
        } => run_async(standalone(&worker_config, &connector_configs)),
        Command::Validate { configs } => validate(&configs),
        Command::Plugins => {
            plugins();
            Ok(())
        }
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run_async(future: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}

/// Reads and checks every connector config up front, so a bad file stops the start before
/// anything runs.
fn load_connectors(
    registry: &Registry,
    paths: &[PathBuf],
) -> anyhow::Result<Vec<(ConnectorSpec, ConnectorKind)>> {
    let mut specs: Vec<(ConnectorSpec, ConnectorKind)> = Vec::new();
    for path in paths {
        let spec = config_file::read_connector(path)?;
        let plugin = connector_config::validate(registry, &spec.config)
            .into_result()
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: connector `{}`: {}",
                    path.display(),
                    spec.name,
                    e.message()
                )
            })?;
        if specs.iter().any(|(s, _)| s.name == spec.name) {
            bail!(
                "{}: a connector named `{}` is already defined by an earlier file; names must be unique",
                path.display(),
                spec.name
            );
        }
        specs.push((spec, plugin.kind()));
    }
    Ok(specs)
}

async fn standalone(worker_path: &Path, connector_paths: &[PathBuf]) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let worker = WorkerConfig::parse(config_file::read_worker_props(worker_path)?)
        .map_err(|e| anyhow::anyhow!("{}: {}", worker_path.display(), e.message()))?;
    let kafka = (!worker.is_embedded()).then(|| {
        Arc::new(KafkaSettings::from_worker(
            &worker.props,
            &worker.bootstrap_servers,
        ))
    });
    let registry = registry();
    let specs = load_connectors(&registry, connector_paths)?;
    let offsets = open_offset_store(worker_path, &worker, kafka.as_ref()).await?;
    let ctx = Arc::new(WorkerContext {
        worker_id: worker.worker_id.clone(),
        registry,
        offsets: offsets.0,
        kafka: kafka.clone(),
        bus: Arc::new(DirectBus::new(worker.unrouted, worker.buffer_batches)),
        flush_interval: worker.flush_interval,
        shutdown_timeout: worker.shutdown_timeout,
    });
    let herder = Arc::new(StandaloneHerder::new(Arc::clone(&ctx)));
    let listener = tokio::net::TcpListener::bind(worker.rest_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the REST API; free the port or set e.g. \
             `listeners=http://127.0.0.1:8084` (or SLUICE__LISTENERS)",
                worker.rest_addr
            )
        })?;
    let addr = listener.local_addr()?;
    let shared: Arc<dyn Herder> = herder.clone();
    let (stop_rest, rest_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, rest::router(shared))
            .with_graceful_shutdown(async {
                let _ = rest_stopped.await;
            })
            .await
    });
    tracing::info!(addr = %addr, "REST API listening");
    // Sinks first, so sources find their subscribers already there.
    for kind in [ConnectorKind::Sink, ConnectorKind::Source] {
        for (spec, _) in specs.iter().filter(|(_, k)| *k == kind) {
            herder
                .add_connector(&spec.name, spec.config.clone())
                .await
                .map_err(|e| anyhow::anyhow!("connector `{}`: {}", spec.name, e.message()))?;
        }
    }
    tracing::info!(
        connectors = specs.len(),
        startup_ms = started.elapsed().as_millis() as u64,
        offsets = %offsets.1,
        transport = if kafka.is_some() { "kafka" } else { "embedded direct pipeline" },
        "sluice standalone worker started"
    );
    wait_for_signal().await;
    tracing::info!("shutting down: stopping sources, flushing sinks, committing offsets");
    let grace = worker.shutdown_timeout * 2 + Duration::from_secs(1);
    if tokio::time::timeout(grace, herder.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "shutdown took longer than {grace:?}; exiting (uncommitted records are read again on restart)"
        );
    }
    let _ = stop_rest.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    tracing::info!("stopped");
    Ok(())
}

/// The offset store, and where it is for the log: as in Kafka Connect standalone, the file
/// unless `offset.storage.topic` is set and Kafka is configured.
async fn open_offset_store(
    worker_path: &Path,
    worker: &WorkerConfig,
    kafka: Option<&Arc<KafkaSettings>>,
) -> anyhow::Result<(Arc<dyn OffsetStore>, String)> {
    let topic = worker
        .props
        .get("offset.storage.topic")
        .filter(|t| !t.trim().is_empty());
    if let (Some(settings), Some(topic)) = (kafka, topic) {
        let int = |key: &str, default: i32| {
            worker
                .props
                .get(key)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        let store = KafkaOffsetStore::open(
            Arc::clone(settings),
            topic,
            int("offset.storage.partitions", 25),
            int("offset.storage.replication.factor", -1),
        )
        .await
        .map_err(|e| anyhow::anyhow!("offset topic {topic}: {}", e.message()))?;
        return Ok((Arc::new(store), format!("topic {topic}")));
    }
    let offset_file = worker.offset_file.clone().with_context(|| {
        format!(
            "{}: `offset.storage.file.filename` is required in standalone mode (it is where \
             committed source offsets are kept), e.g. offset.storage.file.filename=/var/lib/sluice/connect.offsets",
            worker_path.display()
        )
    })?;
    let store =
        FileOffsetStore::open(&offset_file).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    Ok((Arc::new(store), offset_file.display().to_string()))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
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
