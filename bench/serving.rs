//! What one Flux request would cost under each way of serving it, measured in-process on a
//! generated fleet (no HTTP, no database), to choose between them:
//!
//! - computed per request from an in-memory model: merge the cluster's references with the
//!   catalog, serialise, and gzip when the client asks (Flux does);
//! - pre-serialised (what flux-catalog does): look the cluster up, hand out shared bytes;
//!   the merge, serialisation, gzip and hash are paid once per change instead.
//!
//!   python3 bench/fleet.py generate --size M > /tmp/fleet-M.json
//!   cargo bench --bench serving -- /tmp/fleet-M.json
//!
//! Single-threaded; figures are per cluster, averaged over the whole fleet several times.

use std::collections::HashMap;
use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flux_catalog::domain::impact::{FluxView, References};
use flux_catalog::domain::merge::FluxInputs;
use flux_catalog::domain::{Cluster, Environments, Rules};
use flux_catalog::http::catalog_document;
use sha2::{Digest, Sha256};

const PASSES: usize = 5;

/// Runs `work` over every cluster `PASSES` times; the mean time per cluster.
fn per_cluster(clusters: &[Cluster], mut work: impl FnMut(&Cluster) -> usize) -> Duration {
    let started = Instant::now();
    let mut sink = 0;
    for _ in 0..PASSES {
        for cluster in clusters {
            sink += work(black_box(cluster));
        }
    }
    black_box(sink);
    started.elapsed() / (PASSES * clusters.len()) as u32
}

fn gzip(body: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
    encoder.write_all(body).unwrap();
    encoder.finish().unwrap()
}

fn main() {
    // `cargo test --all-targets` runs this too, without a dataset: then there is nothing to
    // measure.
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!(
            "usage: cargo bench --bench serving -- DATASET.json (from bench/fleet.py generate)"
        );
        return;
    };
    let path = PathBuf::from(path);
    let text = std::fs::read(&path).expect("read the dataset");
    let rules = Rules {
        environments: Environments::new(["dev", "qa", "uat", "prod"].map(String::from).to_vec())
            .unwrap(),
    };
    let document = catalog_document::parse_document(&path, &text, &rules).expect("a valid fleet");
    let catalog = References {
        components: document
            .platform_components
            .iter()
            .map(|c| (c.id.clone(), c.clone()))
            .collect(),
        namespaces: document
            .namespaces
            .iter()
            .map(|n| (n.id.clone(), n.clone()))
            .collect(),
        rolebindings: document
            .rolebindings
            .iter()
            .map(|r| (r.id.clone(), r.clone()))
            .collect(),
    };
    let clusters = &document.clusters;
    let body = |cluster: &Cluster| {
        let inputs = FluxView::compute(cluster, &catalog).unwrap();
        FluxInputs {
            inputs: &inputs.platform_components,
        }
        .to_json()
    };

    let merge_only = per_cluster(clusters, |c| {
        FluxView::compute(c, &catalog)
            .unwrap()
            .platform_components
            .len()
    });
    let computed = per_cluster(clusters, |c| body(c).len());
    let computed_gzip = per_cluster(clusters, |c| {
        gzip(&body(c), flate2::Compression::fast()).len()
    });
    let rebuild = per_cluster(clusters, |c| {
        let plain = body(c);
        let compressed = gzip(&plain, flate2::Compression::fast());
        Sha256::digest(&plain)[0] as usize + compressed.len()
    });
    let rebuild_default_gzip = per_cluster(clusters, |c| {
        gzip(&body(c), flate2::Compression::default()).len()
    });

    let prepared: HashMap<String, (Bytes, Bytes)> = clusters
        .iter()
        .map(|c| {
            let plain = body(c);
            let compressed = gzip(&plain, flate2::Compression::fast());
            (
                c.cluster_dns.to_string(),
                (Bytes::from(plain), Bytes::from(compressed)),
            )
        })
        .collect();
    let names: Vec<String> = clusters.iter().map(|c| c.cluster_dns.to_string()).collect();
    let started = Instant::now();
    let mut sent = 0;
    for _ in 0..PASSES * 20 {
        for name in &names {
            let (plain, compressed) = prepared.get(black_box(name.as_str())).unwrap();
            sent += black_box(plain.clone()).len() + black_box(compressed.clone()).len();
        }
    }
    black_box(sent);
    let lookup = started.elapsed() / (PASSES * 20 * names.len()) as u32;

    let average =
        |f: fn(&(Bytes, Bytes)) -> usize| prepared.values().map(f).sum::<usize>() / prepared.len();
    let rate = |d: Duration| 1.0 / d.as_secs_f64();
    println!(
        "{} clusters, platform-components bodies of {} bytes on average ({} gzip-encoded)",
        clusters.len(),
        average(|(p, _)| p.len()),
        average(|(_, g)| g.len()),
    );
    println!("per request, computed from the in-memory model:");
    println!("  merge only                     {merge_only:>10.2?}");
    println!(
        "  merge + serialise              {computed:>10.2?}  ({:>9.0} requests/s per core)",
        rate(computed)
    );
    println!(
        "  merge + serialise + gzip       {computed_gzip:>10.2?}  ({:>9.0} requests/s per core)",
        rate(computed_gzip)
    );
    println!("per request, pre-serialised:");
    println!(
        "  lookup + shared bytes          {lookup:>10.2?}  ({:>9.0} requests/s per core)",
        rate(lookup)
    );
    println!("per change, pre-serialised (each cluster the change reaches):");
    println!("  merge + serialise + gzip + hash {rebuild:>9.2?}");
    println!("  the same gzip at level 6       {rebuild_default_gzip:>10.2?}  (without the hash)");
}
