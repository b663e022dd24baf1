package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// createConcert makes a bookable concert (4 schedules × 1,000 seats at 1,000
// won) for a scenario run given -admin-key but no -concert-id.
func createConcert(base, adminKey string) (int64, error) {
	body := []byte(`{"title":"loadgen","schedules":[` +
		`{"startsAt":"2030-01-01T19:00:00Z","seatCount":1000,"price":1000},` +
		`{"startsAt":"2030-01-02T19:00:00Z","seatCount":1000,"price":1000},` +
		`{"startsAt":"2030-01-03T19:00:00Z","seatCount":1000,"price":1000},` +
		`{"startsAt":"2030-01-04T19:00:00Z","seatCount":1000,"price":1000}]}`)
	req, err := http.NewRequest("POST", base+"/v1/admin/concerts", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Admin-Key", adminKey)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		ConcertID int64 `json:"concertId"`
	}
	if resp.StatusCode != 201 || json.Unmarshal(raw, &out) != nil || out.ConcertID == 0 {
		return 0, fmt.Errorf("create concert: %d %s", resp.StatusCode, raw)
	}
	return out.ConcertID, nil
}
