//! Human output of `lift deploy`: the live view of an operation, and the
//! summary in pulumi's words.
//!
//! On a terminal the view is a spinner per step in flight, redrawn in place,
//! with a line per finished step; without one it prints one stable line per
//! finished step, so CI logs read top to bottom.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lift::pulumi::{EngineEvent, EventPayload, OpType, Operation, StepEventMetadata, plain_text};

use crate::context::Context;

/// pulumi's symbol for a step.
pub(crate) fn symbol(op: &str) -> &'static str {
    match op {
        "create" => "+",
        "update" => "~",
        "delete" => "-",
        "replace" => "+-",
        "create-replacement" => "++",
        "delete-replaced" => "--",
        "read" | "read-replacement" => ">",
        "import" | "import-replacement" => "=",
        "refresh" => "~",
        "discard" | "discard-replaced" => "-",
        _ => " ",
    }
}

/// The past tense pulumi's summary uses for an operation's count.
fn past_tense(op: &str) -> &str {
    match op {
        "create" => "created",
        "update" => "updated",
        "delete" => "deleted",
        "replace" => "replaced",
        "same" => "unchanged",
        "read" => "read",
        "import" => "imported",
        "refresh" => "refreshed",
        "discard" => "discarded",
        other => other,
    }
}

/// The changes in words: `+ 3 created, ~ 1 updated, 4 unchanged`.
pub(crate) fn changes_text(changes: &BTreeMap<String, i64>) -> String {
    const ORDER: [&str; 8] = [
        "create", "update", "replace", "delete", "import", "read", "refresh", "same",
    ];
    let mut parts: Vec<String> = Vec::new();
    let mut push = |op: &str, n: i64| {
        if n == 0 {
            return;
        }
        let sym = symbol(op);
        if sym.trim().is_empty() {
            parts.push(format!("{n} {}", past_tense(op)));
        } else {
            parts.push(format!("{sym} {n} {}", past_tense(op)));
        }
    };
    for op in ORDER {
        if let Some(n) = changes.get(op) {
            push(op, *n);
        }
    }
    for (op, n) in changes {
        if !ORDER.contains(&op.as_str()) {
            push(op, *n);
        }
    }
    if parts.is_empty() {
        "no changes".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `1.2s`, `3m04s`.
pub(crate) fn duration_text(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = duration.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// The last part of a URN: the resource's name.
pub(crate) fn short_urn(urn: &str) -> &str {
    urn.rsplit("::").next().unwrap_or(urn)
}

/// A step's line: `  + aws:s3:Bucket  bucket  created (1.2s)`.
fn step_line(indent: usize, op: &str, metadata: &StepEventMetadata, what: &str) -> String {
    format!(
        "{:indent$}{:>2} {}  {}  {what}",
        "",
        symbol(op),
        metadata.resource_type,
        short_urn(&metadata.urn),
        indent = indent * 2 + 2
    )
}

/// The live view of one operation.
pub(crate) struct View {
    json: bool,
    live: Option<MultiProgress>,
    op: Operation,
    in_flight: HashMap<String, (ProgressBar, Instant, String)>,
    /// The op of each URN's replacement so far, so that its steps show as one replacement.
    replacing: HashMap<String, Instant>,
    depth: HashMap<String, usize>,
    printed_failure: bool,
    /// Whether `--diff` asked for one line per changed property.
    show_diff: bool,
    /// The property changes of each step seen, for the lines and `--json`.
    changes: super::diff::ChangesByUrn,
}

impl View {
    pub(crate) fn new(ctx: &Context, op: Operation, show_diff: bool) -> Self {
        let live = (!ctx.json && std::io::stderr().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        View {
            json: ctx.json,
            live,
            op,
            in_flight: HashMap::new(),
            replacing: HashMap::new(),
            depth: HashMap::new(),
            printed_failure: false,
            show_diff,
            changes: super::diff::ChangesByUrn::new(),
        }
    }

    /// The property changes of every step seen, by URN.
    pub(crate) fn take_changes(&mut self) -> super::diff::ChangesByUrn {
        std::mem::take(&mut self.changes)
    }

    fn line(&self, ctx: &Context, text: String) {
        if self.json {
            return;
        }
        match &self.live {
            Some(live) => {
                let _ = live.println(text);
            }
            None => ctx.say(text),
        }
    }

    /// Says something outside the resource lines (the cancel notice), on stderr.
    pub(crate) fn notice(&self, text: &str) {
        match &self.live {
            Some(live) => {
                let _ = live.println(text);
            }
            None => {
                let mut err = std::io::stderr().lock();
                let _ = std::io::Write::write_all(&mut err, format!("{text}\n").as_bytes());
            }
        }
    }

    fn indent_of(&mut self, metadata: &StepEventMetadata) -> usize {
        if let Some(depth) = self.depth.get(&metadata.urn) {
            return *depth;
        }
        let parent = metadata
            .new
            .as_ref()
            .or(metadata.old.as_ref())
            .and_then(|state| state.parse().ok())
            .map(|state| state.parent)
            .unwrap_or_default();
        let depth = if parent.is_empty() {
            0
        } else {
            self.depth.get(&parent).map_or(0, |d| d + 1)
        };
        self.depth.insert(metadata.urn.clone(), depth);
        depth
    }

    /// Draws one engine event.
    pub(crate) fn event(&mut self, ctx: &Context, event: &EngineEvent) {
        match &event.payload {
            EventPayload::ResourcePre(pre) => {
                let metadata = &pre.metadata;
                let indent = self.indent_of(metadata);
                let changes = super::diff::changes_of(metadata);
                if !changes.is_empty() {
                    self.changes.insert(metadata.urn.clone(), changes);
                }
                if matches!(
                    metadata.op,
                    OpType::CreateReplacement | OpType::Replace | OpType::DeleteReplaced
                ) {
                    self.replacing
                        .entry(metadata.urn.clone())
                        .or_insert_with(Instant::now);
                }
                if let Some(live) = &self.live {
                    if metadata.op.is_change() {
                        let bar = live.add(ProgressBar::new_spinner());
                        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        {
                            bar.set_style(style);
                        }
                        bar.set_message(step_line(indent, metadata.op.as_str(), metadata, "..."));
                        bar.enable_steady_tick(Duration::from_millis(120));
                        self.in_flight.insert(
                            metadata.urn.clone(),
                            (bar, Instant::now(), metadata.op.to_string()),
                        );
                    }
                } else {
                    self.in_flight.insert(
                        metadata.urn.clone(),
                        (
                            ProgressBar::hidden(),
                            Instant::now(),
                            metadata.op.to_string(),
                        ),
                    );
                }
            }
            EventPayload::ResOutputs(done) => {
                let metadata = &done.metadata;
                let indent = self.indent_of(metadata);
                let started = self.finish_bar(&metadata.urn);
                // A replacement shows once, when its last step ends.
                let op = match metadata.op {
                    OpType::CreateReplacement => return,
                    OpType::Replace if self.op != Operation::Preview => {
                        // In an update the old resource is deleted afterwards (delete-replaced).
                        return;
                    }
                    OpType::DeleteReplaced | OpType::Replace => "replace",
                    _ => metadata.op.as_str(),
                };
                if !metadata.op.is_change() && op != "replace" {
                    return;
                }
                let began = self.replacing.remove(&metadata.urn).or(started);
                let took = began
                    .map(|s| format!(" ({})", duration_text(s.elapsed())))
                    .unwrap_or_default();
                let verb = if self.op == Operation::Preview {
                    match op {
                        "create" => "to create".to_owned(),
                        "update" => "to update".to_owned(),
                        "delete" => "to delete".to_owned(),
                        "replace" => "to replace".to_owned(),
                        other => format!("to {other}"),
                    }
                } else {
                    format!("{}{took}", past_tense(op))
                };
                let changes = self.changes.get(&metadata.urn).cloned().unwrap_or_default();
                let text = format!(
                    "{}{}",
                    step_line(indent, op, metadata, &verb),
                    super::diff::summary(&changes)
                );
                self.line(ctx, text);
                if self.show_diff {
                    for line in super::diff::detail_lines(indent, &changes) {
                        self.line(ctx, line);
                    }
                }
            }
            EventPayload::ResOpFailed(failed) => {
                let metadata = &failed.metadata;
                let indent = self.indent_of(metadata);
                self.finish_bar(&metadata.urn);
                self.printed_failure = true;
                let text = step_line(indent, metadata.op.as_str(), metadata, "**failed**");
                self.line(ctx, text);
            }
            EventPayload::Diagnostic(diag)
                if diag.ephemeral != Some(true)
                    && matches!(diag.severity.as_str(), "error" | "warning") =>
            {
                let message = plain_text(&diag.message);
                let indent = diag
                    .urn
                    .as_deref()
                    .and_then(|urn| self.depth.get(urn))
                    .map_or(2, |d| d * 2 + 6);
                for line in message.trim().lines() {
                    let text = format!("{:indent$}{}: {line}", "", diag.severity, indent = indent);
                    self.line(ctx, text);
                }
            }
            _ => {}
        }
    }

    fn finish_bar(&mut self, urn: &str) -> Option<Instant> {
        self.in_flight.remove(urn).map(|(bar, started, _)| {
            bar.finish_and_clear();
            started
        })
    }

    /// Clears what is still drawn.
    pub(crate) fn finish(&mut self) {
        for (_, (bar, _, _)) in self.in_flight.drain() {
            bar.finish_and_clear();
        }
        if let Some(live) = &self.live {
            let _ = live.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_like_pulumi() {
        let changes = BTreeMap::from([
            ("create".to_owned(), 3),
            ("same".to_owned(), 4),
            ("replace".to_owned(), 1),
        ]);
        assert_eq!(
            changes_text(&changes),
            "+ 3 created, +- 1 replaced, 4 unchanged"
        );
        assert_eq!(changes_text(&BTreeMap::new()), "no changes");
        assert_eq!(duration_text(Duration::from_millis(1234)), "1.2s");
        assert_eq!(duration_text(Duration::from_secs(184)), "3m04s");
        assert_eq!(
            short_urn("urn:pulumi:dev::demo::aws:s3:Bucket::bucket"),
            "bucket"
        );
    }
}
