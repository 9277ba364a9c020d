package sim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSimSettings(t *testing.T) {
	ok := `{"base_url":"http://127.0.0.1:8090","merchant_id":"m_sim","secrets":["sim-secret"],"timeout":"5s"}`
	ch, err := FromSettings("sim_a", json.RawMessage(ok))
	if err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	c := ch.(*Channel)
	if c.Name() != "sim_a" || c.cfg.MerchantID != "m_sim" || c.cfg.Timeout != 5*time.Second {
		t.Errorf("channel %s %+v", c.Name(), c.cfg)
	}
	// Each channel gets its own pool, larger than http.DefaultTransport's.
	tr, isHTTP := c.cfg.Transport.(*http.Transport)
	if !isHTTP || tr.MaxIdleConnsPerHost != 128 || tr.MaxIdleConns < 128 {
		t.Errorf("transport %T %+v", c.cfg.Transport, c.cfg.Transport)
	}
	for _, bad := range []string{
		`{"base_url":"http://127.0.0.1:8090","merchant_id":"m","secrets":["sim-secret"],"secret":"sim-secret"}`, // unknown key
		`{"base_url":"http://127.0.0.1:8090","merchant_id":"m"}`,                                                // no secret
		`{"merchant_id":"m","secrets":["sim-secret"]}`,                                                          // no base URL
		`{"base_url":"http://127.0.0.1:8090","merchant_id":"m","secrets":["sim-secret"],"timeout":"soon"}`,
	} {
		_, err := FromSettings("s", json.RawMessage(bad))
		if err == nil {
			t.Errorf("accepted %s", bad)
		} else if strings.Contains(err.Error(), "sim-secret") {
			t.Errorf("error holds a secret: %v", err)
		}
	}
}
