//! The outbox's [`RecordWriter`] over the real SystmOne client: how a note is filed, and how
//! it is found again when SystmOne's answer was lost.

use crate::notes::{FiledEntry, RecordWriter, SystmOneFailure};
use domain::{render, NhsNumber};
use systmone::client::{Lane, SystmOneClient};
use systmone::codec::{
    Event, FilterFlag, GetPatientRecordParams, Identity, UpdatePatientRecordParams,
};

pub struct SystmOneRecordWriter {
    client: SystmOneClient,
}

impl SystmOneRecordWriter {
    pub fn new(client: SystmOneClient) -> Self {
        SystmOneRecordWriter { client }
    }
}

impl RecordWriter for SystmOneRecordWriter {
    async fn file_narrative(
        &self,
        nhs: &NhsNumber,
        lines: &[String],
        interactive: bool,
    ) -> Result<FiledEntry, SystmOneFailure> {
        let mut params = UpdatePatientRecordParams::new(Identity::nhs(nhs.clone()));
        // "File now" only jumps the queue; it does not use LeaveRecordOpen, because SystmOne
        // would then hold the entry until someone presses Save, and a read-back could miss it.
        params.leave_record_open = false;
        params.events.push(Event::with_lines(lines.to_vec()));
        let lane = if interactive {
            Lane::Interactive
        } else {
            Lane::Background
        };
        let response = self
            .client
            .update_record(params, lane)
            .await
            .map_err(|e| e.failure())?;
        Ok(FiledEntry {
            event_uid: response.event_uids.into_iter().next(),
        })
    }

    async fn find_entered_today(
        &self,
        nhs: &NhsNumber,
        reference_line: &str,
    ) -> Result<Option<FiledEntry>, SystmOneFailure> {
        let today = chrono::Local::now().date_naive();
        // Entered-today reads are exempt from the 30 s GetPatientRecord budget.
        let params = GetPatientRecordParams::entered_on(
            Some(Identity::nhs(nhs.clone())),
            today,
            [FilterFlag::Narrative],
        );
        let record = self
            .client
            .patient_record_with(params, Lane::Background)
            .await
            .map_err(|e| e.failure())?;
        // Real SystmOne returns an entry's lines joined into one padded Line, or split over
        // several Narratives [seen]: never compare lines as sent. The whole narrative text of
        // every event entered today is searched for the reference, whitespace ignored.
        Ok(record
            .events
            .iter()
            .find(|e| render::narrative_carries_reference(e.narrative_lines(), reference_line))
            .map(|e| FiledEntry {
                event_uid: e.event_uid.clone(),
            }))
    }
}
