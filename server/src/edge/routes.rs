//! Adds routes to a router and records them, so the route-table test enumerates exactly what
//! the server serves: a route cannot be added without appearing in the table.
use axum::{http::Method, routing::MethodRouter, Router};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: String,
}

pub struct Recorder<S> {
    pub router: Router<S>,
    pub table: Vec<RouteSpec>,
    prefix: String,
}

impl<S: Clone + Send + Sync + 'static> Recorder<S> {
    pub fn new(prefix: &str) -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
            prefix: prefix.to_string(),
        }
    }

    /// `methods` names what `handler` answers; they are recorded as given.
    pub fn route(mut self, path: &str, methods: &[Method], handler: MethodRouter<S>) -> Self {
        for m in methods {
            self.table.push(RouteSpec {
                method: m.clone(),
                path: format!("{}{path}", self.prefix),
            });
        }
        self.router = self.router.route(path, handler);
        self
    }
}
