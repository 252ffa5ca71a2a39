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

/// A JSON object of params as `k=v k=v` (a value that is not a string is shown as JSON).
pub fn params_text(params: &Value) -> String {
    params
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| match v.as_str() {
            Some(text) => format!("{k}={text}"),
            None => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
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
            print!("{}", terminal_safe(&text));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rootfix {what}: {}", terminal_safe(&e));
            ExitCode::FAILURE
        }
    }
}

/// `text` with every control character but newline and tab shown escaped (`\u{1b}`): values
/// from alerts (labels, annotations) and from the API reach the terminal as data, never as an
/// escape sequence that moves the cursor, clears the screen or rewrites earlier lines.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
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

/// A GET whose 200 answer is text (the incident export's JSON lines); any other answer is the
/// API's JSON error. A body cut short (the server lost its state store mid-way) is an error, so
/// what is returned is whole.
pub async fn get_text(api: &ApiArgs, path: &str) -> Result<String, String> {
    let token = api
        .token
        .as_deref()
        .ok_or("no token: pass --token or set ROOTFIX_TOKEN")?;
    let url = format!("{}{path}", api.server.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        return Err(format!(
            "{status}: {}",
            value["error"].as_str().unwrap_or("no reason given")
        ));
    }
    resp.text()
        .await
        .map_err(|e| format!("{url}: the answer was cut short: {e}"))
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn control_characters_are_shown_escaped_and_lines_kept() {
        assert_eq!(terminal_safe("plain\ttext\n"), "plain\ttext\n");
        assert!(matches!(terminal_safe("plain"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(
            terminal_safe("api-\u{1b}[2J\u{1b}]0;owned\u{7}\r\u{9b}x"),
            "api-\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\u{d}\\u{9b}x"
        );
    }
}
