//! Human output of `lift deploy`: the live view of an operation, and the
//! summary in pulumi's words.
//!
//! On a terminal the view is a spinner per step in flight, redrawn in place,
//! with a line per finished step; without one it prints one stable line per
//! finished step, so CI logs read top to bottom.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lift::pulumi::{
    EngineEvent, EventPayload, OpType, Operation, StepEventMetadata, is_default_provider,
    plain_text,
};

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
        "delete-replaced" => "deleted original",
        other => other,
    }
}

/// What a preview plans for an operation's count, in pulumi's words: `to create`.
fn planned(op: &str) -> String {
    match op {
        "same" => "unchanged".to_owned(),
        other => format!("to {other}"),
    }
}

/// The changes in words: `+ 3 created, ~ 1 updated, 4 unchanged`.
pub(crate) fn changes_text(changes: &BTreeMap<String, i64>) -> String {
    changes_in_words(changes, false)
}

/// A preview's changes in pulumi's words: `+ 3 to create, ~ 1 to update, 4 unchanged`.
/// Nothing has changed yet, so nothing reads as done.
pub(crate) fn planned_changes_text(changes: &BTreeMap<String, i64>) -> String {
    changes_in_words(changes, true)
}

fn changes_in_words(changes: &BTreeMap<String, i64>, preview: bool) -> String {
    const ORDER: [&str; 8] = [
        "create", "update", "replace", "delete", "import", "read", "refresh", "same",
    ];
    let mut parts: Vec<String> = Vec::new();
    let mut push = |op: &str, n: i64| {
        if n == 0 {
            return;
        }
        let sym = symbol(op);
        let words = if preview {
            planned(op)
        } else {
            past_tense(op).to_owned()
        };
        if sym.trim().is_empty() {
            parts.push(format!("{n} {words}"));
        } else {
            parts.push(format!("{sym} {n} {words}"));
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

/// The steps of a replacement that have finished, per URN.
#[derive(Default)]
struct Replacement {
    created: bool,
    replaced: bool,
    /// The line of the original's deletion (`delete-replaced`), held back until
    /// the replacement it belongs to shows: delete-before-replace deletes first.
    deleted: Option<String>,
}

/// The live view of one operation.
pub(crate) struct View {
    json: bool,
    live: Option<MultiProgress>,
    op: Operation,
    in_flight: HashMap<String, (ProgressBar, Instant, String)>,
    /// When each URN's replacement began, so that its steps show as one
    /// replacement with the time of all of them.
    replacing: HashMap<String, Instant>,
    /// Each URN's replacement steps so far.
    replacements: HashMap<String, Replacement>,
    /// The (URN, op) of each line shown: the engine reports some steps'
    /// outputs twice (a preview the stack's, at once and with the outputs at
    /// the end), and a step shows once.
    shown: HashSet<(String, String)>,
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
        View::with(ctx.json, live, op, show_diff)
    }

    fn with(json: bool, live: Option<MultiProgress>, op: Operation, show_diff: bool) -> Self {
        View {
            json,
            live,
            op,
            in_flight: HashMap::new(),
            replacing: HashMap::new(),
            replacements: HashMap::new(),
            shown: HashSet::new(),
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
        for text in self.lines(event) {
            self.line(ctx, text);
        }
    }

    /// Takes one engine event in, and returns the lines it completes.
    fn lines(&mut self, event: &EngineEvent) -> Vec<String> {
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
                // A resource has one step in flight at a time; a bar left over
                // from an earlier one goes, so that no line is drawn twice.
                self.finish_bar(&metadata.urn);
                let bar = match &self.live {
                    Some(live)
                        if metadata.op.is_change()
                            && !is_default_provider(&metadata.urn, &metadata.resource_type) =>
                    {
                        let bar = live.add(ProgressBar::new_spinner());
                        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        {
                            bar.set_style(style);
                        }
                        bar.set_message(step_line(indent, metadata.op.as_str(), metadata, "..."));
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    }
                    _ => ProgressBar::hidden(),
                };
                self.in_flight.insert(
                    metadata.urn.clone(),
                    (bar, Instant::now(), metadata.op.to_string()),
                );
                Vec::new()
            }
            EventPayload::ResOutputs(done) => self.finished(&done.metadata),
            EventPayload::ResOpFailed(failed) => {
                let metadata = &failed.metadata;
                let indent = self.indent_of(metadata);
                self.finish_bar(&metadata.urn);
                self.printed_failure = true;
                vec![step_line(
                    indent,
                    metadata.op.as_str(),
                    metadata,
                    "**failed**",
                )]
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
                // `error: first line`, the rest under it; blank lines dropped.
                let head = format!("{}: ", diag.severity);
                message
                    .trim()
                    .lines()
                    .filter(|line| !line.trim().is_empty())
                    .enumerate()
                    .map(|(i, line)| {
                        let lead = if i == 0 {
                            head.clone()
                        } else {
                            " ".repeat(head.len())
                        };
                        format!("{:indent$}{lead}{line}", "")
                    })
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// The line of a finished step, if it shows one.
    fn finished(&mut self, metadata: &StepEventMetadata) -> Vec<String> {
        let indent = self.indent_of(metadata);
        let started = self.finish_bar(&metadata.urn);
        if !metadata.op.is_change() || is_default_provider(&metadata.urn, &metadata.resource_type) {
            return Vec::new();
        }
        // A replacement shows as one line, once its new resource exists:
        // `create-replacement` and `replace` both finished, in either order.
        // The original's deletion (`delete-replaced`) comes at the end of an
        // update, or first under delete-before-replace, and shows apart only
        // when no replacement of that URN does (an original left pending by
        // an earlier update).
        let op = match metadata.op {
            OpType::CreateReplacement | OpType::Replace => {
                let steps = self.replacements.entry(metadata.urn.clone()).or_default();
                if metadata.op == OpType::Replace {
                    steps.replaced = true;
                } else {
                    steps.created = true;
                }
                if !(steps.created && steps.replaced) {
                    return Vec::new();
                }
                steps.deleted = None;
                "replace"
            }
            OpType::DeleteReplaced => {
                if self
                    .shown
                    .contains(&(metadata.urn.clone(), "replace".to_owned()))
                {
                    return Vec::new();
                }
                let op = "delete-replaced";
                let text = step_line(indent, op, metadata, &self.verb(op, started));
                self.replacements
                    .entry(metadata.urn.clone())
                    .or_default()
                    .deleted = Some(text);
                return Vec::new();
            }
            _ => metadata.op.as_str(),
        };
        if !self.shown.insert((metadata.urn.clone(), op.to_owned())) {
            return Vec::new();
        }
        let began = if op == "replace" {
            self.replacing.remove(&metadata.urn).or(started)
        } else {
            started
        };
        let verb = self.verb(op, began);
        let changes = self.changes.get(&metadata.urn).cloned().unwrap_or_default();
        let mut lines = vec![format!(
            "{}{}",
            step_line(indent, op, metadata, &verb),
            super::diff::summary(&changes)
        )];
        if self.show_diff {
            lines.extend(super::diff::detail_lines(indent, &changes));
        }
        lines
    }

    /// `to create` in a preview; `created (1.2s)` otherwise.
    fn verb(&self, op: &str, began: Option<Instant>) -> String {
        if self.op == Operation::Preview {
            planned(op)
        } else {
            let took = began
                .map(|s| format!(" ({})", duration_text(s.elapsed())))
                .unwrap_or_default();
            format!("{}{took}", past_tense(op))
        }
    }

    fn finish_bar(&mut self, urn: &str) -> Option<Instant> {
        self.in_flight.remove(urn).map(|(bar, started, _)| {
            bar.finish_and_clear();
            started
        })
    }

    /// The lines still held back when the operation ends: deletions of
    /// originals that no replacement line took in.
    fn leftover_lines(&mut self) -> Vec<String> {
        let mut held: Vec<(String, String)> = self
            .replacements
            .iter_mut()
            .filter_map(|(urn, steps)| steps.deleted.take().map(|text| (urn.clone(), text)))
            .collect();
        held.sort();
        held.into_iter().map(|(_, text)| text).collect()
    }

    /// Shows what was held back and clears what is still drawn.
    pub(crate) fn finish(&mut self, ctx: &Context) {
        for (_, (bar, _, _)) in self.in_flight.drain() {
            bar.finish_and_clear();
        }
        for text in self.leftover_lines() {
            self.line(ctx, text);
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
        assert_eq!(
            planned_changes_text(&changes),
            "+ 3 to create, +- 1 to replace, 4 unchanged"
        );
        assert_eq!(changes_text(&BTreeMap::new()), "no changes");
        assert_eq!(duration_text(Duration::from_millis(1234)), "1.2s");
        assert_eq!(duration_text(Duration::from_secs(184)), "3m04s");
        assert_eq!(
            short_urn("urn:pulumi:dev::demo::aws:s3:Bucket::bucket"),
            "bucket"
        );
    }

    /// The lines a view without a terminal prints for a real engine event
    /// stream (`tests/fixtures/pulumi`).
    fn shown(op: Operation, events: &[u8]) -> Vec<String> {
        let mut view = View::with(false, None, op, false);
        let parsed = lift::pulumi::parse_events(events);
        let mut lines: Vec<String> = parsed
            .events
            .iter()
            .flat_map(|event| view.lines(event))
            .collect();
        lines.extend(view.leftover_lines());
        lines
    }

    fn lines_of<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
        lines
            .iter()
            .filter(|l| l.split_whitespace().nth(2) == Some(name))
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn a_preview_shows_the_stack_once_though_the_engine_reports_its_outputs_twice() {
        // The pinned real CLI's preview: the stack's resOutputsEvent comes at
        // once and again, with the outputs, at the end.
        let lines = shown(
            Operation::Preview,
            include_bytes!("../../../../tests/fixtures/pulumi/recorded/lifecycle__step05.jsonl"),
        );
        assert_eq!(lines_of(&lines, "lift-real-dev").len(), 1, "{lines:#?}");
        assert_eq!(lines_of(&lines, "extra").len(), 1, "{lines:#?}");
        assert!(lines.iter().all(|l| !l.contains("created")), "{lines:#?}");
    }

    #[test]
    fn a_replacement_shows_as_one_replacement_in_a_preview_and_an_update() {
        // Create before delete: create-replacement, replace, ..., delete-replaced at the end.
        for (op, events, verb) in [
            (
                Operation::Preview,
                &include_bytes!(
                    "../../../../tests/fixtures/pulumi/pulumi-lifecycle/TestDefaultProviderDiffReplacement__1-0-0-preview.jsonl"
                )[..],
                "to replace",
            ),
            (
                Operation::Up,
                &include_bytes!(
                    "../../../../tests/fixtures/pulumi/pulumi-lifecycle/TestDefaultProviderDiffReplacement__1-0-0.jsonl"
                )[..],
                "replaced",
            ),
        ] {
            let lines = shown(op, events);
            assert_eq!(lines.len(), 1, "{op}: {lines:#?}");
            let line = &lines[0];
            assert!(line.trim_start().starts_with("+- "), "{line}");
            assert!(line.contains(" resA ") && line.contains(verb), "{line}");
        }
        // Delete before replace: delete-replaced first, then replace and create-replacement.
        let lines = shown(
            Operation::Up,
            include_bytes!(
                "../../../../tests/fixtures/pulumi/pulumi-lifecycle/TestDBRReplaceOnChanges__1.jsonl"
            ),
        );
        assert_eq!(lines.len(), 2, "{lines:#?}");
        for name in ["resA", "resB"] {
            let of = lines_of(&lines, name);
            assert_eq!(of.len(), 1, "{lines:#?}");
            assert!(
                of[0].trim_start().starts_with("+- ") && of[0].contains("replaced"),
                "{lines:#?}"
            );
        }
    }

    #[test]
    fn a_replacement_whose_original_cannot_be_deleted_shows_that_failure() {
        let lines = shown(
            Operation::Up,
            include_bytes!(
                "../../../../tests/fixtures/pulumi/pulumi-lifecycle/TestPendingDeleteReplacement__1.jsonl"
            ),
        );
        let of = lines_of(&lines, "resB");
        assert_eq!(of.len(), 2, "{lines:#?}");
        assert!(of[0].trim_start().starts_with("+- ") && of[0].contains("replaced"));
        assert!(of[1].trim_start().starts_with("-- ") && of[1].contains("failed"));
        // An original left by an earlier update shows on its own, once.
        let lines = shown(
            Operation::Up,
            include_bytes!(
                "../../../../tests/fixtures/pulumi/pulumi-lifecycle/TestPendingDeleteReplacement.jsonl"
            ),
        );
        let of = lines_of(&lines, "resB");
        assert_eq!(of.len(), 2, "a delete, then the replacement: {lines:#?}");
        assert!(of[0].contains("deleted"), "{lines:#?}");
        assert!(of[1].contains("replaced"), "{lines:#?}");
    }

    #[test]
    fn default_providers_are_not_shown() {
        let lines = shown(
            Operation::Up,
            include_bytes!(
                "../../../../tests/fixtures/pulumi/recorded/component-without-outputs.jsonl"
            ),
        );
        assert!(lines.iter().all(|l| !l.contains("default")), "{lines:#?}");
        assert_eq!(lines_of(&lines, "member").len(), 1, "{lines:#?}");
    }

    #[test]
    fn a_diagnostic_of_several_lines_reads_as_one_message() {
        let event = br#"{"sequence":0,"timestamp":0,"diagnosticEvent":{"prefix":"error: ","message":"resource or variable named \"missing\" could not be found\n\n  on Pulumi.yaml line 8:\n","color":"never","severity":"error"}}"#;
        let lines = shown(Operation::Preview, event);
        assert_eq!(
            lines,
            [
                "  error: resource or variable named \"missing\" could not be found",
                "           on Pulumi.yaml line 8:",
            ],
        );
    }
}
