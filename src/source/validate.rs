//! Checking candidate list files before they replace anything.
//!
//! The config and the candidates are laid out in a private temp directory
//! exactly as they would be in the real one, then loaded and compiled the way
//! a reload would. Only a candidate set that compiles is ever written into the
//! config's directory, so the running rules can never be replaced by a broken
//! list, and the real reload that follows validates a second time.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::Refused;
use crate::config::{self, load::read_bounded};
use crate::policy::RuleSet;

/// Bound on a list file copied into the temp dir (the loader's own bound).
const MAX_LIST_BYTES: u64 = 1 << 30;

/// Candidate contents keyed by their path relative to the config's directory,
/// as written in the config (`rules/vip.csv`).
pub(crate) type Candidates = BTreeMap<String, Vec<u8>>;

/// The relative paths of every list file the config at `config_path`
/// references now (system and trunk lists), read fresh so a source follows
/// config edits. Absolute paths are left out: a source never writes there.
pub(crate) fn list_paths(config_path: &Path) -> Result<Vec<String>, Refused> {
    let raw = read_config(config_path)?;
    let mut out: Vec<String> = raw
        .lists
        .iter()
        .chain(raw.trunks.values().flat_map(|t| t.value.lists.iter()))
        .filter_map(|l| l.value.path.clone())
        .filter(|p| !Path::new(p).is_absolute())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

fn read_config(config_path: &Path) -> Result<config::types::RawConfig, Refused> {
    let file = config_path.display().to_string();
    let bytes = read_bounded(config_path, crate::config::load::MAX_CONFIG_BYTES, &file)
        .map_err(|p| Refused::one(p.to_string()))?;
    let text =
        String::from_utf8(bytes).map_err(|e| Refused::one(format!("{file}: not UTF-8: {e}")))?;
    config::load::parse(&text, &file)
        .map_err(|p| Refused(p.0.iter().map(ToString::to_string).collect()))
}

/// Loads and compiles the config at `config_path` with `candidates` in place
/// of the list files of the same relative path. `Err` carries every problem,
/// with paths as they would read in the real directory.
pub(crate) fn validate(config_path: &Path, candidates: &Candidates) -> Result<(), Refused> {
    let io = |what: &str, e: std::io::Error| Refused::one(format!("validation: {what}: {e}"));
    let base = base_dir(config_path);
    let file_name = config_path
        .file_name()
        .ok_or_else(|| Refused::one(format!("{}: not a file", config_path.display())))?;
    let text = read_bounded(
        config_path,
        crate::config::load::MAX_CONFIG_BYTES,
        &config_path.display().to_string(),
    )
    .map_err(|p| Refused::one(p.to_string()))?;
    let lists = list_paths(config_path)?;
    let tmp = tempfile::Builder::new()
        .prefix("callguard-validate-")
        .tempdir()
        .map_err(|e| io("temp dir", e))?;
    // `../x` lists must still land inside the temp dir: nest the config as
    // deep as the farthest escape.
    let depth = lists.iter().map(|p| escape_depth(p)).max().unwrap_or(0);
    let mut tmp_base = tmp.path().to_path_buf();
    for i in 0..depth {
        tmp_base.push(format!("d{i}"));
    }
    std::fs::create_dir_all(&tmp_base).map_err(|e| io("temp dir", e))?;
    for rel in &lists {
        let dest = tmp_base.join(rel);
        let bytes = match candidates.get(rel) {
            Some(b) => b.clone(),
            None => {
                let real = base.join(rel);
                if !real.exists() {
                    // The loader reports it (or, for a subscription, starts empty).
                    continue;
                }
                read_bounded(&real, MAX_LIST_BYTES, rel).map_err(|p| Refused::one(p.to_string()))?
            }
        };
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(rel, e))?;
        }
        std::fs::write(&dest, bytes).map_err(|e| io(rel, e))?;
    }
    let tmp_config = tmp_base.join(file_name);
    std::fs::write(&tmp_config, text).map_err(|e| io("config copy", e))?;
    let result = config::load(&tmp_config).and_then(|cfg| RuleSet::compile(&cfg));
    match result {
        Ok(_) => Ok(()),
        Err(problems) => {
            let from = tmp_base.display().to_string();
            let to = base.display().to_string();
            Err(Refused(
                problems
                    .0
                    .iter()
                    .map(|p| p.to_string().replace(&from, &to))
                    .collect(),
            ))
        }
    }
}

/// Writes every candidate whose bytes differ from the file on disk,
/// atomically (readers see the old or the new file, never half of one).
/// Returns the relative paths written.
pub(crate) fn apply(config_path: &Path, candidates: &Candidates) -> std::io::Result<Vec<String>> {
    let base = base_dir(config_path);
    let mut written = Vec::new();
    for (rel, bytes) in candidates {
        let dest = base.join(rel);
        if std::fs::read(&dest).is_ok_and(|old| old == *bytes) {
            continue;
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        crate::list_io::write_atomic(&dest, bytes)?;
        written.push(rel.clone());
    }
    Ok(written)
}

/// The directory list paths are relative to (as the loader resolves them).
pub(crate) fn base_dir(config_path: &Path) -> PathBuf {
    match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// How many levels above its start a relative path climbs at its highest.
fn escape_depth(rel: &str) -> usize {
    let mut level: isize = 0;
    let mut lowest: isize = 0;
    for c in Path::new(rel).components() {
        match c {
            Component::ParentDir => level -= 1,
            Component::Normal(_) => level += 1,
            _ => {}
        }
        lowest = lowest.min(level);
    }
    lowest.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "actions: { reject: { kind: reject } }\nblocked_action: reject\n\
        lists:\n  - { path: rules/vip.csv, as: blacklist }\n  - { path: ../up.csv, as: blacklist }\n";

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let cfg_dir = dir.path().join("etc");
        std::fs::create_dir_all(cfg_dir.join("rules")).unwrap();
        std::fs::write(
            cfg_dir.join("rules/vip.csv"),
            "rule_name,pattern,match_type,action,enabled\nA,+15550000001,exact,,true\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("up.csv"),
            "rule_name,pattern,match_type,action,enabled\nB,+15550000002,exact,,true\n",
        )
        .unwrap();
        let cfg = cfg_dir.join("callguard.yaml");
        std::fs::write(&cfg, YAML).unwrap();
        (dir, cfg)
    }

    #[test]
    fn accepts_good_and_refuses_bad_with_real_paths() {
        let (_dir, cfg) = setup();
        let mut c = Candidates::new();
        c.insert(
            "rules/vip.csv".into(),
            b"rule_name,pattern,match_type,action,enabled\nC,+15550000003,exact,,true\n".to_vec(),
        );
        assert_eq!(validate(&cfg, &c), Ok(()));
        c.insert(
            "rules/vip.csv".into(),
            b"rule_name,pattern,match_type,action,enabled\nC,+1555,nonsense,,true\n".to_vec(),
        );
        let err = validate(&cfg, &c).unwrap_err();
        let real = base_dir(&cfg).join("rules/vip.csv").display().to_string();
        assert!(err.iter().any(|e| e.contains(&real)), "{err:?}");
        assert!(
            !err.iter().any(|e| e.contains("callguard-validate")),
            "{err:?}"
        );
    }

    #[test]
    fn apply_writes_only_changes() {
        let (_dir, cfg) = setup();
        let mut c = Candidates::new();
        c.insert(
            "rules/vip.csv".into(),
            b"rule_name,pattern,match_type,action,enabled\nA,+15550000001,exact,,true\n".to_vec(),
        );
        c.insert("rules/new.csv".into(), b"x".to_vec());
        assert_eq!(apply(&cfg, &c).unwrap(), ["rules/new.csv"]);
    }

    #[test]
    fn escape_depths() {
        assert_eq!(escape_depth("a/b.csv"), 0);
        assert_eq!(escape_depth("../a.csv"), 1);
        assert_eq!(escape_depth("a/../../../b.csv"), 2);
    }
}
