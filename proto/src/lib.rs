//! The `pharos.v1` contract, generated from `proto/pharos/v1/*.proto`.
//!
//! This crate owns code generation: the server, the CLI, the tests and the benchmarks all
//! use these types, and reflection serves [`FILE_DESCRIPTOR_SET`].

/// Generated messages, clients and servers of package `pharos.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("pharos.v1");
}

/// Encoded `FileDescriptorSet` of every file in `proto/pharos`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/pharos_descriptor.bin"));

/// Trailer naming the revision a client should resume a Watch stream from.
pub const RESUME_REVISION_TRAILER: &str = "pharos-resume-revision";

/// Trailer set to `snapshot` when a Watch client must resync from a fresh snapshot.
pub const RESYNC_TRAILER: &str = "pharos-resync";
