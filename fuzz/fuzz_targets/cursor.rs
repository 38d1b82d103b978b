//! Fuzzes page cursors, `fleetpass_domain::page::Cursor::decode`, and the list
//! parameters every list route reads (`ListParams::page`, `?limit=&cursor=`) on
//! arbitrary text: never a panic; a decoded cursor re-encodes to the very text it came
//! from and decodes again to the same cursor.
#![no_main]

use fleetpass_domain::page::Cursor;
use fleetpass_http::extract::ListParams;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(cursor) = Cursor::decode(&raw) {
        let text = cursor.encode();
        assert_eq!(Cursor::decode(&text), Ok(cursor));
        // One text per cursor: the decoder refuses padding and stray trailing bits.
        assert_eq!(text, raw, "a cursor with two texts");
    }
    // As the list routes see them: `limit` before the first `&`, `cursor` after it.
    let (limit, cursor) = raw.split_once('&').unwrap_or((&raw, ""));
    let params = ListParams {
        limit: Some(limit.to_owned()).filter(|l| !l.is_empty()),
        cursor: Some(cursor.to_owned()).filter(|c| !c.is_empty()),
    };
    if let Ok(page) = params.page() {
        assert!((1..=200).contains(&page.limit.get()));
        assert_eq!(page.cursor.is_some(), params.cursor.is_some());
    }
    // Any id makes a cursor that round-trips.
    if let Some(bytes) = data.get(..16) {
        let id = uuid::Uuid::from_slice(bytes).expect("16 bytes");
        let cursor = Cursor::after(id);
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
    }
});
