//! The TOML config, as `beffroi check-config` and `serve` read it: the file's text, then
//! `BEFFROI_*` environment overrides, then validation. The config is written by an operator, but
//! it is also what a deployment tool templates from other inputs; whatever it holds must give a
//! config or an error naming the key, never a panic.
//!
//! Input: the file's text, optionally followed by a line `---` and `NAME=VALUE` lines read as
//! environment variables.

#![no_main]

use std::path::Path;

use beffroi::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml, env) = text.split_once("\n---\n").unwrap_or((text, ""));
    let env: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let Ok(config) = Config::from_toml(toml, Path::new("fuzz.toml"), env) else {
        return;
    };
    // What the server derives from a valid config at start must not panic either.
    let _ = format!("{config:?}");
    let _ = config.database_target();
    let _ = (config.tls_cert_path(), config.tls_key_path());
    let _ = config.tls_is_self_managed();
    let _ = config.secret_files();
    if let Some(oidc) = &config.oidc {
        let _ = oidc.redirect_url(config.server.public_url.as_deref());
    }
    if let Some(backup) = &config.backup {
        let _ = backup.parsed_recipients();
    }
    // The secret-key guard: a config holding an age identity is never accepted.
    assert!(!toml.contains("AGE-SECRET-KEY"));
});
