//! The providers: an HTTP JSON service (URL template, headers with secrets
//! from the environment, JSON pointers for score, name and category) or a
//! local CSV file (`number,score,name,category`), answering one number.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::config::types::ProviderConfig;
use crate::policy::reputation::RepAnswer;

/// The most of a provider's answer read (a reputation answer is small).
const MAX_BODY: usize = 64 * 1024;

pub(crate) enum Source {
    Http(Http),
    File(HashMap<String, RepAnswer>),
}

pub(crate) struct Http {
    client: reqwest::Client,
    url: String,
    headers: Vec<(String, String)>,
    score: Option<String>,
    name: Option<String>,
    category: Option<String>,
    score_max: f64,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("request failed: {0}")]
    Request(String),
    #[error("answer over {MAX_BODY} bytes")]
    TooLarge,
    #[error("malformed JSON: {0}")]
    Json(String),
}

/// `${VAR}` in `s` replaced from the environment; the names not set.
fn expand_env(s: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(s.len());
    let mut missing = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) => {
                let var = &after[..j];
                match std::env::var(var) {
                    Ok(v) => out.push_str(&v),
                    Err(_) => missing.push(var.to_string()),
                }
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    (out, missing)
}

impl Source {
    /// Builds a provider's source; `base` resolves a relative `file:`.
    /// (The TLS provider must be installed before: `source::install_tls_provider`.)
    pub(crate) fn build(p: &ProviderConfig, base: &Path) -> Result<Source, String> {
        if let Some(file) = &p.file {
            let path = base.join(file);
            return read_csv(&path)
                .map(Source::File)
                .map_err(|e| format!("{}: {e}", path.display()));
        }
        let url = p.url.clone().ok_or("no url: or file:")?;
        let mut headers = Vec::new();
        for (k, v) in &p.headers {
            let (v, missing) = expand_env(v);
            if !missing.is_empty() {
                return Err(format!(
                    "header {k}: environment variable(s) not set: {}",
                    missing.join(", ")
                ));
            }
            headers.push((k.clone(), v));
        }
        let client = reqwest::Client::builder()
            .timeout(p.timeout)
            .connect_timeout(p.timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Source::Http(Http {
            client,
            url,
            headers,
            score: p.score.clone(),
            name: p.caller_name.clone(),
            category: p.category.clone(),
            score_max: p.score_max,
        }))
    }

    /// A file's answer, at once (`None` for an HTTP source).
    pub(crate) fn local(&self, e164: &str) -> Option<Option<RepAnswer>> {
        match self {
            Source::File(map) => Some(
                map.get(e164)
                    .or_else(|| map.get(e164.trim_start_matches('+')))
                    .cloned(),
            ),
            Source::Http(_) => None,
        }
    }

    /// Asks the provider; `Ok(None)`: it does not know the number.
    pub(crate) async fn fetch(&self, e164: &str) -> Result<Option<RepAnswer>, FetchError> {
        match self {
            Source::File(_) => Ok(self.local(e164).flatten()),
            Source::Http(h) => h.fetch(e164).await,
        }
    }
}

impl Http {
    async fn fetch(&self, e164: &str) -> Result<Option<RepAnswer>, FetchError> {
        let digits = e164.trim_start_matches('+');
        let url = self
            .url
            .replace("{e164}", &e164.replace('+', "%2B"))
            .replace("{number}", digits);
        let mut req = self.client.get(url).header("accept", "application/json");
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| FetchError::Request(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        if status == 404 {
            return Ok(None);
        }
        if !(200..300).contains(&status) {
            return Err(FetchError::Status(status));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Request(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| FetchError::Json(e.to_string()))?;
        Ok(self.extract(&v))
    }

    fn extract(&self, v: &serde_json::Value) -> Option<RepAnswer> {
        let at = |p: &Option<String>| p.as_deref().and_then(|p| v.pointer(p));
        let score = at(&self.score).and_then(|s| match s {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        });
        let text = |x: Option<&serde_json::Value>| {
            x.and_then(serde_json::Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(128).collect::<String>())
        };
        let a = RepAnswer {
            score: score.and_then(|s| normalise(s, self.score_max)),
            name: text(at(&self.name)).map(Into::into),
            category: text(at(&self.category)).map(|c| c.to_lowercase().into()),
        };
        (!a.is_empty()).then_some(a)
    }
}

/// A provider's score on its scale as 0–100.
fn normalise(raw: f64, max: f64) -> Option<u8> {
    if !raw.is_finite() || max <= 0.0 {
        return None;
    }
    Some((raw / max * 100.0).round().clamp(0.0, 100.0) as u8)
}

/// Reads a CSV of `number,score,name,category` (a header row is skipped).
fn read_csv(path: &Path) -> Result<HashMap<String, RepAnswer>, String> {
    const MAX_FILE: u64 = 256 * 1024 * 1024;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_FILE {
        return Err(format!("over {MAX_FILE} bytes"));
    }
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| e.to_string())?;
    let mut map = HashMap::new();
    for (i, rec) in rd.records().enumerate() {
        let rec = rec.map_err(|e| format!("line {}: {e}", i + 1))?;
        let number = rec.get(0).unwrap_or("");
        if number.is_empty() || number.starts_with('#') || (i == 0 && number == "number") {
            continue;
        }
        let field = |n: usize| rec.get(n).filter(|s| !s.is_empty());
        let score = match field(1) {
            Some(s) => Some(
                s.parse::<f64>()
                    .ok()
                    .and_then(|s| normalise(s, 100.0))
                    .ok_or_else(|| format!("line {}: score {s:?} is not a number", i + 1))?,
            ),
            None => None,
        };
        map.insert(
            number.to_string(),
            RepAnswer {
                score,
                name: field(2).map(Into::into),
                category: field(3).map(|c| c.to_lowercase().into()),
            },
        );
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_expansion_and_normalising() {
        let (s, missing) = expand_env("Bearer ${CALLGUARD_TEST_NO_SUCH_VAR} x");
        assert_eq!(s, "Bearer  x");
        assert_eq!(missing, vec!["CALLGUARD_TEST_NO_SUCH_VAR"]);
        assert_eq!(expand_env("plain ${unterminated").0, "plain ${unterminated");
        assert_eq!(normalise(4.5, 5.0), Some(90));
        assert_eq!(normalise(700.0, 100.0), Some(100));
        assert_eq!(normalise(f64::NAN, 100.0), None);
    }

    #[test]
    fn pointers_pick_score_name_and_category() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let h = Http {
            client: reqwest::Client::builder().build().unwrap(),
            url: String::new(),
            headers: Vec::new(),
            score: Some("/data/risk".into()),
            name: Some("/data/cnam".into()),
            category: Some("/data/type".into()),
            score_max: 10.0,
        };
        let v =
            serde_json::json!({"data": {"risk": "9", "cnam": " SPAM LIKELY ", "type": "Fraud"}});
        let a = h.extract(&v).unwrap();
        assert_eq!(a.score, Some(90));
        assert_eq!(a.name.as_deref(), Some("SPAM LIKELY"));
        assert_eq!(a.category.as_deref(), Some("fraud"));
        assert!(h.extract(&serde_json::json!({"data": {}})).is_none());
    }
}
