package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// Distinctive secrets, asserted absent from every error and String.
const (
	secretRedisPW    = "redispw-Zq81xK"
	secretEnvPW      = "envpw-Jm44vB"
	secretSentinelPW = "sentpw-Hy27cN"
	secretS3Key      = "s3secret-Wp93dR"
	secretPGPW       = "pgpw-Lk55sT"
)

var allSecrets = []string{secretRedisPW, secretEnvPW, secretSentinelPW, secretS3Key, secretPGPW}

// s3Vars is a complete S3 configuration.
func s3Vars() map[string]string {
	return map[string]string{
		"SYNC_S3_HOST":       "minio:9000",
		"SYNC_S3_REGION":     "eu-west-1",
		"SYNC_S3_ACCESS_KEY": "AKIDEXAMPLE",
		"SYNC_S3_SECRET_KEY": secretS3Key,
		"SYNC_S3_BUCKET":     "gatehouse",
	}
}

// with returns s3Vars plus extra; an empty value in extra deletes the name.
func with(extra map[string]string) map[string]string {
	v := s3Vars()
	for k, x := range extra {
		if x == "" {
			delete(v, k)
			continue
		}
		v[k] = x
	}
	return v
}

func TestParseSyncEnv(t *testing.T) {
	tests := []struct {
		name    string
		vars    map[string]string
		mode    string   // "" with wantErr empty: single-instance (nil)
		wantErr []string // substrings of the error, in this order
		check   func(t *testing.T, e *syncEnv)
	}{
		{
			name: "none set",
			vars: map[string]string{"GATEHOUSE_LISTEN": ":8080", "NODE_ID": "n1", "SYNC_REDIS_URL": ""},
		},
		{
			name: "ENABLE_CONSUL false",
			vars: map[string]string{"ENABLE_CONSUL": "false"},
		},
		{
			name: "complete redis",
			vars: with(map[string]string{"SYNC_REDIS_URL": "redis://:" + secretRedisPW + "@redis.internal:6379/2", "SYNC_S3_PATH_STYLE": "true"}),
			mode: modeRedis,
			check: func(t *testing.T, e *syncEnv) {
				o := e.Redis.Options()
				if !slices.Equal(o.Addrs, []string{"redis.internal:6379"}) || o.DB != 2 || o.Password != secretRedisPW || o.MasterName != "" || o.TLSConfig != nil {
					t.Errorf("Options() = addrs %v db %d master %q tls %v, want redis.internal:6379 db 2, the URL password, no master, no TLS", o.Addrs, o.DB, o.MasterName, o.TLSConfig)
				}
				if o.ReadTimeout != 2*time.Second || o.WriteTimeout != 2*time.Second || o.DialTimeout != 2*time.Second || !o.ContextTimeoutEnabled || o.MaxRetries != -1 {
					t.Errorf("Options() timeouts %v/%v/%v ctx %v retries %d, want 2s each, true, -1", o.ReadTimeout, o.WriteTimeout, o.DialTimeout, o.ContextTimeoutEnabled, o.MaxRetries)
				}
				if s := o.Simple(); s.Addr != "redis.internal:6379" || s.DB != 2 {
					t.Errorf("Simple() = %s db %d", s.Addr, s.DB)
				}
				if want := (s3Env{Host: "minio:9000", Region: "eu-west-1", AccessKey: "AKIDEXAMPLE", SecretKey: secretS3Key, Bucket: "gatehouse", PathStyle: true}); e.S3 != want {
					t.Errorf("S3 = %+v, want %+v", e.S3, want)
				}
			},
		},
		{
			name:    "every required one missing, listed at once",
			vars:    map[string]string{"SYNC_S3_PATH_STYLE": "false"},
			wantErr: []string{"selected by SYNC_S3_PATH_STYLE", "needs: SYNC_REDIS_URL, SYNC_S3_ACCESS_KEY, SYNC_S3_BUCKET, SYNC_S3_HOST, SYNC_S3_REGION, SYNC_S3_SECRET_KEY (missing)", "single-instance"},
		},
		{
			name:    "redis URL alone",
			vars:    map[string]string{"SYNC_REDIS_URL": "redis://127.0.0.1:6379/0"},
			wantErr: []string{"selected by SYNC_REDIS_URL", "needs: SYNC_S3_ACCESS_KEY, SYNC_S3_BUCKET, SYNC_S3_HOST, SYNC_S3_REGION, SYNC_S3_SECRET_KEY (missing)"},
		},
		{
			name:    "two missing and bad path style",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis://h:6379/1", "SYNC_S3_BUCKET": "", "SYNC_S3_REGION": "", "SYNC_S3_PATH_STYLE": "yes"}),
			wantErr: []string{`needs: SYNC_S3_BUCKET, SYNC_S3_REGION (missing); SYNC_S3_PATH_STYLE "yes" is not true or false`},
		},
		{
			name:    "bad S3 endpoint and bucket name",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis://h:6379/1", "SYNC_S3_HOST": "ftp://s3.internal", "SYNC_S3_BUCKET": "Not_A_Bucket"}),
			wantErr: []string{`SYNC_S3_HOST: endpoint "ftp://s3.internal" has scheme "ftp"`, `SYNC_S3_BUCKET: bucket "Not_A_Bucket" is not a valid bucket name`},
		},
		{
			name:    "S3 endpoint with credentials is refused without quoting them",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis://h:6379/1", "SYNC_S3_HOST": "http://user:" + secretPGPW + "@s3.internal:9000"}),
			wantErr: []string{"SYNC_S3_HOST: endpoint holds credentials"},
		},
		{
			name:    "URL without db",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis://:" + secretRedisPW + "@h:6379"}),
			wantErr: []string{"SYNC_REDIS_URL has no database number", "0..15"},
		},
		{
			name:    "db out of range",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis://h:6379/16"}),
			wantErr: []string{"SYNC_REDIS_URL database 16 is out of range 0..15", "16 databases"},
		},
		{
			name:    "db not a number",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis://h:6379/two"}),
			wantErr: []string{`SYNC_REDIS_URL database "two" is not a number`},
		},
		{
			name:    "non-redis scheme",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "http://user:" + secretRedisPW + "@h:6379/0"}),
			wantErr: []string{`SYNC_REDIS_URL scheme "http" is not redis, rediss or redis+sentinel`},
		},
		{
			name:    "not a URL",
			vars:    with(map[string]string{"SYNC_REDIS_URL": secretRedisPW}),
			wantErr: []string{"SYNC_REDIS_URL is not a URL like redis://"},
		},
		{
			name:    "several hosts without sentinel",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis://a:6379,b:6379/0"}),
			wantErr: []string{"lists 2 hosts; only redis+sentinel"},
		},
		{
			name:    "unsupported parameter",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis://h/0?sentinel_password=" + secretSentinelPW}),
			wantErr: []string{`parameter "sentinel_password" is not supported`},
		},
		{
			name: "sentinel form",
			vars: with(map[string]string{"SYNC_REDIS_URL": "redis+sentinel://:" + secretRedisPW + "@s1:26379,s2:26380,s3/mymaster/3?sentinel_password=" + secretSentinelPW}),
			mode: modeRedis,
			check: func(t *testing.T, e *syncEnv) {
				f := e.Redis.Options().Failover()
				if want := []string{"s1:26379", "s2:26380", "s3:26379"}; !slices.Equal(f.SentinelAddrs, want) {
					t.Errorf("SentinelAddrs = %v, want %v", f.SentinelAddrs, want)
				}
				if f.MasterName != "mymaster" || f.DB != 3 || f.Password != secretRedisPW || f.SentinelPassword != secretSentinelPW || f.MaxRetries != -1 {
					t.Errorf("Failover() = master %q db %d password ok %v sentinel password ok %v retries %d", f.MasterName, f.DB, f.Password == secretRedisPW, f.SentinelPassword == secretSentinelPW, f.MaxRetries)
				}
			},
		},
		{
			name:    "sentinel without master",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis+sentinel://s1:26379/"}),
			wantErr: []string{"names no Sentinel master", "has no database number"},
		},
		{
			name: "rediss gives TLS",
			vars: with(map[string]string{"SYNC_REDIS_URL": "rediss://cache.example.com:6380/0"}),
			mode: modeRedis,
			check: func(t *testing.T, e *syncEnv) {
				c := e.Redis.Options().TLSConfig
				if c == nil || c.ServerName != "cache.example.com" || c.MinVersion != tls.VersionTLS12 {
					t.Errorf("TLSConfig = %+v, want ServerName cache.example.com, MinVersion TLS 1.2", c)
				}
			},
		},
		{
			name: "password from env",
			vars: with(map[string]string{"SYNC_REDIS_URL": "redis://h:6379/0", "SYNC_REDIS_PASSWORD": secretEnvPW}),
			mode: modeRedis,
			check: func(t *testing.T, e *syncEnv) {
				if e.Redis.Options().Password != secretEnvPW {
					t.Errorf("Password is not SYNC_REDIS_PASSWORD")
				}
			},
		},
		{
			name: "password in URL and env equal",
			vars: with(map[string]string{"SYNC_REDIS_URL": "redis://:" + secretRedisPW + "@h:6379/0", "SYNC_REDIS_PASSWORD": secretRedisPW}),
			mode: modeRedis,
		},
		{
			name:    "password in URL and env differ",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis://:" + secretRedisPW + "@h:6379/0", "SYNC_REDIS_PASSWORD": secretEnvPW}),
			wantErr: []string{"SYNC_REDIS_PASSWORD and the password in SYNC_REDIS_URL differ"},
		},
		{
			name:    "conflicting modes",
			vars:    with(map[string]string{"SYNC_REDIS_URL": "redis://h/0", "SYNC_ETCD_ENDPOINTS": "e1:2379", "ENABLE_CONSUL": "true", "NODE_ID": "n1", "CONSUL_HTTP_ADDR": "127.0.0.1:8500"}),
			wantErr: []string{"SYNC_REDIS_URL, SYNC_ETCD_ENDPOINTS, ENABLE_CONSUL=true each select a mode (redis, etcd, consul); set only one"},
		},
		{
			name:    "unknown SYNC_ name",
			vars:    with(map[string]string{"SYNC_REDIS_ULR": "redis://h/0"}),
			wantErr: []string{"SYNC_REDIS_URL", "SYNC_REDIS_ULR: not a known variable (known: SYNC_ETCD_ENDPOINTS,", "SYNC_S3_SECRET_KEY)"},
		},
		{
			name: "postgres",
			vars: with(map[string]string{"SYNC_POSTGRES_URL": "postgres://gh:" + secretPGPW + "@db:5432/gatehouse?sslmode=require"}),
			mode: modePostgres,
		},
		{
			name:    "postgres bad scheme and redis password unused",
			vars:    with(map[string]string{"SYNC_POSTGRES_URL": "mysql://gh:" + secretPGPW + "@db/gh", "SYNC_REDIS_PASSWORD": secretEnvPW}),
			wantErr: []string{`SYNC_POSTGRES_URL scheme "mysql"`, "SYNC_REDIS_PASSWORD is set, but only SYNC_REDIS_URL uses it"},
		},
		{
			name: "etcd",
			vars: with(map[string]string{"SYNC_ETCD_ENDPOINTS": "e1:2379, https://e2:2379"}),
			mode: modeEtcd,
			check: func(t *testing.T, e *syncEnv) {
				if want := []string{"e1:2379", "https://e2:2379"}; !slices.Equal(e.EtcdEndpoints, want) {
					t.Errorf("EtcdEndpoints = %v, want %v", e.EtcdEndpoints, want)
				}
			},
		},
		{
			name:    "etcd bad endpoint",
			vars:    with(map[string]string{"SYNC_ETCD_ENDPOINTS": "e1:2379,e2"}),
			wantErr: []string{`SYNC_ETCD_ENDPOINTS entry "e2" is not host:port`},
		},
		{
			name: "consul",
			vars: with(map[string]string{"ENABLE_CONSUL": "true", "NODE_ID": "n1", "CONSUL_HTTP_ADDR": "http://127.0.0.1:8500"}),
			mode: modeConsul,
		},
		{
			name:    "consul without NODE_ID",
			vars:    with(map[string]string{"ENABLE_CONSUL": "true", "CONSUL_HTTP_ADDR": "127.0.0.1:8500"}),
			wantErr: []string{"selected by ENABLE_CONSUL=true", "needs: NODE_ID (missing)"},
		},
		{
			name:    "ENABLE_CONSUL not a bool",
			vars:    map[string]string{"ENABLE_CONSUL": "yes"},
			wantErr: []string{`ENABLE_CONSUL "yes" is not true or false`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := parseSyncEnv(tt.vars)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("parseSyncEnv() = %v, want an error containing %q", e, tt.wantErr)
				}
				msg := err.Error()
				for _, w := range tt.wantErr {
					if !strings.Contains(msg, w) {
						t.Errorf("parseSyncEnv() error = %q, want it to contain %q", msg, w)
					}
				}
				assertNoSecrets(t, "error", msg)
				return
			}
			if err != nil {
				t.Fatalf("parseSyncEnv() error = %v", err)
			}
			if tt.mode == "" {
				if e != nil {
					t.Fatalf("parseSyncEnv() = %v, want nil (single-instance)", e)
				}
				return
			}
			if e == nil || e.Mode != tt.mode {
				t.Fatalf("parseSyncEnv() = %v, want mode %s", e, tt.mode)
			}
			assertNoSecrets(t, "String()", e.String())
			var b strings.Builder
			slog.New(slog.NewTextHandler(&b, nil)).Info("sync", "env", e)
			assertNoSecrets(t, "slog", b.String())
			if !strings.Contains(b.String(), "env.mode="+tt.mode) {
				t.Errorf("slog output %q lacks env.mode=%s", b.String(), tt.mode)
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range allSecrets {
		if strings.Contains(s, secret) {
			t.Errorf("%s %q shows the secret %q", what, s, secret)
		}
	}
}

// TestSyncEnvStringRedacts checks that String still tells configurations
// apart (a hash prefix stands for each secret) and shows the parts that are
// not secret.
func TestSyncEnvStringRedacts(t *testing.T) {
	vars := with(map[string]string{"SYNC_REDIS_URL": "redis+sentinel://:" + secretRedisPW + "@s1:26379/m/1?sentinel_password=" + secretSentinelPW})
	e, err := parseSyncEnv(vars)
	if err != nil {
		t.Fatal(err)
	}
	got := e.String()
	for _, want := range []string{"mode=redis", "redis+sentinel://:sha256:", "@s1:26379/m/1?sentinel_password=sha256:", "s3_secret_key=sha256:", "s3_access_key=AKIDEXAMPLE", "s3_bucket=gatehouse"} {
		if !strings.Contains(got, want) {
			t.Errorf("String() = %q, want it to contain %q", got, want)
		}
	}
	assertNoSecrets(t, "String()", got)

	other := maps.Clone(vars)
	other["SYNC_S3_SECRET_KEY"] = "another-secret"
	e2, err := parseSyncEnv(other)
	if err != nil {
		t.Fatal(err)
	}
	if e2.String() == got {
		t.Errorf("String() is the same for different secret keys: %q", got)
	}
}

// TestSettingsSyncRefusal checks serve refuses a valid synchronized
// configuration of a mode this build does not implement, after validating
// it, saying why; and accepts Redis mode.
func TestSettingsSyncRefusal(t *testing.T) {
	settingsFor := func(vars map[string]string) (settings, error) {
		var env []string
		for k, v := range with(vars) {
			env = append(env, fmt.Sprintf("%s=%s", k, v))
		}
		return parseSettings(nil, env, new(strings.Builder))
	}
	_, err := settingsFor(map[string]string{"SYNC_POSTGRES_URL": "postgres://gh:" + secretPGPW + "@db:5432/gatehouse"})
	if err == nil {
		t.Fatal("parseSettings() accepted a synchronized mode this build does not implement")
	}
	for _, want := range []string{"synchronized mode postgres", "recognised and valid, but not implemented", "SYNC_REDIS_URL", "single-instance"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("parseSettings() error = %q, want it to contain %q", err, want)
		}
	}
	assertNoSecrets(t, "parseSettings() error", err.Error())

	s, err := settingsFor(map[string]string{"SYNC_REDIS_URL": "redis+sentinel://:" + secretRedisPW + "@s1:26379,s2:26379/mymaster/2", "SYNC_REDIS_WAIT_TIMEOUT": "250ms"})
	if err != nil {
		t.Fatalf("redis mode refused: %v", err)
	}
	if s.sync == nil || s.sync.Mode != modeRedis || s.sync.Redis.WaitReplicas != 1 || s.sync.Redis.WaitTimeout != 250*time.Millisecond {
		t.Fatalf("redis mode settings = %+v, want mode redis, WAIT 1 replica (Sentinel default) within 250ms", s.sync)
	}
	s, err = settingsFor(map[string]string{"SYNC_REDIS_URL": "redis://h:6379/2"})
	if err != nil || s.sync.Redis.WaitReplicas != 0 || s.sync.Redis.WaitTimeout != time.Second {
		t.Fatalf("plain redis defaults = %+v, %v; want WAIT 0 replicas, 1s", s.sync, err)
	}
	_, err = settingsFor(map[string]string{"SYNC_REDIS_URL": "redis://h:6379/2", "SYNC_REDIS_WAIT_REPLICAS": "-1", "SYNC_REDIS_WAIT_TIMEOUT": "2s"})
	for _, want := range []string{`SYNC_REDIS_WAIT_REPLICAS "-1" is not a number of replicas`, `SYNC_REDIS_WAIT_TIMEOUT "2s" is not a duration from 1ms to 1.5s`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad WAIT settings: error = %v, want it to contain %q", err, want)
		}
	}
}
