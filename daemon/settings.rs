//! Numbers the daemon reads from its own environment (`HOARD_*` settings of the daemon itself,
//! never npm configuration, which comes with each request): read in one way.
//!
//! Must not: read anything but the daemon's own settings.

/// `key` as a number, or `default` when it is unset or not a number.
pub fn number(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
