//! One integration harness (links once): each module drives the real binaries or servers.
#![allow(clippy::unwrap_used)]
mod policy;
