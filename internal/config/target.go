package config

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// UnmarshalJSON accepts either a URL string ("http://10.0.0.7:8080") or an
// object {"url": ..., "weight": ...}; unknown object fields are rejected.
// Target marshals as an object (the default encoding).
func (t *Target) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		*t = Target{URL: s}
		return nil
	}
	// plain has Target's fields but not its methods, so decoding into it
	// does not recurse into this method.
	type plain Target
	var p plain
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("target must be a URL string or an object {url, weight}: %w", err)
	}
	*t = Target(p)
	return nil
}
