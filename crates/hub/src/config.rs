//! Where things live: the data directory and the SystmOne client's address.
//! Shared by the app and `hubctl` so both always open the same database.

use std::net::SocketAddr;
use std::path::PathBuf;

pub const DATA_DIR_ENV: &str = "INPATIENT_HUB_DATA_DIR";
pub const SYSTMONE_ENV: &str = "INPATIENT_HUB_SYSTMONE";
pub const DEFAULT_SYSTMONE_ADDR: &str = "127.0.0.1:40700";
pub const DATABASE_FILE: &str = "inpatient-hub.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no data directory could be found for this user; pass --data-dir or set {DATA_DIR_ENV}"
    )]
    NoDataDir,
    #[error("'{0}' is not a SystmOne address (expected HOST:PORT, e.g. 127.0.0.1:40700)")]
    BadAddress(String),
}

/// The data directory: `--data-dir`, else `INPATIENT_HUB_DATA_DIR`, else the OS convention
/// (`%APPDATA%\NHS\Inpatient Hub\data` on Windows, `~/.local/share/inpatienthub` on Linux,
/// `~/Library/Application Support/uk.nhs.InpatientHub` on macOS).
pub fn resolve_data_dir(flag: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = flag {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("uk", "NHS", "Inpatient Hub")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or(ConfigError::NoDataDir)
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
        let dir = resolve_data_dir(Some(PathBuf::from("/tmp/x"))).unwrap();
        assert_eq!(dir, PathBuf::from("/tmp/x"));
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
