//! The REST API's security settings: https listeners (PEM certificate and key, optional client
//! certificates), who may call it (HTTP basic authentication against hashed passwords, bearer
//! tokens) and CORS, under Kafka Connect's key names where it has them.
//!
//! Kafka Connect reads Java keystores; sluice reads PEM. A JKS or PKCS12 keystore is refused
//! with the PEM keys to use instead.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_api::config::{Config, ConfigDef, ConfigKey, ConfigType, Importance, Validator};
use sluice_api::{Error, Result, Secret};

use crate::rest::auth::RestAuth;

const PREFIX: &str = "listeners.https.";

/// The keys, added to the worker's definition.
pub(crate) fn rest_security_keys(def: ConfigDef) -> ConfigDef {
    use ConfigType::*;
    use Importance::*;
    def.key(ConfigKey::optional("listeners.https.ssl.certificate.location", String, "", High,
            "https listener: PEM file of the server certificate (its chain after it)."))
        .key(ConfigKey::optional("listeners.https.ssl.key.location", String, "", High,
            "https listener: PEM file of the certificate's private key (unencrypted)."))
        .key(ConfigKey::optional("listeners.https.ssl.keystore.type", String, "PEM", Medium,
            "Kafka Connect's keystore type: only PEM (a file holding the key and the certificate chain) is read; \
             JKS and PKCS12 are refused with the PEM keys to use instead."))
        .key(ConfigKey::optional("listeners.https.ssl.keystore.location", String, "", Medium,
            "A PEM keystore (the key and the certificate chain in one file), instead of the two .location keys."))
        .key(ConfigKey::optional("listeners.https.ssl.keystore.password", Password, "", Low,
            "Kafka Connect's keystore password; a PEM keystore has none (use listeners.https.ssl.key.password)."))
        .key(ConfigKey::optional("listeners.https.ssl.key.password", Password, "", Low,
            "The password of an encrypted (PKCS#8) listener key."))
        .key(ConfigKey::optional("listeners.https.ssl.truststore.type", String, "PEM", Medium,
            "Only PEM."))
        .key(ConfigKey::optional("listeners.https.ssl.truststore.location", String, "", Medium,
            "PEM file of CA certificates: client certificates must lead to one (ssl.client.auth), and \
             workers of a distributed group trust each other's listeners through it."))
        .key(ConfigKey::optional("listeners.https.ssl.truststore.password", Password, "", Low,
            "Not used for PEM."))
        .key(ConfigKey::optional("listeners.https.ssl.client.auth", String, "none", Medium,
            "none; requested: verify a client certificate when one is shown; required: refuse clients without one.")
            .validate_with(Validator::OneOf(vec!["none", "requested", "required"])))
        .key(ConfigKey::optional("rest.advertised.listener", String, "", Low,
            "http or https: the scheme other workers use to reach this one (default: the listener's)."))
        .key(ConfigKey::optional("rest.extension.classes", List, "", Medium,
            "Kafka Connect's REST extensions: BasicAuthSecurityRestExtension is accepted and needs \
             rest.auth.basic.credentials.file (JAAS files do not apply)."))
        .key(ConfigKey::optional("rest.auth.basic.credentials.file", String, "", High,
            "HTTP basic authentication: a file of `user: hash` lines, each hash an argon2 PHC string \
             (`sluice hash-password`) or a bcrypt hash (`htpasswd -nbB`). Plain-text passwords are refused."))
        .key(ConfigKey::optional("rest.auth.bearer.tokens.file", String, "", High,
            "Bearer tokens accepted in `Authorization: Bearer …`, one per line."))
        .key(ConfigKey::optional("rest.auth.health.open", Boolean, "true", Medium,
            "Whether GET /health answers without credentials when authentication is on."))
        .key(ConfigKey::optional("access.control.allow.origin", String, "", Medium,
            "CORS: the origin allowed to call the REST API from a browser (`*` for any); empty: no CORS headers."))
        .key(ConfigKey::optional("access.control.allow.methods", String, "", Low,
            "CORS: the methods allowed (default GET,POST,HEAD, as Kafka Connect's)."))
}

/// The listener's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// CORS settings.
#[derive(Debug, Clone)]
pub struct Cors {
    pub origin: String,
    pub methods: String,
}

/// What a worker's REST client needs to reach other workers' https listeners.
#[derive(Clone, Default)]
pub struct ClientTrust {
    /// PEM CA certificates (the truststore), trusted beside the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate chain and key shown when other workers ask for client certificates.
    pub identity_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The identity holds the (decrypted) private key.
        f.debug_struct("ClientTrust")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field(
                "identity_pem",
                &self.identity_pem.as_ref().map(|_| "[hidden]"),
            )
            .finish()
    }
}

/// The REST API's security, parsed once.
#[derive(Clone)]
pub struct RestSecurity {
    /// The scheme the listener speaks.
    pub listener: Scheme,
    /// The scheme other workers are reached by.
    pub advertised: Scheme,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub client_trust: ClientTrust,
    pub auth: Option<Arc<RestAuth>>,
    pub cors: Option<Cors>,
}

impl std::fmt::Debug for RestSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestSecurity")
            .field("listener", &self.listener)
            .field("tls", &self.tls.is_some())
            .field("auth", &self.auth.is_some())
            .field("cors", &self.cors)
            .finish_non_exhaustive()
    }
}

impl RestSecurity {
    /// Plain http, nobody asked for credentials, no CORS.
    pub fn open() -> RestSecurity {
        RestSecurity {
            listener: Scheme::Http,
            advertised: Scheme::Http,
            tls: None,
            client_trust: ClientTrust::default(),
            auth: None,
            cors: None,
        }
    }

    /// Reads the keys; `listener` is the scheme of `listeners`.
    pub(crate) fn parse(config: &Config, listener: Scheme) -> Result<RestSecurity> {
        let path = |key: &str| -> Result<Option<PathBuf>> {
            let value = config.string(key)?;
            Ok((!value.trim().is_empty()).then(|| PathBuf::from(value.trim())))
        };
        let advertised = match config.string("rest.advertised.listener")?.trim() {
            "" => listener,
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(Error::config(format!(
                    "`rest.advertised.listener={other}`: write http or https"
                )));
            }
        };
        for key in ["ssl.keystore.type", "ssl.truststore.type"] {
            let kind = config.string(&format!("{PREFIX}{key}"))?;
            if !kind.eq_ignore_ascii_case("PEM") {
                return Err(Error::config(format!(
                    "`{PREFIX}{key}={kind}`: sluice reads PEM files only; convert the store \
                     (`keytool -importkeystore -srckeystore store.jks -destkeystore store.p12 \
                     -deststoretype PKCS12`, then `openssl pkcs12 -in store.p12 -nodes`) and set \
                     {PREFIX}ssl.certificate.location and {PREFIX}ssl.key.location (or a PEM \
                     {PREFIX}ssl.keystore.location; CAs in {PREFIX}ssl.truststore.location)"
                )));
            }
        }
        if !config
            .secret(&format!("{PREFIX}ssl.keystore.password"))?
            .expose()
            .is_empty()
        {
            // As Kafka's PEM keystores: the key's own password decrypts it.
            return Err(Error::config(format!(
                "`{PREFIX}ssl.keystore.password` is set, but a PEM keystore has no store \
                 password: put an encrypted key's password in {PREFIX}ssl.key.password"
            )));
        }
        let key_password = config.secret(&format!("{PREFIX}ssl.key.password"))?;
        let identity = match (
            path(&format!("{PREFIX}ssl.certificate.location"))?,
            path(&format!("{PREFIX}ssl.key.location"))?,
            path(&format!("{PREFIX}ssl.keystore.location"))?,
        ) {
            (Some(cert), Some(key), _) => Some(pem_identity(
                &cert,
                "ssl.certificate.location",
                &key,
                "ssl.key.location",
                &key_password,
            )?),
            (None, None, Some(store)) => Some(pem_identity(
                &store,
                "ssl.keystore.location",
                &store,
                "ssl.keystore.location",
                &key_password,
            )?),
            (None, None, None) => None,
            _ => {
                return Err(Error::config(format!(
                    "{PREFIX}ssl.certificate.location and {PREFIX}ssl.key.location go \
                     together: set both"
                )));
            }
        };
        let truststore = match path(&format!("{PREFIX}ssl.truststore.location"))? {
            Some(p) => Some(read(&p, "ssl.truststore.location")?),
            None => None,
        };
        let client_auth = config.string(&format!("{PREFIX}ssl.client.auth"))?;
        let tls = match (listener, &identity) {
            (Scheme::Https, Some((cert, key))) => Some(crate::rest::tls::server_config(
                cert,
                key,
                truststore.as_deref(),
                &client_auth,
            )?),
            (Scheme::Https, None) => {
                return Err(Error::config(format!(
                    "an https listener needs its certificate: set \
                     {PREFIX}ssl.certificate.location and {PREFIX}ssl.key.location (PEM)"
                )));
            }
            (Scheme::Http, _) => None,
        };
        let client_trust = ClientTrust {
            ca_pem: truststore,
            identity_pem: identity.map(|(cert, key)| [cert, key].concat()),
        };
        let extensions = config.list("rest.extension.classes");
        let basic_file = path("rest.auth.basic.credentials.file")?;
        for class in &extensions {
            if !class.ends_with("BasicAuthSecurityRestExtension") {
                return Err(Error::config(format!(
                    "`rest.extension.classes={class}`: sluice's REST extensions are built in; \
                     only org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension \
                     is accepted"
                )));
            }
            if basic_file.is_none() {
                return Err(Error::config(
                    "BasicAuthSecurityRestExtension needs rest.auth.basic.credentials.file (a file \
                     of `user: hash` lines; JAAS login modules do not apply to sluice)",
                ));
            }
        }
        let tokens_file = path("rest.auth.bearer.tokens.file")?;
        let auth = if basic_file.is_some() || tokens_file.is_some() {
            Some(Arc::new(RestAuth::load(
                basic_file.as_deref(),
                tokens_file.as_deref(),
                config.bool("rest.auth.health.open")?,
            )?))
        } else {
            None
        };
        let origin = config.string("access.control.allow.origin")?;
        let cors = (!origin.trim().is_empty()).then(|| Cors {
            origin: origin.trim().to_owned(),
            methods: config
                .string("access.control.allow.methods")
                .ok()
                .filter(|m| !m.trim().is_empty())
                .unwrap_or_else(|| "GET,POST,HEAD".to_owned()),
        });
        Ok(RestSecurity {
            listener,
            advertised,
            tls,
            client_trust,
            auth,
            cors,
        })
    }
}

/// The listener's certificate chain and key as unencrypted PEM (the key decrypted with
/// `ssl.key.password` when it is encrypted), held in memory only.
fn pem_identity(
    cert: &Path,
    cert_key: &str,
    key: &Path,
    key_key: &str,
    password: &Secret,
) -> Result<(Vec<u8>, Vec<u8>)> {
    // The key first: in a keystore file its errors (a password, a legacy encryption) say
    // more than the certificate reader's would about the same block.
    let private_key = sluice_tls::read_private_key(
        key,
        password,
        &format!("`{PREFIX}{key_key}`"),
        &format!("{PREFIX}ssl.key.password"),
    )?;
    let chain = sluice_tls::read_certificates(cert, &format!("`{PREFIX}{cert_key}`"))?;
    let key_pem = sluice_tls::private_key_pem(&private_key).ok_or_else(|| {
        Error::config(format!(
            "`{PREFIX}{key_key}`: a key of a kind sluice cannot serve with"
        ))
    })?;
    Ok((
        sluice_tls::certificates_pem(&chain).into_bytes(),
        key_pem.into_bytes(),
    ))
}

fn read(path: &Path, key: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        Error::config(format!(
            "`{PREFIX}{key}`: cannot read {}: {e}",
            path.display()
        ))
    })
}
