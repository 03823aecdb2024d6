//! The four-step rotation engine: createSecret, setSecret, testSecret, finishSecret.
//!
//! The engine drives the steps against any [`SecretsProvider`]; a [`Rotator`]
//! changes the credential in the user's target system (setSecret) and proves
//! the new value works (testSecret). Each step is idempotent, as in AWS's
//! rotation template, and the step reached is persisted before the next one
//! starts, so after a crash [`RotationEngine::resume`] continues where the
//! rotation stopped and never loses a value.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, Utc};
use lift_core::{
    AuditEvent, AuditSink, Classify, Clock, ErrorKind, NoopAuditSink, Outcome, PutOptions,
    Resource, SecretDescription, SecretName, SecretValue, SecretsProvider, StageLabel, StageMove,
    SystemClock, VersionId, VersionSelector,
};

use crate::faults::FaultInjector;
use crate::generate::ValueKind;
use crate::rotation_state::{
    RotationCheckpoint, RotationOutcome, RotationRecord, RotationSchedule, RotationState,
    RotationStep,
};
use crate::rotation_store::{RotationGuard, RotationStore};
use crate::{Error, Result};

/// What a [`Rotator`] is told about the step it runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StepContext {
    /// The secret.
    pub name: SecretName,
    /// The rotation's id (also the audit correlation id).
    pub rotation_id: String,
    /// The version being rotated in (AWSPENDING).
    pub pending_version: VersionId,
    /// The version that is AWSCURRENT now, if any.
    pub current_version: Option<VersionId>,
    /// The version that is AWSPREVIOUS now, if any.
    pub previous_version: Option<VersionId>,
    previous: Option<SecretValue>,
}

impl StepContext {
    /// The value of AWSPREVIOUS, if a version holds it (in setSecret; `None` in testSecret).
    ///
    /// AWS's rotation templates fall back to it in setSecret when the current
    /// credential no longer logs in (a rotation that changed the target system and
    /// then failed before finishSecret, for example).
    pub fn previous(&self) -> Option<&SecretValue> {
        self.previous.as_ref()
    }
}

/// Changes a credential in the system that uses it, as the setSecret and
/// testSecret steps of an AWS rotation function do.
///
/// Both methods may run more than once for one rotation (after a crash or a
/// retry), so they must be idempotent. Their errors are stored in rotation
/// history: they must not contain the secret's value.
#[async_trait::async_trait]
pub trait Rotator: Send + Sync {
    /// A short name for logs and audit events, such as `postgres`.
    fn name(&self) -> &str;

    /// Makes the target system accept `pending`. `current` is the value in use now.
    async fn set_secret(
        &self,
        step: &StepContext,
        pending: &SecretValue,
        current: Option<&SecretValue>,
    ) -> lift_core::Result<()>;

    /// Proves that `pending` works against the target system.
    async fn test_secret(&self, step: &StepContext, pending: &SecretValue)
    -> lift_core::Result<()>;
}

/// A rotator for secrets that no outside system checks: setSecret changes
/// nothing, and testSecret only checks that the pending value can be read
/// back from the store and is not empty.
///
/// This is a store-only rotation. Use it for values that lift itself hands out
/// (a token that services read from the store at start-up), not for database
/// passwords, whose server must learn the new value in setSecret.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOnlyRotator;

#[async_trait::async_trait]
impl Rotator for StoreOnlyRotator {
    fn name(&self) -> &str {
        "store-only"
    }

    async fn set_secret(
        &self,
        _step: &StepContext,
        _pending: &SecretValue,
        _current: Option<&SecretValue>,
    ) -> lift_core::Result<()> {
        Ok(())
    }

    async fn test_secret(
        &self,
        step: &StepContext,
        pending: &SecretValue,
    ) -> lift_core::Result<()> {
        if pending.is_empty() {
            return Err(lift_core::Error::new(
                ErrorKind::Integrity,
                format!(
                    "pending version {} of secret {} is empty",
                    step.pending_version, step.name
                ),
            ));
        }
        Ok(())
    }
}

/// What happens to AWSPENDING when setSecret or testSecret fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnFailure {
    /// Keep AWSPENDING and the checkpoint, so that `resume` retries the failed step.
    #[default]
    KeepPending,
    /// Remove AWSPENDING and forget the rotation; the next `rotate` starts afresh.
    CleanUp,
}

/// The engine's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// What a failed setSecret or testSecret leaves behind. A failed finishSecret
    /// always keeps its checkpoint, because the target system may already use the new value.
    pub on_failure: OnFailure,
    /// How many history records each secret keeps (default 10).
    pub history_limit: usize,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        RotationPolicy {
            on_failure: OnFailure::KeepPending,
            history_limit: 10,
        }
    }
}

/// Another rotator of the same secrets, such as AWS Secrets Manager's own rotation
/// (a rotation Lambda with `RotationEnabled`), which lift must not race.
#[async_trait::async_trait]
pub trait NativeRotation: Send + Sync {
    /// Who else rotates `name`, described for an error message, or `None` when no one does.
    async fn other_rotator(&self, name: &SecretName) -> lift_core::Result<Option<String>>;
}

/// A check, made before a rotation writes anything, that the caller is allowed every
/// call the rotation will make. A refusal found here changes nothing; one found later
/// (a check that could not be made up front) is handled by the engine as any failed step.
#[async_trait::async_trait]
pub trait RotationPreflight: Send + Sync {
    /// Returns a [`ErrorKind::PermissionDenied`] error naming what is refused when the
    /// caller may not rotate `name`, and `Ok` when it may or when that cannot be told
    /// without changing anything.
    async fn check_rotation(&self, name: &SecretName) -> lift_core::Result<()>;
}

/// Options of [`RotationEngine::rotate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateOptions {
    kind: Option<ValueKind>,
    field: Option<String>,
    force: bool,
}

impl RotateOptions {
    /// The kind of value to generate. It is saved as the secret's declared kind, so
    /// later rotations (`resume`, `rotate_due`) use it too. Without one, the secret's
    /// declared kind, or else a password ([`ValueKind::rotation_default`]); nothing is
    /// guessed from the old value.
    #[must_use]
    pub fn kind(mut self, kind: ValueKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// The field to rotate when the secret is a JSON object (default `password`, as in
    /// AWS's rotation templates). Every other field is kept as it is.
    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Rotates even when another rotator ([`NativeRotation`]) rotates the secret too.
    #[must_use]
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// The result of a rotation, as `lift secrets rotate --json` prints it. It holds no value.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct RotationReport {
    /// The secret.
    pub name: SecretName,
    /// The rotation's id.
    pub rotation_id: String,
    /// How it ended.
    pub outcome: RotationOutcome,
    /// The last step completed.
    pub step_reached: Option<RotationStep>,
    /// The version that was AWSCURRENT before.
    pub old_version: Option<VersionId>,
    /// The version that is AWSCURRENT now.
    pub new_version: VersionId,
    /// Whether this run continued an interrupted rotation.
    pub resumed: bool,
}

/// Drives rotations, schedules and history for one provider.
///
/// ```
/// use std::sync::Arc;
/// use lift_core::{PutOptions, SecretsProvider, SecretValue, VersionSelector};
/// use lift_secrets::{MemoryRotationStore, MemorySecretsProvider, RotateOptions, RotationEngine, StoreOnlyRotator};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> lift_secrets::Result<()> {
/// let provider = Arc::new(MemorySecretsProvider::default());
/// let name = "api/token".parse()?;
/// provider.put(&name, &SecretValue::from("0123456789abcdef0123456789abcdef"), &PutOptions::default()).await?;
/// let engine = RotationEngine::new(provider.clone(), Arc::new(MemoryRotationStore::default()));
/// let report = engine.rotate(&name, &StoreOnlyRotator, &RotateOptions::default()).await?;
/// let current = provider.get(&name, &VersionSelector::default()).await?;
/// assert_eq!(current.version_id, report.new_version);
/// assert_eq!(current.value.len(), 32, "a 32-character password unless another kind is declared");
/// # Ok(()) }
/// ```
pub struct RotationEngine {
    provider: Arc<dyn SecretsProvider>,
    store: Arc<dyn RotationStore>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    policy: RotationPolicy,
    faults: FaultInjector,
    enabled: AtomicBool,
    native: Option<Arc<dyn NativeRotation>>,
    preflight: Option<Arc<dyn RotationPreflight>>,
}

impl std::fmt::Debug for RotationEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationEngine")
            .field("store", &self.store)
            .field("policy", &self.policy)
            .field("enabled", &self.enabled.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Which run of the steps this is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    Fresh,
    Resumed,
}

impl RotationEngine {
    /// An engine over `provider`, keeping its state in `store`, with no audit sink and the system clock.
    pub fn new(provider: Arc<dyn SecretsProvider>, store: Arc<dyn RotationStore>) -> Self {
        RotationEngine {
            provider,
            store,
            audit: Arc::new(NoopAuditSink),
            clock: Arc::new(SystemClock),
            policy: RotationPolicy::default(),
            faults: FaultInjector::default(),
            enabled: AtomicBool::new(true),
            native: None,
            preflight: None,
        }
    }

    /// Runs `preflight` before `rotate` and `resume` write anything. The AWS provider
    /// implements it with IAM's `SimulatePrincipalPolicy`.
    #[must_use]
    pub fn with_preflight(mut self, preflight: Arc<dyn RotationPreflight>) -> Self {
        self.preflight = Some(preflight);
        self
    }

    /// Refuses to rotate secrets that `native` says another rotator rotates, unless
    /// [`RotateOptions::force`] is set. The AWS provider implements it from
    /// `RotationEnabled` and `RotationRules`.
    #[must_use]
    pub fn with_native_rotation(mut self, native: Arc<dyn NativeRotation>) -> Self {
        self.native = Some(native);
        self
    }

    /// Sends every step, failure and cancellation to `audit`.
    #[must_use]
    pub fn with_audit(mut self, audit: Arc<dyn AuditSink>) -> Self {
        self.audit = audit;
        self
    }

    /// Uses `clock` for schedules and records.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the policy.
    #[must_use]
    pub fn with_policy(mut self, policy: RotationPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The fault plans; add some to test how a workflow handles failed rotations.
    pub fn faults(&self) -> &FaultInjector {
        &self.faults
    }

    /// Enables or disables rotation for every secret of this engine.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Whether rotation is enabled for this engine.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::SeqCst)
    }

    async fn preflight(&self, name: &SecretName) -> Result<()> {
        if let Some(preflight) = &self.preflight {
            preflight.check_rotation(name).await?;
        }
        Ok(())
    }

    async fn lock(&self, name: &SecretName) -> Result<RotationGuard> {
        self.store.try_lock(name).await?.ok_or_else(|| {
            Error::RotationInProgress(format!(
                "a rotation of secret {name} is running in another process or task; wait for it to finish, then retry"
            ))
        })
    }

    /// The secret's description, then its lock, so that a name that does not exist
    /// leaves no lock file behind.
    async fn describe_and_lock(
        &self,
        name: &SecretName,
    ) -> Result<(SecretDescription, RotationGuard)> {
        let description = self.provider.describe(name).await?;
        let guard = self.lock(name).await?;
        Ok((description, guard))
    }

    /// The saved state of the secret described by `description`. State saved for an
    /// earlier secret of the same name (deleted, then created again) is not inherited.
    async fn load_for(
        &self,
        name: &SecretName,
        description: &SecretDescription,
    ) -> Result<RotationState> {
        let mut state = self.store.load(name).await?;
        if state
            .secret_created_at
            .is_some_and(|created| created != description.created_at)
        {
            tracing::info!(secret = %name, "ignoring rotation state left by a deleted secret of the same name");
            state = RotationState::default();
        }
        state.secret_created_at = Some(description.created_at);
        Ok(state)
    }

    /// Enables or disables rotation of one secret (persisted).
    pub async fn set_secret_enabled(&self, name: &SecretName, enabled: bool) -> Result<()> {
        let (description, _guard) = self.describe_and_lock(name).await?;
        let mut state = self.load_for(name, &description).await?;
        state.enabled = enabled;
        self.store.save(name, &state).await
    }

    /// Sets or clears the schedule of a secret.
    pub async fn set_schedule(
        &self,
        name: &SecretName,
        schedule: Option<RotationSchedule>,
    ) -> Result<()> {
        if let Some(s) = schedule {
            if !(1..=1000).contains(&s.every_days) {
                return Err(Error::InvalidInput(format!(
                    "a rotation every {} days is out of range; use 1 to 1000 days",
                    s.every_days
                )));
            }
        }
        let (description, _guard) = self.describe_and_lock(name).await?;
        let mut state = self.load_for(name, &description).await?;
        state.schedule = schedule;
        self.store.save(name, &state).await
    }

    /// Declares (or clears) the kind of value rotations of a secret generate.
    pub async fn set_kind(&self, name: &SecretName, kind: Option<ValueKind>) -> Result<()> {
        if let Some(kind) = &kind {
            kind.validate()?;
        }
        let (description, _guard) = self.describe_and_lock(name).await?;
        let mut state = self.load_for(name, &description).await?;
        state.kind = kind;
        self.store.save(name, &state).await
    }

    /// The saved state of a secret: checkpoint, history, schedule.
    pub async fn state(&self, name: &SecretName) -> Result<RotationState> {
        match self.provider.describe(name).await {
            Ok(description) => self.load_for(name, &description).await,
            // A deleted secret's state is still there to read (its history, say).
            Err(e) if e.kind() == ErrorKind::NotFound => self.store.load(name).await,
            Err(e) => Err(e.into()),
        }
    }

    /// The rotation history of a secret, oldest first.
    pub async fn history(&self, name: &SecretName) -> Result<Vec<RotationRecord>> {
        Ok(self.state(name).await?.history.into_iter().collect())
    }

    /// Deletes a secret through the provider; a force delete also forgets its rotation
    /// state, so that a new secret of the same name starts afresh.
    ///
    /// Refused while a rotation of the secret runs.
    pub async fn delete(
        &self,
        name: &SecretName,
        mode: lift_core::DeleteMode,
    ) -> Result<SecretDescription> {
        let (_, _guard) = self.describe_and_lock(name).await?;
        let description = self.provider.delete(name, mode).await?;
        if mode == lift_core::DeleteMode::Force {
            self.store.remove(name).await?;
        }
        Ok(description)
    }

    /// When a secret is next due, or `None` without a schedule or when rotation is disabled.
    ///
    /// The schedule counts from the last successful rotation, or from the secret's creation.
    pub async fn next_rotation(&self, name: &SecretName) -> Result<Option<DateTime<Utc>>> {
        let state = self.state(name).await?;
        self.next_from(name, &state).await
    }

    async fn next_from(
        &self,
        name: &SecretName,
        state: &RotationState,
    ) -> Result<Option<DateTime<Utc>>> {
        let Some(schedule) = state.schedule else {
            return Ok(None);
        };
        if !state.enabled || !self.is_enabled() {
            return Ok(None);
        }
        let base = match state.last_rotated_at {
            Some(at) => at,
            None => self.provider.describe(name).await?.created_at,
        };
        Ok(Some(base + Duration::days(i64::from(schedule.every_days))))
    }

    /// Rotates every scheduled secret that is due now. Each secret's result is reported;
    /// one failure does not stop the others.
    pub async fn rotate_due(
        &self,
        rotator: &dyn Rotator,
    ) -> Result<Vec<(SecretName, Result<RotationReport>)>> {
        let now = self.clock.now();
        let mut results = Vec::new();
        for name in self.store.names().await? {
            let state = match self.state(&name).await {
                Ok(state) => state,
                Err(err) => {
                    results.push((name, Err(err)));
                    continue;
                }
            };
            let due = match self.next_from(&name, &state).await {
                Ok(Some(next)) => next <= now,
                Ok(None) => false,
                Err(err) => {
                    results.push((name, Err(err)));
                    continue;
                }
            };
            if due {
                let result = if state.checkpoint.is_some() {
                    self.resume(&name, rotator).await
                } else {
                    self.rotate(&name, rotator, &RotateOptions::default()).await
                };
                results.push((name, result));
            }
        }
        Ok(results)
    }

    fn in_progress_message(name: &SecretName, checkpoint: &RotationCheckpoint) -> String {
        let reached = checkpoint
            .step_reached
            .map_or_else(|| "no step".to_owned(), |s| s.as_str().to_owned());
        format!(
            "a rotation of secret {name} is in progress (rotation {}, AWSPENDING on version {}, {reached} completed); resume it with `lift secrets resume {name}` or cancel it with `lift secrets cancel {name}`",
            checkpoint.rotation_id, checkpoint.token
        )
    }

    /// Runs a full rotation.
    ///
    /// Everything is checked before anything changes: the kind is validated, and a
    /// refused rotation leaves no checkpoint. The `rotate.started` audit event is
    /// recorded before the checkpoint is saved, so a sink that cannot record leaves
    /// the secret and its rotation state as they were.
    ///
    /// Refuses with a [`ErrorKind::Conflict`] when another rotation is in progress
    /// (running now, or interrupted and waiting for `resume` or `cancel`).
    #[tracing::instrument(level = "info", skip(self, rotator, options), fields(secret = %name, rotator = rotator.name()))]
    pub async fn rotate(
        &self,
        name: &SecretName,
        rotator: &dyn Rotator,
        options: &RotateOptions,
    ) -> Result<RotationReport> {
        if !self.is_enabled() {
            return Err(Error::RotationDisabled {
                name: name.to_string(),
                scope: "for this provider",
            });
        }
        if let Some(kind) = &options.kind {
            kind.validate()?;
        }
        if let Some(field) = &options.field {
            check_field(field)?;
        }
        if let (Some(native), false) = (&self.native, options.force) {
            if let Some(other) = native.other_rotator(name).await? {
                return Err(Error::OtherRotator {
                    name: name.to_string(),
                    other,
                });
            }
        }
        self.preflight(name).await?;
        let (description, guard) = self.describe_and_lock(name).await?;
        let mut state = self.load_for(name, &description).await?;
        if !state.enabled {
            return Err(Error::RotationDisabled {
                name: name.to_string(),
                scope: "for this secret",
            });
        }
        if let Some(checkpoint) = &state.checkpoint {
            return Err(Error::RotationInProgress(Self::in_progress_message(
                name, checkpoint,
            )));
        }
        if description.rotation_in_progress() {
            let pending = description
                .version_with(StageLabel::PENDING)
                .map(|v| v.version_id.to_string())
                .unwrap_or_default();
            return Err(Error::RotationInProgress(format!(
                "secret {name} has AWSPENDING on version {pending}, which is not AWSCURRENT: another rotation is in progress; resume it with `lift secrets resume {name}` or cancel it with `lift secrets cancel {name}`"
            )));
        }
        if description.deletion_date.is_some() {
            return Err(Error::MarkedForDeletion {
                name: name.to_string(),
                date: description
                    .deletion_date
                    .map(|d| d.to_rfc3339())
                    .unwrap_or_default(),
            });
        }
        let kind = options.kind.clone().or_else(|| state.kind.clone());
        let checkpoint = RotationCheckpoint {
            rotation_id: uuid::Uuid::new_v4().to_string(),
            token: VersionId::random(),
            old_version: description
                .version_with(StageLabel::CURRENT)
                .map(|v| v.version_id.clone()),
            step_reached: None,
            started_at: self.clock.now(),
            kind,
            field: options.field.clone(),
        };
        // Audit first: a sink that cannot record stops the rotation before anything changed.
        self.emit(name, &checkpoint, "rotate.started", Outcome::Success, |e| {
            e.detail("rotator", rotator.name())
        })
        .await?;
        // The checkpoint is durable before createSecret writes anything, so a crash
        // at any later point leaves a rotation that `resume` can find.
        if options.kind.is_some() {
            state.kind = options.kind.clone();
        }
        state.checkpoint = Some(checkpoint.clone());
        self.store.save(name, &state).await?;
        self.drive(name, rotator, state, checkpoint, Run::Fresh, guard)
            .await
    }

    /// Continues an interrupted rotation from the step after the last one completed.
    ///
    /// A rotation left by another tool (AWSPENDING on a version that is not
    /// AWSCURRENT, with no checkpoint) is adopted after its createSecret.
    /// When AWSCURRENT moved since the rotation began (a put made meanwhile), the
    /// rotation stops with [`ErrorKind::FailedPrecondition`] instead of overriding it.
    #[tracing::instrument(level = "info", skip(self, rotator), fields(secret = %name, rotator = rotator.name()))]
    pub async fn resume(&self, name: &SecretName, rotator: &dyn Rotator) -> Result<RotationReport> {
        self.preflight(name).await?;
        let (description, guard) = self.describe_and_lock(name).await?;
        let mut state = self.load_for(name, &description).await?;
        let (checkpoint, adopted) = match state.checkpoint.clone() {
            Some(checkpoint) => (checkpoint, false),
            None => (Self::adopt(name, &description, self.clock.now())?, true),
        };
        self.emit(name, &checkpoint, "rotate.resumed", Outcome::Success, |e| {
            e.detail(
                "step_reached",
                checkpoint.step_reached.map_or("none", RotationStep::as_str),
            )
        })
        .await?;
        if adopted {
            state.checkpoint = Some(checkpoint.clone());
            self.store.save(name, &state).await?;
        }
        self.drive(name, rotator, state, checkpoint, Run::Resumed, guard)
            .await
    }

    fn adopt(
        name: &SecretName,
        description: &SecretDescription,
        now: DateTime<Utc>,
    ) -> Result<RotationCheckpoint> {
        if !description.rotation_in_progress() {
            return Err(Error::NoRotation {
                name: name.to_string(),
            });
        }
        let pending = description
            .version_with(StageLabel::PENDING)
            .map(|v| v.version_id.clone())
            .ok_or_else(|| Error::NoRotation {
                name: name.to_string(),
            })?;
        Ok(RotationCheckpoint {
            rotation_id: uuid::Uuid::new_v4().to_string(),
            token: pending,
            old_version: description
                .version_with(StageLabel::CURRENT)
                .map(|v| v.version_id.clone()),
            step_reached: Some(RotationStep::CreateSecret),
            started_at: now,
            kind: None,
            field: None,
        })
    }

    /// Cancels an interrupted rotation: removes AWSPENDING from the new version
    /// (unless it already became AWSCURRENT) and forgets the checkpoint.
    ///
    /// Cancelling never moves AWSCURRENT. The record's `old_version` is the version
    /// that held AWSCURRENT when the rotation began; compare it with the secret's
    /// AWSCURRENT now to tell whether anything moved it meanwhile.
    #[tracing::instrument(level = "info", skip(self), fields(secret = %name))]
    pub async fn cancel(&self, name: &SecretName) -> Result<RotationRecord> {
        let (description, _guard) = self.describe_and_lock(name).await?;
        let mut state = self.load_for(name, &description).await?;
        let checkpoint = match state.checkpoint.clone() {
            Some(c) => c,
            None => Self::adopt(name, &description, self.clock.now())?,
        };
        self.emit(
            name,
            &checkpoint,
            "rotate.cancelled",
            Outcome::Success,
            |e| e,
        )
        .await?;
        self.remove_pending(name, &checkpoint.token).await?;
        let record = self.record(
            &checkpoint,
            RotationOutcome::Cancelled,
            None,
            None,
            false,
            false,
        );
        state.checkpoint = None;
        state.push_history(record.clone(), self.policy.history_limit);
        self.store.save(name, &state).await?;
        Ok(record)
    }

    /// Takes AWSPENDING off `token` if it holds it and is not AWSCURRENT.
    async fn remove_pending(&self, name: &SecretName, token: &VersionId) -> Result<()> {
        let description = self.provider.describe(name).await?;
        let holds_pending = description
            .version_with(StageLabel::PENDING)
            .is_some_and(|v| &v.version_id == token);
        if holds_pending {
            self.provider
                .move_stage(
                    name,
                    &StageMove {
                        stage: StageLabel::pending(),
                        to: None,
                        from: Some(token.clone()),
                    },
                )
                .await?;
        }
        Ok(())
    }

    fn record(
        &self,
        checkpoint: &RotationCheckpoint,
        outcome: RotationOutcome,
        failed: Option<(RotationStep, &Error)>,
        old_version: Option<VersionId>,
        injected: bool,
        resumable: bool,
    ) -> RotationRecord {
        RotationRecord {
            rotation_id: checkpoint.rotation_id.clone(),
            started_at: checkpoint.started_at,
            finished_at: self.clock.now(),
            step_reached: checkpoint.step_reached,
            outcome,
            failed_step: failed.map(|(step, _)| step),
            error: failed.map(|(_, err)| err.to_string()),
            error_kind: failed.map(|(_, err)| err.kind()),
            injected,
            resumable,
            old_version: old_version.or_else(|| checkpoint.old_version.clone()),
            new_version: Some(checkpoint.token.clone()),
        }
    }

    async fn emit(
        &self,
        name: &SecretName,
        checkpoint: &RotationCheckpoint,
        action: &str,
        outcome: Outcome,
        extra: impl FnOnce(AuditEvent) -> AuditEvent,
    ) -> Result<()> {
        let mut event = AuditEvent::new("secrets", action, Resource::new("secret", name.as_str()))
            .at(self.clock.now())
            .outcome(outcome)
            .correlation_id(checkpoint.rotation_id.clone())
            .detail("new_version", checkpoint.token.as_str());
        if let Some(old) = &checkpoint.old_version {
            event = event.detail("old_version", old.as_str());
        }
        self.audit.record(extra(event)).await.map_err(Error::from)
    }

    async fn drive(
        &self,
        name: &SecretName,
        rotator: &dyn Rotator,
        mut state: RotationState,
        mut checkpoint: RotationCheckpoint,
        run: Run,
        _guard: RotationGuard,
    ) -> Result<RotationReport> {
        let mut next = match checkpoint.step_reached {
            None => Some(RotationStep::CreateSecret),
            Some(step) => step.next(),
        };
        let mut old_at_finish = None;
        while let Some(step) = next {
            let injected = self.faults.fire(name, step);
            let result = match &injected {
                Some(message) => Err(Error::Injected {
                    name: name.to_string(),
                    step: step.as_str().to_owned(),
                    message: message.clone(),
                }),
                None => self.run_step(name, rotator, &checkpoint, step).await,
            };
            match result {
                Ok(old) => {
                    if step == RotationStep::FinishSecret {
                        old_at_finish = old;
                    }
                    checkpoint.step_reached = Some(step);
                    if step != RotationStep::FinishSecret {
                        state.checkpoint = Some(checkpoint.clone());
                        self.store.save(name, &state).await?;
                    }
                    self.emit(
                        name,
                        &checkpoint,
                        &format!("rotate.{}", step.snake()),
                        Outcome::Success,
                        |e| e,
                    )
                    .await?;
                    next = step.next();
                }
                Err(err) => {
                    return Err(self
                        .fail(name, state, &checkpoint, step, err, injected.is_some())
                        .await);
                }
            }
        }
        let record = self.record(
            &checkpoint,
            RotationOutcome::Succeeded,
            None,
            old_at_finish.clone(),
            false,
            false,
        );
        state.checkpoint = None;
        state.last_rotated_at = Some(self.clock.now());
        state.push_history(record, self.policy.history_limit);
        self.store.save(name, &state).await?;
        self.emit(
            name,
            &checkpoint,
            "rotate.completed",
            Outcome::Success,
            |e| e,
        )
        .await?;
        Ok(RotationReport {
            name: name.clone(),
            rotation_id: checkpoint.rotation_id.clone(),
            outcome: RotationOutcome::Succeeded,
            step_reached: checkpoint.step_reached,
            old_version: old_at_finish.or(checkpoint.old_version),
            new_version: checkpoint.token,
            resumed: run == Run::Resumed,
        })
    }

    /// Records a failed step, applies the failure policy and returns the error to report.
    async fn fail(
        &self,
        name: &SecretName,
        mut state: RotationState,
        checkpoint: &RotationCheckpoint,
        step: RotationStep,
        err: Error,
        injected: bool,
    ) -> Error {
        let err = match err {
            Error::Injected { .. } | Error::Step { .. } | Error::CurrentMoved { .. } => err,
            other => Error::Step {
                name: name.to_string(),
                step: step.as_str().to_owned(),
                source: other.into(),
            },
        };
        // A refused createSecret changed nothing outside the store (no rotator ran), so
        // whatever the policy, AWSPENDING (if the put got through) is taken off and the
        // rotation forgotten: the secret is left as it was.
        let refused_create =
            step == RotationStep::CreateSecret && err.kind() == ErrorKind::PermissionDenied;
        let clean_up = (self.policy.on_failure == OnFailure::CleanUp || refused_create)
            && step != RotationStep::FinishSecret;
        let mut cleanup_error = None;
        if clean_up {
            if let Err(e) = self.remove_pending(name, &checkpoint.token).await {
                cleanup_error = Some(e);
            }
        }
        let resumable = !clean_up || cleanup_error.is_some();
        let record = self.record(
            checkpoint,
            RotationOutcome::Failed,
            Some((step, &err)),
            None,
            injected,
            resumable,
        );
        state.checkpoint = if resumable {
            Some(checkpoint.clone())
        } else {
            None
        };
        state.push_history(record, self.policy.history_limit);
        tracing::warn!(secret = %name, step = step.as_str(), injected, error = %err, "rotation step failed");
        if let Err(save_error) = self.store.save(name, &state).await {
            tracing::error!(secret = %name, error = %save_error, "cannot record the failed rotation");
        }
        let emitted = self
            .emit(
                name,
                checkpoint,
                "rotate.failed",
                Outcome::from_error(&lift_core::Error::new(err.kind(), err.to_string())),
                |e| {
                    e.detail("step", step.as_str())
                        .detail("injected", injected)
                        .detail("resumable", resumable)
                },
            )
            .await;
        if let Err(audit_error) = emitted {
            tracing::error!(secret = %name, error = %audit_error, "cannot audit the failed rotation");
        }
        if let Some(e) = cleanup_error {
            tracing::error!(secret = %name, error = %e, "cannot remove AWSPENDING after the failure; resume or cancel the rotation");
        }
        err
    }

    /// Stops the rotation when AWSCURRENT is no longer where it was when the rotation began.
    fn check_current(
        name: &SecretName,
        checkpoint: &RotationCheckpoint,
        description: &SecretDescription,
    ) -> Result<Option<VersionId>> {
        let holder = description
            .version_with(StageLabel::CURRENT)
            .map(|v| v.version_id.clone());
        if holder != checkpoint.old_version && holder.as_ref() != Some(&checkpoint.token) {
            let describe = |v: &Option<VersionId>| {
                v.as_ref()
                    .map_or_else(|| "no version".to_owned(), |v| format!("version {v}"))
            };
            return Err(Error::CurrentMoved {
                name: name.to_string(),
                rotation_id: checkpoint.rotation_id.clone(),
                expected: describe(&checkpoint.old_version),
                actual: describe(&holder),
                pending: checkpoint.token.to_string(),
            });
        }
        Ok(holder)
    }

    /// Reads the version that holds `label`, if one does, without a failed read when none does.
    async fn read_labelled(
        &self,
        name: &SecretName,
        description: &SecretDescription,
        label: &str,
    ) -> Result<Option<lift_core::SecretVersion>> {
        match description.version_with(label) {
            Some(info) => Ok(Some(
                self.provider
                    .get(name, &VersionSelector::Version(info.version_id.clone()))
                    .await?,
            )),
            None => Ok(None),
        }
    }

    /// Runs one step. Returns, for finishSecret, the version that held AWSCURRENT before.
    async fn run_step(
        &self,
        name: &SecretName,
        rotator: &dyn Rotator,
        checkpoint: &RotationCheckpoint,
        step: RotationStep,
    ) -> Result<Option<VersionId>> {
        let token = &checkpoint.token;
        match step {
            RotationStep::CreateSecret => {
                self.create_secret(name, checkpoint).await?;
                Ok(None)
            }
            RotationStep::SetSecret | RotationStep::TestSecret => {
                let description = self.provider.describe(name).await?;
                // Changing the target system to a value that can no longer become
                // AWSCURRENT would lock its users out: stop before the rotator runs.
                Self::check_current(name, checkpoint, &description)?;
                Self::check_pending(name, checkpoint, &description)?;
                let pending = self
                    .provider
                    .get(name, &VersionSelector::Version(token.clone()))
                    .await?;
                let version_of = |label: &str| {
                    description
                        .version_with(label)
                        .map(|v| v.version_id.clone())
                };
                let mut context = StepContext {
                    name: name.clone(),
                    rotation_id: checkpoint.rotation_id.clone(),
                    pending_version: token.clone(),
                    current_version: version_of(StageLabel::CURRENT),
                    previous_version: version_of(StageLabel::PREVIOUS),
                    previous: None,
                };
                let result = if step == RotationStep::SetSecret {
                    // Only setSecret is handed the current and previous values.
                    let current = self
                        .read_labelled(name, &description, StageLabel::CURRENT)
                        .await?;
                    context.previous = self
                        .read_labelled(name, &description, StageLabel::PREVIOUS)
                        .await?
                        .map(|p| p.value);
                    rotator
                        .set_secret(&context, &pending.value, current.as_ref().map(|c| &c.value))
                        .await
                } else {
                    rotator.test_secret(&context, &pending.value).await
                };
                result.map_err(|source| Error::Step {
                    name: name.to_string(),
                    step: step.as_str().to_owned(),
                    source,
                })?;
                Ok(None)
            }
            RotationStep::FinishSecret => self.finish_secret(name, checkpoint).await,
        }
    }

    /// Refuses a checkpoint whose version is neither AWSPENDING nor AWSCURRENT: it does
    /// not describe a rotation of this secret (a stale or forged checkpoint naming an
    /// old version, say), and finishing it would bring an old value back.
    fn check_pending(
        name: &SecretName,
        checkpoint: &RotationCheckpoint,
        description: &SecretDescription,
    ) -> Result<()> {
        let info = description
            .versions
            .iter()
            .find(|v| v.version_id == checkpoint.token);
        let labelled = info.is_some_and(|v| {
            v.stages
                .iter()
                .any(|s| s.as_str() == StageLabel::PENDING || s.is_current())
        });
        if labelled {
            return Ok(());
        }
        Err(Error::ForeignCheckpoint {
            name: name.to_string(),
            rotation_id: checkpoint.rotation_id.clone(),
            version: checkpoint.token.to_string(),
            why: if info.is_some() {
                "carries neither AWSPENDING nor AWSCURRENT"
            } else {
                "does not exist"
            },
        })
    }

    /// createSecret: writes the new value as AWSPENDING, unless an earlier run already did.
    async fn create_secret(
        &self,
        name: &SecretName,
        checkpoint: &RotationCheckpoint,
    ) -> Result<()> {
        let token = &checkpoint.token;
        let description = self.provider.describe(name).await?;
        Self::check_current(name, checkpoint, &description)?;
        if let Some(existing) = description.versions.iter().find(|v| &v.version_id == token) {
            // An earlier run wrote the version; make sure it carries AWSPENDING.
            if !existing
                .stages
                .iter()
                .any(|s| s.as_str() == StageLabel::PENDING)
            {
                let from = description
                    .version_with(StageLabel::PENDING)
                    .map(|v| v.version_id.clone());
                self.provider
                    .move_stage(
                        name,
                        &StageMove {
                            stage: StageLabel::pending(),
                            to: Some(token.clone()),
                            from,
                        },
                    )
                    .await?;
            }
            return Ok(());
        }
        let kind = checkpoint
            .kind
            .clone()
            .unwrap_or_else(ValueKind::rotation_default);
        let current = self
            .read_labelled(name, &description, StageLabel::CURRENT)
            .await?;
        let value = crate::json_secret::next_value(
            name,
            current.as_ref().map(|c| &c.value),
            &kind,
            checkpoint.field.as_deref(),
        )?;
        self.provider
            .put(
                name,
                &value,
                &PutOptions::default()
                    .token(token.clone())
                    .stages(vec![StageLabel::pending()]),
            )
            .await?;
        Ok(())
    }

    /// finishSecret: moves AWSCURRENT to the new version (AWSPREVIOUS follows) and drops AWSPENDING.
    ///
    /// The move is a compare-and-set from the version that was AWSCURRENT when the
    /// rotation began. If AWSCURRENT moved since (a put made during the rotation), the
    /// rotation stops and says so: retrying would override that put.
    async fn finish_secret(
        &self,
        name: &SecretName,
        checkpoint: &RotationCheckpoint,
    ) -> Result<Option<VersionId>> {
        let token = &checkpoint.token;
        let description = self.provider.describe(name).await?;
        let holder = Self::check_current(name, checkpoint, &description)?;
        Self::check_pending(name, checkpoint, &description)?;
        let old = if holder.as_ref() == Some(token) {
            None
        } else {
            let moved = self
                .provider
                .move_stage(
                    name,
                    &StageMove {
                        stage: StageLabel::current(),
                        to: Some(token.clone()),
                        from: checkpoint.old_version.clone(),
                    },
                )
                .await;
            match moved {
                Ok(()) => checkpoint.old_version.clone(),
                Err(e) if e.kind() == ErrorKind::Conflict => {
                    // Lost the compare-and-set to a concurrent put: report who won.
                    let now = self.provider.describe(name).await?;
                    Self::check_current(name, checkpoint, &now)?;
                    return Err(e.into());
                }
                Err(e) => return Err(e.into()),
            }
        };
        // Moving AWSCURRENT leaves AWSPENDING where it was: the description read above still tells.
        if description
            .version_with(StageLabel::PENDING)
            .is_some_and(|v| &v.version_id == token)
        {
            self.provider
                .move_stage(
                    name,
                    &StageMove {
                        stage: StageLabel::pending(),
                        to: None,
                        from: Some(token.clone()),
                    },
                )
                .await?;
        }
        Ok(old)
    }
}

/// Refuses a JSON field name that could not be a key of AWS's key/value secrets.
fn check_field(field: &str) -> Result<()> {
    if field.is_empty() || field.len() > 256 || field.chars().any(char::is_control) {
        return Err(Error::InvalidInput(format!(
            "invalid JSON field {:?} to rotate: use 1 to 256 printable characters",
            field.chars().take(40).collect::<String>()
        )));
    }
    Ok(())
}
