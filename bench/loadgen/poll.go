package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// The "5,000 virtual users polling their queue position" shape: a closed
// model per user (one poll per interval, the next only after the previous
// answered), N users at once, started evenly over the first interval.

func runPoll(args []string) (any, error) {
	fs := flag.NewFlagSet("poll", flag.ContinueOnError)
	base := fs.String("base", "", "comma-separated base URLs (a user sticks to one, round-robin)")
	users := fs.Int("users", 0, "concurrent virtual users")
	duration := fs.Duration("duration", 10*time.Second, "how long users poll")
	usersFrom := fs.Int64("users-from", 1, "first user id")
	interval := fs.Duration("interval", time.Second, "poll period per user")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	bases, err := splitBases(*base)
	if err != nil {
		return nil, err
	}
	if *users <= 0 || *interval <= 0 {
		return nil, fmt.Errorf("-users and -interval must be > 0")
	}
	rec := newRecorder("issue", "poll")
	cl := newClient(rec, *timeout)
	issue, poll := rec.step("issue"), rec.step("poll")

	start := time.Now()
	end := start.Add(*duration)
	rec.windowEnd = end
	// Requests in flight at the end finish on their own (bounded by -timeout);
	// the context only stops users from starting new ones.
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < *users; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := *usersFrom + int64(i)
			b := bases[i%len(bases)]
			buf := new(bytes.Buffer)
			next := start.Add(*interval * time.Duration(i) / time.Duration(*users))
			body := []byte(`{"userId":` + strconv.FormatInt(id, 10) + `}`)
			token := ""
			for {
				if !next.Before(end) {
					return
				}
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				if token == "" { // a failed issue is retried on the next tick
					st := cl.do(ctx, issue, call{method: "POST", url: b + "/v1/queue/tokens", body: body}, buf)
					var it issuedToken
					if (st == 200 || st == 201) && decode(buf.Bytes(), &it) {
						token = it.Token
					}
				} else {
					cl.do(ctx, poll, call{method: "GET", url: b + "/v1/queue/tokens/current", token: token}, buf)
				}
				next = next.Add(*interval)
				if now := time.Now(); next.Before(now) {
					next = now // behind: poll right away, but never in a burst to catch up
				}
			}
		}(i)
	}
	wg.Wait()
	out := rec.result(map[string]any{}, *duration)
	out["users"] = *users
	out["wall_s"] = round3(time.Since(start).Seconds())
	return out, nil
}
