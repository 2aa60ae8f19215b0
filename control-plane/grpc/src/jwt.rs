//! JSON Web Tokens as an alternative to static API tokens: an identity provider signs a
//! token that names the caller and their role, and pharosd only verifies it.
//!
//! Configured under `jwt:` in the config file: one key (an HMAC secret file, or an RSA or
//! EC public key in PEM), the accepted algorithms follow from the key, and `issuer` /
//! `audience` are checked when set. `exp` is required; `nbf` is honoured; 30 s of clock
//! skew is allowed.

use std::path::{Path, PathBuf};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;

use crate::principal::{Principal, Role};

/// `jwt:` in the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// File holding the shared secret for HS256/HS384/HS512.
    pub hmac_secret_file: Option<PathBuf>,
    /// PEM public key (RSA for RS256/RS384/RS512/PS256, EC P-256 for ES256, P-384 for ES384).
    pub public_key_file: Option<PathBuf>,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Required `aud` (one of), when set.
    pub audience: Option<String>,
    /// Claim holding the role: viewer, operator or admin (default `role`).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
}

fn default_role_claim() -> String {
    "role".to_owned()
}

#[derive(Debug, thiserror::Error)]
pub enum JwtSetupError {
    #[error("jwt: set exactly one of hmac_secret_file and public_key_file")]
    KeyChoice,
    #[error("jwt: cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("jwt: {path}: the HMAC secret must be at least 32 bytes")]
    ShortSecret { path: String },
    #[error("jwt: {path}: not an RSA or EC public key in PEM")]
    BadPublicKey { path: String },
}

/// Verifies tokens against one key.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    role_claim: String,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algorithms", &self.validation.algorithms)
            .field("role_claim", &self.role_claim)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, JwtSetupError> {
    std::fs::read(path).map_err(|source| JwtSetupError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl JwtVerifier {
    pub fn new(config: &JwtConfig) -> Result<JwtVerifier, JwtSetupError> {
        let (key, algorithms) = match (&config.hmac_secret_file, &config.public_key_file) {
            (Some(path), None) => {
                let secret = read(path)?;
                let secret = secret.trim_ascii();
                if secret.len() < 32 {
                    return Err(JwtSetupError::ShortSecret {
                        path: path.display().to_string(),
                    });
                }
                (
                    DecodingKey::from_secret(secret),
                    vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
                )
            }
            (None, Some(path)) => {
                let pem = read(path)?;
                if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                    let rsa = [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];
                    (key, [&rsa[..], &[Algorithm::PS256]].concat())
                } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                    (key, vec![Algorithm::ES256, Algorithm::ES384])
                } else {
                    return Err(JwtSetupError::BadPublicKey {
                        path: path.display().to_string(),
                    });
                }
            }
            _ => return Err(JwtSetupError::KeyChoice),
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.leeway = 30;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(JwtVerifier {
            key,
            validation,
            role_claim: config.role_claim.clone(),
        })
    }

    /// The caller a token names, or why it is refused (a message for the caller).
    pub fn verify(&self, token: &str) -> Result<Principal, String> {
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &self.key,
            &self.validation,
        )
        .map_err(|err| match err.kind() {
            ErrorKind::ExpiredSignature => "the JWT has expired".to_owned(),
            ErrorKind::ImmatureSignature => "the JWT is not valid yet (nbf)".to_owned(),
            ErrorKind::InvalidSignature => "the JWT signature does not verify".to_owned(),
            ErrorKind::InvalidAlgorithm => format!(
                "the JWT's algorithm is not accepted here (accepted: {:?})",
                self.validation.algorithms
            ),
            ErrorKind::InvalidIssuer => "the JWT's issuer (iss) is not accepted".to_owned(),
            ErrorKind::InvalidAudience => "the JWT's audience (aud) is not accepted".to_owned(),
            ErrorKind::MissingRequiredClaim(claim) => {
                format!("the JWT lacks the required claim {claim:?}")
            }
            _ => format!("malformed JWT: {err}"),
        })?;
        let claims = data.claims;
        let name = claims
            .get("sub")
            .and_then(|sub| sub.as_str())
            .unwrap_or_default()
            .to_owned();
        let role = match claims.get(&self.role_claim).and_then(|role| role.as_str()) {
            Some("viewer") => Role::Viewer,
            Some("operator") => Role::Operator,
            Some("admin") => Role::Admin,
            Some(other) => {
                return Err(format!(
                    "the JWT's {:?} claim is {other:?}; expected viewer, operator or admin",
                    self.role_claim
                ));
            }
            None => {
                return Err(format!(
                    "the JWT lacks the {:?} claim (viewer, operator or admin)",
                    self.role_claim
                ));
            }
        };
        Ok(Principal { name, role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";

    fn verifier(issuer: Option<&str>) -> (JwtVerifier, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, format!("{SECRET}\n")).unwrap();
        let config = JwtConfig {
            hmac_secret_file: Some(path),
            public_key_file: None,
            issuer: issuer.map(str::to_owned),
            audience: None,
            role_claim: default_role_claim(),
        };
        (JwtVerifier::new(&config).unwrap(), dir)
    }

    fn sign(claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn in_an_hour() -> i64 {
        chrono::Utc::now().timestamp() + 3600
    }

    #[test]
    fn a_valid_token_names_the_caller_and_role() {
        let (verifier, _dir) = verifier(Some("https://id.example"));
        let token = sign(
            json!({"sub": "ana", "role": "operator", "exp": in_an_hour(), "iss": "https://id.example"}),
            SECRET,
        );
        let principal = verifier.verify(&token).unwrap();
        assert_eq!(principal.name, "ana");
        assert_eq!(principal.role, Role::Operator);
    }

    #[test]
    fn each_refusal_says_why() {
        let (verifier, _dir) = verifier(Some("https://id.example"));
        let base = json!({"sub": "ana", "role": "viewer", "exp": in_an_hour(), "iss": "https://id.example"});
        let with = |key: &str, value: serde_json::Value| {
            let mut claims = base.clone();
            claims[key] = value;
            claims
        };
        let expired = sign(with("exp", json!(1_000_000)), SECRET);
        assert_eq!(
            verifier.verify(&expired).unwrap_err(),
            "the JWT has expired"
        );
        let forged = sign(base.clone(), "another-secret-another-secret-0000");
        assert!(verifier.verify(&forged).unwrap_err().contains("signature"));
        let foreign = sign(with("iss", json!("https://evil.example")), SECRET);
        assert!(verifier.verify(&foreign).unwrap_err().contains("issuer"));
        let no_role = {
            let mut claims = base.clone();
            claims.as_object_mut().unwrap().remove("role");
            sign(claims, SECRET)
        };
        assert!(verifier.verify(&no_role).unwrap_err().contains("\"role\""));
        let odd_role = sign(with("role", json!("root")), SECRET);
        assert!(verifier.verify(&odd_role).unwrap_err().contains("\"root\""));
        let no_exp = {
            let mut claims = base.clone();
            claims.as_object_mut().unwrap().remove("exp");
            sign(claims, SECRET)
        };
        assert!(verifier.verify(&no_exp).unwrap_err().contains("exp"));
        assert!(
            verifier
                .verify("not.a.jwt")
                .unwrap_err()
                .starts_with("malformed JWT")
        );
    }

    #[test]
    fn setup_errors_are_precise() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "too short").unwrap();
        let config = |secret: Option<PathBuf>, public: Option<PathBuf>| JwtConfig {
            hmac_secret_file: secret,
            public_key_file: public,
            issuer: None,
            audience: None,
            role_claim: default_role_claim(),
        };
        assert!(matches!(
            JwtVerifier::new(&config(Some(short.clone()), None)),
            Err(JwtSetupError::ShortSecret { .. })
        ));
        assert!(matches!(
            JwtVerifier::new(&config(None, None)),
            Err(JwtSetupError::KeyChoice)
        ));
        assert!(matches!(
            JwtVerifier::new(&config(None, Some(short))),
            Err(JwtSetupError::BadPublicKey { .. })
        ));
    }
}
