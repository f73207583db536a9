//! `callguard log`: support's answer to "I could not get through" — which rule
//! decided a caller's calls and how they ended — and the period's block report
//! (`--stats`).
//!
//! It opens the service's decision log read-only, so it can run beside a live
//! service without ever taking the writer's lock.
//!
//! Exit codes: 0 done, 1 the log cannot be read (missing, not a log, SQLite
//! error), 2 the arguments or the configuration are wrong.

use std::path::{Path, PathBuf};

use chrono::Utc;
use clap::Args;

use super::CliError;
use crate::calllog::{
    CallLogError, FIELD_WIDTH, LogQuery, LogReader, PgTarget, parse_time_arg, render_stats,
    render_table, stored_tenant, terminal_cell,
};
use crate::config;

#[derive(Args, Debug)]
pub struct LogArgs {
    /// The service's config; its `log.postgres`, else its `log.path` (relative to the config
    /// file), names the log.
    #[arg(long, short, env = super::CONFIG_ENV, default_value_os_t = super::default_config())]
    pub config: PathBuf,
    /// Read this log file instead of the one the config names.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Calls at or after: a duration before now (1h, 7d), a date (2026-11-01) or RFC 3339.
    #[arg(long)]
    pub since: Option<String>,
    /// Calls before: same forms as --since.
    #[arg(long)]
    pub until: Option<String>,
    /// Only blocked or only allowed calls.
    #[arg(long, value_parser = ["block", "allow"])]
    pub verdict: Option<String>,
    /// Only calls on this trunk (its name in the config, e.g. `support`).
    #[arg(long)]
    pub trunk: Option<String>,
    /// The rule's name as configured (e.g. `Busy`).
    #[arg(long)]
    pub rule: Option<String>,
    /// A caller number in any spelling: `+1 555-123-4567` finds `5551234567`.
    #[arg(long)]
    pub caller: Option<String>,
    /// Only calls screened by this tenant (`default`: the top level of the file).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only calls for this user (the extension of `users:`).
    #[arg(long)]
    pub user: Option<String>,
    /// Most calls shown, newest first; 0 shows all.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per line (with --stats: one object for the report).
    #[arg(long)]
    pub json: bool,
    /// Totals and blocked calls per rule, list and trunk for the period.
    #[arg(long)]
    pub stats: bool,
    /// The temporary blocks velocity rules have put in force (until they expire).
    #[arg(long, conflicts_with = "stats")]
    pub blocks: bool,
}

pub(super) fn run(args: LogArgs) -> Result<(), CliError> {
    let query =
        build_query(&args).map_err(|msg| CliError::refused(format!("callguard log: {msg}")))?;
    let (path, postgres) = db_path(&args).map_err(CliError::refused)?;
    if args.blocks {
        return print_blocks(&path, postgres.as_ref(), args.json);
    }
    print(&path, postgres.as_ref(), &query, &args).map_err(|e| match e {
        CallLogError::NotFound(p) => CliError::failed(format!(
            "callguard log: no call log at {} — the service has not run with this log.path \
             yet (use --config or --db to point elsewhere)",
            p.display()
        )),
        e => CliError::failed(format!("callguard log: {e}")),
    })
}

/// The filters as typed; times are relative to now.
fn build_query(args: &LogArgs) -> Result<LogQuery, String> {
    let now = Utc::now();
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| parse_time_arg(s, now).map_err(|e| format!("--{flag} {e}")))
            .transpose()
    };
    Ok(LogQuery {
        since: time("since", &args.since)?,
        until: time("until", &args.until)?,
        verdict: args.verdict.clone(),
        trunk: args.trunk.clone(),
        rule: args.rule.clone(),
        caller: args.caller.clone(),
        tenant: args.tenant.as_deref().map(|t| stored_tenant(t).to_string()),
        user: args.user.clone(),
        limit: args.limit,
    })
}

/// `--db`, else the config's `log.postgres` (a fleet's shared log), else its
/// `log.path` resolved against the config's directory.
fn db_path(args: &LogArgs) -> Result<(PathBuf, Option<PgTarget>), String> {
    if let Some(db) = &args.db {
        return Ok((db.clone(), None));
    }
    let cfg = config::load(&args.config).map_err(|problems| {
        let mut msg: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
        msg.push(format!(
            "callguard log: cannot read {} to find the call log (use --db FILE)",
            args.config.display()
        ));
        msg.join("\n")
    })?;
    let postgres = cfg
        .raw
        .log
        .postgres_target()
        .transpose()
        .map_err(|m| format!("callguard log: {m}"))?;
    Ok((cfg.resolve(&cfg.raw.log.path), postgres))
}

fn print(
    path: &Path,
    postgres: Option<&PgTarget>,
    query: &LogQuery,
    args: &LogArgs,
) -> Result<(), CallLogError> {
    let reader = LogReader::open_either(path, postgres)?;
    if args.stats {
        let stats = reader.stats(query)?;
        if args.json {
            println!("{}", serde_json::to_string(&stats).unwrap_or_default());
        } else {
            print!("{}", render_stats(&stats));
        }
        return Ok(());
    }
    let calls = reader.query(query)?;
    if args.json {
        for call in &calls {
            println!("{}", serde_json::to_string(call).unwrap_or_default());
        }
    } else {
        print!("{}", render_table(&calls));
    }
    Ok(())
}

/// `callguard log --blocks`: one line per velocity block in force.
/// With `log.postgres` the blocks are the fleet's, in the store of record.
fn print_blocks(
    path: &std::path::Path,
    postgres: Option<&crate::store::PgTarget>,
    json: bool,
) -> Result<(), CliError> {
    let blocks = match postgres {
        Some(t) => crate::store::PgStore::new(t.clone())
            .active_blocks(Utc::now())
            .map(|rows| rows.into_iter().map(crate::velocity::from_row).collect())
            .map_err(|e| e.to_string()),
        None if !path.exists() => {
            return Err(CliError::failed(format!(
                "callguard log: no call log at {}",
                path.display()
            )));
        }
        None => crate::velocity::read_blocks(path, Utc::now()).map_err(|e| e.to_string()),
    };
    match blocks {
        Ok(blocks) => {
            if json {
                for b in &blocks {
                    println!("{}", serde_json::to_string(b).unwrap_or_default());
                }
            } else if blocks.is_empty() {
                println!("no velocity blocks in force");
            } else {
                println!(
                    "{:<20}  {:<12}  {:<16}  {:<20}  until",
                    "since", "trunk", "rule", "blocked"
                );
                // Subjects are callers: untrusted text for the terminal.
                for b in &blocks {
                    println!(
                        "{:<20}  {:<12}  {:<16}  {:<20}  {}",
                        b.created.format("%Y-%m-%dT%H:%M:%SZ"),
                        terminal_cell(&b.trunk, FIELD_WIDTH),
                        terminal_cell(&b.rule, FIELD_WIDTH),
                        terminal_cell(&b.subject, FIELD_WIDTH),
                        b.until.format("%Y-%m-%dT%H:%M:%SZ")
                    );
                }
            }
            Ok(())
        }
        Err(e) => Err(CliError::failed(format!("callguard log: {e}"))),
    }
}
