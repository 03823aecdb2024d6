//! Filtering records: by time, actor, action, resource, outcome and correlation id.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::{Error, Result};
use crate::lines::Lines;
use crate::manifest::chain_files;
use crate::record::Record;

/// Which records a query returns. Empty criteria match everything.
///
/// Times compare with the event's own time. `action` matches exactly, or as a
/// prefix when it ends in `*` (`rotate.*`). `resource` matches `kind:id` or `id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// The actor id.
    pub actor: Option<String>,
    /// The action, or a prefix ending in `*`.
    pub action: Option<String>,
    /// The event type (`secrets`, `deploy`, ...).
    pub event_type: Option<String>,
    /// The resource, as `kind:id` or `id`.
    pub resource: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// The correlation id.
    pub correlation_id: Option<String>,
}

/// Parses a time for `--since` / `--until`: RFC 3339 (`2026-11-28T02:00:00Z`) or a date (`2026-11-28`, midnight UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc));
    }
    if let Some(time) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(time.and_utc());
    }
    Err(Error::InvalidInput(format!(
        "cannot read time {text:?}; use RFC 3339 (2026-11-28T02:00:00Z) or a date (2026-11-28)"
    )))
}

impl Filter {
    /// Checks the filter's own consistency.
    pub fn validate(&self) -> Result<()> {
        if let Some(outcome) = &self.outcome {
            if outcome != "success" && outcome != "failure" {
                return Err(Error::InvalidInput(format!(
                    "unknown outcome {outcome:?}; use success or failure"
                )));
            }
        }
        if let (Some(since), Some(until)) = (self.since, self.until) {
            if since > until {
                return Err(Error::InvalidInput(format!(
                    "--since {since} is after --until {until}; swap them"
                )));
            }
        }
        Ok(())
    }

    /// Whether `record` matches every criterion.
    pub fn matches(&self, record: &Record) -> bool {
        let event = &record.event;
        self.since.is_none_or(|t| event.time >= t)
            && self.until.is_none_or(|t| event.time < t)
            && self.actor.as_deref().is_none_or(|a| event.actor.id == a)
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| event.event_type == t)
            && self
                .action
                .as_deref()
                .is_none_or(|a| match a.strip_suffix('*') {
                    Some(prefix) => event.action.starts_with(prefix),
                    None => event.action == a,
                })
            && self
                .resource
                .as_deref()
                .is_none_or(|r| match r.split_once(':') {
                    Some((kind, id)) => event.resource.kind == kind && event.resource.id == id,
                    None => event.resource.id == r,
                })
            && self
                .outcome
                .as_deref()
                .is_none_or(|o| event.outcome.as_str() == o)
            && self
                .correlation_id
                .as_deref()
                .is_none_or(|c| event.correlation_id.as_deref() == Some(c))
    }
}

/// The JSON document `lift audit query --json` prints (streamed, in this shape).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct QueryDocument {
    /// The matching records, in chain order.
    pub records: Vec<Record>,
    /// How many records matched.
    pub matched: u64,
    /// How many unreadable lines were skipped.
    pub skipped: u64,
}

/// A streaming query: an iterator over the matching records, in chain order.
///
/// Lines that are not records come out as [`Error::Parse`] items, so that a
/// caller can report them and go on; a partial last line (a write in
/// progress) is skipped. A file that cannot be read ends the query with its error. Queries do not verify hashes: run `verify` for that.
#[derive(Debug)]
pub struct Query {
    lines: Lines,
    filter: Filter,
    done: bool,
}

/// Starts a query over `files` (a single file with a manifest stands for the whole chain).
pub fn query(files: &[PathBuf], filter: Filter) -> Result<Query> {
    filter.validate()?;
    let files = match files {
        [single] => chain_files(single)?,
        _ => files.to_vec(),
    };
    Ok(Query {
        lines: Lines::new(files),
        filter,
        done: false,
    })
}

impl Iterator for Query {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            let (line, terminated, pos) = match self.lines.next_line() {
                Ok(Some(next)) => next,
                Ok(None) => return None,
                Err(err) => {
                    // A file that cannot be read ends the query: its records are unknown.
                    self.done = true;
                    return Some(Err(err));
                }
            };
            if !terminated {
                continue;
            }
            match Record::parse(line) {
                Ok(record) if self.filter.matches(&record) => return Some(Ok(record)),
                Ok(_) => {}
                Err(err) => {
                    return Some(Err(Error::Parse {
                        path: self.lines.path(pos.file).to_owned(),
                        line: pos.line,
                        message: format!("not an audit record: {err}"),
                    }));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lift_core::{Actor, AuditEvent, Outcome, Resource};

    fn record(event: AuditEvent) -> Record {
        Record {
            seq: 1,
            time: Utc::now(),
            kid: None,
            prev: "0".repeat(64),
            event,
            hash: "0".repeat(64),
        }
    }

    #[test]
    fn filters_combine_criteria() {
        let event = AuditEvent::new(
            "secrets",
            "rotate.finish",
            Resource::new("secret", "prod/db"),
        )
        .actor(Actor::user("alice"))
        .correlation_id("c-1")
        .at(parse_time("2026-01-02T03:04:05Z").unwrap());
        let rec = record(event.clone());
        assert!(Filter::default().matches(&rec));
        let f = Filter {
            actor: Some("alice".into()),
            action: Some("rotate.*".into()),
            resource: Some("secret:prod/db".into()),
            outcome: Some("success".into()),
            correlation_id: Some("c-1".into()),
            since: Some(parse_time("2026-01-02").unwrap()),
            until: Some(parse_time("2026-01-03").unwrap()),
            event_type: Some("secrets".into()),
        };
        assert!(f.matches(&rec));
        let failed = record(event.outcome(Outcome::failure("boom")));
        assert!(!f.matches(&failed));
        assert!(
            !Filter {
                actor: Some("bob".into()),
                ..Filter::default()
            }
            .matches(&rec)
        );
        assert!(
            !Filter {
                action: Some("rotate".into()),
                ..Filter::default()
            }
            .matches(&rec)
        );
        assert!(
            Filter {
                resource: Some("prod/db".into()),
                ..Filter::default()
            }
            .matches(&rec)
        );
        assert!(
            !Filter {
                until: Some(parse_time("2026-01-02").unwrap()),
                ..Filter::default()
            }
            .matches(&rec)
        );
    }

    #[test]
    fn bad_filter_input_is_an_error() {
        assert!(parse_time("yesterday").is_err());
        assert!(
            Filter {
                outcome: Some("maybe".into()),
                ..Filter::default()
            }
            .validate()
            .is_err()
        );
        let reversed = Filter {
            since: Some(parse_time("2026-02-01").unwrap()),
            until: Some(parse_time("2026-01-01").unwrap()),
            ..Filter::default()
        };
        assert!(reversed.validate().is_err());
    }
}
