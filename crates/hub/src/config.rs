//! Where things live: the data directory and the SystmOne client's address.
//! Shared by the app and `hubctl` so both always open the same database.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const DATA_DIR_ENV: &str = "INPATIENT_HUB_DATA_DIR";
pub const SYSTMONE_ENV: &str = "INPATIENT_HUB_SYSTMONE";
pub const DEFAULT_SYSTMONE_ADDR: &str = "127.0.0.1:40700";
pub const DATABASE_FILE: &str = "inpatient-hub.sqlite";
/// Demo mode's own folder inside the default data directory: never the ward's folder.
pub const DEMO_SUBDIR: &str = "demo";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no data directory could be found for this user; pass --data-dir or set {DATA_DIR_ENV}"
    )]
    NoDataDir,
    #[error("'{0}' is not a SystmOne address (expected HOST:PORT, e.g. 127.0.0.1:40700)")]
    BadAddress(String),
    #[error("the ward database is still in the roaming profile ({old}), which Windows copies to file servers; Inpatient Hub now keeps it in local app data ({new}). IT: close Inpatient Hub and move the folder's contents there, or pass --data-dir")]
    RoamingDataLeftBehind { old: String, new: String },
}

/// The data directory: `--data-dir`, else `INPATIENT_HUB_DATA_DIR`, else the OS convention
/// for data that stays on this PC (`%LOCALAPPDATA%\NHS\Inpatient Hub\data` on Windows —
/// local, not roaming, so patient data is never copied to file servers —
/// `~/.local/share/inpatienthub` on Linux, `~/Library/Application Support/uk.nhs.InpatientHub`
/// on macOS). In demo mode the default is its `demo` subfolder: demo mode never opens the
/// ward's folder unless told to (and then the database's demo/live mark refuses it).
pub fn resolve_data_dir(flag: Option<PathBuf>, demo: bool) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let dirs = directories::ProjectDirs::from("uk", "NHS", "Inpatient Hub")
        .ok_or(ConfigError::NoDataDir)?;
    let ward = dirs.data_local_dir().to_path_buf();
    if demo {
        return Ok(demo_data_dir(&ward));
    }
    refuse_roaming_leftover(dirs.data_dir(), &ward)?;
    Ok(ward)
}

/// Demo mode's default folder, inside the ward's default one.
pub fn demo_data_dir(ward_default: &std::path::Path) -> PathBuf {
    ward_default.join(DEMO_SUBDIR)
}

/// Earlier versions kept the database in the roaming profile on Windows (elsewhere the two
/// folders are the same). Starting afresh in the local folder would show an empty board
/// while the ward's data sat in the old place, so that is refused with what IT should do.
fn refuse_roaming_leftover(
    roaming: &std::path::Path,
    local: &std::path::Path,
) -> Result<(), ConfigError> {
    if roaming != local && database_path(roaming).exists() && !database_path(local).exists() {
        return Err(ConfigError::RoamingDataLeftBehind {
            old: roaming.display().to_string(),
            new: local.display().to_string(),
        });
    }
    Ok(())
}

pub fn database_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join(DATABASE_FILE)
}

/// Parses `HOST:PORT` for the SystmOne client; `localhost` is accepted.
pub fn parse_systmone_addr(raw: &str) -> Result<SocketAddr, ConfigError> {
    use std::net::ToSocketAddrs;
    raw.trim()
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| {
            addrs
                .find(|a| a.is_ipv4())
                .or_else(|| raw.trim().to_socket_addrs().ok()?.next())
        })
        .ok_or_else(|| ConfigError::BadAddress(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_over_environment() {
        let dir = resolve_data_dir(Some(PathBuf::from("/tmp/x")), false).unwrap();
        assert_eq!(dir, PathBuf::from("/tmp/x"));
        let dir = resolve_data_dir(Some(PathBuf::from("/tmp/x")), true).unwrap();
        assert_eq!(
            dir,
            PathBuf::from("/tmp/x"),
            "an explicit folder is honoured in demo mode"
        );
    }

    #[test]
    fn demo_mode_without_a_folder_uses_its_own_demo_folder_never_the_wards() {
        let ward = PathBuf::from("/home/nurse/.local/share/inpatienthub");
        let demo = demo_data_dir(&ward);
        assert_ne!(demo, ward);
        assert_ne!(database_path(&demo), database_path(&ward));
        assert_eq!(demo, ward.join("demo"));
        // When neither the flag nor the variable names a folder, the same split holds.
        if std::env::var_os(DATA_DIR_ENV).is_none() {
            if let (Ok(live), Ok(demo)) =
                (resolve_data_dir(None, false), resolve_data_dir(None, true))
            {
                assert_eq!(demo, live.join(DEMO_SUBDIR));
            }
        }
    }

    #[test]
    fn a_database_left_in_the_roaming_profile_is_not_silently_abandoned() {
        let roaming = tempfile::tempdir().unwrap();
        let local = tempfile::tempdir().unwrap();
        refuse_roaming_leftover(roaming.path(), local.path()).unwrap();
        std::fs::write(database_path(roaming.path()), b"old").unwrap();
        let err = refuse_roaming_leftover(roaming.path(), local.path()).unwrap_err();
        assert!(err.to_string().contains("roaming"), "{err}");
        // Once moved (or when both are the same folder, as on Linux and macOS), all is well.
        std::fs::write(database_path(local.path()), b"moved").unwrap();
        refuse_roaming_leftover(roaming.path(), local.path()).unwrap();
        refuse_roaming_leftover(roaming.path(), roaming.path()).unwrap();
    }

    #[test]
    fn parses_addresses() {
        assert_eq!(
            parse_systmone_addr("127.0.0.1:40700").unwrap().port(),
            40700
        );
        assert_eq!(parse_systmone_addr("localhost:1234").unwrap().port(), 1234);
        assert!(parse_systmone_addr("nonsense").is_err());
        assert!(parse_systmone_addr("127.0.0.1:99999").is_err());
    }
}
