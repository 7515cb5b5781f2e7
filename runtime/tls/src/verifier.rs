//! The server-certificate checks sluice's own TLS clients choose between: none (encrypted,
//! the peer not authenticated: libpq's `require`), the chain only (`verify-ca`), or the chain
//! and the name (rustls's own check).

use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// What a [`ServerVerifier`] checks of the server's certificate.
#[derive(Debug, Clone)]
pub enum ServerCheck {
    /// Nothing: the connection is encrypted, the server not authenticated.
    Nothing,
    /// That its chain leads to a trusted CA, whatever names it lists.
    ChainOnly(Arc<WebPkiServerVerifier>),
    /// That its chain leads to a trusted CA and it names the host dialled.
    ChainAndName(Arc<WebPkiServerVerifier>),
}

/// A rustls server-certificate verifier doing [`ServerCheck`]; with `ChainOnly` it keeps the
/// names a certificate that failed only the name check lists ([`ServerVerifier::listed`]).
/// Handshake signatures are always checked.
#[derive(Debug)]
pub struct ServerVerifier {
    check: ServerCheck,
    provider: Arc<CryptoProvider>,
    listed: Mutex<Option<Vec<String>>>,
}

impl ServerVerifier {
    /// A verifier doing `check` with `provider`'s signature algorithms.
    pub fn new(check: ServerCheck, provider: Arc<CryptoProvider>) -> ServerVerifier {
        ServerVerifier {
            check,
            provider,
            listed: Mutex::new(None),
        }
    }

    /// The names (as rustls lists them: `DnsName("db.example.com")`) of the last certificate
    /// accepted under `ChainOnly` although it does not name the host; `None` when it did.
    pub fn listed(&self) -> Option<Vec<String>> {
        self.listed.lock().ok().and_then(|listed| listed.clone())
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (webpki, name_checked) = match &self.check {
            ServerCheck::Nothing => return Ok(ServerCertVerified::assertion()),
            ServerCheck::ChainOnly(webpki) => (webpki, false),
            ServerCheck::ChainAndName(webpki) => (webpki, true),
        };
        let names = match webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            // webpki checks the chain before the name: these come only for a good chain.
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                presented,
                ..
            })) if !name_checked => presented,
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
                if !name_checked =>
            {
                Vec::new()
            }
            other => return other,
        };
        if let Ok(mut listed) = self.listed.lock() {
            *listed = Some(names);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
