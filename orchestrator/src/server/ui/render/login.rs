//! The sign-in page: the token form, with the error after a refused token.

use std::fmt::Write as _;

use super::escape::escape;
use super::layout::layout;

/// The sign-in form, with an error after a refused token.
pub fn login_page(error: Option<&str>) -> String {
    let mut body = String::from("<h1>Sign in</h1>");
    if let Some(e) = error {
        let _ = write!(
            body,
            "<p id=\"login-error\" class=\"flash error\">{}</p>",
            escape(e)
        );
    }
    body.push_str(
        "<form method=\"post\" action=\"/ui/login\" id=\"login\">\
         <label for=\"token\">API token</label> \
         <input type=\"password\" id=\"token\" name=\"token\" autocomplete=\"current-password\" required autofocus> \
         <button type=\"submit\">Sign in</button></form>\
         <p>Use a token from rootfix's configuration: a <code>viewer</code> sees, an <code>approver</code> \
         or <code>admin</code> also decides.</p>",
    );
    layout("Sign in", None, None, &body)
}
