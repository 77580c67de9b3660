//! Conformance cases: files.

use super::*;

/// Put, size, get and read back (also synchronously from a runtime worker), the size
/// bound (small and past 8 MiB), large files, prefix deletes by folder.
pub async fn file_storage_round_trip_and_bounds(files: Arc<dyn FileStorage>) {
    let fs = files.as_ref();
    let uri = "kestra:///dev/f/executions/e1/inputs/myfile/a.txt";
    assert_eq!(fs.put(uri, stream(b"hello".to_vec()), 100).await.unwrap(), 5);
    assert!(fs.exists(uri).await.unwrap());
    assert_eq!(fs.size(uri).await.unwrap(), Some(5));
    assert_eq!(read_all(fs.get(uri).await.unwrap()).await, b"hello");
    // read() of expressions runs synchronously inside the runtime.
    let reader = files.clone();
    let blocking = tokio::spawn(async move { reader.read_blocking(uri) })
        .await
        .unwrap();
    assert_eq!(blocking.unwrap(), b"hello");
    assert!(matches!(
        fs.get("kestra:///dev/none.txt").await,
        Err(StorageError::NotFound(_))
    ));
    assert_eq!(fs.size("kestra:///dev/none.txt").await.unwrap(), None);

    // Size bound: nothing is stored, small or large (S3 multipart).
    let big = "kestra:///dev/f/big.bin";
    assert!(matches!(
        fs.put(big, stream(vec![7u8; 200]), 100).await,
        Err(StorageError::TooLarge { limit: 100 })
    ));
    let huge = 8 * 1024 * 1024 + 3 * 1024 * 1024;
    assert!(matches!(
        fs.put(big, stream(vec![1u8; huge]), 9 * 1024 * 1024).await,
        Err(StorageError::TooLarge { .. })
    ));
    assert!(!fs.exists(big).await.unwrap());
    // 11 MiB (two S3 parts) read back intact.
    let data: Vec<u8> = (0..huge).map(|i| (i % 251) as u8).collect();
    assert_eq!(
        fs.put(big, stream(data.clone()), u64::MAX).await.unwrap(),
        huge as u64
    );
    assert_eq!(fs.size(big).await.unwrap(), Some(huge as u64));
    assert!(read_all(fs.get(big).await.unwrap()).await == data);

    // A prefix is a folder: e1/ goes, e10/ stays.
    let sibling = "kestra:///dev/f/executions/e10/x.txt";
    fs.put(sibling, stream(b"x".to_vec()), 10).await.unwrap();
    assert_eq!(
        fs.delete_prefix("kestra:///dev/f/executions/e1/").await.unwrap(),
        1
    );
    assert!(!fs.exists(uri).await.unwrap());
    assert!(fs.exists(sibling).await.unwrap());

    // A file received under the receiving prefix moves into place, names with spaces too.
    let received = format!("{RECEIVING_PREFIX}e2/myfile/my report.txt");
    let placed = "kestra:///dev/f/executions/e2/inputs/myfile/my report.txt";
    fs.put(&received, stream(b"moved".to_vec()), 10).await.unwrap();
    fs.rename(&received, placed).await.unwrap();
    assert!(!fs.exists(&received).await.unwrap());
    assert_eq!(read_all(fs.get(placed).await.unwrap()).await, b"moved");
    assert!(matches!(
        fs.rename(&received, placed).await,
        Err(StorageError::NotFound(_))
    ));
}

/// URIs that are not `kestra:///` or leave the root are refused by every operation, and
/// the root itself cannot be deleted.
pub async fn file_storage_refuses_paths_outside_its_root(files: &dyn FileStorage) {
    for bad in [
        "kestra:///../secret.txt",
        "kestra:///dev/../../secret.txt",
        "kestra:////etc/passwd",
        "kestra:///dev/./x",
        "file:///etc/passwd",
        "/etc/passwd",
        "kestra:///dev\\..\\x",
        "kestra:///C:/x",
    ] {
        assert!(
            matches!(
                files.put(bad, stream(b"x".to_vec()), 10).await,
                Err(StorageError::InvalidUri(_))
            ),
            "{bad}"
        );
        assert!(
            matches!(files.get(bad).await, Err(StorageError::InvalidUri(_))),
            "{bad}"
        );
        assert!(files.read_blocking(bad).is_err(), "{bad}");
    }
    assert!(files.delete_prefix("kestra:///").await.is_err());
}

/// Listing a folder: its files at any depth with their sizes and dates, sorted by URI,
/// a sibling sharing its name's start left out, a file listed by its own URI, nothing
/// for an absent folder, and the root refused.
pub async fn file_storage_lists_a_folder(files: &dyn FileStorage) {
    let before = Utc::now() - chrono::Duration::seconds(60);
    let root = "kestra:///company/team/_files";
    for (path, body) in [
        ("/b.txt", "bb"),
        ("/a/one.sql", "1"),
        ("/a/deeper/two.sql", "222"),
        ("/with space.txt", "s"),
    ] {
        files
            .put(&format!("{root}{path}"), stream(body.as_bytes().to_vec()), 100)
            .await
            .unwrap();
    }
    files
        .put("kestra:///company/team/_filesX/c.txt", stream(b"x".to_vec()), 10)
        .await
        .unwrap();
    let listed = files.list(&format!("{root}/")).await.unwrap();
    let uris: Vec<&str> = listed.iter().map(|f| f.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "kestra:///company/team/_files/a/deeper/two.sql",
            "kestra:///company/team/_files/a/one.sql",
            "kestra:///company/team/_files/b.txt",
            "kestra:///company/team/_files/with space.txt",
        ]
    );
    let sizes: Vec<u64> = listed.iter().map(|f| f.size).collect();
    assert_eq!(sizes, [3, 1, 2, 1]);
    let after = Utc::now() + chrono::Duration::seconds(60);
    for f in &listed {
        assert!(f.last_modified > before && f.last_modified < after, "{f:?}");
    }
    // Without the trailing slash, the same folder.
    assert_eq!(files.list(root).await.unwrap(), listed);
    let sub = files.list(&format!("{root}/a")).await.unwrap();
    assert_eq!(sub.len(), 2);
    let one = files.list(&format!("{root}/b.txt")).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(
        (one[0].uri.as_str(), one[0].size),
        ("kestra:///company/team/_files/b.txt", 2)
    );
    assert!(files.list(&format!("{root}/none/")).await.unwrap().is_empty());
    assert!(files.list(&format!("{root}/b.t")).await.unwrap().is_empty());
    assert!(matches!(
        files.list("kestra:///").await,
        Err(StorageError::InvalidUri(_))
    ));
    assert!(matches!(
        files.list("kestra:///company/../x/").await,
        Err(StorageError::InvalidUri(_))
    ));
}
