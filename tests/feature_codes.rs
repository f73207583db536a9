//! Feature codes (*30 / *31 / *32) and the dialplan's notes over the real
//! protocols: the Asterisk and FreeSWITCH simulators (the bytes of the
//! captures) against the built `callguard serve` binary on loopback. A
//! caller delivered to ext 101 and blocked with `*32` is blocked on their
//! next call to 101 and nobody else's; the attribution survives a restart;
//! `*30` / `*31` + number; a protected number and a stranger's handset are
//! refused; numbers a user dialled are allowed for that user.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;

use callguard_sim::{asterisk, freeswitch};
#[path = "support/server.rs"]
mod server;

use asterisk::AsteriskSim;
use freeswitch::SimConfig;

const HEADER: &str = "rule_name,pattern,match_type,action,enabled,notes\n";

const YAML: &str = r#"
normalize: { default_region: US }
protected: ["911"]
trunks:
  main: { dids: ["+18005550100"] }
users:
  "200": { dids: ["+18005550200"], block: lists/200-block.csv }
tenants:
  acme:
    domains: [acme.example.com]
    trunks:
      main: { dids: ["+18005550100"] }
    dialled_numbers: { allow_for: 30d }
    users:
      "101": { dids: ["+18005550101"], block: lists/acme-101-block.csv }
      "102": { dids: ["+18005550102"], block: lists/acme-102-block.csv }
      "103": { dids: ["+18005550103"] }
"#;

/// A running `callguard serve` (the built binary) and its addresses.
struct Serve {
    child: std::process::Child,
    agi: SocketAddr,
    esl: SocketAddr,
    http: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on an existing config (so a restart keeps the files).
fn serve(config: &Path) -> Serve {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn callguard serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("callguard listening"), "{line:?}");
    let addr = |key: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
    };
    Serve {
        agi: addr("agi"),
        esl: addr("esl"),
        http: addr("http"),
        child,
    }
}

fn config() -> (tempfile::TempDir, std::path::PathBuf) {
    server::write_config(
        YAML,
        &[
            ("lists/200-block.csv", HEADER),
            ("lists/acme-101-block.csv", HEADER),
            (
                "lists/acme-102-block.csv",
                &format!("{HEADER}old,+15554443333,,,true,\n"),
            ),
        ],
    )
}

/// An Asterisk call to `did` for acme: (verdict, list).
async fn agi_call(addr: SocketAddr, did: &str, caller: &str, id: &str) -> (String, String) {
    let r = AsteriskSim::new()
        .callerid(caller)
        .script("callfilter?tenant=acme")
        .dnid(did)
        .extension(did)
        .set_env("agi_uniqueid", id)
        .run(addr)
        .await;
    assert!(r.error.is_none() && !r.timed_out, "{caller}: {r:?}");
    let v = |n: &str| r.variables.get(n).cloned().unwrap_or_default();
    (v("CALLGUARD_VERDICT"), v("CALLGUARD_LIST"))
}

/// An Asterisk feature request (`agi://…/feature?…`) on a channel from
/// `caller` with unique id `id`: `CALLGUARD_FEATURE`.
async fn agi_feature(addr: SocketAddr, query: &str, caller: &str, exten: &str, id: &str) -> String {
    let r = AsteriskSim::new()
        .callerid(caller)
        .script(&format!("feature?tenant=acme&{query}"))
        .dnid(exten)
        .extension(exten)
        .set_env("agi_uniqueid", id)
        .run(addr)
        .await;
    assert!(r.error.is_none() && !r.timed_out, "{query}: {r:?}");
    r.variables
        .get("CALLGUARD_FEATURE")
        .cloned()
        .unwrap_or_default()
}

/// A FreeSWITCH call to `dest` in acme's domain, with extra channel variables.
async fn esl_run(
    addr: SocketAddr,
    caller: &str,
    dest: &str,
    id: &str,
    vars: &[(&str, &str)],
) -> freeswitch::SimResult {
    let mut variables = vec![("domain_name".to_string(), "acme.example.com".to_string())];
    variables.extend(vars.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    let r = SimConfig {
        caller_number: caller.into(),
        destination_number: dest.into(),
        unique_id: id.into(),
        variables,
        ..SimConfig::default()
    }
    .run(addr)
    .await;
    assert!(
        r.error.is_none() && !r.timed_out,
        "{caller} {vars:?}: {r:?}"
    );
    r
}

async fn esl_call(addr: SocketAddr, did: &str, caller: &str, id: &str) -> (String, String) {
    let r = esl_run(addr, caller, did, id, &[]).await;
    let v = |n: &str| r.variable(n).unwrap_or_default().to_string();
    (v("callguard_verdict"), v("callguard_list"))
}

async fn esl_feature(
    addr: SocketAddr,
    caller: &str,
    dest: &str,
    id: &str,
    vars: &[(&str, &str)],
) -> String {
    let r = esl_run(addr, caller, dest, id, vars).await;
    r.variable("callguard_feature")
        .unwrap_or_default()
        .to_string()
}

fn pair(v: &str, l: &str) -> (String, String) {
    (v.to_string(), l.to_string())
}

const X: &str = "+15551112222";
const Y: &str = "+15553334444";
const USER_101: &str = "+18005550101";
const USER_102: &str = "+18005550102";
/// The trunk's DID: screened at the DID, delivered later by the dialplan
/// (ring group, IVR): the `delivered` note attributes it.
const MAIN: &str = "+18005550100";

async fn history_authors(http: SocketAddr, list: &str) -> String {
    reqwest::get(format!("http://{http}/api/v1/history?list={list}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn star32_on_asterisk_blocks_the_last_caller_of_that_extension_only() {
    server::install_tls_provider();
    let (dir, cfg) = config();
    let srv = serve(&cfg);
    // The first request after start is a feature code: nothing to block yet.
    assert_eq!(
        agi_feature(srv.agi, "op=code", "101", "*32", "f-0").await,
        "nothing"
    );
    // X calls the trunk's DID, the dialplan delivers the call to ext 101.
    assert_eq!(
        agi_call(srv.agi, MAIN, X, "c-1").await,
        pair("allow", "default")
    );
    assert_eq!(
        agi_feature(srv.agi, "op=delivered&ext=101", X, "s", "c-1").await,
        "noted"
    );
    // Ext 101 dials *32 (read with acme's feature codes).
    assert_eq!(
        agi_feature(srv.agi, "op=code", "101", "*32", "f-1").await,
        "blocked"
    );
    // X's next call to 101 is blocked by 101's own list; to 102 it is not;
    // Y's call to 101 is not.
    assert_eq!(
        agi_call(srv.agi, USER_101, X, "c-2").await,
        pair("block", "user_block")
    );
    assert_eq!(
        agi_call(srv.agi, USER_102, X, "c-3").await,
        pair("allow", "default")
    );
    assert_eq!(
        agi_call(srv.agi, USER_101, Y, "c-4").await,
        pair("allow", "default")
    );
    // In the list, as E.164, authored by the extension in the history.
    let list = std::fs::read_to_string(dir.path().join("lists/acme-101-block.csv")).unwrap();
    assert!(
        list.contains("Block-+15551112222,+15551112222,exact"),
        "{list}"
    );
    let history = history_authors(srv.http, "acme.user.101.block").await;
    assert!(history.contains("\"author\":\"ext 101\""), "{history}");
    // Y's call to 101 (a user's DID) is attributed at screening: *32 from
    // 101 now blocks Y; 102 never had a caller attributed.
    assert_eq!(
        agi_feature(srv.agi, "op=block-last", "101", "s", "f-2").await,
        "blocked"
    );
    assert_eq!(
        agi_call(srv.agi, USER_101, Y, "c-5").await,
        pair("block", "user_block")
    );
    // The attribution survives a restart: X calls 102, restart, *32 from 102.
    assert_eq!(
        agi_call(srv.agi, USER_102, X, "c-6").await,
        pair("allow", "default")
    );
    drop(srv);
    let srv = serve(&cfg);
    assert_eq!(
        agi_feature(srv.agi, "op=block-last&ext=102", "", "s", "f-3").await,
        "blocked"
    );
    assert_eq!(
        agi_call(srv.agi, USER_102, X, "c-7").await,
        pair("block", "user_block")
    );
    drop(srv);
    drop(dir);
}

#[tokio::test]
async fn star32_on_freeswitch_blocks_the_last_caller_of_that_extension_only() {
    server::install_tls_provider();
    let (dir, cfg) = config();
    let srv = serve(&cfg);
    let fc = |op: &'static str| [("callguard_feature", op)];
    assert_eq!(
        esl_feature(srv.esl, "101", "*32", "f-0", &fc("code")).await,
        "nothing"
    );
    assert_eq!(
        esl_call(srv.esl, MAIN, X, "c-1").await,
        pair("allow", "default")
    );
    let delivered = [("callguard_feature", "delivered"), ("callguard_ext", "101")];
    assert_eq!(
        esl_feature(srv.esl, X, MAIN, "c-1", &delivered).await,
        "noted"
    );
    assert_eq!(
        esl_feature(srv.esl, "101", "*32", "f-1", &fc("code")).await,
        "blocked"
    );
    assert_eq!(
        esl_call(srv.esl, USER_101, X, "c-2").await,
        pair("block", "user_block")
    );
    assert_eq!(
        esl_call(srv.esl, USER_102, X, "c-3").await,
        pair("allow", "default")
    );
    assert_eq!(
        esl_call(srv.esl, USER_101, Y, "c-4").await,
        pair("allow", "default")
    );
    // After a restart the attribution still holds.
    assert_eq!(
        esl_call(srv.esl, USER_102, X, "c-5").await,
        pair("allow", "default")
    );
    drop(srv);
    let srv = serve(&cfg);
    assert_eq!(
        esl_feature(srv.esl, "102", "*32", "f-2", &fc("code")).await,
        "blocked"
    );
    assert_eq!(
        esl_call(srv.esl, USER_102, X, "c-6").await,
        pair("block", "user_block")
    );
    drop(srv);
    drop(dir);
}

#[tokio::test]
async fn star30_and_star31_add_and_remove_a_number_and_refuse_what_they_must() {
    server::install_tls_provider();
    let (dir, cfg) = config();
    let srv = serve(&cfg);
    let a = srv.agi;
    // *30 + a national number: written as E.164, in force for the next call.
    assert_eq!(
        agi_feature(a, "op=code", "101", "*305553334444", "f-1").await,
        "blocked"
    );
    assert_eq!(
        agi_call(a, USER_101, Y, "c-1").await,
        pair("block", "user_block")
    );
    // Again: already blocked, still "blocked", nothing written twice.
    assert_eq!(
        agi_feature(a, "op=block&number=5553334444", "101", "s", "f-2").await,
        "blocked"
    );
    let list = std::fs::read_to_string(dir.path().join("lists/acme-101-block.csv")).unwrap();
    assert_eq!(list.matches("+15553334444").count(), 2, "{list}");
    // *31 + number removes it (over FreeSWITCH this time).
    let fs = [("callguard_feature", "code")];
    assert_eq!(
        esl_feature(srv.esl, "101", "*31+15553334444", "f-3", &fs).await,
        "removed"
    );
    assert_eq!(
        esl_call(srv.esl, USER_101, Y, "c-2").await,
        pair("allow", "default")
    );
    assert_eq!(
        esl_feature(srv.esl, "101", "*315553334444", "f-4", &fs).await,
        "nothing"
    );
    // 102's own old rule is removed by *31 too.
    assert_eq!(
        agi_feature(a, "op=unblock&number=5554443333", "102", "s", "f-6").await,
        "removed"
    );
    // Refused: a protected number, a handset that is not a user, a user
    // without a block list, a code without a number.
    assert_eq!(
        agi_feature(a, "op=code", "101", "*30911", "f-7").await,
        "refused"
    );
    assert_eq!(
        agi_call(a, USER_101, "911", "c-3").await,
        pair("allow", "protected")
    );
    assert_eq!(
        agi_feature(a, "op=code", "555", "*305553334444", "f-8").await,
        "refused"
    );
    assert_eq!(
        agi_feature(a, "op=code", "103", "*305553334444", "f-9").await,
        "refused"
    );
    assert_eq!(
        agi_feature(a, "op=code", "101", "*30", "f-10").await,
        "refused"
    );
    // The feature endpoint without a feature is refused, never screened as a call.
    assert_eq!(
        agi_feature(a, "op=nope", "101", "s", "f-12").await,
        "refused"
    );
    let none = AsteriskSim::new()
        .callerid("101")
        .script("feature")
        .run(a)
        .await;
    assert_eq!(
        none.variables.get("CALLGUARD_FEATURE").map(String::as_str),
        Some("refused")
    );
    assert!(
        !none.variables.contains_key("CALLGUARD_VERDICT"),
        "{none:?}"
    );
    // An anonymous last caller cannot be blocked (and is not skipped over
    // for the caller before it).
    assert_eq!(
        agi_call(a, USER_101, X, "c-4").await,
        pair("allow", "default")
    );
    let anon = AsteriskSim::new()
        .callerid("")
        .script("callfilter?tenant=acme")
        .dnid(USER_101)
        .extension(USER_101)
        .set_env("agi_callingpres", "32")
        .run(a)
        .await;
    assert!(anon.error.is_none(), "{anon:?}");
    assert_eq!(
        agi_feature(a, "op=block-last", "101", "s", "f-11").await,
        "refused"
    );
    drop(srv);
    drop(dir);
}

#[tokio::test]
async fn numbers_a_user_dialled_are_allowed_for_that_user() {
    server::install_tls_provider();
    let (dir, cfg) = config();
    let srv = serve(&cfg);
    let a = srv.agi;
    // 101 has blocked Y, then calls Y back (the outbound snippet's note).
    assert_eq!(
        agi_feature(a, "op=code", "101", "*30+15553334444", "f-1").await,
        "blocked"
    );
    assert_eq!(
        agi_call(a, USER_101, Y, "c-1").await,
        pair("block", "user_block")
    );
    assert_eq!(
        agi_feature(a, "op=dialled", "101", "5553334444", "o-1").await,
        "noted"
    );
    assert_eq!(
        agi_call(a, USER_101, Y, "c-2").await,
        pair("allow", "dialled")
    );
    // For that user only, and over FreeSWITCH's note as well.
    assert_eq!(
        agi_call(a, USER_102, Y, "c-3").await,
        pair("allow", "default")
    );
    let out = [("callguard_feature", "dialled")];
    assert_eq!(
        esl_feature(srv.esl, "102", "15554443333", "o-2", &out).await,
        "noted"
    );
    assert_eq!(
        esl_call(srv.esl, USER_102, "+15554443333", "c-4").await,
        pair("allow", "dialled")
    );
    // The system's protected / blacklist order is untouched: a default-tenant
    // user has no `dialled_numbers:` (off): the note is ignored.
    let r = AsteriskSim::new()
        .callerid("200")
        .script("feature?op=dialled")
        .dnid("5553334444")
        .extension("5553334444")
        .run(a)
        .await;
    assert_eq!(
        r.variables.get("CALLGUARD_FEATURE").map(String::as_str),
        Some("nothing")
    );
    // Survives a restart.
    drop(srv);
    let srv = serve(&cfg);
    assert_eq!(
        agi_call(srv.agi, USER_101, Y, "c-5").await,
        pair("allow", "dialled")
    );
    drop(srv);
    drop(dir);
}
