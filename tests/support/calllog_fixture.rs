//! Shared by tests/calllog_log.rs and tests/calllog_writer.rs: call records,
//! a temp log file and the writer driven to completion.
// Each test file uses a part of it.
#![allow(dead_code, unused_imports)]

pub use std::path::{Path, PathBuf};
pub use std::time::Duration;

pub use callguard::calllog::{
    CallEnd, CallLog, CallLogError, CallLogHandle, CallRecord, LogQuery, LogReader, NO_RULE,
    StatCount, Writer,
};
pub use callguard::store::sqlite as store;
pub use chrono::{DateTime, TimeDelta, TimeZone, Utc};
pub use prometheus::IntCounter;
pub use tempfile::TempDir;

pub const HOUR: Duration = Duration::from_secs(3600);

pub fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()
}

pub fn rec(uid: &str, time: DateTime<Utc>) -> CallRecord {
    CallRecord {
        time,
        unique_id: uid.into(),
        pbx: "asterisk".into(),
        trunk: "main".into(),
        did: "18005550100".into(),
        caller_raw: "5551234567".into(),
        caller_e164: None,
        caller_name: "Alice".into(),
        anonymous: false,
        verdict: "allow".into(),
        list: "default".into(),
        list_name: String::new(),
        rule: None,
        action: "continue".into(),
        reason: "no rule matched".into(),
        decision_ns: 1234,
        fail_open: false,
        tenant: String::new(),
        user: String::new(),
    }
}

pub fn blocked(uid: &str, time: DateTime<Utc>, list: &str, rule: Option<&str>) -> CallRecord {
    CallRecord {
        verdict: "block".into(),
        list: list.into(),
        rule: rule.map(Into::into),
        action: "hangup".into(),
        reason: format!("matched {list}"),
        ..rec(uid, time)
    }
}

pub fn end(uid: &str) -> CallEnd {
    CallEnd {
        unique_id: uid.into(),
        end_state: "completed".into(),
        hangup_cause: Some("NORMAL_CLEARING".into()),
        duration_ms: 4200,
    }
}

pub fn counter() -> IntCounter {
    IntCounter::new("test_dropped_total", "dropped").unwrap()
}

pub fn db(dir: &TempDir) -> PathBuf {
    // A parent that does not exist yet: opening must create it.
    dir.path().join("nested/data/callguard.db")
}

/// Opens the log without starting the writer: what is sent waits in the queue.
pub fn paused(path: &Path, capacity: usize) -> (CallLogHandle, Writer, IntCounter) {
    let dropped = counter();
    let (h, w) = CallLog::open(path, capacity, dropped.clone(), 0, HOUR).unwrap();
    (h, w, dropped)
}

/// Writes `records` then `ends` through a real writer and waits for it to
/// finish (every handle dropped).
pub async fn write_all(path: &Path, records: Vec<CallRecord>, ends: Vec<CallEnd>) {
    let (h, w, dropped) = paused(path, records.len() + ends.len() + 1);
    for r in records {
        assert!(h.record(r));
    }
    for e in ends {
        assert!(h.finish(e));
    }
    let join = w.spawn().unwrap();
    drop(h);
    join.await.unwrap();
    assert_eq!(dropped.get(), 0);
}

pub fn all(path: &Path) -> Vec<callguard::calllog::LoggedCall> {
    LogReader::open(path)
        .unwrap()
        .query(&LogQuery::default())
        .unwrap()
}

pub fn uids(calls: &[callguard::calllog::LoggedCall]) -> Vec<&str> {
    calls.iter().map(|c| c.unique_id.as_str()).collect()
}
