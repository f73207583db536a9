//! Tenants and users over the real protocols: the Asterisk and FreeSWITCH
//! simulators (the bytes of the captures) against the service on loopback.
//! The same caller is blocked for one tenant and let through for another;
//! a user's own allow and block lists in the written precedence; a broken
//! list in one tenant does not stop the others.

use callguard_sim::{asterisk, freeswitch};
#[path = "support/server.rs"]
mod server;

use asterisk::AsteriskSim;
use callguard::config::load_str;
use callguard::policy::RuleSet;
use freeswitch::SimConfig;

const HEADER: &str = "rule_name,pattern,match_type,action,enabled,notes\n";

/// acme blocks +15551112222 on its trunk; beta does not know it. The system
/// blacklist (+15559990000) is above both; 911 is protected.
const YAML: &str = r#"
protected: ["911"]
blacklist:
  - { name: sys-bad, pattern: "+15559990000" }
trunks:
  main: { dids: ["+18005550100"] }
users:
  "200": { dids: ["+18005550200"], block: lists/200-block.csv }
tenants:
  acme:
    domains: [acme.example.com]
    trunks:
      main:
        blacklist:
          - { name: acme-spam, pattern: "+15551112222" }
    users:
      "101":
        dids: ["+18005550101"]
        allow: lists/acme-101-allow.csv
        block: lists/acme-101-block.csv
  beta:
    domains: [beta.example.com]
    lists:
      - { path: lists/beta.csv, as: blacklist }
"#;

fn files() -> Vec<(&'static str, String)> {
    vec![
        // User 101 lets acme's spammer through and blocks a neighbour; the
        // user's allow list cannot reach above the system blacklist.
        (
            "lists/acme-101-allow.csv",
            format!("{HEADER}friend,+15551112222,,,true,\nsys,+15559990000,,,true,\n"),
        ),
        (
            "lists/acme-101-block.csv",
            format!("{HEADER}neighbour,+15553334444,,,true,\nemergency,911,,,true,\n"),
        ),
        (
            "lists/beta.csv",
            format!("{HEADER}beta-only,+15557776666,,,true,\n"),
        ),
        (
            "lists/200-block.csv",
            format!("{HEADER}ex,+15558887777,,,true,\n"),
        ),
    ]
}

async fn start() -> server::TestServer {
    let f = files();
    let refs: Vec<(&str, &str)> = f.iter().map(|(n, b)| (*n, b.as_str())).collect();
    server::start_with(YAML, &refs).await
}

/// One Asterisk call: `?tenant=` in the AGI URL, the dialled number.
async fn agi(
    srv: &server::TestServer,
    tenant: Option<&str>,
    dnid: &str,
    caller: &str,
) -> (String, String) {
    let script = match tenant {
        Some(t) => format!("callfilter?tenant={t}"),
        None => "callfilter".to_string(),
    };
    let r = AsteriskSim::new()
        .callerid(caller)
        .script(&script)
        .dnid(dnid)
        .extension(dnid)
        .run(srv.agi())
        .await;
    assert!(r.error.is_none() && !r.timed_out, "{caller}: {r:?}");
    let v = |n: &str| r.variables.get(n).cloned().unwrap_or_default();
    (v("CALLGUARD_VERDICT"), v("CALLGUARD_LIST"))
}

/// One FreeSWITCH call: the domain of the channel, the destination.
async fn esl(srv: &server::TestServer, domain: &str, dest: &str, caller: &str) -> (String, String) {
    let r = SimConfig {
        caller_number: caller.into(),
        destination_number: dest.into(),
        variables: vec![("domain_name".into(), domain.into())],
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert!(r.error.is_none() && !r.timed_out, "{caller}: {r:?}");
    let v = |n: &str| r.variable(n).unwrap_or_default().to_string();
    (v("callguard_verdict"), v("callguard_list"))
}

fn is(v: (String, String), verdict: &str, list: &str) -> bool {
    v.0 == verdict && v.1 == list
}

#[tokio::test]
async fn same_caller_blocked_for_one_tenant_allowed_for_another_on_asterisk() {
    let mut srv = start().await;
    let spam = "+15551112222";
    let acme = agi(&srv, Some("acme"), "+18005550100", spam).await;
    assert!(is(acme.clone(), "block", "blacklist"), "{acme:?}");
    let beta = agi(&srv, Some("beta"), "+18005550100", spam).await;
    assert!(is(beta.clone(), "allow", "default"), "{beta:?}");
    // The default tenant (no tenant named) does not know acme's rule either.
    let default = agi(&srv, None, "+18005550100", spam).await;
    assert!(is(default.clone(), "allow", "default"), "{default:?}");
    // An unknown tenant is the default tenant.
    let unknown = agi(&srv, Some("nosuch"), "+18005550100", spam).await;
    assert!(is(unknown.clone(), "allow", "default"), "{unknown:?}");
    // The system blacklist is above every tenant.
    for t in [Some("acme"), Some("beta"), None] {
        let v = agi(&srv, t, "+18005550100", "+15559990000").await;
        assert!(is(v.clone(), "block", "system_blacklist"), "{t:?}: {v:?}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn same_caller_blocked_for_one_tenant_allowed_for_another_on_freeswitch() {
    let mut srv = start().await;
    let spam = "+15551112222";
    let acme = esl(&srv, "acme.example.com", "+18005550100", spam).await;
    assert!(is(acme.clone(), "block", "blacklist"), "{acme:?}");
    // Domains match whatever their case.
    let acme_upper = esl(&srv, "ACME.example.com", "+18005550100", spam).await;
    assert!(
        is(acme_upper.clone(), "block", "blacklist"),
        "{acme_upper:?}"
    );
    let beta = esl(&srv, "beta.example.com", "+18005550100", spam).await;
    assert!(is(beta.clone(), "allow", "default"), "{beta:?}");
    // beta's own list file blocks its caller, for beta only.
    let b = esl(&srv, "beta.example.com", "+18005550100", "+15557776666").await;
    assert!(is(b.clone(), "block", "blacklist"), "{b:?}");
    let a = esl(&srv, "acme.example.com", "+18005550100", "+15557776666").await;
    assert!(is(a.clone(), "allow", "default"), "{a:?}");
    srv.stop().await;
}

/// The precedence: protected → system blacklist → user allow → user block
/// → trunk whitelist → tenant whitelist → trunk blacklist → tenant
/// blacklist → exclusive → default.
#[tokio::test]
async fn a_users_own_lists_in_the_written_precedence_on_both_pbxs() {
    let mut srv = start().await;
    let to_101 = "+18005550101";
    // (caller, verdict, list) for calls to user 101 of acme.
    let cases = [
        // The user's allow list wins over the tenant's trunk blacklist.
        ("+15551112222", "allow", "user_allow"),
        // The user's block list.
        ("+15553334444", "block", "user_block"),
        // Protected above the user's block list.
        ("911", "allow", "protected"),
        // The system blacklist above the user's allow list.
        ("+15559990000", "block", "system_blacklist"),
        ("+15550001111", "allow", "default"),
    ];
    for (caller, verdict, list) in cases {
        let a = agi(&srv, Some("acme"), to_101, caller).await;
        assert!(is(a.clone(), verdict, list), "asterisk {caller}: {a:?}");
        let f = esl(&srv, "acme.example.com", to_101, caller).await;
        assert!(is(f.clone(), verdict, list), "freeswitch {caller}: {f:?}");
    }
    // The extension selects the user too.
    let ext = agi(&srv, Some("acme"), "101", "+15553334444").await;
    assert!(is(ext.clone(), "block", "user_block"), "{ext:?}");
    // Another number of acme is not user 101's: the trunk's blacklist decides.
    let other = agi(&srv, Some("acme"), "+18005550100", "+15553334444").await;
    assert!(is(other.clone(), "allow", "default"), "{other:?}");
    let spam = agi(&srv, Some("acme"), "+18005550100", "+15551112222").await;
    assert!(is(spam.clone(), "block", "blacklist"), "{spam:?}");
    // A default-tenant user.
    let u200 = agi(&srv, None, "+18005550200", "+15558887777").await;
    assert!(is(u200.clone(), "block", "user_block"), "{u200:?}");
    let not200 = agi(&srv, None, "+18005550100", "+15558887777").await;
    assert!(is(not200.clone(), "allow", "default"), "{not200:?}");
    srv.stop().await;
}

#[tokio::test]
async fn a_broken_list_in_one_tenant_does_not_stop_the_others() {
    let mut f = files();
    f.retain(|(n, _)| *n != "lists/beta.csv");
    // A pattern that does not compile in beta's list file.
    f.push((
        "lists/beta.csv",
        format!("{HEADER}bad,\"+1555[\",regex,,true,\n"),
    ));
    let refs: Vec<(&str, &str)> = f.iter().map(|(n, b)| (*n, b.as_str())).collect();
    // `check` (the strict compile) names the tenant and the file.
    let (_dir, config) = server::write_config(YAML, &refs);
    let text = std::fs::read_to_string(&config).unwrap();
    let cfg = load_str(&text, &config).expect("parses");
    let problems = RuleSet::compile(&cfg)
        .expect_err("beta is broken")
        .to_string();
    assert!(problems.contains("beta.csv"), "{problems}");
    assert!(problems.contains("tenant beta: "), "{problems}");
    // The service starts: acme screens with its rules, beta without its own.
    let mut srv = server::start_with(YAML, &refs).await;
    let acme = agi(&srv, Some("acme"), "+18005550100", "+15551112222").await;
    assert!(is(acme.clone(), "block", "blacklist"), "{acme:?}");
    let beta = esl(&srv, "beta.example.com", "+18005550100", "+15559990000").await;
    assert!(is(beta.clone(), "block", "system_blacklist"), "{beta:?}");
    let rs = &srv.running().state.snapshot().rules;
    assert!(
        rs.tenant_problems
            .iter()
            .any(|p| p.starts_with("tenant beta: ")),
        "{:?}",
        rs.tenant_problems
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_reload_keeps_a_broken_tenant_at_its_last_good_version() {
    let mut srv = start().await;
    let b = agi(&srv, Some("beta"), "+18005550100", "+15557776666").await;
    assert!(is(b.clone(), "block", "blacklist"), "{b:?}");
    // beta's file breaks; acme gains a rule in the same reload.
    let dir = srv.config.parent().unwrap().to_path_buf();
    std::fs::write(
        dir.join("lists/beta.csv"),
        format!("{HEADER}bad,\"+1555[\",regex,,true,\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("lists/acme-101-block.csv"),
        format!("{HEADER}neighbour,+15553334444,,,true,\nnew,+15556665555,,,true,\n"),
    )
    .unwrap();
    srv.running()
        .reloader
        .reload(callguard::reload::Trigger::ApiReload)
        .await
        .expect("the other tenants load");
    // acme's change is in force; beta's last good list still blocks.
    let a = agi(&srv, Some("acme"), "+18005550101", "+15556665555").await;
    assert!(is(a.clone(), "block", "user_block"), "{a:?}");
    let b = agi(&srv, Some("beta"), "+18005550100", "+15557776666").await;
    assert!(is(b.clone(), "block", "blacklist"), "{b:?}");
    let rs = &srv.running().state.snapshot().rules;
    assert!(
        rs.tenant_problems
            .iter()
            .any(|p| p.starts_with("tenant beta: ") && p.contains("last good version")),
        "{:?}",
        rs.tenant_problems
    );
    srv.stop().await;
}

/// A config without `tenants:` compiles exactly as before: one tenant, the
/// same lists, no user lists.
#[test]
fn a_config_without_tenants_is_one_default_tenant() {
    let yaml = "trunks:\n  main:\n    blacklist:\n      - { name: x, pattern: \"+15551112222\" }\n";
    let cfg = load_str(yaml, std::path::Path::new("/nonexistent/callguard.yaml")).unwrap();
    let rs = RuleSet::compile(&cfg).unwrap();
    assert_eq!(rs.tenants.len(), 1);
    let names: Vec<&str> = rs.lists.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "protected",
            "system_blacklist",
            "main.whitelist",
            "main.blacklist"
        ]
    );
    assert!(rs.tenant_problems.is_empty());
}
