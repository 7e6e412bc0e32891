//! The report stage on the flagship pipeline and the committed sample data, built through the
//! public library API (load, ingest, validate, derive, analyze, render):
//!
//! * a snapshot of the HTML with the volatile values (run time, tool version) redacted, compared
//!   with `tests/snapshots/report_index.html`; `UPDATE_SNAPSHOTS=1` rewrites the snapshot;
//! * determinism: two renders give identical bytes;
//! * structure: every section with its heading, every figure inlined, no network references, no
//!   scripts, no external CSS, HTML autoescaping of pipeline text;
//! * headless Chromium: a screenshot that is not blank, every section and every `<svg>` in the
//!   parsed DOM, and no console messages. Chromium is required: without it the test fails with an
//!   install hint (`apt-get install -y chromium`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use trialpipe::analyze::AnalyzeOutput;
use trialpipe::derive::Derived;
use trialpipe::ingest::IngestOutput;
use trialpipe::report::{self, Report, ReportInput};
use trialpipe::spec::LoadedPipeline;
use trialpipe::store::{self, FileRecord};
use trialpipe::validate::ValidationOutput;

const PIPELINE: &str = "pipelines/msc_cirrhosis.toml";
const RUN_STARTED: &str = "2026-01-02T03:04:05Z";
/// Sections every report has; `skipped` is there exactly when an analysis was not run.
const SECTIONS: &[&str] = &[
    "header",
    "disposition",
    "data-quality",
    "parameters",
    "responders",
    "survival",
    "forest",
];

fn sections(b: &Built) -> Vec<&'static str> {
    let mut s = SECTIONS.to_vec();
    if !b.analysis.skipped.is_empty() {
        s.push("skipped");
    }
    s
}

struct Built {
    lp: LoadedPipeline,
    data: IngestOutput,
    validation: ValidationOutput,
    derived: Derived,
    analysis: AnalyzeOutput,
    pipeline_sha256: String,
    inputs: Vec<FileRecord>,
}

fn build_from(lp: LoadedPipeline) -> Built {
    let data = trialpipe::ingest::ingest(&lp).expect("ingest");
    let validation = trialpipe::validate::validate(&lp, &data);
    let derived = trialpipe::derive::derive(
        &lp,
        &trialpipe::derive::DeriveInput {
            data: &data,
            validation: &validation,
            assessments: &data.assessments.index,
        },
    );
    let analysis = trialpipe::analyze::analyze(&lp, &derived);
    let pipeline_sha256 = store::file_record(&lp.path).expect("hash").sha256;
    let inputs = lp
        .input_files()
        .iter()
        .map(|p| store::file_record(p).expect("hash"))
        .collect();
    Built {
        lp,
        data,
        validation,
        derived,
        analysis,
        pipeline_sha256,
        inputs,
    }
}

fn built() -> &'static Built {
    static B: OnceLock<Built> = OnceLock::new();
    B.get_or_init(|| build_from(LoadedPipeline::load(Path::new(PIPELINE)).expect("load")))
}

fn render(b: &Built) -> Report {
    report::render(&ReportInput {
        lp: &b.lp,
        data: &b.data,
        validation: &b.validation,
        derived: &b.derived,
        analysis: &b.analysis,
        pipeline_sha256: &b.pipeline_sha256,
        inputs: &b.inputs,
        run_started: RUN_STARTED,
    })
    .expect("render")
}

fn report() -> &'static Report {
    static R: OnceLock<Report> = OnceLock::new();
    R.get_or_init(|| render(built()))
}

/// Replace the text of every `<span data-volatile="NAME">…</span>` by `[NAME]`.
fn redact(html: &str) -> String {
    const KEY: &str = "data-volatile=\"";
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(i) = rest.find(KEY) {
        let after = &rest[i + KEY.len()..];
        let name = &after[..after.find('"').expect("closing quote")];
        let gt = after.find('>').expect("end of tag");
        let lt = gt + after[gt..].find('<').expect("closing tag");
        out.push_str(&rest[..i + KEY.len()]);
        out.push_str(&after[..=gt]);
        out.push('[');
        out.push_str(name);
        out.push(']');
        rest = &after[lt..];
    }
    out.push_str(rest);
    out
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn html_matches_snapshot_and_render_is_deterministic() {
    let a = report();
    let b = render(built());
    assert!(a.html == b.html, "two renders of the same inputs differ");
    assert_eq!(a.summary_md, b.summary_md);
    assert_eq!(a.figures, b.figures);

    let redacted = redact(&a.html);
    assert!(!redacted.contains(RUN_STARTED), "run time not redacted");
    assert!(redacted.contains(r#"data-volatile="version">[version]<"#));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/report_index.html");
    if std::env::var("UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &redacted).unwrap();
        println!("snapshot rewritten: {}", path.display());
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_SNAPSHOTS=1 cargo test --test report",
            path.display()
        )
    });
    if want != redacted {
        let actual = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_index.actual.html");
        std::fs::write(&actual, &redacted).unwrap();
        let (line, (w, g)) = want
            .lines()
            .zip(redacted.lines())
            .enumerate()
            .find(|(_, (w, g))| w != g)
            .map(|(i, p)| (i + 1, p))
            .unwrap_or((
                want.lines().count().min(redacted.lines().count()) + 1,
                ("<end>", "<end>"),
            ));
        panic!(
            "the report differs from {} at line {line}:\n  snapshot: {w}\n  rendered: {g}\n\
             rendered page: {}\nIf the change is intended: UPDATE_SNAPSHOTS=1 cargo test --test report",
            path.display(),
            actual.display()
        );
    }
}

#[test]
fn sections_figures_and_no_external_references() {
    let r = report();
    let html = &r.html;
    assert_eq!(
        html.contains("<section id=\"skipped\">"),
        !built().analysis.skipped.is_empty()
    );
    for s in sections(built()) {
        let open = format!("<section id=\"{s}\">");
        let at = html
            .find(&open)
            .unwrap_or_else(|| panic!("section {s} missing"));
        let body = &html[at..at + html[at..].find("</section>").expect("section closes")];
        assert!(body.contains("<h2"), "section {s} has no <h2>");
    }
    let names: Vec<&str> = r.figures.iter().map(|f| f.0.as_str()).collect();
    for want in [
        "mean_chg_ALT.svg",
        "spaghetti_ALT.svg",
        "mean_chg_SODIUM.svg",
        "km_OS.svg",
        "km_TFS.svg",
        "forest.svg",
    ] {
        assert!(names.contains(&want), "figure {want} missing: {names:?}");
    }
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(unique.len(), names.len(), "figure names repeat");
    for (name, svg) in &r.figures {
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        assert!(
            svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#),
            "{name}"
        );
        assert!(
            html.contains(&format!("data-file=\"{name}\"")),
            "{name} not inlined"
        );
        let inline = svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1);
        assert!(html.contains(&inline), "{name}: inline SVG differs");
    }
    assert_eq!(html.matches("<svg").count(), r.figures.len());
    let lower = html.to_lowercase();
    for bad in [
        "http://", "https://", "<script", "<link", "@import", "url(", "<iframe", "<img",
    ] {
        assert!(!lower.contains(bad), "the page contains {bad}");
    }
    assert!(html.contains("<style>"));
    // The digest names the study, the verdict, the headline comparisons and the survival results.
    let md = &r.summary_md;
    for want in [
        "MSC-LC",
        "Verdict:",
        "ALT WEEK 48",
        "PREALB WEEK 48",
        "OS (",
        "log-rank p",
    ] {
        assert!(md.contains(want), "summary lacks {want}:\n{md}");
    }
    // Plain text: no markup (a `<` is fine in `p < 0.001`, a tag is not).
    let tag = md
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'));
    assert!(!tag, "summary is plain text:\n{md}");
    // The headline comparison is the primary analysis's contrast when it ran.
    if built()
        .analysis
        .results
        .iter()
        .any(|r| r.method == "mmrm_difference" && r.estimate.is_some())
    {
        assert!(md.contains("MMRM difference"), "{md}");
    } else {
        assert!(md.contains("ANCOVA difference"), "{md}");
    }
}

#[test]
fn pipeline_text_is_escaped_and_skipped_analyses_are_listed() {
    let mut lp = LoadedPipeline::load(Path::new(PIPELINE)).expect("load");
    lp.pipeline.study.title = r#"<b>Bold</b> & "quoted" <script>alert(1)</script>"#.into();
    let mut b = build_from(lp);
    b.analysis
        .skipped
        .push(("extra_model".into(), "needs <more> data & time".into()));
    let r = render(&b);
    assert!(!r.html.contains("<b>Bold</b>"));
    assert!(!r.html.contains("<script>"));
    assert!(
        r.html
            .contains("&lt;b&gt;Bold&lt;&#x2f;b&gt; &amp; &quot;quoted&quot;")
    );
    let at = r
        .html
        .find("<section id=\"skipped\">")
        .expect("skipped section");
    let skipped = &r.html[at..];
    assert!(skipped.contains("extra_model"));
    assert!(skipped.contains("needs &lt;more&gt; data &amp; time"));
    // The plain-text digest is not escaped.
    assert!(r.summary_md.contains(r#"<b>Bold</b> & "quoted""#));
    assert!(
        r.summary_md
            .contains("extra_model: needs <more> data & time")
    );
}

// ------------------------------------------------------------------------------------------------
// Headless Chromium
// ------------------------------------------------------------------------------------------------

fn chromium() -> String {
    let candidates: Vec<String> = match std::env::var("CHROMIUM") {
        Ok(c) => vec![c],
        Err(_) => ["chromium", "chromium-browser", "google-chrome"]
            .map(String::from)
            .to_vec(),
    };
    for c in &candidates {
        let ok = Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return c.clone();
        }
    }
    panic!(
        "headless Chromium is required for this test and none of {candidates:?} runs. \
         Install it: apt-get update && apt-get install -y chromium (Debian: /usr/bin/chromium), \
         or point CHROMIUM at the binary."
    );
}

/// Run Chromium headless with a fresh profile, killing it after two minutes.
fn run_chromium(extra: &[String], url: &str) -> Output {
    let profile = tempfile::Builder::new()
        .prefix("chromium-profile-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(url)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start chromium");
    let start = Instant::now();
    // Read the pipes on threads so a large DOM cannot block the child.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut b).ok();
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut b).ok();
        b
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s: {extra:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Console messages Chromium logged (`--enable-logging=stderr --v=0` prints each as a line with
/// `:CONSOLE`).
fn console_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect()
}

#[test]
fn chromium_renders_the_report() {
    let r = report();
    let dir = tmp_dir("report_chromium");
    let html = dir.join("index.html");
    std::fs::write(&html, &r.html).unwrap();
    std::fs::write(dir.join("summary.md"), &r.summary_md).unwrap();
    std::fs::create_dir_all(dir.join("figures")).unwrap();
    for (name, svg) in &r.figures {
        std::fs::write(dir.join("figures").join(name), svg).unwrap();
    }
    let url = format!("file://{}", html.display());

    // Screenshot.
    let png = dir.join("report.png");
    let o = run_chromium(
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,4000".into(),
        ],
        &url,
    );
    assert!(
        o.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bytes = std::fs::read(&png).expect("screenshot written");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (w, h) = (
        u32::from_be_bytes(bytes[16..20].try_into().unwrap()),
        u32::from_be_bytes(bytes[20..24].try_into().unwrap()),
    );
    assert_eq!((w, h), (1280, 4000), "screenshot size");
    // A blank 1280×4000 page compresses to a few kilobytes; text, tables and charts do not.
    assert!(
        bytes.len() > 150_000,
        "screenshot looks blank: {} bytes",
        bytes.len()
    );
    println!("report screenshot: {}", png.display());

    // Parsed DOM, with console logging on.
    let o = run_chromium(
        &[
            "--enable-logging=stderr".into(),
            "--v=0".into(),
            "--dump-dom".into(),
        ],
        &url,
    );
    assert!(o.status.success(), "chromium --dump-dom failed");
    let dom = String::from_utf8_lossy(&o.stdout);
    for s in sections(built()) {
        assert!(
            dom.contains(&format!("<section id=\"{s}\">")),
            "section {s} not in the rendered DOM"
        );
    }
    assert_eq!(
        dom.matches("<svg").count(),
        r.figures.len(),
        "every inline <svg> survives parsing"
    );
    for (name, _) in &r.figures {
        assert!(dom.contains(&format!("data-file=\"{name}\"")), "{name}");
    }
    let console = console_lines(&o.stderr);
    assert!(
        console.is_empty(),
        "console messages while loading the report:\n{}",
        console.join("\n")
    );

    // The console check is live: the same run on a page that logs an error does report it.
    let probe = dir.join("console_probe.html");
    std::fs::write(
        &probe,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>probe</title></head>\
         <body><script>console.error('trialpipe-console-probe')</script></body></html>",
    )
    .unwrap();
    let o = run_chromium(
        &[
            "--enable-logging=stderr".into(),
            "--v=0".into(),
            "--dump-dom".into(),
        ],
        &format!("file://{}", probe.display()),
    );
    assert!(
        console_lines(&o.stderr)
            .iter()
            .any(|l| l.contains("trialpipe-console-probe")),
        "chromium no longer logs console messages to stderr; the console check is blind"
    );
}
