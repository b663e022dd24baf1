package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The "10,000 concurrent holds on one 50-seat schedule" check: every client
// has its own warmed-up connection and its request already built, then a
// barrier releases them all at once, so the holds really race.

type tokenLine struct {
	userID int64
	token  string
}

func runBurst(args []string) (any, error) {
	fs := flag.NewFlagSet("burst", flag.ContinueOnError)
	base := fs.String("base", "", "comma-separated base URLs (client i uses base i mod n)")
	tokensFile := fs.String("tokens", "", "file of `userId token` lines, tokens already ACTIVE")
	schedule := fs.Int64("schedule", 0, "schedule id to hold on")
	seats := fs.Int("seats", 50, "seats to pick from, 1..seats")
	timeout := fs.Duration("timeout", 10*time.Second, "dial and per-request timeout")
	batch := fs.Int("dial-batch", 500, "connections dialled at once")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	bases, err := splitBases(*base)
	if err != nil {
		return nil, err
	}
	if *schedule <= 0 || *seats <= 0 {
		return nil, fmt.Errorf("-schedule and -seats must be > 0")
	}
	targets := make([]target, len(bases))
	for i, b := range bases {
		if targets[i], err = parseTarget(b); err != nil {
			return nil, err
		}
	}
	tokens, err := readTokens(*tokensFile)
	if err != nil {
		return nil, err
	}
	n := len(tokens)
	if lim := fileLimit(); lim != 0 && uint64(n)+64 > lim {
		logf("warning: %d clients but RLIMIT_NOFILE is %d", n, lim)
	}

	rec := newRecorder("hold")
	hold := rec.step("hold")
	var warm Step
	gate := make(chan struct{})
	var connectFailed, answered atomic.Int64
	var finished sync.WaitGroup
	var lastDoneNS atomic.Int64

	logf("connecting %d clients", n)
	dialBatches(targets, n, *batch, *timeout, &warm, func(i int, rc *rawConn, parked *sync.WaitGroup) {
		if rc == nil { // its hold is never answered: an error, so the check cannot pass by omission
			connectFailed.Add(1)
			hold.recordUnsent()
			rec.all.recordUnsent()
			parked.Done()
			return
		}
		finished.Add(1)
		defer finished.Done()
		defer rc.c.Close()
		t := targets[i%len(targets)]
		body := fmt.Appendf(nil, `{"userId":%d,"scheduleId":%d,"seatNo":%d}`,
			tokens[i].userID, *schedule, 1+rand.Intn(*seats))
		req := t.post("/v1/reservations", tokens[i].token, body)
		resp := make([]byte, 0, 256)
		parked.Done()
		<-gate
		start := time.Now()
		rec.markSent(start)
		st, resp, err := rc.roundTrip(req, start.Add(*timeout), resp)
		done := time.Now()
		code := ""
		if err != nil {
			st = 0
			if transportErrorsLogged.Add(1) <= 5 {
				logf("hold: %v", err)
			}
		} else {
			answered.Add(1)
			if st >= 400 {
				code = errorCode(resp)
			}
		}
		rec.record(hold, st, code, err != nil || st >= 500, done.Sub(start), done)
		for { // the last answer ends the burst
			last := lastDoneNS.Load()
			if done.UnixNano() <= last || lastDoneNS.CompareAndSwap(last, done.UnixNano()) {
				break
			}
		}
	})
	logf("%d clients connected, %d failed; releasing holds", int64(n)-connectFailed.Load(), connectFailed.Load())
	released := time.Now()
	close(gate)
	finished.Wait()
	d := time.Duration(lastDoneNS.Load() - released.UnixNano())
	if d < 0 {
		d = 0
	}
	out := rec.result(map[string]any{}, d)
	out["warmup"] = warm.snapshot()
	out["succeeded"] = hold.status[201].Load()
	out["answered"] = answered.Load()
	out["clients"] = n
	out["connect_failed"] = connectFailed.Load()
	return out, nil
}

// readTokens reads `userId token` lines; blank lines and # comments are skipped.
func readTokens(path string) ([]tokenLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []tokenLine
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want `userId token`", path, line)
		}
		id, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		out = append(out, tokenLine{id, fields[1]})
	}
	if len(out) == 0 && sc.Err() == nil {
		return nil, fmt.Errorf("%s: no tokens", path)
	}
	return out, sc.Err()
}
