"""Render a ``FunctionSpec`` as the files that deploy it.

Both shapes carry the same facts: the image is the one bundle image, the function is
chosen by ``FUNCTION_TARGET``, configuration comes from the ``quill-config`` ConfigMap,
and secrets from ``quill-db``, ``quill-redis`` and ``quill-jwt``.
"""

from __future__ import annotations

from typing import Any

import yaml

from quill_tools.deploy.spec import NAMESPACE, FunctionSpec

__all__ = ["CONFIG_MAP", "SECRETS", "func_yaml", "knative_service", "secret_env", "to_yaml"]

CONFIG_MAP = "quill-config"
# env name -> (secret, key)
SECRETS: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("quill-db", "url"),
    "REDIS_URL": ("quill-redis", "url"),
    "JWT_PRIVATE_KEY": ("quill-jwt", "private.pem"),
    "JWT_PUBLIC_KEYS": ("quill-jwt", "public.pem"),
}
_CREATED = "2026-11-21T00:00:00Z"
_IMAGE = "quill"  # replaced by kustomize's `images` (knative/kustomization.yaml) or func deploy --image
_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def secret_env(spec: FunctionSpec) -> list[str]:
    names = ["DATABASE_URL", "REDIS_URL"]
    if spec.signs_tokens:
        names.append("JWT_PRIVATE_KEY")
    elif spec.verifies_tokens:
        names.append("JWT_PUBLIC_KEYS")
    return names


def _labels(spec: FunctionSpec) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": "quill", "app.kubernetes.io/component": spec.name}
    if spec.cluster_local:
        labels["networking.knative.dev/visibility"] = "cluster-local"
    if spec.emits_events:
        labels["quill.io/emits-events"] = "true"
    return labels


def _annotations(spec: FunctionSpec) -> dict[str, str]:
    return {
        "autoscaling.knative.dev/min-scale": "0",
        "autoscaling.knative.dev/max-scale": str(spec.max_scale),
        "autoscaling.knative.dev/initial-scale": "1",
        "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "2m",
        "autoscaling.knative.dev/metric": "concurrency",
        "autoscaling.knative.dev/target": str(spec.target),
    }


def func_yaml(spec: FunctionSpec) -> dict[str, Any]:
    envs: list[dict[str, str]] = [{"name": "FUNCTION_TARGET", "value": spec.name}]
    envs += [
        {"name": name, "value": "{{ secret:%s:%s }}" % SECRETS[name]}  # noqa: UP031 - func's own template syntax
        for name in secret_env(spec)
    ]
    envs.append({"value": "{{ configMap:%s }}" % CONFIG_MAP})  # noqa: UP031 - every key of the ConfigMap
    return {
        "specVersion": "0.36.0",
        "name": spec.name,
        "runtime": "python",
        "created": _CREATED,
        "invoke": spec.invoke,
        "namespace": NAMESPACE,
        "run": {"envs": envs},
        "deploy": {
            "namespace": NAMESPACE,
            # func turns options.scale into the autoscaling annotations; these two it cannot express.
            "annotations": {
                "autoscaling.knative.dev/initial-scale": "1",
                "autoscaling.knative.dev/scale-to-zero-pod-retention-period": "2m",
            },
            "labels": [{"key": key, "value": value} for key, value in _labels(spec).items()],
            "options": {
                "scale": {
                    "min": 0,
                    "max": spec.max_scale,
                    "metric": "concurrency",
                    "target": float(spec.target),
                },
                "resources": {
                    "requests": {"cpu": spec.cpu_request, "memory": spec.memory_request},
                    "limits": {"memory": spec.memory_limit, "concurrency": spec.container_concurrency},
                },
            },
            "healthEndpoints": {"liveness": "/health/liveness", "readiness": "/health/readiness"},
        },
    }


def knative_service(spec: FunctionSpec) -> dict[str, Any]:
    env: list[dict[str, Any]] = [{"name": "FUNCTION_TARGET", "value": spec.name}]
    for name in secret_env(spec):
        secret, key = SECRETS[name]
        env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": spec.name,
            "namespace": NAMESPACE,
            "labels": _labels(spec),
            "annotations": {"quill.io/description": spec.description_line},
        },
        "spec": {
            "template": {
                "metadata": {
                    "labels": {"app.kubernetes.io/name": "quill", "app.kubernetes.io/component": spec.name},
                    "annotations": _annotations(spec),
                },
                "spec": {
                    "containerConcurrency": spec.container_concurrency,
                    "timeoutSeconds": spec.timeout_seconds,
                    "enableServiceLinks": False,
                    "containers": [
                        {
                            "name": "function",
                            "image": _IMAGE,
                            "ports": [{"name": "http1", "containerPort": 8080}],
                            "env": env,
                            "envFrom": [{"configMapRef": {"name": CONFIG_MAP}}],
                            "readinessProbe": {
                                "httpGet": {"path": "/health/readiness"},
                                "periodSeconds": 5,
                                "failureThreshold": 3,
                            },
                            "livenessProbe": {
                                "httpGet": {"path": "/health/liveness"},
                                "periodSeconds": 10,
                                "failureThreshold": 3,
                            },
                            "resources": {
                                "requests": {"cpu": spec.cpu_request, "memory": spec.memory_request},
                                "limits": {"memory": spec.memory_limit},
                            },
                            "securityContext": _SECURITY_CONTEXT,
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            }
        },
    }


def to_yaml(document: dict[str, Any], header: str) -> str:
    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=100)
    return header + body
