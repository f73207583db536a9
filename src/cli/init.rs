//! `callguard init DIR`: a starter directory to try callguard in, so that the walkthrough
//! (import, block, the API's writes) never edits the shipped example.
//!
//! It writes the shipped example as it is (`DIR/config/callguard.yaml` and its lists in
//! `DIR/config/lists/`, embedded in the binary), the log's directory `DIR/data/` (the
//! example's `log.path` is `../data/callguard.db`), and `DIR/broken.yaml`, a config with three
//! mistakes to try `check` on. Commands run in `DIR` find `config/callguard.yaml` by
//! themselves. Existing files are left alone unless `--force`.

use std::path::{Path, PathBuf};

use clap::Args;

use super::CliError;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The directory to write (created if missing).
    pub dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

/// Every file `init` writes, relative to DIR, with its content.
const FILES: &[(&str, &str)] = &[
    (
        "config/callguard.yaml",
        include_str!("../../config/callguard.yaml"),
    ),
    (
        "config/lists/anonymous.csv",
        include_str!("../../config/lists/anonymous.csv"),
    ),
    (
        "config/lists/high-fraud-countries.csv",
        include_str!("../../config/lists/high-fraud-countries.csv"),
    ),
    (
        "config/lists/premium-rate.csv",
        include_str!("../../config/lists/premium-rate.csv"),
    ),
    (
        "config/lists/spam.csv",
        include_str!("../../config/lists/spam.csv"),
    ),
    (
        "config/lists/vip.csv",
        include_str!("../../config/lists/vip.csv"),
    ),
    ("broken.yaml", include_str!("init/broken.yaml")),
];

pub(super) fn run(args: InitArgs) -> Result<(), CliError> {
    let existing: Vec<PathBuf> = FILES
        .iter()
        .map(|(rel, _)| args.dir.join(rel))
        .filter(|p| p.exists())
        .collect();
    if !existing.is_empty() && !args.force {
        let mut lines: Vec<String> = existing
            .iter()
            .map(|p| format!("{}: exists; not overwritten", p.display()))
            .collect();
        lines.push(format!(
            "{}: nothing was written (--force overwrites these files)",
            args.dir.display()
        ));
        return Err(CliError::Refused(lines));
    }
    for (rel, text) in FILES {
        write(&args.dir.join(rel), text)?;
    }
    let data = args.dir.join("data");
    std::fs::create_dir_all(&data)
        .map_err(|e| CliError::failed(format!("{}: {e}", data.display())))?;
    let d = args.dir.display();
    println!("{d}: wrote config/callguard.yaml, config/lists/ (5 lists), broken.yaml and data/");
    println!("next:");
    println!("  cd {d}");
    println!("  callguard check                        # config/callguard.yaml: OK");
    println!("  callguard check --config broken.yaml   # three problems, FILE:LINE:COL");
    println!("  callguard serve                        # then, in another terminal:");
    println!("  callguard call +442079999999           # a blocked caller, no PBX needed");
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), CliError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::failed(format!("{}: {e}", parent.display())))?;
    }
    std::fs::write(path, text).map_err(|e| CliError::failed(format!("{}: {e}", path.display())))
}
