//! The leader lease ([`LeaderStore`](rootfix::state::LeaderStore)).

use super::*;

async fn one_leader_at_a_time((a, b): Pair) {
    let lease = Duration::from_millis(400);
    assert!(a.try_lead("replica-a", lease).await.unwrap());
    assert!(!b.try_lead("replica-b", lease).await.unwrap());
    assert!(a.try_lead("replica-a", lease).await.unwrap(), "the leader renews");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        b.try_lead("replica-b", lease).await.unwrap(),
        "a lapsed lease passes on"
    );
    assert!(!a.try_lead("replica-a", lease).await.unwrap());
}

conformance!(one_leader_at_a_time,);
