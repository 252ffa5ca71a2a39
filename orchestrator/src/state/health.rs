//! Whether the store answers at all: the readiness probe's round trip.

use async_trait::async_trait;

use super::StateError;

#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Round trip to the store; the readiness probe uses it.
    async fn ping(&self) -> Result<(), StateError>;
}
