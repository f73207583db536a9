//! The few W3C WebDriver commands the console's tests send to chromedriver (new session,
//! navigate, find, click, clear, type, text, window rect, execute, screenshot, delete
//! session), as JSON over loopback HTTP with the test suite's reqwest: what `fantoccini` did
//! for these tests, without its 30 crates in Cargo.lock (issue 27). Every request is bounded
//! by the client's timeout; a WebDriver error comes back as `Err` with its `error` and
//! `message`.
#![allow(dead_code)]

use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C WebDriver names an element reference with.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One WebDriver session.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
}

/// An element of the page, by its WebDriver reference.
#[derive(Clone)]
pub struct Element {
    client: Client,
    id: String,
}

/// The `value` of a WebDriver answer, or its error.
async fn answer(r: Result<reqwest::Response, reqwest::Error>) -> Result<Value, String> {
    let r = r.map_err(|e| e.to_string())?;
    let status = r.status();
    let body: Value = r.json().await.map_err(|e| e.to_string())?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        Ok(value)
    } else {
        Err(format!(
            "{status}: {} {}",
            value["error"].as_str().unwrap_or("?"),
            value["message"].as_str().unwrap_or("")
        ))
    }
}

impl Client {
    /// Opens a session on the WebDriver server at `base` with these capabilities.
    pub async fn connect(
        http: reqwest::Client,
        base: &str,
        capabilities: Value,
    ) -> Result<Client, String> {
        let body = json!({ "capabilities": { "alwaysMatch": capabilities } });
        let v = answer(
            http.post(format!("{base}/session"))
                .json(&body)
                .send()
                .await,
        )
        .await?;
        let id = v["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no sessionId in {v}"))?;
        Ok(Client {
            http,
            session: format!("{base}/session/{id}"),
        })
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.session);
        answer(self.http.post(url).json(&body).send().await).await
    }

    async fn get(&self, path: &str) -> Result<Value, String> {
        answer(
            self.http
                .get(format!("{}{path}", self.session))
                .send()
                .await,
        )
        .await
    }

    /// Ends the session (chromedriver closes Chromium).
    pub async fn close(self) -> Result<(), String> {
        answer(self.http.delete(&self.session).send().await)
            .await
            .map(drop)
    }

    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    fn element(&self, v: &Value) -> Result<Element, String> {
        let id = v[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| format!("not an element: {v}"))?;
        Ok(Element {
            client: self.clone(),
            id: id.to_string(),
        })
    }

    /// The first element matching the CSS selector (an error when there is none yet).
    pub async fn find(&self, css: &str) -> Result<Element, String> {
        let v = self
            .post("/element", json!({ "using": "css selector", "value": css }))
            .await?;
        self.element(&v)
    }

    /// The window's outer width and height.
    pub async fn get_window_size(&self) -> Result<(u64, u64), String> {
        let v = self.get("/window/rect").await?;
        Ok((
            v["width"].as_u64().unwrap_or(0),
            v["height"].as_u64().unwrap_or(0),
        ))
    }

    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<(), String> {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await
            .map(drop)
    }

    /// Runs `script` in the page; its return value.
    pub async fn execute(&self, script: &str) -> Result<Value, String> {
        self.post("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>, String> {
        let v = self.get("/screenshot").await?;
        let b64 = v.as_str().ok_or_else(|| format!("no image in {v}"))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| e.to_string())
    }
}

impl Element {
    fn path(&self, command: &str) -> String {
        format!("/element/{}/{command}", self.id)
    }

    pub async fn text(&self) -> Result<String, String> {
        let v = self.client.get(&self.path("text")).await?;
        Ok(v.as_str().unwrap_or_default().to_string())
    }

    pub async fn click(&self) -> Result<(), String> {
        self.client
            .post(&self.path("click"), json!({}))
            .await
            .map(drop)
    }

    pub async fn clear(&self) -> Result<(), String> {
        self.client
            .post(&self.path("clear"), json!({}))
            .await
            .map(drop)
    }

    /// Types `text` into the element (for a file input: the file's path).
    pub async fn send_keys(&self, text: &str) -> Result<(), String> {
        self.client
            .post(&self.path("value"), json!({ "text": text }))
            .await
            .map(drop)
    }

    /// Chooses the `<option>` of this `<select>` whose value is `value`, by clicking it.
    pub async fn select_by_value(&self, value: &str) -> Result<(), String> {
        let css = format!("option[value=\"{}\"]", value.replace('"', "\\\""));
        let v = self
            .client
            .post(
                &self.path("element"),
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        self.client.element(&v)?.click().await
    }
}
