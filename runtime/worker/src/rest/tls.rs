//! The https listener's rustls config: the server's PEM certificate chain and key, and, when
//! `listeners.https.ssl.client.auth` asks for it, client certificates checked against the
//! truststore's CAs.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use sluice_api::{Error, Result};

const PREFIX: &str = "listeners.https.ssl.";

/// Builds the listener's config; errors name the key whose file is at fault.
pub(crate) fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    truststore_pem: Option<&[u8]>,
    client_auth: &str,
) -> Result<Arc<ServerConfig>> {
    let chain = certificates(cert_pem, "certificate.location")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        Error::config(format!(
            "`{PREFIX}key.location`: no private key in it ({e})"
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("https listener: {e}")))?;
    let builder = match client_auth {
        "requested" | "required" => {
            let pem = truststore_pem.ok_or_else(|| {
                Error::config(format!(
                    "`{PREFIX}client.auth={client_auth}` checks client certificates against \
                     {PREFIX}truststore.location: set it to a PEM file of the CAs"
                ))
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for ca in certificates(pem, "truststore.location")? {
                roots.add(ca).map_err(|e| {
                    Error::config(format!(
                        "`{PREFIX}truststore.location`: not a usable CA: {e}"
                    ))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if client_auth == "requested" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| Error::config(format!("`{PREFIX}truststore.location`: {e}")))?,
            )
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        Error::config(format!(
            "`{PREFIX}certificate.location` / `{PREFIX}key.location`: the key does not fit \
             the certificate or is of an unsupported kind: {e}"
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn certificates(pem: &[u8], key: &str) -> Result<Vec<CertificateDer<'static>>> {
    sluice_tls::certificates(pem, &format!("`{PREFIX}{key}`"))
}
