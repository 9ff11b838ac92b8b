//! The release-age cooldown, with the settings users already write: npm's `before=<date>` and
//! `min-release-age=<days>` (with `min-release-age-exclude`), and pnpm's
//! `minimum-release-age=<minutes>` (with `minimum-release-age-exclude`), read from one
//! request's npm configuration. Answers: the publication cutoff for a package name, and the words
//! that explain it.
//!
//! npm's rules: `before` wins over `min-release-age`; a version the packument gives no time for
//! passes; excluded names (exact, or minimatch-style globs such as `@myorg/*`) are exempt, but
//! not their dependencies. When npm's and pnpm's settings are both given, the stricter (earlier)
//! cutoff applies.
//!
//! Must not: fetch or pick (pick.rs applies the cutoff).

use crate::registry::config::NpmConfig;

const DAY_MS: f64 = 86_400_000.0;
const MINUTE_MS: f64 = 60_000.0;

/// A cutoff: versions published after it are too young.
#[derive(Debug, Clone)]
pub struct Cooldown {
    /// ms since the epoch.
    pub cutoff_ms: i64,
    /// The setting that set it, as written (`min-release-age=7`).
    pub setting: String,
    exclude: Vec<String>,
}

impl Cooldown {
    /// The cooldown this configuration sets, if any; a value that is not a number (or a date,
    /// for `before`) is an error naming the setting.
    pub fn from_config(cfg: &NpmConfig, now_ms: i64) -> Result<Option<Cooldown>, String> {
        let set = |k: &str| {
            cfg.get(k)
                .map(str::trim)
                .filter(|v| !v.is_empty() && *v != "null")
        };
        let mut found: Vec<(i64, String)> = Vec::new();
        if let Some(v) = set("before") {
            let t = parse_date(v).ok_or_else(|| {
                format!("the setting before={v} is not a date (write e.g. 2025-09-01 or 2025-09-01T12:00:00Z)")
            })?;
            found.push((t, format!("before={v}")));
        } else if let Some(v) = set("min-release-age") {
            let days = number(v, "min-release-age", "days")?;
            if days > 0.0 {
                found.push((
                    now_ms - (days * DAY_MS) as i64,
                    format!("min-release-age={v}"),
                ));
            }
        }
        if let Some(v) = set("minimum-release-age") {
            let minutes = number(v, "minimum-release-age", "minutes")?;
            if minutes > 0.0 {
                found.push((
                    now_ms - (minutes * MINUTE_MS) as i64,
                    format!("minimum-release-age={v}"),
                ));
            }
        }
        let Some((cutoff_ms, setting)) = found.into_iter().min_by_key(|(t, _)| *t) else {
            return Ok(None);
        };
        let mut exclude = cfg.list("min-release-age-exclude");
        exclude.extend(cfg.list("minimum-release-age-exclude"));
        Ok(Some(Cooldown {
            cutoff_ms,
            setting,
            exclude,
        }))
    }

    /// The cutoff for `name` (its registry name, never an alias), or None when it is exempt.
    pub fn cutoff_for(&self, name: &str) -> Option<i64> {
        let exempt = self
            .exclude
            .iter()
            .any(|p| p == name || glob_match(p.as_bytes(), name.as_bytes()));
        (!exempt).then_some(self.cutoff_ms)
    }

    /// The cutoff as an RFC 3339 time.
    pub fn cutoff_text(&self) -> String {
        time_text(self.cutoff_ms)
    }
}

/// ms since the epoch as RFC 3339 (UTC, seconds).
pub fn time_text(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

fn number(v: &str, key: &str, unit: &str) -> Result<f64, String> {
    v.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| format!("the setting {key}={v} is not a number of {unit}"))
}

/// `before`'s value as JavaScript's `new Date()` reads the common forms: an RFC 3339 time, a
/// date and time without offset (taken as UTC), or a date (UTC midnight).
fn parse_date(v: &str) -> Option<i64> {
    if let Some(ms) = crate::registry::compact::parse_time(v) {
        return Some(ms);
    }
    let utc = jiff::tz::TimeZone::UTC;
    if let Ok(dt) = v.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(utc)
            .ok()
            .map(|z| z.timestamp().as_millisecond());
    }
    let d = v.parse::<jiff::civil::Date>().ok()?;
    d.to_zoned(utc).ok().map(|z| z.timestamp().as_millisecond())
}

/// minimatch's rules for package names, with its dangerous features off (as npm sets them: no
/// negation, no comments, no extglobs): `*` and `?` never cross a `/`, `**` does.
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') if p.get(1) == Some(&b'*') => {
            let rest = &p[2..];
            (0..=s.len()).any(|i| glob_match(rest, &s[i..]))
        }
        Some(b'*') => {
            let rest = &p[1..];
            for i in 0..=s.len() {
                if glob_match(rest, &s[i..]) {
                    return true;
                }
                if s.get(i) == Some(&b'/') {
                    break;
                }
            }
            false
        }
        Some(b'?') => s.first().is_some_and(|&c| c != b'/') && glob_match(&p[1..], &s[1..]),
        Some(&c) => s.first() == Some(&c) && glob_match(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> NpmConfig {
        NpmConfig::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn npm_days_and_pnpm_minutes_give_one_cutoff() {
        let npm = Cooldown::from_config(&cfg(&[("min-release-age", "1")]), NOW)
            .unwrap()
            .unwrap();
        let pnpm = Cooldown::from_config(&cfg(&[("minimum-release-age", "1440")]), NOW)
            .unwrap()
            .unwrap();
        assert_eq!(npm.cutoff_ms, pnpm.cutoff_ms);
        assert_eq!(npm.cutoff_ms, NOW - 86_400_000);
        // Both set: the stricter one.
        let both = Cooldown::from_config(
            &cfg(&[("min-release-age", "1"), ("minimum-release-age", "10")]),
            NOW,
        )
        .unwrap()
        .unwrap();
        assert_eq!(both.setting, "min-release-age=1");
        assert!(
            Cooldown::from_config(&cfg(&[("min-release-age", "0")]), NOW)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn before_wins_over_min_release_age_and_reads_dates() {
        let c = Cooldown::from_config(
            &cfg(&[("before", "2020-01-02"), ("min-release-age", "1")]),
            NOW,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.cutoff_text(), "2020-01-02T00:00:00Z");
        let c = Cooldown::from_config(&cfg(&[("before", "2020-01-02T03:04:05.000Z")]), NOW)
            .unwrap()
            .unwrap();
        assert_eq!(c.cutoff_text(), "2020-01-02T03:04:05Z");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = Cooldown::from_config(&cfg(&[("min-release-age", "a week")]), NOW).unwrap_err();
        assert!(e.contains("min-release-age=a week"), "{e}");
        let e = Cooldown::from_config(&cfg(&[("before", "soon")]), NOW).unwrap_err();
        assert!(e.contains("before=soon"), "{e}");
    }

    #[test]
    fn excluded_names_and_globs_are_exempt() {
        let c = Cooldown::from_config(
            &cfg(&[
                ("min-release-age", "7"),
                ("min-release-age-exclude", "@myorg/*\nleft-pad"),
                ("minimum-release-age-exclude", "lod?sh"),
            ]),
            NOW,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.cutoff_for("@myorg/ui"), None);
        assert_eq!(c.cutoff_for("left-pad"), None);
        assert_eq!(c.cutoff_for("lodash"), None);
        assert!(c.cutoff_for("@myorg/ui/deep").is_some());
        assert!(c.cutoff_for("@other/ui").is_some());
        assert!(c.cutoff_for("left-pad2").is_some());
        assert!(!glob_match(b"!foo", b"bar"));
    }
}
