//! `Accept` negotiation for http-get (DESIGN 5.2).

use http::HeaderMap;

/// The body formats http-get renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Xml,
    Text,
}

impl BodyFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            BodyFormat::Json => "application/json",
            BodyFormat::Xml => "application/xml",
            BodyFormat::Text => "text/plain",
        }
    }
}

/// Picks the format by quality (ties keep the client's order). `Err` holds the unsupported values.
pub fn negotiate(headers: &HeaderMap) -> Result<BodyFormat, Vec<String>> {
    let mut ranges: Vec<(String, f32)> = headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|range| !range.is_empty())
        .map(|range| {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
                .next()
                .unwrap_or(1.0);
            (media, quality)
        })
        .collect();
    if ranges.is_empty() {
        return Ok(BodyFormat::Text);
    }
    ranges.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (media, quality) in &ranges {
        if *quality <= 0.0 {
            continue;
        }
        match media.as_str() {
            "application/json" => return Ok(BodyFormat::Json),
            "application/xml" => return Ok(BodyFormat::Xml),
            "text/plain" | "text/*" => return Ok(BodyFormat::Text),
            _ => {}
        }
    }
    if ranges.iter().any(|(media, quality)| *quality > 0.0 && (media == "*/*" || media == "application/*")) {
        return Ok(BodyFormat::Json);
    }
    Err(ranges.into_iter().map(|(media, _)| media).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn accept(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(http::header::ACCEPT, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn gravitee_examples() {
        assert_eq!(negotiate(&accept(&["grpc, application/xml", "application/json"])), Ok(BodyFormat::Xml));
        assert_eq!(negotiate(&accept(&["grpc;q=0.8, */*;q=0.9"])), Ok(BodyFormat::Json));
        assert_eq!(negotiate(&accept(&["grpc;q=0.9,jwt;q=0.8", "text/plain;q=0.1"])), Ok(BodyFormat::Text));
    }

    #[test]
    fn missing_header_is_text_and_unsupported_is_refused() {
        assert_eq!(negotiate(&HeaderMap::new()), Ok(BodyFormat::Text));
        assert_eq!(negotiate(&accept(&["image/png"])), Err(vec!["image/png".to_string()]));
        assert!(negotiate(&accept(&["application/json;q=0", "image/png"])).is_err());
    }

    #[test]
    fn text_wildcard_is_plain_text() {
        assert_eq!(negotiate(&accept(&["text/*"])), Ok(BodyFormat::Text));
    }

    #[test]
    fn quality_beats_order() {
        assert_eq!(negotiate(&accept(&["text/plain;q=0.5, application/json"])), Ok(BodyFormat::Json));
    }
}
