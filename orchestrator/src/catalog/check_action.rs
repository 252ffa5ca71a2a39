//! Checks one `kind: Action` document and builds the run-time [`Action`].

use std::collections::BTreeMap;
use std::time::Duration;

use regex::Regex;

use super::parse::ParsedFile;
use super::report::Reporter;
use super::values::{is_identifier, is_object_name, parse_memory};
use crate::document::action::{ActionDocument, PhaseSpec};
use crate::model::action::{
    Action, Operation, ParamSpec, Phase, PhaseName, PhaseStep, Phases, Purpose, RunnerKind,
};
use crate::model::matcher::first_line;
use crate::model::template::{Template, Variable};

const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(600);
const DEFAULT_PHASE_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_VERIFY_INTERVAL: Duration = Duration::from_secs(5);

pub fn check_action(file: &ParsedFile, doc: &ActionDocument, r: &mut Reporter<'_>) -> Option<Action> {
    let before = r.problems.len();
    let spec = &doc.spec;
    if !is_object_name(&doc.metadata.name) {
        r.at_value(
            "metadata.name",
            "must be lowercase letters, digits and `-` (at most 63)",
        );
    }
    let purpose = match spec.purpose.as_str() {
        "fix" => Some(Purpose::Fix),
        "diagnostic" => Some(Purpose::Diagnostic),
        other => {
            r.at_value(
                "spec.purpose",
                format!("unknown purpose `{other}`; expected fix or diagnostic"),
            );
            None
        }
    };
    let runner = RunnerKind::ALL
        .iter()
        .find(|(name, _)| *name == spec.runner)
        .map(|(_, kind)| *kind);
    if runner.is_none() {
        r.at_value(
            "spec.runner",
            format!(
                "unknown runner `{}`; expected docker, kubernetes-job or kubernetes",
                spec.runner
            ),
        );
    }
    let written = [
        &spec.phases.precheck,
        &spec.phases.execute,
        &spec.phases.verify,
        &spec.phases.rollback,
    ];
    let any_run = written
        .iter()
        .any(|p| p.as_ref().is_some_and(|p| p.run.is_some()));
    let any_operation = written
        .iter()
        .any(|p| p.as_ref().is_some_and(|p| p.operation.is_some()));
    match (runner, &spec.image) {
        // A docker action whose phases are all native operations starts no container.
        (Some(RunnerKind::Docker), None) if !any_run && any_operation => {}
        (Some(RunnerKind::Docker), Some(_)) if !any_run && any_operation => {
            r.at_key(
                "spec.image",
                "every phase is a native Docker operation, which starts no container; remove spec.image",
            );
        }
        (Some(kind), None) if kind.runs_containers() => {
            r.at_key(
                "spec.runner",
                format!("runner `{}` needs spec.image", spec.runner),
            );
        }
        (Some(RunnerKind::Kubernetes), Some(_)) => {
            r.at_key(
                "spec.image",
                "runner `kubernetes` runs API operations, not an image; remove spec.image",
            );
        }
        (_, Some(image)) if image.trim().is_empty() || image.contains(char::is_whitespace) => {
            r.at_value("spec.image", "not an image reference");
        }
        _ => {}
    }

    let params = check_params(spec, r);
    let timeout = r.duration("spec.timeout", spec.timeout.as_deref(), DEFAULT_ACTION_TIMEOUT);

    let idempotency_key = match &spec.idempotency_key {
        Some(text) => match Template::parse(text, &[Variable::Param]) {
            Ok(t) => {
                for name in t.references(Variable::Param) {
                    if !spec.params.contains_key(name) {
                        r.at_value(
                            "spec.idempotency_key",
                            format!("reads `$params.{name}`, which is not declared in spec.params"),
                        );
                    }
                }
                Some(t)
            }
            Err(e) => {
                r.inside_value("spec.idempotency_key", 1, e.column, e.message);
                None
            }
        },
        None => {
            if purpose == Some(Purpose::Fix) {
                r.at_key(
                    "spec",
                    "a fix needs spec.idempotency_key (a template over $params naming the target)",
                );
            }
            None
        }
    };

    let memory_bytes = spec
        .resources
        .as_ref()
        .and_then(|res| res.memory.as_ref())
        .and_then(|m| {
            parse_memory(m)
                .map_err(|e| r.at_value("spec.resources.memory", e))
                .ok()
        });
    let cpus = spec.resources.as_ref().and_then(|res| res.cpus);
    if let Some(c) = cpus
        && !(c > 0.0 && c <= 64.0)
    {
        r.at_value("spec.resources.cpus", "must be in (0, 64]");
    }
    let network = spec.network.clone().unwrap_or_else(|| "none".to_string());
    if network.trim().is_empty() {
        r.at_value("spec.network", "must not be empty");
    }

    let mut mounts = Vec::new();
    for (i, m) in spec.mounts.iter().enumerate() {
        let field = format!("spec.mounts[{i}]");
        if runner != Some(RunnerKind::Docker) {
            r.at_key(&field, "mounts are for the docker runner");
        }
        for (name, path) in [("host", &m.host), ("container", &m.container)] {
            if !path.starts_with('/') || path.split('/').any(|seg| seg == "..") {
                r.at_value(
                    &format!("{field}.{name}"),
                    "must be an absolute path without `..`",
                );
            }
        }
        mounts.push(crate::model::action::Mount {
            host: m.host.clone(),
            container: m.container.clone(),
            read_only: m.read_only.unwrap_or(true),
        });
    }
    if spec.host_pid == Some(true) && runner != Some(RunnerKind::Docker) {
        r.at_key("spec.host_pid", "host_pid is for the docker runner");
    }

    let phases = check_phases(doc, purpose, runner, r);

    if r.problems.len() > before {
        return None;
    }
    Some(Action {
        name: doc.metadata.name.clone(),
        description: doc.metadata.description.clone(),
        source: file.path.clone(),
        purpose: purpose?,
        runner: runner?,
        image: spec.image.clone(),
        params,
        timeout,
        idempotency_key,
        memory_bytes,
        cpus,
        network,
        writable_root_fs: spec.writable_root_fs.unwrap_or(false),
        mounts,
        host_pid: spec.host_pid.unwrap_or(false),
        phases,
    })
}

fn check_params(
    spec: &crate::document::action::ActionSpec,
    r: &mut Reporter<'_>,
) -> BTreeMap<String, ParamSpec> {
    let mut params = BTreeMap::new();
    for (name, param) in &spec.params {
        let field = format!("spec.params.{name}");
        if !is_identifier(name) {
            r.at_key(&field, "param names are lowercase letters, digits and `_`");
        }
        let pattern = match Regex::new(&format!("^(?:{})$", param.pattern)) {
            Ok(re) => re,
            Err(e) => {
                r.at_value(
                    &format!("{field}.pattern"),
                    format!("invalid regex: {}", first_line(&e.to_string())),
                );
                continue;
            }
        };
        if let Some(default) = &param.default
            && !pattern.is_match(default)
        {
            r.at_value(
                &format!("{field}.default"),
                format!("`{default}` does not match the pattern"),
            );
        }
        params.insert(
            name.clone(),
            ParamSpec {
                pattern_source: param.pattern.clone(),
                pattern,
                required: param.required.unwrap_or(true),
                default: param.default.clone(),
                description: param.description.clone(),
            },
        );
    }
    params
}

fn check_phases(
    doc: &ActionDocument,
    purpose: Option<Purpose>,
    runner: Option<RunnerKind>,
    r: &mut Reporter<'_>,
) -> Phases {
    let spec = &doc.spec;
    let written = [
        (PhaseName::Precheck, &spec.phases.precheck),
        (PhaseName::Execute, &spec.phases.execute),
        (PhaseName::Verify, &spec.phases.verify),
        (PhaseName::Rollback, &spec.phases.rollback),
    ];
    // An execute that cannot be undone (a restart) has no rollback phase, and needs none.
    let irreversible = runner
        .zip(spec.phases.execute.as_ref().and_then(|p| p.operation.as_deref()))
        .and_then(|(kind, op)| Operation::parse(kind, op))
        .filter(|op| !op.can_be_rolled_back());
    let mut phases = Phases::default();
    for (name, phase) in written {
        let field = format!("spec.phases.{}", name.as_str());
        if let (Some(op), PhaseName::Rollback, Some(_)) = (irreversible, name, phase) {
            r.at_key(
                &field,
                format!(
                    "execute `{}` cannot be rolled back (a restarted process stays restarted); an action using it has no rollback phase",
                    op.as_str()
                ),
            );
            continue;
        }
        let needed = match purpose {
            Some(Purpose::Fix) => name != PhaseName::Rollback || irreversible.is_none(),
            Some(Purpose::Diagnostic) => name == PhaseName::Execute,
            None => false,
        };
        let Some(phase) = phase else {
            if needed {
                let why = if purpose == Some(Purpose::Fix) {
                    "a fix needs precheck, execute, verify and rollback"
                } else {
                    "a diagnostic action needs execute"
                };
                r.at_key("spec.phases", format!("missing phase `{}`: {why}", name.as_str()));
            }
            continue;
        };
        if purpose == Some(Purpose::Diagnostic) && name != PhaseName::Execute {
            r.at_key(
                &field,
                "a diagnostic action is read-only and has only an execute phase",
            );
            continue;
        }
        if let Some(built) = check_phase(&field, name, phase, runner, spec, r) {
            match name {
                PhaseName::Precheck => phases.precheck = Some(built),
                PhaseName::Execute => phases.execute = Some(built),
                PhaseName::Verify => phases.verify = Some(built),
                PhaseName::Rollback => phases.rollback = Some(built),
            }
        }
    }
    phases
}

fn check_phase(
    field: &str,
    name: PhaseName,
    phase: &PhaseSpec,
    runner: Option<RunnerKind>,
    spec: &crate::document::action::ActionSpec,
    r: &mut Reporter<'_>,
) -> Option<Phase> {
    let timeout = r.duration(
        &format!("{field}.timeout"),
        phase.timeout.as_deref(),
        DEFAULT_PHASE_TIMEOUT,
    );
    let interval = r.duration(
        &format!("{field}.interval"),
        phase.interval.as_deref(),
        DEFAULT_VERIFY_INTERVAL,
    );
    if name != PhaseName::Verify {
        if phase.retries.is_some() {
            r.at_key(&format!("{field}.retries"), "only verify is retried");
        }
        if phase.interval.is_some() {
            r.at_key(&format!("{field}.interval"), "only verify is retried");
        }
    }
    let retries = phase.retries.unwrap_or(1);
    if retries == 0 {
        r.at_value(&format!("{field}.retries"), "must be at least 1");
    }
    let step = match (&phase.run, &phase.operation) {
        (Some(_), Some(_)) | (None, None) => {
            r.at_key(field, "set exactly one of `run` and `operation`");
            return None;
        }
        (Some(argv), None) => {
            if runner == Some(RunnerKind::Kubernetes) {
                r.at_key(
                    &format!("{field}.run"),
                    "runner `kubernetes` takes `operation`, not `run`",
                );
                return None;
            }
            if argv.is_empty() || argv[0].trim().is_empty() {
                r.at_value(&format!("{field}.run"), "needs a program to run");
                return None;
            }
            PhaseStep::Run(argv.clone())
        }
        (None, Some(op_name)) => {
            let op_field = format!("{field}.operation");
            // An unknown runner was reported already.
            let kind = runner?;
            let takes = Operation::names_of(kind);
            if takes.is_empty() {
                r.at_key(
                    &op_field,
                    format!("runner `{}` takes `run`, not `operation`", spec.runner),
                );
                return None;
            }
            let Some(op) = Operation::parse(kind, op_name) else {
                let owner = RunnerKind::ALL
                    .iter()
                    .find(|(_, other)| *other != kind && Operation::parse(*other, op_name).is_some());
                let message = match owner {
                    Some((owner, _)) => format!(
                        "operation `{op_name}` is for runner `{owner}`; runner `{}` takes {}{}",
                        spec.runner,
                        takes.join(", "),
                        if kind == RunnerKind::Docker {
                            ", or `run`"
                        } else {
                            ""
                        }
                    ),
                    None => format!(
                        "unknown operation `{op_name}`; expected one of {}",
                        takes.join(", ")
                    ),
                };
                r.at_value(&op_field, message);
                return None;
            };
            if !op.allowed_in(name) {
                r.at_value(
                    &op_field,
                    format!("operation `{op_name}` cannot be the {} phase", name.as_str()),
                );
                return None;
            }
            for param in op.required_params() {
                if !spec.params.contains_key(*param) {
                    r.at_value(&op_field, format!("operation `{op_name}` reads param `{param}`, which is not declared in spec.params"));
                }
            }
            PhaseStep::Operation(op)
        }
    };
    Some(Phase {
        step,
        timeout,
        retries: retries.max(1),
        interval,
    })
}
