//! Human renderings of measured values.

/// `1536` → `1.5 KiB`.
pub(crate) fn format_bytes(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `0.0123` → `12.3 ms`.
pub(crate) fn format_seconds(seconds: f64) -> String {
    if seconds.abs() >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds.abs() >= 1e-3 {
        format!("{:.1} ms", seconds * 1e3)
    } else {
        format!("{:.0} µs", seconds * 1e6)
    }
}

/// A value with its unit, for tables and messages.
pub(crate) fn format_value(value: f64, unit: &str) -> String {
    match unit {
        "bytes" => format_bytes(value),
        "seconds" => format_seconds(value),
        "percent" => format!("{value:.1}%"),
        "count" => format!("{value:.0}"),
        "bytes/s" => format!("{}/s", format_bytes(value)),
        "ratio" | "load" => format!("{value:.2}"),
        other => format!("{value} {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_units() {
        assert_eq!(format_bytes(512.0), "512 B");
        assert_eq!(format_bytes(1536.0), "1.5 KiB");
        assert_eq!(format_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(format_seconds(0.0123), "12.3 ms");
        assert_eq!(format_seconds(2.5), "2.50 s");
        assert_eq!(format_seconds(0.000_05), "50 µs");
        assert_eq!(format_value(87.25, "percent"), "87.2%");
        assert_eq!(format_value(3.0, "widgets"), "3 widgets");
    }
}
