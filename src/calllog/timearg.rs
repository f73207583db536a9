//! `--since` / `--until` values for the CLI: what a support engineer types.
//!
//! `now` is a parameter so the parsing is testable and the caller decides
//! which clock counts.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// Accepts a relative duration (`1h`, `30m`, `7d`, `1h30m`: that long before
/// `now`), a date (`2026-11-01`: 00:00 UTC that day) or an RFC 3339 time.
pub(crate) fn parse_time_arg(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty time: use 1h, 7d, 2026-11-01 or 2026-11-01T08:00:00Z".into());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| format!("{s:?}: not a valid date"));
    }
    // A leading digit tells a duration from a typo'd date or time word.
    if s.starts_with(|c: char| c.is_ascii_digit())
        && let Ok(d) = humantime::parse_duration(s)
    {
        return TimeDelta::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .ok_or_else(|| format!("{s:?}: too far in the past"));
    }
    Err(format!(
        "{s:?}: not a time; use a duration before now (1h, 30m, 7d), \
         a date (2026-11-01) or RFC 3339 (2026-11-01T08:00:00Z)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 15, 12, 0, 0).unwrap()
    }

    #[test]
    fn relative_durations_count_back_from_now() {
        assert_eq!(parse_time_arg("1h", now()), Ok(now() - TimeDelta::hours(1)));
        assert_eq!(
            parse_time_arg("30m", now()),
            Ok(now() - TimeDelta::minutes(30))
        );
        assert_eq!(parse_time_arg("7d", now()), Ok(now() - TimeDelta::days(7)));
        assert_eq!(
            parse_time_arg(" 1h30m ", now()),
            Ok(now() - TimeDelta::minutes(90))
        );
    }

    #[test]
    fn a_date_is_midnight_utc() {
        assert_eq!(
            parse_time_arg("2026-11-01", now()),
            Ok(Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap())
        );
    }

    #[test]
    fn rfc3339_with_offset_is_converted_to_utc() {
        assert_eq!(
            parse_time_arg("2026-11-01T08:30:00+02:00", now()),
            Ok(Utc.with_ymd_and_hms(2026, 11, 1, 6, 30, 0).unwrap())
        );
        assert_eq!(
            parse_time_arg("2026-11-01T08:30:00Z", now()),
            Ok(Utc.with_ymd_and_hms(2026, 11, 1, 8, 30, 0).unwrap())
        );
    }

    #[test]
    fn nonsense_is_an_error_that_shows_the_forms() {
        for bad in [
            "",
            "   ",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "1 fortnight",
            "h1",
            "-1h",
        ] {
            let err = parse_time_arg(bad, now()).unwrap_err();
            assert!(err.contains("1h") || err.contains("date"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_duration_past_the_calendar_is_an_error_not_a_panic() {
        assert!(parse_time_arg("100000000000y", now()).is_err());
    }
}
