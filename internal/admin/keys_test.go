package admin_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/admin"
	"github.com/gatehouse-gw/gatehouse/internal/apikey"
	"github.com/gatehouse-gw/gatehouse/internal/registry"
	"github.com/gatehouse-gw/gatehouse/internal/store/boltstore"
)

// keySecret is the server secret of the tests' key managers.
var keySecret = []byte("0123456789abcdef0123456789abcdef")

// keysEnv is an admin API with a real apikey.Manager and Index over a real
// embedded store.
type keysEnv struct {
	*env
	mgr *apikey.Manager
	idx *apikey.Index
	// bodies collects every response body, to search them for hashes.
	bodies []string
}

func newKeysEnv(t *testing.T, cfg admin.Config, secret []byte) *keysEnv {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "gatehouse.db"), boltstore.Options{})
	if err != nil {
		t.Fatalf("boltstore.Open() error = %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{
		st:     st,
		reg:    registry.New(st, registry.Config{}),
		cs:     &storeConfig{st: st},
		status: &status{ready: true, revision: 7},
		logs:   &syncBuffer{},
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kcfg := apikey.Config{Secret: secret}
	idx, err := apikey.NewIndex(st, kcfg, log)
	if err != nil {
		t.Fatalf("apikey.NewIndex() error = %v", err)
	}
	mgr, err := apikey.NewManager(st, idx, kcfg, log)
	if err != nil {
		t.Fatalf("apikey.NewManager() error = %v", err)
	}
	h, err := admin.New(admin.Deps{Config: e.cs, Registry: e.reg, Status: e.status, Keys: mgr}, cfg, log)
	if err != nil {
		t.Fatalf("admin.New() error = %v", err)
	}
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return &keysEnv{env: e, mgr: mgr, idx: idx}
}

// call performs a request that must answer want, keeping its body.
func (k *keysEnv) call(t *testing.T, want int, method, path, body string) response {
	t.Helper()
	r := k.must(t, want, method, path, body)
	k.bodies = append(k.bodies, r.body)
	return r
}

// keyRecord is a key as the admin API shows it, with Hash to catch a hash
// that should not be there.
type keyRecord struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Hash            string            `json:"hash"`
	HashAlg         string            `json:"hash_alg"`
	Prefix          string            `json:"prefix"`
	CreatedAt       time.Time         `json:"created_at"`
	ExpiresAt       time.Time         `json:"expires_at"`
	Revoked         bool              `json:"revoked"`
	RevokedAt       time.Time         `json:"revoked_at"`
	AllowedRoutes   []string          `json:"allowed_routes"`
	AllowedServices []string          `json:"allowed_services"`
	RateLimit       *apikey.Limit     `json:"rate_limit"`
	Quota           *apikey.Quota     `json:"quota"`
	Metadata        map[string]string `json:"metadata"`
}

type createdKey struct {
	Key    keyRecord `json:"key"`
	APIKey *string   `json:"api_key"`
}

func TestKeysLifecycle(t *testing.T) {
	e := newKeysEnv(t, admin.Config{}, keySecret)

	var created createdKey
	r := e.call(t, http.StatusCreated, "POST", "/keys", `{"name":"ci","allowed_routes":["orders"],"rate_limit":{"requests":100,"per":"1m","burst":20},"quota":{"requests":10000,"period":"day"},"metadata":{"team":"web"}}`)
	r.decode(t, &created)
	k := created.Key
	if created.APIKey == nil || !strings.HasPrefix(*created.APIKey, apikey.GeneratedPrefix) {
		t.Fatalf("POST /keys api_key = %v, want a generated key starting with %s", created.APIKey, apikey.GeneratedPrefix)
	}
	clear := *created.APIKey
	if got, want := r.header.Get("Location"), "/keys/"+k.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if k.Name != "ci" || k.HashAlg != string(apikey.HashSHA256) || !strings.HasPrefix(clear, k.Prefix) || k.Prefix == "" ||
		k.RateLimit == nil || k.RateLimit.Requests != 100 || k.RateLimit.Per.Std() != time.Minute || k.RateLimit.Burst != 20 ||
		k.Quota == nil || k.Quota.Period != apikey.PeriodDay || k.Metadata["team"] != "web" || k.CreatedAt.IsZero() {
		t.Errorf("POST /keys key = %+v, want the spec, hash_alg sha256 and the key's prefix", k)
	}
	if _, res := e.idx.Check(clear, time.Now()); res != apikey.Valid {
		t.Errorf("Index.Check(new key) = %v, want valid", res)
	}

	// An empty body is an unrestricted key.
	var bare createdKey
	e.call(t, http.StatusCreated, "POST", "/keys", "").decode(t, &bare)
	if bare.APIKey == nil || bare.Key.ID == "" || bare.Key.ID == k.ID {
		t.Errorf("POST /keys with no body = %+v, want a second key", bare)
	}

	var list struct{ Keys []keyRecord }
	e.call(t, http.StatusOK, "GET", "/keys", "").decode(t, &list)
	if len(list.Keys) != 2 {
		t.Fatalf("GET /keys = %+v, want 2 keys", list)
	}

	var got keyRecord
	e.call(t, http.StatusOK, "GET", "/keys/"+k.ID, "").decode(t, &got)
	if got.ID != k.ID || got.Name != "ci" || got.Quota == nil {
		t.Errorf("GET /keys/%s = %+v, want the created key", k.ID, got)
	}

	// PATCH replaces the fields present, clears those set to null and
	// keeps the others.
	expires := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	got = keyRecord{} // decoding into a used record would keep fields the answer leaves out
	e.call(t, http.StatusOK, "PATCH", "/keys/"+k.ID, `{"name":"ci-2","expires_at":"`+expires.Format(time.RFC3339)+`","allowed_services":["orders","users"],"quota":null}`).decode(t, &got)
	if got.Name != "ci-2" || !got.ExpiresAt.Equal(expires) || len(got.AllowedServices) != 2 || got.Quota != nil ||
		got.RateLimit == nil || len(got.AllowedRoutes) != 1 || got.Metadata["team"] != "web" {
		t.Errorf("PATCH /keys/%s = %+v, want name ci-2, the expiry, 2 services, no quota and the rest kept", k.ID, got)
	}
	if e.must(t, http.StatusOK, "GET", "/keys/"+k.ID, "").decode(t, &got); got.Name != "ci-2" {
		t.Errorf("GET after PATCH name = %q, want ci-2 (stored)", got.Name)
	}

	e.call(t, http.StatusOK, "POST", "/keys/"+k.ID+"/revoke", "").decode(t, &got)
	if !got.Revoked || got.RevokedAt.IsZero() {
		t.Errorf("POST /keys/%s/revoke = %+v, want revoked with a time", k.ID, got)
	}
	// The Manager applies the revocation to the Index before answering, so
	// the very next request with the key is refused.
	if _, res := e.idx.Check(clear, time.Now()); res != apikey.Revoked {
		t.Errorf("Index.Check(revoked key) = %v, want revoked", res)
	}
	var again keyRecord
	e.call(t, http.StatusOK, "POST", "/keys/"+k.ID+"/revoke", "{}").decode(t, &again)
	if !again.RevokedAt.Equal(got.RevokedAt) {
		t.Errorf("revoking twice moved revoked_at from %s to %s", got.RevokedAt, again.RevokedAt)
	}

	e.call(t, http.StatusNoContent, "DELETE", "/keys/"+k.ID, "")
	e.call(t, http.StatusNotFound, "GET", "/keys/"+k.ID, "")
	e.call(t, http.StatusNotFound, "DELETE", "/keys/"+k.ID, "")
	if _, res := e.idx.Check(clear, time.Now()); res != apikey.Unknown {
		t.Errorf("Index.Check(deleted key) = %v, want unknown", res)
	}
	e.call(t, http.StatusOK, "GET", "/keys", "").decode(t, &list)
	if len(list.Keys) != 1 || list.Keys[0].ID != bare.Key.ID {
		t.Errorf("GET /keys after delete = %+v, want only %s", list.Keys, bare.Key.ID)
	}

	stored, err := e.mgr.Get(t.Context(), bare.Key.ID)
	if err != nil {
		t.Fatalf("Manager.Get() error = %v", err)
	}
	for _, b := range e.bodies {
		if strings.Contains(b, `"hash"`) || strings.Contains(b, stored.Hash) {
			t.Errorf("response body holds a hash: %s", b)
		}
	}
	logs := e.logs.String()
	for _, secret := range []string{clear, *bare.APIKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds a clear key:\n%s", logs)
		}
	}
	if !strings.Contains(logs, "key_id="+k.ID) {
		t.Errorf("the log has no audit line naming key_id=%s:\n%s", k.ID, logs)
	}
}

func TestKeysImport(t *testing.T) {
	e := newKeysEnv(t, admin.Config{}, keySecret)

	var created createdKey
	e.call(t, http.StatusCreated, "POST", "/keys", `{"key":"testkey","name":"bootstrap"}`).decode(t, &created)
	if created.APIKey != nil {
		t.Errorf("import answered api_key %q, want it left out (the caller chose the value)", *created.APIKey)
	}
	if created.Key.HashAlg != string(apikey.HashHMACSHA256) || created.Key.Name != "bootstrap" || created.Key.Prefix != "" {
		t.Errorf("imported key = %+v, want hash_alg hmac-sha256, name bootstrap and no prefix (short value)", created.Key)
	}
	if e, res := e.idx.Check("testkey", time.Now()); res != apikey.Valid || e.ID != created.Key.ID {
		t.Errorf("Index.Check(testkey) = %v, want valid for %s", res, created.Key.ID)
	}

	r := e.call(t, http.StatusConflict, "POST", "/keys", `{"key":"testkey"}`)
	var eb errorBody
	r.decode(t, &eb)
	if eb.paths() != "key" {
		t.Errorf("duplicate import details = %q, want key", eb.paths())
	}
	for _, b := range e.bodies {
		if strings.Contains(b, "testkey") {
			t.Errorf("a response echoes the imported value: %s", b)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "testkey") {
		t.Errorf("the log holds the imported value:\n%s", logs)
	}
}

func TestKeysErrors(t *testing.T) {
	e := newKeysEnv(t, admin.Config{}, keySecret)
	var k createdKey
	e.must(t, http.StatusCreated, "POST", "/keys", `{"name":"x"}`).decode(t, &k)
	id := k.Key.ID

	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		want      int
		wantPaths string // details, space-separated
		wantText  string // in the error message
		secret    string // must not be echoed
	}{
		{
			name: "validation details", method: "POST", path: "/keys",
			body:      `{"allowed_routes":["a",""],"rate_limit":{"requests":0,"per":"1m"},"quota":{"requests":5,"period":"week"}}`,
			want:      http.StatusBadRequest,
			wantPaths: "allowed_routes[1] rate_limit.requests quota.period",
		},
		{
			name: "expiry in the past", method: "POST", path: "/keys",
			body: `{"expires_at":"2001-01-01T00:00:00Z"}`, want: http.StatusBadRequest, wantPaths: "expires_at",
		},
		{
			name: "unknown field", method: "POST", path: "/keys",
			body: `{"nmae":"x"}`, want: http.StatusBadRequest, wantPaths: "nmae",
		},
		{
			name: "unknown nested field", method: "POST", path: "/keys",
			body: `{"quota":{"requests":5,"period":"day","burst":1}}`, want: http.StatusBadRequest, wantText: "burst",
		},
		{
			name: "hash cannot be set", method: "POST", path: "/keys",
			body: `{"hash":"00"}`, want: http.StatusBadRequest, wantPaths: "hash",
		},
		{
			name: "imported value too short", method: "POST", path: "/keys",
			body: `{"key":"abc"}`, want: http.StatusBadRequest, wantPaths: "key", secret: "abc",
		},
		{
			name: "imported value with a space", method: "POST", path: "/keys",
			body: `{"key":"open sesame"}`, want: http.StatusBadRequest, wantPaths: "key", secret: "sesame",
		},
		{
			name: "imported value not a string", method: "POST", path: "/keys",
			body: `{"key":12345678}`, want: http.StatusBadRequest, wantPaths: "key", secret: "12345678",
		},
		{
			name: "unknown id", method: "GET", path: "/keys/0123456789ab", want: http.StatusNotFound, wantText: "not found",
		},
		{
			name: "a key in place of an id is not echoed", method: "GET", path: "/keys/gh_s3cretvalue", want: http.StatusNotFound, secret: "s3cret",
		},
		{
			name: "revoke unknown id", method: "POST", path: "/keys/0123456789ab/revoke", want: http.StatusNotFound,
		},
		{
			name: "patch unknown id", method: "PATCH", path: "/keys/0123456789ab", body: `{"name":"y"}`, want: http.StatusNotFound,
		},
		{
			name: "patch empty body", method: "PATCH", path: "/keys/" + id, want: http.StatusBadRequest, wantText: "empty",
		},
		{
			name: "patch unknown field", method: "PATCH", path: "/keys/" + id, body: `{"revoked":false}`, want: http.StatusBadRequest, wantPaths: "revoked",
		},
		{
			name: "patch validation", method: "PATCH", path: "/keys/" + id, body: `{"quota":{"requests":-1,"period":"day"}}`,
			want: http.StatusBadRequest, wantPaths: "quota.requests",
		},
		{
			name: "patch wrong type", method: "PATCH", path: "/keys/" + id, body: `{"allowed_routes":"orders"}`,
			want: http.StatusBadRequest, wantPaths: "allowed_routes",
		},
		{
			name: "revoke with a body", method: "POST", path: "/keys/" + id + "/revoke", body: `{"reason":"x"}`, want: http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(t, tt.method, tt.path, "", tt.body)
			if r.status != tt.want {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.want)
			}
			var eb errorBody
			r.decode(t, &eb)
			if eb.Error == "" {
				t.Errorf("error body %s has no error message", r.body)
			}
			if tt.wantPaths != "" && eb.paths() != tt.wantPaths {
				t.Errorf("details paths = %q, want %q (body %s)", eb.paths(), tt.wantPaths, r.body)
			}
			if tt.wantText != "" && !strings.Contains(r.body, tt.wantText) {
				t.Errorf("body = %s, want it to contain %q", r.body, tt.wantText)
			}
			if tt.secret != "" && strings.Contains(r.body, tt.secret) {
				t.Errorf("body = %s echoes the secret %q", r.body, tt.secret)
			}
		})
	}
	if got, err := e.mgr.Get(t.Context(), id); err != nil || got.Name != "x" || got.Quota != nil || got.Revoked {
		t.Errorf("after rejected changes key = %+v, %v; want it unchanged", got, err)
	}
	if logs := e.logs.String(); strings.Contains(logs, "sesame") || strings.Contains(logs, "s3cret") {
		t.Errorf("the log holds a rejected secret:\n%s", logs)
	}
}

func TestKeysWithoutSecretCannotImport(t *testing.T) {
	e := newKeysEnv(t, admin.Config{}, nil)
	r := e.do(t, "POST", "/keys", "", `{"key":"testkey"}`)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "GATEHOUSE_KEY_SECRET") {
		t.Errorf("import without a secret = %d %s, want 400 naming GATEHOUSE_KEY_SECRET", r.status, r.body)
	}
	// Generated keys need no secret.
	e.must(t, http.StatusCreated, "POST", "/keys", `{}`)
}

func TestKeysNotEnabled(t *testing.T) {
	e := newEnv(t, admin.Config{})
	for _, ep := range []struct{ method, path string }{
		{"GET", "/keys"},
		{"POST", "/keys"},
		{"GET", "/keys/0123456789ab"},
		{"DELETE", "/keys/0123456789ab"},
	} {
		r := e.do(t, ep.method, ep.path, "", "")
		if r.status != http.StatusNotImplemented || !strings.Contains(r.body, "API keys are not enabled") {
			t.Errorf("%s %s without Deps.Keys = %d %s, want 501", ep.method, ep.path, r.status, r.body)
		}
	}
}

func TestKeysAreAdminOnly(t *testing.T) {
	e := newKeysEnv(t, admin.Config{AdminToken: "admin-token", RegisterToken: "register-token"}, keySecret)
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"register token", "register-token", http.StatusForbidden},
		{"admin token", "admin-token", http.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := e.do(t, "POST", "/keys", tt.token, `{}`); r.status != tt.want {
				t.Errorf("POST /keys with %s = %d %s, want %d", tt.name, r.status, r.body, tt.want)
			}
		})
	}
}
