package deploycheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type compose struct {
	Services map[string]struct {
		Image       string
		Build       *struct{ Context, Dockerfile string }
		Command     any
		Environment map[string]string
		DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
		Healthcheck *struct{ Test []string }
	}
	Volumes map[string]any
}

func readCompose(t *testing.T) compose {
	t.Helper()
	raw, err := os.ReadFile("../../../deployments/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

func TestComposeFileWiresTheSystem(t *testing.T) {
	c := readCompose(t)
	for _, name := range []string{"postgres", "kafka", "jaeger", "order", "payment"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("no service %s", name)
		}
	}
	for name, s := range c.Services {
		for dep, cond := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
			switch cond.Condition {
			case "service_healthy":
				if c.Services[dep].Healthcheck == nil {
					t.Errorf("%s waits for %s to be healthy, but it has no health check", name, dep)
				}
			case "service_completed_successfully", "service_started":
			default:
				t.Errorf("%s depends on %s with condition %q", name, dep, cond.Condition)
			}
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join("../../../deployments", s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("%s builds from %s: %v", name, s.Build.Dockerfile, err)
			}
		}
	}
	for _, name := range []string{"order", "payment"} {
		s := c.Services[name]
		if s.Healthcheck == nil || strings.Join(s.Healthcheck.Test, " ") != "CMD /service health" {
			t.Errorf("%s has health check %v, want its own health command", name, s.Healthcheck)
		}
		if s.Environment["KAFKA_BROKERS"] != "kafka:9092" || !strings.Contains(s.Environment["DATABASE_URL"], "@postgres:5432/") {
			t.Errorf("%s is not wired to the compose Kafka and PostgreSQL: %v", name, s.Environment)
		}
	}
}

// Every variable the compose file sets for a service is one the README's
// configuration table documents (or a standard OTEL_ one), so a typo cannot
// silently leave a default in place.
func TestComposeSetsOnlyDocumentedVariables(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`([A-Z][A-Z0-9_]+)`").FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = true
	}
	for _, name := range []string{"order", "payment", "order-migrate", "payment-migrate"} {
		for v := range readCompose(t).Services[name].Environment {
			if !documented[v] && !strings.HasPrefix(v, "OTEL_") {
				t.Errorf("%s sets %s, which the README does not document", name, v)
			}
		}
	}
}

func TestDockerfileBuildsSmallNonRootImages(t *testing.T) {
	raw, err := os.ReadFile("../../../deployments/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := string(raw)
	if strings.Count(d, "\nFROM ") < 1 || !strings.Contains(d, "AS build") {
		t.Error("the Dockerfile is not multi-stage")
	}
	if !strings.Contains(d, "distroless") || !strings.Contains(d, "USER nonroot") {
		t.Error("the final image is not distroless and non-root")
	}
}
