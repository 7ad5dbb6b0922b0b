//! The store: the behaviour suite on both backends, the database's files, backups, read-only users,
//! PostgreSQL faults.

pub mod backup;
pub mod behaviour;
pub mod dns_cache;
pub mod files;
#[cfg(feature = "postgres")]
pub mod pg_binary_faults;
#[cfg(feature = "postgres")]
pub mod pg_faults;
#[cfg(feature = "postgres")]
pub mod pg_secrets;
#[cfg(feature = "postgres")]
pub mod postgres_multi_mx;
pub mod read_only;
pub mod schema;
