//! The one duration syntax of every racker option and fault
//! (docs/output.md): plain seconds (`900`, `0.5`) or humantime's units
//! (`90s`, `15m`, `1h 30m`, `500ms`).

use std::time::Duration;

/// A text that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {text:?}: {reason}; expected seconds or e.g. 500ms, 90s, 15m, 1h30m")]
pub struct ParseDurationError {
    text: String,
    reason: String,
}

/// Parse a duration: a non-negative number of seconds, or a number with
/// units (`ms`, `s`, `m`, `h`, `d`, combinable: `1h 30m`).
///
/// ```
/// use std::time::Duration;
/// use racker_inventory::parse_duration;
/// assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
/// assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, ParseDurationError> {
    let err = |reason: String| ParseDurationError {
        text: text.to_owned(),
        reason,
    };
    let t = text.trim();
    if t.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && let Ok(secs) = t.parse::<f64>()
    {
        return Duration::try_from_secs_f64(secs).map_err(|e| err(e.to_string()));
    }
    humantime::parse_duration(t).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn seconds_or_units() {
        let d = |s: &str| parse_duration(s).unwrap();
        assert_eq!(d("900"), Duration::from_secs(900));
        assert_eq!(d("0.5"), Duration::from_millis(500));
        assert_eq!(d("0"), Duration::ZERO);
        assert_eq!(d(" 15m "), Duration::from_secs(900));
        assert_eq!(d("1h30m"), Duration::from_secs(5400));
        assert_eq!(d("1h 30m"), Duration::from_secs(5400));
        assert_eq!(d("500ms"), Duration::from_millis(500));
        assert_eq!(d("2s"), Duration::from_secs(2));
        for bad in ["", "-1", "15 parsecs", "m", "1e400", "NaN", "inf", "soon"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(parse_duration("x").unwrap_err().to_string().contains("15m"));
    }

    proptest! {
        #[test]
        fn any_text_is_a_duration_or_an_error(s in ".{0,20}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn milliseconds_round_trip(ms in 0u64..10_000_000) {
            let d = Duration::from_millis(ms);
            let text = humantime::format_duration(d).to_string();
            prop_assert_eq!(parse_duration(&text).unwrap(), d);
            let secs = parse_duration(&format!("{}", ms as f64 / 1000.0)).unwrap();
            prop_assert!((secs.as_secs_f64() - d.as_secs_f64()).abs() < 1e-6);
        }
    }
}
