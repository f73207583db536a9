//! callguard screens inbound calls for Asterisk (FastAGI) and FreeSWITCH
//! (outbound Event Socket).
//!
//! The flow of one call, module by module:
//! `pbx::agi` / `pbx::esl` (wire protocols) → [`call`] (the shared per-call
//! flow) → [`policy`] (normalise, match, schedule, decide) → [`action`] (a
//! PBX-neutral plan) → back to the driver's recipe, which executes it.
//! [`metrics`] and [`calllog`] record what happened without ever making a call
//! wait.

#![warn(unreachable_pub)]

pub mod action;
pub mod app;
pub(crate) mod call;
pub mod calllog;
pub mod cli;
pub mod config;
pub mod fleet;
pub(crate) mod http;
pub mod list_edit;
pub(crate) mod list_io;
pub mod metrics;
pub(crate) mod outcome;
pub mod pbx;
pub mod policy;
pub(crate) mod random;
pub mod reload;
pub(crate) mod report;
pub mod reputation;
pub(crate) mod server;
pub(crate) mod service;
pub(crate) mod source;
pub mod state;
pub mod store;
pub(crate) mod velocity;
