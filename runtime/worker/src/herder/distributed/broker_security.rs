//! TLS and SASL for the group client's broker connections, from the same settings every
//! librdkafka client of the worker gets (Kafka Connect's keys already translated to
//! librdkafka's names by the pipeline's Kafka settings), so one worker file secures the group
//! membership as it secures the producers, consumers and admin clients.
//!
//! # Contract
//! * `security.protocol`: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`, as Kafka.
//! * TLS (rustls): the broker's certificate must chain to `ssl.ca.location` / `ssl.ca.pem`
//!   (Kafka Connect's PEM `ssl.truststore.*`), or to the system's CAs when neither is set, and
//!   name the host dialled. A client certificate from `ssl.certificate.location` +
//!   `ssl.key.location` or their `.pem` forms (Kafka Connect's PEM `ssl.keystore.*`).
//! * SASL: `PLAIN`, `SCRAM-SHA-256` and `SCRAM-SHA-512` with `sasl.username` /
//!   `sasl.password` (from `sasl.jaas.config`), over SaslHandshake v1 and SaslAuthenticate.
//!   An encrypted (PKCS#8) key is decrypted with `ssl.key.password`.
//! * What the group client cannot do (PKCS12 stores, GSSAPI, OAUTHBEARER, a switched-off
//!   certificate or name check) is refused when the worker starts, naming the key, rather than
//!   half-working.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use sluice_api::{Error, Result, Secret};

use super::scram::ScramHash;

/// How the group client authenticates with SASL.
#[derive(Debug, Clone)]
pub(crate) enum SaslMechanism {
    Plain,
    Scram(ScramHash),
}

impl SaslMechanism {
    /// The mechanism's name in SaslHandshake.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(ScramHash::Sha256) => "SCRAM-SHA-256",
            SaslMechanism::Scram(ScramHash::Sha512) => "SCRAM-SHA-512",
        }
    }
}

/// SASL credentials.
#[derive(Debug, Clone)]
pub(crate) struct Sasl {
    pub mechanism: SaslMechanism,
    pub username: String,
    pub password: Secret,
}

/// How the group client secures its connections.
#[derive(Clone, Default)]
pub(crate) struct BrokerSecurity {
    /// TLS, when the protocol is `SSL` or `SASL_SSL`.
    pub tls: Option<Arc<ClientConfig>>,
    pub sasl: Option<Sasl>,
}

impl std::fmt::Debug for BrokerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerSecurity")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl BrokerSecurity {
    /// Plain TCP, no authentication (the membership tests' brokers).
    #[cfg(test)]
    pub(crate) fn plaintext() -> BrokerSecurity {
        BrokerSecurity::default()
    }

    /// The security `settings` (librdkafka's names, as every client of the worker gets them)
    /// ask for; errors name the key to change.
    pub(crate) fn from_client_settings(settings: &[(String, String)]) -> Result<BrokerSecurity> {
        let get = |key: &str| {
            settings
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let protocol = get("security.protocol")
            .unwrap_or("PLAINTEXT")
            .to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(Error::config(format!(
                    "`security.protocol={other}`: write PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                )));
            }
        };
        // Kafka's empty value switches the name check off, as librdkafka's `none`.
        let algorithm = settings
            .iter()
            .rev()
            .find(|(k, _)| k == "ssl.endpoint.identification.algorithm")
            .map(|(_, v)| v.trim().to_ascii_lowercase());
        if tls && algorithm.as_deref().is_some_and(|a| a != "https") {
            return Err(Error::config(format!(
                "`ssl.endpoint.identification.algorithm={}`: {GROUP_CLIENT} always checks that \
                 the broker's certificate names the host it dials; use certificates that name \
                 the brokers' advertised hosts and leave the setting at https",
                algorithm.unwrap_or_default()
            )));
        }
        Ok(BrokerSecurity {
            tls: if tls { Some(tls_config(&get)?) } else { None },
            sasl: if sasl {
                Some(sasl_settings(&get)?)
            } else {
                None
            },
        })
    }
}

const GROUP_CLIENT: &str = "the distributed group's client";

fn sasl_settings<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Sasl> {
    // librdkafka's default is GSSAPI, as Kafka's.
    let name = get("sasl.mechanisms")
        .unwrap_or("GSSAPI")
        .to_ascii_uppercase();
    let mechanism = match name.as_str() {
        "PLAIN" => SaslMechanism::Plain,
        other => match ScramHash::from_mechanism(other) {
            Some(hash) => SaslMechanism::Scram(hash),
            None => {
                return Err(Error::config(format!(
                    "`sasl.mechanism={other}`: {GROUP_CLIENT} speaks PLAIN, SCRAM-SHA-256 and \
                     SCRAM-SHA-512; set one of them (with sasl.jaas.config's username and \
                     password), or run standalone workers, whose librdkafka clients speak {other}"
                )));
            }
        },
    };
    let field = |key: &str| {
        get(key).map(str::to_owned).ok_or_else(|| {
            Error::config(format!(
                "SASL {}: no `{key}`; set `sasl.jaas.config` to \
                 `org.apache.kafka.common.security.{}LoginModule required username=\"…\" \
                 password=\"…\";`",
                mechanism.name(),
                if matches!(mechanism, SaslMechanism::Plain) {
                    "plain.Plain"
                } else {
                    "scram.Scram"
                }
            ))
        })
    };
    Ok(Sasl {
        username: field("sasl.username")?,
        password: Secret::new(field("sasl.password")?),
        mechanism,
    })
}

fn tls_config<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Arc<ClientConfig>> {
    if get("enable.ssl.certificate.verification").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
        return Err(Error::config(format!(
            "`enable.ssl.certificate.verification=false`: {GROUP_CLIENT} always checks the \
             broker's certificate; give it the CA that signed it (`ssl.truststore.location` \
             with `ssl.truststore.type=PEM`)"
        )));
    }
    if get("ssl.keystore.location").is_some() {
        return Err(Error::config(format!(
            "`ssl.keystore.location` (PKCS12): {GROUP_CLIENT} reads PEM; convert the store \
             (`openssl pkcs12 -in store.p12 -nodes`) and set `ssl.keystore.type=PEM` with the \
             PEM file"
        )));
    }
    let mut roots = RootCertStore::empty();
    let ca_certs = match (get("ssl.ca.pem"), get("ssl.ca.location")) {
        (Some(pem), _) => {
            sluice_tls::certificates(pem.as_bytes(), "`ssl.truststore.certificates`")?
        }
        (None, Some(location)) if location != "probe" => {
            sluice_tls::read_certificates(Path::new(location), "`ssl.truststore.location`")?
        }
        _ => {
            let bundle = sluice_tls::system_bundle().ok_or_else(|| {
                Error::config(format!(
                    "TLS to Kafka without `ssl.truststore.location`: no system CA bundle (none \
                     of {}); set ssl.truststore.location (type PEM) to the brokers' CA",
                    sluice_tls::SYSTEM_BUNDLES.join(", ")
                ))
            })?;
            sluice_tls::read_certificates(&bundle, "the system's CA bundle")?
        }
    };
    let (added, _) = roots.add_parsable_certificates(ca_certs);
    if added == 0 {
        return Err(Error::config(
            "`ssl.truststore.location`: no usable CA certificate in it",
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS to Kafka: {e}")))?
        .with_root_certificates(roots);
    // Kafka's `ssl.key.password` decrypts an encrypted PEM key, as librdkafka does for the
    // worker's other clients. The key before the chain: in a keystore file its errors (a
    // password, a legacy encryption) say more than the certificate reader's would.
    let password = Secret::new(get("ssl.key.password").unwrap_or_default());
    let key_source = |what| sluice_tls::KeySource {
        what,
        password_key: "`ssl.key.password`",
    };
    let key = match (get("ssl.key.pem"), get("ssl.key.location")) {
        (Some(pem), _) => Some(sluice_tls::private_key(
            pem.as_bytes(),
            &password,
            key_source("`ssl.keystore.key`"),
        )?),
        (None, Some(location)) => Some(sluice_tls::read_private_key(
            Path::new(location),
            &password,
            "`ssl.keystore.location`",
            "`ssl.key.password`",
        )?),
        (None, None) => None,
    };
    let chain = match (get("ssl.certificate.pem"), get("ssl.certificate.location")) {
        (Some(pem), _) => Some(sluice_tls::certificates(
            pem.as_bytes(),
            "`ssl.keystore.certificate.chain`",
        )?),
        (None, Some(location)) => Some(sluice_tls::read_certificates(
            Path::new(location),
            "`ssl.keystore.location`",
        )?),
        (None, None) => None,
    };
    let config = match (chain, key) {
        (Some(chain), Some(key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
            Error::config(format!(
                "the client certificate and key (`ssl.keystore.*`) do not fit together or are \
                 of an unsupported kind: {e}"
            ))
        })?,
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(Error::config(
                "a client certificate needs both its certificate and its key \
                 (`ssl.keystore.location` of type PEM holds both)",
            ));
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn plaintext_by_default_and_sasl_needs_a_known_mechanism() {
        let plain = BrokerSecurity::from_client_settings(&[]).unwrap();
        assert!(plain.tls.is_none() && plain.sasl.is_none());
        let scram = BrokerSecurity::from_client_settings(&settings(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ]))
        .unwrap();
        let sasl = scram.sasl.unwrap();
        assert_eq!(sasl.mechanism.name(), "SCRAM-SHA-512");
        assert!(!format!("{sasl:?}").contains("\"p\""));
        for (list, expected) in [
            (
                vec![("security.protocol", "SASL_PLAINTEXT")],
                "`sasl.mechanism=GSSAPI`",
            ),
            (
                vec![
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanisms", "PLAIN"),
                ],
                "no `sasl.username`",
            ),
            (vec![("security.protocol", "TLS")], "PLAINTEXT, SSL"),
            (
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.endpoint.identification.algorithm", "none"),
                ],
                "always checks that the broker's certificate names",
            ),
            (
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.endpoint.identification.algorithm", ""),
                ],
                "always checks that the broker's certificate names",
            ),
            (
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.keystore.location", "/x.p12"),
                ],
                "ssl.keystore.type=PEM",
            ),
        ] {
            let e = BrokerSecurity::from_client_settings(&settings(&list)).unwrap_err();
            assert!(e.to_string().contains(expected), "{list:?}: {e}");
        }
    }

    /// Kafka's PEM keystore with an encrypted key (`ssl.keystore.key` + `ssl.key.password`,
    /// here in librdkafka's names): decrypted with the right password, refused naming the key
    /// with a wrong one.
    #[test]
    fn an_encrypted_client_key_is_read_with_ssl_key_password() {
        use super::super::group_tests::{openssl, self_signed};
        let dir = tempfile::tempdir().unwrap();
        self_signed(dir.path(), "client", "/CN=client");
        openssl(
            dir.path(),
            &[
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-in",
                "client.key",
                "-out",
                "enc.key",
                "-passout",
                "pass:kafka-key-pass",
            ],
        );
        let read = |file: &str| std::fs::read_to_string(dir.path().join(file)).unwrap();
        let (certificate, key) = (read("client.crt"), read("enc.key"));
        let with_password = |password: &str| {
            BrokerSecurity::from_client_settings(&settings(&[
                ("security.protocol", "SSL"),
                ("ssl.ca.pem", &certificate),
                ("ssl.certificate.pem", &certificate),
                ("ssl.key.pem", &key),
                ("ssl.key.password", password),
            ]))
        };
        assert!(with_password("kafka-key-pass").unwrap().tls.is_some());
        let e = with_password("wrong-pass").unwrap_err().to_string();
        assert!(
            e.contains("cannot decrypt the key with `ssl.key.password`"),
            "{e}"
        );
        assert!(
            e.contains("`ssl.keystore.key`") && !e.contains("wrong-pass"),
            "{e}"
        );
    }
}
