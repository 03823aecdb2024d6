//go:build tools

// Package tools pins the Pulumi YAML language host that lift's real-CLI
// tests run their programs with. It is a module of its own because
// pulumi-yaml builds against an older pulumi/pkg than the CLI in ../pulumi;
// one module would force both onto one version. `cargo xtask pulumi` builds it.
package tools

import (
	_ "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml"
)
