"""deploy/ agrees with the code: commands, settings, topics, ports, metric names and the image.

Nothing runs in a container here; the compose file, every Kubernetes YAML, the Prometheus and
Grafana files and the Dockerfile are parsed and cross-checked against names taken from the code
(`services.cli.build_parser()`, `shared/topics.py`, the `FAULTLINE_*` and `faultline_*` names in the
sources). A name the manifests use before the code has it must be listed in a PLANNED set below,
so a typo or a renamed setting fails here instead of in production.
"""

from __future__ import annotations

import argparse
import functools
import json
import posixpath
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))

IMAGE = "faultline:latest"
PROCESSES = ("ingest", "correlate", "dispatch", "api")
PROCESS_COMMANDS = {("ingest",), ("correlate",), ("dispatch",), ("api",), ("db", "upgrade")}
LISTENER_ENV = ("FAULTLINE_SYSLOG_UDP_PORT", "FAULTLINE_SYSLOG_TCP_PORT", "FAULTLINE_SNMP_TRAP_PORT")
LISTENER_PROTOCOL = {"FAULTLINE_SYSLOG_UDP_PORT": "UDP", "FAULTLINE_SYSLOG_TCP_PORT": "TCP",
                     "FAULTLINE_SNMP_TRAP_PORT": "UDP"}

# --- Names the manifests may use before the code has them: anything the manifests name
# that is neither in the code nor here fails the tests below. Empty: the code has them all.
PLANNED_COMMANDS: set[str] = set()
PLANNED_ENV: set[str] = set()
PLANNED_TOPICS: set[str] = set()
PLANNED_METRICS: set[str] = set()
PROMETHEUS_BUILTIN_METRICS = {"up"}

FILE_SUFFIXES = {"json", "yml", "yaml", "py", "md", "txt", "sqlite3", "toml"}
TOPIC_RE = re.compile(r"(?<![\w.\-/])faultline(?:\.(?:[a-z][a-z0-9_]*|<[a-z_]+>))+")
ENV_RE = re.compile(r"FAULTLINE_[A-Z_]*[A-Z]")
METRIC_RE = re.compile(r"faultline_[a-z_]*[a-z]")
EXPOSITION_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


# --------------------------------------------------------------------------- the code's names

def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def _source_files(*patterns: str) -> list[Path]:
    out: list[Path] = []
    for pattern in patterns:
        out += sorted(ROOT.glob(pattern))
    return [p for p in out if p.is_file()]


@functools.cache
def cli_parser() -> argparse.ArgumentParser:
    from services.cli import build_parser
    return build_parser()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


@functools.cache
def code_subcommands() -> frozenset[str]:
    return frozenset(_subparsers(cli_parser()))


@functools.cache
def code_options() -> frozenset[str]:
    parsers = [cli_parser(), *_subparsers(cli_parser()).values()]
    return frozenset(o for p in parsers for a in p._actions for o in a.option_strings)


@functools.cache
def code_env_names() -> frozenset[str]:
    """FAULTLINE_* names in the CLI's epilog texts and in the sources that read settings."""
    parsers = [cli_parser(), *_subparsers(cli_parser()).values()]
    text = "\n".join(p.epilog or "" for p in parsers)
    for path in _source_files("services/cli.py", "services/**/*.py", "shared/transport/kafka/*.py"):
        text += _read(path)
    return frozenset(ENV_RE.findall(text))


@functools.cache
def code_topics() -> frozenset[str]:
    """Every topic constant of shared/topics.py, and the raw feed of every format
    alarm_ingest reads."""
    import shared.topics as topics
    from alarm_ingest.raw import FORMATS
    names = {value for name, value in vars(topics).items()
             if name.isupper() and isinstance(value, str) and not value.endswith(".")}
    names |= {topics.raw_alarms_topic(f) for f in FORMATS}
    return frozenset(names)


def workorders_prefix() -> str:
    from shared.topics import WORKORDERS_PREFIX
    return WORKORDERS_PREFIX


@functools.cache
def code_metrics() -> frozenset[str]:
    text = "".join(_read(p) for p in _source_files("services/**/*.py", "shared/**/*.py"))
    return frozenset(METRIC_RE.findall(text))


def allowed_topic(topic: str) -> bool:
    """A known topic, a work-order queue's topic, or a family such as faultline.alarms.raw.<format>."""
    known = code_topics() | PLANNED_TOPICS
    if "<" in topic:
        prefix = topic.split("<", 1)[0]
        return prefix == workorders_prefix() or any(t.startswith(prefix) for t in known)
    return topic in known or (
        topic.startswith(workorders_prefix()) and len(topic) > len(workorders_prefix()))


def known_metric(name: str) -> bool:
    known = code_metrics() | PLANNED_METRICS
    return name in known or any(name.endswith(s) and name[: -len(s)] in known for s in EXPOSITION_SUFFIXES)


# --------------------------------------------------------------------------- the manifests

def deploy_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.is_file())


@functools.cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def compose_services() -> dict[str, dict]:
    return compose()["services"]


def faultline_services() -> dict[str, dict]:
    return {n: s for n, s in compose_services().items() if s.get("image") == IMAGE}


def compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: str(v) for k, v in env.items()}


def as_list(value) -> list[str]:
    return value.split() if isinstance(value, str) else list(value or [])


@functools.cache
def k8s_objects() -> tuple[dict, ...]:
    out = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                doc["__file__"] = path.name
                out.append(doc)
    return tuple(out)


def k8s(kind: str) -> list[dict]:
    return [o for o in k8s_objects() if o["kind"] == kind]


def k8s_one(kind: str, name: str) -> dict:
    found = [o for o in k8s(kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def faultline_containers() -> list[tuple[dict, dict]]:
    """(object, container) for every container running the faultline image."""
    return [(o, c) for o in k8s_objects() if o["kind"] in ("Deployment", "Job", "StatefulSet")
            for c in pod_spec(o).get("initContainers", []) + pod_spec(o)["containers"]
            if c["image"].split(":")[0] == "faultline"]


def container_env(container: dict) -> dict[str, str]:
    env: dict[str, str] = {}
    for ref in container.get("envFrom", []):
        if "configMapRef" in ref:
            env.update(k8s_one("ConfigMap", ref["configMapRef"]["name"])["data"])
        if "secretRef" in ref:
            secret = k8s_one("Secret", ref["secretRef"]["name"])
            env.update(secret.get("stringData") or {})
            env.update({k: "<base64>" for k in secret.get("data") or {}})
    for item in container.get("env", []):
        env[item["name"]] = str(item.get("value", "<ref>"))
    return {k: str(v) for k, v in env.items()}


def settings() -> dict[str, str]:
    return k8s_one("ConfigMap", "faultline-settings")["data"]


def http_port() -> int:
    """The one FAULTLINE_HTTP_PORT every process uses (k8s ConfigMap; compose must agree)."""
    return int(settings()["FAULTLINE_HTTP_PORT"])


# --------------------------------------------------------------------------- PromQL

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right",
                   "and", "or", "unless", "bool", "offset", "inf", "nan"}


def promql_metrics(expr: str) -> set[str]:
    """The metric names of a PromQL expression (functions, labels, keywords and variables left out)."""
    e = re.sub(r"label_values\(\s*([^,()]+?)\s*,\s*\w+\s*\)", r"\1", expr)
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", e):
        if e[m.end():].lstrip().startswith("(") or m.group().lower() in PROMQL_KEYWORDS:
            continue
        names.add(m.group())
    return names


def test_promql_metric_extraction():
    expr = ('histogram_quantile(0.95, sum by (le, step) (rate(faultline_engine_seconds_bucket'
            '[$__rate_interval]))) / clamp_min(sum(faultline_faults_open{severity="serious",'
            'city=~"$city"}), 1) or up{job=~"a.*"} == 0 offset 5m')
    assert promql_metrics(expr) == {"faultline_engine_seconds_bucket", "faultline_faults_open", "up"}
    assert promql_metrics("label_values(faultline_faults_open, city)") == {"faultline_faults_open"}


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in DASHBOARDS:
        dash = json.loads(path.read_text(encoding="utf-8"))
        exprs += [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        for var in dash.get("templating", {}).get("list", []):
            query = var.get("query")
            if var.get("type") == "query":
                exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def rule_exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8"))
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


# =========================================================================== tests: names

def test_every_faultline_setting_named_in_deploy_is_in_the_code_or_planned():
    assert code_env_names() >= {"FAULTLINE_HTTP_PORT", "FAULTLINE_INVENTORY"}, "cli.py no longer parsed?"
    unknown = {}
    for path in deploy_files():
        for name in set(ENV_RE.findall(_read(path))) - code_env_names() - PLANNED_ENV:
            unknown.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert not unknown, f"FAULTLINE_* names neither in the code nor PLANNED_ENV: {unknown}"


def test_every_topic_named_in_deploy_is_a_contract_or_internal_topic():
    assert code_topics() >= {"faultline.alarms", "faultline.decisions"}, "shared/topics.py no longer read?"
    unknown = {}
    for path in deploy_files():
        for topic in set(TOPIC_RE.findall(_read(path))):
            if topic.rsplit(".", 1)[-1] in FILE_SUFFIXES or allowed_topic(topic):
                continue
            unknown.setdefault(topic, []).append(str(path.relative_to(ROOT)))
    assert not unknown, f"topics neither in shared/topics.py nor PLANNED_TOPICS: {unknown}"


def _check_command(where: str, argv: list[str]) -> None:
    words = tuple(a for a in argv if not a.startswith("-"))
    assert words in PROCESS_COMMANDS, f"{where}: `faultline {' '.join(argv)}` is not a production process"
    assert words[0] in code_subcommands() | PLANNED_COMMANDS, f"{where}: no subcommand {words[0]!r}"
    flags = {a.split("=", 1)[0] for a in argv if a.startswith("-")}
    assert flags <= code_options(), f"{where}: unknown options {flags - code_options()}"


def test_compose_commands_are_the_production_processes():
    services = faultline_services()
    commands = set()
    for name, svc in services.items():
        assert "entrypoint" not in svc, f"{name}: the image's entrypoint is `faultline`"
        argv = as_list(svc.get("command"))
        _check_command(f"compose {name}", argv)
        commands.add(tuple(a for a in argv if not a.startswith("-")))
    assert commands == PROCESS_COMMANDS


def test_k8s_commands_are_the_production_processes():
    commands = set()
    for obj, c in faultline_containers():
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert c["image"] == IMAGE, where
        assert "command" not in c, f"{where}: use args; the image's entrypoint is `faultline`"
        _check_command(where, c["args"])
        commands.add(tuple(c["args"]))
    assert commands == PROCESS_COMMANDS


def test_grafana_dashboard_metrics_are_the_code_metrics():
    assert code_metrics() >= {"faultline_faults_open", "faultline_alarms"}, "metrics not parsed?"
    used = set()
    for expr in dashboard_exprs():
        for name in promql_metrics(expr):
            assert name.startswith("faultline_"), f"dashboard metric {name!r} in {expr!r}"
            assert known_metric(name), f"dashboard metric {name!r} neither in the code nor PLANNED_METRICS"
            used.add(name)
    wanted = {"faultline_faults_open", "faultline_alarms_total", "faultline_work_orders_total",
              "faultline_deadlines_missed_total", "faultline_consumer_lag", "faultline_engine_seconds_bucket"}
    assert wanted <= used, f"panels missing for {wanted - used}"


def test_alert_rules_use_known_metrics():
    for expr in rule_exprs():
        for name in promql_metrics(expr):
            ok = name in PROMETHEUS_BUILTIN_METRICS or (name.startswith("faultline_") and known_metric(name))
            assert ok, f"alert rule metric {name!r} in {expr!r}"
    text = " ".join(rule_exprs())
    for needed in ("faultline_faults_open", "faultline_deadlines_missed_total",
                   "faultline_consumer_lag", "up"):
        assert re.search(rf"\b{needed}\b", text), f"no alert rule on {needed}"


def test_metric_names_in_k8s_are_known():
    for path in sorted(K8S.glob("*.yaml")):
        for name in set(METRIC_RE.findall(_read(path))):
            assert known_metric(name), f"{path.name}: metric {name!r}"


# =========================================================================== tests: compose

def test_compose_kafka_is_a_single_kraft_node():
    kafka = compose_services()["kafka"]
    assert kafka["image"].startswith(("apache/kafka:", "bitnami/kafka:"))
    env = compose_env(kafka)
    roles = env.get("KAFKA_PROCESS_ROLES") or env.get("KAFKA_CFG_PROCESS_ROLES")
    listeners = env.get("KAFKA_LISTENERS") or env.get("KAFKA_CFG_LISTENERS")
    assert set(roles.split(",")) == {"broker", "controller"}
    assert set(listeners.split(",")) == {"PLAINTEXT://:9092", "CONTROLLER://:9093"}
    for name, svc in faultline_services().items():
        host, port = compose_env(svc)["FAULTLINE_KAFKA_BOOTSTRAP"].split(":")
        assert (host, port) == ("kafka", "9092"), name


def test_compose_topics_init_creates_every_fixed_topic():
    init = compose_services()["kafka-topics"]
    script = " ".join(as_list(init.get("entrypoint")) + as_list(init.get("command")))
    assert "kafka-topics.sh" in script and "--partitions" in script and "--if-not-exists" in script
    created = set(TOPIC_RE.findall(script))
    fixed = (code_topics() | PLANNED_TOPICS) - {t for t in code_topics() if t.startswith(workorders_prefix())}
    assert created == fixed, f"missing {fixed - created}, extra {created - fixed}"
    partitions = int(compose_env(init)["FAULTLINE_TOPIC_PARTITIONS"])
    for name, svc in faultline_services().items():
        assert int(compose_env(svc)["FAULTLINE_TOPIC_PARTITIONS"]) == partitions, name
        assert svc.get("deploy", {}).get("replicas", 1) <= partitions, f"{name}: replicas > partitions"


def test_compose_postgres_and_database_url_agree():
    pg = compose_services()["postgres"]
    assert pg["image"] == "postgres:16"
    env = compose_env(pg)
    assert env["POSTGRES_USER"] == env["POSTGRES_PASSWORD"] == env["POSTGRES_DB"] == "faultline"
    assert "pg_isready" in " ".join(as_list(pg["healthcheck"]["test"]))
    for name, svc in faultline_services().items():
        assert compose_env(svc)["FAULTLINE_DATABASE_URL"] == (
            "postgresql+asyncpg://faultline:faultline@postgres:5432/faultline"), name


def _depends(svc: dict) -> dict[str, str]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {k: (v or {}).get("condition", "service_started") for k, v in deps.items()}


def test_compose_processes_wait_for_the_one_shots():
    upgrade = faultline_services()["db-upgrade"]
    assert as_list(upgrade["command"]) == ["db", "upgrade"] and upgrade.get("restart") == "no"
    assert _depends(upgrade).get("postgres") == "service_healthy"
    for name in PROCESSES:
        deps = _depends(compose_services()[name])
        assert deps.get("db-upgrade") == "service_completed_successfully", name
        assert deps.get("kafka-topics") == "service_completed_successfully", name
        assert deps.get("kafka") == "service_healthy", name
    for name, svc in compose_services().items():
        assert set(_depends(svc)) <= set(compose_services()), f"{name} depends on a missing service"
    assert compose_services()["correlate"]["deploy"]["replicas"] == 2
    assert compose_services()["dispatch"]["deploy"]["replicas"] == 2


def _published(svc: dict) -> set[tuple[int, int, str]]:
    out = set()
    for spec in svc.get("ports", []):
        spec, _, proto = str(spec).partition("/")
        host, _, container = spec.rpartition(":")
        out.add((int(host or container), int(container), (proto or "tcp").upper()))
    return out


def test_compose_ports_and_healthchecks_use_the_http_port():
    port = http_port()
    for name, svc in faultline_services().items():
        env = compose_env(svc)
        assert int(env["FAULTLINE_HTTP_PORT"]) == port, name
        if name == "db-upgrade":
            continue
        check = " ".join(as_list(svc["healthcheck"]["test"]))
        assert f":{port}/healthz" in check, f"{name}: healthcheck {check!r}"
        assert svc.get("restart") in ("unless-stopped", "always"), name
    assert (port, port, "TCP") in _published(compose_services()["api"])


def test_compose_listeners_only_on_ingest_and_published():
    for name, svc in faultline_services().items():
        env = compose_env(svc)
        if name != "ingest":
            assert not set(LISTENER_ENV) & set(env), f"{name} has raw listeners"
            continue
        published = _published(svc)
        for var in LISTENER_ENV:
            port = int(env[var])
            assert any(c == port and p == LISTENER_PROTOCOL[var] for _, c, p in published), var


def test_compose_inventory_is_mounted_where_the_setting_points():
    for name, svc in faultline_services().items():
        target = compose_env(svc)["FAULTLINE_INVENTORY"]
        mounts = [str(v).split(":") for v in svc.get("volumes", [])]
        sources = [m[0] for m in mounts if len(m) >= 2 and m[1] == target]
        assert sources, f"{name}: nothing mounted at {target}"
        assert (DEPLOY / sources[0]).resolve().is_file(), f"{name}: {sources[0]} missing"


def test_prometheus_scrapes_every_process_on_the_http_port():
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    scraped = set()
    for job in prom["scrape_configs"]:
        targets = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        targets += [f"{n}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for n in sd["names"]]
        for target in targets:
            host, port = target.rsplit(":", 1)
            if host == "localhost":
                continue
            assert host in compose_services(), f"{job['job_name']}: no service {host!r}"
            if host in faultline_services():
                assert int(port) == http_port() and job.get("metrics_path", "/metrics") == "/metrics"
                scraped.add(host)
    assert scraped == set(PROCESSES)
    mounted = {str(v).split(":")[1] for v in compose_services()["prometheus"]["volumes"]}
    assert set(prom["rule_files"]) <= mounted


def test_grafana_provisioning_matches_the_dashboard():
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {d["uid"] for d in ds["datasources"]}
    assert all(d["url"].split("//")[1].split(":")[0] in compose_services() for d in ds["datasources"])
    assert len(DASHBOARDS) >= 3
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text(encoding="utf-8"))["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] in uids, panel["title"]
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/faultline.yml").read_text())
    mounted = {str(v).split(":")[1] for v in compose_services()["grafana"]["volumes"]}
    assert {p["options"]["path"] for p in providers["providers"]} <= mounted


# =========================================================================== tests: image

def test_dockerfile_builds_one_non_root_faultline_image():
    lines = [ln.strip() for ln in (DEPLOY / "Dockerfile").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln.split()[1] for ln in lines if ln.upper().startswith("FROM ")]
    assert froms and all(f == "python:3.11-slim" for f in froms)
    entry = [json.loads(ln.split(None, 1)[1]) for ln in lines if ln.upper().startswith("ENTRYPOINT ")]
    assert entry == [["faultline"]]
    assert any(re.search(r"pip install \.(\s|$)", ln) for ln in lines)
    users = [ln.split()[1] for ln in lines if ln.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    exposed = " ".join(ln for ln in lines if ln.upper().startswith("EXPOSE "))
    assert re.search(rf"\b{http_port()}\b", exposed)
    for obj in k8s_objects():
        if obj["kind"] in ("Deployment", "Job"):
            assert str(pod_spec(obj)["securityContext"]["runAsUser"]) == users[-1].split(":")[0]


# =========================================================================== tests: kubernetes

def test_kustomization_lists_every_manifest_and_one_namespace():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kust["resources"]) == files and kust["namespace"] == "faultline"
    assert [o["metadata"]["name"] for o in k8s("Namespace")] == ["faultline"]
    for obj in k8s_objects():
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "faultline", f"{obj['kind']}/{obj['metadata']['name']}"


def test_k8s_settings_and_secret():
    data = settings()
    for key in ("FAULTLINE_KAFKA_BOOTSTRAP", "FAULTLINE_INVENTORY", "FAULTLINE_HTTP_PORT",
                "FAULTLINE_KAFKA_IDEMPOTENCE", "FAULTLINE_TOPIC_PARTITIONS", "FAULTLINE_CLOCK"):
        assert key in data, key
    assert "FAULTLINE_DATABASE_URL" not in data, "the database URL belongs in the Secret"
    url = k8s_one("Secret", "faultline-database")["stringData"]["FAULTLINE_DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://")


def test_k8s_inventory_configmap_is_a_valid_inventory(tmp_path):
    from shared.inventory import load_inventory
    inv = k8s_one("ConfigMap", "faultline-inventory")["data"]
    assert list(inv) == [posixpath.basename(settings()["FAULTLINE_INVENTORY"])]
    path = tmp_path / "inventory.json"
    path.write_text(next(iter(inv.values())), encoding="utf-8")
    assert load_inventory(path).circuits


def _ports_by_name(container: dict) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}


def _resolve(port, container: dict) -> int:
    return port if isinstance(port, int) else _ports_by_name(container)[port]


def deployments() -> dict[str, dict]:
    return {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in k8s("Deployment")}


@pytest.mark.parametrize("process", PROCESSES)
def test_k8s_deployment_probes_ports_and_resources(process: str):
    dep = deployments()[process]
    (c,) = pod_spec(dep)["containers"]
    env = container_env(c)
    port = int(env["FAULTLINE_HTTP_PORT"])
    assert port == http_port() == _ports_by_name(c)["http"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert _resolve(c[probe]["httpGet"]["port"], c) == port
    annotations = dep["spec"]["template"]["metadata"].get("annotations", {})
    assert int(annotations["prometheus.io/port"]) == port
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{process}: {kind}"
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


@pytest.mark.parametrize("process", PROCESSES)
def test_k8s_services_select_their_pods_and_target_real_ports(process: str):
    dep = deployments()[process]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    (c,) = pod_spec(dep)["containers"]
    services = [s for s in k8s("Service") if s["spec"]["selector"].items() <= labels.items()]
    assert services, f"no Service for {process}"
    http = [p for s in services for p in s["spec"]["ports"] if _resolve(p["targetPort"], c) == http_port()]
    assert http, f"no Service port reaches {process}'s HTTP port"
    for s in services:
        for p in s["spec"]["ports"]:
            target = p["targetPort"]
            assert isinstance(target, int) or target in _ports_by_name(c), (s["metadata"]["name"], target)


def test_k8s_raw_listeners_only_on_ingest_with_a_service():
    for obj, c in faultline_containers():
        env = container_env(c)
        if obj["metadata"]["name"] != "faultline-ingest":
            assert not set(LISTENER_ENV) & set(env), obj["metadata"]["name"]
            continue
        ports = {(p["containerPort"], p.get("protocol", "TCP")): p.get("name") for p in c["ports"]}
        exposed = {p["targetPort"] for s in k8s("Service") for p in s["spec"]["ports"]}
        for var in LISTENER_ENV:
            key = (int(env[var]), LISTENER_PROTOCOL[var])
            assert key in ports, f"ingest: no containerPort for {var}"
            assert ports[key] in exposed or key[0] in exposed, f"ingest: no Service for {var}"


def test_k8s_every_faultline_container_has_its_settings_and_inventory():
    for obj, c in faultline_containers():
        where = obj["metadata"]["name"]
        env = container_env(c)
        needed = {"FAULTLINE_DATABASE_URL", "FAULTLINE_KAFKA_BOOTSTRAP", "FAULTLINE_INVENTORY"}
        assert needed <= set(env), where
        directory, filename = posixpath.split(env["FAULTLINE_INVENTORY"])
        volumes = {v["name"]: v for v in pod_spec(obj).get("volumes", [])}
        mounts = [m for m in c.get("volumeMounts", []) if m["mountPath"] == directory]
        assert mounts, f"{where}: nothing mounted at {directory}"
        cm = volumes[mounts[0]["name"]]["configMap"]["name"]
        assert filename in k8s_one("ConfigMap", cm)["data"], where


def test_k8s_db_upgrade_job():
    (job,) = k8s("Job")
    (c,) = pod_spec(job)["containers"]
    assert c["args"] == ["db", "upgrade"]
    assert pod_spec(job)["restartPolicy"] in ("OnFailure", "Never")


def test_k8s_autoscalers_scale_on_consumer_lag_within_the_partitions():
    partitions = int(settings()["FAULTLINE_TOPIC_PARTITIONS"])
    targets = {}
    for hpa in k8s("HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment"
        dep = k8s_one("Deployment", ref["name"])
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
        assert dep["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
        (metric,) = hpa["spec"]["metrics"]
        assert metric["type"] == "External"
        assert metric["external"]["metric"]["name"] == "faultline_consumer_lag"
        topic = metric["external"]["metric"]["selector"]["matchLabels"]["topic"]
        assert allowed_topic(topic)
        targets[ref["name"]] = topic
    assert targets == {"faultline-correlate": "faultline.correlator.inputs",
                       "faultline-dispatch": "faultline.faults"}


def test_k8s_every_deployment_has_a_disruption_budget():
    pdbs = k8s("PodDisruptionBudget")
    for process, dep in deployments().items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert any(p["spec"]["selector"]["matchLabels"].items() <= labels.items() for p in pdbs), process
    assert set(deployments()) == set(PROCESSES)


def test_the_dashboards_are_what_tools_gen_dashboards_writes():
    import subprocess
    import sys
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_dashboards.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
