//! `callguard store import` / `callguard store export`: moving a file-based
//! installation into the fleet's store of record (`log.postgres`) and back,
//! one command each way.
//!
//! - `import` reads every list file of the configuration, checks the whole
//!   configuration with them (as `check` does), and records each list whose
//!   content the store does not have yet as one version authored `import`,
//!   one transaction per list, notifying the running instances.
//! - `export` writes the store's current rows of every list into the
//!   configuration's list files (atomically, in each file's format), so the
//!   configuration runs again without `log.postgres`.
//!
//! Lists with a `url:` subscription keep being refreshed from their URL and
//! are not moved.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::CliError;
use crate::config::{self, LoadedConfig};
use crate::list_edit::fleet::Fleet;
use crate::list_io::{RuleRow, diff_rows, write_atomic, write_rows};
use crate::policy::RuleSet;
use crate::store::PgStore;

#[derive(Args, Debug)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub action: StoreAction,
}

#[derive(Subcommand, Debug)]
pub enum StoreAction {
    /// Copy every list file into the store of record (`log.postgres`): one
    /// version per changed list, authored "import".
    Import {
        /// The configuration file (its lists and `log.postgres`).
        #[arg(long, short, env = super::CONFIG_ENV, default_value_os_t = super::default_config())]
        config: PathBuf,
    },
    /// Write the store's lists into the configuration's list files.
    Export {
        /// The configuration file (its lists and `log.postgres`).
        #[arg(long, short, env = super::CONFIG_ENV, default_value_os_t = super::default_config())]
        config: PathBuf,
    },
}

fn fail(msg: impl std::fmt::Display) -> CliError {
    CliError::failed(format!("callguard store: {msg}"))
}

fn open(config: &Path) -> Result<(LoadedConfig, Arc<PgStore>), CliError> {
    let cfg = config::load_all(config).map_err(|p| CliError::problems(&p))?;
    let target = match cfg.raw.log.postgres_target() {
        None => {
            return Err(CliError::refused(format!(
                "callguard store: {} sets no log.postgres: there is no store of record to move lists to or from",
                config.display()
            )));
        }
        Some(t) => t.map_err(CliError::refused)?,
    };
    Ok((cfg, Arc::new(PgStore::new(target))))
}

/// The lists that move: file-backed, not subscribed to a URL.
fn movable(cfg: &LoadedConfig) -> Vec<usize> {
    let mut subscribed = HashSet::new();
    let entries = cfg
        .raw
        .lists
        .iter()
        .chain(cfg.raw.trunks.values().flat_map(|t| t.value.lists.iter()));
    for e in entries {
        if let (Some(_), Some(p)) = (&e.value.url, &e.value.path) {
            subscribed.insert(cfg.resolve(p));
        }
    }
    (0..cfg.lists.len())
        .filter(|&i| !subscribed.contains(&cfg.lists[i].path))
        .collect()
}

pub(super) fn run(args: StoreArgs) -> Result<(), CliError> {
    match args.action {
        StoreAction::Import { config } => import(&config),
        StoreAction::Export { config } => export(&config),
    }
}

fn import(config: &Path) -> Result<(), CliError> {
    let (cfg, store) = open(config)?;
    // The files must load as they are: what `callguard check` accepts.
    RuleSet::compile(&cfg).map_err(|p| {
        CliError::problems(&p)
            .then("callguard store import: fix the list files first; nothing was imported")
    })?;
    let mut imported = 0;
    for i in movable(&cfg) {
        let list = &cfg.lists[i];
        let rows: Vec<RuleRow> = list.rows.iter().map(|(_, r)| r.clone()).collect();
        let (line, committed) = store
            .edit(&list.name, |tx| {
                let before = tx.current()?.unwrap_or_default();
                let summary = diff_rows(&before, &rows);
                let v = tx.record(&rows, "import")?;
                Ok::<_, crate::store::PgStoreError>(match v {
                    Some(v) => format!(
                        "{}: version {v} ({summary}), {} rules",
                        list.name,
                        rows.len()
                    ),
                    None => format!("{}: unchanged, {} rules", list.name, rows.len()),
                })
            })
            .map_err(fail)?;
        imported += usize::from(committed.is_some());
        println!("{line}");
    }
    println!(
        "{imported} list(s) imported into {}; the instances apply them now",
        store.shown()
    );
    Ok(())
}

fn export(config: &Path) -> Result<(), CliError> {
    let (cfg, store) = open(config)?;
    let fleet = Fleet::for_command(store.clone()).map_err(fail)?;
    let mut written = 0;
    for i in movable(&cfg) {
        let list = &cfg.lists[i];
        let Some(rows) = fleet.rows(&list.name) else {
            println!(
                "{}: not in the store; {} left as it is",
                list.name, list.display
            );
            continue;
        };
        write_atomic(&list.path, &write_rows(&rows, list.format))
            .map_err(|e| fail(format!("{}: cannot write: {e}", list.path.display())))?;
        written += 1;
        println!(
            "{}: {} rules written to {}",
            list.name,
            rows.len(),
            list.display
        );
    }
    println!(
        "{written} list(s) exported from {}; without log.postgres the files are the lists again",
        store.shown()
    );
    Ok(())
}
