//! Round trip of the `Hello` RPC over the daemon's Unix socket: `cargo bench --bench hello_rtt`.
//!
//! Starts a real `hoardd` on a temp store, connects like the client does, and times 5,000
//! sequential `Hello` calls after 500 warm-up calls. Prints median, p90, p99 and mean.

use std::time::{Duration, Instant};

use hoard_proto::v1::HelloRequest;
use hoard_proto::v1::hoard_client::HoardClient;

fn main() {
    let dir = std::env::temp_dir().join(format!("hoard-hello-bench-{}", std::process::id()));
    let store = dir.join("store");
    let runtime = dir.join("run");
    std::fs::create_dir_all(&store).unwrap();
    let store = store.canonicalize().unwrap();
    let mut daemon = std::process::Command::new(env!("CARGO_BIN_EXE_hoardd"))
        .arg("--store-dir")
        .arg(&store)
        .env("XDG_RUNTIME_DIR", &runtime)
        .env("HOARD_IDLE_TIMEOUT", "60")
        .spawn()
        .expect("start hoardd");
    // SAFETY: set before any thread reads the environment.
    unsafe { std::env::set_var("XDG_RUNTIME_DIR", &runtime) };
    let socket = hoard_proto::socket_path(&store);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut samples = rt.block_on(async {
        let channel = hoard_proto::uds_channel(&socket, Duration::from_secs(5))
            .await
            .expect("connect");
        let mut client = HoardClient::new(channel);
        let req = || HelloRequest {
            protocol_version: hoard_proto::PROTOCOL_VERSION.into(),
            client_version: "bench".into(),
        };
        for _ in 0..500 {
            client.hello(req()).await.unwrap();
        }
        let mut samples = Vec::with_capacity(5000);
        for _ in 0..5000 {
            let t = Instant::now();
            client.hello(req()).await.unwrap();
            samples.push(t.elapsed());
        }
        samples
    });
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "Hello round trip over the Unix socket, {} calls: median {:?}, p90 {:?}, p99 {:?}, mean {:?}",
        samples.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        mean
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
