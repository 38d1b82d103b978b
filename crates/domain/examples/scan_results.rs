//! Builds scan results the way an agent does, checks them with the server's own rules
//! and derives what the server will attest: `cargo run -p fleetpass-domain --example scan_results`.

use fleetpass_domain::scan::{Asset, Finding, MaxAssets, ScanResults, Severity, Software};

fn main() {
    let results = ScanResults {
        assets: vec![Asset {
            hostname: "db-1.internal".into(),
            ip: "10.0.0.5".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            open_ports: vec![22, 5432],
            listeners: vec![],
            os_hostname: None,
            software: vec![
                Software {
                    name: "openssh-server".into(),
                    version: "1:9.2p1-2".into(),
                },
                Software {
                    name: "postgresql-15".into(),
                    version: "15.4-0+deb12u1".into(),
                },
            ],
        }],
        findings: vec![Finding {
            severity: Severity::Medium,
            title: "sshd accepts password authentication".into(),
            asset_hostname: Some("db-1.internal".into()),
            detail: None,
        }],
    };
    // The scan's maxAssets, as the claim states it; the server runs this same check.
    let max_assets = MaxAssets::new(10).expect("within 1-100000");
    if let Err(invalid) = results.validate(Some(max_assets)) {
        eprintln!("would be refused: {} {}", invalid.path, invalid.message);
        std::process::exit(1);
    }
    // The request body of POST /agent/scans/{id}/results.
    println!("{}", serde_json::to_string(&results).expect("serializable"));
    // The bundle and its digest, which the scan's passport will attest.
    let (bundle, sha256) = results.bundle().expect("validated results serialize");
    println!("bundle: {} bytes, sha256 {sha256}", bundle.len());
    let report = results.report();
    println!(
        "report: {} assets, {} open ports, {} packages, {} findings",
        report.counts.assets,
        report.counts.open_ports,
        report.counts.software,
        report.counts.findings
    );
    assert_eq!(
        fleetpass_domain::passport::bundle_sha256(bundle.as_bytes()),
        Ok(sha256.into())
    );
}
