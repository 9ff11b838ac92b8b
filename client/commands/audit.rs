//! `hoard audit` (advisories) and `hoard audit signatures`, printed as npm prints them.
//!
//! Must not: change the project.

use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use hoard_proto::v1::{self, SignatureStatus};
use serde_json::json;

use crate::cli::{AuditWhat, Cli};
use crate::context::{connect, project_dir, request_env};
use crate::render::json_line;

const SEVERITIES: [&str; 5] = ["info", "low", "moderate", "high", "critical"];

fn rank(s: &str) -> usize {
    SEVERITIES.iter().position(|x| *x == s).unwrap_or(0)
}

pub async fn audit(
    cli: &Cli,
    what: Option<AuditWhat>,
    level: Option<&str>,
    omit: &[String],
    offline: bool,
) -> Result<u8> {
    if let Some(o) = omit.iter().find(|o| *o != "dev") {
        bail!("--omit={o} is not supported (only --omit=dev)");
    }
    threshold(level)?;
    let started = Instant::now();
    let mut conn = connect(cli).await?;
    let kind = match what {
        Some(AuditWhat::Signatures) => v1::AuditKind::Signatures,
        None => v1::AuditKind::Advisories,
    };
    let r = conn
        .client
        .audit(v1::AuditRequest {
            project_dir: project_dir(cli)?.display().to_string(),
            kind: kind as i32,
            env: request_env(),
            network: if offline {
                v1::NetworkMode::Offline
            } else {
                v1::NetworkMode::Online
            } as i32,
            omit_dev: !omit.is_empty(),
        })
        .await
        .map_err(|s| anyhow!("{}", s.message()))?
        .into_inner();
    match what {
        Some(AuditWhat::Signatures) => Ok(signatures(cli, &r, started)),
        // The flag, else `audit-level` from .npmrc, else any advisory counts.
        None => Ok(advisories(
            cli,
            &r,
            threshold(level.or(r.audit_level.as_deref()))?,
        )),
    }
}

/// The lowest severity that makes `hoard audit` exit 1 (None: none does).
fn threshold(level: Option<&str>) -> Result<Option<usize>> {
    Ok(match level {
        None => Some(0),
        Some("none") => None,
        Some(l) if SEVERITIES.contains(&l) => Some(rank(l)),
        Some(l) => bail!("audit-level={l} is not one of info, low, moderate, high, critical, none"),
    })
}

fn advisories(cli: &Cli, r: &v1::AuditResponse, threshold: Option<usize>) -> u8 {
    let counts = |a: &[v1::Advisory]| {
        let mut c = [0usize; 5];
        for x in a {
            c[rank(&x.severity)] += 1;
        }
        c
    };
    let failing = r
        .advisories
        .iter()
        .any(|a| a.malware || threshold.is_some_and(|t| rank(&a.severity) >= t));
    if cli.json {
        for a in &r.advisories {
            json_line(
                json!({"type": "advisory", "name": a.name, "version": a.version, "id": a.id,
                "title": a.title, "url": a.url, "severity": a.severity, "vulnerable_versions": a.vulnerable_versions,
                "cwe": a.cwe, "malware": a.malware, "locations": a.locations,
                "fix_in_range": a.fix_in_range, "fix_outside_range": a.fix_outside_range}),
            );
        }
        json_line(
            json!({"type": "summary", "audited": r.audited, "vulnerabilities": r.advisories.len(),
            "registries_without_endpoint": r.registries_without_endpoint}),
        );
        return failing as u8;
    }
    for url in &r.registries_without_endpoint {
        eprintln!("hoard: warning: {url} has no advisory endpoint; its packages were not audited");
    }
    if r.advisories.is_empty() {
        println!("found 0 vulnerabilities in {} packages", r.audited);
        return 0;
    }
    println!("# hoard audit report\n");
    for a in &r.advisories {
        println!("{}  {}", a.name, a.vulnerable_versions);
        println!(
            "Severity: {}{}",
            a.severity,
            if a.malware { " (MALWARE)" } else { "" }
        );
        println!("{} - {}", a.title, a.url);
        if !a.fix_in_range.is_empty() {
            println!(
                "fix available: {} (`hoard update {}`)",
                a.fix_in_range, a.name
            );
        } else if !a.fix_outside_range.is_empty() {
            println!(
                "fix available outside the range asked for: {} (a breaking change)",
                a.fix_outside_range
            );
        } else {
            println!("No fix available");
        }
        for l in &a.locations {
            println!("{l}");
        }
        println!();
    }
    let c = counts(&r.advisories);
    let parts: Vec<String> = SEVERITIES
        .iter()
        .enumerate()
        .filter(|(i, _)| c[*i] > 0)
        .map(|(i, s)| format!("{} {s}", c[i]))
        .collect();
    println!(
        "{} {} ({})",
        r.advisories.len(),
        if r.advisories.len() == 1 {
            "vulnerability"
        } else {
            "vulnerabilities"
        },
        parts.join(", ")
    );
    failing as u8
}

fn signatures(cli: &Cli, r: &v1::AuditResponse, started: Instant) -> u8 {
    let by = |s: SignatureStatus| {
        r.signatures
            .iter()
            .filter(|x| x.status == s as i32)
            .collect::<Vec<_>>()
    };
    let (verified, missing, invalid) = (
        by(SignatureStatus::Verified),
        by(SignatureStatus::Missing),
        by(SignatureStatus::Invalid),
    );
    let attested: Vec<_> = r
        .signatures
        .iter()
        .filter(|x| !x.attestations.is_empty())
        .collect();
    let bad_attestations: Vec<_> = r
        .signatures
        .iter()
        .filter(|x| !x.attestation_problem.is_empty())
        .collect();
    let fails = !missing.is_empty() || !invalid.is_empty() || !bad_attestations.is_empty();
    let nothing =
        verified.is_empty() && missing.is_empty() && invalid.is_empty() && attested.is_empty();
    if cli.json {
        for s in &r.signatures {
            let status = match SignatureStatus::try_from(s.status) {
                Ok(SignatureStatus::Verified) => "verified",
                Ok(SignatureStatus::Missing) => "missing",
                Ok(SignatureStatus::Invalid) => "invalid",
                _ => "no-keys",
            };
            json_line(
                json!({"type": "signature", "name": s.name, "version": s.version, "registry": s.registry,
                "status": status, "message": s.message, "attestations": s.attestations,
                "attestation_problem": s.attestation_problem}),
            );
        }
        return (fails || nothing) as u8;
    }
    if nothing {
        eprintln!(
            "hoard: found no dependencies to audit that were installed from a registry that \
             publishes signing keys ({} of {} packages: {})",
            r.signatures.len(),
            r.audited,
            r.registries_without_endpoint.join(", ")
        );
        return 1;
    }
    println!(
        "audited {} packages in {}s\n",
        r.audited,
        started.elapsed().as_secs()
    );
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            one.to_string()
        } else {
            many.to_string()
        }
    };
    if !verified.is_empty() {
        println!(
            "{} {}\n",
            verified.len(),
            plural(
                verified.len(),
                "package has a verified registry signature",
                "packages have verified registry signatures"
            )
        );
    }
    if !attested.is_empty() {
        println!(
            "{} {} (subject name and SHA-512 checked; sigstore bundles not verified)\n",
            attested.len(),
            plural(
                attested.len(),
                "package has a verified attestation",
                "packages have verified attestations"
            )
        );
    }
    if !missing.is_empty() {
        println!(
            "{} {} but the registry is providing signing keys:\n",
            missing.len(),
            plural(
                missing.len(),
                "package has a missing registry signature",
                "packages have missing registry signatures"
            )
        );
        for m in &missing {
            println!("{}@{} ({})", m.name, m.version, m.registry);
        }
        println!();
    }
    if !invalid.is_empty() {
        println!(
            "{} {}:\n",
            invalid.len(),
            plural(
                invalid.len(),
                "package has an invalid registry signature",
                "packages have invalid registry signatures"
            )
        );
        for i in &invalid {
            println!("{}@{} ({})\n  {}", i.name, i.version, i.registry, i.message);
        }
        println!();
    }
    if !bad_attestations.is_empty() {
        println!(
            "{} {}:\n",
            bad_attestations.len(),
            plural(
                bad_attestations.len(),
                "package has an invalid attestation",
                "packages have invalid attestations"
            )
        );
        for b in &bad_attestations {
            println!(
                "{}@{} ({})\n  {}",
                b.name, b.version, b.registry, b.attestation_problem
            );
        }
        println!();
    }
    if !invalid.is_empty() || !bad_attestations.is_empty() {
        println!(
            "Someone might have tampered with {} since {} published on the registry!",
            if invalid.len() + bad_attestations.len() == 1 {
                "this package"
            } else {
                "these packages"
            },
            if invalid.len() + bad_attestations.len() == 1 {
                "it was"
            } else {
                "they were"
            }
        );
    }
    fails as u8
}
