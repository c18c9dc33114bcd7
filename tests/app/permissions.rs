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
    let app = spawn_fresh_app().await;
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
