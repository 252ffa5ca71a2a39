//! Names and label values the Kubernetes API accepts, derived deterministically from what rootfix
//! knows about a phase, so that a restarted rootfix finds the Job it created before it died.

use crate::model::action::PhaseName;

/// Longest DNS-1123 label (a Job's name ends up in its pods' `job-name` label).
const MAX_LABEL: usize = 63;

/// The Job of one attempt of one phase: `rf-<action>-<phase>-a<attempt>-<hash>`, at most 63
/// characters. The hash covers the incident, which the name has no room for; the action part is
/// cut to fit. Same inputs, same name — across processes and Rust versions (FNV-1a, not std's
/// randomly seeded hasher).
pub fn job_name(incident: &str, action: &str, phase: PhaseName, attempt: u32) -> String {
    let hash = fnv1a64(&[incident, action, phase.as_str(), &attempt.to_string()]);
    let suffix = format!("-{}-a{attempt}-{:010x}", phase.as_str(), hash & 0xff_ffff_ffff);
    let room = MAX_LABEL - "rf-".len() - suffix.len();
    let mut action_part: String = dns_label_chars(action).chars().take(room).collect();
    while action_part.ends_with('-') {
        action_part.pop();
    }
    if action_part.is_empty() {
        action_part.push('x');
    }
    format!("rf-{action_part}{suffix}")
}

/// `value` as a label value: at most 63 of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
/// Values that had to change are also kept whole in an annotation (see the Job's metadata).
pub fn label_value(value: &str) -> String {
    let kept: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_LABEL)
        .collect();
    kept.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn dns_label_chars(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .collect::<String>()
        .trim_start_matches('-')
        .to_string()
}

/// 64-bit FNV-1a over the parts, each followed by a 0 byte so `("ab","c")` ≠ `("a","bc")`.
fn fnv1a64(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dns_label(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn job_names_are_deterministic_dns_labels_that_differ_per_attempt_and_incident() {
        let a = job_name("inc-1712345678901-0", "dump-thread-stack", PhaseName::Execute, 1);
        assert_eq!(
            a,
            job_name("inc-1712345678901-0", "dump-thread-stack", PhaseName::Execute, 1)
        );
        assert!(a.starts_with("rf-dump-thread-stack-execute-a1-"), "{a}");
        assert!(is_dns_label(&a), "{a}");
        assert_ne!(
            a,
            job_name("inc-1712345678901-0", "dump-thread-stack", PhaseName::Execute, 2)
        );
        assert_ne!(
            a,
            job_name("inc-1712345678901-1", "dump-thread-stack", PhaseName::Execute, 1)
        );
        let long = "a".repeat(63);
        let n = job_name("inc-1", &long, PhaseName::Rollback, 4_000_000_000);
        assert!(is_dns_label(&n) && n.len() <= 63, "{n} ({})", n.len());
    }

    #[test]
    fn names_are_fixed_across_builds() {
        // Computed independently (FNV-1a 64 by hand); a changed name would orphan the Jobs of
        // a rootfix that restarts into a new version.
        assert_eq!(
            job_name("inc-1", "restart", PhaseName::Verify, 2),
            "rf-restart-verify-a2-f4b4f2b383"
        );
        assert_eq!(
            job_name("inc-1712345678901-0", "dump-thread-stack", PhaseName::Execute, 1),
            "rf-dump-thread-stack-execute-a1-1f3c9032a1"
        );
    }

    #[test]
    fn label_values_are_cleaned_and_cut() {
        assert_eq!(label_value("inc-1712345678901-0"), "inc-1712345678901-0");
        assert_eq!(label_value("x; rm -rf /"), "x__rm_-rf");
        assert_eq!(label_value(&"b".repeat(80)).len(), 63);
        assert_eq!(label_value("-a-"), "a");
    }
}
