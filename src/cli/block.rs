//! `callguard block --from-call ID`: "block the caller who just called" —
//! the caller of a logged call becomes an exact rule in a list file
//! ([`crate::list_edit::block`] does it; this is the command line).

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::calllog::terminal_safe;
use crate::list_edit::block::{BlockError, BlockRequest, Blocked, block_from_call};

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

pub(super) fn run(args: BlockArgs) -> Result<(), CliError> {
    let req = BlockRequest {
        from_call: args.from_call.clone(),
        list: args.list.clone(),
        name: args.name.clone(),
        action: args.action.clone(),
        check: false,
    };
    match block_from_call(&args.config, &req, "cli", None) {
        Ok(Blocked::Added {
            number,
            applied,
            rule,
        }) => {
            // The number and the rule's name are the caller's text: shown
            // with its control characters escaped.
            println!(
                "{} added to {} ({}) as {}: {}",
                terminal_safe(&number),
                applied.list,
                applied.path.display(),
                terminal_safe(&rule.rule_name),
                terminal_safe(&applied.summary.to_string())
            );
            Ok(())
        }
        Ok(already @ Blocked::AlreadyMatched { .. }) => {
            println!("{}", terminal_safe(&already.message()));
            Ok(())
        }
        Err(BlockError::Store(e)) => Err(e.into()),
        Err(e) => Err(CliError::refused(e)),
    }
}
