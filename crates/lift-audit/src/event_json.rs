//! An [`AuditEvent`] as the `event` member of a record.

use lift_core::AuditEvent;

use crate::error::{Error, Result};
use crate::record::MAX_EVENT_LEN;

/// Serializes an event as its record's `event` member, into `out`.
///
/// Invariant: the only way bytes reach the staging buffer, so no record ever
/// holds an event with fields marked secret.
pub(crate) fn encode_event(event: &AuditEvent, out: &mut Vec<u8>) -> Result<()> {
    event
        .check_no_secrets()
        .map_err(|e| Error::SecretRefused(e.message().to_owned()))?;
    let start = out.len();
    event.write_json(out).map_err(|e| Error::Serialize {
        action: event.action.clone(),
        message: e.to_string(),
    })?;
    let len = out.len() - start;
    if len > MAX_EVENT_LEN {
        out.truncate(start);
        return Err(Error::InvalidInput(format!(
            "audit event {}/{} is {len} bytes serialized; the limit is {MAX_EVENT_LEN} bytes, so keep large payloads out of audit details",
            event.event_type, event.action
        )));
    }
    Ok(())
}
