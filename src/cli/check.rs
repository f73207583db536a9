//! `callguard check`: validate before going live.

use super::CliError;
use std::path::Path;

use crate::config;
use crate::policy::RuleSet;

/// Loads and compiles the config; the summary or every problem.
pub(super) fn load(path: &Path) -> Result<RuleSet, config::Problems> {
    let cfg = config::load_all(path)?;
    RuleSet::compile(&cfg)
}

pub(super) fn run(path: &Path) -> Result<(), CliError> {
    if let Some(e) = super::config_not_found(path) {
        return Err(e);
    }
    match load(path) {
        Ok(rs) => {
            println!("{}: OK — {}", path.display(), summary(&rs));
            Ok(())
        }
        // Like every subcommand: the problems on stderr, the summary on stdout.
        Err(problems) => {
            println!(
                "{}: {} problem(s); nothing was loaded",
                path.display(),
                problems.0.len()
            );
            Err(CliError::problems(&problems))
        }
    }
}

/// `3 trunks, 14 rules (protected 3, system_blacklist 1, …), 2 list files, 1 schedule`.
pub(super) fn summary(rs: &RuleSet) -> String {
    let per_list: Vec<String> = rs
        .lists
        .iter()
        .filter(|l| l.rules > 0)
        .map(|l| format!("{} {}", l.name, l.rules))
        .collect();
    let files = rs.lists.iter().filter(|l| l.path.is_some()).count();
    format!(
        "{} trunk(s), {} rule(s) ({}), {} list file(s), {} schedule(s), {} action(s)",
        rs.trunks.len(),
        rs.rules.len(),
        if per_list.is_empty() {
            "none".to_string()
        } else {
            per_list.join(", ")
        },
        files,
        rs.schedules.len(),
        rs.actions.len()
    )
}
