"""The files agree with each other and with the code: names, targets, env, routes,
triggers, token settings. Adding a function without wiring it everywhere fails here."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from quill import events
from quill.errors import MethodNotAllowed
from quill.routing import FUNCTIONS_DIR, load_module, load_rules
from quill_tools.deploy.cli import expected_files
from quill_tools.deploy.render import SECRETS, secret_env
from quill_tools.deploy.spec import BUNDLE, FUNCTIONS
from tests.manifest.validation import ROOT, load_all, render

NAMES = {spec.name for spec in FUNCTIONS}
HTTP = {spec.name for spec in FUNCTIONS if spec.invoke == "http"}
PROD = render(ROOT / "infra" / "overlays" / "prod")
DEV = render(ROOT / "infra" / "overlays" / "dev")


def _of(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def _knative_services(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        obj["metadata"]["name"]: obj
        for obj in objects
        if obj["kind"] == "Service" and obj["apiVersion"].startswith("serving.knative.dev/")
    }


def _container(service: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = service["spec"]["template"]["spec"]["containers"][0]
    return container


def test_every_function_is_wired_everywhere() -> None:
    on_disk = {path.parent.name for path in FUNCTIONS_DIR.glob("*/main.py")} - {BUNDLE.name}
    assert on_disk == NAMES, "functions/<name>/main.py and quill_tools.deploy.spec.FUNCTIONS differ"
    knative = (ROOT / "knative" / "kustomization.yaml").read_text()
    tox = (ROOT / "tox.ini").read_text()
    for name in NAMES:
        assert (FUNCTIONS_DIR / name / "func.yaml").is_file(), name
        assert f"services/{name}.yaml" in knative, name
        assert f"functions/{name}/main.py" in tox, f"tox's type env does not check {name}"
        for overlay in (DEV, PROD):
            assert name in _knative_services(overlay), name
    selectors = [
        _of(PROD, "PodMonitor")[0]["spec"]["selector"]["matchExpressions"][0]["values"],
        *(
            policy["spec"]["podSelector"]["matchExpressions"][0]["values"]
            for policy in _of(PROD, "NetworkPolicy")
            if policy["metadata"]["name"].startswith("quill-functions")
        ),
    ]
    for values in selectors:
        assert set(values) >= NAMES


def test_committed_deployment_files_are_what_the_spec_renders() -> None:
    for path, content in expected_files().items():
        assert path.read_text() == content, f"{path.relative_to(ROOT)} drifted: run `quill deploy --write`"


def test_func_yaml_and_knative_service_agree_on_name_target_and_env() -> None:
    services = _knative_services(PROD)
    for spec in FUNCTIONS:
        func = load_all((FUNCTIONS_DIR / spec.name / "func.yaml").read_text())[0]
        service = services[spec.name]
        container = _container(service)
        assert func["name"] == service["metadata"]["name"] == spec.name
        func_env = {env["name"]: env["value"] for env in func["run"]["envs"] if "name" in env}
        service_env = {env["name"]: env for env in container["env"]}
        assert func_env["FUNCTION_TARGET"] == service_env["FUNCTION_TARGET"]["value"] == spec.name
        assert set(func_env) == set(service_env)
        for name in secret_env(spec):
            secret, key = SECRETS[name]
            assert func_env[name] == f"{{{{ secret:{secret}:{key} }}}}"
            assert service_env[name]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}
        assert any(env.get("value") == "{{ configMap:quill-config }}" for env in func["run"]["envs"])
        assert container["envFrom"] == [{"configMapRef": {"name": "quill-config"}}]
        labels = {label["key"]: label["value"] for label in func["deploy"]["labels"]}
        assert labels.get("networking.knative.dev/visibility") == "cluster-local"
        assert service["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
        assert func["deploy"]["options"]["scale"]["min"] == 0


def test_scale_to_zero_and_hardening_on_every_service() -> None:
    for overlay in (DEV, PROD):
        for name, service in _knative_services(overlay).items():
            template = service["spec"]["template"]
            annotations = template["metadata"]["annotations"]
            assert annotations["autoscaling.knative.dev/min-scale"] in {"0", "1"}, name
            assert "autoscaling.knative.dev/scale-to-zero-pod-retention-period" in annotations
            spec = template["spec"]
            assert spec["enableServiceLinks"] is False
            assert 0 < spec["containerConcurrency"] <= 1000  # Knative's admission limit
            container = _container(service)
            context = container["securityContext"]
            assert context["runAsNonRoot"]
            assert context["readOnlyRootFilesystem"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
            assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveness"
    dev_scale = {n: s["spec"]["template"]["metadata"]["annotations"] for n, s in _knative_services(DEV).items()}
    assert all(a["autoscaling.knative.dev/min-scale"] == "0" for a in dev_scale.values())


def test_one_image_for_every_quill_container() -> None:
    for overlay in (DEV, PROD):
        images = set()
        for obj in overlay:
            template = obj.get("spec", {}).get("template", {}).get("spec", {})
            images |= {c["image"] for c in template.get("containers", []) if "quill" in c["image"]}
        assert len(images) == 1, images


def test_every_routed_path_reaches_an_http_function_that_serves_it() -> None:
    routing = next(obj for obj in PROD if obj["kind"] == "VirtualService")
    assert routing["spec"]["gateways"] == ["knative-serving/knative-ingress-gateway"]
    services = _knative_services(PROD)
    for route in routing["spec"]["http"]:
        host = route["rewrite"]["authority"]
        name = host.split(".")[0]
        assert host == f"{name}.quill.svc.cluster.local"
        assert name in HTTP
        assert services[name]["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
        assert route["route"][0]["destination"]["host"] == "knative-local-gateway.istio-system.svc.cluster.local"
    for rule in load_rules():
        function = load_module(rule.function).FUNCTION
        probe = (
            rule.value if rule.kind == "exact" else rule.value.rstrip("/") + ("/x" if rule.value.endswith("/") else "")
        )
        with contextlib.suppress(MethodNotAllowed):  # served, by another method
            function.match("GET", probe)  # NotFound: the function serves no such path


def test_triggers_sources_and_dead_letters_point_at_existing_services() -> None:
    services = _knative_services(PROD)
    for trigger in _of(PROD, "Trigger"):
        assert trigger["spec"]["subscriber"]["ref"]["name"] in services
    broker = _of(PROD, "Broker")[0]
    assert broker["spec"]["delivery"]["deadLetterSink"]["ref"]["name"] == "deadletter"
    ping = _of(PROD, "PingSource")[0]
    assert ping["spec"]["sink"]["ref"]["name"] == "outbox"
    binding = _of(PROD, "SinkBinding")[0]
    selected = binding["spec"]["subject"]["selector"]["matchLabels"]
    emitting = {
        name
        for name, service in services.items()
        if all(service["metadata"]["labels"].get(k) == v for k, v in selected.items())
    }
    catalog = yaml.safe_load((ROOT / "eventing" / "catalog.yaml").read_text())
    emitters = {name for entry in catalog["types"] for name in entry["emittedBy"]} - {"external"}
    assert emitters | {"outbox"} == emitting
    assert binding["spec"]["sink"]["ref"]["kind"] == "Broker"


def test_token_settings_agree_between_login_and_the_gateway() -> None:
    config = next(obj for obj in PROD if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "quill-config")
    rule = _of(PROD, "RequestAuthentication")[0]["spec"]["jwtRules"][0]
    assert rule["issuer"] == config["data"]["JWT_ISSUER"]
    assert config["data"]["JWT_AUDIENCE"] in rule["audiences"]
    assert rule["jwksUri"] == "http://login.quill.svc.cluster.local/.well-known/jwks.json"
    assert any(r.function == "login" and r.value == "/.well-known/jwks.json" for r in load_rules())
    assert {header["prefix"] for header in rule["fromHeaders"]} == {"Token ", "Bearer "}
    public_host = _of(PROD, "VirtualService")[0]["spec"]["hosts"][0]
    policy = _of(PROD, "AuthorizationPolicy")[0]
    assert policy["spec"]["rules"][0]["to"][0]["operation"]["hosts"] == [public_host]


def _env_names_read_by_settings() -> set[str]:
    from dataclasses import fields

    from quill.settings import Settings

    return {str(declared.metadata["variable"]) for declared in fields(Settings)}


def test_every_variable_the_code_reads_is_set_or_safely_defaulted() -> None:
    names = _env_names_read_by_settings()
    assert {"DATABASE_URL", "REDIS_URL", "JWT_ISSUER", "K_SINK"} <= names  # the scan works
    config = next(obj for obj in PROD if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "quill-config")
    provided = set(config["data"]) | set(SECRETS) | {"FUNCTION_TARGET", "K_SINK"}
    required_in_cluster = {"DATABASE_URL", "REDIS_URL", "QUILL_ENV", "JWT_ISSUER", "JWT_AUDIENCE", "TRUSTED_PROXY_HOPS"}
    assert required_in_cluster <= provided
    services = _knative_services(PROD)
    for spec in FUNCTIONS:
        env = {item["name"] for item in _container(services[spec.name])["env"]}
        assert {"DATABASE_URL", "REDIS_URL"} <= env
        if spec.verifies_tokens:
            assert env & {"JWT_PRIVATE_KEY", "JWT_PUBLIC_KEYS"}, spec.name
    # every other variable has a default that is safe in a cluster
    from quill.settings import Settings, load_settings

    prod = {"FUNCTION_TARGET": "cache", "QUILL_ENV": "prod", "DATABASE_URL": "postgresql://d", "REDIS_URL": "redis://r"}
    assert load_settings(prod).function == "cache"
    assert Settings().max_body_bytes > 0


def test_every_emitter_can_reach_the_broker() -> None:
    services = _knative_services(PROD)
    for spec in FUNCTIONS:
        labelled = services[spec.name]["metadata"]["labels"].get("quill.io/emits-events") == "true"
        assert labelled == spec.emits_events, spec.name
    assert events.EMITTED


def test_dockerfile_invariants() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.strip().startswith("#")]
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage"
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", dockerfile)
    assert base, "the base image is an ARG"
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+@sha256:[0-9a-f]{64}", base.group(1)), "pinned base"
    users = [line for line in lines if line.startswith("USER ")]
    assert users, "a USER line"
    assert users[-1].split()[1].split(":")[0] not in {"0", "root"}, "non-root"
    assert all(
        not re.search(r"(PASSWORD|SECRET|TOKEN|PRIVATE_KEY)\s*=", line)
        for line in lines
        if line.startswith(("ENV", "ARG"))
    )
    entrypoint = next(line for line in lines if line.startswith("ENTRYPOINT"))
    assert "$FUNCTION_TARGET" in entrypoint
    assert "$PORT" in entrypoint
    assert "0.0.0.0" in entrypoint  # noqa: S104 - the container must listen on all interfaces
    ignore = (ROOT / ".dockerignore").read_text()
    assert ignore.splitlines()[1] == "*" or "*\n" in ignore
    assert "**/*.pem" in ignore
    assert "**/.env" in ignore
    assert "functions/quill_tools" in ignore.splitlines(), "the dev and ops tooling stays out of the image"


def test_quill_deploy_dry_run_prints_a_complete_deployment_for_both_environments() -> None:
    quill = str(Path(sys.executable).with_name("quill"))
    image = "registry.example.com/quill@sha256:" + "b" * 64
    for env in ("dev", "prod"):
        result = subprocess.run(
            [quill, "deploy", "--dry-run", "--env", env, "--image", image], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "kubectl apply -f -" in result.stdout
        manifest = load_all(result.stdout.split("# --- the manifest `kubectl apply -f -` receives ---", 1)[1])
        assert len({obj["kind"] for obj in manifest}) > 10
        images = {
            c["image"]
            for obj in manifest
            for c in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
            if "quill" in c["image"]
        }
        assert images == {image}
    func = subprocess.run(
        [quill, "deploy", "--dry-run", "--with", "func", "--image", image], capture_output=True, text=True, check=False
    )
    assert func.returncode == 0
    lines = [line for line in func.stdout.splitlines() if line.startswith("func deploy")]
    assert len(lines) == len(FUNCTIONS)
    assert all("--build=false" in line for line in lines)
    assert all(image in line for line in lines)
