"""The deployment files cannot rot: the image definition, the compose file and the Kubernetes
manifests are parsed and checked against the code they deploy (its CLI commands, its settings, its
packages), and the manifests against Kubernetes' own schemas (kubernetes-validate, offline, strict).

Docker is not needed: nothing here builds or runs a container."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from concordat.cli import app as cli
from concordat.health import ROLES
from concordat.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTINGS = {f"CONCORDAT_{name.upper()}" for name in Settings.model_fields}
SECRET_WORDS = re.compile(r"PASSWORD|PWD|SECRET|KEY|TOKEN", re.IGNORECASE)
REQUIRED = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*):\?[^}]*\}")
# An optional setting from the environment, with its default (`${NAME:-default}`): SMTP, for one.
OPTIONAL = re.compile(r"\$\{(?P<name>[A-Z_][A-Z0-9_]*):-(?P<default>[^}]*)\}")
# The command each process role runs, and the role its health check names.
ROLES_BY_COMMAND = {"worker": "worker", "projections": "projections", "serve": "web", "outbox": "outbox"}
CONCORDAT_SERVICES = {"worker", "projections", "web", "outbox"}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend((path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return docs


def pinned(image: str) -> bool:
    """A tag that names a version (or a digest), never `latest` or nothing."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and any(ch.isdigit() for ch in tag)


def test_every_command_the_deployment_runs_is_a_command_of_the_cli() -> None:
    assert set(ROLES_BY_COMMAND) <= set(cli.commands)
    assert "health" in cli.commands
    assert set(ROLES_BY_COMMAND.values()) == set(ROLES)


# --- the image ---------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = dockerfile()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"not in exec form: {args}"
    return yaml.safe_load(args)  # a JSON array is YAML too


def test_the_image_runs_as_a_user_that_is_not_root() -> None:
    users = [args for word, args in final_stage() if word == "USER"]
    assert users, "the final stage sets no USER: the engine would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    adds = " ".join(args for word, args in final_stage() if word == "RUN")
    assert re.search(rf"useradd\b.*--uid {re.escape(user)}\b", adds), "USER names a user the image does not create"


def test_the_entrypoint_is_concordat_and_the_command_picks_the_role() -> None:
    stage = final_stage()
    entrypoint = [args for word, args in stage if word == "ENTRYPOINT"][-1]
    command = [args for word, args in stage if word == "CMD"][-1]
    assert exec_form(entrypoint) == ["concordat"]
    assert exec_form(command)[0] in ROLES_BY_COMMAND


def test_the_image_checks_its_default_roles_health() -> None:
    stage = final_stage()
    check = [args for word, args in stage if word == "HEALTHCHECK"][-1]
    options, _, command = check.partition("CMD ")
    assert "--interval" in options and "--timeout" in options
    argv = exec_form(command.strip())
    default_role = ROLES_BY_COMMAND[exec_form([a for w, a in stage if w == "CMD"][-1])[0]]
    assert argv[:3] == ["concordat", "health", default_role]


def test_every_base_image_is_pinned() -> None:
    steps = dockerfile()
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    for word, rest in steps:
        if word == "FROM":
            image = rest.split()[0]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            if image in {a.split()[-1] for w, a in steps if w == "FROM" and " AS " in a.upper()}:
                continue  # an earlier stage of this file
            assert pinned(image), f"FROM {image} is not pinned to a version"


def test_the_image_holds_every_package_of_the_wheel_and_installs_from_the_lock() -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"][
        "packages"
    ]
    copied = {args.split()[0] for word, args in dockerfile() if word == "COPY" and not args.startswith("--")}
    assert set(packages) <= copied, f"the image misses {set(packages) - copied}"
    syncs = [args for word, args in dockerfile() if word == "RUN" and "uv sync" in args]
    assert syncs and all("--frozen" in s and "--no-dev" in s for s in syncs)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert all(f"!{p}/**" in ignore for p in packages), "the build context ignores a package the image copies"
    assert "deploy/rotate_cipher_key.py" in copied and "!deploy/rotate_cipher_key.py" in ignore


def test_the_images_settings_are_real_settings() -> None:
    for word, args in dockerfile():
        if word == "ENV":
            for name in re.findall(r"\b(CONCORDAT_[A-Z_]+)=", args):
                assert name in SETTINGS, f"ENV {name} is not a setting"


# --- the compose file --------------------------------------------------------------------------


def test_compose_runs_every_role_beside_postgres_temporal_and_its_ui() -> None:
    services = compose()["services"]
    assert set(services) == {"postgres", "temporal", "temporal-ui", "migrate", *CONCORDAT_SERVICES}
    assert services["worker"]["deploy"]["replicas"] == 2
    # The store's tables are made once, by `concordat migrate`, before any process opens the store.
    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"] and migrate["restart"] == "no"
    assert (
        migrate["environment"]["CONCORDAT_DATABASE_URL"] == services["worker"]["environment"]["CONCORDAT_DATABASE_URL"]
    )
    for name in CONCORDAT_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == (
            DEPLOY / "Dockerfile"
        ).resolve()
        role = ROLES_BY_COMMAND[service["command"][0]]
        assert role == name
        assert service["healthcheck"]["test"][:4] == ["CMD", "concordat", "health", role]
        assert {"postgres", "temporal"} <= set(service["depends_on"])
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["temporal"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]


def test_compose_wires_the_roles_to_its_own_postgres_and_temporal() -> None:
    services = compose()["services"]
    temporal_env = services["temporal"]["environment"]
    assert temporal_env["DB"] == "postgres12" and temporal_env["POSTGRES_SEEDS"] == "postgres"
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    for name in CONCORDAT_SERVICES:
        env = services[name]["environment"]
        assert env["CONCORDAT_TEMPORAL_ADDRESS"] == "temporal:7233"
        url = urlsplit(REQUIRED.sub("placeholder", env["CONCORDAT_DATABASE_URL"]))
        assert (url.scheme, url.hostname, url.port, url.path) == ("postgresql", "postgres", 5432, "/concordat")
        assert url.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert services["web"]["environment"]["CONCORDAT_HTTP_ADDRESS"].endswith(":8000")
    assert "127.0.0.1:8000:8000" in services["web"]["ports"]


def test_compose_sets_only_real_settings_with_values_they_accept(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CONCORDAT_SERVICES:
        env = compose()["services"][name]["environment"]
        unknown = {k for k in env if k.startswith("CONCORDAT_")} - SETTINGS
        assert not unknown, f"{name} sets {unknown}, which are not settings"
        for key in [k for k in SETTINGS]:
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, OPTIONAL.sub(r"\g<default>", REQUIRED.sub("placeholder", str(value))))
        Settings()  # every value is one its setting accepts


def test_compose_holds_no_secret_and_publishes_only_on_loopback() -> None:
    for name, service in compose()["services"].items():
        for key, value in (service.get("environment") or {}).items():
            text = str(value)
            if SECRET_WORDS.search(key):
                # From the environment: required (`${KEY:?…}`), or optional and empty unless given (`${KEY:-}`).
                assert REQUIRED.fullmatch(text) or text == f"${{{key}:-}}", (
                    f"{name}: {key} must come from the environment (${{{key}:?…}})"
                )
            if key.endswith("DATABASE_URL"):  # the password part is the only interpolation
                assert urlsplit(REQUIRED.sub("placeholder", text)).password == "placeholder", f"{name}: {key}"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this host"
        assert pinned(service["image"]), f"{name}: image {service['image']} is not pinned"


def test_the_example_environment_file_names_every_required_variable_with_a_placeholder() -> None:
    required = set(REQUIRED.findall((DEPLOY / "compose.yaml").read_text()))
    example = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    assert required == set(example)
    assert set(example.values()) == {"change-me"}


# --- Kubernetes --------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "doc"), k8s_documents(), ids=lambda x: x if isinstance(x, str) else x["kind"])
def test_each_manifest_is_valid_for_kubernetes(path: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    )


def deployments() -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc["kind"] == "Deployment"}


def test_kubernetes_runs_every_role_as_non_root_with_its_own_health_check() -> None:
    found = {}
    for name, doc in deployments().items():
        pod = doc["spec"]["template"]["spec"]
        assert doc["spec"]["selector"]["matchLabels"].items() <= doc["spec"]["template"]["metadata"]["labels"].items()
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        (container,) = pod["containers"]
        assert pinned(container["image"])
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/var/lib/concordat", "/tmp"} <= mounts, "the data dir and /tmp must be writable"
        role = ROLES_BY_COMMAND[container["args"][0]]
        found[role] = name
        probe = container["readinessProbe"]
        if "exec" in probe:
            assert probe["exec"]["command"][:3] == ["concordat", "health", role]
        else:
            assert role == "web" and probe["httpGet"]["path"] == "/healthz"
        assert "livenessProbe" in container
        (init,) = pod["initContainers"]  # the store's tables, once, before the process opens the store
        assert init["args"] == ["migrate"] and init["image"] == container["image"]
        assert init["securityContext"] == container["securityContext"]
    assert set(found) == set(ROLES)
    assert deployments()[found["worker"]]["spec"]["replicas"] >= 2


def test_kubernetes_settings_are_real_settings_and_secrets_come_from_a_secret() -> None:
    docs = k8s_documents()
    assert not [doc for _, doc in docs if doc["kind"] == "Secret"], "ship no Secret: operators create their own"
    (config,) = [doc for _, doc in docs if doc["kind"] == "ConfigMap"]
    assert set(config["data"]) <= SETTINGS
    assert not {k for k in config["data"] if SECRET_WORDS.search(k) or k == "CONCORDAT_DATABASE_URL"}
    for name, doc in deployments().items():
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
        for var in container.get("env", []):
            assert var["name"] in SETTINGS, f"{name} sets {var['name']}, which is not a setting"
            assert "value" not in var, f"{name}: {var['name']} is a literal; secrets come from the Secret"
            assert var["valueFrom"]["secretKeyRef"]["name"] == "concordat"
        names = {v["name"] for v in container.get("env", [])}
        assert {"CONCORDAT_DATABASE_URL", "CONCORDAT_CIPHER_KEY"} <= names


def test_the_runbook_documents_every_setting_and_each_procedure() -> None:
    runbook = (DEPLOY / "README.md").read_text()
    missing = {name for name in SETTINGS if f"`{name}`" not in runbook}
    assert not missing, f"deploy/README.md does not document {sorted(missing)}"
    for needed in (
        "concordat health worker",
        "concordat health projections",
        "concordat health web",
        "concordat health outbox",
        "pg_dump",
        "pg_restore",
        "concordat audit verify",
        "concordat audit replay",
        "workflow.patched",
        "tests/workflows/test_replay.py",
        "CONCORDAT_CIPHER_KEY",
        "concordat_projection_lag_events",
        "tests/deploy/test_backup_restore.py",
    ):
        assert needed in runbook, f"deploy/README.md does not mention {needed}"
