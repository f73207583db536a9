//! The README's walkthrough as data: its `sh` blocks split into commands
//! and the output the README shows under each (issue 27: "a README whose
//! every example runs as shown"). `tests/readme_runs.rs` runs them.
#![allow(dead_code)]

use regex::Regex;

/// One command of a walkthrough block, with what the README shows it prints.
#[derive(Debug, Clone)]
pub struct Step {
    /// The `###` heading the block sits under (or the `##` one).
    pub section: String,
    /// Line number (1-based) of the command in README.md.
    pub line: usize,
    /// The command as written, continuation lines joined by newlines.
    pub command: String,
    /// The `# ` lines right after the command: its shown output.
    pub shown: Vec<String>,
}

/// The `##` sections that make up the walkthrough, in reading order.
pub const WALKTHROUGH: &[&str] = &["From install to a blocked call", "Live rule management"];

/// Every `sh` block command of the walkthrough sections, in order, and the
/// number of `sh` blocks elsewhere (not part of the walkthrough).
pub fn steps(readme: &str) -> (Vec<Step>, usize) {
    let mut steps = Vec::new();
    let mut other_blocks = 0;
    let mut top = String::new();
    let mut sub = String::new();
    let mut in_block = false;
    let mut pending: Option<Step> = None;
    let mut continued = false;
    let mut heredoc: Option<String> = None;
    let here = Regex::new(r"<<-?'?([A-Za-z_]+)'?").expect("regex");
    for (i, raw) in readme.lines().enumerate() {
        let line = raw.trim_start();
        if !in_block {
            if let Some(h) = raw.strip_prefix("## ") {
                top = h.trim().to_string();
                sub.clear();
            } else if let Some(h) = raw.strip_prefix("### ") {
                sub = h.trim().to_string();
            } else if line.starts_with("```sh") {
                in_block = true;
                if !WALKTHROUGH.contains(&top.as_str()) {
                    other_blocks += 1;
                }
            }
            continue;
        }
        if line.starts_with("```") {
            in_block = false;
            steps.extend(pending.take());
            continued = false;
            continue;
        }
        if !WALKTHROUGH.contains(&top.as_str()) {
            continue;
        }
        if let Some(end) = heredoc.clone() {
            if let Some(p) = pending.as_mut() {
                p.command.push('\n');
                p.command.push_str(line);
            }
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        if continued {
            if let Some(p) = pending.as_mut() {
                p.command.push('\n');
                p.command.push_str(line);
            }
            continued = line.ends_with('\\');
            continue;
        }
        if let Some(out) = line.strip_prefix("# ") {
            if let Some(p) = pending.as_mut() {
                p.shown.push(out.to_string());
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        steps.extend(pending.take());
        let section = if sub.is_empty() {
            top.clone()
        } else {
            sub.clone()
        };
        continued = line.ends_with('\\');
        heredoc = here.captures(line).map(|c| c[1].to_string());
        pending = Some(Step {
            section,
            line: i + 1,
            command: line.to_string(),
            shown: Vec::new(),
        });
    }
    steps.extend(pending);
    (steps, other_blocks)
}

/// A unique id as the README shows them (`1796679440.866513`).
pub fn unique_id() -> Regex {
    Regex::new(r"\b1[0-9]{9}\.[0-9]+\b").expect("regex")
}

/// The shown line as a pattern over one line of real output: `…` stands for
/// anything, a unique id or a timestamp for any such value (ids are
/// captured, so later commands can use the real one), runs of spaces for
/// any run, and a trailing note in parentheses after three or more spaces
/// (`(stdout; the problems are on stderr)`) is the README's comment, not output.
pub fn shown_pattern(shown: &str) -> Regex {
    let note = Regex::new(r"\s{3,}\([^)]*\)\s*$").expect("regex");
    let shown = note.replace(shown, "");
    let token = Regex::new(
        r"…|\b1[0-9]{9}\.[0-9]+\b|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}|\s+",
    )
    .expect("regex");
    let mut pat = String::new();
    let mut last = 0;
    for m in token.find_iter(&shown) {
        pat.push_str(&regex::escape(&shown[last..m.start()]));
        let t = m.as_str();
        pat.push_str(if t == "…" {
            ".*?"
        } else if t.chars().all(char::is_whitespace) {
            r"\s+"
        } else if t.contains(':') {
            r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
        } else {
            r"(1[0-9]{9}\.[0-9]+)"
        });
        last = m.end();
    }
    pat.push_str(&regex::escape(shown[last..].trim_end()));
    Regex::new(&pat).expect("shown pattern")
}
