//! `scanpay backup` / `restore` and the daily copies: a copy taken while the app
//! takes payments holds every payment committed before it began, restores into a
//! fresh data dir, and restore refuses what it must.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use scanpay::store::DB_FILE;
use scanpay::store::backup::{backup_to, check_copy, restore_from};

use crate::helpers::{TestApp, build_app_on, run_cli, spawn_app, spawn_app_with};

fn payments_in(db: &Path) -> BTreeSet<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut st = conn.prepare("SELECT transaction_id FROM payments").unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn live_payments(app: &TestApp) -> BTreeSet<String> {
    payments_in(&app.data_dir.path().join(DB_FILE))
}

/// Runs the binary off the async threads (the app under test shares them).
async fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    let (dir, args): (PathBuf, Vec<String>) =
        (dir.into(), args.iter().map(|a| a.to_string()).collect());
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&dir, &args, &[], "")
    })
    .await
    .unwrap()
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_during_a_burst_of_payments_restores_with_every_payment_committed_before_it() {
    // One cashier creates a burst no real counter would: lift the per-cashier rate.
    let app = spawn_app_with(|s| s.checkout.max_orders_per_minute = 0).await;
    app.login_as("cashier", "cashier").await;
    let mut tokens = Vec::new();
    for i in 0..24 {
        tokens.push(app.create_order("0.01", &format!("burst {i}")).await);
    }
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("during-the-burst.sqlite3");

    // Four customers at a time, each paying one order after another: payments
    // keep committing before, during and after the backup, a few at a time.
    let shop = &app;
    let burst = join_all(tokens.chunks(6).map(|orders| async move {
        for t in orders {
            shop.scan_and_pay(t).await;
            shop.wait_for_state(t, "paid", Duration::from_secs(30))
                .await;
        }
    }));
    let backup = async {
        // In the middle of the burst: some payments in, more to come.
        let start = Instant::now();
        while live_payments(&app).len() < 4 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no payments arrive"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let before = live_payments(&app);
        let (data, to) = (app.data_dir.path().to_path_buf(), file.clone());
        let info = tokio::task::spawn_blocking(move || backup_to(&data, &to, false))
            .await
            .unwrap()
            .expect("an online backup");
        (before, info)
    };
    let (_, (before, info)) = tokio::join!(burst, backup);
    let live = live_payments(&app);
    assert_eq!(live.len(), tokens.len());
    assert!(
        before.len() < live.len(),
        "the backup began in the middle of the burst"
    );

    let fresh = tempfile::tempdir().unwrap();
    let restored = restore_from(&file, fresh.path()).expect("the copy restores");
    assert!(restored.kept.is_none(), "nothing to keep in a fresh dir");
    let db = fresh.path().join(DB_FILE);
    assert_eq!(check_copy(&db).unwrap().schema_version, info.schema_version);
    let copy = payments_in(&db);
    assert!(
        copy.len() >= before.len(),
        "{} < {}",
        copy.len(),
        before.len()
    );
    assert!(
        before.is_subset(&copy),
        "a payment committed before the backup is missing"
    );
    assert!(
        copy.is_subset(&live),
        "the copy has payments the app never had"
    );
    eprintln!(
        "backup during the burst: {} payments before it began, {} in the copy, {} in all",
        before.len(),
        copy.len(),
        live.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_backs_up_a_running_app_and_restore_refuses_it_a_damaged_copy_and_a_newer_schema() {
    let app = spawn_app().await;
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("copy.sqlite3");
    let file_arg = file.to_str().unwrap();

    let done = cli(app.data_dir.path(), &["backup", file_arg]).await;
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert!(
        text(&done.stdout).contains("integrity ok"),
        "{}",
        text(&done.stdout)
    );
    let again = cli(app.data_dir.path(), &["backup", file_arg]).await;
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("--force"),
        "{}",
        text(&again.stderr)
    );
    let forced = cli(app.data_dir.path(), &["backup", "--force", file_arg]).await;
    assert!(forced.status.success(), "{}", text(&forced.stderr));

    let running = cli(app.data_dir.path(), &["restore", file_arg]).await;
    assert!(!running.status.success());
    assert!(
        text(&running.stderr).contains("scanpay is running"),
        "{}",
        text(&running.stderr)
    );

    let damaged = out.path().join("damaged.sqlite3");
    let mut bytes = std::fs::read(&file).unwrap();
    let half = bytes.len() / 2;
    for (i, b) in bytes[half..].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    std::fs::write(&damaged, bytes).unwrap();
    let newer = out.path().join("newer.sqlite3");
    std::fs::copy(&file, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)",
            [],
        )
        .unwrap();
    let fresh = tempfile::tempdir().unwrap();
    for (copy, says) in [(&damaged, "damaged"), (&newer, "newer scanpay")] {
        let refused = cli(fresh.path(), &["restore", copy.to_str().unwrap()]).await;
        assert!(!refused.status.success(), "{}", copy.display());
        assert!(
            text(&refused.stderr).contains(says),
            "{}",
            text(&refused.stderr)
        );
        assert!(!fresh.path().join(DB_FILE).exists(), "nothing put in place");
    }

    let restored = cli(fresh.path(), &["restore", file_arg]).await;
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    assert!(
        text(&restored.stdout).contains("restored"),
        "{}",
        text(&restored.stdout)
    );
    // Restoring again keeps the one it replaces, and says where.
    let again = cli(fresh.path(), &["restore", file_arg]).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    let said = text(&again.stdout);
    let kept = said
        .split_whitespace()
        .find(|w| w.contains("before-restore-"))
        .unwrap_or_else(|| panic!("where the old database went: {said}"));
    assert!(Path::new(kept).is_file(), "{kept}");
}

#[tokio::test]
async fn daily_backups_write_the_shop_day_and_keep_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    for old in ["scanpay-20200101.sqlite3", "scanpay-20200102.sqlite3"] {
        std::fs::write(dir.path().join(old), "old").unwrap();
    }
    let backups = dir.path().to_path_buf();
    // The test is about the daily backup's loop: it runs in the background.
    let _app = TestApp::builder()
        .background_jobs()
        .settings(move |s| {
            s.backup.dir = Some(backups);
            s.backup.keep = 2;
        })
        .start()
        .await;
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .date();
    let file = dir
        .path()
        .join(format!("scanpay-{}.sqlite3", today.strftime("%Y%m%d")));
    let start = Instant::now();
    let oldest = dir.path().join("scanpay-20200101.sqlite3");
    while !file.exists() || oldest.exists() {
        assert!(start.elapsed() < Duration::from_secs(20), "no daily backup");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check_copy(&file).expect("the daily copy checks out");
    assert!(
        dir.path().join("scanpay-20200102.sqlite3").exists(),
        "keep = 2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_carrying_a_trigger_is_not_restored_and_a_tampered_live_database_does_not_start() {
    let app = spawn_app().await;
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("copy.sqlite3");
    let done = cli(app.data_dir.path(), &["backup", file.to_str().unwrap()]).await;
    assert!(done.status.success(), "{}", text(&done.stderr));
    // The probe's two tampered copies: payments swallowed, orders cheapened.
    let tampers = [
        (
            "swallow",
            "CREATE TRIGGER swallow BEFORE INSERT ON payments BEGIN SELECT RAISE(IGNORE); END",
        ),
        (
            "cheapen",
            "CREATE TRIGGER cheapen AFTER INSERT ON orders BEGIN \
             UPDATE orders SET amount_fen = 1 WHERE id = NEW.id; END",
        ),
    ];
    for (name, sql) in tampers {
        let tampered = out.path().join(format!("{name}.sqlite3"));
        std::fs::copy(&file, &tampered).unwrap();
        rusqlite::Connection::open(&tampered)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let fresh = tempfile::tempdir().unwrap();
        let refused = cli(fresh.path(), &["restore", tampered.to_str().unwrap()]).await;
        assert!(!refused.status.success(), "{name} restored");
        let said = text(&refused.stderr);
        assert!(
            said.contains(&format!("unexpected trigger {name}")),
            "{said}"
        );
        assert!(!fresh.path().join(DB_FILE).exists(), "nothing put in place");
    }

    // The same check at start-up: a clean copy restored starts, the same
    // database with a trigger slipped in does not.
    let fresh = tempfile::tempdir().unwrap();
    let restored = cli(fresh.path(), &["restore", file.to_str().unwrap()]).await;
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    drop(
        build_app_on(fresh.path())
            .await
            .expect("a clean copy starts"),
    );
    rusqlite::Connection::open(fresh.path().join(DB_FILE))
        .unwrap()
        .execute_batch(tampers[0].1)
        .unwrap();
    let err = build_app_on(fresh.path())
        .await
        .err()
        .expect("a tampered database is refused at start-up");
    let said = format!("{err:#}");
    assert!(said.contains("unexpected trigger swallow"), "{said}");
}
