//! The decision log's SQLite files are not list files to the watcher.

use super::*;

#[test]
fn decision_log_side_files_are_recognised() {
    let dir = std::env::temp_dir().join(format!("cg-logfiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = log_side_files(&dir.join("calls.db"));
    for n in [
        "calls.db",
        "calls.db-wal",
        "calls.db-shm",
        "calls.db-journal",
    ] {
        assert!(is_log_file(&f, &dir.join(n)), "{n}");
    }
    for n in ["callguard.yaml", "calls.db.bak", "blocked.csv"] {
        assert!(!is_log_file(&f, &dir.join(n)), "{n}");
    }
    // Same name elsewhere: a list file, not the log.
    assert!(!is_log_file(&f, &std::env::temp_dir().join("calls.db")));
    std::fs::remove_dir_all(&dir).unwrap();
}
