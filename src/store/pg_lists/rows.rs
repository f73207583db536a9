//! The current rows of a list in `callguard_list_rows`: read in order, and
//! brought from one version to the next by its diff.

use super::Diff;
use crate::list_io::RuleRow;

/// Rows per multi-row `INSERT` (8 parameters each).
const ROWS_PER_INSERT: usize = 1000;

pub(super) fn current_rows(
    tx: &mut postgres::Transaction<'_>,
    list: &str,
) -> std::result::Result<Vec<RuleRow>, postgres::Error> {
    Ok(tx
        .query(
            "SELECT rule_name, pattern, match_type, action, enabled, notes
             FROM callguard_list_rows WHERE list = $1 ORDER BY pos",
            &[&list],
        )?
        .iter()
        .map(|r| RuleRow {
            rule_name: r.get(0),
            pattern: r.get(1),
            match_type: r.get(2),
            action: r.get(3),
            enabled: r.get(4),
            notes: r.get(5),
        })
        .collect())
}

/// Brings the current rows from `old` to `new`: patched by name for a
/// plain diff, rewritten when the order moved or names repeat.
pub(super) fn write_rows(
    tx: &mut postgres::Transaction<'_>,
    list: &str,
    old: &[RuleRow],
    diff: &Diff,
    new: &[RuleRow],
) -> std::result::Result<(), postgres::Error> {
    if diff.rewrites() {
        tx.execute("DELETE FROM callguard_list_rows WHERE list = $1", &[&list])?;
        return insert_rows(tx, list, 0, new);
    }
    if !diff.removed.is_empty() {
        tx.execute(
            "DELETE FROM callguard_list_rows WHERE list = $1 AND rule_name = ANY($2)",
            &[&list, &diff.removed],
        )?;
    }
    let existing: std::collections::HashSet<&str> =
        old.iter().map(|r| r.rule_name.as_str()).collect();
    let (changed, added): (Vec<&RuleRow>, Vec<&RuleRow>) = diff
        .upsert
        .iter()
        .partition(|r| existing.contains(r.rule_name.as_str()));
    for r in changed {
        tx.execute(
            "UPDATE callguard_list_rows SET pattern = $3, match_type = $4, action = $5,
                    enabled = $6, notes = $7
             WHERE list = $1 AND rule_name = $2",
            &[
                &list,
                &r.rule_name,
                &r.pattern,
                &r.match_type,
                &r.action,
                &r.enabled,
                &r.notes,
            ],
        )?;
    }
    if !added.is_empty() {
        let next: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(pos), -1) + 1 FROM callguard_list_rows WHERE list = $1",
                &[&list],
            )?
            .get(0);
        let added: Vec<RuleRow> = added.into_iter().cloned().collect();
        insert_rows(tx, list, next, &added)?;
    }
    Ok(())
}

fn insert_rows(
    tx: &mut postgres::Transaction<'_>,
    list: &str,
    first: i64,
    rows: &[RuleRow],
) -> std::result::Result<(), postgres::Error> {
    for (c, chunk) in rows.chunks(ROWS_PER_INSERT).enumerate() {
        let base = first + (c * ROWS_PER_INSERT) as i64;
        let pos: Vec<i64> = (0..chunk.len() as i64).map(|i| base + i).collect();
        let mut sql = String::from(
            "INSERT INTO callguard_list_rows
             (list, pos, rule_name, pattern, match_type, action, enabled, notes) VALUES ",
        );
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> =
            Vec::with_capacity(chunk.len() * 7 + 1);
        params.push(&list);
        for (i, r) in chunk.iter().enumerate() {
            let b = 2 + i * 7;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "($1, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b,
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
            params.extend_from_slice(&[
                &pos[i],
                &r.rule_name,
                &r.pattern,
                &r.match_type,
                &r.action,
                &r.enabled,
                &r.notes,
            ]);
        }
        tx.execute(sql.as_str(), &params)?;
    }
    Ok(())
}
