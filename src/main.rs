use std::process::ExitCode;

use clap::Parser;

use scanpay::cli::{Cli, Command};
use scanpay::config::Settings;
use scanpay::startup::SimApp;

fn main() -> ExitCode {
    let cli = Cli::parse();
    scanpay::telemetry::init();
    let settings = match Settings::load(cli.config.as_deref(), std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scanpay: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("scanpay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Sim) => run_sim(&settings, &cli.listen_or("127.0.0.1:8090")).await,
            _ => anyhow::bail!("`scanpay serve` is not available yet: run `scanpay sim`"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scanpay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_sim(settings: &Settings, listen: &str) -> anyhow::Result<()> {
    let app = SimApp::build(settings, listen)?;
    let url = format!("http://{}/", app.addr());
    println!(
        "scanpay sim: WeChat Pay gateway  {url}  (merchant {})",
        app.simulator().merchant().mch_id
    );
    println!("scanpay sim: customer's phone    {url}");
    app.run_until_stopped().await?;
    Ok(())
}
