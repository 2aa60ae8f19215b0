//! End-to-end tests, one binary: the real pharosd and pharos binaries, grpcurl, Python's
//! grpcio and real peers, each module one area.

mod auth;
mod cli;
mod cli_containers;
mod cli_export;
mod cli_operations;
mod cli_terminal;
mod cli_tls;
mod cli_views;
mod demo;
mod errors;
mod grpcurl;
mod lifecycle;
mod python_reflection;
mod supervision;
mod support;
mod tls;
