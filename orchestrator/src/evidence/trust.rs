//! Trust roots and the TLS crypto provider shared by the HTTP probe and the backends' clients.
//!
//! Roots are the system store (on Debian, the `ca-certificates` bundle under `/etc/ssl/certs`, as
//! `rustls-native-certs` finds it; `SSL_CERT_FILE`/`SSL_CERT_DIR` override it) plus the configured
//! `extra_ca_files`. The system store rather than a compiled-in Mozilla list, so that rootfix
//! trusts exactly what the machine's own tools (`curl`, the `go` command) trust, including a
//! corporate CA added with `update-ca-certificates`: the probe then diagnoses what they see.
//!
//! The provider is always *ring*, passed explicitly, so the process-wide default (which another
//! dependency could set to aws-lc) never matters.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;

use super::config::EvidenceConfigError;

/// Loaded once at start; cheap to share.
#[derive(Debug, Clone)]
pub struct Trust {
    pub roots: Arc<RootCertStore>,
    pub provider: Arc<CryptoProvider>,
}

impl Trust {
    /// The system store plus `extra`. A system store that cannot be read is logged, not fatal:
    /// probes then report every chain as unverified, which is what a client on this machine sees.
    pub fn load(extra: &[CertificateDer<'static>]) -> Result<Self, EvidenceConfigError> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "reading the system's trusted certificates");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system trust roots loaded");
        if added == 0 {
            tracing::warn!("the system trust store is empty: install ca-certificates, or set extra_ca_files");
        }
        Self::with_roots(roots, extra)
    }

    /// `roots` plus `extra`.
    pub fn with_roots(
        mut roots: RootCertStore,
        extra: &[CertificateDer<'static>],
    ) -> Result<Self, EvidenceConfigError> {
        for cert in extra {
            roots.add(cert.clone()).map_err(|e| EvidenceConfigError {
                field: "http.extra_ca_files".into(),
                message: format!("a certificate cannot be a trust anchor: {e}"),
            })?;
        }
        Ok(Self {
            roots: Arc::new(roots),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// A verifying client config over these roots, for the backends' clients.
    pub fn client_config(&self) -> Result<ClientConfig, rustls::Error> {
        Ok(ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth())
    }
}
