"""deploy/ stays true to the code: files parse, manifests are safe and complete, and every metric
the alerts and the dashboard name is one the services really expose.

An operator finds a broken manifest or an alert on a metric that does not exist only in
production, when it matters; these checks find them in CI.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from leadrelay.app.definitions import load_definitions
from leadrelay.app.registry import CONSUMER_SERVICES, SERVICES
from leadrelay.credentials import generated_secrets
from leadrelay.metrics import RuntimeMetrics
from leadrelay.runtime.service import Runtime
from leadrelay.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "kubernetes" / "base"
KEDA = DEPLOY / "kubernetes" / "keda"
ALERTS = DEPLOY / "prometheus" / "alerts.yaml"
DASHBOARD = DEPLOY / "grafana" / "leadrelay-dashboard.json"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"

SERVICE_METRIC_MODULES = ("ingest", "scoring", "handoff", "sla_monitor", "reporting")
SECRET_SETTINGS = frozenset(
    {
        "LEADRELAY_DATABASE_URL",
        "LEADRELAY_API_TOKEN",
        "LEADRELAY_WEBHOOK_SECRETS",
        "LEADRELAY_HUBSPOT_CLIENT_SECRET",
        "LEADRELAY_MARKETO_TOKEN",
        "LEADRELAY_LEAD_KEY_SECRET",
    }
)
"""Every secret the production validator demands, so every process needs all of them."""
SECRET_NAME = "leadrelay-secrets"
METRIC_NAME = re.compile(r"leadrelay_[a-z0-9_]+")
METRIC_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
}


# ---------------------------------------------------------------- helpers


def _files(*suffixes: str) -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in suffixes)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _base_objects(kind: str) -> list[dict[str, Any]]:
    """The objects of ``kind`` in the base, as written (kustomize only adds names and labels)."""
    kustomization = _documents(BASE / "kustomization.yaml")[0]
    return [
        doc
        for resource in kustomization["resources"]
        for doc in _documents(BASE / resource)
        if doc["kind"] == kind
    ]


def _deployments() -> dict[str, dict[str, Any]]:
    """The base's Deployments by the service their container runs (``run <service>``)."""
    found = {}
    for deployment in _base_objects("Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"][0] == "run", deployment["metadata"]["name"]
        found[container["args"][1]] = deployment
    return found


def _workloads() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod template the base runs: the Deployments and the migration Job."""
    for deployment in _base_objects("Deployment"):
        yield deployment["metadata"]["name"], deployment["spec"]["template"]["spec"]
    for job in _base_objects("Job"):
        yield job["metadata"]["name"], job["spec"]["template"]["spec"]


def _config_env() -> dict[str, str]:
    lines = (BASE / "leadrelay.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def _setting_env_names() -> set[str]:
    return {f"LEADRELAY_{name.upper()}" for name in Settings.model_fields}


@dataclasses.dataclass(frozen=True)
class ExposedMetric:
    type: str
    labels: frozenset[str]


@cache
def _exposed_metrics() -> dict[str, ExposedMetric]:
    """Every metric family the runtime and the services register, by name, with its labels."""
    registry = CollectorRegistry()
    holders: list[object] = [RuntimeMetrics.create(registry)]
    for service in SERVICE_METRIC_MODULES:
        try:
            module = importlib.import_module(f"services.{service}.metrics")
        except ModuleNotFoundError:
            continue  # its metrics are then reported as missing by the tests below
        for cls in vars(module).values():
            if isinstance(cls, type) and cls.__module__ == module.__name__:
                create = vars(cls).get("create")
                if isinstance(create, classmethod):
                    holders.append(create.__func__(cls, registry))
    families = {family.name: family.type for family in registry.collect()}
    labels = {}
    for holder in holders:
        for field in dataclasses.fields(holder):  # type: ignore[arg-type]
            value = getattr(holder, field.name)
            if isinstance(value, MetricWrapperBase):
                # prometheus_client keeps label names only privately; describe() drops them
                (family,) = value.describe()
                labels[family.name] = frozenset(getattr(value, "_labelnames", ()))
    return {
        name: ExposedMetric(kind, labels.get(name, frozenset())) for name, kind in families.items()
    }


def _family(sample_name: str) -> str:
    for suffix in METRIC_SUFFIXES:
        if sample_name.endswith(suffix):
            return sample_name.removesuffix(suffix)
    return sample_name


def _sample_names() -> set[str]:
    return {
        name + suffix
        for name, metric in _exposed_metrics().items()
        for suffix in SAMPLE_SUFFIXES[metric.type]
    }


def _alert_rules() -> list[dict[str, Any]]:
    return [rule for group in _documents(ALERTS)[0]["groups"] for rule in group["rules"]]


def _dashboard_targets() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target for panel in dashboard["panels"] for target in panel.get("targets", [])]


def _labels_in(expr: str) -> tuple[set[str], set[str]]:
    """(labels an expression groups by, every label it names in groupings or matchers)."""
    grouped = {
        label.strip()
        for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
        for label in clause.split(",")
        if label.strip()
    }
    joined = {
        label.strip()
        for clause in re.findall(r"\b(?:on|ignoring)\s*\(([^)]*)\)", expr)
        for label in clause.split(",")
        if label.strip()
    }
    matched = {
        name
        for selector in re.findall(r"\{([^}]*)\}", expr)
        for name in re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", selector)
    }
    return grouped, grouped | joined | matched


def _labels_of_metrics_in(expr: str) -> set[str]:
    exposed = _exposed_metrics()
    labels: set[str] = set()
    for name in METRIC_NAME.findall(expr):
        metric = exposed.get(_family(name))
        if metric is not None:
            labels |= metric.labels | ({"le"} if name.endswith("_bucket") else set())
    return labels


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


# ---------------------------------------------------------------- every file parses


@pytest.mark.parametrize("path", _files(".yaml", ".yml"), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert _documents(path), f"{path} has no document"


@pytest.mark.parametrize("path", _files(".json"), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_json_file_parses(path: Path) -> None:
    assert json.loads(path.read_text())


def test_deploy_has_each_deliverable() -> None:
    for path in (
        DOCKERFILE,
        COMPOSE,
        ALERTS,
        DASHBOARD,
        BASE / "kustomization.yaml",
        KEDA / "kustomization.yaml",
        DEPLOY / "README.md",
    ):
        assert path.is_file(), path


# ---------------------------------------------------------------- kustomize


@pytest.mark.parametrize("directory", [BASE, KEDA], ids=["base", "keda"])
def test_every_file_a_kustomization_names_exists(directory: Path) -> None:
    kustomization = _documents(directory / "kustomization.yaml")[0]
    named = list(kustomization.get("resources", []))
    for generator in kustomization.get("configMapGenerator", []):
        named += generator.get("envs", []) + generator.get("files", [])
    assert named
    for name in named:
        assert (directory / name).exists(), f"{directory.name}/kustomization.yaml: {name} missing"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("directory", [BASE, KEDA], ids=["base", "keda"])
def test_kustomize_renders_every_service(directory: Path) -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(directory)], check=True, capture_output=True, text=True
    ).stdout
    objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for service in SERVICES:
        assert ("Deployment", f"leadrelay-{service}") in names
        assert ("PodDisruptionBudget", f"leadrelay-{service}") in names
    assert ("Job", "leadrelay-migrate") in names
    if directory == KEDA:  # KEDA owns the consumers' replica count: re-applying must not reset it
        for o in objects:
            if o["kind"] == "Deployment":
                assert "replicas" not in o["spec"], o["metadata"]["name"]
        assert {n for kind, n in names if kind == "ScaledObject"} == {
            f"leadrelay-{service}" for service in CONSUMER_SERVICES
        }


def test_one_deployment_per_service() -> None:
    assert sorted(_deployments()) == sorted(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_probes_the_port_the_service_listens_on(service: str) -> None:
    """Probes ask the port that takes traffic; Prometheus scrapes the private metrics port."""
    config = _config_env()
    metrics_port = int(config.get("LEADRELAY_METRICS_PORT", "9100"))
    expected_port = int(config["LEADRELAY_HTTP_PORT"]) if service == "ingest" else metrics_port
    pod = _deployments()[service]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == expected_port
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_has_resource_requests_and_limits(service: str) -> None:
    (container,) = _deployments()[service]["spec"]["template"]["spec"]["containers"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound]), bound


def test_every_workload_runs_as_non_root_on_a_read_only_root() -> None:
    for name, pod in _workloads():
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security.get("runAsUser", 1) != 0, name
        for container in pod["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name


def test_every_workload_gets_all_secrets_from_the_secret_and_settings_from_the_configmap() -> None:
    """A process in production refuses to start without every secret, the migration included."""
    for name, pod in _workloads():
        (container,) = pod["containers"]
        refs = {env["name"]: env["valueFrom"]["secretKeyRef"] for env in container["env"]}
        assert set(refs) == SECRET_SETTINGS, name
        assert all(ref["name"] == SECRET_NAME for ref in refs.values()), name
        assert {"configMapRef": {"name": "leadrelay-config"}} in container["envFrom"], name


def test_settings_in_the_configmap_are_real_settings_and_valid_for_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pod's environment (ConfigMap plus Secret) must load, as the process will load it."""
    config = _config_env()
    assert set(config) <= _setting_env_names(), set(config) - _setting_env_names()
    assert not set(config) & SECRET_SETTINGS, "secrets belong in the Secret"
    placeholders = generated_secrets()
    assert set(placeholders) <= SECRET_SETTINGS
    for name, value in {**config, **placeholders}.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.environment == "production"
    assert settings.kafka_bootstrap == config["LEADRELAY_KAFKA_BOOTSTRAP"]
    assert len(settings.webhook_secrets) == 1
    assert settings.http_host == "0.0.0.0"  # a pod must answer on its own address, not loopback


def test_mounted_definitions_are_valid_and_where_the_setting_points() -> None:
    assert load_definitions(BASE / "definitions.yaml")
    definitions_path = Path(_config_env()["LEADRELAY_DEFINITIONS"])
    for name, pod in _workloads():
        (container,) = pod["containers"]
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
        assert str(definitions_path.parent) in mounts, name


def test_ingest_service_sends_port_80_to_the_api() -> None:
    (service,) = _base_objects("Service")
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    (container,) = _deployments()["ingest"]["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports[port["targetPort"]] == int(_config_env()["LEADRELAY_HTTP_PORT"])


def test_migration_job_runs_migrate() -> None:
    (job,) = _base_objects("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["migrate"]


def _consumed_topics(service: str, settings: Settings) -> set[str]:
    """The topics ``service`` subscribes to, from its own ServiceSpec.

    ``build_service`` only wires objects together (nothing connects at construction), so a
    stand-in runtime carrying settings, a registry and the topic naming is enough.
    """
    runtime = SimpleNamespace(
        settings=settings,
        store=object(),
        producer=object(),
        registry=CollectorRegistry(),
        metrics=None,
        topic=settings.topic,
    )
    build = CONSUMER_SERVICES[service].consumer
    assert build is not None
    spec = build(cast(Runtime, runtime), load_definitions(BASE / "definitions.yaml"))
    return {settings.topic(topic) for topic in spec.consumes}


@pytest.mark.parametrize("service", CONSUMER_SERVICES)
def test_keda_scales_the_consumer_group_on_the_topics_it_reads(service: str) -> None:
    config = _config_env()
    settings = Settings(_env_file=None, topic_prefix=config["LEADRELAY_TOPIC_PREFIX"])
    (scaled,) = [
        doc
        for doc in _documents(KEDA / "scaledobjects.yaml")
        if doc["spec"]["scaleTargetRef"]["name"] == f"leadrelay-{service}"
    ]
    spec = scaled["spec"]
    # more members than partitions sit idle; the outbox relay and SLA timers must always run
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    assert spec["maxReplicaCount"] <= int(config["LEADRELAY_TOPIC_PARTITIONS"])
    triggers = [trigger["metadata"] for trigger in spec["triggers"]]
    assert {trigger["type"] for trigger in spec["triggers"]} == {"kafka"}
    assert {metadata["consumerGroup"] for metadata in triggers} == {settings.topic_prefix + service}
    assert {metadata["topic"] for metadata in triggers} == _consumed_topics(service, settings)
    for metadata in triggers:
        assert metadata["bootstrapServersFromEnv"] in config


def test_keda_scales_only_the_consumer_services() -> None:
    targets = [
        doc["spec"]["scaleTargetRef"]["name"] for doc in _documents(KEDA / "scaledobjects.yaml")
    ]
    assert sorted(targets) == sorted(f"leadrelay-{service}" for service in CONSUMER_SERVICES)


# ---------------------------------------------------------------- metrics


def test_the_code_exposes_metrics_to_compare_with() -> None:
    exposed = _exposed_metrics()
    assert "leadrelay_consumer_lag" in exposed
    assert exposed["leadrelay_messages_dead_lettered"].type == "counter"


@pytest.mark.parametrize("path", [ALERTS, DASHBOARD], ids=["alerts", "dashboard"])
def test_every_metric_named_is_exposed_by_the_code(path: Path) -> None:
    named = set(METRIC_NAME.findall(path.read_text()))
    assert named
    missing = sorted(name for name in named if _family(name) not in _exposed_metrics())
    assert not missing, f"{path.name} names metrics no code exposes: {missing}"
    wrong_suffix = sorted(named - _sample_names())
    assert not wrong_suffix, f"{path.name}: no such sample (check _total/_bucket): {wrong_suffix}"


def test_alerts_use_only_labels_their_metrics_have() -> None:
    for rule in _alert_rules():
        grouped, named = _labels_in(rule["expr"])
        assert named <= _labels_of_metrics_in(rule["expr"]), (rule["alert"], named)
        annotations = " ".join(rule["annotations"].values())
        for label in re.findall(r"\$labels\.(\w+)", annotations):
            assert label in grouped, (rule["alert"], label)


def test_dashboard_uses_only_labels_its_metrics_have() -> None:
    for target in _dashboard_targets():
        grouped, named = _labels_in(target["expr"])
        available = _labels_of_metrics_in(target["expr"])
        assert named <= available, (target["expr"], named - available)
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")):
            assert label in (grouped or available), (target["expr"], label)


def test_every_alert_tells_what_happened_and_what_to_do() -> None:
    rules = _alert_rules()
    assert len({rule["alert"] for rule in rules}) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), rule["alert"]


def test_alerts_cover_what_operators_asked_for() -> None:
    exprs = " ".join(rule["expr"] for rule in _alert_rules())
    for metric in (
        "leadrelay_consumer_lag",
        "leadrelay_messages_dead_lettered_total",
        "leadrelay_outbox_backlog",
        "leadrelay_sla_breaches_total",
        "leadrelay_ingest_requests_total",
        "leadrelay_handoff_no_eligible_rep_total",
    ):
        assert metric in exprs, metric


def test_dashboard_panels_have_unique_ids_and_fit_the_grid() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]


# ---------------------------------------------------------------- Dockerfile and compose


def test_dockerfile_is_multi_stage_non_root_and_runs_leadrelay() -> None:
    instructions = _dockerfile_instructions()
    assert sum(1 for keyword, _ in instructions if keyword == "FROM") >= 2
    users = [argument for keyword, argument in instructions if keyword == "USER"]
    assert users, "the image must not run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    for name, pod in _workloads():  # the pods claim the image's own user
        assert str(pod["securityContext"]["runAsUser"]) == user, name
    entrypoints = [argument for keyword, argument in instructions if keyword == "ENTRYPOINT"]
    assert json.loads(entrypoints[-1]) == ["leadrelay"]
    commands = [argument for keyword, argument in instructions if keyword == "CMD"]
    assert json.loads(commands[-1]) == ["run", "ingest"]


def test_dockerfile_copies_everything_the_wheel_is_built_from() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {
        "pyproject.toml",
        project["project"]["readme"],
        *wheel["packages"],
        *wheel.get("force-include", {}),
    }
    copied = set()
    for keyword, argument in _dockerfile_instructions():
        if keyword == "COPY" and not argument.startswith("--from"):
            *sources, _destination = argument.split()
            copied |= {source.rstrip("/") for source in sources}
    assert needed <= copied, needed - copied
    for source in copied:
        assert (ROOT / source).exists(), source


def test_compose_runs_kafka_postgres_the_migration_then_every_service() -> None:
    services = _documents(COMPOSE)[0]["services"]
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["migrate"]["command"] == ["migrate"]
    for service in SERVICES:
        assert services[service]["command"] == ["run", service]
        depends = services[service]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["kafka"]["condition"] == "service_healthy"
    for name in ("migrate", *SERVICES):
        unknown = set(services[name]["environment"]) - _setting_env_names()
        assert not unknown, (name, unknown)
