//! Reads the header and metadata of a GGUF file (llama.cpp's model format, versions 2 and
//! 3) without loading the tensors: enough to check a downloaded language model.

use std::collections::BTreeMap;
use std::io::{self, Read};

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// Arrays keep only their length and element type id (token lists are large).
    Array {
        elem_type: u32,
        len: u64,
    },
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::UInt(v) => Some(v),
            Value::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
}

/// The parsed header.
#[derive(Debug, Clone)]
pub struct GgufHeader {
    pub version: u32,
    pub tensor_count: u64,
    pub metadata: BTreeMap<String, Value>,
}

impl GgufHeader {
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// `general.architecture`, e.g. `llama`.
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture")?.as_str()
    }

    /// `<arch>.context_length`: the context the model was trained for.
    pub fn context_length(&self) -> Option<u64> {
        self.get(&format!("{}.context_length", self.architecture()?))?
            .as_u64()
    }

    /// `tokenizer.chat_template`, the Jinja chat template.
    pub fn chat_template(&self) -> Option<&str> {
        self.get("tokenizer.chat_template")?.as_str()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("not a GGUF file (magic {0:02x?}, expected \"GGUF\")")]
    Magic([u8; 4]),
    #[error("GGUF version {0} is not supported (2 and 3 are)")]
    Version(u32),
    #[error("metadata key {key:?} has unknown value type {ty}")]
    Type { key: String, ty: u32 },
    #[error("implausible GGUF header: {0}")]
    Implausible(String),
    #[error("reading the GGUF header: {0}")]
    Io(#[from] io::Error),
}

/// Limits that keep a corrupt header from asking for absurd allocations.
const MAX_STRING: u64 = 64 << 20;
const MAX_KEYS: u64 = 1 << 20;

struct Reader<R> {
    inner: R,
}

impl<R: Read> Reader<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], GgufError> {
        let mut b = [0u8; N];
        self.inner.read_exact(&mut b)?;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    fn string(&mut self) -> Result<String, GgufError> {
        let len = self.u64()?;
        if len > MAX_STRING {
            return Err(GgufError::Implausible(format!("string of {len} bytes")));
        }
        let mut buf = vec![0u8; len as usize];
        self.inner.read_exact(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    fn skip(&mut self, n: u64) -> Result<(), GgufError> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        if copied != n {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        Ok(())
    }

    fn value(&mut self, key: &str, ty: u32) -> Result<Value, GgufError> {
        Ok(match ty {
            0 => Value::UInt(u64::from(self.bytes::<1>()?[0])),
            1 => Value::Int(i64::from(self.bytes::<1>()?[0] as i8)),
            2 => Value::UInt(u64::from(u16::from_le_bytes(self.bytes()?))),
            3 => Value::Int(i64::from(i16::from_le_bytes(self.bytes()?))),
            4 => Value::UInt(u64::from(self.u32()?)),
            5 => Value::Int(i64::from(i32::from_le_bytes(self.bytes()?))),
            6 => Value::Float(f64::from(f32::from_le_bytes(self.bytes()?))),
            7 => Value::Bool(self.bytes::<1>()?[0] != 0),
            8 => Value::Str(self.string()?),
            9 => {
                let elem_type = self.u32()?;
                let len = self.u64()?;
                for _ in 0..len {
                    match elem_type {
                        0 | 1 | 7 => self.skip(1)?,
                        2 | 3 => self.skip(2)?,
                        4..=6 => self.skip(4)?,
                        10..=12 => self.skip(8)?,
                        8 => {
                            let n = self.u64()?;
                            if n > MAX_STRING {
                                return Err(GgufError::Implausible(format!(
                                    "string of {n} bytes in {key}"
                                )));
                            }
                            self.skip(n)?;
                        }
                        other => {
                            return Err(GgufError::Type {
                                key: key.to_owned(),
                                ty: other,
                            });
                        }
                    }
                }
                Value::Array { elem_type, len }
            }
            10 => Value::UInt(self.u64()?),
            11 => Value::Int(i64::from_le_bytes(self.bytes()?)),
            12 => Value::Float(f64::from_le_bytes(self.bytes()?)),
            other => {
                return Err(GgufError::Type {
                    key: key.to_owned(),
                    ty: other,
                });
            }
        })
    }
}

/// Reads the header and all metadata from `input`, stopping before the tensor table.
pub fn read_header(input: impl Read) -> Result<GgufHeader, GgufError> {
    let mut r = Reader {
        inner: io::BufReader::new(input),
    };
    let magic: [u8; 4] = r.bytes()?;
    if &magic != b"GGUF" {
        return Err(GgufError::Magic(magic));
    }
    let version = r.u32()?;
    if !(2..=3).contains(&version) {
        return Err(GgufError::Version(version));
    }
    let tensor_count = r.u64()?;
    let kv_count = r.u64()?;
    if kv_count > MAX_KEYS {
        return Err(GgufError::Implausible(format!("{kv_count} metadata keys")));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..kv_count {
        let key = r.string()?;
        let ty = r.u32()?;
        let value = r.value(&key, ty)?;
        metadata.insert(key, value);
    }
    Ok(GgufHeader {
        version,
        tensor_count,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }

    #[test]
    fn reads_metadata_of_a_small_file() {
        let mut f = b"GGUF".to_vec();
        f.extend_from_slice(&3u32.to_le_bytes());
        f.extend_from_slice(&7u64.to_le_bytes());
        f.extend_from_slice(&4u64.to_le_bytes());
        string(&mut f, "general.architecture");
        f.extend_from_slice(&8u32.to_le_bytes());
        string(&mut f, "llama");
        string(&mut f, "llama.context_length");
        f.extend_from_slice(&4u32.to_le_bytes());
        f.extend_from_slice(&8192u32.to_le_bytes());
        string(&mut f, "tokenizer.ggml.tokens");
        f.extend_from_slice(&9u32.to_le_bytes());
        f.extend_from_slice(&8u32.to_le_bytes());
        f.extend_from_slice(&2u64.to_le_bytes());
        string(&mut f, "a");
        string(&mut f, "bc");
        string(&mut f, "tokenizer.chat_template");
        f.extend_from_slice(&8u32.to_le_bytes());
        string(&mut f, "<|im_start|>");

        let h = read_header(f.as_slice()).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.tensor_count, 7);
        assert_eq!(h.architecture(), Some("llama"));
        assert_eq!(h.context_length(), Some(8192));
        assert_eq!(h.chat_template(), Some("<|im_start|>"));
        assert_eq!(
            h.get("tokenizer.ggml.tokens"),
            Some(&Value::Array {
                elem_type: 8,
                len: 2
            })
        );
        assert!(read_header(&f[..f.len() - 3]).is_err());
        assert!(matches!(
            read_header(&b"GGML\x03\0\0\0"[..]),
            Err(GgufError::Magic(_))
        ));
    }
}
