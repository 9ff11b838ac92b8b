//! Operations (issue #22, part 1): every install has an id, says when it is queued and what for,
//! and ends with one `finished` event that tells the truth. A cancel in each phase is either
//! taken (the project untouched) or refused after the point of no return (the project fully
//! installed), and the event says which. Other clients list and attach to operations; a daemon
//! that stops ends them UNAVAILABLE with a reason. Driven with real gRPC clients, races forced
//! with registry gates and the daemon's hold failpoints.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hoard_proto::v1::hoard_client::HoardClient;
use hoard_proto::v1::{self, install_event::Event};
use serde_json::json;
use tonic::transport::Channel;

use crate::context::*;
use crate::registry::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(ctx: &TestContext) -> HoardClient<Channel> {
    let ch = hoard_proto::uds_channel(&ctx.socket(), Duration::from_secs(5))
        .await
        .expect("connect");
    HoardClient::new(ch)
}

fn request(ctx: &TestContext, reg: &Registry, id: &str) -> v1::InstallRequest {
    v1::InstallRequest {
        project_dir: ctx.project.canonicalize().unwrap().display().to_string(),
        env: [("npm_config_registry".to_string(), reg.url.clone())].into(),
        operation_id: Some(id.into()),
        ..Default::default()
    }
}

/// Every event until the stream ends, and the status it ended with (None: OK).
async fn drain(mut s: tonic::Streaming<v1::InstallEvent>) -> (Vec<Event>, Option<tonic::Status>) {
    let mut events = vec![];
    loop {
        match s.message().await {
            Ok(Some(e)) => events.extend(e.event),
            Ok(None) => return (events, None),
            Err(st) => return (events, Some(st)),
        }
    }
}

fn finished(events: &[Event]) -> v1::OperationFinished {
    match events.last() {
        Some(Event::Finished(f)) => f.clone(),
        other => panic!("the last event is not `finished`: {other:?}"),
    }
}

/// Hold every answer for `path` until the returned gate opens.
fn gated(reg: &Registry, path: &str) -> Arc<Gate> {
    let gate = Gate::new();
    reg.fault(
        path,
        Fault {
            gate: Some(gate.clone()),
            ..Default::default()
        },
    );
    gate
}

/// Start an install of the project as operation `id`.
async fn start(
    c: &mut HoardClient<Channel>,
    ctx: &TestContext,
    reg: &Registry,
    id: &str,
) -> tonic::Streaming<v1::InstallEvent> {
    c.install(request(ctx, reg, id)).await.unwrap().into_inner()
}

async fn cancel(c: &mut HoardClient<Channel>, id: &str) -> v1::CancelOperationResponse {
    c.cancel_operation(v1::CancelOperationRequest {
        operation_id: id.into(),
    })
    .await
    .unwrap()
    .into_inner()
}

fn registry() -> Registry {
    let reg = Registry::start();
    reg.publish(Pkg::new("a", "1.0.0").dep("b", "^1.0.0"));
    reg.publish(Pkg::new("b", "1.0.0").file("index.js", b"module.exports = 1", 0o644));
    reg.publish(Pkg::new("c", "1.0.0"));
    reg
}

fn project(reg: &Registry) -> TestContext {
    let ctx = TestContext::new().with_registry(&reg.url);
    ctx.write_project(
        &json!({"name": "app", "version": "1.0.0", "dependencies": {"a": "1", "c": "1"}}),
    );
    ctx
}

fn untouched(dir: &Path) {
    assert!(
        !dir.join("node_modules/a").exists(),
        "node_modules/a was made"
    );
    assert!(
        !dir.join("package-lock.json").exists(),
        "a lockfile was written"
    );
}

/// Wait until operation `id` is listed with `f` true.
async fn until(c: &mut HoardClient<Channel>, id: &str, f: impl Fn(&v1::OperationInfo) -> bool) {
    for _ in 0..600 {
        let list = c
            .list_operations(v1::ListOperationsRequest {})
            .await
            .unwrap()
            .into_inner();
        if list.operations.iter().any(|o| o.operation_id == id && f(o)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("operation {id} never got there");
}

/// Cancel during resolution (a packument held at a gate) and during the fetch (a tarball
/// held): the cancel is taken, the last event says CANCELLED and the project is untouched.
#[test]
fn a_cancel_before_linking_leaves_the_project_untouched_and_says_so() {
    for (phase, path) in [
        ("resolve", "/a".to_string()),
        ("fetch", Registry::tarball_path("b", "1.0.0")),
    ] {
        let reg = registry();
        let gate = gated(&reg, &path);
        let ctx = project(&reg);
        ctx.ok(&["daemon", "start"]);
        let rt = runtime();
        rt.block_on(async {
            let mut c = client(&ctx).await;
            let id = format!("cancel-in-{phase}");
            let resp = c.install(request(&ctx, &reg, &id)).await.unwrap();
            assert_eq!(
                resp.metadata()
                    .get(hoard_proto::OPERATION_ID_HEADER)
                    .unwrap(),
                id.as_str()
            );
            let stream = resp.into_inner();
            let reached = eventually_async(|| reg.count(&path) > 0).await;
            assert!(reached, "{phase}: the request reached the gate");
            let r = cancel(&mut c, &id).await;
            assert!(r.cancelled, "{phase}: {r:?}");
            gate.open();
            let (events, status) = drain(stream).await;
            let Some(Event::Operation(first)) = events.first() else {
                panic!("{phase}: the first event names the operation: {events:?}");
            };
            assert_eq!(
                (first.operation_id.as_str(), first.state),
                (id.as_str(), v1::OperationState::Queued as i32)
            );
            let f = finished(&events);
            assert_eq!(f.outcome, v1::Outcome::Cancelled as i32, "{phase}: {f:?}");
            assert!(
                f.cancel.as_deref().unwrap_or("").starts_with("cancelled"),
                "{f:?}"
            );
            assert_eq!(status.map(|s| s.code()), Some(tonic::Code::Cancelled));
        });
        untouched(&ctx.project);
        // The next install is whole.
        ctx.ok(&["install"]);
        assert!(ctx.project.join("node_modules/b/index.js").is_file());
    }
}

async fn eventually_async(f: impl Fn() -> bool) -> bool {
    for _ in 0..600 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Cancel while linking (each package held by the link failpoint): too late, refused; the
/// install completes and its last event says so.
#[test]
fn a_cancel_after_the_point_of_no_return_is_refused_and_the_install_completes() {
    let reg = registry();
    // Linking is held until the test releases it, so the cancel surely lands while it is.
    let (ctx, release) = project(&reg).hold_linking();
    ctx.ok(&["daemon", "start"]);
    let rt = runtime();
    rt.block_on(async {
        let mut c = client(&ctx).await;
        let stream = start(&mut c, &ctx, &reg, "late").await;
        until(&mut c, "late", |o| o.past_point_of_no_return).await;
        let r = cancel(&mut c, "late").await;
        assert!(!r.cancelled);
        assert_eq!(r.state, "past-point-of-no-return");
        std::fs::write(&release, b"").unwrap();
        let (events, status) = drain(stream).await;
        assert!(status.is_none(), "{status:?}");
        let f = finished(&events);
        assert_eq!(f.outcome, v1::Outcome::Ok as i32);
        assert!(f.summary.is_some());
        assert!(
            f.cancel.as_deref().unwrap_or("").starts_with("too late"),
            "{f:?}"
        );
        // Progress named packages on the way.
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Progress(p) if p.package.is_some()))
        );
    });
    assert!(ctx.project.join("node_modules/b/index.js").is_file());
    assert!(ctx.project.join("package-lock.json").is_file());
    // And the CLI agrees it is in sync.
    assert!(ctx.run(&["status"]).status.success());
}

/// A second install of the same project says it is queued behind the first (by id); cancelled
/// while queued, it ends CANCELLED and the first one completes.
#[test]
fn a_queued_install_says_what_it_waits_for_and_can_be_cancelled_there() {
    let reg = registry();
    let ctx = project(&reg).env("HOARD_FAILPOINT_INSTALL_HOLD_MS", "1500");
    ctx.ok(&["daemon", "start"]);
    let rt = runtime();
    rt.block_on(async {
        let mut c = client(&ctx).await;
        let first = start(&mut c, &ctx, &reg, "first").await;
        until(&mut c, "first", |o| {
            o.state == v1::OperationState::Running as i32
        })
        .await;
        let mut second = start(&mut c, &ctx, &reg, "second").await;
        let Some(v1::InstallEvent {
            event: Some(Event::Operation(u)),
        }) = second.message().await.unwrap()
        else {
            panic!("the first event is an operation update");
        };
        assert_eq!(u.state, v1::OperationState::Queued as i32);
        assert_eq!(u.waiting_for, vec!["first".to_string()]);
        // A duplicate id is refused while it runs.
        let dup = c.install(request(&ctx, &reg, "first")).await.unwrap_err();
        assert_eq!(dup.code(), tonic::Code::AlreadyExists);
        let r = cancel(&mut c, "second").await;
        assert!(r.cancelled);
        assert_eq!(r.state, "queued");
        let (events, _) = drain(second).await;
        assert_eq!(finished(&events).outcome, v1::Outcome::Cancelled as i32);
        let (events, status) = drain(first).await;
        assert!(status.is_none());
        assert_eq!(finished(&events).outcome, v1::Outcome::Ok as i32);
        // Both are listed as finished, newest first.
        let list = c
            .list_operations(v1::ListOperationsRequest {})
            .await
            .unwrap()
            .into_inner();
        let states: Vec<(&str, Option<i32>)> = list
            .operations
            .iter()
            .map(|o| (o.operation_id.as_str(), o.outcome))
            .collect();
        assert_eq!(
            states,
            [
                ("first", Some(v1::Outcome::Ok as i32)),
                ("second", Some(v1::Outcome::Cancelled as i32))
            ]
        );
    });
    assert!(ctx.project.join("node_modules/b/index.js").is_file());
}

/// An IDE attaches to an install a terminal started: it gets the state, progress and the same
/// `finished`; a client that went away leaves an operation whose outcome is still known.
#[test]
fn another_client_attaches_and_a_vanished_client_leaves_the_truth_behind() {
    let reg = registry();
    let ctx = project(&reg).env("HOARD_FAILPOINT_LINK_HOLD_MS", "200");
    ctx.ok(&["daemon", "start"]);
    let rt = runtime();
    rt.block_on(async {
        let mut c = client(&ctx).await;
        let terminal = start(&mut c, &ctx, &reg, "from-terminal").await;
        until(&mut c, "from-terminal", |o| {
            o.state == v1::OperationState::Running as i32
        })
        .await;
        let mut ide = client(&ctx).await;
        let attached = ide
            .attach_operation(v1::AttachOperationRequest {
                operation_id: "from-terminal".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let (seen, status) = drain(attached).await;
        assert!(status.is_none(), "{status:?}");
        assert!(
            matches!(seen.first(), Some(Event::Operation(u)) if u.operation_id == "from-terminal")
        );
        let (events, _) = drain(terminal).await;
        assert_eq!(finished(&seen), finished(&events));
        assert_eq!(finished(&seen).outcome, v1::Outcome::Ok as i32);
        let unknown = ide
            .attach_operation(v1::AttachOperationRequest {
                operation_id: "nope".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound);
    });

    // A client that drops its stream during the fetch: cancelled, and ListOperations and
    // AttachOperation say so afterwards.
    let reg = registry();
    let tarball = Registry::tarball_path("b", "1.0.0");
    let gate = gated(&reg, &tarball);
    let ctx = project(&reg);
    ctx.ok(&["daemon", "start"]);
    let gate2 = Arc::clone(&gate);
    rt.block_on(async {
        let mut c = client(&ctx).await;
        let stream = start(&mut c, &ctx, &reg, "gone").await;
        assert!(eventually_async(|| reg.count(&tarball) > 0).await);
        drop(stream);
        gate2.open();
        until(&mut c, "gone", |o| o.outcome.is_some()).await;
        let (seen, _) = drain(
            c.attach_operation(v1::AttachOperationRequest {
                operation_id: "gone".into(),
            })
            .await
            .unwrap()
            .into_inner(),
        )
        .await;
        assert_eq!(seen.len(), 1);
        assert_eq!(finished(&seen).outcome, v1::Outcome::Cancelled as i32);
    });
    untouched(&ctx.project);
}

/// A daemon that stops mid-install ends it UNAVAILABLE, reason DAEMON_STOPPING, untouched.
#[test]
fn a_stopping_daemon_ends_operations_unavailable_with_a_reason() {
    let reg = registry();
    let tarball = Registry::tarball_path("b", "1.0.0");
    let gate = gated(&reg, &tarball);
    let ctx = project(&reg);
    ctx.ok(&["daemon", "start"]);
    let rt = runtime();
    rt.block_on(async {
        let mut c = client(&ctx).await;
        let stream = start(&mut c, &ctx, &reg, "stopped").await;
        assert!(eventually_async(|| reg.count(&tarball) > 0).await);
        c.shutdown(v1::ShutdownRequest {
            reason: "test".into(),
        })
        .await
        .unwrap();
        let (events, status) = drain(stream).await;
        gate.open();
        let f = finished(&events);
        assert_eq!(f.outcome, v1::Outcome::Cancelled as i32);
        let e = f.error.expect("an error");
        assert_eq!(
            (e.code, e.reason.as_str()),
            (tonic::Code::Unavailable as i32, "DAEMON_STOPPING")
        );
        let status = status.expect("an error status");
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert!(
            status.message().contains("daemon is stopping"),
            "{}",
            status.message()
        );
    });
    untouched(&ctx.project);
}

/// `hoard --json install` shows the operation lines, valid against the published schema.
#[test]
fn the_cli_json_lines_name_the_operation() {
    let reg = registry();
    let ctx = project(&reg);
    let out = ctx.ok(&["--json", "install"]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "operation");
    assert_eq!(lines[0]["state"], "queued");
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "finished");
    assert_eq!(last["outcome"], "ok");
    assert_eq!(last["operation_id"], lines[0]["operation_id"]);
}
