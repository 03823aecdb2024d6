//go:build tools

// Package tools pins the Pulumi CLI that lift's
// real-CLI tests run against. `cargo xtask pulumi` builds them.
package tools

import (
	_ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
)
