//! The simulated gateway alone (`scanpay sim`) and a notify_url that records.

use super::*;

/// `scanpay sim` (the simulated gateway alone) in this process, on a random port.
pub struct TestSim {
    /// Ends in `/`: `{url}pay/unifiedorder`, the phone at `{url}`.
    pub url: String,
    /// What the gateway saw: its ledger of orders, as it received them.
    pub simulator: scanpay::sim::Simulator,
    pub(crate) stop: CancellationToken,
}

pub async fn spawn_sim() -> TestSim {
    spawn_sim_with(|_| {}).await
}

pub async fn spawn_sim_with(tweak: impl FnOnce(&mut Settings)) -> TestSim {
    capture_logs();
    let settings = settings(env(FAST_ENV), "127.0.0.1:0", tweak);
    let sim = SimApp::build(settings).expect("the simulator builds");
    let url = format!("http://{}/", sim.addr());
    let simulator = sim.simulator().clone();
    let stop = serve_until_cancelled("the simulator", |shutdown| sim.run_until(shutdown));
    TestSim {
        url,
        simulator,
        stop,
    }
}

impl TestSim {
    pub async fn pay(&self, code_url: &str) -> u16 {
        pay_on(&self.url, code_url).await
    }

    pub async fn set_faults(&self, faults: &str) {
        set_faults_on(&self.url, faults).await;
    }
}

impl Drop for TestSim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The customer pays `code_url` on the phone of the simulator at `sim` (a URL
/// ending in `/`); returns the HTTP status.
pub async fn pay_on(sim: &str, code_url: &str) -> u16 {
    http()
        .post(format!("{sim}pay"))
        .form(&[("code_url", code_url)])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Sets the faults of the simulator at `sim` (`""` clears them).
pub async fn set_faults_on(sim: &str, faults: &str) {
    let resp = http()
        .post(format!("{sim}faults"))
        .body(faults.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

pub fn client(base_url: &str, sign_type: SignType) -> WxPayClient {
    WxPayClient::new(base_url, demo_merchant(sign_type), Duration::from_secs(10)).unwrap()
}

pub(crate) type Received = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// A notify_url endpoint that records every body and answers FAIL to the first
/// `fail_first` deliveries, SUCCESS afterwards.
pub struct NotifySink {
    pub url: String,
    pub received: Received,
    pub(crate) handle: actix_web::dev::ServerHandle,
}

impl NotifySink {
    pub async fn start(fail_first: usize) -> NotifySink {
        let received: Received = Arc::default();
        let r = received.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let r = r.clone();
            App::new().route(
                "/wxpay/notify",
                web::post().to(move |body: web::Bytes| {
                    let r = r.clone();
                    async move {
                        let n = {
                            let mut v = r.lock().unwrap();
                            v.push((Instant::now(), body.to_vec()));
                            v.len()
                        };
                        let answer = if n <= fail_first {
                            scanpay::wxpay::v2::notify::ack_fail("not yet")
                        } else {
                            scanpay::wxpay::v2::notify::ack_success()
                        };
                        HttpResponse::Ok().content_type("text/xml").body(answer)
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        NotifySink {
            url: format!("http://127.0.0.1:{port}/wxpay/notify"),
            received,
            handle,
        }
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn bodies(&self) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Waits until at least `n` deliveries arrived (or panics after `timeout`).
    pub async fn wait_for(&self, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.count() < n {
            assert!(
                start.elapsed() < timeout,
                "expected {n} notifications, got {}",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for NotifySink {
    fn drop(&mut self) {
        // Sends the stop at once; the server task ends with the test's runtime anyway.
        drop(self.handle.stop(false));
    }
}
