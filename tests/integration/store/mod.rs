//! The store: the behaviour suite on both backends, the database's files, backups, read-only users,
//! PostgreSQL faults.

pub(crate) mod backup;
pub(crate) mod behaviour;
pub(crate) mod dns_cache;
pub(crate) mod files;
#[cfg(feature = "postgres")]
pub(crate) mod pg_binary_faults;
#[cfg(feature = "postgres")]
pub(crate) mod pg_faults;
#[cfg(feature = "postgres")]
pub(crate) mod pg_secrets;
#[cfg(feature = "postgres")]
pub(crate) mod postgres_multi_mx;
pub(crate) mod read_only;
pub(crate) mod schema;
pub(crate) mod shared;
pub(crate) mod shared_busy;
pub(crate) mod shared_load;
pub(crate) mod shared_replace;
