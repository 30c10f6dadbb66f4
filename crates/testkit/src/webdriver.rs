//! A minimal W3C WebDriver client: just what browser tests need (navigate, find, click, type,
//! read text, run a script, switch windows, wait). One chromedriver process per [`Browser`].

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long `wait_for` and friends poll before giving up.
pub const WAIT: Duration = Duration::from_secs(20);

/// A headless Chromium session driven through its own chromedriver process.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: Child,
    _profile: TempDir,
}

/// An element found on the current page.
#[derive(Clone, Debug)]
pub struct Element {
    id: String,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn binary(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// The time zone the browsers of the tests run in (the product's users are in Germany).
pub const BROWSER_TIME_ZONE: &str = "Europe/Berlin";

impl Browser {
    /// Starts chromedriver (`CHROMEDRIVER`, default `/usr/bin/chromedriver`) and a headless
    /// Chromium (`CHROMIUM`, default `/usr/bin/chromium`) with a fresh profile, preferring
    /// German and in Berlin's time zone like the product's users.
    pub async fn start() -> Result<Browser> {
        Browser::start_with_language("de-DE,de").await
    }

    /// Like [`Browser::start`], with this `Accept-Language`.
    pub async fn start_with_language(accept_language: &str) -> Result<Browser> {
        let driver_bin = binary("CHROMEDRIVER", "/usr/bin/chromedriver");
        let chromium = binary("CHROMIUM", "/usr/bin/chromium");
        for bin in [&driver_bin, &chromium] {
            if !std::path::Path::new(bin).exists() {
                bail!("{bin} is missing: install Debian's chromium and chromium-driver (scripts/test does)");
            }
        }
        let port = crate::free_port();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            // The browser it starts inherits it.
            .env("TZ", BROWSER_TIME_ZONE)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {driver_bin}"))?;
        crate::install_tls();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(resp) = ready {
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                if body["value"]["ready"] == json!(true) {
                    break;
                }
            }
            if started.elapsed() > Duration::from_secs(20) {
                bail!("chromedriver did not become ready on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = std::env::temp_dir().join(format!("wabridge-chromium-{port}-{}", std::process::id()));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "prefs": { "intl.accept_languages": accept_language },
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                    format!("--lang={}", accept_language.split(',').next().unwrap_or("de-DE")),
                ]
            }
        }}});
        let resp: Value = http.post(format!("{base}/session")).json(&caps).send().await?.json().await?;
        let session = resp["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("chromedriver refused the session: {resp}"))?;
        Ok(Browser {
            http,
            base: format!("{base}/session/{session}"),
            _driver: driver,
            _profile: TempDir(profile),
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp: Value = req.send().await?.json().await?;
        if let Some(err) = resp["value"]["error"].as_str() {
            bail!("webdriver {path}: {err}: {}", resp["value"]["message"]);
        }
        Ok(resp["value"].clone())
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Navigates the current window to `url`.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    /// The current window's URL.
    pub async fn current_url(&self) -> Result<String> {
        Ok(self.get("/url").await?.as_str().unwrap_or_default().to_owned())
    }

    /// The current page's HTML source.
    pub async fn source(&self) -> Result<String> {
        Ok(self.get("/source").await?.as_str().unwrap_or_default().to_owned())
    }

    /// The first element matching the CSS selector, now.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let v = self.post("/element", json!({"using": "css selector", "value": css})).await?;
        let id = v[ELEMENT_KEY].as_str().ok_or_else(|| anyhow!("no element for {css}"))?;
        Ok(Element { id: id.to_owned() })
    }

    /// Every element matching the CSS selector, now.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let v = self.post("/elements", json!({"using": "css selector", "value": css})).await?;
        Ok(v.as_array()
            .map(|a| a.iter().filter_map(|e| e[ELEMENT_KEY].as_str()).map(|id| Element { id: id.to_owned() }).collect())
            .unwrap_or_default())
    }

    /// Waits until an element matching the CSS selector exists and returns it.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        let started = Instant::now();
        loop {
            match self.find(css).await {
                Ok(e) => return Ok(e),
                Err(e) if started.elapsed() > WAIT => return Err(e.context(format!("waiting for {css}"))),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Waits until the text of the first element matching `css` contains `needle`; returns the text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> Result<String> {
        let started = Instant::now();
        loop {
            let text = match self.find(css).await {
                Ok(e) => self.text(&e).await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return Ok(text);
            }
            if started.elapsed() > WAIT {
                bail!("{css} never contained {needle:?}; last text: {text:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks the element.
    pub async fn click(&self, e: &Element) -> Result<()> {
        self.post(&format!("/element/{}/click", e.id), json!({})).await.map(drop)
    }

    /// Finds the first element matching `css` (waiting for it) and clicks it.
    pub async fn click_on(&self, css: &str) -> Result<()> {
        let e = self.wait_for(css).await?;
        self.click(&e).await
    }

    /// Types `text` into the element.
    pub async fn send_keys(&self, e: &Element, text: &str) -> Result<()> {
        self.post(&format!("/element/{}/value", e.id), json!({ "text": text })).await.map(drop)
    }

    /// Clears the element's value, then types `text` into the field matching `css`.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let e = self.wait_for(css).await?;
        self.post(&format!("/element/{}/clear", e.id), json!({})).await?;
        self.send_keys(&e, text).await
    }

    /// The element's visible text.
    pub async fn text(&self, e: &Element) -> Result<String> {
        Ok(self.get(&format!("/element/{}/text", e.id)).await?.as_str().unwrap_or_default().to_owned())
    }

    /// An attribute or property of the element (`value`, `href`, …).
    pub async fn attr(&self, e: &Element, name: &str) -> Result<Option<String>> {
        let v = self.get(&format!("/element/{}/property/{name}", e.id)).await?;
        Ok(match v {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }

    /// Runs a synchronous script in the page and returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Handles of every open window and tab.
    pub async fn windows(&self) -> Result<Vec<String>> {
        let v = self.get("/window/handles").await?;
        Ok(v.as_array().map(|a| a.iter().filter_map(|h| h.as_str().map(str::to_owned)).collect()).unwrap_or_default())
    }

    /// The handle of the current window.
    pub async fn window(&self) -> Result<String> {
        Ok(self.get("/window").await?.as_str().unwrap_or_default().to_owned())
    }

    /// Switches to the window or tab with this handle.
    pub async fn switch_to_window(&self, handle: &str) -> Result<()> {
        self.post("/window", json!({ "handle": handle })).await.map(drop)
    }

    /// Waits until a window other than `known` opens and switches to it; returns its handle.
    pub async fn switch_to_new_window(&self, known: &[String]) -> Result<String> {
        let started = Instant::now();
        loop {
            if let Some(h) = self.windows().await?.into_iter().find(|h| !known.contains(h)) {
                self.switch_to_window(&h).await?;
                return Ok(h);
            }
            if started.elapsed() > WAIT {
                bail!("no new window opened");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the session (the driver process is killed when the browser is dropped).
    pub async fn quit(self) -> Result<()> {
        self.call(reqwest::Method::DELETE, "", None).await.map(drop)
    }
}
