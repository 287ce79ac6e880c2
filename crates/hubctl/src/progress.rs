//! Progress for commands that take a while (`sync --until-empty`, `backup`, `restore`).
//!
//! On a terminal: an `indicatif` bar with an ETA, redrawn in place. Anywhere else (a log, a
//! pipe, CI): plain lines, one per tenth of the work or every few seconds, so a log shows
//! the command moving without filling up. Always on standard error, so `--json` output on
//! standard output stays clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// The longest a plain-line log goes without a line while work moves.
const PLAIN_LINE_EVERY: Duration = Duration::from_secs(5);

/// What the counts are of.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    /// Database pages (4 KiB each).
    Pages,
    Bytes,
    /// Requests to SystmOne (notes filed, task operations).
    Items,
}

enum Display {
    Bar(ProgressBar),
    Lines {
        last_line_at: Option<Instant>,
        last_tenth: Option<u64>,
    },
}

pub(crate) struct Progress {
    label: &'static str,
    unit: Unit,
    started: Instant,
    display: Display,
    done: u64,
    total: u64,
}

impl Progress {
    /// A bar when standard error is a terminal, plain lines otherwise.
    pub(crate) fn new(label: &'static str, unit: Unit) -> Progress {
        let display = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let counts = match unit {
                Unit::Bytes => "{bytes}/{total_bytes}",
                Unit::Pages => "{pos}/{len} pages",
                Unit::Items => "{pos}/{len}",
            };
            let template =
                format!("{{prefix}} [{{bar:30}}] {counts} ({{percent}}%) {{msg}} ETA {{eta}}");
            // The template is fixed text; should indicatif ever refuse it, the default
            // style still shows progress.
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(format!("hubctl {label}"));
            Display::Bar(bar)
        } else {
            Display::Lines {
                last_line_at: None,
                last_tenth: None,
            }
        };
        Progress {
            label,
            unit,
            started: Instant::now(),
            display,
            done: 0,
            total: 0,
        }
    }

    /// `done` of `total` finished; `eta` when the caller knows better than the rate so far
    /// (e.g. SystmOne's pacing of one request a second).
    pub(crate) fn update(&mut self, done: u64, total: u64, eta: Option<Duration>) {
        self.done = done.min(total);
        self.total = total;
        match &mut self.display {
            Display::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(self.done);
                if let Some(eta) = eta {
                    bar.set_message(format!("(about {} left)", seconds(eta)));
                }
            }
            Display::Lines {
                last_line_at,
                last_tenth,
            } => {
                let tenth = (self.done * 10).checked_div(total).unwrap_or(0);
                let due = match (*last_line_at, *last_tenth) {
                    (None, _) | (_, None) => true,
                    (Some(at), Some(previous)) => {
                        tenth > previous || (at.elapsed() >= PLAIN_LINE_EVERY && self.done < total)
                    }
                };
                if due {
                    *last_line_at = Some(Instant::now());
                    *last_tenth = Some(tenth);
                    let eta = eta.or_else(|| rate_eta(self.started, self.done, total));
                    eprintln!(
                        "{}",
                        plain_line(self.label, self.unit, self.done, total, eta)
                    );
                }
            }
        }
    }

    /// The work is over: the bar is cleared away, or a last plain line says how it ended.
    pub(crate) fn finish(self, outcome: &str) {
        match self.display {
            Display::Bar(bar) => bar.finish_and_clear(),
            Display::Lines { .. } => eprintln!(
                "hubctl {}: {outcome} after {}",
                self.label,
                seconds(self.started.elapsed())
            ),
        }
    }
}

/// TPP's pacing: one request a second across the PC, plus the ledger's margin.
const SECONDS_PER_REQUEST: f64 = 1.05;

/// What `hubctl sync --until-empty` still has to do, as the hub's views show it.
struct SyncBacklog {
    /// Notes waiting to be filed (pending outbox entries).
    notes: u64,
    /// Ward tasks waiting to be created in SystmOne.
    task_pushes: u64,
    /// When the outbox expects its last entry filed, if later than the pacing alone says.
    outbox_eta: Option<Duration>,
}

fn sync_backlog(hub: &hub::Hub) -> Option<SyncBacklog> {
    use domain::task_link::LinkState;
    let now = chrono::Local::now();
    let outbox = hub.outbox(false).ok()?;
    let pending: Vec<_> = outbox.iter().filter(|v| v.eta.is_some()).collect();
    let outbox_eta = pending
        .iter()
        .filter_map(|v| v.eta)
        .max()
        .and_then(|eta| (eta - now).to_std().ok());
    let task_pushes = hub
        .task_sync_view()
        .ok()?
        .links
        .iter()
        .filter(|l| {
            matches!(
                l.state,
                LinkState::CreatePending | LinkState::CreateInFlight
            )
        })
        .count();
    Some(SyncBacklog {
        notes: pending.len() as u64,
        task_pushes: task_pushes as u64,
        outbox_eta,
    })
}

/// Progress for `hubctl sync --until-empty`: the total is the notes and task operations
/// queued at the start (each linked patient's pull counts as one operation), and it moves
/// as the hub's outbox and task-sync views shrink, checked once a second while the work runs.
pub(crate) struct SyncProgress {
    progress: Progress,
    total: u64,
    /// Pulls of linked patients: not visible in any view, so counted done when the task
    /// phase ends.
    pulls: u64,
    pulls_done: bool,
}

impl SyncProgress {
    pub(crate) fn start(hub: &hub::Hub) -> SyncProgress {
        let backlog = sync_backlog(hub);
        let pulls = hub.task_sync_view().map_or(0, |v| v.patients.len() as u64);
        let total = backlog.map_or(0, |b| b.notes + b.task_pushes) + pulls;
        let mut progress = Progress::new("sync", Unit::Items);
        let eta = Duration::try_from_secs_f64(total as f64 * SECONDS_PER_REQUEST).ok();
        progress.update(0, total, eta);
        SyncProgress {
            progress,
            total,
            pulls,
            pulls_done: false,
        }
    }

    fn refresh(&mut self, hub: &hub::Hub) {
        let Some(backlog) = sync_backlog(hub) else {
            return;
        };
        let pulls_left = if self.pulls_done { 0 } else { self.pulls };
        let left = backlog.notes + backlog.task_pushes + pulls_left;
        // New work queued meanwhile (the window is open) grows the total, never the reverse.
        self.total = self.total.max(left);
        let paced = Duration::try_from_secs_f64(left as f64 * SECONDS_PER_REQUEST).ok();
        let eta = match (paced, backlog.outbox_eta) {
            (Some(p), Some(o)) => Some(p.max(o)),
            (p, o) => p.or(o),
        };
        self.progress.update(self.total - left, self.total, eta);
    }

    /// Runs one phase of the sync, following the backlog once a second.
    pub(crate) async fn follow<T>(
        &mut self,
        hub: &hub::Hub,
        work: impl std::future::Future<Output = T>,
    ) -> T {
        let mut work = std::pin::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                output = &mut work => {
                    self.refresh(hub);
                    return output;
                }
                _ = tick.tick() => self.refresh(hub),
            }
        }
    }

    /// The task phase is over: every linked patient has been pulled or the time is up.
    pub(crate) fn pulls_finished(&mut self, hub: &hub::Hub) {
        self.pulls_done = true;
        self.refresh(hub);
    }

    pub(crate) fn finish(self, outcome: &str) {
        self.progress.finish(outcome);
    }
}

/// The remaining time at the rate so far (none until something is done).
fn rate_eta(started: Instant, done: u64, total: u64) -> Option<Duration> {
    if done == 0 || done >= total {
        return None;
    }
    let per_unit = started.elapsed().as_secs_f64() / done as f64;
    Duration::try_from_secs_f64(per_unit * (total - done) as f64).ok()
}

fn seconds(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 120 {
        format!("{} min", secs.div_ceil(60))
    } else {
        format!(
            "{} s",
            secs.max(u64::from(d.subsec_millis() > 0 || secs == 0))
        )
    }
}

/// One plain progress line, e.g. `hubctl backup: 512/2048 pages (25%), about 3 s left`.
fn plain_line(label: &str, unit: Unit, done: u64, total: u64, eta: Option<Duration>) -> String {
    let percent = (done * 100).checked_div(total).unwrap_or(100);
    let counts = match unit {
        Unit::Pages => format!("{done}/{total} pages"),
        Unit::Bytes => format!("{}/{} MiB", mib(done), mib(total)),
        Unit::Items => format!("{done}/{total}"),
    };
    let left = eta
        .filter(|_| done < total)
        .map(|eta| format!(", about {} left", seconds(eta)))
        .unwrap_or_default();
    format!("hubctl {label}: {counts} ({percent}%){left}")
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_how_far_and_how_long() {
        assert_eq!(
            plain_line(
                "backup",
                Unit::Pages,
                512,
                2048,
                Some(Duration::from_secs(3))
            ),
            "hubctl backup: 512/2048 pages (25%), about 3 s left"
        );
        assert_eq!(
            plain_line("sync", Unit::Items, 10, 10, Some(Duration::from_secs(3))),
            "hubctl sync: 10/10 (100%)"
        );
        assert_eq!(
            plain_line("restore", Unit::Bytes, 1 << 20, 4 << 20, None),
            "hubctl restore: 1.0/4.0 MiB (25%)"
        );
        assert_eq!(
            plain_line("sync", Unit::Items, 0, 0, None),
            "hubctl sync: 0/0 (100%)"
        );
        assert_eq!(seconds(Duration::from_secs(300)), "5 min");
        assert_eq!(seconds(Duration::from_millis(200)), "1 s");
    }

    #[test]
    fn the_rate_so_far_gives_the_eta() {
        let started = Instant::now() - Duration::from_secs(10);
        let eta = rate_eta(started, 10, 30).unwrap();
        assert!((19..=21).contains(&eta.as_secs()), "{eta:?}");
        assert_eq!(rate_eta(started, 0, 30), None);
        assert_eq!(rate_eta(started, 30, 30), None);
    }
}
