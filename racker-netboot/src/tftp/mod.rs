//! Read-only TFTP server (RFC 1350 with blksize, tsize, timeout and
//! windowsize options: RFC 2347, 2348, 2349, 7440).
//!
//! [`transfer`] is the sans-IO core; `server` (feature `net`) the tokio
//! edge; [`jail`] confines requested names to the root directory.

pub mod jail;
pub mod netascii;
pub mod packet;
#[cfg(feature = "net")]
pub mod server;
pub mod transfer;
