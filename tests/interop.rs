//! Real clients open the datasets: pandas, pyarrow, polars and DuckDB (Python packages in a
//! virtual environment this test creates under the target directory on first use). Asserts row
//! counts agree across readers and with the run, column types, per-column labels from the Arrow
//! metadata, file-level metadata, and a value traced back to its raw source row.
//!
//! Needs python3 with the `venv` module and access to PyPI on the first run; set
//! `TRIALPIPE_PYTHON` to use an existing interpreter that has the four packages instead.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("TRIALPIPE_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-venv");
    let py = venv.join("bin/python");
    let ready = venv.join(".ready");
    if !ready.exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "python3 -m venv failed: install python3 and python3-venv"
        );
        let ok = Command::new(&py)
            .args([
                "-m", "pip", "install", "--quiet", "pandas", "pyarrow", "polars", "duckdb",
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "pip install pandas pyarrow polars duckdb failed (needs PyPI access)"
        );
        std::fs::write(&ready, "").unwrap();
    }
    py
}

#[test]
fn pandas_pyarrow_polars_and_duckdb_read_every_dataset() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop_run");
    let _ = std::fs::remove_dir_all(&out);
    common::run_expecting_warnings(Path::new("pipelines/msc_cirrhosis.toml"), &out);
    let o = Command::new(python())
        .arg("tests/interop/check_parquet.py")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let stage_rows = |stage: &str, key: &str| {
        manifest["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stage"] == stage)
            .unwrap()["rows"][key]
            .as_u64()
            .unwrap()
    };
    for (rel, expect) in [
        ("sdtm/lb.parquet", Some(stage_rows("derive", "lb_rows"))),
        ("adam/adsl.parquet", Some(stage_rows("derive", "adsl_rows"))),
        ("adam/adlb.parquet", Some(stage_rows("derive", "adlb_rows"))),
        (
            "adam/adtte.parquet",
            Some(stage_rows("derive", "adtte_rows")),
        ),
        (
            "ingest/labs.parquet",
            Some(stage_rows("ingest", "labs_rows_read")),
        ),
        (
            "validation/findings.parquet",
            Some(stage_rows("validate", "findings")),
        ),
        (
            "quarantine/rejected.parquet",
            Some(stage_rows("validate", "rows_quarantined")),
        ),
    ] {
        let d = &r[rel];
        let rows = &d["rows"];
        let n = rows["pyarrow"].as_u64().unwrap();
        for reader in ["pandas", "polars", "duckdb"] {
            assert_eq!(rows[reader].as_u64(), Some(n), "{rel}: {reader}");
        }
        if let Some(e) = expect {
            assert_eq!(n, e, "{rel}: rows vs manifest");
        }
        assert!(n > 0, "{rel} is empty");
        // Every column carries a non-empty label.
        for (col, label) in d["labels"].as_object().unwrap() {
            assert!(
                !label.as_str().unwrap().is_empty(),
                "{rel}.{col} has no label"
            );
        }
        let kv: Vec<&str> = d["kv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for k in [
            "ARROW:schema",
            "trialpipe.version",
            "trialpipe.dataset",
            "trialpipe.labels",
            "trialpipe.pipeline_sha256",
        ] {
            assert!(kv.contains(&k), "{rel}: missing metadata {k}");
        }
    }
    let t = &r["adam/adlb.parquet"]["types"];
    assert_eq!(t["AVAL"], "double");
    assert_eq!(t["ADT"], "date32[day]");
    assert_eq!(t["ADY"], "int64");
    assert_eq!(t["ANL01FL"], "large_string");
    assert!(
        t["PARAMCD"]
            .as_str()
            .unwrap()
            .starts_with("dictionary<values=string"),
        "{}",
        t["PARAMCD"]
    );
    assert_eq!(
        r["adam/adlb.parquet"]["labels"]["CHG"],
        "Change from Baseline"
    );
    assert_eq!(r["adam/adlb.parquet"]["dataset"], "ADLB");
    // Units as Arrow field metadata: fixed ones as `unit`, per-row ones by the column holding
    // them (`unit_column`).
    let units = &r["adam/adlb.parquet"]["units"];
    assert_eq!(units["ADY"]["unit"], "days");
    assert_eq!(units["PCHG"]["unit"], "%");
    assert_eq!(units["AVAL"]["unit_column"], "AVALU");
    assert_eq!(units["CHG"]["unit_column"], "AVALU");
    assert_eq!(r["adam/adtte.parquet"]["units"]["AVAL"]["unit"], "days");
    assert_eq!(r["adam/adsl.parquet"]["units"]["AGE"]["unit"], "years");
    assert_eq!(
        r["sdtm/lb.parquet"]["units"]["LBSTRESN"]["unit_column"],
        "LBSTRESU"
    );
    assert!(units.get("PARAMCD").is_none());
    assert_eq!(r["adam/adsl.parquet"]["types"]["RANDDT"], "date32[day]");
    assert_eq!(r["adam/adtte.parquet"]["types"]["CNSR"], "int64");

    // The probe value agrees across readers and with its raw source row.
    let p = &r["probe"];
    let aval = p["aval_pandas"].as_f64().unwrap();
    assert_eq!(p["aval_duckdb"].as_f64(), Some(aval));
    assert_eq!(p["aval_polars"].as_f64(), Some(aval));
    assert_eq!(p["pandas_paramcd_dtype"], "category");
    let raw = std::fs::read_to_string(p["srcfile"].as_str().unwrap()).unwrap();
    let line = raw
        .lines()
        .nth(p["srcline"].as_u64().unwrap() as usize - 1)
        .unwrap();
    let fields: Vec<&str> = line.split([',', ';']).collect();
    assert_eq!(fields[5], p["paramcd"].as_str().unwrap(), "{line}");
    assert_eq!(fields[4], p["adt"].as_str().unwrap(), "{line}");
    let raw_value: f64 = fields[7].replace(',', ".").parse().unwrap();
    // The first ADLB row's test is in its standard unit at its site when the unit matches.
    if fields[8] == "g/L" || fields[8] == "U/L" || fields[8] == "s" {
        assert!((raw_value - aval).abs() < 1e-9, "{line} vs {aval}");
    }
}

/// `[output] partition_adlb = true`: ADLB as Hive partitions by PARAMCD, which pyarrow, polars
/// and DuckDB read back as one dataset with the same rows as the single file, PARAMCD restored
/// from the directory names; reruns are byte-identical.
#[test]
fn partitioned_adlb_reads_back_as_one_dataset() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop_partitioned");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("pipelines")).unwrap();
    let text = std::fs::read_to_string("pipelines/msc_cirrhosis.toml").unwrap();
    assert!(text.contains("\n[output]\n"));
    let text = text
        .replace("\n[output]\n", "\n[output]\npartition_adlb = true\n")
        .replace("../sample_data/", "../../../../sample_data/");
    // Inputs stay where they are: point the copy at the repository's sample data.
    let here = std::fs::canonicalize("sample_data").unwrap();
    let text = text.replace("../../../../sample_data", here.to_str().unwrap());
    std::fs::write(root.join("pipelines/p.toml"), text).unwrap();
    let run = |out: &str| {
        common::run_expecting_warnings(&root.join("pipelines/p.toml"), &root.join(out));
        std::fs::canonicalize(root.join(out)).unwrap()
    };
    let a = run("out_a");
    let b = run("out_b");
    assert!(!a.join("adam/adlb.parquet").exists());
    let parts: Vec<PathBuf> = std::fs::read_dir(a.join("adam/adlb"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(parts.len() >= 11, "{parts:?}");
    for p in &parts {
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("PARAMCD="), "{name}");
        let f = p.join("00000000.parquet");
        assert_eq!(
            std::fs::read(&f).unwrap(),
            std::fs::read(b.join("adam/adlb").join(name).join("00000000.parquet")).unwrap(),
            "{name}: reruns differ"
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("manifest.json")).unwrap()).unwrap();
    let adlb_rows = manifest["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stage"] == "derive")
        .unwrap()["rows"]["adlb_rows"]
        .as_u64()
        .unwrap();
    let script = r#"
import sys, json
import pyarrow.dataset as ds, polars as pl, duckdb
d = sys.argv[1]
t = ds.dataset(d, format="parquet", partitioning="hive").to_table()
p = pl.scan_parquet(d + "/**/*.parquet", hive_partitioning=True).collect()
n = duckdb.connect().execute(f"SELECT count(*), count(DISTINCT PARAMCD) FROM read_parquet('{d}/*/*.parquet', hive_partitioning=true)").fetchone()
print(json.dumps({
  "pyarrow": t.num_rows, "polars": p.height, "duckdb": n[0], "duckdb_params": n[1],
  "params": sorted(set(t.column("PARAMCD").to_pylist())),
  "label": (t.schema.field("AVAL").metadata or {}).get(b"label", b"").decode(),
}))
"#;
    let o = Command::new(python())
        .args(["-c", script])
        .arg(a.join("adam/adlb"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for reader in ["pyarrow", "polars", "duckdb"] {
        assert_eq!(r[reader].as_u64(), Some(adlb_rows), "{reader}");
    }
    assert_eq!(r["duckdb_params"].as_u64(), Some(parts.len() as u64));
    assert!(r["params"].as_array().unwrap().iter().any(|v| v == "ALB"));
    assert_eq!(r["label"], "Analysis Value");
}
