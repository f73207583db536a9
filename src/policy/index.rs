//! Per-list indexes, so that a decision never scans rules.
//!
//! Exact numbers live in a sorted `u64` table (12 bytes a number, for lists
//! of millions), other exact strings in a hash map, prefixes and suffixes in
//! hash maps probed only at the lengths that occur, substrings in one
//! Aho-Corasick automaton, wildcards and regexes in one `RegexSet`, and only
//! look-around regexes are tried one by one (with a backtracking limit).

use std::collections::HashMap;

use aho_corasick::AhoCorasick;
use regex::{Regex, RegexSet, RegexSetBuilder};

use super::pattern::{CompiledPattern, Matcher};

pub(crate) type RuleId = u32;

/// Which form of the caller ID a rule matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchedOn {
    /// The caller ID as the PBX sent it.
    Raw,
    /// Its E.164 normalisation.
    E164,
    /// The caller is anonymous: an `anonymous: true` rule, or a pattern that
    /// matched the canonical word `Anonymous`.
    Anonymous,
    /// A rule with only an `attestation:` condition: it matches every caller.
    Attestation,
}

impl MatchedOn {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchedOn::Raw => "raw",
            MatchedOn::E164 => "e164",
            MatchedOn::Anonymous => "anonymous",
            MatchedOn::Attestation => "attestation",
        }
    }
}

/// One text to test rules against, with its numeric key precomputed once per
/// decision rather than once per list.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    pub text: &'a str,
    pub key: Option<u64>,
    pub on: MatchedOn,
}

impl<'a> Subject<'a> {
    pub(crate) fn new(text: &'a str, on: MatchedOn) -> Self {
        Subject {
            text,
            key: number_key(text),
            on,
        }
    }
}

/// Packs `+?[0-9]{1,18}` into a u64: a leading `1` keeps leading zeros
/// significant, the top bit records the `+`.
pub(crate) fn number_key(s: &str) -> Option<u64> {
    let (plus, digits) = match s.strip_prefix('+') {
        Some(d) => (1u64 << 63, d),
        None => (0, s),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v: u64 = 1;
    for b in digits.bytes() {
        v = v * 10 + u64::from(b - b'0');
    }
    Some(plus | v)
}

/// A matching failure that is not "no match": a look-around regex ran out of
/// its backtracking budget. The decision then fails open (or closed).
#[derive(Debug, Clone, thiserror::Error)]
#[error("rule {rule}: regex evaluation failed: {message}")]
pub struct MatchError {
    pub rule: RuleId,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::relax_lookaround;

    #[test]
    fn relaxing_drops_only_the_assertions() {
        assert_eq!(
            relax_lookaround(r"^(?!\+1)[+][0-9]+$").as_deref(),
            Some(r"^[+][0-9]+$")
        );
        assert_eq!(
            relax_lookaround(r"^(?=(\d)+x)a(?<!b)c(?<=[(])").as_deref(),
            Some("^ac")
        );
        assert_eq!(relax_lookaround(r"[(?!]x(?=y)").as_deref(), Some("[(?!]x"));
        assert_eq!(
            relax_lookaround(r"(a)\1"),
            None,
            "backreferences cannot be relaxed"
        );
        assert_eq!(relax_lookaround(r"^(?!unclosed"), None);
    }

    /// Found by `proptest_patterns` (`no_pattern_panics`): a regex
    /// rule `\¡` (an escaped multi-byte character, which fancy-regex takes)
    /// panicked the rule-set compiler by slicing inside the character.
    #[test]
    fn relaxing_keeps_escaped_multibyte_characters_whole() {
        assert_eq!(relax_lookaround(r"\¡").as_deref(), Some(r"\¡"));
        assert_eq!(
            relax_lookaround(r"(?i)1\ü ?🕴(?=x)").as_deref(),
            Some(r"(?i)1\ü ?🕴")
        );
        assert_eq!(relax_lookaround(r"[\é](?!a)").as_deref(), Some(r"[\é]"));
        // The tester's side of it: `policy::tester`'s tests (the tester builds on this
        // index, so the index's tests do not import it).
    }

    #[test]
    fn relaxed_pattern_matches_a_superset() {
        let fancy = fancy_regex::Regex::new(r"^(?!\+1)[+][0-9]+$").unwrap();
        let relaxed = regex::Regex::new(&relax_lookaround(fancy.as_str()).unwrap()).unwrap();
        for s in ["+15551234567", "+442071234567", "5551234567", "+", "+4420x"] {
            if fancy.is_match(s).unwrap() {
                assert!(relaxed.is_match(s), "{s}");
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct ListIndexBuilder {
    exact_num: Vec<(u64, RuleId)>,
    exact_str: HashMap<Box<str>, Vec<RuleId>>,
    prefixes: HashMap<Box<str>, Vec<RuleId>>,
    suffixes: HashMap<Box<str>, Vec<RuleId>>,
    contains: Vec<(String, RuleId)>,
    set: Vec<(String, RuleId)>,
    fancy: Vec<(String, RuleId, i32)>,
    anonymous: Vec<RuleId>,
    always: Vec<RuleId>,
    contains_max_priority: i32,
    set_max_priority: i32,
}

/// The specificity (see `RuleTable`) of the most specific rule each group
/// can hold: substrings rank 2, wildcards 3, regexes 4.
const CONTAINS_SPEC: u16 = 2 << 8;
const SET_SPEC: u16 = 3 << 8;
const FANCY_SPEC: u16 = 4 << 8;

impl ListIndexBuilder {
    /// Files a rule's pattern into the index that answers it fastest;
    /// `priority` lets a decision skip automata that cannot beat a match.
    pub(crate) fn add(&mut self, id: RuleId, pattern: &CompiledPattern, priority: i32) {
        match &pattern.matcher {
            Matcher::Contains(_) => {
                self.contains_max_priority = self.contains_max_priority.max(priority)
            }
            Matcher::Regex(_) => self.set_max_priority = self.set_max_priority.max(priority),
            _ => {}
        }
        match &pattern.matcher {
            Matcher::Exact(s) => match number_key(s) {
                Some(k) => self.exact_num.push((k, id)),
                None => self
                    .exact_str
                    .entry(s.as_str().into())
                    .or_default()
                    .push(id),
            },
            Matcher::Prefix(s) => self.prefixes.entry(s.as_str().into()).or_default().push(id),
            Matcher::Suffix(s) => self.suffixes.entry(s.as_str().into()).or_default().push(id),
            Matcher::Contains(s) => self.contains.push((s.clone(), id)),
            Matcher::Regex(r) => self.set.push((r.clone(), id)),
            Matcher::Fancy(r) => self.fancy.push((r.clone(), id, priority)),
        }
    }

    /// A rule without a pattern whose only condition is its attestation:
    /// a candidate for every caller (the condition is checked by `decide`).
    pub(crate) fn add_always(&mut self, id: RuleId) {
        self.always.push(id);
    }

    pub(crate) fn add_anonymous(&mut self, id: RuleId) {
        self.anonymous.push(id);
    }

    /// Builds the automata. Patterns were checked one by one already, so an
    /// error here is a size limit of the combined automaton.
    pub(crate) fn build(mut self, backtrack_limit: usize) -> Result<ListIndex, String> {
        self.exact_num.sort_unstable();
        let (exact_keys, exact_ids) = self.exact_num.into_iter().unzip();
        let lens = |m: &HashMap<Box<str>, Vec<RuleId>>| {
            let mut v: Vec<usize> = m.keys().map(|k| k.len()).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let prefix_lens = lens(&self.prefixes);
        let suffix_lens = lens(&self.suffixes);
        let contains = if self.contains.is_empty() {
            None
        } else {
            let ac = AhoCorasick::new(self.contains.iter().map(|(s, _)| s.as_str()))
                .map_err(|e| e.to_string())?;
            Some((ac, self.contains.iter().map(|(_, id)| *id).collect()))
        };
        let set = if self.set.is_empty() {
            None
        } else {
            let set = RegexSetBuilder::new(self.set.iter().map(|(r, _)| r.as_str()))
                .size_limit(512 << 20)
                .dfa_size_limit(64 << 20)
                .build()
                .map_err(|e| e.to_string())?;
            let mut regexes = Vec::with_capacity(self.set.len());
            for (r, _) in &self.set {
                regexes.push(Regex::new(r).map_err(|e| e.to_string())?);
            }
            Some(SetIndex {
                set,
                regexes,
                ids: self.set.iter().map(|(_, id)| *id).collect(),
            })
        };
        let mut fancy = Vec::with_capacity(self.fancy.len());
        for (r, id, priority) in self.fancy {
            let re = fancy_regex::RegexBuilder::new(&r)
                .backtrack_limit(backtrack_limit)
                .build()
                .map_err(|e| e.to_string())?;
            fancy.push((id, priority, re));
        }
        // Prefilter: the relaxed forms of every look-around regex that has one.
        let mut relaxed = Vec::new();
        let mut fancy_relaxed = Vec::with_capacity(fancy.len());
        for (_, _, re) in &fancy {
            match relax_lookaround(re.as_str()).filter(|r| regex::Regex::new(r).is_ok()) {
                Some(r) => {
                    fancy_relaxed.push(Some(relaxed.len()));
                    relaxed.push(r);
                }
                None => fancy_relaxed.push(None),
            }
        }
        let fancy_prefilter = if relaxed.is_empty() {
            None
        } else {
            match RegexSetBuilder::new(&relaxed).size_limit(256 << 20).build() {
                Ok(set) => Some(set),
                Err(_) => {
                    fancy_relaxed.iter_mut().for_each(|r| *r = None);
                    None
                }
            }
        };
        Ok(ListIndex {
            fancy_prefilter,
            fancy_relaxed,
            exact_keys,
            exact_ids,
            exact_str: self.exact_str,
            prefixes: self.prefixes,
            prefix_lens,
            suffixes: self.suffixes,
            suffix_lens,
            contains,
            set,
            fancy,
            anonymous: self.anonymous,
            always: self.always,
            contains_max_priority: self.contains_max_priority,
            set_max_priority: self.set_max_priority,
        })
    }
}

struct SetIndex {
    set: RegexSet,
    regexes: Vec<Regex>,
    ids: Vec<RuleId>,
}

/// The compiled index of one list (protected, system blacklist, a trunk's
/// whitelist or blacklist).
#[derive(Default)]
pub struct ListIndex {
    exact_keys: Vec<u64>,
    exact_ids: Vec<RuleId>,
    exact_str: HashMap<Box<str>, Vec<RuleId>>,
    prefixes: HashMap<Box<str>, Vec<RuleId>>,
    prefix_lens: Vec<usize>,
    suffixes: HashMap<Box<str>, Vec<RuleId>>,
    suffix_lens: Vec<usize>,
    contains: Option<(AhoCorasick, Vec<RuleId>)>,
    set: Option<SetIndex>,
    fancy: Vec<(RuleId, i32, fancy_regex::Regex)>,
    /// The look-around regexes with their assertions removed: a superset
    /// each, run as one set so a caller none of them can match skips the
    /// backtracking engine entirely. `None` where a regex cannot be relaxed.
    fancy_prefilter: Option<RegexSet>,
    /// For each look-around regex, its pattern index in `fancy_prefilter`.
    fancy_relaxed: Vec<Option<usize>>,
    anonymous: Vec<RuleId>,
    always: Vec<RuleId>,
    contains_max_priority: i32,
    set_max_priority: i32,
}

/// Removes look-around assertions (`(?=…)`, `(?!…)`, `(?<=…)`, `(?<!…)`)
/// from a regex. An assertion always either holds or not, so dropping it can
/// only widen what the pattern matches: the result is a superset. Returns
/// `None` for patterns it cannot relax safely (backreferences).
pub(crate) fn relax_lookaround(re: &str) -> Option<String> {
    let b = re.as_bytes();
    let mut out = String::with_capacity(re.len());
    let mut i = 0;
    let mut in_class = false;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            let next = *b.get(i + 1)?;
            if !in_class && (next.is_ascii_digit() && next != b'0' || next == b'k') {
                return None;
            }
            // The escaped character may be more than one byte (`\é`, which
            // fancy-regex accepts): copy all of it, never half.
            let len = 1 + re[i + 1..].chars().next().map_or(0, char::len_utf8);
            out.push_str(&re[i..i + len]);
            i += len;
            continue;
        }
        if in_class {
            if c == b']' {
                in_class = false;
            }
        } else if c == b'[' {
            in_class = true;
        } else if c == b'('
            && (re[i..].starts_with("(?=")
                || re[i..].starts_with("(?!")
                || re[i..].starts_with("(?<=")
                || re[i..].starts_with("(?<!"))
        {
            // Skip the whole balanced group.
            let mut depth = 0;
            let mut j = i;
            let mut cls = false;
            while j < b.len() {
                match b[j] {
                    b'\\' => j += 1,
                    b'[' if !cls => cls = true,
                    b']' if cls => cls = false,
                    b'(' if !cls => depth += 1,
                    b')' if !cls => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if j >= b.len() {
                return None;
            }
            i = j + 1;
            continue;
        }
        // Copy the whole UTF-8 character.
        let len = re[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&re[i..i + len]);
        i += len;
    }
    Some(out)
}

impl std::fmt::Debug for ListIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListIndex")
            .field("exact", &(self.exact_keys.len() + self.exact_str.len()))
            .field("prefixes", &self.prefixes.len())
            .field("suffixes", &self.suffixes.len())
            .field("regexes", &self.set.as_ref().map_or(0, |s| s.ids.len()))
            .field("fancy", &self.fancy.len())
            .finish()
    }
}

impl ListIndex {
    /// The index has look-around (or backreference, atomic-group) rules:
    /// matching runs the backtracking engine, whose time is bounded only by
    /// its step budget (every other matcher is linear in the caller).
    pub(crate) fn needs_backtracking(&self) -> bool {
        !self.fancy.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.exact_keys.is_empty()
            && self.exact_str.is_empty()
            && self.prefixes.is_empty()
            && self.suffixes.is_empty()
            && self.contains.is_none()
            && self.set.is_none()
            && self.fancy.is_empty()
            && self.anonymous.is_empty()
            && self.always.is_empty()
    }

    /// Calls `visit(rule, matched_on)` for every rule of this list that
    /// matches one of `subjects` (or is an anonymous rule, when `anonymous`).
    /// `could_beat(max_priority, best_specificity)` tells whether a group of
    /// rules with at most that priority and at best that specificity could
    /// still beat the best match found so far; groups that cannot are not run
    /// (the cheap exact and prefix indexes come first, the automata last).
    pub(crate) fn for_each_match(
        &self,
        subjects: &[Subject<'_>],
        anonymous: bool,
        mut could_beat: impl FnMut(i32, u16) -> bool,
        mut visit: impl FnMut(RuleId, MatchedOn),
    ) -> Result<(), MatchError> {
        if anonymous {
            for &id in &self.anonymous {
                visit(id, MatchedOn::Anonymous);
            }
        }
        for &id in &self.always {
            visit(id, MatchedOn::Attestation);
        }
        for s in subjects {
            let text = s.text;
            if let Some(k) = s.key {
                let start = self.exact_keys.partition_point(|&x| x < k);
                for (i, _) in self.exact_keys[start..]
                    .iter()
                    .enumerate()
                    .take_while(|(_, x)| **x == k)
                {
                    visit(self.exact_ids[start + i], s.on);
                }
            } else if let Some(ids) = self.exact_str.get(text) {
                ids.iter().for_each(|&id| visit(id, s.on));
            }
            for &len in self.prefix_lens.iter().take_while(|&&l| l <= text.len()) {
                if let Some(p) = text.get(..len)
                    && let Some(ids) = self.prefixes.get(p)
                {
                    ids.iter().for_each(|&id| visit(id, s.on));
                }
            }
            for &len in self.suffix_lens.iter().take_while(|&&l| l <= text.len()) {
                if let Some(p) = text.get(text.len() - len..)
                    && let Some(ids) = self.suffixes.get(p)
                {
                    ids.iter().for_each(|&id| visit(id, s.on));
                }
            }
            if let Some((ac, ids)) = &self.contains
                && could_beat(self.contains_max_priority, CONTAINS_SPEC)
            {
                for m in ac.find_overlapping_iter(text) {
                    visit(ids[m.pattern().as_usize()], s.on);
                }
            }
            if let Some(set) = &self.set
                && could_beat(self.set_max_priority, SET_SPEC)
            {
                for i in set.set.matches(text).iter() {
                    visit(set.ids[i], s.on);
                }
            }
            // Which look-around regexes could match at all (see `relax_lookaround`).
            let possible = match &self.fancy_prefilter {
                Some(set) if !self.fancy.is_empty() => Some(set.matches(text)),
                _ => None,
            };
            for (i, (id, priority, re)) in self.fancy.iter().enumerate() {
                if let (Some(hits), Some(k)) = (&possible, self.fancy_relaxed[i])
                    && !hits.matched(k)
                {
                    continue;
                }
                if !could_beat(*priority, FANCY_SPEC) {
                    continue;
                }
                match re.is_match(text) {
                    Ok(true) => visit(*id, s.on),
                    Ok(false) => {}
                    Err(e) => {
                        return Err(MatchError {
                            rule: *id,
                            message: e.to_string(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Capture groups of a regex or wildcard rule on `text`, for explaining a
    /// decision (only ever run for the winning rule).
    pub fn captures(&self, rule: RuleId, text: &str) -> Vec<(String, String)> {
        let named = |names: Vec<Option<&str>>, get: &dyn Fn(usize) -> Option<String>| {
            names
                .into_iter()
                .enumerate()
                .skip(1)
                .filter_map(|(i, n)| {
                    get(i).map(|v| (n.map_or_else(|| i.to_string(), str::to_string), v))
                })
                .collect()
        };
        if let Some(set) = &self.set
            && let Some(pos) = set.ids.iter().position(|&id| id == rule)
        {
            let re = &set.regexes[pos];
            if let Some(c) = re.captures(text) {
                return named(re.capture_names().collect(), &|i| {
                    c.get(i).map(|m| m.as_str().to_string())
                });
            }
        }
        if let Some((_, _, re)) = self.fancy.iter().find(|(id, _, _)| *id == rule)
            && let Ok(Some(c)) = re.captures(text)
        {
            return named(re.capture_names().collect(), &|i| {
                c.get(i).map(|m| m.as_str().to_string())
            });
        }
        Vec::new()
    }

    /// Rules in this list, for the `callguard_rules` gauge and `check`.
    pub fn len(&self) -> usize {
        self.exact_keys.len()
            + self.exact_str.values().map(Vec::len).sum::<usize>()
            + self.prefixes.values().map(Vec::len).sum::<usize>()
            + self.suffixes.values().map(Vec::len).sum::<usize>()
            + self.contains.as_ref().map_or(0, |(_, ids)| ids.len())
            + self.set.as_ref().map_or(0, |s| s.ids.len())
            + self.fancy.len()
            + self.anonymous.len()
            + self.always.len()
    }
}
