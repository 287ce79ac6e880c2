#![no_main]
//! The body lives in the library (`fuzz_decode`) so the property tests run it too.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    inpatient_hub::systmone::codec::fuzz_decode(data);
});
