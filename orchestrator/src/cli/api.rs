//! What the API commands share: where the server is, the token, and one request helper.

use std::process::ExitCode;

use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// rootfix's base URL.
    #[arg(
        long,
        env = "ROOTFIX_URL",
        default_value = "http://127.0.0.1:5001",
        global = true
    )]
    pub server: String,
    /// A bearer token (viewer to read, approver to decide approvals and confirm fixes, admin to
    /// change the kill switch and stages).
    #[arg(long, env = "ROOTFIX_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// One path segment, percent-encoded (ids and names go into URLs only through this).
pub fn segment(s: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    match s {
        // The URL parser would resolve these as dot segments.
        "." | ".." => s.replace('.', "%2E"),
        _ => percent_encoding::utf8_percent_encode(s, KEEP).to_string(),
    }
}

/// The API's JSON, pretty-printed, for `--json`.
pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default() + "\n"
}

pub fn block_on<F: std::future::Future<Output = Result<String, String>>>(what: &str, f: F) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rootfix {what}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(f) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rootfix {what}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub async fn call(
    api: &ApiArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let token = api
        .token
        .as_deref()
        .ok_or("no token: pass --token or set ROOTFIX_TOKEN")?;
    let url = format!("{}{path}", api.server.trim_end_matches('/'));
    let mut req = reqwest::Client::new().request(method, &url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = resp.status().as_u16();
    let value: Value = resp.json().await.unwrap_or(Value::Null);
    if status != 200 {
        return Err(format!(
            "{status}: {}",
            value["error"].as_str().unwrap_or("no reason given")
        ));
    }
    Ok(value)
}
