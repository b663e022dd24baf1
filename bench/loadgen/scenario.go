package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The ticket-opening flow as an open model: users arrive on a fixed timeline
// whatever the server's speed, so a slow server meets a growing crowd instead
// of a politely waiting generator (no coordinated omission).

const (
	pollGiveUp      = 30 * time.Second     // a user still WAITING after this is a failed flow
	lateThreshold   = 5 * time.Millisecond // an arrival this far behind its slot is a late start
	minFlowsToAdapt = 10                   // finished flows before the measured mean replaces the estimate
)

type scenario struct {
	bases        []string
	rate         float64
	concertID    int64
	usersFrom    int64
	pay          bool
	pollInterval time.Duration
	charge       int64

	cl      *Client
	rec     *Recorder
	steps   map[string]*Step
	bufPool sync.Pool
	wg      sync.WaitGroup

	started, completed, held, paid, failed atomic.Int64
	soldOut, holdLost, pollGaveUp          atomic.Int64
	finishedFlows, finishedRequests        atomic.Int64
	lateStarts                             atomic.Int64
	maxLagUS                               atomic.Int64
}

type outcome int

const (
	outFailed   outcome = iota // transport error, 5xx, unexpected answer, poll give-up
	outSoldOut                 // no schedule or seat left to try
	outHoldLost                // both seat tries answered SEAT_UNAVAILABLE
	outHeld
	outPaid
)

func runScenario(args []string) (any, error) {
	fs := flag.NewFlagSet("scenario", flag.ContinueOnError)
	base := fs.String("base", "", "comma-separated base URLs (a user sticks to one, round-robin)")
	rate := fs.Float64("rate", 0, "offered requests per second")
	duration := fs.Duration("duration", 10*time.Second, "how long new users arrive")
	concertID := fs.Int64("concert-id", 0, "concert to book (0: create one with -admin-key)")
	usersFrom := fs.Int64("users-from", 1, "first user id")
	pay := fs.Bool("pay", false, "charge points and pay for each hold")
	pollInterval := fs.Duration("poll-interval", 200*time.Millisecond, "queue poll period while WAITING")
	adminKey := fs.String("admin-key", "", "Admin-Key, used only to create a concert when -concert-id is 0")
	charge := fs.Int64("charge", 5000, "points charged before paying (raised to the seat's price if lower)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	drain := fs.Duration("drain", 30*time.Second, "how long to wait for running flows after arrivals stop")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	bases, err := splitBases(*base)
	if err != nil {
		return nil, err
	}
	if *rate <= 0 {
		return nil, fmt.Errorf("-rate must be > 0")
	}
	names := []string{"issue", "poll", "schedules", "seats", "hold"}
	if *pay {
		names = append(names, "charge", "pay")
	}
	s := &scenario{
		bases: bases, rate: *rate, concertID: *concertID, usersFrom: *usersFrom, pay: *pay,
		pollInterval: *pollInterval, charge: *charge,
		rec: newRecorder(names...), steps: map[string]*Step{},
	}
	s.cl = newClient(s.rec, *timeout)
	s.bufPool.New = func() any { return new(bytes.Buffer) }
	for _, n := range names {
		s.steps[n] = s.rec.step(n)
	}
	if s.concertID == 0 {
		if *adminKey == "" {
			return nil, fmt.Errorf("-concert-id or -admin-key is required")
		}
		if s.concertID, err = createConcert(bases[0], *adminKey); err != nil {
			return nil, err
		}
		logf("created concert %d", s.concertID)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	s.rec.windowEnd = start.Add(*duration)
	s.arrive(ctx, start, *duration)

	// Drain: bounded, then whatever still runs is reported as unfinished.
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(*drain):
		logf("drain: %d flows still running after %v", s.started.Load()-s.completed.Load()-s.failed.Load(), *drain)
	}
	out := s.rec.result(map[string]any{}, *duration)
	cancel()

	started, completed, failed := s.started.Load(), s.completed.Load(), s.failed.Load()
	out["flows"] = map[string]int64{
		"started": started, "completed": completed, "failed": failed,
		"held": s.held.Load(), "paid": s.paid.Load(),
		"sold_out": s.soldOut.Load(), "hold_lost": s.holdLost.Load(), "poll_gave_up": s.pollGaveUp.Load(),
		"unfinished": started - completed - failed,
	}
	out["late_starts"] = s.lateStarts.Load()
	out["max_start_lag_ms"] = float64(s.maxLagUS.Load()) / 1000
	out["offered_rps"] = round3(float64(s.rec.sent.Load()) / duration.Seconds())
	out["target_rps"] = s.rate
	out["requests_per_flow"] = round3(s.requestsPerFlow())
	out["concert_id"] = s.concertID
	out["wall_s"] = round3(time.Since(start).Seconds())
	return out, nil
}

// estimatedRequestsPerFlow is the guess used before any flow has finished:
// issue + one poll + schedules + seats + one hold (+ charge + pay).
func (s *scenario) estimatedRequestsPerFlow() float64 {
	if s.pay {
		return 7
	}
	return 5
}

// requestsPerFlow is the measured mean over finished flows (all outcomes, so
// long-polling and failed flows weigh in as they cost), else the estimate.
func (s *scenario) requestsPerFlow() float64 {
	n := s.finishedFlows.Load()
	if n < minFlowsToAdapt {
		return s.estimatedRequestsPerFlow()
	}
	return float64(s.finishedRequests.Load()) / float64(n)
}

// arrive launches users at a constant arrival rate R / requests-per-flow on a
// fixed timeline: slot k+1 = slot k + gap, never "after the previous one
// finished". Each second of the timeline the rate for the next second is
// recomputed from the measured requests per flow (rpf): it is the number of
// arrivals that brings the requests owed by all users started so far
// (started × rpf) to R × (t + 1 s), clamped to [0.5, 2] × R / rpf. So the
// offered request rate converges to R and the first second's guess is paid
// back instead of skewing the whole run. A slot reached more than
// lateThreshold late still starts (immediately, catching up) and counts as a
// late start.
func (s *scenario) arrive(ctx context.Context, start time.Time, duration time.Duration) {
	end := start.Add(duration)
	perFlow := s.estimatedRequestsPerFlow()
	gap := time.Duration(float64(time.Second) * perFlow / s.rate)
	nextAdapt := start.Add(time.Second)
	slot := start
	for i := int64(0); slot.Before(end); i++ {
		if d := time.Until(slot); d > 0 {
			time.Sleep(d)
		}
		lag := time.Since(slot)
		if lag > lateThreshold {
			s.lateStarts.Add(1)
		}
		if us := lag.Microseconds(); us > s.maxLagUS.Load() {
			s.maxLagUS.Store(us)
		}
		s.wg.Add(1)
		s.started.Add(1)
		go s.flow(ctx, i)
		if !slot.Before(nextAdapt) {
			perFlow = s.requestsPerFlow()
			steady := s.rate / perFlow
			owed := s.rate*nextAdapt.Add(time.Second).Sub(start).Seconds() - float64(s.started.Load())*perFlow
			arrivals := min(max(owed/perFlow, steady/2), steady*2)
			gap = time.Duration(float64(time.Second) / arrivals)
			nextAdapt = nextAdapt.Add(time.Second)
			logf("t=%.0fs users=%d req/flow=%.2f arrivals/s=%.1f sent=%d errors=%d late=%d",
				slot.Sub(start).Seconds(), s.started.Load(), perFlow, arrivals,
				s.rec.sent.Load(), s.rec.all.errors.Load(), s.lateStarts.Load())
		}
		slot = slot.Add(gap)
	}
}

// user is one virtual user's state for one flow.
type user struct {
	s        *scenario
	ctx      context.Context
	id       int64
	base     string
	token    string
	buf      *bytes.Buffer
	requests int64
	body     []byte
}

func (u *user) do(step string, c call) int {
	u.requests++
	return u.s.cl.do(u.ctx, u.s.steps[step], c, u.buf)
}

func (s *scenario) flow(ctx context.Context, i int64) {
	defer s.wg.Done()
	u := &user{s: s, ctx: ctx, id: s.usersFrom + i, base: s.bases[int(i)%len(s.bases)]}
	u.buf = s.bufPool.Get().(*bytes.Buffer)
	defer s.bufPool.Put(u.buf)
	o := u.run()
	if ctx.Err() != nil {
		return // cut off after the drain: unfinished
	}
	s.finishedRequests.Add(u.requests)
	s.finishedFlows.Add(1)
	switch o {
	case outFailed:
		s.failed.Add(1)
		return
	case outSoldOut:
		s.soldOut.Add(1)
	case outHoldLost:
		s.holdLost.Add(1)
	case outPaid:
		s.paid.Add(1)
		s.held.Add(1)
	case outHeld:
		s.held.Add(1)
	}
	s.completed.Add(1)
}

func (u *user) run() outcome {
	s := u.s
	u.body = strconv.AppendInt(append(u.body[:0], `{"userId":`...), u.id, 10)
	u.body = append(u.body, '}')
	st := u.do("issue", call{method: "POST", url: u.base + "/v1/queue/tokens", body: u.body})
	var issued issuedToken
	if (st != 200 && st != 201) || !decode(u.buf.Bytes(), &issued) || issued.Token == "" {
		return outFailed
	}
	u.token = issued.Token
	if issued.Status != "ACTIVE" && !u.waitActive() {
		return outFailed
	}

	st = u.do("schedules", call{method: "GET", url: fmt.Sprintf("%s/v1/concerts/%d/schedules", u.base, s.concertID), token: u.token})
	var list scheduleList
	if st != 200 || !decode(u.buf.Bytes(), &list) {
		return outFailed
	}
	var open []int64
	for _, sc := range list.Schedules {
		if sc.AvailableSeats > 0 {
			open = append(open, sc.ScheduleID)
		}
	}
	if len(open) == 0 {
		return outSoldOut
	}
	scheduleID := open[rand.Intn(len(open))]

	st = u.do("seats", call{method: "GET", url: fmt.Sprintf("%s/v1/schedules/%d/seats", u.base, scheduleID), token: u.token})
	if st != 200 {
		return outFailed
	}
	free, ok := availableSeats(u.buf.Bytes(), nil)
	if !ok {
		return outFailed
	}
	if len(free) == 0 {
		return outSoldOut
	}

	// Hold a random free seat; on SEAT_UNAVAILABLE try once more with another.
	var chosen seat
	var reservation int64
	for try := 0; try < 2 && len(free) > 0; try++ {
		k := rand.Intn(len(free))
		chosen = free[k]
		free[k] = free[len(free)-1]
		free = free[:len(free)-1]
		u.body = fmt.Appendf(u.body[:0], `{"userId":%d,"scheduleId":%d,"seatNo":%d}`, u.id, scheduleID, chosen.no)
		st = u.do("hold", call{method: "POST", url: u.base + "/v1/reservations", token: u.token, body: u.body})
		if st == 201 {
			if reservation, ok = reservationID(u.buf.Bytes()); !ok {
				return outFailed
			}
			break
		}
		if st != 409 || errorCode(u.buf.Bytes()) != "SEAT_UNAVAILABLE" {
			return outFailed
		}
	}
	if st != 201 {
		return outHoldLost
	}
	if !s.pay {
		return outHeld
	}

	amount := max(s.charge, chosen.price)
	u.body = fmt.Appendf(u.body[:0], `{"amount":%d}`, amount)
	st = u.do("charge", call{method: "POST", url: fmt.Sprintf("%s/v1/users/%d/points/charge", u.base, u.id), body: u.body})
	if st != 200 {
		return outFailed
	}
	u.body = fmt.Appendf(u.body[:0], `{"userId":%d,"reservationId":%d}`, u.id, reservation)
	key := fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
	st = u.do("pay", call{method: "POST", url: u.base + "/v1/payments", token: u.token, idemKey: key, body: u.body})
	if st != 201 {
		return outFailed
	}
	return outPaid
}

// waitActive polls the token every pollInterval until ACTIVE, for at most
// pollGiveUp. WAITING answers keep it polling; anything else fails the flow.
func (u *user) waitActive() bool {
	deadline := time.Now().Add(pollGiveUp)
	url := u.base + "/v1/queue/tokens/current"
	for time.Now().Before(deadline) {
		select {
		case <-u.ctx.Done():
			return false
		case <-time.After(u.s.pollInterval):
		}
		st := u.do("poll", call{method: "GET", url: url, token: u.token})
		var ts tokenState
		if st != 200 || !decode(u.buf.Bytes(), &ts) {
			return false
		}
		if ts.Status == "ACTIVE" {
			return true
		}
	}
	u.s.pollGaveUp.Add(1)
	return false
}
