//! The AWS adapters against moto's server (started by tests/aws/run.sh, which sets
//! AWS_ENDPOINT_URL and runs these ignored tests with `--ignored`). Run without moto, each
//! test fails and says so; plain `cargo test` leaves them out.
//!
//! The port conformance suite (`kite_engine::conformance`, which the SQLite adapters run
//! too), plus what only AWS has or does: the outbox and its sweeper, SQS, large bodies
//! and multipart in S3, presigned URLs, EventBridge Scheduler schedules, DynamoDB Streams.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use kite_aws::{provision::provision, AwsAdapters, CallCounter};
use kite_core::execution::{LogEntry, LogLevel, StateType};
use kite_engine::conformance::{self as suite, execution, log, stream, t, transition};
use kite_engine::ports::*;

const SCHEDULER_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:kite-scheduler";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/kite-scheduler-invoke";
const DLQ_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:kite-schedule-dlq";

/// A name no other test (or earlier run against the same server) uses.
fn unique(name: &str) -> String {
    format!(
        "kite-{}-{}",
        name.replace('_', "-"),
        Utc::now().timestamp_nanos_opt().unwrap_or_default() % 1_000_000_000_000
    )
}

/// Fresh resources for one test (a table, bucket, queue and schedule group of its own).
async fn setup(name: &str) -> AwsAdapters {
    kite_aws::aws_adapters(&setup_config(name).await).await
}

async fn setup_config(name: &str) -> kite_aws::AwsConfig {
    if std::env::var("AWS_ENDPOINT_URL").map_or(true, |v| v.is_empty()) {
        panic!(
            "AWS_ENDPOINT_URL is not set: the kite-aws tests need moto's server \
             (bash tests/aws/run.sh starts it and runs them)"
        );
    }
    let unique = unique(name);
    let mut config = provision(&unique, &unique, Some(&unique), &unique)
        .await
        .expect("create the table, bucket, queue and schedule group in moto");
    config.scheduler_function_arn = Some(SCHEDULER_ARN.into());
    config.scheduler_role_arn = Some(ROLE_ARN.into());
    config.schedule_dlq_arn = Some(DLQ_ARN.into());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn flows_have_revisions_and_soft_delete() {
    let a = setup("flows").await;
    suite::flows_have_revisions_and_soft_delete(a.store).await;
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn flow_search_filters_and_pages() {
    let a = setup("flowsearch").await;
    suite::flow_search_filters_and_pages(a.store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn execution_updates_are_compare_and_set() {
    let a = setup("cas").await;
    suite::execution_updates_are_compare_and_set(a.store.as_ref(), a.store.clone()).await;
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn execution_search_filters_sorts_and_pages() {
    let a = setup("execsearch").await;
    suite::execution_search_filters_sorts_and_pages(a.store.as_ref(), a.store.as_ref()).await;
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn kv_store_types_namespaces_and_expiry() {
    let a = setup("kv").await;
    suite::kv_store_types_namespaces_and_expiry(a.store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn kv_put_without_overwrite_is_atomic() {
    let a = setup("kvrace").await;
    suite::kv_put_without_overwrite_is_atomic(a.store).await;
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn commit_is_atomic_writes_the_outbox_and_acks_remove_it() {
    let a = setup("commit").await;
    let s = a.store.as_ref();
    // Pushed items not claimed and due go to SQS at the commit; an ack in a later commit
    // deletes the outbox row but cannot recall the message.
    suite::commit_is_atomic_and_checks_the_version(s, s, s, suite::AckedBeforeLease::StillDelivered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn concurrency_slots_admit_up_to_the_limit() {
    let a = setup("slots").await;
    suite::concurrency_slots_admit_up_to_the_limit(a.store).await;
}

/// Deleting a running execution frees the running slot it held in `SLOTS#`: the next
/// queued execution of its flow starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn deleting_a_running_execution_frees_its_slot() {
    let a = setup("slotdelete").await;
    let engine = kite_engine::Engine::new(a.ports(), aws_engine_config());
    engine
        .create_flow(
            "id: one-at-a-time\nnamespace: dev\nconcurrency:\n  limit: 1\ntasks:\n  - id: wait\n    \
             type: io.kestra.plugin.core.flow.Sleep\n    duration: PT1H\n",
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created = engine
            .create_execution(kite_engine::CreateExecution {
                namespace: "dev".into(),
                flow_id: "one-at-a-time".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        // The start a worker would receive from SQS.
        engine
            .process(WorkItem::start(&created.id, Utc::now()))
            .await
            .unwrap();
        ids.push(created.id);
    }
    let state = |id: String| {
        let engine = engine.clone();
        async move { engine.get_execution(&id).await.unwrap().state.current }
    };
    assert_eq!(state(ids[0].clone()).await, StateType::Running);
    assert_eq!(state(ids[1].clone()).await, StateType::Queued);
    engine.delete_execution(&ids[0], true, true).await.unwrap();
    engine
        .process(WorkItem::start(&ids[1], Utc::now()))
        .await
        .unwrap();
    assert_eq!(state(ids[1].clone()).await, StateType::Running);
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn large_execution_bodies_live_in_s3() {
    let a = setup("bigbody").await;
    let repo: &dyn ExecutionRepository = a.store.as_ref();
    let mut e = execution("big", "dev", "f", StateType::Running, t(0), &[]);
    e.outputs.insert(
        "blob".into(),
        serde_json::Value::String(incompressible(600 * 1024)),
    );
    repo.insert(&e).await.unwrap();
    let got = repo.get("big").await.unwrap().unwrap();
    assert_eq!(got.execution.outputs, e.outputs);
    e.state.set(StateType::Success, t(1));
    assert_eq!(repo.update(&e, 1).await.unwrap(), 2);
    assert_eq!(
        repo.get("big").await.unwrap().unwrap().execution.state.current,
        StateType::Success
    );
    // The live body and the previous one (named by the last stream record's old image).
    e.state.set(StateType::Failed, t(2));
    assert_eq!(repo.update(&e, 2).await.unwrap(), 3);
    let objects = a
        .files
        .client()
        .list_objects_v2()
        .bucket(a.files.bucket())
        .prefix("_kite/executions/big/")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = objects.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys,
        [
            "_kite/executions/big/v0000000002.json",
            "_kite/executions/big/v0000000003.json"
        ]
    );
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn a_first_step_is_one_item_with_its_logs_and_later_writes_keep_them() {
    let a = setup("firstlogs").await;
    let repo: &dyn ExecutionRepository = a.store.as_ref();
    let logs: &dyn LogRepository = a.store.as_ref();
    let partition = || async {
        a.store
            .dynamodb()
            .query()
            .table_name(a.store.table_name())
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", aws_sdk_dynamodb::types::AttributeValue::S("EXEC#fl".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default()
    };
    let mut e = execution("fl", "dev", "f", StateType::Running, t(0), &[]);
    let mut first = transition(e.clone(), None, vec![], vec![]);
    first.logs = vec![
        log("fl", "INFO", None, "first"),
        log("fl", "DEBUG", Some("tr1"), "second"),
    ];
    assert_eq!(repo.commit(first.clone()).await.unwrap(), 1);
    let items = partition().await;
    assert_eq!(items.len(), 1, "no log items: {items:?}");
    assert!(items[0].contains_key("logsZ"));
    assert!(matches!(
        repo.commit(first).await,
        Err(StoreError::AlreadyExists(_))
    ));

    // A later step's line is an item; updates that move the body to S3 and back keep the
    // first step's lines and leave one body form.
    e.state.set(StateType::Success, t(1));
    assert_eq!(
        repo.commit(transition(e.clone(), Some(1), vec![], vec![]))
            .await
            .unwrap(),
        2
    );
    e.outputs.insert(
        "blob".into(),
        serde_json::Value::String(incompressible(400 * 1024)),
    );
    assert_eq!(repo.update(&e, 2).await.unwrap(), 3);
    e.outputs.clear();
    assert_eq!(repo.update(&e, 3).await.unwrap(), 4);
    let items = partition().await;
    let exec = items.iter().find(|i| i.contains_key("version")).unwrap();
    assert!(
        exec.contains_key("bodyZ") && !exec.contains_key("bodyRef"),
        "{exec:?}"
    );
    assert!(matches!(repo.update(&e, 3).await, Err(StoreError::Conflict(_))));
    let got = repo.get("fl").await.unwrap().unwrap();
    assert_eq!(
        (got.version, got.execution.state.current),
        (4, StateType::Success)
    );

    let q = |min: Option<&str>, tr: Option<&str>| LogQuery {
        execution_id: "fl".into(),
        min_level: min.and_then(LogLevel::parse),
        task_run_id: tr.map(str::to_string),
        ..Default::default()
    };
    let messages = |lines: Vec<LogEntry>| lines.into_iter().map(|l| l.message).collect::<Vec<_>>();
    assert_eq!(
        messages(logs.list(&q(None, None)).await.unwrap()),
        ["first", "second", "hello"]
    );
    assert_eq!(
        messages(logs.list(&q(Some("INFO"), None)).await.unwrap()),
        ["first", "hello"]
    );
    assert_eq!(
        messages(logs.list(&q(None, Some("tr1"))).await.unwrap()),
        ["second"]
    );
    assert_eq!(logs.delete_by_execution("fl").await.unwrap(), 3);
    assert!(logs.list(&q(None, None)).await.unwrap().is_empty());
    assert_eq!(repo.get("fl").await.unwrap().unwrap().version, 4);
}

/// Text that deflate cannot shrink much (base62 from a linear congruential generator).
fn incompressible(len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            DIGITS[((x >> 33) % 62) as usize] as char
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn logs_filter_by_level_and_task_run() {
    let a = setup("logs").await;
    let logs: &dyn LogRepository = a.store.as_ref();
    suite::logs_filter_by_level_and_task_run(logs).await;
    // A huge line is cut to fit an item instead of failing the write.
    logs.append(&[log("e3", "INFO", None, &"é".repeat(300 * 1024))])
        .await
        .unwrap();
    let huge = logs
        .list(&LogQuery {
            execution_id: "e3".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        huge[0].message.len() < 64 * 1024
            && huge[0].message.ends_with("[truncated by Kite: line over 64 KB]")
    );
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn run_claims_are_exclusive_until_they_end() {
    let a = setup("claims").await;
    suite::run_claims_are_exclusive_until_they_end(a.store.as_ref()).await;
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn queue_leases_acks_and_redelivers_over_sqs() {
    let a = setup("queue").await;
    // SQS's visibility timeout is the lease: the suite waits for it in real time, and the
    // item due in an hour (beyond SQS's 15-minute delay) stays in the outbox until rescheduled.
    suite::queue_leases_acks_and_redelivers(a.store.as_ref()).await;
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn the_sweeper_sends_lost_and_newly_reachable_items() {
    let a = setup("sweep").await;
    let repo: &dyn ExecutionRepository = a.store.as_ref();
    let queue: &dyn TaskQueue = a.store.as_ref();
    let now = Utc::now();
    let item = |id: &str, due| WorkItem {
        id: id.into(),
        execution_id: "e1".into(),
        due,
        work: Work::Kill,
    };
    let claimed = item("start-e1", now);
    let timer = item("timer-e1", now + chrono::Duration::seconds(1800));
    let sent = item("task-e1", now);
    let e = execution("e1", "dev", "f", StateType::Created, t(0), &[]);
    let mut tr = transition(e, None, vec![claimed.clone(), timer, sent], vec![]);
    tr.claimed = vec![claimed.id.clone()];
    tr.claim_until = Some(now + chrono::Duration::seconds(60));
    repo.commit(tr).await.unwrap();
    let lease = |q: &'static str| async move {
        let got = queue
            .lease(Utc::now(), 10, Duration::from_secs(30))
            .await
            .unwrap();
        let ids: Vec<String> = got.into_iter().map(|i| i.id).collect();
        assert_eq!(ids, if q.is_empty() { vec![] } else { vec![q.to_string()] });
    };
    // The claimed item runs in-process and the timer is far: only the third is in SQS.
    lease("task-e1").await;
    // Within the grace nothing is due for a resend.
    assert_eq!(
        kite_aws::sweep_outbox(&a.store, now).await.unwrap(),
        Default::default()
    );
    // The in-process run was lost: after the grace (120 s) the sweeper sends it. The
    // item in SQS may still be running in a worker: it is not sent again so soon.
    let later = now + chrono::Duration::seconds(200);
    let report = kite_aws::sweep_outbox(&a.store, later).await.unwrap();
    assert_eq!((report.sent, report.resent), (0, 1));
    lease("start-e1").await;
    queue.ack(&["start-e1".to_string()]).await.unwrap();
    // Swept once: not again at once.
    assert_eq!(
        kite_aws::sweep_outbox(&a.store, later).await.unwrap(),
        Default::default()
    );
    // 20 minutes on: the timer comes within SQS's 15-minute delay and is sent once, with
    // the remaining delay; the SQS item, unacked longer than any worker runs, is sent again.
    let near = now + chrono::Duration::seconds(1800 - 600);
    let report = kite_aws::sweep_outbox(&a.store, near).await.unwrap();
    assert_eq!((report.sent, report.resent), (1, 1));
    assert_eq!(
        kite_aws::sweep_outbox(&a.store, near).await.unwrap(),
        Default::default()
    );
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn an_ended_subflow_wakes_its_waiting_parent_in_the_same_transaction() {
    let a = setup("wake").await;
    let s = a.store.as_ref();
    suite::an_ended_subflow_wakes_its_waiting_parent(s, s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn s3_files_round_trip_bounds_and_prefix_deletes() {
    let a = setup("files").await;
    suite::file_storage_round_trip_and_bounds(a.files).await;
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn s3_files_list_a_folder() {
    let a = setup("list").await;
    suite::file_storage_lists_a_folder(a.files.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn presigned_urls_upload_and_download_without_the_api() {
    let a = setup("presign").await;
    let uri = "kestra:///dev/f/executions/e1/inputs/big/data.bin";
    let put = a
        .files
        .presigned_put(uri, Duration::from_secs(300))
        .await
        .unwrap();
    assert!(put.contains("X-Amz-Signature="), "{put}");
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8).collect();
    let sent = body.clone();
    // A plain HTTP client, as a browser or curl would use it.
    let status = tokio::task::spawn_blocking(move || {
        ureq::put(&put)
            .send_bytes(&sent)
            .map(|r| r.status())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap()
    .expect("presigned PUT");
    assert_eq!(status, 200);
    assert_eq!(a.files.size(uri).await.unwrap(), Some(body.len() as u64));
    let get = a
        .files
        .presigned_get(uri, Duration::from_secs(300))
        .await
        .unwrap();
    let got = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let response = ureq::get(&get).call().map_err(|e| e.to_string())?;
        std::io::Read::read_to_end(&mut response.into_reader(), &mut out).map_err(|e| e.to_string())?;
        Ok::<_, String>(out)
    })
    .await
    .unwrap()
    .expect("presigned GET");
    assert!(got == body);
    assert!(matches!(
        a.files
            .presigned_put("kestra:///../x", Duration::from_secs(60))
            .await,
        Err(StorageError::InvalidUri(_))
    ));
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn s3_files_refuse_paths_outside_the_root() {
    let a = setup("paths").await;
    let fs: &dyn FileStorage = a.files.as_ref();
    suite::file_storage_refuses_paths_outside_its_root(fs).await;
    // The execution bodies' prefix is the adapter's own.
    let reserved = "kestra:///_kite/executions/e1/v0000000001.json";
    assert!(matches!(
        fs.put(reserved, stream(b"x".to_vec()), 10).await,
        Err(StorageError::InvalidUri(_))
    ));
    assert!(matches!(fs.get(reserved).await, Err(StorageError::InvalidUri(_))));
    assert!(fs.read_blocking(reserved).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn trigger_state_is_compare_and_set_and_searchable() {
    let a = setup("triggers").await;
    suite::trigger_state_is_compare_and_set_and_searchable(a.store).await;
}

fn rule(namespace: &str, flow_id: &str, trigger: &str, exprs: &[&str], enabled: bool) -> ScheduleRule {
    ScheduleRule {
        namespace: namespace.into(),
        flow_id: flow_id.into(),
        trigger_id: trigger.into(),
        expressions: exprs.iter().map(|e| e.to_string()).collect(),
        enabled,
    }
}

/// A later `settled_before`: every schedule counts as settled.
fn settled() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::minutes(5)
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn schedules_follow_sync_flow() {
    let a = setup("schedules").await;
    let reg: &dyn ScheduleRegistry = a.schedules.as_ref();
    let long_ns = format!("company.{}", "team".repeat(30));
    let other = rule("dev", "other", "s", &["cron(0 * * * ? *)"], true);
    reg.sync_flow("dev", "other", std::slice::from_ref(&other))
        .await
        .unwrap();
    reg.sync_flow(
        &long_ns,
        "nightly",
        &[
            rule(&long_ns, "nightly", "daily", &["cron(0 2 * * ? *)"], true),
            // A time zone with DST needs two UTC expressions.
            rule(
                &long_ns,
                "nightly",
                "local",
                &["cron(0 1 * * ? *)", "cron(0 0 * * ? *)"],
                true,
            ),
        ],
    )
    .await
    .unwrap();
    let schedules = a.schedules.flow_schedules(&long_ns, "nightly").await.unwrap();
    assert_eq!(schedules.len(), 3);
    assert!(schedules.keys().all(|n| n.len() <= 64));
    let daily = kite_aws::schedule_name(&long_ns, "nightly", "daily", 0);
    let d = &schedules[&daily];
    assert_eq!(d.expression, "cron(0 2 * * ? *)");
    assert_eq!(d.timezone.as_deref(), Some("UTC"));
    assert!(d.enabled && d.exact);
    assert_eq!(
        (d.target_arn.as_str(), d.role_arn.as_str()),
        (SCHEDULER_ARN, ROLE_ARN)
    );
    assert_eq!(d.retry, Some((10, 3600)));
    assert_eq!(d.dead_letter_arn.as_deref(), Some(DLQ_ARN));
    // EventBridge Scheduler fills in the instant the schedule was due.
    let filled = d
        .input
        .as_deref()
        .unwrap()
        .replace("<aws.scheduler.scheduled-time>", "2026-01-01T02:00:00Z");
    let input: serde_json::Value = serde_json::from_str(&filled).unwrap();
    assert_eq!(
        input,
        serde_json::json!({"namespace": long_ns, "flowId": "nightly", "triggerId": "daily", "time": "2026-01-01T02:00:00Z"})
    );

    // Saving the same flow again changes nothing: one list and one read per schedule.
    let counter = CallCounter::default();
    let counted = kite_aws::aws_adapters_counted(&config_of(&a), counter.clone()).await;
    counted
        .schedules
        .sync_flow(
            &long_ns,
            "nightly",
            &[
                rule(&long_ns, "nightly", "daily", &["cron(0 2 * * ? *)"], true),
                rule(
                    &long_ns,
                    "nightly",
                    "local",
                    &["cron(0 1 * * ? *)", "cron(0 0 * * ? *)"],
                    true,
                ),
            ],
        )
        .await
        .unwrap();
    let calls = counter.snapshot();
    assert_eq!(calls.get("Scheduler.ListSchedules"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("Scheduler.GetSchedule"), Some(&3), "{calls:?}");
    assert_eq!(counter.total(), 4, "{calls:?}");

    // Changed cron, disabled, one expression fewer.
    reg.sync_flow(
        &long_ns,
        "nightly",
        &[
            rule(&long_ns, "nightly", "daily", &["cron(30 3 * * ? *)"], false),
            rule(&long_ns, "nightly", "local", &["cron(0 1 * * ? *)"], true),
        ],
    )
    .await
    .unwrap();
    let schedules = a.schedules.flow_schedules(&long_ns, "nightly").await.unwrap();
    assert_eq!(schedules.len(), 2);
    assert_eq!(schedules[&daily].expression, "cron(30 3 * * ? *)");
    assert!(!schedules[&daily].enabled);
    // Enabled again: the whole definition is sent, the rest of it is unchanged.
    reg.sync_flow(
        &long_ns,
        "nightly",
        &[
            rule(&long_ns, "nightly", "daily", &["cron(30 3 * * ? *)"], true),
            rule(&long_ns, "nightly", "local", &["cron(0 1 * * ? *)"], true),
        ],
    )
    .await
    .unwrap();
    let again = a.schedules.definition(&daily).await.unwrap().unwrap();
    assert_eq!(
        again,
        kite_aws::schedules::Definition {
            enabled: true,
            ..schedules[&daily].clone()
        }
    );
    // Flow deleted: its schedules go, other flows' schedules stay.
    reg.sync_flow(&long_ns, "nightly", &[]).await.unwrap();
    assert!(a
        .schedules
        .flow_schedules(&long_ns, "nightly")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(a.schedules.flow_schedules("dev", "other").await.unwrap().len(), 1);
    // Without the invoke role nothing can be registered, and the error says why.
    let mut no_role = config_of(&a);
    no_role.scheduler_role_arn = None;
    let unusable = kite_aws::aws_adapters(&no_role).await;
    let err = unusable
        .schedules
        .sync_flow("dev", "other", std::slice::from_ref(&other))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("KITE_SCHEDULER_ROLE_ARN"), "{err}");
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn two_stacks_never_see_each_others_schedules() {
    let first = setup("stack-a").await;
    let second = setup("stack-b").await;
    assert_ne!(first.schedules.group(), second.schedules.group());
    // The same flow in both stacks: the same schedule names, in different groups.
    let mine = [rule("dev", "same", "s", &["cron(0 * * * ? *)"], true)];
    first.schedules.sync_flow("dev", "same", &mine).await.unwrap();
    second.schedules.sync_flow("dev", "same", &mine).await.unwrap();
    // The second stack drops the flow, then reconciles with no flow at all.
    second.schedules.sync_flow("dev", "same", &[]).await.unwrap();
    let report = second.schedules.sync_all(&[], settled()).await.unwrap();
    assert_eq!(report, SyncReport::default());
    assert!(second.schedules.names().await.unwrap().is_empty());
    assert_eq!(
        first.schedules.names().await.unwrap(),
        [kite_aws::schedule_name("dev", "same", "s", 0)]
    );

    // More schedules than a page of ListSchedules (100), reconciled twice.
    let many: Vec<ScheduleRule> = (0..120)
        .map(|i| {
            rule(
                "dev",
                &format!("f{}", i % 7),
                &format!("t{i}"),
                &["cron(0 1 * * ? *)"],
                true,
            )
        })
        .collect();
    let report = second.schedules.sync_all(&many, settled()).await.unwrap();
    assert_eq!((report.found, report.created), (0, 120));
    assert_eq!(second.schedules.names().await.unwrap().len(), 120);
    let counter = CallCounter::default();
    let counted = kite_aws::aws_adapters_counted(&config_of(&second), counter.clone()).await;
    let report = counted.schedules.sync_all(&many, settled()).await.unwrap();
    assert_eq!(
        report,
        SyncReport {
            found: 120,
            ..SyncReport::default()
        }
    );
    let calls = counter.snapshot();
    eprintln!("reconcile of 120 settled schedules: {calls:?}");
    assert_eq!(calls.get("Scheduler.ListSchedules"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("Scheduler.GetSchedule"), Some(&120), "{calls:?}");
    assert_eq!(counter.total(), 122, "{calls:?}");
    // Still one schedule in the first stack.
    assert_eq!(first.schedules.names().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn reconcile_repairs_the_group_behind_a_failed_save() {
    let config = setup_config("reconcile").await;
    // A save whose schedule sync fails (here: no role to hand EventBridge Scheduler).
    let mut broken = config.clone();
    broken.scheduler_role_arn = None;
    let broken = kite_aws::aws_adapters(&broken).await;
    let engine = kite_engine::Engine::new(broken.ports(), aws_engine_config());
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../flows/dev/daily-report.yaml"
    ))
    .expect("daily-report.yaml");
    match engine.create_flow(&source).await {
        Err(e @ kite_engine::EngineError::SchedulesPending { .. }) => {
            let message = e.to_string();
            assert!(message.contains("dev.daily-report was saved"), "{message}");
            assert!(message.contains("next schedule reconcile"), "{message}");
            assert!(message.contains("KITE_SCHEDULER_ROLE_ARN"), "{message}");
        }
        other => panic!("expected SchedulesPending, got {other:?}"),
    }
    let a = kite_aws::aws_adapters(&config).await;
    assert!(
        engine.get_flow("dev", "daily-report", None).await.is_ok(),
        "the flow is saved"
    );
    assert!(a
        .schedules
        .flow_schedules("dev", "daily-report")
        .await
        .unwrap()
        .is_empty());

    // A second flow registered normally, then edited behind Kite's back; an orphan left
    // by a flow that no longer exists.
    let engine = kite_engine::Engine::new(a.ports(), aws_engine_config());
    let hourly = "id: hourly\nnamespace: dev\ntasks:\n  - id: t\n    type: io.kestra.plugin.core.log.Log\n    message: hi\ntriggers:\n  - id: every-hour\n    type: io.kestra.plugin.core.trigger.Schedule\n    cron: \"0 * * * *\"\n";
    engine.create_flow(hourly).await.unwrap();
    let hourly_name = kite_aws::schedule_name("dev", "hourly", "every-hour", 0);
    let registered = a.schedules.definition(&hourly_name).await.unwrap().unwrap();
    a.schedules
        .client()
        .update_schedule()
        .group_name(a.schedules.group())
        .name(&hourly_name)
        .schedule_expression("cron(5 * * * ? *)")
        .flexible_time_window(
            aws_sdk_scheduler::types::FlexibleTimeWindow::builder()
                .mode(aws_sdk_scheduler::types::FlexibleTimeWindowMode::Off)
                .build()
                .unwrap(),
        )
        .target(
            aws_sdk_scheduler::types::Target::builder()
                .arn(SCHEDULER_ARN)
                .role_arn(ROLE_ARN)
                .input("{}")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    a.schedules
        .sync_flow(
            "dev",
            "gone",
            &[rule("dev", "gone", "s", &["cron(0 3 * * ? *)"], true)],
        )
        .await
        .unwrap();
    let orphan = kite_aws::schedule_name("dev", "gone", "s", 0);

    // Within a minute of those writes, a reconcile leaves them be (a save may be newer
    // than its read) but registers the missing schedules.
    let first = engine.reconcile_schedules().await.unwrap();
    assert!(
        first.created >= 1 && first.recent >= 2 && first.deleted == 0,
        "{first:?}"
    );
    assert!(a.schedules.definition(&orphan).await.unwrap().is_some());
    let daily = a.schedules.flow_schedules("dev", "daily-report").await.unwrap();
    assert!(!daily.is_empty() && daily.values().all(|d| d.enabled && d.role_arn == ROLE_ARN));

    // Later (a clock five minutes ahead): the orphan goes, the edit is undone; a schedule
    // deleted behind Kite's back comes back.
    let deleted = daily.keys().next().unwrap().clone();
    a.schedules
        .client()
        .delete_schedule()
        .group_name(a.schedules.group())
        .name(&deleted)
        .send()
        .await
        .unwrap();
    let counter = CallCounter::default();
    let counted = kite_aws::aws_adapters_counted(&config, counter.clone()).await;
    let mut ports = counted.ports();
    ports.clock = Arc::new(FixedClock(settled()));
    let later = kite_engine::Engine::new(ports, aws_engine_config());
    let report = later.reconcile_schedules().await.unwrap();
    let calls = counter.snapshot();
    eprintln!("reconcile of 2 flows: {report:?}, calls {calls:?}");
    assert_eq!(
        (report.created, report.updated, report.deleted, report.recent),
        (1, 1, 1, 0),
        "{report:?}"
    );
    assert!(a.schedules.definition(&orphan).await.unwrap().is_none());
    assert!(a.schedules.definition(&deleted).await.unwrap().is_some());
    assert_eq!(
        a.schedules.definition(&hourly_name).await.unwrap(),
        Some(registered)
    );
    // The flows' and trigger states' queries, one list, a read per schedule that stayed.
    assert_eq!(calls.get("DynamoDB.Query"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("Scheduler.ListSchedules"), Some(&1), "{calls:?}");
    assert_eq!(
        calls.get("Scheduler.GetSchedule").copied(),
        Some((report.found - report.deleted) as u64),
        "{calls:?}"
    );
    // Nothing left to repair.
    let again = later.reconcile_schedules().await.unwrap();
    assert!(!again.changed(), "{again:?}");
    // A disabled trigger stays disabled through a reconcile.
    engine
        .set_trigger_disabled("dev", "hourly", "every-hour", true)
        .await
        .unwrap();
    assert!(!later.reconcile_schedules().await.unwrap().changed());
    assert!(
        !a.schedules
            .definition(&hourly_name)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
}

/// A stream record's image as Lambda delivers it (DynamoDB JSON).
fn image_json(image: &HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>) -> serde_json::Value {
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    let mut out = serde_json::Map::new();
    for (k, v) in image {
        let v = match v {
            A::S(s) => serde_json::json!({ "S": s }),
            A::N(n) => serde_json::json!({ "N": n }),
            A::Bool(b) => serde_json::json!({ "BOOL": b }),
            A::B(b) => {
                use base64::Engine as _;
                serde_json::json!({ "B": base64::engine::general_purpose::STANDARD.encode(b.as_ref()) })
            }
            _ => continue,
        };
        out.insert(k.clone(), v);
    }
    serde_json::Value::Object(out)
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn stream_records_carry_execution_state_changes() {
    let a = setup("stream").await;
    let repo: &dyn ExecutionRepository = a.store.as_ref();
    let mut e = execution("s1", "dev", "f", StateType::Created, t(0), &[]);
    repo.commit(transition(e.clone(), None, vec![], vec![]))
        .await
        .unwrap();
    e.state.set(StateType::Running, t(1));
    repo.commit(transition(e.clone(), Some(1), vec![], vec![]))
        .await
        .unwrap();
    e.state.set(StateType::Success, t(2));
    repo.commit(transition(e.clone(), Some(2), vec![], vec![]))
        .await
        .unwrap();

    let sdk_config = kite_aws::config::sdk_config();
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk_config);
    let table = a
        .store
        .dynamodb()
        .describe_table()
        .table_name(a.store.table_name())
        .send()
        .await
        .unwrap();
    let arn = table
        .table()
        .and_then(|t| t.latest_stream_arn())
        .expect("stream enabled")
        .to_string();
    let described = streams.describe_stream().stream_arn(&arn).send().await.unwrap();
    let shards = described
        .stream_description()
        .map(|d| d.shards().to_vec())
        .unwrap_or_default();
    let mut states = Vec::new();
    for shard in shards {
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let records = streams
            .get_records()
            .shard_iterator(iterator.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        for record in records.records() {
            let Some(data) = record.dynamodb() else { continue };
            let Some(new) = data.new_image() else { continue };
            let old_state = data.old_image().and_then(|o| match o.get("state") {
                Some(aws_sdk_dynamodbstreams::types::AttributeValue::S(s)) => Some(s.clone()),
                _ => None,
            });
            // What the stream function receives and decodes.
            if let Some(v) = a
                .store
                .execution_from_stream_image(&image_json(new))
                .await
                .unwrap()
            {
                states.push((old_state, v.execution.state.current, v.version));
            }
        }
    }
    assert_eq!(
        states,
        [
            (None, StateType::Created, 1),
            (Some("CREATED".into()), StateType::Running, 2),
            (Some("RUNNING".into()), StateType::Success, 3)
        ]
    );
    // Log items are in the stream too, but are not executions.
    assert!(a
        .store
        .execution_from_stream_image(&serde_json::json!({"pk": {"S": "EXEC#s1"}, "sk": {"S": "LOG#1"}}))
        .await
        .unwrap()
        .is_none());
}

fn config_of(a: &AwsAdapters) -> kite_aws::AwsConfig {
    kite_aws::AwsConfig {
        table_name: a.store.table_name().to_string(),
        bucket_name: a.files.bucket().to_string(),
        queue_url: a.store.queue_url().map(str::to_string),
        scheduler_function_arn: Some(SCHEDULER_ARN.into()),
        schedule_group: a.schedules.group().to_string(),
        scheduler_role_arn: Some(ROLE_ARN.into()),
        schedule_dlq_arn: Some(DLQ_ARN.into()),
        outbox_grace: Duration::from_secs(120),
        log_retention_days: 30,
        s3_path_style: true,
        secret_prefix: a.secrets.prefix().to_string(),
        secret_ttl: Duration::from_secs(300),
    }
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn searches_by_start_date_read_the_index_a_page_at_a_time() {
    let a = setup("bounded").await;
    let flows: &dyn FlowRepository = a.store.as_ref();
    let repo: &dyn ExecutionRepository = a.store.as_ref();
    for (ns, id) in [("busy", "f"), ("busy", "g"), ("quiet", "q")] {
        flows
            .save(FlowSave::create(ns, id, &suite::flow_source(ns, id), t(0)))
            .await
            .unwrap();
    }
    // busy: 40 successes one second apart, behind them two failures; quiet: one of each.
    let mut executions: Vec<_> = (0..40)
        .map(|i| (format!("f{i:02}"), "busy", "f", StateType::Success, 100 + i))
        .collect();
    executions.extend([
        ("g1".to_string(), "busy", "g", StateType::Failed, 50),
        ("g0".to_string(), "busy", "g", StateType::Failed, 10),
        ("q0".to_string(), "quiet", "q", StateType::Success, 135),
        ("q1".to_string(), "quiet", "q", StateType::Failed, 20),
    ]);
    for (id, ns, flow, state, at) in &executions {
        repo.insert(&suite::execution(id, ns, flow, *state, t(*at), &[]))
            .await
            .unwrap();
    }

    let counter = CallCounter::default();
    let small = kite_aws::SearchBudget {
        query_limit: 5,
        count_budget: 10,
        read_limit: 30,
    };
    let store_with = |budget, counter| {
        let config = config_of(&a);
        async move {
            let adapters = kite_aws::aws_adapters_counted(&config, counter).await;
            Arc::try_unwrap(adapters.store)
                .ok()
                .expect("one owner")
                .with_search_budget(budget)
        }
    };
    let store = store_with(small, counter.clone()).await;
    let search =
        |store, q: ExecutionQuery| async move { ExecutionRepository::search(store, &q).await.unwrap() };
    let ids = |p: &Page<kite_core::execution::Execution>| {
        p.results
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let newest = |page| ExecutionQuery {
        pagination: Pagination { page, size: 4 },
        ..Default::default()
    };
    let failed = || ExecutionQuery {
        states: vec![StateType::Failed],
        ..Default::default()
    };

    // Newest first, both namespaces merged; counted within the budget, the total is a
    // lower bound that announces the next page.
    let before = counter.total();
    let first = search(&store, newest(1)).await;
    assert_eq!(ids(&first), "f39 f38 f37 f36");
    assert!(first.total > 4 && first.total < 44, "total {}", first.total);
    let calls = counter.total() - before;
    // The flows index, then pages of 5 until the count budget: never the whole index.
    assert!(calls <= 6, "{calls} calls: {:?}", counter.snapshot());
    // q0 and f35 started in the same second: the id breaks the tie, as in the default order.
    assert_eq!(ids(&search(&store, newest(2)).await), "q0 f35 f34 f33");

    // Oldest first; an exact total when the range fits in the budget.
    let quiet = search(
        &store,
        ExecutionQuery {
            namespace: Some("quiet".into()),
            sort: vec![Sort {
                field: "state.startDate".into(),
                descending: false,
            }],
            ..Default::default()
        },
    )
    .await;
    assert_eq!((ids(&quiet).as_str(), quiet.total), ("q1 q0", 2));

    // The state filter runs in DynamoDB. Within 30 items read, busy's failures behind
    // 40 successes are not reached, and quiet's may not jump ahead of them: nothing.
    let bounded = search(&store, failed()).await;
    assert_eq!((ids(&bounded).as_str(), bounded.total), ("", 0));
    // With room to read, every failure in order.
    let roomy = store_with(
        kite_aws::SearchBudget {
            read_limit: 1_000,
            ..small
        },
        CallCounter::default(),
    )
    .await;
    let all = search(&roomy, failed()).await;
    assert_eq!((ids(&all).as_str(), all.total), ("g1 q1 g0", 3));
}

#[tokio::test]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn data_survives_a_new_process() {
    let a = setup("reopen").await;
    suite::write_before_reopening(a.store.as_ref(), a.store.as_ref()).await;
    // Another function instance: new clients, nothing cached.
    let other = kite_aws::aws_adapters(&config_of(&a)).await;
    suite::check_after_reopening(other.store.as_ref(), other.store.as_ref()).await;
}

/// Runs claimed work in this process, as the api function does, and counts it.
#[derive(Default)]
struct InProcess(OnceLock<kite_engine::Engine>, Arc<AtomicUsize>);

impl InProcess {
    /// Waits until no work runs (work started by running work included); bounded against
    /// a hang only.
    async fn idle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.1.load(Ordering::Acquire) > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "in-process work never ended"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Dispatcher for InProcess {
    fn dispatch(&self, items: Vec<WorkItem>) {
        if let Some(engine) = self.0.get() {
            for item in items {
                let engine = engine.clone();
                let running = self.1.clone();
                running.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(async move {
                    if let Err(e) = engine.process(item).await {
                        eprintln!("work failed: {e}");
                    }
                    running.fetch_sub(1, Ordering::AcqRel);
                });
            }
        }
    }
    fn wake_at(&self, _: DateTime<Utc>) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn benchmark01_needs_two_billable_calls_from_a_cold_function() {
    let a = setup("bench").await;
    let engine = kite_engine::Engine::new(a.ports(), kite_engine::EngineConfig::default());
    let dispatcher = Arc::new(InProcess::default());
    let _ = dispatcher.0.set(engine.clone());
    engine.set_dispatcher(dispatcher);
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/bench/benchmark01.yaml"
    ))
    .expect("benchmark01.yaml");
    engine.create_flow(&source).await.unwrap();
    // A fresh function instance: the engine caches nothing yet; its own counter.
    let counter = CallCounter::default();
    let fresh = kite_aws::aws_adapters_counted(&config_of(&a), counter.clone()).await;
    // As the functions run it: Flow triggers come from the table's stream, not the queue.
    let engine = kite_engine::Engine::new(fresh.ports(), aws_engine_config());
    let dispatcher = Arc::new(InProcess::default());
    let _ = dispatcher.0.set(engine.clone());
    engine.set_dispatcher(dispatcher.clone());

    let flow = engine.get_flow("benchmarks", "benchmark01", None).await.unwrap();
    let execution = engine
        .create_execution(kite_engine::CreateExecution {
            namespace: flow.flow.namespace.clone(),
            flow_id: flow.flow.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    // Watched through the other adapters, whose calls are not counted (bounded against a
    // hang only).
    let mut state = StateType::Created;
    for _ in 0..1200 {
        state = ExecutionRepository::get(a.store.as_ref(), &execution.id)
            .await
            .unwrap()
            .map_or(StateType::Created, |v| v.execution.state.current);
        if state.is_terminated() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, StateType::Success);
    // Any work still running in this process (there should be none) ends before counting,
    // so that a stray background write is counted.
    dispatcher.idle().await;
    let calls = counter.snapshot();
    eprintln!("benchmark01 AWS calls: {calls:?}");
    // The flow's GetItem (cold function) and one single-item write: the execution starts
    // and ends in the same invocation before its first write, its log line in its item.
    assert_eq!(counter.total(), 2, "{calls:?}");
    assert_eq!(calls.get("DynamoDB.PutItem"), Some(&1), "{calls:?}");
    // The whole run is in DynamoDB: the execution, its log line, an empty outbox.
    let stored = ExecutionRepository::get(a.store.as_ref(), &execution.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.execution.state.current, StateType::Success);
    let logs = a
        .store
        .list(&LogQuery {
            execution_id: execution.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(logs.iter().any(|l| l.message == "Hello World"), "{logs:?}");
    // Item sizes behind the write units (docs/aws.md prices them).
    let raw = a
        .store
        .dynamodb()
        .get_item()
        .table_name(a.store.table_name())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("EXEC#{}", execution.id)),
        )
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("EXEC".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let packed = match raw.get("bodyZ") {
        Some(aws_sdk_dynamodb::types::AttributeValue::B(b)) => b.as_ref().len(),
        other => panic!("execution body not deflated: {other:?}"),
    };
    let item_size = dynamodb_item_size(&raw);
    eprintln!(
        "benchmark01 sizes: execution JSON {} B, stored deflated {packed} B, item {item_size} B, flow {} B",
        serde_json::to_string(&stored.execution).unwrap().len(),
        source.len()
    );
    // One write unit for the item and one for its index copy (docs/aws.md's cost table).
    assert!(
        item_size <= 1024,
        "benchmark01's execution item is {item_size} bytes"
    );
    assert!(TaskQueue::is_empty(a.store.as_ref()).await.unwrap());
}

/// An item's size as DynamoDB bills it: attribute names plus values (numbers take about
/// one byte per two significant digits, plus one).
fn dynamodb_item_size(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> usize {
    use aws_sdk_dynamodb::types::AttributeValue as V;
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    V::S(v) => v.len(),
                    V::N(v) => v.trim_start_matches('-').trim_matches('0').len().div_ceil(2) + 1,
                    V::B(v) => v.as_ref().len(),
                    V::Bool(_) | V::Null(_) => 1,
                    other => panic!("unexpected attribute {other:?}"),
                }
        })
        .sum()
}

struct FixedClock(DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

fn aws_engine_config() -> kite_engine::EngineConfig {
    kite_engine::EngineConfig {
        flow_triggers_in_queue: false,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn saved_schedule_flows_become_schedules_and_firings_executions() {
    let a = setup("schedflow").await;
    // Saved half a minute before a 09:00 in Paris on a summer weekday (07:00 UTC).
    let fired_at = Utc.with_ymd_and_hms(2026, 6, 3, 7, 0, 0).single().unwrap();
    let mut ports = a.ports();
    ports.clock = Arc::new(FixedClock(fired_at - chrono::Duration::seconds(30)));
    let engine = kite_engine::Engine::new(ports, aws_engine_config());
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../flows/dev/daily-report.yaml"
    ))
    .expect("daily-report.yaml");
    engine.create_flow(&source).await.unwrap();
    let schedules = a.schedules.flow_schedules("dev", "daily-report").await.unwrap();
    assert!(
        !schedules.is_empty(),
        "a schedule per UTC expression of the Paris cron"
    );
    assert!(schedules
        .values()
        .all(|d| d.expression.starts_with("cron(") && d.enabled && d.timezone.as_deref() == Some("UTC")));
    // The schedule fires at 09:00: one execution, and the same firing delivered twice
    // creates no second one.
    let first = engine
        .fire_schedule("dev", "daily-report", "weekdays", fired_at)
        .await
        .unwrap();
    let again = engine
        .fire_schedule("dev", "daily-report", "weekdays", fired_at)
        .await
        .unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(again.iter().all(|e| e.id == first[0].id), "{again:?}");
    let query = ExecutionQuery {
        namespace: Some("dev".into()),
        flow_id: Some("daily-report".into()),
        ..Default::default()
    };
    let found = ExecutionRepository::search(a.store.as_ref(), &query)
        .await
        .unwrap();
    assert_eq!(found.total, 1);
    // Deleting the flow removes its schedules.
    engine.delete_flow("dev", "daily-report").await.unwrap();
    assert!(a
        .schedules
        .flow_schedules("dev", "daily-report")
        .await
        .unwrap()
        .is_empty());
}

/// `secret('NAME')` reads the Secrets Manager secret `{prefix}NAME`, cached per instance;
/// a pass masks the values in its log lines; a computed name fails saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto: tests/aws/run.sh"]
async fn flow_secrets_come_from_secrets_manager_and_are_masked() {
    let mut config = setup_config("secrets").await;
    config.secret_prefix = format!("{}/", unique("secrets"));
    let a = kite_aws::aws_adapters(&config).await;
    let client = aws_sdk_secretsmanager::Client::new(&kite_aws::config::sdk_config());
    client
        .create_secret()
        .name(a.secrets.secret_id("API_TOKEN"))
        .secret_string("tok-aws-1")
        .send()
        .await
        .expect("create the secret in moto");

    // The store: found, missing (Kestra's message), cached for the TTL.
    assert_eq!(a.secrets.fetch("API_TOKEN").await, Ok("tok-aws-1".into()));
    let missing = a.secrets.fetch("MISSING").await.expect_err("missing");
    assert_eq!(missing.to_string(), "Cannot find secret for key 'MISSING'.");
    client
        .put_secret_value()
        .secret_id(a.secrets.secret_id("API_TOKEN"))
        .secret_string("tok-aws-2")
        .send()
        .await
        .expect("update the secret");
    assert_eq!(
        a.secrets.fetch("API_TOKEN").await,
        Ok("tok-aws-1".into()),
        "cached"
    );
    let uncached =
        kite_aws::SecretsManagerSecrets::new(client.clone(), config.secret_prefix.clone(), Duration::ZERO);
    assert_eq!(uncached.fetch("API_TOKEN").await, Ok("tok-aws-2".into()));

    // Through the engine, as the api function runs an execution of light tasks.
    let engine = kite_engine::Engine::new(a.ports(), aws_engine_config());
    let dispatcher = Arc::new(InProcess::default());
    let _ = dispatcher.0.set(engine.clone());
    engine.set_dispatcher(dispatcher.clone());
    let flow = "id: secrets\nnamespace: dev\ntasks:\n  - id: literal\n    type: io.kestra.plugin.core.log.Log\n    message: \"token {{ secret('API_TOKEN') }}\"\n  - id: computed\n    type: io.kestra.plugin.core.log.Log\n    message: \"{{ secret('OTHER_' ~ 'NAME') }}\"\n";
    engine.create_flow(flow).await.unwrap();
    let created = engine
        .create_execution(kite_engine::CreateExecution {
            namespace: "dev".into(),
            flow_id: "secrets".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    dispatcher.idle().await;
    let done = engine
        .wait_for_terminal(&created.id, Duration::from_secs(60))
        .await
        .unwrap();
    let logs: Vec<String> = engine
        .logs(&LogQuery {
            execution_id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(done.state.current, StateType::Failed, "{logs:?}");
    assert!(logs.contains(&"token ******".to_string()), "{logs:?}");
    assert!(
        logs.iter()
            .any(|l| l.contains("Unable to read secret 'OTHER_NAME'") && l.contains("names literally")),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains("tok-aws")), "{logs:?}");
}
