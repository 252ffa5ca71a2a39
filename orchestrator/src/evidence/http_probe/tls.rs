//! TLS for a probe: a verifier that checks the chain like rustls would but records its verdict
//! and the leaf certificate (issuer, subject, expiry) and lets the handshake finish, so a bad
//! chain is evidence rather than an error; and [`TlsOutcome`], what a probe reports of it.

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde_json::{Value, json};

use super::HttpProber;

impl HttpProber {
    /// A client config whose verifier records its verdict in the returned slot.
    pub(super) fn recording_config(&self) -> Result<(ClientConfig, VerdictSlot), rustls::Error> {
        let seen = Arc::new(Mutex::new(None));
        let inner = WebPkiServerVerifier::builder_with_provider(
            self.trust.roots.clone(),
            self.trust.provider.clone(),
        )
        .build()
        .ok();
        let verifier = RecordingVerifier {
            inner,
            provider: self.trust.provider.clone(),
            seen: seen.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(self.trust.provider.clone())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok((config, seen))
    }
}

/// Where a connection's verifier leaves what it saw.
pub(super) type VerdictSlot = Arc<Mutex<Option<Recorded>>>;

/// What the verifier saw.
#[derive(Debug, Clone)]
pub(super) struct Recorded {
    verdict: Result<(), String>,
    leaf: Leaf,
}

/// The leaf certificate's names and expiry.
#[derive(Debug, Clone, Default)]
struct Leaf {
    issuer: Option<String>,
    subject: Option<String>,
    not_after: Option<String>,
}

impl Leaf {
    fn parse(der: &CertificateDer<'_>) -> Self {
        match x509_parser::parse_x509_certificate(der.as_ref()) {
            Ok((_, cert)) => Self {
                issuer: Some(cert.issuer().to_string()),
                subject: Some(cert.subject().to_string()),
                not_after: chrono::DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            },
            Err(e) => {
                tracing::debug!(error = %e, "the leaf certificate does not parse");
                Self::default()
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct TlsOutcome {
    pub(super) verified: bool,
    pub(super) error: Option<String>,
    leaf: Leaf,
}

impl TlsOutcome {
    pub(super) fn from_recorded(recorded: Option<Recorded>) -> Self {
        match recorded {
            Some(Recorded { verdict, leaf }) => Self {
                verified: verdict.is_ok(),
                error: verdict.err(),
                leaf,
            },
            // A finished handshake always passed through the verifier; be safe if not.
            None => Self {
                verified: false,
                error: Some("the server's certificate was not checked".into()),
                leaf: Leaf::default(),
            },
        }
    }

    /// A handshake that failed: the verifier's verdict if it ran first, else the failure.
    pub(super) fn failed(recorded: Option<Recorded>, handshake_error: &str) -> Self {
        let leaf = recorded.as_ref().map(|r| r.leaf.clone()).unwrap_or_default();
        let error = match recorded.map(|r| r.verdict) {
            Some(Err(verdict)) => verdict,
            _ => handshake_error.to_string(),
        };
        Self {
            verified: false,
            error: Some(error),
            leaf,
        }
    }

    pub(super) fn into_value(self) -> Value {
        json!({
            "verified": self.verified,
            "error": self.error,
            "issuer": self.leaf.issuer,
            "subject": self.leaf.subject,
            "not_after": self.leaf.not_after,
        })
    }
}

/// Verifies the chain like rustls would, but records the verdict and lets the handshake finish,
/// so a bad chain becomes evidence with its issuer. Handshake signatures are still checked: a
/// peer that cannot prove it holds the leaf's key fails the handshake.
#[derive(Debug)]
struct RecordingVerifier {
    /// `None` when there are no trust roots at all: nothing verifies.
    inner: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    seen: VerdictSlot,
}

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match &self.inner {
            Some(inner) => inner
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Err("no trust roots are configured".to_string()),
        };
        let recorded = Recorded {
            verdict,
            leaf: Leaf::parse(end_entity),
        };
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(recorded);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
