// Command loadgen drives concertd for `make bench`: one subcommand per load
// shape, one JSON object on stdout, progress and diagnostics on stderr.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
)

const usage = `usage: loadgen <scenario|poll|burst|idle> [flags]   (loadgen <cmd> -h for flags)
  scenario  open-model ticket-opening flow at an offered request rate
  poll      N virtual users polling their queue position once per interval
  burst     one hold per pre-connected client, all released at once
  idle      resident memory cost of N idle keep-alive connections`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	raiseFileLimit()
	var result any
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "scenario":
		result, err = runScenario(args)
	case "poll":
		result, err = runPoll(args)
	case "burst":
		result, err = runBurst(args)
	case "idle":
		result, err = runIdle(args)
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	out, err := json.Marshal(result)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard one: burst and idle
// hold one socket per client, 10,000 and more.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen: cannot raise RLIMIT_NOFILE:", err)
		}
	}
}

// fileLimit is the current soft RLIMIT_NOFILE, for warnings before a big dial.
func fileLimit() uint64 {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return 0
	}
	return lim.Cur
}

// splitBases turns "-base a,b" into base URLs without a trailing slash.
func splitBases(s string) ([]string, error) {
	var bases []string
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimRight(strings.TrimSpace(b), "/")
		if b != "" {
			bases = append(bases, b)
		}
	}
	if len(bases) == 0 {
		return nil, fmt.Errorf("-base is required")
	}
	return bases, nil
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...)
}
