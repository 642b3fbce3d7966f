package config

import "strings"

// FieldError is one problem found by Validate: the field's path, such as
// "routes[2].paths[0]" or "services[0].targets[1].url", and what is wrong
// with its value.
type FieldError struct {
	Path    string
	Message string
}

// Error returns "path: message".
func (e FieldError) Error() string { return e.Path + ": " + e.Message }

// Errors is every problem Validate found, in the order of the fields in the
// configuration. Its message lists them one per line.
type Errors []FieldError

// Error lists every problem, one per line.
func (e Errors) Error() string {
	var b strings.Builder
	for i, fe := range e {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(fe.Error())
	}
	return b.String()
}
