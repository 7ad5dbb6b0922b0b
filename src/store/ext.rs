//! Transactions that hand back a value.

use super::{Store, StoreError, Tx};

/// [`Store::read`] and [`Store::write`] for a transaction that produces a value: the closure
/// returns it instead of filling a variable declared outside. A blanket implementation gives
/// every store (and `dyn Store`) these methods; `Store` itself stays object-safe.
pub trait StoreExt: Store {
    /// Runs `f` in one read transaction and returns what it returned.
    fn read_with<T>(
        &mut self,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut out = None;
        self.read(&mut |tx| keep(&mut out, f(tx)))?;
        out.ok_or_else(|| not_run(&*self))
    }
    /// Runs `f` in one write transaction and returns what its committed run returned (the
    /// PostgreSQL store may run `f` more than once, see [`Store::write`]).
    fn write_with<T>(
        &mut self,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut out = None;
        self.write(&mut |tx| keep(&mut out, f(tx)))?;
        out.ok_or_else(|| not_run(&*self))
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// Keeps what a transaction's closure returned, for [`StoreExt`] to hand back after the commit.
fn keep<T>(out: &mut Option<T>, result: Result<T, StoreError>) -> Result<(), StoreError> {
    *out = Some(result?);
    Ok(())
}

/// A store that reported success without running the transaction's closure broke its contract:
/// an error naming it rather than a panic.
fn not_run<S: Store + ?Sized>(store: &S) -> StoreError {
    StoreError::Unsupported(format!(
        "{}: the transaction ended without running",
        store.describe()
    ))
}
