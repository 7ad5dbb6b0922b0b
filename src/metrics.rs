//! What a greylisting daemon exports for Prometheus: decisions by action and reason, the time a
//! decision took, store errors, open connections, connections closed by cause, batch sizes and
//! the build, in the OpenMetrics text the `prometheus-client` crate writes.
//!
//! Every value lives in atomics (the crate's counters, gauges and histograms, and the shared
//! `ClosedConnections`), so the decision loop only adds to them and never waits for a scrape;
//! `http` serves them from a thread of its own. Label values are fixed names (the deciding
//! rule's name, an action, a close cause), never anything a client sent, so the number of series
//! stays bounded whatever the traffic.

pub(crate) mod http;

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::daemon::batch::Decided;
use crate::daemon::limits::{CloseCause, ClosedConnections};
use crate::engine::{Checked, Message, MessageOutcome};

/// Upper bounds of the decision-time buckets, in seconds.
pub const DECISION_SECONDS_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds of the batch-size buckets, in requests.
pub const BATCH_SIZE_BUCKETS: [f64; 10] =
    [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// The reason label of a decision the store could not make (the daemon failed open).
pub const STORE_ERROR: &str = "store error";

/// Labels of `greylisting_decisions`: action and reason, both from fixed sets.
type DecisionLabels = [(&'static str, &'static str); 2];

/// What differs between the daemons that export metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Export `greylisting_batch_size` (the policy server decides requests in batches).
    pub batch_size: bool,
}

/// The metrics of one daemon.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    decision_seconds: Histogram,
    store_errors: Counter,
    connections: Gauge,
    batch_size: Option<Histogram>,
}

/// Reads the close counters at each scrape (they are kept by the connection table).
#[derive(Debug)]
struct ClosedCollector(Arc<ClosedConnections>);

impl Collector for ClosedCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "greylisting_connections_closed",
            "Connections the server closed, by cause.",
            None,
            MetricType::Counter,
        )?;
        for cause in CloseCause::ALL {
            let labels = [("cause", cause.as_str())];
            ConstCounter::new(self.0.get(cause)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Metrics {
    /// A registry with every family registered; `closed` is the server's close counters.
    pub fn new(options: Options, closed: Arc<ClosedConnections>) -> Metrics {
        let mut registry = Registry::default();
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "greylisting_decisions",
            "Decisions per recipient, by action and by the rule that decided",
            decisions.clone(),
        );
        let decision_seconds = Histogram::new(DECISION_SECONDS_BUCKETS);
        registry.register(
            "greylisting_decision_seconds",
            "Time from the start of deciding to the decision, in seconds",
            decision_seconds.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "greylisting_store_errors",
            "Requests the store could not decide (answered as passed)",
            store_errors.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "greylisting_connections",
            "Client connections open now",
            connections.clone(),
        );
        // The crate ends registered help texts with a full stop; the collector's is written as is.
        registry.register_collector(Box::new(ClosedCollector(closed)));
        let batch_size = options.batch_size.then(|| {
            let histogram = Histogram::new(BATCH_SIZE_BUCKETS);
            registry.register(
                "greylisting_batch_size",
                "Requests decided together in one store transaction",
                histogram.clone(),
            );
            histogram
        });
        registry.register(
            "greylisting_build",
            "The running build",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        Metrics {
            registry,
            decisions,
            decision_seconds,
            store_errors,
            connections,
            batch_size,
        }
    }

    /// Counts the decisions of one message, each recipient with its action and reason.
    pub fn record_message(&self, outcome: &MessageOutcome) {
        for recipient in &outcome.recipients {
            let decision = &recipient.decision;
            self.decisions
                .get_or_create(&[
                    ("action", decision.verdict.as_str()),
                    ("reason", decision.reason.as_str()),
                ])
                .inc();
        }
    }

    /// Counts a message the store could not decide: a store error, and its `recipients`
    /// passed (the daemon fails open).
    pub fn record_store_error(&self, recipients: usize) {
        self.store_errors.inc();
        self.decisions
            .get_or_create(&[("action", "pass"), ("reason", STORE_ERROR)])
            .inc_by(recipients as u64);
    }

    /// Records one batch decided in one store transaction: its size, how long it took (every
    /// request of the batch waited for all of it) and each request's decisions; an `Err`
    /// outcome is a store error whose recipients passed. Both daemons record through this.
    pub(crate) fn record_batch(
        &self,
        seconds: f64,
        checks: &[(&Message, i64)],
        outcomes: &[Decided],
    ) {
        if checks.is_empty() {
            return;
        }
        self.observe_batch(checks.len());
        for ((message, _), outcome) in checks.iter().zip(outcomes) {
            match outcome {
                Ok(Checked::Decided(outcome)) => self.record_message(outcome),
                // Decided (and counted) in a later batch, once DNS answered.
                Ok(Checked::NeedsDns { .. }) => continue,
                Err(_) => self.record_store_error(message.recipients.len()),
            }
            self.observe_decision_seconds(seconds);
        }
    }

    /// Records how long deciding took, in seconds, for one request.
    pub fn observe_decision_seconds(&self, seconds: f64) {
        self.decision_seconds.observe(seconds);
    }

    /// Records the size of a batch decided in one transaction (ignored without the family).
    pub fn observe_batch(&self, requests: usize) {
        if let Some(histogram) = &self.batch_size {
            histogram.observe(requests as f64);
        }
    }

    /// Sets the number of open connections.
    pub fn set_connections(&self, open: usize) {
        self.connections
            .set(i64::try_from(open).unwrap_or(i64::MAX));
    }

    /// Everything in OpenMetrics text, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would only cut the text short.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Starts the endpoint for `--metrics-listen`: binds `listen`, registers the families (`closed`
/// is the server's close counters) and serves them from a thread of its own. Returns the
/// metrics to keep up to date and the address bound (port 0 becomes the real port).
pub fn start(
    listen: &str,
    options: Options,
    closed: Arc<ClosedConnections>,
) -> Result<(Arc<Metrics>, String), StartError> {
    let bound = http::bind(listen).map_err(|cause| StartError::Listen {
        address: listen.escape_debug().to_string(),
        cause,
    })?;
    let address = bound
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string());
    let metrics = Arc::new(Metrics::new(options, closed));
    http::spawn(bound, Arc::clone(&metrics)).map_err(StartError::Thread)?;
    Ok((metrics, address))
}

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The address does not resolve or cannot be bound.
    #[error("cannot listen for metrics on {address}: {cause}")]
    Listen {
        /// The address as given (escaped).
        address: String,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The serving thread could not be started.
    #[error("cannot start the metrics thread: {0}")]
    Thread(std::io::Error),
}

#[cfg(test)]
mod tests;
