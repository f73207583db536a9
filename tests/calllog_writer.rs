//! The decision log's writer end to end: its bounded queue, shutdown, retention,
//! failing rows and the schema on disk (rows, queries and stats:
//! tests/calllog_log.rs). Synchronisation is by the writer's join handle or a
//! flush acknowledgement, never by sleeping.

#[path = "support/calllog_fixture.rs"]
mod fixture;

mod calllog {
    use crate::fixture::*;

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_blocking_then_shutdown_flushes() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        let (h, w, dropped) = paused(&path, 2);
        let other = h.clone();
        assert!(h.record(rec("q1", base())));
        assert!(other.record(rec("q2", base())));
        assert!(!h.record(rec("q3", base())));
        assert!(!other.finish(end("q1")));
        assert_eq!(dropped.get(), 2);

        let join = w.spawn().unwrap();
        drop(h);
        drop(other);
        // Every handle gone: the writer drains what was queued and ends.
        join.await.unwrap();
        let rows = all(&path);
        assert_eq!(uids(&rows), vec!["q2", "q1"]);
        assert_eq!(rows[1].end_state, None);
    }

    #[tokio::test]
    async fn close_writes_everything_queued_and_later_sends_are_dropped() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        let dropped = counter();
        let (h, join) = CallLog::start(&path, 2048, dropped.clone(), 90, HOUR).unwrap();
        let kept = h.clone();
        // More than one batch (512) waiting when close is asked for.
        for i in 0..1500 {
            assert!(h.record(rec(&format!("n{i}"), Utc::now())));
        }
        h.close().await.unwrap();
        join.await.unwrap();
        assert_eq!(all(&path).len(), 1500);
        assert!(!kept.record(rec("late", base())));
        assert_eq!(dropped.get(), 1);
        assert!(matches!(kept.flush().await, Err(CallLogError::Closed)));
    }

    #[tokio::test]
    async fn retention_purges_only_rows_past_it() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        let now = Utc::now();
        let ago = |d: i64| now - TimeDelta::days(d);
        // Written with retention off, so nothing goes yet.
        write_all(
            &path,
            vec![
                rec("old", ago(120)),
                rec("older", ago(91)),
                rec("recent", ago(89)),
                rec("new", now),
            ],
            vec![],
        )
        .await;
        assert_eq!(all(&path).len(), 4);

        let (h, join) = CallLog::start(&path, 16, counter(), 90, HOUR).unwrap();
        // The writer purges at start, before any batch: a flush proves it ran.
        h.flush().await.unwrap();
        assert_eq!(uids(&all(&path)), vec!["new", "recent"]);

        // A row that arrives already past retention goes at the next purge.
        assert!(h.record(rec("backfilled", ago(100))));
        assert_eq!(h.purge_now().await.unwrap(), 1);
        assert_eq!(uids(&all(&path)), vec!["new", "recent"]);
        drop(h);
        join.await.unwrap();
    }

    #[test]
    fn purge_before_deletes_by_cutoff_in_chunks() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        let mut conn = store::open_writer(&path).unwrap();
        let tx = conn.transaction().unwrap();
        let n = store::PURGE_CHUNK + 10;
        for i in 0..n {
            store::insert_record(&tx, &rec(&format!("p{i}"), base() - TimeDelta::days(1))).unwrap();
        }
        store::insert_record(&tx, &rec("keep", base())).unwrap();
        tx.commit().unwrap();
        assert_eq!(store::purge_before(&conn, base()).unwrap(), n);
        assert_eq!(store::purge_before(&conn, base()).unwrap(), 0);
        assert_eq!(uids(&all(&path)), vec!["keep"]);
    }

    #[tokio::test]
    async fn a_failing_row_is_counted_and_the_writer_keeps_going() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        drop(store::open_writer(&path).unwrap());
        // A real SQLite error for one row: a trigger refuses it.
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON calls WHEN NEW.unique_id = 'poison'
                 BEGIN SELECT RAISE(ABORT, 'refused'); END;",
            )
            .unwrap();
        let (h, join) = CallLog::start(&path, 16, counter(), 0, HOUR).unwrap();
        assert!(h.record(rec("before", base())));
        assert!(h.record(rec("poison", base())));
        assert!(h.record(rec("after", base())));
        h.flush().await.unwrap();
        assert_eq!(h.write_errors(), 1);
        assert!(h.record(rec("later", base())));
        h.flush().await.unwrap();
        assert_eq!(h.write_errors(), 1);
        drop(h);
        join.await.unwrap();
        let mut got = uids(&all(&path))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>();
        got.sort();
        assert_eq!(got, vec!["after", "before", "later"]);
    }

    #[tokio::test]
    async fn reopening_keeps_rows_and_schema() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        write_all(&path, vec![rec("first", base())], vec![]).await;
        write_all(&path, vec![rec("second", base())], vec![]).await;
        assert_eq!(all(&path).len(), 2);
        let conn = rusqlite::Connection::open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, store::SCHEMA_VERSION);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// A log written by the previous schema (no `list_name`) is still read,
    /// and the writer upgrades it in place, keeping its rows.
    #[test]
    fn a_schema_1_log_is_read_and_upgraded() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        {
            let conn = store::open_writer(&path).unwrap();
            store::insert_record(&conn, &rec("old", base())).unwrap();
            // Back to schema 1: the column this build added is dropped.
            conn.execute_batch("ALTER TABLE calls DROP COLUMN list_name; PRAGMA user_version = 1;")
                .unwrap();
        }
        let rows = LogReader::open(&path)
            .unwrap()
            .query(&LogQuery::default())
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].list_name, "");
        let conn = store::open_writer(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, store::SCHEMA_VERSION);
        let mut blocked = rec("new", base());
        blocked.list_name = "spam".into();
        store::insert_record(&conn, &blocked).unwrap();
        let rows = LogReader::open(&path)
            .unwrap()
            .query(&LogQuery::default())
            .unwrap();
        let names: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.unique_id.as_str(), r.list_name.as_str()))
            .collect();
        assert_eq!(names, [("new", "spam"), ("old", "")]);
    }

    #[test]
    fn readers_refuse_missing_foreign_and_newer_databases() {
        let dir = TempDir::new().unwrap();
        let missing = dir.path().join("missing.db");
        assert!(matches!(
            LogReader::open(&missing),
            Err(CallLogError::NotFound(_))
        ));
        assert!(!missing.exists(), "a reader must not create the file");

        let foreign = dir.path().join("foreign.db");
        rusqlite::Connection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(
            LogReader::open(&foreign),
            Err(CallLogError::NoSchema(_))
        ));

        let newer = dir.path().join("newer.db");
        rusqlite::Connection::open(&newer)
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        assert!(matches!(
            LogReader::open(&newer),
            Err(CallLogError::SchemaTooNew { found: 99, .. })
        ));
        assert!(matches!(
            store::open_writer(&newer),
            Err(CallLogError::SchemaTooNew { found: 99, .. })
        ));
    }

    #[test]
    fn starting_outside_a_runtime_is_an_error_not_a_panic() {
        let dir = TempDir::new().unwrap();
        let r = CallLog::start(db(&dir), 8, counter(), 0, HOUR);
        assert!(matches!(r, Err(CallLogError::NoRuntime)));
    }

    #[test]
    fn a_log_path_under_a_file_is_a_create_dir_error() {
        let dir = TempDir::new().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        let r = store::open_writer(&file.join("sub/callguard.db"));
        assert!(matches!(r, Err(CallLogError::CreateDir { .. })));
    }
}
