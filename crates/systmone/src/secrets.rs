//! The SystmOne APIKey: issued by TPP per product, kept in the OS keychain (Windows
//! Credential Manager, macOS Keychain, Secret Service on Linux), never in the database or
//! config files. `INPATIENT_HUB_API_KEY` overrides it explicitly for CI and scripts.
//!
//! When no keychain is reachable we say so and stop: a silent fallback to memory (what
//! `keyring` does with no platform feature) would lose the key on restart and leave staff
//! wondering why filing stopped working.

use keyring::Entry;
use std::fmt;

pub const KEYCHAIN_SERVICE: &str = "Inpatient Hub";
pub const KEYCHAIN_USER: &str = "systmone-api-key";
pub const API_KEY_ENV: &str = "INPATIENT_HUB_API_KEY";

/// TPP's keys are short hex strings; anything much longer is a paste accident.
const MAX_KEY_LEN: usize = 256;

/// The APIKey. `Debug` never prints it; read it with [`ApiKey::expose`] only to build a request.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Validates a key as typed or pasted (surrounding whitespace is dropped).
    pub fn parse(raw: &str) -> Result<ApiKey, SecretError> {
        let key = raw.trim();
        if key.is_empty() {
            return Err(SecretError::Invalid("the APIKey is empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(SecretError::Invalid(
                "the APIKey is too long; paste only the key TPP issued",
            ));
        }
        if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(SecretError::Invalid(
                "the APIKey contains spaces or line breaks; paste only the key TPP issued",
            ));
        }
        Ok(ApiKey(key.to_owned()))
    }

    /// Deliberate access to the key, for the request envelope only. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// Where the key in use came from (shown in settings and `hubctl`, so nobody wonders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretSource {
    Keychain,
    Environment,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no keychain available ({0}); set INPATIENT_HUB_API_KEY or run inside a desktop session"
    )]
    NoKeychain(String),
    #[error("no SystmOne APIKey is set: enter it in Settings (it is kept in this PC's keychain) or set INPATIENT_HUB_API_KEY")]
    NotSet,
    #[error("the keychain entry for the SystmOne APIKey is unreadable ({0}); enter the key again in Settings")]
    Unreadable(String),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the keychain refused the request: {0}")]
    Keychain(String),
}

impl SecretError {
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::NoKeychain(_) => "no_keychain",
            SecretError::NotSet => "api_key_not_set",
            SecretError::Unreadable(_) => "api_key_unreadable",
            SecretError::Invalid(_) => "invalid_api_key",
            SecretError::Keychain(_) => "keychain_error",
        }
    }
}

fn classify(err: keyring::Error) -> SecretError {
    match err {
        keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => {
            SecretError::NoKeychain(e.to_string())
        }
        keyring::Error::NoEntry => SecretError::NotSet,
        keyring::Error::BadEncoding(_) => SecretError::Unreadable("not text".to_owned()),
        // The variants below never carry the secret itself, so their text is safe to show.
        other => SecretError::Keychain(other.to_string()),
    }
}

fn entry() -> Result<Entry, SecretError> {
    Entry::new(KEYCHAIN_SERVICE, KEYCHAIN_USER).map_err(classify)
}

fn env_override() -> Option<String> {
    std::env::var(API_KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The APIKey to use, and where it came from: `INPATIENT_HUB_API_KEY` if set, else the
/// keychain.
pub fn load_api_key() -> Result<(ApiKey, SecretSource), SecretError> {
    match env_override() {
        Some(raw) => load_from(None, Some(&raw)),
        None => load_from(Some(&entry()?), None),
    }
}

fn load_from(
    entry: Option<&Entry>,
    env: Option<&str>,
) -> Result<(ApiKey, SecretSource), SecretError> {
    if let Some(raw) = env {
        return Ok((ApiKey::parse(raw)?, SecretSource::Environment));
    }
    let entry = entry.ok_or(SecretError::NotSet)?;
    let raw = entry.get_password().map_err(classify)?;
    let key =
        ApiKey::parse(&raw).map_err(|_| SecretError::Unreadable("not a valid key".to_owned()))?;
    Ok((key, SecretSource::Keychain))
}

/// Saves the key in the keychain (from Settings or `hubctl`). Validated first, so a
/// mistyped key is refused before it replaces a good one.
pub fn store_api_key(raw: &str) -> Result<(), SecretError> {
    store_in(&entry()?, raw)
}

fn store_in(entry: &Entry, raw: &str) -> Result<(), SecretError> {
    let key = ApiKey::parse(raw)?;
    entry.set_password(key.expose()).map_err(classify)
}

/// Removes the key from the keychain. Returns whether there was one.
pub fn clear_api_key() -> Result<bool, SecretError> {
    clear_in(&entry()?)
}

fn clear_in(entry: &Entry) -> Result<bool, SecretError> {
    match entry.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(e) => Err(classify(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring::mock::MockCredential;

    /// The mock keeps the secret inside the entry itself, so each test uses one entry.
    fn mock_entry() -> Entry {
        keyring::set_default_credential_builder(keyring::mock::default_credential_builder());
        Entry::new(KEYCHAIN_SERVICE, KEYCHAIN_USER).unwrap()
    }

    fn fail_next(entry: &Entry, err: keyring::Error) {
        let mock: &MockCredential = entry.get_credential().downcast_ref().unwrap();
        mock.set_error(err);
    }

    fn platform_error(msg: &str) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(std::io::Error::other(msg.to_owned()))
    }

    #[test]
    fn stored_key_round_trips_through_the_keychain() {
        let entry = mock_entry();
        assert!(matches!(
            load_from(Some(&entry), None),
            Err(SecretError::NotSet)
        ));
        store_in(&entry, "  f31e26725b5491f2\n").unwrap();
        let (key, source) = load_from(Some(&entry), None).unwrap();
        assert_eq!(key.expose(), "f31e26725b5491f2");
        assert_eq!(source, SecretSource::Keychain);
        assert!(clear_in(&entry).unwrap());
        assert!(
            !clear_in(&entry).unwrap(),
            "clearing twice reports there was nothing"
        );
        assert!(matches!(
            load_from(Some(&entry), None),
            Err(SecretError::NotSet)
        ));
    }

    #[test]
    fn environment_overrides_the_keychain_and_says_so() {
        let entry = mock_entry();
        store_in(&entry, "aaaaaaaaaaaaaaaa").unwrap();
        let (key, source) = load_from(Some(&entry), Some("bbbbbbbbbbbbbbbb")).unwrap();
        assert_eq!(key.expose(), "bbbbbbbbbbbbbbbb");
        assert_eq!(source, SecretSource::Environment);
    }

    #[test]
    fn a_missing_keychain_is_reported_never_papered_over() {
        let entry = mock_entry();
        fail_next(
            &entry,
            keyring::Error::PlatformFailure(platform_error("no D-Bus session")),
        );
        let err = load_from(Some(&entry), None).unwrap_err();
        assert!(matches!(err, SecretError::NoKeychain(_)), "{err:?}");
        assert_eq!(err.code(), "no_keychain");
        let text = err.to_string();
        assert!(text.contains("no keychain available"), "{text}");
        assert!(text.contains("INPATIENT_HUB_API_KEY"), "{text}");

        fail_next(
            &entry,
            keyring::Error::NoStorageAccess(platform_error("locked")),
        );
        assert!(matches!(
            store_in(&entry, "abcdef0123456789"),
            Err(SecretError::NoKeychain(_))
        ));
        // The failed store did not leave a key behind.
        assert!(matches!(
            load_from(Some(&entry), None),
            Err(SecretError::NotSet)
        ));
    }

    #[test]
    fn a_bad_key_is_refused_before_it_replaces_a_good_one() {
        let entry = mock_entry();
        store_in(&entry, "f31e26725b5491f2").unwrap();
        assert!(matches!(
            store_in(&entry, "   "),
            Err(SecretError::Invalid(_))
        ));
        assert!(matches!(
            store_in(&entry, "f31e 2672"),
            Err(SecretError::Invalid(_))
        ));
        assert!(matches!(
            store_in(&entry, &"a".repeat(300)),
            Err(SecretError::Invalid(_))
        ));
        assert_eq!(
            load_from(Some(&entry), None).unwrap().0.expose(),
            "f31e26725b5491f2"
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::parse("f31e26725b5491f2").unwrap();
        let printed = format!("{key:?} {:?}", Some((&key, SecretSource::Keychain)));
        assert!(!printed.contains("f31e"), "{printed}");
    }
}
