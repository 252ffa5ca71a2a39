//! The scopes' limits ([`SlotStore`](rootfix::state::SlotStore)): the sliding rate window and
//! the running slots with a lease.

use super::*;

async fn the_rate_window_slides_and_run_slots_cap_concurrency((a, b): Pair) {
    let hour = Duration::from_secs(3600);
    let at = |m: i64| t0() + chrono::Duration::minutes(m);
    assert!(a.take_rate_slot("staging", "f1", at(0), hour, 2).await.unwrap());
    assert!(b.take_rate_slot("staging", "f2", at(10), hour, 2).await.unwrap());
    assert!(
        !a.take_rate_slot("staging", "f3", at(20), hour, 2).await.unwrap(),
        "two per hour"
    );
    assert!(
        a.take_rate_slot("staging", "f2", at(20), hour, 2).await.unwrap(),
        "a fix counts once"
    );
    assert!(
        a.take_rate_slot("prod", "f3", at(20), hour, 2).await.unwrap(),
        "scopes count apart"
    );
    assert_eq!(b.rate_count("staging", at(20), hour).await.unwrap(), 2);
    // f1 leaves the window at 60 minutes.
    assert!(a.take_rate_slot("staging", "f3", at(61), hour, 2).await.unwrap());
    assert_eq!(b.rate_count("staging", at(61), hour).await.unwrap(), 2);
    b.release_rate_slot("staging", "f3").await.unwrap();
    assert_eq!(b.rate_count("staging", at(61), hour).await.unwrap(), 1);

    let lease = Duration::from_secs(600);
    assert!(a.take_run_slot("staging", "f1", at(0), lease, 1).await.unwrap());
    assert!(
        !b.take_run_slot("staging", "f2", at(1), lease, 1).await.unwrap(),
        "one at a time"
    );
    assert_eq!(a.running_count("staging", at(1)).await.unwrap(), 1);
    a.release_run_slot("staging", "f1").await.unwrap();
    assert!(b.take_run_slot("staging", "f2", at(2), lease, 1).await.unwrap());
    // A holder that died frees its slot when the lease runs out.
    assert!(!a.take_run_slot("staging", "f3", at(11), lease, 1).await.unwrap());
    assert!(a.take_run_slot("staging", "f3", at(13), lease, 1).await.unwrap());
    assert_eq!(b.running_count("staging", at(13)).await.unwrap(), 1);
}

conformance!(the_rate_window_slides_and_run_slots_cap_concurrency,);
