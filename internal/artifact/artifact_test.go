package artifact

import (
	"strings"
	"testing"
)

func TestValidDigest(t *testing.T) {
	good := digestOf([]byte("x"))
	for _, tc := range []struct {
		name    string
		in      string
		wantErr string // empty: valid
	}{
		{"sha256", good, ""},
		{"empty", "", `invalid digest "": 0 characters`},
		{"short", good[:63], "63 characters"},
		{"long", good + "0", "65 characters"},
		{"upper case", strings.ToUpper(good), "want lowercase hex"},
		{"not hex", "z" + good[1:], `character 'z' at offset 0`},
		{"long input clipped", strings.Repeat("a", 500), `"` + strings.Repeat("a", 80) + `..."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidDigest(tc.in)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("ValidDigest(%q) = %v, want nil", tc.in, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("ValidDigest(%q) = %v, want an error containing %q", tc.in, err, tc.wantErr)
			}
		})
	}
}

func TestNormalizeContentType(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{"", DefaultContentType, false},
		{"application/json", "application/json", false},
		{"text/plain; charset=utf-8", "text/plain; charset=utf-8", false},
		{"text/plain\r\nX-Injected: 1", "", true},
		{"text/plain\x00", "", true},
		{"text/\u00e9", "", true},
		{strings.Repeat("a", 257), "", true},
	} {
		got, err := normalizeContentType(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("normalizeContentType(%q) = %q, %v, want %q, error %t", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
