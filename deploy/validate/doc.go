// Package validate checks the deploy files with the tools they are written
// for, in a module of its own so that none of those tools' modules reach a
// library user's go.sum: the Helm chart with helm (lint, template) and
// every rendered manifest decoded strictly into its typed Kubernetes API
// object, and the compose file with the compose-spec loader. Its tests are
// all it has; `make test` runs them.
package validate
