//! tus-js-client, the tus project's own client, pinned in `tests/tus-js` and driven by
//! `tests/tus-js/upload.cjs`: shared here because more than one test file checks that a
//! stock tus client gets along with the server.
//!
//! Needs Node.js (18 or later) and npm: when `tests/tus-js/node_modules` is missing, the
//! first upload runs `npm ci` there (`.ci/run` does it beforehand).

use serde_json::Value;
use std::path::{Path, PathBuf};

/// `tests/tus-js`, with its modules installed (`npm ci`, once per test process).
pub fn tus_js() -> &'static Path {
    static READY: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    let ready = READY.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tus-js");
        if dir.join("node_modules/tus-js-client/package.json").exists() {
            return Ok(dir);
        }
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("npm (Node.js) is needed for this test: {e}"))?;
        if out.status.success() {
            Ok(dir)
        } else {
            Err(format!(
                "npm ci in {} failed: {}",
                dir.display(),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    match ready {
        Ok(dir) => dir,
        Err(e) => panic!("{e}"),
    }
}

/// Runs one upload with tus-js-client (see `upload.cjs` for `args`) and returns what the
/// client reported: `{"ok":true,"url":…,"retries":n}` or `{"ok":false,"status":…}`.
/// A client still running after two minutes is killed and the test fails (tus-js-client
/// has no timeout of its own: a server that never answers would hang it).
pub async fn tus_js_upload(args: Value) -> Value {
    use std::process::{Command, Stdio};
    let dir = tus_js();
    let run = move || {
        let mut child = Command::new("node")
            .arg(dir.join("upload.cjs"))
            .arg(args.to_string())
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut killed = false;
        while child.try_wait()?.is_none() {
            if std::time::Instant::now() > deadline {
                child.kill()?;
                killed = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.wait_with_output().map(|out| (out, killed))
    };
    let (out, killed) = tokio::task::spawn_blocking(run)
        .await
        .expect("the client runner")
        .expect("node (Node.js 18 or later) is needed for this test");
    assert!(
        !killed,
        "tus-js-client was still running after 120 s: killed"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "tus-js-client said nothing readable ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
