package check

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPrometheusRules checks deploy/prometheus/rules.yml with promtool and
// runs its unit tests (rules_test.yml: the lag, dead-letter, circuit
// breaker, conflict, audit and HTTP alerts). promtool comes with Debian's
// prometheus package, which deploy/test-services.sh installs; without it
// the test fails under CI=true and is skipped otherwise.
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool not found; `make test` installs it (deploy/test-services.sh up: Debian package prometheus)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := filepath.Join(root, "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
