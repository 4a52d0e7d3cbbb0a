//! The incremental UTF-8 validator agrees with `std::str::from_utf8` for every
//! split: after each piece, it has failed exactly when the text so far can no
//! longer be the start of valid UTF-8, and at the end exactly when the text is
//! not valid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tincan_core::utf8::Utf8Validator;

fn prefix_can_be_valid(prefix: &[u8]) -> bool {
    match std::str::from_utf8(prefix) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (bytes, cuts) = input;
    let mut validator = Utf8Validator::new();
    let mut at = 0;
    let mut failed = false;
    for cut in cuts.iter().map(|&c| usize::from(c)).chain([bytes.len()]) {
        let end = (at + cut).min(bytes.len());
        let ok = validator.feed(&bytes[at..end]).is_ok();
        at = end;
        if !ok {
            failed = true;
            assert!(
                !prefix_can_be_valid(&bytes[..at]),
                "failed on a valid prefix"
            );
            break;
        }
        assert!(
            prefix_can_be_valid(&bytes[..at]),
            "missed an invalid prefix of {} bytes",
            at
        );
        if at == bytes.len() {
            break;
        }
    }
    if !failed {
        assert_eq!(
            validator.finish().is_ok(),
            std::str::from_utf8(&bytes).is_ok()
        );
    }
});
