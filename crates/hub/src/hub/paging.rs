//! Views that show a page of a long history, never the whole of it: after ten years the
//! audit holds millions of rows and the outbox hundreds of thousands, and asking for all of it
//! (530 MB of JSON every 2 seconds, once) is what made the window slow. Each page is the rows
//! older than a cursor (the oldest id of the page before), newest first.

use super::{Hub, HubError, HubResult};
use crate::notes::OutboxView;
use domain::{AuditId, OutboxId, PatientId};
use serde::Serialize;
use store::{AuditEntry, AuditQuery, OutboxEntry, OutboxHistoryQuery};

/// A page when the caller gives no size: more than a screen, far less than the history.
pub const DEFAULT_PAGE_SIZE: u32 = 200;
/// The largest page a view may ask for.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// One page of the audit, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page; `None` when this page is the last.
    pub next_before: Option<i64>,
}

/// One page of the outbox's finished entries (filed or pasted), newest first.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxPage {
    pub entries: Vec<OutboxView>,
    /// Pass as `before` for the next (older) page; `None` when this page is the last.
    pub next_before: Option<i64>,
}

fn page_size(limit: Option<u32>) -> HubResult<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
        Some(n) => Err(HubError::Field {
            field: "limit",
            source: Box::new(HubError::BadRequest(format!(
                "a page holds 1 to {MAX_PAGE_SIZE} rows, not {n}"
            ))),
        }),
    }
}

fn cursor(before: Option<i64>) -> HubResult<Option<i64>> {
    match before {
        Some(id) if id < 1 => Err(HubError::Field {
            field: "before",
            source: Box::new(HubError::BadRequest(format!(
                "'{id}' is not a row id to page back from (ids start at 1)"
            ))),
        }),
        other => Ok(other),
    }
}

/// The cursor for the page after one holding `ids` of at most `size` rows: a short page is
/// the last.
fn next_before(ids: impl Iterator<Item = i64>, len: usize, size: u32) -> Option<i64> {
    if len < size as usize {
        None
    } else {
        ids.last()
    }
}

/// A finished outbox entry as the outbox screen shows it (no ETA: it is filed).
fn finished_view(entry: OutboxEntry) -> OutboxView {
    OutboxView {
        state_kind: entry.state.kind(),
        status_text: entry.state.describe(),
        eta: None,
        entry,
    }
}

impl Hub {
    /// One page of the audit matching `query` (entity, entity id; `query.limit` is the page
    /// size: default [`DEFAULT_PAGE_SIZE`], at most [`MAX_PAGE_SIZE`]), older than `before`.
    pub fn audit_page(&self, query: &AuditQuery, before: Option<i64>) -> HubResult<AuditPage> {
        let size = page_size(query.limit)?;
        let before = cursor(before)?;
        let query = AuditQuery {
            limit: Some(size),
            ..query.clone()
        };
        let entries = self.store().audit_page(&query, before.map(AuditId))?;
        let next_before = next_before(entries.iter().map(|e| e.id.0), entries.len(), size);
        Ok(AuditPage {
            entries,
            next_before,
        })
    }

    /// One page of the outbox's history (filed or pasted entries), newest first, of one
    /// patient if given. The unfinished queue, with its ETAs, is [`Hub::outbox`]`(false)`.
    pub fn outbox_history(
        &self,
        patient_id: Option<i64>,
        limit: Option<u32>,
        before: Option<i64>,
    ) -> HubResult<OutboxPage> {
        let size = page_size(limit)?;
        let before = cursor(before)?;
        let entries = self.store().outbox_history(&OutboxHistoryQuery {
            patient_id: patient_id.map(PatientId),
            limit: Some(size),
            before: before.map(OutboxId),
        })?;
        let next_before = next_before(entries.iter().map(|e| e.id.0), entries.len(), size);
        Ok(OutboxPage {
            entries: entries.into_iter().map(finished_view).collect(),
            next_before,
        })
    }

    /// The outbox entries of one patient's notes, finished or not (the notes view shows each
    /// note's filing state from these): queued entries carry their ETA in the ward's queue.
    pub fn outbox_of_patient(&self, patient_id: i64) -> HubResult<Vec<OutboxView>> {
        let store = self.store();
        let mut queued: std::collections::HashMap<OutboxId, OutboxView> =
            crate::notes::outbox_entries(&store, false)?
                .into_iter()
                .filter(|v| v.entry.patient_id == PatientId(patient_id))
                .map(|v| (v.entry.id, v))
                .collect();
        Ok(store
            .outbox_entries_of_patient(PatientId(patient_id))?
            .into_iter()
            .map(|entry| {
                queued
                    .remove(&entry.id)
                    .unwrap_or_else(|| finished_view(entry))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use store::Store;

    fn hub_with_audit_rows(n: usize) -> Hub {
        let hub = Hub::from_store(Store::open_in_memory().unwrap(), PathBuf::new());
        for i in 0..n {
            hub.set_current_user(&format!("Nurse {}", (b'A' + (i % 26) as u8) as char))
                .unwrap();
        }
        hub
    }

    #[test]
    fn the_audit_is_read_page_by_page_newest_first_without_gaps() {
        let hub = hub_with_audit_rows(25);
        let query = AuditQuery {
            limit: Some(10),
            ..Default::default()
        };
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = hub.audit_page(&query, before).unwrap();
            assert!(page.entries.len() <= 10);
            seen.extend(page.entries.iter().map(|e| e.id.0));
            match page.next_before {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        let expected: Vec<i64> = (1..=25).rev().collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn bad_page_sizes_and_cursors_are_refused_naming_the_field() {
        let hub = hub_with_audit_rows(1);
        let too_big = AuditQuery {
            limit: Some(MAX_PAGE_SIZE + 1),
            ..Default::default()
        };
        let err = hub.audit_page(&too_big, None).unwrap_err();
        assert_eq!(err.field(), Some("limit"));
        let err = hub.audit_page(&AuditQuery::default(), Some(0)).unwrap_err();
        assert_eq!(err.field(), Some("before"));
        let err = hub.outbox_history(None, Some(0), None).unwrap_err();
        assert_eq!(err.field(), Some("limit"));
        assert!(hub
            .outbox_history(None, None, None)
            .unwrap()
            .entries
            .is_empty());
    }
}
