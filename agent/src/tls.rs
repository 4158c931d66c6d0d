//! TLS for `wss://`: the system's root certificates, or only the CA given with `--ca-file`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_tungstenite::Connector;

/// A connector trusting the certificates in `ca_file` (PEM), or the system roots when `None`.
pub fn connector(ca_file: Option<&Path>) -> anyhow::Result<Connector> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in CertificateDer::pem_file_iter(path)
                .with_context(|| format!("reading {}", path.display()))?
            {
                roots.add(cert.with_context(|| format!("parsing {}", path.display()))?)?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                if let Err(err) = roots.add(cert) {
                    tracing::debug!(error = %err, "skipping an unusable system certificate");
                }
            }
        }
    }
    if roots.is_empty() {
        bail!("no trusted certificates (check --ca-file or the system's CA bundle)");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Connector::Rustls(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let missing = connector(Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .map(|e| format!("{e:#}"));
        assert!(missing.is_some_and(|m| m.contains("/nonexistent/ca.pem")));
        let empty = tempfile_with("");
        assert!(connector(Some(&empty)).is_err());
    }

    fn tempfile_with(text: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("fleetgate-ca-{}.pem", std::process::id()));
        std::fs::write(&path, text).expect("write");
        path
    }
}
