//! Reading the PostgreSQL log (`log.postgres`) with the blocking client: the
//! same answers as the SQLite reader ([`crate::store::sqlite`]), from the
//! fleet's shared table.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

use super::{PgTarget, STATEMENT_TIMEOUT, TABLE};
use crate::store::CallLogError;
use crate::store::calls::{
    Counts, HitCounts, LogQuery, LoggedCall, NO_RULE, StatCount, Stats, TenantCounts, TrunkCounts,
    count,
};
use crate::store::filter::{self, Dialect, RULE};

/// A blocking connection for the CLI and the API's blocking threads. Not for
/// async code: the client runs its own small runtime.
pub(crate) struct PgReader {
    client: Mutex<postgres::Client>,
    shown: String,
    /// The table has `tenant` and `user_ext` (every writer of this build
    /// adds them; a table only older instances wrote lacks them).
    scoped: bool,
}

impl PgReader {
    pub(crate) fn connect(target: &PgTarget) -> Result<PgReader, CallLogError> {
        let config = postgres::Config::from(target.config.clone());
        let mut client = config
            .connect(postgres::NoTls)
            .map_err(|e| CallLogError::Postgres(format!("{}: {e}", target.shown)))?;
        let _ = client.batch_execute(&format!(
            "SET statement_timeout = {}",
            STATEMENT_TIMEOUT.as_millis()
        ));
        let scoped = client
            .query_one(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() \
                 AND table_name = $1 AND column_name = 'tenant'",
                &[&TABLE],
            )
            .ok()
            .and_then(|r| r.try_get::<_, i64>(0).ok())
            .is_some_and(|n| n > 0);
        Ok(PgReader {
            client: Mutex::new(client),
            shown: target.shown.clone(),
            scoped,
        })
    }

    fn run<T>(
        &self,
        sql: &str,
        args: &[Arg],
        f: impl FnOnce(Vec<postgres::Row>) -> Result<T, CallLogError>,
    ) -> Result<T, CallLogError> {
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(Arg::as_sql).collect();
        let mut client = self
            .client
            .lock()
            .map_err(|_| CallLogError::Postgres("reader poisoned".into()))?;
        match client.query(sql, &params) {
            Ok(rows) => f(rows),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Err(
                CallLogError::NoSchema(std::path::PathBuf::from(&self.shown)),
            ),
            Err(e) => Err(CallLogError::Postgres(format!("{}: {e}", self.shown))),
        }
    }

    /// Calls matching `q`, newest first (as [`super::query`]).
    pub(crate) fn query(&self, q: &LogQuery) -> Result<Vec<LoggedCall>, CallLogError> {
        let (filter, mut args) = where_clause(q, self.scoped);
        let select = select(self.scoped);
        let mut sql = format!("SELECT {select} FROM {TABLE}{filter} ORDER BY time DESC, id DESC");
        if q.limit > 0 {
            args.push(Arg::Int(i64::try_from(q.limit).unwrap_or(i64::MAX)));
            sql.push_str(&format!(" LIMIT ${}", args.len()));
        }
        self.run(&sql, &args, |rows| rows.iter().map(logged_call).collect())
    }

    /// The newest call with this PBX unique id.
    pub(crate) fn find_by_unique_id(
        &self,
        unique_id: &str,
    ) -> Result<Option<LoggedCall>, CallLogError> {
        let select = select(self.scoped);
        let sql =
            format!("SELECT {select} FROM {TABLE} WHERE unique_id = $1 ORDER BY id DESC LIMIT 1");
        self.run(&sql, &[Arg::Text(unique_id.to_string())], |rows| {
            rows.first().map(logged_call).transpose()
        })
    }

    /// Totals and blocked-call breakdowns (as [`super::stats`]).
    pub(crate) fn stats(&self, q: &LogQuery) -> Result<Stats, CallLogError> {
        let (filter, args) = where_clause(q, self.scoped);
        let sql = format!(
            "SELECT count(*), \
                    count(*) FILTER (WHERE verdict = 'block'), \
                    count(*) FILTER (WHERE verdict = 'allow'), \
                    count(*) FILTER (WHERE fail_open), \
                    count(*) FILTER (WHERE NOT fail_open AND list = 'fail') \
             FROM {TABLE}{filter}"
        );
        let totals = self.run(&sql, &args, |rows| {
            let r = rows
                .first()
                .ok_or_else(|| CallLogError::Postgres("no totals".into()))?;
            let n = |i: usize| r.try_get::<_, i64>(i).map(count).map_err(pg_err);
            Ok([n(0)?, n(1)?, n(2)?, n(3)?, n(4)?])
        })?;
        let by = |column: &str| -> Result<Vec<StatCount>, CallLogError> {
            let and = if filter.is_empty() { " WHERE" } else { " AND" };
            let mut bound = args.clone();
            bound.push(Arg::Text(NO_RULE.to_string()));
            let sql = format!(
                "SELECT coalesce({column}, ${n}) AS k, count(*) AS c FROM {TABLE}{filter}{and} \
                 verdict = 'block' GROUP BY 1 ORDER BY c DESC, k ASC",
                n = bound.len()
            );
            self.run(&sql, &bound, |rows| {
                rows.iter()
                    .map(|r| {
                        Ok(StatCount {
                            key: r.try_get(0).map_err(pg_err)?,
                            calls: count(r.try_get(1).map_err(pg_err)?),
                        })
                    })
                    .collect()
            })
        };
        Ok(Stats {
            total: totals[0],
            blocked: totals[1],
            allowed: totals[2],
            fail_open: totals[3],
            fail_closed: totals[4],
            blocked_by_rule: by(RULE)?,
            blocked_by_list: by(crate::store::filter::LIST)?,
            blocked_by_trunk: by("trunk")?,
        })
    }

    /// Per trunk: calls, blocks and fail-opens since `today` and since
    /// `hour`, of the calls `scope` selects (as the SQLite reader's).
    pub(crate) fn trunk_counts(
        &self,
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
        let (filter, mut args) = where_clause(&q, self.scoped);
        let (t, h) = (args.len() + 1, args.len() + 2);
        args.push(Arg::Time(today));
        args.push(Arg::Time(hour));
        let sql = format!(
            "SELECT trunk, \
               count(*) FILTER (WHERE time >= ${t}), \
               count(*) FILTER (WHERE time >= ${t} AND verdict = 'block'), \
               count(*) FILTER (WHERE time >= ${t} AND fail_open), \
               count(*) FILTER (WHERE time >= ${h}), \
               count(*) FILTER (WHERE time >= ${h} AND verdict = 'block'), \
               count(*) FILTER (WHERE time >= ${h} AND fail_open) \
             FROM {TABLE}{filter} GROUP BY trunk ORDER BY trunk"
        );
        self.run(&sql, &args, |rows| {
            rows.iter()
                .map(|r| {
                    let n = |i: usize| r.try_get::<_, i64>(i).map(count).map_err(pg_err);
                    Ok(TrunkCounts {
                        trunk: r.try_get(0).map_err(pg_err)?,
                        today: Counts {
                            calls: n(1)?,
                            blocked: n(2)?,
                            fail_open: n(3)?,
                        },
                        last_hour: Counts {
                            calls: n(4)?,
                            blocked: n(5)?,
                            fail_open: n(6)?,
                        },
                    })
                })
                .collect()
        })
    }

    /// Per tenant, ordered by name: the calls matching `q` (its limit ignored).
    pub(crate) fn tenant_counts(&self, q: &LogQuery) -> Result<Vec<TenantCounts>, CallLogError> {
        let (filter, args) = where_clause(q, self.scoped);
        let tenant = if self.scoped { "tenant" } else { "''::text" };
        let sql = format!(
            "SELECT {tenant}, count(*), count(*) FILTER (WHERE verdict = 'block'), \
                    count(*) FILTER (WHERE verdict = 'allow'), count(*) FILTER (WHERE fail_open) \
             FROM {TABLE}{filter} GROUP BY 1 ORDER BY 1"
        );
        self.run(&sql, &args, |rows| {
            rows.iter()
                .map(|r| {
                    let n = |i: usize| r.try_get::<_, i64>(i).map(count).map_err(pg_err);
                    Ok(TenantCounts {
                        tenant: r.try_get(0).map_err(pg_err)?,
                        calls: n(1)?,
                        blocked: n(2)?,
                        allowed: n(3)?,
                        fail_open: n(4)?,
                    })
                })
                .collect()
        })
    }

    /// Calls per (trunk, deciding list, rule) since `since`, for rules that decided.
    pub(crate) fn hit_counts(&self, since: DateTime<Utc>) -> Result<HitCounts, CallLogError> {
        let sql = format!(
            "SELECT trunk, list_name, rule, count(*) FROM {TABLE} \
             WHERE time >= $1 AND rule IS NOT NULL GROUP BY 1, 2, 3"
        );
        self.run(&sql, &[Arg::Time(since)], |rows| {
            rows.iter()
                .map(|r| {
                    let key = (
                        r.try_get(0).map_err(pg_err)?,
                        r.try_get(1).map_err(pg_err)?,
                        r.try_get(2).map_err(pg_err)?,
                    );
                    Ok((key, count(r.try_get(3).map_err(pg_err)?)))
                })
                .collect()
        })
    }
}

/// The selected columns; a table without `tenant` / `user_ext` reads empty ones.
fn select(scoped: bool) -> String {
    let scope = if scoped {
        "tenant, user_ext"
    } else {
        "''::text, ''::text"
    };
    format!(
        "id, time, unique_id, pbx, trunk, did, caller_raw, caller_e164, caller_name, \
         anonymous, verdict, list, {RULE}, action, reason, decision_ns, fail_open, end_state, \
         hangup_cause, duration_ms, ended_at, list_name, {scope}"
    )
}

/// A bound parameter; user input only ever travels as one of these.
#[derive(Clone, Debug)]
enum Arg {
    Text(String),
    Int(i64),
    Time(DateTime<Utc>),
}

impl Arg {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Arg::Text(s) => s,
            Arg::Int(i) => i,
            Arg::Time(t) => t,
        }
    }
}

/// PostgreSQL: `$n`, typed times.
struct Postgres;

impl Dialect for Postgres {
    type Arg = Arg;
    fn placeholder(n: usize) -> String {
        format!("${n}")
    }
    fn time(t: DateTime<Utc>) -> Arg {
        Arg::Time(t)
    }
    fn text(s: String) -> Arg {
        Arg::Text(s)
    }
    fn ends_either_way(col: &str, len: usize, p: &str) -> String {
        format!("right({col}, {len}) = {p} OR right({p}::text, length({col})) = {col}")
    }
}

/// The same filters as the SQLite reader.
fn where_clause(q: &LogQuery, scoped: bool) -> (String, Vec<Arg>) {
    filter::where_clause::<Postgres>(q, scoped)
}

fn pg_err(e: postgres::Error) -> CallLogError {
    CallLogError::Postgres(e.to_string())
}

fn logged_call(r: &postgres::Row) -> Result<LoggedCall, CallLogError> {
    Ok(LoggedCall {
        id: r.try_get(0).map_err(pg_err)?,
        time: r.try_get(1).map_err(pg_err)?,
        unique_id: r.try_get(2).map_err(pg_err)?,
        pbx: r.try_get(3).map_err(pg_err)?,
        trunk: r.try_get(4).map_err(pg_err)?,
        did: r.try_get(5).map_err(pg_err)?,
        caller_raw: r.try_get(6).map_err(pg_err)?,
        caller_e164: r.try_get(7).map_err(pg_err)?,
        caller_name: r.try_get(8).map_err(pg_err)?,
        anonymous: r.try_get(9).map_err(pg_err)?,
        verdict: r.try_get(10).map_err(pg_err)?,
        list: r.try_get(11).map_err(pg_err)?,
        rule: r.try_get(12).map_err(pg_err)?,
        action: r.try_get(13).map_err(pg_err)?,
        reason: r.try_get(14).map_err(pg_err)?,
        decision_ns: count(r.try_get(15).map_err(pg_err)?),
        fail_open: r.try_get(16).map_err(pg_err)?,
        end_state: r.try_get(17).map_err(pg_err)?,
        hangup_cause: r.try_get(18).map_err(pg_err)?,
        duration_ms: r.try_get::<_, Option<i64>>(19).map_err(pg_err)?.map(count),
        ended_at: r.try_get(20).map_err(pg_err)?,
        list_name: r.try_get(21).map_err(pg_err)?,
        tenant: r.try_get(22).map_err(pg_err)?,
        user: r.try_get(23).map_err(pg_err)?,
    })
}
