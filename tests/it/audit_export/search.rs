//! Each filter criterion selects exactly its entries, newest first, on both backends; pages
//! follow one another by the last sequence number seen or by offset.

use beffroi::audit::query::{Filter, IpFilter, Page, PageStart, SearchPage, count, search};
use beffroi::audit::store;

use super::{Log, populate_for_search};
use crate::both_backends;
use crate::helpers::Backend;

both_backends!(each_filter_selects_exactly_its_entries);

async fn seqs(log: &Log, filter: &Filter) -> Vec<u64> {
    let page = search(&log.db, filter, Page::first(100)).await.unwrap();
    assert!(!page.more);
    let found: Vec<u64> = page.entries.iter().map(|e| e.entry.seq).collect();
    // The count agrees with the search, and the largest seq is the first, newest-first.
    let (n, max) = count(&log.db, filter, None).await.unwrap();
    assert_eq!(n, found.len() as u64, "{filter:?}");
    assert_eq!(max, found.first().copied().unwrap_or(0), "{filter:?}");
    found
}

async fn each_filter_selects_exactly_its_entries(backend: Backend) {
    let log = Log::new(backend).await;
    populate_for_search(&log).await;
    let f = Filter::default;
    let ip = |text: &str| Some(IpFilter::parse(text).unwrap());
    let some = |text: &str| Some(text.to_owned());
    #[rustfmt::skip]
    let cases: Vec<(&str, Filter, Vec<u64>)> = vec![
        ("no criterion", f(), vec![6, 5, 4, 3, 2, 1]),
        ("empty criteria", Filter { actor: some(""), target: some(""), ..f() }, vec![6, 5, 4, 3, 2, 1]),
        // An account number matches actor_id exactly, or a name containing it.
        ("actor id", Filter { actor: some("7"), ..f() }, vec![6, 4, 1]),
        ("actor name, any case", Filter { actor: some("ALICE m"), ..f() }, vec![4, 1]),
        // Case folding is for ASCII letters only, on both backends alike.
        ("actor name, ASCII case only", Filter { actor: some("élodie"), ..f() }, vec![]),
        ("actor name, accented capital as typed", Filter { actor: some("ÉLODIE"), ..f() }, vec![5]),
        ("actor name, part", Filter { actor: some("lodie z"), ..f() }, vec![5]),
        ("action exact", Filter { action: some("auth.sign_in"), ..f() }, vec![5, 1]),
        ("action is not a prefix", Filter { action: some("auth.sign"), ..f() }, vec![]),
        ("target part, case-sensitive", Filter { target: some("account:7"), ..f() }, vec![3]),
        ("target part", Filter { target: some("ccount:"), ..f() }, vec![5, 3, 2]),
        ("target: % is a character, not a wildcard", Filter { target: some("%"), ..f() }, vec![6]),
        ("target: _ is a character, not a wildcard", Filter { target: some("account_7"), ..f() }, vec![]),
        ("outcome", Filter { outcome: some("denied"), ..f() }, vec![5]),
        ("ip exact", Filter { ip: ip("192.0.2.10"), ..f() }, vec![1]),
        ("ip exact, any IPv6 spelling", Filter { ip: ip("2001:DB8:0::1"), ..f() }, vec![4]),
        ("ip prefix", Filter { ip: ip("192.0.2.1*"), ..f() }, vec![6, 2, 1]),
        ("ip prefix v6", Filter { ip: ip("2001:db8:*"), ..f() }, vec![4]),
        ("quote in a value", Filter { actor: some("' OR 1=1 --"), ..f() }, vec![]),
        ("criteria combine", Filter { actor: some("7"), action: some("auth.sign_in"), ..f() }, vec![1]),
    ];
    for (what, filter, expected) in cases {
        assert_eq!(seqs(&log, &filter).await, expected, "{what}");
    }

    // Time: from is included, to is excluded, whatever the stored times are.
    let all = store::stored_entries(&log.db).await.unwrap();
    let (t2, t5) = (all[1].entry.time_us, all[4].entry.time_us);
    let expected: Vec<u64> = all
        .iter()
        .rev()
        .filter(|e| e.entry.time_us >= t2 && e.entry.time_us < t5)
        .map(|e| e.entry.seq)
        .collect();
    assert!(expected.contains(&2) && !expected.contains(&5));
    let range = Filter {
        from_us: Some(t2),
        to_us: Some(t5),
        ..f()
    };
    assert_eq!(seqs(&log, &range).await, expected);
    let from = Filter {
        from_us: Some(t5),
        ..f()
    };
    assert!(seqs(&log, &from).await.contains(&5));

    // Pages, newest first: by the last seq seen, or by offset.
    let first = search(&log.db, &f(), Page::first(4)).await.unwrap();
    let page_seqs = |p: &SearchPage| p.entries.iter().map(|e| e.entry.seq).collect::<Vec<_>>();
    assert_eq!((page_seqs(&first), first.more), (vec![6, 5, 4, 3], true));
    let next = first.next(4).unwrap();
    assert_eq!(next.start, PageStart::AfterSeq(3));
    let second = search(&log.db, &f(), next).await.unwrap();
    assert_eq!((page_seqs(&second), second.more), (vec![2, 1], false));
    assert!(second.next(4).is_none());
    let by_offset = search(
        &log.db,
        &Filter {
            actor: some("7"),
            ..f()
        },
        Page {
            start: PageStart::Offset(1),
            limit: 1,
        },
    )
    .await
    .unwrap();
    assert_eq!((page_seqs(&by_offset), by_offset.more), (vec![4], true));
    // A limit of 0 still returns one entry; a huge one is capped.
    let tiny = search(&log.db, &f(), Page::first(0)).await.unwrap();
    assert_eq!(page_seqs(&tiny), vec![6]);
}
