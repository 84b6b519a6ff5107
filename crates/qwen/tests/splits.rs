//! Every stream fixture, split at random points, parses to the same events as when whole.

mod common;

use common::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn random_splits_give_identical_events(cuts in proptest::collection::vec(any::<usize>(), 0..24)) {
        let streams = streams();
        prop_assert!(streams.len() >= 2);
        for (case, bytes) in streams {
            let whole = parse_stream(&bytes).unwrap();
            let split = parse_stream_chunks(&split_at(&bytes, &cuts));
            prop_assert_eq!(Ok(whole), split, "{}", case);
        }
    }
}
