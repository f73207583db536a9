//! Caller-ID attestation (STIR/SHAKEN) as a rule condition.
//!
//! Where the level comes from, in order: the PBX's own verification
//! (Asterisk 22 `STIR_SHAKEN(0,verify_result)` and `STIR_SHAKEN(0,attestation)`),
//! else the `verstat` parameter the carrier put on the P-Asserted-Identity or
//! From URI (`TN-Validation-Passed-A/B/C`, `TN-Validation-Failed`,
//! `No-TN-Validation`). A call with neither is `none`: never guessed. Pure:
//! the drivers fetch the texts, this module reads them.

/// An attestation level, or its absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attest {
    A,
    B,
    C,
    /// Unsigned, or no verification result.
    None,
    /// Signed, but the verification failed.
    Failed,
}

impl Attest {
    pub const ALL: [Attest; 5] = [
        Attest::A,
        Attest::B,
        Attest::C,
        Attest::None,
        Attest::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Attest::A => "A",
            Attest::B => "B",
            Attest::C => "C",
            Attest::None => "none",
            Attest::Failed => "failed",
        }
    }

    /// `A`, `b`, `none`, `Failed`: as written in a rule or on the command line.
    pub fn parse(s: &str) -> Option<Attest> {
        let s = s.trim();
        Attest::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// The bit of this level in a rule's condition mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A call's level and where it was read, for the decision's explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    pub level: Attest,
    /// `verstat on P-Asserted-Identity`, `STIR_SHAKEN verify_result`, `unsigned`, …
    pub source: String,
}

impl Attestation {
    pub fn unsigned() -> Attestation {
        Attestation {
            level: Attest::None,
            source: "unsigned".into(),
        }
    }
}

impl std::fmt::Display for Attestation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "attestation {} ({})", self.level.as_str(), self.source)
    }
}

/// The texts a driver found for one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityInputs {
    /// Asterisk: `STIR_SHAKEN(0,verify_result)` and `STIR_SHAKEN(0,attestation)`,
    /// when `STIR_SHAKEN(count)` is at least 1.
    pub stir_shaken: Option<(String, String)>,
    /// The P-Asserted-Identity header (FreeSWITCH `sip_P-Asserted-Identity`,
    /// Asterisk `PJSIP_HEADER(read,P-Asserted-Identity)`).
    pub pai: Option<String>,
    /// The From header (FreeSWITCH `sip_full_from`, or `sip_from_uri` when only it carries the verstat; Asterisk `PJSIP_HEADER(read,From)`).
    pub from: Option<String>,
}

impl IdentityInputs {
    /// Whether the PBX's own verification gives a definite answer, so the
    /// headers need not be fetched.
    pub(crate) fn stir_decides(&self) -> bool {
        self.stir_shaken
            .as_ref()
            .is_some_and(|(r, _)| !stir_absent(r))
    }
}

/// Asterisk results that mean "nothing was signed or checked".
fn stir_absent(verify_result: &str) -> bool {
    matches!(
        verify_result.trim(),
        "" | "missing_identity_hdr" | "disabled"
    )
}

/// The call's attestation from what the driver found.
pub fn attestation(inputs: &IdentityInputs) -> Attestation {
    if let Some((result, level)) = &inputs.stir_shaken
        && !stir_absent(result)
    {
        let level = if result.trim() == "success" {
            match Attest::parse(level) {
                Some(l @ (Attest::A | Attest::B | Attest::C)) => l,
                // Verified, but with no level we can read: not guessed up.
                _ => Attest::None,
            }
        } else {
            Attest::Failed
        };
        return Attestation {
            level,
            source: format!("STIR_SHAKEN verify_result {}", result.trim()),
        };
    }
    for (name, header) in [("P-Asserted-Identity", &inputs.pai), ("From", &inputs.from)] {
        if let Some(level) = header.as_deref().and_then(verstat).and_then(from_verstat) {
            return Attestation {
                level,
                source: format!("verstat on {name}"),
            };
        }
    }
    Attestation::unsigned()
}

/// The value of the first `verstat=` parameter in a header or URI
/// (`<sip:+15551234567;verstat=TN-Validation-Passed-A@host;user=phone>`).
pub fn verstat(header: &str) -> Option<&str> {
    let lower = header.to_ascii_lowercase();
    let at = lower.find("verstat=")? + "verstat=".len();
    let rest = &header[at..];
    let end = rest
        .find(|c: char| matches!(c, ';' | '@' | '>' | ',' | '&' | '?') || c.is_whitespace())
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|v| !v.is_empty())
}

/// `TN-Validation-Passed-A` → A, `TN-Validation-Failed…` → failed,
/// `No-TN-Validation` → none. A `TN-Validation-Passed` without a level
/// counts as C, the least a passed validation can mean. Unknown values are
/// not read.
pub(crate) fn from_verstat(v: &str) -> Option<Attest> {
    let v = v.trim().to_ascii_lowercase();
    Some(match v.as_str() {
        "tn-validation-passed-a" => Attest::A,
        "tn-validation-passed-b" => Attest::B,
        "tn-validation-passed-c" | "tn-validation-passed" => Attest::C,
        "no-tn-validation" => Attest::None,
        _ if v.starts_with("tn-validation-failed") => Attest::Failed,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(stir: Option<(&str, &str)>, pai: Option<&str>, from: Option<&str>) -> IdentityInputs {
        IdentityInputs {
            stir_shaken: stir.map(|(a, b)| (a.into(), b.into())),
            pai: pai.map(Into::into),
            from: from.map(Into::into),
        }
    }

    #[test]
    fn verstat_from_pai_then_from() {
        let a = attestation(&inputs(
            None,
            Some("<sip:+15551234567;verstat=TN-Validation-Passed-C@carrier.example;user=phone>"),
            Some("<sip:+15551234567;verstat=TN-Validation-Passed-A@x>;tag=1"),
        ));
        assert_eq!(a.level, Attest::C);
        assert_eq!(
            a.to_string(),
            "attestation C (verstat on P-Asserted-Identity)"
        );
        let a = attestation(&inputs(
            None,
            Some("<sip:+15551234567@carrier.example>"),
            Some("\"Bob\" <sip:+15551234567;verstat=TN-Validation-Failed@x>;tag=9"),
        ));
        assert_eq!(a.to_string(), "attestation failed (verstat on From)");
        let a = attestation(&inputs(
            None,
            None,
            Some("<tel:+15551234567;verstat=No-TN-Validation>"),
        ));
        assert_eq!(a.level, Attest::None);
    }

    #[test]
    fn unsigned_is_none_never_guessed() {
        assert_eq!(
            attestation(&inputs(None, None, None)),
            Attestation::unsigned()
        );
        let a = attestation(&inputs(None, Some("<sip:1@x;verstat=whatever>"), None));
        assert_eq!(a.level, Attest::None);
        assert_eq!(a.source, "unsigned");
    }

    #[test]
    fn asterisk_verification_wins_when_it_has_a_result() {
        let pai = Some("<sip:+1;verstat=TN-Validation-Passed-C@x>");
        let a = attestation(&inputs(Some(("success", "A")), pai, None));
        assert_eq!(
            a.to_string(),
            "attestation A (STIR_SHAKEN verify_result success)"
        );
        let a = attestation(&inputs(Some(("signature_validation", "A")), pai, None));
        assert_eq!(a.level, Attest::Failed);
        // No Identity header: the carrier's verstat is next.
        let a = attestation(&inputs(Some(("missing_identity_hdr", "")), pai, None));
        assert_eq!(a.level, Attest::C);
        assert!(!inputs(Some(("disabled", "")), None, None).stir_decides());
        assert!(inputs(Some(("success", "B")), None, None).stir_decides());
    }

    #[test]
    fn levels_parse_in_any_case() {
        assert_eq!(Attest::parse("a"), Some(Attest::A));
        assert_eq!(Attest::parse("NONE"), Some(Attest::None));
        assert_eq!(Attest::parse("Failed"), Some(Attest::Failed));
        assert_eq!(Attest::parse("D"), None);
        assert_eq!(
            verstat("x;VERSTAT=TN-Validation-Passed-B;user=phone"),
            Some("TN-Validation-Passed-B")
        );
    }
}
