//! The ward database at rest: encrypted with SQLCipher under a random 256-bit key, files
//! readable by this OS account only, never on a network share, and an older plaintext
//! database encrypted in place without a window in which a crash could lose it.
//!
//! The key is a parameter ([`DatabaseKey`]): where it is kept (the OS keychain, or
//! `INPATIENT_HUB_DB_KEY`) is the hub's business, so this crate never touches a keychain.

use crate::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The first 16 bytes of every plaintext SQLite database. SQLCipher encrypts page 1 whole,
/// so an encrypted file never starts with them.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Suffix of the encrypted copy written beside a plaintext database while it is migrated.
const ENCRYPTING_SUFFIX: &str = ".encrypting";

/// A 256-bit SQLCipher key. `Debug` never prints it, it is not `Serialize`, and its bytes
/// are wiped when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseKey(Zeroizing<[u8; 32]>);

impl DatabaseKey {
    /// Hex digits in the written form of a key (32 bytes).
    pub const HEX_LEN: usize = 64;

    /// A fresh key from the operating system's random source.
    pub fn generate() -> StoreResult<DatabaseKey> {
        use rand::RngCore;
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(bytes.as_mut())
            .map_err(|e| StoreError::InvalidKey(format!("no random source available: {e}")))?;
        Ok(DatabaseKey(bytes))
    }

    /// Reads the written form: 64 hex digits (surrounding whitespace, e.g. a trailing
    /// newline from a pasted or piped key, is dropped).
    pub fn from_hex(raw: &str) -> StoreResult<DatabaseKey> {
        let text = raw.trim();
        if text.len() != Self::HEX_LEN {
            return Err(StoreError::InvalidKey(format!(
                "a database key is {} hexadecimal digits; this is {} characters",
                Self::HEX_LEN,
                text.chars().count()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
            let digits = std::str::from_utf8(pair).ok();
            *byte = digits
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(|| {
                    StoreError::InvalidKey(
                        "a database key has only the digits 0-9 and a-f".to_owned(),
                    )
                })?;
        }
        Ok(DatabaseKey(bytes))
    }

    /// The written form (64 lowercase hex digits), for the keychain and for IT's escrow
    /// copy only. Never log it.
    pub fn expose_hex(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(Self::HEX_LEN));
        for byte in self.0.iter() {
            text.push(hex_digit(byte >> 4));
            text.push(hex_digit(byte & 0x0f));
        }
        text
    }

    /// SQLCipher's raw-key literal `x'…'`. A raw key is used as the encryption key as it
    /// is, so opening skips the PBKDF2 derivation (256,000 rounds, about a quarter of a
    /// second) that a passphrase would cost on every open: the key is already random.
    fn sql_literal(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("x'{}'", self.expose_hex().as_str()))
    }
}

fn hex_digit(nibble: u8) -> char {
    char::from_digit(u32::from(nibble), 16).unwrap_or('0')
}

impl fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseKey([redacted])")
    }
}

/// What is on disk at the database's path, before it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFile {
    /// No database yet (no file, or an empty one with no write-ahead log behind it).
    New,
    /// A database written before encryption: SQLite's header in the clear.
    Plaintext,
    /// Anything else: an encrypted database (or a damaged file, which no key opens).
    Encrypted,
}

/// Looks at the database file without opening it (the hub asks this to tell "a new
/// database needs a new key" from "the key for this database is lost").
pub fn database_file_state(path: &Path) -> StoreResult<DatabaseFile> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| StoreError::CannotOpen {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(if has_content(&sidecar(path, "-wal")) {
                DatabaseFile::Encrypted
            } else {
                DatabaseFile::New
            })
        }
        Err(e) => return Err(unreadable(e)),
    };
    let mut head = Vec::with_capacity(SQLITE_HEADER.len());
    file.by_ref()
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut head)
        .map_err(unreadable)?;
    Ok(if head.as_slice() == SQLITE_HEADER {
        DatabaseFile::Plaintext
    } else if head.is_empty() && !has_content(&sidecar(path, "-wal")) {
        DatabaseFile::New
    } else {
        DatabaseFile::Encrypted
    })
}

fn has_content(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
}

/// `path` with `suffix` appended to its file name (`x.sqlite` → `x.sqlite-wal`).
pub(crate) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Applies the key: the very first statement on a connection, before anything reads the
/// file, as SQLCipher requires.
pub(crate) fn apply_key(conn: &Connection, key: &DatabaseKey) -> rusqlite::Result<()> {
    // The literal is 64 validated hex digits: nothing in it can end the string.
    let statement = Zeroizing::new(format!("PRAGMA key = \"{}\";", key.sql_literal().as_str()));
    conn.execute_batch(&statement)
}

/// Proves the key opens the database: SQLCipher only decrypts when a page is read, and a
/// wrong key shows as "file is not a database" on the first read of the schema.
pub(crate) fn check_key(conn: &Connection, path: &Path) -> StoreResult<()> {
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    }) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(ffi, _))
            if ffi.code == rusqlite::ErrorCode::NotADatabase =>
        {
            Err(StoreError::WrongKey {
                path: path.display().to_string(),
            })
        }
        Err(e) => Err(StoreError::classify(e, path)),
    }
}

/// Whether `key` opens the existing database at `path`, reading only (used before a
/// recovered key is saved in the keychain, so a wrong one never replaces anything).
pub fn verify_key(path: &Path, key: &DatabaseKey) -> StoreResult<()> {
    if database_file_state(path)? != DatabaseFile::Encrypted {
        return Err(StoreError::CannotOpen {
            path: path.display().to_string(),
            reason: "there is no encrypted database there to check the key against".to_owned(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::classify(e, path))?;
    apply_key(&conn, key).map_err(|e| StoreError::classify(e, path))?;
    check_key(&conn, path)
}

// ---------------------------------------------------------------------------------------
// Migrating a plaintext database.

/// The points of the plaintext migration a crash can fall between; tests inject a failure
/// at each to prove that what is left is the old plaintext or the complete encrypted file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MigrationStep {
    /// The encrypted copy is written beside the plaintext (not yet flushed by us).
    Exported,
    /// The encrypted copy is flushed to disk.
    Synced,
    /// The encrypted copy passed the integrity check and has every row.
    Verified,
    /// The encrypted copy has replaced the plaintext.
    Renamed,
}

/// Encrypts the plaintext database at `path` in place:
/// 1. the plaintext is taken out of WAL mode (so no `-wal` beside it holds rows that a
///    renamed file would not) and locked exclusively, so no other process writes during the copy;
/// 2. `sqlcipher_export` copies it into `<path>.encrypting` (created 0600), with its schema version;
/// 3. the copy is flushed, then checked (`integrity_check`, row counts per table, version);
/// 4. the copy is renamed over the plaintext (atomic), and the folder flushed.
///
/// Until step 4 the plaintext is untouched and complete; after it the encrypted file is.
/// A leftover `.encrypting` file from a crash is simply removed by the next attempt, so a
/// failure here leaves the same state as a crash and needs no separate clean-up.
pub(crate) fn encrypt_plaintext_in_place(
    path: &Path,
    key: &DatabaseKey,
    hook: &mut dyn FnMut(MigrationStep) -> StoreResult<()>,
) -> StoreResult<()> {
    let failed = |reason: String| StoreError::EncryptionFailed {
        path: path.display().to_string(),
        reason,
    };
    let target = sidecar(path, ENCRYPTING_SUFFIX);
    let target_str = target
        .to_str()
        .ok_or_else(|| failed("the folder's name is not valid Unicode".to_owned()))?
        .to_owned();
    for stale in [
        target.clone(),
        sidecar(&target, "-journal"),
        sidecar(&target, "-wal"),
        sidecar(&target, "-shm"),
    ] {
        remove_if_present(&stale)
            .map_err(|e| failed(format!("removing {}: {e}", stale.display())))?;
    }

    let plain = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::classify(e, path))?;
    plain
        .busy_timeout(crate::BUSY_TIMEOUT)
        .map_err(|e| StoreError::classify(e, path))?;
    // Leaving WAL mode checkpoints every committed row into the main file and needs every
    // other connection closed: another window still open makes this fail as "busy".
    plain
        .pragma_update_and_check(None, "journal_mode", "DELETE", |_| Ok(()))
        .map_err(|e| StoreError::classify(e, path))?;
    // Hold the write lock until this connection closes: nobody writes to the plaintext
    // while it is copied, so the copy misses nothing.
    plain
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;")
        .map_err(|e| StoreError::classify(e, path))?;
    let version: i64 = plain
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| StoreError::classify(e, path))?;
    let counts = row_counts(&plain, "main").map_err(|e| StoreError::classify(e, path))?;

    create_private_file(&target)?;
    let export = || -> rusqlite::Result<()> {
        plain.execute(
            "ATTACH DATABASE ?1 AS encrypted KEY ?2",
            [target_str.as_str(), key.sql_literal().as_str()],
        )?;
        plain.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
        // sqlcipher_export copies the schema and rows, not the header's user_version, which
        // is the schema version the migrations go by.
        plain.execute_batch(&format!("PRAGMA encrypted.user_version = {version};"))?;
        plain.execute_batch("DETACH DATABASE encrypted;")
    };
    export().map_err(|e| failed(format!("writing the encrypted copy: {e}")))?;
    hook(MigrationStep::Exported)?;

    std::fs::File::open(&target)
        .and_then(|f| f.sync_all())
        .map_err(|e| failed(format!("flushing the encrypted copy: {e}")))?;
    hook(MigrationStep::Synced)?;

    verify_copy(&target, key, version, &counts).map_err(failed)?;
    hook(MigrationStep::Verified)?;

    // Closing releases the lock; Windows cannot rename over a file that is open.
    drop(plain);
    if has_content(&sidecar(path, "-wal")) {
        // Someone opened the plaintext in WAL mode after the lock was released: their
        // rows may not be in the copy, so do not replace the file under them.
        return Err(failed(
            "another Inpatient Hub window or hubctl opened the database during encryption; close it and start again".to_owned(),
        ));
    }
    for leftover in [sidecar(path, "-wal"), sidecar(path, "-shm")] {
        remove_if_present(&leftover)
            .map_err(|e| failed(format!("removing {}: {e}", leftover.display())))?;
    }
    std::fs::rename(&target, path).map_err(|e| failed(format!("replacing the plaintext: {e}")))?;
    sync_folder(path).map_err(|e| failed(format!("flushing the folder: {e}")))?;
    hook(MigrationStep::Renamed)?;
    tracing::info!(path = %path.display(), "plaintext database encrypted in place");
    Ok(())
}

/// Rows per table (in `schema`), to compare the encrypted copy with the plaintext.
pub(crate) fn row_counts(conn: &Connection, schema: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut tables = conn.prepare(&format!(
        "SELECT name FROM {schema}.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ))?;
    let names = tables
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    names
        .into_iter()
        .map(|name| {
            let quoted = name.replace('"', "\"\"");
            let count = conn.query_row(
                &format!("SELECT count(*) FROM {schema}.\"{quoted}\""),
                [],
                |r| r.get(0),
            )?;
            Ok((name, count))
        })
        .collect()
}

/// Opens the encrypted copy afresh with the key and checks it is whole and complete.
fn verify_copy(
    target: &Path,
    key: &DatabaseKey,
    version: i64,
    expected: &[(String, i64)],
) -> Result<(), String> {
    let conn = Connection::open_with_flags(
        target,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("reopening the encrypted copy: {e}"))?;
    apply_key(&conn, key).map_err(|e| format!("keying the encrypted copy: {e}"))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("checking the encrypted copy: {e}"))?;
    if integrity != "ok" {
        return Err(format!(
            "the encrypted copy failed its integrity check: {integrity}"
        ));
    }
    let copied_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("reading the encrypted copy's version: {e}"))?;
    if copied_version != version {
        return Err(format!(
            "the encrypted copy has schema version {copied_version}, the original {version}"
        ));
    }
    let counts = row_counts(&conn, "main").map_err(|e| format!("counting rows: {e}"))?;
    if counts != expected {
        return Err("the encrypted copy does not have the same rows as the original".to_owned());
    }
    Ok(())
}

pub(crate) fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Flushes the folder entry after a rename, so the rename itself survives a power cut.
#[cfg(unix)]
pub(crate) fn sync_folder(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => std::fs::File::open(dir)?.sync_all(),
        None => std::fs::File::open(".")?.sync_all(),
    }
}

/// Windows cannot open a folder as a file; NTFS journals the rename's metadata itself.
#[cfg(not(unix))]
pub(crate) fn sync_folder(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Permissions: this OS account only.

/// Creates the data folder (and any missing parents) readable by this account only, and
/// takes group/other access away from it if it was found looser. Refuses a network share.
pub(crate) fn prepare_folder(dir: &Path) -> StoreResult<()> {
    let cannot = |e: std::io::Error| StoreError::CannotOpen {
        path: dir.display().to_string(),
        reason: e.to_string(),
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(cannot)?;
    if let FolderLocation::Network(kind) = classify_folder(dir).map_err(cannot)? {
        return Err(StoreError::NetworkShare {
            path: dir.display().to_string(),
            kind,
        });
    }
    tighten(dir);
    Ok(())
}

/// Creates `path` empty, readable and writable by this account only, if it does not exist.
/// SQLite gives the `-wal`, `-shm` and `-journal` files it makes later the same mode as
/// the database file, so this one decision covers them too.
pub(crate) fn create_private_file(path: &Path) -> StoreResult<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::CannotOpen {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

/// Takes group and other access away from the database and its `-wal`/`-shm` files (a
/// database made by an earlier version, or copied in by hand, may be world-readable).
pub(crate) fn tighten_database_files(path: &Path) {
    for file in [
        path.to_path_buf(),
        sidecar(path, "-wal"),
        sidecar(path, "-shm"),
    ] {
        if file.exists() {
            tighten(&file);
        }
    }
}

/// Removes group/other permission bits, keeping the owner's as they are (so a file made
/// read-only on purpose stays read-only). A file this account does not own, or read-only
/// media, cannot be changed: that is logged and the board still opens (read-only if need be).
#[cfg(unix)]
fn tighten(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        let tightened = std::fs::Permissions::from_mode(mode & !0o077);
        if let Err(e) = std::fs::set_permissions(path, tightened) {
            tracing::warn!(path = %path.display(), error = %e, "could not restrict permissions to this account");
        }
    }
}

/// On Windows the data folder is under the account's local app data, whose ACL already
/// admits only that account (and administrators); files inherit it.
#[cfg(not(unix))]
fn tighten(_path: &Path) {}

// ---------------------------------------------------------------------------------------
// Network shares: SQLite's locking (and WAL's shared memory) is unreliable over SMB/NFS, and
// patient data on a file server is outside what this PC's encryption and permissions protect.

/// Where a folder's files physically are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FolderLocation {
    Local,
    /// On a network file system; the string names which (for the message).
    Network(String),
}

/// Classifies the folder `dir` (which exists).
pub fn classify_folder(dir: &Path) -> std::io::Result<FolderLocation> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let stat = nix::sys::statfs::statfs(dir).map_err(std::io::Error::from)?;
        // f_type is i64 on x86-64 glibc but i32/u32 elsewhere.
        #[allow(clippy::unnecessary_cast)]
        let magic = stat.filesystem_type().0 as i64;
        Ok(
            linux_network_fs(magic).map_or(FolderLocation::Local, |kind| {
                FolderLocation::Network(kind.to_owned())
            }),
        )
    }
    #[cfg(target_os = "macos")]
    {
        let stat = nix::sys::statfs::statfs(dir).map_err(std::io::Error::from)?;
        Ok(
            macos_network_fs(stat.filesystem_type_name()).map_or(FolderLocation::Local, |kind| {
                FolderLocation::Network(kind.to_owned())
            }),
        )
    }
    #[cfg(windows)]
    {
        // A mapped network drive (Z:) canonicalises to the share's UNC form
        // (\\?\UNC\server\share\…), so one string test covers both; std gets there with no
        // unsafe code, which this workspace forbids (GetDriveTypeW would need it).
        let full = std::fs::canonicalize(dir)?;
        Ok(if is_unc_network_path(&full.to_string_lossy()) {
            FolderLocation::Network("a Windows network share (UNC path or mapped drive)".to_owned())
        } else {
            FolderLocation::Local
        })
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        windows
    )))]
    {
        let _ = dir;
        Ok(FolderLocation::Local)
    }
}

/// Linux `statfs` `f_type` magic numbers of network (and user-space, e.g. sshfs) file systems.
#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
fn linux_network_fs(magic: i64) -> Option<&'static str> {
    // Masked to 32 bits: f_type is signed on some targets, so CIFS's 0xFF534D42 can come
    // back negative.
    Some(match magic & 0xFFFF_FFFF {
        0x6969 => "NFS",
        0xFF53_4D42 => "CIFS (Windows share)",
        0xFE53_4D42 => "SMB2/3 (Windows share)",
        0x517B => "SMB (Windows share)",
        0x5346_414F => "AFS",
        0x564C => "NetWare (NCP)",
        0x7375_7245 => "Coda",
        0x00C3_6400 => "Ceph",
        // FUSE carries sshfs, gvfs's network mounts and rclone; a local disk is never FUSE
        // on a ward PC, so refusing it costs nothing and closes the sshfs hole.
        0x6573_5546 => "FUSE (e.g. sshfs)",
        _ => return None,
    })
}

/// macOS `statfs` `f_fstypename` of network file systems.
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn macos_network_fs(name: &str) -> Option<&'static str> {
    Some(match name {
        "nfs" => "NFS",
        "smbfs" => "SMB (Windows share)",
        "afpfs" => "AFP",
        "webdav" => "WebDAV",
        "cifs" => "CIFS (Windows share)",
        "ftp" => "FTP",
        "osxfuse" | "macfuse" | "fusefs" => "FUSE (e.g. sshfs)",
        _ => return None,
    })
}

/// Whether a Windows path names a network share: `\\server\share\…`, `//server/share/…`
/// or the verbatim `\\?\UNC\server\share\…`; not a verbatim local path (`\\?\C:\…`) or a
/// device path (`\\.\…`).
#[cfg_attr(not(windows), allow(dead_code))]
fn is_unc_network_path(path: &str) -> bool {
    let normal = path.replace('/', "\\");
    let upper = normal.to_ascii_uppercase();
    if upper.starts_with("\\\\?\\UNC\\") {
        return true;
    }
    if upper.starts_with("\\\\?\\") || upper.starts_with("\\\\.\\") {
        return false;
    }
    normal.starts_with("\\\\") && normal.len() > 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::test_key;
    use crate::Store;

    /// A name that appears nowhere else, to look for in the raw bytes on disk.
    const PATIENT_NAME: &str = "Zebedee Quartermaine";

    fn add_patient(store: &mut Store) {
        store
            .add_patient(
                "Nurse A",
                &crate::NewPatient {
                    bed: domain::BedLabel::parse("B1").unwrap(),
                    name: domain::PatientName::parse(PATIENT_NAME).unwrap(),
                    nhs_number: None,
                },
            )
            .unwrap();
    }

    fn has_patient(store: &Store) -> bool {
        store
            .patients()
            .unwrap()
            .iter()
            .any(|p| p.name.expose() == PATIENT_NAME)
    }

    /// A database as an earlier version left it: plaintext, current schema, one patient.
    fn plaintext_database(path: &Path) {
        let mut conn = Connection::open(path).unwrap();
        crate::migrations::migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO patients (bed, name, created_at, created_by) VALUES ('B1', ?1, '2026-01-01T00:00:00+00:00', 'tester')",
            [PATIENT_NAME],
        )
        .unwrap();
        assert_eq!(database_file_state(path).unwrap(), DatabaseFile::Plaintext);
    }

    fn bytes_contain(path: &Path, needle: &[u8]) -> bool {
        std::fs::read(path)
            .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            .unwrap_or(false)
    }

    fn assert_no_plaintext_on_disk(path: &Path) {
        for file in [
            path.to_path_buf(),
            sidecar(path, "-wal"),
            sidecar(path, "-shm"),
        ] {
            assert!(
                !bytes_contain(&file, PATIENT_NAME.as_bytes()),
                "{} holds a patient's name in the clear",
                file.display()
            );
        }
        assert!(
            !bytes_contain(path, SQLITE_HEADER),
            "plaintext SQLite header"
        );
        assert_eq!(database_file_state(path).unwrap(), DatabaseFile::Encrypted);
    }

    #[test]
    fn the_file_on_disk_is_encrypted_with_no_header_and_no_patient_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        let mut store = Store::open(&path, &test_key()).unwrap();
        add_patient(&mut store);
        // While open (rows may still be in the -wal) and after closing.
        assert_no_plaintext_on_disk(&path);
        drop(store);
        assert_no_plaintext_on_disk(&path);
        assert!(has_patient(&Store::open(&path, &test_key()).unwrap()));
        // Plain SQLite (no key) cannot read it.
        let plain = Connection::open(&path).unwrap();
        assert!(plain
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r
                .get::<_, i64>(0))
            .is_err());
    }

    #[test]
    fn a_wrong_key_is_refused_clearly_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        let mut store = Store::open(&path, &test_key()).unwrap();
        add_patient(&mut store);
        drop(store);
        let before = std::fs::read(&path).unwrap();

        let wrong = DatabaseKey::generate().unwrap();
        let err = Store::open(&path, &wrong).unwrap_err();
        assert!(matches!(err, StoreError::WrongKey { .. }), "{err:?}");
        assert_eq!(err.code(), "database_key_wrong");
        assert!(err.to_string().contains("different key"), "{err}");
        assert!(err.to_string().contains("Nothing was changed"), "{err}");
        assert!(matches!(
            verify_key(&path, &wrong),
            Err(StoreError::WrongKey { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before, "file untouched");

        verify_key(&path, &test_key()).unwrap();
        assert!(has_patient(&Store::open(&path, &test_key()).unwrap()));
    }

    #[test]
    fn a_plaintext_database_is_encrypted_in_place_and_the_plaintext_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        plaintext_database(&path);
        let store = Store::open(&path, &test_key()).unwrap();
        assert!(has_patient(&store), "every row came across");
        assert_eq!(store.integrity_check().unwrap(), "ok");
        drop(store);
        assert_no_plaintext_on_disk(&path);
        assert!(
            !sidecar(&path, ENCRYPTING_SUFFIX).exists(),
            "no copy left behind"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| n.starts_with("hub.sqlite")),
            "{names:?}"
        );
    }

    #[test]
    fn a_failure_at_any_step_of_the_plaintext_migration_loses_nothing() {
        for failing in [
            MigrationStep::Exported,
            MigrationStep::Synced,
            MigrationStep::Verified,
            MigrationStep::Renamed,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hub.sqlite");
            plaintext_database(&path);
            let err = Store::open_migrating(&path, &test_key(), &mut |step| {
                if step == failing {
                    Err(StoreError::EncryptionFailed {
                        path: "test".to_owned(),
                        reason: format!("simulated crash after {step:?}"),
                    })
                } else {
                    Ok(())
                }
            })
            .unwrap_err();
            assert_eq!(err.code(), "database_encryption_failed", "{failing:?}");
            // What a crash at this point leaves: the whole plaintext, or the whole encrypted file.
            let expected = if failing == MigrationStep::Renamed {
                DatabaseFile::Encrypted
            } else {
                DatabaseFile::Plaintext
            };
            assert_eq!(database_file_state(&path).unwrap(), expected, "{failing:?}");
            // The next start finishes the job and every row is there.
            let store = Store::open(&path, &test_key())
                .unwrap_or_else(|e| panic!("reopening after {failing:?}: {e}"));
            assert!(has_patient(&store), "{failing:?}");
            drop(store);
            assert_no_plaintext_on_disk(&path);
            assert!(!sidecar(&path, ENCRYPTING_SUFFIX).exists(), "{failing:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn database_files_are_private_and_folders_0700() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();

        // A new folder is made 0700, the database and its -wal/-shm 0600.
        let dir = root.path().join("new").join("data");
        let path = dir.join("hub.sqlite");
        let mut store = Store::open(&path, &test_key()).unwrap();
        add_patient(&mut store);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&root.path().join("new")), 0o700);
        for file in [path.clone(), sidecar(&path, "-wal"), sidecar(&path, "-shm")] {
            assert!(file.exists(), "{}", file.display());
            assert_eq!(mode(&file), 0o600, "{}", file.display());
        }
        drop(store);

        // An existing folder and files found looser are tightened.
        let old = root.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        let old_db = old.join("hub.sqlite");
        plaintext_database(&old_db);
        std::fs::set_permissions(&old_db, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Store::open(&old_db, &test_key()).unwrap());
        assert_eq!(mode(&old), 0o700);
        assert_eq!(mode(&old_db), 0o600);
    }

    #[test]
    fn a_data_folder_on_a_network_share_is_refused_with_a_clear_message() {
        let err = StoreError::NetworkShare {
            path: "/mnt/ward".to_owned(),
            kind: linux_network_fs(0x6969).unwrap().to_owned(),
        };
        assert_eq!(err.code(), "data_folder_on_network_share");
        assert!(err.to_string().contains("network share (NFS)"), "{err}");
    }

    #[test]
    fn key_round_trips_through_its_written_form_and_debug_redacts_it() {
        let key = DatabaseKey::generate().unwrap();
        let hex = key.expose_hex();
        assert_eq!(hex.len(), DatabaseKey::HEX_LEN);
        assert_eq!(
            DatabaseKey::from_hex(&format!("  {}\n", hex.as_str())).unwrap(),
            key
        );
        assert_eq!(
            DatabaseKey::from_hex(&hex.to_ascii_uppercase()).unwrap(),
            key
        );
        let printed = format!("{key:?}");
        assert!(!printed.contains(&hex[..8]), "{printed}");
        assert_ne!(DatabaseKey::generate().unwrap(), key, "keys are random");
    }

    #[test]
    fn malformed_keys_are_refused_with_a_reason() {
        for bad in [
            "",
            "abcd",
            &"g".repeat(64),
            &"a".repeat(65),
            &"é".repeat(32),
        ] {
            let err = DatabaseKey::from_hex(bad).unwrap_err();
            assert_eq!(err.code(), "invalid_database_key", "{bad:?}");
            assert!(err.to_string().contains("database key"), "{err}");
        }
    }

    #[test]
    fn linux_network_file_systems_are_recognised_by_magic_number() {
        assert_eq!(linux_network_fs(0x6969), Some("NFS"));
        assert!(linux_network_fs(0xFF53_4D42).is_some_and(|k| k.contains("CIFS")));
        // The same CIFS magic as a signed 32-bit f_type.
        assert!(linux_network_fs(i64::from(0xFF53_4D42_u32 as i32)).is_some());
        assert!(linux_network_fs(0xFE53_4D42).is_some_and(|k| k.contains("SMB2")));
        assert!(linux_network_fs(0x517B).is_some_and(|k| k.contains("SMB")));
        assert!(linux_network_fs(0x6573_5546).is_some_and(|k| k.contains("sshfs")));
        // ext4, btrfs, xfs, tmpfs, overlayfs: local.
        for local in [0xEF53, 0x9123_683E, 0x5846_5342, 0x0102_1994, 0x794C_7630] {
            assert_eq!(linux_network_fs(local), None, "{local:#x}");
        }
    }

    #[test]
    fn macos_network_file_systems_are_recognised_by_name() {
        assert!(macos_network_fs("smbfs").is_some());
        assert!(macos_network_fs("nfs").is_some());
        assert!(macos_network_fs("macfuse").is_some());
        assert_eq!(macos_network_fs("apfs"), None);
        assert_eq!(macos_network_fs("hfs"), None);
    }

    #[test]
    fn unc_paths_are_network_shares_and_drive_paths_are_not() {
        for share in [
            r"\\fileserver\ward\Inpatient Hub",
            r"\\?\UNC\fileserver\ward\data",
            r"\\?\unc\fileserver\ward\data",
            "//fileserver/ward/data",
        ] {
            assert!(is_unc_network_path(share), "{share}");
        }
        for local in [
            r"C:\Users\nurse\AppData\Local\NHS\Inpatient Hub\data",
            r"\\?\C:\Users\nurse\AppData\Local",
            r"\\.\PhysicalDrive0",
            r"D:\data",
            r"\\",
        ] {
            assert!(!is_unc_network_path(local), "{local}");
        }
    }

    #[test]
    fn a_real_local_folder_is_classified_local() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(classify_folder(dir.path()).unwrap(), FolderLocation::Local);
        prepare_folder(&dir.path().join("nested").join("data")).unwrap();
    }

    #[test]
    fn file_state_tells_new_plaintext_and_encrypted_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite");
        assert_eq!(database_file_state(&path).unwrap(), DatabaseFile::New);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(database_file_state(&path).unwrap(), DatabaseFile::New);
        std::fs::write(sidecar(&path, "-wal"), b"rows not yet checkpointed").unwrap();
        assert_eq!(database_file_state(&path).unwrap(), DatabaseFile::Encrypted);
        std::fs::remove_file(sidecar(&path, "-wal")).unwrap();
        let plain = Connection::open(&path).unwrap();
        plain.execute_batch("CREATE TABLE t (x)").unwrap();
        drop(plain);
        assert_eq!(database_file_state(&path).unwrap(), DatabaseFile::Plaintext);
    }
}
