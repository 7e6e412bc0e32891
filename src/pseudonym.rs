//! Keyed pseudonymization of subject ids.
//!
//! When the pipeline asks for it (`[output] pseudonymize = { key_env = "…" }`), every subject id
//! read by ingest is replaced, right after reading and before anything is written, by
//! `P` + the first 16 hexadecimal digits (64 bits) of HMAC-SHA256(key, id). The key comes from
//! the environment variable the pipeline names and is never written anywhere: not in outputs,
//! manifest or logs. The same key gives the same pseudonyms run after run, so datasets from
//! successive data cuts join; without the key nobody can recompute the mapping from a guessed
//! id. A site's own subject id still reaches no output; source file and line (lineage) remain,
//! so a data manager holding the raw files and the key can trace a row back.
//!
//! HMAC is RFC 2104 through the `hmac` crate; the key must be at least 16 bytes (RFC 2104 §3
//! recommends no less than the hash output, 32 bytes; 16 is the floor accepted here and the docs
//! recommend 32 random bytes).

use hmac::{Hmac, Mac};
use rustc_hash::FxHashMap;
use sha2::Sha256;

use crate::ingest::IngestOutput;

/// Shortest key accepted, in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// Why ids could not be pseudonymized.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PseudonymError {
    /// The environment variable is not set or empty.
    #[error(
        "output.pseudonymize: environment variable {var} is not set; it must hold the pseudonymization key (at least {MIN_KEY_BYTES} bytes)"
    )]
    MissingKey {
        /// The variable.
        var: String,
    },
    /// The key is too short.
    #[error(
        "output.pseudonymize: the key in {var} has {len} bytes; at least {MIN_KEY_BYTES} are required"
    )]
    ShortKey {
        /// The variable.
        var: String,
        /// Its length in bytes.
        len: usize,
    },
    /// Two different ids map to one pseudonym (a 64-bit collision: practically impossible, but
    /// checked rather than assumed).
    #[error("pseudonyms of subjects {a} and {b} collide; use another key")]
    Collision {
        /// One id.
        a: String,
        /// The other id.
        b: String,
    },
}

/// Maps subject ids to pseudonyms with one key.
pub struct Pseudonymizer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never show the key.
        f.write_str("Pseudonymizer { key: <hidden> }")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer with this key (at least [`MIN_KEY_BYTES`] bytes); `var` names where the
    /// key came from, for the error.
    pub fn new(key: &[u8], var: &str) -> Result<Pseudonymizer, PseudonymError> {
        if key.is_empty() {
            return Err(PseudonymError::MissingKey {
                var: var.to_string(),
            });
        }
        if key.len() < MIN_KEY_BYTES {
            return Err(PseudonymError::ShortKey {
                var: var.to_string(),
                len: key.len(),
            });
        }
        let mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
        Ok(Pseudonymizer { mac })
    }

    /// The key from the environment variable `var`.
    pub fn from_env(var: &str) -> Result<Pseudonymizer, PseudonymError> {
        let key = std::env::var_os(var).unwrap_or_default();
        Pseudonymizer::new(key.as_encoded_bytes(), var)
    }

    /// The pseudonym of one id: `P` and 16 hex digits.
    pub fn pseudonym(&self, id: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(id.as_bytes());
        let tag = mac.finalize().into_bytes();
        let mut out = String::with_capacity(17);
        out.push('P');
        for b in &tag[..8] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

/// Replace every subject id in what ingest read (subjects, their raw columns, labs, events,
/// time-to-event records). Blank ids stay blank, so validation still reports them.
pub fn apply(data: &mut IngestOutput, p: &Pseudonymizer) -> Result<(), PseudonymError> {
    let mut map: FxHashMap<String, String> = FxHashMap::default();
    let mut seen: FxHashMap<String, String> = FxHashMap::default();
    let mut get = |id: &str| -> Result<String, PseudonymError> {
        if id.is_empty() {
            return Ok(String::new());
        }
        if let Some(x) = map.get(id) {
            return Ok(x.clone());
        }
        let x = p.pseudonym(id);
        if let Some(other) = seen.insert(x.clone(), id.to_string())
            && other != id
        {
            return Err(PseudonymError::Collision {
                a: other,
                b: id.to_string(),
            });
        }
        map.insert(id.to_string(), x.clone());
        Ok(x)
    };
    for s in &mut data.subjects {
        let new = get(&s.subject_id)?;
        for v in s.columns.values_mut() {
            if *v == s.subject_id {
                *v = new.clone();
            }
        }
        s.subject_id = new;
    }
    for r in &mut data.labs {
        r.subject_id = ustr::Ustr::from(&get(&r.subject_id)?);
    }
    for e in &mut data.events {
        e.subject_id = get(&e.subject_id)?;
    }
    for t in &mut data.tte {
        t.subject_id = get(&t.subject_id)?;
    }
    let a = &mut data.assessments;
    for p in &mut a.problems {
        p.subject_id = get(&p.subject_id)?;
    }
    let index = std::mem::take(&mut a.index);
    for ((id, date), mut row) in index {
        let new = get(&id)?;
        row.subject_id = new.clone();
        a.index.insert((new, date), row);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?" gives
        // 5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843. The key is below
        // MIN_KEY_BYTES, so the MAC is checked directly here.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn pseudonyms_are_stable_per_key_and_differ_between_keys() {
        let a = Pseudonymizer::new(b"0123456789abcdef", "K").unwrap();
        let b = Pseudonymizer::new(b"0123456789abcdeF", "K").unwrap();
        assert_eq!(a.pseudonym("01-001"), a.pseudonym("01-001"));
        assert_ne!(a.pseudonym("01-001"), a.pseudonym("01-002"));
        assert_ne!(a.pseudonym("01-001"), b.pseudonym("01-001"));
        let p = a.pseudonym("01-001");
        assert_eq!(p.len(), 17);
        assert!(p.starts_with('P'));
        assert!(p[1..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn short_or_missing_keys_are_refused() {
        assert_eq!(
            Pseudonymizer::new(b"", "K").unwrap_err(),
            PseudonymError::MissingKey { var: "K".into() }
        );
        assert_eq!(
            Pseudonymizer::new(b"short", "K").unwrap_err().to_string(),
            "output.pseudonymize: the key in K has 5 bytes; at least 16 are required"
        );
        let p = Pseudonymizer::new(b"0123456789abcdef", "K").unwrap();
        assert_eq!(format!("{p:?}"), "Pseudonymizer { key: <hidden> }");
    }
}
