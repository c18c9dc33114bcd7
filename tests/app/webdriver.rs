//! A minimal W3C WebDriver client (the few commands the browser tests need),
//! speaking JSON to `chromedriver` with the reqwest the tests already use.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on a free port, killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why the browser tests cannot run here (no Chromium), or `None`.
pub fn missing_browser() -> Option<String> {
    for bin in ["chromedriver", "chromium"] {
        let found = Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Some(format!(
                "`{bin}` is not installed (Debian: apt-get install chromium chromium-driver)"
            ));
        }
    }
    None
}

impl Driver {
    pub async fn start() -> Driver {
        let port = crate::helpers::free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        loop {
            let ready = reqwest::get(format!("{url}/status"))
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver { child, url }
    }

    /// A new headless Chromium window of `width`×`height` CSS pixels.
    pub async fn session(&self, width: u32, height: u32) -> Session {
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            // The console, where Chromium reports every Content-Security-Policy violation.
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={width},{height}"),
                ]
            }
        }}});
        let http = reqwest::Client::new();
        let v: Value = http
            .post(format!("{}/session", self.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("new session: {v}"))
            .to_string();
        let s = Session {
            http,
            base: format!("{}/session/{id}", self.url),
            _profile: profile,
        };
        // Make the viewport (not the window) the requested size: what the page sees.
        let (w, h): (i64, i64) = {
            let v = s.script("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]", json!([])).await;
            (v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0))
        };
        s.cmd(
            "POST",
            "/window/rect",
            json!({"width": width as i64 + w, "height": height as i64 + h}),
        )
        .await;
        s.watch_csp().await;
        s
    }
}

pub struct Session {
    http: reqwest::Client,
    base: String,
    _profile: tempfile::TempDir,
}

impl Session {
    async fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("webdriver {method} {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url })).await;
    }

    pub async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("find {css}: {v}"))
            .to_string()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd(
            "POST",
            &format!("/element/{el}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd("POST", &format!("/element/{el}/click"), json!({}))
            .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.cmd("GET", &format!("/element/{el}/text"), json!({}))
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub async fn current_url(&self) -> String {
        let v = self.cmd("GET", "/url", json!({})).await;
        v.as_str().unwrap_or_else(|| panic!("url: {v}")).to_string()
    }

    pub async fn script(&self, js: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", json!({"script": js, "args": args}))
            .await
    }

    /// Waits until `js` (an expression) is truthy in the page.
    pub async fn wait_until(&self, what: &str, js: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.script(&format!("return !!({js})"), json!([])).await == json!(true) {
                return start.elapsed();
            }
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.cmd("GET", "/screenshot", json!({})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Runs `js` in every document this session opens from now on, before the
    /// page's own scripts (e.g. a stub of a browser API the test reads back).
    pub async fn on_new_document(&self, js: &str) {
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": js}}),
        )
        .await;
    }

    /// Records every `securitypolicyviolation` of every page this session
    /// opens, from before the page's own first byte runs (a script added to
    /// each new document over the DevTools protocol), in `sessionStorage`.
    async fn watch_csp(&self) {
        let js = "document.addEventListener('securitypolicyviolation', function (e) {
            var seen = JSON.parse(sessionStorage.getItem('cspViolations') || '[]');
            seen.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' at ' + location.pathname);
            sessionStorage.setItem('cspViolations', JSON.stringify(seen));
        });";
        self.cmd(
            "POST",
            "/goog/cdp/execute",
            json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": js}}),
        )
        .await;
    }

    /// The Content-Security-Policy violations seen so far: those the page's
    /// listener recorded (this origin) and those in the browser's console
    /// (every page since the last call: the console log is read once).
    pub async fn csp_violations(&self) -> Vec<String> {
        let recorded = self
            .script(
                "return JSON.parse(sessionStorage.getItem('cspViolations') || '[]')",
                json!([]),
            )
            .await;
        let mut found: Vec<String> = recorded
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        let log = self
            .cmd("POST", "/se/log", json!({"type": "browser"}))
            .await;
        found.extend(
            log.as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["message"].as_str())
                .filter(|m| m.contains("Content Security Policy"))
                .map(String::from),
        );
        found
    }

    pub async fn quit(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}
