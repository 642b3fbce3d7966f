// Command gatehouse is the Gatehouse API gateway and its command-line client.
//
//	gatehouse serve [flags]          run the gateway (proxy + admin API)
//	gatehouse apply -f FILE [--wait] replace the running configuration
//	gatehouse cluster                list the live instances and their revisions
//	gatehouse get services|routes|instances|replicas
//	gatehouse register --service S --address URL
//	gatehouse eject|restore --service S REPLICA_ID
//	gatehouse keys create|list|show|revoke|delete
//	gatehouse version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `gatehouse: an API gateway that stays up.

Usage:
  gatehouse serve [flags]                       run the gateway (proxy + admin API)
  gatehouse apply -f FILE [--wait]              replace the configuration; --wait returns once every instance serves it
  gatehouse cluster [-o json]                   list the live instances and the revision each has applied
  gatehouse get services|routes|instances|config [-o json]
  gatehouse get replicas [--service NAME] [-o json]
  gatehouse register --service NAME --address URL [--ttl 30s] [--weight N]
  gatehouse eject --service NAME REPLICA_ID [--for 60s]
  gatehouse restore --service NAME REPLICA_ID
  gatehouse keys create [--name N] [--expires 720h] [--rate 100/1m] [--quota 10000/day] [--import-stdin] ...
  gatehouse keys list | show ID | revoke ID | delete ID
  gatehouse version

Client commands talk to the admin API at --admin (env GATEHOUSE_ADMIN,
default http://127.0.0.1:9876) with the token in GATEHOUSE_ADMIN_TOKEN.
Run "gatehouse COMMAND --help" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code: 0 success,
// 1 failure, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		err = serveCommand(rest, stdout, stderr)
	case "apply":
		err = applyCommand(rest, stdout, stderr)
	case "cluster":
		err = clusterCommand(rest, stdout, stderr)
	case "get":
		err = getCommand(rest, stdout, stderr)
	case "register":
		err = registerCommand(rest, stdout, stderr)
	case "eject":
		err = ejectCommand(rest, stdout, stderr)
	case "restore":
		err = restoreCommand(rest, stdout, stderr)
	case "keys":
		err = keysCommand(rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "gatehouse %s\n", version)
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "gatehouse: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "gatehouse: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "gatehouse: %v\n", err)
		return 1
	}
}

// usageError marks a mistake in how a command was called (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: gatehouse %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}
