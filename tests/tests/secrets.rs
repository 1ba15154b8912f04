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

/// A request the HTTP layer cannot parse (two hundred headers, a URI too long) is the
/// client's mistake: answered 4xx, never logged at ERROR, so no client can fill the
/// error log or page an operator (QA s23c F3).
async fn unparsable_requests_are_not_errors(t: &TestDb) {
    use std::io::{Read, Write};
    let data = t.dir().join("data");
    let log = t.dir().join("server.log");
    let port = free_port();
    let mut child = std::process::Command::new(server_binary())
        .args(["--database-url", &t.url, "--data-dir"])
        .arg(&data)
        .args([
            "--log",
            "info",
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    for _ in 0..300 {
        if http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let headers: String = (0..200).map(|i| format!("X-H{i}: a\r\n")).collect();
    let long = "a".repeat(70_000);
    for head in [
        format!("GET /api/v1/me HTTP/1.1\r\nHost: x\r\n{headers}\r\n"),
        format!("GET /api/v1/households?q={long} HTTP/1.1\r\nHost: x\r\n\r\n"),
    ] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        s.write_all(head.as_bytes()).unwrap();
        let mut answer = [0u8; 64];
        let n = s.read(&mut answer).unwrap_or(0);
        let status = String::from_utf8_lossy(&answer[..n]).to_string();
        assert!(status.starts_with("HTTP/1.1 4"), "{status}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.lines().any(|l| l.contains("ERROR")), "{logged}");
}
db_test!(
    requests_the_http_layer_cannot_parse_are_not_logged_as_errors,
    unparsable_requests_are_not_errors
);

/// Runs `bangfu-server ARGS… serve` on `data` until it exits or `secs` pass (then it is
/// killed): its exit status (`None`: still serving) and what it wrote on stderr.
fn serve_briefly(
    data: &Path,
    database_url: Option<&str>,
    secs: u64,
) -> (Option<std::process::ExitStatus>, String) {
    let mut cmd = std::process::Command::new(server_binary());
    cmd.env_remove("DATABASE_URL").env_remove("BANGFU_CONFIG");
    if let Some(url) = database_url {
        cmd.args(["--database-url", url]);
    }
    let mut child = cmd
        .arg("--data-dir")
        .arg(data)
        .args(["--log", "warn", "serve", "--bind"])
        .arg(format!("127.0.0.1:{}", free_port()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let mut exited = false;
    while !exited && std::time::Instant::now() < deadline {
        exited = child.try_wait().unwrap().is_some();
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Still serving: stopped here (a kill of a process that has exited does nothing).
    let _ = child.kill();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (exited.then_some(status), err)
}

/// QA s26b F10: a second server started on a data directory another one serves from
/// stops at once, saying so, instead of printing "listening" and then answering
/// "internal error" (and appending to the same photo packs). The directory is free
/// again once the first server is gone, however it ended.
async fn one_server_per_data_directory(t: &TestDb) {
    let data = t.dir().join("data");
    let first = ServerProcess::start(&t.url, &data, free_port()).await;
    let (status, err) = serve_briefly(&data, Some(&t.url), 20);
    let Some(status) = status else {
        panic!("the second server serves as well: {err}")
    };
    assert!(!status.success(), "{err}");
    assert!(
        err.contains("another bangfu-server is already serving from"),
        "{err}"
    );
    let http = reqwest::Client::new();
    let alive = http
        .get(format!("{}/openapi.json", first.base))
        .send()
        .await
        .unwrap();
    assert!(alive.status().is_success(), "the first one still serves");
    // Nor may a server from another data directory serve the same PostgreSQL database:
    // each would keep only the photos sent to it (QA s28a F16).
    if t.url.starts_with("postgres") {
        let (status, err) = serve_briefly(&t.dir().join("elsewhere"), Some(&t.url), 20);
        assert!(
            status.is_some_and(|s| !s.success()),
            "it serves as well: {err}"
        );
        assert!(
            err.contains("another bangfu-server is already serving this database")
                && !err.contains("Custom Error"),
            "{err}"
        );
        // The lock's connection dropped (a PostgreSQL restart): the first server takes
        // the lock again, and a second one is still refused (QA s28b F6).
        use sea_orm::ConnectionTrait;
        let ended =
            t.db.execute_unprepared(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
                 AND objid::bigint = (hashtext('bangfu-server:' || current_database() || '.' \
                 || current_schema())::bigint & 4294967295)",
            )
            .await
            .unwrap();
        assert_eq!(
            ended.rows_affected(),
            1,
            "the lock's connection was found and ended"
        );
        tokio::time::sleep(std::time::Duration::from_secs(13)).await;
        let (status, err) = serve_briefly(&t.dir().join("elsewhere"), Some(&t.url), 20);
        assert!(
            status.is_some_and(|s| !s.success()),
            "it serves as well: {err}"
        );
    }
    first.kill();
    let again = ServerProcess::start(&t.url, &data, free_port()).await;
    again.kill();
}
db_test!(
    a_second_server_on_one_data_directory_is_refused,
    one_server_per_data_directory
);

/// QA s26b F16: `serve` on a data directory holding no database (a first start, or a
/// mistyped `--data-dir`) says it is starting with a new, empty one; on an existing
/// installation it says nothing of the kind.
#[test]
fn serving_a_new_empty_database_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("typo");
    let (status, err) = serve_briefly(&data, None, 3);
    assert_eq!(status, None, "it serves: {err}");
    assert!(
        err.contains("starting with a new, empty one") && err.contains("--data-dir"),
        "{err}"
    );
    let (status, err) = serve_briefly(&data, None, 3);
    assert_eq!(status, None, "it serves: {err}");
    assert!(!err.contains("new, empty"), "{err}");
}

/// QA s28a F12: a command that reads an existing installation, run on a data directory
/// holding no database, names the directory and creates nothing; one that may set up
/// a new installation says it starts an empty one.
#[test]
fn commands_on_a_directory_without_a_database_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("typo");
    let run = |args: &[&str]| bangfu_tests::server_command(&data, args);
    for args in [
        &[
            "report",
            "county",
            "--county",
            "莱州市",
            "--quarter",
            "2026Q3",
        ][..],
        &["enrollment-codes", "--town", "东城镇"],
        &["policy", "show", "--county", "莱州市"],
        &[
            "user",
            "password",
            "--username",
            "county",
            "--password-stdin",
        ],
    ] {
        let (ok, err) = run(args);
        assert!(!ok, "{args:?}");
        assert!(
            err.contains("no database in") && err.contains("--data-dir"),
            "{args:?}: {err}"
        );
        assert!(!data.join("bangfu.db").exists(), "{args:?} created nothing");
    }
    let (ok, err) = run(&["migrate"]);
    assert!(ok, "{err}");
    assert!(err.contains("starting with a new, empty one"), "{err}");
}

/// QA s28a F11: a PostgreSQL that requires TLS (a managed database, `sslmode=require`)
/// is reached over TLS; the build had no TLS and could not use one at all.
#[tokio::test]
async fn a_postgresql_asking_for_tls_is_reached_over_tls() {
    use sea_orm::ConnectionTrait;
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL unset: no PostgreSQL to reach");
        return;
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let db = bangfu_server::db::connect(&format!("{base}{sep}sslmode=require"))
        .await
        .unwrap();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        ))
        .await
        .unwrap()
        .unwrap();
    assert!(
        row.try_get_by_index::<bool>(0).unwrap(),
        "the connection is encrypted"
    );
}

/// QA s28a F11: a database PostgreSQL does not hold is named in PostgreSQL's words,
/// without the line of PostgreSQL's C source the driver appended (`at line 948`).
#[tokio::test]
async fn a_missing_postgresql_database_is_named_without_source_lines() {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL unset: no PostgreSQL to reach");
        return;
    };
    let server = base.rsplit_once('/').map_or(base.as_str(), |(s, _)| s);
    let e = bangfu_server::db::connect(&format!("{server}/bangfu_no_such_database"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("database \"bangfu_no_such_database\" does not exist"),
        "{e}"
    );
    assert!(!e.contains(" at line "), "{e}");
    // A driver error nested in its own kind is said once (QA s28b F7).
    let e = bangfu_server::db::connect(&format!("{base}?sslmode=bogus"))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"bogus\""), "{e}");
    assert_eq!(e.matches("error with configuration").count(), 1, "{e}");
}

/// QA s30c N6: a data directory that is a file is named as such, not "File exists".
#[test]
fn a_data_directory_that_is_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("afile");
    std::fs::write(&data, b"not a directory").unwrap();
    let (ok, err) = bangfu_tests::server_command(&data, &["migrate"]);
    assert!(!ok);
    assert!(
        err.contains("is a file, not a directory") && err.contains("afile"),
        "{err}"
    );
}

/// QA s31c T8: a server is not started on a SQLite file opened read-only: it would
/// start, then fail to record sign-ins (and so to throttle them). `migrate`, which
/// only reads an up-to-date file, still may.
#[test]
fn a_server_on_a_read_only_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("ro.db");
    let rwc = format!("sqlite://{}", file.display());
    let (ok, err) = bangfu_tests::server_command(&data, &["--database-url", &rwc, "migrate"]);
    assert!(ok, "{err}");
    let ro = format!("{rwc}?mode=ro");
    let mut child = std::process::Command::new(bangfu_tests::server_binary())
        .env_remove("DATABASE_URL")
        .env_remove("BANGFU_CONFIG")
        .arg("--data-dir")
        .arg(&data)
        .args(["--database-url", &ro, "serve", "--bind", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server started on a read-only database");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("read-only (mode=ro)"), "{err}");
}
