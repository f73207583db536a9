//! Opening hours: `schedules.NAME` compiled once, then asked "is it open at
//! this instant?" on every call.
//!
//! Rules are written in wall-clock time of the business ("mon-fri 08:00-18:00
//! in New York"), so the instant is converted with chrono-tz before any
//! comparison: that is what keeps the answer right across DST changes. The
//! instant is always a parameter — the policy core never reads the clock.

use std::fmt;

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;

use crate::config::types::ScheduleConfig;

/// Minutes in a day; also the value of `24:00`.
const DAY_MINUTES: u16 = 24 * 60;

/// One problem in a schedule, located by its path inside the schedule
/// (`timezone`, `open[1].from`, `closed_dates[0]`) so the config loader can
/// prefix it with the schedule's name and file position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ScheduleError {
    pub field: String,
    pub message: String,
    /// Where the offending value is in the file (`to: "25:00"`), when known.
    pub at: Option<serde_saphyr::Location>,
}

impl ScheduleError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            at: None,
        }
    }

    fn located(mut self, at: &serde_saphyr::Location) -> Self {
        if *at != serde_saphyr::Location::UNKNOWN {
            self.at = Some(*at);
        }
        self
    }
}

/// A compiled schedule: immutable, cheap to query.
#[derive(Debug, Clone)]
pub struct Schedule {
    tz: Tz,
    windows: Vec<Window>,
    /// Sorted and deduplicated, for binary search.
    closed: Vec<NaiveDate>,
}

/// One `open` entry. Times are minutes since local midnight.
#[derive(Debug, Clone)]
struct Window {
    /// Bit `n` = open on the weekday `n` days from Monday.
    days: u8,
    from: u16,
    /// Exclusive end, `0..=1440`. `to <= from` means the window runs past
    /// midnight into the next day and stops at `to` there.
    to: u16,
    /// `mon-fri 08:00-18:00`, for `explain`.
    label: String,
}

impl Window {
    fn on(&self, day: Weekday) -> bool {
        self.days & (1 << day.num_days_from_monday()) != 0
    }

    /// Where today's part ends: `to`, or midnight for a window that crosses it.
    fn today_end(&self) -> u16 {
        if self.to > self.from {
            self.to
        } else {
            DAY_MINUTES
        }
    }

    /// Where the part after midnight ends (0: no such part). `from == to`
    /// means 24 hours from `from`, so its tail also ends at `to`.
    fn tail_end(&self) -> u16 {
        if self.to > self.from { 0 } else { self.to }
    }
}

/// Why a schedule is open or closed at an instant. `is_open` and `explain`
/// both derive from this, so the tester never disagrees with the call path.
enum State<'a> {
    Open(&'a Window),
    Holiday(NaiveDate),
    Outside,
}

impl Schedule {
    /// Validates and compiles `cfg`, reporting every problem at once so a user
    /// fixes the file in one pass.
    pub fn compile(cfg: &ScheduleConfig) -> Result<Schedule, Vec<ScheduleError>> {
        let mut errors = Vec::new();
        let tz = cfg.timezone.value.trim().parse::<Tz>().map_err(|_| {
            errors.push(
                ScheduleError::new(
                    "timezone",
                    format!(
                        "unknown timezone {:?} (use an IANA name such as America/New_York or Europe/Amsterdam)",
                        cfg.timezone.value
                    ),
                )
                .located(&cfg.timezone.referenced),
            )
        });
        let mut windows = Vec::with_capacity(cfg.open.len());
        for (i, w) in cfg.open.iter().enumerate() {
            let days = parse_days(&w.days.value.0).map_err(|m| {
                errors.push(
                    ScheduleError::new(format!("open[{i}].days"), m).located(&w.days.referenced),
                )
            });
            let from = parse_time(&w.from.value, false).map_err(|m| {
                errors.push(
                    ScheduleError::new(format!("open[{i}].from"), m).located(&w.from.referenced),
                )
            });
            let to = parse_time(&w.to.value, true).map_err(|m| {
                errors
                    .push(ScheduleError::new(format!("open[{i}].to"), m).located(&w.to.referenced))
            });
            if let (Ok(days), Ok(from), Ok(to)) = (days, from, to) {
                let label = format!(
                    "{} {}-{}",
                    w.days.value.0.trim().to_ascii_lowercase(),
                    hhmm(from),
                    hhmm(to)
                );
                windows.push(Window {
                    days,
                    from,
                    to,
                    label,
                });
            }
        }
        let mut closed = Vec::with_capacity(cfg.closed_dates.len());
        for (i, d) in cfg.closed_dates.iter().enumerate() {
            match parse_date(&d.value) {
                Ok(date) => closed.push(date),
                Err(m) => errors.push(
                    ScheduleError::new(format!("closed_dates[{i}]"), m).located(&d.referenced),
                ),
            }
        }
        match tz {
            Ok(tz) if errors.is_empty() => {
                closed.sort_unstable();
                closed.dedup();
                Ok(Schedule {
                    tz,
                    windows,
                    closed,
                })
            }
            _ => Err(errors),
        }
    }

    /// The schedule's timezone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// Whether `at` falls inside an open window and not on a closed date.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        matches!(self.state(at), State::Open(_))
    }

    /// A short human answer for the pattern tester and the decision log, e.g.
    /// `open (mon-fri 08:00-18:00 America/New_York, local Mon 09:15)`.
    pub fn explain(&self, at: DateTime<Utc>) -> String {
        let Some(local) = self.local(at) else {
            return format!("closed (instant out of range, {at})");
        };
        let when = format!(
            "local {} {:02}:{:02}",
            local.weekday(),
            local.hour(),
            local.minute()
        );
        match self.state(at) {
            State::Open(w) => format!("open ({} {}, {when})", w.label, self.tz.name()),
            State::Holiday(date) => format!("closed (holiday {date}, {when})"),
            State::Outside => format!("closed (outside every window, {when})"),
        }
    }

    /// Wall-clock time of `at` in the schedule's timezone. `with_timezone`
    /// panics when the local time leaves chrono's range (`DateTime::MAX_UTC`
    /// plus an eastern offset); this returns `None` there instead.
    fn local(&self, at: DateTime<Utc>) -> Option<NaiveDateTime> {
        let utc = at.naive_utc();
        let offset = self.tz.offset_from_utc_datetime(&utc).fix();
        utc.checked_add_offset(offset)
    }

    fn is_closed_date(&self, date: NaiveDate) -> bool {
        self.closed.binary_search(&date).is_ok()
    }

    /// A closed date closes the whole local day, including the tail of a
    /// window that started the evening before. A window belongs to the day it
    /// starts on, so a window starting on a closed date does not happen at
    /// all: its tail after midnight stays closed too.
    fn state(&self, at: DateTime<Utc>) -> State<'_> {
        let Some(local) = self.local(at) else {
            return State::Outside;
        };
        let today = local.date();
        if self.is_closed_date(today) {
            return State::Holiday(today);
        }
        // `hour` and `minute` are at most 23 and 59: this cannot overflow.
        let now = (local.hour() * 60 + local.minute()) as u16;
        let day = today.weekday();
        if let Some(w) = self
            .windows
            .iter()
            .find(|w| w.on(day) && now >= w.from && now < w.today_end())
        {
            return State::Open(w);
        }
        let Some(yesterday) = today.checked_sub_days(Days::new(1)) else {
            return State::Outside;
        };
        let tail = self
            .windows
            .iter()
            .find(|w| w.on(day.pred()) && now < w.tail_end());
        match tail {
            Some(_) if self.is_closed_date(yesterday) => State::Holiday(yesterday),
            Some(w) => State::Open(w),
            None => State::Outside,
        }
    }
}

const DAY_NAMES: [(Weekday, &str); 7] = [
    (Weekday::Mon, "monday"),
    (Weekday::Tue, "tuesday"),
    (Weekday::Wed, "wednesday"),
    (Weekday::Thu, "thursday"),
    (Weekday::Fri, "friday"),
    (Weekday::Sat, "saturday"),
    (Weekday::Sun, "sunday"),
];

/// `mon`, `Monday`, `MON` → Monday: the three-letter abbreviation or the full
/// English name, any case.
fn parse_day(s: &str) -> Option<Weekday> {
    let s = s.trim();
    DAY_NAMES.iter().find_map(|(day, name)| {
        let ok = s.eq_ignore_ascii_case(name) || s.eq_ignore_ascii_case(&name[..3]);
        ok.then_some(*day)
    })
}

/// `daily`, a day, a range (`mon-fri`; `fri-mon` wraps over the weekend) or a
/// comma list of those (`mon,wed,fri`, `mon-wed,sat`) → a weekday bitmask.
fn parse_days(s: &str) -> Result<u8, String> {
    const HELP: &str = "use mon..sun or full names, a range like mon-fri or fri-mon, a list like mon,wed,fri, or daily";
    if s.trim().is_empty() {
        return Err(format!("no days given ({HELP})"));
    }
    let mut mask = 0u8;
    for item in s.split(',') {
        let item = item.trim();
        if item.eq_ignore_ascii_case("daily") {
            mask = 0x7f;
            continue;
        }
        let (a, b) = item.split_once('-').unwrap_or((item, item));
        let day = |name: &str| {
            parse_day(name)
                .ok_or_else(|| format!("bad days {s:?}: {:?} is not a day ({HELP})", name.trim()))
        };
        let (first, last) = (day(a)?, day(b)?);
        let mut day = first;
        loop {
            mask |= 1 << day.num_days_from_monday();
            if day == last {
                break;
            }
            day = day.succ();
        }
    }
    Ok(mask)
}

/// `HH:MM`, 24-hour, `H:MM` tolerated. `24:00` only as an end (`allow_24`).
fn parse_time(s: &str, allow_24: bool) -> Result<u16, String> {
    let bad = || {
        let end = if allow_24 {
            "; 24:00 is allowed as an end"
        } else {
            ""
        };
        format!("bad time {s:?} (use HH:MM, 24-hour, 00:00 to 23:59{end})")
    };
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let digits = |t: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&t.len()) && t.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 1..=2) || !digits(m, 2..=2) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    match (h, m) {
        (0..=23, 0..=59) => Ok(h * 60 + m),
        (24, 0) if allow_24 => Ok(DAY_MINUTES),
        _ => Err(bad()),
    }
}

/// `YYYY-MM-DD`, strictly (a real calendar date, zero-padded).
fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let t = s.trim();
    let b = t.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    let date = shape
        .then(|| {
            let (y, m, d) = (
                t[..4].parse().ok()?,
                t[5..7].parse().ok()?,
                t[8..].parse().ok()?,
            );
            NaiveDate::from_ymd_opt(y, m, d)
        })
        .flatten();
    date.ok_or_else(|| format!("bad date {s:?} (use YYYY-MM-DD, e.g. 2026-12-25)"))
}

fn hhmm(minutes: u16) -> impl fmt::Display {
    struct Hhmm(u16);
    impl fmt::Display for Hhmm {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
        }
    }
    Hhmm(minutes)
}

#[cfg(test)]
mod tests {
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
}
