//! TLS to MySQL/MariaDB under Debezium's MySQL keys, through mysql_async's rustls: every
//! connection the connector opens (catalog, snapshot, binlog) goes through [`TlsSettings`].
//!
//! # Contract
//! * `database.ssl.mode`: `disabled` (plain TCP); `preferred` (Debezium's default: TLS when
//!   the server offers it, plain otherwise, the certificate not checked, as MySQL's client);
//!   `required` (TLS or fail, the certificate not checked); `verify_ca` (the certificate must
//!   chain to `database.ssl.truststore`; with mysql_async 0.37 on this rustls it must also name
//!   the host, see [`TlsSettings::hint`]); `verify_identity` (that, and name
//!   `database.hostname`).
//! * `database.ssl.truststore`: the CA certificates as PEM (Debezium reads a Java truststore;
//!   one is refused with the `keytool` export that gives the PEM). Without it the verifying
//!   modes trust the public web CAs (managed services).
//! * `database.ssl.keystore`: a client certificate and its unencrypted key in one PEM file
//!   (`database.ssl.keystore.password` set is refused: encrypted keys are not read).
//! * A certificate that does not verify fails the task with the reason and the key to change;
//!   it is not retried.

use std::path::PathBuf;

use mysql_async::{ClientIdentity, SslOpts};
use sluice_api::config::Config;
use sluice_api::{Error, Result};

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
    keystore: Option<PathBuf>,
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
        if let Some(path) = &keystore {
            let pem = read(path, "database.ssl.keystore")?;
            if !config.secret("database.ssl.keystore.password")?.is_empty()
                || pem.contains("ENCRYPTED")
            {
                return Err(Error::config(
                    "`database.ssl.keystore`: sluice reads an unencrypted PEM key; decrypt it \
                     (`openssl pkey -in key.pem -out plain.pem`), keep the file readable by the \
                     worker only, and leave database.ssl.keystore.password empty",
                ));
            }
            if !pem.contains("-----BEGIN CERTIFICATE-----") || !pem.contains("PRIVATE KEY-----") {
                return Err(Error::config(format!(
                    "`database.ssl.keystore={}` must hold the client certificate and its private \
                     key, both PEM, in one file (`cat client.crt client.key`)",
                    path.display()
                )));
            }
        }
        Ok(TlsSettings {
            mode,
            truststore,
            keystore,
        })
    }

    /// mysql_async's TLS options for the mode; `None` for plain TCP.
    pub fn ssl_opts(&self) -> Option<SslOpts> {
        let mut opts = SslOpts::default();
        match self.mode {
            SslMode::Disabled => return None,
            SslMode::Preferred | SslMode::Required => {
                opts = opts
                    .with_danger_accept_invalid_certs(true)
                    .with_danger_skip_domain_validation(true);
            }
            SslMode::VerifyCa => opts = opts.with_danger_skip_domain_validation(true),
            SslMode::VerifyIdentity => {}
        }
        if let Some(truststore) = &self.truststore {
            opts = opts
                .with_root_certs(vec![truststore.clone().into()])
                .with_disable_built_in_roots(true);
        }
        if let Some(keystore) = &self.keystore {
            opts = opts.with_client_identity(Some(ClientIdentity::new(
                keystore.clone().into(),
                keystore.clone().into(),
            )));
        }
        Some(opts)
    }

    /// The reason and the key to change for a failed TLS connection, from its message;
    /// `None` when it is not about TLS.
    pub fn hint(&self, message: &str, host: &str) -> Option<String> {
        if message.contains("NotValidForName") || message.contains("not valid for name") {
            // mysql_async skips the name check by matching rustls's error text, which this
            // rustls words differently: verify_ca checks the name as verify_identity does.
            let alternative = if self.mode == SslMode::VerifyCa {
                "(verify_ca checks the name too with sluice's TLS stack), or \
                 database.ssl.mode=required to encrypt without checking"
            } else {
                "or database.ssl.mode=required to encrypt without checking"
            };
            return Some(format!(
                "the server's certificate does not name `{host}`: set database.hostname to a \
                 name the certificate lists {alternative}"
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
