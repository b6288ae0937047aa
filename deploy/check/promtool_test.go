package check

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestPrometheusRules checks deploy/prometheus/rules.yml with promtool and
// runs its unit tests (rules_test.yml, which TestEveryAlertIsUnitTested
// keeps complete).
func TestPrometheusRules(t *testing.T) {
	promtool := needPromtool(t)
	dir := filepath.Join(root, "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestPrometheusRulesRefuseBrokenCopies feeds promtool broken copies of
// the rules, each beside the unit tests: a PromQL syntax error and a field
// Prometheus does not know must fail `promtool check rules`, and a changed
// alert threshold or duration must fail `promtool test rules`, so that
// TestPrometheusRules is a check that can fail.
func TestPrometheusRulesRefuseBrokenCopies(t *testing.T) {
	promtool := needPromtool(t)
	src := filepath.Join(root, "deploy", "prometheus")
	rules, err := os.ReadFile(filepath.Join(src, "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join(src, "rules_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, after string // old is replaced at its first place after this, once
		old, new    string
		args        []string // the promtool command that must fail
		want        string   // in its output
	}{
		{"promql syntax", "", "max by (route, destination) (auditbus_destination_circuit_open) == 1",
			"max by (route, destination (auditbus_destination_circuit_open) == 1", []string{"check", "rules", "rules.yml"}, "parse error"},
		{"unknown field", "- alert: AuditbusDown\n", "        for: 2m\n", "        fore: 2m\n", []string{"check", "rules", "rules.yml"}, "fore"},
		{"threshold", "", "(auditbus_kafka_consumer_lag) > 10000", "(auditbus_kafka_consumer_lag) > 1000000",
			[]string{"test", "rules", "rules_test.yml"}, "AuditbusKafkaConsumerLagHigh"},
		{"duration", "- alert: AuditbusKafkaConsumerLagHigh\n", "        for: 10m\n", "        for: 1h\n",
			[]string{"test", "rules", "rules_test.yml"}, "AuditbusKafkaConsumerLagHigh"},
	} {
		t.Run(c.name, func(t *testing.T) {
			head, rest, ok := strings.Cut(string(rules), c.after)
			if !ok || !strings.Contains(rest, c.old) || c.after == "" && strings.Count(rest, c.old) != 1 {
				t.Fatalf("rules.yml has no single %q after %q: update this case to the rules", c.old, c.after)
			}
			dir := t.TempDir()
			broken := head + c.after + strings.Replace(rest, c.old, c.new, 1)
			if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(broken), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "rules_test.yml"), tests, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(promtool, c.args...)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("promtool %v accepted the broken copy:\n%s", c.args, out)
			}
			if !strings.Contains(string(out), c.want) {
				t.Errorf("promtool %v failed without naming %q:\n%s", c.args, c.want, out)
			}
		})
	}
}

// needPromtool is the path of promtool. It comes with Debian's prometheus
// package, which deploy/test-services.sh installs; without it the test
// fails under CI=true and is skipped otherwise.
func needPromtool(t *testing.T) string {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool not found; `make test` installs it (deploy/test-services.sh up: Debian package prometheus)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return promtool
}

// TestEveryAlertIsUnitTested fails when an alert in rules.yml has no case
// in rules_test.yml, so a new alert cannot ship without promtool checking
// when it fires and what it says.
func TestEveryAlertIsUnitTested(t *testing.T) {
	dir := filepath.Join(root, "deploy", "prometheus")
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	for name, v := range map[string]any{"rules.yml": &rules, "rules_test.yml": &tests} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	fires := map[string]bool{} // alert name: some case expects it to fire
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			fires[a.Alertname] = fires[a.Alertname] || len(a.ExpAlerts) > 0
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("alert %s has no case in rules_test.yml where it fires: add one", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("rules.yml has no alerts: the file moved or its shape changed")
	}
}
