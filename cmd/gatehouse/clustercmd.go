package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-gw/gatehouse/internal/cluster"
)

// clusterBody is GET /cluster's answer.
type clusterBody struct {
	Members []cluster.Member `json:"members"`
	Error   string           `json:"error"`
}

// waitPoll is how often apply --wait asks for the cluster's state.
const waitPoll = 100 * time.Millisecond

func clusterCommand(args []string, stdout, stderr io.Writer) error {
	raw, output, err := fetchList("cluster", "cluster [-o table|json] [--admin URL]", "/cluster", args, stderr)
	if err != nil {
		return err
	}
	var body clusterBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return fmt.Errorf("decode cluster: %w", err)
	}
	if output == "json" {
		return printJSON(stdout, raw)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMODE\tSTATUS\tAPPLIED\tPROXY\tADMIN\tVERSION\tSEEN")
	for _, m := range body.Members {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s ago\n", m.ID, m.Mode, m.Status, m.AppliedRevision,
			m.Proxy, m.Admin, orDash(m.Version), time.Since(m.Updated).Round(100*time.Millisecond))
	}
	tw.Flush()
	if body.Error != "" {
		return fmt.Errorf("cluster: the shared store is unreachable from this instance, so it lists itself only: %s", body.Error)
	}
	return nil
}

// waitApplied polls GET /cluster until every live instance that is not
// draining has applied revision rev, and reports how long that took. On
// timeout the error names the instances still behind.
func waitApplied(ctx context.Context, c *client, rev int64, timeout time.Duration, stdout io.Writer) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var behind []string
	var last error
	for {
		var body clusterBody
		err := c.do(ctx, http.MethodGet, "/cluster", "", nil, &body)
		switch {
		case err != nil:
			last = err
		case body.Error != "":
			// This instance lists itself only: it cannot see the others.
			last = errors.New("the shared store is unreachable from this instance: " + body.Error)
		default:
			last = nil
			behind = behind[:0]
			live := 0
			for _, m := range body.Members {
				if m.Status == "draining" {
					continue
				}
				live++
				if m.AppliedRevision < rev {
					behind = append(behind, fmt.Sprintf("%s (at %d, %s)", m.ID, m.AppliedRevision, m.Status))
				}
			}
			if len(behind) == 0 && live > 0 {
				fmt.Fprintf(stdout, "revision %d applied on all %d live instances in %s\n", rev, live, time.Since(start).Round(time.Millisecond))
				return nil
			}
		}
		t := time.NewTimer(waitPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			if last != nil {
				return fmt.Errorf("wait for revision %d: no answer from the admin API within %s: %w", rev, timeout, last)
			}
			return fmt.Errorf("wait for revision %d: after %s, not applied yet on: %s", rev, timeout, strings.Join(behind, ", "))
		case <-t.C:
		}
	}
}
