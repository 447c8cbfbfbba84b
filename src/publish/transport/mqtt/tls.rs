//! TLS to the broker (`[mqtt] tls`, or an `mqtts://` address): rustls with the *ring*
//! provider, TLS 1.2 and 1.3, the server's certificate checked against `ca_file` (PEM) or, by
//! default, the system's roots (rustls-native-certs: `/etc/ssl/certs` on Debian), and its name
//! against the broker's host (a DNS name or an IP address, as in the certificate's
//! subjectAltName). An optional client certificate and key (PEM; PKCS#8, PKCS#1 or SEC1) give
//! mutual TLS. Every file is read once at start, and any problem with one is one line that
//! stops the start; a broker whose certificate does not verify is one line per outage, like any
//! other refusal (the transport keeps trying).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the TLS material is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSpec {
    /// The certificate authorities to trust (PEM); `None`: the system's.
    pub ca_file: Option<PathBuf>,
    /// A client certificate chain (PEM), for brokers that require one.
    pub client_cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub client_key_file: Option<PathBuf>,
}

fn certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the {what} {} is not PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "the {what} {} holds no certificate (expected PEM: -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The client configuration for `spec`, or one line saying what is wrong.
pub fn client_config(spec: &TlsSpec) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &spec.ca_file {
        Some(f) => {
            let (added, _) = roots.add_parsable_certificates(certs(f, "ca_file")?);
            if added == 0 {
                return Err(format!("ca_file {}: no usable CA certificate", f.display()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "no system CA certificates found (install ca-certificates, or set [mqtt] ca_file)"
                        .into(),
                );
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let config = match (&spec.client_cert_file, &spec.client_key_file) {
        (Some(c), Some(k)) => {
            let chain = certs(c, "client_cert_file")?;
            let key = PrivateKeyDer::from_pem_file(k).map_err(|e| {
                format!(
                    "client_key_file {}: no private key read ({e}; expected PEM)",
                    k.display()
                )
            })?;
            super::warn_if_others_may_read(k, "client key file");
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate and key: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("client_cert_file and client_key_file go together".into()),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_empty_and_mismatched_files_are_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let cases = [
            (
                TlsSpec {
                    ca_file: Some(dir.path().join("nope.pem")),
                    ..TlsSpec::default()
                },
                "cannot read the ca_file",
            ),
            (
                TlsSpec {
                    ca_file: Some(empty.clone()),
                    ..TlsSpec::default()
                },
                "holds no certificate",
            ),
            (
                TlsSpec {
                    client_cert_file: Some(empty.clone()),
                    ..TlsSpec::default()
                },
                "go together",
            ),
        ];
        for (spec, says) in cases {
            let e = client_config(&spec).unwrap_err();
            assert!(e.contains(says) && !e.contains('\n'), "{spec:?}: {e}");
        }
    }
}
