//! A PostgreSQL client for one piece of work, on a runtime of its own: what the PostgreSQL tests
//! and the store benchmark do around the store (create and drop databases, read the catalogue,
//! time a round trip).
//!
//! Used by the integration tests and by bench/store.rs (included by `#[path]` from both).

/// Runs `work` with a client connected to `url`; the connection is closed before this returns.
/// Panics when the server cannot be reached: only tests and benchmarks use it.
pub(crate) fn with_pg<T>(url: &str, work: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = url
            .parse::<tokio_postgres::Config>()
            .unwrap()
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(connection);
        let result = work(&client).await;
        drop(client);
        let _ = driver.await;
        result
    })
}

/// Runs SQL on the server as `url`'s user.
pub(crate) fn pg_admin(url: &str, sql: &str) {
    with_pg(url, async |client| client.batch_execute(sql).await.unwrap());
}
