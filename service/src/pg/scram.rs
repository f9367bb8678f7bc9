//! SCRAM-SHA-256 (RFC 5802, RFC 7677) with the service's tokens as passwords.
//!
//! PostgreSQL's SCRAM expects one password per user; kitle's tokens belong to no user, so
//! the server checks the client's proof against every token: the proof is the client key
//! masked by a signature that only the right stored key reproduces, so each token's stored
//! key either unmasks a client key that hashes back to it, or does not. The keys are derived
//! once at start, with one random salt for the process, so a connection costs a few HMACs.
//! The password never crosses the wire, over TLS or not. Channel binding (`-PLUS`) is not
//! offered.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::{digest, hmac, rand::SecureRandom};
use subtle::ConstantTimeEq;

use crate::http::auth::Scope;

/// Iterations of the key derivation (PostgreSQL's default).
pub const ITERATIONS: u32 = 4096;

/// The mechanism offered.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// One token's derived keys.
struct TokenKeys {
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    scope: Scope,
}

/// The derived keys of every configured token, and the salt they were derived with.
pub struct Keys {
    salt: Vec<u8>,
    tokens: Vec<TokenKeys>,
}

fn hmac_sign(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    bytes
}

impl Keys {
    /// Derives the keys of `tokens` (secret, scope) with a fresh random salt.
    pub fn derive<'a>(tokens: impl IntoIterator<Item = (&'a str, Scope)>) -> Self {
        let salt = random_bytes(16);
        let tokens = tokens
            .into_iter()
            .map(|(secret, scope)| {
                let salted = pgwire::api::auth::sasl::scram::gen_salted_password(
                    secret,
                    &salt,
                    ITERATIONS as usize,
                );
                let client_key = hmac_sign(&salted, b"Client Key");
                TokenKeys {
                    stored_key: sha256(&client_key),
                    server_key: hmac_sign(&salted, b"Server Key"),
                    scope,
                }
            })
            .collect();
        Self { salt, tokens }
    }
}

/// Why an exchange failed: a malformed message is a protocol error, a wrong password is not.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramError {
    /// The client's message does not follow the protocol.
    Protocol(String),
    /// No token matches the proof.
    WrongPassword,
}

/// An exchange after the server's first message, waiting for the client's final one.
pub struct Exchange {
    client_first_bare: String,
    server_first: String,
    nonce: String,
    gs2_header: String,
}

fn attribute(part: Option<&str>, name: char) -> Result<&str, ScramError> {
    part.and_then(|p| p.strip_prefix(name))
        .and_then(|p| p.strip_prefix('='))
        .ok_or_else(|| ScramError::Protocol(format!("SCRAM message lacks its {name}= attribute")))
}

impl Exchange {
    /// Reads the client's first message and answers the server's first message.
    pub fn start(keys: &Keys, client_first: &[u8]) -> Result<(Self, String), ScramError> {
        let text = std::str::from_utf8(client_first)
            .map_err(|_| ScramError::Protocol("SCRAM client-first is not UTF-8".into()))?;
        // gs2-header: channel-binding flag, optional authzid, then the bare message.
        let mut parts = text.splitn(3, ',');
        let flag = parts.next().unwrap_or_default();
        let authzid = parts.next().unwrap_or_default();
        let bare = parts
            .next()
            .ok_or_else(|| ScramError::Protocol("SCRAM client-first is cut short".into()))?;
        if flag.starts_with("p=") {
            return Err(ScramError::Protocol(
                "channel binding (SCRAM-SHA-256-PLUS) is not offered".into(),
            ));
        }
        if flag != "n" && flag != "y" {
            return Err(ScramError::Protocol(format!(
                "unknown SCRAM channel-binding flag {flag:?}"
            )));
        }
        let mut fields = bare.split(',');
        let _user = attribute(fields.next(), 'n')?;
        let client_nonce = attribute(fields.next(), 'r')?;
        if client_nonce.is_empty() {
            return Err(ScramError::Protocol("SCRAM client nonce is empty".into()));
        }
        let nonce = format!("{client_nonce}{}", STANDARD.encode(random_bytes(18)));
        let server_first = format!("r={nonce},s={},i={ITERATIONS}", STANDARD.encode(&keys.salt));
        Ok((
            Self {
                client_first_bare: bare.to_string(),
                server_first: server_first.clone(),
                nonce,
                gs2_header: format!("{flag},{authzid},"),
            },
            server_first,
        ))
    }

    /// Checks the client's final message against every token: the scope of the token that
    /// matches and the server's final message (its signature, proving the server knows it).
    pub fn finish(self, keys: &Keys, client_final: &[u8]) -> Result<(Scope, String), ScramError> {
        let text = std::str::from_utf8(client_final)
            .map_err(|_| ScramError::Protocol("SCRAM client-final is not UTF-8".into()))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| ScramError::Protocol("SCRAM client-final has no proof".into()))?;
        let mut fields = without_proof.split(',');
        let binding = attribute(fields.next(), 'c')?;
        let nonce = attribute(fields.next(), 'r')?;
        if STANDARD.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(ScramError::Protocol(
                "SCRAM channel binding does not match the first message".into(),
            ));
        }
        if nonce != self.nonce {
            return Err(ScramError::Protocol("SCRAM nonce does not match".into()));
        }
        let proof = STANDARD
            .decode(proof)
            .map_err(|_| ScramError::Protocol("SCRAM proof is not base64".into()))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        for token in &keys.tokens {
            let signature = hmac_sign(&token.stored_key, auth_message.as_bytes());
            if signature.len() != proof.len() {
                continue;
            }
            let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
            if bool::from(sha256(&client_key).ct_eq(&token.stored_key)) {
                let server_signature = hmac_sign(&token.server_key, auth_message.as_bytes());
                return Ok((
                    token.scope,
                    format!("v={}", STANDARD.encode(server_signature)),
                ));
            }
        }
        Err(ScramError::WrongPassword)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client side of the exchange, as libpq computes it.
    fn client_final(password: &str, client_first_bare: &str, server_first: &str) -> String {
        let mut fields = server_first.split(',');
        let nonce = fields.next().unwrap().strip_prefix("r=").unwrap();
        let salt = STANDARD
            .decode(fields.next().unwrap().strip_prefix("s=").unwrap())
            .unwrap();
        let salted = pgwire::api::auth::sasl::scram::gen_salted_password(
            password,
            &salt,
            ITERATIONS as usize,
        );
        let client_key = hmac_sign(&salted, b"Client Key");
        let stored_key = sha256(&client_key);
        let without_proof = format!("c={},r={nonce}", STANDARD.encode("n,,"));
        let auth = format!("{client_first_bare},{server_first},{without_proof}");
        let signature = hmac_sign(&stored_key, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        format!("{without_proof},p={}", STANDARD.encode(proof))
    }

    #[test]
    fn the_matching_token_is_found_and_a_wrong_one_refused() {
        let keys = Keys::derive([
            ("read-token-0123456789", Scope::Read),
            ("admin-token-0123456789", Scope::Admin),
        ]);
        for (password, expected) in [
            ("read-token-0123456789", Ok(Scope::Read)),
            ("admin-token-0123456789", Ok(Scope::Admin)),
            ("not-a-token-0123456789", Err(ScramError::WrongPassword)),
        ] {
            let bare = "n=,r=clientnonce123";
            let (exchange, server_first) =
                Exchange::start(&keys, format!("n,,{bare}").as_bytes()).unwrap();
            let last = client_final(password, bare, &server_first);
            let outcome = exchange
                .finish(&keys, last.as_bytes())
                .map(|(scope, _)| scope);
            assert_eq!(outcome, expected, "{password}");
        }
    }

    #[test]
    fn malformed_messages_are_protocol_errors() {
        let keys = Keys::derive([("read-token-0123456789", Scope::Read)]);
        assert!(matches!(
            Exchange::start(&keys, b"p=tls-server-end-point,,n=,r=x"),
            Err(ScramError::Protocol(_))
        ));
        assert!(matches!(
            Exchange::start(&keys, b"n,,x"),
            Err(ScramError::Protocol(_))
        ));
        let (exchange, _) = Exchange::start(&keys, b"n,,n=,r=abc").unwrap();
        assert!(matches!(
            exchange.finish(&keys, b"c=biws,r=other,p=AAAA"),
            Err(ScramError::Protocol(_))
        ));
    }
}
