package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gatehouse-gw/gatehouse/internal/artifact"
)

// Synchronized-mode variables, named in the issue "Synchronized mode on
// Redis and S3". Their presence selects a synchronized mode.
const (
	envSyncRedisURL      = "SYNC_REDIS_URL"
	envSyncRedisPassword = "SYNC_REDIS_PASSWORD"
	envSyncRedisWait     = "SYNC_REDIS_WAIT_REPLICAS"
	envSyncRedisWaitTime = "SYNC_REDIS_WAIT_TIMEOUT"
	envSyncPostgresURL   = "SYNC_POSTGRES_URL"
	envSyncEtcdEndpoints = "SYNC_ETCD_ENDPOINTS"
	envSyncS3Host        = "SYNC_S3_HOST"
	envSyncS3Region      = "SYNC_S3_REGION"
	envSyncS3AccessKey   = "SYNC_S3_ACCESS_KEY"
	envSyncS3SecretKey   = "SYNC_S3_SECRET_KEY"
	envSyncS3Bucket      = "SYNC_S3_BUCKET"
	envSyncS3PathStyle   = "SYNC_S3_PATH_STYLE"
	envEnableConsul      = "ENABLE_CONSUL"
	envNodeID            = "NODE_ID"
	envConsulHTTPAddr    = "CONSUL_HTTP_ADDR"
)

// knownSyncVars are the SYNC_* names gatehouse reads, sorted; any other
// SYNC_* name is a typo.
var knownSyncVars = []string{
	envSyncEtcdEndpoints, envSyncPostgresURL, envSyncRedisPassword, envSyncRedisURL,
	envSyncRedisWait, envSyncRedisWaitTime, envSyncS3AccessKey, envSyncS3Bucket, envSyncS3Host, envSyncS3PathStyle,
	envSyncS3Region, envSyncS3SecretKey,
}

// Synchronized modes, the values of syncEnv.Mode.
const (
	modeRedis    = "redis"
	modePostgres = "postgres"
	modeEtcd     = "etcd"
	modeConsul   = "consul"
)

// maxRedisDB is the highest database number a stock Redis accepts: its
// "databases" directive defaults to 16.
const maxRedisDB = 15

// redisTimeout bounds dialling, each read and each write. It must be
// positive: redisstore.Open refuses a client that could wait forever.
const redisTimeout = 2 * time.Second

// syncEnv is a validated synchronized-mode environment. Its String and
// LogValue never show a secret, only a short hash prefix of it.
type syncEnv struct {
	// Mode is redis, postgres, etcd or consul.
	Mode string
	// Redis is set in redis mode.
	Redis *redisURL
	// PostgresURL is set in postgres mode; it may hold a password.
	PostgresURL string
	// EtcdEndpoints is set in etcd mode: host:port or URLs.
	EtcdEndpoints []string
	// Consul is set in consul mode.
	Consul consulEnv
	// S3 is required in every synchronized mode.
	S3 s3Env
}

// s3Env is the object store shared by the instances.
type s3Env struct {
	Host, Region, AccessKey, SecretKey, Bucket string
	PathStyle                                  bool
}

// consulEnv is Consul mode's node identity and agent address.
type consulEnv struct {
	NodeID, HTTPAddr string
}

// redisURL is a parsed SYNC_REDIS_URL, with SYNC_REDIS_PASSWORD merged in.
type redisURL struct {
	// Scheme is redis, rediss (TLS) or redis+sentinel.
	Scheme string
	// Addrs is the server, or the Sentinels for redis+sentinel.
	Addrs []string
	// MasterName is the Sentinel master name.
	MasterName       string
	DB               int
	Username         string
	Password         string
	SentinelPassword string
	// WaitReplicas is how many replicas must have a durable write (a
	// configuration change, a key, a revocation) before it is
	// acknowledged: SYNC_REDIS_WAIT_REPLICAS, by default 1 behind Sentinel
	// (which fails over to replicas, losing what they lacked) and 0 for a
	// single server.
	WaitReplicas int
	// WaitTimeout bounds that wait: SYNC_REDIS_WAIT_TIMEOUT, default 1s.
	WaitTimeout time.Duration
}

// Options builds go-redis client options; redis.NewUniversalClient turns
// them into a plain client, or a Sentinel-backed failover client when
// MasterName is set. Nothing connects here.
func (r *redisURL) Options() *redis.UniversalOptions {
	o := &redis.UniversalOptions{
		Addrs:            slices.Clone(r.Addrs),
		MasterName:       r.MasterName,
		DB:               r.DB,
		Username:         r.Username,
		Password:         r.Password,
		SentinelPassword: r.SentinelPassword,
		DialTimeout:      redisTimeout,
		ReadTimeout:      redisTimeout,
		WriteTimeout:     redisTimeout,
		// Honour request deadlines, not only the socket timeouts.
		ContextTimeoutEnabled: true,
		// No retries: a command whose reply was lost to a timeout or a
		// dropped connection may already have run, and sending it again
		// would apply a write (a revision bump, a stream entry) twice.
		// The store reports the error and the caller decides.
		MaxRetries: -1,
	}
	if r.Scheme == "rediss" {
		host, _, _ := net.SplitHostPort(r.Addrs[0])
		o.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return o
}

// String is the URL with its passwords replaced by hash prefixes.
func (r *redisURL) String() string {
	var b strings.Builder
	b.WriteString(r.Scheme + "://")
	if r.Username != "" || r.Password != "" {
		b.WriteString(url.PathEscape(r.Username))
		if r.Password != "" {
			b.WriteString(":" + secretHint(r.Password))
		}
		b.WriteString("@")
	}
	b.WriteString(strings.Join(r.Addrs, ","))
	b.WriteString("/")
	if r.MasterName != "" {
		b.WriteString(r.MasterName + "/")
	}
	b.WriteString(strconv.Itoa(r.DB))
	if r.SentinelPassword != "" {
		b.WriteString("?sentinel_password=" + secretHint(r.SentinelPassword))
	}
	return b.String()
}

// String describes e for the start-up log and messages, without secrets.
func (e *syncEnv) String() string {
	var parts []string
	for _, a := range e.attrs() {
		parts = append(parts, a.Key+"="+a.Value.String())
	}
	return strings.Join(parts, " ")
}

// LogValue implements slog.LogValuer with the same redacted fields as String.
func (e *syncEnv) LogValue() slog.Value { return slog.GroupValue(e.attrs()...) }

func (e *syncEnv) attrs() []slog.Attr {
	a := []slog.Attr{slog.String("mode", e.Mode)}
	switch e.Mode {
	case modeRedis:
		a = append(a, slog.String("redis", e.Redis.String()),
			slog.Int("redis_wait_replicas", e.Redis.WaitReplicas), slog.String("redis_wait_timeout", e.Redis.WaitTimeout.String()))
	case modePostgres:
		a = append(a, slog.String("postgres", redactedURL(e.PostgresURL)))
	case modeEtcd:
		a = append(a, slog.String("etcd", strings.Join(e.EtcdEndpoints, ",")))
	case modeConsul:
		a = append(a, slog.String("node_id", e.Consul.NodeID), slog.String("consul", e.Consul.HTTPAddr))
	}
	return append(a,
		slog.String("s3_host", e.S3.Host),
		slog.String("s3_region", e.S3.Region),
		slog.String("s3_bucket", e.S3.Bucket),
		slog.String("s3_access_key", e.S3.AccessKey),
		slog.String("s3_secret_key", secretHint(e.S3.SecretKey)),
		slog.Bool("s3_path_style", e.S3.PathStyle),
	)
}

// secretHint stands for a secret in messages: enough to tell two apart,
// nothing to recover it from.
func secretHint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:4])
}

// redactedURL shows a URL without its password and query (libpq URLs may
// carry password=...). A URL that does not parse is not shown at all.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

// syncProblems gathers what is wrong, to report it all in one error.
type syncProblems struct {
	missing []string
	invalid []syncProblem
}

type syncProblem struct{ name, msg string }

func (p *syncProblems) bad(name, format string, args ...any) {
	p.invalid = append(p.invalid, syncProblem{name, fmt.Sprintf(format, args...)})
}

func (p *syncProblems) err(selectedBy []string) error {
	if len(p.missing) == 0 && len(p.invalid) == 0 {
		return nil
	}
	slices.Sort(p.missing)
	slices.SortStableFunc(p.invalid, func(a, b syncProblem) int { return strings.Compare(a.name, b.name) })
	var parts []string
	if len(p.missing) > 0 {
		parts = append(parts, strings.Join(p.missing, ", ")+" (missing)")
	}
	for _, q := range p.invalid {
		parts = append(parts, q.msg)
	}
	verb := "needs"
	if len(p.missing) == 0 {
		verb = "is invalid"
	}
	return fmt.Errorf("synchronized mode (selected by %s) %s: %s; fix them, or unset the SYNC_* variables to run single-instance",
		strings.Join(selectedBy, ", "), verb, strings.Join(parts, "; "))
}

// parseSyncEnv reads the synchronized-mode variables. With none set (and
// ENABLE_CONSUL not true) it returns nil, nil: single-instance mode. An
// empty variable counts as unset, as elsewhere in serve's environment.
// Every problem is reported in one error that names the variables and
// never shows a secret.
func parseSyncEnv(vars map[string]string) (*syncEnv, error) {
	var p syncProblems
	var set, unknown []string
	for name, v := range vars {
		if strings.HasPrefix(name, "SYNC_") && v != "" {
			set = append(set, name)
			if !slices.Contains(knownSyncVars, name) {
				unknown = append(unknown, name)
			}
		}
	}
	slices.Sort(set)
	slices.Sort(unknown)

	consul := false
	if raw := vars[envEnableConsul]; raw != "" {
		on, err := strconv.ParseBool(raw)
		if err != nil {
			p.bad(envEnableConsul, "%s %q is not true or false", envEnableConsul, raw)
		}
		consul = on
	}
	if len(set) == 0 && !consul {
		return nil, p.err([]string{envEnableConsul})
	}

	// Each mode has one selecting variable; more than one is ambiguous.
	var selectors, modes []string
	for _, s := range []struct{ name, mode string }{
		{envSyncRedisURL, modeRedis}, {envSyncPostgresURL, modePostgres}, {envSyncEtcdEndpoints, modeEtcd},
	} {
		if vars[s.name] != "" {
			selectors, modes = append(selectors, s.name), append(modes, s.mode)
		}
	}
	if consul {
		selectors, modes = append(selectors, envEnableConsul+"=true"), append(modes, modeConsul)
	}
	selectedBy := selectors
	if len(selectedBy) == 0 {
		selectedBy = set
		if len(selectedBy) == 0 {
			selectedBy = []string{envEnableConsul}
		}
	}

	e := &syncEnv{Mode: modeRedis} // the default synchronized mode
	switch len(modes) {
	case 0:
		p.missing = append(p.missing, envSyncRedisURL)
	case 1:
		e.Mode = modes[0]
	default:
		e.Mode = ""
		p.bad(selectors[0], "%s each select a mode (%s); set only one", strings.Join(selectors, ", "), strings.Join(modes, ", "))
	}
	if len(unknown) > 0 {
		p.bad(unknown[0], "%s: not a known variable (known: %s)", strings.Join(unknown, ", "), strings.Join(knownSyncVars, ", "))
	}

	if raw := vars[envSyncRedisURL]; raw != "" {
		e.Redis = parseRedisURL(raw, &p)
	}
	if pw := vars[envSyncRedisPassword]; pw != "" {
		switch {
		case vars[envSyncRedisURL] == "":
			p.bad(envSyncRedisPassword, "%s is set, but only %s uses it", envSyncRedisPassword, envSyncRedisURL)
		case e.Redis == nil:
		case e.Redis.Password == "":
			e.Redis.Password = pw
		case subtle.ConstantTimeCompare([]byte(pw), []byte(e.Redis.Password)) != 1:
			p.bad(envSyncRedisPassword, "%s and the password in %s differ; set only one", envSyncRedisPassword, envSyncRedisURL)
		}
	}
	if e.Redis != nil {
		parseRedisWait(vars, e.Redis, &p)
	} else {
		for _, name := range []string{envSyncRedisWait, envSyncRedisWaitTime} {
			if vars[name] != "" {
				p.bad(name, "%s is set, but only %s uses it", name, envSyncRedisURL)
			}
		}
	}
	if raw := vars[envSyncPostgresURL]; raw != "" {
		e.PostgresURL = raw
		checkPostgresURL(raw, &p)
	}
	if raw := vars[envSyncEtcdEndpoints]; raw != "" {
		for _, ep := range strings.Split(raw, ",") {
			ep = strings.TrimSpace(ep)
			if err := checkEndpoint(ep); err != nil {
				p.bad(envSyncEtcdEndpoints, "%s entry %s", envSyncEtcdEndpoints, err)
				continue
			}
			e.EtcdEndpoints = append(e.EtcdEndpoints, ep)
		}
	}
	if consul {
		e.Consul = consulEnv{NodeID: vars[envNodeID], HTTPAddr: vars[envConsulHTTPAddr]}
		if e.Consul.NodeID == "" {
			p.missing = append(p.missing, envNodeID)
		}
		if e.Consul.HTTPAddr == "" {
			p.missing = append(p.missing, envConsulHTTPAddr)
		} else if err := checkEndpoint(e.Consul.HTTPAddr); err != nil {
			p.bad(envConsulHTTPAddr, "%s %s", envConsulHTTPAddr, err)
		}
	}

	required := func(name string) string {
		v := vars[name]
		if v == "" {
			p.missing = append(p.missing, name)
		}
		return v
	}
	e.S3 = s3Env{
		Host:      required(envSyncS3Host),
		Region:    required(envSyncS3Region),
		AccessKey: required(envSyncS3AccessKey),
		SecretKey: required(envSyncS3SecretKey),
		Bucket:    required(envSyncS3Bucket),
	}
	if h := e.S3.Host; h != "" {
		if err := artifact.CheckEndpoint(h); err != nil {
			p.bad(envSyncS3Host, "%s: %v", envSyncS3Host, err)
		}
	}
	if b := e.S3.Bucket; b != "" {
		if err := artifact.CheckBucket(b); err != nil {
			p.bad(envSyncS3Bucket, "%s: %v", envSyncS3Bucket, err)
		}
	}
	if raw := vars[envSyncS3PathStyle]; raw != "" {
		switch raw {
		case "true":
			e.S3.PathStyle = true
		case "false":
		default:
			p.bad(envSyncS3PathStyle, "%s %q is not true or false", envSyncS3PathStyle, raw)
		}
	}

	if err := p.err(selectedBy); err != nil {
		return nil, err
	}
	return e, nil
}

// parseRedisWait reads SYNC_REDIS_WAIT_REPLICAS and SYNC_REDIS_WAIT_TIMEOUT
// into r, with their defaults.
func parseRedisWait(vars map[string]string, r *redisURL, p *syncProblems) {
	r.WaitTimeout = time.Second
	if r.MasterName != "" {
		r.WaitReplicas = 1
	}
	if raw := vars[envSyncRedisWait]; raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 0 || n > 16 {
			p.bad(envSyncRedisWait, "%s %q is not a number of replicas from 0 to 16", envSyncRedisWait, raw)
		} else {
			r.WaitReplicas = n
		}
	}
	if raw := vars[envSyncRedisWaitTime]; raw != "" {
		d, err := time.ParseDuration(raw)
		// WAIT's answer is read under the client's read timeout, so the
		// wait must end well before it.
		if maxWait := redisTimeout - 500*time.Millisecond; err != nil || d < time.Millisecond || d > maxWait {
			p.bad(envSyncRedisWaitTime, "%s %q is not a duration from 1ms to %s, below the %s Redis read timeout (e.g. 500ms)", envSyncRedisWaitTime, raw, maxWait, redisTimeout)
		} else {
			r.WaitTimeout = d
		}
	}
}

// parseRedisURL parses redis://[user][:password@]host:port/db, rediss://
// (the same, over TLS) and redis+sentinel://[:password@]s1:port,s2:port/
// master/db[?sentinel_password=...]. It is hand-rolled because a Sentinel
// list is not a valid URL host, and because url.Parse errors quote the
// whole input, password included. Problems name only the redacted parts.
func parseRedisURL(raw string, p *syncProblems) *redisURL {
	const name = envSyncRedisURL
	const forms = "redis://host:6379/2, rediss://host:6379/2 or redis+sentinel://s1:26379,s2:26379/mymaster/2"
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		p.bad(name, "%s is not a URL like %s", name, forms)
		return nil
	}
	defaultPort := "6379"
	switch scheme {
	case "redis", "rediss":
	case "redis+sentinel":
		defaultPort = "26379"
	default:
		p.bad(name, "%s scheme %q is not redis, rediss or redis+sentinel (like %s)", name, scheme, forms)
		return nil
	}
	r := &redisURL{Scheme: scheme}
	bad := len(p.invalid)

	rest, query, _ := strings.Cut(rest, "?")
	if strings.Contains(query, "#") || strings.Contains(rest, "#") {
		p.bad(name, "%s has a #fragment; remove it", name)
	}
	authority, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		user, pass, _ := strings.Cut(authority[:i], ":")
		authority = authority[i+1:]
		var err1, err2 error
		r.Username, err1 = url.PathUnescape(user)
		r.Password, err2 = url.PathUnescape(pass)
		if err1 != nil || err2 != nil {
			p.bad(name, "%s user or password has a bad %%-escape", name)
		}
	}

	hosts := strings.Split(authority, ",")
	if scheme != "redis+sentinel" && len(hosts) > 1 {
		p.bad(name, "%s lists %d hosts; only redis+sentinel:// takes several", name, len(hosts))
	}
	for _, h := range hosts {
		addr, err := hostPort(h, defaultPort)
		if err != nil {
			p.bad(name, "%s host %s", name, err)
			continue
		}
		r.Addrs = append(r.Addrs, addr)
	}

	db := path
	if scheme == "redis+sentinel" {
		r.MasterName, db, _ = strings.Cut(path, "/")
		if r.MasterName == "" {
			p.bad(name, "%s names no Sentinel master; use %s", name, "redis+sentinel://s1:26379,s2:26379/mymaster/2")
		}
	}
	db = strings.TrimSuffix(db, "/")
	switch n, err := strconv.Atoi(db); {
	case db == "":
		p.bad(name, "%s has no database number; add it as the last path segment, e.g. /2 (0..%d)", name, maxRedisDB)
	case err != nil:
		p.bad(name, "%s database %q is not a number 0..%d", name, db, maxRedisDB)
	case n < 0 || n > maxRedisDB:
		p.bad(name, "%s database %d is out of range 0..%d (Redis's default of 16 databases)", name, n, maxRedisDB)
	default:
		r.DB = n
	}

	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			// The error would quote the query, which may hold a password.
			p.bad(name, "%s query does not parse", name)
		}
		for k, v := range q {
			if k == "sentinel_password" && scheme == "redis+sentinel" {
				r.SentinelPassword = v[len(v)-1]
				continue
			}
			p.bad(name, "%s parameter %q is not supported (only sentinel_password, with redis+sentinel://)", name, k)
		}
	}
	if len(p.invalid) > bad {
		return nil
	}
	return r
}

// hostPort checks a host[:port], adding defaultPort when there is none.
// Errors quote h, which holds no secret.
func hostPort(h, defaultPort string) (string, error) {
	host, port, err := net.SplitHostPort(h)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), defaultPort
	}
	if host == "" || strings.ContainsAny(host, " /@[]") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return "", fmt.Errorf("%q is not host:port", h)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("%q has a bad port", h)
	}
	return net.JoinHostPort(host, port), nil
}

// checkEndpoint accepts host:port or an http(s):// URL with a host. Errors
// show a URL redacted, and a non-URL only if it cannot hold a password.
func checkEndpoint(ep string) error {
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return errors.New("is not a URL (value not shown: it may hold a password)")
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%q is not host:port or an http(s):// URL", u.Redacted())
		}
		return nil
	}
	if _, port, err := net.SplitHostPort(ep); err != nil || port == "" {
		if strings.Contains(ep, "@") {
			return errors.New("is not host:port or an http(s):// URL")
		}
		return fmt.Errorf("%q is not host:port or an http(s):// URL", ep)
	}
	return nil
}

// checkPostgresURL checks SYNC_POSTGRES_URL's shape without connecting.
func checkPostgresURL(raw string, p *syncProblems) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		// url.Parse's error quotes the input, password included.
		p.bad(envSyncPostgresURL, "%s is not a URL like postgres://user@host:5432/db (value not shown: it may hold a password)", envSyncPostgresURL)
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		p.bad(envSyncPostgresURL, "%s scheme %q is not postgres or postgresql", envSyncPostgresURL, u.Scheme)
	case u.Host == "":
		p.bad(envSyncPostgresURL, "%s %s has no host", envSyncPostgresURL, redactedURL(raw))
	}
}
