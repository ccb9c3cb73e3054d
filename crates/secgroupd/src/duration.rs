//! Durations on the command line: `5d`, `2h30m`, `90s`, `500ms`, or a bare
//! number of seconds.

use std::time::Duration;

/// Parses `[N unit]...` with units `d`, `h`, `m`, `s`, `ms`, or a bare
/// number of seconds. Zero is refused: a zero conntrack timeout would
/// expire every flow at once.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return nonzero(Duration::from_secs(secs), text);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("{text:?}: expected a number at {rest:?}"));
        }
        let value: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ms: u64 = match &rest[..unit_len] {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1_000,
            "ms" => 1,
            "" => {
                return Err(format!(
                    "{text:?}: a unit (d, h, m, s, ms) must follow {value}"
                ));
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?}; use d, h, m, s or ms"
                ));
            }
        };
        rest = &rest[unit_len..];
        let part = value
            .checked_mul(unit_ms)
            .map(Duration::from_millis)
            .ok_or_else(|| format!("{text:?}: duration too large"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{text:?}: duration too large"))?;
    }
    nonzero(total, text)
}

fn nonzero(duration: Duration, text: &str) -> Result<Duration, String> {
    if duration.is_zero() {
        Err(format!("{text:?}: must be longer than zero"))
    } else {
        Ok(duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<Duration, &str>) {
        assert_eq!(
            parse(input),
            expected.map_err(str::to_owned),
            "parse({input:?})"
        );
    }

    #[test]
    fn durations() {
        let s = Duration::from_secs;
        check("5d", Ok(s(5 * 86_400)));
        check("120", Ok(s(120)));
        check("2h30m", Ok(s(9_000)));
        check("1m30s", Ok(s(90)));
        check("500ms", Ok(Duration::from_millis(500)));
        check(" 30s ", Ok(s(30)));
        check("0", Err("\"0\": must be longer than zero"));
        check("0s", Err("\"0s\": must be longer than zero"));
        check("", Err("empty duration"));
        check(
            "5x",
            Err("\"5x\": unknown unit \"x\"; use d, h, m, s or ms"),
        );
        check("h", Err("\"h\": expected a number at \"h\""));
        check("5m3", Err("\"5m3\": a unit (d, h, m, s, ms) must follow 3"));
        check("-5s", Err("\"-5s\": expected a number at \"-5s\""));
    }
}
