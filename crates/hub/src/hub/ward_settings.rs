//! Ward settings: the one list of what a ward can configure, with each setting's name (as the
//! window, `hubctl settings` and the audit log spell it), its label, hint and kind. The window
//! renders its form from [`WardSetting::views`]; nothing else repeats the names.

use super::{Hub, HubError, HubResult, InField};
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
    /// The role of the current user while SystmOne is not connected.
    CurrentUserRole,
    /// Who a ward task sent to SystmOne with nobody assigned goes to.
    TaskDefaultAssignee,
}

/// How a setting is edited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingKind {
    /// On or off ("true"/"false").
    Flag,
    /// Free text, validated per setting.
    Text,
}

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
    pub const ALL: [WardSetting; 4] = [
        WardSetting::RequireCosignature,
        WardSetting::SystmoneApiDisabled,
        WardSetting::CurrentUserRole,
        WardSetting::TaskDefaultAssignee,
    ];

    /// The name staff and scripts use (`hubctl settings set NAME VALUE`).
    pub fn name(self) -> &'static str {
        match self {
            WardSetting::RequireCosignature => "require-cosignature",
            WardSetting::SystmoneApiDisabled => "systmone-api-disabled",
            WardSetting::CurrentUserRole => "current-user-role",
            WardSetting::TaskDefaultAssignee => "task-default-assignee",
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
            WardSetting::CurrentUserRole => "Your role",
            WardSetting::TaskDefaultAssignee => "Default SystmOne assignee for ward tasks",
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            WardSetting::RequireCosignature => "A registered clinician co-signs before the note is filed.",
            WardSetting::SystmoneApiDisabled => "Use while SystmOne's integration is unavailable or not approved on this PC.",
            WardSetting::CurrentUserRole => "For example Staff Nurse, Student Nurse or Healthcare Assistant. Students and healthcare assistants need a co-signature when the ward asks for one. Leave empty to clear.",
            WardSetting::TaskDefaultAssignee => "SystmOne refuses unassigned tasks: team:NAME, group:NAME or user:NAME, with SystmOne's own names. Leave empty to clear.",
        }
    }

    pub fn kind(self) -> SettingKind {
        match self {
            WardSetting::RequireCosignature | WardSetting::SystmoneApiDisabled => SettingKind::Flag,
            WardSetting::CurrentUserRole | WardSetting::TaskDefaultAssignee => SettingKind::Text,
        }
    }

    fn key(self) -> SettingKey {
        match self {
            WardSetting::RequireCosignature => SettingKey::RequireCosignature,
            WardSetting::SystmoneApiDisabled => SettingKey::SystmOneApiDisabled,
            WardSetting::CurrentUserRole => SettingKey::CurrentUserRole,
            WardSetting::TaskDefaultAssignee => SettingKey::TaskDefaultAssignee,
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
            SettingKind::Text if value.is_empty() => Ok(None),
            SettingKind::Text => match self {
                WardSetting::TaskDefaultAssignee => {
                    let valid = value.split_once(':').is_some_and(|(kind, name)| {
                        matches!(kind.trim(), "user" | "group" | "team") && !name.trim().is_empty()
                    });
                    if valid {
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
    /// behaviour.
    pub fn set_ward_setting(&self, setting: WardSetting, value: Option<&str>) -> HubResult<()> {
        let actor = self.current_user()?;
        let value = setting.normalise(value).in_field("value")?;
        if setting == WardSetting::SystmoneApiDisabled {
            if let Some(client) = self.systmone_client() {
                client.set_enabled(value.as_deref() != Some("true"));
            }
        }
        Ok(self
            .store()
            .set_setting(actor.as_str(), setting.key(), value.as_deref())?)
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
        assert_eq!(assignee.normalise(Some("  ")).unwrap(), None);
        assert_eq!(WardSetting::CurrentUserRole.normalise(None).unwrap(), None);
    }
}
