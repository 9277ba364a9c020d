package riskcheck

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/paygate/paygate/domain/risk"
	"github.com/paygate/paygate/internal/signature"
)

// TestAsk: the outside service's answers, failures and timeout become
// evidence; a call is signed when a key is set.
func TestAsk(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := signature.Verify(r.Header.Get("X-Paygate-Signature"), r.Header.Get("X-Paygate-Timestamp"), body,
			[][]byte{[]byte("s3cret")}, time.Now(), time.Minute); err != nil || r.Header.Get("X-Paygate-Key-Id") != "gw" {
			http.Error(w, "unsigned", http.StatusUnauthorized)
			return
		}
		switch {
		case strings.Contains(string(body), `"order_id":"deny"`):
			_, _ = w.Write([]byte(`{"decision":"deny","reason":"known fraud"}`))
		case strings.Contains(string(body), `"order_id":"points"`):
			if !strings.Contains(string(body), `"score":30`) || !strings.Contains(string(body), `"matched":["geo"]`) {
				http.Error(w, "not our score", http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(`{"points":25}`))
		case strings.Contains(string(body), `"order_id":"broken"`):
			_, _ = w.Write([]byte(`{"verdict":"ok"}`))
		case strings.Contains(string(body), `"order_id":"down"`):
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		case strings.Contains(string(body), `"order_id":"slow"`):
			select {
			case <-time.After(time.Second):
			case <-r.Context().Done():
			}
		}
	}))
	defer srv.Close()
	c, err := New(Config{ServiceURL: srv.URL, ServiceKey: ServiceKey{ID: "gw", Secret: "s3cret"}}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := risk.Parse([]byte(`{"thresholds":{"deny":100},"outside":{"timeout":"100ms"}}`))
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"deny", "points", "broken", "down", "slow"}
	reqs := make([]risk.Request, len(ids))
	pres := make([]risk.Assessment, len(ids))
	for i, id := range ids {
		reqs[i] = risk.Request{OrderID: id, Amount: 100, Currency: "USD"}
	}
	pres[1] = risk.Assessment{Score: 30, Matched: []risk.Match{{Rule: "geo", Points: 30}}}
	start := time.Now()
	out := c.Ask(context.Background(), rules, reqs, pres)
	if took := time.Since(start); took > 900*time.Millisecond {
		t.Errorf("asking took %s: the calls run at once, each within 100ms", took)
	}
	if o := out[0]; o.Answer == nil || o.Answer.Decision != risk.Deny || o.Status != 200 || o.Reason != "known fraud" {
		t.Errorf("deny: %+v", o)
	}
	if o := out[1]; o.Answer == nil || o.Answer.Points != 25 || o.Points != 25 {
		t.Errorf("points: %+v (%s)", o, o.Response)
	}
	for i, want := range map[int]string{2: "neither a decision nor points", 3: "503", 4: "no answer within 100ms"} {
		if o := out[i]; o.Answer != nil || !strings.Contains(o.Error, want) {
			t.Errorf("%s: %+v, want a failure with %q", ids[i], o, want)
		}
	}
	if o := out[4]; o.Latency < 90*time.Millisecond || o.Latency > 800*time.Millisecond || o.LatencyMS == 0 {
		t.Errorf("slow: latency %s", o.Latency)
	}
	// Nothing is asked without a service, or without an outside section.
	c.cfg.ServiceURL = ""
	if out := c.Ask(context.Background(), rules, reqs, pres); out[0] != nil {
		t.Error("asked without a service")
	}
}
