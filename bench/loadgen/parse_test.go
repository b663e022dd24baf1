package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAvailableSeatsMatchesDecoder(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"scheduleId":7,"seats":[`)
	for i := 1; i <= 50; i++ {
		st := "AVAILABLE"
		if i%3 == 0 {
			st = "HELD"
		}
		if i > 1 {
			b.WriteString(",")
		}
		if i%2 == 0 { // field order must not matter
			fmt.Fprintf(&b, `{"status":"%s","price":%d,"seatNo":%d}`, st, 1000+i, i)
		} else {
			fmt.Fprintf(&b, `{"seatNo":%d,"price":%d,"status":"%s"}`, i, 1000+i, st)
		}
	}
	b.WriteString(`]}`)
	got, ok := availableSeats([]byte(b.String()), nil)
	if !ok {
		t.Fatal("scan failed")
	}
	var want struct {
		Seats []struct {
			SeatNo, Price int64
			Status        string
		}
	}
	if err := json.Unmarshal([]byte(b.String()), &want); err != nil {
		t.Fatal(err)
	}
	var exp []seat
	for _, s := range want.Seats {
		if s.Status == "AVAILABLE" {
			exp = append(exp, seat{s.SeatNo, s.Price})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(exp) {
		t.Fatalf("got %v want %v", got, exp)
	}
	if _, ok := availableSeats([]byte(`{"seats":[`), nil); ok {
		t.Fatal("truncated body accepted")
	}
}

func TestHistogramError(t *testing.T) {
	var s Step
	for us := uint64(1); us < 20_000_000; us = us*101/100 + 1 {
		i := bucketIndex(us)
		mid := bucketMidUS(i)
		if d := (mid - float64(us)) / float64(us); d > 0.01 || d < -0.01 {
			t.Fatalf("%d us -> %f (%.4f)", us, mid, d)
		}
	}
	for i := 1; i <= 1000; i++ {
		s.record(200, "", false, time.Duration(i)*time.Millisecond)
	}
	l := s.snapshot().LatencyMS
	if l["p50"] < 495 || l["p50"] > 505 || l["p99"] < 985 || l["p99"] > 995 || l["max"] != 1000 {
		t.Fatalf("%v", l)
	}
	if bucketIndex(^uint64(0)) >= histBuckets {
		t.Fatal("index out of range")
	}
}
