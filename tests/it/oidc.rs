//! Single sign-on against a real OpenID Connect provider (tests/idp): the happy path, logout,
//! key rotation, and every refusal — each a clear page, a counted security event, no session.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::Backend;
use crate::idp::{Idp, SsoApp, SsoOptions, idp_browser, spawn_sso_app};

both_backends!(
    agent_signs_in_with_name_groups_and_roles,
    proconnect_claims_are_understood,
    login_page_offers_sso_and_hides_the_local_form,
    forged_id_tokens_are_refused,
    callback_tampering_is_refused,
    code_replay_and_wrong_pkce_are_refused,
    disallowed_domain_and_disabled_account_are_refused,
    key_rotation_needs_no_restart,
    unknown_kid_with_jwks_unreachable_is_refused,
    provider_down_or_slow_is_reported,
    backchannel_logout_ends_exactly_the_named_session,
    malformed_logout_tokens_are_refused,
    rp_initiated_logout_ends_the_provider_session,
    signed_userinfo_is_verified,
    sign_ins_started_in_two_tabs_both_complete,
);

/// Two tabs start signing in before either comes back: each keeps its own browser binding.
async fn sign_ins_started_in_two_tabs_both_complete(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::shared(), SsoOptions::default()).await;
    let browser = sso.app.client();
    let first = sso
        .authorize(&browser, &idp_browser(), "bob", "/first")
        .await;
    let second = sso
        .authorize(&browser, &idp_browser(), "bob", "/second")
        .await;
    let r = browser.get(&first).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/first");
    let r = browser.get(&second).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/second");
    // A third browser still cannot use either callback.
    assert_eq!(
        sso.app.client().get(&first).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

/// ProConnect answers UserInfo as a signed JWT: it is verified like an ID token.
async fn signed_userinfo_is_verified(backend: Backend) {
    let options = SsoOptions {
        client_extra: json!({"userinfo_signed_response_alg": "ES256"}),
        ..SsoOptions::default()
    };
    let sso = spawn_sso_app(backend, Idp::shared(), options).await;
    assert_eq!(
        sso.sign_in(&sso.app.client(), "pc-user").await.status(),
        StatusCode::SEE_OTHER
    );
    let attributes: String = beffroi::with_db!(sso.app.db(), pool => sqlx::query_scalar(
        "SELECT attributes FROM accounts WHERE subject = 'pc-user'").fetch_one(pool).await.unwrap());
    assert!(attributes.contains("11000201100044"), "{attributes}");
}

async fn sessions(sso: &SsoApp) -> i64 {
    sso.app.count("SELECT COUNT(*) FROM sessions").await
}

/// Asserts a refusal page with the given status and text, one more failure counted under
/// `reason`, and no session.
async fn assert_refused(
    sso: &SsoApp,
    r: reqwest::Response,
    status: StatusCode,
    reason: &str,
    before: u64,
    text: &str,
) {
    assert_eq!(r.status(), status, "{reason}");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{reason}"
    );
    let body = r.text().await.unwrap();
    assert!(body.contains(text), "{reason}: {body}");
    assert_eq!(sso.failures(reason), before + 1, "{reason} not counted");
    assert_eq!(sessions(sso).await, 0, "{reason} created a session");
}

async fn agent_signs_in_with_name_groups_and_roles(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::shared(), SsoOptions::default()).await;
    let browser = sso.app.client();
    // Going to a page first: after sign-in the agent lands there.
    let r = browser
        .get(sso.app.url("/account/password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let callback = sso
        .authorize(&browser, &idp_browser(), "alice", "/?tab=news")
        .await;
    let r = browser.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    assert_eq!(r.headers()["location"], "/?tab=news");
    let home = browser
        .get(sso.app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("Bonjour Alice Martin"), "{home}");
    assert!(home.contains("admin, agent"), "{home}");

    let (kind, email, issuer): (String, Option<String>, Option<String>) = beffroi::with_db!(sso.app.db(), pool =>
        sqlx::query_as("SELECT kind, email, issuer FROM accounts WHERE subject = 'alice'").fetch_one(pool).await.unwrap());
    assert_eq!(
        (kind.as_str(), email.as_deref(), issuer.as_deref()),
        (
            "oidc",
            Some("alice@example.test"),
            Some(sso.idp.issuer.as_str())
        )
    );
    let id: i64 = beffroi::with_db!(sso.app.db(), pool => sqlx::query_scalar("SELECT id FROM accounts WHERE subject = 'alice'").fetch_one(pool).await.unwrap());
    assert_eq!(
        beffroi::auth::oidc::store::groups_of(sso.app.db(), id)
            .await
            .unwrap(),
        vec!["admins", "staff"]
    );

    // A second sign-in updates the same account (keyed by issuer and subject, not e-mail).
    let other = sso.app.client();
    assert_eq!(
        sso.sign_in(&other, "alice").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        sso.app
            .count("SELECT COUNT(*) FROM accounts WHERE kind = 'oidc'")
            .await,
        1
    );
    assert_eq!(sessions(&sso).await, 2);
    // Session and state cookies are __Host-, and the pending request is gone (single use).
    assert_eq!(sso.app.count("SELECT COUNT(*) FROM oidc_requests").await, 0);
    let again = browser.get(&callback).send().await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::FORBIDDEN,
        "a used callback must not work twice"
    );

    // Audited: two sign-ins (the first granted the admin role), one refusal.
    use crate::helpers::{audit_entries, details};
    let sign_ins = audit_entries(sso.app.db(), "auth.sign_in").await;
    assert_eq!(sign_ins.len(), 2);
    assert_eq!(sign_ins[0].actor_id, Some(id));
    assert_eq!(sign_ins[0].actor_name.as_deref(), Some("Alice Martin"));
    assert_eq!(details(&sign_ins[0])["method"], "sso");
    assert_eq!(details(&sign_ins[0])["subject"], "alice");
    let roles = audit_entries(sso.app.db(), "account.roles_change").await;
    assert_eq!(roles.len(), 1, "the second sign-in changed no role");
    assert_eq!(details(&roles[0])["cause"], "sso");
    assert_eq!(
        details(&roles[0])["after"],
        serde_json::json!(["agent", "admin"])
    );
    let refused = audit_entries(sso.app.db(), "auth.sign_in_failure").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(details(&refused[0])["reason"], "state_unknown");
    assert_eq!(refused[0].actor_id, None);
}

async fn proconnect_claims_are_understood(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::shared(), SsoOptions::default()).await;
    let browser = sso.app.client();
    assert_eq!(
        sso.sign_in(&browser, "pc-user").await.status(),
        StatusCode::SEE_OTHER
    );
    let (name, email, attributes): (String, String, String) = beffroi::with_db!(sso.app.db(), pool =>
        sqlx::query_as("SELECT display_name, email, attributes FROM accounts WHERE subject = 'pc-user'").fetch_one(pool).await.unwrap());
    assert_eq!(name, "Jeanne Dupont");
    assert_eq!(email, "jeanne.dupont@interieur.gouv.fr");
    let attributes: serde_json::Value = serde_json::from_str(&attributes).unwrap();
    assert_eq!(attributes["siret"], "11000201100044");
    assert_eq!(attributes["uid"], "pc-123");
    assert_eq!(attributes["idp_id"], "fia1v2");
    assert_eq!(attributes["usual_name"], "Dupont");
}

async fn login_page_offers_sso_and_hides_the_local_form(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::shared(), SsoOptions::default()).await;
    let browser = sso.app.client();
    let page = browser
        .get(sso.app.url("/login?next=/x"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Se connecter avec Test IdP"), "{page}");
    assert!(
        page.contains("href=\"/auth/oidc/start?next=%2Fx\""),
        "{page}"
    );
    assert!(
        !page.contains("name=\"password\""),
        "agents must not see the password form"
    );
    // Sign-out ends at the provider: the policy lets forms lead there, and nowhere else.
    let r = browser.get(sso.app.url("/login")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.ends_with(&format!("form-action 'self' {}", sso.idp.issuer)),
        "{csp}"
    );
    let local = browser
        .get(sso.app.url("/login/local"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(local.contains("name=\"password\""));
    // The break-glass sign-in still works.
    sso.app.create_admin("root", "a long enough password").await;
    let token = crate::helpers::extract_csrf(&local).unwrap();
    let r = browser
        .post(sso.app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "root"),
            ("password", "a long enough password"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn forged_id_tokens_are_refused(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::shared(), SsoOptions::default()).await;
    for (mode, reason) in [
        ("wrong_iss", "wrong_issuer"),
        ("wrong_aud", "wrong_audience"),
        ("other_client", "wrong_audience"),
        ("multi_aud_no_azp", "missing_azp"),
        ("multi_aud_wrong_azp", "untrusted_audience"),
        ("expired", "expired"),
        ("iat_future", "issued_in_future"),
        ("bad_signature", "bad_signature"),
        ("alg_none", "algorithm_not_allowed"),
        ("hs256_public_key", "algorithm_not_allowed"),
        ("nonce_mismatch", "nonce_mismatch"),
        ("nonce_missing", "nonce_missing"),
        ("no_sub", "missing_subject"),
        ("sub_mismatch_userinfo", "userinfo_subject_mismatch"),
    ] {
        let before = sso.failures(reason);
        sso.idp.misbehave(&sso.client_id, mode).await;
        let r = sso.sign_in(&sso.app.client(), "bob").await;
        assert_refused(
            &sso,
            r,
            StatusCode::FORBIDDEN,
            reason,
            before,
            "La connexion a été refusée",
        )
        .await;
    }
    // The HS256 confusion with the key in JWK form too.
    let before = sso.failures("algorithm_not_allowed");
    sso.idp
        .control(
            "misbehave",
            json!({"mode": "hs256_public_key", "client_id": sso.client_id, "key_form": "jwk"}),
        )
        .await;
    let r = sso.sign_in(&sso.app.client(), "bob").await;
    assert_refused(
        &sso,
        r,
        StatusCode::FORBIDDEN,
        "algorithm_not_allowed",
        before,
        "refusée",
    )
    .await;
    // After all that, an honest token still works.
    assert_eq!(
        sso.sign_in(&sso.app.client(), "bob").await.status(),
        StatusCode::SEE_OTHER
    );
}

async fn callback_tampering_is_refused(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::shared(), SsoOptions::default()).await;
    let browser = sso.app.client();
    let callback = sso.authorize(&browser, &idp_browser(), "bob", "/").await;
    let url = url::Url::parse(&callback).unwrap();
    let code = url
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();

    // Garbage: no state, an absurd state: 400, nothing consumed.
    for bad in [
        "/auth/oidc/callback",
        "/auth/oidc/callback?code=x",
        &format!("/auth/oidc/callback?code=x&state={}", "s".repeat(600)),
    ] {
        let r = browser.get(sso.app.url(bad)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.text().await.unwrap().contains("incomplet ou mal formé"));
    }
    // A state we never issued.
    let before = sso.failures("state_unknown");
    let r = browser
        .get(
            sso.app
                .url(&format!("/auth/oidc/callback?code={code}&state=forged")),
        )
        .send()
        .await
        .unwrap();
    assert_refused(
        &sso,
        r,
        StatusCode::FORBIDDEN,
        "state_unknown",
        before,
        "a expiré",
    )
    .await;
    // The real callback, but in another browser (no binding cookie): refused, and consumed.
    let before = sso.failures("browser_mismatch");
    let r = sso.app.client().get(&callback).send().await.unwrap();
    assert_refused(
        &sso,
        r,
        StatusCode::FORBIDDEN,
        "browser_mismatch",
        before,
        "autre navigateur",
    )
    .await;
    // Now the state is used: even the right browser cannot use it.
    let before = sso.failures("state_unknown");
    let r = browser.get(&callback).send().await.unwrap();
    assert_refused(
        &sso,
        r,
        StatusCode::FORBIDDEN,
        "state_unknown",
        before,
        "a expiré",
    )
    .await;
    // An error from the provider.
    let callback = sso.authorize(&browser, &idp_browser(), "bob", "/").await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let before = sso.failures("provider_error");
    let r = browser
        .get(sso.app.url(&format!(
            "/auth/oidc/callback?state={state}&error=access_denied"
        )))
        .send()
        .await
        .unwrap();
    assert_refused(
        &sso,
        r,
        StatusCode::FORBIDDEN,
        "provider_error",
        before,
        "n’a pas accepté",
    )
    .await;
    // Open redirects in `next` end on the home page.
    for next in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let b = sso.app.client();
        let callback = sso.authorize(&b, &idp_browser(), "bob", next).await;
        let r = b.get(callback).send().await.unwrap();
        assert_eq!(r.headers()["location"], "/", "next={next}");
    }
}

async fn code_replay_and_wrong_pkce_are_refused(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::shared(), SsoOptions::default()).await;
    let browser = sso.app.client();
    let first = sso.authorize(&browser, &idp_browser(), "bob", "/").await;
    let code = url::Url::parse(&first)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        browser.get(&first).send().await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    sso.app.exec("DELETE FROM sessions").await;

    // The same code with a fresh, valid state: the provider refuses the replayed code.
    let b2 = sso.app.client();
    let second = sso.authorize(&b2, &idp_browser(), "bob", "/").await;
    let state = url::Url::parse(&second)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let before = sso.failures("token_request_refused");
    let r = b2
        .get(
            sso.app
                .url(&format!("/auth/oidc/callback?code={code}&state={state}")),
        )
        .send()
        .await
        .unwrap();
    assert_refused(
        &sso,
        r,
        StatusCode::FORBIDDEN,
        "token_request_refused",
        before,
        "refusée",
    )
    .await;

    // A wrong PKCE verifier (as if an attacker had stolen the code but not the verifier).
    let b3 = sso.app.client();
    let third = sso.authorize(&b3, &idp_browser(), "bob", "/").await;
    sso.app.exec("UPDATE oidc_requests SET pkce_verifier = 'wrong-verifier-wrong-verifier-wrong-verifier-00'").await;
    let before = sso.failures("token_request_refused");
    let r = b3.get(third).send().await.unwrap();
    assert_refused(
        &sso,
        r,
        StatusCode::FORBIDDEN,
        "token_request_refused",
        before,
        "refusée",
    )
    .await;
}

async fn disallowed_domain_and_disabled_account_are_refused(backend: Backend) {
    let sso = spawn_sso_app(
        backend,
        Idp::shared(),
        SsoOptions {
            oidc_extra: "allowed_email_domains = [\"example.test\"]\n".into(),
            ..SsoOptions::default()
        },
    )
    .await;
    let before = sso.failures("email_domain_not_allowed");
    let r = sso.sign_in(&sso.app.client(), "mallory").await;
    assert_refused(
        &sso,
        r,
        StatusCode::FORBIDDEN,
        "email_domain_not_allowed",
        before,
        "domaine autorisé",
    )
    .await;

    assert_eq!(
        sso.sign_in(&sso.app.client(), "bob").await.status(),
        StatusCode::SEE_OTHER
    );
    sso.app.exec("DELETE FROM sessions").await;
    sso.app
        .exec("UPDATE accounts SET disabled = TRUE WHERE subject = 'bob'")
        .await;
    let before = sso.failures("account_disabled");
    let r = sso.sign_in(&sso.app.client(), "bob").await;
    assert_refused(
        &sso,
        r,
        StatusCode::FORBIDDEN,
        "account_disabled",
        before,
        "désactivé",
    )
    .await;
}

async fn key_rotation_needs_no_restart(backend: Backend) {
    let options = SsoOptions {
        oidc_extra: "jwks_refetch_min_secs = 1\n".into(),
        ..SsoOptions::default()
    };
    let sso = spawn_sso_app(backend, Idp::private(), options).await;
    assert_eq!(
        sso.sign_in(&sso.app.client(), "bob").await.status(),
        StatusCode::SEE_OTHER
    );
    // Right after a fetch, an unknown key does not trigger another one (forged tokens cannot
    // make us hammer the provider)…
    sso.idp.misbehave(&sso.client_id, "unknown_kid").await;
    let r = sso.sign_in(&sso.app.client(), "bob").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // …but once the interval has passed, a real rotation is picked up without restart.
    let rotated = sso.idp.control("rotate", json!({})).await;
    assert_eq!(rotated["signing_kid"], "k2");
    // The next token names k2, unknown to Beffroi's cached JWKS: it refetches and accepts.
    assert_eq!(
        sso.sign_in(&sso.app.client(), "bob").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(sessions(&sso).await, 2);
}

async fn unknown_kid_with_jwks_unreachable_is_refused(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::private(), SsoOptions::default()).await;
    sso.idp.control("jwks", json!({"down": true})).await;
    // First sign-in: no JWKS at all yet, and none to be had.
    let r = sso.sign_in(&sso.app.client(), "bob").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sessions(&sso).await, 0);
    sso.idp.control("jwks", json!({"down": false})).await;
    assert_eq!(
        sso.sign_in(&sso.app.client(), "bob").await.status(),
        StatusCode::SEE_OTHER
    );
    sso.app.exec("DELETE FROM sessions").await;
    // A token signed by a key nobody published, while the JWKS is down.
    sso.idp.control("jwks", json!({"down": true})).await;
    sso.idp.misbehave(&sso.client_id, "unknown_kid").await;
    let before = sso.failures("unknown_key");
    let r = sso.sign_in(&sso.app.client(), "bob").await;
    assert_refused(
        &sso,
        r,
        StatusCode::FORBIDDEN,
        "unknown_key",
        before,
        "refusée",
    )
    .await;
}

async fn provider_down_or_slow_is_reported(backend: Backend) {
    let mut sso = spawn_sso_app(backend, Idp::private(), SsoOptions::default()).await;
    // Slower than oidc.http_timeout_secs (2 s): the page says so, in bounded time.
    sso.idp.control("slow", json!({"ms": 4000})).await;
    let browser = sso.app.client();
    let started = std::time::Instant::now();
    let r = browser
        .get(sso.app.url("/auth/oidc/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Le fournisseur d’identité ne répond pas")
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    // Down altogether.
    sso.idp.kill();
    let r = browser
        .get(sso.app.url("/auth/oidc/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Everything else still works.
    assert_eq!(
        browser
            .get(sso.app.url("/login"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        browser
            .get(sso.app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(sso.app.count("SELECT COUNT(*) FROM oidc_requests").await, 0);
}

/// The `sid` of the session Beffroi holds for `login`.
async fn sid_of(sso: &SsoApp, login: &str) -> Vec<String> {
    beffroi::with_db!(sso.app.db(), pool => sqlx::query_scalar(
        "SELECT s.oidc_sid FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE a.subject = $1"
    ).bind(login).fetch_all(pool).await.unwrap())
}

async fn backchannel_logout_ends_exactly_the_named_session(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::shared(), SsoOptions::default()).await;
    let (first, second) = (sso.app.client(), sso.app.client());
    sso.sign_in(&first, "carol").await;
    sso.sign_in(&second, "carol").await;
    let sids = sid_of(&sso, "carol").await;
    assert_eq!(sids.len(), 2);
    assert_ne!(sids[0], sids[1], "two provider sessions");
    let answer = sso
        .idp
        .control(
            "backchannel",
            json!({"client_id": sso.client_id, "sub": "carol", "sid": sids[0]}),
        )
        .await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(sid_of(&sso, "carol").await, vec![sids[1].clone()]);
    // Replaying the same logout token is refused.
    let replay = reqwest::Client::builder()
        .tls_backend_preconfigured(crate::helpers::client_tls(&sso.app.cert_path()))
        .build()
        .unwrap()
        .post(sso.app.url("/auth/oidc/backchannel-logout"))
        .form(&[("logout_token", answer["logout_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sid_of(&sso, "carol").await.len(), 1);
}

async fn malformed_logout_tokens_are_refused(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::shared(), SsoOptions::default()).await;
    sso.sign_in(&sso.app.client(), "carol").await;
    let sid = sid_of(&sso, "carol").await.remove(0);
    for mode in [
        "with_nonce",
        "no_events",
        "bad_signature",
        "wrong_aud",
        "no_sub_no_sid",
        "expired",
    ] {
        let answer = sso
            .idp
            .control(
                "backchannel",
                json!({"client_id": sso.client_id, "sub": "carol", "sid": sid, "mode": mode}),
            )
            .await;
        assert_eq!(answer["status"], 400, "{mode}: {answer}");
        assert_eq!(sessions(&sso).await, 1, "{mode} ended a session");
    }
    let answer = sso
        .idp
        .control(
            "backchannel",
            json!({"client_id": sso.client_id, "sub": "carol", "sid": "no-such-sid"}),
        )
        .await;
    // A valid token for a session we do not have: a successful no-op (§2.8), nothing ended.
    assert_eq!(answer["status"], 200, "unknown sid: {answer}");
    assert_eq!(sessions(&sso).await, 1);
    // Garbage posted by anyone.
    let anyone = reqwest::Client::builder()
        .tls_backend_preconfigured(crate::helpers::client_tls(&sso.app.cert_path()))
        .build()
        .unwrap();
    for body in ["logout_token=not.a.jwt", "logout_token=", "nothing=here"] {
        let r = anyone
            .post(sso.app.url("/auth/oidc/backchannel-logout"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
    }
    assert_eq!(sessions(&sso).await, 1);
}

async fn rp_initiated_logout_ends_the_provider_session(backend: Backend) {
    let sso = spawn_sso_app(backend, Idp::shared(), SsoOptions::default()).await;
    let browser = sso.app.client();
    let provider_browser = idp_browser();
    let callback = sso
        .authorize(&browser, &provider_browser, "carol", "/")
        .await;
    browser.get(callback).send().await.unwrap();
    let csrf = sso.app.csrf_token(&browser, "/").await;
    let r = browser
        .post(sso.app.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let end = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        end.starts_with(&format!("{}/session/end?", sso.idp.issuer)),
        "{end}"
    );
    assert!(end.contains("id_token_hint="), "{end}");
    assert_eq!(sessions(&sso).await, 0, "local session ends at once");
    // At the provider: confirm, and come back to Beffroi's sign-in page.
    let page = provider_browser
        .get(&end)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let xsrf = page
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let r = provider_browser
        .post(format!("{}/session/end/confirm", sso.idp.issuer))
        .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(&format!("{}/login", sso.app.base))
    );
    // The provider session is gone: the next sign-in asks for the login again.
    let again = sso
        .authorize(&sso.app.client(), &provider_browser, "carol", "/")
        .await;
    assert!(again.contains("code="));
}
