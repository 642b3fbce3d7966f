package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/telemetry"
)

// settings are the serve command's inputs, from flags with environment
// variables as defaults.
type settings struct {
	listen        string
	adminListen   string
	dataDir       string
	configFile    string
	tlsCert       string
	tlsKey        string
	trusted       []netip.Prefix
	drainTimeout  time.Duration
	logLevel      string
	adminToken    string
	registerToken string
	keySecret     string
	// accessLog turns the JSON access log on standard output on or off.
	accessLog bool
	// tracing is read from the standard OTEL_* variables; its zero value
	// (no endpoint) exports nothing but still propagates trace context.
	tracing telemetry.TracingConfig
	// sync is the synchronized mode (nil: single-instance), and nodeID
	// this instance's name in it (NODE_ID, or generated).
	sync   *syncEnv
	nodeID string
}

// env names, documented in the README's configuration reference.
const (
	envListen         = "GATEHOUSE_LISTEN"
	envAdminListen    = "GATEHOUSE_ADMIN_LISTEN"
	envDataDir        = "GATEHOUSE_DATA_DIR"
	envConfig         = "GATEHOUSE_CONFIG"
	envTLSCert        = "GATEHOUSE_TLS_CERT"
	envTLSKey         = "GATEHOUSE_TLS_KEY"
	envTrustedProxies = "GATEHOUSE_TRUSTED_PROXIES"
	envDrainTimeout   = "GATEHOUSE_DRAIN_TIMEOUT"
	envLogLevel       = "GATEHOUSE_LOG_LEVEL"
	envAdminToken     = "GATEHOUSE_ADMIN_TOKEN"
	envRegisterToken  = "GATEHOUSE_REGISTER_TOKEN"
	envAdmin          = "GATEHOUSE_ADMIN"
	envKeySecret      = "GATEHOUSE_KEY_SECRET"
	envAccessLog      = "GATEHOUSE_ACCESS_LOG"
)

// parseSettings reads serve's flags and environment. Every problem found is
// reported in one error, each naming the flag or variable and its value.
func parseSettings(args []string, environ []string, stderr io.Writer) (settings, error) {
	vars := make(map[string]string, len(environ))
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		vars[name] = value
	}
	getenv := func(name string) string { return vars[name] }
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var s settings
	var trusted, drain string
	fs := newFlagSet("serve", "serve [flags]", stderr)
	fs.StringVar(&s.listen, "listen", env(envListen, ":8080"), "proxy listen address (env "+envListen+")")
	fs.StringVar(&s.adminListen, "admin-listen", env(envAdminListen, "127.0.0.1:9876"), "admin API listen address (env "+envAdminListen+"); off loopback it requires "+envAdminToken)
	fs.StringVar(&s.dataDir, "data-dir", env(envDataDir, "./data"), "directory of the embedded store, the API key secret and artifacts; with SYNC_* set (synchronized mode, see README) only the artifact cache (env "+envDataDir+")")
	fs.StringVar(&s.configFile, "config", env(envConfig, ""), "YAML or JSON configuration applied at start, replacing the stored one (env "+envConfig+")")
	fs.StringVar(&s.tlsCert, "tls-cert", env(envTLSCert, ""), "PEM certificate for the proxy listener; enables HTTPS and HTTP/2 by ALPN (env "+envTLSCert+")")
	fs.StringVar(&s.tlsKey, "tls-key", env(envTLSKey, ""), "PEM private key for --tls-cert (env "+envTLSKey+")")
	fs.StringVar(&trusted, "trusted-proxies", env(envTrustedProxies, ""), "comma-separated CIDRs whose X-Forwarded-* headers are trusted (env "+envTrustedProxies+")")
	fs.StringVar(&drain, "drain-timeout", env(envDrainTimeout, "30s"), "how long SIGTERM waits for in-flight requests (env "+envDrainTimeout+")")
	fs.StringVar(&s.logLevel, "log-level", env(envLogLevel, "info"), "debug, info, warn or error (env "+envLogLevel+")")
	accessLog := boolFlag(env(envAccessLog, "true"))
	fs.Var(&accessLog, "access-log", "write one JSON line per proxied request to standard output; --access-log=false turns it off (env "+envAccessLog+")")
	if err := parseFlags(fs, args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, usagef("serve takes no arguments, got %q", fs.Args())
	}
	s.adminToken = getenv(envAdminToken)
	s.registerToken = getenv(envRegisterToken)
	s.keySecret = getenv(envKeySecret)

	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if se, err := parseSyncEnv(vars); err != nil {
		errs = append(errs, err)
	} else if se != nil && se.Mode != modeRedis {
		bad("synchronized mode %s (%s) is recognised and valid, but not implemented in this build of gatehouse yet; use SYNC_REDIS_URL, or unset the SYNC_* variables to run single-instance",
			se.Mode, se)
	} else {
		s.sync = se
	}
	s.nodeID = getenv(envNodeID)
	if _, _, err := net.SplitHostPort(s.listen); err != nil {
		bad("--listen (%s) %q is not host:port: %v", envListen, s.listen, err)
	}
	if host, _, err := net.SplitHostPort(s.adminListen); err != nil {
		bad("--admin-listen (%s) %q is not host:port: %v", envAdminListen, s.adminListen, err)
	} else if !isLoopback(host) && s.adminToken == "" {
		bad("--admin-listen (%s) %q is not a loopback address: set %s to a secret bearer token to expose the admin API, or listen on 127.0.0.1",
			envAdminListen, s.adminListen, envAdminToken)
	}
	if s.registerToken != "" && s.adminToken == "" && !isLoopbackAddr(s.adminListen) {
		bad("%s is set without %s", envRegisterToken, envAdminToken)
	}
	if (s.tlsCert == "") != (s.tlsKey == "") {
		bad("--tls-cert (%s) and --tls-key (%s) must be set together", envTLSCert, envTLSKey)
	}
	for _, part := range strings.Split(trusted, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			if a, aerr := netip.ParseAddr(part); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				bad("--trusted-proxies (%s) entry %q is not a CIDR or IP address", envTrustedProxies, part)
				continue
			}
		}
		s.trusted = append(s.trusted, p.Masked())
	}
	d, err := time.ParseDuration(drain)
	switch {
	case err != nil:
		bad("--drain-timeout (%s) %q is not a duration like 30s", envDrainTimeout, drain)
	case d < 0:
		bad("--drain-timeout (%s) %q is negative", envDrainTimeout, drain)
	}
	s.drainTimeout = d
	switch s.logLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("--log-level (%s) %q is not one of debug, info, warn, error", envLogLevel, s.logLevel)
	}
	if s.dataDir == "" {
		bad("--data-dir (%s) is empty", envDataDir)
	}
	if err := checkKeySecretEnv(s.keySecret); err != nil {
		errs = append(errs, err)
	}
	if on, err := strconv.ParseBool(string(accessLog)); err != nil {
		bad("--access-log (%s) %q is not true or false", envAccessLog, string(accessLog))
	} else {
		s.accessLog = on
	}
	if tc, err := telemetry.TracingConfigFromEnv(getenv); err != nil {
		errs = append(errs, err)
	} else {
		s.tracing = tc
	}
	if len(errs) > 0 {
		return s, fmt.Errorf("cannot start:\n  %w", joinLines(errs))
	}
	return s, nil
}

func isLoopbackAddr(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	return err == nil && isLoopback(host)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// joinLines joins errors one per line, indented under "cannot start:".
func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}
