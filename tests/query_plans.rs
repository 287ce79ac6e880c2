//! Every view's query stays on an index however big the store grows (issue 13 item 8).
//!
//! SQLite plans a statement without looking at the data (no `ANALYZE` is ever run), so the
//! plan on an empty store is the plan on a ten-year one. `Store::explain` returns the plan of
//! the exact SQL each view runs; a bare `SCAN` of a table that grows with the years means the
//! view reads all of it (the board once scanned 1,000,000 tasks, one record's audit 4,860,000
//! rows), and a temporary sort in a paged view means every match is read before the page is cut.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use store::{DatabaseKey, Store, ViewQuery};

/// The tables that grow for ever, and the aliases the store's queries give them.
const BIG_TABLES: &[&str] = &[
    // Every patient ever admitted: 20,000 after ten years, ~30 on the ward.
    "patients",
    "p",
    "tasks",
    "t",
    "audit",
    "notes",
    "n",
    "outbox",
    "o",
    "task_links",
    "l",
];

/// Views that show one page of a long history: they must read rows in display order and
/// stop at the page's end, never sort everything first.
const PAGED: &[ViewQuery] = &[
    ViewQuery::RecordAudit,
    ViewQuery::EntityAudit,
    ViewQuery::AuditPage,
    ViewQuery::OutboxHistory,
];

fn full_scans(plan: &[String]) -> Vec<&String> {
    plan.iter()
        .filter(|step| {
            let mut words = step.split_whitespace();
            words.next() == Some("SCAN")
                && words.next().is_some_and(|table| BIG_TABLES.contains(&table))
                // "SCAN o USING INDEX outbox_unfinished": a walk over a small partial index
                // (or a covering index, in order, cut by LIMIT), not over the table.
                && !step.contains(" USING ")
        })
        .collect()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let key = DatabaseKey::from_hex(&"3c".repeat(32)).unwrap();
    let store = Store::open(&dir.path().join("hub.sqlite"), &key).unwrap();
    (dir, store)
}

#[test]
fn no_view_scans_a_table_that_grows_with_the_years() {
    let (_dir, store) = store();
    let mut failures = Vec::new();
    for view in ViewQuery::ALL {
        let plan = store.explain(view).unwrap();
        // Shown with --nocapture: the plans are the evidence this test rests on.
        eprintln!("{view:?}: {plan:?}");
        assert!(!plan.is_empty(), "{view:?} has no plan");
        let scans = full_scans(&plan);
        if !scans.is_empty() {
            failures.push(format!("{view:?} scans {scans:?} (plan: {plan:?})"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn paged_views_read_in_order_and_stop_at_the_page_end() {
    let (_dir, store) = store();
    for view in PAGED {
        let plan = store.explain(*view).unwrap();
        assert!(
            !plan.iter().any(|step| step.contains("TEMP B-TREE")),
            "{view:?} sorts every match before cutting the page: {plan:?}"
        );
    }
}

#[test]
fn the_views_use_the_indexes_made_for_them() {
    let (_dir, store) = store();
    let uses = |view: ViewQuery, index: &str| {
        let plan = store.explain(view).unwrap();
        assert!(
            plan.iter().any(|step| step.contains(index)),
            "{view:?} should use {index}: {plan:?}"
        );
    };
    uses(ViewQuery::BoardOpenTasks, "tasks_open_by_patient");
    uses(ViewQuery::WardPatients, "patients_on_ward");
    uses(ViewQuery::RecordAudit, "audit_by_entity");
    uses(ViewQuery::EntityAudit, "audit_by_entity_newest");
    uses(ViewQuery::PatientNotes, "notes_by_patient");
    uses(ViewQuery::OutboxUnfinished, "outbox_unfinished");
}

/// The check itself: a plan with a bare scan of a big table is caught.
#[test]
fn a_full_scan_is_recognised() {
    let scan = vec!["SCAN t".to_owned()];
    assert_eq!(full_scans(&scan).len(), 1);
    let indexed = vec![
        "SCAN o USING INDEX outbox_unfinished".to_owned(),
        "SEARCH t USING INDEX tasks_open_by_patient (patient_id=?)".to_owned(),
        "SCAN settings".to_owned(),
    ];
    assert!(full_scans(&indexed).is_empty());
}
