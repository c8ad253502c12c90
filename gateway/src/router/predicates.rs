//! What a route asks of a request besides its host and path: a method, header values,
//! cookies and query parameters, each compared exactly. They are checked only among the
//! routes the host and path already chose, so their cost does not grow with the table.

use crate::config::{RouteConfig, METHODS};
use http::request::Parts;
use http::{HeaderName, HeaderValue, Method};
use std::collections::BTreeMap;

#[derive(Default)]
pub(super) struct Predicates {
    /// Bit `i` set: `METHODS[i]` allowed. Zero: any method.
    methods: u16,
    headers: Box<[(HeaderName, HeaderValue)]>,
    cookies: Box<[(Box<str>, Box<str>)]>,
    /// Names and values as they read decoded (`a%20b` and `a+b` are `a b`).
    query: Box<[(Box<str>, Box<str>)]>,
}

impl Predicates {
    /// From a route the schema has checked (anything unparsable is skipped).
    pub(super) fn new(config: &RouteConfig) -> Predicates {
        let mut methods = 0u16;
        for m in &config.methods {
            if let Some(i) = METHODS.iter().position(|k| k == m.get_ref()) {
                methods |= 1 << i;
            }
        }
        Predicates {
            methods,
            headers: header_pairs(config.headers.get_ref()).into_boxed_slice(),
            cookies: pairs(config.cookies.get_ref()),
            query: pairs(config.query.get_ref()),
        }
    }

    pub(super) fn fit(&self, req: &Parts) -> bool {
        if self.methods != 0 && self.methods & method_bit(&req.method) == 0 {
            return false;
        }
        self.headers
            .iter()
            .all(|(name, value)| req.headers.get(name) == Some(value))
            && self.cookies.iter().all(|(name, value)| {
                tidegate_plugins::key::cookie(&req.headers, name) == Some(&**value)
            })
            && (self.query.is_empty() || self.query_fits(req.uri.query().unwrap_or("")))
    }

    /// The first occurrence of each name counts (what a repeated parameter means is left to
    /// each server by the Gateway API; the first is what most frameworks read).
    fn query_fits(&self, query: &str) -> bool {
        self.query.iter().all(|(name, value)| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == &**name)
                .is_some_and(|(_, v)| v == **value)
        })
    }

    /// How many things the route asks: routes that ask more are tried first.
    pub(super) fn count(&self) -> u32 {
        self.methods.count_ones().min(1)
            + (self.headers.len() + self.cookies.len() + self.query.len()) as u32
    }
}

fn method_bit(method: &Method) -> u16 {
    let i = match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::DELETE => 4,
        Method::PATCH => 5,
        Method::OPTIONS => 6,
        Method::CONNECT => 7,
        Method::TRACE => 8,
        _ => return 0,
    };
    1 << i
}

fn pairs(map: &BTreeMap<String, String>) -> Box<[(Box<str>, Box<str>)]> {
    map.iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect()
}

/// Pairs of a header table the schema has checked (anything unparsable is skipped).
pub(super) fn header_pairs(map: &BTreeMap<String, String>) -> Vec<(HeaderName, HeaderValue)> {
    map.iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Source};

    fn predicates(extra: &str) -> Predicates {
        let text = format!("[[routes]]\nname = \"r\"\n{extra}\nrespond = {{ body = \"\" }}\n");
        let config = Config::parse(&Source::new("test", &text)).expect("valid config");
        Predicates::new(&config.routes[0])
    }

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn cookies_match_by_exact_name_and_value_in_any_cookie_header() {
        let p = predicates("cookies = { canary = \"always\" }");
        assert!(p.fit(&request("GET", "/", &[("cookie", "a=1; canary=always")])));
        assert!(p.fit(&request(
            "GET",
            "/",
            &[("cookie", "a=1"), ("cookie", "canary=always")]
        )));
        for cookie in [
            "canary=never",
            "Canary=always",
            "xcanary=always",
            "a=canary",
        ] {
            assert!(
                !p.fit(&request("GET", "/", &[("cookie", cookie)])),
                "{cookie}"
            );
        }
        assert!(!p.fit(&request("GET", "/", &[])));
        assert_eq!(p.count(), 1);
    }

    #[test]
    fn query_parameters_match_decoded_and_the_first_occurrence_counts() {
        let p = predicates("query = { animal = \"blue whale\", n = \"1\" }");
        assert!(p.fit(&request("GET", "/?n=1&animal=blue%20whale", &[])));
        assert!(p.fit(&request("GET", "/?animal=blue+whale&n=1&n=2", &[])));
        assert!(!p.fit(&request("GET", "/?animal=blue+whale&n=2&n=1", &[])));
        assert!(!p.fit(&request("GET", "/?animal=blue+whale", &[])));
        assert!(!p.fit(&request("GET", "/", &[])));
        assert_eq!(p.count(), 2);
    }

    #[test]
    fn every_predicate_must_fit() {
        let p = predicates(
            "methods = [\"POST\"]\nheaders = { x-v = \"2\" }\ncookies = { c = \"1\" }\nquery = { q = \"1\" }",
        );
        let all = [("x-v", "2"), ("cookie", "c=1")];
        assert!(p.fit(&request("POST", "/?q=1", &all)));
        assert!(!p.fit(&request("GET", "/?q=1", &all)));
        assert!(!p.fit(&request("POST", "/?q=2", &all)));
        assert!(!p.fit(&request("POST", "/?q=1", &all[..1])));
        assert!(!p.fit(&request("POST", "/?q=1", &all[1..])));
        assert_eq!(p.count(), 4);
    }
}
