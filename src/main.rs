use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use scanpay::app::cli::{Cli, Command, UserCommand};
use scanpay::app::{Application, SimApp};
use scanpay::checkout::accounts;
use scanpay::config::Settings;
use scanpay::store::Store;
use scanpay::store::{backup, users};
use scanpay::values::role::Role;

fn main() -> ExitCode {
    return_big_blocks_to_the_os();
    let cli = Cli::parse();
    scanpay::app::telemetry::init();
    let settings = match cli.settings(std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("scanpay: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        Some(Command::User { command }) => run_user(&settings, command),
        Some(Command::Backup { file, force }) => run_backup(&settings, file, *force),
        Some(Command::Restore { file }) => run_restore(&settings, file),
        Some(Command::Check) => {
            return with_runtime_code(scanpay::app::check::run(&settings, cli.config.as_deref()));
        }
        Some(Command::Reconcile { date }) => {
            return with_runtime_code(reconcile(settings, *date));
        }
        Some(Command::Sim(_)) => with_runtime(run_sim(settings)),
        Some(Command::Serve) | None => with_runtime(run_serve(settings)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scanpay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Each argon2 password check allocates 19 MiB. glibc raises its mmap threshold
/// to the largest block freed, so from the second login on such blocks come
/// from per-thread arenas and stay resident: RSS grew by 19 MiB for every
/// blocking thread that ever checked a password (280 MB after 16 logins).
/// A fixed threshold keeps every block of 1 MiB or more a private mapping that
/// goes back to the OS when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_big_blocks_to_the_os() {
    // SAFETY: mallopt only tunes the allocator; it runs first thing in main,
    // before any other thread exists, and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_big_blocks_to_the_os() {}

fn with_runtime(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(f)
}

async fn run_serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    for line in app.banner() {
        println!("{line}");
    }
    app.run_until_stopped().await
}

async fn run_sim(settings: Settings) -> anyhow::Result<()> {
    let app = SimApp::build(settings)?;
    for line in app.banner() {
        println!("{line}");
    }
    app.run_until_stopped().await
}

fn with_runtime_code(f: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("scanpay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `scanpay reconcile`: one summary line; exit 0 matched, 3 differences, 1 not checked.
async fn reconcile(settings: Settings, day: jiff::civil::Date) -> ExitCode {
    match scanpay::app::reconcile(settings, day).await {
        Ok(outcome) => {
            println!("{}", scanpay::app::summary_line(&outcome, day));
            ExitCode::from(scanpay::app::exit_code(&outcome))
        }
        Err(e) => {
            eprintln!("scanpay: reconcile {day}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_backup(settings: &Settings, file: &Path, force: bool) -> anyhow::Result<()> {
    let copy = backup::backup_to(&settings.data_dir, file, force)?;
    println!(
        "backed up {} to {} ({} bytes, schema {}, integrity ok)",
        settings.data_dir.join(scanpay::store::DB_FILE).display(),
        file.display(),
        copy.bytes,
        copy.schema_version
    );
    Ok(())
}

fn run_restore(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    let done = backup::restore_from(file, &settings.data_dir)?;
    println!(
        "checked {} (schema {}, integrity ok) and restored it as {}",
        file.display(),
        done.copy.schema_version,
        settings.data_dir.join(scanpay::store::DB_FILE).display()
    );
    match done.kept {
        Some(old) => println!("the replaced database is kept as {}", old.display()),
        None => println!("there was no database before"),
    }
    Ok(())
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\r', '\n']).to_string();
    if pw.is_empty() {
        anyhow::bail!(
            "no password: write it on the first line of stdin, e.g. `echo 'pass' | scanpay user add NAME --role cashier`"
        );
    }
    Ok(pw)
}

fn run_user(settings: &Settings, command: &UserCommand) -> anyhow::Result<()> {
    // Adding the first admin is how a live install begins (README, step 3),
    // so `user add` may create the database, and says so; every other user
    // command needs one already there (a mistyped --data-dir is an error).
    let store = if matches!(command, UserCommand::Add { .. }) {
        let db = settings.data_dir.join(scanpay::store::DB_FILE);
        let fresh = !db.exists();
        let store = Store::open(&settings.data_dir)?;
        if fresh {
            eprintln!("created a new database at {}", db.display());
        }
        store
    } else {
        Store::open_existing(&settings.data_dir)?
    };
    match command {
        UserCommand::Add { name, role } => {
            let role = Role::from(*role);
            accounts::add_user(
                &store,
                name,
                &read_password()?,
                role,
                accounts::MIN_PASSWORD,
            )?;
            println!("added {name} ({})", role.as_str());
        }
        UserCommand::List => {
            for u in store.read_blocking(users::list_users)? {
                let disabled = if u.disabled { "\tdisabled" } else { "" };
                println!("{}\t{}{disabled}", u.username, u.role.as_str());
            }
        }
        UserCommand::Passwd { name } => {
            accounts::set_password(&store, name, &read_password()?)?;
            println!("password changed for {name}; their sessions were ended");
        }
        UserCommand::Disable { name } => {
            accounts::set_disabled(&store, name, true)?;
            println!("disabled {name}; their sessions were ended");
        }
        UserCommand::Enable { name } => {
            accounts::set_disabled(&store, name, false)?;
            println!("enabled {name}");
        }
        UserCommand::Role { name, role } => {
            let role = Role::from(*role);
            accounts::set_role(&store, name, role)?;
            println!("{name} is now {}", role.as_str());
        }
    }
    Ok(())
}
