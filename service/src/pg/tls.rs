//! TLS for the PostgreSQL listener, from the configured PEM certificate chain and key.
//!
//! Loaded once at start; anything that cannot be loaded — a missing file, no certificate, no
//! key, a key that is not the certificate's — stops the service with the reason, so it never
//! runs in plain text when TLS was asked for.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::error::CliError;

/// Builds the acceptor for `files`, or says what is wrong with them (exit code 2: the
/// configuration is the operator's input).
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, CliError> {
    let cert_path = files.cert.display();
    let key_path = files.key.display();
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| CliError::input(format!("[serve] pg_tls_cert {cert_path}: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CliError::input(format!("[serve] pg_tls_cert {cert_path}: {e}")))?;
    if certs.is_empty() {
        return Err(CliError::input(format!(
            "[serve] pg_tls_cert {cert_path}: no PEM certificate in the file"
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        CliError::input(format!(
            "[serve] pg_tls_key {key_path}: no PEM private key could be read ({e})"
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::runtime(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            CliError::input(format!(
                "[serve] pg_tls_cert {cert_path} with pg_tls_key {key_path}: {e}"
            ))
        })?;
    // PostgreSQL 17 clients may start TLS directly (sslnegotiation=direct), naming the
    // protocol by ALPN.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
