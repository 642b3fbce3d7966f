package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"
)

// replica is one entry of GET /replicas, as far as the CLI shows it.
type replica struct {
	Service             string    `json:"service"`
	ID                  string    `json:"id"`
	Address             string    `json:"address"`
	State               string    `json:"state"`
	EjectedUntil        time.Time `json:"ejected_until"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	LastError           string    `json:"last_error"`
	Manual              bool      `json:"manual"`
}

// getReplicasCommand is "gatehouse get replicas [--service S] [-o json]".
func getReplicasCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("get replicas", "get replicas [--service NAME] [-o table|json] [--admin URL]", stderr)
	service := fs.String("service", "", "only the replicas of this service")
	output := fs.String("o", "table", "output format: table or json")
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("get replicas takes no arguments, got %q; use --service NAME", rest)
	}
	if err := checkOutput(*output, "table"); err != nil {
		return err
	}
	c, err := newClient(*admin)
	if err != nil {
		return err
	}
	path := "/replicas"
	if *service != "" {
		path += "?service=" + url.QueryEscape(*service)
	}
	var raw json.RawMessage
	if err := c.do(context.Background(), http.MethodGet, path, "", nil, &raw); err != nil {
		return fmt.Errorf("get replicas: %w", err)
	}
	if *output == "json" {
		return printJSON(stdout, raw)
	}
	var out struct {
		Replicas []replica `json:"replicas"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("decode replicas: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tID\tADDRESS\tSTATE\tEJECTED-UNTIL\tFAILURES\tLAST-ERROR")
	for _, r := range out.Replicas {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.Service, r.ID, r.Address, r.state(), r.until(),
			r.ConsecutiveFailures, orDash(truncate(r.LastError, 60)))
	}
	return tw.Flush()
}

// state is the state column: an operator's ejection says so.
func (r replica) state() string {
	if r.Manual && r.State == "ejected" {
		return "ejected (manual)"
	}
	return r.State
}

// until is the EJECTED-UNTIL column.
func (r replica) until() string {
	switch {
	case !r.EjectedUntil.IsZero():
		return r.EjectedUntil.Local().Format(time.RFC3339)
	case r.State == "ejected":
		return "until restored"
	}
	return "-"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// ejectCommand is "gatehouse eject --service S REPLICA_ID [--for 60s]".
func ejectCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eject", "eject --service NAME REPLICA_ID [--for DURATION] [--admin URL]", stderr)
	service := fs.String("service", "", "the replica's service (required)")
	d := fs.Duration("for", 0, "how long to keep the replica out, e.g. 60s (default: until restored)")
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	id, err := replicaArgs(fs, args, "eject", service)
	if err != nil {
		return err
	}
	if *d < 0 {
		return usagef("--for %v: want a positive duration such as 60s, or leave it out to eject until restored", *d)
	}
	body := map[string]string{"service": *service}
	if *d > 0 {
		body["duration"] = d.String()
	}
	rep, err := changeReplica(*admin, id, "eject", body)
	if err != nil {
		return err
	}
	until := "until restored"
	if !rep.EjectedUntil.IsZero() {
		until = "until " + rep.EjectedUntil.Local().Format(time.RFC3339)
	}
	fmt.Fprintf(stdout, "replica %s of service %s ejected %s\n", rep.ID, rep.Service, until)
	return nil
}

// restoreCommand is "gatehouse restore --service S REPLICA_ID".
func restoreCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", "restore --service NAME REPLICA_ID [--admin URL]", stderr)
	service := fs.String("service", "", "the replica's service (required)")
	admin := fs.String("admin", defaultAdmin(), "admin API URL (env "+envAdmin+")")
	id, err := replicaArgs(fs, args, "restore", service)
	if err != nil {
		return err
	}
	rep, err := changeReplica(*admin, id, "restore", map[string]string{"service": *service})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replica %s of service %s restored: %s\n", rep.ID, rep.Service, rep.State)
	return nil
}

// replicaArgs parses eject's and restore's flags and their one REPLICA_ID
// argument, which may come before or after the flags.
func replicaArgs(fs *flag.FlagSet, args []string, cmd string, service *string) (string, error) {
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return "", err
	}
	if len(rest) != 1 {
		return "", usagef("%s needs exactly one REPLICA_ID (see gatehouse get replicas), got %d arguments", cmd, len(rest))
	}
	if *service == "" {
		return "", usagef("%s needs --service NAME: the service of replica %s", cmd, rest[0])
	}
	return rest[0], nil
}

// changeReplica posts body to /replicas/{id}/{action} and returns the
// replica's new state. The ID is escaped: a static target's holds a URL.
func changeReplica(adminURL, id, action string, body map[string]string) (replica, error) {
	c, err := newClient(adminURL)
	if err != nil {
		return replica{}, err
	}
	data, _ := json.Marshal(body)
	var rep replica
	path := "/replicas/" + url.PathEscape(id) + "/" + action
	if err := c.do(context.Background(), http.MethodPost, path, "application/json", data, &rep); err != nil {
		return replica{}, fmt.Errorf("%s replica %s: %w", action, id, err)
	}
	return rep, nil
}

// parseInterspersed parses flags that may come before, between and after
// positional arguments, which it returns in order. Everything after "--" is
// positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), nil
		}
		positional, args = append(positional, rest[0]), rest[1:]
	}
}
