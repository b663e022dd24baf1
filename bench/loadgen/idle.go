package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The idle-connection memory check: open N keep-alive connections, have each
// served once, leave them idle, and read the server's resident memory before
// and after.

func runIdle(args []string) (any, error) {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	base := fs.String("base", "", "base URL of the one process being measured")
	conns := fs.Int("conns", 10000, "connections to open")
	pid := fs.Int("pid", 0, "server process id whose VmRSS is read")
	hold := fs.Duration("hold", 5*time.Second, "how long the connections stay idle (below the server's 60 s idle timeout)")
	timeout := fs.Duration("timeout", 10*time.Second, "dial and warm-up timeout")
	batch := fs.Int("dial-batch", 500, "connections dialled at once")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *pid <= 0 || *conns <= 0 {
		return nil, fmt.Errorf("-pid and -conns must be > 0")
	}
	t, err := parseTarget(strings.TrimRight(*base, "/"))
	if err != nil {
		return nil, err
	}
	if lim := fileLimit(); lim != 0 && uint64(*conns)+64 > lim {
		logf("warning: %d connections but RLIMIT_NOFILE is %d", *conns, lim)
	}
	before, err := readRSSKB(*pid)
	if err != nil {
		return nil, err
	}
	open := make([]*rawConn, *conns)
	var failed int
	var mu sync.Mutex
	dialBatches([]target{t}, *conns, *batch, *timeout, nil, func(i int, rc *rawConn, wg *sync.WaitGroup) {
		if rc == nil {
			mu.Lock()
			failed++
			mu.Unlock()
		}
		open[i] = rc
		wg.Done()
	})
	opened := *conns - failed
	logf("%d connections open, %d failed; idle for %v", opened, failed, *hold)
	time.Sleep(*hold)
	after, err := readRSSKB(*pid)
	if err != nil {
		return nil, err
	}
	alive := 0
	for _, rc := range open {
		if rc != nil {
			if stillOpen(rc) {
				alive++
			}
			rc.c.Close()
		}
	}
	perConn := 0.0
	if opened > 0 {
		perConn = float64(after-before) / float64(opened)
	}
	return map[string]any{
		"conns_open":        opened,
		"conns_failed":      failed,
		"conns_alive_after": alive,
		"rss_before_kb":     before,
		"rss_after_kb":      after,
		"rss_per_conn_kb":   float64(int(perConn*100)) / 100,
		"hold_s":            hold.Seconds(),
	}, nil
}

// stillOpen peeks the socket without blocking: EAGAIN means the server has
// not closed it (nothing to read), a 0-byte read means it did.
func stillOpen(rc *rawConn) bool {
	sc, ok := rc.c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	var rerr error
	buf := make([]byte, 1)
	if err := raw.Read(func(fd uintptr) bool {
		n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // never wait for readiness
	}); err != nil {
		return false
	}
	return errors.Is(rerr, syscall.EAGAIN) || n > 0
}

// readRSSKB reads VmRSS (kB) from /proc/PID/status.
func readRSSKB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				return strconv.ParseInt(fields[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
