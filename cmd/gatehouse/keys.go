package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

const keysUsage = `Usage:
  gatehouse keys create [--name N] [--expires 720h|30d|RFC3339] [--routes a,b] [--services s]
                        [--rate 100/1m] [--burst 20] [--quota 10000/day] [--metadata k=v]...
                        [--import-stdin | --import VALUE] [-o json]
  gatehouse keys list [-o json]
  gatehouse keys show ID [-o json]
  gatehouse keys revoke ID
  gatehouse keys delete ID

create prints a generated key once: store it then, it cannot be shown again.
--import-stdin stores a value you chose (read from standard input; prefer it
to --import, whose value other users can see in ps).
`

// keyJSON is a key record as the admin API shows it (no hash).
type keyJSON struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	HashAlg         string            `json:"hash_alg"`
	Prefix          string            `json:"prefix"`
	CreatedAt       time.Time         `json:"created_at"`
	ExpiresAt       time.Time         `json:"expires_at"`
	Revoked         bool              `json:"revoked"`
	RevokedAt       time.Time         `json:"revoked_at"`
	AllowedRoutes   []string          `json:"allowed_routes"`
	AllowedServices []string          `json:"allowed_services"`
	RateLimit       *rateJSON         `json:"rate_limit"`
	Quota           *quotaJSON        `json:"quota"`
	Metadata        map[string]string `json:"metadata"`
}

type rateJSON struct {
	Requests int    `json:"requests"`
	Per      string `json:"per"`
	Burst    int    `json:"burst,omitempty"`
}

type quotaJSON struct {
	Requests int64  `json:"requests"`
	Period   string `json:"period"`
}

func keysCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return usagef("keys needs a subcommand: create, list, show, revoke or delete")
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "create":
		return keysCreate(rest, os.Stdin, stdout, stderr)
	case "list", "ls":
		return keysList(rest, stdout, stderr)
	case "show", "get":
		return keysShow(rest, stdout, stderr)
	case "revoke":
		return keysRevoke(rest, stdout, stderr)
	case "delete", "rm":
		return keysDelete(rest, stdout, stderr)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, keysUsage)
		return nil
	default:
		return usagef("keys %q: want create, list, show, revoke or delete", sub)
	}
}

// keysCreate generates or imports a key.
func keysCreate(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys create", "keys create [flags]", stderr)
	name := fs.String("name", "", "a label for people")
	expires := fs.String("expires", "", "when the key stops working: a duration from now (720h, 30d) or an RFC 3339 time or date")
	routes := fs.String("routes", "", "comma-separated route names the key may call (default: any)")
	services := fs.String("services", "", "comma-separated service names the key may reach (default: any)")
	rate := fs.String("rate", "", "per-key rate limit REQUESTS/PERIOD, e.g. 100/1m or 10/s")
	burst := fs.Int("burst", 0, "requests allowed at once under --rate (default: the rate's REQUESTS)")
	quota := fs.String("quota", "", "per-key quota REQUESTS/day or REQUESTS/month, e.g. 10000/day")
	var metadata metadataFlag
	fs.Var(&metadata, "metadata", "KEY=VALUE passed along with the key's requests (repeatable)")
	importValue := fs.String("import", "", "store this value as the key instead of generating one (visible in ps: prefer --import-stdin)")
	importStdin := fs.Bool("import-stdin", false, "read the value of the key to import from standard input")
	output := fs.String("o", "text", "output format: text or json")
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("keys create takes no arguments, got %q (flags go before them?)", fs.Args())
	}
	if err := checkOutput(*output, "text"); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	body := map[string]any{}
	if *name != "" {
		body["name"] = *name
	}
	if *expires != "" {
		t, err := parseExpires(*expires, time.Now())
		if err != nil {
			return err
		}
		body["expires_at"] = t.UTC().Format(time.RFC3339)
	}
	if l := splitList(*routes); len(l) > 0 {
		body["allowed_routes"] = l
	}
	if l := splitList(*services); len(l) > 0 {
		body["allowed_services"] = l
	}
	if set["burst"] && !set["rate"] {
		return usagef("--burst %d needs --rate", *burst)
	}
	if *burst < 0 {
		return usagef("--burst %d: must not be negative", *burst)
	}
	if *rate != "" {
		r, err := parseRate(*rate)
		if err != nil {
			return err
		}
		r.Burst = *burst
		body["rate_limit"] = r
	}
	if *quota != "" {
		q, err := parseQuota(*quota)
		if err != nil {
			return err
		}
		body["quota"] = q
	}
	if len(metadata) > 0 {
		body["metadata"] = map[string]string(metadata)
	}
	imported := set["import"] || *importStdin
	switch {
	case set["import"] && *importStdin:
		return usagef("--import and --import-stdin cannot be used together")
	case set["import"]:
		if *importValue == "" {
			return usagef("--import is empty: give the value to import, or use --import-stdin")
		}
		body["key"] = *importValue
	case *importStdin:
		v, err := readImportValue(stdin)
		if err != nil {
			return err
		}
		body["key"] = v
	}
	c, err := newClient(*admin)
	if err != nil {
		return err
	}
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(context.Background(), http.MethodPost, "/keys", "application/json", data, &raw); err != nil {
		return fmt.Errorf("create key: %w", err)
	}
	if *output == "json" {
		return printJSON(stdout, raw)
	}
	var out struct {
		Key    keyJSON `json:"key"`
		APIKey string  `json:"api_key"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("decode answer of POST /keys: %w", err)
	}
	if imported {
		fmt.Fprintf(stdout, "imported key %s%s; the value you gave is stored hashed and works from now on\n", out.Key.ID, nameSuffix(out.Key.Name))
		return nil
	}
	fmt.Fprintf(stdout, "created key %s%s\n\n    %s\n\n", out.Key.ID, nameSuffix(out.Key.Name), out.APIKey)
	fmt.Fprintln(stderr, "Store this key now: it is not kept in clear and will not be shown again.")
	return nil
}

func keysList(args []string, stdout, stderr io.Writer) error {
	raw, output, err := fetchList("keys list", "keys list [-o table|json]", "/keys", args, stderr)
	if err != nil {
		return err
	}
	if output == "json" {
		return printJSON(stdout, raw)
	}
	var out struct {
		Keys []keyJSON `json:"keys"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("decode answer of GET /keys: %w", err)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tSTATUS\tEXPIRES\tROUTES\tSERVICES\tRATE\tQUOTA")
	for _, k := range out.Keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, orDash(k.Name), orDash(k.Prefix), keyStatus(k, now),
			orDash(formatTime(k.ExpiresAt)), orDash(strings.Join(k.AllowedRoutes, ",")), orDash(strings.Join(k.AllowedServices, ",")),
			orDash(formatRate(k.RateLimit)), orDash(formatQuota(k.Quota)))
	}
	return tw.Flush()
}

func keysShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys show", "keys show ID [-o text|json]", stderr)
	output := fs.String("o", "text", "output format: text or json")
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	if err := checkOutput(*output, "text"); err != nil {
		return err
	}
	c, err := newClient(*admin)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(context.Background(), http.MethodGet, "/keys/"+id, "", nil, &raw); err != nil {
		return fmt.Errorf("show key: %w", err)
	}
	if *output == "json" {
		return printJSON(stdout, raw)
	}
	var k keyJSON
	if err := json.Unmarshal(raw, &k); err != nil {
		return fmt.Errorf("decode answer of GET /keys/ID: %w", err)
	}
	return printKey(stdout, k, time.Now())
}

func keysRevoke(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys revoke", "keys revoke ID", stderr)
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	c, err := newClient(*admin)
	if err != nil {
		return err
	}
	var k keyJSON
	if err := c.do(context.Background(), http.MethodPost, "/keys/"+id+"/revoke", "", nil, &k); err != nil {
		return fmt.Errorf("revoke key: %w", err)
	}
	fmt.Fprintf(stdout, "revoked key %s%s at %s; it is refused from now on (keys delete %s removes its record)\n",
		k.ID, nameSuffix(k.Name), formatTime(k.RevokedAt), k.ID)
	return nil
}

func keysDelete(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys delete", "keys delete ID", stderr)
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	id, err := parseWithID(fs, args)
	if err != nil {
		return err
	}
	c, err := newClient(*admin)
	if err != nil {
		return err
	}
	if err := c.do(context.Background(), http.MethodDelete, "/keys/"+id, "", nil, nil); err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	fmt.Fprintf(stdout, "deleted key %s\n", id)
	return nil
}

// parseWithID parses a command's flags around its one ID argument, which
// may come before the flags ("keys show ID -o json") or after them.
func parseWithID(fs *flag.FlagSet, args []string) (string, error) {
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	rest := fs.Args()
	if id == "" && len(rest) > 0 {
		id, rest = rest[0], rest[1:]
	}
	switch {
	case id == "":
		return "", usagef("%s needs a key ID (see gatehouse keys list)", fs.Name())
	case len(rest) > 0:
		return "", usagef("%s takes one key ID, got also %q", fs.Name(), rest)
	}
	// Only the shape is checked here, so that a clear key passed by
	// mistake is neither sent nor echoed.
	if !validKeyID(id) {
		return "", usagef("%s: the key ID is not 12 lowercase hex characters (see gatehouse keys list; the ID is not the key itself)", fs.Name())
	}
	return id, nil
}

// validKeyID reports whether id has the shape of an API key ID.
func validKeyID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func printKey(w io.Writer, k keyJSON, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(label, value string) { fmt.Fprintf(tw, "%s:\t%s\n", label, orDash(value)) }
	row("id", k.ID)
	row("name", k.Name)
	row("prefix", k.Prefix)
	row("kind", map[string]string{"sha256": "generated", "hmac-sha256": "imported"}[k.HashAlg])
	row("status", keyStatus(k, now))
	row("created", formatTime(k.CreatedAt))
	row("expires", formatTime(k.ExpiresAt))
	row("revoked", formatTime(k.RevokedAt))
	row("routes", strings.Join(k.AllowedRoutes, ","))
	row("services", strings.Join(k.AllowedServices, ","))
	row("rate limit", formatRate(k.RateLimit))
	row("quota", formatQuota(k.Quota))
	var meta []string
	for name, v := range k.Metadata {
		meta = append(meta, name+"="+v)
	}
	slices.Sort(meta)
	row("metadata", strings.Join(meta, ","))
	return tw.Flush()
}

// keyStatus is active, revoked or expired, as the gateway would judge the
// key at now.
func keyStatus(k keyJSON, now time.Time) string {
	switch {
	case k.Revoked:
		return "revoked"
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return "expired"
	}
	return "active"
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func formatRate(r *rateJSON) string {
	if r == nil {
		return ""
	}
	per := r.Per
	if d, err := time.ParseDuration(per); err == nil {
		per = shortDuration(d)
	}
	s := fmt.Sprintf("%d/%s", r.Requests, per)
	if r.Burst > 0 {
		s += fmt.Sprintf(" burst %d", r.Burst)
	}
	return s
}

// shortDuration formats d without zero trailing units: 1m rather than
// 1m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func formatQuota(q *quotaJSON) string {
	if q == nil {
		return ""
	}
	return fmt.Sprintf("%d/%s", q.Requests, q.Period)
}

func nameSuffix(name string) string {
	if name == "" {
		return ""
	}
	return fmt.Sprintf(" (%s)", name)
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// parseExpires reads --expires: a duration from now (Go syntax, or a whole
// number of days like 30d), an RFC 3339 time, or a date (midnight UTC).
func parseExpires(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	d, err := parseDuration(v)
	if err != nil {
		return time.Time{}, usagef("--expires %q: want a duration from now like 720h or 30d, or a time like 2027-01-31T00:00:00Z or 2027-01-31", v)
	}
	if d <= 0 {
		return time.Time{}, usagef("--expires %q: the duration must be positive", v)
	}
	return now.Add(d), nil
}

// parseDuration is time.ParseDuration that also takes whole days ("30d").
func parseDuration(v string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > 100*365 {
			return 0, errors.New("bad number of days")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

// parseRate reads --rate REQUESTS/PERIOD, where PERIOD is a duration ("1m",
// "30d") or a bare unit ("s", "m", "h") meaning one of it.
func parseRate(v string) (rateJSON, error) {
	bad := usagef("--rate %q: want REQUESTS/PERIOD with a positive whole number of requests and a period like 1s, 1m or s, e.g. 100/1m", v)
	reqs, per, ok := strings.Cut(v, "/")
	n, err := strconv.Atoi(strings.TrimSpace(reqs))
	if !ok || err != nil || n <= 0 {
		return rateJSON{}, bad
	}
	per = strings.TrimSpace(per)
	if per != "" && !unicode.IsDigit(rune(per[0])) {
		per = "1" + per
	}
	d, err := parseDuration(per)
	if err != nil || d <= 0 {
		return rateJSON{}, bad
	}
	return rateJSON{Requests: n, Per: d.String()}, nil
}

// parseQuota reads --quota REQUESTS/day or REQUESTS/month.
func parseQuota(v string) (quotaJSON, error) {
	reqs, period, ok := strings.Cut(v, "/")
	n, err := strconv.ParseInt(strings.TrimSpace(reqs), 10, 64)
	period = strings.TrimSpace(period)
	if !ok || err != nil || n <= 0 || (period != "day" && period != "month") {
		return quotaJSON{}, usagef("--quota %q: want REQUESTS/day or REQUESTS/month with a positive whole number, e.g. 10000/day", v)
	}
	return quotaJSON{Requests: n, Period: period}, nil
}

// metadataFlag collects repeated --metadata KEY=VALUE flags.
type metadataFlag map[string]string

func (m *metadataFlag) String() string { return "" }

func (m *metadataFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	if *m == nil {
		*m = metadataFlag{}
	}
	(*m)[name] = value
	return nil
}

// readImportValue reads the value of --import-stdin: the first line of
// standard input, without its line ending. The value is never echoed.
func readImportValue(stdin io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(stdin, 64<<10))
	if err != nil {
		return "", fmt.Errorf("--import-stdin: read standard input: %w", err)
	}
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	v := string(bytes.TrimRight(line, "\r"))
	if len(bytes.TrimSpace(rest)) > 0 {
		return "", usagef("--import-stdin: standard input has more than one line; send only the value")
	}
	if v == "" {
		return "", usagef("--import-stdin: standard input is empty; pipe the value in, e.g. printf %%s \"$KEY\" | gatehouse keys create --import-stdin")
	}
	return v, nil
}
