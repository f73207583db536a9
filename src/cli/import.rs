//! `callguard import`: read a CSV / JSON / XML file, show the reference's
//! preview (rows read, to add, duplicates and their fate, invalid rows), and
//! unless `--dry-run` write the list through the list store.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::config::load::read_bounded;
use crate::list_edit::store::{ListStore, StoreError};
use crate::list_io::import::PreviewOutcome;
use crate::list_io::{Format, OnDuplicate, plan_import, read_rows};

/// Import files larger than this are refused before reading.
const MAX_IMPORT_BYTES: u64 = 1 << 30;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The configuration file (list paths and log.path are relative to it).
    #[arg(long, short, env = super::CONFIG_ENV, default_value_os_t = super::default_config())]
    pub config: PathBuf,
    /// The list file to import into (its name in the config).
    #[arg(long)]
    pub list: String,
    /// csv, json or xml (default: from FILE's extension).
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// What to do with a rule whose name is taken: skip, overwrite, or rename (keep both, the newcomer becomes NAME-2).
    #[arg(long, default_value = "skip", value_parser = parse_on_duplicate)]
    pub on_duplicate: OnDuplicate,
    /// Show the preview; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import the valid rows even if some are invalid (they are listed).
    #[arg(long)]
    pub skip_invalid: bool,
    /// The file to import.
    pub file: PathBuf,
}

pub(super) fn parse_format(s: &str) -> Result<Format, String> {
    Format::from_name(s).ok_or_else(|| format!("unknown format {s:?} (csv, json or xml)"))
}

fn parse_on_duplicate(s: &str) -> Result<OnDuplicate, String> {
    OnDuplicate::from_name(s).ok_or_else(|| OnDuplicate::unknown(s))
}

/// One status line naming the phase (reading a large file, validating it
/// against the whole configuration), only when a person watches stderr, and
/// cleared before anything else is printed. Two escape sequences do what a
/// progress-bar crate did here (issue 27: five packages fewer to build).
struct Phase {
    shown: bool,
}

impl Phase {
    fn new() -> Phase {
        Phase {
            shown: std::io::stderr().is_terminal(),
        }
    }

    fn set_message(&self, msg: impl std::fmt::Display) {
        if self.shown {
            // Carriage return, erase the line: the next phase replaces it.
            eprint!("\r\x1b[2K{msg}…");
        }
    }

    fn finish_and_clear(&self) {
        if self.shown {
            eprint!("\r\x1b[2K");
        }
    }
}

pub(super) fn run(args: ImportArgs) -> Result<(), CliError> {
    let display = args.file.display().to_string();
    let format = args
        .format
        .or_else(|| Format::from_path(&args.file))
        .ok_or_else(|| {
            CliError::refused(format!(
                "{display}: unknown format; pass --format csv|json|xml"
            ))
        })?;
    let pb = Phase::new();
    // The status line is cleared before any error is printed.
    let refused = |e: CliError| {
        pb.finish_and_clear();
        e
    };
    pb.set_message(format!("reading {display}"));
    let bytes = read_bounded(&args.file, MAX_IMPORT_BYTES, &display)
        .map_err(|p| refused(CliError::refused(p)))?;
    let parsed = read_rows(&bytes, format, &display);
    drop(bytes);
    let store = ListStore::open(&args.config).map_err(|e| refused(e.into()))?;
    pb.set_message("validating");
    // Rows are judged as the rule set will judge them (actions included),
    // so the preview's invalid rows are exactly what --skip-invalid leaves out.
    let checker = store.checker(&args.list).map_err(|e| refused(e.into()))?;
    let mode = args.on_duplicate;
    let mut preview = String::new();
    let mut invalid = 0;
    let plan_step = |current: &[crate::list_io::RuleRow]| {
        let plan = plan_import(current, parsed, mode, &|r| checker.check(r));
        invalid = plan.errors.len();
        let refused = invalid > 0 && !args.skip_invalid;
        let outcome = if refused {
            PreviewOutcome::Refused
        } else if args.dry_run {
            PreviewOutcome::DryRun
        } else {
            PreviewOutcome::Import
        };
        preview = plan.render_preview_for(outcome);
        if args.dry_run || refused {
            return Err(StoreError::Aborted);
        }
        Ok(plan.result)
    };
    let running = (!args.dry_run)
        .then(|| super::running::before_write(&args.config))
        .flatten();
    let result = store.apply(&args.list, "cli", true, plan_step);
    pb.finish_and_clear();
    if !preview.is_empty() {
        println!("{preview}");
    }
    match result {
        Ok(applied) => {
            println!(
                "imported into {} ({}): {}",
                applied.list,
                applied.path.display(),
                applied.summary
            );
            if applied.history_version.is_some() {
                println!("{}", super::running::after_write(running));
            }
            Ok(())
        }
        Err(StoreError::Aborted) if invalid > 0 && !args.skip_invalid => {
            Err(CliError::refused(format!(
                "{invalid} invalid row(s): nothing was imported (fix them, or pass --skip-invalid)"
            )))
        }
        Err(StoreError::Aborted) => {
            println!("dry run: nothing was written");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
