"""The Helm chart, rendered and linted offline with Helm's own SDK (helm-python-sdk, the Go
SDK as a library), every manifest validated strictly against the Kubernetes OpenAPI schemas
(kubernetes-validate) of the oldest and newest versions it supports, the rendered config
checked by the real `tidegate check`, and the chart's promises asserted on the output: the
config reaches pods without a restart (a directory mount, no checksum annotation), a pod is
never killed while draining, it is ready only per /readyz, and it runs locked down.

Run by scripts/helm-tests.sh (in scripts/test.sh): TIDEGATE_BIN names the binary.
"""

import base64
import json
import os
import subprocess
import tempfile
import unittest

import helm_python as helm
import kubernetes_validate
import yaml

CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tidegate")
VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]
TIDEGATE = os.environ.get("TIDEGATE_BIN", "target/debug/tidegate")
helm.disable_logging()  # its INFO line about the dashboards symlink, once per render

# The TLS Secret's mount, as a [[certificates]] entry of the config.
CERT_DIR = "/etc/tidegate/tls/shop-example-com"
TLS_CONFIG = f"""[[certificates]]
cert = "{CERT_DIR}/tls.crt"
key = "{CERT_DIR}/tls.key"
default = true

[[routes]]
name = "shop"
hosts = ["shop.example.com"]
path = "/"
respond = {{ status = 200, body = "shop" }}
"""

# A service bound to pods by the Kubernetes Service "chat" in namespace "chat".
POD_DISCOVERY_CONFIG = """[[services]]
name = "chat"
kubernetes = { namespace = "chat", service = "chat", port = "http" }

[[routes]]
name = "chat"
path = "/ws"
service = "chat"
split = [{ labels = { stage = "blue" }, weight = 90 }, { labels = { stage = "green" }, weight = 10 }]
"""

# Everything the chart can turn on at once.
EVERYTHING = {
    "kind": "DaemonSet",
    "config": TLS_CONFIG + "\n" + POD_DISCOVERY_CONFIG,
    "discovery": {"namespaces": ["chat", "support"]},
    "controller": {"enabled": True, "defaultClass": True, "gatewayClass": "tidegate"},
    "proxyProtocol": True,
    "trustedProxies": ["10.0.0.0/8", "192.168.1.7"],
    "tlsSecrets": ["shop-example-com"],
    "service": {"type": "NodePort", "https": True, "nodePorts": {"http": 30080, "https": 30443}},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "dashboards": {"enabled": True},
    "podAnnotations": {"team": "edge"},
    "nodeSelector": {"role": "edge"},
    "tolerations": [{"key": "edge", "operator": "Exists", "effect": "NoSchedule"}],
    "priorityClassName": "system-cluster-critical",
    "extraEnv": [{"name": "RUST_LOG", "value": "info"}],
    "drain": {"preStopSeconds": 15, "graceSeconds": 120, "shutdownSeconds": 10},
}


def render(values=None):
    """The chart rendered with `values` over its defaults: the objects, by kind and name."""
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values or {})
        manifests = chart.render(values or {}, name="edge", namespace="gateway", is_install=True)
    objects = {}
    for path, text in manifests.items():
        if not path.endswith(".yaml"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def workload(objects):
    found = [
        o
        for (kind, _), o in objects.items()
        if kind in ("Deployment", "DaemonSet")
        and o["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
    ]
    assert len(found) == 1, found
    return found[0]


class Chart(unittest.TestCase):
    def test_lint_is_clean_for_the_defaults_and_everything(self):
        for values in ({}, EVERYTHING):
            report = helm.lint(CHART, values, strict=True, kube_version="v1.30.0")
            problems = [m for m in report["messages"] if m["severity"] >= 2]
            self.assertEqual(problems, [], values)
            self.assertEqual(report["errors"], [])

    def test_every_manifest_is_valid_for_the_kubernetes_versions_it_supports(self):
        for values in ({}, EVERYTHING):
            for (kind, name), obj in render(values).items():
                if obj["apiVersion"].startswith(("monitoring.coreos.com/", "gateway.networking.k8s.io/")):
                    continue  # a CRD: its fields are asserted below
                for version in VERSIONS:
                    with self.subTest(kind=kind, name=name, version=version):
                        kubernetes_validate.validate(obj, version, strict=True)

    def test_the_schema_refuses_what_the_chart_cannot_do(self):
        with helm.Chart.load(CHART) as chart:
            for bad in (
                {"kind": "StatefulSet"},
                {"service": {"type": "ExternalName"}},
                {"drain": {"preStopSeconds": -1, "graceSeconds": 30, "shutdownSeconds": 5}},
                {"trustedProxies": ["everyone"]},
                {"replica": 3},
                {"discovery": {"namespaces": ["Chat_NS"]}},
                {"controller": {"enabled": True, "replicas": 0}},
            ):
                with self.subTest(values=bad), self.assertRaises(helm.HelmError):
                    chart.validate_schema(bad)

    def test_the_rendered_config_is_accepted_by_the_gateway(self):
        # The Secret's files, made here: `tidegate check` reads certificates.
        certs = tempfile.mkdtemp(prefix="tidegate-helm-certs-")
        subprocess.run(
            ["scripts/make-test-cert.sh", certs, "shop.example.com"], check=True, capture_output=True
        )
        os.rename(f"{certs}/shop.example.com.pem", f"{certs}/tls.crt")
        os.rename(f"{certs}/shop.example.com.key", f"{certs}/tls.key")
        for values in ({}, {"controller": {"enabled": True}}, EVERYTHING):
            objects = render(values)
            config = objects[("ConfigMap", "edge-tidegate")]["data"]["tidegate.toml"]
            # With the controller, the gateways start on the routes ConfigMap's first
            # content (the base alone) until the controller writes its translation.
            if ("Secret", "edge-tidegate-routes") in objects:
                first = objects[("Secret", "edge-tidegate-routes")]["data"]["tidegate.toml"]
                self.assertEqual(base64.b64decode(first).decode(), config)
            with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
                f.write(config.replace(CERT_DIR, certs))
                f.flush()
                out = subprocess.run([TIDEGATE, "check", f.name], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr + config)
        self.assertIn('tls_listen = ["0.0.0.0:8443"]', config)
        self.assertIn('proxy_protocol = ["0.0.0.0:8080"]', config)
        self.assertIn('trusted_proxies = ["10.0.0.0/8", "192.168.1.7"]', config)
        self.assertIn("grace_period_seconds = 120", config)

    def test_a_config_change_reaches_running_pods_without_a_restart(self):
        before = render()
        values = {"config": '[[routes]]\nname = "api"\npath = "/api/"\nrespond = { status = 204 }\n'}
        after = render(values)
        # Only the ConfigMap changes: the pod template (and so the pods) stays the same.
        self.assertNotEqual(
            before[("ConfigMap", "edge-tidegate")], after[("ConfigMap", "edge-tidegate")]
        )
        self.assertEqual(workload(before), workload(after))
        pod = workload(after)["spec"]["template"]
        annotations = pod["metadata"].get("annotations", {})
        self.assertFalse([k for k in annotations if "checksum" in k], annotations)
        container = pod["spec"]["containers"][0]
        for mount in container["volumeMounts"]:
            self.assertNotIn("subPath", mount)  # a subPath mount is never updated
        config = [v for v in pod["spec"]["volumes"] if v["name"] == "config"][0]
        self.assertEqual(config["configMap"]["name"], "edge-tidegate")
        self.assertIn("/etc/tidegate/config/tidegate.toml", container["args"])

    def test_a_pod_is_not_killed_while_it_drains(self):
        for values in ({}, EVERYTHING):
            drain = {"preStopSeconds": 10, "graceSeconds": 30, "shutdownSeconds": 5}
            drain.update(values.get("drain", {}))
            pod = workload(render(values))["spec"]["template"]["spec"]
            container = pod["containers"][0]
            self.assertEqual(
                container["lifecycle"]["preStop"]["sleep"]["seconds"], drain["preStopSeconds"]
            )
            self.assertGreaterEqual(
                pod["terminationGracePeriodSeconds"],
                drain["preStopSeconds"] + drain["graceSeconds"] + drain["shutdownSeconds"],
            )
            probe = container["readinessProbe"]["httpGet"]
            self.assertEqual((probe["path"], probe["port"]), ("/readyz", "admin"))

    def test_pods_run_locked_down(self):
        objects = render(EVERYTHING)
        pod = workload(objects)["spec"]["template"]["spec"]
        self.assertTrue(pod["securityContext"]["runAsNonRoot"])
        sc = pod["containers"][0]["securityContext"]
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertFalse(sc["allowPrivilegeEscalation"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])
        mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        self.assertIn("/etc/tidegate/tls/shop-example-com", mounts)

    def test_pod_discovery_gets_read_only_access_to_its_namespaces_and_nothing_else(self):
        # Off: no token, no Role — the data plane reads nothing from the API server.
        objects = render()
        self.assertFalse(workload(objects)["spec"]["template"]["spec"]["automountServiceAccountToken"])
        self.assertFalse([k for k in objects if k[0] in ("Role", "ClusterRole", "RoleBinding")])
        self.assertNotIn("[kubernetes]", objects[("ConfigMap", "edge-tidegate")]["data"]["tidegate.toml"])
        # On: a Role and a RoleBinding in each listed namespace, get/list/watch of
        # endpointslices and pods only, bound to the gateway's service account.
        objects = render(EVERYTHING)
        pod = workload(objects)["spec"]["template"]["spec"]
        self.assertTrue(pod["automountServiceAccountToken"])
        # No cluster-wide grant for the gateways (the controller's is its own, tested below).
        cluster_wide = [k for k in objects if k[0] in ("ClusterRole", "ClusterRoleBinding")]
        self.assertFalse([k for k in cluster_wide if not k[1].endswith("-controller")], cluster_wide)
        self.assertFalse(objects[("ServiceAccount", "edge-tidegate")]["automountServiceAccountToken"])
        roles = [o for (kind, name), o in objects.items() if kind == "Role" and name.endswith("-discovery")]
        bindings = [
            o for (kind, name), o in objects.items() if kind == "RoleBinding" and name.endswith("-discovery")
        ]
        # render() keys by kind and name, so same-named objects of two namespaces collapse:
        # count them from the manifests instead.
        with helm.Chart.load(CHART) as chart:
            text = chart.render(EVERYTHING, name="edge", namespace="gateway", is_install=True)
        docs = [
            d for path, t in text.items() if path.endswith(".yaml") for d in yaml.safe_load_all(t) if d
        ]
        discovery = [d for d in docs if d["metadata"]["name"].endswith("-discovery")]
        namespaces = sorted(d["metadata"]["namespace"] for d in discovery if d["kind"] == "Role")
        self.assertEqual(namespaces, ["chat", "support"])
        self.assertEqual(
            sorted(d["metadata"]["namespace"] for d in discovery if d["kind"] == "RoleBinding"),
            ["chat", "support"],
        )
        for role in roles:
            self.assertEqual(
                sorted((tuple(r["apiGroups"]), tuple(r["resources"]), tuple(r["verbs"])) for r in role["rules"]),
                [(("",), ("pods",), ("get", "list", "watch")),
                 (("discovery.k8s.io",), ("endpointslices",), ("get", "list", "watch"))],
            )
        for binding in bindings:
            self.assertEqual(binding["roleRef"]["name"], roles[0]["metadata"]["name"])
            self.assertEqual(
                binding["subjects"],
                [{"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "gateway"}],
            )
        config = objects[("ConfigMap", "edge-tidegate")]["data"]["tidegate.toml"]
        self.assertIn('[kubernetes]\ncache_dir = "/var/cache/tidegate/kubernetes"', config)
        mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
        self.assertIn("/var/cache/tidegate", mounts)  # the root filesystem is read-only
        # A config with its own [kubernetes] (as `tidegate import-ingress` writes) is left
        # as it is: one section, which `tidegate check` accepts.
        values = dict(EVERYTHING, config="[kubernetes]\n" + POD_DISCOVERY_CONFIG)
        config = render(values)[("ConfigMap", "edge-tidegate")]["data"]["tidegate.toml"]
        self.assertEqual(config.count("[kubernetes]"), 1, config)
        self.assertNotIn("cache_dir", config)

    def test_the_ingress_controller_reads_the_cluster_and_writes_only_its_own_config(self):
        self.assertNotIn(("Deployment", "edge-tidegate-controller"), render())
        objects = render(EVERYTHING)
        controller = objects[("Deployment", "edge-tidegate-controller")]
        pod = controller["spec"]["template"]["spec"]
        args = pod["containers"][0]["args"]
        self.assertEqual(args[0], "ingress-controller")
        self.assertIn("--config-secret=edge-tidegate-routes", args)
        self.assertIn("--ingress-class=tidegate", args)
        self.assertIn("--base=/etc/tidegate/base/tidegate.toml", args)
        # The address on the Ingresses: the gateways' own Service, or the addresses given.
        self.assertIn("--publish-service=gateway/edge-tidegate", args)
        given = render({"controller": {"enabled": True, "publishStatusAddress": "203.0.113.7,lb.example.com"}})
        given_args = given[("Deployment", "edge-tidegate-controller")]["spec"]["template"]["spec"]["containers"][0]["args"]
        self.assertIn("--publish-status-address=203.0.113.7,lb.example.com", given_args)
        self.assertFalse(any(a.startswith("--publish-service") for a in given_args))
        base = [v for v in pod["volumes"] if v["name"] == "base"][0]
        self.assertEqual(base["configMap"]["name"], "edge-tidegate")
        # Its pods are not the gateways' (the Service and the PDB select gateways only).
        gateway_selector = workload(objects)["spec"]["selector"]["matchLabels"]
        labels = controller["spec"]["template"]["metadata"]["labels"]
        self.assertFalse(set(gateway_selector.items()) <= set(labels.items()))
        # The gateways mount the controller's config Secret (config and certificates, one
        # volume swapped at once), as a directory.
        volume = [v for v in workload(objects)["spec"]["template"]["spec"]["volumes"] if v["name"] == "config"][0]
        self.assertEqual(volume["secret"]["secretName"], "edge-tidegate-routes")
        self.assertIn("--tls-dir=/etc/tidegate/config", args)
        # … and follow it through the API (a change does not wait for the kubelet's copy):
        # the one Secret by name, get/list/watch, with the token mounted for it.
        base_text = objects[("ConfigMap", "edge-tidegate")]["data"]["tidegate.toml"]
        self.assertIn('config_secret = "gateway/edge-tidegate-routes"', base_text)
        config_role = objects[("Role", "edge-tidegate-config")]
        self.assertEqual(
            config_role["rules"],
            [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["edge-tidegate-routes"],
              "verbs": ["get", "list", "watch"]}],
        )
        binding = objects[("RoleBinding", "edge-tidegate-config")]
        self.assertEqual(binding["subjects"][0]["name"], "edge-tidegate")
        only_controller = render({"controller": {"enabled": True}})
        self.assertTrue(workload(only_controller)["spec"]["template"]["spec"]["automountServiceAccountToken"])
        self.assertIn("config_secret", only_controller[("ConfigMap", "edge-tidegate")]["data"]["tidegate.toml"])
        # Least privilege: read-only cluster-wide, writes limited to its ConfigMap and Lease.
        cluster = objects[("ClusterRole", "edge-tidegate-controller")]
        for rule in cluster["rules"]:
            if rule["verbs"] != ["get", "list", "watch"]:
                # The only writes cluster-wide: status subresources (Gateway API, Ingress).
                self.assertEqual(rule["verbs"], ["update"], rule)
                self.assertTrue(all(r.endswith("/status") for r in rule["resources"]), rule)
        gateway_class = objects[("GatewayClass", "tidegate")]
        self.assertEqual(gateway_class["spec"]["controllerName"], "tidegate.io/gateway-controller")
        self.assertNotIn(("GatewayClass", "tidegate"), render({"controller": {"enabled": True}}))
        role = objects[("Role", "edge-tidegate-controller")]
        for rule in role["rules"]:
            if rule["verbs"] != ["create"]:
                self.assertTrue(rule.get("resourceNames"), rule)
            self.assertTrue(set(rule["resources"]) <= {"secrets", "leases"}, rule)
        ingress_class = objects[("IngressClass", "tidegate")]
        self.assertEqual(ingress_class["spec"]["controller"], "tidegate.io/ingress-controller")
        self.assertEqual(
            ingress_class["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"], "true"
        )
        sc = pod["containers"][0]["securityContext"]
        self.assertTrue(sc["readOnlyRootFilesystem"])
        self.assertEqual(sc["capabilities"]["drop"], ["ALL"])

    def test_the_service_keeps_client_addresses_and_the_pdb_covers_the_pods(self):
        for values in ({}, EVERYTHING):
            objects = render(values)
            service = objects[("Service", "edge-tidegate")]
            self.assertEqual(service["spec"]["externalTrafficPolicy"], "Local")
            selector = workload(objects)["spec"]["selector"]["matchLabels"]
            self.assertEqual(service["spec"]["selector"], selector)
            labels = workload(objects)["spec"]["template"]["metadata"]["labels"]
            self.assertTrue(set(selector.items()) <= set(labels.items()))
            pdb = objects[("PodDisruptionBudget", "edge-tidegate")]
            self.assertEqual(pdb["spec"]["selector"]["matchLabels"], selector)
            spread = workload(objects)["spec"]["template"]["spec"]["topologySpreadConstraints"]
            self.assertEqual(spread[0]["labelSelector"]["matchLabels"], selector)

    def test_monitoring_scrapes_the_admin_port_and_ships_the_dashboards(self):
        objects = render(EVERYTHING)
        monitor = objects[("ServiceMonitor", "edge-tidegate")]
        self.assertEqual(monitor["spec"]["endpoints"][0]["port"], "admin")
        self.assertEqual(monitor["spec"]["endpoints"][0]["path"], "/metrics")
        admin = objects[("Service", "edge-tidegate-admin")]
        self.assertTrue(
            set(monitor["spec"]["selector"]["matchLabels"].items())
            <= set(admin["metadata"]["labels"].items())
        )
        dashboards = objects[("ConfigMap", "edge-tidegate-dashboards")]["data"]
        self.assertGreaterEqual(len(dashboards), 5, sorted(dashboards))
        for name, text in dashboards.items():
            self.assertTrue(json.loads(text)["panels"], name)
        # Off by default: no CRD object a cluster without the operator would refuse.
        self.assertNotIn(("ServiceMonitor", "edge-tidegate"), render())


if __name__ == "__main__":
    unittest.main()
