package main

import (
	"bytes"
	"math"
	"math/bits"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Latencies go into a log-linear histogram (HDR-like) of microseconds: exact
// below 128 µs, then 128 linear sub-buckets per power of two, so a reported
// percentile (the bucket's midpoint) is within 1/256 (< 0.4 %) of the true
// value. Memory is fixed (~60 KB per step) however long the run, and
// recording is one atomic add with no lock, which keeps the generator cheap
// on the 2 cores it shares with the server. The max is kept exactly.
const (
	subBucketBits = 7
	subBuckets    = 1 << subBucketBits
	histBuckets   = (64 - subBucketBits + 1) * subBuckets
)

func bucketIndex(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	shift := bits.Len64(us) - subBucketBits - 1 // us>>shift is in [128, 255]
	return (shift+1)*subBuckets + int(us>>shift) - subBuckets
}

// bucketMidUS is the middle of bucket i in microseconds.
func bucketMidUS(i int) float64 {
	if i < subBuckets {
		return float64(i)
	}
	shift := i/subBuckets - 1
	low := uint64(i%subBuckets+subBuckets) << shift
	return float64(low) + float64(uint64(1)<<shift)/2
}

// maxStatus bounds the status-code table; anything else lands in 0.
const maxStatus = 600

// Step counts one named request kind (issue, poll, hold, ...).
type Step struct {
	count, errors atomic.Uint64
	status        [maxStatus]atomic.Uint64
	hist          [histBuckets]atomic.Uint64
	maxUS         atomic.Uint64

	codesMu sync.Mutex // codes are rare (4xx/5xx only), a lock is fine
	codes   map[string]uint64
}

func (s *Step) record(status int, code string, failed bool, d time.Duration) {
	s.count.Add(1)
	if failed {
		s.errors.Add(1)
	}
	if status > 0 && status < maxStatus {
		s.status[status].Add(1)
	}
	if code != "" {
		s.codesMu.Lock()
		if s.codes == nil {
			s.codes = map[string]uint64{}
		}
		s.codes[code]++
		s.codesMu.Unlock()
	}
	us := uint64(d.Microseconds())
	s.hist[bucketIndex(us)].Add(1)
	for {
		m := s.maxUS.Load()
		if us <= m || s.maxUS.CompareAndSwap(m, us) {
			break
		}
	}
}

// recordUnsent counts a request that could not even be sent (its client never
// connected) as an error, with no latency sample to skew the percentiles.
func (s *Step) recordUnsent() {
	s.count.Add(1)
	s.errors.Add(1)
}

// StepJSON is the per-step shape the bench orchestrator parses.
type StepJSON struct {
	Count     uint64             `json:"count"`
	Errors    uint64             `json:"errors"`
	ByStatus  map[string]uint64  `json:"by_status"`
	ByCode    map[string]uint64  `json:"by_code"`
	LatencyMS map[string]float64 `json:"latency_ms"`
}

func (s *Step) snapshot() StepJSON {
	out := StepJSON{
		Count:     s.count.Load(),
		Errors:    s.errors.Load(),
		ByStatus:  map[string]uint64{},
		ByCode:    map[string]uint64{},
		LatencyMS: map[string]float64{},
	}
	for i := range s.status {
		if n := s.status[i].Load(); n > 0 {
			out.ByStatus[strconv.Itoa(i)] = n
		}
	}
	s.codesMu.Lock()
	for k, v := range s.codes {
		out.ByCode[k] = v
	}
	s.codesMu.Unlock()

	var counts [histBuckets]uint64
	var total uint64
	for i := range s.hist {
		counts[i] = s.hist[i].Load()
		total += counts[i]
	}
	maxUS := float64(s.maxUS.Load())
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}} {
		out.LatencyMS[p.name] = ms(percentileUS(counts[:], total, p.q, maxUS))
	}
	out.LatencyMS["max"] = ms(maxUS)
	return out
}

func percentileUS(counts []uint64, total uint64, q, maxUS float64) float64 {
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, n := range counts {
		seen += n
		if seen >= rank {
			return math.Min(bucketMidUS(i), maxUS)
		}
	}
	return maxUS
}

func ms(us float64) float64 { return math.Round(us) / 1000 }

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

// Recorder holds the steps of one run plus "all", which sees every request.
type Recorder struct {
	names []string
	steps map[string]*Step
	all   Step

	// Requests sent / completed before windowEnd, for offered and achieved
	// rates over the measured window (a drain after it does not dilute them).
	windowEnd time.Time
	sent      atomic.Uint64
	completed atomic.Uint64
}

func newRecorder(names ...string) *Recorder {
	r := &Recorder{names: names, steps: map[string]*Step{}}
	for _, n := range names {
		r.steps[n] = &Step{}
	}
	return r
}

func (r *Recorder) step(name string) *Step { return r.steps[name] }

func (r *Recorder) markSent(t time.Time) {
	if r.windowEnd.IsZero() || t.Before(r.windowEnd) {
		r.sent.Add(1)
	}
}

func (r *Recorder) record(s *Step, status int, code string, failed bool, d time.Duration, done time.Time) {
	s.record(status, code, failed, d)
	r.all.record(status, code, failed, d)
	if r.windowEnd.IsZero() || done.Before(r.windowEnd) {
		r.completed.Add(1)
	}
}

// result puts every step and "all" into out; count-0 steps are kept so the
// orchestrator always finds the keys.
func (r *Recorder) result(out map[string]any, duration time.Duration) map[string]any {
	for _, n := range r.names {
		out[n] = r.steps[n].snapshot()
	}
	out["all"] = r.all.snapshot()
	secs := duration.Seconds()
	out["duration_s"] = round3(secs)
	if secs > 0 {
		out["achieved_rps"] = math.Round(float64(r.completed.Load())/secs*10) / 10
	} else {
		out["achieved_rps"] = 0.0
	}
	return out
}

// errorCode pulls "code" out of {"error":{"code":"..."}} without a decoder.
func errorCode(body []byte) string {
	i := bytes.Index(body, []byte(`"code":"`))
	if i < 0 {
		return ""
	}
	rest := body[i+len(`"code":"`):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || j > 64 {
		return ""
	}
	return string(rest[:j])
}
