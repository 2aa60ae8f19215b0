//! Access control for every RPC, in one tower layer: who the caller is (an API token, or
//! anonymous where that is allowed) and whether their role may call the method.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tonic::Status;
use tower::{Layer, Service};

pub use crate::principal::{Principal, Role};

/// An API token as configured: its SHA-256, never the token itself.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the token (`pharosd hash-token` prints it).
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("token {name:?}: sha256 must be 64 hex characters (run `pharosd hash-token`)")]
    BadHash { name: String },
    #[error("tokens {first:?} and {second:?} have the same hash")]
    DuplicateHash { first: String, second: String },
}

/// Who may call what.
#[derive(Debug)]
pub struct AccessPolicy {
    tokens: HashMap<[u8; 32], Principal>,
    /// The role of callers without a token, if they are let in at all.
    anonymous: Option<Role>,
    /// Verifies JSON Web Tokens, when configured.
    jwt: Option<crate::jwt::JwtVerifier>,
    /// Calls per second per caller, when limited.
    limiter: Option<crate::ratelimit::RateLimiter>,
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl AccessPolicy {
    /// Anonymous callers are viewers only on a loopback address with no tokens configured.
    pub fn new(tokens: &[TokenConfig], loopback: bool) -> Result<AccessPolicy, PolicyError> {
        let mut by_hash = HashMap::new();
        for token in tokens {
            let hash: [u8; 32] = hex::decode(token.sha256.trim())
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| PolicyError::BadHash {
                    name: token.name.clone(),
                })?;
            let principal = Principal {
                name: token.name.clone(),
                role: token.role,
            };
            if let Some(previous) = by_hash.insert(hash, principal) {
                return Err(PolicyError::DuplicateHash {
                    first: previous.name,
                    second: token.name.clone(),
                });
            }
        }
        let anonymous = (loopback && by_hash.is_empty()).then_some(Role::Viewer);
        Ok(AccessPolicy {
            tokens: by_hash,
            anonymous,
            jwt: None,
            limiter: None,
        })
    }

    /// Also accepts JSON Web Tokens that `verifier` verifies. Anonymous callers are then
    /// refused: with an identity provider configured, every caller is known.
    pub fn with_jwt(mut self, verifier: Option<crate::jwt::JwtVerifier>) -> AccessPolicy {
        if verifier.is_some() {
            self.anonymous = None;
        }
        self.jwt = verifier;
        self
    }

    /// Limits every caller's calls per second (each Watch stream counts as one call).
    pub fn with_rate_limit(mut self, limiter: Option<crate::ratelimit::RateLimiter>) -> Self {
        self.limiter = limiter;
        self
    }

    /// Admits a call by an authorized caller, or refuses it with RESOURCE_EXHAUSTED.
    /// Anonymous callers are told apart by their address.
    fn admit(&self, principal: &Principal, peer: Option<std::net::IpAddr>) -> Result<(), Status> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        let anonymous;
        let caller = match peer {
            Some(ip) if principal.name == "anonymous" => {
                anonymous = format!("anonymous@{ip}");
                &anonymous
            }
            _ => &principal.name,
        };
        limiter
            .check(caller, std::time::Instant::now())
            .map_err(|wait| limiter.refusal(caller, wait))
    }

    /// Whether callers can authenticate at all (API tokens or JWTs).
    pub fn has_tokens(&self) -> bool {
        !self.tokens.is_empty() || self.jwt.is_some()
    }

    pub fn anonymous_role(&self) -> Option<Role> {
        self.anonymous
    }

    /// The caller an `authorization` header names: a token's or JWT's principal, or the
    /// anonymous one where that is allowed.
    fn principal(&self, authorization: Option<&str>) -> Result<Principal, Status> {
        Ok(match authorization {
            Some(value) => {
                let token = value.strip_prefix("Bearer ").ok_or_else(|| {
                    crate::api::error::unauthenticated(
                        "malformed authorization header: expected `Bearer <token>`",
                    )
                })?;
                let token = token.trim();
                match &self.jwt {
                    // A JWT is three base64url parts, the first a JSON header ("eyJ").
                    Some(jwt) if token.starts_with("eyJ") && token.matches('.').count() == 2 => {
                        jwt.verify(token).map_err(Status::unauthenticated)?
                    }
                    _ => {
                        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
                        self.tokens.get(&hash).cloned().ok_or_else(|| {
                            crate::api::error::unauthenticated("unknown or revoked API token")
                        })?
                    }
                }
            }
            None => match self.anonymous {
                Some(role) => Principal {
                    name: "anonymous".to_owned(),
                    role,
                },
                None => {
                    return Err(crate::api::error::unauthenticated(
                        "this server requires an API token: send `authorization: Bearer <token>` (pharos: --token or PHAROS_TOKEN)",
                    ));
                }
            },
        })
    }

    /// Decides a call to gRPC `path` with the given `authorization` header value.
    pub fn authorize(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> Result<Option<Principal>, Status> {
        let Some(required) = required_role(path) else {
            return Ok(None);
        };
        let principal = self.principal(authorization)?;
        if principal.role < required {
            return Err(crate::api::error::permission_denied(format!(
                "{path} needs the {} role; {:?} has {}",
                required.as_str(),
                principal.name,
                principal.role.as_str()
            )));
        }
        Ok(Some(principal))
    }
}

/// The role a gRPC method needs; `None` for paths that are open to all (health checks,
/// and everything that is not gRPC). Unlisted Pharos methods need admin, so a new
/// method is closed until it is listed here.
pub fn required_role(path: &str) -> Option<Role> {
    const METHODS: &[(&str, Role)] = &[
        ("/pharos.v1.CatalogService/", Role::Viewer),
        ("/pharos.v1.WatchService/", Role::Viewer),
        ("/pharos.v1.HealthService/Heartbeat", Role::Operator),
        ("/pharos.v1.HealthService/", Role::Viewer),
        // Export reads what viewers can already page through (ListCheckResults, Watch);
        // it holds one page in memory however large the export.
        ("/pharos.v1.ExportService/", Role::Viewer),
        ("/pharos.v1.ContainerService/", Role::Viewer),
        ("/pharos.v1.ActionService/ListAuditRecords", Role::Admin),
        ("/pharos.v1.ActionService/GetOperation", Role::Viewer),
        ("/pharos.v1.ActionService/ListOperations", Role::Viewer),
        ("/pharos.v1.ActionService/WatchOperation", Role::Viewer),
        ("/pharos.v1.ActionService/", Role::Operator),
        ("/pharos.v1.MetricsService/PushMetrics", Role::Operator),
        ("/pharos.v1.MetricsService/", Role::Viewer),
        ("/pharos.v1.EventService/ReportEvents", Role::Operator),
        ("/pharos.v1.EventService/", Role::Viewer),
        ("/pharos.v1.SessionService/", Role::Viewer),
        ("/grpc.reflection.v1.ServerReflection/", Role::Viewer),
        ("/grpc.reflection.v1alpha.ServerReflection/", Role::Viewer),
    ];
    if path.starts_with("/grpc.health.v1.Health/") {
        return None;
    }
    if let Some((_, role)) = METHODS.iter().find(|(prefix, _)| path.starts_with(prefix)) {
        return Some(*role);
    }
    if path.starts_with("/pharos.") || path.starts_with("/grpc.") {
        return Some(Role::Admin);
    }
    None
}

#[derive(Clone)]
pub struct AuthLayer {
    policy: Arc<AccessPolicy>,
    audit: Option<pharos_collectors::operations::AuditLog>,
}

impl AuthLayer {
    pub fn new(policy: Arc<AccessPolicy>) -> AuthLayer {
        AuthLayer {
            policy,
            audit: None,
        }
    }

    /// Records denied calls of methods that need the operator role or more.
    pub fn with_audit(mut self, audit: pharos_collectors::operations::AuditLog) -> AuthLayer {
        self.audit = Some(audit);
        self
    }
}

impl AccessPolicy {
    /// Who a caller claims to be, for the audit log: a known token's (or JWT's) name,
    /// "anonymous" without a token, "unauthenticated" with one that does not verify.
    pub fn identify(&self, authorization: Option<&str>) -> String {
        let Some(value) = authorization else {
            return "anonymous".to_owned();
        };
        self.principal(Some(value))
            .map_or_else(|_| "unauthenticated".to_owned(), |p| p.name)
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            policy: self.policy.clone(),
            audit: self.audit.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    policy: Arc<AccessPolicy>,
    audit: Option<pharos_collectors::operations::AuditLog>,
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        futures::future::Either<S::Future, std::future::Ready<Result<Self::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let decision = self
            .policy
            .authorize(request.uri().path(), authorization)
            .and_then(|principal| {
                if let Some(principal) = &principal {
                    self.policy.admit(principal, peer_ip(&request))?;
                }
                Ok(principal)
            });
        match decision {
            Ok(principal) => {
                if let Some(principal) = principal {
                    request.extensions_mut().insert(principal);
                }
                futures::future::Either::Left(self.inner.call(request))
            }
            Err(status) => {
                let path = request.uri().path();
                if let Some(audit) = &self.audit
                    && required_role(path).is_some_and(|role| role >= Role::Operator)
                {
                    audit.record(pharos_collectors::operations::AuditEntry {
                        at_micros: pharos_store::journal::now_micros(),
                        actor: self.policy.identify(authorization),
                        method: path.to_owned(),
                        deployment_id: String::new(),
                        reason: String::new(),
                        request_id: String::new(),
                        code: crate::api::code_name(status.code()).to_owned(),
                        message: status.message().to_owned(),
                        operation_id: String::new(),
                    });
                }
                futures::future::Either::Right(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

/// The caller's address, over plain TCP or TLS.
fn peer_ip<B>(request: &http::Request<B>) -> Option<std::net::IpAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .or_else(|| {
            extensions
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .map(TlsConnectInfo::get_ref)
        })
        .and_then(TcpConnectInfo::remote_addr)
        .map(|addr| addr.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, role: Role, secret: &str) -> TokenConfig {
        TokenConfig {
            name: name.into(),
            role,
            sha256: hash_token(secret),
        }
    }

    #[test]
    fn anonymous_viewer_only_on_loopback_without_tokens() {
        let open = AccessPolicy::new(&[], true).unwrap();
        let who = open
            .authorize("/pharos.v1.CatalogService/GetOverview", None)
            .unwrap();
        assert_eq!(who.unwrap().role, Role::Viewer);
        let err = open
            .authorize("/pharos.v1.ActionService/Restart", None)
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::PermissionDenied);

        let remote = AccessPolicy::new(&[], false).unwrap();
        let err = remote
            .authorize("/pharos.v1.CatalogService/GetOverview", None)
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);

        let with_tokens = AccessPolicy::new(&[token("ci", Role::Viewer, "s3cret")], true).unwrap();
        let err = with_tokens
            .authorize("/pharos.v1.CatalogService/GetOverview", None)
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn tokens_carry_roles_and_health_stays_open() {
        let policy = AccessPolicy::new(
            &[
                token("viewer", Role::Viewer, "v"),
                token("admin", Role::Admin, "a"),
            ],
            false,
        )
        .unwrap();
        let who = policy
            .authorize("/pharos.v1.WatchService/Watch", Some("Bearer v"))
            .unwrap();
        assert_eq!(who.unwrap().name, "viewer");
        assert_eq!(
            policy
                .authorize("/pharos.v1.Future/Mutate", Some("Bearer v"))
                .unwrap_err()
                .code(),
            tonic::Code::PermissionDenied
        );
        assert!(
            policy
                .authorize("/pharos.v1.Future/Mutate", Some("Bearer a"))
                .is_ok()
        );
        assert_eq!(
            policy
                .authorize("/pharos.v1.WatchService/Watch", Some("Bearer nope"))
                .unwrap_err()
                .code(),
            tonic::Code::Unauthenticated
        );
        assert_eq!(
            policy
                .authorize("/grpc.health.v1.Health/Check", None)
                .unwrap(),
            None
        );
        assert_eq!(policy.authorize("/healthz", None).unwrap(), None);
    }

    #[test]
    fn bad_hashes_are_rejected() {
        let bad = TokenConfig {
            name: "x".into(),
            role: Role::Admin,
            sha256: "abc".into(),
        };
        assert!(matches!(
            AccessPolicy::new(&[bad], true),
            Err(PolicyError::BadHash { .. })
        ));
    }
}
