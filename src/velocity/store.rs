//! The velocity tracker's view of its stored blocks: [`Block`]s in and out of
//! the storage layer's `velocity_blocks` table ([`crate::store::velocity_blocks`]).

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{Block, from_secs};
use crate::store::CallLogError;
use crate::store::velocity_blocks::{self, BlockRow, VelocityBlocks};

/// The service's handle on the stored blocks.
pub(crate) struct VelocityStore(VelocityBlocks);

impl VelocityStore {
    pub(crate) fn open(path: &Path) -> Result<VelocityStore, CallLogError> {
        Ok(VelocityStore(VelocityBlocks::open(path)?))
    }

    pub(crate) fn insert(&self, b: &Block) -> Result<(), CallLogError> {
        self.0.insert(&row(b))
    }

    pub(crate) fn delete(&self, key: &str) -> Result<(), CallLogError> {
        self.0.delete(key)
    }

    pub(crate) fn active(&self, now: DateTime<Utc>) -> Result<Vec<Block>, CallLogError> {
        Ok(self.0.active(now)?.into_iter().map(block).collect())
    }
}

/// The blocks in force in the file at `path`, read-only (`callguard log
/// --blocks`); a file without the table has none.
pub(crate) fn read_blocks(path: &Path, now: DateTime<Utc>) -> Result<Vec<Block>, CallLogError> {
    Ok(velocity_blocks::read_blocks(path, now)?
        .into_iter()
        .map(block)
        .collect())
}

fn row(b: &Block) -> BlockRow {
    BlockRow {
        key: b.key.clone(),
        trunk: b.trunk.clone(),
        rule: b.rule.clone(),
        subject: b.subject.clone(),
        created: b.created.timestamp(),
        until: b.until.timestamp(),
    }
}

fn block(r: BlockRow) -> Block {
    Block {
        key: r.key,
        trunk: r.trunk,
        rule: r.rule,
        subject: r.subject,
        created: from_secs(r.created),
        until: from_secs(r.until),
    }
}
