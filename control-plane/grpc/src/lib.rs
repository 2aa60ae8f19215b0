//! Pharos' gRPC layer: the `pharos.v1` services over the collectors, the hub and the
//! store (proto <-> domain conversions stop here), authentication and roles (API tokens
//! and JWTs), rate limits, pharosd's own telemetry and `/metrics`, the dashboard's
//! static files and `/healthz`, and TLS. Every error reaches a client through
//! [`api::status`], the one map from Pharos' error codes to gRPC statuses.

pub mod api;
pub mod auth;
pub mod jwt;
pub mod principal;
pub mod ratelimit;
pub mod telemetry;
pub mod tls;
pub mod web;
