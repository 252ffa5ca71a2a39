//! `tokens:`: the bearer tokens, each with its holder's name and [`Role`], the secret inline or
//! from the environment (`token_env`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::catalog::report::Reporter;
use crate::catalog::spans::join_index;

/// Roles of a bearer token. `admin` may do everything; `approver` also what `viewer` may;
/// `ingest` may only post alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Ingest,
    Viewer,
    Approver,
    Admin,
}

impl Role {
    /// Whether a token of this role may do what `required` guards.
    pub fn allows(self, required: Role) -> bool {
        match (self, required) {
            (Role::Admin, _) => true,
            (Role::Ingest, Role::Ingest) => true,
            (Role::Ingest, _) | (_, Role::Ingest) => false,
            (Role::Approver, Role::Viewer | Role::Approver) => true,
            (Role::Viewer, Role::Viewer) => true,
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(super) struct TokenDocument {
    name: String,
    role: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_env: Option<String>,
}

/// A bearer token and who holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    pub role: Role,
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// `tokens:`: every token with a known role and a secret of at least 16 characters, names and
/// secrets unique.
pub(super) fn check_tokens(
    docs: &[TokenDocument],
    env: &dyn Fn(&str) -> Option<String>,
    r: &mut Reporter<'_>,
) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut names = BTreeMap::new();
    for (i, t) in docs.iter().enumerate() {
        let field = join_index("tokens", i);
        let role = match t.role.as_str() {
            "ingest" => Some(Role::Ingest),
            "viewer" => Some(Role::Viewer),
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            other => {
                r.at_value(
                    &format!("{field}.role"),
                    format!("unknown role `{other}`; expected ingest, viewer, approver or admin"),
                );
                None
            }
        };
        if names.insert(t.name.clone(), i).is_some() {
            r.at_value(
                &format!("{field}.name"),
                format!("another token is named `{}`", t.name),
            );
        }
        let secret = match (&t.token, &t.token_env) {
            (Some(s), None) => Some(s.clone()),
            (None, Some(var)) => r.env_var(&format!("{field}.token_env"), var, env),
            _ => {
                r.at_key(&field, "set exactly one of token and token_env");
                None
            }
        };
        if let Some(s) = &secret
            && s.len() < 16
        {
            r.at_key(&field, "a token must be at least 16 characters");
        }
        if let (Some(role), Some(secret)) = (role, secret) {
            if tokens.iter().any(|other| other.secret == secret) {
                r.at_key(&field, "two tokens have the same secret");
            }
            tokens.push(Token {
                name: t.name.clone(),
                role,
                secret,
            });
        }
    }
    if tokens.is_empty() && docs.is_empty() {
        r.at_key("tokens", "no tokens: nothing could post alerts or read incidents");
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_nest_except_ingest() {
        assert!(Role::Admin.allows(Role::Ingest));
        assert!(Role::Approver.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Approver));
        assert!(!Role::Ingest.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Ingest));
    }
}
