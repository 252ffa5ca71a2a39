//! Headless Chromium (Debian's `chromium` package) driven over the DevTools protocol: a fresh
//! profile in a temporary folder, one page, commands over its websocket. Just enough to load a
//! page, type, click like a user (real mouse events at the element's position), wait for the
//! next document and take a screenshot.
//!
//! Declare it next to `support`: `#[path = "support/browser.rs"] mod browser;`. There is no skip:
//! without `/usr/bin/chromium` (or `$CHROMIUM`) the test fails and says how to install it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub struct Browser {
    child: tokio::process::Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

/// The Chromium binary: `$CHROMIUM`, else Debian's `/usr/bin/chromium`.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

impl Browser {
    pub async fn launch() -> Self {
        let bin = chromium_path();
        assert!(
            bin.exists(),
            "{} not found: install Debian's chromium (`apt-get install chromium`, scripts/lib.sh does) \
             or set CHROMIUM",
            bin.display()
        );
        let profile = tempfile::tempdir().expect("profile dir");
        let child = tokio::process::Command::new(&bin)
            .args([
                "--headless=new",
                // The tests run as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--password-store=basic",
                "--window-size=1400,1000",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        // Chromium writes the port it chose (and the browser's websocket path) into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let port: u16 = loop {
            if let Ok(s) = std::fs::read_to_string(&port_file)
                && let Some(Ok(p)) = s.lines().next().map(str::parse)
            {
                break p;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromium did not open its DevTools port"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The page target Chromium opened with about:blank.
        let client = reqwest::Client::new();
        let ws_url = loop {
            let targets: Value = match client
                .get(format!("http://127.0.0.1:{port}/json/list"))
                .send()
                .await
            {
                Ok(r) => r.json().await.unwrap_or(Value::Null),
                Err(_) => Value::Null,
            };
            if let Some(url) = targets.as_array().and_then(|ts| {
                ts.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                    .map(str::to_string)
            }) {
                break url;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromium has no page target"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let (ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .expect("connect to the page's DevTools websocket");
        let mut browser = Self {
            child,
            ws,
            next_id: 0,
            _profile: profile,
        };
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        browser
    }

    /// Sends one command and returns its result (events in between are skipped); panics on a
    /// protocol error.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    pub async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws
            .send(Message::Text(msg.into()))
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| format!("no answer to {method} in 30 s"))?;
            let Some(frame) = next else {
                return Err("the DevTools websocket closed".into());
            };
            let text = match frame.map_err(|e| e.to_string())? {
                Message::Text(t) => t.to_string(),
                _ => continue,
            };
            let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            if v["id"] != json!(id) {
                continue; // an event, or an answer to nothing we wait for
            }
            if let Some(err) = v.get("error") {
                return Err(err.to_string());
            }
            return Ok(v["result"].clone());
        }
    }

    /// Evaluates `expr` in the page and returns its value (errors, e.g. during a navigation, are
    /// `Err`).
    pub async fn try_eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self
            .try_call(
                "Runtime.evaluate",
                json!({"expression": expr, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(ex.to_string());
        }
        Ok(r["result"]["value"].clone())
    }

    pub async fn eval(&mut self, expr: &str) -> Value {
        self.try_eval(expr)
            .await
            .unwrap_or_else(|e| panic!("evaluate {expr}: {e}"))
    }

    /// Marks the current document, so [`Browser::wait_new_document`] knows when it is replaced.
    async fn mark(&mut self) {
        self.eval("window.__rootfix_old_document = true").await;
    }

    /// Waits until the marked document is gone and the new one has loaded; returns its URL.
    async fn wait_new_document(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(v) = self
                .try_eval(
                    "(window.__rootfix_old_document === undefined && document.readyState === 'complete') \
                     ? location.href : null",
                )
                .await
                && let Some(url) = v.as_str()
            {
                return url.to_string();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no new document within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Loads `url` (following redirects) and returns where it ended.
    pub async fn goto(&mut self, url: &str) -> String {
        self.mark().await;
        self.call("Page.navigate", json!({"url": url})).await;
        self.wait_new_document().await
    }

    /// Clicks the element `selector` with the mouse (pressed and released at its centre) and waits
    /// for the document the click loads; returns its URL.
    pub async fn click_and_wait(&mut self, selector: &str) -> String {
        self.mark().await;
        self.click(selector).await;
        self.wait_new_document().await
    }

    /// Clicks the element `selector` with the mouse.
    pub async fn click(&mut self, selector: &str) {
        let sel = serde_json::to_string(selector).expect("selector");
        let rect = self
            .eval(&format!(
                "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
                 e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
                 return [r.left + r.width / 2, r.top + r.height / 2]; }})()"
            ))
            .await;
        let (x, y) = match rect.as_array().map(Vec::as_slice) {
            Some([x, y]) => (x.as_f64().expect("x"), y.as_f64().expect("y")),
            _ => panic!("no element {selector} to click"),
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Focuses `selector` (by clicking it) and types `text` into it.
    pub async fn type_into(&mut self, selector: &str, text: &str) {
        self.click(selector).await;
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// The number of elements matching `selector`.
    pub async fn count(&mut self, selector: &str) -> usize {
        let sel = serde_json::to_string(selector).expect("selector");
        self.eval(&format!("document.querySelectorAll({sel}).length"))
            .await
            .as_u64()
            .expect("a count") as usize
    }

    /// The text of the first element matching `selector` (`None` when there is none).
    pub async fn text(&mut self, selector: &str) -> Option<String> {
        let sel = serde_json::to_string(selector).expect("selector");
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); return e ? e.textContent : null; }})()"
        ))
        .await
        .as_str()
        .map(str::to_string)
    }

    /// An attribute of every element matching `selector`.
    pub async fn attrs(&mut self, selector: &str, attr: &str) -> Vec<String> {
        let sel = serde_json::to_string(selector).expect("selector");
        let attr = serde_json::to_string(attr).expect("attr");
        let v = self
            .eval(&format!(
                "Array.from(document.querySelectorAll({sel})).map(e => e.getAttribute({attr}))"
            ))
            .await;
        v.as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }

    /// A PNG of the whole page.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        let r = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("base64 screenshot")
    }

    pub async fn close(mut self) {
        let _ = self.try_call("Browser.close", json!({})).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}
