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
    pub(crate) fn is_open(&self, at: DateTime<Utc>) -> bool {
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
mod tests;
