//! The `agi_*` environment block Asterisk sends before the first command.

/// The environment, as `(name, value)` pairs in the order Asterisk sent them.
///
/// Values are raw: Asterisk escapes nothing, so a caller name may hold any byte but `\n`.
/// Lookups scan the pairs; there are about 25 of them, so a map would buy nothing.
/// Every name and value lives in one string (two allocations for the whole environment,
/// not two per line: issue 26's allocations per call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgiEnv {
    text: String,
    /// Per pair: where its name ends and its value starts, and where its value ends
    /// (the name starts where the previous value ended).
    ends: Vec<(u32, u32)>,
}

impl AgiEnv {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        let mut env = AgiEnv::default();
        for (name, value) in &pairs {
            env.push(name, value);
        }
        env
    }

    /// An empty environment with room for a typical one.
    pub(crate) fn with_capacity() -> Self {
        AgiEnv {
            text: String::with_capacity(1024),
            ends: Vec::with_capacity(32),
        }
    }

    /// Appends one pair. A line is bounded by the codec's line limit and the lines by
    /// its line count, so the offsets fit in `u32` by far.
    pub(crate) fn push(&mut self, name: &str, value: &str) {
        self.text.push_str(name);
        let name_end = self.text.len() as u32;
        self.text.push_str(value);
        self.ends.push((name_end, self.text.len() as u32));
    }

    /// How many pairs.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The pairs, in wire order.
    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(n, e)| {
            let (n, e) = (n as usize, e as usize);
            let pair = (&self.text[start..n], &self.text[n..e]);
            start = e;
            pair
        })
    }

    /// All pairs, in wire order.
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        self.iter().collect()
    }

    /// The first value named `name` (Asterisk never repeats a name).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// A value that Asterisk spells `unknown` when unset: `None` for that and for empty.
    fn known(&self, name: &str) -> Option<&str> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "unknown")
    }

    pub fn uniqueid(&self) -> Option<&str> {
        self.get("agi_uniqueid")
    }

    /// The caller's number; `None` when Asterisk reports `unknown` or nothing.
    pub fn callerid(&self) -> Option<&str> {
        self.known("agi_callerid")
    }

    /// The caller's display name; `None` when `unknown` or empty.
    pub fn calleridname(&self) -> Option<&str> {
        self.known("agi_calleridname")
    }

    /// The presentation byte; a missing or malformed value counts as 0 (allowed), since the
    /// caller ID itself tells whether there is a number to screen.
    pub fn callingpres(&self) -> u8 {
        self.get("agi_callingpres")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Presentation restricted (`pres & 0x60 == 0x20`) or unavailable (`== 0x40`).
    pub(crate) fn presentation_restricted(&self) -> bool {
        matches!(self.callingpres() & 0x60, 0x20 | 0x40)
    }

    /// The dialled number; `None` when `unknown` or empty.
    pub fn dnid(&self) -> Option<&str> {
        self.known("agi_dnid")
    }

    /// The dialplan extension; `None` when `unknown` or empty.
    pub fn extension(&self) -> Option<&str> {
        self.known("agi_extension")
    }

    /// The full `agi://…` URL of the AGI() call.
    pub fn request(&self) -> Option<&str> {
        self.get("agi_request")
    }

    /// The text after `host/` in the URL, query included (absent when the URL has no path).
    pub(crate) fn network_script(&self) -> Option<&str> {
        self.get("agi_network_script")
    }

    /// The AGI() arguments `agi_arg_1..N`, in numeric order (so `agi_arg_10` follows
    /// `agi_arg_9`, whatever order the lines came in).
    pub fn args(&self) -> Vec<&str> {
        let mut numbered: Vec<(u32, &str)> = self
            .iter()
            .filter_map(|(n, v)| {
                let idx = n.strip_prefix("agi_arg_")?.parse().ok()?;
                Some((idx, v))
            })
            .collect();
        numbered.sort_by_key(|(i, _)| *i);
        numbered.into_iter().map(|(_, v)| v).collect()
    }

    /// `name=value` from the query string of `agi_network_script`, or of `agi_request` when
    /// there is no script line. A name without `=` reads as an empty value. Values are
    /// returned raw (no percent-decoding): dialplans write these by hand.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        let source = self.network_script().or_else(|| self.request())?;
        let (_, query) = source.split_once('?')?;
        query
            .split('&')
            .find_map(|pair| match pair.split_once('=') {
                Some((n, v)) if n == name => Some(v),
                None if pair == name => Some(""),
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> AgiEnv {
        AgiEnv::new(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn unknown_and_empty_are_none() {
        let e = env(&[
            ("agi_callerid", "unknown"),
            ("agi_calleridname", ""),
            ("agi_dnid", "unknown"),
            ("agi_extension", "+18005550100"),
        ]);
        assert_eq!(e.callerid(), None);
        assert_eq!(e.calleridname(), None);
        assert_eq!(e.dnid(), None);
        assert_eq!(e.extension(), Some("+18005550100"));
    }

    #[test]
    fn presentation() {
        for (pres, restricted) in [
            ("0", false),
            ("1", false),
            ("32", true),
            ("35", true),
            ("67", true),
            ("96", false),
            ("junk", false),
            ("300", false),
        ] {
            let e = env(&[("agi_callingpres", pres)]);
            assert_eq!(e.presentation_restricted(), restricted, "{pres}");
        }
        assert_eq!(env(&[]).callingpres(), 0);
    }

    #[test]
    fn args_in_numeric_order() {
        let e = env(&[
            ("agi_arg_10", "ten"),
            ("agi_arg_2", "two"),
            ("agi_arg_1", "one"),
            ("agi_arg_x", "ignored"),
        ]);
        assert_eq!(e.args(), ["one", "two", "ten"]);
    }

    #[test]
    fn query_params() {
        let e = env(&[
            (
                "agi_network_script",
                "callfilter?trunk=main&mode=hangup&flag",
            ),
            ("agi_request", "agi://h/callfilter?trunk=other"),
        ]);
        assert_eq!(e.query_param("trunk"), Some("main"));
        assert_eq!(e.query_param("mode"), Some("hangup"));
        assert_eq!(e.query_param("flag"), Some(""));
        assert_eq!(e.query_param("missing"), None);

        let from_request = env(&[("agi_request", "agi://h/callfilter?trunk=sales")]);
        assert_eq!(from_request.query_param("trunk"), Some("sales"));
        assert_eq!(
            env(&[("agi_network_script", "callfilter")]).query_param("trunk"),
            None
        );
    }
}
