//! Security events land in the audit log, with who, from where and which request, in the same
//! transaction as the change they record; and the log they make verifies.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, Options, audit_entries, details, spawn_app, spawn_app_with};

both_backends!(
    password_sign_in_failure_change_and_sign_out_are_audited,
    break_glass_reset_is_audited_as_the_console,
    rate_limit_trips_are_audited_once_per_address,
    an_action_outside_the_catalogue_is_refused,
    the_server_signs_checkpoints_by_itself,
    purge_blanks_old_entries_and_the_log_still_verifies,
);

async fn password_sign_in_failure_change_and_sign_out_are_audited(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_admin("alice", "a long enough password").await;
    let client = app.client();

    let r = app.sign_in(&client, "alice", "wrong password!").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let failures = audit_entries(app.db(), "auth.sign_in_failure").await;
    assert_eq!(failures.len(), 1);
    let f = &failures[0];
    assert_eq!(f.outcome, "denied");
    assert_eq!(f.actor_id, None, "a refused visitor is nobody");
    assert_eq!(f.actor_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(details(f)["reason"], "wrong_password");
    assert_eq!(details(f)["login"], "alice");
    assert!(
        !f.details.contains("wrong password!"),
        "the password leaked"
    );

    let r = app
        .sign_in(&client, "alice", "a long enough password")
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let sign_ins = audit_entries(app.db(), "auth.sign_in").await;
    assert_eq!(sign_ins.len(), 1);
    let s = &sign_ins[0];
    assert_eq!(s.actor_id, Some(id));
    assert_eq!(s.actor_name.as_deref(), Some("Alice Admin"));
    assert_eq!(s.target.as_deref(), Some(format!("account:{id}").as_str()));
    assert_eq!(s.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(details(s)["method"], "password");
    assert!(s.seq > f.seq);

    // A wrong current password is refused and audited; the right one changes it.
    for (current, status) in [
        ("not the password", StatusCode::UNPROCESSABLE_ENTITY),
        ("a long enough password", StatusCode::SEE_OTHER),
    ] {
        let csrf = app.csrf_token(&client, "/account/password").await;
        let r = client
            .post(app.url("/account/password"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("current", current),
                ("new", "another long password"),
                ("confirm", "another long password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
    }
    let refused = audit_entries(app.db(), "auth.password_change_failure").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].actor_id, Some(id));
    let changed = audit_entries(app.db(), "auth.password_change").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(details(&changed[0])["other_sessions_ended"], 0);

    let csrf = app.csrf_token(&client, "/").await;
    let r = client
        .post(app.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let outs = audit_entries(app.db(), "auth.sign_out").await;
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].actor_id, Some(id));

    let report = beffroi::audit::verify::verify(app.db(), None)
        .await
        .unwrap();
    assert_eq!(report.entries, 5);
}

async fn break_glass_reset_is_audited_as_the_console(backend: Backend) {
    let app = spawn_app(backend).await;
    beffroi::cli::recover_admin(&app.config, app.db(), "admin")
        .await
        .unwrap();
    let resets = audit_entries(app.db(), "account.break_glass_reset").await;
    assert_eq!(resets.len(), 1);
    let e = &resets[0];
    assert!(e.actor_name.as_deref().unwrap().starts_with("console:"));
    assert_eq!(e.actor_ip, None);
    assert_eq!(details(e)["login"], "admin");
    assert!(!e.details.contains("password"));
}

async fn rate_limit_trips_are_audited_once_per_address(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            extra: "[security]\nrequests_per_second = 1\nrequest_burst = 3\n".into(),
            ..Options::default()
        },
    )
    .await;
    let client = app.client();
    let mut limited = 0;
    for _ in 0..10 {
        let r = client.get(app.url("/login")).send().await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert!(limited >= 3, "only {limited} refusals");
    let trips = audit_entries(app.db(), "security.rate_limited").await;
    assert_eq!(
        trips.len(),
        1,
        "later trips within the minute are counted, not logged"
    );
    assert_eq!(trips[0].outcome, "denied");
    assert_eq!(details(&trips[0])["scope"], "general");
    assert_eq!(trips[0].actor_ip.as_deref(), Some("127.0.0.1"));
}

async fn an_action_outside_the_catalogue_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut tx = app.db().begin().await.unwrap();
    let err = beffroi::security_events::record(
        &mut tx,
        &beffroi::security_events::Actor::console(),
        "made.up",
        None,
        "success",
        serde_json::json!({}),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not in the catalogue"), "{err}");
    drop(tx);
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log").await, 0);
}

async fn the_server_signs_checkpoints_by_itself(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            extra: "[audit]\ncheckpoint_every_entries = 3\n".into(),
            ..Options::default()
        },
    )
    .await;
    let client = app.client();
    for _ in 0..2 {
        app.sign_in(&client, "nobody", "wrong password!").await;
    }
    // Two entries: below the threshold, and the oldest is not an hour old.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_checkpoints").await, 0);
    app.sign_in(&client, "nobody", "wrong password!").await;
    let mut waited = 0;
    while app.count("SELECT COUNT(*) FROM audit_checkpoints").await == 0 {
        assert!(waited < 30, "no checkpoint after 3 entries and {waited} s");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        waited += 1;
    }
    // Signed with the key in the data directory, and it verifies.
    let key = beffroi::audit::checkpoint::CheckpointSigner::load_or_create(
        &beffroi::cli::checkpoint_key_path(&app.config),
    )
    .unwrap()
    .public_key();
    let report = beffroi::audit::verify::verify(app.db(), Some(&key))
        .await
        .unwrap();
    assert_eq!((report.entries, report.checkpoints), (3, 1));
}

async fn purge_blanks_old_entries_and_the_log_still_verifies(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.client();
    for _ in 0..3 {
        app.sign_in(&client, "bob", "wrong password!").await;
    }
    // Nothing is a year old yet.
    assert_eq!(
        beffroi::cli::purge_audit_log(app.db(), 365, false)
            .await
            .unwrap(),
        0
    );
    let purges = audit_entries(app.db(), "audit.purge").await;
    assert_eq!(details(&purges[0])["purged"], 0);
    // Purge with a cut-off just after the second entry, as a retention period would.
    let stored = beffroi::audit::store::stored_entries(app.db())
        .await
        .unwrap();
    let old_time = stored[1].entry.time_us;
    // A dry run counts and changes nothing.
    let cutoff_days = 30;
    assert_eq!(
        beffroi::cli::purge_audit_log(app.db(), cutoff_days, true)
            .await
            .unwrap(),
        0
    );
    let before_us = old_time + 1;
    let mut tx = app.db().begin().await.unwrap();
    let purged = beffroi::audit::store::purge_before(&mut tx, before_us)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(purged, 2);
    let all = beffroi::audit::store::stored_entries(app.db())
        .await
        .unwrap();
    assert!(all[0].purged && all[1].purged && !all[2].purged);
    assert_eq!(all[0].entry.actor_ip, None);
    assert_eq!(all[0].entry.details, "{}");
    assert_eq!(
        all[0].entry.action, "auth.sign_in_failure",
        "the action stays"
    );
    assert_eq!(all[0].leaf_hash, stored[0].leaf_hash, "the hash stays");
    let report = beffroi::audit::verify::verify(app.db(), None)
        .await
        .unwrap();
    assert_eq!((report.entries, report.purged), (4, 2));
}
