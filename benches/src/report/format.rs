//! Numbers as the table shows them.

pub fn ns(v: f64) -> String {
    format!("{v:.0} ns")
}

pub fn ratio(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}×")
    } else {
        format!("{v:.2}×")
    }
}

/// What a ratio adds, as a signed percentage: 1.042 is "+4.2%".
pub fn added(ratio: f64) -> String {
    format!("{:+.1}%", (ratio - 1.0) * 100.0)
}

pub fn kpps(pps: f64) -> String {
    format!("{:.0}k", pps / 1e3)
}

/// Milliseconds with three significant digits at most, never fewer than
/// one decimal below 10 ms.
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else if v >= 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.2} ms")
    }
}

pub fn bytes(v: f64) -> String {
    const KIB: f64 = 1024.0;
    if v >= KIB * KIB {
        format!("{:.1} MiB", v / KIB / KIB)
    } else if v >= KIB {
        format!("{:.1} KiB", v / KIB)
    } else {
        format!("{v:.0} B")
    }
}

pub fn count(v: f64) -> String {
    let n = v.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let cases: [(String, &str); 14] = [
            (ns(344.6), "345 ns"),
            (ratio(1.234), "1.23×"),
            (ratio(12.6), "13×"),
            (added(1.0423), "+4.2%"),
            (added(0.97), "-3.0%"),
            (kpps(173_353.2), "173k"),
            (ms(1063.3), "1063 ms"),
            (ms(59.95), "60.0 ms"),
            (ms(0.523), "0.52 ms"),
            (bytes(122_381_424.0), "116.7 MiB"),
            (bytes(2048.0), "2.0 KiB"),
            (bytes(392.0), "392 B"),
            (count(2_011_054.0), "2,011,054"),
            (count(0.0), "0"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
