#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sultana::fuzzing::ci_result(data));
