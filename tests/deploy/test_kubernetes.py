"""deploy/kubernetes, proven without a cluster: each kustomization is built by a small
loader (the fields it uses, nothing else), every resource validates against Kubernetes'
own schemas (``kubernetes-validate``, strict: an unknown field fails), the rules a
deployment needs hold, and each container runs exactly the command and environment of the
docker-compose.yml service of the same name."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

KUBERNETES = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
SCHEMA_VERSION = "1.32.0"
"""A Kubernetes release whose schemas kubernetes-validate bundles (podFailurePolicy and
indexed Jobs are GA in it)."""
KNOWN_FIELDS = {"apiVersion", "kind", "labels", "resources", "images", "generatorOptions",
                "configMapGenerator", "patches"}


def _same(resource: dict, target: dict) -> bool:
    return (resource["kind"] == target["kind"]
            and resource["metadata"]["name"] == target["metadata"]["name"])


def build(folder: Path) -> list[dict]:
    """What ``kubectl kustomize FOLDER`` makes of the fields these kustomizations use."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert set(kustomization) <= KNOWN_FIELDS, set(kustomization) - KNOWN_FIELDS
    resources: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = (folder / entry).resolve()
        if path.is_dir():
            resources.extend(build(path))
        else:
            resources.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    assert kustomization.get("generatorOptions", {}) in ({}, {"disableNameSuffixHash": True})
    for generator in kustomization.get("configMapGenerator", []):
        data = dict(literal.split("=", 1) for literal in generator["literals"])
        existing = [r for r in resources if r["kind"] == "ConfigMap"
                    and r["metadata"]["name"] == generator["name"]]
        if generator.get("behavior") == "merge":
            assert existing, f"nothing to merge into: {generator['name']}"
            existing[0]["data"].update(data)
        else:
            assert not existing
            resources.append({"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": generator["name"]}, "data": data})
    for patch in kustomization.get("patches", []):
        target = yaml.safe_load(patch["patch"])
        assert target.pop("$patch") == "delete", "only delete patches are understood here"
        assert any(_same(r, target) for r in resources), target
        resources = [r for r in resources if not _same(r, target)]
    for group in kustomization.get("labels", []):
        assert set(group) == {"pairs"}  # metadata labels only, no selectors or templates
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(group["pairs"])
    for image in kustomization.get("images", []):
        for container in containers(resources):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return resources


def containers(resources: list[dict], *, init: bool = True) -> list[dict]:
    found = []
    for resource in resources:
        spec = resource.get("spec", {}).get("template", {}).get("spec", {})
        found += spec.get("containers", []) + (spec.get("initContainers", []) if init else [])
    return found


def by_name(resources: list[dict], kind: str, name: str) -> dict:
    (found,) = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


BUILT = build(BASE)
EXTERNAL = build(KUBERNETES / "external-postgres")


def test_the_base_lists_exactly_its_files() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


@pytest.mark.parametrize("built", [BUILT, EXTERNAL], ids=["base", "external-postgres"])
def test_every_resource_validates_against_the_kubernetes_schemas(built: list[dict]) -> None:
    import kubernetes_validate

    for resource in built:
        kubernetes_validate.validate(resource, SCHEMA_VERSION, strict=True)


def test_the_validation_rejects_a_wrong_field() -> None:
    import kubernetes_validate

    broken = copy.deepcopy(by_name(BUILT, "Job", "worker"))
    broken["spec"]["paralelism"] = 4
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, SCHEMA_VERSION, strict=True)


def test_the_loader_builds_what_kustomize_builds() -> None:
    """Where kubectl (with its kustomize) is installed, its build is ours."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the loader alone builds the kustomizations")
    for folder, ours in ((BASE, BUILT), (KUBERNETES / "external-postgres", EXTERNAL)):
        result = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True,
                                text=True, timeout=120, check=False)
        if result.returncode != 0 and "kustomize" in result.stderr and "unknown" in result.stderr:
            pytest.skip(f"kubectl has no kustomize: {result.stderr.strip()[:200]}")
        assert result.returncode == 0, result.stderr
        theirs = [d for d in yaml.safe_load_all(result.stdout) if d]
        key = lambda r: (r["kind"], r["metadata"]["name"])  # noqa: E731
        assert sorted(theirs, key=key) == sorted(ours, key=key)


def test_deployment_rules() -> None:
    kinds = {(r["kind"], r["metadata"]["name"]) for r in BUILT}
    assert {("StatefulSet", "postgres"), ("Deployment", "proxy"), ("Job", "create-study"),
            ("Job", "worker"), ("Deployment", "dashboard"), ("Service", "dashboard"),
            ("Service", "proxy")} <= kinds
    # Nothing published: no Ingress, every Service ClusterIP (the dashboard and the proxy
    # have no authentication).
    assert not [r for r in BUILT if r["kind"] in ("Ingress", "Route")]
    for service in (r for r in BUILT if r["kind"] == "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]
    worker = by_name(BUILT, "Job", "worker")
    assert worker["spec"]["completionMode"] == "Indexed"
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60
    rules = worker["spec"]["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob" and rules[0]["onExitCodes"]["values"] == [2]
    assert 1 <= worker["spec"]["backoffLimit"] <= 10
    # The password: a Secret the user creates, never in the repository; only the proxy and
    # PostgreSQL mount it.
    assert not [r for r in BUILT if r["kind"] == "Secret"]
    mounting = sorted(r["metadata"]["name"] for r in BUILT
                      if "cnnsearch-postgres" in yaml.safe_dump(r))
    assert mounting == ["postgres", "proxy"]
    for resource in BUILT:
        assert not re.search(r"://[^/@\s]*:[^/@\s]*@", yaml.safe_dump(resource))


def test_external_postgres_drops_the_database_and_keeps_the_rest() -> None:
    assert not [r for r in EXTERNAL if r["metadata"]["name"] in ("postgres",
                                                                  "postgres-clients")]
    assert len(EXTERNAL) == len(BUILT) - 3
    settings = by_name(EXTERNAL, "ConfigMap", "cnnsearch-settings")["data"]
    assert "@postgres:" not in settings["DATABASE_URL"]
    assert settings["STUDY"] == by_name(BUILT, "ConfigMap", "cnnsearch-settings")["data"]["STUDY"]


COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SAME_AS_COMPOSE = {
    # compose service: (kind, name) of the Kubernetes resource running it
    "postgres": ("StatefulSet", "postgres"),
    "proxy": ("Deployment", "proxy"),
    "create-study": ("Job", "create-study"),
    "worker": ("Job", "worker"),
    "dashboard": ("Deployment", "dashboard"),
}
KUBERNETES_ONLY_ENV = {"postgres": {"PGDATA"}}
"""Where the database keeps its files inside the volume (a mount point is not empty)."""


def _compose_value(value: str) -> str:
    """compose's ``${NAME:-default}`` with its default, as `make up` runs it unset."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m[2], str(value))


def _kubernetes_env(container: dict, settings: dict[str, str]) -> dict[str, str]:
    environment = {}
    for source in container.get("envFrom", []):
        assert source["configMapRef"]["name"] == "cnnsearch-settings"
        environment.update(settings)
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = variable["value"]
        else:
            reference = variable["valueFrom"]["configMapKeyRef"]
            assert reference["name"] == "cnnsearch-settings"
            environment[variable["name"]] = settings[reference["key"]]
    return environment


@pytest.mark.parametrize("service", sorted(SAME_AS_COMPOSE))
def test_containers_run_what_the_compose_services_run(service: str) -> None:
    """One deployment, two descriptions: the same command (compose's defaults are the
    ConfigMap's settings) and the same environment, service by service."""
    settings = by_name(BUILT, "ConfigMap", "cnnsearch-settings")["data"]
    resource = by_name(BUILT, *SAME_AS_COMPOSE[service])
    (container,) = resource["spec"]["template"]["spec"]["containers"]
    environment = _kubernetes_env(container, settings)
    command = [re.sub(r"\$\((\w+)\)", lambda m: environment[m[1]], part)
               for part in container["command"]]
    compose = COMPOSE["services"][service]
    assert command == [_compose_value(part) for part in compose["command"]]
    wanted = {key: _compose_value(value) for key, value in compose["environment"].items()}
    shown = {key: value for key, value in environment.items()
             if key not in settings or key in wanted}
    assert {k: v for k, v in shown.items()
            if k not in KUBERNETES_ONLY_ENV.get(service, set())} == wanted
    image = compose["image"]
    assert container["image"] == image or container["image"].startswith(image.split(":")[0])
