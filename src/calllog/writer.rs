//! The writer task and the handle the call path holds.
//!
//! A call must never wait on the disk: [`CallLogHandle::record`] and
//! [`CallLogHandle::finish`] only `try_send` onto one bounded queue, and when it
//! is full the row is dropped and counted (`callguard_log_dropped_total`). The
//! single writer drains up to [`BATCH_CAP`] messages at a time and commits them
//! in one transaction through the storage layer's [`LogSink`] (SQLite on a
//! blocking thread, so it never stalls the runtime; or PostgreSQL).
//! Records and ends share the queue, so an end is always written after its
//! record, even when both land in the same batch.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use prometheus::IntCounter;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{CallEnd, CallLogError, CallRecord};
use crate::store::{LogBackend, LogRow, LogSink, PURGE_CHUNK, PgTarget};

/// Messages written per transaction: big enough to amortise the commit under
/// load, small enough that a batch commits in milliseconds.
pub(crate) const BATCH_CAP: usize = 512;

/// How long the writer lets rows gather after the first one before committing: one
/// wake-up and one transaction per tick instead of one per call (issue 15). Rows are
/// visible to readers at most this late; `flush`, `purge_now`, `close` and a queue of
/// [`WAKE_AT`] rows cut the wait short.
pub(crate) const LINGER: Duration = Duration::from_millis(50);

/// Queued messages at which a sender wakes the lingering writer.
pub(crate) const WAKE_AT: usize = BATCH_CAP / 2;

/// The shortest purge period honoured; a zero period would spin.
pub(crate) const MIN_PURGE_EVERY: Duration = Duration::from_secs(1);

// Nearly every message is a Record: boxing it would add an allocation per
// call to shrink the rare control messages.
#[allow(clippy::large_enum_variant)]
enum Msg {
    Record(CallRecord),
    /// The end, stamped with the time it was reported (not when written).
    End(CallEnd, DateTime<Utc>),
    /// A call that ended before it was screened: its row, written whole.
    Ended(CallRecord, CallEnd, DateTime<Utc>),
    Flush(oneshot::Sender<()>),
    Purge(oneshot::Sender<usize>),
    Close(oneshot::Sender<()>),
}

/// Counters the writer keeps besides the Prometheus `dropped` counter.
#[derive(Default)]
struct Counters {
    write_errors: AtomicU64,
}

/// Entry points: [`CallLog::start`] for the service, [`CallLog::open`] when the
/// writer must start later (tests of the full-queue path).
pub struct CallLog;

impl CallLog {
    /// Opens (creating) the database at `path`, then spawns the writer task.
    ///
    /// Must be called inside a Tokio runtime. `retention_days == 0` keeps rows
    /// forever. The writer ends once every handle is dropped or
    /// [`CallLogHandle::close`] is called, after writing everything queued.
    pub fn start(
        path: impl AsRef<Path>,
        queue_capacity: usize,
        dropped: IntCounter,
        retention_days: u32,
        purge_every: Duration,
    ) -> Result<(CallLogHandle, JoinHandle<()>), CallLogError> {
        let (handle, writer) =
            Self::open(path, queue_capacity, dropped, retention_days, purge_every)?;
        Ok((handle, writer.spawn()?))
    }

    /// Like [`start`](Self::start), with the rows going to PostgreSQL (`log.postgres`).
    /// A server that cannot be reached now is logged, not fatal: calls are screened
    /// either way, and each batch tries to reconnect (at most once a second).
    pub async fn start_postgres(
        target: PgTarget,
        queue_capacity: usize,
        dropped: IntCounter,
        retention_days: u32,
        purge_every: Duration,
    ) -> Result<(CallLogHandle, JoinHandle<()>), CallLogError> {
        let sink = LogBackend::Postgres(Box::new(target)).sink().await?;
        let (handle, writer) =
            Self::queue(sink, queue_capacity, dropped, retention_days, purge_every);
        Ok((handle, writer.spawn()?))
    }

    /// Opens the database and creates the queue without consuming it: messages
    /// pile up until [`Writer::spawn`] (or [`Writer::run`]) is called.
    pub fn open(
        path: impl AsRef<Path>,
        queue_capacity: usize,
        dropped: IntCounter,
        retention_days: u32,
        purge_every: Duration,
    ) -> Result<(CallLogHandle, Writer), CallLogError> {
        let sink = LogSink::sqlite(path.as_ref())?;
        Ok(Self::queue(
            sink,
            queue_capacity,
            dropped,
            retention_days,
            purge_every,
        ))
    }

    /// The queue between the call path and a writer on `sink`.
    fn queue(
        sink: LogSink,
        queue_capacity: usize,
        dropped: IntCounter,
        retention_days: u32,
        purge_every: Duration,
    ) -> (CallLogHandle, Writer) {
        // A zero-capacity channel is a panic in tokio; one slot is the minimum.
        let (tx, rx) = mpsc::channel(queue_capacity.max(1));
        let counters = Arc::new(Counters::default());
        let wake = Arc::new(Notify::new());
        let handle = CallLogHandle {
            tx,
            dropped,
            counters: counters.clone(),
            wake: wake.clone(),
        };
        let writer = Writer {
            rx,
            wake,
            sink,
            retention_days,
            purge_every: purge_every.max(MIN_PURGE_EVERY),
            counters,
        };
        (handle, writer)
    }
}

/// What the call path holds. Cheap to clone; every method but the async ones
/// returns at once.
#[derive(Clone)]
pub struct CallLogHandle {
    tx: mpsc::Sender<Msg>,
    dropped: IntCounter,
    counters: Arc<Counters>,
    /// Ends the writer's linger early (a control message, or [`WAKE_AT`] rows queued).
    wake: Arc<Notify>,
}

impl CallLogHandle {
    /// Queues a decided call. `false` (and `dropped` incremented) when the queue
    /// is full or the writer is gone; never blocks.
    pub fn record(&self, record: CallRecord) -> bool {
        self.offer(Msg::Record(record))
    }

    /// Queues how a call ended; the end time is taken now, not when written.
    /// Same contract as [`record`](Self::record).
    pub fn finish(&self, end: CallEnd) -> bool {
        self.offer(Msg::End(end, Utc::now()))
    }

    /// Queues a call that ended before it was screened (no connect reply, no
    /// whole environment, refused) as one row with its end already filled: its
    /// unique id is often unknown (empty), so a later [`finish`](Self::finish)
    /// could not find it. Same contract as [`record`](Self::record).
    pub fn record_ended(&self, record: CallRecord, end: CallEnd) -> bool {
        self.offer(Msg::Ended(record, end, Utc::now()))
    }

    fn offer(&self, msg: Msg) -> bool {
        match self.tx.try_send(msg) {
            Ok(()) => {
                if self.tx.max_capacity() - self.tx.capacity() >= WAKE_AT {
                    self.wake.notify_one();
                }
                true
            }
            // A closed queue loses the row just as a full one does.
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                self.dropped.inc();
                false
            }
        }
    }

    /// Waits until everything queued before this call has been processed
    /// (committed, or its error counted). Not for the call path: it waits for
    /// room in the queue.
    pub async fn flush(&self) -> Result<(), CallLogError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Flush(ack))
            .await
            .map_err(|_| CallLogError::Closed)?;
        self.wake.notify_one();
        done.await.map_err(|_| CallLogError::Closed)
    }

    /// Purges rows past retention now (after what is queued), returning how
    /// many were deleted. The writer also does this every `purge_every`.
    pub async fn purge_now(&self) -> Result<usize, CallLogError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Purge(ack))
            .await
            .map_err(|_| CallLogError::Closed)?;
        self.wake.notify_one();
        done.await.map_err(|_| CallLogError::Closed)
    }

    /// Stops the writer for every handle: what is queued (and what other
    /// handles manage to queue meanwhile) is written, later sends fail. Returns
    /// when the last batch has been processed.
    pub async fn close(self) -> Result<(), CallLogError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Msg::Close(ack))
            .await
            .map_err(|_| CallLogError::Closed)?;
        self.wake.notify_one();
        drop(self);
        done.await.map_err(|_| CallLogError::Closed)
    }

    /// Messages the writer failed to write (each also logged).
    pub fn write_errors(&self) -> u64 {
        self.counters.write_errors.load(Ordering::Relaxed)
    }
}

/// The consumer side: owns the log's only writing handle.
pub struct Writer {
    rx: mpsc::Receiver<Msg>,
    wake: Arc<Notify>,
    sink: LogSink,
    retention_days: u32,
    purge_every: Duration,
    counters: Arc<Counters>,
}

/// What a batch leaves for the async side to do.
#[derive(Default)]
struct Outcome {
    closes: Vec<oneshot::Sender<()>>,
    more_to_purge: bool,
}

impl Writer {
    /// Spawns [`run`](Self::run) on the current Tokio runtime.
    pub fn spawn(self) -> Result<JoinHandle<()>, CallLogError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| CallLogError::NoRuntime)?;
        Ok(rt.spawn(self.run()))
    }

    /// Writes batches until the queue is closed and drained, purging old rows
    /// at start and then every `purge_every`.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.purge_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let purging = self.retention_days > 0;
        // The first purge runs before any batch, so a service that was down
        // past retention catches up at start (later chunks alternate with
        // batches). It also makes "purged at start" observable by a flush.
        tick.tick().await;
        let mut purge_pending = purging && self.process(Work::PurgeChunk).await.more_to_purge;
        let mut closes = Vec::new();
        let mut buf = Vec::with_capacity(BATCH_CAP);
        loop {
            // Not biased: under sustained load a pending purge still progresses.
            let work = tokio::select! {
                n = self.rx.recv_many(&mut buf, BATCH_CAP) => {
                    if n == 0 {
                        break;
                    }
                    self.linger(&mut buf).await;
                    Work::Batch(std::mem::replace(&mut buf, Vec::with_capacity(BATCH_CAP)))
                }
                _ = tick.tick(), if purging => Work::PurgeChunk,
                _ = std::future::ready(()), if purge_pending => Work::PurgeChunk,
            };
            let out = self.process(work).await;
            purge_pending = out.more_to_purge;
            if !out.closes.is_empty() {
                // Later sends fail; what is already queued is still drained.
                self.rx.close();
                closes.extend(out.closes);
            }
        }
        for ack in closes {
            let _ = ack.send(());
        }
    }

    /// Lets more rows gather after the first, without waking per row: sleeps until
    /// [`LINGER`] has passed or a sender rings (control message, full-ish queue),
    /// then takes what is queued.
    async fn linger(&mut self, buf: &mut Vec<Msg>) {
        let control = |m: &Msg| matches!(m, Msg::Flush(_) | Msg::Purge(_) | Msg::Close(_));
        if buf.len() < WAKE_AT && !buf.iter().any(control) {
            tokio::select! {
                _ = tokio::time::sleep(LINGER) => {}
                _ = self.wake.notified() => {}
            }
        }
        while buf.len() < BATCH_CAP {
            match self.rx.try_recv() {
                Ok(m) => buf.push(m),
                Err(_) => break,
            }
        }
    }

    /// Runs one unit of work on the log's store.
    async fn process(&mut self, work: Work) -> Outcome {
        let cutoff = retention_cutoff(self.retention_days);
        match work {
            Work::PurgeChunk => Outcome {
                more_to_purge: self.purge_chunk(cutoff).await == PURGE_CHUNK,
                ..Outcome::default()
            },
            Work::Batch(batch) => self.write_batch(batch, cutoff).await,
        }
    }

    /// Writes one batch in one transaction, then answers flushes and purges, so
    /// an acknowledgement means everything queued before it was processed.
    async fn write_batch(&mut self, batch: Vec<Msg>, cutoff: Option<DateTime<Utc>>) -> Outcome {
        let Split {
            rows,
            flushes,
            purges,
            out,
        } = split(batch);
        if !rows.is_empty() {
            let lost = self.sink.write(rows).await;
            self.counters
                .write_errors
                .fetch_add(lost, Ordering::Relaxed);
        }
        let mut purged = 0;
        if !purges.is_empty() {
            loop {
                let n = self.purge_chunk(cutoff).await;
                purged += n;
                if n < PURGE_CHUNK {
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

    /// Deletes up to [`PURGE_CHUNK`] rows past retention; 0 when off or on
    /// error (logged).
    async fn purge_chunk(&mut self, cutoff: Option<DateTime<Utc>>) -> usize {
        let Some(cutoff) = cutoff else { return 0 };
        match self.sink.purge_chunk(cutoff, PURGE_CHUNK).await {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(rows = n, %cutoff, "call log: purged rows past retention");
                }
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "call log: purge failed");
                0
            }
        }
    }
}

enum Work {
    Batch(Vec<Msg>),
    PurgeChunk,
}

/// Rows older than this go; `None` when retention is off (0) or out of range.
fn retention_cutoff(retention_days: u32) -> Option<DateTime<Utc>> {
    if retention_days == 0 {
        return None;
    }
    Utc::now().checked_sub_signed(TimeDelta::try_days(i64::from(retention_days))?)
}

/// A batch sorted: rows in queue order, and the control messages.
struct Split {
    rows: Vec<LogRow>,
    flushes: Vec<oneshot::Sender<()>>,
    purges: Vec<oneshot::Sender<usize>>,
    out: Outcome,
}

fn split(batch: Vec<Msg>) -> Split {
    let mut s = Split {
        rows: Vec::with_capacity(batch.len()),
        flushes: Vec::new(),
        purges: Vec::new(),
        out: Outcome::default(),
    };
    for msg in batch {
        match msg {
            Msg::Record(r) => s.rows.push(LogRow::Record(r)),
            Msg::End(e, at) => s.rows.push(LogRow::End(e, at)),
            Msg::Ended(r, e, at) => s.rows.push(LogRow::Ended(r, e, at)),
            Msg::Flush(ack) => s.flushes.push(ack),
            Msg::Purge(ack) => s.purges.push(ack),
            Msg::Close(ack) => s.out.closes.push(ack),
        }
    }
    s
}
