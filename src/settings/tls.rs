//! `[server]` TLS keys: which certificate the server presents, if any.

use std::path::{Path, PathBuf};

use super::{Settings, SettingsError, invalid};

/// Where the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files: the certificate chain and its private key.
    Files {
        /// The chain, leaf first.
        cert: PathBuf,
        /// The key.
        key: PathBuf,
    },
    /// A certificate generated on the first start and kept in `<data_dir>/tls/`.
    SelfSigned {
        /// `<data_dir>/tls`.
        dir: PathBuf,
    },
}

impl Settings {
    /// How the server terminates TLS; `None` for plain HTTP.
    pub fn tls_source(&self) -> Option<TlsSource> {
        let server = &self.server;
        match server.tls.trim() {
            "self-signed" => Some(TlsSource::SelfSigned {
                dir: self.storage.data_dir.join("tls"),
            }),
            _ if !server.tls_cert_file.is_empty() => Some(TlsSource::Files {
                cert: PathBuf::from(&server.tls_cert_file),
                key: PathBuf::from(&server.tls_key_file),
            }),
            _ => None,
        }
    }

    /// `server.tls` is `""`, `"off"`, `"files"` or `"self-signed"`; the files come in pairs.
    pub(super) fn validate_tls(&self) -> Result<(), SettingsError> {
        let server = &self.server;
        let mode = server.tls.trim();
        if !["", "off", "files", "self-signed"].contains(&mode) {
            return Err(invalid(
                "server.tls",
                "must be \"off\", \"files\" or \"self-signed\"",
            ));
        }
        let (cert, key) = (
            !server.tls_cert_file.is_empty(),
            !server.tls_key_file.is_empty(),
        );
        if cert != key {
            return Err(invalid(
                "server.tls_cert_file",
                "server.tls_cert_file and server.tls_key_file go together",
            ));
        }
        if mode == "files" && !cert {
            return Err(invalid(
                "server.tls",
                "\"files\" needs server.tls_cert_file and server.tls_key_file",
            ));
        }
        if mode == "off" && cert {
            return Err(invalid(
                "server.tls",
                "is \"off\" but certificate files are configured",
            ));
        }
        for file in [&server.tls_cert_file, &server.tls_key_file] {
            if !file.is_empty() && !Path::new(file).is_file() {
                return Err(invalid(
                    "server.tls_cert_file",
                    &format!("{file} is not a readable file"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(adjust: impl FnOnce(&mut Settings)) -> Result<(), SettingsError> {
        let mut settings = Settings::defaults().expect("defaults");
        adjust(&mut settings);
        settings.validate_tls()
    }

    #[test]
    fn tls_modes_and_files_are_checked_and_chosen() {
        assert!(with(|_| {}).is_ok(), "off by default");
        assert!(
            with(|s| s.server.tls = "on".into()).is_err(),
            "unknown mode"
        );
        assert!(
            with(|s| s.server.tls = "files".into()).is_err(),
            "files without files"
        );
        let cert = tempfile::NamedTempFile::new().expect("file");
        let path = cert.path().display().to_string();
        assert!(
            with(|s| s.server.tls_cert_file = path.clone()).is_err(),
            "a certificate without its key"
        );
        assert!(
            with(|s| {
                s.server.tls_cert_file = path.clone();
                s.server.tls_key_file = "/nonexistent/key.pem".into();
            })
            .is_err(),
            "a missing key file"
        );
        let mut settings = Settings::defaults().expect("defaults");
        settings.server.tls = "self-signed".into();
        assert_eq!(
            settings.tls_source(),
            Some(TlsSource::SelfSigned {
                dir: settings.storage.data_dir.join("tls")
            })
        );
        settings.server.tls = "off".into();
        assert_eq!(settings.tls_source(), None);
    }
}
