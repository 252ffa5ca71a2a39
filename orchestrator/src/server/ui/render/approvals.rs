//! The table of pending approvals with their Approve and Reject forms, shared by the dashboard and
//! the incident page.

use std::fmt::Write as _;

use super::escape::{csrf_field, escape, seg};
use super::values::{params, time};
use crate::autonomy::approval::Approval;

/// Pending approvals as a table (`id`), with the Approve and Reject forms for an approver. The
/// forms carry `back` (an incident id) when posted from that incident's page, so the answer
/// returns there.
pub(super) fn approvals_table(
    b: &mut String,
    id: &str,
    approvals: &[Approval],
    can_decide: bool,
    csrf: &str,
    back: Option<&str>,
) {
    let _ = write!(
        b,
        "<table id=\"{}\"><thead><tr><th>Incident</th><th>Action</th><th>Scope</th><th>Params</th>\
         <th>Summary</th><th>Confidence</th><th>Expires</th><th>Decide</th></tr></thead><tbody>",
        escape(id)
    );
    let back = back.map_or(String::new(), |inc| {
        format!("<input type=\"hidden\" name=\"back\" value=\"{}\">", escape(inc))
    });
    for a in approvals {
        let _ = write!(
            b,
            "<tr class=\"approval\" data-id=\"{id}\" data-incident=\"{inc}\">\
             <td><a href=\"/ui/incidents/{inc_seg}\">{inc}</a></td><td>{action}</td><td>{scope}</td>\
             <td>{params}</td><td>{summary}</td><td class=\"confidence\">{conf:.2} / {thr:.2}</td>\
             <td class=\"expires\">{expires}</td><td>",
            id = escape(&a.id),
            inc = escape(&a.incident),
            inc_seg = seg(&a.incident),
            action = escape(&a.action),
            scope = escape(&a.scope),
            params = if a.steps.is_empty() {
                params(&a.params)
            } else {
                format!(
                    "<ol class=\"steps\">{}</ol>",
                    a.steps
                        .iter()
                        .map(|s| format!("<li>{} {}</li>", escape(&s.action), params(&s.params)))
                        .collect::<String>()
                )
            },
            summary = escape(&a.summary),
            conf = a.confidence,
            thr = a.threshold,
            expires = time(a.expires_at),
        );
        if can_decide {
            let _ = write!(
                b,
                "<form method=\"post\" action=\"/ui/approvals/{s}/approve\" class=\"approve inline\">{c}{back}\
                 <button type=\"submit\">Approve</button></form> \
                 <form method=\"post\" action=\"/ui/approvals/{s}/reject\" class=\"reject inline\">{c}{back}\
                 <input type=\"text\" name=\"reason\" placeholder=\"reason\" required aria-label=\"reason\">\
                 <button type=\"submit\">Reject</button></form>",
                s = seg(&a.id),
                c = csrf_field(csrf),
            );
        } else {
            b.push_str("<span class=\"empty\">approver role needed</span>");
        }
        b.push_str("</td></tr>");
    }
    b.push_str("</tbody></table>");
}
