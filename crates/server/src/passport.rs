//! `fleetpass passport verify`: an auditor's offline check of a scan passport, from
//! files or from a share link. The checking is `fleetpass_domain::passport`; this
//! module only reads files, fetches a share link's artifacts and reports.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use fleetpass_domain::passport::{VerifiedPassport, verify_passport};

/// `fleetpass passport …`.
#[derive(Debug, Subcommand)]
pub enum PassportCommand {
    /// Verify a scan passport: its signature against the JWKS and, when given, the
    /// bundle's SHA-256. Exit 0 only when everything checks.
    ///
    /// Either a share link (`fleetpass passport verify https://…/share/fps_…`, which
    /// fetches the passport, the bundle and the server's JWKS) or files
    /// (`--passport FILE --jwks FILE [--bundle FILE]`).
    Verify(VerifyArgs),
}

/// What to verify.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A share link (`https://…/share/fps_…`) granting the passport.
    #[arg(required_unless_present = "passport", conflicts_with = "passport")]
    pub url: Option<String>,
    /// The passport: the compact JWS, or the JSON `GET …/passport` answers.
    #[arg(long, value_name = "FILE", requires = "jwks")]
    pub passport: Option<PathBuf>,
    /// The JSON Web Key Set (`GET /.well-known/jwks.json`). With a share link, use
    /// these keys instead of fetching the server's.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// The bundle: the JSON `GET …/bundle` answers, or its `bundle` member.
    #[arg(long, value_name = "FILE", requires = "passport")]
    pub bundle: Option<PathBuf>,
}

/// Runs the command: prints one line and answers the exit code (0 verified, 1 not).
pub fn run(command: PassportCommand) -> ExitCode {
    let PassportCommand::Verify(args) = command;
    match verify(args) {
        Ok(verified) => {
            println!("{}", describe(&verified));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("passport NOT verified: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<VerifiedPassport> {
    let pinned_jwks = args
        .jwks
        .as_ref()
        .map(|path| read_text(path, "--jwks"))
        .transpose()?;
    let (passport, jwks, bundle) = match (&args.url, &args.passport) {
        (Some(url), _) => {
            let fetched = fetch_share(url, pinned_jwks.is_none())?;
            (
                fetched.passport,
                pinned_jwks.or(fetched.jwks).unwrap_or_default(),
                Some(fetched.bundle),
            )
        }
        (None, Some(path)) => (
            read_text(path, "--passport")?,
            pinned_jwks.context("--jwks FILE is required with --passport")?,
            args.bundle
                .as_ref()
                .map(|path| {
                    std::fs::read(path)
                        .with_context(|| format!("cannot read --bundle {}", path.display()))
                })
                .transpose()?,
        ),
        (None, None) => anyhow::bail!("give a share link or --passport FILE --jwks FILE"),
    };
    Ok(verify_passport(&passport, &jwks, bundle.as_deref())?)
}

fn read_text(path: &std::path::Path, flag: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {flag} {}", path.display()))
}

fn describe(v: &VerifiedPassport) -> String {
    let c = &v.claims;
    let bundle = if v.bundle_checked {
        format!("bundle sha256 {} matches", c.bundle_sha256)
    } else {
        "bundle not checked (no --bundle)".to_owned()
    };
    // Names as the passport states them (signed); older passports carry ids only.
    let named = |name: &Option<String>, id: &str| match name {
        Some(name) => format!("{name:?} ({id})"),
        None => id.to_owned(),
    };
    format!(
        "passport verified: {} scan {} of fleet {} (tenant {}, environment {}), completed {}, \
         {} assets, {} findings; signed by key {}; {bundle}",
        c.scenario.as_str(),
        c.scan_id,
        named(&c.fleet_name, &c.fleet_id),
        named(&c.tenant_name, &c.tenant_id),
        c.environment_id,
        c.completed_at,
        c.counts.assets,
        c.counts.findings,
        v.kid,
    )
}

struct Fetched {
    /// The passport artifact (with the bundle in it, from a server that knows
    /// `?include=bundle`).
    passport: String,
    jwks: Option<String>,
    /// The bundle: the same document, or from `…/bundle` of an older server.
    bundle: Vec<u8>,
}

/// Fetches a share link's passport with its bundle, in one access of the link
/// (`…/passport?include=bundle`), and the JWKS of the server that published it (the
/// part of the URL before `/share/`).
fn fetch_share(url: &str, with_jwks: bool) -> anyhow::Result<Fetched> {
    let url = url.trim_end_matches('/');
    let (base, token) = url
        .rsplit_once("/share/")
        .filter(|(base, token)| !base.is_empty() && !token.is_empty() && !token.contains('/'))
        .context("not a share link: expected https://…/share/fps_…")?;
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        anyhow::bail!("not a share link: expected an http(s) URL");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .user_agent(concat!("fleetpass-verify/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        let share = format!("{base}/share/{token}");
        let passport = get(
            &client,
            &format!("{share}/passport?include=bundle"),
            "the passport",
        )
        .await?;
        // A server from before `?include=bundle` ignores it: then the bundle takes a
        // second access, as it always did.
        let has_bundle = serde_json::from_slice::<serde_json::Value>(&passport)
            .is_ok_and(|doc| doc.get("bundle").is_some());
        let bundle = if has_bundle {
            passport.clone()
        } else {
            get(&client, &format!("{share}/bundle"), "the bundle").await?
        };
        let jwks = if with_jwks {
            let keys = get(
                &client,
                &format!("{base}/.well-known/jwks.json"),
                "the JWKS",
            )
            .await?;
            Some(String::from_utf8(keys).context("the JWKS is not UTF-8")?)
        } else {
            None
        };
        Ok(Fetched {
            passport: String::from_utf8(passport).context("the passport is not UTF-8")?,
            jwks,
            bundle,
        })
    })
}

/// GETs `url`; a non-2xx answer becomes an error carrying the server's message (never
/// the URL, which holds the share token).
async fn get(client: &reqwest::Client, url: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let res = client
        .get(url)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot fetch {what}: {}", e.without_url()))?;
    let status = res.status();
    let body = res
        .bytes()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read {what}: {}", e.without_url()))?;
    if !status.is_success() {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| status.to_string());
        anyhow::bail!("cannot fetch {what}: the server answered {status}: {message}");
    }
    Ok(body.to_vec())
}
