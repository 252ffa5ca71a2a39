//! restart-container: reads the container, restarts it by its ID with a graceful stop, then polls
//! it until it is healthy (or, without a health check, has kept running for [`RUNNING_SETTLE`]),
//! fails when it goes down or unhealthy, and times out with the phase.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::RestartContainerOptionsBuilder;
use tokio::time::Instant;

use super::container::{Condition, ContainerView, refuse_own};
use super::{DEFAULT_STOP_TIMEOUT_SECS, PARAM_STOP_TIMEOUT, POLL_INTERVAL, RUNNING_SETTLE, Report, find};
use crate::runner::{PhaseExit, PhaseRequest, RunnerError};

fn stop_timeout(params: &BTreeMap<String, String>) -> Result<u32, String> {
    match params.get(PARAM_STOP_TIMEOUT) {
        None => Ok(DEFAULT_STOP_TIMEOUT_SECS),
        Some(text) => text.parse::<u32>().ok().filter(|s| *s <= 3600).ok_or_else(|| {
            format!("refused, nothing done: stop_timeout `{text}` is not a number of seconds up to 3600")
        }),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// restart-container.
pub(super) async fn restart(
    docker: &Docker,
    request: &PhaseRequest<'_>,
    name: &str,
    params: &BTreeMap<String, String>,
    deadline: Instant,
) -> Result<Report, RunnerError> {
    let stop = match stop_timeout(params) {
        Ok(s) => s,
        Err(reason) => return Ok(Report::failed(Vec::new(), reason)),
    };
    let before = match find(docker, name).await? {
        Ok(view) => view,
        Err(reason) => return Ok(Report::failed(Vec::new(), reason)),
    };
    if let Some(reason) = refuse_own(&before) {
        return Ok(Report::failed(Vec::new(), reason));
    }
    let mut lines = vec![format!(
        "container {name} before the restart: {}",
        before.summary()
    )];
    let timed_out = |mut lines: Vec<String>, line: String| {
        lines.push(line);
        Report {
            exit: PhaseExit::TimedOut {
                after_ms: u64::try_from(request.timeout.as_millis()).unwrap_or(u64::MAX),
            },
            lines,
        }
    };

    // By ID from here on: a container that takes the name meanwhile is not ours to touch.
    let id = before.id.clone();
    let options = RestartContainerOptionsBuilder::default()
        .t(i32::try_from(stop).unwrap_or(i32::MAX))
        .build();
    let asked = Instant::now();
    match tokio::time::timeout_at(deadline, docker.restart_container(&id, Some(options))).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Ok(Report::failed(
                lines,
                format!("restarting container {name} failed: {e}"),
            ));
        }
        Err(_) => {
            return Ok(timed_out(
                lines,
                format!(
                    "the phase timeout ran out while the engine was still restarting container {name} \
                     (stop timeout {stop} s); it may finish the restart on its own"
                ),
            ));
        }
    }
    let restarted = Instant::now();
    lines.push(format!(
        "container {name}: restarted by the engine in {} (graceful stop timeout {stop} s)",
        secs(restarted - asked)
    ));

    let mut last: Option<ContainerView> = None;
    loop {
        let view = match docker.inspect_container(&id, None).await {
            Ok(c) => ContainerView::from_inspect(&c),
            Err(bollard::errors::Error::DockerResponseServerError { status_code: 404, .. }) => {
                return Ok(Report::failed(
                    lines,
                    format!("container {name} was removed after the restart"),
                ));
            }
            Err(e) => {
                return Ok(Report::failed(
                    lines,
                    format!("reading container {name} after the restart failed: {e}"),
                ));
            }
        };
        if last.is_none() {
            if view.started_at == before.started_at {
                return Ok(Report::failed(
                    lines,
                    format!(
                        "container {name} still reports StartedAt {}: the engine did not restart it",
                        view.started_at
                    ),
                ));
            }
            lines.push(format!(
                "container {name}: StartedAt {} → {}, pid {} → {}",
                before.started_at, view.started_at, before.pid, view.pid
            ));
        }
        let waited = restarted.elapsed();
        match view.condition() {
            Condition::Down(why) => {
                return Ok(Report::failed(
                    lines,
                    format!("container {name} {why} {} after the restart", secs(waited)),
                ));
            }
            Condition::Unhealthy(check) => {
                return Ok(Report::failed(
                    lines,
                    format!(
                        "container {name} became unhealthy {} after the restart (last check: {check})",
                        secs(waited)
                    ),
                ));
            }
            Condition::Healthy => {
                lines.push(format!(
                    "container {name}: healthy {} after the restart ({} after rootfix asked for it)",
                    secs(waited),
                    secs(asked.elapsed())
                ));
                return Ok(Report::success(lines));
            }
            Condition::RunningWithoutCheck if waited >= RUNNING_SETTLE => {
                lines.push(format!(
                    "container {name}: has no health check; running {} after the restart",
                    secs(waited)
                ));
                return Ok(Report::success(lines));
            }
            Condition::RunningWithoutCheck | Condition::Starting => {}
        }
        last = Some(view);
        let now = Instant::now();
        if now >= deadline {
            let state = last.as_ref().map(ContainerView::summary).unwrap_or_default();
            return Ok(timed_out(
                lines,
                format!(
                    "container {name} was not healthy when the phase timeout ran out, {} after the restart ({state})",
                    secs(restarted.elapsed())
                ),
            ));
        }
        tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_timeout_defaults_and_bounds() {
        let p = |v: &str| BTreeMap::from([(PARAM_STOP_TIMEOUT.to_string(), v.to_string())]);
        assert_eq!(stop_timeout(&BTreeMap::new()), Ok(DEFAULT_STOP_TIMEOUT_SECS));
        assert_eq!(stop_timeout(&p("3")), Ok(3));
        assert!(stop_timeout(&p("3601")).is_err());
        assert!(stop_timeout(&p("x")).is_err());
    }
}
