//! The home page. For now it greets the signed-in agent; the news wall arrives with its issue.

use askama::Template;
use axum::http::StatusCode;
use axum::response::Response;

use crate::http::error::AppError;
use crate::http::extract::CurrentUser;
use crate::http::pages::{PageContext, Shell, render};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    shell: Shell,
    display_name: String,
    roles: String,
}

pub async fn home(ctx: PageContext, CurrentUser(user): CurrentUser) -> Result<Response, AppError> {
    let roles = user
        .account
        .roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    render(
        StatusCode::OK,
        &HomePage {
            shell: ctx.shell,
            display_name: user.account.display_name.clone(),
            roles,
        },
    )
}
