//! Temporary velocity blocks in the store of record: one row per block,
//! and a notification on [`super::BLOCKS_CHANNEL`] for each added or lifted,
//! so a block made on one instance applies on all and any can lift it.

use chrono::{DateTime, Utc};

use super::{BLOCKS_CHANNEL, BlockNote, PgStore, Result};
use crate::store::velocity_blocks::BlockRow;

/// A stored block (the same row as the SQLite table's).
pub(crate) type BlockRecord = BlockRow;

impl PgStore {
    fn notify_block(
        &self,
        tx: &mut postgres::Transaction<'_>,
        op: &str,
        key: &str,
    ) -> std::result::Result<(), postgres::Error> {
        let note = BlockNote {
            op: op.to_string(),
            key: key.to_string(),
            instance: self.instance().to_string(),
        };
        let payload = serde_json::to_string(&note).unwrap_or_default();
        tx.execute("SELECT pg_notify($1, $2)", &[&BLOCKS_CHANNEL, &payload])?;
        Ok(())
    }

    /// Stores a block (replacing one on the same key) and tells the fleet.
    pub fn insert_block(&self, b: &BlockRecord) -> Result<()> {
        self.with(true, |c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO callguard_velocity_blocks (key, trunk, rule, subject, created, until)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (key) DO UPDATE SET trunk = $2, rule = $3, subject = $4,
                     created = $5, until = $6",
                &[&b.key, &b.trunk, &b.rule, &b.subject, &b.created, &b.until],
            )?;
            self.notify_block(&mut tx, "add", &b.key)?;
            tx.commit()
        })
    }

    /// Deletes a block and tells the fleet; returns whether it was stored.
    pub fn delete_block(&self, key: &str) -> Result<bool> {
        self.with(true, |c| {
            let mut tx = c.transaction()?;
            let n = tx.execute(
                "DELETE FROM callguard_velocity_blocks WHERE key = $1",
                &[&key],
            )?;
            self.notify_block(&mut tx, "lift", key)?;
            tx.commit()?;
            Ok(n > 0)
        })
    }

    /// The blocks in force at `now`, newest first; expired ones are purged.
    pub fn active_blocks(&self, now: DateTime<Utc>) -> Result<Vec<BlockRecord>> {
        let now = now.timestamp();
        self.with(true, |c| {
            c.execute(
                "DELETE FROM callguard_velocity_blocks WHERE until <= $1",
                &[&now],
            )?;
            Ok(c.query(
                "SELECT key, trunk, rule, subject, created, until FROM callguard_velocity_blocks
                 WHERE until > $1 ORDER BY created DESC, key",
                &[&now],
            )?
            .iter()
            .map(|r| BlockRow {
                key: r.get(0),
                trunk: r.get(1),
                rule: r.get(2),
                subject: r.get(3),
                created: r.get(4),
                until: r.get(5),
            })
            .collect())
        })
    }
}
