//! Memory for the large arrays that every lookup reads at random (the index slots and the
//! record lines of a table): an anonymous memory map that Linux is asked to back with
//! transparent huge pages (`MADV_HUGEPAGE`), so that a lookup in tables of many MiB does not
//! also miss the TLB at every read. Small arrays, other systems and failed maps use the heap.

use std::fmt;
use std::ops::{Deref, DerefMut};

/// Arrays below this size stay on the heap (a huge page is 2 MiB).
const MAP_MIN: usize = 2 << 20;

/// A zero-initialised byte array, possibly on huge pages.
pub(crate) struct Pages(Store);

enum Store {
    Heap(Box<[u8]>),
    Map(memmap2::MmapMut),
}

impl Pages {
    /// `len` zero bytes.
    pub(crate) fn zeroed(len: usize) -> Pages {
        if len >= MAP_MIN {
            if let Ok(map) = memmap2::MmapMut::map_anon(len) {
                // Only a hint: without transparent huge pages the map works the same.
                #[cfg(target_os = "linux")]
                let _ = map.advise(memmap2::Advice::HugePage);
                return Pages(Store::Map(map));
            }
        }
        Pages(Store::Heap(vec![0; len].into()))
    }
}

impl Deref for Pages {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Store::Heap(bytes) => bytes,
            Store::Map(map) => map,
        }
    }
}

impl DerefMut for Pages {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Store::Heap(bytes) => bytes,
            Store::Map(map) => map,
        }
    }
}

impl Clone for Pages {
    fn clone(&self) -> Pages {
        let mut copy = Pages::zeroed(self.len());
        copy.copy_from_slice(self);
        copy
    }
}

impl fmt::Debug for Pages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("len", &self.len())
            .field("mapped", &matches!(self.0, Store::Map(_)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_arrays_are_zeroed_writable_and_clone() {
        for len in [0, 100, MAP_MIN + 5] {
            let mut pages = Pages::zeroed(len);
            assert_eq!(pages.len(), len);
            assert!(pages.iter().all(|&b| b == 0));
            if let Some(last) = pages.last_mut() {
                *last = 7;
            }
            let copy = pages.clone();
            assert_eq!(&copy[..], &pages[..]);
            assert_eq!(copy.last().copied(), len.checked_sub(1).map(|_| 7));
        }
    }
}
