//! The frontend's reply parser on arbitrary bytes: never panics; whatever it accepts
//! re-encodes to exactly one line that decodes to the same reply.
#![no_main]

use ctl_core::Reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reply) = Reply::from_line(data) else {
        return;
    };
    let line = reply.to_line();
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(
        line.iter().filter(|b| **b == b'\n').count(),
        1,
        "a reply must be one line"
    );
    let again = Reply::from_line(&line).expect("a re-encoded reply decodes");
    let same = match (&again, &reply) {
        (Reply::Ok(a), Reply::Ok(b)) => ctl_fuzz::json_eq(a, b),
        (a, b) => a == b,
    };
    assert!(same, "changed in a round trip: {reply:?} -> {again:?}");
});
