//! Assembly: build every shared piece once, bind, and run until stopped.

use std::net::{SocketAddr, TcpListener};

use actix_web::{App, HttpServer, dev::Server, middleware, web};
use anyhow::Context;

use crate::config::Settings;
use crate::sim::{SimConfig, Simulator};

/// Largest request body accepted anywhere.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `scanpay sim`: the simulated gateway alone, at the root of its address.
pub struct SimApp {
    server: Server,
    addr: SocketAddr,
    simulator: Simulator,
}

impl SimApp {
    pub fn build(settings: &Settings, listen: &str) -> anyhow::Result<Self> {
        let simulator = Simulator::new(SimConfig::from_settings(settings)?)
            .context("cannot build the simulator's HTTP client")?;
        let listener =
            TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let sim = simulator.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(middleware::NormalizePath::new(
                    middleware::TrailingSlash::MergeOnly,
                ))
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .app_data(web::FormConfig::default().limit(MAX_BODY_BYTES))
                .configure(|cfg| sim.configure(cfg))
        })
        .listen(listener)?
        .workers(2)
        .shutdown_timeout(5)
        .run();
        Ok(SimApp {
            server,
            addr,
            simulator,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
