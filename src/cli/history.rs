//! `callguard history`: the versions of the list files, newest first, with
//! when, who and what changed: the numbers `rollback --to` takes.
//!
//! It only reads: a missing history database is reported, never created.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::calllog::{FIELD_WIDTH, SUMMARY_WIDTH, terminal_cell};
use crate::config;
use crate::list_edit::store::{self, StoreError};
use crate::store::{ListVersions, VersionInfo};

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// The service's config; the history lives in its `log.path` database.
    #[arg(long, short, env = super::CONFIG_ENV, default_value_os_t = super::default_config())]
    pub config: PathBuf,
    /// Only this list's versions (its name in the config, e.g. `spam`).
    #[arg(long)]
    pub list: Option<String>,
    /// Most versions shown, newest first; 0 shows all.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per line (list, version, time, author, summary).
    #[arg(long)]
    pub json: bool,
}

fn fail(msg: impl std::fmt::Display) -> CliError {
    CliError::refused(format!("callguard history: {msg}"))
}

pub(super) fn run(args: HistoryArgs) -> Result<(), CliError> {
    let cfg = config::load(&args.config).map_err(|problems| {
        CliError::problems(&problems).then(format!(
            "callguard history: cannot read {} to find the history",
            args.config.display()
        ))
    })?;
    if let Some(name) = &args.list {
        match store::find(&cfg, name) {
            Ok(_) => {}
            Err(StoreError::ReadOnly(_)) => {
                return Err(fail(format!(
                    "list {name:?} is defined inline in the configuration: its changes are the config file's, with no list history"
                )));
            }
            Err(e) => return Err(fail(e)),
        }
    }
    // With `log.postgres` the history is the store of record's.
    let stored = match cfg.raw.log.postgres_target() {
        Some(t) => {
            let store = crate::store::PgStore::new(t.map_err(fail)?);
            let versions = store
                .versions(args.list.as_deref(), limit(args.limit))
                .map_err(|e| CliError::failed(format!("callguard history: {e}")))?;
            Some(
                versions
                    .into_iter()
                    .map(|v| VersionInfo {
                        version: v.version,
                        list: v.list,
                        time: v.time,
                        author: v.author,
                        summary: v.summary,
                    })
                    .collect::<Vec<_>>(),
            )
        }
        None => None,
    };
    if let Some(versions) = stored {
        return show(&args, &versions);
    }
    let path = cfg.resolve(&cfg.raw.log.path);
    if !path.exists() {
        return Err(fail(format!(
            "no list history at {}: the service has not run with this log.path, and no list was changed yet",
            path.display()
        )));
    }
    let versions = ListVersions::open(&path)
        .and_then(|h| h.versions(args.list.as_deref(), limit(args.limit)))
        .map_err(|e| CliError::failed(format!("callguard history: {}: {e}", path.display())))?;
    show(&args, &versions)
}

fn show(args: &HistoryArgs, versions: &[VersionInfo]) -> Result<(), CliError> {
    if args.json {
        for v in versions {
            let line = serde_json::json!({
                "list": v.list, "version": v.version, "time": v.time.to_rfc3339(),
                "author": v.author, "summary": v.summary,
            });
            println!("{line}");
        }
    } else {
        print!("{}", render(versions, args.list.as_deref()));
    }
    Ok(())
}

fn limit(n: usize) -> usize {
    if n == 0 { usize::MAX } else { n }
}

/// A table under a header, and how to restore one of the versions. Authors
/// and summaries (which name rules, and `block --from-call` names a rule
/// after the caller) are untrusted: shown through [`terminal_cell`].
pub(super) fn render(versions: &[VersionInfo], list: Option<&str>) -> String {
    if versions.is_empty() {
        return match list {
            Some(l) => format!("(no versions of {l} yet)\n"),
            None => "(no list versions yet)\n".to_string(),
        };
    }
    let rows: Vec<[String; 4]> = versions
        .iter()
        .map(|v| {
            [
                v.version.to_string(),
                v.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                terminal_cell(&v.list, FIELD_WIDTH),
                terminal_cell(&v.author, FIELD_WIDTH),
            ]
        })
        .collect();
    let headers = ["VERSION", "TIME (UTC)", "LIST", "AUTHOR"];
    let mut widths = headers.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 4], last: &str| {
        let mut s = String::new();
        for (cell, w) in cells.iter().zip(widths) {
            s.push_str(cell);
            s.push_str(&" ".repeat(w - cell.chars().count() + 2));
        }
        s.push_str(last);
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(headers, "SUMMARY");
    for (r, v) in rows.iter().zip(versions) {
        let summary = terminal_cell(&v.summary, SUMMARY_WIDTH);
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3]], &summary));
    }
    let newest = &versions[0];
    out.push_str(&match list {
        Some(l) => format!("restore one with: callguard rollback --list {l} --to VERSION\n"),
        None => format!(
            "restore one with: callguard rollback --list LIST --to VERSION (e.g. --list {} --to {})\n",
            newest.list, newest.version
        ),
    });
    out
}
