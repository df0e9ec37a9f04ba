"""From the rendered dev overlay to ``docker run``: each workload's container, exactly as declared.

Every field of a container spec is either mapped to a docker flag or refused: a field this
module does not know fails the run rather than being skipped, so the containers here are
the ones a cluster would start (but for what only a cluster has; see ``docs/deploy.md``).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.manifest.validation import ROOT, load_all

SECRETS_TEMPLATE = ROOT / "infra" / "secrets" / "quill-secrets.template.yaml"
# The container fields mapped below; anything else in a rendered container fails the run.
CONTAINER_FIELDS = {
    "name",
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "ports",
    "readinessProbe",
    "livenessProbe",
    "resources",
    "securityContext",
    "volumeMounts",
}
# Pod fields that change nothing a container on one machine can show.
POD_FIELDS = {
    "containers",
    "volumes",
    "restartPolicy",
    "enableServiceLinks",
    "automountServiceAccountToken",
    "containerConcurrency",
    "timeoutSeconds",
}


class ManifestError(AssertionError):
    """The manifest asks for something the run cannot honour, or names what does not exist."""


@dataclass(frozen=True)
class Workload:
    kind: str  # "Job" or "Service" (Knative)
    name: str
    labels: dict[str, str]
    pod: dict[str, Any]
    timeout_seconds: int | None = None  # a Knative revision's request timeout (its drain time too)

    @property
    def container(self) -> dict[str, Any]:
        containers: list[dict[str, Any]] = self.pod["containers"]
        if len(containers) != 1:
            raise ManifestError(f"{self.kind}/{self.name}: expected one container, found {len(containers)}")
        return containers[0]


def workloads(objects: list[dict[str, Any]]) -> list[Workload]:
    """Every Job and Knative Service of the overlay, the ones that run Quill's image."""
    found: list[Workload] = []
    for obj in objects:
        meta = obj["metadata"]
        if obj["kind"] == "Job" and obj["apiVersion"] == "batch/v1":
            pod = obj["spec"]["template"]["spec"]
            found.append(Workload("Job", meta["name"], dict(meta.get("labels", {})), pod))
        elif obj["kind"] == "Service" and obj["apiVersion"].startswith("serving.knative.dev/"):
            pod = obj["spec"]["template"]["spec"]
            found.append(
                Workload(
                    "Service", meta["name"], dict(meta.get("labels", {})), pod, int(pod.get("timeoutSeconds", 300))
                )
            )
    return found


def config_maps(objects: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {obj["metadata"]["name"]: dict(obj.get("data", {})) for obj in objects if obj["kind"] == "ConfigMap"}


@dataclass(frozen=True)
class Keys:
    private_pem: str
    public_pem: str


def ed25519_keys() -> Keys:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return Keys(private.decode(), public.decode())


def fill_secrets(values: dict[tuple[str, str], str]) -> dict[str, dict[str, str]]:
    """The Secrets of ``infra/secrets``, every key filled: from ``values`` or, for a password, random.

    A key the template has and neither ``values`` nor this function can fill fails the run.
    """
    filled: dict[str, dict[str, str]] = {}
    for secret in load_all(SECRETS_TEMPLATE.read_text()):
        name = secret["metadata"]["name"]
        filled[name] = {}
        for key in secret.get("stringData", {}):
            if (name, key) in values:
                filled[name][key] = values[(name, key)]
            elif key == "password":
                filled[name][key] = secrets.token_urlsafe(24)
            else:
                raise ManifestError(f"infra/secrets: the test cannot fill Secret {name} key {key}")
    return filled


def resolve_env(
    workload: Workload, maps: dict[str, dict[str, str]], secret_data: dict[str, dict[str, str]]
) -> dict[str, str]:
    """The environment Kubernetes would give the container: envFrom first, then env over it."""
    where = f"{workload.kind}/{workload.name}"
    env: dict[str, str] = {}

    def source(kind: str, name: str, optional: bool) -> dict[str, str]:
        store = maps if kind == "configMap" else secret_data
        if name not in store:
            if optional:
                return {}
            raise ManifestError(f"{where}: {kind} {name!r} does not exist in the overlay or infra/secrets")
        return store[name]

    for item in workload.container.get("envFrom", []):
        prefix = item.get("prefix", "")
        if "configMapRef" in item:
            ref, kind = item["configMapRef"], "configMap"
        elif "secretRef" in item:
            ref, kind = item["secretRef"], "secret"
        else:
            raise ManifestError(f"{where}: envFrom {item} is neither a configMapRef nor a secretRef")
        env.update({prefix + k: v for k, v in source(kind, ref["name"], bool(ref.get("optional"))).items()})
    for item in workload.container.get("env", []):
        name = item["name"]
        if "value" in item:
            env[name] = str(item["value"])
            continue
        value_from = item.get("valueFrom", {})
        if "secretKeyRef" in value_from:
            ref, kind = value_from["secretKeyRef"], "secret"
        elif "configMapKeyRef" in value_from:
            ref, kind = value_from["configMapKeyRef"], "configMap"
        else:
            raise ManifestError(f"{where}: env {name} has a source this run cannot give: {value_from}")
        data = source(kind, ref["name"], bool(ref.get("optional")))
        if ref["key"] not in data:
            if ref.get("optional"):
                continue
            raise ManifestError(f"{where}: env {name}: {kind} {ref['name']!r} has no key {ref['key']!r}")
        env[name] = data[ref["key"]]
    return env


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G)?$")
_FACTOR = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def memory_bytes(quantity: str) -> int:
    found = _QUANTITY.match(quantity)
    if found is None:
        raise ManifestError(f"cannot read the memory quantity {quantity!r}")
    return int(float(found.group(1)) * _FACTOR[found.group(2)])


@dataclass
class RunSpec:
    """One ``docker run``: its flags, the image and the arguments after it."""

    flags: list[str] = field(default_factory=list)
    image: str = ""
    arguments: list[str] = field(default_factory=list)
    user: str | None = None

    def argv(self, name: str, label: str) -> list[str]:
        return ["run", "--detach", "--name", name, "--label", label, *self.flags, self.image, *self.arguments]


def docker_run(workload: Workload, env: dict[str, str]) -> RunSpec:
    """Map the container spec to docker flags; what has no docker equivalent fails the run."""
    where = f"{workload.kind}/{workload.name}"
    pod, container = workload.pod, workload.container
    unknown = (set(container) - CONTAINER_FIELDS) | (set(pod) - POD_FIELDS)
    if unknown:
        raise ManifestError(f"{where}: fields this run does not map to docker: {sorted(unknown)}")
    spec = RunSpec(image=container["image"])
    # Containers share the host's network: with no bridge here, each listens on its own port.
    spec.flags += ["--network", "host"]

    context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    known_security = {
        "runAsNonRoot",
        "runAsUser",
        "runAsGroup",
        "allowPrivilegeEscalation",
        "readOnlyRootFilesystem",
        "capabilities",
        "seccompProfile",
    }
    if set(context) - known_security:
        raise ManifestError(f"{where}: securityContext fields not mapped: {sorted(set(context) - known_security)}")
    if "runAsUser" in context:
        spec.user = f"{context['runAsUser']}:{context.get('runAsGroup', context['runAsUser'])}"
        spec.flags += ["--user", spec.user]
    if context.get("readOnlyRootFilesystem"):
        spec.flags.append("--read-only")
    for capability in context.get("capabilities", {}).get("drop", []):
        spec.flags += ["--cap-drop", capability]
    for capability in context.get("capabilities", {}).get("add", []):
        spec.flags += ["--cap-add", capability]
    if context.get("allowPrivilegeEscalation") is False:
        spec.flags += ["--security-opt", "no-new-privileges"]
    seccomp = context.get("seccompProfile", {}).get("type", "RuntimeDefault")
    if seccomp != "RuntimeDefault":  # docker's default profile is the runtime default
        raise ManifestError(f"{where}: seccompProfile {seccomp} is not mapped")

    limits = container.get("resources", {}).get("limits", {})
    if "memory" in limits:
        spec.flags += ["--memory", str(memory_bytes(str(limits["memory"]))), "--memory-swap", "-1"]
    if "cpu" in limits:
        cpu = str(limits["cpu"])
        spec.flags += ["--cpus", str(int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu))]

    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        volume = volumes.get(mount["name"])
        if volume is None:
            raise ManifestError(f"{where}: volumeMount {mount['name']} names no volume")
        if set(volume) != {"name", "emptyDir"}:
            raise ManifestError(f"{where}: volume {mount['name']} is not an emptyDir; only emptyDir is mapped")
        options = ["rw", "mode=1777"]
        if "sizeLimit" in (volume["emptyDir"] or {}):
            options.append(f"size={memory_bytes(str(volume['emptyDir']['sizeLimit']))}")
        spec.flags += ["--tmpfs", f"{mount['mountPath']}:{','.join(options)}"]

    for name, value in sorted(env.items()):
        spec.flags += ["--env", f"{name}={value}"]

    command, args = container.get("command"), container.get("args")
    if command:
        spec.flags += ["--entrypoint", command[0]]
        spec.arguments = [*command[1:], *(args or [])]
    elif args:
        spec.arguments = list(args)
    return spec


def http_probe(workload: Workload, probe_name: str) -> tuple[str, int | None]:
    """The path of an httpGet probe and its port (None: the container's port, as Knative has it)."""
    probe = workload.container.get(probe_name)
    if probe is None:
        raise ManifestError(f"{workload.kind}/{workload.name}: no {probe_name}")
    if set(probe) - {"httpGet", "periodSeconds", "failureThreshold", "initialDelaySeconds", "timeoutSeconds"}:
        raise ManifestError(f"{workload.name}: {probe_name} has fields this run does not map: {sorted(probe)}")
    get = probe["httpGet"]
    if set(get) - {"path", "port"} or get.get("scheme", "HTTP") != "HTTP":
        raise ManifestError(f"{workload.name}: {probe_name}.httpGet has fields this run does not map: {get}")
    port = get.get("port")
    return str(get.get("path", "/")), int(port) if port is not None else None


def image_of(workloads_: list[Workload]) -> str:
    images = {str(workload.container["image"]) for workload in workloads_}
    if len(images) != 1:
        raise ManifestError(f"the workloads name more than one image: {sorted(images)}")
    return images.pop()


_FUNC_REFERENCE = re.compile(r"^\{\{\s*(secret|configMap):([\w.-]+)(?::([\w.-]+))?\s*\}\}$")


def func_env(
    func: dict[str, Any], maps: dict[str, dict[str, str]], secret_data: dict[str, dict[str, str]]
) -> dict[str, str]:
    """A func.yaml's ``run.envs`` as ``func deploy`` resolves them: literals, ``{{ secret:name:key }}``,
    and a whole ConfigMap or Secret for an entry with no name."""
    env: dict[str, str] = {}
    for item in func["run"]["envs"]:
        value = str(item["value"])
        found = _FUNC_REFERENCE.match(value)
        if found is None:
            if "{{" in value:
                raise ManifestError(f"func.yaml: env {item.get('name')} has a reference this run cannot read: {value}")
            env[item["name"]] = value
            continue
        kind, name, key = found.groups()
        store = maps if kind == "configMap" else secret_data
        if name not in store or (key is not None and key not in store[name]):
            raise ManifestError(f"func.yaml: {value} names what the overlay and infra/secrets do not have")
        if "name" in item:
            if key is None:
                raise ManifestError(f"func.yaml: env {item['name']} needs a key: {value}")
            env[item["name"]] = store[name][key]
        else:
            env.update(store[name])
    return env
