//! Known-answer vectors for sealing with the master key (AES-256-GCM, the purpose as
//! associated data, stored as nonce ‖ ciphertext ‖ tag). The sealed vectors were made
//! outside Rust (Python's `cryptography`, `AESGCM(key).encrypt(nonce, plain, purpose)`),
//! so a change of the format — nonce length or place, the associated data, the cipher —
//! fails here rather than making every signing key in every database unopenable.

use fleetpass_ports::keys::MasterKey;
use fleetpass_ports::system::SequentialSecrets;

/// The key: bytes 0, 1, …, 31.
fn key() -> MasterKey {
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::try_from(i).expect("below 32");
    }
    MasterKey::from_bytes(bytes)
}

/// The purpose a signing key with `kid` "kid-1" is sealed for.
const PURPOSE: &str = "fleetpass/signing-key/kid-1";

const PLAIN: &[u8] = b"fleetpass known-answer plaintext";

/// [`PLAIN`] sealed for [`PURPOSE`] under nonce 00…00 (the first nonce of
/// `SequentialSecrets`, whose first 12 bytes are zero).
const SEALED_ZERO_NONCE: &str = "00000000000000000000000068d0d0bbc15ce2ce7b88c25b775bffb4b32d25244df3405fecffdaedb19a2522ea7c61fdb85298edf2aaced0ab42a5a2";

/// [`PLAIN`] sealed for [`PURPOSE`] under nonce 000102…0b.
const SEALED: &str = "000102030405060708090a0b216eb37eb195a368fe61fce5de9e1640e2b8f44395097f0c54068ceb690c78c6cef35451f42bd98d3ce8713e0342b2cb";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sealing_is_nonce_then_ciphertext_then_tag() {
    let sealed = key().seal(&SequentialSecrets::default(), PURPOSE, PLAIN);
    assert_eq!(hex(&sealed), SEALED_ZERO_NONCE);
}

#[test]
fn a_committed_vector_opens() {
    assert_eq!(key().open(PURPOSE, &unhex(SEALED)).expect("opens"), PLAIN);
    assert_eq!(
        key()
            .open(PURPOSE, &unhex(SEALED_ZERO_NONCE))
            .expect("opens"),
        PLAIN
    );
}

#[test]
fn sealed_then_opened_round_trips() {
    let sealed = key().seal(&SequentialSecrets::default(), PURPOSE, b"");
    assert_eq!(key().open(PURPOSE, &sealed).expect("opens"), b"");
}

#[test]
fn another_purpose_does_not_open() {
    let sealed = unhex(SEALED);
    assert!(key().open("fleetpass/signing-key/kid-2", &sealed).is_err());
    assert!(key().open("", &sealed).is_err());
}

#[test]
fn another_key_does_not_open() {
    let other = MasterKey::from_bytes([7; 32]);
    assert!(other.open(PURPOSE, &unhex(SEALED)).is_err());
}

#[test]
fn any_tampered_byte_does_not_open() {
    let sealed = unhex(SEALED);
    // Every byte — nonce, ciphertext and tag — is covered.
    for i in 0..sealed.len() {
        let mut tampered = sealed.clone();
        tampered[i] ^= 0x01;
        assert!(
            key().open(PURPOSE, &tampered).is_err(),
            "a sealed value with byte {i} flipped opened"
        );
    }
    assert!(
        key().open(PURPOSE, &sealed[..sealed.len() - 1]).is_err(),
        "truncated"
    );
    assert!(
        key().open(PURPOSE, &sealed[..11]).is_err(),
        "shorter than a nonce"
    );
}
