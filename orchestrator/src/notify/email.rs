//! The `email` sink: one plain-text message per notification over SMTP (lettre), to the
//! receiver's `to` list from its `from`.
//!
//! The receiver's URL says where and how: `smtp://user:password@relay.example.com:587` sends
//! with STARTTLS **required** (a relay that does not offer it is refused, never plaintext),
//! `smtps://…:465` with TLS from the first byte, and `smtp://…?tls=none` in plaintext (only for a
//! relay on loopback). The user and password, when present, authenticate (AUTH PLAIN or LOGIN,
//! after TLS). `ca_file` adds a CA to trust (a private relay); otherwise the system's roots.
//! A permanent SMTP answer (5xx: a refused login, a refused recipient) is not retried; anything
//! else (connection, TLS, timeout, 4xx) is.

use std::time::Duration;

use chrono::SecondsFormat;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Mailboxes};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::Url;

use super::Notification;
use super::deliver::Outcome;

/// Where an email receiver's messages come from and go to.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// PEM of a CA to trust besides the system's roots.
    pub ca_pem: Option<String>,
}

/// The SMTP transport for `url` (smtp or smtps, see the module doc).
pub(crate) fn transport(
    url: &Url,
    email: &EmailConfig,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let host = url.host_str().ok_or("the SMTP URL has no host")?.to_string();
    let implicit = url.scheme() == "smtps";
    let plaintext = url.query_pairs().any(|(k, v)| k == "tls" && v == "none");
    let mut params = TlsParameters::builder(host.clone());
    if let Some(pem) = &email.ca_pem {
        use rustls_pki_types::pem::PemObject as _;
        let certificates = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
            .take_while(Result::is_ok)
            .count();
        if certificates == 0 {
            return Err("ca_file holds no PEM certificate".into());
        }
        let ca = Certificate::from_pem(pem.as_bytes())
            .map_err(|e| format!("ca_file is not a PEM certificate: {e}"))?;
        params = params.add_root_certificate(ca);
    }
    let params = params
        .build_rustls()
        .map_err(|e| format!("cannot set up TLS for {host}: {e}"))?;
    let tls = if plaintext {
        Tls::None
    } else if implicit {
        Tls::Wrapper(params)
    } else {
        Tls::Required(params)
    };
    let port = url.port().unwrap_or(if implicit { 465 } else { 587 });
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(tls)
        .timeout(Some(timeout));
    if !url.username().is_empty() {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        builder = builder.credentials(Credentials::new(
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        ));
    }
    Ok(builder.build())
}

/// The message for `n`.
pub(crate) fn message(n: &Notification, email: &EmailConfig) -> Result<Message, String> {
    let subject = if n.urgent() {
        format!("[rootfix] URGENT: {}", n.title)
    } else {
        format!("[rootfix] {}", n.title)
    };
    let mut lines = vec![n.title.clone(), String::new()];
    if let Some(banner) = n.kind.banner() {
        lines.push(banner.to_string());
    }
    if !n.text.trim().is_empty() {
        lines.push(n.text.clone());
    }
    lines.push(String::new());
    for (label, value) in [
        ("incident", &n.incident),
        ("action", &n.action),
        ("scope", &n.scope),
        ("details", &n.link),
    ] {
        if let Some(v) = value {
            lines.push(format!("{label}: {v}"));
        }
    }
    lines.push(String::new());
    lines.push(format!(
        "rootfix · {} · {}",
        n.kind.as_str(),
        n.at.to_rfc3339_opts(SecondsFormat::Secs, true)
    ));
    let to: Mailboxes = email.to.iter().cloned().collect();
    Message::builder()
        .from(email.from.clone())
        .mailbox(lettre::message::header::To::from(to))
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(lines.join("\n"))
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// Sends `message`: delivered, retried, or refused for good.
pub(crate) async fn send(transport: &AsyncSmtpTransport<Tokio1Executor>, message: Message) -> Outcome {
    match transport.send(message).await {
        Ok(_) => Outcome::Delivered,
        Err(e) if e.is_permanent() => Outcome::Refused(format!("SMTP refused: {e}")),
        Err(e) => Outcome::Retry {
            reason: format!("SMTP: {}", crate::evidence::client::error_chain(&e)),
            after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NotificationKind;

    #[test]
    fn the_message_has_the_subject_facts_and_footer() {
        let email = EmailConfig {
            from: "rootfix <rootfix@example.com>".parse().expect("mailbox"),
            to: vec!["oncall@example.com".parse().expect("mailbox")],
            ca_pem: None,
        };
        let n = Notification::new(
            NotificationKind::RollbackFailed,
            "rollback failed",
            "replicas stuck",
        )
        .with_incident("inc-9");
        let text = String::from_utf8(message(&n, &email).expect("message").formatted()).expect("utf-8");
        assert!(
            text.contains("Subject: [rootfix] URGENT: rollback failed"),
            "{text}"
        );
        assert!(text.contains("To: oncall@example.com"), "{text}");
        assert!(text.contains("incident: inc-9"), "{text}");
        let url = Url::parse("smtp://u:p%40ss@relay.example.com").expect("url");
        assert!(transport(&url, &email, Duration::from_secs(1)).is_ok());
        let bad = EmailConfig {
            ca_pem: Some("not a certificate".into()),
            ..email
        };
        assert!(transport(&url, &bad, Duration::from_secs(1)).is_err());
    }
}
