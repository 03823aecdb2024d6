//! AWS Lambda integration (feature `lambda`): a tower layer that records invocation
//! metrics around a `lambda_runtime` service, and a deployment wrapper with configuration
//! from the environment, pre-warm hooks and graceful shutdown.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use lambda_runtime::tower::{Layer, Service};

use crate::emf::EmfEmitter;
use crate::emf_layout::EmfBatchWriter;
use crate::error::{Error, Result};
use crate::extension::RuntimeApi;
use crate::invocation::InvocationMetrics;
use crate::metrics::{MetricsRegistry, PendingBatch};
use crate::monitor::Monitor;
use crate::snapshot::LambdaEnv;
use crate::stall::InvocationBracket;

type HookFuture = Pin<Box<dyn Future<Output = std::result::Result<(), lift_core::Error>> + Send>>;
type Hook = Arc<dyn Fn() -> HookFuture + Send + Sync>;
/// Where EMF lines go: stdout in Lambda, a buffer in tests.
pub type EmfSink = Arc<Mutex<dyn Write + Send>>;

/// The settings of a Lambda deployment, read from the environment.
///
/// Fields are private and set through setters named after them, so that a setting can
/// be added without breaking callers; [`LambdaOptions::from_env`] reads them all.
///
/// ```
/// use lift_monitor::LambdaOptions;
///
/// let options = LambdaOptions::default().environment("staging").service("orders");
/// assert_eq!(options.level(), tracing::Level::INFO);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaOptions {
    environment: Option<String>,
    log_level: tracing::Level,
    metrics_enabled: bool,
    metrics_namespace: String,
    service: String,
    function_name: Option<String>,
    memory_size_mb: Option<u64>,
    initialization_type: Option<String>,
}

/// The name [`LambdaOptions`] had before lift's options structs were named alike.
#[deprecated(note = "renamed to LambdaOptions")]
pub type LambdaConfig = LambdaOptions;

impl Default for LambdaOptions {
    /// No environment, level `info`, metrics on, namespace `lift`, service
    /// `service_undefined`, and no Lambda figures: what [`LambdaOptions::from_env`]
    /// reads from an empty environment.
    fn default() -> Self {
        LambdaOptions {
            environment: None,
            log_level: tracing::Level::INFO,
            metrics_enabled: true,
            metrics_namespace: "lift".to_owned(),
            service: "service_undefined".to_owned(),
            function_name: None,
            memory_size_mb: None,
            initialization_type: None,
        }
    }
}

/// The variable that selects lift's environment, as the lift CLI and `lift.toml` use it.
const ENVIRONMENT_ENV: &str = "LIFT_ENV";

/// The older name of [`ENVIRONMENT_ENV`], still accepted when `LIFT_ENV` is not set.
const LEGACY_ENVIRONMENT_ENV: &str = "LIFT_ENVIRONMENT";

impl LambdaOptions {
    /// Reads the options from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the options through `var`. Fails on a value that cannot be parsed.
    ///
    /// The `Environment` dimension is the selected environment: `LIFT_ENV`, else the older
    /// `LIFT_ENVIRONMENT`. With neither set (or both empty) the metrics carry no
    /// `Environment` dimension: no environment is assumed.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let non_empty = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let log_level = match non_empty("LIFT_LOG_LEVEL") {
            None => tracing::Level::INFO,
            Some(value) => parse_level(&value).ok_or(Error::InvalidEnv {
                name: "LIFT_LOG_LEVEL",
                value,
                expected: "one of trace, debug, info, warn, error",
            })?,
        };
        let metrics_enabled =
            match var("LIFT_METRICS_ENABLED").map(|v| v.trim().to_ascii_lowercase()) {
                None => true,
                Some(v) if v == "true" || v == "1" || v == "yes" => true,
                Some(v) if v == "false" || v == "0" || v == "no" => false,
                Some(v) => {
                    return Err(Error::InvalidEnv {
                        name: "LIFT_METRICS_ENABLED",
                        value: v,
                        expected: "true or false",
                    });
                }
            };
        let lambda = LambdaEnv::from_vars(&var)?;
        let defaults = LambdaOptions::default();
        Ok(LambdaOptions {
            environment: non_empty(ENVIRONMENT_ENV).or_else(|| non_empty(LEGACY_ENVIRONMENT_ENV)),
            log_level,
            metrics_enabled,
            metrics_namespace: non_empty("LIFT_METRICS_NAMESPACE")
                .or_else(|| non_empty("POWERTOOLS_METRICS_NAMESPACE"))
                .unwrap_or(defaults.metrics_namespace),
            service: non_empty("POWERTOOLS_SERVICE_NAME").unwrap_or(defaults.service),
            function_name: var("AWS_LAMBDA_FUNCTION_NAME"),
            memory_size_mb: lambda
                .as_ref()
                .and_then(|l| l.memory_limit_bytes)
                .map(|b| b / (1024 * 1024)),
            initialization_type: lambda.and_then(|l| l.initialization_type.map(|t| t.to_string())),
        })
    }

    /// The `Environment` dimension of the metrics (`LIFT_ENV`, else `LIFT_ENVIRONMENT`).
    /// Default: none, and then the metrics have no `Environment` dimension.
    #[must_use]
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// `LIFT_LOG_LEVEL`. [`LambdaDeployment::run`] installs a JSON log subscriber at this
    /// level unless the program installed one already. Default: `info`.
    #[must_use]
    pub fn log_level(mut self, log_level: tracing::Level) -> Self {
        self.log_level = log_level;
        self
    }

    /// `LIFT_METRICS_ENABLED` (`true`/`false`/`1`/`0`/`yes`/`no`): whether EMF is written.
    /// Default: true.
    #[must_use]
    pub fn metrics_enabled(mut self, metrics_enabled: bool) -> Self {
        self.metrics_enabled = metrics_enabled;
        self
    }

    /// `LIFT_METRICS_NAMESPACE`, else `POWERTOOLS_METRICS_NAMESPACE`: the EMF namespace.
    /// Default: `lift`.
    #[must_use]
    pub fn metrics_namespace(mut self, metrics_namespace: impl Into<String>) -> Self {
        self.metrics_namespace = metrics_namespace.into();
        self
    }

    /// `POWERTOOLS_SERVICE_NAME`, the `service` dimension. Default: `service_undefined`,
    /// as in Lambda Powertools.
    #[must_use]
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = service.into();
        self
    }

    /// `AWS_LAMBDA_FUNCTION_NAME`, the `FunctionName` dimension.
    #[must_use]
    pub fn function_name(mut self, function_name: impl Into<String>) -> Self {
        self.function_name = Some(function_name.into());
        self
    }

    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in megabytes.
    #[must_use]
    pub fn memory_size_mb(mut self, memory_size_mb: u64) -> Self {
        self.memory_size_mb = Some(memory_size_mb);
        self
    }

    /// `AWS_LAMBDA_INITIALIZATION_TYPE` (`on-demand`, `provisioned-concurrency`, ...).
    #[must_use]
    pub fn initialization_type(mut self, initialization_type: impl Into<String>) -> Self {
        self.initialization_type = Some(initialization_type.into());
        self
    }

    /// The log level (`LIFT_LOG_LEVEL`).
    pub fn level(&self) -> tracing::Level {
        self.log_level
    }

    fn lambda_env(&self) -> LambdaEnv {
        LambdaEnv {
            memory_limit_bytes: self.memory_size_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
            initialization_type: self.initialization_type.as_deref().map(Arc::from),
            function_name: self.function_name.as_deref().map(Arc::from),
        }
    }
}

fn parse_level(value: &str) -> Option<tracing::Level> {
    match value.trim().to_ascii_lowercase().as_str() {
        "trace" => Some(tracing::Level::TRACE),
        "debug" => Some(tracing::Level::DEBUG),
        "info" => Some(tracing::Level::INFO),
        "warn" => Some(tracing::Level::WARN),
        "error" => Some(tracing::Level::ERROR),
        _ => None,
    }
}

/// What the layer and the deployment share.
struct Shared {
    metrics: InvocationMetrics,
    emf: EmfEmitter,
    /// `ColdStart` goes in a document of its own, dimensioned by function and service
    /// only, as Powertools does: cold starts per function, whatever the other dimensions.
    cold_start_emf: EmfEmitter,
    bracket: Option<InvocationBracket>,
    sink: EmfSink,
    metrics_enabled: bool,
    monitor: Option<Monitor>,
    pre_warm: Vec<(String, Hook)>,
    pre_warmed: tokio::sync::OnceCell<()>,
    /// What a flush reuses, so that a warm flush allocates nothing.
    flush_buffers: Mutex<FlushBuffers>,
    /// The registry's dropped histogram values at the last flush, to report new ones.
    dropped_seen: std::sync::atomic::AtomicU64,
}

/// The pending metrics, the layouts of recent documents and the output of a flush.
#[derive(Default)]
struct FlushBuffers {
    batch: PendingBatch,
    documents: EmfBatchWriter,
    cold_start_documents: EmfBatchWriter,
    out: Vec<u8>,
}

/// The output capacity a flush keeps; a larger one, left by a burst of values, is given back.
const FLUSH_OUTPUT_KEPT: usize = 64 * 1024;

impl Shared {
    async fn run_pre_warm(&self) {
        self.pre_warmed
            .get_or_init(|| async {
                if self.pre_warm.is_empty() {
                    return;
                }
                let started = Instant::now();
                for (name, hook) in &self.pre_warm {
                    let span = tracing::info_span!("lift_monitor.pre_warm", hook = %name);
                    let _entered = span.enter();
                    if let Err(err) = hook().await {
                        // A failed pre-warm must not fail the request: it only loses the head start.
                        tracing::warn!(hook = %name, error = %err, "pre-warm hook failed");
                    }
                }
                self.metrics.record_pre_warm(started.elapsed());
            })
            .await;
    }

    fn flush(&self, request_id: Option<&str>) {
        if !self.metrics_enabled {
            return;
        }
        if let Some(monitor) = &self.monitor {
            // Memory now, not at the last background sample: Lambda may freeze the
            // environment right after this, and the sample before the freeze is stale.
            let memory = monitor.memory_now();
            self.metrics
                .record_process_memory(&monitor.snapshot(), &memory);
        }
        let mut buffers = self
            .flush_buffers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let FlushBuffers {
            batch,
            documents,
            cold_start_documents,
            out,
        } = &mut *buffers;
        let registry = self.metrics.registry();
        registry.take_pending_into(batch);
        let dropped = registry.dropped_values();
        let before = self
            .dropped_seen
            .swap(dropped, std::sync::atomic::Ordering::Relaxed);
        if dropped > before {
            tracing::warn!(
                values = dropped - before,
                total = dropped,
                "histogram values were left out of EMF: a histogram held its pending limit between two flushes (LambdaDeployment::metrics_options, MetricsOptions::pending_limit)"
            );
        }
        let with_request_id;
        let properties: &[(&str, &str)] = match request_id {
            Some(id) => {
                with_request_id = [("function_request_id", id)];
                &with_request_id
            }
            None => &[],
        };
        let now = chrono::Utc::now();
        out.clear();
        let rendered = cold_start_documents
            .write(
                &self.cold_start_emf,
                batch,
                |name| name == "ColdStart",
                now,
                properties,
                out,
            )
            .and_then(|()| {
                documents.write(
                    &self.emf,
                    batch,
                    |name| name != "ColdStart",
                    now,
                    properties,
                    out,
                )
            });
        // All documents in one write: one system call for stdout, whose line buffer
        // would write each line on its own.
        let written = rendered.and_then(|()| {
            if out.is_empty() {
                return Ok(());
            }
            let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
            sink.write_all(out)
                .and_then(|()| sink.flush())
                .map_err(|source| Error::Io {
                    path: "EMF output".into(),
                    source,
                })
        });
        if out.capacity() > FLUSH_OUTPUT_KEPT {
            *out = Vec::new();
        }
        if let Err(err) = written {
            tracing::warn!(error = %err, "cannot write EMF metrics");
        }
    }
}

/// A tower [`Layer`] that records [`InvocationMetrics`] around a Lambda service and writes
/// them as EMF after each invocation. On the first invocation it runs the pre-warm hooks
/// of its [`LambdaDeployment`] before the handler.
#[derive(Clone)]
pub struct MetricsLayer {
    shared: Arc<Shared>,
    /// Whether the service flushes when the handler returns. [`LambdaDeployment::run`]
    /// turns it off and flushes once lambda_runtime has posted the response instead
    /// ([`FlushAfterResponse`]).
    flush_in_handler: bool,
}

impl std::fmt::Debug for MetricsLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            shared: self.shared.clone(),
            flush_in_handler: self.flush_in_handler,
        }
    }
}

/// The service [`MetricsLayer`] produces.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    shared: Arc<Shared>,
    flush_in_handler: bool,
}

impl<S> std::fmt::Debug for MetricsService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsService").finish_non_exhaustive()
    }
}

impl<S, A> Service<lambda_runtime::LambdaEvent<A>> for MetricsService<S>
where
    S: Service<lambda_runtime::LambdaEvent<A>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    A: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = std::result::Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: lambda_runtime::LambdaEvent<A>) -> Self::Future {
        // The clone that was polled ready handles this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let flush = self.flush_in_handler;
        // Only a flush here needs the request id; FlushAfterResponse takes its own.
        let request_id = flush.then(|| request.context.request_id.clone());
        Box::pin(async move {
            // Only heartbeats inside invocations count as stall samples.
            let in_flight = shared.bracket.as_ref().map(InvocationBracket::enter);
            let mut invocation = Unfinished {
                shared: &shared,
                invocation: Some(shared.metrics.begin()),
            };
            shared.run_pre_warm().await;
            let result = inner.call(request).await;
            invocation.finish(result.is_ok());
            drop(in_flight);
            if let Some(request_id) = request_id {
                // Lambda may freeze the environment once the runtime asks for the next
                // event, which follows the response at once: emit now.
                shared.flush(Some(request_id.as_str()).filter(|id| !id.is_empty()));
            }
            result
        })
    }
}

/// An invocation until its handler returns. Dropped before that (the handler panicked,
/// and lambda_runtime's panic layer outside this one caught it; or a timeout dropped the
/// future), it records a failed invocation: Lambda counts it as an error too.
struct Unfinished<'s> {
    shared: &'s Shared,
    invocation: Option<crate::invocation::Invocation>,
}

impl Unfinished<'_> {
    fn finish(&mut self, ok: bool) {
        if let Some(invocation) = self.invocation.take() {
            self.shared.metrics.finish(invocation, ok);
        }
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// A Lambda function's deployment: configuration from the environment, invocation
/// metrics as EMF on stdout, pre-warm hooks and graceful shutdown.
///
/// ```no_run
/// use lambda_runtime::{LambdaEvent, service_fn};
/// use lift_monitor::LambdaDeployment;
///
/// #[tokio::main]
/// async fn main() -> Result<(), lambda_runtime::Error> {
///     let deployment = LambdaDeployment::from_env()?
///         .pre_warm("http-client", || async { Ok(()) })
///         .on_shutdown("audit", || async { Ok(()) });
///     deployment
///         .run(service_fn(|event: LambdaEvent<serde_json::Value>| async move {
///             Ok::<_, lambda_runtime::Error>(event.payload)
///         }))
///         .await
/// }
/// ```
pub struct LambdaDeployment {
    options: LambdaOptions,
    registry: MetricsRegistry,
    sink: EmfSink,
    pre_warm: Vec<(String, Hook)>,
    shutdown: Vec<(String, Hook)>,
    monitor: Option<Monitor>,
    default_dimensions: Vec<(String, String)>,
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for LambdaDeployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaDeployment")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn boxed_hook<F, Fut>(hook: F) -> Hook
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = std::result::Result<(), lift_core::Error>> + Send + 'static,
{
    Arc::new(move || Box::pin(hook()) as HookFuture)
}

impl LambdaDeployment {
    /// A deployment configured from the environment, writing EMF to stdout.
    pub fn from_env() -> Result<Self> {
        Ok(Self::new(LambdaOptions::from_env()?))
    }

    /// A deployment with `options`, writing EMF to stdout.
    pub fn new(options: LambdaOptions) -> Self {
        LambdaDeployment {
            options,
            registry: MetricsRegistry::default(),
            sink: Arc::new(Mutex::new(std::io::stdout())),
            pre_warm: Vec::new(),
            shutdown: Vec::new(),
            monitor: None,
            default_dimensions: Vec::new(),
            shared: None,
        }
    }

    /// Replaces the metrics registry with an empty one with `options` (the pending limit
    /// of a histogram between flushes, the limit of distinct names). Call it before
    /// [`LambdaDeployment::layer`] and before recording through
    /// [`LambdaDeployment::registry`]: what the previous registry held is not carried over.
    #[must_use]
    pub fn metrics_options(mut self, options: crate::MetricsOptions) -> Self {
        self.registry = MetricsRegistry::new(options);
        self
    }

    /// The options.
    pub fn options(&self) -> &LambdaOptions {
        &self.options
    }

    /// The options, under the name they had before.
    #[deprecated(note = "renamed to options")]
    pub fn config(&self) -> &LambdaOptions {
        &self.options
    }

    /// Writes EMF lines to `sink` instead of stdout.
    #[must_use]
    pub fn emf_sink(mut self, sink: EmfSink) -> Self {
        self.sink = sink;
        self
    }

    /// Adds a dimension to every metric document but the cold-start one (Powertools'
    /// default dimensions). Checked against CloudWatch's rules when the layer is built.
    #[must_use]
    pub fn default_dimension(mut self, key: &str, value: &str) -> Self {
        self.default_dimensions
            .push((key.to_owned(), value.to_owned()));
        self
    }

    /// Samples memory from `monitor` into the metrics at each flush, and brackets each
    /// invocation for its stall heartbeat.
    #[must_use]
    pub fn monitor(mut self, monitor: Monitor) -> Self {
        self.monitor = Some(monitor);
        self
    }

    /// Adds a hook run once, on the first invocation, before the handler (open
    /// connections, fill caches). Its failure is logged and does not fail the request; the
    /// hooks' total time is the `PreWarmDuration` metric.
    #[must_use]
    pub fn pre_warm<F, Fut>(mut self, name: &str, hook: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), lift_core::Error>> + Send + 'static,
    {
        self.pre_warm.push((name.to_owned(), boxed_hook(hook)));
        self
    }

    /// Adds a hook run on shutdown (SIGTERM), after the metrics are flushed, such as closing
    /// the audit sink. Lambda allows about 500 ms for all of them.
    #[must_use]
    pub fn on_shutdown<F, Fut>(mut self, name: &str, hook: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<(), lift_core::Error>> + Send + 'static,
    {
        self.shutdown.push((name.to_owned(), boxed_hook(hook)));
        self
    }

    fn shared(&mut self) -> Result<Arc<Shared>> {
        if let Some(shared) = &self.shared {
            return Ok(shared.clone());
        }
        let mut emf = EmfEmitter::new(&self.options.metrics_namespace)?
            .dimension("service", &self.options.service)?;
        let mut cold_start_emf = EmfEmitter::new(&self.options.metrics_namespace)?;
        if let Some(name) = &self.options.function_name {
            emf = emf.dimension("FunctionName", name)?;
            cold_start_emf = cold_start_emf.dimension("function_name", name)?;
        }
        cold_start_emf = cold_start_emf.dimension("service", &self.options.service)?;
        // No environment selected: no `Environment` dimension, rather than a guess.
        if let Some(environment) = &self.options.environment {
            emf = emf.dimension("Environment", environment)?;
        }
        for (key, value) in &self.default_dimensions {
            emf = emf.dimension(key, value)?;
        }
        let env = self.options.lambda_env();
        let shared = Arc::new(Shared {
            metrics: InvocationMetrics::new(self.registry.clone(), Some(&env)),
            emf,
            cold_start_emf,
            bracket: self.monitor.as_ref().and_then(Monitor::invocation_bracket),
            sink: self.sink.clone(),
            metrics_enabled: self.options.metrics_enabled,
            monitor: self.monitor.clone(),
            pre_warm: std::mem::take(&mut self.pre_warm),
            pre_warmed: tokio::sync::OnceCell::new(),
            flush_buffers: Mutex::default(),
            dropped_seen: std::sync::atomic::AtomicU64::new(0),
        });
        self.shared = Some(shared.clone());
        Ok(shared)
    }

    /// The layer recording this deployment's metrics and running its pre-warm hooks.
    /// Build it after adding the pre-warm hooks.
    pub fn layer(&mut self) -> Result<MetricsLayer> {
        Ok(MetricsLayer {
            shared: self.shared()?,
            flush_in_handler: true,
        })
    }

    /// The two layers [`LambdaDeployment::run`] puts around a handler: the metrics layer,
    /// without its flush when the handler returns, and the layer around lambda_runtime's
    /// API client that flushes once the response is posted.
    fn runtime_layers(&mut self) -> Result<(MetricsLayer, FlushAfterResponse)> {
        let metrics = MetricsLayer {
            flush_in_handler: false,
            ..self.layer()?
        };
        let flush = FlushAfterResponse {
            shared: metrics.shared.clone(),
        };
        Ok((metrics, flush))
    }

    /// The metrics registry (for custom metrics emitted alongside the invocation metrics).
    pub fn registry(&self) -> &MetricsRegistry {
        &self.registry
    }

    /// Flushes pending metrics, then runs the shutdown hooks in order, logging failures.
    pub async fn shutdown(&mut self) -> Result<()> {
        let shared = self.shared()?;
        shared.flush(None);
        run_shutdown_hooks(&self.shutdown).await;
        Ok(())
    }

    /// Registers lift's no-op internal extension (so that Lambda sends SIGTERM before it
    /// shuts the environment down; on SIGTERM or SIGINT the pending metrics are flushed,
    /// the shutdown hooks run and the process exits), then runs `handler` behind
    /// [`MetricsLayer`] until the runtime stops.
    ///
    /// Fails without starting anything when `AWS_LAMBDA_RUNTIME_API` is not set (outside
    /// Lambda or its emulator), where lambda_runtime would panic, and fails when the
    /// extension cannot register.
    pub async fn run<A, F, R, B, St, D, E>(
        mut self,
        handler: F,
    ) -> std::result::Result<(), lambda_runtime::Error>
    where
        F: Service<lambda_runtime::LambdaEvent<A>, Response = R> + Clone + Send + 'static,
        F::Future: Future<Output = std::result::Result<R, F::Error>> + Send + 'static,
        F::Error: Into<lambda_runtime::Diagnostic> + std::fmt::Debug + Send + 'static,
        A: for<'de> serde::Deserialize<'de> + Send + 'static,
        R: lambda_runtime::IntoFunctionResponse<B, St> + Send + 'static,
        B: serde::Serialize,
        St: futures::Stream<Item = std::result::Result<D, E>> + Unpin + Send + 'static,
        D: Into<bytes::Bytes> + Send,
        E: Into<lambda_runtime::Error> + Send + std::fmt::Debug,
    {
        let Some(api) = std::env::var_os("AWS_LAMBDA_RUNTIME_API") else {
            return Err(Error::InvalidConfig(
                "AWS_LAMBDA_RUNTIME_API is not set; run the function in AWS Lambda or under `cargo lambda watch`".into(),
            )
            .into());
        };
        let api = RuntimeApi::parse(&api.to_string_lossy())?;
        check_runtime_env(|name| std::env::var(name).ok())?;
        let (layer, flush) = self.runtime_layers()?;
        // The extension must be registered before the runtime asks for its first event,
        // which ends the Init phase. The logging is set up while the registration's
        // request is under way.
        let level = self.options.level();
        let (registered, ()) = tokio::join!(api.register(), async { install_logging(level) });
        let id = registered?;
        tokio::spawn(graceful_shutdown(
            api,
            id,
            layer.shared.clone(),
            std::mem::take(&mut self.shutdown),
        ));
        // Innermost first: the handler behind the metrics layer, then lambda_runtime's
        // client (it posts the response), then the flush, inside lambda_runtime's
        // invocation span as `lambda_runtime::run` sets it up.
        lambda_runtime::Runtime::new(layer.layer(handler))
            .layer(flush)
            .layer(lambda_runtime::layers::TracingLayer::new())
            .run()
            .await
    }
}

/// Flushes a deployment's metrics once lambda_runtime has posted an invocation's response
/// and before it asks for the next event.
///
/// Lambda freezes the environment only after the runtime asks for the next event, so the
/// documents are still written before any freeze, as Powertools' flush at the end of the
/// handler is; but the caller has its answer without waiting for them (the fresh memory
/// read, the rendering and the write). lambda_runtime's own OpenTelemetry layer flushes at
/// the same point. The work still counts in the invocation's billed duration.
#[derive(Clone)]
struct FlushAfterResponse {
    shared: Arc<Shared>,
}

impl<S> Layer<S> for FlushAfterResponse {
    type Service = FlushAfterResponseService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FlushAfterResponseService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`FlushAfterResponse`] produces, around lambda_runtime's API client.
#[derive(Clone)]
struct FlushAfterResponseService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<lambda_runtime::LambdaInvocation> for FlushAfterResponseService<S>
where
    S: Service<lambda_runtime::LambdaInvocation, Response = ()>,
{
    type Response = ();
    type Error = S::Error;
    type Future = FlushAfterResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, invocation: lambda_runtime::LambdaInvocation) -> Self::Future {
        let request_id = invocation.context.request_id.clone();
        FlushAfterResponseFuture {
            answered: self.inner.call(invocation),
            shared: self.shared.clone(),
            request_id,
        }
    }
}

pin_project_lite::pin_project! {
    /// lambda_runtime's answer to one invocation, then the flush.
    ///
    /// Written out rather than an `async` block, which would have to be `Send` and
    /// `'static` to be boxed: lambda_runtime's own future is neither for every handler
    /// type. Pinned in place rather than boxed: lambda_runtime's future is not moved to the
    /// heap for each invocation.
    struct FlushAfterResponseFuture<F> {
        #[pin]
        answered: F,
        shared: Arc<Shared>,
        request_id: String,
    }
}

impl<F, E> Future for FlushAfterResponseFuture<F>
where
    F: Future<Output = std::result::Result<(), E>>,
{
    type Output = std::result::Result<(), E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The response is posted when this completes, whether the handler failed or not;
        // a failed post still leaves metrics worth writing.
        let result = std::task::ready!(this.answered.poll(cx));
        let request_id = std::mem::take(this.request_id);
        this.shared
            .flush(Some(request_id.as_str()).filter(|id| !id.is_empty()));
        Poll::Ready(result)
    }
}

/// Drives the registered extension and waits for SIGTERM or SIGINT: then flushes the
/// pending metrics, runs the shutdown hooks and exits, as lambda_runtime's graceful-shutdown
/// handler does.
async fn graceful_shutdown(
    api: RuntimeApi,
    id: String,
    shared: Arc<Shared>,
    hooks: Vec<(String, Hook)>,
) {
    let on_signal = async {
        use tokio::signal::unix::{SignalKind, signal};
        let (mut terminate, mut interrupt) = match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
            (Err(err), _) | (_, Err(err)) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM and SIGINT: no graceful shutdown");
                return std::future::pending().await;
            }
        };
        let received = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(
            signal = received,
            "shutting down: flushing metrics, running the shutdown hooks"
        );
        shared.flush(None);
        run_shutdown_hooks(&hooks).await;
        std::process::exit(0);
    };
    let extension = async {
        // Asking for the next event says the extension is ready. Subscribed to no events,
        // it is answered only at shutdown; an error (an emulator without the Extensions
        // API's events) ends the loop, and the signals are still handled.
        loop {
            match api.next_event(&id).await {
                Ok(200) => {}
                Ok(status) => {
                    tracing::debug!(
                        status,
                        "the Extensions API answered the next event with an error"
                    );
                    return;
                }
                Err(err) => {
                    tracing::debug!(error = %err, "cannot ask the Extensions API for the next event");
                    return;
                }
            }
        }
    };
    // The extension first: Lambda starts the first invocation only once every registered
    // extension has asked for its next event.
    tokio::join!(extension, on_signal);
}

/// Fails where lambda_runtime would panic reading its configuration: it requires
/// `AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_FUNCTION_VERSION`, and an
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` that parses as an `i32` as it stands (no spaces).
/// Lambda always sets them; an emulator or a hand-made environment may not.
fn check_runtime_env(var: impl Fn(&str) -> Option<String>) -> Result<()> {
    for name in ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION"] {
        if var(name).is_none() {
            return Err(Error::InvalidConfig(format!(
                "{name} is not set; lambda_runtime needs it: run the function in AWS Lambda or under `cargo lambda watch`"
            )));
        }
    }
    match var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") {
        Some(text) if text.parse::<i32>().is_ok() => Ok(()),
        Some(text) => Err(Error::InvalidEnv {
            name: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            value: text,
            expected: "a whole number of megabytes without spaces, such as 512 (lambda_runtime reads it as an i32)",
        }),
        None => Err(Error::InvalidConfig(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is not set; lambda_runtime needs it: run the function in AWS Lambda or under `cargo lambda watch`".into(),
        )),
    }
}

/// Installs a JSON log subscriber at `level` (CloudWatch Logs parses JSON lines), unless
/// the program installed a subscriber already.
fn install_logging(level: tracing::Level) {
    let installed = tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_ansi(false)
        .with_current_span(false)
        .try_init();
    if installed.is_err() {
        tracing::debug!("a tracing subscriber is installed already; LIFT_LOG_LEVEL left to it");
    }
}

async fn run_shutdown_hooks(hooks: &[(String, Hook)]) {
    for (name, hook) in hooks {
        if let Err(err) = hook().await {
            tracing::warn!(hook = %name, error = %err, "shutdown hook failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::tower::ServiceExt as _;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    /// The deployment's registry takes its options, and values past the pending limit
    /// are counted (and logged at the flush), not lost unnoticed.
    #[tokio::test]
    async fn metrics_options_set_the_limits() {
        let buffer = Buffer::default();
        let mut deployment = LambdaDeployment::new(LambdaOptions::default())
            .emf_sink(Arc::new(Mutex::new(buffer.clone())))
            .metrics_options(crate::MetricsOptions::default().pending_limit(5));
        let registry = deployment.registry().clone();
        let shared = deployment.shared().unwrap();
        for i in 0..8u32 {
            registry.observe("QueueWait", "", crate::Unit::Milliseconds, f64::from(i));
        }
        shared.flush(None);
        assert_eq!(registry.dropped_values(), 3);
        assert_eq!(
            shared
                .dropped_seen
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
        let (_, docs) = buffer.documents();
        let values = docs[0]["QueueWait"].as_array().unwrap().len();
        assert_eq!(values, 5);
    }

    /// A handler that panics is an invocation and an error, as Lambda counts it.
    #[tokio::test]
    async fn a_panicking_handler_counts_as_a_failed_invocation() {
        use futures::FutureExt as _;
        let buffer = Buffer::default();
        let mut deployment = LambdaDeployment::new(LambdaOptions::default())
            .emf_sink(Arc::new(Mutex::new(buffer.clone())));
        let handler =
            lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<u32>| async move {
                if event.payload == 2 {
                    panic!("the handler panics");
                }
                Ok::<_, String>(event.payload)
            });
        let mut service = deployment.layer().unwrap().layer(handler);
        for n in 1..=3 {
            let call = service.ready().await.unwrap().call(event(n, "req"));
            let outcome = std::panic::AssertUnwindSafe(call).catch_unwind().await;
            assert_eq!(outcome.is_err(), n == 2);
        }
        let registry = deployment.registry();
        assert_eq!(registry.counter("Invocations"), Some(3));
        assert_eq!(registry.counter("Errors"), Some(1));
    }

    /// What lambda_runtime would panic on is an error before anything starts.
    #[test]
    fn the_runtime_environment_is_checked_before_lambda_runtime_reads_it() {
        let good: &[(&str, &str)] = &[
            ("AWS_LAMBDA_FUNCTION_NAME", "f"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
        ];
        let with = |change: (&'static str, Option<&'static str>)| {
            let pairs: Vec<(&str, &str)> = good.to_vec();
            move |name: &str| {
                if name == change.0 {
                    return change.1.map(str::to_owned);
                }
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert!(check_runtime_env(with(("UNRELATED", None))).is_ok());
        for change in [
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", Some(" 128 ")),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", Some("99999999999")),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", None),
            ("AWS_LAMBDA_FUNCTION_VERSION", None),
            ("AWS_LAMBDA_FUNCTION_NAME", None),
        ] {
            let err = check_runtime_env(with(change)).unwrap_err();
            assert!(err.to_string().contains(change.0), "{err}");
            assert_eq!(
                lift_core::Classify::kind(&err),
                lift_core::ErrorKind::InvalidInput
            );
        }
        // A size lift's options accept is kept within range, not overflowed.
        let options = LambdaOptions::default().memory_size_mb(u64::MAX);
        assert_eq!(options.lambda_env().memory_limit_bytes, Some(u64::MAX));
    }

    #[test]
    fn options_from_env_with_defaults_and_errors() {
        let options = LambdaOptions::from_vars(vars(&[])).unwrap();
        assert_eq!(options, LambdaOptions::default());
        assert_eq!(options.environment, None, "no environment is assumed");
        assert_eq!(options.log_level, tracing::Level::INFO);
        assert!(options.metrics_enabled);
        let options = LambdaOptions::from_vars(vars(&[
            ("LIFT_ENV", "staging"),
            ("LIFT_LOG_LEVEL", "DEBUG"),
            ("LIFT_METRICS_ENABLED", "0"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
        ]))
        .unwrap();
        assert_eq!(options.environment.as_deref(), Some("staging"));
        assert_eq!(options.level(), tracing::Level::DEBUG);
        assert!(!options.metrics_enabled);
        assert_eq!(options.memory_size_mb, Some(256));
        let err = LambdaOptions::from_vars(vars(&[("LIFT_METRICS_ENABLED", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("LIFT_METRICS_ENABLED"));
        let err = LambdaOptions::from_vars(vars(&[("LIFT_LOG_LEVEL", "loud")])).unwrap_err();
        assert!(err.to_string().contains("LIFT_LOG_LEVEL"), "{err}");
        // The setters give the same options as the variables.
        let built = LambdaOptions::default()
            .environment("staging")
            .log_level(tracing::Level::DEBUG)
            .metrics_enabled(false)
            .memory_size_mb(256)
            .function_name("orders");
        assert_eq!(built, options);
    }

    /// `LIFT_ENV` selects the environment, as for the lift CLI; `LIFT_ENVIRONMENT` is its
    /// older name, used only when `LIFT_ENV` is unset or empty.
    #[test]
    fn the_environment_is_the_selected_one_or_none() {
        let env = |pairs| LambdaOptions::from_vars(vars(pairs)).unwrap().environment;
        assert_eq!(env(&[("LIFT_ENV", "dev")]).as_deref(), Some("dev"));
        assert_eq!(env(&[("LIFT_ENVIRONMENT", "qa")]).as_deref(), Some("qa"));
        assert_eq!(
            env(&[("LIFT_ENV", "prod"), ("LIFT_ENVIRONMENT", "qa")]).as_deref(),
            Some("prod")
        );
        assert_eq!(
            env(&[("LIFT_ENV", " "), ("LIFT_ENVIRONMENT", "qa")]).as_deref(),
            Some("qa")
        );
        assert_eq!(env(&[("LIFT_ENV", ""), ("LIFT_ENVIRONMENT", "")]), None);
        assert_eq!(env(&[]), None);
    }

    #[test]
    fn powertools_variables_are_honoured() {
        let options = LambdaOptions::from_vars(vars(&[
            ("POWERTOOLS_SERVICE_NAME", "payments"),
            ("POWERTOOLS_METRICS_NAMESPACE", "Shop"),
        ]))
        .unwrap();
        assert_eq!(options.service, "payments");
        assert_eq!(options.metrics_namespace, "Shop");
        // lift's own variable wins.
        let options = LambdaOptions::from_vars(vars(&[
            ("POWERTOOLS_METRICS_NAMESPACE", "Shop"),
            ("LIFT_METRICS_NAMESPACE", "Lift"),
        ]))
        .unwrap();
        assert_eq!(options.metrics_namespace, "Lift");
        assert_eq!(options.service, "service_undefined");
    }

    /// A non-ASCII environment used to make CloudWatch drop every document silently; now
    /// the deployment refuses it when the layer is built.
    #[test]
    fn a_dimension_cloudwatch_rejects_fails_the_layer() {
        let options = LambdaOptions::from_vars(vars(&[("LIFT_ENV", "Prüfung")])).unwrap();
        let err = LambdaDeployment::new(options).layer().unwrap_err();
        assert!(err.to_string().contains("printable ASCII"), "{err}");
    }

    /// The selected environment is a dimension of every document but the cold-start one.
    #[tokio::test]
    async fn the_selected_environment_is_a_dimension() {
        let buffer = Buffer::default();
        let options = LambdaOptions::from_vars(vars(&[
            ("LIFT_ENV", "staging"),
            ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
        ]))
        .unwrap();
        let mut deployment =
            LambdaDeployment::new(options).emf_sink(Arc::new(Mutex::new(buffer.clone())));
        let handler =
            lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<u32>| async move {
                Ok::<_, String>(event.payload)
            });
        let mut service = deployment.layer().unwrap().layer(handler);
        service
            .ready()
            .await
            .unwrap()
            .call(event(1, "req-1"))
            .await
            .unwrap();
        let (text, docs) = buffer.documents();
        assert_eq!(docs.len(), 2, "{text}");
        assert!(
            docs[0].get("Environment").is_none(),
            "cold start: function and service only"
        );
        assert_eq!(docs[1]["Environment"], "staging");
        assert_eq!(
            docs[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["service", "FunctionName", "Environment"]])
        );
    }

    /// With the layers of [`LambdaDeployment::run`], the documents are written after
    /// lambda_runtime's client has posted the response, not before: the caller does not
    /// wait for them. (That `run` puts the flush layer around the real client is shown
    /// end to end under cargo-lambda by `tests/lambda_e2e.rs`.)
    #[tokio::test]
    async fn the_deployment_flushes_after_the_response_is_posted() {
        let buffer = Buffer::default();
        let options =
            LambdaOptions::from_vars(vars(&[("AWS_LAMBDA_FUNCTION_NAME", "orders")])).unwrap();
        let mut deployment =
            LambdaDeployment::new(options).emf_sink(Arc::new(Mutex::new(buffer.clone())));
        // The layers `run` uses.
        let (metrics, flush) = deployment.runtime_layers().unwrap();
        let handler =
            lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<u32>| async move {
                Ok::<_, String>(event.payload)
            });
        let handler = metrics.layer(handler);
        // Stands in for lambda_runtime's API client: runs the handler, then "posts" the
        // response, recording what the EMF output held at that moment.
        let at_post: Arc<Mutex<Vec<usize>>> = Arc::default();
        let (seen, written) = (at_post.clone(), buffer.clone());
        let client =
            lambda_runtime::service_fn(move |invocation: lambda_runtime::LambdaInvocation| {
                let (mut handler, seen, written) = (handler.clone(), seen.clone(), written.clone());
                async move {
                    let event = lambda_runtime::LambdaEvent::new(7u32, invocation.context);
                    let answer = handler.ready().await?.call(event).await;
                    assert_eq!(answer, Ok(7));
                    seen.lock().unwrap().push(written.0.lock().unwrap().len());
                    Ok::<(), lambda_runtime::Error>(())
                }
            });
        let mut service = flush.layer(client);
        for n in 1..=2 {
            let mut context = lambda_runtime::Context::default();
            context.request_id = format!("req-{n}");
            let invocation = lambda_runtime::LambdaInvocation {
                parts: http::Response::new(()).into_parts().0,
                body: bytes::Bytes::new(),
                context,
            };
            service
                .ready()
                .await
                .unwrap()
                .call(invocation)
                .await
                .unwrap();
        }
        let (text, docs) = buffer.documents();
        // Nothing was written when the first response was posted; the second response was
        // posted after the first invocation's documents and before its own.
        let first_flush = text.find("req-2").unwrap_or(text.len());
        let first_flush = text[..first_flush].rfind('\n').map_or(0, |i| i + 1);
        assert_eq!(*at_post.lock().unwrap(), vec![0, first_flush], "{text}");
        // The cold start, then one document per invocation, each with its request id.
        assert_eq!(docs.len(), 3, "{text}");
        assert_eq!(docs[0]["ColdStart"], 1.0);
        assert_eq!(docs[1]["function_request_id"], "req-1");
        assert_eq!(docs[1]["Invocations"], 1.0);
        assert_eq!(docs[2]["function_request_id"], "req-2");
        assert_eq!(docs[2]["Invocations"], 1.0);
    }

    /// The layer brackets each invocation for the monitor's stall heartbeat: a handler
    /// that blocks the runtime's only thread is a stall, while the same block between
    /// invocations (where Lambda may freeze the environment) is not.
    #[tokio::test(flavor = "current_thread")]
    async fn the_layer_brackets_invocations_for_the_stall_heartbeat() {
        let stall = crate::StallOptions::default()
            .period(std::time::Duration::from_millis(5))
            .freeze_gap(Some(std::time::Duration::from_secs(2)));
        let monitor = Monitor::start(crate::MonitorOptions::default().stall(Some(stall))).unwrap();
        let mut deployment = LambdaDeployment::new(LambdaOptions::default())
            .emf_sink(Arc::new(Mutex::new(Buffer::default())))
            .monitor(monitor.clone());
        let handler =
            lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<u32>| async move {
                if event.payload == 1 {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                } else {
                    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                }
                Ok::<_, String>(event.payload)
            });
        let mut service = deployment.layer().unwrap().layer(handler);
        let mut call = async |n: u32| {
            service
                .ready()
                .await
                .unwrap()
                .call(event(n, "req"))
                .await
                .unwrap();
        };
        let max_stall = || monitor.refresh().stall.map_or(0.0, |s| s.max_seconds);
        call(0).await;
        std::thread::sleep(std::time::Duration::from_millis(300));
        call(0).await;
        assert!(
            max_stall() < 0.2,
            "a block between invocations: {}",
            max_stall()
        );
        call(1).await;
        call(0).await;
        assert!(max_stall() >= 0.25, "a blocking handler: {}", max_stall());
    }

    /// `MemoryUsed` is read when the documents are written, not taken from the monitor's
    /// last sample: memory the handler touched after that sample counts.
    /// A burst of values is written whole, in documents of at most 100 values, and the
    /// flush gives back the output capacity it needed; a flush with nothing pending writes
    /// nothing.
    #[tokio::test]
    async fn a_burst_is_written_whole_and_its_buffer_given_back() {
        let buffer = Buffer::default();
        let mut deployment = LambdaDeployment::new(LambdaOptions::default())
            .emf_sink(Arc::new(Mutex::new(buffer.clone())));
        let registry = deployment.registry().clone();
        let shared = deployment.shared().unwrap();
        for i in 0..5_000u32 {
            // Long decimals: 5,000 of them are more than the output capacity kept.
            let value = f64::from(i) + 0.123_456_789_012;
            registry.observe("QueueWait", "", crate::Unit::Milliseconds, value);
        }
        shared.flush(Some("req-1"));
        let (text, docs) = buffer.documents();
        assert!(text.len() > FLUSH_OUTPUT_KEPT, "{} bytes", text.len());
        let values: usize = docs
            .iter()
            .filter_map(|doc| doc["QueueWait"].as_array())
            .map(|values| {
                assert!(values.len() <= 100);
                values.len()
            })
            .sum();
        assert_eq!(values, 5_000);
        let kept = shared.flush_buffers.lock().unwrap().out.capacity();
        assert!(kept <= FLUSH_OUTPUT_KEPT, "kept {kept} bytes");
        let written = text.len();
        shared.flush(Some("req-2"));
        assert_eq!(buffer.documents().0.len(), written, "an empty flush wrote");
    }

    #[tokio::test]
    async fn memory_used_is_read_at_the_flush() {
        let buffer = Buffer::default();
        // A sampler that never ticks again after its first sample.
        let monitor = Monitor::start(
            crate::MonitorOptions::default().interval(std::time::Duration::from_secs(3600)),
        )
        .unwrap();
        let sampled = monitor.snapshot().memory.rss_bytes.unwrap();
        let mut deployment = LambdaDeployment::new(LambdaOptions::default())
            .emf_sink(Arc::new(Mutex::new(buffer.clone())))
            .monitor(monitor.clone());
        const TOUCHED: usize = 192 << 20;
        let handler =
            lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<u32>| async move {
                // Touch every page, so that it is resident, and keep it until the end.
                let block = vec![1u8; TOUCHED];
                Ok::<_, String>(std::hint::black_box(block).len() as u32 + event.payload)
            });
        // Hold the memory past the flush: the handler's block is freed when it returns, so
        // this invocation's flush must come while another block is still held.
        let held = vec![1u8; TOUCHED];
        let mut service = deployment.layer().unwrap().layer(handler);
        service
            .ready()
            .await
            .unwrap()
            .call(event(1, "req-1"))
            .await
            .unwrap();
        std::hint::black_box(&held);
        assert_eq!(
            monitor.snapshot().memory.rss_bytes,
            Some(sampled),
            "no new sample"
        );
        let (_, docs) = buffer.documents();
        let used_mb = docs
            .iter()
            .find_map(|doc| doc["MemoryUsed"].as_f64())
            .unwrap();
        let sampled_mb = sampled as f64 / (1024.0 * 1024.0);
        assert!(
            used_mb >= sampled_mb + 150.0,
            "MemoryUsed {used_mb} MB, last sample {sampled_mb} MB"
        );
        drop(held);
    }

    fn event(n: u32, request_id: &str) -> lambda_runtime::LambdaEvent<u32> {
        let mut context = lambda_runtime::Context::default();
        context.request_id = request_id.to_owned();
        lambda_runtime::LambdaEvent::new(n, context)
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Buffer {
        /// What was written, and each line parsed as a JSON document.
        fn documents(&self) -> (String, Vec<serde_json::Value>) {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            let docs = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            (text, docs)
        }
    }
    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn layer_records_invocations_runs_pre_warm_once_and_flushes_on_shutdown() {
        let buffer = Buffer::default();
        let options = LambdaOptions::from_vars(vars(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ]))
        .unwrap();
        let warmed = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (w, c) = (warmed.clone(), closed.clone());
        let deployment = LambdaDeployment::new(options)
            .emf_sink(Arc::new(Mutex::new(buffer.clone())))
            .pre_warm("cache", move || {
                let w = w.clone();
                async move {
                    w.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            })
            .pre_warm("broken", || async {
                Err(lift_core::Error::invalid_input("no such table"))
            })
            .on_shutdown("audit", move || {
                let c = c.clone();
                async move {
                    c.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            });
        let monitor = Monitor::start(crate::MonitorOptions::default()).unwrap();
        let mut deployment = deployment
            .monitor(monitor)
            .default_dimension("Team", "checkout");
        let layer = deployment.layer().unwrap();
        let handler =
            lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<u32>| async move {
                let n = event.payload;
                if n % 2 == 0 {
                    Ok(n)
                } else {
                    Err(format!("odd {n}"))
                }
            });
        let mut service = layer.layer(handler);
        for n in [2u32, 3, 4] {
            let result = service
                .ready()
                .await
                .unwrap()
                .call(event(n, &format!("req-{n}")))
                .await;
            assert_eq!(result.is_ok(), n % 2 == 0);
        }
        assert_eq!(warmed.load(Ordering::SeqCst), 1);
        let registry = deployment.registry();
        assert_eq!(registry.counter("Invocations"), Some(3));
        assert_eq!(registry.counter("Errors"), Some(1));
        assert_eq!(registry.counter("ColdStart"), Some(1));
        assert!(registry.gauge("PreWarmDuration").is_some());
        let (_, docs) = buffer.documents();
        assert_eq!(
            docs.len(),
            4,
            "the cold start, then one document per invocation"
        );
        // ColdStart alone, dimensioned by function and service, as Powertools does.
        assert_eq!(docs[0]["ColdStart"], 1.0);
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["function_name", "service"]])
        );
        assert_eq!(docs[0]["function_name"], "orders");
        assert_eq!(docs[0]["service"], "service_undefined");
        assert_eq!(
            docs[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        let first = &docs[1];
        assert!(first.get("ColdStart").is_none());
        assert_eq!(first["FunctionName"], "orders");
        // No environment selected: no `Environment` dimension, rather than `production`.
        assert!(first.get("Environment").is_none());
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["service", "FunctionName", "Team"]])
        );
        assert_eq!(first["service"], "service_undefined");
        assert_eq!(first["Team"], "checkout");
        assert_eq!(first["function_request_id"], "req-2");
        assert!(
            first["MemoryUsed"].as_f64().unwrap() > 1.0,
            "a fresh RSS in MiB"
        );
        assert!(
            first["MaxMemoryUsed"].as_f64().unwrap() >= first["MemoryUsed"].as_f64().unwrap() * 0.5
        );
        assert_eq!(docs[2]["Errors"], 1.0);
        assert_eq!(docs[2]["function_request_id"], "req-3");
        registry.increment("Custom", "", 1);
        deployment.shutdown().await.unwrap();
        assert_eq!(closed.load(Ordering::SeqCst), 1);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert!(text.lines().last().unwrap().contains("\"Custom\":1"));
    }
}
