//! Runs that cron can trust: one run per output directory (lock, stale locks do not block),
//! idempotent reruns that do nothing when nothing changed, `--force`, and reruns when an input
//! changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn trialpipe(args: &[&str], out: &Path, pipeline: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .args(args)
        .arg(pipeline)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run trialpipe")
}

/// A private copy of the flagship pipeline and its sample data, so inputs can be changed.
fn workspace(name: &str) -> (PathBuf, PathBuf) {
    let pipeline = common::flagship_copy(name, |t| t);
    let out = pipeline.parent().unwrap().parent().unwrap().join("out");
    (pipeline, out)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn unchanged_inputs_do_nothing_force_reruns_and_a_changed_input_reruns() {
    let (pipeline, out) = workspace("ops_idempotent");
    let first = trialpipe(&["run"], &out, &pipeline);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let manifest = std::fs::read(out.join("manifest.json")).unwrap();

    let again = trialpipe(&["run"], &out, &pipeline);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("nothing to do"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read(out.join("manifest.json")).unwrap(),
        manifest,
        "manifest untouched"
    );

    let forced = trialpipe(&["run", "--force"], &out, &pipeline);
    assert_eq!(forced.status.code(), Some(1), "{}", stderr(&forced));
    assert!(stderr(&forced).contains("validation: "));

    // A changed site file triggers a run.
    let labs = pipeline
        .parent()
        .unwrap()
        .join("../sample_data/msc_cirrhosis/labs_site02.csv");
    let mut text = std::fs::read_to_string(&labs).unwrap();
    text.push_str("MSC-LC,02,02-001,UNSCHEDULED,2019-09-01,ALB,Albumin,31.5,g/L,35,50\n");
    std::fs::write(&labs, text).unwrap();
    let changed = trialpipe(&["run"], &out, &pipeline);
    assert_eq!(changed.status.code(), Some(1), "{}", stderr(&changed));
    assert!(
        stderr(&changed).contains("validation: "),
        "{}",
        stderr(&changed)
    );

    // A damaged output is not "up to date".
    std::fs::write(out.join("adam/adlb.parquet"), b"damaged").unwrap();
    let repaired = trialpipe(&["run"], &out, &pipeline);
    assert_eq!(repaired.status.code(), Some(1), "{}", stderr(&repaired));
    assert_ne!(
        std::fs::read(out.join("adam/adlb.parquet")).unwrap(),
        b"damaged"
    );
}

#[test]
fn a_second_run_on_the_same_directory_exits_5_naming_the_holder() {
    let (pipeline, out) = workspace("ops_lock");
    let held = trialpipe::run::lock(&out).expect("take the lock");
    let o = trialpipe(&["run"], &out, &pipeline);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let msg = stderr(&o);
    assert!(
        msg.contains("another trialpipe run holds this output directory (pid ")
            && msg.contains(&format!("pid {} since ", std::process::id())),
        "{msg}"
    );
    // The stage subcommands respect the lock too.
    let o = trialpipe(&["validate"], &out, &pipeline);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    drop(held);
    let o = trialpipe(&["run"], &out, &pipeline);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

#[test]
fn a_stale_lock_file_from_a_killed_run_does_not_block() {
    let (pipeline, out) = workspace("ops_stale");
    std::fs::create_dir_all(&out).unwrap();
    // What a killed run leaves: the lock file with its note, but no process holding the lock.
    std::fs::write(
        out.join(".trialpipe.lock"),
        "pid 999999 since 2026-01-01T00:00:00Z\n",
    )
    .unwrap();
    let o = trialpipe(&["run"], &out, &pipeline);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

/// Every output the published manifest lists is there with its SHA-256: one run's set, whole.
fn published_set_is_consistent(out: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(out.join("manifest.json")) else {
        return false;
    };
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["outputs"].as_array().unwrap().iter().all(|o| {
        let p = out.join(o["path"].as_str().unwrap());
        trialpipe::store::file_record(&p).is_ok_and(|r| o["sha256"] == r.sha256.as_str())
    })
}

#[test]
fn a_run_killed_at_any_point_leaves_the_previous_outputs_and_the_next_run_completes() {
    let (pipeline, out) = workspace("ops_kill");
    let first = trialpipe(&["run"], &out, &pipeline);
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    let good = std::fs::read(out.join("manifest.json")).unwrap();
    for delay_ms in [5, 30, 80, 150, 300, 600, 1000] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
            .args(["--quiet", "run", "--force"])
            .arg(&pipeline)
            .arg("--out")
            .arg(&out)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert!(
            published_set_is_consistent(&out),
            "after a kill at {delay_ms} ms the published outputs are not one run's set"
        );
        if !status.success() && status.code().is_none() {
            // Killed before publishing: the previous manifest is still the one published.
            let now = std::fs::read(out.join("manifest.json")).unwrap();
            assert!(now == good || published_set_is_consistent(&out));
        }
    }
    let last = trialpipe(&["run", "--force"], &out, &pipeline);
    assert_eq!(last.status.code(), Some(1), "{}", stderr(&last));
    assert!(published_set_is_consistent(&out));
    // Killed runs leave no staging directories behind once a run publishes: at most the current
    // run and the one it replaced remain.
    let runs = out.parent().unwrap().join(format!(
        ".{}.runs",
        out.file_name().unwrap().to_string_lossy()
    ));
    assert!(std::fs::read_dir(runs).unwrap().count() <= 2);
}

/// Progress bars per large lab file on an interactive terminal (a pseudo-terminal made by
/// `script`), and none at all when stderr is not a terminal or `CI` is set.
#[test]
fn progress_bars_only_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to make a pseudo-terminal");
        return;
    }
    let (pipeline, out) = workspace("ops_progress");
    let data = pipeline
        .parent()
        .unwrap()
        .join("../sample_data/msc_cirrhosis");
    // Enough subjects for a site file above the 8 MiB a bar needs.
    let sim = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .args(["--quiet", "simulate"])
        .arg(&pipeline)
        .args(["--subjects", "9000", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(sim.status.success(), "{}", stderr(&sim));
    assert!(
        std::fs::metadata(data.join("labs_site01.csv"))
            .unwrap()
            .len()
            > 8 << 20
    );

    let plain = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .arg("ingest")
        .arg(&pipeline)
        .arg("--out")
        .arg(&out)
        .env_remove("CI")
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(0), "{}", stderr(&plain));
    assert!(
        !stderr(&plain).contains("labs_site01.csv ["),
        "{}",
        stderr(&plain)
    );
    assert!(!stderr(&plain).contains('\r'));

    let cmd = format!(
        "{} ingest {} --out {}",
        env!("CARGO_BIN_EXE_trialpipe"),
        pipeline.display(),
        out.display()
    );
    let tty = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_remove("CI")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&tty.stdout).into_owned();
    assert_eq!(tty.status.code(), Some(0), "{shown}");
    assert!(shown.contains("labs_site01.csv ["), "{shown}");

    let ci = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("CI", "true")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&ci.stdout).into_owned();
    assert_eq!(ci.status.code(), Some(0), "{shown}");
    assert!(!shown.contains("labs_site01.csv ["), "{shown}");
}
