//! EMF documents for a batch of metrics that recurs: a Lambda function flushes the same
//! handful of metrics after every invocation, so the part of its document that depends
//! only on the metrics' names and units (the `CloudWatchMetrics` directive and the
//! dimensions) is rendered once and copied afterwards.
//!
//! The output is byte for byte what [`EmfEmitter::render_with`] renders for the same
//! metrics; a batch the cache cannot take whole (a name CloudWatch rejects or that collides
//! with a dimension, a property or `_aws`; more than one document's worth of metrics or
//! values; a metric without values or with a value that is not finite) is rendered by
//! `render_with`, with its warnings, filtering and splitting.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::emf::{
    EmfEmitter, MAX_METRICS_PER_DOCUMENT, MAX_VALUES_PER_METRIC, write_name, write_timestamp,
    write_values,
};
use crate::error::Result;
use crate::metrics::{PendingBatch, Unit};

/// Layouts kept: a function's batches differ by a few metrics at most (`Errors` after a
/// failed invocation, `ColdStart` and `PreWarmDuration` once).
const LAYOUTS: usize = 4;

/// Writes EMF documents for [`PendingBatch`]es, with the layouts of the last few batches
/// cached. One per emitter: a layout holds that emitter's namespace and dimensions.
#[derive(Debug, Default)]
pub(crate) struct EmfBatchWriter {
    layouts: Vec<Layout>,
    /// Counts the writes that used a layout: each layout holds the count at its last use,
    /// and a new one replaces the least recently used once [`LAYOUTS`] are kept.
    uses: u64,
}

/// What a document holds apart from its timestamp, properties' values and metrics' values.
#[derive(Debug)]
struct Layout {
    /// The metrics' names and units, in document order.
    metrics: Vec<(Arc<str>, Unit)>,
    /// [`EmfBatchWriter::uses`] when this layout was last used.
    last_used: u64,
    /// The properties' keys, which decide the names a document can hold.
    property_keys: Vec<String>,
    /// From the `CloudWatchMetrics` directive to the dimensions' values.
    head: Vec<u8>,
    /// `,"name":` of every metric, one after the other; `name_ends[i]` ends metric i's.
    names: Vec<u8>,
    name_ends: Vec<usize>,
}

impl Layout {
    fn matches<'b>(
        &self,
        mut metrics: impl Iterator<Item = (&'b Arc<str>, Unit, &'b [f64])>,
        properties: &[(&str, &str)],
    ) -> bool {
        self.property_keys.len() == properties.len()
            && self
                .property_keys
                .iter()
                .zip(properties)
                .all(|(kept, (key, _))| kept == key)
            && self.metrics.iter().all(|(name, unit)| {
                metrics.next().is_some_and(|(n, u, _)| {
                    u == *unit && (Arc::ptr_eq(n, name) || n.as_ref() == name.as_ref())
                })
            })
            && metrics.next().is_none()
    }

    fn name(&self, index: usize) -> &[u8] {
        let start = match index {
            0 => 0,
            _ => self.name_ends.get(index - 1).copied().unwrap_or(0),
        };
        let end = self.name_ends.get(index).copied().unwrap_or(start);
        self.names.get(start..end).unwrap_or_default()
    }
}

impl EmfBatchWriter {
    /// Appends to `out` the documents, one line each, of the metrics of `batch` that
    /// `select` takes, with `properties` as metadata. No selected metric, no document.
    pub(crate) fn write(
        &mut self,
        emitter: &EmfEmitter,
        batch: &PendingBatch,
        select: impl Fn(&str) -> bool,
        timestamp: DateTime<Utc>,
        properties: &[(&str, &str)],
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let selected = batch.entries().filter(|(name, _, _)| select(name));
        let (mut count, mut fits) = (0, true);
        for (_, _, values) in selected.clone() {
            count += 1;
            fits &= !values.is_empty()
                && values.len() <= MAX_VALUES_PER_METRIC
                && values.iter().all(|v| v.is_finite());
        }
        if count == 0 {
            return Ok(());
        }
        let index = match self
            .layouts
            .iter()
            .position(|layout| layout.matches(selected.clone(), properties))
        {
            Some(index) => Some(index),
            None if fits && count <= MAX_METRICS_PER_DOCUMENT => {
                self.add(emitter, selected.clone(), properties)?
            }
            None => None,
        };
        self.uses += 1;
        let uses = self.uses;
        let Some(layout) = index.filter(|_| fits).and_then(|i| self.layouts.get_mut(i)) else {
            // Not one plain document: the general renderer splits and filters it.
            let lines = emitter.render_parts(
                selected.map(|(name, unit, values)| (name.as_ref(), unit, values)),
                timestamp,
                properties,
            )?;
            for line in lines {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
            return Ok(());
        };
        layout.last_used = uses;
        write_timestamp(out, timestamp)?;
        out.extend_from_slice(&layout.head);
        emitter.write_properties(properties, out)?;
        for (index, (_, _, values)) in selected.enumerate() {
            out.extend_from_slice(layout.name(index));
            write_values(values, out)?;
        }
        out.extend_from_slice(b"}\n");
        Ok(())
    }

    /// Renders and keeps the layout of `metrics`; `None` when the emitter would leave
    /// one of them out (the general renderer then says why).
    fn add<'b>(
        &mut self,
        emitter: &EmfEmitter,
        metrics: impl Iterator<Item = (&'b Arc<str>, Unit, &'b [f64])> + Clone,
        properties: &[(&str, &str)],
    ) -> Result<Option<usize>> {
        if !metrics
            .clone()
            .all(|(name, _, _)| emitter.accepts(name, properties))
        {
            return Ok(None);
        }
        let mut head = Vec::with_capacity(512);
        emitter.write_head(
            metrics.clone().map(|(name, unit, _)| (name.as_ref(), unit)),
            &mut head,
        )?;
        let (mut names, mut name_ends) = (Vec::new(), Vec::new());
        for (name, _, _) in metrics.clone() {
            write_name(name, &mut names)?;
            name_ends.push(names.len());
        }
        let layout = Layout {
            metrics: metrics
                .map(|(name, unit, _)| (name.clone(), unit))
                .collect(),
            property_keys: properties
                .iter()
                .map(|(key, _)| (*key).to_owned())
                .collect(),
            last_used: 0,
            head,
            names,
            name_ends,
        };
        let least_recent = self
            .layouts
            .iter()
            .enumerate()
            .min_by_key(|(_, layout)| layout.last_used)
            .map(|(index, _)| index);
        let index = match least_recent {
            Some(index) if self.layouts.len() >= LAYOUTS => {
                if let Some(slot) = self.layouts.get_mut(index) {
                    *slot = layout;
                }
                index
            }
            _ => {
                self.layouts.push(layout);
                self.layouts.len() - 1
            }
        };
        Ok(Some(index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricsRegistry;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(seconds, 0).unwrap()
    }

    fn emitter() -> EmfEmitter {
        EmfEmitter::new("lift")
            .unwrap()
            .dimension("service", "orders")
            .unwrap()
            .high_resolution("Duration")
            .unwrap()
    }

    /// What `render_with` renders for the same batch, one line per document.
    fn rendered(
        emitter: &EmfEmitter,
        batch: &PendingBatch,
        select: impl Fn(&str) -> bool,
        timestamp: DateTime<Utc>,
        properties: &[(&str, &str)],
    ) -> String {
        let metrics: Vec<(String, Unit, Vec<f64>)> = batch
            .iter()
            .filter(|(name, _, _)| select(name))
            .map(|(name, unit, values)| (name.to_owned(), unit, values.to_vec()))
            .collect();
        emitter
            .render_with(&metrics, timestamp, properties)
            .unwrap()
            .iter()
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// Flush after flush, with the layouts changing, cached and evicted, the writer's
    /// bytes are the general renderer's.
    #[test]
    fn cached_layouts_render_what_the_renderer_renders() {
        let emitter = emitter();
        let registry = MetricsRegistry::default();
        let mut writer = EmfBatchWriter::default();
        let mut batch = PendingBatch::default();
        for flush in 0..40u32 {
            registry.increment("Invocations", "", 1);
            registry.observe("Duration", "", Unit::Milliseconds, f64::from(flush) * 0.25);
            if flush % 3 == 0 {
                registry.increment("Errors", "", 1);
            }
            if flush % 7 == 0 {
                registry.observe("Duration", "", Unit::Milliseconds, 1.5);
            }
            // Six distinct layouts over the run: more than the cache keeps.
            if flush % 5 == 0 {
                registry.set_gauge(&format!("Gauge{}", flush % 15), "", Unit::Count, 2.0);
            }
            registry.set_gauge("MemoryUsed", "", Unit::Megabytes, 40.0 + f64::from(flush));
            registry.take_pending_into(&mut batch);
            let request_id = format!("req-{flush}");
            let properties: &[(&str, &str)] = match flush % 4 {
                0 => &[],
                _ => &[("function_request_id", request_id.as_str())],
            };
            let select = |name: &str| name != "Errors" || flush % 2 == 0;
            let mut out = Vec::new();
            writer
                .write(
                    &emitter,
                    &batch,
                    select,
                    at(1_700_000_000 + i64::from(flush)),
                    properties,
                    &mut out,
                )
                .unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                rendered(
                    &emitter,
                    &batch,
                    select,
                    at(1_700_000_000 + i64::from(flush)),
                    properties
                ),
                "flush {flush}"
            );
        }
        assert_eq!(writer.layouts.len(), LAYOUTS);
    }

    /// The layout used on every flush stays cached while occasional ones come and go.
    #[test]
    fn the_least_recently_used_layout_is_replaced() {
        let emitter = emitter();
        let registry = MetricsRegistry::default();
        let mut writer = EmfBatchWriter::default();
        let mut batch = PendingBatch::default();
        let mut out = Vec::new();
        for flush in 0..20u32 {
            registry.increment("Invocations", "", 1);
            registry.take_pending_into(&mut batch);
            writer
                .write(&emitter, &batch, |_| true, at(0), &[], &mut out)
                .unwrap();
            // Then a new, never repeated metric: its layout replaces another.
            registry.increment("Invocations", "", 1);
            registry.set_gauge(&format!("Once{flush}"), "", Unit::Count, 1.0);
            registry.take_pending_into(&mut batch);
            writer
                .write(&emitter, &batch, |_| true, at(0), &[], &mut out)
                .unwrap();
            let steady = writer
                .layouts
                .iter()
                .any(|layout| layout.metrics.len() == 1);
            assert!(steady, "the steady layout was evicted at flush {flush}");
        }
        assert_eq!(writer.layouts.len(), LAYOUTS);
    }

    /// A batch the cache cannot take whole goes through the general renderer: a rejected
    /// name is left out, more than 100 values are split, nothing selected writes nothing.
    #[test]
    fn batches_past_one_plain_document_are_rendered_in_full() {
        let emitter = emitter();
        let registry = MetricsRegistry::default();
        let mut writer = EmfBatchWriter::default();
        let mut batch = PendingBatch::default();
        registry.increment("service", "collides with the dimension", 1);
        registry.increment("Invocations", "", 1);
        for i in 0..250u32 {
            registry.observe("Duration", "", Unit::Milliseconds, f64::from(i));
        }
        registry.take_pending_into(&mut batch);
        let mut out = Vec::new();
        writer
            .write(&emitter, &batch, |_| true, at(0), &[], &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, rendered(&emitter, &batch, |_| true, at(0), &[]));
        assert_eq!(text.lines().count(), 3);
        assert!(!text.contains(r#""service":1"#));
        assert!(writer.layouts.is_empty());

        let mut out = Vec::new();
        writer
            .write(&emitter, &batch, |_| false, at(0), &[], &mut out)
            .unwrap();
        assert!(out.is_empty());
    }
}
