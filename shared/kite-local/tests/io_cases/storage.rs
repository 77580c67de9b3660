//! The internal storage tasks after Kestra's `storage` unit tests: the files those tests
//! put in storage are given as FILE inputs named `get.yml` (the name they use).

use kite_core::execution::StateType::{Success, Warning};
use serde_json::{json, Value};

use super::{ensure, same, Check, Done, Env};

/// `SplitTest`'s content: `count` numbers left-padded to 20 characters, one a line.
fn padded_lines(count: usize) -> String {
    (0..count).map(|i| format!("{i:>20}\n")).collect()
}

fn uris(done: &Done, task: &str) -> Result<Vec<Value>, String> {
    done.output(task, "uris")
        .as_array()
        .cloned()
        .ok_or_else(|| format!("{task} has no uris: {}", done.output(task, "uris")))
}

async fn joined(env: &Env, uris: &[Value]) -> Result<String, String> {
    let mut all = String::new();
    for uri in uris {
        all.push_str(&env.text(uri).await?);
    }
    Ok(all)
}

fn ends_with(what: &str, uri: &Value, suffix: &str) -> Check {
    ensure(uri.as_str().is_some_and(|u| u.ends_with(suffix)), || {
        format!("{what} {uri} does not end with {suffix}")
    })
}

/// `WriteTest`, `ConcatTest` (list and JSON), `ReverseTest`, `SizeTest`, `SplitTest`
/// (partitions, rows, bytes) and `DeleteTest`.
pub async fn files(env: &Env) -> Check {
    // Kestra's SizeTest writes 42 random bytes; any 42 bytes will do.
    let random: Vec<u8> = (0u8..42).map(|i| i.wrapping_mul(97).wrapping_add(13)).collect();
    let inputs = [
        ("numbers", "get.yml", b"1\n2\n3\n".to_vec()),
        ("random", "get.yml", random),
        ("lines", "get.yml", padded_lines(1000).into_bytes()),
        ("many", "get.yml", padded_lines(12288).into_bytes()),
    ];
    let done = env.run("storage-files.yaml", &[], &inputs).await?;
    done.states(
        Warning,
        &[
            ("write", Success),
            ("delete", Success),
            ("delete_again", Success),
            ("delete_missing_error", Warning),
        ],
    )?;
    let write = done.output("write", "uri");
    ends_with("write uri", &write, ".txt")?;
    same(
        "write content",
        env.text(&write).await?,
        "Hello World".to_string(),
    )?;

    for task in ["concat", "concat_json"] {
        let uri = done.output(task, "uri");
        ends_with(task, &uri, ".yml")?;
        same(task, env.text(&uri).await?, "1\n2\n3\n\n1\n2\n3\n\n".to_string())?;
    }
    let reverse = done.output("reverse", "uri");
    ends_with("reverse uri", &reverse, ".yml")?;
    same("reverse", env.text(&reverse).await?, "3\n2\n1\n".to_string())?;
    same("size", done.output("size", "size"), json!(42))?;

    let partitions = uris(&done, "partitions")?;
    same("partitions count", partitions.len(), 8)?;
    ends_with("first partition", &partitions[0], ".yml")?;
    same(
        "partitions line breaks",
        joined(env, &partitions).await?.matches('\n').count(),
        1000,
    )?;
    let rows = uris(&done, "rows")?;
    same("rows count", rows.len(), 100)?;
    same("rows content", joined(env, &rows).await?, padded_lines(1000))?;
    let bytes = uris(&done, "bytes")?;
    same("bytes count", bytes.len(), 251)?;
    same("bytes content", joined(env, &bytes).await?, padded_lines(12288))?;

    same("delete", done.output("delete", "deleted"), json!(true))?;
    same(
        "delete_again",
        done.output("delete_again", "deleted"),
        json!(false),
    )
}

fn items(lines: &[Value]) -> Vec<u8> {
    lines
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .into_bytes()
}

fn pairs(values: &[(&str, Value)]) -> Vec<Value> {
    values
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect()
}

async fn file_items(env: &Env, done: &Done, task: &str) -> Result<Vec<Value>, String> {
    let text = env.text(&done.output(task, "uri")).await?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{task} line {l:?}: {e}")))
        .collect()
}

/// `FilterItemsTest` and `DeduplicateItemsTest`. Kestra's tests write their items as Ion
/// text; JSON lines are Ion text too.
pub async fn items_files(env: &Env) -> Check {
    let valid = pairs(&[
        ("k1", json!(1)),
        ("k2", json!(2)),
        ("k3", json!(3)),
        ("k4", json!(4)),
    ]);
    let invalid = pairs(&[
        ("k1", json!(1)),
        ("k2", json!("dummy")),
        ("k3", json!(3)),
        ("k4", json!(4)),
    ]);
    let to_dedup = pairs(&[
        ("k1", json!("v1")),
        ("k2", json!("v1")),
        ("k3", json!("v1")),
        ("k1", json!("v2")),
        ("k2", json!("v2")),
        ("k2", Value::Null),
        ("k3", json!("v2")),
        ("k1", json!("v3")),
    ]);
    let triple = |k: &str, v2: Value| json!({"key": k, "v1": k, "v2": v2});
    let triples = vec![
        triple("k1", json!("v1")),
        triple("k2", json!("v1")),
        triple("k3", json!("v1")),
        triple("k1", json!("v2")),
        triple("k2", Value::Null),
        triple("k3", json!("v2")),
        triple("k1", json!("v3")),
    ];
    let inputs = [
        ("valid", "items.ion", items(&valid)),
        ("invalid", "items.ion", items(&invalid)),
        ("pairs", "items.ion", items(&to_dedup)),
        ("triples", "items.ion", items(&triples)),
    ];
    let done = env.run("storage-items.yaml", &[], &inputs).await?;
    done.states(
        Warning,
        &[
            ("include", Success),
            ("invalid_fail", Warning),
            ("not_boolean", Success),
            ("dedup_composite", Success),
        ],
    )?;
    let d = &done;
    let expect = |task: &'static str, dropped: i64, processed: i64, kept: Vec<Value>| async move {
        same(
            &format!("{task} droppedItemsTotal"),
            d.output(task, "droppedItemsTotal"),
            json!(dropped),
        )?;
        same(
            &format!("{task} processedItemsTotal"),
            d.output(task, "processedItemsTotal"),
            json!(processed),
        )?;
        same(&format!("{task} items"), file_items(env, d, task).await?, kept)
    };
    expect("include", 2, 4, pairs(&[("k2", json!(2)), ("k4", json!(4))])).await?;
    expect("exclude", 2, 4, pairs(&[("k1", json!(1)), ("k3", json!(3))])).await?;
    expect(
        "invalid_include",
        2,
        4,
        pairs(&[("k2", json!("dummy")), ("k4", json!(4))]),
    )
    .await?;
    expect("invalid_exclude", 3, 4, pairs(&[("k4", json!(4))])).await?;
    expect("not_boolean", 0, 4, valid.clone()).await?;
    expect(
        "dedup",
        5,
        8,
        pairs(&[("k2", Value::Null), ("k3", json!("v2")), ("k1", json!("v3"))]),
    )
    .await?;
    same("dedup numKeys", done.output("dedup", "numKeys"), json!(3))?;
    expect(
        "dedup_composite",
        4,
        7,
        vec![
            triple("k2", Value::Null),
            triple("k3", json!("v2")),
            triple("k1", json!("v3")),
        ],
    )
    .await?;
    same(
        "dedup_composite numKeys",
        done.output("dedup_composite", "numKeys"),
        json!(3),
    )
}

/// plugin-serdes' `csv.yaml` sanity check: CSV → Ion (the first record's `order_id` is
/// "1", as its check reads) → CSV, which gives back the same text.
pub async fn serdes_csv(env: &Env) -> Check {
    let csv = "order_id,customer_name,customer_email,product_id,price,quantity,total\n\
               1,Kelly Olsen,jenniferschneider@example.com,20,166.89,1,166.89\n\
               2,Miguel Lopez,miguel@example.net,14,99.99,2,199.98\n";
    let inputs = [("orders", "orders.csv", csv.as_bytes().to_vec())];
    let done = env.run("serdes-csv.yaml", &[], &inputs).await?;
    done.states(Success, &[("convert_to_ion", Success), ("ion_to_csv", Success)])?;
    let ion = env.text(&done.output("convert_to_ion", "uri")).await?;
    let first = ion.lines().next().unwrap_or_default();
    let record = kite_core::ion::from_line(first).map_err(|e| format!("{first}: {e}"))?;
    same("first order_id", record.to_json()["order_id"].clone(), json!("1"))?;
    same(
        "second record",
        ion.lines().nth(1).unwrap_or_default(),
        "{order_id:\"2\",customer_name:\"Miguel Lopez\",customer_email:\"miguel@example.net\",product_id:\"14\",price:\"99.99\",quantity:\"2\",total:\"199.98\"}",
    )?;
    let back = done.output("ion_to_csv", "uri");
    ends_with("ion_to_csv uri", &back, ".csv")?;
    same("csv round trip", env.text(&back).await?, csv.to_string())
}
