// The Inpatient Hub window. Parses the command line, opens the core, hands it to the shell.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use clap::Parser;
use hub::logging::{LogProgram, StderrCopy};
use hub::{config, DatabaseEnvironment, Hub};

mod shell;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "inpatient-hub",
    version,
    about = "Inpatient Hub: ward tasks and case notes beside SystmOne"
)]
struct Args {
    /// Where the ward database lives (default: the OS's per-user local data directory; in
    /// demo mode its `demo` subfolder, never the ward's own).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Demo mode: run against the bundled SystmOne simulator with fictitious patients. The window shows a DEMO
    /// banner on every screen. Without it the app never treats a simulator as SystmOne.
    #[arg(long, env = "INPATIENT_HUB_DEMO")]
    demo: bool,
    /// The SystmOne client's integration socket.
    #[arg(long, env = config::SYSTMONE_ENV, default_value = config::DEFAULT_SYSTMONE_ADDR)]
    systmone: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Daily files in the OS's log folder for the ward's IT team, and stderr; kept until the
    // window closes so the last lines reach the file.
    let _logging = hub::logging::init(LogProgram::App, StderrCopy::Always);
    let data_dir = match config::resolve_data_dir(args.data_dir, args.demo) {
        Ok(dir) => dir,
        Err(e) => return fail(&e.to_string()),
    };
    let systmone = match config::parse_systmone_addr(&args.systmone) {
        Ok(addr) => addr,
        Err(e) => return fail(&e.to_string()),
    };
    // A database that cannot be opened is reported in the window (staff start the app by
    // double-clicking; there is no terminal to read), and on stderr for IT. The shell opens it
    // only once this process is the database's one window (a second launch never opens it).
    let environment = DatabaseEnvironment::from_demo_flag(args.demo);
    let hub_dir = data_dir.clone();
    let open_hub = move || {
        let hub = Hub::open(&hub_dir, environment);
        if let Err(e) = &hub {
            tracing::error!(
                code = e.code(),
                "the ward database could not be opened: {e}"
            );
        }
        hub
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %data_dir.display(),
        demo = args.demo,
        "starting Inpatient Hub"
    );
    match shell::run(&data_dir, open_hub, systmone) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("the window could not start: {e}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("inpatient-hub: {message}");
    ExitCode::FAILURE
}
