"""Every overlay renders, and every object in it validates against its real schema."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.manifest.validation import ROOT, SCHEMAS, load_all, render, validate

KUBECTL = shutil.which("kubectl")
if KUBECTL is None:  # never the case in CI here: .ci/run's machine ships kubectl
    pytest.fail("kubectl is required to render the overlays (kubectl kustomize)", pytrace=False)

KUSTOMIZATIONS = [
    ROOT / "infra" / "overlays" / "dev",
    ROOT / "infra" / "overlays" / "prod",
    ROOT / "knative",
    ROOT / "eventing",
    ROOT / "eventing" / "prod",
]


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_object_validates_against_its_schema(folder: Path) -> None:
    objects = render(folder)
    assert objects
    problems = []
    for obj in objects:
        try:
            validate(obj)
        except Exception as exc:  # collect all, then fail once with every problem listed
            problems.append(f"{obj['kind']}/{obj['metadata'].get('name')}: {str(exc).splitlines()[0]}")
    assert problems == []


def test_both_overlays_contain_the_whole_system() -> None:
    for overlay in ("dev", "prod"):
        kinds = {(obj["kind"], obj["metadata"]["name"]) for obj in render(ROOT / "infra" / "overlays" / overlay)}
        for needed in [
            ("Namespace", "quill"),
            ("Broker", "default"),
            ("VirtualService", "quill-api"),
            ("Job", "quill-migrate"),
            ("PeerAuthentication", "default"),
            ("RequestAuthentication", "quill-jwt"),
            ("AuthorizationPolicy", "quill-public-api"),
            ("DestinationRule", "quill-functions"),
            ("PodMonitor", "quill-functions"),
            ("PrometheusRule", "quill-alerts"),
            ("ConfigMap", "quill-grafana-dashboard"),
            ("SinkBinding", "quill-producers"),
            ("PingSource", "outbox-relay"),
        ]:
            assert needed in kinds, (overlay, needed)


def test_prod_uses_cloudnativepg_and_a_durable_broker_dev_a_statefulset() -> None:
    prod = render(ROOT / "infra" / "overlays" / "prod")
    dev = render(ROOT / "infra" / "overlays" / "dev")
    assert any(obj["kind"] == "Cluster" for obj in prod)
    assert not any(obj["kind"] == "StatefulSet" for obj in prod)
    assert any(obj["kind"] == "StatefulSet" for obj in dev)
    broker = next(obj for obj in prod if obj["kind"] == "Broker")
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    assert (
        next(obj for obj in dev if obj["kind"] == "Broker")["metadata"]["annotations"][
            "eventing.knative.dev/broker.class"
        ]
        == "MTChannelBasedBroker"
    )


def test_unschemed_kinds_have_the_fields_their_operators_need() -> None:
    prod = {(obj["kind"]): obj for obj in render(ROOT / "infra" / "overlays" / "prod")}
    monitor = prod["PodMonitor"]["spec"]
    assert monitor["podMetricsEndpoints"][0]["path"] == "/metrics"
    rules = prod["PrometheusRule"]["spec"]["groups"]
    alerts = {rule["alert"] for group in rules for rule in group["rules"]}
    assert {"QuillHighErrorRate", "QuillSlowRequests", "QuillDeadLettersGrowing", "QuillOutboxBacklog"} <= alerts
    cluster = prod["Cluster"]["spec"]
    assert cluster["instances"] >= 3
    assert cluster["inheritedMetadata"]["labels"]["app.kubernetes.io/component"] == "postgres"
    application = yaml.safe_load((ROOT / "infra" / "argocd" / "application.yaml").read_text())
    assert application["spec"]["source"]["path"] == "infra/overlays/prod"
    assert (ROOT / application["spec"]["source"]["path"]).is_dir()
    assert application["spec"]["destination"]["namespace"] == "quill"


def test_the_grafana_dashboard_is_valid_json_with_the_golden_signals() -> None:
    dashboard = json.loads((ROOT / "infra" / "base" / "dashboards" / "quill.json").read_text())
    exprs = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    for metric in [
        "quill_http_requests_total",
        "quill_http_request_duration_seconds_bucket",
        "quill_events_published_total",
        "quill_events_consumed_total",
        "quill_outbox_pending",
    ]:
        assert metric in exprs


@pytest.mark.parametrize(
    "path", [*sorted(ROOT.glob("functions/*/func.yaml")), ROOT / "func.yaml"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_func_yaml_validates_against_the_func_schema(path: Path) -> None:
    schema: dict[str, Any] = json.loads((SCHEMAS / "func" / "func_yaml-schema.json").read_text())
    document = load_all(path.read_text())[0]
    jsonschema.Draft4Validator(schema).validate(document)
    assert document["specVersion"] == "0.36.0"


def test_the_validator_catches_a_misspelled_field() -> None:
    service = load_all((ROOT / "knative" / "services" / "posts.yaml").read_text())[0]
    service["spec"]["template"]["spec"]["containerConcurency"] = 5
    with pytest.raises(jsonschema.ValidationError):
        validate(service)
    trigger = load_all((ROOT / "eventing" / "base" / "triggers.yaml").read_text())[0]
    trigger["spec"]["subscriberr"] = trigger["spec"].pop("subscriber")  # Trigger spec is open in the CRD
    with pytest.raises(jsonschema.ValidationError):
        validate(trigger)
    job = next(obj for obj in render(ROOT / "infra" / "overlays" / "dev") if obj["kind"] == "Job")
    job["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(Exception, match="imagePullPolicyy"):
        validate(job)
