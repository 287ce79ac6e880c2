#![no_main]
//! The body lives in the library (`fuzz_framing`) so the property tests run it too.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inpatient_hub::systmone::framing::fuzz_framing(data);
});
