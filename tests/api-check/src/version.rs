//! Which version bumps allow a breaking change.

use std::fmt;
use std::str::FromStr;

/// A crate version, `MAJOR.MINOR.PATCH` (a pre-release or build suffix is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let core = s.split(['-', '+']).next().unwrap_or(s);
        let parts: Vec<u64> = core
            .split('.')
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| format!("version {s:?} is not MAJOR.MINOR.PATCH"))?;
        match parts[..] {
            [major, minor, patch] => Ok(Version {
                major,
                minor,
                patch,
            }),
            _ => Err(format!("version {s:?} is not MAJOR.MINOR.PATCH")),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    /// The part that must change for a breaking release (Cargo's rule: the first non-zero).
    fn compatibility(self) -> (u64, u64, u64) {
        match (self.major, self.minor) {
            (0, 0) => (0, 0, self.patch),
            (0, minor) => (0, minor, 0),
            (major, _) => (major, 0, 0),
        }
    }
}

/// True when going from `old` to `new` is not a breaking release, so a breaking change
/// between them needs a bigger bump.
pub fn needs_major(old: Version, new: Version) -> bool {
    old.compatibility() == new.compatibility()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    #[test]
    fn cargo_compatibility_rules() {
        assert!(needs_major(v("0.1.0"), v("0.1.1")));
        assert!(!needs_major(v("0.1.1"), v("0.2.0")));
        assert!(needs_major(v("1.2.0"), v("1.3.0")));
        assert!(!needs_major(v("1.9.9"), v("2.0.0")));
        assert!(!needs_major(v("0.0.1"), v("0.0.2")));
        assert_eq!(v("0.1.1-alpha.1"), v("0.1.1"));
        assert!("0.1".parse::<Version>().unwrap_err().contains("\"0.1\""));
    }
}
