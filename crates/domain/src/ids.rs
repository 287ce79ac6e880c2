//! Typed row ids, so a task id can never be passed where a patient id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map($name)
                    .ok_or_else(|| format!("'{}' is not a valid {} id (expected a positive whole number)", s, $label))
            }
        }

        // Only the store turns on `sql`: typed ids then go straight into SQL parameters.
        #[cfg(feature = "sql")]
        impl rusqlite::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }

        #[cfg(feature = "sql")]
        impl rusqlite::types::FromSql for $name {
            fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(value).map($name)
            }
        }
    };
}

typed_id!(/// A patient on the local ward list.
    PatientId, "patient");
typed_id!(/// A ward task.
    TaskId, "task");
typed_id!(/// A case note.
    NoteId, "note");
typed_id!(/// An outbox entry (work queued for SystmOne).
    OutboxId, "outbox entry");
typed_id!(/// An audit log row.
    AuditId, "audit entry");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_positive_ids_and_rejects_others() {
        assert_eq!("42".parse::<TaskId>(), Ok(TaskId(42)));
        assert!("0".parse::<TaskId>().is_err());
        assert!("-3".parse::<TaskId>().is_err());
        let err = "abc".parse::<PatientId>().unwrap_err();
        assert!(err.contains("patient id"), "{err}");
    }
}
