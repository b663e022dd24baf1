package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Client sends measured requests over pooled HTTP/1.1 keep-alive connections.
type Client struct {
	hc  *http.Client
	rec *Recorder
}

// transportErrorsLogged bounds the transport errors echoed to stderr.
var transportErrorsLogged atomic.Int32

func newClient(rec *Recorder, timeout time.Duration) *Client {
	tr := &http.Transport{
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// One pool sized by concurrency: every in-flight request may keep its
		// connection for the next one instead of closing it.
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1 << 20,
		// Below concertd's 60 s idle timeout so we never reuse a socket the
		// server is closing (a POST on it would fail, not be retried).
		IdleConnTimeout:    50 * time.Second,
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
		TLSNextProto:       map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
	}
	return &Client{
		hc: &http.Client{
			Transport:     tr,
			Timeout:       timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		rec: rec,
	}
}

// call is one request; token and idemKey are sent only when set.
type call struct {
	method, url    string
	token, idemKey string
	body           []byte
}

// do sends c, reads the whole body into buf and records it under step. The
// returned status is 0 on a transport error or timeout. Latency runs from just
// before sending to the last body byte.
func (cl *Client) do(ctx context.Context, step *Step, c call, buf *bytes.Buffer) int {
	buf.Reset()
	var req *http.Request
	var err error
	if c.body != nil {
		req, err = http.NewRequestWithContext(ctx, c.method, c.url, bytes.NewReader(c.body))
	} else {
		req, err = http.NewRequestWithContext(ctx, c.method, c.url, nil)
	}
	if err != nil {
		panic(err) // URLs are built by us; a bad one is a bug
	}
	if c.body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	if c.token != "" {
		req.Header["Queue-Token"] = []string{c.token}
	}
	if c.idemKey != "" {
		req.Header["Idempotency-Key"] = []string{c.idemKey}
	}
	start := time.Now()
	cl.rec.markSent(start)
	resp, err := cl.hc.Do(req)
	if err == nil {
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
	}
	done := time.Now()
	if err != nil {
		if ctx.Err() != nil {
			return 0 // cut off by the end of the run, not the server's fault
		}
		if transportErrorsLogged.Add(1) <= 5 {
			logf("transport error: %v", err)
		}
		cl.rec.record(step, 0, "", true, done.Sub(start), done)
		return 0
	}
	code := ""
	if resp.StatusCode >= 400 {
		code = errorCode(buf.Bytes())
	}
	cl.rec.record(step, resp.StatusCode, code, resp.StatusCode >= 500, done.Sub(start), done)
	return resp.StatusCode
}
