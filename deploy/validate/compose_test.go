package validate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeFile is docker-compose.yaml, from this package.
var composeFile = filepath.Join("..", "..", "docker-compose.yaml")

// loadCompose loads content as the compose file in the repository root,
// as `docker compose config` does: against the compose specification's
// schema, with interpolation, normalization and the consistency checks
// (services' networks, volumes, secrets and depends_on all defined).
func loadCompose(content []byte) (*types.Project, error) {
	root, err := filepath.Abs(filepath.Dir(composeFile))
	if err != nil {
		return nil, err
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, "docker-compose.yaml"), Content: content}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.SetProjectName("auditbus", true); o.ResolvePaths = true })
}

func TestComposeFileLoads(t *testing.T) {
	content, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := loadCompose(content)
	if err != nil {
		t.Fatalf("docker-compose.yaml: %v", err)
	}
	for _, name := range []string{"auditbus", "clickhouse", "kafka", "rabbitmq", "prometheus", "grafana"} {
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("docker-compose.yaml has no service %q", name)
			continue
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on %q: publish on 127.0.0.1 only", name, port.Published, port.HostIP)
			}
		}
	}
	// Every file a service mounts from the repository is there.
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s mounts %s, which is not in the repository: %v", name, v.Source, err)
			}
		}
	}
}

// TestComposeRefusesBrokenFiles feeds the loader broken copies of the
// compose file: each must be refused, naming what is wrong.
func TestComposeRefusesBrokenFiles(t *testing.T) {
	content, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	text := string(content)
	for _, c := range []struct {
		name, old, new, want string
	}{
		{"an unknown service field", "services:\n  kafka:\n", "services:\n  kafka:\n    restart_policy_typo: always\n", "restart_policy_typo"},
		{"a port that is not a port", "services:\n  kafka:\n", "services:\n  kafka:\n    ports: [\"127.0.0.1:notaport:9092\"]\n", "port"},
		{"depends_on an undefined service", "services:\n  kafka:\n", "services:\n  kafka:\n    depends_on: [zookeeper]\n", "zookeeper"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(text, c.old) {
				t.Fatalf("docker-compose.yaml no longer holds %q; update the test", c.old)
			}
			_, err := loadCompose([]byte(strings.Replace(text, c.old, c.new, 1)))
			if err == nil {
				t.Fatal("the loader accepted the broken copy")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("the loader refused the broken copy without naming %q: %v", c.want, err)
			}
		})
	}
}
