//! The checks of files: the database (read-only), and every file holding a
//! secret, its owner and mode.

use super::*;

/// Live mode starts only with a database this binary knows and an admin in it.
/// Read-only: the check never creates nor migrates the database.
pub(super) fn database(data_dir: &Path) -> Outcome {
    let check = "database";
    let add_admin = "create an admin with `scanpay user add NAME --role admin`";
    let shown = data_dir.join(crate::store::DB_FILE);
    let shown = shown.display();
    let (conn, version) = match crate::store::backup::open_read_only(data_dir) {
        Ok(Some(found)) => found,
        Ok(None) => {
            return Outcome::new(
                Status::Fail,
                check,
                format!("no database at {shown} yet: {add_admin}"),
            );
        }
        Err(e) => return Outcome::new(Status::Fail, check, format!("{shown}: {e}")),
    };
    let known = crate::store::migrations::newest();
    if version > known {
        return Outcome::new(
            Status::Fail,
            check,
            format!("{shown} has schema {version}; this scanpay knows up to {known}"),
        );
    }
    match crate::store::users::count_admins(&conn) {
        Ok(0) => Outcome::new(
            Status::Fail,
            check,
            format!("no admin user in {shown}: {add_admin}"),
        ),
        Ok(n) => Outcome::new(
            Status::Pass,
            check,
            format!("{shown}, schema {version}, {n} admin user(s)"),
        ),
        Err(e) => Outcome::new(Status::Fail, check, format!("{shown}: {e}")),
    }
}

/// A file that holds a secret, and which one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub what: &'static str,
    pub path: PathBuf,
}

/// Every file named by the settings that holds a secret. The v2 API key is a
/// setting, so the config file is one when it sets `wxpay.api_key`.
pub fn key_files(settings: &Settings, config_file: Option<&Path>) -> Vec<KeyFile> {
    let mut files = Vec::new();
    if let Some(path) = config_file {
        let table = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok());
        let holds = |key: &str| {
            table
                .as_ref()
                .and_then(|t| t.get("wxpay")?.get(key).map(|_| ()))
                .is_some()
        };
        if holds("api_key") {
            files.push(KeyFile {
                what: "the config file (it holds wxpay.api_key)",
                path: path.to_path_buf(),
            });
        } else if holds("apiv3_key") {
            files.push(KeyFile {
                what: "the config file (it holds wxpay.apiv3_key)",
                path: path.to_path_buf(),
            });
        }
    }
    if settings.wxpay.api == Api::V2
        && let Some(path) = &settings.wxpay.client_key_file
    {
        files.push(KeyFile {
            what: "the merchant's API certificate key (wxpay.client_key_file)",
            path: path.clone(),
        });
    }
    if settings.wxpay.api == Api::V3
        && let Some(path) = &settings.wxpay.private_key_file
    {
        files.push(KeyFile {
            what: "the merchant's API private key (wxpay.private_key_file)",
            path: path.clone(),
        });
    }
    files
}

pub(super) fn key_file(f: &KeyFile) -> Outcome {
    let check = "key file";
    let shown = f.path.display();
    match std::fs::metadata(&f.path) {
        Err(e) => Outcome::new(
            Status::Fail,
            check,
            format!("{shown}, {}: cannot read it: {e}", f.what),
        ),
        Ok(meta) => match exposure(&meta, us()) {
            Some(exposed) => Outcome::new(
                Status::Warn,
                check,
                format!(
                    "{shown}, {}: {exposed} (mode {:o}); `chmod 600 {shown}`, or `chown root:<the service's group> {shown} && chmod 640 {shown}`",
                    f.what,
                    mode_bits(&meta)
                ),
            ),
            None => Outcome::new(
                Status::Pass,
                check,
                format!(
                    "{shown}, {}: readable only by its owner and the service",
                    f.what
                ),
            ),
        },
    }
}

/// Who besides the owner may read or change a key file, if anyone should not.
/// Group read is the deployment's own pattern (`root:scanpay 0640`: root
/// writes, the service reads), so it is fine when someone else owns the file
/// and its group is the one this check runs as (the service's, run as the
/// README says). Anything for others, group write, another group, or group
/// read of a file we own ourselves (a group such as `users` may hold everyone)
/// is not.
#[cfg(unix)]
pub(super) fn exposure(meta: &std::fs::Metadata, us: Identity) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let mode = mode_bits(meta);
    if mode & 0o007 != 0 {
        Some("readable by every user on the machine".into())
    } else if mode & 0o020 != 0 {
        Some(format!("writable by group {}", meta.gid()))
    } else if mode & 0o040 == 0 {
        None
    } else if meta.gid() != us.gid {
        Some(format!(
            "readable by group {}, which is not the group this check runs as ({})",
            meta.gid(),
            us.gid
        ))
    } else if meta.uid() == us.uid {
        Some(format!(
            "readable by group {}: the file is the service's own, so no group needs it",
            meta.gid()
        ))
    } else {
        None
    }
}

#[cfg(not(unix))]
pub(super) fn exposure(_meta: &std::fs::Metadata, _us: Identity) -> Option<String> {
    None
}

#[cfg(unix)]
pub(super) fn mode_bits(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
pub(super) fn mode_bits(_meta: &std::fs::Metadata) -> u32 {
    0
}

/// Who this process runs as: the service, when run as the README says.
#[derive(Debug, Clone, Copy)]
pub(super) struct Identity {
    pub(super) uid: u32,
    pub(super) gid: u32,
}

#[cfg(unix)]
pub(super) fn us() -> Identity {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe {
        Identity {
            uid: libc::geteuid(),
            gid: libc::getegid(),
        }
    }
}

#[cfg(not(unix))]
pub(super) fn us() -> Identity {
    Identity { uid: 0, gid: 0 }
}
