package main

import (
	"bytes"
	"encoding/json"
	"strconv"
)

type issuedToken struct {
	Token  string `json:"token"`
	Status string `json:"status"`
}

type tokenState struct {
	Status string `json:"status"`
}

type scheduleList struct {
	Schedules []struct {
		ScheduleID     int64 `json:"scheduleId"`
		AvailableSeats int64 `json:"availableSeats"`
	} `json:"schedules"`
}

type seat struct{ no, price int64 }

// availableSeats appends the AVAILABLE seats of a seat-map body to dst. A hand
// scan, not encoding/json: a 1,000-seat map is ~60 KB and reflection-decoding
// one per flow costs CPU the server needs. Seat objects are flat, so each
// {...} inside "seats":[...] is scanned for its fields in any order.
func availableSeats(body []byte, dst []seat) ([]seat, bool) {
	i := bytes.Index(body, []byte(`"seats":[`))
	if i < 0 {
		return dst, false
	}
	rest := body[i+len(`"seats":[`):]
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n,")
		if len(rest) == 0 || rest[0] != '{' {
			return dst, len(rest) > 0 && rest[0] == ']'
		}
		end := bytes.IndexByte(rest, '}')
		if end < 0 {
			return dst, false
		}
		obj := rest[:end]
		rest = rest[end+1:]
		if string(stringField(obj, `"status":`)) != "AVAILABLE" {
			continue
		}
		no, ok1 := intField(obj, `"seatNo":`)
		price, ok2 := intField(obj, `"price":`)
		if !ok1 || !ok2 {
			return dst, false
		}
		dst = append(dst, seat{no, price})
	}
}

func intField(obj []byte, key string) (int64, bool) {
	i := bytes.Index(obj, []byte(key))
	if i < 0 {
		return 0, false
	}
	v := bytes.TrimLeft(obj[i+len(key):], " ")
	n := 0
	for n < len(v) && (v[n] == '-' || (v[n] >= '0' && v[n] <= '9')) {
		n++
	}
	x, err := strconv.ParseInt(string(v[:n]), 10, 64)
	return x, err == nil
}

func stringField(obj []byte, key string) []byte {
	i := bytes.Index(obj, []byte(key))
	if i < 0 {
		return nil
	}
	v := bytes.TrimLeft(obj[i+len(key):], " ")
	if len(v) == 0 || v[0] != '"' {
		return nil
	}
	v = v[1:]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j]
}

// reservationID reads "reservationId" from a hold answer.
func reservationID(body []byte) (int64, bool) {
	return intField(body, `"reservationId":`)
}

func decode(body []byte, v any) bool { return json.Unmarshal(body, v) == nil }
