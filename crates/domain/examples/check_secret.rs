//! Checks a Fleetpass secret's format and checksum before any lookup, as a secret
//! scanner or a client would: `cargo run -p fleetpass-domain --example check_secret [SECRET]`.
//!
//! Without an argument it checks a freshly made secret and a mistyped copy of it.

use fleetpass_domain::secret::{PlainSecret, SecretKind};

fn check(raw: &str) -> bool {
    match PlainSecret::parse(raw) {
        // `hint` is safe to show; `Display` would print only the prefix, never the text.
        Ok(secret) => {
            println!(
                "{}: a well-formed {:?} secret",
                secret.hint(),
                secret.kind()
            );
            true
        }
        Err(why) => {
            println!("refused without any lookup: the secret {why}");
            false
        }
    }
}

fn main() {
    if let Some(raw) = std::env::args().nth(1) {
        std::process::exit(if check(&raw) { 0 } else { 1 });
    }
    // The random bytes come from the caller: the domain draws no randomness.
    let secret = PlainSecret::from_random(SecretKind::Agent, [42; 32]);
    assert!(check(secret.expose()));
    let mut typo = secret.expose().to_owned();
    typo.replace_range(8..9, if &typo[8..9] == "x" { "y" } else { "x" });
    assert!(!check(&typo));
    // A stored secret is only ever its digest.
    assert_eq!(
        PlainSecret::parse(secret.expose()).map(|s| s.digest()),
        Ok(secret.digest())
    );
}
