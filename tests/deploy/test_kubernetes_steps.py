"""The Kubernetes steps in deploy/README.md, followed as written, give the pods what they read: the
Secret is created in the namespace the rendered manifests land in, with every key they ask for."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"


def steps() -> list[list[str]]:
    """Every `kubectl` command of the runbook's Kubernetes section, split as the shell would."""
    section = (DEPLOY / "README.md").read_text().split("## Kubernetes", 1)[1].split("\n## ", 1)[0]
    joined = re.sub(r"\\\n\s*", " ", section)
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"^\d+\.\s*", "", line.strip()).strip("`").strip()
        if line.startswith("kubectl "):
            commands.append(shlex.split(line.split("`")[0], comments=True))
    return commands


def rendered() -> list[dict[str, Any]]:
    """The manifests as `kubectl apply -k deploy/k8s` renders them (kustomize's namespace transform)."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                doc["metadata"].setdefault("namespace", kustomization.get("namespace", "default"))
                docs.append(doc)
    return docs


def secret_refs(node: Any) -> list[dict[str, str]]:
    if isinstance(node, dict):
        found = [node["secretKeyRef"]] if "secretKeyRef" in node else []
        return found + [ref for value in node.values() for ref in secret_refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in secret_refs(value)]
    return []


def option(argv: list[str], name: str) -> list[str]:
    values = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == name]
    return values + [arg.split("=", 1)[1] for arg in argv if arg.startswith(name + "=")]


def test_the_secret_is_made_in_the_namespace_the_manifests_use_with_every_key_they_read() -> None:
    commands = steps()
    secret = next(argv for argv in commands if argv[1:4] == ["create", "secret", "generic"])
    namespace = option(secret, "--namespace") or option(secret, "-n")
    assert namespace, "the runbook creates the Secret without --namespace: it lands in `default`"
    assert ["kubectl", "create", "namespace", namespace[0]] in commands
    literals = {value.split("=", 1)[0] for value in option(secret, "--from-literal")}
    docs = rendered()
    assert {doc["metadata"]["namespace"] for doc in docs} == {namespace[0]}
    refs = [ref for doc in docs for ref in secret_refs(doc)]
    assert refs and {ref["name"] for ref in refs} == {secret[4]}
    missing = {ref["key"] for ref in refs if not ref.get("optional")} - literals
    assert not missing, f"the pods read {sorted(missing)} from the Secret, which the runbook does not put in it"


def test_applying_names_no_other_namespace_than_the_kustomization() -> None:
    apply = next(argv for argv in steps() if argv[1:3] == ["apply", "-k"])
    namespace = yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]
    assert set(option(apply, "--namespace") + option(apply, "-n")) <= {namespace}


def test_keys_come_from_concordat_not_from_python_or_a_library_on_the_operators_machine() -> None:
    runbook = (DEPLOY / "README.md").read_text() + (DEPLOY / ".env.example").read_text()
    assert "concordat keys generate" in runbook
    assert "python -c" not in runbook and "from eventsourcing" not in runbook
