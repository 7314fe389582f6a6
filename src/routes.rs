//! The route table: every URL the application answers, with its methods. The router is built
//! from it, and tests walk the same list to check properties that must hold on every route
//! (security headers, CSRF), so a new route cannot slip past them.

use std::collections::BTreeMap;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter};

use crate::AppState;

#[derive(Default)]
pub struct RouteTable {
    routes: BTreeMap<&'static str, (Vec<Method>, MethodRouter<AppState>)>,
}

impl RouteTable {
    fn add<H, T>(
        mut self,
        method: Method,
        filter: MethodFilter,
        path: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let (mut methods, router) = self.routes.remove(path).unwrap_or_default();
        methods.push(method);
        self.routes
            .insert(path, (methods, router.on(filter, handler)));
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, MethodFilter::GET, path, handler)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, MethodFilter::POST, path, handler)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PUT, MethodFilter::PUT, path, handler)
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.add(Method::PATCH, MethodFilter::PATCH, path, handler)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.add(Method::DELETE, MethodFilter::DELETE, path, handler)
    }

    /// Every (path, method) pair, for tests.
    pub fn list(&self) -> Vec<(&'static str, Method)> {
        self.routes
            .iter()
            .flat_map(|(path, (methods, _))| methods.iter().map(move |m| (*path, m.clone())))
            .collect()
    }

    pub fn into_router(self) -> Router<AppState> {
        self.routes
            .into_iter()
            .fold(Router::new(), |router, (path, (_, method_router))| {
                router.route(path, method_router)
            })
    }
}

/// All routes of the application.
pub fn table() -> RouteTable {
    let table = RouteTable::default()
        .get("/", crate::home::home)
        .get("/static/{file}", crate::http::static_files::serve_asset)
        .get("/healthz", crate::ops::healthz)
        .get("/readyz", crate::ops::readyz)
        .get("/metrics", crate::http::metrics::metrics_page);
    let table = crate::auth::oidc::routes::routes(table);
    let table = crate::scim::routes::routes(table);
    let table = crate::audit::pages::routes(table);
    let table = crate::admin::routes(table);
    let table = crate::branding::routes::routes(table);
    let table = crate::branding::admin::routes(table);
    let table = crate::spaces::routes::routes(table);
    let table = crate::spaces::admin::routes(table);
    let table = crate::directory::routes(table);
    let table = crate::news::routes(table);
    let table = crate::mail::admin::routes(table);
    let table = crate::security_txt::routes(table);
    crate::auth::local::routes(table)
}

/// Every (path, method) the application answers, for tests.
pub fn list() -> Vec<(&'static str, Method)> {
    table().list()
}
