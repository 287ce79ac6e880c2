//! Who is acting, and what their role lets them do. Nothing here is typed by the person acting.
//!
//! **Who acts** is the OS account the process runs under (always; unix: the passwd entry of
//! the process's uid, Windows: `DOMAIN\user` from `GetUserNameW` and the logon domain) and,
//! when SystmOne is connected, the SystmOne logged-on user (`GetOrganisationMetaData`). Both go
//! on every audit row ([`store::Store::set_acting_identity`]); the audit `actor` is the SystmOne
//! user's name when connected, else the OS account. A name typed in Settings is only a display
//! label. No OS account → nothing can be written (an action nobody can be held to is refused).
//!
//! **Roles** come from the SystmOne user's role through a [`RoleMap`]: a built-in map of the
//! role names SystmOne commonly reports, which an administrator can extend or replace with a
//! system-wide file ([`admin_role_map_path`]) that only administrators can write. The path is
//! fixed per OS: no environment variable or window setting can point elsewhere. An unmapped
//! role gets the least privilege ([`Profile::None`]) and a message naming the role.
//!
//! **Offline policy** (no SystmOne user, so no verified role — also an unmapped role or a
//! SystmOne user with no role reported):
//! - drafting notes, the board, tasks, templates and the clipboard route work, audited under
//!   the OS account;
//! - approving a note works only by the clipboard route: the clinician pastes it into SystmOne
//!   under their own SystmOne login, which attributes it there. The approval is recorded with
//!   the role `unknown`, so on a ward that requires co-signature it waits for a verified
//!   co-signature before anything is filed (and only then may the API file it). An approval
//!   for the API route is refused, saying why and what to do;
//! - co-signing and confirming a discharge need a verified role with that permission;
//! - ward settings: a change that only makes the ward safer (co-signature required, API filing
//!   switched off, a shorter idle lock) is allowed to anyone identified; any other change needs
//!   a verified role with [`Permission::ChangeWardSettings`].
//!
//! Every refusal says why and what to do ([`IdentityError`]).

use domain::{Role, StaffName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why an action cannot be attributed or is not allowed. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("Inpatient Hub cannot tell which computer account is running it ({0}), so it cannot record who made this change; nothing was changed. Log in to the computer with your own account and try again.")]
    NoOsAccount(String),
    #[error("{action} needs a verified role, and {why}. {what_to_do}")]
    NotPermitted {
        action: &'static str,
        why: String,
        what_to_do: &'static str,
    },
    #[error("the role map {path} was not used: {problem}")]
    RoleMapRefused { path: String, problem: String },
}

impl IdentityError {
    pub fn code(&self) -> &'static str {
        match self {
            IdentityError::NoOsAccount(_) => "unattributed",
            IdentityError::NotPermitted { .. } => "not_permitted",
            IdentityError::RoleMapRefused { .. } => "role_map_refused",
        }
    }
}

/// What a role may do beyond drafting and the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Approve a note for filing (a student's or HCA's approval may still need co-signature).
    ApproveNotes,
    /// Co-sign a note approved by someone else.
    Cosign,
    ConfirmDischarge,
    ChangeWardSettings,
}

impl Permission {
    /// As a refusal names the action.
    pub fn action(self) -> &'static str {
        match self {
            Permission::ApproveNotes => "Approving a note",
            Permission::Cosign => "Co-signing a note",
            Permission::ConfirmDischarge => "Confirming a discharge",
            Permission::ChangeWardSettings => "Changing this ward setting",
        }
    }
}

/// What a SystmOne role maps to: a clinical class (for co-signature rules) and permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    /// Consultants, ward managers, sisters, charge nurses, matrons: everything, including ward
    /// settings.
    Senior,
    /// Registered nurses and doctors: approve, co-sign, confirm discharges.
    Registered,
    /// Student nurses and medical students: approve (co-signed when the ward requires it).
    Student,
    /// Healthcare and nursing assistants: approve (co-signed when the ward requires it).
    Hca,
    /// Administrators and ward clerks: the board and drafting only; no clinical sign-off.
    Admin,
    /// An unmapped role, or none: the least privilege.
    None,
}

impl Profile {
    pub const ALL: [Profile; 6] = [
        Profile::Senior,
        Profile::Registered,
        Profile::Student,
        Profile::Hca,
        Profile::Admin,
        Profile::None,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Senior => "senior",
            Profile::Registered => "registered",
            Profile::Student => "student",
            Profile::Hca => "hca",
            Profile::Admin => "admin",
            Profile::None => "none",
        }
    }

    /// The clinical class the note rules use (`Role::needs_cosignature`).
    pub fn clinical_role(self) -> Role {
        match self {
            Profile::Senior | Profile::Registered => Role::Registered,
            Profile::Student => Role::Student,
            Profile::Hca => Role::Hca,
            Profile::Admin | Profile::None => Role::Unknown,
        }
    }

    pub fn permits(self, permission: Permission) -> bool {
        use Permission as P;
        match self {
            Profile::Senior => true,
            Profile::Registered => matches!(
                permission,
                P::ApproveNotes | P::Cosign | P::ConfirmDischarge
            ),
            Profile::Student | Profile::Hca => permission == P::ApproveNotes,
            Profile::Admin | Profile::None => false,
        }
    }

    pub fn permissions(self) -> Vec<Permission> {
        [
            Permission::ApproveNotes,
            Permission::Cosign,
            Permission::ConfirmDischarge,
            Permission::ChangeWardSettings,
        ]
        .into_iter()
        .filter(|p| self.permits(*p))
        .collect()
    }
}

/// The role names SystmOne commonly reports, as shipped. An administrator's file adds to (or,
/// with `include_built_in = false`, replaces) these.
const BUILT_IN_ROLES: &[(&str, Profile)] = &[
    // Doctors.
    ("Consultant", Profile::Senior),
    ("Consultant Physician", Profile::Senior),
    ("Consultant Psychiatrist", Profile::Senior),
    ("Consultant Surgeon", Profile::Senior),
    ("Consultant Geriatrician", Profile::Senior),
    ("Specialty Registrar", Profile::Registered),
    ("Specialist Registrar", Profile::Registered),
    ("Registrar", Profile::Registered),
    ("Specialty Doctor", Profile::Registered),
    ("Associate Specialist", Profile::Registered),
    ("Senior House Officer", Profile::Registered),
    ("SHO", Profile::Registered),
    ("Core Trainee", Profile::Registered),
    ("Foundation Year 1 Doctor", Profile::Registered),
    ("Foundation Year 2 Doctor", Profile::Registered),
    ("FY1 Doctor", Profile::Registered),
    ("FY2 Doctor", Profile::Registered),
    ("FY1", Profile::Registered),
    ("FY2", Profile::Registered),
    ("Junior Doctor", Profile::Registered),
    ("Doctor", Profile::Registered),
    ("Medical Practitioner", Profile::Registered),
    ("Staff Grade Doctor", Profile::Registered),
    ("Locum Doctor", Profile::Registered),
    ("GP", Profile::Registered),
    ("General Practitioner", Profile::Registered),
    // Nurses.
    ("Ward Manager", Profile::Senior),
    ("Ward Sister", Profile::Senior),
    ("Sister", Profile::Senior),
    ("Charge Nurse", Profile::Senior),
    ("Matron", Profile::Senior),
    ("Nurse Consultant", Profile::Senior),
    ("Registered Nurse", Profile::Registered),
    ("Registered General Nurse", Profile::Registered),
    ("Registered Mental Health Nurse", Profile::Registered),
    ("Staff Nurse", Profile::Registered),
    ("Staff Nurse (Registered)", Profile::Registered),
    ("Nurse (Registered)", Profile::Registered),
    ("Senior Staff Nurse", Profile::Registered),
    ("Deputy Ward Manager", Profile::Registered),
    ("Advanced Nurse Practitioner", Profile::Registered),
    ("Nurse Practitioner", Profile::Registered),
    ("Clinical Nurse Specialist", Profile::Registered),
    ("Community Psychiatric Nurse", Profile::Registered),
    ("Midwife", Profile::Registered),
    // Students.
    ("Student Nurse", Profile::Student),
    ("Nursing Student", Profile::Student),
    ("Student Midwife", Profile::Student),
    ("Medical Student", Profile::Student),
    ("Trainee Nursing Associate", Profile::Student),
    // Assistants.
    ("Healthcare Assistant", Profile::Hca),
    ("Health Care Assistant", Profile::Hca),
    ("HCA", Profile::Hca),
    ("Nursing Assistant", Profile::Hca),
    ("Clinical Support Worker", Profile::Hca),
    ("Support Worker", Profile::Hca),
    ("Care Assistant", Profile::Hca),
    // Administration.
    ("Administrator", Profile::Admin),
    ("Ward Clerk", Profile::Admin),
    ("Receptionist", Profile::Admin),
    ("Medical Secretary", Profile::Admin),
    ("Admin", Profile::Admin),
];

/// A SystmOne role name as the map compares it: trimmed, runs of whitespace made one space,
/// lower case. ("  Staff   NURSE " and "staff nurse" are the same role.)
pub fn normalise_role_name(raw: &str) -> String {
    raw.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Where the administrator's role map lives. Fixed per OS; release builds read nothing else.
pub fn admin_role_map_path() -> PathBuf {
    #[cfg(windows)]
    {
        // %ProgramData% is a machine-wide folder; its default is C:\ProgramData.
        let base = std::env::var_os("ProgramData")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
        base.join("Inpatient Hub").join("roles.toml")
    }
    #[cfg(target_os = "macos")]
    {
        PathBuf::from("/Library/Application Support/Inpatient Hub/roles.toml")
    }
    #[cfg(not(any(windows, target_os = "macos")))]
    {
        PathBuf::from("/etc/inpatient-hub/roles.toml")
    }
}

/// The administrator's file: `[roles]` maps SystmOne role names to profile names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleMapFile {
    #[serde(default = "keep_built_in")]
    include_built_in: bool,
    #[serde(default)]
    roles: BTreeMap<String, toml::Spanned<String>>,
}

fn keep_built_in() -> bool {
    true
}

/// SystmOne role name (normalised) → profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleMap {
    entries: BTreeMap<String, Profile>,
    /// Where it came from, for the window and the logs.
    source: String,
    /// Why the administrator's file was not used, if it was not.
    problem: Option<String>,
}

/// What a SystmOne role resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleLookup {
    Mapped(Profile),
    /// Not in the map: least privilege, and the message names the role.
    Unmapped,
}

impl RoleMap {
    pub fn built_in() -> RoleMap {
        RoleMap {
            entries: BUILT_IN_ROLES
                .iter()
                .map(|(name, profile)| (normalise_role_name(name), *profile))
                .collect(),
            source: "the built-in role map".into(),
            problem: None,
        }
    }

    /// Parses an administrator's file. Errors name the line.
    pub fn parse(text: &str, source: &str) -> Result<RoleMap, String> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let file: RoleMapFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| format!("line {}: ", line_of(s.start)));
            format!("{}{}", line.unwrap_or_default(), e.message())
        })?;
        let mut map = if file.include_built_in {
            RoleMap::built_in()
        } else {
            RoleMap {
                entries: BTreeMap::new(),
                source: String::new(),
                problem: None,
            }
        };
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (name, profile) in &file.roles {
            let line = line_of(profile.span().start);
            let key = normalise_role_name(name);
            if key.is_empty() {
                return Err(format!("line {line}: a role name is empty"));
            }
            if let Some(first) = seen.insert(key.clone(), line) {
                return Err(format!(
                    "line {line}: the role '{name}' is already mapped on line {first} (names are compared ignoring case and spacing)"
                ));
            }
            let wanted = profile.get_ref().trim();
            let profile = Profile::ALL
                .into_iter()
                .find(|p| p.name().eq_ignore_ascii_case(wanted))
                .ok_or_else(|| {
                    let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
                    format!(
                        "line {line}: '{wanted}' is not a profile; use one of {}",
                        names.join(", ")
                    )
                })?;
            map.entries.insert(key, profile);
        }
        map.source = source.to_owned();
        Ok(map)
    }

    /// The administrator's file at `path` if there is one and it is safe to trust; else the
    /// built-in map, with [`RoleMap::problem`] saying why the file was not used.
    pub fn load(path: &Path) -> RoleMap {
        match Self::load_strict(path) {
            Ok(Some(map)) => map,
            Ok(None) => RoleMap::built_in(),
            Err(e) => {
                tracing::warn!("{e}; using the built-in role map");
                RoleMap {
                    problem: Some(e.to_string()),
                    ..RoleMap::built_in()
                }
            }
        }
    }

    /// `Ok(None)`: there is no file. Refuses a file that others than administrators could
    /// have written, or that does not parse.
    pub fn load_strict(path: &Path) -> Result<Option<RoleMap>, IdentityError> {
        let refused = |problem: String| IdentityError::RoleMapRefused {
            path: path.display().to_string(),
            problem,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(refused(format!("it could not be read ({e})"))),
        };
        only_administrators_can_write(path).map_err(refused)?;
        RoleMap::parse(&text, &path.display().to_string())
            .map(Some)
            .map_err(refused)
    }

    pub fn lookup(&self, systmone_role: &str) -> RoleLookup {
        match self.entries.get(&normalise_role_name(systmone_role)) {
            Some(profile) => RoleLookup::Mapped(*profile),
            None => RoleLookup::Unmapped,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }
}

/// On unix: the file and its folder must belong to root and be writable by nobody else, or
/// anyone could grant themselves a role. (On Windows the installer sets the folder's ACL; see
/// the README.)
#[cfg(unix)]
fn only_administrators_can_write(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let check = |what: &str, p: &Path| -> Result<(), String> {
        let meta =
            std::fs::metadata(p).map_err(|e| format!("{what} could not be checked ({e})"))?;
        if meta.uid() != 0 {
            return Err(format!(
                "{what} {} is owned by user id {}, not root; only an administrator may own it (sudo chown root:root)",
                p.display(),
                meta.uid()
            ));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!(
                "{what} {} can be changed by other users (mode {:o}); make it writable by root only (sudo chmod go-w)",
                p.display(),
                meta.mode() & 0o777
            ));
        }
        Ok(())
    };
    check("the file", path)?;
    if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
        check("its folder", folder)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn only_administrators_can_write(_path: &Path) -> Result<(), String> {
    Ok(())
}

/// The OS account this process runs as: `DOMAIN\user` on Windows, the user name elsewhere.
/// Read from the OS (passwd entry / `GetUserNameW`), not from `USER`/`USERNAME`.
pub fn os_account() -> Result<String, IdentityError> {
    let user =
        whoami::fallible::username().map_err(|e| IdentityError::NoOsAccount(e.to_string()))?;
    let user = user.trim();
    if user.is_empty() {
        return Err(IdentityError::NoOsAccount(
            "the operating system reported an empty user name".into(),
        ));
    }
    #[cfg(windows)]
    let user = match std::env::var("USERDOMAIN") {
        Ok(domain) if !domain.trim().is_empty() => format!("{}\\{user}", domain.trim()),
        _ => user.to_owned(),
    };
    #[cfg(not(windows))]
    let user = user.to_owned();
    StaffName::parse(&user)
        .map(|s| s.to_string())
        .map_err(|e| IdentityError::NoOsAccount(format!("the account name is unusable: {e}")))
}

/// The SystmOne user as the identity shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SystmOneUserView {
    pub name: String,
    pub user_name: Option<String>,
    pub role: Option<String>,
}

/// Where the acting person's role stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoleStanding {
    /// SystmOne reported a role that the map knows.
    Verified {
        systmone_role: String,
        profile: Profile,
        clinical_role: Role,
        permissions: Vec<Permission>,
    },
    /// SystmOne reported a role the map does not know: least privilege.
    Unmapped { systmone_role: String },
    /// SystmOne is connected but reported no role for its user.
    NotReported,
    /// No SystmOne user (not connected, or not yet asked who is logged in).
    NotConnected,
}

/// Who is acting right now, as the window shows it and the checks use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActingIdentity {
    /// `None` when the OS account could not be determined (then nothing can be written).
    pub os_account: Option<String>,
    pub os_account_problem: Option<String>,
    pub systmone_user: Option<SystmOneUserView>,
    pub role: RoleStanding,
    /// What audit rows name as the actor: the SystmOne user when connected, else the OS account.
    pub actor: Option<String>,
    /// The name typed in Settings, if any: shown, never trusted.
    pub display_label: Option<String>,
    /// Where the role map came from, and why an administrator's file was not used.
    pub role_map_source: String,
    pub role_map_problem: Option<String>,
    /// One sentence for the window: what this person can and cannot do, and why.
    pub summary: String,
}

impl ActingIdentity {
    pub fn resolve(
        os_account: Result<String, IdentityError>,
        systmone_user: Option<SystmOneUserView>,
        map: &RoleMap,
        display_label: Option<String>,
    ) -> ActingIdentity {
        let (os_account, os_account_problem) = match os_account {
            Ok(a) => (Some(a), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let role = match systmone_user.as_ref() {
            None => RoleStanding::NotConnected,
            Some(user) => match user.role.as_deref().map(str::trim) {
                None | Some("") => RoleStanding::NotReported,
                Some(role) => match map.lookup(role) {
                    RoleLookup::Mapped(profile) => RoleStanding::Verified {
                        systmone_role: role.to_owned(),
                        profile,
                        clinical_role: profile.clinical_role(),
                        permissions: profile.permissions(),
                    },
                    RoleLookup::Unmapped => RoleStanding::Unmapped {
                        systmone_role: role.to_owned(),
                    },
                },
            },
        };
        // The SystmOne name is only trusted alongside an OS account: without one, nothing is
        // attributable at all.
        let actor = os_account.as_ref().map(|os| {
            systmone_user
                .as_ref()
                .map(|u| u.name.trim())
                .filter(|n| !n.is_empty())
                .unwrap_or(os)
                .to_owned()
        });
        let mut identity = ActingIdentity {
            os_account,
            os_account_problem,
            systmone_user,
            role,
            actor,
            display_label,
            role_map_source: map.source().to_owned(),
            role_map_problem: map.problem().map(str::to_owned),
            summary: String::new(),
        };
        identity.summary = identity.describe();
        identity
    }

    fn describe(&self) -> String {
        if let Some(problem) = &self.os_account_problem {
            return format!("Changes are refused: {problem}");
        }
        match &self.role {
            RoleStanding::Verified {
                systmone_role,
                profile,
                ..
            } => format!(
                "SystmOne role '{systmone_role}' ({}): {}.",
                profile.name(),
                match profile.permissions().as_slice() {
                    [] => "the board and drafting only; no clinical sign-off".to_owned(),
                    perms => format!(
                        "may {}",
                        perms
                            .iter()
                            .map(|p| p.action().to_lowercase())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            ),
            standing => format!(
                "{}. Drafting, the board and copying notes to SystmOne work; an approval goes by the clipboard (you paste it under your own SystmOne login) and co-signing waits for a verified role.",
                unverified_reason(standing)
            ),
        }
    }

    /// The actor for an audit row, or why there is none.
    pub fn actor(&self) -> Result<StaffName, IdentityError> {
        let actor = self.actor.as_deref().ok_or_else(|| {
            IdentityError::NoOsAccount(
                self.os_account_problem
                    .clone()
                    .unwrap_or_else(|| "no account".into()),
            )
        })?;
        StaffName::parse(actor).map_err(|e| IdentityError::NoOsAccount(e.to_string()))
    }

    /// The clinical role when verified and it grants `permission`; else why not.
    pub fn require(&self, permission: Permission) -> Result<Role, IdentityError> {
        self.actor()?;
        match &self.role {
            RoleStanding::Verified {
                systmone_role,
                profile,
                clinical_role,
                ..
            } => {
                if profile.permits(permission) {
                    Ok(*clinical_role)
                } else {
                    Err(IdentityError::NotPermitted {
                        action: permission.action(),
                        why: format!(
                            "your SystmOne role '{systmone_role}' ({}) does not allow it",
                            profile.name()
                        ),
                        what_to_do: "Ask a colleague whose role allows it.",
                    })
                }
            }
            standing => Err(IdentityError::NotPermitted {
                action: permission.action(),
                why: unverified_reason(standing),
                what_to_do: "Log in to SystmOne on this PC and check who is here again, or ask a colleague whose SystmOne role allows it.",
            }),
        }
    }

    /// The role an approval is recorded with, by the offline policy in the module doc.
    pub fn approval_role(&self, route: domain::FilingRoute) -> Result<Role, IdentityError> {
        match self.require(Permission::ApproveNotes) {
            Ok(role) => Ok(role),
            // Verified, but the role may not approve: that does not change with the route.
            Err(e) if matches!(self.role, RoleStanding::Verified { .. }) => Err(e),
            Err(e @ IdentityError::NoOsAccount(_)) => Err(e),
            Err(_) if route == domain::FilingRoute::Clipboard => Ok(Role::Unknown),
            Err(_) => Err(IdentityError::NotPermitted {
                action: "Approving a note for filing through the SystmOne API",
                why: unverified_reason(&self.role),
                what_to_do: "Approve it in the window for the clipboard instead and paste it into SystmOne under your own login, or log in to SystmOne on this PC and check who is here again.",
            }),
        }
    }
}

fn unverified_reason(standing: &RoleStanding) -> String {
    match standing {
        RoleStanding::Verified { .. } => String::new(),
        RoleStanding::Unmapped { systmone_role } => format!(
            "SystmOne reports your role as '{systmone_role}', which is not in this PC's role map, so it has the least privilege (IT can add it to {})",
            admin_role_map_path().display()
        ),
        RoleStanding::NotReported => {
            "SystmOne did not report a role for the logged-on user".to_owned()
        }
        RoleStanding::NotConnected => {
            "SystmOne is not connected, so your role cannot be verified".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::FilingRoute;

    fn user(role: Option<&str>) -> Option<SystmOneUserView> {
        Some(SystmOneUserView {
            name: "Sam Student".into(),
            user_name: Some("sstudent".into()),
            role: role.map(str::to_owned),
        })
    }

    fn identity(role: Option<&str>) -> ActingIdentity {
        ActingIdentity::resolve(Ok("ward-pc".into()), user(role), &RoleMap::built_in(), None)
    }

    #[test]
    fn role_names_match_ignoring_case_and_spacing() {
        let map = RoleMap::built_in();
        for name in ["Staff Nurse", "  staff   NURSE ", "STAFF\tnurse"] {
            assert_eq!(map.lookup(name), RoleLookup::Mapped(Profile::Registered));
        }
        assert_eq!(
            map.lookup("student nurse"),
            RoleLookup::Mapped(Profile::Student)
        );
        assert_eq!(
            map.lookup("Ward  Clerk"),
            RoleLookup::Mapped(Profile::Admin)
        );
        assert_eq!(map.lookup("Astronaut"), RoleLookup::Unmapped);
    }

    #[test]
    fn a_student_cannot_cosign() {
        let student = identity(Some("Student Nurse"));
        let err = student.require(Permission::Cosign).unwrap_err();
        assert_eq!(err.code(), "not_permitted");
        assert!(err.to_string().contains("Student Nurse"), "{err}");
        assert_eq!(
            student.approval_role(FilingRoute::Api).unwrap(),
            Role::Student
        );
        assert_eq!(
            identity(Some("Staff Nurse")).require(Permission::Cosign),
            Ok(Role::Registered)
        );
    }

    #[test]
    fn an_unmapped_role_gets_least_privilege_and_is_named() {
        let who = identity(Some("Chief Astronaut"));
        assert!(matches!(who.role, RoleStanding::Unmapped { .. }));
        for permission in [
            Permission::ApproveNotes,
            Permission::Cosign,
            Permission::ConfirmDischarge,
            Permission::ChangeWardSettings,
        ] {
            let err = who.require(permission).unwrap_err();
            assert!(err.to_string().contains("'Chief Astronaut'"), "{err}");
            assert!(err.to_string().contains("role map"), "{err}");
        }
        assert!(who.approval_role(FilingRoute::Api).is_err());
        assert_eq!(who.approval_role(FilingRoute::Clipboard), Ok(Role::Unknown));
        assert!(who.summary.contains("Chief Astronaut"), "{}", who.summary);
    }

    #[test]
    fn offline_approval_goes_only_by_clipboard_and_waits_for_cosignature() {
        let offline =
            ActingIdentity::resolve(Ok("ward-pc".into()), None, &RoleMap::built_in(), None);
        assert_eq!(offline.actor().unwrap().as_str(), "ward-pc");
        let err = offline.approval_role(FilingRoute::Api).unwrap_err();
        assert!(err.to_string().contains("clipboard"), "{err}");
        // Recorded as unknown: a ward that requires co-signature holds it for a verified one.
        let role = offline.approval_role(FilingRoute::Clipboard).unwrap();
        assert_eq!(role, Role::Unknown);
        assert!(role.needs_cosignature(true));
        assert!(offline.require(Permission::Cosign).is_err());
        assert!(offline.require(Permission::ChangeWardSettings).is_err());
    }

    #[test]
    fn an_admin_role_cannot_approve_by_any_route() {
        let clerk = identity(Some("Ward Clerk"));
        assert!(clerk.approval_role(FilingRoute::Clipboard).is_err());
        assert!(clerk.approval_role(FilingRoute::Api).is_err());
    }

    #[test]
    fn the_actor_is_the_systmone_user_when_connected_else_the_os_account() {
        assert_eq!(
            identity(Some("Staff Nurse")).actor().unwrap().as_str(),
            "Sam Student"
        );
        let no_os = ActingIdentity::resolve(
            Err(IdentityError::NoOsAccount("test".into())),
            user(Some("Consultant")),
            &RoleMap::built_in(),
            Some("Dr Typed".into()),
        );
        assert_eq!(no_os.actor().unwrap_err().code(), "unattributed");
        assert_eq!(
            no_os
                .approval_role(FilingRoute::Clipboard)
                .unwrap_err()
                .code(),
            "unattributed"
        );
    }

    #[test]
    fn a_typed_label_grants_nothing() {
        let labelled = ActingIdentity::resolve(
            Ok("ward-pc".into()),
            None,
            &RoleMap::built_in(),
            Some("Registered Nurse".into()),
        );
        assert_eq!(labelled.actor().unwrap().as_str(), "ward-pc");
        assert!(labelled.require(Permission::Cosign).is_err());
        assert!(labelled.require(Permission::ApproveNotes).is_err());
    }

    #[test]
    fn the_os_account_is_known_here() {
        let account = os_account().unwrap();
        assert!(!account.trim().is_empty());
    }

    #[test]
    fn a_malformed_role_map_names_the_line() {
        let text = "[roles]\n\"Staff Nurse\" = \"registered\"\n\"Bed Manager\" = \"boss\"\n";
        let err = RoleMap::parse(text, "test").unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
        assert!(err.contains("'boss' is not a profile"), "{err}");
        let err = RoleMap::parse("[roles]\n\"A\" = \n", "test").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = RoleMap::parse(
            "[roles]\n\"Nurse X\" = \"hca\"\n\"nurse  x\" = \"hca\"\n",
            "t",
        )
        .unwrap_err();
        assert!(err.contains("already mapped on line 2"), "{err}");
        let err = RoleMap::parse("colour = \"blue\"\n", "t").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }

    #[test]
    fn a_role_map_file_extends_or_replaces_the_built_in_one() {
        let map = RoleMap::parse(
            "[roles]\n\"Bed Manager\" = \"senior\"\n\"HCA\" = \"none\"\n",
            "f",
        )
        .unwrap();
        assert_eq!(
            map.lookup("bed manager"),
            RoleLookup::Mapped(Profile::Senior)
        );
        assert_eq!(map.lookup("hca"), RoleLookup::Mapped(Profile::None));
        assert_eq!(
            map.lookup("Staff Nurse"),
            RoleLookup::Mapped(Profile::Registered)
        );
        let only = RoleMap::parse(
            "include_built_in = false\n[roles]\n\"Bed Manager\" = \"senior\"\n",
            "f",
        )
        .unwrap();
        assert_eq!(only.lookup("Staff Nurse"), RoleLookup::Unmapped);
    }

    #[cfg(unix)]
    #[test]
    fn a_role_map_writable_by_others_is_refused_and_the_built_in_map_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("roles.toml");
        std::fs::write(&path, "[roles]\n\"Student Nurse\" = \"senior\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = RoleMap::load_strict(&path).unwrap_err();
        assert_eq!(err.code(), "role_map_refused");
        let map = RoleMap::load(&path);
        assert_eq!(
            map.lookup("Student Nurse"),
            RoleLookup::Mapped(Profile::Student)
        );
        assert!(map.problem().is_some());

        // Not writable by others, but owned by someone other than root.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let is_root = whoami::fallible::username().is_ok_and(|u| u == "root");
        if is_root {
            std::os::unix::fs::chown(&path, Some(12345), None).unwrap();
        }
        let err = RoleMap::load_strict(&path).unwrap_err().to_string();
        // As root, the temporary folder is root's: the file's owner is what is refused.
        assert!(
            err.contains("not root") || err.contains("owned by"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_role_map_file_means_the_built_in_map() {
        let dir = tempfile::tempdir().unwrap();
        let map = RoleMap::load(&dir.path().join("roles.toml"));
        assert_eq!(map, RoleMap::built_in());
    }

    #[test]
    fn the_simulator_users_map_sensibly() {
        let map = RoleMap::built_in();
        // crates/simulator/src/data.rs: the demo organisation's four users.
        for (role, profile) in [
            ("Consultant Psychiatrist", Profile::Senior),
            ("Staff Nurse (Registered)", Profile::Registered),
            ("Student Nurse", Profile::Student),
            ("Healthcare Assistant", Profile::Hca),
        ] {
            assert_eq!(map.lookup(role), RoleLookup::Mapped(profile), "{role}");
        }
    }
}
