//! Every stream fixture, split at random points, parses to the same events as when whole.

mod common;

use common::*;
use proptest::prelude::*;

fn split_at<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(&bytes[start..c]);
        start = c;
    }
    out.push(&bytes[start..]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_splits_give_identical_events(cuts in proptest::collection::vec(any::<usize>(), 0..24)) {
        let streams = cases_with("stream.sse");
        prop_assert!(streams.len() >= 5);
        for (case, _, bytes) in streams {
            let whole = parse_stream(&bytes).unwrap();
            let split = parse_stream_chunks(&split_at(&bytes, &cuts));
            prop_assert_eq!(Ok(whole), split, "{}", case);
        }
    }
}
