//! The semantic core shared by every store: one secret's versions and labels, and
//! the transitions AWS Secrets Manager defines on them.
//!
//! The memory and file stores differ only in how they keep a [`SecretState`]
//! between calls; every rule lives here, once.

use chrono::{DateTime, Duration, Utc};
use lift_core::{
    DeleteMode, PutOptions, PutOutcome, SecretDescription, SecretName, SecretSummary, SecretValue,
    SecretVersion, StageLabel, StageMove, VersionId, VersionInfo, VersionSelector,
};

use zeroize::Zeroizing;

use crate::{Error, Result};

/// Limits a store enforces on every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// How many versions without a label a secret keeps; older ones are pruned (AWS keeps 100).
    pub max_unlabelled_versions: usize,
    /// The largest value accepted, in bytes (AWS accepts 65536).
    pub max_value_bytes: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_unlabelled_versions: 100,
            max_value_bytes: 65_536,
        }
    }
}

/// The shortest idempotency token AWS accepts (`ClientRequestToken` is 32 to 64 characters).
const MIN_TOKEN_LEN: usize = 32;

/// The most labels one version may carry (AWS's limit).
const MAX_LABELS_PER_VERSION: usize = 20;

/// A value as a store holds it: open in memory, or still sealed as read from a file.
///
/// File stores decrypt a value only when it is read, so that a get costs one
/// decryption however many versions the secret keeps.
#[derive(Clone)]
pub(crate) enum StoredValue {
    /// The plaintext.
    Open(SecretValue),
    /// The nonce and ciphertext (or, in a plaintext store, the bytes) from the file.
    Sealed {
        nonce: Vec<u8>,
        bytes: Zeroizing<Vec<u8>>,
    },
}

impl std::fmt::Debug for StoredValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(lift_core::REDACTED)
    }
}

/// Opens a sealed value of the given version.
pub(crate) type Opener<'a> = &'a dyn Fn(&VersionId, &[u8], &[u8]) -> Result<SecretValue>;

/// The opener of stores that never hold sealed values.
pub(crate) fn no_sealed_values(id: &VersionId, _: &[u8], _: &[u8]) -> Result<SecretValue> {
    Err(Error::InvalidInput(format!(
        "version {id} is sealed, but this store holds no keys"
    )))
}

impl StoredValue {
    fn open(&self, id: &VersionId, opener: Opener<'_>) -> Result<SecretValue> {
        match self {
            StoredValue::Open(value) => Ok(value.clone()),
            StoredValue::Sealed { nonce, bytes } => opener(id, nonce, bytes),
        }
    }
}

/// One stored version.
#[derive(Debug, Clone)]
pub(crate) struct StoredVersion {
    pub(crate) id: VersionId,
    /// Labels, in the order they were attached; never duplicated.
    pub(crate) stages: Vec<StageLabel>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) value: StoredValue,
}

/// One secret.
///
/// Invariants: versions are newest first; version ids are unique; a label
/// sits on at most one version; a live secret with versions has exactly one
/// `AWSCURRENT`.
#[derive(Debug, Clone)]
pub(crate) struct SecretState {
    pub(crate) name: SecretName,
    /// How many times the file store wrote the secret (the memory store leaves it 0).
    pub(crate) generation: u64,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) last_changed_at: DateTime<Utc>,
    pub(crate) deletion_date: Option<DateTime<Utc>>,
    pub(crate) versions: Vec<StoredVersion>,
}

impl SecretState {
    /// Whether a soft delete's recovery window has run out, so the secret is gone.
    pub(crate) fn is_purged(&self, now: DateTime<Utc>) -> bool {
        self.deletion_date.is_some_and(|date| date <= now)
    }

    fn holder(&self, label: &str) -> Option<usize> {
        self.versions
            .iter()
            .position(|v| v.stages.iter().any(|s| s.as_str() == label))
    }

    fn index_of(&self, id: &VersionId) -> Option<usize> {
        self.versions.iter().position(|v| &v.id == id)
    }

    fn ensure_live(&self) -> Result<()> {
        match self.deletion_date {
            Some(date) => Err(Error::MarkedForDeletion {
                name: self.name.to_string(),
                date: date.to_rfc3339(),
            }),
            None => Ok(()),
        }
    }

    /// Puts `label` on version `to`, taking it off whichever version had it.
    /// Moving `AWSCURRENT` gives `AWSPREVIOUS` to the version that held it.
    fn attach(&mut self, label: &StageLabel, to: usize) {
        let old = self.holder(label.as_str());
        if old == Some(to) {
            return;
        }
        if let Some(old) = old {
            self.versions[old].stages.retain(|s| s != label);
            if label.is_current() {
                if let Some(prev) = self.holder(StageLabel::PREVIOUS) {
                    self.versions[prev]
                        .stages
                        .retain(|s| s.as_str() != StageLabel::PREVIOUS);
                }
                self.versions[old].stages.push(StageLabel::previous());
            }
        }
        self.versions[to].stages.push(label.clone());
    }

    /// Drops the oldest unlabelled versions beyond the limit.
    fn prune(&mut self, limits: &StoreLimits) {
        let mut unlabelled = 0usize;
        self.versions.retain(|v| {
            if !v.stages.is_empty() {
                return true;
            }
            unlabelled += 1;
            unlabelled <= limits.max_unlabelled_versions
        });
    }

    /// Reads a version.
    pub(crate) fn get(
        &self,
        selector: &VersionSelector,
        opener: Opener<'_>,
    ) -> Result<SecretVersion> {
        self.ensure_live()?;
        let index = match selector {
            VersionSelector::Stage(label) => {
                self.holder(label.as_str())
                    .ok_or_else(|| Error::StageNotFound {
                        name: self.name.to_string(),
                        stage: label.to_string(),
                    })?
            }
            VersionSelector::Version(id) => {
                self.index_of(id).ok_or_else(|| Error::VersionNotFound {
                    name: self.name.to_string(),
                    version: id.to_string(),
                })?
            }
        };
        let v = &self.versions[index];
        Ok(SecretVersion {
            name: self.name.clone(),
            version_id: v.id.clone(),
            stages: v.stages.clone(),
            created_at: v.created_at,
            value: v.value.open(&v.id, opener)?,
        })
    }

    /// The metadata, never values.
    pub(crate) fn describe(&self) -> SecretDescription {
        SecretDescription {
            name: self.name.clone(),
            created_at: self.created_at,
            last_changed_at: self.last_changed_at,
            deletion_date: self.deletion_date,
            versions: self
                .versions
                .iter()
                .map(|v| VersionInfo {
                    version_id: v.id.clone(),
                    stages: v.stages.clone(),
                    created_at: v.created_at,
                })
                .collect(),
        }
    }

    /// The line of a listing.
    pub(crate) fn summary(&self) -> SecretSummary {
        SecretSummary {
            name: self.name.clone(),
            last_changed_at: self.last_changed_at,
            deletion_date: self.deletion_date,
        }
    }
}

/// Whether a put changed anything, so stores can skip the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// The state changed and must be persisted.
    Changed,
    /// Nothing changed (an idempotent repeat).
    Unchanged,
}

/// `PutSecretValue`, creating the secret when `state` is `None`.
pub(crate) fn put(
    state: Option<SecretState>,
    name: &SecretName,
    value: &SecretValue,
    options: &PutOptions,
    now: DateTime<Utc>,
    limits: &StoreLimits,
    opener: Opener<'_>,
) -> Result<(SecretState, PutOutcome, Change)> {
    if value.len() > limits.max_value_bytes {
        return Err(Error::ValueTooLarge {
            name: name.to_string(),
            len: value.len(),
            limit: limits.max_value_bytes,
        });
    }
    let mut labels: Vec<StageLabel> = Vec::new();
    for label in options
        .stages
        .clone()
        .unwrap_or_else(|| vec![StageLabel::current()])
    {
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    if labels.len() > MAX_LABELS_PER_VERSION {
        return Err(Error::InvalidInput(format!(
            "a version can carry at most {MAX_LABELS_PER_VERSION} staging labels; {} were given",
            labels.len()
        )));
    }
    let mut state = match state.filter(|s| !s.is_purged(now)) {
        Some(state) => {
            state.ensure_live()?;
            state
        }
        None => SecretState {
            name: name.clone(),
            generation: 0,
            created_at: now,
            last_changed_at: now,
            deletion_date: None,
            versions: Vec::new(),
        },
    };
    if let Some(token) = &options.token {
        let len = token.as_str().len();
        if !(MIN_TOKEN_LEN..=64).contains(&len) {
            return Err(Error::InvalidInput(format!(
                "idempotency token {token} is {len} characters; AWS Secrets Manager requires 32 to 64 (a UUID is 36)"
            )));
        }
    }
    let token = options.token.clone().unwrap_or_else(VersionId::random);
    if let Some(existing) = state.index_of(&token) {
        let version = &state.versions[existing];
        if version.value.open(&token, opener)?.ct_eq(value) {
            let outcome = PutOutcome {
                version_id: token,
                stages: version.stages.clone(),
                created: false,
            };
            return Ok((state, outcome, Change::Unchanged));
        }
        return Err(Error::TokenReused {
            name: name.to_string(),
            version: token.to_string(),
        });
    }
    // As in AWS, the first version of a secret is always AWSCURRENT.
    if state.versions.is_empty() && !labels.iter().any(StageLabel::is_current) {
        labels.push(StageLabel::current());
    }
    state.versions.insert(
        0,
        StoredVersion {
            id: token.clone(),
            stages: Vec::new(),
            created_at: now,
            value: StoredValue::Open(value.clone()),
        },
    );
    for label in &labels {
        state.attach(label, 0);
    }
    state.last_changed_at = now;
    state.prune(limits);
    let stages = state.versions[0].stages.clone();
    Ok((
        state,
        PutOutcome {
            version_id: token,
            stages,
            created: true,
        },
        Change::Changed,
    ))
}

/// `UpdateSecretVersionStage`.
///
/// `from` must name the version that holds the label now (or be `None` when
/// no version does), which makes the move a compare-and-set: a concurrent
/// writer that moved the label first makes this one fail with a conflict.
pub(crate) fn move_stage(
    state: &mut SecretState,
    stage_move: &StageMove,
    now: DateTime<Utc>,
    limits: &StoreLimits,
) -> Result<Change> {
    state.ensure_live()?;
    let label = &stage_move.stage;
    let holder = state.holder(label.as_str());
    let holder_id = holder.map(|i| state.versions[i].id.clone());
    let describe = |id: &Option<VersionId>| match id {
        Some(id) => format!("version {id}"),
        None => "no version".to_owned(),
    };
    match &stage_move.to {
        Some(to) => {
            let target = state.index_of(to).ok_or_else(|| Error::VersionNotFound {
                name: state.name.to_string(),
                version: to.to_string(),
            })?;
            if holder == Some(target) {
                return Ok(Change::Unchanged);
            }
            if holder_id != stage_move.from {
                return Err(Error::StageMismatch {
                    name: state.name.to_string(),
                    stage: label.to_string(),
                    expected: describe(&stage_move.from),
                    actual: describe(&holder_id),
                });
            }
            if state.versions[target].stages.len() >= MAX_LABELS_PER_VERSION {
                return Err(Error::InvalidInput(format!(
                    "version {to} of secret {} already carries {MAX_LABELS_PER_VERSION} labels",
                    state.name
                )));
            }
            state.attach(label, target);
        }
        None => {
            let Some(from) = &stage_move.from else {
                return Err(Error::InvalidInput(format!(
                    "moving label {label} of secret {} needs a version to move it to or from",
                    state.name
                )));
            };
            if label.is_current() {
                return Err(Error::InvalidInput(format!(
                    "AWSCURRENT of secret {} cannot be removed, only moved to another version",
                    state.name
                )));
            }
            if holder_id.as_ref() != Some(from) {
                return Err(Error::StageMismatch {
                    name: state.name.to_string(),
                    stage: label.to_string(),
                    expected: describe(&stage_move.from),
                    actual: describe(&holder_id),
                });
            }
            if let Some(i) = holder {
                state.versions[i].stages.retain(|s| s != label);
            }
        }
    }
    state.last_changed_at = now;
    state.prune(limits);
    Ok(Change::Changed)
}

/// What a delete leaves behind.
#[derive(Debug)]
pub(crate) enum Deleted {
    /// The secret stays, marked for deletion.
    Soft(SecretState),
    /// The secret is gone; this is its last description.
    Gone(SecretDescription),
}

/// `DeleteSecret`.
pub(crate) fn delete(
    mut state: SecretState,
    mode: DeleteMode,
    now: DateTime<Utc>,
) -> Result<Deleted> {
    match mode {
        DeleteMode::Force => {
            let mut description = state.describe();
            description.deletion_date = Some(now);
            Ok(Deleted::Gone(description))
        }
        DeleteMode::Recoverable {
            recovery_window_days,
        } => {
            if !(7..=30).contains(&recovery_window_days) {
                return Err(Error::InvalidInput(format!(
                    "recovery window of {recovery_window_days} days for secret {} is out of range; use 7 to 30 days, or force the delete",
                    state.name
                )));
            }
            // A repeated soft delete keeps the first date, as AWS does.
            if state.deletion_date.is_none() {
                state.deletion_date = Some(now + Duration::days(i64::from(recovery_window_days)));
                state.last_changed_at = now;
            }
            Ok(Deleted::Soft(state))
        }
    }
}

/// `RestoreSecret`: cancels a soft delete.
pub(crate) fn restore(state: &mut SecretState, now: DateTime<Utc>) -> Change {
    if state.deletion_date.take().is_some() {
        state.last_changed_at = now;
        Change::Changed
    } else {
        Change::Unchanged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name() -> SecretName {
        SecretName::new("db").unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_600_000_000 + secs, 0).unwrap()
    }

    fn stages_of(state: &SecretState, id: &VersionId) -> Vec<String> {
        let mut s: Vec<String> = state.versions[state.index_of(id).unwrap()]
            .stages
            .iter()
            .map(|l| l.to_string())
            .collect();
        s.sort();
        s
    }

    fn put_value(
        state: Option<SecretState>,
        value: &str,
        opts: PutOptions,
    ) -> (SecretState, PutOutcome) {
        let (s, o, _) = put(
            state,
            &name(),
            &SecretValue::from(value),
            &opts,
            at(0),
            &StoreLimits::default(),
            &no_sealed_values,
        )
        .unwrap();
        (s, o)
    }

    #[test]
    fn puts_rotate_current_and_previous() {
        let (s, v1) = put_value(None, "a", PutOptions::default());
        let (s, v2) = put_value(Some(s), "b", PutOptions::default());
        let (s, v3) = put_value(Some(s), "c", PutOptions::default());
        assert_eq!(stages_of(&s, &v3.version_id), ["AWSCURRENT"]);
        assert_eq!(stages_of(&s, &v2.version_id), ["AWSPREVIOUS"]);
        assert!(stages_of(&s, &v1.version_id).is_empty());
        assert_eq!(s.versions[0].id, v3.version_id, "newest first");
    }

    #[test]
    fn tokens_are_idempotent_and_conflict_on_new_values() {
        let token = VersionId::new("tok-1-0000000000000000000000000000").unwrap();
        let (s, first) = put_value(None, "a", PutOptions::default().token(token.clone()));
        let (s2, o, change) = put(
            Some(s),
            &name(),
            &SecretValue::from("a"),
            &PutOptions::default().token(token.clone()),
            at(5),
            &StoreLimits::default(),
            &no_sealed_values,
        )
        .unwrap();
        assert!(!o.created);
        assert_eq!(change, Change::Unchanged);
        assert_eq!(o.version_id, first.version_id);
        assert_eq!(s2.versions.len(), 1);
        let err = put(
            Some(s2),
            &name(),
            &SecretValue::from("b"),
            &PutOptions::default().token(token),
            at(6),
            &StoreLimits::default(),
            &no_sealed_values,
        )
        .unwrap_err();
        assert!(matches!(err, Error::TokenReused { .. }));
        assert!(
            !err.to_string().contains('b'.to_string().as_str()) || err.to_string().contains("db")
        );
    }

    #[test]
    fn tokens_must_be_as_long_as_aws_requires() {
        for short in ["abc", "0123456789abcdef0123456789abcde"] {
            let err = put(
                None,
                &name(),
                &SecretValue::from("a"),
                &PutOptions::default().token(VersionId::new(short).unwrap()),
                at(0),
                &StoreLimits::default(),
                &no_sealed_values,
            )
            .unwrap_err();
            assert!(err.to_string().contains("32 to 64"), "{err}");
        }
        put_value(
            None,
            "a",
            PutOptions::default().token(VersionId::new("0".repeat(32)).unwrap()),
        );
    }

    #[test]
    fn first_version_is_always_current() {
        let (s, o) = put_value(
            None,
            "a",
            PutOptions::default().stages(vec![StageLabel::pending()]),
        );
        assert_eq!(stages_of(&s, &o.version_id), ["AWSCURRENT", "AWSPENDING"]);
    }

    #[test]
    fn moving_current_moves_previous_and_checks_the_source() {
        let (s, v1) = put_value(None, "a", PutOptions::default());
        let (mut s, v2) = put_value(
            Some(s),
            "b",
            PutOptions::default().stages(vec![StageLabel::pending()]),
        );
        assert_eq!(stages_of(&s, &v1.version_id), ["AWSCURRENT"]);
        let wrong = StageMove {
            stage: StageLabel::current(),
            to: Some(v2.version_id.clone()),
            from: Some(v2.version_id.clone()),
        };
        assert!(matches!(
            move_stage(&mut s, &wrong, at(1), &StoreLimits::default()),
            Err(Error::StageMismatch { .. })
        ));
        let right = StageMove {
            stage: StageLabel::current(),
            to: Some(v2.version_id.clone()),
            from: Some(v1.version_id.clone()),
        };
        assert_eq!(
            move_stage(&mut s, &right, at(1), &StoreLimits::default()).unwrap(),
            Change::Changed
        );
        assert_eq!(stages_of(&s, &v2.version_id), ["AWSCURRENT", "AWSPENDING"]);
        assert_eq!(stages_of(&s, &v1.version_id), ["AWSPREVIOUS"]);
        // Moving it again onto the same version is a no-op.
        assert_eq!(
            move_stage(&mut s, &right, at(2), &StoreLimits::default()).unwrap(),
            Change::Unchanged
        );
        let remove_current = StageMove {
            stage: StageLabel::current(),
            to: None,
            from: Some(v2.version_id.clone()),
        };
        assert!(move_stage(&mut s, &remove_current, at(3), &StoreLimits::default()).is_err());
    }

    #[test]
    fn unlabelled_versions_beyond_the_limit_are_pruned() {
        let limits = StoreLimits {
            max_unlabelled_versions: 2,
            ..StoreLimits::default()
        };
        let mut state = None;
        for i in 0..10 {
            let (s, _, _) = put(
                state,
                &name(),
                &SecretValue::from(format!("v{i}")),
                &PutOptions::default(),
                at(i),
                &limits,
                &no_sealed_values,
            )
            .unwrap();
            state = Some(s);
        }
        let s = state.unwrap();
        // current + previous + 2 unlabelled
        assert_eq!(s.versions.len(), 4);
        assert_eq!(
            s.get(&VersionSelector::default(), &no_sealed_values)
                .unwrap()
                .value
                .expose(),
            b"v9"
        );
    }

    #[test]
    fn values_over_the_limit_are_refused() {
        let limits = StoreLimits {
            max_value_bytes: 4,
            ..StoreLimits::default()
        };
        let err = put(
            None,
            &name(),
            &SecretValue::from("12345"),
            &PutOptions::default(),
            at(0),
            &limits,
            &no_sealed_values,
        )
        .unwrap_err();
        assert!(err.to_string().contains("5 bytes"));
    }

    #[test]
    fn soft_delete_blocks_reads_until_restored() {
        let (s, _) = put_value(None, "a", PutOptions::default());
        let Deleted::Soft(mut s) = delete(s, DeleteMode::default(), at(0)).unwrap() else {
            panic!("soft")
        };
        assert!(matches!(
            s.get(&VersionSelector::default(), &no_sealed_values),
            Err(Error::MarkedForDeletion { .. })
        ));
        assert!(!s.is_purged(at(29 * 86_400)));
        assert!(s.is_purged(at(30 * 86_400)));
        assert_eq!(restore(&mut s, at(1)), Change::Changed);
        assert!(
            s.get(&VersionSelector::default(), &no_sealed_values)
                .is_ok()
        );
        let bad = delete(
            s.clone(),
            DeleteMode::Recoverable {
                recovery_window_days: 3,
            },
            at(0),
        );
        assert!(bad.is_err());
        assert!(matches!(
            delete(s, DeleteMode::Force, at(0)).unwrap(),
            Deleted::Gone(_)
        ));
    }

    mod invariants {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Put {
                value: u8,
                token: Option<u8>,
                stages: Option<Vec<u8>>,
            },
            Move {
                stage: u8,
                to: Option<u8>,
                from: Option<u8>,
            },
        }

        const LABELS: [&str; 4] = ["AWSCURRENT", "AWSPENDING", "AWSPREVIOUS", "custom"];

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                (
                    any::<u8>(),
                    proptest::option::of(0u8..6),
                    proptest::option::of(proptest::collection::vec(0u8..4, 0..3))
                )
                    .prop_map(|(value, token, stages)| Op::Put {
                        value: value % 4,
                        token,
                        stages
                    }),
                (
                    0u8..4,
                    proptest::option::of(0u8..8),
                    proptest::option::of(0u8..8)
                )
                    .prop_map(|(stage, to, from)| Op::Move { stage, to, from }),
            ]
        }

        proptest! {
            /// Whatever sequence of puts and moves runs, ids stay unique, each label sits on
            /// at most one version, AWSCURRENT sits on exactly one, and a refused operation
            /// changes nothing.
            #[test]
            fn the_version_graph_stays_consistent(ops in proptest::collection::vec(op(), 1..40)) {
                let limits = StoreLimits { max_unlabelled_versions: 3, ..StoreLimits::default() };
                let mut state: Option<SecretState> = None;
                for (i, op) in ops.into_iter().enumerate() {
                    let now = at(i as i64);
                    match op {
                        Op::Put { value, token, stages } => {
                            let mut options = PutOptions::default();
                            if let Some(t) = token {
                                options = options.token(VersionId::new(format!("t{t}-0000000000000000000000000000000")).unwrap());
                            }
                            if let Some(s) = stages {
                                options = options.stages(s.iter().map(|l| StageLabel::new(LABELS[*l as usize]).unwrap()).collect());
                            }
                            let before = state.as_ref().map(SecretState::describe);
                            match put(state.clone(), &name(), &SecretValue::from(format!("v{value}")), &options, now, &limits, &no_sealed_values) {
                                Ok((next, outcome, _)) => {
                                    prop_assert!(next.index_of(&outcome.version_id).is_some() || !outcome.created);
                                    state = Some(next);
                                }
                                Err(_) => prop_assert_eq!(state.as_ref().map(SecretState::describe), before),
                            }
                        }
                        Op::Move { stage, to, from } => {
                            let Some(current) = state.as_mut() else { continue };
                            let ids: Vec<VersionId> = current.versions.iter().map(|v| v.id.clone()).collect();
                            let pick = |i: Option<u8>| i.and_then(|i| ids.get(i as usize).cloned());
                            let mv = StageMove { stage: StageLabel::new(LABELS[stage as usize]).unwrap(), to: pick(to), from: pick(from) };
                            let mut next = current.clone();
                            if move_stage(&mut next, &mv, now, &limits).is_ok() {
                                *current = next;
                            }
                        }
                    }
                    let s = state.as_ref().unwrap();
                    let mut ids = std::collections::BTreeSet::new();
                    for v in &s.versions {
                        prop_assert!(ids.insert(v.id.clone()), "duplicate version id");
                    }
                    for label in LABELS {
                        let holders = s.versions.iter().filter(|v| v.stages.iter().any(|l| l.as_str() == label)).count();
                        prop_assert!(holders <= 1, "{label} on {holders} versions");
                    }
                    prop_assert_eq!(s.versions.iter().filter(|v| v.stages.iter().any(StageLabel::is_current)).count(), 1);
                    prop_assert!(s.versions.iter().filter(|v| v.stages.is_empty()).count() <= 3);
                }
            }
        }
    }
}
