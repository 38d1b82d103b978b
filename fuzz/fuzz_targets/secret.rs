//! Fuzzes secret parsing, `PlainSecret::parse` and `parse_kind` for every `SecretKind`,
//! on arbitrary text (the input, lossily made UTF-8): never a panic, both parsers agree,
//! a parsed secret re-renders to text that parses to the same kind and digest, and a
//! secret with one character changed is always refused.
#![no_main]

use fleetpass_domain::secret::{MalformedSecret, PlainSecret, SECRET_LEN, SecretKind};
use libfuzzer_sys::fuzz_target;

/// Parses `raw` every way there is and checks the answers against each other.
fn parse_everyway(raw: &str) {
    let any = PlainSecret::parse(raw);
    for kind in SecretKind::ALL {
        match (&any, PlainSecret::parse_kind(raw, kind)) {
            (Ok(s), Ok(k)) => assert!(s == &k && k.kind() == kind, "{raw:?} as {kind:?}"),
            (Ok(s), Err(e)) => assert!(
                s.kind() != kind
                    && e == MalformedSecret::WrongKind {
                        found: s.kind(),
                        expected: kind
                    },
                "{raw:?} parses but not as its own kind {kind:?}: {e:?}"
            ),
            (Err(e), Err(k)) => assert_eq!(*e, k, "{raw:?} as {kind:?}"),
            (Err(e), Ok(_)) => panic!("{raw:?} parses only as {kind:?}: {e:?}"),
        }
    }
    if let Ok(secret) = any {
        let text = secret.expose();
        assert_eq!(text, raw);
        assert_eq!(text.len(), SECRET_LEN);
        assert!(text.starts_with(secret.kind().prefix()));
        let again = PlainSecret::parse(text).expect("a parsed secret parses again");
        assert!(again.kind() == secret.kind() && again.digest() == secret.digest());
        // Never prints itself, whatever it holds.
        let body = &text[4..];
        assert!(!format!("{secret:?}").contains(body) && !format!("{secret}").contains(body));
        assert!(secret.hint().ends_with(&text[SECRET_LEN - 4..]));
    }
}

/// A secret built from `bytes` round-trips, and refuses every one-character typo.
fn typos_refused(bytes: &[u8]) {
    let (Some(&k), Some(random), Some(&[at, with])) =
        (bytes.first(), bytes.get(1..33), bytes.get(33..35))
    else {
        return;
    };
    let kind = SecretKind::ALL[usize::from(k) % SecretKind::ALL.len()];
    let random: [u8; 32] = random.try_into().expect("32 bytes");
    let secret = PlainSecret::from_random(kind, random);
    let text = secret.expose();
    let parsed = PlainSecret::parse_kind(text, kind).expect("a fresh secret parses");
    assert!(parsed.digest() == secret.digest());
    let at = usize::from(at) % SECRET_LEN;
    let mut typo = text.as_bytes().to_vec();
    if typo[at] == with || !with.is_ascii() {
        return;
    }
    typo[at] = with;
    let typo = String::from_utf8(typo).expect("ASCII");
    assert!(
        PlainSecret::parse(&typo).is_err(),
        "{text:?} with a typo at {at} parses"
    );
}

fuzz_target!(|data: &[u8]| {
    parse_everyway(&String::from_utf8_lossy(data));
    typos_refused(data);
});
