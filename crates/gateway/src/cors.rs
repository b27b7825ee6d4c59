//! CORS of an API's HTTP listener (`listeners[].cors`, docs/definition.md#cors), as Gravitee
//! answers it: a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
//! answered here, before plans and flows, with 200 or 400 `CORS_PREFLIGHT_FAILED`; every other
//! response to an allowed origin (errors, 401s and event streams included) carries
//! `Access-Control-Allow-Origin` and its companions. A request from an origin that is not allowed
//! is still served, without those headers, so the browser withholds the answer from the script.

use axum::response::Response;
use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use kafka_edge_definition::{Cors, Problem};
use regex::Regex;

enum OriginRule {
    Any,
    Exact(String),
    Pattern(Regex),
}

/// A listener's CORS configuration, compiled.
pub struct CorsPolicy {
    origins: Vec<OriginRule>,
    methods: Vec<String>,
    headers: Vec<String>,
    expose: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
    private_network: bool,
}

/// Whether an origin entry is a regular expression, as Gravitee reads it (`(`, `[`, or a `*` that
/// repeats something: `.*`, `)*`, `]*`). A `*` after anything else is a glob's.
fn is_regex(origin: &str) -> bool {
    let bytes = origin.as_bytes();
    origin.contains(['(', '['])
        || (origin.contains('*')
            && origin.match_indices('*').all(|(at, _)| at > 0 && matches!(bytes[at - 1], b'.' | b')' | b']')))
}

const ALLOW_PRIVATE_NETWORK: &str = "access-control-allow-private-network";
const REQUEST_PRIVATE_NETWORK: &str = "access-control-request-private-network";

impl CorsPolicy {
    /// Problems carry their path below the `cors` block.
    pub fn compile(cors: &Cors) -> Result<Self, Problem> {
        let mut origins = Vec::new();
        for (index, origin) in cors.allow_origin.iter().enumerate() {
            let origin = origin.trim();
            origins.push(if origin == "*" {
                if cors.allow_credentials {
                    return Err(Problem::new(
                        format!("allowOrigin[{index}]"),
                        "`*` with allowCredentials: true would let every web site read answers made with a visitor's \
                         credentials (cookies, client certificates); list the origins",
                    ));
                }
                OriginRule::Any
            } else if is_regex(origin) {
                let pattern = Regex::new(&format!("(?i)^(?:{origin})$")).map_err(|error| {
                    Problem::new(format!("allowOrigin[{index}]"), format!("not a valid pattern `{origin}`: {error}"))
                })?;
                OriginRule::Pattern(pattern)
            } else if origin.contains('*') {
                // A glob (`https://*.example.com`), which as a regex would match `https://xexample.com`:
                // `*` stands for one or more DNS labels, dots are dots.
                let glob = regex::escape(origin).replace("\\*", "[a-z0-9-]+(?:\\.[a-z0-9-]+)*");
                let pattern = Regex::new(&format!("(?i)^{glob}$")).map_err(|error| {
                    Problem::new(format!("allowOrigin[{index}]"), format!("not a valid pattern `{origin}`: {error}"))
                })?;
                OriginRule::Pattern(pattern)
            } else {
                OriginRule::Exact(origin.to_ascii_lowercase())
            });
        }
        let list = |values: &[String], case: fn(&str) -> String| -> Vec<String> {
            values.iter().map(|v| case(v.trim())).filter(|v| !v.is_empty()).collect()
        };
        let expose = (!cors.expose_headers.is_empty())
            .then(|| HeaderValue::from_str(&cors.expose_headers.join(", ")))
            .transpose()
            .map_err(|_| Problem::new("exposeHeaders", "a header name holds a character HTTP does not allow"))?;
        Ok(Self {
            origins,
            methods: list(&cors.allow_methods, str::to_ascii_uppercase),
            headers: list(&cors.allow_headers, str::to_ascii_lowercase),
            expose,
            credentials: cors.allow_credentials,
            max_age: (cors.max_age >= 0).then(|| HeaderValue::from(cors.max_age)),
            private_network: cors.allow_private_network,
        })
    }

    pub fn allows(&self, origin: &str) -> bool {
        let lower = origin.to_ascii_lowercase();
        self.origins.iter().any(|rule| match rule {
            OriginRule::Any => true,
            OriginRule::Exact(allowed) => *allowed == lower,
            OriginRule::Pattern(pattern) => pattern.is_match(origin),
        })
    }

    /// The answer to a preflight request; `None` when the request is not one.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Response> {
        if method != Method::OPTIONS {
            return None;
        }
        let origin = headers.get(ORIGIN)?.to_str().ok()?;
        let requested = headers.get(ACCESS_CONTROL_REQUEST_METHOD)?.to_str().ok()?.trim();
        let refuse = |reason: String| {
            let mut response = kafka_edge_entrypoints::error::json_error(
                StatusCode::BAD_REQUEST,
                &format!("CORS preflight failed: {reason}"),
                Some("CORS_PREFLIGHT_FAILED"),
            );
            self.decorate(origin, &mut response);
            Some(response)
        };
        if !self.allows(origin) {
            return refuse(format!("origin '{origin}' is not allowed"));
        }
        if self.methods.is_empty() {
            return refuse("the API's cors.allowMethods is empty".into());
        }
        if !self.methods.iter().any(|m| m == "*" || m.eq_ignore_ascii_case(requested)) {
            return refuse(format!("method '{requested}' is not allowed"));
        }
        let asked = headers.get(ACCESS_CONTROL_REQUEST_HEADERS).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let refused: Vec<&str> = asked
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .filter(|h| !self.headers.iter().any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(h)))
            .collect();
        if !refused.is_empty() {
            return refuse(format!("headers '{}' are not allowed", refused.join(", ")));
        }
        let mut response = Response::new(axum::body::Body::empty());
        let answer = response.headers_mut();
        let value = |text: &str| HeaderValue::from_str(text).ok();
        if let Some(methods) = value(&self.methods.join(", ")) {
            answer.insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        if let Some(allowed) = value(&self.headers.join(", ")).filter(|_| !self.headers.is_empty()) {
            answer.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        if let Some(max_age) = &self.max_age {
            answer.insert(ACCESS_CONTROL_MAX_AGE, max_age.clone());
        }
        let private = headers.get(REQUEST_PRIVATE_NETWORK).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        if self.private_network && private {
            answer.insert(ALLOW_PRIVATE_NETWORK, HeaderValue::from_static("true"));
        }
        self.decorate(origin, &mut response);
        Some(response)
    }

    /// Adds the CORS headers for `origin` when it is allowed (the origin is echoed, also for `*`,
    /// so that credentials work); removes any when it is not.
    pub fn decorate(&self, origin: &str, response: &mut Response) {
        let headers = response.headers_mut();
        headers.append(VARY, HeaderValue::from_static("Origin"));
        match HeaderValue::from_str(origin).ok().filter(|_| self.allows(origin)) {
            Some(origin) => {
                headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
                if self.credentials {
                    headers.insert(ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
                }
                if let Some(expose) = &self.expose {
                    headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
                }
            }
            None => {
                for name in
                    [ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_EXPOSE_HEADERS]
                {
                    headers.remove(name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsPolicy {
        let cors: Cors = serde_json::from_value(serde_json::json!({
            "enabled": true, "allowOrigin": origins, "allowMethods": methods, "allowHeaders": headers,
            "exposeHeaders": ["X-Total"], "allowCredentials": true, "maxAge": 600
        }))
        .unwrap();
        CorsPolicy::compile(&cors).unwrap()
    }

    fn preflight(policy: &CorsPolicy, origin: &str, method: &str, headers: &str) -> Response {
        let mut map = HeaderMap::new();
        map.insert(ORIGIN, origin.parse().unwrap());
        map.insert(ACCESS_CONTROL_REQUEST_METHOD, method.parse().unwrap());
        map.insert(ACCESS_CONTROL_REQUEST_HEADERS, headers.parse().unwrap());
        policy.preflight(&Method::OPTIONS, &map).expect("a preflight")
    }

    #[test]
    fn preflights_are_checked_like_gravitee() {
        let cors = policy(
            &["https://app.example.com", "https://.*\\.example\\.org", "https://*.example.net"],
            &["GET", "POST"],
            &["content-type"],
        );
        let ok = preflight(&cors, "https://app.example.com", "POST", "Content-Type");
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.com");
        assert_eq!(ok.headers()[ACCESS_CONTROL_ALLOW_METHODS], "GET, POST");
        assert_eq!(ok.headers()[ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(ok.headers()[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(preflight(&cors, "https://shop.example.org", "GET", "").status(), 200, "a pattern");
        assert_eq!(preflight(&cors, "https://a.b.example.net", "GET", "").status(), 200, "a glob");
        assert_eq!(preflight(&cors, "https://xexample.net", "GET", "").status(), 400, "a glob's dot is a dot");
        for (origin, method, headers) in [
            ("https://evil.example.com", "POST", ""),
            ("https://app.example.com", "DELETE", ""),
            ("https://app.example.com", "POST", "x-secret"),
        ] {
            let refused = preflight(&cors, origin, method, headers);
            assert_eq!(refused.status(), 400, "{origin} {method} {headers}");
        }
        let refused = preflight(&cors, "https://evil.example.com", "POST", "");
        assert!(refused.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
        let get = HeaderMap::new();
        assert!(cors.preflight(&Method::GET, &get).is_none());
    }

    #[test]
    fn any_origin_with_credentials_fails_the_load() {
        let cors: Cors = serde_json::from_value(
            serde_json::json!({"enabled": true, "allowOrigin": ["*"], "allowCredentials": true}),
        )
        .unwrap();
        let problem = CorsPolicy::compile(&cors).err().unwrap();
        assert_eq!(problem.path, "allowOrigin[0]");
    }

    #[test]
    fn a_bad_pattern_fails_the_load_with_its_index() {
        let cors: Cors =
            serde_json::from_value(serde_json::json!({"enabled": true, "allowOrigin": ["*", "https://(unclosed"]}))
                .unwrap();
        let problem = CorsPolicy::compile(&cors).err().unwrap();
        assert_eq!(problem.path, "allowOrigin[1]");
    }
}
