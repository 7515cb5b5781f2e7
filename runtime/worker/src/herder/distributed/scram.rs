//! The client side of SASL SCRAM (RFC 5802, with SHA-256 and SHA-512 as Kafka offers them,
//! RFC 7677), for the group client's `SASL_*` connections. Pure: the caller carries the three
//! messages over SaslAuthenticate.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Digest;
use sha2::{Sha256, Sha512};
use sluice_api::{Error, Result};

/// Kafka's largest SCRAM iteration count.
const MAX_ITERATIONS: u32 = 16_384;

/// Which hash a SCRAM mechanism uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    /// `SCRAM-SHA-256` or `SCRAM-SHA-512`; anything else is not SCRAM.
    pub(crate) fn from_mechanism(mechanism: &str) -> Option<ScramHash> {
        match mechanism {
            "SCRAM-SHA-256" => Some(ScramHash::Sha256),
            "SCRAM-SHA-512" => Some(ScramHash::Sha512),
            _ => None,
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            ScramHash::Sha512 => {
                let mut mac = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// PBKDF2 with this hash's HMAC, one block (the hash's length, as SCRAM asks).
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut block = salt.to_vec();
        block.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(password, &block);
        let mut out = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &u);
            for (o, x) in out.iter_mut().zip(&u) {
                *o ^= x;
            }
        }
        out
    }
}

/// One SCRAM exchange: [`ScramClient::first`], then [`ScramClient::last`] with the server's
/// first message, then [`ScramClient::verify`] with its final one.
#[derive(Debug)]
pub(crate) struct ScramClient {
    hash: ScramHash,
    password: sluice_api::Secret,
    first_bare: String,
    nonce: String,
    /// The server's signature the final message must carry, once known.
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// A client for `user` with the client nonce `nonce` (printable, without commas).
    pub(crate) fn new(hash: ScramHash, user: &str, password: &str, nonce: &str) -> ScramClient {
        // RFC 5802: `=` and `,` in the name are written =3D and =2C.
        let name = user.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            hash,
            password: sluice_api::Secret::new(password),
            first_bare: format!("n={name},r={nonce}"),
            nonce: nonce.to_owned(),
            server_signature: None,
        }
    }

    /// The client's first message (no channel binding, no authorization id).
    pub(crate) fn first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// The client's final message, proving the password, for the server's first message.
    pub(crate) fn last(&mut self, server_first: &str) -> Result<String> {
        let field = |name: char| {
            server_first
                .split(',')
                .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
        };
        let refused = |what: &str| {
            Error::config(format!(
                "SASL SCRAM: the broker's first message {what} ({server_first:?}); check \
                 `sasl.mechanism` against the mechanisms the listener enables"
            ))
        };
        if let Some(e) = field('e') {
            return Err(Error::config(format!(
                "SASL SCRAM: the broker refused the exchange: {e}; check `sasl.jaas.config`'s \
                 username"
            )));
        }
        let nonce = field('r').ok_or_else(|| refused("has no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(refused("does not extend the client's nonce"));
        }
        let salt = field('s')
            .and_then(|s| STANDARD.decode(s).ok())
            .ok_or_else(|| refused("has no salt"))?;
        let iterations: u32 = field('i')
            .and_then(|i| i.parse().ok())
            .filter(|i| *i > 0)
            .ok_or_else(|| refused("has no iteration count"))?;
        // Kafka stores SCRAM credentials with at most 16,384 iterations; more is a broker
        // (or a man in the middle) making the worker spin.
        if iterations > MAX_ITERATIONS {
            return Err(refused("asks for more than 16384 iterations"));
        }
        let salted =
            self.hash
                .salted_password(self.password.expose().as_bytes(), &salt, iterations);
        let client_key = self.hash.hmac(&salted, b"Client Key");
        let stored_key = self.hash.hash(&client_key);
        // c=biws: base64 of the GS2 header `n,,` (no channel binding).
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = self.hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = self.hash.hmac(&salted, b"Server Key");
        self.server_signature = Some(self.hash.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }

    /// Checks the server's final message: it must prove the server knows the password too.
    pub(crate) fn verify(&self, server_final: &str) -> Result<()> {
        if let Some(e) = server_final.strip_prefix("e=") {
            return Err(Error::config(format!(
                "SASL SCRAM: authentication failed: {e}; check the username and password in \
                 `sasl.jaas.config`"
            )));
        }
        let expected = self
            .server_signature
            .as_ref()
            .map(|s| format!("v={}", STANDARD.encode(s)));
        if expected.as_deref() != Some(server_final.split(',').next().unwrap_or("")) {
            return Err(Error::config(
                "SASL SCRAM: the broker's final message does not prove it knows the password \
                 (a server that is not the broker?)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example exchange (user "user", password "pencil").
    #[test]
    fn sha_256_matches_rfc_7677() {
        let mut client =
            ScramClient::new(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(client.first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = client
            .last("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            last,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        client
            .verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        let forged = client
            .verify("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(forged.to_string().contains("does not prove"), "{forged}");
    }

    #[test]
    fn refusals_are_named() {
        let mut client = ScramClient::new(ScramHash::Sha512, "a=b,c", "pw", "abc");
        assert_eq!(client.first(), "n,,n=a=3Db=2Cc,r=abc");
        let e = client.last("r=xyz,s=AAAA,i=1").unwrap_err();
        assert!(e.to_string().contains("does not extend"), "{e}");
        let e = client.last("r=abcdef,s=AAAA,i=99999").unwrap_err();
        assert!(e.to_string().contains("more than 16384"), "{e}");
        let e = client.last("e=unknown-user").unwrap_err();
        assert!(e.to_string().contains("unknown-user"), "{e}");
        let e = client.verify("e=invalid-proof").unwrap_err();
        assert!(e.to_string().contains("sasl.jaas.config"), "{e}");
    }
}
