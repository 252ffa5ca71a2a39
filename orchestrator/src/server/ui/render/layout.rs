//! The document around every page (head, style sheet, header with the signed-in user and the
//! sign-out form, the flash message) and the error page.

use std::fmt::Write as _;

use super::escape::escape;
use crate::server::auth::Identity;
use crate::server::ui::session::Flash;

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}header .who{margin-left:auto}
header form{display:inline}main{padding:1em 1.2em;max-width:1400px}
h2{border-bottom:1px solid #ccd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92em}
th,td{border:1px solid #dde;padding:.35em .5em;text-align:left;vertical-align:top}
code,pre,.why,.verdict{overflow-wrap:anywhere}.clip{cursor:help;border-bottom:1px dotted #889}
#summary th,#fix th{width:11em}#summary td,#fix td,#labels td,#timeline td:nth-child(3),#nodes td,#remedies td:first-child,
#remedies td:nth-child(6),#incidents td:nth-child(5),#incidents td:nth-child(6),#approvals td:nth-child(5),
#approval td:nth-child(5),#journal td:nth-child(7){overflow-wrap:anywhere}
#timeline td:first-child,#journal td:first-child,#incidents td:last-child,td.expires{white-space:nowrap}
th{background:#eef0f4}code,pre{font-family:ui-monospace,monospace;font-size:.9em}
pre{white-space:pre-wrap;overflow-wrap:anywhere;max-height:14em;overflow:auto;background:#f1f2f5;padding:.4em;margin:.2em 0}
.flash{padding:.6em 1em;border-radius:4px;margin:.5em 0}.flash.ok{background:#dff3e3;border:1px solid #8c8}
.flash.error,.banner{background:#fde2e1;border:1px solid #d88}.banner{padding:.8em 1em;font-weight:600}
form.inline{display:inline-flex;gap:.3em;margin:.1em 0}.empty{color:#667;font-style:italic}
button{cursor:pointer}.hit{color:#176b2c;font-weight:600}.miss{color:#667}.error{color:#a11}
.pruned{color:#999}.unmet{color:#a11}.met{color:#176b2c;font-weight:600}
.why{color:#7a4b00}.verdict{font-weight:600}p.verdict{background:#fff;border:1px solid #ccd;padding:.6em 1em}
.resolved{color:#176b2c;font-weight:600}form.reject input[name=reason]{width:9em}
";

/// The whole document around `body`.
pub fn layout(title: &str, who: Option<(&Identity, &str)>, flash: Option<&Flash>, body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · rootfix</title><style>{STYLE}</style></head><body>\
         <header><a href=\"/ui/\">rootfix</a>",
        escape(title)
    );
    if let Some((identity, csrf)) = who {
        let _ = write!(
            out,
            "<span class=\"who\" id=\"who\">{} ({})</span>\
             <form method=\"post\" action=\"/ui/logout\" class=\"logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form>",
            escape(&identity.name),
            identity.role.as_str(),
            escape(csrf)
        );
    }
    out.push_str("</header><main>");
    if let Some(f) = flash {
        let _ = write!(
            out,
            "<p id=\"flash\" class=\"flash {}\" role=\"status\">{}</p>",
            if f.ok { "ok" } else { "error" },
            escape(&f.text)
        );
    }
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

/// A refusal or failure as a page.
pub fn error_page(status: u16, message: &str, who: Option<(&Identity, &str)>) -> String {
    let body = format!(
        "<h1>Error {status}</h1><p id=\"error\" class=\"flash error\">{}</p><p><a href=\"/ui/\">Back to the dashboard</a></p>",
        escape(message)
    );
    layout(&format!("Error {status}"), who, None, &body)
}
