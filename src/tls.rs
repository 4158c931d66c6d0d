//! TLS on the server (rustls, TLS 1.2 and 1.3 with rustls' default suites, which include no
//! weak ones): the certificate from PEM files, or a self-signed one generated on the first start
//! and kept. The certificate is served through [`ReloadingCert`], so replacing it (SIGHUP, or the
//! files changing on disk) affects new connections only: open sockets keep theirs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::settings::TlsSource;

/// How often the certificate files are checked for changes.
const FILE_CHECK: Duration = Duration::from_secs(2);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate the server presents, replaceable while it runs.
#[derive(Debug)]
pub struct ReloadingCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadingCert {
    /// The certificate now in use.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn replace(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = key;
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The server's TLS: its rustls configuration and the certificate it serves.
pub struct ServerTls {
    /// For the listener.
    pub config: rustls::ServerConfig,
    /// The certificate, replaceable.
    pub cert: Arc<ReloadingCert>,
    /// Where it came from (to reload it).
    pub source: TlsSource,
}

impl ServerTls {
    /// Loads (or, self-signed, creates) the certificate of `source`; `hosts` are the names a
    /// self-signed certificate is made for.
    pub fn load(source: TlsSource, hosts: &[String]) -> anyhow::Result<Self> {
        let (cert_file, key_file) = files_of(&source, hosts)?;
        let key = certified_key(&cert_file, &key_file)?;
        let cert = Arc::new(ReloadingCert {
            current: RwLock::new(Arc::new(key)),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            config,
            cert,
            source,
        })
    }

    /// The SHA-256 fingerprint of the certificate now served (for `--pin-sha256`).
    pub fn fingerprint(&self) -> String {
        let key = self.cert.current();
        key.cert
            .first()
            .map(|leaf| fleetgate_client_tls::fingerprint(leaf.as_ref()))
            .unwrap_or_default()
    }

    /// Reloads the certificate from its files now; on error the current one stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let (cert_file, key_file) = files_of(&self.source, &[])?;
        let key = certified_key(&cert_file, &key_file)?;
        self.cert.replace(Arc::new(key));
        tracing::info!(fingerprint = %self.fingerprint(), "TLS certificate reloaded");
        Ok(())
    }

    /// Reloads on SIGHUP and whenever the files' modification times change, until the runtime
    /// ends.
    pub fn watch(self: Arc<Self>) {
        let watched = self.clone();
        actix_web::rt::spawn(async move {
            let Ok(mut hangups) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                tracing::warn!("SIGHUP cannot be watched; certificate files are still polled");
                return poll_files(watched).await;
            };
            let polling = actix_web::rt::spawn(poll_files(watched.clone()));
            while hangups.recv().await.is_some() {
                if let Err(err) = watched.reload() {
                    tracing::error!(error = %format!("{err:#}"), "TLS certificate not reloaded; the previous one stays");
                }
            }
            polling.abort();
        });
    }
}

async fn poll_files(tls: Arc<ServerTls>) {
    let stamp = |tls: &ServerTls| -> Option<(SystemTime, SystemTime)> {
        let (cert, key) = files_of(&tls.source, &[]).ok()?;
        Some((modified(&cert)?, modified(&key)?))
    };
    let mut seen = stamp(&tls);
    loop {
        actix_web::rt::time::sleep(FILE_CHECK).await;
        let now = stamp(&tls);
        if now.is_some() && now != seen {
            seen = now;
            if let Err(err) = tls.reload() {
                tracing::error!(error = %format!("{err:#}"), "TLS certificate not reloaded; the previous one stays");
            }
        }
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The certificate and key files of `source`, creating the self-signed pair when missing.
fn files_of(source: &TlsSource, hosts: &[String]) -> anyhow::Result<(PathBuf, PathBuf)> {
    match source {
        TlsSource::Files { cert, key } => Ok((cert.clone(), key.clone())),
        TlsSource::SelfSigned { dir } => {
            let (cert, key) = (dir.join("self-signed.crt"), dir.join("self-signed.key"));
            if !cert.is_file() || !key.is_file() {
                create_self_signed(dir, &cert, &key, hosts)?;
            }
            Ok((cert, key))
        }
    }
}

fn create_self_signed(dir: &Path, cert: &Path, key: &Path, hosts: &[String]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let mut names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    names.extend(hosts.iter().filter(|h| !h.is_empty()).cloned());
    names.dedup();
    let generated =
        rcgen::generate_simple_self_signed(names).context("generating a certificate")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut key_file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key)
        .with_context(|| format!("writing {}", key.display()))?;
    key_file.write_all(generated.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, generated.cert.pem())
        .with_context(|| format!("writing {}", cert.display()))?;
    tracing::info!(cert = %cert.display(), "self-signed TLS certificate created");
    Ok(())
}

/// What `fleetgate doctor` reports of a certificate.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    /// SHA-256 of the leaf.
    pub fingerprint: String,
    /// The leaf's end of validity.
    pub not_after: chrono::DateTime<chrono::Utc>,
}

/// Checks a certificate pair as the server would load it and reads the leaf's expiry.
pub fn inspect(cert_file: &Path, key_file: &Path) -> anyhow::Result<CertificateInfo> {
    let key = certified_key(cert_file, key_file)?;
    let leaf = key.cert.first().context("no certificate")?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|err| anyhow::anyhow!("parsing {}: {err}", cert_file.display()))?;
    let not_after = chrono::DateTime::from_timestamp(parsed.validity().not_after.timestamp(), 0)
        .context("certificate expiry out of range")?;
    Ok(CertificateInfo {
        fingerprint: fleetgate_client_tls::fingerprint(leaf.as_ref()),
        not_after,
    })
}

/// Reads a PEM chain and key into a rustls certified key (the key must match the leaf).
fn certified_key(cert_file: &Path, key_file: &Path) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .with_context(|| format!("reading {}", cert_file.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", cert_file.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{} holds no certificate",
        cert_file.display()
    );
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("reading the private key in {}", key_file.display()))?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .with_context(|| format!("unusable private key in {}", key_file.display()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified.keys_match().with_context(|| {
        format!(
            "{} does not match {}",
            key_file.display(),
            cert_file.display()
        )
    })?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let source = TlsSource::SelfSigned {
            dir: dir.path().join("tls"),
        };
        let first = ServerTls::load(source.clone(), &["gw.example".into()]).expect("created");
        let again = ServerTls::load(source, &[]).expect("reused");
        assert_eq!(
            first.fingerprint(),
            again.fingerprint(),
            "kept across starts"
        );
        let mode = std::fs::metadata(dir.path().join("tls/self-signed.key"))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_key_that_does_not_match_or_a_missing_file_is_refused_and_the_old_certificate_stays() {
        let dir = tempfile::tempdir().expect("dir");
        let one = rcgen::generate_simple_self_signed(vec!["one".into()]).expect("one");
        let two = rcgen::generate_simple_self_signed(vec!["two".into()]).expect("two");
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, one.cert.pem()).expect("cert");
        std::fs::write(&key, one.signing_key.serialize_pem()).expect("key");
        let tls = ServerTls::load(
            TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            &[],
        )
        .expect("loads");
        let before = tls.fingerprint();
        std::fs::write(&key, two.signing_key.serialize_pem()).expect("other key");
        let refused = tls.reload().expect_err("mismatched key");
        assert!(
            format!("{refused:#}").contains("does not match"),
            "{refused:#}"
        );
        assert_eq!(tls.fingerprint(), before, "the previous certificate stays");
        std::fs::write(&cert, two.cert.pem()).expect("new cert");
        tls.reload().expect("matching pair");
        assert_ne!(tls.fingerprint(), before);
    }
}
