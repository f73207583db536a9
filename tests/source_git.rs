//! The git rule source end to end: a local repository made with the `git`
//! command line (callguard itself reads it with gix), commits applied,
//! a broken commit refused with the last good one kept, then a fix applied.

#[path = "support/server.rs"]
mod server;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use callguard::policy::decide::{Verdict, decide};
use server::TestServer;

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(repo)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit(repo: &Path, vip: &str, msg: &str) -> String {
    std::fs::create_dir_all(repo.join("rules")).unwrap();
    std::fs::write(repo.join("rules/vip.csv"), vip).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", msg]);
    git(repo, &["rev-parse", "HEAD"])
}

fn blocked(srv: &TestServer, caller: &str) -> bool {
    let rs = &srv.running().state.snapshot().rules;
    let trunk = rs.trunk_by_name("main").expect("trunk");
    decide(rs, trunk, caller, false, chrono::Utc::now())
        .map(|d| d.verdict == Verdict::Block)
        .unwrap_or(false)
}

async fn status(srv: &TestServer) -> serde_json::Value {
    reqwest::get(format!("http://{}/api/v1/status", srv.http()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls status until `cond` holds, for up to 10 s.
async fn until(
    srv: &TestServer,
    what: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = status(srv).await;
        if cond(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

const HEADER: &str = "rule_name,pattern,match_type,action,enabled\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_applied_broken_ones_refused() {
    let repo_dir = tempfile::tempdir().unwrap();
    let repo = repo_dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    let c1 = commit(
        repo,
        &format!("{HEADER}Spam-1,+15550000001,exact,,true\n"),
        "first",
    );

    let yaml = format!(
        "actions: {{ reject: {{ kind: reject }}, pass: {{ kind: continue }} }}\n\
         blocked_action: reject\ndefault_trunk: main\n\
         trunks: {{ main: {{ allowed_action: pass }} }}\n\
         lists:\n  - {{ path: rules/vip.csv, as: blacklist }}\n\
         source: {{ git: \"file://{}\", path: rules/, poll: 200ms }}\n",
        repo.display()
    );
    // The local copy starts different from the repository's.
    let mut srv = server::start_with(&yaml, &[("rules/vip.csv", HEADER)]).await;

    // First commit applied: its rule decides and status names it.
    until(&srv, "first commit", |s| s["source"] == c1.as_str()).await;
    assert!(blocked(&srv, "+15550000001"));
    let metric = server::scrape_sum(
        srv.http(),
        "callguard_rules_source_info",
        &[&format!("commit=\"{c1}\"")],
    )
    .await;
    assert_eq!(metric, 1.0);

    // A change: the new rule decides, status and metric follow.
    let c2 = commit(
        repo,
        &format!("{HEADER}Spam-2,+15550000002,exact,,true\n"),
        "second",
    );
    until(&srv, "second commit", |s| s["source"] == c2.as_str()).await;
    assert!(blocked(&srv, "+15550000002"));
    assert!(!blocked(&srv, "+15550000001"));
    // Issue 10.10: the list change is recorded with the commit as author.
    let history = srv.running().state.extras.history.clone().expect("history");
    let versions = history.versions(Some("vip"), 10).unwrap();
    let latest = versions
        .iter()
        .max_by_key(|v| v.version)
        .expect("a version");
    assert_eq!(latest.author, format!("git {}", &c2[..8]), "{versions:?}");
    assert!(
        versions.iter().all(|v| v.author.starts_with("git ")),
        "{versions:?}"
    );
    let metric = server::scrape_sum(
        srv.http(),
        "callguard_rules_source_info",
        &[&format!("commit=\"{c2}\"")],
    )
    .await;
    assert_eq!(metric, 1.0);

    // A broken row: refused, the previous rules and label stay, the error names file and line.
    let c3 = commit(
        repo,
        &format!("{HEADER}Spam-3,+15550000003,exact,,true\nBad,+1555,nonsense,,true\n"),
        "broken",
    );
    let s = until(&srv, "refusal", |s| !s["last_error"].is_null()).await;
    let problems = s["last_error"]["problems"].to_string();
    assert!(problems.contains(&c3[..8]), "{problems}");
    assert!(problems.contains("vip.csv:3"), "{problems}");
    assert_eq!(s["source"], c2.as_str());
    assert!(blocked(&srv, "+15550000002"));
    assert!(!blocked(&srv, "+15550000003"));
    assert!(
        !std::fs::read_to_string(srv.dir.path().join("rules/vip.csv"))
            .unwrap()
            .contains("Spam-3")
    );

    // The fix (a revert, as a rollback would be) is applied.
    git(repo, &["revert", "--no-edit", "HEAD"]);
    let c4 = git(repo, &["rev-parse", "HEAD"]);
    let s = until(&srv, "revert", |s| s["source"] == c4.as_str()).await;
    assert!(s["last_error"].is_null(), "{s}");
    assert!(blocked(&srv, "+15550000002"));
    srv.stop().await;
}
