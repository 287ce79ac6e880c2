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
use std::path::{Path, PathBuf};

fn print<T: Serialize>(
    out: Out,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> Result<(), HubError> {
    if out.json {
        let json =
            serde_json::to_string_pretty(value).map_err(|e| HubError::BadRequest(e.to_string()))?;
        emit(&json)
    } else {
        emit(&text(value))
    }
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

pub fn sim(args: simulator::cli::SimArgs, data_dir: &Path) -> Result<(), HubError> {
    let config = args
        .into_config(data_dir)
        .map_err(|e| HubError::BadRequest(e.to_string()))?;
    crate::new_runtime()?
        .block_on(simulator::run_server(config))
        .map_err(|e| HubError::BadRequest(e.to_string()))
}

pub fn simctl(
    command: simulator::cli::SimCtlCommand,
    sim_dir: Option<PathBuf>,
    data_dir: &Path,
) -> Result<(), HubError> {
    let dir = simulator::cli::default_sim_data_dir(sim_dir, data_dir);
    let out =
        simulator::cli::run_ctl(command, &dir).map_err(|e| HubError::BadRequest(e.to_string()))?;
    emit(&out)?;
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
                format!(
                    "{}\t{}\t{}\t{} {}\t{}",
                    e.at.format("%Y-%m-%d %H:%M:%S"),
                    e.actor,
                    e.action,
                    e.entity,
                    e.entity_id.as_deref().unwrap_or("-"),
                    e.detail
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

pub fn user(session: &Session, name: &str) -> Result<(), HubError> {
    let staff = session.hub.set_current_user(name)?;
    print(session.out, &staff.as_str(), |s| {
        format!("current user: {s}")
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

pub fn settings(session: &Session, cmd: SettingsCmd) -> Result<(), HubError> {
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
            // The command line has no clipboard: an approved note always goes to the outbox.
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
    let report = hub.drain_outbox("hubctl", wait).await?;
    let task_wait = wait
        .saturating_sub(started.elapsed())
        .max(std::time::Duration::from_secs(u64::from(until_empty)));
    let tasks = hub.sync_tasks_until_settled(task_wait).await?;
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

pub fn api_key(session: &Session, cmd: ApiKeyCmd) -> Result<(), HubError> {
    match cmd {
        ApiKeyCmd::Set { key } => {
            session.hub.set_api_key(&key)?;
            print(session.out, &"saved", |_| {
                "SystmOne APIKey saved in this PC's keychain".into()
            })
        }
        ApiKeyCmd::Clear => {
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
