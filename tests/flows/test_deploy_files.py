"""The deployment files parse and agree with the code and with each other (no Docker or Kubernetes
needed): every entrypoint is a Prefect flow, every deployment parameter is in its flow's signature,
every Compose service runs the one image built from deploy/Dockerfile, names and addresses match
across files, and every Kubernetes manifest has an apiVersion and a kind.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
FLOWS = {"score": "score_flow", "batch": "batch_flow", "synth": "synth_flow", "ingest": "ingest_flow"}
IMAGE = "laion-lake:latest"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def prefect_yaml() -> dict[str, Any]:
    return load_yaml(DEPLOY / "prefect.yaml")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(DEPLOY / "docker-compose.yml")


def load_entrypoint(entrypoint: str) -> Any:
    """The flow at ``entrypoint``, loaded as Prefect loads it (a script by path); sys.path and
    sys.modules are restored afterwards (Prefect adds flows/ to the path and a module named after the file)."""
    from prefect.flows import load_flow_from_entrypoint

    path, modules = list(sys.path), set(sys.modules)
    try:
        return load_flow_from_entrypoint(str(REPO / entrypoint))
    finally:
        sys.path[:] = path
        for name in set(sys.modules) - modules:
            # only the script modules Prefect made (``score``, ``__prefect_loader_...``), not the
            # libraries their import pulled in
            if not name.startswith("flows.") and str(getattr(sys.modules[name], "__file__", "")).startswith(str(REPO / "flows")):
                del sys.modules[name]


# -- prefect.yaml ---------------------------------------------------------------------------------
def test_every_flow_has_a_deployment(prefect_yaml: dict[str, Any]) -> None:
    assert {d["name"] for d in prefect_yaml["deployments"]} == set(FLOWS)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_deployment_entrypoint_and_parameters_match_the_flow(prefect_yaml: dict[str, Any], name: str) -> None:
    from prefect import Flow

    deployment = next(d for d in prefect_yaml["deployments"] if d["name"] == name)
    path, function = deployment["entrypoint"].split(":")
    assert (REPO / path).is_file(), deployment["entrypoint"]
    assert (path, function) == (f"flows/{name}.py", FLOWS[name])
    flow = load_entrypoint(deployment["entrypoint"])
    assert isinstance(flow, Flow)
    signature = inspect.signature(flow.fn)
    parameters = deployment.get("parameters") or {}
    assert set(parameters) <= set(signature.parameters), f"{name}: not in {FLOWS[name]}'s signature: {set(parameters) - set(signature.parameters)}"
    required = {p.name for p in signature.parameters.values() if p.default is inspect.Parameter.empty}
    # a required parameter (the lake) gets no deployment default: one that works only inside Compose
    # would send a run elsewhere to the wrong lake; every other parameter is listed, so the UI shows it
    assert not required & set(parameters), f"{name}: a default for required {required & set(parameters)}"
    assert set(parameters) == set(signature.parameters) - required
    # the deployment's defaults are what the flow would use itself (the URLs aside)
    for key, value in parameters.items():
        default = signature.parameters[key].default
        if default is not inspect.Parameter.empty:
            assert value == default, (name, key, value, default)
    assert deployment["work_pool"]["name"] == "laion-lake-process"


def test_pull_step_moves_into_the_checkout(prefect_yaml: dict[str, Any]) -> None:
    (step,) = prefect_yaml["pull"]
    assert step == {"prefect.deployments.steps.set_working_directory": {"directory": "{{ $LAION_LAKE_HOME }}"}}
    from prefect.deployments.steps import set_working_directory  # the step exists

    assert callable(set_working_directory)


# -- Dockerfile -----------------------------------------------------------------------------------
def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, backslash continuations joined."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")))
    instructions = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def test_dockerfile_parses_and_copies_what_exists() -> None:
    instructions = dockerfile_instructions(DEPLOY / "Dockerfile")
    known = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "EXPOSE", "CMD", "ARG", "LABEL", "ENTRYPOINT"}
    assert {k for k, _ in instructions} <= known
    assert instructions[0][0] == "FROM"
    workdir = next(a for k, a in instructions if k == "WORKDIR")
    env = " ".join(a for k, a in instructions if k == "ENV")
    assert f"LAION_LAKE_HOME={workdir}" in env, "the pull step's directory must be the image's checkout"
    copied = []
    for keyword, arguments in instructions:
        if keyword == "COPY":
            *sources, destination = shlex.split(arguments)
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the build context (the repository root)"
                copied.append(source.rstrip("/"))
    for needed in ("pyproject.toml", "laion_lake", "storage_schemas", "flows", "deploy"):
        assert needed in copied
    cmd = next(a for k, a in instructions if k == "CMD")
    assert isinstance(json.loads(cmd), list)


# -- docker-compose.yml ---------------------------------------------------------------------------
def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def test_compose_services_share_one_image_built_from_the_dockerfile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    ours = {name: s for name, s in services.items() if s.get("image") == IMAGE}
    assert set(ours) >= {"prefect-server", "dask-scheduler", "dask-worker", "prefect-worker", "deployer"}
    for name, service in ours.items():
        build = service["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == REPO, name
        assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile", name
    # images other than ours are the object store's
    assert {s["image"].split(":")[0] for n, s in services.items() if n not in ours} == {"minio/minio", "minio/mc"}
    for name, service in services.items():
        depends = service.get("depends_on", [])
        for dependency in depends if isinstance(depends, list) else depends.keys():
            assert dependency in services, f"{name} depends on unknown service {dependency}"


def test_compose_names_and_addresses_agree(compose: dict[str, Any], prefect_yaml: dict[str, Any]) -> None:
    services = compose["services"]
    pool = prefect_yaml["deployments"][0]["work_pool"]["name"]
    worker = command_words(services["prefect-worker"])
    assert worker[:3] == ["prefect", "worker", "start"] and worker[worker.index("--pool") + 1] == pool
    assert worker[worker.index("--type") + 1] == "process"
    deployer = " ".join(command_words(services["deployer"]))
    assert f"work-pool create {pool} --type process" in deployer and "--prefect-file deploy/prefect.yaml" in deployer
    env = services["prefect-worker"]["environment"]
    scheduler = command_words(services["dask-scheduler"])
    assert env["DASK_SCHEDULER_ADDRESS"] == f"tcp://dask-scheduler:{scheduler[scheduler.index('--port') + 1]}"
    assert command_words(services["dask-worker"])[2] == env["DASK_SCHEDULER_ADDRESS"]
    server = command_words(services["prefect-server"])
    assert env["PREFECT_API_URL"] == f"http://prefect-server:{server[server.index('--port') + 1]}/api"
    assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
    assert env["LAION_LAKE_HOME"] == "/opt/laion-lake"
    # the lake that the Compose file's run commands name lives in the bucket minio-init creates
    buckets = set(re.findall(r"lake_url=s3://([^/\s]+)/", (DEPLOY / "docker-compose.yml").read_text()))
    assert buckets and all(f"lake/{bucket}" in " ".join(command_words(services["minio-init"])) for bucket in buckets)


@pytest.mark.parametrize("name", sorted(FLOWS))
def test_parameter_schema_is_typed_and_described(prefect_yaml: dict[str, Any], name: str) -> None:
    """What `prefect deploy` sends as the deployment's parameter_openapi_schema (the UI's form):
    every parameter described (Prefect parses the Google-style Args section), typed where it matters."""
    deployment = next(d for d in prefect_yaml["deployments"] if d["name"] == name)
    schema = load_entrypoint(deployment["entrypoint"]).parameters.model_dump()
    properties = schema["properties"]
    undescribed = [p for p, spec in properties.items() if not spec.get("description")]
    assert not undescribed, f"{name}: parameters without a description: {undescribed}"
    assert schema["required"] == (["src", "lake_url"] if name == "ingest" else ["lake_url"])
    if name in ("score", "batch"):
        feature_sets = properties["feature_sets" if name == "score" else "models"]
        assert {"type": "array", "items": {"type": "string"}} in feature_sets["anyOf"]  # "model/layer", one spelling
        cluster = schema["definitions"]["ClusterSettings"]["properties"]
        assert cluster["workers"]["minimum"] == 1 and all(spec.get("description") for spec in cluster.values())
    if name == "synth":
        assert properties["scale"]["enum"] == ["tiny", "small", "full"]
    if name == "ingest":
        assert properties["scope"]["enum"] == ["rois", "brain"]
        assert "ClusterSettings" in schema["definitions"]


# -- Kubernetes -----------------------------------------------------------------------------------
def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    documents = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name.endswith("-values.yaml"):
            continue
        documents += [(path, d) for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return documents


def test_k8s_manifests_have_api_version_and_kind() -> None:
    documents = k8s_documents()
    assert {d["kind"] for _, d in documents} >= {"DaskCluster", "Namespace", "Secret"}
    for path, document in documents:
        assert document.get("apiVersion") and document.get("kind"), path
        assert document["metadata"]["name"], path


def test_dask_cluster_matches_the_work_pool_template() -> None:
    cluster = next(d for _, d in k8s_documents() if d["kind"] == "DaskCluster")
    assert cluster["apiVersion"] == "kubernetes.dask.org/v1"
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]
    for role in ("worker", "scheduler"):
        for container in cluster["spec"][role]["spec"]["containers"]:
            assert container["image"] == IMAGE
    port = next(p["port"] for p in cluster["spec"]["scheduler"]["service"]["ports"] if p["name"] == "tcp-comm")
    template = json.loads((DEPLOY / "k8s" / "base-job-template.json").read_text())
    properties = template["variables"]["properties"]
    assert properties["env"]["default"]["DASK_SCHEDULER_ADDRESS"] == f"tcp://{name}.{namespace}.svc.cluster.local:{port}"
    assert properties["image"]["default"] == IMAGE and properties["namespace"]["default"] == namespace
    # every placeholder of the job configuration is a declared variable
    placeholders = set(re.findall(r"{{\s*([\w.]+)\s*}}", json.dumps(template["job_configuration"])))
    assert placeholders <= set(properties), placeholders - set(properties)


def test_helm_values_point_the_worker_at_the_server_and_pool() -> None:
    worker = load_yaml(DEPLOY / "k8s" / "prefect-worker-values.yaml")["worker"]
    server = load_yaml(DEPLOY / "k8s" / "prefect-server-values.yaml")
    assert worker["apiConfig"] == "selfHostedServer" and worker["config"]["type"] == "kubernetes"
    assert worker["selfHostedServerApiConfig"]["apiUrl"].startswith("http://prefect-server.laion-lake.svc")
    assert worker["config"]["workPool"] == "laion-lake-k8s"
    assert server["global"]["prefect"]["image"]["prefectTag"].startswith("3.")
    readme = (DEPLOY / "README.md").read_text()
    assert "laion-lake-k8s" in readme and "base-job-template.json" in readme
