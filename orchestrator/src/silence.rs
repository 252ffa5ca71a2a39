//! Alertmanager silences through its API v2: when rootfix closes an incident in its `auto` stage
//! it may silence the alert for a cooldown, so the same alert does not page again at once.
//!
//! The wire format follows Alertmanager's `api/v2/openapi.yaml`: `POST /api/v2/silences` with a
//! `postableSilence` answers `{"silenceID": …}`; `GET /api/v2/silence/{silenceID}` answers a
//! `gettableSilence`; `DELETE /api/v2/silence/{silenceID}` expires one.
//!
//! Label values are data: every matcher is an exact equality matcher (`isRegex: false`,
//! `isEqual: true`), so a value like `a.*` silences only the alert whose value is `a.*`. With
//! `match_labels`, a listed label the alert lacks becomes `name=""`, which in Alertmanager
//! matches only alerts that lack it too: the silence is never wider than the list says.
//!
//! ```yaml
//! silences:
//!   alertmanager: http://127.0.0.1:9093     # or alertmanager_env: NAME
//!   cooldown: 30m                           # > 0 and at most 7 days
//!   match_labels: [alertname, service]      # optional; default: every label of the alert
//!   timeout: 10s                            # optional; each request, connect included
//! ```
//!
//! Alertmanager is reached directly (proxy environment variables are ignored, as by the evidence
//! backends) and redirects are not followed: a redirected POST would silently become a GET.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::BytesMut;
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::evidence::client::error_chain;

/// The longest cooldown the config accepts: a silence is a promise to look again soon.
pub const MAX_COOLDOWN: Duration = Duration::from_secs(7 * 24 * 3600);

/// Each request's timeout when the config names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most an answer may weigh; a silence is a few hundred bytes.
const MAX_BODY: usize = 1 << 20;

/// The `silences:` section as written (checked in [`crate::config`]).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct SilencesDocument {
    #[serde(default)]
    pub alertmanager: Option<String>,
    #[serde(default)]
    pub alertmanager_env: Option<String>,
    #[serde(default)]
    pub cooldown: Option<String>,
    #[serde(default)]
    pub match_labels: Option<Vec<String>>,
    #[serde(default)]
    pub timeout: Option<String>,
}

/// Where and how long to silence: the checked `silences:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct SilenceConfig {
    /// Alertmanager's base URL (with its `--web.route-prefix`, if any); `/api/v2/…` goes under it.
    pub alertmanager_url: Url,
    /// How long a silence lasts from its creation.
    pub cooldown: Duration,
    /// Label names the silence matches on; empty: every label of the alert.
    pub matchers_from: Vec<String>,
    /// Each request's timeout, connect included.
    pub timeout: Duration,
}

/// Checks an Alertmanager base URL: http(s), a host, no query, no fragment, no credentials.
pub fn parse_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("`{text}` is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}`: only http and https are supported"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{text}`: a base URL has no query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{text}`: credentials do not belong in the URL"));
    }
    Ok(url)
}

/// Whether `name` is a Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One matcher of a silence (`matcher` in the API).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    /// Absent in answers of Alertmanager before 0.22; the API's default is true.
    #[serde(default = "default_true")]
    pub is_equal: bool,
}

fn default_true() -> bool {
    true
}

impl Matcher {
    /// `name="value"`, exactly.
    pub fn equal(name: &str, value: &str) -> Self {
        Self {
            name: name.to_string(),
            value: value.to_string(),
            is_regex: false,
            is_equal: true,
        }
    }
}

/// A silence's state (`silenceStatus.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Active,
    Pending,
    Expired,
}

/// A silence as Alertmanager reports it (`gettableSilence`).
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: String,
    pub state: SilenceState,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GettableSilence {
    id: String,
    status: GettableStatus,
    updated_at: DateTime<Utc>,
    matchers: Vec<Matcher>,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: String,
    comment: String,
}

#[derive(Deserialize)]
struct GettableStatus {
    state: SilenceState,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableSilence<'a> {
    matchers: &'a [Matcher],
    starts_at: String,
    ends_at: String,
    created_by: &'a str,
    comment: &'a str,
}

#[derive(Deserialize)]
struct PostSilencesAnswer {
    #[serde(rename = "silenceID")]
    silence_id: String,
}

/// Why a silence could not be created, read or expired.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// No answer: connection refused, DNS, TLS, timeout.
    #[error("Alertmanager at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// Alertmanager answered with a status other than 200; `body` is its start.
    #[error("Alertmanager refused {method} {url}: {status}: {body}")]
    Rejected {
        method: String,
        url: String,
        status: u16,
        body: String,
    },
    /// A 200 whose body is not what the API promises.
    #[error("Alertmanager's answer to {method} {url} is not what API v2 promises: {reason}")]
    BadResponse {
        method: String,
        url: String,
        reason: String,
    },
    /// Refused before asking: the silence would match too much or could not be written.
    #[error("no silence: {0}")]
    Refused(String),
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the Alertmanager client: {0}")]
    Client(String),
}

impl SilenceError {
    /// Alertmanager answered 404: no silence has that id.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SilenceError::Rejected { status: 404, .. })
    }
}

/// The matchers of a silence for an alert's `labels`: every label when `match_labels` is empty,
/// else the listed ones (a listed label the alert lacks matches only alerts that lack it too).
/// Refused when no matcher has a value: Alertmanager would match every alert.
pub fn matchers_for(
    labels: &BTreeMap<String, String>,
    match_labels: &[String],
) -> Result<Vec<Matcher>, SilenceError> {
    let matchers: Vec<Matcher> = if match_labels.is_empty() {
        labels
            .iter()
            .map(|(name, value)| Matcher::equal(name, value))
            .collect()
    } else {
        let mut seen = BTreeSet::new();
        match_labels
            .iter()
            .filter(|name| seen.insert(name.as_str()))
            .map(|name| Matcher::equal(name, labels.get(name).map_or("", String::as_str)))
            .collect()
    };
    if let Some(bad) = matchers.iter().find(|m| !is_label_name(&m.name)) {
        return Err(SilenceError::Refused(format!(
            "`{}` is not a label name",
            bad.name
        )));
    }
    if matchers.iter().all(|m| m.value.is_empty()) {
        return Err(SilenceError::Refused(
            "the alert has none of the labels to match on; the silence would match every alert".into(),
        ));
    }
    Ok(matchers)
}

/// Alertmanager's silences API for one configured Alertmanager.
#[derive(Debug, Clone)]
pub struct SilenceClient {
    base: Url,
    cooldown: Duration,
    matchers_from: Vec<String>,
    client: reqwest::Client,
}

impl SilenceClient {
    /// A client for the configured Alertmanager.
    pub fn from_config(config: &SilenceConfig) -> Result<Self, SilenceError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rootfix/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SilenceError::Client(error_chain(&e)))?;
        Ok(Self {
            base: config.alertmanager_url.clone(),
            cooldown: config.cooldown,
            matchers_from: config.matchers_from.clone(),
            client,
        })
    }

    /// How long the silences this client creates last.
    pub fn cooldown(&self) -> Duration {
        self.cooldown
    }

    /// Silences the alert with `labels` from `now` for the cooldown; returns the silence's id.
    /// Each call creates a new silence.
    pub async fn create(
        &self,
        labels: &BTreeMap<String, String>,
        created_by: &str,
        comment: &str,
        now: DateTime<Utc>,
    ) -> Result<String, SilenceError> {
        let matchers = matchers_for(labels, &self.matchers_from)?;
        if created_by.trim().is_empty() || comment.trim().is_empty() {
            return Err(SilenceError::Refused(
                "a silence needs its creator and a comment".into(),
            ));
        }
        let cooldown = chrono::Duration::from_std(self.cooldown)
            .ok()
            .filter(|d| *d > chrono::Duration::zero())
            .ok_or_else(|| SilenceError::Refused(format!("cooldown {:?} is out of range", self.cooldown)))?;
        let ends_at = now
            .checked_add_signed(cooldown)
            .ok_or_else(|| SilenceError::Refused("the silence would end after the year 262143".into()))?;
        let body = PostableSilence {
            matchers: &matchers,
            starts_at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
            ends_at: ends_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            created_by,
            comment,
        };
        let url = self.url(&["silences"])?;
        let answer = self.call(Method::POST, url.clone(), Some(&body)).await?;
        let parsed: PostSilencesAnswer =
            serde_json::from_slice(&answer).map_err(|e| bad_response(&Method::POST, &url, e.to_string()))?;
        if parsed.silence_id.is_empty() {
            return Err(bad_response(&Method::POST, &url, "empty silenceID".into()));
        }
        Ok(parsed.silence_id)
    }

    /// Whether Alertmanager still holds the alert with `fingerprint` as active (firing, silenced
    /// or inhibited): `GET /api/v2/alerts` filtered by the alert's `alertname`.
    pub async fn alert_active(
        &self,
        labels: &BTreeMap<String, String>,
        fingerprint: &str,
    ) -> Result<bool, SilenceError> {
        #[derive(serde::Deserialize)]
        struct GettableAlert {
            fingerprint: String,
        }
        let mut url = self.url(&["alerts"])?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("active", "true");
            if let Some(name) = labels.get("alertname") {
                let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
                query.append_pair("filter", &format!("alertname=\"{escaped}\""));
            }
        }
        let answer = self.call::<()>(Method::GET, url.clone(), None).await?;
        let alerts: Vec<GettableAlert> =
            serde_json::from_slice(&answer).map_err(|e| bad_response(&Method::GET, &url, e.to_string()))?;
        Ok(alerts.iter().any(|a| a.fingerprint == fingerprint))
    }

    /// The silence with `id` (404: [`SilenceError::is_not_found`]).
    pub async fn get(&self, id: &str) -> Result<Silence, SilenceError> {
        let url = self.url(&["silence", id])?;
        let answer = self.call::<()>(Method::GET, url.clone(), None).await?;
        let s: GettableSilence =
            serde_json::from_slice(&answer).map_err(|e| bad_response(&Method::GET, &url, e.to_string()))?;
        Ok(Silence {
            id: s.id,
            state: s.status.state,
            matchers: s.matchers,
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            updated_at: s.updated_at,
            created_by: s.created_by,
            comment: s.comment,
        })
    }

    /// Expires the silence with `id` now. Idempotent: a silence already expired is fine (some
    /// Alertmanager versions refuse to expire it again; then its state is read to be sure). An
    /// unknown id is an error.
    pub async fn expire(&self, id: &str) -> Result<(), SilenceError> {
        let url = self.url(&["silence", id])?;
        match self.call::<()>(Method::DELETE, url, None).await {
            Ok(_) => Ok(()),
            Err(refused @ SilenceError::Rejected { .. }) => match self.get(id).await {
                Ok(silence) if silence.state == SilenceState::Expired => Ok(()),
                _ => Err(refused),
            },
            Err(other) => Err(other),
        }
    }

    /// `<base>/api/v2/<segments…>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Result<Url, SilenceError> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| SilenceError::Refused(format!("`{}` cannot be a base URL", self.base)))?;
            path.pop_if_empty().extend(["api", "v2"]).extend(segments);
        }
        Ok(url)
    }

    /// One exchange; the body of a 200, or why there is none.
    async fn call<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<bytes::Bytes, SilenceError> {
        let mut request = self.client.request(method.clone(), url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |e: reqwest::Error| SilenceError::Unreachable {
            url: url.to_string(),
            reason: error_chain(&e.without_url()),
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let mut answer = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if answer.len() + chunk.len() > MAX_BODY {
                return Err(bad_response(
                    &method,
                    &url,
                    "the answer is larger than 1 MiB".into(),
                ));
            }
            answer.extend_from_slice(&chunk);
        }
        if status != StatusCode::OK {
            return Err(SilenceError::Rejected {
                method: method.to_string(),
                url: url.to_string(),
                status: status.as_u16(),
                body: snippet(&answer),
            });
        }
        Ok(answer.freeze())
    }
}

fn bad_response(method: &Method, url: &Url, reason: String) -> SilenceError {
    SilenceError::BadResponse {
        method: method.to_string(),
        url: url.to_string(),
        reason,
    }
}

/// The body's start as text, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn client(base: &str) -> SilenceClient {
        SilenceClient::from_config(&SilenceConfig {
            alertmanager_url: parse_base_url(base).unwrap(),
            cooldown: Duration::from_secs(1800),
            matchers_from: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        })
        .unwrap()
    }

    #[test]
    fn every_label_becomes_an_exact_matcher() {
        let m = matchers_for(&labels(&[("service", "a.*"), ("alertname", "X")]), &[]).unwrap();
        assert_eq!(
            m,
            [Matcher::equal("alertname", "X"), Matcher::equal("service", "a.*")]
        );
        assert!(m.iter().all(|m| !m.is_regex && m.is_equal));
    }

    #[test]
    fn listed_labels_only_and_a_missing_one_matches_its_absence() {
        let names = ["alertname", "instance", "alertname"].map(String::from);
        let m = matchers_for(&labels(&[("alertname", "X"), ("pod", "p-1")]), &names).unwrap();
        assert_eq!(
            m,
            [Matcher::equal("alertname", "X"), Matcher::equal("instance", "")]
        );
    }

    #[test]
    fn refuses_a_silence_that_would_match_every_alert() {
        let names = ["instance".to_string()];
        let e = matchers_for(&labels(&[("alertname", "X")]), &names).unwrap_err();
        assert!(matches!(e, SilenceError::Refused(_)), "{e}");
        assert!(matches!(
            matchers_for(&BTreeMap::new(), &[]),
            Err(SilenceError::Refused(_))
        ));
    }

    #[test]
    fn matchers_serialize_as_the_api_spells_them() {
        let json = serde_json::to_value(Matcher::equal("a", "b")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "a", "value": "b", "isRegex": false, "isEqual": true})
        );
        let old: Matcher = serde_json::from_str(r#"{"name":"a","value":"b","isRegex":false}"#).unwrap();
        assert!(old.is_equal);
    }

    #[test]
    fn urls_keep_the_route_prefix_and_encode_the_id() {
        let c = client("http://am:9093/alertmanager/");
        assert_eq!(
            c.url(&["silence", "a/b?c"]).unwrap().as_str(),
            "http://am:9093/alertmanager/api/v2/silence/a%2Fb%3Fc"
        );
        let c = client("http://am:9093");
        assert_eq!(
            c.url(&["silences"]).unwrap().as_str(),
            "http://am:9093/api/v2/silences"
        );
    }

    #[test]
    fn base_urls_are_checked() {
        assert!(parse_base_url("https://am.example:9093/prefix").is_ok());
        for bad in [
            "ftp://am",
            "am:9093",
            "http://am/?x=1",
            "http://u:p@am/",
            "http://am/#f",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_names() {
        assert!(is_label_name("alertname") && is_label_name("_x9"));
        assert!(!is_label_name("") && !is_label_name("9x") && !is_label_name("a-b"));
    }
}
