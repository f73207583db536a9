//! The first call after a start, and the first after a reload, is decided
//! like the millionth: each test runs the real `callguard serve` binary in a
//! fresh process (nothing warmed by an earlier test) and places a caller in
//! *national* format, the form that needs the region's dialling rules.
//!
//! The bug these guard against: the phonenumber metadata was loaded and its
//! regexes compiled on the first national-format call, which then missed the
//! decision deadline and was let through unscreened.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;

use asterisk::AsteriskSim;
use freeswitch::SimConfig;

// Region, a caller as sent in that region's national format, and its E.164
// form (the blacklisted number).
include!("fixtures/national_formats.rs");
const REGIONS: &[(&str, &str, &str)] = NATIONAL_FORMATS;

/// The issue's own scenario: a system blacklist range, default region US.
const SYSTEM_RANGE: &str = r#"
normalize: { default_region: US }
default_trunk: support
blacklist:
  - { name: DC-Spam, pattern: "+1202555____" }
trunks:
  support: {}
"#;

/// One trunk per region, each blacklisting its region's number.
fn regions_yaml(regions: &[(&str, &str, &str)]) -> String {
    let mut y = String::from("normalize: { default_region: US }\ntrunks:\n");
    for (r, _, e164) in regions {
        y.push_str(&format!(
            "  {r}:\n    region: {r}\n    blacklist:\n      - {{ name: {r}-spam, pattern: \"{e164}\" }}\n"
        ));
    }
    y
}

#[tokio::test]
async fn first_fastagi_call_after_start_in_national_format_is_blocked() {
    let srv = server::spawn_binary(SYSTEM_RANGE, &[]);
    let r = AsteriskSim::new()
        .callerid("2025551234")
        .run(srv.agi.unwrap())
        .await;
    assert_eq!(r.variables.get("CALLGUARD_ERROR"), None, "{:?}", r.commands);
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "block");
    assert_eq!(r.variables["CALLGUARD_LIST"], "system_blacklist");
    assert_eq!(r.variables["CALLGUARD_RULE"], "DC-Spam");
    assert_eq!(r.commands[1..], ["EXEC Busy 5", "EXEC Hangup 17"]);
}

#[tokio::test]
async fn first_esl_call_after_start_in_national_format_is_blocked() {
    let srv = server::spawn_binary(SYSTEM_RANGE, &[]);
    let r = SimConfig {
        caller_number: "2025551234".into(),
        ..SimConfig::default()
    }
    .run(srv.esl.unwrap())
    .await;
    assert_eq!(r.variable("callguard_error"), None);
    assert_eq!(r.variable("callguard_verdict"), Some("block"));
    assert_eq!(r.variable("callguard_list"), Some("system_blacklist"));
    assert_eq!(r.variable("callguard_rule"), Some("DC-Spam"));
}

/// Fifteen regions, each one's first call interleaved with the others', half
/// through FastAGI and half through ESL: every one is blocked by its rule.
#[tokio::test]
async fn first_call_of_each_of_fifteen_regions_is_blocked() {
    let srv = server::spawn_binary(&regions_yaml(REGIONS), &[]);
    for (i, (region, national, _)) in REGIONS.iter().enumerate() {
        let rule = format!("{region}-spam");
        if i % 2 == 0 {
            let r = AsteriskSim::new()
                .callerid(national)
                .script(&format!("screen?trunk={region}"))
                .run(srv.agi.unwrap())
                .await;
            assert_eq!(r.variables.get("CALLGUARD_ERROR"), None, "{region}");
            assert_eq!(r.variables["CALLGUARD_VERDICT"], "block", "{region}");
            assert_eq!(r.variables["CALLGUARD_RULE"], rule);
        } else {
            let r = SimConfig {
                caller_number: national.to_string(),
                variables: vec![("callguard_trunk".into(), region.to_string())],
                ..SimConfig::default()
            }
            .run(srv.esl.unwrap())
            .await;
            assert_eq!(r.variable("callguard_error"), None, "{region}");
            assert_eq!(r.variable("callguard_verdict"), Some("block"), "{region}");
            assert_eq!(r.variable("callguard_rule"), Some(rule.as_str()));
        }
    }
}

/// A reload that brings a region no trunk used before: its first caller is
/// blocked too (the new rule set is made ready before it is swapped in).
#[tokio::test]
async fn first_call_of_a_new_region_after_reload_is_blocked() {
    let srv = server::spawn_binary(&regions_yaml(&REGIONS[..1]), &[]);
    let http = srv.http.unwrap();
    // Add a New Zealand trunk to the trunks map (the listeners and log that
    // the harness appended stay as they are).
    let text = std::fs::read_to_string(&srv.config).unwrap().replacen(
        "trunks:\n",
        "trunks:\n  NZ:\n    region: NZ\n    blacklist:\n      - { name: NZ-spam, pattern: \"+6491234567\" }\n",
        1,
    );
    std::fs::write(&srv.config, &text).unwrap();
    let resp = reqwest::Client::new()
        .post(format!("http://{http}/api/v1/reload"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    let r = AsteriskSim::new()
        .callerid("09 123 4567")
        .script("screen?trunk=NZ")
        .run(srv.agi.unwrap())
        .await;
    assert_eq!(r.variables.get("CALLGUARD_ERROR"), None, "{:?}", r.commands);
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "block");
    assert_eq!(r.variables["CALLGUARD_RULE"], "NZ-spam");
}
