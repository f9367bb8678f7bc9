//! The shop's calendar: how busy each day is, what it costs, which campaigns go out.
//!
//! A day's character is a pure function of its date (weekday, Black Friday week, 11.11, the
//! new-year gift season), so the same date behaves the same in every generated period.

use chrono::{Datelike, Duration, NaiveDate, Weekday};

use super::catalog::MONTH_SLUGS;

/// Microseconds in a day.
pub(crate) const DAY_US: i64 = 86_400_000_000;
/// Microseconds in an hour.
pub(crate) const HOUR_US: i64 = 3_600_000_000;

/// Days since 1970-01-01 (the day number used in every hash, so that a date means the same
/// thing whatever period it is generated in).
pub(crate) fn day_number(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    (date - epoch).num_days() as i32
}

/// The date of a day number.
pub(crate) fn date_of(day: i32) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or(NaiveDate::MIN);
    epoch + Duration::days(i64::from(day))
}

/// The last Friday of November of `year`: Black Friday ("Efsane Cuma").
pub(crate) fn black_friday(year: i32) -> NaiveDate {
    let mut date = NaiveDate::from_ymd_opt(year, 11, 30).unwrap_or(NaiveDate::MIN);
    while date.weekday() != Weekday::Fri {
        date = date.pred_opt().unwrap_or(date);
    }
    date
}

/// What one day is like.
pub(crate) struct DayInfo {
    /// Day number (days since 1970-01-01).
    pub day: i32,
    /// `YYYYMMDD`, the day's part of event, session and order ids.
    pub ymd: String,
    /// Multiplier on how many customers visit.
    pub activity: f64,
    /// Multiplier on how likely a visit ends with an order.
    pub order: f64,
    /// Multiplier on list prices (discount days are below 1).
    pub price: f64,
    /// The e-mail campaign sent this day, if any.
    pub email: Option<String>,
    /// The SMS campaign sent this day, if any.
    pub sms: Option<String>,
    /// Whether this is one of the big discount days (campaigns go to everybody who may get
    /// them, and more people open them).
    pub peak: bool,
}

impl DayInfo {
    /// Describes the day `date`.
    pub(crate) fn new(date: NaiveDate) -> Self {
        let weekday = date.weekday();
        let mut activity = match weekday {
            Weekday::Mon => 0.96,
            Weekday::Tue => 0.97,
            Weekday::Wed => 0.95,
            Weekday::Thu => 0.98,
            Weekday::Fri => 1.0,
            Weekday::Sat => 1.1,
            Weekday::Sun => 1.16,
        };
        let (mut order, mut price, mut peak) = (1.0, 1.0, false);
        let bf = black_friday(date.year());
        let delta = (date - bf).num_days();
        match delta {
            -8..=-2 => {
                activity *= 1.35;
                order = 1.1;
            }
            -1 => {
                activity *= 1.9;
                order = 1.1;
            }
            0 => {
                activity *= 5.0;
                order = 1.8;
                price = 0.7;
                peak = true;
            }
            1 => {
                activity *= 3.0;
                order = 1.5;
                price = 0.75;
                peak = true;
            }
            2 => {
                activity *= 2.3;
                order = 1.4;
                price = 0.8;
            }
            3 => {
                activity *= 2.6;
                order = 1.5;
                price = 0.8;
                peak = true;
            }
            _ => {}
        }
        match (date.month(), date.day()) {
            (11, 11) => {
                activity *= 2.0;
                order = 1.3;
                price = 0.85;
                peak = true;
            }
            (12, 20..=31) => activity *= 1.15,
            (1, 1) => activity *= 0.7,
            (2, 14) => activity *= 1.3,
            _ => {}
        }

        let month = MONTH_SLUGS[date.month0() as usize];
        let prefix = |kind: &str| format!("{kind}-{}-{:02}", date.year(), date.month());
        // Regular e-mails go out on Tuesdays and Fridays, SMS on Thursdays; the n-th send of a
        // month gets `-n` appended from the second on.
        let nth = |days: &[Weekday]| {
            (1..=date.day())
                .filter_map(|d| date.with_day(d))
                .filter(|d| days.contains(&d.weekday()))
                .count()
        };
        let numbered = |kind: &str, n: usize| {
            if n <= 1 {
                format!("{}-{month}", prefix(kind))
            } else {
                format!("{}-{month}-{n}", prefix(kind))
            }
        };
        let email = match (delta, weekday) {
            (0, _) => Some(format!("{}-black-friday", prefix("cmp"))),
            (-1, _) => Some(format!("{}-black-friday-yarin", prefix("cmp"))),
            (3, _) => Some(format!("{}-cyber-monday", prefix("cmp"))),
            (_, Weekday::Tue | Weekday::Fri) => {
                Some(numbered("cmp", nth(&[Weekday::Tue, Weekday::Fri])))
            }
            _ if (date.month(), date.day()) == (11, 11) => {
                Some(format!("{}-11-11-indirimleri", prefix("cmp")))
            }
            _ => None,
        };
        let sms = match (delta, weekday) {
            (0, _) => Some(format!("{}-black-friday", prefix("sms"))),
            (3, _) => Some(format!("{}-cyber-monday", prefix("sms"))),
            (_, Weekday::Thu) => Some(numbered("sms", nth(&[Weekday::Thu]))),
            _ => None,
        };
        Self {
            day: day_number(date),
            ymd: date.format("%Y%m%d").to_string(),
            activity,
            order,
            price,
            email,
            sms,
            peak,
        }
    }

    /// Start of the day in microseconds since the epoch (UTC).
    pub(crate) fn start_us(&self) -> i64 {
        i64::from(self.day) * DAY_US
    }
}

/// The calendar of every day the generator looks at: the period itself and, before it, the
/// days whose orders are still being delivered, refunded or reviewed inside it.
pub(crate) struct Calendar {
    first: i32,
    days: Vec<DayInfo>,
}

impl Calendar {
    /// The days `first ..= last` (day numbers).
    pub(crate) fn new(first: i32, last: i32) -> Self {
        Self {
            first,
            days: (first..=last).map(|d| DayInfo::new(date_of(d))).collect(),
        }
    }

    /// The day `day`; it must lie inside the calendar.
    pub(crate) fn get(&self, day: i32) -> &DayInfo {
        &self.days[(day - self.first) as usize]
    }
}

/// Relative weight of each hour of the day, in Turkish local time (UTC+3): quiet nights, a
/// lunch bump, the evening peak after work.
const TR_HOUR_WEIGHTS: [u32; 24] = [
    30, 18, 10, 6, 4, 4, 6, 14, 30, 48, 60, 68, 76, 74, 70, 70, 72, 80, 92, 110, 128, 136, 112, 64,
];

/// Per UTC hour, the weight of the Turkish local hour three hours later.
pub(crate) fn utc_hour_weights() -> [u32; 24] {
    let mut weights = [0; 24];
    for (hour, w) in weights.iter_mut().enumerate() {
        *w = TR_HOUR_WEIGHTS[(hour + 3) % 24];
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn black_friday_and_campaigns() {
        assert_eq!(
            black_friday(2025),
            NaiveDate::from_ymd_opt(2025, 11, 28).unwrap()
        );
        assert_eq!(
            black_friday(2024),
            NaiveDate::from_ymd_opt(2024, 11, 29).unwrap()
        );
        let bf = DayInfo::new(NaiveDate::from_ymd_opt(2025, 11, 28).unwrap());
        assert!(bf.activity > 4.0 && bf.peak);
        assert_eq!(bf.email.as_deref(), Some("cmp-2025-11-black-friday"));
        let tuesday = DayInfo::new(NaiveDate::from_ymd_opt(2025, 11, 4).unwrap());
        assert_eq!(tuesday.email.as_deref(), Some("cmp-2025-11-kasim"));
        let friday = DayInfo::new(NaiveDate::from_ymd_opt(2025, 11, 7).unwrap());
        assert_eq!(friday.email.as_deref(), Some("cmp-2025-11-kasim-2"));
        assert_eq!(day_number(date_of(20_000)), 20_000);
    }
}
