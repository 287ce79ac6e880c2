//! One function per `hubctl` subcommand. Each prints through [`print`]: text for people,
//! `--json` for scripts.

use crate::{
    ApiKeyCmd, ConformanceArgs, NotesCmd, Out, PatientsCmd, SearchArgs, Session, SettingsCmd,
    TasksCmd,
};
use domain::{FilingRoute, NoteId, PatientId, TaskStatus};
use hub::lookup::SearchInput;
use hub::{
    AuditQuery, BoardFilter, DraftInput, Hub, HubError, PatientInput, TaskEditInput, TaskInput,
};
use serde::Serialize;
use std::path::Path;
#[cfg(feature = "simulator")]
use std::path::PathBuf;

pub(crate) fn print<T: Serialize>(
    out: Out,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<(), HubError> {
    if out.json {
        let json =
            serde_json::to_string_pretty(value).map_err(|e| HubError::BadRequest(e.to_string()))?;
        emit(&terminal_json(&json))
    } else {
        emit(&terminal_text(&text(value)))
    }
}

/// Whether a character printed raw could drive or mislead a terminal: control characters
/// (C0 such as ESC and `\r`, DEL, C1 such as CSI) start escape sequences that move the
/// cursor, clear the screen or retitle the window; direction overrides, isolates and marks
/// reorder what is shown. Newline and tab are the output's own layout, so they stay.
fn drives_terminal(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Text for people with every character that could drive the terminal shown as Rust writes
/// it (`\u{1b}`): names, note text and task titles come from SystmOne and the database,
/// and a name holding `ESC [2J` must show as that, not clear the screen.
pub(crate) fn terminal_text(text: &str) -> std::borrow::Cow<'_, str> {
    escape_with(text, |c| format!("\\u{{{:x}}}", u32::from(c)))
}

/// JSON with the same characters as `\uXXXX` escapes, so it is still the same JSON:
/// serde_json escapes C0 itself but writes DEL, C1 and direction controls raw, and outside
/// strings JSON has none of them.
fn terminal_json(json: &str) -> std::borrow::Cow<'_, str> {
    escape_with(json, |c| format!("\\u{:04x}", u32::from(c)))
}

fn escape_with(text: &str, escape: impl Fn(char) -> String) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(drives_terminal) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if drives_terminal(c) {
            shown.push_str(&escape(c));
        } else {
            shown.push(c);
        }
    }
    std::borrow::Cow::Owned(shown)
}

/// Writes one block of output and a newline to standard output. A reader that stops early
/// (`hubctl tasks list | head`) is not an error: everything the command had to do is done
/// before anything is printed, so hubctl stops quietly instead of panicking on the closed
/// pipe as `println!` would.
pub(crate) fn emit(text: &str) -> Result<(), HubError> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(HubError::BadRequest(format!(
            "could not write the output: {e}"
        ))),
    }
}

fn status_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .map(|v| v.to_string())
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned()
}

pub fn decode(file: &Path) -> Result<(), HubError> {
    let bytes = std::fs::read(file)
        .map_err(|e| HubError::BadRequest(format!("cannot read {}: {e}", file.display())))?;
    let response = systmone_wire::codec::decode_response(&bytes)
        .map_err(|e| HubError::BadRequest(format!("{}: {e}", file.display())))?;
    // Always JSON: a decoded record has no sensible one-line form.
    print(Out { json: true }, &response, |_| String::new())
}

/// What `hubctl sim` / `simctl` say in a build without the simulator (every release build).
#[cfg(not(feature = "simulator"))]
pub const SIMULATOR_LEFT_OUT: &str = "this hubctl was built without the SystmOne simulator: release builds leave it out, so it can never stand in for SystmOne on a ward PC. For demos and tests build with `cargo build -p hubctl --features simulator`";

#[cfg(feature = "simulator")]
pub fn sim(args: simulator::cli::SimArgs, data_dir: &Path) -> Result<(), HubError> {
    let config = args
        .into_config(data_dir)
        .map_err(|e| HubError::BadRequest(e.to_string()))?;
    crate::new_runtime()?
        .block_on(simulator::run_server(config))
        .map_err(|e| HubError::BadRequest(e.to_string()))
}

#[cfg(feature = "simulator")]
pub fn simctl(
    command: simulator::cli::SimCtlCommand,
    sim_dir: Option<PathBuf>,
    data_dir: &Path,
) -> Result<(), HubError> {
    let dir = simulator::cli::default_sim_data_dir(sim_dir, data_dir);
    let out =
        simulator::cli::run_ctl(command, &dir).map_err(|e| HubError::BadRequest(e.to_string()))?;
    emit(&terminal_text(&out))?;
    Ok(())
}

pub fn tasks(session: &mut Session, cmd: TasksCmd) -> Result<(), HubError> {
    let out = session.out;
    let hub = &session.hub;
    match cmd {
        TasksCmd::List(args) => {
            let board = hub.board(&BoardFilter {
                patient_id: args.patient,
                assignee: args.assignee,
                status: Some(args.status),
            })?;
            print(out, &board.tasks, |tasks| {
                if tasks.is_empty() {
                    return "no tasks".into();
                }
                tasks
                    .iter()
                    .map(|t| {
                        let due = t
                            .task
                            .due
                            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_else(|| "-".into());
                        let flag = if t.overdue { " OVERDUE" } else { "" };
                        let who = t.task.assignee.as_ref().map(|a| a.as_str()).unwrap_or("-");
                        let sync = t.sync.as_ref().map(|l| l.state.as_str()).unwrap_or("local");
                        let notice = t
                            .sync
                            .as_ref()
                            .and_then(|l| l.notice.as_ref())
                            .map(|n| format!("\tNOTICE: {}", n.expose()))
                            .unwrap_or_default();
                        format!(
                            "{}\t{}\tpatient {}\t{}\tdue {}{}\tsync {}\t{}{}",
                            t.task.id,
                            t.task.status.as_str(),
                            t.task.patient_id,
                            who,
                            due,
                            flag,
                            sync,
                            t.task.title,
                            notice
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        TasksCmd::Add {
            nhs: Some(nhs),
            task_type,
            title,
            due,
            assign,
            ..
        } => session.block_on(async |hub, out| {
            let patient = hub.patient_for_nhs(&nhs).await?;
            let task = hub.add_task(&TaskInput {
                patient_id: patient.id.0,
                title,
                assignee: assign,
                due,
            })?;
            let link = hub.request_task_push(task.id.0, task_type.as_deref())?;
            print(
                out,
                &serde_json::json!({ "task": task, "sync": link }),
                |v| format!("added task {} (queued for SystmOne)", v["task"]["id"]),
            )
        }),
        TasksCmd::Add {
            patient,
            nhs: None,
            task_type: _,
            title,
            due,
            assign,
        } => {
            let patient =
                patient.ok_or_else(|| HubError::BadRequest("give --patient or --nhs".into()))?;
            let task = hub.add_task(&TaskInput {
                patient_id: patient,
                title,
                assignee: assign,
                due,
            })?;
            print(out, &task, |t| format!("added task {}", t.id))
        }
        TasksCmd::Edit {
            id,
            title,
            due,
            assign,
        } => {
            let task = hub.edit_task(
                id,
                &TaskEditInput {
                    title,
                    assignee: assign,
                    due,
                    version: None,
                },
            )?;
            print(out, &task, |t| {
                format!("updated task {} (version {})", t.id, t.version)
            })
        }
        TasksCmd::Push { id, task_type } => {
            let link = hub.request_task_push(id, task_type.as_deref())?;
            print(out, &link, |l| {
                format!(
                    "task {} queued for SystmOne ({})",
                    l.task_id,
                    l.state.as_str()
                )
            })
        }
        TasksCmd::Done { id } => {
            let task = hub.set_task_status(id, TaskStatus::Done, None)?;
            print(out, &task, |t| format!("task {} done", t.id))
        }
        TasksCmd::Cancel { id } => {
            let task = hub.set_task_status(id, TaskStatus::Cancelled, None)?;
            print(out, &task, |t| format!("task {} cancelled", t.id))
        }
    }
}

pub fn patients(session: &Session, cmd: PatientsCmd) -> Result<(), HubError> {
    match cmd {
        PatientsCmd::List => {
            let patients = session.hub.patients()?;
            print(session.out, &patients, |ps| {
                ps.iter()
                    .map(|p| {
                        let nhs = p
                            .nhs_number
                            .as_ref()
                            .map(|n| n.formatted())
                            .unwrap_or_else(|| "-".into());
                        format!("{}\t{}\t{}\t{}", p.id, p.bed, p.name.expose(), nhs)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        PatientsCmd::Add { bed, name, nhs } => {
            let p = session.hub.add_patient(&PatientInput {
                bed,
                name,
                nhs_number: nhs,
            })?;
            print(session.out, &p, |p| format!("added patient {}", p.id))
        }
    }
}

pub fn audit(
    session: &Session,
    entity: Option<String>,
    id: Option<String>,
    limit: u32,
) -> Result<(), HubError> {
    let entries = session.hub.audit(&AuditQuery {
        entity,
        entity_id: id,
        limit: Some(limit),
    })?;
    print(session.out, &entries, |es| {
        es.iter()
            .map(|e| {
                // The accounts last, so the columns scripts already read keep their places.
                format!(
                    "{}\t{}\t{}\t{} {}\t{}\tcomputer: {} / SystmOne: {}",
                    e.at.format("%Y-%m-%d %H:%M:%S"),
                    e.actor,
                    e.action,
                    e.entity,
                    e.entity_id.as_deref().unwrap_or("-"),
                    e.detail,
                    e.os_account.as_deref().unwrap_or("-"),
                    e.systmone_user.as_deref().unwrap_or("-"),
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// `hubctl audit verify`: the whole chain, the report on standard output (text or `--json`),
/// and on a break a one-line reason naming the row, exit 1.
/// `hubctl check`: the database file's consistency, now.
pub fn check(session: &Session) -> Result<(), HubError> {
    let report = session.hub.check_database()?;
    print(session.out, &report, |r| {
        if r.is_ok() {
            "ok".to_owned()
        } else {
            r.problems
                .iter()
                .map(|p| format!("DAMAGED: {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        }
    })?;
    if report.is_ok() {
        Ok(())
    } else {
        Err(HubError::DatabaseDamaged(format!(
            "{} problem(s) found",
            report.problems.len()
        )))
    }
}

pub fn audit_verify(session: &Session) -> Result<(), HubError> {
    let report = session.hub.verify_audit_chain()?;
    print(session.out, &report, |r| {
        let mut lines = vec![format!(
            "audit rows checked: {}{}",
            r.rows_checked,
            r.newest_id
                .map(|id| format!(" (newest row {id})"))
                .unwrap_or_default()
        )];
        lines.push(match &r.first_break {
            None => "hash chain: intact".to_owned(),
            Some(b) => format!(
                "hash chain: BROKEN at row {} ({}); {} break(s) in all",
                b.row_id, b.explanation, r.breaks_found
            ),
        });
        if r.trigger_problems.is_empty() {
            lines.push("append-only triggers: in place".to_owned());
        } else {
            lines.extend(r.trigger_problems.iter().map(|p| format!("TAMPERED: {p}")));
        }
        lines.push(
            "(a chain cannot show rows cut off its end; the triggers guard against that)"
                .to_owned(),
        );
        lines.join("\n")
    })?;
    if let Some(b) = &report.first_break {
        return Err(HubError::AuditTampered(format!(
            "the audit trail breaks at row {}: {}",
            b.row_id, b.explanation
        )));
    }
    if !report.trigger_problems.is_empty() {
        return Err(HubError::AuditTampered(format!(
            "the audit trail's protection was tampered with: {}",
            report.trigger_problems.join("; ")
        )));
    }
    Ok(())
}

pub fn user(session: &Session, name: &str) -> Result<(), HubError> {
    let label = session.hub.set_current_user(name)?;
    let actor = session.hub.current_user()?;
    print(session.out, &label.as_str(), |s| {
        format!("display label: {s} (changes are still recorded under {actor})")
    })
}

/// Asks SystmOne who is logged on (when it answers), then shows who acts and what they may do.
pub async fn whoami(hub: &Hub, out: Out) -> Result<(), HubError> {
    if let Err(e) = hub.verified_client_probe().await {
        tracing::info!(code = e.code(), "SystmOne could not say who is logged on");
    }
    let identity = hub.identity()?;
    print(out, &identity, |i| {
        let systmone = i.systmone_user.as_ref().map_or_else(
            || "not connected".to_owned(),
            |u| {
                format!(
                    "{} (role {})",
                    u.name,
                    u.role.as_deref().unwrap_or("not reported")
                )
            },
        );
        format!(
            "OS account: {}\nSystmOne user: {systmone}\nrole map: {}{}\n{}",
            i.os_account.as_deref().unwrap_or("unknown"),
            i.role_map_source,
            i.role_map_problem
                .as_deref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default(),
            i.summary
        )
    })
}

pub async fn status(hub: &Hub, out: Out) -> Result<(), HubError> {
    // Asking who is logged in both proves the connection and names user and site.
    let probe = hub.verified_client_probe().await;
    let status = hub.systmone_status();
    let reachable = probe
        .as_ref()
        .map(|_| "reachable".to_owned())
        .unwrap_or_else(|e| e.to_string());
    print(
        out,
        &serde_json::json!({ "status": status, "probe": reachable }),
        |v| {
            format!(
                "SystmOne: {}\nqueue: {}\nAPIKey: {}\n{}",
                v["status"]["state"], v["status"]["queue"], v["status"]["key_source"], v["probe"]
            )
        },
    )?;
    probe
}

pub async fn search(hub: &Hub, out: Out, a: SearchArgs) -> Result<(), HubError> {
    let input = SearchInput {
        nhs_number: None,
        surname: a.surname,
        first_name: a.first_name,
        date_of_birth: a.dob,
        postcode: a.postcode,
        sex: a.sex,
        telephone: a.phone,
    };
    let outcome = hub.search_patients(&input).await?;
    print(out, &outcome, |o| {
        let mut lines: Vec<String> = o.notice.iter().cloned().collect();
        lines.extend(o.results.iter().map(|r| {
            format!(
                "{}\t{}\t{}\t{}\t{}",
                r.nhs_number_formatted.as_deref().unwrap_or("-"),
                r.name,
                r.date_of_birth.map(|d| d.to_string()).unwrap_or_default(),
                r.sex.as_deref().unwrap_or("-"),
                r.address
            )
        }));
        lines.join("\n")
    })
}

pub async fn lookup(hub: &Hub, out: Out, nhs: String) -> Result<(), HubError> {
    let outcome = hub
        .search_patients(&SearchInput {
            nhs_number: Some(nhs),
            ..Default::default()
        })
        .await?;
    if outcome.results.is_empty() {
        return Err(HubError::NoSuchPatient(outcome.notice.unwrap_or_default()));
    }
    print(out, &outcome, |o| {
        o.results
            .iter()
            .map(|r| {
                format!(
                    "{}\n{}\nborn {}\nsex {}\n{}",
                    r.nhs_number_formatted.as_deref().unwrap_or("-"),
                    r.name,
                    r.date_of_birth.map(|d| d.to_string()).unwrap_or_default(),
                    r.sex.as_deref().unwrap_or("-"),
                    r.address
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

pub async fn record(hub: &Hub, nhs: &str, filter: &[String]) -> Result<(), HubError> {
    let record = hub.patient_record(nhs, filter).await?;
    print(Out { json: true }, &record, |_| String::new())
}

pub async fn link(hub: &Hub, out: Out, nhs: &str, patient: i64) -> Result<(), HubError> {
    let linked = hub.confirm_link(PatientId(patient), nhs).await?;
    print(out, &linked, |p| {
        format!(
            "patient {} linked to NHS number {}",
            p.id,
            p.nhs_number
                .as_ref()
                .map(|n| n.formatted())
                .unwrap_or_default()
        )
    })
}

pub fn settings(session: &mut Session, cmd: SettingsCmd) -> Result<(), HubError> {
    if matches!(cmd, SettingsCmd::Set { .. } | SettingsCmd::Clear { .. }) {
        // Who is logged on to SystmOne decides whether a loosening change is allowed; when
        // SystmOne cannot say, only a change that makes the ward safer goes through.
        if let Err(e) = session.block_on(async |hub, _| hub.verified_client_probe().await) {
            tracing::info!(code = e.code(), "SystmOne could not say who is logged on");
        }
    }
    let hub = &session.hub;
    match cmd {
        SettingsCmd::Show => {
            // Scripts get `{name: value}`; people get one setting a line, in the window's order.
            let settings = hub.ward_settings()?;
            if session.out.json {
                let map: std::collections::BTreeMap<String, Option<String>> = settings
                    .into_iter()
                    .map(|s| (s.setting.to_string(), s.value))
                    .collect();
                return print(session.out, &map, |_| String::new());
            }
            print(session.out, &settings, |all| {
                all.iter()
                    .map(|s| {
                        format!(
                            "{}\t{}",
                            s.setting,
                            s.value.as_deref().unwrap_or("(default)")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        SettingsCmd::Set { setting, value } => {
            hub.set_ward_setting(setting, Some(&value))?;
            print(session.out, &setting, |s| format!("{s} set"))
        }
        SettingsCmd::Clear { setting } => {
            hub.set_ward_setting(setting, None)?;
            print(session.out, &setting, |s| format!("{s} cleared"))
        }
    }
}

pub fn notes(session: &mut Session, cmd: NotesCmd) -> Result<(), HubError> {
    let out = session.out;
    match cmd {
        NotesCmd::Add {
            nhs,
            text,
            template,
        } => session.block_on(async |hub, out| {
            let patient = hub.patient_for_nhs(&nhs).await?;
            let note = hub.create_note(&DraftInput {
                patient_id: patient.id.0,
                text,
                template_id: None,
                template_name: template,
            })?;
            print(out, &note, |n| {
                format!("draft note for patient {}\n{}", n.patient_id, n.id)
            })
        }),
        NotesCmd::Preview { id } => {
            let preview = session.hub.preview_note(NoteId(id))?;
            print(out, &preview, |p| {
                format!("{}\n-- sha256 {}", p.text, p.text_sha256)
            })
        }
        NotesCmd::Approve { id } => {
            // The command line has no clipboard: an approved note always goes to the outbox,
            // so it needs SystmOne's logged-on user with a verified role (asked first); an
            // approval nobody can be held to is refused.
            if let Err(e) = session.block_on(async |hub, _| hub.verified_client_probe().await) {
                // The approval below then says why the role cannot be verified.
                tracing::info!(code = e.code(), "SystmOne could not say who is logged on");
            }
            let preview = session.hub.preview_note(NoteId(id))?;
            let result = session.hub.approve_note(
                NoteId(id),
                Some(&preview.text_sha256),
                Some(FilingRoute::Api),
            )?;
            print(out, &result, |r| {
                format!("note {} {}", r.note.id, status_name(&r.note.status))
            })
        }
        NotesCmd::List { patient } => {
            let notes = session.hub.list_notes(patient, None)?;
            print(out, &notes, |ns| {
                if ns.is_empty() {
                    return "no notes".into();
                }
                ns.iter()
                    .map(|n| {
                        format!(
                            "{}\tpatient {}\t{}\t{}",
                            n.id,
                            n.patient_id,
                            status_name(&n.status),
                            n.reference
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
    }
}

pub fn outbox(session: &Session, all: bool) -> Result<(), HubError> {
    let entries = session.hub.outbox(all)?;
    print(session.out, &entries, |es| {
        if es.is_empty() {
            return "outbox empty".into();
        }
        es.iter()
            .map(|e| {
                format!(
                    "{}\tnote {}\t{}\t{}\teta {}",
                    e.entry.id,
                    e.entry.note_id,
                    e.state_kind,
                    e.status_text,
                    e.eta
                        .map(|d| d.format("%H:%M:%S").to_string())
                        .unwrap_or_else(|| "-".into())
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

pub async fn sync(hub: &Hub, out: Out, until_empty: bool, max_wait: u64) -> Result<(), HubError> {
    let wait = if until_empty {
        std::time::Duration::from_secs(max_wait)
    } else {
        std::time::Duration::ZERO
    };
    let started = std::time::Instant::now();
    // hubctl cannot know whether a clipboard note was pasted: such notes are asked about
    // in the window, never filed on a guess.
    hub.verified_client_probe().await?;
    hub.systmone_came_back("hubctl")?;
    // Progress and an ETA on standard error while the queue drains (`--until-empty` only:
    // a plain sync files what is due now and returns).
    let mut progress = until_empty.then(|| crate::progress::SyncProgress::start(hub));
    let report = match progress.as_mut() {
        Some(p) => p.follow(hub, hub.drain_outbox("hubctl", wait)).await?,
        None => hub.drain_outbox("hubctl", wait).await?,
    };
    let task_wait = wait
        .saturating_sub(started.elapsed())
        .max(std::time::Duration::from_secs(u64::from(until_empty)));
    let tasks = match progress.as_mut() {
        Some(p) => {
            let tasks = p
                .follow(hub, hub.sync_tasks_until_settled(task_wait))
                .await?;
            p.pulls_finished(hub);
            tasks
        }
        None => hub.sync_tasks_until_settled(task_wait).await?,
    };
    if let Some(p) = progress {
        p.finish("done");
    }
    let left = hub.outbox(false)?.len();
    let summary = serde_json::json!({
        "tasks": tasks,
        "filed": report.filed.len(),
        "parked": report.parked.iter().map(|(id, why)| serde_json::json!({"outbox_id": id, "reason": why})).collect::<Vec<_>>(),
        "unavailable": report.unavailable,
        "still_pending": left,
    });
    print(out, &summary, |s| {
        format!("notes: filed {}, parked {}, still pending {}{}\ntasks: {} operations, {} failed, {} pushes pending", s["filed"], s["parked"].as_array().map_or(0, Vec::len), s["still_pending"], s["unavailable"].as_str().map(|u| format!(" (SystmOne unavailable: {u})")).unwrap_or_default(), s["tasks"]["operations"], s["tasks"]["failures"], s["tasks"]["pending_pushes"])
    })?;
    if let Some(why) = report.unavailable {
        return Err(HubError::SystmOneUnavailable(why));
    }
    if !report.parked.is_empty() {
        return Err(HubError::BadRequest(format!(
            "{} entr{} parked: see `hubctl outbox`",
            report.parked.len(),
            if report.parked.len() == 1 {
                "y is"
            } else {
                "ies are"
            }
        )));
    }
    if until_empty && left > 0 {
        return Err(HubError::BadRequest(format!(
            "{left} entries still waiting after {max_wait} s"
        )));
    }
    if until_empty && tasks.pending_pushes > 0 {
        return Err(HubError::BadRequest(format!(
            "{} task changes still waiting to reach SystmOne",
            tasks.pending_pushes
        )));
    }
    Ok(())
}

/// Why `hubctl api-key set KEY` is refused (the key was not saved).
pub(crate) const API_KEY_ARGUMENT_REFUSED: &str = "hubctl api-key set does not take the key as an \
     argument, and did not save it: an argument stays in the shell history and is visible to \
     other users in the process list. Run `hubctl api-key set` and type the key at the prompt \
     (it is not shown), or pipe it in: `hubctl api-key set < key.txt`";

/// The APIKey from standard input: at a terminal, a prompt that does not echo what is
/// typed; from a pipe or file, its first line. Wiped from memory when dropped.
fn read_api_key() -> Result<zeroize::Zeroizing<String>, HubError> {
    use std::io::{BufRead, IsTerminal, Read};
    let unreadable =
        |e: std::io::Error| HubError::BadRequest(format!("could not read the APIKey: {e}"));
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("SystmOne APIKey (not shown): ")
            .map(zeroize::Zeroizing::new)
            .map_err(unreadable);
    }
    let mut line = zeroize::Zeroizing::new(String::new());
    // TPP's keys are short; 1 KiB bounds a pipe of something else entirely.
    std::io::BufReader::new(std::io::stdin().take(1024))
        .read_line(&mut line)
        .map_err(unreadable)?;
    Ok(line)
}

pub fn api_key(
    open_session: impl FnOnce() -> Result<Session, HubError>,
    cmd: ApiKeyCmd,
) -> Result<(), HubError> {
    match cmd {
        ApiKeyCmd::Set { key: Some(_) } => {
            Err(HubError::BadRequest(API_KEY_ARGUMENT_REFUSED.into()))
        }
        ApiKeyCmd::Set { key: None } => {
            let key = read_api_key()?;
            let session = open_session()?;
            session.hub.set_api_key(&key)?;
            print(session.out, &"saved", |_| {
                "SystmOne APIKey saved in this PC's keychain".into()
            })
        }
        ApiKeyCmd::Clear => {
            let session = open_session()?;
            let removed = session.hub.clear_api_key()?;
            print(session.out, &removed, |r| {
                if *r {
                    "SystmOne APIKey removed from the keychain".into()
                } else {
                    "no SystmOne APIKey was stored".into()
                }
            })
        }
    }
}

/// `hubctl conformance`: the probe (reads, then a person's explicit consent, then the test
/// writes, read-backs and clean-up), or `--apply` of a profile an earlier run wrote.
pub fn conformance(session: &mut Session, args: ConformanceArgs) -> Result<(), HubError> {
    use hub::conformance::{Consent, ObservedProfile, ProbeOptions, ProbeTarget};
    use std::io::IsTerminal;

    if let Some(file) = &args.apply {
        let text = std::fs::read_to_string(file)
            .map_err(|e| HubError::BadRequest(format!("cannot read {}: {e}", file.display())))?;
        let profile = ObservedProfile::from_json(&text)
            .map_err(|e| HubError::BadRequest(format!("{}: {e}", file.display())))?;
        session.hub.apply_observed_profile(&profile)?;
        return print(session.out, &profile, |p| {
            let when = if p.observed_at.is_empty() {
                "(time not given)"
            } else {
                p.observed_at.as_str()
            };
            let mut lines = vec![format!(
                "applied the SystmOne profile observed {when} at {} (audited)",
                p.site.as_deref().unwrap_or("an unnamed site")
            )];
            lines.extend(
                p.behaviours()
                    .into_iter()
                    .map(|(field, value)| format!("  {field:<24} {value}")),
            );
            lines.join("\n")
        });
    }
    let Some(nhs) = args.patient.clone() else {
        return Err(HubError::BadRequest(
            "give the test patient with --patient NHS, or a profile with --apply FILE".into(),
        ));
    };
    let out = session.out;
    let target: ProbeTarget =
        session.block_on(async |hub, _| hub.conformance_target(&nhs).await)?;
    // A person reads this before anything is written (on stderr when stdout is JSON).
    let shown = describe_target(&target, args.assign.as_deref());
    let shown = terminal_text(&shown);
    if out.json {
        eprintln!("{shown}");
    } else {
        emit(&shown)?;
    }
    let interactive = std::io::stdin().is_terminal();
    let mut consent = Consent {
        writes_confirmed: args.yes_i_am_on_tpp_demo,
        not_obviously_test_patient_confirmed: args.confirm_test_patient,
    };
    if !consent.writes_confirmed && interactive {
        consent.writes_confirmed = ask(
            "Is this TPP's Demo system (or the simulator), and may the probe write the test entries above? [y/N] ",
        )?
        .eq_ignore_ascii_case("y");
    }
    if consent.writes_confirmed
        && !target.looks_like_test_patient
        && !consent.not_obviously_test_patient_confirmed
        && interactive
    {
        let typed = ask("This record does NOT look like a test patient. Type its NHS number to confirm it is one: ")?;
        let digits: String = typed.chars().filter(char::is_ascii_digit).collect();
        consent.not_obviously_test_patient_confirmed =
            digits == target.patient.nhs_number.replace(' ', "");
    }
    let options = ProbeOptions {
        task_type: args.task_type.clone(),
        assignee: args.assign.clone(),
    };
    let report =
        session.block_on(async |hub, _| hub.conformance_probe(&target, consent, &options).await)?;
    if let Some(file) = &args.out {
        std::fs::write(file, report.profile.to_json()? + "\n")
            .map_err(|e| HubError::BadRequest(format!("cannot write {}: {e}", file.display())))?;
    }
    print(
        out,
        &serde_json::json!({ "target": target, "report": report }),
        |_| {
            let mut text = report.to_text();
            if let Some(file) = &args.out {
                text.push_str(&format!("\nProfile written to {}.", file.display()));
            }
            text
        },
    )?;
    if report.passed {
        Ok(())
    } else {
        Err(HubError::BadRequest(format!(
            "the conformance probe did not pass (see the report above; its entries carry {})",
            report.reference
        )))
    }
}

/// What the probe would write to, for the person who must confirm it.
fn describe_target(target: &hub::conformance::ProbeTarget, assign: Option<&str>) -> String {
    let p = &target.patient;
    let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "(not reported)".into());
    let mut lines = vec![
        format!(
            "SystmOne ({})",
            match target.peer {
                hub::conformance::PeerKind::Simulator => "the Inpatient Hub simulator",
                _ => "a real SystmOne client",
            }
        ),
        format!("  Organisation:   {}", or_unknown(&target.organisation)),
        format!(
            "  Site:           {}{}",
            or_unknown(&target.site),
            target
                .site_id
                .as_ref()
                .map(|id| format!(" (ID {id})"))
                .unwrap_or_default()
        ),
        format!("  Logged in:      {}", or_unknown(&target.user)),
        format!(
            "  Functions:      {}",
            target.supported_functions.join(", ")
        ),
    ];
    if !target.missing_functions.is_empty() {
        lines.push(format!(
            "  NOT OFFERED:    {} (the probe will not write)",
            target.missing_functions.join(", ")
        ));
    }
    lines.extend([
        "Patient (the probe writes to this record):".to_owned(),
        format!("  NHS number:     {}", p.nhs_number),
        format!("  Name:           {}", p.name),
        format!(
            "  Date of birth:  {}",
            p.date_of_birth
                .map(|d| d.to_string())
                .unwrap_or_else(|| "(not reported)".into())
        ),
        format!(
            "  Sex:            {}",
            p.sex.as_deref().unwrap_or("(not reported)")
        ),
        format!(
            "  Test patient:   {} ({})",
            if target.looks_like_test_patient {
                "looks like one"
            } else {
                "DOES NOT LOOK LIKE ONE"
            },
            target.test_patient_reasons.join("; ")
        ),
    ]);
    if p.deceased {
        lines.push("  SystmOne records a date of death for this patient.".to_owned());
    }
    lines.push(format!(
        "The probe will file a 4-line test note and a task (due tomorrow 14:37, assigned to {}), \
         send Status=Completed on the task, then delete both (Reason \"{}\").",
        assign
            .map(str::to_owned)
            .or_else(|| target.user_name.as_ref().map(|u| format!("user:{u}")))
            .unwrap_or_else(|| "(give --assign)".into()),
        hub::conformance::DELETE_REASON
    ));
    lines.join("\n")
}

/// One answer typed at the terminal.
fn ask(question: &str) -> Result<String, HubError> {
    use std::io::Write;
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question}");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| HubError::BadRequest(format!("could not read the answer: {e}")))?;
    Ok(answer.trim().to_owned())
}

/// `hubctl db-key`: the database key's status, its recovery from IT's escrow copy (read from
/// standard input), and its export for escrow. Opens no session, so it works when the key is lost.
pub fn db_key(out: Out, cmd: crate::DbKeyCmd, data_dir: &Path) -> Result<(), HubError> {
    use hub::db_key;
    let db_path = hub::config::database_path(data_dir);
    match cmd {
        crate::DbKeyCmd::Status => {
            let status = db_key::key_status(&db_path)?;
            print(out, &status, |s| {
                let keychain = match s.keychain_has_key {
                    Some(true) => "holds a database key",
                    Some(false) => "holds no database key",
                    None => "is not reachable",
                };
                let mut lines = vec![
                    format!("database: {} ({})", s.database.display(), s.database_file),
                    format!("this account's keychain {keychain}"),
                ];
                if s.environment_override {
                    lines.push(format!(
                        "{} is set and is used instead of the keychain",
                        db_key::DB_KEY_ENV
                    ));
                }
                match s.key_opens_database {
                    Some(true) => lines.push("the key opens the database".to_owned()),
                    Some(false) => lines.push("the key does NOT open the database".to_owned()),
                    None => {}
                }
                if let Some(problem) = &s.problem {
                    lines.push(problem.clone());
                }
                lines.join("\n")
            })
        }
        crate::DbKeyCmd::Set => {
            use std::io::Read;
            // Wiped when dropped: the key's text is not left behind in freed memory.
            let mut raw = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .take(1024)
                .read_to_string(&mut raw)
                .map_err(|e| HubError::BadRequest(format!("could not read standard input: {e}")))?;
            db_key::restore_database_key(&db_path, &raw)?;
            print(out, &"saved", |_| {
                "the key opens the database and is saved in this account's keychain".into()
            })
        }
        crate::DbKeyCmd::Export => {
            let key = db_key::export_database_key()?;
            eprintln!(
                "hubctl: this is the key to the ward database: keep it only in the trust's escrow"
            );
            emit(key.expose_hex().as_str())
        }
    }
}

/// `hubctl logs`: where the logs are; with `--tail`/`--follow`, the newest file's end.
pub fn logs(
    out: Out,
    tail: Option<usize>,
    follow: bool,
    program: hub::logging::LogProgram,
) -> Result<(), HubError> {
    use hub::logging::{self, LogProgram};
    let logging_error = |e: logging::LoggingError| HubError::BadRequest(e.to_string());
    let dir = logging::log_dir().map_err(logging_error)?;
    if tail.is_none() && !follow {
        #[derive(Serialize)]
        struct LogLocation {
            dir: std::path::PathBuf,
            app_newest: Option<std::path::PathBuf>,
            hubctl_newest: Option<std::path::PathBuf>,
            retained_daily_files: usize,
        }
        let newest = |p: LogProgram| logging::newest_log_file(&dir, p).ok().flatten();
        let location = LogLocation {
            app_newest: newest(LogProgram::App),
            hubctl_newest: newest(LogProgram::Hubctl),
            dir: dir.clone(),
            retained_daily_files: logging::RETAINED_DAILY_FILES,
        };
        return print(out, &location, |l| {
            let shown = |p: &Option<std::path::PathBuf>| {
                p.as_ref()
                    .map_or_else(|| "none yet".to_owned(), |p| p.display().to_string())
            };
            format!(
                "logs: {}\nnewest app log: {}\nnewest hubctl log: {}\n(one file a day per program; the last {} days are kept)",
                l.dir.display(),
                shown(&l.app_newest),
                shown(&l.hubctl_newest),
                l.retained_daily_files
            )
        });
    }
    let newest = logging::newest_log_file(&dir, program)
        .map_err(logging_error)?
        .ok_or_else(|| {
            logging_error(logging::LoggingError::NoLogFile {
                program: program.file_prefix(),
                dir: dir.display().to_string(),
            })
        })?;
    // Where following starts is taken before the tail is read: a line appended while the
    // tail is printed is then followed, never skipped (regression: it was measured after, so
    // a line written in that moment was lost; at worst such a line now shows twice).
    let follow_from = std::fs::metadata(&newest).map(|m| m.len()).unwrap_or(0);
    // `--follow` alone starts from the last few lines, as `tail -f` does.
    let lines = logging::last_lines(&newest, tail.unwrap_or(10)).map_err(logging_error)?;
    if !lines.is_empty() {
        emit(&terminal_text(&lines.join("\n")))?;
    }
    if follow {
        follow_log(&dir, program, newest, follow_from)?;
    }
    Ok(())
}

/// Prints what is appended to the newest log file, checking once a second (a log grows by
/// a few lines a minute: no need for file-change notifications), and moves on to the next
/// day's file when it appears. Ends when the reader closes the pipe (`emit` exits quietly)
/// or on Ctrl-C.
fn follow_log(
    dir: &Path,
    program: hub::logging::LogProgram,
    mut path: std::path::PathBuf,
    mut position: u64,
) -> Result<(), HubError> {
    use std::io::{Read, Seek, SeekFrom};
    let read_error = |path: &Path, e: std::io::Error| {
        HubError::BadRequest(format!("could not read {}: {e}", path.display()))
    };
    // Bytes of a line still being written: printed once its newline arrives.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let length = std::fs::metadata(&path)
            .map_err(|e| read_error(&path, e))?
            .len();
        if length < position {
            // Truncated or replaced: start again from its beginning.
            position = 0;
            partial.clear();
        }
        if length > position {
            let mut file = std::fs::File::open(&path).map_err(|e| read_error(&path, e))?;
            file.seek(SeekFrom::Start(position))
                .map_err(|e| read_error(&path, e))?;
            let mut added = Vec::new();
            file.take(length - position)
                .read_to_end(&mut added)
                .map_err(|e| read_error(&path, e))?;
            position += added.len() as u64;
            partial.extend_from_slice(&added);
            if let Some(end) = partial.iter().rposition(|&b| b == b'\n') {
                let complete: Vec<u8> = partial.drain(..=end).collect();
                let text = String::from_utf8_lossy(&complete);
                emit(&terminal_text(text.trim_end_matches('\n')))?;
            }
            continue;
        }
        // Nothing new here: a new day's file takes over at midnight (UTC).
        if let Ok(Some(newest)) = hub::logging::newest_log_file(dir, program) {
            if newest != path {
                path = newest;
                position = 0;
                partial.clear();
            }
        }
    }
}

#[cfg(test)]
mod terminal_output_tests {
    use super::*;

    /// Regression (issue 11): a name from SystmOne holding an escape sequence reached the
    /// terminal raw and could clear the screen or rewrite what was shown.
    #[test]
    fn control_and_direction_characters_are_escaped_in_text_output() {
        let name = "Ann\u{1b}[2JOther\r\u{7}\u{7f}\u{9b}31m\u{202e}evil";
        let shown = terminal_text(name);
        assert_eq!(
            shown,
            "Ann\\u{1b}[2JOther\\u{d}\\u{7}\\u{7f}\\u{9b}31m\\u{202e}evil"
        );
        assert!(!shown.chars().any(drives_terminal));
        // The output's own layout and ordinary text are untouched.
        assert_eq!(
            terminal_text("Bed 1\tAnn Ō'Brien\nBed 2"),
            "Bed 1\tAnn Ō'Brien\nBed 2"
        );
    }

    /// JSON stays JSON, and the same value: only characters serde_json leaves raw are
    /// turned into `\uXXXX` escapes.
    #[test]
    fn json_output_escapes_what_serde_leaves_raw_and_parses_to_the_same_value() {
        let value = serde_json::json!({ "name": "Ann\u{1b}[2J\u{7f}\u{9b}\u{202e}x", "n": 1 });
        let json = serde_json::to_string_pretty(&value).unwrap();
        let shown = terminal_json(&json);
        assert!(!shown.chars().any(drives_terminal), "{shown}");
        assert!(shown.contains("\\u001b[2J"), "{shown}");
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, value);
    }
}
