//! `attestation:` as a rule condition: decisions (pure), the explanation, the
//! CLI's `--attestation`, and where each PBX's level comes from over the
//! wire (Asterisk: GET VARIABLE of STIR_SHAKEN() and PJSIP_HEADER(); FreeSWITCH:
//! the channel data's sip_P-Asserted-Identity / sip_full_from / sip_from_uri), fetched only
//! when a rule of the call's trunk needs it.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;

use std::path::Path;

use asterisk::AsteriskSim;
use callguard::config::load_str;
use callguard::policy::attest::{Attest, Attestation};
use callguard::policy::decide::{decide, decide_attested};
use callguard::policy::{DecidedBy, RuleSet, Verdict};
use chrono::Utc;
use freeswitch::SimConfig;

const YAML: &str = r#"
default_trunk: support
actions:
  robot-check: { kind: challenge, prompt: custom/press }
trunks:
  support:
    dids: ["+18005550100"]
    whitelist:
      - { name: Signed-A, attestation: [A] }
    blacklist:
      - { name: Failed-Sig, attestation: [failed] }
      - { name: Unsigned-Range, pattern: "+1555*", attestation: [none, C], action: robot-check }
  plain:
    dids: ["+18005550122"]
    blacklist:
      - { name: Busy, pattern: "+15550000001" }
"#;

fn rules() -> RuleSet {
    let cfg = load_str(YAML, Path::new("a.yaml")).unwrap();
    RuleSet::compile(&cfg).unwrap()
}

fn att(level: Attest, source: &str) -> Attestation {
    Attestation {
        level,
        source: source.into(),
    }
}

#[test]
fn attestation_alone_or_anded_with_a_pattern() {
    let rs = rules();
    let t = rs.trunk_by_name("support").unwrap();
    let now = Utc::now();
    let d = |caller: &str, a: Option<Attestation>| {
        decide_attested(&rs, t, caller, false, a.as_ref(), now).unwrap()
    };
    // A-attested: whitelisted by the condition alone, whatever the number.
    let a = d(
        "+15551234567",
        Some(att(Attest::A, "verstat on P-Asserted-Identity")),
    );
    assert_eq!((a.verdict, a.list), (Verdict::Allow, DecidedBy::Whitelist));
    assert_eq!(a.rule_name(&rs), Some("Signed-A"));
    assert_eq!(
        a.reason(&rs),
        "whitelist rule Signed-A (attestation: [A], attestation A (verstat on P-Asserted-Identity)) on trunk support"
    );
    // C in the range: the pattern AND the condition hold.
    let c = d(
        "+15551234567",
        Some(att(Attest::C, "verstat on P-Asserted-Identity")),
    );
    assert_eq!(c.rule_name(&rs), Some("Unsigned-Range"));
    assert_eq!(c.action_name(&rs), "robot-check");
    assert!(
        c.reason(&rs)
            .contains("(wildcard +1555*, attestation C (verstat on P-Asserted-Identity))"),
        "{}",
        c.reason(&rs)
    );
    // C outside the range: the pattern does not hold.
    let out = d("+442071234567", Some(att(Attest::C, "verstat on From")));
    assert_eq!(out.list, DecidedBy::Default);
    // B in the range: the condition does not hold.
    let b = d("+15551234567", Some(att(Attest::B, "verstat on From")));
    assert_eq!(b.list, DecidedBy::Default);
    // The default decision still says what the call had, so an operator
    // sees why the attestation rule did not apply.
    assert_eq!(
        b.reason(&rs),
        "no rule matched (attestation B (verstat on From))"
    );
    // Failed signature: blocked by the condition alone.
    let f = d(
        "+442071234567",
        Some(att(
            Attest::Failed,
            "STIR_SHAKEN verify_result signature_validation",
        )),
    );
    assert_eq!(
        (f.verdict, f.rule_name(&rs)),
        (Verdict::Block, Some("Failed-Sig"))
    );
    // Not fetched (or unsigned): `none`, never guessed.
    let n = decide(&rs, t, "+15551234567", false, now).unwrap();
    assert_eq!(n.rule_name(&rs), Some("Unsigned-Range"));
    assert!(
        n.reason(&rs).contains("attestation none (unsigned)"),
        "{}",
        n.reason(&rs)
    );
    assert!(rs.trunk(t).needs_attestation);
    assert!(
        !rs.trunk(rs.trunk_by_name("plain").unwrap())
            .needs_attestation
    );
}

#[test]
fn bad_attestation_values_are_located() {
    let yaml = "trunks:\n  t:\n    blacklist:\n      - { name: X, attestation: [A, D] }\n      - { name: Y }\n";
    let cfg = load_str(yaml, Path::new("bad.yaml")).unwrap();
    let err = RuleSet::compile(&cfg).unwrap_err().to_string();
    assert!(
        err.contains("bad.yaml:4:")
            && err.contains("rule X: attestation \"D\": use a list of A, B, C, none, failed"),
        "{err}"
    );
    assert!(
        err.contains("rule Y: needs `pattern:`, `anonymous: true` or `attestation:`"),
        "{err}"
    );
}

#[test]
fn cli_test_takes_an_attestation() {
    let (dir, path) = server::write_config(YAML, &[]);
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
            .arg("test")
            .arg("--config")
            .arg(&path)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run(&["--attestation", "C", "+15551234567"]);
    assert!(
        out.contains("attestation C (callguard test --attestation)"),
        "{out}"
    );
    let out = run(&["--attestation", "a", "--json", "+15551234567"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["rule"], "Signed-A");
    assert_eq!(v["attestation"], "A");
    drop(dir);
}

#[tokio::test]
async fn asterisk_reads_verstat_through_pjsip_header_only_when_needed() {
    let mut srv = server::start(YAML).await;
    let pai = "<sip:+15551234567;verstat=TN-Validation-Passed-A@carrier.example;user=phone>";
    let r = AsteriskSim::new()
        .callerid("+15551234567")
        .variable("PJSIP_HEADER(read,P-Asserted-Identity)", pai)
        .run(srv.agi())
        .await;
    assert!(r.error.is_none() && !r.timed_out, "{r:?}");
    assert_eq!(
        r.commands[..2],
        [
            "GET VARIABLE STIR_SHAKEN(count)",
            "GET VARIABLE PJSIP_HEADER(read,P-Asserted-Identity)"
        ],
        "{:?}",
        r.commands
    );
    assert_eq!(r.variables["CALLGUARD_RULE"], "Signed-A");
    assert!(
        r.variables["CALLGUARD_REASON"].contains("attestation A (verstat on P-Asserted-Identity)"),
        "{:?}",
        r.variables
    );

    // Asterisk verified the call itself: its result wins, no header is read.
    let r = AsteriskSim::new()
        .callerid("+15551234567")
        .variable("STIR_SHAKEN(count)", "1")
        .variable("STIR_SHAKEN(0,verify_result)", "signature_validation")
        .variable("STIR_SHAKEN(0,attestation)", "A")
        .variable("PJSIP_HEADER(read,P-Asserted-Identity)", pai)
        .run(srv.agi())
        .await;
    assert!(!r.commands.iter().any(|c| c.contains("PJSIP_HEADER")));
    assert_eq!(r.variables["CALLGUARD_RULE"], "Failed-Sig");
    assert!(
        r.variables["CALLGUARD_REASON"]
            .contains("attestation failed (STIR_SHAKEN verify_result signature_validation)")
    );

    // verstat in the From header when the PAI has none.
    let r = AsteriskSim::new()
        .callerid("+15551234567")
        .variable(
            "PJSIP_HEADER(read,From)",
            "\"Bob\" <sip:+15551234567;verstat=TN-Validation-Passed-C@c.example>;tag=x",
        )
        .dtmf(asterisk::Dtmf::Heard)
        .run(srv.agi())
        .await;
    assert!(
        r.commands
            .iter()
            .any(|c| c == "GET VARIABLE PJSIP_HEADER(read,From)")
    );
    assert_eq!(r.variables["CALLGUARD_RULE"], "Unsigned-Range");
    assert!(r.variables["CALLGUARD_REASON"].contains("attestation C (verstat on From)"));

    // A trunk without attestation rules asks nothing.
    let r = AsteriskSim::new()
        .callerid("+15550000001")
        .dnid("+18005550122")
        .extension("+18005550122")
        .run(srv.agi())
        .await;
    assert!(r.commands[0].starts_with("EXEC MSet "), "{:?}", r.commands);
    srv.stop().await;
}

#[tokio::test]
async fn freeswitch_reads_verstat_from_the_channel_data() {
    let mut srv = server::start(YAML).await;
    let sim = |vars: &[(&str, &str)]| {
        let mut variables = vec![("callguard_trunk".to_string(), "support".to_string())];
        variables.extend(vars.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        SimConfig {
            caller_number: "+15551234567".into(),
            variables,
            ..SimConfig::default()
        }
    };
    let r = sim(&[(
        "sip_P-Asserted-Identity",
        "<sip:+15551234567;verstat=TN-Validation-Passed-A@carrier.example;user=phone>",
    )])
    .run(srv.esl())
    .await;
    assert!(r.error.is_none() && !r.timed_out, "{r:?}");
    assert_eq!(r.variable("callguard_rule"), Some("Signed-A"));
    assert!(
        r.variable("callguard_reason")
            .unwrap()
            .contains("attestation A (verstat on P-Asserted-Identity)")
    );
    // verstat in the From URI's user part (the 3GPP form): FreeSWITCH 1.10.12
    // rebuilds sip_full_from without it and keeps it in sip_from_uri (the
    // channel data of a lab call, integration row f68).
    let r = sim(&[
        (
            "sip_full_from",
            "\"Bob\" <sip:+15551234567@c.example:5060>;tag=1",
        ),
        (
            "sip_from_uri",
            "+15551234567;verstat=TN-Validation-Failed@c.example:5060",
        ),
        ("sip_from_user", "+15551234567;verstat=TN-Validation-Failed"),
    ])
    .run(srv.esl())
    .await;
    assert_eq!(r.variable("callguard_rule"), Some("Failed-Sig"));
    assert!(
        r.variable("callguard_reason")
            .unwrap()
            .contains("attestation failed (verstat on From)")
    );
    // verstat as a parameter after the host stays in sip_full_from (row f66).
    let r = sim(&[
        (
            "sip_full_from",
            "\"Bob\" <sip:+15551234567@c.example:5060;user=phone;verstat=TN-Validation-Failed>;tag=1",
        ),
        ("sip_from_uri", "+15551234567@c.example:5060"),
    ])
    .run(srv.esl())
    .await;
    assert_eq!(r.variable("callguard_rule"), Some("Failed-Sig"));
    srv.stop().await;
}
