//! The spine: daemon lifecycle, socket security, handshake, concurrency, reflection.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::context::*;
use crate::registry::{Fault, Pkg, Registry};

#[test]
fn status_never_starts_a_daemon_and_store_path_does() {
    let ctx = TestContext::new();
    let out = ctx.run(&["daemon", "status"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "no daemon: exit 3, as for an unreachable one"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("not running"));
    assert!(ctx.daemon_pid().is_none(), "daemon status started a daemon");

    let path = ctx.ok(&["store", "path"]);
    assert_eq!(path.trim(), ctx.store.display().to_string());
    let pid = ctx.daemon_pid().expect("store path starts a daemon");
    let out = ctx.ok(&["daemon", "status"]);
    assert!(out.contains(&format!("pid {pid}")), "{out}");

    // Socket 0600 in a 0700 directory.
    let sock = ctx.socket();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode");
    let dmode = std::fs::metadata(sock.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dmode, 0o700, "socket directory mode");
    // The daemon logs to a file in its state dir.
    assert!(ctx.log().contains("listening"), "log: {}", ctx.log());
}

#[test]
fn second_daemon_on_the_same_store_is_refused() {
    let ctx = TestContext::new();
    ctx.ok(&["daemon", "start"]);
    let first = ctx.daemon_pid().unwrap();
    let out = run_with_timeout(&mut ctx.hoardd(), Duration::from_secs(30));
    assert_eq!(
        out.status.code(),
        Some(75),
        "second daemon must exit 75: {}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("already serves") && err.contains(&first.to_string()),
        "{err}"
    );
    assert_eq!(
        ctx.daemon_pid(),
        Some(first),
        "the first daemon keeps running"
    );
}

#[test]
fn stale_socket_after_sigkill_is_recovered() {
    let ctx = TestContext::new();
    ctx.ok(&["daemon", "start"]);
    let pid = ctx.daemon_pid().unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(ctx.wait_daemon_gone(Duration::from_secs(10)));
    assert!(
        ctx.socket().exists(),
        "a SIGKILLed daemon leaves its socket behind"
    );
    let path = ctx.ok(&["store", "path"]);
    assert_eq!(path.trim(), ctx.store.display().to_string());
    let new = ctx.daemon_pid().unwrap();
    assert_ne!(new, pid);
}

#[test]
fn protocol_mismatch_restarts_the_daemon() {
    let ctx = TestContext::new();
    // An "old" daemon speaking protocol 0.9.0.
    let mut old = ctx.hoardd();
    old.env("HOARD_PROTOCOL_VERSION_OVERRIDE", "0.9.0")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = old.spawn().unwrap();
    assert!(eventually(Duration::from_secs(10), || ctx
        .socket()
        .exists()));
    let old_pid = child.id() as i32;
    let out = ctx.run(&["--verbose", "daemon", "start"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("0.9.0"), "{}", stderr(&out));
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the old daemon exits cleanly on Shutdown: {status}"
    );
    let new_pid = ctx.daemon_pid().unwrap();
    assert_ne!(new_pid, old_pid);
    assert!(
        ctx.ok(&["daemon", "status"])
            .contains(&format!("protocol {}", hoard_proto::PROTOCOL_VERSION))
    );
}

#[test]
fn idle_daemon_exits() {
    let ctx = TestContext::new().env("HOARD_IDLE_TIMEOUT", "1");
    ctx.ok(&["daemon", "start"]);
    assert!(ctx.daemon_pid().is_some());
    assert!(
        ctx.wait_daemon_gone(Duration::from_secs(15)),
        "idle daemon still running"
    );
    assert!(!ctx.socket().exists(), "socket removed on exit");
    assert!(
        ctx.log().contains("Idle"),
        "close reason logged: {}",
        ctx.log()
    );
}

#[test]
fn stop_and_restart() {
    let ctx = TestContext::new();
    ctx.ok(&["daemon", "start"]);
    let a = ctx.daemon_pid().unwrap();
    ctx.ok(&["daemon", "restart"]);
    let b = ctx.daemon_pid().unwrap();
    assert_ne!(a, b);
    assert!(ctx.ok(&["daemon", "stop"]).contains("stopped"));
    assert!(ctx.daemon_pid().is_none());
    assert!(ctx.ok(&["daemon", "logs"]).contains("ShutdownRpc"));
}

#[test]
fn sigterm_during_a_long_install_cancels_it_cleanly() {
    let reg = Registry::start();
    reg.publish(Pkg::new("slow", "1.0.0").file("big.bin", &vec![7u8; 256 * 1024], 0o644));
    // The tarball trickles in for far longer than the test waits.
    reg.fault(
        &Registry::tarball_path("slow", "1.0.0"),
        Fault {
            throttle: Some((1024, Duration::from_millis(200))),
            ..Default::default()
        },
    );
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(
        &json!({"name": "p", "version": "1.0.0", "dependencies": {"slow": "^1.0.0"}}),
    );
    let child = ctx.spawn(&["install"]);
    let tarball = Registry::tarball_path("slow", "1.0.0");
    assert!(
        eventually(Duration::from_secs(20), || reg.count(&tarball) > 0),
        "download never started"
    );
    let pid = ctx.daemon_pid().unwrap();
    let t = Instant::now();
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = wait_output(child, Duration::from_secs(30));
    assert!(
        ctx.wait_daemon_gone(Duration::from_secs(15)),
        "daemon did not exit on SIGTERM"
    );
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_eq!(
        out.status.code(),
        Some(1),
        "client reports the failure: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("the daemon is stopping; run the install again"),
        "{}",
        stderr(&out)
    );
    assert!(ctx.log().contains("SIGTERM"), "{}", ctx.log());
    // Nothing half-installed.
    assert!(!ctx.project.join("node_modules/slow").exists());
}

#[test]
fn connections_from_another_uid_are_refused() {
    if let Err(why) = can_act_as_nobody() {
        return skip("connections_from_another_uid_are_refused", &why);
    }
    let ctx = TestContext::new();
    ctx.ok(&["daemon", "start"]);
    // Open the path up so only the daemon's peer-credential check stands in the way.
    for d in [
        ctx.root.path().to_path_buf(),
        ctx.runtime.clone(),
        ctx.runtime.join("hoard"),
        ctx.store.clone(),
        ctx.home.clone(),
    ] {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::set_permissions(ctx.socket(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = ctx.hoard_as_nobody();
    cmd.env("HOARD_DAEMON_BIN", "/bin/false").current_dir("/");
    let out = run_with_timeout(cmd.args(["store", "path"]), Duration::from_secs(60));
    assert_eq!(
        out.status.code(),
        Some(3),
        "another uid must not get an answer: {}",
        stderr(&out)
    );
    assert!(
        eventually(Duration::from_secs(5), || ctx
            .log()
            .contains("refused a connection from another user")),
        "{}",
        ctx.log()
    );
}

#[test]
fn thirty_two_concurrent_clients_share_one_daemon() {
    let ctx = TestContext::new();
    let children: Vec<_> = (0..32)
        .map(|_| ctx.spawn(&["--json", "daemon", "start"]))
        .collect();
    let mut pids = std::collections::HashSet::new();
    for c in children {
        let out = wait_output(c, Duration::from_secs(60));
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        pids.insert(v["pid"].as_i64().unwrap());
    }
    assert_eq!(
        pids.len(),
        1,
        "all 32 clients must reach one daemon: {pids:?}"
    );
    assert_eq!(ctx.daemon_pid().map(|p| p as i64), pids.into_iter().next());
}

#[test]
fn reflection_and_health_are_served() {
    let ctx = TestContext::new();
    ctx.ok(&["daemon", "start"]);
    let sock = ctx.socket();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let channel = hoard_proto::uds_channel(&sock, std::time::Duration::from_secs(5))
            .await
            .expect("connect");
        let mut client = ServerReflectionClient::new(channel.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut resp = client
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let msg = resp.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = msg.message_response else {
            panic!("unexpected reflection answer")
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.contains(&"hoard.v1.Hoard".to_string()), "{names:?}");
        assert!(
            names.contains(&"grpc.health.v1.Health".to_string()),
            "{names:?}"
        );

        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "hoard.v1.Hoard".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    });
}

#[test]
fn usage_errors_exit_2_and_unreachable_exits_3() {
    let ctx = TestContext::new();
    let out = ctx.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_with_timeout(
        ctx.hoard()
            .env("HOARD_DAEMON_BIN", "/nonexistent/hoardd")
            .args(["store", "path"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent/hoardd"),
        "{}",
        stderr(&out)
    );
}

/// The crates a binary has code from: the first path component of every Rust symbol
/// (`_ZN<len><crate>…`, the legacy mangling rustc uses by default) in its bytes.
fn crates_in(binary: &str) -> std::collections::BTreeSet<String> {
    let bytes = std::fs::read(binary).unwrap();
    let mut out = std::collections::BTreeSet::new();
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(3).position(|w| w == b"_ZN") {
        let start = i + at + 3;
        i = start;
        let digits = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let Some(len) = std::str::from_utf8(&bytes[start..start + digits])
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
        else {
            continue;
        };
        let name = &bytes[start + digits..(start + digits + len).min(bytes.len())];
        if name.len() == len
            && !name.is_empty()
            && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        {
            out.insert(String::from_utf8_lossy(name).into_owned());
        }
    }
    out
}

#[test]
fn the_client_binary_links_no_heavy_dependencies() {
    // What the daemon needs and the thin client must not carry.
    const DAEMON_ONLY: &[&str] = &[
        "rusqlite",
        "libsqlite3_sys",
        "reqwest",
        "rustls",
        "tar",
        "flate2",
        "sha2",
        "reflink_copy",
        "notify",
        "rayon",
    ];
    let client = crates_in(HOARD);
    let daemon = crates_in(HOARDD);
    // Control: the same reading finds these crates in the daemon, and the client's own.
    for c in ["rusqlite", "reqwest", "tar", "flate2", "rayon"] {
        assert!(daemon.contains(c), "{c} not seen in hoardd: {daemon:?}");
    }
    for c in ["clap_builder", "tonic", "tokio"] {
        assert!(client.contains(c), "{c} not seen in hoard: {client:?}");
    }
    let heavy: Vec<&&str> = DAEMON_ONLY
        .iter()
        .filter(|c| client.contains(**c))
        .collect();
    assert!(
        heavy.is_empty(),
        "the thin client links {heavy:?}; all its crates: {client:?}"
    );
}

#[test]
fn an_older_minor_daemon_is_replaced_too() {
    let ctx = TestContext::new();
    // Same major, older minor: compatible, but it may lack RPCs this client uses.
    let mut old = ctx.hoardd();
    old.env("HOARD_PROTOCOL_VERSION_OVERRIDE", "1.0.0")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = old.spawn().unwrap();
    assert!(eventually(Duration::from_secs(10), || ctx
        .socket()
        .exists()));
    ctx.ok(&["daemon", "start"]);
    assert!(child.wait().unwrap().success());
    assert_ne!(ctx.daemon_pid(), Some(child.id() as i32));
}

#[test]
fn tools_find_the_daemon_without_hashing_and_a_closed_stdout_is_quiet() {
    let ctx = TestContext::new();
    // The default store (no HOARD_STORE_DIR): its daemon writes the pointer file.
    let data = ctx.home.join("data");
    let default_store = |args: &[&str]| {
        let mut c = ctx.hoard();
        c.env_remove("HOARD_STORE_DIR")
            .env("XDG_DATA_HOME", &data)
            .args(args);
        run_with_timeout(&mut c, Duration::from_secs(60))
    };
    let out = default_store(&["--json", "daemon", "ensure"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let store = data.join("hoard/store").canonicalize().unwrap();
    assert_eq!(v["store"], serde_json::json!(store.display().to_string()));
    assert!(
        v["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "Dashboard"),
        "{v}"
    );
    let pointer = ctx.runtime.join("hoard/default.json");
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(&pointer).unwrap()).unwrap();
    assert_eq!(p["socket"], v["socket"]);
    assert_eq!(p["pid"], v["pid"]);
    assert!(std::path::Path::new(p["socket"].as_str().unwrap()).exists());
    // A reader that goes away (`| head -1`): no panic, hoard just ends.
    let mut c = ctx.hoard();
    c.env_remove("HOARD_STORE_DIR")
        .env("XDG_DATA_HOME", &data)
        .args(["daemon", "status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stdout.take());
    let out = wait_output(child, Duration::from_secs(30));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    let out = default_store(&["daemon", "stop"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        eventually(Duration::from_secs(10), || !pointer.exists()),
        "the pointer file goes with the daemon"
    );
}

#[test]
fn hello_says_what_it_serves_and_incompatible_clients_are_refused() {
    let ctx = TestContext::new();
    ctx.ok(&["daemon", "start"]);
    let sock = ctx.socket();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let channel = hoard_proto::uds_channel(&sock, Duration::from_secs(5))
            .await
            .expect("connect");
        let mut client = hoard_proto::v1::hoard_client::HoardClient::new(channel);
        let hello = |v: &str| hoard_proto::v1::HelloRequest {
            protocol_version: v.into(),
            client_version: "test".into(),
        };
        let same = client
            .hello(hello(hoard_proto::PROTOCOL_VERSION))
            .await
            .unwrap()
            .into_inner();
        assert!(same.compatible && same.upgrade_required == Some(false));
        assert!(
            same.capabilities.iter().any(|c| c == "Install"),
            "{:?}",
            same.capabilities
        );
        let newer = client.hello(hello("1.99.0")).await.unwrap().into_inner();
        assert!(newer.compatible && newer.upgrade_required == Some(true));
        let other = client.hello(hello("2.0.0")).await.unwrap().into_inner();
        assert!(!other.compatible);
        // A call naming an incompatible protocol is refused; naming a compatible one, served.
        for (v, ok) in [("2.0.0", false), (hoard_proto::PROTOCOL_VERSION, true)] {
            let mut req = tonic::Request::new(hoard_proto::v1::StatusRequest {});
            req.metadata_mut()
                .insert(hoard_proto::PROTOCOL_METADATA_KEY, v.parse().unwrap());
            let r = client.status(req).await;
            match (ok, r) {
                (true, Ok(_)) => {}
                (false, Err(s)) => {
                    assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
                    assert!(s.message().contains("2.0.0"), "{s:?}");
                }
                (ok, r) => panic!("{v}: expected ok={ok}, got {r:?}"),
            }
        }
    });
}
