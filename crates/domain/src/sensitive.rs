//! A wrapper for patient-identifiable data: `Debug` (and so `tracing`'s `?field`) prints a
//! redaction marker, never the value. Serialization is transparent, because the UI and the
//! store legitimately need the value; logging is the leak this guards against.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Sensitive(value)
    }

    /// Deliberate access to the value. Grep for `expose` to audit where patient data flows.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Sensitive(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let name = Sensitive::new(String::from("Jane Smith"));
        let printed = format!("{name:?} {:?}", Some(&name));
        assert!(!printed.contains("Jane"), "{printed}");
        assert_eq!(name.expose(), "Jane Smith");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"Jane Smith\"");
    }
}
