//! The system under test: `switchboard --target all` processes on one database and bus
//! namespace (removed at the end, also when the run fails), the channels file of the chaos
//! account, and a connection to the database for the checks.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::load::{Targets, WORKSPACE, channels_yaml};
use crate::Run;
use crate::process::{Launch, Switchboard};

/// The platform-admin bootstrap token of every chaos process.
const BOOTSTRAP_TOKEN: &str = "chaos-bootstrap-token-0123456789abcdef";
/// The internal token the processes present to each other.
const INTERNAL_TOKEN: &str = "chaos-internal-token-0123456789abcdef01";
/// Longest wait for a process to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the rig runs things.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The switchboard binary.
    pub binary: String,
    /// Broker (loopback: faults use `rabbitmqctl`).
    pub amqp_url: String,
    /// PostgreSQL server (loopback: faults use `pg_ctlcluster`).
    pub database_server: String,
    /// More settings for every process.
    pub extra_env: Vec<(String, String)>,
    /// The provider simulator's base URL, when the chaos account sends through it.
    pub provider: Option<String>,
}

/// Processes, database and namespace of one scenario.
pub struct Rig {
    setup: Setup,
    run: Run,
    channels_file: TempFile,
    processes: Vec<Option<Switchboard>>,
    /// The `--target` of each process (by index).
    process_targets: Vec<String>,
    /// Where the load sends webhooks: the processes up.
    pub targets: Targets,
    /// For readiness and metrics.
    pub http: reqwest::Client,
}

impl Rig {
    /// Creates the database and namespace and starts `processes` processes, each ready.
    pub async fn start(setup: Setup, scenario: &str, processes: usize) -> anyhow::Result<Self> {
        let run = Run::prepare(scenario, &setup.database_server, &setup.amqp_url, |_| Vec::new()).await?;
        let channels_file = std::env::temp_dir().join(format!("sb-chaos-{}.yaml", run.token));
        std::fs::write(&channels_file, channels_yaml(setup.provider.as_deref()))
            .context("write the channels file")?;
        let mut rig = Self {
            setup,
            run,
            channels_file: TempFile(channels_file),
            processes: Vec::new(),
            process_targets: Vec::new(),
            targets: Targets::default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
        };
        for index in 0..processes {
            rig.processes.push(None);
            rig.start_process(index).await?;
        }
        Ok(rig)
    }

    /// The database URL (for the checks).
    pub fn database_url(&self) -> &str {
        &self.run.database_url
    }

    /// The bus namespace.
    pub fn namespace(&self) -> &str {
        &self.run.namespace
    }

    /// Process `index`, if it runs.
    pub fn process(&mut self, index: usize) -> Option<&mut Switchboard> {
        self.processes.get_mut(index)?.as_mut()
    }

    /// Starts process `index` (again) and waits until it is ready; the load then reaches it.
    pub async fn start_process(&mut self, index: usize) -> anyhow::Result<()> {
        self.start_process_as(index, "all").await
    }

    /// Starts process `index` (again) with `--target targets` and waits until it is ready. The
    /// load reaches it when it runs ingress; other components reach the first process's gRPC.
    pub async fn start_process_as(&mut self, index: usize, targets: &str) -> anyhow::Result<()> {
        self.start_process_with(index, targets, &[]).await
    }

    /// Like [`Rig::start_process_as`], with `extra` settings for this process only (after the
    /// setup's, so they win).
    pub async fn start_process_with(
        &mut self,
        index: usize,
        targets: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let channels = self.channels_file.0.to_string_lossy().into_owned();
        let mut env: Vec<(&str, &str)> = vec![
            ("SWITCHBOARD_CHANNELS_FILE", channels.as_str()),
            ("SWITCHBOARD_INTERNAL_TOKEN", INTERNAL_TOKEN),
            ("SWITCHBOARD__SHUTDOWN__DRAIN_DELAY", "1s"),
        ];
        let first_grpc = self
            .processes
            .iter()
            .flatten()
            .next()
            .map(|first| first.grpc.clone());
        if let Some(grpc) = &first_grpc
            && targets != "all"
        {
            env.push(("SWITCHBOARD__GRPC_CLIENT__ENDPOINT", grpc.as_str()));
        }
        env.extend(
            self.setup
                .extra_env
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str())),
        );
        env.extend_from_slice(extra);
        let launch = Launch {
            binary: &self.setup.binary,
            database_url: &self.run.database_url,
            amqp_url: &self.setup.amqp_url,
            namespace: &self.run.namespace,
            bootstrap_token: BOOTSTRAP_TOKEN,
            extra_env: &env,
        };
        let mut process = Switchboard::start(&launch, targets)?;
        process.wait_ready(&self.http, READY_TIMEOUT).await?;
        if index >= self.processes.len() {
            self.processes.resize_with(index + 1, || None);
        }
        if index >= self.process_targets.len() {
            self.process_targets.resize_with(index + 1, String::new);
        }
        self.processes[index] = Some(process);
        targets.clone_into(&mut self.process_targets[index]);
        self.publish_targets();
        Ok(())
    }

    /// Kills process `index` with SIGKILL (no shutdown at all); the load stops reaching it.
    pub async fn kill(&mut self, index: usize) -> anyhow::Result<()> {
        let mut process = self.take(index)?;
        process.kill_now()?;
        process.wait_exit(Duration::from_secs(10)).await?;
        Ok(())
    }

    /// Sends SIGTERM to process `index` while the load keeps reaching it, and waits up to
    /// `within` for it to exit; returns its exit status.
    pub async fn terminate(
        &mut self,
        index: usize,
        within: Duration,
    ) -> anyhow::Result<std::process::ExitStatus> {
        let process = self.process(index).context("no such process")?;
        process.terminate()?;
        let status = process.wait_exit(within).await;
        // Gone (or given up on): the load stops reaching it.
        let mut process = self.take(index)?;
        if status.is_err() {
            let _ = process.kill_now();
        }
        status
    }

    fn take(&mut self, index: usize) -> anyhow::Result<Switchboard> {
        let process = self
            .processes
            .get_mut(index)
            .and_then(Option::take)
            .context("no such process")?;
        self.publish_targets();
        Ok(process)
    }

    fn publish_targets(&self) {
        self.targets.set(
            self.processes
                .iter()
                .zip(&self.process_targets)
                .filter(|(_, targets)| *targets == "all" || targets.contains("ingress"))
                .filter_map(|(process, _)| process.as_ref())
                .map(|process| process.http.clone())
                .collect(),
        );
    }

    /// Partitions of the queue group ending in `group` (e.g. `contacts.inbound`) that process
    /// `index` holds now (0 while its metrics do not answer); `None` when it does not run.
    pub async fn partitions_held(&mut self, index: usize, group: &str) -> Option<u64> {
        let http = self.http.clone();
        let process = self.process(index)?;
        let held = process
            .counter_by_label(&http, "switchboard_bus_partitions_held", "queue")
            .await;
        Some(
            held.iter()
                .find(|(queue, _)| queue.ends_with(group))
                .map_or(0, |(_, count)| *count),
        )
    }

    /// Takes process `index` out of rotation once its `/readyz` stops answering 200, as a
    /// Kubernetes Service does (checked every 100 ms); runs until then.
    pub fn withdraw_when_unready(&mut self, index: usize) -> anyhow::Result<tokio::task::JoinHandle<()>> {
        let process = self.process(index).context("no such process")?;
        let (admin, url) = (process.admin.clone(), process.http.clone());
        let (http, targets) = (self.http.clone(), self.targets.clone());
        Ok(tokio::spawn(async move {
            loop {
                let ready = http
                    .get(format!("{admin}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|response| response.status().is_success());
                if !ready {
                    targets.remove(&url);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }))
    }

    /// `/readyz`'s status code of process `index` (0 when it does not answer).
    pub async fn readiness(&mut self, index: usize) -> u16 {
        let Some(admin) = self.process(index).map(|process| process.admin.clone()) else {
            return 0;
        };
        self.http
            .get(format!("{admin}/readyz"))
            .send()
            .await
            .map_or(0, |response| response.status().as_u16())
    }

    /// The sum over the running processes of counter `metric` with `label="value"`.
    pub async fn counter(&self, metric: &str, label: &str, value: &str) -> u64 {
        let mut total = 0;
        for process in self.processes.iter().flatten() {
            total += process
                .counter_by_label(&self.http, metric, label)
                .await
                .get(value)
                .copied()
                .unwrap_or(0);
        }
        total
    }

    /// The gRPC base URL of the first process that runs.
    pub fn grpc_url(&self) -> anyhow::Result<String> {
        Ok(self
            .processes
            .iter()
            .flatten()
            .next()
            .context("no process runs")?
            .grpc
            .clone())
    }

    /// Publishes `message` on the run's bus with a confirm, as a (faulty) producer would.
    pub async fn publish(&self, message: switchboard_messaging::Outgoing) -> anyhow::Result<()> {
        self.run.bus.publisher().publish(message).await?;
        Ok(())
    }

    /// The bus's partition count of every event family.
    pub fn partitions(&self) -> &switchboard_messaging::Partitions {
        self.run.bus.partitions()
    }

    /// Runs a `switchboard` subcommand (e.g. `dead-letters list`) against the run's broker
    /// namespace, as an operator would; returns its exit status and output.
    pub async fn operator_command(&self, arguments: &[&str]) -> anyhow::Result<std::process::Output> {
        let output = tokio::process::Command::new(&self.setup.binary)
            .args(arguments)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AMQP_URL", &self.setup.amqp_url)
            .env("SWITCHBOARD__BUS__NAMESPACE", &self.run.namespace)
            .env("SWITCHBOARD_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn")
            .output()
            .await
            .with_context(|| format!("run switchboard {arguments:?}"))?;
        Ok(output)
    }

    /// A gRPC channel to the first process that runs.
    async fn grpc(&self) -> anyhow::Result<tonic::transport::Channel> {
        let process = self
            .processes
            .iter()
            .flatten()
            .next()
            .context("no process runs")?;
        Ok(tonic::transport::Endpoint::from_shared(process.grpc.clone())?
            .connect()
            .await?)
    }

    /// A new workspace-admin API key of the chaos workspace (made with the bootstrap token).
    pub async fn workspace_admin_key(&self) -> anyhow::Result<String> {
        use switchboard_proto::tenancy::v1 as tenancy;
        let mut admin =
            tenancy::workspace_admin_service_client::WorkspaceAdminServiceClient::new(self.grpc().await?);
        let mut call = tonic::Request::new(tenancy::CreateApiKeyRequest {
            workspace_id: WORKSPACE.to_owned(),
            name: "chaos".to_owned(),
            role: tenancy::ApiKeyRole::WorkspaceAdmin as i32,
        });
        call.metadata_mut()
            .insert("authorization", format!("Bearer {BOOTSTRAP_TOKEN}").parse()?);
        Ok(admin.create_api_key(call).await?.into_inner().token)
    }

    /// Makes the chaos workspace closed all week with `away_message`: every new conversation
    /// gets one automatic reply.
    pub async fn always_closed_with_away_message(&self, key: &str, away_message: &str) -> anyhow::Result<()> {
        use switchboard_proto::routing::v1 as routing;
        let mut api = routing::routing_service_client::RoutingServiceClient::new(self.grpc().await?);
        let mut call = tonic::Request::new(routing::UpdateRoutingSettingsRequest {
            settings: Some(routing::RoutingSettings {
                business_hours: Some(routing::BusinessHours {
                    time_zone: "UTC".to_owned(),
                    intervals: Vec::new(),
                    away_message: away_message.to_owned(),
                    at_capacity_message: String::new(),
                }),
                ..routing::RoutingSettings::default()
            }),
        });
        call.metadata_mut()
            .insert("authorization", format!("Bearer {key}").parse()?);
        api.update_routing_settings(call).await?;
        Ok(())
    }

    /// Automatic (away) replies delivery accepted: waits until there are `expected` (or two
    /// minutes pass), then a little longer for any extra one.
    pub async fn away_replies(&self, expected: usize) -> anyhow::Result<usize> {
        let db = super::checks::connect(&self.run.database_url).await?;
        let count = || async {
            let count: i64 = db
                .query_one(
                    "SELECT count(*) FROM delivery.messages WHERE author_id LIKE 'autoreply:%'",
                    &[],
                )
                .await?
                .get(0);
            anyhow::Ok(usize::try_from(count).unwrap_or(0))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while count().await? < expected && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        count().await
    }

    /// Stops every process and removes the database and namespace.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        for process in self.processes.iter_mut().filter_map(Option::take) {
            process.stop().await;
        }
        self.run.cleanup(false).await
    }
}

/// A file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
