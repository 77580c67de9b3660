//! Conformance cases: kv store.

use super::*;

fn kv_write(value: KvValue, expires: Option<DateTime<Utc>>) -> KvWrite {
    KvWrite {
        value,
        description: None,
        expiration_date: expires,
    }
}

/// Values keep their type; pairs are per namespace; `overwrite: false` refuses a live
/// pair; expired pairs are absent everywhere (and may be set again); a rewrite keeps
/// the creation date; delete says whether a live pair was there.
pub async fn kv_store_types_namespaces_and_expiry(kv: &dyn KvStore) {
    use serde_json::json;
    let typed = [
        KvValue::string("hello"),
        KvValue::new(KvType::Number, json!(4.5)),
        KvValue::new(KvType::Boolean, json!(true)),
        KvValue::new(KvType::Datetime, json!("2024-01-02T03:04:05Z")),
        KvValue::new(KvType::Date, json!("2024-01-02")),
        KvValue::new(KvType::Duration, json!("PT1H")),
        KvValue::new(KvType::Json, json!({"a": [1, {"b": null}]})),
    ];
    for (i, value) in typed.iter().enumerate() {
        let key = format!("k{i}");
        kv.put_kv("team", &key, kv_write(value.clone(), None), true, t(0))
            .await
            .unwrap();
        assert_eq!(
            kv.get_kv("team", &key, t(1)).await.unwrap().as_ref(),
            Some(value),
            "{key}"
        );
    }
    assert_eq!(
        kv.get_kv("team.sub", "k0", t(1)).await.unwrap(),
        None,
        "per namespace"
    );
    assert_eq!(kv.get_kv("team", "absent", t(1)).await.unwrap(), None);

    // Listing: live pairs by key, with their metadata.
    let described = KvWrite {
        description: Some("the answer".into()),
        ..kv_write(KvValue::new(KvType::Number, json!(42)), Some(t(100)))
    };
    kv.put_kv("other", "b", described, true, t(0)).await.unwrap();
    kv.put_kv("other", "a", kv_write(KvValue::string("x"), None), true, t(0))
        .await
        .unwrap();
    let listed = kv.list_kv("other", t(1)).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    assert_eq!(listed[1].description.as_deref(), Some("the answer"));
    assert_eq!(listed[1].expiration_date, Some(t(100)));
    assert_eq!(listed[1].creation_date, t(0));
    assert_eq!(kv.list_kv("team", t(1)).await.unwrap().len(), typed.len());
    assert!(kv.list_kv("nobody", t(1)).await.unwrap().is_empty());

    // overwrite: false refuses a live pair, leaving it as it was.
    let refused = kv
        .put_kv("other", "a", kv_write(KvValue::string("y"), None), false, t(2))
        .await;
    assert!(
        matches!(refused, Err(StoreError::AlreadyExists(_))),
        "{refused:?}"
    );
    assert_eq!(
        kv.get_kv("other", "a", t(3)).await.unwrap(),
        Some(KvValue::string("x"))
    );
    // A rewrite keeps the creation date and moves the update date.
    kv.put_kv("other", "a", kv_write(KvValue::string("z"), None), true, t(5))
        .await
        .unwrap();
    let a = kv.list_kv("other", t(6)).await.unwrap().remove(0);
    assert_eq!((a.creation_date, a.update_date), (t(0), t(5)));

    // Expired: absent for get, list and delete, and free to set with overwrite: false.
    assert_eq!(kv.get_kv("other", "b", t(100)).await.unwrap(), None);
    let keys: Vec<String> = kv
        .list_kv("other", t(100))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, ["a"]);
    assert!(!kv.delete_kv("other", "b", t(100)).await.unwrap());
    kv.put_kv(
        "other",
        "b",
        kv_write(KvValue::string("new"), None),
        false,
        t(101),
    )
    .await
    .unwrap();
    assert_eq!(
        kv.get_kv("other", "b", t(102)).await.unwrap(),
        Some(KvValue::string("new"))
    );

    // Delete.
    assert!(kv.delete_kv("other", "b", t(103)).await.unwrap());
    assert!(!kv.delete_kv("other", "b", t(104)).await.unwrap());
    assert_eq!(kv.get_kv("other", "b", t(105)).await.unwrap(), None);
}

/// Of writers racing with `overwrite: false` on one key, exactly one wins.
pub async fn kv_put_without_overwrite_is_atomic(kv: Arc<dyn KvStore>) {
    let mut racers = Vec::new();
    for i in 0..8 {
        let kv = kv.clone();
        racers.push(tokio::spawn(async move {
            let write = kv_write(KvValue::string(format!("w{i}")), None);
            kv.put_kv("race", "once", write, false, t(0)).await
        }));
    }
    let mut won = 0;
    for racer in racers {
        match racer.await.expect("racer") {
            Ok(()) => won += 1,
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(won, 1);
}
