//! The SREs' web page, `/ui/`: server-rendered HTML, plain forms, no JavaScript.
//!
//! | route | role | does |
//! |---|---|---|
//! | `GET /ui`, `GET /ui/` | viewer | the dashboard: pending approvals (approve / reject with a reason), open incidents, stages and their gates, the kill switch banner |
//! | `GET /ui/login`, `POST /ui/login` (`token=`) | — | the sign-in form; a known token sets the session cookie (303 to `/ui/`), an unknown one answers the form again with 401 |
//! | `POST /ui/logout` | — | clears the session cookie |
//! | `POST /ui/approvals/{id}/approve` (`back=`) | approver | as `POST /api/v1/approvals/{id}/approve`; 303 back to `/ui/` with a flash message, or to `/ui/incidents/<back>` when the incident page posted it |
//! | `POST /ui/approvals/{id}/reject` (`reason=`, `back=`) | approver | as the API's reject; a reason is required |
//! | `GET /ui/incidents/{id}` | viewer | why no fix is offered (notify only, no remedy, a gate's refusal), the pending approval with the same forms as the dashboard, timeline, diagnosis, remedies, the fix and its journal (phases, exits, output), the time from the alert to its resolution, and the verdict once given, else (when the fix waits for one) the confirm form |
//! | `POST /ui/incidents/{id}/confirm` (`verdict=correct\|misfix`, `severity=P0..P3`, `comment=`) | approver | as the API's confirm; 303 back to the incident |
//!
//! **Sessions.** The page signs in with one of rootfix's API tokens. The session cookie
//! (`rootfix_session`) holds that token, percent-encoded, `HttpOnly` (no script reads it),
//! `SameSite=Strict` (no other site's page or link sends it), `Path=/ui` (the JSON API never reads
//! it: the API takes `Authorization: Bearer` only), `Max-Age` 12 h. It is checked on every request
//! exactly like a bearer token (`auth::authorize_cookie`, constant time), so removing a token from
//! the config ends its sessions at the next reload. `Secure` is added only when a proxy says the
//! request came over TLS (`X-Forwarded-Proto: https`): on plain `http://` (localhost, the tests) a
//! `Secure` cookie would never come back. Serve the page over TLS (a proxy) anywhere but localhost.
//! A page without a valid session answers 303 to `/ui/login`.
//!
//! **CSRF.** Forms post with the cookie, so every POST is checked three ways: (1) SameSite=Strict
//! keeps browsers from sending the cookie on cross-site requests at all; (2) an `Origin` header (or
//! `Referer`, without one) naming another host than `Host` (or `X-Forwarded-Host`, behind a proxy
//! that rewrites `Host`) is refused with 403, as is `Origin: null`; (3) every form carries a hidden `csrf` field, HMAC-SHA256 of the fixed label `rootfix ui
//! csrf v1` keyed with the session's token (`session::csrf_token`), compared in constant time. A
//! cross-site page can neither read that field (same-origin policy) nor compute it (it does not
//! know the token), and every replica derives the same value without shared state. The sign-in
//! POST has no session yet: it is checked by (2). The pages send a `Content-Security-Policy` that
//! allows no script at all, and `frame-ancestors 'none'` against clickjacking.
//!
//! **Escaping.** Everything shown that comes from alerts, params, token names or errors goes through
//! `render::escape`.

pub mod render;
pub mod session;

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::auth::{Identity, authorize_cookie, identify, session_secret};
use super::error::ApiError;
use crate::autonomy::controller::Decided;
use crate::config::Role;
use crate::incident::{IncidentFilter, IncidentState};
use session::Flash;

/// How many pending approvals and open incidents (per state) the dashboard lists.
const DASHBOARD_LIMIT: usize = 200;

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// A page with the headers every page carries (no caching, no framing, no script).
fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    r
}

/// 303 See Other to `to` (a local path), with cookies to set.
fn redirect(to: &str, cookies: &[HeaderValue]) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    h.insert(
        header::LOCATION,
        HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/ui/")),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        h.append(header::SET_COOKIE, c.clone());
    }
    r
}

/// Why a page was not served.
#[derive(Debug)]
pub enum UiError {
    /// No valid session: to the sign-in form.
    SignIn,
    /// A refusal or failure shown as a page (`who` when signed in, for the header).
    Page {
        status: StatusCode,
        message: String,
        who: Option<(Identity, String)>,
    },
}

impl UiError {
    fn from_api(e: ApiError, who: Option<&Session>) -> Self {
        match e {
            ApiError::Unauthorized => UiError::SignIn,
            other => UiError::Page {
                status: other.status(),
                message: other.to_string(),
                who: who.map(|s| (s.identity.clone(), s.csrf.clone())),
            },
        }
    }

    fn forbidden(message: String, who: Option<&Session>) -> Self {
        UiError::Page {
            status: StatusCode::FORBIDDEN,
            message,
            who: who.map(|s| (s.identity.clone(), s.csrf.clone())),
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::SignIn => redirect("/ui/login", &[]),
            UiError::Page { status, message, who } => html(
                status,
                render::error_page(
                    status.as_u16(),
                    &message,
                    who.as_ref().map(|(i, c)| (i, c.as_str())),
                ),
            ),
        }
    }
}

/// An id in the page's path; a malformed one (not UTF-8) is the error page with 400, as the API's
/// `ApiPath` answers it in JSON.
pub struct UiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for UiPath {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, UiError> {
        match super::extract::ApiPath::<String>::from_request_parts(parts, state).await {
            Ok(super::extract::ApiPath(id)) => Ok(Self(id)),
            Err(e) => Err(UiError::from_api(e, None)),
        }
    }
}

/// A signed-in browser: who, and its CSRF field.
struct Session {
    identity: Identity,
    csrf: String,
    https: bool,
}

impl Session {
    fn who(&self) -> (&Identity, &str) {
        (&self.identity, &self.csrf)
    }

    fn can_decide(&self) -> bool {
        self.identity.role.allows(Role::Approver)
    }
}

/// The session of a page request (viewer at least), or the sign-in form.
fn session(app: &AppState, headers: &HeaderMap) -> Result<Session, UiError> {
    let identity =
        authorize_cookie(&app.tokens, headers, Role::Viewer).map_err(|e| UiError::from_api(e, None))?;
    let secret = session_secret(headers).ok_or(UiError::SignIn)?;
    Ok(Session {
        identity,
        csrf: session::csrf_token(&secret),
        https: session::is_https(headers),
    })
}

/// The checks of every form POST: same origin, a session, its CSRF field, then the role.
fn guard_post(app: &AppState, headers: &HeaderMap, csrf: &str, required: Role) -> Result<Session, UiError> {
    session::check_origin(headers).map_err(|why| UiError::forbidden(why, None))?;
    let s = session(app, headers)?;
    if !session::csrf_matches(&s.csrf, csrf) {
        return Err(UiError::forbidden(
            "the form's CSRF field is missing or wrong; reload the page and try again".into(),
            Some(&s),
        ));
    }
    if !s.identity.role.allows(required) {
        return Err(UiError::forbidden(
            ApiError::Forbidden {
                role: s.identity.role,
                required,
            }
            .to_string(),
            Some(&s),
        ));
    }
    Ok(s)
}

/// A form body, or a 400 page.
fn form<T>(body: Result<Form<T>, FormRejection>, s: Option<&Session>) -> Result<T, UiError> {
    body.map(|Form(f)| f).map_err(|e| UiError::Page {
        status: StatusCode::BAD_REQUEST,
        message: e.body_text(),
        who: s.map(|s| (s.identity.clone(), s.csrf.clone())),
    })
}

/// `GET /ui` → `/ui/`.
pub async fn root() -> Response {
    redirect("/ui/", &[])
}

/// `GET /ui/login`.
pub async fn login_form() -> Response {
    html(StatusCode::OK, render::login_page(None))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `POST /ui/login`.
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    if let Err(why) = session::check_origin(&headers) {
        return html(StatusCode::FORBIDDEN, render::login_page(Some(&why)));
    }
    let Ok(Form(f)) = body else {
        return html(
            StatusCode::BAD_REQUEST,
            render::login_page(Some("the form could not be read")),
        );
    };
    let presented = f.token.trim();
    match identify(&app.tokens, presented) {
        None => html(
            StatusCode::UNAUTHORIZED,
            render::login_page(Some("unknown token")),
        ),
        Some(t) if !t.role.allows(Role::Viewer) => html(
            StatusCode::FORBIDDEN,
            render::login_page(Some(&format!(
                "a token with role {} cannot use this page",
                t.role.as_str()
            ))),
        ),
        Some(t) => {
            tracing::info!(identity = %t.name, role = t.role.as_str(), "signed in to the web page");
            redirect(
                "/ui/",
                &[session::session_cookie(presented, session::is_https(&headers))],
            )
        }
    }
}

/// `POST /ui/logout`: clears the session (same-origin only, so no other site signs anyone out).
pub async fn logout(headers: HeaderMap) -> Response {
    if let Err(why) = session::check_origin(&headers) {
        return UiError::forbidden(why, None).into_response();
    }
    let https = session::is_https(&headers);
    redirect(
        "/ui/login",
        &[
            session::clear_session_cookie(https),
            session::clear_flash_cookie(https),
        ],
    )
}

/// A page, dropping the flash it showed.
fn page(s: &Session, flash: Option<&Flash>, body: String) -> Response {
    let mut r = html(StatusCode::OK, body);
    if flash.is_some() {
        r.headers_mut()
            .append(header::SET_COOKIE, session::clear_flash_cookie(s.https));
    }
    r
}

fn unavailable(e: impl std::fmt::Display, s: &Session) -> UiError {
    UiError::from_api(ApiError::Unavailable(e.to_string()), Some(s))
}

/// `GET /ui/`.
pub async fn dashboard(State(app): State<AppState>, headers: HeaderMap) -> Result<Response, UiError> {
    let s = session(&app, &headers)?;
    let flash = session::read_flash(&headers);
    let killswitch = app.state.killswitch().await.map_err(|e| unavailable(e, &s))?;
    let approvals = app
        .state
        .list_approvals(true, DASHBOARD_LIMIT)
        .await
        .map_err(|e| unavailable(e, &s))?;
    let mut incidents = Vec::new();
    for state in IncidentState::ALL.into_iter().filter(|st| st.is_open()) {
        let filter = IncidentFilter {
            state: Some(state),
            ..IncidentFilter::default()
        };
        let page = app
            .state
            .list_incidents(&filter, 0, DASHBOARD_LIMIT)
            .await
            .map_err(|e| unavailable(e, &s))?;
        incidents.extend(page.items);
    }
    incidents.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then_with(|| a.id.cmp(&b.id)));
    let stages = match &app.autonomy {
        None => Err("Autonomy is not running in this process.".to_string()),
        Some(a) => a.stage_reports().await.map_err(|e| e.to_string()),
    };
    let view = render::Dashboard {
        killswitch,
        approvals,
        incidents,
        stages,
        can_decide: s.can_decide(),
    };
    Ok(page(
        &s,
        flash.as_ref(),
        render::dashboard(&view, s.who(), flash.as_ref()),
    ))
}

/// `GET /ui/incidents/{id}`.
pub async fn incident(
    State(app): State<AppState>,
    headers: HeaderMap,
    UiPath(id): UiPath,
) -> Result<Response, UiError> {
    let s = session(&app, &headers)?;
    let flash = session::read_flash(&headers);
    let incident = app
        .state
        .incident(&id)
        .await
        .map_err(|e| unavailable(e, &s))?
        .ok_or_else(|| UiError::from_api(ApiError::NotFound(format!("incident {id}")), Some(&s)))?;
    let journal = app.state.journal(&id).await.map_err(|e| unavailable(e, &s))?;
    let approval = match incident.fix.as_ref().and_then(|f| f.approval.as_deref()) {
        None => None,
        Some(a) => app.state.approval(a).await.map_err(|e| unavailable(e, &s))?,
    };
    let replay = replay_now(&app, &incident).await;
    Ok(page(
        &s,
        flash.as_ref(),
        render::incident(
            &incident,
            &journal,
            approval.as_ref(),
            s.can_decide(),
            s.who(),
            flash.as_ref(),
            replay.as_ref(),
        ),
    ))
}

/// The incident replayed over its recorded evidence under the catalog in force, when the
/// playbook that matches its alert now is not the version (or not the playbook) it was
/// diagnosed with. Records older than the playbook hash are not replayed: nothing tells
/// whether their playbook changed.
async fn replay_now(
    app: &AppState,
    incident: &crate::incident::Incident,
) -> Option<crate::backtest::Replayed> {
    use crate::backtest::{ReplayOptions, Replayed, Replayer};
    let d = incident.diagnosis.as_ref()?;
    let recorded = d.playbook_hash.as_deref()?;
    let catalog = app.catalog.current();
    let alert = Replayer::recorded_alert(incident);
    if catalog
        .match_alert(&alert.labels)
        .is_some_and(|p| p.name == d.playbook && p.content_hash == recorded)
    {
        return None;
    }
    let replayer = Replayer::new(catalog, ReplayOptions::default());
    let rewalk = replayer.rewalk(incident).await;
    Some(Replayed::compare(incident, &rewalk))
}

/// 303 to `to` with a flash saying what happened.
fn done(to: &str, s: &Session, result: Result<String, ApiError>) -> Response {
    let flash = match result {
        Ok(text) => session::flash_cookie(true, &text, s.https),
        Err(e) => session::flash_cookie(false, &format!("{}: {e}", e.status()), s.https),
    };
    redirect(to, &[flash])
}

fn decided_text(d: &Decided) -> String {
    match d {
        Decided::Nothing => "nothing to do".into(),
        Decided::Refused { gate, reason } => format!("the fix was refused by the {gate} gate: {reason}"),
        Decided::AwaitingApproval(id) => format!("the fix waits for approval {id}"),
        Decided::Started { dry_run: true } => "dry run started".into(),
        Decided::Started { dry_run: false } => "fix started".into(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ApproveForm {
    #[serde(default)]
    csrf: String,
    /// The incident whose page posted the form, to return there (else the dashboard).
    #[serde(default)]
    back: String,
}

/// `POST /ui/approvals/{id}/approve`.
pub async fn approve(
    State(app): State<AppState>,
    headers: HeaderMap,
    UiPath(id): UiPath,
    body: Result<Form<ApproveForm>, FormRejection>,
) -> Result<Response, UiError> {
    let f = form(body, None)?;
    let s = guard_post(&app, &headers, &f.csrf, Role::Approver)?;
    let result = async {
        let a = super::approvals::autonomy(&app)?
            .approve(&id, &s.identity.name)
            .await?;
        Ok(if a.newly {
            format!(
                "approved {id}; {}",
                a.decided
                    .as_ref()
                    .map_or_else(|| "nothing to start".into(), decided_text)
            )
        } else {
            format!("{id} was already approved")
        })
    }
    .await;
    Ok(done(&render::back_to(&f.back), &s, result))
}

#[derive(Debug, Deserialize)]
pub struct RejectForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

/// `POST /ui/approvals/{id}/reject`.
pub async fn reject(
    State(app): State<AppState>,
    headers: HeaderMap,
    UiPath(id): UiPath,
    body: Result<Form<RejectForm>, FormRejection>,
) -> Result<Response, UiError> {
    let f = form(body, None)?;
    let s = guard_post(&app, &headers, &f.csrf, Role::Approver)?;
    let result = async {
        super::approvals::autonomy(&app)?
            .reject(&id, &s.identity.name, &f.reason)
            .await?;
        Ok(format!("rejected {id}: {}", f.reason.trim()))
    }
    .await;
    Ok(done(&render::back_to(&f.back), &s, result))
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    severity: String,
    #[serde(default)]
    comment: String,
}

/// `POST /ui/incidents/{id}/confirm`.
pub async fn confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    UiPath(id): UiPath,
    body: Result<Form<ConfirmForm>, FormRejection>,
) -> Result<Response, UiError> {
    let f = form(body, None)?;
    let s = guard_post(&app, &headers, &f.csrf, Role::Approver)?;
    let back = render::back_to(&id);
    let result = async {
        let (correct, severity) = super::approvals::parse_verdict(&f.verdict, Some(&f.severity))?;
        let incident = super::approvals::autonomy(&app)?
            .confirm(&id, &s.identity.name, correct, severity, &f.comment)
            .await?;
        Ok(format!(
            "recorded the verdict on {}: {}{}",
            incident.id,
            if correct { "correct" } else { "misfix" },
            severity.map_or(String::new(), |s| format!(" ({})", s.as_str()))
        ))
    }
    .await;
    Ok(done(&back, &s, result))
}
