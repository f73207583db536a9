//! `callguard report [--since 24h] [--until …] [--format text|html|json]`:
//! the daily report of [`crate::report`], printable and suitable for a cron
//! mail.

use std::path::PathBuf;

use chrono::Utc;
use clap::Args;

use super::CliError;
use crate::calllog::LogReader;
use crate::config;
use crate::policy::RuleSet;
use crate::report::{ReportScope, build_scoped, period};
use crate::store::ListVersions;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The configuration file (log.path, where the decision log and the history are, is relative to it).
    #[arg(long, short, default_value = super::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Start of the period: 24h, 7d, a date (2026-11-01) or an RFC 3339 time.
    #[arg(long, default_value = "24h")]
    pub since: String,
    /// End of the period (default: now), same forms as --since.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this tenant's calls and list changes (`default`: the top level of the file).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only the calls for this user (an extension of `users:`) and their own lists.
    #[arg(long)]
    pub user: Option<String>,
    /// text (for a terminal or a mail), html (printable page) or json.
    #[arg(long, default_value = "text", value_parser = ["text", "html", "json"])]
    pub format: String,
}

pub(super) fn run(args: ReportArgs) -> Result<(), CliError> {
    let fail = |msg: String| CliError::refused(format!("callguard report: {msg}"));
    let (since, until) = period(&args.since, args.until.as_deref(), Utc::now()).map_err(fail)?;
    let cfg = config::load(&args.config).map_err(|p| fail(p.to_string()))?;
    let log_path = cfg.resolve(&cfg.raw.log.path);
    let postgres = cfg.raw.log.postgres_target().transpose().map_err(fail)?;
    let log =
        LogReader::open_either(&log_path, postgres.as_ref()).map_err(|e| fail(e.to_string()))?;
    // The history lives in the same database, which exists (the log opened).
    let history = ListVersions::open(&log_path).ok();
    let scope = if args.tenant.is_some() || args.user.is_some() {
        // The scope's lists (for its rule changes) as the service names them.
        let rs = RuleSet::compile_isolated(&cfg, None).map_err(|p| fail(p.to_string()))?;
        if let Some(t) = &args.tenant
            && t != "default"
            && rs.tenant_by_name(t).is_none()
        {
            return Err(fail(format!(
                "--tenant {t:?}: no such tenant in the configuration"
            )));
        }
        ReportScope::new(args.tenant.as_deref(), args.user.as_deref(), &rs)
    } else {
        ReportScope::default()
    };
    let report = build_scoped(&log, history.as_ref(), since, until, &scope)
        .map_err(|e| fail(format!("{}: {e}", log_path.display())))?;
    match args.format.as_str() {
        "json" => {
            let j = serde_json::to_string_pretty(&report).map_err(|e| fail(e.to_string()))?;
            println!("{j}");
        }
        "html" => print!("{}", report.to_html()),
        _ => print!("{}", report.to_text()),
    }
    Ok(())
}
