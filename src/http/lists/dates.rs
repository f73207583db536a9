//! When each rule of a list was added and last changed, from the list's
//! history: read once per new version (incrementally, cached per list), so
//! paging a long list does not re-read its history.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};

use crate::list_io::RuleRow;
use crate::store::list_versions::ListVersions;

/// Versions read when a list is first asked for: rules already in the
/// oldest of them count as added then.
const WALK: usize = 50;

pub(crate) type Dates = HashMap<String, (DateTime<Utc>, DateTime<Utc>)>;

struct Known {
    history: usize,
    list: String,
    last: u64,
    rows: HashMap<String, u64>,
    dates: Arc<Dates>,
}

fn cache() -> &'static Mutex<Vec<Known>> {
    static C: OnceLock<Mutex<Vec<Known>>> = OnceLock::new();
    C.get_or_init(Mutex::default)
}

fn row_hash(r: &RuleRow) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&r.pattern, &r.match_type, &r.action, r.enabled, &r.notes).hash(&mut h);
    h.finish()
}

/// Rows read from the history when a list is first asked for (the older
/// versions of a long list are not walked: its rules count as added at the
/// oldest version read).
const FIRST_ROWS: usize = 2_000_000;

/// rule → (added, changed) for `list`, whose rows are now `current`; empty
/// when the history cannot be read. The first call reads recent versions
/// from the history; later ones compare `current` with what was known and
/// date what differs at the newest version's time.
pub(crate) fn dates<'a>(
    history: &Arc<ListVersions>,
    list: &str,
    len: usize,
    current: impl Iterator<Item = &'a RuleRow>,
) -> Arc<Dates> {
    let id = Arc::as_ptr(history) as usize;
    let Ok(versions) = history.versions(Some(list), WALK) else {
        return Arc::default();
    };
    let Some(latest) = versions.first() else {
        return Arc::default();
    };
    let mut c = cache().lock().unwrap_or_else(|e| e.into_inner());
    let at = c.iter().position(|k| k.history == id && k.list == list);
    let known = match at {
        Some(i) => {
            let mut k = c.swap_remove(i);
            if latest.version > k.last {
                let mut dates = (*k.dates).clone();
                k.rows = step(&k.rows, current, latest.time, &mut dates);
                k.dates = Arc::new(dates);
                k.last = latest.version;
            }
            k
        }
        None => {
            let walk = (FIRST_ROWS / len.max(1)).clamp(1, WALK);
            let mut rows = HashMap::new();
            let mut dates = Dates::new();
            for v in versions.iter().take(walk).rev() {
                if let Ok(Some(content)) = history.content(list, v.version) {
                    rows = step(&rows, content.iter(), v.time, &mut dates);
                }
            }
            Known {
                history: id,
                list: list.to_string(),
                last: latest.version,
                rows,
                dates: Arc::new(dates),
            }
        }
    };
    let out = known.dates.clone();
    if c.len() >= 16 {
        c.remove(0);
    }
    c.push(known);
    out
}

/// Dates the rows of `next` that are new or changed since `prev` at `time`;
/// forgets the rules gone. Returns `next`'s row hashes.
fn step<'a>(
    prev: &HashMap<String, u64>,
    next: impl Iterator<Item = &'a RuleRow>,
    time: DateTime<Utc>,
    dates: &mut Dates,
) -> HashMap<String, u64> {
    let mut now = HashMap::with_capacity(prev.len() + 16);
    for r in next {
        let h = row_hash(r);
        match prev.get(&r.rule_name) {
            None => {
                dates.insert(r.rule_name.clone(), (time, time));
            }
            Some(&old) if old != h => match dates.get_mut(&r.rule_name) {
                Some(d) => d.1 = time,
                None => {
                    dates.insert(r.rule_name.clone(), (time, time));
                }
            },
            Some(_) => {}
        }
        now.insert(r.rule_name.clone(), h);
    }
    dates.retain(|k, _| now.contains_key(k));
    now
}
