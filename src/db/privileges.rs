//! PostgreSQL with two roles: an owner that runs migrations (and restores and the audit purge),
//! and a runtime role that the server connects as. After each migration the owner grants the
//! runtime role exactly what a running server needs. The point is the audit log: its triggers
//! refuse UPDATE and DELETE, but a table's owner can disable its triggers; a runtime role that
//! owns nothing and holds only SELECT and INSERT on the log cannot, even with the server's
//! credentials in hand.

use sqlx::PgPool;

use super::DbError;

/// Tables whose rows are never changed or removed by a running server.
const APPEND_ONLY_TABLES: &[&str] = &["audit_log", "audit_checkpoints"];

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The role a pool connects as.
pub async fn current_role(pool: &PgPool) -> Result<String, DbError> {
    Ok(sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(pool)
        .await?)
}

/// Grants `runtime_role` what the server needs on every table of the current schema, minus
/// UPDATE, DELETE and TRUNCATE on the append-only tables and minus writes to the migration
/// history. Idempotent: run after every migration, so new tables are covered.
pub async fn grant_runtime_privileges(owner: &PgPool, runtime_role: &str) -> Result<(), DbError> {
    let role = quote_ident(runtime_role);
    let mut statements = vec![
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("REVOKE CREATE ON SCHEMA public FROM {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM {role}"),
        format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        format!("REVOKE INSERT, UPDATE, DELETE ON _sqlx_migrations FROM {role}"),
    ];
    for table in APPEND_ONLY_TABLES {
        statements.push(format!("REVOKE UPDATE, DELETE ON {table} FROM {role}"));
    }
    let mut tx = owner.begin().await?;
    for statement in statements {
        // The only text not written here is the role name, quoted as an identifier above.
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("beffroi"), "\"beffroi\"");
        assert_eq!(
            quote_ident("a\"; DROP TABLE x; --"),
            "\"a\"\"; DROP TABLE x; --\""
        );
    }
}
