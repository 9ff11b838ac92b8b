//! Stock gRPC clients with their default channels: Python's grpcio and Node's @grpc/grpc-js,
//! installed once into the target folder (pip into a venv, npm into a folder), list the daemon's
//! services by reflection, check health and call Hello. grpcio sends the socket path as
//! `:authority`, which only the patched h2 (vendor/README.md) accepts. Skipped with a printed
//! reason when python3 or node is missing or the packages cannot be installed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::context::*;

fn tools_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("grpc-clients")
}

fn ok(cmd: &mut Command) -> bool {
    cmd.status().is_ok_and(|s| s.success())
}

/// A venv with grpcio, its reflection and health packages; None when it cannot be made.
fn python(test: &str) -> Option<PathBuf> {
    let venv = tools_dir().join("venv");
    let py = venv.join("bin/python");
    let ready = venv.join("ready");
    if ready.exists() {
        return Some(py);
    }
    if !which("python3") {
        skip(test, "python3 is not installed");
        return None;
    }
    let made = ok(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        && ok(Command::new(venv.join("bin/pip")).args([
            "install",
            "-q",
            "grpcio",
            "grpcio-reflection",
            "grpcio-health-checking",
            "protobuf",
        ]));
    if !made {
        let _ = std::fs::remove_dir_all(&venv);
        skip(
            test,
            "could not install grpcio from PyPI (needs python3-venv and the network)",
        );
        return None;
    }
    let _ = std::fs::write(&ready, "");
    Some(py)
}

/// node_modules with @grpc/grpc-js, proto-loader and the reflection and health protos.
fn node_modules(test: &str) -> Option<PathBuf> {
    // Tests that need it run in parallel: one installs, the others wait for it.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tools_dir().join("node");
    let nm = dir.join("node_modules");
    if dir.join("ready").exists() {
        return Some(nm);
    }
    if !which("node") || !which("npm") {
        skip(test, "node and npm are not installed");
        return None;
    }
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("package.json"), "{\"private\": true}\n");
    let made = ok(Command::new("npm")
        .args(["install", "--silent", "--no-audit", "--no-fund"])
        .args([
            "@grpc/grpc-js",
            "@grpc/proto-loader",
            "@grpc/reflection",
            "grpc-health-check",
            "protobufjs",
        ])
        .current_dir(&dir));
    if !made {
        skip(
            test,
            "could not install @grpc/grpc-js from the npm registry",
        );
        return None;
    }
    let _ = std::fs::write(dir.join("ready"), "");
    Some(nm)
}

fn running_daemon() -> (TestContext, PathBuf) {
    let ctx = TestContext::new();
    ctx.ok(&["daemon", "start"]);
    let sock = ctx.socket();
    assert!(eventually(Duration::from_secs(10), || sock.exists()));
    (ctx, sock)
}

#[test]
fn python_grpcio_default_channel_lists_checks_and_says_hello() {
    let test = "python_grpcio_default_channel_lists_checks_and_says_hello";
    let Some(py) = python(test) else { return };
    let (ctx, sock) = running_daemon();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/grpc_reflection_check.py");
    let out = run_with_timeout(
        Command::new(py).arg(script).arg(&sock),
        Duration::from_secs(60),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("hoard.v1.Hoard") && text.contains("grpc.health.v1.Health"),
        "{text}"
    );
    assert!(text.contains("health: SERVING"), "{text}");
    assert!(
        text.contains(&format!("store {}", ctx.store.display())),
        "{text}"
    );
}

#[test]
fn node_grpc_js_default_channel_lists_checks_and_says_hello() {
    let test = "node_grpc_js_default_channel_lists_checks_and_says_hello";
    let Some(nm) = node_modules(test) else { return };
    let (ctx, sock) = running_daemon();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run_with_timeout(
        Command::new("node")
            .arg(here.join("tests/it/clients/grpcjs_default_channel.js"))
            .arg(&sock)
            .arg(here.join("proto"))
            .arg(&nm),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let services: Vec<&str> = v["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(services.contains(&"hoard.v1.Hoard") && services.contains(&"grpc.health.v1.Health"));
    assert_eq!(v["health"], "SERVING");
    assert_eq!(v["compatible"], true);
    assert_eq!(v["store"], ctx.store.display().to_string());
}

#[test]
fn errors_carry_a_stable_reason_for_stock_clients() {
    let test = "clients::errors_carry_a_stable_reason_for_stock_clients";
    let Some(nm) = node_modules(test) else { return };
    let reg = crate::registry::Registry::start();
    reg.publish(crate::registry::Pkg::new("lib", "1.0.0"));
    let (ctx, sock) = running_daemon();
    ctx.write_project(&serde_json::json!({"name": "app", "version": "1.0.0",
                                          "dependencies": {"lib": "^9.0.0"}}));
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = ctx.project.canonicalize().unwrap();
    let out = run_with_timeout(
        Command::new("node")
            .arg(here.join("tests/it/clients/grpcjs_error_details.js"))
            .arg(&sock)
            .arg(here.join("proto"))
            .arg(&nm)
            .arg(&project)
            .arg(&reg.url),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["code"], 9, "FAILED_PRECONDITION: {v}");
    let info = v["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "google.rpc.ErrorInfo")
        .unwrap_or_else(|| panic!("no ErrorInfo: {v}"));
    assert_eq!(info["value"]["reason"], "NO_MATCHING_VERSION", "{v}");
    assert_eq!(info["value"]["domain"], "hoard.dev");
    assert_eq!(info["value"]["metadata"]["package"], "lib", "{v}");
    assert_eq!(info["value"]["metadata"]["range"], "^9.0.0", "{v}");
}

/// examples/node-client, copied beside the other tools with its packages installed (once per
/// version of its package.json).
fn node_example(test: &str) -> Option<PathBuf> {
    let dir = tools_dir().join("node-client");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node-client");
    let wanted = std::fs::read(src.join("package.json")).unwrap();
    if std::fs::read(dir.join("ready")).ok().as_ref() == Some(&wanted) {
        return Some(dir);
    }
    if !which("node") || !which("npm") {
        skip(test, "node and npm are not installed");
        return None;
    }
    let _ = std::fs::create_dir_all(&dir);
    for f in ["package.json", "index.ts", "tsconfig.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let made = ok(Command::new("npm")
        .args(["install", "--silent", "--no-audit", "--no-fund"])
        .current_dir(&dir));
    if !made {
        skip(
            test,
            "could not install the example's packages from the npm registry",
        );
        return None;
    }
    let _ = std::fs::write(dir.join("ready"), wanted);
    Some(dir)
}

#[test]
fn the_typescript_example_finds_the_socket_says_hello_and_streams_an_install_and_a_watch() {
    let test =
        "the_typescript_example_finds_the_socket_says_hello_and_streams_an_install_and_a_watch";
    let Some(dir) = node_example(test) else {
        return;
    };
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The example, as checked in, must type-check.
    for f in ["index.ts", "package.json", "tsconfig.json"] {
        std::fs::copy(here.join("examples/node-client").join(f), dir.join(f)).unwrap();
    }
    let tsc = run_with_timeout(
        Command::new("npx")
            .args(["tsc", "--noEmit"])
            .current_dir(&dir),
        Duration::from_secs(120),
    );
    assert!(
        tsc.status.success(),
        "{}",
        String::from_utf8_lossy(&tsc.stdout)
    );

    let (reg, _, deps) = crate::registry::numbered_packages(3);
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(
        &serde_json::json!({"name": "app", "version": "1.0.0", "dependencies": deps}),
    );
    ctx.ok(&["daemon", "start"]);
    let mut cmd = Command::new("npx");
    cmd.args(["tsx", "index.ts"])
        .arg(&ctx.project)
        .current_dir(&dir)
        .env("HOARD_PROTO_DIR", here.join("proto"))
        .env("HOARD_STORE_DIR", &ctx.store)
        .env("XDG_RUNTIME_DIR", &ctx.runtime)
        .env("HOME", &ctx.home)
        .env("npm_config_registry", &reg.url);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(120));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let store = format!("store {}", ctx.store.display());
    let op = "node-example-";
    for part in [
        store.as_str(),
        "watch: KIND_WATCHING",
        "watch: KIND_INSTALL_STARTED operation node-example-",
        "header hoard-operation-id=node-example-",
        "OPERATION_STATE_QUEUED",
        "OPERATION_STATE_RUNNING",
        "progress: PHASE_LINK 3/3 done",
        "summary: 3 packages, 3 added",
        "finished: OUTCOME_OK",
        "attached: finished: OUTCOME_OK",
        "outcomes: install OUTCOME_OK, attached OUTCOME_OK",
        "watch: KIND_INSTALL_FINISHED operation node-example-",
        "status: SYNC_STATE_IN_SYNC",
        "tree: 3 packages at the top",
        "why p0: prod dependency of the project (",
        "query :root > *: p0@1.0.0 p1@1.0.0 p2@1.0.0",
        "error: code 3 reason INVALID_SELECTOR npm_code EQUERYNOPSEUDO",
        "cancel: ",
        "cancelled install: OUTCOME_",
        "operations: ",
        op,
    ] {
        assert!(text.contains(part), "missing {part:?} in:\n{text}");
    }
    let finished_line = text
        .lines()
        .find(|l| l.starts_with("watch: KIND_INSTALL_FINISHED"))
        .unwrap_or_default();
    assert!(finished_line.ends_with("OUTCOME_OK"), "{finished_line}");
    // Cancelled or completed, the truth is told and the project is whole either way.
    let cancelled = text.contains("cancelled install: OUTCOME_CANCELLED");
    assert!(
        cancelled == text.contains("cancel: taken"),
        "the cancel's answer and the outcome agree:\n{text}"
    );
    assert!(ctx.project.join("node_modules/p2/index.js").exists());
    assert!(ctx.run(&["status"]).status.success(), "in sync");
}

#[test]
fn every_dependency_a_resolution_cannot_have_is_reported() {
    let reg = crate::registry::Registry::start();
    reg.publish(crate::registry::Pkg::new("lib", "1.0.0"));
    reg.publish(crate::registry::Pkg::new("other", "2.0.0"));
    let (ctx, sock) = running_daemon();
    let ctx = ctx.with_registry(&reg.url);
    ctx.write_project(&serde_json::json!({"name": "app", "version": "1.0.0",
        "dependencies": {"lib": "^9.0.0", "other": "^1.0.0", "no-such-package-here": "1"}}));
    // The CLI names all three.
    let out = ctx.run(&["install"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("3 dependencies could not be resolved"),
        "{err}"
    );
    for name in ["`lib`", "`other`", "no-such-package-here"] {
        assert!(err.contains(name), "{name}: {err}");
    }
    // A gRPC client gets each as a PreconditionFailure violation with its reason.
    let project = ctx.project.canonicalize().unwrap().display().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        let ch = hoard_proto::uds_channel(&sock, Duration::from_secs(5))
            .await
            .unwrap();
        let mut client = hoard_proto::v1::hoard_client::HoardClient::new(ch);
        let req = hoard_proto::v1::InstallRequest {
            project_dir: project,
            env: [("npm_config_registry".to_string(), reg.url.clone())].into(),
            ..Default::default()
        };
        let mut stream = client.install(req).await.unwrap().into_inner();
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the install succeeded"),
                Err(s) => break s,
            }
        }
    });
    use tonic_types::StatusExt;
    let details = status.get_error_details();
    let info = details.error_info().expect("an ErrorInfo");
    assert_eq!(info.reason, "RESOLUTION_FAILED", "mixed reasons: {info:?}");
    let mut got: Vec<(String, String)> = details
        .precondition_failure()
        .expect("a PreconditionFailure")
        .violations
        .iter()
        .map(|v| (v.subject.clone(), v.r#type.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("lib".to_string(), "NO_MATCHING_VERSION".to_string()),
            (
                "no-such-package-here".to_string(),
                "PACKAGE_NOT_FOUND".to_string()
            ),
            ("other".to_string(), "NO_MATCHING_VERSION".to_string()),
        ]
    );
}
