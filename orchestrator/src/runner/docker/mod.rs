//! The `docker` runner (bollard): one container per phase, from the action's locally built image.
//!
//! The container gets the phase's argv (never a shell string), the params as `ROOTFIX_PARAM_*`
//! environment variables, labels naming incident, action, phase and attempt, the action's memory
//! and CPU limits and network, a read-only root filesystem with a small `/tmp` (unless the action
//! asks for a writable one), `no-new-privileges`, the action's mounts, and a per-fix state folder
//! at `/rootfix/state` shared by the fix's phases (precheck saves there what rollback restores).
//! It is waited for with the phase timeout and killed when it runs over; its stdout and stderr are
//! kept (capped) and the container is removed. Images are never pulled: a missing image is an
//! error that names the build command.
//!
//! A mount's host path goes through the install's `fixes.host_paths` first ([`host_paths`]).
//! Phases that are native operations (`restart-container`, `container-running`,
//! `container-healthy`) start no container: [`native`] runs them against the engine.

pub mod host_paths;
pub mod native;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use chrono::Utc;
use futures::StreamExt;
use tracing::{debug, warn};

use super::{
    EXIT_ALREADY_HEALTHY, PhaseExit, PhaseOutcome, PhaseRequest, Runner, RunnerError, RunnerTiming,
    cap_output, param_env,
};
use crate::model::action::{Operation, PhaseName, PhaseStep};
pub use host_paths::HostPaths;

/// Where phases find the per-fix state folder.
pub const STATE_DIR_IN_CONTAINER: &str = "/rootfix/state";

/// The command that builds every action image.
pub const BUILD_COMMAND: &str = "bash actions/build.sh";

pub struct DockerRunner {
    docker: Docker,
    /// Host folder under which each fix gets `<incident>/<action>/` as its state folder.
    state_root: PathBuf,
    /// Set when several rootfix deployments (e.g. Redis key prefixes) share one engine: it goes
    /// into container names and the `rootfix.instance` label, so one never replaces or abandons
    /// another's containers. Empty by default.
    instance: String,
    /// The install's `fixes.host_paths`: where action mounts' host paths really are.
    host_paths: HostPaths,
}

fn engine(e: impl std::fmt::Display) -> RunnerError {
    RunnerError::Engine(format!("docker: {e}"))
}

/// Container and folder names from ids: lowercase letters, digits and `-`.
fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

impl DockerRunner {
    /// Connects to the local engine (`DOCKER_HOST` or `/var/run/docker.sock`) and agrees on an API
    /// version with it.
    pub async fn connect(state_root: PathBuf) -> Result<Self, RunnerError> {
        let docker = Docker::connect_with_local_defaults().map_err(engine)?;
        let docker = docker.negotiate_version().await.map_err(engine)?;
        Ok(Self {
            docker,
            state_root,
            instance: String::new(),
            host_paths: HostPaths::default(),
        })
    }

    /// Names this deployment's containers apart from others on the same engine.
    pub fn with_instance(mut self, instance: &str) -> Self {
        self.instance = slug(instance.trim_end_matches(':'));
        self
    }

    /// Binds action mounts from this install's paths (`fixes.host_paths`).
    pub fn with_host_paths(mut self, host_paths: HostPaths) -> Self {
        self.host_paths = host_paths;
        self
    }

    /// The host path bound for a mount whose action file names `host`.
    pub fn host_path(&self, host: &str) -> PathBuf {
        self.host_paths.resolve(host)
    }

    /// The host folder a fix's phases share.
    pub fn state_dir(&self, incident: &str, action: &str) -> PathBuf {
        self.state_root.join(slug(incident)).join(slug(action))
    }

    /// Deletes a finished fix's state folder.
    pub fn forget_fix(&self, incident: &str, action: &str) {
        let _ = std::fs::remove_dir_all(self.state_dir(incident, action));
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    async fn collect_logs(&self, name: &str) -> (String, String) {
        let options = LogsOptionsBuilder::default().stdout(true).stderr(true).build();
        let mut stream = self.docker.logs(name, Some(options));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(LogOutput::StdOut { message }) => out.extend_from_slice(&message),
                Ok(LogOutput::StdErr { message }) => err.extend_from_slice(&message),
                Ok(_) => {}
                Err(e) => {
                    err.extend_from_slice(format!("\n[rootfix: reading logs failed: {e}]").as_bytes());
                    break;
                }
            }
            // Keep memory bounded even for a chatty phase: drop the middle, keep the end.
            for buf in [&mut out, &mut err] {
                if buf.len() > 4 * super::OUTPUT_CAP_BYTES {
                    buf.drain(..buf.len() - 2 * super::OUTPUT_CAP_BYTES);
                }
            }
        }
        (
            cap_output(&String::from_utf8_lossy(&out)),
            cap_output(&String::from_utf8_lossy(&err)),
        )
    }

    async fn remove(&self, name: &str) {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        if let Err(e) = self.docker.remove_container(name, Some(options)).await {
            warn!(container = name, error = %e, "could not remove a phase container");
        }
    }
}

#[async_trait]
impl Runner for DockerRunner {
    async fn abandon(&self, incident: &str, action: &str) -> Result<(), RunnerError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("rootfix.incident={incident}"),
                format!("rootfix.action={action}"),
                format!("rootfix.instance={}", self.instance),
            ],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let leftovers = self.docker.list_containers(Some(options)).await.map_err(engine)?;
        for c in leftovers {
            let Some(id) = c.id else { continue };
            warn!(container = %id, incident, action, "removing a phase container a stopped rootfix left behind");
            self.remove(&id).await;
        }
        Ok(())
    }

    async fn run_phase(&self, req: PhaseRequest<'_>) -> Result<PhaseOutcome, RunnerError> {
        let action = req.action;
        let phase = action
            .phases
            .get(req.phase)
            .ok_or(RunnerError::NoPhase(req.phase.as_str()))?;
        let argv = match &phase.step {
            PhaseStep::Run(argv) => argv,
            PhaseStep::Operation(Operation::Docker(op)) => return native::run(&self.docker, &req, *op).await,
            PhaseStep::Operation(Operation::Kube(op)) => {
                return Err(RunnerError::Unsupported {
                    runner: "docker",
                    reason: format!("`{}` is a Kubernetes operation", op.as_str()),
                });
            }
        };
        let image = action.image.clone().ok_or_else(|| RunnerError::Unsupported {
            runner: "docker",
            reason: "the action has no image".into(),
        })?;
        match self.docker.inspect_image(&image).await {
            Ok(_) => {}
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                return Err(RunnerError::ImageMissing {
                    image,
                    build: BUILD_COMMAND.into(),
                });
            }
            Err(e) => return Err(engine(e)),
        }

        let state_dir = self.state_dir(req.incident, &action.name);
        std::fs::create_dir_all(&state_dir)
            .map_err(|e| engine(format!("state folder {}: {e}", state_dir.display())))?;
        let mut env: Vec<String> = param_env(req.params, req.incident, &action.name, req.phase.as_str())
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.push(format!("ROOTFIX_STATE_DIR={STATE_DIR_IN_CONTAINER}"));
        env.push(format!("ROOTFIX_ATTEMPT={}", req.attempt));
        // Action mounts are strict bind mounts: a missing host path is an error, not a new empty
        // folder on the host (which `-v`-style binds would create, e.g. in place of a pid file).
        let mounts: Vec<Mount> = action
            .mounts
            .iter()
            .map(|m| Mount {
                target: Some(m.container.clone()),
                source: Some(self.host_path(&m.host).to_string_lossy().into_owned()),
                typ: Some(MountType::BIND),
                read_only: Some(m.read_only),
                ..Default::default()
            })
            .collect();
        let mut binds = Vec::new();
        binds.push(format!("{}:{STATE_DIR_IN_CONTAINER}", state_dir.display()));
        let labels = HashMap::from([
            (native::OWN_LABEL.to_string(), req.incident.to_string()),
            ("rootfix.action".to_string(), action.name.clone()),
            ("rootfix.phase".to_string(), req.phase.as_str().to_string()),
            ("rootfix.attempt".to_string(), req.attempt.to_string()),
            ("rootfix.instance".to_string(), self.instance.clone()),
        ]);
        let host_config = HostConfig {
            memory: action.memory_bytes.and_then(|m| i64::try_from(m).ok()),
            nano_cpus: action.cpus.map(|c| (c * 1e9) as i64),
            network_mode: Some(action.network.clone()),
            readonly_rootfs: Some(!action.writable_root_fs),
            tmpfs: Some(HashMap::from([(
                "/tmp".to_string(),
                "rw,noexec,nosuid,size=16m".to_string(),
            )])),
            security_opt: Some(vec!["no-new-privileges".to_string()]),
            binds: Some(binds),
            mounts: Some(mounts),
            pid_mode: action.host_pid.then(|| "host".to_string()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(image.clone()),
            cmd: Some(argv.clone()),
            // The image's entrypoint must not wrap the argv in a shell.
            entrypoint: Some(Vec::new()),
            env: Some(env),
            labels: Some(labels),
            host_config: Some(host_config),
            ..Default::default()
        };
        let name = format!(
            "rootfix-{}{}-{}-{}-{}",
            if self.instance.is_empty() {
                String::new()
            } else {
                format!("{}-", self.instance)
            },
            slug(req.incident),
            slug(&action.name),
            req.phase.as_str(),
            req.attempt
        );
        // A container of the same name is a leftover of a crashed rootfix: replace it.
        self.remove(&name).await;
        let started = Instant::now();
        let started_at = Utc::now();
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        let create_sent = Instant::now();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(engine)?;
        if let Err(e) = self.docker.start_container(&name, None).await {
            self.remove(&name).await;
            return Err(engine(e));
        }
        let container_started = Instant::now();
        debug!(container = %name, "phase container started");

        let wait = async {
            let options = WaitContainerOptionsBuilder::default()
                .condition("not-running")
                .build();
            let mut stream = self.docker.wait_container(&name, Some(options));
            match stream.next().await {
                Some(Ok(r)) => Ok(r.status_code),
                Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
                Some(Err(e)) => Err(engine(e)),
                None => Err(engine("the wait stream ended without a status")),
            }
        };
        let waited = tokio::time::timeout(req.timeout, wait).await;
        let exited = Instant::now();
        let exit = match waited {
            Ok(Ok(code)) => exit_for(req.phase, code),
            Ok(Err(e)) => {
                self.remove(&name).await;
                return Err(e);
            }
            Err(_) => {
                let kill = KillContainerOptionsBuilder::default().signal("SIGKILL").build();
                if let Err(e) = self.docker.kill_container(&name, Some(kill)).await {
                    warn!(container = %name, error = %e, "could not kill a phase container that ran over");
                }
                PhaseExit::TimedOut {
                    after_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                }
            }
        };
        let (stdout, stderr) = self.collect_logs(&name).await;
        // Removal is the engine's slow part and nothing waits on it: let the journal be written
        // first. A container whose removal is lost is removed by `abandon` at the next recovery.
        let docker = self.docker.clone();
        tokio::spawn(async move {
            let options = RemoveContainerOptionsBuilder::default().force(true).build();
            if let Err(e) = docker.remove_container(&name, Some(options)).await {
                warn!(container = %name, error = %e, "could not remove a phase container");
            }
        });
        Ok(PhaseOutcome {
            exit,
            stdout,
            stderr,
            started_at,
            finished_at: Utc::now(),
            snapshot: None,
            timing: Some(RunnerTiming {
                create_sent,
                started: container_started,
                exited,
            }),
        })
    }
}

/// The exit-code contract.
pub fn exit_for(phase: PhaseName, code: i64) -> PhaseExit {
    match code {
        0 => PhaseExit::Success,
        EXIT_ALREADY_HEALTHY if phase == PhaseName::Precheck => PhaseExit::AlreadyHealthy,
        code => PhaseExit::Failed {
            code: Some(code),
            reason: format!("exit code {code}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(exit_for(PhaseName::Execute, 0), PhaseExit::Success);
        assert_eq!(exit_for(PhaseName::Precheck, 3), PhaseExit::AlreadyHealthy);
        assert!(matches!(
            exit_for(PhaseName::Execute, 3),
            PhaseExit::Failed { code: Some(3), .. }
        ));
        assert!(matches!(
            exit_for(PhaseName::Verify, 1),
            PhaseExit::Failed { code: Some(1), .. }
        ));
    }

    #[test]
    fn slugs_are_safe_names() {
        assert_eq!(slug("inc-1795651126453-0"), "inc-1795651126453-0");
        assert_eq!(slug("a/b c;D"), "a-b-c-d");
    }
}
