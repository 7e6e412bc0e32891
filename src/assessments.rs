//! The wide assessments input (`[inputs.assessments]`): clinical grades per subject and date.
//!
//! One row per subject and assessment date; one column per assessment. The contract columns are
//! `subject_id`, `date`, `ascites` and `encephalopathy` (renamed with `columns`); every grade is
//! matched, case-insensitively and trimmed, against the spellings the pipeline declares
//! (`ascites`, `encephalopathy`). A blank grade is missing (no Child-Pugh score for that date).
//! A file that cannot be read or lacks a contract column stops the run with an
//! [`AssessmentError`]; a row with a value that is not a declared spelling or not a date, rows
//! of one subject and date with different grades, and (once ingest knows the subjects,
//! [`Assessments::flag_unknown_subjects`]) rows of a subject not in the subjects file are
//! [`AssessmentProblem`]s, which validate reports as findings and quarantines, with the file in
//! row accounting. Ingest reads the file
//! with the other inputs. Assessments feed the Child-Pugh scores in derive, which match them to
//! lab values of the same subject and date, or of a date up to `match_days` away ([`matching`]).
//! Never prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::scores::{Ascites, Encephalopathy};
use crate::spec::{AssessmentsInput, Encoding, LoadedPipeline};

/// One assessment row.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Subject id as in the subjects file.
    pub subject_id: String,
    /// Assessment date.
    pub date: NaiveDate,
    /// Ascites grade (None when blank).
    pub ascites: Option<Ascites>,
    /// Hepatic encephalopathy grade (None when blank).
    pub encephalopathy: Option<Encephalopathy>,
    /// Source file.
    pub file: PathBuf,
    /// Line the row starts on (the header is line 1).
    pub line: u64,
}

/// Assessments by subject id and date.
pub type AssessmentIndex = BTreeMap<(String, NaiveDate), Assessment>;

/// The assessment a Child-Pugh score of `subject` on `date` uses: among the subject's
/// assessments with both grades dated at most `within_days` days before or after `date`, the
/// nearest; on a tie (one as far before as the other after) the earlier, which was known when
/// the labs were drawn. With `within_days` 0 that is the assessment of `date` itself, if both its
/// grades are given.
pub fn matching<'a>(
    index: &'a AssessmentIndex,
    subject: &str,
    date: NaiveDate,
    within_days: u32,
) -> Option<&'a Assessment> {
    let days = chrono::Days::new(u64::from(within_days));
    let from = date.checked_sub_days(days).unwrap_or(NaiveDate::MIN);
    let to = date.checked_add_days(days).unwrap_or(NaiveDate::MAX);
    let subject = subject.to_string();
    index
        .range((subject.clone(), from)..=(subject, to))
        .map(|(_, a)| a)
        .filter(|a| a.ascites.is_some() && a.encephalopathy.is_some())
        // Ascending dates: `min_by_key` keeps the first of equal distances, the earlier date.
        .min_by_key(|a| (a.date - date).num_days().abs())
}

/// A row that cannot be used: validate reports it as a finding and quarantines it.
#[derive(Debug, Clone, PartialEq)]
pub struct AssessmentProblem {
    /// Line the row starts on.
    pub line: u64,
    /// Subject id of the row (blank when missing).
    pub subject_id: String,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong with an assessments row.
#[derive(Debug, Clone, PartialEq)]
pub enum ProblemKind {
    /// A value does not parse or is not a declared spelling (rule `assessment_value`).
    BadValue {
        /// The file's column name.
        column: String,
        /// The raw value.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// Rows of one subject and date with different grades; each of them is a problem (rule
    /// `assessment_conflict`).
    Conflict {
        /// The assessment date.
        date: NaiveDate,
        /// Lines of every row of that subject and date.
        lines: Vec<u64>,
    },
    /// A usable row of a subject who is not in the subjects file (rule
    /// `assessment_unknown_subject`; rows of one subject and date that agree count as one).
    UnknownSubject,
}

impl AssessmentProblem {
    /// The validation rule that reports it.
    pub fn rule(&self) -> &'static str {
        match self.kind {
            ProblemKind::BadValue { .. } => "assessment_value",
            ProblemKind::Conflict { .. } => "assessment_conflict",
            ProblemKind::UnknownSubject => "assessment_unknown_subject",
        }
    }

    /// The offending value as read.
    pub fn value(&self) -> Option<String> {
        match &self.kind {
            ProblemKind::BadValue { value, .. } => Some(value.clone()),
            ProblemKind::Conflict { date, .. } => Some(date.to_string()),
            ProblemKind::UnknownSubject => Some(self.subject_id.clone()),
        }
    }

    /// The finding's message (built when reported, so that it names the subject as the outputs
    /// do: a pseudonym in a pseudonymized run).
    pub fn message(&self) -> String {
        match &self.kind {
            ProblemKind::BadValue {
                column,
                value,
                expected,
            } => format!("column `{column}`: `{value}` is not {expected}"),
            ProblemKind::Conflict { date, lines } => {
                let lines: Vec<String> = lines.iter().map(u64::to_string).collect();
                format!(
                    "subject {} on {date} is assessed differently on lines {}",
                    self.subject_id,
                    lines.join(", ")
                )
            }
            ProblemKind::UnknownSubject => {
                format!("subject {} is not in the subjects file", self.subject_id)
            }
        }
    }
}

impl Assessments {
    /// Move the usable rows of subjects not in `known` (the subjects file's ids) from the index
    /// to the problems, keeping the problems in file order.
    pub fn flag_unknown_subjects(&mut self, known: &dyn Fn(&str) -> bool) {
        let unknown: Vec<(String, NaiveDate)> = self
            .index
            .keys()
            .filter(|(id, _)| !known(id))
            .cloned()
            .collect();
        if unknown.is_empty() {
            return;
        }
        for key in unknown {
            let a = self.index.remove(&key).expect("a key just listed");
            self.problems.push(AssessmentProblem {
                line: a.line,
                subject_id: a.subject_id,
                kind: ProblemKind::UnknownSubject,
            });
        }
        self.problems.sort_by_key(|p| p.line);
    }
}

/// What the assessments input holds: the usable rows by subject and date, and the rows that are
/// not usable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessments {
    /// The file (None without `[inputs.assessments]`).
    pub file: Option<PathBuf>,
    /// Data rows read (blank rows skipped).
    pub rows_read: u64,
    /// Usable rows by subject id and date.
    pub index: AssessmentIndex,
    /// Rows that cannot be used, in file order.
    pub problems: Vec<AssessmentProblem>,
}

/// Why the assessments input cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AssessmentError {
    /// The file cannot be opened or decoded.
    #[error("{}: cannot read: {message}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A contract column is missing from the header.
    #[error("{}:1: no column `{column}` (for `{contract}`; header: {header})", path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The contract name.
        contract: &'static str,
        /// The file's column name looked for.
        column: String,
        /// The header as read.
        header: String,
    },
}

/// Read the pipeline's assessments input; empty when there is none.
pub fn read(lp: &LoadedPipeline) -> Result<Assessments, AssessmentError> {
    let Some(input) = &lp.pipeline.inputs.assessments else {
        return Ok(Assessments::default());
    };
    let path = lp.resolve(&input.path);
    let bytes = std::fs::read(&path).map_err(|e| AssessmentError::Read {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let text = decode(&bytes, input.encoding).map_err(|message| AssessmentError::Read {
        path: path.clone(),
        message,
    })?;
    parse(&text, &path, input)
}

/// Bytes to text: UTF-8 (a byte-order mark is dropped) or ISO-8859-1.
fn decode(bytes: &[u8], encoding: Encoding) -> Result<String, String> {
    let latin1 = |b: &[u8]| b.iter().map(|&c| char::from(c)).collect::<String>();
    let utf8 = |b: &[u8]| {
        std::str::from_utf8(b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)).map(str::to_string)
    };
    match encoding {
        Encoding::Utf8 => utf8(bytes).map_err(|e| format!("not UTF-8: {e}")),
        Encoding::Latin1 => Ok(latin1(bytes)),
        Encoding::Auto => Ok(utf8(bytes).unwrap_or_else(|_| latin1(bytes))),
    }
}

/// Parse the text of an assessments file.
pub fn parse(
    text: &str,
    path: &Path,
    input: &AssessmentsInput,
) -> Result<Assessments, AssessmentError> {
    // As ingest: the declared delimiter, else the one of `,` `;` tab `|` occurring most often in
    // the header line (on a tie the earlier in that order).
    let delimiter = input.delimiter.unwrap_or_else(|| {
        let header = text.lines().next().unwrap_or("");
        [',', ';', '\t', '|']
            .into_iter()
            .enumerate()
            .max_by_key(|(i, d)| (header.matches(*d).count(), std::cmp::Reverse(*i)))
            .map_or(',', |(_, d)| d)
    });
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter as u8)
        .has_headers(true)
        .from_reader(text.as_bytes());
    let read_err = |e: csv::Error| AssessmentError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(read_err)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let column = |contract: &'static str| -> Result<(usize, String), AssessmentError> {
        let name = input
            .columns
            .get(contract)
            .cloned()
            .unwrap_or_else(|| contract.to_string());
        header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(&name))
            .map(|i| (i, name.clone()))
            .ok_or_else(|| AssessmentError::MissingColumn {
                path: path.to_path_buf(),
                contract,
                column: name,
                header: header.join(","),
            })
    };
    let (c_subj, _) = column("subject_id")?;
    let (c_date, n_date) = column("date")?;
    let (c_asc, n_asc) = column("ascites")?;
    let (c_enc, n_enc) = column("encephalopathy")?;
    let a = &input.ascites;
    let ascites: Vec<(&String, Ascites)> = (a.none.iter().map(|v| (v, Ascites::None)))
        .chain(a.slight.iter().map(|v| (v, Ascites::Slight)))
        .chain(
            a.moderate_severe
                .iter()
                .map(|v| (v, Ascites::ModerateSevere)),
        )
        .collect();
    let e = &input.encephalopathy;
    let enceph: Vec<(&String, Encephalopathy)> = (e.none.iter().map(|v| (v, Encephalopathy::None)))
        .chain(e.grade_1_2.iter().map(|v| (v, Encephalopathy::Grade1To2)))
        .chain(e.grade_3_4.iter().map(|v| (v, Encephalopathy::Grade3To4)))
        .collect();
    let mut out = Assessments {
        file: Some(path.to_path_buf()),
        ..Assessments::default()
    };
    // Rows by subject and date, in file order; resolved after the whole file is read.
    let mut by_key: BTreeMap<(String, NaiveDate), Vec<Assessment>> = BTreeMap::new();
    for rec in reader.records() {
        let rec = rec.map_err(read_err)?;
        let line = rec.position().map_or(0, |p| p.line());
        let field = |i: usize| rec.get(i).unwrap_or("").trim();
        let subject = field(c_subj);
        if subject.is_empty() && rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        out.rows_read += 1;
        let mut bad = |column: &str, value: &str, expected: String| {
            out.problems.push(AssessmentProblem {
                line,
                subject_id: subject.to_string(),
                kind: ProblemKind::BadValue {
                    column: column.to_string(),
                    value: value.to_string(),
                    expected,
                },
            });
        };
        if subject.is_empty() {
            let (_, name) = column("subject_id")?;
            bad(&name, "", "a subject id".into());
            continue;
        }
        let Some(date) = crate::ingest::parse_date(field(c_date), input.date_format.as_deref())
        else {
            bad(
                &n_date,
                field(c_date),
                format!(
                    "a date ({})",
                    input.date_format.as_deref().unwrap_or("ISO 8601")
                ),
            );
            continue;
        };
        fn grade<T: Copy>(raw: &str, table: &[(&String, T)]) -> Result<Option<T>, ()> {
            if raw.is_empty() {
                return Ok(None);
            }
            table
                .iter()
                .find(|(v, _)| v.trim().eq_ignore_ascii_case(raw))
                .map(|(_, g)| Some(*g))
                .ok_or(())
        }
        fn spellings<T>(t: &[(&String, T)]) -> String {
            let v: Vec<String> = t.iter().map(|(s, _)| format!("`{s}`")).collect();
            format!("a declared grade ({}) or blank", v.join(", "))
        }
        let Ok(asc) = grade(field(c_asc), &ascites) else {
            bad(&n_asc, field(c_asc), spellings(&ascites));
            continue;
        };
        let Ok(enc) = grade(field(c_enc), &enceph) else {
            bad(&n_enc, field(c_enc), spellings(&enceph));
            continue;
        };
        by_key
            .entry((subject.to_string(), date))
            .or_default()
            .push(Assessment {
                subject_id: subject.to_string(),
                date,
                ascites: asc,
                encephalopathy: enc,
                file: path.to_path_buf(),
                line,
            });
    }
    // Repeated rows that agree are one assessment (the first); rows that disagree are all
    // problems, as conflicting duplicate lab results are.
    for (key, rows) in by_key {
        let first = &rows[0];
        if rows
            .iter()
            .all(|r| (r.ascites, r.encephalopathy) == (first.ascites, first.encephalopathy))
        {
            out.index
                .insert(key, rows.into_iter().next().expect("a row"));
        } else {
            let lines: Vec<u64> = rows.iter().map(|r| r.line).collect();
            for r in &rows {
                out.problems.push(AssessmentProblem {
                    line: r.line,
                    subject_id: r.subject_id.clone(),
                    kind: ProblemKind::Conflict {
                        date: key.1,
                        lines: lines.clone(),
                    },
                });
            }
        }
    }
    out.problems.sort_by_key(|p| p.line);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(extra: &str) -> AssessmentsInput {
        toml::from_str(&format!("path = \"a.csv\"\n{extra}")).unwrap()
    }

    #[test]
    fn a_score_takes_the_nearest_complete_assessment_within_match_days() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let a = |subject: &str, date: &str, complete: bool| {
            (
                (subject.to_string(), d(date)),
                Assessment {
                    subject_id: subject.to_string(),
                    date: d(date),
                    ascites: Some(Ascites::Slight),
                    encephalopathy: complete.then_some(Encephalopathy::None),
                    file: PathBuf::from("a.csv"),
                    line: 2,
                },
            )
        };
        let index: AssessmentIndex = [
            a("S1", "2020-03-08", true),
            a("S1", "2020-03-12", true),
            a("S1", "2020-03-10", false),
            a("S2", "2020-03-10", true),
            a("S0", "2020-03-10", true),
        ]
        .into_iter()
        .collect();
        let got = |subject: &str, date: &str, within: u32| {
            matching(&index, subject, d(date), within).map(|x| (x.subject_id.as_str(), x.date))
        };
        // Same date only: S1's assessment of the 10th lacks a grade, so none.
        assert_eq!(got("S1", "2020-03-10", 0), None);
        assert_eq!(got("S2", "2020-03-10", 0), Some(("S2", d("2020-03-10"))));
        assert_eq!(got("S2", "2020-03-11", 0), None);
        // Two days either way: the 8th and the 12th are as far; the earlier wins.
        assert_eq!(got("S1", "2020-03-10", 2), Some(("S1", d("2020-03-08"))));
        // The nearest otherwise, whichever side; other subjects are never taken.
        assert_eq!(got("S1", "2020-03-11", 2), Some(("S1", d("2020-03-12"))));
        assert_eq!(got("S1", "2020-03-09", 1), Some(("S1", d("2020-03-08"))));
        assert_eq!(got("S1", "2020-03-15", 2), None);
        assert_eq!(got("S3", "2020-03-10", 30), None);
        assert_eq!(got("S2", "2020-03-01", 9), Some(("S2", d("2020-03-10"))));
        assert_eq!(got("S2", "2020-03-01", 8), None);
    }

    #[test]
    fn reads_grades_with_declared_spellings_and_renamed_columns() {
        let inp = input(
            "columns = { subject_id = \"SUBJ\", date = \"VISDT\" }\n\
             encephalopathy = { none = [\"no\"], grade_1_2 = [\"I-II\"], grade_3_4 = [\"III-IV\"] }",
        );
        let text = "SUBJ;VISDT;ascites;encephalopathy\n\
                    01-001;2020-01-02;None;no\n\
                    01-001;2020-02-03; MILD ;i-ii\n\
                    01-002;2020-01-05;severe;\n\
                    01-002;2020-01-05;severe;\n";
        let read = parse(text, Path::new("a.csv"), &inp).unwrap();
        assert_eq!((read.rows_read, read.problems.len()), (4, 0));
        let got = read.index;
        assert_eq!(got.len(), 3);
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let a = &got[&("01-001".to_string(), d("2020-02-03"))];
        assert_eq!(
            (a.ascites, a.encephalopathy, a.line),
            (Some(Ascites::Slight), Some(Encephalopathy::Grade1To2), 3)
        );
        let b = &got[&("01-002".to_string(), d("2020-01-05"))];
        assert_eq!(
            (b.ascites, b.encephalopathy),
            (Some(Ascites::ModerateSevere), None)
        );
    }

    #[test]
    fn unknown_grades_and_bad_dates_are_problems_naming_line_column_and_spellings() {
        let text = "subject_id,date,ascites,encephalopathy\n01-001,2020-01-02,none,0\n\
                    01-001,2020-02-02,tense,0\n01-002,02/01/2020,none,0\n,2020-01-02,none,0\n";
        let read = parse(text, Path::new("a.csv"), &input("")).unwrap();
        assert_eq!((read.rows_read, read.index.len()), (4, 1));
        let got: Vec<(u64, &str, &str, String)> = read
            .problems
            .iter()
            .map(|p| (p.line, p.rule(), p.subject_id.as_str(), p.message()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    3,
                    "assessment_value",
                    "01-001",
                    "column `ascites`: `tense` is not a declared grade (`none`, `absent`, \
                     `slight`, `mild`, `moderate`, `severe`, `moderate-severe`) or blank"
                        .to_string()
                ),
                (
                    4,
                    "assessment_value",
                    "01-002",
                    "column `date`: `02/01/2020` is not a date (ISO 8601)".to_string()
                ),
                (
                    5,
                    "assessment_value",
                    "",
                    "column `subject_id`: `` is not a subject id".to_string()
                ),
            ]
        );
    }

    #[test]
    fn missing_columns_are_errors_and_conflicting_rows_are_all_problems() {
        let e = parse(
            "subject_id,date,ascites\n01-001,2020-01-02,none\n",
            Path::new("a.csv"),
            &input(""),
        )
        .unwrap_err();
        assert!(matches!(
            e,
            AssessmentError::MissingColumn {
                contract: "encephalopathy",
                ..
            }
        ));
        let read = parse(
            "subject_id,date,ascites,encephalopathy\n01-001,2020-01-02,none,0\n\
             01-001,2020-01-02,slight,0\n01-001,2020-01-02,none,0\n01-002,2020-01-02,none,0\n\
             01-002,2020-01-02,none,0\n",
            Path::new("a.csv"),
            &input(""),
        )
        .unwrap();
        // 01-001 disagrees with itself: all three rows; 01-002's two rows agree: one assessment.
        assert_eq!(read.index.len(), 1);
        let lines: Vec<u64> = read.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 3, 4]);
        assert!(
            read.problems
                .iter()
                .all(|p| p.rule() == "assessment_conflict")
        );
        assert_eq!(
            read.problems[0].message(),
            "subject 01-001 on 2020-01-02 is assessed differently on lines 2, 3, 4"
        );
    }

    #[test]
    fn decodes_bom_and_latin1() {
        assert_eq!(decode(b"\xEF\xBB\xBFa", Encoding::Auto).unwrap(), "a");
        assert_eq!(decode(b"\xE9", Encoding::Auto).unwrap(), "\u{e9}");
        assert!(decode(b"\xE9", Encoding::Utf8).is_err());
    }
}
