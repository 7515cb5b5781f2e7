//! Kafka Connect's (Java) client security keys in the names librdkafka reads, so a worker
//! file written for Kafka Connect secures every client sluice creates (producers, consumers,
//! admin clients, the internal topics' readers and writers) unchanged.
//!
//! PEM truststores and keystores map onto librdkafka's PEM keys, PKCS12 keystores onto its
//! PKCS12 keys; a JKS store, which librdkafka cannot read, is refused naming the keys to use
//! instead. `sasl.jaas.config` of the PLAIN and SCRAM login modules becomes `sasl.username` /
//! `sasl.password`. Java-only tuning keys (`ssl.protocol`, `ssl.enabled.protocols`, …) are left
//! out: librdkafka would refuse them as unknown.

use sluice_api::{Error, Result};

/// Keys only Java's TLS stack has.
const JAVA_ONLY: [&str; 7] = [
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.engine.factory.class",
    "ssl.provider",
];

/// `settings` (one client's, keys without prefix) with Kafka Connect's security keys
/// translated; `scope` is their prefix in the user's file (`""`, `producer.`, …), for
/// errors.
pub(crate) fn translate(
    settings: &[(String, String)],
    scope: &str,
) -> Result<Vec<(String, String)>> {
    let get = |key: &str| {
        settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
    };
    let store_type = |key: &str| get(key).unwrap_or("JKS").to_ascii_uppercase();
    let mut out = Vec::new();
    for (key, value) in settings {
        let (key, value) = (key.as_str(), value.as_str());
        match key {
            "ssl.truststore.location" => match store_type("ssl.truststore.type").as_str() {
                "PEM" => out.push(("ssl.ca.location".to_owned(), value.to_owned())),
                other => {
                    return Err(Error::config(format!(
                        "`{scope}ssl.truststore.location` is a {other} truststore, which \
                         librdkafka cannot read: export its CA certificates as PEM (`keytool \
                         -exportcert -rfc -keystore {value} -alias <alias>`) and set \
                         `{scope}ssl.truststore.type=PEM` with the PEM file"
                    )));
                }
            },
            "ssl.keystore.location" => match store_type("ssl.keystore.type").as_str() {
                "PEM" => {
                    out.push(("ssl.certificate.location".to_owned(), value.to_owned()));
                    out.push(("ssl.key.location".to_owned(), value.to_owned()));
                }
                "PKCS12" => {
                    out.push(("ssl.keystore.location".to_owned(), value.to_owned()));
                    if let Some(password) = get("ssl.keystore.password") {
                        out.push(("ssl.keystore.password".to_owned(), password.to_owned()));
                    }
                }
                other => {
                    return Err(Error::config(format!(
                        "`{scope}ssl.keystore.location` is a {other} keystore, which librdkafka \
                         cannot read: convert it (`keytool -importkeystore -srckeystore {value} \
                         -destkeystore client.p12 -deststoretype PKCS12`) and set \
                         `{scope}ssl.keystore.type=PKCS12`, or use a PEM file with \
                         `{scope}ssl.keystore.type=PEM`"
                    )));
                }
            },
            "ssl.truststore.certificates" => out.push(("ssl.ca.pem".to_owned(), value.to_owned())),
            "ssl.keystore.certificate.chain" => {
                out.push(("ssl.certificate.pem".to_owned(), value.to_owned()))
            }
            "ssl.keystore.key" => out.push(("ssl.key.pem".to_owned(), value.to_owned())),
            "ssl.truststore.type"
            | "ssl.truststore.password"
            | "ssl.keystore.type"
            | "ssl.keystore.password" => {}
            "sasl.mechanism" => out.push(("sasl.mechanisms".to_owned(), value.to_owned())),
            "sasl.jaas.config" => {
                let field = |name: &str| {
                    let start = value.find(&format!("{name}=\""))? + name.len() + 2;
                    let end = value[start..].find('"')? + start;
                    Some(value[start..end].to_owned())
                };
                let plain_or_scram =
                    value.contains("PlainLoginModule") || value.contains("ScramLoginModule");
                match (plain_or_scram, field("username"), field("password")) {
                    (true, Some(user), Some(password)) => {
                        out.push(("sasl.username".to_owned(), user));
                        out.push(("sasl.password".to_owned(), password));
                    }
                    _ => {
                        return Err(Error::config(format!(
                            "`{scope}sasl.jaas.config`: sluice reads the username and password \
                             of the PlainLoginModule and ScramLoginModule; for other mechanisms \
                             set librdkafka's own keys (e.g. `{scope}sasl.kerberos.keytab`, \
                             `{scope}sasl.oauthbearer.*`)"
                        )));
                    }
                }
            }
            key if JAVA_ONLY.contains(&key) => {
                tracing::info!(key = %format!("{scope}{key}"), "a Java-only TLS setting is left out (librdkafka has no such setting)");
            }
            _ => out.push((key.to_owned(), value.to_owned())),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn kafka_connect_pem_and_pkcs12_stores_and_plain_jaas_become_librdkafka_keys() {
        let out = translate(
            &pairs(&[
                ("security.protocol", "SASL_SSL"),
                ("ssl.truststore.type", "PEM"),
                ("ssl.truststore.location", "/etc/kafka/ca.pem"),
                ("ssl.keystore.type", "PKCS12"),
                ("ssl.keystore.location", "/etc/kafka/client.p12"),
                ("ssl.keystore.password", "ks"),
                ("ssl.enabled.protocols", "TLSv1.3"),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                (
                    "sasl.jaas.config",
                    "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"connect\" password=\"s3cret\";",
                ),
            ]),
            "",
        )
        .unwrap();
        assert_eq!(
            out,
            pairs(&[
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", "/etc/kafka/ca.pem"),
                ("ssl.keystore.location", "/etc/kafka/client.p12"),
                ("ssl.keystore.password", "ks"),
                ("sasl.mechanisms", "SCRAM-SHA-512"),
                ("sasl.username", "connect"),
                ("sasl.password", "s3cret"),
            ])
        );
    }

    #[test]
    fn jks_stores_and_other_login_modules_are_refused_naming_the_fix() {
        let jks = translate(
            &pairs(&[("ssl.truststore.location", "/t.jks")]),
            "producer.",
        )
        .unwrap_err();
        assert!(
            jks.message().contains("producer.ssl.truststore.type=PEM"),
            "{jks}"
        );
        let keystore = translate(&pairs(&[("ssl.keystore.location", "/k.jks")]), "").unwrap_err();
        assert!(
            keystore.message().contains("ssl.keystore.type=PKCS12"),
            "{keystore}"
        );
        let kerberos = translate(
            &pairs(&[(
                "sasl.jaas.config",
                "com.sun.security.auth.module.Krb5LoginModule required;",
            )]),
            "",
        )
        .unwrap_err();
        assert!(
            kerberos.message().contains("sasl.kerberos.keytab"),
            "{kerberos}"
        );
    }
}
