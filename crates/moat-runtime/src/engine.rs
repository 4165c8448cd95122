//! The shared wasmtime engine: configuration, the epoch ticker, and the
//! guests compiled and linked once for every sandbox.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine};

use crate::cache::{CacheStatus, ComponentCache};
use crate::error::RuntimeError;
use crate::language::Language;
use crate::sandbox::{HostState, InterpreterPre};

/// How often the epoch advances. Each tick lets a running guest yield to
/// the async executor and lets the host check its deadline, so it bounds how
/// late a timeout or a cancellation can take effect.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Native stack a guest may use. CPython recurses deeply in C for nested
/// calls, so wasmtime's default of 512 KiB traps after a few hundred levels.
const MAX_WASM_STACK_BYTES: usize = 16 * 1024 * 1024;

/// Stack of the fiber each async call runs on; must exceed the wasm stack.
const ASYNC_STACK_BYTES: usize = MAX_WASM_STACK_BYTES + 2 * 1024 * 1024;

/// Settings for finding and preparing guests.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory that contains `python.wasm` and `javascript.wasm`.
    pub guest_dir: PathBuf,
    /// Cache of compiled guests kept between processes. `None` compiles on
    /// every start.
    pub cache: Option<ComponentCache>,
    /// Whether executions count fuel. Metering makes CPU-bound code roughly
    /// twice as slow; without it only the wall-clock timeout bounds CPU.
    pub fuel_metering: bool,
}

/// A loaded guest: its hash and its pre-linked instance template.
#[derive(Clone)]
pub(crate) struct Guest {
    pub(crate) hash: blake3::Hash,
    pub(crate) pre: InterpreterPre<HostState>,
}

/// Facts about a loaded guest, for reports and diagnostics.
#[derive(Debug, Clone)]
pub struct GuestInfo {
    /// The component file.
    pub path: PathBuf,
    /// BLAKE3 hash of the component file, in hex.
    pub hash: String,
    /// Whether the compiled form came from the cache.
    pub cache: CacheStatus,
}

/// The engine shared by all sandboxes of a process. Cheap to share behind an
/// `Arc`; sandboxes are created from it with
/// [`Sandbox::new`](crate::Sandbox::new).
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    guests: Mutex<HashMap<Language, Guest>>,
    ticker: Option<EpochTicker>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Creates the engine and starts its epoch ticker. Guests load on first
    /// use, or up front through [`Runtime::load`].
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        // TODO: enable the pooling allocator with copy-on-write memory images.
        // The first run of a fresh Python sandbox takes about 3 ms, mostly
        // instantiation (docs/benchmarks.md).
        let mut wasm_config = Config::new();
        wasm_config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .consume_fuel(config.fuel_metering)
            .max_wasm_stack(MAX_WASM_STACK_BYTES)
            .async_stack_size(ASYNC_STACK_BYTES);

        let engine = Engine::new(&wasm_config)
            .map_err(|error| RuntimeError::wasmtime("create the wasmtime engine", error))?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|error| RuntimeError::wasmtime("link the WASI interfaces", error))?;
        crate::files::deny_symlink_creation(&mut linker)
            .map_err(|error| RuntimeError::wasmtime("restrict symlink creation", error))?;
        crate::http::add_to_linker(&mut linker)
            .map_err(|error| RuntimeError::wasmtime("link the http interface", error))?;

        let ticker = EpochTicker::start(engine.clone()).map_err(|error| {
            RuntimeError::wasmtime("start the epoch thread", wasmtime::Error::from(error))
        })?;
        Ok(Runtime {
            engine,
            linker,
            config,
            guests: Mutex::new(HashMap::new()),
            ticker: Some(ticker),
        })
    }

    /// Returns the wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Returns whether executions count fuel.
    pub fn fuel_metering(&self) -> bool {
        self.config.fuel_metering
    }

    /// Path of the component file for `language`.
    pub fn guest_path(&self, language: Language) -> PathBuf {
        self.config.guest_dir.join(language.component_file())
    }

    /// Loads, compiles (or takes from the cache) and links the guest for
    /// `language`, if not loaded yet.
    pub fn load(&self, language: Language) -> Result<GuestInfo, RuntimeError> {
        let path = self.guest_path(language);
        if let Some(guest) = self.loaded(language) {
            return Ok(GuestInfo {
                path,
                hash: guest.hash.to_hex().to_string(),
                cache: CacheStatus::Hit,
            });
        }

        let (guest, cache) = self.compile(language, &path)?;
        let info = GuestInfo {
            path,
            hash: guest.hash.to_hex().to_string(),
            cache,
        };
        self.guests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(language, guest);
        Ok(info)
    }

    pub(crate) fn guest(&self, language: Language) -> Result<Guest, RuntimeError> {
        if let Some(guest) = self.loaded(language) {
            return Ok(guest);
        }
        self.load(language)?;
        self.loaded(language)
            .ok_or_else(|| RuntimeError::GuestMissing {
                language: language.name(),
                path: self.guest_path(language),
                file: language.component_file(),
            })
    }

    fn loaded(&self, language: Language) -> Option<Guest> {
        self.guests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&language)
            .cloned()
    }

    fn compile(
        &self,
        language: Language,
        path: &Path,
    ) -> Result<(Guest, CacheStatus), RuntimeError> {
        let started = std::time::Instant::now();
        let wasm = match std::fs::read(path) {
            Ok(wasm) => wasm,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::GuestMissing {
                    language: language.name(),
                    path: path.to_path_buf(),
                    file: language.component_file(),
                });
            }
            Err(source) => {
                return Err(RuntimeError::ReadGuest {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let hash = crate::cache::hash_parallel(&wasm);

        let (component, status) = match &self.config.cache {
            Some(cache) => cache.load_or_compile(&self.engine, language.name(), &wasm, &hash)?,
            None => {
                let component =
                    wasmtime::component::Component::new(&self.engine, &wasm).map_err(|error| {
                        RuntimeError::wasmtime(
                            format!("compile the {} guest", language.name()),
                            error,
                        )
                    })?;
                (component, CacheStatus::Disabled)
            }
        };
        tracing::debug!(
            language = language.name(),
            cache = ?status,
            elapsed_ms = started.elapsed().as_millis(),
            "guest loaded"
        );

        let instance_pre = self.linker.instantiate_pre(&component).map_err(|error| {
            RuntimeError::wasmtime(format!("link the {} guest", language.name()), error)
        })?;
        let pre = InterpreterPre::new(instance_pre).map_err(|error| {
            RuntimeError::wasmtime(
                format!("find the `run` export of the {} guest", language.name()),
                error,
            )
        })?;
        Ok((Guest { hash, pre }, status))
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`].
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl EpochTicker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("moat-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}
