//! `callguard block --from-call ID`: "block the caller who just called" —
//! the caller of a logged call becomes an exact rule in a list file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::calllog::LogReader;
use crate::config;
use crate::history::History;
use crate::lists::RuleRow;
use crate::lists::store::ListStore;

#[derive(Args, Debug)]
pub struct BlockArgs {
    #[arg(long, short, env = super::CONFIG_ENV, default_value_os_t = super::default_config())]
    pub config: PathBuf,
    /// The PBX's unique id of the logged call (see `callguard log`).
    #[arg(long = "from-call")]
    pub from_call: String,
    /// The list file to add the rule to.
    #[arg(long)]
    pub list: String,
    /// The rule's name (default `Block-<number>`).
    #[arg(long)]
    pub name: Option<String>,
    /// The rule's action (default: the list's).
    #[arg(long)]
    pub action: Option<String>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("{msg}");
    ExitCode::from(2)
}

pub fn run(args: BlockArgs) -> ExitCode {
    let cfg = match config::load(&args.config) {
        Ok(c) => c,
        Err(p) => return fail(p),
    };
    let log_path = cfg.resolve(&cfg.raw.log.path);
    let call = match LogReader::open(&log_path).and_then(|r| r.find_by_unique_id(&args.from_call)) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return fail(format!(
                "no logged call with unique id {:?} in {}",
                args.from_call,
                log_path.display()
            ));
        }
        Err(e) => return fail(format!("{}: {e}", log_path.display())),
    };
    let number = call
        .caller_e164
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| call.caller_raw.trim().to_string());
    if call.anonymous || number.is_empty() {
        return fail(format!(
            "call {} came from an anonymous caller: there is no number to block (use an `anonymous: true` rule instead)",
            args.from_call
        ));
    }
    let row = RuleRow {
        rule_name: args
            .name
            .clone()
            .unwrap_or_else(|| format!("Block-{number}")),
        pattern: number.clone(),
        match_type: "exact".into(),
        action: args.action.clone().unwrap_or_default(),
        enabled: true,
        notes: format!(
            "blocked from call {} at {}",
            call.unique_id,
            call.time.to_rfc3339()
        ),
    };
    let history = History::open(&log_path).ok().map(Arc::new);
    let store = ListStore::new(&args.config, history);
    match store.add(&args.list, vec![row.clone()], "cli") {
        Ok(a) => {
            println!(
                "{} added to {} ({}) as {}: {}",
                number,
                a.list,
                a.path.display(),
                row.rule_name,
                a.summary
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            for d in e.details() {
                eprintln!("  {d}");
            }
            ExitCode::from(2)
        }
    }
}
