//! Ward settings: the one list of what a ward can configure, with each setting's name (as the
//! window, `hubctl settings` and the audit log spell it), its label, hint and kind. The window
//! renders its form from [`WardSetting::views`]; nothing else repeats the names.
//!
//! Who may change them: a change that only makes the ward safer (co-signature required, API
//! filing switched off, a shorter idle lock) is open to anyone identified; any other change
//! needs a verified SystmOne role with `Permission::ChangeWardSettings` (see `identity`).
//! There is no "your role" setting: roles come from SystmOne through the role map (an old
//! `current_user_role` value in a database is ignored).

use super::{Hub, HubError, HubResult, InField, Permission};
use domain::StaffName;
use serde::{Deserialize, Serialize};
use store::SettingKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WardSetting {
    /// A student's or healthcare assistant's note needs a registered clinician's co-signature.
    RequireCosignature,
    /// API filing is switched off: approved notes go to the clipboard only.
    SystmoneApiDisabled,
    /// Minutes without input before the window hides patient data behind a lock screen.
    IdleLockMinutes,
    /// Who a ward task sent to SystmOne with nobody assigned goes to.
    TaskDefaultAssignee,
    /// Keep an approved note's text on the clipboard after its paste is confirmed (default
    /// off: the app clears the clipboard if it still holds that text).
    KeepClipboardAfterPaste,
}

/// How a setting is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingKind {
    /// On or off ("true"/"false").
    Flag,
    /// Free text, validated per setting.
    Text,
    /// A whole number of minutes within the setting's bounds.
    Minutes,
}

/// The idle lock when the ward has not set one.
pub const IDLE_LOCK_DEFAULT_MINUTES: u32 = 10;
/// The idle lock cannot be switched off: patient data must not stay open on an unattended
/// ward PC. 1 minute is the shortest a ward can choose, 30 the longest.
pub const IDLE_LOCK_MIN_MINUTES: u32 = 1;
pub const IDLE_LOCK_MAX_MINUTES: u32 = 30;

/// A setting as the window and `hubctl settings show` present it.
#[derive(Debug, Clone, Serialize)]
pub struct WardSettingView {
    pub setting: WardSetting,
    pub label: &'static str,
    pub hint: &'static str,
    pub kind: SettingKind,
    pub value: Option<String>,
}

impl WardSetting {
    pub const ALL: [WardSetting; 5] = [
        WardSetting::RequireCosignature,
        WardSetting::SystmoneApiDisabled,
        WardSetting::TaskDefaultAssignee,
        WardSetting::IdleLockMinutes,
        WardSetting::KeepClipboardAfterPaste,
    ];

    /// The name staff and scripts use (`hubctl settings set NAME VALUE`).
    pub fn name(self) -> &'static str {
        match self {
            WardSetting::RequireCosignature => "require-cosignature",
            WardSetting::SystmoneApiDisabled => "systmone-api-disabled",
            WardSetting::IdleLockMinutes => "idle-lock-minutes",
            WardSetting::TaskDefaultAssignee => "task-default-assignee",
            WardSetting::KeepClipboardAfterPaste => "keep-clipboard-after-paste",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            WardSetting::RequireCosignature => {
                "Notes by students and healthcare assistants need a co-signature"
            }
            WardSetting::SystmoneApiDisabled => {
                "SystmOne API switched off (approved notes go to the clipboard)"
            }
            WardSetting::IdleLockMinutes => "Lock the window after this many idle minutes",
            WardSetting::TaskDefaultAssignee => "Default SystmOne assignee for ward tasks",
            WardSetting::KeepClipboardAfterPaste => {
                "Keep a pasted note on the clipboard after the paste is confirmed"
            }
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            WardSetting::RequireCosignature => "A registered clinician co-signs before the note is filed.",
            WardSetting::SystmoneApiDisabled => "Use while SystmOne's integration is unavailable or not approved on this PC.",
            WardSetting::IdleLockMinutes => "Patient data is hidden until whoever is at the PC checks in again. 1 to 30 minutes; empty means 10. The lock cannot be switched off.",
            WardSetting::TaskDefaultAssignee => "SystmOne refuses unassigned tasks: team:NAME, group:NAME or user:NAME, with SystmOne's own names. Leave empty to clear.",
            WardSetting::KeepClipboardAfterPaste => "Off: once you confirm a paste, the app clears the clipboard if it still holds that note (patient text is not left for the next paste). Something you copied since is never cleared.",
        }
    }

    pub fn kind(self) -> SettingKind {
        match self {
            WardSetting::RequireCosignature
            | WardSetting::SystmoneApiDisabled
            | WardSetting::KeepClipboardAfterPaste => SettingKind::Flag,
            WardSetting::TaskDefaultAssignee => SettingKind::Text,
            WardSetting::IdleLockMinutes => SettingKind::Minutes,
        }
    }

    fn key(self) -> SettingKey {
        match self {
            WardSetting::RequireCosignature => SettingKey::RequireCosignature,
            WardSetting::SystmoneApiDisabled => SettingKey::SystmOneApiDisabled,
            WardSetting::IdleLockMinutes => SettingKey::IdleLockMinutes,
            WardSetting::TaskDefaultAssignee => SettingKey::TaskDefaultAssignee,
            WardSetting::KeepClipboardAfterPaste => SettingKey::KeepClipboardAfterPaste,
        }
    }

    /// The value to store, validated; `None` clears.
    fn normalise(self, value: Option<&str>) -> HubResult<Option<String>> {
        let Some(value) = value.map(str::trim) else {
            return Ok(None);
        };
        match self.kind() {
            SettingKind::Flag => match value.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(Some("true".to_owned())),
                "false" | "no" | "off" | "0" => Ok(Some("false".to_owned())),
                other => Err(HubError::BadRequest(format!(
                    "'{other}' is not true or false"
                ))),
            },
            SettingKind::Minutes if value.is_empty() => Ok(None),
            SettingKind::Minutes => match value.parse::<u32>() {
                Ok(m) if (IDLE_LOCK_MIN_MINUTES..=IDLE_LOCK_MAX_MINUTES).contains(&m) => {
                    Ok(Some(m.to_string()))
                }
                _ => Err(HubError::BadRequest(format!(
                    "'{value}' is not a number of minutes from {IDLE_LOCK_MIN_MINUTES} to {IDLE_LOCK_MAX_MINUTES} (the lock cannot be switched off)"
                ))),
            },
            SettingKind::Text if value.is_empty() => Ok(None),
            SettingKind::Text => match self {
                WardSetting::TaskDefaultAssignee => {
                    let valid = value.split_once(':').is_some_and(|(kind, name)| {
                        matches!(kind.trim(), "user" | "group" | "team") && !name.trim().is_empty()
                    });
                    if valid {
                        // The name goes to SystmOne on every unassigned task: held to what a
                        // typed staff name may hold (no control, invisible or direction-
                        // changing characters), so the XML writer can never refuse it later.
                        if let Some((_, name)) = value.split_once(':') {
                            StaffName::parse(name)?;
                        }
                        Ok(Some(value.to_owned()))
                    } else {
                        Err(HubError::BadRequest(
                            "use team:NAME, group:NAME or user:NAME (SystmOne's names)".into(),
                        ))
                    }
                }
                _ => Ok(Some(StaffName::parse(value)?.to_string())),
            },
        }
    }

    /// Whether going from `current` to `new` (both normalised) only makes the ward safer, so
    /// that anyone identified may do it without a verified role.
    fn only_tightens(self, current: Option<&str>, new: Option<&str>) -> bool {
        match self {
            WardSetting::RequireCosignature | WardSetting::SystmoneApiDisabled => {
                new == Some("true")
            }
            // Clearing the clipboard (the default) is the safer way.
            WardSetting::KeepClipboardAfterPaste => new != Some("true"),
            WardSetting::IdleLockMinutes => {
                let minutes = |v: Option<&str>| {
                    v.and_then(|v| v.parse::<u32>().ok())
                        .unwrap_or(IDLE_LOCK_DEFAULT_MINUTES)
                };
                minutes(new) <= minutes(current)
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for WardSetting {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WardSetting::ALL
            .into_iter()
            .find(|w| w.name() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = WardSetting::ALL.iter().map(|w| w.name()).collect();
                format!(
                    "'{}' is not a ward setting; use {}",
                    s.trim(),
                    names.join(", ")
                )
            })
    }
}

impl std::fmt::Display for WardSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Hub {
    /// Sets (or with `None` clears) a ward setting; audited, since settings change clinical
    /// behaviour. A change that is not only tightening needs a verified role that may change
    /// ward settings (module doc).
    pub fn set_ward_setting(&self, setting: WardSetting, value: Option<&str>) -> HubResult<()> {
        let acting = self.acting();
        let actor = acting.actor()?;
        let value = setting.normalise(value).in_field("value")?;
        let current = self.store().setting(setting.key())?;
        if !setting.only_tightens(current.as_deref(), value.as_deref()) {
            acting.require(Permission::ChangeWardSettings)?;
        }
        if setting == WardSetting::SystmoneApiDisabled {
            if let Some(client) = self.systmone_client() {
                client.set_enabled(value.as_deref() != Some("true"));
            }
        }
        Ok(self
            .store()
            .set_setting(actor.as_str(), setting.key(), value.as_deref())?)
    }

    /// How long the window may sit idle before it locks (the ward's setting, else the default;
    /// a stored value out of bounds — edited outside the app — is clamped, never "off").
    pub fn idle_lock_minutes(&self) -> HubResult<u32> {
        let stored = self.store().setting(SettingKey::IdleLockMinutes)?;
        Ok(stored
            .and_then(|v| v.trim().parse::<u32>().ok())
            .map_or(IDLE_LOCK_DEFAULT_MINUTES, |m| {
                m.clamp(IDLE_LOCK_MIN_MINUTES, IDLE_LOCK_MAX_MINUTES)
            }))
    }

    /// The text to clear from the clipboard once the paste of note `id` is confirmed: the
    /// text the app put there for it, unless the ward keeps the clipboard. The caller clears
    /// the clipboard only if it still holds exactly this ([`clipboard_still_holds`]), so
    /// something the user copied since is never wiped.
    pub fn clipboard_to_clear_after_paste(&self, id: domain::NoteId) -> HubResult<Option<String>> {
        let keep = self.store().setting(SettingKey::KeepClipboardAfterPaste)?;
        if keep.as_deref() == Some("true") {
            return Ok(None);
        }
        self.note_clipboard_text(id).map(Some)
    }

    /// Every ward setting with its current value, in the order the window shows them.
    pub fn ward_settings(&self) -> HubResult<Vec<WardSettingView>> {
        let store = self.store();
        WardSetting::ALL
            .into_iter()
            .map(|setting| {
                Ok(WardSettingView {
                    setting,
                    label: setting.label(),
                    hint: setting.hint(),
                    kind: setting.kind(),
                    value: store.setting(setting.key())?,
                })
            })
            .collect()
    }
}

/// Whether the clipboard still holds the text the app copied for a paste. Line ends are
/// compared loosely (the OS clipboard may hand text back with `\r\n`, or with a trailing
/// line end), anything else exactly.
pub fn clipboard_still_holds(clipboard: &str, copied: &str) -> bool {
    let normalise = |t: &str| t.replace("\r\n", "\n").trim_end_matches('\n').to_owned();
    !copied.is_empty() && normalise(clipboard) == normalise(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for s in WardSetting::ALL {
            assert_eq!(s.name().parse::<WardSetting>(), Ok(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.name())
            );
        }
        let err = "colour".parse::<WardSetting>().unwrap_err();
        assert!(err.contains("require-cosignature"), "{err}");
    }

    #[test]
    fn values_are_validated_per_setting() {
        let flag = WardSetting::RequireCosignature;
        assert_eq!(
            flag.normalise(Some(" Yes ")).unwrap().as_deref(),
            Some("true")
        );
        assert_eq!(
            flag.normalise(Some("off")).unwrap().as_deref(),
            Some("false")
        );
        assert!(flag.normalise(Some("maybe")).is_err());
        let assignee = WardSetting::TaskDefaultAssignee;
        assert_eq!(
            assignee.normalise(Some("team:Ward 7")).unwrap().as_deref(),
            Some("team:Ward 7")
        );
        assert!(assignee.normalise(Some("Ward 7")).is_err());
        let err = assignee.normalise(Some("team:Ward\u{202E}7")).unwrap_err();
        assert!(err.to_string().contains("U+202E"), "{err}");
        assert_eq!(assignee.normalise(Some("  ")).unwrap(), None);
        let idle = WardSetting::IdleLockMinutes;
        assert_eq!(idle.normalise(Some(" 5 ")).unwrap().as_deref(), Some("5"));
        assert_eq!(idle.normalise(Some("")).unwrap(), None);
        for refused in ["0", "31", "-1", "ten", "2.5"] {
            let err = idle.normalise(Some(refused)).unwrap_err();
            assert!(err.to_string().contains("cannot be switched off"), "{err}");
        }
    }

    fn hub() -> Hub {
        Hub::from_store(
            store::Store::open_in_memory().unwrap(),
            std::path::PathBuf::from("/nonexistent"),
        )
        .with_role_map(crate::RoleMap::built_in())
    }

    fn as_user(hub: &Hub, role: &str) {
        hub.assume_systmone_user_for_tests(Some(crate::SystmOneUserView {
            name: format!("Demo {role}"),
            user_name: None,
            role: Some(role.into()),
        }));
    }

    #[test]
    fn loosening_a_ward_setting_needs_a_verified_role_that_allows_it() {
        let hub = hub();
        // Offline: making the ward safer is allowed, loosening is not.
        hub.set_ward_setting(WardSetting::RequireCosignature, Some("yes"))
            .unwrap();
        hub.set_ward_setting(WardSetting::IdleLockMinutes, Some("5"))
            .unwrap();
        let err = hub
            .set_ward_setting(WardSetting::RequireCosignature, Some("no"))
            .unwrap_err();
        assert_eq!(err.code(), "not_permitted");
        assert!(err.to_string().contains("not connected"), "{err}");
        assert!(hub
            .set_ward_setting(WardSetting::IdleLockMinutes, Some("20"))
            .is_err());
        assert!(hub
            .set_ward_setting(WardSetting::TaskDefaultAssignee, Some("team:Ward 7"))
            .is_err());
        // A student (verified) may not either; a ward manager may.
        as_user(&hub, "Student Nurse");
        let err = hub
            .set_ward_setting(WardSetting::RequireCosignature, Some("no"))
            .unwrap_err();
        assert!(err.to_string().contains("'Student Nurse'"), "{err}");
        as_user(&hub, "Ward Manager");
        hub.set_ward_setting(WardSetting::RequireCosignature, Some("no"))
            .unwrap();
        hub.set_ward_setting(WardSetting::IdleLockMinutes, Some("20"))
            .unwrap();
        assert_eq!(hub.idle_lock_minutes().unwrap(), 20);
    }

    #[test]
    fn an_old_role_setting_in_the_database_is_ignored() {
        let hub = hub();
        hub.store()
            .set_setting(
                "Old Ward",
                SettingKey::CurrentUserRole,
                Some("Registered Nurse"),
            )
            .unwrap();
        assert!(hub
            .ward_settings()
            .unwrap()
            .iter()
            .all(|v| v.setting.name() != "current-user-role"));
        assert_eq!(hub.current_role(), domain::Role::Unknown);
        assert!(hub.require(Permission::Cosign).is_err());
        assert_eq!(hub.idle_lock_minutes().unwrap(), IDLE_LOCK_DEFAULT_MINUTES);
    }
}
