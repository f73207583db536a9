//! The decision log in PostgreSQL (`log.postgres`), for a fleet: every instance writes
//! one shared table, so `callguard log` and `/api/v1/calls` on any instance see every
//! instance's calls.
//!
//! The call path is the same as with SQLite: a bounded queue and one writer task per
//! instance (`calllog::writer`), writing through [`PgSink`]. Here the writer batches a queue drain into one
//! transaction of multi-row `INSERT`s (one round trip per 500 rows) and the ends'
//! `UPDATE`s; a lost server costs the batch in flight (counted as write errors) and the
//! next batch reconnects. Readers connect with the blocking client on their own thread.
//!
//! The password never appears in a URL callguard prints: [`PgTarget::shown`] is
//! `user@host:port/dbname`, and the password is best given by environment
//! (`log.postgres_password_env`, else libpq's `PGPASSWORD`).

use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;

use super::calls::{CallRecord, LogRow, digits, sat};

pub(crate) mod read;
pub(crate) use read::PgReader;

/// The table every instance writes; prefixed, as it usually shares a database.
pub(crate) const TABLE: &str = "callguard_calls";

/// Records per `INSERT` statement: 22 parameters each stays far below the
/// protocol's 65,535 and one statement carries a whole writer batch.
const ROWS_PER_INSERT: usize = 500;

/// Connecting: long enough for a remote server, short enough that a down
/// server shows in the log within one batch.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One batch (or purge) round trip; past it the connection is dropped and rebuilt.
pub(crate) const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Created by the first instance to start; later ones find it. Times are
/// `timestamptz` so analysts can partition and query by time directly. A
/// table created before `tenant` / `user_ext` gets them (old rows `''`: the
/// default tenant, no user), once, by the first newer instance to connect.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS callguard_calls (
    id            BIGSERIAL PRIMARY KEY,
    time          TIMESTAMPTZ NOT NULL,
    instance      TEXT        NOT NULL DEFAULT '',
    unique_id     TEXT        NOT NULL,
    pbx           TEXT        NOT NULL,
    trunk         TEXT        NOT NULL,
    did           TEXT        NOT NULL,
    caller_raw    TEXT        NOT NULL,
    caller_e164   TEXT,
    caller_name   TEXT        NOT NULL,
    anonymous     BOOLEAN     NOT NULL,
    verdict       TEXT        NOT NULL,
    list          TEXT        NOT NULL,
    list_name     TEXT        NOT NULL DEFAULT '',
    rule          TEXT,
    action        TEXT        NOT NULL,
    reason        TEXT        NOT NULL,
    decision_ns   BIGINT      NOT NULL,
    fail_open     BOOLEAN     NOT NULL,
    end_state     TEXT,
    hangup_cause  TEXT,
    duration_ms   BIGINT,
    ended_at      TIMESTAMPTZ,
    caller_digits TEXT        NOT NULL,
    e164_digits   TEXT
);
CREATE INDEX IF NOT EXISTS callguard_calls_time ON callguard_calls(time);
CREATE INDEX IF NOT EXISTS callguard_calls_unique_id ON callguard_calls(unique_id);
CREATE INDEX IF NOT EXISTS callguard_calls_caller_digits ON callguard_calls(caller_digits);
CREATE INDEX IF NOT EXISTS callguard_calls_e164_digits ON callguard_calls(e164_digits);
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
                   AND table_name = 'callguard_calls' AND column_name = 'tenant') THEN
        ALTER TABLE callguard_calls ADD COLUMN tenant TEXT NOT NULL DEFAULT '',
                                    ADD COLUMN user_ext TEXT NOT NULL DEFAULT '';
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS callguard_calls_tenant_time ON callguard_calls(tenant, time);
";

/// Serialises the schema creation of instances starting together
/// (`CREATE … IF NOT EXISTS` alone races on the catalog).
const SCHEMA_LOCK: i64 = 0x6361_6c6c_6775_6172; // "callguar"

/// Where the log lives: the parsed `log.postgres`, with the password applied.
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    shown: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgTarget({})", self.shown)
    }
}

impl PgTarget {
    /// Parses a URL (`postgres://user@host:port/db`) or key=value string. The
    /// password comes from the environment variable `password_env` when named,
    /// else `PGPASSWORD` when set, else the URL. Errors never quote the input.
    pub fn parse(url: &str, password_env: Option<&str>) -> Result<PgTarget, String> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| format!("log.postgres is not a PostgreSQL connection URL: {e}"))?;
        if config.get_hosts().is_empty() {
            return Err("log.postgres names no host (postgres://user@host:port/dbname)".into());
        }
        let from_env = match password_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                format!("log.postgres_password_env: the environment variable {var} is not set")
            })?),
            None => std::env::var("PGPASSWORD").ok(),
        };
        if let Some(p) = from_env {
            config.password(p);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("callguard");
        let shown = show(&config);
        Ok(PgTarget { config, shown })
    }

    /// `user@host:port/dbname`: safe for logs and errors.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The blocking client's settings (the list store, its listener), with
    /// TCP keepalives so a server gone silent is noticed, not waited on.
    pub(crate) fn blocking_config(&self) -> postgres::Config {
        let mut c = postgres::Config::from(self.config.clone());
        c.keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3);
        c
    }

    /// Connects (bounded by [`CONNECT_TIMEOUT`]), spawns the connection's task and
    /// makes sure the table exists. For the writer task.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, String> {
        let connecting = self.config.connect(tokio_postgres::NoTls);
        let (client, connection) = tokio::time::timeout(CONNECT_TIMEOUT * 2, connecting)
            .await
            .map_err(|_| format!("{}: connect timed out", self.shown))?
            .map_err(|e| format!("{}: {e}", self.shown))?;
        let shown = self.shown.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(server = %shown, error = %e, "call log: PostgreSQL connection lost");
            }
        });
        let schema = async {
            client
                .batch_execute(&format!(
                    "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {SCHEMA} COMMIT;"
                ))
                .await
        };
        tokio::time::timeout(STATEMENT_TIMEOUT, schema)
            .await
            .map_err(|_| format!("{}: creating the schema timed out", self.shown))?
            .map_err(|e| format!("{}: creating the schema: {e}", self.shown))?;
        Ok(client)
    }
}

fn show(c: &tokio_postgres::Config) -> String {
    let host = match c.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432);
    let user = c.get_user().unwrap_or("");
    let db = c.get_dbname().unwrap_or(user);
    format!("{user}@{host}:{port}/{db}")
}

/// This instance's name in the `instance` column: the host name (from the
/// kernel, not `/proc`, which the shipped systemd unit hides).
pub(crate) fn instance_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it or fails.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

// ---------------------------------------------------------------- writing

/// Writes a batch in one transaction: the records (multi-row `INSERT`s), then
/// the ends (an end always follows its record in the queue, so it finds it).
/// An error loses the whole batch: the caller counts it.
async fn write_batch(
    client: &mut tokio_postgres::Client,
    instance: &str,
    rows: Vec<LogRow>,
) -> Result<(), tokio_postgres::Error> {
    let mut records = Vec::new();
    let mut ends = Vec::new();
    let mut ended = Vec::new();
    for r in rows {
        match r {
            LogRow::Record(r) => records.push(r),
            LogRow::End(e, at) => ends.push((e, at)),
            LogRow::Ended(r, e, at) => ended.push((r, e, at)),
        }
    }
    let tx = client.transaction().await?;
    for chunk in records.chunks(ROWS_PER_INSERT) {
        insert_records(&tx, instance, chunk, false).await?;
    }
    // Rare (sessions that never started): one row each, its end set by the
    // id the insert returns, since its unique id is often unknown.
    for (r, e, at) in &ended {
        let id = insert_records(&tx, instance, std::slice::from_ref(r), true).await?;
        tx.execute(
            &format!(
                "UPDATE {TABLE} SET end_state = $1, hangup_cause = $2, duration_ms = $3, ended_at = $4
                 WHERE id = $5"
            ),
            &[&e.end_state, &e.hangup_cause, &sat(e.duration_ms), at, &id],
        )
        .await?;
    }
    if !ends.is_empty() {
        let update = tx
            .prepare(&format!(
                "UPDATE {TABLE} SET end_state = $1, hangup_cause = $2, duration_ms = $3, ended_at = $4
                 WHERE id = (SELECT id FROM {TABLE} WHERE unique_id = $5 ORDER BY id DESC LIMIT 1)"
            ))
            .await?;
        for (e, at) in &ends {
            let n = tx
                .execute(
                    &update,
                    &[
                        &e.end_state,
                        &e.hangup_cause,
                        &sat(e.duration_ms),
                        at,
                        &e.unique_id,
                    ],
                )
                .await?;
            if n == 0 {
                tracing::debug!(unique_id = %e.unique_id, "call log: end of an unlogged call");
            }
        }
    }
    tx.commit().await
}

const COLUMNS: [&str; 22] = [
    "time",
    "instance",
    "unique_id",
    "pbx",
    "trunk",
    "did",
    "caller_raw",
    "caller_e164",
    "caller_name",
    "anonymous",
    "verdict",
    "list",
    "list_name",
    "rule",
    "action",
    "reason",
    "decision_ns",
    "fail_open",
    "caller_digits",
    "e164_digits",
    "tenant",
    "user_ext",
];

/// Inserts `records` in one statement; with `returning`, returns the
/// highest id inserted (else 0: a batch does not need its ids back).
async fn insert_records(
    tx: &tokio_postgres::Transaction<'_>,
    instance: &str,
    records: &[CallRecord],
    returning: bool,
) -> Result<i64, tokio_postgres::Error> {
    if records.is_empty() {
        return Ok(0);
    }
    let mut sql = format!("INSERT INTO {TABLE} ({}) VALUES ", COLUMNS.join(", "));
    // Owned values first, borrowed as parameters below.
    let derived: Vec<(i64, String, Option<String>)> = records
        .iter()
        .map(|r| {
            (
                sat(r.decision_ns),
                digits(&r.caller_raw),
                r.caller_e164.as_deref().map(digits),
            )
        })
        .collect();
    let instance = instance.to_string();
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(records.len() * COLUMNS.len());
    for (i, (r, d)) in records.iter().zip(&derived).enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let base = i * COLUMNS.len();
        let placeholders: Vec<String> = (1..=COLUMNS.len())
            .map(|k| format!("${}", base + k))
            .collect();
        sql.push_str(&format!("({})", placeholders.join(", ")));
        params.extend_from_slice(&[
            &r.time,
            &instance,
            &r.unique_id,
            &r.pbx,
            &r.trunk,
            &r.did,
            &r.caller_raw,
            &r.caller_e164,
            &r.caller_name,
            &r.anonymous,
            &r.verdict,
            &r.list,
            &r.list_name,
            &r.rule,
            &r.action,
            &r.reason,
            &d.0,
            &r.fail_open,
            &d.1,
            &d.2,
            &r.tenant,
            &r.user,
        ]);
    }
    if !returning {
        tx.execute(sql.as_str(), &params).await?;
        return Ok(0);
    }
    sql.push_str(" RETURNING id");
    let rows = tx.query(sql.as_str(), &params).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.try_get::<_, i64>(0).ok())
        .max()
        .unwrap_or(0))
}

/// Deletes up to `limit` rows older than `cutoff`, oldest first.
async fn purge_chunk(
    client: &tokio_postgres::Client,
    cutoff: DateTime<Utc>,
    limit: usize,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            &format!(
                "DELETE FROM {TABLE} WHERE id IN
                   (SELECT id FROM {TABLE} WHERE time < $1 ORDER BY time LIMIT $2)"
            ),
            &[&cutoff, &sat(limit as u64)],
        )
        .await
}

// ---------------------------------------------------------------- the writer's side

/// Reconnection attempts are at least this far apart.
const PG_RETRY: Duration = Duration::from_secs(1);

/// The decision log's writer side in PostgreSQL (`log.postgres`): one async
/// connection, rebuilt after a failure (at most one attempt a second).
pub(crate) struct PgSink {
    target: PgTarget,
    client: Option<tokio_postgres::Client>,
    /// When a connection was last tried, so a down server costs one attempt a second.
    last_attempt: Option<Instant>,
    instance: String,
}

impl PgSink {
    /// Connects now; a server that cannot be reached is logged, not fatal:
    /// calls are screened either way, and each batch tries to reconnect.
    pub(crate) async fn connect(target: PgTarget) -> PgSink {
        let client = match target.connect().await {
            Ok(c) => {
                tracing::info!(server = %target.shown(), "call log: writing to PostgreSQL");
                Some(c)
            }
            Err(e) => {
                tracing::error!(error = %e, "call log: PostgreSQL unreachable at start; rows are dropped until it answers");
                None
            }
        };
        PgSink {
            target,
            client,
            last_attempt: Some(Instant::now()),
            instance: instance_name(),
        }
    }

    async fn client(&mut self) -> Option<&mut tokio_postgres::Client> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() && self.last_attempt.is_none_or(|t| t.elapsed() >= PG_RETRY) {
            self.last_attempt = Some(Instant::now());
            match self.target.connect().await {
                Ok(c) => {
                    tracing::info!(server = %self.target.shown(), "call log: PostgreSQL connected");
                    self.client = Some(c);
                }
                Err(e) => tracing::error!(error = %e, "call log: cannot reach PostgreSQL"),
            }
        }
        self.client.as_mut()
    }

    /// Writes `rows` in one transaction; returns how many were lost (all of
    /// them on any error: the batch is one transaction).
    pub(crate) async fn write(&mut self, rows: Vec<LogRow>) -> u64 {
        if rows.is_empty() {
            return 0;
        }
        let n = rows.len() as u64;
        let instance = self.instance.clone();
        let Some(client) = self.client().await else {
            return n;
        };
        let job = write_batch(client, &instance, rows);
        match tokio::time::timeout(STATEMENT_TIMEOUT, job).await {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                tracing::error!(error = %e, rows = n, "call log: PostgreSQL batch failed; batch lost");
                n
            }
            Err(_) => {
                tracing::error!(
                    rows = n,
                    "call log: PostgreSQL batch timed out; batch lost, reconnecting"
                );
                self.client = None;
                n
            }
        }
    }

    /// Deletes up to `limit` rows older than `cutoff`.
    pub(crate) async fn purge_chunk(
        &mut self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<usize, String> {
        let Some(client) = self.client().await else {
            return Err("PostgreSQL unreachable".to_string());
        };
        let job = purge_chunk(client, cutoff, limit);
        match tokio::time::timeout(STATEMENT_TIMEOUT, job).await {
            Ok(Ok(n)) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => {
                self.client = None;
                Err("timed out".to_string())
            }
        }
    }
}
