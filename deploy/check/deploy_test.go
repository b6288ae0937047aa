package check

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/auditbus/auditbus/bus/amqp"
	"github.com/auditbus/auditbus/bus/kafka"
	"github.com/auditbus/auditbus/pkg/auth"
	"github.com/auditbus/auditbus/pkg/daemon"
	"github.com/auditbus/auditbus/pkg/router"
	"github.com/auditbus/auditbus/sinks/clickhouse"
)

// root is the repository root, relative to this package.
const root = "../.."

var (
	// metricDef finds a metric's name where the Go source registers it.
	metricDef = regexp.MustCompile(`(Counter|Gauge|Histogram|Summary)Opts\{\s*Name:\s*"(auditbus_[a-z0-9_]+)"`)
	// metricUse finds a metric name in a PromQL expression.
	metricUse = regexp.MustCompile(`(^|[^a-zA-Z0-9_:])(auditbus_[a-zA-Z0-9_]+)`)
	// recordUse finds a recording rule's name in a PromQL expression.
	recordUse = regexp.MustCompile(`(^|[^a-zA-Z0-9_:])(auditbus:[a-zA-Z0-9_:]+)`)
	// envName finds an AUDITBUS_* or OTEL_* variable name.
	envName = regexp.MustCompile(`(AUDITBUS|OTEL)_[A-Z0-9_]*[A-Z0-9]`)
)

// goSource is the text of the root module's non-test Go files.
func goSource(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "benchmarks", "deploy", "testdata", "data":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		b.Write(src)
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatalf("read the Go source under %s: %v", root, err)
	}
	return b.String()
}

// metricNames maps every metric the Go source registers to the names it is
// exposed under: a histogram also as _bucket, _sum and _count.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, m := range metricDef.FindAllStringSubmatch(goSource(t), -1) {
		names[m[2]] = true
		if m[1] == "Histogram" || m[1] == "Summary" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[m[2]+s] = true
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("found no auditbus_ metric registered in the Go source under %s", root)
	}
	return names
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}

func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	if err := yaml.Unmarshal(readFile(t, rel), v); err != nil {
		t.Fatalf("parse %s: %v", rel, err)
	}
}

// ruleFile is the part of a Prometheus rules file the checks read.
type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Record, Alert, Expr string
		}
	}
}

// dashboardExprs returns every PromQL expression of a Grafana dashboard:
// panel targets (rows included) and query variables.
func dashboardExprs(t *testing.T, rel string) []string {
	t.Helper()
	var d struct {
		UID        string
		Panels     []dashPanel
		Templating struct {
			List []struct {
				Type       string
				Definition string
			}
		}
	}
	if err := json.Unmarshal(readFile(t, rel), &d); err != nil {
		t.Fatalf("parse %s: %v", rel, err)
	}
	if d.UID == "" {
		t.Errorf("%s: the dashboard has no uid", rel)
	}
	var exprs []string
	ids := map[int]bool{}
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d is used twice", rel, p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", rel, p.Title)
			}
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			exprs = append(exprs, v.Definition)
		}
	}
	return exprs
}

type dashPanel struct {
	ID      int
	Type    string
	Title   string
	Targets []struct{ Expr string }
	Panels  []dashPanel
}

func TestMetricNamesExist(t *testing.T) {
	names := metricNames(t)
	var rules ruleFile
	readYAML(t, "deploy/prometheus/rules.yml", &rules)
	records := map[string]bool{}
	var ruleExprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records[r.Record] = true
			}
			ruleExprs = append(ruleExprs, r.Expr)
		}
	}
	files := map[string][]string{
		"deploy/prometheus/rules.yml":             ruleExprs,
		"deploy/grafana/dashboards/auditbus.json": dashboardExprs(t, "deploy/grafana/dashboards/auditbus.json"),
	}
	for file, exprs := range files {
		used := 0
		for _, e := range exprs {
			for _, m := range metricUse.FindAllStringSubmatch(e, -1) {
				used++
				if !names[m[2]] {
					t.Errorf("%s: %s is not a metric the Go source registers (in %q)", file, m[2], e)
				}
			}
			for _, m := range recordUse.FindAllStringSubmatch(e, -1) {
				if !records[m[2]] {
					t.Errorf("%s: %s is not a recording rule of deploy/prometheus/rules.yml (in %q)", file, m[2], e)
				}
			}
		}
		if used == 0 {
			t.Errorf("%s: no auditbus_ metric found in %d expressions; is the file read right?", file, len(exprs))
		}
	}
}

// knownEnv is every AUDITBUS_* name the Go source mentions: the variables
// the code reads are all named in its doc comments and messages.
func knownEnv(t *testing.T) map[string]bool {
	t.Helper()
	known := map[string]bool{}
	for _, n := range envName.FindAllString(goSource(t), -1) {
		known[n] = true
	}
	return known
}

// setEnv sets the variables for the test, after clearing every other
// AUDITBUS_* variable of the process.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "AUDITBUS_") {
			t.Setenv(name, "")
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// checkEnv checks that env names only variables the code knows and that
// every configuration reader accepts it. The compose file and the chart
// set some variables the readers do not see here (paths inside the
// container); drop lists them.
func checkEnv(t *testing.T, file string, env map[string]string, drop ...string) {
	t.Helper()
	known := knownEnv(t)
	for k := range env {
		if !known[k] {
			t.Errorf("%s: %s is not a variable the code reads", file, k)
		}
	}
	env = maps.Clone(env)
	for _, k := range drop {
		delete(env, k)
	}
	setEnv(t, env)
	cfg, err := daemon.ConfigFromEnv()
	if err != nil {
		t.Errorf("%s: daemon settings: %v", file, err)
	}
	if _, err := auth.ConfigFromEnv(); err != nil {
		t.Errorf("%s: auth settings: %v", file, err)
	}
	if slices.Contains(cfg.Transports, "kafka") {
		if _, err := kafka.ConfigFromEnv(); err != nil {
			t.Errorf("%s: Kafka settings: %v", file, err)
		}
	}
	if slices.Contains(cfg.Transports, "amqp") {
		if _, err := amqp.ConfigFromEnv(); err != nil {
			t.Errorf("%s: AMQP settings: %v", file, err)
		}
	}
	if cfg.Store == "clickhouse" {
		if _, err := clickhouse.ConfigFromEnv(); err != nil {
			t.Errorf("%s: ClickHouse settings: %v", file, err)
		}
	}
}

// composeFile is the part of docker-compose.yaml the checks read.
type composeFile struct {
	Services map[string]struct {
		Image       string
		Environment map[string]string
		Volumes     []string
		Healthcheck *struct{ Test []string }
		DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
	}
}

func TestComposeStack(t *testing.T) {
	var c composeFile
	readYAML(t, "docker-compose.yaml", &c)
	for _, want := range []string{"kafka", "rabbitmq", "clickhouse", "auditbus", "prometheus", "grafana", "jaeger"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("docker-compose.yaml: no service %q", want)
		}
	}
	for name, s := range c.Services {
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("docker-compose.yaml: service %q has no healthcheck", name)
		}
		if s.Image == "" || strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":") {
			t.Errorf("docker-compose.yaml: service %q: image %q is not pinned to a tag", name, s.Image)
		}
		for dep, d := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("docker-compose.yaml: service %q depends on %q, which is not a service", name, dep)
			}
			if d.Condition == "" {
				t.Errorf("docker-compose.yaml: service %q depends on %q without a condition", name, dep)
			}
		}
	}
	ab := c.Services["auditbus"]
	routes := ab.Environment["AUDITBUS_ROUTES"]
	mounted := ""
	for _, v := range ab.Volumes {
		if src, dst, ok := strings.Cut(strings.TrimSuffix(v, ":ro"), ":"); ok && dst == routes {
			mounted = src
		}
	}
	if mounted == "" {
		t.Fatalf("docker-compose.yaml: AUDITBUS_ROUTES=%q is not a mounted file", routes)
	}
	if _, err := router.LoadRoutes(filepath.Join(root, mounted)); err != nil {
		t.Errorf("docker-compose.yaml: routes file %s: %v", mounted, err)
	}
	// The routes path is inside the container; the file was checked above.
	// So is the signing key's, a secret each developer makes.
	checkEnv(t, "docker-compose.yaml", ab.Environment, "AUDITBUS_ROUTES", "AUDITBUS_LEDGER_SIGNING_KEY_FILE")
}

func TestPrometheusScrapesCompose(t *testing.T) {
	var p struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string                       `yaml:"job_name"`
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "deploy/prometheus/prometheus.yml", &p)
	if !slices.Contains(p.RuleFiles, "rules.yml") {
		t.Errorf("deploy/prometheus/prometheus.yml: rule_files %v does not load rules.yml", p.RuleFiles)
	}
	found := false
	for _, sc := range p.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			if sc.JobName == "auditbus" && slices.Contains(s.Targets, "auditbus:8080") {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("deploy/prometheus/prometheus.yml: no job \"auditbus\" scraping auditbus:8080, the compose service")
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	var ds struct {
		Datasources []struct{ UID, Type, URL string }
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yaml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].UID != "prometheus" || ds.Datasources[0].Type != "prometheus" {
		t.Errorf("deploy/grafana/provisioning/datasources/prometheus.yaml: want one prometheus data source with uid \"prometheus\" (the dashboard's default), got %+v", ds.Datasources)
	}
	var prov struct {
		Providers []struct {
			Options struct{ Path string }
		}
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/auditbus.yaml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("deploy/grafana/provisioning/dashboards/auditbus.yaml: want one provider reading /var/lib/grafana/dashboards (the compose mount), got %+v", prov.Providers)
	}
}

func TestHelmValues(t *testing.T) {
	var v struct {
		Env    map[string]string
		Routes string
	}
	readYAML(t, "deploy/helm/auditbus/values.yaml", &v)
	f, err := os.CreateTemp(t.TempDir(), "routes-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(v.Routes); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := router.LoadRoutes(f.Name()); err != nil {
		t.Errorf("deploy/helm/auditbus/values.yaml: routes: %v", err)
	}
	checkEnv(t, "deploy/helm/auditbus/values.yaml", v.Env)
}
