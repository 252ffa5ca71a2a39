//! `redis:`: where the state lives (`url`, or `url_env` naming the variable that holds it) and
//! the prefix of every key (`key_prefix`), so several deployments can share one Redis.

use serde::Deserialize;

use crate::catalog::report::Reporter;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(super) struct RedisDocument {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    url_env: Option<String>,
    #[serde(default)]
    key_prefix: Option<String>,
}

/// `redis.url` (or `redis.url_env`): a `redis://` or `rediss://` URL; the local Redis without one.
pub(super) fn check_redis_url(
    doc: &RedisDocument,
    env: &dyn Fn(&str) -> Option<String>,
    r: &mut Reporter<'_>,
) -> String {
    let redis_url = match (&doc.url, &doc.url_env) {
        (Some(_), Some(_)) => {
            r.at_key("redis", "set either url or url_env, not both");
            String::new()
        }
        (Some(url), None) => url.clone(),
        (None, Some(var)) => r.env_var("redis.url_env", var, env).unwrap_or_default(),
        (None, None) => "redis://127.0.0.1:6379/".into(),
    };
    if !(redis_url.is_empty() || redis_url.starts_with("redis://") || redis_url.starts_with("rediss://")) {
        r.at_value("redis.url", "expected a redis:// URL");
    }
    redis_url
}

/// `redis.key_prefix`: empty by default, never with spaces.
pub(super) fn check_key_prefix(doc: &RedisDocument, r: &mut Reporter<'_>) -> String {
    let key_prefix = doc.key_prefix.clone().unwrap_or_default();
    if key_prefix.contains(char::is_whitespace) {
        r.at_value("redis.key_prefix", "a key prefix has no spaces");
    }
    key_prefix
}
