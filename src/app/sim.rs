//! `scanpay sim`: the simulated gateway alone, and the rule that a simulator
//! stays on loopback unless asked.

use std::future::Future;
use std::net::SocketAddr;

use actix_web::dev::Server;
use anyhow::Context;

use super::bind;
use super::http::{HttpLimits, http_server, serve_until, shutdown_signal};
use crate::config::Settings;
use crate::sim::Simulator;

/// `scanpay sim`: the simulated gateway alone, at the root of its address.
pub struct SimApp {
    server: Server,
    addr: SocketAddr,
    simulator: Simulator,
    /// Served over TLS (`--tls-cert`).
    https: bool,
}

impl SimApp {
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        let simulator = simulator(&settings)?;
        let listener = bind(&settings.listen)?;
        let addr = listener.local_addr()?;
        simulator_stays_local(&settings, addr)?;
        let sim = simulator.clone();
        let proxies = settings.http.trusted_proxies()?;
        let limits = HttpLimits::new(&settings);
        let tls = settings.sim.tls_files()?;
        let tls_config = match &tls {
            Some(files) => {
                if files.client_ca.is_some() {
                    simulator.require_client_certificates();
                }
                Some(crate::sim::tls::server_config(files)?)
            }
            None => None,
        };
        let server = http_server(listener, tls_config, proxies, limits, move |cfg| {
            sim.configure(cfg)
        })?;
        Ok(SimApp {
            server,
            addr,
            simulator,
            https: tls.is_some(),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn simulator(&self) -> &Simulator {
        &self.simulator
    }

    pub fn banner(&self) -> Vec<String> {
        let scheme = if self.https { "https" } else { "http" };
        let url = format!("{scheme}://{}/", self.addr);
        vec![
            format!(
                "scanpay sim: WeChat Pay gateway  {url}  (merchant {})",
                self.simulator.merchant().mch_id
            ),
            format!(
                "scanpay sim: WeChat Pay API v3   {url}v3/  (mchid {}, keys at {url}v3/sim-keys)",
                self.simulator.v3().merchant().mchid
            ),
            format!("scanpay sim: customer's phone    {url}"),
        ]
    }

    /// Serves until Ctrl-C / SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `shutdown` completes (tests: when the test is over).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        serve_until(self.server, shutdown).await
    }
}

pub(super) fn simulator(settings: &Settings) -> anyhow::Result<Simulator> {
    Simulator::new(settings.sim_config()?).context("cannot build the simulator")
}

/// A simulator pays any order without money: on an address other machines can
/// reach it must be asked for (`sim.allow_network`).
pub(super) fn simulator_stays_local(settings: &Settings, addr: SocketAddr) -> anyhow::Result<()> {
    if addr.ip().is_loopback() || settings.sim.allow_network {
        return Ok(());
    }
    anyhow::bail!(
        "the simulator would listen on {addr}, where anyone who reaches it can mark orders paid \
         without money; listen on 127.0.0.1 (--listen 127.0.0.1:PORT), or set sim.allow_network = true \
         (SCANPAY_SIM_ALLOW_NETWORK=true) for a demo on a network you trust"
    )
}
