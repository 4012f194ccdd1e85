//! The runner's envelope parser on arbitrary bytes: never panics; whatever it accepts is
//! valid and survives a re-encoding unchanged.
#![no_main]

use ctl_core::envelope::{Envelope, MAX_ENVELOPE_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_slice(data) else {
        return;
    };
    assert!(data.len() <= MAX_ENVELOPE_BYTES);
    envelope.validate().expect("an accepted envelope validates");
    assert!(envelope.return_fd > 0);
    for fd in envelope.named_fds() {
        assert!(fd >= 0, "negative fd {fd} accepted");
    }
    assert!(!envelope.name.is_empty() && !envelope.name.chars().any(char::is_control));
    let encoded = envelope.to_vec();
    let again = Envelope::from_slice(&encoded).expect("a re-encoded envelope decodes");
    // Floats inside the arguments may move by one ULP (see `json_eq`); the rest is exact.
    let args = |e: &Envelope| serde_json::json!([e.args, e.kwargs]);
    assert!(
        ctl_fuzz::json_eq(&args(&again), &args(&envelope)),
        "arguments changed: {envelope:?} -> {again:?}"
    );
    let (mut a, mut b) = (again, envelope);
    (a.args, a.kwargs, b.args, b.kwargs) = (
        Vec::new(),
        Default::default(),
        Vec::new(),
        Default::default(),
    );
    assert_eq!(a, b);
});
