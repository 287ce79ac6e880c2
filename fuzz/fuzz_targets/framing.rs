#![no_main]
//! The body lives in the wire crate behind its `fuzzing` feature (`fuzz_framing`) so the property tests run it too.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    systmone_wire::framing::fuzz_framing(data);
});
