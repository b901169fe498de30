//! Turning what an HTTP storyteller meets (status codes, `Retry-After`, dropped connections)
//! into [`StoryError`]s, one rule for every provider.
//!
//! 429 is a rate limit (the job waits, its attempt refunded, honouring `Retry-After`), 5xx is
//! transient, 401/403 pause the storyteller, other 4xx are permanent; timeouts and connection
//! errors are transient.

use super::StoryError;
use std::time::{Duration, SystemTime};

/// The longest `Retry-After` we honour; a server asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER));
    }
    let when = parse_http_date(value)?;
    Some(
        when.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the only date form servers send today.
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let mut parts = value.split_whitespace();
    let _weekday = parts.next()?;
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':');
    let hour: u64 = clock.next()?.parse().ok()?;
    let minute: u64 = clock.next()?.parse().ok()?;
    let second: u64 = clock.next()?.parse().ok()?;
    if parts.next()? != "GMT" || day == 0 || day > 31 || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day as i64);
    let seconds = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

/// Parses an RFC 3339 time in UTC (`2026-12-04T10:00:00.123456Z`, as Google's APIs write
/// them) into ms since the Unix epoch.
pub fn parse_rfc3339_ms(value: &str) -> Option<i64> {
    let value = value.trim();
    let (date, time) = value.split_once(['T', 't'])?;
    let mut ymd = date.splitn(3, '-');
    let year: i64 = ymd.next()?.parse().ok()?;
    let month: i64 = ymd.next()?.parse().ok()?;
    let day: i64 = ymd.next()?.parse().ok()?;
    let (clock, offset_ms) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let split = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(split);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (hours, minutes) = offset[1..].split_once(':')?;
        let minutes = hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?;
        (clock, sign * minutes * 60_000)
    };
    let mut hms = clock.splitn(3, ':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let seconds: f64 = hms.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let ms = (days * 86_400 + hour * 3600 + minute * 60) * 1000 + (seconds * 1000.0) as i64;
    Some(ms - offset_ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The error for a non-success HTTP status from `provider`; `body` is shown (shortened) to people.
pub fn error_for_status(
    provider: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
) -> StoryError {
    let detail = short_detail(body);
    match status {
        401 | 403 => StoryError::Auth {
            message: format!(
                "{provider} refused the API key (HTTP {status}){detail}; check the key in settings, then resume the storyteller"
            ),
        },
        429 => StoryError::RateLimited {
            message: format!("{provider} asked us to slow down (HTTP 429){detail}"),
            retry_after,
        },
        408 | 425 => StoryError::Transient {
            message: format!("{provider} is busy (HTTP {status}){detail}"),
            retry_after,
        },
        500..=599 => StoryError::Transient {
            message: format!("{provider} had a server error (HTTP {status}){detail}"),
            retry_after,
        },
        _ => StoryError::Permanent {
            message: format!("{provider} rejected the request (HTTP {status}){detail}"),
        },
    }
}

/// The error for a request that got no response (timeout, refused or dropped connection).
pub fn error_for_transport(provider: &str, error: &reqwest::Error) -> StoryError {
    let what = if error.is_timeout() {
        "did not answer in time"
    } else if error.is_connect() {
        "could not be reached"
    } else {
        "dropped the connection"
    };
    StoryError::transient(format!("{provider} {what}: {error}"))
}

/// Sends `request`, turning a non-2xx response or a transport failure into a [`StoryError`].
pub async fn send_checked(
    provider: &str,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, StoryError> {
    let response = request
        .send()
        .await
        .map_err(|e| error_for_transport(provider, &e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let body = response.text().await.unwrap_or_default();
    Err(error_for_status(
        provider,
        status.as_u16(),
        retry_after,
        &body,
    ))
}

fn short_detail(body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    // Providers wrap the useful sentence in JSON: prefer error.message when there is one.
    let message = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.pointer("/error"))
                .or_else(|| v.pointer("/message"))
                .and_then(|m| m.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| body.to_owned());
    let mut short: String = message.chars().take(200).collect();
    if message.chars().count() > 200 {
        short.push('…');
    }
    format!(": {short}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn rfc3339_times_as_google_writes_them() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ms("1994-11-06T08:49:37.250Z"),
            Some(784_111_777_250)
        );
        assert_eq!(
            parse_rfc3339_ms("1994-11-06T00:49:37-08:00"),
            Some(784_111_777_000)
        );
        assert_eq!(parse_rfc3339_ms("tomorrow"), None);
    }

    #[test]
    fn statuses_map_to_kinds() {
        use crate::job::ErrorKind::*;
        let kind = |s| error_for_status("Test", s, None, "").kind();
        assert_eq!(kind(429), RateLimited);
        assert_eq!(kind(503), Transient);
        assert_eq!(kind(500), Transient);
        assert_eq!(kind(401), Auth);
        assert_eq!(kind(403), Auth);
        assert_eq!(kind(400), Permanent);
        assert_eq!(kind(404), Permanent);
        let e = error_for_status(
            "Test",
            400,
            None,
            r#"{"error":{"message":"video too long"}}"#,
        );
        assert_eq!(
            e.to_string(),
            "Test rejected the request (HTTP 400): video too long"
        );
    }
}
