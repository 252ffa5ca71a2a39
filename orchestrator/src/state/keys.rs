//! The Redis key schema: every key rootfix reads or writes, in one place.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `rootfix:alerts` | stream + consumer group `rootfix` | one entry per received alert |
//! | `rootfix:seen:<sha-256>` | string, SET NX PX | an alert's content (hex SHA-256 of its JSON) stored within `limits.dedupe_window`: a retried webhook is not stored twice |
//! | `rootfix:incident:<id>` | hash | an incident: `version`, `state`, `record` (JSON) |
//! | `rootfix:incident:open:<fingerprint>` | string | id of the fingerprint's open incident |
//! | `rootfix:incident:last:<fingerprint>` | string | id of the fingerprint's last closed incident |
//! | `rootfix:incidents` | sorted set | incident ids by creation time (ms) |
//! | `rootfix:incidents:state:<state>` | set | incident ids by state |
//! | `rootfix:incidents:closed` | sorted set | ids of closed incidents (resolved, stale) by when they closed (ms): what retention removes, oldest first |
//! | `diag:prune:<service>` | hash | field `<node id>` → `<RFC 3339 time>:skipped:<n>`: pruned nodes (the seed's format) |
//! | `diag:streak:<service>` | hash | field `<node id>` → consecutive misses |
//! | `diag:stats:<service>` | hash | field `<node id>:hit\|miss\|skip\|reprobe` → cumulative counts |
//! | `rootfix:lock:<action>:<key>` | string, SET NX PX | fencing token of the fix holding the target |
//! | `rootfix:lock:fence` | string (INCR) | the last fencing token handed out |
//! | `rootfix:journal:<incident>` | list | phase transitions of the incident's fixes (JSON) |
//! | `rootfix:fixes:active` | set | `<incident>/<action>` of fixes started and not finished |
//! | `rootfix:stage:<action>:<scope>` | string | autonomy stage, when it was entered, any proposal (JSON) |
//! | `rootfix:stage:history:<action>:<scope>` | list | the last [`STAGE_HISTORY_KEPT`](crate::state::autonomy::STAGE_HISTORY_KEPT) stage changes (JSON), oldest first |
//! | `rootfix:stages` | set | `<action>/<scope>` of every pair with a stage |
//! | `rootfix:outcomes:<action>:<scope>` | sorted set | outcomes (JSON) by time in ms (for the 72 h window), at most `autonomy.outcome_retention` old and the last [`OUTCOMES_KEPT`](crate::state::autonomy::OUTCOMES_KEPT) |
//! | `rootfix:approval:<id>` | string | a pending or decided approval (JSON) |
//! | `rootfix:approvals` | sorted set | approval ids by creation time (ms) |
//! | `rootfix:approvals:pending` | sorted set | ids of pending approvals by creation time (ms) |
//! | `rootfix:running:<scope>` | sorted set | fixes running in the scope, by slot expiry (ms) |
//! | `rootfix:audit` | capped stream | every decision with identity and time (the last 100,000, and trimmed by age to `retention.audit`) |
//! | `rootfix:killswitch` | string | set while the kill switch is on |
//! | `rootfix:rate:<scope>` | sorted set | fix start times (sliding-window rate limit) |
//! | `rootfix:leader` | string, SET NX PX | the replica that runs periodic jobs |
//! | `rootfix:once:<kind>:<id>` | string, SET NX PX | a one-time use seen (a chat callback's signature or event id), until its replay window ends |
//!
//! Retention (`retention:` in the config, run by the leader): the alert stream is trimmed behind
//! its oldest pending entry; a closed incident older than `retention.incidents` is removed with
//! its journal, its approvals and every index entry naming it.
//!
//! Node ids are unique across all playbooks (the catalog checks it), so the seed's
//! `diag:prune:<service>` / `<node id>` format names one node without the playbook.
//!
//! Every key can carry a prefix (empty in production) so that tests sharing one Redis never see
//! each other's keys.

/// Builds keys under an optional prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, tail: std::fmt::Arguments<'_>) -> String {
        format!("{}{}", self.prefix, tail)
    }

    pub fn seen_alert(&self, content_sha256: &str) -> String {
        self.key(format_args!("rootfix:seen:{content_sha256}"))
    }

    pub fn alerts_stream(&self) -> String {
        self.key(format_args!("rootfix:alerts"))
    }

    pub fn incident(&self, id: &str) -> String {
        self.key(format_args!("rootfix:incident:{id}"))
    }

    pub fn incident_open(&self, fingerprint: &str) -> String {
        self.key(format_args!("rootfix:incident:open:{fingerprint}"))
    }

    pub fn incident_last(&self, fingerprint: &str) -> String {
        self.key(format_args!("rootfix:incident:last:{fingerprint}"))
    }

    pub fn incidents(&self) -> String {
        self.key(format_args!("rootfix:incidents"))
    }

    pub fn incidents_closed(&self) -> String {
        self.key(format_args!("rootfix:incidents:closed"))
    }

    pub fn incidents_in_state(&self, state: &str) -> String {
        self.key(format_args!("rootfix:incidents:state:{state}"))
    }

    /// The ids of the incidents whose `field` (`state`, `service`, `playbook`) is `value`,
    /// scored by creation (ms): what a filtered listing reads instead of every incident.
    pub fn incidents_by(&self, field: &str, value: &str) -> String {
        self.key(format_args!("rootfix:incidents:by:{field}:{value}"))
    }

    /// Set once every stored incident is in the `incidents_by` indexes (new installs at once,
    /// older ones after their backfill); until then listings read every incident.
    pub fn incidents_indexed(&self) -> String {
        self.key(format_args!("rootfix:incidents:indexed"))
    }

    pub fn prune(&self, service: &str) -> String {
        self.key(format_args!("diag:prune:{service}"))
    }

    pub fn streak(&self, service: &str) -> String {
        self.key(format_args!("diag:streak:{service}"))
    }

    pub fn stats(&self, service: &str) -> String {
        self.key(format_args!("diag:stats:{service}"))
    }

    pub fn lock(&self, action: &str, target_key: &str) -> String {
        self.key(format_args!("rootfix:lock:{action}:{target_key}"))
    }

    pub fn lock_fence(&self) -> String {
        self.key(format_args!("rootfix:lock:fence"))
    }

    pub fn active_fixes(&self) -> String {
        self.key(format_args!("rootfix:fixes:active"))
    }

    pub fn journal(&self, incident: &str) -> String {
        self.key(format_args!("rootfix:journal:{incident}"))
    }

    pub fn stage(&self, action: &str, scope: &str) -> String {
        self.key(format_args!("rootfix:stage:{action}:{scope}"))
    }

    pub fn outcomes(&self, action: &str, scope: &str) -> String {
        self.key(format_args!("rootfix:outcomes:{action}:{scope}"))
    }

    pub fn stage_history(&self, action: &str, scope: &str) -> String {
        self.key(format_args!("rootfix:stage:history:{action}:{scope}"))
    }

    pub fn stages(&self) -> String {
        self.key(format_args!("rootfix:stages"))
    }

    pub fn approvals(&self) -> String {
        self.key(format_args!("rootfix:approvals"))
    }

    pub fn approvals_pending(&self) -> String {
        self.key(format_args!("rootfix:approvals:pending"))
    }

    pub fn running(&self, scope: &str) -> String {
        self.key(format_args!("rootfix:running:{scope}"))
    }

    pub fn approval(&self, id: &str) -> String {
        self.key(format_args!("rootfix:approval:{id}"))
    }

    pub fn audit(&self) -> String {
        self.key(format_args!("rootfix:audit"))
    }

    pub fn killswitch(&self) -> String {
        self.key(format_args!("rootfix:killswitch"))
    }

    pub fn rate(&self, scope: &str) -> String {
        self.key(format_args!("rootfix:rate:{scope}"))
    }

    pub fn leader(&self) -> String {
        self.key(format_args!("rootfix:leader"))
    }

    pub fn once(&self, what: &str) -> String {
        self.key(format_args!("rootfix:once:{what}"))
    }
}

/// The value of a `diag:prune:<service>` field: `<RFC 3339 time>:skipped:<n>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneValue {
    /// When the node was pruned, RFC 3339 in UTC with second precision (fixed width, so that
    /// string order is time order, which the Redis script relies on).
    pub pruned_at: String,
    /// Walks that skipped the node since it was pruned or last re-probed.
    pub skipped: u32,
}

impl PruneValue {
    pub fn parse(value: &str) -> Option<Self> {
        let (pruned_at, skipped) = value.rsplit_once(":skipped:")?;
        Some(Self {
            pruned_at: pruned_at.to_string(),
            skipped: skipped.parse().ok()?,
        })
    }

    pub fn render(&self) -> String {
        format!("{}:skipped:{}", self.pruned_at, self.skipped)
    }
}

/// The time format of prune values.
pub fn prune_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_values_round_trip_the_seed_format() {
        let v = PruneValue::parse("2026-11-25T10:00:00Z:skipped:4").unwrap();
        assert_eq!(v.pruned_at, "2026-11-25T10:00:00Z");
        assert_eq!(v.skipped, 4);
        assert_eq!(v.render(), "2026-11-25T10:00:00Z:skipped:4");
        assert!(PruneValue::parse("garbage").is_none());
    }

    #[test]
    fn keys_follow_the_schema() {
        let k = Keys::new("t1:");
        assert_eq!(k.prune("order"), "t1:diag:prune:order");
        assert_eq!(
            Keys::default().lock("restart-jvm-pod", "shop/order-api"),
            "rootfix:lock:restart-jvm-pod:shop/order-api"
        );
    }
}
