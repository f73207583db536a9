//! `callguard rollback`: restore a list to a version from its history. The
//! restored content is validated like any change and recorded as a new
//! version, so a rollback can itself be rolled back.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::list_edit::store::ListStore;

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The configuration file (list paths and log.path are relative to it).
    #[arg(long, short, env = super::CONFIG_ENV, default_value_os_t = super::default_config())]
    pub config: PathBuf,
    /// The list to restore (its name in the config, e.g. `spam`).
    #[arg(long)]
    pub list: String,
    /// The history version to restore (see `callguard history --list NAME`).
    #[arg(long)]
    pub to: u64,
}

pub(super) fn run(args: RollbackArgs) -> Result<(), CliError> {
    let running = super::running::before_write(&args.config);
    let a = ListStore::open(&args.config).and_then(|s| s.restore(&args.list, args.to, "cli"))?;
    println!(
        "{} restored to version {} ({}): {}{}",
        a.list,
        args.to,
        a.path.display(),
        a.summary,
        a.history_version
            .map(|v| format!("; recorded as version {v}"))
            .unwrap_or_default()
    );
    if a.history_version.is_some() {
        println!("{}", super::running::after_write(running));
    }
    Ok(())
}
