//! The query string of `/auth/oidc/callback`, which anyone can craft (RFC 6749 §4.1.2): parsed
//! as axum's `Query` does, then checked by `CallbackQuery::check`. What passes must respect the
//! bounds the handler relies on: a bounded state, a bounded code, and a provider error reduced
//! to characters that cannot forge anything in the audit log.

#![no_main]

use beffroi::auth::oidc::routes::{
    CallbackAnswer, CallbackQuery, MAX_CODE_LEN, MAX_ERROR_LEN, MAX_STATE_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(query) = serde_urlencoded::from_str::<CallbackQuery>(raw) else {
        return;
    };
    let had_error = query.error.is_some();
    let Some(params) = query.check() else {
        return;
    };
    assert!(!params.state.is_empty() && params.state.len() <= MAX_STATE_LEN);
    match params.answer {
        CallbackAnswer::ProviderError(e) => {
            assert!(had_error);
            assert!(e.chars().count() <= MAX_ERROR_LEN);
            assert!(
                e.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{e:?}"
            );
        }
        CallbackAnswer::Code(code) => {
            assert!(!had_error);
            assert!(!code.is_empty() && code.len() <= MAX_CODE_LEN);
        }
        CallbackAnswer::Malformed => assert!(!had_error),
    }
});
