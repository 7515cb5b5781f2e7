//! Who may call the REST API: HTTP basic authentication against a file of hashed passwords
//! (argon2 or bcrypt), or bearer tokens — Kafka Connect's `BasicAuthSecurityRestExtension`,
//! without plain-text passwords on disk.
//!
//! # Contract
//! * Every request needs credentials, except `GET /health` when `rest.auth.health.open` (the
//!   default) and the internal requests distributed workers sign with the group's session
//!   key (`POST /connectors/{c}/tasks` with `X-Connect-Authorization`, whose handler checks
//!   the signature), as Kafka Connect exempts them.
//! * A missing or wrong credential is answered 401 with `WWW-Authenticate`; which of user and
//!   password was wrong is not said. Token digests are compared in constant time, and an
//!   unknown user costs the same password hash as a known one.
//! * A password hash is checked once per user and password: the SHA-256 of the pair is then
//!   remembered (never the password), so a polling client does not pay argon2 on every call.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use sluice_api::{Error, Result};
use subtle::ConstantTimeEq;

/// How many verified (user, password) digests are remembered before the memory starts over.
const REMEMBERED: usize = 1024;

/// The credentials the REST API accepts.
pub struct RestAuth {
    /// User → password hash (PHC argon2 or bcrypt).
    users: HashMap<String, String>,
    /// SHA-256 of each accepted bearer token.
    tokens: Vec<[u8; 32]>,
    health_open: bool,
    /// A hash checked against for unknown users, so they cost the same.
    decoy: String,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl std::fmt::Debug for RestAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestAuth")
            .field("users", &self.users.len())
            .field("tokens", &self.tokens.len())
            .field("health_open", &self.health_open)
            .finish_non_exhaustive()
    }
}

impl RestAuth {
    /// Reads the credentials file (`user: hash` lines) and the token file (a token a line).
    pub fn load(
        credentials: Option<&Path>,
        tokens: Option<&Path>,
        health_open: bool,
    ) -> Result<RestAuth> {
        let mut users = HashMap::new();
        if let Some(path) = credentials {
            let key = "rest.auth.basic.credentials.file";
            for (number, line) in read_lines(path, key)? {
                let (user, hash) = line
                    .split_once(':')
                    .or_else(|| line.split_once('='))
                    .map(|(u, h)| (u.trim(), h.trim()))
                    .ok_or_else(|| {
                        Error::config(format!(
                            "{key} {} line {number}: write `user: hash`",
                            path.display()
                        ))
                    })?;
                if !is_hash(hash) {
                    return Err(Error::config(format!(
                        "{key} {} line {number}: the password of `{user}` is not an argon2 or \
                         bcrypt hash; store what `sluice hash-password` prints (or \
                         `htpasswd -nbB`), never the password itself",
                        path.display()
                    )));
                }
                users.insert(user.to_owned(), hash.to_owned());
            }
            if users.is_empty() {
                return Err(Error::config(format!(
                    "{key} {} names no user: nobody could call the REST API",
                    path.display()
                )));
            }
        }
        let mut digests = Vec::new();
        if let Some(path) = tokens {
            for (_, token) in read_lines(path, "rest.auth.bearer.tokens.file")? {
                digests.push(sha256(token.as_bytes()));
            }
        }
        Ok(RestAuth {
            users,
            tokens: digests,
            health_open,
            decoy: hash_password("decoy")?,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Whether `authorization` (the header's value) holds accepted credentials.
    fn accepts(&self, authorization: Option<&str>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        if let Some(token) = strip_scheme(value, "Bearer") {
            let digest = sha256(token.trim().as_bytes());
            // Every stored digest is compared, so the time does not say which matched.
            let mut matched = subtle::Choice::from(0);
            for stored in &self.tokens {
                matched |= stored.ct_eq(&digest);
            }
            return bool::from(matched);
        }
        let Some(encoded) = strip_scheme(value, "Basic") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return false;
        };
        let Some((user, password)) = decoded.split_once(':') else {
            return false;
        };
        let pair = sha256(format!("{user}\0{password}").as_bytes());
        if self.verified.lock().expect("auth lock").contains(&pair) {
            return true;
        }
        let (hash, known) = match self.users.get(user) {
            Some(hash) => (hash.as_str(), true),
            None => (self.decoy.as_str(), false),
        };
        if !(verify(password, hash) && known) {
            return false;
        }
        let mut verified = self.verified.lock().expect("auth lock");
        if verified.len() >= REMEMBERED {
            verified.clear();
        }
        verified.insert(pair);
        true
    }

    fn exempt(&self, request: &Request) -> bool {
        let path = request.uri().path();
        if self.health_open && path == "/health" && request.method() == Method::GET {
            return true;
        }
        // Distributed workers' signed internal request; its handler checks the signature.
        request.method() == Method::POST
            && path.starts_with("/connectors/")
            && path.ends_with("/tasks")
            && request.headers().contains_key("x-connect-authorization")
    }
}

/// The middleware: credentials or 401.
pub(crate) async fn authenticate(
    State(auth): State<Arc<RestAuth>>,
    request: Request,
    next: Next,
) -> Response {
    if auth.exempt(&request) {
        return next.run(request).await;
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth.accepts(authorization) {
        return next.run(request).await;
    }
    let message = if authorization.is_none() {
        "this REST API needs credentials: HTTP basic authentication or a bearer token"
    } else {
        "the credentials were not accepted"
    };
    let mut response = super::ApiError::new(StatusCode::UNAUTHORIZED, message).into_response();
    let challenge = if auth.users.is_empty() {
        "Bearer realm=\"sluice\""
    } else {
        "Basic realm=\"sluice\", charset=\"UTF-8\""
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// An argon2id hash of `password` in PHC form, with a fresh salt: what the credentials file
/// holds (`sluice hash-password`).
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    crate::random::os_random(&mut salt)
        .map_err(|e| Error::io("/dev/urandom (a salt for the password hash)", e))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| Error::config(format!("password salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::config(format!("hashing the password: {e}")))
}

fn is_hash(value: &str) -> bool {
    (value.starts_with("$argon2") && PasswordHash::new(value).is_ok())
        || ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| value.starts_with(p))
}

fn verify(password: &str, hash: &str) -> bool {
    if hash.starts_with("$argon2") {
        return PasswordHash::new(hash).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
    }
    bcrypt::verify(password, hash).unwrap_or(false)
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn read_lines(path: &Path, key: &str) -> Result<Vec<(usize, String)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("{key}: cannot read {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_owned()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[test]
    fn hashed_passwords_and_tokens_are_accepted_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("users");
        let bcrypt_hash = bcrypt::hash("s3cret-b", 4).unwrap();
        std::fs::write(
            &credentials,
            format!(
                "# users\nalice: {}\nbob={bcrypt_hash}\n",
                hash_password("s3cret-a").unwrap()
            ),
        )
        .unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, "tok-1\ntok-2\n").unwrap();
        let auth = RestAuth::load(Some(&credentials), Some(&tokens), true).unwrap();
        assert!(auth.accepts(Some(&basic("alice", "s3cret-a"))));
        assert!(
            auth.accepts(Some(&basic("alice", "s3cret-a"))),
            "remembered"
        );
        assert!(auth.accepts(Some(&basic("bob", "s3cret-b"))));
        assert!(!auth.accepts(Some(&basic("alice", "s3cret-b"))));
        assert!(!auth.accepts(Some(&basic("carol", "s3cret-a"))));
        assert!(!auth.accepts(None));
        assert!(auth.accepts(Some("Bearer tok-2")));
        assert!(!auth.accepts(Some("Bearer tok-3")));
        assert!(!auth.accepts(Some("Basic !!!")));
    }

    #[test]
    fn a_plain_text_password_is_refused_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("users");
        std::fs::write(&credentials, "alice: hunter2\n").unwrap();
        let error = RestAuth::load(Some(&credentials), None, true).unwrap_err();
        assert!(error.message().contains("line 1"), "{error}");
        assert!(error.message().contains("sluice hash-password"), "{error}");
        assert!(!error.message().contains("hunter2"), "{error}");
    }
}
