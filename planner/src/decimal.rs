//! Exact decimal numbers for comparison values.
//!
//! The spec compares JSON numbers "by their exact decimal value, never rounded to the column's
//! type": `rating gte 4.5` must be false for 4 and `amount gt 37.535` true for 37.54. A float
//! would already have rounded `37.535`, so values are kept as a mantissa and a decimal scale.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// The most significant digits a [`Decimal`] holds: that of Arrow's `Decimal128`, the widest
/// decimal a column of the store has, so any value can be compared against any column exactly.
pub const MAX_DIGITS: usize = 38;

const ALLOWED: &str = "a number of at most 38 significant digits and 38 decimal places";

/// An exact decimal number: `mantissa × 10^-scale`.
///
/// Always normalised (no trailing zero in the fraction, zero has scale 0), so that derived
/// equality is equality of value: `4.50`, `4.5` and `45e-1` are the same `Decimal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    mantissa: i128,
    scale: u8,
}

impl Decimal {
    /// Zero, the value of `count` and `sum` when no event matches.
    pub const ZERO: Decimal = Decimal {
        mantissa: 0,
        scale: 0,
    };

    /// `mantissa × 10^-scale`, normalised; `None` when the value needs more than
    /// [`MAX_DIGITS`] digits or decimal places.
    pub fn new(mantissa: i128, scale: u8) -> Option<Decimal> {
        let (mut mantissa, mut scale) = (mantissa, scale);
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        if mantissa == 0 {
            scale = 0;
        }
        let digits = mantissa
            .unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d + 1);
        (digits as usize <= MAX_DIGITS && scale as usize <= MAX_DIGITS)
            .then_some(Decimal { mantissa, scale })
    }

    /// The integer `m` with `self == m × 10^-scale()`.
    pub fn mantissa(&self) -> i128 {
        self.mantissa
    }

    /// The number of decimal places (0 for an integer).
    pub fn scale(&self) -> u8 {
        self.scale
    }

    /// Whether the value is a whole number (bucket bounds must be).
    pub fn is_integer(&self) -> bool {
        self.scale == 0
    }

    /// The value as an integer, when it is one.
    pub fn to_integer(&self) -> Option<i128> {
        self.is_integer().then_some(self.mantissa)
    }

    /// The mantissa at `scale` decimal places, when that is exact and fits: what a compiler
    /// needs to compare against a `Decimal128(p, scale)` column without rounding
    /// (`37.535` has none at scale 2; `4.5` is `450` at scale 2).
    pub fn mantissa_at_scale(&self, scale: u8) -> Option<i128> {
        if scale >= self.scale {
            10i128
                .checked_pow(u32::from(scale - self.scale))
                .and_then(|f| self.mantissa.checked_mul(f))
        } else {
            None
        }
    }

    /// The nearest 64-bit float, for comparing against float columns and for the percent
    /// thresholds the spec computes in doubles.
    pub fn to_f64(&self) -> f64 {
        // Rust's float parsing is correctly rounded, so this is the nearest double.
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// The exact value of a JSON number.
    ///
    /// Reads the number's text (`Number`'s `Display`), so it is exact whatever serde_json
    /// keeps: with its `arbitrary_precision` feature, the number as written; without it, an
    /// integer exactly or a float as the shortest decimal that reads back as the same double —
    /// which is the number as written whenever it has at most 15 significant digits.
    pub fn from_json(number: &serde_json::Number) -> Result<Decimal, Error> {
        number.to_string().parse()
    }

    /// This value as a JSON number, for writing definitions back out. Integers become JSON
    /// integers; other values are parsed from their exact text, so they read back (through
    /// [`Decimal::from_json`]) as the same `Decimal`.
    pub fn to_json(&self) -> serde_json::Number {
        if let Some(i) = self.to_integer() {
            if let Ok(i) = i64::try_from(i) {
                return i.into();
            }
            if let Ok(u) = u64::try_from(i) {
                return u.into();
            }
        }
        self.to_string()
            .parse()
            .unwrap_or_else(|_| serde_json::Number::from(0))
    }
}

impl From<i64> for Decimal {
    /// An integer, exactly (any `i64` has at most 19 digits).
    fn from(value: i64) -> Decimal {
        Decimal {
            mantissa: i128::from(value),
            scale: 0,
        }
    }
}

impl FromStr for Decimal {
    type Err = Error;

    /// Parses JSON's number syntax (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`) exactly.
    fn from_str(text: &str) -> Result<Decimal, Error> {
        let bad = |reason: &str| Error::syntax(text, ALLOWED, reason);
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa_text, exponent_text) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (int_part, frac_part) = match mantissa_text.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (mantissa_text, None),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int_part) || (int_part.len() > 1 && int_part.starts_with('0')) {
            return Err(bad("not a JSON number"));
        }
        if let Some(f) = frac_part
            && !all_digits(f)
        {
            return Err(bad("not a JSON number"));
        }
        let exponent: i64 = match exponent_text {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if !all_digits(digits) {
                    return Err(bad("not a JSON number"));
                }
                // Anything this large cannot fit anyway; refuse before allocating zeros.
                if digits.trim_start_matches('0').len() > 6 {
                    return Err(bad("the exponent is too large"));
                }
                let magnitude: i64 = digits.parse().map_err(|_| bad("not a JSON number"))?;
                if e.starts_with('-') {
                    -magnitude
                } else {
                    magnitude
                }
            }
        };
        let frac = frac_part.unwrap_or("");
        let mut digits: String = format!("{int_part}{frac}")
            .trim_start_matches('0')
            .to_string();
        // value = digits × 10^-(frac.len() - exponent)
        let mut scale = frac.len() as i64 - exponent;
        if digits.is_empty() {
            return Ok(Decimal::ZERO);
        }
        while scale > 0 && digits.ends_with('0') {
            digits.pop();
            scale -= 1;
        }
        if scale < 0 {
            if digits.len() as i64 - scale > MAX_DIGITS as i64 {
                return Err(bad("too many digits"));
            }
            digits.extend(std::iter::repeat_n('0', (-scale) as usize));
            scale = 0;
        }
        if digits.len() > MAX_DIGITS {
            return Err(bad("too many significant digits"));
        }
        if scale > MAX_DIGITS as i64 {
            return Err(bad("too many decimal places"));
        }
        let magnitude: i128 = digits.parse().map_err(|_| bad("not a JSON number"))?;
        let mantissa = if negative { -magnitude } else { magnitude };
        Decimal::new(mantissa, scale as u8).ok_or_else(|| bad("too many digits"))
    }
}

impl fmt::Display for Decimal {
    /// The exact value in plain decimal notation (no exponent): `37.535`, `-0.001`, `100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let sign = |d: &Decimal| d.mantissa.signum();
        match sign(self).cmp(&sign(other)) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
        // Same sign: bring both to the larger scale. Only the side with the smaller scale is
        // multiplied; if that overflows i128 its magnitude exceeds any 38-digit mantissa.
        let scale = self.scale.max(other.scale);
        let a = self.mantissa_at_scale(scale);
        let b = other.mantissa_at_scale(scale);
        match (a, b) {
            (Some(a), Some(b)) => a.cmp(&b),
            (None, _) if sign(self) > 0 => Ordering::Greater,
            (None, _) => Ordering::Less,
            (_, None) if sign(other) > 0 => Ordering::Less,
            (_, None) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    fn from_json_text(text: &str) -> Decimal {
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        Decimal::from_json(value.as_number().unwrap()).unwrap()
    }

    #[test]
    fn json_numbers_are_exact_decimals() {
        let amount = from_json_text("37.535");
        assert_eq!((amount.mantissa(), amount.scale()), (37535, 3));
        assert_eq!(amount.to_string(), "37.535");
        let rating = from_json_text("4.5");
        assert_eq!((rating.mantissa(), rating.scale()), (45, 1));
        let hundred = from_json_text("1e2");
        assert_eq!((hundred.mantissa(), hundred.scale()), (100, 0));
        assert!(hundred.is_integer());
        assert_eq!(from_json_text("0.1"), d("0.1"));
        assert_eq!(from_json_text("-0.000001"), d("-1e-6"));
        assert_eq!(from_json_text("123456789012345"), d("123456789012345"));
        assert_eq!(
            from_json_text("18446744073709551615").to_string(),
            "18446744073709551615"
        );
        assert_eq!(from_json_text("1.5E+3"), d("1500"));
        assert_eq!(from_json_text("2.50"), d("2.5"));
    }

    #[test]
    fn comparisons_are_exact() {
        assert!(d("5") >= d("4.5"));
        assert!(d("4") < d("4.5"));
        assert!(d("37.54") > d("37.535"));
        assert!(d("37.53") < d("37.535"));
        assert!(d("-1.5") < d("-1.25"));
        assert!(d("-1") < d("0"));
        assert_eq!(d("4.50").cmp(&d("4.5")), Ordering::Equal);
        let big = Decimal::new(10i128.pow(37), 0).unwrap();
        let tiny = Decimal::new(1, 38).unwrap();
        assert!(big > tiny);
        assert!(-big.mantissa() < tiny.mantissa());
        let neg_big = Decimal::new(-(10i128.pow(37)), 0).unwrap();
        assert!(neg_big < Decimal::new(-1, 38).unwrap());
    }

    #[test]
    fn scales_convert_only_when_exact() {
        assert_eq!(d("4.5").mantissa_at_scale(2), Some(450));
        assert_eq!(d("37.535").mantissa_at_scale(2), None);
        assert_eq!(d("100").mantissa_at_scale(0), Some(100));
        assert_eq!(d("37.535").to_f64(), 37.535);
    }

    #[test]
    fn json_round_trip_keeps_the_value() {
        for text in [
            "37.535",
            "4.5",
            "0",
            "-12",
            "1e2",
            "0.000001",
            "99999999999999.99",
        ] {
            let value = from_json_text(text);
            let json = serde_json::Value::Number(value.to_json());
            let back = Decimal::from_json(json.as_number().unwrap()).unwrap();
            assert_eq!(back, value, "{text}");
        }
    }

    #[test]
    fn bad_numbers_are_refused() {
        for text in [
            "",
            "-",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "abc",
            "1.2.3",
            "1e400",
            "1e-400",
            "1e1000000000",
        ] {
            assert!(text.parse::<Decimal>().is_err(), "{text}");
        }
        assert!("1".repeat(39).parse::<Decimal>().is_err());
        assert!("1".repeat(38).parse::<Decimal>().is_ok());
        assert!(
            "0.0000000000000000000000000000000000001"
                .parse::<Decimal>()
                .is_ok()
        );
        assert!("1e-39".parse::<Decimal>().is_err());
        assert_eq!(d("0e99999"), Decimal::ZERO);
        assert_eq!(d("-0.0"), Decimal::ZERO);
    }
}
