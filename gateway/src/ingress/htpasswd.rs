//! ingress-nginx's `auth-type: basic`: the users of the `auth-secret` — an htpasswd file under
//! the key `auth` (`auth-secret-type: auth-file`, the default) or one key per user
//! (`auth-map`) — become the basic-auth plugin's own `users`, so they log in on that Ingress
//! only, as with nginx's `auth_basic_user_file`.
//!
//! Only bcrypt (`htpasswd -B`) and argon2 hashes are carried over: the gateway refuses
//! MD5 (`$apr1$`), SHA-1 (`{SHA}`) and DES crypt hashes, which are fast to brute-force. Each
//! user with such a hash is reported by name, to be re-hashed with `htpasswd -B`.

use super::report::Verdict::{Differs, Unsupported};
use super::Report;
use k8s_openapi::api::core::v1::Secret;

/// `(username, hash)` pairs the plugin accepts, from the Secret `reference` (`name` in the
/// Ingress's namespace, or `namespace/name`); None when the Secret is not known (reported).
pub fn users(
    secrets: &[Secret],
    namespace: &str,
    reference: &str,
    map: bool,
    object: &str,
    report: &mut Report,
) -> Option<Vec<(String, String)>> {
    let (ns, name) = reference.split_once('/').unwrap_or((namespace, reference));
    let Some(secret) = secrets.iter().find(|s| {
        s.metadata.name.as_deref() == Some(name)
            && s.metadata.namespace.as_deref().unwrap_or("default") == ns
    }) else {
        report.add(
            Differs,
            object,
            "auth-secret",
            format!("the Secret {ns}/{name} is not known, so the basic-auth plugin has no users of its own and checks [[consumers]]' basic credentials: add one per htpasswd line"),
        );
        return None;
    };
    let value = |key: &str| -> Option<String> {
        let data = secret.data.as_ref().and_then(|d| d.get(key)).map(|b| &b.0);
        let text = secret.string_data.as_ref().and_then(|d| d.get(key));
        data.map(|b| String::from_utf8_lossy(b).into_owned())
            .or_else(|| text.cloned())
    };
    let mut lines: Vec<(String, String)> = Vec::new();
    if map {
        let mut keys: Vec<String> = secret
            .data
            .iter()
            .flat_map(|d| d.keys().cloned())
            .chain(secret.string_data.iter().flat_map(|d| d.keys().cloned()))
            .collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            if let Some(hash) = value(&key) {
                lines.push((key, hash.trim().to_string()));
            }
        }
    } else {
        let Some(file) = value("auth") else {
            report.add(
                Unsupported,
                object,
                "auth-secret",
                format!("the Secret {ns}/{name} has no key `auth` (an htpasswd file)"),
            );
            return Some(Vec::new());
        };
        for line in file.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((user, hash)) = line.split_once(':') {
                lines.push((user.to_string(), hash.to_string()));
            }
        }
    }
    let mut weak = Vec::new();
    let mut users = Vec::new();
    for (user, hash) in lines {
        if user.is_empty() || users.iter().any(|(u, _)| *u == user) {
            continue; // as nginx: the first line of a name counts
        }
        if tidegate_plugins::basic_auth::check_hash_format(&hash).is_ok() {
            users.push((user, hash));
        } else {
            weak.push(user);
        }
    }
    if !weak.is_empty() {
        report.add(
            Unsupported,
            object,
            "auth-secret",
            format!(
                "users {} of {ns}/{name}: MD5, SHA-1 and crypt hashes are refused (fast to brute-force); re-hash with `htpasswd -B`",
                weak.join(", ")
            ),
        );
    }
    Some(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$05$LO3G24OQIQHzSJa7Ecxi1u2v.AAWI7VxEm9o9Ss9Ww5OQSKvgG36W";

    fn secret(v: serde_json::Value) -> Secret {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_htpasswd_file_gives_its_strong_hashes_and_names_the_weak_ones() {
        let file = format!(
            "# ops\nolga:{BCRYPT}\nvic:$apr1$xyz$57ni3hqKt6I5TKS6ukb0r/\n\nolga:{BCRYPT}x\n"
        );
        let secrets = [secret(serde_json::json!({
            "metadata": {"name": "users", "namespace": "ops"},
            "stringData": {"auth": file}}))];
        let mut report = Report::default();
        let users = users(&secrets, "ops", "users", false, "ops/console", &mut report).unwrap();
        assert_eq!(users, [("olga".to_string(), BCRYPT.to_string())]);
        assert_eq!(report.lines.len(), 1);
        assert!(
            report.lines[0].note.starts_with("users vic of ops/users"),
            "{:?}",
            report.lines
        );
    }

    #[test]
    fn an_auth_map_has_one_key_per_user_and_a_reference_may_name_the_namespace() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(BCRYPT);
        let secrets = [secret(serde_json::json!({
            "metadata": {"name": "users", "namespace": "shared"},
            "data": {"olga": b64}}))];
        let mut report = Report::default();
        let got = users(&secrets, "ops", "shared/users", true, "ops/x", &mut report).unwrap();
        assert_eq!(got, [("olga".to_string(), BCRYPT.to_string())]);
        assert!(report.lines.is_empty());
        assert!(users(&secrets, "ops", "users", true, "ops/x", &mut report).is_none());
        assert!(report.lines[0].note.contains("ops/users is not known"));
    }
}
