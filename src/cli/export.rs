//! `callguard export`: a list file in any of the reference's formats, every
//! field included, so that export → import is lossless.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::lists::store::ListStore;
use crate::lists::{Format, RuleRow, write_atomic, write_rows};

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(long, short, env = super::CONFIG_ENV, default_value_os_t = super::default_config())]
    pub config: PathBuf,
    /// The list to export (its name in the config).
    #[arg(long)]
    pub list: String,
    /// csv, json or xml.
    #[arg(long, default_value = "csv", value_parser = super::import::parse_format)]
    pub format: Format,
    /// Write here (atomically) instead of to standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub fn run(args: ExportArgs) -> ExitCode {
    let store = ListStore::new(&args.config, None);
    let cur = match store.current(&args.list) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            for d in e.details() {
                eprintln!("  {d}");
            }
            return ExitCode::from(2);
        }
    };
    if !cur.problems.is_empty() {
        eprintln!("the list file has problems; fix it before exporting:");
        for p in &cur.problems {
            eprintln!("  {p}");
        }
        return ExitCode::from(2);
    }
    let rows: Vec<RuleRow> = cur.list.rows.into_iter().map(|(_, r)| r).collect();
    let bytes = write_rows(&rows, args.format);
    let written = match &args.output {
        Some(path) => {
            write_atomic(path, &bytes).map_err(|e| format!("{}: cannot write: {e}", path.display()))
        }
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .map_err(|e| format!("stdout: {e}")),
    };
    match written {
        Ok(()) => {
            if let Some(p) = &args.output {
                eprintln!("{} rules written to {}", rows.len(), p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}
