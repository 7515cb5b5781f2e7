//! The WASM plugin host: `transforms.<alias>.type=wasm` runs a transform compiled to a
//! WebAssembly component that implements the `transform` world of `plugins/wit/transform.wit`.
//!
//! * **One instance per task**, reused for every record; a new one only after a trap.
//! * **Batches**: up to [`BATCH`] records per call, so entering the sandbox is paid per batch.
//!   A call that fails as a whole is retried record by record, so only the culprit fails.
//! * **Keys and values on request**: the batch carries topics, partitions, timestamps and
//!   headers; the plugin asks for the JSON of the keys and values it reads (`host.payload`), so
//!   the host writes no JSON for a plugin that does not look.
//! * **Hard limits**, enforced by wasmtime: `max.duration.ms` per call (epoch interruption,
//!   ticked every millisecond), `max.memory.bytes` of linear memory, and no filesystem,
//!   network, environment or clock beyond WASI's defaults: nothing is granted.
//! * **A failing record fails alone**: a plugin error, a trap, a timeout or a memory overrun
//!   becomes a data error for that record (the connector's `errors.tolerance` and dead letter
//!   queue decide what happens to it); the worker and other connectors are untouched.
//! * **Bad plugins fail at connector start** with a message naming the module: a file that is
//!   not a component, one that lacks the expected exports, or an `init` that rejects the config.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value as Json;
use sluice_api::config::{
    ConfigDef, ConfigKey, ConfigType, Importance, Props, REDACTED, Validator, looks_secret,
    with_prefix,
};
use sluice_api::data::{SchemaRef, Value};
use sluice_api::json::{AsJson, json_to_value};
use sluice_api::record::{Header, Record};
use sluice_api::transform::{Transform, TransformPlugin};
use sluice_api::{Error, Result};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

mod bindings {
    // Async exports: calls are driven by `run_bounded` below rather than by tokio, because
    // WASI's synchronous bindings block on the ambient tokio runtime and panic inside it.
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transform",
        exports: { default: async },
        imports: { "sluice:plugin/host.payload": trappable },
    });
}

use sluice_plugin_frame::{self as frame, OutputRecord, Payload};

/// How often the engine's epoch advances: the resolution of `max.duration.ms`.
const TICK: Duration = Duration::from_millis(1);

/// Plugin instances the process can hold at once (one per task using a WASM transform, plus
/// one being replaced after a trap).
const POOLED_INSTANCES: u32 = 256;

/// The largest `max.memory.bytes` (each pooled memory slot reserves this much address space).
const MAX_MEMORY_BYTES: usize = 1 << 30;

/// How much of a plugin's stderr is kept for error messages.
const STDERR_CAPACITY: usize = 64 * 1024;

/// Drives a wasmtime call to completion on this thread, giving up (`None`) after `limit`.
/// Guest code is stopped by epochs long before; this bounds waits inside host calls.
fn run_bounded<F: Future>(future: F, limit: Duration) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        std::thread::park_timeout(left);
    }
}

/// `transforms.<alias>.type=wasm`.
pub const WASM_TRANSFORM: TransformPlugin = TransformPlugin {
    class: "io.sluice.transforms.Wasm",
    aliases: &["wasm"],
    config_def,
    create: |props| Ok(Box::new(WasmTransform::new(props)?)),
};

/// The settings of a WASM transform (under `transforms.<alias>.`).
pub fn config_def() -> ConfigDef {
    ConfigDef::new()
        .key(ConfigKey::required(
            "module",
            ConfigType::String,
            Importance::High,
            "Path of the plugin: a WebAssembly component built for the `transform` world (cargo build --target wasm32-wasip2).",
        ))
        .key(
            ConfigKey::optional(
                "max.duration.ms",
                ConfigType::Int,
                "100",
                Importance::Medium,
                "Longest a call may run before it is stopped and its record fails.",
            )
            .validate_with(Validator::Range { min: 1, max: 3_600_000 }),
        )
        .key(
            ConfigKey::optional(
                "max.memory.bytes",
                ConfigType::Long,
                "67108864",
                Importance::Medium,
                "Most linear memory the plugin may hold (64 MiB by default); growing past it fails the record.",
            )
            .validate_with(Validator::Range { min: 65_536, max: MAX_MEMORY_BYTES as i64 }),
        )
        .open_prefix("config.")
}

/// One engine for every plugin in the process, with the ticker that drives its epoch.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        // `SLUICE_WASM_PERFMAP=1`: wasmtime writes /tmp/perf-<pid>.map, so `perf report` names
        // plugin functions instead of showing bare JIT addresses.
        if std::env::var_os("SLUICE_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        // The pooling allocator reuses call stacks (fibers), memories and instances: without
        // it every call maps and unmaps a fresh stack, tens of microseconds per record.
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(POOLED_INSTANCES)
            .total_core_instances(POOLED_INSTANCES * 4)
            .total_memories(POOLED_INSTANCES * 2)
            .total_tables(POOLED_INSTANCES * 4)
            .total_stacks(POOLED_INSTANCES)
            .max_memory_size(MAX_MEMORY_BYTES);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).expect("a wasmtime engine with default settings");
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("sluice-wasm-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    ticking.increment_epoch();
                }
            })
            .expect("the epoch thread");
        engine
    })
}

/// Compiles a plugin once per file version: validating a connector and starting its task (and
/// every task of a connector) share the machine code.
fn compiled(module: &PathBuf) -> wasmtime::Result<Component> {
    type Version = (PathBuf, Option<std::time::SystemTime>, u64);
    static CACHE: OnceLock<std::sync::Mutex<std::collections::HashMap<Version, Component>>> =
        OnceLock::new();
    let metadata = std::fs::metadata(module)?;
    let version = (module.clone(), metadata.modified().ok(), metadata.len());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(component) = cache.lock().expect("plugin cache").get(&version) {
        return Ok(component.clone());
    }
    let component = Component::from_file(engine(), module)?;
    cache
        .lock()
        .expect("plugin cache")
        .insert(version, component.clone());
    Ok(component)
}

/// Per-instance state: WASI with nothing granted, and the memory limit.
struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory_cap: usize,
    memory_denied: bool,
    /// What the plugin wrote to stderr (a panic message, say), kept for error messages.
    stderr: MemoryOutputPipe,
    /// The records being transformed, for `host.payload`; empty between calls. A call covers
    /// `window` of them (its record 0 is `batch[window.start]`).
    batch: Vec<Record>,
    window: std::ops::Range<usize>,
}

impl bindings::sluice::plugin::host::Host for HostState {
    fn payload(&mut self, index: u32, key: bool) -> wasmtime::Result<Option<String>> {
        let at = self.window.start + index as usize;
        let record = match self.batch.get(at) {
            Some(record) if at < self.window.end => record,
            _ => wasmtime::bail!(
                "it asked for the {} of record {index} of a batch of {}",
                if key { "key" } else { "value" },
                self.window.len()
            ),
        };
        Ok(json_text(if key { &record.key } else { &record.value }))
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime::ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// A compiled plugin and how to run it.
struct Plugin {
    module: PathBuf,
    component: Component,
    linker: Arc<Linker<HostState>>,
    config: Vec<(String, String)>,
    max_ticks: u64,
    max_duration_ms: i64,
    memory_cap: usize,
}

struct Instance {
    store: Store<HostState>,
    bindings: bindings::Transform,
}

/// A WASM transform: one plugin instance, reused across records.
pub struct WasmTransform {
    plugin: Plugin,
    instance: Option<Instance>,
    /// The batch being sent, kept between calls so its buffer is reused.
    encoded: Vec<u8>,
}

/// Shows the module, its settings (secrets by name hidden) and its limits; the engine's
/// state is left out.
impl fmt::Debug for WasmTransform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config: Vec<(&str, &str)> = self
            .plugin
            .config
            .iter()
            .map(|(k, v)| {
                let shown = if looks_secret(k) { REDACTED } else { v };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("WasmTransform")
            .field("module", &self.plugin.module)
            .field("config", &config)
            .field("max_duration_ms", &self.plugin.max_duration_ms)
            .field("max_memory_bytes", &self.plugin.memory_cap)
            .field("instantiated", &self.instance.is_some())
            .finish_non_exhaustive()
    }
}

impl WasmTransform {
    /// Compiles the module, instantiates it and calls its `init`: every problem shows here,
    /// at connector start.
    pub fn new(props: &Props) -> Result<WasmTransform> {
        let def = config_def();
        if let Some(first) = def.validate(props).first() {
            return Err(Error::config(format!("WASM transform: {first}")));
        }
        let module = PathBuf::from(&props["module"]);
        let number = |key: &str, default: i64| {
            props
                .get(key)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(default)
        };
        let max_duration_ms = number("max.duration.ms", 100);
        let memory_cap = number("max.memory.bytes", 64 << 20) as usize;
        let component = compiled(&module).map_err(|e| {
            Error::config(format!(
                "WASM transform: {} is not a WebAssembly component sluice can run (build it with \
                 `cargo build --target wasm32-wasip2` against plugins/wit/transform.wit): {e:#}",
                module.display()
            ))
        })?;
        let mut linker = Linker::new(engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| Error::fatal(format!("WASM transform: linking WASI failed: {e:#}")))?;
        bindings::Transform::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| {
            Error::fatal(format!(
                "WASM transform: linking the host interface failed: {e:#}"
            ))
        })?;
        let config: Vec<(String, String)> = with_prefix(props, "config.").into_iter().collect();
        let plugin = Plugin {
            module,
            component,
            linker: Arc::new(linker),
            config,
            max_ticks: (max_duration_ms as u64).max(1),
            max_duration_ms,
            memory_cap,
        };
        let instance = plugin.instantiate()?;
        Ok(WasmTransform {
            plugin,
            instance: Some(instance),
            encoded: Vec::new(),
        })
    }
}

impl Plugin {
    fn name(&self) -> String {
        self.module
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.module.display().to_string())
    }

    fn instantiate(&self) -> Result<Instance> {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let mut store = Store::new(
            engine(),
            HostState {
                wasi,
                table: ResourceTable::new(),
                memory_cap: self.memory_cap,
                memory_denied: false,
                stderr,
                batch: Vec::new(),
                window: 0..0,
            },
        );
        store.limiter(|state| state);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.max_ticks);
        let instantiated = run_bounded(
            bindings::Transform::instantiate_async(&mut store, &self.component, &self.linker),
            self.wall_limit(),
        );
        let bindings = match instantiated {
            Some(Ok(bindings)) => bindings,
            Some(Err(e)) => {
                return Err(Error::config(format!(
                    "WASM transform {}: it does not fit the `transform` world of plugins/wit/transform.wit \
                     (missing or mismatched imports/exports): {e:#}",
                    self.name()
                )));
            }
            None => {
                return Err(Error::config(format!(
                    "WASM transform {}: instantiating it took longer than max.duration.ms={}",
                    self.name(),
                    self.max_duration_ms
                )));
            }
        };
        store.set_epoch_deadline(self.max_ticks);
        let init = run_bounded(
            bindings
                .sluice_plugin_transformer()
                .call_init(&mut store, &self.config),
            self.wall_limit(),
        );
        match init {
            Some(Ok(Ok(()))) => Ok(Instance { store, bindings }),
            Some(Ok(Err(message))) => Err(Error::config(format!(
                "WASM transform {} rejected its config (transforms.<alias>.config.*): {message}",
                self.name()
            ))),
            Some(Err(trap)) => Err(Error::config(format!(
                "WASM transform {}: init failed: {}",
                self.name(),
                self.explain(&store, &trap)
            ))),
            None => Err(Error::config(format!(
                "WASM transform {}: init blocked longer than max.duration.ms={}",
                self.name(),
                self.max_duration_ms
            ))),
        }
    }

    /// The wall-clock bound of a call: the CPU limit (epochs) stops running guest code, this
    /// stops a guest waiting in a host call (a WASI sleep, say). Generous, as epochs do the
    /// precise work.
    fn wall_limit(&self) -> Duration {
        Duration::from_millis(self.max_duration_ms as u64).saturating_mul(2)
            + Duration::from_millis(50)
    }

    /// Why a call failed, in the user's terms.
    fn explain(&self, store: &Store<HostState>, error: &wasmtime::Error) -> String {
        if store.data().memory_denied {
            return format!(
                "it needed more than max.memory.bytes={} of memory",
                self.memory_cap
            );
        }
        let stderr = store.data().stderr.contents();
        let said = String::from_utf8_lossy(&stderr);
        let said = said.trim();
        let said = match said.char_indices().rev().nth(400) {
            Some((at, _)) => &said[at..],
            None => said,
        };
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(" (its stderr: {said})")
        };
        match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => format!(
                "it ran longer than max.duration.ms={} and was stopped",
                self.max_duration_ms
            ),
            Some(trap) => format!("it trapped: {trap}{said}"),
            None => format!("{error:#}{said}"),
        }
    }
}

/// The JSON text of a key, value or header value; `None` for null.
fn json_text(value: &Value) -> Option<String> {
    if value.is_null() {
        return None;
    }
    Some(serde_json::to_string(&AsJson(value)).expect("a value always serialises"))
}

/// Writes the batch `apply` receives (layout in plugins/wit/transform.wit) into `batch`. Keys
/// and values are not in it: the plugin asks for those it reads (`host.payload`).
fn encode(records: &[Record], batch: &mut Vec<u8>) {
    batch.clear();
    frame::put_len(batch, records.len());
    for record in records {
        let header_texts: Vec<Option<String>> =
            record.headers.iter().map(|h| json_text(&h.value)).collect();
        let input = frame::InputRecord {
            topic: &record.topic,
            partition: record.partition,
            timestamp_ms: record.timestamp_ms,
            has_key: !record.key.is_null(),
            has_value: !record.value.is_null(),
            headers: record
                .headers
                .iter()
                .zip(&header_texts)
                .map(|(header, text)| (header.key.as_str(), text.as_deref()))
                .collect(),
        };
        frame::put_input_record(batch, &input);
    }
}

/// A key or value coming back: unchanged keeps the original value and schema as they were
/// (moved out of `original` on its last use); new text keeps the schema when it still fits,
/// else goes on schemaless.
fn from_payload(
    plugin: &str,
    what: &str,
    payload: Payload<'_>,
    original: &mut Value,
    schema: &Option<SchemaRef>,
    last_use: bool,
) -> Result<(Value, Option<SchemaRef>)> {
    let text = match payload {
        Payload::Null => return Ok((Value::Null, None)),
        Payload::Unchanged if last_use => return Ok((std::mem::take(original), schema.clone())),
        Payload::Unchanged => return Ok((original.clone(), schema.clone())),
        Payload::Json(text) => text,
    };
    let json: Json = serde_json::from_str(text).map_err(|e| {
        Error::data(format!(
            "WASM transform {plugin} returned a {what} that is not JSON ({e}): {text}"
        ))
    })?;
    if let Some(schema) = schema
        && let Ok(value) = sluice_api::convert::value_with_schema(&json, schema)
    {
        return Ok((value, Some(Arc::clone(schema))));
    }
    Ok((json_to_value(&json), None))
}

fn from_output(
    plugin: &str,
    out: &OutputRecord<'_>,
    original: &mut Record,
    last_use: bool,
) -> Result<Record> {
    let (key, key_schema) = from_payload(
        plugin,
        "key",
        out.key,
        &mut original.key,
        &original.key_schema,
        last_use,
    )?;
    let (value, value_schema) = from_payload(
        plugin,
        "value",
        out.value,
        &mut original.value,
        &original.value_schema,
        last_use,
    )?;
    let topic = if last_use && out.topic == original.topic {
        std::mem::take(&mut original.topic)
    } else {
        sluice_api::Text::from(out.topic)
    };
    let headers = out
        .headers
        .iter()
        .map(|&(key, text)| {
            let value = match text {
                Some(text) => serde_json::from_str::<Json>(text)
                    .map(|j| json_to_value(&j))
                    .map_err(|e| {
                        Error::data(format!(
                            "WASM transform {plugin} returned header {key} that is not JSON ({e})"
                        ))
                    })?,
                None => Value::Null,
            };
            Ok(Header {
                key: key.into(),
                value,
                schema: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Record {
        topic,
        partition: out.partition,
        key,
        key_schema,
        value,
        value_schema,
        timestamp_ms: out.timestamp_ms,
        headers,
    })
}

/// What the plugin made of one record, decided while the records are still in place.
enum Made {
    /// It goes on exactly as it came: the record itself is moved on at the end.
    Kept,
    Became(Vec<Record>),
    Failed(Error),
}

/// The records `produced` for `original`, in host terms.
fn converted(
    plugin: &str,
    produced: &[OutputRecord<'_>],
    original: &mut Record,
) -> Result<Vec<Record>> {
    let count = produced.len();
    produced
        .iter()
        .enumerate()
        .map(|(at, out)| from_output(plugin, out, original, at + 1 == count))
        .collect()
}

/// A result read back: every output record, and for each input record what it made of it
/// (how many of those outputs are its own, in order; kept; or its error).
struct Decoded<'a> {
    outputs: Vec<OutputRecord<'a>>,
    outcomes: Vec<frame::Outcome<'a>>,
}

/// Reads a result, checking it holds one outcome per input record and nothing more.
fn decode(bytes: &[u8], records: usize) -> frame::Result<Decoded<'_>> {
    let mut reader = frame::Reader::new(bytes);
    let mut outputs = Vec::with_capacity(records);
    let outcomes = (0..records)
        .map(|_| reader.outcome_into(&mut outputs))
        .collect::<frame::Result<Vec<_>>>()?;
    reader.finish()?;
    Ok(Decoded { outputs, outcomes })
}

impl WasmTransform {
    /// One `apply` call into the plugin with `window` of `records` (already encoded in
    /// `self.encoded`). `Err` when the call itself failed (trap, timeout, memory, no
    /// instance): the instance is then dropped and the next call gets a fresh one. The records
    /// are lent to the instance for `host.payload` and always come back.
    fn call(
        &mut self,
        records: &mut Vec<Record>,
        window: std::ops::Range<usize>,
    ) -> Result<Vec<u8>> {
        let instance = match self.instance.as_mut() {
            Some(instance) => instance,
            None => self.instance.insert(self.plugin.instantiate()?),
        };
        instance.store.set_epoch_deadline(self.plugin.max_ticks);
        let state = instance.store.data_mut();
        state.batch = std::mem::take(records);
        state.window = window;
        let result = run_bounded(
            instance
                .bindings
                .sluice_plugin_transformer()
                .call_apply(&mut instance.store, &self.encoded),
            self.plugin.wall_limit(),
        );
        *records = std::mem::take(&mut instance.store.data_mut().batch);
        let name = self.plugin.name();
        let Some(result) = result else {
            self.instance = None;
            return Err(Error::data(format!(
                "WASM transform {name} failed on this record: it blocked longer than max.duration.ms={} and was abandoned",
                self.plugin.max_duration_ms
            )));
        };
        match result {
            Ok(bytes) => Ok(bytes),
            Err(trap) => {
                let why = self.plugin.explain(&instance.store, &trap);
                // A trapped instance is not used again: the next call gets a fresh one.
                self.instance = None;
                Err(Error::data(format!(
                    "WASM transform {name} failed on this record: {why}"
                )))
            }
        }
    }

    /// One call for `window` of `records`, pushing what became of each onto `made`; `Err`
    /// (and nothing pushed) when the call as a whole failed. The records stay where they are,
    /// so the kept ones are moved only once, at the end.
    fn run(
        &mut self,
        records: &mut Vec<Record>,
        window: std::ops::Range<usize>,
        made: &mut Vec<Made>,
    ) -> Result<()> {
        encode(&records[window.clone()], &mut self.encoded);
        let bytes = self.call(records, window.clone())?;
        let name = self.plugin.name();
        let decoded = decode(&bytes, window.len()).map_err(|e| {
            Error::data(format!(
                "WASM transform {name} returned a result that does not follow the layout of \
                 plugins/wit/transform.wit: {e}"
            ))
        })?;
        let mut outputs = decoded.outputs.as_slice();
        for (outcome, original) in decoded.outcomes.into_iter().zip(&mut records[window]) {
            made.push(match outcome {
                frame::Outcome::Kept => Made::Kept,
                frame::Outcome::Failed(message) => Made::Failed(Error::data(format!(
                    "WASM transform {name} failed the record: {message}"
                ))),
                frame::Outcome::Became(count) => {
                    let (own, rest) = outputs.split_at(count);
                    outputs = rest;
                    match converted(&name, own, original) {
                        Ok(records) => Made::Became(records),
                        Err(error) => Made::Failed(error),
                    }
                }
            });
        }
        Ok(())
    }
}

/// Most records sent in one call: enough to make the cost of entering the sandbox vanish per
/// record, few enough that a call stays far inside `max.duration.ms` for any sane plugin.
const BATCH: usize = 256;

impl Transform for WasmTransform {
    fn apply(&mut self, record: Record, out: &mut Vec<Record>) -> Result<()> {
        let result = self.apply_batch(vec![record]).pop();
        out.extend(result.expect("one result per record")?);
        Ok(())
    }

    /// Up to [`BATCH`] records per call. When a call as a whole fails, its records are sent
    /// again one per call, so the one that traps, loops or overruns memory fails alone.
    fn apply_batch(&mut self, mut records: Vec<Record>) -> Vec<Result<Vec<Record>>> {
        let mut made = Vec::with_capacity(records.len());
        let mut start = 0;
        while start < records.len() {
            let window = start..(start + BATCH).min(records.len());
            start = window.end;
            let Err(error) = self.run(&mut records, window.clone(), &mut made) else {
                continue;
            };
            if window.len() == 1 {
                made.push(Made::Failed(error));
                continue;
            }
            for at in window {
                if let Err(error) = self.run(&mut records, at..at + 1, &mut made) {
                    made.push(Made::Failed(error));
                }
            }
        }
        records
            .into_iter()
            .zip(made)
            .map(|(record, made)| match made {
                Made::Kept => Ok(vec![record]),
                Made::Became(records) => Ok(records),
                Made::Failed(error) => Err(error),
            })
            .collect()
    }
}
