// The Inpatient Hub window. Parses the command line, opens the core, hands it to the shell.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use clap::Parser;
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
    init_logging();
    let args = Args::parse();
    let data_dir = match config::resolve_data_dir(args.data_dir, args.demo) {
        Ok(dir) => dir,
        Err(e) => return fail(&e.to_string()),
    };
    let systmone = match config::parse_systmone_addr(&args.systmone) {
        Ok(addr) => addr,
        Err(e) => return fail(&e.to_string()),
    };
    // A database that cannot be opened is reported in the window (staff start the app by
    // double-clicking; there is no terminal to read), and on stderr for IT.
    let hub = Hub::open(&data_dir, DatabaseEnvironment::from_demo_flag(args.demo));
    if let Err(e) = &hub {
        tracing::error!(
            code = e.code(),
            "the ward database could not be opened: {e}"
        );
    }
    tracing::info!(data_dir = %data_dir.display(), demo = args.demo, "starting Inpatient Hub");
    match shell::run(hub, systmone) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("the window could not start: {e}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("inpatient-hub: {message}");
    ExitCode::FAILURE
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("INPATIENT_HUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
