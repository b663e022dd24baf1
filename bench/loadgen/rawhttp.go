package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// rawConn is one hand-driven HTTP/1.1 keep-alive connection. burst and idle
// need exactly one socket per client, which net/http's pool does not promise,
// and 10,000 of them must stay cheap: no per-connection goroutines, a small
// read buffer.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

const rawReadBuffer = 2048 // status line and headers of concertd's answers fit

// target is a base URL split into what a raw request needs.
type target struct {
	addr, host, prefix string
}

func parseTarget(base string) (target, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return target{}, fmt.Errorf("base %q: want http://host:port", base)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return target{addr: addr, host: u.Host, prefix: u.Path}, nil
}

func dialRaw(t target, timeout time.Duration) (*rawConn, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ { // a full accept backlog drops SYNs; retry
		var c net.Conn
		if c, err = net.DialTimeout("tcp", t.addr, timeout); err == nil {
			return &rawConn{c: c, r: bufio.NewReaderSize(c, rawReadBuffer)}, nil
		}
		time.Sleep(time.Duration(100*(attempt+1)) * time.Millisecond)
	}
	return nil, err
}

func (t target) get(path string) []byte {
	return []byte("GET " + t.prefix + path + " HTTP/1.1\r\nHost: " + t.host + "\r\n\r\n")
}

func (t target) post(path, token string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString("POST " + t.prefix + path + " HTTP/1.1\r\nHost: " + t.host +
		"\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
	if token != "" {
		b.WriteString("Queue-Token: " + token + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// roundTrip writes req and reads one Content-Length framed answer into body.
func (rc *rawConn) roundTrip(req []byte, deadline time.Time, body []byte) (int, []byte, error) {
	rc.c.SetDeadline(deadline)
	if _, err := rc.c.Write(req); err != nil {
		return 0, body, err
	}
	line, err := rc.r.ReadSlice('\n')
	if err != nil {
		return 0, body, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, body, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, body, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		h, err := rc.r.ReadSlice('\n')
		if err != nil {
			return 0, body, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, body, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			return 0, body, fmt.Errorf("unsupported Transfer-Encoding %q", v)
		}
	}
	if length < 0 {
		return 0, body, fmt.Errorf("answer without Content-Length")
	}
	if cap(body) < length {
		body = make([]byte, length)
	}
	body = body[:length]
	if _, err := io.ReadFull(rc.r, body); err != nil {
		return 0, body, err
	}
	return status, body, nil
}

// dialBatches opens n connections (client i to targets[i%len]) in batches
// of batch, each warmed up with GET /healthz so the server has accepted and
// served it; a batch finishes before the next starts so the accept backlog
// never overflows. ready(i, conn) runs in the dialing goroutine and must
// return once the client is parked; conn is nil when dial or warm-up failed.
func dialBatches(targets []target, n, batch int, timeout time.Duration, warm *Step,
	ready func(i int, rc *rawConn, wg *sync.WaitGroup)) {
	health := make([][]byte, len(targets))
	for k, t := range targets {
		health[k] = t.get("/healthz")
	}
	for lo := 0; lo < n; lo += batch {
		var wg sync.WaitGroup
		for i := lo; i < min(lo+batch, n); i++ {
			wg.Add(1)
			go func(i int) {
				t := targets[i%len(targets)]
				rc, err := dialRaw(t, timeout)
				if err == nil {
					start := time.Now()
					var st int
					st, _, err = rc.roundTrip(health[i%len(targets)], start.Add(timeout), nil)
					if warm != nil {
						warm.record(st, "", err != nil || st != 200, time.Since(start))
					}
					if err == nil && st != 200 {
						err = fmt.Errorf("healthz answered %d", st)
					}
					if err != nil {
						rc.c.Close()
						rc = nil
					}
				}
				if err != nil && transportErrorsLogged.Add(1) <= 5 {
					logf("connect %s: %v", t.addr, err)
				}
				ready(i, rc, &wg)
			}(i)
		}
		wg.Wait()
	}
}
