//! Instants and durations as the segment language writes them.
//!
//! Instants are `YYYY-MM-DD` (midnight in the store's time zone) or RFC 3339 with an offset and
//! at most 6 fractional digits — the store keeps microseconds, so anything finer would be
//! silently cut. Durations are `[1-9][0-9]{0,5}[mhdw]` with fixed-length days and weeks.
//! Both are parsed strictly by hand: chrono's own parsers accept more than the spec allows
//! (spaces for `T`, any number of fractional digits, leap seconds).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::Error;

/// What an instant may look like, for problems.
pub const INSTANT_ALLOWED: &str = "an instant: `YYYY-MM-DD` (midnight in the store's time zone) \
     or RFC 3339 with an offset, e.g. `2025-11-28T09:30:00Z`, `2025-11-28T12:30:00.5+03:00` \
     (at most 6 fractional digits)";

/// What a duration may look like, for problems.
pub const DURATION_ALLOWED: &str =
    "a duration `[1-9][0-9]{0,5}[mhdw]`: minutes, hours, days of 24 h or weeks of 7 d, e.g. `30d`";

/// Reads an instant written in the language, resolving a bare date in the store's zone `tz`.
///
/// A bare date is midnight of that day in `tz`. Where the zone's clock skips midnight (a
/// daylight-saving change at 00:00), the day starts at the end of the gap, which is the first
/// instant of that day; where midnight happens twice, the earlier one is taken.
pub fn parse_instant(text: &str, tz: Tz) -> Result<DateTime<Utc>, Error> {
    let bad = |reason: &str| Error::syntax(text, INSTANT_ALLOWED, reason);
    let b = text.as_bytes();
    if b.len() < 10 {
        return Err(bad("neither a date `YYYY-MM-DD` nor an RFC 3339 instant"));
    }
    let date = parse_date(&b[..10]).ok_or_else(|| bad("not a valid date `YYYY-MM-DD`"))?;
    if b.len() == 10 {
        return Ok(midnight(date, tz));
    }
    // `T` (RFC 3339 also allows `t`), then `HH:MM:SS`.
    if !matches!(b[10], b'T' | b't') {
        return Err(bad("a date is followed by `T` and a time"));
    }
    let rest = &b[11..];
    if rest.len() < 8 || rest[2] != b':' || rest[5] != b':' {
        return Err(bad("the time is not `HH:MM:SS`"));
    }
    let (hour, minute, second) = match (two(&rest[0..2]), two(&rest[3..5]), two(&rest[6..8])) {
        (Some(h), Some(m), Some(s)) => (h, m, s),
        _ => return Err(bad("the time is not `HH:MM:SS`")),
    };
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("the time of day is out of range (no leap seconds)"));
    }
    let mut rest = &rest[8..];
    let mut micros = 0u32;
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let n = after_dot.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(bad("a `.` is followed by fractional digits"));
        }
        if n > 6 {
            return Err(bad(&format!(
                "{n} fractional digits: at most 6 (microseconds)"
            )));
        }
        for &c in &after_dot[..n] {
            micros = micros * 10 + u32::from(c - b'0');
        }
        micros *= 10u32.pow(6 - n as u32);
        rest = &after_dot[n..];
    }
    let offset_seconds: i32 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = match (two(&[*h1, *h2]), two(&[*m1, *m2])) {
                (Some(h), Some(m)) if h <= 23 && m <= 59 => (h, m),
                _ => return Err(bad("the offset is not `+HH:MM` or `-HH:MM`")),
            };
            let seconds = (h * 3600 + m * 60) as i32;
            if *sign == b'-' { -seconds } else { seconds }
        }
        [] => return Err(bad("no offset: write `Z` or `+HH:MM`, or a bare date")),
        _ => return Err(bad("the offset is not `Z`, `+HH:MM` or `-HH:MM`")),
    };
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)
        .ok_or_else(|| bad("the time of day is out of range"))?;
    let local = NaiveDateTime::new(date, time);
    let utc = local
        .checked_sub_signed(chrono::TimeDelta::seconds(i64::from(offset_seconds)))
        .ok_or_else(|| bad("out of range"))?;
    Ok(Utc.from_utc_datetime(&utc))
}

/// Writes an instant the way definitions are stored: RFC 3339 in UTC with `Z`, with fractional
/// digits only when the instant has them. [`parse_instant`] reads it back to the same instant
/// in any zone.
pub fn format_instant(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The first instant of `date` in `tz`: midnight, or the end of a gap that swallows midnight.
pub fn midnight(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let local = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) => at.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // Midnight falls in a gap: the day begins when the gap ends, which is midnight
            // read with the offset in force just before the gap.
            let before = local - chrono::TimeDelta::days(1);
            let offset = match tz.from_local_datetime(&before) {
                LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
                    at.offset().fix().local_minus_utc()
                }
                LocalResult::None => 0,
            };
            Utc.from_utc_datetime(&(local - chrono::TimeDelta::seconds(i64::from(offset))))
        }
    }
}

fn two(b: &[u8]) -> Option<u32> {
    match b {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => None,
    }
}

fn parse_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = two(&b[0..2])? * 100 + two(&b[2..4])?;
    let month = two(&b[5..7])?;
    let day = two(&b[8..10])?;
    NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, month, day)
}

/// The unit of a [`Duration`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationUnit {
    /// `m`: 60 seconds.
    Minutes,
    /// `h`: 60 minutes.
    Hours,
    /// `d`: exactly 24 hours, whatever the zone's clock changes do (the spec says so, so that a
    /// window does not depend on the zone).
    Days,
    /// `w`: exactly 7 days of 24 hours.
    Weeks,
}

impl DurationUnit {
    /// The letter that writes this unit.
    pub fn letter(self) -> char {
        match self {
            DurationUnit::Minutes => 'm',
            DurationUnit::Hours => 'h',
            DurationUnit::Days => 'd',
            DurationUnit::Weeks => 'w',
        }
    }

    /// Seconds in one unit.
    pub fn seconds(self) -> i64 {
        match self {
            DurationUnit::Minutes => 60,
            DurationUnit::Hours => 3_600,
            DurationUnit::Days => 86_400,
            DurationUnit::Weeks => 604_800,
        }
    }
}

/// A length of time as written in a definition (`30d`, `24h`), kept as written so that a stored
/// definition reads back the way its author wrote it (`24h` stays `24h`, not `1d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Duration {
    amount: u32,
    unit: DurationUnit,
}

impl Duration {
    /// The largest amount the syntax allows (six digits).
    pub const MAX_AMOUNT: u32 = 999_999;

    /// `amount` units; `None` unless `1 <= amount <= 999999`.
    pub fn new(amount: u32, unit: DurationUnit) -> Option<Duration> {
        (1..=Self::MAX_AMOUNT)
            .contains(&amount)
            .then_some(Duration { amount, unit })
    }

    /// How many units.
    pub fn amount(&self) -> u32 {
        self.amount
    }

    /// Which unit.
    pub fn unit(&self) -> DurationUnit {
        self.unit
    }

    /// The length in whole seconds.
    pub fn seconds(&self) -> i64 {
        i64::from(self.amount) * self.unit.seconds()
    }

    /// The length in microseconds, the store's resolution (at most about 6 × 10^17, well
    /// inside `i64`).
    pub fn micros(&self) -> i64 {
        self.seconds() * 1_000_000
    }

    /// The length as a chrono delta, for instant arithmetic (`as_of - d`).
    pub fn to_time_delta(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::seconds(self.seconds())
    }
}

impl FromStr for Duration {
    type Err = Error;

    fn from_str(text: &str) -> Result<Duration, Error> {
        let bad = |reason: &str| Error::syntax(text, DURATION_ALLOWED, reason);
        let Some(letter) = text.chars().last() else {
            return Err(bad("empty"));
        };
        let unit = match letter {
            'm' => DurationUnit::Minutes,
            'h' => DurationUnit::Hours,
            'd' => DurationUnit::Days,
            'w' => DurationUnit::Weeks,
            _ => return Err(bad("the unit is not one of m, h, d, w")),
        };
        let digits = &text[..text.len() - 1];
        if digits.is_empty()
            || digits.len() > 6
            || digits.starts_with('0')
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad(
                "the amount is not 1 to 6 digits without a leading zero",
            ));
        }
        let amount: u32 = digits.parse().map_err(|_| bad("not a number"))?;
        Duration::new(amount, unit).ok_or_else(|| bad("out of range"))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.letter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn bare_dates_are_midnight_in_the_store_zone() {
        let istanbul: Tz = "Europe/Istanbul".parse().unwrap();
        assert_eq!(
            parse_instant("2025-11-28", istanbul).unwrap(),
            utc("2025-11-27T21:00:00Z")
        );
        assert_eq!(
            parse_instant("2025-11-28", Tz::UTC).unwrap(),
            utc("2025-11-28T00:00:00Z")
        );
        // Summer time in Berlin: UTC+2.
        assert_eq!(
            parse_instant("2025-07-01", Tz::Europe__Berlin).unwrap(),
            utc("2025-06-30T22:00:00Z")
        );
    }

    #[test]
    fn midnight_in_a_clock_gap_is_the_end_of_the_gap() {
        // Chile skipped from 2024-09-08 00:00 (UTC-4) to 01:00 (UTC-3): the day starts at
        // 04:00 UTC.
        let santiago = Tz::America__Santiago;
        assert_eq!(
            parse_instant("2024-09-08", santiago).unwrap(),
            utc("2024-09-08T04:00:00Z")
        );
    }

    #[test]
    fn rfc3339_with_offsets_and_fractions() {
        let tz = Tz::Europe__Istanbul;
        assert_eq!(
            parse_instant("2025-11-28T12:30:00.5+03:00", tz).unwrap(),
            utc("2025-11-28T09:30:00.5Z")
        );
        assert_eq!(
            parse_instant("2025-11-28T09:30:00Z", tz).unwrap(),
            utc("2025-11-28T09:30:00Z")
        );
        assert_eq!(
            parse_instant("2025-11-28T09:30:00.123456-01:30", tz).unwrap(),
            utc("2025-11-28T11:00:00.123456Z")
        );
        assert_eq!(
            parse_instant("2025-11-28t09:30:00z", tz).unwrap(),
            utc("2025-11-28T09:30:00Z")
        );
    }

    #[test]
    fn other_instant_spellings_are_refused() {
        for text in [
            "2025-11-28T12:30:00.1234567+03:00", // 7 fractional digits
            "2025-11-28T09:30:00",               // no offset
            "2025-11-28 09:30:00Z",              // space for T
            "2025-11-28T09:30Z",                 // no seconds
            "2025-11-28T24:00:00Z",
            "2025-11-28T23:59:60Z", // leap second
            "2025-02-30",
            "2025-11-28T09:30:00.Z",
            "2025-11-28T09:30:00+0300",
            "2025-11-28T09:30:00+24:00",
            "28.11.2025",
            "2025-1-28",
            "20251128",
            "",
            "2025-11-28Z",
            "2025-11-28T09:30:00Z ",
            "２０２５-11-28",
        ] {
            assert!(parse_instant(text, Tz::UTC).is_err(), "{text}");
        }
        let Err(Error::Syntax { reason, .. }) =
            parse_instant("2025-11-28T12:30:00.1234567+03:00", Tz::UTC)
        else {
            panic!("expected a syntax error")
        };
        assert!(reason.contains("at most 6"), "{reason}");
    }

    #[test]
    fn instants_format_in_utc_and_read_back() {
        let at = parse_instant("2025-11-28T12:30:00.5+03:00", Tz::UTC).unwrap();
        assert_eq!(format_instant(&at), "2025-11-28T09:30:00.500Z");
        let whole = parse_instant("2025-11-28", Tz::Europe__Istanbul).unwrap();
        assert_eq!(format_instant(&whole), "2025-11-27T21:00:00Z");
        let micro = parse_instant("2025-11-28T00:00:00.000001Z", Tz::UTC).unwrap();
        assert_eq!(format_instant(&micro), "2025-11-28T00:00:00.000001Z");
        for at in [at, whole, micro] {
            assert_eq!(
                parse_instant(&format_instant(&at), Tz::Asia__Tokyo).unwrap(),
                at
            );
        }
    }

    #[test]
    fn durations() {
        let d: Duration = "30d".parse().unwrap();
        assert_eq!((d.amount(), d.unit()), (30, DurationUnit::Days));
        assert_eq!(d.seconds(), 30 * 86_400);
        assert_eq!(d.to_string(), "30d");
        assert_eq!("24h".parse::<Duration>().unwrap().seconds(), 86_400);
        assert_eq!("2w".parse::<Duration>().unwrap().seconds(), 14 * 86_400);
        assert_eq!("90m".parse::<Duration>().unwrap().micros(), 5_400_000_000);
        assert_eq!("999999w".parse::<Duration>().unwrap().amount(), 999_999);
        assert_ne!(
            "24h".parse::<Duration>().unwrap(),
            "1d".parse::<Duration>().unwrap()
        );
        for text in [
            "", "d", "0d", "030d", "1000000d", "30", "30s", "30D", "1.5d", "-1d", "30 d", " 30d",
            "3٠d",
        ] {
            assert!(text.parse::<Duration>().is_err(), "{text}");
        }
    }
}
