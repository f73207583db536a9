//! `callguard block --from-call ID`: "block the caller who just called" —
//! the caller of a logged call becomes an exact rule in a list file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::calllog::LogReader;
use crate::config;
use crate::config::types::MatchType;
use crate::history::History;
use crate::lists::RuleRow;
use crate::lists::store::ListStore;
use crate::policy::pattern::infer_match_type;
use crate::policy::tester::PatternTester;

#[derive(Args, Debug)]
pub struct BlockArgs {
    /// The configuration file (list paths and log.path are relative to it).
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
    // A second rule for a caller the list already matches would only clutter
    // it (and the log would still name the first rule): say so instead.
    if let Ok(cur) = store.current(&args.list) {
        let subjects = [number.as_str(), call.caller_raw.trim()];
        let limit = cfg.raw.policy.regex_backtrack_limit;
        if let Some(r) = cur
            .list
            .rows
            .iter()
            .map(|(_, r)| r)
            .find(|r| row_matches(r, &subjects, limit))
        {
            println!(
                "{number} is already matched by rule {} ({} {}) of {}: nothing was added",
                r.rule_name,
                if r.match_type.is_empty() {
                    "pattern"
                } else {
                    r.match_type.as_str()
                },
                r.pattern,
                args.list
            );
            return ExitCode::SUCCESS;
        }
    }
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

/// Whether an enabled row matches any of `subjects` (the caller as E.164 and
/// as received), by the same pattern compiler and matcher a call uses.
fn row_matches(row: &RuleRow, subjects: &[&str], backtrack_limit: usize) -> bool {
    if !row.enabled {
        return false;
    }
    let mt = match row.match_type.trim() {
        "" => None,
        m => match MatchType::parse(m) {
            Some(m) => Some(m),
            None => return false,
        },
    };
    // Most list rows are exact numbers: compared directly, so a large list
    // does not build a matcher per row.
    if mt.unwrap_or_else(|| infer_match_type(&row.pattern)) == MatchType::Exact {
        let p = row.pattern.trim();
        return subjects.iter().any(|s| !s.is_empty() && *s == p);
    }
    let Ok(tester) = PatternTester::new(&row.pattern, mt, false, backtrack_limit) else {
        return false;
    };
    subjects
        .iter()
        .filter(|s| !s.is_empty())
        .any(|s| tester.test(s).is_ok_and(|r| r.matched))
}
