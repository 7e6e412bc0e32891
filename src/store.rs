//! Output storage: atomic file writes, SHA-256 digests, and Parquet writing.
//!
//! This is the only module that touches polars (pinned `=0.55.2`, whose Rust API changes between
//! minor releases) and its Arrow and Parquet crates: stages build a [`Table`] of plain Rust
//! columns, or a function that builds any range of rows of one, and hand it here. Parquet is
//! written one row group at a time through the encoder polars' own writer uses
//! (`polars-parquet`), from Arrow arrays (`polars-arrow`) made from the columns, with the options
//! polars' sink uses; the next row group is built while one is encoded. Every file is written to
//! a temporary name in the target directory and renamed into place, so a reader never sees a
//! half-written file, and created without world-read permission (trial data).

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use polars::prelude::{
    DataFrame, DataType, IntoColumn, IntoSeries, KeyValueMetadata, NamedFrom, NewChunkedArray,
    ParquetCompression, ParquetReader, PlSmallStr, PolarsError, PolarsResult, SerReader, Series,
    StringChunked,
};
use polars_arrow::array::Array;
use polars_arrow::datatypes::{ArrowDataType, ArrowSchema, Field as ArrowField};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Why an output could not be written or an input hashed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File system error.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// polars refused the table.
    #[error("{path}: cannot write Parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// polars' message.
        message: String,
    },
}

/// A file with its size and SHA-256, as listed in the manifest.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct FileRecord {
    /// Path as given (relative paths stay relative).
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// SHA-256 of bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Size and SHA-256 of a file, streamed.
pub fn file_record(path: &Path) -> Result<FileRecord, StoreError> {
    let io = |action, source| StoreError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let mut f = std::fs::File::open(path).map_err(|e| io("cannot open", e))?;
    let mut h = Sha256::new();
    let bytes = std::io::copy(&mut f, &mut h).map_err(|e| io("cannot read", e))?;
    Ok(FileRecord {
        path: path.to_string_lossy().into_owned(),
        bytes,
        sha256: h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// Create a directory (and parents) without world access.
pub fn create_dir(path: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        action: "cannot create directory",
        source,
    })?;
    restrict(path, 0o750)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        StoreError::Io {
            path: path.to_path_buf(),
            action: "cannot set permissions",
            source,
        }
    })
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<(), StoreError> {
    Ok(())
}

/// Write a file atomically: a temporary file in the same directory, flushed, synced, then
/// renamed over the target. The file is readable by owner and group only.
pub fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> Result<(), StoreError>,
) -> Result<FileRecord, StoreError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_dir(dir)?;
    let io = |action, source| StoreError::Io {
        path: path.to_path_buf(),
        action,
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| io("cannot create temporary file", e))?;
    fill(tmp.as_file_mut())?;
    tmp.as_file_mut()
        .flush()
        .map_err(|e| io("cannot flush", e))?;
    tmp.as_file().sync_all().map_err(|e| io("cannot sync", e))?;
    restrict(tmp.path(), 0o640)?;
    tmp.persist(path)
        .map_err(|e| io("cannot rename into place", e.error))?;
    file_record(path)
}

/// Write bytes atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<FileRecord, StoreError> {
    write_atomic(path, |f| {
        f.write_all(bytes).map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            action: "cannot write",
            source,
        })
    })
}

/// A column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Text.
    Str(TextColumn),
    /// 64-bit float.
    F64(Vec<Option<f64>>),
    /// 64-bit integer.
    I64(Vec<Option<i64>>),
    /// Calendar date.
    Date(Vec<Option<NaiveDate>>),
    /// Text with few distinct values (codes such as PARAMCD, AVISIT, ARMCD): written as a
    /// categorical, which Arrow readers see as a dictionary-encoded string.
    Cat(TextColumn),
}

/// A text column, held one of two ways: interned strings (`ustr::Ustr`, one pointer per cell,
/// nothing copied: what a stage that already holds interned values builds), or one buffer with
/// offsets (each value copied once instead of a `String` per cell, for text made on the fly).
/// Either way the millions of rows of a lab table cost no allocation per cell.
#[derive(Debug, Clone)]
pub struct TextColumn(Text);

/// Equal when the values are, whichever way each column holds them.
impl PartialEq for TextColumn {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for TextColumn {}

#[derive(Debug, Clone)]
enum Text {
    /// Value `i` is `buf[ends[i - 1]..ends[i]]` (with `ends[-1] = 0`), null when `nulls[i]`.
    Buf {
        buf: String,
        ends: Vec<usize>,
        nulls: Vec<bool>,
    },
    /// Interned values.
    Sym(Vec<Option<ustr::Ustr>>),
    /// Value `i` is `values[codes[i]]`, null when `codes[i]` is None; `values` are distinct.
    Coded {
        values: Vec<String>,
        codes: Vec<Option<u32>>,
    },
}

impl Default for TextColumn {
    fn default() -> Self {
        TextColumn(Text::Buf {
            buf: String::new(),
            ends: Vec::new(),
            nulls: Vec::new(),
        })
    }
}

impl TextColumn {
    /// Append one value.
    pub fn push(&mut self, v: Option<&str>) {
        match &mut self.0 {
            Text::Buf { buf, ends, nulls } => {
                if let Some(v) = v {
                    buf.push_str(v);
                }
                ends.push(buf.len());
                nulls.push(v.is_none());
            }
            Text::Sym(vals) => vals.push(v.map(ustr::Ustr::from)),
            Text::Coded { .. } => {
                // Coded columns are made whole (`TextColumn::coded`); one appended to is
                // rewritten as a buffer first.
                *self = self.iter().collect();
                self.push(v);
            }
        }
    }

    /// A column of `codes` into `values` (None is null), for text with many repeats made on the
    /// fly: each distinct text is made and stored once, and the Parquet dictionary is built from
    /// the codes rather than by hashing every string.
    ///
    /// `values` must be distinct (panics otherwise) and every code must index one.
    pub fn coded(values: Vec<String>, codes: Vec<Option<u32>>) -> TextColumn {
        let distinct: rustc_hash::FxHashSet<&str> = values.iter().map(String::as_str).collect();
        assert_eq!(
            distinct.len(),
            values.len(),
            "coded text values must be distinct"
        );
        assert!(
            codes.iter().flatten().all(|&c| (c as usize) < values.len()),
            "a code outside the values"
        );
        TextColumn(Text::Coded { values, codes })
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match &self.0 {
            Text::Buf { ends, .. } => ends.len(),
            Text::Sym(vals) => vals.len(),
            Text::Coded { codes, .. } => codes.len(),
        }
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `i`.
    pub fn get(&self, i: usize) -> Option<&str> {
        match &self.0 {
            Text::Buf { buf, ends, nulls } => {
                if nulls[i] {
                    return None;
                }
                let start = if i == 0 { 0 } else { ends[i - 1] };
                Some(&buf[start..ends[i]])
            }
            Text::Sym(vals) => vals[i].as_ref().map(|u| u.as_str()),
            Text::Coded { values, codes } => codes[i].map(|c| values[c as usize].as_str()),
        }
    }

    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The values as owned strings.
    pub fn to_vec(&self) -> Vec<Option<String>> {
        self.iter().map(|v| v.map(str::to_string)).collect()
    }
}

impl TextColumn {
    /// A column from values of any string type, copied into one buffer.
    fn collect_from<S: AsRef<str>>(iter: impl IntoIterator<Item = Option<S>>) -> TextColumn {
        let iter = iter.into_iter();
        let mut c = TextColumn(Text::Buf {
            buf: String::new(),
            ends: Vec::with_capacity(iter.size_hint().0),
            nulls: Vec::with_capacity(iter.size_hint().0),
        });
        for v in iter {
            c.push(v.as_ref().map(AsRef::as_ref));
        }
        c
    }
}

impl<'a> FromIterator<Option<&'a str>> for TextColumn {
    fn from_iter<I: IntoIterator<Item = Option<&'a str>>>(iter: I) -> Self {
        TextColumn::collect_from(iter)
    }
}

impl FromIterator<Option<String>> for TextColumn {
    fn from_iter<I: IntoIterator<Item = Option<String>>>(iter: I) -> Self {
        TextColumn::collect_from(iter)
    }
}

/// Interned values are kept as they are: one pointer per cell, no text copied.
impl FromIterator<Option<ustr::Ustr>> for TextColumn {
    fn from_iter<I: IntoIterator<Item = Option<ustr::Ustr>>>(iter: I) -> Self {
        TextColumn(Text::Sym(iter.into_iter().collect()))
    }
}

impl From<Vec<Option<String>>> for TextColumn {
    fn from(v: Vec<Option<String>>) -> Self {
        v.into_iter().collect()
    }
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Str(v) | ColumnData::Cat(v) => v.len(),
            ColumnData::F64(v) => v.len(),
            ColumnData::I64(v) => v.len(),
            ColumnData::Date(v) => v.len(),
        }
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A named column with its label and unit (documented in `docs/data-dictionary.md`).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name.
    pub name: &'static str,
    /// Human label.
    pub label: &'static str,
    /// The values.
    pub data: ColumnData,
}

/// A dataset handed from a stage to storage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    /// Columns in output order.
    pub columns: Vec<Column>,
}

impl Table {
    /// Number of rows (0 for no columns).
    pub fn rows(&self) -> usize {
        self.columns.first().map(|c| c.data.len()).unwrap_or(0)
    }
}

/// The polars frame of a table, consumed column by column: each column's Rust values are freed as
/// soon as its polars copy exists, so a large table is never held twice in full.
fn to_polars(table: Table) -> PolarsResult<DataFrame> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
    let rows = table.rows();
    let mut cols = Vec::with_capacity(table.columns.len());
    for c in table.columns {
        let name: PlSmallStr = c.name.into();
        let s = match &c.data {
            ColumnData::Str(v) => StringChunked::from_iter_options(name, v.iter()).into_series(),
            ColumnData::Cat(v) => StringChunked::from_iter_options(name, v.iter())
                .into_series()
                .cast(&DataType::from_categories(
                    polars::prelude::Categories::global(),
                ))?,
            ColumnData::F64(v) => Series::new(name, v),
            ColumnData::I64(v) => Series::new(name, v),
            ColumnData::Date(v) => {
                let days: Vec<Option<i32>> = v
                    .iter()
                    .map(|d| d.map(|d| (d - epoch).num_days() as i32))
                    .collect();
                Series::new(name, days).cast(&DataType::Date)?
            }
        };
        drop(c);
        cols.push(s.into_column());
    }
    DataFrame::new(rows, cols)
}

/// Names and labels of a table's columns, kept for the Parquet metadata once the values are gone.
fn heads(table: &Table) -> Vec<(&'static str, &'static str)> {
    table.columns.iter().map(|c| (c.name, c.label)).collect()
}

/// Write a table as zstd-compressed Parquet, atomically, with file-level key-value metadata
/// (tool version, dataset name, labels, and whatever the caller adds) and per-column
/// Arrow field metadata (`label`, and `unit` where the column has one) that pyarrow and pandas
/// read back from the `ARROW:schema` entry. Row groups of [`ROW_GROUP_ROWS`] rows are encoded one
/// at a time (columns in parallel) straight from the table's columns, so no second copy of a
/// large table is ever made.
pub fn write_parquet(
    path: &Path,
    table: Table,
    dataset: &str,
    extra: &[(String, String)],
) -> Result<FileRecord, StoreError> {
    let rows = table.rows();
    let columns = arrow_columns(&table);
    write_row_groups(path, &columns, dataset, extra, rows, &|range| {
        use rayon::prelude::*;
        table
            .columns
            .par_iter()
            .map(|c| to_arrow(&c.data, range.clone()))
            .collect()
    })
}

/// [`write_parquet`] for a large table made a slice at a time: `chunk(range)` builds the rows
/// `range` (the columns, names and labels do not depend on the range; `chunk(0..0)` gives them).
/// Only one row group's worth of the table exists at a time, and the next one is built while the
/// last one is encoded.
pub fn write_parquet_chunked(
    path: &Path,
    rows: usize,
    chunk: &(dyn Fn(std::ops::Range<usize>) -> Table + Sync),
    dataset: &str,
    extra: &[(String, String)],
) -> Result<FileRecord, StoreError> {
    let columns = arrow_columns(&chunk(0..0));
    write_row_groups(path, &columns, dataset, extra, rows, &|range| {
        use rayon::prelude::*;
        let part = chunk(range);
        part.columns
            .par_iter()
            .map(|c| to_arrow(&c.data, 0..c.data.len()))
            .collect()
    })
}

/// Name, label and Arrow type of each column of a table.
fn arrow_columns(table: &Table) -> Vec<(&'static str, &'static str, ArrowDataType)> {
    table
        .columns
        .iter()
        .map(|c| (c.name, c.label, arrow_type(&c.data)))
        .collect()
}

/// The Arrow type a column is written as: what polars writes at its oldest compatibility level
/// (large strings, dictionaries of large strings with `u32` keys), which every reader opens.
fn arrow_type(data: &ColumnData) -> ArrowDataType {
    match data {
        ColumnData::Str(_) => ArrowDataType::LargeUtf8,
        ColumnData::Cat(_) => dictionary_type(),
        ColumnData::F64(_) => ArrowDataType::Float64,
        ColumnData::I64(_) => ArrowDataType::Int64,
        ColumnData::Date(_) => ArrowDataType::Date32,
    }
}

/// A dictionary of large strings with `u32` keys, as polars writes a categorical.
fn dictionary_type() -> ArrowDataType {
    ArrowDataType::Dictionary(
        polars_arrow::datatypes::IntegerType::UInt32,
        Box::new(ArrowDataType::LargeUtf8),
        false,
    )
}

/// A dictionary array of [`dictionary_type`] holding `items` (None is null), its dictionary
/// in order of first appearance, and the number of distinct values.
fn dictionary<K: AsRef<str> + Copy + Eq + std::hash::Hash>(
    items: impl Iterator<Item = Option<K>>,
) -> (Box<dyn Array>, usize) {
    use polars_arrow::array::{MutableUtf8Array, Utf8Array};
    use std::hash::BuildHasher;
    // A small direct-mapped cache of recent values in front of the map: most columns have few
    // distinct values, which are then found without a probe of the map.
    const SLOTS: usize = 256;
    let mut recent: [Option<(K, u32)>; SLOTS] = [None; SLOTS];
    let hasher = rustc_hash::FxBuildHasher;
    let mut codes: rustc_hash::FxHashMap<K, u32> = Default::default();
    let mut values = MutableUtf8Array::<i64>::new();
    // The value of the row before, which sorted columns repeat: found without hashing.
    let mut last: Option<(K, u32)> = None;
    let keys: Vec<Option<u32>> = items
        .map(|v| {
            v.map(|v| {
                if let Some((k, code)) = last
                    && k == v
                {
                    return code;
                }
                let h = hasher.hash_one(v);
                let slot = &mut recent[(h >> 32) as usize % SLOTS];
                let code = match *slot {
                    Some((k, code)) if k == v => code,
                    _ => {
                        let next = codes.len() as u32;
                        let code = *codes.entry(v).or_insert_with(|| {
                            values.push(Some(v.as_ref()));
                            next
                        });
                        *slot = Some((v, code));
                        code
                    }
                };
                last = Some((v, code));
                code
            })
        })
        .collect();
    let values: Utf8Array<i64> = values.into();
    let array = dictionary_array(dictionary_type(), &keys, values.boxed());
    (array.boxed(), codes.len())
}

/// A dictionary array of `keys` (None is null) into `values`, where every present key was
/// assigned to a value when that value was added to `values` (so it indexes one) and null keys
/// hold 0: what [`dictionary`] and [`float_dictionary`] build.
fn dictionary_array(
    dtype: ArrowDataType,
    keys: &[Option<u32>],
    values: Box<dyn Array>,
) -> polars_arrow::array::DictionaryArray<u32> {
    use polars_arrow::array::DictionaryArray;
    let keys = primitive(keys, |k| k);
    if values.is_empty() {
        // Every key is null: nothing to index, and polars checks nothing either.
        return DictionaryArray::try_new(dtype, keys, values)
            .expect("keys are null where there are no values");
    }
    // SAFETY: every key is below `values.len()`: present keys were assigned as the index of the
    // value they stand for when it was added, and null keys hold 0, which indexes the first
    // value. `try_new` would check each key again (a pass over every key of every dictionary
    // column written); the type is checked either way.
    unsafe { DictionaryArray::try_new_unchecked(dtype, keys, values) }
        .expect("the dictionary type matches its keys and values")
}

/// A coded text value as a dictionary key: equal and hashed by its code (the codes of a coded
/// column stand for distinct texts), read as its text.
#[derive(Clone, Copy)]
struct Code<'a>(u32, &'a str);

impl PartialEq for Code<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Code<'_> {}

impl std::hash::Hash for Code<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl AsRef<str> for Code<'_> {
    fn as_ref(&self) -> &str {
        self.1
    }
}

impl TextColumn {
    /// Rows `range` as a dictionary array ([`dictionary`]) and its number of distinct values,
    /// found by interned pointer or by code; None for buffered text, whose values would have
    /// to be hashed.
    fn dictionary(&self, range: std::ops::Range<usize>) -> Option<(Box<dyn Array>, usize)> {
        match &self.0 {
            Text::Buf { .. } => None,
            Text::Sym(vals) => Some(dictionary(vals[range].iter().copied())),
            Text::Coded { values, codes } => Some(dictionary(
                codes[range]
                    .iter()
                    .map(|c| c.map(|c| Code(c, values[c as usize].as_str()))),
            )),
        }
    }
}

/// Rows `range` of a column as an Arrow array of [`arrow_type`]. A categorical column gets a
/// dictionary of the values in the range, in order of first appearance.
fn to_arrow(data: &ColumnData, range: std::ops::Range<usize>) -> Box<dyn Array> {
    use polars_arrow::array::{MutableUtf8Array, Utf8Array};
    let text = |t: &TextColumn| {
        let bytes: usize = range.clone().map(|i| t.get(i).map_or(0, str::len)).sum();
        let mut a = MutableUtf8Array::<i64>::with_capacities(range.len(), bytes);
        for i in range.clone() {
            a.push(t.get(i));
        }
        a
    };
    match data {
        ColumnData::Str(t) => {
            // Interned or coded text is handed to the encoder as a dictionary when the Parquet
            // writer would make one itself (more than 128 rows, distinct values at most 3/4 of
            // them): the dictionary is found by the interned pointers or the codes instead of by
            // hashing every string.
            let dict = (range.len() > 128)
                .then(|| t.dictionary(range.clone()))
                .flatten()
                .filter(|(_, distinct)| *distinct as f64 / range.len() as f64 <= 0.75);
            match dict {
                Some((array, _)) => array,
                None => {
                    let a: Utf8Array<i64> = text(t).into();
                    a.boxed()
                }
            }
        }
        // Interned or coded values are told apart by pointer or code, the same values in the
        // same order as by their text; buffered text is hashed.
        ColumnData::Cat(t) => match t.dictionary(range.clone()) {
            Some((array, _)) => array,
            None => dictionary(range.map(|i| t.get(i))).0,
        },
        ColumnData::F64(v) => {
            let v = &v[range];
            float_dictionary(v).unwrap_or_else(|| primitive(v, |x| x).boxed())
        }
        ColumnData::I64(v) => primitive(&v[range], |x| x).boxed(),
        ColumnData::Date(v) => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch");
            primitive(&v[range], |d| (d - epoch).num_days() as i32)
                .to(ArrowDataType::Date32)
                .boxed()
        }
    }
}

/// Numbers as a dictionary array (a dictionary of Float64 values with `u32` keys, values in
/// order of first appearance), or None when more than 3/4 of the values are distinct (for more
/// than 128 values): the rule polars applies to every other primitive type, which its
/// dictionary cast lacks for floats. Lab values, limits and visit numbers repeat, and a column of
/// dictionary keys is a fraction of the plain values' bytes for zstd to compress; readers decode
/// either to the same Float64 column. Values are told apart by their bits, so `-0.0` stays
/// `-0.0`.
fn float_dictionary(v: &[Option<f64>]) -> Option<Box<dyn Array>> {
    use polars_arrow::array::PrimitiveArray;
    let limit = if v.len() > 128 {
        v.len() * 3 / 4
    } else {
        v.len()
    };
    let mut codes: rustc_hash::FxHashMap<u64, u32> = Default::default();
    let mut values: Vec<f64> = Vec::new();
    // The value of the row before, which sorted and grouped columns repeat: found without hashing.
    let mut last: Option<(u64, u32)> = None;
    let mut keys: Vec<Option<u32>> = Vec::with_capacity(v.len());
    for x in v {
        let Some(x) = *x else {
            keys.push(None);
            continue;
        };
        let bits = x.to_bits();
        let code = match last {
            Some((b, code)) if b == bits => code,
            _ => {
                let next = values.len() as u32;
                let code = *codes.entry(bits).or_insert(next);
                if code == next {
                    values.push(x);
                    if values.len() > limit {
                        return None;
                    }
                }
                last = Some((bits, code));
                code
            }
        };
        keys.push(Some(code));
    }
    let values = PrimitiveArray::<f64>::from_vec(values);
    let dtype = ArrowDataType::Dictionary(
        polars_arrow::datatypes::IntegerType::UInt32,
        Box::new(ArrowDataType::Float64),
        false,
    );
    Some(dictionary_array(dtype, &keys, values.boxed()).boxed())
}

/// The Arrow array of optional values, each present one mapped by `f`: the values and the
/// validity are made in two straight passes (no validity when every value is present), where
/// `PrimitiveArray::from` of options pushes a value and a validity bit at a time. Missing values
/// hold the type's default, as there.
fn primitive<S: Copy, T: polars_arrow::types::NativeType>(
    v: &[Option<S>],
    f: impl Fn(S) -> T,
) -> polars_arrow::array::PrimitiveArray<T> {
    let values: Vec<T> = v.iter().map(|x| x.map_or_else(T::default, &f)).collect();
    let validity = v
        .iter()
        .any(Option::is_none)
        .then(|| polars_arrow::bitmap::Bitmap::from_iter(v.iter().map(Option::is_some)));
    polars_arrow::array::PrimitiveArray::new(T::PRIMITIVE.into(), values.into(), validity)
}

/// The Arrow schema written to a file: each column with its type, `label` and, where it has
/// one, `unit` or `unit_column` ([`column_unit`]) as field metadata.
fn labelled_schema(
    columns: &[(&'static str, &'static str, ArrowDataType)],
    dataset: &str,
) -> ArrowSchema {
    // What polars marks a categorical column with, so that polars reads it back as one (other
    // readers see the dictionary type).
    let categorical = DataType::from_categories(polars::prelude::Categories::global())
        .to_arrow_field_metadata()
        .unwrap_or_default();
    let mut schema = ArrowSchema::default();
    for (name, label, dtype) in columns {
        let mut md: std::collections::BTreeMap<PlSmallStr, PlSmallStr> = Default::default();
        if matches!(dtype, ArrowDataType::Dictionary(..)) {
            md.extend(categorical.clone());
        }
        md.extend(label_and_unit(dataset, name, label));
        let mut field = ArrowField::new((*name).into(), dtype.clone(), true);
        field.metadata = Some(std::sync::Arc::new(md));
        schema.insert((*name).into(), field);
    }
    schema
}

/// A column's Arrow field metadata: its `label`, and its `unit` or `unit_column`
/// ([`column_unit`]) where it has one.
fn label_and_unit(
    dataset: &str,
    name: &str,
    label: &str,
) -> std::collections::BTreeMap<PlSmallStr, PlSmallStr> {
    let mut md = std::collections::BTreeMap::new();
    md.insert("label".into(), label.into());
    match column_unit(dataset, name) {
        Some(Unit::Fixed(u)) => {
            md.insert("unit".into(), u.into());
        }
        Some(Unit::InColumn(col)) => {
            md.insert("unit_column".into(), col.into());
        }
        None => {}
    }
    md
}

/// File-level key-value metadata of every dataset: tool version, dataset name, the labels (for
/// readers that ignore Arrow field metadata), and the caller's entries.
fn file_kv<'a>(
    columns: impl Iterator<Item = (&'a str, &'a str)>,
    dataset: &str,
    extra: &[(String, String)],
) -> Vec<(String, String)> {
    let mut kv = vec![
        polars_parquet_kv("trialpipe.version", env!("CARGO_PKG_VERSION")),
        polars_parquet_kv("trialpipe.dataset", dataset),
    ];
    let labels: Vec<String> = columns
        .map(|(name, label)| format!("{name}={label}"))
        .collect();
    kv.push(polars_parquet_kv("trialpipe.labels", &labels.join("\n")));
    kv.extend(extra.iter().cloned());
    kv
}

/// A row source for [`write_row_groups`]: rows `range` of every column, as Arrow arrays of the
/// columns' declared types.
type ArraySource<'a> = dyn Fn(std::ops::Range<usize>) -> Vec<Box<dyn Array>> + Sync + 'a;

/// Write `rows` rows of the given columns as Parquet, atomically: one row group of
/// [`ROW_GROUP_ROWS`] rows at a time, its columns made by `source` (the next group while this
/// one is encoded) and encoded in parallel, then dropped. This is what polars' own Parquet sink
/// does (the same encoder, zstd, statistics, format version 1, the Arrow schema with field
/// metadata stored under `ARROW:schema`), without first building a polars DataFrame of the
/// whole table.
fn write_row_groups(
    path: &Path,
    columns: &[(&'static str, &'static str, ArrowDataType)],
    dataset: &str,
    extra: &[(String, String)],
    rows: usize,
    source: &ArraySource<'_>,
) -> Result<FileRecord, StoreError> {
    use polars::io::parquet::write::{BatchedWriter, get_encodings};
    use polars_parquet::parquet::error::ParquetError;
    use polars_parquet::write::{
        CompressedPage, Compressor, FileWriter, StatisticsOptions, Version, WriteOptions,
        array_to_columns, to_parquet_schema,
    };
    use rayon::prelude::*;
    let perr = |e: PolarsError| StoreError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let schema = labelled_schema(columns, dataset);
    let descriptor = to_parquet_schema(&schema).map_err(perr)?;
    let encodings = get_encodings(&schema);
    // A Float64 column that reaches the encoder as plain values (too many distinct values for a
    // dictionary, [`float_dictionary`]) is written as plain pages at once: asked for a
    // dictionary, polars would estimate its cardinality (hashing every value) and then fall back
    // to plain pages anyway, as its dictionary cast has no Float64.
    let plain = [polars_parquet::parquet::encoding::Encoding::Plain];
    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        compression: ParquetCompression::Zstd(None).into(),
        version: Version::V1,
        data_page_size: None,
    };
    let kv = KeyValueMetadata::from_static(file_kv(
        columns.iter().map(|(name, label, _)| (*name, *label)),
        dataset,
        extra,
    ));
    write_atomic(path, |file| {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut writer = BatchedWriter::new(
            std::sync::Mutex::new(FileWriter::new_with_parquet_schema(
                &mut out,
                schema.clone(),
                descriptor.clone(),
                options,
            )),
            encodings.clone(),
            options,
            false,
            Some(kv),
        );
        let encode =
            |i: usize, array: Box<dyn Array>| {
                let mut leaves = Vec::new();
                let encoding = match array.dtype() {
                    ArrowDataType::Float64 => &plain[..],
                    _ => &encodings[i][..],
                };
                for pages in
                    array_to_columns(array, descriptor.fields()[i].clone(), options, encoding)?
                {
                    let pages = pages.map(|p| {
                        p.map_err(|e| ParquetError::FeatureNotSupported(format!("reraised: {e}")))
                    });
                    let compressed: Vec<CompressedPage> =
                        Compressor::new_from_vec(pages, options.compression, vec![])
                            .collect::<Result<_, ParquetError>>()?;
                    leaves.push(compressed);
                }
                PolarsResult::Ok(leaves)
            };
        let group_end = |start: usize| (start + ROW_GROUP_ROWS).min(rows);
        let mut start = 0;
        let mut next = (rows > 0).then(|| source(0..group_end(0)));
        while let Some(arrays) = next.take() {
            let end = group_end(start);
            let (encoded, following) = rayon::join(
                || {
                    arrays
                        .into_par_iter()
                        .enumerate()
                        .map(|(i, a)| encode(i, a))
                        .collect::<PolarsResult<Vec<_>>>()
                },
                || (end < rows).then(|| source(end..group_end(end))),
            );
            let group: Vec<Vec<CompressedPage>> =
                encoded.map_err(perr)?.into_iter().flatten().collect();
            writer
                .write_row_group((end - start) as u64, &group)
                .map_err(perr)?;
            next = following;
            start = end;
        }
        writer.finish().map_err(perr)?;
        drop(writer);
        out.flush().map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            action: "cannot write",
            source,
        })
    })
}

/// Write a table as a Hive-partitioned dataset: `dir/<key>=<value>/00000000.parquet`, one
/// directory per value of the text column `key` (left out of the files: readers get it back
/// from the directory names), rows in table order within each file, each file with the same
/// metadata as [`write_parquet`]. The caller writes into a staging directory, so the set appears
/// at once when the run publishes. Returns every file written, sorted by path.
pub fn write_parquet_partitioned(
    dir: &Path,
    table: Table,
    dataset: &str,
    extra: &[(String, String)],
    key: &str,
) -> Result<Vec<FileRecord>, StoreError> {
    use polars::prelude::IntoLazy;
    use polars::prelude::file_provider::{FileProviderType, HivePathProvider};
    use polars::prelude::sink::{PartitionStrategy, SinkDestination, UnifiedSinkArgs};
    use polars::prelude::{FileWriteFormat, IdxSize, PlRefPath, SortMultipleOptions, col};
    let perr = |e: PolarsError| StoreError::Parquet {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    let heads = heads(&table);
    let df = to_polars(table).map_err(perr)?;
    let opts = parquet_options(&df, &heads, dataset, extra, Some(key));
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| StoreError::Io {
            path: dir.to_path_buf(),
            action: "cannot remove the previous partitions",
            source: e,
        })?;
    }
    create_dir(dir)?;
    // A stable sort by the key keeps table order within each partition.
    df.lazy()
        .sort(
            [key],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .sink(
            SinkDestination::Partitioned {
                base_path: PlRefPath::new(dir.to_string_lossy().as_ref()),
                file_path_provider: Some(FileProviderType::Hive(HivePathProvider {
                    extension: "parquet".into(),
                })),
                partition_strategy: PartitionStrategy::Keyed {
                    keys: vec![col(key)],
                    include_keys: false,
                    keys_pre_grouped: true,
                },
                max_rows_per_file: IdxSize::MAX,
                approximate_bytes_per_file: u64::MAX,
            },
            FileWriteFormat::Parquet(std::sync::Arc::new(opts)),
            UnifiedSinkArgs::default(),
        )
        .and_then(|lf| lf.collect())
        .map_err(perr)?;
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        restrict(&d, 0o750)?;
        for e in std::fs::read_dir(&d).map_err(|e| StoreError::Io {
            path: d.clone(),
            action: "cannot list partitions",
            source: e,
        })? {
            let p = e
                .map_err(|e| StoreError::Io {
                    path: d.clone(),
                    action: "cannot list partitions",
                    source: e,
                })?
                .path();
            if p.is_dir() {
                stack.push(p);
            } else {
                restrict(&p, 0o640)?;
                files.push(p);
            }
        }
    }
    files.sort();
    files.iter().map(|p| file_record(p)).collect()
}

/// zstd, row groups of [`ROW_GROUP_ROWS`], key-value metadata (tool version, dataset name,
/// labels, the caller's entries) and an Arrow schema carrying each column's label and unit; the
/// column `without` (a partition key) is left out of the schema.
fn parquet_options(
    df: &DataFrame,
    heads: &[(&'static str, &'static str)],
    dataset: &str,
    extra: &[(String, String)],
    without: Option<&str>,
) -> polars::prelude::ParquetWriteOptions {
    use polars::prelude::{
        ArrowSchema, CompatLevel, ParquetWriteOptions, SchemaExt, StatisticsOptions,
    };
    let kv = file_kv(heads.iter().copied(), dataset, extra);
    let compat = CompatLevel::oldest();
    let full: ArrowSchema = df.schema().to_arrow(compat);
    let mut arrow = ArrowSchema::default();
    for (&(cname, clabel), (name, field)) in heads.iter().zip(full.iter()) {
        if Some(cname) == without {
            continue;
        }
        let mut field = field.clone();
        field.metadata = Some(std::sync::Arc::new(label_and_unit(dataset, cname, clabel)));
        arrow.insert(name.clone(), field);
    }
    ParquetWriteOptions {
        compression: ParquetCompression::Zstd(None),
        statistics: StatisticsOptions::default(),
        row_group_size: Some(ROW_GROUP_ROWS),
        data_page_size: None,
        key_value_metadata: Some(KeyValueMetadata::from_static(kv)),
        arrow_schema: Some(std::sync::Arc::new(arrow)),
        compat_level: Some(compat),
    }
}

/// The unit of a column, written as Arrow field metadata beside its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// One unit for every row (`unit` metadata).
    Fixed(&'static str),
    /// The unit differs by row and is in another column (`unit_column` metadata), as AVALU
    /// holds the unit of AVAL.
    InColumn(&'static str),
}

/// Units of the columns that have one, per dataset name (as passed to [`write_parquet`]);
/// `docs/data-dictionary.md` shows the same in its unit column.
pub fn column_unit(dataset: &str, column: &str) -> Option<Unit> {
    use Unit::{Fixed, InColumn};
    match (dataset, column) {
        ("ingest_labs", "LBORRESN") => Some(InColumn("LBORRESU")),
        ("ingest_labs" | "LB", "LBSTRESN" | "LBSTNRLO" | "LBSTNRHI") => Some(InColumn("LBSTRESU")),
        ("ADLB", "AVAL" | "BASE" | "CHG" | "ANRLO" | "ANRHI") => Some(InColumn("AVALU")),
        ("ADLB", "PCHG") => Some(Fixed("%")),
        ("ADLB", "ADY" | "AWTARGET" | "AWLO" | "AWHI") => Some(Fixed("days")),
        ("ADTTE", "AVAL") => Some(Fixed("days")),
        (_, "LBDY") => Some(Fixed("days")),
        ("ingest_subjects" | "ADSL", "AGE") => Some(Fixed("years")),
        ("ingest_subjects" | "ADSL", "DOSES") => Some(Fixed("doses")),
        _ => None,
    }
}

/// Rows per Parquet row group: large enough for fast scans, small enough that a notebook
/// reading one parameter does not decode the whole file.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

fn polars_parquet_kv(k: &str, v: &str) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// A column read back from Parquet: its name and its values as text (dates ISO, numbers in
/// Rust's shortest round-trip form, nulls as None). Used by tests and checks that must look at
/// what a reader of the file sees, without depending on polars themselves.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadColumn {
    /// Column name.
    pub name: String,
    /// Arrow/polars type name (e.g. `str`, `f64`, `i64`, `date`).
    pub dtype: String,
    /// Values as text.
    pub values: Vec<Option<String>>,
}

/// Read a Parquet file's columns as text.
pub fn read_parquet_text(path: &Path) -> Result<Vec<ReadColumn>, StoreError> {
    let perr = |e: PolarsError| StoreError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let f = std::fs::File::open(path).map_err(|source| StoreError::Io {
        path: path.to_path_buf(),
        action: "cannot open",
        source,
    })?;
    let df = ParquetReader::new(f).finish().map_err(perr)?;
    let mut out = Vec::new();
    for c in df.columns() {
        let s = c.as_materialized_series();
        let dtype = s.dtype().to_string();
        let txt = s.cast(&DataType::String).map_err(perr)?;
        let ca = txt.str().map_err(perr)?;
        out.push(ReadColumn {
            name: s.name().to_string(),
            dtype,
            values: (0..ca.len())
                .map(|i| ca.get(i).map(str::to_string))
                .collect(),
        });
    }
    Ok(out)
}

/// Write a table as CSV (RFC 4180, comma, UTF-8, header row; dates ISO 8601; numbers in Rust's
/// shortest round-trip form; nulls empty), atomically.
pub fn write_csv(path: &Path, table: &Table) -> Result<FileRecord, StoreError> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    let io = |e: csv::Error| StoreError::Io {
        path: path.to_path_buf(),
        action: "cannot format CSV",
        source: std::io::Error::other(e.to_string()),
    };
    w.write_record(table.columns.iter().map(|c| c.name))
        .map_err(io)?;
    for i in 0..table.rows() {
        let rec: Vec<String> = table
            .columns
            .iter()
            .map(|c| match &c.data {
                ColumnData::Str(v) | ColumnData::Cat(v) => {
                    v.get(i).map(str::to_string).unwrap_or_default()
                }
                ColumnData::F64(v) => v[i].map(|x| format!("{x}")).unwrap_or_default(),
                ColumnData::I64(v) => v[i].map(|x| x.to_string()).unwrap_or_default(),
                ColumnData::Date(v) => v[i].map(|d| d.to_string()).unwrap_or_default(),
            })
            .collect();
        w.write_record(&rec).map_err(io)?;
    }
    let bytes = w.into_inner().map_err(|e| StoreError::Io {
        path: path.to_path_buf(),
        action: "cannot format CSV",
        source: std::io::Error::other(e.to_string()),
    })?;
    write_bytes(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows `range` of a test table: interned text with few values (the writer hands it over as
    /// a dictionary) and with a new value per row (plain), buffered text, a categorical, numbers
    /// and dates, each with nulls.
    fn rows(range: std::ops::Range<usize>) -> Table {
        let sym = |f: &dyn Fn(usize) -> Option<String>| {
            ColumnData::Str(
                range
                    .clone()
                    .map(|i| f(i).map(|v| ustr::Ustr::from(&v)))
                    .collect(),
            )
        };
        let col = |name, data| Column {
            name,
            label: "label",
            data,
        };
        let epoch = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        Table {
            columns: vec![
                col(
                    "FEW",
                    sym(&|i| (i % 7 != 0).then(|| ["A", "B", "C"][i % 3].to_string())),
                ),
                col("MANY", sym(&|i| (i % 11 != 0).then(|| format!("v{i}")))),
                col(
                    "BUF",
                    ColumnData::Str(
                        range
                            .clone()
                            .map(|i| (i % 2 == 0).then(|| format!("b{}", i % 5)))
                            .collect(),
                    ),
                ),
                col(
                    "CAT",
                    ColumnData::Cat(
                        range
                            .clone()
                            .map(|i| (i % 13 != 0).then(|| ustr::Ustr::from(["x", "y"][i % 2])))
                            .collect(),
                    ),
                ),
                col(
                    "NUM",
                    ColumnData::F64(
                        range
                            .clone()
                            .map(|i| (i % 5 != 0).then_some(i as f64 * 0.5))
                            .collect(),
                    ),
                ),
                col(
                    "INT",
                    ColumnData::I64(range.clone().map(|i| Some(i as i64 - 7)).collect()),
                ),
                col(
                    "DAY",
                    ColumnData::Date(
                        range
                            .clone()
                            .map(|i| {
                                (i % 3 != 0).then(|| epoch + chrono::Days::new(i as u64 % 400))
                            })
                            .collect(),
                    ),
                ),
            ],
        }
    }

    #[test]
    fn coded_text_is_written_as_the_same_text_in_a_buffer_is() {
        let dir = tempfile::tempdir().unwrap();
        // Few distinct values (a dictionary), a new value per row (plain), and a small table.
        type Values = fn(usize) -> Option<String>;
        let cases: [(usize, Values); 3] = [
            (ROW_GROUP_ROWS + 500, |i| {
                (i % 9 != 0).then(|| format!("m{}", (i * 7) % 50))
            }),
            (ROW_GROUP_ROWS + 500, |i| {
                (i % 9 != 0).then(|| format!("v{i}"))
            }),
            (100, |i| (i % 9 != 0).then(|| format!("m{}", i % 5))),
        ];
        for (k, (n, value)) in cases.into_iter().enumerate() {
            let table = |data: ColumnData| Table {
                columns: vec![Column {
                    name: "T",
                    label: "label",
                    data,
                }],
            };
            let buffered: TextColumn = (0..n).map(value).collect();
            let mut values: Vec<String> = Vec::new();
            let mut index: std::collections::HashMap<String, u32> = Default::default();
            let codes = (0..n)
                .map(|i| {
                    value(i).map(|v| {
                        *index.entry(v.clone()).or_insert_with(|| {
                            values.push(v);
                            values.len() as u32 - 1
                        })
                    })
                })
                .collect();
            let coded = TextColumn::coded(values, codes);
            assert_eq!(coded, buffered);
            let a = dir.path().join(format!("buf{k}.parquet"));
            let b = dir.path().join(format!("coded{k}.parquet"));
            let a = write_parquet(&a, table(ColumnData::Str(buffered)), "test", &[]).unwrap();
            let b = write_parquet_chunked(
                &b,
                n,
                &|r| {
                    table(ColumnData::Str(match &coded.0 {
                        Text::Coded { values, codes } => {
                            TextColumn::coded(values.clone(), codes[r].to_vec())
                        }
                        _ => unreachable!("built coded"),
                    }))
                },
                "test",
                &[],
            )
            .unwrap();
            assert_eq!(a.sha256, b.sha256, "case {k}: the same bytes");
        }
        let mut c = TextColumn::coded(vec!["a".into(), "b".into()], vec![Some(1), None]);
        c.push(Some("a"));
        assert_eq!(c.to_vec(), [Some("b".into()), None, Some("a".into())]);
    }

    #[test]
    fn repeated_numbers_are_written_as_a_dictionary_and_read_back_exactly() {
        // Few distinct values, with nulls and -0.0 beside 0.0; and a new value per row.
        let few: Vec<Option<f64>> = (0..1000)
            .map(|i| match i % 6 {
                0 => None,
                1 => Some(-0.0),
                2 => Some(0.0),
                k => Some(k as f64 * 0.1),
            })
            .collect();
        let many: Vec<Option<f64>> = (0..1000).map(|i| Some(i as f64 / 3.0)).collect();
        assert!(float_dictionary(&few).is_some());
        assert!(float_dictionary(&many).is_none(), "more than 3/4 distinct");
        assert!(
            float_dictionary(&many[..128]).is_some(),
            "128 values or fewer"
        );
        // 750 distinct of 1000 is a dictionary still; 751 is not.
        let at = |distinct: usize| -> Vec<Option<f64>> {
            (0..1000).map(|i| Some((i % distinct) as f64)).collect()
        };
        assert!(float_dictionary(&at(750)).is_some());
        assert!(float_dictionary(&at(751)).is_none());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("numbers.parquet");
        let table = Table {
            columns: vec![
                Column {
                    name: "FEW",
                    label: "label",
                    data: ColumnData::F64(few.clone()),
                },
                Column {
                    name: "MANY",
                    label: "label",
                    data: ColumnData::F64(many.clone()),
                },
            ],
        };
        write_parquet(&path, table, "test", &[]).unwrap();
        let meta =
            polars_parquet::read::read_metadata(&mut std::fs::File::open(&path).unwrap()).unwrap();
        let chunks = meta.row_groups[0].parquet_columns();
        assert!(
            chunks[0].dictionary_page_offset().is_some(),
            "FEW: a dictionary"
        );
        assert!(chunks[1].dictionary_page_offset().is_none(), "MANY: plain");
        let cols = read_parquet_text(&path).unwrap();
        assert_eq!(cols[0].dtype, "f64");
        for (c, want) in cols.iter().zip([&few, &many]) {
            let got: Vec<Option<f64>> = c
                .values
                .iter()
                .map(|v| v.as_deref().map(|x| x.parse().unwrap()))
                .collect();
            let bits = |v: &[Option<f64>]| -> Vec<Option<u64>> {
                v.iter().map(|x| x.map(f64::to_bits)).collect()
            };
            assert_eq!(
                bits(&got),
                bits(want),
                "{}: the same values, signs of zero too",
                c.name
            );
        }
    }

    #[test]
    #[should_panic(expected = "coded text values must be distinct")]
    fn coded_text_values_must_be_distinct() {
        TextColumn::coded(vec!["a".into(), "a".into()], vec![Some(0), Some(1)]);
    }

    #[test]
    fn a_table_written_in_row_groups_reads_back_and_chunks_change_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let n = 2 * ROW_GROUP_ROWS + 1000;
        let whole = dir.path().join("whole.parquet");
        let chunked = dir.path().join("chunked.parquet");
        let a = write_parquet(&whole, rows(0..n), "test", &[]).unwrap();
        let b = write_parquet_chunked(&chunked, n, &rows, "test", &[]).unwrap();
        assert_eq!(
            a.sha256, b.sha256,
            "the same bytes whether built whole or by row group"
        );
        let cols = read_parquet_text(&chunked).unwrap();
        // Types as a polars reader sees them: the categorical column comes back categorical.
        let dtypes: Vec<&str> = cols.iter().map(|c| c.dtype.as_str()).collect();
        assert_eq!(dtypes, ["str", "str", "str", "cat", "f64", "i64", "date"]);
        // The Arrow schema stored in the file: labels on every field, and the mark polars puts
        // on a categorical (as polars' own writer did).
        let meta = polars_parquet::read::read_metadata(&mut std::fs::File::open(&chunked).unwrap())
            .unwrap();
        let schema = polars_parquet::read::infer_schema(&meta).unwrap();
        for (name, field) in schema.iter() {
            let md = field.metadata.as_deref().cloned().unwrap_or_default();
            assert_eq!(md.get("label").map(|l| l.as_str()), Some("label"), "{name}");
            let marked = md.keys().any(|k| k.starts_with("_PL_CATEGORICAL"));
            assert_eq!(marked, name.as_str() == "CAT", "{name}: {md:?}");
        }
        let want = rows(0..n);
        for (c, w) in cols.iter().zip(&want.columns) {
            assert_eq!(c.name, w.name);
            assert_eq!(c.values.len(), n, "{}", c.name);
            for i in [0, 1, 7, ROW_GROUP_ROWS - 1, ROW_GROUP_ROWS, n - 1] {
                if let ColumnData::F64(v) = &w.data {
                    let got = c.values[i].as_deref().map(|x| x.parse::<f64>().unwrap());
                    assert_eq!(got, v[i], "{} row {i}", c.name);
                    continue;
                }
                let expected = match &w.data {
                    ColumnData::Str(t) | ColumnData::Cat(t) => t.get(i).map(str::to_string),
                    ColumnData::F64(_) => unreachable!("compared as numbers above"),
                    ColumnData::I64(v) => v[i].map(|x| x.to_string()),
                    ColumnData::Date(v) => v[i].map(|d| d.to_string()),
                };
                assert_eq!(c.values[i], expected, "{} row {i}", c.name);
            }
        }
        // No rows: a valid file with the columns.
        let empty = dir.path().join("empty.parquet");
        write_parquet_chunked(&empty, 0, &rows, "test", &[]).unwrap();
        let cols = read_parquet_text(&empty).unwrap();
        assert_eq!(cols.len(), 7);
        assert!(cols.iter().all(|c| c.values.is_empty()));
    }
}
