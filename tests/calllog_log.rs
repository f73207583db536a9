//! The decision log end to end: a real SQLite file in a temp dir, the real
//! writer task, read back through read-only connections: rows, queries and
//! stats (the writer's queue, retention and schema: tests/calllog_writer.rs).
//! Synchronisation is by the writer's join handle or a flush acknowledgement,
//! never by sleeping.

#[path = "support/calllog_fixture.rs"]
mod fixture;

mod calllog {
    use crate::fixture::*;

    #[tokio::test]
    async fn a_recorded_call_is_one_row_with_every_field() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        let r = CallRecord {
            caller_e164: Some("+15551234567".into()),
            caller_name: "Bob".into(),
            anonymous: true,
            rule: Some("spam".into()),
            fail_open: true,
            decision_ns: u64::MAX,
            pbx: "freeswitch".into(),
            ..blocked("fs-1", base(), "blacklist", Some("spam"))
        };
        write_all(&path, vec![r.clone()], vec![]).await;
        let rows = all(&path);
        assert_eq!(rows.len(), 1);
        let c = &rows[0];
        assert_eq!(c.time, base());
        assert_eq!(c.unique_id, "fs-1");
        assert_eq!(c.pbx, "freeswitch");
        assert_eq!(c.trunk, "main");
        assert_eq!(c.did, "18005550100");
        assert_eq!(c.caller_raw, "5551234567");
        assert_eq!(c.caller_e164.as_deref(), Some("+15551234567"));
        assert_eq!(c.caller_name, "Bob");
        assert!(c.anonymous);
        assert_eq!(c.verdict, "block");
        assert_eq!(c.list, "blacklist");
        assert_eq!(c.rule.as_deref(), Some("spam"));
        assert_eq!(c.action, "hangup");
        assert_eq!(c.reason, "matched blacklist");
        // Past i64::MAX is stored saturated, not refused.
        assert_eq!(c.decision_ns, i64::MAX as u64);
        assert!(c.fail_open);
        assert_eq!(c.end_state, None);
        assert_eq!(c.hangup_cause, None);
        assert_eq!(c.duration_ms, None);
        assert_eq!(c.ended_at, None);
    }

    #[tokio::test]
    async fn an_end_in_the_same_batch_as_its_record_still_applies() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        // Both wait in the queue before the writer starts: one batch.
        write_all(
            &path,
            vec![rec("a", base()), rec("b", base())],
            vec![end("a")],
        )
        .await;
        let rows = all(&path);
        let a = rows.iter().find(|c| c.unique_id == "a").unwrap();
        assert_eq!(a.end_state.as_deref(), Some("completed"));
        assert_eq!(a.hangup_cause.as_deref(), Some("NORMAL_CLEARING"));
        assert_eq!(a.duration_ms, Some(4200));
        assert!(a.ended_at.is_some());
        let b = rows.iter().find(|c| c.unique_id == "b").unwrap();
        assert_eq!(b.end_state, None);
    }

    /// A call never screened is written whole: its end lands on its own row
    /// even with an empty unique id shared by other rows (issue 19.5).
    #[tokio::test]
    async fn a_row_written_whole_keeps_its_own_end_without_a_unique_id() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        let (h, join) = CallLog::start(&path, 64, counter(), 0, HOUR).unwrap();
        let unscreened = |ms: u64| {
            let mut r = rec("", base());
            r.verdict = "unscreened".into();
            r.reason = format!("not screened after {ms} ms");
            let end = CallEnd {
                unique_id: String::new(),
                end_state: "not_screened".into(),
                hangup_cause: None,
                duration_ms: ms,
            };
            (r, end)
        };
        let (r1, e1) = unscreened(10);
        let (r2, e2) = unscreened(20);
        assert!(h.record_ended(r1, e1));
        // A decided call without an id in between, its end not yet known.
        assert!(h.record(rec("", base())));
        assert!(h.record_ended(r2, e2));
        h.flush().await.unwrap();
        let rows = all(&path);
        assert_eq!(rows.len(), 3);
        for ms in [10, 20] {
            let r = rows
                .iter()
                .find(|c| c.reason == format!("not screened after {ms} ms"))
                .unwrap();
            assert_eq!(r.end_state.as_deref(), Some("not_screened"));
            assert_eq!(r.duration_ms, Some(ms));
            assert!(r.ended_at.is_some());
        }
        let decided = rows.iter().find(|c| c.verdict == "allow").unwrap();
        assert_eq!(decided.end_state, None, "{rows:#?}");
        drop(h);
        join.await.unwrap();
    }

    #[tokio::test]
    async fn an_end_long_after_the_record_updates_that_row() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        let (h, join) = CallLog::start(&path, 64, counter(), 0, HOUR).unwrap();
        assert!(h.record(rec("late", base())));
        h.flush().await.unwrap();
        let reader = LogReader::open(&path).unwrap();
        let before = reader.find_by_unique_id("late").unwrap().unwrap();
        assert_eq!(before.end_state, None);

        for i in 0..50 {
            assert!(h.record(rec(&format!("other-{i}"), base())));
        }
        assert!(h.finish(CallEnd {
            hangup_cause: None,
            end_state: "dial:NOANSWER".into(),
            ..end("late")
        }));
        // An end for a call that was never logged is ignored, not an error.
        assert!(h.finish(end("never-recorded")));
        h.flush().await.unwrap();
        let after = reader.find_by_unique_id("late").unwrap().unwrap();
        assert_eq!(after.end_state.as_deref(), Some("dial:NOANSWER"));
        assert_eq!(after.hangup_cause, None);
        assert_eq!(after.duration_ms, Some(4200));
        assert_eq!(h.write_errors(), 0);
        h.close().await.unwrap();
        join.await.unwrap();
    }

    #[tokio::test]
    async fn find_by_unique_id_returns_the_newest_call_with_that_id() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        let second = CallRecord {
            trunk: "second".into(),
            ..rec("dup", base())
        };
        write_all(&path, vec![rec("dup", base()), second], vec![end("dup")]).await;
        let reader = LogReader::open(&path).unwrap();
        let found = reader.find_by_unique_id("dup").unwrap().unwrap();
        assert_eq!(found.trunk, "second");
        assert_eq!(found.end_state.as_deref(), Some("completed"));
        assert_eq!(reader.find_by_unique_id("nope").unwrap(), None);
        // The other row with that id kept no end: ends go to the newest.
        let rows = all(&path);
        let first = rows.iter().find(|c| c.trunk == "main").unwrap();
        assert_eq!(first.end_state, None);
    }

    /// Eight calls an hour apart, newest last, varied on every filter column.
    fn fixture() -> Vec<CallRecord> {
        let t = |h: i64| base() + TimeDelta::hours(h);
        vec![
            rec("c0", t(0)),
            blocked("c1", t(1), "blacklist", Some("spam")),
            blocked("c2", t(2), "blacklist", Some("spam")),
            CallRecord {
                trunk: "backup".into(),
                ..blocked("c3", t(3), "system_blacklist", Some("robo"))
            },
            CallRecord {
                caller_raw: "+44 20 7946 0958".into(),
                caller_e164: Some("+442079460958".into()),
                ..rec("c4", t(4))
            },
            CallRecord {
                caller_raw: "".into(),
                anonymous: true,
                trunk: "backup".into(),
                ..blocked("c5", t(5), "default", None)
            },
            CallRecord {
                caller_raw: "15551234567".into(),
                ..rec("c6", t(6))
            },
            CallRecord {
                caller_raw: "anonymous".into(),
                caller_e164: None,
                ..blocked("c7", t(7), "blacklist", Some("anon"))
            },
        ]
    }

    async fn fixture_reader(dir: &TempDir) -> LogReader {
        let path = db(dir);
        write_all(&path, fixture(), vec![]).await;
        LogReader::open(&path).unwrap()
    }

    fn q() -> LogQuery {
        LogQuery::default()
    }

    #[tokio::test]
    async fn query_filters_each_narrow_and_results_are_newest_first() {
        let dir = TempDir::new().unwrap();
        let r = fixture_reader(&dir).await;
        let run = |lq: LogQuery| uids(&r.query(&lq).unwrap()).join(",");
        let t = |h: i64| Some(base() + TimeDelta::hours(h));

        assert_eq!(run(q()), "c7,c6,c5,c4,c3,c2,c1,c0");
        assert_eq!(run(LogQuery { limit: 3, ..q() }), "c7,c6,c5");
        // since is inclusive, until exclusive.
        assert_eq!(run(LogQuery { since: t(5), ..q() }), "c7,c6,c5");
        assert_eq!(run(LogQuery { until: t(2), ..q() }), "c1,c0");
        assert_eq!(
            run(LogQuery {
                since: t(2),
                until: t(4),
                ..q()
            }),
            "c3,c2"
        );
        assert_eq!(
            run(LogQuery {
                verdict: Some("block".into()),
                ..q()
            }),
            "c7,c5,c3,c2,c1"
        );
        assert_eq!(
            run(LogQuery {
                verdict: Some("allow".into()),
                ..q()
            }),
            "c6,c4,c0"
        );
        assert_eq!(
            run(LogQuery {
                trunk: Some("backup".into()),
                ..q()
            }),
            "c5,c3"
        );
        assert_eq!(
            run(LogQuery {
                rule: Some("spam".into()),
                ..q()
            }),
            "c2,c1"
        );
        // Filters combine.
        assert_eq!(
            run(LogQuery {
                rule: Some("spam".into()),
                since: t(2),
                limit: 5,
                ..q()
            }),
            "c2"
        );
    }

    #[tokio::test]
    async fn caller_matches_raw_e164_or_the_same_digits() {
        let dir = TempDir::new().unwrap();
        let r = fixture_reader(&dir).await;
        let by_caller = |c: &str| {
            let rows = r
                .query(&LogQuery {
                    caller: Some(c.into()),
                    ..q()
                })
                .unwrap();
            uids(&rows).join(",")
        };
        // Stored raw as 5551234567 (c0..c3) and 15551234567 (c6); no E.164 stored.
        let us = "c6,c3,c2,c1,c0";
        assert_eq!(by_caller("5551234567"), us);
        assert_eq!(by_caller("+15551234567"), us);
        assert_eq!(by_caller("+1 (555) 123-4567"), us);
        assert_eq!(by_caller("15551234567"), us);
        // Stored raw "+44 20 7946 0958" with E.164 +442079460958.
        assert_eq!(by_caller("+442079460958"), "c4");
        assert_eq!(by_caller("20 7946 0958"), "c4");
        assert_eq!(by_caller("+44 20 7946 0958"), "c4");
        // Text callers match exactly.
        assert_eq!(by_caller("anonymous"), "c7");
        // Too few digits to match as a tail: only equal digits count.
        assert_eq!(by_caller("4567"), "");
        assert_eq!(by_caller("+15559999999"), "");
        // Typed text is bound, never spliced into the SQL.
        assert_eq!(by_caller("' OR 1=1 --"), "");
        assert_eq!(by_caller("5551234567' OR '1'='1"), "");
        let rows = r
            .query(&LogQuery {
                trunk: Some("main' OR '1'='1".into()),
                ..q()
            })
            .unwrap();
        assert!(rows.is_empty());
    }

    #[tokio::test]
    async fn stats_count_blocked_calls_by_rule_list_and_trunk() {
        let dir = TempDir::new().unwrap();
        let r = fixture_reader(&dir).await;
        let s = r.stats(&q()).unwrap();
        assert_eq!((s.total, s.blocked, s.allowed), (8, 5, 3));
        let sc = |k: &str, n: u64| StatCount {
            key: k.into(),
            calls: n,
        };
        assert_eq!(
            s.blocked_by_rule,
            vec![sc("spam", 2), sc(NO_RULE, 1), sc("anon", 1), sc("robo", 1)]
        );
        assert_eq!(
            s.blocked_by_list,
            vec![
                sc("blacklist", 3),
                sc("default", 1),
                sc("system_blacklist", 1)
            ]
        );
        assert_eq!(s.blocked_by_trunk, vec![sc("main", 3), sc("backup", 2)]);

        // The period narrows every count; the limit does not apply to stats.
        let s = r
            .stats(&LogQuery {
                since: Some(base() + TimeDelta::hours(3)),
                until: Some(base() + TimeDelta::hours(6)),
                limit: 1,
                ..q()
            })
            .unwrap();
        assert_eq!((s.total, s.blocked, s.allowed), (3, 2, 1));
        assert_eq!(s.blocked_by_trunk, vec![sc("backup", 2)]);

        let empty = r
            .stats(&LogQuery {
                trunk: Some("nowhere".into()),
                ..q()
            })
            .unwrap();
        assert_eq!((empty.total, empty.blocked, empty.allowed), (0, 0, 0));
        assert!(empty.blocked_by_rule.is_empty());
    }

    #[tokio::test]
    async fn awkward_text_round_trips_and_serialises_with_the_api_names() {
        let dir = TempDir::new().unwrap();
        let path = db(&dir);
        let weird = CallRecord {
            caller_name: "O'Brien \"the\" caller;\n--DROP TABLE calls;\t☎ 日本語 🙂 \\ %_".into(),
            reason: "line one\r\nline two 'quoted' \"double\" \u{0}nul".into(),
            rule: Some("règle-ü".into()),
            caller_e164: Some("+15551234567".into()),
            ..rec("weird-'\"-id", base())
        };
        write_all(&path, vec![weird.clone()], vec![]).await;
        let reader = LogReader::open(&path).unwrap();
        let got = reader.find_by_unique_id("weird-'\"-id").unwrap().unwrap();
        assert_eq!(got.caller_name, weird.caller_name);
        assert_eq!(got.reason, weird.reason);
        assert_eq!(got.rule, weird.rule);

        let json = serde_json::to_value(&got).unwrap();
        assert_eq!(json["time"], "2026-11-01T08:00:00.000Z");
        assert_eq!(json["caller"], "5551234567");
        assert_eq!(json["caller_name"], weird.caller_name.as_str());
        for key in [
            "unique_id",
            "pbx",
            "trunk",
            "did",
            "caller_e164",
            "anonymous",
            "verdict",
            "list",
            "rule",
            "action",
            "reason",
            "decision_ns",
            "fail_open",
            "end_state",
            "hangup_cause",
            "duration_ms",
        ] {
            assert!(json.get(key).is_some(), "missing {key} in {json}");
        }
        // The table keeps one line per call whatever the text holds.
        let table = callguard::calllog::render_table(&[got]);
        assert_eq!(table.lines().count(), 2, "{table}");
    }
}
