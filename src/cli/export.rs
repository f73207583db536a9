//! `callguard export`: a list file in any of the reference's formats, every
//! field included, so that export → import is lossless. A CSV cell that a
//! spreadsheet could run as a formula (a caller ID `=HYPERLINK(…)` that
//! `block --from-call` made a rule) is written behind a `'` and read back
//! without it (`list_io::format::csv_cell`).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::list_edit::store::{ListStore, StoreError};
use crate::list_io::{Format, RuleRow, write_atomic, write_rows};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The configuration file (list paths and log.path are relative to it).
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

pub(super) fn run(args: ExportArgs) -> Result<(), CliError> {
    let store = ListStore::new(&args.config, None);
    // Reads only: a list defined inline in the config exports like a file.
    let rows: Vec<RuleRow> = store.export_rows(&args.list).map_err(|e| match e {
        StoreError::Broken(_) => {
            CliError::store_with("the list file has problems; fix it before exporting:", &e)
        }
        e => CliError::store(&e),
    })?;
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
    written.map_err(CliError::failed)?;
    if let Some(p) = &args.output {
        eprintln!("{} rules written to {}", rows.len(), p.display());
    }
    Ok(())
}
