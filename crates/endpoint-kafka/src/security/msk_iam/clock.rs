//! UTC calendar arithmetic for SigV4 timestamps (`20150830T123600Z`) and STS expirations
//! (`2025-01-15T09:30:00Z`): two conversions do not justify a date crate. The day counting is
//! Howard Hinnant's `days_from_civil`/`civil_from_days`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECONDS_PER_DAY: u64 = 86_400;

/// Whole seconds since the epoch; 0 for a time before it.
pub(super) fn epoch_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// `YYYYMMDDTHHMMSSZ`, the `X-Amz-Date` form.
pub(super) fn amz_date(time: SystemTime) -> String {
    let seconds = epoch_seconds(time);
    let (year, month, day) = civil_from_days((seconds / SECONDS_PER_DAY) as i64);
    let of_day = seconds % SECONDS_PER_DAY;
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", of_day / 3600, of_day / 60 % 60, of_day % 60)
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the form of STS's `Expiration`.
pub(super) fn parse_utc(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let number = |range: std::ops::Range<usize>| -> Option<u64> {
        let digits = text.get(range)?;
        digits.bytes().all(|b| b.is_ascii_digit()).then(|| digits.parse().ok())?
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !separators.iter().all(|&(at, expected)| text.as_bytes().get(at) == Some(&expected)) {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let rest = text.get(19..)?;
    let fraction = rest.strip_suffix('Z').unwrap_or(rest);
    let millis = match fraction.strip_prefix('.') {
        None if fraction.is_empty() => 0,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{digits:0<3}").get(..3)?.parse().ok()?
        }
        _ => return None,
    };
    let days = u64::try_from(days_from_civil(year as i64, month as u32, day as u32)).ok()?;
    let seconds = days * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis))
}

fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = i64::from(if month > 2 { month - 3 } else { month + 9 });
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    #[test]
    fn formats_amz_dates() {
        assert_eq!(amz_date(at(0)), "19700101T000000Z");
        assert_eq!(amz_date(at(1_440_938_160)), "20150830T123600Z");
        assert_eq!(amz_date(at(1_709_164_800)), "20240229T000000Z");
        assert_eq!(amz_date(at(1_736_929_800)), "20250115T083000Z");
        assert_eq!(amz_date(at(4_107_542_399)), "21000228T235959Z");
        assert_eq!(amz_date(UNIX_EPOCH - Duration::from_secs(5)), "19700101T000000Z");
    }

    #[test]
    fn parses_sts_expirations() {
        assert_eq!(parse_utc("2015-08-30T12:36:00Z"), Some(at(1_440_938_160)));
        assert_eq!(parse_utc("2024-02-29T00:00:00Z"), Some(at(1_709_164_800)));
        assert_eq!(parse_utc(" 2025-01-15T08:30:00.5Z "), Some(at(1_736_929_800) + Duration::from_millis(500)));
        assert_eq!(parse_utc("2025-01-15T08:30:00.123456Z"), Some(at(1_736_929_800) + Duration::from_millis(123)));
        assert_eq!(parse_utc("2025-01-15T08:30:00"), Some(at(1_736_929_800)));
        let bad = [
            "",
            "2025-01-15",
            "2025-13-01T00:00:00Z",
            "2025-01-15T24:00:00Z",
            "2025-01-15T08:30:00.Z",
            "2025-01-15 08:30:00Z",
            "+025-01-15T08:30:00Z",
            "2025-01-15T08:30:00+01:00",
            "1969-12-31T23:59:59Z",
            "2025-01-15T08:30:0é",
        ];
        for bad in bad {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn day_counting_round_trips() {
        for days in [-800_000, -1, 0, 59, 60, 10_957, 19_782, 1_000_000] {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }
}
