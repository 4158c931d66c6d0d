//! TLS for fleetgate's clients (fleetgate-agent and the CLI): trust the system's root
//! certificates, or only the CA certificates of a PEM file (`--ca-file`), or exactly one server
//! certificate given by the SHA-256 fingerprint of its DER encoding (`--pin-sha256`, for a
//! server running with `server.tls = "self-signed"`, which prints that fingerprint).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// Which server certificates a client accepts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trust<'a> {
    /// Only CAs from this PEM file (else the system's roots).
    pub ca_file: Option<&'a Path>,
    /// Only the certificate with this SHA-256 fingerprint (hex, colons allowed).
    pub pin_sha256: Option<&'a str>,
}

/// The rustls provider every fleetgate client uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration (TLS 1.2 and 1.3) for `trust`.
pub fn client_config(trust: Trust<'_>) -> anyhow::Result<Arc<ClientConfig>> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let config = match (trust.pin_sha256, trust.ca_file) {
        (Some(_), Some(_)) => bail!("give either a CA file or a pinned fingerprint, not both"),
        (Some(pin), None) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedCertificate {
                pin: parse_pin(pin)?,
                algorithms: provider().signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        (None, ca_file) => builder
            .with_root_certificates(roots(ca_file)?)
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn roots(ca_file: Option<&Path>) -> anyhow::Result<rustls::RootCertStore> {
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
            for cert in rustls_native_certs::load_native_certs().certs {
                if let Err(err) = roots.add(cert) {
                    tracing::debug!(error = %err, "skipping an unusable system certificate");
                }
            }
        }
    }
    if roots.is_empty() {
        bail!("no trusted certificates (check --ca-file or the system's CA bundle)");
    }
    Ok(roots)
}

/// Reads a fingerprint: 64 hex digits, optionally in colon-separated pairs.
pub fn parse_pin(text: &str) -> anyhow::Result<[u8; 32]> {
    let digits: String = text.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(digits.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
    bytes.with_context(|| format!("{text:?} is not a SHA-256 fingerprint (64 hex digits)"))
}

/// The SHA-256 fingerprint of a DER certificate, as `AB:CD:…` (what `--pin-sha256` takes).
pub fn fingerprint(cert_der: &[u8]) -> String {
    Sha256::digest(cert_der)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Accepts exactly the certificate with the pinned fingerprint (name and chain are not
/// checked: the pin is the trust), and still checks that the server holds its key.
#[derive(Debug)]
struct PinnedCertificate {
    pin: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Sha256::digest(end_entity.as_ref()).as_slice() == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate does not match the pinned SHA-256 fingerprint".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_read_with_or_without_colons_and_fingerprints_round_trip() {
        let der = b"not really a certificate";
        let shown = fingerprint(der);
        assert_eq!(shown.len(), 32 * 3 - 1);
        let pin = parse_pin(&shown).expect("colon form");
        assert_eq!(
            pin,
            parse_pin(&shown.replace(':', "").to_lowercase()).expect("bare")
        );
        assert_eq!(pin.as_slice(), Sha256::digest(der).as_slice());
        assert!(parse_pin("abcd").is_err());
        assert!(parse_pin(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn a_missing_ca_file_or_a_pin_with_a_ca_file_is_a_clear_error() {
        let missing = client_config(Trust {
            ca_file: Some(Path::new("/nonexistent/ca.pem")),
            pin_sha256: None,
        })
        .err()
        .map(|e| format!("{e:#}"));
        assert!(missing.is_some_and(|m| m.contains("/nonexistent/ca.pem")));
        let both = client_config(Trust {
            ca_file: Some(Path::new("/nonexistent/ca.pem")),
            pin_sha256: Some(&"00".repeat(32)),
        });
        assert!(both.is_err());
    }
}
