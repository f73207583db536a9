//! Which rules of a list a call from a number would match (the tester's
//! semantics: the number as received and normalised to E.164 on the list's
//! trunk), for the console's search: "who does this number hit?".

use std::collections::HashSet;

use crate::policy::RuleSet;
use crate::policy::index::{ListIndex, MatchedOn, Subject};

/// Whether `q` reads as a phone number: digits with at most the usual
/// punctuation, three digits or more.
pub(crate) fn looks_like_number(q: &str) -> bool {
    let q = q.trim();
    let digits = q.bytes().filter(u8::is_ascii_digit).count();
    digits >= 3
        && q.bytes()
            .all(|b| b.is_ascii_digit() || b" +-().".contains(&b))
}

/// The number as a call on `trunk` (else the default trunk, else the
/// first) would be normalised, and the names of the rules of list `list`
/// that such a call matches (whether or not they are enabled or scheduled:
/// the search shows them all).
pub(crate) fn rules_matching(
    rs: &RuleSet,
    list: &str,
    trunk: Option<&str>,
    number: &str,
) -> (Option<String>, HashSet<String>) {
    let t = trunk
        .and_then(|t| rs.trunk_by_name(t))
        .or(rs.default_trunk)
        .or((!rs.trunks.is_empty()).then_some(0));
    let caller = match t {
        Some(t) => rs.trunk(t).dialing.normalize(number, false),
        None => crate::policy::number::Caller {
            raw: number.trim().to_string(),
            e164: None,
            anonymous: false,
        },
    };
    let mut subjects = vec![Subject::new(&caller.raw, MatchedOn::Raw)];
    if let Some(e) = caller.e164.as_deref().filter(|e| *e != caller.raw) {
        subjects.push(Subject::new(e, MatchedOn::E164));
    }
    let mut indexes: Vec<&ListIndex> = vec![&rs.protected, &rs.system];
    for t in &rs.trunks {
        indexes.push(&t.whitelist);
        indexes.push(&t.blacklist);
    }
    for t in &rs.tenants {
        indexes.push(&t.whitelist);
        indexes.push(&t.blacklist);
        for u in &t.users {
            indexes.push(&u.allow);
            indexes.push(&u.block);
        }
    }
    let mut out = HashSet::new();
    for ix in indexes {
        // A failing pattern (backtracking limit) matches nothing here.
        let _ = ix.for_each_match(
            &subjects,
            false,
            |_, _| true,
            |id, on| {
                if on != MatchedOn::Attestation && &*rs.rules.origin(id).list_name == list {
                    out.insert(rs.rules.name(id).to_string());
                }
            },
        );
    }
    (caller.e164, out)
}
