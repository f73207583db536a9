//! The screening job every peer of bench/compare.sh does (issue 15): the blacklist CSV that
//! bench/compare.sh writes (`rule_name,pattern,…`) in a `HashMap`, and the same five
//! variables callguard sets, in the same order.

use std::collections::HashMap;

pub struct Table(HashMap<String, String>);

impl Table {
    pub fn load(path: &str) -> std::io::Result<Table> {
        let text = std::fs::read_to_string(path)?;
        let map: HashMap<String, String> = text
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',');
                let rule = f.next()?;
                let pattern = f.next()?;
                Some((pattern.to_string(), rule.to_string()))
            })
            .collect();
        eprintln!("loaded {} numbers from {path}", map.len());
        Ok(Table(map))
    }

    /// (blocked, [(NAME, value)]) for one caller.
    pub fn decide(&self, caller: &str) -> (bool, Vec<(&'static str, String)>) {
        match self.0.get(caller) {
            None => (
                false,
                vec![
                    ("VERDICT", "allow".into()),
                    ("ACTION", "pass".into()),
                    ("RULE", String::new()),
                    ("LIST", "default".into()),
                    ("REASON", "no rule matched on trunk support".into()),
                ],
            ),
            Some(rule) => (
                true,
                vec![
                    ("VERDICT", "block".into()),
                    ("ACTION", "reject".into()),
                    ("RULE", rule.clone()),
                    ("LIST", "blacklist".into()),
                    (
                        "REASON",
                        format!("blacklist rule {rule} exact {caller} on trunk support"),
                    ),
                ],
            ),
        }
    }
}

/// `HOST:PORT BLACKLIST.csv` from the command line.
pub fn args() -> (String, String) {
    let mut a = std::env::args().skip(1);
    match (a.next(), a.next()) {
        (Some(addr), Some(csv)) => (addr, csv),
        _ => {
            eprintln!("usage: PEER HOST:PORT BLACKLIST.csv");
            std::process::exit(2);
        }
    }
}
