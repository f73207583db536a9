//! The velocity tracker's view of its stored blocks: [`Block`]s in and out of
//! the storage layer — the SQLite file's `velocity_blocks` table
//! ([`crate::store::velocity_blocks`]), or with `log.postgres` the fleet's
//! store of record ([`crate::store::pg_lists`]), where adding or lifting a
//! block notifies every instance: [`Tracker::apply_note`] and
//! [`Tracker::reconcile`] take the fleet's blocks in without writing back.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Block, Key, Tracker, from_secs};
use crate::store::CallLogError;
use crate::store::PgStore;
use crate::store::velocity_blocks::{self, BlockRow, VelocityBlocks};

/// The service's handle on the stored blocks.
pub struct VelocityStore(Backend);

enum Backend {
    Sqlite(VelocityBlocks),
    Postgres(Arc<PgStore>),
}

fn pg(e: crate::store::PgStoreError) -> CallLogError {
    CallLogError::Postgres(e.to_string())
}

impl VelocityStore {
    pub fn open(path: &Path) -> Result<VelocityStore, CallLogError> {
        Ok(VelocityStore(Backend::Sqlite(VelocityBlocks::open(path)?)))
    }

    /// The fleet's blocks, in the store of record.
    pub fn postgres(store: Arc<PgStore>) -> VelocityStore {
        VelocityStore(Backend::Postgres(store))
    }

    pub fn insert(&self, b: &Block) -> Result<(), CallLogError> {
        match &self.0 {
            Backend::Sqlite(s) => s.insert(&row(b)),
            Backend::Postgres(s) => s.insert_block(&row(b)).map_err(pg),
        }
    }

    pub fn delete(&self, key: &str) -> Result<(), CallLogError> {
        match &self.0 {
            Backend::Sqlite(s) => s.delete(key),
            Backend::Postgres(s) => s.delete_block(key).map(|_| ()).map_err(pg),
        }
    }

    pub fn active(&self, now: DateTime<Utc>) -> Result<Vec<Block>, CallLogError> {
        let rows = match &self.0 {
            Backend::Sqlite(s) => s.active(now)?,
            Backend::Postgres(s) => s.active_blocks(now).map_err(pg)?,
        };
        Ok(rows.into_iter().map(block).collect())
    }
}

/// A block from a stored row (the fleet's, for [`Tracker::apply_note`]).
pub(crate) fn from_row(r: BlockRow) -> Block {
    block(r)
}

impl Tracker {
    /// Uses `store` for the blocks and loads the ones still in force.
    pub fn attach(&self, store: VelocityStore, now: DateTime<Utc>) -> Result<usize, String> {
        let active = store.active(now);
        // Attached even when the blocks cannot be read now (a database
        // down at start): new blocks are still stored when it answers.
        *self.store.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(store));
        let blocks = active.map_err(|e| e.to_string())?;
        let n = blocks.len();
        self.take_in(blocks);
        Ok(n)
    }

    /// Puts blocks another instance stored in force here (not written back).
    pub fn take_in(&self, blocks: Vec<Block>) {
        let mut inner = self.lock();
        for b in blocks {
            if let Some(key) = Key::parse(&b.key) {
                inner.blocks.insert(key, b);
            }
        }
    }

    /// A block another instance lifted: gone here too, with its counters
    /// (as [`Tracker::lift`] does), without touching the store.
    pub fn forget(&self, key: &str) {
        let Some(key) = Key::parse(key) else { return };
        let mut inner = self.lock();
        inner.counters.remove(&key);
        if inner.blocks.remove(&key).is_some()
            && let Key::LearnedBlock(caller) = &key
        {
            inner
                .counters
                .retain(|k, _| !matches!(k, Key::LearnFails { caller: c, .. } if c == caller));
        }
    }

    /// After the fleet's notifications may have been missed: the store's
    /// blocks are the truth, except blocks made here in the last `grace`
    /// (their write may still be on its way).
    pub fn reconcile(&self, stored: Vec<Block>, now: DateTime<Utc>, grace: chrono::Duration) {
        let keys: std::collections::HashSet<String> =
            stored.iter().map(|b| b.key.clone()).collect();
        {
            let mut inner = self.lock();
            inner
                .blocks
                .retain(|_, b| keys.contains(&b.key) || b.created > now - grace);
        }
        self.take_in(stored);
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
