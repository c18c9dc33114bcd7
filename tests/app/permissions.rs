//! Issue 14 item 8: the data directory and the database are private to the
//! service user (0700 and 0600), whatever the umask.

use std::os::unix::fs::PermissionsExt;

use crate::helpers::*;
use scanpay::store::DB_FILE;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_new_data_directory_and_its_database_are_private() {
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = root.path().join("shop").join("data");
    let out = run_cli(
        &dir,
        &["user", "add", "li", "--role", "admin"],
        &[],
        "a long password\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&root.path().join("shop")), 0o700);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_running_database_and_its_journal_are_private() {
    let app = TestApp::builder().fresh_database().start().await;
    app.login_as("cashier", "cashier").await;
    app.create_order("1.00", "").await;
    let db = app.data_dir.path().join(DB_FILE);
    assert_eq!(mode(&db), 0o600);
    for suffix in ["-wal", "-shm"] {
        let f = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if f.exists() {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_and_what_a_restore_puts_in_place_are_private() {
    let app = spawn_app().await;
    app.login_as("cashier", "cashier").await;
    app.create_order("1.00", "").await;
    let out = tempfile::tempdir().unwrap();
    std::fs::set_permissions(out.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = out.path().join("new").join("copy.sqlite3");
    let (dir, file) = (app.data_dir.path().to_path_buf(), copy.clone());
    let backup = tokio::task::spawn_blocking(move || {
        run_cli(&dir, &["backup", file.to_str().unwrap()], &[], "")
    })
    .await
    .unwrap();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert_eq!(mode(&copy), 0o600, "the copy holds password hashes");
    assert_eq!(mode(&out.path().join("new")), 0o700);
    drop(app);

    // A copy that was made readable to all still goes back in private.
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let target = out.path().join("restored-data");
    let restore = run_cli(&target, &["restore", copy.to_str().unwrap()], &[], "");
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert_eq!(mode(&target), 0o700);
    assert_eq!(mode(&target.join(DB_FILE)), 0o600);
}
