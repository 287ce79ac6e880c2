//! The outbox's [`RecordWriter`] over the real SystmOne client: how a note is filed, and how
//! it is found again when SystmOne's answer was lost.

use crate::domain::NhsNumber;
use crate::notes::{FiledEntry, RecordWriter, WriteError};
use crate::systmone::client::{ClientError, Lane, SystmOneClient};
use crate::systmone::codec::{Event, FilterFlag, GetPatientRecordParams, Identity, UpdatePatientRecordParams};

pub struct SystmOneRecordWriter {
    client: SystmOneClient,
}

impl SystmOneRecordWriter {
    pub fn new(client: SystmOneClient) -> Self {
        SystmOneRecordWriter { client }
    }
}

/// After an UpdatePatientRecord has been written to the socket, anything short of an
/// explicit answer (silence, a dropped connection, bytes we cannot read) may hide a filed
/// entry: it is "outcome unknown", and the outbox reads the record back before any retry.
fn write_error(e: ClientError) -> WriteError {
    match e {
        ClientError::Temporary(msg) => WriteError::Temporary(msg.expose().clone()),
        ClientError::Permanent(msg) => WriteError::Permanent(msg.expose().clone()),
        ClientError::InvalidRequest(msg) => WriteError::Permanent(msg),
        ClientError::OutcomeUnknown { .. } | ClientError::Timeout { .. } | ClientError::ConnectionLost | ClientError::Protocol(_) => {
            WriteError::OutcomeUnknown
        }
        // Nothing was sent.
        other @ (ClientError::NotRunning
        | ClientError::AwaitingApproval
        | ClientError::Blocked(_)
        | ClientError::Disabled
        | ClientError::Pacing(_)
        | ClientError::Store(_)
        | ClientError::Stopped) => WriteError::Unavailable(other.to_string()),
    }
}

/// A read that fails leaves the entry's state as it was; only "nothing sent" is unavailable.
fn read_error(e: ClientError) -> WriteError {
    match e {
        ClientError::Permanent(msg) => WriteError::Permanent(msg.expose().clone()),
        ClientError::NotRunning
        | ClientError::AwaitingApproval
        | ClientError::Blocked(_)
        | ClientError::Disabled
        | ClientError::Pacing(_)
        | ClientError::Store(_)
        | ClientError::Stopped => WriteError::Unavailable(e.to_string()),
        other => WriteError::Temporary(format!("could not read the record back: {other}")),
    }
}

impl RecordWriter for SystmOneRecordWriter {
    async fn file_narrative(&self, nhs: &NhsNumber, lines: &[String], interactive: bool) -> Result<FiledEntry, WriteError> {
        let mut params = UpdatePatientRecordParams::new(Identity::nhs(nhs.clone()));
        // "File now" only jumps the queue; it does not use LeaveRecordOpen, because SystmOne
        // would then hold the entry until someone presses Save, and a read-back could miss it.
        params.leave_record_open = false;
        params.events.push(Event { narrative: lines.to_vec(), ..Event::default() });
        let lane = if interactive { Lane::Interactive } else { Lane::Background };
        let response = self.client.update_record(params, lane).await.map_err(write_error)?;
        Ok(FiledEntry { event_uid: response.event_uids.into_iter().next() })
    }

    async fn find_entered_today(&self, nhs: &NhsNumber, reference_line: &str) -> Result<Option<FiledEntry>, WriteError> {
        let today = chrono::Local::now().date_naive();
        // Entered-today reads are exempt from the 30 s GetPatientRecord budget.
        let params = GetPatientRecordParams::entered_on(Some(Identity::nhs(nhs.clone())), today, [FilterFlag::Narrative]);
        let record = self.client.patient_record_with(params, Lane::Background).await.map_err(read_error)?;
        Ok(record
            .events
            .iter()
            .find(|e| e.narrative.iter().any(|line| line == reference_line))
            .map(|e| FiledEntry { event_uid: e.event_uid.clone() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Sensitive;

    #[test]
    fn only_explicit_answers_are_definite_after_a_write() {
        assert_eq!(write_error(ClientError::ConnectionLost), WriteError::OutcomeUnknown);
        assert_eq!(write_error(ClientError::Protocol("garbage".into())), WriteError::OutcomeUnknown);
        assert_eq!(write_error(ClientError::OutcomeUnknown { reason: "x".into() }), WriteError::OutcomeUnknown);
        assert!(matches!(write_error(ClientError::Temporary(Sensitive::new("open elsewhere".into()))), WriteError::Temporary(_)));
        assert!(matches!(write_error(ClientError::Permanent(Sensitive::new("no".into()))), WriteError::Permanent(_)));
        assert!(matches!(write_error(ClientError::NotRunning), WriteError::Unavailable(_)));
        assert!(matches!(read_error(ClientError::Timeout { after: std::time::Duration::from_secs(1) }), WriteError::Temporary(_)));
    }
}
