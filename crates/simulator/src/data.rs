//! The fictitious organisation and patients, generated deterministically from a seed.
//!
//! Everything here is invented: NHS numbers are in the 999 test range (never issued), the
//! organisation and every user name say "DEMO"/"simulator", so a screenshot of the simulator
//! can never be mistaken for a live record.
//!
//! Fixed patients (the same for every seed, for tests and demos):
//! 1. Siân O'Brien, F, born 1984-03-14, NHS number 999 000 0018
//! 2. Zoë Smith-Jones, F, born 1999-11-02, NHS number 999 000 0026
//! 3. Seán D'Arcy-MacDonald, M, born 1961-07-23, NHS number 999 000 0034
//!
//! Their events and tasks, and all other patients, depend on the seed.

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use systmone_wire::NhsNumber;

/// How many patients a generated world holds (the brief asks for at least 200).
pub const PATIENT_COUNT: usize = 240;

/// Shown as the organisation and in every site name so a demo can never pass for a live record.
pub const ORGANISATION_NAME: &str = "DEMO – Fictitious Hospital (Inpatient Hub simulator)";

/// The software name SystmOne records on events it files itself.
pub const SOFTWARE_NAME: &str = "SystmOne (Inpatient Hub simulator)";

/// TPP's default task types.
pub const TASK_TYPES: [&str; 3] = ["Clinical Review Required", "Clinical Approval", "File"];

/// Status of a task nobody has started.
pub const STATUS_NOT_STARTED: &str = "Not Started";
pub const STATUS_COMPLETED: &str = "Completed";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSite {
    pub name: String,
    pub id: String,
    pub address: SimAddress,
    pub current_site: bool,
    pub primary_site: bool,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimUser {
    pub title: String,
    pub first_name: String,
    pub middle_names: Option<String>,
    pub surname: String,
    pub user_name: String,
    pub role: String,
    pub role_code: String,
    pub national_id: String,
    pub access_rights: Vec<String>,
    pub user_groups: Vec<String>,
    pub teams: Vec<String>,
}

impl SimUser {
    pub fn display_name(&self) -> String {
        format!("{} {} {}", self.title, self.first_name, self.surname)
    }
}

impl fmt::Debug for SimUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Staff names are fictitious here, but the type mirrors real staff data: only the login is shown.
        f.debug_struct("SimUser")
            .field("user_name", &self.user_name)
            .field("role", &self.role)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimOrganisation {
    pub name: String,
    pub sites: Vec<SimSite>,
    pub users: Vec<SimUser>,
}

impl SimOrganisation {
    pub fn user(&self, user_name: &str) -> Option<&SimUser> {
        self.users
            .iter()
            .find(|u| u.user_name.eq_ignore_ascii_case(user_name))
    }
}

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimAddress {
    pub house_name: Option<String>,
    pub house_number: Option<String>,
    pub road: Option<String>,
    pub locality: Option<String>,
    pub town: Option<String>,
    pub county: Option<String>,
    pub postcode: Option<String>,
}

impl fmt::Debug for SimAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimAddress([redacted])")
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimPatient {
    /// Ten digits, no spaces.
    pub nhs_number: String,
    pub strategic_reporting_id: i64,
    pub title: String,
    pub first_name: String,
    pub middle_names: Option<String>,
    pub surname: String,
    pub known_as: Option<String>,
    pub date_of_birth: NaiveDate,
    /// M, F, I or U as SystmOne reports it.
    pub sex: String,
    pub address: SimAddress,
    pub home_telephone: Option<String>,
    pub mobile_telephone: Option<String>,
    pub email: Option<String>,
    pub usual_gp_user_name: Option<String>,
    pub care_start_date: NaiveDate,
    pub registration_type: String,
    /// Set on a few generated patients, so lookup's "deceased" warning can be shown.
    #[serde(default)]
    pub date_of_death: Option<NaiveDate>,
    /// Set on a few generated patients: registration ended (deregistered).
    #[serde(default)]
    pub care_end_date: Option<NaiveDate>,
}

impl fmt::Debug for SimPatient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SimPatient([redacted])")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimCode {
    pub scheme: String,
    pub code: String,
    pub term: String,
    pub free_text: Option<String>,
    pub value: Option<String>,
}

/// One journal event. `entered_at` is when it was filed; `effective_at` the clinical date.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimEvent {
    pub uid: String,
    pub nhs_number: String,
    pub effective_at: NaiveDateTime,
    pub entered_at: NaiveDateTime,
    pub user_name: String,
    pub done_by: String,
    pub done_at: String,
    pub software: String,
    pub lines: Vec<String>,
    pub codes: Vec<SimCode>,
    /// The DeviceID that filed it through the API; `None` for generated or screen-entered events.
    pub device_id: Option<String>,
    /// Filed under LeaveRecordOpen and not yet saved.
    pub pending: bool,
}

impl fmt::Debug for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimEvent")
            .field("uid", &self.uid)
            .field("entered_at", &self.entered_at)
            .field("lines", &self.lines.len())
            .field("codes", &self.codes.len())
            .field("pending", &self.pending)
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimTask {
    pub uid: String,
    pub nhs_number: String,
    pub created_at: NaiveDateTime,
    pub task_type: String,
    pub status: String,
    pub content: String,
    /// A date-time, as the XSD's `xs:dateTime` allows.
    pub due: Option<NaiveDateTime>,
    pub user_assigned: Option<String>,
    pub group_assigned: Option<String>,
    pub team_assigned: Option<String>,
    pub created_by: String,
    pub device_id: Option<String>,
    pub pending: bool,
}

impl SimTask {
    pub fn is_completed(&self) -> bool {
        self.status.eq_ignore_ascii_case(STATUS_COMPLETED)
    }
}

impl fmt::Debug for SimTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimTask")
            .field("uid", &self.uid)
            .field("task_type", &self.task_type)
            .field("status", &self.status)
            .finish()
    }
}

#[derive(Clone, Debug)]
pub struct GeneratedPatient {
    pub patient: SimPatient,
    pub events: Vec<SimEvent>,
    pub tasks: Vec<SimTask>,
}

#[derive(Clone, Debug)]
pub struct SimWorld {
    pub organisation: SimOrganisation,
    pub patients: Vec<GeneratedPatient>,
}

/// A 16-lowercase-hex identifier, the shape of TPP's DeviceID, EventUID and TaskUID.
pub fn hex16(rng: &mut impl Rng) -> String {
    format!("{:016x}", rng.gen::<u64>())
}

fn site_address(road: &str, town: &str, postcode: &str) -> SimAddress {
    SimAddress {
        house_name: Some("Fictitious Hospital".into()),
        house_number: None,
        road: Some(road.into()),
        locality: None,
        town: Some(town.into()),
        county: Some("Demoshire".into()),
        postcode: Some(postcode.into()),
    }
}

/// The organisation is the same for every seed: tests and docs can name its users.
pub fn organisation() -> SimOrganisation {
    let user = |title: &str,
                first: &str,
                surname: &str,
                user_name: &str,
                role: &str,
                role_code: &str,
                national_id: &str,
                groups: &[&str]| SimUser {
        title: title.into(),
        first_name: first.into(),
        middle_names: None,
        surname: surname.into(),
        user_name: user_name.into(),
        role: role.into(),
        role_code: role_code.into(),
        national_id: national_id.into(),
        access_rights: vec!["Clinical Integration".into(), "Record Access".into()],
        user_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        teams: vec!["Willow Ward Team (DEMO)".into()],
    };
    SimOrganisation {
        name: ORGANISATION_NAME.into(),
        sites: vec![
            SimSite {
                name: format!("{ORGANISATION_NAME} – Willow Ward"),
                id: "DEMO1W".into(),
                address: site_address("1 Imaginary Lane", "Demoton", "ZZ99 3WZ"),
                current_site: true,
                primary_site: false,
            },
            SimSite {
                name: format!("{ORGANISATION_NAME} – Main Site"),
                id: "DEMO1".into(),
                address: site_address("1 Imaginary Lane", "Demoton", "ZZ99 3WZ"),
                current_site: false,
                primary_site: true,
            },
        ],
        users: vec![
            user(
                "Dr",
                "Demo",
                "Consultant-Psychiatrist",
                "demo.consultant",
                "Consultant Psychiatrist",
                "R8000",
                "555000000001",
                &["Doctors (DEMO)"],
            ),
            user(
                "Mx",
                "Demo",
                "Staff-Nurse",
                "demo.nurse",
                "Staff Nurse (Registered)",
                "R8001",
                "555000000002",
                &["Nurses (DEMO)"],
            ),
            user(
                "Mx",
                "Demo",
                "Student-Nurse",
                "demo.student",
                "Student Nurse",
                "R8004",
                "555000000003",
                &["Nurses (DEMO)", "Students (DEMO)"],
            ),
            user(
                "Mx",
                "Demo",
                "Healthcare-Assistant",
                "demo.hca",
                "Healthcare Assistant",
                "R8003",
                "555000000004",
                &["Support Workers (DEMO)"],
            ),
        ],
    }
}

/// The logged-in user when none is configured.
pub const DEFAULT_USER: &str = "demo.nurse";

const FEMALE_FIRST: &[&str] = &[
    "Siân",
    "Zoë",
    "Chloë",
    "Ffion",
    "Aoife",
    "Róisín",
    "Niamh",
    "Eilidh",
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Priya",
    "Aisha",
    "Fatima",
    "Agnieszka",
    "Oluwaseun",
    "Mary",
    "Margaret",
    "Susan",
    "Joanne",
    "Bethan",
    "Catrin",
    "Ngozi",
    "Mei",
    "Renée",
    "Inés",
    "Kirsty",
    "Lowri",
    "Gráinne",
];
const MALE_FIRST: &[&str] = &[
    "Seán",
    "Dafydd",
    "Rhys",
    "Callum",
    "Jack",
    "Oliver",
    "Mohammed",
    "Arjun",
    "Wojciech",
    "Tomás",
    "José",
    "Björn",
    "Kwame",
    "Declan",
    "Ciarán",
    "Gareth",
    "David",
    "Peter",
    "Andrew",
    "Liam",
    "Hamish",
    "Emre",
    "Chidi",
    "Ravi",
    "François",
    "Eoin",
    "Iain",
    "George",
    "Harry",
    "Noah",
];
const SURNAMES: &[&str] = &[
    "O'Brien",
    "Smith-Jones",
    "D'Souza",
    "MacDonald",
    "O'Neill",
    "Ní Bhriain",
    "Öztürk",
    "Nowak",
    "Patel",
    "Okafor",
    "Williams",
    "Jones",
    "Davies",
    "Evans",
    "Thomas",
    "Roberts",
    "Hughes",
    "Khan",
    "Begum",
    "Campbell",
    "Stewart",
    "Murray",
    "Taylor",
    "Brown",
    "Wilson",
    "Ahmed",
    "Kowalski",
    "Müller",
    "Lloyd-Webber",
    "Fitzgerald",
    "McAllister",
    "Ó Súilleabháin",
    "Adebayo",
    "Chen",
    "Nguyen",
    "Singh",
    "Hall",
    "Wright",
    "Baker-Smith",
    "Le Blanc",
];
const MIDDLE: &[&str] = &[
    "Anne",
    "Marie",
    "James",
    "John",
    "Elizabeth",
    "Rose",
    "Owain",
    "Grace",
    "Lee",
    "Jo",
];
const ROADS: &[&str] = &[
    "High Street",
    "Church Road",
    "Station Road",
    "Victoria Road",
    "Mill Lane",
    "Heol y Bryn",
    "Ffordd Las",
    "Queen's Drive",
    "St. Mary's Close",
    "Park Avenue",
    "The Crescent",
    "Meadow Way",
    "Orchard Row",
];
/// Town, county, postcode district. Sectors and units are generated.
const TOWNS: &[(&str, &str, &str)] = &[
    ("Leeds", "West Yorkshire", "LS6"),
    ("Bradford", "West Yorkshire", "BD7"),
    ("Cardiff", "South Glamorgan", "CF14"),
    ("Swansea", "West Glamorgan", "SA1"),
    ("Manchester", "Greater Manchester", "M14"),
    ("Newcastle upon Tyne", "Tyne and Wear", "NE4"),
    ("Norwich", "Norfolk", "NR2"),
    ("Exeter", "Devon", "EX4"),
    ("Bristol", "Avon", "BS5"),
    ("Birmingham", "West Midlands", "B29"),
];
const LOCALITIES: &[&str] = &[
    "Headingley",
    "Roath",
    "Fallowfield",
    "Heaton",
    "Easton",
    "Selly Oak",
];

const SENTENCES: &[&str] = &[
    "Seen on the ward round with the consultant and the named nurse.",
    "Mood described as low; denies current thoughts of self-harm but reports poor sleep over the past week.",
    "Ate most of lunch and supper; fluid intake encouraged and recorded on the chart.",
    "Slept for approximately six hours, observed on general observations overnight with no concerns.",
    "Attended the morning community meeting and engaged well in the art group.",
    "Medication administered as prescribed; no side effects reported at this time.",
    "Family visited in the afternoon; the visit went well and the patient appeared brighter afterwards.",
    "Discussed discharge planning; the care coordinator will be invited to the next review.",
    "Presented as settled on the ward, pleasant in manner and appropriate in conversation.",
    "Requested leave to the hospital grounds, which was granted as per the section 17 leave form.",
    "Reported feeling anxious in the evening; used breathing techniques with staff support and settled.",
    "Physical observations within normal limits: temperature, pulse, respiration and blood pressure recorded.",
    "Risk assessment reviewed and updated; no change to the level of observation is required.",
    "Declined the offer of a one-to-one session this morning but agreed to meet later in the day.",
    "Capacity to consent to treatment was discussed and documented on the appropriate form.",
];

const CODES: &[(&str, &str, &str, Option<&str>)] = &[
    ("CTV3", "Eu32.", "[X]Depressive episode", None),
    ("CTV3", "Eu20.", "[X]Schizophrenia", None),
    ("CTV3", "Eu31.", "[X]Bipolar affective disorder", None),
    ("CTV3", "22A..", "O/E - weight", Some("kg")),
    (
        "CTV3",
        "246..",
        "O/E - blood pressure reading",
        Some("mmHg"),
    ),
    ("Snomed", "225337009", "Suicide risk assessment", None),
    ("Snomed", "1156040003", "Body mass index", Some("kg/m2")),
];

const TASK_CONTENTS: &[&str] = &[
    "Please review the medication chart before the ward round.",
    "Clinical approval needed for the updated care plan.",
    "File the scanned section papers in the record.",
    "Review the physical health monitoring results (bloods taken today).",
    "Approve the leave plan discussed at the multidisciplinary meeting.",
];

fn nth_fixed_number(last_six: u32) -> Option<String> {
    let mut digits = [9u8, 9, 9, 0, 0, 0, 0, 0, 0];
    let mut rest = last_six;
    for slot in digits[3..].iter_mut().rev() {
        *slot = (rest % 10) as u8;
        rest /= 10;
    }
    NhsNumber::from_nine_digits(digits).map(|n| n.digits())
}

struct Fixed {
    number: u32,
    title: &'static str,
    first: &'static str,
    surname: &'static str,
    born: (i32, u32, u32),
    sex: &'static str,
}

/// Every `DECEASED_EVERY`-th generated patient, at these offsets, is deceased / deregistered.
pub const DECEASED_EVERY: usize = 40;
pub const DECEASED_AT: usize = 7;
pub const DEREGISTERED_AT: usize = 13;

const FIXED: &[Fixed] = &[
    Fixed {
        number: 1,
        title: "Ms",
        first: "Siân",
        surname: "O'Brien",
        born: (1984, 3, 14),
        sex: "F",
    },
    Fixed {
        number: 2,
        title: "Miss",
        first: "Zoë",
        surname: "Smith-Jones",
        born: (1999, 11, 2),
        sex: "F",
    },
    Fixed {
        number: 3,
        title: "Mr",
        first: "Seán",
        surname: "D'Arcy-MacDonald",
        born: (1961, 7, 23),
        sex: "M",
    },
];

fn pick<'a, T>(rng: &mut ChaCha8Rng, items: &'a [T]) -> &'a T {
    // The lists are non-empty constants; index 0 is a safe fallback that never triggers.
    items.choose(rng).unwrap_or(&items[0])
}

fn random_address(rng: &mut ChaCha8Rng) -> SimAddress {
    let (town, county, district) = *pick(rng, TOWNS);
    let sector = rng.gen_range(1..=9);
    let unit: String = (0..2)
        .map(|_| char::from(b"ABDEFGHJLNPQRSTUWXYZ"[rng.gen_range(0..20)]))
        .collect();
    let flat = rng.gen_bool(0.2);
    SimAddress {
        house_name: if flat {
            Some(format!(
                "Flat {}, {} House",
                rng.gen_range(1..30),
                pick(rng, &["Ty Gwyn", "Rose", "Oak", "Marlborough"])
            ))
        } else {
            None
        },
        house_number: Some(rng.gen_range(1..250).to_string()),
        road: Some((*pick(rng, ROADS)).to_owned()),
        locality: if rng.gen_bool(0.4) {
            Some((*pick(rng, LOCALITIES)).to_owned())
        } else {
            None
        },
        town: Some(town.to_owned()),
        county: Some(county.to_owned()),
        postcode: Some(format!("{district} {sector}{unit}")),
    }
}

fn random_phone(rng: &mut ChaCha8Rng, mobile: bool) -> String {
    if mobile {
        // Ofcom's drama range 07700 900000–900999 is reserved for fiction.
        format!("07700 900{:03}", rng.gen_range(0..1000))
    } else {
        // Ofcom's drama range for geographic numbers: 0113 496 0000–0999 (Leeds) etc.
        format!("0113 496 0{:03}", rng.gen_range(0..1000))
    }
}

fn narrative(rng: &mut ChaCha8Rng, long: bool) -> Vec<String> {
    if long {
        // Real records hold single lines thousands of characters long.
        let target = rng.gen_range(2_000..6_000);
        let mut line = String::new();
        while line.len() < target {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(pick::<&str>(rng, SENTENCES));
        }
        vec![line]
    } else {
        (0..rng.gen_range(1..5))
            .map(|_| (*pick(rng, SENTENCES)).to_owned())
            .collect()
    }
}

fn datetime_before(rng: &mut ChaCha8Rng, anchor: NaiveDate, max_days: i64) -> NaiveDateTime {
    let days = rng.gen_range(1..=max_days);
    let date = anchor - Duration::days(days);
    let time = NaiveTime::from_hms_opt(
        rng.gen_range(7..22),
        rng.gen_range(0..60),
        rng.gen_range(0..60),
    )
    .unwrap_or(NaiveTime::MIN);
    date.and_time(time)
}

fn events_and_tasks(
    rng: &mut ChaCha8Rng,
    org: &SimOrganisation,
    patient: &SimPatient,
    anchor: NaiveDate,
) -> (Vec<SimEvent>, Vec<SimTask>) {
    let event_count = rng.gen_range(3..=12);
    let mut events: Vec<SimEvent> = (0..event_count)
        .map(|_| {
            let entered = datetime_before(rng, anchor, 400);
            // Usually entered shortly after the contact, sometimes retrospectively.
            let effective = entered - Duration::minutes(rng.gen_range(0..(3 * 24 * 60)));
            let user = pick(rng, &org.users).clone();
            let coded = rng.gen_bool(0.3);
            let codes = if coded {
                let (scheme, code, term, unit) = *pick(rng, CODES);
                vec![SimCode {
                    scheme: scheme.into(),
                    code: code.into(),
                    term: term.into(),
                    free_text: if rng.gen_bool(0.5) {
                        Some("Recorded on the ward.".into())
                    } else {
                        None
                    },
                    value: unit.map(|u| match u {
                        "kg" => format!("{:.1}", rng.gen_range(45.0..120.0)),
                        "mmHg" => format!("{}/{}", rng.gen_range(100..160), rng.gen_range(60..100)),
                        _ => format!("{:.1}", rng.gen_range(17.0..40.0)),
                    }),
                }]
            } else {
                Vec::new()
            };
            let long = rng.gen_bool(0.2);
            SimEvent {
                uid: hex16(rng),
                nhs_number: patient.nhs_number.clone(),
                effective_at: effective,
                entered_at: entered,
                user_name: user.user_name.clone(),
                done_by: user.display_name(),
                done_at: org.sites[0].name.clone(),
                software: SOFTWARE_NAME.into(),
                lines: if coded && rng.gen_bool(0.5) {
                    Vec::new()
                } else {
                    narrative(rng, long)
                },
                codes,
                device_id: None,
                pending: false,
            }
        })
        .collect();
    events.sort_by_key(|e| e.entered_at);
    let task_count = rng.gen_range(0..=3);
    let tasks = (0..task_count)
        .map(|_| {
            let created = datetime_before(rng, anchor, 30);
            let assignee = pick(rng, &org.users);
            let by_group = rng.gen_bool(0.25);
            SimTask {
                uid: hex16(rng),
                nhs_number: patient.nhs_number.clone(),
                created_at: created,
                task_type: (*pick(rng, &TASK_TYPES)).to_owned(),
                status: STATUS_NOT_STARTED.into(),
                content: (*pick(rng, TASK_CONTENTS)).to_owned(),
                due: if rng.gen_bool(0.5) {
                    Some(created + Duration::days(rng.gen_range(1..14)))
                } else {
                    None
                },
                user_assigned: if by_group {
                    None
                } else {
                    Some(assignee.user_name.clone())
                },
                group_assigned: if by_group {
                    assignee.user_groups.first().cloned()
                } else {
                    None
                },
                team_assigned: None,
                created_by: pick(rng, &org.users).user_name.clone(),
                device_id: None,
                pending: false,
            }
        })
        .collect();
    (events, tasks)
}

/// Generates the whole world. Same `seed` and `anchor` (the "today" the data is generated
/// relative to) give the same world. No generated event or task is entered on `anchor` itself,
/// so an entered-today filter shows only what was filed since.
pub fn generate(seed: u64, anchor: NaiveDate) -> SimWorld {
    let org = organisation();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut used: HashSet<String> = HashSet::new();
    let mut patients = Vec::with_capacity(PATIENT_COUNT);
    let mut srid: i64 = 1_000_000 + rng.gen_range(0..1_000_000);

    let push = |rng: &mut ChaCha8Rng, patient: SimPatient, patients: &mut Vec<GeneratedPatient>| {
        let (events, tasks) = events_and_tasks(rng, &org, &patient, anchor);
        patients.push(GeneratedPatient {
            patient,
            events,
            tasks,
        });
    };

    for fixed in FIXED {
        let Some(nhs) = nth_fixed_number(fixed.number) else {
            continue;
        };
        used.insert(nhs.clone());
        srid += 1;
        let dob = NaiveDate::from_ymd_opt(fixed.born.0, fixed.born.1, fixed.born.2)
            .unwrap_or(NaiveDate::MIN);
        let patient = SimPatient {
            nhs_number: nhs,
            strategic_reporting_id: srid,
            title: fixed.title.into(),
            first_name: fixed.first.into(),
            middle_names: None,
            surname: fixed.surname.into(),
            known_as: None,
            date_of_birth: dob,
            sex: fixed.sex.into(),
            address: random_address(&mut rng),
            home_telephone: Some(random_phone(&mut rng, false)),
            mobile_telephone: Some(random_phone(&mut rng, true)),
            email: None,
            usual_gp_user_name: Some("demo.gp".into()),
            care_start_date: anchor - Duration::days(21),
            registration_type: "Inpatient".into(),
            date_of_death: None,
            care_end_date: None,
        };
        push(&mut rng, patient, &mut patients);
    }

    while patients.len() < PATIENT_COUNT {
        // Random numbers avoid 999 000 0xxx, which is kept for the fixed patients.
        let six: u32 = rng.gen_range(1_000..1_000_000);
        let Some(nhs) = nth_fixed_number(six) else {
            continue;
        };
        if !used.insert(nhs.clone()) {
            continue;
        }
        srid += 1;
        let female = rng.gen_bool(0.5);
        let sex = if rng.gen_bool(0.01) {
            "U"
        } else if female {
            "F"
        } else {
            "M"
        };
        let first = if female {
            *pick(&mut rng, FEMALE_FIRST)
        } else {
            *pick(&mut rng, MALE_FIRST)
        };
        let title = match (female, rng.gen_range(0..10)) {
            (_, 0) => "Dr",
            (_, 1) => "Mx",
            (true, 2..=5) => "Mrs",
            (true, _) => "Ms",
            (false, _) => "Mr",
        };
        let age_days = rng.gen_range(18 * 365..90 * 365);
        let patient = SimPatient {
            nhs_number: nhs,
            strategic_reporting_id: srid,
            title: title.into(),
            first_name: first.into(),
            middle_names: if rng.gen_bool(0.3) {
                Some((*pick(&mut rng, MIDDLE)).to_owned())
            } else {
                None
            },
            surname: (*pick(&mut rng, SURNAMES)).to_owned(),
            known_as: None,
            date_of_birth: anchor - Duration::days(age_days),
            sex: sex.into(),
            address: random_address(&mut rng),
            home_telephone: if rng.gen_bool(0.6) {
                Some(random_phone(&mut rng, false))
            } else {
                None
            },
            mobile_telephone: if rng.gen_bool(0.8) {
                Some(random_phone(&mut rng, true))
            } else {
                None
            },
            email: None,
            usual_gp_user_name: Some("demo.gp".into()),
            care_start_date: anchor - Duration::days(rng.gen_range(1..200)),
            registration_type: "Inpatient".into(),
            date_of_death: None,
            care_end_date: None,
        };
        // A few records carry SystmOne's end-of-record facts (chosen by position, so the
        // random stream and every other patient stay as they were).
        let mut patient = patient;
        match patients.len() % DECEASED_EVERY {
            DECEASED_AT => patient.date_of_death = Some(anchor - Duration::days(3)),
            DEREGISTERED_AT => patient.care_end_date = Some(anchor - Duration::days(40)),
            _ => {}
        }
        push(&mut rng, patient, &mut patients);
    }
    SimWorld {
        organisation: org,
        patients,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anchor() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    #[test]
    fn same_seed_same_world_and_different_seed_differs() {
        let a = generate(7, anchor());
        let b = generate(7, anchor());
        let c = generate(8, anchor());
        let key = |w: &SimWorld| {
            w.patients
                .iter()
                .map(|p| (p.patient.clone(), p.events.clone(), p.tasks.clone()))
                .collect::<Vec<_>>()
        };
        assert!(key(&a) == key(&b));
        assert!(key(&a) != key(&c));
    }

    #[test]
    fn every_nhs_number_is_valid_unique_and_in_the_test_range() {
        let world = generate(1, anchor());
        assert!(world.patients.len() >= 200);
        let mut seen = HashSet::new();
        for p in &world.patients {
            let n = NhsNumber::parse(&p.patient.nhs_number).expect("valid Modulus 11");
            assert!(n.is_test_range());
            assert!(seen.insert(n.digits()), "duplicate NHS number");
        }
    }

    #[test]
    fn fixed_patients_are_the_documented_ones_for_any_seed() {
        for seed in [0, 1, 99] {
            let world = generate(seed, anchor());
            let first = &world.patients[0].patient;
            assert_eq!(
                (first.first_name.as_str(), first.surname.as_str()),
                ("Siân", "O'Brien")
            );
            assert_eq!(first.nhs_number, "9990000018");
            assert_eq!(world.patients[1].patient.nhs_number, "9990000026");
            assert_eq!(world.patients[1].patient.first_name, "Zoë");
            assert_eq!(world.patients[2].patient.nhs_number, "9990000034");
            assert_eq!(world.patients[2].patient.surname, "D'Arcy-MacDonald");
        }
    }

    #[test]
    fn records_are_realistic() {
        let world = generate(3, anchor());
        let events: Vec<&SimEvent> = world.patients.iter().flat_map(|p| &p.events).collect();
        assert!(
            events
                .iter()
                .any(|e| e.lines.iter().any(|l| l.len() > 2_000)),
            "some very long lines"
        );
        assert!(
            events.iter().any(|e| !e.codes.is_empty()),
            "some coded entries"
        );
        assert!(
            events.iter().all(|e| e.entered_at.date() < anchor()),
            "nothing entered today"
        );
        assert!(events.iter().all(|e| e.uid.len() == 16
            && e.uid
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())));
        let tasks: Vec<&SimTask> = world.patients.iter().flat_map(|p| &p.tasks).collect();
        assert!(tasks.len() > 50);
        assert!(tasks
            .iter()
            .all(|t| TASK_TYPES.contains(&t.task_type.as_str()) && t.status == STATUS_NOT_STARTED));
        let names: String = world
            .patients
            .iter()
            .map(|p| format!("{} {} ", p.patient.first_name, p.patient.surname))
            .collect();
        assert!(names.contains('\'') && names.contains('-') && !names.is_ascii());
        assert!(world
            .patients
            .iter()
            .all(|p| p.patient.address.postcode.is_some()));
    }

    #[test]
    fn organisation_is_unmistakably_a_demo() {
        let org = organisation();
        assert!(org.sites.iter().all(|s| s.name.contains("simulator")));
        assert_eq!(org.sites.iter().filter(|s| s.current_site).count(), 1);
        assert_eq!(org.sites.iter().filter(|s| s.primary_site).count(), 1);
        for role in [
            "Consultant Psychiatrist",
            "Staff Nurse (Registered)",
            "Student Nurse",
            "Healthcare Assistant",
        ] {
            assert!(org.users.iter().any(|u| u.role == role), "{role}");
        }
        assert!(org
            .users
            .iter()
            .all(|u| u.surname.contains('-') && u.first_name == "Demo"));
        assert!(org.user(DEFAULT_USER).is_some());
    }
}
