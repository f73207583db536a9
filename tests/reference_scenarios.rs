//! Every scenario of `shared/reference/` as a config, decided end to end with
//! the outcome the reference states.

use std::path::Path;

use callguard::config::load_str;
use callguard::policy::decide::decide;
use callguard::policy::{DecidedBy, Decision, RuleSet, Verdict};
use chrono::{DateTime, Utc};

fn rules(yaml: &str) -> RuleSet {
    let cfg = load_str(yaml, Path::new("scenario.yaml")).unwrap_or_else(|e| panic!("config: {e}"));
    RuleSet::compile(&cfg).unwrap_or_else(|e| panic!("compile: {e}"))
}

/// A weekday afternoon in New York (Mon 2026-11-23 15:00 EST).
const WEEKDAY_AFTERNOON: &str = "2026-11-23T20:00:00Z";
/// The same Monday at 21:00 in New York.
const WEEKDAY_NIGHT: &str = "2026-11-24T02:00:00Z";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn call(rs: &RuleSet, trunk: &str, caller: &str) -> Decision {
    call_at(rs, trunk, caller, WEEKDAY_AFTERNOON)
}

fn call_at(rs: &RuleSet, trunk: &str, caller: &str, when: &str) -> Decision {
    let t = rs
        .trunk_by_name(trunk)
        .unwrap_or_else(|| panic!("no trunk {trunk}"));
    decide(rs, t, caller, false, at(when)).unwrap()
}

#[track_caller]
fn blocked(rs: &RuleSet, trunk: &str, caller: &str, rule: &str) -> Decision {
    let d = call(rs, trunk, caller);
    assert_eq!(
        d.verdict,
        Verdict::Block,
        "{caller} should be blocked: {}",
        d.reason(rs)
    );
    assert_eq!(d.rule_name(rs), Some(rule), "{caller}: {}", d.reason(rs));
    d
}

#[track_caller]
fn allowed(rs: &RuleSet, trunk: &str, caller: &str) -> Decision {
    let d = call(rs, trunk, caller);
    assert_eq!(
        d.verdict,
        Verdict::Allow,
        "{caller} should be allowed: {}",
        d.reason(rs)
    );
    d
}

const ACTIONS: &str = r#"
actions:
  reject: { kind: reject, tone: busy }
  premium-msg: { kind: play, sound: custom/premium-not-allowed }
  ppc-msg: { kind: play, sound: custom/pay-per-call-blocked }
  callerid-msg: { kind: play, sound: custom/enable-caller-id }
  voicemail: { kind: voicemail, mailbox: "100@default" }
  vip: { kind: whisper_bridge, tone: beep, dial: "PJSIP/vip-team", timeout: 30, on_no_answer: voicemail }
"#;

#[test]
fn scenario_1_block_all_international() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Block-All-International, pattern: '^(?!\\+1)[+][0-9]+$', match: regex, action: reject }}\n"
    ));
    let d = blocked(&rs, "main", "+442071234567", "Block-All-International");
    assert_eq!(d.list, DecidedBy::Blacklist);
    assert_eq!(d.action_name(&rs), "reject");
    allowed(&rs, "main", "+15551234567");
    allowed(&rs, "main", "+14165550000");
}

#[test]
fn scenario_2_block_premium_numbers_with_messages() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Block-900-Numbers, pattern: '+1900*', action: premium-msg }}\n      - {{ name: Block-976-Numbers, pattern: '+1976*', action: ppc-msg }}\n"
    ));
    assert_eq!(
        blocked(&rs, "main", "+19005551234", "Block-900-Numbers").action_name(&rs),
        "premium-msg"
    );
    assert_eq!(
        blocked(&rs, "main", "+19765551234", "Block-976-Numbers").action_name(&rs),
        "ppc-msg"
    );
    allowed(&rs, "main", "+18005551234");
}

#[test]
fn scenario_3_high_fraud_countries() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Block-Nigeria, pattern: '+234*', action: reject }}\n      - {{ name: Block-Somalia, pattern: '+252*', action: reject }}\n      - {{ name: Block-Cuba, pattern: '+53*', action: reject }}\n"
    ));
    blocked(&rs, "main", "+2348012345678", "Block-Nigeria");
    blocked(&rs, "main", "+252612345678", "Block-Somalia");
    blocked(&rs, "main", "+5371234567", "Block-Cuba");
    allowed(&rs, "main", "+15551234567");
}

#[test]
fn scenario_4_specific_spam_caller() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Block-Spam-Caller-ID, pattern: '+15551234567', match: exact, action: reject, notes: 'Reported spam caller, multiple complaints' }}\n"
    ));
    blocked(&rs, "main", "+15551234567", "Block-Spam-Caller-ID");
    allowed(&rs, "main", "+15551234568");
}

#[test]
fn scenario_5_competitor_number_range() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Block-Competitor-Numbers, pattern: '+1555123*', action: reject }}\n"
    ));
    blocked(&rs, "main", "+15551230000", "Block-Competitor-Numbers");
    blocked(&rs, "main", "+15551239999", "Block-Competitor-Numbers");
    allowed(&rs, "main", "+15551240000");
}

#[test]
fn scenario_6_anonymous_callers_whatever_the_pbx_sends() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Block-Hidden-CallerID, pattern: 'Anonymous|Private|Restricted|Unknown', match: regex, action: callerid-msg }}\n"
    ));
    for caller in [
        "Anonymous",
        "Private",
        "Restricted",
        "unknown",
        "",
        "anonymous",
        "BLOCKED",
    ] {
        let d = blocked(&rs, "main", caller, "Block-Hidden-CallerID");
        assert_eq!(d.action_name(&rs), "callerid-msg");
        assert!(d.caller.anonymous);
    }
    // The PBX's presentation flag hides a number too.
    let t = rs.trunk_by_name("main").unwrap();
    let d = decide(&rs, t, "+15551234567", true, at(WEEKDAY_AFTERNOON)).unwrap();
    assert_eq!(d.verdict, Verdict::Block);
    allowed(&rs, "main", "+15551234567");
}

#[test]
fn anonymous_flag_rule_matches_hidden_callers() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Block-Hidden, anonymous: true, action: callerid-msg }}\n"
    ));
    blocked(&rs, "main", "unknown", "Block-Hidden");
    blocked(&rs, "main", "", "Block-Hidden");
    allowed(&rs, "main", "+15551234567");
}

#[test]
fn interaction_1_vip_bypasses_spam_block() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    whitelist:\n      - {{ name: Allow-VIP, pattern: '+15551234567', action: vip }}\n    blacklist:\n      - {{ name: Block-Spam-Range, pattern: '+1555123*', action: reject }}\n"
    ));
    let d = allowed(&rs, "main", "+15551234567");
    assert_eq!(d.list, DecidedBy::Whitelist);
    assert_eq!(d.action_name(&rs), "vip");
    blocked(&rs, "main", "+15551234568", "Block-Spam-Range");
}

#[test]
fn interaction_2_whitelisted_region_beats_blacklisted_number() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    whitelist:\n      - {{ name: Allow-Area, pattern: '+1555*' }}\n    blacklist:\n      - {{ name: Block-Problem, pattern: '+15551234567', action: reject }}\n"
    ));
    let d = allowed(&rs, "main", "+15551234567");
    assert_eq!(d.rule_name(&rs), Some("Allow-Area"));
}

#[test]
fn interaction_3_uk_office_exception() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    whitelist:\n      - {{ name: Allow-UK-Office, pattern: '+442071234567' }}\n    blacklist:\n      - {{ name: Block-UK, pattern: '+44*', match: starts_with, action: reject }}\n"
    ));
    allowed(&rs, "main", "+442071234567");
    blocked(&rs, "main", "+442079999999", "Block-UK");
}

#[test]
fn system_blacklist_is_above_trunk_whitelists() {
    let rs = rules(&format!(
        "{ACTIONS}\nblacklist:\n  - {{ name: Block-Known-Fraud, pattern: '+2348012345678', action: reject }}\ntrunks:\n  main:\n    whitelist:\n      - {{ name: Allow-Nigeria-Partner, pattern: '+234*' }}\n"
    ));
    let d = blocked(&rs, "main", "+2348012345678", "Block-Known-Fraud");
    assert_eq!(d.list, DecidedBy::SystemBlacklist);
    allowed(&rs, "main", "+2348099999999");
}

#[test]
fn protected_numbers_are_never_blocked() {
    let rs = rules(&format!(
        "{ACTIONS}\nprotected: ['911', '112', '+1911']\nblacklist:\n  - {{ name: Block-Short, pattern: '^[0-9]{{1,4}}$', match: regex }}\ntrunks:\n  main:\n    whitelist_mode: exclusive\n"
    ));
    for n in ["911", "112", "+1911"] {
        let d = allowed(&rs, "main", n);
        assert_eq!(d.list, DecidedBy::Protected);
    }
    blocked(&rs, "main", "999", "Block-Short");
}

#[test]
fn exclusive_mode_only_whitelisted_get_through() {
    // Executive direct line: board members and C-suite only, 24/7.
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  ceo-direct-line:\n    whitelist_mode: exclusive\n    blocked_action: voicemail\n    whitelist:\n      - {{ name: CFO, pattern: '+15551111111' }}\n      - {{ name: CTO, pattern: '+15552222222' }}\n      - {{ name: Board-Chair, pattern: '+15553333333' }}\n"
    ));
    for n in ["+15551111111", "+15552222222", "+15553333333"] {
        assert_eq!(
            allowed(&rs, "ceo-direct-line", n).list,
            DecidedBy::Whitelist
        );
    }
    let d = call(&rs, "ceo-direct-line", "+15554444444");
    assert_eq!((d.verdict, d.list), (Verdict::Block, DecidedBy::Exclusive));
    assert_eq!(d.action_name(&rs), "voicemail");
    let d = call(&rs, "ceo-direct-line", "Anonymous");
    assert_eq!(d.list, DecidedBy::Exclusive);
}

const OFFICE_HOURS: &str = r#"
schedules:
  office-hours:
    timezone: America/New_York
    open:
      - { days: mon-fri, from: "08:00", to: "18:00" }
"#;

#[test]
fn after_hours_emergency_line_medical_practice() {
    // 6pm-8am: exclusive whitelist mode; doctors and the on-call service only.
    let rs = rules(&format!(
        "{ACTIONS}{OFFICE_HOURS}\ntrunks:\n  practice:\n    exclusive: {{ outside: office-hours }}\n    blocked_action: voicemail\n    whitelist:\n      - {{ name: Dr-Smith, pattern: '+15551234567' }}\n      - {{ name: Dr-Jones, pattern: '+15559876543' }}\n      - {{ name: On-call-service, pattern: '+15551111111' }}\n"
    ));
    // During office hours everyone gets through.
    assert_eq!(
        call_at(&rs, "practice", "+15557777777", WEEKDAY_AFTERNOON).verdict,
        Verdict::Allow
    );
    // After hours only the whitelist.
    let d = call_at(&rs, "practice", "+15557777777", WEEKDAY_NIGHT);
    assert_eq!((d.verdict, d.list), (Verdict::Block, DecidedBy::Exclusive));
    assert!(d.exclusive_active);
    assert_eq!(
        call_at(&rs, "practice", "+15551234567", WEEKDAY_NIGHT).verdict,
        Verdict::Allow
    );
    assert_eq!(
        call_at(&rs, "practice", "+15551111111", WEEKDAY_NIGHT).verdict,
        Verdict::Allow
    );
}

#[test]
fn whitelist_rule_only_during_business_hours_then_blocked_by_exclusive_mode() {
    // Troubleshooting "Time-Based Rules": a whitelist entry limited to office
    // hours does not help after hours when exclusive mode is on.
    let rs = rules(&format!(
        "{ACTIONS}{OFFICE_HOURS}\ntrunks:\n  main:\n    whitelist_mode: exclusive\n    whitelist:\n      - {{ name: Contractor, pattern: '+15552223333', schedule: {{ inside: office-hours }} }}\n"
    ));
    assert_eq!(
        call_at(&rs, "main", "+15552223333", WEEKDAY_AFTERNOON).verdict,
        Verdict::Allow
    );
    let d = call_at(&rs, "main", "+15552223333", WEEKDAY_NIGHT);
    assert_eq!((d.verdict, d.list), (Verdict::Block, DecidedBy::Exclusive));
}

#[test]
fn whitelist_on_another_trunk_does_not_apply() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  a:\n    whitelist:\n      - {{ name: Allow-Client, pattern: '+15551234567' }}\n  b:\n    whitelist_mode: exclusive\n"
    ));
    assert_eq!(call(&rs, "a", "+15551234567").verdict, Verdict::Allow);
    assert_eq!(call(&rs, "b", "+15551234567").list, DecidedBy::Exclusive);
}

#[test]
fn disabled_rule_does_not_block() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Block-Broad, pattern: '+1555*', enabled: false }}\n"
    ));
    allowed(&rs, "main", "+15551234567");
}

#[test]
fn pattern_typo_does_not_match() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    whitelist_mode: exclusive\n    whitelist:\n      - {{ name: VIP, pattern: '+15551234567' }}\n"
    ));
    assert_eq!(call(&rs, "main", "+15551234568").list, DecidedBy::Exclusive);
}

#[test]
fn format_mismatch_is_solved_by_normalisation() {
    // "Rule pattern: +15551234567, provider sends 5551234567 → no match" —
    // unless numbers are normalised, which callguard does (E.164 per trunk region).
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Block-Spam, pattern: '+15551234567', action: reject }}\n"
    ));
    let d = blocked(&rs, "main", "5551234567", "Block-Spam");
    assert_eq!(d.matched_on.map(|m| m.as_str()), Some("e164"));
    blocked(&rs, "main", "(555) 123-4567", "Block-Spam");
    blocked(&rs, "main", "+15551234567", "Block-Spam");
}

#[test]
fn toll_fraud_protection_with_after_hours_business_regions() {
    let rs = rules(&format!(
        "{ACTIONS}{OFFICE_HOURS}\ntrunks:\n  main:\n    exclusive: {{ outside: office-hours }}\n    whitelist:\n      - {{ name: Allow-US-Canada, pattern: '+1*' }}\n      - {{ name: Allow-UK-Office, pattern: '+44*' }}\n      - {{ name: Allow-Australia-Office, pattern: '+61*' }}\n    blacklist:\n      - {{ name: Block-Nigeria, pattern: '+234*' }}\n      - {{ name: Block-Somalia, pattern: '+252*' }}\n      - {{ name: Block-Ivory-Coast, pattern: '+225*' }}\n      - {{ name: Block-Mali, pattern: '+223*' }}\n      - {{ name: Block-Ghana, pattern: '+233*' }}\n      - {{ name: Block-Kenya, pattern: '+254*' }}\n      - {{ name: Block-Cuba, pattern: '+53*' }}\n      - {{ name: Block-Myanmar, pattern: '+95*' }}\n      - {{ name: Block-BVI, pattern: '+1284*' }}\n"
    ));
    blocked(&rs, "main", "+2348012345678", "Block-Nigeria");
    blocked(&rs, "main", "+959123456789", "Block-Myanmar");
    // +1* whitelists North America, which includes +1284 — whitelist wins.
    assert_eq!(
        allowed(&rs, "main", "+12845550000").rule_name(&rs),
        Some("Allow-US-Canada")
    );
    // After hours: business regions only.
    assert_eq!(
        call_at(&rs, "main", "+33123456789", WEEKDAY_NIGHT).list,
        DecidedBy::Exclusive
    );
    assert_eq!(
        call_at(&rs, "main", "+61212345678", WEEKDAY_NIGHT).verdict,
        Verdict::Allow
    );
    assert_eq!(
        call_at(&rs, "main", "+33123456789", WEEKDAY_AFTERNOON).verdict,
        Verdict::Allow
    );
}

#[test]
fn geographic_domestic_only() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  store:\n    whitelist:\n      - {{ name: Allow-NA, pattern: '+1*' }}\n    blacklist:\n      - {{ name: Block-International, pattern: '^(?!\\+1)[+][0-9]+$', match: regex }}\n"
    ));
    allowed(&rs, "store", "+15551234567");
    blocked(&rs, "store", "+442071234567", "Block-International");
}

#[test]
fn geographic_multinational_and_cost_conscious() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  intl:\n    whitelist_mode: exclusive\n    whitelist:\n      - {{ name: US, pattern: '+1*' }}\n      - {{ name: UK, pattern: '+44*' }}\n      - {{ name: SG, pattern: '+65*' }}\n  startup:\n    whitelist:\n      - {{ name: Local, pattern: '+1*' }}\n      - {{ name: UK-Partner, pattern: '+44*' }}\n    blacklist:\n      - {{ name: Block-International, pattern: '^(?!\\+1)[+][0-9]+$', match: regex }}\n"
    ));
    for n in ["+15551234567", "+442071234567", "+6561234567"] {
        allowed(&rs, "intl", n);
    }
    assert_eq!(call(&rs, "intl", "+33123456789").list, DecidedBy::Exclusive);
    allowed(&rs, "startup", "+442071234567");
    blocked(&rs, "startup", "+33123456789", "Block-International");
}

#[test]
fn geographic_california_only() {
    let codes = [
        "209", "213", "310", "323", "341", "408", "415", "424", "442", "510", "530", "559", "562",
        "619", "626", "628", "650", "657", "661", "669", "707", "714", "747", "760", "805", "818",
        "820", "831", "858", "909", "916", "925", "949", "951",
    ];
    let mut yaml = format!(
        "{ACTIONS}\ntrunks:\n  ca-licensed:\n    whitelist_mode: exclusive\n    whitelist:\n"
    );
    for c in codes {
        yaml.push_str(&format!("      - {{ name: CA-{c}, pattern: '+1{c}*' }}\n"));
    }
    let rs = rules(&yaml);
    assert_eq!(
        allowed(&rs, "ca-licensed", "+14155552671").rule_name(&rs),
        Some("CA-415")
    );
    assert_eq!(
        call(&rs, "ca-licensed", "+12125551234").list,
        DecidedBy::Exclusive
    );
}

#[test]
fn spam_and_robocalls_strategy() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    whitelist:\n      - {{ name: Customer-1, pattern: '+15642223333', priority: 100 }}\n    blacklist:\n      - {{ name: Block-Anonymous, pattern: '^(Anonymous|Private|Restricted)$', match: regex, action: callerid-msg }}\n      - {{ name: Block-Spam-Area-Codes, pattern: '^(\\+1564|\\+1855844)', match: regex, action: reject }}\n"
    ));
    blocked(&rs, "main", "Private", "Block-Anonymous");
    blocked(&rs, "main", "+15649998888", "Block-Spam-Area-Codes");
    blocked(&rs, "main", "+18558441234", "Block-Spam-Area-Codes");
    allowed(&rs, "main", "+15642223333");
}

#[test]
fn vip_support_queue_bridges_vips_with_a_whisper() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  vip-support:\n    whitelist:\n      - {{ name: VIP-Client-A, pattern: '+15551111111', priority: 100, action: vip }}\n      - {{ name: VIP-Client-B, pattern: '+15552222222', priority: 100, action: vip }}\n    blacklist:\n      - {{ name: Aggressive-Spam, pattern: '+1555*', action: reject }}\n"
    ));
    let d = allowed(&rs, "vip-support", "+15551111111");
    assert_eq!(d.action_name(&rs), "vip");
    let plan = rs.action(d.action).plan(callguard::action::Pbx::Asterisk);
    match &plan.step {
        callguard::action::Step::Bridge {
            dial,
            tone,
            timeout,
            on_no_answer,
        } => {
            assert_eq!(
                (dial.as_str(), tone.as_str(), *timeout),
                ("PJSIP/vip-team", "beep", 30)
            );
            assert_eq!(&*on_no_answer.as_ref().unwrap().action, "voicemail");
        }
        other => panic!("{other:?}"),
    }
    blocked(&rs, "vip-support", "+15553333333", "Aggressive-Spam");
}

#[test]
fn vip_whitelist_works_with_national_local_and_international_numbers() {
    // vip-whitelist.txt: "works with national, local, and international numbers".
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  nl-support:\n    region: NL\n    whitelist_mode: exclusive\n    blocked_action: voicemail\n    whitelist:\n      - {{ name: Key-Account-NL, pattern: '+31201234567' }}\n      - {{ name: Key-Account-US, pattern: '+15551234567' }}\n"
    ));
    // The same Dutch number, national and international formats.
    for n in [
        "+31201234567",
        "0201234567",
        "0031201234567",
        "020 123 4567",
    ] {
        assert_eq!(call(&rs, "nl-support", n).verdict, Verdict::Allow, "{n}");
    }
    assert_eq!(
        call(&rs, "nl-support", "+15551234567").verdict,
        Verdict::Allow
    );
    let d = call(&rs, "nl-support", "0207654321");
    assert_eq!(
        (d.verdict, d.action_name(&rs)),
        (Verdict::Block, "voicemail")
    );
}

#[test]
fn priority_then_specificity_then_file_order() {
    let rs = rules(&format!(
        "{ACTIONS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Broad-Regex, pattern: '^\\+1555', match: regex }}\n      - {{ name: Wild, pattern: '+1555123____' }}\n      - {{ name: Short-Prefix, pattern: '+1555*' }}\n      - {{ name: Long-Prefix, pattern: '+1555123*' }}\n      - {{ name: Exact, pattern: '+15551234567' }}\n      - {{ name: Exact-Twin, pattern: '+15551234567', match: exact, enabled: true, action: reject }}\n      - {{ name: Urgent, pattern: '^\\+15559', match: regex, priority: 10 }}\n"
    ));
    // Exact beats prefix beats wildcard beats regex; the earlier exact twin wins.
    blocked(&rs, "main", "+15551234567", "Exact");
    blocked(&rs, "main", "+15551239999", "Long-Prefix");
    blocked(&rs, "main", "+15550000000", "Short-Prefix");
    // Priority beats specificity.
    blocked(&rs, "main", "+15559000000", "Urgent");
}

#[test]
fn rule_schedule_night_premium_block() {
    let rs = rules(&format!(
        "{ACTIONS}{OFFICE_HOURS}\ntrunks:\n  main:\n    blacklist:\n      - {{ name: Block-Night-Premium, pattern: '+1900*', schedule: {{ outside: office-hours }} }}\n"
    ));
    assert_eq!(
        call_at(&rs, "main", "+19005550000", WEEKDAY_AFTERNOON).verdict,
        Verdict::Allow
    );
    assert_eq!(
        call_at(&rs, "main", "+19005550000", WEEKDAY_NIGHT).verdict,
        Verdict::Block
    );
}
