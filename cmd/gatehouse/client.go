package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// client talks to a gateway's admin API.
type client struct {
	base  string
	token string
	http  *http.Client
}

// addClientFlags registers --admin and returns a function that builds the
// client after parsing.
func newClient(admin string) (*client, error) {
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--admin (%s) %q is not an http(s) URL like http://127.0.0.1:9876", envAdmin, admin)
	}
	return &client{
		base:  strings.TrimRight(admin, "/"),
		token: os.Getenv(envAdminToken),
		http:  &http.Client{Timeout: 30 * time.Second},
	}, nil
}

func defaultAdmin() string {
	if v := os.Getenv(envAdmin); v != "" {
		return v
	}
	return "http://127.0.0.1:9876"
}

// apiError is an error answer of the admin API.
type apiError struct {
	Status  int
	Message string `json:"error"`
	Details []struct {
		Path    string `json:"path"`
		Message string `json:"message"`
	} `json:"details"`
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d)", e.Message, e.Status)
	for _, d := range e.Details {
		if d.Path != "" {
			fmt.Fprintf(&b, "\n  %s: %s", d.Path, d.Message)
		} else {
			fmt.Fprintf(&b, "\n  %s", d.Message)
		}
	}
	return b.String()
}

// do sends one request and decodes a JSON answer into out (if non-nil).
func (c *client) do(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the admin API at %s (is gatehouse serve running? set --admin or %s): %w", c.base, envAdmin, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return e
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

// fetchList is the common part of the commands that list one resource:
// the -o and --admin flags, no arguments, then GET path. It returns the
// answer and the output format.
func fetchList(name, usage, path string, args []string, stderr io.Writer) (json.RawMessage, string, error) {
	fs := newFlagSet(name, usage, stderr)
	output := fs.String("o", "table", "output format: table or json")
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	if err := parseFlags(fs, args); err != nil {
		return nil, "", err
	}
	if fs.NArg() > 0 {
		return nil, "", usagef("%s takes no arguments, got %q", name, fs.Args())
	}
	if err := checkOutput(*output, "table"); err != nil {
		return nil, "", err
	}
	c, err := newClient(*admin)
	if err != nil {
		return nil, "", err
	}
	var raw json.RawMessage
	if err := c.do(context.Background(), http.MethodGet, path, "", nil, &raw); err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	return raw, *output, nil
}

func applyCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("apply", "apply -f FILE [--wait] [--wait-timeout 30s] [--admin URL]", stderr)
	file := fs.String("f", "", "YAML or JSON configuration file (- for standard input)")
	wait := fs.Bool("wait", false, "return when every live instance has applied the change (see gatehouse cluster)")
	waitTimeout := fs.Duration("wait-timeout", 30*time.Second, "how long --wait waits before failing, naming the instances behind")
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usagef("apply needs -f FILE")
	}
	c, err := newClient(*admin)
	if err != nil {
		return err
	}
	var data []byte
	if *file == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(*file)
	}
	if err != nil {
		return fmt.Errorf("read -f: %w", err)
	}
	var out struct {
		Revision int64 `json:"revision"`
	}
	if err := c.do(context.Background(), http.MethodPut, "/config", "application/yaml", data, &out); err != nil {
		return fmt.Errorf("apply %s: %w", *file, err)
	}
	fmt.Fprintf(stdout, "applied %s: revision %d\n", *file, out.Revision)
	if *wait {
		return waitApplied(context.Background(), c, out.Revision, *waitTimeout, stdout)
	}
	return nil
}

func getCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "replicas" || args[0] == "replica") {
		return getReplicasCommand(args[1:], stdout, stderr)
	}
	fs := newFlagSet("get", "get services|routes|instances|replicas|config [-o table|json] [--admin URL]", stderr)
	output := fs.String("o", "table", "output format: table or json")
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	// Allow the resource before the flags ("get routes -o json").
	var what string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		what, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if what == "" && fs.NArg() > 0 {
		what = fs.Arg(0)
	}
	if err := checkOutput(*output, "table"); err != nil {
		return err
	}
	c, err := newClient(*admin)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var raw json.RawMessage
	switch what {
	case "services", "service", "svc":
		what = "services"
	case "routes", "route":
		what = "routes"
	case "instances", "instance":
		what = "instances"
	case "config":
	default:
		return usagef("get what? want services, routes, instances, replicas or config, got %q", what)
	}
	if err := c.do(ctx, http.MethodGet, "/"+what, "", nil, &raw); err != nil {
		return fmt.Errorf("get %s: %w", what, err)
	}
	if *output == "json" || what == "config" {
		return printJSON(stdout, raw)
	}
	return printTable(stdout, what, raw)
}

func printTable(w io.Writer, what string, raw json.RawMessage) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	switch what {
	case "services":
		var out struct {
			Services []struct {
				Name     string `json:"name"`
				Protocol string `json:"protocol"`
				Targets  []struct {
					URL string `json:"url"`
				} `json:"targets"`
			} `json:"services"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("decode services: %w", err)
		}
		fmt.Fprintln(tw, "NAME\tPROTOCOL\tTARGETS")
		for _, s := range out.Services {
			var urls []string
			for _, t := range s.Targets {
				urls = append(urls, t.URL)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, orDash(s.Protocol), orDash(strings.Join(urls, ",")))
		}
	case "routes":
		var out struct {
			Routes []struct {
				Name    string   `json:"name"`
				Service string   `json:"service"`
				Hosts   []string `json:"hosts"`
				Paths   []string `json:"paths"`
				Methods []string `json:"methods"`
			} `json:"routes"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("decode routes: %w", err)
		}
		fmt.Fprintln(tw, "NAME\tSERVICE\tHOSTS\tPATHS\tMETHODS")
		for _, r := range out.Routes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, orDash(r.Service), orDash(strings.Join(r.Hosts, ",")),
				orDash(strings.Join(r.Paths, ",")), orDash(strings.Join(r.Methods, ",")))
		}
	case "instances":
		var out struct {
			Instances []struct {
				ID        string    `json:"id"`
				Service   string    `json:"service"`
				Address   string    `json:"address"`
				Weight    int       `json:"weight"`
				TTL       float64   `json:"ttl"`
				RenewedAt time.Time `json:"renewed_at"`
			} `json:"instances"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return fmt.Errorf("decode instances: %w", err)
		}
		fmt.Fprintln(tw, "ID\tSERVICE\tADDRESS\tWEIGHT\tTTL\tRENEWED")
		for _, in := range out.Instances {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%gs\t%s ago\n", in.ID, in.Service, in.Address, max(in.Weight, 1), in.TTL,
				time.Since(in.RenewedAt).Round(time.Second))
		}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func registerCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("register", "register --service NAME --address URL [--ttl 30s] [--weight N] [--admin URL]", stderr)
	service := fs.String("service", "", "service name")
	address := fs.String("address", "", "replica base URL, e.g. http://127.0.0.1:9001")
	ttl := fs.Duration("ttl", 0, "lease length; the registration expires unless renewed within it (default: the server's, 30s)")
	weight := fs.Int("weight", 0, "balancing weight (default 1)")
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *service == "" || *address == "" {
		return usagef("register needs --service and --address")
	}
	c, err := newClient(*admin)
	if err != nil {
		return err
	}
	body := map[string]any{"service": *service, "address": *address}
	if *ttl > 0 {
		body["ttl"] = ttl.Seconds()
	}
	if *weight > 0 {
		body["weight"] = *weight
	}
	data, _ := json.Marshal(body)
	var out struct {
		ID  string  `json:"id"`
		TTL float64 `json:"ttl"`
	}
	if err := c.do(context.Background(), http.MethodPost, "/register", "application/json", data, &out); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	fmt.Fprintf(stdout, "registered %s at %s as %s (ttl %gs; renew with POST /register/%s/heartbeat)\n",
		*service, *address, out.ID, out.TTL, out.ID)
	return nil
}

// printJSON writes an admin API answer indented, for -o json.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// checkOutput accepts -o text (the command's human format) or json.
func checkOutput(output, text string) error {
	if output != text && output != "json" {
		return usagef("-o %q: want %s or json", output, text)
	}
	return nil
}
