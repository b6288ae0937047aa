package validate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// helmModule is the helm the chart is checked with, run from its Go
// module at a pinned version (no download site is needed).
const helmModule = "helm.sh/helm/v3/cmd/helm@v3.21.4"

// chart is the chart's directory, from this package.
var chart = filepath.Join("..", "helm", "auditbus")

// helm runs helm with args and returns its combined output.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"run", helmModule}, args...)...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// valueSets are the chart's values the tests render: each a list of
// --set flags (or, after "file:", a --set-file flag: a value read from a
// file in this directory).
var valueSets = map[string][]string{
	"insecure test cluster": {"insecure=true"},
	"hs256 auth":            {"auth.hs256Secret=0123456789abcdef0123456789abcdef"},
	"existing auth secret, public keys and a JWK Set": {
		"auth.existingSecret=auditbus-auth", "auth.keysSecret=auditbus-auth-keys",
		"auth.publicKeys={issuer-rsa.pem,issuer-ed25519.pem}", "auth.jwks=jwks.json"},
	"tls": {"auth.hs256Secret=0123456789abcdef0123456789abcdef", "tls.secret=auditbus-tls"},
	"clickhouse, kafka, two replicas, service monitor": {
		"auth.hs256Secret=0123456789abcdef0123456789abcdef", "replicaCount=2",
		"env.AUDITBUS_STORE=clickhouse", "env.AUDITBUS_TRANSPORTS=kafka",
		"env.AUDITBUS_CLICKHOUSE_ADDR=clickhouse:9000", "env.AUDITBUS_KAFKA_BROKERS=kafka:9092",
		"envFromSecrets={auditbus-clickhouse}", "persistence.enabled=false", "serviceMonitor.enabled=true"},
	"signing key and extra volumes": {
		"auth.hs256Secret=0123456789abcdef0123456789abcdef", "ledgerSigningKey.secret=auditbus-ledger-key",
		"extraVolumes[0].name=ca", "extraVolumes[0].configMap.name=auditbus-ca",
		"extraVolumeMounts[0].name=ca", "extraVolumeMounts[0].mountPath=/etc/auditbus-ca"},
	"signer registry and policy file": {
		"auth.hs256Secret=0123456789abcdef0123456789abcdef", "signers.configMap=auditbus-signers",
		"file:policy=testdata/policy.yaml"},
	"policy file without routes": {
		"auth.hs256Secret=0123456789abcdef0123456789abcdef", "routes=", "file:policy=testdata/policy.yaml"},
}

func setFlags(sets []string) []string {
	var args []string
	for _, s := range sets {
		if f, ok := strings.CutPrefix(s, "file:"); ok {
			args = append(args, "--set-file", f)
			continue
		}
		args = append(args, "--set", s)
	}
	return args
}

func TestHelmLintAndTemplate(t *testing.T) {
	if out, err := helm(t, append([]string{"lint", "--strict", chart}, setFlags(valueSets["hs256 auth"])...)...); err != nil {
		t.Fatalf("helm lint --strict: %v\n%s", err, out)
	}
	for name, sets := range valueSets {
		t.Run(name, func(t *testing.T) {
			out, err := helm(t, append([]string{"template", "--release-name", "orders-prod", chart}, setFlags(sets)...)...)
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, out)
			}
			objs, err := decodeManifests(out)
			if err != nil {
				t.Fatal(err)
			}
			checkRendered(t, name, objs)
		})
	}
}

// TestHelmRefusesBadValues feeds the chart values it must refuse, each
// with the message that says what to change.
func TestHelmRefusesBadValues(t *testing.T) {
	for _, c := range []struct {
		name string
		sets []string
		want string
	}{
		{"no authentication", nil, "set auth.hs256Secret"},
		{"two replicas on sqlite", []string{"insecure=true", "replicaCount=2", "env.AUDITBUS_TRANSPORTS=kafka"}, "replicaCount > 1 needs a shared audit store"},
		{"two replicas on mem", []string{"insecure=true", "replicaCount=2", "env.AUDITBUS_STORE=clickhouse"}, "cannot use the mem transport"},
		{"a misspelt value", []string{"insecure=true", "servce.port=80"}, "servce"},
		{"a value of the wrong type", []string{"insecure=true", "service.port=http"}, "port"},
		{"an unknown pull policy", []string{"insecure=true", "image.pullPolicy=Sometimes"}, "pullPolicy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := helm(t, append([]string{"template", "x", chart}, setFlags(c.sets)...)...)
			if err == nil {
				t.Fatalf("helm template accepted %v:\n%s", c.sets, out)
			}
			if !strings.Contains(out, c.want) {
				t.Fatalf("helm template refused %v without naming %q:\n%s", c.sets, c.want, out)
			}
		})
	}
}

// decodeManifests splits helm's output into documents and decodes each
// strictly (unknown fields refused) into its typed API object.
func decodeManifests(out string) (map[string]any, error) {
	objs := map[string]any{}
	for _, doc := range strings.Split(out, "\n---") {
		doc = strings.TrimSpace(doc)
		if doc == "" || strings.Trim(doc, "-") == "" {
			continue
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return nil, fmt.Errorf("rendered document is not YAML: %w\n%s", err, doc)
		}
		var obj any
		switch meta.APIVersion + " " + meta.Kind {
		case "apps/v1 Deployment":
			obj = &appsv1.Deployment{}
		case "v1 Service":
			obj = &corev1.Service{}
		case "v1 ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1 Secret":
			obj = &corev1.Secret{}
		case "v1 PersistentVolumeClaim":
			obj = &corev1.PersistentVolumeClaim{}
		case "policy/v1 PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "monitoring.coreos.com/v1 ServiceMonitor":
			obj = &monitoringv1.ServiceMonitor{}
		default:
			return nil, fmt.Errorf("rendered %s %s, which this test has no type for: add it", meta.APIVersion, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s does not decode strictly into its API type: %w\n%s", meta.Kind, err, doc)
		}
		if _, dup := objs[meta.Kind]; dup {
			return nil, fmt.Errorf("two %s objects rendered", meta.Kind)
		}
		objs[meta.Kind] = obj
	}
	return objs, nil
}

// TestDecodeRefusesBrokenManifests feeds the strict decoder manifests a
// cluster would refuse or misread.
func TestDecodeRefusesBrokenManifests(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  prots: [{port: 80}]\n",
		"wrong type":     "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: eighty}]\n",
		"unknown kind":   "apiVersion: v1\nkind: Servise\nmetadata: {name: x}\n",
		"misplaced spec": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    containers: []\n",
	} {
		if _, err := decodeManifests(doc); err == nil {
			t.Errorf("%s: the decoder accepted\n%s", name, doc)
		}
	}
}

// checkRendered checks what each value set must put in the objects.
func checkRendered(t *testing.T, name string, objs map[string]any) {
	t.Helper()
	d, ok := objs["Deployment"].(*appsv1.Deployment)
	if !ok {
		t.Fatal("no Deployment rendered")
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	for name := range mounts {
		if _, ok := volumes[name]; !ok {
			t.Errorf("mount %q has no volume", name)
		}
	}
	if d.Spec.Template.Annotations["checksum/secrets"] == "" {
		t.Error("no checksum/secrets annotation: a changed secret would not roll the pods")
	}
	switch name {
	case "existing auth secret, public keys and a JWK Set":
		want := "/etc/auditbus-auth/issuer-rsa.pem,/etc/auditbus-auth/issuer-ed25519.pem"
		if env["AUDITBUS_AUTH_PUBLIC_KEYS"] != want || env["AUDITBUS_AUTH_JWKS_FILE"] != "/etc/auditbus-auth/jwks.json" ||
			mounts["auth-keys"] != "/etc/auditbus-auth" || volumes["auth-keys"].Secret == nil || volumes["auth-keys"].Secret.SecretName != "auditbus-auth-keys" {
			t.Errorf("auth keys not mounted and named: env %v, mounts %v", env, mounts)
		}
	case "tls":
		if env["AUDITBUS_TLS_CERT_FILE"] != "/etc/auditbus-tls/tls.crt" || env["AUDITBUS_TLS_KEY_FILE"] != "/etc/auditbus-tls/tls.key" || mounts["tls"] != "/etc/auditbus-tls" {
			t.Errorf("TLS not mounted and named: env %v, mounts %v", env, mounts)
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
				t.Errorf("probe %s uses %s with TLS on", p.HTTPGet.Path, p.HTTPGet.Scheme)
			}
		}
	case "clickhouse, kafka, two replicas, service monitor":
		pdb, ok := objs["PodDisruptionBudget"].(*policyv1.PodDisruptionBudget)
		if !ok || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
			t.Errorf("two replicas without a PodDisruptionBudget of maxUnavailable 1: %+v", objs["PodDisruptionBudget"])
		}
		sm, ok := objs["ServiceMonitor"].(*monitoringv1.ServiceMonitor)
		if !ok || sm.Spec.JobLabel != "app.kubernetes.io/name" {
			t.Errorf("ServiceMonitor without jobLabel app.kubernetes.io/name (the rules' job=\"auditbus\"): %+v", objs["ServiceMonitor"])
		}
		svc := objs["Service"].(*corev1.Service)
		if svc.Labels["app.kubernetes.io/name"] != "auditbus" {
			t.Errorf("Service label app.kubernetes.io/name = %q, want auditbus", svc.Labels["app.kubernetes.io/name"])
		}
		if *d.Spec.Replicas != 2 || env["AUDITBUS_STORE"] != "clickhouse" || len(c.EnvFrom) != 1 {
			t.Errorf("replicas %d, env %v, envFrom %v", *d.Spec.Replicas, env, c.EnvFrom)
		}
	case "signing key and extra volumes":
		if env["AUDITBUS_LEDGER_SIGNING_KEY_FILE"] != "/etc/auditbus-ledger/ledger.key" || mounts["ledger-key"] != "/etc/auditbus-ledger" ||
			mounts["ca"] != "/etc/auditbus-ca" || volumes["ca"].ConfigMap == nil {
			t.Errorf("signing key or extra volume not mounted: env %v, mounts %v", env, mounts)
		}
	case "signer registry and policy file", "policy file without routes":
		cm, ok := objs["ConfigMap"].(*corev1.ConfigMap)
		if !ok || !strings.Contains(cm.Data["policy.yaml"], "cart-service:") {
			t.Errorf("the policy is not in the ConfigMap: %+v", objs["ConfigMap"])
		}
		if env["AUDITBUS_POLICY_FILE"] != "/etc/auditbus/policy.yaml" || mounts["routes"] != "/etc/auditbus" {
			t.Errorf("policy file not mounted and named: env %v, mounts %v", env, mounts)
		}
		if _, has := cm.Data["routes.yaml"]; has == (name == "policy file without routes") {
			t.Errorf("routes.yaml in the ConfigMap: %v, with routes set: %v", has, name != "policy file without routes")
		}
		if name == "signer registry and policy file" && (env["AUDITBUS_SIGNERS_FILE"] != "/etc/auditbus-signers/signers.yaml" ||
			mounts["signers"] != "/etc/auditbus-signers" || volumes["signers"].ConfigMap == nil || volumes["signers"].ConfigMap.Name != "auditbus-signers") {
			t.Errorf("signer registry not mounted and named: env %v, mounts %v", env, mounts)
		}
	}
	if _, has := objs["PodDisruptionBudget"]; has && *d.Spec.Replicas < 2 {
		t.Error("a PodDisruptionBudget for a single replica blocks node drains")
	}
}
