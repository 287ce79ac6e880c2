//! The one classification of a failed SystmOne request, used by case-note filing, task sync
//! and the façade alike. What matters to a caller is whether the request can have changed
//! the record, because that decides between "try again", "read back before anything is
//! resent" and "tell a person".

/// How a SystmOne request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystmOneFailure {
    /// SystmOne answered that it did not act and asked to try again later (e.g. the record
    /// is open on screen): nothing was changed, a later retry is right.
    #[error("SystmOne asked to try again later: {0}")]
    NotSent(String),
    /// The request was sent and no answer came (a silent throttle drop, a slow client, a
    /// connection lost after sending): a write may or may not have been applied, so it is
    /// never resent before a read shows it is not there.
    #[error("SystmOne did not answer; the change may or may not have been made")]
    MaybeSent,
    /// SystmOne answered with a permanent error: nothing was changed and retrying the same
    /// request will not help; a person must see SystmOne's words.
    #[error("SystmOne refused it: {0}")]
    Refused(String),
    /// Nothing was delivered: SystmOne not running, nobody logged in, this device not
    /// approved or blocked, or API filing switched off.
    #[error("SystmOne is not available: {0}")]
    Unavailable(String),
}

impl SystmOneFailure {
    /// A stable machine-readable name, for logs (never SystmOne's own text, which may quote
    /// patient data).
    pub fn kind(&self) -> &'static str {
        match self {
            SystmOneFailure::NotSent(_) => "not_sent",
            SystmOneFailure::MaybeSent => "maybe_sent",
            SystmOneFailure::Refused(_) => "refused",
            SystmOneFailure::Unavailable(_) => "unavailable",
        }
    }

    /// True when the record may have been changed (only a read can tell).
    pub fn may_have_applied(&self) -> bool {
        matches!(self, SystmOneFailure::MaybeSent)
    }
}
