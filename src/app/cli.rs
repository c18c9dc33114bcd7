//! The command line: global options (with their env vars) and the subcommands.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{ConfigError, DEFAULT_LISTEN, Settings};

/// `scanpay sim`'s address when `--listen` is not given.
pub const DEFAULT_SIM_LISTEN: &str = "127.0.0.1:8090";

#[derive(Debug, Parser)]
#[command(
    name = "scanpay",
    version,
    about = "WeChat Pay scan-to-pay checkout for shops"
)]
pub struct Cli {
    /// TOML settings file
    #[arg(long, env = "SCANPAY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Where the database lives
    #[arg(long, env = "SCANPAY_DATA_DIR", global = true, default_value = "data")]
    pub data_dir: PathBuf,
    /// Address to listen on [default: 127.0.0.1:8080, or 127.0.0.1:8090 for `sim`]
    #[arg(long, env = "SCANPAY_LISTEN", global = true)]
    pub listen: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the checkout (the default)
    Serve,
    /// Run only the simulated WeChat Pay gateway and phone
    Sim(SimArgs),
    /// Copy the database to FILE, consistently, while the app runs
    ///
    /// Uses SQLite's online backup: the app keeps serving and writing meanwhile.
    /// The copy is checked, then renamed into place, so FILE is never half written.
    Backup {
        /// Where the copy goes (one self-contained SQLite file)
        file: PathBuf,
        /// Replace FILE if it exists (otherwise an existing FILE is refused)
        #[arg(long)]
        force: bool,
    },
    /// Put the copy FILE in place as the database (stop the app first)
    ///
    /// Checks FILE (integrity, and a schema this version knows), refuses while the
    /// app is running, and keeps the replaced database beside it as
    /// scanpay.sqlite3.before-restore-TIMESTAMP in the data directory.
    Restore {
        /// A copy made by `scanpay backup` (or a daily one from backup.dir)
        file: PathBuf,
    },
    /// Check the configuration, keys and gateway before going live (exit 0: all well, 2: warnings, 1: a failure)
    Check,
    /// Reconcile one day now: download WeChat Pay's bill and hold it against ours
    ///
    /// Exit 0 when everything matches, 3 when there are differences, 1 when the
    /// day cannot be checked (no bill yet, the gateway down). In simulator mode it
    /// asks the simulator of the server running at --listen.
    Reconcile {
        /// The day (Beijing time, as the bill's), YYYY-MM-DD
        #[arg(long)]
        date: jiff::civil::Date,
    },
    /// Manage users
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// `scanpay sim`'s HTTPS: as the real gateway, it can ask refunds for the
/// merchant's certificate.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SimArgs {
    /// Serve HTTPS with this certificate (PEM)
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Refuse a refund without a client certificate signed by this CA (PEM)
    #[arg(long, requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from the first line of stdin
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
    },
    /// List users
    List,
    /// Change a user's password (read from the first line of stdin)
    Passwd { name: String },
    /// Disable a user: they cannot sign in, and their sessions end at once
    Disable { name: String },
    /// Enable a disabled user again
    Enable { name: String },
    /// Give a user another role (their open sessions have it at once)
    Role {
        name: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Cashier,
}

impl From<RoleArg> for crate::values::role::Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => crate::values::role::Role::Admin,
            RoleArg::Cashier => crate::values::role::Role::Cashier,
        }
    }
}

impl Cli {
    /// The settings (file, then `SCANPAY_*` env), with the global options on top.
    pub fn settings(
        &self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, ConfigError> {
        let mut settings = Settings::load(self.config.as_deref(), env)?;
        settings.data_dir = self.data_dir.clone();
        let default = match &self.command {
            Some(Command::Sim(args)) => {
                let sim = &mut settings.sim;
                sim.tls_cert_file = args.tls_cert.clone().or(sim.tls_cert_file.take());
                sim.tls_key_file = args.tls_key.clone().or(sim.tls_key_file.take());
                sim.client_ca_file = args.client_ca.clone().or(sim.client_ca_file.take());
                DEFAULT_SIM_LISTEN
            }
            _ => DEFAULT_LISTEN,
        };
        settings.listen = self.listen.clone().unwrap_or_else(|| default.to_string());
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        Cli::try_parse_from(args).unwrap().settings([]).unwrap()
    }

    #[test]
    fn the_global_options_land_in_the_settings() {
        let s = settings(&[
            "scanpay",
            "--data-dir",
            "/tmp/shop",
            "--listen",
            "0.0.0.0:80",
        ]);
        assert_eq!(s.data_dir, PathBuf::from("/tmp/shop"));
        assert_eq!(s.listen, "0.0.0.0:80");
        let s = settings(&["scanpay", "sim", "--listen", "127.0.0.1:0"]);
        assert_eq!(s.listen, "127.0.0.1:0", "after the subcommand too");
    }

    #[test]
    fn each_command_has_its_default_address() {
        // Only meaningful without SCANPAY_LISTEN in the environment.
        if std::env::var_os("SCANPAY_LISTEN").is_some() {
            return;
        }
        assert_eq!(settings(&["scanpay"]).listen, DEFAULT_LISTEN);
        assert_eq!(settings(&["scanpay", "serve"]).listen, DEFAULT_LISTEN);
        assert_eq!(settings(&["scanpay", "sim"]).listen, DEFAULT_SIM_LISTEN);
    }

    #[test]
    fn the_simulators_tls_flags_land_in_its_settings() {
        let s = settings(&[
            "scanpay",
            "sim",
            "--tls-cert",
            "server.pem",
            "--tls-key",
            "server.key",
            "--client-ca",
            "ca.pem",
        ]);
        assert_eq!(s.sim.tls_cert_file, Some(PathBuf::from("server.pem")));
        assert_eq!(s.sim.tls_key_file, Some(PathBuf::from("server.key")));
        assert_eq!(s.sim.client_ca_file, Some(PathBuf::from("ca.pem")));
        assert!(s.sim.tls_files().unwrap().is_some());
        assert!(
            Cli::try_parse_from(["scanpay", "sim", "--tls-cert", "a.pem"]).is_err(),
            "the key goes with it"
        );
        assert!(
            Cli::try_parse_from(["scanpay", "sim", "--client-ca", "ca.pem"]).is_err(),
            "a CA needs TLS"
        );
        assert!(
            settings(&["scanpay", "sim"])
                .sim
                .tls_files()
                .unwrap()
                .is_none()
        );
    }
}
