//! Tests of `schedule`.

use super::*;
use crate::config::types::WindowConfig;
use chrono_tz::America::New_York;
use chrono_tz::Europe::Amsterdam;

fn sp<T>(v: T) -> serde_saphyr::Spanned<T> {
    let at = serde_saphyr::Location::UNKNOWN;
    serde_saphyr::Spanned::new(v, at, at)
}

fn window(days: &str, from: &str, to: &str) -> WindowConfig {
    WindowConfig {
        days: sp(days.into()),
        from: sp(from.into()),
        to: sp(to.into()),
    }
}

fn config(tz: &str, open: &[(&str, &str, &str)], closed: &[&str]) -> ScheduleConfig {
    ScheduleConfig {
        timezone: sp(tz.into()),
        open: open.iter().map(|(d, f, t)| window(d, f, t)).collect(),
        closed_dates: closed.iter().map(|d| sp(d.to_string())).collect(),
    }
}

fn compile(tz: &str, open: &[(&str, &str, &str)], closed: &[&str]) -> Schedule {
    Schedule::compile(&config(tz, open, closed)).expect("valid schedule")
}

/// The example from the config documentation.
fn office() -> Schedule {
    compile(
        "America/New_York",
        &[("mon-fri", "08:00", "18:00"), ("sat", "22:00", "02:00")],
        &["2026-12-25", "2027-01-01"],
    )
}

/// A New York wall-clock time (unambiguous) as an instant.
fn ny(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    let t = New_York
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("unambiguous");
    t.with_timezone(&Utc)
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid")
}

fn weekday(y: i32, m: u32, d: u32) -> Weekday {
    NaiveDate::from_ymd_opt(y, m, d).expect("date").weekday()
}

#[test]
fn calendar_assumptions() {
    assert_eq!(weekday(2026, 6, 15), Weekday::Mon);
    assert_eq!(weekday(2026, 6, 20), Weekday::Sat);
    assert_eq!(weekday(2026, 12, 25), Weekday::Fri);
    assert_eq!(weekday(2026, 12, 26), Weekday::Sat);
    assert_eq!(weekday(2026, 3, 8), Weekday::Sun);
    assert_eq!(weekday(2026, 11, 1), Weekday::Sun);
}

#[test]
fn weekday_window() {
    let s = office();
    assert!(s.is_open(ny(2026, 6, 15, 9, 15)));
    assert!(s.is_open(ny(2026, 6, 19, 12, 0))); // Friday
    assert!(!s.is_open(ny(2026, 6, 15, 7, 59)));
    assert!(s.is_open(ny(2026, 6, 15, 8, 0))); // from is inclusive
    assert!(s.is_open(ny(2026, 6, 15, 17, 59)));
    assert!(!s.is_open(ny(2026, 6, 15, 18, 0))); // to is exclusive
    assert!(!s.is_open(ny(2026, 6, 15, 23, 0)));
    assert!(!s.is_open(ny(2026, 6, 20, 12, 0))); // Saturday noon
    assert!(!s.is_open(ny(2026, 6, 21, 12, 0))); // Sunday noon
    // Seconds inside the last minute are still open.
    assert!(s.is_open(ny(2026, 6, 15, 17, 59) + chrono::Duration::seconds(59)));
}

#[test]
fn window_across_midnight() {
    let s = office();
    assert!(!s.is_open(ny(2026, 6, 20, 21, 59)));
    assert!(s.is_open(ny(2026, 6, 20, 22, 0)));
    assert!(s.is_open(ny(2026, 6, 20, 23, 0)));
    assert!(s.is_open(ny(2026, 6, 21, 0, 0))); // Sunday: the tail
    assert!(s.is_open(ny(2026, 6, 21, 1, 59)));
    assert!(!s.is_open(ny(2026, 6, 21, 2, 0)));
    // The tail belongs to Saturday's window: Monday 01:00 is not open.
    assert!(!s.is_open(ny(2026, 6, 15, 1, 0)));
    // Friday 23:00 is not open: the window starts on Saturday only.
    assert!(!s.is_open(ny(2026, 6, 19, 23, 0)));
}

#[test]
fn closed_dates() {
    let s = office();
    assert!(!s.is_open(ny(2026, 12, 25, 10, 0))); // Christmas, a Friday
    assert!(!s.is_open(ny(2027, 1, 1, 10, 0)));
    assert!(s.is_open(ny(2026, 12, 24, 10, 0)));
    assert!(s.is_open(ny(2026, 12, 28, 10, 0)));
    assert_eq!(
        s.explain(ny(2026, 12, 25, 10, 0)),
        "closed (holiday 2026-12-25, local Fri 10:00)"
    );
}

#[test]
fn closed_date_closes_the_midnight_tail() {
    // Sunday 2026-12-27 is closed: Saturday's window stops at midnight.
    let s = compile(
        "America/New_York",
        &[("sat", "22:00", "02:00")],
        &["2026-12-27"],
    );
    assert!(s.is_open(ny(2026, 12, 26, 23, 0)));
    assert!(!s.is_open(ny(2026, 12, 27, 0, 30)));
    assert!(!s.is_open(ny(2026, 12, 27, 1, 59)));
    // Saturday 2026-12-26 closed: the window does not happen at all.
    let s = compile(
        "America/New_York",
        &[("sat", "22:00", "02:00")],
        &["2026-12-26"],
    );
    assert!(!s.is_open(ny(2026, 12, 26, 23, 0)));
    assert!(!s.is_open(ny(2026, 12, 27, 0, 30)));
    assert_eq!(
        s.explain(ny(2026, 12, 27, 0, 30)),
        "closed (holiday 2026-12-26, local Sun 00:30)"
    );
    // The next Saturday is back to normal.
    assert!(s.is_open(ny(2027, 1, 3, 0, 30)));
}

#[test]
fn dst_spring_forward_new_york() {
    let s = office();
    // 12:30 UTC: 07:30 EST on Friday before the change, 08:30 EDT after it.
    assert!(!s.is_open(utc(2026, 3, 6, 12, 30)));
    assert!(s.is_open(utc(2026, 3, 9, 12, 30)));
    // 22:30 UTC: 17:30 EST (open) before, 18:30 EDT (closed) after.
    assert!(s.is_open(utc(2026, 3, 6, 22, 30)));
    assert!(!s.is_open(utc(2026, 3, 9, 22, 30)));
    // Night of the change (Sat 7 → Sun 8 March): 02:00 local never happens;
    // the Saturday window's tail ends at 01:59:59 EST = 06:59:59 UTC.
    assert!(s.is_open(utc(2026, 3, 8, 6, 59)));
    assert!(!s.is_open(utc(2026, 3, 8, 7, 0))); // 03:00 EDT
}

#[test]
fn dst_fall_back_new_york() {
    let s = office();
    // 12:30 UTC: 08:30 EDT on Friday before the change, 07:30 EST after it.
    assert!(s.is_open(utc(2026, 10, 30, 12, 30)));
    assert!(!s.is_open(utc(2026, 11, 2, 12, 30)));
    // Night of the change (Sat 31 Oct → Sun 1 Nov): 01:30 happens twice,
    // both open; 02:00 EST (07:00 UTC) closes.
    assert!(s.is_open(utc(2026, 11, 1, 5, 30))); // 01:30 EDT
    assert!(s.is_open(utc(2026, 11, 1, 6, 30))); // 01:30 EST
    assert!(s.is_open(utc(2026, 11, 1, 6, 59)));
    assert!(!s.is_open(utc(2026, 11, 1, 7, 0)));
    assert_eq!(
        s.explain(utc(2026, 11, 1, 6, 30)),
        "open (sat 22:00-02:00 America/New_York, local Sun 01:30)"
    );
}

#[test]
fn amsterdam() {
    let s = compile(
        "Europe/Amsterdam",
        &[("Monday-Friday", "09:00", "17:30")],
        &["2026-04-27"], // King's Day, a Monday
    );
    // Summer (CEST, UTC+2): 07:00 UTC is 09:00 local.
    assert!(!s.is_open(utc(2026, 6, 15, 6, 59)));
    assert!(s.is_open(utc(2026, 6, 15, 7, 0)));
    assert!(s.is_open(utc(2026, 6, 15, 15, 29)));
    assert!(!s.is_open(utc(2026, 6, 15, 15, 30)));
    // Winter (CET, UTC+1): 07:30 UTC is 08:30 local, 08:00 UTC is 09:00.
    assert!(!s.is_open(utc(2026, 1, 12, 7, 30)));
    assert!(s.is_open(utc(2026, 1, 12, 8, 0)));
    // The Netherlands switched on 2026-03-29; 07:30 UTC on Fri 27 March is
    // 08:30 CET (closed), on Mon 30 March 09:30 CEST (open).
    assert!(!s.is_open(utc(2026, 3, 27, 7, 30)));
    assert!(s.is_open(utc(2026, 3, 30, 7, 30)));
    assert!(!s.is_open(utc(2026, 4, 27, 10, 0)));
    assert_eq!(s.timezone(), Amsterdam);
    assert_eq!(
        s.explain(utc(2026, 6, 15, 7, 0)),
        "open (monday-friday 09:00-17:30 Europe/Amsterdam, local Mon 09:00)"
    );
}

#[test]
fn wrapping_range_fri_mon() {
    let s = compile("UTC", &[("fri-mon", "10:00", "11:00")], &[]);
    let open: Vec<bool> = (15..=21)
        .map(|d| s.is_open(utc(2026, 6, d, 10, 30)))
        .collect();
    // Mon, Tue, Wed, Thu, Fri, Sat, Sun
    assert_eq!(open, [true, false, false, false, true, true, true]);
}

#[test]
fn days_forms() {
    let all = 0x7f;
    assert_eq!(parse_days("daily"), Ok(all));
    assert_eq!(parse_days("DAILY"), Ok(all));
    assert_eq!(parse_days("mon-sun"), Ok(all));
    assert_eq!(parse_days("tue-mon"), Ok(all));
    assert_eq!(parse_days("sat"), Ok(0b010_0000));
    assert_eq!(parse_days("Saturday"), Ok(0b010_0000));
    assert_eq!(parse_days("mon-fri"), Ok(0b001_1111));
    assert_eq!(parse_days("MON - FRI"), Ok(0b001_1111));
    assert_eq!(parse_days("mon,wed,fri"), Ok(0b001_0101));
    assert_eq!(parse_days("monday, Wednesday ,FRI"), Ok(0b001_0101));
    assert_eq!(parse_days("fri-mon"), Ok(0b111_0001));
    assert_eq!(parse_days("mon-tue,sat-sun"), Ok(0b110_0011));
    for bad in [
        "",
        " ",
        "mo",
        "mon-",
        "-fri",
        "mon,,fri",
        "weekdays",
        "mon-fri-sat",
        "ma-vr",
        "lundi",
    ] {
        assert!(parse_days(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn time_forms() {
    assert_eq!(parse_time("00:00", false), Ok(0));
    assert_eq!(parse_time("08:00", false), Ok(480));
    assert_eq!(parse_time("8:00", false), Ok(480));
    assert_eq!(parse_time(" 23:59 ", false), Ok(1439));
    assert_eq!(parse_time("24:00", true), Ok(1440));
    for bad in [
        "24:00",
        "24:01",
        "25:00",
        "12:60",
        "12",
        "12:5",
        "12:005",
        "1200",
        "-1:00",
        "+1:00",
        "１２:００",
        "12:00pm",
        "",
    ] {
        assert!(parse_time(bad, false).is_err(), "{bad:?}");
    }
    assert!(parse_time("24:01", true).is_err());
}

#[test]
fn date_forms() {
    assert_eq!(
        parse_date("2026-12-25"),
        Ok(NaiveDate::from_ymd_opt(2026, 12, 25).expect("date"))
    );
    assert!(parse_date("2028-02-29").is_ok());
    for bad in [
        "2026-13-01",
        "2026-02-30",
        "2027-02-29",
        "2026-1-05",
        "26-12-25",
        "2026/12/25",
        "25-12-2026",
        "",
        "2026-12-25x",
        "２０２６-12-25",
    ] {
        assert!(parse_date(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn whole_day_and_24h_windows() {
    // from == to: 24 hours from `from`, into the next day.
    let s = compile("UTC", &[("mon", "12:00", "12:00")], &[]);
    assert!(!s.is_open(utc(2026, 6, 15, 11, 59)));
    assert!(s.is_open(utc(2026, 6, 15, 12, 0)));
    assert!(s.is_open(utc(2026, 6, 16, 11, 59)));
    assert!(!s.is_open(utc(2026, 6, 16, 12, 0)));
    // 00:00-00:00 and 00:00-24:00: the whole day, nothing of the next.
    for to in ["00:00", "24:00"] {
        let s = compile("UTC", &[("mon", "00:00", to)], &[]);
        assert!(s.is_open(utc(2026, 6, 15, 0, 0)), "{to}");
        assert!(s.is_open(utc(2026, 6, 15, 23, 59)), "{to}");
        assert!(!s.is_open(utc(2026, 6, 16, 0, 0)), "{to}");
        assert!(!s.is_open(utc(2026, 6, 14, 23, 59)), "{to}");
    }
    // After-hours exclusive mode for a practice: daily 18:00-08:00.
    let s = compile("America/New_York", &[("daily", "18:00", "08:00")], &[]);
    assert!(s.is_open(ny(2026, 6, 15, 18, 0)));
    assert!(s.is_open(ny(2026, 6, 16, 7, 59)));
    assert!(!s.is_open(ny(2026, 6, 16, 8, 0)));
    assert!(!s.is_open(ny(2026, 6, 16, 12, 0)));
}

#[test]
fn no_windows_is_never_open() {
    let s = compile("UTC", &[], &[]);
    assert!(!s.is_open(utc(2026, 6, 15, 12, 0)));
    // Extreme instants do not panic.
    assert!(!s.is_open(DateTime::<Utc>::MIN_UTC));
    assert!(!s.is_open(DateTime::<Utc>::MAX_UTC));
    let s = office();
    let _ = s.explain(DateTime::<Utc>::MIN_UTC);
    let _ = s.explain(DateTime::<Utc>::MAX_UTC);
}

#[test]
fn every_error_is_collected() {
    let cfg = config(
        "America/New_Yrok",
        &[
            ("mon-fri", "08:00", "18:00"),
            ("mon-fir", "25:00", "18:60"),
            ("", "24:00", "24:00"),
        ],
        &["2026-12-25", "2026-13-01", "tomorrow"],
    );
    let errors = Schedule::compile(&cfg).expect_err("invalid");
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "timezone",
            "open[1].days",
            "open[1].from",
            "open[1].to",
            "open[2].days",
            "open[2].from",
            "closed_dates[1]",
            "closed_dates[2]",
        ]
    );
    assert!(
        errors[0].message.contains("America/New_Yrok"),
        "{}",
        errors[0]
    );
    assert!(errors[1].message.contains("\"fir\""), "{}", errors[1]);
    assert!(errors[2].message.contains("25:00"));
    assert!(errors[6].message.contains("YYYY-MM-DD"));
    assert_eq!(
        errors[1].to_string(),
        format!("open[1].days: {}", errors[1].message)
    );
}

#[test]
fn timezone_alone_is_reported() {
    let errors = Schedule::compile(&config("EST5EDT-nope", &[], &[])).expect_err("invalid");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "timezone");
    // Surrounding whitespace is not an error; names are case-sensitive IANA names.
    assert!(Schedule::compile(&config(" UTC ", &[], &[])).is_ok());
    assert!(Schedule::compile(&config("Europe/Amsterdam", &[], &[])).is_ok());
}

#[test]
fn explain_states() {
    let s = office();
    assert_eq!(
        s.explain(ny(2026, 6, 15, 9, 15)),
        "open (mon-fri 08:00-18:00 America/New_York, local Mon 09:15)"
    );
    assert_eq!(
        s.explain(ny(2026, 6, 20, 7, 0)),
        "closed (outside every window, local Sat 07:00)"
    );
}
