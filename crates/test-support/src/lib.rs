//! What tests share and the app never links: in-memory SystmOne stand-ins for the case-note
//! worker ([`notes_fake`]) and task sync ([`tasks_fake`]), with scripted and random faults.

pub mod notes_fake;
pub mod planner_model;
pub mod tasks_fake;
