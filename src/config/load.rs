//! Reading `callguard.yaml` and the list files it names.
//!
//! Everything that touches the disk happens here, so that compiling a rule
//! set is a pure function of a [`LoadedConfig`].

use std::path::{Path, PathBuf};

use super::problem::{Problem, Problems};
use super::types::{ListFileConfig, ListRole, RawConfig, TrunkConfig, UserConfig};
use crate::list_io::RuleRow;
use crate::list_io::format::{Format, read_rows};

/// Larger config files are refused rather than read into memory.
pub(crate) const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// A list file of several million rows still fits well below this.
const MAX_LIST_BYTES: u64 = 1 << 30;

/// A bulk list file as read from disk.
#[derive(Debug, Clone)]
pub struct LoadedList {
    /// The list's name in the API and CLI.
    pub name: String,
    /// The path as written in the config (for messages).
    pub display: String,
    pub path: PathBuf,
    pub format: Format,
    pub role: ListRole,
    /// `None` for the system blacklist, a tenant's own lists and users' lists.
    /// A tenant's trunk is named `TENANT.TRUNK`.
    pub trunk: Option<String>,
    /// The tenant whose list this is (`None`: the default tenant).
    pub tenant: Option<String>,
    /// The user (extension) whose allow or block list this is.
    pub user: Option<String>,
    /// The entry's `action:`, with its place in the config file.
    pub default_action: Option<serde_saphyr::Spanned<String>>,
    pub rows: Vec<(u32, RuleRow)>,
}

/// A parsed configuration with its list files, not yet validated.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    /// The config path as given, for messages.
    pub file: String,
    pub base_dir: PathBuf,
    pub raw: RawConfig,
    pub lists: Vec<LoadedList>,
    /// Every file this configuration was read from (for the reload watcher).
    pub files: Vec<PathBuf>,
    /// Problems found while reading list files; compiling reports them along
    /// with its own, so the user sees everything at once.
    pub problems: Vec<Problem>,
    /// Problems of one tenant's list files, with the tenant: a reload skips
    /// only that tenant (see `RuleSet::compile_isolated`).
    pub tenant_problems: Vec<(String, Problem)>,
}

impl LoadedConfig {
    /// Resolves a path from the config relative to the config file.
    pub fn resolve(&self, p: &str) -> PathBuf {
        resolve(&self.base_dir, p)
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Reads a file no larger than `limit`.
pub(crate) fn read_bounded(path: &Path, limit: u64, display: &str) -> Result<Vec<u8>, Problem> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .map_err(|e| Problem::new(display, 0, 0, format!("cannot open: {e}")))?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Problem::new(display, 0, 0, format!("cannot read: {e}")))?;
    if buf.len() as u64 > limit {
        return Err(Problem::new(
            display,
            0,
            0,
            format!("file is larger than {} MiB", limit >> 20),
        ));
    }
    Ok(buf)
}

/// Parses YAML text into the raw config types. Unknown keys refuse the
/// file: every one of them is reported (with any other problem of the file).
pub fn parse(text: &str, file: &str) -> Result<RawConfig, Problems> {
    match parse_lenient(text, file) {
        (Some(raw), unknown) if unknown.is_empty() => Ok(raw),
        (_, problems) => Err(Problems(problems)),
    }
}

/// Parses YAML text, reading past unknown keys: returns the config as if
/// they were not there (when the rest parses) and every problem found, unknown
/// keys first in one message format. `callguard check` and the reload use it
/// so that a typo in one key does not hide the rule and list problems.
pub(crate) fn parse_lenient(text: &str, file: &str) -> (Option<RawConfig>, Vec<Problem>) {
    let err = match serde_saphyr::from_str::<RawConfig>(text) {
        Ok(raw) => return (Some(raw), Vec::new()),
        Err(e) => e,
    };
    let unknown = super::unknown::unknown_keys(text, file);
    if unknown.is_empty() {
        return (None, vec![parse_problem(&err, text, file)]);
    }
    let blanked = super::unknown::blank_keys(text, &unknown);
    let mut problems = unknown;
    match serde_saphyr::from_str::<RawConfig>(&blanked) {
        Ok(raw) => (Some(raw), problems),
        Err(e) => {
            let p = parse_problem(&e, &blanked, file);
            if !is_unknown_field(&e)
                && !problems
                    .iter()
                    .any(|q| q.line == p.line && q.column == p.column)
            {
                problems.push(p);
            }
            problems.sort_by_key(|p| (p.line, p.column));
            (None, problems)
        }
    }
}

fn is_unknown_field(e: &serde_saphyr::Error) -> bool {
    e.to_string().contains("unknown field")
}

/// The parser's error at its place; a value of the wrong type names its key
/// (the parser alone says only `invalid u32`).
fn parse_problem(e: &serde_saphyr::Error, text: &str, file: &str) -> Problem {
    let (line, col) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    // The library's message may carry a rendered snippet; keep the first line.
    let msg = e.to_string();
    let msg = msg
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid YAML")
        .trim();
    // The position is already in FILE:LINE:COL; drop the parser's copy.
    let msg = msg.strip_prefix("error: ").unwrap_or(msg);
    let msg = match msg.split_once(": ") {
        Some((pos, rest)) if pos.starts_with("line ") && pos.contains(" column ") => rest,
        _ => msg,
    }
    .to_string();
    let msg = match super::unknown::key_at(text, line, col) {
        Some(key) if line > 0 && !msg.contains(&format!("`{key}`")) => format!("`{key}`: {msg}"),
        _ => msg,
    };
    Problem::new(file, line, col, msg)
}

/// Loads the config file and every local list file it references.
pub fn load(path: &Path) -> Result<LoadedConfig, Problems> {
    let file = path.display().to_string();
    let bytes = read_bounded(path, MAX_CONFIG_BYTES, &file)?;
    let text = String::from_utf8(bytes)
        .map_err(|e| Problem::new(&file, 0, 0, format!("not UTF-8: {e}")))?;
    load_str(&text, path)
}

/// Like [`load`], but unknown keys do not stop it: they are returned in
/// [`LoadedConfig::problems`] (so compiling still refuses the file) along with
/// every list problem. What `callguard check` and a reload use.
pub(crate) fn load_all(path: &Path) -> Result<LoadedConfig, Problems> {
    let file = path.display().to_string();
    let bytes = read_bounded(path, MAX_CONFIG_BYTES, &file)?;
    let text = String::from_utf8(bytes)
        .map_err(|e| Problem::new(&file, 0, 0, format!("not UTF-8: {e}")))?;
    match parse_lenient(&text, &file) {
        (Some(raw), unknown) => load_raw(raw, unknown, path),
        (None, problems) => Err(Problems(problems)),
    }
}

/// Parses config text as if read from `path` (list paths resolve beside it).
pub fn load_str(text: &str, path: &Path) -> Result<LoadedConfig, Problems> {
    let file = path.display().to_string();
    let raw = parse(text, &file)?;
    load_raw(raw, Vec::new(), path)
}

fn load_raw(
    raw: RawConfig,
    mut problems: Vec<Problem>,
    path: &Path,
) -> Result<LoadedConfig, Problems> {
    let file = path.display().to_string();
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Checked here, with their place, so `check` refuses what `serve` would.
    for (section, allow) in [
        ("agi", &raw.agi.allow),
        ("esl", &raw.esl.allow),
        ("edge", &raw.edge.allow),
    ] {
        for a in allow {
            if let Err(m) = crate::config::allow::parse_allow_entry(&a.value) {
                problems.push(Problem::at(&file, &a.referenced, format!("{section}.{m}")));
            }
        }
    }
    // The URL's syntax only: its password variable may be set only where `serve` runs.
    if let Some(url) = &raw.log.postgres
        && let Err(m) = crate::store::PgTarget::parse(&url.value, None)
    {
        problems.push(Problem::at(&file, &url.referenced, m));
    }
    if let Some(url) = &raw.velocity_limits.redis
        && let Err(m) = crate::store::RedisTarget::parse(&url.value, None)
    {
        problems.push(Problem::at(&file, &url.referenced, m));
    }
    let mut lists = Vec::new();
    let mut files = vec![path.to_path_buf()];
    let mut entries: Vec<Entry<'_>> = Vec::new();
    collect_entries(&mut entries, None, &raw.lists, &raw.trunks, &raw.users);
    for (tname, t) in &raw.tenants {
        let tc = &t.value;
        collect_entries(&mut entries, Some(tname), &tc.lists, &tc.trunks, &tc.users);
    }
    let mut tenant_problems = Vec::new();
    for e in entries {
        let mut local = Vec::new();
        if let Some(l) = load_entry(&e, &file, &base_dir, &mut files, &mut local) {
            lists.push(l);
        }
        match &e.tenant {
            None => problems.extend(local),
            Some(t) => tenant_problems.extend(local.into_iter().map(|p| (t.clone(), p))),
        }
    }
    Ok(LoadedConfig {
        path: path.to_path_buf(),
        file,
        base_dir,
        raw,
        lists,
        files,
        problems,
        tenant_problems,
    })
}

/// A list file named by the config, with where it belongs.
struct Entry<'a> {
    tenant: Option<String>,
    trunk: Option<String>,
    user: Option<String>,
    /// The list's name in the API when the config gives none (users' lists).
    name: Option<String>,
    /// A user's list: missing means empty.
    optional: bool,
    cfg: std::borrow::Cow<'a, serde_saphyr::Spanned<ListFileConfig>>,
}

/// The list files of one tenant (`None`: the default tenant): its own
/// lists, its trunks' lists and its users' allow and block lists.
fn collect_entries<'a>(
    out: &mut Vec<Entry<'a>>,
    tenant: Option<&str>,
    own: &'a [serde_saphyr::Spanned<ListFileConfig>],
    trunks: &'a std::collections::BTreeMap<String, serde_saphyr::Spanned<TrunkConfig>>,
    users: &'a std::collections::BTreeMap<String, serde_saphyr::Spanned<UserConfig>>,
) {
    let prefix = tenant.map_or_else(String::new, |t| format!("{t}."));
    // A tenant's list files are named `TENANT.NAME` (the name, else the file's stem).
    let scoped = |l: &serde_saphyr::Spanned<ListFileConfig>| {
        tenant.map(|_| {
            let stem = l.value.name.clone().unwrap_or_else(|| {
                l.value
                    .path
                    .as_deref()
                    .map(|p| {
                        Path::new(p)
                            .file_stem()
                            .map_or(p.to_string(), |s| s.to_string_lossy().into_owned())
                    })
                    .unwrap_or_default()
            });
            format!("{prefix}{stem}")
        })
    };
    out.extend(own.iter().map(|l| Entry {
        tenant: tenant.map(str::to_string),
        trunk: None,
        user: None,
        name: scoped(l),
        optional: false,
        cfg: std::borrow::Cow::Borrowed(l),
    }));
    for (name, t) in trunks {
        out.extend(t.value.lists.iter().map(|l| Entry {
            tenant: tenant.map(str::to_string),
            trunk: Some(format!("{prefix}{name}")),
            user: None,
            name: scoped(l),
            optional: false,
            cfg: std::borrow::Cow::Borrowed(l),
        }));
    }
    for (ext, u) in users {
        for (path, role, kind) in [
            (&u.value.allow, ListRole::Whitelist, "allow"),
            (&u.value.block, ListRole::Blacklist, "block"),
        ] {
            let Some(path) = path else { continue };
            let cfg = ListFileConfig {
                path: Some(path.clone()),
                role,
                name: None,
                action: if role == ListRole::Blacklist {
                    u.value.blocked_action.clone()
                } else {
                    None
                },
                url: None,
                refresh: None,
            };
            out.push(Entry {
                tenant: tenant.map(str::to_string),
                trunk: None,
                user: Some(ext.clone()),
                name: Some(format!("{prefix}user.{ext}.{kind}")),
                optional: true,
                cfg: std::borrow::Cow::Owned(serde_saphyr::Spanned::new(
                    cfg,
                    u.referenced,
                    u.defined,
                )),
            });
        }
    }
}

/// Reads one list file; its problems go to `problems`.
fn load_entry(
    e: &Entry<'_>,
    file: &str,
    base_dir: &Path,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
) -> Option<LoadedList> {
    let cfg = &e.cfg.value;
    let loc = &e.cfg.referenced;
    let Some(rel) = cfg.path.as_deref() else {
        problems.push(Problem::at(
            file,
            loc,
            "a list needs `path:` (for a `url:` list, where its last good copy is kept)",
        ));
        return None;
    };
    let full = resolve(base_dir, rel);
    let Some(format) = Format::from_path(&full) else {
        problems.push(Problem::at(
            file,
            loc,
            format!("{rel}: unknown list format (use .csv, .json or .xml)"),
        ));
        return None;
    };
    files.push(full.clone());
    let bytes = match read_bounded(&full, MAX_LIST_BYTES, rel) {
        Ok(b) => b,
        // A subscribed list whose copy does not exist yet starts empty; so
        // does a user's list nobody has written to yet.
        Err(_) if (cfg.url.is_some() || e.optional) && !full.exists() => Vec::new(),
        Err(p) => {
            problems.push(Problem::at(file, loc, format!("{}: {}", p.file, p.message)));
            return None;
        }
    };
    let parsed = if bytes.is_empty() {
        Default::default()
    } else {
        read_rows(&bytes, format, &full.display().to_string())
    };
    problems.extend(parsed.errors.iter().map(|e| Problem {
        file: e.source.clone(),
        line: u64::from(e.line),
        column: e.column.map_or(0, u64::from),
        message: e.message.clone(),
    }));
    let name = e
        .name
        .clone()
        .or_else(|| cfg.name.clone())
        .unwrap_or_else(|| {
            full.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| rel.to_string())
        });
    Some(LoadedList {
        name,
        display: rel.to_string(),
        path: full,
        format,
        role: cfg.role,
        trunk: e.trunk.clone(),
        tenant: e.tenant.clone(),
        user: e.user.clone(),
        default_action: cfg.action.clone(),
        rows: parsed.rows,
    })
}
