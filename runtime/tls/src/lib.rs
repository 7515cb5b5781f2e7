//! PEM files for sluice's own TLS clients and servers: certificate chains, private keys
//! (plain, or encrypted PKCS#8 with the password a config key holds) and the system's CA
//! bundle. One place, so that the Postgres and MySQL sources, the distributed group's Kafka
//! client and the https listener read the same files the same way and say the same things
//! when a file is wrong. (The librdkafka clients read theirs through OpenSSL.)
//!
//! # Contract
//! * Every error is a config error that names the setting at fault (the caller's `what`) and
//!   how to fix it; a password never appears in one.
//! * Keys: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`), PKCS#8
//!   DER (pgjdbc's `.pk8`), and encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, PEM or DER) with
//!   PBES2 (PBKDF2 or scrypt, AES-CBC): what OpenSSL 3 writes by default. OpenSSL's legacy
//!   encrypted PEM (`Proc-Type: 4,ENCRYPTED`) and PBES1 are refused with the `openssl` command
//!   that converts the key.
//! * A password set for a key that is not encrypted is ignored, as libpq and librdkafka do.
//! * Decrypted key bytes live only in the returned key (no file is written).

use std::path::{Path, PathBuf};

mod verifier;
pub use verifier::{ServerCheck, ServerVerifier};

use pkcs8::EncryptedPrivateKeyInfo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sluice_api::{Error, Result, Secret};

/// Where systems keep their trusted CAs as one PEM bundle, after `SSL_CERT_FILE`: Debian's,
/// Red Hat's and Alpine's/BSD's places (as OpenSSL, libpq and librdkafka look).
pub const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The system's CA bundle: `SSL_CERT_FILE` when set, else the first of [`SYSTEM_BUNDLES`]
/// that exists; `None` when there is none.
pub fn system_bundle() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .or_else(|| {
            SYSTEM_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        })
}

/// Whether a TLS failure's message says the server's certificate does not name the host:
/// rustls's error, in the words of either of its forms (`NotValidForName` as Debug prints it,
/// "not valid for name" as Display writes it), for the clients that only see the error as
/// text (through a driver's error, or an `io::Error`).
pub fn names_mismatch(message: &str) -> bool {
    message.contains("not valid for name") || message.contains("NotValidForName")
}

/// The PEM certificates in `pem`, at least one; `what` names the setting in errors.
pub fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::config(format!("{what}: not a readable PEM file ({e})")))?;
    if certs.is_empty() {
        return Err(Error::config(format!("{what}: no PEM certificate in it")));
    }
    Ok(certs)
}

/// [`certificates`] of the file at `path`; `key` is the setting that names the file.
pub fn read_certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .map_err(|e| Error::config(format!("{key}: cannot read {}: {e}", path.display())))?;
    certificates(&pem, &format!("{key} {}", path.display()))
}

/// Which settings a private key comes from, for the errors.
#[derive(Debug, Clone, Copy)]
pub struct KeySource<'a> {
    /// The setting and file the key was read from, as the user knows it
    /// (`database.sslkey /etc/sluice/client.key`).
    pub what: &'a str,
    /// The setting holding the key's password (`database.sslpassword`).
    pub password_key: &'a str,
}

const LEGACY_ENCRYPTION: &str = "Proc-Type: 4,ENCRYPTED";
const ENCRYPTED_LABEL: &str = "ENCRYPTED PRIVATE KEY";

/// The private key in `bytes` (PEM, or PKCS#8 DER), decrypted with `password` when it is
/// encrypted (an empty password counts as none).
pub fn private_key(
    bytes: &[u8],
    password: &Secret,
    source: KeySource<'_>,
) -> Result<PrivateKeyDer<'static>> {
    let KeySource { what, password_key } = source;
    let convert = || {
        format!(
            "convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in <key> -out <new key>` \
             (encrypted PKCS#8, set {password_key} to its password) or `openssl pkcs8 -topk8 \
             -nocrypt -in <key> -out <new key>` (unencrypted; keep the file private)"
        )
    };
    if !contains(bytes, b"-----BEGIN") {
        // DER: pgjdbc's `.pk8`, plain or encrypted PKCS#8.
        if let Ok(encrypted) = EncryptedPrivateKeyInfo::try_from(bytes) {
            return decrypt(encrypted, password, source, &convert);
        }
        if let Err(e) = pkcs8::PrivateKeyInfo::try_from(bytes) {
            return Err(Error::config(format!(
                "{what}: neither a PEM file nor a PKCS#8 DER key ({e}); sluice reads PEM keys \
                 (PKCS#8, PKCS#1 or SEC1, plain or encrypted PKCS#8) and PKCS#8 DER"
            )));
        }
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            bytes.to_vec(),
        )));
    }
    if contains(bytes, LEGACY_ENCRYPTION.as_bytes()) {
        return Err(Error::config(format!(
            "{what}: the key is encrypted in OpenSSL's legacy PEM form ({LEGACY_ENCRYPTION}), \
             which sluice does not read; {}",
            convert()
        )));
    }
    if let Some(der) = pem_section(bytes, ENCRYPTED_LABEL) {
        let der = der.map_err(|e| {
            Error::config(format!(
                "{what}: the {ENCRYPTED_LABEL} block is not valid PEM ({e})"
            ))
        })?;
        // PKCS#12's schemes (`openssl pkcs8 -v1 PBE-SHA1-3DES`) fail here already; PBES1
        // parses and is refused in `decrypt`.
        let encrypted = EncryptedPrivateKeyInfo::try_from(der.as_slice()).map_err(|e| {
            Error::config(format!(
                "{what}: the key is encrypted with a scheme sluice does not read, only PBES2 \
                 ({e}); {}",
                convert()
            ))
        })?;
        return decrypt(encrypted, password, source, &convert);
    }
    PrivateKeyDer::from_pem_slice(bytes).map_err(|e| {
        Error::config(format!(
            "{what}: no private key in it ({e}); sluice reads PEM keys (PKCS#8, PKCS#1 or SEC1, \
             plain or encrypted PKCS#8) and PKCS#8 DER"
        ))
    })
}

/// [`private_key`] of the file at `path`; `key` is the setting that names the file.
pub fn read_private_key(
    path: &Path,
    password: &Secret,
    key: &str,
    password_key: &str,
) -> Result<PrivateKeyDer<'static>> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::config(format!("{key}: cannot read {}: {e}", path.display())))?;
    let what = format!("{key} {}", path.display());
    private_key(
        &bytes,
        password,
        KeySource {
            what: &what,
            password_key,
        },
    )
}

/// `key` as an unencrypted PEM block (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`),
/// for clients that take key text rather than a parsed key (mysql_async, reqwest). The text
/// lives in memory only.
pub fn private_key_pem(key: &PrivateKeyDer<'_>) -> Option<String> {
    let (label, der) = match key {
        PrivateKeyDer::Pkcs8(der) => ("PRIVATE KEY", der.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(der) => ("RSA PRIVATE KEY", der.secret_pkcs1_der()),
        PrivateKeyDer::Sec1(der) => ("EC PRIVATE KEY", der.secret_sec1_der()),
        _ => return None,
    };
    pem_block(label, der)
}

/// `certificates` as PEM text, one `CERTIFICATE` block each.
pub fn certificates_pem(certificates: &[CertificateDer<'_>]) -> String {
    certificates
        .iter()
        .filter_map(|certificate| pem_block("CERTIFICATE", certificate))
        .collect()
}

fn pem_block(label: &str, der: &[u8]) -> Option<String> {
    pkcs8::der::pem::encode_string(label, pkcs8::der::pem::LineEnding::LF, der).ok()
}

fn decrypt(
    encrypted: EncryptedPrivateKeyInfo<'_>,
    password: &Secret,
    source: KeySource<'_>,
    convert: &dyn Fn() -> String,
) -> Result<PrivateKeyDer<'static>> {
    let KeySource { what, password_key } = source;
    if password.expose().is_empty() {
        return Err(Error::config(format!(
            "{what}: the key is encrypted; set {password_key} to its password"
        )));
    }
    if encrypted.encryption_algorithm.pbes2().is_none() {
        return Err(Error::config(format!(
            "{what}: the key is encrypted with PKCS#5 v1.5 (PBES1), which sluice does not \
             read; {}",
            convert()
        )));
    }
    let document = encrypted.decrypt(password.expose()).map_err(|e| {
        Error::config(format!(
            "{what}: cannot decrypt the key with {password_key}: the password is wrong, or the \
             cipher is one sluice does not read ({e}); check {password_key}, or {}",
            convert()
        ))
    })?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        document.as_bytes().to_vec(),
    )))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The DER of the first PEM block labelled `label` in `bytes`, if there is one.
fn pem_section(bytes: &[u8], label: &str) -> Option<std::result::Result<Vec<u8>, String>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)?;
    let stop = text[start..].find(&end)? + start + end.len();
    Some(
        pkcs8::der::pem::decode_vec(&text.as_bytes()[start..stop])
            .map(|(_, der)| der)
            .map_err(|e| e.to_string()),
    )
}

#[cfg(test)]
mod tests;
