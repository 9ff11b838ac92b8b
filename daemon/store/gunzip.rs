//! Whole-buffer gunzip with libdeflate, for a tarball whose compressed bytes are all in memory
//! and whose unpacked size (the gzip trailer's ISIZE) is small enough to hold at once. On npm's
//! tarballs it takes about 0.55× the CPU of streaming inflate (zlib-rs through flate2), and the
//! unpacked bytes end up in one buffer the import reads files from without copying them.
//!
//! Must not: trust the trailer's size (it only sizes the buffer: a stream that unpacks to more
//! fails here, and the caller falls back to the streaming import, whose limits apply), or read
//! or write outside the buffers it is given.

use std::os::raw::c_void;

/// The unpacked size the gzip trailer claims (ISIZE: the size modulo 2^32), or None when
/// `body` is too short to be a gzip stream (10-byte header, 8-byte trailer).
pub fn claimed_size(body: &[u8]) -> Option<usize> {
    if body.len() < 18 || body[..2] != [0x1f, 0x8b] {
        return None;
    }
    let tail: [u8; 4] = body[body.len() - 4..].try_into().ok()?;
    usize::try_from(u32::from_le_bytes(tail)).ok()
}

/// One libdeflate decompressor, freed when dropped.
struct Decompressor(*mut libdeflate_sys::libdeflate_decompressor);

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0) }
    }
}

/// Unpack the first gzip member of `body` into a new buffer of at most `capacity` bytes (its
/// CRC and size checked by libdeflate); what follows the member is ignored, as the streaming
/// import ignores it. None on any error: corrupt data, or more than `capacity` bytes.
pub fn gunzip(body: &[u8], capacity: usize) -> Option<Vec<u8>> {
    // SAFETY: no arguments; a null return is checked.
    let d = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
    if d.is_null() {
        return None;
    }
    let d = Decompressor(d);
    let mut out: Vec<u8> = Vec::with_capacity(capacity);
    let (mut read, mut written) = (0usize, 0usize);
    // SAFETY: libdeflate reads at most `body.len()` bytes from `body` and writes at most
    // `capacity` bytes into `out`'s spare capacity (allocated above, never read before it is
    // written); `written` is how many it wrote, set only on success.
    let result = unsafe {
        libdeflate_sys::libdeflate_gzip_decompress_ex(
            d.0,
            body.as_ptr() as *const c_void,
            body.len(),
            out.as_mut_ptr() as *mut c_void,
            capacity,
            &mut read,
            &mut written,
        )
    };
    if result != libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS || written > capacity {
        return None;
    }
    // SAFETY: the first `written` bytes were initialized by libdeflate.
    unsafe { out.set_len(written) };
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn unpacks_whole_and_refuses_what_does_not_fit_or_is_corrupt() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let body = gz(&data);
        assert_eq!(claimed_size(&body), Some(data.len()));
        assert_eq!(gunzip(&body, data.len()).as_deref(), Some(&data[..]));
        // Trailing bytes after the member are ignored, as the streaming import ignores them.
        let mut trailing = body.clone();
        trailing.extend_from_slice(b"junk");
        assert_eq!(gunzip(&trailing, data.len()).as_deref(), Some(&data[..]));
        // A trailer that claims too little: it does not fit, so no answer.
        assert_eq!(gunzip(&body, data.len() - 1), None);
        // A flipped byte inside the deflate stream (or its CRC) fails.
        let mut bad = body.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        assert_eq!(gunzip(&bad, data.len()), None);
        // Truncated: fails.
        assert_eq!(gunzip(&body[..body.len() / 2], data.len()), None);
        assert_eq!(claimed_size(b"not gzip at all, long enough"), None);
    }
}
