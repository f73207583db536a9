//! Tests of `number`.

use super::*;

fn us() -> Region {
    Region::default()
}

fn nl() -> Region {
    Region::parse("nl").expect("NL")
}

fn e164(raw: &str, region: Region) -> Option<String> {
    normalize(raw, false, region).e164
}

#[test]
fn region_parse() {
    assert_eq!(Region::parse("US"), Some(Region::default()));
    assert_eq!(
        Region::parse(" nl ").map(|r| r.code().to_string()),
        Some("NL".into())
    );
    assert_eq!(
        Region::parse("gB").map(|r| r.to_string()),
        Some("GB".into())
    );
    for bad in ["", "U", "USA", "UK", "ZZ", "1A", "ñl", "001"] {
        assert_eq!(Region::parse(bad), None, "{bad:?}");
    }
    assert_eq!(Region::default().code(), "US");
}

#[test]
fn e164_fast_path() {
    assert_eq!(e164("+15551234567", us()).as_deref(), Some("+15551234567"));
    assert_eq!(
        e164("  +1 (555) 123-4567 ", nl()).as_deref(),
        Some("+15551234567")
    );
    assert_eq!(
        e164("+31.20.123.4567", us()).as_deref(),
        Some("+31201234567")
    );
    assert_eq!(e164("+1", us()).as_deref(), Some("+1"));
    assert_eq!(
        e164("+123456789012345", us()).as_deref(),
        Some("+123456789012345")
    );
    // 16 digits, a leading 0, no digits, or a second `+` are not E.164.
    assert_eq!(e164("+1234567890123456", us()), None);
    assert_eq!(e164("+0123", us()), None);
    assert_eq!(e164("+", us()), None);
    assert_eq!(e164("+ - ()", us()), None);
    assert_eq!(e164("++15551234567", us()), None);
    assert_eq!(e164("+1555123456a", us()), None);
}

#[test]
fn e164_national_and_international_prefixes() {
    assert_eq!(e164("0201234567", nl()).as_deref(), Some("+31201234567"));
    assert_eq!(e164("020-123 4567", nl()).as_deref(), Some("+31201234567"));
    assert_eq!(e164("0031201234567", nl()).as_deref(), Some("+31201234567"));
    assert_eq!(
        e164("011441234567890", us()).as_deref(),
        Some("+441234567890")
    );
    assert_eq!(e164("5551234567", us()).as_deref(), Some("+15551234567"));
    assert_eq!(
        e164("(555) 123-4567", us()).as_deref(),
        Some("+15551234567")
    );
    assert_eq!(e164("555.123.4567", us()).as_deref(), Some("+15551234567"));
    assert_eq!(e164("15551234567", us()).as_deref(), Some("+15551234567"));
    assert_eq!(
        e164("1 (555) 123-4567", us()).as_deref(),
        Some("+15551234567")
    );
    assert_eq!(e164("06 12345678", nl()).as_deref(), Some("+31612345678"));
    let gb = Region::parse("GB").expect("GB");
    assert_eq!(e164("020 7946 0018", gb).as_deref(), Some("+442079460018"));
    assert_eq!(
        e164("00 1 555 123 4567", gb).as_deref(),
        Some("+15551234567")
    );
    // The same digits mean different things in different regions.
    assert_eq!(e164("0031201234567", us()), None);
    // An international prefix followed by 0, or by too many digits, is not E.164.
    assert_eq!(e164("0110123456789", us()), None);
    assert_eq!(e164("0111234567890123456", us()), None);
}

#[test]
fn e164_rejects_extensions_and_local_numbers() {
    // An internal extension or a 7-digit local number has no E.164 form.
    assert_eq!(e164("1001", us()), None);
    assert_eq!(e164("1234567", us()), None);
    assert_eq!(e164("0", nl()), None);
}

#[test]
fn e164_junk_is_none() {
    for junk in [
        "sip:+15551234567@example.com",
        "sip:alice@example.com",
        "alice",
        "555-CALL-NOW",
        "5551234567;ext=12",
        "+1 555 123 4567 x12",
        "#31#5551234567",
        "*67",
        "- . ()",
    ] {
        let c = normalize(junk, false, us());
        assert_eq!(c.e164, None, "{junk:?}");
        assert!(!c.anonymous, "{junk:?}");
        assert_eq!(c.raw, junk.trim());
    }
}

#[test]
fn very_long_input() {
    let long = "5".repeat(10_000);
    assert_eq!(e164(&long, us()), None);
    let plus = format!("+{long}");
    assert_eq!(e164(&plus, us()), None);
    // 33 bytes of digits: past the parser's cap even though it is digits.
    assert_eq!(e164(&"1".repeat(33), us()), None);
    let spaced = format!("+1{}5551234567", " ".repeat(100));
    assert_eq!(e164(&spaced, us()), None);
    let c = normalize(&long, false, us());
    assert_eq!(c.raw.len(), 10_000);
    assert!(!c.anonymous);
}

#[test]
fn non_ascii() {
    // Full-width and Arabic-Indic digits are not ASCII digits: no E.164 form.
    for raw in [
        "＋１５５５１２３４５６７",
        "٥٥٥١٢٣٤٥٦٧",
        "+1555123456７",
        "Ånonymous",
        "0201234567é",
    ] {
        let c = normalize(raw, false, nl());
        assert_eq!(c.e164, None, "{raw:?}");
        assert!(!c.anonymous, "{raw:?}");
    }
    // A multi-byte char where the `sip:` prefix would end must not split it.
    assert!(!normalize("siñ:x", false, us()).anonymous);
    assert!(!normalize("sip\u{e9}anonymous", false, us()).anonymous);
}

#[test]
fn anonymous_words_any_case() {
    for word in [
        "anonymous",
        "Anonymous",
        "ANONYMOUS",
        "unknown",
        "Unknown",
        "private",
        "PRIVATE",
        "Restricted",
        "unavailable",
        "UNAVAILABLE",
        "blocked",
        "Withheld",
        "  anonymous  ",
        "",
        "   ",
    ] {
        let c = normalize(word, false, us());
        assert!(c.anonymous, "{word:?}");
        assert_eq!(c.e164, None, "{word:?}");
        assert_eq!(c.raw, word.trim());
    }
}

#[test]
fn anonymous_sip_user_parts() {
    for raw in [
        "anonymous@anonymous.invalid",
        "sip:anonymous@anonymous.invalid",
        "SIP:Anonymous@10.0.0.1",
        "sips:restricted@pbx.example",
        "Unknown@host",
    ] {
        assert!(normalize(raw, false, us()).anonymous, "{raw:?}");
    }
    for raw in [
        "anonymously",
        "sip:alice@anonymous.invalid",
        "not-anonymous",
        "anonymous1",
    ] {
        assert!(!normalize(raw, false, us()).anonymous, "{raw:?}");
    }
}

#[test]
fn restricted_flag() {
    // The PBX knows the number but must not show it: anonymous, still E.164.
    let c = normalize("+15551234567", true, us());
    assert!(c.anonymous);
    assert_eq!(c.e164.as_deref(), Some("+15551234567"));
    let c = normalize("0201234567", true, nl());
    assert!(c.anonymous);
    assert_eq!(c.e164.as_deref(), Some("+31201234567"));
    // Without a number.
    let c = normalize("", true, us());
    assert!(c.anonymous);
    assert_eq!(c.e164, None);
    assert_eq!(c.raw, "");
    let c = normalize("anonymous", true, us());
    assert!(c.anonymous);
    assert_eq!(c.e164, None);
    // And the flag off with a number: not anonymous.
    assert!(!normalize("+15551234567", false, us()).anonymous);
}

// National formats as people and carriers send them (one table with
// tests/cold_start.rs, where each is a first-call test).
include!("../../../tests/fixtures/national_formats.rs");

#[test]
fn national_formats_in_fifteen_regions() {
    for &(region, raw, want) in NATIONAL_FORMATS {
        let r = Region::parse(region).expect(region);
        let d = Dialing::new(r).expect(region);
        assert_eq!(
            d.normalize(raw, false).e164.as_deref(),
            Some(want),
            "{region} {raw:?}"
        );
        // Digits only, and the same number dialled from abroad.
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        assert_eq!(d.normalize(&digits, false).e164.as_deref(), Some(want));
        assert_eq!(d.normalize(want, false).e164.as_deref(), Some(want));
    }
}

#[test]
fn national_prefix_transform_rules() {
    let d = |r: &str| Dialing::new(Region::parse(r).unwrap()).unwrap();
    // Brazil: a carrier-selection code after the trunk prefix is dropped.
    assert_eq!(
        d("BR")
            .normalize("0 21 11 2345 6789", false)
            .e164
            .as_deref(),
        Some("+551123456789")
    );
    // Argentina: a mobile dialled nationally as 0 11 15 … is +54 9 11 ….
    assert_eq!(
        d("AR").normalize("011 15 2345 6789", false).e164.as_deref(),
        Some("+5491123456789")
    );
    // Russia: 8 is the trunk prefix, and also the first digit of 800
    // numbers dialled without it.
    assert_eq!(
        d("RU").normalize("8 800 123 4567", false).e164.as_deref(),
        Some("+78001234567")
    );
    assert_eq!(
        d("RU").normalize("800 123 4567", false).e164.as_deref(),
        Some("+78001234567")
    );
}

#[test]
fn country_code_without_plus() {
    let d = |r: &str| Dialing::new(Region::parse(r).unwrap()).unwrap();
    assert_eq!(
        d("NL").normalize("31201234567", false).e164.as_deref(),
        Some("+31201234567")
    );
    assert_eq!(
        d("GB").normalize("44 20 7946 0018", false).e164.as_deref(),
        Some("+442079460018")
    );
    // Réunion's numbers start with its own country code: kept.
    assert_eq!(
        d("RE").normalize("0262 16 12 34", false).e164.as_deref(),
        Some("+262262161234")
    );
}

/// Every example number of libphonenumber's metadata, in every region,
/// as bare national digits and with the national prefix, comes out as
/// the E.164 number the metadata says it is.
#[test]
fn metadata_examples_in_every_region() {
    let db = &*phonenumber::metadata::DATABASE;
    let mut checked = 0;
    let mut wrong = Vec::new();
    for meta in db.iter() {
        let Some(region) = Region::parse(meta.id()) else {
            continue;
        };
        let dialing = Dialing::new(region).unwrap_or_else(|e| panic!("{e}"));
        let d = meta.descriptors();
        for k in [d.fixed_line(), d.mobile(), d.toll_free(), d.voip()]
            .into_iter()
            .flatten()
        {
            let Some(ex) = k.example() else { continue };
            let want = format!("+{}{ex}", meta.country_code());
            let mut forms = vec![ex.to_string()];
            // Colombian mobiles are never dialled with the trunk prefix:
            // `0 3…` reads as a carrier selection there.
            if let Some(p) = meta.national_prefix()
                && !(meta.id() == "CO" && ex.starts_with('3'))
            {
                forms.push(format!("{p}{ex}"));
            }
            for f in forms {
                checked += 1;
                let got = dialing.normalize(&f, false).e164;
                if got.as_deref() != Some(want.as_str()) {
                    wrong.push(format!("{} {f}: {got:?}, want {want}", meta.id()));
                }
            }
        }
    }
    assert!(checked > 1000, "only {checked} examples");
    assert!(wrong.is_empty(), "{wrong:#?}");
}
