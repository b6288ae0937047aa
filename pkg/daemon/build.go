package daemon

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is the release the daemon reports as service.version and in
// auditbus_build_info; cmd/auditbus sets it from its -ldflags version.
// Empty: the module version the Go build recorded.
var Version = ""

// buildInfo is the daemon's version, VCS revision and Go version.
func buildInfo() (version, revision, goVersion string) {
	version, revision, goVersion = Version, "unknown", runtime.Version()
	if info, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	if version == "" {
		version = "(devel)"
	}
	return version, revision, goVersion
}

// registerBuildInfo adds auditbus_build_info: always 1, the build in its
// labels, so that dashboards can show and join on what runs.
func registerBuildInfo(reg prometheus.Registerer) {
	version, revision, goVersion := buildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "auditbus_build_info",
		Help:        "Always 1; the labels say which auditbus build runs: version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": goVersion},
	})
	g.Set(1)
	reg.MustRegister(g)
}
