//! The database key: where the ward database's SQLCipher key is kept and how it is found.
//!
//! Order: `INPATIENT_HUB_DB_KEY` (64 hex digits) if set — an explicit override for scripts
//! and CI, exactly like `INPATIENT_HUB_API_KEY`, and never written anywhere; otherwise this
//! OS account's keychain (Windows Credential Manager, macOS Keychain, Secret Service), under
//! a service name of its own. A key is created (random, 256 bits) only when there is no
//! database yet, or only an unencrypted one to migrate; an encrypted database with no key
//! in the keychain is the "lost key" case, reported with what IT can do — a new key is
//! never made for it, since that could only hide the loss.
//!
//! As for the APIKey, a missing keychain is reported, never papered over with a key in
//! memory that would be gone at the next start.

use keyring::Entry;
use std::path::Path;
use store::{DatabaseFile, StoreError};

pub use store::DatabaseKey;

pub const DB_KEY_ENV: &str = "INPATIENT_HUB_DB_KEY";
/// Distinct from the APIKey's service, so clearing one never touches the other.
pub const KEYCHAIN_SERVICE: &str = "Inpatient Hub database";
pub const KEYCHAIN_USER: &str = "database-key";

/// Where the key in use came from (shown by `hubctl db-key status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DbKeySource {
    /// `INPATIENT_HUB_DB_KEY`.
    Environment,
    /// This account's keychain.
    Keychain,
    /// Made just now for a new (or unencrypted) database, and saved in the keychain.
    CreatedInKeychain,
    /// Passed in by the caller (tests, tools given a key explicitly).
    Given,
}

#[derive(Debug, thiserror::Error)]
pub enum DbKeyError {
    #[error("no keychain available for the database key ({0}); run inside a desktop session, or set {DB_KEY_ENV} for scripted use")]
    NoKeychain(String),
    #[error("the database at {path} is encrypted, and this account's keychain does not hold its key (a different Windows account, a rebuilt PC or a reset keychain). Nothing was changed. IT can restore the escrowed key with `hubctl db-key set` (it reads the key from standard input and checks it opens the database before saving it), or set {DB_KEY_ENV}")]
    LostKey { path: String },
    #[error("{DB_KEY_ENV} is not a database key: {0}")]
    BadEnvironmentKey(String),
    #[error("the keychain's database key is unreadable ({0}); IT can restore the escrowed key with `hubctl db-key set`")]
    Unreadable(String),
    #[error("{DB_KEY_ENV} does not open the database at {path} (a different key, or a damaged file). Nothing was changed; unset it to use this account's keychain")]
    WrongEnvironmentKey { path: String },
    #[error("the key in this account's keychain does not open the database at {path} (it was encrypted under another key, or the file is damaged). Nothing was changed. IT can restore the escrowed key with `hubctl db-key set`")]
    WrongKeychainKey { path: String },
    #[error("no database key was given on standard input")]
    NoKeyGiven,
    #[error("the keychain refused the request: {0}")]
    Keychain(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DbKeyError {
    pub fn code(&self) -> &'static str {
        match self {
            DbKeyError::NoKeychain(_) => "no_keychain",
            DbKeyError::LostKey { .. } => "database_key_lost",
            DbKeyError::BadEnvironmentKey(_) => "invalid_database_key",
            DbKeyError::Unreadable(_) => "database_key_unreadable",
            DbKeyError::WrongEnvironmentKey { .. } | DbKeyError::WrongKeychainKey { .. } => {
                "database_key_wrong"
            }
            DbKeyError::NoKeyGiven => "invalid_database_key",
            DbKeyError::Keychain(_) => "keychain_error",
            DbKeyError::Store(e) => e.code(),
        }
    }

    /// Says which key failed, when the store found the key wrong.
    pub(crate) fn from_open_error(err: StoreError, source: DbKeySource) -> DbKeyError {
        match (err, source) {
            (StoreError::WrongKey { path }, DbKeySource::Environment) => {
                DbKeyError::WrongEnvironmentKey { path }
            }
            (
                StoreError::WrongKey { path },
                DbKeySource::Keychain | DbKeySource::CreatedInKeychain,
            ) => DbKeyError::WrongKeychainKey { path },
            (other, _) => DbKeyError::Store(other),
        }
    }
}

fn classify(err: keyring::Error) -> DbKeyError {
    match err {
        keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => {
            DbKeyError::NoKeychain(e.to_string())
        }
        keyring::Error::BadEncoding(_) => DbKeyError::Unreadable("not text".to_owned()),
        // The variants below never carry the secret itself, so their text is safe to show.
        other => DbKeyError::Keychain(other.to_string()),
    }
}

fn entry() -> Result<Entry, DbKeyError> {
    Entry::new(KEYCHAIN_SERVICE, KEYCHAIN_USER).map_err(classify)
}

fn env_override() -> Option<String> {
    std::env::var(DB_KEY_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The key for the database at `db_path`, and where it came from.
pub fn resolve_database_key(db_path: &Path) -> Result<(DatabaseKey, DbKeySource), DbKeyError> {
    match env_override() {
        Some(raw) => resolve_from(None, Some(&raw), db_path),
        None => resolve_from(Some(&entry()?), None, db_path),
    }
}

fn resolve_from(
    entry: Option<&Entry>,
    env: Option<&str>,
    db_path: &Path,
) -> Result<(DatabaseKey, DbKeySource), DbKeyError> {
    if let Some(raw) = env {
        let key = DatabaseKey::from_hex(raw).map_err(|e| match e {
            StoreError::InvalidKey(reason) => DbKeyError::BadEnvironmentKey(reason),
            other => DbKeyError::Store(other),
        })?;
        if store::at_rest::database_file_state(db_path)? != DatabaseFile::Encrypted {
            // The keychain is not told: whoever set the variable must keep the key.
            tracing::warn!(
                path = %db_path.display(),
                "the database will be created or encrypted under {DB_KEY_ENV}; this account's keychain does not hold that key"
            );
        }
        return Ok((key, DbKeySource::Environment));
    }
    let entry = entry.ok_or_else(|| DbKeyError::Keychain("no keychain entry".to_owned()))?;
    match read_entry(entry)? {
        Some(key) => Ok((key, DbKeySource::Keychain)),
        None => match store::at_rest::database_file_state(db_path)? {
            DatabaseFile::Encrypted => Err(DbKeyError::LostKey {
                path: db_path.display().to_string(),
            }),
            DatabaseFile::New | DatabaseFile::Plaintext => {
                let key = DatabaseKey::generate()?;
                entry
                    .set_password(key.expose_hex().as_str())
                    .map_err(classify)?;
                // Read back what the keychain holds: if another process made a key at the
                // same moment, both go on with whichever was saved last.
                let saved = read_entry(entry)?.ok_or_else(|| {
                    DbKeyError::Keychain("the new key was not kept by the keychain".to_owned())
                })?;
                tracing::info!("a new database key was made and saved in the keychain");
                Ok((saved, DbKeySource::CreatedInKeychain))
            }
        },
    }
}

fn read_entry(entry: &Entry) -> Result<Option<DatabaseKey>, DbKeyError> {
    match entry.get_password() {
        Ok(raw) => DatabaseKey::from_hex(&raw)
            .map(Some)
            .map_err(|_| DbKeyError::Unreadable("not a 64-digit hex key".to_owned())),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(classify(e)),
    }
}

/// What `hubctl db-key status` reports. Holds no key material.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DbKeyStatus {
    pub database: std::path::PathBuf,
    /// "new", "plaintext" or "encrypted".
    pub database_file: &'static str,
    pub environment_override: bool,
    /// Whether this account's keychain holds a database key (`None`: no keychain reachable).
    pub keychain_has_key: Option<bool>,
    /// Whether the key that would be used opens the database (`None`: nothing to check).
    pub key_opens_database: Option<bool>,
    pub problem: Option<String>,
}

/// Reports, without changing anything, whether the database can be opened and with what.
pub fn key_status(db_path: &Path) -> Result<DbKeyStatus, DbKeyError> {
    let file = store::at_rest::database_file_state(db_path)?;
    let env = env_override();
    let keychain = entry().and_then(|e| read_entry(&e));
    let keychain_has_key = keychain.as_ref().ok().map(Option::is_some);
    let key = match &env {
        Some(raw) => DatabaseKey::from_hex(raw)
            .map(Some)
            .map_err(|e| DbKeyError::BadEnvironmentKey(e.to_string())),
        None => keychain,
    };
    let (key_opens_database, problem) = match (&key, file) {
        (Err(e), _) => (None, Some(e.to_string())),
        (Ok(Some(key)), DatabaseFile::Encrypted) => {
            match store::at_rest::verify_key(db_path, key) {
                Ok(()) => (Some(true), None),
                Err(e) => {
                    let source = if env.is_some() {
                        DbKeySource::Environment
                    } else {
                        DbKeySource::Keychain
                    };
                    (
                        Some(false),
                        Some(DbKeyError::from_open_error(e, source).to_string()),
                    )
                }
            }
        }
        (Ok(None), DatabaseFile::Encrypted) => (
            None,
            Some(
                DbKeyError::LostKey {
                    path: db_path.display().to_string(),
                }
                .to_string(),
            ),
        ),
        (Ok(_), DatabaseFile::New | DatabaseFile::Plaintext) => (None, None),
    };
    Ok(DbKeyStatus {
        database: db_path.to_path_buf(),
        database_file: match file {
            DatabaseFile::New => "new",
            DatabaseFile::Plaintext => "plaintext",
            DatabaseFile::Encrypted => "encrypted",
        },
        environment_override: env.is_some(),
        keychain_has_key,
        key_opens_database,
        problem,
    })
}

/// Restores a key (e.g. IT's escrow copy, read from standard input by `hubctl db-key set`)
/// into this account's keychain — only after checking it opens the encrypted database at
/// `db_path`, so a mistyped key never replaces anything.
pub fn restore_database_key(db_path: &Path, raw: &str) -> Result<(), DbKeyError> {
    // Checked before the keychain is even looked at: a wrong key fails the same way
    // everywhere, keychain or not.
    let key = key_that_opens(db_path, raw)?;
    save(&entry()?, &key)
}

fn key_that_opens(db_path: &Path, raw: &str) -> Result<DatabaseKey, DbKeyError> {
    if raw.trim().is_empty() {
        return Err(DbKeyError::NoKeyGiven);
    }
    let key = DatabaseKey::from_hex(raw)?;
    store::at_rest::verify_key(db_path, &key)?;
    Ok(key)
}

fn save(entry: &Entry, key: &DatabaseKey) -> Result<(), DbKeyError> {
    entry
        .set_password(key.expose_hex().as_str())
        .map_err(classify)
}

#[cfg(test)]
fn restore_into(entry: &Entry, db_path: &Path, raw: &str) -> Result<(), DbKeyError> {
    save(entry, &key_that_opens(db_path, raw)?)
}

/// The key in this account's keychain, for IT to escrow (`hubctl db-key export`).
pub fn export_database_key() -> Result<DatabaseKey, DbKeyError> {
    read_entry(&entry()?)?.ok_or_else(|| {
        DbKeyError::Keychain("this account's keychain holds no database key".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyring::mock::MockCredential;
    use store::Store;

    /// The mock keeps the secret inside the entry itself, so each test uses one entry.
    fn mock_entry() -> Entry {
        keyring::set_default_credential_builder(keyring::mock::default_credential_builder());
        Entry::new(KEYCHAIN_SERVICE, KEYCHAIN_USER).unwrap()
    }

    fn fail_next(entry: &Entry, err: keyring::Error) {
        let mock: &MockCredential = entry.get_credential().downcast_ref().unwrap();
        mock.set_error(err);
    }

    fn encrypted_database(dir: &Path, key: &DatabaseKey) -> std::path::PathBuf {
        let path = dir.join("hub.sqlite");
        drop(Store::open(&path, key).unwrap());
        path
    }

    #[test]
    fn the_environment_key_wins_over_the_keychain_and_never_touches_it() {
        let entry = mock_entry();
        let dir = tempfile::tempdir().unwrap();
        let env_key = DatabaseKey::generate().unwrap();
        let (key, source) = resolve_from(
            Some(&entry),
            Some(&env_key.expose_hex()),
            &dir.path().join("hub.sqlite"),
        )
        .unwrap();
        assert_eq!(key, env_key);
        assert_eq!(source, DbKeySource::Environment);
        assert!(read_entry(&entry).unwrap().is_none(), "nothing saved");

        let err = resolve_from(Some(&entry), Some("not-a-key"), dir.path()).unwrap_err();
        assert_eq!(err.code(), "invalid_database_key");
        assert!(err.to_string().contains(DB_KEY_ENV), "{err}");
    }

    #[test]
    fn a_new_database_gets_a_new_key_saved_in_the_keychain_then_reuses_it() {
        let entry = mock_entry();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        let (created, source) = resolve_from(Some(&entry), None, &path).unwrap();
        assert_eq!(source, DbKeySource::CreatedInKeychain);
        assert_eq!(read_entry(&entry).unwrap(), Some(created.clone()));
        drop(Store::open(&path, &created).unwrap());
        let (again, source) = resolve_from(Some(&entry), None, &path).unwrap();
        assert_eq!(source, DbKeySource::Keychain);
        assert_eq!(again, created);
    }

    #[test]
    fn an_encrypted_database_with_no_key_in_the_keychain_is_a_lost_key_not_a_new_one() {
        let entry = mock_entry();
        let dir = tempfile::tempdir().unwrap();
        let path = encrypted_database(dir.path(), &DatabaseKey::generate().unwrap());
        let err = resolve_from(Some(&entry), None, &path).unwrap_err();
        assert_eq!(err.code(), "database_key_lost");
        let text = err.to_string();
        assert!(text.contains("keychain does not hold its key"), "{text}");
        assert!(text.contains("hubctl db-key set"), "{text}");
        assert!(read_entry(&entry).unwrap().is_none(), "no key was invented");
    }

    #[test]
    fn a_missing_keychain_is_reported_never_papered_over() {
        let entry = mock_entry();
        fail_next(
            &entry,
            keyring::Error::PlatformFailure(Box::new(std::io::Error::other("no D-Bus session"))),
        );
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_from(Some(&entry), None, &dir.path().join("hub.sqlite")).unwrap_err();
        assert_eq!(err.code(), "no_keychain");
        assert!(err.to_string().contains(DB_KEY_ENV), "{err}");
    }

    #[test]
    fn a_restored_key_is_saved_only_if_it_opens_the_database() {
        let entry = mock_entry();
        let dir = tempfile::tempdir().unwrap();
        let right = DatabaseKey::generate().unwrap();
        let path = encrypted_database(dir.path(), &right);

        let wrong = DatabaseKey::generate().unwrap();
        let err = restore_into(&entry, &path, &wrong.expose_hex()).unwrap_err();
        assert_eq!(err.code(), "database_key_wrong");
        assert!(read_entry(&entry).unwrap().is_none(), "wrong key not saved");
        assert_eq!(
            restore_into(&entry, &path, "  \n").unwrap_err().code(),
            "invalid_database_key"
        );

        restore_into(&entry, &path, &format!("{}\n", right.expose_hex().as_str())).unwrap();
        let (key, source) = resolve_from(Some(&entry), None, &path).unwrap();
        assert_eq!((key, source), (right, DbKeySource::Keychain));
    }

    #[test]
    fn wrong_keys_are_named_by_where_they_came_from() {
        let path = "/data/hub.sqlite".to_owned();
        let env = DbKeyError::from_open_error(
            StoreError::WrongKey { path: path.clone() },
            DbKeySource::Environment,
        );
        assert!(env.to_string().contains(DB_KEY_ENV), "{env}");
        let keychain =
            DbKeyError::from_open_error(StoreError::WrongKey { path }, DbKeySource::Keychain);
        assert!(keychain.to_string().contains("keychain"), "{keychain}");
        assert_eq!(keychain.code(), "database_key_wrong");
    }
}
