//! The TLS settings of watermeter's outgoing connections (forwarding, MQTT): rustls
//! on the ring provider, trusting the system's CA store plus the owner's own CA from
//! `ca_file`, as `[smtp]` does through lettre.
//!
//! Built once when an integration starts; an unreadable or empty `ca_file` is an
//! error naming the file (config validation already checked it, but the file may
//! have changed since).

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A client configuration trusting the system's roots and every certificate in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    // The system store may be missing or partly unreadable (a minimal image): the
    // certificates that load are used, and `ca_file` can stand alone.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| format!("ca_file {}: not a readable PEM file ({e})", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "ca_file {}: holds no certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                format!(
                    "ca_file {}: a certificate in it is not usable as a CA ({e})",
                    path.display()
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("setting up TLS failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let e = client_config(Some(&path)).unwrap_err();
        assert!(e.contains("ca.pem") && e.contains("no certificate"), "{e}");
        let e = client_config(Some(&dir.path().join("missing.pem"))).unwrap_err();
        assert!(e.contains("missing.pem"), "{e}");
    }

    #[test]
    fn without_a_ca_file_the_system_roots_suffice() {
        assert!(client_config(None).is_ok());
    }
}
