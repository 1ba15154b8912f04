//! Kill the client in the middle of saving, again and again; the store must open clean:
//! integrity ok, the record chain complete, no half record.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bangfu_client::{Client, DataDir, Limits};
use common::*;

#[test]
fn killing_the_process_mid_save_leaves_a_clean_store() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(login(dir.path(), Limits::default()));
    drop(rt);

    let mut total = 0u64;
    for round in 0..4u64 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bangfu"))
            .args([
                "--data-dir",
                dir.path().to_str().unwrap(),
                "debug-save-loop",
                "--household",
                "2",
                "--count",
                "100000",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it save a varying number of records, then kill it while it is saving the next.
        let target = 5 + round * 7;
        let started = Instant::now();
        let mut seen = 0;
        while seen < target && started.elapsed() < Duration::from_secs(30) {
            match lines.next() {
                Some(Ok(l)) if l.starts_with("saved") => seen += 1,
                Some(_) => {}
                None => break,
            }
        }
        assert_eq!(seen, target, "the child saved records before being killed");
        child.kill().unwrap(); // SIGKILL: no destructor, no checkpoint
        child.wait().unwrap();
        // Saves the child acknowledged that we had not read yet when it was killed.
        let unread = lines
            .by_ref()
            .map_while(Result::ok)
            .filter(|l| l.starts_with("saved"))
            .count() as u64;

        let rt = runtime();
        rt.block_on(async {
            let c = Client::open(DataDir::new(dir.path()), Limits::default())
                .await
                .unwrap();
            let report = c.verify().await.unwrap();
            assert_eq!(report.integrity, "ok");
            assert!(report.problems.is_empty(), "{:?}", report.problems);
            // Every acknowledged record is there, plus at most the one in flight.
            let n = report.records as u64;
            assert!(
                n >= total + seen && n <= total + seen + unread + 1,
                "{n} records; {total} before, {seen} acknowledged, {unread} unread"
            );
            assert_eq!(
                c.visits(None, 1_000_000).await.unwrap().len() as u64,
                n,
                "every record has its visit row"
            );
            total = n;
        });
    }
}
