//! Signed internal requests between workers (KIP-507), as Kafka Connect signs them: the
//! leader keeps a session key in the config topic (`session-key`: base64 key, algorithm,
//! creation time), rotated every `inter.worker.key.ttl.ms`; a follower that forwards task
//! configs (`POST /connectors/{c}/tasks`) sends the HMAC of the body in
//! `X-Connect-Authorization` (base64) and the algorithm in
//! `X-Connect-Request-Signature-Algorithm`. The receiver checks it against the current key:
//! missing headers → 400, no key yet → 503, an algorithm it does not accept → 400, a wrong
//! signature → 403.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the base64 signature.
pub(crate) const SIGNATURE_HEADER: &str = "X-Connect-Authorization";
/// The header naming the algorithm.
pub(crate) const ALGORITHM_HEADER: &str = "X-Connect-Request-Signature-Algorithm";
/// Kafka Connect's default (and sluice's only) algorithm.
pub(crate) const HMAC_SHA256: &str = "HmacSHA256";

/// A session key, as the config topic's `session-key` record holds it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SessionKey {
    pub key: Vec<u8>,
    pub algorithm: String,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("key", &"[hidden]")
            .field("algorithm", &self.algorithm)
            .field("created_ms", &self.created_ms)
            .finish()
    }
}

impl SessionKey {
    /// Whether `inter.worker.key.ttl.ms` has passed since it was made.
    pub(crate) fn expired(&self, now_ms: i64, ttl_ms: i64) -> bool {
        now_ms.saturating_sub(self.created_ms) >= ttl_ms
    }

    /// The `session-key` record's value.
    pub(crate) fn to_record(&self) -> serde_json::Value {
        serde_json::json!({
            "key": STANDARD.encode(&self.key),
            "algorithm": self.algorithm,
            "creation-timestamp": self.created_ms,
        })
    }

    /// Reads a `session-key` record's value; `None` when it is not one.
    pub(crate) fn from_record(value: &serde_json::Value) -> Option<SessionKey> {
        Some(SessionKey {
            key: STANDARD.decode(value.get("key")?.as_str()?).ok()?,
            algorithm: value.get("algorithm")?.as_str()?.to_owned(),
            created_ms: value.get("creation-timestamp")?.as_i64()?,
        })
    }
}

/// The base64 signature of `body` under `key`.
pub(crate) fn sign(key: &SessionKey, body: &[u8]) -> String {
    STANDARD.encode(hmac_sha256(&key.key, body))
}

fn hmac_sha256(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Why an internal request is refused, with the HTTP status Kafka Connect answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// 400: a header is missing, or the algorithm is not accepted.
    BadRequest(String),
    /// 503: no session key has been distributed yet.
    NoKeyYet,
    /// 403: the signature does not match.
    Forbidden,
}

impl Refusal {
    /// The status code to answer with.
    pub(crate) fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::NoKeyYet => 503,
            Refusal::Forbidden => 403,
        }
    }
}

/// Checks a request's signature headers against the current key; `accepted` is
/// `inter.worker.verification.algorithms`.
pub(crate) fn verify(
    key: Option<&SessionKey>,
    accepted: &[String],
    signature: Option<&str>,
    algorithm: Option<&str>,
    body: &[u8],
) -> Result<(), Refusal> {
    let (Some(signature), Some(algorithm)) = (signature, algorithm) else {
        return Err(Refusal::BadRequest(format!(
            "Internal request missing required header {}",
            if signature.is_none() {
                SIGNATURE_HEADER
            } else {
                ALGORITHM_HEADER
            }
        )));
    };
    if !accepted.iter().any(|a| a == algorithm) || algorithm != HMAC_SHA256 {
        return Err(Refusal::BadRequest(format!(
            "This worker does not support the signature algorithm {algorithm}; it accepts {}",
            accepted.join(", ")
        )));
    }
    let key = key.ok_or(Refusal::NoKeyYet)?;
    let given = STANDARD.decode(signature).map_err(|_| Refusal::Forbidden)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.key).expect("HMAC takes keys of any length");
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&given).map_err(|_| Refusal::Forbidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231, test case 2.
        assert_eq!(
            hmac_sha256(b"Jefe", b"what do ya want for nothing?"),
            hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
    }

    fn key() -> SessionKey {
        SessionKey {
            key: b"0123456789abcdef0123456789abcdef".to_vec(),
            algorithm: HMAC_SHA256.into(),
            created_ms: 1_000,
        }
    }

    #[test]
    fn a_signed_body_verifies_and_anything_else_is_refused_with_kafka_connects_codes() {
        let accepted = vec![HMAC_SHA256.to_owned()];
        let body = br#"[{"task.class":"x"}]"#;
        let signature = sign(&key(), body);
        let check =
            |key: Option<&SessionKey>, sig: Option<&str>, alg: Option<&str>, body: &[u8]| {
                verify(key, &accepted, sig, alg, body).map_err(|r| r.status())
            };
        assert_eq!(
            check(Some(&key()), Some(&signature), Some(HMAC_SHA256), body),
            Ok(())
        );
        assert_eq!(check(Some(&key()), None, Some(HMAC_SHA256), body), Err(400));
        assert_eq!(check(Some(&key()), Some(&signature), None, body), Err(400));
        assert_eq!(
            check(Some(&key()), Some(&signature), Some("HmacMD5"), body),
            Err(400)
        );
        assert_eq!(
            check(None, Some(&signature), Some(HMAC_SHA256), body),
            Err(503)
        );
        assert_eq!(
            check(Some(&key()), Some(&signature), Some(HMAC_SHA256), b"[]"),
            Err(403)
        );
        assert_eq!(
            check(Some(&key()), Some("not base64!"), Some(HMAC_SHA256), body),
            Err(403)
        );
        let other = SessionKey {
            key: b"another key".to_vec(),
            ..key()
        };
        assert_eq!(
            check(Some(&other), Some(&signature), Some(HMAC_SHA256), body),
            Err(403)
        );
    }

    #[test]
    fn the_session_key_record_round_trips_and_expires_after_its_ttl() {
        let record = key().to_record();
        assert_eq!(record["algorithm"], "HmacSHA256");
        assert_eq!(record["creation-timestamp"], 1_000);
        assert_eq!(SessionKey::from_record(&record), Some(key()));
        assert!(SessionKey::from_record(&serde_json::json!({"key": "??"})).is_none());
        assert!(!key().expired(3_600_999, 3_600_000));
        assert!(key().expired(3_601_000, 3_600_000));
        assert!(
            !format!("{:?}", key()).contains("0123"),
            "the key is not logged"
        );
    }
}
