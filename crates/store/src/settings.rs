//! Small key/value settings (the current user, the SystmOne DeviceID, ward options).
//! Never secrets: those live in the OS keychain.

use super::{Store, StoreError, StoreResult};
use rusqlite::{params, OptionalExtension};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKey {
    /// A display label typed in Settings. Never an authority: who acts comes from the OS
    /// account and SystmOne (hub `identity`).
    CurrentUser,
    /// The DeviceID SystmOne issued on approval: part of this installation's identity.
    SystmOneDeviceId,
    /// Ward setting: "true" when API filing is switched off (clipboard only).
    SystmOneApiDisabled,
    /// Ward setting: "true" when a student's or HCA's note needs a registered clinician's co-signature.
    RequireCosignature,
    /// Retired: roles come from SystmOne through the administrator's role map. Kept only so
    /// the key stays reserved; nothing reads it, and an old value is ignored.
    CurrentUserRole,
    /// When the SystmOne APIKey was last set or cleared (the key itself lives in the keychain).
    SystmOneApiKeyChangedAt,
    /// Who a ward task sent to SystmOne with nobody assigned goes to: `team:NAME`,
    /// `group:NAME` or `user:NAME` (SystmOne refuses unassigned tasks).
    TaskDefaultAssignee,
    /// The SystmOne behaviour a conformance run observed (JSON, no patient data), applied
    /// with `hubctl conformance --apply`.
    SystmOneObservedProfile,
    /// Ward setting: minutes without input before the window hides patient data behind a
    /// lock screen and re-checks who is there.
    IdleLockMinutes,
    /// Ward setting: "true" keeps an approved note's text on the clipboard after its paste
    /// is confirmed (by default the app clears it, if it still holds that text).
    KeepClipboardAfterPaste,
}

impl SettingKey {
    pub fn as_str(self) -> &'static str {
        match self {
            SettingKey::CurrentUser => "current_user",
            SettingKey::SystmOneDeviceId => "systmone_device_id",
            SettingKey::SystmOneApiDisabled => "systmone_api_disabled",
            SettingKey::RequireCosignature => "require_cosignature",
            SettingKey::CurrentUserRole => "current_user_role",
            SettingKey::SystmOneApiKeyChangedAt => "systmone_api_key_changed_at",
            SettingKey::TaskDefaultAssignee => "task_default_assignee",
            SettingKey::SystmOneObservedProfile => "systmone_observed_profile",
            SettingKey::IdleLockMinutes => "idle_lock_minutes",
            SettingKey::KeepClipboardAfterPaste => "keep_clipboard_after_paste",
        }
    }
}

impl Store {
    pub fn setting(&self, key: SettingKey) -> StoreResult<Option<String>> {
        self.conn
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                [key.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Sets (or with `None` clears) a setting; audited, since settings change clinical behaviour.
    pub fn set_setting(
        &mut self,
        actor: &str,
        key: SettingKey,
        value: Option<&str>,
    ) -> StoreResult<()> {
        self.write(|tx| {
            match value {
                Some(v) => tx.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![key.as_str(), v],
                ),
                None => tx.execute("DELETE FROM settings WHERE key = ?1", [key.as_str()]),
            }
            .map_err(StoreError::Sqlite)?;
            super::audit::record(tx, actor, "setting.changed", "setting", Some(key.as_str()), serde_json::json!({ "value": value }))?;
            Ok(())
        })
    }
}
