//! Reading the log: filtered listings, stats and lookup by unique id.
//!
//! Every value a user typed is bound as a parameter, never spliced into SQL.
//! Readers use read-only connections ([`LogReader`]) so the CLI and the HTTP
//! API can never take the write lock from the service's writer.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};
use serde::{Serialize, Serializer};

use super::filter::{self, Dialect, RULE};
use super::{CallLogError, store};

/// Digits both numbers must have before one may match as the tail of the other
/// (`5551234567` ↔ `+15551234567`): fewer would match unrelated numbers.
pub const MIN_SUFFIX_DIGITS: usize = 7;

/// How stats name blocked calls that no rule decided (e.g. `default`).
pub const NO_RULE: &str = "(none)";

/// Filters for [`query`] and [`stats`]; every field narrows, `None` ignores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogQuery {
    /// Calls at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Calls strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// `allow` or `block` (exact).
    pub verdict: Option<String>,
    pub trunk: Option<String>,
    pub rule: Option<String>,
    /// Matches `caller_raw` or `caller_e164` exactly (so `anonymous` works), or
    /// by digits only: equal digits, or with at least [`MIN_SUFFIX_DIGITS`]
    /// digits on both sides one ending with the other, so `+1 555-123-4567`
    /// finds a call stored as `5551234567`.
    pub caller: Option<String>,
    /// Most rows [`query`] returns, newest first; 0 means no limit.
    pub limit: usize,
}

/// One row of the log as the CLI and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedCall {
    pub id: i64,
    #[serde(serialize_with = "rfc3339")]
    pub time: DateTime<Utc>,
    pub unique_id: String,
    pub pbx: String,
    pub trunk: String,
    pub did: String,
    #[serde(rename = "caller")]
    pub caller_raw: String,
    pub caller_e164: Option<String>,
    pub caller_name: String,
    pub anonymous: bool,
    pub verdict: String,
    pub list: String,
    /// The deciding list's name (`spam`, `exec-vip`); empty when no rule decided.
    pub list_name: String,
    /// The deciding rule; `exclusive` for an exclusive-mode block.
    pub rule: Option<String>,
    pub action: String,
    pub reason: String,
    pub decision_ns: u64,
    pub fail_open: bool,
    pub end_state: Option<String>,
    pub hangup_cause: Option<String>,
    pub duration_ms: Option<u64>,
    #[serde(serialize_with = "rfc3339_opt")]
    pub ended_at: Option<DateTime<Utc>>,
}

fn rfc3339<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn rfc3339_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, s),
        None => s.serialize_none(),
    }
}

/// A count for one rule, list or trunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatCount {
    pub key: String,
    pub calls: u64,
}

/// Blocking activity over a period: the daily report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub total: u64,
    pub blocked: u64,
    pub allowed: u64,
    /// Calls let through without a decision (callguard failed open).
    pub fail_open: u64,
    /// Calls blocked without a decision (`fail: closed`).
    pub fail_closed: u64,
    /// Blocked calls per rule, most first; `exclusive` for exclusive-mode
    /// blocks; [`NO_RULE`] for none.
    pub blocked_by_rule: Vec<StatCount>,
    pub blocked_by_list: Vec<StatCount>,
    pub blocked_by_trunk: Vec<StatCount>,
}

/// A read-only connection to the log, for the CLI and the HTTP API: the
/// SQLite file, or the fleet's PostgreSQL table (`log.postgres`).
pub struct LogReader {
    inner: Inner,
}

enum Inner {
    Sqlite(Connection),
    Postgres(Box<super::pg::PgReader>),
}

impl LogReader {
    /// Opens an existing log read-only; see [`store::open_reader`].
    pub fn open(path: impl AsRef<Path>) -> Result<LogReader, CallLogError> {
        Ok(LogReader {
            inner: Inner::Sqlite(store::open_reader(path.as_ref())?),
        })
    }

    /// Connects to the PostgreSQL log. Blocking: call it from a blocking
    /// thread or outside any runtime, as for [`open`](Self::open).
    pub fn connect(target: &super::PgTarget) -> Result<LogReader, CallLogError> {
        Ok(LogReader {
            inner: Inner::Postgres(Box::new(super::pg::PgReader::connect(target)?)),
        })
    }

    /// [`connect`](Self::connect) when `postgres` is set, else [`open`](Self::open).
    pub fn open_either(
        path: impl AsRef<Path>,
        postgres: Option<&super::PgTarget>,
    ) -> Result<LogReader, CallLogError> {
        match postgres {
            Some(t) => Self::connect(t),
            None => Self::open(path),
        }
    }

    pub fn query(&self, q: &LogQuery) -> Result<Vec<LoggedCall>, CallLogError> {
        match &self.inner {
            Inner::Sqlite(conn) => query(conn, q),
            Inner::Postgres(pg) => pg.query(q),
        }
    }

    pub fn stats(&self, q: &LogQuery) -> Result<Stats, CallLogError> {
        match &self.inner {
            Inner::Sqlite(conn) => stats(conn, q),
            Inner::Postgres(pg) => pg.stats(q),
        }
    }

    pub fn find_by_unique_id(&self, unique_id: &str) -> Result<Option<LoggedCall>, CallLogError> {
        match &self.inner {
            Inner::Sqlite(conn) => find_by_unique_id(conn, unique_id),
            Inner::Postgres(pg) => pg.find_by_unique_id(unique_id),
        }
    }
}

/// The selected columns; a log written before schema 2 has no `list_name`.
fn columns(conn: &Connection) -> Result<String, CallLogError> {
    let list_name = if store::schema_version(conn)? >= 2 {
        "list_name"
    } else {
        "''"
    };
    Ok(format!(
        "id, time, unique_id, pbx, trunk, did, caller_raw, caller_e164, \
         caller_name, anonymous, verdict, list, {RULE}, action, reason, decision_ns, fail_open, \
         end_state, hangup_cause, duration_ms, ended_at, {list_name}"
    ))
}

/// Calls matching `q`, newest first.
pub fn query(conn: &Connection, q: &LogQuery) -> Result<Vec<LoggedCall>, CallLogError> {
    let (filter, mut args) = where_clause(q);
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
pub fn find_by_unique_id(
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
pub fn stats(conn: &Connection, q: &LogQuery) -> Result<Stats, CallLogError> {
    let (filter, args) = where_clause(q);
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
        blocked_by_list: by("list")?,
        blocked_by_trunk: by("trunk")?,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
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

fn where_clause(q: &LogQuery) -> (String, Vec<Value>) {
    filter::where_clause::<Sqlite>(q)
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
    })
}

fn millis(id: i64, ms: i64) -> Result<DateTime<Utc>, CallLogError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| CallLogError::BadRow {
        id,
        message: format!("time {ms} ms is out of range"),
    })
}
