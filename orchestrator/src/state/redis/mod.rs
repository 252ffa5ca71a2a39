//! The production store on Redis: a multiplexed `ConnectionManager` (reconnects by itself), and a
//! Lua script wherever a read-modify-write must be atomic across replicas.
//!
//! This file holds the connection ([`RedisStateStore`]) and the helpers every area shares; each
//! area's trait is implemented in a file of its own beside it, with the Lua scripts it runs:
//! `prune`, `stream` (and `stream_trim`), `incidents`, `fixes`, `audit`, `autonomy`, `slots`, `leader`.

mod audit;
mod autonomy;
mod fixes;
mod incidents;
mod leader;
mod prune;
mod slots;
mod stream;
mod stream_trim;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::StateError;
use super::health::HealthStore;
use super::keys::Keys;

fn to_json<T: serde::Serialize>(key: &str, value: &T) -> Result<String, StateError> {
    serde_json::to_string(value).map_err(|e| StateError::Corrupt {
        key: key.to_string(),
        value: e.to_string(),
    })
}

fn from_json<T: serde::de::DeserializeOwned>(key: &str, raw: &str) -> Result<T, StateError> {
    serde_json::from_str(raw).map_err(|e| StateError::Corrupt {
        key: key.to_string(),
        value: format!("{e}: {raw}"),
    })
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn span_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub struct RedisStateStore {
    conn: ConnectionManager,
    /// A second connection for blocking reads (XREADGROUP BLOCK), which would hold up every other
    /// command on a shared multiplexed connection.
    blocking: ConnectionManager,
    keys: Keys,
}

fn unavailable(e: redis::RedisError) -> StateError {
    StateError::Unavailable(e.to_string())
}

/// A write's error: if the command may have reached Redis (a timeout, a connection dropped
/// while waiting for the answer), its outcome is unknown; if it surely did not (refused, or an
/// error answer), nothing was written.
fn write_outcome_unknown(e: redis::RedisError) -> StateError {
    if e.is_timeout() || (e.is_io_error() && !e.is_connection_refusal()) || e.is_connection_dropped() {
        StateError::OutcomeUnknown(e.to_string())
    } else {
        unavailable(e)
    }
}

impl RedisStateStore {
    /// Connects to `url` (`redis://host:port/db`); keys get `prefix` (empty in production).
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, StateError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), config.clone())
            .await
            .map_err(unavailable)?;
        let blocking = ConnectionManager::new_with_config(
            client,
            config.set_response_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .map_err(unavailable)?;
        let store = Self {
            conn,
            blocking,
            keys: Keys::new(prefix),
        };
        let indexed = store.index_incidents().await?;
        if indexed > 0 {
            tracing::info!(
                indexed,
                "indexed the stored incidents by state, service and playbook"
            );
        }
        Ok(store)
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A clone of the multiplexed connection, for modules that own other parts of the schema.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

#[async_trait]
impl HealthStore for RedisStateStore {
    async fn ping(&self) -> Result<(), StateError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
