//! `fleetpass audit verify`: an auditor's offline check of an audit-log export. The
//! checking is `fleetpass_domain::audit::chain::verify_chain`; this module only reads
//! the files and reports.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use fleetpass_domain::audit::chain::{VerifiedChain, verify_chain};

/// `fleetpass audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify an export of `GET /api/admin/audit-events/export`: the hash chain, that
    /// it ends at its checkpoint and, with `--jwks`, the checkpoint's signature. Exit 0
    /// only when everything checks.
    Verify(VerifyArgs),
}

/// What to verify.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The NDJSON export.
    pub export: PathBuf,
    /// The JSON Web Key Set (`GET /.well-known/jwks.json`); without it the
    /// checkpoint's signature is not checked.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
}

/// Runs the command: prints one line and answers the exit code (0 verified, 1 not).
pub fn run(command: AuditCommand) -> ExitCode {
    let AuditCommand::Verify(args) = command;
    match verify(&args) {
        Ok(verified) => {
            println!("{}", describe(&verified));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("audit export NOT verified: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn verify(args: &VerifyArgs) -> anyhow::Result<VerifiedChain> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("Failed to read {}", path.display()))
    };
    let export = read(&args.export)?;
    let jwks = args.jwks.as_ref().map(read).transpose()?;
    Ok(verify_chain(&export, jwks.as_deref())?)
}

fn describe(v: &VerifiedChain) -> String {
    let range = match v.first_seq {
        Some(first) => format!("seq {first}..={}", v.checkpoint.seq),
        None => "no events".to_owned(),
    };
    let signature = match &v.kid {
        Some(kid) => format!("checkpoint signed by {kid}"),
        None => "checkpoint signature NOT checked (no --jwks)".to_owned(),
    };
    format!(
        "audit export verified: tenant {}, {range} ({} events, {} redacted), head {} at {}, {signature}",
        v.checkpoint.tenant_id, v.events, v.redacted, v.checkpoint.head, v.checkpoint.at
    )
}
