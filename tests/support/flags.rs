//! A small HTTP flag service on 127.0.0.1 for the tests and the benchmark of `http-set-value`:
//! `GET /flags/<name>` answers the value (404 when unset), `PUT /flags/<name>` sets it to the
//! body. It starts with `degrade-reads = off`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A small flag service on 127.0.0.1: `GET /flags/<name>` answers the value, `PUT` sets it.
/// With `ignore_writes`, a PUT is answered 204 and changes nothing (a config service whose
/// write did not take), so the switch's verify fails.
pub struct FlagService {
    pub url: String,
    pub values: Arc<Mutex<BTreeMap<String, String>>>,
    pub ignore_writes: Arc<std::sync::atomic::AtomicBool>,
    pub writes: Arc<Mutex<Vec<String>>>,
}

impl FlagService {
    pub async fn start() -> Self {
        use axum::extract::{Path as UrlPath, State};
        use axum::http::StatusCode;
        use axum::routing::get;
        type Shared = (
            Arc<Mutex<BTreeMap<String, String>>>,
            Arc<std::sync::atomic::AtomicBool>,
            Arc<Mutex<Vec<String>>>,
        );
        let values = Arc::new(Mutex::new(BTreeMap::from([(
            "degrade-reads".to_string(),
            "off".to_string(),
        )])));
        let ignore = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writes = Arc::new(Mutex::new(Vec::new()));
        let shared: Shared = (values.clone(), ignore.clone(), writes.clone());
        let app = axum::Router::new()
            .route(
                "/flags/{name}",
                get(
                    |State(s): State<Shared>, UrlPath(name): UrlPath<String>| async move {
                        match s.0.lock().unwrap().get(&name) {
                            Some(v) => (StatusCode::OK, v.clone()),
                            None => (StatusCode::NOT_FOUND, String::new()),
                        }
                    },
                )
                .put(
                    |State(s): State<Shared>, UrlPath(name): UrlPath<String>, body: String| async move {
                        s.2.lock().unwrap().push(body.clone());
                        if !s.1.load(std::sync::atomic::Ordering::SeqCst) {
                            s.0.lock().unwrap().insert(name, body);
                        }
                        StatusCode::NO_CONTENT
                    },
                ),
            )
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FlagService {
            url,
            values,
            ignore_writes: ignore,
            writes,
        }
    }
}
