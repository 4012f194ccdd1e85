//! The daemon's metrics: the `metrics` facade, recorded by a Prometheus exporter without
//! an HTTP listener; the `metrics` request returns its text.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the global recorder (once per process) and returns the handle that renders the
/// Prometheus text. Also describes the daemon's own metrics.
pub fn install() -> Result<PrometheusHandle, String> {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("installing the metrics recorder: {e}"))?;
    metrics::describe_counter!(
        "ctld_requests_total",
        "Requests received, by cmd (`invalid`: unparseable, `unknown`: no such cmd)"
    );
    metrics::describe_counter!(
        "ctld_request_errors_total",
        "Requests answered with status false, by cmd and error kind"
    );
    metrics::describe_histogram!(
        "ctld_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time from a request's arrival to its reply, by cmd"
    );
    metrics::describe_gauge!("ctld_connections", "Client connections open");
    Ok(handle)
}
