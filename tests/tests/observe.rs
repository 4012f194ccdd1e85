//! Every call is visible: a `ctl.call` span with its steps and outcome, and metrics
//! through the `metrics` facade (`ctl_core::observe`), recorded by the real Prometheus
//! recorder and a real `tracing` subscriber, as a daemon installs them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ctl_core::{Call, ContainerLock, ErrorKind, LockMode, Stdio};
use metrics_exporter_prometheus::PrometheusBuilder;
use tests::faults::{Fail, Sleep};
use tests::fixtures::{test_runner_path, TestContainer};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// The fields of every closed `ctl.call` span.
#[derive(Clone, Default)]
struct Spans {
    open: Arc<Mutex<BTreeMap<u64, BTreeMap<String, String>>>>,
    closed: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() != "ctl.call" {
            return;
        }
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.open.lock().unwrap().insert(id.into_u64(), fields);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(fields) = self.open.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
    fn on_close(&self, id: Id, _: Context<'_, S>) {
        if let Some(fields) = self.open.lock().unwrap().remove(&id.into_u64()) {
            self.closed.lock().unwrap().push(fields);
        }
    }
}

fn number(fields: &BTreeMap<String, String>, name: &str) -> u64 {
    fields
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {fields:?}"))
}

/// The value of the Prometheus sample `line` (name and labels as rendered).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (head, value) = line.rsplit_once(' ')?;
        let rest = head.strip_prefix(name)?;
        let all = labels
            .iter()
            .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        (rest.starts_with('{') && all).then(|| value.parse().ok())?
    })
}

#[test]
fn calls_are_traced_and_counted() {
    let _serial = ctl_test_support::leaks::serial();
    let tc = TestContainer::running("observe");
    let call = Call::new(tc.container())
        .runner(test_runner_path())
        .stdout(Stdio::Null)
        .stderr(Stdio::Null);
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(spans.clone());
    tracing::subscriber::with_default(subscriber, || {
        metrics::with_local_recorder(&recorder, || {
            assert!(Sleep::run_with(&call, 0.0).unwrap());
            assert!(Sleep::run_with(&call, 0.0).unwrap());
            let err = Fail::run_with(&call, "no".into()).unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Command { .. }));
            let err = Sleep::run_with(&call.clone().deadline(Duration::from_millis(300)), 30.0)
                .unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Timeout { .. }));
            // A changer that finds the lock taken: counted as a lock wait, no runner.
            let lock = ContainerLock::acquire(&call, "test", LockMode::Shared)
                .unwrap()
                .unwrap();
            let err = commands::Freeze::run_with(&call.clone().deadline(Duration::from_millis(50)))
                .unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::Busy { .. }), "{err}");
            drop(lock);
            // An async call dropped in flight.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let dropped = rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(500), Sleep::runner_async(&call, 30.0))
                    .await
            });
            assert!(dropped.is_err());
            // Its runner is reaped by a task of that runtime.
            rt.block_on(async { tokio::time::sleep(Duration::from_millis(300)).await });
        });
    });

    let text = metrics.render();
    let ct = tc.container().ident();
    let calls = |outcome| {
        sample(
            &text,
            "ctl_calls_total",
            &[
                ("command", "Sleep"),
                ("placement", "exec"),
                ("mode", "cold"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(calls("ok"), Some(2.0), "{text}");
    assert_eq!(calls("timeout"), Some(1.0), "{text}");
    assert_eq!(calls("cancelled"), Some(1.0), "{text}");
    assert_eq!(
        sample(
            &text,
            "ctl_call_errors_total",
            &[("command", "Fail"), ("kind", "command")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ctl_calls_in_flight", &[("command", "Sleep")]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "ctl_call_duration_seconds_count",
            &[("command", "Sleep"), ("mode", "cold")]
        ),
        Some(4.0),
        "{text}"
    );
    // Lock waits: every Sleep and Fail (shared), and the refused Freeze (exclusive).
    assert_eq!(
        sample(
            &text,
            "ctl_lock_wait_seconds_count",
            &[("command", "Freeze"), ("lock", "exclusive")]
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "ctl_lock_wait_seconds_count",
            &[("command", "Sleep"), ("lock", "shared")]
        )
        .is_some_and(|n| n >= 4.0),
        "{text}"
    );

    let closed = spans.closed.lock().unwrap().clone();
    // Sleep ×2, Fail, Sleep (timeout), Sleep (cancelled): the refused Freeze started none.
    assert_eq!(closed.len(), 5, "{closed:#?}");
    for span in &closed {
        assert_eq!(span["container"], ct);
        assert_eq!(span["placement"], "exec");
        assert_eq!(span["warm"], "false");
        assert!(number(span, "runner_pid") > 1, "{span:?}");
    }
    let ok: Vec<_> = closed.iter().filter(|s| s["outcome"] == "ok").collect();
    assert_eq!(ok.len(), 2);
    for span in ok {
        assert_eq!(span["command"], "Sleep");
        // The steps in order: spawned, envelope read, reply, exit.
        let steps = ["spawn_us", "envelope_us", "reply_us", "exit_us"].map(|f| number(span, f));
        assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{span:?}");
        assert!(steps[0] > 0, "{span:?}");
    }
    let outcomes: Vec<&str> = closed.iter().map(|s| s["outcome"].as_str()).collect();
    assert!(outcomes.contains(&"command"), "{outcomes:?}");
    assert!(outcomes.contains(&"timeout"), "{outcomes:?}");
    assert!(outcomes.contains(&"cancelled"), "{outcomes:?}");
}
