//! TLS to MySQL/MariaDB under Debezium's MySQL keys, through mysql_async's rustls: every
//! connection the connector opens (catalog, snapshot, binlog) goes through [`TlsSettings`].
//!
//! # Contract
//! * `database.ssl.mode`: `disabled` (plain TCP); `preferred` (Debezium's default: TLS when
//!   the server offers it, plain otherwise, the certificate not checked, as MySQL's client);
//!   `required` (TLS or fail, the certificate not checked); `verify_ca` (the certificate must
//!   chain to `database.ssl.truststore`, whatever names it lists: see [`crate::ca_check`]);
//!   `verify_identity` (that, and name `database.hostname`).
//! * `database.ssl.truststore`: the CA certificates as PEM (Debezium reads a Java truststore;
//!   one is refused with the `keytool` export that gives the PEM). Without it the verifying
//!   modes trust the public web CAs (managed services).
//! * `database.ssl.keystore`: a client certificate and its key in one PEM file; an encrypted
//!   (PKCS#8) key is decrypted in memory with `database.ssl.keystore.password`.
//! * A certificate that does not verify fails the task with the reason and the key to change;
//!   it is not retried.

use std::path::{Path, PathBuf};

use mysql_async::{ClientIdentity, SslOpts};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sluice_api::config::Config;
use sluice_api::{Error, Result, Secret};

/// `database.ssl.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disabled,
    Preferred,
    Required,
    VerifyCa,
    VerifyIdentity,
}

impl SslMode {
    /// The mode as `database.ssl.mode` writes it.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disabled => "disabled",
            SslMode::Preferred => "preferred",
            SslMode::Required => "required",
            SslMode::VerifyCa => "verify_ca",
            SslMode::VerifyIdentity => "verify_identity",
        }
    }
}

/// The connector's TLS settings.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub mode: SslMode,
    truststore: Option<PathBuf>,
    identity: Option<ClientKeystore>,
}

/// `database.ssl.keystore`: the client certificate chain, and its key decrypted with
/// `database.ssl.keystore.password` when it is encrypted (kept in memory, never written).
struct ClientKeystore {
    certificates: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for ClientKeystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKeystore")
            .field("certificates", &self.certificates.len())
            .field("key", &"[hidden]")
            .finish()
    }
}

impl Clone for ClientKeystore {
    fn clone(&self) -> Self {
        ClientKeystore {
            certificates: self.certificates.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl ClientKeystore {
    fn read(path: &Path, password: &Secret) -> Result<ClientKeystore> {
        let key = "database.ssl.keystore";
        let bytes = std::fs::read(path).map_err(|e| {
            Error::config(format!("`{key}={}`: cannot read it: {e}", path.display()))
        })?;
        let what = format!("`{key}={}`", path.display());
        let layout = || {
            Error::config(format!(
                "{what} must hold the client certificate and its private key, both PEM, in one \
                 file (`cat client.crt client.key`; from a Java or PKCS#12 keystore: `openssl \
                 pkcs12 -in keystore.p12 -out client.pem`)"
            ))
        };
        if !String::from_utf8_lossy(&bytes).contains("-----BEGIN") {
            return Err(layout());
        }
        // The key first: its errors (an encrypted key's password, a legacy encryption) say
        // more than the certificate reader's would about the same block.
        let private_key = sluice_tls::private_key(
            &bytes,
            password,
            sluice_tls::KeySource {
                what: &what,
                password_key: "database.ssl.keystore.password",
            },
        )?;
        let certificates = sluice_tls::certificates(&bytes, &what).map_err(|_| layout())?;
        Ok(ClientKeystore {
            certificates,
            key: private_key,
        })
    }

    fn identity(&self) -> Result<ClientIdentity> {
        let key = sluice_tls::private_key_pem(&self.key).ok_or_else(|| {
            Error::config("`database.ssl.keystore`: a key of a kind sluice cannot use")
        })?;
        Ok(ClientIdentity::new(
            sluice_tls::certificates_pem(&self.certificates)
                .into_bytes()
                .into(),
            key.into_bytes().into(),
        ))
    }
}

impl TlsSettings {
    /// Reads the `database.ssl.*` keys; the files are checked now so that a wrong one fails
    /// the start naming its key.
    pub fn from_config(config: &Config) -> Result<TlsSettings> {
        let mode = match config
            .string("database.ssl.mode")?
            .to_ascii_lowercase()
            .as_str()
        {
            "disabled" | "disable" => SslMode::Disabled,
            "preferred" | "prefer" => SslMode::Preferred,
            "required" | "require" => SslMode::Required,
            "verify_ca" | "verify-ca" => SslMode::VerifyCa,
            "verify_identity" | "verify-full" => SslMode::VerifyIdentity,
            other => {
                return Err(Error::config(format!(
                    "`database.ssl.mode={other}`: write disabled, preferred, required, verify_ca \
                     or verify_identity"
                )));
            }
        };
        let file = |key: &str| -> Result<Option<PathBuf>> {
            Ok(Some(config.string(key)?)
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from))
        };
        let truststore = file("database.ssl.truststore")?;
        if mode == SslMode::VerifyCa && truststore.is_none() {
            // Without a CA of its own, verify_ca would trust every public CA for any name:
            // anyone with a public certificate could stand in for the server. MySQL's client
            // refuses VERIFY_CA without --ssl-ca too.
            return Err(Error::config(
                "`database.ssl.mode=verify_ca` checks the server's certificate against the CA in \
                 database.ssl.truststore, whatever names it lists: set database.ssl.truststore \
                 to the CA certificate (PEM), or use verify_identity to check a public \
                 certificate with its name",
            ));
        }
        let keystore = file("database.ssl.keystore")?;
        if let Some(path) = &truststore {
            let pem = read(path, "database.ssl.truststore")?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(Error::config(format!(
                    "`database.ssl.truststore={}` holds no PEM certificate: sluice reads the CA \
                     certificates as PEM (export a Java truststore's with `keytool -exportcert \
                     -rfc -keystore <truststore> -alias <alias>`)",
                    path.display()
                )));
            }
        }
        let identity = match &keystore {
            Some(path) => Some(ClientKeystore::read(
                path,
                &config.secret("database.ssl.keystore.password")?,
            )?),
            None => None,
        };
        Ok(TlsSettings {
            mode,
            truststore,
            identity,
        })
    }

    /// The client certificate and key of `database.ssl.keystore`, for a connection of
    /// sluice's own (the verify_ca probe).
    pub(crate) fn client_certificate(
        &self,
    ) -> Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
        self.identity
            .as_ref()
            .map(|keystore| (keystore.certificates.clone(), keystore.key.clone_key()))
    }

    /// Whether `database.ssl.keystore` gives a client certificate.
    pub fn has_client_certificate(&self) -> bool {
        self.identity.is_some()
    }

    /// The truststore's CA certificates; `None` without one (the public web CAs).
    pub fn roots(&self) -> Result<Option<Vec<CertificateDer<'static>>>> {
        self.truststore
            .as_deref()
            .map(|path| sluice_tls::read_certificates(path, "database.ssl.truststore"))
            .transpose()
    }

    /// mysql_async's TLS options for the mode; `None` for plain TCP. `verified_name`: for
    /// verify_ca, the name [`crate::ca_check::name_to_verify`] found in the certificate, which
    /// the connection then checks instead of the host's.
    pub fn ssl_opts(&self, verified_name: Option<String>) -> Result<Option<SslOpts>> {
        let mut opts = SslOpts::default();
        match self.mode {
            SslMode::Disabled => return Ok(None),
            SslMode::Preferred | SslMode::Required => {
                opts = opts
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true);
            }
            SslMode::VerifyCa => {
                if let Some(name) = verified_name {
                    opts = opts.with_danger_tls_hostname_override(Some(name));
                }
            }
            SslMode::VerifyIdentity => {}
        }
        if let Some(truststore) = &self.truststore {
            opts = opts
                .with_root_certs(vec![truststore.clone().into()])
                .with_disable_built_in_roots(true);
        }
        if let Some(keystore) = &self.identity {
            opts = opts.with_client_identity(Some(keystore.identity()?));
        }
        Ok(Some(opts))
    }

    /// The reason and the key to change for a failed TLS connection, from its message;
    /// `None` when it is not about TLS.
    pub fn hint(&self, message: &str, host: &str) -> Option<String> {
        if sluice_tls::names_mismatch(message) {
            if self.mode == SslMode::VerifyCa {
                // The check before the connection saw a certificate that verified; this
                // connection was shown another one.
                return Some(
                    "the server showed a certificate other than the one checked just before \
                     (several servers behind one name, or a certificate replaced meanwhile): \
                     point database.hostname at one server, or use verify_identity with a name \
                     every server's certificate lists"
                        .to_owned(),
                );
            }
            return Some(format!(
                "the server's certificate does not name `{host}`: set database.hostname to a \
                 name the certificate lists, or database.ssl.mode=verify_ca to check only the \
                 CA, or required to encrypt without checking"
            ));
        }
        if message.contains("invalid peer certificate") || message.contains("UnknownIssuer") {
            return Some(
                "the server's certificate does not verify against database.ssl.truststore: point \
                 it at the CA that signed the server's certificate, or use \
                 database.ssl.mode=required to encrypt without checking"
                    .to_owned(),
            );
        }
        if message.contains("server does not have this capability") {
            return Some(format!(
                "the server does not offer TLS and database.ssl.mode={}: enable TLS on the \
                 server (ssl_cert, ssl_key) or set database.ssl.mode=preferred or disabled",
                self.mode.name()
            ));
        }
        None
    }
}

fn read(path: &std::path::Path, key: &str) -> Result<String> {
    std::fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .map_err(|e| Error::config(format!("`{key}={}`: cannot read it: {e}", path.display())))
}
