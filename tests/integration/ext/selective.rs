//! Selective greylisting's passes in the numbers: after real filter runs against a stub DNS
//! server, `--stats` (JSON, text, Prometheus) and `--report` (JSON, text) count the DNSWL pass
//! under `dnswl` and the trusted client under `trusted client`.

use crate::dns_stub::{DnsStub, Reply, addresses};
use crate::support::filter::{Sandbox, T0};
use crate::support::{Outcome, grey_listing};

fn cli(sb: &Sandbox, args: &[&str]) -> Outcome {
    let mut cmd = grey_listing();
    cmd.env("GREY_LISTING_NOW", (T0 + 60).to_string())
        .args(args)
        .arg("--db")
        .arg(sb.location());
    let out = Outcome::from(cmd.output().unwrap(), args);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{args:?}");
    out
}

#[test]
fn stats_and_report_count_selective_passes() {
    let stub = DnsStub::start();
    stub.set(
        "7.100.51.198.wl.example",
        Reply::Addresses(addresses(&["127.0.0.2"])),
    );
    let sb = Sandbox::new();
    sb.cli(&[
        "-u",
        "-greylist-clients",
        "suspicious",
        "-dnswl-zones",
        "add:wl.example",
    ]);
    let resolver = stub.addr().to_string();
    for (env, verdict) in [
        (vec![("TCPREMOTEIP", "198.51.100.7")], "SKIP"),
        (
            vec![
                ("TCPREMOTEIP", "203.0.113.5"),
                ("TCPREMOTEHOST", "mx.sender.example"),
            ],
            "SKIP",
        ),
        (vec![("TCPREMOTEIP", "192.0.2.9")], "DEFER"),
    ] {
        let mut env = env;
        env.push(("GREY_LISTING_RESOLVER", &resolver));
        sb.handler(
            T0,
            &env,
            &["ctx", "alice@sender.example", "john@local.example"],
            "From: a@b\n\nbody\n",
        )
        .assert_verdict(verdict);
    }
    let stats = cli(&sb, &["--stats", "--json"]).json();
    assert_eq!(stats["reasons_24h"]["dnswl"], 1, "{stats}");
    assert_eq!(stats["reasons_24h"]["trusted client"], 1, "{stats}");
    assert_eq!(stats["reasons_24h"]["new"], 1, "{stats}");
    assert_eq!(stats["decisions_24h"]["pass"], 2, "{stats}");
    let text = cli(&sb, &["--stats"]).stdout;
    assert!(text.contains("trusted client"), "{text}");
    assert!(text.contains("dnswl"), "{text}");
    let prometheus = cli(&sb, &["--stats", "-prometheus"]).stdout;
    for reason in ["dnswl", "trusted client"] {
        let line = format!(
            "greylisting_store_decisions_total{{component=\"filter\",action=\"pass\",reason=\"{reason}\"}} 1\n"
        );
        assert!(prometheus.contains(&line), "{prometheus}");
    }
    let report = cli(&sb, &["--report", "--json"]).json();
    assert_eq!(
        report["selective_passes"],
        serde_json::json!({ "dnswl": 1, "trusted_client": 1 })
    );
    let passes: u64 = report["hourly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["pass"].as_u64().unwrap())
        .sum();
    assert_eq!(passes, 2);
    let text = cli(&sb, &["--report"]).stdout;
    assert!(
        text.ends_with(
            "\nPassed without greylisting by selective greylisting: 2 (1 dnswl, 1 trusted client).\n"
        ),
        "{text}"
    );
}
