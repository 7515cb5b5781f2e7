//! Keys made by `openssl` (Debian's openssl package, as the TLS end-to-end tests use) in every
//! form the contract names, read back and compared with the plain key.

use std::path::Path;
use std::process::Command;

use super::*;

const PASSWORD: &str = "s3cret pass";

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

/// A plain PKCS#8 EC key in `plain.pem`.
fn plain_key(dir: &Path) -> PrivateKeyDer<'static> {
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-out",
            "plain.pem",
        ],
    );
    let key = read_private_key(
        &dir.join("plain.pem"),
        &Secret::default(),
        "k",
        "k.password",
    )
    .unwrap();
    assert!(matches!(key, PrivateKeyDer::Pkcs8(_)));
    key
}

fn read(dir: &Path, file: &str, password: &str) -> Result<PrivateKeyDer<'static>> {
    read_private_key(
        &dir.join(file),
        &Secret::new(password),
        "database.sslkey",
        "database.sslpassword",
    )
}

fn message(result: Result<PrivateKeyDer<'static>>) -> String {
    let error = result.expect_err("the key is refused").to_string();
    assert!(!error.contains(PASSWORD), "the password leaked: {error}");
    error
}

#[test]
fn encrypted_pkcs8_in_pem_and_der_decrypts_to_the_plain_key() {
    let dir = tempfile::tempdir().unwrap();
    let plain = plain_key(dir.path());
    let pass = format!("pass:{PASSWORD}");
    for (file, extra) in [
        ("aes.pem", vec!["-v2", "aes-256-cbc"]),
        (
            "aes128.pem",
            vec!["-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA512"],
        ),
        ("scrypt.pem", vec!["-scrypt"]),
        ("aes.der", vec!["-v2", "aes-256-cbc", "-outform", "DER"]),
    ] {
        let mut args = vec![
            "pkcs8",
            "-topk8",
            "-in",
            "plain.pem",
            "-out",
            file,
            "-passout",
            &pass,
        ];
        args.extend(extra);
        openssl(dir.path(), &args);
        let key = read(dir.path(), file, PASSWORD).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key, plain, "{file}");
        let pem = private_key_pem(&key).unwrap();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
        assert_eq!(
            PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap(),
            plain
        );
    }
    // A password beside a plain key is ignored, as libpq does.
    assert_eq!(read(dir.path(), "plain.pem", PASSWORD).unwrap(), plain);
}

#[test]
fn each_key_sluice_cannot_use_is_refused_naming_the_setting_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    plain_key(dir.path());
    let pass = format!("pass:{PASSWORD}");
    openssl(
        dir.path(),
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            "plain.pem",
            "-out",
            "enc.pem",
            "-passout",
            &pass,
        ],
    );
    let error = message(read(dir.path(), "enc.pem", ""));
    assert!(
        error.contains("encrypted; set database.sslpassword"),
        "{error}"
    );
    let error = message(read(dir.path(), "enc.pem", "wrong"));
    assert!(
        error.contains("cannot decrypt the key with database.sslpassword"),
        "{error}"
    );
    assert!(error.contains("database.sslkey"), "{error}");

    // OpenSSL's legacy encrypted PEM (`openssl ec -aes256 -traditional`... writes DEK-Info).
    openssl(
        dir.path(),
        &[
            "ec",
            "-in",
            "plain.pem",
            "-aes256",
            "-out",
            "legacy.pem",
            "-passout",
            &pass,
        ],
    );
    let legacy = std::fs::read_to_string(dir.path().join("legacy.pem")).unwrap();
    assert!(legacy.contains("Proc-Type: 4,ENCRYPTED"), "{legacy}");
    let error = message(read(dir.path(), "legacy.pem", PASSWORD));
    assert!(error.contains("legacy PEM form"), "{error}");
    assert!(
        error.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
        "{error}"
    );

    // PKCS#5 v1.5 (PBES1).
    openssl(
        dir.path(),
        &[
            "pkcs8",
            "-topk8",
            "-v1",
            "PBE-SHA1-3DES",
            "-in",
            "plain.pem",
            "-out",
            "v1.pem",
            "-passout",
            &pass,
        ],
    );
    let error = message(read(dir.path(), "v1.pem", PASSWORD));
    assert!(
        error.contains("openssl pkcs8 -topk8 -v2 aes-256-cbc"),
        "{error}"
    );

    std::fs::write(
        dir.path().join("none.pem"),
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let error = message(read(dir.path(), "none.pem", ""));
    assert!(
        error.contains("database.sslkey") && error.contains("no private key"),
        "{error}"
    );
    std::fs::write(dir.path().join("empty.der"), b"").unwrap();
    let error = message(read(dir.path(), "empty.der", ""));
    assert!(
        error.contains("neither a PEM file nor a PKCS#8 DER key"),
        "{error}"
    );
    let error = message(read(dir.path(), "missing.pem", ""));
    assert!(error.contains("cannot read"), "{error}");
}

#[test]
fn certificates_need_at_least_one_and_go_back_to_pem() {
    let dir = tempfile::tempdir().unwrap();
    plain_key(dir.path());
    openssl(
        dir.path(),
        &[
            "req",
            "-new",
            "-x509",
            "-key",
            "plain.pem",
            "-subj",
            "/CN=t",
            "-days",
            "1",
            "-out",
            "c.pem",
        ],
    );
    let read = read_certificates(&dir.path().join("c.pem"), "k").unwrap();
    assert_eq!(
        certificates(certificates_pem(&read).as_bytes(), "k").unwrap(),
        read
    );
    let error = certificates(b"", "ssl.truststore.location x")
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("ssl.truststore.location x: no PEM certificate"),
        "{error}"
    );
}
