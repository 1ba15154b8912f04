//! What the server keeps on disk is its user's alone: the data directory (the SQLite
//! database, the households' photos and signatures) is made mode 0700 when the real
//! binary starts, whether it creates the directory or finds one that an earlier version
//! left open to every local account. Runs on SQLite and, with TEST_DATABASE_URL, on
//! PostgreSQL.

#![cfg(unix)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is the failure report")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use bangfu_server::db_test;
use bangfu_tests::{ServerProcess, TestDb, free_port, server_binary};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A data directory made world-readable (0755, as `mkdir` under the usual umask makes
/// it) is tightened when `serve` starts, and the file store inside it is private too.
async fn serve_tightens_the_data_directory(t: &TestDb) {
    let data = t.dir().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = ServerProcess::start(&t.url, &data, free_port()).await;
    assert_eq!(mode(&data), 0o700, "the data directory");
    for sub in [
        "files",
        "files/uploads",
        "files/blobs",
        "files/blobs/00",
        "files/packs",
    ] {
        assert_eq!(mode(&data.join(sub)), 0o700, "{sub}");
    }
    server.kill();
}
db_test!(
    serving_makes_the_data_directory_private,
    serve_tightens_the_data_directory
);

/// With the embedded database, any command creates the data directory (and the SQLite
/// file in it) private, and tightens one it finds open.
#[test]
fn the_embedded_database_lives_in_a_private_directory() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh");
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
    for data in [&fresh, &open] {
        let out = std::process::Command::new(server_binary())
            .env_remove("DATABASE_URL")
            .env_remove("BANGFU_CONFIG")
            .arg("--data-dir")
            .arg(data)
            .args(["--log", "warn", "migrate"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(data.join("bangfu.db").exists(), "{}", data.display());
        assert_eq!(mode(data), 0o700, "{}", data.display());
    }
}
