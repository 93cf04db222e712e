//! A completeness check for a shared library file, run before the dynamic loader sees it.
//!
//! `dlopen` maps a library's segments without reading them: a file cut short (a copy that
//! stopped half-way, a build still writing it while the watcher looks) can open, pass the
//! ABI checks that live in its first pages and then crash the process that touches a page
//! past its end. The ELF headers say how long the file must be, so a truncated file is
//! refused by reading them: the program header table, every loadable segment and the
//! section header table (the last thing a linker writes) must lie inside the file.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// e_ident: the magic, class, byte order and version bytes that open every ELF file.
const IDENT_LEN: usize = 16;
/// The 64-bit ELF header's size (the 32-bit one is smaller).
const HEADER_LEN: u64 = 64;
const PT_LOAD: u32 = 1;

/// Checks that `path`, if it is an ELF file, is a whole one: `Err` says what is wrong, in
/// words a user can act on. A file that is no ELF at all is left to the dynamic loader,
/// whose refusal names the problem.
pub fn check_complete(path: &Path) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("cannot read it ({e})");
    let mut file = File::open(path).map_err(cannot)?;
    let len = file.metadata().map_err(cannot)?.len();
    // The ELF header, then up to the end of the program header table (right after it in
    // practice): the check needs the file's length, not its contents.
    let mut head = Vec::new();
    (&mut file)
        .take(HEADER_LEN)
        .read_to_end(&mut head)
        .map_err(cannot)?;
    let table_end = Header::read(&head)
        .map_or(0, |h| {
            h.phoff.saturating_add(h.phentsize.saturating_mul(h.phnum))
        })
        .min(len);
    if let Some(rest) = table_end.checked_sub(head.len() as u64) {
        file.take(rest).read_to_end(&mut head).map_err(cannot)?;
    }
    check_bytes(&head, len)
}

/// The header fields the check needs, read for either ELF class.
struct Header {
    phoff: u64,
    phentsize: u64,
    phnum: u64,
    shoff: u64,
    shentsize: u64,
    shnum: u64,
    is64: bool,
    little: bool,
}

/// Checks a file of `len` bytes from its first `bytes` (the header and the program header
/// table, or all of it).
fn check_bytes(bytes: &[u8], len: u64) -> Result<(), String> {
    if !bytes.starts_with(b"\x7fELF") {
        return Ok(());
    }
    if bytes.len() < IDENT_LEN {
        return Err(truncated(len, 64));
    }
    let header = Header::read(bytes).ok_or_else(|| truncated(len, 64))?;
    let end_of = |offset: u64, size: u64| offset.saturating_add(size);

    let ph_end = end_of(header.phoff, header.phentsize.saturating_mul(header.phnum));
    if ph_end > len {
        return Err(truncated(len, ph_end));
    }
    let mut needed = ph_end;
    for i in 0..header.phnum {
        let at = (header.phoff + i * header.phentsize) as usize;
        let (kind, offset, filesz) = header
            .segment(bytes, at)
            .ok_or_else(|| truncated(len, needed))?;
        if kind == PT_LOAD {
            needed = needed.max(end_of(offset, filesz));
        }
    }
    if header.shoff != 0 {
        needed = needed.max(end_of(
            header.shoff,
            header.shentsize.saturating_mul(header.shnum),
        ));
    }
    if needed > len {
        return Err(truncated(len, needed));
    }
    Ok(())
}

fn truncated(len: u64, needed: u64) -> String {
    format!(
        "the file is incomplete: it is {len} bytes, but its ELF headers describe at least {needed}; \
         it was cut short or is still being written. Wait until the build or copy has finished \
         (or rebuild it), then load it again"
    )
}

impl Header {
    fn read(b: &[u8]) -> Option<Header> {
        if b.len() < IDENT_LEN || !b.starts_with(b"\x7fELF") {
            return None;
        }
        let is64 = match b[4] {
            1 => false,
            2 => true,
            _ => return None,
        };
        let little = b[5] != 2;
        let r = Reader { b, little };
        Some(if is64 {
            Header {
                phoff: r.u64(0x20)?,
                shoff: r.u64(0x28)?,
                phentsize: r.u16(0x36)?,
                phnum: r.u16(0x38)?,
                shentsize: r.u16(0x3A)?,
                shnum: r.u16(0x3C)?,
                is64,
                little,
            }
        } else {
            Header {
                phoff: r.u32(0x1C)?,
                shoff: r.u32(0x20)?,
                phentsize: r.u16(0x2A)?,
                phnum: r.u16(0x2C)?,
                shentsize: r.u16(0x2E)?,
                shnum: r.u16(0x30)?,
                is64,
                little,
            }
        })
    }

    /// (p_type, p_offset, p_filesz) of the program header at byte `at`.
    fn segment(&self, b: &[u8], at: usize) -> Option<(u32, u64, u64)> {
        let r = Reader {
            b,
            little: self.little,
        };
        let kind = r.u32(at)? as u32;
        if self.is64 {
            Some((kind, r.u64(at + 0x08)?, r.u64(at + 0x20)?))
        } else {
            Some((kind, r.u32(at + 0x04)?, r.u32(at + 0x10)?))
        }
    }
}

/// Fixed-width reads in the file's byte order; `None` past the end.
struct Reader<'a> {
    b: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    /// The unsigned integer of `width` bytes at `at`, in the file's byte order.
    fn uint(&self, at: usize, width: usize) -> Option<u64> {
        let bytes = self.b.get(at..at.checked_add(width)?)?;
        let push = |n: u64, b: &u8| n << 8 | u64::from(*b);
        Some(if self.little {
            bytes.iter().rev().fold(0, push)
        } else {
            bytes.iter().fold(0, push)
        })
    }

    fn u16(&self, at: usize) -> Option<u64> {
        self.uint(at, 2)
    }

    fn u32(&self, at: usize) -> Option<u64> {
        self.uint(at, 4)
    }

    fn u64(&self, at: usize) -> Option<u64> {
        self.uint(at, 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary itself: a complete ELF file.
    fn own_exe() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn a_whole_file_passes() {
        let whole = own_exe();
        check_bytes(&whole, whole.len() as u64).unwrap();
    }

    #[test]
    fn a_file_cut_short_is_refused_at_any_length() {
        let whole = own_exe();
        for keep in [whole.len() / 3, whole.len() - 1, 100, 40] {
            let err = check_bytes(&whole[..keep], keep as u64).unwrap_err();
            assert!(err.contains("incomplete"), "{keep}: {err}");
            assert!(err.contains(&format!("it is {keep} bytes")), "{err}");
        }
    }

    #[test]
    fn a_file_that_is_not_elf_is_left_to_the_dynamic_loader() {
        check_bytes(b"not a library at all", 20).unwrap();
        check_bytes(b"", 0).unwrap();
        assert!(
            check_bytes(b"\x7fELF\x02", 5)
                .unwrap_err()
                .contains("it is 5 bytes")
        );
    }

    #[test]
    fn headers_pointing_past_the_end_do_not_overflow() {
        let mut whole = own_exe();
        // e_phoff = u64::MAX: the table cannot lie inside the file.
        whole[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        let len = whole.len() as u64;
        assert!(check_bytes(&whole, len).unwrap_err().contains("incomplete"));
    }
}
