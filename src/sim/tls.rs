//! `scanpay sim --tls-cert FILE --tls-key FILE [--client-ca FILE]`: the
//! simulator over HTTPS (rustls with ring). With a client CA, a client
//! certificate is checked against it during the handshake (a certificate from
//! another CA ends the handshake), and `secapi/…` calls without one are
//! refused, as the real gateway refuses a refund without the merchant's
//! certificate. Other calls need none, as at the real gateway.

use std::path::Path;
use std::sync::Arc;

use actix_web::dev::Extensions;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Marks a connection whose client presented a certificate the CA signed.
#[derive(Debug, Clone, Copy)]
pub struct ClientCertificate;

/// The simulator's TLS: its certificate and key, and the CA of client certificates.
pub struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub client_ca: Option<&'a Path>,
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

/// The rustls server configuration for `files`.
pub fn server_config(files: &TlsFiles<'_>) -> anyhow::Result<rustls::ServerConfig> {
    crate::base::http::install_crypto_provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(files.cert)?)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{} is not a PEM certificate: {e}", files.cert.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&read(files.key)?)
        .map_err(|e| anyhow::anyhow!("{} is not a PEM private key: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&read(ca)?) {
                let c = c.map_err(|e| {
                    anyhow::anyhow!("{} is not a PEM certificate: {e}", ca.display())
                })?;
                roots.add(c)?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                // Queries need no certificate; refunds are refused without one.
                .allow_unauthenticated()
                .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Notes on the connection whether its client presented a verified certificate.
pub fn note_client_certificate(conn: &dyn std::any::Any, ext: &mut Extensions) {
    use actix_tls::accept::rustls_0_23::TlsStream;
    if let Some(tls) = conn.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() {
        let (_, session) = tls.get_ref();
        if session.peer_certificates().is_some_and(|c| !c.is_empty()) {
            ext.insert(ClientCertificate);
        }
    }
}
