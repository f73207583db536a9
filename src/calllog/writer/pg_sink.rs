//! The writer's PostgreSQL side (`log.postgres`), apart from the SQLite one.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::pg::{self, PgRow, PgTarget};
use super::{Counters, Msg, Outcome, Split, Work, fail, split, store};

/// The PostgreSQL side of the writer (`log.postgres`): one async connection,
/// rebuilt after a failure.
pub(super) struct PgSink {
    pub(super) target: PgTarget,
    pub(super) client: Option<tokio_postgres::Client>,
    /// When a connection was last tried, so a down server costs one attempt a second.
    pub(super) last_attempt: Option<std::time::Instant>,
    pub(super) instance: String,
}

/// Reconnection attempts are at least this far apart.
const PG_RETRY: Duration = Duration::from_secs(1);

impl PgSink {
    async fn client(&mut self) -> Option<&mut tokio_postgres::Client> {
        if self.client.as_ref().is_some_and(|c| c.is_closed()) {
            self.client = None;
        }
        if self.client.is_none() && self.last_attempt.is_none_or(|t| t.elapsed() >= PG_RETRY) {
            self.last_attempt = Some(std::time::Instant::now());
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

    pub(super) async fn process(
        &mut self,
        work: Work,
        cutoff: Option<DateTime<Utc>>,
        counters: &Counters,
    ) -> Outcome {
        match work {
            Work::PurgeChunk => {
                let n = self.purge(cutoff, store::PURGE_CHUNK).await;
                Outcome {
                    more_to_purge: n == store::PURGE_CHUNK,
                    ..Outcome::default()
                }
            }
            Work::Batch(batch) => {
                let Split {
                    rows,
                    flushes,
                    purges,
                    out,
                } = split(batch);
                self.write(rows, counters).await;
                let mut purged = 0;
                if !purges.is_empty() {
                    loop {
                        let n = self.purge(cutoff, store::PURGE_CHUNK).await;
                        purged += n;
                        if n < store::PURGE_CHUNK {
                            break;
                        }
                    }
                }
                for ack in flushes {
                    let _ = ack.send(());
                }
                for ack in purges {
                    let _ = ack.send(purged);
                }
                out
            }
        }
    }

    async fn write(&mut self, rows: Vec<Msg>, counters: &Counters) {
        let rows: Vec<PgRow> = rows
            .into_iter()
            .filter_map(|m| match m {
                Msg::Record(r) => Some(PgRow::Record(r)),
                Msg::End(e, at) => Some(PgRow::End(e, at)),
                Msg::Ended(r, e, at) => Some(PgRow::Ended(r, e, at)),
                _ => None,
            })
            .collect();
        if rows.is_empty() {
            return;
        }
        let n = rows.len();
        let instance = self.instance.clone();
        let Some(client) = self.client().await else {
            return fail(counters, n);
        };
        let job = pg::write_batch(client, &instance, rows);
        match tokio::time::timeout(pg::STATEMENT_TIMEOUT, job).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, rows = n, "call log: PostgreSQL batch failed; batch lost");
                fail(counters, n);
            }
            Err(_) => {
                tracing::error!(
                    rows = n,
                    "call log: PostgreSQL batch timed out; batch lost, reconnecting"
                );
                fail(counters, n);
                self.client = None;
            }
        }
    }

    /// Deletes up to `limit` rows past retention; 0 when off or on error.
    async fn purge(&mut self, cutoff: Option<DateTime<Utc>>, limit: usize) -> usize {
        let Some(cutoff) = cutoff else { return 0 };
        let Some(client) = self.client().await else {
            return 0;
        };
        let job = pg::purge_chunk(client, cutoff, limit);
        match tokio::time::timeout(pg::STATEMENT_TIMEOUT, job).await {
            Ok(Ok(n)) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > 0 {
                    tracing::info!(rows = n, %cutoff, "call log: purged rows past retention");
                }
                n
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "call log: purge failed");
                0
            }
            Err(_) => {
                tracing::warn!("call log: purge timed out");
                self.client = None;
                0
            }
        }
    }
}
