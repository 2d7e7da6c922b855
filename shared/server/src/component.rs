use std::future::Future;
use std::pin::Pin;

use crate::ReadinessCheck;

/// The error type of component tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A long-running task of a component (a consumer, a relay); ending with `Err` stops the process.
pub type ComponentTask = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// What one component contributes to the process: routes, gRPC services, tasks and probes.
/// The binary owns the listeners and the lifecycle; components never bind ports themselves.
#[derive(Default)]
pub struct ComponentParts {
    /// Routes merged into the single HTTP listener.
    pub router: Option<axum::Router>,
    /// Services added to the single gRPC listener.
    pub grpc: tonic::service::RoutesBuilder,
    /// Names of the gRPC services above (for health status).
    pub grpc_service_names: Vec<&'static str>,
    /// Background tasks, each with a name for logs.
    pub tasks: Vec<(&'static str, ComponentTask)>,
    /// Readiness checks of the component's dependencies.
    pub readiness: Vec<ReadinessCheck>,
}

impl ComponentParts {
    /// Adds a named background task.
    pub fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = Result<(), BoxError>> + Send + 'static,
    ) {
        self.tasks.push((name, Box::pin(task)));
    }
}
