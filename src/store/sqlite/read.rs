//! Reading the SQLite log: filtered listings, stats, lookup by unique id,
//! the overview's counts and the rules' hit counts.
//!
//! Every value a user typed is bound as a parameter, never spliced into SQL.
//! Readers use read-only connections so the CLI and the HTTP API can never
//! take the write lock from the service's writer.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};

use crate::store::CallLogError;
use crate::store::calls::{
    Counts, HitCounts, LogQuery, LoggedCall, NO_RULE, StatCount, Stats, TenantCounts, TrunkCounts,
    count,
};
use crate::store::filter::{self, Dialect, RULE};

/// The selected columns; a log written before schema 2 has no `list_name`,
/// one written before schema 3 no `tenant` nor `user_ext`.
fn columns(conn: &Connection) -> Result<String, CallLogError> {
    let version = super::schema_version(conn)?;
    let list_name = if version >= 2 { "list_name" } else { "''" };
    let scope = if version >= 3 {
        "tenant, user_ext"
    } else {
        "'', ''"
    };
    Ok(format!(
        "id, time, unique_id, pbx, trunk, did, caller_raw, caller_e164, \
         caller_name, anonymous, verdict, list, {RULE}, action, reason, decision_ns, fail_open, \
         end_state, hangup_cause, duration_ms, ended_at, {list_name}, {scope}"
    ))
}

/// Whether the file has the `tenant` and `user_ext` columns (schema 3).
fn scoped(conn: &Connection) -> Result<bool, CallLogError> {
    Ok(super::schema_version(conn)? >= 3)
}

/// Calls matching `q`, newest first.
pub(crate) fn query(conn: &Connection, q: &LogQuery) -> Result<Vec<LoggedCall>, CallLogError> {
    let (filter, mut args) = where_clause(q, scoped(conn)?);
    let columns = columns(conn)?;
    let mut sql = format!("SELECT {columns} FROM calls{filter} ORDER BY time DESC, id DESC");
    if q.limit > 0 {
        args.push(Value::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" LIMIT ?{}", args.len()));
    }
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query(params_from_iter(args))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(logged_call(row)?);
    }
    Ok(out)
}

/// The newest call with this PBX unique id (`callguard block --from-call`).
pub(crate) fn find_by_unique_id(
    conn: &Connection,
    unique_id: &str,
) -> Result<Option<LoggedCall>, CallLogError> {
    let columns = columns(conn)?;
    let sql = format!("SELECT {columns} FROM calls WHERE unique_id = ?1 ORDER BY id DESC LIMIT 1");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([unique_id])?;
    match rows.next()? {
        Some(row) => Ok(Some(logged_call(row)?)),
        None => Ok(None),
    }
}

/// Totals and blocked-call breakdowns for the calls matching `q` (its limit is
/// ignored: a report counts everything in the period).
pub(crate) fn stats(conn: &Connection, q: &LogQuery) -> Result<Stats, CallLogError> {
    let (filter, args) = where_clause(q, scoped(conn)?);
    let sql = format!(
        "SELECT count(*), \
                coalesce(sum(verdict = 'block'), 0), \
                coalesce(sum(verdict = 'allow'), 0), \
                coalesce(sum(fail_open != 0), 0), \
                coalesce(sum(fail_open = 0 AND list = 'fail'), 0) \
         FROM calls{filter}"
    );
    let (total, blocked, allowed, fail_open, fail_closed) =
        conn.query_row(&sql, params_from_iter(args.iter()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
    let by = |column: &str| -> Result<Vec<StatCount>, CallLogError> {
        let and = if filter.is_empty() { " WHERE" } else { " AND" };
        let sql = format!(
            "SELECT coalesce({column}, ?{n}), count(*) AS c FROM calls{filter}{and} verdict = 'block' \
             GROUP BY 1 ORDER BY c DESC, 1 ASC",
            n = args.len() + 1
        );
        let mut bound = args.clone();
        bound.push(Value::Text(NO_RULE.to_string()));
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(bound), |r| {
            Ok(StatCount {
                key: r.get(0)?,
                calls: count(r.get(1)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    Ok(Stats {
        total: count(total),
        blocked: count(blocked),
        allowed: count(allowed),
        fail_open: count(fail_open),
        fail_closed: count(fail_closed),
        blocked_by_rule: by(RULE)?,
        // A log written before schema 2 has no `list_name`: the kind.
        blocked_by_list: by(if super::schema_version(conn)? >= 2 {
            filter::LIST
        } else {
            "list"
        })?,
        blocked_by_trunk: by("trunk")?,
    })
}

/// Per trunk: calls, blocks and fail-opens since `today` and since `hour`,
/// of the calls `scope` selects (its tenant and user; its times are ignored).
pub(crate) fn trunk_counts(
    conn: &Connection,
    today: DateTime<Utc>,
    hour: DateTime<Utc>,
    scope: &LogQuery,
) -> Result<Vec<TrunkCounts>, CallLogError> {
    let q = LogQuery {
        since: Some(today.min(hour)),
        until: None,
        limit: 0,
        ..scope.clone()
    };
    let (filter, mut args) = where_clause(&q, scoped(conn)?);
    let (t, h) = (args.len() + 1, args.len() + 2);
    args.push(Value::Integer(today.timestamp_millis()));
    args.push(Value::Integer(hour.timestamp_millis()));
    let sql = format!(
        "SELECT trunk, \
           sum(time >= ?{t}), sum(time >= ?{t} AND verdict = 'block'), sum(time >= ?{t} AND fail_open != 0), \
           sum(time >= ?{h}), sum(time >= ?{h} AND verdict = 'block'), sum(time >= ?{h} AND fail_open != 0) \
         FROM calls{filter} GROUP BY trunk ORDER BY trunk"
    );
    let mut stmt = conn.prepare(&sql)?;
    let n = |v: Option<i64>| count(v.unwrap_or(0));
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(TrunkCounts {
            trunk: r.get(0)?,
            today: Counts {
                calls: n(r.get(1)?),
                blocked: n(r.get(2)?),
                fail_open: n(r.get(3)?),
            },
            last_hour: Counts {
                calls: n(r.get(4)?),
                blocked: n(r.get(5)?),
                fail_open: n(r.get(6)?),
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Per tenant, ordered by name (the default tenant, empty, first): the calls
/// matching `q` (its limit ignored). A log without tenants has one row.
pub(crate) fn tenant_counts(
    conn: &Connection,
    q: &LogQuery,
) -> Result<Vec<TenantCounts>, CallLogError> {
    let scoped = scoped(conn)?;
    let (filter, args) = where_clause(q, scoped);
    let tenant = if scoped { "tenant" } else { "''" };
    let sql = format!(
        "SELECT {tenant}, count(*), coalesce(sum(verdict = 'block'), 0), \
                coalesce(sum(verdict = 'allow'), 0), coalesce(sum(fail_open != 0), 0) \
         FROM calls{filter} GROUP BY 1 ORDER BY 1"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| {
        Ok(TenantCounts {
            tenant: r.get(0)?,
            calls: count(r.get(1)?),
            blocked: count(r.get(2)?),
            allowed: count(r.get(3)?),
            fail_open: count(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Calls per (trunk, deciding list, rule) since `since`, for rules that decided.
pub(crate) fn hit_counts(
    conn: &Connection,
    since: DateTime<Utc>,
) -> Result<HitCounts, CallLogError> {
    let sql = "SELECT trunk, list_name, rule, count(*) FROM calls \
               WHERE time >= ?1 AND rule IS NOT NULL GROUP BY 1, 2, 3";
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([since.timestamp_millis()], |r| {
        Ok(((r.get(0)?, r.get(1)?, r.get(2)?), count(r.get(3)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// SQLite: `?n`, times in epoch milliseconds.
struct Sqlite;

impl Dialect for Sqlite {
    type Arg = Value;
    fn placeholder(n: usize) -> String {
        format!("?{n}")
    }
    fn time(t: DateTime<Utc>) -> Value {
        Value::Integer(t.timestamp_millis())
    }
    fn text(s: String) -> Value {
        Value::Text(s)
    }
    fn ends_either_way(col: &str, len: usize, p: &str) -> String {
        format!("substr({col}, -{len}) = {p} OR substr({p}, -length({col})) = {col}")
    }
}

fn where_clause(q: &LogQuery, scoped: bool) -> (String, Vec<Value>) {
    filter::where_clause::<Sqlite>(q, scoped)
}

fn logged_call(r: &Row<'_>) -> Result<LoggedCall, CallLogError> {
    let id: i64 = r.get(0)?;
    let time = millis(id, r.get(1)?)?;
    let ended_at = match r.get::<_, Option<i64>>(20)? {
        Some(ms) => Some(millis(id, ms)?),
        None => None,
    };
    Ok(LoggedCall {
        id,
        time,
        unique_id: r.get(2)?,
        pbx: r.get(3)?,
        trunk: r.get(4)?,
        did: r.get(5)?,
        caller_raw: r.get(6)?,
        caller_e164: r.get(7)?,
        caller_name: r.get(8)?,
        anonymous: r.get(9)?,
        verdict: r.get(10)?,
        list: r.get(11)?,
        list_name: r.get(21)?,
        rule: r.get(12)?,
        action: r.get(13)?,
        reason: r.get(14)?,
        decision_ns: count(r.get(15)?),
        fail_open: r.get(16)?,
        end_state: r.get(17)?,
        hangup_cause: r.get(18)?,
        duration_ms: r.get::<_, Option<i64>>(19)?.map(count),
        ended_at,
        tenant: r.get(22)?,
        user: r.get(23)?,
    })
}

fn millis(id: i64, ms: i64) -> Result<DateTime<Utc>, CallLogError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| CallLogError::BadRow {
        id,
        message: format!("time {ms} ms is out of range"),
    })
}
