//! Appends from several threads, through one handle and through two
//! handles on the same file, all land in one intact chain.

use std::sync::Arc;

use moat_audit::{AuditStore, Filter, Kind, Order};

use crate::support::{Run, store_path, tempdir};

const THREADS: usize = 4;
const APPENDS_PER_THREAD: usize = 25;

/// Counts the records of each principal `thread-N`.
fn per_thread(store: &AuditStore) -> Vec<usize> {
    let listing = store
        .list(
            &Filter {
                kind: Kind::All,
                ..Filter::default()
            },
            Order::OldestFirst,
            None,
        )
        .expect("list");
    (0..THREADS)
        .map(|thread| {
            let principal = format!("thread-{thread}");
            listing
                .entries
                .iter()
                .filter(|l| {
                    l.entry.event().expect("valid").actor().principal.as_deref() == Some(&principal)
                })
                .count()
        })
        .collect()
}

fn append_from(store: &AuditStore, thread: usize) {
    for index in 0..APPENDS_PER_THREAD {
        let mut run = Run::new(&format!("t{thread}-{index}"));
        run.principal = Some(format!("thread-{thread}"));
        store.append(run.started()).expect("append");
    }
}

#[test]
fn threads_share_one_handle() {
    let dir = tempdir();
    let store = Arc::new(AuditStore::open(&store_path(dir.path())).expect("open"));

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let store = Arc::clone(&store);
            scope.spawn(move || append_from(&store, thread));
        }
    });

    let verification = store.verify(None).expect("verify");
    assert!(verification.valid, "{verification:#?}");
    assert_eq!(verification.records, (THREADS * APPENDS_PER_THREAD) as u64);
    assert_eq!(per_thread(&store), vec![APPENDS_PER_THREAD; THREADS]);
}

#[test]
fn two_handles_on_one_file() {
    let dir = tempdir();
    let path = store_path(dir.path());
    let first = AuditStore::open(&path).expect("open the first handle");
    let second = AuditStore::open(&path).expect("open the second handle");

    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let store = match thread % 2 {
                0 => &first,
                _ => &second,
            };
            scope.spawn(move || append_from(store, thread));
        }
    });

    let reader = AuditStore::open_read_only(&path).expect("open for reading");
    let verification = reader.verify(None).expect("verify");
    assert!(verification.valid, "{verification:#?}");
    assert_eq!(verification.records, (THREADS * APPENDS_PER_THREAD) as u64);
    assert_eq!(per_thread(&reader), vec![APPENDS_PER_THREAD; THREADS]);
}
