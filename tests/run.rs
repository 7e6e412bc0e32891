//! `trialpipe run` on the committed messy sample data: outputs, manifest, row accounting, and
//! byte-identical reruns.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

fn run_into(name: &str) -> (i32, PathBuf, String) {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&out);
    let o = Command::new(env!("CARGO_BIN_EXE_trialpipe"))
        .args(["run", "pipelines/msc_cirrhosis.toml", "--out"])
        .arg(&out)
        .output()
        .expect("run trialpipe");
    (
        o.status.code().unwrap_or(-1),
        out,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn sha(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn run_writes_outputs_and_an_honest_manifest() {
    let (code, out, stderr) = run_into("run_manifest");
    // The sample data is messy on purpose: warnings, errors under the 5% threshold → exit 1.
    assert_eq!(code, 1, "{stderr}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["tool"], "trialpipe");
    assert_eq!(m["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(m["study_id"], "MSC-LC");
    assert_eq!(m["exit_status"], 1);
    assert_eq!(
        m["pipeline"]["sha256"].as_str().unwrap(),
        sha(Path::new("pipelines/msc_cirrhosis.toml"))
    );
    let inputs = m["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 6); // subjects, three lab transfers, events, assessments
    for i in inputs {
        let p = Path::new(i["path"].as_str().unwrap());
        assert!(p.starts_with("sample_data/msc_cirrhosis"), "{p:?}");
        assert_eq!(i["sha256"].as_str().unwrap(), sha(p), "{p:?}");
        assert_eq!(
            i["bytes"].as_u64().unwrap(),
            std::fs::metadata(p).unwrap().len()
        );
    }
    let outputs: Vec<&str> = m["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let rel = o["path"].as_str().unwrap();
            assert_eq!(o["sha256"].as_str().unwrap(), sha(&out.join(rel)), "{rel}");
            rel
        })
        .collect();
    let figures = outputs
        .iter()
        .filter(|p| p.starts_with("report/figures/"))
        .count();
    assert!(figures >= 4, "report figures: {figures}");
    let outputs: Vec<&str> = outputs
        .into_iter()
        .filter(|p| !p.starts_with("report/figures/"))
        .collect();
    assert_eq!(
        outputs,
        vec![
            "ingest/labs.parquet",
            "ingest/subjects.parquet",
            "ingest/events.parquet",
            "validation/findings.parquet",
            "quarantine/rejected.parquet",
            "validation/eligibility.parquet",
            "validation/summary.json",
            "sdtm/lb.parquet",
            "adam/adsl.parquet",
            "adam/adlb.parquet",
            "adam/adtte.parquet",
            "adam/adrs.parquet",
            "results/comparisons.parquet",
            "results/comparisons.csv",
            "results/descriptive.parquet",
            "results/descriptive.csv",
            "report/index.html",
            "report/summary.md"
        ]
    );
    // Row accounting: for every file, rows read = accepted + quarantined, and rows read is the
    // number of data lines in the file (the simulator writes no embedded line breaks).
    let files = m["files"].as_array().unwrap();
    // subjects, three lab files, events, assessments.
    assert_eq!(files.len(), 6);
    let mut quarantined = 0;
    for f in files {
        let read = f["rows_read"].as_u64().unwrap();
        let acc = f["rows_accepted"].as_u64().unwrap();
        let q = f["rows_quarantined"].as_u64().unwrap();
        assert_eq!(read, acc + q, "{f}");
        let bytes = std::fs::read(f["file"].as_str().unwrap()).unwrap();
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(read, lines - 1, "{f}");
        quarantined += q;
    }
    assert!(
        quarantined > 0,
        "the messy sample must quarantine something"
    );
    let stages: Vec<&str> = m["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        vec!["ingest", "validate", "derive", "analyze", "report"]
    );
    assert!(stderr.contains("validation: "), "{stderr}");
}

#[test]
fn reruns_are_byte_identical_except_the_manifest_times() {
    let (_, a, _) = run_into("run_repro_a");
    let (_, b, _) = run_into("run_repro_b");
    for rel in [
        "sdtm/lb.parquet",
        "adam/adlb.parquet",
        "ingest/labs.parquet",
        "ingest/subjects.parquet",
        "ingest/events.parquet",
        "validation/findings.parquet",
        "quarantine/rejected.parquet",
        "validation/summary.json",
    ] {
        assert_eq!(sha(&a.join(rel)), sha(&b.join(rel)), "{rel}");
    }
}

#[cfg(unix)]
#[test]
fn outputs_are_not_world_readable() {
    use std::os::unix::fs::PermissionsExt;
    let (_, out, _) = run_into("run_perms");
    for rel in [
        "manifest.json",
        "ingest/labs.parquet",
        "validation/summary.json",
    ] {
        let mode = std::fs::metadata(out.join(rel))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o007, 0, "{rel} mode {mode:o}");
    }
}

#[test]
fn private_columns_never_reach_outputs() {
    let (_, out, _) = run_into("run_private");
    let raw = std::fs::read_to_string("sample_data/msc_cirrhosis/subjects.csv").unwrap();
    let header: Vec<&str> = raw.lines().next().unwrap().split(',').collect();
    let bi = header.iter().position(|h| *h == "birth_date").unwrap();
    let ii = header.iter().position(|h| *h == "initials").unwrap();
    let secrets: Vec<String> = raw
        .lines()
        .skip(1)
        .flat_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            [f[bi].to_string(), format!(",{},", f[ii])]
        })
        .collect();
    for rel in [
        "ingest/subjects.parquet",
        "ingest/labs.parquet",
        "quarantine/rejected.parquet",
        "validation/findings.parquet",
    ] {
        let cols = trialpipe::store::read_parquet_text(&out.join(rel)).unwrap();
        for c in cols.iter().filter(|c| c.name == "RAWROW") {
            // The quarantine's full source rows leave the private columns out.
            for v in c.values.iter().flatten() {
                assert!(
                    !v.contains("\"birth_date\"") && !v.contains("\"initials\""),
                    "{rel}.RAWROW: {v}"
                );
                let row: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(v).unwrap();
                for x in row.values() {
                    let x = x.as_str().unwrap();
                    assert!(
                        !secrets.iter().any(|s| s.trim_matches(',') == x),
                        "{rel}.RAWROW: identifier `{x}` leaked in {v}"
                    );
                }
            }
        }
        for c in &cols {
            assert!(
                !["birth_date", "initials", "BRTHDT"].contains(&c.name.as_str()),
                "{rel}: {}",
                c.name
            );
            for v in c.values.iter().flatten() {
                assert!(
                    !secrets.iter().any(|s| s.trim_matches(',') == v),
                    "{rel}.{}: identifier `{v}` leaked",
                    c.name
                );
            }
        }
    }
}

#[test]
fn quarantine_keeps_the_full_source_row() {
    let (_, out, _) = run_into("run_rawrow");
    let cols: std::collections::BTreeMap<String, Vec<Option<String>>> =
        trialpipe::store::read_parquet_text(&out.join("quarantine/rejected.parquet"))
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.values))
            .collect();
    // Site 01 writes plain comma-separated UTF-8 (with a BOM) without quoted fields, site 03
    // semicolon-separated Latin-1 with CRLF line ends (its rows are read again without decoding
    // the whole file): their lines split on the delimiter are the rows as read.
    let utf8 = std::fs::read_to_string("sample_data/msc_cirrhosis/labs_site01.csv").unwrap();
    let latin1: String = std::fs::read("sample_data/msc_cirrhosis/labs_site03.csv")
        .unwrap()
        .into_iter()
        .map(char::from)
        .collect();
    assert!(latin1.contains('\u{b5}'), "site 03 has Latin-1 text");
    for (site, text, delimiter) in [
        ("labs_site01.csv", utf8.trim_start_matches('\u{feff}'), ','),
        ("labs_site03.csv", latin1.as_str(), ';'),
    ] {
        let lines: Vec<&str> = text.lines().collect();
        let header: Vec<&str> = lines[0].split(delimiter).map(str::trim).collect();
        let mut checked = 0;
        for (k, file) in cols["SRCFILE"].iter().enumerate() {
            if !file.as_deref().unwrap().ends_with(site) {
                continue;
            }
            let line: usize = cols["SRCLINE"][k].as_deref().unwrap().parse().unwrap();
            let raw = cols["RAWROW"][k]
                .as_deref()
                .expect("a quarantined row has its raw row");
            // A JSON object with the header's names in the header's order.
            let want: Vec<String> = header
                .iter()
                .zip(lines[line - 1].split(delimiter))
                .map(|(h, v)| {
                    format!(
                        "{}: {}",
                        serde_json::to_string(h).unwrap(),
                        serde_json::to_string(v.trim()).unwrap()
                    )
                })
                .collect();
            assert_eq!(
                raw,
                format!("{{{}}}", want.join(", ")),
                "{site} line {line}"
            );
            checked += 1;
        }
        assert!(checked >= 5, "only {checked} quarantined rows of {site}");
    }
}
