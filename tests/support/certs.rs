//! Certificates made with `openssl` for the TLS tests: a CA, a server certificate naming only
//! `localhost`, a client certificate (both keys also encrypted, as encrypted PKCS#8), and a
//! second CA that signed nothing of the server's.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;

/// Certificate files made by openssl.
pub(crate) struct Certs {
    pub(crate) ca: PathBuf,
    pub(crate) other_ca: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    pub(crate) client_cert: PathBuf,
    pub(crate) client_key: PathBuf,
    /// `client_key` encrypted (PKCS#8, PBES2 with AES-256-CBC) with [`CLIENT_KEY_PASSWORD`].
    pub(crate) client_key_encrypted: PathBuf,
    /// `server_key` encrypted the same way, with the same password.
    pub(crate) server_key_encrypted: PathBuf,
}

/// The password of [`Certs::client_key_encrypted`] and [`Certs::server_key_encrypted`].
pub(crate) const CLIENT_KEY_PASSWORD: &str = "client-key-pass";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian's openssl package) runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA (`name`.crt/.key) with the extensions webpki asks of a CA.
fn make_ca(dir: &Path, name: &str) {
    std::fs::write(
        dir.join(format!("{name}.cnf")),
        format!(
            "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\nprompt = no\n\
             [dn]\nCN = sluice test {name}\n\
             [v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier = hash\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-config",
            &format!("{name}.cnf"),
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
        ],
    );
}

/// A certificate for `subject` signed by `ca`, with `extensions`.
fn make_leaf(dir: &Path, name: &str, subject: &str, ca: &str, extensions: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), extensions).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.crt"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

impl Certs {
    /// Makes every file in `dir`.
    pub(crate) fn make(dir: &Path) -> Certs {
        make_ca(dir, "ca");
        make_ca(dir, "other-ca");
        make_leaf(
            dir,
            "server",
            "/CN=localhost",
            "ca",
            "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n\
             extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost\n",
        );
        make_leaf(
            dir,
            "client",
            "/CN=tlsuser",
            "ca",
            "basicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n\
             extendedKeyUsage = clientAuth\n",
        );
        for name in ["client", "server"] {
            openssl(
                dir,
                &[
                    "pkcs8",
                    "-topk8",
                    "-v2",
                    "aes-256-cbc",
                    "-in",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}-encrypted.key"),
                    "-passout",
                    &format!("pass:{CLIENT_KEY_PASSWORD}"),
                ],
            );
        }
        Certs {
            ca: dir.join("ca.crt"),
            other_ca: dir.join("other-ca.crt"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.crt"),
            client_key: dir.join("client.key"),
            client_key_encrypted: dir.join("client-encrypted.key"),
            server_key_encrypted: dir.join("server-encrypted.key"),
        }
    }
}

/// A TLS server side presenting `certificate` (a PEM chain) with `key`, for the in-test
/// servers (the Elasticsearch fake, the Kafka front).
pub(crate) fn acceptor(certificate: &Path, key: &Path) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(certificate)
        .expect("certificate file")
        .collect::<Result<_, _>>()
        .expect("certificates");
    let key = PrivateKeyDer::from_pem_file(key).expect("key file");
    let provider = std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// An https client that trusts the test CA and reaches the worker at `addr` as `localhost`
/// (the name its certificate holds), showing the client certificate of `identity` if given.
pub(crate) fn client(certs: &Certs, addr: &str, identity: Option<&Certs>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&certs.ca).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(ca)
        .resolve("localhost", addr.parse().unwrap())
        .timeout(Duration::from_secs(20));
    if let Some(certs) = identity {
        let pem = [
            std::fs::read(&certs.client_cert).unwrap(),
            std::fs::read(&certs.client_key).unwrap(),
        ]
        .concat();
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// `https://localhost:PORT/path` for the worker at `addr`.
pub(crate) fn url(addr: &str, path: &str) -> String {
    let port = addr.rsplit_once(':').unwrap().1;
    format!("https://localhost:{port}{path}")
}

/// The status, headers and JSON body (`Null` when not JSON) of a request.
pub(crate) async fn answer(
    request: reqwest::RequestBuilder,
) -> (u16, reqwest::header::HeaderMap, Json) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Json::Null),
    )
}
