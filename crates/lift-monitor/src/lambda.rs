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
use crate::error::{Error, Result};
use crate::invocation::InvocationMetrics;
use crate::metrics::MetricsRegistry;
use crate::monitor::Monitor;
use crate::snapshot::LambdaEnv;
use crate::stall::InvocationBracket;

type HookFuture = Pin<Box<dyn Future<Output = std::result::Result<(), lift_core::Error>> + Send>>;
type Hook = Arc<dyn Fn() -> HookFuture + Send + Sync>;
/// Where EMF lines go: stdout in Lambda, a buffer in tests.
pub type EmfSink = Arc<Mutex<dyn Write + Send>>;

/// The settings of a Lambda deployment, read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaConfig {
    /// `LIFT_ENVIRONMENT`, the `Environment` dimension of the metrics. Default: `production`.
    pub environment: String,
    /// `LIFT_LOG_LEVEL`: `trace`, `debug`, `info`, `warn` or `error`. Default: `info`.
    /// [`LambdaDeployment::run`] installs a JSON log subscriber at this level unless the
    /// program installed one already.
    pub log_level: String,
    /// `LIFT_METRICS_ENABLED`: `true`/`false`/`1`/`0`. Default: true.
    pub metrics_enabled: bool,
    /// `LIFT_METRICS_NAMESPACE`, else `POWERTOOLS_METRICS_NAMESPACE`, the EMF namespace.
    /// Default: `lift`.
    pub metrics_namespace: String,
    /// `POWERTOOLS_SERVICE_NAME`, the `service` dimension. Default: `service_undefined`,
    /// as in Lambda Powertools.
    pub service: String,
    /// `AWS_LAMBDA_FUNCTION_NAME`, the `FunctionName` dimension.
    pub function_name: Option<String>,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in megabytes.
    pub memory_size_mb: Option<u64>,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`.
    pub initialization_type: Option<String>,
}

impl LambdaConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `var`. Fails on a value that cannot be parsed.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let log_level = var("LIFT_LOG_LEVEL")
            .unwrap_or_else(|| "info".to_owned())
            .to_ascii_lowercase();
        if !["trace", "debug", "info", "warn", "error"].contains(&log_level.as_str()) {
            return Err(Error::InvalidEnv {
                name: "LIFT_LOG_LEVEL",
                value: log_level,
                expected: "one of trace, debug, info, warn, error",
            });
        }
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
        Ok(LambdaConfig {
            environment: var("LIFT_ENVIRONMENT")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "production".to_owned()),
            log_level,
            metrics_enabled,
            metrics_namespace: var("LIFT_METRICS_NAMESPACE")
                .or_else(|| var("POWERTOOLS_METRICS_NAMESPACE"))
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "lift".to_owned()),
            service: var("POWERTOOLS_SERVICE_NAME")
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| "service_undefined".to_owned()),
            function_name: var("AWS_LAMBDA_FUNCTION_NAME"),
            memory_size_mb: lambda
                .as_ref()
                .and_then(|l| l.memory_limit_bytes)
                .map(|b| b / (1024 * 1024)),
            initialization_type: lambda.and_then(|l| l.initialization_type.map(|t| t.to_string())),
        })
    }

    /// The level of `log_level`.
    pub fn level(&self) -> tracing::Level {
        match self.log_level.as_str() {
            "trace" => tracing::Level::TRACE,
            "debug" => tracing::Level::DEBUG,
            "warn" => tracing::Level::WARN,
            "error" => tracing::Level::ERROR,
            _ => tracing::Level::INFO,
        }
    }

    fn lambda_env(&self) -> LambdaEnv {
        LambdaEnv {
            memory_limit_bytes: self.memory_size_mb.map(|mb| mb * 1024 * 1024),
            initialization_type: self.initialization_type.as_deref().map(Arc::from),
            function_name: self.function_name.as_deref().map(Arc::from),
        }
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
}

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
        let mut pending = self.metrics.registry().take_pending();
        let cold: Vec<_> = match pending.iter().position(|(name, _, _)| name == "ColdStart") {
            Some(index) => vec![pending.remove(index)],
            None => Vec::new(),
        };
        let properties: Vec<(&str, &str)> = request_id
            .map(|id| ("function_request_id", id))
            .into_iter()
            .collect();
        let now = chrono::Utc::now();
        let lines = self
            .cold_start_emf
            .render_with(&cold, now, &properties)
            .and_then(|mut lines| {
                lines.extend(self.emf.render_with(&pending, now, &properties)?);
                Ok(lines)
            });
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        let written = lines.and_then(|lines| {
            for line in lines {
                writeln!(sink, "{line}").map_err(|source| Error::Io {
                    path: "EMF output".into(),
                    source,
                })?;
            }
            sink.flush().map_err(|source| Error::Io {
                path: "EMF output".into(),
                source,
            })
        });
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
        }
    }
}

/// The service [`MetricsLayer`] produces.
#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    shared: Arc<Shared>,
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
        let request_id = request.context.request_id.clone();
        Box::pin(async move {
            // Only heartbeats inside invocations count as stall samples.
            let in_flight = shared.bracket.as_ref().map(InvocationBracket::enter);
            let invocation = shared.metrics.begin();
            shared.run_pre_warm().await;
            let result = inner.call(request).await;
            shared.metrics.finish(invocation, result.is_ok());
            drop(in_flight);
            // Lambda may freeze the environment right after the response: emit now.
            shared.flush(Some(request_id.as_str()).filter(|id| !id.is_empty()));
            result
        })
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
    config: LambdaConfig,
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
            .field("config", &self.config)
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
        Ok(Self::new(LambdaConfig::from_env()?))
    }

    /// A deployment with `config`, writing EMF to stdout.
    pub fn new(config: LambdaConfig) -> Self {
        LambdaDeployment {
            config,
            registry: MetricsRegistry::default(),
            sink: Arc::new(Mutex::new(std::io::stdout())),
            pre_warm: Vec::new(),
            shutdown: Vec::new(),
            monitor: None,
            default_dimensions: Vec::new(),
            shared: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LambdaConfig {
        &self.config
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
        let mut emf = EmfEmitter::new(&self.config.metrics_namespace)?
            .dimension("service", &self.config.service)?;
        let mut cold_start_emf = EmfEmitter::new(&self.config.metrics_namespace)?;
        if let Some(name) = &self.config.function_name {
            emf = emf.dimension("FunctionName", name)?;
            cold_start_emf = cold_start_emf.dimension("function_name", name)?;
        }
        cold_start_emf = cold_start_emf.dimension("service", &self.config.service)?;
        emf = emf.dimension("Environment", &self.config.environment)?;
        for (key, value) in &self.default_dimensions {
            emf = emf.dimension(key, value)?;
        }
        let env = self.config.lambda_env();
        let shared = Arc::new(Shared {
            metrics: InvocationMetrics::new(self.registry.clone(), Some(&env)),
            emf,
            cold_start_emf,
            bracket: self.monitor.as_ref().and_then(Monitor::invocation_bracket),
            sink: self.sink.clone(),
            metrics_enabled: self.config.metrics_enabled,
            monitor: self.monitor.clone(),
            pre_warm: std::mem::take(&mut self.pre_warm),
            pre_warmed: tokio::sync::OnceCell::new(),
        });
        self.shared = Some(shared.clone());
        Ok(shared)
    }

    /// The layer recording this deployment's metrics and running its pre-warm hooks.
    /// Build it after adding the pre-warm hooks.
    pub fn layer(&mut self) -> Result<MetricsLayer> {
        Ok(MetricsLayer {
            shared: self.shared()?,
        })
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

    /// Registers the graceful-shutdown handler (lambda_runtime's no-op extension, so that
    /// Lambda sends SIGTERM), then runs `handler` behind [`MetricsLayer`] until the runtime stops.
    ///
    /// Fails without starting anything when `AWS_LAMBDA_RUNTIME_API` is not set (outside
    /// Lambda or its emulator), where lambda_runtime would panic.
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
        if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
            return Err(Error::InvalidConfig(
                "AWS_LAMBDA_RUNTIME_API is not set; run the function in AWS Lambda or under `cargo lambda watch`".into(),
            )
            .into());
        }
        install_logging(self.config.level());
        let layer = self.layer()?;
        let shared = layer.shared.clone();
        let hooks = std::mem::take(&mut self.shutdown);
        lambda_runtime::spawn_graceful_shutdown_handler(move || async move {
            shared.flush(None);
            run_shutdown_hooks(&hooks).await;
        })
        .await;
        lambda_runtime::run(layer.layer(handler)).await
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

    #[test]
    fn config_from_env_with_defaults_and_errors() {
        let config = LambdaConfig::from_vars(vars(&[])).unwrap();
        assert_eq!(config.environment, "production");
        assert_eq!(config.log_level, "info");
        assert!(config.metrics_enabled);
        let config = LambdaConfig::from_vars(vars(&[
            ("LIFT_ENVIRONMENT", "staging"),
            ("LIFT_LOG_LEVEL", "DEBUG"),
            ("LIFT_METRICS_ENABLED", "0"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
        ]))
        .unwrap();
        assert_eq!(
            (config.environment.as_str(), config.log_level.as_str()),
            ("staging", "debug")
        );
        assert!(!config.metrics_enabled);
        assert_eq!(config.memory_size_mb, Some(256));
        let err = LambdaConfig::from_vars(vars(&[("LIFT_METRICS_ENABLED", "maybe")])).unwrap_err();
        assert!(err.to_string().contains("LIFT_METRICS_ENABLED"));
        assert!(LambdaConfig::from_vars(vars(&[("LIFT_LOG_LEVEL", "loud")])).is_err());
        assert_eq!(config.level(), tracing::Level::DEBUG);
    }

    #[test]
    fn powertools_variables_are_honoured() {
        let config = LambdaConfig::from_vars(vars(&[
            ("POWERTOOLS_SERVICE_NAME", "payments"),
            ("POWERTOOLS_METRICS_NAMESPACE", "Shop"),
        ]))
        .unwrap();
        assert_eq!(config.service, "payments");
        assert_eq!(config.metrics_namespace, "Shop");
        // lift's own variable wins.
        let config = LambdaConfig::from_vars(vars(&[
            ("POWERTOOLS_METRICS_NAMESPACE", "Shop"),
            ("LIFT_METRICS_NAMESPACE", "Lift"),
        ]))
        .unwrap();
        assert_eq!(config.metrics_namespace, "Lift");
        assert_eq!(config.service, "service_undefined");
    }

    /// A non-ASCII environment used to make CloudWatch drop every document silently; now
    /// the deployment refuses it when the layer is built.
    #[test]
    fn a_dimension_cloudwatch_rejects_fails_the_layer() {
        let config = LambdaConfig::from_vars(vars(&[("LIFT_ENVIRONMENT", "Prüfung")])).unwrap();
        let err = LambdaDeployment::new(config).layer().unwrap_err();
        assert!(err.to_string().contains("printable ASCII"), "{err}");
    }

    fn event(n: u32, request_id: &str) -> lambda_runtime::LambdaEvent<u32> {
        let mut context = lambda_runtime::Context::default();
        context.request_id = request_id.to_owned();
        lambda_runtime::LambdaEvent::new(n, context)
    }

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
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
        let config = LambdaConfig::from_vars(vars(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
        ]))
        .unwrap();
        let warmed = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (w, c) = (warmed.clone(), closed.clone());
        let deployment = LambdaDeployment::new(config)
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
        let monitor = Monitor::start(crate::MonitorConfig::default()).unwrap();
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
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let docs: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
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
        assert_eq!(first["Environment"], "production");
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
