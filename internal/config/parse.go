package config

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// Parse decodes a configuration written in YAML or JSON (JSON is a subset of
// YAML). Unknown fields and duplicate keys are errors, so that a misspelt
// option is reported rather than silently ignored. Parse does not validate
// the result; call Config.Validate.
func Parse(data []byte) (Config, error) {
	var c Config
	// UnmarshalStrict converts YAML to JSON guided by the target type (so an
	// unquoted `name: on` stays a string) and decodes it with unknown fields
	// disallowed; YAML syntax errors carry a line number.
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return Config{}, fmt.Errorf("parse config: %w", err)
	}
	return c, nil
}
