//! Keyset pagination: a page size and an opaque cursor.
//!
//! Ids are UUID v7, so ordering by id *is* ordering by creation time; "newest first"
//! is `ORDER BY id DESC` and the cursor is the last id shown. A page costs one index
//! range scan wherever it starts.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use crate::value::{ValueError, int_newtype};

int_newtype!(
    /// How many items a page holds, 1-200 (default 50).
    PageLimit, 1, 200
);

impl Default for PageLimit {
    fn default() -> Self {
        Self(50)
    }
}

/// Where a page starts: after this id, in descending order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(Uuid);

impl Cursor {
    /// The cursor that continues after `last`.
    pub fn after(last: Uuid) -> Self {
        Self(last)
    }

    /// The id to continue after.
    pub fn last_id(self) -> Uuid {
        self.0
    }

    /// The opaque text form.
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// Parses the opaque text form.
    ///
    /// # Errors
    /// `ValueError::Format` when it is not a cursor this server handed out.
    pub fn decode(raw: &str) -> Result<Self, ValueError> {
        URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| Uuid::from_slice(&bytes).ok())
            .map(Self)
            .ok_or(ValueError::Format {
                expected: "a nextCursor value from a previous page",
            })
    }
}

/// A request for one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PageRequest {
    /// The page size.
    pub limit: PageLimit,
    /// Where to start; `None` for the newest.
    pub cursor: Option<Cursor>,
}

/// One page of results, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched newest first: the extra row only
    /// says that more exist. `id_of` reads a row's id for the cursor.
    pub fn from_overfetch(mut rows: Vec<T>, limit: PageLimit, id_of: impl Fn(&T) -> Uuid) -> Self {
        let limit = limit.get() as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| Cursor::after(id_of(last)))
        } else {
            None
        };
        Self { items: rows, next }
    }

    /// Maps the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor::after(Uuid::from_u128(42));
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        assert!(Cursor::decode("not a cursor").is_err());
        assert!(Cursor::decode("").is_err());
    }

    #[test]
    fn overfetch_decides_the_next_cursor() {
        let limit = PageLimit::new(2).unwrap();
        let ids = |n: u128| (1..=n).rev().map(Uuid::from_u128).collect::<Vec<_>>();
        let full = Page::from_overfetch(ids(3), limit, |u| *u);
        assert_eq!(full.items.len(), 2);
        assert_eq!(full.next, Some(Cursor::after(Uuid::from_u128(2))));
        let last = Page::from_overfetch(ids(2), limit, |u| *u);
        assert_eq!(last.next, None);
    }

    #[test]
    fn limit_bounds() {
        assert!(PageLimit::new(0).is_err());
        assert!(PageLimit::new(201).is_err());
        assert_eq!(PageLimit::default().get(), 50);
    }
}
