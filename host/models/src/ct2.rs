//! Reader for CTranslate2 `model.bin` files (binary format versions 4 to 6), the only form
//! in which Whisper weights are published on the package registries.
//!
//! Layout (all little-endian): `u32` version, spec name and `u32` spec revision, `u32`
//! variable count, then per variable its name, `u8` rank, `u32` dims, `u8` data type, `u32`
//! byte count and the raw data; then `u32` alias count and (alias, target) name pairs.
//! Strings are a `u16` length followed by the bytes, NUL included.

use std::collections::BTreeMap;
use std::ops::Range;

/// Element type of a variable, as numbered by CTranslate2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    fn from_id(id: u8) -> Option<DType> {
        Some(match id {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    pub fn id(self) -> u8 {
        match self {
            DType::F32 => 0,
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 3,
            DType::F16 => 4,
            DType::BF16 => 5,
        }
    }

    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One named array of the model.
#[derive(Debug, Clone)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: DType,
    range: Range<usize>,
}

impl Variable {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed model; variable data stays in the file's buffer.
#[derive(Debug)]
pub struct Ct2Model {
    pub spec: String,
    pub spec_revision: u32,
    variables: BTreeMap<String, Variable>,
    aliases: BTreeMap<String, String>,
    bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    #[error("the CTranslate2 file ends early at byte {0}: it is truncated")]
    Truncated(usize),
    #[error(
        "CTranslate2 binary version {0} is not supported (versions 4 to 6 are): convert the model with a newer CTranslate2"
    )]
    Version(u32),
    #[error("variable `{name}` has unknown data type id {id}")]
    DType { name: String, id: u8 },
    #[error("variable `{name}` holds {got} bytes but its shape {shape:?} needs {want}")]
    Size {
        name: String,
        shape: Vec<usize>,
        got: usize,
        want: usize,
    },
    #[error("a variable or alias name is not UTF-8")]
    Name,
    #[error("{0} bytes follow the last alias: the file is not a CTranslate2 model")]
    Trailing(usize),
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Ct2Error> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(Ct2Error::Truncated(self.pos))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Ct2Error> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Ct2Error> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, Ct2Error> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, Ct2Error> {
        let len = usize::from(self.u16()?);
        let raw = self.take(len)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec()).map_err(|_| Ct2Error::Name)
    }
}

impl Ct2Model {
    /// Parses a whole `model.bin`.
    pub fn parse(bytes: Vec<u8>) -> Result<Ct2Model, Ct2Error> {
        let mut cur = Cursor {
            bytes: &bytes,
            pos: 0,
        };
        let version = cur.u32()?;
        if !(4..=6).contains(&version) {
            return Err(Ct2Error::Version(version));
        }
        let spec = cur.string()?;
        let spec_revision = cur.u32()?;
        let count = cur.u32()?;
        let mut variables = BTreeMap::new();
        for _ in 0..count {
            let name = cur.string()?;
            let rank = cur.u8()?;
            let shape = (0..rank)
                .map(|_| cur.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let id = cur.u8()?;
            let dtype = DType::from_id(id).ok_or_else(|| Ct2Error::DType {
                name: name.clone(),
                id,
            })?;
            let nbytes = cur.u32()? as usize;
            let want = shape.iter().product::<usize>() * dtype.size();
            if nbytes != want {
                return Err(Ct2Error::Size {
                    name,
                    shape,
                    got: nbytes,
                    want,
                });
            }
            let start = cur.pos;
            cur.take(nbytes)?;
            variables.insert(
                name,
                Variable {
                    shape,
                    dtype,
                    range: start..start + nbytes,
                },
            );
        }
        let mut aliases = BTreeMap::new();
        // Version 3 and later end with the alias table.
        let alias_count = cur.u32()?;
        for _ in 0..alias_count {
            let alias = cur.string()?;
            let target = cur.string()?;
            aliases.insert(alias, target);
        }
        let trailing = bytes.len() - cur.pos;
        if trailing != 0 {
            return Err(Ct2Error::Trailing(trailing));
        }
        Ok(Ct2Model {
            spec,
            spec_revision,
            variables,
            aliases,
            bytes,
        })
    }

    /// The variable called `name`, following an alias if it is one.
    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.variables
            .get(name)
            .or_else(|| self.variables.get(self.aliases.get(name)?))
    }

    /// Raw little-endian data of `var`.
    pub fn data(&self, var: &Variable) -> &[u8] {
        &self.bytes[var.range.clone()]
    }

    /// Names of the stored variables (aliases excluded), sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.variables.keys().map(String::as_str)
    }

    /// A scalar integer attribute such as `encoder/num_heads`.
    pub fn scalar_int(&self, name: &str) -> Option<i64> {
        let var = self.get(name)?;
        if !var.shape.is_empty() {
            return None;
        }
        let d = self.data(var);
        Some(match var.dtype {
            DType::I8 => i64::from(d[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([d[0], d[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]])),
            _ => return None,
        })
    }
}

/// Writes a CTranslate2 `model.bin` (version 6); used to make synthetic models in tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Ct2Writer {
    variables: Vec<(String, Vec<usize>, DType, Vec<u8>)>,
    aliases: Vec<(String, String)>,
}

#[cfg(test)]
impl Ct2Writer {
    pub fn variable(&mut self, name: &str, shape: &[usize], dtype: DType, data: Vec<u8>) {
        self.variables
            .push((name.to_owned(), shape.to_vec(), dtype, data));
    }

    pub fn alias(&mut self, alias: &str, target: &str) {
        self.aliases.push((alias.to_owned(), target.to_owned()));
    }

    pub fn finish(self, spec: &str) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            let len = u16::try_from(s.len() + 1).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        string(&mut out, spec);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.variables.len() as u32).to_le_bytes());
        for (name, shape, dtype, data) in &self.variables {
            string(&mut out, name);
            out.push(shape.len() as u8);
            for d in shape {
                out.extend_from_slice(&(*d as u32).to_le_bytes());
            }
            out.push(dtype.id());
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&(self.aliases.len() as u32).to_le_bytes());
        for (alias, target) in &self.aliases {
            string(&mut out, alias);
            string(&mut out, target);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_alias_and_scalar() {
        let mut w = Ct2Writer::default();
        w.variable("a/weight", &[2, 3], DType::F32, vec![0; 24]);
        w.variable("a/num_heads", &[], DType::I16, 6i16.to_le_bytes().to_vec());
        w.alias("b/weight", "a/weight");
        let model = Ct2Model::parse(w.finish("WhisperSpec")).unwrap();
        assert_eq!(model.spec, "WhisperSpec");
        assert_eq!(model.get("b/weight").unwrap().shape, vec![2, 3]);
        assert_eq!(model.scalar_int("a/num_heads"), Some(6));
        assert_eq!(model.names().count(), 2);
    }

    #[test]
    fn truncated_and_wrong_size_are_errors() {
        let mut w = Ct2Writer::default();
        w.variable("x", &[4], DType::F16, vec![0; 8]);
        let bytes = w.finish("S");
        let cut = bytes[..bytes.len() - 6].to_vec();
        assert!(matches!(Ct2Model::parse(cut), Err(Ct2Error::Truncated(_))));

        let mut w = Ct2Writer::default();
        w.variable("x", &[4], DType::F16, vec![0; 6]);
        let err = Ct2Model::parse(w.finish("S")).unwrap_err();
        assert!(err.to_string().contains("`x` holds 6 bytes"), "{err}");

        let mut bytes = Ct2Writer::default().finish("S");
        bytes[0] = 2;
        assert!(matches!(Ct2Model::parse(bytes), Err(Ct2Error::Version(2))));
    }
}
